"""Benchmark evaluation: any upscaler on datasets x scales into a tidy table.

The protocol (see :mod:`srlib.metrics`): HR mod-cropped to the scale, LR by MATLAB ``imresize``
as uint8, the upscaler's output clamped and quantised to 8 bits, Y-channel PSNR/SSIM with
``scale`` pixels shaved. One row per image; :func:`summarize` gives the means.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from . import kernels
from .data.catalog import display_name
from .data.colour import to_tensor
from .data.datasets import BenchmarkSet
from .device import exact_fp32
from .fileio import atomic_write_text
from .inference import forward
from .metrics import psnr_ssim_torch, quantize8
from .models import build_upscaler, list_models, refuse_random_weights
from .provenance import provenance

GRAY_RULES = ("rgb", "y")


def upscale(model: nn.Module, lr: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """Run ``model`` on a uint8 LR image; returns float (1, 3, H, W) on the CPU, clamped to [0, 1]."""
    return forward(model, to_tensor(lr).to(device)).clamp(0, 1).cpu()


def _as_factory(upscaler, checkpoint=None, profile="quick", random_init=False) -> Callable[[int], nn.Module]:
    if isinstance(upscaler, str):
        refuse_random_weights(upscaler, checkpoint, random_init)
        return lambda s: build_upscaler(upscaler, s, checkpoint, profile)
    if checkpoint is not None:
        raise ValueError("pass `checkpoint` with a model name, or load it into the module yourself")
    if isinstance(upscaler, nn.Module):
        def fixed(s):
            if getattr(upscaler, "scale", s) != s:
                raise ValueError(f"the model given upscales x{upscaler.scale}, not x{s}")
            return upscaler
        return fixed
    return upscaler  # a callable scale -> module


#: pending 8-bit values (SR and HR, all channels) before the metrics are computed, images of equal
#: size in one batch. Kept small on purpose: on the 2-core EPYC (CPU time, B100 x2) two images per
#: batch were ~5% faster than one at a time, 16 per batch 50-90% slower (the float64 Y planes
#: of a big batch spill the cache; the per-image Python overhead is under 0.3 ms of ~15 ms).
PENDING_PIXELS = 2_000_000


def _hr8(hr: np.ndarray) -> torch.Tensor:
    """uint8 HWC (or HW) -> uint8 (1, C, H, W), contiguous, no float conversion (a numpy copy, as
    the array may be read-only: torch's parallel copy would wake its thread pool for a memcpy)."""
    if hr.ndim == 3 and kernels.ENABLED:
        return torch.from_numpy(kernels.hwc_to_chw(hr))[None]
    chw = hr[None] if hr.ndim == 2 else hr.transpose(2, 0, 1)
    return torch.from_numpy(np.array(chw, order="C"))[None]


def _stack(tensors: list) -> torch.Tensor:
    """``torch.cat`` along the batch, without the copy when there is one tensor."""
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors)


def _measure(pending: list, crop: int, round_y: bool) -> dict:
    """PSNR/SSIM of ``[(index, sr8, hr8, as_gray), ...]``, one batch per image size."""
    if kernels.ENABLED:  # the kernels take one image at a time: no batch to copy together
        return {i: tuple(float(v[0]) for v in psnr_ssim_torch(sr, hr, crop, True, gray, round_y))
                for i, sr, hr, gray in pending}
    groups: dict = {}
    for entry in pending:
        groups.setdefault(tuple(entry[1].shape), []).append(entry)
    out = {}
    for group in groups.values():
        idx = [e[0] for e in group]
        sr, hr = _stack([e[1] for e in group]), _stack([e[2] for e in group])
        as_gray = [e[3] for e in group]
        p, q = psnr_ssim_torch(sr, hr, crop, True, as_gray if any(as_gray) else False, round_y)
        out.update(zip(idx, zip(p.tolist(), q.tolist())))
    return out


