"""Improved AWSRN (seed 000): all switches off is AWSRN, each switch starts as AWSRN, sizes by hand,
gradients, and each module's defining property."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from srlib.complexity import multi_adds
from srlib.models import build_model, count_parameters, get_entry, load_weights
from srlib.models.awsrn import AWRU, AWSRN
from srlib.models.awsrn_improved import (
    SWITCHES,
    BoundedNonLocal,
    FocusLRFU,
    GlobalContextAWRU,
    ImprovedAWSRN,
    NonLocalCA,
    nonlocal_cost,
)
from srlib.models.blocks import Scale

CONFIGS = {  # AWSRN configurations: (n_feats, block_feats, n_lfb, n_awru), and their scales
    "awsrn-s": ((32, 128, 1, 4), (2, 3, 4)),
    "awsrn-sd": ((16, 128, 1, 8), (2, 3, 4)),
    "awsrn-m": ((32, 128, 3, 4), (2, 3, 4)),
    "awsrn": ((32, 128, 4, 4), (2, 3, 4, 8)),
}
OFF = {s: False for s in SWITCHES}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one thread is faster than two fighting other processes for two cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _image(n=1, h=10, w=12, seed=0):
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _improved(name, scale, **switches):
    (nf, bf, n_lfb, n_awru), _ = CONFIGS[name]
    return ImprovedAWSRN(scale, nf, bf, n_lfb, n_awru, **{**OFF, **switches})


def _trained_baseline(name, scale, seed=0):
    """A baseline AWSRN whose adaptive scalars are far from their initial values (e.g. 1.3)."""
    torch.manual_seed(seed)
    model = build_model(name, scale)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, Scale):
                m.scale.copy_(0.4 + 1.2 * torch.rand(1, generator=g))
    return model


def _new_parameters(model):
    prefixes = [p for ps in model.extra_key_prefixes().values() for p in ps]
    return {k: p for k, p in model.named_parameters() if k.startswith(tuple(prefixes))}


# --- all switches off is AWSRN -----------------------------------------------------------------


@pytest.mark.parametrize("name,scale", [(n, s) for n, (_, scales) in CONFIGS.items() for s in scales])
def test_all_switches_off_is_the_baseline(name, scale):
    base = _trained_baseline(name, scale)
    model = _improved(name, scale)
    assert count_parameters(model) == count_parameters(base)
    own, theirs = model.state_dict(), base.state_dict()
    assert list(own) == list(theirs)
    assert all(own[k].shape == theirs[k].shape for k in own)
    model.load_state_dict(theirs)  # strict
    x = _image(h=6, w=7)
    with torch.no_grad():
        assert torch.equal(model(x), base(x))
    assert model.extra_key_prefixes() == {}


def test_registry_entries_are_the_awsrn_configurations():
    for improved, base in (("awsrn-s-improved", "awsrn-s"), ("awsrn-improved", "awsrn")):
        assert get_entry(improved).config == get_entry(base).config
        assert get_entry(improved).scales == get_entry(base).scales
    model = build_model("awsrn-s-improved", 4, nonlocal_ca=False)  # one ablation arm
    assert model.switches == {**{s: True for s in SWITCHES}, "nonlocal_ca": False}
    assert model.fusion is None
    with pytest.raises(ValueError, match="x8"):
        build_model("awsrn-s-improved", 8)
    with pytest.raises(ValueError, match="gap_awru must be True or False"):
        build_model("awsrn-s-improved", 2, gap_awru="yes")


def test_own_checkpoint_round_trips_strictly(tmp_path):
    model = build_model("awsrn-s-improved", 2)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    torch.save(model.state_dict(), tmp_path / "improved.pt")
    other = load_weights(build_model("awsrn-s-improved", 2), tmp_path / "improved.pt")
    x = _image()
    with torch.no_grad():
        assert torch.equal(model(x), other(x))


# --- function-preserving initialisation --------------------------------------------------------


@pytest.mark.parametrize("switch", SWITCHES + ("all",))
def test_each_switch_starts_as_the_loaded_baseline(switch):
    base = _trained_baseline("awsrn-s", 4)
    switches = {s: True for s in SWITCHES} if switch == "all" else {switch: True}
    torch.manual_seed(1)
    model = _improved("awsrn-s", 4, **switches)
    result = model.load_state_dict(base.state_dict(), strict=False)
    assert result.unexpected_keys == []
    prefixes = tuple(p for ps in model.extra_key_prefixes().values() for p in ps)
    assert result.missing_keys and all(k.startswith(prefixes) for k in result.missing_keys)
    assert set(model.extra_key_prefixes()) == set(switches)
    x = _image(n=2)
    with torch.no_grad():
        torch.testing.assert_close(model(x), base(x), rtol=0, atol=1e-6)
        for p in _new_parameters(model).values():  # move the new parts: the output must change
            p.add_(0.3 * torch.randn_like(p))
        assert (model(x) - base(x)).abs().max() > 1e-4


def test_every_configuration_starts_as_its_baseline_with_all_switches(tmp_path):
    """Through the trainer's loader (by key, where shapes match), AWSRN-SD x3 and AWSRN x2."""
    from srlib.train.recipes import load_init_checkpoint

    for name, scale in (("awsrn-sd", 3), ("awsrn", 2)):
        base = _trained_baseline(name, scale)
        torch.save(base.state_dict(), tmp_path / "base.pt")
        model = _improved(name, scale, **{s: True for s in SWITCHES})
        record = load_init_checkpoint(model, tmp_path / "base.pt")
        assert record["unused"] == [] and record["shape_mismatch"] == []
        assert len(record["loaded"]) == len(base.state_dict())
        x = _image(h=7, w=9)
        with torch.no_grad():
            torch.testing.assert_close(model(x), base(x), rtol=0, atol=1e-6)


