"""AWSRN: Lightweight Image Super-Resolution with Adaptive Weighted Learning Network.

Wang, Li & Shi 2019, arXiv 1904.02358 (reference code: ChaofWang/AWSRN, ``awsrn.py`` and the
8-unit ``awsrnd.py``). Names follow the paper (Sec. 3):

- **AWRU** (adaptive weighted residual unit): ``y = l_res * conv(relu(conv(x))) + l_x * x``,
  two learnable scalars starting at 1.
- **LRFU** (local residual fusion unit): the outputs of all AWRUs of a block are concatenated,
  reduced by a conv and added to the block input, again with two adaptive scalars.
- **LFB** (local fusion block): ``n_awru`` chained AWRUs followed by an LRFU.
- **AWMS** (adaptive weighted multi-scale reconstruction): parallel 3/5/7/9 convs to
  ``3 s^2`` channels, each weighted by a learnable scalar (start 0.25), pixel-shuffled, summed.
  Branches with small weights can be removed (:meth:`AWMS.prune`), as the paper proposes.
- **AWSRN**: mean shift -> head conv -> LFBs -> AWMS, plus a global skip (3x3 conv + pixel
  shuffle of the LR input); weight normalisation on every conv.

Readings chosen where the text is ambiguous (all follow the reference code, and the published
parameter counts only come out this way):

- The LRFU reduction conv is 3x3, as in the reference code (a 1x1 reduction would not give
  the published sizes).
- Adaptive scalars start at 1 (AWRU, LRFU) and 0.25 (AWMS), as in the reference code.
- ``x8`` uses one pixel shuffle by 8 in both AWMS and the skip (no progressive x2 stages).
- Range: the official code takes RGB in [0, 255] and normalises ``(x - 255 mean) / 127.5``.
  Our models take [0, 1]; the same normalisation is ``(x - mean) / 0.5``, so an official
  checkpoint gives the official output divided by 255 (up to float rounding).
- Pixel shuffle is a permutation, so AWMS sums the weighted branch outputs before one shuffle;
  the result equals the paper's sum of shuffled branches exactly.
- The BAM variant (super-image's ``AwsrnModel(bam=True)``, balanced attention of Wang et al.
  2021, arXiv 2104.07566) applies one :class:`BalancedAttention` (ACAM x MSAM, reduction 8)
  to the LFB output before AWMS and, like super-image, has no mean shift. super-image sizes the
  attention as ``block_feats // 4``; that equals ``n_feats`` in its only configuration, and
  ``n_feats`` is the only width that fits, so we use ``n_feats``.
"""
from __future__ import annotations

import copy
import re

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import (
    DIV2K_RGB_MEAN,
    BalancedAttention,
    MeanShift,
    Scale,
    merge_parallel_convs,
    plain_conv,
    rename_weight_norm_keys,
    wn_conv,
)

# Official (ChaofWang/AWSRN) and super-image key names -> ours; first match wins.
_OFFICIAL_KEYS = [
    (r"^head\.0\.", "head."),
    (r"^skip\.0\.", "skip."),
    (r"^body\.(\d+)\.(?:b|lfl\.)(\d+)\.body\.0\.", r"lfbs.\1.awrus.\2.conv1."),
    (r"^body\.(\d+)\.(?:b|lfl\.)(\d+)\.body\.2\.", r"lfbs.\1.awrus.\2.conv2."),
    (r"^body\.(\d+)\.(?:b|lfl\.)(\d+)\.", r"lfbs.\1.awrus.\2."),
    (r"^body\.(\d+)\.reduction\.", r"lfbs.\1.lrfu.conv."),
    (r"^body\.(\d+)\.(res_scale|x_scale)\.", r"lfbs.\1.lrfu.\2."),
    (r"^tail\.tail_k(\d+)\.", r"awms.convs.k\1."),
    (r"^tail\.scale_k(\d+)\.", r"awms.weights.k\1."),
    (r"^attention\.ca\.fc1\.", "attention.acam.squeeze."),
    (r"^attention\.ca\.relu1\.", "attention.acam.act."),
    (r"^attention\.ca\.fc2\.", "attention.acam.excite."),
    (r"^attention\.sa\.conv1\.", "attention.msam.conv."),
]


def _official_to_ours(key: str) -> str:
    for pattern, repl in _OFFICIAL_KEYS:
        new, hits = re.subn(pattern, repl, key)
        if hits:
            return new
    return key


