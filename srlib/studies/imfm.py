"""IMFM, seed 003 (``003_af937f6ba3c26a31.txt``): notebook 05's four tables and two figures as functions.

- the study ``05-imfm`` (:func:`imfm_study`): one set of equal-budget x4 runs from scratch that
  every training table reads: the ablation (base -> +PAB -> +MSWAM -> +CAM), the schedule
  comparison (step decay vs cosine annealing with warm restarts, for IMFM and a zoo comparator)
  and the upsampler comparison (MWAUM, deconvolution, sub-pixel);
- :func:`ablation_table` (the paper's ablation text), :func:`schedule_table` (its Table 2),
  :func:`upsampler_table` (Table 3), :func:`complexity_table` (Table 4), each with the paper's
  numbers beside ours and :func:`sentences` computed from both;
- :func:`figure_items` and :func:`figure_methods` for Figures 5-6.

Readings chosen where seed 003 is silent:

- **Scale.** Every table here is x4: Tables 3 and 4 are x4 in the paper; Table 2 names neither
  dataset nor scale (its 33.1-33.4 dB values are not the named models' published Set5 x4,
  32.1-32.3 dB; they sit nearer Set14 x2, 33.5-33.7 dB). We report all four benchmarks at x4.
- **Epochs to steps.** The paper halves the step-decay rate "every 200 epochs" and restarts the
  cosine schedule "every 250 cycles", without a total; we take the EDSR-family 1000 epochs, so a
  run of S steps halves every S/5 steps or restarts every S/4 steps (:func:`schedules`).
- **Comparators.** The paper's CARN, MAFFSRN and A2F-M are not in the zoo (the zoo has CARN-M,
  IMDN, A2F-S/SD); ``quick`` trains IMDN beside IMFM, ``full`` IMDN, CARN-M and A2F-S.
- **Training data.** The paper trains on "1200 images from reference [22]" (900 train / 300
  test) that it does not name; we train on the profile's set (T91 in ``quick``, DIV2K in ``full``).
"""
from __future__ import annotations

import math

import pandas as pd
import torch

from ..complexity import count_params, multi_adds, peak_memory, time_forward
from ..data.datasets import BenchmarkSet, benchmark_item
from ..evalcache import evaluate_cached
from ..evaluate import summarize
from ..models import build_model, build_upscaler
from ..models.zoo.weights import load_pretrained
from ..profiles import get_profile
from .core import Arm, Study
from .registry import register_study
from .stats import delta_sentences, signed_db

SCALE = 4
#: the ablation's rows: (arm, switches), each adding one component to the one before
ABLATION = (("base", dict(pab=False, mswam=False, cam=False)), ("pab", dict(pab=True, mswam=False, cam=False)),
            ("pab+mswam", dict(pab=True, mswam=True, cam=False)), ("imfm", dict(pab=True, mswam=True, cam=True)))
#: what the ablation text reports (Sec. 3.3 (1)): PAB saves 63.7K parameters and 3.5 G Mult-Adds,
#: MSWAM adds 21.8K
PAPER_ABLATION = {"pab": {"params_added": -63_700, "multi_adds_added_G": -3.5}, "pab+mswam": {"params_added": 21_800}}
#: Table 2 as extracted ("333" and "332" lost their decimal points: 33.3 and 33.2)
PAPER_TABLE2 = {"carn": (33.12, 33.21), "maffsrn": (33.18, 33.25), "imdn": (33.1, 33.2), "a2f-m": (33.24, 33.31),
                "imfm": (33.3, 33.41)}
#: Table 3 (x4, Set5): parameters (K), running time (s), PSNR
PAPER_TABLE3 = {"deconv": (576.169, 0.3413, 26.21), "subpixel": (594.011, 0.3324, 26.23),
                "mwaum": (596.362, 0.3437, 26.25)}
#: Table 4 (x4, Urban100): parameters (K), GPU memory (MB), CPU and GPU time (s)
PAPER_TABLE4 = {"edsr": (44_080, 8806, 140.005, 0.212), "rdn": (11_120, 15881, 71.091, 0.152),
                "wsr": (1_080, 6635, 41.018, 0.081), "maffsrn": (980, 4410, 29.113, 0.072),
                "imfm": (670, 5109, 21.225, 0.053)}
#: models timed for Table 4: the paper's (those the project can build) and the zoo
COMPLEXITY_MODELS = ("imfm", "edsr", "rdn", "awsrn", "awsrn-s", "carn-m", "imdn", "pan", "latticenet", "rfdn",
                     "a2f-s", "edsr-baseline")
