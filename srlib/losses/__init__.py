"""Losses: registered ``nn.Module`` terms and their weighted sum.

Usage::

    from srlib.losses import build_loss
    loss = build_loss({"l1": 1.0, "charbonnier": 0.5})
    out = loss(sr, hr)          # {'loss': total, 'l1': ..., 'charbonnier': ...}

``register_loss(name)`` adds a term (the perceptual and adversarial losses join here); a term
that reads more than ``(sr, hr)`` names it in ``needs`` (e.g. ``("discriminator",)``).
"""
from .registry import (REDUCTIONS, TOTAL, Loss, LossSum, build_loss, get_loss, list_losses, loss_terms,
                       normalize_loss_spec, register_loss, total_loss)
from .pixel import CharbonnierLoss, L1Loss, MSELoss  # noqa: E402  (registers l1, mse, charbonnier)

__all__ = [
    "REDUCTIONS",
    "TOTAL",
    "CharbonnierLoss",
    "L1Loss",
    "Loss",
    "LossSum",
    "MSELoss",
    "build_loss",
    "get_loss",
    "list_losses",
    "loss_terms",
    "normalize_loss_spec",
    "register_loss",
    "total_loss",
]
