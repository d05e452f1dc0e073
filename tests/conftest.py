"""Shared fixtures. Tests that need the benchmark images or official weights skip with a
reason when SRLIB_DATA_DIR / SRLIB_WEIGHTS_DIR are not set (make test sets them to
../shared/... when that folder exists)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(2)


def _dir(var: str) -> Path | None:
    v = os.environ.get(var)
    return Path(v) if v and Path(v).is_dir() else None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = _dir("SRLIB_DATA_DIR")
    if d is None or not (d / "Set5" / "HR").is_dir():
        pytest.skip("SRLIB_DATA_DIR with Set5/HR is not set; the benchmark images are needed")
    return d


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    d = _dir("SRLIB_WEIGHTS_DIR")
    if d is None:
        pytest.skip("SRLIB_WEIGHTS_DIR is not set; the official weight files are needed")
    return d


@pytest.fixture
def scratch_project(tmp_path, monkeypatch):
    """``make(*notebooks) -> project``: a scratch project (SRLIB_PROJECT_DIR) holding copies of the
    named notebooks, so a notebook run leaves the checkout untouched."""
    from srlib.paths import notebooks_dir

    def make(*names: str) -> Path:
        project = tmp_path / "proj"
        (project / "notebooks").mkdir(parents=True, exist_ok=True)
        (project / "pyproject.toml").write_text("")
        for name in names:
            (project / "notebooks" / name).write_bytes((notebooks_dir() / name).read_bytes())
        monkeypatch.setenv("SRLIB_PROJECT_DIR", str(project))
        return project

    return make


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def textured(rng) -> np.ndarray:
    """A 60x52 RGB uint8 image with edges and texture (deterministic)."""
    y, x = np.mgrid[0:60, 0:52]
    base = 128 + 60 * np.sin(x / 3.0) * np.cos(y / 5.0) + 40 * ((x // 8 + y // 8) % 2)
    img = np.stack([base, base[::-1], base[:, ::-1]], axis=2) + rng.normal(0, 8, (60, 52, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


@pytest.fixture
def project(data_dir, tmp_path, monkeypatch):
    """``use(name)``: point SRLIB_PROJECT_DIR at a fresh scratch project ``tmp_path/name`` (studies'
    runs land there, not in the checkout); ``p1`` is in use from the start."""

    def use(name: str = "p1") -> Path:
        d = tmp_path / name
        (d / "notebooks").mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv("SRLIB_PROJECT_DIR", str(d))
        return d

    use("p1")
    return use


@pytest.fixture
def fits(monkeypatch):
    """The run folders ``Trainer.fit`` was called for (a spy on training: ``[]`` = nothing trained)."""
    from srlib.train import Trainer

    calls = []
    orig = Trainer.fit

    def spy(self, *a, **k):
        calls.append(self.out_dir.name)
        return orig(self, *a, **k)

    monkeypatch.setattr(Trainer, "fit", spy)
    return calls
