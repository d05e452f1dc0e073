"""``make docs``: write measured results into the README and the notebooks' first cells.

Nothing here is typed by hand: every number comes from files a ``make reproduce`` wrote.

- Each notebook's first (Markdown) cell gets a line saying how long the notebook took in each
  profile, from ``results/<profile>/notebook_times.json`` (:func:`srlib.pipeline.record_times`):
  the newest run that trained something (a first run) and the newest that trained nothing while
  reusing runs (a rerun), with the commit and machine they ran on; ``not measured here`` where a
  profile has no record.
- The README's results section (between ``<!-- srlib:begin results -->`` and
  ``<!-- srlib:end results -->``) gets the main tables of the last ``quick`` run, two figures
  and the comparer of notebook 07 as its exported HTML shows it (the widget's PNG twin),
  copied to ``docs/img/`` so they show on GitHub.

A marker pair that is missing is an error naming the file, not a silent append.

    python -m srlib.docs [--profile quick] [--check]
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

import pandas as pd

from .fileio import atomic_write_bytes, atomic_write_text
from .paths import figures_dir, notebooks_dir, project_root, results_dir

TIMES_PROFILES = ("smoke", "quick")
FIGURES = (("02_training_curves.png", "AWSRN-S x4 trained in `quick` (notebook 02): loss and validation PSNR"),
           ("06_seed002_psnr_set5_set14.png", "seed 002's comparison (notebook 06): bicubic, NE+LLE, ScSR and the CNN"))
WIDGET_NOTEBOOK = "07_visual_comparisons.ipynb"


class DocsError(RuntimeError):
    """A marker is missing or a result the page needs was never produced."""


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- srlib:begin {name} -->", f"<!-- srlib:end {name} -->"


def replace_block(text: str, name: str, body: str, where: str = "the text") -> str:
    """``text`` with what lies between the ``name`` markers replaced by ``body``."""
    begin, end = _markers(name)
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < i:
        raise DocsError(f"{where} has no '{begin}' ... '{end}' pair; add the two lines where the "
                        f"generated {name} should go")
    return text[: i + len(begin)] + "\n" + body.strip("\n") + "\n" + text[j:]


# ---------------------------------------------------------------------------- notebook times
def _load_times(profile: str) -> dict:
    try:
        return json.loads((results_dir(profile) / "notebook_times.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _minutes(rec: dict) -> str:
    m = rec["seconds"] / 60
    return f"{m:.1f} min" if m >= 0.95 else f"{rec['seconds']:.0f} s"


def _where(rec: dict) -> str:
    return f"{rec.get('device') or 'unknown machine'}, commit {str(rec.get('commit') or '?')[:7]}, {str(rec.get('created') or '?')[:10]}"


def time_sentence(history: list[dict], profile: str) -> str:
    """One profile's line: first run (trained something) and rerun (trained nothing), newest each."""
    if not history:
        return f"`{profile}`: not measured here"
    first = next((r for r in reversed(history) if r.get("runs_trained")), None)
    rerun = next((r for r in reversed(history) if r.get("runs_trained") == 0 and r.get("runs_reused")), None)
    if first is None and rerun is None:  # a notebook without training runs: the spread of its recent runs
        last, recent = history[-1], history[-5:]
        lo, hi = min(recent, key=lambda r: r["seconds"]), max(recent, key=lambda r: r["seconds"])
        if hi["seconds"] > 1.2 * lo["seconds"]:  # e.g. a first run filling the evaluation cache
            return f"`{profile}`: {_minutes(lo)} to {_minutes(hi)} over its last {len(recent)} runs ({_where(last)})"
        return f"`{profile}`: {_minutes(last)} ({_where(last)})"
    parts = []
    if first is not None:
        parts.append(f"{_minutes(first)} when it trains ({first['runs_trained']} runs; {_where(first)})")
    if rerun is not None:
        parts.append(f"{_minutes(rerun)} when its {rerun['runs_reused']} runs are cached ({_where(rerun)})")
    return f"`{profile}`: " + "; ".join(parts)


