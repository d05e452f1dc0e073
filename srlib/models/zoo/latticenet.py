"""LatticeNet: Luo et al., "LatticeNet: Towards Lightweight Image Super-resolution with
Lattice Block", ECCV 2020.

Lattice blocks (Sec. 3.2: two butterfly stages whose combination coefficients come from
channel mean and standard deviation, Eq. 2-6), backward feature fusion (Sec. 3.3) and a
pixel-shuffle tail. Module names follow the official ``model/latticenet.py``.

The official model works on RGB in [0, 255] (EDSR code base); ``forward`` scales [0, 1]
inputs to that range and back. The EDSR-style mean shifts ``sub_mean``/``add_mean`` are
ordinary 1x1 convs initialised to the DIV2K mean shift: in the official training they were
not frozen, and the released weights hold trained values, so they are loaded from the file.
Each half of ``CC`` is the shared :func:`~srlib.models.blocks.squeeze_excite` (keys ``0``,
``2``); the tail ends in a one-stage :class:`~srlib.models.blocks.SubPixelUpsampler`, its
layers unpacked to keep the official ``tail.1`` key.
"""
from __future__ import annotations

import torch
from torch import nn

from ..blocks import DIV2K_RGB_MEAN, SubPixelUpsampler, squeeze_excite

RGB_RANGE = 255.0


def mean_shift_conv(sign: int, rgb_range: float = RGB_RANGE) -> nn.Conv2d:
    """1x1 conv computing x + sign * rgb_range * mean (identity weight), as EDSR's MeanShift."""
    conv = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        conv.bias.copy_(sign * rgb_range * torch.tensor(DIV2K_RGB_MEAN))
    return conv


class CC(nn.Module):
    """Combination coefficient: average of two squeeze-excite branches on channel mean and
    channel standard deviation (unbiased, as ``torch.std``)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.conv_mean = squeeze_excite(channels, reduction)
        self.conv_std = squeeze_excite(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2)
        mean = flat.mean(dim=2)[..., None, None]
        std = flat.std(dim=2)[..., None, None]
        return (self.conv_mean(mean) + self.conv_std(std)) / 2


def conv_stack(nf: int, nd: int) -> nn.Sequential:
    """3x3 convs nf -> nf-nd -> nf-nd -> nf, each followed by LeakyReLU(0.05)."""
    mid = nf - nd
    layers = []
    for cin, cout in ((nf, mid), (mid, mid), (mid, nf)):
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.05)]
    return nn.Sequential(*layers)


class LatticeBlock(nn.Module):
    """Lattice block: two butterfly structures, then a 1x1 conv over [P3, Q3]."""

    def __init__(self, nf: int = 64, nd: int = 16):
        super().__init__()
        self.conv_block0 = conv_stack(nf, nd)
        self.fea_ca1, self.x_ca1 = CC(nf), CC(nf)
        self.conv_block1 = conv_stack(nf, nd)
        self.fea_ca2, self.x_ca2 = CC(nf), CC(nf)
        self.compress = nn.Conv2d(2 * nf, nf, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.conv_block0(x)
        p1 = x + self.fea_ca1(f) * f
        q1 = f + self.x_ca1(x) * x
        g = self.conv_block1(p1)
        p3 = g + self.fea_ca2(q1) * q1
        q3 = q1 + self.x_ca2(g) * g
        return self.compress(torch.cat([p3, q3], dim=1))


def _tdm(nf: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(nf, nf // 2, 1), nn.ReLU())


class LatticeNet(nn.Module):
    """LatticeNet.

    Args:
        scale: upscaling factor (pixel-shuffle tail). nf: channels (64).
        nd: channel difference inside the conv stacks (16, i.e. 48 middle channels).
    """

    def __init__(self, scale: int = 4, nf: int = 64, nd: int = 16):
        super().__init__()
        self.scale = scale
        self.sub_mean = mean_shift_conv(-1)
        self.conv1 = nn.Conv2d(3, nf, 3, padding=1)
        self.conv2 = nn.Conv2d(nf, nf, 3, padding=1)
        for i in range(1, 5):
            self.add_module(f"body_unit{i}", LatticeBlock(nf, nd))
        for i in range(1, 4):
            self.add_module(f"T_tdm{i}", _tdm(nf))
            self.add_module(f"L_tdm{i}", _tdm(nf))
        self.tail = nn.Sequential(nn.Conv2d(nf, nf, 3, padding=1), *SubPixelUpsampler(nf, 3, scale))
        self.add_mean = mean_shift_conv(+1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = self.conv2(self.conv1(self.sub_mean(x * RGB_RANGE)))
        res = [head]
        for i in range(1, 5):
            res.append(getattr(self, f"body_unit{i}")(res[-1]))
        fused = res[4]
        for i in range(1, 4):  # backward fusion: block 4 with 3, then with 2, then with 1
            top = getattr(self, f"T_tdm{i}")(fused)
            fused = torch.cat([top, getattr(self, f"L_tdm{i}")(res[4 - i])], dim=1)
        return self.add_mean(self.tail(fused + head)) / RGB_RANGE
