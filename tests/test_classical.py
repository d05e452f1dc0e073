"""Neighbour embedding and sparse coding (seed 002's ML and SC baselines), and their patch machinery."""
import numpy as np
import pytest
import torch

from srlib.classical import CLASSICAL
from srlib.classical.neighbor_embedding import NeighborEmbedding, lle_weights
from srlib.classical.patches import extract, grid, overlap_average, patch_index, training_pairs
from srlib.classical.sparse_coding import (SparseCoding, back_projection, blur_5x5, gaussian_5x5, gaussian_5x5_1d,
                                           gaussian_down, lasso_fista)
from srlib.data.colour import rgb2ycbcr, rgb_to_ycbcr, to_tensor, ycbcr_to_rgb
from srlib.data.resize import imresize
from srlib.evaluate import evaluate
from srlib.models import build_upscaler, list_upscalers
from srlib.metrics import psnr


def textured(h, w, seed, f=(0.21, 0.13)):
    """A deterministic textured colour image: two gratings, a checkerboard and mild noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    g = 128 + 50 * np.sin(f[0] * x + 0.3 * y) + 40 * np.sin(f[1] * y - 0.2 * x)
    g += 25 * (((x // 6) + (y // 6)) % 2) + rng.normal(0, 3, (h, w))
    rgb = np.stack([g, 0.8 * g + 30, 0.6 * g + 50], axis=-1)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


TRAIN = [textured(96, 96, s, (0.2 + 0.02 * s, 0.12 + 0.01 * s)) for s in range(4)]
TEST = textured(60, 72, 9, (0.23, 0.14))


def sr_psnr(model, hr, scale):
    lr = imresize(hr, 1 / scale)
    with torch.no_grad():
        sr = model(to_tensor(lr)).clamp(0, 1)
    out = sr[0].mul(255).round().byte().permute(1, 2, 0).numpy()
    return psnr(out, hr, scale), psnr(imresize(lr, scale), hr, scale)


# ----- patch machinery -------------------------------------------------------------------------
def test_grid_covers_the_border():
    assert grid(10, 3, 2).tolist() == [0, 2, 4, 6, 7]
    assert grid(9, 3, 3).tolist() == [0, 3, 6]
    with pytest.raises(ValueError, match="smaller than"):
        grid(2, 3, 1)


def test_extract_then_overlap_average_is_identity():
    img = torch.rand(1, 13, 11, dtype=torch.float64)
    index = patch_index(13, 11, 6, 2)
    patches = extract(img, index)
    assert patches.shape == (index.shape[0], 36)
    assert torch.equal(patches[0].reshape(6, 6), img[0, :6, :6])
    assert torch.allclose(overlap_average(patches, index, 13, 11), img[0])


def test_gradient_features_are_the_four_filters():
    from srlib.classical.patches import GRADIENTS, gradient_features

    x = torch.rand(2, 1, 19, 23, dtype=torch.float64) * 255
    got = gradient_features(x)
    assert torch.equal(got, torch.nn.functional.conv2d(x, GRADIENTS, padding=2))  # the same float64 numbers
    ramp = torch.arange(5.0, dtype=torch.float64).repeat(5, 1)[None, None]  # x along columns
    g = gradient_features(ramp)[0]
    assert g[0, 2].tolist() == [1.0, 2.0, 2.0, 2.0, -3.0]  # x[j+1] - x[j-1], zeros outside
    assert g[1, 2].tolist() == [0.0] * 5 and g[3, 2].tolist() == [0.0] * 5  # constant along y inside
    assert g[2, 2].tolist() == [2.0, 1.0, 0.0, -5.0, -6.0]  # x[j-2] - 2 x[j] + x[j+2], zeros outside


def test_ycbcr_round_trip_and_matlab_y():
    img = textured(20, 24, 1)
    ycc = rgb_to_ycbcr(to_tensor(img))
    assert np.array_equal(ycc[0, 0].numpy().astype(np.uint8), rgb2ycbcr(img))
    back = ycbcr_to_rgb(ycc)[0].permute(1, 2, 0).mul(255).round().clamp(0, 255).byte().numpy()
    assert np.abs(back.astype(int) - img.astype(int)).max() <= 2  # Y/Cb/Cr are rounded


def test_training_pairs_shapes_and_pruning():
    feats, hr, mid = training_pairs(TRAIN[:2], 3, max_pairs=500, seed=0)
    assert feats.shape == (500, 4 * 81) and hr.shape == mid.shape == (500, 81)
    assert (hr.var(dim=1) >= 10).all()
    flat = np.full((60, 60, 3), 120, np.uint8)
    with pytest.raises(ValueError, match="no training image"):
        training_pairs([flat[:5, :5]], 3, 10)
    again = training_pairs(TRAIN[:2], 3, max_pairs=500, seed=0)
    assert torch.equal(again[0], feats)


# ----- the solvers, against independent implementations ----------------------------------------
def test_lle_weights_match_scikit_learn():
    from sklearn.manifold._locally_linear import barycenter_weights

    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 5))
    nbrs = rng.normal(size=(7, 4, 5))
    w = lle_weights(torch.from_numpy(x), torch.from_numpy(nbrs))
    ref = barycenter_weights(x, nbrs.reshape(28, 5), np.arange(28).reshape(7, 4), reg=1e-3)
    assert np.allclose(w.numpy(), ref, atol=1e-10)
    assert np.allclose(w.sum(1).numpy(), 1)


def test_lasso_fista_matches_scikit_learn():
    from sklearn.linear_model import Lasso

    rng = np.random.default_rng(0)
    d = rng.normal(size=(40, 64))
    d /= np.linalg.norm(d, axis=0)
    y = rng.normal(size=(6, 40))
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    a = lasso_fista(torch.from_numpy(d), torch.from_numpy(y), 0.1, max_iter=5000, tol=1e-12).numpy()
    # scikit-learn's Lasso divides the squared error by the number of rows (40)
    ref = Lasso(alpha=0.1 / 40, fit_intercept=False, tol=1e-12, max_iter=100_000).fit(d, y.T).coef_
    assert np.abs(a - ref).max() < 1e-6
    assert 0 < (np.abs(a) > 0).sum(1).mean() < 20  # sparse


def test_back_projection_enforces_the_lr_image():
    lr = torch.rand(1, 1, 12, 14, dtype=torch.float64) * 255
    sr = imresize(lr, 3) + torch.randn(1, 1, 36, 42, dtype=torch.float64) * 10
    err = lambda x: (imresize(x, size=(12, 14)) - lr).pow(2).mean().item()
    assert err(back_projection(sr, lr, 3, iters=20)) < 0.05 * err(sr)
    k = gaussian_5x5()
    assert k.shape == (1, 1, 5, 5) and abs(k.sum().item() - 1) < 1e-12 and k[0, 0, 2, 2] == k.max()


def test_separable_blur_is_the_released_kernel():
    g = gaussian_5x5_1d()
    # exp(-x^2) at x = 0, 1, 2 (the squared sigma-1 Gaussian), normalised: centre 1 / (1 + 2/e + 2/e^4)
    assert abs(g[2].item() - 1 / (1 + 2 * np.exp(-1) + 2 * np.exp(-4))) < 1e-15
    assert torch.allclose(torch.outer(g, g), gaussian_5x5()[0, 0], rtol=0, atol=1e-16)
    x = torch.rand(1, 1, 17, 23, dtype=torch.float64)
    ref = torch.nn.functional.conv2d(x, gaussian_5x5(), padding=2)  # conv2(x, p, 'same'), zero padding
    assert (blur_5x5(x) - ref).abs().max() < 1e-14


def test_gaussian_back_projection_model():
    x = torch.zeros(1, 1, 9, 12, dtype=torch.float64)
    x[0, 0, 4, 7] = 1.0  # the centre pixel of LR pixel (1, 2) at x3
    d = gaussian_down(x, 3, (3, 4))
    assert d.shape == (1, 1, 3, 4) and abs(d[0, 0, 1, 2].item() - gaussian_5x5().max().item()) < 1e-15
    lr = torch.rand(1, 1, 12, 14, dtype=torch.float64) * 255
    sr = imresize(lr, 3) + torch.randn(1, 1, 36, 42, dtype=torch.float64) * 10
    out = back_projection(sr, lr, 3, iters=5, model="gaussian")
    assert out.shape == sr.shape and not torch.equal(out, back_projection(sr, lr, 3, iters=5))
    with pytest.raises(ValueError, match="model"):
        back_projection(sr, lr, 3, model="box")


# ----- the upscalers ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ne(tmp_path_factory):
    model = NeighborEmbedding(3, profile="smoke", cache_dir=tmp_path_factory.mktemp("ne"), progress=False)
    return model.fit(TRAIN, "synthetic")


@pytest.fixture(scope="module")
def sc(tmp_path_factory):
    model = SparseCoding(3, profile="smoke", cache_dir=tmp_path_factory.mktemp("sc"), progress=False)
    return model.fit(TRAIN, "synthetic")


@pytest.mark.parametrize("name", ["ne", "sc"])
def test_learned_methods_beat_bicubic_on_texture(name, ne, sc):
    model = {"ne": ne, "sc": sc}[name]
    ours, bicubic = sr_psnr(model, TEST, 3)
    assert ours > bicubic + 0.3, (ours, bicubic)


@pytest.mark.parametrize("name", ["ne", "sc"])
def test_shapes_and_batches(name, ne, sc):
    model = {"ne": ne, "sc": sc}[name]
    x = torch.stack([to_tensor(TEST[:30, :33])[0], to_tensor(TEST[30:, 39:])[0]])
    out = model(x)
    assert out.shape == (2, 3, 90, 99) and out.dtype == torch.float32
    assert torch.allclose(out[1:], model(x[1:]), atol=1e-5)  # images are independent


@pytest.mark.parametrize("search", ["blocks", "faiss"])
def test_exact_searches_find_scikit_learns_neighbours(ne, search, monkeypatch):
    """The default exact search (the bounded block search, float64 distances) and faiss (float32)
    against scikit-learn's brute force (float64): the same K nearest pool rows for every query but
    near ties, and the same distances."""
    from sklearn.neighbors import NearestNeighbors

    monkeypatch.setitem(ne.settings, "search", search)
    ne._prepare()
    rng = np.random.default_rng(0)
    low = ne.arrays["low"]
    q = low[rng.choice(len(low), 300, replace=False)] + 0.05 * torch.randn(300, low.shape[1], generator=torch.Generator().manual_seed(0))
    got = ne.neighbours(q)
    dist, want = NearestNeighbors(n_neighbors=ne.settings["k"]).fit(low.double().numpy()).kneighbors(q.double().numpy())
    same = (got.numpy() == want).all(axis=1)
    assert same.mean() > (0.995 if search == "blocks" else 0.98), same.mean()
    got_d = (q.double()[:, None] - low.double()[got]).norm(dim=-1).numpy()
    np.testing.assert_allclose(got_d, dist, rtol=1e-4, atol=1e-5)  # any swap is a tie
    monkeypatch.setitem(ne.settings, "search", "blocks")
    ne._prepare()


def test_block_search_falls_back_without_the_kernels(ne, monkeypatch):
    from srlib import kernels

    monkeypatch.setattr(kernels, "ENABLED", False)
    ne._prepare()
    try:
        assert ne._search == "faiss"
        assert ne.neighbours(ne.arrays["low"][:50]).shape == (50, ne.settings["k"])
    finally:
        monkeypatch.setattr(kernels, "ENABLED", True)
        ne._prepare()
    with pytest.raises(ValueError, match="search="):
        NeighborEmbedding(3, profile="smoke", search="annoy", progress=False).fit(TRAIN[:1], "synthetic")


@pytest.mark.parametrize("cls", [NeighborEmbedding, SparseCoding])
def test_determinism_with_a_seed(cls, tmp_path):
    kw = dict(profile="smoke", progress=False, pairs=800)
    if cls is SparseCoding:
        kw["atoms"] = 16
    a = cls(2, cache_dir=tmp_path / "a", seed=3, **kw).fit(TRAIN[:2])
    b = cls(2, cache_dir=tmp_path / "b", seed=3, **kw).fit(TRAIN[:2])
    x = to_tensor(imresize(TEST, 1 / 2))
    assert torch.equal(a(x), b(x))
    for k in a.arrays:
        assert torch.equal(a.arrays[k], b.arrays[k])


def test_dictionary_is_cached_and_reloaded(tmp_path, monkeypatch):
    import srlib.data.catalog as catalog
    import srlib.data.datasets as ds

    calls = []

    def fake_load(name, *a, **k):
        calls.append(name)
        return TRAIN, "synthetic"

    monkeypatch.setattr(ds, "load_hr_images", fake_load)
    monkeypatch.setattr(catalog, "find_dataset", lambda name, root=None: tmp_path)  # "T91 is present"
    make = lambda **kw: NeighborEmbedding(2, profile="smoke", cache_dir=tmp_path, progress=False, **kw)
    first = make().ensure_fitted()
    path = first.cache_path()
    assert path.is_file() and path.with_suffix(".json").is_file() and calls == ["T91"]
    second = make().ensure_fitted()
    assert calls == ["T91"]  # loaded, not relearned
    assert torch.equal(second.arrays["low"], first.arrays["low"])
    assert second.info["train_source"] == "synthetic"
    assert make(k=7).cache_path() == path  # an inference-only setting: same dictionary
    assert make(pairs=900).cache_path() != path  # a learning setting: another file
    monkeypatch.setattr(catalog, "find_dataset", lambda name, root=None: None)
    assert make().cache_path() != path  # learned on the fallback images: never mistaken for T91's
    monkeypatch.setattr(catalog, "find_dataset", lambda name, root=None: tmp_path)
    path.with_suffix(".json").unlink()  # a file without its sidecar (a crash between the writes)
    make().ensure_fitted()
    assert calls == ["T91", "T91"] and path.with_suffix(".json").is_file()


def test_registered_and_evaluated_like_a_model(tmp_path, monkeypatch):
    monkeypatch.setenv("SRLIB_PROJECT_DIR", str(tmp_path))
    assert {"ne", "sc"} <= set(CLASSICAL) and {"ne", "sc"} <= set(list_upscalers())
    model = build_upscaler("ne", 2, profile="smoke")
    assert isinstance(model, NeighborEmbedding) and model.profile == "smoke"
    assert model.cache_path().is_relative_to(tmp_path / "results" / "smoke")
    with pytest.raises(TypeError, match="unknown setting"):
        SparseCoding(2, atom=3)
    with pytest.raises(ValueError, match="classical method"):
        build_upscaler("sc", 2, checkpoint="x.pt")


def test_evaluate_runs_a_fitted_method(ne):
    from srlib.data.colour import to_uint8
    from srlib.data.datasets import BenchmarkSet

    df = evaluate(ne, ["skimage"], [3], max_images=1, progress=False)
    item = BenchmarkSet("skimage", 3, max_images=1)[0]
    with torch.no_grad():
        direct = psnr(to_uint8(ne(to_tensor(item.lr))), item.hr, 3)
    assert len(df) == 1 and abs(df.psnr.iloc[0] - direct) < 1e-9


# ----- the fast paths against the plain algorithms they replace ---------------------------------
def plain_fista(d, y, alpha, iters, tol=1e-6):
    """The textbook iteration (the code before the fast path), for comparison."""
    gram, b = d.T @ d, y @ d
    step = 1.0 / torch.linalg.eigvalsh(gram.double())[-1].item()
    a = torch.zeros_like(b)
    z, t = a, 1.0
    for _ in range(iters):
        v = z - step * (z @ gram - b)
        a_next = torch.sign(v) * (v.abs() - alpha * step).clamp(min=0)
        t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
        z = a_next + ((t - 1) / t_next) * (a_next - a)
        moved = (a_next - a).abs().max().item()
        a, t = a_next, t_next
        if moved < tol:
            break
    return a


def test_lasso_fista_equals_the_plain_iteration():
    from srlib.classical.sparse_coding import lasso_fista, soft_threshold

    g = torch.Generator().manual_seed(1)
    d = torch.randn(36, 64, generator=g, dtype=torch.float64)  # float64: only the algorithm differs
    d = d / d.norm(dim=0)
    y = torch.randn(500, 36, generator=g, dtype=torch.float64)
    y[:200] *= 0.01  # flat patches: zero codes, which leave the batch after two iterations
    for iters in (3, 50):
        got, want = lasso_fista(d, y, 0.2, iters), plain_fista(d, y, 0.2, iters)
        assert (got[:200] == 0).all() and (got[200:] != 0).any()
        assert torch.allclose(got, want, rtol=0, atol=1e-10), (got - want).abs().max()
    v = torch.linspace(-1, 1, 101)
    assert torch.equal(soft_threshold(v, 0.3), torch.sign(v) * (v.abs() - 0.3).clamp(min=0))


def test_unfold_and_fold_equal_the_index_path():
    from srlib.classical.patches import (extract, fold_average, overlap_average, patch_index, regular,
                                         unfold_patches)

    img = torch.rand(4, 24, 36, dtype=torch.float64)
    for size, step in ((6, 2), (9, 3), (12, 4)):
        assert regular(24, 36, size, step)
        index = patch_index(24, 36, size, step)
        assert torch.equal(unfold_patches(img, size, step), extract(img, index))
        p = torch.rand(index.shape[0], size * size, dtype=torch.float64)
        assert torch.allclose(fold_average(p, 24, 36, size, step), overlap_average(p, index, 24, 36), atol=1e-12)
    assert not regular(25, 30, 6, 2) and not regular(4, 30, 6, 2)
