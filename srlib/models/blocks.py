"""Shared building blocks: weight-normed conv, mean shift, pixel-shuffle upsamplers."""
from __future__ import annotations

import torch
from torch import nn

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)
