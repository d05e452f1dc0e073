"""Speed and accuracy of the classical learned upscalers (seed 002's ML and SC baselines).

    python benchmarks/bench_classical.py [--profile quick] [--scale 3] [--images 2]

Measures, on the first Set5 images at ``--scale`` with the profile's cached dictionaries:

1. sparse coding: our batched FISTA against scikit-learn's ``sparse_encode`` (LARS-Lasso, exact)
   on the same 4000 patches: time, largest code difference, objective gap; and the PSNR of
   the whole method with 25 / 50 / 100 / 300 FISTA iterations (the profile sets how many);
2. neighbour embedding: scikit-learn's ``kneighbors`` with brute force, k-d tree and ball tree
   on 20000 queries against the profile's pool;
3. seconds per image of each method.
"""
from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--scale", type=int, default=3)
    ap.add_argument("--images", type=int, default=2)
    args = ap.parse_args()

    from sklearn.decomposition import sparse_encode
    from sklearn.neighbors import NearestNeighbors

    from srlib.classical.patches import mid_image
    from srlib.classical.sparse_coding import lasso_fista
    from srlib.data.colour import rgb_to_ycbcr, to_tensor
    from srlib.data.datasets import BenchmarkSet
    from srlib.evaluate import evaluate, summarize
    from srlib.models import build_upscaler

    s = args.scale
    sc = build_upscaler("sc", s, profile=args.profile).ensure_fitted()
    ne = build_upscaler("ne", s, profile=args.profile).ensure_fitted()
    item = BenchmarkSet("Set5", s)[0]
    mid = mid_image(rgb_to_ycbcr(to_tensor(item.lr))[:, :1], s)
    feats, _, _ = sc.patches(mid)
    f = feats[:4000].float()
    y = f / f.norm(dim=1, keepdim=True).clamp(min=1)
    dl, alpha = sc.arrays["dl"], sc.settings["lam"]
    configured = sc.settings["fista_iters"]
    obj = lambda a: (0.5 * (a.double() @ dl.T.double() - y.double()).pow(2).sum(1) + alpha * a.double().abs().sum(1))

    t0 = time.perf_counter()
    ref = torch.from_numpy(sparse_encode(y.double().numpy(), dl.T.double().numpy(), algorithm="lasso_lars",
                                         alpha=alpha))
    t_ref = time.perf_counter() - t0
    print(f"sparse codes of {len(y)} patches ({dl.shape[1]} atoms): scikit-learn lasso_lars {t_ref:.2f} s")
    for iters in (25, 50, 100, 300):
        t0 = time.perf_counter()
        a = lasso_fista(dl, y, alpha, max_iter=iters)
        dt = time.perf_counter() - t0
        print(f"  FISTA {iters:3d} it: {dt:.2f} s ({t_ref / dt:.1f}x), max |a - lars| "
              f"{(a.double() - ref).abs().max():.2e}, max objective gap {(obj(a) - obj(ref)).max():.2e}")

    for iters in (25, 50, 100, 300):
        sc.settings["fista_iters"] = iters
        df = evaluate(sc, ["Set5"], [s], name="sc", max_images=args.images, progress=False)
        print(f"  SC with {iters:3d} FISTA iterations: Set5 x{s} (first {args.images}) "
              f"{df.psnr.mean():.3f} dB, {df.seconds.mean():.1f} s/image")
    sc.settings["fista_iters"] = configured

    q = ne.project(ne.patches(mid)[0][:20000]).numpy()
    low = ne.arrays["low"].numpy()
    print(f"neighbour search: {len(q)} queries, pool {low.shape}")
    for alg in ("brute", "kd_tree", "ball_tree"):
        nn = NearestNeighbors(n_neighbors=ne.settings["k"], algorithm=alg).fit(low)
        t0 = time.perf_counter()
        nn.kneighbors(q, return_distance=False)
        print(f"  {alg:9s} {time.perf_counter() - t0:.2f} s")

    for name, m in (("ne", ne), ("sc", sc), ("bicubic", "bicubic")):
        df = evaluate(m, ["Set5"], [s], name=name, max_images=args.images, progress=False)
        print(summarize(df)[["model", "dataset", "scale", "psnr", "seconds"]].to_string(index=False, header=False))


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
