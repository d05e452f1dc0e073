"""Neighbour embedding (NE+LLE): Chang, Yeung & Xiong, "Super-resolution through neighbor
embedding", CVPR 2004 -- the "ML" (manifold learning) baseline of seed 002 (Section 2).

The reading chosen (the seed lost its equations; this follows Chang et al. and the NE+LLE
re-implementation of Timofte et al., ICCV 2013, whose numbers the project compares against):

1. Training pairs (:func:`srlib.classical.patches.training_pairs`): LR features are the first- and
   second-order gradients of the bicubic-enlarged Y, over 3x3-LR-pixel patches (Chang et al.
   Sec. 3.2); the HR side is the patch's high frequencies, HR minus bicubic (Timofte et al.'s
   residual form; Chang et al. add back the LR patch mean, which the residual does per pixel).
   The features are reduced by PCA keeping 99.9 % of their energy (Zeyde et al. 2010,
   as Timofte et al. do), fitted with scikit-learn.
2. For each test patch, the K nearest training features (Euclidean, exact): the dictionary is
   the set of training pairs itself, as in Chang et al. The search was ~95 % of the method's time
   with scikit-learn's brute force (cProfile, Urban100 x2, 163 200 queries against the 50 000-pair
   ``quick`` pool in 34 PCA dimensions), and ~92 % with faiss's exact ``IndexFlatL2``: every brute
   force pays for the 8e9 distances of such an image. The default search
   (:class:`srlib.classical.knn.BlockSearch`, ``search="blocks"``) skips most of them with a
   lower bound from the leading PCA coordinates, and returns the brute force's neighbours (float64
   distances, ties to the lower index). All of an image's queries go to it at once (it groups
   alike ones). The whole method on two Urban100 images at x2 took 6.8 s/MP on 1 thread and 4.5
   on 2 (``benchmarks/bench_classical_speed.py``), against 24.6 and 22.1 with faiss (earlier runs).
   ``search="faiss"`` and ``search="sklearn"`` keep those searches (the tests check all three
   agree); without numba (``SRLIB_NO_NUMBA=1``) faiss stands in. Earlier attempts, against
   scikit-learn on the same queries (1 thread): a torch ``addmm`` + ``topk`` 0.8-1.3x, k-d tree
   0.17x, ball tree 0.03x; k-means cells with ball and bisector bounds in all 34 dimensions must
   still visit 30-40 % of the pool; see ``benchmarks/bench_classical_speed.py``.
3. Locally-linear-embedding weights (Roweis & Saul 2000; Chang et al. Eq. 2-4): minimise
   ``||x - sum_k w_k n_k||^2`` subject to ``sum_k w_k = 1``: solve ``G w = 1`` with the local Gram
   ``G = (x - N)(x - N)^T`` regularised by ``1e-3 trace(G)`` (scikit-learn's LLE choice), then
   normalise. :func:`srlib.kernels.lle_combine` does this and step 4's weighted sum in one numba
   pass per patch (0.15 s for an Urban100 x2 image, against 0.9 s for the batched torch code,
   :func:`lle_weights`, which stays for ``SRLIB_NO_NUMBA=1`` and as the tests' reference).
4. The HR patch is ``sum_k w_k h_k`` plus the bicubic patch; overlaps are averaged.

K = 5 follows Chang et al.; the pool size per profile is in ``srlib.classical.learned.SETTINGS``.
"""
from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import torch

from .. import kernels
from .knn import BlockSearch
from .learned import PatchUpscaler

PROJECT_ROWS = 2048  # feature rows projected at a time


def import_faiss():
    """faiss, with its own OpenMP pool (the wheel bundles a libgomp beside torch's) set to sleep
    rather than spin between searches, unless ``OMP_WAIT_POLICY`` is set. Two spinning pools on two
    cores steal each other's time: with ``OMP_NUM_THREADS=2`` exported, NE on six Set14 images at
    x2 took 29.9 s with faiss spinning, 14.9 s with it passive (scikit-learn: 26.9 s; one run each)."""
    if "faiss" in sys.modules:
        return sys.modules["faiss"]
    ours = "OMP_WAIT_POLICY" not in os.environ
    if ours:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read once, when faiss's libgomp loads
    try:
        import faiss
    except ImportError as e:
        raise ImportError("NeighborEmbedding: search='faiss' needs faiss (pip install faiss-cpu); "
                          "search='sklearn' uses scikit-learn instead (1.7x slower)") from e
    finally:
        if ours:
            os.environ.pop("OMP_WAIT_POLICY", None)
    return faiss


