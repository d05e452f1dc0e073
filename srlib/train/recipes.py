"""Training recipes: a registered model, a profile, and the data they imply.

``train_sr('awsrn-s', 4, 'quick')`` builds the model, random paired patches of the profile's
training set (T91 in ``quick``, DIV2K in ``full``, the scikit-image fallback when neither is on
disk), a :class:`TrainConfig` from the profile, and validation by the protocol (Y-PSNR/SSIM) on
images that are never reported (:func:`validation_split`), then trains into
``results/<profile>/checkpoints/<model>_x<s>/`` and records the run in its ``run.json``.

Validation selects ``best.pt``. Selecting on a benchmark and then reporting that benchmark
flatters its number, so the validation images are DIV2K 0801-0810 (the first images of the
DIV2K validation set, which no table reports) where they are on disk, else a slice of the
training set held out of the training patches.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

from ..data.colour import modcrop, to_tensor
from ..data.datasets import FALLBACK_SOURCE, BenchmarkSet, PatchDataset, load_hr_images
from ..data.catalog import canonical_name, find_dataset, missing_message, portable_path
from ..data.resize import imresize
from ..device import exact_fp32
from ..metrics import psnr_ssim_torch
from ..models import CheckpointError, build_model, check_finite, get_entry, list_models, read_checkpoint
from ..paths import checkpoints_dir
from ..profiles import get_profile
from ..fileio import write_json
from ..provenance import provenance
from .config import TrainConfig
from .state import TrainingDiverged
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


# ---- data: training patches and the validation images ------------------------------------

def _sorted_train_images(p) -> tuple[list, str]:
    images, source = load_hr_images(p.train_dataset)
    return sorted(images, key=lambda im: im.name), source


def _val_on_disk(name: str | None) -> bool:
    """Is ``name`` (e.g. DIV2K_valid) on disk? Never downloads (it would cost minutes)."""
    return bool(name) and find_dataset(name) is not None


def validation_split(profile) -> tuple[list, dict]:
    """The images that select ``best.pt`` and a JSON-able record of them.

    The first ``profile.val_images`` images of ``profile.val_dataset`` in sorted order (DIV2K
    0801-0810) when that set is on disk; otherwise the last ``val_images`` images of
    ``profile.train_dataset`` in sorted order (at most a fifth of the set, so a small fallback
    set keeps most of its images for training), which :func:`train_images` then leaves out of
    the training patches. The record names the dataset, the images and whether they were held
    out of the training set; a study puts it in its identity, a run in its ``run.json``.
    """
    p = get_profile(profile)
    n = int(p.val_images)
    if n < 1:
        raise ValueError(f"profile {p.name!r}: val_images must be >= 1, got {p.val_images!r}")
    if _val_on_disk(p.val_dataset):
        # the first n files only (list_images sorts): DIV2K_valid is 100 2K images, 10 are used
        images, source = load_hr_images(p.val_dataset, download=False, fallback=False, max_images=n)
        images = sorted(images, key=lambda im: im.name)[:n]
        return images, {"dataset": canonical_name(p.val_dataset), "images": [im.name for im in images],
                        "held_out_of_training": False, "source": source}
    train, source = _sorted_train_images(p)
    n = min(n, len(train) // 5)
    if n < 1:
        raise ValueError(f"training set {p.train_dataset} ({source}) has {len(train)} images, too few "
                         f"to hold out validation images; put {p.val_dataset} on disk or add images")
    held = train[len(train) - n:]
    return held, {"dataset": p.train_dataset, "images": [im.name for im in held],
                  "held_out_of_training": True, "source": source}


def train_images(profile) -> tuple[list, str]:
    """The profile's training images (sorted) without those :func:`validation_split` holds out."""
    p = get_profile(profile)
    images, source = _sorted_train_images(p)
    _, val = validation_split(p)
    if not val["held_out_of_training"]:
        return images, source
    held = set(val["images"])
    return [im for im in images if im.name not in held], f"{source}, {len(held)} images held out for validation"


def patch_settings(profile, config: TrainConfig, **overrides) -> dict:
    """The :class:`PatchDataset` settings a run uses: LR patch size, epoch length, seed, augment.

    ``seed`` is the run's seed (``config.seed``), so a second seed also draws other crops.
    """
    p = get_profile(profile)
    base = dict(lr_patch=p.lr_patch, length=config.steps * config.batch_size, seed=config.seed,
                augment=True)
    return {**base, **overrides}


def patch_dataset(profile, scale: int, **overrides) -> tuple[PatchDataset, str]:
    """Random paired patches of the profile's training images (validation images held out)."""
    p = get_profile(profile)
    images, source = train_images(p)
    kw = dict(lr_patch=p.lr_patch, length=p.steps * p.batch_size, seed=p.seed, augment=True)
    return PatchDataset(images, scale, **{**kw, **overrides}), source


