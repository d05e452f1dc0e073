"""The perceptual loss (seed 000 Eq. 13) and its weights: VGG19 layer names against torchvision's
configuration, zero for an image with itself and growing with blur, the weighted layer sum by hand,
frozen / eval / truncated, the weight file found in SRLIB_WEIGHTS_DIR, the missing-weights error
(no network: the download is monkeypatched), the profile's resolver, and LPIPS's "not measured"
and measured paths (a random AlexNet file written by the test). Random-feature VGG19 on 24x24
images; the file runs in seconds.
"""
from __future__ import annotations

import json
import urllib.error

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from srlib.losses import RANDOM_VGG_NOTE, PerceptualLoss, VGG19Features, VGGWeightsNotFound, build_loss
from srlib.losses import perceptual as P
from srlib.train import TrainConfig


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """No VGG19 file anywhere and no network: an empty SRLIB_WEIGHTS_DIR and hub cache, and a
    download that fails as offline; returns the list of download attempts."""
    (tmp_path / "weights").mkdir()
    monkeypatch.setenv("SRLIB_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    calls = []

    def offline():
        calls.append(1)
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(P, "_download", offline)
    return calls


def texture(seed: int = 0, size: int = 24) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, size, size, generator=g)


def box_blur(x: torch.Tensor, k: int) -> torch.Tensor:
    return F.avg_pool2d(F.pad(x, (k // 2,) * 4, mode="replicate"), k, stride=1)


def test_layer_names_follow_torchvision_vgg19_features():
    expected = []  # from torchvision's VGG19 configuration 'E', independently of our table
    block, conv_i, c_in = 1, 1, 3
    for v in torchvision.models.vgg.cfgs["E"]:
        if v == "M":
            expected.append((f"pool{block}", nn.MaxPool2d, None))
            block, conv_i = block + 1, 1
        else:
            expected += [(f"conv{block}_{conv_i}", nn.Conv2d, (c_in, v)), (f"relu{block}_{conv_i}", nn.ReLU, None)]
            c_in, conv_i = v, conv_i + 1
    vgg = VGG19Features(["pool5"], weights="random")
    assert list(P.VGG19_LAYERS) == [n for n, _, _ in expected] and len(expected) == 37
    for module, (_, kind, chans) in zip(vgg.body, expected):
        assert isinstance(module, kind)
        if chans:
            assert (module.in_channels, module.out_channels, module.kernel_size) == (*chans, (3, 3))
    assert P.VGG19_LAYERS.index("conv5_4") == 34 and P.VGG19_LAYERS.index("relu2_2") == 8


def test_frozen_eval_and_truncated_after_the_deepest_layer():
    loss = PerceptualLoss(layers={"relu1_2": 1.0, "conv2_1": 0.5}, weights="random")
    assert len(loss.vgg.body) == 6  # conv1_1 relu1_1 conv1_2 relu1_2 pool1 conv2_1
    assert all(not p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.vgg.training
    sr = texture().requires_grad_(True)
    loss(sr, texture(1)).backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())


@pytest.mark.parametrize("criterion", ["l1", "l2"])
def test_zero_for_itself_and_grows_with_blur(criterion):
    loss = PerceptualLoss(layers={"relu1_2": 1.0, "conv2_2": 1.0}, criterion=criterion, weights="random")
    x = texture()
    assert loss(x, x).item() == 0.0
    values = [loss(box_blur(x, k), x).item() for k in (3, 5, 7, 9)]
    assert 0 < values[0] < values[1] < values[2] < values[3]


def test_weighted_layer_sum_by_hand():
    layers = {"relu1_1": 0.25, "conv2_1": 2.0}
    loss = PerceptualLoss(loss_weight=0.5, layers=layers, criterion="l2", weights="random")
    sr, hr = texture(0), texture(1)
    feats = VGG19Features(list(layers), weights="random")  # same seed: the same network
    x_mean, x_std = torch.tensor(P.IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(P.IMAGENET_STD).view(1, 3, 1, 1)
    f_sr = feats.body[:6]((sr - x_mean) / x_std)
    f_hr = feats.body[:6]((hr - x_mean) / x_std)
    r11_sr, r11_hr = feats.body[:2]((sr - x_mean) / x_std), feats.body[:2]((hr - x_mean) / x_std)
    expected = 0.5 * (0.25 * (r11_sr - r11_hr).square().mean() + 2.0 * (f_sr - f_hr).square().mean())
    torch.testing.assert_close(loss(sr, hr), expected, rtol=1e-5, atol=0)
    l1 = PerceptualLoss(layers={"conv2_1": 1.0}, criterion="l1", reduction="sum", weights="random")
    torch.testing.assert_close(l1(sr, hr), (f_sr - f_hr).abs().sum(), rtol=1e-5, atol=0)


def test_random_weights_are_fixed_and_leave_the_global_rng_alone():
    torch.manual_seed(5)
    before = torch.get_rng_state()
    a, b = VGG19Features(["conv1_2"], weights="random"), VGG19Features(["conv1_2"], weights="random")
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(a.body[2].weight, b.body[2].weight)
    std = a.body[2].weight.std().item()  # Kaiming normal, fan-out: sqrt(2 / (64 * 9))
    assert std == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.05)


def test_imagenet_file_from_srlib_weights_dir(tmp_path, monkeypatch, no_weights):
    g = torch.Generator().manual_seed(3)
    sd = {"features.0.weight": torch.randn(64, 3, 3, 3, generator=g), "features.0.bias": torch.randn(64, generator=g),
          "features.2.weight": torch.randn(64, 64, 3, 3, generator=g), "features.2.bias": torch.randn(64, generator=g),
          "classifier.0.weight": torch.zeros(2, 2)}
    (tmp_path / "weights" / "VGG19").mkdir()
    torch.save(sd, tmp_path / "weights" / "VGG19" / P.VGG19_FILE)
    P._FEATURES.clear()
    loss = PerceptualLoss(layers={"relu1_2": 1.0}, weights="imagenet")
    assert loss.weights_used == "imagenet" and loss.note == ""
    assert torch.equal(loss.vgg.body[2].weight, sd["features.2.weight"])
    assert torch.equal(loss.vgg.body[0].bias, sd["features.0.bias"])
    assert P.resolve_vgg_weights("full") == "imagenet" and P.resolve_vgg_weights("quick") == "imagenet"
    assert no_weights == []  # found on disk: no download tried
    P._FEATURES.clear()


def test_missing_weights_error_names_file_size_place_and_origin(no_weights):
    with pytest.raises(VGGWeightsNotFound) as info:
        PerceptualLoss(weights="imagenet")
    msg = str(info.value)
    for part in (P.VGG19_FILE, "548 MB", "SRLIB_WEIGHTS_DIR", P.VGG19_URL, "weights='random'", "network unreachable"):
        assert part in msg
    assert no_weights == [1]  # the real download path was taken (and failed offline)
    with pytest.raises(VGGWeightsNotFound, match="download=False"):
        PerceptualLoss(weights="imagenet", download=False)
    assert no_weights == [1]


def test_profiles_resolve_random_or_refuse(no_weights):
    for profile in ("smoke", "quick"):
        with pytest.warns(UserWarning, match="random-feature VGG19"):
            assert P.resolve_vgg_weights(profile) == "random"
    with pytest.raises(VGGWeightsNotFound, match="vgg19-dcbb9e9d.pth"):
        P.resolve_vgg_weights("full")
    with pytest.warns(UserWarning, match="not on disk"):
        auto = PerceptualLoss(layers=["relu1_1"], weights="auto")
    assert auto.weights_used == "random" and auto.note == RANDOM_VGG_NOTE
    assert RANDOM_VGG_NOTE == "random-feature VGG19 \u2014 not the paper's loss"


def test_spec_in_train_config_round_trips():
    spec = {"l1": 1.0, "perceptual": {"weight": 0.5, "layers": {"relu1_2": 1.0, "conv2_2": 0.5},
                                      "criterion": "l1", "weights": "random"}}
    cfg = TrainConfig(loss=spec)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    built = build_loss(cfg.loss)
    assert built.parts["perceptual"].layer_weights == {"relu1_2": 1.0, "conv2_2": 0.5}
    with pytest.raises(ValueError, match="unknown layers"):
        PerceptualLoss(layers={"conv6_1": 1.0}, weights="random")
    with pytest.raises(ValueError, match="reduction='none'"):
        PerceptualLoss(reduction="none", weights="random")


def test_lpips_not_measured_says_why(no_weights):
    x = texture(size=16)
    value, why = P.lpips_distance(x, x)
    assert value is None and "not measured" in why
    assert "alexnet-owt-7be5be79.pth" in why or "not installed" in why


def test_lpips_measured_with_a_backbone_file_on_disk(tmp_path, no_weights):
    pytest.importorskip("lpips")
    features = {k: v for k, v in torchvision.models.alexnet().state_dict().items() if k.startswith("features.")}
    (tmp_path / "weights" / "LPIPS").mkdir()
    torch.save(features, tmp_path / "weights" / "LPIPS" / P.LPIPS_BACKBONES["alex"])
    x, y = texture(0, 32), texture(1, 32)
    same, why = P.lpips_distance(x, x)
    other, _ = P.lpips_distance(x, y)
    assert why == "" and same == 0.0 and other > 0.0
