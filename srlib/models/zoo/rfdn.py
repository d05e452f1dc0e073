"""RFDN: Liu et al., "Residual Feature Distillation Network for Lightweight Image
Super-Resolution", ECCVW (AIM) 2020.

Residual feature distillation blocks (Sec. 3.2: 1x1 distillation + shallow-residual 3x3
refinement, three steps) with enhanced spatial attention (ESA, Sec. 3.3), in IMDN's frame
(:class:`~srlib.models.zoo.imdn.DistillationSR`: fusion, long skip, pixel-shuffle upsampler).
Configured as the released AIM 2020 challenge model (nf = 50, 4 blocks, x4); module names
follow the official ``RFDN.py``/``block.py``.

The released weights expect RGB in [0, 255] (the official ``test.py`` feeds uint8 values
without dividing by 255); ``forward`` takes [0, 1], scales to 255 and back. ESA downsamples by
a stride-2 conv and a 7x7/3 max-pool, so inputs must be at least 15x15 pixels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks import conv, lrelu
from .imdn import DistillationSR


class ESA(nn.Module):
    """Enhanced spatial attention: strided conv + max-pool -> convs -> bilinear back -> mask."""

    def __init__(self, nf: int):
        super().__init__()
        f = nf // 4
        self.conv1 = conv(nf, f, 1)
        self.conv_f = conv(f, f, 1)
        self.conv_max = conv(f, f, 3)
        self.conv2 = conv(f, f, 3, stride=2, padding=0)
        self.conv3 = conv(f, f, 3)
        self.conv3_ = conv(f, f, 3)
        self.conv4 = conv(f, nf, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1 = self.conv1(x)
        v = F.max_pool2d(self.conv2(c1), kernel_size=7, stride=3)
        v = torch.relu(self.conv3(torch.relu(self.conv_max(v))))
        v = F.interpolate(self.conv3_(v), size=x.shape[2:], mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.conv4(v + self.conv_f(c1)))


class RFDB(nn.Module):
    """Residual feature distillation block (distilled half width, refined full width)."""

    def __init__(self, nf: int = 50):
        super().__init__()
        dc = nf // 2
        for i in (1, 2, 3):
            self.add_module(f"c{i}_d", conv(nf, dc, 1))
            self.add_module(f"c{i}_r", conv(nf, nf, 3))
        self.c4 = conv(nf, dc, 3)
        self.c5 = conv(dc * 4, nf, 1)
        self.esa = ESA(nf)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distilled = []
        for i in (1, 2, 3):
            distilled.append(lrelu(getattr(self, f"c{i}_d")(x)))
            x = lrelu(getattr(self, f"c{i}_r")(x) + x)
        distilled.append(lrelu(self.c4(x)))
        return self.esa(self.c5(torch.cat(distilled, dim=1)))


class RFDN(DistillationSR):
    """Residual Feature Distillation Network: IMDN's frame with RFDBs, on [0, 255] values.

    Args:
        scale: upscaling factor (released weights: x4). nf: channels (50). num_modules: RFDBs (4).
    """

    block, prefix, rgb_range = RFDB, "B", 255.0

    def __init__(self, scale: int = 4, nf: int = 50, num_modules: int = 4):
        super().__init__(scale, nf, num_modules)
