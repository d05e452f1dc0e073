"""Losses: each pixel loss against a hand computation and torch's functional, reductions, weights,
the registry and its weighted sums (a mapping of one term is the plain loss bit for bit), and the
loss field of TrainConfig. Tensors of a few elements; the file runs in seconds.
"""
from __future__ import annotations

import io
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from srlib.losses import (CharbonnierLoss, L1Loss, Loss, LossSum, MSELoss, build_loss, list_losses,
                          loss_terms, register_loss, total_loss)
from srlib.train import TrainConfig

SR = torch.tensor([0.0, 2.0, 3.0, 1.0])
HR = torch.tensor([1.0, 1.0, 1.0, 1.0])  # differences -1, 1, 2, 0


def rand_pair(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)


# ---- each loss by hand --------------------------------------------------------------------
def test_l1_by_hand_and_reductions():
    assert L1Loss()(SR, HR).item() == 1.0  # (1 + 1 + 2 + 0) / 4
    assert L1Loss(reduction="sum")(SR, HR).item() == 4.0
    assert L1Loss(reduction="none")(SR, HR).tolist() == [1.0, 1.0, 2.0, 0.0]
    assert L1Loss(loss_weight=2.5)(SR, HR).item() == 2.5


def test_mse_by_hand_and_reductions():
    assert MSELoss()(SR, HR).item() == 1.5  # (1 + 1 + 4 + 0) / 4
    assert MSELoss(reduction="sum")(SR, HR).item() == 6.0
    assert MSELoss(reduction="none")(SR, HR).tolist() == [1.0, 1.0, 4.0, 0.0]
    assert MSELoss(loss_weight=0.5, reduction="sum")(SR, HR).item() == 3.0


def test_charbonnier_by_hand():
    eps = 1e-6
    expected = [math.sqrt(d * d + eps) for d in (-1, 1, 2, 0)]
    got = CharbonnierLoss(reduction="none")(SR.double(), HR.double())
    assert got.tolist() == pytest.approx(expected, rel=1e-15)
    assert got[3].item() == pytest.approx(1e-3, rel=1e-12)  # sqrt(eps) where sr == hr: LapSRN's epsilon
    assert CharbonnierLoss(eps=0.25, reduction="none")(torch.zeros(1), torch.zeros(1)).item() == 0.5
    mean = CharbonnierLoss(loss_weight=2.0)(SR.double(), HR.double()).item()
    assert mean == pytest.approx(2.0 * sum(expected) / 4, rel=1e-15)
    sr, hr = rand_pair()  # with BasicSR's eps 1e-12 it is L1 to within 1e-6 per pixel
    torch.testing.assert_close(CharbonnierLoss(eps=1e-12)(sr, hr), F.l1_loss(sr, hr), rtol=0, atol=1e-6)


@pytest.mark.parametrize("cls, fn", [(L1Loss, F.l1_loss), (MSELoss, F.mse_loss)])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_matches_torch_functional_bit_for_bit(cls, fn, reduction):
    sr, hr = rand_pair(1)
    assert torch.equal(cls(reduction=reduction)(sr, hr), fn(sr, hr, reduction=reduction))


def test_bad_reduction_and_eps_fail_clearly():
    for cls in (L1Loss, MSELoss, CharbonnierLoss):
        with pytest.raises(ValueError, match=r"reduction must be one of \('none', 'mean', 'sum'\)"):
            cls(reduction="avg")
    with pytest.raises(ValueError, match="eps must be > 0"):
        CharbonnierLoss(eps=0)


# ---- the registry and weighted sums -------------------------------------------------------
def test_registry_lists_and_rejects_unknown():
    assert {"l1", "mse", "charbonnier"} <= set(list_losses())
    with pytest.raises(ValueError, match=r"unknown loss 'l3'; known losses: \[.*'charbonnier'.*'l1'.*'mse'"):
        build_loss("l3")
    with pytest.raises(ValueError, match="unknown loss 'ssim'"):
        build_loss({"l1": 1.0, "ssim": 0.1})


def test_mapping_of_one_equals_plain_loss_bit_for_bit():
    sr, hr = rand_pair(2)
    outs = []
    for spec in ("l1", {"l1": 1.0}, {"l1": 1}, {"l1": {"weight": 1.0}}):
        x = sr.clone().requires_grad_(True)
        out = build_loss(spec)(x, hr)
        out["loss"].backward()
        outs.append((out["loss"].detach(), out["l1"].detach(), x.grad))
    plain = sr.clone().requires_grad_(True)
    ref = F.l1_loss(plain, hr)
    ref.backward()
    for loss, term, grad in outs:
        assert torch.equal(loss, ref.detach()) and torch.equal(term, ref.detach())
        assert torch.equal(grad, plain.grad)


