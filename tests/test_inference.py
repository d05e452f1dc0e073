"""Inference path: folded weight norm, tiling equals untiled, self-ensemble, the upscale command."""
import numpy as np
import pytest
import torch

from srlib.cli import main
from srlib.data import load_image, save_image
from srlib.inference import fold_weight_norm, prepare, self_ensemble, tiled, upscale_tensor
from srlib.models import build_model


@pytest.fixture(scope="module")
def awsrn():
    torch.manual_seed(0)
    return build_model("awsrn-s", 2).eval()


def test_prepare_folds_weight_norm_and_keeps_the_output(awsrn):
    x = torch.rand(1, 3, 20, 24)
    fast = prepare(awsrn)
    with torch.no_grad():
        assert (fast(x) - awsrn(x)).abs().max() < 1e-5
    generic = fold_weight_norm(build_model("awsrn-s", 2))
    assert not any("parametrizations" in k for k in generic.state_dict())


def test_tiled_equals_untiled_for_a_local_model(awsrn):
    x = torch.rand(1, 3, 37, 45, generator=torch.Generator().manual_seed(1))
    whole = upscale_tensor(awsrn, x, 2)
    parts = tiled(awsrn, x, 2, tile=16, overlap=16).clamp(0, 1)
    assert parts.shape == whole.shape == (1, 3, 74, 90)
    assert (parts - whole).abs().max() < 1e-5
    # too little context shows at the seams: the test can fail
    assert (tiled(awsrn, x, 2, tile=16, overlap=1).clamp(0, 1) - whole).abs().max() > 1e-4


def test_self_ensemble_of_an_equivariant_map_is_the_map():
    up = lambda t: t.repeat_interleave(2, -1).repeat_interleave(2, -2)
    x = torch.rand(1, 3, 7, 9)
    assert torch.allclose(self_ensemble(up, x), up(x))
    shifted = lambda t: torch.roll(up(t), 1, dims=-1)  # not equivariant: the ensemble differs
    assert not torch.allclose(self_ensemble(shifted, x), shifted(x))


def test_upscale_command_file_folder_and_force(tmp_path, rng):
    img = rng.integers(0, 256, (12, 10, 3)).astype(np.uint8)
    save_image(img, tmp_path / "in" / "a.png")
    save_image(img[:8], tmp_path / "in" / "b.png")
    assert main(["upscale", str(tmp_path / "in" / "a.png"), str(tmp_path / "a2.png"),
                 "--model", "bicubic", "--scale", "2"]) == 0
    assert load_image(tmp_path / "a2.png").shape == (24, 20, 3)
    assert main(["upscale", str(tmp_path / "in" / "a.png"), str(tmp_path / "a2.png"),
                 "--model", "bicubic", "--scale", "2"]) == 2  # exists, no --force
    assert main(["upscale", str(tmp_path / "in"), str(tmp_path / "out"), "--model", "awsrn-s",
                 "--scale", "2", "--tile", "6", "--self-ensemble", "--random-init"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    assert load_image(tmp_path / "out" / "b.png").shape == (16, 20, 3)


def test_upscale_command_rejects_bad_inputs_clearly(tmp_path, capsys):
    (tmp_path / "bad.png").write_text("nope")
    assert main(["upscale", str(tmp_path / "bad.png"), str(tmp_path / "o.png"), "--model", "bicubic",
                 "--scale", "2"]) == 2
    assert "bad.png is not an image" in capsys.readouterr().err
    assert main(["upscale", str(tmp_path / "missing.png"), str(tmp_path / "o.png"), "--model", "bicubic",
                 "--scale", "2"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_bf16_is_opt_in_and_refused_clearly_without_native_support(awsrn):
    from srlib.train import cpu_supports_bf16

    x = torch.rand(1, 3, 8, 8)
    if cpu_supports_bf16():
        y = upscale_tensor(awsrn, x, 2, precision="bf16")
        assert (y - upscale_tensor(awsrn, x, 2)).abs().max() < 0.05
    else:
        with pytest.raises(ValueError, match="no native bf16"):
            upscale_tensor(awsrn, x, 2, precision="bf16")
