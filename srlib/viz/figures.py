"""Matplotlib figures shared by the notebooks; ``save_fig`` writes them under figures/<profile>/."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ..fileio import atomic_path
from ..paths import figures_dir


def save_fig(fig, profile: str, name: str, dpi: int = 110) -> Path:
    """Save ``fig`` as ``figures/<profile>/<name>.png`` (atomically) and return the path."""
    out = figures_dir(profile) / f"{name}.png"
    with atomic_path(out, keep_suffix=True) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    return out


def thumbnail_grid(groups: dict[str, list], per_row: int = 6, size: float = 1.6):
    """One row of thumbnails per dataset: ``groups`` maps a title to HRImage-like records."""
    rows = len(groups)
    fig, axes = plt.subplots(rows, per_row, figsize=(per_row * size, rows * size * 0.9), squeeze=False)
    for r, (title, images) in enumerate(groups.items()):
        for c in range(per_row):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(images):
                im = images[c]
                ax.imshow(im.hr)
                ax.set_title(f"{im.name}\n{im.hr.shape[1]}x{im.hr.shape[0]}", fontsize=7)
        axes[r, 0].text(-0.1, 0.5, title, transform=axes[r, 0].transAxes, rotation=90,
                        ha="right", va="center", fontsize=10, weight="bold")
    fig.tight_layout()
    return fig


def crop_panel(rows: dict[str, dict[str, np.ndarray]], size: float = 2.4):
    """A grid of crops: ``rows`` maps a row title to {column label: uint8 image}."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows.values())
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(n_cols * size, n_rows * size), squeeze=False)
    for i, (title, crops) in enumerate(rows.items()):
        for j, (label, img) in enumerate(crops.items()):
            axes[i, j].imshow(img, interpolation="nearest")
            axes[i, j].set_title(label, fontsize=9)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i, 0].set_ylabel(title, fontsize=10)
    fig.tight_layout()
    return fig


def crop(img: np.ndarray, top: int, left: int, size: int, scale: int = 1) -> np.ndarray:
    """A ``size``-pixel square of an HR-resolution image, or its LR counterpart when ``scale`` > 1."""
    t, l, s = top // scale, left // scale, size // scale
    return img[t : t + s, l : l + s]


def busiest_crop(img: np.ndarray, size: int, step: int = 16) -> tuple[int, int]:
    """(top, left) of the ``size`` square with the most gradient energy (a crop worth showing)."""
    g = np.abs(np.diff(img.astype(np.float32).mean(axis=2), axis=1))[:-1] + \
        np.abs(np.diff(img.astype(np.float32).mean(axis=2), axis=0))[:, :-1]
    best, where = -1.0, (0, 0)
    for t in range(0, max(1, g.shape[0] - size), step):
        for left in range(0, max(1, g.shape[1] - size), step):
            e = float(g[t : t + size, left : left + size].sum())
            if e > best:
                best, where = e, (t, left)
    return where


def detail_crop(hr: np.ndarray, size: int, scale: int) -> tuple[int, int, int]:
    """(size, top, left) of the :func:`busiest_crop`, all multiples of ``scale`` (LR-aligned)."""
    size -= size % scale
    top, left = busiest_crop(hr, size)
    return size, top - top % scale, left - left % scale


def degradation_crops(item, scale: int, size: int = 96, upscalers: dict | None = None) -> dict:
    """{label: crop} of one BenchmarkItem: HR, the LR (pixel-replicated), and each upscaler's output."""
    from ..evaluate import upscale
    from ..data.colour import to_uint8

    size, top, left = detail_crop(item.hr, size, scale)
    out = {"HR": crop(item.hr, top, left, size),
           f"LR (x1/{scale}, shown x{scale})": np.kron(crop(item.lr, top, left, size, scale),
                                                       np.ones((scale, scale, 1), np.uint8))}
    for label, model in (upscalers or {}).items():
        out[label] = crop(to_uint8(upscale(model, item.lr)), top, left, size)
    return out


