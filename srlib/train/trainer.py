"""The training loop: seeded data order, named loss terms, an optional discriminator, phases,
a divergence guard, mixed precision, EMA, checkpoints, resume, DDP.

A run writes into ``out_dir``: ``checkpoints/last.pt`` (every ``checkpoint_every`` steps and at
the end), ``checkpoints/best.pt`` (best validation PSNR), ``log.csv`` and, when tensorboard is
installed, ``tensorboard/``. With ``num_workers=0`` on CPU and a fixed seed, a killed run resumed
with ``fit(resume=True)`` ends with exactly the weights of an uninterrupted one, in any phase and
with a discriminator. With workers the data order is still exact, but randomness inside the
dataset (random crops) is re-seeded.
"""
from __future__ import annotations

import math
import random
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..losses import build_loss, get_loss, loss_terms, total_loss
from ..models import first_nonfinite
from ..models.discriminator import build_discriminator
from . import ddp
from .config import Phase, TrainConfig
from .ema import EMA
from .logs import RunLog
from ..device import autocast, resolve_channels_last, resolve_device, resolve_precision
from .sampler import SeededBatchSampler
from .state import (FORMAT, TrainCheckpointError, TrainingDiverged, atomic_save, load_checkpoint,
                    remove_stale_temps, rng_state, seed_everything, set_rng_state)

CONTEXT_KEYS = ("lr", "discriminator", "step", "autocast")  # what loss terms may read, see loss_context


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    """The torch LR scheduler named by ``config.schedule``, stepped once per iteration."""
    sched = torch.optim.lr_scheduler
    if config.schedule == "step":
        return sched.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    if config.schedule == "cosine_restarts":
        return sched.CosineAnnealingWarmRestarts(optimizer, config.T_0, config.T_mult, config.eta_min)
    return sched.ConstantLR(optimizer, factor=1.0, total_iters=0)


class _NonFinite(Exception):
    """Internal: a guarded value was not finite (``term``); ``values`` are the step's values so far."""

    def __init__(self, term: str, values: dict):
        super().__init__(term)
        self.term, self.values = term, values


