"""Abundance trends with orbit and position in groups of a nuisance parameter (Figures 2-4).

The paper groups stars in four equal-count bins of log g; the same diagnostics work for any
nuisance the calibration removes: a continuous one (log g, Teff: equal-count bins) or a categorical
one (the telescope, ``"apo25m"`` / ``"lco25m"``: one group per category).
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from .._kernels import binned as _binned
from .._paper import calibrated_name
from .._validation import (TooFewStarsError, check_min_stars, check_table, clean_column,
                           require_columns, validate_catalogue)

__all__ = ["TREND_FEATURES", "logg_trends", "nuisance_groups"]

#: Features of the paper's Figures 2-4 and their axis labels with units.
TREND_FEATURES = {
    "J_R": r"$J_R$ [kpc km s$^{-1}$]",
    "J_z": r"$J_z$ [kpc km s$^{-1}$]",
    "L_z": r"$L_z$ [kpc km s$^{-1}$]",
    "R": r"$R_{\rm GC}$ [kpc]",
    "z": r"$z_{\rm GC}$ [kpc]",
}


def _is_categorical(series):
    """Auto-detection: booleans and columns none of whose values is a number are categories."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return True
    if pd.api.types.is_numeric_dtype(series.dtype):
        return False
    raw = series.to_numpy(dtype=object)
    present = ~pd.isna(raw)
    converted = pd.to_numeric(pd.Series(raw[present], dtype=object), errors="coerce")
    return bool(present.any()) and bool(converted.isna().all())


def nuisance_groups(frame, column, *, categorical=None, n_bins=4, max_categories=10):
    """Group the stars by a nuisance parameter: equal-count bins, or one group per category.

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue; not modified.
    column : str
        The nuisance column, e.g. ``"LOGG"`` (dex), ``"TEFF"`` (K) or ``"TELESCOPE"``.
    categorical : bool or None, default=None
        ``True``: one group per distinct value; ``False``: ``n_bins`` equal-count bins of the
        values (:func:`~sklearn_selfcal._kernels.binned.equal_count_bins`); ``None``: categorical
        for booleans and for columns none of whose values is a number (text such as telescope
        names), continuous otherwise.
    n_bins : int, default=4
        Number of equal-count bins of a continuous nuisance.
    max_categories : int, default=10
        Largest number of categories of a categorical nuisance (more is an error: a column such as
        a star identifier is not a nuisance).

    Returns
    -------
    groups : sklearn.utils.Bunch
        ``labels`` (int, shape (n_stars,), the group of every star, -1 for a missing value),
        ``n_groups``, ``categorical`` (bool), ``categories`` (list of the category values, ``None``
        for bins), ``lower``, ``upper`` (smallest and largest value in every bin, NaN for
        categories) and ``column``.

    Raises
    ------
    TooFewStarsError
        If fewer stars than bins (or no star at all) have a value.
    ValueError
        If a continuous nuisance holds text (naming the column and rows) or a categorical one has
        more than ``max_categories`` categories.

    Examples
    --------
    >>> import pandas as pd
    >>> stars = pd.DataFrame({"TELESCOPE": ["lco25m", "apo25m", None, "apo25m"],
    ...                       "LOGG": [1.0, 2.0, 1.5, 0.5]})
    >>> groups = nuisance_groups(stars, "TELESCOPE")
    >>> groups.labels.tolist(), groups.categories
    ([1, 0, -1, 0], ['apo25m', 'lco25m'])
    >>> nuisance_groups(stars, "LOGG", n_bins=2).labels.tolist()
    [0, 1, 1, 0]
    """
    frame = check_table(frame, "nuisance_groups")
    require_columns(frame.columns, [column], what="nuisance_groups")
    series = frame[column]
    categorical = _is_categorical(series) if categorical is None else bool(categorical)
    if categorical:
        raw = series.to_numpy(dtype=object)
        labels, categories = _binned.category_bins(raw, where=~pd.isna(raw))
        if categories.size == 0:
            raise TooFewStarsError(f"column {column!r} has no value to group the stars by")
        if categories.size > max_categories:
            raise ValueError(f"column {column!r} has {categories.size} categories, more than "
                             f"max_categories={max_categories}; is it a nuisance parameter?")
        n_groups = int(categories.size)
        lower = upper = np.full(n_groups, np.nan)
        categories = categories.tolist()
    else:
        values = clean_column(series, column, what="nuisance_groups")
        n_finite = int(np.isfinite(values).sum())
        if isinstance(n_bins, numbers.Integral) and n_finite < n_bins:
            raise TooFewStarsError(f"{n_bins} equal-count bins of {column!r} need at least {n_bins} "
                                   f"stars with a finite value; got {n_finite}")
        labels, ranges = _binned.equal_count_bins(values, n_bins)
        n_groups, lower, upper, categories = int(n_bins), ranges[:, 0], ranges[:, 1], None
    return Bunch(labels=labels, n_groups=n_groups, categorical=categorical, categories=categories,
                 lower=lower, upper=upper, column=column)


def _feature_edges(values, feature, n_bins, feature_ranges, percentile_range):
    if feature in feature_ranges:
        lo, hi = feature_ranges[feature]
    else:
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            raise TooFewStarsError(f"column {feature!r} has no finite values")
        lo, hi = np.percentile(finite, percentile_range)
    if not hi > lo:
        hi = lo + 1.0
    return np.linspace(lo, hi, n_bins + 1)


