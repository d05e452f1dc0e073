"""The benchmark page builder (benchmarks/page.py): arithmetic and rendering on hand-made numbers.

No timing here (DESIGN.md: speed lives in benchmarks/, tests assert behaviour); the page is
rendered from a dict of measurements whose ratios and ceiling percentages are worked out by hand.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_page():
    spec = importlib.util.spec_from_file_location("bench_page", ROOT / "benchmarks" / "page.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


page = _load_page()

WHY = "basicsr does not import here (torchvision has no transforms.functional_tensor)"


def measurements() -> dict:
    return {
        "header": {"cpu": "Test CPU 9000", "threads": 2, "torch": "2.9.9", "bf16_mode": "native (AVX512-BF16)",
                   "date": "2026-01-02 03:04 UTC", "load_start": [0.1, 0.2, 0.3], "load_end": [1.0, 0.5, 0.25],
                   "seconds": 123.4, "setting": "full"},
        "ceiling": {"gemm_n": 2048, "conv_shape": "3x3 conv 32->128 on 1x32x256x256",
                    "fp32": {"gemm_gflops": 174.0, "conv_gflops": 150.0},
                    "bf16": {"gemm_gflops": 403.0, "conv_gflops": 500.0}},
        "protocol": {
            "the small table": {"datasets": ["Set5", "Set14", "B100"], "n_evaluations": 357, "srlib_s": 4.3,
                                "basicsr_s": 22.7, "basicsr_why": None, "numpy_ref_s": 31.8, "decode_s": 0.5,
                                "max_abs_psnr_diff": 1e-6, "max_abs_ssim_diff": 2e-7,
                                "basicsr_max_abs_psnr_diff": 5e-5, "basicsr_max_abs_ssim_diff": 6e-6,
                                "srlib_torch_s": 8.6, "torch_max_abs_psnr_diff": 0.0,
                                "torch_max_abs_ssim_diff": 5e-14, "kernels": "numba kernels (srlib.kernels)",
                                "first_set5_s": 0.75, "second_set5_s": 0.06},
            "the whole table": {"datasets": ["Set5", "Set14", "B100", "Urban100"], "n_evaluations": 657,
                                "srlib_s": 28.6, "basicsr_s": None, "basicsr_why": WHY, "numpy_ref_s": 100.0,
                                "decode_s": 2.6, "max_abs_psnr_diff": 3e-6, "max_abs_ssim_diff": 4e-7},
        },
        "inference": {"model": "awsrn-s", "peer": "super-image AwsrnModel", "scale": 4, "size": 256,
                      "bf16_mode": "native", "peer_why": None, "weights": "same (test)",
                      "max_abs_diff_levels": 1e-4, "flops_srlib": 60e9, "flops_peer": 76.8e9,
                      "fp32": {"srlib_s": 0.4, "peer_s": 0.6}, "bf16": {"srlib_s": 0.2, "peer_s": 0.66}},
        "training": {"model": "awsrn-s", "scale": 4, "batch": 16, "patch": 32, "bf16_mode": "native",
                     "flops_step": 58e9,
                     "fp32": {"precision": "fp32", "channels_last": False, "bare": 2.5, "trainer": 2.0,
                              "overhead": 25.0},
                     "bf16": {"precision": "bf16", "channels_last": True, "bare": 4.0, "trainer": 4.0,
                              "overhead": 0.0}},
        "classical": {"reference": "5c7c4ad", "scale": 2, "images": 1, "repeat": 1, "threads": 2, "profile": "quick",
                      "ne": {"before_s_per_mp": 26.0, "after_s_per_mp": 6.5, "mp": 0.66, "max_diff_levels": 0.0},
                      "sc": {"error": "FileNotFoundError: no dictionary"}},
    }


def _row(text: str, section: str, first_cell: str) -> list[str]:
    """Cells of the table row starting with ``first_cell`` in the section titled ``section``."""
    body = text.split(section, 1)[1].split("\n## ", 1)[0]
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} under {section!r}:\n{body}")


def test_ratio_and_ceiling_arithmetic():
    assert page.ratio(22.7, 4.3) == pytest.approx(5.27907, rel=1e-5)
    assert page.ratio(None, 4.3) is None and page.ratio(1.0, None) is None and page.ratio(1.0, 0.0) is None
    # 76.8 GFLOP in 0.5 s is 153.6 GFLOP/s, 88.28% of a 174 GFLOP/s ceiling
    assert page.gflops(76.8e9, 0.5) == pytest.approx(153.6)
    assert page.percent_of_ceiling(76.8e9, 0.5, 174.0) == pytest.approx(88.2759, rel=1e-5)
    assert page.percent_of_ceiling(76.8e9, None, 174.0) is None
    assert page.percent_of_ceiling(76.8e9, 0.5, None) is None


def test_protocol_rows_are_ratios_with_times_beside():
    text = page.render(measurements())
    small = _row(text, "## 1.", "the small table (Set5, Set14, B100)")
    assert small[1] == "357"
    assert small[2] == "**5.28x** faster"      # 22.7 / 4.3
    assert small[3] == "**7.40x** faster"      # 31.8 / 4.3
    assert small[4] == "**8.60x** the floor"   # 4.3 / 0.5
    assert small[5] == "**2.00x** faster"      # the torch code 8.6 / the kernels 4.3
    assert small[6] == "4.300 s / 22.7 s / 31.8 s / 0.500 s / 8.600 s"
    assert small[7:] == ["1.0e-06 / 2.0e-07", "5.0e-05 / 6.0e-06"]
    assert "kernels vs torch code: max |dPSNR| 0.0e+00 dB, |dSSIM| 5.0e-14" in text
    assert "Set5 table took 0.750 s the first time, 0.060 s the second" in text
    whole = _row(text, "## 1.", "the whole table (Set5, Set14, B100, Urban100)")
    assert whole[2] == "n/a"                   # BasicSR missing: said why, no ratio
    assert whole[3] == "**3.50x** faster"      # 100 / 28.6
    assert "Not timed: the NumPy port" not in text
    assert whole[4] == "**11.00x** the floor"  # 28.6 / 2.6
    assert whole[5] == "n/a"                   # the torch code not timed there
    assert whole[7:] == ["3.0e-06 / 4.0e-07", "n/a / n/a"]
    assert f"Not timed: BasicSR, {WHY}" in text


def test_inference_rows_give_ratio_and_share_of_ceiling():
    text = page.render(measurements())
    fp32 = _row(text, "## 2.", "fp32")
    # 0.6 / 0.4; 60 GFLOP / 0.4 s = 150 GFLOP/s: 86% of 174, 100% of 150; peer 128 GFLOP/s: 74% of 174
    assert fp32[1:6] == ["**1.50x** faster", "86%", "100%", "74%", "0.400 s / 0.600 s"]
    bf16 = _row(text, "## 2.", "bf16 (native)")
    # 0.66 / 0.2; 300 GFLOP/s: 74% of 403, 60% of 500; peer 116.4 GFLOP/s: 29% of 403
    assert bf16[1:5] == ["**3.30x** faster", "74%", "60%", "29%"]
    # the paper's 76.8 GFLOP in srlib's 0.4 s / 0.2 s: 192 / 174 = 110%, 384 / 403 = 95%
    assert "srlib's pass reaches 110% in fp32 and 95% in bf16 of the GEMM ceiling" in text


def test_training_rows_give_ratio_overhead_and_share_of_ceiling():
    text = page.render(measurements())
    fp32 = _row(text, "## 3.", "fp32")
    # 2.0 / 2.5 steps/s; 58 GFLOP x 2.0/s = 116 GFLOP/s = 67% of 174; bare 145 GFLOP/s = 83%
    assert fp32[1:4] == ["**0.80x** (overhead +25.0%)", "67%", "83%"]
    assert fp32[5:] == ["2.00 / 2.50", "no"]
    assert _row(text, "## 3.", "bf16 (native)")[1] == "**1.00x** (overhead +0.0%)"


def test_header_names_machine_threads_precision_and_load():
    text = page.render(measurements())
    row = _row(text, "# Benchmarks", "Test CPU 9000")
    assert row[1:4] == ["2", "2.9.9", "native (AVX512-BF16)"]
    assert row[4] == "0.10 / 0.20 / 0.30 -> 1.00 / 0.50 / 0.25" and row[5] == "123 s"
    assert "2026-01-02 03:04 UTC" in text and "Reduced run" not in text
    assert _row(text, "## Machine ceiling", "bf16")[1:] == ["403", "500"]


def test_missing_parts_say_why():
    m = measurements()
    m["protocol"]["the whole table"] = {"datasets": ["Urban100"], "error": "FileNotFoundError: no Urban100"}
    m["inference"].update(peer_why="super-image does not import", fp32={"srlib_s": 0.4}, bf16={"srlib_s": 0.2})
    m["header"]["setting"] = "tiny"
    text = page.render(m)
    assert "Not timed: the whole table: FileNotFoundError: no Urban100" in text
    assert _row(text, "## 1.", "the whole table (Urban100)")[2] == "n/a"
    assert _row(text, "## 1.", "the small table (Set5, Set14, B100)")[2] == "**5.28x** faster"
    assert "super-image not timed: super-image does not import" in text
    assert _row(text, "## 2.", "fp32")[1:5] == ["n/a", "86%", "100%", "n/a"]
    assert "Reduced run" in text
    assert "Not timed: the NumPy port on the whole table" not in text  # the whole table failed: said so instead
    m["protocol"]["the whole table"] = {**measurements()["protocol"]["the whole table"], "numpy_ref_s": None}
    assert "Not timed: the NumPy port on the whole table" in page.render(m)
    m["protocol"] = {"error": "bench_protocol.measure is missing"}
    assert "Not measured: bench_protocol.measure is missing" in page.render(m)


def test_render_from_saved_measurements_writes_the_page(tmp_path, capsys):
    saved, out = tmp_path / "m.json", tmp_path / "README.md"
    saved.write_text(json.dumps(measurements()))
    page.main(["--render", str(saved), "--out", str(out)])
    assert out.read_text() == page.render(measurements())
    assert capsys.readouterr().out == out.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "m.json"]  # no temporary left behind


def test_protocol_measure_calls_bench_protocol_per_table_and_keeps_errors(monkeypatch):
    import types

    calls = []

    def measure(datasets, threads, repeats, **kwargs):
        calls.append((datasets, threads, repeats, kwargs))
        if "Urban100" in datasets:
            raise FileNotFoundError("Urban100/HR is missing")
        return {"n_evaluations": 15, "srlib_s": 1.0}

    monkeypatch.setitem(__import__("sys").modules, "bench_protocol", types.SimpleNamespace(measure=measure))
    got = page._protocol_measure({"small": (("Set5",), {}), "whole": (("Set5", "Urban100"), {"reference": False})},
                                 2, 1)
    assert calls == [(["Set5"], 2, 1, {}), (["Set5", "Urban100"], 2, 1, {"reference": False})]
    assert got["small"] == {"datasets": ["Set5"], "n_evaluations": 15, "srlib_s": 1.0}
    assert got["whole"] == {"datasets": ["Set5", "Urban100"], "error": "FileNotFoundError: Urban100/HR is missing"}


def test_a_tiny_run_never_replaces_the_page(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(page, "PAGE", tmp_path / "README.md")
    m = measurements()
    m["header"]["setting"] = "tiny"
    (tmp_path / "tiny.json").write_text(json.dumps(m))
    page.main(["--render", str(tmp_path / "tiny.json")])
    assert "Reduced run" in capsys.readouterr().out and not (tmp_path / "README.md").exists()
    (tmp_path / "full.json").write_text(json.dumps(measurements()))
    page.main(["--render", str(tmp_path / "full.json")])
    assert (tmp_path / "README.md").read_text() == page.render(measurements())


def test_classical_rows_are_golden_era_over_today():
    text = page.render(measurements())
    assert _row(text, "## 4.", "NE+LLE")[1:] == ["**4.00x** faster", "26.0 / 6.5", "0.0e+00"]
    assert _row(text, "## 4.", "ScSR")[1:3] == ["n/a", "not measured: FileNotFoundError: no dictionary"]
    assert "reference commit `5c7c4ad`" in text
    m = measurements()
    m["classical"] = None  # a --tiny run skips it
    assert "Not measured: reduced run (`--tiny`)" in page.render(m)
    m["classical"] = {"error": "CalledProcessError: not a git checkout"}
    assert "Not measured: CalledProcessError: not a git checkout" in page.render(m)
