"""Runs travel: a study's runs packed on one machine (a GPU box) and unpacked on another (a laptop).

:func:`export_study` writes one ``.tar.gz`` holding every run of a study that has something to
carry (finished, diverged, or partial: a partial run resumes wherever it lands), the runs its arms
start from (:class:`~srlib.studies.RunRef`, possibly of another study), and a ``manifest.json``:
the study, the profile, the srlib version and commit, and per run its arm, seed, identity hash
and state, and per file its SHA-256 and size. Each run folder goes in whole (``run.json``,
``checkpoints/best.pt`` and ``last.pt``, ``log.csv``, the cached evaluations under
``evaluations/``), minus the lock file and temporary files; member names are relative to
``results/<profile>/`` (``runs/<study>/<arm>-<hash8>/...``), so no machine path travels.

:func:`import_runs` checks the archive before it writes anything (member names: no absolute
paths, no ``..``, only regular files listed in the manifest; every SHA-256), unpacks it into a
staging folder beside the runs and renames each run folder into place. A run that is already
there with the same files is left alone; one that differs is refused, all runs with it, unless
``force`` (then the archive's copy replaces it). It then says, per run, whether this checkout
computes the same identity for that arm, i.e. whether :meth:`Study.run` and the notebooks
will show the run rather than train it again (a different code version or training set gives
another identity).

Readings chosen: tar.gz rather than zip (keeps file modes, streams, in the standard library);
the cached evaluations travel as they are, and :meth:`Study.table` reads an evaluation made on
the other device type (cuda on the GPU box, cpu here) rather than compute it again.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

import pandas as pd

from ..fileio import atomic_path
from ..paths import project_root, results_dir
from ..profiles import get_profile
from .core import IDENTITY_VERSION, RunRef, Study, _read_json, _run_lock, identity_hash

FORMAT = "srlib-study-runs"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_CHUNK = 1 << 20
_RUN_DIR = re.compile(r"^runs/[A-Za-z0-9][A-Za-z0-9._+-]*/[A-Za-z0-9][A-Za-z0-9._+-]*-[0-9a-f]{8}$")


class TransferError(ValueError):
    """An archive that cannot be imported as it is (damaged, unsafe, or clashing with runs here)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _run_files(run: Path) -> list[Path]:
    """The files of a run folder that travel: all regular files except dot-files (``.lock``,
    temporary files of atomic writes), sorted."""
    return sorted(p for p in run.rglob("*") if p.is_file() and not p.is_symlink()
                  and not any(part.startswith(".") for part in p.relative_to(run).parts))


def _runs_of(study: Study) -> list[dict]:
    """The runs an export of ``study`` carries: its arms' runs with something in them, then the
    runs its arms start from (other studies' too)."""
    out, seen = [], set()

    def add(s: Study, arm, dependency: bool):
        st = s.state(arm)
        if st["state"] not in ("finished", "diverged", "partial") or st["run_dir"] in seen:
            return
        seen.add(st["run_dir"])
        out.append({"study": s.name, "arm": arm.name, "seed": arm.seed, "identity_hash": st["identity"],
                    "state": st["state"], "status": st["status"], "dependency": dependency,
                    "path": st["run_dir"]})

    for a in study.arms:
        add(study, a, False)
    for a in study.arms:
        if isinstance(a.init, RunRef):
            dep_study, dep = study._ref(a.init)
            add(dep_study, dep, True)
    return out


def _versions() -> tuple[str, str]:
    import srlib
    from ..provenance import git_commit

    return srlib.__version__, git_commit()


def default_archive_name(study: Study) -> str:
    return f"{study.name}-{study.profile_name}-runs.tar.gz"


