"""Time the whole bicubic table (Set5, Set14, B100, Urban100 at x2/x3/x4) with srlib against a
plain NumPy reference implementation of the same protocol, and check they agree.

    python benchmarks/bench_protocol.py [--datasets Set5,Set14,B100,Urban100] [--threads 2]

The reference is written the way the protocol is usually ported from MATLAB: per-dimension
index/weight tables applied with NumPy fancy indexing, Y in float64, SSIM with 11x11 Gaussian
windows through ``sliding_window_view``. Images are decoded once, before either timing starts.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from srlib.data.datasets import load_hr_images
from srlib.evaluate import evaluate


# ------------------------------------------------------------------ NumPy reference
def _cubic(x):
    ax = np.abs(x)
    return ((1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
            + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def _contributions(in_len, out_len, scale):
    width = 4.0 / scale if scale < 1 else 4.0
    x = np.arange(1, out_len + 1)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    idx = left[:, None] + np.arange(math.ceil(width) + 2)[None]
    w = scale * _cubic(scale * (u[:, None] - idx)) if scale < 1 else _cubic(u[:, None] - idx)
    w /= w.sum(1, keepdims=True)
    aux = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
    return aux[np.mod(idx.astype(int) - 1, 2 * in_len)], w  # idx is 1-based, as in MATLAB


def np_imresize(img, scale):
    out = img.astype(np.float64)
    for dim in (0, 1):
        in_len = out.shape[dim]
        out_len = int(math.ceil(round(in_len * scale, 8)))
        idx, w = _contributions(in_len, out_len, scale)
        moved = np.moveaxis(out, dim, 0)
        res = np.einsum("op,op...->o...", w, moved[idx])
        out = np.moveaxis(res, 0, dim)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def np_y(img):
    return np.round(16 + img.astype(np.float64) @ np.array([65.481, 128.553, 24.966]) / 255)


def np_ssim(a, b):
    r = np.arange(11) - 5
    g = np.exp(-(r**2) / 4.5)
    k = np.outer(g, g) / np.outer(g, g).sum()
    f = lambda x: np.einsum("ijkl,kl->ij", sliding_window_view(x, (11, 11)), k)
    mu_a, mu_b = f(a), f(b)
    saa, sbb, sab = f(a * a) - mu_a**2, f(b * b) - mu_b**2, f(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return float((((2 * mu_a * mu_b + c1) * (2 * sab + c2))
                  / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))).mean())


def np_table(images, scales):
    rows = []
    for name, imgs in images.items():
        for s in scales:
            for im in imgs:
                hr = im.hr[: im.hr.shape[0] // s * s, : im.hr.shape[1] // s * s]
                sr = np_imresize(np_imresize(hr, 1 / s), s)
                a, b = np_y(sr)[s:-s, s:-s], np_y(hr)[s:-s, s:-s]
                mse = ((a - b) ** 2).mean()
                rows.append((name, s, im.name, 10 * math.log10(255**2 / mse), np_ssim(a, b)))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--datasets", default="Set5,Set14,B100,Urban100")
    ap.add_argument("--scales", default="2,3,4")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-reference", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names, scales = args.datasets.split(","), [int(s) for s in args.scales.split(",")]
    t0 = time.perf_counter()
    images = {n: load_hr_images(n, fallback=False)[0] for n in names}
    print(f"decoding {sum(map(len, images.values()))} HR images: {time.perf_counter() - t0:.1f} s (excluded)")

    t0 = time.perf_counter()
    df = evaluate("bicubic", names, scales, progress=False)
    t_srlib = time.perf_counter() - t0
    print(f"srlib   : {len(df)} image evaluations in {t_srlib:.1f} s ({torch.get_num_threads()} threads)")
    if args.skip_reference:
        return
    t0 = time.perf_counter()
    ref = np_table(images, scales)
    t_ref = time.perf_counter() - t0
    print(f"NumPy reference: {len(ref)} image evaluations in {t_ref:.1f} s")
    ours = {(r.dataset, r.scale, r.image): (r.psnr, r.ssim) for r in df.itertuples()}
    dp = max(abs(ours[(n, s, i)][0] - p) for n, s, i, p, _ in ref)
    dq = max(abs(ours[(n, s, i)][1] - q) for n, s, i, _, q in ref)
    print(f"speed-up {t_ref / t_srlib:.1f}x; max per-image difference PSNR {dp:.2e} dB, SSIM {dq:.2e}")


if __name__ == "__main__":
    main()
