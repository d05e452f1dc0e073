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

__all__ = ["Bicubic", "Bilinear", "CLASSICAL", "Interpolation", "LEARNED", "Nearest"]
