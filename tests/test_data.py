"""Catalog, downloads (resume, checksum, no half-written folder), fallback, datasets."""
import hashlib
import http.server
import threading

from pathlib import Path

import numpy as np
import pytest
import torch

from srlib.data import save_image
from srlib.data.colour import to_tensor
from srlib.data.transforms import dihedral
from srlib.data import catalog as cat
from srlib.data.datasets import FALLBACK_SOURCE, BenchmarkSet, PatchDataset, load_hr_images


def test_catalog_counts_match_checksum_lists():
    for name in ("Set5", "Set14", "B100", "Urban100"):
        info = cat.CATALOG[name]
        assert len(info.files) == info.n_images
        assert all(sha and len(sha) == 64 for _, _, sha in info.files)
    assert len(cat.CATALOG["T91"].files) == 91
    assert cat.CATALOG["DIV2K"].archive[0][1] == "bdc2d9338d4e574fe81bf7d158758658"


def test_b100_urls_follow_the_source_numbering():
    files = cat.CATALOG["B100"].files
    url, name, _ = files[0]
    assert name == "101085.png" and url.endswith("img_001_SRF_3_HR.png")


def test_aliases_and_unknown_names():
    assert cat.canonical_name("bsd100") == "B100"
    with pytest.raises(KeyError, match="catalog"):
        cat.canonical_name("Set6")


def test_find_dataset_in_a_root_and_missing_message(tmp_path, monkeypatch, rng):
    monkeypatch.setenv("SRLIB_DATA_DIR", str(tmp_path))
    assert cat.find_dataset("Set5") is None
    assert "Set5/HR" in cat.missing_message("Set5") and str(tmp_path) in cat.missing_message("Set5")
    save_image(rng.integers(0, 255, (8, 8, 3)).astype(np.uint8), tmp_path / "Set5" / "HR" / "a.png")
    assert cat.find_dataset("set5") == tmp_path / "Set5" / "HR"


