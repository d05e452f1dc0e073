"""The scorecard (notebook 06): every number the four papers print, beside ours, with a status.

:func:`scorecard` takes :func:`srlib.reference.paper_numbers` (one row per printed number or
claim) and puts beside each row our value (``ours``), ``delta = ours - value``, the training
budget on each side and a ``status``:

- ``reproduced``: within the row's tolerance (below);
- ``not reached``: measured, outside the tolerance; ``reason`` gives the gap and its direction;
- ``not checkable here``: ``reason`` says why and what would check it (the notebook / study that
  produces the number and the compute it needs, the hardware, the data the paper does not name).

It trains and evaluates nothing by default (notebook 06 part B, :mod:`srlib.studies.grand`, computes
the official weights' evaluations its profile's ``grand.EVALUATE`` names before the scorecard reads
them): studies are read through :func:`study_means` (:meth:`Study.state` first, :meth:`Study.table`
only for studies with a finished arm; never :meth:`Study.run`), the official weights' evaluations
through the evaluation cache (:func:`official_means`; ``evaluate=True`` computes the missing ones: every image of every
benchmark, so it is notebook 06's job, not a side effect: one 512x384 LR image at x2 takes 5 s
(PAN), 6 s (IMDN), 9 s (LatticeNet) on one thread of this 2-core CPU, so the four comparators at
x2-x4 on Set5, Set14, B100 and Urban100 are about 1.5 hours on one thread, x4 alone about 15
minutes), seed 002's part A through the tables notebook 06 writes
under ``results/<profile>/``, and parameter / Multi-Add counts through :mod:`srlib.complexity`
(instant: the models are built, never trained).

Tolerances (``tolerance`` column), by what the number is:

- **official weights** (PAN, IMDN, CARN-M, LatticeNet): PSNR within +-0.05 dB, SSIM within
  +-0.001, either side (a pipeline that lands above the paper is as wrong as one below; PAN and
  IMDN land within 0.02 dB, ``../shared/pretrained/README.md``);
- **our trained models against a printed PSNR/SSIM**: the same +-0.05 dB / +-0.001, either side;
- **the literature's NE+LLE / ScSR rows** seed 002 is held to: +-0.3 dB (the project's bar for a
  re-implementation, ``published_results.csv``'s note);
- **printed gains** (seed 000's text, seed 003's Table 2 gain row): reproduced when our gain is at
  least the printed one (:data:`srlib.studies.improved.VERDICT_RULE`'s "reached"); ``reason``
  gives the share of it we measured;
- **parameter counts and Multi-Adds**: exact at the printed precision (half a unit of the last
  printed digit: +-0 for AWSRN's 587742, +-0.05K for "63.7K", +-0.5K for "670 K");
- **claims** (seed 002): the claim holds at every scale notebook 06 checks it;
- **run times and memory**: never checkable here (the paper's machine), whatever this one has.

Readings chosen where the papers are silent:

- **AWSRN stand-in.** ``smoke``/``quick`` run AWSRN-S where seed 000 uses AWSRN
  (:func:`srlib.studies.improved.models_for`): seed 000's absolute rows then show our AWSRN-S
  values and gap but are "not checkable here"; its gains are checked (notebook 03's claims).
- **Seed 003 Table 2** names no dataset or scale: its absolute PSNRs are not checkable, its gains
  are compared with our mean gain over the benchmarks at x4.
- **Seed 003's ablation text** names no scale: counted at x4 (notebook 05's scale).
- **Official weights** are compared on every image (``max_images=None``) whatever the profile:
  a subset's mean is not the published mean.
"""
from __future__ import annotations

import math
from functools import lru_cache

import pandas as pd

from ..complexity import count_params, multi_adds
from ..data.catalog import display_name, find_dataset
from ..evalcache import evaluate_cached
from ..evaluate import read_table
from ..models import build_model, list_models
from ..paths import results_dir
from ..profiles import get_profile
from ..reference import COMPARATORS, PAPERS, paper_numbers
from .registry import get_study