class Trainer:
    """Train ``model`` on ``train_set`` ((lr, hr) CHW float pairs in [0, 1]) per ``config``.

    Args:
        model: any ``nn.Module`` mapping LR to SR; seed its initialisation yourself.
        train_set: a ``Dataset`` of (lr, hr) tensor pairs; phases that set ``lr_patch`` need a
            dataset with ``set_lr_patch(p)`` (e.g. :class:`srlib.data.PatchDataset`).
        config: a :class:`TrainConfig`.
        out_dir: folder for checkpoints and logs.
        validate: optional ``validate(model) -> dict`` (e.g. ``{'psnr':.., 'ssim':..}``), called
            on rank 0 under ``no_grad`` in eval mode every ``validate_every`` steps, with the
            EMA model when ``config.ema`` is set; ``best.pt`` keeps the best ``'psnr'``.
        discriminator: optional second network, trained on ``config.d_loss`` with its own Adam
            and schedule, ``d_steps`` updates per generator step (in phases whose ``d_loss`` is
            set); saved in the checkpoint and resumed exactly. Without it, ``config.discriminator``
            (a name or spec) builds one, initialised from ``config.seed + 1``.

    One step: :meth:`compute_losses` gives named, weighted terms (the generator's loss is their
    sum); backward; the gradient norm (clipped to ``grad_clip``); the divergence guard; then, with
    a discriminator, ``d_steps`` times :meth:`compute_d_losses` (on the generator output of this
    step, detached), backward, guard and update; then the generator update, the schedules and EMA.
    The generator's update waits for the discriminator steps, which read only its detached
    output, so this is the usual "generator first, then discriminator" order (ESRGAN, BasicSR).

    The divergence guard checks every step that each loss term and the squared gradient norm
    are finite (the square, so Adam's second moment cannot overflow either). It costs one host
    sync per step and one per discriminator update (a ``bool(tensor)``), the gradient norm (one
    ``foreach`` norm over the gradients) and a copy of the RNG states and buffers: about 0.4 ms
    per step on a 2-core CPU, 3-5% of a 10 ms step of an 8-layer 32-channel net
    (``benchmarks/bench_trainer.py``). On CUDA the sync also makes the host wait for the GPU
    each step instead of queueing the next step's kernels ahead: little for large models, more
    for small launch-bound ones (not measured here: no GPU was available). An fp16 step
    whose gradients overflowed (the GradScaler skips it and lowers its scale) is not a divergence.
    On a non-finite value the update is not applied, the state goes back to the end of the
    previous step (RNG and buffers included, so resuming replays that step), the log gets a row
    for the step with the non-finite values (``nan``), ``last.pt`` is written with that last
    finite state, and :class:`~srlib.train.TrainingDiverged` names the step, the term (a term
    name, ``'grad_norm'``, or ``'d_<term>'`` / ``'d_grad_norm'`` for the discriminator) and the
    learning rate. No checkpoint with a non-finite tensor is ever written.

    Construction seeds python, numpy and torch with ``config.seed`` and, under torchrun, joins
    the process group. ``hooks`` is a list of ``fn(trainer)`` called after every step.
    """

    def __init__(self, model: nn.Module, train_set: Dataset, config: TrainConfig,
                 out_dir: str | Path, validate: Callable[[nn.Module], dict] | None = None,
                 discriminator: nn.Module | None = None):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config, self.train_set, self.validate = config, train_set, validate
        self.out_dir = Path(out_dir)
        self.hooks: list[Callable[[Trainer], None]] = []
        self.plan: list[Phase] = config.phase_plan()
        if discriminator is not None and config.discriminator is not None:
            raise ValueError("give the discriminator either as Trainer(..., discriminator=net) or as "
                             f"TrainConfig.discriminator={config.discriminator!r}, not both")
        if discriminator is None and config.discriminator is not None:
            with torch.random.fork_rng(devices=[]):  # the generator's run is the same with or without D
                torch.manual_seed(config.seed + 1)
                discriminator = build_discriminator(config.discriminator)
        self._check_setup(discriminator)
        self._setup_device()
        seed_everything(config.seed)
        self._setup_model(model, discriminator)
        self._base_lr_patch = getattr(train_set, "lr_patch", None)
        self._base_sampling = getattr(train_set, "sampling", None)
        self.sampler = SeededBatchSampler(len(train_set), config.batch_size, config.seed,
                                          self.dist.rank, self.dist.world_size)
        self.step, self._first_step, self.best_psnr, self.elapsed = 0, 0, -math.inf, 0.0
        self._enter_phase(0)
        self.metrics: dict = {}
        self.sr: torch.Tensor | None = None
        self.last_loss: torch.Tensor | None = None
        self.grad_norm: torch.Tensor | None = None
        self.d_grad_norm: torch.Tensor | None = None
        self._batches = None

    def _check_setup(self, discriminator: nn.Module | None) -> None:
        """Fail early on a loss that needs a missing discriminator, or a phase without its data hook."""
        has_d = discriminator is not None
        for ph in self.plan:
            where = f"phase {ph.index}" if self.config.phases else "TrainConfig"
            for key in ("loss", "d_loss"):
                spec = getattr(ph.config, key)
                needs = {n for name in (loss_terms(spec) if spec is not None else ())
                         for n in getattr(get_loss(name), "needs", ())}
                unknown = sorted(needs - set(CONTEXT_KEYS))
                if unknown:
                    raise ValueError(f"{where}: {key} {spec!r} needs context {unknown} that the trainer "
                                     f"does not provide (it provides {CONTEXT_KEYS})")
                if "discriminator" in needs and not has_d:
                    raise ValueError(f"{where}: {key} {spec!r} needs a discriminator; pass "
                                     "Trainer(..., discriminator=net)")
            if ph.config.d_loss is not None and not has_d:
                raise ValueError(f"{where}: d_loss {ph.config.d_loss!r} is set but no discriminator "
                                 "was given; pass Trainer(..., discriminator=net) or drop d_loss")
            if ph.lr_patch is not None and not hasattr(self.train_set, "set_lr_patch"):
                raise TypeError(f"{where} sets lr_patch={ph.lr_patch} but {type(self.train_set).__name__} "
                                "has no set_lr_patch(p); use srlib.data.PatchDataset or add the method")
            if ph.config.sampling is not None and not hasattr(self.train_set, "set_sampling"):
                raise TypeError(f"{where} sets sampling={ph.config.sampling!r} but "
                                f"{type(self.train_set).__name__} has no set_sampling(spec); use "
                                "srlib.data.PatchDataset or add the method")
        if has_d and all(ph.config.d_loss is None for ph in self.plan):
            raise ValueError("a discriminator was given but no d_loss is set (TrainConfig.d_loss or a "
                             "phase's 'd_loss'), so it would never train")

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

    def _setup_model(self, model: nn.Module, discriminator: nn.Module | None) -> None:
        """Model, EMA, scalers, DDP wrappers; optimisers and schedules come with each phase."""
        fmt = torch.channels_last if self.channels_last else torch.preserve_format
        self.model = model.to(self.device, memory_format=fmt)
        self.ema = EMA(self.model, self.config.ema) if self.config.ema else None
        self._step_buffers = list(self.model.buffers())  # what a forward may change (BatchNorm stats)
        fp16 = self.precision == "fp16"
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.net = ddp.wrap(self.model, self.dist, self.device)
        if self.config.compile:
            self.net = torch.compile(self.net)
        self.discriminator = self.d_net = self.d_scaler = None
        if discriminator is not None:
            self.discriminator = discriminator.to(self.device, memory_format=fmt)
            self._step_buffers += list(self.discriminator.buffers())
            self.d_net = ddp.wrap(self.discriminator, self.dist, self.device)
            self.d_scaler = torch.amp.GradScaler(self.device.type, enabled=fp16)

    def _enter_phase(self, index: int) -> None:
        """Fresh optimisers, schedules and losses for phase ``index``; its patch and batch size."""
        phase = self.plan[index]
        c = phase.config
        # keep only on the step from phase index-1 (a resume into a kept phase builds fresh objects
        # from its config, which equals the chain's first, and loads their state)
        keep = phase.keep_optimizer and getattr(self, "phase", None) == index - 1
        self.phase, self.phase_config = index, c
        if not keep:
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=c.lr, betas=c.betas)
            self.scheduler = build_scheduler(self.optimizer, c)
        self.loss_fn = build_loss(c.loss).to(self.device)
        if not keep:
            self.d_optimizer = self.d_scheduler = None
        self.d_loss_fn = None
        if self.discriminator is not None:
            if not keep:
                self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(),
                                                    lr=c.d_lr if c.d_lr is not None else c.lr, betas=c.d_betas)
                self.d_scheduler = build_scheduler(self.d_optimizer, c)
            if c.d_loss is not None:
                self.d_loss_fn = build_loss(c.d_loss).to(self.device)
        lr_patch = phase.lr_patch if phase.lr_patch is not None else self._base_lr_patch
        if (hasattr(self.train_set, "set_lr_patch") and lr_patch is not None
                and lr_patch != getattr(self.train_set, "lr_patch", None)):
            self.train_set.set_lr_patch(lr_patch)
        sampling = c.sampling if c.sampling is not None else self._base_sampling
        if hasattr(self.train_set, "set_sampling") and sampling != getattr(self.train_set, "sampling", None):
            self.train_set.set_sampling(sampling)
        self.sampler.batch_size = c.batch_size

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

    @property
    def d_lr(self) -> float | None:
        return self.d_optimizer.param_groups[0]["lr"] if self.d_optimizer is not None else None

    # ---- the loop -------------------------------------------------------------------------
    def fit(self, resume: bool | str | Path = False) -> "Trainer":
        """Train until ``config.steps``.

        ``resume=True`` continues from ``out_dir/checkpoints/last.pt`` when it exists (else starts
        fresh); a path resumes from that file. Without resume, earlier logs in ``out_dir`` are
        overwritten. Raises :class:`~srlib.train.TrainingDiverged` on a non-finite loss term or
        gradient norm (see the class docstring).
        """
        self.plan = self.config.phase_plan()
        if self.dist.is_main:  # a kill during a write leaves .last.pt.<hex>.tmp behind
            remove_stale_temps(self.out_dir, self.out_dir / "checkpoints")
        self._resume(resume)
        log = RunLog(self.out_dir, self.step or None) if self.dist.is_main else None
        self._batches = iter(self._loader())
        bar = tqdm(total=self.config.steps, initial=self.step, desc="train", dynamic_ncols=True,
                   disable=not (self.config.progress and self.dist.is_main))
        try:
            self._loop(log, bar)
        finally:
            bar.close()
            if log is not None:
                log.close()
            self._anchor_sampler()  # a later fit() continues the order
            self._batches = None
            if self.discriminator is not None:
                self.discriminator.requires_grad_(True)  # frozen during generator steps
        ddp.barrier(self.dist)
        return self

    def _loop(self, log: RunLog | None, bar) -> None:
        t0, elapsed0 = time.perf_counter(), self.elapsed
        self._reset_sums()
        while self.step < self.config.steps:
            self._maybe_next_phase()
            lr_used = self.lr
            snapshot = self._snapshot()
            batch = next(self._batches)
            try:
                values = self._train_step(batch)
            except _NonFinite as bad:
                self._diverged(bad, snapshot, lr_used, log)
            self.step += 1
            self._accumulate(values)
            self.elapsed = elapsed0 + time.perf_counter() - t0
            self._after_step(log, lr_used, bar)

    def _maybe_next_phase(self) -> None:
        """At a phase's last step, switch to the next: re-anchor the data order, fresh optimisers."""
        while self.phase + 1 < len(self.plan) and self.step >= self.plan[self.phase].end:
            self._anchor_sampler()
            self._enter_phase(self.phase + 1)
            self._batches = iter(self._loader())  # drops prefetched batches of the old patch size

    def _anchor_sampler(self) -> None:
        self.sampler.load_state_dict(self._sampler_state())
        self._first_step = self.step

    def _after_step(self, log: RunLog | None, lr_used: float, bar) -> None:
        """Validate, log, checkpoint, run hooks, in that order."""
        c, final = self.config, self.step == self.config.steps
        phase_end = self.step == self.plan[self.phase].end
        if self._event(c.validate_every) and self.validate is not None:
            self._validate()
        if log is not None and (self._event(c.log_every) or self._validated_now() or final or phase_end):
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

    # ---- one step -------------------------------------------------------------------------
    def compute_losses(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        """Named, weighted loss terms of the generator for one batch; the optimised loss is their sum.

        ``batch`` is ``(lr, hr)`` on the training device. The default runs the network under
        autocast, stores its output in ``self.sr`` (the discriminator step reads it, detached)
        and returns ``self.loss_fn.terms(sr.float(), hr, **context)`` (:meth:`loss_context`). An
        override returns its own ``{name: 0-d tensor}`` (not ``'loss'``, the trainer's total)
        and sets ``self.sr`` when a discriminator is used.
        """
        lr, hr = batch[0], batch[1]
        with autocast(self.device, self.precision):
            sr = self.net(lr)
        self.sr = sr
        return self.loss_fn.terms(sr.float(), hr, **self.loss_context(batch, self.discriminator))

    def compute_d_losses(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        """Named loss terms of the discriminator: ``d_loss`` on ``self.sr`` (detached) and ``hr``."""
        if self.sr is None:
            raise RuntimeError("compute_losses must set self.sr (the generator output) for the "
                               "discriminator step")
        context = self.loss_context(batch, self.d_net)
        return self.d_loss_fn.terms(self.sr.detach().float(), batch[1], **context)

    def loss_context(self, batch, discriminator) -> dict:
        """What loss terms may read besides ``(sr, hr)`` (:data:`CONTEXT_KEYS`): ``lr`` (the
        input batch), ``discriminator`` (frozen in the generator step, DDP-wrapped in its own),
        ``step`` (steps completed before this one) and ``autocast`` (a zero-argument callable
        giving the run's autocast context, for terms that run a network; the terms themselves
        run outside autocast, in fp32)."""
        return {"lr": batch[0], "discriminator": discriminator, "step": self.step,
                "autocast": lambda: autocast(self.device, self.precision)}

    def _train_step(self, batch) -> dict[str, torch.Tensor]:
        """One generator step (and its discriminator steps); the values to log."""
        batch = tuple(self._to_device(x) for x in batch)
        c, d_active = self.phase_config, self.d_loss_fn is not None
        self.sr = None
        if self.discriminator is not None:
            self.discriminator.requires_grad_(False)
        terms = _check_terms(self.compute_losses(batch), "compute_losses")
        loss = total_loss(terms)
        values = {"loss": loss.detach(), **{f"loss_{k}": v.detach() for k, v in terms.items()}}
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        self.grad_norm = _grad_norm(self.model.parameters(), c.grad_clip)
        if self._guard(loss, terms, self.grad_norm, self.scaler, {**values, "grad_norm": self.grad_norm}):
            values["grad_norm"] = self.grad_norm
        if d_active:
            values.update(self._discriminator_steps(batch, values))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if d_active:
            self.d_scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.last_loss, self.sr = values["loss"], None  # sr: no activation kept between steps
        return values

    def _discriminator_steps(self, batch, g_values: dict) -> dict[str, torch.Tensor]:
        """``d_steps`` updates of the discriminator; the mean of its terms over them."""
        d_steps, sums, norms = self.phase_config.d_steps, {}, []
        self.discriminator.requires_grad_(True)
        for _ in range(d_steps):
            terms = _check_terms(self.compute_d_losses(batch), "compute_d_losses")
            loss = total_loss(terms)
            step_values = {"d_loss": loss.detach(), **{f"d_loss_{k}": v.detach() for k, v in terms.items()}}
            self.d_optimizer.zero_grad(set_to_none=True)
            self.d_scaler.scale(loss).backward()
            self.d_scaler.unscale_(self.d_optimizer)
            self.d_grad_norm = _grad_norm(self.discriminator.parameters(), None)
            values = {**g_values, **step_values, "d_grad_norm": self.d_grad_norm}
            if self._guard(loss, terms, self.d_grad_norm, self.d_scaler, values, prefix="d_"):
                norms.append(self.d_grad_norm)
            self.d_scaler.step(self.d_optimizer)
            self.d_scaler.update()
            for k, v in step_values.items():
                sums[k] = sums[k] + v if k in sums else v
        means = {k: v / d_steps for k, v in sums.items()}
        if norms:
            means["d_grad_norm"] = torch.stack(norms).mean()
        return means

    def _guard(self, total: torch.Tensor, terms: dict[str, torch.Tensor], norm: torch.Tensor, scaler,
               values: dict, prefix: str = "") -> bool:
        """Raise ``_NonFinite`` unless every term and the squared gradient norm are finite.

        The squared norm bounds every ``g_i^2``, so Adam's second moment cannot overflow either.
        One host sync (on ``total + norm^2``, non-finite when any part is); the terms are looked
        at one by one only when that fails. Returns False for an fp16 overflow step (finite
        terms, non-finite gradients: the GradScaler skips that update), True otherwise.
        """
        if bool(torch.isfinite(total.detach().float() + norm.square())):
            return True
        names = [prefix + k for k in terms] + [prefix + "grad_norm"]
        flags = [bool(torch.isfinite(v.detach())) for v in terms.values()]
        flags.append(bool(torch.isfinite(norm.square())))
        if all(flags):
            return True  # only the sum overflowed
        if scaler.is_enabled() and all(flags[:-1]) and not bool(torch.isfinite(norm)):
            return False  # the GradScaler found inf/nan gradients and skips this step
        raise _NonFinite(names[flags.index(False)], values)

    def _snapshot(self) -> dict:
        """What a step changes before its guard can fire: RNG states and buffers (and, with
        several discriminator updates per step, the discriminator's whole state)."""
        snap = {"rng": (random.getstate(), np.random.get_state(), torch.get_rng_state(),
                        torch.cuda.get_rng_state_all() if _cuda_initialized() else None),
                "buffers": [b.detach().clone() for b in self._step_buffers]}
        if self.d_loss_fn is not None and self.phase_config.d_steps > 1:
            snap["d_state"] = _clone_tree(self._d_state())
        return snap

    def _restore(self, snap: dict) -> None:
        py, npy, cpu, cuda = snap["rng"]
        random.setstate(py)
        np.random.set_state(npy)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        with torch.no_grad():
            for b, saved in zip(self._step_buffers, snap["buffers"]):
                b.copy_(saved)
        if "d_state" in snap:
            self._load_d_state(snap["d_state"])
        self.model.zero_grad(set_to_none=True)

    def _diverged(self, bad: _NonFinite, snapshot: dict, lr_used: float, log: RunLog | None):
        """Back to the last finite state, log the bad step, save ``last.pt``, raise."""
        self._restore(snapshot)
        step = self.step + 1
        if log is not None:
            self._accumulate(bad.values)
            self._log(log, lr_used, None, step=step)
        self.save(self.last_path)
        raise TrainingDiverged(step, bad.term, lr_used)

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

    def _reset_sums(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}

    def _accumulate(self, values: dict[str, torch.Tensor]) -> None:
        """Add a step's values to the running sums (no ``.item()``: no sync between log rows)."""
        for k, v in values.items():
            v = v.detach().float()
            self._sums[k] = self._sums[k] + v if k in self._sums else v
            self._counts[k] = self._counts.get(k, 0) + 1

    def _log(self, log: RunLog, lr: float, bar, step: int | None = None) -> None:
        names = list(self._sums)
        means = torch.stack([self._sums[k] / self._counts[k] for k in names]).tolist() if names else []
        self._reset_sums()
        scalars = {"phase": self.phase, **dict(zip(names, means)), "lr": lr}
        if self.d_optimizer is not None:
            scalars["d_lr"] = self.d_lr
        metrics = self.metrics if self._validated_now() else {}
        log.write(self.step if step is None else step, scalars, metrics, self.elapsed)
        if bar is not None:
            post = {k: f"{v:.4g}" for k, v in scalars.items() if k in ("loss", "d_loss")}
            post |= {k: f"{v:.4g}" for k, v in metrics.items() if k in ("psnr", "ssim")}
            bar.set_postfix(post, refresh=False)

    # ---- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue exactly; loadable with ``weights_only=True``."""
        return {
            "format": FORMAT,
            "step": self.step,
            "phase": self.phase,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "discriminator": self._d_state() if self.discriminator is not None else None,
            "sampler": self._sampler_state(),
            "rng": rng_state(),
            "best_psnr": self.best_psnr,
            "elapsed": self.elapsed,
            "config": self.config.to_dict(),
            "precision": self.precision,
        }

    def _d_state(self) -> dict:
        return {"model": self.discriminator.state_dict(), "optimizer": self.d_optimizer.state_dict(),
                "scheduler": self.d_scheduler.state_dict(), "scaler": self.d_scaler.state_dict()}

    def _load_d_state(self, state: dict) -> None:
        self.discriminator.load_state_dict(state["model"])
        self.d_optimizer.load_state_dict(state["optimizer"])
        self.d_scheduler.load_state_dict(state["scheduler"])
        self.d_scaler.load_state_dict(state["scaler"])

    def _sampler_state(self) -> dict:
        """Sampler position after the batches consumed so far (the loader prefetches ahead)."""
        return self.sampler.state_after(self.step - self._first_step)

    def save(self, path: str | Path) -> None:
        """Write :meth:`state_dict` atomically (rank 0 only); never a non-finite tensor.

        A state holding one (which the per-step guard should make impossible) is not written:
        :class:`~srlib.train.TrainingDiverged` names it and the file keeps its last finite state.
        """
        if self.dist.is_main:
            state = self.state_dict()
            found = first_nonfinite(state, floats=True, skip=("best_psnr",))
            bad = found[0] if found else None
            if bad is not None:
                raise TrainingDiverged(self.step, bad, self.lr, f"not writing {path}: {bad} holds a "
                                       f"non-finite value at step {self.step}; lower the learning rate")
            atomic_save(state, path)

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
        phase = int(ckpt.get("phase", 0))
        if not 0 <= phase < len(self.plan):
            raise TrainCheckpointError(f"training checkpoint {path} is in phase {phase} but the config has "
                                       f"{len(self.plan)} phase(s); resume with the config that wrote it")
        if (ckpt.get("discriminator") is None) != (self.discriminator is None):
            has = "has" if ckpt.get("discriminator") is not None else "has no"
            raise TrainCheckpointError(f"training checkpoint {path} {has} discriminator state but this "
                                       f"Trainer {'has no' if self.discriminator is None else 'has a'} "
                                       "discriminator; resume with the setup that wrote it")
        try:
            self._enter_phase(phase)
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            self.scaler.load_state_dict(ckpt["scaler"])
            if self.ema is not None:  # a run without EMA before: start the average here
                self.ema.load_state_dict(ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"])
            if self.discriminator is not None:
                self._load_d_state(ckpt["discriminator"])
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
                   "T_mult", "eta_min", "grad_clip", "ema", "d_loss", "d_lr", "d_betas", "d_steps",
                   "discriminator", "sampling", "phases", "seed", "precision", "channels_last")


def _warn_config_changes(saved: dict, config: TrainConfig, path: Path) -> None:
    now = config.to_dict()
    changed = [f"{k}: {saved[k]!r} -> {now[k]!r}" for k in TRAJECTORY_KEYS
               if k in saved and _norm(saved[k]) != _norm(now[k])]
    if changed:
        warnings.warn(f"resuming {path} with a changed config ({'; '.join(changed)}); "
                      "the run will not match an uninterrupted one", stacklevel=4)


def _norm(v):
    """Tuples and lists alike (a JSON round trip turns one into the other), recursively."""
    if isinstance(v, (tuple, list)):
        return [_norm(x) for x in v]
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    return v


def _check_terms(terms, where: str) -> dict[str, torch.Tensor]:
    """``terms`` must be a non-empty ``{name: 0-d tensor}`` without the reserved ``'loss'``."""
    if not isinstance(terms, dict) or not terms:
        raise TypeError(f"{where} must return a non-empty dict of named loss terms, got {terms!r}")
    for name, value in terms.items():
        if name == "loss" or not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise TypeError(f"{where} returned {name!r}: {type(value).__name__}; terms are one-element "
                            "tensors named other than 'loss' (the trainer sums them into 'loss'), so "
                            "a loss with reduction='none' cannot be a training term")
    return terms


def _grad_norm(params: Iterable[nn.Parameter], clip: float | None) -> torch.Tensor:
    """Total 2-norm of the gradients (before clipping); clips them to ``clip`` when given.

    The same two calls ``clip_grad_norm_`` makes, so a clipped run is unchanged by the guard.
    """
    params = [p for p in params if p.grad is not None]
    norm = nn.utils.get_total_norm([p.grad for p in params], 2.0)
    if clip is not None:
        nn.utils.clip_grads_with_norm_(params, clip, norm)
    return norm


def _clone_tree(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _clone_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone_tree(v) for v in obj)
    return obj


def _cuda_initialized() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_initialized()


def _scalar(v):
    """Python float for numbers and 0-d tensors; other values unchanged."""
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        return float(v)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def train_model(model: nn.Module, train_set: Dataset, config: TrainConfig, out_dir: str | Path,
                validate: Callable[[nn.Module], dict] | None = None,
                resume: bool | str | Path = False, discriminator: nn.Module | None = None) -> Trainer:
    """Build a :class:`Trainer` and run :meth:`Trainer.fit`; returns the trainer."""
    trainer = Trainer(model, train_set, config, out_dir, validate, discriminator)
    trainer.fit(resume=resume)
    return trainer
