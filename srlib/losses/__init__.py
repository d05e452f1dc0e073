"""Losses: registered ``nn.Module`` terms and their weighted sum.

Usage::

    from srlib.losses import build_loss
    loss = build_loss({"l1": 1.0, "charbonnier": 0.5})
    out = loss(sr, hr)          # {'loss': total, 'l1': ..., 'charbonnier': ...}

``register_loss(name)`` adds a term; a term that reads more than ``(sr, hr)`` names it in ``needs``
(e.g. ``("discriminator",)``). Registered: ``l1``, ``mse``, ``charbonnier`` (pixel), ``perceptual``
(VGG19, seed 000 Eq. 13), ``gan`` / ``gan_d`` / ``r1`` (adversarial, Eq. 14); :func:`hybrid_loss`
builds Eq. 15's ``loss`` and ``d_loss`` specs.
"""
from .registry import (REDUCTIONS, TOTAL, Loss, LossSum, build_loss, get_loss, list_losses, loss_terms,
                       normalize_loss_spec, register_loss, total_loss)
from .pixel import CharbonnierLoss, L1Loss, MSELoss  # noqa: E402  (registers l1, mse, charbonnier)
from .perceptual import (RANDOM_VGG_NOTE, PerceptualLoss, VGG19Features,  # noqa: E402  (registers perceptual)
                         VGGWeightsNotFound, lpips_distance, resolve_vgg_weights)
from .adversarial import (ESRGAN_WEIGHTS, GAN_TYPES, GANDiscriminatorLoss, GANLoss,  # noqa: E402  (gan, gan_d, r1)
                          R1Penalty, discriminator_loss, generator_loss, hybrid_loss)

__all__ = [
    "ESRGAN_WEIGHTS",
    "GAN_TYPES",
    "GANDiscriminatorLoss",
    "GANLoss",
    "PerceptualLoss",
    "R1Penalty",
    "RANDOM_VGG_NOTE",
    "VGG19Features",
    "VGGWeightsNotFound",
    "discriminator_loss",
    "generator_loss",
    "hybrid_loss",
    "lpips_distance",
    "resolve_vgg_weights",
    "REDUCTIONS",
    "TOTAL",
    "CharbonnierLoss",
    "L1Loss",
    "Loss",
    "LossSum",
    "MSELoss",
    "build_loss",
    "get_loss",
    "list_losses",
    "loss_terms",
    "normalize_loss_spec",
    "register_loss",
    "total_loss",
]