def evaluate_set(model: nn.Module, bench: BenchmarkSet, gray_rule: str = "rgb", device: str = "cpu",
                 progress: bool = True, label: str = "", round_y: bool = True) -> list[dict]:
    """Per-image rows (image, psnr, ssim, seconds) of ``model`` on one benchmark at one scale.

    ``seconds`` times the model on one image. Its output is quantised to 8 bits at once. With the
    CPU kernels (:mod:`srlib.kernels`) and more than one torch thread, the metrics run on a second
    thread beside the model (:func:`_evaluate_set_pipelined`); otherwise on batches of equal-size
    images (:data:`PENDING_PIXELS`), which gives the same numbers as one image at a time
    (``tests/test_evaluate.py``) with less per-image overhead.
    """
    if gray_rule not in GRAY_RULES:
        raise ValueError(f"gray_rule must be one of {GRAY_RULES}, got {gray_rule!r}")
    if kernels.ENABLED and torch.get_num_threads() > 1:
        return _evaluate_set_pipelined(model, bench, gray_rule, device, progress, label, round_y)
    s, rows, pending, npix, scores = bench.scale, [], [], 0, {}
    for i, item in enumerate(tqdm(bench, total=len(bench), desc=label or f"{bench.name} x{s}", leave=False,
                                  disable=not progress)):
        sr, hr, secs = _upscale_one(model, item, s, device)
        pending.append((i, sr, hr, gray_rule == "y" and item.gray))
        rows.append({"image": item.name, "psnr": None, "ssim": None, "seconds": secs})
        npix += 2 * hr.numel()
        if npix >= PENDING_PIXELS:
            scores.update(_measure(pending, s, round_y))
            pending, npix = [], 0
    scores.update(_measure(pending, s, round_y))
    for i, row in enumerate(rows):
        row["psnr"], row["ssim"] = scores[i]
    return rows


#: images whose metrics may wait in the pipelined evaluation before the model waits for them
PIPELINE_DEPTH = 4


def _upscale_one(model, item, s: int, device: str) -> tuple:
    """``(sr8, hr8, seconds)`` of one benchmark item: the model timed, its output quantised. A model
    with ``upscale_uint8`` (uint8 HWC in and out, the same pixels as its forward quantised) is
    called with the 8-bit image itself."""
    t0 = time.perf_counter()
    if device == "cpu" and hasattr(model, "upscale_uint8"):  # 8-bit in and out (the INTER baselines)
        sr = _hr8(model.upscale_uint8(item.lr))
    else:
        with exact_fp32():  # no TF32 on CUDA: the protocol is fp32
            sr = quantize8(forward(model, to_tensor(item.lr).to(device))).cpu()  # clamped, 8-bit
    secs = time.perf_counter() - t0
    hr = _hr8(item.hr)
    if sr.shape[-3:] != hr.shape[-3:]:
        raise RuntimeError(f"upscaler returned {tuple(sr.shape[-3:])} for {item.name}, expected "
                           f"{tuple(hr.shape[-3:])} (x{s} of {item.lr.shape[:2]}, RGB)")
    return sr, hr, secs


def _measure_single_threaded(*args) -> dict:
    """:func:`_measure` with this thread's kernel calls unsplit (the metrics stream of the pipeline)."""
    with kernels.single_threaded():
        return _measure(*args)


def _evaluate_set_pipelined(model, bench, gray_rule, device, progress, label, round_y) -> list[dict]:
    """:func:`evaluate_set` with the metrics of image i computed on a second thread while the model
    upscales image i + 1, each stream running the CPU kernels on one thread instead of each
    kernel split in two (the small bicubic table, 2 threads: 1.54 s split, 0.86 s pipelined);
    models with seconds of kernel work an image (NE, SC) lift the cap for their forward
    (:func:`srlib.kernels.all_threads`). The same numbers (``tests/test_kernels.py``); ``seconds``
    may include some contention with the metrics thread (a few ms an image, against a CNN's
    hundreds)."""
    s, rows, futures = bench.scale, [], []
    with kernels.single_threaded(), ThreadPoolExecutor(1, thread_name_prefix="srlib-metrics") as pool:
        for i, item in enumerate(tqdm(bench, total=len(bench), desc=label or f"{bench.name} x{s}", leave=False,
                                      disable=not progress)):
            sr, hr, secs = _upscale_one(model, item, s, device)
            if len(futures) >= PIPELINE_DEPTH:
                futures[-PIPELINE_DEPTH].result()  # bound the images held in memory
            futures.append(pool.submit(_measure_single_threaded, [(i, sr, hr, gray_rule == "y" and item.gray)], s,
                                       round_y))
            rows.append({"image": item.name, "psnr": None, "ssim": None, "seconds": secs})
        for row, f in zip(rows, futures):
            ((_, (row["psnr"], row["ssim"])),) = f.result().items()
    return rows


