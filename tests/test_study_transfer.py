"""Runs travel: `srlib study export` packs a study's runs, `srlib study import` unpacks them on
another machine (checked, never half, never over a differing run), the study then shows them
without training; `srlib upscale --run STUDY/ARM` uses one. Smoke-size arms."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from srlib.cli import main
from srlib.studies import Arm, RunRef, Study, register_study
from srlib.studies.transfer import TransferError, export_study, import_runs, read_manifest

TINY = dict(n_feats=8, n_mapping=1)
VOLATILE = ["train_seconds"]


def arm(name="a", **kw) -> Arm:
    return Arm(name, "cnn", 2, model_kwargs={**TINY, **kw.pop("model_kwargs", {})},
               train={"precision": "fp32", **kw.pop("train", {})}, **kw)


def study(*arms, name="travel") -> Study:
    return Study(name, "smoke", list(arms) or [arm("a"), arm("b", train={"lr": 3e-3})], max_images=1)


def tree(root) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(".")}


def test_exported_runs_imported_elsewhere_give_the_table_without_training(project, fits, tmp_path):
    s = study()
    box = project("box")
    table = s.run(threads=1, progress=False)
    runs_before = tree(box / "results" / "smoke" / "runs")
    archive = export_study(s, tmp_path / "travel.tar.gz")

    manifest = read_manifest(archive)
    assert manifest["study"] == "travel" and manifest["profile"] == "smoke" and manifest["srlib_version"]
    assert sorted((r["arm"], r["state"]) for r in manifest["runs"]) == [("a", "finished"), ("b", "finished")]
    assert {r["identity_hash"][:8] for r in manifest["runs"]} == set(table.identity)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        for name in manifest["files"]:  # each member's bytes hash to the manifest's SHA-256
            assert hashlib.sha256(tar.extractfile(name).read()).hexdigest() == manifest["files"][name]["sha256"]
    assert names[0] == "manifest.json" and sorted(names[1:]) == sorted(manifest["files"])
    assert all(n.startswith("runs/travel/") for n in names[1:]) and not any(str(tmp_path) in n for n in names)
    with tarfile.open(archive) as tar:  # no machine path inside the files either (run.json, evaluation sidecars)
        texts = {n: tar.extractfile(n).read().decode() for n in names if n.endswith((".json", ".csv"))}
    assert [n for n, t in texts.items() if str(tmp_path) in t] == []
    for run in manifest["runs"]:  # everything a run is: run.json, both checkpoints, log, evaluations
        files = {n[len(run["dir"]) + 1:] for n in names if n.startswith(run["dir"] + "/")}
        assert {"run.json", "checkpoints/best.pt", "checkpoints/last.pt", "log.csv"} <= files
        assert any(f.startswith("evaluations/") and f.endswith(".csv") for f in files) and ".lock" not in files

    laptop = project("laptop")
    fits.clear()
    rows = import_runs(archive, studies=[s])
    assert list(rows.action) == ["added", "added"] and rows.used_here.all()
    assert tree(laptop / "results" / "smoke" / "runs") == runs_before  # byte for byte
    assert not [p for p in (laptop / "results" / "smoke").iterdir() if p.name.startswith(".import")]
    again = s.run(threads=1, progress=False)
    assert fits == []  # nothing trained ...
    pd.testing.assert_frame_equal(again.drop(columns=["run_dir"]), table.drop(columns=["run_dir"]))  # ... same table
    assert list(import_runs(archive, studies=[s]).action) == ["identical", "identical"]


def test_import_refuses_a_differing_run_unless_forced_and_writes_nothing_half(project, tmp_path):
    s = study(arm("a"))
    project("box")
    s.run(threads=1, progress=False)
    archive = export_study(s, tmp_path / "a.tar.gz")
    with pytest.raises(FileExistsError, match="--force"):
        export_study(s, tmp_path / "a.tar.gz")
    fcntl = pytest.importorskip("fcntl")
    with open(s.run_dir(s.arms[0]) / ".lock", "a+") as fh:  # a run being trained is not read half-written
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(RuntimeError, match="being trained right now"):
            export_study(s, tmp_path / "b.tar.gz")
    assert not (tmp_path / "b.tar.gz").exists()

    laptop = project("laptop")
    s.run(threads=1, progress=False)  # the laptop trained the same arm itself ...
    run = s.run_dir(s.arms[0])
    rec = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**rec, "train_seconds": 123.0}))  # ... and its record differs
    before = tree(laptop / "results")
    with pytest.raises(TransferError, match=r"(?s)differ from the archive.*--force.*finished here, finished in the archive.*last\.pt"):
        import_runs(archive)
    assert tree(laptop / "results") == before  # nothing written
    assert not [p for p in run.parent.iterdir() if p.name.startswith(".")]

    (run / "evaluations" / "extra.txt").write_text("mine")  # a local-only file
    rows = import_runs(archive, force=True, studies=[s])
    assert list(rows.action) == ["replaced"]
    assert json.loads((run / "run.json").read_text())["train_seconds"] != 123.0
    assert not (run / "evaluations" / "extra.txt").exists()  # replaced as a whole
    # a checkout whose recipe for arm a differs would not use the run: the import says so and why
    changed = import_runs(archive, studies=[study(arm("a", train={"lr": 5e-4}))])
    assert list(changed.action) == ["identical"] and changed.used_here.tolist() == [False]
    assert "would train it again" in changed.note[0] and "train (the training recipe differs)" in changed.note[0]
    with pytest.raises(TransferError, match="profile 'smoke', not 'quick'"):
        import_runs(archive, profile="quick")


def _tar(path, members: dict, manifest: dict | None = None, symlink: str | None = None):
    with tarfile.open(path, "w:gz") as tar:
        if manifest is not None:
            data = json.dumps(manifest).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return path


def test_unsafe_or_damaged_archives_are_refused_before_anything_is_written(project, tmp_path):
    s = study(arm("a"))
    project("box")
    s.run(threads=1, progress=False)
    good = export_study(s, tmp_path / "good.tar.gz")
    manifest = read_manifest(good)
    with tarfile.open(good) as tar:
        members = {n: tar.extractfile(n).read() for n in tar.getnames() if n != "manifest.json"}
    run_dir = manifest["runs"][0]["dir"]
    laptop = project("laptop")

    def refused(path, match):
        with pytest.raises(TransferError, match=match):
            import_runs(path)
        assert not (laptop / "results" / "smoke" / "runs").exists()
        assert not (tmp_path / "evil").exists()

    evil = {**members, "../../evil": b"x"}
    refused(_tar(tmp_path / "dots.tar.gz", evil, manifest), r"leaves the results folder")
    refused(_tar(tmp_path / "abs.tar.gz", {**members, str(tmp_path / "evil"): b"x"}, manifest), "absolute path")
    refused(_tar(tmp_path / "link.tar.gz", members, manifest, symlink=f"{run_dir}/link"), "not a regular file")
    refused(_tar(tmp_path / "extra.tar.gz", {**members, f"{run_dir}/x.txt": b"x"}, manifest), "not listed")
    damaged = dict(members)
    damaged[f"{run_dir}/log.csv"] = members[f"{run_dir}/log.csv"] + b"1"
    refused(_tar(tmp_path / "damaged.tar.gz", damaged, manifest), "damaged")
    short = {k: v for k, v in members.items() if not k.endswith("last.pt")}
    refused(_tar(tmp_path / "short.tar.gz", short, manifest), "truncated")
    refused(_tar(tmp_path / "bare.tar.gz", members), "no valid manifest.json")
    bad_dir = {**manifest, "runs": [{**manifest["runs"][0], "dir": "../runs/x"}]}
    refused(_tar(tmp_path / "baddir.tar.gz", members, bad_dir), "not runs/<study>/<arm>-<hash8>")
    (tmp_path / "not.tar.gz").write_bytes(b"plain text")
    refused(tmp_path / "not.tar.gz", "not a tar archive")


def test_a_run_an_arm_starts_from_travels_with_it(project, tmp_path, fits):
    s = study(arm("small"), arm("deeper", model_kwargs={"n_mapping": 2}, init=RunRef(None, "small")), name="warm")
    project("box")
    table = s.run(threads=1, progress=False)
    archive = export_study(s, tmp_path / "warm.tar.gz")
    assert [r["arm"] for r in read_manifest(archive)["runs"]] == ["small", "deeper"]
    project("laptop")
    fits.clear()
    import_runs(archive, studies=[s])
    pd.testing.assert_frame_equal(s.run(threads=1, progress=False).drop(columns=["run_dir"]),
                                  table.drop(columns=["run_dir"]))
    assert fits == []


def test_an_evaluation_made_on_the_other_device_is_read_not_recomputed(project, monkeypatch):
    """A run evaluated on a GPU box (key device 'cuda') shows on a laptop without evaluating
    again: stood in for here by evaluating on cpu and reading as if this machine had CUDA."""
    import srlib.studies.core as core

    s = study(arm("a"))
    table = s.run(threads=1, progress=False)
    monkeypatch.setattr(core, "_eval_device", lambda: "cuda")
    spy = _Spy(core.evaluate_cached)
    monkeypatch.setattr(core, "evaluate_cached", spy)
    pd.testing.assert_frame_equal(s.table(), table)
    assert [c["device"] for c in spy.calls] == ["cuda", "cpu"] and all(c["cached_only"] for c in spy.calls)


class _Spy:
    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, *a, **k):
        self.calls.append({"device": k.get("device"), "cached_only": k.get("cached_only", False)})
        return self.fn(*a, **k)


def test_cli_export_import_and_upscale_with_a_run(project, tmp_path, capsys):
    @register_study("test-travel")
    def _tiny(profile):
        return Study("test-travel", profile, [arm("a")], max_images=1)

    project("box")
    img = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(img)
    assert main(["upscale", str(img), str(tmp_path / "out.png"), "--run", "test-travel/a", "--profile", "smoke"]) == 2
    assert "srlib study run test-travel --profile smoke" in capsys.readouterr().err  # not trained: how to train it
    assert main(["upscale", str(img), str(tmp_path / "out.png"), "--run", "nope/a", "--profile", "smoke"]) == 2
    assert "unknown study 'nope'" in capsys.readouterr().err
    assert main(["upscale", str(img), str(tmp_path / "out.png"), "--run", "test-travel", "--profile", "smoke"]) == 2
    assert "expected STUDY/ARM" in capsys.readouterr().err
    assert main(["study", "export", "test-travel", "--profile", "smoke", "--out", str(tmp_path / "x.tar.gz")]) == 2
    assert "train it first: srlib study run test-travel --profile smoke" in capsys.readouterr().err

    assert main(["study", "run", "test-travel", "--profile", "smoke", "--threads", "1", "--format", "csv"]) == 0
    capsys.readouterr()
    assert main(["study", "export", "test-travel", "--profile", "smoke"]) == 0
    assert "srlib study import test-travel-smoke-runs.tar.gz" in capsys.readouterr().out
    archive = tmp_path / "box" / "results" / "exports" / "test-travel-smoke-runs.tar.gz"
    project("laptop")
    assert main(["study", "import", str(archive)]) == 0
    out = capsys.readouterr().out
    assert "added" in out and "True" in out
    assert main(["upscale", str(img), str(tmp_path / "out.png"), "--run", "test-travel/a", "--profile", "smoke",
                 "--scale", "3"]) == 2
    assert "upscales x2, not --scale 3" in capsys.readouterr().err
    assert main(["upscale", str(img), str(tmp_path / "out.png"), "--run", "test-travel/a", "--profile", "smoke"]) == 0
    from srlib.inference import prepare, upscale_file
    from srlib.studies import get_study

    model = prepare(get_study("test-travel", "smoke").load_model("a"), channels_last=True)
    upscale_file(model, img, tmp_path / "ref.png", 2, True)  # the imported best.pt, by hand
    got, ref = np.asarray(Image.open(tmp_path / "out.png")), np.asarray(Image.open(tmp_path / "ref.png"))
    assert got.shape == (24, 20, 3) and np.array_equal(got, ref)


def test_imported_runs_are_used_where_their_training_set_is_absent(project, fits, tmp_path, data_dir, monkeypatch):
    """A laptop without the GPU box's training set (DIV2K there, T91 here) still shows the
    imported runs: the data part of their identity is read from their run.json."""
    s = study()
    project("box")
    table = s.run(threads=1, progress=False)
    archive = export_study(s, tmp_path / "travel.tar.gz")

    project("laptop")
    only_set5 = tmp_path / "laptop_data"
    only_set5.mkdir()
    (only_set5 / "Set5").symlink_to(data_dir / "Set5")  # the benchmark, but no training set
    monkeypatch.setenv("SRLIB_DATA_DIR", str(only_set5))
    fits.clear()
    rows = import_runs(archive, studies=[s])
    assert rows.used_here.all(), rows.note.tolist()
    again = s.run(threads=1, progress=False)
    assert fits == []  # nothing retrained on the fallback images, nothing downloaded
    pd.testing.assert_frame_equal(again.drop(columns=["run_dir"]), table.drop(columns=["run_dir"]))
