"""MPTS (seed 000): the curriculum's patch sizes follow its schedule in the batches the trainer
draws (optimiser kept across stages), phases of a hybrid arm split where the curriculum needs it,
the scheduler's learning rate equals seed 003 Eq. 13 at chosen steps, FASS scores against a direct
computation, the trainer's batches are the FASS-selected patches, they differ from uniform sampling
by the score, the proportional rule draws in proportion, and the batches are identical after a
kill and resume. A 1-conv x2 net on 3 images of 32x32; seconds.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from srlib.data.datasets import PatchDataset
from srlib.data.patches import PatchSelection, normalize_sampling, score_map, window_means
from srlib.train import TrainConfig, Trainer
from srlib.train.mpts import (cosine_restart_lr, curriculum_sizes, curriculum_steps, lr_curve, mpts,
                              restart_overrides)

from test_train_phases import config, images, model, read_log


class Batches(Trainer):
    """Records every LR and HR batch the trainer trains on, with its step."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.seen: list[tuple[int, torch.Tensor, torch.Tensor]] = []

    def compute_losses(self, batch):
        self.seen.append((self.step + 1, batch[0].clone(), batch[1].clone()))
        return super().compute_losses(batch)


def data(lr_patch=4, sampling=None, augment=False, seed=1) -> PatchDataset:
    return PatchDataset(images(), 2, lr_patch=lr_patch, length=64, seed=seed, augment=augment, sampling=sampling)


# ---- curriculum -----------------------------------------------------------------------------
def test_curriculum_sizes_and_steps_by_hand():
    assert curriculum_sizes(48) == [24, 36, 48]
    assert curriculum_sizes(32) == [16, 24, 32]
    assert curriculum_sizes(16, stages=2, start=0.25) == [4, 16]
    assert curriculum_sizes(8, stages=1) == [8]
    assert curriculum_steps(10, 3) == [3, 3, 4]
    with pytest.raises(ValueError, match="need at least 3 steps"):
        curriculum_steps(2, 3)


def test_trainer_draws_the_curriculum_sizes_with_one_optimiser(tmp_path):
    base = config(steps=7, lr=1e-2)
    cfg = TrainConfig(**{**base.to_dict(), **mpts(base, lr_patch=8, restarts=False, fass=False)})
    trainer = Batches(model(), data(lr_patch=8), cfg, tmp_path)
    adam = []
    trainer.hooks.append(lambda t: adam.append(int(t.optimizer.state[t.model.conv.weight]["step"])))
    trainer.fit()
    sizes = [lr.shape[-1] for _, lr, _ in trainer.seen]
    assert sizes == [4, 4, 6, 6, 8, 8, 8]  # 8 * (0.5, 0.75, 1); 7 steps = 2 + 2 + 3
    assert adam == [1, 2, 3, 4, 5, 6, 7]  # keep_optimizer: Adam runs on across stages
    assert [r["phase"] for r in read_log(tmp_path)] == ["0", "0", "1", "1", "2", "2", "2"]


def test_curriculum_splits_a_hybrid_arms_phases():
    base = config(steps=9, phases=[{"steps": 4}, {"loss": "mse", "lr": 5e-3}])
    out = mpts(base, lr_patch=8, restarts=False, fass=False)
    assert out == {"phases": [
        {"steps": 3, "lr_patch": 4},
        {"steps": 1, "lr_patch": 6, "keep_optimizer": True},
        {"loss": "mse", "lr": 5e-3, "steps": 2, "lr_patch": 6},  # a new phase: fresh optimiser
        {"loss": "mse", "lr": 5e-3, "steps": 3, "lr_patch": 8, "keep_optimizer": True},
    ]}
    json.dumps(out)
    assert mpts(base, curriculum=False, restarts=False, fass=False) == {}


def test_keep_optimizer_validation():
    with pytest.raises(ValueError, match="keeps the optimiser but changes \\['lr'\\]"):
        config(steps=4, phases=[{"steps": 2}, {"lr": 1e-3, "keep_optimizer": True}])
    with pytest.raises(ValueError, match="False in the first phase"):
        config(steps=4, phases=[{"steps": 2, "keep_optimizer": True}, {}])


