"""Seed 000's hybrid loss and Multi-Phase Training Scheme (``000_3bce1d50131be8ec.txt``): notebook 04 as functions.

- the study ``04-hybrid-mpts`` (:func:`hybrid_study`): AWSRN-S x4 from scratch, every arm the same
  number of generator steps: ``baseline`` (L1, step decay), ``mpts`` (curriculum + cosine warm
  restarts + FASS, L1), ``hybrid`` (a pixel phase, then Eq. 15's hybrid phase, step decay),
  ``hybrid+mpts`` (both) and ``package`` (seed 000's improved AWSRN-S, every switch on, with the
  hybrid loss and MPTS: the arm its Tables I/II describe);
- :func:`arms_table`, :func:`phase_table`, :func:`lr_curves` and :func:`eq13_check`: what each arm
  trains with, phase by phase (the curriculum's patch sizes, the hybrid phase), and its learning
  rate at every step, read from the configurations the trainer runs;
- :func:`fass_draws` and :func:`fass_rows`: the patches FASS picks beside uniform sampling, with
  their scores (:mod:`srlib.data.patches`);
- :func:`hybrid_table`: PSNR/SSIM (LPIPS where :func:`lpips_table` could measure it) per arm and
  benchmark, deltas against the baseline with their noise, seconds per step; a diverged arm keeps
  its rows with its state and no metrics; :func:`sentences` and :func:`direction_verdict` read it;
- :func:`crop_models`: the finished arms whose textures the crops compare.

Readings chosen (seed 000 gives no numbers for any of these):

- **Arms from scratch, equal generator steps.** A curriculum needs a fresh start, so every arm
  does; what differs is what a step costs, which :func:`step_costs` measures from each run's log
  (the hybrid phase separately).
- **Schedules.** Step decay halves every ``steps // 5`` (the AWSRN recipe's 200 of 1000 epochs,
  :func:`srlib.studies.imfm.schedules`); MPTS's warm restarts are :func:`srlib.train.mpts.mpts`'s
  (four equal periods, ``eta_min = 1e-7``).
- **Hybrid arm (ESRGAN's two phases).** The first ``pixel_fraction`` of the steps train on L1
  alone; the rest on Eq. 15, ESRGAN's weights (L1 1e-2, perceptual 1, adversarial 5e-3), RaGAN,
  VGG19 features with L1 distance, a fresh Adam at half the profile's learning rate (ESRGAN: 2e-4
  then 1e-4) for both networks, one discriminator step per generator step. The PSNR phase of
  ESRGAN is a whole pre-training; here it is a share of one budget.
- **Bounded in ``smoke``/``quick``** (:data:`RECIPES`): the hybrid phase is the last third of the
  steps, VGG19 is cut after ``relu2_2`` (``full``: ``conv5_4``), the discriminator has ``nf=32``
  (``full``: 64), and the hybrid phase trains on 8 LR patches of 24x24 (HR 96x96) instead of 16
  of 32x32: measured on this 2-core CPU (bf16), that step costs about 1.6 baseline steps instead
  of about 6. The arms are evaluated on the first ``budget('04').images`` images of each
  benchmark (10 in ``quick``), like notebook 05's.
- **VGG weights.** :func:`vgg_weights`: ImageNet's file when it is on disk; in ``smoke``/``quick``
  without it, seeded random features, and every table and figure then says
  :data:`~srlib.losses.perceptual.RANDOM_VGG_NOTE` (:func:`vgg_note`). Other profiles ask for the
  file and the run refuses to start without it (:class:`~srlib.losses.perceptual.VGGWeightsNotFound`).
- **Which weights are evaluated.** Every arm is evaluated at its final weights (no validation
  during training, so no ``best.pt``): selecting by validation PSNR would hand a hybrid arm back
  its pixel phase, which is what ESRGAN's practice of taking the last GAN weights avoids.
- **Divergence.** An arm whose loss or gradient turns non-finite stops; its ``run.json`` says
  ``diverged at step k`` and keeps the last finite checkpoint; the study goes on and the tables
  show the arm with its state and no metrics (:func:`sentences` says so).
- **LPIPS** (:func:`lpips_table`) is measured where its backbone file is on disk, on Set5 and
  Set14 only (a second pass of every model over the images); otherwise the table says it was not
  measured and why.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data.colour import to_tensor, to_uint8
from ..data.datasets import BenchmarkSet, PatchDataset
from ..data.patches import score_map
from ..evaluate import upscale
from ..losses import hybrid_loss, loss_terms
from ..losses.adversarial import ESRGAN_WEIGHTS
from ..losses.perceptual import RANDOM_OK_PROFILES, RANDOM_VGG_NOTE, lpips_distance, resolve_vgg_weights
from ..profiles import get_profile
from ..train.mpts import cosine_restart_lr, fass_sampling, lr_curve, mpts
from ..train.recipes import train_images
from .core import Arm, Study
from .imfm import schedules
from .improved import models_for, switches
from .registry import register_study
from .stats import signed_db

SCALE = 4
#: the arms, in the order the tables show them, with what each adds to the baseline
ARMS = {
    "baseline": "AWSRN-S (full: AWSRN), L1, step decay",
    "mpts": "+ MPTS: curriculum, cosine warm restarts, FASS (L1)",
    "hybrid": "+ hybrid loss: a pixel phase, then L1 + perceptual + adversarial (step decay)",
    "hybrid+mpts": "+ hybrid loss and MPTS",
    "package": "seed 000's package: its improved model (all five switches) + hybrid loss + MPTS",
}
#: which way each arm is expected to move PSNR against the baseline, and why
EXPECTED = {
    "mpts": ("higher", "seed 000 presents MPTS as improving convergence and detail"),
    "hybrid": ("lower", "perceptual and adversarial terms trade PSNR for texture (Blau & Michaeli 2018; ESRGAN)"),
    "hybrid+mpts": ("lower", "the hybrid loss's trade-off, whatever MPTS adds"),
    "package": ("higher", "seed 000's Tables I/II claim higher PSNR for it, although its hybrid loss alone "
                          "should lower PSNR"),
}
#: how :func:`direction_verdict` reads an arm's deltas
VERDICT_RULE = ("as expected: the mean delta has the expected sign and the paired interval excludes 0 that way on "
                "at least one benchmark; against the expectation: the mean delta has the other sign and the interval "
                "excludes 0 that way on at least one benchmark; within the noise: otherwise; not measured: no metrics")


@dataclass(frozen=True)
class HybridRecipe:
    """The hybrid arm's second phase (see the module docstring).

    Args:
        pixel_fraction: the share of the steps trained on L1 alone before the hybrid phase.
        lr_patch, batch_size: the hybrid phase's LR patch and batch (None: the profile's).
        layers: VGG19 layers and weights of the perceptual term.
        nf: the discriminator's first-stage width.
        lr_factor: the hybrid phase's learning rate (both networks) over the profile's.
        weights: pixel / perceptual / adversarial weights of Eq. 15.
        gan_type, criterion: the adversarial variant and the perceptual distance.
    """

    pixel_fraction: float
    lr_patch: int | None
    batch_size: int | None
    layers: dict
    nf: int
    lr_factor: float = 0.5
    weights: dict = field(default_factory=lambda: dict(ESRGAN_WEIGHTS))
    gan_type: str = "ragan"
    criterion: str = "l1"


#: per profile; a profile not named here (a GPU profile) takes ``full``'s
RECIPES = {
    "smoke": HybridRecipe(2 / 3, 12, 2, {"relu2_2": 1.0}, 8),
    "quick": HybridRecipe(2 / 3, 24, 8, {"relu2_2": 1.0}, 32),
    "full": HybridRecipe(0.5, None, None, {"conv5_4": 1.0}, 64),
}


def recipe(profile) -> HybridRecipe:
    """The :class:`HybridRecipe` of ``profile``."""
    return RECIPES.get(get_profile(profile).name, RECIPES["full"])


def vgg_weights(profile) -> str:
    """``'imagenet'`` or ``'random'``: the file when on disk; ``smoke``/``quick`` without it take
    random features (:func:`~srlib.losses.perceptual.resolve_vgg_weights`); other profiles ask for
    the file, and their runs refuse to start without it (nothing is downloaded here)."""
    p = get_profile(profile)
    if p.name not in RANDOM_OK_PROFILES:
        return "imagenet"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the notebook prints vgg_note instead
        return resolve_vgg_weights(p)


def vgg_note(profile) -> str:
    """:data:`RANDOM_VGG_NOTE` when ``profile`` trains on random VGG features, else ``''``."""
    return RANDOM_VGG_NOTE if vgg_weights(profile) == "random" else ""


def pixel_steps(profile, steps: int) -> int:
    """Steps of the pixel phase of a hybrid arm of ``steps`` steps (at least 1 step each side)."""
    return min(steps - 1, max(1, round(steps * recipe(profile).pixel_fraction)))


def hybrid_train(profile, steps: int) -> dict:
    """TrainConfig overrides of the hybrid arm: step decay, an L1 phase, then Eq. 15's phase."""
    p, r = get_profile(profile), recipe(profile)
    loss, d_loss = hybrid_loss(**{k: r.weights[k] for k in ("pixel", "perceptual", "adversarial")},
                               gan_type=r.gan_type, layers=r.layers, criterion=r.criterion,
                               vgg_weights=vgg_weights(p))
    second = {"loss": loss, "d_loss": d_loss, "lr": p.lr * r.lr_factor}
    if r.batch_size is not None:
        second["batch_size"] = r.batch_size
    if r.lr_patch is not None:
        second["lr_patch"] = r.lr_patch
    return {"steps": steps, **schedules(steps)["step"], "discriminator": {"name": "vgg", "nf": r.nf},
            "phases": [{"steps": pixel_steps(p, steps), "loss": "l1"}, second]}