def lle_weights(x: torch.Tensor, neighbours: torch.Tensor, reg: float = 1e-3) -> torch.Tensor:
    """Weights (P, K) summing to 1 that best rebuild each x (P, d) from its neighbours (P, K, d)."""
    diff = x[:, None, :] - neighbours
    gram = diff @ diff.transpose(1, 2)
    k = gram.shape[-1]
    trace = gram.diagonal(dim1=1, dim2=2).sum(-1)
    ridge = torch.where(trace > 0, reg * trace, torch.full_like(trace, reg))
    gram = gram + ridge[:, None, None] * torch.eye(k, dtype=gram.dtype)
    w = torch.linalg.solve(gram, torch.ones(gram.shape[:2], dtype=gram.dtype))
    return w / w.sum(dim=1, keepdim=True)


class NeighborEmbedding(PatchUpscaler):
    """NE+LLE super-resolution (Chang et al. 2004) on Y; see the module docstring."""

    method = "ne"
    defaults = dict(pairs=50_000, k=5, energy=0.999, chunk=20_000, search="blocks")
    learn_keys = ("pairs", "energy")

    def learn(self, feats, hr, mid) -> dict:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=self.settings["energy"], svd_solver="full", random_state=self.seed)
        low = pca.fit_transform(feats.double().numpy())
        return {"pca_mean": torch.from_numpy(pca.mean_), "pca_components": torch.from_numpy(pca.components_),
                "low": torch.from_numpy(low).float(), "high": (hr - mid).float()}

    def _prepare(self) -> None:
        low = self.arrays["low"]
        search = self.settings["search"]
        if search == "blocks" and not kernels.ENABLED:  # numba off (SRLIB_NO_NUMBA=1): the next exact search
            search = "faiss" if importlib.util.find_spec("faiss") else "sklearn"
        self._search = search
        if search == "blocks":
            self._index = BlockSearch(low.numpy())
        elif search == "faiss":
            self._index = import_faiss().IndexFlatL2(low.shape[1])
            self._index.add(np.ascontiguousarray(low.numpy(), dtype=np.float32))
        elif search == "sklearn":
            from sklearn.neighbors import NearestNeighbors

            # float64 arrays: scikit-learn's float32 search upcasts each chunk to float64 anyway;
            # handing it float64 skips those copies (the same neighbours, ~15 % less time, measured)
            self._index = NearestNeighbors(n_neighbors=self.settings["k"]).fit(low.double().numpy())
        else:
            raise ValueError(f"NeighborEmbedding: search={search!r}; choose 'blocks', 'faiss' or 'sklearn'")

    def neighbours(self, q: torch.Tensor) -> torch.Tensor:
        """Indices (P, K) of the K nearest pool features of each query row (exact, Euclidean)."""
        k = self.settings["k"]
        if self._search == "blocks":
            return torch.from_numpy(self._index.search(q.numpy(), k))
        if self._search == "sklearn":
            idx = self._index.kneighbors(q.double().numpy(), k, return_distance=False)
        else:
            import_faiss().omp_set_num_threads(torch.get_num_threads())  # one thread per job under --jobs
            _, idx = self._index.search(np.ascontiguousarray(q.numpy(), dtype=np.float32), k)
        return torch.from_numpy(idx.astype(np.int64))

    def project(self, feats: torch.Tensor) -> torch.Tensor:
        """PCA coordinates (float32) of feature rows, projected in float64 PROJECT_ROWS rows at a time
        (their temporaries stay in cache: 3x faster than 20 000 rows at a time, the same bits)."""
        a = self.arrays
        return torch.cat([((feats[i:i + PROJECT_ROWS].double() - a["pca_mean"]) @ a["pca_components"].T).float()
                          for i in range(0, feats.shape[0], PROJECT_ROWS)])

    def combine(self, q: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """The HR residual patches (P, p^2), float32: each query's LLE weights over its neighbours'
        features, applied to their HR residuals (step 3 and 4 of the module docstring)."""
        low, high = self.arrays["low"], self.arrays["high"]
        if kernels.ENABLED:  # one pass, no (P, K, D) temporaries: ~6-10x the torch code, same numbers
            return torch.from_numpy(kernels.lle_combine(q.numpy(), low.numpy(), high.numpy(), idx.numpy()))
        chunk, out = self.settings["chunk"], torch.empty(q.shape[0], high.shape[1])
        for i in range(0, q.shape[0], chunk):
            qi, ii = q[i:i + chunk], idx[i:i + chunk]
            w = lle_weights(qi.double(), low[ii].double())
            out[i:i + qi.shape[0]] = (w[:, :, None] * high[ii].double()).sum(1).float()
        return out

    def reconstruct(self, lr_y, mid):
        feats, mid_p, index = self.patches(mid)
        q = self.project(feats)
        idx = self.neighbours(q)  # all at once: the search orders alike queries together
        return self.assemble(self.combine(q, idx).double() + mid_p, index, mid)
