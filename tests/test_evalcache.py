"""Content fingerprints and the evaluation cache: a second evaluation reads, a changed input recomputes."""
from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

import srlib.evaluate
from srlib.data import fingerprint as fp
from srlib.data.io import save_image
from srlib.evalcache import evaluate_cached
from srlib.evaluate import evaluate


@pytest.fixture(autouse=True)
def scratch(tmp_path, monkeypatch):
    """A scratch project (results) and fingerprint cache; the in-memory memo starts empty."""
    monkeypatch.setenv("SRLIB_PROJECT_DIR", str(tmp_path / "proj"))
    monkeypatch.setenv("SRLIB_CACHE_DIR", str(tmp_path / "cache"))
    fp.clear_memory_cache()
    yield
    fp.clear_memory_cache()


@pytest.fixture
def calls(monkeypatch):
    """Counts the (dataset, scale) parts actually evaluated."""
    seen = []
    real = srlib.evaluate.evaluate_set

    def spy(model, bench, *a, **k):
        seen.append((bench.name, bench.scale))
        return real(model, bench, *a, **k)

    monkeypatch.setattr(srlib.evaluate, "evaluate_set", spy)
    return seen


def _image(seed: int, h: int = 36, w: int = 30) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = 128 + 70 * np.sin(x / (2 + seed)) * np.cos(y / 3) + rng.normal(0, 10, (h, w))
    return np.clip(np.stack([base, base[::-1], base[:, ::-1]], 2), 0, 255).astype(np.uint8)


@pytest.fixture
def tiny(tmp_path):
    """A data root holding ``Tiny/HR`` with three small PNGs (not a catalog name)."""
    root = tmp_path / "data"
    for i, n in enumerate(("a", "b", "c")):
        save_image(_image(i), root / "Tiny" / "HR" / f"{n}.png")
    return root