def arm_train(profile, name: str, steps: int) -> dict:
    """TrainConfig overrides of arm ``name`` (:data:`ARMS`); every arm is evaluated at its last weights."""
    p = get_profile(profile)
    if name not in ARMS:
        raise ValueError(f"unknown arm {name!r}; the arms are {', '.join(ARMS)}")
    base = hybrid_train(p, steps) if name in ("hybrid", "hybrid+mpts", "package") else \
        {"steps": steps, **schedules(steps)["step"]}
    if name in ("mpts", "hybrid+mpts", "package"):
        base = {**base, **mpts(base, lr_patch=p.lr_patch)}
    return {**base, "validate_every": 0}


@register_study("04-hybrid-mpts")
def hybrid_study(profile) -> Study:
    """The five arms of :data:`ARMS`, x4, from scratch, ``budget('04').steps`` generator steps each;
    the baseline and the package get ``budget('04').seeds`` seeds, the others one. AWSRN-S and
    its improved version in ``smoke``/``quick``, AWSRN and its improved version in ``full``;
    evaluated on the first ``budget('04').images`` images of each benchmark (None: the profile's
    ``eval_max_images``)."""
    p = get_profile(profile)
    b = p.budget("04")
    steps = b.steps or p.steps
    base_model, improved_model = models_for(p)
    seeds = [p.seed + i for i in range(max(1, b.seeds))]
    arms = []
    for name in ARMS:
        model, kw = (improved_model, switches()) if name == "package" else (base_model, {})
        for s in (seeds if name in ("baseline", "package") else seeds[:1]):
            arms.append(Arm(name, model, SCALE, model_kwargs=kw, train=arm_train(p, name, steps), seed=s))
    if b.arms:
        arms = arms[: b.arms]
    return Study("04-hybrid-mpts", p, arms, baseline="baseline", max_images=b.images or p.eval_max_images,
                 description="notebook 04: seed 000's hybrid loss and multi-phase training, equal generator steps")


