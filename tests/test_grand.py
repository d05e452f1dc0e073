"""The grand table of notebook 06 (srlib.studies.grand): every method x benchmark x scale, read from the
studies' runs and the evaluation cache, never trained; and the per-image counts against baselines.

Smoke-size: a study of two tiny CNN arms (8 features, 6 steps, 1 Set5 image), one of them trained."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from srlib.evaluate import read_table
from srlib.models import build_model
from srlib.studies import Arm, Study, grand, registry, stats

TINY = dict(n_feats=8, n_mapping=1)


def _tiny_arms():
    return [Arm("a", "cnn", 2, model_kwargs=TINY, train={"precision": "fp32"}),
            Arm("b", "cnn", 2, model_kwargs=TINY, train={"precision": "fp32", "lr": 3e-3})]


@pytest.fixture
def tiny(data_dir, tmp_path, monkeypatch):
    """A scratch project with the study ``grand-tiny`` registered: arm ``a`` trained, ``b`` not."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.setenv("SRLIB_PROJECT_DIR", str(tmp_path))
    monkeypatch.setitem(registry._STUDIES, "grand-tiny",
                        lambda p: Study("grand-tiny", p, _tiny_arms(), baseline="a", max_images=1))
    Study("grand-tiny", "smoke", _tiny_arms()[:1], max_images=1).run(threads=1, progress=False)
    return tmp_path


def test_the_table_reads_the_finished_arm_and_reports_the_missing_one_without_training(tiny, fits, monkeypatch):
    real = grand._timing
    # arm a's evaluation reads as made on a GPU: its CPU time is then measured on one image
    monkeypatch.setattr(grand, "_timing", lambda rows, meta: None if rows.model.iloc[0] == "cnn" else real(rows, meta))
    g = grand.grand_table("smoke", studies=("grand-tiny",), zoo=(), classical=("bicubic",),
                          evaluate={"bicubic": (None, None)}, measure=True)
    assert fits == []  # nothing trained: arm b is reported, not run
    t = g.table
    assert list(t.columns) == grand.COLUMNS
    # smoke: Set5 only; bicubic at x2 and x4 (the profile's scales), the two arms at x2
    assert [(r.method, r.dataset, r.scale) for r in t.itertuples()] == [
        ("bicubic", "Set5", 2), ("bicubic", "Set5", 4), ("grand-tiny:a", "Set5", 2), ("grand-tiny:b", "Set5", 2)]
    rows = t.set_index("method")
    a, b = rows.loc["grand-tiny:a"], rows.loc["grand-tiny:b"]
    assert a.status == "ok" and a.n_images == 1 and a.images == "first 1" and 15 < a.psnr < 50
    assert a.params == sum(p.numel() for p in build_model("cnn", 2, **TINY).parameters())
    assert a.source.startswith("grand-tiny/a seed(s) 0 (a-")
    assert a.cpu_s_per_image > 0 and a.time_source.startswith("measured here: 1 forward pass on baby (")
    assert b.status.startswith("not run (seed 0 not started;")
    assert "srlib study run grand-tiny --profile smoke" in b.status and math.isnan(b.psnr) and b.n_images == 0
    assert b.params == a.params  # counted from the model, trained or not
    assert math.isnan(b.cpu_s_per_image) and b.time_source == "not measured (no evaluation)"
    bic = t[t.method == "bicubic"]
    assert (bic.status == "ok").all() and (bic.images == "first 2").all() and (bic.params == 0).all()
    assert bic.time_source.str.match(r"evaluation \(2 image passes, \d thread").all()
    per_scale = g.per_image[g.per_image.method == "bicubic"].groupby("scale").seconds.mean()
    assert bic.cpu_s_per_image.tolist() == pytest.approx(per_scale.tolist())
    assert [(e["method"], e["scale"]) for e in g.evaluated] == [("bicubic", 2), ("bicubic", 4)]
    # the per-image rows behind the means
    pi = g.per_image
    assert set(pi.method) == {"bicubic", "grand-tiny:a"}
    assert pi[pi.method == "grand-tiny:a"].psnr.mean() == pytest.approx(a.psnr)
    # comparisons: a vs bicubic (learned), b vs a (its study's baseline), b vs bicubic
    assert set(map(tuple, g.pairs[["method", "baseline", "kind"]].to_numpy())) == {
        ("grand-tiny:b", "grand-tiny:a", "study baseline"), ("grand-tiny:a", "bicubic", "bicubic"),
        ("grand-tiny:b", "bicubic", "bicubic")}
    counts = grand.improvement_table(g)
    assert len(counts) == 1  # only a has per-image rows to compare
    c = counts.iloc[0]
    d = pi[(pi.method == "grand-tiny:a")].psnr.iloc[0] - pi[(pi.method == "bicubic") & (pi.scale == 2)
                                                             & (pi.image == "baby")].psnr.iloc[0]
    assert (c.n, c.higher + c.equal + c.lower, c.mean_delta) == (1, 1, pytest.approx(d))
    # the files, with their provenance
    out = tiny / "results" / "smoke"
    for name in ("06_grand_table.csv", "06_grand_table.md", "06_grand_table.tex", "06_grand_per_image.csv",
                 "06_images_improved.csv", "06_images_improved.md", "06_images_improved.tex"):
        assert (out / name).is_file(), name
        assert f"results/smoke/{name}" in g.files
    assert (out / "06_grand_table.csv").read_text().startswith("# profile: smoke")
    back = read_table(out / "06_grand_table.csv")
    assert list(back.columns) == grand.COLUMNS and len(back) == len(t)
    assert "\\begin{tabular}" in (out / "06_grand_table.tex").read_text()
    # a benchmark the study does not evaluate is said so, not evaluated here
    other = grand.grand_table("smoke", datasets=("Set14",), studies=("grand-tiny",), zoo=(), classical=(), evaluate={},
                              write=False).table.set_index("method").status
    assert other["grand-tiny:a"] == "not evaluated (study grand-tiny evaluates Set5 in smoke)"
    assert other["grand-tiny:b"].startswith("not run (")
    assert fits == []
    md = grand.markdown(t)
    assert "| grand-tiny:a" in md and "- **grand-tiny:b** (Set5 x2): not run (" in md
    assert any(line.startswith("Set5 x2: 2 methods with numbers") for line in grand.sentences(t))


