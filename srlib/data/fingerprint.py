"""Content fingerprints of files, image folders and datasets, computed once and cached.

What a cached result (an evaluation, a training run) depends on is the *content* of its files,
not their paths: a checkpoint moved to another folder or a dataset copied elsewhere keeps its
fingerprint, a file changed in place gets a new one.

- :func:`file_sha256`: SHA-256 of a file, remembered by (resolved path, size, ``st_mtime_ns``,
  inode, ``st_ctime_ns``: a same-size copy with a preserved mtime is hashed again).
- :func:`folder_fingerprint`: a hash over (name, file SHA-256) of the image files directly in a
  folder (the files :func:`srlib.data.io.list_images` lists, which are what the datasets read),
  remembered by the folder's listing of (name, size, ``st_mtime_ns``, inode, ctime); a changed, added or
  removed image changes it, re-listing an unchanged folder reads nothing.
- :func:`dataset_fingerprint`: the folder fingerprint of a dataset's ``HR`` folder, resolved as
  :func:`srlib.data.datasets.load_hr_images` resolves it (without downloading); where that
  function would fall back to the images shipped with scikit-image, a hash of those images'
  decoded content prefixed ``skimage-fallback:``, so it never equals a real set's.

The memo lives in memory and in ``fingerprints.json`` under :func:`cache_dir`
(``SRLIB_CACHE_DIR``, default ``~/.cache/srlib``), never inside a data folder, which may be
read-only; an unwritable cache only costs re-hashing. The (size, mtime) shortcut is the one
``make`` and ``rsync`` use: a rewrite that keeps both size and nanosecond mtime goes unseen.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from .catalog import cache_root, find_dataset
from .io import list_images

FORMAT = 1  # bump when what is hashed changes; older memo entries are then ignored
_LOCK = threading.Lock()
_MEMO: dict | None = None  # {"files": {path: [size, mtime_ns, sha]}, "folders": {...}, "skimage": {...}}


def cache_dir() -> Path:
    """The writable folder of the fingerprint memo (``SRLIB_CACHE_DIR``, default ``~/.cache/srlib``)."""
    return cache_root()


def _memo_path() -> Path:
    return cache_dir() / "fingerprints.json"


def _empty() -> dict:
    return {"format": FORMAT, "files": {}, "folders": {}, "skimage": {}}


def _read_memo_file() -> dict:
    try:
        data = json.loads(_memo_path().read_text())
    except (OSError, ValueError):
        return _empty()
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return _empty()
    return {**_empty(), **data}


def _memo() -> dict:
    global _MEMO
    if _MEMO is None:
        _MEMO = _read_memo_file()
    return _MEMO


def _remember(**sections: dict) -> None:
    """Store entries (``files={path: ...}``, ...) in memory and merge them into the memo file.

    Read-merge-write through an atomic rename: two processes never leave a torn file; at worst
    one's new entries are lost and recomputed later.
    """
    from ..fileio import write_json

    memo = _memo()
    for sec, entries in sections.items():
        memo[sec].update(entries)
    disk = _read_memo_file()
    for sec in ("files", "folders", "skimage"):
        disk[sec].update(memo[sec])
    try:
        write_json(_memo_path(), disk)
    except OSError:  # a read-only cache: the memo stays in memory for this process
        pass


def clear_memory_cache() -> None:
    """Forget the in-memory memo (the file stays); the next call re-reads ``fingerprints.json``."""
    global _MEMO
    with _LOCK:
        _MEMO = None


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _cached_sha(p: Path, new: dict) -> str:
    """SHA-256 of resolved ``p`` from the memo, or hashed now and added to ``new``."""
    st = p.stat()
    with _LOCK:
        hit = _memo()["files"].get(str(p))
    # size, mtime, inode and ctime: a same-size copy with a preserved mtime (cp -p) still
    # changes the inode or the ctime, so it is hashed again
    if hit and hit[:2] == [st.st_size, st.st_mtime_ns] and hit[3:] == [st.st_ino, st.st_ctime_ns]:
        return hit[2]
    digest = _hash_file(p)
    new[str(p)] = [st.st_size, st.st_mtime_ns, digest, st.st_ino, st.st_ctime_ns]
    return digest


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of ``path``'s bytes, read once per (resolved path, size, mtime_ns, inode, ctime_ns)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"cannot fingerprint {p}: no such file")
    new: dict = {}
    digest = _cached_sha(p.resolve(), new)
    if new:
        with _LOCK:
            _remember(files=new)
    return digest


def _listing(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.name}\t{st.st_size}\t{st.st_mtime_ns}\t{st.st_ino}\t{st.st_ctime_ns}\n".encode())
    return h.hexdigest()


def folder_fingerprint(folder: str | os.PathLike) -> str:
    """SHA-256 over sorted (file name, file SHA-256) of the image files directly in ``folder``.

    Cached by the folder's listing of (name, size, mtime_ns, inode, ctime): an unchanged folder costs one
    ``stat`` per file; a changed, added or removed image changes the fingerprint.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot fingerprint {folder}: not a folder")
    folder = folder.resolve()
    files = list_images(folder)
    if not files:
        raise FileNotFoundError(f"cannot fingerprint {folder}: it holds no image files")
    listing = _listing(files)
    with _LOCK:
        hit = _memo()["folders"].get(str(folder))
        if hit and hit[0] == listing:
            return hit[1]
    h, new = hashlib.sha256(), {}
    for f in files:
        h.update(f"{f.name}\t{_cached_sha(f, new)}\n".encode())
    digest = h.hexdigest()
    with _LOCK:
        _remember(files=new, folders={str(folder): [listing, digest]})
    return digest


