"""Where the project keeps notebooks, results and figures.

The project root is ``SRLIB_PROJECT_DIR`` when set, else the nearest folder above the current
directory holding ``notebooks/`` and ``pyproject.toml`` (so a notebook opened in
``notebooks/`` finds it), else the checkout this package was installed from, else the
current directory.
"""
from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    env = os.environ.get("SRLIB_PROJECT_DIR")
    if env:
        return Path(env).expanduser().resolve()
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "pyproject.toml").is_file() and (d / "notebooks").is_dir():
            return d
    pkg_root = Path(__file__).resolve().parent.parent
    if (pkg_root / "notebooks").is_dir():
        return pkg_root
    return here


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def results_dir(profile: str) -> Path:
    return project_root() / "results" / profile


def figures_dir(profile: str) -> Path:
    return project_root() / "figures" / profile


def checkpoints_dir(profile: str) -> Path:
    return results_dir(profile) / "checkpoints"
