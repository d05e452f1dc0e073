"""CARN-M: Ahn et al., "Fast, Accurate, and Lightweight Super-Resolution with Cascading
Residual Network", ECCV 2018.

The mobile variant (Sec. 3.3): efficient residual blocks (group convs, g = 4) shared three
times inside each cascading block, local and global cascading by concatenation + 1x1 conv,
and a group-conv pixel-shuffle upsampler (the shared
:class:`~srlib.models.blocks.SubPixelUpsampler`: x2 stages of conv, ReLU, shuffle). Module
names follow the official ``carn_m.py`` / ``ops.py``. The official checkpoint is multi-scale
(``upsample.up2/up3/up4``); this class is built for one scale and ``convert_state_dict`` keeps
only that scale's upsampler. The fixed
DIV2K mean shift is a constant here (not stored). Works on RGB in [0, 1], like the official code.
"""
from __future__ import annotations

from functools import partial

import torch
from torch import nn

from ..blocks import DIV2K_RGB_MEAN, MeanShift, SubPixelUpsampler


class BasicBlock(nn.Module):
    """1x1 conv + ReLU fusing the concatenated cascade (``body.0``)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class EResidualBlock(nn.Module):
    """Efficient residual block: gconv3x3-ReLU-gconv3x3-ReLU-conv1x1, add input, ReLU."""

    def __init__(self, nf: int, group: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(nf, nf, 3, padding=1, groups=group), nn.ReLU(inplace=True),
            nn.Conv2d(nf, nf, 3, padding=1, groups=group), nn.ReLU(inplace=True),
            nn.Conv2d(nf, nf, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + x)


def cascade(x: torch.Tensor, units, fusers) -> torch.Tensor:
    """Cascading connection (Fig. 2): concatenate every unit output, fuse by 1x1 conv."""
    cat = out = x
    for unit, fuse in zip(units, fusers):
        cat = torch.cat([cat, unit(out)], dim=1)
        out = fuse(cat)
    return out


class Block(nn.Module):
    """Local cascading block with one efficient residual block applied three times (shared)."""

    def __init__(self, nf: int, group: int):
        super().__init__()
        self.b1 = EResidualBlock(nf, group)
        self.c1, self.c2, self.c3 = (BasicBlock(nf * k, nf) for k in (2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cascade(x, [self.b1] * 3, [self.c1, self.c2, self.c3])


class CARN_M(nn.Module):
    """CARN-M (mobile) at one scale.

    Args:
        scale: 2, 3, 4 (or 8). nf: channels (64). group: group-conv groups (4).
    """

    def __init__(self, scale: int = 4, nf: int = 64, group: int = 4):
        super().__init__()
        if scale not in (2, 3, 4, 8):
            raise ValueError(f"CARN-M supports x2, x3, x4, x8, not x{scale}")
        self.scale = scale
        self.mean_shift = MeanShift(DIV2K_RGB_MEAN)  # fixed, not in the state dict
        self.entry = nn.Conv2d(3, nf, 3, padding=1)
        self.b1, self.b2, self.b3 = (Block(nf, group) for _ in range(3))
        self.c1, self.c2, self.c3 = (BasicBlock(nf * k, nf) for k in (2, 3, 4))
        self.upsample = SubPixelUpsampler(nf, nf, scale, stages="log2", groups=group,
                                          act=partial(nn.ReLU, inplace=True))
        self.exit = nn.Conv2d(nf, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.entry(self.mean_shift.normalize(x))
        x = cascade(x, [self.b1, self.b2, self.b3], [self.c1, self.c2, self.c3])
        return self.mean_shift.denormalize(self.exit(self.upsample(x)))

    def convert_state_dict(self, sd: dict) -> dict:
        """Official multi-scale keys -> this scale: keep ``upsample.up{scale}``, drop the other
        upsamplers and the constant mean-shift convs. Other keys pass through unchanged."""
        own = (f"upsample.up{self.scale}.body.", "upsample.up.body.")  # multi- / single-scale
        drop = ("upsample.up", "sub_mean.shifter.", "add_mean.shifter.")
        out = {}
        for k, v in sd.items():
            prefix = next((p for p in own if k.startswith(p)), None)
            if prefix is not None:
                out["upsample." + k[len(prefix):]] = v
            elif not k.startswith(drop):
                out[k] = v
        return out
