"""Catalog of the official weight files of the zoo models.

Files live in ``$SRLIB_WEIGHTS_DIR`` with the layout of ``shared/pretrained`` (``PAN/``,
``IMDN/``, ...). Each entry also gives the public origin (a raw GitHub URL pinned to the commit
the file was copied from) and its SHA-256, so a file can be fetched by hand and checked, and a
known file given for the wrong model or scale is recognised (PAN x2 and x3 files have
identical tensor shapes, so only the hash tells them apart).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ...data.fingerprint import file_sha256
from .. import CheckpointError, build_model, load_weights

ENV = "SRLIB_WEIGHTS_DIR"


@dataclass(frozen=True)
class WeightFile:
    """One official file: where it lies under ``SRLIB_WEIGHTS_DIR`` and where it came from."""

    relpath: str
    url: str
    sha256: str


def _gh(repo: str, commit: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


_PAN = ("zhaohengyuan1/PAN", "4d045d18592c5771cd3990da88f292812774e538")
_IMDN = ("Zheng222/IMDN", "8f158e6a5ac9db6e5857d9159fd4a6c4214da574")
_CARN = ("nmhkahn/CARN-pytorch", "40d3514f81cccd680d846cd5ab07af35f2c8e0e2")
_LAT = ("ymff0592/super-resolution", "7bb1ce05566bc162b112596be30e381b163541f7")
_A2F = ("wxxxxxxh/A2F-SR", "91c88af6c71e3f183f6161cc7efab20aa4ad167d")
_RFDN = ("njulj/RFDN", "7cf4e25b6633e81fd7e26891aeee2baca4f8f927")

_CARN_M = WeightFile(
    "CARN-M/carn_m.pth", _gh(*_CARN, "checkpoint/carn_m.pth"),
    "d48a759a84509351facb6b7c6d5bd6edec98b98519b8c464ee4ab44d2ba964ff")

CATALOG: dict[tuple[str, int], WeightFile] = {
    ("pan", 2): WeightFile("PAN/PANx2_DF2K.pth", _gh(*_PAN, "experiments/pretrained_models/PANx2_DF2K.pth"),
                           "fcf8ed48656abbaae46309ee91745684b80235a9c8b37a2d8fb0715a3ad3f00f"),
    ("pan", 3): WeightFile("PAN/PANx3_DF2K.pth", _gh(*_PAN, "experiments/pretrained_models/PANx3_DF2K.pth"),
                           "86491751d73645a8816a0d6ec62ccde6b22ce5da930e36b3b87f5437167fbc89"),
    ("pan", 4): WeightFile("PAN/PANx4_DF2K.pth", _gh(*_PAN, "experiments/pretrained_models/PANx4_DF2K.pth"),
                           "739fab99ee7b7058dab4d1b84aa2869bb9fc3995a1c08789c20355bee943833c"),
    ("imdn", 2): WeightFile("IMDN/IMDN_x2.pth", _gh(*_IMDN, "checkpoints/IMDN_x2.pth"),
                            "740b39653592bd3f49955a21cd9e16f2d37f2c413368cc09327601b8fbe42ce1"),
    ("imdn", 3): WeightFile("IMDN/IMDN_x3.pth", _gh(*_IMDN, "checkpoints/IMDN_x3.pth"),
                            "11b1716a19bc16e5e353e1db798d476169338e631eb170c82d765559888cb028"),
    ("imdn", 4): WeightFile("IMDN/IMDN_x4.pth", _gh(*_IMDN, "checkpoints/IMDN_x4.pth"),
                            "e660c38221147217a136debeb99eb304d62d9c0f73ac421ed66281b619719714"),
    ("carn-m", 2): _CARN_M,
    ("carn-m", 3): _CARN_M,
    ("carn-m", 4): _CARN_M,
    ("latticenet", 2): WeightFile("LatticeNet/LatticeNet_x2.pt", _gh(*_LAT, "premodel/LatticeNet_x2.pt"),
                                  "ac9e517e8952a1c96ef83ef7a327233a28f99f95c413f32ab62e3c7e4f59f8c4"),
    ("latticenet", 3): WeightFile("LatticeNet/LatticeNet_x3.pt", _gh(*_LAT, "premodel/LatticeNet_x3.pt"),
                                  "b1abeb84b02bfb1e186e6b2a1ee58167654285839909912f302b307ae75d1005"),
    ("latticenet", 4): WeightFile("LatticeNet/LatticeNet_x4.pt", _gh(*_LAT, "premodel/LatticeNet_x4.pt"),
                                  "abee214c6fb7a68cf9e781fe2cc5434cf49f53bba719fe58e6c69f71aa604436"),
    ("a2f-sd", 4): WeightFile("A2F/A2F-SD_x4_model_best.pt", _gh(*_A2F, "checkpoint/AAF_SD_x4/model_best.pt"),
                              "775135f46a3fea00f7d901f833f80a0ab05dbe1ae6c36b9deb352cddac70c473"),
    ("a2f-s", 4): WeightFile("A2F/A2F-S_x4_model_best.pt", _gh(*_A2F, "checkpoint/AAF_S_x4/model_best.pt"),
                             "75076b947c16fef754736ae6a377415febdad84e1803463870888d6d6a041078"),
    ("rfdn", 4): WeightFile("RFDN/RFDN_AIM.pth", _gh(*_RFDN, "trained_model/RFDN_AIM.pth"),
                            "11af8ec8ebd68689e90ef1e29044f9804c72d3bd9f7573820b7b26035782760c"),
}


def weights_dir() -> Path | None:
    """``$SRLIB_WEIGHTS_DIR`` as a Path, or None when unset."""
    value = os.environ.get(ENV)
    return Path(value).expanduser() if value else None


def _entry(name: str, scale: int) -> WeightFile:
    if (name, scale) not in CATALOG:
        known = ", ".join(f"{n} x{s}" for n, s in CATALOG)
        raise KeyError(f"no official weights for {name!r} x{scale}; available: {known}")
    return CATALOG[name, scale]


def find_weights(name: str, scale: int) -> Path:
    """Path of the official file for ``name`` at ``scale``; a clear FileNotFoundError otherwise."""
    entry = _entry(name, scale)
    root = weights_dir()
    if root is None:
        raise FileNotFoundError(
            f"official weights for {name} x{scale} not found: set {ENV} to a folder holding "
            f"{entry.relpath} (download it from {entry.url})")
    path = root / entry.relpath
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: set {ENV} to the folder with the layout of shared/pretrained "
            f"({entry.relpath}), or download the file from {entry.url}")
    return path


def identify_weights(path: str | os.PathLike) -> list[tuple[str, int]]:
    """The (name, scale) pairs a file is the official weights of, by SHA-256 ([] if unknown)."""
    digest = file_sha256(path)  # cached by (path, size, mtime_ns) in memory and on disk
    return [key for key, entry in CATALOG.items() if entry.sha256 == digest]


def load_pretrained(name: str, scale: int, path: str | os.PathLike | None = None):
    """Build ``name`` at ``scale`` and load its official weights (``find_weights`` if no path).

    A file known to be the official weights of another model or scale raises CheckpointError,
    even where the tensor shapes would fit (PAN x2 vs x3); unknown files (own checkpoints) are
    loaded with the strict key check of :func:`srlib.models.load_weights`.
    """
    path = Path(path) if path is not None else find_weights(name, scale)
    if path.is_file():
        owners = identify_weights(path)
        if owners and (name, scale) not in owners:
            what = ", ".join(f"{n} x{s}" for n, s in owners)
            raise CheckpointError(
                f"checkpoint {path} is the official file of {what}, not of {name} x{scale}; "
                f"pass the file for {name} x{scale}" + _hint(name, scale))
    return load_weights(build_model(name, scale), path).eval()


def _hint(name: str, scale: int) -> str:
    entry = CATALOG.get((name, scale))
    return f" ({entry.relpath} under {ENV})" if entry else ""