# ---- cosine annealing with warm restarts (seed 003 Eq. 13) ----------------------------------
def eq13(eta_min, eta_max, t_cur, t_i):
    return eta_min + 0.5 * (eta_max - eta_min) * (1 + math.cos(math.pi * t_cur / t_i))


def test_scheduler_lr_equals_eq13_at_chosen_steps(tmp_path):
    cfg = config(steps=16, lr=1e-2, schedule="cosine_restarts", T_0=5, T_mult=2, eta_min=1e-4)
    # step -> (T_cur, T_i): periods [0, 5), [5, 15), [15, 35)
    chosen = {0: (0, 5), 3: (3, 5), 5: (0, 5 * 2), 9: (4, 10), 14: (9, 10), 15: (0, 20)}
    trainer = Trainer(model(), data(), cfg, tmp_path)
    live = [trainer.lr]  # the optimiser's lr before each step
    trainer.hooks.append(lambda t: live.append(t.lr))
    trainer.fit()
    logged = [float(r["lr"]) for r in read_log(tmp_path)]  # the lr each step trained with (6 digits)
    curve = lr_curve(cfg)
    for step, (t_cur, t_i) in chosen.items():
        expected = eq13(1e-4, 1e-2, t_cur, t_i)
        assert live[step] == pytest.approx(expected, rel=1e-12)
        assert logged[step] == pytest.approx(expected, rel=1e-5)
        assert curve[step] == pytest.approx(expected, rel=1e-12)
        assert cosine_restart_lr(step, 1e-2, 5, 2, 1e-4) == pytest.approx(expected, rel=1e-12)
    assert trainer.lr == pytest.approx(eq13(1e-4, 1e-2, 1, 20), rel=1e-6)  # after 16 steps
    assert restart_overrides(1000) == {"schedule": "cosine_restarts", "T_0": 250, "T_mult": 1, "eta_min": 1e-7}


# ---- FASS -----------------------------------------------------------------------------------
def test_fass_scores_match_a_direct_computation():
    ds = data(sampling={"rule": "top", "fraction": 0.25, "stride": 1})
    sel = ds.selection
    hr, lr = ds.pairs[1]
    up = F.interpolate(torch.from_numpy(lr).double().permute(2, 0, 1)[None] / 255, scale_factor=2,
                       mode="bicubic", align_corners=False)[0].clamp(0, 1)
    err = (up - torch.from_numpy(hr).double().permute(2, 0, 1) / 255).square()
    for y, x in [(0, 0), (3, 7), (12, 12)]:
        direct = err[:, 2 * y: 2 * y + 8, 2 * x: 2 * x + 8].mean().item()  # MSE over the HR patch
        assert sel.score_of(1, y, x) == pytest.approx(direct, rel=1e-9)
    m = np.arange(20.0).reshape(4, 5)
    ys, xs, means = window_means(m, 2, 2)
    assert ys.tolist() == [0, 2] and xs.tolist() == [0, 2]
    assert means[1, 1] == m[2:4, 2:4].mean()
    g = score_map(hr, lr, 2, "gradient")
    assert g.shape == lr.shape[:2] and (g >= 0).all()
    assert len(sel) == 3 * 13 * 13 and sel.selected.size == math.ceil(0.25 * len(sel))


