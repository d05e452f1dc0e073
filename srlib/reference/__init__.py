"""Published numbers the project compares against (our copies; each row names its source).

``published_results.csv`` (:func:`published`) holds one row per (source, model, scale, dataset)
of PSNR/SSIM: the AWSRN paper table, the RCAN paper's bicubic rows, the comparators' papers and
logs, seed 000's Tables I/II and the classical methods of seed 002's comparison. Y channel,
border = scale, MATLAB bicubic LR.

``published_complexity.csv`` (:func:`published_complexity`) holds one row per (source, model,
scale) of model size: the AWSRN paper's parameter counts and, where we have them, its
Multi-Adds (in G, for a 1280x720 output; empty where the paper's value is not in our copy).

``paper_numbers.csv`` holds the printed numbers and claims of the four papers that live in neither
file (seed 002's claims, seed 003's ablation text and Tables 2-4); :func:`paper_numbers` joins it
with the rows of the two files above that the scorecard checks (notebook 06,
:mod:`srlib.studies.scorecard`), so no number is typed twice.
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


#: the papers whose printed numbers the scorecard lists, in its order: the comparators whose
#: official weights prove the pipeline first, then the four seeds (``paper`` column -> title)
PAPERS = {
    "PAN": "PAN (Zhao et al. 2020), official weights",
    "IMDN": "IMDN (Hui et al. 2019), official weights",
    "CARN-M": "CARN-M (Ahn et al. 2018), official weights",
    "LatticeNet": "LatticeNet (Luo et al. 2020), official weights",
    "seed 000": "seed 000: improved AWSRN (Dong et al. 2025)",
    "seed 001": "seed 001: AWSRN (Wang, Li & Shi 2019), the paper's table",
    "seed 002": "seed 002: CNN vs INTER, ML, SC (Yan et al. 2024)",
    "seed 003": "seed 003: IMFM",
}
#: registered zoo model -> ``paper`` of its published rows (A2F and RFDN: no published table found,
#: ../shared/pretrained/README.md; full CARN: no weights file)
COMPARATORS = {"pan": "PAN", "imdn": "IMDN", "carn-m": "CARN-M", "latticenet": "LatticeNet"}
#: ``published_results.csv`` sources of the papers' own tables
AWSRN_SOURCE = "Wang et al. 2019 AWSRN paper table"
SEED000_SOURCE = "seed 000 (Dong et al. 2025) Table I/II"
#: seed 002's ML and SC baselines as the literature quotes them (the models of published_results.csv)
SEED002_CITED = ("ne (NE+LLE)", "sc (Yang et al.)")
NUMBER_COLUMNS = ["paper", "where", "model", "dataset", "scale", "metric", "value", "note", "origin"]


def _metric_rows(df: pd.DataFrame, paper: str, metrics, origin: str) -> list[dict]:
    """One row per (published row, metric) with a value: ``where`` is the row's source."""
    rows = []
    for r in df.to_dict("records"):
        for m in metrics:
            if pd.notna(r.get(m)):
                rows.append({"paper": paper, "where": r["source"], "model": r["model"], "dataset": r.get("dataset"),
                             "scale": r["scale"], "metric": m, "value": float(r[m]),
                             "note": r["note"] if isinstance(r.get("note"), str) else "", "origin": origin})
    return rows


def _seed000_gains(pub: pd.DataFrame) -> list[dict]:
    """Seed 000's text gains (Sec. 4: '+0.83 dB/+0.0207' ...): Table I/II's improved minus AWSRN rows."""
    pub = pub[pub.source == SEED000_SOURCE]
    rows = []
    for (ds, s), g in pub.groupby(["dataset", "scale"], sort=False):
        g = g.set_index("model")
        for m in ("psnr", "ssim"):
            gain = g[m]["improved awsrn (claimed)"] - g[m]["awsrn (as cited by seed 000)"]
            rows.append({"paper": "seed 000", "where": "Sec. 4 text (gains over AWSRN)",
                         "model": "improved awsrn (claimed)",
                         "dataset": ds, "scale": s, "metric": f"{m}_gain", "value": round(float(gain), 4),
                         "note": "derived: Table I/II's improved row minus its AWSRN row, as the text prints it",
                         "origin": "published_results.csv (derived)"})
    return rows


def paper_numbers() -> pd.DataFrame:
    """Every printed number and claim the scorecard checks, one row each, in :data:`PAPERS` order.

    Columns: ``paper`` (a key of :data:`PAPERS`), ``where`` (table, figure, sentence or source),
    ``model``, ``dataset`` and ``scale`` (NaN where the paper names none), ``metric`` (``psnr``,
    ``ssim``, ``psnr_gain``, ``params``, ``params_K``, ``multi_adds_G``, ``seconds``, ``claim``,
    ...), ``value`` (NaN for a claim, which ``note`` states), ``note`` and ``origin`` (the file
    the row comes from). Made from ``published_results.csv`` (the comparators with official
    weights, the AWSRN paper's table, seed 000's Tables I/II and the text gains derived from them,
    the literature's NE+LLE/ScSR rows seed 002 is held to), ``published_complexity.csv`` (the AWSRN
    paper's counts) and ``paper_numbers.csv`` (the rest).
    """
    pub, cx = _table(), _read("published_complexity.csv")
    rows = []
    for model, paper in COMPARATORS.items():
        rows += _metric_rows(pub[pub.model == model], paper, ("psnr", "ssim"), "published_results.csv")
    rows += _metric_rows(pub[pub.source == SEED000_SOURCE], "seed 000", ("psnr", "ssim"), "published_results.csv")
    rows += _seed000_gains(pub)
    rows += _metric_rows(pub[pub.source.str.startswith(AWSRN_SOURCE)], "seed 001", ("psnr", "ssim"),
                         "published_results.csv")
    rows += _metric_rows(cx, "seed 001", ("params", "multi_adds_G"), "published_complexity.csv")
    rows += _metric_rows(pub[pub.model.isin(SEED002_CITED)], "seed 002", ("psnr", "ssim"), "published_results.csv")
    own = _read("paper_numbers.csv").assign(origin="paper_numbers.csv")
    rows += own.to_dict("records")
    df = pd.DataFrame(rows, columns=NUMBER_COLUMNS)
    df["scale"] = df.scale.astype("Int64")
    df["note"] = df.note.fillna("")
    df["order"] = df.paper.map(list(PAPERS).index)
    return df.sort_values("order", kind="stable").drop(columns="order").reset_index(drop=True)
