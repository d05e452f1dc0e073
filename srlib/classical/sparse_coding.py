"""Sparse-coding SR (ScSR): Yang, Wright, Huang & Ma, "Image super-resolution as sparse
representation of raw image patches" (CVPR 2008) and "... via sparse representation" (TIP 2010)
-- the "SC" baseline of seed 002 (Section 2).

The reading chosen (the seed lost its equations; this follows TIP 2010 Sec. II-III and the
authors' released ScSR code):

1. Training pairs (:func:`srlib.classical.patches.training_pairs`, T91 = Yang et al.'s 91 images):
   LR features are the 4 gradient maps of the bicubic-enlarged Y over a patch; the HR side is
   the HR patch minus its mean. Flat patches (HR variance < 10) are pruned.
2. Joint dictionary (TIP Eq. 24): each side is normalised to unit length, the two are stacked
   as ``[sqrt(N) x_h; sqrt(M) x_l]`` (N, M the two dimensions), each column normalised again, and
   one dictionary is learned on the stack with scikit-learn's ``MiniBatchDictionaryLearning``;
   its rows split into ``D_h`` and ``D_l``, each atom renormalised. The released code's
   feature-sign solvers minimise ``0.5 ||x - D z||^2 + lambda ||z||_1``, which is scikit-learn's
   objective with ``alpha = lambda``; lambda = 0.15 for learning and 0.2 for coding, as released.
3. Each test patch's feature y is divided by its norm when that exceeds 1; its code solves
   ``min_a 0.5 ||D_l a - y||^2 + lambda ||a||_1`` (the Lasso; Yang et al. use feature-sign search,
   we use FISTA, batched over all patches in torch, checked against scikit-learn's Lasso in the
   tests). The HR patch is ``D_h a`` rescaled to 1.2 times the norm of the mean-removed bicubic
   patch (the released code's ``lin_scale``) plus that patch's mean; overlaps are averaged.
4. Global reconstruction constraint (TIP Eq. 15-16): 20 iterations of back-projection,
   ``X <- X + p * up(Y - down(X))`` with MATLAB bicubic resizing and ``p`` the released code's
   5x5 Gaussian (sigma 1), squared and renormalised (``backprojection.m``; ``p`` applied as two
   1-D passes, the same kernel). ``bp_model="gaussian"`` swaps ``down`` for a Gaussian
   blur-and-decimate model, only to measure what the exact kernel is worth
   (:mod:`srlib.studies.scsr_gap`).

Where the time goes (cProfile, Urban100 x2, 163 200 patches, 1 thread): the FISTA iterations
(:func:`srlib.kernels.fista`) 74 %, the gradient and blur convolutions 6 %, back-projection 7 %;
5.1 s in all, against 22.3 s when the iterations were torch's dense ``addmm`` (66 %) and its
elementwise steps (29 %). The codes are sparse (110 of 256 atoms active after the first step, 9
after 50, 23 on average): the kernel multiplies only the nonzero ones, patch by patch, where a
sparse product in torch (``embedding_bag`` over the nonzeros, CSR) measured 1.0-1.2x.

Geometry: 3x3-LR-pixel patches (9x9 HR at x3, as TIP Sec. IV) with an overlap of 2 LR pixels.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from tqdm.auto import tqdm

from .. import kernels
from ..data.resize import imresize
from .learned import PatchUpscaler


def soft_threshold(x: torch.Tensor, t: float) -> torch.Tensor:
    """``sign(x) max(|x| - t, 0)``, computed as ``x - clamp(x, -t, t)`` (the same floats, two passes)."""
    return x - x.clamp(-t, t)


def fista_step(gram: torch.Tensor) -> float:
    """``1/L`` with L the largest eigenvalue of ``D^T D`` (computed once per dictionary)."""
    return 1.0 / torch.linalg.eigvalsh(gram.double())[-1].item()


def lasso_fista(dictionary: torch.Tensor, y: torch.Tensor, alpha: float, max_iter: int = 100,
                tol: float = 1e-6, step: float | None = None) -> torch.Tensor:
    """Codes (P, K) minimising ``0.5 ||D a - y||^2 + alpha ||a||_1`` for each row of y (P, d).

    FISTA (Beck & Teboulle 2009), batched over patches, with the Gram form ``D^T D`` and step
    ``1/L``, L its largest eigenvalue (pass ``step`` to reuse it); stops after ``max_iter`` or
    when no code moves more than ``tol``. A patch whose code stayed exactly the same for two
    iterations in a row (e.g. the zero code of a flat patch, whose ``|D^T y|`` never exceeds
    ``alpha``) is at a fixed point of the iteration (its momentum is zero) and stops there, so
    the codes are those of the plain iteration.

    On the CPU the iterations run in :func:`srlib.kernels.fista`, patch by patch, multiplying
    only the rows of ``I - D^T D / L`` where the code is nonzero (23 of 256 on average); the
    torch code (one dense ``addmm`` per iteration) stays for other devices and as the reference
    the tests hold the kernel to: the codes agree to float rounding (3e-6 on Urban100 x2's
    codes in float32). Accuracy against scikit-learn's Lasso and its effect on PSNR are measured
    in ``benchmarks/bench_classical.py``.
    """
    d = dictionary.to(y.dtype)
    gram, b = d.T @ d, y @ d
    step = fista_step(gram) if step is None else step
    update = torch.eye(gram.shape[0], dtype=y.dtype) - step * gram  # z -> z - step (z G - b)
    b = step * b
    if kernels.usable(b) and b.dtype in (torch.float32, torch.float64) and b.shape[0]:
        return _lasso_fista_kernel(b, update, alpha * step, max_iter, tol)
    return _lasso_fista_torch(b, update, alpha * step, max_iter, tol)


def momentum(iters: int) -> np.ndarray:
    """FISTA's extrapolation weights ``(t_i - 1) / t_{i+1}``, ``t_{i+1} = (1 + sqrt(1 + 4 t_i^2)) / 2``, t_0 = 1."""
    out, t = [], 1.0
    for _ in range(iters):
        t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
        out.append((t - 1) / t_next)
        t = t_next
    return np.array(out)


