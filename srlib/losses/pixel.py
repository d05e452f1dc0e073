"""Pixel losses: L1, MSE (L2) and Charbonnier, each ``loss_weight * reduce(elementwise(sr, hr))``.

L1 is the loss of EDSR and AWSRN (Wang et al. 2019, Sec. 4.1); MSE is the seed 002 CNN's
(Yan et al. 2024, Sec. 4.1). L1 and MSE call ``torch.nn.functional.l1_loss`` / ``mse_loss``, so
with weight 1 they are bit for bit torch's. The shape follows BasicSR ``basicsr/losses/basic_loss.py``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import Loss, register_loss


@register_loss("l1")
class L1Loss(Loss):
    """Mean absolute error ``|sr - hr|``.

    Args:
        loss_weight: factor on the reduced loss (1.0).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'`` (``'mean'``).
    """

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, **context) -> torch.Tensor:
        return self.loss_weight * F.l1_loss(sr, hr, reduction=self.reduction)


@register_loss("mse")
class MSELoss(Loss):
    """Mean squared error ``(sr - hr)^2``.

    Args:
        loss_weight: factor on the reduced loss (1.0).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'`` (``'mean'``).
    """

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, **context) -> torch.Tensor:
        return self.loss_weight * F.mse_loss(sr, hr, reduction=self.reduction)


@register_loss("charbonnier")
class CharbonnierLoss(Loss):
    """Charbonnier penalty ``sqrt((sr - hr)^2 + eps)``, a differentiable L1.

    LapSRN (Lai et al. 2017, Eq. 2) writes ``rho(x) = sqrt(x^2 + epsilon^2)`` with
    ``epsilon = 1e-3`` for images in [0, 1], hence the default ``eps = 1e-6`` here (``eps`` is the
    squared term). BasicSR's ``CharbonnierLoss`` defaults to ``eps = 1e-12``, which is L1 to within
    1e-6 per pixel but has a near-infinite curvature at 0; pass ``eps=1e-12`` to match it.

    Args:
        loss_weight: factor on the reduced loss (1.0).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'`` (``'mean'``).
        eps: added to the squared difference (> 0).
    """

    def __init__(self, loss_weight: float = 1.0, reduction: str = "mean", eps: float = 1e-6):
        super().__init__(loss_weight, reduction)
        if not eps > 0:
            raise ValueError(f"CharbonnierLoss: eps must be > 0, got {eps!r}")
        self.eps = float(eps)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, **context) -> torch.Tensor:
        return self.loss_weight * self.reduce(torch.sqrt((sr - hr).square() + self.eps))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, eps={self.eps:g}"
