"""The grand table of notebook 06: every method of the project on every benchmark, side by side.

:func:`grand_table` gathers, for each method x benchmark x scale the method supports:

- **INTER** (``nearest``, ``bilinear``, ``bicubic``), **NE** and **SC** (``ne``, ``sc``: their
  dictionaries as notebook 06 part A learned them);
- every arm of the project's studies (:data:`STUDIES`): the seed 002 CNN, the AWSRN-S baseline of
  notebook 02, the improved AWSRN arms of 03, the arms of 04, IMFM and its variants of 05 (an arm
  trained at several scales, ``cnn-x2`` and ``cnn-x4``, is one method; several seeds of an arm
  are averaged, per image);
- the zoo with official weights (:data:`srlib.models.zoo.weights.CATALOG`: PAN, IMDN, CARN-M,
  LatticeNet, A2F-S, A2F-SD, RFDN).

Columns (:data:`COLUMNS`): PSNR and SSIM (the protocol of ``DESIGN.md``), ``n_images`` and which
(``images``: ``all`` or ``first N``), parameters and Multi-Adds (:mod:`srlib.complexity`, one
forward pass giving a 1280x720 output, :data:`OUT_HW`), CPU seconds per image and where they come
from (``time_source``), ``status`` and ``source`` (study/arm/seed and run folder, the weight file,
the dictionary file).

It trains nothing. Study arms are read through :meth:`Study.state` and the evaluations cached
beside each run (or in ``results/<profile>/evaluations/``, where notebook 06 part A evaluates the
CNN) with ``evaluate_cached(..., cached_only=True)``; an arm without a finished run is a row
``not run (run notebook NN / srlib study run NAME --profile P)``, one whose evaluation is not
cached says so. Only what :data:`EVALUATE` names for the profile is evaluated when it is not
cached (INTER and the official weights; every other evaluation belongs to the notebook that
produces the method), and the cost is recorded (:attr:`GrandTable.evaluated`).

CPU seconds per image are the ``seconds`` column of the evaluations (the forward pass of each
image, measured when the part was computed, on the threads its JSON sidecar records). Where a row's
numbers come from an evaluation made on a GPU, one forward pass is timed here on the CPU on the
first image of the benchmark with random weights (time does not depend on the weights' values),
and ``time_source`` says so; ``measure=False`` leaves those NaN. Rows without numbers are not
timed: timing every missing (model, benchmark, scale) once took ~7 minutes of ``quick``'s 15
(the official models at x2 on Urban100 take tens of seconds per pass on this CPU).

The per-image rows behind the table (:attr:`GrandTable.per_image`) give
:func:`improvement_table`: for each method against its baseline (:func:`comparisons`), per
benchmark and scale, on how many of the images both have the method's PSNR is higher, equal or
lower (:func:`srlib.studies.stats.improvement_counts`).

Readings chosen:

- a study arm's PSNR on a benchmark is the mean over its seeds of the per-seed means (each seed on
  the same images); its per-image value, for the counts, the mean over seeds;
- NE and SC have no parameters in the network sense (a dictionary of patches): ``params`` is NaN;
  INTER has 0 parameters; Multi-Adds are NaN for all three;
- a comparison is made on the images both methods were evaluated on (03 evaluates the first 20
  images of each benchmark in ``quick``, 02 all of them: 20 pairs);
- the official weights are evaluated on every image (``max_images=None``), whatever the
  profile: these are the evaluations :func:`srlib.studies.scorecard.official_means` reads, so
  the grand table computes them once for both.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd
import torch

from ..classical import CLASSICAL, DESCRIPTIONS
from ..complexity import count_params, multi_adds, time_forward
from ..data.catalog import display_name
from ..data.datasets import BenchmarkSet
from ..evalcache import evaluate_cached
from ..evaluate import write_table
from ..models import build_model, build_upscaler
from ..models.zoo import ZOO_ENTRIES
from ..models.zoo.weights import CATALOG
from ..paths import project_root, results_dir
from ..profiles import get_profile
from ..provenance import provenance
from .core import _eval_checkpoint
from .registry import get_study
from .scorecard import NOTEBOOK
from .stats import TIE_DB, improvement_counts

#: the project's studies in the table, in row order, with the family their arms are listed under
STUDIES = {
    "seed002-cnn": "seed 002 CNN",
    "02-awsrn-s": "AWSRN family (02)",
    "03-ablation": "improved AWSRN arms (03)",
    "04-hybrid-mpts": "hybrid loss / MPTS arms (04)",
    "05-imfm": "IMFM and variants (05)",
}
INTER = ("nearest", "bilinear", "bicubic")
LEARNED_CLASSICAL = {"ne": "NE (NE+LLE)", "sc": "SC (ScSR)"}
ZOO_FAMILY = "zoo (official weights)"
#: the models with official weight files, in the catalog's order
ZOO = tuple(dict.fromkeys(name for name, _ in CATALOG))
#: the output size Multi-Adds are counted at (height, width)
OUT_HW = (720, 1280)
COLUMNS = ["family", "method", "dataset", "scale", "psnr", "ssim", "n_images", "images", "params", "multi_adds_G",
           "cpu_s_per_image", "time_source", "status", "source"]
OK = "ok"

_ALL = (None, None)
_SMALL_X4 = (("Set5", "Set14"), (4,))
#: what :func:`grand_table` evaluates when no cached evaluation exists, per profile: ``{method:
#: (datasets, scales)}`` (None: every one of the table). Everything else is only read. Costs
#: measured here (one thread, load ~2.5 on 2 cores, so upper bounds): an official model's x4
#: forward pass takes 0.1-1.2 s on a Set5 or Set14 image, 0.2-0.9 s on B100, 1.1-4.2 s on Urban100
#: (all seven at x4 on the four benchmarks: ~35 minutes, beyond notebook 06's share), so ``quick``
#: evaluates them at x4 on Set5 and Set14 (19 images each, ~1.5 minutes for the seven) and reads
#: the rest where cached; bicubic on everything is notebook 01's (cached); nearest and bilinear
#: cost about as much as bicubic (~4 minutes each on the four benchmarks at three scales), so
#: ``quick`` evaluates them on Set5 and Set14. A profile not named here takes ``full``'s.
EVALUATE = {
    "smoke": {"nearest": _ALL, "bilinear": _ALL, "bicubic": _ALL, "pan": (("Set5",), (4,))},
    "quick": {"bicubic": _ALL, "nearest": (("Set5", "Set14"), None), "bilinear": (("Set5", "Set14"), None),
              **{m: _SMALL_X4 for m in ZOO}},
    "full": {**{m: _ALL for m in INTER}, **{m: _ALL for m in ZOO}},
}


@dataclass(frozen=True)
class Method:
    """One row group of the grand table.

    Args:
        label: the ``method`` column (``bicubic``, ``03-ablation:all-on``, ``pan (official)``).
        family: the ``family`` column.
        kind: ``'classical'``, ``'learned classical'``, ``'study'`` or ``'official'``.
        name: the registered upscaler (a study arm's model).
        scales: the scales the method is in the table at.
        study, stem: a study arm's study and its name without the ``-x<s>`` suffix.
    """

    label: str
    family: str
    kind: str
    name: str
    scales: tuple
    study: str | None = None
    stem: str | None = None


@dataclass
class GrandTable:
    """What :func:`grand_table` returns: the table, its per-image rows, its comparisons, what
    it evaluated (``{'method', 'dataset', 'scale', 'seconds'}`` each), the files it wrote and its
    wall time."""

    profile: str
    table: pd.DataFrame
    per_image: pd.DataFrame
    pairs: pd.DataFrame
    evaluated: list = field(default_factory=list)
    files: list = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> list[str]:
        """Lines for the notebook: methods measured and not, what was evaluated and its cost, files."""
        t = self.table
        has = t.status.str.startswith(OK)
        ok = t[has]
        missing = t[~has].drop_duplicates("method")
        spent = sum(e["seconds"] for e in self.evaluated)
        lines = [f"{len(t)} rows ({t.method.nunique()} methods x benchmarks x scales); {ok.method.nunique()} methods "
                 f"with numbers in {len(ok)} rows, {len(missing)} methods with rows missing",
                 f"evaluated here (not cached before): {len(self.evaluated)} parts in {spent:.0f} s"
                 + (": " + ", ".join(f"{e['method']} {e['dataset']} x{e['scale']}" for e in self.evaluated)
                    if self.evaluated else ""),
                 f"built in {self.seconds:.0f} s"]
        return lines + [f"written: {f}" for f in self.files]


# ---------------------------------------------------------------- methods and their baselines

def _stem(arm_name: str, scale: int) -> str:
    return arm_name.removesuffix(f"-x{scale}")


def methods(profile, studies=tuple(STUDIES), zoo=ZOO, classical=(*INTER, *LEARNED_CLASSICAL)) -> list[Method]:
    """The methods of the table for ``profile``: ``classical`` at the profile's scales, every arm
    of ``studies`` (one method per arm name less its ``-x<s>`` suffix) and ``zoo`` at the scales
    its official files cover."""
    p = get_profile(profile)
    scales = tuple(p.eval_scales)
    out = []
    for name in classical:
        if name not in CLASSICAL:
            raise KeyError(f"classical={name!r}: not a classical method; known: {', '.join(CLASSICAL)}")
        fam = LEARNED_CLASSICAL.get(name, "INTER")
        out.append(Method(name, fam, "learned classical" if name in LEARNED_CLASSICAL else "classical", name, scales))
    for sname in studies:
        study = get_study(sname, p)
        groups: dict = {}
        for a in study.arms:
            groups.setdefault(_stem(a.name, a.scale), (a.model, set()))[1].add(a.scale)
        for stem, (model, sc) in groups.items():
            out.append(Method(f"{sname}:{stem}", STUDIES.get(sname, sname), "study", model, tuple(sorted(sc)),
                              sname, stem))
    for name in zoo:
        sc = tuple(s for s in scales if (name, s) in CATALOG)
        if not sc:
            continue
        out.append(Method(f"{name} (official)", ZOO_FAMILY, "official", name, sc))
    return out


def comparisons(meths: list[Method], profile) -> pd.DataFrame:
    """Each method against its baseline(s): columns ``method, baseline, kind``.

    - a study arm against its study's baseline arm (``kind='study baseline'``); an arm of a zoo
      model (05's IMDN) is not an IMFM variant and is left out; ``<arm>-cos`` against ``<arm>``
      (the schedule comparison of 05, ``'schedule'``);
    - 03's all-on arm against 02's AWSRN-S where 03 fine-tunes the same model (``'from 02'``);
    - the seed 002 CNN against SC, NE and bicubic (``'seed 002'``);
    - every learned method (NE, SC, study arms, official weights) against bicubic (``'bicubic'``).
    """
    p = get_profile(profile)
    labels = {m.label for m in meths}
    rows = []
    by_study: dict = {}
    for m in meths:
        if m.kind == "study":
            by_study.setdefault(m.study, {})[m.stem] = m
    for sname, arms in by_study.items():
        study = get_study(sname, p)
        base = study.baseline
        for stem, m in arms.items():
            if stem.endswith("-cos") and stem[:-4] in arms:
                rows.append((m.label, arms[stem[:-4]].label, "schedule"))
            elif base and stem != base and base in arms and m.name not in ZOO_ENTRIES:
                rows.append((m.label, arms[base].label, "study baseline"))
    awsrn, allon = by_study.get("02-awsrn-s", {}), by_study.get("03-ablation", {})
    if "awsrn-s" in awsrn and "all-on" in allon and allon.get("baseline") \
            and allon["baseline"].name == awsrn["awsrn-s"].name:
        rows.append((allon["all-on"].label, awsrn["awsrn-s"].label, "from 02"))
    cnn = by_study.get("seed002-cnn", {}).get("cnn")
    if cnn is not None:
        rows += [(cnn.label, b, "seed 002") for b in ("sc", "ne", "bicubic") if b in labels]
    if "bicubic" in labels:
        rows += [(m.label, "bicubic", "bicubic") for m in meths if m.kind != "classical"]
    out = pd.DataFrame(rows, columns=["method", "baseline", "kind"])
    return out.drop_duplicates(["method", "baseline"], ignore_index=True)


# ---------------------------------------------------------------- reading evaluations

def _sidecar(csv: str | Path) -> dict:
    try:
        return json.loads(Path(csv).with_suffix(".json").read_text())
    except (OSError, ValueError):
        return {}


def _image_keys(p, ds: str, first=None) -> list:
    """``max_images`` values a cached evaluation of ``ds`` may have been made with (every image first)."""
    keys = [None, first, p.eval_max_images, *(p.budget(k).images for k in ("03", "04", "05"))]
    if display_name(ds) == "Urban100":
        keys.append(p.seed002.urban100_images)
    return list(dict.fromkeys(keys))


def _read(name: str, ds: str, s: int, p, keys: list, variants: list, **kw):
    """The first cached evaluation of ``name`` on ``ds`` x ``s`` over ``variants`` (extra
    ``evaluate_cached`` arguments) and ``keys`` (``max_images``): ``(rows, max_images, sidecar)``
    or None. Computes nothing."""
    for extra in variants:
        for mi in keys:
            df = evaluate_cached(name, [ds], [s], profile=p.name, max_images=mi, cached_only=True, **kw, **extra)
            if len(df):
                return df, mi, _sidecar(df.attrs["cache_files"][f"{display_name(ds)} x{s}"])
    return None


def _devices() -> list:
    return [{"device": "cpu"}, {"device": "cuda"}]


@lru_cache(maxsize=None)
def _complexity(name: str, scale: int, kwargs: str = "{}") -> tuple[float, float]:
    """(parameters, Multi-Adds in G at :data:`OUT_HW`) of a registered model; NaN where the model
    cannot run on the meta device."""
    with torch.random.fork_rng(devices=[]):
        model = build_model(name, scale, **json.loads(kwargs))
    try:
        ma = multi_adds(model, scale, OUT_HW) / 1e9
    except Exception:  # e.g. an op without a meta kernel: no count, NaN says so
        ma = math.nan
    return float(count_params(model)), ma


@lru_cache(maxsize=None)
def _time_once(name: str, scale: int, kwargs: str, ds: str, threads: int) -> tuple[float, str]:
    """Seconds of one forward pass (after one warm-up) of ``name`` with random weights on the
    first image of ``ds`` at ``scale``, and a note saying so."""
    item = BenchmarkSet(ds, scale, max_images=1)[0]
    h, w = item.lr.shape[:2]
    with torch.random.fork_rng(devices=[]):
        model = build_model(name, scale, **json.loads(kwargs)).eval()
    secs = time_forward(model, (h, w), repeats=1, warmup=1)
    return secs, f"measured here: 1 forward pass on {item.name} ({h}x{w} LR), random weights, {threads} thread(s)"


def _timing(rows: pd.DataFrame, meta: list) -> tuple[float, str] | None:
    """Mean CPU seconds per image from evaluations made on the CPU, with their threads; None if not."""
    devs = {(m.get("key") or {}).get("protocol", {}).get("device") for m in meta}
    if devs != {"cpu"}:
        return None
    threads = sorted({m.get("threads") for m in meta if m.get("threads")})
    return float(rows.seconds.mean()), (f"evaluation ({len(rows)} image passes, "
                                        f"{'/'.join(map(str, threads)) or '?'} thread(s))")


def _images_label(max_images, n: int) -> str:
    return "all" if max_images is None else f"first {min(int(max_images), n)}"


class _Builder:
    """One :func:`grand_table` call: the profile, what may be evaluated, the rows gathered."""

    def __init__(self, p, datasets, plan, measure: bool, evaluate_runs: bool):
        self.p, self.datasets, self.plan = p, list(datasets), plan
        self.measure, self.evaluate_runs = measure, evaluate_runs
        self.rows, self.per_image, self.evaluated, self.sources = [], [], [], {}

    # -- one row
    def add(self, m: Method, ds: str, s: int, parts: list | None, status: str, source: str,
            complexity=(math.nan, math.nan), timing_args=None):
        """``parts``: ``[(rows, max_images, sidecar), ...]`` (one per seed) or None (no numbers)."""
        row = {"family": m.family, "method": m.label, "dataset": display_name(ds), "scale": s, "psnr": math.nan,
               "ssim": math.nan, "n_images": 0, "images": "", "params": complexity[0], "multi_adds_G": complexity[1],
               "cpu_s_per_image": math.nan, "time_source": "", "status": status, "source": source}
        timing = None
        if parts:
            frames = [df for df, _, _ in parts]
            row.update(psnr=float(pd.Series([f.psnr.mean() for f in frames]).mean()),
                       ssim=float(pd.Series([f.ssim.mean() for f in frames]).mean()),
                       n_images=len(frames[0]), images=_images_label(parts[0][1], len(frames[0])))
            timing = _timing(pd.concat(frames), [meta for _, _, meta in parts])
            for df, _, _ in parts:
                self.sources.update({display_name(ds): v for v in df.source.unique()})
                self.per_image.append(df.assign(method=m.label, family=m.family, dataset=display_name(ds), scale=s,
                                                seed=df.attrs.get("seed", math.nan))
                                      [["family", "method", "dataset", "scale", "seed", "image", "psnr", "ssim",
                                        "seconds"]])
        if timing is None and parts and timing_args is not None and self.measure:
            try:
                timing = _time_once(*timing_args, ds, torch.get_num_threads())
            except Exception as exc:  # a benchmark not on this machine: say why there is no time
                timing = (math.nan, f"not measured: {type(exc).__name__}: {exc}")
        if timing is not None:
            row["cpu_s_per_image"], row["time_source"] = timing
        else:
            row["time_source"] = "not measured" + ("" if parts else " (no evaluation)")
        self.rows.append(row)

    # -- evaluate what the plan allows
    def planned(self, name: str, ds: str, s: int) -> bool:
        if name not in self.plan:
            return False
        dss, scs = self.plan[name]
        return (dss is None or display_name(ds) in dss) and (scs is None or s in scs)

    def compute(self, name: str, ds: str, s: int, max_images, **kw):
        t0 = time.perf_counter()
        df = evaluate_cached(name, [ds], [s], profile=self.p.name, max_images=max_images, device="cpu", **kw)
        self.evaluated.append({"method": name, "dataset": display_name(ds), "scale": s,
                               "seconds": round(time.perf_counter() - t0, 1)})
        return df, max_images, _sidecar(df.attrs["cache_files"][f"{display_name(ds)} x{s}"])

    # -- method kinds
    def classical(self, m: Method):
        p = self.p
        for s in m.scales:
            learned = m.kind == "learned classical"
            source = DESCRIPTIONS.get(m.name, m.name)
            if learned:
                up = build_upscaler(m.name, s, profile=p.name)
                path = up.cache_path()
                if not (path.is_file() and path.with_suffix(".json").is_file()):
                    for ds in self.datasets:
                        self.add(m, ds, s, None, f"not run (its x{s} dictionary is not learned: run notebook 06 "
                                                 f"part A, seed002.learn_classical)", source)
                    continue
                source = f"dictionary {path.name} ({p.name})"
            for ds in self.datasets:
                got = _read(m.name, ds, s, p, _image_keys(p, ds), [{}])
                if got is None and self.planned(m.name, ds, s):
                    got = self.compute(m.name, ds, s, p.eval_max_images)
                if got is None:
                    why = ("NE and SC take tens of CPU seconds per image; notebook 06 part A evaluates Set5, Set14 "
                           "and the first Urban100 images" if learned else
                           f"no cached evaluation, and grand.EVALUATE does not compute this one in {p.name}")
                    self.add(m, ds, s, None, f"not evaluated ({why})", source)
                else:
                    self.add(m, ds, s, [got], OK, source, (0.0, math.nan) if not learned else (math.nan, math.nan))

    def official(self, m: Method):
        p = self.p
        for s in m.scales:
            wf = CATALOG[m.name, s]
            source = f"{Path(wf.relpath).name} (official weights)"
            cx = _complexity(m.name, s)
            for ds in self.datasets:
                try:
                    got = _read(m.name, ds, s, p, [None], _devices(), checkpoint="official")
                    if got is None and self.planned(m.name, ds, s):
                        got = self.compute(m.name, ds, s, None, checkpoint="official")
                except FileNotFoundError as exc:
                    self.add(m, ds, s, None, f"not available (official weights not found: {exc})", source, cx,
                             (m.name, s, "{}"))
                    continue
                status = OK if got else (f"not evaluated (no cached evaluation on every image; grand.EVALUATE "
                                         f"does not compute this one in {p.name}, the full profile does)")
                self.add(m, ds, s, [got] if got else None, status, source, cx, (m.name, s, "{}"))

    def study(self, m: Method):
        p = self.p
        study = get_study(m.study, p)
        how = (f"run notebook {NOTEBOOK.get(m.study, '?')} / srlib study run {m.study} --profile {p.name}")
        for s in m.scales:
            arms = [a for a in study.arms if _stem(a.name, a.scale) == m.stem and a.scale == s]
            kwargs = json.dumps(arms[0].model_kwargs, sort_keys=True)
            cx = _complexity(arms[0].model, s, kwargs)
            states = [(a, study.state(a)) for a in arms]
            done = [(a, st) for a, st in states if st["state"] == "finished"]
            waiting = "; ".join(f"seed {a.seed} {st['status']}" for a, st in states if st["state"] != "finished")
            source = f"{m.study}/{arms[0].name} seed(s) " + ", ".join(
                f"{a.seed} ({Path(st['run_dir']).name})" for a, st in done) if done else f"{m.study}/{arms[0].name}"
            for ds in self.datasets:
                if not done:
                    self.add(m, ds, s, None, f"not run ({waiting}; {how})", source, cx, (arms[0].model, s, kwargs))
                    continue
                parts = []
                for a, st in done:
                    ck = _eval_checkpoint(st["run_dir"])
                    variants = [{"cache_dir": st["run_dir"] / "evaluations", **d} for d in _devices()] + _devices()
                    kw = {"checkpoint": ck, "model_kwargs": a.model_kwargs or None}
                    got = _read(a.model, ds, s, p, _image_keys(p, ds, study.max_images), variants, **kw)
                    if got is None and self.evaluate_runs and ds in study.datasets:
                        got = self.compute(a.model, ds, s, study.max_images, cache_dir=st["run_dir"] / "evaluations",
                                           **kw)
                    if got is not None:
                        got[0].attrs["seed"] = a.seed
                        parts.append(got)
                if len(parts) < len(done):
                    evaluates = ", ".join(display_name(d) for d in study.datasets)
                    why = (f"not evaluated (finished, its evaluation is not cached: {how})"
                           if display_name(ds) in evaluates.split(", ") else
                           f"not evaluated (study {m.study} evaluates {evaluates} in {p.name})")
                    self.add(m, ds, s, None, why, source, cx, (arms[0].model, s, kwargs))
                    continue
                status = OK if not waiting else f"{OK} ({len(done)} of {len(arms)} seeds; {waiting})"
                self.add(m, ds, s, parts, status, source, cx, (arms[0].model, s, kwargs))


def grand_table(profile, datasets=None, studies=tuple(STUDIES), zoo=ZOO, classical=(*INTER, *LEARNED_CLASSICAL),
                evaluate: dict | None = None, measure: bool | None = None, evaluate_runs: bool = False,
                write: bool = True) -> GrandTable:
    """The grand table of ``profile`` (see the module docstring); trains nothing.

    Args:
        datasets: the benchmarks (default: the profile's ``eval_datasets``).
        studies, zoo, classical: which methods (:func:`methods`).
        evaluate: ``{method: (datasets, scales)}`` it may evaluate when not cached (default
            :data:`EVALUATE` of the profile; ``{}``: read only).
        measure: time one forward pass where a row's evaluation records no CPU time (made on a
            GPU; default: not in ``smoke``).
        evaluate_runs: also evaluate a finished study arm whose evaluation is not cached (its
            notebook does that; off by default).
        write: write ``results/<profile>/06_grand_table.{csv,md,tex}`` and
            ``06_grand_per_image.csv`` with their provenance.
    """
    t0 = time.perf_counter()
    p = get_profile(profile)
    plan = EVALUATE.get(p.name, EVALUATE["full"]) if evaluate is None else evaluate
    b = _Builder(p, datasets or p.eval_datasets, plan, p.name != "smoke" if measure is None else measure,
                 evaluate_runs)
    meths = methods(p, studies, zoo, classical)
    read = {"classical": b.classical, "learned classical": b.classical, "study": b.study, "official": b.official}
    for m in meths:
        read[m.kind](m)
    table = pd.DataFrame(b.rows, columns=COLUMNS)
    table.attrs["data_source"] = dict(b.sources)
    cols = ["family", "method", "dataset", "scale", "seed", "image", "psnr", "ssim", "seconds"]
    per_image = pd.concat(b.per_image, ignore_index=True) if b.per_image else pd.DataFrame(columns=cols)
    out = GrandTable(p.name, table, per_image, comparisons(meths, p), b.evaluated)
    out.seconds = time.perf_counter() - t0
    if write:
        out.files = _write(out, p)
    return out


def _relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(project_root()))
    except ValueError:
        return str(path)


def _write(g: GrandTable, p) -> list[str]:
    out = results_dir(p.name)
    out.mkdir(parents=True, exist_ok=True)
    prov = provenance(p.name, seed=p.seed, data_source=g.table.attrs.get("data_source"),
                      multi_adds=f"one forward pass giving a {OUT_HW[1]}x{OUT_HW[0]} output",
                      evaluated_here=g.evaluated, trains="nothing: study runs and cached evaluations are read")
    files = write_table(g.table, out / "06_grand_table", prov)
    files += write_table(g.per_image, out / "06_grand_per_image", prov, formats=("csv",))
    return [_relative(f) for f in files]


# ---------------------------------------------------------------- per-image comparisons

def _seed_mean(per_image: pd.DataFrame, method: str) -> pd.DataFrame:
    rows = per_image[per_image.method == method]
    return rows.groupby(["dataset", "scale", "image"], sort=False).psnr.mean().rename(method).reset_index()


def paired(per_image: pd.DataFrame, method: str, baseline: str) -> pd.DataFrame:
    """Per-image PSNR of ``method`` and ``baseline`` (each the mean over its seeds) on the images
    both were evaluated on: columns ``dataset, scale, image, psnr, psnr_baseline, delta``."""
    a, b = _seed_mean(per_image, method), _seed_mean(per_image, baseline)
    both = a.merge(b, on=["dataset", "scale", "image"], how="inner")
    both = both.rename(columns={method: "psnr", baseline: "psnr_baseline"})
    return both.assign(delta=both.psnr - both.psnr_baseline)


def improvements(per_image: pd.DataFrame, pairs: pd.DataFrame, tie: float = TIE_DB) -> pd.DataFrame:
    """For each pair of ``pairs`` (``method, baseline, kind``) and each benchmark and scale both
    cover: on how many images the method's PSNR is higher, equal (``|delta| <= tie``), lower
    (:func:`~srlib.studies.stats.improvement_counts`); ``higher_of_n`` as ``k/N``."""
    rows = []
    for r in pairs.itertuples():
        both = paired(per_image, r.method, r.baseline)
        for (ds, s), g in both.groupby(["dataset", "scale"], sort=False):
            c = improvement_counts(g.psnr.to_numpy(), g.psnr_baseline.to_numpy(), tie)
            rows.append({"method": r.method, "baseline": r.baseline, "kind": r.kind, "dataset": ds, "scale": s, **c,
                         "higher_of_n": f"{c['higher']}/{c['n']}"})
    cols = ["method", "baseline", "kind", "dataset", "scale", "higher", "equal", "lower", "n", "higher_of_n",
            "mean_delta", "median_delta"]
    return pd.DataFrame(rows, columns=cols)


def improvement_table(g: GrandTable, tie: float = TIE_DB, write: bool = True) -> pd.DataFrame:
    """:func:`improvements` of the grand table's comparisons; written as
    ``results/<profile>/06_images_improved.{csv,md,tex}`` with ``write``."""
    counts = improvements(g.per_image, g.pairs, tie)
    if write:
        prov = provenance(g.profile, seed=get_profile(g.profile).seed, tie_db=tie,
                          rule="higher: delta > tie; equal: |delta| <= tie; lower: delta < -tie (delta: method minus "
                               "baseline PSNR on one image, each the mean over its seeds)")
        counts.attrs["data_source"] = g.table.attrs.get("data_source")
        g.files += [_relative(f) for f in write_table(counts, results_dir(g.profile) / "06_images_improved", prov)]
    return counts


def deltas(g: GrandTable, kinds=("study baseline", "schedule", "from 02", "seed 002"), scale: int | None = None
           ) -> pd.DataFrame:
    """Per-image PSNR deltas of the comparisons of ``kinds`` (at ``scale``; None: every scale), for
    :func:`srlib.viz.delta_boxplots`: columns ``comparison, dataset, scale, image, delta``."""
    parts = []
    for r in g.pairs[g.pairs.kind.isin(kinds)].itertuples():
        d = paired(g.per_image, r.method, r.baseline)
        if scale is not None:
            d = d[d.scale == scale]
        if len(d):
            parts.append(d.assign(comparison=f"{r.method} vs {r.baseline}"))
    cols = ["comparison", "dataset", "scale", "image", "delta"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


# ---------------------------------------------------------------- the Markdown shown in the notebook

def markdown(table: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """The rows with numbers as a Markdown table, then one line per method and status for the
    rows without (``not run (...)``, ``not evaluated (...)``), naming their benchmarks and scales."""
    ok = table[table.status.str.startswith(OK)]
    shown = ok[["method", "dataset", "scale", "psnr", "ssim", "images", "params", "multi_adds_G", "cpu_s_per_image"]]
    text = shown.to_markdown(index=False, floatfmt=floatfmt) if len(shown) else "(no method has numbers yet)"
    rest = table[~table.status.str.startswith(OK)]
    lines = []
    for (method, status), g in rest.groupby(["method", "status"], sort=False):
        where = ", ".join(dict.fromkeys(f"{r.dataset} x{r.scale}" for r in g.itertuples()))
        lines.append(f"- **{method}** ({where}): {status}")
    return text + ("\n\nWithout numbers:\n\n" + "\n".join(lines) if lines else "")


def sentences(table: pd.DataFrame) -> list[str]:
    """One line per benchmark and scale of the rows with numbers: how many methods have numbers
    there, the highest PSNR and its method, bicubic's, and the highest PSNR per parameter class
    (the fewest-parameter learned method within 0.1 dB of the best)."""
    ok = table[table.status.str.startswith(OK) & table.psnr.notna()]
    out = []
    for (ds, s), g in ok.groupby(["dataset", "scale"], sort=False):
        best = g.loc[g.psnr.idxmax()]
        line = (f"{ds} x{s}: {len(g)} methods with numbers; highest PSNR {best.psnr:.2f} dB ({best.method}, "
                f"{best.images})")
        bic = g[g.method == "bicubic"]
        if len(bic):
            line += f"; bicubic {bic.psnr.iloc[0]:.2f} dB"
        near = g[(g.psnr >= best.psnr - 0.1) & (g.params > 0)]
        if len(near) and near.params.min() < best.params:
            small = near.loc[near.params.idxmin()]
            line += f"; within 0.1 dB of it with the fewest parameters: {small.method} ({int(small.params):,})"
        out.append(line)
    return out
