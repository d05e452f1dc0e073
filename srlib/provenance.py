"""Provenance of every result file: profile, commit, seed, device, versions, data source."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def git_commit(root: Path = PROJECT_ROOT) -> str:
    """HEAD of the project's git checkout, suffixed ``-dirty`` with uncommitted changes."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"


def versions() -> dict:
    import numpy
    import torch

    import srlib

    out = {"python": platform.python_version(), "srlib": srlib.__version__,
           "torch": torch.__version__, "numpy": numpy.__version__}
    for mod in ("torchvision", "skimage", "pandas", "PIL"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            pass
    return out


def device_name(device: str | None = None) -> str:
    import torch

    if device and str(device).startswith("cuda") and torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(torch.device(device))}"
    cpu = platform.processor() or platform.machine()
    return f"cpu: {cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


def provenance(profile: str | None = None, seed: int | None = None, data_source=None,
               device: str | None = None, **extra) -> dict:
    """A dict describing how a result was produced; stored with every result file."""
    return {"profile": profile, "commit": git_commit(), "seed": seed, "device": device_name(device),
            "data_source": data_source, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": platform.platform(), "versions": versions(), **extra}
