"""Patch machinery shared by the example-based methods (neighbour embedding, sparse coding).

Both pre-deep-learning baselines of seed 002 (``002_85103154dfa612b9.txt``, Section 2) work the
same way, as their originals do:

- only the luminance is super-resolved; Cb and Cr are upscaled by bicubic interpolation;
- the LR Y image is first enlarged by bicubic interpolation to the HR grid (the "mid" image);
- LR features are the first- and second-order gradients of the mid image, filters
  ``[-1, 0, 1]`` and ``[1, 0, -2, 0, 1]`` and their transposes (Chang et al. 2004, Sec. 3.2;
  Yang et al., TIP 2010, Sec. III-C);
- patches cover ``3 x 3`` LR pixels, i.e. ``3s x 3s`` on the HR grid, taken every LR pixel
  (an overlap of 2 LR pixels); the HR patches are averaged where they overlap.

Everything is torch on whole images, no Python loop over patches: on a regular grid (the test
images, mod-cropped) patches are taken with ``unfold`` and put back with ``fold``; otherwise
they are gathered with index arithmetic and put back with ``index_add_``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..data.colour import modcrop, rgb_to_ycbcr, to_tensor
from ..data.resize import imresize

LR_PATCH = 3  # patch side in LR pixels


def _gradient_kernels() -> torch.Tensor:
    k = torch.zeros(4, 1, 5, 5, dtype=torch.float64)
    k[0, 0, 2, 1:4] = torch.tensor([-1.0, 0.0, 1.0])   # first order, along x
    k[1, 0, 1:4, 2] = torch.tensor([-1.0, 0.0, 1.0])   # first order, along y
    k[2, 0, 2, :] = torch.tensor([1.0, 0.0, -2.0, 0.0, 1.0])  # second order, along x
    k[3, 0, :, 2] = torch.tensor([1.0, 0.0, -2.0, 0.0, 1.0])  # second order, along y
    return k


GRADIENTS = _gradient_kernels()


def gradient_features(mid: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) mid image -> (N, 4, H, W) gradient maps (zero padding, as MATLAB ``conv2 'same'``).

    The four filters of :data:`GRADIENTS` as differences of shifted slices: the same float64
    numbers as ``F.conv2d(mid, GRADIENTS, padding=2)`` (the tests hold them equal), 22x faster on
    a 768x1024 image (6 ms against 139, 1 thread): float64 convolutions take torch's generic path."""
    p = F.pad(mid, (2, 2, 2, 2))
    centre = p[..., 2:-2, 2:-2]
    out = torch.empty(mid.shape[0], 4, *mid.shape[-2:], dtype=mid.dtype, device=mid.device)
    torch.sub(p[..., 2:-2, 3:-1], p[..., 2:-2, 1:-3], out=out[:, 0:1])  # [-1, 0, 1] along x
    torch.sub(p[..., 3:-1, 2:-2], p[..., 1:-3, 2:-2], out=out[:, 1:2])  # along y
    out[:, 2:3] = p[..., 2:-2, :-4] - 2 * centre + p[..., 2:-2, 4:]  # [1, 0, -2, 0, 1] along x
    out[:, 3:4] = p[..., :-4, 2:-2] - 2 * centre + p[..., 4:, 2:-2]  # along y
    return out


def grid(length: int, size: int, step: int) -> torch.Tensor:
    """Top-left corners every ``step`` pixels, the last one flush with the border."""
    if length < size:
        raise ValueError(f"an image side of {length} pixels is smaller than the {size}-pixel patch")
    pos = list(range(0, length - size + 1, step))
    if pos[-1] != length - size:
        pos.append(length - size)
    return torch.tensor(pos)


def patch_index(h: int, w: int, size: int, step: int) -> torch.Tensor:
    """Flat pixel indices (P, size*size) of every patch on the grid, row-major."""
    ys, xs = grid(h, size, step), grid(w, size, step)
    d = torch.arange(size)
    rows = ys[:, None, None, None] + d[None, None, :, None]  # (ny, 1, size, 1)
    cols = xs[None, :, None, None] + d[None, None, None, :]  # (1, nx, 1, size)
    return (rows * w + cols).reshape(-1, size * size)