def logg_trends(frame, abundance, *, calibrated=None, features=tuple(TREND_FEATURES), nuisance="LOGG",
                categorical=None, n_nuisance_bins=4, max_categories=10, n_feature_bins=20,
                feature_ranges=None, percentile_range=(1.0, 99.0), min_stars=10):
    """Median abundance against orbit and position in groups of a nuisance parameter (Figures 2-4).

    Stars are grouped by ``nuisance`` (:func:`nuisance_groups`): the paper's four equal-count bins
    of log g by default, one group per category for a categorical nuisance such as the telescope.
    Within each group, the median of the reported abundance (``stage="input"``) and of the
    calibrated one (``stage="calibrated"``) is computed in bins of every feature. Trends that differ
    between groups at fixed orbit are the systematics the self-calibration removes.

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue with ``nuisance``, the features and both abundance columns; not modified.
    abundance : str
        Reported abundance column (dex), e.g. ``"FE_H"``.
    calibrated : str or None, default=None
        Calibrated column (dex); ``None``: ``calibrated_name(abundance)`` (``"FE_H_NEW"``).
    features : sequence of str, default=("J_R", "J_z", "L_z", "R", "z")
        Columns on the horizontal axes (kpc km/s or kpc).
    nuisance : str, default="LOGG"
        The nuisance column: log g (dex), Teff (K), the telescope, ...
    categorical : bool or None, default=None
        Whether ``nuisance`` is categorical; ``None``: detected (:func:`nuisance_groups`).
    n_nuisance_bins : int, default=4
        Number of equal-count bins of a continuous nuisance (over stars with a finite value).
    max_categories : int, default=10
        Largest number of categories of a categorical nuisance.
    n_feature_bins : int, default=20
        Number of equal-width bins along each feature.
    feature_ranges : dict of str to (float, float) or None, default=None
        Range of the bins of a feature (its units); features not given use ``percentile_range``.
    percentile_range : tuple of 2 float, default=(1, 99)
        Default range of a feature: these percentiles of its finite values over all stars (so a few
        extreme orbits do not stretch the axis).
    min_stars : int, default=10
        Feature bins with fewer stars (finite abundance) in a group get NaN.

    Returns
    -------
    trends : pandas.DataFrame
        Tidy table, one row per (stage, feature, nuisance group, feature bin): ``stage`` ("input"
        or "calibrated"), ``column`` (the abundance column), ``feature``, ``nuisance`` (the
        nuisance column), ``nuisance_group`` (0 = lowest values or first category),
        ``nuisance_category`` (the category, ``None`` for bins), ``nuisance_min``, ``nuisance_max``
        (the bin's range in the nuisance's units, NaN for categories), ``feature_min``,
        ``feature_max``, ``feature_centre`` (feature units), ``median`` and ``median_err``
        (``1.253 std / sqrt(N)``, dex) and ``n_stars``.

    Raises
    ------
    KeyError
        Naming missing columns.
    TooFewStarsError
        If too few stars have a nuisance value to make the groups, or a feature has no finite value.
    ValueError
        Naming a column that holds text where numbers are expected.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> stars = pd.DataFrame({"R": rng.uniform(4, 12, 400), "FE_H": rng.normal(0, 0.1, 400),
    ...                       "TELESCOPE": rng.choice(["apo25m", "lco25m"], 400)})
    >>> stars["FE_H_CAL"] = stars["FE_H"]
    >>> trends = logg_trends(stars, "FE_H", calibrated="FE_H_CAL", features=["R"], nuisance="TELESCOPE",
    ...                      n_feature_bins=4)
    >>> sorted(set(trends["nuisance_category"]))
    ['apo25m', 'lco25m']
    >>> len(trends)  # 2 stages x 1 feature x 2 telescopes x 4 bins of R
    16
    """
    calibrated = calibrated_name(abundance) if calibrated is None else calibrated
    features = list(features)
    frame = check_table(frame, "logg_trends")
    require_columns(frame.columns, [nuisance, abundance, calibrated, *features], what="logg_trends")
    min_stars = check_min_stars(min_stars, 2)
    if not isinstance(n_feature_bins, numbers.Integral) or n_feature_bins < 1:
        raise ValueError(f"n_feature_bins must be a positive integer; got {n_feature_bins!r}")
    feature_ranges = {} if feature_ranges is None else dict(feature_ranges)
    groups = nuisance_groups(frame, nuisance, categorical=categorical, n_bins=n_nuisance_bins,
                             max_categories=max_categories)
    n_groups = groups.n_groups * n_feature_bins
    gb, fb = np.divmod(np.arange(n_groups), n_feature_bins)
    category = None if groups.categories is None else np.asarray(groups.categories, dtype=object)[gb]
    stages = (("input", abundance), ("calibrated", calibrated))
    v = validate_catalogue(frame, [abundance, calibrated, *features], what="logg_trends")
    abundances = {col: v[col] for _, col in stages}
    parts = []
    for feature in features:
        f = v[feature]
        edges = _feature_edges(f, feature, n_feature_bins, feature_ranges, percentile_range)
        fbin = _binned.bin_index(f, edges)
        group = np.where((groups.labels >= 0) & (fbin >= 0), groups.labels * n_feature_bins + fbin, -1)
        for stage, col in stages:
            med, err, n = _binned.grouped_median_and_error(group, abundances[col], n_groups)
            ok = n >= min_stars
            parts.append(pd.DataFrame({
                "stage": stage,
                "column": col,
                "feature": feature,
                "nuisance": nuisance,
                "nuisance_group": gb,
                "nuisance_category": category,
                "nuisance_min": groups.lower[gb],
                "nuisance_max": groups.upper[gb],
                "feature_min": edges[fb],
                "feature_max": edges[fb + 1],
                "feature_centre": 0.5 * (edges[fb] + edges[fb + 1]),
                "median": np.where(ok, med, np.nan),
                "median_err": np.where(ok, err, np.nan),
                "n_stars": n,
            }))
    return pd.concat(parts, ignore_index=True)
