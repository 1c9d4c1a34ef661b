"""Tests of the inner Lasso of a Newton step (sklearn_selfcal._kernels.explinear_l1.lasso_gram)."""

import numpy as np

from sklearn_selfcal._kernels.explinear_l1 import lasso_gram
from sklearn_selfcal._kernels.explinear_l1.lasso_gram import lasso_active_set


def _lasso(m=80, seed=0):
    """A correlated Gram matrix (condition ~1e4, like the projected pixels'), its linear term."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(400, 4)) @ rng.normal(size=(4, m)) + 0.05 * rng.normal(size=(400, m))
    y = Z[:, :10] @ rng.normal(size=10) + rng.normal(size=400)
    return Z.T @ Z, Z.T @ y, y @ y


def _violation(G, q, alpha, b):
    grad = G @ b - q
    out = np.maximum(np.abs(grad) - alpha, 0.0)
    nz = b != 0
    out[nz] = np.abs(grad[nz] + alpha * np.sign(b[nz]))
    return out.max()


def test_active_set_solution_is_coordinate_descents():
    G, q, yty = _lasso()
    alpha = 0.05 * np.abs(q).max()
    b = lasso_active_set(G, -q, alpha, np.zeros(q.size), 1e-10 * alpha)
    assert b is not None and _violation(G, q, alpha, b) <= 1e-10 * alpha
    cd = lasso_gram.lasso_gram(G, q, yty, alpha, np.zeros(q.size), 1e-14, 100000)
    assert 0 < np.count_nonzero(b) < b.size
    np.testing.assert_array_equal(b != 0, cd != 0)
    # the same minimiser; CD stops at a duality gap of 1e-14 * y^T y, i.e. ~1e-7 in b
    np.testing.assert_allclose(b, cd, rtol=0, atol=1e-6 * np.abs(b).max())


def test_a_start_within_the_tolerance_still_moves_to_its_orthants_minimiser():
    """So that the Newton step depends continuously on its inputs: whether the start happens to
    be within viol_tol (which rounding can decide either way) must not change the result."""
    G, q, _ = _lasso(seed=1)
    alpha = 0.05 * np.abs(q).max()
    exact = lasso_active_set(G, -q, alpha, np.zeros(q.size), 1e-12 * alpha)
    start = exact.copy()
    start[exact != 0] *= 1 + 1e-6
    loose = 0.5 * alpha                               # the start satisfies this tolerance
    assert _violation(G, q, alpha, start) <= loose
    got = lasso_active_set(G, G @ start - q, alpha, start, loose)
    np.testing.assert_allclose(got, exact, rtol=0, atol=1e-12 * np.abs(exact).max())


def test_many_coordinates_leave_the_support_in_few_factorisations(monkeypatch):
    """From the support of a much smaller alpha (~170 coordinates, ~4 to keep), the projected
    steps drop many at once: a fraction of a Cholesky factorisation per dropped coordinate (the
    segment steps alone drop them one at a time: one factorisation each)."""
    G, q, _ = _lasso(m=200, seed=3)
    small, large = 1e-4 * np.abs(q).max(), 0.005 * np.abs(q).max()     # 170 -> 4 non-zero
    start = lasso_active_set(G, -q, small, np.zeros(q.size), 1e-10 * small)
    calls = []
    factor = lasso_gram.cho_factor
    monkeypatch.setattr(lasso_gram, "cho_factor", lambda *a, **k: calls.append(1) or factor(*a, **k))
    b = lasso_active_set(G, G @ start - q, large, start, 1e-10 * large)
    dropped = np.count_nonzero(start) - np.count_nonzero(b)
    assert b is not None and _violation(G, q, large, b) <= 1e-10 * large
    assert dropped >= 100 and len(calls) <= dropped // 4      # measured: 34 for 166


def test_returns_none_for_the_fallback_when_the_gram_matrix_is_not_positive_definite():
    G, q, _ = _lasso(m=10, seed=3)
    G = G - 2 * np.abs(np.linalg.eigvalsh(G)).max() * np.eye(10)
    assert lasso_active_set(G, -q, 0.01 * np.abs(q).max(), np.zeros(10), 1e-8) is None