def locate(sel: PatchSelection, ds: PatchDataset, lr_patch: torch.Tensor) -> int:
    """Index of the candidate whose LR crop equals ``lr_patch`` (augment off)."""
    p = ds.lr_patch
    target = (lr_patch.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    for j in range(len(sel)):
        lr = ds.pairs[sel.image[j]][1]
        if np.array_equal(lr[sel.y[j]: sel.y[j] + p, sel.x[j]: sel.x[j] + p], target):
            return j
    raise AssertionError("drawn patch is no candidate position")


def test_trainer_batches_are_the_fass_selection_and_beat_uniform_by_score(tmp_path):
    spec = {"rule": "top", "fraction": 0.2, "stride": 1}
    fass = Batches(model(), data(), config(steps=8, batch_size=4, sampling=spec), tmp_path / "f").fit()
    uniform = Batches(model(), data(), config(steps=8, batch_size=4), tmp_path / "u").fit()
    table = fass.train_set.selection  # stride 1: every position is a candidate, so uniform ones are too
    assert fass.train_set.sampling == normalize_sampling(spec) and uniform.train_set.selection is None
    picked = [locate(table, fass.train_set, x) for _, lr, _ in fass.seen for x in lr]
    plain = [locate(table, fass.train_set, x) for _, lr, _ in uniform.seen for x in lr]
    assert set(picked) <= set(table.selected.tolist())
    f_scores, u_scores = table.score[picked], table.score[plain]
    assert f_scores.min() >= table.threshold > u_scores.min()
    assert f_scores.mean() > u_scores.mean() and f_scores.mean() > table.score.mean()
    assert table.threshold == np.sort(table.score)[::-1][table.selected.size - 1]


def test_proportional_rule_draws_in_proportion_to_the_score():
    im = images(1, size=12)[0]
    ds = PatchDataset([im], 2, lr_patch=4, length=8, sampling={"rule": "proportional", "stride": 2})
    sel = ds.selection
    assert len(sel) == 4  # LR 6x6, 4x4 windows at 0 and 2
    rng = np.random.default_rng(0)
    counts = np.zeros(4)
    for _ in range(20000):
        k, y, x = sel.draw(rng)
        counts[np.flatnonzero((sel.y == y) & (sel.x == x))[0]] += 1
    np.testing.assert_allclose(counts / counts.sum(), sel.score / sel.score.sum(), atol=0.015)


def test_fass_is_reproducible_with_the_seed():
    a, b, c = data(sampling="fass", seed=1), data(sampling="fass", seed=1), data(sampling="fass", seed=2)
    assert all(torch.equal(x, y) for i in range(6) for x, y in zip(a[i], b[i]))
    assert not all(torch.equal(a[i][0], c[i][0]) for i in range(6))


def mpts_trainer(out) -> Batches:
    """Curriculum + restarts + FASS, 8 steps, a checkpoint every 3."""
    base = config(steps=8, batch_size=3, checkpoint_every=3)
    cfg = TrainConfig(**{**base.to_dict(), **mpts(base, lr_patch=8, sampling={"fraction": 0.3})})
    return Batches(model(), data(lr_patch=8, augment=True), cfg, out)


def test_fass_batches_identical_after_kill_and_resume(tmp_path):
    first = mpts_trainer(tmp_path / "a")
    first.hooks.append(lambda t: t.step == 5 and (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    resumed = mpts_trainer(tmp_path / "a").fit(resume=True)
    straight = mpts_trainer(tmp_path / "b").fit()
    assert [s for s, _, _ in resumed.seen] == [4, 5, 6, 7, 8]
    later = {s: (lr, hr) for s, lr, hr in straight.seen}
    for s, lr, hr in resumed.seen:
        assert torch.equal(lr, later[s][0]) and torch.equal(hr, later[s][1])
    assert [lr.shape[-1] for _, lr, _ in straight.seen] == [4, 4, 6, 6, 8, 8, 8, 8]
    assert resumed.train_set.selection is not None and resumed.train_set.lr_patch == 8
    for a, b in zip(resumed.model.state_dict().values(), straight.model.state_dict().values()):
        assert torch.equal(a, b)


def test_sampling_validation(tmp_path):
    with pytest.raises(ValueError, match="sampling rule must be one of"):
        config(sampling={"rule": "best"})
    with pytest.raises(ValueError, match="fraction must be in"):
        config(sampling={"fraction": 0})
    from torch.utils.data import TensorDataset

    with pytest.raises(TypeError, match="has no set_sampling"):
        Trainer(model(), TensorDataset(torch.rand(4, 3, 4, 4), torch.rand(4, 3, 8, 8)),
                config(sampling="fass"), tmp_path)
