"""Adversarial losses (seed 000 Eq. 14), the R1 penalty, the hybrid loss (Eq. 15) and the
VGG-style discriminator: each GAN variant against logits computed by hand, R1 on a linear critic
(gradient known in closed form), zero perceptual/adversarial weights giving exactly the pixel
loss and non-zero ones the weighted sum of separately computed terms, the discriminator's
parameter count from its layer shapes and its acceptance of any patch size. Tiny tensors.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from srlib.losses import (ESRGAN_WEIGHTS, PerceptualLoss, build_loss, discriminator_loss, generator_loss,
                          hybrid_loss)
from srlib.models.discriminator import VGGDiscriminator, build_discriminator

FAKE = torch.tensor([[0.5], [-1.0]])
REAL = torch.tensor([[2.0], [0.0]])


def softplus(z: float) -> float:
    return math.log(1 + math.exp(z))


def mean(xs) -> float:
    return sum(xs) / len(xs)


F_, R_ = [0.5, -1.0], [2.0, 0.0]
FBAR, RBAR = mean(F_), mean(R_)
BY_HAND = {  # (generator, discriminator)
    "vanilla": (mean([softplus(-f) for f in F_]), mean([softplus(-r) for r in R_]) + mean([softplus(f) for f in F_])),
    "lsgan": ((0.25 + 4.0) / 2, (1.0 + 1.0) / 2 + (0.25 + 1.0) / 2),
    "hinge": (0.25, (0.0 + 1.0) / 2 + (1.5 + 0.0) / 2),
    "ragan": (mean([softplus(r - FBAR) for r in R_]) + mean([softplus(-(f - RBAR)) for f in F_]),
              mean([softplus(-(r - FBAR)) for r in R_]) + mean([softplus(f - RBAR) for f in F_])),
}


@pytest.mark.parametrize("gan_type", sorted(BY_HAND))
def test_gan_losses_by_hand(gan_type):
    g, d = BY_HAND[gan_type]
    assert generator_loss(gan_type, FAKE, REAL).item() == pytest.approx(g, rel=1e-6)
    assert discriminator_loss(gan_type, REAL, FAKE).item() == pytest.approx(d, rel=1e-6)


def test_ragan_generator_gradient_reaches_only_the_fake_logits():
    fake, real = FAKE.clone().requires_grad_(True), REAL.clone().requires_grad_(True)
    generator_loss("ragan", fake, real).backward()
    assert fake.grad.abs().sum() > 0 and real.grad is None
    with pytest.raises(ValueError, match="ragan needs the logits of the real"):
        generator_loss("ragan", FAKE)
    with pytest.raises(ValueError, match="gan_type must be one of"):
        discriminator_loss("wgan", REAL, FAKE)


class Linear(nn.Module):
    """D(x) = <w, x> + b per image: grad_x D = w."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.randn(3, 4, 4, generator=g))
        self.b = nn.Parameter(torch.tensor(0.3))

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1, keepdim=True) + self.b


def test_r1_penalty_on_a_linear_critic():
    d, hr = Linear(), torch.rand(2, 3, 4, 4)
    r1 = build_loss({"r1": 2.5}).parts["r1"]
    value = r1(hr, hr, discriminator=d)
    assert value.item() == pytest.approx(2.5 * d.w.detach().square().sum().item(), rel=1e-6)
    value.backward()  # double backward: the penalty trains D
    torch.testing.assert_close(d.w.grad, 2.5 * 2 * d.w.detach(), rtol=1e-5, atol=0)


def test_gan_terms_read_the_discriminator_through_the_registry():
    d = VGGDiscriminator(nf=2, norm="none")
    sr, hr = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    for gan_type in BY_HAND:
        g = build_loss({"gan": {"weight": 0.5, "gan_type": gan_type}})(sr, hr, discriminator=d)["gan"]
        dl = build_loss({"gan_d": {"gan_type": gan_type}})(sr, hr, discriminator=d)["gan_d"]
        with torch.no_grad():
            fake, real = d(sr), d(hr)
        torch.testing.assert_close(g, 0.5 * generator_loss(gan_type, fake, real))
        torch.testing.assert_close(dl, discriminator_loss(gan_type, real, fake))
    with pytest.raises(ValueError, match="need context \\['discriminator'\\]"):
        build_loss({"gan": 1.0})(sr, hr)


