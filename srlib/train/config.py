"""Training configuration: one dataclass, validated on construction.

Defaults are the EDSR-family recipe the papers build on (Adam 0.9/0.999, L1 loss, batch 16,
lr 1e-3 halved every 2x10^5 iterations); profiles override steps and schedule.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

LOSSES = ("l1", "mse")
SCHEDULES = ("step", "cosine_restarts", "constant")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    """Everything the :class:`~srlib.train.Trainer` needs besides model and data.

    ``batch_size`` is per process (under torchrun the global batch is ``batch_size * world``).
    ``validate_every`` / ``checkpoint_every`` / ``log_every`` of 0 disable that event (a final
    checkpoint and log row are always written). ``precision='auto'`` picks bf16 on CUDA when
    supported and on CPUs with native bf16 (AMX / AVX512-BF16), else fp32;
    ``channels_last='auto'`` follows reduced precision. ``threads`` calls
    ``torch.set_num_threads``; ``device='auto'`` is CUDA when available, else CPU.
    """

    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    loss: str = "l1"
    schedule: str = "step"
    step_size: int = 200_000
    gamma: float = 0.5
    T_0: int = 1000
    T_mult: int = 1
    eta_min: float = 0.0
    grad_clip: float | None = None
    ema: float | None = None
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
        self.betas = tuple(float(b) for b in self.betas)
        _check_choice("loss", self.loss, LOSSES)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("precision", self.precision, PRECISIONS)
        if self.channels_last not in ("auto", True, False):
            raise ValueError(f"channels_last must be 'auto', True or False, got {self.channels_last!r}")
        for name in ("steps", "batch_size", "step_size", "T_0", "T_mult"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("checkpoint_every", "validate_every", "log_every", "num_workers"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.ema is not None and not 0.0 < self.ema < 1.0:
            raise ValueError(f"TrainConfig.ema is a decay in (0, 1) or None, got {self.ema!r}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"TrainConfig.grad_clip is a positive max norm or None, got {self.grad_clip!r}")

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


def _check_choice(name: str, value, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"TrainConfig.{name} must be one of {choices}, got {value!r}")
