"""Benchmark integrity: every image of a catalogued benchmark is there and decodes to the
canonical pixels, checked when the benchmark is loaded.

A Set5 folder missing ``woman.png`` would otherwise be scored as "Set5" on four images, and a
``bird.png`` replaced by a resized copy would change the mean without a word. The reference is
``checksums/<Name>.pixels.sha256``: one SHA-256 per image of its *decoded* uint8 pixels (as
:func:`srlib.data.io.load_image` returns them, with the shape and the gray flag the evaluation
uses), so a re-encoded but pixel-identical PNG passes while any changed pixel does not. Those
lists were derived from the files whose byte hashes ship in ``checksums/<Name>.sha256`` (the
downloads' checksums) with :func:`write_pixel_sums`, after checking the files against them.

The verdict is cached per folder, keyed by the folder's listing of (name, size, ``st_mtime_ns``)
and the reference list, in ``integrity.json`` under the writable cache
(:func:`srlib.data.fingerprint.cache_dir`), never in the data folder, which may be read-only:
a second load of an unchanged folder costs one ``stat`` per file. Datasets without a pixel list
(your own folders, T91, DIV2K) are not checked.
"""
from __future__ import annotations

import hashlib
import json
import threading
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np

from ..fileio import atomic_write_text, write_json
from .catalog import cache_root
from .io import list_images

FORMAT = 1  # bump when what is hashed changes
_LOCK = threading.Lock()
_MEMO: dict = {}


class DatasetIntegrityError(ValueError):
    """A catalogued benchmark folder with missing, changed or extra images; the message names them."""


def pixel_sha256(img: np.ndarray, gray: bool) -> str:
    """SHA-256 over an image's shape, gray flag and decoded uint8 pixels (C order)."""
    img = np.ascontiguousarray(img, dtype=np.uint8)
    h = hashlib.sha256(f"{'x'.join(map(str, img.shape))}\t{int(bool(gray))}\n".encode())
    h.update(img.tobytes())
    return h.hexdigest()


def expected_pixels(name: str) -> dict[str, str] | None:
    """``{file name: pixel SHA-256}`` shipped for benchmark ``name``, or None when there is none."""
    ref = resources.files("srlib.data").joinpath(f"checksums/{name}.pixels.sha256")
    if not ref.is_file():
        return None
    rows = [line.split() for line in ref.read_text().splitlines() if line.strip()]
    return {fname: sha for sha, fname in rows}


def _cache_file() -> Path:
    return cache_root() / "integrity.json"


def _key(files: list[Path], expected: dict) -> str:
    h = hashlib.sha256(f"{FORMAT}\n".encode())
    h.update(json.dumps(sorted(expected.items())).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _cached(folder: str, key: str) -> list[str] | None:
    with _LOCK:
        hit = _MEMO.get(folder)
        if hit is None:
            try:
                hit = json.loads(_cache_file().read_text()).get(folder)
            except (OSError, ValueError, AttributeError):
                hit = None
    return list(hit[1]) if isinstance(hit, list) and len(hit) == 2 and hit[0] == key else None


def _remember(folder: str, key: str, problems: list[str]) -> None:
    with _LOCK:
        _MEMO[folder] = [key, problems]
        try:
            data = json.loads(_cache_file().read_text())
            data = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            data = {}
        data[folder] = [key, problems]
        try:
            write_json(_cache_file(), data)
        except OSError:  # a read-only cache: verified again in the next process
            pass


def check_benchmark(name: str, hr_dir: str | Path,
                    decode: Callable[[Path], tuple[np.ndarray, bool]]) -> list[str]:
    """Problems of benchmark ``name`` in ``hr_dir`` against its pixel list ([] when it matches or
    has no list): ``'missing woman.png'``, ``'changed bird.png'``, ``'unexpected extra.png'``.

    ``decode(path) -> (uint8 RGB array, gray flag)`` reads an image as the evaluation does.
    """
    expected = expected_pixels(name)
    if expected is None:
        return []
    files = list_images(hr_dir)  # as given: ``decode`` may cache by path
    folder, key = str(Path(hr_dir).resolve()), _key(files, expected)
    hit = _cached(folder, key)
    if hit is not None:
        return hit
    present = {f.name: f for f in files}
    problems = [f"missing {n}" for n in sorted(set(expected) - set(present))]
    for n in sorted(set(expected) & set(present)):
        img, gray = decode(present[n])
        if pixel_sha256(img, gray) != expected[n]:
            problems.append(f"changed {n}")
    problems += [f"unexpected {n}" for n in sorted(set(present) - set(expected))]
    _remember(folder, key, problems)
    return problems


def integrity_message(name: str, hr_dir: Path, problems: list[str]) -> str:
    """The error (or warning) text for ``problems`` of benchmark ``name`` in ``hr_dir``."""
    shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
    return (f"benchmark {name} in {hr_dir} is not the canonical set ({shown}): its numbers would not "
            f"be {name}'s. Restore the files or download it again (`srlib data download {name}` into "
            "an empty folder); to evaluate it anyway pass --allow-modified-data (allow_modified=True), "
            "which records these problems in the result")


def write_pixel_sums(name: str, hr_dir: str | Path, decode, out: str | Path) -> Path:
    """Write ``<sha256>  <file name>`` lines of every image in ``hr_dir`` to ``out`` (maintainers:
    run once on a folder whose file hashes match ``checksums/<name>.sha256``)."""
    lines = [f"{pixel_sha256(*decode(p))}  {p.name}\n" for p in list_images(hr_dir)]
    return atomic_write_text(out, "".join(lines))