def evaluate(upscaler, datasets: Iterable[str] = ("Set5",), scales: Iterable[int] = (4,),
             name: str | None = None, checkpoint=None, root=None, gray_rule: str = "rgb", max_images: int | None = None,
             device: str = "cpu", fallback: bool = True, progress: bool = True,
             round_y: bool = True, profile: str = "quick", random_init: bool = False,
             allow_modified: bool = False) -> pd.DataFrame:
    """Evaluate ``upscaler`` (a name, a module, or a callable ``scale -> module``).

    ``checkpoint`` (with a name) is loaded into the model at every scale; ``max_images``
    takes the first images of each set; ``gray_rule`` is 'rgb' or 'y' and ``round_y`` rounds Y
    to 8 bits as MATLAB does (False: float Y, as BasicSR-style code); see srlib.metrics.
    ``profile`` is passed to learned classical methods given by name (``ne``, ``sc``).
    A registered model given by name needs ``checkpoint`` unless ``random_init=True``
    (:func:`srlib.models.refuse_random_weights`). A catalogued benchmark whose images are missing
    or changed raises :class:`~srlib.data.integrity.DatasetIntegrityError`; with
    ``allow_modified=True`` it is a warning and ``df.attrs['data_modified']`` lists the problems
    per dataset. Repeated datasets or scales are evaluated once.

    Returns one row per (dataset, scale, image) with columns
    ``model, dataset, scale, image, psnr, ssim, seconds, source``; ``df.attrs`` carries
    the settings for :func:`write_table`.
    """
    factory = _as_factory(upscaler, checkpoint, profile, random_init)
    name = name or (upscaler if isinstance(upscaler, str) else type(upscaler).__name__.lower())
    datasets, scales = _unique(datasets, display_name), _unique(scales, int)
    rows, sources, modified = [], {}, {}
    for s in scales:
        model = factory(s)
        if hasattr(model, "ensure_fitted"):  # learn or load a dictionary now, not in image 1's time
            model.ensure_fitted()
        if isinstance(model, nn.Module):
            model = model.to(device).eval()
        for ds in datasets:
            bench = BenchmarkSet(ds, s, root=root, fallback=fallback, max_images=max_images,
                                 allow_modified=allow_modified)
            sources[bench.name] = bench.source
            if bench.problems:
                modified[bench.name] = list(bench.problems)
            label = f"{name} {bench.name} x{s}"
            for r in evaluate_set(model, bench, gray_rule, device, progress, label, round_y):
                rows.append({"model": name, "dataset": bench.name, "scale": s, **r, "source": bench.source})
    df = pd.DataFrame(rows)
    df.attrs.update(gray_rule=gray_rule, round_y=round_y, data_source=sources, device=device)
    if random_init and checkpoint is None and isinstance(upscaler, str) and upscaler in list_models():
        df.attrs["random_init"] = True
    if modified:
        df.attrs["data_modified"] = modified
    return df


def _unique(items, key) -> list:
    """``items`` without repeats by ``key`` (first kept, order kept): ``--scale 4,4`` is one scale."""
    seen, out = set(), []
    for it in items:
        k = key(it)
        if k not in seen:
            seen.add(k)
            out.append(it)
    return out


def table_title(df: pd.DataFrame) -> str:
    """A title line for a table of ``df`` when its numbers are not on the named benchmarks:
    the scikit-image fallback stood in (for a benchmark, or for a study's training data), or
    images were missing or changed, or the weights were random; else ``''``."""
    from .data.datasets import FALLBACK_SOURCE

    notes = []
    given = df.attrs.get("data_source") or {}
    sources = dict(given) if isinstance(given, dict) else {"": str(given)}  # one source: a string
    if "source" in df.columns:
        sources.update({str(v): v for v in df["source"].unique()})
    if any(FALLBACK_SOURCE in str(v) for v in sources.values()):
        notes.append(f"on the {FALLBACK_SOURCE}")
    modified = df.attrs.get("data_modified") or {}
    if modified:
        notes.append("on modified benchmark data (" + "; ".join(
            f"{ds}: {', '.join(v)}" for ds, v in modified.items()) + ")")
    if df.attrs.get("random_init"):
        notes.append("with random (untrained) weights")
    if df.attrs.get("trained_on_fallback"):  # a study's table (srlib.studies.Study.table)
        notes.append(f"trained on the {FALLBACK_SOURCE} ({', '.join(df.attrs['trained_on_fallback'])})")
    return ("NOT THE PUBLISHED PROTOCOL: " + ", ".join(notes)) if notes else ""


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean PSNR/SSIM (and seconds per image) per model, dataset and scale."""
    keys = [k for k in ("model", "dataset", "scale") if k in df.columns]
    out = df.groupby(keys, sort=False).agg(n_images=("image", "size"), psnr=("psnr", "mean"),
                                           ssim=("ssim", "mean"), seconds=("seconds", "mean"))
    out = out.reset_index()
    out.attrs.update(df.attrs)  # data source, modified data, random weights: for the title
    return out


def compare_published(summary: pd.DataFrame, model: str | None = None) -> pd.DataFrame:
    """``summary`` beside the published rows (ours, paper, delta), where a published row exists."""
    from .reference import published

    pub = published(model=model)[["model", "dataset", "scale", "psnr", "ssim", "source"]]
    pub = pub.rename(columns={"psnr": "psnr_paper", "ssim": "ssim_paper", "source": "paper_source"})
    if model is not None:
        pub = pub.drop(columns="model")
        keys = ["dataset", "scale"]
    else:
        keys = ["model", "dataset", "scale"]
    out = summary.merge(pub, on=keys, how="left")
    out["psnr_delta"] = out.psnr - out.psnr_paper
    out["ssim_delta"] = out.ssim - out.ssim_paper
    return out


def write_table(df: pd.DataFrame, stem: str | Path, prov: dict | None = None,
                formats: Iterable[str] = ("csv", "md", "tex"), floatfmt: str = ".4f") -> list[Path]:
    """Write ``df`` as CSV / Markdown / LaTeX next to each other, each carrying ``prov``.

    A table whose rows come from the scikit-image fallback, modified benchmark data or random
    weights (:func:`table_title`) gets a title saying so (a ``title:`` line, in Markdown bold).
    CSV gets ``# key: value`` header lines (read back with ``pd.read_csv(path, comment='#')``),
    Markdown a provenance footer, LaTeX ``%`` comment lines. Every file is written atomically.
    """
    prov = prov or provenance()
    title = table_title(df)
    lines = ([f"title: {title}"] if title else []) + [f"{k}: {v}" for k, v in prov.items()]
    stem, written = Path(stem), []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        if fmt == "csv":
            text = "".join(f"# {ln}\n" for ln in lines) + df.to_csv(index=False)
        elif fmt == "md":
            text = (f"**{title}**\n\n" if title else "") + df.to_markdown(index=False, floatfmt=floatfmt) + \
                "\n\n" + "".join(f"<!-- {ln} -->\n" for ln in lines)
        elif fmt == "tex":
            text = "".join(f"% {ln}\n" for ln in lines) + df.to_latex(index=False, float_format=f"%{floatfmt}")
        else:
            raise ValueError(f"unknown table format {fmt!r}; use csv, md or tex")
        written.append(atomic_write_text(path, text))
    return written


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV written by :func:`write_table` (provenance lines skipped)."""
    return pd.read_csv(path, comment="#")


