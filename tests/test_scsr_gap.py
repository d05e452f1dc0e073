"""The ScSR gap table (srlib.studies.scsr_gap) under ``smoke``: variants, deltas, files, cache."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def gap(data_dir, tmp_path_factory):
    """One smoke run in a scratch project (SRLIB_PROJECT_DIR), shared by the tests."""
    from srlib.studies.scsr_gap import scsr_gap

    project = tmp_path_factory.mktemp("proj")
    (project / "pyproject.toml").write_text("")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SRLIB_PROJECT_DIR", str(project))
        yield project, scsr_gap("smoke")


def test_table_rows_and_deltas(gap):
    from srlib.reference import published

    _, t = gap
    assert list(t.variant) == ["ours", "no BP", "gaussian BP", "128 atoms"]  # smoke: Set5 only
    assert (t.dataset == "Set5").all() and (t.scale == 3).all() and (t.images == 2).all()
    cited = published(model="sc (Yang et al.)", dataset="Set5", scale=3).psnr.iloc[0]
    assert np.allclose(t.cited, cited) and np.allclose(t.delta, t.psnr - cited)
    assert t.vs_ours.iloc[0] == 0 and np.allclose(t.vs_ours, t.psnr - t.psnr.iloc[0])
    # each variant changes the output: back-projection, its model and the dictionary all matter
    assert (t.vs_ours.iloc[1:].abs() > 1e-4).all()
    # back-projection onto the true (bicubic) degradation raises PSNR over none at all
    assert t.psnr.iloc[0] > t.psnr.iloc[1]


def test_written_with_provenance_and_cached(gap):
    from srlib.studies.scsr_gap import scsr_gap

    project, t = gap  # SRLIB_PROJECT_DIR still points at the scratch project here
    out = project / "results" / "smoke"
    csv = out / "06_scsr_gap.csv"
    header = [ln for ln in csv.read_text().splitlines() if ln.startswith("#")]
    assert any(ln.startswith("# profile: smoke") for ln in header)
    assert any("published_results.csv" in ln for ln in header)
    back = pd.read_csv(csv, comment="#")
    assert np.allclose(back.psnr, t.psnr)
    dicts = sorted(p.name for p in (out / "dictionaries").glob("sc_x3_*.npz"))
    assert len(dicts) == 2  # the profile's 64 atoms and the larger variant, cached like the others
    assert any(np.load(out / "dictionaries" / d)["dh"].shape[1] == 128 for d in dicts)
    files = sorted((out / "evaluations").rglob("*.csv"))
    again = scsr_gap("smoke", write=False)  # every evaluation read back from the cache
    assert sorted((out / "evaluations").rglob("*.csv")) == files
    assert np.allclose(again.psnr, t.psnr)
