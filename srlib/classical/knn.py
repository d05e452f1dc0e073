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
consecutive queries holds alike ones. For each group: start each query's best K from the group
before's neighbours (exact distances); take the leaves in increasing order of their box bound
(the smallest over the group; :func:`_radix_order`); for each query whose own box bound is below
its current K-th distance, count the leaf's BLOCK point bounds below it (one vectorised pass of
FMAs, float32), and where some are, compute them again into a buffer and the exact float64
distance of each point whose bound is below it; stop when no leaf's box bound is below any
query's K-th distance. On Urban100 x2 (the first image, 1 thread) the queries visit 35 % of the
leaves (the box bounds with each query's true 5th distance leave 34 %) and compute ~100 exact
distances each (half of them the warm start).

What made it fast (Urban100 x2 and x4, the first image, 1 thread):

- the queries in k-d order instead of image order (neighbouring patches): 1.3x (x2: 41.9 against
  31.0 us a query; x4: 52.6 against 40.5; whole runs, the fastest of 3), the leaves visited and
  the exact distances both fewer;
- then, timed on the same ordered queries in interleaved slices of 4096 (so that the machine's
  drift, +-15 % between runs, falls on both): counting the point bounds without storing them
  (no aliasing checks, no stores) 1.25x; the leaf flat, its rows at constant offsets from one
  base, 1.06x; the box bounds in float32 and the leaves ordered by a radix sort instead of
  ``argsort`` 1.2x; all three together 1.38x at x2 and 1.42x at x4. The point bounds are still
  about half of the search.

25-31 us a query at x2 on a quiet machine. Measured no faster: groups of 8 (alike) or 32 (1.23x
slower), leaves of 32 points (1.4x slower: the work per leaf is per query),
a warm start from fewer of the group before's neighbours (1.05x slower at x4), a 4-query
register-blocked bound, a smallest-bound test instead of the count (3x slower: the min reduction
does not vectorise), k-means leaves (more points in the leaves that pass).

Exactness. Distances are float64 sums of the float32 features (even and odd coordinates in two
chains, each in order, then added). The bounds
are computed in float32 and made smaller than the true bound by more than their rounding: the
point bound by ``SLACK (||q'||^2 + ||x'||^2)`` (its float32 error is below ~2e-6 of that), the
box by widening each box's tail-norm side by ``SLACK``, rounding its sides outwards to float32
and taking ``2e-5`` of the box bound off (its error is below 1e-6 of it: a sum of non-negative
terms). A point is left out only when its bound exceeds the K-th exact distance found, so the
result is the brute force's (``tests/test_knn.py`` checks it on structured data with ties).
"""
from __future__ import annotations

import numpy as np

from .. import kernels

HEAD = 14  # PCA coordinates kept whole in the bound; the rest enter by their norm (Urban100 x2, in image order:
#            12 -> 85 exact distances a query, 14 -> 56, 16 -> 38; 10 -> 201; timings alike for 12-16;
#            18 against 14, whole first image, 1 thread: 46 against 43 us a query at x2, 56 against 62 at x4)
BLOCK = 64  # pool points a k-d tree leaf (32: twice the leaves, 1.4x the time)
GROUP = 16  # queries searched together (8 alike, 32 1.23x slower)
SLACK = 1e-5  # relative allowance for the rounding of the bounds
NORMS = (HEAD + 1) * BLOCK  # where a flat leaf's squared norms start

if kernels.numba is not None:
    from numba import njit

    @njit(cache=True, nogil=True, fastmath={"contract"}, inline="always")
    def _bound(blk, c, qn, i):  # pragma: no cover - compiled
        """Point i's bound ``qn + ||x'||^2 + sum_d c[d] x'_d`` (``c = -2 q'``) from the flat leaf blk
        (HEAD + 1 rows of BLOCK coordinates, then the squared norms: constant offsets from one base,
        so the loops over i vectorise): the two squared norms and the 15 products, in four chains."""
        s0 = qn + blk[NORMS + i] + c[0] * blk[i] + c[4] * blk[4 * BLOCK + i] + c[8] * blk[8 * BLOCK + i]
        s1 = c[1] * blk[BLOCK + i] + c[5] * blk[5 * BLOCK + i] + c[9] * blk[9 * BLOCK + i]
        s2 = c[2] * blk[2 * BLOCK + i] + c[6] * blk[6 * BLOCK + i] + c[10] * blk[10 * BLOCK + i]
        s3 = c[3] * blk[3 * BLOCK + i] + c[7] * blk[7 * BLOCK + i] + c[11] * blk[11 * BLOCK + i]
        s0 += c[12] * blk[12 * BLOCK + i]
        s1 += c[13] * blk[13 * BLOCK + i]
        s2 += c[14] * blk[14 * BLOCK + i]
        return (s0 + s1) + (s2 + s3)

    @njit(cache=True, nogil=True, fastmath={"contract"})
    def _count_below(blk, c, qn, th):  # pragma: no cover - compiled
        """How many of the leaf's point bounds are <= th (no stores: the loop stays one pass of
        vector FMAs; storing the bounds as well measured 1.25x slower, the search's largest part)."""
        n = 0
        for i in range(BLOCK):
            n += _bound(blk, c, qn, i) <= th
        return n

    @njit(cache=True, nogil=True, fastmath={"contract"})
    def _point_bounds(blk, c, qn, lb):  # pragma: no cover - compiled
        """``lb[i]`` = point i's bound, for the leaves where :func:`_count_below` found some."""
        for i in range(BLOCK):
            lb[i] = _bound(blk, c, qn, i)

    @njit(cache=True, nogil=True)
    def _box_bounds(qa, blo, bhi, out):  # pragma: no cover - compiled
        """``out[b]`` <= the squared distance from the augmented query to leaf b's box, in float32:
        its rounding (below 1e-6 of the sum of its 15 non-negative terms) is taken off by the
        factor ``1 - 2e-5`` (the boxes were rounded outwards to float32)."""
        nb = out.size
        for b in range(nb):
            out[b] = 0.0
        for d in range(qa.size):
            v = qa[d]
            lo, hi = blo[d], bhi[d]
            for b in range(nb):
                g = lo[b] - v
                h = v - hi[b]
                g = g if g > h else h
                g = g if g > np.float32(0.0) else np.float32(0.0)
                out[b] += g * g
        for b in range(nb):
            out[b] *= np.float32(1.0 - 2e-5)

    @njit(cache=True, nogil=True)
    def _radix_order(keys, order, tmp_k, tmp_o, count):  # pragma: no cover - compiled
        """Sort keys (uint32) and set order to their indices in that order: an LSD radix sort, 8 bits
        a pass (~20x faster than ``np.argsort`` on 782 keys, which took 8 % of the search). The
        keys are float32 bounds >= 0, whose bit patterns sort as the values do."""
        n = keys.size
        for i in range(n):
            order[i] = i
        src_k, src_o, dst_k, dst_o = keys, order, tmp_k, tmp_o
        for shift in range(0, 32, 8):
            count[:] = 0
            for i in range(n):
                count[(src_k[i] >> shift) & 255] += 1
            total = 0
            for c in range(256):
                total, count[c] = total + count[c], total
            for i in range(n):
                c = (src_k[i] >> shift) & 255
                dst_k[count[c]] = src_k[i]
                dst_o[count[c]] = src_o[i]
                count[c] += 1
            src_k, dst_k, src_o, dst_o = dst_k, src_k, dst_o, src_o  # four passes: back in keys, order

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
    def _search(qc, qn, qa, q64, leaves, blo, bhi, rows, ids, k, out, start, stop):  # pragma: no cover
        """The K nearest pool rows of queries start..stop-1, GROUP at a time (module docstring)."""
        nb = leaves.shape[0]
        lb = np.empty(BLOCK, np.float32)
        best_d = np.empty((GROUP, k), np.float64)
        best_r = np.empty((GROUP, k), np.int64)
        th = np.empty(GROUP, np.float32)  # each query's K-th distance, rounded up: the bounds' threshold
        bb = np.empty((GROUP, nb), np.float32)
        gmin = np.empty(nb, np.float32)
        keys, order = np.empty(nb, np.uint32), np.empty(nb, np.int64)
        tmp_k, tmp_o, count = np.empty(nb, np.uint32), np.empty(nb, np.int64), np.empty(256, np.int64)
        prev = np.empty(GROUP * k, np.int64)
        n_prev = 0
        for g0 in range(start, stop, GROUP):
            n = min(g0 + GROUP, stop) - g0
            for gi in range(n):
                best_d[gi, :] = np.inf
                best_r[gi, :] = -1
                for u in range(n_prev):  # start from the group before's neighbours
                    _offer(q64[g0 + gi], rows, prev[u], ids, best_d[gi], best_r[gi])
                th[gi] = _float32_above(best_d[gi, k - 1])
                _box_bounds(qa[g0 + gi], blo, bhi, bb[gi])
            gmin[:] = bb[0]
            for gi in range(1, n):
                row = bb[gi]
                for b in range(nb):
                    gmin[b] = min(gmin[b], row[b])
            keys[:] = gmin.view(np.uint32)
            _radix_order(keys, order, tmp_k, tmp_o, count)
            top = th[:n].max()
            for b in order:
                if gmin[b] > top:
                    break
                blk = leaves[b]
                for gi in range(n):
                    if bb[gi, b] > th[gi]:
                        continue
                    p = g0 + gi
                    if _count_below(blk, qc[p], qn[p], th[gi]) == 0:
                        continue
                    _point_bounds(blk, qc[p], qn[p], lb)
                    for i in range(BLOCK):
                        if lb[i] <= th[gi] and _offer(q64[p], rows, b * BLOCK + i, ids, best_d[gi], best_r[gi]):
                            th[gi] = _float32_above(best_d[gi, k - 1])
                            top = th[:n].max()
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


