"""Shared blocks (srlib.models.blocks): upsampler sizes and geometry, attention blocks against
computations written here from the papers' equations, parameter counts by hand, gradients."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from srlib.models.blocks import (
    ChannelAttention,
    CoordinateAttention,
    DeconvUpsampler,
    DepthwiseSeparableConv,
    InterpUpsampler,
    NonLocalBlock,
    PixelAttention,
    SubPixelUpsampler,
    deconv_geometry,
    upsampler,
)

SCALES = (2, 3, 4, 8)


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _randomise(m: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter and BN buffer drawn at random (so zero-initialised parts count too)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in list(m.parameters()) + [b for b in m.buffers() if b.dtype.is_floating_point]:
            t.copy_(torch.rand(t.shape, generator=g) * 0.8 + 0.1)
    return m


# --- upsamplers ----------------------------------------------------------------------------


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("kind,kw", [("subpixel", {}), ("subpixel", {"stages": "log2"}),
                                     ("deconv", {}), ("deconv", {"kernel_size": 9}),
                                     ("interp", {}), ("interp", {"mode": "bilinear"})])
def test_upsampler_output_is_exactly_scale_times_input(kind, kw, scale):
    up = upsampler(kind, 6, 3, scale, **kw)
    for h, w in ((1, 1), (5, 7), (8, 3)):
        assert up(torch.rand(2, 6, h, w)).shape == (2, 3, scale * h, scale * w)


def test_upsampler_factory_rejects_unknown_kinds_and_scales():
    with pytest.raises(ValueError, match="unknown upsampler kind 'pixelshuffle'.*subpixel, deconv, interp"):
        upsampler("pixelshuffle", 8, 3, 2)
    with pytest.raises(ValueError, match="products of 2 and 3.*x5"):
        SubPixelUpsampler(8, 3, 5, stages="log2")
    with pytest.raises(ValueError, match="stages must be"):
        SubPixelUpsampler(8, 3, 2, stages="two")
    with pytest.raises(ValueError, match="integer >= 2"):
        upsampler("deconv", 8, 3, 1)
    with pytest.raises(ValueError, match="mode must be one of"):
        InterpUpsampler(8, 3, 2, mode="bicubic")
    with pytest.raises(ValueError, match="kernel_size >= 4"):
        DeconvUpsampler(8, 3, 4, kernel_size=3)


def test_subpixel_stages_and_parameter_counts():
    c, o = 8, 4
    one = SubPixelUpsampler(c, o, 4)
    assert [type(m) for m in one] == [nn.Conv2d, nn.PixelShuffle]
    assert _n_params(one) == 9 * c * o * 16 + o * 16
    log2 = SubPixelUpsampler(c, o, 4, stages="log2")  # c -> 4o, shuffle, o -> 4o, shuffle
    assert _n_params(log2) == (9 * c * o * 4 + o * 4) + (9 * o * o * 4 + o * 4)
    shuffles = lambda m: [s.upscale_factor for s in m if isinstance(s, nn.PixelShuffle)]
    assert shuffles(SubPixelUpsampler(c, o, 8, stages="log2")) == [2, 2, 2]
    assert shuffles(SubPixelUpsampler(c, o, 3, stages="log2")) == [3]
    assert shuffles(SubPixelUpsampler(c, o, 6, stages="log2")) == [2, 3]
    # an activation sits between conv and shuffle (CARN's order), groups reach the conv
    carn = SubPixelUpsampler(c, c, 2, stages="log2", groups=4, act=nn.ReLU)
    assert [type(m) for m in carn] == [nn.Conv2d, nn.ReLU, nn.PixelShuffle]
    assert carn[0].groups == 4 and _n_params(carn) == 9 * (c // 4) * c * 4 + c * 4
    wn = SubPixelUpsampler(c, o, 2, weight_norm=True)
    assert "0.parametrizations.weight.original0" in wn.state_dict()


def test_subpixel_places_channels_as_pixel_shuffle_does():
    """With an identity 1x1 conv, output pixel (r i + a, r j + b) of channel c is input channel
    c r^2 + a r + b at (i, j) (Shi et al. 2016, Eq. 4)."""
    r, o = 2, 3
    up = SubPixelUpsampler(o * r * r, o, r, kernel_size=1)
    with torch.no_grad():
        up[0].weight.copy_(torch.eye(o * r * r).view(o * r * r, o * r * r, 1, 1))
        up[0].bias.zero_()
    x = torch.rand(1, o * r * r, 3, 4)
    y = up(x)
    for c, a, b in ((0, 0, 0), (1, 0, 1), (2, 1, 0), (2, 1, 1)):
        assert torch.equal(y[0, c, a::r, b::r], x[0, c * r * r + a * r + b])


@pytest.mark.parametrize("scale,expected", [(2, (4, 1, 0)), (3, (6, 2, 1)), (4, (8, 2, 0)), (8, (16, 4, 0))])
def test_deconv_geometry_by_hand(scale, expected):
    k, p, op = deconv_geometry(scale)
    assert (k, p, op) == expected
    assert all((h - 1) * scale - 2 * p + k + op == scale * h for h in (1, 2, 7))
    assert deconv_geometry(2, 9) == (9, 4, 1)  # FSRCNN's 9x9 kernel at x2
    up = DeconvUpsampler(6, 3, scale)
    assert _n_params(up) == 6 * 3 * k * k + 3


def test_interp_upsampler_nearest_and_bilinear_by_hand():
    """Identity conv: nearest repeats each pixel; bilinear with align_corners=False maps the
    ramp [0, 1] at x2 to [0, 0.25, 0.75, 1] (edges clamped)."""
    x = torch.tensor([[[[0.0, 1.0]]]])
    for mode, row in (("nearest", [0, 0, 1, 1]), ("bilinear", [0, 0.25, 0.75, 1])):
        up = InterpUpsampler(1, 1, 2, mode=mode, kernel_size=1)
        with torch.no_grad():
            up.conv.weight.fill_(1.0)
            up.conv.bias.zero_()
        y = up(x)
        assert y.shape == (1, 1, 2, 4)
        assert torch.allclose(y[0, 0], torch.tensor([row, row], dtype=torch.float32))
    assert _n_params(InterpUpsampler(6, 3, 4)) == 9 * 6 * 3 + 3  # interpolation has none


# --- attention ------------------------------------------------------------------------------


def test_pixel_attention_is_a_3d_map_by_hand():
    pa = _randomise(PixelAttention(4))
    x = torch.randn(2, 4, 3, 5)
    w, b = pa.conv.weight[:, :, 0, 0], pa.conv.bias
    expected = x * torch.sigmoid(torch.einsum("oc,nchw->nohw", w, x) + b[:, None, None])
    assert torch.allclose(pa(x), expected, atol=1e-6)
    assert _n_params(pa) == 4 * 4 + 4


def _se_by_hand(x: np.ndarray, pooled: np.ndarray, ca: ChannelAttention) -> np.ndarray:
    """SE (Hu et al. 2018, Eq. 2-4): s = sigmoid(W2 relu(W1 z + b1) + b2); y = s_c x_c."""
    w1, b1 = ca.conv_du[0].weight[:, :, 0, 0].detach().numpy(), ca.conv_du[0].bias.detach().numpy()
    w2, b2 = ca.conv_du[2].weight[:, :, 0, 0].detach().numpy(), ca.conv_du[2].bias.detach().numpy()
    hidden = np.maximum(pooled @ w1.T + b1, 0)
    s = 1 / (1 + np.exp(-(hidden @ w2.T + b2)))
    return x * s[:, :, None, None]


def test_channel_attention_equals_hand_computation():
    x = np.arange(2 * 4 * 2 * 3, dtype=np.float64).reshape(2, 4, 2, 3) / 10 - 1
    for pool, pooled in (("avg", x.mean(axis=(2, 3))),
                         ("contrast", x.std(axis=(2, 3)) + x.mean(axis=(2, 3)))):  # population std
        ca = _randomise(ChannelAttention(4, reduction=2, pool=pool)).double()
        assert ca.conv_du[0].out_channels == 2
        y = ca(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(y, _se_by_hand(x, pooled, ca), rtol=1e-12)
    assert _n_params(ChannelAttention(16, 4)) == 16 * 4 + 4 + 4 * 16 + 16
    assert _n_params(ChannelAttention(16, 4, bias=False)) == 2 * 16 * 4
    with pytest.raises(ValueError, match="pool must be"):
        ChannelAttention(8, pool="max")
    with pytest.raises(ValueError, match="leaves no channels"):
        ChannelAttention(8, reduction=16)


def _coord_att_by_hand(x: torch.Tensor, ca: CoordinateAttention, bn: bool) -> torch.Tensor:
    """Hou et al. 2021, Eq. 4-9: z^h_c(h) = mean_w x_c(h, w), z^w_c(w) = mean_h x_c(h, w);
    f = h-swish(BN(F1 [z^h, z^w])); g^h = sigmoid(F_h f^h), g^w = sigmoid(F_w f^w);
    y_c(i, j) = x_c(i, j) g^h_c(i) g^w_c(j). BN in eval: (f - mean) / sqrt(var + eps) gamma + beta."""
    z = torch.cat([x.mean(dim=3), x.mean(dim=2)], dim=2)  # (N, C, H + W)
    w1, b1 = ca.conv1.weight[:, :, 0, 0], ca.conv1.bias
    f = torch.einsum("mc,ncl->nml", w1, z) + b1[:, None]
    if bn:
        b = ca.bn1
        f = (f - b.running_mean[:, None]) / torch.sqrt(b.running_var[:, None] + b.eps)
        f = f * b.weight[:, None] + b.bias[:, None]
    f = f * torch.clamp(f + 3, 0, 6) / 6  # h-swish
    h = x.shape[2]
    g_h = torch.sigmoid(torch.einsum("cm,nml->ncl", ca.conv_h.weight[:, :, 0, 0], f[:, :, :h])
                        + ca.conv_h.bias[:, None])
    g_w = torch.sigmoid(torch.einsum("cm,nml->ncl", ca.conv_w.weight[:, :, 0, 0], f[:, :, h:])
                        + ca.conv_w.bias[:, None])
    return x * g_h[:, :, :, None] * g_w[:, :, None, :]


@pytest.mark.parametrize("norm", [None, "bn"])
def test_coordinate_attention_equals_hou_equations(norm):
    torch.manual_seed(0)
    ca = _randomise(CoordinateAttention(12, reduction=4, min_mid=2, norm=norm)).double().eval()
    x = torch.randn(2, 12, 5, 7, dtype=torch.float64)  # H != W catches a swapped axis
    assert ca.conv1.out_channels == 3
    assert torch.allclose(ca(x), _coord_att_by_hand(x, ca, norm == "bn"), atol=1e-12)
    keys = set(ca.state_dict())
    assert ("bn1.running_mean" in keys) == (norm == "bn")


def test_coordinate_attention_mid_channels_and_hswish():
    assert CoordinateAttention(40, norm=None).conv1.out_channels == 8  # max(8, 40 // 32)
    assert CoordinateAttention(512).conv1.out_channels == 16
    with pytest.raises(ValueError, match="norm must be None or 'bn'"):
        CoordinateAttention(16, norm="ln")
    t = torch.linspace(-5, 5, 101)
    assert torch.equal(nn.Hardswish()(t), t * F.relu6(t + 3) / 6)  # Hou et al.'s h_swish


def test_depthwise_separable_params_and_equivalent_dense_conv():
    c, c2, k = 6, 10, 3
    assert _n_params(DepthwiseSeparableConv(c, c2, k)) == k * k * c + c * c2 + c + c2
    assert _n_params(DepthwiseSeparableConv(c, c2, 5, bias=False)) == 5 * 5 * c + c * c2
    dsc = _randomise(DepthwiseSeparableConv(c, c2, k, dilation=2)).double()
    assert dsc.depthwise.groups == c
    # the pair equals one dense conv with W[o, i] = P[o, i] D[i], bias P b_d + b_p
    d, p = dsc.depthwise.weight[:, 0], dsc.pointwise.weight[:, :, 0, 0]
    weight = p[:, :, None, None] * d[None]
    bias = p @ dsc.depthwise.bias + dsc.pointwise.bias
    x = torch.randn(1, c, 9, 8, dtype=torch.float64)
    y = dsc(x)
    assert y.shape == (1, c2, 9, 8)
    assert torch.allclose(y, F.conv2d(x, weight, bias, padding=2, dilation=2), atol=1e-12)


def _non_local_by_hand(x: torch.Tensor, nl: NonLocalBlock) -> torch.Tensor:
    """Wang et al. 2018, Eq. 1-3, 6: y_i = sum_j softmax_j(theta_i . phi_j) g_j; z = W y + x."""
    one = lambda conv, t: torch.einsum("oc,nchw->nohw", conv.weight[:, :, 0, 0], t) + conv.bias[:, None, None]
    pool = (lambda t: F.max_pool2d(t, 2)) if nl.sub_sample else (lambda t: t)
    theta = one(nl.theta, x).flatten(2)  # (N, C', HW)
    phi, g = pool(one(nl.phi, x)).flatten(2), pool(one(nl.g, x)).flatten(2)
    attn = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # (N, HW, HW')
    y = (attn @ g.transpose(1, 2)).transpose(1, 2).reshape(x.shape[0], -1, *x.shape[2:])
    return x + one(nl.W, y)


@pytest.mark.parametrize("sub_sample", [False, True])
def test_non_local_identity_at_init_and_equations(sub_sample):
    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 7)
    nl = NonLocalBlock(8, sub_sample=sub_sample)
    assert nl.theta.out_channels == 4
    assert torch.equal(nl(x), x)  # W starts at zero: identity
    _randomise(nl, seed=3).double()
    with torch.no_grad():
        nl.W.weight.sub_(0.5)  # mixed signs
    xd = x.double()
    assert torch.allclose(nl(xd), _non_local_by_hand(xd, nl), atol=1e-10)
    assert not torch.allclose(nl(xd), xd)


def test_non_local_gradients_at_init_reach_w_only():
    """At init dz/dW != 0 while theta/phi/g receive zero gradient (their path goes through W = 0)."""
    nl = NonLocalBlock(8, inter=2)
    x = torch.randn(1, 8, 4, 4)
    nl(x).square().sum().backward()
    assert nl.W.weight.grad.abs().sum() > 0
    assert all(float(m.weight.grad.abs().sum()) == 0 for m in (nl.theta, nl.phi, nl.g))


# --- shapes and gradients of every block ------------------------------------------------------

BLOCKS = {
    "pixel": lambda: PixelAttention(8),
    "channel": lambda: ChannelAttention(8, reduction=4),
    "contrast": lambda: ChannelAttention(8, reduction=4, pool="contrast"),
    "coord-none": lambda: CoordinateAttention(8, reduction=4, norm=None),
    "coord-bn": lambda: CoordinateAttention(8, reduction=4),
    "dsconv": lambda: DepthwiseSeparableConv(8, 8, 3, dilation=2, act=nn.ReLU),
    "nonlocal": lambda: _randomise(NonLocalBlock(8, sub_sample=True)),
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_block_shapes_and_gradients_flow(name):
    torch.manual_seed(0)
    block = BLOCKS[name]().train()
    x = torch.randn(2, 8, 6, 9, requires_grad=True)
    y = block(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for pname, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("kind", ["subpixel", "deconv", "interp"])
def test_upsampler_gradients_flow(kind):
    up = upsampler(kind, 4, 3, 3)
    x = torch.randn(1, 4, 5, 5, requires_grad=True)
    up(x).square().mean().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in up.parameters())


def test_dilated_convs_leave_bf16_under_cpu_autocast():
    import torch.nn.functional as F

    from srlib.models.blocks import DepthwiseSeparableConv, dilated_conv2d

    x, w, b = torch.rand(2, 4, 12, 12), torch.rand(4, 4, 3, 3), torch.rand(4)
    with torch.autocast("cpu", torch.bfloat16):
        assert dilated_conv2d(x, w, b, 2).dtype == torch.float32
        assert dilated_conv2d(x, w, b, 1).dtype == torch.bfloat16
    assert torch.allclose(dilated_conv2d(x, w, b, 2), F.conv2d(x, w, b, padding=2, dilation=2))
    ds = DepthwiseSeparableConv(4, 6, 5, dilation=3)
    assert torch.allclose(ds(x), ds.pointwise(ds.depthwise(x)))  # same function, 'same' padding
