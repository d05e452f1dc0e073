"""Robust image I/O: every readable image becomes RGB uint8 (H, W, 3), or a clear error.

Handled: grayscale (L, 1-bit), 16-bit (I;16 and I), palette (P, with or without
transparency), RGBA/LA (alpha composited over white), CMYK and YCbCr JPEGs, and EXIF
orientation (the image is rotated upright, as a viewer shows it).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..fileio import atomic_path

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class ImageLoadError(OSError):
    """An image file that cannot be read; the message names the file and what to do."""


class ImageTooLargeError(ImageLoadError):
    """An image with more pixels than the decompression-bomb limit (see :func:`max_image_pixels`)."""


def max_image_pixels() -> int:
    """The most pixels an image may have: ``SRLIB_MAX_IMAGE_PIXELS`` when set, else the size at
    which PIL refuses to open a file as a decompression bomb (2 x ``PIL.Image.MAX_IMAGE_PIXELS``,
    about 179 Mpixel)."""
    env = os.environ.get("SRLIB_MAX_IMAGE_PIXELS")
    if env:
        try:
            return int(env)
        except ValueError:
            raise ValueError(f"SRLIB_MAX_IMAGE_PIXELS must be an integer, got {env!r}") from None
    return 2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS else 2**62


def _too_large(path: Path, w: int, h: int, limit: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"image {path} is too large: {w}x{h} = {w * h / 1e6:.1f} Mpixel, above the limit of "
        f"{limit / 1e6:.1f} Mpixel that guards against decompression bombs. If you trust the file, "
        f"raise the limit (--max-pixels {w * h}, or SRLIB_MAX_IMAGE_PIXELS); it is decoded whole "
        f"({w * h * 3 / 2**30:.1f} GiB as RGB uint8), so also pass --tile N to bound the model's "
        "memory, or cut the image into parts first")


def _open(path: Path, limit: int) -> Image.Image:
    """``Image.open`` with srlib's pixel limit in place of PIL's (which it may raise, never lower)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError:
        pil_limit = 2 * Image.MAX_IMAGE_PIXELS
        if limit <= pil_limit:
            raise ImageTooLargeError(f"image {path} has more than {pil_limit / 1e6:.1f} Mpixel, "
                                     f"above the limit of {limit / 1e6:.1f} Mpixel that guards against "
                                     "decompression bombs. If you trust the file, raise the limit "
                                     "(--max-pixels N, or SRLIB_MAX_IMAGE_PIXELS) and pass --tile N to "
                                     "bound the model's memory, or cut the image into parts first") from None
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            im = Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    w, h = im.size
    if w * h > limit:
        im.close()
        raise _too_large(path, w, h, limit)
    return im


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


def load_image(path: str | os.PathLike, return_mode: bool = False, max_pixels: int | None = None):
    """Read ``path`` as RGB uint8 (H, W, 3).

    With ``return_mode=True`` also return the file's PIL mode (e.g. ``'L'`` for a gray
    image), which the evaluation uses for its gray-image rule. An image with more than
    ``max_pixels`` pixels (default :func:`max_image_pixels`) raises :class:`ImageTooLargeError`
    before it is decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"image file {path} does not exist")
    limit = int(max_pixels) if max_pixels else max_image_pixels()
    try:
        with _open(path, limit) as im:
            mode = im.mode
            im.load()
            im = ImageOps.exif_transpose(im)
            rgb = np.array(_to_rgb(im), dtype=np.uint8)
    except ImageLoadError:
        raise
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