STATUSES = ("reproduced", "not reached", "not checkable here")
COLUMNS = ["paper", "where", "model", "dataset", "scale", "metric", "value", "ours", "delta", "tolerance", "status",
           "reason", "budget_paper", "budget_ours", "source", "note"]
PSNR_TOL, SSIM_TOL, CITED_TOL = 0.05, 0.001, 0.3
#: which notebook produces each study's runs
NOTEBOOK = {"02-awsrn-s": "02", "03-ablation": "03", "04-hybrid-mpts": "04", "05-imfm": "05", "seed002-cnn": "06"}
HARDWARE = {"seconds", "cpu_seconds", "gpu_seconds", "gpu_memory_MB"}

_AWSRN_BUDGET = ("DIV2K 1-800, 10^6 iterations of batch 16, 48x48 LR patches, Adam 1e-3 halved every 2x10^5 "
                 "(AWSRN Sec. 4.1), a GPU")
BUDGET_PAPER = {
    "PAN": "the authors' training (DF2K), weights as released",
    "IMDN": "the authors' training (DIV2K), weights as released",
    "CARN-M": "the authors' training (DIV2K), weights as released",
    "LatticeNet": "the authors' training (DIV2K), weights as released",
    "seed 000": "DIV2K (800 images), Adam; iterations, batch and schedule not stated; an RTX 2080 Ti",
    "seed 001": _AWSRN_BUDGET,
    "seed 002": "training set not named; MSE, Adam 1e-4, 50 epochs of unstated size",
    "seed 003": ("900 of 1200 unnamed images (its ref. [22]); L1; step decay halving every 200 epochs or cosine "
                 "restarts every 250, total not stated; an RTX 4090"),
}
COUNTED = "none: counted from the model's layers"


# ---------------------------------------------------------------- readers (monkeypatched in tests)

def study_means(name: str, profile) -> pd.DataFrame:
    """Seed-mean PSNR/SSIM per (arm, dataset, scale) over the *finished* arms of study ``name``.

    Columns ``arm, dataset, scale, psnr, ssim, n_images, seeds, steps, train_seconds,
    precision``; ``attrs['states']`` maps each arm name to its state (the first seed's status).
    Reads :meth:`Study.state` of every arm and, only when one has finished, :meth:`Study.table`
    (cached evaluations beside the runs); trains nothing.
    """
    study = get_study(name, profile)
    states = {}
    for a in study.arms:
        st = study.state(a)
        if a.name not in states or st["state"] == "finished":
            states[a.name] = st["state"] if st["state"] in ("finished", "not started") else st["status"]
    cols = ["arm", "dataset", "scale", "psnr", "ssim", "n_images", "seeds", "steps", "train_seconds", "precision"]
    if "finished" not in states.values():
        out = pd.DataFrame(columns=cols)
    else:
        t = study.table()
        t = t[t.psnr.notna()]
        out = (t.groupby(["arm", "dataset", "scale"], sort=False)
               .agg(psnr=("psnr", "mean"), ssim=("ssim", "mean"), n_images=("n_images", "first"),
                    seeds=("seed", "nunique"), steps=("steps", "first"), train_seconds=("train_seconds", "mean"),
                    precision=("precision", "first")).reset_index())[cols]
    out.attrs["states"] = states
    return out


def official_means(model: str, dataset: str, scale: int, profile, evaluate: bool = False,
                   max_images: int | None = None) -> dict | None:
    """``{'psnr', 'ssim', 'n_images', 'device'}`` of ``model``'s official weights on ``dataset`` x
    ``scale`` from the evaluation cache (``results/<profile>/evaluations/``, as
    ``evaluate_cached(model, ..., checkpoint='official')`` leaves it, CPU or CUDA), else None;
    ``evaluate=True`` computes a missing one (on the CPU)."""
    p = get_profile(profile)
    for device in ("cpu",) if evaluate else ("cpu", "cuda"):
        df = evaluate_cached(model, [dataset], [scale], profile=p.name, checkpoint="official",
                             max_images=max_images, device=device, cached_only=not evaluate)
        if len(df):
            return {"psnr": df.psnr.mean(), "ssim": df.ssim.mean(), "n_images": len(df), "device": device}
    return None


