"""Loss registry: named loss modules, built from a name or a weighted mapping into a :class:`LossSum`.

A loss spec is what :class:`~srlib.train.TrainConfig` stores (plain JSON, ``weights_only``-safe):

- a name: ``"l1"`` (weight 1);
- a weighted mapping: ``{"l1": 1.0, "charbonnier": 0.5}``, each value a weight or a dict of a
  ``"weight"`` and keyword arguments of the loss (``{"charbonnier": {"weight": 0.5, "eps": 1e-12}}``).

The shape of a loss module follows BasicSR ``basicsr/losses/basic_loss.py`` (a uniform
``loss_weight`` and ``reduction``), with one addition: ``needs`` names the context a term reads
besides ``(sr, hr)`` (e.g. ``("discriminator",)`` for an adversarial term), so the trainer can pass
it and say early when it is missing, rather than the trainer knowing which losses are pixel losses.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping

import torch
from torch import nn

REDUCTIONS = ("none", "mean", "sum")
TOTAL = "loss"  # the name of the summed total in a LossSum's output

_LOSSES: dict[str, type[nn.Module]] = {}


class Loss(nn.Module):
    """Base of registered losses: ``forward(sr, hr, **context) -> loss_weight * reduced loss``.

    Args:
        loss_weight: factor applied to the reduced loss.
        reduction: ``'none'`` (per element), ``'mean'`` or ``'sum'``.

    Subclasses set ``needs`` to the context keys they read (``()`` for pixel losses) and accept
    ``**context`` so that a :class:`LossSum` can pass one context to all its terms.
    """

    needs: tuple[str, ...] = ()

    def __init__(self, loss_weight: float = 1.0, reduction: str = "mean"):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {REDUCTIONS}, "
                             f"got {reduction!r}")
        self.loss_weight, self.reduction = float(loss_weight), reduction

    def reduce(self, x: torch.Tensor) -> torch.Tensor:
        """Apply ``self.reduction`` to an element-wise loss."""
        if self.reduction == "mean":
            return x.mean()
        return x.sum() if self.reduction == "sum" else x

    def extra_repr(self) -> str:
        return f"loss_weight={self.loss_weight:g}, reduction={self.reduction!r}"


def register_loss(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make a loss module buildable by ``name`` in a loss spec.

    The class must accept ``loss_weight`` and ``reduction`` keyword arguments and a
    ``forward(sr, hr, **context)``; it may set ``needs`` (context keys it reads).
    """
    if not isinstance(name, str) or not name.isidentifier() or name == TOTAL:
        raise ValueError(f"loss names are identifiers other than {TOTAL!r}, got {name!r}")

    def decorator(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _LOSSES and _LOSSES[name].__qualname__ != cls.__qualname__:
            raise ValueError(f"loss {name!r} is already registered to {_LOSSES[name].__qualname__}")
        _LOSSES[name] = cls
        return cls

    return decorator


def list_losses() -> list[str]:
    """Registered loss names, sorted."""
    return sorted(_LOSSES)


def get_loss(name: str) -> type[nn.Module]:
    """The registered class for ``name``; ValueError listing the known names otherwise."""
    if name not in _LOSSES:
        raise ValueError(f"unknown loss {name!r}; known losses: {list_losses()} "
                         "(register new ones with srlib.losses.register_loss)")
    return _LOSSES[name]


def normalize_loss_spec(spec) -> str | dict:
    """Validate a loss spec; returns it in canonical form (a name, or ``{name: float | dict}``).

    Checks names against the registry, weights (finite, >= 0) and keyword names against the
    loss's signature without building it (a perceptual loss would load a network).
    """
    if isinstance(spec, str):
        get_loss(spec)
        return spec
    if not isinstance(spec, Mapping) or not spec:
        raise ValueError(f"a loss spec is a name {list_losses()} or a non-empty mapping of names to "
                         f"weights such as {{'l1': 1.0, 'charbonnier': 0.5}}; got {spec!r}")
    return {str(name): _normalize_term(name, value) for name, value in spec.items()}


def _normalize_term(name, value):
    cls = get_loss(name)
    if isinstance(value, Mapping):
        kwargs = dict(value)
        if "loss_weight" in kwargs:
            raise ValueError(f"loss {name!r}: give its weight as 'weight', not 'loss_weight'")
        weight = _weight(name, kwargs.pop("weight", 1.0))
        for key, v in kwargs.items():
            if not _plain(v):
                raise ValueError(f"loss {name!r}: option {key!r} must be a number, string, bool, "
                                 f"None, or a list or str-keyed dict of them (JSON-safe), got {v!r}")
        try:
            inspect.signature(cls).bind(loss_weight=weight, **kwargs)
        except TypeError as exc:
            raise ValueError(f"loss {name!r} does not accept {sorted(kwargs)} ({exc}); its options: "
                             f"{list(inspect.signature(cls).parameters)}") from None
        return {"weight": weight, **{k: _copy_plain(v) for k, v in kwargs.items()}}
    return _weight(name, value)


def _weight(name, value) -> float:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < 0:
        raise ValueError(f"loss {name!r}: weight must be a finite number >= 0, got {value!r}")
    return float(value)


def _copy_plain(v):
    """A JSON-like copy: tuples become lists, mappings plain dicts."""
    if isinstance(v, (list, tuple)):
        return [_copy_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {k: _copy_plain(x) for k, x in v.items()}
    return v


def _plain(v) -> bool:
    if isinstance(v, (list, tuple)):
        return all(_plain(x) for x in v)
    if isinstance(v, Mapping):  # e.g. a perceptual loss's {layer: weight}
        return all(isinstance(k, str) and _plain(x) for k, x in v.items())
    return v is None or isinstance(v, (bool, int, float, str))


def loss_terms(spec) -> dict[str, float]:
    """``{name: weight}`` of a spec (a name has weight 1), in order; e.g. for labels and logs."""
    spec = normalize_loss_spec(spec)
    if isinstance(spec, str):
        return {spec: 1.0}
    return {k: v["weight"] if isinstance(v, dict) else v for k, v in spec.items()}


def build_loss(spec) -> "LossSum":
    """A :class:`LossSum` for a loss spec (a name or a weighted mapping).

    >>> build_loss({"l1": 1.0, "charbonnier": 0.5})(sr, hr)   # {'loss': ..., 'l1': ..., 'charbonnier': ...}
    """
    spec = normalize_loss_spec(spec)
    items = {spec: 1.0}.items() if isinstance(spec, str) else spec.items()
    terms = {}
    for name, value in items:
        kwargs = dict(value) if isinstance(value, dict) else {"weight": value}
        terms[name] = get_loss(name)(loss_weight=kwargs.pop("weight"), **kwargs)
    return LossSum(terms)


def total_loss(terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The sum of ``terms`` in order (one term: that tensor itself, so it is bit-for-bit the term)."""
    values = iter(terms.values())
    try:
        total = next(values)
    except StopIteration:
        raise ValueError("no loss terms to sum") from None
    for value in values:
        total = total + value
    return total


class LossSum(nn.Module):
    """Named, weighted loss terms; ``forward(sr, hr, **context)`` returns ``{'loss': total, name: term}``.

    Each term is a registered loss module already carrying its weight; ``needs`` is the union of
    the terms' context keys. :meth:`terms` returns the terms alone (what the trainer logs and sums).
    """

    def __init__(self, terms: Mapping[str, nn.Module]):
        super().__init__()
        if not terms:
            raise ValueError("LossSum needs at least one term")
        self.parts = nn.ModuleDict(dict(terms))
        self.needs = tuple(dict.fromkeys(k for t in self.parts.values() for k in getattr(t, "needs", ())))

    def terms(self, sr: torch.Tensor, hr: torch.Tensor, **context) -> dict[str, torch.Tensor]:
        """``{name: weighted term}`` in spec order."""
        missing = [k for k in self.needs if context.get(k) is None]
        if missing:
            raise ValueError(f"loss terms {self.names} need context {missing} that was not given "
                             "(e.g. an adversarial term needs Trainer(..., discriminator=...))")
        return {name: term(sr, hr, **context) for name, term in self.parts.items()}

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, **context) -> dict[str, torch.Tensor]:
        terms = self.terms(sr, hr, **context)
        return {TOTAL: total_loss(terms), **terms}

    @property
    def names(self) -> list[str]:
        return list(self.parts)
