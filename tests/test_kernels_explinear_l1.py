"""Tests of the exp-linear L1 solver of the parallax model (sklearn_selfcal._kernels.explinear_l1)
against an independent optimiser, FISTA and its own variants."""

import numpy as np
import pytest
from scipy.optimize import minimize

from sklearn_selfcal._kernels.explinear_l1 import (ExpLinearChi2, RowSubset, WeightedL1,
                                                   alpha_max, kkt_residual, matvec, rmatvec,
                                                   solve_gauss_newton)

from _fista import solve_fista  # tests/_fista.py: the generic baseline, outside the package
from _helpers import explinear_pieces as _pieces
from _helpers import toy_parallax_problem as _toy_problem
from _helpers import unit_l1 as _l1


def test_solver_reaches_the_optimum_found_by_an_independent_method():
    X, y, sigma, _, _ = _toy_problem()
    pen, U, datafit = _pieces(X, y, sigma)
    alpha = 0.02 * alpha_max(X, pen, U, datafit,
                             solve_gauss_newton(X, pen[:0], U, datafit, _l1(0.0, pen[:0]),
                                                tol=1e-12).coef_u)
    res = solve_gauss_newton(X, pen, U, datafit, _l1(alpha, pen), tol=1e-9)
    assert res.converged and res.kkt <= 1e-9
    assert 0 < np.count_nonzero(res.coef_p) < len(pen)      # exact zeros, and not all of them

    # smooth bound-constrained reformulation theta = u - v, u, v >= 0, solved by L-BFGS-B
    k, p = U.shape[1], len(pen)

    def fun(z):
        a, b = z[:k], z[k:k + p] - z[k + p:]
        eta = U @ a + X[:, pen] @ b
        v = datafit.raw_grad(eta)
        g_b = X[:, pen].T @ v
        return (datafit.value(eta) + alpha * z[k:].sum(),
                np.concatenate([U.T @ v, g_b + alpha, -g_b + alpha]))

    z0 = np.concatenate([res.coef_u * 0.9, np.zeros(2 * p)])
    ref = minimize(fun, z0, jac=True, method="L-BFGS-B",
                   bounds=[(None, None)] * k + [(0, None)] * (2 * p),
                   options={"maxiter": 20000, "ftol": 1e-15, "gtol": 1e-12})
    # the working-set Gauss-Newton optimum is at least as good as the reference
    assert res.objective <= ref.fun + 1e-12 * abs(ref.fun)
    assert res.objective == pytest.approx(ref.fun, rel=1e-7)


def test_kkt_residual_detects_a_perturbed_solution():
    X, y, sigma, _, _ = _toy_problem(seed=1)
    pen, U, datafit = _pieces(X, y, sigma)
    res = solve_gauss_newton(X, pen, U, datafit, _l1(1e-3, pen), tol=1e-8)
    assert res.converged
    penalty = WeightedL1(1e-3, np.ones(len(pen)))

    def kkt(coef_u, coef_p):
        eta = U @ coef_u + matvec(X, pen, coef_p)
        v = datafit.raw_grad(eta)
        return kkt_residual(U.T @ v, coef_p, rmatvec(X, v)[pen], penalty)

    assert kkt(res.coef_u, res.coef_p) <= 1e-8
    j = np.flatnonzero(res.coef_p == 0)[0]
    moved = res.coef_p.copy()
    moved[j] = 1e-4           # leaving a zero coefficient violates the optimality conditions
    assert kkt(res.coef_u, moved) > 1e-3


def test_fista_and_gauss_newton_agree_and_alpha_max_zeroes_everything():
    X, y, sigma, _, _ = _toy_problem(n=300, p=20, seed=2)
    pen, U, datafit = _pieces(X, y, sigma)
    warm = solve_gauss_newton(X, pen[:0], U, datafit, _l1(0.0, pen[:0]), tol=1e-12)
    amax = alpha_max(X, pen, U, datafit, warm.coef_u)
    above = solve_gauss_newton(X, pen, U, datafit, _l1(amax * 1.0001, pen), coef_u=warm.coef_u,
                               tol=1e-8)
    assert np.all(above.coef_p == 0)
    below = solve_gauss_newton(X, pen, U, datafit, _l1(amax * 0.9, pen), coef_u=warm.coef_u, tol=1e-8)
    assert np.count_nonzero(below.coef_p) >= 1
    alpha = 0.2 * amax
    gn = solve_gauss_newton(X, pen, U, datafit, _l1(alpha, pen), coef_u=warm.coef_u, tol=1e-8)
    fista = solve_fista(X, pen, U, datafit, _l1(alpha, pen), coef_u=warm.coef_u, tol=1e-5,
                        max_iter=200000, shrink=0.8)
    assert fista.converged
    assert gn.objective <= fista.objective * (1 + 1e-12)
    assert fista.objective == pytest.approx(gn.objective, rel=1e-6)


@pytest.mark.parametrize("variant", ["fisher", "coordinate_descent"])
def test_solver_variants_reach_the_same_optimum(variant, monkeypatch):
    X, y, sigma, _, _ = _toy_problem(seed=3)
    pen, U, datafit = _pieces(X, y, sigma)
    ref = solve_gauss_newton(X, pen, U, datafit, _l1(1e-3, pen), tol=1e-8)
    if variant == "coordinate_descent":
        # the inner Lasso's fallback: scikit-learn's Gram coordinate descent
        from sklearn_selfcal._kernels.explinear_l1 import solver
        monkeypatch.setattr(solver, "lasso_active_set", lambda *args, **kw: None)
        res = solve_gauss_newton(X, pen, U, datafit, _l1(1e-3, pen), tol=1e-6)
    else:
        res = solve_gauss_newton(X, pen, U, datafit, _l1(1e-3, pen), tol=1e-8, curvature="fisher")
    assert res.converged
    assert res.objective == pytest.approx(ref.objective, rel=1e-9)
    np.testing.assert_array_equal(res.coef_p != 0, ref.coef_p != 0)


def test_float32_data_and_row_subsets_give_the_float64_solution():
    X, y, sigma, _, _ = _toy_problem(seed=4)
    pen, U, datafit = _pieces(X, y, sigma)
    r64 = solve_gauss_newton(X, pen, U, datafit, _l1(1e-3, pen), tol=1e-8)
    X32 = X.astype(np.float32)
    U32 = np.column_stack([np.ones(len(y)), X32[:, -2:].astype(np.float64)])
    r32 = solve_gauss_newton(X32, pen, U32, datafit, _l1(1e-3, pen), tol=1e-8)
    assert r32.converged      # float32 storage, float64 arithmetic: KKT still certifiable
    assert r32.objective == pytest.approx(r64.objective, rel=1e-5)
    rows = np.arange(0, len(y), 2)
    sub = ExpLinearChi2(datafit.y[rows], 1.0 / (sigma[rows] ** 2 * rows.size))
    a = solve_gauss_newton(RowSubset(X, rows), pen, U[rows], sub, _l1(1e-3, pen), tol=1e-8)
    b = solve_gauss_newton(X[rows], pen, U[rows], sub, _l1(1e-3, pen), tol=1e-8)
    np.testing.assert_allclose(a.coef_p, b.coef_p, rtol=1e-8, atol=1e-12)
