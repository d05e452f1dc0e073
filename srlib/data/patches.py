"""FASS, feature-adaptive sample selection (seed 000, MPTS part 3): which training patches to draw.

Seed 000: "A Feature-Adaptive Sample Selection (FASS) module that prioritizes
high-information-content samples based on feature distribution analysis [9]". No rule is given.
SamplingAug (Wang et al. 2021, "SamplingAug: On the Importance of Patch Sampling Augmentation for
Single Image Super-Resolution") is the public reading followed here: score every candidate
patch of the training images by how badly a cheap upscaler reconstructs it, then train only on
the informative ones.

Readings chosen:

- Candidates: every LR position on a grid of ``stride`` pixels (default ``max(1, p // 4)`` for
  LR patch ``p``) in every training image, scored at once with integral images, so the
  selection is over the whole data set, not per batch.
- Score ``'bicubic'`` (default): the mean squared error, over the HR patch and its channels,
  of the bicubic upscaling of the LR image against HR (torch ``interpolate``, a = -0.75, of the
  whole LR image, clamped to [0, 1]). It measures the detail the LR image lost, which is what an
  SR network has to learn; plain gradient energy (``'gradient'``: the mean of
  ``dx^2 + dy^2`` of the HR luminance) also rewards gradients that bicubic already
  reconstructs (smooth ramps, large soft edges).
- Rule ``'top'`` (default): keep the ``fraction`` highest-scoring candidates (SamplingAug's
  "top p%") and draw uniformly among them. ``'proportional'`` draws a candidate with
  probability proportional to its score; it depends on the score's scale (a squared error
  puts most of the mass on a few edges), which ``'top'`` does not, hence the default.
  ``'uniform'`` is the plain sampler of :class:`~srlib.data.PatchDataset` (an image, then a
  position, uniformly).
- Reproducible: the selection is a function of the images, the patch size and the spec; the
  draw for sample ``i`` takes its random numbers from the dataset's ``default_rng((seed, i))``,
  so the trainer's resumable sample order gives the same patches after a kill and resume.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

SCORES = ("bicubic", "gradient")
RULES = ("uniform", "top", "proportional")
FASS_DEFAULTS = {"rule": "top", "score": "bicubic", "fraction": 0.5, "stride": None}


def normalize_sampling(spec) -> dict | None:
    """Validate a sampling spec: None, ``'uniform'``, ``'fass'`` (:data:`FASS_DEFAULTS`) or a
    dict of ``rule``, ``score``, ``fraction``, ``stride``; returns None or a complete dict."""
    if spec is None:
        return None
    if spec == "uniform":
        return {"rule": "uniform"}
    if spec == "fass":
        return dict(FASS_DEFAULTS)
    if not isinstance(spec, Mapping):
        raise ValueError(f"sampling must be None, 'uniform', 'fass' or a dict of {sorted(FASS_DEFAULTS)}, "
                         f"got {spec!r}")
    unknown = sorted(set(spec) - set(FASS_DEFAULTS))
    if unknown:
        raise ValueError(f"sampling has unknown keys {unknown}; known: {sorted(FASS_DEFAULTS)}")
    out = {**FASS_DEFAULTS, **spec}
    if out["rule"] not in RULES:
        raise ValueError(f"sampling rule must be one of {RULES}, got {out['rule']!r}")
    if out["rule"] == "uniform":
        return {"rule": "uniform"}
    if out["score"] not in SCORES:
        raise ValueError(f"sampling score must be one of {SCORES}, got {out['score']!r}")
    f = out["fraction"]
    if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
        raise ValueError(f"sampling fraction must be in (0, 1], got {f!r}")
    s = out["stride"]
    if s is not None and (isinstance(s, bool) or not isinstance(s, int) or s < 1):
        raise ValueError(f"sampling stride must be an int >= 1 or None (auto), got {s!r}")
    out["fraction"] = float(f)
    return out


def _float(img: np.ndarray) -> torch.Tensor:
    """uint8 HWC (or HW) -> float64 (C, H, W) in [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(img)).to(torch.float64) / 255.0
    return t[None] if t.dim() == 2 else t.permute(2, 0, 1)


def score_map(hr: np.ndarray, lr: np.ndarray, scale: int, score: str = "bicubic") -> np.ndarray:
    """Per-LR-pixel information (float64, the LR grid): the sum over each ``scale x scale`` HR
    block of the per-pixel score (bicubic squared error averaged over channels, or gradient
    energy of the luminance); a window's mean over it, divided by ``scale^2``, is the patch's score."""
    h, w = lr.shape[:2]
    s = int(scale)
    hr_t = _float(hr)[:, : h * s, : w * s]
    if score == "bicubic":
        up = F.interpolate(_float(lr)[None], size=(h * s, w * s), mode="bicubic", align_corners=False)
        per_px = (up[0].clamp(0, 1) - hr_t).square().mean(0)
    elif score == "gradient":
        y = hr_t.mean(0)
        dx = torch.zeros_like(y)
        dy = torch.zeros_like(y)
        dx[:, :-1] = y[:, 1:] - y[:, :-1]
        dy[:-1] = y[1:] - y[:-1]
        per_px = dx.square() + dy.square()
    else:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")
    return per_px.reshape(h, s, w, s).sum((1, 3)).numpy()


