"""INTER baselines: nearest, bilinear and bicubic upscaling as MATLAB ``imresize`` does.

Each is an ``nn.Module`` with the model contract (float RGB in [0, 1] in and out), so the
evaluation treats them like networks. The image is handled as 8-bit values, exactly as
MATLAB's ``imresize`` handles a uint8 image, so ``Bicubic`` reproduces the published bicubic
rows (see notebook 01).
"""
from __future__ import annotations

import torch
from torch import nn

from ..data.resize import imresize_quantized


class Interpolation(nn.Module):
    """Upscale by ``scale`` with a MATLAB ``imresize`` kernel."""

    kernel = "bicubic"

    def __init__(self, scale: int):
        super().__init__()
        self.scale = int(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize_quantized(x, self.scale, kernel=self.kernel)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, kernel={self.kernel!r}"


class Nearest(Interpolation):
    kernel = "nearest"


class Bilinear(Interpolation):
    kernel = "bilinear"


class Bicubic(Interpolation):
    kernel = "bicubic"
