"""Classical upscalers: INTER (nearest / bilinear / bicubic), neighbour embedding, sparse coding."""
from .inter import Bicubic, Bilinear, Interpolation, Nearest

# name -> (module, class); built with cls(scale=scale)
CLASSICAL = {
    "nearest": ("srlib.classical.inter", "Nearest"),
    "bilinear": ("srlib.classical.inter", "Bilinear"),
    "bicubic": ("srlib.classical.inter", "Bicubic"),
}

__all__ = ["Bicubic", "Bilinear", "CLASSICAL", "Interpolation", "Nearest"]
