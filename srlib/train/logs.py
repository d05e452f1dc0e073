"""Run log: ``log.csv`` (step, loss, lr, psnr, ssim, seconds) plus TensorBoard when importable."""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

COLUMNS = ("step", "loss", "lr", "psnr", "ssim", "seconds")


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
        if resume_step is not None and self.path.is_file():
            self._truncate(resume_step)
        else:
            self._rewrite([])
        purge = None if resume_step is None else resume_step + 1
        self.tb = _summary_writer(Path(out_dir) / "tensorboard", purge) if tensorboard else None

    def _truncate(self, step: int) -> None:
        with open(self.path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= step]
        self._rewrite(rows)

    def _rewrite(self, rows: list[dict]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.path)

    def write(self, step: int, loss: float | None, lr: float, metrics: dict, seconds: float) -> None:
        row = {"step": step, "loss": _fmt(loss), "lr": f"{lr:.6g}", "seconds": f"{seconds:.2f}"}
        row.update({k: _fmt(metrics.get(k)) for k in ("psnr", "ssim")})
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, COLUMNS).writerow(row)
        if self.tb is not None:
            self._tensorboard(step, loss, lr, metrics)

    def _tensorboard(self, step: int, loss: float | None, lr: float, metrics: dict) -> None:
        if loss is not None:
            self.tb.add_scalar("train/loss", loss, step)
        self.tb.add_scalar("train/lr", lr, step)
        for key, value in metrics.items():
            if isinstance(value, (int, float)):
                self.tb.add_scalar(f"val/{key}", value, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{float(value):.6g}"
