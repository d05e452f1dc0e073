"""Exponential moving average of model weights: ``ema <- decay * ema + (1 - decay) * w``."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """A frozen copy of ``model`` whose float parameters and buffers track an EMA.

    Updated after every optimizer step; integer buffers are copied.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = float(decay)
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema = list(self.module.parameters())
        torch._foreach_mul_(ema, self.decay)
        torch._foreach_add_(ema, [p.detach() for p in model.parameters()], alpha=1.0 - self.decay)
        for b_ema, b in zip(self.module.buffers(), model.buffers()):
            if b.is_floating_point():
                b_ema.mul_(self.decay).add_(b, alpha=1.0 - self.decay)
            else:
                b_ema.copy_(b)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
