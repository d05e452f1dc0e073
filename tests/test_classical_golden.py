"""Golden outputs of neighbour embedding and sparse coding: any speed-up must keep the numbers.

``tests/golden/classical/`` holds three 20x20 LR crops (from Set5, Set14 and Urban100, made by
MATLAB ``imresize`` from the HR images) and the Y channel of what ``ne`` and ``sc`` made of them at
x2, x3 and x4 with the ``smoke`` settings, the dictionaries learned here from a fixed seed on
bundled scikit-image pictures (no cache, no dataset needed). ``golden.json`` says how. The test
asks for the 8-bit output (the Y of the uint8 RGB result) within one level of the golden one.

Regenerate (only on purpose, from the code whose numbers are the reference)::

    SRLIB_DATA_DIR=../shared/datasets python tests/test_classical_golden.py --write
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

GOLDEN = Path(__file__).parent / "golden" / "classical"
CROPS = (("Set5", "butterfly", (100, 100)), ("Set14", "barbara", (160, 220)),
         ("Urban100", "img_004", (300, 400)))  # (set, image stem, HR top-left of a 20s x 20s window)
LR_SIDE = 20
SCALES = (2, 3, 4)
METHODS = ("ne", "sc")
TRAIN = ("camera", "astronaut", "coffee")  # scikit-image's bundled pictures, 256x256 top-left crops
SEED = 0


def training_images() -> list[np.ndarray]:
    import skimage.data

    out = []
    for n in TRAIN:
        img = getattr(skimage.data, n)()[:256, :256]
        out.append(np.ascontiguousarray(np.repeat(img[..., None], 3, 2) if img.ndim == 2 else img[..., :3]))
    return out


def build(method: str, scale: int, cache_dir):
    from srlib.classical.neighbor_embedding import NeighborEmbedding
    from srlib.classical.sparse_coding import SparseCoding

    cls = {"ne": NeighborEmbedding, "sc": SparseCoding}[method]
    model = cls(scale, profile="smoke", cache_dir=cache_dir, seed=SEED, progress=False)
    return model.fit(training_images(), "scikit-image camera/astronaut/coffee")


def upscale_y(model, lr: np.ndarray) -> np.ndarray:
    """The method's 8-bit output's Y (MATLAB rgb2ycbcr of the uint8 RGB result)."""
    from srlib.data.colour import rgb2ycbcr, to_tensor, to_uint8

    with torch.no_grad():
        return rgb2ycbcr(to_uint8(model(to_tensor(lr))))


def lr_name(set_name: str, stem: str, scale: int) -> str:
    return f"lr_{set_name}_{stem}_x{scale}.png"


def write(data_dir: Path) -> None:
    """Crop, degrade and run today's code; write the PNGs and golden.json."""
    import tempfile

    from srlib.data.io import load_image, save_image
    from srlib.data.resize import imresize

    GOLDEN.mkdir(parents=True, exist_ok=True)
    files = {}
    for scale in SCALES:
        for set_name, stem, (y, x) in CROPS:
            hr = load_image(data_dir / set_name / "HR" / f"{stem}.png")
            side = LR_SIDE * scale
            lr = imresize(np.ascontiguousarray(hr[y:y + side, x:x + side]), 1 / scale)
            save_image(lr, GOLDEN / lr_name(set_name, stem, scale))
            window = f"[{y}:{y + side}, {x}:{x + side}]"
            files[lr_name(set_name, stem, scale)] = \
                f"{set_name}/HR/{stem}.png{window} -> imresize(1/{scale}), uint8 RGB"
    with tempfile.TemporaryDirectory() as tmp:
        for method in METHODS:
            for scale in SCALES:
                model = build(method, scale, tmp)
                for set_name, stem, _ in CROPS:
                    out = upscale_y(model, load_image(GOLDEN / lr_name(set_name, stem, scale)))
                    name = f"{method}_{set_name}_{stem}_x{scale}.png"
                    save_image(out, GOLDEN / name)
                    what = "Y of the uint8 RGB output"
                    files[name] = f"{method} x{scale} on {lr_name(set_name, stem, scale)}: {what}"
    meta = {"made_by": "python tests/test_classical_golden.py --write",
            "profile": "smoke", "seed": SEED, "lr_side": LR_SIDE, "scales": list(SCALES),
            "training_images": [f"skimage.data.{n}()[:256, :256]" for n in TRAIN],
            "tolerance": "8-bit Y within 1 level", "files": files}
    (GOLDEN / "golden.json").write_text(json.dumps(meta, indent=2) + "\n")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    cache = tmp_path_factory.mktemp("golden_dicts")
    return {(m, s): build(m, s, cache) for m in METHODS for s in SCALES}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("scale", SCALES)
def test_matches_golden_output(method, scale, models):
    from srlib.data.io import load_image

    if not (GOLDEN / "golden.json").is_file():
        pytest.fail(f"{GOLDEN / 'golden.json'} is missing; see this file's docstring to make it")
    for set_name, stem, _ in CROPS:
        lr = load_image(GOLDEN / lr_name(set_name, stem, scale))
        want = load_image(GOLDEN / f"{method}_{set_name}_{stem}_x{scale}.png")[..., 0].astype(int)  # gray PNG
        got = upscale_y(models[method, scale], lr).astype(int)
        assert got.shape == want.shape == (LR_SIDE * scale, LR_SIDE * scale)
        diff = np.abs(got - want)
        assert diff.max() <= 1, (method, scale, stem, int(diff.max()), int((diff > 0).sum()))


if __name__ == "__main__":
    import os

    if "--write" not in sys.argv or not os.environ.get("SRLIB_DATA_DIR"):
        sys.exit("usage: SRLIB_DATA_DIR=<datasets> python tests/test_classical_golden.py --write")
    write(Path(os.environ["SRLIB_DATA_DIR"]))
