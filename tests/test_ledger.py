"""The run report counts the training runs each notebook trained and reused (srlib.studies.ledger)."""
import json

import nbformat

from srlib.pipeline import TIMES_FILE, NotebookRun, record_times, reproduce
from srlib.studies.ledger import LEDGER_ENV, read_ledger, record_run


def test_ledger_counts_each_arm_once_as_first_seen(tmp_path, monkeypatch):
    path = tmp_path / "nb.runs.jsonl"
    monkeypatch.setenv(LEDGER_ENV, str(path))
    record_run("s1", "smoke", {"a": "finished", "b": "not started", "c": "partial"},
               {"a": "finished", "b": "finished", "c": "diverged"})
    record_run("s1", "smoke", {"a": "finished", "b": "finished"}, {"a": "finished", "b": "finished"})
    record_run("s2", "smoke", {"x": "not started"}, {"x": "finished"})
    got = read_ledger(path)
    assert got == {"trained": 2, "reused": 1, "unfinished": 1, "studies": ["s1", "s2"]}


def test_without_the_variable_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(LEDGER_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    record_run("s", "smoke", {"a": "not started"}, {"a": "finished"})
    assert list(tmp_path.iterdir()) == []
    assert read_ledger(tmp_path / "missing.jsonl")["trained"] == 0


def test_a_notebooks_studies_reach_the_run_report(scratch_project):
    project = scratch_project()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('profile = "quick"', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("from srlib.studies.ledger import record_run\n"
                                          "record_run('s', profile, {'a': 'finished', 'b': 'not started'},"
                                          " {'a': 'finished', 'b': 'finished'})")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, project / "notebooks" / "01_ledger.ipynb")
    runs = reproduce("smoke", html=False, log=lambda *a: None)
    assert (runs[0].runs_trained, runs[0].runs_reused) == (1, 1)
    out = project / "results" / "smoke"
    assert "| 01_ledger.ipynb | ok |" in (out / "run_report.md").read_text()
    assert "| 1 | 1 |" in (out / "run_report.md").read_text()
    history = json.loads((out / TIMES_FILE).read_text())
    assert history["01_ledger.ipynb"][-1]["runs_trained"] == 1


def test_times_keep_a_history_across_calls(tmp_path):
    for secs in (10.0, 20.0, 30.0):
        record_times([NotebookRun("03_x.ipynb", "ok", secs, 1.0, "o", "", 0, 2),
                      NotebookRun("04_y.ipynb", "failed", 5.0, 1.0, "o", "boom")], "smoke", tmp_path, keep=2)
    history = json.loads((tmp_path / TIMES_FILE).read_text())
    assert [r["seconds"] for r in history["03_x.ipynb"]] == [20.0, 30.0]
    assert "04_y.ipynb" not in history  # a failed run measures nothing
