"""Time the bicubic table (Set5, Set14, B100, Urban100 at x2/x3/x4) with srlib against BasicSR's
own functions and a plain NumPy port of the same protocol, and check that they agree.

    python benchmarks/bench_protocol.py [--datasets Set5,Set14,B100] [--threads 1] [--repeats 3]

or, from the benchmark page, ``measure(datasets, threads, repeats) -> dict``.

What is timed, per evaluation (image x scale): LR = bicubic ``imresize(HR, 1/s)`` as uint8,
SR = ``imresize(LR, s)`` as uint8, Y-channel PSNR and SSIM with ``s`` pixels shaved. The HR PNGs
are decoded once before any timing; decoding them (PIL, what every method needs first) is timed
separately as the floor: ``decode_s``.

- srlib: :func:`srlib.evaluate.evaluate` of ``'bicubic'`` (its per-process LR cache cleared, so
  the LR is made inside the timing as in a fresh run), with its fused kernels (:mod:`srlib.kernels`)
  and again with its torch code (``kernels.ENABLED = False``): the before and after of issue 10.
- BasicSR (the ``basicsr`` package, a benchmark-only dependency): ``basicsr.utils.matlab_functions
  .imresize`` and ``basicsr.metrics.calculate_psnr/ssim(test_y_channel=True)``. Its package
  ``__init__`` does not import with torchvision >= 0.17 (``torchvision.transforms.functional_tensor``
  is gone), so the two files are loaded on their own (:func:`basicsr_functions`). BasicSR keeps Y
  unrounded (srlib's ``round_y=False``) and resizes in float32, so its numbers are compared with
  srlib's ``round_y=False`` evaluation.
- The NumPy reference: per-dimension index/weight tables applied with fancy indexing, Y in
  float64 rounded as MATLAB, SSIM with 11x11 windows through ``sliding_window_view`` (the same
  protocol as srlib, so the numbers must agree to float rounding).

Before timing, srlib evaluates Set5 twice: the first evaluation in a process also loads numba's
cached kernels (``first_set5_s`` against ``second_set5_s``), a one-off cost kept out of the figures.

Timing: ``repeats`` rounds, each running every method once (interleaved, so a load change hits
all of them); the minimum per method is reported, with ``os.getloadavg()`` beside it.
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
import platform
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

import srlib.data.datasets as _datasets
from srlib import kernels
from srlib.data.datasets import load_hr_images
from srlib.evaluate import evaluate

SCALES = (2, 3, 4)


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
    """Y of BT.601 rounded half away from zero as MATLAB's uint8 ``rgb2ycbcr``, in integers."""
    lin = img.astype(np.int64) @ np.array([65481, 128553, 24966])
    return ((lin + 16 * 255000 + 127500) // 255000).astype(np.float64)


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


def _modcrop(hr, s):
    return hr[: hr.shape[0] // s * s, : hr.shape[1] // s * s]


def np_table(images, scales=SCALES):
    rows = {}
    for name, imgs in images.items():
        for s in scales:
            for im in imgs:
                hr = _modcrop(im.hr, s)
                sr = np_imresize(np_imresize(hr, 1 / s), s)
                a, b = np_y(sr)[s:-s, s:-s], np_y(hr)[s:-s, s:-s]
                mse = ((a - b) ** 2).mean()
                rows[(name, s, im.name)] = (10 * math.log10(255**2 / mse), np_ssim(a, b))
    return rows


# ------------------------------------------------------------------ BasicSR
def basicsr_functions():
    """``(imresize, calculate_psnr, calculate_ssim, version)`` from the installed ``basicsr``, or
    ``(None, None, None, why)``.

    ``import basicsr`` runs its whole package ``__init__`` (data pipelines, archs, models), which
    fails with torchvision >= 0.17. The two files needed import only numpy, torch, cv2 and three
    small basicsr modules (colour conversion, image reordering, a registry); they are loaded here
    from their files under stub packages, unchanged.
    """
    spec = importlib.util.find_spec("basicsr")
    if spec is None or not spec.submodule_search_locations:
        return None, None, None, "the basicsr package is not installed (pip install basicsr opencv-python-headless)"
    root = Path(list(spec.submodule_search_locations)[0])
    saved = {k: sys.modules.get(k) for k in ("basicsr", "basicsr.utils", "basicsr.metrics")}
    try:
        for pkg in ("basicsr", "basicsr.utils", "basicsr.metrics"):
            mod = types.ModuleType(pkg)
            mod.__path__ = [str(root / pkg.partition(".")[2])] if "." in pkg else [str(root)]
            sys.modules[pkg] = mod

        def load(name):
            s = importlib.util.spec_from_file_location(name, root / (name.partition(".")[2].replace(".", "/") + ".py"))
            m = importlib.util.module_from_spec(s)
            sys.modules[name] = m
            s.loader.exec_module(m)
            return m

        color = load("basicsr.utils.color_util")
        sys.modules["basicsr.utils"].bgr2ycbcr = color.bgr2ycbcr
        load("basicsr.utils.registry")
        matlab = load("basicsr.utils.matlab_functions")
        metrics = load("basicsr.metrics.psnr_ssim")
        from importlib.metadata import version

        return matlab.imresize, metrics.calculate_psnr, metrics.calculate_ssim, f"basicsr {version('basicsr')}"
    except Exception as exc:  # noqa: BLE001 - any failure: say why, fall back to the NumPy reference
        return None, None, None, f"basicsr's files do not load here: {type(exc).__name__}: {exc}"
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def basicsr_table(images, fns, scales=SCALES):
    """The table with BasicSR's functions, used as its own scripts use them: imresize on [0, 1]
    floats (rounded to uint8 after each resize, as saving the LR and SR images does), BGR in."""
    imresize, calc_psnr, calc_ssim, _ = fns
    to8 = lambda x: np.clip(np.round(x * 255), 0, 255).astype(np.uint8)
    rows = {}
    for name, imgs in images.items():
        for s in scales:
            for im in imgs:
                hr = _modcrop(im.hr, s)
                lr = to8(imresize(hr / 255.0, 1 / s))
                sr = to8(imresize(lr / 255.0, s))
                bgr_sr, bgr_hr = sr[..., ::-1], hr[..., ::-1]
                rows[(name, s, im.name)] = (calc_psnr(bgr_sr, bgr_hr, s, test_y_channel=True),
                                            calc_ssim(bgr_sr, bgr_hr, s, test_y_channel=True))
    return rows


# ------------------------------------------------------------------ measure
def _srlib_table(names, scales=SCALES, round_y=True, fused=True):
    """srlib's bicubic table; ``fused=False`` runs its torch code instead of :mod:`srlib.kernels`."""
    _datasets._lr_from_file.cache_clear()  # a fresh run makes its LR images
    before, kernels.ENABLED = kernels.ENABLED, fused and kernels.ENABLED
    try:
        df = evaluate("bicubic", names, scales, progress=False, round_y=round_y)
    finally:
        kernels.ENABLED = before
    return {(r.dataset, r.scale, r.image): (r.psnr, r.ssim) for r in df.itertuples()}


def _decode(names):
    _datasets._load_cached.cache_clear()
    return {n: load_hr_images(n, fallback=False)[0] for n in names}


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def _max_diff(ours, ref, k):
    return max(abs(ours[key][k] - v[k]) for key, v in ref.items())


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(datasets=("Set5", "Set14", "B100"), threads: int = 1, repeats: int = 3,
            reference: bool = True, use_basicsr: bool = True) -> dict:
    """Time the bicubic table on ``datasets`` x {2, 3, 4}; every figure from this one run.

    Returns a dict: n_evaluations, srlib_s, basicsr_s (None, with basicsr_why, when BasicSR is
    not there), numpy_ref_s (None with ``reference=False``), decode_s, the ratios
    (basicsr_over_srlib, numpy_ref_over_srlib, srlib_over_decode), max_abs_psnr_diff /
    max_abs_ssim_diff (srlib against the NumPy reference, same protocol) and
    basicsr_max_abs_psnr_diff / basicsr_max_abs_ssim_diff (against srlib with float Y), threads,
    precision, cpu, load (1-minute load average before and after), repeats.
    """
    names = list(datasets)
    torch.set_num_threads(threads)
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:
        pass
    fns = basicsr_functions() if use_basicsr else (None, None, None, "not asked for")
    load0 = os.getloadavg()[0]
    images = _decode(names)
    # the first evaluation in a process also loads numba's cached kernels (a one-off cost): timed
    # apart, as the first and the second Set5 table, and kept out of the figures below
    first = [_timed(_srlib_table, ["Set5"])[0] for _ in range(2)]
    times = {"decode": [], "srlib": [], "srlib_torch": [], "basicsr": [], "numpy": []}
    out = {}
    for _ in range(repeats):
        t, images = _timed(_decode, names)
        times["decode"].append(t)
        t, out["srlib"] = _timed(_srlib_table, names)
        times["srlib"].append(t)
        if kernels.ENABLED:
            t, out["srlib_torch"] = _timed(_srlib_table, names, SCALES, True, False)
            times["srlib_torch"].append(t)
        if fns[0] is not None:
            t, out["basicsr"] = _timed(basicsr_table, images, fns)
            times["basicsr"].append(t)
        if reference:
            t, out["numpy"] = _timed(np_table, images)
            times["numpy"].append(t)
    best = {k: (min(v) if v else None) for k, v in times.items()}
    res = {"datasets": names, "n_evaluations": len(out["srlib"]), "threads": torch.get_num_threads(),
           "precision": "float64 resize and SSIM, integer-exact Y and PSNR (srlib)",
           "cpu": cpu_model(), "repeats": repeats,
           "srlib_s": best["srlib"], "decode_s": best["decode"], "basicsr_s": best["basicsr"],
           "basicsr_why": None if fns[0] is not None else fns[3],
           "basicsr_version": fns[3] if fns[0] is not None else None, "numpy_ref_s": best["numpy"],
           "srlib_over_decode": best["srlib"] / best["decode"], "srlib_torch_s": best["srlib_torch"],
           "kernels": "numba kernels (srlib.kernels)" if kernels.ENABLED else "torch code (numba absent or off)",
           "first_set5_s": first[0], "second_set5_s": first[1]}
    if best["srlib_torch"] is not None:
        res["torch_over_kernels"] = best["srlib_torch"] / best["srlib"]
        res["torch_max_abs_psnr_diff"] = _max_diff(out["srlib"], out["srlib_torch"], 0)
        res["torch_max_abs_ssim_diff"] = _max_diff(out["srlib"], out["srlib_torch"], 1)
    if reference:
        res["numpy_ref_over_srlib"] = best["numpy"] / best["srlib"]
        res["max_abs_psnr_diff"] = _max_diff(out["srlib"], out["numpy"], 0)
        res["max_abs_ssim_diff"] = _max_diff(out["srlib"], out["numpy"], 1)
    if fns[0] is not None:
        res["basicsr_over_srlib"] = best["basicsr"] / best["srlib"]
        float_y = _srlib_table(names, round_y=False)  # BasicSR's Y is unrounded
        res["basicsr_max_abs_psnr_diff"] = _max_diff(float_y, out["basicsr"], 0)
        res["basicsr_max_abs_ssim_diff"] = _max_diff(float_y, out["basicsr"], 1)
    res["load"] = (load0, os.getloadavg()[0])
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="Set5,Set14,B100,Urban100")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-reference", action="store_true", help="no NumPy reference")
    ap.add_argument("--skip-basicsr", action="store_true", help="no BasicSR")
    args = ap.parse_args(argv)
    r = measure(tuple(args.datasets.split(",")), args.threads, args.repeats,
                reference=not args.skip_reference, use_basicsr=not args.skip_basicsr)
    print(f"{r['cpu']}, {r['threads']} thread(s), load {r['load'][0]:.2f} -> {r['load'][1]:.2f}; "
          f"{r['n_evaluations']} evaluations on {', '.join(r['datasets'])} x2/x3/x4 (min of {r['repeats']})")
    print(f"  decode HR PNGs (floor) : {r['decode_s']:.2f} s")
    print(f"  srlib's first Set5 table in this process: {r['first_set5_s']:.2f} s, the second "
          f"{r['second_set5_s']:.2f} s (loading the cached kernels; not in the figures)")
    print(f"  srlib                  : {r['srlib_s']:.2f} s = {r['srlib_over_decode']:.1f}x the decode floor "
          f"({r['precision']})")
    if r["srlib_torch_s"] is not None:
        print(f"  srlib's torch code     : {r['srlib_torch_s']:.2f} s -> the kernels {r['torch_over_kernels']:.1f}x faster; "
              f"max |dPSNR| {r['torch_max_abs_psnr_diff']:.2e} dB, |dSSIM| {r['torch_max_abs_ssim_diff']:.2e}")
    if r["basicsr_s"] is not None:
        print(f"  BasicSR ({r['basicsr_version']}): {r['basicsr_s']:.2f} s -> srlib {r['basicsr_over_srlib']:.1f}x "
              f"faster; max |dPSNR| {r['basicsr_max_abs_psnr_diff']:.2e} dB, |dSSIM| "
              f"{r['basicsr_max_abs_ssim_diff']:.2e} (vs srlib round_y=False)")
    else:
        print(f"  BasicSR: not measured ({r['basicsr_why']})")
    if r["numpy_ref_s"] is not None:
        print(f"  NumPy reference        : {r['numpy_ref_s']:.2f} s -> srlib {r['numpy_ref_over_srlib']:.1f}x faster; "
              f"max |dPSNR| {r['max_abs_psnr_diff']:.2e} dB, |dSSIM| {r['max_abs_ssim_diff']:.2e}")
    return r


if __name__ == "__main__":
    main()
