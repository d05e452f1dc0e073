"""MPTS, the Multi-Phase Training Scheme of seed 000, as :class:`TrainConfig` overrides.

Seed 000 (Dong et al. 2025): "(1) A hierarchical curriculum learning approach that incrementally
processes images from reduced to full resolution, enhancing detail learning [8]; (2) An adaptive
learning rate mechanism incorporating cosine annealing with warm restarts for optimized
convergence; (3) A Feature-Adaptive Sample Selection (FASS) module that prioritizes
high-information-content samples based on feature distribution analysis [9]." Each part is a
switch of :func:`mpts`, which returns a plain dict of TrainConfig fields (a study arm's
``train`` overrides, hashable). The two-phase pixel-then-hybrid recipe (ESRGAN) belongs to the
hybrid-loss arm, not to MPTS; :func:`mpts` splits such phases where the curriculum needs it.

Readings chosen:

- Curriculum (1): the LR training patch grows over ``stages`` equal-length phases from
  ``start * lr_patch`` to ``lr_patch`` in equal steps (3 stages from half size: 24, 36, 48 for
  ``full``'s 48), batch size fixed, so a step costs more as the patch grows. ProSR (Wang et al.
  2018) grows the *scale* of a progressive network; a growing patch is the reading that fits a
  single-scale AWSRN ("from reduced to full resolution"). Only the patch changes: each stage
  after the first sets ``keep_optimizer`` so Adam's moments and the LR schedule run on across
  stages (a fresh optimiser at each growth would be a fourth, unasked-for change).
- Warm restarts (2): torch's ``CosineAnnealingWarmRestarts`` per iteration, which is seed 003
  Eq. 13: ``eta_t = eta_min + (eta_max - eta_min)(1 + cos(pi T_cur / T_i)) / 2``, ``T_cur``
  iterations since the last restart, ``T_i`` the current period (:func:`cosine_restart_lr`
  writes it out). ``cycles=4`` equal periods (``T_mult=1``): seed 003 restarts every 250 of
  its 1000 epochs; ``eta_min=1e-7`` (BasicSR's cosine-restart configs; seed 003 names none).
- FASS (3): :mod:`srlib.data.patches` (bicubic-error score, keep the top half, SamplingAug's
  rule); see there for why.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import torch

from ..data.patches import FASS_DEFAULTS, normalize_sampling
from .config import TrainConfig
from .trainer import build_scheduler

SCHEDULE_KEYS = ("schedule", "step_size", "gamma", "T_0", "T_mult", "eta_min")
CYCLES = 4  # seed 003: the learning rate restarts every 250 of 1000 epochs
ETA_MIN = 1e-7


def curriculum_sizes(lr_patch: int, stages: int = 3, start: float = 0.5) -> list[int]:
    """LR patch sizes from ``round(start * lr_patch)`` to ``lr_patch`` in ``stages`` equal steps."""
    if int(lr_patch) < 1 or int(stages) < 1 or not 0 < start <= 1:
        raise ValueError(f"curriculum: lr_patch >= 1, stages >= 1 and start in (0, 1] are needed, got "
                         f"lr_patch={lr_patch!r}, stages={stages!r}, start={start!r}")
    if stages == 1:
        return [int(lr_patch)]
    return [max(1, round(lr_patch * (start + (1 - start) * k / (stages - 1)))) for k in range(stages)]


def curriculum_steps(steps: int, stages: int = 3) -> list[int]:
    """``steps`` split into ``stages`` phases: ``steps // stages`` each, the rest to the last."""
    if steps < stages:
        raise ValueError(f"curriculum: {stages} stages need at least {stages} steps, got {steps}")
    base = steps // stages
    return [base] * (stages - 1) + [steps - base * (stages - 1)]


def curriculum_phases(config: TrainConfig, lr_patch: int, stages: int = 3, start: float = 0.5) -> list[dict]:
    """``config``'s phases (one if it has none) split at the curriculum's boundaries, each piece
    with its stage's ``lr_patch`` (at most the phase's own ``lr_patch`` where it sets one); a
    piece that continues a phase keeps its optimiser (``keep_optimizer``)."""
    sizes, lengths = curriculum_sizes(lr_patch, stages, start), curriculum_steps(config.steps, stages)
    stage_starts = [sum(lengths[:k]) for k in range(stages)]
    plan = config.phase_plan()
    raw = [dict(p) for p in config.phases] if config.phases else [{}]
    cuts = sorted(set(stage_starts) | {p.start for p in plan} | {config.steps})
    out = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        k = max(i for i, p in enumerate(plan) if p.start <= a)
        size = sizes[max(i for i, s in enumerate(stage_starts) if s <= a)]
        piece = {key: copy.deepcopy(v) for key, v in raw[k].items() if key != "steps"}
        own = raw[k].get("lr_patch")
        piece.update(steps=b - a, lr_patch=min(size, own) if own is not None else size)
        if a != plan[k].start:
            piece["keep_optimizer"] = True
        out.append(piece)
    return out


