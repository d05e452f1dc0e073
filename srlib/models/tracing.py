"""Module-by-module shapes of one forward pass, recorded with forward hooks (not hand-written).

``trace_shapes(model, x)`` runs ``model(x)`` once with a forward hook on every submodule and
returns one record per call, in call order: the module's dotted name, its class, the shapes of
its first argument and of its output, and its own parameter count (submodules included). A module
called through a method other than ``forward`` (e.g. ``MeanShift.normalize``) or a functional op
(``F.pixel_shuffle``) fires no hook and so does not appear.
"""
from __future__ import annotations

import torch
from torch import nn


def _shape(obj):
    """A tensor's shape as a tuple; a list of n equal shapes as ``'n x (shape)'``; else a list."""
    if isinstance(obj, torch.Tensor):
        return tuple(obj.shape)
    if isinstance(obj, (list, tuple)) and obj:
        shapes = [_shape(o) for o in obj]
        same = all(s == shapes[0] for s in shapes) and isinstance(shapes[0], tuple)
        return shapes[0] if len(shapes) == 1 else (f"{len(shapes)} x {shapes[0]}" if same else shapes)
    return None


def trace_shapes(model: nn.Module, x: torch.Tensor, max_depth: int | None = None) -> list[dict]:
    """Records ``{name, module, input, output, params}`` of each submodule call of ``model(x)``.

    ``max_depth`` keeps modules whose dotted name has at most that many parts (1: top level).
    The internals of parametrizations (weight norm computing a weight) are left out. The model
    is run under ``no_grad``; the hooks are removed afterwards.
    """
    records, handles = [], []
    for name, module in model.named_modules():
        deep = max_depth is not None and name.count(".") + 1 > max_depth
        if not name or deep or "parametrizations" in name.split("."):
            continue

        def hook(mod, args, out, name=name):
            records.append({"name": name, "module": type(mod).__name__,
                            "input": _shape(args[0]) if args else None, "output": _shape(out),
                            "params": sum(p.numel() for p in mod.parameters())})

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            out = model(x)
        records.append({"name": "(model)", "module": type(model).__name__, "input": _shape(x),
                        "output": _shape(out), "params": sum(p.numel() for p in model.parameters())})
    finally:
        for h in handles:
            h.remove()
    return records