def _rewrite(path, img):
    """New content in place, with an mtime surely different from the old one."""
    st = path.stat()
    save_image(img, path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def _checkpoint(path, seed: int):
    torch.manual_seed(seed)
    from srlib.models import build_model

    torch.save(build_model("awsrn-s", 2).state_dict(), path)
    return path


# ------------------------------------------------------------------ fingerprints

def test_file_sha256_is_the_content_hash_and_follows_rewrites(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    assert fp.file_sha256(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    f.write_bytes(b"abd")
    os.utime(f, ns=(0, f.stat().st_mtime_ns + 1_000_000_000))
    assert fp.file_sha256(f) == hashlib.sha256(b"abd").hexdigest()
    memo = json.loads((tmp_path / "cache" / "fingerprints.json").read_text())
    assert memo["files"][str(f.resolve())][2] == hashlib.sha256(b"abd").hexdigest()


def test_folder_fingerprint_follows_content_not_listing(tiny, monkeypatch):
    hr = tiny / "Tiny" / "HR"
    first = fp.folder_fingerprint(hr)
    hashed = []
    real = fp._hash_file
    monkeypatch.setattr(fp, "_hash_file", lambda p: hashed.append(p.name) or real(p))
    fp.clear_memory_cache()  # read back from fingerprints.json, not from memory
    assert fp.folder_fingerprint(hr) == first and hashed == []
    assert not any(p.suffix == ".json" for p in hr.iterdir())  # nothing written into the data folder
    os.utime(hr / "a.png", ns=(0, (hr / "a.png").stat().st_mtime_ns + 10**9))  # touched, same content
    assert fp.folder_fingerprint(hr) == first and hashed == ["a.png"]
    _rewrite(hr / "b.png", _image(7))
    changed = fp.folder_fingerprint(hr)
    assert changed != first and hashed == ["a.png", "b.png"]
    save_image(_image(8), hr / "d.png")
    added = fp.folder_fingerprint(hr)
    (hr / "d.png").unlink()
    assert len({first, changed, added}) == 3 and fp.folder_fingerprint(hr) == changed


def test_a_copied_folder_has_the_same_fingerprint(tiny, tmp_path):
    shutil.copytree(tiny, tmp_path / "copy")
    assert fp.dataset_fingerprint("Tiny", tiny) == fp.dataset_fingerprint("Tiny", tmp_path / "copy")


def test_skimage_fallback_fingerprint_is_distinct(tiny, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    test_fb = fp.dataset_fingerprint("Set5", empty)  # missing: the scikit-image test images stand in
    train_fb = fp.dataset_fingerprint("T91", empty)
    assert test_fb == fp.dataset_fingerprint("skimage") and train_fb == fp.dataset_fingerprint("skimage-train")
    assert test_fb.startswith("skimage-fallback:") and train_fb.startswith("skimage-fallback:")
    assert len({test_fb, train_fb, fp.dataset_fingerprint("Tiny", tiny)}) == 3
    with pytest.raises(KeyError, match="Nope"):
        fp.dataset_fingerprint("Nope", empty)


# ------------------------------------------------------------------ the evaluation cache

def test_second_call_reads_equal_rows(tiny, calls):
    first = evaluate_cached("bicubic", ["Tiny"], [2, 3], profile="smoke", root=tiny)
    assert calls == [("Tiny", 2), ("Tiny", 3)] and first.attrs["cache"] == {"Tiny x2": "computed",
                                                                              "Tiny x3": "computed"}
    again = evaluate_cached("bicubic", ["Tiny"], [2, 3], profile="smoke", root=tiny)
    assert len(calls) == 2 and again.attrs["cached"] and set(again.attrs["cache"].values()) == {"read"}
    pd.testing.assert_frame_equal(first, again)  # seconds too: the computing run's measurement
    direct = evaluate("bicubic", ["Tiny"], [2, 3], root=tiny, progress=False)
    pd.testing.assert_frame_equal(again.drop(columns="seconds"), direct.drop(columns="seconds"))
    assert {k: again.attrs[k] for k in direct.attrs} == direct.attrs
    calls.clear()
    files = list((tiny.parent / "proj" / "results" / "smoke" / "evaluations" / "bicubic").iterdir())
    assert sorted(f.suffix for f in files) == [".csv", ".csv", ".json", ".json"]
    relabelled = evaluate_cached("bicubic", ["Tiny"], [2], profile="smoke", root=tiny, name="INTER (bicubic)")
    assert calls == [] and (relabelled.model == "INTER (bicubic)").all()


def test_cached_only_reads_and_never_computes(tiny, calls):
    missing = evaluate_cached("bicubic", ["Tiny"], [2], profile="smoke", root=tiny, cached_only=True)
    assert calls == [] and len(missing) == 0 and missing.attrs["cache"] == {"Tiny x2": "missing"}
    first = evaluate_cached("bicubic", ["Tiny"], [2], profile="smoke", root=tiny)
    read = evaluate_cached("bicubic", ["Tiny"], [2], profile="smoke", root=tiny, cached_only=True)
    assert len(calls) == 1 and read.attrs["cached"]
    pd.testing.assert_frame_equal(first, read)


@pytest.mark.parametrize("change", [dict(gray_rule="y"), dict(round_y=False), dict(max_images=2)])
def test_a_protocol_setting_recomputes_and_keeps_the_other(tiny, calls, change):
    base = evaluate_cached("bicubic", ["Tiny"], [2], profile="smoke", root=tiny)
    other = evaluate_cached("bicubic", ["Tiny"], [2], profile="smoke", root=tiny, **change)
    assert len(calls) == 2 and other.attrs["cache"] == {"Tiny x2": "computed"}
    assert len(other) == change.get("max_images", 3)
    for kw in ({}, change):  # both files are kept and read
        evaluate_cached("bicubic", ["Tiny"], [2], profile="smoke", root=tiny, **kw)
    assert len(calls) == 2
    if "round_y" in change:
        assert not np.array_equal(base.psnr.to_numpy(), other.psnr.to_numpy())


def test_a_changed_image_in_a_copied_set_recomputes(tiny, tmp_path, calls):
    copy = tmp_path / "copy"
    shutil.copytree(tiny, copy)
    before = evaluate_cached("bicubic", ["Tiny"], [2], profile="smoke", root=tiny)
    evaluate_cached("bicubic", ["Tiny"], [2], profile="smoke", root=copy)  # same content: read
    assert len(calls) == 1
    _rewrite(copy / "Tiny" / "HR" / "b.png", _image(9))
    after = evaluate_cached("bicubic", ["Tiny"], [2], profile="smoke", root=copy)
    assert len(calls) == 2
    diff = before.set_index("image").psnr != after.set_index("image").psnr
    assert list(diff[diff].index) == ["b"]


def test_checkpoint_is_keyed_by_content_not_path(tiny, tmp_path, calls):
    a = _checkpoint(tmp_path / "a.pt", 0)
    ra = evaluate_cached("awsrn-s", ["Tiny"], [2], profile="smoke", root=tiny, checkpoint=a)
    moved = tmp_path / "elsewhere" / "renamed.pt"
    moved.parent.mkdir()
    a.rename(moved)
    again = evaluate_cached("awsrn-s", ["Tiny"], [2], profile="smoke", root=tiny, checkpoint=moved)
    assert len(calls) == 1
    pd.testing.assert_frame_equal(ra, again)
    rb = evaluate_cached("awsrn-s", ["Tiny"], [2], profile="smoke", root=tiny,
                         checkpoint=_checkpoint(tmp_path / "b.pt", 1))
    assert len(calls) == 2 and not np.array_equal(ra.psnr.to_numpy(), rb.psnr.to_numpy())


def test_studies_keep_evaluations_beside_the_run(tiny, tmp_path, calls):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    best = _checkpoint(run / "checkpoints" / "best.pt", 0)
    df = evaluate_cached("awsrn-s", ["Tiny"], [2], profile="smoke", root=tiny, checkpoint=best,
                         cache_dir=run / "evaluations")
    assert df.attrs["cache_files"]["Tiny x2"].startswith(str(run / "evaluations" / "awsrn-s" / "Tiny_x2_"))
    meta = json.loads((run / "evaluations" / "awsrn-s").glob("*.json").__next__().read_text())
    assert meta["key"]["method"]["checkpoint_sha256"] == fp.file_sha256(best)
    assert meta["provenance"]["checkpoint"] == str(best)


def test_module_needs_a_key_and_its_weights_are_hashed(tiny, calls):
    from srlib.models import build_model

    torch.manual_seed(0)
    m = build_model("awsrn-s", 2)
    with pytest.raises(ValueError, match="key="):
        evaluate_cached("pruned", ["Tiny"], [2], profile="smoke", root=tiny, module=m)
    evaluate_cached("pruned", ["Tiny"], [2], profile="smoke", root=tiny, module=m, key="seed 0, unpruned")
    evaluate_cached("pruned", ["Tiny"], [2], profile="smoke", root=tiny, module=m, key="seed 0, unpruned")
    assert len(calls) == 1
    with torch.no_grad():
        next(m.parameters()).add_(0.1)
    evaluate_cached("pruned", ["Tiny"], [2], profile="smoke", root=tiny, module=m, key="seed 0, unpruned")
    assert len(calls) == 2


def test_random_initialisation_needs_a_seed(tiny, calls):
    with pytest.raises(ValueError, match="random weights"):
        evaluate_cached("awsrn-s", ["Tiny"], [2], profile="smoke", root=tiny)
    a = evaluate_cached("awsrn-s", ["Tiny"], [2], profile="smoke", root=tiny, key=3)
    torch.manual_seed(3)
    from srlib.models import build_model

    direct = evaluate(build_model("awsrn-s", 2), ["Tiny"], [2], name="awsrn-s", root=tiny, progress=False)
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), direct.drop(columns="seconds"))
    with pytest.raises(ValueError, match="classical"):
        evaluate_cached("bicubic", ["Tiny"], [2], profile="smoke", root=tiny, checkpoint="x.pt")


def test_missing_or_wrong_sidecar_recomputes_and_never_overwrites_another_key(tiny, calls):
    df = evaluate_cached("bicubic", ["Tiny"], [2], profile="smoke", root=tiny)
    csv = df.attrs["cache_files"]["Tiny x2"]
    side = csv[:-4] + ".json"
    os.unlink(side)
    evaluate_cached("bicubic", ["Tiny"], [2], profile="smoke", root=tiny)
    assert len(calls) == 2 and os.path.isfile(side)  # same key: rewritten under the same name
    with open(csv, "a") as fh:
        fh.write("bicubic,Tiny,2,z,99.0,1.0,0.0,forged\n")
    evaluate_cached("bicubic", ["Tiny"], [2], profile="smoke", root=tiny)
    assert len(calls) == 3 and "forged" not in open(csv).read()
    meta = json.loads(open(side).read())
    meta["key"] = {"another": "key"}  # the 12-digit name now belongs to a different key
    with open(side, "w") as fh:
        json.dump(meta, fh)
    foreign = open(csv).read()
    out = evaluate_cached("bicubic", ["Tiny"], [2], profile="smoke", root=tiny)
    assert len(calls) == 4 and open(csv).read() == foreign
    assert len(os.path.basename(out.attrs["cache_files"]["Tiny x2"])) == len("Tiny_x2_.csv") + 64


def test_learned_classical_method_is_keyed_by_its_dictionary(tiny, calls):
    from srlib.models import build_upscaler

    ne = build_upscaler("ne", 2, profile="smoke")  # a small dictionary, where evaluate_cached finds it
    ne.progress = False
    ne.fit([_image(i, 64, 64) for i in range(3)], "test images").save(ne.cache_path())
    df = evaluate_cached("ne", ["Tiny"], [2], profile="smoke", root=tiny)
    meta = json.loads(open(df.attrs["cache_files"]["Tiny x2"][:-4] + ".json").read())
    ident = meta["key"]["method"]
    assert ident["settings"]["pairs"] == 4_000 and len(ident["dictionary_sha256"]) == 64
    evaluate_cached("ne", ["Tiny"], [2], profile="smoke", root=tiny)
    assert len(calls) == 1
    npz = tiny.parent / "proj" / "results" / "smoke" / "dictionaries" / ident["dictionary"]
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    first = sorted(arrays)[0]
    arrays[first] = arrays[first] * 0.5  # a relearned, different dictionary under the same name
    np.savez(npz, **arrays)
    os.utime(npz, ns=(0, npz.stat().st_mtime_ns + 10**9))
    evaluate_cached("ne", ["Tiny"], [2], profile="smoke", root=tiny)
    assert len(calls) == 2


def test_zoo_official_weights(tiny, weights_dir, calls):
    from srlib.models.zoo.weights import CATALOG

    df = evaluate_cached("pan", ["Tiny"], [2], profile="smoke", root=tiny, checkpoint="official")
    meta = json.loads(open(df.attrs["cache_files"]["Tiny x2"][:-4] + ".json").read())
    assert meta["key"]["method"]["checkpoint_sha256"] == CATALOG["pan", 2].sha256
    evaluate_cached("pan", ["Tiny"], [2], profile="smoke", root=tiny, checkpoint="official")
    assert len(calls) == 1


def test_set5_bicubic_published_row_through_the_cache(data_dir, calls):
    for _ in range(2):
        df = evaluate_cached("bicubic", ["Set5"], [4], profile="smoke")
    assert len(calls) == 1 and df.attrs["cached"]
    assert df.psnr.mean() == pytest.approx(28.42, abs=0.01)  # Wang et al. 2019, Table 3, bicubic