def _float32_outwards(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 box sides rounded outwards to float32 (lo down, hi up), contiguous."""
    lo32, hi32 = lo.astype(np.float32), hi.astype(np.float32)
    lo32 = np.where(lo32.astype(np.float64) > lo, np.nextafter(lo32, np.float32(-np.inf)), lo32)
    hi32 = np.where(hi32.astype(np.float64) < hi, np.nextafter(hi32, np.float32(np.inf)), hi32)
    return np.ascontiguousarray(lo32), np.ascontiguousarray(hi32)


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
        flat = np.concatenate([leaves.reshape(nb, BLOCK, HEAD + 1).transpose(0, 2, 1),
                               pn.astype(np.float32).reshape(nb, 1, BLOCK)], axis=1)
        self.leaves = np.ascontiguousarray(flat.reshape(nb, NORMS + BLOCK))
        box = leaves.reshape(nb, BLOCK, HEAD + 1).astype(np.float64)
        real = (np.arange(m) < n).reshape(nb, BLOCK, 1)
        lo = np.where(real, box, np.inf).min(1).T
        hi = np.where(real, box, -np.inf).max(1).T
        lo[HEAD] *= 1 - SLACK  # the tail norms are rounded to float32: widen that side
        hi[HEAD] *= 1 + SLACK
        self.blo, self.bhi = _float32_outwards(lo, hi)
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
        kernels.split(_search, q.shape[0], qc, qn, aug, q.astype(np.float64), self.leaves, self.blo, self.bhi,
                      self.rows, self.ids, k, out, min_items=4 * GROUP)
        result = np.empty_like(out)
        result[order] = out
        return result
