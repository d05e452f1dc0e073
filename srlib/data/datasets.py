"""Benchmark and training datasets.

- :class:`BenchmarkSet`: HR images mod-cropped to the scale, LR by MATLAB ``imresize`` (uint8),
  decoded once per process and cached.
- :class:`PatchDataset`: random paired patches (LR patch ``p``, HR patch ``p*s``) with the 8
  flips/rotations; sample ``i`` depends only on ``(seed, i)``, so any order a sampler draws is
  reproducible and a resumed run sees the same data.
- A catalogued benchmark is checked when loaded (:mod:`srlib.data.integrity`): a missing,
  changed or extra image is a :class:`~srlib.data.integrity.DatasetIntegrityError` naming it,
  or with ``allow_modified=True`` a warning recorded in the source label and ``problems``.
- When a benchmark is not on disk and cannot be downloaded, an embedded fallback built from the
  images shipped inside scikit-image stands in, and its ``source`` says so.
"""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from .catalog import (CATALOG, DatasetNotFoundError, canonical_name, display_name, download_dataset,
                      find_dataset, is_catalog_folder, missing_message, portable_path)
from .colour import modcrop, to_tensor
from .integrity import DatasetIntegrityError, check_benchmark, integrity_message
from .io import list_images, load_image
from .patches import PatchSelection, normalize_sampling
from .resize import imresize
from .transforms import dihedral

# scikit-image ships these in its wheel (no download). Test and train images are disjoint.
FALLBACK_TEST = ("astronaut", "camera", "chelsea", "coffee", "rocket")
FALLBACK_TRAIN = ("immunohistochemistry", "hubble_deep_field", "retina", "colorwheel", "brick",
                  "grass", "gravel", "coins", "moon", "clock", "page", "text")
FALLBACK_SOURCE = "scikit-image fallback (embedded images, not the named benchmark)"


@dataclass
class HRImage:
    name: str
    hr: np.ndarray  # uint8 (H, W, 3)
    gray: bool  # the file was single-channel (see the gray-image rule in srlib.metrics)
    key: tuple | None = None  # (path, mtime) of the file, for the LR cache


_GRAY_MODES = ("L", "1", "I", "I;16", "I;16B", "I;16L", "LA")


@lru_cache(maxsize=1024)
def _load_cached(path: str, mtime: float) -> tuple[np.ndarray, bool]:
    img, mode = load_image(path, return_mode=True)
    img.setflags(write=False)
    return img, mode in _GRAY_MODES


def _skimage_images(names) -> list[HRImage]:
    import skimage.data

    out = []
    for n in names:
        img = getattr(skimage.data, n)()
        gray = img.ndim == 2
        img = np.repeat(img[..., None], 3, axis=2) if gray else img[..., :3]
        out.append(HRImage(n, np.ascontiguousarray(img.astype(np.uint8)), gray))
    return out


def load_hr_images(name: str, root=None, download: bool = True, fallback: bool = True,
                   max_images: int | None = None, allow_modified: bool = False) -> tuple[list[HRImage], str]:
    """HR images of dataset ``name`` and a label of where they came from.

    Order of search: ``root`` / ``SRLIB_DATA_DIR`` / the download cache; then a download (if
    allowed); then, with ``fallback``, the scikit-image images (a warning says so).
    ``name='skimage'`` or ``'skimage-train'`` asks for the fallback sets directly. A catalogued
    benchmark must be complete and unchanged (:func:`srlib.data.integrity.check_benchmark`);
    ``allow_modified=True`` turns a problem into a warning and a note in the label.
    """
    images, source, _ = _load_hr(name, root, download, fallback, max_images, allow_modified)
    return images, source


