"""Seed 000's improved AWSRN (``000_3bce1d50131be8ec.txt``), module by module: notebook 03 as functions.

- :func:`module_costs` and :func:`module_shapes`: what each switch of
  :class:`srlib.models.awsrn_improved.ImprovedAWSRN` adds (parameters, Multi-Adds at a 1280x720
  output, forward time) and the shapes its new submodules see;
- the study ``03-ablation`` (:func:`ablation_study`): the baseline, each module alone and all of
  them, every arm started from notebook 02's trained baseline and trained the same number of
  steps (equal budget), a second seed for the baseline and the all-on arm;
- :func:`ablation_table`: one row per arm with its deltas against the baseline and their noise;
- :func:`paper_vs_ours` and :func:`claims`: seed 000's Tables I/II beside our deltas, and whether
  its gains are reached, approached or not (:data:`VERDICT_RULE`);
- :func:`claims_in_context`: seed 000's claimed absolute values beside published rows of much
  larger models.

In ``quick`` the ablation runs on AWSRN-S x4 and fine-tunes from notebook 02's ``best.pt``; in
``full`` it runs on AWSRN (the paper's baseline), from scratch, at x4 and x8.
"""
from __future__ import annotations

import math

import pandas as pd
import torch

from ..data.datasets import BenchmarkSet, benchmark_item
from ..complexity import count_params, multi_adds, time_forward
from ..models import build_model
from ..models.tracing import trace_shapes
from ..profiles import get_profile
from ..reference import published
from .baseline import MODEL as BASELINE_02
from .core import Arm, RunRef, Study
from .registry import register_study
from .stats import delta_sentences, signed_db

#: the five switches of ImprovedAWSRN, in the order seed 000 describes its modules
SWITCHES = ("gap_awru", "lrfu_fusion", "awms_plus", "dsconv_head", "nonlocal_ca")
MODULES = {
    "gap_awru": "AWRU with global-context weights (Eq. 1-2)",
    "lrfu_fusion": "LRFU: hierarchical integration with focus weights",
    "awms_plus": "AWMS with richer, input-weighted scales",
    "dsconv_head": "depthwise-separable feature extraction with attention (Eq. 3-6)",
    "nonlocal_ca": "non-local + channel-attention fusion (Eq. 7-12)",
}
SEED000 = "seed 000 (Dong et al. 2025) Table I/II"
#: how :func:`claims` reads a claimed gain against our measured delta
VERDICT_RULE = ("reached: our delta is at least the claimed gain; approached: at least half of it and above the "
                "noise; not reached: otherwise")


def switches(on=SWITCHES) -> dict:
    """``{switch: bool}`` for all five switches, True for those in ``on``."""
    unknown = sorted(set(on) - set(SWITCHES))
    if unknown:
        raise ValueError(f"unknown switches {unknown}; the switches are {', '.join(SWITCHES)}")
    return {k: k in on for k in SWITCHES}


def models_for(profile) -> tuple[str, str]:
    """(baseline, improved) registered names: AWSRN-S in ``smoke``/``quick``, AWSRN in ``full``."""
    return ("awsrn", "awsrn-improved") if get_profile(profile).name == "full" else ("awsrn-s", "awsrn-s-improved")


def _row(label: str, model: torch.nn.Module, scale: int, base: dict | None, out_hw, time_hw) -> dict:
    row = {"arm": label, "params": count_params(model), "multi_adds_G": multi_adds(model, scale, out_hw) / 1e9,
           "forward_ms": 1e3 * time_forward(model.eval(), time_hw, repeats=3, warmup=1) if time_hw else math.nan}
    if base:
        row.update(params_added=row["params"] - base["params"],
                   multi_adds_added_G=row["multi_adds_G"] - base["multi_adds_G"],
                   forward_ratio=row["forward_ms"] / base["forward_ms"])
    return row


