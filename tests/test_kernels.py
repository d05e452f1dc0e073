"""The fused CPU kernels (srlib.kernels) against the torch code they stand in for.

Every test computes the same thing twice, with ``kernels.ENABLED`` on and off: resizing must
agree bit for bit (uint8 and the quantised float path), Y and PSNR bit for bit, SSIM to 1e-12,
FISTA's codes to float rounding (1e-12 in float64).
"""
from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest
import torch

from srlib import kernels
from srlib.data.colour import to_tensor
from srlib.data.resize import imresize, imresize_quantized
from srlib.metrics import psnr_ssim_torch, quantize8, ssim_torch

pytestmark = pytest.mark.skipif(kernels.numba is None, reason="numba is not installed")


def both(monkeypatch, fn):
    """``(fn() with the kernels, fn() with the torch code)``."""
    monkeypatch.setattr(kernels, "ENABLED", True)
    fast = fn()
    monkeypatch.setattr(kernels, "ENABLED", False)
    slow = fn()
    monkeypatch.setattr(kernels, "ENABLED", True)
    return fast, slow


CASES = [  # (shape, scale or size, kwargs)
    ((61, 47, 3), 1 / 2, {}), ((61, 47, 3), 1 / 3, {}), ((64, 48, 3), 1 / 4, {}),
    ((20, 17, 3), 2, {}), ((20, 17, 3), 3, {}), ((20, 17, 3), 4, {}),
    ((33, 29), 1 / 3, {}),  # a gray (H, W) image
    ((40, 30, 3), (0.5, 0.25), {}),  # columns shrink more: the columns pass goes first
    ((40, 30, 3), None, {"size": (17, 45)}),  # shrink one side, enlarge the other
    ((40, 30, 3), 1.5, {}), ((40, 30, 3), 0.7, {"round_intermediate": True}),
    ((40, 30, 3), 1 / 3, {"kernel": "bilinear"}), ((40, 30, 3), 2.5, {"kernel": "nearest"}),
    ((40, 30, 3), 1 / 2, {"antialias": False}),
]


@pytest.mark.parametrize("shape, scale, kwargs", CASES)
def test_uint8_resize_is_bit_for_bit_the_torch_product(monkeypatch, rng, shape, scale, kwargs):
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    fast, slow = both(monkeypatch, lambda: imresize(img, scale, **kwargs))
    assert fast.dtype == np.uint8 and fast.flags.c_contiguous
    assert np.array_equal(fast, slow)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [2, 3, 4, 1 / 3])
def test_quantized_resize_is_bit_for_bit_the_torch_product(monkeypatch, rng, dtype, scale):
    x = torch.from_numpy(rng.integers(0, 256, (2, 3, 24, 21))).to(dtype) / 255
    fast, slow = both(monkeypatch, lambda: imresize_quantized(x, scale))
    assert fast.dtype == dtype and fast.is_contiguous() and torch.equal(fast, slow)


def test_benchmark_images_resize_bit_for_bit(monkeypatch, data_dir):
    """The protocol's LR and bicubic SR of Set14 and 20 B100 images, x2/x3/x4."""
    from srlib.data.colour import modcrop
    from srlib.data.datasets import load_hr_images

    images = load_hr_images("Set14", fallback=False)[0] + load_hr_images("B100", fallback=False)[0][:20]
    for s in (2, 3, 4):
        for im in images:
            hr = np.ascontiguousarray(modcrop(im.hr, s))
            lr, lr_ref = both(monkeypatch, lambda: imresize(hr, 1 / s))
            sr, sr_ref = both(monkeypatch, lambda: imresize_quantized(to_tensor(lr), s))
            assert np.array_equal(lr, lr_ref) and torch.equal(sr, sr_ref), (im.name, s)


def test_metrics_agree_with_the_torch_code(monkeypatch, rng):
    hr = torch.from_numpy(rng.integers(0, 256, (3, 3, 40, 37), dtype=np.uint8))
    noise = torch.from_numpy(rng.integers(-12, 13, hr.shape))
    sr = (hr.int() + noise).clamp(0, 255).to(torch.uint8)
    for round_y in (True, False):
        for as_gray in (False, [True, False, True]):
            (p, s), (p0, s0) = both(monkeypatch, lambda: psnr_ssim_torch(sr, hr, 3, as_gray=as_gray, round_y=round_y))
            if round_y:
                assert torch.equal(p, p0)  # integer Y: the same squares, summed exactly
            assert torch.allclose(p, p0, rtol=0, atol=1e-10)
            assert torch.allclose(s, s0, rtol=0, atol=1e-12)
    (s1,), (s2,) = both(monkeypatch, lambda: ssim_torch(sr[:1].double() / 255, hr[:1].double() / 255, 0))
    assert abs(float(s1) - float(s2)) < 1e-12