def metric_boxplots(df, metric: str = "psnr", order: list | None = None, title: str = ""):
    """Per-image ``metric`` distributions, one box per method, one panel per (dataset, scale).

    ``df`` holds one row per image (``model, dataset, scale, image, <metric>``), as
    :func:`srlib.evaluate.evaluate` returns; means are marked with a white diamond.
    """
    order = order or list(dict.fromkeys(df["model"]))
    panels = list(df.groupby(["dataset", "scale"], sort=False).groups)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels) + 0.6, 3.6), squeeze=False)
    for ax, (ds, s) in zip(axes[0], panels):
        sub = df[(df.dataset == ds) & (df.scale == s)]
        present = [m for m in order if (sub.model == m).any()]
        data = [sub.loc[sub.model == m, metric].to_numpy() for m in present]
        ax.boxplot(data, tick_labels=present, showmeans=True, widths=0.6,
                   meanprops=dict(marker="D", markerfacecolor="white", markeredgecolor="black"))
        ax.set_title(f"{ds} x{s} ({len(data[0]) if data else 0} images)", fontsize=10)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_ylabel(metric.upper() + (" (dB)" if metric == "psnr" else ""))
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def method_crops(item, scale: int, upscalers: dict, size: int = 96, margin: int = 8) -> dict:
    """{label: crop} of one BenchmarkItem: the HR crop and each upscaler's reconstruction of it.

    Each upscaler runs on the LR region around the crop plus ``margin`` LR pixels of context
    (the slow patch-based methods need not run on the whole image); the crop is the square
    with the most detail. Labels carry the crop's PSNR on Y (the protocol, no border shave).
    """
    from ..data.colour import to_uint8
    from ..evaluate import upscale
    from ..metrics import psnr

    size, top, left = detail_crop(item.hr, size, scale)
    t0, l0 = max(0, top // scale - margin), max(0, left // scale - margin)
    region = item.lr[t0: top // scale + size // scale + margin, l0: left // scale + size // scale + margin]
    hr = crop(item.hr, top, left, size)
    out = {"HR": hr}
    for label, model in upscalers.items():
        sr = to_uint8(upscale(model, np.ascontiguousarray(region)))
        piece = crop(sr, top - t0 * scale, left - l0 * scale, size)
        out[f"{label} ({psnr(piece, hr, 0):.2f} dB)"] = piece
    return out


def patch_grid(rows: dict[str, list], size: float = 1.5, title: str = ""):
    """A grid of training patches: ``rows`` maps a row title to ``[(uint8 image, caption), ...]``
    (e.g. the patches FASS draws beside uniform draws, captioned with their scores,
    :func:`srlib.studies.hybrid.fass_rows`)."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows.values())
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(n_cols * size, n_rows * (size + 0.3)), squeeze=False)
    for i, (row_title, patches) in enumerate(rows.items()):
        for j, ax in enumerate(axes[i]):
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(patches):
                img, caption = patches[j]
                ax.imshow(img, interpolation="nearest")
                ax.set_title(str(caption), fontsize=8)
            else:
                ax.axis("off")
        axes[i, 0].set_ylabel(row_title, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def delta_boxplots(deltas, title: str = "", value: str = "delta", linthresh: float = 0.1, tie: float = 0.0):
    """Per-image PSNR differences of methods against their baselines: one horizontal box per
    comparison (the first on top), one panel per (dataset, scale), a line at 0, and at the right of
    each box on how many images the method is higher (``k/N``: delta above ``tie``, the rule of
    :func:`srlib.studies.stats.improvement_counts`). The axis is linear within +-``linthresh`` dB and
    logarithmic beyond (``symlog``), so a -5 dB arm and a +0.01 dB arm are both readable.
    ``deltas`` has columns ``comparison, dataset, scale, image, <value>``
    (:func:`srlib.studies.grand.deltas`)."""
    panels = list(deltas.groupby(["dataset", "scale"], sort=False).groups) or [("no data", 0)]
    names = list(dict.fromkeys(deltas["comparison"]))
    pos = list(range(len(names), 0, -1))
    # matplotlib 3.10 replaced vert=False by orientation= (pyproject allows >= 3.9)
    horizontal = {"orientation": "horizontal"} if _mpl_version() >= (3, 10) else {"vert": False}
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels) + 2.5, 0.28 * max(len(names), 3) + 1.2),
                             squeeze=False, sharey=True)
    for ax, (ds, s) in zip(axes[0], panels):
        sub = deltas[(deltas.dataset == ds) & (deltas.scale == s)]
        data = [sub.loc[sub.comparison == c, value].to_numpy() for c in names]
        if names:
            ax.boxplot([d if len(d) else [np.nan] for d in data], positions=pos, **horizontal, widths=0.6,
                       showmeans=True, meanprops=dict(marker="D", markerfacecolor="white", markeredgecolor="black",
                                                      markersize=4))
        ax.set_xscale("symlog", linthresh=linthresh)
        ax.axvline(0.0, color="grey", lw=0.8)
        ax.set_title(f"{ds} x{s}", fontsize=10)
        ax.set_xlabel("PSNR minus the baseline's (dB)", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
        right = ax.twinx()
        right.set_ylim(ax.get_ylim())
        right.set_yticks(pos, [f"{int((d > tie).sum())}/{len(d)}" if len(d) else "" for d in data], fontsize=7)
    axes[0, 0].set_yticks(pos, names, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def _mpl_version() -> tuple[int, int]:
    import matplotlib

    return tuple(int(x) for x in matplotlib.__version__.split(".")[:2])
