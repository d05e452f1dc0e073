"""Dataset catalog: what each SR dataset is, where it comes from, and how to get it.

Layout everywhere: ``<root>/<Name>/HR/*.png``. The root is ``SRLIB_DATA_DIR`` when set, else
``SRLIB_CACHE_DIR/datasets`` (default ``~/.cache/srlib/datasets``), where downloads go. DIV2K is
also found in the layout its archives unpack to (``<root>/DIV2K_train_HR/0001.png`` ... ``0800.png``
and ``<root>/DIV2K_valid_HR/0801.png`` ... ``0900.png``, directly under the root or under
``<root>/DIV2K/``), so a copy someone already has needs no moving (:attr:`DatasetInfo.layouts`).

Downloads are resumable (HTTP Range into a ``.part`` file), verified by checksum where one is
known, and assembled in ``<Name>.partial/`` which is renamed to ``<Name>/`` only when every file
is in place, so an interrupted download never leaves a folder that looks complete.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from ..fileio import move_into_place
from .io import list_images

GITHUB_RAW = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"
SELFEXSR = ("jbhuang0604/SelfExSR", "8f6dd8c1d20cb7e8792a7177b4f6fd677633f598")
DENOISING = ("majedelhelou/denoising_datasets", "58234876fef6f1b56306705c78dfd40cdb837b86")
DCSCN = ("jiny2001/dcscn-super-resolution", "d382bc30d41c94ac72f8cb148d61cc4864b3b380")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset that is neither on disk nor downloadable here; the message says what to do."""


@dataclass(frozen=True)
class DatasetInfo:
    """One catalog entry."""

    name: str
    role: str  # "benchmark" or "train"
    n_images: int
    description: str
    origin: str
    files: tuple = ()  # (url, target name, sha256 or None) per image
    archive: tuple = ()  # (url, md5, member prefix inside the archive) for archive sources
    notes: str = ""
    manual: str = ""  # how to obtain it when no automatic download exists
    aliases: tuple = field(default=())
    layouts: tuple = ()  # other HR folders, relative to the root, tried after <Name>/HR
    download_gb: float | None = None  # size of the download (archives), for the messages


def _sums(name: str) -> list[tuple[str, str]]:
    text = resources.files("srlib.data").joinpath(f"checksums/{name}.sha256").read_text()
    return [tuple(line.split()) for line in text.splitlines() if line.strip()]


def _github_files(repo_commit, name: str, path_of) -> tuple:
    repo, commit = repo_commit
    return tuple(
        (GITHUB_RAW.format(repo=repo, commit=commit, path=path_of(i, fname)), fname, sha)
        for i, (sha, fname) in enumerate(_sums(name))
    )


def _b100_files() -> tuple:
    # SelfExSR numbers the images img_001..img_100 in the order of the IDs sorted as strings
    pairs = sorted(_sums("B100"), key=lambda p: p[1][:-4])
    repo, commit = SELFEXSR
    return tuple(
        (GITHUB_RAW.format(repo=repo, commit=commit,
                           path=f"data/BSD100/image_SRF_3/img_{i + 1:03d}_SRF_3_HR.png"), fname, sha)
        for i, (sha, fname) in enumerate(pairs)
    )


_T91_NAMES = [f"t{i}" for i in range(1, 67) if i != 41] + [f"tt{i}" for i in range(1, 28) if i != 11]


