"""Training figures: loss and validation-PSNR curves from a run's ``log.csv``, AWMS branch weights."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd


def read_log(run: str | Path | pd.DataFrame) -> pd.DataFrame:
    """A run's ``log.csv`` (a run folder, the file itself, or an already-read frame)."""
    if isinstance(run, pd.DataFrame):
        return run
    path = Path(run)
    return pd.read_csv(path / "log.csv" if path.is_dir() else path)


def training_curves(run, lines: dict[str, float] | None = None, title: str = ""):
    """Two panels: mean training L1 loss per log row (log scale) and validation PSNR per step.

    ``lines`` draws labelled horizontal references on the PSNR panel (e.g. bicubic, a paper row).
    """
    log = read_log(run)
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(10, 3.4))
    ax_loss.plot(log.step, log.loss, lw=1.2)
    ax_loss.set(xlabel="iteration", ylabel="training L1 loss", yscale="log", title="loss")
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
