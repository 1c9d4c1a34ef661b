"""The working-set Gauss-Newton solver of the L1-penalised exponential-linear chi-squared."""

from __future__ import annotations

import time

import numpy as np
from scipy.linalg import qr, solve_triangular
from sklearn.utils import Bunch

from .datafits import safe_exp
from .lasso_gram import lasso_active_set, lasso_gram
from .operators import block_plan, matvec, projected_gram, rmatvec, working_set_columns
from .penalties import WeightedL1, kkt_residual

__all__ = ["solve_gauss_newton", "alpha_max"]


def _starting_point(pen_cols, U, penalty, coef_u, coef_p):
    """Penalised column indices and float64 copies of the starting coefficients."""
    pen_cols = np.asarray(pen_cols, dtype=np.intp)
    if penalty.weights.shape != (len(pen_cols),):
        raise ValueError(f"the penalty has {penalty.weights.size} weights for {len(pen_cols)} "
                         "penalised columns")
    coef_u = np.zeros(U.shape[1]) if coef_u is None else np.array(coef_u, dtype=np.float64)
    coef_p = np.zeros(len(pen_cols)) if coef_p is None else np.array(coef_p, dtype=np.float64)
    return pen_cols, coef_u, coef_p


def _eta(X, pen_cols, U, coef_u, coef_p):
    """Linear predictor ``U coef_u + X[:, pen_cols] coef_p``."""
    eta = U @ coef_u if U.shape[1] else np.zeros(X.shape[0])
    nz = np.flatnonzero(coef_p)
    if nz.size:
        eta += matvec(X, pen_cols[nz], coef_p[nz])
    return eta


def _full_gradient(X, pen_cols, U, v):
    """Gradient of the datafit with respect to ``(a, b)`` given ``v = d datafit / d eta``."""
    return U.T @ v, (rmatvec(X, v)[pen_cols] if len(pen_cols) else np.zeros(0))


def alpha_max(X, pen_cols, U, datafit, coef_u, pen_weights=None):
    """Smallest ``alpha`` at which all penalised coefficients are zero.

    Parameters
    ----------
    X, pen_cols, U, datafit
        As in :func:`solve_gauss_newton`.
    coef_u : ndarray of shape (n_unpenalized,)
        The unpenalised optimum with ``b = 0`` (e.g. ``solve_gauss_newton`` with no penalised
        columns).
    pen_weights : ndarray, optional
        Penalty weights (ones by default).

    Returns
    -------
    alpha_max : float
        ``max_j |grad_j| / w_j`` over the penalised columns at that point.
    """
    if not len(pen_cols):
        return 0.0
    g_p = _full_gradient(X, pen_cols, U, datafit.raw_grad(U @ coef_u))[1]
    w = np.ones(len(pen_cols)) if pen_weights is None else np.asarray(pen_weights, float)
    return float(np.max(np.abs(g_p) / w))


def _orthonormal_basis(A):
    """Pivoted economic QR of ``A``; returns ``Q, R, kept`` restricted to its numerical rank."""
    if A.shape[1] == 0:
        return A[:, :0], np.zeros((0, 0)), np.zeros(0, dtype=int)
    Q, R, piv = qr(A, mode="economic", pivoting=True, check_finite=False)
    diag = np.abs(np.diag(R))
    rank = int(np.sum(diag > diag[0] * max(A.shape) * np.finfo(float).eps)) if diag[0] > 0 else 0
    return Q[:, :rank], R[:rank, :rank], piv[:rank]


def _stored_step(Xws, U, coef_u, coef_p, ws, u, new_p):
    """Change of the linear predictor from the stored ``(coef_u, coef_p[ws])`` to ``(u, new_p)``."""
    d_p = new_p - coef_p[ws]
    changed = np.flatnonzero(d_p)
    Xd = U @ (u - coef_u) if U.shape[1] else np.zeros(U.shape[0])
    if changed.size:
        Xd += matvec(Xws, changed, d_p[changed])
    return Xd


