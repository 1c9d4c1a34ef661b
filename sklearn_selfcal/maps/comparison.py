"""Two-sample comparisons of abundance distributions (on-bar against off-bar stars, Figure 13).

Medians with their uncertainties, Kolmogorov-Smirnov tests per abundance and the energy distance
with a permutation p-value over all abundances jointly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance
from sklearn.utils import Bunch, check_random_state

from .._kernels.binned import grouped_median_and_error
from .._paper import calibrated_name
from .._validation import TooFewStarsError, numeric_values, validate_catalogue

__all__ = ["compare_samples", "energy_distance"]

#: Default abundances compared: the calibrated [Fe/H] and [Mg/Fe] (the axes of Figure 13).
_DEFAULT_COLUMNS = tuple(calibrated_name(c) for c in ("FE_H", "MG_FE"))


def _as_points(sample, name):
    values = numeric_values(sample, name)
    return values.reshape(len(values), -1)


def energy_distance(a, b):
    """Energy distance between two samples in any number of dimensions.

    ``sqrt(2 E|A - B| - E|A - A'| - E|B - B'|)`` with Euclidean norms and all pairs (V-statistics), the
    definition :func:`scipy.stats.energy_distance` uses in one dimension; zero exactly when the two
    empirical distributions coincide.

    Parameters
    ----------
    a : array_like of shape (n_a, n_dims) or (n_a,)
        First sample.
    b : array_like of shape (n_b, n_dims) or (n_b,)
        Second sample, same dimensions and units.

    Returns
    -------
    distance : float
        In the units of the samples.

    Examples
    --------
    >>> round(energy_distance([0.0, 1.0], [0.0, 1.0]), 12)
    0.0
    >>> round(energy_distance([0.0], [1.0]), 6)  # sqrt(2 * 1 - 0 - 0)
    1.414214
    """
    a, b = _as_points(a, "a"), _as_points(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the samples must have the same dimensions; got {a.shape[1]} and {b.shape[1]}")
    stat = _energy_statistics(_pairwise(np.vstack([a, b])), a.shape[0])[0]
    return float(np.sqrt(max(stat, 0.0)))


def _pairwise(points):
    return distance.cdist(points, points)


def _energy_statistics(D, n_a, labels=None):
    """Squared energy distances between two labelled parts of a pooled sample.

    ``D``: pairwise distances (n_pooled, n_pooled). ``labels``: bool array (n_perm, n_pooled), True
    for the ``n_a`` members of the first sample in every relabelling; ``None``: the first ``n_a`` rows.
    All relabellings are evaluated with one matrix product.
    """
    n = D.shape[0]
    n_b = n - n_a
    if labels is None:
        labels = (np.arange(n) < n_a)[None, :]
    S = labels.astype(float)
    SD = S @ D
    s_aa = np.einsum("pi,pi->p", SD, S)
    s_ab = SD.sum(axis=1) - s_aa
    s_bb = D.sum() - 2 * s_ab - s_aa
    return 2 * s_ab / (n_a * n_b) - s_aa / n_a**2 - s_bb / n_b**2


def _permutation_pvalue(D, n_a, observed, n_permutations, rng, chunk=100):
    """``(1 + #{E_perm >= E_obs}) / (1 + n_permutations)`` over random relabellings, ``chunk`` at a time."""
    exceed, done = 0, 0
    while done < n_permutations:
        m = min(chunk, n_permutations - done)
        perm = np.argsort(rng.random_sample((m, D.shape[0])), axis=1)
        exceed += int(np.sum(_energy_statistics(D, n_a, perm < n_a) >= observed - 1e-15))
        done += m
    return (1 + exceed) / (1 + n_permutations)


def _finite_rows(sample, columns, what):
    v = validate_catalogue(sample, columns, what=what, min_rows=0, stacklevel=3)
    values = np.column_stack([v[c] for c in columns])
    return values[np.all(np.isfinite(values), axis=1)]


def compare_samples(a, b, columns=_DEFAULT_COLUMNS, *, n_permutations=999, energy_max_stars=2000,
                    random_state=None):
    """Two-sample comparison of abundance distributions, e.g. on-bar against off-bar stars.

    Per column: medians with their uncertainty ``1.253 std / sqrt(N)``, the difference of medians
    and its uncertainty, and the two-sample Kolmogorov-Smirnov test (:func:`scipy.stats.ks_2samp`).
    Jointly over all columns (e.g. the [Mg/Fe] vs [Fe/H] plane): the energy distance
    (:func:`energy_distance`, in dex) with a permutation p-value, a test sensitive to any difference
    of the 2-D distributions (location, spread or shape), not only of the marginals.

    Parameters
    ----------
    a, b : pandas.DataFrame
        The two samples (e.g. ``on_off_bar_samples(...).on`` and ``.off``); not modified.
    columns : sequence of str, default=("FE_H_NEW", "MG_FE_NEW")
        Abundance columns (dex), by default the calibrated [Fe/H] and [Mg/Fe]. Stars with a NaN in
        any of them are left out.
    n_permutations : int, default=999
        Random relabellings of the pooled stars for the energy-distance p-value
        ``(1 + #{E_perm >= E_obs}) / (1 + n_permutations)``; 0 skips the test.
    energy_max_stars : int or None, default=2000
        At most this many stars of each sample enter the energy distance and its permutations (a
        random subsample, drawn with ``random_state``, of a larger sample): memory grows as the
        square of the pooled size (2000 + 2000 stars: 128 MB). ``None``: every star. Medians and
        KS tests always use every star.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsamples and the permutations.

    Returns
    -------
    summary : sklearn.utils.Bunch
        ``table``: DataFrame indexed by column with ``median_a``, ``median_err_a``, ``median_b``,
        ``median_err_b``, ``median_diff`` (a - b) and ``median_diff_err`` (dex), ``ks_statistic``,
        ``ks_pvalue``; ``energy_distance`` (dex), ``energy_pvalue`` (NaN when skipped), ``n_a``,
        ``n_b`` (stars used), ``n_energy_a``, ``n_energy_b`` (stars in the energy distance) and
        ``columns``.

    Raises
    ------
    TooFewStarsError
        If a sample has fewer than 2 stars with finite values of every column.
    """
    columns = [columns] if isinstance(columns, str) else list(columns)
    A = _finite_rows(a, columns, "compare_samples (first sample)")
    B = _finite_rows(b, columns, "compare_samples (second sample)")
    if A.shape[0] < 2 or B.shape[0] < 2:
        raise TooFewStarsError(
            f"compare_samples needs at least 2 stars with finite {columns} in each sample; got "
            f"{A.shape[0]} and {B.shape[0]}"
        )
    rows = {}
    for j, col in enumerate(columns):
        (ma,), (ea,), _ = grouped_median_and_error(np.zeros(A.shape[0], dtype=int), A[:, j], 1)
        (mb,), (eb,), _ = grouped_median_and_error(np.zeros(B.shape[0], dtype=int), B[:, j], 1)
        ks = stats.ks_2samp(A[:, j], B[:, j])
        rows[col] = {"median_a": ma, "median_err_a": ea, "median_b": mb, "median_err_b": eb,
                     "median_diff": ma - mb, "median_diff_err": np.hypot(ea, eb),
                     "ks_statistic": float(ks.statistic), "ks_pvalue": float(ks.pvalue)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "column"
    rng = check_random_state(random_state)
    A_e, B_e = (s if energy_max_stars is None or s.shape[0] <= energy_max_stars
                else s[np.sort(rng.choice(s.shape[0], int(energy_max_stars), replace=False))]
                for s in (A, B))
    D = _pairwise(np.vstack([A_e, B_e]))
    observed = _energy_statistics(D, A_e.shape[0])[0]
    pvalue = _permutation_pvalue(D, A_e.shape[0], observed, n_permutations, rng) if n_permutations else np.nan
    return Bunch(
        table=table,
        energy_distance=float(np.sqrt(max(observed, 0.0))),
        energy_pvalue=float(pvalue),
        n_a=A.shape[0],
        n_b=B.shape[0],
        n_energy_a=A_e.shape[0],
        n_energy_b=B_e.shape[0],
        columns=columns,
    )
