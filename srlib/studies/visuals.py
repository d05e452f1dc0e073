"""Notebook 07 (look rather than read): which methods and paper figures there are to look at.

Notebook 07 trains nothing. It shows what the earlier notebooks left: bicubic, the zoo's official
weights found under ``SRLIB_WEIGHTS_DIR``, and the trained arms of the studies ``02-awsrn-s``,
``03-ablation``, ``05-imfm`` and ``seed002-cnn`` whose runs have finished
(:meth:`Study.state`, read without training). A method or a figure whose run is missing is left
out with the reason (which study, which notebook makes it); in ``make reproduce`` notebooks
02-06 run first, so everything is there.

- :func:`widget_methods`: ``{label: model}`` at x4 for the swipe comparer, and a table of what
  is shown and what is not (and why);
- :func:`widget_items`: the images the comparer offers (the figures' images where the profile
  evaluates their benchmark, else the first image of each benchmark it evaluates);
- :func:`paper_figures`: the inputs of seed 000's Fig. 4, seed 003's Figs 5-6 and seed 002's
  Fig. 2 (benchmark items and ``{label: model}``), or the reason a figure is skipped; the notebook
  draws them with :func:`srlib.viz.method_crops` and :func:`srlib.viz.crop_panel` (studies come
  before viz in the layering, so this module draws nothing).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..data.catalog import display_name
from ..data.datasets import BenchmarkSet, benchmark_item
from ..models import build_upscaler
from ..models.zoo.weights import CATALOG, load_pretrained
from ..profiles import get_profile
from .core import _eval_checkpoint
from .registry import get_study

SCALE = 4
#: the trained models notebook 07 shows when their runs have finished: (study, arm, label, notebook)
TRAINED = (("02-awsrn-s", "awsrn-s-x4", "ours: awsrn-s (02)", "02"),
           ("03-ablation", "baseline", "ours: 03 baseline", "03"),
           ("03-ablation", "all-on", "ours: 03 all-on", "03"),
           ("05-imfm", "imfm", "ours: imfm (05)", "05"),
           ("seed002-cnn", "cnn-x4", "ours: cnn (seed 002)", "06"))
#: the benchmark images of the paper figures, shown first in the comparer where evaluated
FIGURE_IMAGES = (("Urban100", "img_012"), ("B100", "253027"))


def _not_finished(study, arms, notebook: str) -> str | None:
    """Why ``arms`` of ``study`` cannot be shown (None when every one has finished)."""
    for name in arms:
        try:
            arm = study.arm(name)
        except KeyError:
            return f"study {study.name} has no arm {name!r} in profile {study.profile_name}"
        st = study.state(arm)
        if st["state"] != "finished":
            return (f"study {study.name}, arm {arm.label}: {st['status']} in profile {study.profile_name}; "
                    f"notebook {notebook} trains it (make reproduce runs 02-06 before 07)")
    return None


def widget_methods(profile, scale: int = SCALE, official: bool = True, trained: bool = True) -> tuple[dict, pd.DataFrame]:
    """``({label: model}, table)``: bicubic, each zoo model with official weights on disk, each
    finished arm of :data:`TRAINED`; the table has one row per candidate with ``shown`` and,
    when it is not shown, ``why``."""
    p = get_profile(profile)
    methods = {"bicubic": build_upscaler("bicubic", scale)}
    rows = [{"method": "bicubic", "source": "MATLAB imresize", "shown": True, "why": ""}]
    for name in [n for n, s in CATALOG if s == scale] if official else []:
        label = f"{name} (official)"
        try:
            methods[label] = load_pretrained(name, scale)
            rows.append({"method": label, "source": "official weights", "shown": True, "why": ""})
        except FileNotFoundError as exc:
            rows.append({"method": label, "source": "official weights", "shown": False, "why": str(exc)})
    for study_name, arm, label, nb in TRAINED if trained else ():
        study = get_study(study_name, p)
        why = _not_finished(study, [arm], nb)
        if why is None:
            m = study.load_model(arm)
            if getattr(m, "scale", scale) != scale:
                why = f"arm {arm} is x{m.scale}, the comparer x{scale}"
            else:
                methods[label] = m
        rows.append({"method": label, "source": f"study {study_name}, arm {arm}", "shown": why is None,
                     "why": why or ""})
    return methods, pd.DataFrame(rows)


def _find(dataset: str, name: str, scale: int):
    """The item ``name`` of ``dataset`` at ``scale`` (:func:`~srlib.data.datasets.benchmark_item`)
    and its label."""
    item = benchmark_item(dataset, name, scale)
    return f"{display_name(dataset)} {item.name}", item


def widget_items(profile, scale: int = SCALE) -> dict:
    """``{label: item}``: the figure images (:data:`FIGURE_IMAGES`) where the profile evaluates
    their benchmark, then the first image of each benchmark it evaluates (all of the first
    ``eval_max_images`` in ``smoke``)."""
    p = get_profile(profile)
    out = {}
    for ds, name in FIGURE_IMAGES:
        if ds in p.eval_datasets:
            label, item = _find(ds, name, scale)
            out[label] = item
    per_set = p.eval_max_images if p.name == "smoke" else 1
    for ds in p.eval_datasets:
        bench = BenchmarkSet(ds, scale, max_images=per_set)
        for item in bench:
            out.setdefault(f"{bench.name} {item.name}", item)
    return out


@dataclass
class PaperFigure:
    """One paper figure to rebuild: ``items`` x ``methods`` crops, or ``skipped`` with the reason."""

    key: str
    title: str
    source: str
    items: list = field(default_factory=list)
    methods: dict = field(default_factory=dict)
    scale: int = SCALE
    skipped: str | None = None

    @property
    def status(self) -> str:
        return f"skipped: {self.skipped}" if self.skipped else f"shown ({len(self.items)} image(s), {len(self.methods)} methods)"


def seed000_figure4(profile) -> PaperFigure:
    """Seed 000's Fig. 4: bicubic, the 03 baseline and the all-on arm on :func:`improved.figure4_item`."""
    from . import improved

    fig = PaperFigure("07_seed000_fig4", "seed 000 Fig. 4", "study 03-ablation (arms baseline, all-on)")
    study = get_study("03-ablation", profile)
    fig.skipped = _not_finished(study, ("baseline", "all-on"), "03")
    if fig.skipped is None:
        fig.items = [improved.figure4_item(profile)]
        fig.methods = {"bicubic": build_upscaler("bicubic", SCALE), **improved.figure4_models(study)}
    return fig