def _line_search(datafit, eta, mu, Xd, g_u, u_old, d_u, g_b, b_old, d_b, alpha, delta,
                 armijo=1e-4, max_halvings=50):
    """Backtracking (Armijo) on the true objective along a Newton direction; the accepted step.

    ``delta < 0`` is the model's predicted decrease and ``Xd`` the change of the linear predictor
    at step 1. A trial's change is its linear part, summed per coefficient with the penalty's
    change over the coefficients actually reached (the two nearly cancel on the support), plus
    the datafit's remainder (:meth:`ExpLinearChi2.remainder`): each accurate to its own size,
    so decreases far below the rounding of the objective's value are certified (a difference of
    values could not: the solver used to stop short of ``tol`` there). 0.0 if none decreases.
    """
    step = 1.0
    for _ in range(max_halvings):
        b = b_old + step * d_b
        u = u_old + step * d_u
        linear = float(g_u @ (u - u_old)) + float(np.sum(
            g_b * (b - b_old) + alpha * (np.abs(b) - np.abs(b_old))))
        if linear + datafit.remainder(eta, step * Xd, mu) <= armijo * step * delta:
            return step
        step *= 0.5
    return 0.0


def solve_gauss_newton(X, pen_cols, U, datafit, penalty, *, coef_u=None, coef_p=None, tol=1e-4,
                       max_iter=100, max_newton=25, ws_start=64, inner_max_iter=20000,
                       curvature="hessian", callback=None):
    """Minimise the L1-penalised exponential-linear chi-squared by working-set Newton steps.

    Outer iterations compute the full gradient (one pass over ``X``) and the relative KKT
    residual (:func:`kkt_residual`); they stop when it is ``<= tol``.
    Otherwise a working set is formed from the non-zero penalised coefficients plus the worst
    violators (at least ``ws_start``, at least twice the support), its columns gathered, and the
    problem restricted to it is solved to a KKT
    residual of ``0.3 * outer residual`` (``0.1 * tol`` once the working set stops changing or
    the outer residual is within a factor 10 of ``tol``) by Newton-type (IRLS) steps:

    1. curvature ``h`` with respect to the linear predictor (:meth:`ExpLinearChi2.curvature`:
       the clipped exact Hessian by default, or the Gauss-Newton / Fisher ``c mu**2``) and the
       working response ``z = eta - grad / h``;
    2. the row-weighted unpenalised block ``sqrt(h) U`` is orthonormalised (pivoted QR) and
       projected out of the row-weighted working-set columns and response, which eliminates the
       unpenalised coefficients exactly and removes the near-collinearity of the magnitudes; the
       projected working-set columns only enter through their Gram matrix (one BLAS-3 pass);
    3. the resulting Lasso is solved exactly by an active-set Newton method warm started at the
       current coefficients (coordinate descent if that fails); the unpenalised coefficients
       follow by back substitution;
    4. a backtracking (Armijo) line search on the true objective accepts a step along the
       direction, so the objective decreases monotonically (:func:`_line_search` computes the
       changes without cancellation, so it certifies decreases far below the objective's
       rounding level).

    Every pass over ``X`` runs on the block plan of :mod:`.operators`: the iterates, the number
    of iterations and the result are bitwise the same for any number of BLAS threads.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Big matrix holding the penalised columns (float32 or float64, any memory order, a
        memmap, a :class:`RowSubset` or a :class:`RowBlockOperator`; read only).
    pen_cols : ndarray of int of shape (n_penalized,)
        Columns of ``X`` that are penalised (the only columns of ``X`` used).
    U : ndarray of shape (n_samples, n_unpenalized)
        Unpenalised design (float64), e.g. ``[1, magnitudes, LSF moments]``.
    datafit : ExpLinearChi2
        The datafit.
    penalty : WeightedL1
        Penalty on the columns ``pen_cols`` (one weight per penalised column).
    coef_u, coef_p : ndarray, optional
        Starting point (warm start); zeros by default.
    tol : float, default=1e-4
        Target relative KKT residual.
    max_iter : int, default=100
        Maximum number of outer (working-set) iterations.
    max_newton : int, default=25
        Maximum Newton steps per working set.
    ws_start : int, default=64
        Smallest working set.
    inner_max_iter : int, default=20000
        Epoch limit of the fallback coordinate descent.
    curvature : {"hessian", "fisher"}, default="hessian"
        Curvature of the quadratic models (see :meth:`ExpLinearChi2.curvature`).
    callback : callable, optional
        Called at the start and after each outer iteration with a dict (iteration, objective,
        kkt, n_active, n_newton (cumulative), time (s)).

    Returns
    -------
    result : sklearn.utils.Bunch
        ``coef_u``, ``coef_p``, ``objective``, ``kkt`` (relative residual at the returned
        point), ``converged``, ``n_iter`` (outer), ``n_newton`` (total Newton steps),
        ``history`` (list of the callback dicts).
    """
    t0 = time.perf_counter()
    pen_cols, coef_u, coef_p = _starting_point(pen_cols, U, penalty, coef_u, coef_p)
    p = len(pen_cols)
    scale = penalty.alpha if penalty.alpha > 0 else 1.0

    history, total_newton, converged, progressed, same = [], 0, False, True, False
    it, previous, last_kkt = 0, None, np.inf
    with block_plan():
        eta = _eta(X, pen_cols, U, coef_u, coef_p)
        while True:
            # gradient (one pass over X), optimality check and progress report
            mu = safe_exp(eta)
            g_u, g_p = _full_gradient(X, pen_cols, U, datafit.raw_grad(eta, mu))
            kkt = kkt_residual(g_u, coef_p, g_p, penalty)
            objective = datafit.value(eta, mu) + penalty.value(coef_p)
            _report(history, callback, it, objective, kkt, coef_p, total_newton, t0)
            converged = kkt <= tol
            # no decrease possible at this precision, or an unchanged working set no longer
            # halves the residual: report and stop
            stalled = not progressed or (same and kkt > 0.5 * last_kkt)
            if converged or stalled or it == max_iter:
                break
            it += 1
            last_kkt = kkt

            # working set: the support plus the worst violators
            viol = penalty.violation(coef_p, g_p) if p else np.zeros(0)
            active = np.flatnonzero(coef_p)
            size = min(p, max(ws_start, 2 * active.size))
            candidates = np.flatnonzero((coef_p == 0) & (viol > 0))
            n_add = max(0, size - active.size)
            if candidates.size > n_add:
                worst = np.argpartition(-viol[candidates], n_add - 1)[:n_add] if n_add else []
                candidates = candidates[worst]
            ws = np.sort(np.concatenate([active, candidates]))
            same = previous is not None and np.array_equal(previous[0], pen_cols[ws])
            Xws = previous[1] if same else working_set_columns(X, pen_cols[ws])
            previous = (pen_cols[ws], Xws)

            n_newton, progressed = _newton_on_working_set(
                Xws, U, datafit, penalty, coef_u, coef_p, eta, ws,
                target=_inner_target(kkt, tol, same) * scale, polish=0.1 * tol * scale,
                max_newton=max_newton,
                inner_max_iter=inner_max_iter, curvature=curvature,
            )
            total_newton += n_newton
            # fresh predictor (the support is in the working set: no pass over X); the one moved
            # along the steps carries their rounding, that of large early steps included
            nz = np.flatnonzero(coef_p[ws])
            eta = U @ coef_u + matvec(Xws, nz, coef_p[ws[nz]])

    return Bunch(coef_u=coef_u, coef_p=coef_p, objective=objective, kkt=kkt,
                 converged=bool(converged), n_iter=it, n_newton=total_newton, history=history)


