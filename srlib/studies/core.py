"""Studies: named sets of training runs, run once, resumed, run side by side, turned into tables.

A :class:`Study` is a name, a profile and a set of :class:`Arm` s (a registered model at a scale,
model keyword overrides, training overrides, an optional initial checkpoint, a seed).
:meth:`Study.run` trains each arm unless a finished run with the same *identity* exists, resumes
an interrupted one from its ``last.pt``, evaluates each finished arm's ``best.pt`` by the
protocol on the study's benchmarks (cached beside the run by :func:`srlib.evalcache.evaluate_cached`)
and returns a tidy table.

Identity (:meth:`Study.identity`) is a SHA-256 over what the trained weights depend on:

- the model: registered name, class, scale, and every keyword of the class's constructor as it
  resolves (registry configuration, updated by ``model_kwargs``, over the class's own defaults,
  :func:`resolved_model_config`), so a default that changes in the code changes the key;
- the training configuration: ``TrainConfig.to_dict()`` after the profile, the model's registry
  overrides and the arm's overrides, *minus* :data:`RUNTIME_FIELDS`. The whole dict minus the
  exclusions is hashed, so a field added to ``TrainConfig`` enters the key by itself. The
  *requested* precision is part of it (``'auto'``); the resolved one (bf16 or fp32 depends on
  the CPU) is recorded in ``run.json`` and the table, as are the commit and library versions;
- the training data: the content fingerprint of the profile's training set
  (:func:`srlib.data.fingerprint.dataset_fingerprint`) and the patch settings (LR patch size,
  epoch length, seed, augmentation);
- the validation selection (the dataset and the image names that pick ``best.pt``);
- the SHA-256 of the initial checkpoint's content, if any; the seed.

Runs live in ``results/<profile>/runs/<study>/<arm>-<hash8>/`` (``run.json``,
``checkpoints/``, ``log.csv``, ``evaluations/``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import inspect
import json
import math
import os
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from ..complexity import count_params, multi_adds
from ..data.catalog import DatasetNotFoundError, display_name, download_dataset, find_dataset
from ..data.fingerprint import dataset_fingerprint, file_sha256
from ..evalcache import evaluate_cached
from ..models import build_model, get_entry, load_weights
from ..paths import results_dir
from ..profiles import Profile, get_profile
from ..train import TrainConfig, TrainingDiverged
from ..train.recipes import model_config, patch_settings, train_sr, validation_split
from .ledger import record_run
from .executors import FuturesExecutor, ProcessExecutor, make_executor
from .stats import bootstrap_delta, seed_spread, within_noise

#: bump when what the identity covers changes, or when a model's, a loss's or the trainer's code
#: changes what a run computes: every run is then retrained. (A model class's own defaults are
#: hashed since version 2, :func:`resolved_model_config`; code inside the class is not.)
IDENTITY_VERSION = 2

#: TrainConfig fields that change how a run executes, not what it computes, so they are left out
#: of the identity: threads and device (thread count changes float sums by ~1e-7, the same
#: size as a device change), progress bars, data-loader workers, log / checkpoint / validation
#: cadence (the issue's list), and ``compile``: torch.compile fuses kernels, which changes
#: rounding like a thread count does, and a run compiled on a GPU box must resume uncompiled on
#: a laptop rather than retrain. (Validation cadence does decide which step ``best.pt`` holds;
#: the step is in ``run.json``.)
RUNTIME_FIELDS = ("threads", "device", "progress", "num_workers", "log_every", "checkpoint_every",
                  "validate_every", "compile")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")

TABLE_COLUMNS = ("study", "arm", "seed", "model", "dataset", "scale", "psnr", "ssim", "n_images",
                 "params", "multi_adds_G", "steps", "train_seconds", "precision", "status",
                 "checkpoint", "identity", "run_dir")


class StudyError(RuntimeError):
    """One or more arms of a study failed (not diverged: an error); the message names them."""


@dataclass(frozen=True)
class RunRef:
    """Another study's arm run as an initial checkpoint (``study=None``: this study).

    ``checkpoint`` is ``'best'`` (``best.pt``) or ``'last'``; ``seed=None`` is the profile's seed.
    The referenced arm is trained first when it has not finished.
    """

    study: str | None
    arm: str
    seed: int | None = None
    checkpoint: str = "best"

    def __post_init__(self):
        if self.checkpoint not in ("best", "last"):
            raise ValueError(f"RunRef.checkpoint must be 'best' or 'last', got {self.checkpoint!r}")


@dataclass(frozen=True)
class Arm:
    """One training run of a study.

    Args:
        name: the arm's name (letters, digits, ``._+-``); with ``seed`` it names the run.
        model: a registered model name (``srlib.models.list_models()``).
        scale: the upscaling factor.
        model_kwargs: overrides of the model's registry configuration.
        train: :class:`~srlib.train.TrainConfig` overrides, over the profile's recipe and the
            model's registry ``train`` overrides (e.g. ``{"schedule": "cosine_restarts"}``).
        init: an initial checkpoint: a weights file, or a :class:`RunRef` to another arm's run.
            Loaded by key where shapes match; optimiser and schedule restart
            (:func:`srlib.train.recipes.load_init_checkpoint`).
        seed: the run's seed (model initialisation, data order, crops); None: the profile's.
    """

    name: str
    model: str
    scale: int
    model_kwargs: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    init: str | Path | RunRef | None = None
    seed: int | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"Arm name {self.name!r}: use letters, digits and ._+- (it names a folder)")
        entry = get_entry(self.model)  # KeyError listing the registered models
        if self.scale not in entry.scales:
            raise ValueError(f"Arm {self.name!r}: model {self.model!r} has no x{self.scale}; "
                             f"it supports {', '.join(f'x{s}' for s in entry.scales)}")
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(self.train) - known)
        if unknown:
            raise ValueError(f"Arm {self.name!r}: unknown TrainConfig keys {unknown} in train=; "
                             f"known keys: {sorted(known)}")
        if "seed" in self.train:
            raise ValueError(f"Arm {self.name!r}: give the seed as Arm(seed=...), not in train=")
        try:
            resolved_model_config(self.model, self.scale, self.model_kwargs)
        except TypeError as err:
            raise ValueError(f"Arm {self.name!r}: {err}") from None

    @property
    def label(self) -> str:
        return f"{self.name} (seed {self.seed})"


def _norm(obj):
    """``obj`` as it reads back from JSON (tuples become lists, paths strings)."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def training_key(config: TrainConfig) -> dict:
    """``config.to_dict()`` without :data:`RUNTIME_FIELDS`: the training part of an identity."""
    return {k: v for k, v in config.to_dict().items() if k not in RUNTIME_FIELDS}


