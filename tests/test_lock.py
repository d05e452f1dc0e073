"""Lock files (srlib.lockfile): parsing, the comparison the run report records, picking a file."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from srlib import lockfile as L

ROOT = Path(__file__).resolve().parent.parent


def test_compare_a_hand_made_pair():
    locked = {"torch": "2.14.1", "numpy": "2.4.6", "Pillow": "13.0.0", "tqdm": "4.70.1"}
    installed = {"torch": "2.13.0", "numpy": "2.4.6", "pillow": "13.0.0", "tqdm": None, "extra_pkg": "1.0"}
    assert L.compare(locked, installed) == ["extra-pkg 1.0 installed, not in the lock",
                                            "torch 2.13.0 installed (lock: 2.14.1)",
                                            "tqdm not installed (lock: 4.70.1)"]
    assert L.compare(locked, dict(locked)) == []  # Pillow / pillow: one name


def test_parse_skips_comments_and_options_and_names_a_bad_line():
    text = "# platform: linux-x86_64\n--extra-index-url https://x\n\nTorch==2.13.0+cpu  # pinned\nnumpy==2.0\n"
    assert L.parse_lock(text) == {"torch": "2.13.0+cpu", "numpy": "2.0"}
    assert L.read_header(text) == {"platform": "linux-x86_64"}
    with pytest.raises(ValueError, match="line 2"):
        L.parse_lock("numpy==2.0\nscipy>=1\n")


def test_a_cpu_build_lock_names_its_index_and_round_trips():
    text = L.lock_text({"numpy": "2.0", "torch": "2.13.0+cpu"}, "cpu", python="3.11.7", date="2026-01-02")
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in text.splitlines()
    head = L.read_header(text)
    assert head["python"] == "3.11.7" and head["torch build"].startswith("cpu (torch 2.13.0+cpu")
    assert L.parse_lock(text) == {"numpy": "2.0", "torch": "2.13.0+cpu"}
    pypi = L.lock_text({"torch": "2.14.1"}, "cu130")
    assert "--extra-index-url" not in pypi and "CUDA 13.0" in L.read_header(pypi)["torch build"]


def test_the_shipped_lock_files_parse_and_name_torch():
    files = sorted((ROOT / "locks").glob("*.txt"))
    assert files, "locks/ holds no lock file; `make lock` writes one"
    for f in files:
        text = f.read_text()
        pins, head = L.parse_lock(text), L.read_header(text)
        assert "torch" in pins and "numpy" in pins and "srlib" not in pins, f.name
        build = head["torch build"].split()[0]
        assert f.name == f"{head['platform']}-{build}.txt"
        assert f"torch {pins['torch']}" in head["torch build"]
        assert head["python"].count(".") == 2


def _write(root: Path, build: str, pins: dict) -> Path:
    path = root / "locks" / f"{L.platform_tag()}-{build}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(L.lock_text(pins, build))
    return path


def test_pick_names_the_file_or_says_what_to_do(tmp_path):
    with pytest.raises(SystemExit, match="make lock"):
        L.pick(tmp_path)
    cpu = _write(tmp_path, "cpu", {"torch": "2.13.0+cpu"})
    assert L.pick(tmp_path) == cpu and L.pick(tmp_path, "cpu") == cpu
    with pytest.raises(SystemExit, match="TORCH_BUILD=cu130"):
        L.pick(tmp_path, "cu130")
    _write(tmp_path, "cu130", {"torch": "2.14.1"})
    with pytest.raises(SystemExit, match="several lock files"):
        L.pick(tmp_path)


def test_pick_runs_on_a_bare_python(tmp_path):
    """The Makefile picks the file before the venv exists: no third-party import (-S: no site)."""
    path = _write(tmp_path, "cpu", {"torch": "2.13.0+cpu"})
    out = subprocess.run([sys.executable, "-S", str(ROOT / "srlib" / "lockfile.py"), "pick", "--root", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(path)
    bad = subprocess.run([sys.executable, "-S", str(ROOT / "srlib" / "lockfile.py"), "pick", "nobuild",
                          "--root", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "no lock file" in bad.stderr


def test_lock_status_of_this_venv(tmp_path):
    assert L.lock_status(tmp_path, "cpu")["text"].startswith("no lock file for this platform")
    pins = L.closure()
    assert "torch" in pins and "pytest" in pins and "srlib" not in pins  # srlib[dev]'s closure
    path = _write(tmp_path, "cpu", pins)
    status = L.lock_status(tmp_path, "cpu")
    assert status == {"lock": f"locks/{path.name}", "matches": True, "differences": [],
                      "text": f"matches locks/{path.name}"}
    _write(tmp_path, "cpu", {**pins, "numpy": "0.0.1"})
    status = L.lock_status(tmp_path, "cpu")
    assert not status["matches"] and status["differences"] == [f"numpy {pins['numpy']} installed (lock: 0.0.1)"]


def test_the_run_report_records_the_lock(tmp_path, monkeypatch):
    from srlib import pipeline

    monkeypatch.setattr(pipeline, "lock_status", lambda root: {"lock": "locks/x.txt", "matches": True,
                                                               "differences": [], "text": "matches locks/x.txt"})
    pipeline.write_report([], "smoke", tmp_path)
    assert "- environment_lock: matches locks/x.txt" in (tmp_path / "run_report.md").read_text()
