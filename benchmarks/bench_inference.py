"""x4 inference of AWSRN and PAN on a 256x256 input: srlib's inference path vs the plain eager forward.

    python benchmarks/bench_inference.py [--size 256] [--repeats 5] [--threads 2]

"eager" is ``model(x)`` under ``torch.no_grad()`` on the model as built (weight norm as a
parametrization, recomputed every call). "srlib" is :func:`srlib.inference.prepare` (weight norm
folded into plain convs; AWSRN's own ``fuse()`` also merges the four AWMS branches into one 9x9
conv) run under ``torch.inference_mode``; "+ channels_last" adds that memory format. Also prints
the complexity table (params, Multi-Adds at 1280x720, memory, time) of the models named.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from srlib.inference import prepare
from srlib.models import build_model


def _median_seconds(fn, x, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def variants(name: str):
    torch.manual_seed(0)
    model = build_model(name, 4).eval()

    def eager(x):
        with torch.no_grad():
            return model(x)

    fast = prepare(model)
    fast_cl = prepare(model, channels_last=True)

    def ours(m):
        def run(x):
            with torch.inference_mode():
                return m(x)
        return run

    return {"eager": eager, "srlib": ours(fast), "srlib + channels_last": ours(fast_cl)}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default="awsrn,pan")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--complexity", default="", help="comma-separated models for the complexity table")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.rand(1, 3, args.size, args.size)
    print(f"x4 on a {args.size}x{args.size} input, {torch.get_num_threads()} threads, median of {args.repeats}")
    for name in args.models.split(","):
        runs = variants(name)
        ref = runs["eager"](x)
        base = None
        for label, fn in runs.items():
            t = _median_seconds(fn, x, args.repeats)
            base = base or t
            diff = (fn(x) - ref).abs().max().item()
            print(f"  {name:8s} {label:24s} {t:7.3f} s  x{base / t:4.2f}  max|diff| {diff:.1e}")
    if args.complexity:
        from srlib.evaluate import complexity_table

        df = complexity_table(args.complexity.split(","), 4, repeats=max(1, args.repeats // 2))
        print(df.to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