def _lasso_fista_kernel(b, update, thr, max_iter, tol):
    """:func:`lasso_fista` in :func:`srlib.kernels.fista`. Its stopping rule is over the whole
    batch (the first iteration where no code moved ``tol``), known only once every patch ran
    all ``max_iter`` iterations; when it stops early, the patches run again to that iteration."""
    weights = momentum(max_iter)
    codes, moved = kernels.fista(b.numpy(), update.numpy(), thr, weights)
    below = np.flatnonzero(~(moved >= tol))
    if len(below) and below[0] < max_iter - 1:
        codes, _ = kernels.fista(b.numpy(), update.numpy(), thr, weights[:below[0] + 1])
    return torch.from_numpy(codes)


def _lasso_fista_torch(b, update, thr, max_iter, tol):
    """:func:`lasso_fista`'s iterations in torch: a dense ``addmm`` over the batch each time."""
    out = torch.zeros_like(b)
    active = torch.arange(b.shape[0])
    a = torch.zeros_like(b)
    z, still = a, torch.ones(b.shape[0], dtype=torch.bool)
    for weight in momentum(max_iter).tolist():
        a_next = soft_threshold(torch.addmm(b, z, update), thr)
        diff = a_next - a
        z = torch.add(a_next, diff, alpha=weight)
        moved = diff.abs().amax(dim=1)
        a = a_next
        if not bool((moved >= tol).any()):
            break
        fixed = (moved == 0) & ~still  # unchanged twice: z == a, and every later iterate is a
        still = moved > 0
        if bool(fixed.any()):
            keep = ~fixed
            out[active[fixed]] = a[fixed]
            active, a, z, b, still = active[keep], a[keep], z[keep], b[keep], still[keep]
    out[active] = a
    return out


