"""Trainer hooks: named loss terms in the log, training phases (loss, lr and patch size switch at
the right step; kill-and-resume inside a phase), a discriminator (d_steps, exact resume), the
divergence guard (forced NaN, lr=1e8), the run log's columns and the loss-axis label.
A 1-conv + PixelShuffle net on 16x16 HR patches, a few steps each; the file runs in seconds.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from srlib.data.datasets import PatchDataset
from srlib.losses import Loss, register_loss
from srlib.train import TrainCheckpointError, TrainConfig, Trainer, TrainingDiverged, train_model
from srlib.train.config import PHASE_KEYS
from srlib.train.logs import RunLog
from srlib.train.trainer import TRAJECTORY_KEYS

from test_train import TinySR, assert_states_equal, run_child, run_two_ranks


class OneConv(nn.Module):
    """One conv and a pixel shuffle, x2."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, padding=1)
        self.up = nn.PixelShuffle(2)

    def forward(self, x):
        return self.up(self.conv(x))


class TinyD(nn.Module):
    """A strided conv, a LeakyReLU and a linear head: one logit per image."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        return self.head(F.leaky_relu(self.conv(x), 0.2).mean((2, 3)))


@register_loss("test_gan_g")
class GanG(Loss):
    """Vanilla GAN generator term: BCE(D(sr), real)."""

    needs = ("discriminator",)

    def forward(self, sr, hr, discriminator=None, **context):
        logit = discriminator(sr)
        return self.loss_weight * F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))


@register_loss("test_gan_d")
class GanD(Loss):
    """Vanilla GAN discriminator term: BCE(D(hr), real) + BCE(D(sr), fake)."""

    needs = ("discriminator",)

    def forward(self, sr, hr, discriminator=None, **context):
        real, fake = discriminator(hr), discriminator(sr)
        return self.loss_weight * (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                                   + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def images(n: int = 3, size: int = 32, seed: int = 0) -> list[np.ndarray]:
    """Smooth random uint8 HR images."""
    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(torch.rand(n, 3, size // 4, size // 4, generator=g), size=size, mode="bilinear")
    return [(im.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for im in x]


def patches(lr_patch: int = 8) -> PatchDataset:
    return PatchDataset(images(), 2, lr_patch=lr_patch, length=64, seed=1)


def config(**kw) -> TrainConfig:
    base = dict(steps=6, batch_size=2, lr=1e-2, log_every=1, checkpoint_every=0, progress=False,
                threads=1, precision="fp32", device="cpu", seed=0)
    return TrainConfig(**{**base, **kw})


def model(seed: int = 0) -> OneConv:
    torch.manual_seed(seed)
    return OneConv()


def disc(seed: int = 1) -> TinyD:
    torch.manual_seed(seed)
    return TinyD()


def read_log(out: Path) -> list[dict]:
    with open(out / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def all_finite(obj) -> bool:
    if isinstance(obj, torch.Tensor):
        return not obj.is_floating_point() or bool(torch.isfinite(obj).all())
    if isinstance(obj, dict):
        return all(all_finite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(all_finite(v) for v in obj)
    return not isinstance(obj, float) or math.isfinite(obj) or obj == -math.inf  # best_psnr starts at -inf


class Recorder(Trainer):
    """Records (step, LR batch shape) of every step through the compute_losses hook."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.seen: list[tuple[int, tuple]] = []

    def compute_losses(self, batch):
        self.seen.append((self.step + 1, tuple(batch[0].shape)))
        return super().compute_losses(batch)


# ---- phases -------------------------------------------------------------------------------
PHASES = [{"steps": 3, "lr_patch": 4, "loss": "l1"},
          {"lr_patch": 8, "loss": {"mse": 1.0, "charbonnier": 0.5}, "lr": 5e-3, "batch_size": 3}]


def test_two_phases_switch_loss_patch_and_optimiser_at_the_right_step(tmp_path):
    data = patches(lr_patch=6)
    trainer = Recorder(model(), data, config(steps=7, phases=PHASES), tmp_path)
    adam_steps = []
    trainer.hooks.append(lambda t: adam_steps.append(int(t.optimizer.state[t.model.conv.weight]["step"])))
    trainer.fit()
    assert trainer.seen == [(s, (2, 3, 4, 4)) for s in (1, 2, 3)] + [(s, (3, 3, 8, 8)) for s in (4, 5, 6, 7)]
    assert adam_steps == [1, 2, 3, 1, 2, 3, 4]  # a fresh optimiser in phase 1
    assert data.lr_patch == 8 and trainer.phase == 1
    rows = read_log(tmp_path)
    assert [r["phase"] for r in rows] == ["0"] * 3 + ["1"] * 4
    assert [bool(r["loss_l1"]) for r in rows] == [True] * 3 + [False] * 4
    assert [bool(r["loss_mse"]) and bool(r["loss_charbonnier"]) for r in rows] == [False] * 3 + [True] * 4
    assert [float(r["lr"]) for r in rows] == [0.01] * 3 + [0.005] * 4
    for r in rows[3:]:
        total = float(r["loss_mse"]) + float(r["loss_charbonnier"])
        assert float(r["loss"]) == pytest.approx(total, rel=1e-5)
    for r in rows[:3]:
        assert r["loss"] == r["loss_l1"]
    ckpt = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["phase"] == 1 and ckpt["step"] == 7


