"""The solutions along a grid of penalty strengths, each warm started from the previous one."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from .penalties import WeightedL1
from .solver import solve_gauss_newton

__all__ = ["explinear_l1_path"]


def explinear_l1_path(X, pen_cols, U, datafit, alphas, *, pen_weights=None, coef_u=None,
                      coef_p=None, tol=1e-4, max_iter=100, callback=None):
    """Solutions of the L1-penalised exponential-linear chi-squared along a grid of ``alpha``.

    As :func:`sklearn.linear_model.enet_path` for the Elastic Net: the grid is walked from the
    largest ``alpha`` down, every solve (:func:`solve_gauss_newton`) warm started from the previous
    solution. Without a penalised starting point (``coef_p`` None) the unpenalised block is first
    fitted alone with every penalised coefficient at zero (to a KKT residual ``tol / 10`` in units
    of the first ``alpha``), which is the exact solution at and above :func:`alpha_max`. A single
    fit is the one-point path ``alphas=[alpha]``.

    Parameters
    ----------
    X, pen_cols, U, datafit
        As in :func:`solve_gauss_newton`.
    alphas : array-like of float
        Penalty strengths (>= 0); solved in decreasing order.
    pen_weights : ndarray of shape (n_penalized,), optional
        Positive penalty weights (ones by default); the penalty at each ``alpha`` is
        ``WeightedL1(alpha, pen_weights)``.
    coef_u, coef_p : ndarray, optional
        Starting point. ``coef_u`` defaults to zeros.
    tol, max_iter
        Of every solve (relative KKT residual, outer iterations).
    callback : callable, optional
        Called as in :func:`solve_gauss_newton`, with the dict's extra keys ``alpha`` and
        ``alpha_index``.

    Returns
    -------
    path : sklearn.utils.Bunch
        ``alphas`` (decreasing), ``coefs_u`` of shape (n_alphas, n_unpenalized), ``coefs_p`` of
        shape (n_alphas, n_penalized) and ``results`` (one :func:`solve_gauss_newton` result per
        alpha, with ``converged``, ``kkt``, ``n_iter``, ``objective``).
    """
    alphas = np.sort(np.asarray(alphas, dtype=np.float64).ravel())[::-1]
    pen_cols = np.asarray(pen_cols, dtype=np.intp)
    w = (np.ones(len(pen_cols)) if pen_weights is None
         else np.asarray(pen_weights, dtype=np.float64))
    coef_u = np.zeros(U.shape[1]) if coef_u is None else np.asarray(coef_u, dtype=np.float64)
    if coef_p is None or len(pen_cols) == 0:
        scale = alphas[0] if alphas.size and alphas[0] > 0 else 1.0
        warm = solve_gauss_newton(X, pen_cols[:0], U, datafit, WeightedL1(0.0, np.zeros(0)),
                                  coef_u=coef_u, tol=0.1 * tol * scale, max_iter=max_iter)
        coef_u, coef_p = warm.coef_u, np.zeros(len(pen_cols))
    coefs_u, coefs_p, results = [], [], []
    for i, alpha in enumerate(alphas):
        hook = None
        if callback is not None:
            def hook(info, _alpha=float(alpha), _i=i):
                callback(dict(info, alpha=_alpha, alpha_index=_i))
        res = solve_gauss_newton(X, pen_cols, U, datafit, WeightedL1(alpha, w), coef_u=coef_u,
                                 coef_p=coef_p, tol=tol, max_iter=max_iter, callback=hook)
        coef_u, coef_p = res.coef_u, res.coef_p
        coefs_u.append(coef_u.copy())
        coefs_p.append(coef_p.copy())
        results.append(res)
    return Bunch(alphas=alphas, coefs_u=np.array(coefs_u).reshape(len(alphas), U.shape[1]),
                 coefs_p=np.array(coefs_p).reshape(len(alphas), len(pen_cols)), results=results)