# ---- what each arm trains with ------------------------------------------------------------
def _first(study: Study) -> list[Arm]:
    """One arm per name (the profile's seed where there are several)."""
    return [study.arm(n) for n in dict.fromkeys(a.name for a in study.arms)]


def _is_hybrid(loss) -> bool:
    return any(t in loss_terms(loss) for t in ("perceptual", "gan"))


def _loss_text(loss) -> str:
    return " + ".join(f"{w:g} {n}" if w != 1 else n for n, w in loss_terms(loss).items())


def phase_table(study: Study) -> pd.DataFrame:
    """One row per arm and training phase, as the trainer runs it: steps, LR and HR patch, batch,
    loss, learning rate at the phase's start, whether the optimiser carries on (a curriculum stage
    within a phase) and the sampling."""
    rows = []
    for a in _first(study):
        cfg = study.config(a)
        lrs = lr_curve(cfg)
        base_patch = study._p.lr_patch
        for ph in cfg.phase_plan():
            c = ph.config
            patch = ph.lr_patch or base_patch
            rows.append({"arm": a.name, "phase": ph.index, "start": ph.start, "end": ph.end, "steps": ph.steps,
                         "lr_patch": patch, "hr_patch": patch * a.scale, "batch_size": c.batch_size,
                         "loss": _loss_text(c.loss), "hybrid": _is_hybrid(c.loss), "lr_start": lrs[ph.start],
                         "schedule": c.schedule, "keeps_optimizer": ph.keep_optimizer,
                         "sampling": "uniform" if not c.sampling else
                         ("uniform" if c.sampling["rule"] == "uniform" else
                          f"FASS {c.sampling['rule']} {c.sampling['fraction']:g} by {c.sampling['score']}")})
    return pd.DataFrame(rows)


