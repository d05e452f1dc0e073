"""Notebook 04 (seed 000's hybrid loss and MPTS): the study's arms train the same number of
generator steps with the configured phases, curriculum, schedules and FASS; the learning rate is
Eq. 13; the FASS draws are the patches the dataset gives; the table keeps a diverged arm and its
sentences and verdicts read hand-made numbers as stated; and the notebook runs under smoke with
one arm recorded as diverged."""
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from srlib.data.datasets import PatchDataset
from srlib.losses.perceptual import RANDOM_VGG_NOTE
from srlib.pipeline import reproduce
from srlib.studies import get_study, hybrid, improved
from srlib.train import TrainConfig
from srlib.train.recipes import train_images

NB = "04_hybrid_loss_mpts.ipynb"


@pytest.fixture
def no_vgg_file(tmp_path, monkeypatch):
    """No VGG19 file anywhere this process looks (weights folder and torch's hub cache)."""
    monkeypatch.setenv("SRLIB_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))


def test_the_arms_train_equal_generator_steps_with_their_phases(no_vgg_file):
    study = get_study("04-hybrid-mpts", "quick")
    labels = sorted(a.label for a in study.arms)
    assert labels == sorted(["baseline (seed 0)", "baseline (seed 1)", "mpts (seed 0)", "hybrid (seed 0)",
                             "hybrid+mpts (seed 0)", "package (seed 0)", "package (seed 1)"]), labels
    assert {a.train["steps"] for a in study.arms} == {300} and study.max_images == 10
    assert all(a.train["validate_every"] == 0 for a in study.arms)  # evaluated at their last weights
    assert study.arm("package").model == "awsrn-s-improved" and study.arm("package").model_kwargs == improved.switches()
    assert {a.model for a in study.arms if a.name != "package"} == {"awsrn-s"}

    plans = {a.name: study.config(a).phase_plan() for a in study.arms}
    assert [(p.steps, p.lr_patch) for p in plans["baseline"]] == [(300, None)]
    # the curriculum: 16 -> 24 -> 32 (half to full of quick's 32) in three stages, one optimiser
    assert [(p.start, p.lr_patch, p.keep_optimizer) for p in plans["mpts"]] == [(0, 16, False), (100, 24, True),
                                                                               (200, 32, True)]
    mp = study.config(study.arm("mpts"))
    assert (mp.schedule, mp.T_0, mp.sampling["rule"], mp.sampling["fraction"]) == ("cosine_restarts", 75, "top", 0.5)
    # the hybrid arm: 200 L1 steps, then 100 hybrid steps on 8 patches of 24x24 at half the rate
    pix, hyb = plans["hybrid"]
    assert (pix.steps, pix.config.loss, pix.config.d_loss) == (200, "l1", None)
    h = hyb.config
    assert (hyb.steps, hyb.lr_patch, h.batch_size, h.lr) == (100, 24, 8, pytest.approx(5e-4))
    assert h.loss["l1"] == 1e-2 and h.loss["gan"] == {"weight": 5e-3, "gan_type": "ragan"}
    assert h.loss["perceptual"]["layers"] == {"relu2_2": 1.0} and h.loss["perceptual"]["weights"] == "random"
    assert h.d_loss == {"gan_d": {"weight": 1.0, "gan_type": "ragan"}} and h.discriminator == {"name": "vgg", "nf": 32}
    assert (h.schedule, h.step_size) == ("step", 60)
    # both: the curriculum splits the pixel phase; the hybrid phase keeps its 24 (the last stage capped)
    assert [(p.steps, p.lr_patch, "gan" in p.config.loss) for p in plans["hybrid+mpts"]] == [
        (100, 16, False), (100, 24, False), (100, 24, True)]
    assert study.config(study.arm("package")).to_dict() == {**study.config(study.arm("hybrid+mpts")).to_dict()}

    full = get_study("04-hybrid-mpts", "full")
    assert {a.model for a in full.arms} == {"awsrn", "awsrn-improved"}
    fh = full.config(full.arm("hybrid")).phase_plan()[1]
    assert fh.config.loss["perceptual"]["layers"] == {"conv5_4": 1.0}
    assert fh.config.loss["perceptual"]["weights"] == "imagenet"  # full never trains on random features
    assert fh.steps == 500_000 and fh.lr_patch is None and fh.config.discriminator["nf"] == 64
    assert hybrid.vgg_note("quick") == RANDOM_VGG_NOTE and hybrid.vgg_note("full") == ""
    smoke = get_study("04-hybrid-mpts", "smoke")
    assert {a.train["steps"] for a in smoke.arms} == {6} and len(smoke.arms) == 5  # one seed: seconds


def test_schedules_are_eq13_and_step_decay(no_vgg_file):
    study = get_study("04-hybrid-mpts", "quick")
    curves = hybrid.lr_curves(study)
    assert set(curves) == {"baseline (step)", "mpts (cosine_restarts)", "hybrid (step)",
                           "hybrid+mpts (cosine_restarts)"}  # the package's equals hybrid+mpts's
    base, hyb = curves["baseline (step)"], curves["hybrid (step)"]
    assert (base[59], base[60], base[299]) == (1e-3, 5e-4, pytest.approx(1e-3 / 16))
    assert (hyb[199], hyb[200], hyb[259], hyb[260]) == (pytest.approx(1.25e-4), 5e-4, 5e-4, 2.5e-4)
    cos = curves["mpts (cosine_restarts)"]
    # Eq. 13 by hand: eta_min + (eta_max - eta_min)(1 + cos(pi t / 75)) / 2, restarting every 75 steps
    for t in (0, 30, 74, 75, 140):
        tc = t % 75
        assert cos[t] == pytest.approx(1e-7 + (1e-3 - 1e-7) * (1 + math.cos(math.pi * tc / 75)) / 2, rel=1e-12)
    check = hybrid.eq13_check(study)
    assert list(check.step) == [0, 37, 74, 75, 112]
    assert np.allclose(check.lr_scheduler, check.lr_eq13, rtol=1e-12)


def test_fass_draws_are_the_patches_the_dataset_gives(data_dir):
    images = train_images("smoke")[0][:12]
    draws = hybrid.fass_draws("smoke", n=4, images=images)
    ds = PatchDataset(images, 4, lr_patch=16, length=4, seed=0, augment=False)
    for rule, sampling in (("FASS", "fass"), ("uniform", None)):
        ds.set_sampling(sampling)
        for r in draws[draws.rule == rule].itertuples():
            hr = (ds[r.sample][1].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            assert np.array_equal(hr, r.patch)
            if rule == "FASS":
                assert r.score == pytest.approx(ds.selection.score_of(r.pair, r.y, r.x), rel=1e-9)
    fass = draws[draws.rule == "FASS"]
    assert fass.kept.all() and (fass.score >= draws.attrs["threshold"]).all()
    assert draws.attrs["kept"] == math.ceil(0.5 * draws.attrs["candidates"])
    rows = hybrid.fass_rows(draws)
    assert [len(v) for v in rows.values()] == [4, 4]
    assert "of 4 uniform draws" in hybrid.fass_sentences(draws)[1]


def _hand_made():
    """Two benchmarks; mpts within the noise, hybrid lower (as expected), package lower (against its
    claim), hybrid+mpts diverged."""
    arms = ["baseline", "mpts", "hybrid", "hybrid+mpts", "package"]
    psnr = {"baseline": 30.0, "mpts": 30.05, "hybrid": 29.6, "hybrid+mpts": math.nan, "package": 29.8}
    table = pd.DataFrame([{"arm": a, "seed": 0, "dataset": ds, "scale": 4, "psnr": psnr[a] + off,
                           "ssim": 0.8 + (0.01 if a == "mpts" else 0) + off / 100, "params": 1000 + 10 * i,
                           "status": "diverged at step 5" if a == "hybrid+mpts" else "finished"}
                          for i, a in enumerate(arms) for ds, off in (("Set5", 0.0), ("B100", -2.0))])
    delta = {"mpts": (0.05, -0.02, 0.12), "hybrid": (-0.4, -0.5, -0.3), "package": (-0.2, -0.3, -0.1)}
    cmp = pd.DataFrame([{"arm": a, "dataset": ds, "scale": 4, "delta": d, "ci_low": lo, "ci_high": hi,
                         "seed_spread": math.nan, "within_noise": lo <= 0 <= hi}
                        for a, (d, lo, hi) in delta.items() for ds in ("Set5", "B100")])
    costs = pd.DataFrame({"arm": arms, "s_per_step": [0.2, 0.1, 0.3, 0.25, 0.4],
                          "hybrid_s_per_step": [math.nan, math.nan, 0.5, 0.45, 0.6]})
    return table, cmp, costs


def test_table_keeps_a_diverged_arm_and_sentences_read_it():
    table, cmp, costs = _hand_made()
    t = hybrid.assemble(table, cmp, costs, notes={"hybrid": RANDOM_VGG_NOTE})
    assert list(dict.fromkeys(t.arm)) == ["baseline", "mpts", "hybrid", "hybrid+mpts", "package"] and len(t) == 10
    assert (t[t.arm == "baseline"].delta == 0).all() and t.lpips.isna().all()
    div = t[t.arm == "hybrid+mpts"]
    assert div.psnr.isna().all() and div.delta.isna().all() and (div.status == "diverged at step 5").all()
    assert np.allclose(t[t.arm == "mpts"].ssim_delta, 0.01) and (t.note[t.arm == "hybrid"] == RANDOM_VGG_NOTE).all()

    assert hybrid.direction_verdict(t[t.arm == "hybrid"], "lower") == "as expected"
    assert hybrid.direction_verdict(t[t.arm == "package"], "higher") == "against the expectation"
    assert hybrid.direction_verdict(t[t.arm == "mpts"], "higher") == "within the noise"
    assert hybrid.direction_verdict(div, "lower") == "not measured"

    lines = hybrid.sentences(t, RANDOM_VGG_NOTE, "LPIPS not measured: no backbone")
    by_arm = {ln.split(":")[0]: ln for ln in lines}
    assert by_arm["hybrid"].startswith("hybrid: PSNR -0.40 dB, SSIM +0.0000 on average over 2 benchmark(s); "
                                       "interval above 0 on 0, below 0 on 2; expected lower")
    assert by_arm["hybrid"].endswith(": as expected; 0.30 s per step (1.5x the baseline's)")
    assert "against the expectation" in by_arm["package"] and "within the noise" in by_arm["mpts"]
    assert by_arm["hybrid+mpts"] == ("hybrid+mpts: diverged at step 5: no metrics (the run keeps its last finite "
                                     "checkpoint); 0.25 s per step (1.2x the baseline's)")
    assert lines[-2] == f"perceptual term: {RANDOM_VGG_NOTE}" and lines[-1] == "LPIPS not measured: no backbone"

    lp = pd.DataFrame({"arm": ["baseline", "hybrid"], "dataset": ["Set5", "Set5"], "scale": [4, 4],
                       "lpips": [0.30, 0.20]})
    with_lpips = hybrid.assemble(table, cmp, costs, lp)
    assert with_lpips.lpips.notna().sum() == 2
    assert "hybrid: LPIPS -0.1000 against the baseline over 1 benchmark(s)" in "\n".join(hybrid.sentences(with_lpips))


def test_phase_seconds_split_pixel_and_hybrid_steps():
    cfg = TrainConfig(steps=6, phases=[{"steps": 2}, {"steps": 2, "keep_optimizer": True},
                                       {"loss": {"l1": 0.01, "gan": {"weight": 5e-3, "gan_type": "ragan"}},
                                        "d_loss": {"gan_d": {"gan_type": "ragan"}}}])
    log = pd.DataFrame({"step": [1, 2, 4, 5, 6], "phase": [0, 0, 1, 2, 2], "seconds": [0.5, 1.0, 2.0, 5.0, 8.0]})
    kinds = hybrid._phase_seconds(log, cfg.phase_plan())
    assert kinds == {"pixel": [4, 2.0], "hybrid": [2, 6.0]}


def test_notebook_04_runs_under_smoke(data_dir, scratch_project):
    project = scratch_project(NB)
    study = get_study("04-hybrid-mpts", "smoke")
    # the hybrid arm as train_sr leaves a run that diverged: the notebook reports it and goes on
    arm = study.arm("hybrid")
    run = study.run_dir(arm)
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"identity_hash": study.identity_hash(arm), "status": "diverged at step 5",
                                              "steps": 5, "train_seconds": 1.0}))
    runs = reproduce("smoke", only=["04"], log=lambda *a: None)
    assert [r.status for r in runs] == ["ok"], runs[0].error
    out = project / "results" / "smoke"
    res = pd.read_csv(out / "04_results.csv", comment="#")
    assert list(dict.fromkeys(res.arm)) == list(hybrid.ARMS)
    assert res.loc[res.arm == "hybrid", "psnr"].isna().all() and res.status[res.arm == "hybrid"].str.startswith("diverged").all()
    assert res.loc[res.arm != "hybrid", "psnr"].notna().all() and (res.delta[res.arm == "baseline"] == 0).all()
    assert res.seeds.eq(1).all()
    assert (res.hybrid_s_per_step[res.arm.isin(["hybrid+mpts", "package"])] > 0).all()
    head = (out / "04_results.csv").read_text().split("\n", 3)
    assert any(hybrid.vgg_note("smoke") in ln for ln in head[:3]) and any("# lpips:" in ln for ln in head[:3])
    phases = pd.read_csv(out / "04_phases.csv", comment="#")
    assert list(phases.lr_patch[phases.arm == "mpts"]) == [8, 12, 16]
    for name in ("04_lr_schedules", "04_fass_patches", "04_crops"):
        assert (project / "figures" / "smoke" / f"{name}.png").stat().st_size > 5_000
