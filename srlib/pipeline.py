"""The papermill runner: execute the numbered notebooks in order under one profile.

For each ``notebooks/NN_*.ipynb`` it injects ``profile`` into the cell tagged ``parameters``,
runs it in this Python's kernel (registered as ``srlib`` in ``sys.prefix``, so a notebook never
runs in a system Python), and writes the executed notebook and its HTML under
``results/<profile>/notebooks/``. A run report (``run_report.md`` / ``.json``) records each
notebook's wall time, peak memory (resident set of the kernel process, sampled every 0.2 s) and
status, with the machine and library versions, and sets each notebook's time against its share
of the profile's budget (:class:`srlib.profiles.NotebookBudget`, DESIGN.md "The quick budget"),
the set-up's too when ``make`` recorded it (``<venv>/.setup_seconds``). A failing notebook
stops the run; the error names the notebook and the failing cell.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .paths import notebooks_dir, project_root, results_dir
from .fileio import atomic_write_text, write_json
from .lockfile import lock_status
from .provenance import provenance
from .studies.ledger import LEDGER_ENV, read_ledger

KERNEL_NAME = "srlib"
SETUP_RECORD = ".setup_seconds"  # in sys.prefix: "<seconds> <unix time it finished>", by the Makefile


class NotebookFailed(RuntimeError):
    """A notebook raised; the message names the notebook and the cell."""


@dataclass
class NotebookRun:
    notebook: str
    status: str
    seconds: float
    peak_rss_mb: float
    output: str
    error: str = ""
    runs_trained: int | None = None  # training runs the notebook's studies trained or resumed
    runs_reused: int | None = None  # ... and found finished (srlib.studies.ledger)


def list_notebooks(folder: Path | None = None, only=None) -> list[Path]:
    """The numbered notebooks (``NN_name.ipynb``) in order, optionally only the given numbers."""
    folder = folder or notebooks_dir()
    nbs = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = {str(o).zfill(2) for o in only}
        unknown = wanted - {p.name[:2] for p in nbs}
        if unknown:
            raise ValueError(f"no notebook numbered {', '.join(sorted(unknown))} in {folder}; "
                             f"have {', '.join(p.name[:2] for p in nbs)}")
        nbs = [p for p in nbs if p.name[:2] in wanted]
    return nbs


def ensure_kernel() -> str:
    """Register this interpreter as the ``srlib`` Jupyter kernel inside ``sys.prefix``."""
    from ipykernel.kernelspec import install

    install(kernel_name=KERNEL_NAME, display_name=f"Python (srlib, {Path(sys.prefix).name})",
            prefix=sys.prefix)
    return KERNEL_NAME


class _PeakMemory:
    """Samples the summed RSS of this process's children (the kernel) in a thread."""

    def __init__(self, interval: float = 0.2):
        import psutil

        self._proc, self._interval, self.peak = psutil.Process(), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                rss = sum(c.memory_info().rss for c in self._proc.children(recursive=True))
                self.peak = max(self.peak, rss)
            except Exception:  # a child ended between listing and reading
                pass
            self._stop.wait(self._interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _to_html(executed: Path) -> Path:
    """The executed notebook as HTML, without its stored widget state: nbconvert then shows each
    widget's static PNG twin (:mod:`srlib.viz.widgets`) instead of a widget view that needs a
    kernel and JavaScript from a CDN. The ``.ipynb`` keeps the state."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    nb.metadata.pop("widgets", None)
    body, _ = HTMLExporter().from_notebook_node(nb)
    return atomic_write_text(executed.with_suffix(".html"), body)


def _failure_text(nb: Path, exc: Exception) -> str:
    cell = getattr(exc, "exec_count", None)
    where = f"cell [{cell}]" if cell is not None else "a cell"
    ename, evalue = getattr(exc, "ename", type(exc).__name__), getattr(exc, "evalue", str(exc))
    return f"notebook {nb.name} failed in {where}: {ename}: {evalue}"


def run_notebook(nb: Path, profile: str, out_dir: Path, kernel: str, parameters: dict | None = None,
                 html: bool = True) -> NotebookRun:
    """Execute one notebook with papermill; never raises for a failing cell (see ``status``)."""
    import papermill as pm

    out = out_dir / nb.name
    ledger = out_dir / f"{nb.stem}.runs.jsonl"
    ledger.unlink(missing_ok=True)
    os.environ[LEDGER_ENV] = str(ledger)  # the kernel inherits it; every Study.run appends a line
    t0, error = time.perf_counter(), ""
    with _PeakMemory() as mem:
        try:
            pm.execute_notebook(str(nb), str(out), parameters={"profile": profile, **(parameters or {})},
                                kernel_name=kernel, cwd=str(nb.parent), progress_bar=False,
                                request_save_on_cell_execute=False)
        except Exception as exc:  # papermill's PapermillExecutionError and kernel failures
            error = _failure_text(nb, exc)
    secs = time.perf_counter() - t0
    os.environ.pop(LEDGER_ENV, None)
    if html and out.exists():
        _to_html(out)
    runs = read_ledger(ledger)
    return NotebookRun(nb.name, "failed" if error else "ok", round(secs, 1),
                       round(mem.peak / 2**20, 1), str(out.relative_to(project_root())), error,
                       runs["trained"], runs["reused"])


def setup_seconds(since: float | None = None, prefix: str | Path | None = None) -> float | None:
    """Seconds the last ``make`` set-up took, if it finished after ``since`` (a Unix time).

    The Makefile writes ``<venv>/.setup_seconds`` when it installs; a set-up that finished
    before the previous run report was written belongs to an earlier run, so it is not counted.
    """
    path = Path(prefix or sys.prefix) / SETUP_RECORD
    try:
        seconds, finished = (float(v) for v in path.read_text().split()[:2])
    except (OSError, ValueError):
        return None
    return seconds if since is None or finished > since else None


def _part_row(part: str, seconds: float, minutes: float | None) -> dict:
    used = None if not minutes else seconds / 60 / minutes
    verdict = "no budget" if used is None else "over" if used > 1 else "under"
    return {"part": part, "seconds": round(seconds, 1), "budget_minutes": minutes,
            "used_pct": None if used is None else round(100 * used, 1), "verdict": verdict}


def budget_table(runs: list[NotebookRun], profile: str, setup: float | None = None) -> dict:
    """Each part's wall time against its share of ``profile``'s budget, and the totals."""
    from .profiles import get_profile

    p = get_profile(profile)
    rows = [_part_row("setup", setup, p.budget("setup").minutes)] if setup is not None else []
    rows += [_part_row(r.notebook, r.seconds, p.budget(r.notebook).minutes) for r in runs]
    shares = [r["budget_minutes"] for r in rows]
    total = _part_row("total", sum(r["seconds"] for r in rows),
                      None if None in shares else float(sum(shares)))
    return {"parts": rows, "total": total, "setup_known": setup is not None,
            "profile_total_minutes": p.total_minutes, "profile_shares_minutes": p.shares_minutes,
            "rerun_minutes": p.rerun_minutes}


def _fmt(value, unit: str = "") -> str:
    return "–" if value is None else f"{value:g}{unit}"


def _budget_lines(b: dict) -> list[str]:
    lines = ["| part | wall time (min) | budget (min) | used | over / under |", "|---|---|---|---|---|"]
    lines += [f"| {r['part']} | {r['seconds'] / 60:.1f} | {_fmt(r['budget_minutes'])} | {_fmt(r['used_pct'], ' %')} "
              f"| {r['verdict']} |" for r in (*b["parts"], b["total"])]
    setup = ("counted above (the `make` set-up that preceded this run)" if b["setup_known"] else
             "not known (no `make` set-up finished since the previous report), not counted")
    return lines + ["", f"- set-up time: {setup}",
                    f"- the profile's budget for a fresh `make reproduce`: {_fmt(b['profile_total_minutes'], ' min')} "
                    f"(its parts' shares add up to {_fmt(b['profile_shares_minutes'], ' min')}); a rerun with "
                    f"everything cached: {_fmt(b['rerun_minutes'], ' min')}"]


TIMES_FILE = "notebook_times.json"  # in results/<profile>/: every notebook run kept, newest last


def record_times(runs: list[NotebookRun], profile: str, out: Path, keep: int = 20) -> Path:
    """Append each finished notebook's time, memory and trained/reused runs to ``notebook_times.json``.

    Unlike the run report (one ``reproduce`` call), this keeps the history across calls, so a
    notebook run alone (``--only 03``) still leaves its measured time for :mod:`srlib.docs`,
    which writes it into the notebook's first cell.
    """
    path = out / TIMES_FILE
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        history = {}
    prov = provenance(profile=profile)
    for r in runs:
        if r.status != "ok":
            continue
        rec = {"seconds": r.seconds, "peak_rss_mb": r.peak_rss_mb, "runs_trained": r.runs_trained,
               "runs_reused": r.runs_reused, "created": prov.get("created"), "commit": prov.get("commit"),
               "device": prov.get("device")}
        history[r.notebook] = (history.get(r.notebook, []) + [rec])[-keep:]
    return write_json(path, history)


def write_report(runs: list[NotebookRun], profile: str, out: Path, setup: float | None = None) -> Path:
    """``run_report.json`` and ``.md``: each notebook's status, time, memory, and the budget table."""
    prov = provenance(profile=profile)
    prov["environment_lock"] = lock_status(project_root())  # exact versions vs locks/ (srlib.lockfile)
    budget = budget_table(runs, profile, setup)
    write_json(out / "run_report.json", {"provenance": prov, "notebooks": [asdict(r) for r in runs],
                                         "budget": budget})
    lines = [f"# Run report: profile `{profile}`", "",
             "| notebook | status | wall time (s) | peak memory (MiB) | runs trained | runs reused |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r.notebook} | {r.status} | {r.seconds} | {r.peak_rss_mb} | {_fmt(r.runs_trained)} "
              f"| {_fmt(r.runs_reused)} |" for r in runs]
    lines += [""] + [f"- {r.notebook}: {r.error}" for r in runs if r.error]
    lines += ["", "## Time against the budget", ""] + _budget_lines(budget)
    lines += ["", "## Provenance", ""] + [f"- {k}: {v['text'] if k == 'environment_lock' else v}"
                                          for k, v in prov.items()]
    return atomic_write_text(out / "run_report.md", "\n".join(lines) + "\n")


def reproduce(profile: str = "quick", only=None, html: bool = True, parameters: dict | None = None,
              log=print) -> list[NotebookRun]:
    """Run the notebooks in order; raise :class:`NotebookFailed` at the first failure."""
    from .profiles import get_profile

    get_profile(profile)  # validates the name before anything runs
    kernel = ensure_kernel()
    out = results_dir(profile) / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    previous = results_dir(profile) / "run_report.json"
    setup = setup_seconds(since=previous.stat().st_mtime if previous.exists() else None)
    os.environ.setdefault("SRLIB_PROJECT_DIR", str(project_root()))
    runs = []
    for nb in list_notebooks(only=only):
        log(f"[srlib] running {nb.name} (profile {profile}) ...")
        run = run_notebook(nb, profile, out, kernel, parameters, html)
        runs.append(run)
        log(f"[srlib] {nb.name}: {run.status} in {run.seconds:.1f} s, peak {run.peak_rss_mb:.0f} MiB")
        if run.error:
            write_report(runs, profile, results_dir(profile), setup)
            raise NotebookFailed(run.error + f" (executed copy: {run.output})")
    write_report(runs, profile, results_dir(profile), setup)
    record_times(runs, profile, results_dir(profile))
    return runs