def seed003_figures5_6(profile) -> PaperFigure:
    """Seed 003's Figs 5-6: :func:`imfm.figure_methods` on B100 253027 and Urban100 img_012."""
    from . import imfm

    fig = PaperFigure("07_seed003_figs5_6", "seed 003 Figs 5-6", "study 05-imfm (imfm and its comparators)")
    study = get_study("05-imfm", profile)
    fig.skipped = _not_finished(study, ("imfm", *imfm.comparators(profile)), "05")
    if fig.skipped is None:
        try:
            fig.methods = imfm.figure_methods(study)
        except FileNotFoundError as exc:  # a comparator's official weights are not on disk
            fig.skipped = str(exc)
            return fig
        fig.items = [_find(ds, name, imfm.SCALE)[1] for ds, name in imfm.FIGURE_IMAGES]
    return fig


def seed002_figure2(profile) -> PaperFigure:
    """Seed 002's Fig. 2: INTER, NE+LLE, ScSR and the CNN on the first Urban100 image at the largest
    compared scale (as notebook 06 draws it); NE and SC need the dictionaries notebook 06 learned."""
    from . import seed002

    p = get_profile(profile)
    s = max(p.seed002.scales)
    fig = PaperFigure("07_seed002_fig2", "seed 002 Fig. 2", "study seed002-cnn and notebook 06's dictionaries",
                      scale=s)
    study = get_study("seed002-cnn", p)
    fig.skipped = _not_finished(study, [f"cnn-x{s}"], "06")
    if fig.skipped is None:
        for m in ("ne", "sc"):
            path = build_upscaler(m, s, None, p.name).cache_path()
            if not path.is_file():
                fig.skipped = f"the {m} x{s} dictionary is not learned yet ({path.name}); notebook 06 learns it"
                return fig
        run = study.state(study.arm(f"cnn-x{s}"))["run_dir"]
        fig.items = [BenchmarkSet("Urban100", s, max_images=1)[0]]
        fig.methods = seed002.method_modules(p.name, s, {s: _eval_checkpoint(run)})
    return fig


def paper_figures(profile) -> list[PaperFigure]:
    """Seed 000 Fig. 4, seed 003 Figs 5-6, seed 002 Fig. 2: each ready to draw or skipped with the reason."""
    return [seed000_figure4(profile), seed003_figures5_6(profile), seed002_figure2(profile)]


def figures_table(figures: list[PaperFigure]) -> pd.DataFrame:
    """One row per paper figure: where it comes from and whether it is shown (or why not)."""
    return pd.DataFrame([{"figure": f.title, "from": f.source, "status": f.status} for f in figures])
