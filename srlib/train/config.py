"""Training configuration: one dataclass, validated on construction.

Defaults are the EDSR-family recipe the papers build on (Adam 0.9/0.999, L1 loss, batch 16,
lr 1e-3 halved every 2x10^5 iterations); profiles override steps and schedule.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, fields, replace

from ..data.patches import normalize_sampling
from ..losses import list_losses, normalize_loss_spec

SCHEDULES = ("step", "cosine_restarts", "constant")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# what a phase may set; the rest of the TrainConfig is shared by all phases
PHASE_KEYS = ("steps", "lr_patch", "batch_size", "loss", "lr", "betas", "schedule", "step_size", "gamma",
              "T_0", "T_mult", "eta_min", "grad_clip", "d_loss", "d_lr", "d_betas", "d_steps", "sampling",
              "keep_optimizer")
# what defines the optimisers and schedules: a phase that keeps them may not change these
OPTIMIZER_KEYS = ("lr", "betas", "schedule", "step_size", "gamma", "T_0", "T_mult", "eta_min", "d_lr", "d_betas")


@dataclass
class TrainConfig:
    """Everything the :class:`~srlib.train.Trainer` needs besides model and data.

    ``batch_size`` is per process (under torchrun the global batch is ``batch_size * world``).
    ``validate_every`` / ``checkpoint_every`` / ``log_every`` of 0 disable that event (a final
    checkpoint and log row are always written). ``precision='auto'`` picks bf16 on CUDA when
    supported and on CPUs with native bf16 (AMX / AVX512-BF16), else fp32;
    ``channels_last='auto'`` follows reduced precision. ``threads`` calls
    ``torch.set_num_threads``; ``device='auto'`` is CUDA when available, else CPU.

    Losses: ``loss`` is a loss spec of :mod:`srlib.losses`, a name (``'l1'``) or a weighted
    mapping (``{'l1': 1.0, 'charbonnier': 0.5}``).

    A second network (a discriminator, ``Trainer(..., discriminator=net)``) trains on ``d_loss``
    (a loss spec whose terms read the ``discriminator`` context) with Adam(``d_lr``, ``d_betas``),
    ``d_lr=None`` meaning ``lr``; it takes ``d_steps`` updates per generator step and follows the
    generator's schedule fields (``schedule``, ``step_size``, ``gamma``, ``T_0``, ...) with its own
    scheduler, stepped once per generator step. ``discriminator`` (a name or
    ``{'name': 'vgg', 'nf': 32}``, :func:`srlib.models.discriminator.build_discriminator`) lets
    the trainer build it (initialised from ``seed + 1``, the global RNG untouched) when none is passed.

    ``schedule='cosine_restarts'`` is torch's ``CosineAnnealingWarmRestarts(T_0, T_mult,
    eta_min)`` stepped per iteration (seed 003 Eq. 13, :mod:`srlib.train.mpts`).

    ``sampling``: how training patches are drawn, None (the dataset's own), ``'uniform'``,
    ``'fass'`` or a FASS dict (:mod:`srlib.data.patches`); needs a dataset with
    ``set_sampling`` (:class:`srlib.data.PatchDataset`).

    ``phases``: a list of dicts, each overriding some of :data:`PHASE_KEYS` for ``steps`` steps
    (the last phase may omit ``steps``: it runs up to ``steps``); keys a phase omits take the
    top-level value (``lr_patch``: the dataset's own). Phase k+1 starts from phase k's weights
    (and EMA) with a fresh optimiser and schedule, unless it sets ``keep_optimizer: True``: then
    the optimisers and schedules (and their state) carry on from phase k, which it may not
    change (:data:`OPTIMIZER_KEYS`), e.g. a curriculum that only grows ``lr_patch``.
    ``steps`` must equal the phases' sum.
    """

    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    loss: str | dict = "l1"
    schedule: str = "step"
    step_size: int = 200_000
    gamma: float = 0.5
    T_0: int = 1000
    T_mult: int = 1
    eta_min: float = 0.0
    grad_clip: float | None = None
    ema: float | None = None
    d_loss: str | dict | None = None
    d_lr: float | None = None
    d_betas: tuple[float, float] = (0.9, 0.999)
    d_steps: int = 1
    discriminator: str | dict | None = None
    sampling: str | dict | None = None
    phases: list[dict] | None = None
    checkpoint_every: int = 1000
    validate_every: int = 0
    log_every: int = 100
    seed: int = 0
    precision: str = "auto"
    channels_last: str | bool = "auto"
    compile: bool = False
    threads: int | None = None
    num_workers: int = 0
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        self.betas = _betas("betas", self.betas)
        self.d_betas = _betas("d_betas", self.d_betas)
        self.loss = _loss_spec("loss", self.loss)
        if self.d_loss is not None:
            self.d_loss = _loss_spec("d_loss", self.d_loss)
        self.sampling = _sampling("sampling", self.sampling)
        if self.discriminator is not None:
            self.discriminator = _discriminator_spec(self.discriminator)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("precision", self.precision, PRECISIONS)
        if self.channels_last not in ("auto", True, False):
            raise ValueError(f"channels_last must be 'auto', True or False, got {self.channels_last!r}")
        for name in ("steps", "batch_size", "step_size", "T_0", "T_mult", "d_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("checkpoint_every", "validate_every", "log_every", "num_workers"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.ema is not None and not 0.0 < self.ema < 1.0:
            raise ValueError(f"TrainConfig.ema is a decay in (0, 1) or None, got {self.ema!r}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"TrainConfig.grad_clip is a positive max norm or None, got {self.grad_clip!r}")
        if self.d_lr is not None and not self.d_lr > 0:
            raise ValueError(f"TrainConfig.d_lr is a positive learning rate or None (= lr), "
                             f"got {self.d_lr!r}")
        if self.phases is not None:
            self.phases = [_phase_dict(i, p) for i, p in enumerate(self.phases)] or None  # [] is None
            self.phase_plan()  # validates every phase and the sum of steps

    def phase_plan(self) -> list["Phase"]:
        """The phases as :class:`Phase` records (one phase spanning ``steps`` when ``phases`` is None)."""
        if not self.phases:
            return [Phase(0, 0, self.steps, self, None)]
        plan, start = [], 0
        for i, p in enumerate(self.phases):
            last = i == len(self.phases) - 1
            steps = p.get("steps", self.steps - start if last else None)
            if steps is None:
                raise ValueError(f"TrainConfig.phases[{i}] lacks 'steps' (only the last phase may omit it)")
            if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
                raise ValueError(f"TrainConfig.phases[{i}]['steps'] must be an int >= 1, got {steps!r}"
                                 + (f" (the steps left after the earlier phases, of {self.steps})"
                                    if "steps" not in p else ""))
            overrides = {k: v for k, v in p.items() if k not in ("steps", "lr_patch", "keep_optimizer")}
            try:
                cfg = replace(self, phases=None, steps=steps, **overrides)
            except ValueError as exc:
                raise ValueError(f"TrainConfig.phases[{i}]: {exc}") from None
            keep = bool(p.get("keep_optimizer", False))
            if keep:
                changed = [k for k in OPTIMIZER_KEYS if getattr(cfg, k) != getattr(plan[-1].config, k)]
                if changed:
                    raise ValueError(f"TrainConfig.phases[{i}] keeps the optimiser but changes {changed}; "
                                     "drop keep_optimizer or those keys")
            plan.append(Phase(i, start, start + steps, cfg, p.get("lr_patch"), keep))
            start += steps
        if start != self.steps:
            raise ValueError(f"TrainConfig.steps is {self.steps} but the phases add up to {start} steps; "
                             f"set steps={start}, or leave out the last phase's 'steps'")
        return plan

    def to_dict(self) -> dict:
        """Plain dict (JSON- and ``weights_only``-safe)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Build from a dict, rejecting unknown keys with their names."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig keys {unknown}; known keys: {sorted(known)}")
        return cls(**d)


@dataclass(frozen=True)
class Phase:
    """One training phase: steps ``[start, end)``, its effective ``config`` and ``lr_patch``.

    ``config`` is the top-level :class:`TrainConfig` with the phase's overrides (``phases=None``,
    ``steps`` the phase's length); ``lr_patch`` None keeps the dataset's own patch size;
    ``keep_optimizer`` carries the previous phase's optimisers and schedules on.
    """

    index: int
    start: int
    end: int
    config: TrainConfig
    lr_patch: int | None
    keep_optimizer: bool = False

    @property
    def steps(self) -> int:
        return self.end - self.start


def _check_choice(name: str, value, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"TrainConfig.{name} must be one of {choices}, got {value!r}")


def _betas(name: str, value) -> tuple[float, float]:
    betas = tuple(float(b) for b in value)
    if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"TrainConfig.{name} must be two numbers in [0, 1), got {value!r}")
    return betas