def part_a_table(profile, name: str) -> pd.DataFrame | None:
    """Notebook 06 part A's table ``results/<profile>/06_seed002_<name>.csv``, or None."""
    path = results_dir(get_profile(profile).name) / f"06_seed002_{name}.csv"
    return read_table(path) if path.is_file() else None


@lru_cache(maxsize=None)
def _model(model: str, scale: int, kwargs: tuple = ()):
    return build_model(model, scale, **dict(kwargs))


def _params(model: str, scale: int, kwargs: tuple = ()) -> int:
    """Parameters of a registered model (untrained; built once per call signature)."""
    return count_params(_model(model, scale, kwargs))


@lru_cache(maxsize=None)
def _multi_adds_G(model: str, scale: int, kwargs: tuple = ()) -> float:
    """Multi-Adds in G of one forward pass with a 1280x720 output (:func:`srlib.complexity.multi_adds`)."""
    return multi_adds(_model(model, scale, kwargs), scale) / 1e9


# ---------------------------------------------------------------- rules

def _decimals(x: float) -> int:
    text = repr(float(x))
    return 0 if text.endswith(".0") else len(text.split(".")[1])


def printed_tolerance(value: float, metric: str = "") -> float:
    """Half a unit of the last printed digit of ``value``; 0 (exact) for a raw count (``params``)."""
    return 0.0 if metric == "params" else 0.5 * 10 ** -_decimals(value)


def _fmt(x: float, metric: str) -> str:
    if metric in ("params",):
        return f"{x:+,.0f}"
    if metric.startswith("ssim"):
        return f"{x:+.4f}"
    return f"{x:+.3f}"


def _unit(metric: str) -> str:
    return {"psnr": " dB", "psnr_gain": " dB", "psnr_step": " dB", "psnr_cos": " dB", "params_K": "K",
            "params_added_K": "K", "multi_adds_G": " G", "multi_adds_added_G": " G"}.get(metric, "")


def _result(row: dict, ours: float, tol: float, mode: str, extra: str = "") -> dict:
    """``ours`` against ``row['value']``: ``mode`` 'two-sided' (|delta| <= tol) or 'at least'."""
    value, metric = row["value"], row["metric"]
    delta = ours - value
    unit = _unit(metric)
    if mode == "at least":
        ok = delta >= -tol
        share = f"{ours / value:.0%} of the printed gain" if value else ""
        reason = (f"our gain {_fmt(ours, metric)}{unit} against the printed {_fmt(value, metric)}{unit}"
                  + (f" ({share})" if share else ""))
        tol_text = ">= printed" + (f" - {tol:g}" if tol else "")
    else:
        ok = abs(delta) <= tol
        side = "above" if delta > 0 else "below"
        reason = ("within tolerance" if ok else f"{abs(delta):.4g}{unit} {side} the printed value (tolerance "
                                                  f"+-{tol:g}{unit})")
        tol_text = f"+-{tol:g}{unit}" if tol else "exact"
    return {"ours": ours, "delta": delta, "tolerance": tol_text, "status": "reproduced" if ok else "not reached",
            "reason": reason + (f"; {extra}" if extra else "")}


def _not_checkable(reason: str, ours: float = math.nan, value: float = math.nan, **kw) -> dict:
    return {"ours": ours, "delta": ours - value if ours == ours and value == value else math.nan,
            "status": "not checkable here", "reason": reason, **kw}


# ---------------------------------------------------------------- row families

