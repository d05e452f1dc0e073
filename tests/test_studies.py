"""Studies: identity-keyed runs that train once, resume exactly, run side by side, and compare
with their noise. Smoke-size: a 2-layer CNN with 8 features, 16 px patches, 6 steps, 1 image."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

from srlib.cli import main
from srlib.models import CheckpointError, build_model
from srlib.studies import (RUNTIME_FIELDS, Arm, RunRef, Study, StudyError, bootstrap_delta, get_study,
                           register_study, seed_spread, training_key, within_noise)
from srlib.train import TrainConfig, Trainer
from srlib.train.recipes import load_init_checkpoint, train_images, validation_split

TINY = dict(n_feats=8, n_mapping=1)
# evaluation-only columns that legitimately differ between two folders / two runs
VOLATILE = ["train_seconds", "run_dir"]


def arm(name="a", **kw) -> Arm:
    train = {"precision": "fp32", **kw.pop("train", {})}
    return Arm(name, "cnn", 2, model_kwargs={**TINY, **kw.pop("model_kwargs", {})}, train=train, **kw)


def study(*arms, name="tiny", baseline="a", **kw) -> Study:
    return Study(name, "smoke", list(arms) or [arm("a"), arm("b", train={"lr": 3e-3})], baseline=baseline,
                 max_images=1, **kw)


def weights(run_dir) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)["model"]


def test_second_run_trains_nothing_and_one_changed_field_retrains_that_arm_only(project, fits):
    s = study()
    first = s.run(threads=1, progress=False)
    assert sorted(fits) == sorted(p.name for p in (s.run_dir(s.arm("a")), s.run_dir(s.arm("b"))))
    assert list(first.status) == ["finished", "finished"] and first.psnr.notna().all()
    assert (first.steps == 6).all() and (first.n_images == 1).all() and (first.params > 0).all()
    assert first.multi_adds_G.gt(0).all() and set(first.precision) == {"fp32"}
    fits.clear()
    again = s.run(threads=1, progress=False)
    assert fits == []  # nothing retrained ...
    pd.testing.assert_frame_equal(again, first)  # ... and the evaluations are read back as they were
    # one training field of arm b changed: b retrains into a new folder, a is kept
    s2 = study(arm("a"), arm("b", train={"lr": 2e-3}))
    assert s2.run_dir(s2.arm("a")) == s.run_dir(s.arm("a"))
    assert s2.run_dir(s2.arm("b")) != s.run_dir(s.arm("b"))
    s2.run(threads=1, progress=False)
    assert fits == [s2.run_dir(s2.arm("b")).name]
    # runtime fields do not retrain
    fits.clear()
    study(arm("a", train={"log_every": 1, "threads": 2, "validate_every": 2}), arm("b", train={"lr": 2e-3})) \
        .run(threads=1, progress=False)
    assert fits == []
    status = s2.status()
    assert list(status.state) == ["finished", "finished"] and status.identity.str.len().eq(8).all()


def test_run_json_records_identity_validation_and_resolved_precision(project):
    s = study(arm("a"))
    s.run(threads=1, progress=False)
    run = json.loads((s.run_dir(s.arm("a")) / "run.json").read_text())
    assert run["status"] == "finished" and run["steps"] == 6 and run["precision"] == "fp32"
    assert run["identity_hash"].startswith(s.run_dir(s.arm("a")).name.split("-")[-1])
    # validation: the last 2 T91 images in sorted order, held out of the training patches
    held, val = validation_split("smoke")
    assert val["held_out_of_training"] and val["dataset"] == "T91" and run["validation"]["images"] == val["images"]
    names = sorted(im.name for im in train_images("smoke")[0]) + val["images"]
    assert val["images"] == sorted(names)[-2:] and not set(val["images"]) & {im.name for im in train_images("smoke")[0]}
    assert run["identity"]["data"]["validation"]["images"] == val["images"]
    assert run["identity"]["train"]["precision"] == "fp32" and "threads" not in run["identity"]["train"]


def test_killed_arm_resumes_to_the_weights_of_an_uninterrupted_run(project, monkeypatch):
    s = study(arm("a"))
    project("uninterrupted")
    s.run(threads=1, progress=False)
    ref = weights(s.run_dir(s.arm("a")))
    ref_table = s.table()

    project("killed")
    orig = Trainer.__init__

    def killer(trainer):
        if trainer.step == 4:  # after last.pt of step 3 (smoke: checkpoint_every=3)
            raise RuntimeError("killed at step 4")

    def init(self, *a, **k):
        orig(self, *a, **k)
        self.hooks.append(killer)

    monkeypatch.setattr(Trainer, "__init__", init)
    with pytest.raises(StudyError, match=r"a \(seed 0\).*killed at step 4"):
        s.run(threads=1, progress=False)
    assert s.status().state.tolist() == ["partial step 3"]
    monkeypatch.setattr(Trainer, "__init__", orig)
    table = s.run(threads=1, progress=False)
    got = weights(s.run_dir(s.arm("a")))
    assert all(torch.equal(got[k], ref[k]) for k in ref)  # bit for bit
    pd.testing.assert_frame_equal(table.drop(columns=VOLATILE), ref_table.drop(columns=VOLATILE))
    assert len(json.loads((s.run_dir(s.arm("a")) / "run.json").read_text())["sessions"]) == 2


def test_jobs2_gives_the_table_of_jobs1(project):
    s = study()
    project("sequential")
    one = s.run(jobs=1, threads=1, progress=False)
    project("parallel")
    two = s.run(jobs=2, threads=1)
    assert two.status.eq("finished").all()
    pd.testing.assert_frame_equal(two.drop(columns=VOLATILE), one.drop(columns=VOLATILE), check_exact=True)


def test_every_train_config_field_is_in_the_key_or_a_runtime_field():
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    assert set(RUNTIME_FIELDS) <= set(names), "a RUNTIME_FIELDS name is not a TrainConfig field"
    key = training_key(TrainConfig())
    for name in names:
        assert (name in key) != (name in RUNTIME_FIELDS), f"TrainConfig.{name}: in the key or runtime, not both/neither"
    # a field added later enters the key by itself (the key is to_dict() minus the exclusions)
    Extended = dataclasses.make_dataclass("Extended", [("new_knob", float, 0.5)], bases=(TrainConfig,))
    assert training_key(Extended())["new_knob"] == 0.5


def test_identity_moves_with_what_the_weights_depend_on(project):
    base = study(arm("a")).identity_hash(arm("a"))
    s = study(arm("a"))
    assert s.identity_hash(s.arm("a")) == base
    same = [arm("a", train={f: v}) for f, v in
            dict(threads=7, device="cpu", progress=True, num_workers=0, log_every=1, checkpoint_every=1,
                 validate_every=1, compile=False).items()]
    assert {study(a).identity_hash(a) for a in same} == {base}
    moved = [arm("a", train={"lr": 5e-4}), arm("a", train={"precision": "auto"}), arm("a", seed=1),
             arm("a", model_kwargs={"n_feats": 4}), Arm("a", "cnn", 4, model_kwargs=TINY, train={"precision": "fp32"})]
    hashes = {study(a).identity_hash(a) for a in moved}
    assert len(hashes) == len(moved) and base not in hashes


def _guard_landed() -> bool:
    from srlib.train import trainer

    return "TrainingDiverged" in vars(trainer)


@pytest.mark.xfail(not _guard_landed(), strict=False,
                   reason="the trainer's divergence guard has not landed: lr=1e8 trains on with NaN")
def test_diverged_arm_is_recorded_and_the_others_finish(project):
    s = study(arm("a"), arm("boom", train={"lr": 1e8}))
    table = s.run(threads=1, progress=False).set_index("arm")
    assert table.loc["a", "status"] == "finished" and np.isfinite(table.loc["a", "psnr"])
    assert table.loc["boom", "status"].startswith("diverged at step") and np.isnan(table.loc["boom", "psnr"])
    run = json.loads((s.run_dir(s.arm("boom")) / "run.json").read_text())
    assert run["diverged"]["lr"] > 1e7 and run["diverged"]["term"]
    assert s.status().set_index("arm").loc["boom", "state"].startswith("diverged")


def test_init_checkpoint_loads_matching_keys_and_records_fresh_ones(project, tmp_path):
    src = build_model("cnn", 2, n_feats=8, n_mapping=1)
    path = tmp_path / "src.pt"
    torch.save({"model": src.state_dict()}, path)
    torch.manual_seed(5)
    dst = build_model("cnn", 2, n_feats=8, n_mapping=2)  # one more mapping layer
    fresh_init = {k: v.clone() for k, v in dst.state_dict().items()}
    rec = load_init_checkpoint(dst, path)
    assert rec["fresh"] == ["mapping.1.0.weight", "mapping.1.0.bias"]
    assert set(rec["loaded"]) == set(src.state_dict()) and rec["optimizer"] == "restarted"
    for k, v in dst.state_dict().items():
        assert torch.equal(v, src.state_dict()[k] if k in rec["loaded"] else fresh_init[k])
    with pytest.raises(CheckpointError, match="no key of matching shape"):
        load_init_checkpoint(build_model("awsrn-s", 2), path)
    # in a study: an arm starts from another arm's best.pt, which is trained first
    s = study(arm("small"), arm("deeper", model_kwargs={"n_mapping": 2}, init=RunRef(None, "small")),
              name="warm", baseline="small")
    s.run(threads=1, progress=False)
    run = json.loads((s.run_dir(s.arm("deeper")) / "run.json").read_text())
    assert run["init"]["fresh"] == ["mapping.1.0.weight", "mapping.1.0.bias"]
    assert run["init"]["path"].endswith("best.pt") and run["identity"]["init"]["sha256"]


def test_bootstrap_delta_matches_scipy_paired_percentile():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    a = rng.normal(30, 2, 40)
    b = a - 0.1 + rng.normal(0, 0.2, 40)
    ours = bootstrap_delta(a, b, n=3000, seed=11)
    ref = stats.bootstrap((a, b), lambda x, y, axis: np.mean(x - y, axis=axis), paired=True, vectorized=True,
                          n_resamples=3000, method="percentile", rng=np.random.default_rng(11))
    assert ours["delta"] == pytest.approx(np.mean(a - b), abs=1e-12)
    assert ours["low"] == pytest.approx(ref.confidence_interval.low, abs=1e-9)
    assert ours["high"] == pytest.approx(ref.confidence_interval.high, abs=1e-9)
    assert ours["low"] < 0.1 < ours["high"]
    assert seed_spread([30.1, 30.4]) == pytest.approx(0.3) and np.isnan(seed_spread([30.0]))
    assert within_noise(-0.1, 0.2, 0.05, float("nan")) and not within_noise(0.1, 0.3, 0.2, 0.1)
    assert within_noise(0.1, 0.3, 0.2, 0.25)  # outside the interval but below the seed spread


def test_compare_pairs_images_and_reports_the_seed_spread(project):
    s = dataclasses.replace(study(arm("a"), arm("a", seed=1), arm("b", train={"lr": 3e-3})), max_images=2)
    s.run(threads=1, progress=False)
    cmp = s.compare()
    assert len(cmp) == 1 and cmp.loc[0, "arm"] == "b" and cmp.loc[0, "seeds"] == 1
    assert cmp.loc[0, "n_images"] == 2 and cmp.loc[0, "ci_low"] <= cmp.loc[0, "delta"] <= cmp.loc[0, "ci_high"]
    pi = s.per_image().set_index(["arm", "seed"])
    base = (pi.loc[("a", 0), "psnr"].mean())
    assert cmp.loc[0, "delta"] == pytest.approx(pi.loc[("b", 0), "psnr"].mean() - base)
    assert cmp.loc[0, "seed_spread"] == pytest.approx(abs(pi.loc[("a", 1), "psnr"].mean() - base))


def test_cli_study_run_and_status(project, capsys):
    @register_study("test-tiny")
    def _tiny(profile):
        return Study("test-tiny", profile, [arm("a")], max_images=1, description="a test")

    assert get_study("test-tiny", "smoke").arms[0].seed == 0
    assert main(["study", "status", "test-tiny", "--profile", "smoke"]) == 0
    assert "not started" in capsys.readouterr().out
    assert main(["study", "run", "test-tiny", "--profile", "smoke", "--threads", "1", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("study,arm,seed") and "finished" in out
    assert main(["study", "status", "test-tiny", "--profile", "smoke"]) == 0
    assert "finished" in capsys.readouterr().out
    assert main(["study", "list"]) == 0 and "test-tiny: 1 arms - a test" in capsys.readouterr().out
    assert main(["study", "run", "no-such-study", "--profile", "smoke"]) == 2


def test_a_run_held_by_another_process_is_not_trained_twice(project):
    fcntl = pytest.importorskip("fcntl")
    s = study(arm("a"))
    run = s.run_dir(s.arm("a"))
    run.mkdir(parents=True)
    with open(run / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(StudyError, match="being trained by another process"):
            s.run(threads=1, progress=False)
    assert s.status().state.tolist() == ["not started"]


def test_a_run_killed_after_best_but_before_last_trains_again(project, fits):
    """A kill between the first validation (best.pt) and the first checkpoint (last.pt) leaves a
    folder the study must start over in, not refuse as 'would overwrite a run'."""
    s = study(arm("a"), baseline=None)
    s.run(threads=1, progress=False)
    run = s.run_dir(s.arm("a"))
    (run / "checkpoints" / "last.pt").unlink()
    rec = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**rec, "status": "running"}))
    assert s.state(s.arm("a"))["state"] == "not started"
    fits.clear()
    table = s.run(threads=1, progress=False)
    assert fits == [run.name] and list(table.status) == ["finished"]


def test_an_arm_waiting_on_a_diverged_run_is_a_failure_not_silence(project):
    s = study(arm("a", train={"lr": 1e8, "loss": "mse"}), arm("b", init=RunRef(None, "a")), baseline=None)
    with pytest.raises(StudyError, match="diverged"):
        s.run(threads=1, progress=False)


def test_within_noise_is_unknown_without_an_interval_or_a_seed_spread():
    assert within_noise(float("nan"), float("nan"), 0.3, float("nan")) is None
    assert within_noise(-0.1, 0.2, 0.05, float("nan")) is True
    assert within_noise(0.1, 0.2, 0.15, float("nan")) is False
    assert within_noise(float("nan"), float("nan"), 0.05, 0.1) is True


def test_a_study_trained_on_the_fallback_says_so_in_its_table_title(project, monkeypatch):
    from srlib.evaluate import table_title

    s = study(arm("a"), baseline=None)
    table = s.run(threads=1, progress=False)
    assert table_title(table) == ""  # T91 and Set5 are on disk here
    run = s.run_dir(s.arm("a"))
    rec = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**rec, "data": {**rec.get("data", {}), "fallback": True}}))
    assert "trained on the scikit-image fallback" in table_title(s.table())


def test_identity_hashes_the_class_defaults_and_bad_model_kwargs_fail_at_the_arm(project, monkeypatch):
    import inspect

    from srlib.models.awsrn import AWSRN
    from srlib.studies.core import resolved_model_config

    cfg = resolved_model_config("awsrn-s", 4)
    assert cfg["kernel_sizes"] == (3, 5, 7, 9) and cfg["n_feats"] == 32 and "scale" not in cfg
    assert resolved_model_config("awsrn-s", 4, {"kernel_sizes": (3, 5)})["kernel_sizes"] == (3, 5)
    a = Arm("a", "awsrn-s", 4)
    before = study(a, baseline="a").identity_hash(a)
    # a default the registry does not name (kernel_sizes) changes in the code: the key moves
    sig = inspect.signature(AWSRN.__init__)
    defaults = tuple((3, 5, 7) if n == "kernel_sizes" else p.default for n, p in sig.parameters.items()
                     if p.default is not inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD)
    kw = {n: ((3, 5, 7) if n == "kernel_sizes" else p.default) for n, p in sig.parameters.items()
          if p.kind is p.KEYWORD_ONLY}
    monkeypatch.setattr(AWSRN.__init__, "__defaults__", defaults or None)
    monkeypatch.setattr(AWSRN.__init__, "__kwdefaults__", kw or None)
    assert resolved_model_config("awsrn-s", 4)["kernel_sizes"] == (3, 5, 7)
    assert study(a, baseline="a").identity_hash(a) != before
    with pytest.raises(ValueError, match="'cnn'.*bogus"):
        arm("x", model_kwargs={"bogus": 1})


def test_load_model_gives_the_finished_arm_with_its_best_weights(project):
    s = study(arm("a"))
    with pytest.raises(StudyError, match="run the study first"):
        s.load_model("a")
    s.run()
    model = s.load_model("a")
    best = torch.load(s.run_dir(s.arms[0]) / "checkpoints" / "best.pt", weights_only=True)
    best = best.get("model", best)
    assert not model.training
    assert all(torch.equal(v, best[k]) for k, v in model.state_dict().items())
