"""Colour conversion and cropping at the I/O edge (BT.601 YCbCr as MATLAB ``rgb2ycbcr``).

MATLAB's ``rgb2ycbcr`` on uint8 RGB computes in double and rounds to uint8:
``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` with R, G, B in [0, 255]. The float
variants here take RGB in [0, 1] and return Y in [0, 255] scale without rounding; the
protocol in :mod:`srlib.metrics` rounds, as MATLAB does. ``rgb_to_ycbcr`` / ``ycbcr_to_rgb`` are
the full batched torch conversions the Y-channel classical methods use.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

_RGB2YCBCR = np.array([[65.481, 128.553, 24.966],
                       [-37.797, -74.203, 112.0],
                       [112.0, -93.786, -18.214]])
_OFFSET = np.array([16.0, 128.0, 128.0])
# the same matrix x 1000 in integers: with RGB in 0..255, YCbCr = offset + M_int @ rgb / 255000
_RGB2YCBCR_INT = np.round(_RGB2YCBCR * 1000).astype(np.int64)


def rgb2ycbcr(img: np.ndarray, only_y: bool = True) -> np.ndarray:
    """uint8 HWC RGB -> uint8 Y (H, W) or YCbCr (H, W, 3), rounded as MATLAB does.

    Computed in integers, so the rounding (half away from zero) is exact.
    """
    _check_uint8_rgb(img, "rgb2ycbcr")
    mat = _RGB2YCBCR_INT[:1] if only_y else _RGB2YCBCR_INT
    offset = (_OFFSET[: mat.shape[0]] * 255000).astype(np.int64)
    lin = img.astype(np.int64) @ mat.T + offset  # always positive: YCbCr lies in [16, 240]
    out = ((lin + 127500) // 255000).astype(np.uint8)
    return out[..., 0] if only_y else out


def ycbcr2rgb(img: np.ndarray) -> np.ndarray:
    """uint8 HWC YCbCr -> uint8 RGB (MATLAB ``ycbcr2rgb``), rounded and saturated."""
    _check_uint8_rgb(img, "ycbcr2rgb")
    inv = np.linalg.inv(_RGB2YCBCR) * 255.0
    out = (img.astype(np.float64) - _OFFSET) @ inv.T
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """Float RGB in [0, 1], (N, 3, H, W) -> Y in [16, 235] scale (N, 1, H, W), not rounded."""
    w = torch.tensor(_RGB2YCBCR[0], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True) + 16.0


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """Float RGB in [0, 1] holding 8-bit values -> YCbCr float64 in [0, 255], rounded half up as
    MATLAB's ``rgb2ycbcr`` on uint8 (in float64: a value within 1e-12 of a half may round the
    other way; :func:`rgb2ycbcr` is the exact integer path)."""
    rgb = (x.double() * 255).round()
    m = torch.tensor(_RGB2YCBCR, dtype=torch.float64, device=x.device)
    off = torch.tensor(_OFFSET, dtype=torch.float64, device=x.device).view(1, 3, 1, 1)
    return torch.floor(torch.einsum("ij,njhw->nihw", m, rgb) / 255 + off + 0.5)


def ycbcr_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    """YCbCr float in [0, 255] -> float RGB in [0, 1] (not rounded, not clamped)."""
    inv = torch.tensor(np.linalg.inv(_RGB2YCBCR) * 255.0, dtype=ycc.dtype, device=ycc.device)
    off = torch.tensor(_OFFSET, dtype=ycc.dtype, device=ycc.device).view(1, 3, 1, 1)
    return torch.einsum("ij,njhw->nihw", inv, ycc - off) / 255


def _check_uint8_rgb(img: np.ndarray, fn: str) -> None:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        got = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
        raise TypeError(f"{fn}: expected a uint8 (H, W, 3) image, got {got}")


def modcrop(img, scale: int):
    """Crop the bottom/right so H and W are multiples of ``scale`` (HWC numpy or (..., H, W) torch)."""
    if torch.is_tensor(img):
        h, w = img.shape[-2:]
        return img[..., : h - h % scale, : w - w % scale]
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale, ...]


def to_tensor(img: np.ndarray, batch: bool = True) -> torch.Tensor:
    """uint8 HWC (or HW) -> float32 in [0, 1]: (1, C, H, W), or (C, H, W) with ``batch=False``.

    Always a fresh contiguous tensor (the array, possibly read-only, is copied).
    """
    if img.ndim == 2:
        img = img[..., None]
    if img.dtype == np.uint8:  # a lookup (one numpy pass), not torch's parallel copy and divide
        x = torch.from_numpy(_unit_levels()[np.ascontiguousarray(img.transpose(2, 0, 1))])
    else:
        x = torch.tensor(img.transpose(2, 0, 1), dtype=torch.float32).div_(255)
    return x.unsqueeze(0) if batch else x


@lru_cache(maxsize=1)
def _unit_levels() -> np.ndarray:
    """float32 ``v / 255`` for v = 0..255 as torch's vectorised ``div_`` computes it."""
    return torch.arange(256, dtype=torch.float32).repeat(64).div_(255)[:256].numpy().copy()


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float (1, C, H, W) or (C, H, W) in [0, 1] -> uint8 HWC, clamped and rounded."""
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(f"to_uint8: expected one image, got a batch of {x.shape[0]}")
        x = x[0]
    return x.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