def resampler_study(dataset: str = "Set5", scale: int = 4, root=None, max_images: int | None = None,
                    downs: Iterable[str] = ("MATLAB", "PIL", "torch", "torch, no antialias"),
                    ups: Iterable[str] = ("MATLAB", "PIL", "torch")) -> pd.DataFrame:
    """Mean Y-PSNR/SSIM of bicubic SR when the LR is made by one resampler and upscaled by another.

    Shows what the choice of bicubic implementation does to a table: the protocol is the
    MATLAB/MATLAB cell; every other cell is a common way of getting it wrong.
    """
    from .classical.inter import RESAMPLERS
    from .metrics import psnr, ssim

    bench = BenchmarkSet(dataset, scale, root=root, max_images=max_images)
    rows = []
    for down in downs:
        for up in ups:
            vals = []
            for item in bench:
                lr = RESAMPLERS[down](item.hr, 1 / scale)
                sr = RESAMPLERS[up](lr, scale)
                vals.append((psnr(sr, item.hr, scale), ssim(sr, item.hr, scale)))
            p, q = np.mean(vals, axis=0)
            rows.append({"LR made by": down, "upscaled by": up, "psnr": p, "ssim": q})
    df = pd.DataFrame(rows)
    df.attrs["data_source"] = bench.source
    return df


def complexity_table(names: Iterable[str], scale: int = 4, out_hw: tuple[int, int] = (720, 1280),
                     lr_hw: tuple[int, int] = (192, 256), repeats: int = 5, device: str = "cpu",
                     progress: bool = True) -> pd.DataFrame:
    """Params (exact), Multi-Adds at an ``out_hw`` output, peak memory and median run time.

    Memory and time are measured on one forward pass over a (1, 3, *lr_hw) input (the default is
    an Urban100-sized 1024x768 output at x4) with the inference form of each model (weight norm
    folded, ``torch.inference_mode``); weights are random, which does not change any column.
    """
    from .complexity import count_params, multi_adds, peak_memory, time_forward
    from .inference import prepare

    rows = []
    for name in tqdm(list(names), desc="complexity", disable=not progress):
        torch.manual_seed(0)
        model = build_upscaler(name, scale).eval()
        row = {"model": name, "scale": scale, "params": count_params(model),
               "multi_adds_G": multi_adds(model, scale, out_hw) / 1e9}
        fast = prepare(model).to(device)
        with torch.inference_mode():
            row["memory_MB"] = peak_memory(fast, lr_hw) / 2**20
            row[f"{device}_seconds"] = time_forward(fast, lr_hw, repeats=repeats)
        rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs.update(out_hw=out_hw, lr_hw=lr_hw, device=device)
    return df
