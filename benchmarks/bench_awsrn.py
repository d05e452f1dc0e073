"""AWSRN inference time with and without ``fuse()``: fp32, no_grad vs inference_mode, channels_last.

    python benchmarks/bench_awsrn.py                        # AWSRN x4, 256x256 LR input
    python benchmarks/bench_awsrn.py --model awsrn-s --size 128 --threads 1 --repeats 9

Every variant is warmed up, then the variants are timed in turn, one forward pass each, for
``--repeats`` rounds, so all of them see the same background load; the table gives the median
(and min) seconds per forward pass and the speed-up over the plain model under ``no_grad``.
``fuse()`` folds weight norm and the adaptive scalars into plain convs and merges the four AWMS
branches into one 9x9 conv (164 -> 81 taps). Weights are random (speed does not depend on them).
Prints a table; no asserts.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from srlib.complexity import multi_adds
from srlib.models import build_model

GRAD_MODES = {"no_grad": torch.no_grad, "inference_mode": torch.inference_mode}


def variants(model: torch.nn.Module) -> dict:
    """name -> (module, grad mode, channels_last)."""
    fused = model.fuse()
    fused_cl = model.fuse().to(memory_format=torch.channels_last)
    plain_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)  # Module.to is in place
    return {
        "plain, no_grad": (model, "no_grad", False),
        "plain, inference_mode": (model, "inference_mode", False),
        "plain, inference_mode, channels_last": (plain_cl, "inference_mode", True),
        "fused, no_grad": (fused, "no_grad", False),
        "fused, inference_mode": (fused, "inference_mode", False),
        "fused, inference_mode, channels_last": (fused_cl, "inference_mode", True),
    }


def forward_seconds(module, mode: str, x: torch.Tensor) -> float:
    with GRAD_MODES[mode]():
        t0 = time.perf_counter()
        module(x)
        return time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="awsrn")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--size", type=int, default=256, help="LR input height and width")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(args.model, args.scale).eval()
    x = torch.rand(1, 3, args.size, args.size)
    runs = variants(model)
    inputs = {n: x.contiguous(memory_format=torch.channels_last) if cl else x for n, (_, _, cl) in runs.items()}
    for _ in range(args.warmup):
        for n, (m, mode, _) in runs.items():
            forward_seconds(m, mode, inputs[n])
    times = {n: [] for n in runs}
    for _ in range(args.repeats):
        for n, (m, mode, _) in runs.items():
            times[n].append(forward_seconds(m, mode, inputs[n]))
    out_hw = (args.size * args.scale,) * 2
    print(f"{args.model} x{args.scale}, LR {args.size}x{args.size} -> {out_hw[0]}x{out_hw[1]}, fp32, "
          f"{torch.get_num_threads()} threads, median of {args.repeats} after {args.warmup} warm-up")
    print(f"Multi-Adds: plain {multi_adds(model, args.scale, out_hw) / 1e9:.1f} G, "
          f"fused {multi_adds(runs['fused, no_grad'][0], args.scale, out_hw) / 1e9:.1f} G")
    base = statistics.median(times["plain, no_grad"])
    print(f"| {'variant':38s} | median s | min s | speed-up |")
    print(f"|{'-' * 40}|----------|-------|----------|")
    for n, ts in times.items():
        med = statistics.median(ts)
        print(f"| {n:38s} | {med:8.3f} | {min(ts):5.3f} | {base / med:7.2f}x |")
    fused = statistics.median(times["fused, inference_mode"])
    plain = statistics.median(times["plain, inference_mode"])
    print(f"fuse() speed-up under inference_mode: {plain / fused:.2f}x")


if __name__ == "__main__":
    main()
