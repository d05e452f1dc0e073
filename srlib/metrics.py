"""PSNR and SSIM by the MATLAB protocol of the SR literature.

- Y of BT.601 YCbCr, rounded to 8 bits as MATLAB's ``rgb2ycbcr`` does for uint8;
- ``crop_border`` pixels shaved on every side (the scale, by convention);
- float64 throughout; PSNR with peak 255;
- SSIM as Wang et al.'s ``ssim_index.m``: 11x11 Gaussian window (sigma 1.5), K1 0.01,
  K2 0.03, L 255, 'valid' filtering, mean of the map.

Y rounding. MATLAB-based evaluation (the published bicubic rows, EDSR's scripts) rounds Y to
8 bits; BasicSR-style Python evaluation (used by e.g. PAN's logs) keeps Y in float. The two
differ by up to ~0.03 dB (more at x2); ``round_y=False`` selects the float variant.

Gray images. A single-channel array (H, W) is taken as the luminance itself. For RGB arrays
whose *file* was gray, ``as_gray=True`` measures the normalised luma
``(65.481 R + 128.553 G + 24.966 B) / 219`` (equal to the gray value when R = G = B) instead
of Y; this is how the published bicubic rows treat Set14 ``bridge`` (MATLAB never calls
``rgb2ycbcr`` on a one-channel image). The default, ``as_gray=False``, copies gray to three
channels and takes Y, as EDSR-derived model code does; on the Set14 mean the two differ by
~0.1 dB (notebook 01 measures it).

The numpy functions take uint8 HWC images; the ``*_torch`` twins take batches (N, 3, H, W)
of float RGB in [0, 1] holding 8-bit values, or uint8 tensors, and return one value per image.

Speed (issue 10). On the CPU, uint8 batches go through :mod:`srlib.kernels` (Y, the squared
differences and SSIM fused, one image at a time); the torch code below is the reference the
tests hold them to, and runs elsewhere. Y and PSNR are integer-exact (the same bits however the
batch is formed); SSIM is float64, filtered in cache-sized bands of rows (:data:`TILE_PIXELS`),
equal to the whole-image map to ~1e-16. Float64 is kept where exactness needs it: SSIM in float32 would be 1.8x faster
(2.7 vs 4.9 ms per B100 image) but off by ~3e-6, where the tests hold it to 1e-12.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from . import kernels

# BT.601 luma weights x 1000, so Y = 16 + (65481 R + 128553 G + 24966 B) / 255000 exactly
_Y_INT = (65481, 128553, 24966)


def quantize8(x: torch.Tensor) -> torch.Tensor:
    """Float RGB in [0, 1] -> uint8 (clamped, ``round(255 x)``); a uint8 tensor is returned as is.

    This is the protocol's 8-bit quantisation of an upscaler's output, done once, so that the
    metrics (and a batch of them) work on 8-bit tensors; ``round`` is torch's, as before.
    """
    if x.dtype == torch.uint8:
        return x
    if kernels.usable(x) and x.dtype in (torch.float32, torch.float64):  # the same steps, fused
        return torch.from_numpy(kernels.unit_to_uint8(x.detach().numpy()))
    return x.detach().clamp(0, 1).mul_(255).round_().to(torch.uint8)  # clamp's output is fresh


def _luma_torch(x: torch.Tensor, y_channel: bool, as_gray, round_y: bool = True) -> torch.Tensor:
    """8-bit RGB (N, C, H, W), uint8 or float in [0, 1] -> the 8-bit channels measured, as float64.

    With S = 65481 R + 128553 G + 24966 B (an integer, exact in float64): Y = floor(16.5 +
    S / 255000) and gray = floor(0.5 + S / 219000), MATLAB's rounding half away from zero, written
    as ``floor((S + c) / d)`` of one correctly rounded division, which is exact: the quotient of
    two integers below 2^53 is at least 1/d away from the next integer, far more than its rounding
    error. ``round_y=False`` keeps Y unrounded (BasicSR-style Python evaluation).
    """
    x8 = quantize8(x)
    if x8.shape[1] == 1 or not y_channel:
        return x8.to(torch.float64)
    lin = x8[:, 0:1].to(torch.float64).mul_(_Y_INT[0])
    lin.add_(x8[:, 1:2], alpha=_Y_INT[1]).add_(x8[:, 2:3], alpha=_Y_INT[2])
    gray = None
    if as_gray is not None and as_gray is not False:
        gray = (lin + 109500).div_(219000).floor_() if round_y else lin / 219000
    y = lin.add_(16 * 255000 + 127500).div_(255000).floor_() if round_y else 16.0 + lin / 255000
    if gray is not None:
        sel = torch.as_tensor(as_gray, device=x.device).view(-1, 1, 1, 1)
        y = torch.where(sel, gray, y)
    return y


def _prepare_torch(x: torch.Tensor, crop_border: int, y_channel: bool, as_gray,
                   round_y: bool = True) -> torch.Tensor:
    if crop_border:
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
    return _luma_torch(x, y_channel, as_gray, round_y)


def _check_pair(sr, hr, crop_border):
    if sr.shape != hr.shape:
        raise ValueError(f"sr and hr must have the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}")
    h, w = sr.shape[-2:]
    if crop_border < 0 or 2 * crop_border >= min(h, w):
        raise ValueError(f"crop_border={crop_border} leaves nothing of a {h}x{w} image")


def _psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return _psnr_from_mse((a - b).pow_(2).flatten(1).mean(dim=1))


def _psnr_from_mse(mse: torch.Tensor) -> torch.Tensor:
    return 10 * torch.log10(255.0**2 / mse)  # inf for identical images, as MATLAB


def _check_ssim_size(hw) -> None:
    if min(hw) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after the crop, got {tuple(hw)}")


def psnr_torch(sr: torch.Tensor, hr: torch.Tensor, crop_border: int, y_channel: bool = True,
               as_gray=False, round_y: bool = True) -> torch.Tensor:
    """Per-image PSNR (N,) of float batches in [0, 1]; ``as_gray`` may be a bool per image."""
    _check_pair(sr, hr, crop_border)
    return _psnr(_prepare_torch(sr, crop_border, y_channel, as_gray, round_y),
                 _prepare_torch(hr, crop_border, y_channel, as_gray, round_y))


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


_C = ((0.01 * 255) ** 2, (0.03 * 255) ** 2)  # SSIM's C1 = (K1 L)^2, C2 = (K2 L)^2


def ssim_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SSIM map ('valid') of float64 (N, C, H, W) images in [0, 255].

    Four filtered maps suffice: E[a], E[b], E[a^2 + b^2] and E[ab], since only the sum of
    the two variances enters the denominator.
    """
    c1, c2 = _C
    maps = torch.empty((4, *a.shape), dtype=a.dtype, device=a.device)
    maps[0], maps[1] = a, b
    torch.mul(a, a, out=maps[2]).addcmul_(b, b)
    torch.mul(a, b, out=maps[3])
    mu_a, mu_b, e_sq, e_ab = _filter_valid(maps)  # four fresh maps: the rest works in place
    mu_ab = mu_a * mu_b
    mu_sq = mu_a.mul_(mu_a).addcmul_(mu_b, mu_b)
    num = e_ab.sub_(mu_ab).mul_(2).add_(c2).mul_(mu_ab.mul_(2).add_(c1))  # (2 mu_ab + c1)(2 cov + c2)
    den = e_sq.sub_(mu_sq).add_(c2).mul_(mu_sq.add_(c1))  # (mu_a^2 + mu_b^2 + c1)(var_a + var_b + c2)
    return num.div_(den)


