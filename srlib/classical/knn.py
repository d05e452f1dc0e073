"""Exact K nearest neighbours for neighbour embedding: a bounded search over k-d tree leaves (numba).

Neighbour embedding asks, for every patch of an image (163 200 at Urban100 x2), for its K = 5
nearest rows of a pool of 50 000 PCA features in ~34 dimensions. Every brute-force search pays
for all 8e9 distances of such an image: faiss's ``IndexFlatL2`` (a float32 matrix product and a
heap) at ~1.7 ns a pair on one thread, where a thin matrix product alone measured ~1 ns a pair
here (writing its output, not its arithmetic, bounds it). This search skips most pairs without
changing the answer: it is exact, the same neighbours as a float64 brute force, ties to the lower
pool index.

The bound. PCA puts most of a feature's energy in its first coordinates (12 of 34 hold 93 % at
x2), so with ``q = (q_h, q_t)`` split after HEAD coordinates,

    ||q - x||^2  >=  ||q_h - x_h||^2 + (||q_t|| - ||x_t||)^2  =  ||q' - x'||^2,

the distance of the (HEAD + 1)-dimensional points ``q' = (q_h, ||q_t||)`` (the reverse triangle
inequality on the tail). On Urban100 x2 only 0.09 % of the pool (HEAD = 12) lies within the 5th
neighbour's distance by this bound, against 57 % by the first coordinate alone. The pool's
augmented points are grouped into leaves of BLOCK points by a k-d tree (each node split along
its widest coordinate); a leaf's bounding box bounds all its points at once.

The search (:func:`_search`). The queries are first put in the order of a k-d tree of their own
(:func:`kd_order`, leaves of GROUP; 0.07 s for an Urban100 x2 image), so that a group of GROUP
consecutive queries holds alike ones: image order (neighbouring patches) measured 1.3x slower on
Urban100 x2 (41.9 against 31.0 us a query) and x4 (52.6 against 40.5), the leaves visited and the
exact distances both fewer. For each group: start each query's best K from the group before's
neighbours (exact distances), take
the leaves in increasing order of their box bound (the smallest over the group), and for each
query whose own box bound is below its current K-th distance, compute the point bounds of the
leaf's BLOCK points (one vectorised loop, float32), and the exact float64 distance of every point
whose bound is below it; stop when no leaf's box bound is below any query's K-th distance.
Measured on Urban100 x2 (the first image, 1 thread): the queries visit 38 % of the leaves (the
box bounds alone, with each query's true 5th distance, would leave 34 %) and compute the exact
distance of ~56 points each (HEAD = 14); 38-48 us a query against faiss's 84-91 us, and 18-20 us
against 53 us on 2 threads. Running one part twice adds: the point bounds 5 us (their data
then in cache), the box bounds 3 us, counting the points below the threshold 2 us, the leaves'
``argsort`` nothing measurable; the rest is the first touch of each leaf's 4 kB and the loop. A
4-query register-blocked bound, float32 boxes, a bucket order, groups of 8/32/64 and leaves of
32 points measured no faster (one run each, +-15 % noise).

Exactness. Distances are float64 sums, in coordinate order, of the float32 features. The bounds
are computed in float32 (point bounds) and float64 (boxes) and made smaller than the true bound
by more than their rounding: the point bound by ``SLACK (||q'||^2 + ||x'||^2)`` (its float32 error
is below ~2e-6 of that), the box by widening each box's tail-norm side by ``SLACK``. A point is
left out only when its bound exceeds the K-th exact distance found, so the result is the brute
force's (``tests/test_classical.py`` checks it on structured data with ties).
"""
from __future__ import annotations

import numpy as np

from .. import kernels

HEAD = 14  # PCA coordinates kept whole in the bound; the rest enter by their norm (Urban100 x2:
#            12 -> 85 exact distances a query, 14 -> 56, 16 -> 38; 10 -> 201; timings alike for 12-16;
#            18 against 14, whole first image, 1 thread: 46 against 43 us a query at x2, 56 against 62 at x4)
BLOCK = 64  # pool points a k-d tree leaf (32: twice the leaves, 1.8x the time; box bounds cost per leaf)
GROUP = 16  # consecutive queries searched together (8-32 measured alike)
SLACK = 1e-5  # relative allowance for the rounding of the bounds

