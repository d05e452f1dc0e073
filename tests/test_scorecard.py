"""The scorecard of notebook 06: the papers' numbers written down once, and a status for each.

Nothing trains here: a scratch project (SRLIB_PROJECT_DIR) holds no run, and the tests that need
one fake the study reader (:func:`srlib.studies.scorecard.study_means`)."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from srlib.complexity import count_params
from srlib.models import build_model
from srlib.reference import PAPERS, paper_numbers
from srlib.studies import imfm, scorecard as sc, seed002


def _row(df, **kw) -> pd.Series:
    hit = df
    for k, v in kw.items():
        hit = hit[hit[k] == v]
    assert len(hit) == 1, (kw, len(hit))
    return hit.iloc[0]


@pytest.fixture(scope="module")
def empty_project(tmp_path_factory):
    """A scratch project with no run and no results: ``(monkeypatch, scorecard('quick'))``."""
    project = tmp_path_factory.mktemp("proj")
    (project / "pyproject.toml").write_text("")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SRLIB_PROJECT_DIR", str(project))
        yield mp, sc.scorecard("quick")


# ---------------------------------------------------------------- the numbers written down

def test_paper_numbers_match_the_seeds_text():
    pn = paper_numbers()
    # seed 000 line 74: "Improved AWSRN | 28.47/0.7592 | 27.35/0.8169"
    assert _row(pn, paper="seed 000", model="improved awsrn (claimed)", dataset="Urban100", scale=4,
                metric="psnr").value == 27.35
    assert _row(pn, paper="seed 000", model="improved awsrn (claimed)", dataset="B100", scale=4,
                metric="ssim").value == 0.7592
    # seed 000 line 80: "B100 dataset showing PSNR/SSIM gains of +0.83 dB/+0.0207", "+0.73 dB/+0.0264" (x8 Urban100)
    assert _row(pn, paper="seed 000", metric="psnr_gain", dataset="B100", scale=4).value == pytest.approx(0.83)
    assert _row(pn, paper="seed 000", metric="ssim_gain", dataset="B100", scale=4).value == pytest.approx(0.0207)
    assert _row(pn, paper="seed 000", metric="ssim_gain", dataset="Urban100", scale=8).value == pytest.approx(0.0264)
    # seed 003 lines 223-225: "reduce model parameters by 63.7K, and reduce multiplication operations by 3.5G",
    # "only an additional 21.8K parameters"
    assert _row(pn, paper="seed 003", model="pab", metric="params_added_K").value == -63.7
    assert _row(pn, paper="seed 003", model="pab", metric="multi_adds_added_G").value == -3.5
    assert _row(pn, paper="seed 003", model="pab+mswam", metric="params_added_K").value == 21.8
    # seed 003 line 235 (Table 2 gain row "0.09 0.07 0.1 0.06 0.11"): A2F-M's printed 0.06
    assert _row(pn, paper="seed 003", model="a2f-m", metric="psnr_gain").value == 0.06
    # seed 003 line 264: "MWAUM 596.362 0.3437 26.25"; line 278: "IMFM 670 K 5109 21.225 0.053"
    t3 = pn[(pn["where"] == "Table 3") & (pn.model == "imfm")].set_index("metric").value
    assert (t3.params_K, t3.seconds, t3.psnr) == (596.362, 0.3437, 26.25)
    t4 = pn[(pn["where"] == "Table 4") & (pn.model == "imfm")].set_index("metric").value
    assert (t4.params_K, t4.gpu_memory_MB, t4.cpu_seconds, t4.gpu_seconds) == (670, 5109, 21.225, 0.053)
    # the AWSRN paper's Table 1: AWSRN-S x4 has 587,742 parameters
    assert _row(pn, paper="seed 001", model="awsrn-s", scale=4, metric="params").value == 587742


def test_paper_numbers_counts_and_order():
    pn = paper_numbers()
    n = pn.groupby("paper", sort=False).size()
    # seed 000: Tables I/II, 2 models x 2 sets x 2 scales x (PSNR, SSIM) = 16, + the text's 8 gains
    # seed 002: 8 cited NE+LLE/ScSR PSNRs (no SSIM) + 4 claims; seed 003: 3 ablation numbers,
    # Table 2 5x3, Table 3 3x3, Table 4 5x4
    assert (n["seed 000"], n["seed 002"], n["seed 003"]) == (24, 12, 3 + 15 + 9 + 20)
    # the AWSRN paper: 4 models x 3 scales x 5 sets + AWSRN x8 x 5 sets, x (PSNR, SSIM); 13 parameter
    # counts, 2 Multi-Adds
    assert n["seed 001"] == (4 * 3 * 5 + 5) * 2 + 13 + 2
    # PAN, IMDN: 3 scales x 5 sets x 2; CARN-M, LatticeNet: no Manga109
    assert [n[k] for k in ("PAN", "IMDN", "CARN-M", "LatticeNet")] == [30, 30, 24, 24]
    assert list(n.index) == [p for p in PAPERS if p in n.index]  # comparators first
    assert list(n.index[:4]) == ["PAN", "IMDN", "CARN-M", "LatticeNet"]
    assert pn[pn.metric != "claim"].value.notna().all()


def test_paper_numbers_agree_with_the_study_modules():
    """seed 003's numbers also live in srlib.studies.imfm's constants: the two copies must agree."""
    pn = paper_numbers()
    s3 = pn[pn.paper == "seed 003"]
    t2 = s3[s3["where"] == "Table 2"].pivot(index="model", columns="metric", values="value")
    for model, (step, cos) in imfm.PAPER_TABLE2.items():
        assert (t2.psnr_step[model], t2.psnr_cos[model]) == (step, cos)
    t3 = s3[s3["where"] == "Table 3"].pivot(index="model", columns="metric", values="value")
    for up, vals in imfm.PAPER_TABLE3.items():
        arm = "imfm" if up == "mwaum" else f"imfm-{up}"
        assert (t3.params_K[arm], t3.seconds[arm], t3.psnr[arm]) == vals
    t4 = s3[s3["where"] == "Table 4"].pivot(index="model", columns="metric", values="value")
    for model, vals in imfm.PAPER_TABLE4.items():
        assert tuple(t4.loc[model, ["params_K", "gpu_memory_MB", "cpu_seconds", "gpu_seconds"]]) == vals
    abl = s3[s3["where"].str.contains("ablation")].set_index(["model", "metric"]).value
    assert abl["pab", "params_added_K"] * 1e3 == pytest.approx(imfm.PAPER_ABLATION["pab"]["params_added"])
    assert abl["pab", "multi_adds_added_G"] == imfm.PAPER_ABLATION["pab"]["multi_adds_added_G"]
    assert abl["pab+mswam", "params_added_K"] * 1e3 == pytest.approx(imfm.PAPER_ABLATION["pab+mswam"]["params_added"])


def test_seed002_claims_are_the_ones_seed002_checks():
    """The CSV's claim texts are exactly those srlib.studies.seed002.check_claims tests."""
    rows = [{"model": m, "dataset": "Urban100", "scale": 2, "image": f"img_{i}", "psnr": 20.0 + j + 0.1 * i,
             "ssim": 0.5 + 0.01 * j, "seconds": 0.1} for j, m in enumerate(seed002.ORDER) for i in range(3)]
    urban = pd.DataFrame(rows)
    claims = seed002.check_claims(urban, seed002.mean_table(urban), [2])
    pn = paper_numbers()
    assert set(pn[pn.metric == "claim"].note) == set(claims.claim)