#: SSIM is computed in bands of rows of about this many input pixels (all images of the batch
#: together), so that the four maps and the filter's temporaries stay in the CPU's cache; measured
#: on the 2-core EPYC: 2x faster than whole images for Urban100 (and batches no longer slow it down).
TILE_PIXELS = 1 << 16


def _ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per image of float64 (N, C, H, W) in [0, 255], over bands of rows."""
    _check_ssim_size(a.shape[-2:])
    n, c, h, w = a.shape
    if kernels.usable(a, b):  # the fused kernel, one plane at a time
        g, (c1, c2) = _gauss1d().numpy(), _C
        per_plane = [[kernels.ssim_mean(a[i, j].numpy(), b[i, j].numpy(), g, c1, c2) for j in range(c)]
                     for i in range(n)]
        return torch.tensor(per_plane, dtype=torch.float64).mean(dim=1)
    rows = max(1, TILE_PIXELS // (n * c * w))
    total = torch.zeros(n, dtype=torch.float64, device=a.device)
    for r in range(0, h - 10, rows):
        e = min(r + rows, h - 10) + 10
        total += ssim_map(a[..., r:e, :], b[..., r:e, :]).sum(dim=(1, 2, 3))
    return total / (c * (h - 10) * (w - 10))


def ssim_torch(sr: torch.Tensor, hr: torch.Tensor, crop_border: int, y_channel: bool = True,
               as_gray=False, round_y: bool = True) -> torch.Tensor:
    """Per-image SSIM (N,); several channels (``y_channel=False``) are averaged."""
    _check_pair(sr, hr, crop_border)
    return _ssim(_prepare_torch(sr, crop_border, y_channel, as_gray, round_y),
                 _prepare_torch(hr, crop_border, y_channel, as_gray, round_y))


def _luma_params(gray: bool, round_y: bool) -> tuple:
    """(add, div, floor, base) of :func:`srlib.kernels.luma` for :func:`_luma_torch`'s formulas."""
    if round_y:
        return (109500, 219000, True, 0.0) if gray else (16 * 255000 + 127500, 255000, True, 0.0)
    return (0, 219000, False, 0.0) if gray else (0, 255000, False, 16.0)


