"""Cached benchmark evaluation: a second run reads the per-image rows instead of recomputing them.

:func:`evaluate_cached` returns what :func:`srlib.evaluate.evaluate` returns (one row per
image: ``model, dataset, scale, image, psnr, ssim, seconds, source``; the same ``attrs``) and
keeps each (dataset, scale) part as a CSV with a JSON sidecar::

    results/<profile>/evaluations/<method>/<dataset>_x<s>_<hash12>.csv   (+ .json)

(or ``<cache_dir>/<method>/...``, e.g. beside a training run). The hash is over a key of
everything the numbers depend on, never over paths:

- the method's identity: a classical method's name; a registered model's name, its resolved
  configuration and the SHA-256 of the checkpoint's *content* (a moved or renamed file still
  hits); for the learned classical methods (``ne``, ``sc``) their settings and the SHA-256 of
  their cached dictionary file; for an in-memory module the caller's ``key`` plus a hash of its
  state dict;
- the protocol: ``gray_rule``, ``round_y``, ``max_images``, the device type and
  :data:`PROTOCOL_VERSION` (bump it when :mod:`srlib.metrics` or the LR making changes);
- the dataset's content fingerprint (:func:`srlib.data.fingerprint.dataset_fingerprint`).

A part is read only when its sidecar holds the same key and the CSV's SHA-256; otherwise it is
recomputed and written atomically (CSV first, sidecar last, so a killed run leaves no part that
reads as complete). A file holding another key is never overwritten (a 12-hex-digit prefix clash
falls back to the full hash in the name). The ``seconds`` column of a part read back is the time
measured by the run that computed it (the sidecar says when, on which device and threads);
``df.attrs["cache"]`` says per ``"<dataset> x<s>"`` whether it was ``"read"`` or ``"computed"``.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import time
from pathlib import Path
from typing import Iterable

import pandas as pd
import torch
from torch import nn

from .data.catalog import display_name, portable_path
from .data.fingerprint import dataset_fingerprint, file_sha256
from .evaluate import GRAY_RULES, evaluate
from .fileio import atomic_write_text, write_json
from .models import build_upscaler, get_entry, list_upscalers

#: bump when the evaluation protocol changes (LR making, quantisation, metrics): every cached
#: evaluation is then recomputed
PROTOCOL_VERSION = 1

COLUMNS = ("model", "dataset", "scale", "image", "psnr", "ssim", "seconds", "source")
_DTYPES = {"model": str, "dataset": str, "scale": "int64", "image": str, "psnr": "float64",
           "ssim": "float64", "seconds": "float64", "source": str}


# ------------------------------------------------------------------ method identity

def state_sha256(module: nn.Module) -> str:
    """SHA-256 over a module's state dict (names, dtypes, shapes and bytes of every tensor)."""
    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        t = v.detach().cpu().contiguous()
        h.update(f"{k}\t{t.dtype}\t{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _learned_identity(m: nn.Module) -> dict:
    """Identity of a learned classical upscaler: its settings and its dictionary's content."""
    ident = {"settings": m.settings, "train_set": m.train_set, "seed": m.seed}
    if m.arrays is not None:  # a dictionary in memory (loaded or fitted): hash what is there
        h = hashlib.sha256()
        for k in sorted(m.arrays):
            t = m.arrays[k].detach().cpu().contiguous()
            h.update(f"{k}\t{t.dtype}\t{tuple(t.shape)}\n".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        return {**ident, "dictionary_arrays_sha256": h.hexdigest()}
    path = m.cache_path()
    if not (path.is_file() and path.with_suffix(".json").is_file()):
        m.ensure_fitted()  # learn it now (it is needed anyway) so that its file can be hashed
    return {**ident, "dictionary": path.name, "dictionary_sha256": file_sha256(path)}


class _Method:
    """How to build ``method`` at a scale and what identifies its output there."""

    def __init__(self, method, profile, checkpoint, module, key, model_kwargs):
        from .classical import CLASSICAL, LEARNED

        if isinstance(method, nn.Module):
            method, module = None, method
        self.profile, self.module, self.key = profile, module, key
        self.checkpoint, self.model_kwargs = checkpoint, dict(model_kwargs or {})
        self._built: dict = {}
        if module is not None:
            if checkpoint is not None or model_kwargs:
                raise ValueError("module= is evaluated as given: load the checkpoint into it yourself "
                                 "and drop checkpoint= / model_kwargs=")
            if not isinstance(key, str) or not key:
                raise ValueError(
                    "evaluate_cached(module=...) needs key='...': a string naming what the module is "
                    "(e.g. 'awsrn-s x4 run abc123, pruned without LFB 2'); its state dict is hashed too, "
                    "but only you know what it stands for")
            self.kind, self.label = "module", method or type(module).__name__.lower()
            return
        if not isinstance(method, str):
            raise TypeError(f"method must be a registered name or an nn.Module, got {type(method).__name__}")
        self.label = method
        if method in CLASSICAL:
            if checkpoint is not None or model_kwargs:
                raise ValueError(f"{method} is a classical method and takes no checkpoint= / model_kwargs=")
            self.kind = "learned" if method in LEARNED else "classical"
            return
        try:
            self.config = {**get_entry(method).config, **self.model_kwargs}
        except KeyError:
            raise KeyError(f"unknown method {method!r}; known: {', '.join(list_upscalers())}") from None
        self.kind = "model"
        if isinstance(checkpoint, str) and checkpoint == "official" and model_kwargs:
            raise ValueError("checkpoint='official' loads the published configuration; drop model_kwargs=")
        if checkpoint is None and not (isinstance(key, int) and not isinstance(key, bool)):
            raise ValueError(
                f"evaluate_cached({method!r}) without a checkpoint would evaluate random weights: pass "
                "checkpoint= (a file, {scale: file}, or 'official' for a zoo model's published weights) "
                "or key=<int seed> to evaluate the random initialisation made with that seed")

    def _checkpoint(self, scale: int) -> Path | None:
        ck = self.checkpoint
        if ck is None:
            return None
        if isinstance(ck, dict):
            if scale not in ck:
                raise KeyError(f"checkpoint= has no file for x{scale} (it has x{', x'.join(map(str, ck))})")
            return Path(ck[scale])
        if isinstance(ck, str) and ck == "official":
            from .models.zoo.weights import find_weights

            return find_weights(self.label, scale)
        path = Path(ck)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {path} does not exist; pass an existing file")
        return path

    def build(self, scale: int) -> nn.Module:
        if scale in self._built:
            return self._built[scale]
        if self.kind == "module":
            m = self.module
        elif self.kind in ("classical", "learned"):
            m = build_upscaler(self.label, scale, profile=self.profile)
        else:
            from .models import build_model, load_weights

            from .models.zoo.weights import load_pretrained

            ck = self._checkpoint(scale)
            if isinstance(self.checkpoint, str) and self.checkpoint == "official":
                m = load_pretrained(self.label, scale, ck)  # refuses another model's official file
            else:
                with torch.random.fork_rng(devices=[]):  # a random init is made from the seed in key
                    if ck is None:
                        torch.manual_seed(self.key)
                    m = build_model(self.label, scale, **self.model_kwargs)
                if ck is not None:
                    m = load_weights(m, ck)
        self._built[scale] = m
        return m

    def identity(self, scale: int) -> dict:
        tag = {} if self.key is None else {"key": self.key}
        if self.kind == "classical":
            return {"kind": "classical", "name": self.label, **tag}
        if self.kind == "learned":
            return {"kind": "learned", "name": self.label, **tag, **_learned_identity(self.build(scale))}
        if self.kind == "module":
            m = self.module
            ident = {"kind": "module", "key": self.key,
                     "class": f"{type(m).__module__}.{type(m).__qualname__}", "state_sha256": state_sha256(m)}
            if hasattr(m, "cache_path") and hasattr(m, "settings"):
                ident.update(_learned_identity(m))
            return ident
        ck = self._checkpoint(scale)
        ident = {"kind": "model", "name": self.label, "config": self.config}
        if ck is None:
            return {**ident, "init": "random", "seed": self.key}
        return {**ident, "checkpoint_sha256": file_sha256(ck), **tag}


# ------------------------------------------------------------------ storage

def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", str(text)).strip("_") or "method"


def _norm(obj) -> dict:
    """``obj`` as it reads back from JSON (tuples become lists, paths strings)."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def _digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _read_sidecar(path: Path) -> dict | None:
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _locate(folder: Path, stem: str, key: dict) -> Path:
    """The CSV path of ``key``: ``<stem>_<hash12>.csv`` unless that name holds another key."""
    digest = _digest(key)
    for n in (12, 64):
        csv = folder / f"{stem}_{digest[:n]}.csv"
        meta = _read_sidecar(csv.with_suffix(".json"))
        if meta is None or meta.get("key") == key:
            return csv
    return csv  # the full hash is taken by another key only if SHA-256 collides


def _parse(text: str) -> pd.DataFrame:
    df = pd.read_csv(io.StringIO(text), dtype=_DTYPES, keep_default_na=False)
    return df[list(COLUMNS)]


def _read_part(csv: Path, key: dict) -> tuple[pd.DataFrame, dict] | None:
    """The rows of ``csv`` if its sidecar holds ``key`` and the CSV's hash, else None."""
    meta = _read_sidecar(csv.with_suffix(".json"))
    if meta is None or meta.get("key") != key or not csv.is_file():
        return None
    text = csv.read_text()
    if hashlib.sha256(text.encode()).hexdigest() != meta.get("csv_sha256"):
        return None
    return _parse(text), meta


def _write_part(csv: Path, df: pd.DataFrame, key: dict, meta: dict) -> pd.DataFrame:
    text = df.reindex(columns=list(COLUMNS)).to_csv(index=False)
    atomic_write_text(csv, text)
    write_json(csv.with_suffix(".json"), {"key": key, "csv_sha256": hashlib.sha256(text.encode()).hexdigest(),
                                          **meta})
    return _parse(text)


# ------------------------------------------------------------------ the entry point

def _portable(path) -> str | None:
    """A checkpoint as results may share it (``$SRLIB_WEIGHTS_DIR/...``, ``results/...``), or None."""
    return None if path is None else portable_path(path)


def evaluate_cached(method, datasets: Iterable[str] | str, scales: Iterable[int] | int, *, profile: str,
                    checkpoint=None, module: nn.Module | None = None, name: str | None = None,
                    key: str | int | None = None, max_images: int | None = None, gray_rule: str = "rgb",
                    round_y: bool = True, progress: bool = False, cache_dir=None, root=None,
                    device: str = "cpu", model_kwargs: dict | None = None,
                    cached_only: bool = False) -> pd.DataFrame:
    """:func:`srlib.evaluate.evaluate` with each (dataset, scale) part cached on disk by content.

    Args:
        method: a classical method or registered model name (``list_upscalers()``); with
            ``module=`` a label naming the folder the rows are kept in.
        checkpoint: for a registered model: a file, ``{scale: file}``, or ``'official'`` (a zoo
            model's published weights from ``SRLIB_WEIGHTS_DIR``, hash-checked).
        module: an in-memory ``nn.Module`` (e.g. a pruned model); needs ``key``.
        key: with ``module=``, a string naming what it is; for a registered model without a
            checkpoint, the int seed of its random initialisation; with a checkpoint, an extra tag.
        name: the ``model`` column (default ``method``); not part of the key.
        cache_dir: where the ``<method>/`` folders go (default ``results/<profile>/evaluations``).
        model_kwargs: configuration overrides of a registered model (in the key).
        profile, max_images, gray_rule, round_y, progress, root, device: as for ``evaluate``
            (``profile`` also picks the learned classical methods' budget and the default folder).
        cached_only: read what is cached and compute nothing; a missing part is left out (its
            ``cache`` entry says ``"missing"``).

    Returns the per-image rows of ``evaluate``, with ``attrs`` gray_rule, round_y, data_source,
    device, plus ``cache`` (``{"<dataset> x<s>": "read" | "computed" | "missing"}``), ``cached`` (every part
    read) and ``cache_files``.
    """
    from .paths import results_dir
    from .provenance import provenance

    if gray_rule not in GRAY_RULES:
        raise ValueError(f"gray_rule must be one of {GRAY_RULES}, got {gray_rule!r}")
    datasets = [datasets] if isinstance(datasets, str) else list(datasets)
    scales = [scales] if isinstance(scales, int) else [int(s) for s in scales]
    spec = _Method(method, profile, checkpoint, module, key, model_kwargs)
    folder = Path(cache_dir) if cache_dir is not None else results_dir(profile) / "evaluations"
    folder = folder / _slug(spec.label)
    protocol = {"version": PROTOCOL_VERSION, "gray_rule": gray_rule, "round_y": bool(round_y),
                "max_images": max_images, "device": torch.device(device).type}

    def key_of(ident: dict, ds: str, s: int) -> dict:
        return _norm({"method": ident, "protocol": protocol, "dataset": display_name(ds),
                      "dataset_fingerprint": dataset_fingerprint(ds, root), "scale": s})

    parts, status, files, sources = [], {}, {}, {}
    for s in scales:
        ident = None
        for ds in datasets:
            ident = ident or spec.identity(s)
            k = key_of(ident, ds, s)
            stem = f"{_slug(display_name(ds))}_x{s}"
            csv = _locate(folder, stem, k)
            got = _read_part(csv, k)
            if got is not None:
                df, meta = got
                status[f"{display_name(ds)} x{s}"] = "read"
            elif cached_only:
                status[f"{display_name(ds)} x{s}"] = "missing"
                continue
            else:
                t0 = time.perf_counter()
                fresh = evaluate(spec.build(s), [ds], [s], name=spec.label, root=root, gray_rule=gray_rule,
                                 max_images=max_images, device=device, progress=progress, round_y=round_y,
                                 profile=profile)
                wall = time.perf_counter() - t0
                k2 = key_of(ident, ds, s)  # evaluate may have downloaded the set meanwhile
                if k2 != k:
                    k, csv = k2, _locate(folder, stem, k2)
                meta = {"method": spec.label, "dataset": display_name(ds), "scale": s, "rows": len(fresh),
                        "data_source": fresh.attrs["data_source"], "eval_seconds": round(wall, 3),
                        "threads": torch.get_num_threads(),
                        "provenance": provenance(profile, data_source=fresh.attrs["data_source"], device=device,
                                                 checkpoint=_portable(spec._checkpoint(s)) if spec.kind == "model"
                                                 else None)}
                df = _write_part(csv, fresh, k, meta)
                status[f"{display_name(ds)} x{s}"] = "computed"
            files[f"{display_name(ds)} x{s}"] = str(csv)
            sources.update(meta["data_source"])
            parts.append(df)
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(COLUMNS))
    out["model"] = name or spec.label
    out.attrs = {"gray_rule": gray_rule, "round_y": round_y, "data_source": sources, "device": device,
                 "cache": status, "cached": all(v == "read" for v in status.values()), "cache_files": files}
    return out
