"""Training recipes: a registered model, a profile, and the data they imply.

``train_sr('awsrn-s', 4, 'quick')`` builds the model, random paired patches of the profile's
training set (T91 in ``quick``, DIV2K in ``full``, the scikit-image fallback when neither is on
disk), a :class:`TrainConfig` from the profile, and validation on the profile's validation set
(Y-PSNR/SSIM by the protocol), then trains into ``results/<profile>/checkpoints/<model>_x<s>/``.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data.colour import to_tensor
from ..data.datasets import BenchmarkSet, PatchDataset, load_hr_images
from ..metrics import psnr_ssim_torch
from ..models import build_model, get_entry, list_models
from ..paths import checkpoints_dir
from ..profiles import get_profile
from ..provenance import provenance, write_json
from .config import TrainConfig
from .trainer import Trainer


def profile_config(profile, **overrides) -> TrainConfig:
    """The :class:`TrainConfig` a profile implies: Adam, L1, lr halved every ``lr_step``."""
    p = get_profile(profile)
    base = dict(steps=p.steps, batch_size=p.batch_size, lr=p.lr, loss="l1", schedule="step",
                step_size=p.lr_step, gamma=0.5, checkpoint_every=p.checkpoint_every,
                validate_every=p.validate_every, log_every=max(1, min(100, p.steps // 20)),
                seed=p.seed, threads=p.threads)
    return TrainConfig(**{**base, **overrides})


def model_config(model_name: str, profile, **overrides) -> TrainConfig:
    """:func:`profile_config` with the model's registry ``train`` overrides, then ``overrides``.

    E.g. ``cnn`` trains with its paper's MSE loss and constant lr 1e-4; the caller still wins.
    A name that is not registered (a custom ``model`` passed to :func:`train_sr`) adds nothing.
    """
    own = get_entry(model_name).train if model_name in list_models() else {}
    return profile_config(profile, **{**own, **overrides})


def patch_dataset(profile, scale: int, **overrides) -> tuple[PatchDataset, str]:
    """Random paired patches of the profile's training set, one epoch = ``steps * batch`` samples."""
    p = get_profile(profile)
    images, source = load_hr_images(p.train_dataset)
    kw = dict(lr_patch=p.lr_patch, length=p.steps * p.batch_size, seed=p.seed, augment=True)
    return PatchDataset(images, scale, **{**kw, **overrides}), source


def make_validator(dataset: str, scale: int, max_images: int | None = None):
    """``validate(model) -> {'psnr', 'ssim'}``: means over ``dataset`` by the protocol."""
    bench = BenchmarkSet(dataset, scale, max_images=max_images)
    pairs = [(to_tensor(it.lr), to_tensor(it.hr)) for it in bench]

    def validate(model: nn.Module) -> dict:
        dev = next(model.parameters()).device
        scores = []
        with torch.no_grad():
            for lr, hr in pairs:
                sr = model(lr.to(dev)).float().clamp(0, 1).cpu()
                scores.append(torch.stack(psnr_ssim_torch(sr, hr, scale)).flatten())
        psnr, ssim = torch.stack(scores).mean(0).tolist()
        return {"psnr": psnr, "ssim": ssim}

    validate.source = bench.source
    return validate


def train_sr(model_name: str, scale: int, profile="quick", out_dir=None, resume=False,
             model: nn.Module | None = None, **overrides) -> Trainer:
    """Train a registered model (or ``model``) with a profile's recipe; returns the Trainer.

    ``overrides`` go to :class:`TrainConfig` (e.g. ``steps=100, precision='fp32'``), over the
    profile's recipe and the model's registry ``train`` overrides (:func:`model_config`).
    """
    p = get_profile(profile)
    config = model_config(model_name, p, **overrides)
    torch.manual_seed(config.seed)
    model = model if model is not None else build_model(model_name, scale)
    data, source = patch_dataset(p, scale, length=config.steps * config.batch_size)
    validate = make_validator(p.val_dataset, scale, p.eval_max_images)
    out_dir = out_dir or checkpoints_dir(p.name) / f"{model_name}_x{scale}"
    trainer = Trainer(model, data, config, out_dir, validate)
    write_json(trainer.out_dir / "run.json", {
        "model": model_name, "scale": scale, "config": config.to_dict(), "lr_patch": data.lr_patch,
        "provenance": provenance(profile=p.name, seed=config.seed, data_source=source,
                                 device=str(trainer.device), validation=validate.source,
                                 precision=trainer.precision)})
    return trainer.fit(resume=resume)