def module_costs(profile, scale: int = 4, out_hw=(720, 1280), time_hw=(64, 64)) -> pd.DataFrame:
    """Parameters, Multi-Adds (1280x720 output) and forward time (one ``time_hw`` LR input, this
    machine's threads) of the baseline, each switch alone and all of them, with what each adds."""
    base_name, improved = models_for(profile)
    base = _row("baseline", build_model(base_name, scale), scale, None, out_hw, time_hw)
    rows = [{**base, "params_added": 0, "multi_adds_added_G": 0.0, "forward_ratio": 1.0}]
    for label, on in [*((k, (k,)) for k in SWITCHES), ("all-on", SWITCHES)]:
        model = build_model(improved, scale, **switches(on))
        rows.append({**_row(label, model, scale, base, out_hw, time_hw), "module": MODULES.get(label, "all five")})
    rows[0]["module"] = f"{base_name} (every switch off)"
    return pd.DataFrame(rows)[["arm", "module", "params", "params_added", "multi_adds_G", "multi_adds_added_G",
                               "forward_ms", "forward_ratio"]]


def module_shapes(switch: str, profile="quick", scale: int = 4, lr_hw=(12, 16)) -> pd.DataFrame:
    """The traced calls (forward hooks) of the submodules ``switch`` adds, on a (1, 3, *lr_hw) input:
    the rows of the one-switch model whose module name the baseline does not have."""
    base_name, improved = models_for(profile)
    x = torch.rand(1, 3, *lr_hw)
    known = {r["name"] for r in trace_shapes(build_model(base_name, scale), x)}
    rows = [r for r in trace_shapes(build_model(improved, scale, **switches((switch,))), x)
            if r["name"] not in known and r["name"] != "(model)"]
    return pd.DataFrame(rows, columns=["name", "module", "input", "output", "params"])


