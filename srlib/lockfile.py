"""Lock files: the exact versions a run was made with, beside the ranges of ``pyproject.toml``.

``pyproject.toml`` says which versions srlib works with; a lock file says which ones a run was
made with, so that run can be made again. It lists ``srlib[dev]`` and everything it pulls in, as
installed in the venv (``name==version``, the editable srlib itself left out), with a header
naming the platform, the Python, the torch build and the date. The torch build matters: the same
torch version is a different wheel on a CPU-only machine (``+cpu``, from PyTorch's CPU index), on a
CUDA box and elsewhere, so there is one file per ``<platform>-<torch build>``, e.g.
``locks/linux-x86_64-cu130.txt`` (PyPI's default Linux wheel, built for CUDA 13.0, which runs on a
CPU too) or ``locks/linux-x86_64-cpu.txt``.

- ``make lock`` (``python -m srlib.lockfile write``) writes the file of this venv;
- ``make setup LOCKED=1`` / ``make reproduce LOCKED=1`` install from it (``pip install -r`` the
  file, then ``pip install --no-deps -e .``); ``python3 srlib/lockfile.py pick [BUILD]`` names
  the file for this platform and fails with what to do when there is none;
- the run report (:func:`srlib.pipeline.write_report`) records :func:`lock_status`: whether the
  installed versions match the file, or what differs.

Readings chosen: the lock holds the dependency closure of ``srlib[dev]`` (what ``make setup``
installs), not every package that happens to be in the venv, so a tool installed by hand does
not become a requirement; ``pick`` runs before the venv exists, so this module imports only the
standard library at the top.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import platform
import re
import sys
from pathlib import Path

LOCK_DIR = "locks"
ROOT_REQUIREMENT = "srlib[dev]"
#: PyPI's Linux torch wheels carry no local version but are built for CUDA; other builds come from
#: PyTorch's own index, which the file then names (pip reads ``--extra-index-url`` in a
#: requirements file)
TORCH_INDEX = "https://download.pytorch.org/whl/{build}"


def normalize(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def platform_tag() -> str:
    """``<os>-<machine>``, e.g. ``linux-x86_64``, ``darwin-arm64``."""
    return f"{sys.platform}-{platform.machine().lower()}"


def torch_build() -> str:
    """The installed torch's build: ``cpu``, ``cu130``, ``rocm6.2``, ... (imports torch)."""
    import torch

    local = torch.__version__.partition("+")[2]
    if local:
        return local
    if getattr(torch.version, "hip", None):
        return "rocm" + ".".join(torch.version.hip.split(".")[:2])
    if torch.version.cuda:
        return "cu" + torch.version.cuda.replace(".", "")
    return "cpu"


def lock_path(root: Path, build: str | None = None) -> Path:
    """``<root>/locks/<platform>-<build>.txt`` (``build`` default: this torch's)."""
    return Path(root) / LOCK_DIR / f"{platform_tag()}-{build or torch_build()}.txt"


# ---- reading -----------------------------------------------------------------------------

def parse_lock(text: str) -> dict[str, str]:
    """``{normalized name: version}`` of the ``name==version`` lines; comments and options skipped."""
    pins = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        name, sep, version = line.partition("==")
        if not sep or not name.strip() or not version.strip():
            raise ValueError(f"lock file line {n}: {line!r} is not name==version")
        pins[normalize(name.strip())] = version.strip()
    return pins


def read_header(text: str) -> dict[str, str]:
    """The ``# key: value`` lines at the top of a lock file."""
    out = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        key, sep, value = line[1:].partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def compare(locked: dict[str, str], installed: dict[str, str | None]) -> list[str]:
    """What differs between a lock (``{name: version}``) and what is installed.

    ``installed`` maps each name to check to its installed version (None: not installed); names
    there but not in the lock are reported as not locked. Names are compared normalized. Empty
    list: they match.
    """
    locked = {normalize(k): v for k, v in locked.items()}
    inst = {normalize(k): v for k, v in installed.items()}
    out = []
    for name in sorted(set(locked) | set(inst)):
        want, have = locked.get(name), inst.get(name)
        if want is None:
            if have is not None:
                out.append(f"{name} {have} installed, not in the lock")
        elif have is None:
            out.append(f"{name} not installed (lock: {want})")
        elif have != want:
            out.append(f"{name} {have} installed (lock: {want})")
    return out


# ---- the venv ----------------------------------------------------------------------------

