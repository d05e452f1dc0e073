"""RDN (Zhang et al., CVPR 2018, Sec. 3): residual dense network, configuration B.

Shallow features F_-1, F_0 (two conv3x3, G0 = 64); D = 16 residual dense blocks, each of
C = 8 densely connected conv3x3 + ReLU layers of growth G = 64, fused by a 1x1 conv (local
feature fusion) with a local residual; global feature fusion (1x1 then 3x3 over the
concatenated block outputs) plus global residual from F_-1; the official code's upsampler
(conv + PixelShuffle, two x2 stages for x4: the shared ``SubPixelUpsampler(g0, g, s,
stages="log2")``, its layers unpacked so the keys stay ``up.0`` ...) and a final conv3x3.
Inputs are [0, 1]; the official model has no mean shift.
"""
from __future__ import annotations

import torch
from torch import nn

from ..blocks import SubPixelUpsampler, conv


class RDB(nn.Module):
    """Residual dense block: C densely connected layers, 1x1 local fusion, local residual."""

    def __init__(self, g0: int, g: int, c: int):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(conv(g0 + i * g, g, 3), nn.ReLU(inplace=True)) for i in range(c))
        self.lff = nn.Conv2d(g0 + c * g, g0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = x
        for layer in self.layers:
            feats = torch.cat([feats, layer(feats)], dim=1)
        return x + self.lff(feats)


class RDN(nn.Module):
    """RDN; configuration B: ``g0=64, d=16, c=8, g=64``."""

    def __init__(self, scale: int, g0: int = 64, d: int = 16, c: int = 8, g: int = 64):
        super().__init__()
        self.scale = scale
        self.sfe1, self.sfe2 = conv(3, g0, 3), conv(g0, g0, 3)
        self.rdbs = nn.ModuleList(RDB(g0, g, c) for _ in range(d))
        self.gff = nn.Sequential(nn.Conv2d(d * g0, g0, 1), conv(g0, g0, 3))
        if scale not in (2, 3, 4):
            raise ValueError(f"RDN upsamples x2, x3 or x4, not x{scale}")
        self.up = nn.Sequential(*SubPixelUpsampler(g0, g, scale, stages="log2"), conv(g, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f_1 = self.sfe1(x)
        h, outs = self.sfe2(f_1), []
        for rdb in self.rdbs:
            h = rdb(h)
            outs.append(h)
        return self.up(self.gff(torch.cat(outs, dim=1)) + f_1)
