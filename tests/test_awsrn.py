"""AWSRN (Wang et al. 2019): sizes, wiring against the official code, fusion, pruning, checkpoints, BAM."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from srlib.models import CheckpointError, build_model, count_parameters, load_weights
from srlib.models.awsrn import AWSRN
from srlib.models.blocks import DIV2K_RGB_MEAN, Scale
from srlib.models.tracing import trace_shapes
from srlib.reference import published_complexity

CONFIGS = {  # name: (n_feats, block_feats, n_lfb, n_awru)
    "awsrn-s": (32, 128, 1, 4),
    "awsrn-sd": (16, 128, 1, 8),
    "awsrn-m": (32, 128, 3, 4),
    "awsrn": (32, 128, 4, 4),
}
# published sizes (weight-norm gains and adaptive scalars included), from srlib/reference
PARAMS = {(r.model, r.scale): int(r.params) for r in published_complexity().itertuples()
          if r.source.startswith("Wang et al. 2019 AWSRN")}
BAM_EXTRA = 32 * 4 + 4 + 4 * 32 + 7 * 7  # ACAM squeeze + PReLU + excite, MSAM 7x7


def _image(h=10, w=12, seed=0):
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _randomize_scalars(model, seed=0):
    """Move every adaptive scalar off its initial value so folding them is really exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, Scale):
                m.scale.copy_(0.5 + torch.rand(1, generator=g))


# --- the official layout, written out from the reference code's key names ----------------------


