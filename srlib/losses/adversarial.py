"""Adversarial losses (seed 000 Eq. 14) and the hybrid loss (Eq. 15).

Seed 000: "a discriminative network trained to differentiate super-resolved outputs from ground
truth samples, while simultaneously optimizing the generator (AWSRN) to produce visually
plausible results capable of bypassing this discrimination" (Eq. 14), and "combines perceptual
and adversarial losses through weighted summation" (Eq. 15). Both equations were lost; the text
fixes neither the GAN variant nor the weights.

Registered terms (the discriminator returns one logit per image):

- ``gan`` (generator, ``loss``): ``gan_type`` one of :data:`GAN_TYPES`;
- ``gan_d`` (discriminator, ``d_loss``): the same ``gan_type``;
- ``r1`` (discriminator): the R1 penalty ``E ||grad_x D(hr)||^2`` (Mescheder et al. 2018); its
  weight is the paper's ``gamma / 2``.

Readings chosen:

- vanilla: ``-log sigma(D(sr))`` for G (the non-saturating form, Goodfellow et al. 2014) and
  ``-log sigma(D(hr)) - log(1 - sigma(D(sr)))`` for D.
- lsgan (Mao et al. 2017, targets 1/0): G ``(D(sr) - 1)^2``, D ``(D(hr) - 1)^2 + D(sr)^2``.
- hinge (Lim & Ye 2017, as in SAGAN): G ``-D(sr)``, D ``relu(1 - D(hr)) + relu(1 + D(sr))``.
- ragan, relativistic average (Jolicoeur-Martineau 2018; ESRGAN Eq. 1-2):
  ``D_Ra(a, b) = D(a) - mean D(b)``; D ``-log sigma(D_Ra(hr, sr)) - log(1 - sigma(D_Ra(sr, hr)))``,
  G the symmetric ``-log(1 - sigma(D_Ra(hr, sr))) - log sigma(D_Ra(sr, hr))`` (the G step
  evaluates D on HR too, without gradient).
- Expectations are batch means; D's real and fake parts are *summed* as in the papers' objectives
  (BasicSR halves ragan's; the factor is a D learning-rate rescale).
- The discriminator runs under the trainer's autocast (context ``autocast``), logits in fp32;
  R1's double backward runs in fp32.

Hybrid (Eq. 15): :func:`hybrid_loss` builds ``loss`` and ``d_loss`` specs; :data:`ESRGAN_WEIGHTS`
(pixel L1 1e-2, perceptual 1, adversarial 5e-3, ESRGAN Sec. 4.1, with ragan and VGG19 conv5_4
L1 features) is the documented starting point. Seed 000's text supports only the form: a
pixel term (its AWSRN baseline's loss, "MSE and PSNR-optimized components") plus a perceptual
(VGG, L1 or L2) and an adversarial (GAN) term in a weighted sum; it gives no weights, layers or GAN
variant, so those are ESRGAN's and a reader should treat them as this project's choice.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from .registry import Loss, register_loss

GAN_TYPES = ("vanilla", "lsgan", "hinge", "ragan")
# ESRGAN (Wang et al. 2018, Sec. 4.1): L_G = L_percep + 5e-3 L_G^Ra + 1e-2 L_1
ESRGAN_WEIGHTS = {"pixel": 1e-2, "perceptual": 1.0, "adversarial": 5e-3}


def _check_type(gan_type: str, who: str) -> str:
    if gan_type not in GAN_TYPES:
        raise ValueError(f"{who}: gan_type must be one of {GAN_TYPES}, got {gan_type!r}")
    return gan_type


def generator_loss(gan_type: str, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
    """The generator's adversarial loss from logits ``fake = D(sr)`` (and ``real = D(hr)`` for ragan)."""
    _check_type(gan_type, "generator_loss")
    if gan_type == "vanilla":
        return F.softplus(-fake).mean()  # -log sigmoid(fake)
    if gan_type == "lsgan":
        return (fake - 1).square().mean()
    if gan_type == "hinge":
        return -fake.mean()
    if real is None:
        raise ValueError("generator_loss: ragan needs the logits of the real images too")
    real = real.detach()
    return F.softplus(real - fake.mean()).mean() + F.softplus(-(fake - real.mean())).mean()