def installed_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def closure(root: str = ROOT_REQUIREMENT) -> dict[str, str]:
    """``{name: version}`` of every installed distribution ``root`` requires, transitively, with
    markers evaluated for this interpreter (``root`` itself left out)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    seen: dict[str, str] = {}
    done: set = set()  # (name, extras): a package asked for again with other extras is walked again
    todo = [Requirement(root)]
    top = normalize(Requirement(root).name)
    while todo:
        req = todo.pop()
        name = normalize(req.name)
        if (name, frozenset(req.extras)) in done:
            continue
        done.add((name, frozenset(req.extras)))
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue
        if name != top:
            seen[name] = dist.version
        for spec in dist.requires or []:
            sub = Requirement(spec)
            extras = req.extras or {""}
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return dict(sorted(seen.items()))


def lock_text(pins: dict[str, str], build: str, python: str | None = None, date: str | None = None) -> str:
    """The lock file: a header, an index line where the torch build needs one, the pins."""
    python = python or platform.python_version()
    date = date or _dt.date.today().isoformat()
    torch_v = pins.get("torch", "?")
    pypi = "+" not in torch_v
    where = ("PyPI's default wheel" + (f", built for CUDA {build[2:-1]}.{build[-1]}, runs on a CPU too"
                                       if build.startswith("cu") else "")
             if pypi else f"PyTorch's {build} index")
    lines = ["# srlib lock file: the exact versions of a `make setup` venv (srlib[dev] and all it pulls in)",
             f"# platform: {platform_tag()}", f"# python: {python}",
             f"# torch build: {build} (torch {torch_v}: {where})", f"# created: {date}",
             "# install: make setup LOCKED=1   (pip install -r this file, then pip install --no-deps -e .)",
             "# regenerate: make lock"]
    if not pypi:
        lines.append(f"--extra-index-url {TORCH_INDEX.format(build=build)}")
    return "\n".join(lines + [f"{k}=={v}" for k, v in pins.items()]) + "\n"


def write_lock(root: Path, build: str | None = None) -> tuple[Path, list[str]]:
    """Write this venv's lock file (atomically); returns it and what changed against the old one."""
    from .fileio import atomic_write_text

    build = build or torch_build()
    pins = closure()
    path = lock_path(root, build)
    before = parse_lock(path.read_text()) if path.is_file() else {}
    atomic_write_text(path, lock_text(pins, build))
    return path, compare(before, pins) if before else [f"new file, {len(pins)} packages"]


def lock_status(root: Path, build: str | None = None) -> dict:
    """Does this environment match its lock file? ``{"lock", "matches", "differences", "text"}``.

    Never raises (a run report is written whatever the environment): an unreadable lock file or
    a missing ``packaging`` gives ``matches: False`` and a text saying why."""
    try:
        return _lock_status(root, build)
    except (ImportError, OSError, ValueError) as exc:
        return {"lock": None, "matches": False, "differences": [], "text": f"not checked ({exc})"}


def _lock_status(root: Path, build: str | None) -> dict:
    path = lock_path(root, build)
    rel = f"{LOCK_DIR}/{path.name}"
    if not path.is_file():
        return {"lock": None, "matches": False, "differences": [],
                "text": f"no lock file for this platform ({rel}); `make lock` writes one"}
    locked = parse_lock(path.read_text())
    names = set(locked) | set(closure())
    diffs = compare(locked, {n: installed_version(n) for n in names})
    text = f"matches {rel}" if not diffs else f"differs from {rel}: " + "; ".join(diffs)
    return {"lock": rel, "matches": not diffs, "differences": diffs, "text": text}


# ---- picking a file before the venv exists (the Makefile) --------------------------------

def pick(root: Path, build: str | None = None) -> Path:
    """The lock file ``make ... LOCKED=1`` installs: ``<platform>-<build>.txt``, or the only one
    for this platform; ``SystemExit`` with what to do otherwise."""
    folder = Path(root) / LOCK_DIR
    found = sorted(folder.glob(f"{platform_tag()}-*.txt"))
    if build:
        path = folder / f"{platform_tag()}-{build}.txt"
        if path.is_file():
            return path
        raise SystemExit(f"LOCKED=1: no lock file {LOCK_DIR}/{path.name} for TORCH_BUILD={build}; "
                         f"this platform has {', '.join(p.name for p in found) or 'none'}. Install without "
                         "LOCKED=1 (the ranges of pyproject.toml), then `make lock` writes one")
    if len(found) == 1:
        return found[0]
    if not found:
        have = ", ".join(p.name for p in sorted(folder.glob("*.txt"))) or "none"
        raise SystemExit(f"LOCKED=1: no lock file for this platform ({platform_tag()}) in {LOCK_DIR}/ "
                         f"(there: {have}). Install without LOCKED=1 (the ranges of pyproject.toml), then "
                         "`make lock` writes one for this platform")
    raise SystemExit(f"LOCKED=1: several lock files for {platform_tag()} ({', '.join(p.name for p in found)}); "
                     "choose the torch build with TORCH_BUILD=<build>, e.g. TORCH_BUILD="
                     + found[0].stem.rsplit("-", 1)[-1])


def _python_note(path: Path) -> str:
    """A warning when the lock was made with another Python (its pins may have no wheels here)."""
    made = read_header(path.read_text()).get("python", "")
    here = platform.python_version()
    if made.split(".")[:2] != here.split(".")[:2]:
        return f"warning: {path.name} was made with Python {made}, this is {here}; pins may not install"
    return ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m srlib.lockfile", description="srlib lock files")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pick", help="print the lock file for this platform (for make LOCKED=1)")
    p.add_argument("build", nargs="?", default="", help="torch build (TORCH_BUILD), e.g. cpu or cu130")
    w = sub.add_parser("write", help="write this venv's lock file")
    w.add_argument("--build", help="torch build (default: the installed torch's)")
    c = sub.add_parser("check", help="does this venv match its lock file?")
    c.add_argument("--build")
    for q in (p, w, c):
        q.add_argument("--root", default=".", help="project folder (default: .)")
    args = ap.parse_args(argv)
    root = Path(args.root)
    if args.cmd == "pick":
        path = pick(root, args.build or None)
        note = _python_note(path)
        if note:
            print(note, file=sys.stderr)
        print(path)
        return 0
    if args.cmd == "write":
        path, changes = write_lock(root, args.build)
        print(f"wrote {path}" + ("" if not changes else "; against the previous file: " + "; ".join(changes)))
        return 0
    status = lock_status(root, args.build)
    print(status["text"])
    return 0 if status["matches"] else 1


if __name__ == "__main__":
    sys.exit(main())