def official_state_dict(scale, n_feats, block_feats, n_lfb, n_awru, superimage=False, bam=False, seed=0):
    """A random state dict with the key names and shapes of ChaofWang/AWSRN (or super-image)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}

    def conv(p, cin, cout, k):
        sd[f"{p}.weight_g"] = 0.2 + 0.3 * torch.rand(cout, 1, 1, 1, generator=g)
        sd[f"{p}.weight_v"] = torch.randn(cout, cin, k, k, generator=g)
        sd[f"{p}.bias"] = 0.05 * torch.randn(cout, generator=g)

    def scalar(p):
        sd[f"{p}.scale"] = 0.5 + torch.rand(1, generator=g)

    conv("head.0", 3, n_feats, 3)
    for i in range(n_lfb):
        for j in range(n_awru):
            p = f"body.{i}.lfl.{j}" if superimage else f"body.{i}.b{j}"
            conv(f"{p}.body.0", n_feats, block_feats, 3)
            conv(f"{p}.body.2", block_feats, n_feats, 3)
            scalar(f"{p}.res_scale")
            scalar(f"{p}.x_scale")
        conv(f"body.{i}.reduction", n_feats * n_awru, n_feats, 3)
        scalar(f"body.{i}.res_scale")
        scalar(f"body.{i}.x_scale")
    for k in (3, 5, 7, 9):
        conv(f"tail.tail_k{k}", n_feats, 3 * scale**2, k)
        scalar(f"tail.scale_k{k}")
    conv("skip.0", 3, 3 * scale**2, 3)
    if bam:
        sd["attention.ca.fc1.weight"] = torch.randn(n_feats // 8, n_feats, 1, 1, generator=g)
        sd["attention.ca.relu1.weight"] = 0.25 * torch.rand(n_feats // 8, generator=g)
        sd["attention.ca.fc2.weight"] = torch.randn(n_feats, n_feats // 8, 1, 1, generator=g)
        sd["attention.sa.conv1.weight"] = torch.randn(1, 1, 7, 7, generator=g)
    return sd


def _c(sd, p, x):
    """The official weight-normed conv, computed from ``weight_g``/``weight_v`` by hand."""
    v = sd[f"{p}.weight_v"]
    w = sd[f"{p}.weight_g"] * v / v.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    return F.conv2d(x, w, sd[f"{p}.bias"], padding=w.shape[-1] // 2)


def official_forward(sd, x, scale, n_lfb, n_awru, superimage=False, bam=False):
    """The reference forward (ChaofWang/AWSRN ``MODEL.forward``; super-image with ``bam``)."""
    mean = torch.tensor(DIV2K_RGB_MEAN).view(1, 3, 1, 1)
    if not bam:
        x = (x - mean * 255) / 127.5
    s = F.pixel_shuffle(_c(sd, "skip.0", x), scale)
    h = _c(sd, "head.0", x)
    for i in range(n_lfb):
        block_in, outs = h, []
        for j in range(n_awru):
            p = f"body.{i}.lfl.{j}" if superimage else f"body.{i}.b{j}"
            r = _c(sd, f"{p}.body.2", F.relu(_c(sd, f"{p}.body.0", h)))
            h = r * sd[f"{p}.res_scale.scale"] + h * sd[f"{p}.x_scale.scale"]
            outs.append(h)
        red = _c(sd, f"body.{i}.reduction", torch.cat(outs, 1))
        h = red * sd[f"body.{i}.res_scale.scale"] + block_in * sd[f"body.{i}.x_scale.scale"]
    if bam:
        a = F.conv2d(F.adaptive_avg_pool2d(h, 1), sd["attention.ca.fc1.weight"])
        a = F.conv2d(F.prelu(a, sd["attention.ca.relu1.weight"]), sd["attention.ca.fc2.weight"])
        m = F.conv2d(h.amax(1, keepdim=True), sd["attention.sa.conv1.weight"], padding=3)
        h = torch.sigmoid(a) * torch.sigmoid(m) * h
    t = sum(
        F.pixel_shuffle(_c(sd, f"tail.tail_k{k}", h) * sd[f"tail.scale_k{k}.scale"], scale)
        for k in (3, 5, 7, 9)
    )
    y = t + s
    return y if bam else y * 127.5 + mean * 255


# --- sizes and shapes --------------------------------------------------------------------------


def test_published_sizes_cover_every_variant_and_scale():
    assert sorted(PARAMS) == sorted([(n, s) for n in CONFIGS for s in (2, 3, 4)] + [("awsrn", 8)])


@pytest.mark.parametrize("name,scale", sorted(PARAMS))
def test_parameter_counts_match_the_paper(name, scale):
    model = build_model(name, scale)
    assert count_parameters(model) == PARAMS[name, scale]
    assert model.scale == scale
    assert model(_image(6, 7)).shape == (1, 3, 6 * scale, 7 * scale)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bam_variant_shapes_and_size(scale):
    model = build_model("awsrn-bam", scale)
    assert count_parameters(model) == PARAMS["awsrn", scale] + BAM_EXTRA
    assert model.mean_shift is None and model.attention is not None
    f = torch.randn(2, 32, 5, 6)
    assert model.attention.acam(f).shape == (2, 32, 1, 1)
    assert model.attention.msam(f).shape == (2, 1, 5, 6)
    assert model.attention(f).shape == f.shape
    assert model(_image(6, 7)).shape == (1, 3, 6 * scale, 7 * scale)


def test_registry_and_constructor_reject_bad_scales():
    with pytest.raises(ValueError, match="x8"):
        build_model("awsrn-s", 8)
    with pytest.raises(ValueError, match="positive integer"):
        AWSRN(scale=0, n_feats=8, block_feats=16, n_lfb=1, n_awru=2)


def test_awru_is_weighted_residual():
    awru = build_model("awsrn-s", 2).lfbs[0].awrus[0]
    _randomize_scalars(awru)
    x = torch.randn(1, 32, 5, 5)
    expected = awru.res_scale.scale * awru.conv2(F.relu(awru.conv1(x))) + awru.x_scale.scale * x
    torch.testing.assert_close(awru(x), expected)


# --- official checkpoints ----------------------------------------------------------------------


@pytest.mark.parametrize("name,scale", [("awsrn-s", 3), ("awsrn-sd", 2), ("awsrn", 8)])
def test_official_checkpoint_loads_and_reproduces_the_reference(tmp_path, name, scale):
    nf, bf, n_lfb, n_awru = CONFIGS[name]
    sd = official_state_dict(scale, nf, bf, n_lfb, n_awru)
    path = tmp_path / "model_best.pt"
    torch.save({"model": sd}, path)
    model = load_weights(build_model(name, scale), path)
    x = _image(5, 6)
    with torch.no_grad():  # official code: [0, 255] in and out; ours: [0, 1]
        torch.testing.assert_close(model(x) * 255, official_forward(sd, x * 255, scale, n_lfb, n_awru),
                                   rtol=1e-4, atol=2e-3)


def test_superimage_bam_checkpoint_loads_and_reproduces_the_reference(tmp_path):
    sd = official_state_dict(2, 32, 128, 4, 4, superimage=True, bam=True)
    torch.save(sd, tmp_path / "pytorch_model_2x.pt")
    model = load_weights(build_model("awsrn-bam", 2), tmp_path / "pytorch_model_2x.pt")
    x = _image(5, 6)
    with torch.no_grad():  # super-image works in [0, 1] without a mean shift
        torch.testing.assert_close(model(x), official_forward(sd, x, 2, 4, 4, superimage=True, bam=True),
                                   rtol=1e-4, atol=1e-5)


def test_corrupted_checkpoints_fail_loudly(tmp_path):
    good = official_state_dict(2, 32, 128, 1, 4)
    cases = {
        "missing": {k: v for k, v in good.items() if k != "body.0.b3.body.2.weight_v"},
        "unexpected": {**good, "body.0.b4.x_scale.scale": torch.ones(1)},
        "shape": official_state_dict(4, 32, 128, 1, 4),  # an x4 file for an x2 model
    }
    for word, sd in cases.items():
        torch.save(sd, tmp_path / f"{word}.pt")
        with pytest.raises(CheckpointError, match=word):
            load_weights(build_model("awsrn-s", 2), tmp_path / f"{word}.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_weights(build_model("awsrn-s", 2), tmp_path / "junk.pt")


def test_own_checkpoints_round_trip(tmp_path):
    model = build_model("awsrn-sd", 3)
    _randomize_scalars(model)
    assert model.convert_state_dict(model.state_dict()).keys() == model.state_dict().keys()
    torch.save(model.state_dict(), tmp_path / "own.pt")
    other = load_weights(build_model("awsrn-sd", 3), tmp_path / "own.pt")
    x = _image()
    with torch.no_grad():
        assert torch.equal(model(x), other(x))


# --- fusion and pruning ------------------------------------------------------------------------


@pytest.mark.parametrize("name,scale", [("awsrn-s", 4), ("awsrn-sd", 3), ("awsrn-bam", 2)])
def test_fused_copy_matches_the_model(name, scale):
    model = build_model(name, scale).eval()
    _randomize_scalars(model)
    fused = model.fuse()
    x = _image(9, 8)
    with torch.no_grad():
        diff = (fused(x) - model(x)).abs().max().item()
    assert diff < 1e-5
    assert not any("parametrizations" in k for k in fused.state_dict())
    assert any("parametrizations" in k for k in model.state_dict())  # original untouched
    assert count_parameters(fused) < count_parameters(model)


def _awms_input(model, x):
    """The LFB (or attention) output that enters AWMS."""
    seen = {}
    handle = model.awms.register_forward_pre_hook(lambda m, args: seen.setdefault("f", args[0]))
    with torch.no_grad():
        model(x)
    handle.remove()
    return seen["f"]


def test_pruning_removes_exactly_the_dropped_branches():
    model = build_model("awsrn-s", 2).eval()
    with torch.no_grad():
        for k, w in zip(("k3", "k5", "k7", "k9"), (0.6, -0.01, 0.3, 0.004)):
            model.awms.weights[k].scale.fill_(w)
    x = _image()
    f = _awms_input(model, x)
    with torch.no_grad():
        contributions = model.awms.contributions(f)
        before = model(x)
        dropped = model.prune_awms(threshold=0.05)
        after = model(x)
    assert sorted(dropped) == ["k5", "k9"] and list(model.awms.convs) == ["k3", "k7"]
    removed = (contributions["k5"] + contributions["k9"]) * model.mean_shift.std  # [0, 1] output units
    torch.testing.assert_close(before - after, removed, rtol=0, atol=1e-6)
    with torch.no_grad():
        assert (model.fuse()(x) - after).abs().max() < 1e-5  # a pruned model still fuses


def test_pruning_by_count_keeps_the_largest_weights():
    awms = build_model("awsrn-sd", 2).awms
    with torch.no_grad():
        for k, w in zip(("k3", "k5", "k7", "k9"), (0.1, 0.4, -0.5, 0.2)):
            awms.weights[k].scale.fill_(w)
    assert sorted(awms.prune(keep=2)) == ["k3", "k9"]
    assert list(awms.convs) == ["k5", "k7"]
    with pytest.raises(ValueError, match="every AWMS branch"):
        awms.prune(threshold=10.0)
    with pytest.raises(ValueError, match="exactly one"):
        awms.prune()


def test_trace_shapes_records_each_top_level_module():
    model = build_model("awsrn-s", 4)
    rows = trace_shapes(model, _image(12, 16), max_depth=1)
    assert [r["name"] for r in rows] == ["head", "lfbs", "awms", "skip", "(model)"]
    assert rows[2]["output"] == rows[-1]["output"] == (1, 3, 48, 64)
    assert rows[3]["output"] == (1, 48, 12, 16)  # the skip before its pixel shuffle: 3 * 4^2 channels
    assert rows[-1]["params"] == PARAMS["awsrn-s", 4]