def export_study(study: Study, out: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Write ``study``'s runs into one ``.tar.gz`` (atomically); returns its path.

    Args:
        study: the study (its profile decides which ``results/<profile>/runs`` are read).
        out: the archive (default ``results/exports/<study>-<profile>-runs.tar.gz``, beside the
            results and ignored by git like them).
        force: replace an existing ``out``.

    Raises ``FileNotFoundError`` when the study has no run to carry (naming the command that
    trains it), ``FileExistsError`` for an existing ``out`` without ``force``, ``RuntimeError``
    when a run is being trained right now (its lock is held while it is read).
    """
    out = Path(out) if out is not None else project_root() / "results" / "exports" / default_archive_name(study)
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists; pass --force (force=True) to replace it, or --out another file")
    runs = _runs_of(study)
    if not runs:
        raise FileNotFoundError(f"study {study.name!r} has no runs under {study.study_dir} to export; "
                                f"train it first: srlib study run {study.name} --profile {study.profile_name}")
    root = results_dir(study.profile_name)
    version, commit = _versions()
    with contextlib.ExitStack() as locks:
        files = {}
        for r in runs:
            try:
                locks.enter_context(_run_lock(r["path"]))  # nobody trains it while it is read
            except RuntimeError:
                raise RuntimeError(f"{r['path']} is being trained right now; export the study when its "
                                   "training has finished (or stopped)") from None
            for f in _run_files(r["path"]):
                files[f.relative_to(root).as_posix()] = {"sha256": _sha256(f), "size": f.stat().st_size}
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "study": study.name,
            "profile": study.profile_name, "identity_version": IDENTITY_VERSION, "srlib_version": version,
            "commit": commit, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "runs": [{**{k: v for k, v in r.items() if k != "path"},
                      "dir": r["path"].relative_to(root).as_posix()} for r in runs],
            "files": files,
        }
        with atomic_path(out) as tmp, tarfile.open(tmp, "w:gz") as tar:
            data = (json.dumps(manifest, indent=2) + "\n").encode()
            tar.addfile(_info(MANIFEST, len(data)), io.BytesIO(data))
            for name, meta in files.items():
                path = root / name
                info = _info(name, meta["size"], mtime=path.stat().st_mtime)
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
    return out


def _info(name: str, size: int, mtime: float | None = None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.type = size, 0o644, tarfile.REGTYPE
    info.mtime = int(mtime if mtime is not None else _dt.datetime.now().timestamp())
    return info


# ------------------------------------------------------------------ import

def _safe_name(name: str) -> str:
    """A member name as a relative POSIX path inside the archive's root, or ``TransferError``."""
    p = PurePosixPath(name)
    if (not name or name.startswith(("/", "\\")) or "\\" in name or re.match(r"^[A-Za-z]:", name)
            or any(part in ("..", ".", "") for part in name.split("/")) or p.is_absolute()):
        raise TransferError(f"archive member {name!r} is an absolute path or leaves the results folder "
                            "(..); refusing to import it")
    return p.as_posix()


def read_manifest(archive: str | os.PathLike) -> dict:
    """The manifest of an archive written by :func:`export_study` (checked for its format)."""
    with _open(archive) as tar:
        return _manifest(tar)


@contextlib.contextmanager
def _open(archive):
    archive = Path(archive)
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist; write one with "
                                "`srlib study export NAME --profile P`")
    try:
        tar = tarfile.open(archive, "r:*")
    except tarfile.TarError as err:
        raise TransferError(f"{archive} is not a tar archive written by `srlib study export` ({err})") from None
    with tar:
        yield tar


