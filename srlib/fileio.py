"""Atomic file writes: the one place in srlib that renames a finished file into place.

Every result file, checkpoint, table, figure and log rewrite goes through here so that a reader
(or a run killed half-way) never sees a half-written file: the data go to a temporary file in
the target's folder (same file system, so the rename is atomic), are flushed and ``fsync``-ed,
and the temporary file is renamed over the target with :func:`os.replace`. On any error the
temporary file is removed and the target is left as it was. The temporary file is created with
mode ``0o666`` minus the umask, so the result has the permissions of a normally created file.

- :func:`atomic_path`: a context manager giving a temporary path, for code that writes the file
  itself (PIL, matplotlib, ``np.savez``);
- :func:`atomic_open`: the same, yielding an open file object;
- :func:`atomic_write_text`, :func:`atomic_write_bytes`, :func:`write_json`,
  :func:`atomic_torch_save`: the common cases in one call;
- :func:`move_into_place`: the final rename alone, for writers that manage their own temporary
  name (the catalog's resumable ``.part`` downloads and staging folders).

This module is the lowest layer of the library: it imports nothing from srlib.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import threading
from pathlib import Path
from typing import IO, Iterator


def _create_temp(path: Path, keep_suffix: bool) -> Path:
    """Create (exclusively) and return an empty temporary file beside ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".tmp" + (path.suffix if keep_suffix else "")
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file beside {path}; clean up its folder")


def move_into_place(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Rename a finished file (fsync-ed first) or folder ``src`` over ``dst``, atomically.

    For writers that keep their own temporary name, e.g. a resumable ``.part`` download or a
    staging folder; ``src`` and ``dst`` must be on the same file system.
    """
    src, dst = Path(src), Path(dst)
    if src.is_file():
        with open(src, "rb+") as fh:
            os.fsync(fh.fileno())
    os.replace(src, dst)
    return dst


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, keep_suffix: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path``; on normal exit it is fsync-ed and renamed to ``path``.

    ``keep_suffix=True`` ends the temporary name with ``path``'s suffix (for writers that pick
    the format from the extension, e.g. PIL or matplotlib). The temporary name starts with a dot
    and otherwise ends in ``.tmp``. On an exception the temporary file is removed::

        with atomic_path("figures/a.png", keep_suffix=True) as tmp:
            fig.savefig(tmp)
    """
    path = Path(path)
    tmp = _create_temp(path, keep_suffix)
    try:
        yield tmp
        move_into_place(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """``open(tmp, mode, **kwargs)`` on a temporary file renamed to ``path`` on normal exit.

    ``mode`` must write (``'w'``, ``'wb'``); text mode defaults to UTF-8.
    """
    if not any(c in mode for c in "wx") or "+" in mode:
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb' (a fresh file), got {mode!r}")
    mode = mode.replace("x", "w")
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return the path."""
    with atomic_open(path, "w") as fh:
        fh.write(text)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the path."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_json(path: str | os.PathLike, obj) -> Path:
    """``obj`` as indented JSON (non-JSON values via ``str``), written atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


#: the signals a scheduler sends to stop or preempt a job (SLURM: USR1/USR2 as set, then TERM)
DEFERRED_SIGNALS = tuple(getattr(signal, n) for n in ("SIGUSR1", "SIGUSR2", "SIGTERM") if hasattr(signal, n))


@contextlib.contextmanager
def deferred_signals(signals=DEFERRED_SIGNALS) -> Iterator[None]:
    """Hold ``signals`` while the block runs, then deliver them to their own handlers.

    A Python signal handler runs between bytecodes, also inside the file-writing callbacks of
    ``torch.save``; an exception it raises there (submitit's preemption handler requeues the job
    and exits) reaches torch's C++ writer, which reports ``unexpected pos`` instead, so the job
    fails rather than being requeued. Holding the signal for the few milliseconds of a checkpoint
    write lets the handler run after it, on a complete file. Only in the main thread (where
    Python runs handlers); elsewhere the block runs as is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    # a handler not installed from Python (getsignal: None) cannot be put back: leave it alone
    previous = {s: h for s in signals if (h := signal.getsignal(s)) is not None}
    for s in previous:
        signal.signal(s, lambda n, _f: held.append(n))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in dict.fromkeys(held):
            signal.raise_signal(s)


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (read back with ``weights_only=True``), with
    scheduler signals held until the file is in place (:func:`deferred_signals`)."""
    import torch

    with deferred_signals(), atomic_open(path, "wb") as fh:
        torch.save(obj, fh)
    return Path(path)