def cosine_restart_lr(step: int, eta_max: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0) -> float:
    """Seed 003 Eq. 13 by hand: the learning rate after ``step`` scheduler steps.

    ``eta = eta_min + 0.5 (eta_max - eta_min)(1 + cos(pi T_cur / T_i))`` with ``T_i`` the
    current period (``T_0``, then ``T_0 * T_mult``, ...) and ``T_cur`` the steps since its start.
    """
    t_cur, t_i = int(step), int(T_0)
    while t_cur >= t_i:
        t_cur -= t_i
        t_i *= int(T_mult)
    return eta_min + 0.5 * (eta_max - eta_min) * (1 + math.cos(math.pi * t_cur / t_i))


def restart_period(steps: int, cycles: int = CYCLES, T_mult: int = 1) -> int:
    """``T_0`` such that ``cycles`` periods (growing by ``T_mult``) fill ``steps`` (at least 1)."""
    if cycles < 1 or T_mult < 1:
        raise ValueError(f"restarts: cycles and T_mult must be >= 1, got {cycles!r}, {T_mult!r}")
    total = cycles if T_mult == 1 else (T_mult ** cycles - 1) // (T_mult - 1)
    return max(1, steps // total)


def restart_overrides(steps: int, cycles: int = CYCLES, T_mult: int = 1, eta_min: float = ETA_MIN) -> dict:
    """TrainConfig fields of cosine annealing with warm restarts over ``steps``."""
    return {"schedule": "cosine_restarts", "T_0": restart_period(steps, cycles, T_mult), "T_mult": int(T_mult),
            "eta_min": float(eta_min)}


def fass_sampling(**options) -> dict:
    """A FASS sampling spec (:data:`srlib.data.patches.FASS_DEFAULTS` with ``options``)."""
    return normalize_sampling({**FASS_DEFAULTS, **options})


def mpts(config, lr_patch: int | None = None, curriculum: bool = True, restarts: bool = True,
         fass: bool = True, stages: int = 3, start: float = 0.5, cycles: int = CYCLES, T_mult: int = 1,
         eta_min: float = ETA_MIN, sampling: Mapping | None = None) -> dict:
    """TrainConfig overrides that add MPTS's parts to ``config`` (a TrainConfig or a dict of fields).

    Args:
        config: the arm's configuration without MPTS (its ``steps`` and ``phases`` are read).
        lr_patch: the full LR patch size (the profile's), needed by the curriculum.
        curriculum, restarts, fass: the three switches.
        stages, start: curriculum stages and the first stage's fraction of ``lr_patch``.
        cycles, T_mult, eta_min: warm restarts (``eta_max`` is each phase's ``lr``).
        sampling: FASS options over :data:`~srlib.data.patches.FASS_DEFAULTS`.

    Returns a plain dict (``phases``, ``schedule``, ``T_0``, ``T_mult``, ``eta_min``,
    ``sampling``; only what changes), e.g. ``TrainConfig(**{**base, **mpts(base, 48)})``.
    """
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(dict(config))
    out: dict = {}
    phases = copy.deepcopy(cfg.phases) if cfg.phases else None
    if curriculum:
        if lr_patch is None:
            raise ValueError("mpts(curriculum=True) needs lr_patch, the full LR patch size (the profile's)")
        phases = curriculum_phases(cfg, int(lr_patch), stages, start)
    if restarts:
        sched = restart_overrides(cfg.steps, cycles, T_mult, eta_min)
        out.update(sched)
        for p in phases or []:  # a phase's own schedule would override the top level
            if any(k in p for k in SCHEDULE_KEYS):
                p.update(sched)
                p.pop("step_size", None)
                p.pop("gamma", None)
    if phases is not None and phases != cfg.phases:
        out["phases"] = phases
    if fass:
        out["sampling"] = fass_sampling(**dict(sampling or {}))
    TrainConfig.from_dict({**cfg.to_dict(), **out})  # validates the result
    return out


def lr_curve(config: TrainConfig, which: str = "lr") -> list[float]:
    """The learning rate of each of ``config.steps`` steps as the Trainer applies it (phases,
    fresh or kept optimisers included); ``which='d_lr'`` for the discriminator's."""
    plan = config.phase_plan()
    lrs, opt, sched = [], None, None
    for ph in plan:
        c = ph.config
        if opt is None or not ph.keep_optimizer:
            lr0 = c.lr if which == "lr" or c.d_lr is None else c.d_lr
            opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr0)
            sched = build_scheduler(opt, c)
        for _ in range(ph.steps):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return lrs
