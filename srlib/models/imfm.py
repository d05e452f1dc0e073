"""IMFM: lightweight super-resolution by progressive feature fusion (seed 003).

"Research on Lightweight Super-Resolution Reconstruction Algorithm Based on Progressive Feature
Fusion Convolutional Network" (the seed's "Improve Multi-scale Fine-grained Model"). Its design
and wording follow PFFN (Zhang et al., "PFFN: Progressive Feature Fusion Network for
Lightweight Image Super-Resolution", ACM MM 2021), whose upsampler name survives in the seed's
Eq. 3 (``H_MPAU``). Names follow the seed (Sec. 2):

- **MSWAM** (multi-scale weight allocation module): parallel branches of different receptive
  fields (one 3x3 kernel applied at dilation 1 and 2), each gated by a pixel-attention map
  (PAN's 1x1 conv + sigmoid, a 3-D map), the branches summed with learned per-scale weights.
- **PAB** (progressive attention block, Eq. 6): a 1x1 conv maps the input to ``s`` paths of
  ``m`` channels (Res2Net-style hierarchical split); ``y_1 = x_1``, ``y_2 = MSWAM(x_2)``,
  ``y_i = MSWAM(x_i + y_{i-1})``; concat, 1x1 fusion, CAM, plus the block input.
- **CAM** (Eq. 7-12): coordinate attention (Hou et al. 2021) without normalisation layers.
- **MWAUM** (Eq. 3): conv, parameter-free bilinear interpolation, MSWAM, conv.
- **IMFM** (Eq. 1-4): 3x3 head to 40 channels, ``n`` PABs, MWAUM on ``F_n + F_0``, plus the
  bilinear interpolation of the LR input. Trained with L1 (Eq. 5; the registry's ``train``).

Readings chosen where the text is silent or garbled (its equations were lost in extraction):

- Size: the default (``n_blocks=17, n_paths=4, path_feats=28, up_feats=28``) has **595,403**
  parameters at every scale (MWAUM's interpolation has no parameters), matching Table 3's x4
  MWAUM row (596.362K, the only figure given with its upsampler) rather than Table 4's 670K
  (19 blocks would give about 663K). ``s = 4`` is Res2Net's default scale; Sec. 2.3's
  "m < s" cannot hold for channel counts and is read as "m < the block width" (a bottleneck
  per path; here 4 x 28 = 112 channels after the 1x1).
- MSWAM's branches share one 3x3 kernel (dilation 1 and 2, as TridentNet shares weights
  across dilations) and one pixel-attention 1x1 conv: the text says MSWAM widens the receptive
  field "without adding convolution layers" and costs little ("only an additional 21.8K").
  Separate kernels and maps per branch (a second 3x3 conv and 1x1 per site) would make MSWAM
  add 452,920 at these widths, far from the text. Ours adds 42,328 (one 1x1 conv + two scalars
  at each of 52 sites: 51 PAB paths and the upsampler): the closest reading we found, still
  about twice the 21.8K. Sharing saves parameters, not Multi-Adds: each kernel runs twice, so
  MSWAM takes x4 Multi-Adds from 37.3 G (+PAB) to 70.6 G.
- MSWAM's "weights allocated across scales" are **learned scalars** (one per dilation, start
  ``1 / n_branches``, AWSRN's adaptive weights), not input-dependent: the pixel-attention maps
  already make the mix depend on the input at every pixel and channel, and an input-dependent
  selector (SKNet-style pooling + FC per site) would add parameters the 21.8K leaves no room for.
- Activations: LeakyReLU 0.2 (PAN's) after the PAB's input 1x1 and at the end of each MSWAM
  (and of each plain 3x3 unit); none after the fusion 1x1 (it feeds the residual sum).
- PAB output: ``x + CAM(fuse(concat(y_1..y_s)))``: CAM sits before the block residual, as RCAN's
  channel attention does and as PFFN's "DAM incorporated in PAB"; its width follows Hou et al.
  (``mid = max(8, C // 32)``, 8 for 40 channels).
- Eq. 3's garbled ``H(F_n + F_0)`` is read as a long skip: the upsampler gets the last PAB's
  output plus the head features.
- MWAUM: ``conv3x3(40 -> 28)``, bilinear by ``s`` (``align_corners=False``, one step for every
  scale), ``MSWAM(28)``, ``conv3x3(28 -> 3)``. 28 channels make MWAUM 1.4K larger than the
  sub-pixel layer and 11.1K larger than the deconvolution at x4 (Table 3: 2.35K and 20.2K;
  PAN's 24 would make it smaller than the sub-pixel layer). The Table 3
  alternatives map 40 channels straight to RGB: ``"subpixel"`` a 3x3 conv to ``3 s^2`` and one
  pixel shuffle (ESPCN), ``"deconv"`` one transposed conv of kernel ``2 s``
  (:func:`~srlib.models.blocks.deconv_geometry`).
- Global residual (Eq. 4): ``F.interpolate(x, scale, "bilinear", align_corners=False)``.
  No mean shift: inputs are [0, 1] RGB, as in PAN.
- Ablation switches (the text's Table-2 ablation, base -> +PAB -> +MSWAM -> +CAM):
  ``pab=False`` is the base model, "a 3x3 convolutional sequence with the same channel count":
  ``base_depth`` x (conv3x3 40->40 + LeakyReLU), same head, long skip and upsampler. The text
  gives no depth; **40** layers make the +PAB model 61,412 parameters smaller than the base
  at every scale (the text: 63.7K; 39 or 41 layers would give 47.0K or 75.9K) and 3.68 G
  Multi-Adds cheaper at x4 (the text: 3.5G).
  ``mswam=False`` replaces every MSWAM (in the PABs and in MWAUM) by a plain 3x3 conv +
  LeakyReLU of the same width. ``cam=False`` drops the CAMs. With ``pab=False`` a CAM, if on,
  follows the conv sequence once, and ``mswam`` only changes the upsampler.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import CoordinateAttention, PixelAttention, conv, dilated_conv2d, upsampler as make_upsampler

UPSAMPLERS = ("mwaum", "deconv", "subpixel")
SLOPE = 0.2  # LeakyReLU slope (PAN's)


class MSWAM(nn.Module):
    """Multi-scale weight allocation module: ``lrelu(sum_d w_d PA(conv_d(x)))``.

    ``conv_d`` is one shared 3x3 kernel applied at dilation ``d`` ('same' padding ``d``); ``PA``
    is one shared pixel attention (``z * sigmoid(conv1x1(z))``), applied to each branch's own
    output, so each branch gets its own 3-D map; ``w_d`` are learned scalars (``weights``).
    Parameters: ``9 c^2 + c`` (kernel) + ``c^2 + c`` (PA) + ``len(dilations)``.
    """

    def __init__(self, channels: int, dilations=(1, 2)):
        super().__init__()
        if not dilations or any(int(d) != d or d < 1 for d in dilations):
            raise ValueError(f"MSWAM dilations must be positive integers, got {dilations!r}")
        self.dilations = tuple(int(d) for d in dilations)
        self.conv = conv(channels, channels, 3)
        self.pa = PixelAttention(channels)
        self.weights = nn.Parameter(torch.full((len(self.dilations),), 1.0 / len(self.dilations)))

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each scale's attended output ``PA(conv_d(x))``, before weighting."""
        return [self.pa(dilated_conv2d(x, self.conv.weight, self.conv.bias, d)) for d in self.dilations]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(sum(w * b for w, b in zip(self.weights, self.branches(x))), SLOPE)