def _lr_hr(image, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR, HR) tensors of an HR image by the protocol: mod-crop, MATLAB bicubic, uint8."""
    hr = modcrop(getattr(image, "hr", image), scale)
    return to_tensor(imresize(hr, 1 / scale)), to_tensor(hr)


def make_validator(dataset, scale: int, max_images: int | None = None):
    """``validate(model) -> {'psnr', 'ssim'}``: means by the protocol.

    ``dataset`` is a benchmark name or a list of HR images (``HRImage`` records or uint8 HWC
    arrays, e.g. the first result of :func:`validation_split`). ``validate.source`` says where
    the images came from.
    """
    if isinstance(dataset, str):
        bench = BenchmarkSet(dataset, scale, max_images=max_images)
        pairs, source = [(to_tensor(it.lr), to_tensor(it.hr)) for it in bench], bench.source
    else:
        images = list(dataset)[:max_images]
        if not images:
            raise ValueError("make_validator: no validation images given")
        pairs = [_lr_hr(im, scale) for im in images]
        names = [getattr(im, "name", str(i)) for i, im in enumerate(images)]
        source = f"{len(images)} images ({', '.join(names)})"

    def validate(model: nn.Module) -> dict:
        dev = next(model.parameters()).device
        scores = []
        with torch.no_grad(), exact_fp32():  # validation picks best.pt: fp32, no TF32 on CUDA
            for lr, hr in pairs:
                sr = model(lr.to(dev)).float().clamp(0, 1).cpu()
                scores.append(torch.stack(psnr_ssim_torch(sr, hr, scale)).flatten())
        psnr, ssim = torch.stack(scores).mean(0).tolist()
        return {"psnr": psnr, "ssim": ssim}

    validate.source = source
    return validate


# ---- initial weights ----------------------------------------------------------------------

def _state_dict_of(obj) -> dict:
    """The state dict inside a checkpoint container ({'model': ...}, {'state_dict': ...}, ...)."""
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "params_ema", "params", "net"):
            if isinstance(obj.get(key), dict):
                return obj[key]
    return obj


def load_init_checkpoint(model: nn.Module, path: str | Path) -> dict:
    """Load ``path``'s weights into ``model`` by key where the shapes match; returns a record.

    Keys the checkpoint lacks (or holds with another shape) keep the model's own
    initialisation: models initialise new parts so that the network computes what the
    checkpoint computed where that is possible (e.g. a gate that starts as a pass-through); a
    part that *replaces* an old one starts fresh. The record lists the keys ``loaded``, the
    keys that started ``fresh`` (with ``shape_mismatch`` among them), the checkpoint's
    ``unused`` keys, and that the optimiser and the schedule restart. Raises
    :class:`~srlib.models.CheckpointError` when the file is unreadable or no key matches.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"init_checkpoint {path} does not exist; pass an existing weights file")
    sd = _state_dict_of(read_checkpoint(path, "init_checkpoint"))
    if not isinstance(sd, dict):
        raise CheckpointError(f"init_checkpoint {path} holds a {type(sd).__name__}, not a state dict")
    check_finite(sd, path, "init_checkpoint")
    sd = {(k[7:] if k.startswith("module.") else k): v for k, v in sd.items()}
    convert = getattr(model, "convert_state_dict", None)
    if convert is not None:
        sd = convert(sd)
    own = model.state_dict()
    loaded = [k for k in own if k in sd and tuple(sd[k].shape) == tuple(own[k].shape)]
    mismatch = [k for k in own if k in sd and k not in loaded]
    if not any(own[k].is_floating_point() for k in loaded):  # a shared step counter is no match
        raise CheckpointError(
            f"init_checkpoint {path} shares no key of matching shape with {type(model).__name__} "
            f"(model keys e.g. {list(own)[:3]}, file keys e.g. {list(sd)[:3]}); pass a checkpoint "
            "of the same model family")
    model.load_state_dict({k: sd[k] for k in loaded}, strict=False)
    return {"path": portable_path(path), "loaded": loaded, "fresh": [k for k in own if k not in loaded],
            "shape_mismatch": mismatch, "unused": [k for k in sd if k not in own],
            "optimizer": "restarted", "schedule": "restarted", "step": "restarted at 0"}


# ---- the recipe ---------------------------------------------------------------------------

def _run_record(path: Path, resume: bool) -> dict:
    """The run.json a resumed run continues (its sessions), else an empty record."""
    if resume and path.is_file():
        try:
            return json.loads(path.read_text())
        except ValueError:
            return {}
    return {}


# profiles whose recipe claims the papers' settings: no stand-in data unless asked
PAPER_PROFILES = ("full", "gpu")


def _refuse_fallback(p, source: str, allow_fallback: bool) -> None:
    """A profile claiming the papers' settings trains on its dataset, not on the fallback images."""
    if FALLBACK_SOURCE in source and p.name in PAPER_PROFILES and not allow_fallback:
        raise ValueError(
            f"profile {p.name!r} claims the papers' settings, but {p.train_dataset} is not on disk and "
            f"only the {FALLBACK_SOURCE} are there; its {p.steps:,} steps on them would reproduce "
            f"nothing. {missing_message(p.train_dataset)} Or use profile 'smoke' or 'quick', "
            "or pass --allow-fallback (allow_fallback=True) to train on the fallback anyway")