# ---------------------------------------------------------------- statuses with no run

def test_every_number_gets_a_status(data_dir, empty_project):
    _, df = empty_project
    pn = paper_numbers()
    assert len(df) == len(pn)
    assert df[["paper", "model", "metric"]].equals(pn[["paper", "model", "metric"]])
    assert df.status.notna().all() and set(df.status) <= set(sc.STATUSES)
    assert (df.reason.str.len() > 0).all()
    assert not df.reason.str.startswith("reading ours failed").any(), df[df.reason.str.startswith("reading")].reason
    assert list(df.paper.iloc[:4]) == ["PAN"] * 4  # comparators first
    summary = sc.scorecard_summary(df)
    assert summary.total.sum() == len(df)
    assert (summary[list(sc.STATUSES)].sum(axis=1) == summary.total).all()


def test_without_runs_study_rows_name_what_produces_them(data_dir, empty_project):
    _, df = empty_project
    studied = {("seed 001", "awsrn-s"): "02-awsrn-s", ("seed 000", "improved awsrn (claimed)"): "03-ablation",
               ("seed 003", "imfm"): "05-imfm"}
    for (paper, model), study in studied.items():
        rows = df[(df.paper == paper) & (df.model == model) & df.metric.isin(["psnr", "psnr_gain"])
                  & (df.scale.fillna(4) == 4) & (df.dataset != "Manga109")]
        assert len(rows) and (rows.status == "not checkable here").all()
        assert rows.reason.str.contains(study).all() and rows.reason.str.contains("notebook").all()
    claims = df[df.metric == "claim"]
    assert (claims.status == "not checkable here").all() and claims.reason.str.contains("notebook 06").all()
    x8 = df[(df.paper == "seed 000") & (df.scale == 8)]
    assert (x8.status == "not checkable here").all() and x8.reason.str.contains("full profile").all()
    timing = df[df.metric.isin(["cpu_seconds", "gpu_seconds", "seconds", "gpu_memory_MB"])]
    assert len(timing) == 3 + 15 and (timing.status == "not checkable here").all()