class AWRU(nn.Module):
    """Adaptive weighted residual unit (Sec. 3, 'Local fusion block'): two adaptive scalars."""

    def __init__(self, n_feats: int, block_feats: int, kernel_size: int = 3):
        super().__init__()
        self.conv1 = wn_conv(n_feats, block_feats, kernel_size)
        self.conv2 = wn_conv(block_feats, n_feats, kernel_size)
        self.res_scale = Scale(1.0)
        self.x_scale = Scale(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_scale(self.conv2(F.relu(self.conv1(x)))) + self.x_scale(x)

    def fuse_(self) -> None:
        """Fold weight norm and ``res_scale`` into plain convs, in place."""
        self.conv1 = plain_conv(self.conv1)
        self.conv2 = plain_conv(self.conv2, self.res_scale.scale)
        self.res_scale = nn.Identity()


class LRFU(nn.Module):
    """Local residual fusion unit: ``l_res * conv3x3(concat(features)) + l_x * x``."""

    def __init__(self, n_feats: int, n_inputs: int, kernel_size: int = 3):
        super().__init__()
        self.conv = wn_conv(n_feats * n_inputs, n_feats, kernel_size)
        self.res_scale = Scale(1.0)
        self.x_scale = Scale(1.0)

    def forward(self, features: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return self.res_scale(self.conv(torch.cat(features, dim=1))) + self.x_scale(x)

    def fuse_(self) -> None:
        """Fold weight norm and ``res_scale`` into a plain conv, in place."""
        self.conv = plain_conv(self.conv, self.res_scale.scale)
        self.res_scale = nn.Identity()


class LFB(nn.Module):
    """Local fusion block: ``n_awru`` chained AWRUs, all their outputs fused by one LRFU."""

    def __init__(self, n_feats: int, block_feats: int, n_awru: int):
        super().__init__()
        self.awrus = nn.ModuleList(AWRU(n_feats, block_feats) for _ in range(n_awru))
        self.lrfu = LRFU(n_feats, n_awru)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, h = [], x
        for awru in self.awrus:
            h = awru(h)
            features.append(h)
        return self.lrfu(features, x)

    def fuse_(self) -> None:
        """Fuse every AWRU and the LRFU, in place."""
        for m in (*self.awrus, self.lrfu):
            m.fuse_()


def choose_dropped(weights: dict[str, float], threshold: float | None = None, keep: int | None = None) -> list[str]:
    """The AWMS branches pruning removes: those below ``threshold`` in ``|weight|``, or all but the
    ``keep`` largest (exactly one of the two); never every branch."""
    if (threshold is None) == (keep is None):
        raise ValueError("pass exactly one of threshold= or keep=")
    ranked = sorted(weights.items(), key=lambda kv: -abs(kv[1]))
    dropped = [k for k, _ in ranked[keep:]] if keep is not None else [k for k, w in ranked if abs(w) < threshold]
    if len(dropped) >= len(ranked):
        raise ValueError(f"pruning would remove every AWMS branch (weights {dict(ranked)})")
    return dropped


class AWMS(nn.Module):
    """Adaptive weighted multi-scale reconstruction (Sec. 3, 'AWMS').

    Branch ``k{n}`` is an n x n conv to ``n_colors * scale**2`` channels with adaptive weight
    ``weights['k{n}']`` (start ``1 / len(kernel_sizes)``, i.e. 0.25); the output is
    ``pixel_shuffle(sum_k w_k conv_k(x))``.
    """

    def __init__(self, n_feats: int, scale: int, n_colors: int = 3, kernel_sizes=(3, 5, 7, 9)):
        super().__init__()
        self.scale = scale
        out = n_colors * scale * scale
        init = 1.0 / len(kernel_sizes)
        self.convs = nn.ModuleDict({f"k{k}": wn_conv(n_feats, out, k) for k in kernel_sizes})
        self.weights = nn.ModuleDict({f"k{k}": Scale(init) for k in kernel_sizes})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(sum(self.weights[k](c(x)) for k, c in self.convs.items()), self.scale)

    def contributions(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each branch's weighted, pixel-shuffled output; they sum to ``forward(x)``."""
        return {k: F.pixel_shuffle(self.weights[k](c(x)), self.scale) for k, c in self.convs.items()}

    def branch_weights(self) -> dict[str, float]:
        return {k: w.scale.item() for k, w in self.weights.items()}

    def prune(self, threshold: float | None = None, keep: int | None = None) -> list[str]:
        """Drop branches with ``|w| < threshold``, or all but the ``keep`` largest ``|w|``.

        The paper removes the scale branches whose adaptive weights contribute least; the
        remaining weights are not renormalised (the output changes by exactly the dropped
        branches' contributions). Returns the dropped branch names. In place.
        """
        dropped = choose_dropped(self.branch_weights(), threshold, keep)
        for k in dropped:
            del self.convs[k], self.weights[k]
        return dropped

    def fused(self) -> nn.Sequential:
        """One conv (branches zero-padded to the largest kernel, weights folded) + pixel shuffle."""
        keys = list(self.convs)
        conv = merge_parallel_convs([self.convs[k] for k in keys], [self.weights[k].scale for k in keys])
        return nn.Sequential(conv, nn.PixelShuffle(self.scale))


class AWSRN(nn.Module):
    """Adaptive Weighted Super-Resolution Network (Sec. 3 of the paper).

    Args:
        scale: upscaling factor (2, 3, 4, 8 in the paper).
        n_feats: body width (32; 16 for AWSRN-SD).
        block_feats: AWRU inner width (128).
        n_lfb: number of LFBs (1 for -S/-SD, 3 for -M, 4 for AWSRN).
        n_awru: AWRUs per LFB (4; 8 for -SD).
        bam: add super-image's balanced attention before AWMS (and drop the mean shift).
        kernel_sizes: AWMS branch kernels.
        mean_shift: normalise by the DIV2K mean (default: ``not bam``, as the references do).
        rgb_mean: the mean used by the mean shift.
        bam_reduction: channel reduction of the ACAM bottleneck.

    Input and output: float RGB in [0, 1], (N, 3, h, w) -> (N, 3, h*scale, w*scale), unclamped.
    """

    def __init__(
        self, scale: int, n_feats: int = 32, block_feats: int = 128, n_lfb: int = 4,
        n_awru: int = 4, bam: bool = False, *, kernel_sizes=(3, 5, 7, 9), n_colors: int = 3,
        mean_shift: bool | None = None, rgb_mean=DIV2K_RGB_MEAN, bam_reduction: int = 8,
    ):
        super().__init__()
        if int(scale) != scale or scale < 1:
            raise ValueError(f"AWSRN scale must be a positive integer, got {scale!r}")
        self.scale = int(scale)
        use_shift = (not bam) if mean_shift is None else mean_shift
        self.mean_shift = MeanShift(rgb_mean, std=127.5 / 255) if use_shift else None
        self.head = wn_conv(n_colors, n_feats, 3)
        self.lfbs = nn.Sequential(*(LFB(n_feats, block_feats, n_awru) for _ in range(n_lfb)))
        self.attention = BalancedAttention(n_feats, bam_reduction) if bam else None
        self.awms = AWMS(n_feats, self.scale, n_colors, kernel_sizes)
        self.skip = wn_conv(n_colors, n_colors * self.scale**2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean_shift is not None:
            x = self.mean_shift.normalize(x)
        f = self.lfbs(self.head(x))
        if self.attention is not None:
            f = self.attention(f)
        y = self.awms(f) + F.pixel_shuffle(self.skip(x), self.scale)
        return y if self.mean_shift is None else self.mean_shift.denormalize(y)

    def prune_awms(self, threshold: float | None = None, keep: int | None = None) -> list[str]:
        """Remove low-weight AWMS branches in place; see :meth:`AWMS.prune`."""
        return self.awms.prune(threshold=threshold, keep=keep)

    def fuse(self) -> AWSRN:
        """Return a fused inference copy; ``self`` is left unchanged.

        In the copy every weight-normed conv is a plain conv, the ``res_scale`` scalars of AWRU
        and LRFU are folded into the preceding conv, and the AWMS branches (with their weights)
        are merged into one conv with the largest kernel (zero-padded smaller kernels), which also
        lowers the AWMS Multi-Adds from 3^2+5^2+7^2+9^2 = 164 to 81 taps. The copy is in eval mode
        with gradients off; it cannot load checkpoints (its keys differ) and should not be trained.
        """
        fused = copy.deepcopy(self)
        fused.head = plain_conv(fused.head)
        fused.skip = plain_conv(fused.skip)
        for lfb in fused.lfbs:
            lfb.fuse_()
        fused.awms = fused.awms.fused()
        return fused.eval().requires_grad_(False)

    def convert_state_dict(self, sd: dict) -> dict:
        """Map official checkpoint keys onto ours; our own keys pass through unchanged.

        Official (ChaofWang/AWSRN): ``head.0``, ``body.{i}.b{j}.body.{0,2}``, ``body.{i}.b{j}.
        {res,x}_scale.scale``, ``body.{i}.reduction``, ``body.{i}.{res,x}_scale.scale``,
        ``tail.tail_k{n}``, ``tail.scale_k{n}.scale``, ``skip.0``, with classic weight-norm
        ``weight_g``/``weight_v``. super-image spells ``b{j}`` as ``lfl.{j}`` and adds
        ``attention.ca.{fc1,relu1,fc2}`` and ``attention.sa.conv1``.
        """
        return rename_weight_norm_keys({_official_to_ours(k): v for k, v in sd.items()})
