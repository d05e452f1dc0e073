"""Robust image I/O: every readable image becomes RGB uint8 (H, W, 3), or a clear error.

Handled: grayscale (L, 1-bit), 16-bit (I;16 and I), palette (P, with or without
transparency), RGBA/LA (alpha composited over white), CMYK and YCbCr JPEGs, and EXIF
orientation (the image is rotated upright, as a viewer shows it).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..fileio import atomic_path

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class ImageLoadError(OSError):
    """An image file that cannot be read; the message names the file and what to do."""


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if arr.max() > 255 or im.mode.startswith("I;16") else 255.0
        arr = np.clip(np.round(arr / peak * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA"):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, im).convert("RGB")
    return im.convert("RGB") if im.mode != "RGB" else im


def load_image(path: str | os.PathLike, return_mode: bool = False):
    """Read ``path`` as RGB uint8 (H, W, 3).

    With ``return_mode=True`` also return the file's PIL mode (e.g. ``'L'`` for a gray
    image), which the evaluation uses for its gray-image rule.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"image file {path} does not exist")
    try:
        with Image.open(path) as im:
            mode = im.mode
            im.load()
            im = ImageOps.exif_transpose(im)
            rgb = np.array(_to_rgb(im), dtype=np.uint8)
    except UnidentifiedImageError as exc:
        raise ImageLoadError(f"{path} is not an image file PIL can read ({exc}); "
                             "remove it from the folder or convert it to PNG") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageLoadError(f"cannot read image {path}: {exc} (is the file truncated or "
                             "corrupt? re-download or re-export it)") from exc
    return (rgb, mode) if return_mode else rgb


def save_image(img: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a uint8 (H, W[, 3]) image atomically (temporary file, then rename)."""
    path = Path(path)
    if img.dtype != np.uint8:
        raise TypeError(f"save_image: expected uint8, got {img.dtype} (clamp and round first)")
    with atomic_path(path, keep_suffix=True) as tmp:
        Image.fromarray(img).save(tmp)
    return path


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