# --- sizes by hand ------------------------------------------------------------------------------


def _switch_params(switch, C, n_lfb, n_awru, scale):
    """Parameters each switch adds, from its layer shapes (weights + biases); gates reduce by 4."""
    d = C // 4
    out = 3 * scale**2
    if switch == "gap_awru":  # per AWRU: conv1x1 C->d, conv1x1 d->2C
        return n_lfb * n_awru * ((C * d + d) + (d * 2 * C + 2 * C))
    if switch == "lrfu_fusion":  # per LFB: focus C->d->nC, (n-1) progressive 1x1 2C->C
        return n_lfb * ((C * d + d) + (d * n_awru * C + n_awru * C) + (n_awru - 1) * (2 * C * C + C))
    if switch == "awms_plus":  # 2 branches (depthwise 5x5, pointwise C->out, a scalar), squeeze C->d,
        # and 6 gates d->1
        branch = (25 * C + C) + (C * out + out) + 1
        return 2 * branch + (C * d + d) + 6 * (d + 1)
    if switch == "dsconv_head":  # depthwise 5x5, pointwise C->C, pixel attention 1x1 C->C
        return (25 * C + C) + (C * C + C) + (C * C + C)
    if switch == "nonlocal_ca":  # theta/phi/g C->C/2, W C/2->C; channel attention C->d->C
        i = C // 2
        return 3 * (C * i + i) + (i * C + C) + (C * d + d) + (d * C + C)
    raise KeyError(switch)


@pytest.mark.parametrize("name,scale", [("awsrn-s", 4), ("awsrn-sd", 2), ("awsrn", 8)])
def test_each_switch_adds_the_parameters_its_layers_hold(name, scale):
    (C, _, n_lfb, n_awru), _ = CONFIGS[name]
    base = count_parameters(_improved(name, scale))
    total = 0
    for switch in SWITCHES:
        added = count_parameters(_improved(name, scale, **{switch: True})) - base
        assert added == _switch_params(switch, C, n_lfb, n_awru, scale), switch
        total += added
    assert count_parameters(_improved(name, scale, **{s: True for s in SWITCHES})) == base + total


