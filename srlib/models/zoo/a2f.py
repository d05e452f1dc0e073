"""A2F: Wang et al., "Lightweight Single-Image Super-Resolution Network with Attentive
Auxiliary Feature Learning", ACCV 2020.

Every layer adds, with learned scalars, its input, a residual block's output and an
*attentive auxiliary feature*: a 1x1 conv over all earlier layer outputs followed by channel
attention (Sec. 3). Weight-normalised head/body/tail/skip convs, pixel-shuffle tail plus a
pixel-shuffle skip branch from the input. A2F-SD: 16 channels, 8 layers; A2F-S: 32 channels,
4 layers (official ``yaml/train_{sd,s}_x4.yaml``). Module names follow ``Model_zoo/aaf.py``.

The official model works on RGB in [0, 255], normalised inside as (x - 255 mean) / 127.5;
with [0, 1] inputs that is (x - mean) / 0.5, and the output maps back by * 0.5 + mean.
Weight norm is ``blocks.wn_conv`` (parametrizations); ``convert_state_dict`` renames the
official ``weight_g``/``weight_v`` keys to it. The official ``CALayer`` is the shared
:class:`~srlib.models.blocks.ChannelAttention` (reduction 1, same ``conv_du`` keys) and the
tail and skip are one-stage :class:`~srlib.models.blocks.SubPixelUpsampler` s (keys ``0``, ``1``).
"""
from __future__ import annotations

import torch
from torch import nn

from ..blocks import (
    DIV2K_RGB_MEAN,
    ChannelAttention,
    MeanShift,
    Scale,
    SubPixelUpsampler,
    rename_weight_norm_keys,
    wn_conv,
)


class BlockA(nn.Module):
    """WN conv3x3 n->block_feats, ReLU, WN conv3x3 block_feats->n (no skip inside)."""

    def __init__(self, nf: int, block_feats: int):
        super().__init__()
        self.body = nn.Sequential(wn_conv(nf, block_feats, 3), nn.ReLU(inplace=True),
                                  wn_conv(block_feats, nf, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class A2F(nn.Module):
    """Attentive auxiliary feature network.

    Args:
        scale: upscaling factor. n_feats: channels (A2F-SD 16, A2F-S 32).
        n_layers: layers (A2F-SD 8, A2F-S 4). block_feats: residual block width (128).
        use_ca: channel attention on the auxiliary features (True).
    """

    def __init__(self, scale: int = 4, n_feats: int = 32, n_layers: int = 4,
                 block_feats: int = 128, use_ca: bool = True):
        super().__init__()
        self.scale = scale
        self.shift = MeanShift(DIV2K_RGB_MEAN, std=0.5)  # = (255 x - 255 mean) / 127.5
        self.head = nn.Sequential(wn_conv(3, n_feats, 3))
        self.body = nn.Sequential(*[BlockA(n_feats, block_feats) for _ in range(n_layers)])
        self.tail = SubPixelUpsampler(n_feats, 3, scale, weight_norm=True)
        self.skip = SubPixelUpsampler(3, 3, scale, weight_norm=True)
        self.x_scale_list = nn.ModuleList(Scale() for _ in range(n_layers))
        self.res_scale_list = nn.ModuleList(Scale() for _ in range(n_layers))
        self.auxilary_scale_list = nn.ModuleList(Scale() for _ in range(n_layers))
        self.fusion_conv_list = nn.ModuleList(
            nn.Sequential(nn.Conv2d(n_feats * (j + 1), n_feats, 1, bias=False),
                          *([ChannelAttention(n_feats, reduction=1)] if use_ca else []))
            for j in range(n_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.shift.normalize(x)
        state = self.head(x)
        states = [state]
        for i, block in enumerate(self.body):
            aux = self.fusion_conv_list[i](torch.cat(states, dim=1))
            state = (self.x_scale_list[i](state) + self.res_scale_list[i](block(state))
                     + self.auxilary_scale_list[i](aux))
            states.append(state)
        out = self.tail(state) + self.skip(x)
        return self.shift.denormalize(out)

    def convert_state_dict(self, sd: dict) -> dict:
        """Official ``weight_g``/``weight_v`` -> ``parametrizations.weight.original0/1``."""
        return rename_weight_norm_keys(sd)