def resolved_model_config(model: str, scale: int, model_kwargs: dict | None = None) -> dict:
    """Every constructor keyword of registered ``model`` at ``scale`` as it resolves: the class's
    defaults, under the registry configuration, under ``model_kwargs`` (``scale`` left out).

    Raises ``TypeError`` naming the model for a keyword its class does not take.
    """
    entry = get_entry(model)
    cls = getattr(importlib.import_module(entry.module), entry.cls)
    try:
        bound = inspect.signature(cls).bind(scale=scale, **{**entry.config, **(model_kwargs or {})})
    except TypeError as err:
        raise TypeError(f"model {model!r} ({entry.module}.{entry.cls}): {err}; "
                        f"model_kwargs were {sorted(model_kwargs or {})}") from None
    bound.apply_defaults()
    args = dict(bound.arguments)
    args.pop("scale", None)
    args.update(args.pop("kwargs", None) or {})
    return args


def identity_hash(identity: dict) -> str:
    """SHA-256 (hex) of an identity dict in canonical JSON."""
    return hashlib.sha256(json.dumps(_norm(identity), sort_keys=True).encode()).hexdigest()


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


_COMPLEXITY: dict = {}


def _complexity(arm: Arm) -> tuple[int, float]:
    """(parameters, Multi-Adds in G at a 1280x720 output) of an arm's model, memoised."""
    key = (arm.model, arm.scale, json.dumps(_norm(arm.model_kwargs), sort_keys=True))
    if key not in _COMPLEXITY:
        with torch.random.fork_rng(devices=[]):
            model = build_model(arm.model, arm.scale, **arm.model_kwargs)
        try:
            ma = multi_adds(model, arm.scale) / 1e9
        except Exception:  # a model that cannot run on the meta device: no count, say so by NaN
            ma = float("nan")
        _COMPLEXITY[key] = (count_params(model), ma)
    return _COMPLEXITY[key]


