"""Medians of many columns in bins that change from one Monte Carlo draw to the next.

The radial profiles' distance uncertainties are propagated by recomputing every bin's median for
many draws of the stars' radii: the values stay the same, only the bins change. Sorting every
column's values once (:func:`presort`) makes each draw linear in the number of stars: the stars'
bins are put in value order, a stable sort on the small integer bin labels (a radix sort) groups
them while keeping the value order within each bin, and the median is read off by position.
"""

from __future__ import annotations

import numpy as np

__all__ = ["presort", "group_medians"]


def presort(values):
    """Order of the finite values of every column, ascending.

    Parameters
    ----------
    values : ndarray of shape (n, K)

    Returns
    -------
    orders : list of K ndarray of int
        Row indices of the finite values of each column, in increasing value order.
    sorted_values : list of K ndarray
        The values in that order.
    """
    orders, sorted_values = [], []
    for k in range(values.shape[1]):
        col = values[:, k]
        finite = np.flatnonzero(np.isfinite(col))
        order = finite[np.argsort(col[finite], kind="stable")]
        orders.append(order)
        sorted_values.append(col[order])
    return orders, sorted_values


def group_medians(sorted_values, groups, n_groups):
    """Median and count of presorted values in every group.

    Parameters
    ----------
    sorted_values : ndarray of shape (m,)
        Increasing values.
    groups : ndarray of int of shape (m,)
        Group of every value (in the same order), negative for none; fewer than 32,768 groups.
    n_groups : int

    Returns
    -------
    median : ndarray of shape (n_groups,)
        NaN for an empty group; the mean of the two middle values for an even count, as
        :func:`numpy.median`.
    count : ndarray of int of shape (n_groups,)
    """
    keep = groups >= 0
    if not keep.any():
        return np.full(n_groups, np.nan), np.zeros(n_groups, dtype=int)
    g = groups[keep].astype(np.int16)
    order = np.argsort(g, kind="stable")  # radix sort; keeps the value order within a group
    g, v = g[order], sorted_values[keep][order]
    labels = np.arange(n_groups)
    first = np.searchsorted(g, labels, side="left")
    last = np.searchsorted(g, labels, side="right")  # each group is v[first:last], increasing
    count = last - first
    middle = np.clip([(first + last - 1) // 2, (first + last) // 2], 0, v.size - 1)
    return np.where(count > 0, v[middle].mean(axis=0), np.nan), count