def _refuse_overwrite(out_dir: Path, resume, force: bool) -> None:
    """A fresh run does not silently replace the checkpoints of an earlier one in ``out_dir``."""
    if resume is not False or force:
        return
    found = [f for f in ("checkpoints/last.pt", "checkpoints/best.pt") if (out_dir / f).is_file()]
    if found:
        raise FileExistsError(
            f"run folder {out_dir} holds an earlier run ({', '.join(found)}); pass --resume "
            "(resume=True) to continue it, --force (force=True) to replace it, or another --out")


def train_sr(model_name: str, scale: int, profile="quick", out_dir=None, resume=False,
             model: nn.Module | None = None, model_kwargs: dict | None = None,
             init_checkpoint: str | Path | None = None, run_info: dict | None = None,
             force: bool = False, allow_fallback: bool = False, **overrides) -> Trainer:
    """Train a registered model (or ``model``) with a profile's recipe; returns the Trainer.

    Args:
        model_name, scale, profile: the registered model, its scale and the profile.
        out_dir: the run folder (default ``results/<profile>/checkpoints/<model>_x<scale>``).
        resume: continue from ``out_dir/checkpoints/last.pt`` (see :meth:`Trainer.fit`).
        model: a module to train instead of ``build_model(model_name, scale, **model_kwargs)``.
        model_kwargs: overrides of the model's registry configuration.
        init_checkpoint: weights to start from, loaded by key where shapes match
            (:func:`load_init_checkpoint`); optimiser and schedule start afresh.
        run_info: more fields for ``run.json`` (a study's arm and identity).
        force: start afresh even when ``out_dir`` holds ``last.pt``/``best.pt`` of an earlier
            run (without it, and without ``resume``, that is a ``FileExistsError``).
        allow_fallback: let a profile that claims the papers' settings (``full``) train on the
            scikit-image fallback when its dataset is missing (else a ``ValueError``).
        overrides: :class:`TrainConfig` fields (e.g. ``steps=100, precision='fp32'``), over the
            profile's recipe and the model's registry ``train`` overrides (:func:`model_config`).

    ``run.json`` records the model, configuration, data, validation images, initial weights,
    provenance (resolved precision included) and a ``status``: ``running``, ``finished``, or
    ``diverged at step k`` (with the term and lr; :class:`~srlib.train.TrainingDiverged` is
    re-raised).
    """
    p = get_profile(profile)
    config = model_config(model_name, p, **overrides)
    out_dir = Path(out_dir or checkpoints_dir(p.name) / f"{model_name}_x{scale}")
    _refuse_overwrite(out_dir, resume, force)
    torch.manual_seed(config.seed)
    kwargs = dict(model_kwargs or {})
    if model is None:
        model = build_model(model_name, scale, **kwargs)
    init = load_init_checkpoint(model, init_checkpoint) if init_checkpoint is not None else None
    data, source = patch_dataset(p, scale, **patch_settings(p, config))
    _refuse_fallback(p, source, allow_fallback)
    val_images, val = validation_split(p)
    validate = make_validator(val_images, scale)
    trainer = Trainer(model, data, config, out_dir, validate)
    run_path = trainer.out_dir / "run.json"
    before = _run_record(run_path, resume is not False and trainer.last_path.is_file())
    prov = provenance(profile=p.name, seed=config.seed, data_source=source, device=str(trainer.device),
                      validation=validate.source, precision=trainer.precision)
    session = {"created": prov["created"], "commit": prov["commit"], "device": prov["device"],
               "precision": trainer.precision}
    record = {
        **before, **(run_info or {}),
        "model": model_name, "scale": scale, "model_kwargs": kwargs, "config": config.to_dict(),
        "data": {"train_dataset": p.train_dataset, "source": source, "n_images": len(data.pairs),
                 "fallback": FALLBACK_SOURCE in source,
                 **patch_settings(p, config)},
        "lr_patch": data.lr_patch, "validation": val, "init": init, "precision": trainer.precision,
        "status": "running", "provenance": before.get("provenance", prov),
        "sessions": before.get("sessions", []) + [session],
    }
    write_json(run_path, record)
    try:
        trainer.fit(resume=resume)
    except TrainingDiverged as exc:
        record.update(status=f"diverged at step {exc.step}",
                      diverged={"step": exc.step, "term": exc.term, "lr": exc.lr, "message": str(exc)},
                      steps=exc.step, train_seconds=trainer.elapsed)
        write_json(run_path, record)
        raise
    record.update(status="finished", steps=trainer.step, train_seconds=trainer.elapsed,
                  best={"step": _best_step(trainer),
                        "psnr": trainer.best_psnr if math.isfinite(trainer.best_psnr) else None})
    write_json(run_path, record)
    return trainer


def _best_step(trainer: Trainer) -> int | None:
    if not trainer.best_path.is_file():
        return None
    return int(torch.load(trainer.best_path, map_location="cpu", weights_only=True)["step"])
