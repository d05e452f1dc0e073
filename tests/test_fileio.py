"""Atomic writes (srlib.fileio): content, no temporary files left, target untouched on error."""
import json
import os
import stat

import pytest
import torch

from srlib.fileio import (atomic_open, atomic_path, atomic_torch_save, atomic_write_bytes, atomic_write_text,
                          move_into_place, write_json)


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_text_bytes_json_and_torch_round_trip(tmp_path):
    assert atomic_write_text(tmp_path / "a" / "t.md", "µ ± x\n").read_text(encoding="utf-8") == "µ ± x\n"
    assert atomic_write_bytes(tmp_path / "b.bin", b"\x00\xff").read_bytes() == b"\x00\xff"
    obj = {"n": 1, "p": tmp_path}
    assert (write_json(tmp_path / "c.json", obj).read_text()
            == json.dumps({"n": 1, "p": str(tmp_path)}, indent=2) + "\n")
    sd = {"w": torch.arange(4.0), "step": 3}
    back = torch.load(atomic_torch_save(sd, tmp_path / "d.pt"), weights_only=True)
    assert back["step"] == 3 and back["w"].equal(sd["w"])
    assert _names(tmp_path) == ["a", "b.bin", "c.json", "d.pt"]  # no temporary file left


def test_new_files_get_the_umask_permissions_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "x.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_an_error_leaves_the_old_file_and_no_temporary(tmp_path):
    target = atomic_write_text(tmp_path / "log.csv", "old\n")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as fh:
            fh.write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old\n" and _names(tmp_path) == ["log.csv"]


def test_atomic_path_keeps_the_suffix_for_format_sniffing_writers(tmp_path):
    with atomic_path(tmp_path / "fig.png", keep_suffix=True) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".fig.png.") and tmp.suffix == ".png"
        tmp.write_bytes(b"png")
    with atomic_path(tmp_path / "ckpt.pt") as tmp:
        assert tmp.name.endswith(".tmp")
        tmp.write_bytes(b"pt")
    assert _names(tmp_path) == ["ckpt.pt", "fig.png"]


def test_atomic_open_refuses_modes_that_keep_old_content(tmp_path):
    for mode in ("a", "r+", "w+"):
        with pytest.raises(ValueError, match="mode"):
            with atomic_open(tmp_path / "x", mode):
                pass
    assert _names(tmp_path) == []


def test_move_into_place_moves_files_and_folders(tmp_path):
    part = tmp_path / "f.part"
    part.write_bytes(b"data")
    assert move_into_place(part, tmp_path / "f").read_bytes() == b"data" and not part.exists()
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "a.png").write_bytes(b"a")
    assert (move_into_place(tmp_path / "staging", tmp_path / "final") / "a.png").is_file()


def test_a_preemption_signal_during_a_checkpoint_write_waits_for_the_file(tmp_path, monkeypatch):
    """SIGUSR2 arriving inside torch.save (as SLURM preempts a job): the handler runs after the
    file is in place, and an exception it raises (submitit exits to requeue) is its own, not
    torch's ``unexpected pos``."""
    import signal

    import torch

    from srlib.fileio import atomic_torch_save

    class Preempted(Exception):
        pass

    def handler(signum, frame):
        raise Preempted(signum)

    real_save = torch.save

    def save_interrupted(obj, fh):
        fh.write(b"")  # a Python callback inside the save, where a handler would run
        signal.raise_signal(signal.SIGUSR2)
        real_save(obj, fh)

    old = signal.signal(signal.SIGUSR2, handler)
    try:
        monkeypatch.setattr(torch, "save", save_interrupted)
        with pytest.raises(Preempted):
            atomic_torch_save({"w": torch.arange(3)}, tmp_path / "last.pt")
        assert signal.getsignal(signal.SIGUSR2) is handler  # put back
    finally:
        signal.signal(signal.SIGUSR2, old)
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.equal(torch.load(tmp_path / "last.pt", weights_only=True)["w"], torch.arange(3))
    assert [f.name for f in tmp_path.iterdir()] == ["last.pt"]
