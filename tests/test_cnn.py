"""YanCNN (Yan et al. 2024, seed 002_85103154dfa612b9.txt): shapes, size, global skip, training."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from srlib.data.resize import imresize
from srlib.models import build_model, count_parameters, list_models
from srlib.models.cnn import YanCNN
from srlib.train import model_config


def _image(n=2, h=10, w=12, seed=0):
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _params(scale, n_feats=64, n_mapping=6, bn_mapping=False):
    """Hand count: conv weights + biases, BN gamma/beta (running stats are buffers)."""
    extract = 3 * n_feats * 9 + n_feats + 2 * n_feats
    mapping = n_mapping * (n_feats * n_feats * 9 + n_feats + (2 * n_feats if bn_mapping else 0))
    reconstruct = n_feats * 3 * scale**2 * 9 + 3 * scale**2
    return extract + mapping + reconstruct


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_shape_and_parameter_count(scale):
    model = build_model("cnn", scale).eval()
    assert model.scale == scale
    assert model(_image()).shape == (2, 3, 10 * scale, 12 * scale)
    assert count_parameters(model) == _params(scale)
    assert count_parameters(YanCNN(scale, n_feats=16, n_mapping=3, bn_mapping=True)) == _params(
        scale, 16, 3, True)


def test_parameter_counts_of_the_registry_config():
    assert [count_parameters(build_model("cnn", s)) for s in (2, 3, 4)] == [230_412, 239_067, 251_184]


def test_stages_follow_the_paper():
    m = YanCNN(2)
    assert isinstance(m.extract[1], torch.nn.BatchNorm2d)  # Eq. 3
    assert len(m.mapping) == 6 and not any(isinstance(x, torch.nn.BatchNorm2d) for x in m.mapping.modules())
    assert sum(isinstance(x, torch.nn.BatchNorm2d) for x in YanCNN(2, bn_mapping=True).mapping.modules()) == 6
    assert isinstance(m.reconstruct[1], torch.nn.PixelShuffle) and m.reconstruct[0].out_channels == 12


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_zero_reconstruction_gives_exactly_bicubic(scale):
    model = YanCNN(scale).eval()
    with torch.no_grad():
        model.reconstruct[0].weight.zero_()
        model.reconstruct[0].bias.zero_()
    x = _image(seed=scale)
    assert torch.equal(model(x), imresize(x, scale=scale))


def test_same_seed_same_model():
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        outs.append(build_model("cnn", 3).eval()(_image()))
    assert torch.equal(outs[0], outs[1])
    torch.manual_seed(8)
    assert not torch.equal(outs[0], build_model("cnn", 3).eval()(_image()))


def _textured(n, size, seed):
    """Sums of random colour gratings plus a checkerboard: texture and edges."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(size * 1.0), torch.arange(size * 1.0), indexing="ij")
    imgs = []
    for _ in range(n):
        img = torch.zeros(3, size, size)
        for _ in range(3):
            th, f, ph = torch.rand(3, generator=g) * torch.tensor([3.1416, 0.9, 6.28]) + torch.tensor([0, 0.3, 0])
            img += torch.rand(3, 1, 1, generator=g) * torch.sin(f * (x * th.cos() + y * th.sin()) + ph)
        k = int(torch.randint(4, 10, (1,), generator=g))
        img += ((x // k + y // k) % 2) - 0.5
        imgs.append((0.5 + 0.12 * img).clamp(0, 1))
    return torch.stack(imgs)


@pytest.fixture
def one_thread():
    """Small convs on 2 busy cores: 2 threads measured 20x slower than 1 (4 s vs 85 s)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_short_training_beats_bicubic(one_thread):
    """The paper's recipe (MSE, Adam, lr 1e-4), 160 steps of batch 4 on 16x16 LR patches."""
    s, p = 2, 16
    hr, hr_test = _textured(16, 64, 0), _textured(2, 64, 99)
    lr, lr_test = imresize(hr, scale=1 / s), imresize(hr_test, scale=1 / s)
    torch.manual_seed(0)
    model = build_model("cnn", s)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(1)
    for _ in range(160):
        i, a, b = (torch.randint(0, hi, (4,), generator=g) for hi in (16, 32 - p + 1, 32 - p + 1))
        lb = torch.stack([lr[j, :, u:u + p, v:v + p] for j, u, v in zip(i, a, b)])
        hb = torch.stack([hr[j, :, s * u:s * (u + p), s * v:s * (v + p)] for j, u, v in zip(i, a, b)])
        loss = F.mse_loss(model(lb), hb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        mse = F.mse_loss(model.eval()(lr_test), hr_test).item()
    bicubic = F.mse_loss(imresize(lr_test, scale=s), hr_test).item()
    assert mse < 0.9 * bicubic


def test_registry_and_training_recipe():
    assert "cnn" in list_models()
    c = model_config("cnn", "quick")
    assert (c.loss, c.lr, c.schedule) == ("mse", 1e-4, "constant")
    assert c.steps == 1200  # the profile still sets the budget
    assert model_config("cnn", "smoke", lr=3e-4).lr == 3e-4  # the caller wins
    a = model_config("awsrn-s", "quick")
    assert (a.loss, a.lr, a.schedule) == ("l1", 1e-3, "step")
    assert model_config("my-own-model", "quick").loss == "l1"  # unregistered: the profile's recipe
