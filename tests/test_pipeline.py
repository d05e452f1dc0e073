"""Notebooks in git are clean and parametrised; the runner executes them and reports failures."""
import json

import nbformat
import pytest

from srlib.pipeline import NotebookFailed, NotebookRun, list_notebooks, reproduce, setup_seconds, write_report
from srlib.profiles import BUDGET_PARTS, get_profile

NOTEBOOKS = list_notebooks()


def test_there_are_numbered_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "01_data_prep.ipynb"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_no_outputs_and_a_parameters_cell(nb):
    doc = nbformat.read(nb, as_version=4)
    code = [c for c in doc.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), f"{nb.name} carries outputs"
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "profile" in params[0].source


def test_only_refuses_unknown_numbers():
    with pytest.raises(ValueError, match="no notebook numbered 99"):
        list_notebooks(only=["99"])


def test_notebook_01_runs_under_smoke(data_dir, scratch_project):
    project = scratch_project("01_data_prep.ipynb")
    runs = reproduce("smoke", only=["01"], log=lambda *a: None)
    assert [r.status for r in runs] == ["ok"]
    out = project / "results" / "smoke"
    assert (out / "notebooks" / "01_data_prep.html").stat().st_size > 10_000
    assert (out / "01_bicubic_table.csv").read_text().startswith("# profile: smoke")
    assert (project / "figures" / "smoke" / "01_degradation.png").exists()
    report = json.loads((out / "run_report.json").read_text())
    assert report["notebooks"][0]["peak_rss_mb"] > 50 and report["provenance"]["profile"] == "smoke"


def test_a_failing_notebook_stops_the_run_naming_notebook_and_cell(scratch_project):
    project = scratch_project()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('profile = "quick"', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_code_cell("raise ValueError('boom ' + profile)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, project / "notebooks" / "01_bad.ipynb")
    nbformat.write(nb, project / "notebooks" / "02_never.ipynb")
    with pytest.raises(NotebookFailed, match=r"01_bad.ipynb failed in cell \[\d+\]: ValueError: boom smoke"):
        reproduce("smoke", html=False, log=lambda *a: None)
    report = json.loads((project / "results" / "smoke" / "run_report.json").read_text())
    assert [r["status"] for r in report["notebooks"]] == ["failed"]  # 02 never ran


def test_unknown_profile_is_refused_before_anything_runs():
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        reproduce("fast")


def test_quick_budget_is_the_design_table():
    p = get_profile("quick")
    minutes = {k: p.budget(k).minutes for k in BUDGET_PARTS}
    assert minutes == {"setup": 3, "01": 2, "02": 10, "03": 15, "04": 15, "05": 15, "06": 15, "07": 5}
    assert p.shares_minutes == 80 and p.total_minutes == 90 and p.rerun_minutes == 5
    assert p.budget("02_baseline_awsrn.ipynb") is p.budget(2) is p.budget("02")
    assert get_profile("full").shares_minutes is None  # a GPU box has no 2-core budget
    with pytest.raises(ValueError, match="no budget part 9; the parts are setup, 01"):
        p.budget(9)


def test_report_sets_each_notebook_against_its_budget(tmp_path):
    runs = [NotebookRun("01_data_prep.ipynb", "ok", 60.0, 300.0, "x"),
            NotebookRun("02_baseline_awsrn.ipynb", "ok", 900.0, 400.0, "y")]
    write_report(runs, "quick", tmp_path, setup=90.0)
    budget = json.loads((tmp_path / "run_report.json").read_text())["budget"]
    parts = {r["part"]: r for r in budget["parts"]}
    assert parts["setup"]["used_pct"] == 50.0 and parts["setup"]["verdict"] == "under"  # 1.5 of 3 min
    assert parts["01_data_prep.ipynb"]["used_pct"] == 50.0  # 1 of 2 min
    assert parts["02_baseline_awsrn.ipynb"]["used_pct"] == 150.0 and parts["02_baseline_awsrn.ipynb"]["verdict"] == "over"
    total = budget["total"]  # 17.5 min against 3 + 2 + 10
    assert total["seconds"] == 1050.0 and total["budget_minutes"] == 15 and total["used_pct"] == 116.7
    md = (tmp_path / "run_report.md").read_text()
    assert "| 02_baseline_awsrn.ipynb | 15.0 | 10 | 150 % | over |" in md
    assert "| total | 17.5 | 15 | 116.7 % | over |" in md and "90 min" in md
    write_report(runs, "quick", tmp_path)  # setup unknown: not counted
    budget = json.loads((tmp_path / "run_report.json").read_text())["budget"]
    assert not budget["setup_known"] and budget["total"]["seconds"] == 960.0 and budget["total"]["budget_minutes"] == 12


def test_setup_seconds_counts_only_a_setup_newer_than_the_last_report(tmp_path):
    assert setup_seconds(prefix=tmp_path) is None  # make never recorded one
    (tmp_path / ".setup_seconds").write_text("95 1000\n")
    assert setup_seconds(prefix=tmp_path) == 95.0
    assert setup_seconds(since=999.0, prefix=tmp_path) == 95.0
    assert setup_seconds(since=1000.5, prefix=tmp_path) is None  # reported by an earlier run
