"""The exact K-nearest-neighbour search of neighbour embedding (srlib.classical.knn) against a
float64 brute force computed with the same arithmetic: the same neighbours in the same order,
ties to the lower pool index."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from srlib import kernels
from srlib.classical import knn

pytestmark = pytest.mark.skipif(kernels.numba is None, reason="numba is not installed")


def brute_force(pool, q, k):
    """The k nearest rows by the search's own float64 sum (even and odd coordinates apart, each in
    order, then added), ties to the lower index."""
    p, x = np.asarray(q, np.float32).astype(np.float64), np.asarray(pool, np.float32).astype(np.float64)
    even = np.zeros((len(p), len(x)))
    odd = np.zeros((len(p), len(x)))
    for e in range(p.shape[1]):
        part = even if e % 2 == 0 else odd
        part += (p[:, e:e + 1] - x[None, :, e]) ** 2
    d = even + odd
    return np.stack([np.lexsort((np.arange(len(x)), row))[:k] for row in d])


def pca_like(n, dims, seed):
    """Gaussian rows whose coordinate variances decay as PCA's do, clustered like patch features."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dims)) * 3
    x = centres[rng.integers(0, 40, n)] + rng.normal(size=(n, dims))
    return (x * np.exp(-np.arange(dims) / 6)).astype(np.float32)


@pytest.mark.parametrize("dims, k", [(34, 5), (34, 1), (20, 7), (5, 3)])
def test_block_search_is_the_brute_force(dims, k):
    pool = pca_like(3000, dims, seed=dims)  # 3000 rows: 47 leaves, the last one padded
    pool[100:110] = pool[50]  # exact duplicates: ties go to the lower index
    q = pca_like(700, dims, seed=dims + 1)
    q[:20] = pool[40:60]  # queries on pool rows, one on the duplicated row
    q[20] = pool[50]
    q[21] = 50.0  # far from everything
    got = knn.BlockSearch(pool).search(q, k)
    assert got.dtype == np.int64 and got.shape == (700, k)
    np.testing.assert_array_equal(got, brute_force(pool, q, k))
    assert (got[:20, 0] == np.arange(40, 60)).all()


def test_block_search_with_a_pool_of_k_rows_and_one_leaf():
    pool = pca_like(5, 34, seed=3)
    q = pca_like(40, 34, seed=4)
    np.testing.assert_array_equal(knn.BlockSearch(pool).search(q, 5), brute_force(pool, q, 5))


def test_block_search_threads_give_the_same_answer():
    pool, q = pca_like(2000, 34, seed=5), pca_like(1500, 34, seed=6)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = knn.BlockSearch(pool).search(q, 5)
        torch.set_num_threads(2)
        two = knn.BlockSearch(pool).search(q, 5)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


def test_block_search_bad_input_says_what_is_wrong():
    pool = pca_like(100, 34, seed=7)
    search = knn.BlockSearch(pool)
    with pytest.raises(ValueError, match="k=101"):
        search.search(pool[:3], 101)
    with pytest.raises(ValueError, match="33"):
        search.search(pool[:3, :33], 5)
    bad = pool[:3].copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        search.search(bad, 5)
    with pytest.raises(ValueError, match="pool"):
        knn.BlockSearch(np.zeros((0, 34), np.float32))


def test_kd_order_is_a_permutation_whose_leaves_are_split_at_the_median():
    x = pca_like(1000, 15, seed=8)
    order = knn.kd_order(x, 16)
    assert sorted(order) == list(range(1000))
    # the root's split: the first 496 rows (31 leaves of the 62.5) lie below the rest on its widest coordinate
    d = np.argmax(x.max(0) - x.min(0))
    assert x[order[:496], d].max() <= x[order[496:], d].min()


def test_block_search_answers_do_not_depend_on_the_query_order():
    """The search reorders its queries (alike ones together); each answer must stay its own."""
    pool, q = pca_like(2000, 34, seed=9), pca_like(800, 34, seed=10)
    search = knn.BlockSearch(pool)
    perm = np.random.default_rng(0).permutation(800)
    np.testing.assert_array_equal(search.search(q[perm], 5), search.search(q, 5)[perm])
