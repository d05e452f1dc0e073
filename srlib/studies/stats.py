"""Noise of a study: is an arm's difference from the baseline more than chance?

Two sources of noise are measured, as the issue asks:

- **images**: a paired per-image bootstrap (Efron & Tibshirani 1993, ch. 13; the percentile
  interval) of the mean PSNR difference between an arm and the baseline on the same images.
  It says how much the benchmark's choice of images moves the delta.
- **seeds**: with two or more seeds of an arm (or of the baseline), the spread (max - min) of
  their mean PSNR; it says how much training noise moves the number.

An arm is *within noise* when the bootstrap interval contains 0 or ``|delta|`` is below the
seed spread. :func:`bootstrap_delta` resamples image indices as
``scipy.stats.bootstrap(..., paired=True, method='percentile')`` does, in one vectorised draw,
so with the same ``numpy.random.Generator`` seed the two give the same interval.
"""
from __future__ import annotations

import numpy as np


def bootstrap_delta(per_image_a, per_image_b, n: int = 2000, seed: int = 0,
                    confidence: float = 0.95) -> dict:
    """Paired bootstrap interval of ``mean(a - b)`` over images.

    Args:
        per_image_a, per_image_b: per-image values (e.g. PSNR of an arm and of the baseline),
            aligned image by image.
        n: bootstrap resamples; each draws ``len(a)`` image indices with replacement.
        seed: seed of ``numpy.random.default_rng``.
        confidence: two-sided level of the percentile interval.

    Returns ``{'delta', 'low', 'high', 'n_images', 'n_resamples', 'confidence'}``.
    """
    a = np.asarray(per_image_a, dtype=np.float64)
    b = np.asarray(per_image_b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"bootstrap_delta: per_image_a and per_image_b must be 1-D and of one length "
                         f"(paired by image), got shapes {a.shape} and {b.shape}")
    if a.size < 2:
        raise ValueError(f"bootstrap_delta: need at least 2 paired images, got {a.size}")
    if not 0 < confidence < 1:
        raise ValueError(f"bootstrap_delta: confidence must be in (0, 1), got {confidence!r}")
    d = a - b
    idx = np.random.default_rng(seed).integers(0, d.size, (int(n), d.size))
    means = d[idx].mean(axis=-1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return {"delta": float(d.mean()), "low": float(low), "high": float(high), "n_images": int(d.size),
            "n_resamples": int(n), "confidence": confidence}


def seed_spread(means_per_seed) -> float:
    """max - min of the per-seed means; NaN with fewer than two seeds."""
    m = np.asarray(list(means_per_seed), dtype=np.float64)
    m = m[np.isfinite(m)]
    return float(m.max() - m.min()) if m.size >= 2 else float("nan")


def within_noise(low: float, high: float, delta: float, spread: float) -> bool | None:
    """The interval contains 0, or ``|delta|`` is below the seed spread (when there is one).

    None (unknown) when there is neither an interval (fewer than two images) nor a seed spread.
    """
    if not np.isfinite(delta):
        return False
    if not (np.isfinite(low) and np.isfinite(high)) and not np.isfinite(spread):
        return None
    in_interval = bool(low <= 0.0 <= high)
    below_spread = bool(np.isfinite(spread) and abs(delta) < spread)
    return in_interval or below_spread


def signed_db(x: float) -> str:
    """``+0.12 dB`` (``+0.004 dB`` below 0.05 dB, so a small delta does not read as zero); ``n/a`` for NaN."""
    if x != x:
        return "n/a"
    return f"{x:+.3f} dB" if abs(x) < 0.05 else f"{x:+.2f} dB"


def delta_sentences(table, baseline: str) -> list[str]:
    """One sentence per arm of a table with columns ``arm, params, delta, ci_low, ci_high,
    within_noise`` (one row per benchmark): its mean PSNR delta against ``baseline``, its extra
    parameters, and on how many benchmarks the paired 95% interval lies above 0, below 0, or
    the delta is within the noise (unknown noise counts as within)."""
    base_params = table[table.arm == baseline].params.iloc[0]
    out = []
    for arm, g in table[table.arm != baseline].groupby("arm", sort=False):
        up, down = int((g.ci_low > 0).sum()), int((g.ci_high < 0).sum())
        noise = int(g.within_noise.map(lambda v: True if v != v or v is None else bool(v)).sum())
        out.append(f"{arm}: {signed_db(g.delta.mean())} on average over {len(g)} benchmark(s) "
                   f"({int(g.params.iloc[0] - base_params):+,} parameters); interval above 0 on {up}, "
                   f"below 0 on {down}; within the noise on {noise}")
    return out


#: two per-image PSNRs closer than this count as equal in :func:`improvement_counts`: half the
#: 0.01 dB the tables print (a reading: the issue asks for higher / equal / lower and names no tie)
TIE_DB = 0.005


def improvement_counts(per_image_a, per_image_b, tie: float = TIE_DB) -> dict:
    """On how many images ``a`` is higher than, equal to or lower than ``b`` (paired by image).

    Args:
        per_image_a, per_image_b: per-image values (PSNR of a method and of its baseline), aligned
            image by image; pairs with a NaN on either side are left out.
        tie: ``|a - b| <= tie`` counts as equal (:data:`TIE_DB`).

    Returns ``{'higher', 'equal', 'lower', 'n', 'mean_delta', 'median_delta'}`` (deltas ``a - b``;
    NaN without a pair).
    """
    a = np.asarray(per_image_a, dtype=np.float64)
    b = np.asarray(per_image_b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"improvement_counts: per_image_a and per_image_b must be 1-D and of one length "
                         f"(paired by image), got shapes {a.shape} and {b.shape}")
    if not tie >= 0:
        raise ValueError(f"improvement_counts: tie must be >= 0, got {tie!r}")
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    return {"higher": int((d > tie).sum()), "equal": int((np.abs(d) <= tie).sum()), "lower": int((d < -tie).sum()),
            "n": int(d.size), "mean_delta": float(d.mean()) if d.size else float("nan"),
            "median_delta": float(np.median(d)) if d.size else float("nan")}


def count_sentences(counts) -> list[str]:
    """One sentence per (method, baseline) of a table with columns ``method, baseline, dataset,
    scale, higher, equal, lower, n, mean_delta`` (one row per benchmark and scale): on how many of
    the paired images the method's PSNR is higher, equal, lower, summed over the benchmarks, and
    on how many benchmarks it is higher on most images."""
    out = []
    for (method, base), g in counts.groupby(["method", "baseline"], sort=False):
        n = int(g.n.sum())
        if not n:
            continue
        most = int((g.higher > g.n / 2).sum())
        where = ", ".join(f"{r.dataset} x{r.scale} {r.higher}/{r.n}" for r in g.itertuples())
        mean = float((g.mean_delta * g.n).sum() / n)
        out.append(f"{method} vs {base}: PSNR higher on {int(g.higher.sum())} of {n} images ({where}), equal on "
                   f"{int(g.equal.sum())}, lower on {int(g.lower.sum())}; higher on most images on {most} of {len(g)} "
                   f"benchmark(s); mean per-image delta {signed_db(mean)}")
    return out