class _Context:
    """What one :func:`scorecard` call reads once: the profile, studies' means, dataset presence."""

    def __init__(self, profile, evaluate: bool):
        self.p = get_profile(profile)
        self.evaluate = evaluate
        self._studies: dict = {}
        self._present: dict = {}

    def present(self, dataset: str) -> bool:
        """``dataset``'s images are on this machine."""
        if dataset not in self._present:
            try:
                self._present[dataset] = find_dataset(dataset) is not None
            except KeyError:
                self._present[dataset] = False
        return self._present[dataset]

    def means(self, name: str) -> pd.DataFrame:
        if name not in self._studies:
            self._studies[name] = study_means(name, self.p)
        return self._studies[name]

    def arm_value(self, study: str, arm: str, dataset: str, scale: int, metric: str):
        """(value, budget text) of a finished arm's mean, or (None, reason it is missing)."""
        m = self.means(study)
        hit = m[(m.arm == arm) & (m.dataset == dataset) & (m.scale == scale)]
        how = (f"notebook {NOTEBOOK.get(study, '?')} (study {study}, arm {arm}; "
               f"`srlib study run {study} --profile {self.p.name}`)")
        if hit.empty:
            state = m.attrs.get("states", {}).get(arm, "not an arm of this profile's study")
            if state == "finished":
                return None, f"{how} has no {dataset} x{scale} row (the study does not evaluate it in {self.p.name})"
            return None, f"no finished run: produced by {how}; now {state}"
        r = hit.iloc[0]
        budget = (f"{study}/{arm}: {int(r.steps)} steps on {self.p.train_dataset}, batch {self.p.batch_size}, "
                  f"LR patch {self.p.lr_patch}, {r.train_seconds:.0f} s, {r.precision}; {int(r.n_images)} images, "
                  f"{int(r.seeds)} seed(s)")
        return float(r[metric]), budget


def _comparator(row: dict, ctx: _Context) -> dict:
    model, ds, s, metric = row["model"], row["dataset"], int(row["scale"]), row["metric"]
    if not ctx.present(ds):
        return _not_checkable(f"{ds} is not on this machine (SRLIB_DATA_DIR); its images are needed")
    try:
        got = official_means(model, ds, s, ctx.p, evaluate=ctx.evaluate)
    except (FileNotFoundError, KeyError) as exc:
        return _not_checkable(f"official weights not available: {exc}")
    if got is None:
        return _not_checkable(f"the official weights' {ds} x{s} evaluation is not cached yet: notebook 06 part B "
                              f"(srlib.studies.grand.EVALUATE: in {ctx.p.name} "
                              f"{_planned(model, ds, s, ctx.p.name)}) or scorecard(profile, evaluate=True) "
                              f"evaluates it, every image on the CPU")
    tol = PSNR_TOL if metric == "psnr" else SSIM_TOL
    return {**_result(row, got[metric], tol, "two-sided"), "budget_ours": "none: the authors' released weights, "
            f"evaluated here ({got['n_images']} images, {got['device']})",
            "source": "evaluation cache (official weights)"}


def _planned(model: str, ds: str, s: int, profile: str) -> str:
    """Whether notebook 06 part B's grand table evaluates ``model`` on ``ds`` x ``s`` in ``profile``."""
    from .grand import EVALUATE

    dss, scs = EVALUATE.get(profile, EVALUATE["full"]).get(model, ((), ()))
    yes = (dss is None or ds in dss) and (scs is None or s in scs)
    return "it does" if yes else "it does not; the full profile does"


def _seed001_target(model: str, scale: int, p) -> tuple[str, str] | None:
    if (model, scale) == ("awsrn-s", 4):
        return "02-awsrn-s", "awsrn-s-x4"
    if p.name == "full" and model == "awsrn" and scale in (4, 8):
        return "03-ablation", "baseline" if scale == 4 else "baseline-x8"
    return None


