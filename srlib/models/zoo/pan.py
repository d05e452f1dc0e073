"""PAN: Zhao et al., "Efficient Image Super-Resolution Using Pixel Attention", ECCVW 2020.

SC-PA trunk (Sec. 3.2: self-calibrated convolution with pixel attention), U-PA reconstruction
(Sec. 3.3: nearest upsampling, conv, pixel attention) and a bilinear global skip. Module names
follow the official ``PAN_arch.py`` so the released ``PANx{2,3,4}_DF2K.pth`` files load as
they are. Works on RGB in [0, 1], like the official code. The official ``PA`` is the shared
:class:`~srlib.models.blocks.PixelAttention` (same ``conv`` key).
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks import PixelAttention, lrelu

_lrelu = partial(lrelu, slope=0.2)  # PAN's slope


class PAConv(nn.Module):
    """Pixel-attention convolution: k4(k3(x) * sigmoid(k2(x)))."""

    def __init__(self, nf: int):
        super().__init__()
        self.k2 = nn.Conv2d(nf, nf, 1)
        self.k3 = nn.Conv2d(nf, nf, 3, padding=1, bias=False)
        self.k4 = nn.Conv2d(nf, nf, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.k4(self.k3(x) * torch.sigmoid(self.k2(x)))


class SCPA(nn.Module):
    """Self-calibrated block with pixel attention: a plain 3x3 branch and a PAConv branch."""

    def __init__(self, nf: int, reduction: int = 2):
        super().__init__()
        width = nf // reduction
        self.conv1_a = nn.Conv2d(nf, width, 1, bias=False)
        self.conv1_b = nn.Conv2d(nf, width, 1, bias=False)
        self.k1 = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False))
        self.PAConv = PAConv(width)
        self.conv3 = nn.Conv2d(width * reduction, nf, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = _lrelu(self.k1(_lrelu(self.conv1_a(x))))
        b = _lrelu(self.PAConv(_lrelu(self.conv1_b(x))))
        return x + self.conv3(torch.cat([a, b], dim=1))


class PAN(nn.Module):
    """Pixel Attention Network.

    Args:
        scale: 2, 3 or 4 (x4 uses two x2 U-PA stages, x2/x3 one stage).
        nf: trunk channels (40). unf: reconstruction channels (24). nb: SC-PA blocks (16).
    """

    def __init__(self, scale: int = 4, nf: int = 40, unf: int = 24, nb: int = 16):
        super().__init__()
        if scale not in (2, 3, 4):
            raise ValueError(f"PAN supports x2, x3, x4, not x{scale}")
        self.scale = scale
        self.conv_first = nn.Conv2d(3, nf, 3, padding=1)
        self.SCPA_trunk = nn.Sequential(*[SCPA(nf) for _ in range(nb)])
        self.trunk_conv = nn.Conv2d(nf, nf, 3, padding=1)
        self.upconv1 = nn.Conv2d(nf, unf, 3, padding=1)
        self.att1 = PixelAttention(unf)
        self.HRconv1 = nn.Conv2d(unf, unf, 3, padding=1)
        if scale == 4:
            self.upconv2 = nn.Conv2d(unf, unf, 3, padding=1)
            self.att2 = PixelAttention(unf)
            self.HRconv2 = nn.Conv2d(unf, unf, 3, padding=1)
        self.conv_last = nn.Conv2d(unf, 3, 3, padding=1)

    def _upa(self, fea: torch.Tensor, factor: int, stage: int) -> torch.Tensor:
        """One U-PA stage: nearest upsampling, conv, PA, LReLU, conv, LReLU."""
        up, att, hr = (getattr(self, f"{n}{stage}") for n in ("upconv", "att", "HRconv"))
        fea = up(F.interpolate(fea, scale_factor=factor, mode="nearest"))
        return _lrelu(hr(_lrelu(att(fea))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fea = self.conv_first(x)
        fea = fea + self.trunk_conv(self.SCPA_trunk(fea))
        if self.scale == 4:
            fea = self._upa(self._upa(fea, 2, 1), 2, 2)
        else:
            fea = self._upa(fea, self.scale, 1)
        skip = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return self.conv_last(fea) + skip
