"""EDSR-baseline (Lim et al., CVPRW 2017, Sec. 3.2): 16 residual blocks of 64 channels.

conv3x3 head; 16 x [conv3x3, ReLU, conv3x3] residual blocks (no batch norm, residual scale 1);
a conv3x3 after the body with a long skip; the upsampler (the shared
:class:`~srlib.models.blocks.SubPixelUpsampler`, ``stages="log2"``, EDSR's keys) is one conv +
PixelShuffle(s) for x2/x3 and two x2 stages for x4; a final conv3x3 to RGB; DIV2K mean shift
on [0, 255] values as in the official code (inputs here are [0, 1], so the mean is subtracted
on that scale).
"""
from __future__ import annotations

import torch
from torch import nn

from ..blocks import MeanShift, SubPixelUpsampler, conv


class ResBlock(nn.Module):
    def __init__(self, nf: int, res_scale: float = 1.0):
        super().__init__()
        self.body = nn.Sequential(conv(nf, nf, 3), nn.ReLU(inplace=True), conv(nf, nf, 3))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class EDSR(nn.Module):
    """EDSR; the baseline configuration is ``n_resblocks=16, nf=64, res_scale=1``."""

    def __init__(self, scale: int, n_resblocks: int = 16, nf: int = 64, res_scale: float = 1.0):
        super().__init__()
        self.scale = scale
        self.shift = MeanShift()
        self.head = conv(3, nf, 3)
        self.body = nn.Sequential(*[ResBlock(nf, res_scale) for _ in range(n_resblocks)], conv(nf, nf, 3))
        self.tail = nn.Sequential(SubPixelUpsampler(nf, nf, scale, stages="log2"), conv(nf, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(self.shift.normalize(x))
        return self.shift.denormalize(self.tail(h + self.body(h)))