def _seed001(row: dict, ctx: _Context) -> dict:
    model, s, metric = row["model"], int(row["scale"]), row["metric"]
    if metric in ("params", "multi_adds_G"):
        ours = _params(model, s) if metric == "params" else _multi_adds_G(model, s)
        return {**_result(row, ours, printed_tolerance(row["value"], metric), "two-sided"), "budget_paper": COUNTED,
                "budget_ours": COUNTED, "source": "srlib.complexity"}
    ds = row["dataset"]
    target = _seed001_target(model, s, ctx.p)
    if target is None:
        return _not_checkable(f"no study of this companion trains {model} x{s}"
                              + (" in this profile" if model == "awsrn" and s in (4, 8) else "")
                              + f"; it needs the paper's training ({_AWSRN_BUDGET})"
                              + ("; the full profile's 03-ablation trains AWSRN x4 and x8" if model == "awsrn"
                                 and s in (4, 8) else ""))
    if not ctx.present(ds):
        return _not_checkable(f"{ds} is not on this machine (SRLIB_DATA_DIR)")
    ours, budget = ctx.arm_value(*target, ds, s, metric)
    if ours is None:
        return _not_checkable(budget)
    tol = PSNR_TOL if metric == "psnr" else SSIM_TOL
    return {**_result(row, ours, tol, "two-sided"), "budget_ours": budget, "source": f"study {target[0]}"}


def _seed000(row: dict, ctx: _Context) -> dict:
    from .improved import models_for

    ds, s, metric = row["dataset"], int(row["scale"]), row["metric"]
    sfx = "" if s == 4 else f"-x{s}"
    if s != 4 and ctx.p.name != "full":
        return _not_checkable(f"x{s}: notebook 03 (study 03-ablation) runs x{s} in the full profile only (AWSRN "
                              f"from scratch at x4 and x8; {_AWSRN_BUDGET})")
    base_name, _ = models_for(ctx.p)
    if metric.endswith("_gain"):
        base, base_budget = ctx.arm_value("03-ablation", f"baseline{sfx}", ds, s, metric.removesuffix("_gain"))
        if base is None:
            return _not_checkable(base_budget)
        top, top_budget = ctx.arm_value("03-ablation", f"all-on{sfx}", ds, s, metric.removesuffix("_gain"))
        if top is None:
            return _not_checkable(top_budget)
        stand_in = "" if base_name == "awsrn" else f"on {base_name} ({ctx.p.name}'s stand-in for AWSRN)"
        return {**_result(row, top - base, 0.0, "at least", stand_in), "budget_ours": top_budget,
                "source": "study 03-ablation (all-on minus baseline; notebook 03 gives the interval)"}
    arm = f"{'all-on' if row['model'].startswith('improved') else 'baseline'}{sfx}"
    ours, budget = ctx.arm_value("03-ablation", arm, ds, s, metric)
    if ours is None:
        return _not_checkable(budget)
    tol = PSNR_TOL if metric == "psnr" else SSIM_TOL
    if base_name != "awsrn":
        delta = ours - row["value"]
        return _not_checkable(f"{ctx.p.name} runs {base_name} (fine-tuned from notebook 02) in place of AWSRN: ours is "
                              f"{_fmt(delta, metric)}{_unit(metric)} from the printed value, not a like-for-like "
                              f"check; the full profile trains AWSRN ({_AWSRN_BUDGET})", ours, row["value"],
                              budget_ours=budget, source="study 03-ablation", tolerance=f"+-{tol:g}")
    return {**_result(row, ours, tol, "two-sided"), "budget_ours": budget, "source": "study 03-ablation"}


