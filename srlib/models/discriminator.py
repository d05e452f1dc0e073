"""Discriminator for the adversarial loss (seed 000 Eq. 14): a VGG-style classifier of patches.

Seed 000 names only "a discriminative network trained to differentiate super-resolved outputs
from ground truth samples". The layout is SRGAN's (Ledig et al. 2017, Fig. 4), which ESRGAN's
``VGGStyleDiscriminator`` follows: eight 3x3 convs, 64-64-128-128-256-256-512-512 channels (times
``nf / 64``), stride 2 on every second, BatchNorm after all but the first, LeakyReLU 0.2, then
two dense layers to one logit.

Readings chosen:

- Any patch size: the stride-2 convs are 3x3 with padding 1 (SRGAN's), so a side of ``n``
  becomes ``ceil(n / 2)`` and never vanishes, and an ``AdaptiveAvgPool2d(pool)`` sits before
  the dense head (ESRGAN's 128x128 discriminator flattens a fixed 4x4x512 map instead). A
  128-pixel patch reaches 8x8 and is pooled to 4x4; a 16-pixel one reaches 1x1, which the pool
  repeats.
- Dense head ``8 nf * pool^2 -> hidden -> 1`` with ``hidden=100`` (ESRGAN/BasicSR; SRGAN uses
  1024), LeakyReLU 0.2 between, no sigmoid: the losses take logits.
- Convs followed by BatchNorm carry no bias (the norm's shift replaces it); ``norm='none'``
  gives every conv a bias (e.g. for an R1 penalty without batch coupling).

Build by name with :func:`build_discriminator` (``'vgg'`` or ``{'name': 'vgg', 'nf': 32}``), the
form ``TrainConfig.discriminator`` stores.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import conv

NORMS = ("batch", "none")


class VGGDiscriminator(nn.Module):
    """SRGAN/ESRGAN-style discriminator: (N, 3, H, W) in [0, 1] -> (N, 1) logits, any H, W >= 1.

    Args:
        nf: channels of the first stage (64 in SRGAN/ESRGAN); stages use nf, 2nf, 4nf, 8nf.
        norm: ``'batch'`` (SRGAN) or ``'none'``.
        pool: side of the adaptive average pool before the head.
        hidden: width of the first dense layer.
        slope: LeakyReLU slope.
    """

    def __init__(self, nf: int = 64, norm: str = "batch", pool: int = 4, hidden: int = 100,
                 slope: float = 0.2):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"VGGDiscriminator: norm must be one of {NORMS}, got {norm!r}")
        for name, v in (("nf", nf), ("pool", pool), ("hidden", hidden)):
            if int(v) < 1:
                raise ValueError(f"VGGDiscriminator: {name} must be >= 1, got {v!r}")
        self.slope = float(slope)
        widths = [nf, nf, 2 * nf, 2 * nf, 4 * nf, 4 * nf, 8 * nf, 8 * nf]
        self.convs, self.norms = nn.ModuleList(), nn.ModuleList()
        c_in = 3
        for i, c_out in enumerate(widths):
            with_norm = norm == "batch" and i > 0
            self.convs.append(conv(c_in, c_out, 3, bias=not with_norm, stride=1 + i % 2))
            self.norms.append(nn.BatchNorm2d(c_out) if with_norm else nn.Identity())
            c_in = c_out
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.fc1 = nn.Linear(c_in * pool * pool, hidden)
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c, n in zip(self.convs, self.norms):
            x = F.leaky_relu(n(c(x)), self.slope)
        x = self.pool(x).flatten(1)
        return self.fc2(F.leaky_relu(self.fc1(x), self.slope))


DISCRIMINATORS: dict[str, type[nn.Module]] = {"vgg": VGGDiscriminator}


def build_discriminator(spec) -> nn.Module:
    """A discriminator from a name (``'vgg'``) or ``{'name': 'vgg', **options}``."""
    if isinstance(spec, str):
        name, kwargs = spec, {}
    elif isinstance(spec, Mapping) and "name" in spec:
        kwargs = dict(spec)
        name = kwargs.pop("name")
    else:
        raise ValueError(f"a discriminator spec is a name {sorted(DISCRIMINATORS)} or a dict with 'name' "
                         f"and options, e.g. {{'name': 'vgg', 'nf': 32}}; got {spec!r}")
    if name not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator {name!r}; known: {sorted(DISCRIMINATORS)}")
    try:
        return DISCRIMINATORS[name](**kwargs)
    except TypeError as exc:
        raise ValueError(f"discriminator {name!r}: bad options {sorted(kwargs)} ({exc})") from None