def test_awsrn_s_x4_sizes_written_out():
    """The numbers the notebook quotes, for AWSRN-S x4 (C 32, 4 AWRUs, AWMS to 48 channels)."""
    expected = {"gap_awru": 4 * (264 + 576), "lrfu_fusion": 264 + 1152 + 3 * 2080,
                "awms_plus": 2 * (832 + 1584 + 1) + 264 + 54, "dsconv_head": 832 + 1056 + 1056,
                "nonlocal_ca": 1584 + 544 + 264 + 288}
    assert {s: _switch_params(s, 32, 1, 4, 4) for s in SWITCHES} == expected
    assert count_parameters(build_model("awsrn-s-improved", 4)) == 587_742 + sum(expected.values())
    assert count_parameters(build_model("awsrn-s", 4)) == 587_742


# --- one training step ---------------------------------------------------------------------------


def test_every_new_parameter_gets_a_gradient():
    """Step 0 from the loaded baseline: the zero-initialised last layers (and every part not behind
    one) get a gradient, the layers behind them none (their output is multiplied by zero). After
    one SGD step every new parameter gets a non-zero gradient."""
    base = _trained_baseline("awsrn-s", 2)
    model = _improved("awsrn-s", 2, **{s: True for s in SWITCHES})
    model.load_state_dict(base.state_dict(), strict=False)
    new = _new_parameters(model)
    zero_last = {"lfbs.0.awrus.0.context.2.weight", "lfbs.0.lrfu.focus.2.weight", "lfbs.0.lrfu.hier.2.weight",
                 "awms.weights.dw13.scale", "awms.gates.k3.weight", "head_ds.dsconv.pointwise.weight",
                 "fusion.nl.W.weight", "fusion.ca.conv_du.2.weight"}
    behind = {"lfbs.0.awrus.0.context.0.weight", "lfbs.0.lrfu.focus.0.weight", "lfbs.0.lrfu.hier.0.weight",
              "awms.convs.dw13.depthwise.weight", "awms.squeeze.0.weight", "head_ds.dsconv.depthwise.weight",
              "fusion.nl.theta.weight", "fusion.ca.conv_du.0.weight"}
    assert zero_last | behind <= set(new)
    x, target = _image(n=2, h=12, w=12), torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(5))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    def backward():
        opt.zero_grad()
        F.l1_loss(model(x), target).backward()
        return {k: p.grad.abs().max().item() for k, p in new.items()}

    step0 = backward()
    assert all(step0[k] > 0 for k in zero_last)
    assert all(step0[k] == 0 for k in behind)
    opt.step()
    step1 = backward()
    assert all(g > 0 for g in step1.values()), [k for k, g in step1.items() if g == 0]


def test_bf16_autocast_training_step_runs():
    model = build_model("awsrn-s-improved", 3).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(_image(n=2, h=9, w=8).to(memory_format=torch.channels_last))
    y.float().abs().mean().backward()
    assert y.shape == (2, 3, 27, 24) and torch.isfinite(y.float()).all()


# --- each module's defining property ------------------------------------------------------------


def test_gap_awru_starts_as_the_awru_and_weights_follow_the_context():
    awru = AWRU(16, 32)
    with torch.no_grad():
        awru.res_scale.scale.fill_(1.3)
        awru.x_scale.scale.fill_(0.7)
    unit = GlobalContextAWRU(16, 32)
    unit.load_state_dict(awru.state_dict(), strict=False)
    x = torch.randn(3, 16, 6, 5)
    with torch.no_grad():
        torch.testing.assert_close(unit(x), awru(x), rtol=0, atol=0)
        for p in unit.context.parameters():
            p.add_(torch.randn_like(p))
        pooled = x.mean(dim=(2, 3), keepdim=True)
        z = unit.context[2](F.relu(unit.context[0](pooled)))
        w_res, w_x = 1.3 * 2 * torch.sigmoid(z[:, :16]), 0.7 * 2 * torch.sigmoid(z[:, 16:])
        body = unit.conv2(F.relu(unit.conv1(x)))
        torch.testing.assert_close(unit(x), w_res * body + w_x * x)
    assert w_res.shape == (3, 16, 1, 1) and not torch.allclose(w_res[0], w_res[1])  # per image, per channel


