"""Training steps/sec: srlib Trainer vs a bare PyTorch loop (same model, batch, precision).

    python benchmarks/bench_trainer.py                       # small residual conv net, fp32 and bf16
    python benchmarks/bench_trainer.py --model awsrn-s --precision bf16 --threads 2

The two loops run alternately in short chunks (``--chunk`` steps, ``--rounds`` times) so both
see the same background load; the first and last step of each chunk are not timed (the Trainer
writes a checkpoint when a ``fit`` ends). Overhead is the median over rounds of the paired
time ratio. ``--clock cpu`` counts this process's CPU time (steadier on a busy machine; use it
with ``--threads 1``). Prints a table; no asserts.

:func:`training_rates` is the same measurement with keyword arguments and :func:`step_flops` the
FLOPs of one step (forward + backward, counted on the meta device); ``benchmarks/page.py``
calls both.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from srlib.train import TrainConfig, Trainer
from srlib.device import autocast, cpu_supports_bf16, resolve_channels_last, resolve_device

CLOCK = time.perf_counter


class SmallResNet(nn.Module):
    """``n_layers`` 3x3 convs (residual pairs) at ``ch`` channels, pixel-shuffle x``scale``."""

    def __init__(self, scale: int = 4, ch: int = 32, n_layers: int = 8):
        super().__init__()
        self.head = nn.Conv2d(3, ch, 3, padding=1)
        self.body = nn.ModuleList(nn.Conv2d(ch, ch, 3, padding=1) for _ in range(n_layers - 2))
        self.tail = nn.Sequential(nn.Conv2d(ch, 3 * scale**2, 3, padding=1), nn.PixelShuffle(scale))

    def forward(self, x):
        h = self.head(x)
        for i in range(0, len(self.body) - 1, 2):
            h = h + self.body[i + 1](F.relu(self.body[i](h)))
        return self.tail(h)


def build(name: str | None, scale: int) -> nn.Module:
    torch.manual_seed(0)
    if name is None:
        return SmallResNet(scale)
    from srlib.models import build_model

    return build_model(name, scale)


def dataset(n: int, patch: int, scale: int) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(n, 3, patch * scale, patch * scale, generator=g)
    return TensorDataset(F.avg_pool2d(hr, scale), hr)


def now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return CLOCK()


class BareLoop:
    """The textbook loop: shuffled DataLoader, autocast, L1, Adam, StepLR."""

    def __init__(self, model, data, args, precision: str, channels_last: bool):
        self.fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.device, self.precision = resolve_device(args.device), precision
        self.model = model.to(self.device, memory_format=self.fmt)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, 200_000, 0.5)
        self.loader = DataLoader(data, batch_size=args.batch, shuffle=True, drop_last=True)
        self.batches = iter(self.loader)

    def step(self) -> None:
        lr, hr = next(self.batches, None) or next(self._restart())
        lr, hr = lr.to(self.device).contiguous(memory_format=self.fmt), hr.to(self.device)
        with autocast(self.device, self.precision):
            sr = self.model(lr)
        loss = F.l1_loss(sr.float(), hr)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()

    def _restart(self):
        self.batches = iter(self.loader)
        return self.batches

    def run(self, n: int) -> float:
        """Seconds for steps 2..n-1 of ``n`` steps."""
        self.step()
        t0 = now(self.device)
        for _ in range(n - 2):
            self.step()
        t1 = now(self.device)
        self.step()
        return t1 - t0


class TrainerChunks:
    """A Trainer continued by ``n`` steps per :meth:`run` (log every 100, checkpoint every 1000)."""

    def __init__(self, model, data, args, precision: str, channels_last: bool, out: str):
        cfg = TrainConfig(steps=1, batch_size=args.batch, lr=1e-4, precision=precision,
                          channels_last=channels_last, log_every=100, checkpoint_every=1000,
                          progress=False, device=args.device, threads=args.threads)
        self.trainer = Trainer(model, data, cfg, out)
        self.times: dict[int, float] = {}
        self.marks: tuple[int, ...] = ()
        self.trainer.hooks.append(self._mark)

    def _mark(self, t: Trainer) -> None:
        if t.step in self.marks:
            self.times[t.step] = now(t.device)

    def run(self, n: int) -> float:
        """Seconds for steps 2..n-1 of the next ``n`` steps."""
        start = self.trainer.step
        self.marks = (start + 1, start + n - 1)
        self.trainer.config.steps = start + n
        self.trainer.fit()
        return self.times[start + n - 1] - self.times[start + 1]


def measure(args, precision: str) -> dict:
    cl = resolve_channels_last(args.channels_last, precision)
    data = dataset(args.batch * 8, args.patch, args.scale)
    with tempfile.TemporaryDirectory() as out:
        bare = BareLoop(build(args.model, args.scale), data, args, precision, cl)
        ours = TrainerChunks(build(args.model, args.scale), data, args, precision, cl, out)
        bare.run(args.warmup + 2), ours.run(args.warmup + 2)
        pairs = [(bare.run(args.chunk), ours.run(args.chunk)) for _ in range(args.rounds)]
    timed = args.chunk - 2
    return {"precision": precision, "channels_last": cl,
            "bare": timed / statistics.median(b for b, _ in pairs),
            "trainer": timed / statistics.median(t for _, t in pairs),
            "overhead": 100.0 * (statistics.median(t / b for b, t in pairs) - 1.0)}


def training_rates(model: str | None = None, scale: int = 4, batch: int = 16, patch: int = 48,
                   chunk: int = 6, rounds: int = 5, warmup: int = 3, precision: str = "fp32",
                   channels_last="auto", threads: int | None = None, device: str = "auto") -> dict:
    """:func:`measure` with keyword arguments: ``precision, channels_last, bare, trainer`` (steps/s)
    and ``overhead`` (% more time per Trainer step than per bare step, median of paired chunks)."""
    if chunk < 3:
        raise ValueError(f"chunk must be >= 3 (its first and last steps are not timed), got {chunk}")
    args = argparse.Namespace(model=model, scale=scale, batch=batch, patch=patch, chunk=chunk, rounds=rounds,
                              warmup=warmup, channels_last=channels_last, threads=threads, device=device)
    return measure(args, precision)


def step_flops(model: str | None, scale: int, batch: int, patch: int) -> float:
    """FLOPs of one training step (forward and backward, no optimiser) at ``batch`` LR patches of ``patch``.

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` on a meta-device copy (shapes only):
    convolutions and matrix products, as :func:`srlib.complexity.multi_adds` counts them.
    """
    net = build(model, scale).to("meta")
    counter = FlopCounterMode(display=False)
    with counter:
        net(torch.empty(batch, 3, patch, patch, device="meta")).abs().mean().backward()
    return float(counter.get_total_flops())


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="registered srlib model (default: 32-ch 8-layer conv net)")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=48, help="LR patch size")
    p.add_argument("--chunk", type=int, default=6, help="steps per chunk (>= 3)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--channels-last", default="auto", type=lambda s: s if s == "auto" else s == "true",
                   help="auto | true | false")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:i]")
    p.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                   help="wall time, or this process's CPU time (steadier on a busy machine)")
    return p.parse_args()


def main() -> None:
    global CLOCK
    args = parse_args()
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"model={args.model or 'SmallResNet(32ch, 8 layers)'} x{args.scale} batch={args.batch} "
          f"patch={args.patch} device={resolve_device(args.device)} threads={torch.get_num_threads()} "
          f"cpu_native_bf16={cpu_supports_bf16()} clock={args.clock}")
    print(f"{'precision':<10}{'ch_last':<9}{'bare it/s':>10}{'trainer it/s':>14}{'overhead %':>12}")
    for precision in args.precision:
        r = measure(args, precision)
        print(f"{r['precision']:<10}{str(r['channels_last']):<9}{r['bare']:>10.2f}"
              f"{r['trainer']:>14.2f}{r['overhead']:>12.1f}")


if __name__ == "__main__":
    main()
