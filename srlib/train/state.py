"""Checkpoint I/O for the trainer: atomic writes, ``weights_only`` loads, RNG states as tensors.

RNG states are stored as tensors and ints (not pickled objects) so checkpoints load with
``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import torch

from ..fileio import atomic_torch_save

FORMAT = "srlib-trainer-v1"
REQUIRED = ("model", "optimizer", "scheduler", "step", "sampler", "rng")


class TrainCheckpointError(ValueError):
    """A file that is not a usable srlib training checkpoint."""


class TrainingDiverged(RuntimeError):
    """A loss term or the gradient norm became non-finite; ``last.pt`` holds the last finite state.

    Attributes: ``step`` (the step that produced the value), ``term`` (the loss term's name, or
    ``'grad_norm'``), ``lr`` (the learning rate used at that step).
    """

    def __init__(self, step: int, term: str, lr: float, message: str | None = None):
        self.step, self.term, self.lr = int(step), str(term), float(lr)
        super().__init__(message or f"training diverged at step {self.step}: {self.term} is not "
                                    f"finite (lr {self.lr:.3g}); lower the learning rate or clip gradients")


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Python, numpy, torch (and CUDA) RNG states as tensors and ints."""
    version, mt, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "state": torch.tensor(mt, dtype=torch.int64), "gauss": gauss},
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Inverse of :func:`rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, npy["pos"], npy["has_gauss"], npy["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(obj, path: str | Path) -> Path:
    """``torch.save`` atomically: an alias of :func:`srlib.fileio.atomic_torch_save`."""
    return atomic_torch_save(obj, path)


# the temporary names of srlib.fileio.atomic_path: ".<name>.<8 hex>.tmp[<suffix>]"
_TEMP = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp(\.[^.]+)?$")


def remove_stale_temps(*folders: str | Path) -> list[Path]:
    """Delete the temporary files a killed write left in ``folders`` (e.g. ``.last.pt.1a2b3c4d.tmp``,
    up to a whole checkpoint each); returns them. Call it only while no other process writes
    there (the trainer does, on start and resume, before it writes anything)."""
    removed = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            continue
        for f in folder.iterdir():
            if _TEMP.match(f.name) and f.is_file():
                f.unlink(missing_ok=True)
                removed.append(f)
    return removed


def load_checkpoint(path: str | Path) -> dict:
    """Load a trainer checkpoint with ``weights_only=True``; clear error if it is not one."""
    from ..models import CheckpointError, read_checkpoint

    path = Path(path)
    if not path.is_file():
        raise TrainCheckpointError(
            f"checkpoint {path} does not exist; check the path or train without resume")
    try:
        ckpt = read_checkpoint(path, "training checkpoint")
    except CheckpointError as exc:
        raise TrainCheckpointError(f"{exc}; or delete it and resume from another file") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise TrainCheckpointError(
            f"{path} is not an srlib training checkpoint (format {FORMAT!r}); to start from its "
            "weights, load them with srlib.models.load_weights and train without resume"
        )
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise TrainCheckpointError(f"training checkpoint {path} lacks {missing}; it cannot be resumed")
    return ckpt
