"""Statistics that are sums over rows, kept in a form that merges exactly across partitions.

A partitioned table (a Dask DataFrame, a catalogue in many files) is reduced by computing a small
summary of every partition and merging the summaries; the merge must give the statistic of the
whole to rounding, whatever the partitioning. Plain numpy functions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["moments", "merge_moments"]


def moments(values):
    """Count, mean and sum of squared deviations from the mean of every column.

    Parameters
    ----------
    values : ndarray of shape (n, m)
        Finite values.

    Returns
    -------
    n : int
    mean : ndarray of shape (m,)
        Zeros when ``n == 0``.
    m2 : ndarray of shape (m,)
        ``sum((values - mean)**2, axis=0)`` (two passes, as :func:`numpy.var`).
    """
    values = np.asarray(values, dtype=float)
    n = values.shape[0]
    if n == 0:
        return 0, np.zeros(values.shape[1]), np.zeros(values.shape[1])
    mean = values.mean(axis=0)
    return n, mean, ((values - mean) ** 2).sum(axis=0)


def merge_moments(parts):
    """Merge :func:`moments` of disjoint row sets into those of their union.

    Chan, Golub & LeVeque's pairwise update: ``n = n_a + n_b``, ``mean = mean_a + delta n_b / n``,
    ``m2 = m2_a + m2_b + delta^2 n_a n_b / n`` with ``delta = mean_b - mean_a``; exact in exact
    arithmetic and free of the cancellation of a sum of squares.

    Parameters
    ----------
    parts : sequence of (n, mean, m2)

    Returns
    -------
    n, mean, m2
        Of the union; the standard deviation (``ddof=0``) is ``sqrt(m2 / n)``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(10.0)[:, None] ** 2
    >>> n, mean, m2 = merge_moments([moments(x[:3]), moments(x[3:])])
    >>> n, float(mean[0]), bool(np.isclose(m2[0] / n, x.var()))
    (10, 28.5, True)
    """
    parts = list(parts)
    n, mean, m2 = parts[0]
    mean, m2 = np.array(mean, dtype=float), np.array(m2, dtype=float)
    for n_b, mean_b, m2_b in parts[1:]:
        if n_b == 0:
            continue
        total = n + n_b
        delta = mean_b - mean
        mean = mean + delta * (n_b / total)
        m2 = m2 + m2_b + delta**2 * (n * n_b / total)
        n = total
    return n, mean, m2
