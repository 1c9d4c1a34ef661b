"""FISTA with backtracking for the exp-linear L1 problem: a generic baseline, not the package's solver.

Used by the tests (an independent optimiser to compare the package's working-set Newton solver
with) and by ``benchmarks/bench_parallax_solver.py``; it lives outside the installed package
because nothing in the package calls it.
"""

import time

import numpy as np
from scipy.linalg import solve_triangular
from sklearn.utils import Bunch

from sklearn_selfcal._kernels.explinear_l1 import kkt_residual, matvec, rmatvec, safe_exp
from sklearn_selfcal._kernels.explinear_l1.solver import (_eta, _full_gradient,
                                                          _orthonormal_basis, _report,
                                                          _starting_point)


def solve_fista(X, pen_cols, U, datafit, penalty, *, coef_u=None, coef_p=None,
                tol=1e-4, max_iter=100000, max_time=np.inf, check_every=10, lipschitz0=None,
                shrink=1.0, callback=None):
    """Accelerated proximal gradient (Beck & Teboulle 2009) with backtracking.

    The unpenalised block is reparametrised by an orthonormal basis ``sqrt(n) Q`` of ``U`` (QR),
    which leaves the optimum and the predictions unchanged and lets a first-order method cope
    with the near-collinear magnitudes. With ``shrink=1`` the Lipschitz estimate only grows (plain
    backtracking); ``shrink < 1`` first tries ``shrink * L`` at every iteration, with the momentum
    sequence of Scheinberg, Goldfarb & Bai (2014) for varying steps. The sufficient-decrease test
    allows a relative slack of 1e-6 for float32 products. The
    relative KKT residual (:func:`kkt_residual`, original parametrisation) is checked every
    ``check_every`` iterations (one extra pass over ``X``).

    Parameters
    ----------
    X, pen_cols, U, datafit, penalty, coef_u, coef_p, tol, callback
        As in :func:`solve_gauss_newton`.
    max_iter : int
        Iteration limit.
    max_time : float
        Wall-time limit (s).
    check_every : int
        KKT check period.
    lipschitz0 : float, optional
        Initial Lipschitz estimate (default 1.0).
    shrink : float, default=1.0
        Factor applied to the Lipschitz estimate before each backtracking (1: never decreases).

    Returns
    -------
    result : sklearn.utils.Bunch
        As :func:`solve_gauss_newton` (``n_newton`` is 0).
    """
    t0 = time.perf_counter()
    n = X.shape[0]
    pen_cols, coef_u, coef_p = _starting_point(pen_cols, U, penalty, coef_u, coef_p)
    p, k = len(pen_cols), U.shape[1]

    Q, R, kept = _orthonormal_basis(U)
    Ut = Q * np.sqrt(n)
    fixed = np.setdiff1d(np.arange(k), kept)
    offset = U[:, fixed] @ coef_u[fixed] if fixed.size else np.zeros(n)
    beta = (R @ coef_u[kept]) / np.sqrt(n) if kept.size else np.zeros(0)

    def to_u(beta_):
        out = coef_u.copy()
        if kept.size:
            out[kept] = solve_triangular(R, beta_ * np.sqrt(n), check_finite=False)
        return out

    def eta_of(beta_, b_):
        return Ut @ beta_ + offset + _eta(X, pen_cols, np.zeros((n, 0)), np.zeros(0), b_)

    x_beta, x_b = beta.copy(), coef_p.copy()
    y_beta, y_b = beta.copy(), coef_p.copy()
    eta_x = eta_of(x_beta, x_b)
    eta_y = eta_x.copy()
    L = 1.0 if lipschitz0 is None else float(lipschitz0)
    t = 1.0
    history, converged, kkt, it = [], False, np.inf, 0
    for it in range(1, max_iter + 1):
        mu = safe_exp(eta_y)
        v = datafit.raw_grad(eta_y, mu)
        f_y = datafit.value(eta_y, mu)
        g_beta = Ut.T @ v
        g_b = rmatvec(X, v)[pen_cols] if p else np.zeros(0)
        L_prev = L
        L *= shrink
        while True:
            n_beta = y_beta - g_beta / L
            n_b = penalty.prox(y_b - g_b / L, 1.0 / L)
            d_beta, d_b = n_beta - y_beta, n_b - y_b
            changed = np.flatnonzero(d_b)
            eta_n = eta_y + Ut @ d_beta
            if changed.size:
                eta_n += matvec(X, pen_cols[changed], d_b[changed])
            f_n = datafit.value(eta_n)
            quad = f_y + g_beta @ d_beta + g_b @ d_b + 0.5 * L * (d_beta @ d_beta + d_b @ d_b)
            if f_n <= quad + 1e-6 * abs(f_y) or L > 1e300:
                break
            L *= 2.0
        t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t * L / L_prev))
        mom = (t - 1.0) / t_next
        y_beta = n_beta + mom * (n_beta - x_beta)
        y_b = n_b + mom * (n_b - x_b)
        eta_y = eta_n + mom * (eta_n - eta_x)
        x_beta, x_b, eta_x, t = n_beta, n_b, eta_n, t_next

        timed_out = time.perf_counter() - t0 > max_time
        if it % check_every == 0 or timed_out or it == max_iter:
            mu = safe_exp(eta_x)
            g_u, g_p = _full_gradient(X, pen_cols, U, datafit.raw_grad(eta_x, mu))
            kkt = kkt_residual(g_u, x_b, g_p, penalty)
            objective = datafit.value(eta_x, mu) + penalty.value(x_b)
            _report(history, callback, it, objective, kkt, x_b, 0, t0)
            if kkt <= tol:
                converged = True
                break
            if timed_out:
                break
    eta_x = eta_of(x_beta, x_b)
    objective = datafit.value(eta_x) + penalty.value(x_b)
    return Bunch(coef_u=to_u(x_beta), coef_p=x_b, objective=objective, kkt=kkt,
                 converged=converged, n_iter=it, n_newton=0, history=history, lipschitz=L)
