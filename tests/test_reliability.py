"""Issue 11, "nothing silently wrong, nothing silently lost": one test (or more) per numbered case.

Broken checkpoints, a damaged Set5 copy in a temp folder, a mixed batch folder, a name clash,
careless command lines. Tiny models and images; Set5 tests skip without SRLIB_DATA_DIR.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srlib.cli import main
from srlib.data.io import ImageTooLargeError, load_image, save_image
from srlib.models import CheckpointError, build_model, build_upscaler, load_weights


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own writable cache (fingerprints, integrity verdicts)."""
    monkeypatch.setenv("SRLIB_CACHE_DIR", str(tmp_path / "cache"))


def _img(rng, h=12, w=10):
    return rng.integers(0, 256, (h, w, 3)).astype(np.uint8)


# ---- 1. NaN: train exits non-zero, NaN checkpoints are refused ------------------------------

def test_cli_train_exits_nonzero_with_the_guards_message(tmp_path, monkeypatch, capsys, data_dir):
    from srlib import profiles

    smoke = profiles.PROFILES["smoke"]
    monkeypatch.setitem(profiles.PROFILES, "smoke", dataclasses.replace(smoke, lr=1e8))
    rc = main(["train", "--model", "awsrn-s", "--scale", "2", "--profile", "smoke", "--out",
               str(tmp_path / "run"), "--device", "cpu", "--precision", "fp32", "--threads", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "training diverged at step" in err and "not finite" in err
    assert "Traceback" not in err
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"].startswith("diverged at step")
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())


@pytest.fixture
def nan_checkpoint(tmp_path) -> Path:
    sd = build_model("awsrn-s", 2).state_dict()
    key = list(k for k, v in sd.items() if v.is_floating_point())[3]
    sd[key][0] = float("nan")
    path = tmp_path / "nan.pt"
    torch.save({"model": sd}, path)
    return path, key


def test_nan_checkpoint_is_refused_naming_file_and_tensor(nan_checkpoint, tmp_path, rng, capsys):
    path, key = nan_checkpoint
    with pytest.raises(CheckpointError, match="non-finite") as exc:
        load_weights(build_model("awsrn-s", 2), path)
    assert str(path) in str(exc.value) and key in str(exc.value)
    save_image(_img(rng), tmp_path / "a.png")
    rc = main(["upscale", str(tmp_path / "a.png"), str(tmp_path / "o.png"), "--model", "awsrn-s",
               "--scale", "2", "--checkpoint", str(path)])
    err = capsys.readouterr().err
    assert rc == 2 and key in err and "nan.pt" in err and not (tmp_path / "o.png").exists()
    rc = main(["evaluate", "--model", "awsrn-s", "--scale", "2", "--dataset", "skimage",
               "--max-images", "1", "--checkpoint", str(path)])
    assert rc == 2 and key in capsys.readouterr().err


# ---- 13. corrupt, truncated, empty and malicious checkpoints ---------------------------------

class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def _bad_checkpoints(tmp_path) -> dict:
    good = tmp_path / "good.pt"
    torch.save(build_model("awsrn-s", 2).state_dict(), good)
    data = good.read_bytes()
    files = {"corrupt": b"\x80\x04garbage" * 50, "truncated": data[: len(data) // 2], "empty": b""}
    out = {}
    for name, blob in files.items():
        (tmp_path / f"{name}.pt").write_bytes(blob)
        out[name] = tmp_path / f"{name}.pt"
    torch.save({"model": _Evil()}, tmp_path / "malicious.pt")
    out["malicious"] = tmp_path / "malicious.pt"
    return out


@pytest.mark.parametrize("kind, words", [("corrupt", "corrupt or not a torch checkpoint"),
                                         ("truncated", "corrupt or not a torch checkpoint"),
                                         ("empty", "empty (0 bytes)"),
                                         ("malicious", "will not unpickle")])
def test_broken_checkpoints_say_what_is_wrong(tmp_path, kind, words, capsys):
    from srlib.train.state import TrainCheckpointError, load_checkpoint

    path = _bad_checkpoints(tmp_path)[kind]
    with pytest.raises(CheckpointError) as exc:
        load_weights(build_model("awsrn-s", 2), path)
    for msg in (str(exc.value), str(pytest.raises(TrainCheckpointError, load_checkpoint, path).value)):
        assert words in msg and str(path) in msg
        assert "weights_only=False" not in msg and "weights_only` set to `False" not in msg
        assert "file an issue" not in msg.lower()
    assert main(["evaluate", "--model", "awsrn-s", "--scale", "2", "--dataset", "skimage",
                 "--max-images", "1", "--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and "weights_only" not in err


# ---- 2. damaged benchmarks -------------------------------------------------------------------

@pytest.fixture
def set5_copy(tmp_path, data_dir) -> Path:
    root = tmp_path / "data"
    shutil.copytree(data_dir / "Set5", root / "Set5")
    return root


def test_intact_and_reencoded_set5_pass(set5_copy):
    from srlib.evaluate import evaluate

    bird = set5_copy / "Set5" / "HR" / "bird.png"
    with Image.open(bird) as im:  # same pixels, other bytes
        im.save(bird, compress_level=1)
    df = evaluate("bicubic", ["Set5"], [4], root=set5_copy, progress=False, max_images=1)
    assert "data_modified" not in df.attrs and "MODIFIED" not in df.source[0]


def test_missing_and_changed_images_are_errors_naming_them(set5_copy):
    from srlib.data.integrity import DatasetIntegrityError
    from srlib.evaluate import evaluate

    hr = set5_copy / "Set5" / "HR"
    (hr / "woman.png").unlink()
    with Image.open(hr / "bird.png") as im:
        im.resize((im.width // 2, im.height // 2)).resize(im.size).save(hr / "bird.png")
    with pytest.raises(DatasetIntegrityError) as exc:
        evaluate("bicubic", ["Set5"], [4], root=set5_copy, progress=False)
    msg = str(exc.value)
    assert "missing woman.png" in msg and "changed bird.png" in msg and "--allow-modified-data" in msg
    assert "baby" not in msg  # the intact images are not named
    with pytest.warns(UserWarning, match="missing woman.png"):
        df = evaluate("bicubic", ["Set5"], [4], root=set5_copy, progress=False, allow_modified=True)
    assert sorted(df.image) == ["baby", "bird", "butterfly", "head"]
    assert df.attrs["data_modified"] == {"Set5": ["missing woman.png", "changed bird.png"]}
    assert "MODIFIED" in df.source[0]


def test_cli_allow_modified_data_records_it(set5_copy, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("SRLIB_DATA_DIR", str(set5_copy))
    (set5_copy / "Set5" / "HR" / "head.png").unlink()
    assert main(["evaluate", "--model", "bicubic", "--scale", "4", "--max-images", "1"]) == 2
    assert "missing head.png" in capsys.readouterr().err
    stem = tmp_path / "t"
    assert main(["evaluate", "--model", "bicubic", "--scale", "4", "--max-images", "1",
                 "--allow-modified-data", "--format", "json", "--out", str(stem)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["data_modified"] == ["missing head.png"]
    md = stem.with_suffix(".md").read_text()
    assert md.startswith("**NOT THE PUBLISHED PROTOCOL") and "missing head.png" in md
    assert "data_modified" in stem.with_suffix(".csv").read_text()


def test_verdict_is_cached_outside_the_data_folder(set5_copy, tmp_path, monkeypatch):
    from srlib.data import datasets, integrity

    hr = set5_copy / "Set5" / "HR"
    before = sorted(p.name for p in hr.iterdir())
    hr.chmod(0o555)  # a read-only data folder
    try:
        datasets.load_hr_images("Set5", root=set5_copy)
        assert (tmp_path / "cache" / "integrity.json").is_file()
        assert sorted(p.name for p in hr.iterdir()) == before
        integrity._MEMO.clear()  # a new process: read the verdict from the cache file
        calls = []
        assert integrity.check_benchmark("Set5", hr, lambda p: calls.append(p)) == []
        assert calls == []  # nothing decoded
        os.utime(hr / "bird.png", ns=(1, 1))  # a changed mtime: verified again (bytes unchanged)
        decode = lambda p: calls.append(p.name) or (load_image(p), False)  # noqa: E731
        assert integrity.check_benchmark("Set5", hr, decode) == []
        assert sorted(calls) == before
    finally:
        hr.chmod(0o755)


def test_shipped_pixel_sums_match_the_shipped_file_sums():
    from srlib.data.catalog import _sums
    from srlib.data.integrity import expected_pixels

    for name in ("Set5", "Set14", "B100", "Urban100"):
        assert sorted(expected_pixels(name)) == sorted(f for _, f in _sums(name))
    assert expected_pixels("T91") is None


# ---- 3. a learned model without weights ----------------------------------------------------

def test_learned_model_without_checkpoint_is_refused(tmp_path, rng, capsys):
    from srlib.evaluate import evaluate

    with pytest.raises(ValueError, match="--random-init"):
        evaluate("awsrn-s", ["skimage"], [2], max_images=1, progress=False)
    assert main(["evaluate", "--model", "awsrn-s", "--dataset", "skimage", "--scale", "2"]) == 2
    assert "has no weights" in capsys.readouterr().err
    save_image(_img(rng), tmp_path / "a.png")
    assert main(["upscale", str(tmp_path / "a.png"), str(tmp_path / "o.png"), "--model", "awsrn-s",
                 "--scale", "2"]) == 2
    assert "--random-init" in capsys.readouterr().err and not (tmp_path / "o.png").exists()
    df = evaluate("awsrn-s", ["skimage"], [2], max_images=1, progress=False, random_init=True)
    assert len(df) == 1 and df.attrs["random_init"]
    assert build_upscaler("awsrn-s", 2) is not None  # library code still builds random models
    assert main(["evaluate", "--model", "bicubic", "--dataset", "skimage", "--scale", "2",
                 "--max-images", "1"]) == 0  # classical methods need no weights


# ---- 4. duplicate scales -------------------------------------------------------------------

def test_duplicate_scales_and_datasets_are_evaluated_once(capsys):
    from srlib.evaluate import evaluate, summarize

    df = evaluate("bicubic", ["skimage", "skimage"], [2, 2], max_images=1, progress=False)
    assert len(df) == 1 and summarize(df).n_images.tolist() == [1]
    assert main(["evaluate", "--model", "bicubic", "--dataset", "skimage", "--scale", "2,2",
                 "--max-images", "1", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_images"] == 1


# ---- 5. the paper profile on the wrong data --------------------------------------------------

def test_full_profile_refuses_fallback_data(tmp_path, monkeypatch):
    from srlib.data.datasets import FALLBACK_SOURCE, _skimage_images
    from srlib.train import recipes

    monkeypatch.setattr(recipes, "load_hr_images",
                        lambda *a, **k: (_skimage_images(("camera", "coins", "moon", "page", "text")),
                                         FALLBACK_SOURCE))
    with pytest.raises(ValueError, match="--allow-fallback"):
        recipes.train_sr("awsrn-s", 2, "full", out_dir=tmp_path / "run", steps=1)
    assert not (tmp_path / "run" / "checkpoints").exists()
    t = recipes.train_sr("awsrn-s", 2, "full", out_dir=tmp_path / "run", allow_fallback=True, steps=1,
                         batch_size=1, device="cpu", precision="fp32", threads=1, progress=False)
    assert t.step == 1
    assert json.loads((tmp_path / "run" / "run.json").read_text())["data"]["fallback"] is True


def test_tables_from_the_fallback_say_so_in_their_title(tmp_path):
    from srlib.evaluate import evaluate, summarize, table_title, write_table

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = evaluate("bicubic", ["Manga109"], [2], max_images=1, progress=False)  # never on disk here
    summary = summarize(df)
    assert "scikit-image fallback" in table_title(summary)
    md, csv_, tex = write_table(summary, tmp_path / "t", {"k": "v"}, formats=("md", "csv", "tex"))
    assert md.read_text().startswith("**NOT THE PUBLISHED PROTOCOL: on the scikit-image fallback")
    assert "# title: NOT THE PUBLISHED PROTOCOL" in csv_.read_text()


# ---- 6, 7, 9. batch upscaling: every file tried, clashes and outputs checked first ------------

def test_mixed_batch_processes_every_file_and_reports_the_bad_ones(tmp_path, rng, capsys):
    from srlib.inference import BatchUpscaleError, upscale_path

    src = tmp_path / "in"
    for n in ("a", "c", "e"):
        save_image(_img(rng), src / f"{n}.png")
    (src / "b.png").write_text("not an image")
    good = (src / "a.png").read_bytes()
    (src / "d.png").write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(BatchUpscaleError) as exc:
        upscale_path(build_upscaler("bicubic", 2), src, tmp_path / "out", 2, progress=False)
    assert sorted(p.name for p, _ in exc.value.failed) == ["b.png", "d.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png", "e.png"]
    rc = main(["upscale", str(src), str(tmp_path / "out2"), "--model", "bicubic", "--scale", "2"])
    err = capsys.readouterr().err
    assert rc == 1 and "wrote 3 of 5" in err and "b.png" in err and "d.png" in err
    mtime = (tmp_path / "out2" / "a.png").stat().st_mtime_ns
    (src / "b.png").unlink()
    (src / "d.png").unlink()
    assert main(["upscale", str(src), str(tmp_path / "out2"), "--model", "bicubic", "--scale", "2"]) == 2
    assert "--skip-existing" in capsys.readouterr().err
    save_image(_img(rng), src / "f.png")
    assert main(["upscale", str(src), str(tmp_path / "out2"), "--model", "bicubic", "--scale", "2",
                 "--skip-existing"]) == 0
    assert "3 existing kept" in capsys.readouterr().out
    assert (tmp_path / "out2" / "a.png").stat().st_mtime_ns == mtime
    assert (tmp_path / "out2" / "f.png").is_file()


def test_name_clash_is_detected_before_starting(tmp_path, rng, capsys):
    src = tmp_path / "in"
    save_image(_img(rng), src / "x.png")
    Image.fromarray(_img(rng)).save(src / "x.jpg")
    save_image(_img(rng), src / "y.png")
    rc = main(["upscale", str(src), str(tmp_path / "out"), "--model", "bicubic", "--scale", "2"])
    err = capsys.readouterr().err
    assert rc == 2 and "x.jpg and x.png -> x.png" in err and not (tmp_path / "out").exists()


def test_outputs_are_checked_before_any_work(tmp_path, rng, monkeypatch, capsys):
    import srlib.models

    save_image(_img(rng), tmp_path / "a.png")
    (tmp_path / "dir").mkdir()
    monkeypatch.setattr(srlib.models, "build_upscaler", lambda *a, **k: pytest.fail("model built"))
    cases = {"noext": "must be a file name ending in .png", "x.jpg": "srlib writes PNG only",
             "dir": "is a folder"}
    for out, words in cases.items():
        assert main(["upscale", str(tmp_path / "a.png"), str(tmp_path / out), "--model", "bicubic",
                     "--scale", "2"]) == 2
        err = capsys.readouterr().err
        assert words in err and ".tmp" not in err
    assert not (tmp_path / "x.jpg").exists() and not (tmp_path / "noext").exists()
    assert main(["upscale", str(tmp_path), str(tmp_path / "a.png"), "--model", "bicubic",
                 "--scale", "2"]) == 2
    assert "must be a folder too" in capsys.readouterr().err


# ---- 8, 10, 15, 16. training runs: no silent overwrite, stale temps, umask, threads ----------

def test_train_into_an_existing_run_needs_resume_or_force(tmp_path, capsys):
    from srlib.train import train_sr

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"a longer run")
    with pytest.raises(FileExistsError, match="--resume.*--force"):
        train_sr("awsrn-s", 2, "smoke", out_dir=run)
    assert main(["train", "--model", "awsrn-s", "--scale", "2", "--profile", "smoke", "--out", str(run)]) == 2
    assert "holds an earlier run" in capsys.readouterr().err
    assert (run / "checkpoints" / "last.pt").read_bytes() == b"a longer run"


def test_stale_temps_removed_and_files_respect_the_umask(tmp_path):
    from srlib.fileio import atomic_torch_save, write_json
    from srlib.train import TrainConfig, Trainer

    ck = tmp_path / "run" / "checkpoints"
    ck.mkdir(parents=True)
    stale = [ck / ".last.pt.1a2b3c4d.tmp", tmp_path / "run" / ".log.csv.0badf00d.tmp"]
    for f in stale:
        f.write_bytes(b"x" * 1000)
    (ck / "notes.tmp").write_text("mine")
    old = os.umask(0o022)
    try:
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 12, 3, padding=1), torch.nn.PixelShuffle(2))
        data = [(torch.rand(3, 4, 4), torch.rand(3, 8, 8)) for _ in range(4)]
        cfg = TrainConfig(steps=2, batch_size=2, lr=1e-3, log_every=1, checkpoint_every=1, progress=False,
                          threads=1, precision="fp32", device="cpu")
        Trainer(model, data, cfg, tmp_path / "run").fit()
        made = [ck / "last.pt", tmp_path / "run" / "log.csv", write_json(tmp_path / "r.json", {}),
                atomic_torch_save({}, tmp_path / "w.pt"),
                save_image(np.zeros((2, 2, 3), np.uint8), tmp_path / "o.png")]
        assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in made} == {"0o644"}
        os.umask(0o077)
        assert stat.S_IMODE(write_json(tmp_path / "s.json", {}).stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert not any(f.exists() for f in stale) and (ck / "notes.tmp").exists()


def test_train_threads_flag_and_omp_num_threads(monkeypatch):
    import srlib.train

    seen = {}

    class Done:
        step, metrics, out_dir = 0, {}, Path(".")

    monkeypatch.setattr(srlib.train, "train_sr", lambda *a, **k: seen.update(k) or Done())
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert main(["train", "--model", "awsrn-s", "--scale", "2"]) == 0 and seen["threads"] == 3
    assert main(["train", "--model", "awsrn-s", "--scale", "2", "--threads", "1"]) == 0
    assert seen["threads"] == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    seen.clear()
    assert main(["train", "--model", "awsrn-s", "--scale", "2"]) == 0 and "threads" not in seen


# ---- 11. a huge image ------------------------------------------------------------------------

def test_too_large_image_says_how_to_proceed(tmp_path, rng, monkeypatch, capsys):
    save_image(_img(rng, 60, 52), tmp_path / "big.png")
    with pytest.raises(ImageTooLargeError, match=r"--max-pixels 3120.*--tile"):
        load_image(tmp_path / "big.png", max_pixels=1000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL's own bomb check fires (3120 > 2000)
    with pytest.raises(ImageTooLargeError, match="decompression bombs"):
        load_image(tmp_path / "big.png")
    assert load_image(tmp_path / "big.png", max_pixels=10_000).shape == (60, 52, 3)
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored
    rc = main(["upscale", str(tmp_path / "big.png"), str(tmp_path / "o.png"), "--model", "bicubic",
               "--scale", "2"])
    err = capsys.readouterr().err
    assert rc == 2 and "decompression bombs" in err and "--max-pixels" in err
    assert "Traceback" not in err and "DecompressionBombError" not in err
    assert main(["upscale", str(tmp_path / "big.png"), str(tmp_path / "o.png"), "--model", "bicubic",
                 "--scale", "2", "--max-pixels", "5000"]) == 0


# ---- 12, 16. command-line strings ------------------------------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["evaluate", "--model", "bicubic", "--scale", "x"], ["--scale", "'x' is not an integer scale"]),
    (["evaluate", "--model", "bicubic", "--scale", ""], ["--scale", "integer scales"]),
    (["evaluate", "--model", "bicubic", "--scale", "2,,4"], ["--scale"]),
    (["evaluate", "--model", "bicubic", "--scale", "0"], ["--scale", "positive"]),
    (["evaluate", "--model", "bicubic", "--dataset", ""], ["--dataset", "list of names"]),
    (["upscale", "a.png", "b.png", "--model", "bicubic", "--scale", "2", "--tile", "0"],
     ["--tile", "positive"]),
    (["train", "--model", "awsrn-s", "--scale", "2", "--threads", "0"], ["--threads", "positive"]),
])
def test_bad_command_line_values_name_the_flag(argv, words, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and all(w in err for w in words), err
    assert "Label(s)" not in err and "invalid literal" not in err


# ---- 14. SRLIB_DATA_DIR pointing nowhere ------------------------------------------------------

def test_missing_data_dir_is_named_and_not_created(tmp_path, monkeypatch):
    from srlib.data import catalog
    from srlib.data.datasets import load_hr_images

    nowhere = tmp_path / "no" / "such"
    monkeypatch.setenv("SRLIB_DATA_DIR", str(nowhere))
    with pytest.raises(catalog.DatasetNotFoundError, match=f"SRLIB_DATA_DIR={nowhere} does not exist"):
        catalog.download_dataset("Set5")
    with pytest.raises(catalog.DatasetNotFoundError, match="does not exist"):
        load_hr_images("Set5", fallback=False)
    with pytest.warns(UserWarning, match="does not exist"):
        load_hr_images("Set5", max_images=1)
    assert not (tmp_path / "no").exists()


def test_failed_download_leaves_no_empty_partial_folder(tmp_path, monkeypatch):
    from srlib.data import catalog

    def boom(*a, **k):
        raise ConnectionError("network unreachable")

    monkeypatch.setattr(catalog, "download_file", boom)
    with pytest.raises(catalog.DatasetNotFoundError, match="Download failed"):
        catalog.download_dataset("Set5", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_table_title_takes_one_source_as_a_string():
    import pandas as pd

    from srlib.data.datasets import FALLBACK_SOURCE
    from srlib.evaluate import table_title

    df = pd.DataFrame({"psnr": [30.0]})
    df.attrs["data_source"] = "Set5 (a folder)"  # e.g. resampler_study's attrs
    assert table_title(df) == ""
    df.attrs["data_source"] = FALLBACK_SOURCE
    assert table_title(df).startswith("NOT THE PUBLISHED PROTOCOL")