def test_missing_dataset_falls_back_to_scikit_image_with_a_label(tmp_path, monkeypatch):
    monkeypatch.setenv("SRLIB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SRLIB_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.warns(UserWarning, match="Set14 not found.*scikit-image"):
        images, source = load_hr_images("Set14", download=False)
    assert source == FALLBACK_SOURCE and len(images) == 5
    with pytest.raises(cat.DatasetNotFoundError, match="Set14/HR"):
        load_hr_images("Set14", download=False, fallback=False)


def test_own_folder_outside_the_catalog(tmp_path, monkeypatch, rng):
    monkeypatch.setenv("SRLIB_DATA_DIR", str(tmp_path))
    save_image(rng.integers(0, 255, (24, 24, 3)).astype(np.uint8), tmp_path / "Mine" / "HR" / "x.png")
    bench = BenchmarkSet("Mine", 2)
    assert bench.name == "Mine" and len(bench) == 1 and bench[0].lr.shape == (12, 12, 3)


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = b""
    fail_after = None  # close the connection after this many bytes (simulated drop)

    def do_GET(self):
        start = 0
        if "Range" in self.headers:
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
        body = self.payload[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        limit = self.fail_after if self.fail_after is not None and not start else len(body)
        self.wfile.write(body[:limit])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()


def test_download_resumes_and_verifies(tmp_path, server):
    payload = bytes(range(256)) * 400
    _RangeHandler.payload, _RangeHandler.fail_after = payload, None
    url = f"http://127.0.0.1:{server.server_address[1]}/file.bin"
    dest = tmp_path / "file.bin"
    # an earlier attempt left the first 10000 bytes
    (tmp_path / "file.bin.part").write_bytes(payload[:10000])
    sha = hashlib.sha256(payload).hexdigest()
    assert cat.download_file(url, dest, sha).read_bytes() == payload
    assert not (tmp_path / "file.bin.part").exists()


def test_download_with_wrong_checksum_leaves_nothing(tmp_path, server):
    _RangeHandler.payload, _RangeHandler.fail_after = b"x" * 1000, None
    url = f"http://127.0.0.1:{server.server_address[1]}/f"
    with pytest.raises(IOError, match="checksum mismatch"):
        cat.download_file(url, tmp_path / "f", "0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_failed_dataset_download_leaves_no_complete_looking_folder(tmp_path, monkeypatch):
    def boom(url, dest, *a, **k):  # half a file arrived, then the network went away
        Path(dest).with_name(Path(dest).name + ".part").write_bytes(b"half")
        raise ConnectionError("network unreachable")

    monkeypatch.setattr(cat, "download_file", boom)
    with pytest.raises(cat.DatasetNotFoundError, match="Download failed.*resumes"):
        cat.download_dataset("Set5", tmp_path)
    assert not (tmp_path / "Set5").exists() and (tmp_path / "Set5.partial").exists()


def test_manual_dataset_says_how_to_get_it(tmp_path):
    with pytest.raises(cat.DatasetNotFoundError, match="manga109.org"):
        cat.download_dataset("Manga109", tmp_path)


def test_benchmark_set_modcrops_and_degrades(data_dir):
    bench = BenchmarkSet("Set14", 3)
    item = next(i for i in bench if i.name == "comic")
    assert item.hr.shape == (360, 249, 3) and item.lr.shape == (120, 83, 3)
    assert next(i for i in bench if i.name == "bridge").gray


def test_patch_dataset_is_seeded_and_aligned(textured):
    ds = PatchDataset([textured], scale=2, lr_patch=8, length=50, seed=3, augment=False)
    lr, hr = ds[7]
    assert lr.shape == (3, 8, 8) and hr.shape == (3, 16, 16)
    lr2, hr2 = PatchDataset([textured], 2, 8, 50, seed=3, augment=False)[7]
    assert lr.equal(lr2) and hr.equal(hr2)
    assert not ds[8][0].equal(lr)
    # the LR patch is the HR patch's own degradation (up to the image-border context)
    from srlib.data import imresize

    down = imresize(hr.double()[None], 1 / 2)[0]
    assert (down[:, 2:-2, 2:-2] * 255 - lr.double()[:, 2:-2, 2:-2] * 255).abs().max() < 1.0


def test_patch_dataset_augmentations_cover_the_eight_symmetries(textured):
    ds = PatchDataset([textured], 2, 8, length=200, seed=0, augment=True)
    plain = PatchDataset([textured], 2, 8, length=200, seed=0, augment=False)
    seen = set()
    for i in range(200):
        a, p = ds[i][1], plain[i][1]
        for k in range(8):
            t = p.rot90(k % 4, dims=(1, 2))
            t = t.flip(2) if k >= 4 else t
            if a.equal(t):
                seen.add(k)
                break
        else:
            raise AssertionError(f"sample {i} is not a flip/rotation of its patch")
    assert len(seen) == 8


def test_patch_dataset_refuses_images_too_small():
    with pytest.raises(ValueError, match="large enough"):
        PatchDataset([np.zeros((10, 10, 3), np.uint8)], 2, lr_patch=8)


def _old_patch_formula(img: np.ndarray, k: int) -> torch.Tensor:
    """PatchDataset's numpy formula before the dihedral transform moved to srlib.data.transforms."""
    img = np.rot90(img, k % 4, axes=(0, 1))
    img = img[:, ::-1] if k >= 4 else img
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255)


def test_dihedral_equals_the_former_numpy_formula_for_all_eight(rng):
    patch = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)  # not square: a transpose shows
    outs = []
    for k in range(8):
        new = dihedral(to_tensor(patch, batch=False), k).contiguous()
        old = _old_patch_formula(patch, k)
        assert new.dtype == old.dtype == torch.float32 and new.shape == old.shape
        assert new.equal(old), k
        outs.append(new)
    assert len({tuple(o.flatten().tolist()) for o in outs}) == 8  # eight different images


def test_patch_dataset_yields_the_former_patches_bit_for_bit(textured):
    ds = PatchDataset([textured], 2, 8, length=64, seed=5, augment=True)
    hr, lr = ds.pairs[0]
    ks = set()
    for i in range(64):  # the draws of PatchDataset.__getitem__, replayed with the old formula
        r = np.random.default_rng((5, i))
        r.integers(1)
        y, x = r.integers(lr.shape[0] - 7), r.integers(lr.shape[1] - 7)
        k = int(r.integers(8))
        ks.add(k)
        lr_p, hr_p = ds[i]
        assert lr_p.is_contiguous() and hr_p.is_contiguous()
        assert lr_p.equal(_old_patch_formula(lr[y : y + 8, x : x + 8], k))
        assert hr_p.equal(_old_patch_formula(hr[2 * y : 2 * y + 16, 2 * x : 2 * x + 16], k))
    assert ks == set(range(8))


def test_dihedral_inverse_and_range():
    x = torch.arange(2 * 3 * 4 * 5.0).view(2, 3, 4, 5)
    for k in range(8):
        assert dihedral(dihedral(x, k), k, inverse=True).equal(x)
    assert dihedral(x, 1).equal(x.rot90(1, dims=(2, 3))) and dihedral(x, 4).equal(x.flip(-1))
    with pytest.raises(ValueError, match="0..7"):
        dihedral(x, 8)


def test_to_tensor_batch_flag():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    batched, single = to_tensor(img), to_tensor(img, batch=False)
    assert batched.shape == (1, 3, 2, 3) and single.shape == (3, 2, 3)
    assert batched[0].equal(single) and single[2, 1, 0].item() == pytest.approx(img[1, 0, 2] / 255)
    assert to_tensor(img[..., 0], batch=False).shape == (1, 2, 3)  # gray HW -> one channel


def test_benchmark_item_finds_one_image_by_name_and_falls_back_to_the_first(data_dir):
    import numpy as np

    from srlib.data.datasets import BenchmarkSet, benchmark_item

    item = benchmark_item("Set5", "butterfly", 4)
    ref = next(it for it in BenchmarkSet("Set5", 4) if it.name == "butterfly")
    assert item.name == "butterfly" and np.array_equal(item.hr, ref.hr) and np.array_equal(item.lr, ref.lr)
    assert benchmark_item("Set5", "no-such-image", 4).name == BenchmarkSet("Set5", 4, max_images=1)[0].name


def test_sources_name_the_data_folder_relative_to_srlib_data_dir(data_dir, tmp_path, monkeypatch):
    from srlib.data.catalog import portable_path
    from srlib.data.datasets import BenchmarkSet

    assert BenchmarkSet("Set5", 2, max_images=1).source == "Set5 ($SRLIB_DATA_DIR/Set5/HR)"
    monkeypatch.setenv("SRLIB_CACHE_DIR", str(tmp_path / "cache"))
    assert portable_path(tmp_path / "cache" / "datasets" / "T91" / "HR") == "$SRLIB_CACHE_DIR/datasets/T91/HR"
    assert portable_path(tmp_path / "mine") == str(tmp_path / "mine")  # a folder the caller named
    monkeypatch.setenv("SRLIB_WEIGHTS_DIR", str(tmp_path / "weights"))
    assert portable_path(tmp_path / "weights" / "PAN" / "PANx4.pth") == "$SRLIB_WEIGHTS_DIR/PAN/PANx4.pth"
    monkeypatch.setenv("SRLIB_PROJECT_DIR", str(tmp_path / "proj"))  # runs: relative to the project
    assert portable_path(tmp_path / "proj" / "results" / "quick" / "runs" / "a" / "best.pt") == "results/quick/runs/a/best.pt"
