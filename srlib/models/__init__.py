"""Registry of every upscaler: networks (``build_model``, ``list_models``) and, beside them, the
classical methods of :mod:`srlib.classical` (``build_upscaler``, ``list_upscalers``).

A model is one file in this package (or in ``zoo/``) plus one entry below. Every model takes
float RGB in [0, 1] (N, 3, h, w) and returns float RGB in the same range (not clamped),
(N, 3, h*scale, w*scale). Models whose official weights expect [0, 255] scale internally.
The classical methods keep that contract and are imported only when one is asked for.
"""
from __future__ import annotations

import importlib
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn


@dataclass(frozen=True)
class ModelEntry:
    """Where a model lives and how it is configured.

    ``train`` holds the model's own :class:`~srlib.train.TrainConfig` overrides (e.g. its
    paper's loss and lr); :func:`srlib.train.train_sr` applies them over the profile's recipe
    and under the caller's overrides.
    """

    module: str  # import path, e.g. "srlib.models.awsrn"
    cls: str  # class name in that module
    scales: tuple[int, ...]
    config: dict = field(default_factory=dict)
    description: str = ""
    train: dict = field(default_factory=dict)


# Paper models. Zoo models (official weights) are merged from ``zoo.ZOO_ENTRIES``.
ENTRIES: dict[str, ModelEntry] = {
    "awsrn-s": ModelEntry(
        "srlib.models.awsrn", "AWSRN", (2, 3, 4),
        dict(n_feats=32, block_feats=128, n_lfb=1, n_awru=4),
        "AWSRN-S (Wang et al. 2019): 1 LFB of 4 AWRUs, 32 features",
    ),
    "awsrn-sd": ModelEntry(
        "srlib.models.awsrn", "AWSRN", (2, 3, 4),
        dict(n_feats=16, block_feats=128, n_lfb=1, n_awru=8),
        "AWSRN-SD (Wang et al. 2019): 1 LFB of 8 AWRUs, 16 features",
    ),
    "awsrn-m": ModelEntry(
        "srlib.models.awsrn", "AWSRN", (2, 3, 4),
        dict(n_feats=32, block_feats=128, n_lfb=3, n_awru=4),
        "AWSRN-M (Wang et al. 2019): 3 LFBs of 4 AWRUs, 32 features",
    ),
    "awsrn": ModelEntry(
        "srlib.models.awsrn", "AWSRN", (2, 3, 4, 8),
        dict(n_feats=32, block_feats=128, n_lfb=4, n_awru=4),
        "AWSRN (Wang et al. 2019): 4 LFBs of 4 AWRUs, 32 features",
    ),
    "awsrn-bam": ModelEntry(
        "srlib.models.awsrn", "AWSRN", (2, 3, 4),
        dict(n_feats=32, block_feats=128, n_lfb=4, n_awru=4, bam=True),
        "AWSRN with balanced attention (super-image awsrn-bam; Wang et al. 2021), no mean shift",
    ),
    "awsrn-s-improved": ModelEntry(
        "srlib.models.awsrn_improved", "ImprovedAWSRN", (2, 3, 4),
        dict(n_feats=32, block_feats=128, n_lfb=1, n_awru=4),
        "Improved AWSRN-S (Dong et al. 2025): AWSRN-S + gap_awru, lrfu_fusion, awms_plus, "
        "dsconv_head, nonlocal_ca (switches, all on)",
    ),
    "awsrn-improved": ModelEntry(
        "srlib.models.awsrn_improved", "ImprovedAWSRN", (2, 3, 4, 8),
        dict(n_feats=32, block_feats=128, n_lfb=4, n_awru=4),
        "Improved AWSRN (Dong et al. 2025): AWSRN + gap_awru, lrfu_fusion, awms_plus, "
        "dsconv_head, nonlocal_ca (switches, all on)",
    ),
    "cnn": ModelEntry(
        "srlib.models.cnn", "YanCNN", (2, 3, 4),
        dict(n_feats=64, n_mapping=6, bn_mapping=False),  # our choice; the paper gives none
        "Plain CNN (Yan et al. 2024): conv+BN+ReLU, 6 conv+ReLU, sub-pixel conv, global bicubic skip",
        train=dict(loss="mse", lr=1e-4, schedule="constant"),  # paper Sec. 4.1
    ),
    "imfm": ModelEntry(
        "srlib.models.imfm", "IMFM", (2, 3, 4),
        dict(n_feats=40, n_blocks=17, n_paths=4, path_feats=28, up_feats=28),
        "IMFM (seed 003, progressive feature fusion): 17 PABs with MSWAM and CAM, MWAUM upsampler, 595K",
        train=dict(loss="l1"),  # Eq. 5; its cosine warm-restart schedule is set by the studies
    ),
}