def phase_trainer(out) -> Trainer:
    """The run the phase kill-and-resume test repeats: 4 + 5 steps, a checkpoint every 5, EMA."""
    cfg = config(steps=9, phases=[{"steps": 4, "lr_patch": 4}, {"lr_patch": 8, "loss": "charbonnier",
                                                                  "schedule": "cosine_restarts", "T_0": 3}],
                 checkpoint_every=5, ema=0.9, seed=3)
    return Trainer(model(7), patches(), cfg, out)


def test_kill_inside_phase_two_and_resume_matches_uninterrupted(tmp_path):
    killed = tmp_path / "killed"
    child = run_child(f"""
        import os, signal
        from test_train_phases import phase_trainer
        trainer = phase_trainer({str(killed)!r})
        trainer.hooks.append(lambda t: t.step == 7 and os.kill(os.getpid(), signal.SIGKILL))
        trainer.fit()
    """)
    out, _ = child.communicate(timeout=120)
    assert child.returncode == -9, out
    ckpt = torch.load(killed / "checkpoints" / "last.pt", weights_only=True)
    assert (ckpt["step"], ckpt["phase"]) == (5, 1)

    resumed = phase_trainer(killed).fit(resume=True)
    straight = phase_trainer(tmp_path / "straight").fit()
    assert_states_equal(resumed.model.state_dict(), straight.model.state_dict())
    assert_states_equal(resumed.ema.state_dict(), straight.ema.state_dict())
    assert resumed.scheduler.state_dict() == straight.scheduler.state_dict()
    for a, b in zip(resumed.optimizer.state.values(), straight.optimizer.state.values()):
        assert_states_equal(a, b)
    assert [r["step"] for r in read_log(killed)] == [str(s) for s in range(1, 10)]
    assert read_log(killed) != [] and "loss_charbonnier" in read_log(killed)[0]