def _gpu_check() -> tuple[object, bool]:
    """The step rates the GPU estimates use: ``results/gpu_check.json`` where ``make gpu-check`` ran
    (True), else the profile's assumed rate (False)."""
    from .gpucheck import assumed_check

    measured = project_root() / "results" / "gpu_check.json"
    return (measured, True) if measured.is_file() else (assumed_check(), False)


def estimate_sentence(nb_name: str, profile: str) -> str:
    """A GPU profile's line: not measured on this machine, estimated from the GPU step rate."""
    from .gpucheck import estimate_minutes

    check, measured = _gpu_check()
    part = estimate_minutes(check, profile)["parts"].get(nb_name[:2])
    if part is None:
        return f"`{profile}`: not measured here"
    rate = "the step rate `make gpu-check` measured" if measured else "an assumed GPU step rate (no `make gpu-check` yet)"
    m = part["minutes"]
    span = f"{m:.0f} min" if m < 120 else f"{m / 60:.0f} h" if m < 48 * 60 else f"{m / 1440:.0f} days"
    return f"`{profile}`: not measured here; about {span} on one GPU, estimated from {rate} (README)"


def notebook_time_block(nb_name: str, profiles=TIMES_PROFILES) -> str:
    lines = [f"- {time_sentence(_load_times(p).get(nb_name, []), p)}" for p in profiles]
    lines += [f"- {estimate_sentence(nb_name, p)}" for p in ("gpu", "full")]
    return "**How long this notebook takes** (measured by `make reproduce`, written here by `make docs`):\n\n" + "\n".join(lines)