def plain_unit(channels: int) -> nn.Sequential:
    """A 3x3 conv + LeakyReLU: what MSWAM is replaced by with ``mswam=False``."""
    return nn.Sequential(conv(channels, channels, 3), nn.LeakyReLU(SLOPE))


class CAM(CoordinateAttention):
    """Coordinate attention module (seed Sec. 2.4): Hou et al.'s block with no normalisation.

    Pool along W and along H, concat, shared 1x1 conv to ``mid``, h-swish, split, one 1x1 conv +
    sigmoid per direction: ``y = x * g_h * g_w`` (:class:`~srlib.models.blocks.CoordinateAttention`
    with ``norm=None``).
    """

    def __init__(self, channels: int, reduction: int = 32, min_mid: int = 8):
        super().__init__(channels, reduction=reduction, min_mid=min_mid, norm=None)


class PAB(nn.Module):
    """Progressive attention block (Eq. 6): ``s`` hierarchical paths of ``m`` channels.

    ``x_1..x_s = split(lrelu(conv1x1(x)))``; ``y_1 = x_1``, ``y_2 = P(x_2)``,
    ``y_i = P(x_i + y_{i-1})`` with ``P`` an MSWAM (or a plain 3x3 unit);
    output ``x + CAM(conv1x1(concat(y_1..y_s)))``.
    """

    def __init__(self, n_feats: int, n_paths: int, path_feats: int, mswam: bool = True,
                 cam: bool = True, dilations=(1, 2)):
        super().__init__()
        if n_paths < 2:
            raise ValueError(f"PAB needs n_paths >= 2 (path 1 passes through), got {n_paths}")
        self.n_paths = n_paths
        self.split = conv(n_feats, n_paths * path_feats, 1)
        self.paths = nn.ModuleList(
            MSWAM(path_feats, dilations) if mswam else plain_unit(path_feats) for _ in range(n_paths - 1))
        self.fuse = conv(n_paths * path_feats, n_feats, 1)
        self.cam = CAM(n_feats) if cam else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = torch.chunk(F.leaky_relu(self.split(x), SLOPE), self.n_paths, dim=1)
        ys = [xs[0]]
        for i, path in enumerate(self.paths, start=1):
            ys.append(path(xs[i] if i == 1 else xs[i] + ys[-1]))
        return x + self.cam(self.fuse(torch.cat(ys, dim=1)))


