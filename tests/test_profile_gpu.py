"""The one-GPU profile: its figures, DIV2K's layouts, the gpu-check and its estimate."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from srlib import gpucheck
from srlib.data import catalog as cat
from srlib.data.datasets import DatasetNotFoundError, load_hr_images
from srlib.profiles import BENCHMARKS, GPU_02_STEPS, GPU_03_STEPS, GPU_MINUTES, get_profile


def _pngs(folder, names, hw=(200, 200), seed=0):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for n in names:
        small = rng.integers(0, 256, (hw[0] // 8, hw[1] // 8, 3), dtype=np.uint8)
        Image.fromarray(np.repeat(np.repeat(small, 8, 0), 8, 1)).save(folder / f"{n}.png")


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("SRLIB_DATA_DIR", str(root))
    monkeypatch.setenv("SRLIB_CACHE_DIR", str(tmp_path / "cache"))
    return root


def test_the_gpu_profile_figures():
    p = get_profile("gpu")
    assert (p.train_dataset, p.lr_patch, p.batch_size, p.val_dataset) == ("DIV2K", 48, 16, "DIV2K_valid")
    assert p.eval_datasets == BENCHMARKS and p.eval_max_images is None and p.eval_scales == (2, 3, 4)
    assert sum(p.budget(k).minutes for k in ("01", "02", "03", "04", "05", "06", "07")) == 120
    assert p.shares_minutes == p.total_minutes == sum(GPU_MINUTES.values())
    assert p.budget("02").steps == p.steps and p.lr_step == p.steps // 5
    for nb in ("03", "04", "05"):
        assert p.budget(nb).seeds == 2 and p.budget(nb).images is None


def test_the_shares_hold_at_the_assumed_rate():
    """The reasoning beside GPU_MINUTES, recomputed from the studies' own arms."""
    est = gpucheck.estimate_minutes(gpucheck.assumed_check())
    for nb, part in est["parts"].items():
        assert 0 < part["minutes"] <= part["share"], (nb, part)
    assert est["total"] <= 120