@dataclass
class Study:
    """A named set of training runs under a profile.

    Args:
        name: the study's name (a folder under ``results/<profile>/runs/``).
        profile: a profile name or :class:`~srlib.profiles.Profile`.
        arms: the :class:`Arm` s; (name, seed) pairs are unique, so two seeds of one arm are two
            ``Arm`` s with one name.
        baseline: the arm name :meth:`compare` measures the others against.
        datasets: the benchmarks to report (default: the profile's ``eval_datasets``).
        max_images: images per benchmark (default: the profile's ``eval_max_images``).
        description: one line for ``srlib study list``.
    """

    name: str
    profile: str | Profile
    arms: list
    baseline: str | None = None
    datasets: tuple | None = None
    max_images: int | None = None
    description: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"study name {self.name!r}: use letters, digits and ._+- (it names a folder)")
        self._p = get_profile(self.profile)
        self.arms = [a if a.seed is not None else dataclasses.replace(a, seed=self._p.seed)
                     for a in self.arms]
        seen = set()
        for a in self.arms:
            if (a.name, a.seed) in seen:
                raise ValueError(f"study {self.name!r}: arm {a.label} appears twice")
            seen.add((a.name, a.seed))
        if not self.arms:
            raise ValueError(f"study {self.name!r} has no arms")
        if self.baseline is not None and self.baseline not in {a.name for a in self.arms}:
            raise ValueError(f"study {self.name!r}: baseline {self.baseline!r} is not one of its arms "
                             f"({', '.join(sorted({a.name for a in self.arms}))})")
        self.datasets = tuple(self.datasets or self._p.eval_datasets)
        if self.max_images is None:
            self.max_images = self._p.eval_max_images
        self._data_key: dict | None = None

    # ---- where and who ------------------------------------------------------------------
    @property
    def profile_name(self) -> str:
        return self._p.name

    @property
    def study_dir(self) -> Path:
        return results_dir(self._p.name) / "runs" / self.name

    def arm(self, name: str, seed: int | None = None) -> Arm:
        """The arm called ``name`` (with ``seed``; None: the only one, or the profile's seed)."""
        found = [a for a in self.arms if a.name == name and (seed is None or a.seed == seed)]
        if seed is None and len(found) > 1:
            found = [a for a in found if a.seed == self._p.seed] or found[:1]
        if not found:
            raise KeyError(f"study {self.name!r} has no arm {name!r}" + (f" with seed {seed}" if seed is not None
                                                                       else "")
                           + f"; its arms: {', '.join(a.label for a in self.arms)}")
        return found[0]

    def _data(self) -> dict:
        """The data part of every arm's identity: training set content, validation selection.

        Where the training set is not on disk (runs imported from a GPU box onto a laptop
        without DIV2K, :mod:`srlib.studies.transfer`), the data part recorded by this study's
        newest finished run on that training set stands in, so those runs are found rather than
        retrained on the fallback images; training anything new still needs the data.
        """
        if self._data_key is None and not _on_disk(self._p.train_dataset):
            self._data_key = self._recorded_data()
        if self._data_key is None:
            _, val = validation_split(self._p)
            self._data_key = {
                "train_dataset": self._p.train_dataset,
                "train_fingerprint": dataset_fingerprint(self._p.train_dataset),
                "validation": {k: val[k] for k in ("dataset", "images", "held_out_of_training")},
            }
        return self._data_key

    def _recorded_data(self) -> dict | None:
        """The data part of the newest finished run's identity on this profile's training set."""
        found = []
        for rec_path in self.study_dir.glob("*/run.json"):
            data = _read_json(rec_path).get("identity", {}).get("data", {})
            if data.get("train_dataset") == self._p.train_dataset and \
                    str(_read_json(rec_path).get("status")) == "finished":
                found.append((rec_path.stat().st_mtime, rec_path))
        if not found:
            return None
        data = _read_json(max(found)[1])["identity"]["data"]
        return {k: data[k] for k in ("train_dataset", "train_fingerprint", "validation")}

    def _seeded(self, arm: Arm) -> Arm:
        """``arm`` with the profile's seed where it gives none."""
        return arm if arm.seed is not None else dataclasses.replace(arm, seed=self._p.seed)

    def config(self, arm: Arm) -> TrainConfig:
        """The arm's :class:`TrainConfig`: profile, model registry, arm overrides, seed."""
        arm = self._seeded(arm)
        return model_config(arm.model, self._p, **arm.train, seed=arm.seed)

    def init_path(self, arm: Arm) -> Path | None:
        """The arm's initial checkpoint file (a :class:`RunRef` resolved), or None."""
        if arm.init is None:
            return None
        if isinstance(arm.init, RunRef):
            study, dep = self._ref(arm.init)
            dep_state = study.state(dep)
            ck = study.run_dir(dep) / "checkpoints" / f"{arm.init.checkpoint}.pt"
            if arm.init.checkpoint == "best" and not ck.is_file():
                ck = _eval_checkpoint(study.run_dir(dep))  # a run that never validated: last.pt
            if dep_state["state"] != "finished" or not ck.is_file():
                raise FileNotFoundError(
                    f"arm {arm.label} of study {self.name!r} starts from {study.name}/{dep.label}, "
                    f"which is {dep_state['status']} (no usable {ck.name}); "
                    + ("it cannot be a starting point: fix that arm's recipe" if dep_state["state"] == "diverged"
                       else f"run study {study.name!r} first"))
            return ck
        path = Path(arm.init)
        if not path.is_file():
            raise FileNotFoundError(f"arm {arm.label} of study {self.name!r}: init checkpoint {path} "
                                    "does not exist")
        return path

    def _ref(self, ref: RunRef) -> tuple["Study", Arm]:
        from .registry import get_study

        study = self if ref.study in (None, self.name) else get_study(ref.study, self._p)
        return study, study.arm(ref.arm, ref.seed)

    def identity(self, arm: Arm) -> dict:
        """What the arm's trained weights depend on (see the module docstring)."""
        arm = self._seeded(arm)
        entry = get_entry(arm.model)
        config = self.config(arm)
        init = self.init_path(arm)
        return _norm({
            "version": IDENTITY_VERSION,
            "model": {"name": arm.model, "class": f"{entry.module}.{entry.cls}", "scale": arm.scale,
                      "config": resolved_model_config(arm.model, arm.scale, arm.model_kwargs)},
            "train": training_key(config),
            "data": {**self._data(), "patches": patch_settings(self._p, config)},
            "init": None if init is None else {"sha256": file_sha256(init)},
            "seed": arm.seed,
        })

    def identity_hash(self, arm: Arm) -> str:
        return identity_hash(self.identity(arm))

    def run_dir(self, arm: Arm) -> Path:
        """``results/<profile>/runs/<study>/<arm>-<hash8>``."""
        arm = self._seeded(arm)
        return self.study_dir / f"{arm.name}-{self.identity_hash(arm)[:8]}"

    # ---- state ----------------------------------------------------------------------------
    def state(self, arm: Arm) -> dict:
        """``{'state', 'step', 'identity', 'run_dir', 'precision', 'seconds', 'status'}`` of an arm.

        ``state`` is ``finished``, ``partial`` (a ``last.pt`` at ``step``), ``not started``,
        ``diverged`` or ``waiting`` (its initial checkpoint is another arm that has not finished).
        """
        arm = self._seeded(arm)
        try:
            h = self.identity_hash(arm)
        except FileNotFoundError as exc:
            if not isinstance(arm.init, RunRef):
                raise
            return {"state": "waiting", "step": 0, "identity": None, "run_dir": None, "precision": None,
                    "seconds": None, "status": f"waiting: {exc}"}
        run = self.study_dir / f"{arm.name}-{h[:8]}"
        rec = _read_json(run / "run.json")
        if rec.get("identity_hash") not in (None, h):
            raise RuntimeError(f"{run} holds a run of another identity ({rec['identity_hash'][:12]}, an "
                               f"8-digit prefix clash); move it away and rerun study {self.name!r}")
        status, last = str(rec.get("status", "")), run / "checkpoints" / "last.pt"
        out = {"identity": h, "run_dir": run, "precision": rec.get("precision"),
               "seconds": rec.get("train_seconds"), "status": status or "not started"}
        if status == "finished" and (last.is_file() or (run / "checkpoints" / "best.pt").is_file()):
            return {**out, "state": "finished", "step": rec.get("steps")}
        if status.startswith("diverged"):
            return {**out, "state": "diverged", "step": rec.get("steps")}
        if last.is_file():
            step = int(torch.load(last, map_location="cpu", weights_only=True)["step"])
            return {**out, "state": "partial", "step": step, "status": f"partial step {step}"}
        return {**out, "state": "not started", "step": 0}

    def status(self) -> pd.DataFrame:
        """Per arm: identity hash, state (finished / partial step k / not started / diverged),
        precision (resolved), train seconds, run folder. Trains and evaluates nothing."""
        rows = []
        for a in self.arms:
            st = self.state(a)
            rows.append({"arm": a.name, "seed": a.seed, "model": a.model, "scale": a.scale,
                         "identity": (st["identity"] or "?")[:8], "state": st["status"] if st["state"] in
                         ("partial", "diverged", "waiting") else st["state"], "step": st["step"],
                         "precision": st["precision"], "train_seconds": st["seconds"],
                         "run_dir": str(st["run_dir"] or "")})
        return pd.DataFrame(rows)

    # ---- running --------------------------------------------------------------------------
    def run(self, jobs: int = 1, threads: int | None = None, progress: bool | None = None,
            executor=None) -> pd.DataFrame:
        """Train what is missing, resume what was interrupted, evaluate; returns :meth:`table`.

        Args:
            jobs: arms trained at once. ``jobs > 1`` runs each arm in its own (spawned) process,
                with one GPU each by ``CUDA_VISIBLE_DEVICES`` where there are several, else one
                torch thread each (two processes with two threads each on two cores thrash).
            threads: torch threads per arm (default: 1 with ``jobs > 1``, else the profile's).
            progress: progress bars (default: on with ``jobs == 1``; always off in workers).
            executor: where the arms train (:mod:`srlib.studies.executors`): None (``jobs``
                decides: this process, or a process pool), ``'process'``, ``'slurm'`` /
                ``'local'`` (one submitit job per arm; ``jobs`` caps how many run at once), an
                executor object (``run(jobs)``, e.g. a configured
                :class:`~srlib.studies.executors.SubmititExecutor`), or any
                ``concurrent.futures``-style object with ``submit``.

        Arms that start from another arm's run (:class:`RunRef`) train after it: first every
        such dependency, then the rest, each batch through the same executor.
        A diverged arm (:class:`~srlib.train.TrainingDiverged`) is recorded in its ``run.json``
        as ``diverged at step k`` and shows NaN metrics; the other arms go on. Any other
        failure lets the other arms finish, then raises :class:`StudyError` naming the arms.
        With the same ``threads``, ``jobs=2`` gives the table of ``jobs=1`` bit for bit
        (``train_seconds`` and ``run_dir`` aside, when the two run in different folders).
        """
        jobs = max(1, int(jobs))
        runner = _executor(executor, jobs)
        if threads is None and isinstance(runner, ProcessExecutor) and not runner.gpus:
            threads = 1
        runtime = {"progress": (runner is None) if progress is None else bool(progress)}
        if threads is not None:
            runtime["threads"] = int(threads)
        self._data_key = None
        if any(self._needs_training(a, {}) for a in self.arms):  # imported runs need no data
            _ensure_training_data(self._p)
            self._data_key = None  # a download may have just replaced the fallback: fingerprint again
        before = {a.label: self.state(a)["state"] for a in self.arms}
        failures = _run_jobs(runner, self._dependency_jobs(runtime))
        todo = [ArmJob(self, a, runtime) for a in self.arms if self._needs_training(a, failures)]
        failures.update(_run_jobs(runner, todo))
        for a in self.arms:
            st = self.state(a)
            if st["state"] == "waiting" and a.label not in failures:
                failures[a.label] = st["status"]
        table = self.table(threads=threads)
        record_run(self.name, self._p.name, before, {a.label: self.state(a)["state"] for a in self.arms})
        if failures:
            raise StudyError(f"study {self.name!r} ({self._p.name}): {len(failures)} arm(s) failed; the "
                             "others finished. Fix and rerun (finished arms are kept):\n"
                             + "\n".join(f"- {k}: {v}" for k, v in failures.items()))
        return table

    def _needs_training(self, arm: Arm, failures: dict) -> bool:
        if isinstance(arm.init, RunRef) and any(k.startswith(f"{arm.init.arm} ") for k in failures):
            return False
        st = self.state(arm)
        return st["state"] in ("partial", "not started")

    def _dependency_jobs(self, runtime: dict) -> list:
        """Jobs for the unfinished arms (of this or another study) that other arms start from."""
        out, seen = [], set()
        for a in self.arms:
            if not isinstance(a.init, RunRef):
                continue
            study, dep = self._ref(a.init)
            if (study.name, dep.label) in seen or study.state(dep)["state"] not in ("partial", "not started"):
                continue
            seen.add((study.name, dep.label))
            if study is not self:
                _ensure_training_data(study._p)
            out.append(ArmJob(study, dep, runtime))
        return out

    # ---- tables ---------------------------------------------------------------------------
    def _evaluate(self, arm: Arm, st: dict) -> pd.DataFrame:
        """The arm's per-image evaluation, from the cache beside its run where possible.

        Readings chosen: the cache key names the device type (cuda and cpu round a few pixels
        differently). A run trained and evaluated on a GPU box and imported on a laptop
        (:mod:`srlib.studies.transfer`) is read with the evaluation it brought, rather than
        evaluated again; evaluation on this machine's device happens only when neither is cached.
        """
        ckpt = _eval_checkpoint(st["run_dir"])
        kw = dict(profile=self._p.name, checkpoint=ckpt, cache_dir=st["run_dir"] / "evaluations",
                  model_kwargs=arm.model_kwargs or None, max_images=self.max_images, progress=False)
        here = _eval_device()
        for device in (here, *({"cpu", "cuda"} - {here})):
            df = evaluate_cached(arm.model, list(self.datasets), [arm.scale], device=device, cached_only=True, **kw)
            if df.attrs["cache"] and df.attrs["cached"]:
                break
        else:
            df = evaluate_cached(arm.model, list(self.datasets), [arm.scale], device=here, **kw)
        df.attrs["checkpoint"] = ckpt.name
        return df

    def per_image(self, threads: int | None = None) -> pd.DataFrame:
        """Per-image rows of every finished arm: study, arm, seed, dataset, scale, image, psnr,
        ssim, seconds (evaluated once, then read from the cache beside each run)."""
        parts = []
        with _threads(threads):
            for a in self.arms:
                st = self.state(a)
                if st["state"] != "finished":
                    continue
                df = self._evaluate(a, st)
                parts.append(df.assign(study=self.name, arm=a.name, seed=a.seed)[
                    ["study", "arm", "seed", "dataset", "scale", "image", "psnr", "ssim", "seconds"]])
        cols = ["study", "arm", "seed", "dataset", "scale", "image", "psnr", "ssim", "seconds"]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)

    def table(self, threads: int | None = None) -> pd.DataFrame:
        """The tidy table of :meth:`run` without training anything: one row per arm, dataset
        and scale; arms that are not finished show NaN metrics and their state."""
        rows, sources, fallback = [], {}, []
        with _threads(threads):
            for a in self.arms:
                st = self.state(a)
                params, madds = _complexity(a)
                rec = _read_json(st["run_dir"] / "run.json") if st["run_dir"] else {}
                if (rec.get("data") or {}).get("fallback"):
                    fallback.append(a.label)
                base = {"study": self.name, "arm": a.name, "seed": a.seed, "model": a.model,
                        "params": params, "multi_adds_G": madds, "steps": rec.get("steps", st["step"]),
                        "train_seconds": rec.get("train_seconds", math.nan),
                        "precision": rec.get("precision"),
                        "status": st["status"] if st["state"] != "not started" else "not started",
                        "identity": (st["identity"] or "?")[:8], "run_dir": str(st["run_dir"] or "")}
                if st["state"] == "finished":
                    df = self._evaluate(a, st)
                    sources.update(df.attrs.get("data_source") or {})
                    means = df.groupby(["dataset", "scale"], sort=False).agg(
                        psnr=("psnr", "mean"), ssim=("ssim", "mean"), n_images=("image", "size")).reset_index()
                    for r in means.to_dict("records"):
                        rows.append({**base, **r, "checkpoint": df.attrs["checkpoint"]})
                else:
                    for ds in self.datasets:
                        rows.append({**base, "dataset": display_name(ds), "scale": a.scale, "psnr": math.nan,
                                     "ssim": math.nan, "n_images": 0, "checkpoint": None})
        out = pd.DataFrame(rows)
        out = out[[c for c in TABLE_COLUMNS if c in out.columns]]
        # for srlib.evaluate.table_title: evaluated or trained on the scikit-image fallback
        out.attrs.update(data_source=sources, trained_on_fallback=fallback)
        return out

    def load_model(self, name: str, seed: int | None = None, checkpoint: str = "best") -> torch.nn.Module:
        """Arm ``name``'s model with its finished run's ``best.pt`` (``checkpoint='last'``:
        ``last.pt``), in eval mode; raises :class:`StudyError` when the run has not finished."""
        arm = self._seeded(self.arm(name, seed))
        st = self.state(arm)
        if st["state"] != "finished":
            raise StudyError(f"study {self.name!r}, arm {arm.label}: {st['status']}; run the study first "
                             f"(srlib study run {self.name} --profile {self.profile_name})")
        ck = _eval_checkpoint(st["run_dir"]) if checkpoint == "best" else st["run_dir"] / "checkpoints" / "last.pt"
        return load_weights(build_model(arm.model, arm.scale, **arm.model_kwargs), ck).eval()

    def compare(self, baseline: str | None = None, n: int = 2000, seed: int = 0) -> pd.DataFrame:
        """Each arm's mean PSNR delta vs the baseline, per dataset and scale, with its noise.

        Per-image PSNR deltas are paired by image (each seed of the arm with the baseline's same
        seed, else the baseline's first seed) and averaged over seeds; ``ci_low``/``ci_high``
        are the paired bootstrap 95% interval (:func:`~srlib.studies.stats.bootstrap_delta`);
        ``seed_spread`` is the larger max - min of per-seed mean PSNR of the arm and of the
        baseline (NaN with one seed each); ``within_noise``: the interval contains 0 or
        ``|delta|`` is below the seed spread. Arms that have not finished are left out.
        """
        base = baseline or self.baseline
        if base is None:
            raise ValueError(f"study {self.name!r} has no baseline arm; pass compare(baseline='<arm>')")
        self.arm(base)  # KeyError naming the arms
        pi = self.per_image()
        cols = ["study", "arm", "baseline", "dataset", "scale", "seeds", "n_images", "psnr", "psnr_baseline",
                "delta", "ci_low", "ci_high", "seed_spread", "within_noise"]
        rows = []
        for (ds, s), grp in pi.groupby(["dataset", "scale"], sort=False):
            wide = grp.pivot_table(index="image", columns=["arm", "seed"], values="psnr")
            if base not in wide.columns.get_level_values(0):
                continue
            b = wide[base]
            for name in dict.fromkeys(grp.arm):
                if name == base:
                    continue
                a = wide[name]
                pairs = [(a[sd], b[sd] if sd in b.columns else b[b.columns[0]]) for sd in a.columns]
                av = sum(x for x, _ in pairs) / len(pairs)
                bv = sum(y for _, y in pairs) / len(pairs)
                ok = av.notna() & bv.notna()
                if ok.sum() >= 2:
                    boot = bootstrap_delta(av[ok].to_numpy(), bv[ok].to_numpy(), n=n, seed=seed)
                else:  # one image: no interval
                    boot = {"delta": float((av[ok] - bv[ok]).mean()), "low": math.nan, "high": math.nan,
                            "n_images": int(ok.sum())}
                spread = max((seed_spread(x.mean() for _, x in df.items()) for df in (a, b)),
                             key=lambda v: -math.inf if math.isnan(v) else v)
                rows.append({"study": self.name, "arm": name, "baseline": base, "dataset": ds, "scale": s,
                             "seeds": len(a.columns), "n_images": boot["n_images"], "psnr": float(av[ok].mean()),
                             "psnr_baseline": float(bv[ok].mean()), "delta": boot["delta"],
                             "ci_low": boot["low"], "ci_high": boot["high"], "seed_spread": spread,
                             "within_noise": within_noise(boot["low"], boot["high"], boot["delta"], spread)})
        return pd.DataFrame(rows, columns=cols)