def _build_catalog() -> dict[str, DatasetInfo]:
    cat = [
        DatasetInfo(
            "Set5", "benchmark", 5, "Bevilacqua et al., BMVC 2012: 5 images (baby, bird, butterfly, head, woman)",
            f"{DENOISING[0]} @ {DENOISING[1][:7]}, CSet5/",
            files=_github_files(DENOISING, "Set5", lambda i, f: f"CSet5/{f}"),
            notes="original sizes; mod-cropped to the scale at evaluation"),
        DatasetInfo(
            "Set14", "benchmark", 14, "Zeyde et al., 2010: 14 images; bridge.png is single-channel gray",
            f"{DENOISING[0]} @ {DENOISING[1][:7]}, CSet14/",
            files=_github_files(DENOISING, "Set14", lambda i, f: f"CSet14/{f}"),
            notes="original sizes; bridge is mode L (see the gray-image rule in srlib.metrics)"),
        DatasetInfo(
            "B100", "benchmark", 100, "Martin et al., ICCV 2001: the 100 BSDS300 test images",
            f"{SELFEXSR[0]} @ {SELFEXSR[1][:7]}, data/BSD100/image_SRF_3/ (renamed to Berkeley IDs)",
            files=_b100_files(), aliases=("BSD100", "BSDS100"),
            notes="mod-3 cropped by the source: 480x321 / 321x480 (originals are 481x321)"),
        DatasetInfo(
            "Urban100", "benchmark", 100, "Huang et al., CVPR 2015: 100 urban scenes with regular structure",
            f"{SELFEXSR[0]} @ {SELFEXSR[1][:7]}, data/Urban100/image_SRF_4/",
            files=_github_files(SELFEXSR, "Urban100",
                                lambda i, f: f"data/Urban100/image_SRF_4/{f[:-4]}_SRF_4_HR.png"),
            notes="mod-4 cropped by the source (long side ~1024); at x3 a further mod-3 crop applies"),
        DatasetInfo(
            "Manga109", "benchmark", 109, "Matsui et al., 2017: 109 manga volume covers",
            "manga109.org (licence on request)",
            manual="request access at http://www.manga109.org/en/ and put the 109 PNGs in "
                   "<root>/Manga109/HR/"),
        DatasetInfo(
            "T91", "train", 91, "Yang et al., 2010: the 91-image training set",
            f"{DCSCN[0]} @ {DCSCN[1][:7]}, data/yang91/*.bmp (converted to PNG)",
            files=tuple((GITHUB_RAW.format(repo=DCSCN[0], commit=DCSCN[1], path=f"data/yang91/{n}.bmp"),
                         f"{n}.png", None) for n in _T91_NAMES),
            aliases=("Yang91",)),
        DatasetInfo(
            "DIV2K", "train", 800, "Agustsson & Timofte, CVPRW 2017: 800 2K training images (0001-0800)",
            "data.vision.ee.ethz.ch/cvl/DIV2K",
            archive=(("http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip",
                      "bdc2d9338d4e574fe81bf7d158758658", "DIV2K_train_HR/"),),
            layouts=("DIV2K_train_HR", "DIV2K/DIV2K_train_HR"), download_gb=3.5,
            notes="profiles 'gpu' and 'full' train on it; 0801-0900 are DIV2K_valid"),
        DatasetInfo(
            "DIV2K_valid", "benchmark", 100, "DIV2K validation HR images 0801-0900",
            "data.vision.ee.ethz.ch/cvl/DIV2K",
            archive=(("http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip",
                      "9fcdda83005c5e5997799b69f955ff88", "DIV2K_valid_HR/"),),
            layouts=("DIV2K_valid_HR", "DIV2K/DIV2K_valid_HR"), download_gb=0.45,
            notes="validation that selects best.pt (the first images, 0801-0810); never a reported table"),
    ]
    return {d.name: d for d in cat}


CATALOG = _build_catalog()


def canonical_name(name: str) -> str:
    """Catalog name for ``name`` (case-insensitive, aliases such as BSD100 accepted)."""
    for info in CATALOG.values():
        if name.lower() in [info.name.lower(), *[a.lower() for a in info.aliases]]:
            return info.name
    raise KeyError(f"unknown dataset {name!r}; the catalog has {', '.join(CATALOG)}")


def display_name(name: str) -> str:
    """:func:`canonical_name` for a catalogued dataset, else ``name`` as given (your own folder)."""
    try:
        return canonical_name(name)
    except KeyError:
        return name


def data_root() -> Path | None:
    """``SRLIB_DATA_DIR`` as a Path, or None when unset."""
    env = os.environ.get("SRLIB_DATA_DIR")
    return Path(env).expanduser() if env else None