class MWAUM(nn.Module):
    """Upsampling module based on multi-scale weight allocation (Eq. 3):
    ``conv3x3(n_feats -> up_feats)``, bilinear x``scale``, MSWAM, ``conv3x3(up_feats -> 3)``."""

    def __init__(self, n_feats: int, up_feats: int, scale: int, n_colors: int = 3,
                 mswam: bool = True, dilations=(1, 2)):
        super().__init__()
        self.scale = scale
        self.conv_in = conv(n_feats, up_feats, 3)
        self.attention = MSWAM(up_feats, dilations) if mswam else plain_unit(up_feats)
        self.conv_out = conv(up_feats, n_colors, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(self.conv_in(x), scale_factor=self.scale, mode="bilinear", align_corners=False)
        return self.conv_out(self.attention(h))


class IMFM(nn.Module):
    """Improve Multi-scale Fine-grained Model (seed 003, Sec. 2.2, Fig. 1).

    Args:
        scale: upscaling factor (2, 3, 4).
        n_feats: head / block width (40, Sec. 2.2).
        n_blocks: number of PABs (17: see the module docstring).
        n_paths: PAB paths ``s`` (4). path_feats: channels ``m`` per path (28).
        up_feats: MWAUM width (28).
        upsampler: "mwaum" (the paper's), "deconv" or "subpixel" (Table 3's alternatives).
        pab, mswam, cam: the ablation switches (all on = IMFM; all off = the base model).
        base_depth: 3x3 layers of the base model (``pab=False``): 40.
        dilations: MSWAM's branch dilations ((1, 2)).

    Input and output: float RGB in [0, 1], (N, 3, h, w) -> (N, 3, h*scale, w*scale), unclamped.
    """

    def __init__(self, scale: int, n_feats: int = 40, n_blocks: int = 17, n_paths: int = 4,
                 path_feats: int = 28, up_feats: int = 28, upsampler: str = "mwaum", *,
                 pab: bool = True, mswam: bool = True, cam: bool = True, base_depth: int = 40,
                 dilations=(1, 2), n_colors: int = 3):
        super().__init__()
        if int(scale) != scale or scale < 2:
            raise ValueError(f"IMFM scale must be an integer >= 2, got {scale!r}")
        if upsampler not in UPSAMPLERS:
            raise ValueError(f"IMFM upsampler must be one of {UPSAMPLERS}, got {upsampler!r}")
        self.scale = int(scale)
        self.head = conv(n_colors, n_feats, 3)
        if pab:
            self.body = nn.Sequential(*(PAB(n_feats, n_paths, path_feats, mswam, cam, dilations)
                                        for _ in range(n_blocks)))
        else:
            layers = [m for _ in range(base_depth) for m in plain_unit(n_feats)]
            self.body = nn.Sequential(*layers, *([CAM(n_feats)] if cam else []))
        if upsampler == "mwaum":
            self.upsample = MWAUM(n_feats, up_feats, self.scale, n_colors, mswam, dilations)
        elif upsampler == "subpixel":
            self.upsample = make_upsampler("subpixel", n_feats, n_colors, self.scale, stages="one")
        else:
            self.upsample = make_upsampler("deconv", n_feats, n_colors, self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f0 = self.head(x)
        up = self.upsample(self.body(f0) + f0)
        return up + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
