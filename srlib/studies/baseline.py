"""The AWSRN baseline (Wang, Li & Shi 2019): the tables of notebook 02, as functions.

- :func:`complexity_vs_paper`: parameters and Multi-Adds of the AWSRN family beside the paper's
  counts (:func:`srlib.reference.published_complexity`);
- the study ``02-awsrn-s`` (:func:`awsrn_study`, :func:`train_baseline`): AWSRN-S x4 with the
  profile's recipe, trained once, then read (notebooks 03-05 start their equal-budget arms from
  its ``best.pt``);
- :func:`results_vs_paper`: its benchmark means beside bicubic and the published row;
- :func:`selection_change`: how far the numbers moved when ``best.pt`` came to be selected on
  held-out training images instead of Set5;
- :func:`training_budgets`: what budget produced our side and the paper's;
- the study ``02-precision`` (:func:`precision_study`, :func:`compare_precision`): fp32 against
  bf16 at a quarter of the steps, where bf16 is native;
- :func:`awms_pruning` and :func:`fuse_check`: AWMS branch pruning (Sec. 3) and ``AWSRN.fuse()``.

Every evaluation goes through :func:`srlib.evalcache.evaluate_cached`.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from ..complexity import count_params, multi_adds, time_forward
from ..data.colour import modcrop, to_tensor, to_uint8
from ..data.datasets import BenchmarkSet
from ..data.resize import imresize
from ..device import cpu_supports_bf16
from ..evalcache import evaluate_cached
from ..evaluate import compare_published, summarize
from ..metrics import psnr
from ..models import build_model, load_weights
from ..paths import checkpoints_dir
from ..profiles import get_profile
from ..reference import published_complexity
from ..train.recipes import validation_split
from .core import Arm, Study
from .registry import get_study, register_study

MODEL, SCALE = "awsrn-s", 4
#: the paper's recipe (Sec. 4.1): DIV2K 1-800, 48x48 LR patches, batch 16, Adam 1e-3 halved every 2x10^5,
#: 10^6 iterations
PAPER_BUDGET = dict(train_dataset="DIV2K (800 images, 2K)", steps=1_000_000, lr_patch=48, batch_size=16, lr=1e-3,
                    lr_step=200_000, precision="fp32", hardware="a GPU", train_seconds="not reported")
#: The AWSRN-S x4 ``quick`` run before validation moved off Set5 (commit fb88177's notebook 02,
#: reported in the closing note of issue 3): all 91 T91 images trained, ``best.pt`` selected on
#: Set5 (the Set5 curve rose at every check, so it was step 1200), fp32 (a CPU without native
#: bf16), 827 s on 1 thread.
EARLIER_RUNS = {"quick": {
    "source": "the earlier quick run (commit fb88177, issue 3's closing note): best.pt selected on Set5",
    "steps": 1200, "best_step": 1200, "precision": "fp32",
    "psnr": {"Set5": 30.13, "Set14": 27.26, "B100": 26.74, "Urban100": 24.15},
    "ssim": {"Set5": 0.8521, "Set14": 0.7463, "B100": 0.7055, "Urban100": 0.7069}}}
PRECISION_SKIPPED = ("fp32 vs bf16 comparison skipped: this machine has no native bf16 (no AMX-BF16 / "
                     "AVX512-BF16, no CUDA), so bf16 would only be emulated, slower than fp32, and the timing "
                     "would say nothing about bf16.")


def complexity_vs_paper(out_hw: tuple[int, int] = (720, 1280)) -> pd.DataFrame:
    """Our parameter and Multi-Add counts of every (model, scale) the paper lists, beside its own.

    Multi-Adds are of one forward pass producing an ``out_hw`` output (the lightweight-SR
    convention); the paper gives them for AWSRN-S x4 and AWSRN x4 only (NaN elsewhere).
    """
    paper = published_complexity()
    rows = []
    for r in paper.itertuples():
        m = build_model(r.model, int(r.scale))
        rows.append({"model": r.model, "scale": int(r.scale), "params": count_params(m), "params_paper": r.params,
                     "multi_adds_G": multi_adds(m, int(r.scale), out_hw) / 1e9, "multi_adds_paper_G": r.multi_adds_G})
    cx = pd.DataFrame(rows)
    cx["params_delta"] = cx.params - cx.params_paper
    cx["multi_adds_delta_G"] = cx.multi_adds_G - cx.multi_adds_paper_G
    return cx


@register_study("02-awsrn-s")
def awsrn_study(profile) -> Study:
    """AWSRN-S x4 with the profile's recipe (steps from ``budget('02').steps``), on its benchmarks."""
    p = get_profile(profile)
    steps = p.budget("02").steps
    return Study("02-awsrn-s", p, [Arm("awsrn-s-x4", MODEL, SCALE, train={"steps": steps} if steps else {})],
                 description="notebook 02: the AWSRN-S x4 baseline (notebooks 03-05 start from its best.pt)")


