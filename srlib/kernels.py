"""Fused CPU kernels (numba) for the evaluation protocol (MATLAB resize passes, Y, PSNR, SSIM),
for sparse coding's FISTA iterations (:func:`fista`) and neighbour embedding's LLE step
(:func:`lle_combine`).

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
  columns; each input row filtered along x once, into an 11-row ring buffer per map) with fused
  multiply-adds and a vectorised (reassociated) sum: 5e-14 from the torch map's mean at most over
  the four benchmarks x2/x3/x4.

Vectorisation (what made the difference, measured): every inner loop indexes from 0 (views
sliced first); a loop over ``range(start, stop)`` makes numba check each index for wraparound
and the loop stays scalar (the elementwise kernels were 20x slower that way). Where the time
goes now (Urban100, 1 thread): the resize passes ~40 % (half of it the transposed writes of the
blocks), SSIM ~30 %.

Threads. Work is split into ``torch.get_num_threads()`` contiguous parts run on a small thread
pool (the kernels release the GIL; ``SRLIB_KERNEL_THREADS`` caps it). Not numba's own
``parallel=True``: its OpenMP layer is a second spinning pool beside torch's and is not fork-safe
(DataLoader workers fork), and its ``workqueue`` layer measured 2x slower per call here. Nothing
here calls BLAS (``np.dot`` woke OpenBLAS's spinning threads: the small table took 5.3 s instead
of 2.2 at 2 threads), and the protocol's own torch steps (``to_tensor``, the HR copy) moved to
numpy or to :func:`hwc_to_chw` so that torch's pool, spinning after each parallel op, does not
compete with the kernels. Urban100 x2/x3/x4 (20 images): 1.48 s on 1 thread, 1.02-1.07 s on 2.

Measured: ``benchmarks/bench_protocol.py`` (the page's first section).
"""
from __future__ import annotations

import contextlib
import os
import threading
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
_LOCAL = threading.local()  # .limit: this thread's cap on a kernel call's threads (0: none)
_POOL: dict = {}  # pid -> (threads, ThreadPoolExecutor); a forked child makes its own


def _pool(threads: int) -> ThreadPoolExecutor:
    key = os.getpid()
    if key not in _POOL or _POOL[key][0] != threads:
        _POOL[key] = (threads, ThreadPoolExecutor(threads, thread_name_prefix="srlib-kernel"))
    return _POOL[key][1]


@contextlib.contextmanager
def _limit(threads: int):
    before = getattr(_LOCAL, "limit", 0)
    _LOCAL.limit = threads
    try:
        yield
    finally:
        _LOCAL.limit = before


def single_threaded():
    """Inside, on this thread: every kernel call runs on its caller's thread only, e.g. while the
    caller runs two streams of work side by side (:func:`srlib.evaluate.evaluate_set`'s metrics
    thread and its upscaling loop each enter it)."""
    return _limit(1)


def all_threads():
    """Inside, on this thread: kernel calls split over torch's threads again, even within
    :func:`single_threaded`; for work of seconds a call (neighbour embedding's search, sparse
    coding's FISTA), beside which a metrics thread's few milliseconds do not matter."""
    return _limit(0)