def portable_path(path) -> str:
    """``path`` as results may share it: ``$SRLIB_DATA_DIR/...`` inside the data folder,
    ``$SRLIB_WEIGHTS_DIR/...`` inside the weights folder, ``$SRLIB_CACHE_DIR/...`` inside the
    cache, relative to the project inside it (``results/quick/runs/...``), else as given (a
    folder the caller named)."""
    from ..paths import project_root

    path = Path(path)
    weights = os.environ.get("SRLIB_WEIGHTS_DIR")
    for var, root in (("SRLIB_DATA_DIR", data_root()), ("SRLIB_WEIGHTS_DIR", Path(weights).expanduser() if weights else None),
                      ("SRLIB_CACHE_DIR", cache_root()), ("", project_root())):
        if root is None:
            continue
        try:
            rel = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
        return f"${var}/{rel}" if var else rel
    return str(path)


def cache_root() -> Path:
    return Path(os.environ.get("SRLIB_CACHE_DIR", "~/.cache/srlib")).expanduser()


def _candidates(name: str, root) -> list[Path]:
    """The HR folders ``name`` may be in: ``<root>/<name>/HR``, then the entry's other layouts."""
    roots = [Path(root)] if root else [r for r in (data_root(),) if r] + [cache_root() / "datasets"]
    layouts = CATALOG[name].layouts if name in CATALOG else ()
    return [r / name / "HR" for r in roots] + [r / alt for r in roots for alt in layouts]


def is_catalog_folder(hr_dir: Path) -> bool:
    """Is ``hr_dir`` where a catalogued dataset lives (``<Name>/HR`` or one of its layouts)?"""
    hr_dir = Path(hr_dir)
    return any(hr_dir.parent.name == info.name and hr_dir.name == "HR"
               or any(hr_dir.as_posix().endswith("/" + alt) for alt in info.layouts)
               for info in CATALOG.values())


def find_dataset(name: str, root=None) -> Path | None:
    """The ``HR`` folder of ``name`` if it is on disk with at least one image, else None.

    Names outside the catalog work too when ``<root>/<name>/HR`` exists (your own images).
    """
    try:
        name = canonical_name(name)
    except KeyError:
        found = [hr for hr in _candidates(name, root) if hr.is_dir() and list_images(hr)]
        if found:
            return found[0]
        raise KeyError(f"unknown dataset {name!r}: not in the catalog ({', '.join(CATALOG)}) and no "
                       f"folder {name}/HR with images under {root or data_root() or cache_root() / 'datasets'}")
    for hr in _candidates(name, root):
        if hr.is_dir() and list_images(hr):
            return hr
    return None


def _root_missing() -> str:
    """A sentence when ``SRLIB_DATA_DIR`` names a folder that does not exist, else ''."""
    root = data_root()
    if root is not None and not root.is_dir():
        return (f"SRLIB_DATA_DIR={root} does not exist (srlib does not create it): fix the path or "
                "create the folder. ")
    return ""


def missing_message(name: str) -> str:
    """What to do when ``name`` is not on disk: the folder it is looked for in, the download
    command and its size, or how to obtain it by hand."""
    info = CATALOG[canonical_name(name)]
    where = data_root() or "<SRLIB_DATA_DIR>"
    size = f", about {info.download_gb:g} GB" if info.download_gb else ""
    how = info.manual or f"`srlib data download {info.name}` where the network allows ({info.origin}{size})"
    also = (" or " + " or ".join(f"{where}/{alt}/" for alt in info.layouts)) if info.layouts else ""
    return (f"{_root_missing()}dataset {info.name} not found. Put its {info.n_images} HR images in {where}/{info.name}/HR/"
            f"{also} (set SRLIB_DATA_DIR to the folder holding {info.name}/HR), or get it by {how}.")


# ---------------------------------------------------------------- downloading