def test_resume_from_a_checkpoint_at_a_phase_end(tmp_path):
    """A checkpoint at phase 0's last step holds phase 0's optimiser; the next step starts phase 1."""
    def make(out, steps=7):
        return Trainer(model(), patches(), config(steps=steps, phases=PHASES, checkpoint_every=3), out)

    first = make(tmp_path / "a")
    first.hooks.append(lambda t: t.step == 4 and (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    assert torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=True)["phase"] == 0
    resumed = make(tmp_path / "a").fit(resume=True)
    straight = make(tmp_path / "b").fit()
    assert_states_equal(resumed.model.state_dict(), straight.model.state_dict())


def test_phase_config_validation():
    assert [p.steps for p in config(steps=7, phases=PHASES).phase_plan()] == [3, 4]
    with pytest.raises(ValueError, match="steps is 10 but the phases add up to 5"):
        config(steps=10, phases=[{"steps": 2}, {"steps": 3}])
    with pytest.raises(ValueError, match=r"phases\[0\] lacks 'steps'"):
        config(steps=5, phases=[{"lr": 1e-3}, {"steps": 3}])
    with pytest.raises(ValueError, match=r"phases\[1\] has unknown keys \['ema'\]"):
        config(steps=5, phases=[{"steps": 2}, {"ema": 0.9}])
    with pytest.raises(ValueError, match=r"phases\[0\].*schedule"):
        config(steps=5, phases=[{"schedule": "linear"}])
    with pytest.raises(ValueError, match=r"phases\[0\]\.loss: unknown loss 'l3'"):
        config(steps=5, phases=[{"loss": "l3"}])
    with pytest.raises(ValueError, match="steps left after the earlier phases"):
        config(steps=5, phases=[{"steps": 5}, {}])
    cfg = config(steps=7, phases=[{"steps": 3, "betas": [0.5, 0.9]}, {"loss": {"l1": 1, "mse": 2}}])
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert {"loss", "d_loss", "d_lr", "d_betas", "d_steps", "phases"} <= set(TRAJECTORY_KEYS)
    assert "lr_patch" in PHASE_KEYS


def test_phase_patch_needs_a_dataset_that_can_switch(tmp_path):
    from torch.utils.data import TensorDataset

    data = TensorDataset(torch.rand(4, 3, 4, 4), torch.rand(4, 3, 8, 8))
    with pytest.raises(TypeError, match="has no set_lr_patch"):
        Trainer(model(), data, config(steps=4, phases=[{"steps": 2}, {"lr_patch": 8}]), tmp_path)


def test_patch_dataset_sample_is_a_function_of_seed_index_and_patch():
    a, b = patches(lr_patch=8), patches(lr_patch=4)
    b.set_lr_patch(8)
    assert all(torch.equal(x, y) for i in (0, 5) for x, y in zip(a[i], b[i]))
    with pytest.raises(ValueError, match="no image is large enough for 64px"):
        a.set_lr_patch(64)


# ---- discriminator ------------------------------------------------------------------------
def gan_config(**kw) -> TrainConfig:
    return config(loss={"l1": 1.0, "test_gan_g": 0.1}, d_loss="test_gan_d", d_lr=2e-3, d_betas=(0.5, 0.9),
                  d_steps=2, schedule="step", step_size=3, gamma=0.5, **kw)


def test_discriminator_trains_d_steps_per_step_and_is_logged(tmp_path):
    d = disc()
    d0 = {k: v.clone() for k, v in d.state_dict().items()}
    trainer = train_model(model(), patches(), gan_config(steps=4), tmp_path, discriminator=d)
    assert int(trainer.d_optimizer.state[d.conv.weight]["step"]) == 8  # 4 steps x d_steps 2
    assert int(trainer.optimizer.state[trainer.model.conv.weight]["step"]) == 4
    assert not torch.equal(d.conv.weight, d0["conv.weight"])
    assert trainer.d_optimizer.param_groups[0]["betas"] == (0.5, 0.9)
    assert trainer.d_lr == pytest.approx(1e-3)  # 2e-3 halved at step 3, like the generator's schedule
    rows = read_log(tmp_path)
    assert {"loss_l1", "loss_test_gan_g", "d_loss", "d_loss_test_gan_d", "d_lr", "grad_norm",
            "d_grad_norm"} <= set(rows[0])
    assert all(float(r["d_loss"]) > 0 for r in rows) and float(rows[0]["d_lr"]) == 2e-3
    plain = train_model(model(), patches(), config(steps=4), tmp_path / "plain")
    assert not torch.equal(plain.model.conv.weight, trainer.model.conv.weight)  # the GAN term acts


def gan_trainer(out) -> Trainer:
    return Trainer(model(), patches(), gan_config(steps=8, checkpoint_every=3), out, discriminator=disc())


def test_discriminator_state_survives_kill_and_resume(tmp_path):
    first = gan_trainer(tmp_path / "a")
    first.hooks.append(lambda t: t.step == 5 and (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    resumed = gan_trainer(tmp_path / "a").fit(resume=True)
    straight = gan_trainer(tmp_path / "b").fit()
    assert_states_equal(resumed.model.state_dict(), straight.model.state_dict())
    assert_states_equal(resumed.discriminator.state_dict(), straight.discriminator.state_dict())
    for a, b in zip(resumed.d_optimizer.state.values(), straight.d_optimizer.state.values()):
        assert_states_equal(a, b)
    assert resumed.d_scheduler.state_dict() == straight.d_scheduler.state_dict()
    ckpt = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=True)
    assert set(ckpt["discriminator"]) == {"model", "optimizer", "scheduler", "scaler"}
    plain = Trainer(model(), patches(), config(steps=8), tmp_path / "c")
    with pytest.raises(TrainCheckpointError, match="has discriminator state"), pytest.warns(UserWarning):
        plain.fit(resume=tmp_path / "a" / "checkpoints" / "last.pt")


DDP_GAN_CHILD = """
    import os, torch
    from srlib.train import Trainer, ddp
    from test_train_phases import disc, gan_config, model, patches
    rank = int(os.environ["RANK"])
    cfg = gan_config(steps=4, phases=[{"steps": 2, "lr_patch": 4}, {"lr_patch": 8}])
    trainer = Trainer(model(rank), patches(), cfg, OUT + "/run", discriminator=disc(rank + 5))
    trainer.fit()
    states = {"g": trainer.model.state_dict(), "d": trainer.discriminator.state_dict()}
    torch.save(states, f"{OUT}/rank{rank}.pt")
    ddp.cleanup()
"""


def test_ddp_with_discriminator_and_phases_keeps_replicas_identical(tmp_path):
    r0, r1 = run_two_ranks(DDP_GAN_CHILD, tmp_path)
    assert_states_equal(r0["g"], r1["g"])  # different initial weights: rank 0's were broadcast
    assert_states_equal(r0["d"], r1["d"])
    assert [r["phase"] for r in read_log(tmp_path / "run")] == ["0", "0", "1", "1"]


def test_discriminator_setup_errors(tmp_path):
    with pytest.raises(ValueError, match="needs a discriminator"):
        Trainer(model(), patches(), config(loss={"l1": 1.0, "test_gan_g": 0.1}), tmp_path)
    with pytest.raises(ValueError, match="d_loss 'test_gan_d' needs a discriminator"):
        Trainer(model(), patches(), config(d_loss="test_gan_d"), tmp_path)
    with pytest.raises(ValueError, match="no d_loss is set"):
        Trainer(model(), patches(), config(), tmp_path, discriminator=disc())


def test_gan_only_in_a_later_phase(tmp_path):
    """An L1 pre-training phase, then a GAN phase: the discriminator trains only in phase 1."""
    gan = {"loss": {"l1": 1.0, "test_gan_g": 0.1}, "d_loss": "test_gan_d"}
    cfg = config(steps=5, phases=[{"steps": 2}, gan])
    d = disc()
    trainer = train_model(model(), patches(), cfg, tmp_path, discriminator=d)
    assert int(trainer.d_optimizer.state[d.conv.weight]["step"]) == 3
    rows = read_log(tmp_path)
    assert [bool(r["d_loss"]) for r in rows] == [False, False, True, True, True]
    assert all(p.requires_grad for p in d.parameters())


# ---- the divergence guard -----------------------------------------------------------------
class NanAt(Trainer):
    """Turns the L1 term into NaN at step ``bad`` (1-based)."""

    bad = 5

    def compute_losses(self, batch):
        terms = super().compute_losses(batch)
        if self.step + 1 == self.bad:
            terms["l1"] = terms["l1"] * float("nan")
        return terms


def test_nan_guard_fires_and_leaves_the_last_finite_state(tmp_path):
    trainer = NanAt(model(), patches(), config(steps=8, checkpoint_every=2, ema=0.5), tmp_path)
    with pytest.raises(TrainingDiverged, match="step 5: l1 is not finite") as info:
        trainer.fit()
    assert (info.value.step, info.value.term, info.value.lr) == (5, "l1", 0.01)
    ckpt = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["step"] == 4 and all_finite(ckpt)
    rows = read_log(tmp_path)
    assert [r["step"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert rows[-1]["loss"] == "nan" and rows[-1]["loss_l1"] == "nan"
    four = train_model(model(), patches(), config(steps=4, ema=0.5), tmp_path / "four")
    assert_states_equal(ckpt["model"], four.model.state_dict())  # the update of step 5 was not applied
    # the saved state is the end of step 4, RNG included: resuming replays step 5 exactly
    resumed = train_model(model(), patches(), config(steps=6, ema=0.5), tmp_path, resume=True)
    straight = train_model(model(), patches(), config(steps=6, ema=0.5), tmp_path / "six")
    assert_states_equal(resumed.model.state_dict(), straight.model.state_dict())


def test_huge_lr_diverges_cleanly(tmp_path):
    """lr=1e8 on two convs with MSE: the weights jump to ~1e8 and the next gradients overflow."""
    torch.manual_seed(0)
    with pytest.raises(TrainingDiverged) as info:
        train_model(TinySR(), patches(), config(steps=50, lr=1e8, loss="mse", checkpoint_every=1), tmp_path)
    err = info.value
    assert err.term in ("mse", "grad_norm") and err.lr == 1e8 and 1 < err.step <= 50
    ckpt = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["step"] == err.step - 1 and all_finite(ckpt)
    last = read_log(tmp_path)[-1]
    assert last["step"] == str(err.step)
    assert {last["loss"], last["grad_norm"]} & {"nan", "inf"}


def test_discriminator_nan_restores_its_state(tmp_path):
    """A NaN in the second discriminator update of step 3: nothing of step 3 is kept."""
    class DNan(Trainer):
        calls = 0

        def compute_d_losses(self, batch):
            terms = super().compute_d_losses(batch)
            DNan.calls += 1
            return {k: v * float("nan") for k, v in terms.items()} if DNan.calls == 6 else terms

    d = disc()
    with pytest.raises(TrainingDiverged, match="step 3: d_test_gan_d"):
        DNan(model(), patches(), gan_config(steps=5), tmp_path, discriminator=d).fit()
    ckpt = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    two = train_model(model(), patches(), gan_config(steps=2), tmp_path / "two", discriminator=disc())
    assert ckpt["step"] == 2
    assert_states_equal(ckpt["discriminator"]["model"], two.discriminator.state_dict())
    assert_states_equal(ckpt["model"], two.model.state_dict())
    assert read_log(tmp_path)[-1]["d_loss_test_gan_d"] == "nan"


def test_fp16_overflow_step_is_not_a_divergence(tmp_path):
    """The guard's rule for an enabled GradScaler: finite terms + inf gradient norm = skipped step."""
    trainer = Trainer(model(), patches(), config(steps=1), tmp_path)
    scaler = torch.amp.GradScaler("cpu", enabled=True)
    inf, nan, one = torch.tensor(float("inf")), torch.tensor(float("nan")), torch.tensor(1.0)

    def guard(term, norm, scaler):
        return trainer._guard(term + one, {"l1": term, "mse": one}, norm, scaler, {})

    assert guard(one, inf, scaler) is False and guard(one, nan, scaler) is False
    assert guard(one, one, scaler) is True and guard(one, one, trainer.scaler) is True
    assert guard(torch.tensor(3e38), one, trainer.scaler) is True  # only the sum overflows
    with pytest.raises(Exception, match="l1"):
        guard(nan, inf, scaler)
    with pytest.raises(Exception, match="grad_norm"):  # without an fp16 scaler it is a divergence
        guard(one, inf, trainer.scaler)
    with pytest.raises(Exception, match="grad_norm"):  # a finite norm whose square overflows Adam's state
        guard(one, torch.tensor(1e20), trainer.scaler)


def test_checkpoint_never_holds_a_nonfinite_tensor(tmp_path):
    trainer = Trainer(model(), patches(), config(steps=1), tmp_path)
    with torch.no_grad():
        trainer.model.conv.bias[0] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"model\.conv\.bias"):
        trainer.save(tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


# ---- run log and figure -------------------------------------------------------------------
def test_runlog_new_column_rewrites_header_and_resume_truncates(tmp_path):
    log = RunLog(tmp_path, tensorboard=False)
    log.write(1, {"phase": 0, "loss": 0.5, "loss_l1": 0.5, "lr": 0.01}, {}, 1.0)
    log.write(2, {"phase": 1, "loss": float("nan"), "loss_mse": float("nan"), "lr": 0.01},
              {"psnr": 30.0, "lpips": 0.1, "loss": 2.0}, 2.0)
    rows = read_log(tmp_path)
    assert list(rows[0]) == ["step", "phase", "loss", "loss_l1", "loss_mse", "lr", "psnr", "ssim", "lpips",
                             "val_loss", "seconds"]
    assert rows[0]["loss_mse"] == "" and rows[1]["loss_l1"] == ""
    cells = (rows[1]["loss"], rows[1]["loss_mse"], rows[1]["psnr"], rows[1]["val_loss"])
    assert cells == ("nan", "nan", "30", "2")
    log.close()
    again = RunLog(tmp_path, resume_step=1, tensorboard=False)
    again.write(2, {"phase": 0, "loss": 0.4, "loss_l1": 0.4, "lr": 0.01}, {}, 3.0)
    rows = read_log(tmp_path)
    assert [(r["step"], r["loss"]) for r in rows] == [("1", "0.5"), ("2", "0.4")] and "lpips" in rows[0]


def test_training_curves_label_the_loss_used(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from srlib.viz.training import loss_label, training_curves

    cfg = config(steps=7, phases=PHASES)
    train_model(model(), patches(), cfg, tmp_path)
    assert loss_label(tmp_path) == "L1 -> MSE + Charbonnier"
    assert loss_label(config=cfg) == "L1 -> MSE + 0.5 Charbonnier"
    assert loss_label(config=cfg.to_dict()) == "L1 -> MSE + 0.5 Charbonnier"
    assert loss_label(config={"l1": 1.0, "charbonnier": 0.5}) == "L1 + 0.5 Charbonnier"
    fig = training_curves(tmp_path, config=TrainConfig(loss="mse"))
    assert fig.axes[0].get_ylabel() == "training loss (MSE)"
    fig = training_curves(tmp_path)
    assert fig.axes[0].get_ylabel() == "training loss (L1 -> MSE + Charbonnier)"
    assert [line.get_xdata()[0] for line in fig.axes[0].lines if line.get_linestyle() == ":"] == [3]
