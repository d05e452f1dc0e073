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
    run = out / "checkpoints" / "awsrn-s_x4"
    assert (run / "checkpoints" / "best.pt").is_file() and (run / "checkpoints" / "last.pt").is_file()
    assert (run / "log.csv").is_file()
