"""Evaluation: the published bicubic rows, tables with provenance, the srlib command."""
import json

import pandas as pd
import pytest
import torch

from srlib.cli import main
from srlib.evaluate import compare_published, evaluate, read_table, summarize, write_table
from srlib.models import build_upscaler
from srlib.reference import published


@pytest.fixture(scope="module")
def bicubic_table(data_dir):
    df = evaluate("bicubic", ["Set5", "Set14", "B100", "Urban100"], [2, 3, 4], progress=False)
    df_y = evaluate("bicubic", ["Set14"], [2, 3, 4], gray_rule="y", progress=False)
    return summarize(df), summarize(df_y)


@pytest.mark.parametrize("dataset", ["Set5", "B100", "Urban100"])
def test_bicubic_reproduces_published_rows(bicubic_table, dataset):
    ours = compare_published(bicubic_table[0], model="bicubic")
    rows = ours[ours.dataset == dataset]
    assert len(rows) == 3 and rows.psnr_paper.notna().all()
    assert rows.psnr_delta.abs().max() <= 0.02, rows
    assert rows.ssim_delta.abs().max() <= 0.002, rows


def test_set14_published_rows_treat_bridge_as_gray(bicubic_table):
    rgb = compare_published(bicubic_table[0], model="bicubic")
    gray = compare_published(bicubic_table[1], model="bicubic")
    assert gray.psnr_delta.abs().max() <= 0.03  # the gray rule lands on the published rows
    assert rgb.query("dataset == 'Set14'").psnr_delta.abs().max() <= 0.10
    assert (rgb.query("dataset == 'Set14'").psnr.values > gray.psnr.values + 0.05).all()


def test_per_image_rows_and_means(data_dir):
    df = evaluate("bicubic", ["Set5"], [4], progress=False)
    assert list(df.columns) == ["model", "dataset", "scale", "image", "psnr", "ssim", "seconds", "source"]
    assert len(df) == 5 and set(df.image) == {"baby", "bird", "butterfly", "head", "woman"}
    s = summarize(df)
    assert s.n_images.item() == 5 and s.psnr.item() == pytest.approx(df.psnr.mean())


def test_a_torch_model_is_evaluated_like_a_classical_method(data_dir):
    class Nearest2(torch.nn.Module):
        scale = 2

        def forward(self, x):
            return x.repeat_interleave(2, -1).repeat_interleave(2, -2)

    ours = summarize(evaluate(Nearest2(), ["Set5"], [2], name="nn2", progress=False))
    ref = summarize(evaluate("nearest", ["Set5"], [2], progress=False))
    assert ours.psnr.item() == pytest.approx(ref.psnr.item(), abs=1e-9)
    with pytest.raises(ValueError, match="x2, not x4"):
        evaluate(Nearest2(), ["Set5"], [4], progress=False)


@pytest.mark.parametrize("method", ["bicubic", "bilinear", "nearest"])
def test_the_uint8_shortcut_gives_the_float_paths_numbers(monkeypatch, data_dir, method):
    """The INTER baselines are evaluated through ``upscale_uint8``: the same table as through their
    forward on float tensors and quantize8."""
    from srlib.classical.inter import Interpolation

    short = evaluate(method, ["Set5", "Set14"], [2, 3, 4], progress=False)
    monkeypatch.delattr(Interpolation, "upscale_uint8")
    full = evaluate(method, ["Set5", "Set14"], [2, 3, 4], progress=False)
    assert short.psnr.tolist() == full.psnr.tolist() and short.ssim.tolist() == full.ssim.tolist()


def test_bicubic_beats_bilinear_beats_nearest(data_dir):
    means = [summarize(evaluate(m, ["Set5"], [4], progress=False)).psnr.item()
             for m in ("bicubic", "bilinear", "nearest")]
    assert means[0] > means[1] > means[2]


def test_tables_carry_provenance(tmp_path):
    df = pd.DataFrame({"dataset": ["Set5"], "psnr": [28.4]})
    paths = write_table(df, tmp_path / "t", {"profile": "smoke", "commit": "abc"})
    assert sorted(p.suffix for p in paths) == [".csv", ".md", ".tex"]
    assert "# profile: smoke" in (tmp_path / "t.csv").read_text()
    assert "commit: abc" in (tmp_path / "t.md").read_text() and "% profile: smoke" in (tmp_path / "t.tex").read_text()
    assert read_table(tmp_path / "t.csv").equals(df)


