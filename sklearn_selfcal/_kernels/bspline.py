"""B-spline bases of one variable: knot placement and evaluation, with linear extrapolation.

A basis is described by its knots (increasing, at least two: the boundary knots and any interior
ones) and its degree. The knot vector is clamped (boundary knots repeated ``degree`` times), so the
basis has ``n_knots + degree - 1`` functions that sum to one inside the boundary knots. Outside
them every function continues as the straight line tangent at the nearest boundary (linear
extrapolation), which keeps a fitted correction bounded by its slope at the edge of the data
instead of letting a polynomial piece run away.

:func:`centred_basis` gives the basis of a *correction*: functions that are zero at a reference
value, with one function dropped so that the columns are independent of a constant (the B-splines
sum to one, so their differences from the reference sum to zero). A linear combination of its
columns is therefore a smooth function of the variable that vanishes at the reference, the shape
the calibration subtracts.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import BSpline

__all__ = ["quantile_knots", "check_knots", "n_basis", "basis", "centred_basis"]


def quantile_knots(x, n_knots, *, include=None):
    """Knots at equally spaced quantiles of ``x`` (boundary knots at its minimum and maximum).

    Parameters
    ----------
    x : array-like of float
        Values (NaN ignored).
    n_knots : int
        Number of knots, at least 2 (2 = boundary knots only: a polynomial of the basis degree).
    include : float, optional
        A value the boundary knots must enclose (e.g. the reference of a correction).

    Returns
    -------
    knots : ndarray of shape (n_unique,)
        Increasing knots; repeated quantiles (heavily tied data) are merged, so there may be fewer
        than ``n_knots``.

    Raises
    ------
    ValueError
        If fewer than two distinct values are available.
    """
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if include is not None:
        x = np.append(x, float(include))
    if np.unique(x).size < 2:
        raise ValueError("a spline basis needs at least two distinct values of its variable")
    knots = np.unique(np.quantile(x, np.linspace(0.0, 1.0, int(n_knots))))
    return knots


def check_knots(knots, what="knots"):
    """``knots`` as an increasing float array of at least two finite values (else ValueError)."""
    knots = np.asarray(knots, dtype=float)
    if knots.ndim != 1 or knots.size < 2 or not np.all(np.isfinite(knots)) \
            or not np.all(np.diff(knots) > 0):
        raise ValueError(f"{what} must be at least two finite, strictly increasing values; "
                         f"got {knots.tolist() if knots.ndim else knots!r}")
    return knots


def n_basis(knots, degree):
    """Number of B-spline functions of a clamped basis: ``len(knots) + degree - 1``."""
    return len(knots) + int(degree) - 1


def _clamped(knots, degree):
    return np.r_[np.repeat(knots[0], degree), knots, np.repeat(knots[-1], degree)]


def basis(x, knots, degree):
    """Evaluate every B-spline of the clamped basis at ``x``, linearly extrapolated outside.

    Parameters
    ----------
    x : array-like of float of shape (n,)
        Values; NaN gives a row of NaN.
    knots : ndarray of shape (n_knots,)
        Increasing knots (see :func:`check_knots`).
    degree : int
        Degree of the pieces (>= 1).

    Returns
    -------
    B : ndarray of shape (n, n_knots + degree - 1)
    """
    x = np.asarray(x, dtype=float)
    knots = np.asarray(knots, dtype=float)
    degree = int(degree)
    n_funcs = n_basis(knots, degree)
    # vector-valued spline whose i-th component is the i-th basis function; evaluated only inside
    # the boundary knots (closed interval), where scipy's polynomial pieces are the basis itself
    spline = BSpline(_clamped(knots, degree), np.eye(n_funcs), degree)
    out = np.full((x.size, n_funcs), np.nan)
    finite = np.isfinite(x)
    lo, hi = knots[0], knots[-1]
    xc = np.clip(x[finite], lo, hi)
    values = spline(xc)
    excess = x[finite] - xc
    outside = excess != 0
    if outside.any():
        edge_slope = spline.derivative()(np.array([lo, hi]))  # (2, n_funcs)
        values[outside] += excess[outside, None] * edge_slope[(excess[outside] > 0).astype(int)]
    out[finite] = values
    return out


def centred_basis(x, knots, degree, reference):
    """The B-spline basis minus its value at ``reference``, without its last function.

    Every column is zero at ``reference``; the ``n_knots + degree - 2`` columns span all splines
    on these knots that vanish there (the dropped difference is minus the sum of the others).

    Parameters
    ----------
    x : array-like of float of shape (n,)
    knots : ndarray
    degree : int
    reference : float

    Returns
    -------
    B : ndarray of shape (n, n_knots + degree - 2)
    """
    full = basis(x, knots, degree)
    ref = basis(np.array([float(reference)]), knots, degree)[0]
    return full[:, :-1] - ref[:-1]