def _seed002(row: dict, ctx: _Context) -> dict:
    if row["metric"] == "claim":
        claims = part_a_table(ctx.p, "claims")
        if claims is None or claims.empty:
            return _not_checkable("notebook 06 part A has not written results/<profile>/06_seed002_claims.csv: it "
                                  "needs study seed002-cnn and NE, SC, bicubic and the CNN on Urban100")
        mine = claims[claims.claim == row["note"]]
        if mine.empty:
            return _not_checkable("notebook 06 part A's claims table has no row for this claim")
        holds = mine.holds.astype(str).str.lower().eq("true")
        detail = "; ".join(f"x{r.scale}: {'holds' if h else 'fails'} ({r.margin})" for r, h in
                           zip(mine.itertuples(), holds))
        return {"ours": float(holds.mean()), "delta": math.nan, "tolerance": "holds at every scale checked",
                "status": "reproduced" if holds.all() else "not reached",
                "reason": f"holds at {int(holds.sum())} of {len(mine)} scales: {detail}",
                "source": "results/<profile>/06_seed002_claims.csv (notebook 06 part A)"}
    check = part_a_table(ctx.p, "classical_vs_cited")
    method = row["model"].split(" ")[0]
    if check is None:
        return _not_checkable("notebook 06 part A has not written results/<profile>/06_seed002_classical_vs_cited.csv "
                              f"(seed002.classical_vs_cited: {method} learned on T91, then Set5/Set14)")
    hit = check[(check.method == method) & (check.dataset == row["dataset"]) & (check.scale == row["scale"])]
    if hit.empty:
        return _not_checkable(f"notebook 06 part A does not evaluate {method} on {row['dataset']} x{row['scale']} "
                              f"in {ctx.p.name}")
    return {**_result(row, float(hit.ours.iloc[0]), CITED_TOL, "two-sided", _scsr_gap_note(ctx.p, method, row)),
            "budget_ours": f"{method} learned on T91 with {ctx.p.name}'s settings (srlib.classical.learned.SETTINGS)",
            "source": "results/<profile>/06_seed002_classical_vs_cited.csv (notebook 06 part A)"}


def _scsr_gap_note(profile, method: str, row: dict) -> str:
    """For ScSR rows: what notebook 06's investigation of the gap measured (``06_scsr_gap.csv``)."""
    path = results_dir(get_profile(profile).name) / "06_scsr_gap.csv"
    if method != "sc" or not path.is_file():
        return ""
    from .scsr_gap import sentences

    table = read_table(path)
    if row["dataset"] not in set(table.dataset) or row["scale"] not in set(table.scale):
        return ""
    return "investigated (results/<profile>/06_scsr_gap.csv): " + " ".join(sentences(table, row["dataset"])[1:])


def _seed003(row: dict, ctx: _Context) -> dict:
    from .imfm import ABLATION, SCALE

    metric, model = row["metric"], row["model"]
    if metric in HARDWARE:
        return _not_checkable("a run time or memory of the paper's machine (RTX 4090, its CPU): not comparable "
                              "with this machine's; notebook 05's Table 4 measures ours")
    if metric in ("params_added_K", "multi_adds_added_G"):
        sw = dict(ABLATION)
        names = [n for n, _ in ABLATION]
        before = names[names.index(model) - 1]
        count = (lambda n: _params("imfm", SCALE, tuple(sorted(sw[n].items()))) / 1e3) if metric == "params_added_K" \
            else (lambda n: _multi_adds_G("imfm", SCALE, tuple(sorted(sw[n].items()))))
        ours = count(model) - count(before)
        return {**_result(row, ours, printed_tolerance(row["value"]), "two-sided",
                          f"{model} against {before}, counted at x{SCALE}"), "budget_paper": COUNTED,
                "budget_ours": COUNTED, "source": "srlib.complexity"}
    if metric == "params_K":
        kw = {"imfm-deconv": {"upsampler": "deconv"}, "imfm-subpixel": {"upsampler": "subpixel"}}.get(model, {})
        name = "imfm" if model.startswith("imfm") else model
        if name not in list_models():
            return _not_checkable(f"{model} is not in the zoo (srlib.models): it cannot be built here")
        ours = _params(name, SCALE, tuple(sorted(kw.items()))) / 1e3
        return {**_result(row, ours, printed_tolerance(row["value"]), "two-sided"), "budget_paper": COUNTED,
                "budget_ours": COUNTED, "source": "srlib.complexity"}
    if metric in ("psnr_step", "psnr_cos"):
        return _not_checkable("Table 2 names neither dataset nor scale; notebook 05 (study 05-imfm) reports both "
                              "schedules at x4 on every benchmark, and the gain row is compared")
    if metric == "psnr_gain":
        arms = set(ctx.means("05-imfm").attrs.get("states", {}))
        if f"{model}-cos" not in arms:
            return _not_checkable(f"{model} is not trained beside IMFM in {ctx.p.name} (the zoo has CARN-M, IMDN and "
                                  "A2F-S, not the paper's CARN, MAFFSRN, A2F-M; full trains IMDN, CARN-M, A2F-S)")
        step_arm, cos_arm = model, f"{model}-cos"
        gains, budgets = [], []
        for ds in get_study("05-imfm", ctx.p).datasets:
            a, why = ctx.arm_value("05-imfm", step_arm, display_name(ds), SCALE, "psnr")
            b, why_b = ctx.arm_value("05-imfm", cos_arm, display_name(ds), SCALE, "psnr")
            if a is None or b is None:
                return _not_checkable(why if a is None else why_b)
            gains.append(b - a)
            budgets.append(why_b)
        return {**_result(row, sum(gains) / len(gains), 0.0, "at least",
                          f"mean over {len(gains)} benchmarks at x{SCALE}; the paper's dataset and scale are not "
                          "named"), "budget_ours": budgets[0], "source": "study 05-imfm (cos minus step)"}
    if metric == "psnr":
        ours, budget = ctx.arm_value("05-imfm", model, row["dataset"], int(row["scale"]), "psnr")
        if ours is None:
            return _not_checkable(budget)
        return {**_result(row, ours, PSNR_TOL, "two-sided"), "budget_ours": budget, "source": "study 05-imfm"}
    return _not_checkable(f"no rule for metric {metric!r}")


