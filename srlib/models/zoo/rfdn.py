"""RFDN: Liu et al., "Residual Feature Distillation Network for Lightweight Image
Super-Resolution", ECCVW (AIM) 2020.

Residual feature distillation blocks (Sec. 3.2: 1x1 distillation + shallow-residual 3x3
refinement, three steps) with enhanced spatial attention (ESA, Sec. 3.3), the IMDN-style
fusion and a pixel-shuffle upsampler. Configured as the released AIM 2020 challenge model
(nf = 50, 4 blocks, x4); module names follow the official ``RFDN.py``/``block.py``.

The released weights expect RGB in [0, 255] (the official ``test.py`` feeds uint8 values
without dividing by 255); ``forward`` takes [0, 1], scales to 255 and back. ESA downsamples by
a stride-2 conv and a 7x7/3 max-pool, so inputs must be at least 15x15 pixels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RGB_RANGE = 255.0


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.05)


def _conv(cin: int, cout: int, k: int, **kw) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=kw.pop("padding", k // 2), **kw)


class ESA(nn.Module):
    """Enhanced spatial attention: strided conv + max-pool -> convs -> bilinear back -> mask."""

    def __init__(self, nf: int):
        super().__init__()
        f = nf // 4
        self.conv1 = _conv(nf, f, 1)
        self.conv_f = _conv(f, f, 1)
        self.conv_max = _conv(f, f, 3)
        self.conv2 = _conv(f, f, 3, stride=2, padding=0)
        self.conv3 = _conv(f, f, 3)
        self.conv3_ = _conv(f, f, 3)
        self.conv4 = _conv(f, nf, 1)

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
            self.add_module(f"c{i}_d", _conv(nf, dc, 1))
            self.add_module(f"c{i}_r", _conv(nf, nf, 3))
        self.c4 = _conv(nf, dc, 3)
        self.c5 = _conv(dc * 4, nf, 1)
        self.esa = ESA(nf)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distilled = []
        for i in (1, 2, 3):
            distilled.append(_lrelu(getattr(self, f"c{i}_d")(x)))
            x = _lrelu(getattr(self, f"c{i}_r")(x) + x)
        distilled.append(_lrelu(self.c4(x)))
        return self.esa(self.c5(torch.cat(distilled, dim=1)))


class RFDN(nn.Module):
    """Residual Feature Distillation Network.

    Args:
        scale: upscaling factor (released weights: x4). nf: channels (50). num_modules: RFDBs (4).
    """

    def __init__(self, scale: int = 4, nf: int = 50, num_modules: int = 4):
        super().__init__()
        self.scale = scale
        self.num_modules = num_modules
        self.fea_conv = _conv(3, nf, 3)
        for i in range(1, num_modules + 1):
            self.add_module(f"B{i}", RFDB(nf))
        self.c = nn.Sequential(_conv(nf * num_modules, nf, 1), nn.LeakyReLU(0.05))
        self.LR_conv = _conv(nf, nf, 3)
        self.upsampler = nn.Sequential(_conv(nf, 3 * scale**2, 3), nn.PixelShuffle(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fea = out = self.fea_conv(x * RGB_RANGE)
        outs = []
        for i in range(1, self.num_modules + 1):
            out = getattr(self, f"B{i}")(out)
            outs.append(out)
        lr = self.LR_conv(self.c(torch.cat(outs, dim=1))) + fea
        return self.upsampler(lr) / RGB_RANGE