# ---- helpers run in this process or in a worker ------------------------------------------

def _eval_checkpoint(run_dir: Path) -> Path:
    """``best.pt`` (the validated weights) or, when the run never validated, ``last.pt``."""
    best = run_dir / "checkpoints" / "best.pt"
    return best if best.is_file() else run_dir / "checkpoints" / "last.pt"


def _eval_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class _threads:
    """Context manager: ``torch.set_num_threads(n)`` inside, the old count restored after."""

    def __init__(self, n: int | None):
        self.n, self.old = n, None

    def __enter__(self):
        if self.n:
            self.old = torch.get_num_threads()
            torch.set_num_threads(int(self.n))

    def __exit__(self, *exc):
        if self.old is not None:
            torch.set_num_threads(self.old)


def _on_disk(name: str) -> bool:
    try:
        return find_dataset(name) is not None
    except (DatasetNotFoundError, OSError, KeyError):
        return False


def _ensure_training_data(p: Profile) -> None:
    """Download the training set where possible *before* its fingerprint enters an identity
    (else the identity would name the fallback images and the run train on the real ones)."""
    try:
        if find_dataset(p.train_dataset) is None:
            download_dataset(p.train_dataset)
    except (DatasetNotFoundError, OSError, KeyError):
        pass  # the fallback images stand in; their fingerprint says so