def _hash(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_file(url: str, dest: Path, checksum: str | None = None, algo: str = "sha256",
                  timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest``, resuming a ``dest.part`` left by an earlier attempt.

    The checksum, when given, is verified before ``dest`` appears; a mismatch deletes the
    partial file and raises ``IOError``.
    """
    dest = Path(dest)
    if dest.exists() and (checksum is None or _hash(dest, algo) == checksum):
        return dest
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    start = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resumed = start and getattr(resp, "status", 200) == 206
            total = int(resp.headers.get("Content-Length") or 0) + (start if resumed else 0)
            with open(part, "ab" if resumed else "wb") as fh, tqdm(
                total=total or None, initial=start if resumed else 0, unit="B", unit_scale=True,
                desc=dest.name, leave=False, disable=None) as bar:
                for chunk in iter(lambda: resp.read(1 << 16), b""):
                    fh.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise ConnectionError(f"cannot download {url}: {exc}") from exc
    if checksum is not None and _hash(part, algo) != checksum:
        part.unlink()
        raise IOError(f"checksum mismatch for {url} ({algo}); the partial file was removed, try again")
    move_into_place(part, dest)
    return dest


def _fetch_files(info: DatasetInfo, staging: Path) -> None:
    for url, fname, sha in tqdm(info.files, desc=info.name, unit="img", disable=None):
        if url.endswith(".bmp"):
            raw = download_file(url, staging / (fname[:-4] + ".bmp"), sha)
            with Image.open(raw) as im:
                im.convert("RGB").save(staging / fname)
            raw.unlink()
        else:
            download_file(url, staging / fname, sha)


def _fetch_archive(info: DatasetInfo, staging: Path, downloads: Path) -> None:
    for url, md5, prefix in info.archive:
        arc = download_file(url, downloads / url.rsplit("/", 1)[-1], md5, algo="md5", timeout=120)
        opener = zipfile.ZipFile if arc.suffix == ".zip" else tarfile.open
        with opener(arc) as fh:
            names = fh.namelist() if isinstance(fh, zipfile.ZipFile) else fh.getnames()
            for member in names:
                if member.startswith(prefix) and member.lower().endswith(".png"):
                    target = staging / Path(member).name
                    src = fh.open(member) if isinstance(fh, zipfile.ZipFile) else fh.extractfile(member)
                    with src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)


def download_dataset(name: str, root=None) -> Path:
    """Download ``name`` into ``root`` (default: SRLIB_DATA_DIR, else the cache); return its HR folder."""
    info = CATALOG[canonical_name(name)]
    if info.manual:
        raise DatasetNotFoundError(missing_message(info.name))
    if root is None and _root_missing():
        raise DatasetNotFoundError(f"cannot download {info.name}: {_root_missing()}")
    root = Path(root) if root else (data_root() or cache_root() / "datasets")
    final = root / info.name / "HR"
    if final.is_dir() and list_images(final):
        return final
    staging = root / f"{info.name}.partial" / "HR"
    staging.mkdir(parents=True, exist_ok=True)
    try:
        if info.files:
            _fetch_files(info, staging)
        else:
            _fetch_archive(info, staging, root / ".downloads")
    except ConnectionError as exc:
        _remove_empty(staging, root)
        raise DatasetNotFoundError(f"{missing_message(info.name)} Download failed: {exc}. "
                                   f"Partial files are kept in {staging.parent} and a new "
                                   "download resumes from them.") from exc
    (root / info.name).mkdir(parents=True, exist_ok=True)
    move_into_place(staging, final)  # a folder: atomic when final does not exist yet
    shutil.rmtree(root / f"{info.name}.partial", ignore_errors=True)
    return final


def _remove_empty(staging: Path, root: Path) -> None:
    """Remove ``staging`` and its parents up to ``root`` where they hold nothing (no partial
    files worth resuming), so a failed download leaves no empty ``<Name>.partial/HR`` behind."""
    for folder in (staging, staging.parent):
        try:
            folder.rmdir()  # only succeeds when empty
        except OSError:
            return


def dataset_status(root=None) -> list[dict]:
    """One row per catalog entry: present or not, where, and how many images."""
    rows = []
    for info in CATALOG.values():
        hr = find_dataset(info.name, root)
        rows.append({"dataset": info.name, "role": info.role, "present": hr is not None,
                     "images": len(list_images(hr)) if hr else 0, "expected": info.n_images,
                     "path": str(hr) if hr else "", "origin": info.origin})
    return rows
