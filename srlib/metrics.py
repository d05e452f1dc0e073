"""PSNR and SSIM by the MATLAB protocol of the SR literature.

- Y of BT.601 YCbCr, rounded to 8 bits as MATLAB's ``rgb2ycbcr`` does for uint8;
- ``crop_border`` pixels shaved on every side (the scale, by convention);
- float64 throughout; PSNR with peak 255;
- SSIM as Wang et al.'s ``ssim_index.m``: 11x11 Gaussian window (sigma 1.5), K1 0.01,
  K2 0.03, L 255, 'valid' filtering, mean of the map.

Gray images. A single-channel array (H, W) is taken as the luminance itself. For RGB arrays
whose *file* was gray, ``as_gray=True`` measures the normalised luma
``(65.481 R + 128.553 G + 24.966 B) / 219`` (equal to the gray value when R = G = B) instead
of Y; this is how the published bicubic rows treat Set14 ``bridge`` (MATLAB never calls
``rgb2ycbcr`` on a one-channel image). The default, ``as_gray=False``, copies gray to three
channels and takes Y, as EDSR-derived model code does; on the Set14 mean the two differ by
~0.1 dB (notebook 01 measures it).

The numpy functions take uint8 HWC images; the ``*_torch`` twins take batches (N, 3, H, W)
of float RGB in [0, 1] holding 8-bit values and return one value per image.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

_Y = (65.481, 128.553, 24.966)


def _luma_torch(x8: torch.Tensor, y_channel: bool, as_gray) -> torch.Tensor:
    """x8: (N, C, H, W) float64 in [0, 255], integer-valued -> the channels measured."""
    if x8.shape[1] == 1 or not y_channel:
        return x8
    w = x8.new_tensor(_Y).view(1, 3, 1, 1)
    lin = (x8 * w).sum(dim=1, keepdim=True)
    y = (16.0 + lin / 255.0).round()
    if as_gray is None or as_gray is False:
        return y
    gray = (lin / 219.0).round()
    sel = torch.as_tensor(as_gray, device=x8.device).view(-1, 1, 1, 1)
    return torch.where(sel, gray, y)


def _prepare_torch(x: torch.Tensor, crop_border: int, y_channel: bool, as_gray) -> torch.Tensor:
    x8 = x.detach().to(torch.float64).clamp(0, 1).mul(255).round()
    x8 = _luma_torch(x8, y_channel, as_gray)
    if crop_border:
        x8 = x8[..., crop_border:-crop_border, crop_border:-crop_border]
    return x8


def _check_pair(sr, hr, crop_border):
    if sr.shape != hr.shape:
        raise ValueError(f"sr and hr must have the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}")
    h, w = sr.shape[-2:]
    if crop_border < 0 or 2 * crop_border >= min(h, w):
        raise ValueError(f"crop_border={crop_border} leaves nothing of a {h}x{w} image")


def psnr_torch(sr: torch.Tensor, hr: torch.Tensor, crop_border: int, y_channel: bool = True,
               as_gray=False) -> torch.Tensor:
    """Per-image PSNR (N,) of float batches in [0, 1]; ``as_gray`` may be a bool per image."""
    _check_pair(sr, hr, crop_border)
    a = _prepare_torch(sr, crop_border, y_channel, as_gray)
    b = _prepare_torch(hr, crop_border, y_channel, as_gray)
    mse = (a - b).pow(2).flatten(1).mean(dim=1)
    return 10 * torch.log10(255.0**2 / mse)  # inf for identical images, as MATLAB


@lru_cache(maxsize=8)
def _gauss1d(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(x: torch.Tensor) -> torch.Tensor:
    """Separable 11x11 Gaussian, 'valid', as 22 shifted multiply-adds (exact float64, and
    faster on the CPU than a float64 ``conv2d``, which has no optimised kernel)."""
    g = _gauss1d().tolist()
    n = len(g)
    w = x.shape[-1] - n + 1
    y = x[..., :w] * g[0]
    for k in range(1, n):
        y.add_(x[..., k : k + w], alpha=g[k])
    h = y.shape[-2] - n + 1
    z = y[..., :h, :] * g[0]
    for k in range(1, n):
        z.add_(y[..., k : k + h, :], alpha=g[k])
    return z


def ssim_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SSIM map ('valid') of float64 (N, C, H, W) images in [0, 255]."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b, e_aa, e_bb, e_ab = _filter_valid(torch.stack([a, b, a * a, b * b, a * b]))
    saa, sbb, sab = e_aa - mu_a**2, e_bb - mu_b**2, e_ab - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * sab + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2)
    return num / den


def ssim_torch(sr: torch.Tensor, hr: torch.Tensor, crop_border: int, y_channel: bool = True,
               as_gray=False) -> torch.Tensor:
    """Per-image SSIM (N,); several channels (``y_channel=False``) are averaged."""
    _check_pair(sr, hr, crop_border)
    a = _prepare_torch(sr, crop_border, y_channel, as_gray)
    b = _prepare_torch(hr, crop_border, y_channel, as_gray)
    if min(a.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after the crop, got {tuple(a.shape[-2:])}")
    return ssim_map(a, b).flatten(1).mean(dim=1)


def _as_batch(img: np.ndarray, name: str) -> torch.Tensor:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim not in (2, 3):
        got = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
        raise TypeError(f"{name} must be a uint8 (H, W) or (H, W, C) image, got {got}")
    t = torch.from_numpy(np.ascontiguousarray(img)).to(torch.float64) / 255.0
    return t[None, None] if img.ndim == 2 else t.permute(2, 0, 1)[None]


def psnr(sr: np.ndarray, hr: np.ndarray, crop_border: int, y_channel: bool = True,
         as_gray: bool = False) -> float:
    """PSNR (dB) of two uint8 images by the protocol above."""
    return float(psnr_torch(_as_batch(sr, "sr"), _as_batch(hr, "hr"), crop_border, y_channel, as_gray)[0])


def ssim(sr: np.ndarray, hr: np.ndarray, crop_border: int, y_channel: bool = True,
         as_gray: bool = False) -> float:
    """SSIM of two uint8 images by the protocol above."""
    return float(ssim_torch(_as_batch(sr, "sr"), _as_batch(hr, "hr"), crop_border, y_channel, as_gray)[0])


def mse_to_psnr(mse: float, peak: float = 255.0) -> float:
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)
