"""MATLAB imresize: hand-checked cases and an independent implementation (bicubic-pytorch)."""
import numpy as np
import pytest
import torch

from srlib.data import imresize, imresize_quantized
from srlib.data.resize import resize_weights


def test_identity_uint8_and_float(textured):
    assert np.array_equal(imresize(textured, 1), textured)
    x = torch.rand(2, 3, 9, 7, dtype=torch.float64)
    assert torch.allclose(imresize(x, 1), x, atol=1e-12)


@pytest.mark.parametrize("scale", [1 / 4, 1 / 3, 0.7, 1.5, 2, 3, 4])
def test_constant_image_stays_constant(scale):
    img = np.full((23, 31, 3), 77, np.uint8)
    out = imresize(img, scale)
    assert out.dtype == np.uint8 and np.all(out == 77)


@pytest.mark.parametrize("scale", [2, 3, 4, 2.5])
def test_upscaled_ramp_is_the_ramp_at_the_mapped_coordinates(scale):
    # The Keys cubic (a = -0.5) reproduces linear functions exactly; away from the mirrored
    # border the output must equal the ramp at MATLAB's coordinate u = x/s + 0.5(1 - 1/s).
    w = 40
    ramp = torch.arange(w, dtype=torch.float64).view(1, 1, 1, w).expand(1, 1, 5, w)
    out = imresize(ramp, scale)[0, 0, 2]
    x = torch.arange(1, out.numel() + 1, dtype=torch.float64)
    expected = x / scale + 0.5 * (1 - 1 / scale) - 1  # 0-based input coordinate
    inner = slice(int(3 * scale), out.numel() - int(3 * scale))
    assert torch.allclose(out[inner], expected[inner], atol=1e-10)


def test_downscaled_ramp_is_the_ramp_at_the_mapped_coordinates():
    ramp = torch.arange(48, dtype=torch.float64).view(1, 48).expand(4, 48)[None]
    out = imresize(ramp, 1 / 4)[0, 0]
    x = torch.arange(1, 13, dtype=torch.float64)
    expected = x * 4 + 0.5 * (1 - 4) - 1
    assert torch.allclose(out[2:-2], expected[2:-2], atol=1e-10)


def test_weights_rows_sum_to_one_and_taps_match_matlab():
    w = resize_weights(64, 16, 0.25)
    assert torch.allclose(w.sum(1), torch.ones(16, dtype=torch.float64))
    # antialiased x1/4 (interior row): the kernel stretched to 16 pixels, centred at
    # u = 4x - 1.5 (1-based), so 16 non-zero taps symmetric about the centre
    row = w[8]
    nz = row.nonzero().flatten()
    assert len(nz) == 16 and torch.allclose(row[nz], row[nz].flip(0))
    # near the border the mirrored taps fold back onto the first pixels
    assert (w[0] != 0).sum() == 10


@pytest.mark.parametrize("shape,scale", [((1, 3, 37, 51), 1 / 3), ((1, 3, 40, 40), 0.7),
                                          ((2, 3, 33, 20), 1.5), ((1, 1, 17, 23), 4),
                                          ((1, 3, 64, 48), 1 / 4), ((1, 3, 31, 29), 2.3)])
def test_matches_bicubic_pytorch(shape, scale):
    core = pytest.importorskip("bicubic_pytorch.core")
    x = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = core.imresize(x, scale=scale)
    ours = imresize(x, scale)
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max() < 1e-5  # bicubic-pytorch computes in float32


def test_nearest_duplicates_pixels_and_bilinear_reproduces_ramps():
    x = torch.tensor([[[[1.0, 5.0, 9.0]]]], dtype=torch.float64)
    assert imresize(x, size=(1, 6), kernel="nearest").flatten().tolist() == [1, 1, 5, 5, 9, 9]
    ramp = torch.arange(30, dtype=torch.float64).view(1, 1, 1, 30)
    out = imresize(ramp, 3, kernel="bilinear")[0, 0, 1]
    u = torch.arange(1, 91, dtype=torch.float64) / 3 + 0.5 * (1 - 1 / 3) - 1
    assert torch.allclose(out[3:-3], u[3:-3], atol=1e-10)


