"""The inner problem of a Newton step: a Lasso given by its Gram matrix.

``min_b 1/2 b^T G b - q^T b + alpha ||b||_1`` with ``G`` positive (semi-)definite and small (the
working set), solved exactly by an active-set (orthant) Newton method with Cholesky
factorisations (:func:`lasso_active_set`), with scikit-learn's Gram coordinate descent
(:func:`lasso_gram`) as fallback.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from scipy.linalg.blas import dtrmv
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import enet_path

__all__ = ["lasso_active_set", "lasso_gram"]


def lasso_gram(G, Zty, yty, alpha, coef_init, tol, max_iter):
    """min_b 1/2 ||y - Z b||^2 + alpha ||b||_1 given ``G = Z^T Z``, ``Zty = Z^T y``, ``yty``.

    Solved by scikit-learn's Gram coordinate descent (:func:`sklearn.linear_model.enet_path`
    with ``precompute=G``), which needs ``y`` only through ``y^T y`` (for the duality gap); it is
    handed the one-row stand-ins ``X = 0`` and ``y = [sqrt(yty)]``, an exact rotation of the
    problem. ``tol`` is scikit-learn's: the duality gap is driven below ``tol * yty``.
    """
    p = G.shape[0]
    with warnings.catch_warnings():
        # the outer loop certifies optimality; an inexact inner solve only costs an extra step
        warnings.simplefilter("ignore", ConvergenceWarning)
        _, coefs, _ = enet_path(
            np.zeros((1, p)), np.array([np.sqrt(yty)]), l1_ratio=1.0, alphas=[alpha],
            precompute=np.ascontiguousarray(G), Xy=np.ascontiguousarray(Zty), copy_X=False,
            coef_init=np.array(coef_init, dtype=np.float64), check_input=False, tol=tol,
            max_iter=max_iter,
        )
    return coefs[:, 0]


def lasso_active_set(G, grad0, alpha, b0, viol_tol, max_iter=200):
    """min_b 1/2 b^T G b - q^T b + alpha ||b||_1 by an active-set (orthant) Newton method.

    The problem is given by ``G`` and its gradient ``grad0 = G b0 - q`` at the starting point
    ``b0``. Each iteration fixes the signs of the current support (plus the worst violators of
    the optimality conditions, signed by their gradient), solves the smooth problem on that
    orthant exactly (Cholesky of ``G_SS``) for the step, and moves along the projection of that
    step on the orthant (coordinates that would change sign stop at zero, all at once), halving
    it until the exact change of the objective is an Armijo decrease; if no projected step
    decreases it, along the segment to the orthant's minimiser up to the exact minimiser of the
    (convex, piecewise quadratic) objective on it. Warm started from a nearly right support, as
    inside Gauss-Newton, it needs a handful of factorisations where coordinate descent on an
    ill-conditioned Gram matrix needs thousands of sweeps.

    Steps are solved for as increments (``G_SS d = -(grad_S + alpha s_S)``), so rounding scales
    with the steps, which vanish at the solution, not with the solution itself (a solve for ``b``
    would carry ``cond(G_SS) eps |b|`` of noise into every Newton step of the outer solver,
    however close it is to the optimum).

    Returns the solution (at least one orthant step from a non-empty start, so that the result
    depends continuously on ``G`` and ``grad0``), or ``None`` if ``G_SS`` is not positive
    definite or ``max_iter`` is reached before every optimality violation is ``<= viol_tol``
    (then the caller falls back to coordinate descent).
    """
    b = np.array(b0, dtype=np.float64)
    grad = np.array(grad0, dtype=np.float64)
    add_per_iter = max(8, b.size // 20)
    for iteration in range(max_iter):
        nz = b != 0
        sgn = np.sign(b)
        viol = np.maximum(np.abs(grad) - alpha, 0.0)
        viol[nz] = np.abs(grad[nz] + alpha * sgn[nz])
        if viol.max(initial=0.0) <= viol_tol and (iteration or not nz.any()):
            return b
        S = nz.copy()
        if np.max(viol[nz], initial=0.0) <= viol_tol or not nz.any():
            # the support is optimal on its orthant: enlarge it by the worst violators
            zero = np.flatnonzero(~nz & (viol > viol_tol))
            if zero.size > add_per_iter:
                zero = zero[np.argpartition(-viol[zero], add_per_iter - 1)[:add_per_iter]]
            S[zero] = True
            sgn[zero] = -np.sign(grad[zero])
        idx = np.flatnonzero(S)
        G_SS = G[np.ix_(idx, idx)]
        try:    # G_SS is symmetric: its transpose is F-ordered, factorised in place
            factor = cho_factor(G_SS.T.copy(), overwrite_a=True, check_finite=False)
        except LinAlgError:
            return None
        d = -cho_solve(factor, grad[idx] + alpha * sgn[idx], check_finite=False)
        if not np.all(np.isfinite(d)):
            return None
        new = _projected_step(G_SS, grad[idx], b[idx], sgn[idx], d, alpha)
        if new is None:
            Rd = dtrmv(factor[0], d, lower=int(factor[1]), trans=int(factor[1]))
            t = _segment_minimiser(float(Rd @ Rd), grad[idx], b[idx], d, alpha)  # d^T G_SS d
            new = b[idx] + t * d
            # a coordinate whose zero crossing is the minimiser lands exactly on zero
            with np.errstate(divide="ignore", invalid="ignore"):
                new[(b[idx] != 0) & np.isclose(-b[idx] / d, t, rtol=1e-12, atol=0.0)] = 0.0
        step = np.zeros_like(b)
        step[idx] = new - b[idx]
        b[idx] = new
        grad += G @ step
    return None


def _projected_step(G, grad, b, sgn, d, alpha, armijo=1e-4, max_halvings=40):
    """``b + t d`` projected on the orthant ``sgn`` for the largest ``t = 2**-k`` giving an Armijo
    decrease of the exact objective change (``b`` itself if the step is nil), or None."""
    t = 1.0
    for _ in range(max_halvings):
        new = b + t * d
        new[new * sgn < 0] = 0.0
        delta = new - b
        if not np.any(delta):
            return b
        linear = float(np.sum(grad * delta + alpha * (np.abs(new) - np.abs(b))))
        if linear < 0 and linear + 0.5 * float(delta @ (G @ delta)) <= armijo * linear:
            return new
        t *= 0.5
    return None


def _segment_minimiser(curv, grad, b, d, alpha):
    """Exact minimiser over ``t in [0, 1]`` of the Lasso objective along ``b + t d``.

    ``f(t) = t (grad . d) + t**2 / 2 curv + alpha sum_j |b_j + t d_j|`` (``curv = d^T G d``) is
    convex and piecewise quadratic; the kinks are where coordinates cross zero.
    """
    lin = float(grad @ d)
    # slope of the L1 term just after t = 0, and its increase at each crossing
    s0 = np.where(b != 0, np.sign(b), np.sign(d))
    slope = alpha * float(np.sum(s0 * d))
    with np.errstate(divide="ignore", invalid="ignore"):
        tk = np.where((b != 0) & (b * d < 0), -b / d, np.inf)
    order = np.argsort(tk)
    tk = tk[order]
    jumps = 2.0 * alpha * np.abs(d[order])
    start = 0.0
    for k in range(tk.size + 1):
        end = min(tk[k], 1.0) if k < tk.size else 1.0
        # derivative on (start, end): lin + curv t + slope
        if lin + curv * start + slope >= 0:
            return start
        root = -(lin + slope) / curv if curv > 0 else np.inf
        if root <= end:
            return root
        if end >= 1.0:
            return 1.0
        slope += jumps[k]
        start = end
    return 1.0