def _manifest(tar: tarfile.TarFile) -> dict:
    try:
        fh = tar.extractfile(MANIFEST)
        manifest = json.loads(fh.read()) if fh is not None else None
    except (KeyError, ValueError, tarfile.TarError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise TransferError(f"{tar.name}: no valid {MANIFEST}; is it an archive of `srlib study export`?")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise TransferError(f"{tar.name}: archive format version {manifest.get('format_version')}, this srlib "
                            f"reads version {FORMAT_VERSION}; import it with the srlib that wrote it "
                            f"({manifest.get('srlib_version')}, commit {manifest.get('commit')})")
    runs, files = manifest.get("runs"), manifest.get("files")
    if not isinstance(runs, list) or not isinstance(files, dict):
        raise TransferError(f"{tar.name}: {MANIFEST} lacks its runs or files")
    dirs = [r.get("dir", "") for r in runs]
    for d in dirs:
        if not _RUN_DIR.match(str(d)):
            raise TransferError(f"{tar.name}: run folder {d!r} in {MANIFEST} is not runs/<study>/<arm>-<hash8>")
    for name in files:
        _safe_name(name)
        if not any(name.startswith(d + "/") for d in dirs):
            raise TransferError(f"{tar.name}: file {name!r} in {MANIFEST} belongs to no run of the archive")
    return manifest


def _check_members(tar: tarfile.TarFile, manifest: dict) -> list[tarfile.TarInfo]:
    """The archive's file members, after checking each name and type against the manifest."""
    members, names = [], set()
    for m in tar.getmembers():
        name = _safe_name(m.name)
        if m.isdir():
            continue
        if not m.isfile():
            raise TransferError(f"archive member {m.name!r} is not a regular file (a link or device); "
                                "refusing to import the archive")
        if name == MANIFEST:
            continue
        if name not in manifest["files"]:
            raise TransferError(f"archive member {name!r} is not listed in {MANIFEST}; refusing to import")
        if name in names:
            raise TransferError(f"archive member {name!r} appears twice; refusing to import")
        names.add(name)
        members.append(m)
    missing = sorted(set(manifest["files"]) - names)
    if missing:
        raise TransferError(f"the archive lacks {len(missing)} file(s) its manifest lists, e.g. {missing[0]}; "
                            "it is truncated: export it again")
    return members


def _extract(tar: tarfile.TarFile, members: list, manifest: dict, staging: Path) -> None:
    """Write each member under ``staging``, checking its SHA-256 against the manifest."""
    for m in members:
        name, want = m.name, manifest["files"][_safe_name(m.name)]["sha256"]
        dst = staging / _safe_name(name)
        dst.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        src = tar.extractfile(m)
        with open(dst, "wb") as fh:
            for block in iter(lambda: src.read(_CHUNK), b""):
                h.update(block)
                fh.write(block)
        if h.hexdigest() != want:
            raise TransferError(f"{name}: its SHA-256 differs from the manifest's; the archive is damaged, "
                                "export it again")
        os.utime(dst, (m.mtime, m.mtime))


def _listing(run: Path) -> dict:
    return {f.relative_to(run).as_posix(): _sha256(f) for f in _run_files(run)}


def _plan(run: dict, staged: Path, target: Path) -> tuple[str, list]:
    """``(action, differing files)`` for one run: add / identical / merge / conflict."""
    rec = _read_json(staged / "run.json")
    if rec.get("identity_hash") not in (None, run["identity_hash"]):
        raise TransferError(f"{run['dir']}/run.json names identity {rec['identity_hash'][:12]}, the manifest "
                            f"{run['identity_hash'][:12]}; the archive is inconsistent")
    if not target.exists():
        return "add", []
    mine, theirs = _listing(target), _listing(staged)
    differ = sorted(k for k in theirs if k in mine and mine[k] != theirs[k])
    if differ:
        return "conflict", differ
    return ("identical" if set(theirs) <= set(mine) else "merge"), []


def _local_state(run: Path) -> str:
    rec = _read_json(run / "run.json")
    return str(rec.get("status") or "no run.json")


def _swap(staged: Path, target: Path, keep_local: bool) -> None:
    """Put ``staged`` at ``target``: renamed into place, an existing folder renamed away first
    (with ``keep_local`` its files the archive lacks are copied over beforehand)."""
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staged, target)  # fails rather than merge should a folder appear meanwhile
        return
    with _run_lock(target):  # refuses a run being trained here
        if keep_local:
            for f in _run_files(target):
                rel = f.relative_to(target)
                if not (staged / rel).exists():
                    (staged / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, staged / rel)
        trash = target.with_name(f".{target.name}.replaced-{os.getpid()}")
        os.rename(target, trash)
        os.rename(staged, target)
    shutil.rmtree(trash, ignore_errors=True)