def arms_table(study: Study) -> pd.DataFrame:
    """One row per arm: model, seeds, what it adds, loss by phase, schedule, curriculum patch sizes,
    sampling, and the VGG features and discriminator of its hybrid phase."""
    phases = phase_table(study)
    note, r = vgg_note(study._p), recipe(study._p)
    vgg = f"VGG19 {', '.join(r.layers)} ({vgg_weights(study._p)} weights, {r.criterion.upper()})"
    rows = []
    for a in _first(study):
        ph = phases[phases.arm == a.name]
        cfg = study.config(a)
        hybrid = bool(ph.hybrid.any())
        rows.append({"arm": a.name, "model": a.model, "seeds": sum(x.name == a.name for x in study.arms),
                     "adds": ARMS[a.name], "loss": " -> ".join(dict.fromkeys(ph.loss)),
                     "schedule": cfg.schedule, "lr_patches": "/".join(str(v) for v in dict.fromkeys(ph.lr_patch)),
                     "sampling": " -> ".join(dict.fromkeys(ph.sampling)),
                     "hybrid_steps": int(ph.steps[ph.hybrid].sum()),
                     "vgg": vgg if hybrid else "",
                     "discriminator": (f"VGG-style, nf={cfg.discriminator['nf']}" if hybrid else ""),
                     "note": note if hybrid else ""})
    return pd.DataFrame(rows)


def lr_curves(study: Study) -> dict:
    """``{arm: [learning rate at step 0..steps-1]}`` as the trainer applies it (phases included),
    for the arms with distinct schedules (the package's equals ``hybrid+mpts``'s)."""
    out, seen = {}, []
    for a in _first(study):
        curve = lr_curve(study.config(a))
        if curve not in seen:
            seen.append(curve)
            out[f"{a.name} ({study.config(a).schedule})"] = curve
    return out


