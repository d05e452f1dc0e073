"""Published PSNR/SSIM the project compares against (our copy; each row names its source).

``published_results.csv`` holds one row per (source, model, scale, dataset): the AWSRN paper
table, the RCAN paper's bicubic rows, the comparators' papers and logs, seed 000's Tables I/II
and the classical methods of seed 002's comparison. Y channel, border = scale, MATLAB bicubic LR.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd


@lru_cache(maxsize=1)
def _table() -> pd.DataFrame:
    with resources.files("srlib.reference").joinpath("published_results.csv").open() as fh:
        return pd.read_csv(fh)


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