def stamp_notebooks(folder: Path | None = None, profiles=TIMES_PROFILES) -> list[Path]:
    """Write each numbered notebook's time block into its first cell; returns the notebooks changed."""
    import nbformat

    changed = []
    for nb_path in sorted((folder or notebooks_dir()).glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        first = nb.cells[0] if nb.cells else None
        if first is None or first.cell_type != "markdown":
            raise DocsError(f"{nb_path.name}: the first cell must be Markdown to carry the time block")
        new = replace_block(first.source, "times", notebook_time_block(nb_path.name, profiles), nb_path.name)
        if new != first.source:
            first.source = new
            atomic_write_text(nb_path, nbformat.writes(nb) + "\n")
            changed.append(nb_path)
    return changed


# ---------------------------------------------------------------------------- README results
def _csv(profile: str, name: str) -> pd.DataFrame:
    path = results_dir(profile) / f"{name}.csv"
    if not path.is_file():
        raise DocsError(f"{path.relative_to(project_root())} is missing: run `make reproduce PROFILE={profile}` first")
    return pd.read_csv(path, comment="#")


def _provenance(profile: str) -> dict:
    try:
        return json.loads((results_dir(profile) / "run_report.json").read_text(encoding="utf-8"))["provenance"]
    except (OSError, ValueError, KeyError):
        return {}


def _md(df: pd.DataFrame) -> str:
    """Markdown; PSNR to 0.01 dB, deltas to 0.001 dB (a -0.004 dB delta must not read -0.00)."""
    fmt = tuple(".3f" if c == "delta" else ".2f" for c in df.columns)
    return df.to_markdown(index=False, floatfmt=fmt)


def bicubic_table(profile: str) -> str:
    df = _csv(profile, "01_bicubic_table")
    df = df[["dataset", "scale", "psnr", "psnr_paper", "psnr_delta"]].rename(
        columns={"psnr": "PSNR (ours)", "psnr_paper": "PSNR (published)", "psnr_delta": "delta"})
    return _md(df)


def awsrn_table(profile: str) -> str:
    df = _csv(profile, "02_awsrn-s_x4_vs_paper")
    df = df[["dataset", "scale", "psnr", "psnr_paper", "psnr_delta", "psnr_bicubic"]].rename(
        columns={"psnr": "PSNR (ours, quick)", "psnr_paper": "PSNR (paper)", "psnr_delta": "delta",
                 "psnr_bicubic": "bicubic"})
    return _md(df)


def scorecard_summary(profile: str) -> str | None:
    path = results_dir(profile) / "06_scorecard.csv"
    if not path.is_file():
        return None
    df = pd.read_csv(path, comment="#")
    col = "status" if "status" in df else df.columns[-1]
    paper = "paper" if "paper" in df else df.columns[0]
    return _md(df.groupby([paper, col]).size().unstack(fill_value=0).reset_index())


def _asset(data: bytes, dest: Path) -> str:
    """``data`` at ``dest`` (rewritten only when it differs); its project-relative path."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists() or dest.read_bytes() != data:
        atomic_write_bytes(dest, data)
    return dest.relative_to(project_root()).as_posix()


def widget_png(profile: str) -> bytes | None:
    """The comparer's PNG twin from notebook 07 as ``make reproduce`` executed it."""
    import nbformat

    path = results_dir(profile) / "notebooks" / WIDGET_NOTEBOOK
    if not path.is_file():
        return None
    for cell in nbformat.read(path, as_version=4).cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data and "application/vnd.jupyter.widget-view+json" in data:
                return base64.b64decode(data["image/png"])
    return None


def readme_results(profile: str = "quick") -> str:
    """The README's results section, from ``results/<profile>/`` and ``figures/<profile>/``."""
    prov = _provenance(profile)
    img = project_root() / "docs" / "img"
    lines = [f"Generated by `make docs` from the files under `results/{profile}/` (the last `make reproduce` call: "
             f"commit {str(prov.get('commit', '?'))[:7]}, {str(prov.get('created', '?'))[:10]}, "
             f"{prov.get('device', 'unknown machine')}; each table's file names the commit that wrote it); "
             "the notebooks explain every row.", "",
             "**The protocol lands on the published bicubic rows** (notebook 01):", "", bicubic_table(profile), "",
             f"**AWSRN-S x4 trained in `{profile}`** against the AWSRN paper (notebook 02; the paper trains "
             "1000x longer on DIV2K):", "", awsrn_table(profile), ""]
    summary = scorecard_summary(profile)
    if summary is not None:
        lines += ["**The scorecard** (notebook 06): the four papers' printed numbers by status", "", summary, ""]
    for name, caption in FIGURES:
        src = figures_dir(profile) / name
        if src.is_file():
            lines += [f"![{caption}]({_asset(src.read_bytes(), img / src.name)})", f"*{caption}.*", ""]
    png = widget_png(profile)
    if png is not None:
        lines += [f"![notebook 07's comparer]({_asset(png, img / '07_comparer.png')})",
                  "*Notebook 07's swipe comparer as its exported HTML shows it (the widget's PNG twin; "
                  "`voila notebooks/07_visual_comparisons.ipynb` serves the live widget).*", ""]
    return "\n".join(lines)


def gpu_estimates() -> str:
    """Minutes per notebook of the ``gpu`` and ``full`` profiles on one GPU: from
    ``results/gpu_check.json`` where ``make gpu-check`` ran, else from the assumed step rate
    (:func:`srlib.gpucheck.assumed_check`), and the text says which."""
    from .gpucheck import estimate_minutes, format_estimate

    check, measured = _gpu_check()
    basis = ("measured by `make gpu-check` (`results/gpu_check.json`)" if measured else
             "**assumed, not measured** (no `make gpu-check` has run on this checkout); run it on your box")
    lines = [f"Step rates {basis}."]
    for name in ("gpu", "full"):
        est = estimate_minutes(check, name)
        hours = est["total"] / 60
        lines += ["", f"`{name}` on one GPU: about {est['total']:.0f} min ({hours:.1f} h) for 01-07.", "",
                  format_estimate(est)]
    return "\n".join(lines)


def update_readme(profile: str = "quick", readme: Path | None = None) -> bool:
    """Rewrite the README's generated sections; True when it changed."""
    path = readme or project_root() / "README.md"
    text = path.read_text(encoding="utf-8")
    new = replace_block(text, "results", readme_results(profile), path.name)
    new = replace_block(new, "gpu-estimate", gpu_estimates(), path.name)
    if new != text:
        atomic_write_text(path, new)
    return new != text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m srlib.docs", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="quick", help="the run whose results the README shows (default quick)")
    args = ap.parse_args(argv)
    try:
        stamped = stamp_notebooks()
        readme = update_readme(args.profile)
    except DocsError as exc:
        print(f"make docs: {exc}", file=sys.stderr)
        return 2
    print(f"make docs: {len(stamped)} notebook(s) got new times; README {'updated' if readme else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
