"""The papermill runner: execute the numbered notebooks in order under one profile.

For each ``notebooks/NN_*.ipynb`` it injects ``profile`` into the cell tagged ``parameters``,
runs it in this Python's kernel (registered as ``srlib`` in ``sys.prefix``, so a notebook never
runs in a system Python), and writes the executed notebook and its HTML under
``results/<profile>/notebooks/``. A run report (``run_report.md`` / ``.json``) records each
notebook's wall time, peak memory (resident set of the kernel process, sampled every 0.2 s) and
status, with the machine and library versions. A failing notebook stops the run; the error
names the notebook and the failing cell.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .paths import notebooks_dir, project_root, results_dir
from .provenance import atomic_write_text, provenance, write_json

KERNEL_NAME = "srlib"


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
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
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
    t0, error = time.perf_counter(), ""
    with _PeakMemory() as mem:
        try:
            pm.execute_notebook(str(nb), str(out), parameters={"profile": profile, **(parameters or {})},
                                kernel_name=kernel, cwd=str(nb.parent), progress_bar=False,
                                request_save_on_cell_execute=False)
        except Exception as exc:  # papermill's PapermillExecutionError and kernel failures
            error = _failure_text(nb, exc)
    secs = time.perf_counter() - t0
    if html and out.exists():
        _to_html(out)
    return NotebookRun(nb.name, "failed" if error else "ok", round(secs, 1),
                       round(mem.peak / 2**20, 1), str(out.relative_to(project_root())), error)


def write_report(runs: list[NotebookRun], profile: str, out: Path) -> Path:
    prov = provenance(profile=profile)
    write_json(out / "run_report.json", {"provenance": prov, "notebooks": [asdict(r) for r in runs]})
    lines = [f"# Run report: profile `{profile}`", "",
             "| notebook | status | wall time (s) | peak memory (MiB) |", "|---|---|---|---|"]
    lines += [f"| {r.notebook} | {r.status} | {r.seconds} | {r.peak_rss_mb} |" for r in runs]
    lines += [""] + [f"- {r.notebook}: {r.error}" for r in runs if r.error]
    lines += ["", "## Provenance", ""] + [f"- {k}: {v}" for k, v in prov.items()]
    return atomic_write_text(out / "run_report.md", "\n".join(lines) + "\n")


def reproduce(profile: str = "quick", only=None, html: bool = True, parameters: dict | None = None,
              log=print) -> list[NotebookRun]:
    """Run the notebooks in order; raise :class:`NotebookFailed` at the first failure."""
    from .profiles import get_profile

    get_profile(profile)  # validates the name before anything runs
    kernel = ensure_kernel()
    out = results_dir(profile) / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SRLIB_PROJECT_DIR", str(project_root()))
    runs = []
    for nb in list_notebooks(only=only):
        log(f"[srlib] running {nb.name} (profile {profile}) ...")
        run = run_notebook(nb, profile, out, kernel, parameters, html)
        runs.append(run)
        log(f"[srlib] {nb.name}: {run.status} in {run.seconds:.1f} s, peak {run.peak_rss_mb:.0f} MiB")
        if run.error:
            write_report(runs, profile, results_dir(profile))
            raise NotebookFailed(run.error + f" (executed copy: {run.output})")
    write_report(runs, profile, results_dir(profile))
    return runs
