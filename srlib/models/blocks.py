"""Shared building blocks: weight-normed conv, learnable scalars, mean shift, attention, fusion.

Nothing here belongs to one paper; a model file composes these. Weight normalisation
(Salimans & Kingma 2016) uses ``torch.nn.utils.parametrizations.weight_norm``, so a conv's
state-dict keys are ``parametrizations.weight.original0`` (the gain g, shape (out, 1, 1, 1))
and ``parametrizations.weight.original1`` (the direction v); the classic
``torch.nn.utils.weight_norm`` layout (``weight_g``/``weight_v``) maps onto them one to one,
see :func:`rename_weight_norm_keys`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)

_WN_KEYS = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}


def conv(in_ch: int, out_ch: int, kernel_size: int, bias: bool = True) -> nn.Conv2d:
    """A stride-1 'same' convolution (padding ``kernel_size // 2``)."""
    return nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=bias)


def wn_conv(in_ch: int, out_ch: int, kernel_size: int, bias: bool = True) -> nn.Conv2d:
    """:func:`conv` with weight normalisation over each output filter (dim 0)."""
    return weight_norm(conv(in_ch, out_ch, kernel_size, bias))


def rename_weight_norm_keys(sd: dict) -> dict:
    """Map classic weight-norm keys (``*.weight_g``, ``*.weight_v``) to the parametrization layout."""
    out = {}
    for key, value in sd.items():
        prefix, dot, leaf = key.rpartition(".")
        out[prefix + dot + _WN_KEYS[leaf] if leaf in _WN_KEYS else key] = value
    return out


class Scale(nn.Module):
    """A learnable scalar multiplier (one parameter ``scale`` of shape (1,))."""

    def __init__(self, init: float = 1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([float(init)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class MeanShift(nn.Module):
    """``normalize(x) = (x - mean) / std`` and its inverse ``denormalize``; no learnable state.

    The buffers are non-persistent: they never appear in (or are expected from) a checkpoint.
    """

    def __init__(self, mean=DIV2K_RGB_MEAN, std: float = 1.0):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.std = float(std)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    forward = normalize

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.std + self.mean


# --- attention -------------------------------------------------------------------------------


class ACAM(nn.Module):
    """Average-pooling channel attention: sigmoid(W2 PReLU(W1 avgpool(x))), no biases.

    The channel half of balanced attention (BAM, Wang et al. 2021, arXiv 2104.07566): average
    pooling only, max pooling being left to the spatial half (MSAM), so each responds to a
    different statistic.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = channels // reduction
        self.squeeze = nn.Conv2d(channels, hidden, 1, bias=False)
        self.act = nn.PReLU(hidden)
        self.excite = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.excite(self.act(self.squeeze(F.adaptive_avg_pool2d(x, 1)))))


class MSAM(nn.Module):
    """Max-pooling spatial attention: sigmoid(conv7x7(max over channels of x)), no bias."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = conv(1, 1, kernel_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x.amax(dim=1, keepdim=True)))


class BalancedAttention(nn.Module):
    """BAM (Wang et al. 2021): ``x * ACAM(x) * MSAM(x)``, the two maps computed in parallel."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.acam = ACAM(channels, reduction)
        self.msam = MSAM()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.acam(x) * self.msam(x)


# --- inference-time fusion -------------------------------------------------------------------


def plain_conv(module: nn.Conv2d, scale: float | torch.Tensor = 1.0) -> nn.Conv2d:
    """A plain ``nn.Conv2d`` computing ``scale * module(x)``.

    Weight norm (if any) is folded into an ordinary ``weight``; ``scale`` into weight and bias.
    """
    w = module.weight
    out = nn.Conv2d(
        module.in_channels, module.out_channels, module.kernel_size,
        stride=module.stride, padding=module.padding, dilation=module.dilation,
        groups=module.groups, bias=module.bias is not None, device=w.device, dtype=w.dtype,
    )
    with torch.no_grad():
        out.weight.copy_(w * scale)
        if module.bias is not None:
            out.bias.copy_(module.bias * scale)
    return out


def merge_parallel_convs(convs: list[nn.Conv2d], scales: list) -> nn.Conv2d:
    """One conv equal to ``sum_i scales[i] * convs[i](x)`` for stride-1 'same' convs of odd sizes.

    Smaller kernels are zero-padded (centred) to the largest; weights and biases add up.
    """
    size = max(c.kernel_size[0] for c in convs)
    ref = convs[0]
    out = conv(ref.in_channels, ref.out_channels, size).to(ref.weight.device, ref.weight.dtype)
    with torch.no_grad():
        out.weight.zero_()
        out.bias.zero_()
        for c, s in zip(convs, scales):
            pad = (size - c.kernel_size[0]) // 2
            out.weight += F.pad(c.weight * s, (pad, pad, pad, pad))
            if c.bias is not None:
                out.bias += c.bias * s
    return out
