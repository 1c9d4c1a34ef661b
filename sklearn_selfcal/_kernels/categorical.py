"""Categorical variables as offsets relative to a reference category (treatment coding).

A categorical variable (telescope, fibre group, field programme) with categories ``c_0, ..., c_m``
contributes one column per category other than the reference: column ``j`` is 1 for the stars of
that category and 0 otherwise. Its coefficients are the offsets of each category from the
reference, and the reference category gets no correction. Categories are compared as strings.

Codes: every value is mapped to the position of its category in the fitted list, ``MISSING`` (-1)
for a missing value (NaN/None) and ``UNSEEN`` (-2) for a category the fit never saw; both give rows
of NaN in the design, so that no offset is ever guessed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["MISSING", "UNSEEN", "categories_of", "encode", "treatment_columns"]

MISSING = -1
UNSEEN = -2


def _factorize(values):
    """Integer codes (-1 where missing) and the distinct values as str, in order of appearance."""
    codes, uniques = pd.factorize(pd.Series(values, copy=False), use_na_sentinel=True)
    return codes, [str(u) for u in np.asarray(uniques, dtype=object)]


def categories_of(values):
    """Sorted distinct categories (as str) among the non-missing ``values``.

    Parameters
    ----------
    values : array-like or pandas Series (any dtype, pandas categorical included)

    Returns
    -------
    categories : list of str
    """
    return sorted(set(_factorize(values)[1]))


def encode(values, categories):
    """Integer code of every value: position in ``categories``, ``MISSING`` or ``UNSEEN``.

    Parameters
    ----------
    values : array-like or pandas Series
        Compared with the categories as strings; NaN, None and pandas NA are missing.
    categories : sequence of str

    Returns
    -------
    codes : ndarray of int of shape (n,)
    """
    codes, uniques = _factorize(values)
    index = {c: i for i, c in enumerate(categories)}
    lookup = np.array([index.get(u, UNSEEN) for u in uniques] + [MISSING], dtype=int)
    return lookup[codes]  # code -1 (missing) picks the last entry, MISSING


def treatment_columns(codes, n_categories, reference):
    """Indicator columns of every category but the reference, NaN where the code is negative.

    Parameters
    ----------
    codes : ndarray of int of shape (n,)
    n_categories : int
    reference : int
        Code of the reference category.

    Returns
    -------
    D : ndarray of shape (n, n_categories - 1)
        Columns in category order, the reference skipped.
    """
    codes = np.asarray(codes)
    others = [c for c in range(n_categories) if c != reference]
    D = (codes[:, None] == np.asarray(others, dtype=int)[None, :]).astype(float)
    D[codes < 0] = np.nan
    return D
