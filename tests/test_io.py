"""Image loading: every readable format becomes RGB uint8; broken files fail clearly."""
import numpy as np
import pytest
from PIL import Image

from srlib.data import ImageLoadError, load_image, save_image


@pytest.fixture
def rgb(rng):
    return rng.integers(0, 256, (12, 20, 3)).astype(np.uint8)


def test_rgb_png_roundtrip(tmp_path, rgb):
    save_image(rgb, tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and np.array_equal(out, rgb)


def test_grayscale_becomes_three_equal_channels(tmp_path, rgb):
    g = rgb[..., 0]
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    out, mode = load_image(tmp_path / "g.png", return_mode=True)
    assert mode == "L" and out.shape == (12, 20, 3)
    assert all(np.array_equal(out[..., c], g) for c in range(3))


def test_sixteen_bit_is_scaled_to_eight(tmp_path):
    arr = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")
    out = load_image(tmp_path / "d.png")
    assert out[0, :, 0].tolist() == [0, 100, 255]


def test_rgba_is_composited_over_white(tmp_path):
    arr = np.zeros((2, 2, 4), np.uint8)
    arr[0, 0] = (200, 10, 10, 255)  # opaque
    arr[1, 1] = (0, 0, 0, 0)  # transparent -> white
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out[0, 0].tolist() == [200, 10, 10] and out[1, 1].tolist() == [255, 255, 255]


def test_palette_image(tmp_path, rgb):
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(tmp_path / "p.png")
    out = load_image(tmp_path / "p.png")
    assert out.shape == (12, 20, 3) and len(np.unique(out.reshape(-1, 3), axis=0)) <= 8


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(tmp_path / "c.jpg")  # pure red in CMYK
    out = load_image(tmp_path / "c.jpg")
    assert out.shape == (6, 8, 3) and out[..., 0].mean() > 200 and out[..., 1].mean() < 60


def test_exif_rotation_is_applied(tmp_path, rgb):
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    im.save(tmp_path / "r.jpg", exif=exif, quality=100)
    out = load_image(tmp_path / "r.jpg")
    assert out.shape == (20, 12, 3)


def test_truncated_file_fails_clearly(tmp_path, rgb):
    save_image(rgb, tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="t.png"):
        load_image(tmp_path / "t.png")


def test_non_image_fails_clearly(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ImageLoadError, match="notes.png.*not an image"):
        load_image(tmp_path / "notes.png")


def test_missing_file_fails_clearly(tmp_path):
    with pytest.raises(ImageLoadError, match="does not exist"):
        load_image(tmp_path / "nope.png")


def test_save_refuses_float_and_leaves_no_partial_file(tmp_path):
    with pytest.raises(TypeError, match="uint8"):
        save_image(np.zeros((2, 2, 3), np.float32), tmp_path / "f.png")
    assert list(tmp_path.iterdir()) == []