@contextlib.contextmanager
def _run_lock(run: Path):
    """Hold ``run/.lock`` (``flock``) while training, so that a study started again while an
    earlier one's worker still trains (e.g. after the parent was killed) does not write the
    same checkpoints; where ``fcntl`` is missing (Windows) no lock is taken."""
    run.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(run / ".lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RuntimeError(f"{run} is being trained by another process; wait for it to finish "
                               "(or end it) and run the study again") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _train_arm(study: Study, arm: Arm, runtime: dict) -> dict:
    """Train or resume one arm; returns ``{arm label: error}`` on failure, ``{}`` otherwise."""
    try:
        identity = study.identity(arm)
        h = identity_hash(identity)
        run = study.study_dir / f"{arm.name}-{h[:8]}"
        last = run / "checkpoints" / "last.pt"
        info = {"study": study.name, "arm": arm.name, "seed": arm.seed, "identity_hash": h,
                "identity": identity}
        with _run_lock(run):
            try:
                # no last.pt: start over in this run's folder (a best.pt left by a run killed
                # before its first checkpoint belongs to the same identity and is overwritten)
                train_sr(arm.model, arm.scale, study._p, out_dir=run, resume=last.is_file(),
                         force=not last.is_file(), model_kwargs=arm.model_kwargs, init_checkpoint=study.init_path(arm), run_info=info,
                         **{**arm.train, "seed": arm.seed, **runtime})
            except TrainingDiverged:
                pass  # train_sr recorded "diverged at step k" in run.json; the other arms go on
    except Exception as exc:
        return {arm.label: f"{type(exc).__name__}: {exc}"}
    return {}


