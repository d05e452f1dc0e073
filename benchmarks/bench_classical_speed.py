"""Neighbour embedding and sparse coding: today's code against an earlier version, in one run.

    python benchmarks/bench_classical_speed.py --reference-rev <commit> [--profile quick]
        [--scales 2 3 4] [--sets Set5 Set14 Urban100] [--max-images 10] [--time-only]

The earlier version of ``srlib/classical`` is read with ``git show <commit>:srlib/classical/...``
into a temporary folder and imported beside today's (as ``srlib._reference_classical``); both
use the same cached dictionaries (the cache key does not depend on the code). Prints seconds per
HR megapixel of each version on the first Urban100 image at the first scale, with the threads,
then (unless ``--time-only``) the mean PSNR (Y, the protocol of :func:`srlib.evaluate.evaluate`)
of both on each set and scale, and the largest per-image difference.
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

FILES = ("__init__.py", "inter.py", "learned.py", "neighbor_embedding.py", "patches.py", "sparse_coding.py")


def load_reference(rev: str, folder: Path):
    """Import ``srlib/classical`` as of git ``rev`` as the package ``srlib._reference_classical``."""
    import srlib

    root = Path(srlib.__file__).resolve().parent.parent
    for name in FILES:
        text = subprocess.run(["git", "show", f"{rev}:srlib/classical/{name}"], cwd=root, check=True,
                              capture_output=True, text=True).stdout
        (folder / name).write_text(text)
    spec = importlib.util.spec_from_file_location("srlib._reference_classical", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    from srlib._reference_classical import neighbor_embedding, sparse_coding  # noqa: E402

    return {"ne": neighbor_embedding.NeighborEmbedding, "sc": sparse_coding.SparseCoding}


def current():
    from srlib.classical.neighbor_embedding import NeighborEmbedding
    from srlib.classical.sparse_coding import SparseCoding

    return {"ne": NeighborEmbedding, "sc": SparseCoding}


def timed(model, x) -> tuple[float, float, torch.Tensor]:
    t, c = time.perf_counter(), time.process_time()
    with torch.no_grad():
        y = model(x)
    return time.perf_counter() - t, time.process_time() - c, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference-rev", required=True, help="git commit of the earlier classical code")
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    ap.add_argument("--sets", nargs="+", default=["Set5", "Set14", "Urban100"])
    ap.add_argument("--max-images", type=int, default=10, help="per set (Urban100: its first N)")
    ap.add_argument("--methods", nargs="+", default=["ne", "sc"])
    ap.add_argument("--time-only", action="store_true")
    args = ap.parse_args()

    from srlib.data.colour import to_tensor
    from srlib.data.datasets import BenchmarkSet
    from srlib.evaluate import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        versions = {"before": load_reference(args.reference_rev, Path(tmp)), "after": current()}
        print(f"torch threads {torch.get_num_threads()}, profile {args.profile}, reference {args.reference_rev}")
        s = args.scales[0]
        item = BenchmarkSet("Urban100", s)[0]
        mp = item.hr.shape[0] * item.hr.shape[1] / 1e6
        x = to_tensor(item.lr)
        for method in args.methods:
            outs, secs = {}, {}
            for tag, classes in versions.items():
                model = classes[method](s, profile=args.profile, progress=False).ensure_fitted()
                wall, cpu, outs[tag] = timed(model, x)
                secs[tag] = wall
                print(f"{method} x{s} {item.name} ({mp:.3f} HR MP) {tag:6s}: {wall / mp:7.2f} s/MP wall, "
                      f"{cpu / mp:7.2f} s/MP CPU")
            diff = (outs["before"] - outs["after"]).abs().mul(255).max().item()
            print(f"{method}: {secs['before'] / secs['after']:.1f}x faster; largest output difference "
                  f"{diff:.4f} levels of 255")
        if args.time_only:
            return
        for method in args.methods:
            for scale in args.scales:
                for name in args.sets:
                    dfs = {tag: evaluate(classes[method](scale, profile=args.profile, progress=False),
                                         [name], [scale], name=method, max_images=args.max_images,
                                         progress=False) for tag, classes in versions.items()}
                    gap = (dfs["before"].psnr.values - dfs["after"].psnr.values)
                    print(f"{method} x{scale} {name:8s} ({len(gap)} images): PSNR before "
                          f"{dfs['before'].psnr.mean():.4f} after {dfs['after'].psnr.mean():.4f} dB, "
                          f"largest per-image gap {abs(gap).max():.4f} dB; seconds "
                          f"{dfs['before'].seconds.sum():.1f} -> {dfs['after'].seconds.sum():.1f}")


if __name__ == "__main__":
    main()