def _finetune_lr(p) -> float:
    """The learning rate notebook 02's baseline ended at (its step schedule at its last step)."""
    steps = p.budget("02").steps or p.steps
    return p.lr * 0.5 ** (steps // p.lr_step) if p.lr_step else p.lr


@register_study("03-ablation")
def ablation_study(profile) -> Study:
    """Baseline, +each module, all on, at equal budget (``budget('03')``: steps, seeds).

    ``smoke``/``quick``: AWSRN-S x4; every arm starts from notebook 02's ``best.pt`` (the study
    ``02-awsrn-s``; new parts at their initialisation) and trains ``steps`` at the learning rate
    02 ended at, constant; evaluated on the first ``images`` images of each benchmark (None: the
    profile's ``eval_max_images``). ``full``: AWSRN from scratch with the profile's recipe, x4 and x8
    (x8 is AWSRN-only: AWSRN-S is registered for x2-x4).
    """
    p = get_profile(profile)
    b = p.budget("03")
    base_name, improved = models_for(p)
    seeds = [p.seed + i for i in range(max(1, b.seeds))]
    arms = []
    for scale in ((4, 8) if p.name == "full" else (4,)):
        sfx = "" if scale == 4 else f"-x{scale}"
        if p.name == "full":
            init, train = None, ({"steps": b.steps} if b.steps else {})
        else:
            init = RunRef("02-awsrn-s", f"{BASELINE_02}-x4")
            train = {"steps": b.steps or p.steps, "lr": _finetune_lr(p), "schedule": "constant"}
        arms += [Arm(f"baseline{sfx}", base_name, scale, train=train, init=init, seed=s) for s in seeds]
        arms += [Arm(f"{k}{sfx}", improved, scale, model_kwargs=switches((k,)), train=train, init=init)
                 for k in SWITCHES]
        arms += [Arm(f"all-on{sfx}", improved, scale, model_kwargs=switches(), train=train, init=init, seed=s)
                 for s in seeds]
    if b.arms:
        arms = arms[: b.arms]
    return Study("03-ablation", p, arms, baseline="baseline", max_images=b.images or p.eval_max_images,
                 description="notebook 03: seed 000's modules alone and together, equal budget")


def ablation_table(study: Study, baseline: str = "baseline") -> pd.DataFrame:
    """One row per (arm, dataset, scale): seed-mean PSNR/SSIM, params, Multi-Adds, delta vs the
    baseline with its paired-bootstrap interval, seed spread and ``within_noise``."""
    t = study.table()
    means = (t.groupby(["arm", "dataset", "scale"], sort=False)
             .agg(seeds=("seed", "nunique"), psnr=("psnr", "mean"), ssim=("ssim", "mean"), params=("params", "first"),
                  multi_adds_G=("multi_adds_G", "first"), steps=("steps", "first"),
                  train_seconds=("train_seconds", "mean"), precision=("precision", "first"))
             .reset_index())
    bases = means[means.arm == baseline][["dataset", "scale", "ssim"]].rename(columns={"ssim": "ssim_baseline"})
    cmp = study.compare(baseline)[["arm", "dataset", "scale", "delta", "ci_low", "ci_high", "seed_spread",
                                   "within_noise"]]
    out = means.merge(bases, on=["dataset", "scale"], how="left").merge(cmp, on=["arm", "dataset", "scale"],
                                                                        how="left")
    out["ssim_delta"] = out.ssim - out.ssim_baseline
    out.loc[out.arm == baseline, "delta"] = 0.0
    out.attrs.update(t.attrs)
    return out.drop(columns="ssim_baseline")


def seed000_rows() -> pd.DataFrame:
    """Seed 000's Tables I/II: AWSRN (as it cites it) and the improved model, with the claimed gains."""
    pub = published()
    pub = pub[pub.source == SEED000]
    wide = pub.pivot_table(index=["dataset", "scale"], columns="model", values=["psnr", "ssim"])
    out = pd.DataFrame({
        "psnr_awsrn_paper": wide[("psnr", "awsrn (as cited by seed 000)")],
        "psnr_improved_paper": wide[("psnr", "improved awsrn (claimed)")],
        "ssim_awsrn_paper": wide[("ssim", "awsrn (as cited by seed 000)")],
        "ssim_improved_paper": wide[("ssim", "improved awsrn (claimed)")],
    }).reset_index()
    out["claimed_delta"] = out.psnr_improved_paper - out.psnr_awsrn_paper
    out["claimed_ssim_delta"] = out.ssim_improved_paper - out.ssim_awsrn_paper
    return out


def paper_vs_ours(ablation: pd.DataFrame, arm: str = "all-on") -> pd.DataFrame:
    """Seed 000's Tables I/II beside our baseline and ``arm`` (seed means) on the same
    (dataset, scale); rows of the paper we did not run (x8 outside ``full``) show NaN."""
    ours = ablation[ablation.arm.str.replace(r"-x\d+$", "", regex=True).isin(["baseline", arm])].copy()
    ours["which"] = ours.arm.str.replace(r"-x\d+$", "", regex=True)
    wide = ours.pivot_table(index=["dataset", "scale"], columns="which", values=["psnr", "ssim"])
    mine = pd.DataFrame({"psnr_baseline": wide.get(("psnr", "baseline")), "psnr_improved": wide.get(("psnr", arm)),
                         "ssim_baseline": wide.get(("ssim", "baseline")),
                         "ssim_improved": wide.get(("ssim", arm))}).reset_index()
    out = seed000_rows().merge(mine, on=["dataset", "scale"], how="left")
    out["our_delta"] = out.psnr_improved - out.psnr_baseline
    out["our_ssim_delta"] = out.ssim_improved - out.ssim_baseline
    noise = ours[ours.which == arm][["dataset", "scale", "ci_low", "ci_high", "within_noise"]]
    return out.merge(noise, on=["dataset", "scale"], how="left")


def verdict(claimed: float, ours: float, ci_low: float) -> str:
    """:data:`VERDICT_RULE` for one claimed gain; ``not measured`` when ours is NaN."""
    if ours != ours:
        return "not measured"
    if ours >= claimed:
        return "reached"
    above_noise = ci_low == ci_low and ci_low > 0
    return "approached" if ours >= claimed / 2 and above_noise else "not reached"


def claims(paper: pd.DataFrame) -> pd.DataFrame:
    """Each of seed 000's claimed PSNR gains with our delta, the share of it we measured and a verdict."""
    out = paper[["dataset", "scale", "claimed_delta", "our_delta", "ci_low", "ci_high", "within_noise"]].copy()
    out["share_of_claim"] = out.our_delta / out.claimed_delta
    out["verdict"] = [verdict(c, o, lo) for c, o, lo in zip(out.claimed_delta, out.our_delta, out.ci_low)]
    return out


def claims_in_context(models=("rcan", "swinir-light", "swinir")) -> pd.DataFrame:
    """Seed 000's claimed absolute x4 values beside published rows of much larger models
    (:mod:`srlib.reference`; each row names its source); ``claimed_minus_model`` > 0 means the
    claimed lightweight model would be above that model."""
    claimed = seed000_rows()
    claimed = claimed[claimed.scale == 4][["dataset", "scale", "psnr_improved_paper", "ssim_improved_paper"]]
    pub = published()
    pub = pub[pub.model.isin(models) & (pub.scale == 4)][["model", "dataset", "psnr", "ssim", "source", "note"]]
    out = claimed.merge(pub, on="dataset")
    out["claimed_minus_model"] = out.psnr_improved_paper - out.psnr
    return out[["dataset", "scale", "psnr_improved_paper", "model", "psnr", "claimed_minus_model", "ssim", "source",
                "note"]]


#: the image of the Figure 4 rebuild (seed 000 does not name its own): Urban100 img_012, the
#: image SwinIR's Figure 4 also shows; profiles that do not evaluate Urban100 use their first image
FIGURE4_IMAGE = ("Urban100", "img_012")


def figure4_item(profile, scale: int = 4):
    """The benchmark item of the Figure 4 rebuild (:data:`FIGURE4_IMAGE`)."""
    p = get_profile(profile)
    ds, name = FIGURE4_IMAGE
    if ds not in p.eval_datasets:
        return BenchmarkSet(p.eval_datasets[0], scale, max_images=1)[0]
    return benchmark_item(ds, name, scale)


def figure4_models(study: Study, improved: str = "all-on") -> dict:
    """``{label: model}``: the baseline and the improved arm of ``study``, trained (profile seed);
    an arm whose run did not finish (e.g. diverged) is left out (``study.status()`` says why)."""
    out = {}
    for label, arm in (("baseline", "baseline"), (f"improved ({improved})", improved)):
        if study.state(study.arm(arm))["state"] == "finished":
            out[label] = study.load_model(arm)
    return out


def ablation_sentences(ablation: pd.DataFrame, baseline: str = "baseline") -> list[str]:
    """One sentence per arm of :func:`ablation_table` (:func:`srlib.studies.stats.delta_sentences`)."""
    return delta_sentences(ablation, baseline)


def claims_sentences(verdicts: pd.DataFrame) -> list[str]:
    """One sentence per claimed gain of seed 000, computed from :func:`claims`."""
    return [f"{r.dataset} x{r.scale}: claimed {signed_db(r.claimed_delta)}, ours {signed_db(r.our_delta)}"
            + ("" if r.our_delta != r.our_delta else f" ({r.share_of_claim:.0%} of the claim)") + f": {r.verdict}"
            for r in verdicts.itertuples()]


def context_sentences(ctx: pd.DataFrame) -> list[str]:
    """Where seed 000's claimed absolute values sit among the published larger models."""
    out = []
    for ds, g in ctx.groupby("dataset", sort=False):
        above = g[g.claimed_minus_model > 0]
        out.append(f"{ds} x4: the claimed {g.psnr_improved_paper.iloc[0]:.2f} dB is above "
                   f"{len(above)} of the {len(g)} published models listed"
                   + (f" ({', '.join(f'{m} {p:.2f}' for m, p in zip(above.model, above.psnr))})" if len(above) else ""))
    return out
