"""The common shell of the learned classical upscalers: Y only, a cached dictionary, a torch module.

:class:`PatchUpscaler` gives neighbour embedding and sparse coding the model contract (float
RGB in [0, 1], (N, 3, h, w) -> (N, 3, sh, sw)), so :func:`srlib.evaluate.evaluate` treats them
like networks. Subclasses implement ``learn(features, hr, mid) -> dict of arrays`` and
``reconstruct(lr_y, mid) -> SR Y``.

The dictionary is learned on first use from the profile's training set (T91; the scikit-image
fallback offline) and cached under ``results/<profile>/dictionaries/<name>_x<s>_<key>.npz`` with
a JSON sidecar (settings, training source, wall time, provenance). The key hashes everything
learning depends on (the learning settings, the seed, whether the training set was found or
the fallback stood in, a format version), so a cache made otherwise is relearned, never
silently reused; settings used only at inference (``k``, ``lam``, ``fista_iters``, ...) are
not in it. A file without its sidecar counts as absent. Arrays load with ``allow_pickle=False``.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import kernels
from ..data.colour import rgb_to_ycbcr, ycbcr_to_rgb
from ..fileio import atomic_open, atomic_write_text
from .patches import (LR_PATCH, extract, fold_average, gradient_features, mid_image, overlap_average,
                      patch_index, regular, training_pairs, unfold_patches)

#: per-profile learning settings; each method reads its own key
SETTINGS = {
    "smoke": {"ne": dict(pairs=4_000, k=5), "sc": dict(pairs=4_000, atoms=64, epochs=3, fista_iters=50)},
    # quick, measured on Set5 / Set14 x3 (idle 2-core machine): NE 31.92 / 28.77 dB at 2.4 / 5.0 s
    # per image; SC 32.02 / 28.86 dB at 1.6 / 3.8 s (100 FISTA iterations instead of 50: -0.003 dB,
    # 2x the time)
    "quick": {"ne": dict(pairs=50_000, k=5), "sc": dict(pairs=40_000, atoms=256, epochs=1, fista_iters=50)},
    "full": {"ne": dict(pairs=400_000, k=5), "sc": dict(pairs=100_000, atoms=1024, epochs=10, fista_iters=100)},
}
# the one-GPU profile: NE and SC run on the CPU whatever the box, so it keeps quick's learning budget
# (srlib.profiles charges notebook 06 for that)
SETTINGS["gpu"] = SETTINGS["quick"]


class PatchUpscaler(nn.Module):
    """Y-channel example-based SR with bicubic Cb/Cr; a learned dictionary cached per profile."""

    method = ""  # 'ne' or 'sc'
    defaults: dict = {}
    learn_keys: tuple = ()  # the settings learning depends on (the cache key)
    FORMAT = 2  # bump when what is learned changes

    def __init__(self, scale: int, profile: str = "quick", cache_dir=None, train_set: str = "T91",
                 seed: int = 0, progress: bool = True, **settings):
        super().__init__()
        if profile not in SETTINGS:
            raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(SETTINGS)}")
        self.scale, self.profile, self.seed, self.progress = int(scale), profile, seed, progress
        self.train_set = train_set
        unknown = set(settings) - set(self.defaults)
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown setting(s) {sorted(unknown)}; "
                            f"known: {sorted(self.defaults)}")
        self.settings = {**self.defaults, **SETTINGS[profile][self.method], **settings}
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.arrays: dict | None = None
        self.info: dict = {}

    # ----- dictionary -------------------------------------------------------------------------
    @property
    def patch(self) -> int:
        return LR_PATCH * self.scale

    def cache_path(self) -> Path:
        from ..paths import results_dir

        from ..data.catalog import find_dataset

        d = self._cache_dir or results_dir(self.profile) / "dictionaries"
        found = find_dataset(self.train_set) is not None
        key = json.dumps({"s": self.scale, "train": self.train_set, "found": found, "seed": self.seed,
                          "format": self.FORMAT, **{k: self.settings[k] for k in self.learn_keys}},
                         sort_keys=True)
        digest = hashlib.sha1(key.encode()).hexdigest()[:8]
        return d / f"{self.method}_x{self.scale}_{digest}.npz"

    def fit(self, images, source: str = "given images") -> "PatchUpscaler":
        """Learn the dictionary from HR images (uint8 RGB arrays or ``HRImage``s)."""
        t0 = time.perf_counter()
        feats, hr, mid = training_pairs(images, self.scale, self.settings["pairs"], self.seed,
                                        progress=self.progress)
        self.arrays = self.learn(feats, hr, mid)
        self.info = {"method": self.method, "scale": self.scale, "settings": self.settings,
                     "seed": self.seed, "train_source": source, "pairs": int(feats.shape[0]),
                     "learn_seconds": round(time.perf_counter() - t0, 2)}
        self._prepare()
        return self

    def ensure_fitted(self) -> "PatchUpscaler":
        """Load the cached dictionary, or learn it from the training set and cache it."""
        if self.arrays is not None:
            return self
        path = self.cache_path()
        if path.is_file() and path.with_suffix(".json").is_file():
            with np.load(path, allow_pickle=False) as z:
                self.arrays = {k: torch.from_numpy(z[k]) for k in z.files}
            self.info = json.loads(path.with_suffix(".json").read_text())
            self._prepare()
            return self
        from ..data.datasets import load_hr_images

        images, source = load_hr_images(self.train_set)
        self.fit(images, source)
        self.save(path)
        return self

    def save(self, path) -> Path:
        """Write the arrays (npz) and the sidecar (json) atomically."""
        from ..provenance import provenance

        path = Path(path)
        with atomic_open(path, "wb") as f:
            np.savez(f, **{k: v.numpy() for k, v in self.arrays.items()})
        meta = {**self.info, "provenance": provenance(self.profile, seed=self.seed)}
        atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=2, default=str))
        return path

    # ----- to implement -----------------------------------------------------------------------
    def learn(self, feats: torch.Tensor, hr: torch.Tensor, mid: torch.Tensor) -> dict:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Build search structures from ``self.arrays`` (after learning or loading)."""

    def reconstruct(self, lr_y: torch.Tensor, mid: torch.Tensor) -> torch.Tensor:
        """(1, 1, h, w) LR Y and (1, 1, H, W) mid image -> (1, 1, H, W) SR Y, float64 in [0, 255]."""
        raise NotImplementedError

    # ----- the model contract -----------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The model contract; the CPU kernels inside (NE's search, SC's FISTA) split over torch's
        threads even where the caller runs them single-threaded (the evaluation pipeline): seconds
        of work an image, beside which the metrics thread's milliseconds do not matter."""
        self.ensure_fitted()
        with kernels.all_threads():
            ycc = rgb_to_ycbcr(x.cpu())
            up = mid_image(ycc, self.scale)  # bicubic Y (the mid image) and bicubic Cb, Cr
            out = []
            for i in range(x.shape[0]):
                y = self.reconstruct(ycc[i:i + 1, :1], up[i:i + 1, :1])
                out.append(torch.cat([y, up[i:i + 1, 1:]], dim=1))
        return ycbcr_to_rgb(torch.cat(out)).to(x.dtype).to(x.device)

    def patches(self, mid: torch.Tensor):
        """Features (P, 4p^2) and mid-image patches (P, p^2) on the test grid, with the index
        (None on a regular grid, where ``unfold`` takes them)."""
        h, w = mid.shape[-2:]
        if regular(h, w, self.patch, self.scale):
            return (unfold_patches(gradient_features(mid)[0], self.patch, self.scale),
                    unfold_patches(mid[0], self.patch, self.scale), None)
        index = patch_index(h, w, self.patch, self.scale)
        return extract(gradient_features(mid)[0], index), extract(mid[0], index), index

    def assemble(self, patches: torch.Tensor, index: torch.Tensor, mid: torch.Tensor) -> torch.Tensor:
        h, w = mid.shape[-2:]
        if index is None:
            return fold_average(patches.double(), h, w, self.patch, self.scale)[None, None]
        return overlap_average(patches.double(), index, h, w, fill=mid[0, 0])[None, None]

    def extra_repr(self) -> str:
        return f"scale={self.scale}, profile={self.profile!r}, " + ", ".join(
            f"{k}={v}" for k, v in self.settings.items())