@dataclass
class BaselineRun:
    """A finished run of a study arm: its folder, ``run.json``, ``log.csv`` and the study's table."""

    run_dir: Path
    record: dict
    log: pd.DataFrame
    table: pd.DataFrame

    @property
    def best(self) -> Path:
        return self.run_dir / "checkpoints" / "best.pt"

    @property
    def last(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"

    @property
    def budget(self) -> dict:
        """What produced the run: data, iterations, patches, batch, lr, schedule, precision, time."""
        r, c = self.record, self.record["config"]
        return dict(train_dataset=r["data"]["train_dataset"], steps=r["steps"], lr_patch=r["lr_patch"],
                    batch_size=c["batch_size"], lr=c["lr"], lr_step=c["step_size"], precision=r["precision"],
                    train_seconds=round(self.log.seconds.max()), best_step=r["best"]["step"],
                    validation=f"{', '.join(r['validation']['images'])} of {r['validation']['dataset']}")

    @property
    def summary(self) -> str:
        """One line: iterations, training time and speed, precision, device, best validation."""
        r, secs = self.record, self.log.seconds.max()
        val = r["validation"]
        return (f"{r['steps']} iterations in {secs:.0f} s ({r['steps'] / secs:.2f} it/s), precision "
                f"{r['precision']}, device {r['provenance']['device']}; best validation "
                f"({len(val['images'])} {val['dataset']} images held out of training: "
                f"{val['held_out_of_training']}) {r['best']['psnr']:.2f} dB at iteration {r['best']['step']}")


def run_of(study: Study, arm_name: str) -> BaselineRun:
    """The finished run of ``arm_name`` (after ``study.run()``)."""
    arm = study.arm(arm_name)
    run, st = study.run_dir(arm), study.state(arm)
    if st["state"] != "finished":
        raise RuntimeError(f"study {study.name}, arm {arm_name}: {st['status']} ({run}); the notebook needs a "
                           "finished run: look at its log.csv, fix, and rerun")
    return BaselineRun(run, json.loads((run / "run.json").read_text()), pd.read_csv(run / "log.csv"),
                       study.table())


def train_baseline(profile) -> BaselineRun:
    """Run the study ``02-awsrn-s`` (trains only when no finished run of its identity exists)."""
    study = get_study("02-awsrn-s", profile)
    study.run()
    return run_of(study, "awsrn-s-x4")


def validation_bicubic(profile) -> float:
    """Mean Y-PSNR of MATLAB bicubic x4 on the images that select ``best.pt`` (the reference line
    of the validation curve; the benchmarks' bicubic rows are not on the same images)."""
    images, _ = validation_split(profile)
    hrs = [modcrop(im.hr, SCALE) for im in images]
    return sum(psnr(imresize(imresize(hr, 1 / SCALE), SCALE), hr, SCALE) for hr in hrs) / len(hrs)


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def per_image(profile, checkpoint: Path, datasets=None, cache_dir=None) -> pd.DataFrame:
    """Per-image rows of AWSRN-S x4 from ``checkpoint`` on the profile's benchmarks (cached; with
    ``cache_dir`` the run's own ``evaluations/``, where the study keeps them)."""
    p = get_profile(profile)
    return evaluate_cached(MODEL, list(datasets or p.eval_datasets), [SCALE], profile=p.name, checkpoint=checkpoint,
                           max_images=p.eval_max_images, cache_dir=cache_dir, device=_device())


def results_vs_paper(profile, ours: pd.DataFrame) -> pd.DataFrame:
    """Our means beside bicubic on the same images and the published AWSRN-S x4 row."""
    p = get_profile(profile)
    bic = evaluate_cached("bicubic", list(p.eval_datasets), [SCALE], profile=p.name, max_images=p.eval_max_images)
    bic = summarize(bic)[["dataset", "scale", "psnr", "ssim"]].rename(
        columns={"psnr": "psnr_bicubic", "ssim": "ssim_bicubic"})
    results = compare_published(summarize(ours.assign(model=MODEL)), model=MODEL).merge(bic, on=["dataset", "scale"])
    results["gain_over_bicubic"] = results.psnr - results.psnr_bicubic
    return results


def _old_run(profile) -> tuple[Path, dict] | None:
    """The run folder of the notebook before studies (``checkpoints/awsrn-s_x4``) if it validated on Set5."""
    run = checkpoints_dir(get_profile(profile).name) / f"{MODEL}_x{SCALE}"
    try:
        rec = json.loads((run / "run.json").read_text())
    except (OSError, ValueError):
        return None
    val = str(rec.get("provenance", {}).get("validation", ""))
    if "validation" in rec or "Set5" not in val or not (run / "checkpoints" / "best.pt").is_file():
        return None
    return run, rec


def selection_change(profile, run: BaselineRun, results: pd.DataFrame) -> pd.DataFrame:
    """How far the benchmark means moved when validation left Set5 for held-out training images.

    Columns: ``psnr`` (now: ``best.pt`` selected on the held-out images), ``psnr_last`` (this
    run's ``last.pt``: what a Set5 selection picks when the curve rises to the end),
    ``psnr_earlier`` (the run selected on Set5) and ``moved`` (now - earlier), with ``earlier``
    saying where that number comes from: the earlier run's folder evaluated here when it is on
    disk, else the recorded numbers of :data:`EARLIER_RUNS` (NaN for a profile without one), and
    the training precision of both runs (bf16 where it is native changes the weights too).
    """
    p = get_profile(profile)
    last = summarize(per_image(p, run.last, cache_dir=run.run_dir / "evaluations").assign(model=MODEL))
    out = results[["dataset", "scale", "psnr", "ssim"]].merge(
        last[["dataset", "psnr"]].rename(columns={"psnr": "psnr_last"}), on="dataset")
    old = _old_run(p)
    if old is not None:
        prev = summarize(per_image(p, old[0] / "checkpoints" / "best.pt").assign(model=MODEL)).set_index("dataset")
        source = f"the Set5-selected run in {old[0].name}/, evaluated here"
        precision = old[1].get("provenance", {}).get("precision")
    else:
        rec = EARLIER_RUNS.get(p.name)
        prev = pd.DataFrame({k: (rec or {}).get(k, {}) for k in ("psnr", "ssim")})
        source = rec["source"] if rec else f"no earlier run recorded for profile {p.name}"
        precision = rec["precision"] if rec else None
    out["psnr_earlier"] = out.dataset.map(prev.psnr).astype(float)
    out["ssim_earlier"] = out.dataset.map(prev.ssim).astype(float)
    out["moved"] = out.psnr - out.psnr_earlier
    out["best_step"], out["last_step"] = run.record["best"]["step"], run.record["steps"]
    out["precision"], out["precision_earlier"], out["earlier"] = run.record["precision"], precision, source
    return out


def training_budgets(run: BaselineRun) -> pd.DataFrame:
    """Our budget beside the paper's, and the LR pixels each side saw in training."""
    r = run.record
    ours = {**run.budget, "train_dataset": f"{r['data']['train_dataset']} ({r['data']['n_images']} images usable "
            f"at x{SCALE})", "hardware": r["provenance"]["device"]}
    del ours["best_step"], ours["validation"]
    budgets = pd.DataFrame({"ours": ours, "paper": PAPER_BUDGET})
    budgets.loc["lr_pixels_seen"] = [b["steps"] * b["batch_size"] * b["lr_patch"] ** 2 for b in (ours, PAPER_BUDGET)]
    return budgets


def native_bf16() -> bool:
    """bf16 runs natively here: CUDA with bf16 support, or a CPU with AMX-BF16 / AVX512-BF16."""
    return (torch.cuda.is_available() and torch.cuda.is_bf16_supported()) or cpu_supports_bf16()


@register_study("02-precision")
def precision_study(profile) -> Study:
    """AWSRN-S x4 in fp32 and in bf16 autocast at a quarter of the steps, validated once at the end."""
    p = get_profile(profile)
    steps = max(2, (p.budget("02").steps or p.steps) // 4)
    arms = [Arm(prec, MODEL, SCALE, train=dict(steps=steps, precision=prec, validate_every=steps, checkpoint_every=0))
            for prec in ("fp32", "bf16")]
    return Study("02-precision", p, arms, baseline="fp32", datasets=("Set5",),
                 description="notebook 02: fp32 vs bf16 autocast (where bf16 is native)")


def compare_precision(profile) -> pd.DataFrame | None:
    """The ``02-precision`` study's table (steps, seconds, Set5 PSNR/SSIM), or None where bf16
    is not native (:data:`PRECISION_SKIPPED` says why)."""
    if not native_bf16():
        return None
    table = get_study("02-precision", profile).run()
    return table[["arm", "precision", "steps", "train_seconds", "dataset", "psnr", "ssim"]].rename(
        columns={"arm": "requested"})


def load_trained(run: BaselineRun) -> torch.nn.Module:
    """AWSRN-S x4 with the run's ``best.pt``, in eval mode."""
    return load_weights(build_model(MODEL, SCALE), run.best).eval()


def awms_pruning(profile, trained: torch.nn.Module, ours: pd.DataFrame, key: str, keep: int = 3) -> pd.DataFrame:
    """Set5 PSNR/SSIM, Multi-Adds and parameters of ``trained`` and of a copy without its weakest
    AWMS branches (``prune_awms(keep)``: no retraining, remaining weights not renormalised).

    ``ours`` holds the per-image rows of ``trained``; ``key`` names the checkpoint for the cache.
    """
    p = get_profile(profile)
    pruned = copy.deepcopy(trained)
    dropped = pruned.prune_awms(keep=keep)
    set5 = {"full AWMS": ours[ours.dataset == "Set5"],
            f"without {'+'.join(dropped)}": evaluate_cached(
                "awsrn-s pruned", ["Set5"], [SCALE], profile=p.name, module=pruned,
                key=f"{key}, AWMS pruned to keep={keep}", max_images=p.eval_max_images)}
    pruning = pd.DataFrame([{"model": k, "branches": ",".join(m.awms.branch_weights()), "set5_psnr": df.psnr.mean(),
                             "set5_ssim": df.ssim.mean(), "multi_adds_G": multi_adds(m, SCALE) / 1e9,
                             "params": count_params(m)} for (k, df), m in zip(set5.items(), (trained, pruned))])
    pruning["psnr_cost"] = pruning.set5_psnr - pruning.set5_psnr.iloc[0]
    pruning["multi_adds_saved_G"] = pruning.multi_adds_G.iloc[0] - pruning.multi_adds_G
    return pruning


def fuse_check(trained: torch.nn.Module, dataset: str = "Set5", repeats: int = 5) -> pd.DataFrame:
    """``trained`` against ``trained.fuse()`` on the first image of ``dataset``: the largest float
    difference, the share of equal 8-bit pixels, median forward times and Multi-Adds."""
    fused = trained.fuse()
    lr = to_tensor(BenchmarkSet(dataset, SCALE, max_images=1)[0].lr)
    with torch.inference_mode():
        a, b = trained(lr), fused(lr)
    same8 = (to_uint8(a.clamp(0, 1)) == to_uint8(b.clamp(0, 1))).mean()
    t_plain, t_fused = (time_forward(m, tuple(lr.shape[-2:]), repeats=repeats, warmup=1) for m in (trained, fused))
    return pd.DataFrame([{"lr_size": "x".join(map(str, lr.shape[-2:])), "max_abs_diff": (a - b).abs().max().item(),
                          "same_8bit_pixels": same8, "seconds_plain": t_plain, "seconds_fused": t_fused,
                          "speedup": t_plain / t_fused, "multi_adds_plain_G": multi_adds(trained, SCALE) / 1e9,
                          "multi_adds_fused_G": multi_adds(fused, SCALE) / 1e9}])
