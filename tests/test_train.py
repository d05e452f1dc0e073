"""Trainer behaviour: learning, exact kill-and-resume, DDP replicas, EMA, clipping, schedules,
checkpoints and their errors, best.pt. Tiny models and data; the file runs in well under a minute.
"""
from __future__ import annotations

import csv
import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from srlib.train import SeededBatchSampler, TrainCheckpointError, TrainConfig, Trainer, train_model
from srlib.device import cpu_supports_bf16, resolve_precision

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parent
needs_slow = pytest.mark.skipif(os.environ.get("SRLIB_SLOW_TESTS") != "1",
                                reason="torch.compile costs 30-80 s here; set SRLIB_SLOW_TESTS=1")


class TinySR(nn.Module):
    """Two convs and a pixel shuffle, x2."""

    def __init__(self, ch: int = 8):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, ch, 3, padding=1), nn.ReLU(), nn.Conv2d(ch, 12, 3, padding=1))
        self.up = nn.PixelShuffle(2)

    def forward(self, x):
        return self.up(self.body(x)) + F.interpolate(x, scale_factor=2, mode="nearest")


class PairData(Dataset):
    """Smooth random HR patches, LR by 2x2 average pooling, random flips from torch's RNG."""

    def __init__(self, n: int = 32, size: int = 8, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.hr = F.interpolate(torch.rand(n, 3, size // 2, size // 2, generator=g), size=size,
                                mode="bilinear", align_corners=False)

    def __len__(self):
        return len(self.hr)

    def __getitem__(self, i):
        hr = self.hr[i]
        if torch.rand(()) < 0.5:  # consumes the global RNG: resume must restore it
            hr = hr.flip(-1)
        return F.avg_pool2d(hr[None], 2)[0], hr


def tiny_config(**kw) -> TrainConfig:
    base = dict(steps=10, batch_size=4, lr=1e-2, log_every=0, checkpoint_every=0, progress=False,
                threads=1, precision="fp32", device="cpu", seed=0)
    return TrainConfig(**{**base, **kw})


def tiny_model(seed: int = 0) -> TinySR:
    torch.manual_seed(seed)
    return TinySR()


def read_log(out: Path) -> list[dict]:
    with open(out / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def clone_state(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_states_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def run_child(code: str, env: dict | None = None, **kw) -> subprocess.Popen:
    """Start ``python -c code`` with the tests folder importable."""
    prelude = f"import sys; sys.path.insert(0, {str(TESTS_DIR)!r})\n"
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen([sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


# ---- learning -----------------------------------------------------------------------------
def test_loss_decreases(tmp_path):
    data = PairData()
    lr, hr = next(iter(torch.utils.data.DataLoader(data, batch_size=len(data))))
    model = tiny_model()
    with torch.no_grad():
        before = F.l1_loss(model(lr), hr).item()
    trainer = train_model(model, data, tiny_config(steps=60, log_every=20), tmp_path)
    with torch.no_grad():
        after = F.l1_loss(trainer.model(lr), hr).item()
    assert after < 0.8 * before
    rows = read_log(tmp_path)
    assert [int(r["step"]) for r in rows] == [20, 40, 60]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])


# ---- exact resume after a kill ------------------------------------------------------------
def resume_trainer(out: Path) -> Trainer:
    """The run the kill-and-resume test repeats: 20 steps, a checkpoint every 5, EMA on."""
    cfg = tiny_config(steps=20, checkpoint_every=5, log_every=1, ema=0.9, seed=3)
    return Trainer(tiny_model(7), PairData(n=10), cfg, out)


def test_kill_and_resume_matches_uninterrupted(tmp_path):
    killed = tmp_path / "killed"
    child = run_child(f"""
        import os, signal
        from test_train import resume_trainer
        trainer = resume_trainer({str(killed)!r})
        trainer.hooks.append(lambda t: t.step == 12 and os.kill(os.getpid(), signal.SIGKILL))
        trainer.fit()
    """)
    out, _ = child.communicate(timeout=120)
    assert child.returncode == -9, out  # killed at step 12, after the step-10 checkpoint
    assert torch.load(killed / "checkpoints" / "last.pt", weights_only=True)["step"] == 10

    resumed = resume_trainer(killed).fit(resume=True)
    straight = resume_trainer(tmp_path / "straight").fit()
    assert resumed.step == straight.step == 20
    assert_states_equal(resumed.model.state_dict(), straight.model.state_dict())
    assert_states_equal(resumed.ema.state_dict(), straight.ema.state_dict())
    for a, b in zip(resumed.optimizer.state.values(), straight.optimizer.state.values()):
        assert_states_equal(a, b)
    assert [r["step"] for r in read_log(killed)] == [str(s) for s in range(1, 21)]


def test_second_fit_continues_the_run(tmp_path):
    first = Trainer(tiny_model(), PairData(n=10), tiny_config(steps=5, log_every=1), tmp_path / "a")
    first.fit()
    first.config.steps = 9
    first.fit()
    straight = train_model(tiny_model(), PairData(n=10), tiny_config(steps=9, log_every=1), tmp_path / "b")
    assert_states_equal(first.model.state_dict(), straight.model.state_dict())
    assert len(read_log(tmp_path / "a")) == 9


# ---- DDP ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DDP_CHILD = """
    import os, torch
    from srlib.train import Trainer, ddp
    from test_train import PairData, tiny_config, tiny_model, clone_state
    rank = int(os.environ["RANK"])
    model = tiny_model(seed=rank)  # different inits: DDP must broadcast rank 0's
    init = clone_state(model)
    trainer = Trainer(model, PairData(n=16), tiny_config(steps=4, batch_size=2), OUT + "/run")
    trainer.fit()
    shard = trainer.sampler.shard(0)
    torch.save({"init": init, "final": clone_state(trainer.model), "shard": shard}, f"{OUT}/rank{rank}.pt")
    ddp.cleanup()
"""


def run_two_ranks(child: str, out) -> tuple[dict, dict]:
    """Run ``child`` (which saves ``{OUT}/rank{rank}.pt``) as a 2-process gloo group; both files."""
    env = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
           "OMP_NUM_THREADS": "1"}
    code = f"OUT = {str(out)!r}\n" + textwrap.dedent(child)
    procs = [run_child(code, {**env, "RANK": str(r), "LOCAL_RANK": str(r)}) for r in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    return tuple(torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2))


def test_ddp_two_processes_identical_replicas(tmp_path):
    r0, r1 = run_two_ranks(DDP_CHILD, tmp_path)
    assert_states_equal(r0["final"], r1["final"])
    assert any(not torch.equal(r0["final"][k], r0["init"][k]) for k in r0["init"])
    assert not set(r0["shard"]) & set(r1["shard"])  # ranks see disjoint samples
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()


# ---- EMA, clipping, schedule --------------------------------------------------------------
def test_ema_one_step_matches_hand_computed(tmp_path):
    model = tiny_model()
    w0 = {k: v.clone() for k, v in model.named_parameters()}
    trainer = train_model(model, PairData(), tiny_config(steps=1, ema=0.9), tmp_path)
    ema = dict(trainer.ema.module.named_parameters())
    for name, w1 in trainer.model.named_parameters():
        expected = 0.9 * w0[name] + 0.1 * w1.detach()
        torch.testing.assert_close(ema[name], expected, rtol=0, atol=1e-7)
        assert not torch.equal(ema[name], w1)


def test_grad_clip_caps_norm(tmp_path):
    norms = []

    def grad_norm(t):
        norms.append(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in t.model.parameters()])))
        assert t.grad_norm > 1e-3  # the unclipped norm, as clip_grad_norm_ reports it

    trainer = Trainer(tiny_model(), PairData(), tiny_config(steps=3, grad_clip=1e-3), tmp_path)
    trainer.hooks.append(grad_norm)
    trainer.fit()
    assert len(norms) == 3 and all(n <= 1e-3 * (1 + 1e-5) for n in norms)


def test_step_schedule_halves_lr(tmp_path):
    cfg = tiny_config(steps=7, lr=0.01, schedule="step", step_size=3, gamma=0.5, log_every=1)
    train_model(tiny_model(), PairData(), cfg, tmp_path)
    lrs = [float(r["lr"]) for r in read_log(tmp_path)]
    assert lrs == [0.01] * 3 + [0.005] * 3 + [0.0025]


def test_cosine_restarts_uses_torch_scheduler(tmp_path):
    cfg = tiny_config(steps=5, schedule="cosine_restarts", T_0=4, eta_min=0.0, log_every=1)
    train_model(tiny_model(), PairData(), cfg, tmp_path)
    lrs = [float(r["lr"]) for r in read_log(tmp_path)]
    assert lrs[0] == 0.01 and lrs[2] == pytest.approx(0.005) and lrs[4] == 0.01  # restart at T_0


# ---- checkpoints --------------------------------------------------------------------------
def test_checkpoint_loads_weights_only(tmp_path):
    cfg = tiny_config(steps=4, checkpoint_every=2, ema=0.5)
    trainer = train_model(tiny_model(), PairData(), cfg, tmp_path)
    ckpt = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["step"] == 4 and ckpt["ema"] is not None
    assert {"model", "optimizer", "scheduler", "sampler", "rng", "config"} <= set(ckpt)
    from srlib.models import load_weights

    fresh = load_weights(TinySR(), tmp_path / "checkpoints" / "last.pt")
    assert_states_equal(fresh.state_dict(), trainer.model.state_dict())
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))  # atomic writes leave no temp files


@pytest.mark.parametrize("content", ["garbage", "foreign", "other-model"])
def test_bad_checkpoint_fails_clearly(tmp_path, content):
    path = tmp_path / "bad.pt"
    if content == "garbage":
        path.write_bytes(b"this is not a checkpoint")
    elif content == "foreign":
        torch.save({"weight": torch.zeros(3)}, path)
    else:
        train_model(nn.Sequential(TinySR(ch=4)), PairData(), tiny_config(steps=1), tmp_path / "o")
        path = tmp_path / "o" / "checkpoints" / "last.pt"
    trainer = Trainer(tiny_model(), PairData(), tiny_config(steps=2), tmp_path / "run")
    with pytest.raises(TrainCheckpointError, match=re.escape(str(path))):
        trainer.fit(resume=path)


def test_resume_true_reads_corrupt_last_clearly(tmp_path):
    last = tmp_path / "checkpoints" / "last.pt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"\x80\x02truncated")
    with pytest.raises(TrainCheckpointError, match="last.pt"):
        train_model(tiny_model(), PairData(), tiny_config(steps=2), tmp_path, resume=True)


def test_best_follows_best_psnr(tmp_path):
    scores, snapshots = iter([20.0, 25.0, 22.0, 24.0]), []

    def validate(model):
        assert not model.training
        snapshots.append(clone_state(model))
        return {"psnr": next(scores), "ssim": 0.5}

    cfg = tiny_config(steps=8, validate_every=2, log_every=4)
    train_model(tiny_model(), PairData(), cfg, tmp_path, validate=validate)
    best = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)
    assert best["step"] == 4 and best["metrics"]["psnr"] == 25.0
    assert_states_equal(best["model"], snapshots[1])
    rows = read_log(tmp_path)
    assert [(r["step"], r["psnr"]) for r in rows] == [("2", "20"), ("4", "25"), ("6", "22"), ("8", "24")]


def test_tensorboard_used_when_importable(tmp_path, monkeypatch):
    calls = []

    class FakeWriter:
        def __init__(self, log_dir, purge_step=None):
            calls.append(("init", log_dir))

        def add_scalar(self, tag, value, step):
            calls.append((tag, step))

        def close(self):
            calls.append(("close", None))

    fake = type(sys)("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    cfg = tiny_config(steps=4, log_every=2, validate_every=4)
    train_model(tiny_model(), PairData(), cfg, tmp_path, validate=lambda m: {"psnr": 30.0})
    assert ("train/loss", 2) in calls and ("val/psnr", 4) in calls and calls[-1][0] == "close"


# ---- sampler, config, precision -----------------------------------------------------------
def test_sampler_shards_and_resumes():
    full = SeededBatchSampler(10, 3, seed=1)
    stream = iter(full)
    batches = [next(stream) for _ in range(7)]  # spans epochs
    assert sorted(sum(batches[:3], []) + batches[3][:1]) == list(range(10))
    again = SeededBatchSampler(10, 3, seed=1)
    again.load_state_dict(full.state_after(4))
    assert [next(iter(again))] == batches[4:5]
    shards = [SeededBatchSampler(11, 2, seed=1, rank=r, world_size=2).shard(0) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 5 and not set(shards[0]) & set(shards[1])


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(loss="l3")
    with pytest.raises(ValueError, match="ema"):
        TrainConfig(ema=1.5)
    with pytest.raises(ValueError, match="unknown TrainConfig keys"):
        TrainConfig.from_dict({"stepz": 3})


def test_precision_choices(tmp_path):
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if cpu_supports_bf16() else "fp32")
    with pytest.raises(ValueError, match="fp16"):
        resolve_precision("fp16", cpu)
    trainer = train_model(tiny_model(), PairData(), tiny_config(steps=2, precision="bf16"), tmp_path)
    assert trainer.channels_last and trainer.model.body[0].weight.dtype == torch.float32


@pytest.mark.slow
@needs_slow
def test_compile_trains(tmp_path):
    trainer = train_model(tiny_model(), PairData(), tiny_config(steps=3, compile=True), tmp_path)
    assert trainer.step == 3
