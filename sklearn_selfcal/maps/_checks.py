"""Checks of the maps' inputs: numeric columns, star counts, bin sizes and edges.

Every public function of :mod:`sklearn_selfcal.maps` reads its numbers through
:func:`numeric_values` or :func:`column_values`, so that text in a numeric column (``"bad"`` among
abundances) is an error naming the column and its first bad rows instead of a message from deep
inside numpy or pandas.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from .._validation import _bad_rows_message, require_columns

__all__ = ["TooFewStarsError", "check_edges", "check_mask", "check_min_stars", "check_positive",
           "column_values", "numeric_values"]


class TooFewStarsError(ValueError):
    """Too few stars with finite values to bin, compare or draw.

    A :class:`ValueError`; :func:`sklearn_selfcal.figures.render_figures` skips a figure whose
    data raise it and records the message as the reason.
    """


def _not_a_number(value):
    """True for a non-missing value that is not a number (``"bad"``); ``"nan"`` is a number."""
    try:
        float(value)
    except (TypeError, ValueError):
        return True
    return False


def numeric_values(values, name):
    """``values`` as a float array; a clear error if any of them is not a number.

    Parameters
    ----------
    values : array_like or pandas.Series
        Numbers; missing values (``None``, ``NaN``, ``pd.NA``) become NaN.
    name : str
        Column or argument name used in the error message.

    Returns
    -------
    array : ndarray of float
        Same shape as ``values``.

    Raises
    ------
    ValueError
        Naming ``name``, how many values are not numbers and the first bad rows (by position).

    Examples
    --------
    >>> numeric_values([1, None, "2.5"], "FE_H").tolist()
    [1.0, nan, 2.5]
    >>> numeric_values([0.1, "bad"], "FE_H")
    Traceback (most recent call last):
    ...
    ValueError: column 'FE_H' must be a number; 1 value(s) are not: row 1: 'bad'
    """
    if isinstance(values, (pd.Series, pd.Index)):
        if pd.api.types.is_numeric_dtype(values.dtype):
            return values.to_numpy(dtype=float, na_value=np.nan)
        raw = values.to_numpy(dtype=object)
    else:
        raw = np.asarray(values)
        if raw.dtype.kind in "biuf":
            return raw.astype(float)
        raw = raw.astype(object)
    flat = raw.ravel()
    converted = pd.to_numeric(pd.Series(flat, dtype=object), errors="coerce").to_numpy(
        dtype=float, na_value=np.nan)
    suspects = np.flatnonzero(np.isnan(converted) & ~pd.isna(flat))
    bad = np.zeros(flat.shape, dtype=bool)
    bad[suspects] = [_not_a_number(flat[i]) for i in suspects]
    if bad.any():
        raise ValueError(_bad_rows_message(flat, bad, name, "a number"))
    return converted.reshape(raw.shape)


def column_values(frame, name, *, what="input"):
    """Column ``name`` of ``frame`` as a float array (see :func:`numeric_values`).

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue; not modified.
    name : str
        Column name.
    what : str, default="input"
        The caller, named in the error if the column is missing.

    Returns
    -------
    values : ndarray of float of shape (n_rows,)
    """
    require_columns(frame.columns, [name], what=what)
    return numeric_values(frame[name], name)


def check_mask(where, n_rows, name="where"):
    """A boolean mask of ``n_rows`` values (``None``: all True)."""
    if where is None:
        return np.ones(n_rows, dtype=bool)
    where = np.asarray(where, dtype=bool)
    if where.shape != (n_rows,):
        raise ValueError(f"{name} must have shape ({n_rows},); got {where.shape}")
    return where


def check_min_stars(min_stars, minimum=1):
    """``min_stars`` as an int, or a ValueError if it is not an integer >= ``minimum``."""
    if not isinstance(min_stars, numbers.Integral) or isinstance(min_stars, bool) or min_stars < minimum:
        raise ValueError(f"min_stars must be an integer >= {minimum}; got {min_stars!r}")
    return int(min_stars)


def check_positive(value, name):
    """``value`` as a float, or a ValueError naming ``name`` if it is not a positive finite number."""
    if not (isinstance(value, numbers.Real) and np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number; got {value!r}")
    return float(value)


def check_edges(edges, name):
    """``edges`` as a float array, or a ValueError if they are not at least two increasing numbers."""
    edges = numeric_values(edges, name)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError(f"{name} must be at least two increasing bin edges; got {edges!r}")
    return edges