def test_weighted_mapping_terms_and_total():
    sr, hr = rand_pair(3)
    out = build_loss({"l1": 1.0, "charbonnier": {"weight": 0.5, "eps": 1e-12}, "mse": 2.0})(sr, hr)
    assert list(out) == ["loss", "l1", "charbonnier", "mse"]
    torch.testing.assert_close(out["charbonnier"], 0.5 * torch.sqrt((sr - hr) ** 2 + 1e-12).mean())
    assert torch.equal(out["mse"], 2.0 * F.mse_loss(sr, hr))
    assert torch.equal(out["loss"], out["l1"] + out["charbonnier"] + out["mse"])
    assert loss_terms({"l1": 1, "charbonnier": {"weight": 0.5}}) == {"l1": 1.0, "charbonnier": 0.5}


def test_bad_specs_fail_clearly():
    with pytest.raises(ValueError, match="weight must be a finite number >= 0"):
        build_loss({"l1": -1.0})
    with pytest.raises(ValueError, match="weight must be a finite number"):
        build_loss({"l1": float("nan")})
    with pytest.raises(ValueError, match=r"'l1' does not accept \['eps'\]"):
        build_loss({"l1": {"weight": 1.0, "eps": 1e-3}})
    with pytest.raises(ValueError, match="non-empty mapping"):
        build_loss({})
    with pytest.raises(ValueError, match="'weight', not 'loss_weight'"):
        build_loss({"l1": {"loss_weight": 2.0}})


class NeedsD(Loss):
    """A term that reads the discriminator from the context."""

    needs = ("discriminator",)

    def forward(self, sr, hr, discriminator=None, **context):
        return self.loss_weight * discriminator(sr).mean()


def test_terms_declare_the_context_they_need():
    register_loss("test_needs_d")(NeedsD)
    loss = build_loss({"l1": 1.0, "test_needs_d": 0.1})
    assert isinstance(loss, LossSum) and loss.needs == ("discriminator",)
    sr, hr = rand_pair(4)
    with pytest.raises(ValueError, match=r"need context \['discriminator'\]"):
        loss(sr, hr)
    out = loss(sr, hr, discriminator=lambda x: 2 * x)
    assert torch.equal(out["test_needs_d"], 0.1 * (2 * sr).mean())
    with pytest.raises(ValueError, match="already registered"):
        register_loss("l1")(NeedsD)
    with pytest.raises(ValueError, match="identifiers other than 'loss'"):
        register_loss("loss")
    with pytest.raises(ValueError, match="no loss terms"):
        total_loss({})


# ---- TrainConfig.loss ---------------------------------------------------------------------
def test_config_loss_validated_and_round_trips():
    assert TrainConfig().loss == "l1"
    cfg = TrainConfig(loss={"l1": 1, "charbonnier": {"weight": 0.5, "eps": 1e-12}}, d_betas=[0.5, 0.9])
    assert cfg.loss == {"l1": 1.0, "charbonnier": {"weight": 0.5, "eps": 1e-12}}
    d = cfg.to_dict()
    assert TrainConfig.from_dict(json.loads(json.dumps(d))).to_dict() == d
    buf = io.BytesIO()
    torch.save(d, buf)
    buf.seek(0)
    assert TrainConfig.from_dict(torch.load(buf, weights_only=True)) == cfg
    with pytest.raises(ValueError, match=r"TrainConfig.loss: unknown loss 'l3'.*registered losses"):
        TrainConfig(loss="l3")
    with pytest.raises(ValueError, match="TrainConfig.d_loss"):
        TrainConfig(d_loss={"nope": 1.0})


def test_cnn_keeps_mse():
    from srlib.train import model_config

    assert model_config("cnn", "quick").loss == "mse" and model_config("awsrn-s", "quick").loss == "l1"


def test_training_with_mapping_of_one_equals_plain(tmp_path):
    """A short run with ``loss={'l1': 1.0}`` ends with exactly the weights of ``loss='l1'``."""
    from torch.utils.data import TensorDataset

    from srlib.train import train_model

    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.rand(8, 3, 4, 4, generator=g), torch.rand(8, 3, 8, 8, generator=g))
    finals = []
    for i, spec in enumerate(("l1", {"l1": 1.0})):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.PixelShuffle(2))
        cfg = TrainConfig(steps=4, batch_size=4, lr=1e-2, loss=spec, log_every=1, checkpoint_every=0,
                          progress=False, threads=1, precision="fp32", device="cpu")
        finals.append(train_model(model, data, cfg, tmp_path / str(i)).model.state_dict())
    for k in finals[0]:
        assert torch.equal(finals[0][k], finals[1][k]), k
