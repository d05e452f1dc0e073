"""The training loop: seeded data order, mixed precision, EMA, checkpoints, resume, DDP.

A run writes into ``out_dir``: ``checkpoints/last.pt`` (every ``checkpoint_every`` steps and at
the end), ``checkpoints/best.pt`` (best validation PSNR), ``log.csv`` and, when tensorboard is
installed, ``tensorboard/``. With ``num_workers=0`` on CPU and a fixed seed, a killed run resumed
with ``fit(resume=True)`` ends with exactly the weights of an uninterrupted one. With workers the
data order is still exact, but randomness inside the dataset (random crops) is re-seeded.
"""
from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from . import ddp
from .config import TrainConfig
from .ema import EMA
from .logs import RunLog
from .precision import autocast, resolve_channels_last, resolve_device, resolve_precision
from .sampler import SeededBatchSampler
from .state import (FORMAT, TrainCheckpointError, atomic_save, load_checkpoint, rng_state,
                    seed_everything, set_rng_state)

LOSSES = {"l1": nn.functional.l1_loss, "mse": nn.functional.mse_loss}


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    """The torch LR scheduler named by ``config.schedule``, stepped once per iteration."""
    sched = torch.optim.lr_scheduler
    if config.schedule == "step":
        return sched.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    if config.schedule == "cosine_restarts":
        return sched.CosineAnnealingWarmRestarts(optimizer, config.T_0, config.T_mult, config.eta_min)
    return sched.ConstantLR(optimizer, factor=1.0, total_iters=0)


