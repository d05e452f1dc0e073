"""make docs: measured times into the notebooks' first cells, the last quick run's results into the README."""
import json

import nbformat
import pytest

from srlib import docs
from srlib.pipeline import NotebookRun, record_times


def _history(project, profile, runs):
    record_times(runs, profile, project / "results" / profile)


def test_replace_block_keeps_the_rest_and_refuses_missing_markers():
    text = "a\n<!-- srlib:begin x -->\nold\n<!-- srlib:end x -->\nb\n"
    assert docs.replace_block(text, "x", "new") == "a\n<!-- srlib:begin x -->\nnew\n<!-- srlib:end x -->\nb\n"
    with pytest.raises(docs.DocsError, match="README.md has no '<!-- srlib:begin y -->'"):
        docs.replace_block(text, "y", "new", "README.md")


def test_time_sentence_names_first_run_and_rerun():
    first = {"seconds": 720.0, "runs_trained": 9, "runs_reused": 0, "device": "cpu", "commit": "abcdef123", "created": "2026-11-28T01"}
    rerun = {"seconds": 12.0, "runs_trained": 0, "runs_reused": 9, "device": "cpu", "commit": "abcdef123", "created": "2026-11-28T02"}
    s = docs.time_sentence([first, rerun], "quick")
    assert s.startswith("`quick`: 12.0 min when it trains (9 runs; cpu, commit abcdef1, 2026-11-28)")
    assert "12 s when its 9 runs are cached" in s
    assert docs.time_sentence([], "smoke") == "`smoke`: not measured here"
    plain = {"seconds": 95.0, "runs_trained": 0, "runs_reused": 0, "device": "cpu", "commit": "x", "created": "y"}
    assert docs.time_sentence([plain], "quick").startswith("`quick`: 1.6 min (cpu")
    cached = {**plain, "seconds": 15.0}
    assert docs.time_sentence([plain, cached], "quick").startswith("`quick`: 15 s to 1.6 min over its last 2 runs (cpu")


def test_stamp_notebooks_writes_the_measured_time(scratch_project):
    project = scratch_project()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 03 title\n\n<!-- srlib:begin times -->\n<!-- srlib:end times -->\n\nmore"),
                nbformat.v4.new_code_cell('profile = "quick"', metadata={"tags": ["parameters"]})]
    nbformat.write(nb, project / "notebooks" / "03_x.ipynb")
    _history(project, "quick", [NotebookRun("03_x.ipynb", "ok", 600.0, 1.0, "o", "", 4, 1)])
    assert docs.stamp_notebooks() == [project / "notebooks" / "03_x.ipynb"]
    src = nbformat.read(project / "notebooks" / "03_x.ipynb", as_version=4).cells[0].source
    assert "- `quick`: 10.0 min when it trains (4 runs;" in src and "- `smoke`: not measured here" in src
    # the GPU profiles: an estimate per notebook from the assumed step rate, said to be one
    from srlib.gpucheck import assumed_check, estimate_minutes

    want = estimate_minutes(assumed_check(), "gpu")["parts"]["03"]["minutes"]
    assert f"- `gpu`: not measured here; about {want:.0f} min on one GPU, estimated from an assumed" in src
    assert "- `full`: not measured here; about" in src
    assert src.startswith("# 03 title") and src.endswith("more")
    assert docs.stamp_notebooks() == []  # nothing new: nothing rewritten


def test_readme_results_come_from_the_result_files(scratch_project):
    project = scratch_project()
    with pytest.raises(docs.DocsError, match="01_bicubic_table.csv is missing: run `make reproduce PROFILE=quick`"):
        docs.readme_results("quick")
    out = project / "results" / "quick"
    out.mkdir(parents=True)
    (out / "01_bicubic_table.csv").write_text("# profile: quick\ndataset,scale,psnr,psnr_paper,psnr_delta\nSet5,2,33.6487,33.66,-0.0113\n")
    (out / "02_awsrn-s_x4_vs_paper.csv").write_text("dataset,scale,psnr,psnr_paper,psnr_delta,psnr_bicubic\nSet5,4,30.18,31.77,-1.59,28.42\n")
    (out / "run_report.json").write_text(json.dumps({"provenance": {"commit": "0123456789", "created": "2026-11-28T00", "device": "cpu: x86_64"}}))
    (project / "README.md").write_text("# x\n<!-- srlib:begin results -->\n<!-- srlib:end results -->\n"
                                       "<!-- srlib:begin gpu-estimate -->\n<!-- srlib:end gpu-estimate -->\n")
    assert docs.update_readme("quick")
    text = " ".join((project / "README.md").read_text().split())  # tabulate pads the columns
    assert "| Set5 | 2 | 33.65 | 33.66 | -0.011 |" in text and "commit 0123456" in text
    assert "| Set5 | 4 | 30.18 | 31.77 | -1.590 | 28.42 |" in text
    assert "**assumed, not measured**" in text and "`gpu` on one GPU: about" in text
    assert not docs.update_readme("quick")