if kernels.numba is not None:
    from numba import njit

    @njit(cache=True, nogil=True, fastmath={"contract"})
    def _point_bounds(blk, pnb, c, qn, lb):  # pragma: no cover - compiled
        """``lb[i] = qn + pnb[i] + sum_d c[d] blk[d, i]`` (``c = -2 q'``): the 15 terms written out, in
        four chains, so that the loop over the leaf's points vectorises."""
        c0, c1, c2, c3, c4, c5, c6, c7 = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
        c8, c9, c10, c11, c12, c13, c14 = c[8], c[9], c[10], c[11], c[12], c[13], c[14]
        for i in range(BLOCK):
            s0 = qn + pnb[i] + c0 * blk[0, i] + c4 * blk[4, i] + c8 * blk[8, i] + c12 * blk[12, i]
            s1 = c1 * blk[1, i] + c5 * blk[5, i] + c9 * blk[9, i] + c13 * blk[13, i]
            s2 = c2 * blk[2, i] + c6 * blk[6, i] + c10 * blk[10, i] + c14 * blk[14, i]
            s3 = c3 * blk[3, i] + c7 * blk[7, i] + c11 * blk[11, i]
            lb[i] = (s0 + s1) + (s2 + s3)

    @njit(cache=True, nogil=True)
    def _count_below(lb, th):  # pragma: no cover - compiled
        n = 0
        for i in range(BLOCK):
            n += lb[i] <= th
        return n

    @njit(cache=True, nogil=True)
    def _box_bounds(qa, blo, bhi, out):  # pragma: no cover - compiled
        """``out[b]`` = squared distance from the augmented query to leaf b's box (float64)."""
        nb = out.size
        for b in range(nb):
            out[b] = 0.0
        for d in range(qa.size):
            v = np.float64(qa[d])
            lo, hi = blo[d], bhi[d]
            for b in range(nb):
                g = lo[b] - v
                h = v - hi[b]
                g = g if g > h else h
                g = g if g > 0.0 else 0.0
                out[b] += g * g
        for b in range(nb):
            out[b] *= 1.0 - 1e-12  # the float64 sum's rounding

    @njit(cache=True, nogil=True)
    def _offer(q, rows, r, ids, best_d, best_r):  # pragma: no cover - compiled
        """Put pool row r into the query's sorted best K if its exact distance belongs there
        (ties to the lower pool index); returns whether the list changed."""
        k = best_d.size
        for t in range(k):
            if best_r[t] == r:
                return False
        x = rows[r]
        d0, d1 = 0.0, 0.0  # two chains, even and odd coordinates, then their sum
        for e in range(q.size // 2):
            u = q[2 * e] - np.float64(x[2 * e])
            w = q[2 * e + 1] - np.float64(x[2 * e + 1])
            d0 += u * u
            d1 += w * w
        if q.size % 2:
            u = q[q.size - 1] - np.float64(x[q.size - 1])
            d0 += u * u
        d = d0 + d1
        j = ids[r]
        last = best_r[k - 1]
        if last >= 0 and not (d < best_d[k - 1] or (d == best_d[k - 1] and j < ids[last])):
            return False
        t = k - 1
        while t > 0:
            o = best_r[t - 1]
            if o >= 0 and not (d < best_d[t - 1] or (d == best_d[t - 1] and j < ids[o])):
                break
            best_d[t] = best_d[t - 1]
            best_r[t] = o
            t -= 1
        best_d[t] = d
        best_r[t] = r
        return True

    @njit(cache=True, nogil=True)
    def _float32_above(theta):  # pragma: no cover - compiled
        """The smallest float32 >= theta; the largest finite one for infinity (the padding's
        bound is infinite and must never pass)."""
        if theta > 3.4028234663852886e38:
            return np.float32(3.4028234663852886e38)
        t = np.float32(theta)
        if np.float64(t) < theta:
            t = np.nextafter(t, np.float32(np.inf))
        return t

    @njit(cache=True, nogil=True)
    def _select(vals, perm, lo, m, kth):  # pragma: no cover - compiled
        """Quickselect: reorder ``vals[:m]`` and ``perm[lo:lo + m]`` together so that the kth smallest
        value is at kth, none larger before it and none smaller after it."""
        a, b = 0, m - 1
        while a < b:
            pivot = vals[(a + b) // 2]
            i, j = a, b
            while i <= j:
                while vals[i] < pivot:
                    i += 1
                while vals[j] > pivot:
                    j -= 1
                if i <= j:
                    vals[i], vals[j] = vals[j], vals[i]
                    perm[lo + i], perm[lo + j] = perm[lo + j], perm[lo + i]
                    i += 1
                    j -= 1
            if kth <= j:
                b = j
            elif kth >= i:
                a = i
            else:
                break

    @njit(cache=True, nogil=True)
    def kd_order(x, leaf):  # pragma: no cover - compiled
        """An order of the rows of x (n, d) whose consecutive runs of ``leaf`` rows are the leaves of
        a k-d tree: each node is split along its widest coordinate, at a multiple of ``leaf`` rows
        from its start (near its median), and its left part comes first."""
        n, dims = x.shape
        perm = np.arange(n)
        stack = np.empty((2 * (n // leaf) + 64, 2), np.int64)
        stack[0, 0], stack[0, 1] = 0, n
        top = 1
        vals = np.empty(n, np.float32)
        mn = np.empty(dims, np.float32)
        mx = np.empty(dims, np.float32)
        while top:
            top -= 1
            lo, hi = stack[top, 0], stack[top, 1]
            m = hi - lo
            if m <= leaf:
                continue
            mn[:] = np.inf
            mx[:] = -np.inf
            for j in range(lo, hi):
                row = x[perm[j]]
                for d in range(dims):
                    mn[d] = min(mn[d], row[d])
                    mx[d] = max(mx[d], row[d])
            widest = np.argmax(mx - mn)
            for j in range(m):
                vals[j] = x[perm[lo + j], widest]
            cut = lo + (m // leaf + 1) // 2 * leaf
            _select(vals, perm, lo, m, cut - lo)
            stack[top, 0], stack[top, 1] = cut, hi
            stack[top + 1, 0], stack[top + 1, 1] = lo, cut
            top += 2
        return perm

    @njit(cache=True, nogil=True)
    def _search(qc, qn, qa, q64, pa, pn, blo, bhi, rows, ids, k, out, start, stop):  # pragma: no cover
        """The K nearest pool rows of queries start..stop-1, GROUP at a time (module docstring)."""
        nb = pn.shape[0]
        lb = np.empty(BLOCK, np.float32)
        best_d = np.empty((GROUP, k), np.float64)
        best_r = np.empty((GROUP, k), np.int64)
        th = np.empty(GROUP, np.float32)
        theta = np.empty(GROUP, np.float64)
        bb = np.empty((GROUP, nb), np.float64)
        gmin = np.empty(nb, np.float64)
        prev = np.empty(GROUP * k, np.int64)
        n_prev = 0
        for g0 in range(start, stop, GROUP):
            n = min(g0 + GROUP, stop) - g0
            for gi in range(n):
                best_d[gi, :] = np.inf
                best_r[gi, :] = -1
                for u in range(n_prev):  # start from the group before's neighbours
                    _offer(q64[g0 + gi], rows, prev[u], ids, best_d[gi], best_r[gi])
                theta[gi] = best_d[gi, k - 1]
                th[gi] = _float32_above(theta[gi])
                _box_bounds(qa[g0 + gi], blo, bhi, bb[gi])
            gmin[:] = bb[0]
            for gi in range(1, n):
                row = bb[gi]
                for b in range(nb):
                    gmin[b] = min(gmin[b], row[b])
            top = theta[:n].max()
            for b in np.argsort(gmin):
                if gmin[b] > top:
                    break
                for gi in range(n):
                    if bb[gi, b] > theta[gi]:
                        continue
                    p = g0 + gi
                    _point_bounds(pa[b], pn[b], qc[p], qn[p], lb)
                    if _count_below(lb, th[gi]) == 0:
                        continue
                    for i in range(BLOCK):
                        if lb[i] <= th[gi] and _offer(q64[p], rows, b * BLOCK + i, ids, best_d[gi], best_r[gi]):
                            theta[gi] = best_d[gi, k - 1]
                            th[gi] = _float32_above(theta[gi])
                            top = theta[:n].max()
            n_prev = 0
            for gi in range(n):
                for t in range(k):
                    r = best_r[gi, t]
                    out[g0 + gi, t] = ids[r]
                    seen = False
                    for u in range(n_prev):
                        seen = seen or prev[u] == r
                    if not seen:
                        prev[n_prev] = r
                        n_prev += 1
        return 0


def augment(x: np.ndarray) -> np.ndarray:
    """(n, D) features -> (n, HEAD + 1) float32: the first HEAD coordinates (zero-padded when D is
    smaller) and the norm of the rest."""
    x = np.asarray(x, np.float32)
    out = np.zeros((x.shape[0], HEAD + 1), np.float32)
    h = min(HEAD, x.shape[1])
    out[:, :h] = x[:, :h]
    out[:, HEAD] = np.linalg.norm(x[:, HEAD:].astype(np.float64), axis=1)
    return out


class BlockSearch:
    """Exact K-nearest-neighbour search of a fixed pool (n, D), built once (~0.1 s for 50 000 rows)."""

    def __init__(self, pool: np.ndarray):
        if kernels.numba is None:
            raise ImportError("BlockSearch needs numba (a dependency of srlib; pip install numba)")
        pool = np.asarray(pool, np.float32)
        if pool.ndim != 2 or not len(pool) or not np.isfinite(pool).all():
            raise ValueError(f"BlockSearch: the pool must be a finite (n, D) array with n > 0; got shape {pool.shape}")
        n, self.dims = pool.shape
        self.size = n
        aug = augment(pool)
        order = kd_order(aug, BLOCK)
        nb = -(-n // BLOCK)
        m = nb * BLOCK
        pad = np.zeros((m - n, HEAD + 1), np.float32)
        leaves = np.concatenate([aug[order], pad])
        pn = (leaves.astype(np.float64) ** 2).sum(1) * (1 - SLACK)
        pn[n:] = np.inf  # padding: no bound is ever below it
        self.pn = pn.astype(np.float32).reshape(nb, BLOCK)
        self.pa = np.ascontiguousarray(leaves.reshape(nb, BLOCK, HEAD + 1).transpose(0, 2, 1))
        box = leaves.reshape(nb, BLOCK, HEAD + 1).astype(np.float64)
        real = (np.arange(m) < n).reshape(nb, BLOCK, 1)
        self.blo = np.where(real, box, np.inf).min(1).T.copy()
        self.bhi = np.where(real, box, -np.inf).max(1).T.copy()
        self.blo[HEAD] *= 1 - SLACK  # the tail norms are rounded to float32: widen that side
        self.bhi[HEAD] *= 1 + SLACK
        self.rows = np.concatenate([pool[order], np.zeros((m - n, self.dims), np.float32)])
        self.ids = np.concatenate([order, np.zeros(m - n, np.int64)]).astype(np.int64)

    def search(self, q: np.ndarray, k: int) -> np.ndarray:
        """Indices (P, k) of the k nearest pool rows of each query row, nearest first."""
        q = np.asarray(q, np.float32)
        if q.ndim != 2 or q.shape[1] != self.dims:
            raise ValueError(f"BlockSearch: queries of shape {q.shape}, the pool has {self.dims} columns")
        if not 0 < k <= self.size:
            raise ValueError(f"BlockSearch: k={k} neighbours from a pool of {self.size}")
        if not np.isfinite(q).all():
            raise ValueError("BlockSearch: the queries hold NaN or infinite values")
        aug = augment(q)
        order = kd_order(aug, GROUP)  # alike queries together (see the module docstring)
        aug, q = aug[order], q[order]
        qc = np.ascontiguousarray(-2 * aug)
        qn = ((aug.astype(np.float64) ** 2).sum(1) * (1 - SLACK)).astype(np.float32)
        out = np.empty((q.shape[0], k), np.int64)
        kernels.split(_search, q.shape[0], qc, qn, aug, q.astype(np.float64), self.pa, self.pn, self.blo,
                      self.bhi, self.rows, self.ids, k, out, min_items=4 * GROUP)
        result = np.empty_like(out)
        result[order] = out
        return result