def _loss_spec(name: str, spec):
    try:
        return normalize_loss_spec(spec)
    except ValueError as exc:
        raise ValueError(f"TrainConfig.{name}: {exc} (registered losses: {list_losses()})") from None


def _sampling(name: str, spec):
    try:
        return normalize_sampling(spec)
    except ValueError as exc:
        raise ValueError(f"TrainConfig.{name}: {exc}") from None


def _discriminator_spec(spec):
    if isinstance(spec, str):
        return spec
    if isinstance(spec, dict) and isinstance(spec.get("name"), str):
        return copy.deepcopy(spec)
    raise ValueError(f"TrainConfig.discriminator must be a name (e.g. 'vgg') or a dict with 'name' and "
                     f"options (e.g. {{'name': 'vgg', 'nf': 32}}), got {spec!r}")


def _phase_dict(i: int, phase) -> dict:
    if not isinstance(phase, dict):
        raise ValueError(f"TrainConfig.phases[{i}] must be a dict of {PHASE_KEYS}, got {phase!r}")
    unknown = sorted(set(phase) - set(PHASE_KEYS))
    if unknown:
        raise ValueError(f"TrainConfig.phases[{i}] has unknown keys {unknown}; a phase may set {PHASE_KEYS}")
    p = copy.deepcopy(phase)
    for key in ("betas", "d_betas"):
        if key in p:
            p[key] = _betas(f"phases[{i}].{key}", p[key])
    for key in ("loss", "d_loss"):
        if p.get(key) is not None:
            p[key] = _loss_spec(f"phases[{i}].{key}", p[key])
    if "sampling" in p:
        p["sampling"] = _sampling(f"phases[{i}].sampling", p["sampling"])
    keep = p.get("keep_optimizer", False)
    if not isinstance(keep, bool) or (keep and i == 0):
        raise ValueError(f"TrainConfig.phases[{i}]['keep_optimizer'] must be a bool, and False in the "
                         f"first phase (nothing to keep); got {keep!r}")
    lr_patch = p.get("lr_patch")
    if lr_patch is not None and (isinstance(lr_patch, bool) or not isinstance(lr_patch, int) or lr_patch < 1):
        raise ValueError(f"TrainConfig.phases[{i}]['lr_patch'] must be an int >= 1 or None, got {lr_patch!r}")
    return p