def test_parameter_counts_are_checked_exactly(data_dir, empty_project):
    _, df = empty_project
    r = _row(df, paper="seed 001", model="awsrn-s", scale=4, metric="params")
    assert (r.status, r.ours, r.delta, r.tolerance) == ("reproduced", 587742, 0, "exact")
    # Table 3: IMFM with MWAUM, 596.362K printed; ours 595,403 -> -959 parameters
    r = _row(df, paper="seed 003", where="Table 3", model="imfm", metric="params_K")
    ours = count_params(build_model("imfm", 4))
    assert r.ours == pytest.approx(ours / 1e3) and r.delta == pytest.approx((ours - 596_362) / 1e3)
    assert r.status == ("reproduced" if ours == 596_362 else "not reached")
    # "670 K" is exact to the printed thousand: +-0.5K
    r = _row(df, paper="seed 003", where="Table 4", model="imfm", metric="params_K")
    assert r.tolerance == "+-0.5K" and r.delta == pytest.approx(ours / 1e3 - 670)
    # models not in the zoo cannot be counted
    assert _row(df, paper="seed 003", model="maffsrn", metric="params_K").status == "not checkable here"


def test_printed_tolerance():
    assert sc.printed_tolerance(63.7) == pytest.approx(0.05)
    assert sc.printed_tolerance(670) == 0.5
    assert sc.printed_tolerance(596.362) == pytest.approx(0.0005)
    assert sc.printed_tolerance(587742, "params") == 0.0


# ---------------------------------------------------------------- faked finished studies

def _fake_means(tables: dict):
    def study_means(name, profile):
        rows = tables.get(name, [])
        df = pd.DataFrame([{"scale": 4, "ssim": math.nan, "n_images": 100, "seeds": 1, "steps": 1200,
                            "train_seconds": 60.0, "precision": "fp32", **r} for r in rows],
                          columns=["arm", "dataset", "scale", "psnr", "ssim", "n_images", "seeds", "steps",
                                   "train_seconds", "precision"])
        df.attrs["states"] = {r["arm"]: "finished" for r in rows}
        return df
    return study_means


