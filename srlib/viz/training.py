"""Training figures: loss and validation-PSNR curves from a run's ``log.csv``, AWMS branch weights,
learning-rate schedules."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ..losses import loss_terms

# how loss names read on an axis; others are shown as registered
LOSS_NAMES = {"l1": "L1", "mse": "MSE", "charbonnier": "Charbonnier"}


def read_log(run: str | Path | pd.DataFrame) -> pd.DataFrame:
    """A run's ``log.csv`` (a run folder, the file itself, or an already-read frame)."""
    if isinstance(run, pd.DataFrame):
        return run
    path = Path(run)
    return pd.read_csv(path / "log.csv" if path.is_dir() else path)


def loss_label(run=None, config=None) -> str:
    """What the training loss was, e.g. ``'L1'``, ``'L1 + 0.5 Charbonnier'``, ``'L1 -> MSE'`` (phases).

    Read from ``config`` when given (a :class:`~srlib.train.TrainConfig`, its ``to_dict()`` as in
    ``run.json``, or a loss spec), with weights; else from the ``loss_<term>`` columns of the
    run's log (per phase when it has a ``phase`` column); ``'loss'`` when neither says.
    """
    if config is not None:
        specs = _config_specs(config)
        labels = [" + ".join(_term(name, w) for name, w in loss_terms(spec).items()) for spec in specs]
    elif run is not None:
        labels = _log_labels(read_log(run))
    else:
        labels = []
    labels = list(dict.fromkeys(labels))  # consecutive phases with one loss read once
    return " -> ".join(labels) if labels else "loss"


def _config_specs(config) -> list:
    if hasattr(config, "phase_plan"):
        return [ph.config.loss for ph in config.phase_plan()]
    if isinstance(config, dict) and "loss" in config:  # a TrainConfig dict ('loss' is no loss name)
        phases = config.get("phases") or [{}]
        return [p.get("loss", config["loss"]) for p in phases]
    return [config]


def _log_labels(log: pd.DataFrame) -> list[str]:
    terms = [c for c in log.columns if c.startswith("loss_")]
    groups = [g for _, g in log.groupby("phase", sort=True)] if "phase" in log.columns else [log]
    labels = []
    for g in groups:
        used = [c[len("loss_"):] for c in terms if g[c].notna().any()]
        if used:
            labels.append(" + ".join(_term(name, 1.0) for name in used))
    return labels


def _term(name: str, weight: float) -> str:
    pretty = LOSS_NAMES.get(name, name)
    return pretty if weight == 1.0 else f"{weight:g} {pretty}"


def training_curves(run, lines: dict[str, float] | None = None, title: str = "", config=None):
    """Two panels: mean training loss per log row (log scale) and validation PSNR per step.

    The loss axis names the loss actually used (:func:`loss_label`, from ``config`` when given,
    else from the log's columns); with several terms each is drawn too, and phase switches are
    marked. ``lines`` draws labelled horizontal references on the PSNR panel (e.g. bicubic, a
    paper row).
    """
    log = read_log(run)
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(10, 3.4))
    ax_loss.plot(log.step, log.loss, lw=1.2, label="total")
    terms = [c for c in log.columns if c.startswith("loss_") and log[c].notna().any()]
    if len(terms) > 1:
        for c in terms:
            ax_loss.plot(log.step, log[c], lw=0.8, ls="--", label=LOSS_NAMES.get(c[5:], c[5:]))
        ax_loss.legend(fontsize=8)
    if "phase" in log.columns:  # a row is logged at each phase's last step: the switch follows it
        switch = log.phase.ne(log.phase.shift()) & log.phase.shift().notna()
        for step in log.step.shift()[switch]:
            ax_loss.axvline(step, ls=":", lw=1, color="gray")
    ax_loss.set(xlabel="iteration", ylabel=f"training loss ({loss_label(log, config)})", yscale="log",
                title="loss")
    val = log.dropna(subset=["psnr"])
    ax_psnr.plot(val.step, val.psnr, "o-", ms=3, label="ours (validation)")
    for i, (label, value) in enumerate((lines or {}).items()):
        ax_psnr.axhline(value, ls="--", lw=1, color=f"C{i + 1}", label=f"{label} ({value:.2f})")
    ax_psnr.set(xlabel="iteration", ylabel="PSNR (dB, Y)", title="validation PSNR")
    ax_psnr.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def awms_weights_bar(weights: dict[str, float], init: float | None = None, title: str = ""):
    """Bar chart of the learned AWMS branch weights (``AWMS.branch_weights()``); ``init`` dashed."""
    fig, ax = plt.subplots(figsize=(4.2, 3))
    names = list(weights)
    ax.bar([n.replace("k", "") + "x" + n.replace("k", "") for n in names], list(weights.values()),
           color=[f"C{i}" for i in range(len(names))])
    if init is not None:
        ax.axhline(init, ls="--", lw=1, color="gray", label=f"initial value ({init:g})")
        ax.legend(fontsize=8)
    ax.set(xlabel="AWMS branch kernel", ylabel="adaptive weight", title=title)
    fig.tight_layout()
    return fig


def lr_schedules(curves: dict[str, list[float]], title: str = ""):
    """Learning rate against step for each named schedule (e.g. step decay vs cosine annealing
    with warm restarts, ``srlib.studies.imfm.lr_curves``)."""
    fig, ax = plt.subplots(figsize=(6, 3))
    for i, (name, lrs) in enumerate(curves.items()):
        ax.plot(range(len(lrs)), lrs, color=f"C{i}", lw=1.5, label=name)
    ax.set(xlabel="iteration", ylabel="learning rate", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
