"""Training: :class:`Trainer`, :class:`TrainConfig`, :func:`train_model`.

Usage::

    from srlib.train import TrainConfig, train_model
    trainer = train_model(model, train_set, TrainConfig(steps=1000), "runs/awsrn-s", validate=fn)
"""
from .config import TrainConfig
from .ema import EMA
from ..device import cpu_supports_bf16
from .sampler import SeededBatchSampler
from .state import TrainCheckpointError, TrainingDiverged, load_checkpoint
from .trainer import Trainer, build_scheduler, train_model
from .recipes import make_validator, model_config, profile_config, train_sr

__all__ = [
    "EMA",
    "SeededBatchSampler",
    "TrainCheckpointError",
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "build_scheduler",
    "cpu_supports_bf16",
    "load_checkpoint",
    "make_validator",
    "model_config",
    "profile_config",
    "train_model",
    "train_sr",
]