def test_lrfu_focus_weights_are_a_softmax_over_the_awru_outputs():
    lrfu = FocusLRFU(8, 3)
    feats, x = [torch.randn(2, 8, 5, 5) for _ in range(3)], torch.randn(2, 8, 5, 5)
    a = lrfu.focus_weights(feats)
    assert a.shape == (2, 3, 8, 1, 1)
    torch.testing.assert_close(a, torch.full_like(a, 1 / 3))  # uniform at the start
    with torch.no_grad():
        for p in lrfu.parameters():
            p.add_(0.5 * torch.randn_like(p))
        a = lrfu.focus_weights(feats)
        torch.testing.assert_close(a.sum(dim=1), torch.ones(2, 8, 1, 1))
        u = [f * 3 * a[:, i] for i, f in enumerate(feats)]
        h = lrfu.hier[1](torch.cat([F.leaky_relu(lrfu.hier[0](torch.cat(u[:2], 1)), 0.05), u[2]], 1))
        expected = lrfu.res_scale.scale * (lrfu.conv(torch.cat(u, 1)) + h) + lrfu.x_scale.scale * x
        torch.testing.assert_close(lrfu(feats, x), expected)
    assert not torch.allclose(a[:, 0], a[:, 1])


def test_awms_plus_prunes_by_mean_weight_over_images():
    torch.manual_seed(0)
    model = _improved("awsrn-s", 2, awms_plus=True).eval()
    awms = model.awms
    assert list(awms.convs) == ["k3", "k5", "k7", "k9", "dw13", "dw17"]
    assert awms.convs["dw13"].depthwise.dilation == (3, 3) and awms.convs["dw17"].depthwise.dilation == (4, 4)
    with torch.no_grad():
        for k, w in zip(awms.convs, (0.6, -0.01, 0.3, 0.004, 0.2, 0.002)):
            awms.weights[k].scale.fill_(w)
        for p in [*awms.gates.parameters(), *awms.squeeze.parameters()]:
            p.add_(torch.randn_like(p))
    images = [_image(n=2, seed=1), _image(n=1, seed=2)]
    _, feats = model.features(torch.cat([images[0], images[1]]))
    gates = awms.gate_weights(feats)
    assert not torch.allclose(gates["k3"][0], gates["k3"][1])  # input-dependent
    mean = model.awms_branch_weights(images)
    for k in awms.convs:  # the mean over the three images, computed from the gates by hand
        assert abs(mean[k] - gates[k].mean().item()) < 1e-6
        assert 0 < mean[k] / awms.weights[k].scale.item() < 2
    with pytest.raises(ValueError, match="images="):
        model.prune_awms(threshold=0.05)
    x = images[0]
    with torch.no_grad():
        contributions = awms.contributions(model.features(x)[1])
        before = model(x)
        dropped = model.prune_awms(threshold=0.05, images=images)
        after = model(x)
    assert sorted(dropped) == ["dw17", "k5", "k9"] and list(awms.gates) == ["k3", "k7", "dw13"]
    removed = sum(contributions[k] for k in dropped) * model.mean_shift.std
    torch.testing.assert_close(before - after, removed, rtol=0, atol=1e-6)
    with pytest.raises(NotImplementedError, match="every switch off"):
        model.fuse()