def pair(seed=0, size=16):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, size, size, generator=g), torch.rand(2, 3, size, size, generator=g)


def test_zero_perceptual_and_adversarial_weights_give_exactly_the_pixel_loss():
    sr, hr = pair()
    d = VGGDiscriminator(nf=2, norm="none")
    spec = {"l1": 1.0, "perceptual": {"weight": 0.0, "layers": {"relu1_2": 1.0}, "weights": "random"},
            "gan": {"weight": 0.0, "gan_type": "ragan"}}
    out = build_loss(spec)(sr, hr, discriminator=d)
    assert torch.equal(out["loss"], F.l1_loss(sr, hr))
    loss, d_loss = hybrid_loss(pixel=1.0, perceptual=0.0, adversarial=0.0)
    assert (loss, d_loss) == ({"l1": 1.0}, None)
    assert torch.equal(build_loss(loss)(sr, hr)["loss"], F.l1_loss(sr, hr))


def test_nonzero_weights_give_the_weighted_sum_of_separate_terms():
    sr, hr = pair(1)
    d = VGGDiscriminator(nf=2, norm="none")
    loss_spec, d_spec = hybrid_loss(layers={"relu2_2": 1.0}, vgg_weights="random", r1=0.5)
    assert loss_spec["l1"] == ESRGAN_WEIGHTS["pixel"] == 1e-2
    assert loss_spec["perceptual"]["weight"] == 1.0 and loss_spec["gan"]["weight"] == 5e-3
    assert d_spec == {"gan_d": {"weight": 1.0, "gan_type": "ragan"}, "r1": 0.5}
    out = build_loss(loss_spec)(sr, hr, discriminator=d)
    pixel = F.l1_loss(sr, hr)
    percep = PerceptualLoss(layers={"relu2_2": 1.0}, criterion="l1", weights="random")(sr, hr)
    with torch.no_grad():
        adv = generator_loss("ragan", d(sr), d(hr))
    torch.testing.assert_close(out["l1"], 1e-2 * pixel)
    torch.testing.assert_close(out["perceptual"], percep)
    torch.testing.assert_close(out["gan"], 5e-3 * adv)
    torch.testing.assert_close(out["loss"], 1e-2 * pixel + percep + 5e-3 * adv, rtol=1e-6, atol=0)
    with pytest.raises(ValueError, match="every weight is 0"):
        hybrid_loss(0, 0, 0)


def count_by_hand(nf: int, norm: bool, pool: int = 4, hidden: int = 100) -> int:
    widths = [nf, nf, 2 * nf, 2 * nf, 4 * nf, 4 * nf, 8 * nf, 8 * nf]
    total, c_in = 0, 3
    for i, c in enumerate(widths):
        with_norm = norm and i > 0
        total += 9 * c_in * c + (0 if with_norm else c) + (2 * c if with_norm else 0)
        c_in = c
    return total + (8 * nf * pool * pool * hidden + hidden) + (hidden + 1)


@pytest.mark.parametrize("nf, norm", [(64, "batch"), (8, "none"), (4, "batch")])
def test_discriminator_parameter_count_from_layer_shapes(nf, norm):
    d = build_discriminator({"name": "vgg", "nf": nf, "norm": norm})
    assert sum(p.numel() for p in d.parameters()) == count_by_hand(nf, norm == "batch")
    if nf == 64 and norm == "batch":
        assert count_by_hand(64, True) == 5_506_633


@pytest.mark.parametrize("size", [1, 5, 16, 33, 64])
def test_discriminator_takes_any_patch_size(size):
    d = VGGDiscriminator(nf=2)
    x = torch.rand(3, 3, size, size, requires_grad=True)
    out = d(x)
    assert out.shape == (3, 1) and torch.isfinite(out).all()
    out.sum().backward()
    assert x.grad.abs().sum() > 0


def test_build_discriminator_errors():
    with pytest.raises(ValueError, match="unknown discriminator 'patchgan'"):
        build_discriminator("patchgan")
    with pytest.raises(ValueError, match="bad options"):
        build_discriminator({"name": "vgg", "width": 3})
    with pytest.raises(ValueError, match="norm must be one of"):
        VGGDiscriminator(norm="spectral")
