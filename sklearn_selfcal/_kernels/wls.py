"""Weighted least squares for many right-hand sides that share one design matrix but have their own
per-row weights and missing values (one abundance = one right-hand side).

For abundance ``k`` with weights ``w_k`` (``1/sigma^2``, zero where the value is missing) the normal
matrix is ``G_k = Y^T diag(w_k) Y``.  Because the weights differ between abundances, two abundances
with the same missing-value pattern still have different normal matrices, so an exact solver needs
one small (D x D) factorisation per abundance; those cost microseconds.  What is expensive is forming
the K normal matrices from N stars, and that is done here for all abundances at once with a single
matrix product: the table of pairwise products of design columns (D(D+1)/2 x N) times the K x N
weight table.  Missing values therefore cost nothing extra (a zero weight) and stars are never
copied per abundance.

Layout: everything is stored one row per design term or per problem and one column per star
(``design_t`` is D x N, ``values`` and ``weights`` are K x N), so that every per-term and
per-abundance vector is contiguous in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "WLSResult",
    "pair_products",
    "normal_equations",
    "rank_deficiencies",
    "solve_many",
    "solve_from_normal",
    "coef_from_normal",
    "residual_sums",
    "residuals",
    "sandwich_meat",
    "prediction_variance",
]


def pair_products(design_t):
    """Products of all pairs of design terms, upper triangle including the diagonal.

    Parameters
    ----------
    design_t : ndarray of shape (D, n_rows)
        Transposed design matrix.

    Returns
    -------
    products : ndarray of shape (D (D + 1) / 2, n_rows)
        ``products[p] = design_t[i_p] * design_t[j_p]`` for ``(i_p, j_p)`` in
        ``np.triu_indices(D)`` order.
    """
    D, n = design_t.shape
    out = np.empty((D * (D + 1) // 2, n))
    p = 0
    for i in range(D):
        np.multiply(design_t[i], design_t[i:], out=out[p:p + D - i])
        p += D - i
    return out


def _symmetric_from_triu(packed, D):
    """(K, D(D+1)/2) upper-triangle vectors -> (K, D, D) symmetric matrices."""
    iu, ju = np.triu_indices(D)
    out = np.empty((packed.shape[0], D, D))
    out[:, iu, ju] = packed
    out[:, ju, iu] = packed
    return out


def _weighted(values, weights):
    """``weights * values``, zero wherever the weight is zero (even where the value is NaN)."""
    return np.where(weights > 0, weights * values, 0.0)


def normal_equations(design_t, values, weights, products=None):
    """Normal matrices and right-hand sides of K weighted least-squares problems at once.

    Parameters
    ----------
    design_t : ndarray of shape (D, n_rows)
        Shared (transposed) design matrix, finite.
    values : ndarray of shape (K, n_rows)
        Targets; entries with zero weight are ignored (they may be NaN).
    weights : ndarray of shape (K, n_rows)
        Non-negative weights, zero for rows that do not take part in problem ``k``.
    products : ndarray of shape (D (D + 1) / 2, n_rows), optional
        :func:`pair_products` of ``design_t`` if already computed.

    Returns
    -------
    gram : ndarray of shape (K, D, D)
        ``Y^T diag(w_k) Y``.
    rhs : ndarray of shape (K, D)
        ``Y^T diag(w_k) a_k``.
    """
    if products is None:
        products = pair_products(design_t)
    gram = _symmetric_from_triu(weights @ products.T, design_t.shape[0])
    rhs = _weighted(values, weights) @ design_t.T
    return gram, rhs


def _equilibrate(gram):
    d = np.sqrt(np.einsum("kii->ki", gram))
    d = np.where(d > 0, d, 1.0)
    return gram / d[:, :, None] / d[:, None, :], d


def rank_deficiencies(gram, rcond=1e-10):
    """Which problems have a (numerically) singular normal matrix, and which terms are involved.

    The normal matrices are first equilibrated (unit diagonal); a problem is rank deficient when its
    smallest eigenvalue is below ``rcond`` times its largest (a zero column counts too).

    Parameters
    ----------
    gram : ndarray of shape (K, D, D)
    rcond : float
        Relative eigenvalue threshold.

    Returns
    -------
    deficient : dict of int -> list of int
        Problem index -> design terms with a sizeable share (> 10%) in the near-null direction.
    """
    diag = np.einsum("kii->ki", gram)
    eq, _ = _equilibrate(gram)
    evals, evecs = np.linalg.eigh(eq)
    out = {}
    for k in range(gram.shape[0]):
        zero_cols = np.flatnonzero(diag[k] <= 0)
        if zero_cols.size:
            out[k] = zero_cols.tolist()
        elif evals[k, 0] <= rcond * evals[k, -1]:
            v = np.abs(evecs[k, :, 0])
            out[k] = np.flatnonzero(v > 0.1 * v.max()).tolist()
    return out


@dataclass
class WLSResult:
    """Solutions of K weighted least-squares problems.

    Attributes
    ----------
    coef : ndarray of shape (K, D)
    gram_inv : ndarray of shape (K, D, D)
        ``(Y^T W_k Y)^{-1}``: the coefficient covariance if the weights are exact inverse variances.
    chi2 : ndarray of shape (K,)
        Weighted residual sum of squares.
    n_obs : ndarray of shape (K,)
        Rows with positive weight.
    resid : ndarray of shape (K, n_rows)
        Residuals ``values - fitted`` (NaN where ``values`` is NaN).
    """

    coef: np.ndarray
    gram_inv: np.ndarray
    chi2: np.ndarray
    n_obs: np.ndarray
    resid: np.ndarray


def solve_many(design_t, values, weights, products=None):
    """Solve K weighted least-squares problems sharing ``design_t`` (exactly; no rank check).

    Parameters
    ----------
    design_t : ndarray of shape (D, n_rows)
    values : ndarray of shape (K, n_rows)
    weights : ndarray of shape (K, n_rows)
        Zero where a value does not take part.
    products : ndarray, optional
        :func:`pair_products` of ``design_t``.

    Returns
    -------
    result : WLSResult

    Notes
    -----
    Call :func:`rank_deficiencies` on the normal matrices first when they may be singular.
    """
    gram, rhs = normal_equations(design_t, values, weights, products)
    return solve_from_normal(design_t, values, weights, gram, rhs)


def solve_from_normal(design_t, values, weights, gram, rhs):
    """Like :func:`solve_many` given the normal matrices and right-hand sides.

    The equilibrated normal equations are solved with a batched solver and inverted (D x D each)
    for the covariance.
    """
    coef, gram_inv = coef_from_normal(gram, rhs)
    resid = residuals(design_t, values, coef)
    chi2, n_obs = _chi2(resid, weights)
    return WLSResult(coef=coef, gram_inv=gram_inv, chi2=chi2, n_obs=n_obs, resid=resid)


def _chi2(resid, weights):
    """Weighted residual sum of squares and number of rows with positive weight, per problem."""
    valid = weights > 0
    chi2 = np.einsum("kn,kn->k", _weighted(resid, weights), np.where(valid, resid, 0.0))
    return chi2, valid.sum(axis=1)


def coef_from_normal(gram, rhs):
    """Coefficients and inverse normal matrices of K problems from their normal equations alone.

    The normal equations are additive over rows, so they can be summed over partitions of the
    data (:func:`normal_equations` of each) before this one small solve per problem.

    Parameters
    ----------
    gram : ndarray of shape (K, D, D)
    rhs : ndarray of shape (K, D)

    Returns
    -------
    coef : ndarray of shape (K, D)
    gram_inv : ndarray of shape (K, D, D)
        ``gram^{-1}`` (equilibrated solve and inversion, as :func:`solve_from_normal`).
    """
    eq, d = _equilibrate(gram)
    coef = np.linalg.solve(eq, (rhs / d)[:, :, None])[:, :, 0] / d
    gram_inv = np.linalg.inv(eq) / d[:, :, None] / d[:, None, :]
    return coef, gram_inv


def residual_sums(design_t, values, weights, coef, products=None, meat=True):
    """The row sums that follow a solve: weighted chi-square, row counts and sandwich meat.

    Every output is a sum over rows, so those of partitions of the data add up to the whole's.

    Parameters
    ----------
    design_t : ndarray of shape (D, n_rows)
    values : ndarray of shape (K, n_rows)
    weights : ndarray of shape (K, n_rows)
        Zero where a value does not take part.
    coef : ndarray of shape (K, D)
    products : ndarray, optional
        :func:`pair_products` of ``design_t``.
    meat : bool, default True
        Also return :func:`sandwich_meat` (else ``None``).

    Returns
    -------
    chi2 : ndarray of shape (K,)
        ``sum_n w_kn r_kn^2`` over the rows with positive weight.
    n_obs : ndarray of int of shape (K,)
        Rows with positive weight.
    meat : ndarray of shape (K, D, D) or None
    """
    resid = residuals(design_t, values, coef)
    chi2, n_obs = _chi2(resid, weights)
    middle = sandwich_meat(design_t, resid, weights, products) if meat else None
    return chi2, n_obs, middle


def residuals(design_t, values, coef):
    """``values - coef @ design_t`` of shape (K, n_rows) (NaN where ``values`` is NaN)."""
    return values - coef @ design_t


def sandwich_meat(design_t, resid, weights, products=None):
    """``Y^T diag(w_k^2 r_k^2) Y`` per problem: the middle of the heteroscedasticity-robust covariance.

    Parameters
    ----------
    design_t : ndarray of shape (D, n_rows)
    resid : ndarray of shape (K, n_rows)
    weights : ndarray of shape (K, n_rows)
    products : ndarray, optional

    Returns
    -------
    meat : ndarray of shape (K, D, D)
    """
    if products is None:
        products = pair_products(design_t)
    wr = _weighted(resid, weights)
    return _symmetric_from_triu((wr * wr) @ products.T, design_t.shape[0])


def prediction_variance(design_t, cov, products=None):
    """Variance of the fitted values of every problem: ``diag(Y C_k Y^T)`` for each row of ``Y``.

    Parameters
    ----------
    design_t : ndarray of shape (D, n_rows)
        Transposed design (rows of NaN give NaN).
    cov : ndarray of shape (K, D, D)
        Coefficient covariance of each problem.
    products : ndarray, optional
        :func:`pair_products` of ``design_t``.

    Returns
    -------
    var : ndarray of shape (K, n_rows)

    Notes
    -----
    One matrix product: the packed upper triangle of every covariance (off-diagonal entries
    doubled) times the table of pairwise products of the design columns.
    """
    D = design_t.shape[0]
    if products is None:
        products = pair_products(design_t)
    iu, ju = np.triu_indices(D)
    packed = cov[:, iu, ju] * np.where(iu == ju, 1.0, 2.0)
    return packed @ products
