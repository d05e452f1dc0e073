"""Shared building blocks: convs, learnable scalars, mean shift, upsamplers, attention, fusion.

Nothing here belongs to one paper; a model file composes these. Each block's docstring names
its source. The sections:

- convs: :func:`conv`, :func:`wn_conv`, :class:`DepthwiseSeparableConv`, :func:`lrelu`;
- upsamplers (:func:`upsampler` picks one by name): :class:`SubPixelUpsampler`,
  :class:`DeconvUpsampler`, :class:`InterpUpsampler`;
- attention: :class:`PixelAttention` (PAN), :class:`ChannelAttention` (SE / RCAN / IMDN's
  contrast-aware variant), :class:`CoordinateAttention` (Hou et al. 2021),
  :class:`NonLocalBlock` (Wang et al. 2018), and BAM's :class:`ACAM` / :class:`MSAM`;
- inference-time fusion: :func:`plain_conv`, :func:`merge_parallel_convs`.

Weight normalisation
(Salimans & Kingma 2016) uses ``torch.nn.utils.parametrizations.weight_norm``, so a conv's
state-dict keys are ``parametrizations.weight.original0`` (the gain g, shape (out, 1, 1, 1))
and ``parametrizations.weight.original1`` (the direction v); the classic
``torch.nn.utils.weight_norm`` layout (``weight_g``/``weight_v``) maps onto them one to one,
see :func:`rename_weight_norm_keys`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)

_WN_KEYS = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}


def conv(in_ch: int, out_ch: int, kernel_size: int, bias: bool = True, *, stride: int = 1,
         padding: int | None = None, dilation: int = 1, groups: int = 1) -> nn.Conv2d:
    """A convolution, by default stride-1 'same' (padding ``dilation * (kernel_size // 2)``)."""
    if padding is None:
        padding = dilation * (kernel_size // 2)
    return nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding,
                     dilation=dilation, groups=groups, bias=bias)


def wn_conv(in_ch: int, out_ch: int, kernel_size: int, bias: bool = True, **kw) -> nn.Conv2d:
    """:func:`conv` with weight normalisation over each output filter (dim 0)."""
    return weight_norm(conv(in_ch, out_ch, kernel_size, bias, **kw))


def lrelu(x: torch.Tensor, slope: float = 0.05) -> torch.Tensor:
    """Leaky ReLU with IMDN's and RFDN's slope 0.05 by default (PAN uses 0.2)."""
    return F.leaky_relu(x, slope)


def dilated_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, dilation: int,
                   groups: int = 1) -> torch.Tensor:
    """``F.conv2d`` with 'same' padding at ``dilation``; a dilated conv runs in fp32 under CPU autocast.

    Measured on torch 2.14's CPU (oneDNN) with bf16 autocast: the backward of a *dilated* conv gave
    garbage weight gradients (NaN, or finite values near 1e32) in about one training step in two
    (seed 000's 5x5 depthwise branches at dilation 3 and 4; seed 003's MSWAM 3x3 at dilation 2),
    so the trainer's guard stopped those runs at step 1-9; undilated convs and fp32 never did.
    Only the dilated convs leave bf16, so a model keeps most of the bf16 speed.
    """
    pad = dilation * (weight.shape[-1] // 2)
    if dilation > 1 and x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return F.conv2d(x.float(), weight.float(), None if bias is None else bias.float(), padding=pad,
                            dilation=dilation, groups=groups)
    return F.conv2d(x, weight, bias, padding=pad, dilation=dilation, groups=groups)


class DepthwiseSeparableConv(nn.Module):
    """Depthwise-separable convolution (MobileNet, Howard et al. 2017, Sec. 3.1).

    A depthwise ``k x k`` conv (``groups=in_ch``: one filter per channel, optional dilation,
    'same' padding) followed by a pointwise 1x1 conv mixing channels. Parameters:
    ``k*k*in_ch + in_ch*out_ch`` weights, plus ``in_ch + out_ch`` biases when ``bias``.
    MobileNet puts batch norm + ReLU after each conv; here the pair is linear and a model adds
    what it needs (``act`` between the two, if given).

    Args:
        in_ch, out_ch: channels. kernel_size: depthwise kernel (odd). dilation: depthwise dilation.
        bias: biases on both convs. act: optional module factory applied between the two.

    A dilated depthwise conv runs through :func:`dilated_conv2d` (fp32 under CPU autocast).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, dilation: int = 1,
                 bias: bool = True, act=None):
        super().__init__()
        self.depthwise = conv(in_ch, in_ch, kernel_size, bias, dilation=dilation, groups=in_ch)
        self.act = act() if act is not None else nn.Identity()
        self.pointwise = conv(in_ch, out_ch, 1, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dw = self.depthwise
        return self.pointwise(self.act(dilated_conv2d(x, dw.weight, dw.bias, dw.dilation[0], dw.groups)))


def rename_weight_norm_keys(sd: dict) -> dict:
    """Map classic weight-norm keys (``*.weight_g``, ``*.weight_v``) to the parametrization layout."""
    out = {}
    for key, value in sd.items():
        prefix, dot, leaf = key.rpartition(".")
        out[prefix + dot + _WN_KEYS[leaf] if leaf in _WN_KEYS else key] = value
    return out


class Scale(nn.Module):
    """A learnable scalar multiplier (one parameter ``scale`` of shape (1,))."""

    def __init__(self, init: float = 1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([float(init)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class MeanShift(nn.Module):
    """``normalize(x) = (x - mean) / std`` and its inverse ``denormalize``; no learnable state.

    The buffers are non-persistent: they never appear in (or are expected from) a checkpoint.
    """

    def __init__(self, mean=DIV2K_RGB_MEAN, std: float = 1.0):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.std = float(std)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    forward = normalize

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.std + self.mean


# --- upsamplers ------------------------------------------------------------------------------


def _check_scale(scale) -> int:
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < 2:
        raise ValueError(f"scale must be an integer >= 2, not {scale!r}")
    return scale


def _stage_factors(scale: int) -> list[int]:
    """``scale`` as x2 stages then x3 stages (x4 -> [2, 2], x8 -> [2, 2, 2], x3 -> [3])."""
    factors, rest = [], _check_scale(scale)
    for r in (2, 3):
        while rest % r == 0:
            factors.append(r)
            rest //= r
    if rest != 1:
        raise ValueError(f"stages='log2' upsamples by products of 2 and 3 (x2, x3, x4, x8, ...), "
                         f"not x{scale}; use stages='one'")
    return factors


class SubPixelUpsampler(nn.Sequential):
    """Sub-pixel convolution upsampler (ESPCN, Shi et al. 2016): conv to ``C r^2`` channels, then
    ``PixelShuffle(r)`` rearranges them into an ``r``-times larger map of ``C`` channels.

    - ``stages="one"``: a single conv ``n_feats -> out_ch * s^2`` and ``PixelShuffle(s)`` for any
      scale (ESPCN; the tails of IMDN, RFDN, LatticeNet, A2F).
    - ``stages="log2"``: one x2 stage per factor 2 of the scale and an x3 stage per factor 3
      (x4 = two x2 stages, x8 = three; EDSR's, RDN's and CARN's upsamplers); a stage is a conv
      ``c -> out_ch * r^2`` and ``PixelShuffle(r)``, with ``c = n_feats`` for the first stage
      and ``out_ch`` after it.

    The children are ``conv[, act], shuffle`` per stage, so the state-dict keys (``0.weight``,
    ``0.bias``, ``2.weight`` / ``3.weight`` ...) are those of EDSR's and CARN's official code.
    An element-wise ``act`` sits before the shuffle, as in CARN; a shuffle is a permutation,
    so it commutes with it.

    Args:
        n_feats: input channels. out_ch: output channels. scale: upscaling factor (>= 2).
        stages: "one" or "log2". kernel_size: conv kernel (3). groups: conv groups (CARN-M: 4).
        act: optional module factory after each conv. weight_norm: :func:`wn_conv` instead of conv.
    """

    def __init__(self, n_feats: int, out_ch: int, scale: int, stages: str = "one",
                 kernel_size: int = 3, groups: int = 1, act=None, weight_norm: bool = False):
        if stages == "one":
            factors = [_check_scale(scale)]
        elif stages == "log2":
            factors = _stage_factors(scale)
        else:
            raise ValueError(f"stages must be 'one' or 'log2', not {stages!r}")
        make = wn_conv if weight_norm else conv
        layers, cin = [], n_feats
        for r in factors:
            layers.append(make(cin, out_ch * r * r, kernel_size, groups=groups))
            layers += [act()] if act is not None else []
            layers.append(nn.PixelShuffle(r))
            cin = out_ch
        super().__init__(*layers)
        self.scale = scale


def deconv_geometry(scale: int, kernel_size: int | None = None) -> tuple[int, int, int]:
    """``(kernel_size, padding, output_padding)`` of a stride-``scale`` ConvTranspose2d whose
    output is exactly ``scale * h`` for every input height ``h``.

    The output height is ``(h - 1) s - 2 p + k + op``; it equals ``s h`` when
    ``k - 2 p + op = s``. The default kernel ``2 s`` is divisible by the stride, so every output
    pixel gets the same number of taps (no checkerboard from uneven overlap, Odena et al.
    2016); then ``p = ceil(s / 2)`` and ``op = s mod 2`` (x2: 4/1/0, x3: 6/2/1, x4: 8/2/0,
    x8: 16/4/0). A given kernel (e.g. FSRCNN's 9) gets the smallest such ``p`` and ``op``.
    """
    scale = _check_scale(scale)
    k = 2 * scale if kernel_size is None else int(kernel_size)
    extra = k - scale
    if extra < 0:
        raise ValueError(f"a transposed conv of stride {scale} needs kernel_size >= {scale}, not {k}")
    padding = (extra + 1) // 2
    return k, padding, 2 * padding - extra


class DeconvUpsampler(nn.Module):
    """Deconvolution (transposed conv) upsampler, one stage, as in FSRCNN (Dong et al. 2016):
    ``ConvTranspose2d(n_feats, out_ch, k, stride=scale)`` with the geometry of
    :func:`deconv_geometry`, so ``(N, n_feats, h, w) -> (N, out_ch, scale h, scale w)``.

    Args: n_feats, out_ch, scale; kernel_size (default ``2 * scale``); bias.
    """

    def __init__(self, n_feats: int, out_ch: int, scale: int, kernel_size: int | None = None,
                 bias: bool = True):
        super().__init__()
        k, padding, output_padding = deconv_geometry(scale, kernel_size)
        self.scale = scale
        self.deconv = nn.ConvTranspose2d(n_feats, out_ch, k, stride=scale, padding=padding,
                                         output_padding=output_padding, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.deconv(x)


class InterpUpsampler(nn.Module):
    """Interpolation + convolution (resize-convolution, Odena et al. 2016; PAN's U-PA and
    IMFM's MWAUM start this way): ``F.interpolate`` by ``scale`` (``"nearest"``, or
    ``"bilinear"`` with ``align_corners=False``), then a 'same' conv ``n_feats -> out_ch``.
    The interpolation has no parameters; only the conv has.

    Args: n_feats, out_ch, scale; mode "nearest" or "bilinear"; kernel_size (3).
    """

    MODES = ("nearest", "bilinear")

    def __init__(self, n_feats: int, out_ch: int, scale: int, mode: str = "nearest",
                 kernel_size: int = 3):
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, not {mode!r}")
        self.scale = _check_scale(scale)
        self.mode = mode
        self.conv = conv(n_feats, out_ch, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        corners = False if self.mode == "bilinear" else None
        return self.conv(F.interpolate(x, scale_factor=self.scale, mode=self.mode,
                                       align_corners=corners))


UPSAMPLERS = {"subpixel": SubPixelUpsampler, "deconv": DeconvUpsampler, "interp": InterpUpsampler}


def upsampler(kind: str, n_feats: int, out_ch: int, scale: int, **kwargs) -> nn.Module:
    """Build an upsampler ``(N, n_feats, h, w) -> (N, out_ch, scale h, scale w)`` by name.

    ``kind``: "subpixel" (:class:`SubPixelUpsampler`; ``stages``, ``act``, ...), "deconv"
    (:class:`DeconvUpsampler`; ``kernel_size``) or "interp" (:class:`InterpUpsampler`;
    ``mode``); ``kwargs`` go to that class.
    """
    if kind not in UPSAMPLERS:
        raise ValueError(f"unknown upsampler kind {kind!r}; choose one of {', '.join(UPSAMPLERS)}")
    return UPSAMPLERS[kind](n_feats, out_ch, scale, **kwargs)


# --- attention -------------------------------------------------------------------------------


class PixelAttention(nn.Module):
    """Pixel attention (PAN, Zhao et al. 2020, Sec. 3.1, Eq. 1): ``x * sigmoid(conv1x1(x))``.

    The map is 3-D (one weight per channel and pixel), unlike channel (1-D) or spatial (2-D)
    attention. The conv is ``conv`` (keys ``conv.weight``, ``conv.bias``), as in PAN's ``PA``.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv(x))


def squeeze_excite(channels: int, reduction: int = 16, bias: bool = True, act=None) -> nn.Sequential:
    """The excitation of SE (Hu et al. 2018, Sec. 3.2) as 1x1 convs: ``channels -> channels //
    reduction``, ``act`` (a module factory; ReLU by default), back to ``channels``, sigmoid.

    Children ``0, 1, 2, 3`` as in RCAN's, IMDN's, A2F's and LatticeNet's ``conv_du``.
    """
    hidden = channels // reduction
    if hidden < 1:
        raise ValueError(f"reduction {reduction} leaves no channels of {channels}; "
                         "use a smaller reduction")
    return nn.Sequential(
        nn.Conv2d(channels, hidden, 1, bias=bias),
        act() if act is not None else nn.ReLU(inplace=True),
        nn.Conv2d(hidden, channels, 1, bias=bias),
        nn.Sigmoid(),
    )


def avg_pool(x: torch.Tensor) -> torch.Tensor:
    """Global average pooling over H, W (SE's squeeze), keeping dims: (N, C, 1, 1)."""
    return x.mean(dim=(2, 3), keepdim=True)


def contrast_pool(x: torch.Tensor) -> torch.Tensor:
    """IMDN's contrast (Hui et al. 2019, Eq. 4-5): spatial standard deviation (population,
    divided by ``H W``) plus spatial mean, per channel: (N, C, 1, 1)."""
    mean = avg_pool(x)
    std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()
    return std + mean


class ChannelAttention(nn.Module):
    """Channel attention: ``x * SE(pool(x))``, one weight per channel.

    One parametrised block for squeeze-and-excitation (Hu et al. 2018: global average pool,
    bottleneck of ``reduction``, ReLU, sigmoid), RCAN's CA (Zhang et al. 2018, Sec. 3.4: the
    same with 1x1 convs and biases, reduction 16), A2F's CALayer (reduction 1) and IMDN's
    contrast-aware CCA (``pool="contrast"``: std + mean instead of the mean).
    The excitation is ``conv_du`` (:func:`squeeze_excite`), the official key names.

    Args:
        channels: channels of x. reduction: bottleneck ratio (16). bias: biases on the 1x1 convs.
        pool: "avg" (SE / CA) or "contrast" (IMDN's CCA). act: bottleneck activation factory (ReLU).
    """

    POOLS = {"avg": avg_pool, "contrast": contrast_pool}

    def __init__(self, channels: int, reduction: int = 16, bias: bool = True, pool: str = "avg",
                 act=None):
        super().__init__()
        if pool not in self.POOLS:
            raise ValueError(f"pool must be one of {tuple(self.POOLS)}, not {pool!r}")
        self.pool = pool
        self.conv_du = squeeze_excite(channels, reduction, bias, act)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The attention map, (N, C, 1, 1) in (0, 1)."""
        return self.conv_du(self.POOLS[self.pool](x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)


class CoordinateAttention(nn.Module):
    """Coordinate attention (Hou et al. 2021, "Coordinate Attention for Efficient Mobile
    Network Design", Sec. 3.2, Eq. 4-9, and their released ``CoordAtt``).

    ``z_h = mean_W x`` (N, C, H, 1) and ``z_w = mean_H x`` (N, C, W, 1) are concatenated along
    the spatial axis, a shared 1x1 conv ``C -> mid`` (``mid = max(min_mid, C // reduction)``),
    ``norm`` and h-swish give ``f``; ``f`` is split back into ``f_h``, ``f_w``, and
    ``g_h = sigmoid(conv_h(f_h))``, ``g_w = sigmoid(conv_w(f_w))``; ``y = x * g_h * g_w``.
    h-swish is ``x relu6(x + 3) / 6``, exactly ``nn.Hardswish``.

    ``norm="bn"`` is Hou et al.'s batch norm (over the H + W positions together); IMFM (seed
    003, Sec. 2.4) removes normalisation, ``norm=None``. Keys follow ``CoordAtt``: ``conv1``,
    ``bn1`` (absent with ``norm=None``), ``conv_h``, ``conv_w``.

    Args: channels; reduction (32); min_mid (8); norm: "bn" or None.
    """

    def __init__(self, channels: int, reduction: int = 32, min_mid: int = 8, norm: str | None = "bn"):
        super().__init__()
        if norm not in (None, "bn"):
            raise ValueError(f"norm must be None or 'bn', not {norm!r}")
        mid = max(min_mid, channels // reduction)
        self.conv1 = nn.Conv2d(channels, mid, 1)
        self.bn1 = nn.BatchNorm2d(mid) if norm == "bn" else nn.Identity()
        self.act = nn.Hardswish()
        self.conv_h = nn.Conv2d(mid, channels, 1)
        self.conv_w = nn.Conv2d(mid, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        z = torch.cat([x.mean(dim=3, keepdim=True), x.mean(dim=2, keepdim=True).transpose(2, 3)], dim=2)
        f_h, f_w = torch.split(self.act(self.bn1(self.conv1(z))), [h, w], dim=2)
        g_h = torch.sigmoid(self.conv_h(f_h))
        g_w = torch.sigmoid(self.conv_w(f_w.transpose(2, 3)))
        return x * g_h * g_w


class NonLocalBlock(nn.Module):
    """Non-local block, embedded Gaussian (Wang et al. 2018, "Non-local Neural Networks",
    Sec. 3.2-3.3, Eq. 1-3 and 6): ``z = x + W(softmax(theta(x)^T phi(x)) g(x))``.

    ``theta``, ``phi``, ``g``: 1x1 convs to ``inter`` channels (``channels // 2`` by default, as
    in the paper); ``W``: 1x1 conv back to ``channels``, zero-initialised (weight and bias) so
    the block starts as the identity and can be inserted into a trained network (the paper
    zero-initialises the BN after W for the same reason; there is no BN here).
    The affinity is not scaled by ``1 / sqrt(inter)`` (Eq. 3 has no scale).

    Memory: the affinity is an ``HW x HW`` matrix per image (a 96x96 map: 85M entries, 340 MB in
    fp32). ``sub_sample=True`` max-pools phi and g by 2 after their convs (the paper's
    "subsampling" trick), making it ``HW x HW/4``. The product goes through
    ``F.scaled_dot_product_attention``, whose fused kernels avoid storing the matrix where the
    backend has them; the compute stays quadratic in ``HW``.

    Args: channels; inter (``channels // 2``); sub_sample (False).
    """

    def __init__(self, channels: int, inter: int | None = None, sub_sample: bool = False):
        super().__init__()
        inter = inter if inter is not None else max(1, channels // 2)
        self.sub_sample = sub_sample
        self.theta = nn.Conv2d(channels, inter, 1)
        self.phi = nn.Conv2d(channels, inter, 1)
        self.g = nn.Conv2d(channels, inter, 1)
        self.W = nn.Conv2d(inter, channels, 1)
        nn.init.zeros_(self.W.weight)
        nn.init.zeros_(self.W.bias)

    def _tokens(self, t: torch.Tensor, pool: bool) -> torch.Tensor:
        """(N, C, H, W) -> (N, HW, C), optionally max-pooled by 2 first."""
        return (F.max_pool2d(t, 2) if pool else t).flatten(2).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        q = self._tokens(self.theta(x), False)
        k = self._tokens(self.phi(x), self.sub_sample)
        v = self._tokens(self.g(x), self.sub_sample)
        y = F.scaled_dot_product_attention(q, k, v, scale=1.0)  # softmax(q k^T) v, Eq. 2-3
        return x + self.W(y.transpose(1, 2).reshape(n, -1, h, w))




class ACAM(nn.Module):
    """Average-pooling channel attention: sigmoid(W2 PReLU(W1 avgpool(x))), no biases.

    The channel half of balanced attention (BAM, Wang et al. 2021, arXiv 2104.07566): average
    pooling only, max pooling being left to the spatial half (MSAM), so each responds to a
    different statistic.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = channels // reduction
        self.squeeze = nn.Conv2d(channels, hidden, 1, bias=False)
        self.act = nn.PReLU(hidden)
        self.excite = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.excite(self.act(self.squeeze(F.adaptive_avg_pool2d(x, 1)))))


class MSAM(nn.Module):
    """Max-pooling spatial attention: sigmoid(conv7x7(max over channels of x)), no bias."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = conv(1, 1, kernel_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x.amax(dim=1, keepdim=True)))


class BalancedAttention(nn.Module):
    """BAM (Wang et al. 2021): ``x * ACAM(x) * MSAM(x)``, the two maps computed in parallel."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.acam = ACAM(channels, reduction)
        self.msam = MSAM()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.acam(x) * self.msam(x)


# --- inference-time fusion -------------------------------------------------------------------


def plain_conv(module: nn.Conv2d, scale: float | torch.Tensor = 1.0) -> nn.Conv2d:
    """A plain ``nn.Conv2d`` computing ``scale * module(x)``.

    Weight norm (if any) is folded into an ordinary ``weight``; ``scale`` into weight and bias.
    """
    w = module.weight
    out = nn.Conv2d(
        module.in_channels, module.out_channels, module.kernel_size,
        stride=module.stride, padding=module.padding, dilation=module.dilation,
        groups=module.groups, bias=module.bias is not None, device=w.device, dtype=w.dtype,
    )
    with torch.no_grad():
        out.weight.copy_(w * scale)
        if module.bias is not None:
            out.bias.copy_(module.bias * scale)
    return out


def merge_parallel_convs(convs: list[nn.Conv2d], scales: list) -> nn.Conv2d:
    """One conv equal to ``sum_i scales[i] * convs[i](x)`` for stride-1 'same' convs of odd sizes.

    Smaller kernels are zero-padded (centred) to the largest; weights and biases add up.
    """
    size = max(c.kernel_size[0] for c in convs)
    ref = convs[0]
    out = conv(ref.in_channels, ref.out_channels, size).to(ref.weight.device, ref.weight.dtype)
    with torch.no_grad():
        out.weight.zero_()
        out.bias.zero_()
        for c, s in zip(convs, scales):
            pad = (size - c.kernel_size[0]) // 2
            out.weight += F.pad(c.weight * s, (pad, pad, pad, pad))
            if c.bias is not None:
                out.bias += c.bias * s
    return out
