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
2. For each test patch, the K nearest training features (Euclidean, exact, scikit-learn
   ``NearestNeighbors``: with more than 15 dimensions it searches by brute force, in chunked
   matrix products, on float64 arrays) -- the dictionary is the set of training pairs itself, as
   in Chang et al. The search is ~95 % of the method's time (cProfile, Urban100 x2, 163 200
   queries against the 50 000-pair ``quick`` pool in 34 PCA dimensions). Measured against it on
   those queries (1 thread, same run): a torch ``addmm`` + ``topk`` or threshold search 0.8-1.3x,
   faiss ``IndexFlatL2`` 1.6x, k-d tree 0.17x, ball tree 0.03x; the best exact pruning we found
   (k-means cells with ball and bisector bounds) must still visit 30-40 % of the pool, and an
   inverted-file search that visits 19 % finds the exact 5 neighbours for only 99 % of patches.
   Every exact search here is bound by the 8e9 distance pairs an image needs; see
   ``benchmarks/bench_classical_speed.py``.
3. Locally-linear-embedding weights (Roweis & Saul 2000; Chang et al. Eq. 2-4): minimise
   ``||x - sum_k w_k n_k||^2`` subject to ``sum_k w_k = 1``: solve ``G w = 1`` with the local Gram
   ``G = (x - N)(x - N)^T`` regularised by ``1e-3 trace(G)`` (scikit-learn's LLE choice), then
   normalise. Batched over all patches with ``torch.linalg.solve``.
4. The HR patch is ``sum_k w_k h_k`` plus the bicubic patch; overlaps are averaged.

K = 5 follows Chang et al.; the pool size per profile is in ``srlib.classical.learned.SETTINGS``.
"""
from __future__ import annotations

import numpy as np
import torch

from .learned import PatchUpscaler


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
    defaults = dict(pairs=50_000, k=5, energy=0.999, chunk=20_000)
    learn_keys = ("pairs", "energy")

    def learn(self, feats, hr, mid) -> dict:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=self.settings["energy"], svd_solver="full", random_state=self.seed)
        low = pca.fit_transform(feats.double().numpy())
        return {"pca_mean": torch.from_numpy(pca.mean_), "pca_components": torch.from_numpy(pca.components_),
                "low": torch.from_numpy(low).float(), "high": (hr - mid).float()}

    def _prepare(self) -> None:
        from sklearn.neighbors import NearestNeighbors

        # float64 arrays: scikit-learn's float32 search upcasts each chunk to float64 anyway; handing
        # it float64 skips those copies (the same neighbours, ~15 % less search time, measured)
        self._nn = NearestNeighbors(n_neighbors=self.settings["k"]).fit(self.arrays["low"].double().numpy())

    def project(self, feats: torch.Tensor) -> torch.Tensor:
        a = self.arrays
        return ((feats.double() - a["pca_mean"]) @ a["pca_components"].T).float()

    def reconstruct(self, lr_y, mid):
        feats, mid_p, index = self.patches(mid)
        low, high, k = self.arrays["low"], self.arrays["high"], self.settings["k"]
        out = torch.empty_like(mid_p, dtype=torch.float32)
        for i in range(0, feats.shape[0], self.settings["chunk"]):
            q = self.project(feats[i:i + self.settings["chunk"]])
            idx = torch.from_numpy(self._nn.kneighbors(q.double().numpy(), k, return_distance=False).astype(np.int64))
            w = lle_weights(q.double(), low[idx].double())
            out[i:i + q.shape[0]] = (w[:, :, None] * high[idx].double()).sum(1).float()
        return self.assemble(out.double() + mid_p, index, mid)
