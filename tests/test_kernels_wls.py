"""Tests of the batched weighted least squares of the calibration (sklearn_selfcal._kernels.wls)."""

import numpy as np
import pytest

from sklearn_selfcal._kernels import wls


def test_batched_wls_equals_per_problem_lstsq_with_missing_values():
    rng = np.random.default_rng(1)
    n, D, K = 400, 6, 5
    Y = rng.normal(size=(n, D))
    A = rng.normal(size=(K, n))
    W = rng.uniform(0.5, 2.0, size=(K, n))
    W[rng.random((K, n)) < 0.2] = 0.0
    A[W == 0] = np.nan  # missing values never leak into the answer
    res = wls.solve_many(np.ascontiguousarray(Y.T), A, W)
    for k in range(K):
        m = W[k] > 0
        sw = np.sqrt(W[k, m])
        coef = np.linalg.lstsq(Y[m] * sw[:, None], A[k, m] * sw, rcond=None)[0]
        np.testing.assert_allclose(res.coef[k], coef, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(res.gram_inv[k], np.linalg.inv((Y[m] * W[k, m, None]).T @ Y[m]),
                                   rtol=1e-10)
        r = A[k, m] - Y[m] @ coef
        assert res.chi2[k] == pytest.approx((W[k, m] * r**2).sum(), rel=1e-10)
        assert res.n_obs[k] == m.sum()
        meat = wls.sandwich_meat(np.ascontiguousarray(Y.T), res.resid, W)[k]
        np.testing.assert_allclose(meat, (Y[m] * (W[k, m] * r)[:, None] ** 2).T @ Y[m], rtol=1e-10)


def test_rank_deficiency_names_the_collinear_terms():
    rng = np.random.default_rng(2)
    Y = rng.normal(size=(100, 4))
    Y[:, 3] = 2 * Y[:, 1] - Y[:, 0]
    gram, _ = wls.normal_equations(np.ascontiguousarray(Y.T), np.zeros((2, 100)),
                                   np.ones((2, 100)))
    assert wls.rank_deficiencies(gram) == {0: [0, 1, 3], 1: [0, 1, 3]}
    gram, _ = wls.normal_equations(np.ascontiguousarray(rng.normal(size=(4, 100))),
                                   np.zeros((1, 100)), np.ones((1, 100)))
    assert wls.rank_deficiencies(gram) == {}


def test_prediction_variance_is_the_quadratic_form():
    rng = np.random.default_rng(3)
    Y = rng.normal(size=(50, 4))
    Y[7] = np.nan
    L = rng.normal(size=(3, 4, 4))
    cov = L @ np.swapaxes(L, 1, 2)
    var = wls.prediction_variance(np.ascontiguousarray(Y.T), cov)
    np.testing.assert_allclose(var, np.einsum("np,kpq,nq->kn", Y, cov, Y), rtol=1e-12)
    assert np.isnan(var[:, 7]).all()