class ArmJob:
    """One arm's training and evaluation as a picklable callable, for any executor.

    ``job(gpu)`` (in a fresh process, a cluster job): one GPU (``gpu`` a
    ``CUDA_VISIBLE_DEVICES`` entry) or ``threads`` torch threads (default on a SLURM job: its
    ``SLURM_CPUS_PER_TASK``), no progress bars; trains or resumes the arm, then evaluates it so
    the caller reads the evaluation from the cache. Returns ``{arm label: error}`` or ``{}``.
    :meth:`train` trains in the calling process and evaluates nothing.
    :meth:`checkpoint` is submitit's preemption hook: the same job is requeued and the arm
    resumes from its ``last.pt`` (the steps since that checkpoint are trained again).
    """

    def __init__(self, study: Study, arm: Arm, runtime: dict):
        self.study, self.arm, self.runtime = study, arm, dict(runtime)

    @property
    def label(self) -> str:
        return self.arm.label

    def train(self) -> dict:
        return _train_arm(self.study, self.arm, self.runtime)

    def __call__(self, gpu: str | None = None) -> dict:
        if gpu is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # before anything initialises CUDA here
        runtime = {**self.runtime, "progress": False}
        cpus = os.environ.get("SLURM_CPUS_PER_TASK", "")
        if not runtime.get("threads") and cpus.isdigit():
            runtime["threads"] = int(cpus)
        if runtime.get("threads"):
            torch.set_num_threads(int(runtime["threads"]))
        failed = _train_arm(self.study, self.arm, runtime)
        if failed:
            return failed
        try:
            st = self.study.state(self.arm)
            if st["state"] == "finished":
                self.study._evaluate(self.arm, st)
        except Exception:
            return {self.label: "evaluation failed: " + traceback.format_exc(limit=3)}
        return {}

    def checkpoint(self, *args, **kwargs):
        """submitit calls this when the job is preempted or times out: requeue the same job."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)

    def __repr__(self) -> str:
        return f"ArmJob({self.study.name!r}, {self.label!r})"


def _executor(executor, jobs: int):
    """:meth:`Study.run`'s ``executor`` argument as an object with ``run(jobs)``, or None (this
    process)."""
    if executor is None:
        return ProcessExecutor(jobs) if jobs > 1 else None
    if isinstance(executor, str):
        return make_executor(executor, jobs if executor == "process" or jobs > 1 else None)
    if callable(getattr(executor, "run", None)):
        return executor
    return FuturesExecutor(executor)  # TypeError naming what an executor must have


def _run_jobs(runner, jobs: list) -> dict:
    """Run ``jobs`` (:class:`ArmJob`) with ``runner``; a process pool with one job left, or no
    runner, trains in this process. Returns the failures."""
    failures: dict = {}
    if runner is None or (isinstance(runner, ProcessExecutor) and len(jobs) <= 1):
        for job in jobs:
            failures.update(job.train())
    elif jobs:
        failures.update(runner.run(jobs))
    return failures
