"""Kernels whose results add up over partitions of the rows: merged equals whole."""

import numpy as np
import pytest

from sklearn_selfcal._kernels import binned as kb
from sklearn_selfcal._kernels import wls as kwls
from sklearn_selfcal._kernels.reductions import merge_moments, moments


def _splits(n, rng, n_parts=5):
    """Random cut points, with an empty part among them."""
    cuts = np.sort(rng.choice(np.arange(1, n), n_parts - 2, replace=False))
    return np.split(np.arange(n), np.concatenate([[0], cuts]))  # first part empty


def test_merged_moments_equal_whole_moments():
    rng = np.random.default_rng(0)
    # an offset 1e8 times the smallest spread: a sum of squares (sum x^2 / n - mean^2) gets the
    # standard deviation of that column wrong by a factor 5; the merge keeps 1e-9 of it
    x = 1e6 + rng.normal(size=(1000, 3)) * [1.0, 1e-2, 10.0]
    n, mean, m2 = merge_moments([moments(x[idx]) for idx in _splits(1000, rng)])
    assert n == 1000
    np.testing.assert_allclose(mean, x.mean(axis=0), rtol=4e-15)  # a few ulps
    np.testing.assert_allclose(np.sqrt(m2 / n), x.std(axis=0), rtol=1e-8)
    assert moments(np.zeros((0, 2)))[0] == 0


def test_normal_equations_and_residual_sums_add_up_over_partitions():
    rng = np.random.default_rng(1)
    D, K, n = 4, 3, 600
    design_t = np.vstack([np.ones(n), rng.normal(size=(D - 1, n))])
    values = rng.normal(size=(K, n))
    weights = rng.uniform(0.5, 2.0, size=(K, n))
    weights[1, ::7] = 0.0
    values[1, ::7] = np.nan          # missing values carry zero weight
    whole = kwls.solve_many(design_t, values, weights)
    parts = [kwls.normal_equations(design_t[:, i], values[:, i], weights[:, i])
             for i in _splits(n, rng)]
    gram = sum(p[0] for p in parts)
    rhs = sum(p[1] for p in parts)
    coef, gram_inv = kwls.coef_from_normal(gram, rhs)
    np.testing.assert_allclose(coef, whole.coef, rtol=1e-12)
    np.testing.assert_allclose(gram_inv, whole.gram_inv, rtol=1e-12)
    sums = [kwls.residual_sums(design_t[:, i], values[:, i], weights[:, i], coef)
            for i in _splits(n, rng)]
    chi2, n_obs, meat = (sum(s[j] for s in sums) for j in range(3))
    np.testing.assert_allclose(chi2, whole.chi2, rtol=1e-12)
    np.testing.assert_array_equal(n_obs, whole.n_obs)
    np.testing.assert_allclose(meat, kwls.sandwich_meat(design_t, whole.resid, weights),
                               rtol=1e-12)
    assert kwls.residual_sums(design_t, values, weights, coef, meat=False)[2] is None


@pytest.mark.parametrize("n_groups", [1, 7])
def test_grouped_sums_add_up_to_the_mean(n_groups):
    rng = np.random.default_rng(2)
    group = rng.integers(-1, n_groups, 300)
    values = rng.normal(size=300)
    values[::11] = np.nan
    totals, counts = zip(*[kb.grouped_sum(group[i], values[i], n_groups)
                           for i in _splits(300, rng)])
    mean, count = kb.grouped_mean(group, values, n_groups)
    np.testing.assert_array_equal(sum(counts), count)
    np.testing.assert_allclose(kb.mean_from_sum(sum(totals), sum(counts)), mean, rtol=1e-14)
    assert np.isnan(kb.mean_from_sum(np.zeros(1), np.zeros(1, dtype=int)))[0]