def _local_identity(run: dict, profile: str, studies: dict) -> tuple[dict | None, str]:
    """This checkout's identity for a run's arm, and why there is none."""
    from .registry import get_study

    try:
        study = studies.get(run["study"]) or get_study(run["study"], profile)
    except KeyError:
        return None, f"study {run['study']!r} is not registered in this checkout"
    try:
        return study.identity(study.arm(run["arm"], run["seed"])), ""
    except (KeyError, FileNotFoundError) as err:
        return None, str(err.args[0] if err.args else err)


def _why_not_used(local: dict, imported: dict) -> str:
    """Which parts of the identity differ between this checkout and an imported run."""
    parts = sorted(k for k in set(local) | set(imported) if local.get(k) != imported.get(k))
    hint = {"data": "the training or validation images differ here (or are missing, so the fallback "
                    "images stand in: fetch the training set)",
            "version": "srlib's IDENTITY_VERSION differs", "model": "the model's code defaults differ",
            "train": "the training recipe differs", "init": "its initial checkpoint differs"}
    return (f"this checkout computes identity {identity_hash(local)[:8]} for this arm, so the study would train "
            f"it again; differing: " + "; ".join(f"{p} ({hint.get(p, 'changed')})" for p in parts))


def import_runs(archive: str | os.PathLike, force: bool = False, profile: str | None = None,
                studies: list[Study] | tuple = ()) -> pd.DataFrame:
    """Import an archive of :func:`export_study` into ``results/<profile>/runs``.

    Args:
        archive: the ``.tar.gz``.
        force: replace runs here whose files differ from the archive's.
        profile: the profile expected (default: the archive's); another one is an error.
        studies: :class:`Study` objects to check identities against for studies that are not
            registered (the registry is asked otherwise).

    Returns one row per run: study, arm, seed, identity (8 digits), state, action (``added``,
    ``identical``, ``merged``: files the run lacked were added, ``replaced``), ``used_here``
    (this checkout computes the same identity: the notebooks show the run without training it;
    False: they would train it again; None: unknown) and ``note``, and ``run_dir`` (relative to
    the project's results folder). Raises :class:`TransferError` (nothing written) for an
    unsafe, damaged or clashing archive.
    """
    with _open(archive) as tar:
        manifest = _manifest(tar)
        prof = manifest["profile"]
        if profile is not None and get_profile(profile).name != prof:
            raise TransferError(f"{archive} holds runs of profile {prof!r}, not {profile!r}; "
                                f"import it with --profile {prof}")
        members = _check_members(tar, manifest)
        root = results_dir(prof)
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".import-", dir=root))
        try:
            _extract(tar, members, manifest, staging)
            plans = [(r, *_plan(r, staging / r["dir"], root / r["dir"])) for r in manifest["runs"]]
            clashes = [(r, d) for r, action, d in plans if action == "conflict"]
            if clashes and not force:
                lines = "\n".join(f"- results/{prof}/{r['dir']} ({_local_state(root / r['dir'])} here, "
                                  f"{r['state']} in the archive): {', '.join(d[:6])}" + (" ..." if len(d) > 6 else "")
                                  for r, d in clashes)
                raise TransferError(f"{len(clashes)} run(s) here differ from the archive's copy (files listed); "
                                    f"nothing was imported. Pass --force (force=True) to replace them with "
                                    f"the archive's:\n{lines}")
            done = {"add": "added", "identical": "identical", "merge": "merged", "conflict": "replaced"}
            for r, action, _ in plans:
                if action != "identical":
                    _swap(staging / r["dir"], root / r["dir"], keep_local=action == "merge")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    by_name = {s.name: s for s in studies}
    rows = []
    for r, action, _ in plans:
        local, why = _local_identity(r, prof, by_name)
        used = None if local is None else identity_hash(local) == r["identity_hash"]
        if used is False:
            why = _why_not_used(local, _read_json(root / r["dir"] / "run.json").get("identity") or {})
        rows.append({"study": r["study"], "arm": r["arm"], "seed": r["seed"], "identity": r["identity_hash"][:8],
                     "state": r["state"], "action": done[action], "used_here": used, "note": why,
                     "run_dir": f"results/{prof}/{r['dir']}"})
    return pd.DataFrame(rows)
