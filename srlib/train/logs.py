"""Run log: ``log.csv`` plus TensorBoard when importable.

Columns: ``step``, ``phase``, ``loss`` (the total), one ``loss_<term>`` per loss term,
``grad_norm``, the discriminator's ``d_loss``, ``d_loss_<term>``, ``d_grad_norm``, ``lr``,
``d_lr``, the validation metrics (``psnr``, ``ssim``, any other a validator returns) and
``seconds``. A column that first appears mid-run (a new loss term at a phase switch) rewrites the
file with the union of the columns; a non-finite value is written as ``nan`` / ``inf``, a value
not measured at that row as an empty cell.
"""
from __future__ import annotations

import csv
from pathlib import Path

from ..fileio import atomic_open

COLUMNS = ("step", "phase", "loss", "lr", "psnr", "ssim", "seconds")  # always present, in this order
# column groups in file order; a name matches the first group it fits
_GROUPS = ("step", "phase", "loss", "loss_*", "grad_norm", "d_loss", "d_loss_*", "d_grad_norm", "lr", "d_lr",
           "psnr", "ssim", "*", "seconds")
_TRAIN = ("step", "phase", "loss", "grad_norm", "d_loss", "d_grad_norm", "lr", "d_lr", "seconds")


def _summary_writer(log_dir: Path, purge_step: int | None):
    """A TensorBoard ``SummaryWriter``, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(log_dir), purge_step=purge_step)


class RunLog:
    """Appends one CSV row per logged step; on resume drops rows past the checkpoint."""

    def __init__(self, out_dir: str | Path, resume_step: int | None = None, tensorboard: bool = True):
        self.path = Path(out_dir) / "log.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.columns: list[str] = list(COLUMNS)
        if resume_step is not None and self.path.is_file():
            self._truncate(resume_step)
        else:
            self._rewrite([])
        purge = None if resume_step is None else resume_step + 1
        self.tb = _summary_writer(Path(out_dir) / "tensorboard", purge) if tensorboard else None

    def _truncate(self, step: int) -> None:
        rows = [r for r in self._read() if r.get("step", "").isdigit() and int(r["step"]) <= step]
        self._rewrite(rows)

    def _read(self) -> list[dict]:
        """The rows on disk; adds the file's columns to ``self.columns``."""
        with open(self.path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
        self.columns = _order(self.columns + [c for c in reader.fieldnames or () if c not in self.columns])
        return rows

    def _rewrite(self, rows: list[dict]) -> None:
        with atomic_open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, self.columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    def write(self, step: int, scalars: dict, metrics: dict, seconds: float) -> None:
        """One row: training ``scalars`` (``loss``, ``loss_<term>``, ``lr``, ``phase``, ...; None
        leaves the cell empty) and numeric validation ``metrics`` (a metric named like a training
        column is written as ``val_<name>``)."""
        metrics = {(f"val_{k}" if k in _TRAIN or k.startswith(("loss_", "d_loss_")) else k): v
                   for k, v in metrics.items() if k != "step" and _number(v)}
        row = {"step": str(int(step)), **{k: _fmt(v) for k, v in scalars.items()},
               **{k: _fmt(v) for k, v in metrics.items()}, "seconds": f"{seconds:.2f}"}
        new = [k for k in row if k not in self.columns]
        if new:  # rewrite the header with the union of the columns
            rows = self._read()
            self.columns = _order(self.columns + new)
            self._rewrite(rows)
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns).writerow(row)
        if self.tb is not None:
            self._tensorboard(step, scalars, metrics)

    def _tensorboard(self, step: int, scalars: dict, metrics: dict) -> None:
        for key, value in scalars.items():
            if _number(value):
                self.tb.add_scalar(f"train/{key}", value, step)
        for key, value in metrics.items():
            self.tb.add_scalar(f"val/{key}", value, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _fmt(value) -> str:
    """Empty for None, ``str`` for ints, 6 significant digits for floats (``nan``, ``inf`` kept)."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{float(value):.6g}"


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _group(name: str) -> int:
    """Index in :data:`_GROUPS` of the first group ``name`` fits."""
    if name in _GROUPS:
        return _GROUPS.index(name)
    for i, pattern in enumerate(_GROUPS):
        if pattern.endswith("*") and name.startswith(pattern[:-1]):
            return i
    raise AssertionError(name)  # '*' matches everything


def _order(columns: list[str]) -> list[str]:
    """``columns`` sorted by group, first-seen order within a group."""
    return sorted(dict.fromkeys(columns), key=_group)