class Trainer:
    """Train ``model`` on ``train_set`` ((lr, hr) CHW float pairs in [0, 1]) per ``config``.

    Args:
        model: any ``nn.Module`` mapping LR to SR; seed its initialisation yourself.
        train_set: a ``Dataset`` of (lr, hr) tensor pairs.
        config: a :class:`TrainConfig`.
        out_dir: folder for checkpoints and logs.
        validate: optional ``validate(model) -> dict`` (e.g. ``{'psnr':.., 'ssim':..}``), called
            on rank 0 under ``no_grad`` in eval mode every ``validate_every`` steps, with the
            EMA model when ``config.ema`` is set; ``best.pt`` keeps the best ``'psnr'``.

    Construction seeds python, numpy and torch with ``config.seed`` and, under torchrun, joins
    the process group. ``hooks`` is a list of ``fn(trainer)`` called after every step.
    """

    def __init__(self, model: nn.Module, train_set: Dataset, config: TrainConfig,
                 out_dir: str | Path, validate: Callable[[nn.Module], dict] | None = None):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config, self.train_set, self.validate = config, train_set, validate
        self.out_dir = Path(out_dir)
        self.hooks: list[Callable[[Trainer], None]] = []
        self._setup_device()
        seed_everything(config.seed)
        self._setup_model(model)
        self.sampler = SeededBatchSampler(len(train_set), config.batch_size, config.seed,
                                          self.dist.rank, self.dist.world_size)
        self.loss_fn = LOSSES[config.loss]
        self.step, self._first_step, self.best_psnr, self.elapsed = 0, 0, -math.inf, 0.0
        self.metrics: dict = {}
        self.last_loss: torch.Tensor | None = None
        self.grad_norm: torch.Tensor | None = None

    def _setup_device(self) -> None:
        """Threads, process group, device, precision and memory format."""
        c = self.config
        if c.threads:
            torch.set_num_threads(int(c.threads))
        cuda = c.device.startswith("cuda") or (c.device == "auto" and torch.cuda.is_available())
        self.dist = ddp.setup_distributed("cuda" if cuda else "cpu")
        self.device = resolve_device(c.device, self.dist.local_rank)
        self.precision = resolve_precision(c.precision, self.device)
        self.channels_last = resolve_channels_last(c.channels_last, self.precision)

    def _setup_model(self, model: nn.Module) -> None:
        fmt = torch.channels_last if self.channels_last else torch.preserve_format
        self.model = model.to(self.device, memory_format=fmt)
        self.ema = EMA(self.model, self.config.ema) if self.config.ema else None
        c = self.config
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=c.lr, betas=c.betas)
        self.scheduler = build_scheduler(self.optimizer, c)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.net = ddp.wrap(self.model, self.dist, self.device)
        if c.compile:
            self.net = torch.compile(self.net)

    # ---- paths and properties -------------------------------------------------------------
    @property
    def last_path(self) -> Path:
        return self.out_dir / "checkpoints" / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.out_dir / "checkpoints" / "best.pt"

    @property
    def eval_model(self) -> nn.Module:
        """The model to evaluate: the EMA copy when EMA is on, else the trained model."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    # ---- the loop -------------------------------------------------------------------------
    def fit(self, resume: bool | str | Path = False) -> "Trainer":
        """Train until ``config.steps``.

        ``resume=True`` continues from ``out_dir/checkpoints/last.pt`` when it exists (else starts
        fresh); a path resumes from that file. Without resume, earlier logs in ``out_dir`` are
        overwritten.
        """
        self._resume(resume)
        log = RunLog(self.out_dir, self.step or None) if self.dist.is_main else None
        batches = iter(self._loader())
        bar = tqdm(total=self.config.steps, initial=self.step, desc="train", dynamic_ncols=True,
                   disable=not (self.config.progress and self.dist.is_main))
        try:
            self._loop(batches, log, bar)
        finally:
            bar.close()
            if log is not None:
                log.close()
            self.sampler.load_state_dict(self._sampler_state())  # a later fit() continues the order
            self._first_step = self.step
        ddp.barrier(self.dist)
        return self

    def _loop(self, batches, log: RunLog | None, bar) -> None:
        t0, elapsed0 = time.perf_counter(), self.elapsed
        self._loss_sum, self._loss_n = torch.zeros((), device=self.device), 0
        while self.step < self.config.steps:
            lr_used = self.lr
            self.last_loss = self._train_step(*next(batches))
            self.step += 1
            self._loss_sum += self.last_loss  # no .item(): no device sync between log rows
            self._loss_n += 1
            self.elapsed = elapsed0 + time.perf_counter() - t0
            self._after_step(log, lr_used, bar)

    def _after_step(self, log: RunLog | None, lr_used: float, bar) -> None:
        """Validate, log, checkpoint, run hooks, in that order."""
        c, final = self.config, self.step == self.config.steps
        if self._event(c.validate_every) and self.validate is not None:
            self._validate()
        if log is not None and (self._event(c.log_every) or self._validated_now() or final):
            self._log(log, lr_used, bar)
        if self._event(c.checkpoint_every) or final:
            self.save(self.last_path)
        for hook in self.hooks:
            hook(self)
        bar.update(1)

    def _event(self, every: int) -> bool:
        return every > 0 and self.step % every == 0

    def _validated_now(self) -> bool:
        return self.metrics.get("step") == self.step

    def _train_step(self, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        lr, hr = self._to_device(lr), self._to_device(hr)
        with autocast(self.device, self.precision):
            sr = self.net(lr)
        loss = self.loss_fn(sr.float(), hr)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            self.grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return loss.detach()

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def _loader(self) -> DataLoader:
        c = self.config
        return DataLoader(self.train_set, batch_sampler=self.sampler, num_workers=c.num_workers,
                          pin_memory=self.device.type == "cuda",
                          generator=torch.Generator().manual_seed(c.seed))

    # ---- validation and logging -----------------------------------------------------------
    def _validate(self) -> None:
        if not self.dist.is_main:
            return
        model = self.eval_model
        was_training = model.training
        model.eval()
        with torch.no_grad():
            metrics = dict(self.validate(model))
        model.train(was_training)
        metrics = {k: _scalar(v) for k, v in metrics.items()}
        self.metrics = {**metrics, "step": self.step}
        psnr = metrics.get("psnr")
        if psnr is not None and float(psnr) > self.best_psnr:
            self.best_psnr = float(psnr)
            self._save_best(metrics)

    def _log(self, log: RunLog, lr: float, bar) -> None:
        loss = (self._loss_sum / self._loss_n).item()
        self._loss_sum, self._loss_n = torch.zeros((), device=self.device), 0
        metrics = self.metrics if self._validated_now() else {}
        log.write(self.step, loss, lr, metrics, self.elapsed)
        post = {"loss": f"{loss:.4g}"} | {k: f"{v:.4g}" for k, v in metrics.items()
                                          if k in ("psnr", "ssim")}
        bar.set_postfix(post, refresh=False)

    # ---- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue exactly; loadable with ``weights_only=True``."""
        return {
            "format": FORMAT,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "sampler": self._sampler_state(),
            "rng": rng_state(),
            "best_psnr": self.best_psnr,
            "elapsed": self.elapsed,
            "config": self.config.to_dict(),
            "precision": self.precision,
        }

    def _sampler_state(self) -> dict:
        """Sampler position after the batches consumed so far (the loader prefetches ahead)."""
        return self.sampler.state_after(self.step - self._first_step)

    def save(self, path: str | Path) -> None:
        """Write :meth:`state_dict` atomically (rank 0 only)."""
        if self.dist.is_main:
            atomic_save(self.state_dict(), path)

    def _save_best(self, metrics: dict) -> None:
        """``best.pt``: the validated weights under ``'model'`` plus step and metrics."""
        scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        atomic_save({"format": FORMAT + "-weights", "step": self.step, "metrics": scalars,
                     "model": self.eval_model.state_dict(), "config": self.config.to_dict()},
                    self.best_path)

    def _resume(self, resume: bool | str | Path) -> None:
        """Load the checkpoint ``resume`` names (True: ``last.pt`` if it exists)."""
        if resume is False or resume is None:
            return
        path = self.last_path if resume is True else Path(resume)
        if resume is True and not path.is_file():
            warnings.warn(f"resume=True but {path} does not exist; starting from step 0", stacklevel=3)
            return
        ckpt = load_checkpoint(path)
        _warn_config_changes(ckpt.get("config", {}), self.config, path)
        self.load_state_dict(ckpt, path)

    def load_state_dict(self, ckpt: dict, path: str | Path = "<checkpoint>") -> None:
        """Restore a :meth:`state_dict`; raises ``TrainCheckpointError`` naming ``path``."""
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            self.scaler.load_state_dict(ckpt["scaler"])
            if self.ema is not None:  # a run without EMA before: start the average here
                self.ema.load_state_dict(ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"])
            self.sampler.load_state_dict(ckpt["sampler"])
            set_rng_state(ckpt["rng"])
            self.step = self._first_step = int(ckpt["step"])
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise TrainCheckpointError(
                f"training checkpoint {path} does not fit this model/config ({str(exc)[:300]}); "
                "resume with the model and TrainConfig that wrote it, or start without resume"
            ) from exc
        self.best_psnr = float(ckpt.get("best_psnr", -math.inf))
        self.elapsed = float(ckpt.get("elapsed", 0.0))


# keys whose change alters the trajectory of a resumed run
TRAJECTORY_KEYS = ("batch_size", "lr", "betas", "loss", "schedule", "step_size", "gamma", "T_0",
                   "T_mult", "eta_min", "grad_clip", "ema", "seed", "precision", "channels_last")


def _warn_config_changes(saved: dict, config: TrainConfig, path: Path) -> None:
    now = config.to_dict()
    changed = [f"{k}: {saved[k]!r} -> {now[k]!r}" for k in TRAJECTORY_KEYS
               if k in saved and _norm(saved[k]) != _norm(now[k])]
    if changed:
        warnings.warn(f"resuming {path} with a changed config ({'; '.join(changed)}); "
                      "the run will not match an uninterrupted one", stacklevel=4)


def _norm(v):
    return list(v) if isinstance(v, (tuple, list)) else v


def _scalar(v):
    """Python float for numbers and 0-d tensors; other values unchanged."""
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        return float(v)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def train_model(model: nn.Module, train_set: Dataset, config: TrainConfig, out_dir: str | Path,
                validate: Callable[[nn.Module], dict] | None = None,
                resume: bool | str | Path = False) -> Trainer:
    """Build a :class:`Trainer` and run :meth:`Trainer.fit`; returns the trainer."""
    trainer = Trainer(model, train_set, config, out_dir, validate)
    trainer.fit(resume=resume)
    return trainer
