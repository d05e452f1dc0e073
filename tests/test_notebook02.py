"""Notebook 02 (the AWSRN baseline) runs end to end under the smoke profile in a scratch project."""
import pandas as pd

from srlib.pipeline import reproduce

NB = "02_baseline_awsrn.ipynb"


def test_notebook_02_runs_under_smoke(data_dir, scratch_project):
    project = scratch_project(NB)
    runs = reproduce("smoke", only=["02"], log=lambda *a: None)
    assert [r.status for r in runs] == ["ok"], runs[0].error
    out = project / "results" / "smoke"
    table = out / "02_awsrn-s_x4_vs_paper.csv"
    assert table.read_text().startswith("# profile: smoke")
    df = pd.read_csv(table, comment="#")
    assert set(df.dataset) == {"Set5"} and df.psnr_paper.notna().all()
    assert pd.read_csv(out / "02_complexity.csv", comment="#").params_delta.eq(0).all()
    for name in ("02_training_curves", "02_awms_weights"):
        assert (project / "figures" / "smoke" / f"{name}.png").stat().st_size > 5_000
    runs = list((out / "runs" / "02-awsrn-s").glob("awsrn-s-x4-*"))  # the study's one arm
    assert len(runs) == 1, runs
    run = runs[0]
    assert (run / "checkpoints" / "best.pt").is_file() and (run / "checkpoints" / "last.pt").is_file()
    assert (run / "log.csv").is_file() and list((run / "evaluations").rglob("Set5_x4_*.csv"))
    moved = pd.read_csv(out / "02_selection_change.csv", comment="#")
    row = moved.set_index("dataset").loc["Set5"]
    assert abs(row.psnr - df.set_index("dataset").psnr["Set5"]) < 1e-9
    assert row.psnr_earlier != row.psnr_earlier and "no earlier run recorded for profile smoke" in row.earlier
    pruning = pd.read_csv(out / "02_awms_pruning.csv", comment="#")
    assert pruning.params.iloc[1] < pruning.params.iloc[0] and pruning.psnr_cost.iloc[0] == 0


def test_the_notebook_studies_are_registered_with_the_profile_budget():
    from srlib.studies import get_study, list_studies

    assert {"02-awsrn-s", "02-precision", "seed002-cnn"} <= set(list_studies())
    (arm,) = get_study("02-awsrn-s", "quick").arms
    assert (arm.model, arm.scale, arm.train) == ("awsrn-s", 4, {"steps": 1200})
    prec = get_study("02-precision", "quick")
    assert [(a.name, a.train["precision"], a.train["steps"]) for a in prec.arms] == [("fp32", "fp32", 300),
                                                                                   ("bf16", "bf16", 300)]
    cnn = get_study("seed002-cnn", "full")
    assert [(a.scale, a.train) for a in cnn.arms] == [(2, {"steps": 50_000}), (4, {"steps": 50_000})]
    assert [a.train for a in get_study("seed002-cnn", "quick").arms] == [{}, {}]  # the profile's steps


def test_the_earlier_set5_selected_run_is_found_only_in_its_old_format(scratch_project):
    import json

    from srlib.studies.baseline import _old_run

    project = scratch_project()
    run = project / "results" / "quick" / "checkpoints" / "awsrn-s_x4"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "best.pt").write_bytes(b"")
    assert _old_run("quick") is None  # no run.json
    (run / "run.json").write_text(json.dumps({"provenance": {"validation": "Set5 (/data/Set5/HR)"}}))
    assert _old_run("quick")[0] == run
    (run / "run.json").write_text(json.dumps({"provenance": {}, "validation": {"dataset": "T91"}}))
    assert _old_run("quick") is None  # a run of today's recipe, selected on held-out images
