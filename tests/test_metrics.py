"""PSNR/SSIM protocol: hand-computed values, scikit-image's SSIM, the gray rule, errors."""
import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from srlib.data import rgb2ycbcr, to_tensor
from srlib.metrics import psnr, psnr_torch, ssim, ssim_torch


def _sk_ssim(a, b):
    return structural_similarity(a.astype(np.float64), b.astype(np.float64), gaussian_weights=True,
                                 sigma=1.5, use_sample_covariance=False, data_range=255)


def test_psnr_hand_computed_on_gray():
    hr = np.full((20, 20), 100, np.uint8)
    sr = np.full((20, 20), 110, np.uint8)
    assert psnr(sr, hr, 0) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-12)


def test_psnr_of_rgb_uses_rounded_y():
    hr = np.zeros((16, 16, 3), np.uint8)
    sr = np.full((16, 16, 3), 10, np.uint8)
    # Y = 16 + 219 * v / 255, rounded: v=0 -> 16, v=10 -> round(24.588) = 25
    assert psnr(sr, hr, 2) == pytest.approx(10 * math.log10(255**2 / 81), abs=1e-12)
    assert rgb2ycbcr(sr)[0, 0] == 25


def test_identical_images_give_infinite_psnr_and_unit_ssim(textured):
    assert math.isinf(psnr(textured, textured, 4))
    assert ssim(textured, textured, 4) == pytest.approx(1.0)


def test_border_is_shaved(textured):
    sr = textured.copy()
    sr[:3] = 0
    sr[:, -3:] = 255
    assert math.isinf(psnr(sr, textured, 3))
    assert not math.isinf(psnr(sr, textured, 2))


def test_ssim_matches_scikit_image_on_y(textured, rng):
    noisy = np.clip(textured.astype(int) + rng.integers(-25, 26, textured.shape), 0, 255).astype(np.uint8)
    ya, yb = rgb2ycbcr(noisy)[4:-4, 4:-4], rgb2ycbcr(textured)[4:-4, 4:-4]
    assert ssim(noisy, textured, 4) == pytest.approx(_sk_ssim(ya, yb), abs=1e-12)


def test_ssim_matches_scikit_image_on_a_real_image(data_dir):
    from srlib.data import imresize, load_image, modcrop

    hr = modcrop(load_image(data_dir / "Set5" / "HR" / "butterfly.png"), 4)
    sr = imresize(imresize(hr, 1 / 4), 4)
    ref = _sk_ssim(rgb2ycbcr(sr)[4:-4, 4:-4], rgb2ycbcr(hr)[4:-4, 4:-4])
    assert ssim(sr, hr, 4) == pytest.approx(ref, abs=1e-12)


def test_rgb_ssim_averages_channels(textured, rng):
    noisy = np.clip(textured.astype(int) + rng.integers(-10, 11, textured.shape), 0, 255).astype(np.uint8)
    ref = np.mean([_sk_ssim(noisy[..., c], textured[..., c]) for c in range(3)])
    assert ssim(noisy, textured, 0, y_channel=False) == pytest.approx(ref, abs=1e-12)


def test_torch_twins_are_batched_and_equal_numpy(textured, rng):
    imgs = [np.clip(textured.astype(int) + rng.integers(-k, k + 1, textured.shape), 0, 255).astype(np.uint8)
            for k in (5, 15, 30)]
    sr = torch.cat([to_tensor(i) for i in imgs])
    hr = to_tensor(textured).expand(3, -1, -1, -1)
    p, s = psnr_torch(sr, hr, 3), ssim_torch(sr, hr, 3)
    assert p.shape == (3,) and s.shape == (3,)
    for i, img in enumerate(imgs):
        assert p[i].item() == pytest.approx(psnr(img, textured, 3), abs=1e-10)
        assert s[i].item() == pytest.approx(ssim(img, textured, 3), abs=1e-12)
    assert p[0] > p[1] > p[2]


def test_gray_rule_measures_gray_values(rng):
    gray = rng.integers(0, 256, (32, 32)).astype(np.uint8)
    noisy = np.clip(gray.astype(int) + rng.integers(-9, 10, gray.shape), 0, 255).astype(np.uint8)
    rgb = lambda g: np.repeat(g[..., None], 3, axis=2)
    as_gray = psnr(rgb(noisy), rgb(gray), 2, as_gray=True)
    assert as_gray == pytest.approx(psnr(noisy, gray, 2), abs=1e-10)
    # the default (copy to RGB, then Y) compresses the range by 219/255: a higher PSNR
    assert psnr(rgb(noisy), rgb(gray), 2) > as_gray + 1.0