def _load_hr(name: str, root, download: bool, fallback: bool, max_images: int | None,
             allow_modified: bool) -> tuple[list[HRImage], str, list[str]]:
    """:func:`load_hr_images` plus the integrity problems found (empty unless ``allow_modified``)."""
    if name.lower() in ("skimage", "skimage-train"):
        names = FALLBACK_TRAIN if name.lower() == "skimage-train" else FALLBACK_TEST
        return _skimage_images(names[:max_images]), FALLBACK_SOURCE, []
    hr_dir = find_dataset(name, root)
    if hr_dir is not None and not is_catalog_folder(hr_dir):
        return _read_folder(hr_dir, max_images), f"{name} ({hr_dir})", []
    if hr_dir is None and download:
        try:
            hr_dir = download_dataset(name, root)
        except (DatasetNotFoundError, OSError) as exc:
            if not fallback:
                raise DatasetNotFoundError(str(exc)) from exc
    if hr_dir is None:
        if not fallback:
            raise DatasetNotFoundError(missing_message(name))
        warnings.warn(f"{missing_message(name)} Using the {FALLBACK_SOURCE}.", stacklevel=3)
        names = FALLBACK_TRAIN if _is_train(name) else FALLBACK_TEST
        return _skimage_images(names[:max_images]), FALLBACK_SOURCE, []
    canon = canonical_name(name)
    problems = _verify(canon, hr_dir, max_images)
    source = f"{canon} ({portable_path(hr_dir)})"
    if canon in DIV2K_SPLITS:
        return _read_div2k(canon, hr_dir, max_images, source) + (problems,)
    if problems:
        if not allow_modified:
            raise DatasetIntegrityError(integrity_message(canon, hr_dir, problems))
        warnings.warn(f"benchmark {canon} in {hr_dir} is not the canonical set ({', '.join(problems)}); "
                      "evaluating it anyway (allow_modified): its numbers are not comparable to "
                      f"published {canon} numbers, and the result records this", stacklevel=3)
        source += " MODIFIED: " + ", ".join(problems)
    return _read_folder(hr_dir, max_images), source, problems


def _verify(name: str, hr_dir: Path, max_images: int | None) -> list[str]:
    """Integrity problems of a catalogued folder; the images about to be read are decoded
    through the process cache (no second decode), the others are read once and let go."""
    keep = {p.name for p in list_images(hr_dir)[:max_images]}

    def decode(p: Path):
        if p.name in keep:
            return _load_cached(str(p), p.stat().st_mtime)
        img, mode = load_image(p, return_mode=True)
        return img, mode in _GRAY_MODES

    return check_benchmark(name, hr_dir, decode)


# folders of at least this many images (DIV2K's 800 2K PNGs: ~0.1 s each) are decoded by a pool of
# threads (PIL releases the GIL while decoding); smaller ones (every benchmark) one by one
PARALLEL_DECODE_MIN = 200


def _read_folder(hr_dir: Path, max_images: int | None, paths=None) -> list[HRImage]:
    paths = (list_images(hr_dir) if paths is None else paths)[:max_images]
    keys = [(str(p), p.stat().st_mtime) for p in paths]
    if len(keys) >= PARALLEL_DECODE_MIN and (os.cpu_count() or 1) > 2:
        with ThreadPoolExecutor(min(8, os.cpu_count())) as pool:
            decoded = list(pool.map(lambda k: _load_cached(*k), keys))
    else:
        decoded = [_load_cached(*k) for k in keys]
    return [HRImage(p.stem, img, gray, key) for p, key, (img, gray) in zip(paths, keys, decoded)]


# DIV2K's official split by file number: 0001-0800 train, 0801-0900 validation (0901-1000: the
# withheld test set). A folder holding more than its split (all of 0001-0900 in one DIV2K/HR) is
# read as its split only, so validation images never become training patches.
DIV2K_SPLITS = {"DIV2K": (1, 800), "DIV2K_valid": (801, 900)}


