"""IMDN: Hui et al., "Lightweight Image Super-Resolution with Information Multi-distillation
Network", ACM MM 2019.

Information multi-distillation blocks (Sec. 3.2: progressive refinement with channel split,
contrast-aware channel attention, Eq. 3-5), six of them fused by a 1x1 conv, and a
pixel-shuffle upsampler. Module names follow the official ``architecture.py``/``block.py`` so
the released ``IMDN_x{2,3,4}.pth`` files load (their ``module.`` prefix is stripped by the
loader). Works on RGB in [0, 1], like the official code.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks import conv as _conv


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.05)


class CCALayer(nn.Module):
    """Contrast-aware channel attention: (spatial std + spatial mean) -> squeeze-excite."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1), nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()  # population std
        return x * self.conv_du(std + mean)


class IMDB(nn.Module):
    """Information multi-distillation block: three split steps (keep 1/4, refine 3/4), CCA, 1x1."""

    def __init__(self, nf: int = 64, rate: float = 0.25):
        super().__init__()
        self.dc = int(nf * rate)
        self.rc = nf - self.dc
        self.c1 = _conv(nf, nf, 3)
        self.c2 = _conv(self.rc, nf, 3)
        self.c3 = _conv(self.rc, nf, 3)
        self.c4 = _conv(self.rc, self.dc, 3)
        self.c5 = _conv(self.dc * 4, nf, 1)
        self.cca = CCALayer(self.dc * 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1, r1 = torch.split(_lrelu(self.c1(x)), (self.dc, self.rc), dim=1)
        d2, r2 = torch.split(_lrelu(self.c2(r1)), (self.dc, self.rc), dim=1)
        d3, r3 = torch.split(_lrelu(self.c3(r2)), (self.dc, self.rc), dim=1)
        out = torch.cat([d1, d2, d3, self.c4(r3)], dim=1)
        return self.c5(self.cca(out)) + x


class IMDN(nn.Module):
    """Information Multi-distillation Network.

    Args:
        scale: upscaling factor (pixel-shuffle upsampler, any integer).
        nf: channels (64). num_modules: IMDBs (6).
    """

    def __init__(self, scale: int = 4, nf: int = 64, num_modules: int = 6):
        super().__init__()
        self.scale = scale
        self.num_modules = num_modules
        self.fea_conv = _conv(3, nf, 3)
        for i in range(1, num_modules + 1):
            self.add_module(f"IMDB{i}", IMDB(nf))
        self.c = nn.Sequential(_conv(nf * num_modules, nf, 1), nn.LeakyReLU(0.05))
        self.LR_conv = _conv(nf, nf, 3)
        self.upsampler = nn.Sequential(_conv(nf, 3 * scale**2, 3), nn.PixelShuffle(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fea = out = self.fea_conv(x)
        outs = []
        for i in range(1, self.num_modules + 1):
            out = getattr(self, f"IMDB{i}")(out)
            outs.append(out)
        lr = self.LR_conv(self.c(torch.cat(outs, dim=1))) + fea
        return self.upsampler(lr)