def eq13_check(study: Study, arm: str = "mpts", at=None) -> pd.DataFrame:
    """The ``arm``'s scheduled learning rate beside seed 003 Eq. 13 written out
    (:func:`~srlib.train.mpts.cosine_restart_lr`) at a few steps (default: the start, middle and
    end of the first two periods)."""
    cfg = study.config(study.arm(arm))
    curve = lr_curve(cfg)
    at = at or sorted({0, cfg.T_0 // 2, cfg.T_0 - 1, cfg.T_0, cfg.T_0 + cfg.T_0 // 2} & set(range(cfg.steps)))
    return pd.DataFrame([{"step": s, "lr_scheduler": curve[s],
                          "lr_eq13": cosine_restart_lr(s, cfg.lr, cfg.T_0, cfg.T_mult, cfg.eta_min)} for s in at])


# ---- FASS: which patches it picks -----------------------------------------------------------
def _position(ds: PatchDataset, i: int) -> tuple[int, int, int]:
    """``(pair, y, x)`` of sample ``i``: the draws :meth:`PatchDataset.__getitem__` makes."""
    rng = np.random.default_rng((ds.seed, int(i)))
    if ds.selection is not None:
        return ds.selection.draw(rng)
    k = int(rng.integers(len(ds.pairs)))
    lr = ds.pairs[k][1]
    return k, int(rng.integers(lr.shape[0] - ds.lr_patch + 1)), int(rng.integers(lr.shape[1] - ds.lr_patch + 1))


def fass_draws(profile, n: int = 8, seed: int = 0, lr_patch: int | None = None, images=None) -> pd.DataFrame:
    """The first ``n`` training patches FASS draws and the first ``n`` uniform sampling draws from
    the profile's training images (or ``images``; same seed, no augmentation), each with its score
    (bicubic MSE over the HR patch, :mod:`srlib.data.patches`) and whether FASS keeps it.

    Columns: ``rule, sample, pair, y, x, score, kept, patch`` (``patch``: the HR crop, uint8);
    ``attrs``: ``threshold`` (the lowest kept score), ``candidates``, ``kept`` and ``spec``.
    """
    p = get_profile(profile)
    images = train_images(p)[0] if images is None else images
    size = int(lr_patch or p.lr_patch)
    ds = PatchDataset(images, SCALE, lr_patch=size, length=n, seed=seed, augment=False, sampling=fass_sampling())
    sel, maps, rows = ds.selection, {}, []
    for rule, sampling in (("FASS", sel.spec), ("uniform", None)):
        ds.set_sampling(sampling)
        for i in range(n):
            k, y, x = _position(ds, i)
            hr, lr = ds.pairs[k]
            if id(hr) not in maps:
                maps[id(hr)] = score_map(hr, lr, SCALE, sel.spec["score"])
            score = float(maps[id(hr)][y: y + size, x: x + size].mean() / SCALE ** 2)
            rows.append({"rule": rule, "sample": i, "pair": k, "y": y, "x": x, "score": score,
                         "kept": score >= sel.threshold,
                         "patch": hr[y * SCALE: (y + size) * SCALE, x * SCALE: (x + size) * SCALE]})
    out = pd.DataFrame(rows)
    out.attrs.update(threshold=sel.threshold, candidates=len(sel), kept=int(sel.selected.size), spec=dict(sel.spec),
                     lr_patch=size)
    return out


def fass_rows(draws: pd.DataFrame) -> dict:
    """``{row title: [(HR patch, caption), ...]}`` of :func:`fass_draws` for
    :func:`srlib.viz.figures.patch_grid`; captions carry the score (x1e3)."""
    return {f"{rule} (mean score {g.score.mean() * 1e3:.2f})": [(r.patch, f"{r.score * 1e3:.2f}" + ("" if r.kept else " *"))
                                                                 for r in g.itertuples()]
            for rule, g in draws.groupby("rule", sort=False)}


def fass_sentences(draws: pd.DataFrame) -> list[str]:
    """What the FASS draws show, computed from :func:`fass_draws`."""
    a, f, u = draws.attrs, draws[draws.rule == "FASS"], draws[draws.rule == "uniform"]
    return [f"FASS keeps {a['kept']:,} of {a['candidates']:,} candidate {a['lr_patch']}x{a['lr_patch']} LR positions "
            f"({a['spec']['rule']} {a['spec']['fraction']:.0%} by {a['spec']['score']} error); the lowest kept score "
            f"is {a['threshold'] * 1e3:.3f} (x1e-3, MSE on [0, 1])",
            f"mean score of {len(f)} FASS draws {f.score.mean() * 1e3:.3f}, of {len(u)} uniform draws "
            f"{u.score.mean() * 1e3:.3f} (x1e-3); {int((~u.kept).sum())} of the uniform draws would not be kept "
            f"(marked * in the figure), {int((~f.kept).sum())} of the FASS draws"]


# ---- costs, LPIPS, the table ----------------------------------------------------------------
def _phase_seconds(log: pd.DataFrame, plan) -> dict:
    """``{'pixel': (steps, seconds), 'hybrid': (...)}`` from a run's log (rows at each phase end)."""
    out = {"pixel": [0, 0.0], "hybrid": [0, 0.0]}
    prev_step, prev_sec = 0, 0.0
    for ph in plan:
        rows = log[log.phase == ph.index]
        if rows.empty:
            continue
        end_step, end_sec = int(rows.step.max()), float(rows.seconds.max())
        kind = "hybrid" if _is_hybrid(ph.config.loss) else "pixel"
        out[kind][0] += end_step - prev_step
        out[kind][1] += end_sec - prev_sec
        prev_step, prev_sec = end_step, end_sec
    return out


def step_costs(study: Study) -> pd.DataFrame:
    """Per arm (seed means): steps trained, training seconds, seconds per generator step overall,
    in the pixel steps and in the hybrid steps, read from each run's ``run.json`` and ``log.csv``."""
    rows = []
    for a in study.arms:
        st = study.state(a)
        row = {"arm": a.name, "seed": a.seed, "steps": st["step"] or 0, "train_seconds": st["seconds"] or math.nan,
               "pixel_s_per_step": math.nan, "hybrid_s_per_step": math.nan}
        log = Path(st["run_dir"] or "") / "log.csv"
        if st["run_dir"] and log.is_file():
            kinds = _phase_seconds(pd.read_csv(log), study.config(a).phase_plan())
            for kind, (n, sec) in kinds.items():
                row[f"{kind}_s_per_step"] = sec / n if n else math.nan
        rows.append(row)
    df = pd.DataFrame(rows)
    df["s_per_step"] = df.train_seconds / df.steps.where(df.steps > 0)
    return (df.groupby("arm", sort=False)[["steps", "train_seconds", "s_per_step", "pixel_s_per_step",
                                          "hybrid_s_per_step"]].mean().reset_index())


def lpips_table(study: Study, datasets=("Set5", "Set14"), net: str = "alex") -> tuple[pd.DataFrame | None, str]:
    """``(table, '')`` of mean LPIPS per finished arm (profile seed) on ``datasets`` (those the
    study evaluates), SR quantised to 8 bits as for PSNR; ``(None, why)`` when LPIPS cannot be
    measured here (:func:`~srlib.losses.perceptual.lpips_distance` never downloads)."""
    probe = torch.zeros(1, 3, 64, 64)
    value, why = lpips_distance(probe, probe, net)
    if value is None:
        return None, why
    rows = []
    for a in _first(study):
        if study.state(a)["state"] != "finished":
            continue
        model = study.load_model(a.name, a.seed)
        for ds in [d for d in datasets if d in study.datasets]:
            items = BenchmarkSet(ds, a.scale, max_images=study.max_images)
            vals = [lpips_distance(to_tensor(to_uint8(upscale(model, it.lr))), to_tensor(it.hr), net)[0] for it in items]
            rows.append({"arm": a.name, "dataset": items.name, "scale": a.scale, "lpips": float(np.mean(vals))})
    return pd.DataFrame(rows), ""


def assemble(table: pd.DataFrame, cmp: pd.DataFrame, costs: pd.DataFrame, lpips: pd.DataFrame | None = None,
             notes: dict | None = None, baseline: str = "baseline") -> pd.DataFrame:
    """The notebook's table from :meth:`Study.table`, :meth:`Study.compare`, :func:`step_costs` and
    :func:`lpips_table`: one row per (arm, dataset, scale), arms that did not finish (diverged)
    kept with their status and NaN metrics; ``notes``: ``{arm: note}`` for a ``note`` column."""
    status = table.groupby("arm", sort=False).status.agg(lambda s: "; ".join(dict.fromkeys(map(str, s))))
    means = (table.groupby(["arm", "dataset", "scale"], sort=False)
             .agg(seeds=("seed", "nunique"), psnr=("psnr", "mean"), ssim=("ssim", "mean"), params=("params", "first"))
             .reset_index())
    means["status"] = means.arm.map(status)
    base = means[means.arm == baseline][["dataset", "scale", "ssim"]].rename(columns={"ssim": "ssim_baseline"})
    keep = ["arm", "dataset", "scale", "delta", "ci_low", "ci_high", "seed_spread", "within_noise"]
    out = (means.merge(base, on=["dataset", "scale"], how="left")
           .merge(cmp[keep] if len(cmp) else pd.DataFrame(columns=keep), on=["arm", "dataset", "scale"], how="left"))
    out["ssim_delta"] = out.ssim - out.ssim_baseline
    out.loc[(out.arm == baseline) & out.psnr.notna(), "delta"] = 0.0
    out["lpips"] = math.nan
    if lpips is not None and len(lpips):
        out = out.drop(columns="lpips").merge(lpips, on=["arm", "dataset", "scale"], how="left")
    out = out.merge(costs[["arm", "s_per_step", "hybrid_s_per_step"]], on="arm", how="left")
    cols = ["arm", "dataset", "scale", "seeds", "status", "psnr", "ssim", "lpips", "delta", "ci_low", "ci_high",
            "seed_spread", "within_noise", "ssim_delta", "params", "s_per_step", "hybrid_s_per_step"]
    out = out[cols].assign(note=out.arm.map(lambda a: (notes or {}).get(a, "")))
    out.attrs.update(table.attrs)
    return out


def hybrid_table(study: Study, lpips: pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`assemble` of the study (see there); ``lpips`` from :func:`lpips_table`; the arms that
    train with the perceptual term carry :func:`vgg_note` in ``note``."""
    arms = arms_table(study)
    notes = dict(zip(arms.arm, arms.note))
    return assemble(study.table(), study.compare("baseline"), step_costs(study), lpips, notes)


def table_notes(profile, lpips_note: str = "") -> dict:
    """Provenance lines every table of notebook 04 carries: the VGG19 weights of its perceptual
    term (:data:`~srlib.losses.perceptual.RANDOM_VGG_NOTE` when random) and whether LPIPS was measured."""
    note = vgg_note(profile)
    return {"note": note or "perceptual term on ImageNet VGG19 features (vgg19-dcbb9e9d.pth)",
            "lpips": lpips_note or "measured (lpips package, alex backbone)",
            "hybrid_recipe": recipe_dict(profile)}


# ---- sentences --------------------------------------------------------------------------------
def direction_verdict(rows: pd.DataFrame, expected: str) -> str:
    """:data:`VERDICT_RULE` over one arm's rows (``delta, ci_low, ci_high``, one per benchmark)."""
    g = rows[rows.delta.notna()]
    if g.empty:
        return "not measured"
    sign = "lower" if g.delta.mean() < 0 else "higher"
    down, up = int((g.ci_high < 0).sum()), int((g.ci_low > 0).sum())
    decisive = down if sign == "lower" else up
    if not decisive:
        return "within the noise"
    return "as expected" if sign == expected else "against the expectation"


def sentences(table: pd.DataFrame, note: str = "", lpips_note: str = "", baseline: str = "baseline") -> list[str]:
    """One sentence per arm of :func:`assemble`'s table against ``baseline``: its mean PSNR and SSIM
    deltas, on how many benchmarks the interval lies above or below 0, the expected direction
    and :func:`direction_verdict`, its cost per step; a diverged arm's state instead; then
    the VGG and LPIPS notes."""
    out = []
    base = table[table.arm == baseline]
    base_cost = base.s_per_step.iloc[0] if len(base) else math.nan
    if base.psnr.isna().all():
        out.append(f"{baseline}: {base.status.iloc[0] if len(base) else 'missing'}; no deltas can be computed")
    for arm, g in table[table.arm != baseline].groupby("arm", sort=False):
        status = str(g.status.iloc[0])
        cost = g.s_per_step.iloc[0]
        cost_txt = ("" if cost != cost else f"; {cost:.2f} s per step ({cost / base_cost:.1f}x the baseline's)"
                    if base_cost == base_cost and base_cost > 0 else f"; {cost:.2f} s per step")
        if g.psnr.isna().all():
            out.append(f"{arm}: {status}: no metrics (the run keeps its last finite checkpoint){cost_txt}")
            continue
        expected, why = EXPECTED.get(arm, ("higher", ""))
        up, down = int((g.ci_low > 0).sum()), int((g.ci_high < 0).sum())
        out.append(f"{arm}: PSNR {signed_db(g.delta.mean())}, SSIM {g.ssim_delta.mean():+.4f} on average over "
                   f"{int(g.delta.notna().sum())} benchmark(s); interval above 0 on {up}, below 0 on {down}; expected "
                   f"{expected} ({why}): {direction_verdict(g, expected)}{cost_txt}")
        if g.lpips.notna().any() and base.lpips.notna().any():
            d = (g.set_index("dataset").lpips - base.set_index("dataset").lpips).dropna()
            out.append(f"{arm}: LPIPS {d.mean():+.4f} against the baseline over {len(d)} benchmark(s) (lower is "
                       "perceptually closer)")
    if note:
        out.append(f"perceptual term: {note}")
    if lpips_note:
        out.append(lpips_note)
    return out


def crop_models(study: Study, arms=("baseline", "hybrid", "package")) -> dict:
    """``{label: trained model}`` of ``arms`` that finished (a diverged arm is left out)."""
    return {n: study.load_model(n) for n in arms if study.state(study.arm(n))["state"] == "finished"}


def run_states(study: Study) -> list[str]:
    """One line per arm that did not finish (diverged, partial, failed), from :meth:`Study.status`."""
    st = study.status()
    return [f"{r.arm} (seed {r.seed}): {r.state}" for r in st.itertuples() if r.state != "finished"]


def recipe_dict(profile) -> dict:
    """:func:`recipe` as a plain dict (for provenance)."""
    return asdict(recipe(profile))