def extract(img: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(C, H, W) -> (P, C*size*size) patches at ``index`` (from :func:`patch_index`)."""
    c = img.shape[0]
    flat = img.reshape(c, -1)
    return flat[:, index].permute(1, 0, 2).reshape(index.shape[0], -1)


def overlap_average(patches: torch.Tensor, index: torch.Tensor, h: int, w: int,
                    fill: torch.Tensor | None = None) -> torch.Tensor:
    """Put (P, size*size) patches back on an (H, W) image, averaging overlaps.

    Pixels no patch covers take ``fill`` (the grid always covers every pixel, so this is a guard).
    """
    acc = torch.zeros(h * w, dtype=patches.dtype, device=patches.device)
    cnt = torch.zeros(h * w, dtype=patches.dtype, device=patches.device)
    flat_idx = index.reshape(-1).to(patches.device)
    acc.index_add_(0, flat_idx, patches.reshape(-1))
    cnt.index_add_(0, flat_idx, torch.ones_like(patches).reshape(-1))
    out = acc / cnt.clamp(min=1)
    if fill is not None:
        out = torch.where(cnt > 0, out, fill.reshape(-1).to(out))
    return out.reshape(h, w)


def regular(h: int, w: int, size: int, step: int) -> bool:
    """Whether :func:`grid` is plain ``range(0, length - size + 1, step)`` on both sides."""
    return h >= size and w >= size and (h - size) % step == 0 and (w - size) % step == 0


def unfold_patches(img: torch.Tensor, size: int, step: int) -> torch.Tensor:
    """(C, H, W) -> (P, C*size*size) patches on a regular grid, in :func:`extract`'s order."""
    cols = F.unfold(img[None], size, stride=step)  # (1, C*size*size, P), channel-major, row-major
    return cols[0].T


def fold_average(patches: torch.Tensor, h: int, w: int, size: int, step: int) -> torch.Tensor:
    """(P, size*size) patches on a regular grid -> (H, W), overlaps averaged (:func:`overlap_average`)."""
    acc = F.fold(patches.T[None], (h, w), size, stride=step)
    cnt = F.fold(torch.ones_like(patches[:1]).T.expand(-1, patches.shape[0])[None], (h, w), size, stride=step)
    return (acc / cnt)[0, 0]


def mid_image(y_lr: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic (MATLAB) enlargement of a float LR image (N, C, h, w), unrounded."""
    return imresize(y_lr, scale)


def training_pairs(images, scale: int, max_pairs: int, seed: int = 0, min_var: float = 10.0,
                   progress: bool = False):
    """Patch pairs from HR training images, as the methods see them at test time.

    Each HR image (uint8 RGB) is mod-cropped, degraded by MATLAB ``imresize(., 1/s)`` on uint8
    (the benchmark protocol), converted to Y, and enlarged again by bicubic. Patches whose HR
    variance is below ``min_var`` (flat sky, walls) are dropped, as Yang et al.'s code prunes
    them; then ``max_pairs`` are drawn at random with ``seed`` from all that remain, and only
    those are extracted.

    Returns float32 tensors ``(features (P, 4p^2), hr (P, p^2), mid (P, p^2))`` with p = 3s.
    """
    from tqdm.auto import tqdm

    p = LR_PATCH * scale
    maps, candidates = [], []
    for im in tqdm(images, desc=f"patch pairs x{scale}", leave=False, disable=not progress):
        hr_rgb = modcrop(getattr(im, "hr", im), scale)
        if min(hr_rgb.shape[:2]) < p:
            continue
        lr_rgb = imresize(np.ascontiguousarray(hr_rgb), 1 / scale)
        hr_y = rgb_to_ycbcr(to_tensor(hr_rgb))[0, :1]
        mid = mid_image(rgb_to_ycbcr(to_tensor(lr_rgb))[:, :1], scale)
        index = patch_index(*hr_y.shape[-2:], p, scale)
        keep = extract(hr_y, index).var(dim=1) >= min_var
        maps.append((hr_y, mid[0], gradient_features(mid)[0], index[keep]))
        candidates.append(torch.stack([torch.full((int(keep.sum()),), len(maps) - 1),
                                       torch.arange(int(keep.sum()))], dim=1))
    if not maps or sum(len(c) for c in candidates) == 0:
        raise ValueError(f"no training image is large enough for {p}x{p} patches at x{scale}, "
                         f"or none has a patch with variance >= {min_var}")
    candidates = torch.cat(candidates)
    if len(candidates) > max_pairs:
        pick = np.random.default_rng(seed).choice(len(candidates), max_pairs, replace=False)
        candidates = candidates[torch.from_numpy(np.sort(pick))]
    feats, hrs, mids = [], [], []
    for i, (hr_y, mid, feat, index) in enumerate(maps):
        chosen = index[candidates[candidates[:, 0] == i, 1]]
        feats.append(extract(feat, chosen).float())
        hrs.append(extract(hr_y, chosen).float())
        mids.append(extract(mid, chosen).float())
    return torch.cat(feats), torch.cat(hrs), torch.cat(mids)