def _all_entries() -> dict[str, ModelEntry]:
    from .zoo import ZOO_ENTRIES

    return {**ENTRIES, **ZOO_ENTRIES}


def list_models() -> list[str]:
    """Names accepted by :func:`build_model`, sorted."""
    return sorted(_all_entries())


def get_entry(name: str) -> ModelEntry:
    entries = _all_entries()
    if name not in entries:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(entries))}")
    return entries[name]


def build_model(name: str, scale: int, **overrides) -> nn.Module:
    """Build a registered model at ``scale`` with its registry config, updated by ``overrides``."""
    entry = get_entry(name)
    if scale not in entry.scales:
        raise ValueError(
            f"model {name!r} does not support scale x{scale}; supported: "
            + ", ".join(f"x{s}" for s in entry.scales)
        )
    cls = getattr(importlib.import_module(entry.module), entry.cls)
    return cls(scale=scale, **{**entry.config, **overrides})


def list_upscalers() -> list[str]:
    """Names accepted by :func:`build_upscaler`: the classical methods, then the models."""
    from ..classical import CLASSICAL

    return sorted(CLASSICAL) + list_models()


def describe_upscalers() -> list[dict]:
    """One record per upscaler: ``name``, ``kind`` ('classical' or 'model'), ``scales`` (a tuple;
    None for the classical methods, which take any integer scale) and ``description``."""
    from ..classical import CLASSICAL, DESCRIPTIONS

    rows = [{"name": n, "kind": "classical", "scales": None, "description": DESCRIPTIONS.get(n, "")}
            for n in sorted(CLASSICAL)]
    for name in list_models():
        entry = get_entry(name)
        rows.append({"name": name, "kind": "model", "scales": entry.scales,
                     "description": entry.description})
    return rows


def build_upscaler(name: str, scale: int, checkpoint: str | Path | None = None,
                   profile: str = "quick") -> nn.Module:
    """A classical method or a registered model at ``scale``, with ``checkpoint`` loaded if given.

    ``profile`` sets the training budget of the learned classical methods (``ne``, ``sc``) and
    where their dictionaries are cached; it does not affect the others.
    """
    from ..classical import CLASSICAL, LEARNED

    if name in CLASSICAL:
        if checkpoint is not None:
            raise ValueError(f"{name} is a classical method and takes no --checkpoint")
        module, cls = CLASSICAL[name]
        kw = {"profile": profile} if name in LEARNED else {}
        return getattr(importlib.import_module(module), cls)(scale=scale, **kw)
    try:
        model = build_model(name, scale)
    except KeyError:
        raise KeyError(f"unknown upscaler {name!r}; known: {', '.join(list_upscalers())}") from None
    if checkpoint is not None:
        load_weights(model, checkpoint)
    return model


def refuse_random_weights(name: str, checkpoint=None, random_init: bool = False) -> None:
    """Raise unless a registered (learned) model ``name`` gets weights or ``random_init`` is set.

    A model built without a checkpoint has random weights: its PSNR or its output image means
    nothing, and nothing about the number says so. The evaluation and upscaling entry points call
    this; :func:`build_model` does not, since complexity tables and tests build random models on
    purpose. Classical methods need no weights and pass.
    """
    if checkpoint is None and not random_init and name in _all_entries():
        raise ValueError(
            f"model {name!r} has no weights: pass a trained checkpoint (--checkpoint FILE, "
            f"checkpoint=...), e.g. best.pt of `srlib train --model {name}`. Without one its "
            "random initial weights would be scored; pass --random-init (random_init=True) "
            "if that is what you want")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded into the model it was given to."""


def _unwrap(obj) -> dict:
    """Find the state dict inside common checkpoint containers."""
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "params", "params_ema", "net"):
            if key in obj and isinstance(obj[key], dict):
                return obj[key]
    return obj


def read_checkpoint(path: str | Path, what: str = "checkpoint"):
    """``torch.load(path, weights_only=True)`` on the CPU, or a :class:`CheckpointError` that says
    what is wrong with the file (missing, empty, truncated or not a torch file, or holding
    Python objects other than weights, which srlib never unpickles) and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist; pass an existing file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"cannot read {what} {path}: it is empty (0 bytes), e.g. from an "
                              "interrupted copy or download; re-download or re-create it")
    try:
        with warnings.catch_warnings():  # torch's hints (file an issue, weights_only=False) mislead here
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated zips, non-torch files
        if "GLOBAL" in str(exc) or "Unsupported global" in str(exc):  # a class or function to import
            raise CheckpointError(
                f"cannot read {what} {path}: it holds Python objects besides tensors and plain "
                "containers; srlib "
                "loads weights only and will not unpickle it (it could run code). Use a file that "
                "holds only a state dict, e.g. re-export it with torch.save(model.state_dict(), f)"
            ) from None
        raise CheckpointError(f"cannot read {what} {path}: it is corrupt or not a torch checkpoint "
                              f"({type(exc).__name__}); re-download or re-create it") from None