def test_dsconv_head_scores_reweight_depthwise_separable_features():
    model = _improved("awsrn-sd", 2, dsconv_head=True)
    head = model.head_ds
    assert head.dsconv.depthwise.groups == 16 and head.dsconv.depthwise.kernel_size == (5, 5)
    f = torch.randn(2, 16, 7, 6)
    torch.testing.assert_close(head(f), f, rtol=0, atol=0)  # zero pointwise: the identity
    with torch.no_grad():
        head.dsconv.pointwise.weight.normal_()
        p = head.dsconv.pointwise(head.dsconv.depthwise(f))  # Eq. 3-4
        a = head.scores(f)  # Eq. 5
        assert a.shape == f.shape and (a > 0).all() and (a < 1).all()
        torch.testing.assert_close(head(f), f + p * a)  # Eq. 6, beside the head conv


def test_nonlocal_attention_rows_sum_to_one_and_chunks_change_nothing():
    torch.manual_seed(0)
    nl = BoundedNonLocal(8, key_grid=4, chunk=7)
    with torch.no_grad():
        nl.W.weight.normal_()
    x = torch.randn(2, 8, 9, 11)
    a = nl.attention(x)
    assert a.shape == (2, 99, 16)  # every pixel attends to a 4x4 max-pooled grid
    torch.testing.assert_close(a.sum(-1), torch.ones(2, 99))
    g = F.adaptive_max_pool2d(nl.g(x), 4).flatten(2).transpose(1, 2)
    expected = x + nl.W((a @ g).transpose(1, 2).reshape(2, 4, 9, 11))
    torch.testing.assert_close(nl(x), expected)  # 15 chunks of 7 queries = the whole matrix
    small = torch.randn(1, 8, 3, 4)  # smaller than the grid: keys are all the pixels, no pooling
    assert nl.attention(small).shape == (1, 12, 12)


def test_channel_attention_scales_each_channel():
    fusion = NonLocalCA(8, reduction=4)
    x = torch.randn(2, 8, 5, 6)
    torch.testing.assert_close(fusion(x), x, rtol=0, atol=0)  # W and the CA's last conv are zero
    with torch.no_grad():
        for p in fusion.ca.parameters():
            p.add_(torch.randn_like(p))
        y = fusion(x)  # the non-local part is still the identity (W = 0): y = s * x
    ratio = y / x
    torch.testing.assert_close(ratio, ratio[:, :, :1, :1].expand_as(ratio))  # one factor per channel
    assert ((ratio > 0) & (ratio < 2)).all() and not torch.allclose(ratio[0], ratio[1])


def test_nonlocal_cost_at_720p_and_urban100_x2():
    model = build_model("awsrn-s-improved", 4)
    cost = model.nonlocal_cost()
    q, k, i, c = 320 * 180, 16 * 16, 16, 32
    assert (cost["queries"], cost["keys"]) == (q, k)
    assert cost["multi_adds"] == 2 * q * k * i + 4 * q * c * i
    plain = build_model("awsrn-s-improved", 4, nonlocal_ca=False)
    ca = c * 8 + 8 * c  # the channel attention's two 1x1 convs on the pooled vector
    assert multi_adds(model, 4) - multi_adds(plain, 4) == cost["multi_adds"] + ca
    urban = nonlocal_cost(32, 2, out_hw=(960, 1280))  # Urban100's largest image, 480 x 640 LR at x2
    full_matrix_bytes = 4 * (480 * 640) ** 2  # an unbounded non-local block: 377 GB
    assert full_matrix_bytes > 350e9
    assert urban["matrix_bytes_fp32"] == 4 * 480 * 640 * 256 < 0.35e9  # and never held at once:
    assert urban["chunk_bytes"] == 4 * 4096 * 256  # 4 MB of logits per chunk


def test_fuse_only_with_every_switch_off():
    model = _improved("awsrn-s", 3).eval()
    x = _image(h=8, w=9)
    with torch.no_grad():
        assert (model.fuse()(x) - model(x)).abs().max() < 1e-5
    assert isinstance(model, AWSRN)
    with pytest.raises(NotImplementedError, match="gap_awru"):
        _improved("awsrn-s", 3, gap_awru=True).fuse()