def test_quantize8_and_to_tensor_are_the_torch_steps(monkeypatch, rng):
    levels = torch.arange(-3, 259, dtype=torch.float64)
    ties = (levels + 0.5) / 255  # exact halves after the product: round half to even decides
    x = torch.cat([ties, torch.from_numpy(rng.normal(0.5, 0.4, 5000)), torch.tensor([0.0, 1.0])])
    for dtype in (torch.float32, torch.float64):
        fast, slow = both(monkeypatch, lambda: quantize8(x.to(dtype)))
        assert torch.equal(fast, slow)
    img = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    t = to_tensor(img)
    assert t.is_contiguous() and torch.equal(t, torch.tensor(img.transpose(2, 0, 1), dtype=torch.float32)[None] / 255)


def test_thread_count_does_not_change_the_result(rng):
    img = rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)
    a = torch.from_numpy(rng.integers(16, 236, (1, 3, 90, 70), dtype=np.uint8))
    before = torch.get_num_threads()
    try:
        out = {}
        for n in (1, 2):
            torch.set_num_threads(n)
            out[n] = (imresize(img, 1 / 3), psnr_ssim_torch(a, a.flip(-1), 2))
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(out[1][0], out[2][0])
    assert torch.equal(out[1][1][0], out[2][1][0]) and abs(float(out[1][1][1] - out[2][1][1])) < 1e-12


def _child(img, q):
    q.put(imresize(img, 1 / 2))


def test_a_forked_child_runs_the_kernels_after_its_parent(rng):
    """DataLoader workers are forked from a process that has already used the kernels' pool."""
    img = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    expected = imresize(img, 1 / 2)  # the parent uses the kernels (and its thread pool) first
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(img, q))
    p.start()
    out = q.get(timeout=60)
    p.join(timeout=60)
    assert p.exitcode == 0 and np.array_equal(out, expected)


def test_pipelined_evaluation_gives_the_serial_numbers(monkeypatch, data_dir):
    """evaluate_set on 2 threads computes the metrics of image i beside the model's image i + 1;
    on 1 thread it runs them in turn, and without the kernels it runs the torch code."""
    from srlib.evaluate import evaluate

    def table():
        return evaluate("bicubic", ["Set5", "Set14"], [3], progress=False, gray_rule="y")

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        piped, torch_code = both(monkeypatch, table)
        torch.set_num_threads(1)
        serial = table()
    finally:
        torch.set_num_threads(before)
    assert list(piped.columns) == list(serial.columns) and len(piped) == 19
    assert list(piped.image) == list(serial.image) == list(torch_code.image)
    assert piped.psnr.tolist() == serial.psnr.tolist() == torch_code.psnr.tolist()
    assert (piped.ssim - torch_code.ssim).abs().max() < 1e-12
    assert (piped.ssim - serial.ssim).abs().max() < 1e-12
    assert (piped.seconds > 0).all()


def test_a_metrics_error_in_the_pipeline_reaches_the_caller(monkeypatch, data_dir):
    import srlib.evaluate as ev

    def broken(*args, **kwargs):
        raise ValueError("metrics failed")

    monkeypatch.setattr(ev, "_measure", broken)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(ValueError, match="metrics failed"):
            ev.evaluate("bicubic", ["Set5"], [2], progress=False)
    finally:
        torch.set_num_threads(before)