#: Figures 5-6: (benchmark, image)
FIGURE_IMAGES = (("B100", "253027"), ("Urban100", "img_012"))


def schedules(steps: int) -> dict:
    """TrainConfig overrides of the two schedules of Table 2 for a run of ``steps`` steps."""
    return {"step": {"schedule": "step", "step_size": max(1, steps // 5), "gamma": 0.5},
            "cos": {"schedule": "cosine_restarts", "T_0": max(1, steps // 4), "T_mult": 1, "eta_min": 0.0}}


def comparators(profile) -> tuple[str, ...]:
    """The zoo models trained beside IMFM in Table 2."""
    return ("imdn", "carn-m", "a2f-s") if get_profile(profile).name == "full" else ("imdn",)


@register_study("05-imfm")
def imfm_study(profile) -> Study:
    """Every training run of notebook 05, x4, from scratch, ``budget('05').steps`` each; the base
    and the full model get ``budget('05').seeds`` seeds; evaluation on the first ``budget('05').images``
    images of each benchmark (None: the profile's ``eval_max_images``). Arms: the ablation (``base``, ``pab``,
    ``pab+mswam``, ``imfm``: step decay, MWAUM), ``imfm-cos``, ``imfm-deconv``, ``imfm-subpixel``,
    and per comparator ``<name>`` (step) and ``<name>-cos``."""
    p = get_profile(profile)
    b = p.budget("05")
    steps = b.steps or p.steps
    sch = schedules(steps)
    seeds = [p.seed + i for i in range(max(1, b.seeds))]
    arms = []
    for name, sw in ABLATION:
        for s in (seeds if name in ("base", "imfm") else seeds[:1]):
            arms.append(Arm(name, "imfm", SCALE, model_kwargs=sw, train={"steps": steps, **sch["step"]}, seed=s))
    arms.append(Arm("imfm-cos", "imfm", SCALE, train={"steps": steps, **sch["cos"]}))
    for up in ("deconv", "subpixel"):
        arms.append(Arm(f"imfm-{up}", "imfm", SCALE, model_kwargs={"upsampler": up},
                        train={"steps": steps, **sch["step"]}))
    for m in comparators(p):
        arms += [Arm(m, m, SCALE, train={"steps": steps, **sch["step"]}),
                 Arm(f"{m}-cos", m, SCALE, train={"steps": steps, **sch["cos"]})]
    return Study("05-imfm", p, arms, baseline="base", max_images=b.images or p.eval_max_images,
                 description="notebook 05: IMFM's ablation, schedules, upsamplers")


def _means(study: Study) -> pd.DataFrame:
    t = study.table()
    return (t.groupby(["arm", "dataset", "scale"], sort=False)
            .agg(seeds=("seed", "nunique"), psnr=("psnr", "mean"), ssim=("ssim", "mean"), params=("params", "first"),
                 multi_adds_G=("multi_adds_G", "first"), steps=("steps", "first"),
                 train_seconds=("train_seconds", "mean"), precision=("precision", "first")).reset_index())


def ablation_table(study: Study) -> pd.DataFrame:
    """base -> +PAB -> +MSWAM -> +CAM: per benchmark, seed-mean PSNR/SSIM, parameters and
    Multi-Adds with what each row adds to the one before (the paper's figures beside), and the
    PSNR delta against ``base`` with its paired interval and ``within_noise``."""
    names = [n for n, _ in ABLATION]
    m = _means(study)
    m = m[m.arm.isin(names)].copy()
    m["order"] = m.arm.map(names.index)
    m = m.sort_values(["dataset", "order"])
    m["params_added"] = m.groupby("dataset").params.diff()
    m["multi_adds_added_G"] = m.groupby("dataset").multi_adds_G.diff()
    m["params_added_paper"] = m.arm.map(lambda a: PAPER_ABLATION.get(a, {}).get("params_added", math.nan))
    m["multi_adds_added_paper_G"] = m.arm.map(lambda a: PAPER_ABLATION.get(a, {}).get("multi_adds_added_G",
                                                                                         math.nan))
    cmp = study.compare("base")[["arm", "dataset", "scale", "delta", "ci_low", "ci_high", "seed_spread",
                                 "within_noise"]]
    out = m.merge(cmp, on=["arm", "dataset", "scale"], how="left").drop(columns="order")
    out.loc[out.arm == "base", "delta"] = 0.0
    out.attrs.update(study.table().attrs)
    return out


def schedule_table(study: Study) -> pd.DataFrame:
    """Table 2: per model and benchmark, PSNR with step decay and with cosine restarts, the gain,
    and the paper's pair (its dataset and scale unnamed) with its gain."""
    m = _means(study).set_index(["arm", "dataset"])
    rows = []
    for model in ("imfm", *[a.name for a in study.arms if a.name.endswith("-cos") and a.name != "imfm-cos"]):
        model = model.removesuffix("-cos")
        for ds in dict.fromkeys(m.loc[model].index):
            step, cos = m.loc[(model, ds)], m.loc[(f"{model}-cos", ds)]
            paper = PAPER_TABLE2.get(model, (math.nan, math.nan))
            rows.append({"model": model, "dataset": ds, "psnr_step": step.psnr, "psnr_cos": cos.psnr,
                         "gain": cos.psnr - step.psnr, "paper_step": paper[0], "paper_cos": paper[1],
                         "paper_gain": paper[1] - paper[0]})
    return pd.DataFrame(rows)


def _set5_seconds(model: torch.nn.Module, max_images: int | None = None) -> float:
    """Mean seconds of one forward pass per Set5 LR image (one warm-up pass on the first)."""
    items = BenchmarkSet("Set5", SCALE, max_images=max_images)
    time_forward(model, items[0].lr.shape[:2], repeats=1, warmup=0)
    return sum(time_forward(model, it.lr.shape[:2], repeats=1, warmup=0) for it in items) / len(items)


def upsampler_table(study: Study) -> pd.DataFrame:
    """Table 3 (x4, Set5): parameters, mean CPU seconds per Set5 image and PSNR of IMFM with each
    upsampler, beside the paper's, and bicubic's PSNR on the same images."""
    m = _means(study)
    m = m[m.dataset == "Set5"].set_index("arm")
    bic = summarize(evaluate_cached("bicubic", ["Set5"], [SCALE], profile=study.profile_name)).psnr.iloc[0]
    rows = []
    for up, arm in (("deconv", "imfm-deconv"), ("subpixel", "imfm-subpixel"), ("mwaum", "imfm")):
        model = study.load_model(arm)
        paper = PAPER_TABLE3[up]
        rows.append({"upsampler": up, "params": count_params(model), "seconds_per_image": _set5_seconds(model, study.max_images),
                     "psnr": m.psnr[arm], "params_paper": paper[0] * 1e3, "seconds_paper": paper[1],
                     "psnr_paper": paper[2], "psnr_bicubic": bic})
    return pd.DataFrame(rows)


#: Urban100 images timed for Table 4 per profile (None: all 100); a full-size EDSR pass takes ~30 s here
TIMING_IMAGES = {"smoke": 1, "quick": 1}


def complexity_table(profile, models=COMPLEXITY_MODELS, images: int | None = None) -> pd.DataFrame:
    """Table 4 (x4, Urban100): parameters, Multi-Adds (1280x720 output), peak memory of one
    forward pass and mean seconds per image on the CPU (and the GPU where one is present), over
    the first ``images`` Urban100 images (default: :data:`TIMING_IMAGES` of the profile, else all).
    Untrained weights: time and memory do not depend on them. ``smoke`` times a 32x32 LR input
    (the code path only: a full-size EDSR pass takes ~30 s on a 2-core CPU)."""
    p = get_profile(profile)
    items = BenchmarkSet("Urban100", SCALE, max_images=images or TIMING_IMAGES.get(p.name))
    sizes = [(32, 32) if p.name == "smoke" else it.lr.shape[:2] for it in items]  # smoke: code path only
    rows = []
    for name in models:
        model = build_model(name, SCALE).eval()
        row = {"model": name, "params": count_params(model), "multi_adds_G": multi_adds(model, SCALE) / 1e9,
               "images": len(items), "lr_size": "x".join(map(str, sizes[0])),
               "peak_memory_MB": peak_memory(model, sizes[0]) / 2**20,
               "cpu_seconds": sum(time_forward(model, hw, repeats=1, warmup=0) for hw in sizes) / len(sizes)}
        if torch.cuda.is_available():
            gpu = model.cuda()
            row["gpu_seconds"] = sum(time_forward(gpu, hw, repeats=3, warmup=1) for hw in sizes) / len(sizes)
            row["gpu_peak_MB"] = peak_memory(gpu, sizes[0]) / 2**20
        paper = PAPER_TABLE4.get(name)
        if paper:
            row.update(params_paper=paper[0] * 1e3, gpu_MB_paper=paper[1], cpu_seconds_paper=paper[2],
                       gpu_seconds_paper=paper[3])
        rows.append(row)
    return pd.DataFrame(rows)


def figure_items(profile) -> list:
    """The benchmark items of Figures 5-6 (:data:`FIGURE_IMAGES`)."""
    return [benchmark_item(ds, name, SCALE) for ds, name in FIGURE_IMAGES]


def figure_methods(study: Study) -> dict:
    """``{label: model}``: bicubic, our trained IMFM and comparators, and the comparators' official weights."""
    out = {"bicubic": build_upscaler("bicubic", SCALE)}
    out["IMFM (ours)"] = study.load_model("imfm")
    for m in comparators(study.profile_name):
        out[f"{m} (ours, same budget)"] = study.load_model(m)
        out[f"{m} (official weights)"] = load_pretrained(m, SCALE).eval()
    return out


def lr_curves(steps: int, lr: float = 1e-3) -> dict:
    """``{schedule: [lr at step 0..steps-1]}`` of the two schedules of Table 2 (Eq. 13), read from
    the torch schedulers the trainer builds."""
    from ..train import TrainConfig
    from ..train.trainer import build_scheduler

    out = {}
    for name, over in schedules(steps).items():
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
        sched = build_scheduler(opt, TrainConfig(steps=steps, lr=lr, **over))
        curve = []
        for _ in range(steps):
            curve.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        out[name] = curve
    return out


def ablation_sentences(table: pd.DataFrame) -> list[str]:
    """Per row of :func:`ablation_table`: its delta against ``base`` and its noise, then what each
    component adds in parameters and Multi-Adds beside the paper's figures."""
    out = delta_sentences(table, "base")
    first = table.drop_duplicates("arm").set_index("arm")
    for arm in ("pab", "pab+mswam"):
        r = first.loc[arm]
        out.append(f"{arm}: adds {int(r.params_added):+,} parameters (paper {int(r.params_added_paper):+,}) and "
                   f"{r.multi_adds_added_G:+.2f} G Multi-Adds"
                   + (f" (paper {r.multi_adds_added_paper_G:+.1f} G)" if r.multi_adds_added_paper_G == r.multi_adds_added_paper_G
                      else " (the paper gives none)"))
    return out


def schedule_sentences(table: pd.DataFrame) -> list[str]:
    """Per model of :func:`schedule_table`: the mean gain of cosine restarts over step decay."""
    return [f"{model}: cosine restarts - step decay = {signed_db(g.gain.mean())} on average over {len(g)} "
            f"benchmark(s) (from {signed_db(g.gain.min())} to {signed_db(g.gain.max())}); paper "
            f"{signed_db(g.paper_gain.iloc[0])}" for model, g in table.groupby("model", sort=False)]


def upsampler_sentences(table: pd.DataFrame) -> list[str]:
    """Table 3: which upsampler is best here and in the paper, and the paper's values against bicubic."""
    ours, paper = table.sort_values("psnr").upsampler.iloc[-1], table.sort_values("psnr_paper").upsampler.iloc[-1]
    bic = table.psnr_bicubic.iloc[0]
    return [f"highest Set5 x4 PSNR: {ours} here ({table.psnr.max():.2f} dB), {paper} in the paper "
            f"({table.psnr_paper.max():.2f} dB); spread {table.psnr.max() - table.psnr.min():.2f} dB here, "
            f"{table.psnr_paper.max() - table.psnr_paper.min():.2f} dB in the paper",
            f"the paper's Table 3 values ({table.psnr_paper.min():.2f}-{table.psnr_paper.max():.2f} dB) are "
            f"{bic - table.psnr_paper.max():.2f} dB or more below bicubic on Set5 x4 ({bic:.2f} dB): they cannot be "
            "Set5 x4 under the standard protocol"]


def complexity_sentences(table: pd.DataFrame) -> list[str]:
    """Table 4: IMFM's rank by CPU time and size, and the EDSR/IMFM time ratio here and in the paper."""
    t = table.set_index("model")
    rank = int(t.cpu_seconds.rank().imfm)
    out = [f"IMFM: {t.params.imfm / 1e3:,.0f}K parameters, {t.cpu_seconds.imfm:.2f} s per Urban100 x4 image on this "
           f"CPU, rank {rank} of {len(t)} by CPU time (1 = fastest); smaller models here: "
           + (", ".join(t.index[t.params < t.params.imfm]) or "none")]
    if "edsr" in t.index:
        paper = PAPER_TABLE4["edsr"][2] / PAPER_TABLE4["imfm"][2]
        out.append(f"EDSR / IMFM CPU time: {t.cpu_seconds.edsr / t.cpu_seconds.imfm:.1f}x here, {paper:.1f}x in the "
                   "paper (whose text says 'nearly five times faster')")
    return out
