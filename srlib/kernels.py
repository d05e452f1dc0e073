"""Fused CPU kernels (numba) for the evaluation protocol: MATLAB resize passes, Y, PSNR, SSIM.

The protocol's torch code (:mod:`srlib.data.resize`, :mod:`srlib.metrics`) is a chain of whole-
array operations: each multiply-add of a resize band or of SSIM's 11-tap Gaussian reads and writes
a full float64 temporary, and an image costs some hundred dispatched operations. These kernels do
the same arithmetic over cache-sized blocks in one pass, compiled once by numba (``cache=True``:
the machine code is kept beside this file, or in numba's user cache where that is read-only).
The torch code stays for other devices, for dtypes the kernels do not take, and as the reference
the tests hold the kernels to (``tests/test_kernels.py``; ``SRLIB_NO_NUMBA=1`` selects it).

Exactness:

- :func:`resize_pass` sums each output's taps in float64 (left to right); the uint8 results are
  bit for bit those of the torch product (the argument is in :mod:`srlib.data.resize`: at x2/x4
  every sum is exact, at x3 every result is far from a rounding tie), checked on all 1314 LR and
  SR images of the four benchmarks' bicubic table, x2/x3/x4 (the tests: Set14 and 20 of B100).
- :func:`luma` is the same integer formula as :func:`srlib.metrics._luma_torch` (bit for bit);
  :func:`mse` of integer Y is exact, so PSNR is bit for bit too.
- :func:`ssim_mean` filters in :func:`srlib.metrics._filter_valid`'s order (taps 0..10, rows then
  columns) with fused multiply-adds and a vectorised (reassociated) sum: 5e-14 from the torch map's
  mean at most over the four benchmarks x2/x3/x4.

Threads. Work is split into ``torch.get_num_threads()`` contiguous parts run on a small thread
pool (the kernels release the GIL; ``SRLIB_KERNEL_THREADS`` caps it). Not numba's own
``parallel=True``: its OpenMP layer is a second spinning pool beside torch's and is not fork-safe
(DataLoader workers fork), and its ``workqueue`` layer measured 2x slower per call here. Nothing
here calls BLAS (``np.dot`` woke OpenBLAS's spinning threads: the small table took 5.3 s instead
of 2.2 at 2 threads), and the protocol's own torch steps (``to_tensor``, the HR copy) were moved
to numpy so that torch's pool, spinning after each parallel op, does not compete with the kernels.

Measured: ``benchmarks/bench_protocol.py`` (the page's first section).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

try:  # numba is a dependency; without it (an odd install) the protocol runs its torch code
    import numba
    from numba import njit
except ImportError:  # pragma: no cover - exercised by the tests through ENABLED
    numba = None

#: the switch the dispatchers read; False runs the torch code (tests compare the two)
ENABLED = numba is not None and os.environ.get("SRLIB_NO_NUMBA", "") in ("", "0")

_BLOCK = 8  # output lines a resize block computes before writing them transposed (one cache line)
_FASTMATH = {"contract", "reassoc", "nsz"}  # SSIM only: FMAs and a vectorised sum
_CPUS = os.cpu_count() or 1
MAX_THREADS = int(os.environ.get("SRLIB_KERNEL_THREADS", "0"))
_POOL: dict = {}  # pid -> (threads, ThreadPoolExecutor); a forked child makes its own


def _pool(threads: int) -> ThreadPoolExecutor:
    key = os.getpid()
    if key not in _POOL or _POOL[key][0] != threads:
        _POOL[key] = (threads, ThreadPoolExecutor(threads, thread_name_prefix="srlib-kernel"))
    return _POOL[key][1]


def split(kernel, n: int, *args, min_items: int = 2) -> list:
    """Run ``kernel(*args, start, stop)`` over ``range(n)`` in ``torch.get_num_threads()``
    contiguous parts on a thread pool (the kernels release the GIL); returns their results."""
    threads = max(1, min(MAX_THREADS or torch.get_num_threads(), _CPUS, n // min_items))
    if threads == 1:
        return [kernel(*args, 0, n)]
    bounds = [n * i // threads for i in range(threads + 1)]
    futures = [_pool(threads).submit(kernel, *args, bounds[i], bounds[i + 1]) for i in range(1, threads)]
    return [kernel(*args, bounds[0], bounds[1])] + [f.result() for f in futures]


if numba is not None:
    @njit(cache=True, nogil=True)
    def _resize_items(x, lo, wt, out, start, stop):  # pragma: no cover - compiled
        m, out_len, taps = x.shape[2], wt.shape[0], wt.shape[1]
        blocks = (out_len + _BLOCK - 1) // _BLOCK
        buf = np.empty((_BLOCK, m))
        for q in range(start, stop):
            b, o0 = q // blocks, (q % blocks) * _BLOCK
            o1 = min(o0 + _BLOCK, out_len)
            for k in range(o1 - o0):
                o = o0 + k
                w0, row = wt[o, 0], x[b, lo[o]]
                for j in range(m):
                    buf[k, j] = row[j] * w0
                for t in range(1, taps):
                    wv, row = wt[o, t], x[b, lo[o] + t]
                    for j in range(m):
                        buf[k, j] += row[j] * wv
            for j in range(m):
                for k in range(o1 - o0):
                    out[b, j, o0 + k] = buf[k, j]
        return 0

    @njit(cache=True, nogil=True)
    def _quantize_items(x, out, start, stop):  # pragma: no cover - compiled
        for i in range(start, stop):
            out[i] = np.uint8(np.rint(min(max(x[i], 0.0), 255.0)))
        return 0

    @njit(cache=True, nogil=True)
    def _quantize_unit_items(x, out, start, stop):  # pragma: no cover - compiled
        for i in range(start, stop):  # the level v as v / 255, divided in float64
            out[i] = np.rint(min(max(x[i], 0.0), 255.0)) / 255.0
        return 0

    @njit(cache=True, nogil=True)
    def _unit_to_uint8_items(x, zero, one, scale, out, start, stop):  # pragma: no cover - compiled
        for i in range(start, stop):  # in x's own precision (zero, one, scale are of its type)
            out[i] = np.uint8(np.rint(min(max(x[i], zero), one) * scale))
        return 0

    @njit(cache=True, nogil=True)
    def _luma_rows(x, crop, add, div, floor, base, out, start, stop):  # pragma: no cover - compiled
        w = out.shape[1]
        for i in range(start, stop):
            r, g, b = x[0, crop + i], x[1, crop + i], x[2, crop + i]
            for j in range(w):
                s = 65481.0 * r[crop + j] + 128553.0 * g[crop + j] + 24966.0 * b[crop + j]
                v = (s + add) / div
                out[i, j] = np.floor(v) if floor else base + v
        return 0

    @njit(cache=True, nogil=True, fastmath=_FASTMATH)
    def _sq_diff_rows(a, b, start, stop):  # pragma: no cover - compiled
        s = 0.0
        for i in range(start, stop):
            for j in range(a.shape[1]):
                d = a[i, j] - b[i, j]
                s += d * d
        return s

    @njit(cache=True, inline="always", fastmath=_FASTMATH)
    def _row11(x, o, g):  # pragma: no cover - compiled
        return (x[o] * g[0] + x[o + 1] * g[1] + x[o + 2] * g[2] + x[o + 3] * g[3] + x[o + 4] * g[4]
                + x[o + 5] * g[5] + x[o + 6] * g[6] + x[o + 7] * g[7] + x[o + 8] * g[8]
                + x[o + 9] * g[9] + x[o + 10] * g[10])

    @njit(cache=True, inline="always", fastmath=_FASTMATH)
    def _col11(x, i, j, g):  # pragma: no cover - compiled
        return (x[i, j] * g[0] + x[i + 1, j] * g[1] + x[i + 2, j] * g[2] + x[i + 3, j] * g[3]
                + x[i + 4, j] * g[4] + x[i + 5, j] * g[5] + x[i + 6, j] * g[6] + x[i + 7, j] * g[7]
                + x[i + 8, j] * g[8] + x[i + 9, j] * g[9] + x[i + 10, j] * g[10])

    @njit(cache=True, inline="always", fastmath=_FASTMATH)
    def _rows11(src, dst, r, g):  # pragma: no cover - compiled
        for j in range(dst.shape[1]):  # one source, one destination: the loop vectorises
            dst[r, j] = _row11(src, j, g)

    @njit(cache=True, inline="always", fastmath=_FASTMATH)
    def _cols11(src, dst, i, g):  # pragma: no cover - compiled
        for j in range(dst.shape[0]):
            dst[j] = _col11(src, i, j, g)

    @njit(cache=True, nogil=True, fastmath=_FASTMATH)
    def _ssim_bands(a, b, g, c1, c2, band, start, stop):  # pragma: no cover - compiled
        h, w = a.shape[0] - 10, a.shape[1] - 10
        fa, fb = np.empty((band + 10, w)), np.empty((band + 10, w))
        fsq, fab = np.empty((band + 10, w)), np.empty((band + 10, w))
        sq, ab = np.empty(a.shape[1]), np.empty(a.shape[1])
        mu_a, mu_b, e_sq, e_ab = np.empty(w), np.empty(w), np.empty(w), np.empty(w)
        s = 0.0
        for q in range(start, stop):
            r0 = q * band
            r1 = min(r0 + band, h)
            for r in range(r1 - r0 + 10):  # horizontal pass of the four maps a, b, a^2 + b^2, ab
                ar, br = a[r0 + r], b[r0 + r]
                for j in range(a.shape[1]):
                    sq[j] = ar[j] * ar[j] + br[j] * br[j]
                for j in range(a.shape[1]):
                    ab[j] = ar[j] * br[j]
                _rows11(ar, fa, r, g)
                _rows11(br, fb, r, g)
                _rows11(sq, fsq, r, g)
                _rows11(ab, fab, r, g)
            for i in range(r1 - r0):  # vertical pass and the SSIM formula (metrics.ssim_map)
                _cols11(fa, mu_a, i, g)
                _cols11(fb, mu_b, i, g)
                _cols11(fsq, e_sq, i, g)
                _cols11(fab, e_ab, i, g)
                for j in range(w):
                    mu_ab = mu_a[j] * mu_b[j]
                    mu_sq = mu_a[j] * mu_a[j] + mu_b[j] * mu_b[j]
                    num = (2.0 * (e_ab[j] - mu_ab) + c2) * (2.0 * mu_ab + c1)
                    den = (e_sq[j] - mu_sq + c2) * (mu_sq + c1)
                    e_sq[j] = num / den  # the SSIM map's row, summed below (two vectorised loops)
                for j in range(w):
                    s += e_sq[j]
        return s


def usable(*tensors) -> bool:
    """Whether the kernels take these tensors: numba present and enabled, all on the CPU."""
    return ENABLED and all(t.device.type == "cpu" for t in tensors)


def resize_pass(x: np.ndarray, lo: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Resize axis 1 of a (B, N, M) array (uint8 or float64) and move it last: (B, M, out_len)
    float64, ``out[b, j, o] = sum_t weights[o, t] x[b, lo[o] + t, j]``. Two calls resize both
    dimensions of a stack of planes and give it back in its own orientation."""
    out = np.empty((x.shape[0], x.shape[2], weights.shape[0]))
    blocks = -(-weights.shape[0] // _BLOCK)
    split(_resize_items, x.shape[0] * blocks, np.ascontiguousarray(x), lo, weights, out)
    return out


def luma(x: np.ndarray, crop: int, add: float, div: float, floor: bool, base: float) -> np.ndarray:
    """(3, H, W) uint8 RGB -> (H - 2 crop, W - 2 crop) float64 ``(S + add) / div``, floored, or
    plus ``base`` unfloored, S = 65481 R + 128553 G + 24966 B (exact in float64); the parameters
    are :func:`srlib.metrics._luma_torch`'s."""
    out = np.empty((x.shape[1] - 2 * crop, x.shape[2] - 2 * crop))
    split(_luma_rows, out.shape[0], np.ascontiguousarray(x), crop, float(add), float(div), bool(floor),
          float(base), out, min_items=16)
    return out


def quantize(x: np.ndarray, unit_dtype=None) -> np.ndarray:
    """float64 levels -> 8 bits, rounded half to even (as ``torch.round``) and saturated to
    0..255: uint8, or with ``unit_dtype`` (float32/float64) the level v as v / 255 (divided in
    float64, then stored in that type)."""
    x = np.ascontiguousarray(x)
    out = np.empty(x.shape, dtype=unit_dtype or np.uint8)
    kernel = _quantize_items if unit_dtype is None else _quantize_unit_items
    split(kernel, x.size, x.reshape(-1), out.reshape(-1), min_items=1 << 16)
    return out


def unit_to_uint8(x: np.ndarray) -> np.ndarray:
    """float32/float64 in [0, 1] -> uint8 as :func:`srlib.metrics.quantize8` does it in torch:
    clamped to [0, 1], times 255 and rounded half to even, all in the array's own precision."""
    x = np.ascontiguousarray(x)
    t = x.dtype.type
    out = np.empty(x.shape, dtype=np.uint8)
    split(_unit_to_uint8_items, x.size, x.reshape(-1), t(0), t(1), t(255), out.reshape(-1), min_items=1 << 16)
    return out


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared difference of two float64 (H, W) planes (exact for integer planes: every
    partial sum is an integer below 2^53). Not ``np.dot``: BLAS's threads would spin beside torch's."""
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return sum(split(_sq_diff_rows, a.shape[0], a, b, min_items=16)) / a.size


def ssim_mean(a: np.ndarray, b: np.ndarray, g: np.ndarray, c1: float, c2: float, band: int = 32) -> float:
    """Mean of the 'valid' SSIM map of two float64 (H, W) planes (11-tap window ``g``), over
    bands of ``band`` output rows (each band filters its 10 extra input rows again)."""
    h, w = a.shape[0] - 10, a.shape[1] - 10
    bands = -(-h // band)
    parts = split(_ssim_bands, bands, np.ascontiguousarray(a), np.ascontiguousarray(b), g, c1, c2, band)
    return sum(parts) / (h * w)
