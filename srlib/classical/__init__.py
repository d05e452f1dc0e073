"""Classical upscalers: INTER (nearest / bilinear / bicubic), neighbour embedding, sparse coding.

All are ``nn.Module``s with the model contract, built by name with ``cls(scale=scale)``; the
learned ones (``ne``, ``sc``) also take ``profile=`` (which sets their training budget and where
their dictionary is cached, see :mod:`srlib.classical.learned`).
"""
from .inter import Bicubic, Bilinear, Interpolation, Nearest

# name -> (module, class)
CLASSICAL = {
    "nearest": ("srlib.classical.inter", "Nearest"),
    "bilinear": ("srlib.classical.inter", "Bilinear"),
    "bicubic": ("srlib.classical.inter", "Bicubic"),
    "ne": ("srlib.classical.neighbor_embedding", "NeighborEmbedding"),
    "sc": ("srlib.classical.sparse_coding", "SparseCoding"),
}
LEARNED = ("ne", "sc")  # learn a dictionary on first use; take ``profile=``
DESCRIPTIONS = {
    "nearest": "INTER nearest neighbour (MATLAB imresize kernel)",
    "bilinear": "INTER bilinear (MATLAB imresize kernel)",
    "bicubic": "INTER bicubic (MATLAB imresize, the protocol's resampler)",
    "ne": "neighbour embedding NE+LLE (Chang et al. 2004), dictionary learned per profile",
    "sc": "sparse coding ScSR (Yang et al. 2010), dictionary learned per profile",
}

__all__ = ["Bicubic", "Bilinear", "CLASSICAL", "DESCRIPTIONS", "Interpolation", "LEARNED", "Nearest"]
