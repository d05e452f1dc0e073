"""Neighbour embedding and sparse coding: today's code against an earlier version, in one run.

    python benchmarks/bench_classical_speed.py [--reference-rev <commit>] [--profile quick]
        [--images 2] [--repeat 3] [--threads 1] [--scales 2 3 4] [--sets Set5 Set14 Urban100]
        [--max-images 10] [--time-only]

The earlier version of ``srlib/classical`` is read with ``git show <commit>:srlib/classical/...``
into a temporary folder and imported beside today's (as ``srlib._reference_classical``); both
use the same cached dictionaries (the cache key does not depend on the code). The default
reference is the golden-era code: the commit that last wrote ``tests/golden/classical/golden.json``
(the code before any speed change, whose outputs the golden test holds).

Timing: seconds per HR megapixel of each version on the first ``--images`` Urban100 images at the
first scale, the minimum of ``--repeat`` runs, alternating the versions so that both see the same
machine load, with ``--threads`` torch threads (also OpenMP's for scikit-learn's search); the
load average is printed beside them. Then (unless ``--time-only``) the mean PSNR (Y, the protocol
of :func:`srlib.evaluate.evaluate`) of both on each set and scale, and the largest per-image gap.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
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


def golden_rev() -> str:
    """The commit that last wrote the golden outputs (the code before any speed change)."""
    import srlib

    root = Path(srlib.__file__).resolve().parent.parent
    return subprocess.run(["git", "log", "-1", "--format=%h", "--", "tests/golden/classical/golden.json"],
                          cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def timed(model, x) -> tuple[float, float, torch.Tensor]:
    t, c = time.perf_counter(), time.process_time()
    with torch.no_grad():
        y = model(x)
    return time.perf_counter() - t, time.process_time() - c, y


def load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def time_versions(versions: dict, method: str, scale: int, items, profile: str, repeat: int) -> dict:
    """``{tag: (seconds per HR MP, min over repeats), "diff": largest output difference}``."""
    from srlib.data.colour import to_tensor

    models = {tag: classes[method](scale, profile=profile, progress=False).ensure_fitted()
              for tag, classes in versions.items()}
    mp = sum(it.hr.shape[0] * it.hr.shape[1] for it in items) / 1e6
    best = {tag: float("inf") for tag in models}
    outs, diff = {}, 0.0
    for _ in range(repeat):
        for tag, model in models.items():  # alternate, so both versions see the same load
            wall = 0.0
            for i, it in enumerate(items):
                w, _, y = timed(model, to_tensor(it.lr))
                wall += w
                if tag in outs and i in outs[tag]:
                    continue
                outs.setdefault(tag, {})[i] = y
            best[tag] = min(best[tag], wall / mp)
    for i in range(len(items)):
        diff = max(diff, (outs["before"][i] - outs["after"][i]).abs().mul(255).max().item())
    return {**best, "mp": mp, "diff": diff}


def measure(threads: int = 2, images: int = 1, repeat: int = 1, scale: int = 2, methods=("ne", "sc"),
            profile: str = "quick", reference_rev: str | None = None) -> dict:
    """Seconds per HR megapixel of the golden-era and today's NE and SC on the first ``images``
    Urban100 images at ``scale`` (the page's section 4); ``{"error": ...}`` per method that failed."""
    torch.set_num_threads(threads)
    rev = reference_rev or golden_rev()
    from srlib.data.datasets import BenchmarkSet

    out = {"reference": rev, "scale": scale, "images": images, "repeat": repeat, "threads": threads,
           "profile": profile}
    with tempfile.TemporaryDirectory() as tmp:
        versions = {"before": load_reference(rev, Path(tmp)), "after": current()}
        data = BenchmarkSet("Urban100", scale)
        items = [data[i] for i in range(images)]
        for method in methods:
            try:
                r = time_versions(versions, method, scale, items, profile, repeat)
            except Exception as e:  # a missing dictionary or data set must not cost the rest
                out[method] = {"error": f"{type(e).__name__}: {e}"}
                continue
            out[method] = {"before_s_per_mp": r["before"], "after_s_per_mp": r["after"], "mp": r["mp"],
                           "max_diff_levels": r["diff"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference-rev", default=None, help="git commit of the earlier classical code "
                    "(default: the golden-era commit)")
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    ap.add_argument("--sets", nargs="+", default=["Set5", "Set14", "Urban100"])
    ap.add_argument("--max-images", type=int, default=10, help="per set (Urban100: its first N)")
    ap.add_argument("--methods", nargs="+", default=["ne", "sc"])
    ap.add_argument("--images", type=int, default=2, help="Urban100 images timed")
    ap.add_argument("--repeat", type=int, default=3, help="timing runs; the minimum is reported")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--time-only", action="store_true")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before scikit-learn's OpenMP starts
    torch.set_num_threads(args.threads)
    rev = args.reference_rev or golden_rev()

    from srlib.data.datasets import BenchmarkSet
    from srlib.evaluate import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        versions = {"before": load_reference(rev, Path(tmp)), "after": current()}
        print(f"torch threads {torch.get_num_threads()}, profile {args.profile}, reference {rev}, "
              f"min of {args.repeat}; {load()}")
        s = args.scales[0]
        data = BenchmarkSet("Urban100", s)
        items = [data[i] for i in range(args.images)]
        for method in args.methods:
            r = time_versions(versions, method, s, items, args.profile, args.repeat)
            print(f"{method} x{s}, {len(items)} Urban100 images ({r['mp']:.3f} HR MP): before "
                  f"{r['before']:.2f} s/MP, after {r['after']:.2f} s/MP: {r['before'] / r['after']:.2f}x; "
                  f"largest output difference {r['diff']:.4f} levels of 255; {load()}")
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