def window_means(m: np.ndarray, p: int, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ys, xs, means)`` of every ``p x p`` window of ``m`` at positions ``0, stride, ...``
    (integral image; ``means[i, j]`` is the mean of ``m[ys[i]:ys[i]+p, xs[j]:xs[j]+p]``)."""
    h, w = m.shape
    ii = np.zeros((h + 1, w + 1))
    ii[1:, 1:] = m.cumsum(0).cumsum(1)
    ys, xs = np.arange(0, h - p + 1, stride), np.arange(0, w - p + 1, stride)
    y0, x0 = ys[:, None], xs[None, :]
    sums = ii[y0 + p, x0 + p] - ii[y0, x0 + p] - ii[y0 + p, x0] + ii[y0, x0]
    return ys, xs, sums / (p * p)


class PatchSelection:
    """The FASS table of one data set and patch size: candidates, scores, and the draw rule.

    Args:
        pairs: ``(hr, lr)`` uint8 arrays (a :class:`~srlib.data.PatchDataset`'s ``pairs``).
        lr_patch, scale: LR patch size and scale.
        spec: a normalised sampling spec (:func:`normalize_sampling`), not ``'uniform'``.
        cache: optional dict reused across patch sizes for the per-image score maps.

    Attributes: ``image``, ``y``, ``x``, ``score`` (all candidates, LR coordinates; the score of
    a patch is ``mean(score_map window) / scale^2``), ``selected`` (indices the rule can draw)
    and ``threshold`` (the lowest selected score).
    """

    def __init__(self, pairs, lr_patch: int, scale: int, spec: dict, cache: dict | None = None):
        if spec is None or spec["rule"] == "uniform":
            raise ValueError("PatchSelection needs a FASS spec (rule 'top' or 'proportional')")
        self.spec, self.lr_patch, self.scale = dict(spec), int(lr_patch), int(scale)
        p, s = self.lr_patch, self.scale
        stride = spec["stride"] or max(1, p // 4)
        cache = {} if cache is None else cache
        image, ys_all, xs_all, scores = [], [], [], []
        for k, (hr, lr) in enumerate(pairs):
            key = (spec["score"], id(hr))
            if key not in cache:
                cache[key] = score_map(hr, lr, s, spec["score"])
            ys, xs, means = window_means(cache[key], p, stride)
            yy, xx = np.meshgrid(ys, xs, indexing="ij")
            image.append(np.full(yy.size, k, dtype=np.int64))
            ys_all.append(yy.ravel())
            xs_all.append(xx.ravel())
            scores.append(means.ravel() / (s * s))
        self.image, self.y, self.x = np.concatenate(image), np.concatenate(ys_all), np.concatenate(xs_all)
        self.score = np.concatenate(scores)
        if spec["rule"] == "top":
            n_keep = max(1, math.ceil(spec["fraction"] * self.score.size))
            self.selected = np.sort(np.argsort(-self.score, kind="stable")[:n_keep])
            self._cdf = None
        else:
            if not self.score.sum() > 0:
                raise ValueError(f"FASS: every candidate patch scores 0 by {spec['score']!r}; "
                                 "use rule 'top' or 'uniform'")
            self.selected = np.flatnonzero(self.score > 0)
            self._cdf = np.cumsum(self.score[self.selected])
        self.threshold = float(self.score[self.selected].min())

    def __len__(self) -> int:
        return int(self.score.size)

    def draw(self, rng: np.random.Generator) -> tuple[int, int, int]:
        """``(pair index, y, x)`` of one patch, from ``rng``."""
        if self._cdf is None:
            j = self.selected[int(rng.integers(self.selected.size))]
        else:
            u = rng.random() * self._cdf[-1]
            j = self.selected[min(int(np.searchsorted(self._cdf, u, side="right")), self.selected.size - 1)]
        return int(self.image[j]), int(self.y[j]), int(self.x[j])

    def score_of(self, k: int, y: int, x: int) -> float:
        """The table's score of candidate ``(k, y, x)`` (KeyError when not a candidate)."""
        hit = np.flatnonzero((self.image == k) & (self.y == y) & (self.x == x))
        if hit.size == 0:
            raise KeyError(f"({k}, {y}, {x}) is not a candidate position")
        return float(self.score[hit[0]])