def test_missing_official_weights_are_reported(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SRLIB_PROJECT_DIR", str(tmp_path))
    monkeypatch.setenv("SRLIB_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    g = grand.grand_table("smoke", studies=(), zoo=("pan", "rfdn"), classical=(), evaluate={}, measure=False,
                          write=False)
    t = g.table
    assert [(r.method, r.scale) for r in t.itertuples()] == [("pan (official)", 2), ("pan (official)", 4),
                                                            ("rfdn (official)", 4)]  # rfdn: x4 only
    assert t.status.str.startswith("not available (official weights not found").all()
    assert t.source.tolist() == ["PANx2_DF2K.pth (official weights)", "PANx4_DF2K.pth (official weights)",
                                 "RFDN_AIM.pth (official weights)"]
    assert (t.params > 0).all() and g.per_image.empty and g.evaluated == []


def test_the_project_comparisons():
    meths = grand.methods("quick")
    labels = [m.label for m in meths]
    assert labels[:5] == ["nearest", "bilinear", "bicubic", "ne", "sc"]
    assert {"seed002-cnn:cnn", "02-awsrn-s:awsrn-s", "03-ablation:all-on", "04-hybrid-mpts:package", "05-imfm:imfm",
            "05-imfm:imfm-cos", "pan (official)", "a2f-s (official)"} <= set(labels)
    cnn = next(m for m in meths if m.label == "seed002-cnn:cnn")
    assert cnn.scales == (2, 4)  # arms cnn-x2 and cnn-x4: one method
    pairs = set(map(tuple, grand.comparisons(meths, "quick")[["method", "baseline", "kind"]].to_numpy()))
    assert ("03-ablation:gap_awru", "03-ablation:baseline", "study baseline") in pairs
    assert ("03-ablation:all-on", "02-awsrn-s:awsrn-s", "from 02") in pairs
    assert ("05-imfm:imfm-cos", "05-imfm:imfm", "schedule") in pairs
    assert ("05-imfm:imdn-cos", "05-imfm:imdn", "schedule") in pairs
    assert not any(m == "05-imfm:imdn" and b == "05-imfm:base" for m, b, _ in pairs)  # a comparator, not a variant
    assert {("seed002-cnn:cnn", x, "seed 002") for x in ("sc", "ne", "bicubic")} <= pairs
    assert ("pan (official)", "bicubic", "bicubic") in pairs and ("ne", "bicubic", "bicubic") in pairs
    assert not any(m == "bilinear" for m, _, _ in pairs)  # INTER is not compared with bicubic


# ---------------------------------------------------------------- the counts, by hand

def test_improvement_counts_by_hand():
    c = stats.improvement_counts([30.0, 30.004, 29.0, 31.0, np.nan], [29.0, 30.0, 29.5, 31.0, 20.0])
    # +1, +0.004 (equal within 0.005), -0.5, 0 (equal); the NaN pair left out
    assert (c["higher"], c["equal"], c["lower"], c["n"]) == (1, 2, 1, 4)
    assert c["mean_delta"] == pytest.approx((1 + 0.004 - 0.5) / 4)
    assert stats.improvement_counts([1.0], [0.999], tie=0)["higher"] == 1
    with pytest.raises(ValueError, match="paired by image"):
        stats.improvement_counts([1.0, 2.0], [1.0])


def test_improvements_on_a_hand_made_per_image_frame():
    # method m has two seeds (averaged per image), baseline b one; image i3 only in b: not compared
    rows = [("m", 0, "i1", 30.0), ("m", 1, "i1", 31.0), ("m", 0, "i2", 28.0), ("m", 1, "i2", 28.0),
            ("b", 0, "i1", 30.0), ("b", 0, "i2", 28.1), ("b", 0, "i3", 25.0)]
    pi = pd.DataFrame([{"family": "f", "method": m, "dataset": "Set5", "scale": 4, "seed": sd, "image": im, "psnr": v,
                        "ssim": 0.9, "seconds": 0.1} for m, sd, im, v in rows])
    pairs = pd.DataFrame({"method": ["m"], "baseline": ["b"], "kind": ["study baseline"]})
    counts = grand.improvements(pi, pairs)
    r = counts.iloc[0]
    # i1: mean(30, 31) = 30.5 vs 30 -> higher; i2: 28 vs 28.1 -> lower
    assert (r.higher, r.equal, r.lower, r.n, r.higher_of_n) == (1, 0, 1, 2, "1/2")
    assert r.mean_delta == pytest.approx((0.5 - 0.1) / 2)
    (line,) = stats.count_sentences(counts)
    assert line.startswith("m vs b: PSNR higher on 1 of 2 images (Set5 x4 1/2), equal on 0, lower on 1; "
                           "higher on most images on 0 of 1 benchmark(s); mean per-image delta +0.20 dB")
    g = grand.GrandTable("smoke", pd.DataFrame(columns=grand.COLUMNS), pi, pairs)
    d = grand.deltas(g)
    assert list(d.comparison.unique()) == ["m vs b"] and sorted(d.delta.round(6)) == [-0.1, 0.5]
    assert grand.deltas(g, scale=2).empty


def test_delta_boxplots_draws_one_panel_per_benchmark():
    from srlib.viz.figures import delta_boxplots

    d = pd.DataFrame({"comparison": ["a vs b"] * 3 + ["c vs b"] * 3, "dataset": ["Set5"] * 6, "scale": [4] * 6,
                      "image": list("xyz") * 2, "delta": [0.1, -0.2, 0.3, 0.0, 0.0, 0.4]})
    fig = delta_boxplots(d, "t")
    ax, right = fig.axes  # the panel and its right-hand axis of counts
    assert ax.get_title() == "Set5 x4" and ax.get_xscale() == "symlog"
    ticks = {t.get_text(): t.get_position()[1] for t in ax.get_yticklabels()}
    assert ticks == {"a vs b": 2, "c vs b": 1}  # the first comparison on top
    assert [t.get_text() for t in right.get_yticklabels()] == ["2/3", "1/3"]  # images above 0, same order
    right = delta_boxplots(d, tie=0.15).axes[1]
    assert [t.get_text() for t in right.get_yticklabels()] == ["1/3", "1/3"]  # higher by more than the tie