def _lasso_problem(dtype, patches=600, atoms=96, dims=40, seed=3):
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(dims, atoms, generator=g, dtype=torch.float64)
    d = (d / d.norm(dim=0)).to(dtype)
    y = torch.randn(patches, dims, generator=g, dtype=torch.float64).to(dtype)
    y[: patches // 4] *= 0.01  # flat patches: zero codes, a fixed point after two iterations
    return d, y


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("iters", [1, 7, 50])
def test_fista_kernel_gives_the_torch_codes(monkeypatch, dtype, atol, iters):
    from srlib.classical.sparse_coding import lasso_fista

    d, y = _lasso_problem(dtype)
    fast, slow = both(monkeypatch, lambda: lasso_fista(d, y, 0.2, iters))
    assert fast.dtype == dtype and fast.shape == slow.shape == (600, 96)
    assert torch.equal(fast[:150], torch.zeros_like(fast[:150]))
    if dtype == torch.float64:  # the same atoms, not just close values
        assert torch.equal(fast != 0, slow != 0)
    assert (fast[150:] != 0).float().sum(1).mean() > 1  # sparse codes, not all zero
    assert torch.allclose(fast, slow, rtol=0, atol=atol), (fast - slow).abs().max()


def test_fista_kernel_stops_where_the_torch_code_stops(monkeypatch):
    """The batch stops at the first iteration where no code moved ``tol``: the kernel learns it
    only after all iterations, and runs the patches again to it."""
    from srlib.classical.sparse_coding import lasso_fista

    d, y = _lasso_problem(torch.float64, patches=50)
    for tol in (1e-1, 1e-3, 1e-5):
        fast, slow = both(monkeypatch, lambda: lasso_fista(d, y, 0.2, 400, tol=tol))
        assert torch.allclose(fast, slow, rtol=0, atol=1e-12)
    early = lasso_fista(d, y, 0.2, 400, tol=1e-1)
    assert not torch.allclose(early, lasso_fista(d, y, 0.2, 400, tol=1e-5), atol=1e-4)  # the rule mattered


def test_fista_kernel_threads_do_not_change_the_codes():
    from srlib.classical.sparse_coding import lasso_fista

    d, y = _lasso_problem(torch.float32, patches=1000)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = lasso_fista(d, y, 0.2, 30)
        torch.set_num_threads(2)
        two = lasso_fista(d, y, 0.2, 30)
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(one.numpy(), two.numpy())


@pytest.mark.skipif((__import__("os").cpu_count() or 1) < 2, reason="needs two cores")
def test_thread_limits_hold_for_their_own_thread_only():
    """single_threaded() caps the kernel calls of the thread that entered it (the evaluation
    pipeline's two streams each enter it); all_threads() lifts the cap for heavy work inside."""
    from concurrent.futures import ThreadPoolExecutor

    def parts():
        return len(kernels.split(lambda start, stop: stop - start, 100))

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert parts() == 2
        with kernels.single_threaded():
            assert parts() == 1
            with ThreadPoolExecutor(1) as other:
                assert other.submit(parts).result() == 2  # another thread is not capped
            with kernels.all_threads():
                assert parts() == 2
            assert parts() == 1
        assert parts() == 2
    finally:
        torch.set_num_threads(before)


def _lle_reference(q, low, high, idx):
    """Neighbour embedding's torch LLE step: the weights of lle_weights, then their float64 sum."""
    from srlib.classical.neighbor_embedding import lle_weights

    i = torch.from_numpy(idx)
    w = lle_weights(torch.from_numpy(q).double(), torch.from_numpy(low)[i].double())
    return (w[:, :, None] * torch.from_numpy(high)[i].double()).sum(1).float().numpy()


def test_lle_kernel_gives_the_torch_weights_and_sums(rng):
    low = rng.normal(size=(500, 34)).astype(np.float32) * np.exp(-np.arange(34) / 6).astype(np.float32)
    high = rng.normal(size=(500, 36)).astype(np.float32)
    q = (low[rng.integers(0, 500, 300)] + 0.1 * rng.normal(size=(300, 34))).astype(np.float32)
    idx = rng.integers(0, 500, (300, 5))
    idx[0] = 7  # five copies of one row: a zero Gram matrix (trace 0), equal weights
    idx[1, 1] = idx[1, 0]  # a repeated neighbour: a singular Gram matrix the ridge mends
    q[2] = low[idx[2, 3]]  # a query on one of its neighbours
    fast = kernels.lle_combine(q, low, high, idx)
    slow = _lle_reference(q, low, high, idx)
    assert fast.dtype == np.float32 and fast.shape == (300, 36)
    np.testing.assert_allclose(fast, slow, rtol=1e-6, atol=1e-6)
    assert (fast == slow).mean() > 0.99  # float64 in another order: almost always the same float32
    np.testing.assert_allclose(fast[0], high[7], rtol=1e-6)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert np.array_equal(kernels.lle_combine(q, low, high, idx), fast)
    finally:
        torch.set_num_threads(before)
