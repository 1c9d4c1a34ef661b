"""Polynomial design matrices: monomial exponents, names, evaluation and the exact change of basis
between physical and centred-and-scaled variables.

A design is described by an integer array ``powers`` of shape (n_terms, n_variables): term ``t`` is
``prod_j x_j ** powers[t, j]``.  The estimators fit in centred and scaled variables
``u = (x - center) / scale`` (well-conditioned normal equations) and report coefficients in physical
units through the matrix returned by :func:`change_of_basis`.
"""

from __future__ import annotations

from itertools import combinations_with_replacement
from math import comb

import numpy as np

__all__ = [
    "monomial_powers",
    "block_powers",
    "monomial_names",
    "evaluate_monomials",
    "change_of_basis",
]


def monomial_powers(n_variables, degree, *, include_bias):
    """Exponents of all monomials in ``n_variables`` variables up to total ``degree``.

    Ordered by total degree, then lexicographically by variable index within a degree (the order of
    ``sklearn.preprocessing.PolynomialFeatures`` and of the paper's equation 1):
    ``1, x0, x1, x2, x0^2, x0 x1, x0 x2, x1^2, x1 x2, x2^2`` for three variables and degree 2.

    Parameters
    ----------
    n_variables : int
        Number of variables.
    degree : int
        Highest total degree (>= 0).
    include_bias : bool
        Whether the constant term (degree 0) is included.

    Returns
    -------
    powers : ndarray of shape (n_terms, n_variables), dtype int
    """
    rows = []
    for d in range(0 if include_bias else 1, degree + 1):
        for combo in combinations_with_replacement(range(n_variables), d):
            row = np.zeros(n_variables, dtype=int)
            for j in combo:
                row[j] += 1
            rows.append(row)
    return np.array(rows, dtype=int).reshape(len(rows), n_variables)


def block_powers(blocks):
    """Stack per-block exponent arrays into one design over the concatenated variables.

    Parameters
    ----------
    blocks : sequence of ndarray
        Exponent arrays, block ``b`` of shape (n_terms_b, n_variables_b).

    Returns
    -------
    powers : ndarray of shape (sum n_terms_b, sum n_variables_b)
        Block-diagonal arrangement: no term mixes variables of two blocks.
    """
    n_vars = sum(b.shape[1] for b in blocks)
    out, col = [], 0
    for b in blocks:
        full = np.zeros((b.shape[0], n_vars), dtype=int)
        full[:, col:col + b.shape[1]] = b
        out.append(full)
        col += b.shape[1]
    return np.concatenate(out, axis=0) if out else np.zeros((0, n_vars), dtype=int)


def monomial_names(variable_names, powers):
    """Readable names of monomials: ``"1"``, ``"J_R"``, ``"J_R^2"``, ``"J_R J_z"``.

    Parameters
    ----------
    variable_names : sequence of str
        One name per variable (column of ``powers``).
    powers : ndarray of shape (n_terms, n_variables)

    Returns
    -------
    names : list of str
    """
    names = []
    for row in powers:
        parts = [name if p == 1 else f"{name}^{p}" for name, p in zip(variable_names, row) if p > 0]
        names.append(" ".join(parts) if parts else "1")
    return names


def evaluate_monomials(X, powers):
    """Evaluate the monomials on the rows of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_variables)
    powers : ndarray of shape (n_terms, n_variables)

    Returns
    -------
    design : ndarray of shape (n_rows, n_terms)
        ``design[i, t] = prod_j X[i, j] ** powers[t, j]`` (NaN propagates).  Stored term by term
        (``design.T`` is C-contiguous), the layout the least-squares kernels use.
    """
    Xt = np.ascontiguousarray(np.asarray(X, dtype=float).T)
    out = np.ones((powers.shape[0], Xt.shape[1]))
    for t, row in enumerate(powers):
        for j in np.flatnonzero(row):
            out[t] *= Xt[j] if row[j] == 1 else Xt[j] ** row[j]
    return out.T


def change_of_basis(powers, center, scale):
    """Matrix ``T`` with ``monomials((X - center) / scale) == monomials(X) @ T`` exactly.

    Needed to report coefficients fitted in centred and scaled variables in physical units: if the
    model is ``monomials(u) @ theta_u`` then ``theta_x = T @ theta_u`` and
    ``cov_x = T @ cov_u @ T.T``.  The expansion is binomial; every lower-order monomial it produces
    must itself be a term of the design (true for a complete polynomial with its constant, and for
    blocks of complete polynomials sharing one constant).

    Parameters
    ----------
    powers : ndarray of shape (n_terms, n_variables)
    center, scale : ndarray of shape (n_variables,)
        ``scale`` must be non-zero.

    Returns
    -------
    T : ndarray of shape (n_terms, n_terms)

    Raises
    ------
    ValueError
        If the expansion needs a monomial that is not a term of the design.
    """
    index = {tuple(row): t for t, row in enumerate(powers)}
    n_terms = powers.shape[0]
    T = np.zeros((n_terms, n_terms))
    for t, row in enumerate(powers):
        # prod_j ((x_j - c_j) / s_j)^p_j = prod_j sum_q C(p_j, q) x_j^q (-c_j)^(p_j - q) / s_j^p_j
        terms = {(): 1.0}
        for j, p in enumerate(row):
            new = {}
            for key, coef in terms.items():
                for q in range(p + 1):
                    factor = comb(p, q) * (-center[j]) ** (p - q) / scale[j] ** p
                    new[key + (q,)] = new.get(key + (q,), 0.0) + coef * factor
            terms = new
        for key, coef in terms.items():
            if coef == 0.0:
                continue
            if key not in index:
                raise ValueError(f"monomial with exponents {key} is needed to re-express term "
                                 f"{tuple(row)} but is not part of the design")
            T[index[key], t] += coef
    return T
