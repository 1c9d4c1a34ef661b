"""Exact per-column medians (and median absolute deviations) of a 2-D array with missing values.

``numpy.nanmedian(a, axis=0)`` takes a one-dimensional median per column once ``a`` has NaN and
many rows (30,056 of them, 13 s, for the parallax model's features at 48,853 stars). Here a group
of columns at a time is transposed into contiguous lanes (a cache-sized block) whose non-finite
values are replaced by ``+inf`` (ranked after every number), so that the median of the ``c_j``
finite values of column ``j`` sits at ranks ``(c_j - 1) // 2`` and ``c_j // 2`` of its lane. A
:func:`numpy.partition` at the largest of these ranks, then one of the values left of it at the
smallest, put every value whose rank lies between them into a narrow window, which is then sorted:
the medians are read off it (one rank per call keeps numpy's SIMD selection, 13x faster than a
call with two ranks on float32 lanes; with the tiled transposition, 3.7 -> 0.8 CPU-s for
20,000 x 7,514). The absolute deviations from the median are partitioned in the same lanes for
the MAD. Columns with far fewer finite values than the others (which would widen the window) are
done one by one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["nanmedian_columns", "nanmedian_mad_columns"]


def _ranked(lanes, count):
    """Mean of the two middle finite values of every lane (non-finite already ``+inf``)."""
    lo_rank, hi_rank = (count - 1) // 2, count // 2
    k0, k1 = int(lo_rank.min()), int(hi_rank.max())
    # one rank per partition call: numpy's SIMD selection takes a single kth only (with two it
    # falls back to introselect, 13x slower on float32 lanes)
    lanes.partition(k1, axis=1)
    if k1 > k0:
        lanes[:, :k1].partition(k0, axis=1)
    window = np.sort(lanes[:, k0:k1 + 1], axis=1)
    idx = np.arange(lanes.shape[0])
    return 0.5 * (window[idx, lo_rank - k0].astype(np.float64)
                  + window[idx, hi_rank - k0].astype(np.float64))


def _transposed(a, j0, j1, tile_rows=256):
    """``a[:, j0:j1].T`` as a new C-ordered array, copied a tile of rows at a time (each tile
    stays in cache: 3x faster than one strided copy of the whole block)."""
    n = a.shape[0]
    out = np.empty((j1 - j0, n), dtype=a.dtype)
    for r0 in range(0, n, tile_rows):
        out[:, r0:r0 + tile_rows] = a[r0:r0 + tile_rows, j0:j1].T
    return out


def _one_column(values):
    v = np.sort(values[np.isfinite(values)])
    m = v.size
    med = 0.5 * (float(v[(m - 1) // 2]) + float(v[m // 2]))
    dev = np.sort(np.abs(v - v.dtype.type(med)))
    return med, 0.5 * (float(dev[(m - 1) // 2]) + float(dev[m // 2]))


def nanmedian_mad_columns(a, *, window=0.05, block_columns=128):
    """Median and median absolute deviation of the finite values of every column of ``a``.

    Parameters
    ----------
    a : ndarray of shape (n_rows, n_columns)
        Float values; NaN and +-inf are missing. Not modified.
    window : float, default=0.05
        Columns whose count of finite values is within this fraction of the largest count share
        one partition; the others are handled one at a time.
    block_columns : int, default=128
        Columns transposed and partitioned at once.

    Returns
    -------
    median, mad : ndarray of shape (n_columns,)
        float64; NaN where a column has no finite value. ``median`` is exactly
        ``numpy.nanmedian(a, axis=0)`` (mean of the two middle values for an even count) and
        ``mad`` the same median of ``|a - median|`` with ``median`` rounded to ``a``'s dtype.
    """
    a = np.asarray(a)
    n, p = a.shape
    med, mad = np.full(p, np.nan), np.full(p, np.nan)
    if n == 0 or p == 0:
        return med, mad
    alone = np.zeros(p, dtype=bool)
    for j0 in range(0, p, block_columns):
        j1 = min(j0 + block_columns, p)
        lanes = _transposed(a, j0, j1)                    # always a copy: modified below
        finite = np.isfinite(lanes)
        c = finite.sum(axis=1)
        lanes[~finite] = np.inf
        shared = c >= max(1, int(np.floor(c.max() * (1.0 - window))))
        alone[j0:j1] = ~shared & (c > 0)
        if shared.any():
            part = lanes[shared] if not shared.all() else lanes
            med[j0:j1][shared] = _ranked(part, c[shared])
            np.abs(part - med[j0:j1][shared].astype(part.dtype)[:, None], out=part)
            mad[j0:j1][shared] = _ranked(part, c[shared])
    for j in np.flatnonzero(alone):
        med[j], mad[j] = _one_column(a[:, j])
    return med, mad


def nanmedian_columns(a, **kwargs):
    """Median of the finite values of every column of ``a`` (float64; NaN where none).

    See :func:`nanmedian_mad_columns` for the parameters.
    """
    return nanmedian_mad_columns(a, **kwargs)[0]
