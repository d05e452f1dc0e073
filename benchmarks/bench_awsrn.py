"""AWSRN inference time with and without ``fuse()``: fp32, no_grad vs inference_mode, channels_last;
and srlib's AWSRN-S against super-image's ``AwsrnModel`` (the benchmark page's peer).

    python benchmarks/bench_awsrn.py                        # AWSRN x4, 256x256 LR input
    python benchmarks/bench_awsrn.py --model awsrn-s --size 128 --threads 1 --repeats 9
    python benchmarks/bench_awsrn.py --vs-super-image --size 256 --threads 2   # needs the bench extra

Every variant is warmed up, then the variants are timed in turn, one forward pass each, for
``--repeats`` rounds, so all of them see the same background load; the table gives the median
(and min) seconds per forward pass and the speed-up over the plain model under ``no_grad``.
``fuse()`` folds weight norm and the adaptive scalars into plain convs and merges the four AWMS
branches into one 9x9 conv (164 -> 81 taps). Weights are random (speed does not depend on them).
Prints a table; no asserts.

``--vs-super-image`` (:func:`measure_vs_super_image`) times srlib's inference path
(:func:`srlib.inference.prepare` + :func:`srlib.inference.forward`; channels_last in bf16) against
super-image's ``AwsrnModel`` as shipped (weight norm as hooks, ``no_grad``, autocast for bf16)
with the same weights: super-image's random initialisation loaded into srlib through
``AWSRN.convert_state_dict`` (no AWSRN weights ship offline), outputs compared in 8-bit levels.
super-image is used here only, never by srlib (``pip install -e '.[bench]'``).
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
import warnings

import torch

from srlib.complexity import multi_adds
from srlib.device import cpu_supports_bf16
from srlib.inference import forward, prepare
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


def super_image_awsrn(scale: int, n_lfb: int = 1, n_awru: int = 4, n_feats: int = 32, block_feats: int = 128):
    """``(super-image AwsrnModel in eval mode, None)``, or ``(None, why)`` when it does not import."""
    try:
        from super_image import AwsrnConfig, AwsrnModel
    except ImportError as e:
        return None, f"super-image does not import ({e}); install the bench extra: pip install -e '.[bench]'"
    torch.manual_seed(0)
    cfg = AwsrnConfig(scale=scale, n_resblocks=n_lfb, n_awru=n_awru, n_feats=n_feats, block_feats=block_feats)
    with warnings.catch_warnings():  # torch.nn.utils.weight_norm is deprecated; super-image uses it
        warnings.simplefilter("ignore")
        return AwsrnModel(cfg).eval(), None


def best_interleaved(fns: dict, repeats: int, warmup: int = 1) -> dict:
    """Smallest seconds per call of each ``fns[name]()``, the calls taken in turn each round."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def _srlib_runner(model, x, precision: str):
    """srlib's inference call; on a CPU without native bf16, plain autocast (emulated bf16)."""
    if precision == "fp32" or cpu_supports_bf16():
        return lambda: forward(model, x, precision)

    def emulated():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return model(x).float()
    return emulated


def _super_image_runner(model, x255, precision: str):
    def run():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            return model(x255).float()
    return run


def measure_vs_super_image(size: int = 256, scale: int = 4, precisions=("fp32", "bf16"),
                           repeats: int = 3, warmup: int = 1) -> dict:
    """srlib AWSRN-S vs super-image ``AwsrnModel`` (same weights) on one ``size x size`` LR input.

    Returns ``model, peer, scale, size, weights, bf16_mode`` ('native' or 'emulated'), ``flops_srlib`` (the
    fused model srlib runs) and ``flops_peer`` (the unfused architecture super-image runs), both
    FLOPs of one forward pass (``2 x`` Multi-Adds, :func:`srlib.complexity.multi_adds`),
    ``max_abs_diff_levels`` (fp32 outputs, in 8-bit levels), and per precision
    ``{'srlib_s', 'peer_s'}`` (best of ``repeats``, taken in turn); ``peer_why`` instead of
    the timings when super-image is missing.
    """
    peer, why = super_image_awsrn(scale)
    ours = build_model("awsrn-s", scale).eval()
    out = {"model": "awsrn-s", "peer": "super-image AwsrnModel", "scale": scale, "size": size,
           "bf16_mode": "native" if cpu_supports_bf16() else "emulated", "peer_why": why,
           "flops_peer": 2 * multi_adds(ours, scale, (size * scale, size * scale))}
    if peer is not None:
        ours.load_state_dict(ours.convert_state_dict(peer.state_dict()))
        out["weights"] = "same (super-image's seeded random init, loaded into srlib)"
    else:
        out["weights"] = "random (srlib only)"
    fused = {p: prepare(ours, channels_last=p != "fp32") for p in precisions}
    out["flops_srlib"] = 2 * multi_adds(fused[precisions[0]], scale, (size * scale, size * scale))
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    if peer is not None:
        diff = (forward(fused["fp32"] if "fp32" in fused else prepare(ours), x) * 255
                - _super_image_runner(peer, x * 255, "fp32")()).abs().max().item()
        out["max_abs_diff_levels"] = diff
    for p in precisions:
        xp = x.contiguous(memory_format=torch.channels_last) if p != "fp32" else x
        fns = {"srlib_s": _srlib_runner(fused[p], xp, p)}
        if peer is not None:
            fns["peer_s"] = _super_image_runner(peer, x * 255, p)
        out[p] = best_interleaved(fns, repeats, warmup)
    return out


def print_vs_super_image(r: dict) -> None:
    print(f"{r['model']} x{r['scale']}, LR {r['size']}x{r['size']}, {torch.get_num_threads()} threads, "
          f"bf16 {r['bf16_mode']}, weights {r['weights']}")
    print(f"  GFLOP per forward: srlib (fused) {r['flops_srlib'] / 1e9:.1f}, super-image {r['flops_peer'] / 1e9:.1f}; "
          f"max |srlib - super-image| {r.get('max_abs_diff_levels', float('nan')):.1e} levels (fp32)")
    if r["peer_why"]:
        print(f"  no peer: {r['peer_why']}")
    for p in ("fp32", "bf16"):
        if p in r:
            t = r[p]
            line = f"  {p}: srlib {t['srlib_s']:.3f} s"
            if "peer_s" in t:
                line += f"  super-image {t['peer_s']:.3f} s  srlib {t['peer_s'] / t['srlib_s']:.2f}x faster"
            print(line)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="awsrn")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--size", type=int, default=256, help="LR input height and width")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--vs-super-image", action="store_true", help="srlib AWSRN-S vs super-image's AwsrnModel")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.vs_super_image:
        print_vs_super_image(measure_vs_super_image(args.size, args.scale, repeats=args.repeats))
        return
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