def skimage_fingerprint(names) -> str:
    """``skimage-fallback:<sha256>`` of the decoded fallback images ``names`` (as the datasets build them).

    The hash covers each image's name, gray flag, shape and uint8 pixels after the conversion of
    :func:`srlib.data.datasets._skimage_images`; it is memoised by (scikit-image version, names).
    """
    import skimage

    from .datasets import _skimage_images

    memo_key = f"{skimage.__version__}|{','.join(names)}"
    with _LOCK:
        hit = _memo()["skimage"].get(memo_key)
    if hit:
        return hit
    h = hashlib.sha256()
    for im in _skimage_images(names):
        h.update(f"{im.name}\t{int(im.gray)}\t{im.hr.shape}\n".encode())
        h.update(im.hr.tobytes())
    digest = "skimage-fallback:" + h.hexdigest()
    with _LOCK:
        _remember(skimage={memo_key: digest})
    return digest


def resolve_hr_folder(name: str, root=None) -> Path | None:
    """The HR folder ``load_hr_images(name, root)`` reads without downloading, or None (fallback)."""
    if name.lower() in ("skimage", "skimage-train"):
        return None
    return find_dataset(name, root)


def dataset_fingerprint(name: str, root=None) -> str:
    """Content fingerprint of dataset ``name`` as :func:`~srlib.data.datasets.load_hr_images` finds it.

    The HR folder under ``root`` / ``SRLIB_DATA_DIR`` / the download cache gives
    :func:`folder_fingerprint`; a dataset on none of them (which ``load_hr_images`` would try to
    download, then replace by the scikit-image images) and the names ``skimage`` /
    ``skimage-train`` give :func:`skimage_fingerprint` of the fallback images that stand in.
    Nothing is downloaded here. Raises KeyError for a name neither in the catalog nor on disk.
    """
    from .datasets import FALLBACK_TEST, FALLBACK_TRAIN, _is_train

    hr_dir = resolve_hr_folder(name, root)
    if hr_dir is not None:
        return folder_fingerprint(hr_dir)
    if name.lower() == "skimage-train":
        return skimage_fingerprint(FALLBACK_TRAIN)
    if name.lower() == "skimage":
        return skimage_fingerprint(FALLBACK_TEST)
    return skimage_fingerprint(FALLBACK_TRAIN if _is_train(name) else FALLBACK_TEST)