def split(kernel, n: int, *args, min_items: int = 2) -> list:
    """Run ``kernel(*args, start, stop)`` over ``range(n)`` in ``torch.get_num_threads()``
    contiguous parts on a thread pool (the kernels release the GIL); returns their results."""
    threads = max(1, min(getattr(_LOCAL, "limit", 0) or MAX_THREADS or torch.get_num_threads(), _CPUS,
                         n // min_items))
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
            seg = out[b, :, o0:o1]  # (m, o1 - o0), indexed from 0 (see the elementwise kernels)
            for j in range(m):
                for k in range(o1 - o0):
                    seg[j, k] = buf[k, j]
        return 0

    # The elementwise kernels index slices from 0: with ``range(start, stop)`` numba cannot prove
    # an index non-negative, checks it for wraparound, and the loop does not vectorise (20x slower).
    @njit(cache=True, nogil=True)
    def _quantize_items(x, out, start, stop):  # pragma: no cover - compiled
        xs, os_ = x[start:stop], out[start:stop]
        for i in range(xs.size):
            os_[i] = np.uint8(np.rint(min(max(xs[i], 0.0), 255.0)))
        return 0

    @njit(cache=True, nogil=True)
    def _quantize_unit_items(x, out, start, stop):  # pragma: no cover - compiled
        xs, os_ = x[start:stop], out[start:stop]
        for i in range(xs.size):  # the level v as v / 255, divided in float64
            os_[i] = np.rint(min(max(xs[i], 0.0), 255.0)) / 255.0
        return 0

    @njit(cache=True, nogil=True)
    def _unit_to_uint8_items(x, zero, one, scale, out, start, stop):  # pragma: no cover - compiled
        xs, os_ = x[start:stop], out[start:stop]
        for i in range(xs.size):  # in x's own precision (zero, one, scale are of its type)
            os_[i] = np.uint8(np.rint(min(max(xs[i], zero), one) * scale))
        return 0

    @njit(cache=True, nogil=True)
    def _hwc_to_chw_rows(x, out, start, stop):  # pragma: no cover - compiled
        for i in range(start, stop):
            row = x[i]
            for c in range(out.shape[0]):
                dst = out[c, i]
                for j in range(dst.size):
                    dst[j] = row[j, c]
        return 0

    @njit(cache=True, nogil=True)
    def _quantize_chw_to_hwc_rows(x, out, start, stop):  # pragma: no cover - compiled
        for i in range(start, stop):
            row = out[i]
            for c in range(x.shape[0]):
                src = x[c, i]
                for j in range(src.size):
                    row[j, c] = np.uint8(np.rint(min(max(src[j], 0.0), 255.0)))
        return 0

    @njit(cache=True, nogil=True)
    def _luma_rows(x, crop, add, div, floor, base, out, start, stop):  # pragma: no cover - compiled
        h, w = out.shape
        rgb = x[:, crop:crop + h, crop:crop + w]
        for i in range(start, stop):
            r, g, b, o = rgb[0, i], rgb[1, i], rgb[2, i], out[i]
            for j in range(w):
                s = 65481.0 * r[j] + 128553.0 * g[j] + 24966.0 * b[j]
                v = (s + add) / div
                o[j] = np.floor(v) if floor else base + v
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
    def _taps11(x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, g, dst):  # pragma: no cover - compiled
        """``dst = sum_k g[k] x_k`` over 11 equal-length views, summed from k = 0 up."""
        for j in range(dst.size):
            dst[j] = (x0[j] * g[0] + x1[j] * g[1] + x2[j] * g[2] + x3[j] * g[3] + x4[j] * g[4]
                      + x5[j] * g[5] + x6[j] * g[6] + x7[j] * g[7] + x8[j] * g[8] + x9[j] * g[9]
                      + x10[j] * g[10])

    @njit(cache=True, inline="always", fastmath=_FASTMATH)
    def _rows11(src, dst, g):  # pragma: no cover - compiled
        n = dst.size  # dst[j] = sum_k g[k] src[j + k]
        _taps11(src[0:n], src[1:n + 1], src[2:n + 2], src[3:n + 3], src[4:n + 4], src[5:n + 5],
                src[6:n + 6], src[7:n + 7], src[8:n + 8], src[9:n + 9], src[10:n + 10], g, dst)

    @njit(cache=True, inline="always", fastmath=_FASTMATH)
    def _cols11(ring, i, dst, g):  # pragma: no cover - compiled
        """``dst[j] = sum_k g[k] row_{i+k}[j]``, rows i..i+10 held in an 11-row ring buffer."""
        _taps11(ring[i % 11], ring[(i + 1) % 11], ring[(i + 2) % 11], ring[(i + 3) % 11],
                ring[(i + 4) % 11], ring[(i + 5) % 11], ring[(i + 6) % 11], ring[(i + 7) % 11],
                ring[(i + 8) % 11], ring[(i + 9) % 11], ring[(i + 10) % 11], g, dst)

    @njit(cache=True, nogil=True, fastmath=_FASTMATH)
    def _ssim_rows(a, b, g, c1, c2, start, stop):  # pragma: no cover - compiled
        """Sum of the SSIM map's rows start..stop-1: each input row is filtered along x once, into
        an 11-row ring per map (cache-sized), and the ring is filtered along y."""
        n, w = a.shape[1], a.shape[1] - 10
        fa, fb, fsq, fab = np.empty((11, w)), np.empty((11, w)), np.empty((11, w)), np.empty((11, w))
        sq, ab = np.empty(n), np.empty(n)
        mu_a, mu_b, e_sq, e_ab = np.empty(w), np.empty(w), np.empty(w), np.empty(w)
        s = 0.0
        for r in range(start, stop + 10):  # input row r -> ring slot r % 11
            ar, br = a[r], b[r]
            for j in range(n):
                sq[j] = ar[j] * ar[j] + br[j] * br[j]
                ab[j] = ar[j] * br[j]
            k = r % 11
            _rows11(ar, fa[k], g)
            _rows11(br, fb[k], g)
            _rows11(sq, fsq[k], g)
            _rows11(ab, fab[k], g)
            i = r - 10  # the output row whose 11 input rows are now all in the ring
            if i < start:
                continue
            _cols11(fa, i, mu_a, g)
            _cols11(fb, i, mu_b, g)
            _cols11(fsq, i, e_sq, g)
            _cols11(fab, i, e_ab, g)
            for j in range(w):  # the SSIM formula (metrics.ssim_map)
                mu_ab = mu_a[j] * mu_b[j]
                mu_sq = mu_a[j] * mu_a[j] + mu_b[j] * mu_b[j]
                num = (2.0 * (e_ab[j] - mu_ab) + c2) * (2.0 * mu_ab + c1)
                den = (e_sq[j] - mu_sq + c2) * (mu_sq + c1)
                e_sq[j] = num / den
            for j in range(w):
                s += e_sq[j]
        return s


    @njit(cache=True, nogil=True, fastmath={"contract"})
    def _axpy_rows(acc, update, z, nz, n):  # pragma: no cover - compiled
        """``acc += sum_q z[nz[q]] update[nz[q]]``: the rows of the nonzero z, four at a time."""
        q = 0
        while q + 4 <= n:
            i0, i1, i2, i3 = nz[q], nz[q + 1], nz[q + 2], nz[q + 3]
            z0, z1, z2, z3 = z[i0], z[i1], z[i2], z[i3]
            r0, r1, r2, r3 = update[i0], update[i1], update[i2], update[i3]
            for j in range(acc.size):
                acc[j] += z0 * r0[j] + z1 * r1[j] + z2 * r2[j] + z3 * r3[j]
            q += 4
        while q < n:
            zq, row = z[nz[q]], update[nz[q]]
            for j in range(acc.size):
                acc[j] += zq * row[j]
            q += 1

    @njit(cache=True, nogil=True, fastmath={"contract"})
    def _fista_items(b, update, thr, mom, ints, out, start, stop):  # pragma: no cover - compiled
        """FISTA on rows start..stop-1 of b (see :func:`fista`); returns each iteration's largest
        step ``max |a_next - a|`` over these rows."""
        k, iters = b.shape[1], mom.shape[0]
        a, z, acc, dd = np.zeros(k, b.dtype), np.zeros(k, b.dtype), np.empty(k, b.dtype), np.empty(k, b.dtype)
        bits = dd.view(ints.dtype)  # ints: an empty integer array of b's width
        nz = np.empty(k, np.int64)
        moved_max = np.zeros(iters, b.dtype)
        for p in range(start, stop):
            bp = b[p]
            a[:] = 0.0
            n, still = 0, True  # z = 0: no nonzero
            for it in range(iters):
                acc[:] = bp
                _axpy_rows(acc, update, z, nz, n)
                m = mom[it]
                for j in range(k):  # soft threshold, momentum; selects, so that the loop vectorises
                    v = acc[j]
                    c = v if v < thr else thr
                    c = c if c > -thr else -thr
                    an = v - c
                    d = an - a[j]
                    z[j] = an + m * d
                    a[j] = an
                    dd[j] = abs(d)
                top = bits[0]  # the largest |d| by its bits (non-negative floats order as integers)
                for j in range(k):
                    top = max(top, bits[j])
                bits[0] = top
                moved = dd[0]
                n = 0
                for j in range(k):  # the nonzero z, without a branch
                    nz[n] = j
                    n += z[j] != 0.0
                moved_max[it] = max(moved_max[it], moved)
                if moved == 0.0 and not still:  # unchanged twice: a fixed point, every later iterate is a
                    break
                still = moved > 0.0
            out[p, :] = a
        return moved_max


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


def hwc_to_chw(img: np.ndarray) -> np.ndarray:
    """uint8 (H, W, C) -> a contiguous (C, H, W) copy, rows shared among the threads."""
    out = np.empty((img.shape[2], img.shape[0], img.shape[1]), dtype=img.dtype)
    split(_hwc_to_chw_rows, img.shape[0], img, out, min_items=16)
    return out


def quantize_to_hwc(x: np.ndarray) -> np.ndarray:
    """float64 (C, H, W) levels -> uint8 (H, W, C): :func:`quantize` and the transpose in one pass."""
    out = np.empty((x.shape[1], x.shape[2], x.shape[0]), dtype=np.uint8)
    split(_quantize_chw_to_hwc_rows, x.shape[1], x, out, min_items=16)
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


def ssim_mean(a: np.ndarray, b: np.ndarray, g: np.ndarray, c1: float, c2: float) -> float:
    """Mean of the 'valid' SSIM map of two float64 (H, W) planes (11-tap window ``g``), its rows
    shared among the threads (each filters the 10 input rows above its first again)."""
    h, w = a.shape[0] - 10, a.shape[1] - 10
    parts = split(_ssim_rows, h, np.ascontiguousarray(a), np.ascontiguousarray(b), g, c1, c2, min_items=32)
    return sum(parts) / (h * w)


if numba is not None:
    @njit(cache=True, nogil=True)
    def _lle_items(q, low, high, idx, reg, out, start, stop):  # pragma: no cover - compiled
        """LLE weights and the weighted HR sum for queries start..stop-1 (see :func:`lle_combine`)."""
        k, dims, size = idx.shape[1], q.shape[1], high.shape[1]
        diff = np.empty((k, dims))
        gram = np.empty((k, k))
        w = np.empty(k)
        acc = np.empty(size)
        for p in range(start, stop):
            for a in range(k):
                row = low[idx[p, a]]
                for d in range(dims):
                    diff[a, d] = np.float64(q[p, d]) - np.float64(row[d])
            trace = 0.0
            for a in range(k):
                for b in range(a + 1):
                    s = 0.0
                    for d in range(dims):
                        s += diff[a, d] * diff[b, d]
                    gram[a, b] = s
                    gram[b, a] = s
                trace += gram[a, a]
            ridge = reg * trace if trace > 0 else reg
            for a in range(k):
                gram[a, a] += ridge
                w[a] = 1.0
            for c in range(k):  # Gaussian elimination with partial pivoting (as LAPACK's getrf picks pivots)
                piv = c
                for r in range(c + 1, k):
                    if abs(gram[r, c]) > abs(gram[piv, c]):
                        piv = r
                if piv != c:
                    for j in range(k):
                        gram[c, j], gram[piv, j] = gram[piv, j], gram[c, j]
                    w[c], w[piv] = w[piv], w[c]
                for r in range(c + 1, k):
                    f = gram[r, c] / gram[c, c]
                    for j in range(c + 1, k):
                        gram[r, j] -= f * gram[c, j]
                    w[r] -= f * w[c]
            for c in range(k - 1, -1, -1):
                s = w[c]
                for j in range(c + 1, k):
                    s -= gram[c, j] * w[j]
                w[c] = s / gram[c, c]
            total = 0.0
            for a in range(k):
                total += w[a]
            acc[:] = 0.0
            for a in range(k):
                wa, row = w[a] / total, high[idx[p, a]]
                for j in range(size):
                    acc[j] += wa * np.float64(row[j])
            for j in range(size):
                out[p, j] = acc[j]
        return 0


def lle_combine(q: np.ndarray, low: np.ndarray, high: np.ndarray, idx: np.ndarray, reg: float = 1e-3) -> np.ndarray:
    """Neighbour embedding's last step for each query row of q (P, D): the locally-linear weights
    of its neighbours ``low[idx[p]]`` (the local Gram matrix in float64, regularised by
    ``reg trace``, solved by Gaussian elimination with partial pivoting, normalised to sum 1) and
    ``sum_k w_k high[idx[p, k]]``, float32 (P, H). The same arithmetic as
    :func:`srlib.classical.neighbor_embedding.lle_weights` and its weighted sum in torch, in one
    pass with no (P, K, D) temporaries; float64 sums in another order, so within ~1e-15 of them
    (the tests hold the two together)."""
    q = np.ascontiguousarray(q, np.float32)
    out = np.empty((q.shape[0], high.shape[1]), np.float32)
    split(_lle_items, q.shape[0], q, np.ascontiguousarray(low, np.float32), np.ascontiguousarray(high, np.float32),
          np.ascontiguousarray(idx, np.int64), float(reg), out, min_items=256)
    return out


def fista(b: np.ndarray, update: np.ndarray, thr: float, momentum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FISTA's iterations for each row of b (P, K), float32 or float64, all of one type:
    ``a_next = soft(b + z @ update, thr)``, ``z = a_next + momentum[i] (a_next - a)``, from a = z = 0,
    ``len(momentum)`` iterations; a row whose code stayed the same two iterations in a row stops
    there (a fixed point). The product runs over the rows of ``update`` where z is nonzero: the
    codes are sparse (23 of 256 atoms on average over 50 iterations, Urban100 x2), where
    :func:`srlib.classical.sparse_coding.lasso_fista`'s dense ``addmm`` multiplies them all.
    Returns the codes (P, K) and each iteration's largest ``max |a_next - a|`` over the rows."""
    b = np.ascontiguousarray(b)
    t = b.dtype.type
    out = np.empty_like(b)
    parts = split(_fista_items, b.shape[0], b, np.ascontiguousarray(update, dtype=b.dtype), t(thr),
                  np.asarray(momentum, dtype=b.dtype), np.empty(0, f"i{b.itemsize}"), out, min_items=64)
    return out, np.max(parts, axis=0)
