"""Notebook 06, part A (seed 002: INTER, NE, SC and the CNN) runs end to end under smoke."""
import pandas as pd

from srlib.pipeline import reproduce

NB = "06_evaluation_tables.ipynb"


def test_notebook_06_runs_under_smoke(data_dir, scratch_project):
    project = scratch_project(NB)
    runs = reproduce("smoke", only=["06"], log=lambda *a: None)
    assert [r.status for r in runs] == ["ok"], runs[0].error
    out = project / "results" / "smoke"
    means = pd.read_csv(out / "06_seed002_means.csv", comment="#")
    assert set(means.model) == {"INTER (bicubic)", "ML (NE+LLE)", "SC (ScSR)", "CNN (ours)"}
    assert set(means.dataset) == {"Urban100", "Set5"} and set(means.scale) == {2, 4}
    per_image = pd.read_csv(out / "06_seed002_per_image.csv", comment="#")
    again = per_image.groupby(["dataset", "scale", "model"]).psnr.mean()
    for r in means.itertuples():
        assert abs(again[r.dataset, r.scale, r.model] - r.psnr) < 1e-9
        bic = again[r.dataset, r.scale, "INTER (bicubic)"]
        assert abs(r.gain - (r.psnr - bic)) < 1e-9
    claims = pd.read_csv(out / "06_seed002_claims.csv", comment="#")
    assert len(claims) == 8 and set(claims.scale) == {2, 4}
    check = pd.read_csv(out / "06_seed002_classical_vs_cited.csv", comment="#")
    assert set(check.method) == {"ne", "sc"} and (check.cited > 25).all()
    assert (out / "06_seed002_per_image.csv").read_text().startswith("# profile: smoke")
    for name in ("fig2_panel", "fig3_psnr_urban100", "fig4_ssim_urban100", "psnr_set5_set14"):
        assert (project / "figures" / "smoke" / f"06_seed002_{name}.png").stat().st_size > 5_000
    assert sorted(p.name[:2] for p in (out / "dictionaries").glob("*.npz")) == ["ne"] * 3 + ["sc"] * 3