def _inner_target(kkt, tol, same):
    """Relative KKT residual to which a working set is solved, given the outer one.

    While the working set grows, ``0.3 kkt`` (a working set that will change needs no
    precision). Once it is the same as the previous one (the outer pass found no new violator)
    or the outer residual is within a factor 10 of ``tol``, ``0.1 tol``: another outer pass over
    ``X`` would bring nothing the working set does not already have, and the outer residual that
    follows is either well below ``tol`` or a violation outside the working set, never a value
    near ``tol`` that rounding in the last steps could place on either side (which would make the
    number of iterations depend on the summation order of the BLAS).
    """
    return 0.1 * tol if same or kkt <= 10.0 * tol else 0.3 * kkt


def _report(history, callback, it, objective, kkt, coef_p, n_newton, t0):
    info = dict(iteration=it, objective=objective, kkt=kkt, n_active=int(np.count_nonzero(coef_p)),
                n_newton=int(n_newton), time=time.perf_counter() - t0)
    history.append(info)
    if callback is not None:
        callback(info)


def _newton_on_working_set(Xws, U, datafit, penalty, coef_u, coef_p, eta, ws, *, target,
                           polish, max_newton, inner_max_iter, curvature, skip_first_check=True):
    """Newton-type steps on the working set ``ws``; update ``coef_u``, ``coef_p``, ``eta`` in place.

    ``Xws`` holds the working-set columns (:func:`working_set_columns`); each step streams
    through it to form the Gram matrix of the row-weighted, projected columns in float64, and
    the Lasso is solved on the Gram matrix. Stops at a KKT residual ``<= target`` that is not
    within a factor 10 of ``tol`` (``polish = 0.1 tol``): one there goes on to ``polish``.
    Returns the number of steps taken and whether the last one made progress.
    """
    n, k = U.shape
    inv_w = 1.0 / penalty.weights[ws]
    sub_penalty = WeightedL1(penalty.alpha, np.ones(ws.size))
    best, stagnant = np.inf, 0
    for step_no in range(1, max_newton + 1):
        mu = safe_exp(eta)
        v = datafit.raw_grad(eta, mu)                     # d datafit / d eta
        s = np.sqrt(datafit.curvature(eta, mu, kind=curvature))
        # gradient = X^T (s * rt); stars with zero weight (or an underflowed mu) have s = 0 = v
        rt = np.divide(v, s, out=np.zeros_like(v), where=s > 0)
        A = U * s[:, None]
        g_u = U.T @ v
        b_old = coef_p[ws] / inv_w                        # b' = w b: unit-weight Lasso coordinates
        if step_no > 1 or not skip_first_check:
            g_ws = rmatvec(Xws, v) * inv_w
            worst = max(np.max(np.abs(g_u), initial=0.0),
                        np.max(sub_penalty.violation(b_old, g_ws), initial=0.0))
            if worst <= target and (worst <= polish or worst > 100.0 * polish):
                return step_no - 1, True
            # three steps in a row that do not halve the residual: rounding, not the model, limits
            # it (e.g. a target below the noise of the gradient); the outer loop decides
            stagnant = stagnant + 1 if worst > 0.5 * best else 0
            best = min(best, worst)
            if stagnant == 3:
                return step_no - 1, True

        # Gram matrix of the row-weighted columns, their products with the working response and
        # with the orthonormal basis of the row-weighted unpenalised block (one pass)
        Q, R, kept = _orthonormal_basis(A)
        bz = s * eta - rt                                 # sqrt(h) * working response
        fixed = np.setdiff1d(np.arange(k), kept)
        if fixed.size:                                    # collinear columns keep their values
            bz = bz - A[:, fixed] @ coef_u[fixed]
        qb = Q.T @ bz
        G, zb, g_ws, C = projected_gram(Xws, s, inv_w, bz, rt, Q)
        # project out span(sqrt(h) U):  Z' = Z - Q C, z' = z - Q qb; the reduced model's
        # gradient at b_old, g_ws - C^T Q^T rt, is computed directly (not as G b_old - z')
        G -= C.T @ C
        qrt = Q.T @ rt
        if ws.size:
            b_new = lasso_active_set(G, g_ws - C.T @ qrt, penalty.alpha, b_old, 0.1 * target)
            if b_new is None:
                # fall back on coordinate descent; duality-gap target giving a coordinate
                # residual ~0.3 * target (gap >= r^2 / 2L)
                zb -= C.T @ qb
                res_sq = max(float(bz @ bz - qb @ qb), 0.0)
                gap = (0.3 * target) ** 2 / (2.0 * max(float(np.max(np.diag(G))), 1e-300))
                tol_cd = min(1e-4, max(gap / max(res_sq, 1e-300), 1e-15))
                b_new = lasso_gram(G, zb, res_sq, penalty.alpha, b_old, tol_cd, inner_max_iter)
        else:
            b_new = b_old
        # the unpenalised block follows by back substitution, as an increment too
        d_b = b_new - b_old
        d_u = np.zeros(k)
        if kept.size:
            d_u[kept] = -solve_triangular(R, qrt + C @ d_b, check_finite=False)

        # predicted decrease, summed per coordinate: on the support g_j and alpha sign(b_j) nearly
        # cancel, and summing the two totals separately would lose the difference to rounding
        delta = float(g_u @ d_u) + float(np.sum(
            g_ws * d_b + penalty.alpha * (np.abs(b_new) - np.abs(b_old))))
        if delta >= 0:
            return step_no, False
        # line search on the true objective; eta then follows the coefficients as stored (their
        # changes are exact differences: an eta moved along the unrounded steps would drift from
        # them by ~|U| ulp(coef_u) per step)
        Xd = _stored_step(Xws, U, coef_u, coef_p, ws, coef_u + d_u, b_new * inv_w)
        t = _line_search(datafit, eta, mu, Xd, g_u, coef_u, d_u, g_ws, b_old, d_b,
                         penalty.alpha, delta)
        if t == 0.0:
            return step_no, False
        u, new_p = coef_u + t * d_u, (b_old + t * d_b) * inv_w
        eta += Xd if t == 1.0 else _stored_step(Xws, U, coef_u, coef_p, ws, u, new_p)
        coef_u[:] = u
        coef_p[ws] = new_p
    return max_newton, True