def _read_div2k(name: str, hr_dir: Path, max_images: int | None, source: str) -> tuple[list[HRImage], str]:
    """The images of ``hr_dir`` in DIV2K split ``name`` (numbered stems in its range), and the label."""
    lo, hi = DIV2K_SPLITS[name]
    paths = list_images(hr_dir)
    keep = [p for p in paths if p.stem.isdigit() and lo <= int(p.stem) <= hi]
    if not keep:
        raise DatasetNotFoundError(
            f"{hr_dir} holds no {name} image (files {lo:04d}.png to {hi:04d}.png); {missing_message(name)}")
    if len(keep) < len(paths):
        source += f", {len(paths) - len(keep)} files outside {lo:04d}-{hi:04d} left out"
    return _read_folder(hr_dir, max_images, keep), source


def _catalog_names() -> set:
    return set(CATALOG)


def _is_train(name: str) -> bool:
    try:
        return CATALOG[canonical_name(name)].role == "train"
    except KeyError:
        return False


@dataclass
class BenchmarkItem:
    name: str
    hr: np.ndarray  # uint8, mod-cropped to the scale
    lr: np.ndarray  # uint8, imresize(hr, 1/scale)
    gray: bool


class BenchmarkSet:
    """A benchmark at one scale: ``for item in BenchmarkSet('Set5', 4)`` yields BenchmarkItems."""

    def __init__(self, name: str, scale: int, root=None, download: bool = True,
                 fallback: bool = True, max_images: int | None = None, allow_modified: bool = False):
        if int(scale) != scale or scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale!r}")
        self.scale = int(scale)
        images, self.source, self.problems = _load_hr(name, root, download, fallback, max_images,
                                                       allow_modified)
        self.name = "skimage" if self.source == FALLBACK_SOURCE else display_name(name)
        self.is_fallback = self.source == FALLBACK_SOURCE
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> BenchmarkItem:
        im = self.images[i]
        hr, lr = _pair(im, self.scale)
        return BenchmarkItem(im.name, hr, lr, im.gray)

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def benchmark_item(dataset: str, name: str, scale: int) -> BenchmarkItem:
    """Image ``name`` (file stem) of ``dataset`` at ``scale``; the set's first image where it has no
    such image (e.g. the scikit-image fallback). Only the images up to it are decoded, and only
    its LR is computed."""
    try:
        hr_dir = find_dataset(dataset)
    except (KeyError, DatasetNotFoundError):
        hr_dir = None
    stems = [p.stem for p in list_images(hr_dir)] if hr_dir is not None else []
    items = BenchmarkSet(dataset, scale, max_images=stems.index(name) + 1 if name in stems else 1)
    return items[next((i for i, im in enumerate(items.images) if im.name == name), 0)]


@lru_cache(maxsize=1024)
def _lr_from_file(key: tuple, scale: int) -> np.ndarray:
    hr, _ = _load_cached(*key)
    lr = imresize(np.ascontiguousarray(modcrop(hr, scale)), 1 / scale)
    lr.setflags(write=False)
    return lr