def gaussian_5x5() -> torch.Tensor:
    """The released code's back-projection kernel: fspecial('gaussian', 5, 1), squared, normalised."""
    g = torch.exp(-torch.arange(-2, 3, dtype=torch.float64) ** 2 / 2)
    k = torch.outer(g, g)
    k = k / k.sum()
    k = k**2
    return (k / k.sum())[None, None]


def gaussian_5x5_1d() -> torch.Tensor:
    """The 1-D factor of :func:`gaussian_5x5` (that kernel is ``outer(g2, g2)``, g2 = g^2 / sum g^2)."""
    g2 = torch.exp(-torch.arange(-2, 3, dtype=torch.float64) ** 2)
    return g2 / g2.sum()


def blur_5x5(x: torch.Tensor) -> torch.Tensor:
    """``conv2(x, gaussian_5x5(), 'same')`` on (N, 1, H, W), as two 1-D passes of five shifted
    slices each (5 + 5 products a pixel instead of 25). Float64 convolutions take torch's slow
    generic path on the CPU: the slices give the same numbers as ``F.conv2d`` with the 1-D kernels
    (the tests hold them to 1e-14) at 1.8x its speed (13 ms against 23 on 768x1024, 1 thread)."""
    g = gaussian_5x5_1d().tolist()
    p = F.pad(x, (0, 0, 2, 2))
    y = g[0] * p[..., :-4, :] + g[1] * p[..., 1:-3, :] + g[2] * p[..., 2:-2, :] + g[3] * p[..., 3:-1, :] + g[4] * p[..., 4:, :]
    p = F.pad(y, (2, 2, 0, 0))
    return g[0] * p[..., :-4] + g[1] * p[..., 1:-3] + g[2] * p[..., 2:-2] + g[3] * p[..., 3:-1] + g[4] * p[..., 4:]


#: how back-projection models the degradation ``down(X)``; see :func:`back_projection`
BP_MODELS = ("bicubic", "gaussian")


def gaussian_down(x: torch.Tensor, scale: int, size) -> torch.Tensor:
    """A Gaussian stand-in for the bicubic degradation: :func:`blur_5x5`, then every ``scale``-th
    pixel from ``(scale - 1) // 2`` (the LR pixel centres for odd scales), cropped to ``size``."""
    o = (scale - 1) // 2
    return blur_5x5(x)[..., o::scale, o::scale][..., :size[0], :size[1]]


def back_projection(sr: torch.Tensor, lr: torch.Tensor, scale: int, iters: int = 20,
                    model: str = "bicubic") -> torch.Tensor:
    """Enforce ``down(SR) = LR`` (TIP Eq. 16) by iterative back-projection on (1, 1, H, W) Y:
    ``X <- X + p * up(LR - down(X))``, ``p`` the released code's 5x5 Gaussian, ``up`` MATLAB bicubic.

    ``model="bicubic"`` (default) is the released ``backprojection.m``: ``down`` is MATLAB
    ``imresize`` bicubic, i.e. exactly the degradation that made the benchmark's LR images.
    ``model="gaussian"`` replaces ``down`` by :func:`gaussian_down` (a blur-and-decimate model
    that is not the true degradation), to measure what the exact kernel is worth
    (:mod:`srlib.studies.scsr_gap`).
    """
    if model not in BP_MODELS:
        raise ValueError(f"back_projection: model={model!r}; choose one of {', '.join(BP_MODELS)}")
    for _ in range(iters):
        down = (imresize(sr, size=lr.shape[-2:]) if model == "bicubic"
                else gaussian_down(sr, scale, lr.shape[-2:]))
        sr = sr + blur_5x5(imresize(lr - down, size=sr.shape[-2:]))
    return sr


