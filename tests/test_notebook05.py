"""Notebook 05 (IMFM, seed 003) runs end to end under smoke; its study and tables read the paper's
numbers as printed and scale its epochs to the profile."""
import pandas as pd
import pytest

from srlib.pipeline import reproduce
from srlib.studies import get_study, imfm

NB = "05_imfm.ipynb"


def test_schedules_scale_the_papers_epochs_to_the_run():
    s = imfm.schedules(1000)  # 1000 epochs: halve every 200, restart every 250
    assert (s["step"]["step_size"], s["cos"]["T_0"]) == (200, 250)
    lrs = imfm.lr_curves(100, 1e-3)
    assert lrs["step"][19] == pytest.approx(1e-3) and lrs["step"][20] == pytest.approx(5e-4)
    assert lrs["cos"][0] == lrs["cos"][25] == pytest.approx(1e-3)  # a warm restart every 25 steps
    # Eq. 13 halfway through a period: eta_min + (eta_max - eta_min) (1 + cos(pi/2)) / 2 = eta_max / 2
    assert lrs["cos"][12] == pytest.approx(1e-3 * (1 + __import__("math").cos(__import__("math").pi * 12 / 25)) / 2)


def test_the_study_holds_every_table_at_one_budget():
    study = get_study("05-imfm", "quick")
    labels = sorted(a.label for a in study.arms)
    assert labels == sorted(["base (seed 0)", "base (seed 1)", "imfm (seed 0)", "imfm (seed 1)", "pab (seed 0)",
                             "pab+mswam (seed 0)", "imfm-cos (seed 0)", "imfm-deconv (seed 0)",
                             "imfm-subpixel (seed 0)", "imdn (seed 0)", "imdn-cos (seed 0)"]), labels
    assert len({a.train["steps"] for a in study.arms}) == 1
    assert get_study("05-imfm", "full").arm("a2f-s-cos").train["schedule"] == "cosine_restarts"


def test_notebook_05_runs_under_smoke(data_dir, scratch_project):
    project = scratch_project(NB)
    runs = reproduce("smoke", only=["05"], log=lambda *a: None)
    assert [r.status for r in runs] == ["ok"], runs[0].error
    out = project / "results" / "smoke"
    ablation = pd.read_csv(out / "05_ablation.csv", comment="#")
    assert list(dict.fromkeys(ablation.arm)) == ["base", "pab", "pab+mswam", "imfm"]
    t2 = pd.read_csv(out / "05_table2_schedules.csv", comment="#")
    assert set(t2.model) == {"imfm", "imdn"} and (t2.gain == t2.psnr_cos - t2.psnr_step).all()
    t3 = pd.read_csv(out / "05_table3_upsamplers.csv", comment="#")
    assert list(t3.upsampler) == ["deconv", "subpixel", "mwaum"] and (t3.psnr_paper < t3.psnr_bicubic).all()
    t4 = pd.read_csv(out / "05_table4_complexity.csv", comment="#").set_index("model")
    assert t4.params.edsr > 40e6 and t4.params.imfm < t4.params.awsrn
    for name in ("05_lr_schedules", "05_figures5_6"):
        assert (project / "figures" / "smoke" / f"{name}.png").stat().st_size > 5_000


def test_the_sentences_are_computed_from_the_tables():
    t3 = pd.DataFrame({"upsampler": ["deconv", "subpixel", "mwaum"], "psnr": [27.0, 27.4, 27.2],
                       "psnr_paper": [26.21, 26.23, 26.25], "psnr_bicubic": [28.42] * 3})
    best, bicubic = imfm.upsampler_sentences(t3)
    assert best.startswith("highest Set5 x4 PSNR: subpixel here (27.40 dB), mwaum in the paper (26.25 dB)")
    assert "2.17 dB or more below bicubic" in bicubic  # 28.42 - 26.25
    t4 = pd.DataFrame({"model": ["imfm", "edsr", "awsrn-s"], "params": [595_403, 43_089_923, 587_742],
                       "cpu_seconds": [2.0, 30.0, 1.0]})
    rank, ratio = imfm.complexity_sentences(t4)
    assert "rank 2 of 3" in rank and "smaller models here: awsrn-s" in rank
    assert ratio.startswith("EDSR / IMFM CPU time: 15.0x here, 6.6x in the paper")  # 140.005 / 21.225
    t2 = pd.DataFrame({"model": ["imfm", "imfm"], "gain": [0.1, 0.3], "paper_gain": [0.11, 0.11]})
    (line,) = imfm.schedule_sentences(t2)
    assert "+0.20 dB on average over 2 benchmark(s) (from +0.10 dB to +0.30 dB); paper +0.11 dB" in line


def test_delta_sentences_count_intervals_and_noise():
    from srlib.studies.stats import delta_sentences

    t = pd.DataFrame({"arm": ["b", "b", "x", "x"], "params": [100, 100, 130, 130], "delta": [0, 0, 0.2, -0.1],
                      "ci_low": [None, None, 0.05, -0.3], "ci_high": [None, None, 0.3, 0.1],
                      "within_noise": [None, None, False, True]})
    (line,) = delta_sentences(t, "b")
    assert line == ("x: +0.05 dB on average over 2 benchmark(s) (+30 parameters); interval above 0 on 1, "
                    "below 0 on 0; within the noise on 1")
