"""Exact per-column medians of a 2-D array whose missing values are NaN, in a few vectorised passes.

``numpy.nanmedian(a, axis=0)`` takes a one-dimensional median per column once ``a`` has NaN and
many rows (30,056 of them, 13 s, for the parallax model's features at 48,853 stars). Here the
NaN are replaced by ``+inf`` (sorted after every number), so that the median of the ``c_j`` finite
values of column ``j`` sits at ranks ``(c_j - 1) // 2`` and ``c_j // 2`` of the whole column. One
:func:`numpy.partition` at the smallest and largest of these ranks over all columns puts every
value whose rank lies between them in a narrow window, which is then sorted: the medians are read
off it. Columns with far fewer finite values than the others (which would widen the window) are
done one by one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["nanmedian_columns"]


def nanmedian_columns(a, *, window=0.05):
    """Median of the finite values of every column of ``a`` (float64; NaN where none).

    Parameters
    ----------
    a : ndarray of shape (n_rows, n_columns)
        Float values; NaN (and +-inf) are missing. Not modified.
    window : float, default=0.05
        Columns whose count of finite values is within this fraction of the largest count share
        one partition; the others are handled one at a time.

    Returns
    -------
    median : ndarray of shape (n_columns,)
        Exactly ``numpy.nanmedian(a, axis=0)`` for finite entries (mean of the two middle values
        for an even count, in float64).
    """
    a = np.asarray(a)
    n, p = a.shape
    med = np.full(p, np.nan)
    if n == 0 or p == 0:
        return med
    finite = np.isfinite(a)
    count = finite.sum(axis=0)
    top = int(count.max())
    shared = count >= max(1, int(np.floor(top * (1.0 - window))))
    cols = np.flatnonzero(shared)
    if cols.size:
        # rows of the shared columns as contiguous lanes: one partition, then a small sort
        lanes = np.where(finite[:, cols], a[:, cols], np.inf).T.copy()
        c = count[cols]
        lo_rank, hi_rank = (c - 1) // 2, c // 2
        k0, k1 = int(lo_rank.min()), int(hi_rank.max())
        lanes.partition([k0, k1] if k1 > k0 else [k0], axis=1)
        win = np.sort(lanes[:, k0:k1 + 1], axis=1)
        idx = np.arange(cols.size)
        med[cols] = 0.5 * (win[idx, lo_rank - k0].astype(np.float64)
                           + win[idx, hi_rank - k0].astype(np.float64))
    for j in np.flatnonzero(~shared & (count > 0)):
        v = np.sort(a[finite[:, j], j])
        m = v.size
        med[j] = 0.5 * (float(v[(m - 1) // 2]) + float(v[m // 2]))
    return med
