"""The machine's measured compute ceiling: GEMM and 3x3-conv GFLOP/s in fp32 and bf16.

    python benchmarks/bench_ceiling.py [--threads 2] [--n 2048] [--repeats 5]

A model's speed means little alone; as a percentage of what the same cores reach on the
operation it is made of, it says how much room is left. Two ceilings, each the best of
``--repeats`` timed calls after one warm-up, on the threads given:

- **GEMM**: ``torch.mm`` of two ``n x n`` matrices, ``2 n^3`` FLOPs (bf16: both operands bf16,
  as autocast hands them to oneDNN).
- **conv**: AWSRN's dominant layer, a 3x3 convolution 32 -> 128 channels on a 256x256 map
  (the AWRU's first conv at the inference size of ``bench_awsrn.py``), ``2 C_in C_out 9 H W``
  FLOPs, bias not counted; bf16 in channels_last, as srlib runs bf16.

Readings chosen: the best (not the median) time, because a ceiling is what the machine can do,
and the background load of a shared machine only ever slows a run down. On a CPU without
native bf16 (no AMX-BF16 / AVX512-BF16) oneDNN emulates bf16, and the bf16 ceiling says so by
being lower than fp32.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def best_seconds(fn, repeats: int = 3, warmup: int = 1) -> float:
    """Smallest wall time of ``repeats`` calls of ``fn()`` after ``warmup`` untimed calls."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def gemm_gflops(precision: str = "fp32", n: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of an ``n x n`` by ``n x n`` matrix product in ``precision``."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.rand(n, n, generator=g).to(DTYPES[precision]) for _ in range(2))
    with torch.inference_mode():
        seconds = best_seconds(lambda: torch.mm(a, b), repeats)
    return 2 * n**3 / seconds / 1e9


def conv_gflops(precision: str = "fp32", size: int = 256, c_in: int = 32, c_out: int = 128,
                repeats: int = 5) -> float:
    """Best GFLOP/s of a 3x3 ``c_in -> c_out`` convolution on one ``size x size`` map."""
    g = torch.Generator().manual_seed(0)
    fmt = torch.contiguous_format if precision == "fp32" else torch.channels_last
    x = torch.rand(1, c_in, size, size, generator=g).to(DTYPES[precision]).contiguous(memory_format=fmt)
    w = (torch.rand(c_out, c_in, 3, 3, generator=g) - 0.5).to(DTYPES[precision]).contiguous(memory_format=fmt)
    with torch.inference_mode():
        seconds = best_seconds(lambda: F.conv2d(x, w, padding=1), repeats)
    return 2 * c_in * c_out * 9 * size * size / seconds / 1e9


def measure(precisions=("fp32", "bf16"), n: int = 2048, conv_size: int = 256, repeats: int = 5) -> dict:
    """``{precision: {'gemm_gflops', 'conv_gflops'}}`` plus the shapes measured."""
    out = {"gemm_n": n, "conv_shape": f"3x3 conv 32->128 on 1x32x{conv_size}x{conv_size}"}
    for p in precisions:
        out[p] = {"gemm_gflops": gemm_gflops(p, n, repeats), "conv_gflops": conv_gflops(p, conv_size, repeats=repeats)}
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=2048, help="GEMM matrix size")
    ap.add_argument("--conv-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    r = measure(n=args.n, conv_size=args.conv_size, repeats=args.repeats)
    print(f"{torch.get_num_threads()} threads; GEMM {args.n}x{args.n}; {r['conv_shape']}; best of {args.repeats}")
    for p in ("fp32", "bf16"):
        print(f"  {p}: GEMM {r[p]['gemm_gflops']:7.1f} GFLOP/s   conv {r[p]['conv_gflops']:7.1f} GFLOP/s")


if __name__ == "__main__":
    main()
