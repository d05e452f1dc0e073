"""YanCNN: the plain CNN of Yan et al. 2024, "Research on Image Super-Resolution Reconstruction
Mechanism based on CNN" (seed text ``002_85103154dfa612b9.txt``, Sec. 3 and 4.1).

The equations did not survive extraction, so we follow the prose:

- **extract** (Sec. 3.1, Eq. 1-3): conv + batch norm + ReLU on the LR image.
- **mapping** (Sec. 3.2, Eq. 4-5): a stack of conv + ReLU layers; batch norm is "possibly"
  there, so it is the switch ``bn_mapping`` (default off).
- **reconstruct** (Eq. 6; sub-pixel per the abstract): a conv to ``3 s^2`` channels +
  PixelShuffle(s). Eq. 6 writes an activation sigma around it; we leave the output linear, since the residual
  below must take negative values.
- **residual learning** (abstract): a global bicubic skip, output = bicubic(LR) +
  network residual, as in VDSR. The claim that residual learning "accelerates training and
  improves convergence" is VDSR's claim about this global residual, so we read it that way.
  The bicubic is :func:`srlib.data.resize.imresize` (MATLAB's, the benchmark degradation's
  counterpart), two matrix products, so gradients pass; it runs outside autocast.

Our choices; the paper gives none: 3x3 kernels everywhere, ``n_feats=64``, ``n_mapping=6``,
PyTorch's default initialisation. Convs keep their bias (Eq. 2 and 5 have ``b``) even before
batch norm. Training (Sec. 4.1): MSE loss, Adam, lr 1e-4, 50 epochs (the registry entry sets
loss, lr and a constant schedule; the profile sets the number of steps).
"""
from __future__ import annotations

import torch
from torch import nn

from ..data.resize import imresize
from .blocks import conv


def _layer(in_ch: int, out_ch: int, bn: bool) -> nn.Sequential:
    """conv (+ batch norm) + ReLU: Eq. 2-3 (extract) and Eq. 5 (one mapping layer)."""
    layers = [conv(in_ch, out_ch, 3)]
    if bn:
        layers.append(nn.BatchNorm2d(out_ch))
    return nn.Sequential(*layers, nn.ReLU(inplace=True))


class YanCNN(nn.Module):
    """Extract -> mapping -> sub-pixel reconstruct, plus a global bicubic skip (Sec. 3).

    Args:
        scale: upscaling factor s.
        n_feats: feature maps of every hidden layer (our choice: 64).
        n_mapping: conv + ReLU layers in the non-linear mapping (our choice: 6).
        bn_mapping: batch norm in each mapping layer (Sec. 3.2 "possibly"; default off).
    """

    def __init__(self, scale: int, n_feats: int = 64, n_mapping: int = 6, bn_mapping: bool = False):
        super().__init__()
        self.scale = scale
        self.extract = _layer(3, n_feats, bn=True)
        self.mapping = nn.Sequential(*(_layer(n_feats, n_feats, bn_mapping) for _ in range(n_mapping)))
        self.reconstruct = nn.Sequential(conv(n_feats, 3 * scale**2, 3), nn.PixelShuffle(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, h, w) in [0, 1] -> (N, 3, h*s, w*s): bicubic(x) + residual (Eq. 1, 4, 6)."""
        return self.bicubic(x) + self.reconstruct(self.mapping(self.extract(x)))

    def bicubic(self, x: torch.Tensor) -> torch.Tensor:
        """The global skip, MATLAB bicubic in ``x``'s dtype: outside autocast, so bf16 training
        rounds only the small residual, not the image. (The ``meta`` device of the Multi-Adds
        count has no autocast.)"""
        if x.device.type == "meta":
            return imresize(x, scale=self.scale)
        with torch.autocast(x.device.type, enabled=False):
            return imresize(x, scale=self.scale)
