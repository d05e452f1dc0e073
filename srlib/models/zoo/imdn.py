"""IMDN: Hui et al., "Lightweight Image Super-Resolution with Information Multi-distillation
Network", ACM MM 2019.

Information multi-distillation blocks (Sec. 3.2: progressive refinement with channel split,
contrast-aware channel attention, Eq. 3-5), six of them fused by a 1x1 conv, and a
pixel-shuffle upsampler. Module names follow the official ``architecture.py``/``block.py`` so
the released ``IMDN_x{2,3,4}.pth`` files load (their ``module.`` prefix is stripped by the
loader). Works on RGB in [0, 1], like the official code. The official ``CCALayer`` is the shared
:class:`~srlib.models.blocks.ChannelAttention` with ``pool="contrast"`` (same ``conv_du`` keys).

:class:`DistillationSR` is IMDN's frame (Sec. 3.1), which RFDN (:mod:`.rfdn`) reuses with its
own block; its module names match both official files.
"""
from __future__ import annotations

import torch
from torch import nn

from ..blocks import ChannelAttention, SubPixelUpsampler, conv, lrelu


class IMDB(nn.Module):
    """Information multi-distillation block: three split steps (keep 1/4, refine 3/4), CCA, 1x1."""

    def __init__(self, nf: int = 64, rate: float = 0.25):
        super().__init__()
        self.dc = int(nf * rate)
        self.rc = nf - self.dc
        self.c1 = conv(nf, nf, 3)
        self.c2 = conv(self.rc, nf, 3)
        self.c3 = conv(self.rc, nf, 3)
        self.c4 = conv(self.rc, self.dc, 3)
        self.c5 = conv(self.dc * 4, nf, 1)
        self.cca = ChannelAttention(self.dc * 4, reduction=16, pool="contrast")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1, r1 = torch.split(lrelu(self.c1(x)), (self.dc, self.rc), dim=1)
        d2, r2 = torch.split(lrelu(self.c2(r1)), (self.dc, self.rc), dim=1)
        d3, r3 = torch.split(lrelu(self.c3(r2)), (self.dc, self.rc), dim=1)
        out = torch.cat([d1, d2, d3, self.c4(r3)], dim=1)
        return self.c5(self.cca(out)) + x


class DistillationSR(nn.Module):
    """IMDN's frame (Sec. 3.1, Fig. 2), shared with RFDN: a 3x3 feature conv, ``num_modules``
    blocks in a chain whose outputs are concatenated, fused by a 1x1 conv + LReLU(0.05) and a
    3x3 conv, a long skip from the features, and a one-stage sub-pixel upsampler to RGB.

    Subclasses set ``block`` (the block class), ``prefix`` (its attribute name: ``IMDB{i}``,
    ``B{i}``) and ``rgb_range`` (the value range the released weights expect).
    """

    block: type[nn.Module]
    prefix: str
    rgb_range: float = 1.0

    def __init__(self, scale: int = 4, nf: int = 64, num_modules: int = 6):
        super().__init__()
        self.scale = scale
        self.num_modules = num_modules
        self.fea_conv = conv(3, nf, 3)
        for i in range(1, num_modules + 1):
            self.add_module(f"{self.prefix}{i}", self.block(nf))
        self.c = nn.Sequential(conv(nf * num_modules, nf, 1), nn.LeakyReLU(0.05))
        self.LR_conv = conv(nf, nf, 3)
        self.upsampler = SubPixelUpsampler(nf, 3, scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fea = out = self.fea_conv(x * self.rgb_range)
        outs = []
        for i in range(1, self.num_modules + 1):
            out = getattr(self, f"{self.prefix}{i}")(out)
            outs.append(out)
        lr = self.LR_conv(self.c(torch.cat(outs, dim=1))) + fea
        return self.upsampler(lr) / self.rgb_range


class IMDN(DistillationSR):
    """Information Multi-distillation Network.

    Args:
        scale: upscaling factor (pixel-shuffle upsampler, any integer).
        nf: channels (64). num_modules: IMDBs (6).
    """

    block, prefix = IMDB, "IMDB"