def _psnr_ssim_kernels(sr8: torch.Tensor, hr8: torch.Tensor, crop: int, as_gray, round_y: bool):
    """:func:`psnr_ssim_torch` of uint8 RGB batches with the fused kernels, one image at a time:
    the same Y planes, the same PSNR (integer squares summed exactly), SSIM within ~1e-13."""
    g, (c1, c2) = _gauss1d().numpy(), _C
    mse, ssim_ = [], []
    for i in range(sr8.shape[0]):
        gray = bool(as_gray) if np.ndim(as_gray) == 0 else bool(as_gray[i])
        a, b = (kernels.luma(x[i].numpy(), crop, *_luma_params(gray, round_y)) for x in (sr8, hr8))
        _check_ssim_size(a.shape)
        mse.append(kernels.mse(a, b))
        ssim_.append(kernels.ssim_mean(a, b, g, c1, c2))
    return _psnr_from_mse(torch.tensor(mse, dtype=torch.float64)), torch.tensor(ssim_, dtype=torch.float64)


def psnr_ssim_torch(sr: torch.Tensor, hr: torch.Tensor, crop_border: int, y_channel: bool = True,
                    as_gray=False, round_y: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Both metrics at the cost of one colour conversion: ``(psnr (N,), ssim (N,))``."""
    _check_pair(sr, hr, crop_border)
    if kernels.usable(sr, hr) and y_channel and sr.shape[1] == 3:
        return _psnr_ssim_kernels(quantize8(sr), quantize8(hr), crop_border,
                                  False if as_gray is None else as_gray, round_y)
    a = _prepare_torch(sr, crop_border, y_channel, as_gray, round_y)
    b = _prepare_torch(hr, crop_border, y_channel, as_gray, round_y)
    return _psnr(a, b), _ssim(a, b)


def _as_batch(img: np.ndarray, name: str) -> torch.Tensor:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim not in (2, 3):
        got = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
        raise TypeError(f"{name} must be a uint8 (H, W) or (H, W, C) image, got {got}")
    t = torch.tensor(img, dtype=torch.float64) / 255.0
    return t[None, None] if img.ndim == 2 else t.permute(2, 0, 1)[None]


def psnr(sr: np.ndarray, hr: np.ndarray, crop_border: int, y_channel: bool = True,
         as_gray: bool = False, round_y: bool = True) -> float:
    """PSNR (dB) of two uint8 images by the protocol above."""
    return float(psnr_torch(_as_batch(sr, "sr"), _as_batch(hr, "hr"), crop_border, y_channel, as_gray,
                            round_y)[0])


def ssim(sr: np.ndarray, hr: np.ndarray, crop_border: int, y_channel: bool = True,
         as_gray: bool = False, round_y: bool = True) -> float:
    """SSIM of two uint8 images by the protocol above."""
    return float(ssim_torch(_as_batch(sr, "sr"), _as_batch(hr, "hr"), crop_border, y_channel, as_gray,
                            round_y)[0])

