"""Notebooks in git are clean and parametrised; the runner executes them and reports failures."""
import json

import nbformat
import pytest

from srlib.pipeline import NotebookFailed, list_notebooks, reproduce

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
