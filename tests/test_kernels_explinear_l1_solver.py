"""Tests of the exp-linear L1 solver of the parallax model (sklearn_selfcal._kernels.explinear_l1
.solver, with .path and .penalties) against an independent optimiser, FISTA and its own variants;
its iterations, support and objective whatever the number of BLAS threads and the BLAS kernel."""

import json
import os
from pathlib import Path
import platform
import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import minimize
from threadpoolctl import threadpool_info, threadpool_limits

from sklearn_selfcal._kernels.explinear_l1 import ExpLinearChi2, RowSubset, matvec, rmatvec
from sklearn_selfcal._kernels.explinear_l1.operators import block_plan
from sklearn_selfcal._kernels.explinear_l1.path import explinear_l1_path
from sklearn_selfcal._kernels.explinear_l1.penalties import WeightedL1, kkt_residual
from sklearn_selfcal._kernels.explinear_l1.solver import alpha_max, solve_gauss_newton

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


# --------------------------------------------------------------------------------------------
# results that do not depend on the machine
# --------------------------------------------------------------------------------------------
def _negative_parallax_case(seed=7):
    """The estimator test's hard case at the kernel level (its data: seed 7): 40 negative
    parallaxes, features x 30 (steep exponent, magnitudes ~400 whose terms cancel in the
    predictor), tol 1e-6, within a factor ~10 of the noise of its KKT residual."""
    X, y, sigma, _, _ = _toy_problem(seed=seed)
    y = y.copy()
    y[:40] = -np.abs(y[:40])
    pen, U, datafit = _pieces(X * 30.0, y, sigma)
    start = np.r_[np.log(np.average(datafit.y, weights=datafit.weights)), 0.0, 0.0]
    return X * 30.0, pen, U, datafit, [1e-3], start, 1e-6


# tol 1e-6: the rounding noise of these problems' KKT residuals is ~1e-9..1e-8 (the residual
# of the same iterate under two BLAS kernels), so at tol 1e-8 a decision can fall either way
# (measured: 3 of 30 such paths); the solver keeps its own residuals away from tol (polish), but
# cannot make a value that noise places at tol be on one side of it
def _ordinary_case():
    X, y, sigma, _, _ = _toy_problem(n=600, p=120, seed=3)
    pen, U, datafit = _pieces(X, y, sigma)
    return X, pen, U, datafit, [3e-4], None, 1e-6


def _path_case():
    X, y, sigma, _, _ = _toy_problem(n=500, p=60, seed=5)
    pen, U, datafit = _pieces(X, y, sigma)
    return X, pen, U, datafit, np.geomspace(2e-2, 2e-4, 4), None, 1e-6


CASES = {"negative parallaxes": _negative_parallax_case, "ordinary": _ordinary_case,
         "path": _path_case, **{f"negative parallaxes, data {seed}": (
             lambda seed=seed: _negative_parallax_case(seed)) for seed in (0, 10, 21)}}


def _solve(name):
    X, pen, U, datafit, alphas, start, tol = CASES[name]()
    return explinear_l1_path(X, pen, U, datafit, alphas, coef_u=start, tol=tol).results


def _summary(results):
    return [dict(n_iter=r.n_iter, converged=r.converged, objective=r.objective,
                 support=np.flatnonzero(r.coef_p).tolist()) for r in results]


@pytest.mark.parametrize("name", CASES)
def test_iterates_are_the_same_bits_for_any_number_of_blas_threads(name):
    with threadpool_limits(1):
        one = _solve(name)
    with threadpool_limits(2):
        two = _solve(name)
    with block_plan(workers=3):          # three workers even on a machine with fewer CPUs
        three = _solve(name)
    for a, b, c in zip(one, two, three):
        assert a.converged
        # the block plan's reductions do not depend on the workers: the same bits, not just close
        assert a.n_iter == b.n_iter == c.n_iter and a.n_newton == b.n_newton == c.n_newton
        for r in (b, c):
            np.testing.assert_array_equal(r.coef_p, a.coef_p)
            np.testing.assert_array_equal(r.coef_u, a.coef_u)
            assert r.objective == a.objective


def _coretypes():
    """Two OpenBLAS kernels this CPU runs (SSE3 always; AVX2 or AVX-512 if present), or None."""
    if platform.machine() not in ("x86_64", "AMD64") or not Path("/proc/cpuinfo").exists():
        return None
    if not any(lib["internal_api"] == "openblas" for lib in threadpool_info()):
        return None
    flags = set(Path("/proc/cpuinfo").read_text().split())
    fast = "SkylakeX" if "avx512f" in flags else "Haswell" if "avx2" in flags else None
    return ("Prescott", fast) if fast else None


_CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
import test_kernels_explinear_l1_solver as t
print(json.dumps({{name: t._summary(t._solve(name)) for name in t.CASES}}))
"""


@pytest.mark.skipif(_coretypes() is None, reason="needs OpenBLAS on an x86-64 Linux CPU")
def test_iterations_support_and_objective_are_the_same_with_other_blas_kernels():
    """Solves under two OpenBLAS kernels (OPENBLAS_CORETYPE, in subprocesses) and this process's.

    Other kernels sum in other orders, so the bits differ; what must not differ is every
    decision: the number of iterations, convergence, the support. The objectives agree to 1e-12
    relative: the iterates differ by ~1e-13 relative (rounding of the last Newton steps), which
    changes an objective at its optimum only to second order.
    """
    runs = {"this process": {name: _summary(_solve(name)) for name in CASES}}
    for coretype in _coretypes():
        env = dict(os.environ, OPENBLAS_CORETYPE=coretype)
        out = subprocess.run([sys.executable, "-c", _CHILD.format(tests=str(Path(__file__).parent))],
                             env=env, capture_output=True, text=True, check=True)
        runs[coretype] = json.loads(out.stdout.strip().splitlines()[-1])
    reference = runs.pop("this process")
    for coretype, run in runs.items():
        for name in CASES:
            for got, want in zip(run[name], reference[name]):
                assert (got["n_iter"], got["converged"]) == (want["n_iter"], want["converged"]), (
                    coretype, name)
                assert got["support"] == want["support"], (coretype, name)
                assert got["objective"] == pytest.approx(want["objective"], rel=1e-12)