def test_published_copy_names_sources():
    rows = published(model="bicubic", scale=4)
    assert set(rows.dataset) >= {"Set5", "Set14", "B100", "Urban100"}
    assert rows.source.str.contains("RCAN").all()


def test_classical_method_refuses_a_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="takes no --checkpoint"):
        build_upscaler("bicubic", 4, tmp_path / "x.pt")


def test_cli_evaluate_json(data_dir, capsys):
    assert main(["evaluate", "--model", "bicubic", "--dataset", "Set5", "--scale", "4", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"dataset", "scale", "n_images", "psnr", "ssim"} <= set(out)
    assert out["n_images"] == 5 and abs(out["psnr"] - 28.42) < 0.02 and abs(out["ssim"] - 0.8104) < 0.002


def test_cli_errors_are_one_clear_line(capsys):
    assert main(["evaluate", "--model", "nosuch", "--dataset", "Set5"]) == 2
    err = capsys.readouterr().err
    assert "unknown upscaler 'nosuch'" in err and "bicubic" in err and "Traceback" not in err


def test_cli_bad_checkpoint(tmp_path, capsys, data_dir):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["evaluate", "--model", "awsrn-s", "--scale", "4", "--checkpoint", str(bad)]) == 2
    assert "cannot read checkpoint" in capsys.readouterr().err


def test_cli_data_list(capsys, data_dir):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "Urban100" in out and "SRLIB_DATA_DIR" in out


def test_cli_models_lists_classical_methods_and_models_in_one_registry(capsys):
    from srlib.models import describe_upscalers, list_upscalers

    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    kinds = {ln.split()[0]: ln.split()[1] for ln in lines[1:]}
    assert lines[0].split()[:3] == ["name", "kind", "scales"]
    assert list(kinds) == list_upscalers() == [r["name"] for r in describe_upscalers()]
    assert {n for n, k in kinds.items() if k == "classical"} == {"bicubic", "bilinear", "nearest", "ne", "sc"}
    assert kinds["awsrn-s"] == kinds["pan"] == "model" and "x2,x3,x4,x8" in next(
        ln for ln in lines if ln.startswith("awsrn "))


def test_batched_metrics_equal_one_image_at_a_time(tmp_path, monkeypatch):
    """evaluate_set measures equal-size images in batches: the same numbers as one at a time
    (PSNR bit for bit, SSIM to float64 rounding), and as the numpy metrics image by image."""
    import numpy as np

    import srlib.evaluate as ev
    from srlib.data import save_image
    from srlib.data.datasets import BenchmarkSet
    from srlib.metrics import psnr, ssim

    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:48, 0:36]
    for i, (h, w) in enumerate([(48, 36), (48, 36), (36, 48), (48, 36), (40, 40)]):
        base = 128 + 80 * np.sin(x[:h, :w] / (2 + i)) * np.cos(y[:h, :w] / 3) if (h, w) == (48, 36) else \
            rng.integers(0, 256, (h, w))
        img = np.clip(np.stack([base, base.T[:h, :w] if h == w else base, base[::-1]], 2)
                      + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
        save_image(img[..., 0] if i == 3 else img, tmp_path / "Tiny" / "HR" / f"im{i}.png")  # im3 is gray
    bench = BenchmarkSet("Tiny", 3, root=tmp_path)
    model = build_upscaler("bicubic", 3)
    for rule in ("rgb", "y"):
        batched = ev.evaluate_set(model, bench, rule, progress=False)
        monkeypatch.setattr(ev, "PENDING_PIXELS", 1)  # measure every image on its own
        single = ev.evaluate_set(model, bench, rule, progress=False)
        monkeypatch.undo()
        assert [r["image"] for r in batched] == [f"im{i}" for i in range(5)]
        for b, s, item in zip(batched, single, bench):
            assert b["psnr"] == s["psnr"] and abs(b["ssim"] - s["ssim"]) < 1e-12
            sr = (model(ev.to_tensor(item.lr))[0].permute(1, 2, 0) * 255).round().byte().numpy()
            gray = rule == "y" and item.gray
            assert b["psnr"] == psnr(sr, item.hr, 3, as_gray=gray)
            assert abs(b["ssim"] - ssim(sr, item.hr, 3, as_gray=gray)) < 1e-12
    assert bench[3].gray and not bench[0].gray
