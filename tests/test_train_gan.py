"""Training with the hybrid loss (seed 000 Eq. 15) and a VGG-style discriminator built from
TrainConfig.discriminator: generator and discriminator alternate as configured (d_steps), the
discriminator is frozen during the generator's step, a zero adversarial weight leaves the generator's
run exactly the pixel run, and the discriminator's weights, BatchNorm buffers, optimiser and schedule
survive a SIGKILL and resume. A 1-conv x2 generator, a 2-channel discriminator, random-feature VGG
to relu1_2 on 16x16 HR patches; seconds.
"""
from __future__ import annotations

import pytest
import torch

from srlib.losses import hybrid_loss
from srlib.train import TrainConfig, Trainer

from test_train import assert_states_equal, run_child
from test_train_phases import model, patches, read_log

D_SPEC = {"name": "vgg", "nf": 2}


def gan_config(**kw) -> TrainConfig:
    loss, d_loss = hybrid_loss(pixel=1.0, perceptual=0.1, adversarial=0.05, layers={"relu1_2": 1.0},
                               vgg_weights="random", r1=0.5)
    base = dict(steps=6, batch_size=2, lr=1e-2, log_every=1, checkpoint_every=0, progress=False, threads=1,
                precision="fp32", device="cpu", seed=0, loss=loss, d_loss=d_loss, d_steps=2, d_lr=1e-3,
                discriminator=D_SPEC, schedule="cosine_restarts", T_0=4)
    return TrainConfig(**{**base, **kw})


class Events(Trainer):
    """Records 'G' / 'D' per loss computation and whether D could learn at that moment."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.events: list[tuple[str, bool]] = []

    def _d_trainable(self) -> bool:
        return any(p.requires_grad for p in self.discriminator.parameters())

    def compute_losses(self, batch):
        self.events.append(("G", self._d_trainable()))
        return super().compute_losses(batch)

    def compute_d_losses(self, batch):
        self.events.append(("D", self._d_trainable()))
        return super().compute_d_losses(batch)


@pytest.mark.parametrize("d_steps", [1, 3])
def test_generator_and_discriminator_alternate_as_configured(tmp_path, d_steps):
    trainer = Events(model(), patches(), gan_config(steps=3, d_steps=d_steps), tmp_path).fit()
    assert trainer.events == ([("G", False)] + [("D", True)] * d_steps) * 3
    d = trainer.discriminator
    assert int(trainer.d_optimizer.state[d.convs[0].weight]["step"]) == 3 * d_steps
    assert int(trainer.optimizer.state[trainer.model.conv.weight]["step"]) == 3
    rows = read_log(tmp_path)
    assert {"loss_l1", "loss_perceptual", "loss_gan", "d_loss_gan_d", "d_loss_r1"} <= set(rows[0])
    total = sum(float(rows[0][f"loss_{k}"]) for k in ("l1", "perceptual", "gan"))
    assert float(rows[0]["loss"]) == pytest.approx(total, rel=1e-5)


def test_discriminator_from_config_is_seeded_apart_from_the_generator(tmp_path):
    trainer = Trainer(model(), patches(), gan_config(steps=1), tmp_path)
    from srlib.models.discriminator import build_discriminator

    torch.manual_seed(1)  # config.seed + 1
    assert_states_equal(trainer.discriminator.state_dict(), build_discriminator(D_SPEC).state_dict())
    with pytest.raises(ValueError, match="not both"):
        Trainer(model(), patches(), gan_config(), tmp_path, discriminator=build_discriminator(D_SPEC))
    with pytest.raises(ValueError, match="a dict with 'name'"):
        gan_config(discriminator={"nf": 2})


def test_zero_adversarial_weight_leaves_the_generator_run_unchanged(tmp_path):
    """The pixel run with and without a discriminator training beside it (gan weight 0)."""
    loss = {"l1": 1.0, "gan": {"weight": 0.0, "gan_type": "vanilla"}}
    with_d = Trainer(model(), patches(), gan_config(loss=loss, d_loss={"gan_d": {"gan_type": "vanilla"}}),
                     tmp_path / "d").fit()
    plain = Trainer(model(), patches(), gan_config(loss="l1", d_loss=None, discriminator=None), tmp_path / "p").fit()
    assert_states_equal(with_d.model.state_dict(), plain.model.state_dict())
    assert int(with_d.d_optimizer.state[with_d.discriminator.convs[0].weight]["step"]) == 6 * 2


def gan_trainer(out) -> Trainer:
    """The run the kill test repeats: 7 steps, a checkpoint every 3, EMA, BatchNorm in D."""
    return Trainer(model(3), patches(), gan_config(steps=7, checkpoint_every=3, ema=0.9), out)


def test_discriminator_state_survives_sigkill_and_resume(tmp_path):
    killed = tmp_path / "killed"
    child = run_child(f"""
        import os, signal
        from test_train_gan import gan_trainer
        trainer = gan_trainer({str(killed)!r})
        trainer.hooks.append(lambda t: t.step == 5 and os.kill(os.getpid(), signal.SIGKILL))
        trainer.fit()
    """, env={"OMP_NUM_THREADS": "1"})
    out, _ = child.communicate(timeout=120)
    assert child.returncode == -9, out
    ckpt = torch.load(killed / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["step"] == 3 and set(ckpt["discriminator"]) == {"model", "optimizer", "scheduler", "scaler"}
    assert any("running_mean" in k for k in ckpt["discriminator"]["model"])

    resumed = gan_trainer(killed).fit(resume=True)
    straight = gan_trainer(tmp_path / "straight").fit()
    assert_states_equal(resumed.model.state_dict(), straight.model.state_dict())
    assert_states_equal(resumed.discriminator.state_dict(), straight.discriminator.state_dict())
    for a, b in zip(resumed.d_optimizer.state.values(), straight.d_optimizer.state.values()):
        assert_states_equal(a, b)
    assert resumed.d_scheduler.state_dict() == straight.d_scheduler.state_dict()
    assert [r["d_loss"] for r in read_log(killed)] == [r["d_loss"] for r in read_log(tmp_path / "straight")]