_FAMILIES = {"seed 000": _seed000, "seed 001": _seed001, "seed 002": _seed002, "seed 003": _seed003}


def scorecard(profile, evaluate: bool = False) -> pd.DataFrame:
    """One row per row of :func:`srlib.reference.paper_numbers`, in its order (the comparators
    with official weights first), with ``ours``, ``delta`` (ours - value), ``tolerance``,
    ``status`` (:data:`STATUSES`), ``reason``, ``budget_paper``, ``budget_ours`` and ``source``
    (where ours comes from). See the module docstring for the tolerances. ``evaluate=True``
    computes the official weights' evaluations that are not cached (every image; slow)."""
    ctx = _Context(profile, evaluate)
    rows = []
    for row in paper_numbers().to_dict("records"):
        row["scale"] = None if pd.isna(row["scale"]) else int(row["scale"])
        row["dataset"] = None if pd.isna(row["dataset"]) else row["dataset"]
        fn = _comparator if row["paper"] in COMPARATORS.values() else _FAMILIES[row["paper"]]
        try:
            got = fn(row, ctx)
        except Exception as exc:  # a row that cannot be read says why instead of hiding the others
            got = _not_checkable(f"reading ours failed: {type(exc).__name__}: {exc}")
        out = {"budget_paper": BUDGET_PAPER[row["paper"]], "budget_ours": "", "source": "", "tolerance": "", **row,
               **got}
        rows.append(out)
    df = pd.DataFrame(rows)[COLUMNS]
    df["scale"] = df.scale.astype("Int64")
    df.attrs["profile"] = ctx.p.name
    return df


def scorecard_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Rows per paper and status (columns :data:`STATUSES` and ``total``), papers in
    :data:`srlib.reference.PAPERS` order, with a ``title`` column."""
    t = pd.crosstab(df.paper, df.status).reindex(columns=list(STATUSES), fill_value=0)
    t = t.reindex([p for p in PAPERS if p in t.index])
    t["total"] = t.sum(axis=1)
    t.insert(0, "title", [PAPERS[p] for p in t.index])
    return t.rename_axis(None, axis=1)


def scorecard_sentences(df: pd.DataFrame) -> list[str]:
    """One line per paper: how many of its printed numbers are reproduced, not reached, not checkable."""
    return [f"{r['title']}: {r['total']} printed numbers or claims; {r['reproduced']} reproduced, "
            f"{r['not reached']} not reached, {r['not checkable here']} not checkable here"
            for _, r in scorecard_summary(df).iterrows()]