def test_odd_sizes_and_output_size_rule():
    img = np.zeros((481, 321, 3), np.uint8)
    assert imresize(img, 1 / 3).shape == (161, 107, 3)  # ceil(481/3), ceil(321/3)
    assert imresize(np.zeros((480, 321), np.uint8), 1 / 3).shape == (160, 107)
    assert imresize(img, size=(100, 50)).shape == (100, 50, 3)


def test_uint8_path_equals_rounded_float_path(textured):
    out = imresize(textured, 1 / 3)
    t = torch.from_numpy(textured).permute(2, 0, 1).double()[None]
    ref = imresize(t, 1 / 3).round().clamp(0, 255)[0].permute(1, 2, 0).byte().numpy()
    assert np.array_equal(out, ref)
    q = imresize_quantized(t / 255, 1 / 3)
    assert np.array_equal((q * 255).round()[0].permute(1, 2, 0).byte().numpy(), out)


def test_round_intermediate_changes_few_pixels_by_at_most_one(textured):
    a = imresize(textured, 1 / 3).astype(int)
    b = imresize(textured, 1 / 3, round_intermediate=True).astype(int)
    assert np.abs(a - b).max() <= 1


@pytest.mark.parametrize("bad,kwargs,match", [
    (np.zeros((4, 4), np.float32), {"scale": 2}, "uint8"),
    (np.zeros((4, 4), np.uint8), {}, "exactly one"),
    (np.zeros((4, 4), np.uint8), {"scale": 2, "size": (8, 8)}, "exactly one"),
    (np.zeros((4, 4), np.uint8), {"scale": -1}, "positive"),
    (np.zeros((4, 4), np.uint8), {"scale": 2, "kernel": "lanczos"}, "kernel"),
])
def test_bad_input_is_refused_clearly(bad, kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        imresize(bad, **kwargs)


def test_batched_float_runs_on_every_image():
    x = torch.rand(4, 3, 20, 20)
    out = imresize(x, 1 / 2)
    assert out.shape == (4, 3, 10, 10) and out.dtype == torch.float32
    assert torch.allclose(out[2], imresize(x[2:3], 1 / 2)[0], atol=1e-6)


@pytest.mark.parametrize("shape,scale", [((1, 3, 300, 260), 1 / 2), ((2, 1, 261, 333), 1 / 3),
                                          ((1, 3, 512, 140), 1 / 4), ((1, 3, 200, 400), 0.37)])
def test_banded_shrink_equals_the_dense_product(shape, scale):
    from srlib.data.resize import _output_size

    x = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    h, w = shape[-2:]
    dense = resize_weights(h, _output_size(h, scale), scale) @ x @ resize_weights(w, _output_size(w, scale), scale).T
    assert (imresize(x, scale) - dense).abs().max() < 1e-10


@pytest.mark.parametrize("shape,scale", [((1, 3, 160, 107), 3), ((2, 1, 120, 180), 4), ((1, 3, 240, 61), 2),
                                          ((1, 3, 150, 150), 2.3)])
def test_banded_enlarge_equals_the_dense_product(shape, scale):
    from srlib.data.resize import _banded_pays, _output_size

    x = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    h, w = shape[-2:]
    oh, ow = _output_size(h, scale), _output_size(w, scale)
    assert _banded_pays(h, oh, float(scale), "bicubic", True)  # the banded path is what runs
    dense = resize_weights(h, oh, scale) @ x @ resize_weights(w, ow, scale).T
    out = imresize(x, scale)
    assert out.is_contiguous() and (out - dense).abs().max() < 1e-10


def test_uint8_and_quantized_outputs_are_contiguous(textured):
    out = imresize(textured, 1 / 2)
    assert out.flags.c_contiguous and out.shape == (30, 26, 3)
    q = imresize_quantized(torch.from_numpy(textured).permute(2, 0, 1)[None].float() / 255, 3)
    assert q.is_contiguous() and q.dtype == torch.float32 and q.shape == (1, 3, 180, 156)