def test_the_estimate_of_a_hand_made_check(tmp_path):
    check = {"train": {"steps_per_s": 50.0}, "train_fp32": {"steps_per_s": 25.0},
             "train_hybrid": {"steps_per_s": 10.0}, "data_prep": {"s_per_image": 0.3},
             "train_models": {"awsrn-s-improved": {"steps_per_s": 25.0}, "imfm": {"steps_per_s": 5.0},
                              "imdn": {"steps_per_s": 25.0}, "cnn": {"steps_per_s": 100.0}}}
    path = tmp_path / "gpu_check.json"
    path.write_text(json.dumps(check))
    est = gpucheck.estimate_minutes(path)
    assert est["costs"]["fp32"] == 2.0 and est["costs"]["hybrid"] == 5.0 and est["costs"]["imfm"] == 10.0
    # 02: S bf16 steps + S/4 fp32 (x2) + S/4 bf16 = 1.75 S units at 50/s; evaluation 0.5 (one arm,
    # four benchmarks) + 2 x 0.125 (two arms, Set5 only); DIV2K at x4: 800 x 0.3 s = 4.0 min; 1.5 besides
    s02 = GPU_02_STEPS
    train02 = (s02 + 2 * (s02 // 4) + s02 // 4) / 50 / 60
    two = est["parts"]["02"]
    assert (two["train_minutes"], two["data_prep_minutes"], two["share"]) == (round(train02, 1), 4.0, 17)
    assert two["eval_minutes"] == pytest.approx(0.75, abs=0.051)
    assert two["minutes"] == pytest.approx(train02 + 0.75 + 4.0 + 1.5, abs=0.051)
    # 03: 2 baselines x S + 7 improved arms x S x 2 = 16 S units; 9 evaluations
    train03 = 16 * GPU_03_STEPS / 50 / 60
    assert est["parts"]["03"]["train_minutes"] == round(train03, 1)
    assert est["parts"]["03"]["minutes"] == pytest.approx(train03 + 4.5 + 4.0 + 1.5, abs=0.051)
    assert est["parts"]["06"]["data_prep_minutes"] == 8.0  # the seed 002 CNN trains at x2 and x4
    # everything timed at batch 8 of 24x24 (an eighth of the pixels: 8x the rates), the preparation
    # on images of a quarter of DIV2K's size: the same estimate
    small = {"train": {"steps_per_s": 400.0, "batch": 8, "lr_patch": 24}, "train_fp32": {"steps_per_s": 200.0},
             "train_hybrid": {"steps_per_s": 80.0}, "data_prep": {"s_per_image": 0.075, "hw": [678, 1020]},
             "train_models": {m: {"steps_per_s": 8 * t["steps_per_s"]} for m, t in check["train_models"].items()}}
    assert gpucheck.estimate_minutes(small)["parts"]["02"] == est["parts"]["02"]
    with pytest.raises(FileNotFoundError, match="make gpu-check"):
        gpucheck.estimate_minutes(tmp_path / "missing.json")


def test_div2k_layout_trains_under_the_gpu_profile(data_dir, tmp_path):
    from srlib.train.recipes import patch_dataset, train_sr, validation_split

    _pngs(data_dir / "DIV2K_train_HR", [f"{i:04d}" for i in range(1, 7)])
    _pngs(data_dir / "DIV2K_valid_HR", [f"{i:04d}" for i in range(801, 804)], seed=1)
    p = get_profile("gpu").with_(steps=2)
    images, val = validation_split(p)
    assert val["dataset"] == "DIV2K_valid" and val["images"] == ["0801", "0802", "0803"]
    assert not val["held_out_of_training"] and "$SRLIB_DATA_DIR/DIV2K_valid_HR" in val["source"]
    data, source = patch_dataset(p, 4)
    assert len(data.pairs) == 6 and len(data) == 2 * 16 and source == "DIV2K ($SRLIB_DATA_DIR/DIV2K_train_HR)"
    lr, hr = data[0]
    assert lr.shape == (3, 48, 48) and hr.shape == (3, 192, 192)
    t = train_sr("awsrn-s", 4, p, out_dir=tmp_path / "run", batch_size=2, device="cpu", precision="fp32",
                 threads=1, progress=False, validate_every=2, checkpoint_every=2)
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert t.step == 2 and rec["status"] == "finished"
    assert rec["data"]["train_dataset"] == "DIV2K" and rec["data"]["n_images"] == 6 and not rec["data"]["fallback"]
    assert rec["validation"]["dataset"] == "DIV2K_valid"


def test_a_div2k_folder_holding_both_splits_keeps_them_apart(data_dir):
    _pngs(data_dir / "DIV2K" / "HR", ["0799", "0800", "0801"], hw=(16, 16))
    images, source = load_hr_images("DIV2K", download=False, fallback=False)
    assert [im.name for im in images] == ["0799", "0800"] and "1 files outside 0001-0800 left out" in source
    with pytest.raises(DatasetNotFoundError, match="DIV2K_valid_HR"):
        load_hr_images("DIV2K_valid", download=False, fallback=False)


def test_without_div2k_and_network_the_error_says_what_to_do(data_dir, monkeypatch, tmp_path):
    from srlib.train.recipes import train_sr

    def offline(url, *a, **k):
        raise ConnectionError(f"cannot download {url}: offline")

    monkeypatch.setattr(cat, "download_file", offline)
    with pytest.raises(DatasetNotFoundError) as err:
        load_hr_images("DIV2K", fallback=False)
    for part in (f"{data_dir}/DIV2K/HR/", f"{data_dir}/DIV2K_train_HR/", "srlib data download DIV2K", "3.5 GB"):
        assert part in str(err.value)
    assert not (data_dir / "DIV2K.partial").exists()
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="srlib data download DIV2K") as err:
        train_sr("awsrn-s", 4, get_profile("gpu").with_(steps=2), out_dir=tmp_path / "run", device="cpu")
    assert "about 3.5 GB" in str(err.value) and "'gpu'" in str(err.value)


def test_gpu_check_runs_its_cpu_path(tmp_path):
    out = tmp_path / "gpu_check.json"
    rc = gpucheck.main(["--device", "cpu", "--allow-cpu", "--steps", "2", "--warmup", "1", "--other-steps", "1",
                        "--batch", "2", "--lr-patch", "12", "--lr-size", "16", "--prep-images", "1", "--no-smoke",
                        "--out", str(out)])
    assert rc == 0
    rec = json.loads(out.read_text())
    assert rec["info"]["gpu"] is None and rec["info"]["torch"] == torch.__version__
    t = rec["train"]
    assert (t["model"], t["steps"], t["batch"], t["lr_patch"], t["precision"]) == ("awsrn-s", 2, 2, 12, "bf16")
    assert t["steps_per_s"] > 0 and t["images_per_s"] == pytest.approx(2 * t["steps_per_s"], rel=0.01)
    assert rec["train_fp32"]["precision"] == "fp32" and rec["train_hybrid"]["hybrid"]
    assert set(rec["train_models"]) == set(gpucheck.OTHER_MODELS)
    assert [i["precision"] for i in rec["inference"]] == ["bf16", "fp32"]
    assert rec["data_prep"]["s_per_image"] > 0 and "estimate" not in rec  # no estimate from a CPU
    assert gpucheck.estimate_minutes(out)["parts"]["02"]["minutes"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is here: the check would measure it")
def test_gpu_check_without_cuda_says_so(capsys):
    assert gpucheck.main(["--no-smoke"]) == 3
    assert "CUDA is not available" in capsys.readouterr().err
    assert gpucheck.main(["--device", "cpu"]) == 2
    assert "--allow-cpu" in capsys.readouterr().err


def test_a_large_folder_decoded_by_threads_reads_the_same(data_dir, monkeypatch):
    from srlib.data import datasets as D

    _pngs(data_dir / "DIV2K_train_HR", ["0001", "0002", "0003"], hw=(16, 24))
    serial, _ = load_hr_images("DIV2K", download=False, fallback=False)
    D._load_cached.cache_clear()
    monkeypatch.setattr(D, "PARALLEL_DECODE_MIN", 2)
    monkeypatch.setattr(D.os, "cpu_count", lambda: 4)
    threaded, _ = load_hr_images("DIV2K", download=False, fallback=False)
    assert [im.name for im in threaded] == ["0001", "0002", "0003"]
    assert all(np.array_equal(a.hr, b.hr) and a.key == b.key for a, b in zip(serial, threaded))
