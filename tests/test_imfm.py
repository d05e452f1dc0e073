"""IMFM (seed 003): CAM's factorised attention, PAB's progressive paths, MSWAM's scales, the
upsamplers' shapes, parameter counts derived by hand per ablation switch, gradients, and the
full EDSR registered for the complexity table."""
from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from srlib.models import ENTRIES, build_model, count_parameters, get_entry, list_models
from srlib.models.blocks import ChannelAttention, PixelAttention
from srlib.models.imfm import CAM, IMFM, MSWAM, MWAUM, PAB, UPSAMPLERS

NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)
SMALL = dict(n_feats=8, n_blocks=2, n_paths=3, path_feats=4, up_feats=4, base_depth=3)


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _spread_weights(module, std=1.0, seed=0):
    """Larger random weights, so attention maps vary visibly (default init is near-flat)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(std * torch.randn(p.shape, generator=g))
    return module


# --- parameter counts by hand from layer shapes -------------------------------------------


def conv_p(cin, cout, k):
    return cin * cout * k * k + cout


def cam_p(c):
    mid = max(8, c // 32)  # Hou et al.'s width
    return conv_p(c, mid, 1) + 2 * conv_p(mid, c, 1)


def unit_p(c, mswam):
    """MSWAM: one shared 3x3 kernel + one shared 1x1 PA conv + 2 scale weights; else 3x3 conv."""
    return conv_p(c, c, 3) + (conv_p(c, c, 1) + 2 if mswam else 0)


def imfm_p(scale, n_feats=40, n_blocks=17, n_paths=4, path_feats=28, up_feats=28,
           upsampler="mwaum", pab=True, mswam=True, cam=True, base_depth=40):
    f, s, m, u = n_feats, n_paths, path_feats, up_feats
    total = conv_p(3, f, 3)
    if pab:
        block = conv_p(f, s * m, 1) + (s - 1) * unit_p(m, mswam) + conv_p(s * m, f, 1)
        total += n_blocks * (block + (cam_p(f) if cam else 0))
    else:
        total += base_depth * conv_p(f, f, 3) + (cam_p(f) if cam else 0)
    if upsampler == "mwaum":
        total += conv_p(f, u, 3) + unit_p(u, mswam) + conv_p(u, 3, 3)
    elif upsampler == "subpixel":
        total += conv_p(f, 3 * scale**2, 3)
    else:  # one transposed conv, kernel 2s
        total += f * 3 * (2 * scale) ** 2 + 3
    return total


@pytest.mark.parametrize("pab,mswam,cam", list(itertools.product([False, True], repeat=3)))
def test_each_switch_parameter_count_by_hand(pab, mswam, cam):
    for scale in (2, 4):
        model = IMFM(scale, pab=pab, mswam=mswam, cam=cam, **SMALL)
        assert count_parameters(model) == imfm_p(scale, pab=pab, mswam=mswam, cam=cam, **SMALL)


@pytest.mark.parametrize("upsampler", UPSAMPLERS)
def test_upsampler_parameter_count_by_hand(upsampler):
    for scale in (2, 3, 4):
        model = IMFM(scale, upsampler=upsampler, **SMALL)
        assert count_parameters(model) == imfm_p(scale, upsampler=upsampler, **SMALL)


def test_full_model_count_and_ablation_deltas():
    # the docstring's figures: 595,403 at every scale (Table 3's MWAUM row: 596.362K)
    assert imfm_p(4) == 595_403
    for scale in (2, 3, 4):
        assert count_parameters(build_model("imfm", scale)) == 595_403
    rows = {name: imfm_p(4, **kw) for name, kw in {
        "base": dict(pab=False, mswam=False, cam=False), "+PAB": dict(mswam=False, cam=False),
        "+MSWAM": dict(cam=False), "+CAM": {}}.items()}
    assert count_parameters(IMFM(4, pab=False, mswam=False, cam=False)) == rows["base"]
    # PAB saves 63.7K in the text; 40 base layers is the depth closest to it (a layer = 14,440)
    saving = rows["base"] - rows["+PAB"]
    assert saving == 61_412 and abs(saving - 63_700) < conv_p(40, 40, 3) / 2
    assert rows["+MSWAM"] - rows["+PAB"] == 51 * (conv_p(28, 28, 1) + 2) + conv_p(28, 28, 1) + 2 == 42_328
    assert rows["+CAM"] - rows["+MSWAM"] == 17 * cam_p(40)


# --- CAM ------------------------------------------------------------------------------------


def _is_rank_one(r, tol=1e-5):
    """r (C, H, W): r[c, i, j] == r[c, i, 0] r[c, 0, j] / r[c, 0, 0] for every channel."""
    outer = r[:, :, :1] * r[:, :1, :] / r[:, :1, :1]
    return torch.allclose(r, outer, rtol=tol, atol=tol)


def _varies_along_h_and_w(r):
    return bool((r.std(dim=1) > 1e-3).all() and (r.std(dim=2) > 1e-3).all())


def test_cam_factorises_into_h_only_and_w_only_maps():
    x = 0.5 + _rand(1, 8, 9, 11)  # positive, so attention = y / x is well defined
    cam = _spread_weights(CAM(8), std=0.5)
    r = (cam(x) / x)[0]
    # a[c, i, j] = g_h[c, i] * g_w[c, j]: rank one per channel, and not constant along H or W
    assert _is_rank_one(r) and _varies_along_h_and_w(r)
    # the test discriminates: squeeze-excitation is constant per channel, pixel attention is full rank
    se = _spread_weights(ChannelAttention(8, reduction=2), std=0.5)
    r_se = (se(x) / x)[0]
    assert _is_rank_one(r_se) and not _varies_along_h_and_w(r_se)
    r_pa = (_spread_weights(PixelAttention(8), std=0.5)(x) / x)[0]
    assert not _is_rank_one(r_pa, tol=1e-3)


def test_cam_has_no_normalisation_and_uses_h_swish():
    for module in (CAM(40), IMFM(2, **SMALL), IMFM(2, pab=False, **SMALL)):
        assert not any(isinstance(m, NORMS) for m in module.modules())
    assert any(isinstance(m, nn.Hardswish) for m in CAM(40).modules())


# --- PAB and MSWAM --------------------------------------------------------------------------


def test_pab_paths_are_progressive():
    pab = PAB(n_feats=8, n_paths=4, path_feats=3)
    assert len(pab.paths) == 3  # s paths: path 1 passes through, paths 2..s are MSWAMs
    assert all(isinstance(p, MSWAM) for p in pab.paths) and pab.split.out_channels == 12
    seen = []
    hooks = [p.register_forward_hook(lambda mod, inp, out: seen.append((inp[0], out))) for p in pab.paths]
    x = _rand(1, 8, 6, 7)
    pab(x)
    for h in hooks:
        h.remove()
    xs = torch.chunk(nn.functional.leaky_relu(pab.split(x), 0.2), 4, dim=1)
    assert torch.equal(seen[0][0], xs[1])  # path 2 sees its own split only
    for i in (1, 2):  # path i+2 sees x_{i+2} + the output of path i+1
        assert torch.allclose(seen[i][0], xs[i + 1] + seen[i - 1][1])

    # perturbing path 2's output changes path 3's input by exactly that perturbation
    delta = _rand(1, 3, 6, 7, seed=1)
    inputs = []
    h1 = pab.paths[0].register_forward_hook(lambda mod, inp, out: out + delta)
    h2 = pab.paths[1].register_forward_hook(lambda mod, inp, out: inputs.append(inp[0]))
    pab(x)
    h1.remove(), h2.remove()
    assert torch.allclose(inputs[0] - seen[1][0], delta, atol=1e-6)


def test_mswam_branches_share_a_kernel_at_two_receptive_fields():
    m = MSWAM(2)
    assert count_parameters(m) == conv_p(2, 2, 3) + conv_p(2, 2, 1) + 2
    x = torch.zeros(1, 2, 11, 11)
    x[..., 5, 5] = 1.0
    support = [(b - b[..., :1, :1]).abs().sum(dim=1)[0] > 1e-7 for b in m.branches(x)]
    rows = [torch.nonzero(s.any(dim=1)).flatten() for s in support]
    # dilation 1: a 3x3 footprint around the impulse; dilation 2: 5x5 (rows 3..7)
    assert rows[0].tolist() == [4, 5, 6] and rows[1].tolist() == [3, 5, 7]


# --- shapes, gradients, registry ------------------------------------------------------------


@pytest.mark.parametrize("upsampler", UPSAMPLERS)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_shape_odd_sizes(upsampler, scale):
    x = _rand(2, 3, 5, 7)
    assert IMFM(scale, upsampler=upsampler, **SMALL)(x).shape == (2, 3, 5 * scale, 7 * scale)
    if upsampler == "mwaum":
        assert MWAUM(8, 4, scale)(_rand(1, 8, 5, 7)).shape == (1, 3, 5 * scale, 7 * scale)


def test_every_parameter_gets_a_gradient():
    # IMFM has no zero-initialised layer, so one backward pass (no optimiser step first) suffices
    for kw in ({}, dict(pab=False), dict(upsampler="deconv"), dict(upsampler="subpixel")):
        model = IMFM(3, **{**SMALL, **kw})
        x, y = _rand(2, 3, 6, 5), _rand(2, 3, 18, 15, seed=1)
        nn.functional.l1_loss(model(x), y).backward()
        dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
        assert not dead, (kw, dead)


def test_registry_and_errors():
    names = list(ENTRIES)
    assert names[names.index("cnn") + 1] == "imfm" and "imfm" in list_models()
    entry = get_entry("imfm")
    assert entry.scales == (2, 3, 4) and entry.train == {"loss": "l1"}
    with pytest.raises(ValueError, match="upsampler must be one of"):
        IMFM(2, upsampler="pixelshuffle")
    with pytest.raises(ValueError, match="n_paths >= 2"):
        PAB(8, 1, 4)


def test_full_edsr_is_registered_for_complexity():
    """Lim et al. 2017's EDSR: 32 blocks of 256, res scale 0.1, 43M at x4 (counted on meta)."""
    f = 256

    def edsr_p(scale):
        stages = {2: [2], 3: [3], 4: [2, 2]}[scale]
        up = sum(conv_p(f, f * r * r, 3) for r in stages)
        return conv_p(3, f, 3) + 32 * 2 * conv_p(f, f, 3) + conv_p(f, f, 3) + up + conv_p(f, 3, 3)

    assert edsr_p(4) == 43_089_923  # "43M" in Lim et al.'s Table
    entry = get_entry("edsr")
    assert entry.config == {"n_resblocks": 32, "nf": 256, "res_scale": 0.1}
    for scale in (2, 3, 4):
        with torch.device("meta"):
            model = build_model("edsr", scale)
        assert count_parameters(model) == edsr_p(scale)
        assert model.body[0].res_scale == 0.1
