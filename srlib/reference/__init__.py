"""Published numbers the project compares against (our copies; each row names its source).

``published_results.csv`` (:func:`published`) holds one row per (source, model, scale, dataset)
of PSNR/SSIM: the AWSRN paper table, the RCAN paper's bicubic rows, the comparators' papers and
logs, seed 000's Tables I/II and the classical methods of seed 002's comparison. Y channel,
border = scale, MATLAB bicubic LR.

``published_complexity.csv`` (:func:`published_complexity`) holds one row per (source, model,
scale) of model size: the AWSRN paper's parameter counts and, where we have them, its
Multi-Adds (in G, for a 1280x720 output; empty where the paper's value is not in our copy).
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd


@lru_cache(maxsize=None)
def _read(name: str) -> pd.DataFrame:
    with resources.files("srlib.reference").joinpath(name).open() as fh:
        return pd.read_csv(fh)


def _table() -> pd.DataFrame:
    return _read("published_results.csv")


def published(model: str | None = None, dataset: str | None = None, scale: int | None = None) -> pd.DataFrame:
    """Published rows, filtered by any of model / dataset / scale."""
    df = _table()
    if model is not None:
        df = df[df.model == model]
    if dataset is not None:
        df = df[df.dataset == dataset]
    if scale is not None:
        df = df[df.scale == scale]
    return df.reset_index(drop=True)


def published_complexity(model: str | None = None, scale: int | None = None) -> pd.DataFrame:
    """Published parameter counts and Multi-Adds, filtered by model / scale.

    Columns: ``source, model, scale, params`` (int), ``multi_adds_G`` (float, NaN where the
    paper's value is not in our copy), ``note``.
    """
    df = _read("published_complexity.csv")
    if model is not None:
        df = df[df.model == model]
    if scale is not None:
        df = df[df.scale == scale]
    return df.reset_index(drop=True)