@pytest.mark.parametrize("sr,hr,crop,match", [
    (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8), 0, "same shape"),
    (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), 4, "leaves nothing"),
    (np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 3), np.float32), 0, "uint8"),
])
def test_bad_input_is_refused_clearly(sr, hr, crop, match):
    with pytest.raises((TypeError, ValueError), match=match):
        psnr(sr, hr, crop)


def test_ssim_needs_an_11px_window():
    a = np.zeros((14, 14, 3), np.uint8)
    with pytest.raises(ValueError, match="11x11"):
        ssim(a, a, 2)


def test_float_y_keeps_the_fraction():
    hr = np.zeros((16, 16, 3), np.uint8)
    sr = np.full((16, 16, 3), 10, np.uint8)
    # unrounded: Y differs by 219 * 10 / 255 = 8.588...
    assert psnr(sr, hr, 2, round_y=False) == pytest.approx(10 * math.log10(255**2 / (2190 / 255) ** 2), abs=1e-9)


# ------------------------------------------------------------------ the fast paths (issue 10)

def _noisy(img, rng, k):
    return np.clip(img.astype(int) + rng.integers(-k, k + 1, img.shape), 0, 255).astype(np.uint8)


def test_y_is_matlab_rounding_in_integers():
    # every (R, G) pair for a few B: Y = floor((S + 16*255000 + 127500) / 255000) exactly, with
    # S = 65481 R + 128553 G + 24966 B; likewise the gray rule with 219000
    from srlib.metrics import _luma_torch

    r, g = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    for b in (0, 77, 255):
        rgb = np.stack([r, g, np.full_like(r, b)], 2).astype(np.uint8)
        s = rgb.astype(np.int64) @ np.array([65481, 128553, 24966])
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
        y = _luma_torch(x, True, False)[0, 0].numpy()
        assert np.array_equal(y, (s + 16 * 255000 + 127500) // 255000)
        gray = _luma_torch(x, True, True)[0, 0].numpy()
        assert np.array_equal(gray, (s + 109500) // 219000)
    # a tie: (22, 206, 0) gives S = 27922500, Y = 16 + 109.5 exactly: MATLAB rounds up (126),
    # round-half-to-even would give 125
    assert 22 * 65481 + 206 * 128553 == 27922500 == 109.5 * 255000
    x = torch.tensor([22, 206, 0], dtype=torch.uint8).view(1, 3, 1, 1)
    assert _luma_torch(x, True, False).item() == 126


def test_uint8_input_equals_float_input(textured, rng):
    sr = _noisy(textured, rng, 20)
    f = lambda a: to_tensor(a)
    u = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None]
    for round_y in (True, False):
        pf, sf = psnr_torch(f(sr), f(textured), 3, round_y=round_y), ssim_torch(f(sr), f(textured), 3, round_y=round_y)
        pu, su = psnr_torch(u(sr), u(textured), 3, round_y=round_y), ssim_torch(u(sr), u(textured), 3, round_y=round_y)
        assert torch.equal(pf, pu) and torch.equal(sf, su)


def test_ssim_tiles_do_not_change_the_value(textured, rng, monkeypatch):
    import srlib.metrics as m

    sr = torch.cat([to_tensor(_noisy(textured, rng, k)) for k in (5, 30)])
    hr = to_tensor(textured).expand(2, -1, -1, -1)
    a, b = m._prepare_torch(sr, 2, True, False), m._prepare_torch(hr, 2, True, False)
    whole = m.ssim_map(a, b).flatten(1).mean(dim=1)  # one map, no tiles
    for tile in (1, 300, 1 << 30):  # one output row per tile ... one tile
        monkeypatch.setattr(m, "TILE_PIXELS", tile)
        assert (m._ssim(a, b) - whole).abs().max() < 1e-12


def test_batched_metrics_equal_one_at_a_time(textured, rng):
    from srlib.metrics import psnr_ssim_torch

    imgs = [_noisy(textured, rng, k) for k in (3, 12, 40, 90)]
    sr = torch.cat([torch.from_numpy(i).permute(2, 0, 1)[None] for i in imgs])
    hr = torch.from_numpy(textured).permute(2, 0, 1)[None].expand(4, -1, -1, -1)
    gray = [False, True, False, True]
    p, s = psnr_ssim_torch(sr, hr, 4, as_gray=gray)
    for i, img in enumerate(imgs):
        assert p[i].item() == psnr(img, textured, 4, as_gray=gray[i])  # bit for bit
        assert abs(s[i].item() - ssim(img, textured, 4, as_gray=gray[i])) < 1e-12