class SparseCoding(PatchUpscaler):
    """ScSR (Yang et al. 2008/2010) on Y; see the module docstring."""

    method = "sc"
    defaults = dict(pairs=40_000, atoms=256, epochs=1, lam_learn=0.15, lam=0.2, batch=256,
                    fit_algorithm="cd", fista_iters=50, contrast=1.2, bp_iters=20, bp_model="bicubic",
                    chunk=16_384)
    learn_keys = ("pairs", "atoms", "epochs", "lam_learn", "batch", "fit_algorithm")

    def learn(self, feats, hr, mid) -> dict:
        xh = hr - hr.mean(dim=1, keepdim=True)
        xh, xl = xh.double(), feats.double()
        keep = (xh.norm(dim=1) > 1e-6) & (xl.norm(dim=1) > 1e-6)
        xh, xl = xh[keep], xl[keep]
        n, m = xh.shape[1], xl.shape[1]
        x = torch.cat([n**0.5 * xh / xh.norm(dim=1, keepdim=True),
                       m**0.5 * xl / xl.norm(dim=1, keepdim=True)], dim=1)
        x = x / x.norm(dim=1, keepdim=True)
        atoms = torch.from_numpy(self._learn_dictionary(x.numpy())).T  # (n + m, K)
        dh, dl = atoms[:n], atoms[n:]
        return {"dh": (dh / dh.norm(dim=0).clamp(min=1e-12)).float(),
                "dl": (dl / dl.norm(dim=0).clamp(min=1e-12)).float()}

    def _learn_dictionary(self, x: np.ndarray) -> np.ndarray:
        """scikit-learn's online dictionary learning (Mairal et al. 2009) over ``epochs`` passes,
        one ``partial_fit`` per mini-batch (so a progress bar can follow), initialised with
        randomly drawn training columns; returns the (K, n + m) atoms."""
        from sklearn.decomposition import MiniBatchDictionaryLearning

        s, rng = self.settings, np.random.default_rng(self.seed)
        init = x[rng.choice(len(x), s["atoms"], replace=len(x) < s["atoms"])]
        learner = MiniBatchDictionaryLearning(
            n_components=s["atoms"], alpha=s["lam_learn"], batch_size=s["batch"],
            fit_algorithm=s["fit_algorithm"], dict_init=init, random_state=self.seed)
        batches = [(e, i) for e in range(s["epochs"]) for i in range(0, len(x), s["batch"])]
        order = None
        with warnings.catch_warnings():  # 'cd' warns on every batch it stops early on
            warnings.simplefilter("ignore", ConvergenceWarning)
            for _, i in tqdm(batches, desc=f"sc dictionary x{self.scale}", leave=False,
                             disable=not self.progress):
                if i == 0:
                    order = rng.permutation(len(x))
                learner.partial_fit(x[order[i:i + s["batch"]]])
        return learner.components_

    def _prepare(self) -> None:
        dl = self.arrays["dl"].float()
        self._step = fista_step(dl.T @ dl)

    def reconstruct(self, lr_y, mid):
        feats, mid_p, index = self.patches(mid)
        dh, dl, s = self.arrays["dh"], self.arrays["dl"], self.settings
        out = torch.empty(mid_p.shape, dtype=torch.float64)
        for i in range(0, feats.shape[0], s["chunk"]):
            f = feats[i:i + s["chunk"]].float()
            codes = lasso_fista(dl, f / f.norm(dim=1, keepdim=True).clamp(min=1), s["lam"], s["fista_iters"],
                                step=self._step)
            h = (codes @ dh.T).double()
            m = mid_p[i:i + f.shape[0]]
            mean = m.mean(dim=1, keepdim=True)
            target = s["contrast"] * (m - mean).norm(dim=1, keepdim=True)  # lin_scale
            hn = h.norm(dim=1, keepdim=True)
            out[i:i + f.shape[0]] = torch.where(hn > 0, h * target / hn.clamp(min=1e-12), h) + mean
        sr = self.assemble(out, index, mid)
        return back_projection(sr, lr_y, self.scale, s["bp_iters"], s["bp_model"])
