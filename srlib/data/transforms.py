"""Geometric transforms shared by training augmentation and inference.

:func:`dihedral` is the one implementation of the 8 flips/rotations of the square (the dihedral
group D4) in srlib: :class:`srlib.data.datasets.PatchDataset` draws one per training patch (the
flip and 90-degree rotation augmentation of Lim et al. 2017, EDSR) and
:func:`srlib.inference.self_ensemble` runs the model on all 8 and maps each output back with
``inverse=True`` (EDSR's geometric self-ensemble, "x8").
"""
from __future__ import annotations

import torch


def dihedral(x: torch.Tensor, k: int, inverse: bool = False) -> torch.Tensor:
    """The ``k``-th (0..7) flip/rotation of ``x`` over its last two dimensions (H, W).

    ``k % 4`` quarter turns by :func:`torch.rot90` (from H towards W), then, for ``k >= 4``, a
    flip of W; ``k = 0`` is the identity. ``inverse=True`` undoes transform ``k``, so
    ``dihedral(dihedral(x, k), k, inverse=True)`` equals ``x``. The result may be a
    non-contiguous view-like tensor; call ``.contiguous()`` where the layout matters.
    """
    if not 0 <= int(k) < 8:
        raise ValueError(f"dihedral: k must be in 0..7, got {k!r}")
    if inverse:
        x = x.flip(-1) if k >= 4 else x
        return torch.rot90(x, -(k % 4), dims=(-2, -1))
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x
