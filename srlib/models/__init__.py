"""Registry of every upscaler: networks (``build_model``, ``list_models``) and, beside them, the
classical methods of :mod:`srlib.classical` (``build_upscaler``, ``list_upscalers``).

A model is one file in this package (or in ``zoo/``) plus one entry below. Every model takes
float RGB in [0, 1] (N, 3, h, w) and returns float RGB in the same range (not clamped),
(N, 3, h*scale, w*scale). Models whose official weights expect [0, 255] scale internally.
The classical methods keep that contract and are imported only when one is asked for.
"""
from __future__ import annotations

import importlib
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
    "cnn": ModelEntry(
        "srlib.models.cnn", "YanCNN", (2, 3, 4),
        dict(n_feats=64, n_mapping=6, bn_mapping=False),  # our choice; the paper gives none
        "Plain CNN (Yan et al. 2024): conv+BN+ReLU, 6 conv+ReLU, sub-pixel conv, global bicubic skip",
        train=dict(loss="mse", lr=1e-4, schedule="constant"),  # paper Sec. 4.1
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


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded into the model it was given to."""


def _unwrap(obj) -> dict:
    """Find the state dict inside common checkpoint containers."""
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "params", "params_ema", "net"):
            if key in obj and isinstance(obj[key], dict):
                return obj[key]
    return obj


def load_weights(model: nn.Module, path: str | Path, strict: bool = True) -> nn.Module:
    """Load a checkpoint into ``model`` with ``weights_only=True`` and strict key checking.

    Handles ``module.`` prefixes (DataParallel) and wrapper dicts ({'model': ...}); a model
    whose official files use other key names defines ``convert_state_dict(sd) -> sd``.
    Raises :class:`CheckpointError` naming the file and the mismatching keys.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass an existing file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files, non-torch files
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    sd = _unwrap(obj)
    if not isinstance(sd, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(sd).__name__}, not a state dict")
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