def discriminator_loss(gan_type: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss from logits ``real = D(hr)`` and ``fake = D(sr)``."""
    _check_type(gan_type, "discriminator_loss")
    if gan_type == "vanilla":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if gan_type == "lsgan":
        return (real - 1).square().mean() + fake.square().mean()
    if gan_type == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-(real - fake.mean())).mean() + F.softplus(fake - real.mean()).mean()


def _logits(discriminator, x: torch.Tensor, autocast) -> torch.Tensor:
    amp = autocast if autocast is not None else contextlib.nullcontext
    with amp():
        out = discriminator(x)
    return out.float()


class _GanTerm(Loss):
    needs = ("discriminator",)

    def __init__(self, loss_weight: float = 1.0, reduction: str = "mean", gan_type: str = "vanilla"):
        super().__init__(loss_weight, reduction)
        if reduction != "mean":
            raise ValueError(f"{type(self).__name__}: only reduction='mean' (batch expectations)")
        self.gan_type = _check_type(gan_type, type(self).__name__)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, gan_type={self.gan_type!r}"


@register_loss("gan")
class GANLoss(_GanTerm):
    """Generator term: ``loss_weight * generator_loss(gan_type, D(sr)[, D(hr)])`` (Eq. 14, G side).

    Args:
        loss_weight: the hybrid loss's adversarial weight (ESRGAN: 5e-3).
        gan_type: one of :data:`GAN_TYPES` (``'vanilla'``); match the ``gan_d`` term's.
    """

    def forward(self, sr, hr, discriminator=None, autocast=None, **context):
        fake = _logits(discriminator, sr, autocast)
        real = None
        if self.gan_type == "ragan":
            with torch.no_grad():
                real = _logits(discriminator, hr, autocast)
        return self.loss_weight * generator_loss(self.gan_type, fake, real)


@register_loss("gan_d")
class GANDiscriminatorLoss(_GanTerm):
    """Discriminator term: ``loss_weight * discriminator_loss(gan_type, D(hr), D(sr))`` (Eq. 14, D side).

    ``sr`` arrives detached (the trainer's discriminator step).
    """

    def forward(self, sr, hr, discriminator=None, autocast=None, **context):
        real = _logits(discriminator, hr, autocast)
        fake = _logits(discriminator, sr.detach(), autocast)
        return self.loss_weight * discriminator_loss(self.gan_type, real, fake)


@register_loss("r1")
class R1Penalty(Loss):
    """R1 gradient penalty on real images: ``loss_weight * mean_n ||grad_x D(hr_n)||^2``.

    Mescheder et al. 2018 write ``gamma / 2 * E ||grad D||^2``: give ``weight = gamma / 2``.
    Runs in fp32 with a double backward (one extra discriminator forward on HR).
    """

    needs = ("discriminator",)

    def __init__(self, loss_weight: float = 1.0, reduction: str = "mean"):
        super().__init__(loss_weight, reduction)
        if reduction != "mean":
            raise ValueError("R1Penalty: only reduction='mean'")

    def forward(self, sr, hr, discriminator=None, **context):
        x = hr.detach().float().requires_grad_(True)
        with torch.enable_grad():
            out = discriminator(x).float()
            (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
        return self.loss_weight * grad.square().flatten(1).sum(1).mean()


def hybrid_loss(pixel: float = ESRGAN_WEIGHTS["pixel"], perceptual: float = ESRGAN_WEIGHTS["perceptual"],
                adversarial: float = ESRGAN_WEIGHTS["adversarial"], pixel_loss: str = "l1",
                gan_type: str = "ragan", layers=None, criterion: str = "l1", vgg_weights: str = "auto",
                r1: float = 0.0) -> tuple[dict, dict | None]:
    """``(loss, d_loss)`` specs of Eq. 15: ``pixel * L_pix + perceptual * L_percep + adversarial * L_G``.

    Defaults are ESRGAN's (:data:`ESRGAN_WEIGHTS`, ragan, VGG19 ``conv5_4`` with L1). Zero
    weights drop their terms (a zero adversarial weight also gives ``d_loss=None``: no
    discriminator to train). ``vgg_weights``: ``'imagenet'``, ``'random'`` or ``'auto'``; a study
    passes :func:`~srlib.losses.perceptual.resolve_vgg_weights` of its profile so the choice is in
    its configuration. ``r1 > 0`` adds the R1 penalty with that weight to ``d_loss``.
    """
    _check_type(gan_type, "hybrid_loss")
    loss: dict = {}
    if pixel > 0:
        loss[pixel_loss] = float(pixel)
    if perceptual > 0:
        loss["perceptual"] = {"weight": float(perceptual), "layers": dict(layers or {"conv5_4": 1.0}),
                              "criterion": criterion, "weights": vgg_weights}
    d_loss = None
    if adversarial > 0:
        loss["gan"] = {"weight": float(adversarial), "gan_type": gan_type}
        d_loss = {"gan_d": {"weight": 1.0, "gan_type": gan_type}}
        if r1 > 0:
            d_loss["r1"] = float(r1)
    if not loss:
        raise ValueError("hybrid_loss: every weight is 0; give at least one positive weight")
    return loss, d_loss