def _pair(im, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(HR mod-cropped, LR) of an HRImage or a uint8 array; LR of files is cached."""
    hr_full = im.hr if isinstance(im, HRImage) else im
    hr = np.ascontiguousarray(modcrop(hr_full, scale))
    if isinstance(im, HRImage) and im.key is not None:
        return hr, _lr_from_file(im.key, scale)
    return hr, imresize(hr, 1 / scale)


class PatchDataset(Dataset):
    """Random paired patches for training.

    Args:
        images: HR images (uint8 HWC) or HRImage records.
        scale: upscaling factor; LR is ``imresize(modcrop(hr), 1/scale)`` of the whole image,
            computed once, and patches are cut at aligned positions.
        lr_patch: LR patch size (the HR patch is ``lr_patch * scale``).
        length: number of samples per epoch (the index space of the sampler).
        seed: sample ``i`` is drawn from ``numpy.random.default_rng((seed, i))``.
        augment: apply one of the 8 flips/rotations, chosen at random per sample.
        sampling: where patches come from: None / ``'uniform'`` (an image, then a position,
            uniformly) or FASS (``'fass'`` or a dict, :mod:`srlib.data.patches`).
    """

    def __init__(self, images, scale: int, lr_patch: int = 48, length: int = 16000,
                 seed: int = 0, augment: bool = True, sampling=None):
        self.scale, self.lr_patch, self.length = int(scale), int(lr_patch), int(length)
        self.seed, self.augment = int(seed), augment
        self._all_pairs = [_pair(im, self.scale) for im in images]
        self.sampling, self.selection, self._score_maps = normalize_sampling(sampling), None, {}
        self.set_lr_patch(lr_patch)

    def set_lr_patch(self, lr_patch: int) -> None:
        """Switch the LR patch size (training phases): sample ``i`` is a function of
        ``(seed, i, lr_patch)``; images smaller than the patch are left out, as at construction."""
        pairs = [(h, l) for h, l in self._all_pairs if min(l.shape[:2]) >= int(lr_patch)]
        if not pairs:
            raise ValueError(f"no image is large enough for {lr_patch}px LR patches at x{self.scale}")
        self.lr_patch, self.pairs = int(lr_patch), pairs
        self.set_sampling(self.sampling)

    def set_sampling(self, sampling) -> None:
        """Switch the patch sampling (``TrainConfig.sampling``); FASS builds its table
        (:class:`~srlib.data.patches.PatchSelection`) for the current patch size."""
        self.sampling = normalize_sampling(sampling)
        fass = self.sampling is not None and self.sampling["rule"] != "uniform"
        self.selection = (PatchSelection(self.pairs, self.lr_patch, self.scale, self.sampling, self._score_maps)
                          if fass else None)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        rng = np.random.default_rng((self.seed, int(i)))
        p, s = self.lr_patch, self.scale
        if self.selection is not None:
            k, y, x = self.selection.draw(rng)
            hr, lr = self.pairs[k]
        else:
            hr, lr = self.pairs[rng.integers(len(self.pairs))]
            y = rng.integers(lr.shape[0] - p + 1)
            x = rng.integers(lr.shape[1] - p + 1)
        lr_p = to_tensor(lr[y : y + p, x : x + p], batch=False)
        hr_p = to_tensor(hr[y * s : (y + p) * s, x * s : (x + p) * s], batch=False)
        if self.augment:
            k = int(rng.integers(8))
            lr_p, hr_p = dihedral(lr_p, k).contiguous(), dihedral(hr_p, k).contiguous()
        return lr_p, hr_p


def dataset_sizes(images: list[HRImage]) -> dict:
    """Counts and size statistics of a list of HR images (for notebook 01)."""
    hs = np.array([im.hr.shape[0] for im in images])
    ws = np.array([im.hr.shape[1] for im in images])
    return {"images": len(images), "min_hw": f"{hs.min()}x{ws.min()}", "max_hw": f"{hs.max()}x{ws.max()}",
            "mean_megapixels": float((hs * ws).mean() / 1e6), "gray_files": int(sum(im.gray for im in images))}


def modcrop_loss(images: list[HRImage], scale: int) -> dict:
    """How many pixels the mod-``scale`` crop removes from ``images`` (rows, columns, share)."""
    rows = sum(im.hr.shape[0] % scale for im in images)
    cols = sum(im.hr.shape[1] % scale for im in images)
    total = sum(im.hr.shape[0] * im.hr.shape[1] for im in images)
    kept = sum((im.hr.shape[0] - im.hr.shape[0] % scale) * (im.hr.shape[1] - im.hr.shape[1] % scale)
               for im in images)
    return {"scale": scale, "images cropped": sum(bool(im.hr.shape[0] % scale or im.hr.shape[1] % scale)
                                                   for im in images),
            "rows removed": rows, "columns removed": cols, "pixels removed (%)": 100 * (1 - kept / total)}
