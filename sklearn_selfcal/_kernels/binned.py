"""Grouped statistics on flat bin indices: medians, means, standard deviations and 2-D bin indices.

Plain numpy functions with no scikit-learn or pandas machinery. A *group index* is an integer array
with one entry per value, in ``[0, n_groups)`` for values that belong to a group and negative (or
``>= n_groups``) for values outside every group. Non-finite values never count. Every function is
vectorised: one sort (median) or a few ``np.bincount`` calls (mean, std), never a Python loop over
groups, so maps with thousands of bins over 10^5-10^6 stars take milliseconds.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from .._paper import MEDIAN_EFFICIENCY

__all__ = ["bin_index", "bin_index_2d", "category_bins", "equal_count_bins", "grouped_count",
           "grouped_mean", "grouped_median", "grouped_median_and_error", "grouped_std",
           "grouped_sum", "mean_from_sum"]


def bin_index(values, edges):
    """Index of the half-open bin ``[edges[i], edges[i + 1])`` holding each value, -1 outside.

    Parameters
    ----------
    values : array_like of shape (n,)
        Values, in the units of ``edges``; NaN falls outside every bin.
    edges : array_like of shape (n_bins + 1,)
        Increasing bin edges.

    Returns
    -------
    index : ndarray of int of shape (n,)
        Bin of every value, or -1 when the value is outside ``[edges[0], edges[-1])`` or not finite.
    """
    values = np.asarray(values, dtype=float)
    edges = np.asarray(edges, dtype=float)
    index = np.searchsorted(edges, values, side="right") - 1
    outside = ~np.isfinite(values) | (index < 0) | (index >= edges.size - 1)
    index[outside] = -1
    return index


def bin_index_2d(x, y, x_edges, y_edges):
    """Flat index ``iy * n_x + ix`` of the 2-D bin holding each point (-1 outside the grid).

    Parameters
    ----------
    x, y : array_like of shape (n,)
        Coordinates of the points.
    x_edges, y_edges : array_like
        Increasing bin edges along x (``n_x + 1`` values) and y (``n_y + 1`` values).

    Returns
    -------
    index : ndarray of int of shape (n,)
        Row-major flat index into an ``(n_y, n_x)`` image, so ``index.reshape`` conventions match
        ``pcolormesh(x_edges, y_edges, image)``; -1 for points outside the grid or not finite.
    """
    ix = bin_index(x, x_edges)
    iy = bin_index(y, y_edges)
    n_x = np.asarray(x_edges).size - 1
    return np.where((ix >= 0) & (iy >= 0), iy * n_x + ix, -1)


def _valid(group, values, n_groups):
    group = np.asarray(group)
    values = np.asarray(values, dtype=float)
    if group.shape != values.shape or values.ndim != 1:
        raise ValueError(
            f"group and values must be 1-D arrays of the same length; got shapes {group.shape} "
            f"and {values.shape}"
        )
    keep = np.isfinite(values) & (group >= 0) & (group < n_groups)
    return group[keep].astype(np.intp), values[keep]


def grouped_count(group, values, n_groups):
    """Number of finite values in every group.

    Parameters
    ----------
    group : array_like of int of shape (n,)
        Group of every value (negative: none).
    values : array_like of shape (n,)
        Values; NaN and infinities are not counted.
    n_groups : int
        Number of groups.

    Returns
    -------
    count : ndarray of int of shape (n_groups,)
        Number of finite values per group.
    """
    g, _ = _valid(group, values, n_groups)
    return np.bincount(g, minlength=n_groups)


def grouped_median(group, values, n_groups):
    """Median of the finite values of every group (NaN for an empty group).

    One lexicographic sort by (group, value); the median of a group of ``n`` sorted values is the
    mean of its elements ``(n - 1) // 2`` and ``n // 2``, exactly as :func:`numpy.median`.

    Parameters
    ----------
    group, values, n_groups
        As in :func:`grouped_count` (values in any unit; non-finite ones are ignored).

    Returns
    -------
    median : ndarray of float of shape (n_groups,)
        Median per group, in the unit of ``values``; NaN for groups without finite values.
    count : ndarray of int of shape (n_groups,)
        Number of finite values per group.
    """
    g, v = _valid(group, values, n_groups)
    order = np.lexsort((v, g))
    v = v[order]
    count = np.bincount(g, minlength=n_groups)
    start = np.cumsum(count) - count
    median = np.full(n_groups, np.nan)
    has = count > 0
    lo = start[has] + (count[has] - 1) // 2
    hi = start[has] + count[has] // 2
    median[has] = 0.5 * (v[lo] + v[hi])
    return median, count


def grouped_mean(group, values, n_groups):
    """Mean of the finite values of every group (NaN for an empty group).

    Parameters
    ----------
    group, values, n_groups
        As in :func:`grouped_count` (values in any unit; non-finite ones are ignored).

    Returns
    -------
    mean : ndarray of float of shape (n_groups,)
        Mean per group, in the unit of ``values``.
    count : ndarray of int of shape (n_groups,)
        Number of finite values per group.
    """
    total, count = grouped_sum(group, values, n_groups)
    return mean_from_sum(total, count), count


def grouped_sum(group, values, n_groups):
    """Sum and count of the finite values of every group (additive over disjoint row sets).

    Parameters
    ----------
    group, values, n_groups
        As in :func:`grouped_count` (values in any unit; non-finite ones are ignored).

    Returns
    -------
    total : ndarray of float of shape (n_groups,)
        Sum per group (0 for an empty group), in the unit of ``values``.
    count : ndarray of int of shape (n_groups,)
        Number of finite values per group.
    """
    g, v = _valid(group, values, n_groups)
    return np.bincount(g, weights=v, minlength=n_groups), np.bincount(g, minlength=n_groups)


def mean_from_sum(total, count):
    """``total / count`` where ``count > 0``, NaN elsewhere (the mean from :func:`grouped_sum`)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def grouped_std(group, values, n_groups, ddof=1):
    """Standard deviation of the finite values of every group (NaN with ``ddof`` or fewer values).

    Two passes (mean first, then squared deviations) for accuracy.

    Parameters
    ----------
    group, values, n_groups
        As in :func:`grouped_count` (values in any unit; non-finite ones are ignored).
    ddof : int, default=1
        Delta degrees of freedom (1: the sample standard deviation).

    Returns
    -------
    std : ndarray of float of shape (n_groups,)
        Standard deviation per group, in the unit of ``values``.
    count : ndarray of int of shape (n_groups,)
        Number of finite values per group.
    """
    g, v = _valid(group, values, n_groups)
    count = np.bincount(g, minlength=n_groups)
    total = np.bincount(g, weights=v, minlength=n_groups)
    mean = total / np.maximum(count, 1)
    ss = np.bincount(g, weights=(v - mean[g]) ** 2, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.where(count > ddof, np.sqrt(ss / np.maximum(count - ddof, 1)), np.nan)
    return std, count


def grouped_median_and_error(group, values, n_groups):
    """Median of every group and its uncertainty ``MEDIAN_EFFICIENCY * std / sqrt(N)``.

    ``MEDIAN_EFFICIENCY = sqrt(pi / 2)``: the standard error of the median of ``N`` Gaussian draws
    of standard deviation ``std`` (the sample standard deviation, ``ddof=1``).

    Parameters
    ----------
    group, values, n_groups
        As in :func:`grouped_count` (values in any unit; non-finite ones are ignored).

    Returns
    -------
    median, error : ndarray of float of shape (n_groups,)
        Median and its uncertainty per group, in the unit of ``values``; NaN error for groups with
        fewer than two finite values, NaN median for empty groups.
    count : ndarray of int of shape (n_groups,)
        Number of finite values per group.

    Examples
    --------
    >>> median, error, count = grouped_median_and_error([0, 0, 0, 1], [1.0, 2.0, 4.0, 5.0], 2)
    >>> median.tolist(), count.tolist()
    ([2.0, 5.0], [3, 1])
    >>> bool(np.isnan(error[1]))
    True
    """
    median, count = grouped_median(group, values, n_groups)
    std, _ = grouped_std(group, values, n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        error = MEDIAN_EFFICIENCY * std / np.sqrt(count)
    return median, error, count


def category_bins(values, *, where=None):
    """Label every value with its category: the index of its value among the sorted distinct values.

    The categorical counterpart of :func:`equal_count_bins` (e.g. the telescope of every star,
    ``"apo25m"`` or ``"lco25m"``): one group per distinct value instead of bins of a range.

    Parameters
    ----------
    values : array_like of shape (n,)
        Category of every value (strings, integers, ...; of one sortable type). Values of a float
        array that are not finite get label -1; for other types, leave missing values out with
        ``where``.
    where : array_like of bool of shape (n,), optional
        Only these values are labelled (the others get label -1).

    Returns
    -------
    labels : ndarray of int of shape (n,)
        Index into ``categories`` of every value, -1 for values left out.
    categories : ndarray of shape (n_categories,)
        The distinct values, sorted.

    Examples
    --------
    >>> labels, categories = category_bins(["lco25m", "apo25m", "apo25m", "?"],
    ...                                    where=[True, True, True, False])
    >>> labels.tolist(), categories.tolist()
    ([1, 0, 0, -1], ['apo25m', 'lco25m'])
    """
    values = np.asarray(values)
    keep = np.ones(values.shape, dtype=bool) if where is None else np.asarray(where, dtype=bool)
    if keep.shape != values.shape or values.ndim != 1:
        raise ValueError(
            f"values and where must be 1-D arrays of the same length; got shapes {values.shape} "
            f"and {keep.shape}"
        )
    if values.dtype.kind == "f":
        keep = keep & np.isfinite(values)
    categories, inverse = np.unique(values[keep], return_inverse=True)
    labels = np.full(values.shape, -1, dtype=int)
    labels[keep] = inverse.ravel()
    return labels, categories


def equal_count_bins(values, n_bins=4, *, where=None):
    """Split values into ``n_bins`` bins holding equal numbers of them (within one).

    Bins are assigned by rank (ties broken by position), so the counts differ by at most one even
    when values repeat.

    Parameters
    ----------
    values : array_like of shape (n,)
        E.g. log g (dex). Non-finite values get label -1.
    n_bins : int, default=4
        Number of bins.
    where : array_like of bool of shape (n,), optional
        Only these values are binned (the others get label -1 and do not count).

    Returns
    -------
    labels : ndarray of int of shape (n,)
        Bin of every value, 0 for the lowest values, -1 for non-finite ones (and those outside
        ``where``).
    ranges : ndarray of shape (n_bins, 2)
        Smallest and largest value in every bin.
    """
    if not isinstance(n_bins, Integral) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}")
    values = np.asarray(values, dtype=float)
    keep = np.isfinite(values)
    if where is not None:
        keep &= np.asarray(where, dtype=bool)
    finite = np.flatnonzero(keep)
    if finite.size < n_bins:
        raise ValueError(f"need at least n_bins={n_bins} finite values to bin; got {finite.size}")
    order = finite[np.argsort(values[finite], kind="stable")]
    labels = np.full(values.shape, -1, dtype=int)
    labels[order] = (np.arange(order.size) * n_bins) // order.size
    ranges = np.array([[values[labels == i].min(), values[labels == i].max()] for i in range(n_bins)])
    return labels, ranges
