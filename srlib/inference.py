"""Practical inference: an inference-ready model, tiling, x8 self-ensemble, images and folders.

- :func:`prepare` returns an inference copy: weight norm folded into plain convs (the model's own
  ``fuse()`` when it has one, else every ``weight_norm`` parametrization removed), eval mode,
  optionally channels_last.
- :func:`tiled` runs the model on overlapping LR tiles and keeps each tile's centre, so memory is
  bounded by the tile size. With an overlap of at least the model's receptive-field radius the
  result equals the untiled one (to float rounding) for any model made of local operations;
  models with global pooling (channel attention over the whole image) differ slightly.
- :func:`self_ensemble`: the mean of the model over the 8 flips/rotations (Lim et al. 2017, "x8").
- bf16 is opt-in (``precision='bf16'``): autocast on CUDA, and on CPUs with native bf16; fp32 stays
  the default because the published tables are fp32.
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from .data.colour import to_tensor, to_uint8
from .data.io import IMAGE_EXTENSIONS, list_images, load_image, save_image
from .data.transforms import dihedral
from .device import cpu_supports_bf16


def fold_weight_norm(model: nn.Module) -> nn.Module:
    """Remove every weight-norm parametrization in place (the weight is kept, as a plain tensor)."""
    from torch.nn.utils import parametrize

    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model


def prepare(model: nn.Module, channels_last: bool = False) -> nn.Module:
    """An inference copy of ``model``: weight norm folded, eval mode, no gradients."""
    fused = model.fuse() if hasattr(model, "fuse") else fold_weight_norm(copy.deepcopy(model))
    fused = fused.eval().requires_grad_(False)
    if channels_last:
        fused = fused.to(memory_format=torch.channels_last)
    return fused


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    if precision != "bf16":
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    if device.type == "cpu" and not cpu_supports_bf16():
        raise ValueError("bf16 inference asked for, but this CPU has no native bf16 (AMX / AVX512-BF16); "
                         "use precision='fp32'")
    return torch.autocast(device.type, dtype=torch.bfloat16)


def forward(model: nn.Module, x: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
    """``model(x)`` in inference mode, fp32 output."""
    dev = x.device
    with torch.inference_mode(), _autocast(dev, precision):
        return model(x).float()


def tiled(model: nn.Module, x: torch.Tensor, scale: int, tile: int, overlap: int = 16,
          precision: str = "fp32") -> torch.Tensor:
    """Upscale ``x`` (N, C, h, w) tile by tile: ``tile`` LR pixels per side plus ``overlap`` context."""
    if tile <= 0 or overlap < 0:
        raise ValueError(f"tile must be positive and overlap non-negative, got tile={tile}, overlap={overlap}")
    n, c, h, w = x.shape
    if tile >= h and tile >= w:
        return forward(model, x, precision)
    out = x.new_empty((n, c, h * scale, w * scale), dtype=torch.float32)
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            t0, l0 = max(top - overlap, 0), max(left - overlap, 0)
            t1, l1 = min(top + tile + overlap, h), min(left + tile + overlap, w)
            y = forward(model, x[..., t0:t1, l0:l1], precision)
            bh, bw = min(tile, h - top), min(tile, w - left)
            oy, ox = (top - t0) * scale, (left - l0) * scale
            out[..., top * scale : (top + bh) * scale, left * scale : (left + bw) * scale] = \
                y[..., oy : oy + bh * scale, ox : ox + bw * scale]
    return out


def self_ensemble(run, x: torch.Tensor) -> torch.Tensor:
    """Mean of ``run`` over the 8 flips/rotations of ``x``, each mapped back."""
    return torch.stack([dihedral(run(dihedral(x, k)), k, inverse=True) for k in range(8)]).mean(0)


def upscale_tensor(model: nn.Module, x: torch.Tensor, scale: int, tile: int | None = None,
                   overlap: int = 16, ensemble: bool = False, precision: str = "fp32") -> torch.Tensor:
    """The whole inference path on a float tensor in [0, 1]; returns float in [0, 1].

    ``tile=None`` runs the whole image at once; a tile must be a positive number of LR pixels."""
    if tile is not None and tile <= 0:
        raise ValueError(f"tile must be a positive number of LR pixels (or None for no tiling), got {tile}")
    run = (lambda t: tiled(model, t, scale, tile, overlap, precision)) if tile else \
        (lambda t: forward(model, t, precision))
    y = self_ensemble(run, x) if ensemble else run(x)
    return y.clamp(0, 1)


OUTPUT_SUFFIX = ".png"  # outputs are PNG only: lossless, which is what the metrics assume


class BatchUpscaleError(RuntimeError):
    """Some files of a folder could not be upscaled; the others were. ``failed`` lists
    ``(input, reason)``, ``written`` the outputs that were written."""

    def __init__(self, failed: list[tuple[Path, str]], written: list[Path], total: int):
        self.failed, self.written = failed, written
        lines = "; ".join(f"{p.name}: {why}" for p, why in failed)
        super().__init__(f"{len(failed)} of {total} image(s) failed, {len(written)} written: {lines}")


def _check_png(dst: Path) -> None:
    if dst.suffix.lower() != OUTPUT_SUFFIX:
        raise ValueError(f"output {dst} must be a file name ending in .png: srlib writes PNG only "
                         "(lossless); e.g. " + str(dst.with_suffix(OUTPUT_SUFFIX)))


def plan_upscale(src, dst, force: bool = False, skip_existing: bool = False
                 ) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """Check input and output before any work: ``(pairs to compute, outputs skipped)``.

    A file goes to a ``.png`` file; a folder's images go to a folder, each to ``<stem>.png``.
    Raises (naming the paths) for a missing input, an output of the wrong kind or format, two
    inputs that would write the same output (``x.png`` and ``x.jpg``), an output folder that
    is the input folder, and existing outputs unless ``force`` (overwrite) or
    ``skip_existing`` (keep them and skip those inputs, to resume a batch).
    """
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise FileNotFoundError(f"input {src} does not exist")
    if src.is_file():
        if dst.is_dir():
            raise IsADirectoryError(f"output {dst} is a folder; the input is a file, so give an output "
                                    f"file name, e.g. {dst / (src.stem + OUTPUT_SUFFIX)}")
        _check_png(dst)
        pairs = [(src, dst)]
    else:
        files = list_images(src)
        if not files:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {src}")
        if dst.exists() and not dst.is_dir():
            raise NotADirectoryError(f"input {src} is a folder, so the output {dst} must be a folder too")
        if dst.exists() and dst.resolve() == src.resolve():
            raise ValueError(f"output folder {dst} is the input folder; choose another folder")
        pairs = [(p, dst / (p.stem + OUTPUT_SUFFIX)) for p in files]
        by_target: dict[Path, list[Path]] = {}
        for p, t in pairs:
            by_target.setdefault(t, []).append(p)
        clashes = [f"{' and '.join(p.name for p in ps)} -> {t.name}"
                   for t, ps in by_target.items() if len(ps) > 1]
        if clashes:
            raise ValueError(f"name clash in {src}: " + "; ".join(clashes) + ". Outputs are named "
                             "<stem>.png, so these would overwrite each other; rename or move one")
    existing = [t for _, t in pairs if t.exists()]
    if existing and skip_existing:
        return [(p, t) for p, t in pairs if not t.exists()], existing
    if existing and not force:
        raise FileExistsError(f"{len(existing)} output(s) exist already (e.g. {existing[0]}); pass "
                              "--force to overwrite them or --skip-existing to keep them")
    return pairs, []


def upscale_file(model: nn.Module, src: Path, dst: Path, scale: int, force: bool = False,
                 device: str = "cpu", max_pixels: int | None = None, **kw) -> Path:
    """Read ``src`` (any format the loader accepts), upscale, write ``dst`` (PNG) atomically."""
    dst = Path(dst)
    _check_png(dst)
    if dst.exists() and not force:
        raise FileExistsError(f"{dst} exists; pass --force to overwrite it")
    x = to_tensor(load_image(src, max_pixels=max_pixels)).to(device)
    return save_image(to_uint8(upscale_tensor(model, x, scale, **kw).cpu()), dst)


def upscale_path(model: nn.Module, src: Path, dst: Path, scale: int, force: bool = False,
                 progress: bool = True, skip_existing: bool = False, **kw) -> list[Path]:
    """A file to a file, or every image in a folder to a folder (same names, PNG).

    Everything is checked first (:func:`plan_upscale`). In a folder, a file that fails (not an
    image, truncated, too large, ...) does not stop the others: every file is tried, then
    :class:`BatchUpscaleError` lists the failures with their reasons. Returns the outputs
    written (not those skipped).
    """
    pairs, _ = plan_upscale(src, dst, force, skip_existing)
    if Path(src).is_file():
        return [upscale_file(model, p, t, scale, True, **kw) for p, t in pairs]
    written, failed = [], []
    for p, t in tqdm(pairs, desc="upscale", unit="img", disable=not progress):
        try:
            written.append(upscale_file(model, p, t, scale, True, **kw))
        except (OSError, RuntimeError, ValueError) as exc:
            failed.append((p, str(exc)))
    if failed:
        raise BatchUpscaleError(failed, written, len(pairs))
    return written