def first_nonfinite(obj, prefix: str = "", floats: bool = False,
                    skip: tuple[str, ...] = ()) -> tuple[str, int] | None:
    """``(key, count)`` of the first floating tensor in ``obj`` (a nested state dict or checkpoint)
    holding a NaN or infinity, with the number of such entries in all; None when all are finite.

    ``floats=True`` also checks plain Python floats (e.g. a learning rate in an optimiser state)
    after the tensors; keys in ``skip`` are not checked (the trainer's ``best_psnr`` starts at
    -inf). One host sync per device that holds tensors.
    """
    tensors: list[tuple[str, torch.Tensor]] = []
    bad_floats: list[str] = []

    def walk(o, key):
        if isinstance(o, torch.Tensor):
            if o.is_floating_point() and o.numel():
                tensors.append((key, o))
        elif isinstance(o, dict):
            for k, v in o.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(o, (list, tuple)):
            for i, v in enumerate(o):
                walk(v, f"{key}[{i}]")
        elif floats and isinstance(o, float) and key not in skip and not math.isfinite(o):
            bad_floats.append(key)

    walk(obj, prefix)
    bad = []
    for device in dict.fromkeys(t.device for _, t in tensors):
        entries = [(k, t) for k, t in tensors if t.device == device]
        ok = torch.stack([torch.isfinite(t).all() for _, t in entries]).tolist()
        bad += [k for (k, _), good in zip(entries, ok) if not good]
    bad += bad_floats
    return (bad[0], len(bad)) if bad else None


def check_finite(sd, path: str | Path, what: str = "checkpoint") -> None:
    """Raise :class:`CheckpointError` naming ``path`` and the first non-finite tensor of ``sd``."""
    found = first_nonfinite(sd)
    if found is not None:
        key, n = found
        raise CheckpointError(
            f"{what} {path} holds non-finite values (NaN or inf): first in tensor {key!r}, "
            f"{n} tensor(s) in all. The run that wrote it diverged; its output would be garbage. "
            "Use an earlier checkpoint or retrain with a lower learning rate")


def load_weights(model: nn.Module, path: str | Path, strict: bool = True) -> nn.Module:
    """Load a checkpoint into ``model`` with ``weights_only=True`` and strict key checking.

    Handles ``module.`` prefixes (DataParallel) and wrapper dicts ({'model': ...}); a model
    whose official files use other key names defines ``convert_state_dict(sd) -> sd``.
    Raises :class:`CheckpointError` naming the file and the mismatching keys, and for a file
    that is missing, empty, corrupt, holds pickled objects or holds non-finite tensors.
    """
    path = Path(path)
    obj = read_checkpoint(path)
    sd = _unwrap(obj)
    if not isinstance(sd, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(sd).__name__}, not a state dict")
    check_finite(sd, path)
    sd = {(k[7:] if k.startswith("module.") else k): v for k, v in sd.items()}
    convert = getattr(model, "convert_state_dict", None)
    if convert is not None:
        sd = convert(sd)
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [
        f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)
    ]
    if shapes or (strict and (missing or unexpected)):
        name = type(model).__name__
        scale = getattr(model, "scale", "?")
        parts = [f"checkpoint {path} does not match {name} at x{scale}"]
        if shapes:
            parts.append("shape mismatches (wrong scale or configuration?): " + "; ".join(shapes[:8]))
        if missing:
            parts.append(f"{len(missing)} missing keys, e.g. {missing[:5]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys, e.g. {unexpected[:5]}")
        raise CheckpointError(". ".join(parts))
    model.load_state_dict(sd, strict=strict)
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of learnable parameters (weight-norm gains and adaptive scalars included)."""
    return sum(p.numel() for p in model.parameters())