def test_a_finished_study_turns_rows_into_statuses(data_dir, empty_project):
    mp, _ = empty_project
    mp.setattr(sc, "study_means", _fake_means({
        "02-awsrn-s": [{"arm": "awsrn-s-x4", "dataset": "Set5", "psnr": 31.80},
                       {"arm": "awsrn-s-x4", "dataset": "Urban100", "psnr": 25.00}],
        "03-ablation": [{"arm": "baseline", "dataset": "B100", "psnr": 27.00},
                        {"arm": "all-on", "dataset": "B100", "psnr": 27.50},
                        {"arm": "baseline", "dataset": "Urban100", "psnr": 26.00},
                        {"arm": "all-on", "dataset": "Urban100", "psnr": 27.20}],
    }))
    mp.setattr(sc, "part_a_table", lambda profile, name: pd.DataFrame(
        {"scale": [2, 4, 2, 4],
         "claim": ["CNN has the highest mean PSNR"] * 2 + ["SC has the smallest PSNR range (IQR)"] * 2,
         "holds": [True, True, True, False], "margin": ["m"] * 4}) if name == "claims" else None)
    df = sc.scorecard("quick")
    # AWSRN-S x4 (AWSRN paper 31.77 on Set5, 25.56 on Urban100)
    r = _row(df, paper="seed 001", model="awsrn-s", dataset="Set5", scale=4, metric="psnr")
    assert (r.status, r.delta) == ("reproduced", pytest.approx(0.03))
    r = _row(df, paper="seed 001", model="awsrn-s", dataset="Urban100", scale=4, metric="psnr")
    assert (r.status, r.delta) == ("not reached", pytest.approx(-0.56))
    assert "below" in r.reason and "1200 steps" in r.budget_ours
    # seed 000's gains: B100 +0.50 against +0.83 (not reached, -0.33), Urban100 +1.20 against +1.06
    r = _row(df, paper="seed 000", metric="psnr_gain", dataset="B100", scale=4)
    assert (r.status, r.ours, r.delta) == ("not reached", pytest.approx(0.5), pytest.approx(-0.33))
    assert "60%" in r.reason
    r = _row(df, paper="seed 000", metric="psnr_gain", dataset="Urban100", scale=4)
    assert (r.status, r.delta) == ("reproduced", pytest.approx(0.14))
    # quick's AWSRN-S stands in for AWSRN: the absolute row shows ours but is not a like-for-like check
    r = _row(df, paper="seed 000", model="improved awsrn (claimed)", dataset="B100", scale=4, metric="psnr")
    assert r.status == "not checkable here" and r.ours == 27.5 and r.delta == pytest.approx(27.5 - 28.47)
    # seed 002's claims: the first holds at both scales, the second at one
    claims = df[df.metric == "claim"].set_index("note")
    assert claims.status["CNN has the highest mean PSNR"] == "reproduced"
    assert claims.status["SC has the smallest PSNR range (IQR)"] == "not reached"
    assert claims.status["CNN has the highest mean SSIM"] == "not checkable here"


# ---------------------------------------------------------------- official weights through the cache

def test_official_means_reads_what_evaluate_cached_wrote(data_dir, weights_dir, scratch_project):
    from srlib.evalcache import evaluate_cached

    scratch_project()
    assert sc.official_means("pan", "Set5", 4, "quick", max_images=1) is None  # nothing cached: nothing computed
    df = evaluate_cached("pan", ["Set5"], [4], profile="quick", checkpoint="official", max_images=1)
    got = sc.official_means("pan", "Set5", 4, "quick", max_images=1)
    assert got["psnr"] == df.psnr.mean() and got["n_images"] == 1 and got["device"] == "cpu"
    assert sc.official_means("pan", "Set5", 4, "quick") is None  # every image: another key
