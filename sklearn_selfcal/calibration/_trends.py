"""Residual trends with nuisance parameters, before and after calibration, and their significance.

Plain functions on arrays and tables: :func:`binned_residuals` turns per-star residuals into the
long table of :meth:`NuisanceCalibrator.nuisance_trend`, and :func:`trend_summary` condenses that
table into one row per abundance and nuisance column (what the run writes to its outputs and the
figures of the paper's Figs. 2-4 style draw from).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .._kernels import categorical as _categorical
from .._kernels.binned import equal_count_bins
from . import _inputs

__all__ = ["columns_to_bin", "binned_residuals", "trend_summary"]


def columns_to_bin(X, feature_names, columns, by, kinds):
    """``columns`` of ``X`` as ``(name, kind, values)`` (categorical as a nuisance would be or as
    ``kinds``, the fitted nuisances' kinds, says) and ``by`` as ``(name, values)``."""
    pos = _inputs.positions(columns, feature_names, X.shape[1], "columns")
    binned = []
    for p, name in zip(pos, _inputs.display_names(pos, feature_names)):
        if _inputs.is_categorical(X, p) or kinds.get(name) == _inputs.CATEGORICAL:
            binned.append((name, _inputs.CATEGORICAL, _inputs.column_series(X, p)))
        else:
            binned.append((name, _inputs.CONTINUOUS, _inputs.values(X, [p], [name])[:, 0]))
    if by is None:
        return binned, (None, None)
    (pb,) = _inputs.positions([by], feature_names, X.shape[1], "by")
    name = _inputs.display_names([pb], feature_names)[0]
    return binned, (name, _inputs.values(X, [pb], [name])[:, 0])


def _weighted_bins(group, n_groups, resid, w):
    """Per group: count, weighted mean and its scatter-based standard error."""
    ok = (group >= 0) & (w > 0) & np.isfinite(resid)
    g, r, w = group[ok], resid[ok], w[ok]
    n = np.bincount(g, minlength=n_groups)
    sw = np.bincount(g, weights=w, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(g, weights=w * r, minlength=n_groups) / sw
        dev2 = np.bincount(g, weights=w**2 * (r - mean[g]) ** 2, minlength=n_groups)
        stderr = np.where(n > 1, np.sqrt(dev2 * n / np.maximum(n - 1, 1)) / sw, np.nan)
    return n, mean, stderr


def binned_residuals(abundances, stages, weights, binned, *, n_bins=4, by=(None, None),
                     n_by_bins=4):
    """Weighted mean residual of every abundance in bins of every column, per stage.

    Parameters
    ----------
    abundances : list of str
        Abundance names (columns of the residual arrays).
    stages : dict of str to ndarray of shape (n, K)
        Residuals (dex) per stage, e.g. ``{"before": ..., "after": ...}``.
    weights : ndarray of shape (n, K)
        Weights of every value (``1/sigma^2``), 0 for values that do not count.
    binned : list of (name, kind, values)
        Columns to bin in: ``kind`` ``"continuous"`` (float values, equal-count bins) or
        ``"categorical"`` (one bin per category; missing values do not count).
    n_bins : int
    by : (str or None, ndarray or None)
        Name and values of a column splitting the stars further (equal-count bins).
    n_by_bins : int

    Returns
    -------
    trend : DataFrame
        See :meth:`NuisanceCalibrator.nuisance_trend`.
    """
    used = (weights > 0).any(axis=1)
    by_name, by_values = by
    n_groups_by, by_bin, by_ranges = 1, np.zeros(len(used), dtype=int), None
    if by_name is not None:
        rows_by = used & np.isfinite(by_values)
        by_bin, by_ranges = equal_count_bins(by_values, n_by_bins, where=rows_by)
        n_groups_by = n_by_bins
    frames = []
    for name, kind, values in binned:
        if kind == "continuous":
            ok = used & np.isfinite(values)
            labels, ranges = equal_count_bins(values, n_bins, where=ok)
            med = [float(np.median(values[labels == b])) for b in range(n_bins)]
            bins = pd.DataFrame({"bin": range(n_bins),
                                 "label": [f"{lo:.4g} to {hi:.4g}" for lo, hi in ranges],
                                 "low": ranges[:, 0], "high": ranges[:, 1], "median": med})
        else:
            categories = _categorical.categories_of(pd.Series(values)[used])
            labels = _categorical.encode(values, categories)
            labels[~used] = -1
            bins = pd.DataFrame({"bin": range(len(categories)), "label": categories,
                                 "low": np.nan, "high": np.nan, "median": np.nan})
        nb = len(bins)
        group = np.where((labels >= 0) & (by_bin >= 0), by_bin * nb + labels, -1)
        for k, abund in enumerate(abundances):
            for stage, resid in stages.items():
                n, mean, stderr = _weighted_bins(group, nb * n_groups_by, resid[:, k],
                                                 weights[:, k])
                part = pd.concat([bins] * n_groups_by, ignore_index=True)
                if by_name is not None:
                    part.insert(0, "by_bin", np.repeat(np.arange(n_groups_by), nb))
                    part.insert(1, "by_low", np.repeat(by_ranges[:, 0], nb))
                    part.insert(2, "by_high", np.repeat(by_ranges[:, 1], nb))
                part.insert(0, "abundance", abund)
                part.insert(1, "nuisance", name)
                part.insert(2, "kind", kind)
                part.insert(3, "stage", stage)
                part["n_stars"] = n
                part["mean_residual"] = np.where(n > 0, mean, np.nan)
                part["stderr"] = stderr
                with np.errstate(invalid="ignore", divide="ignore"):
                    part["pull"] = np.where(stderr > 0, mean / stderr, np.nan)
                frames.append(part)
    return pd.concat(frames, ignore_index=True)


def _line(x, y, err):
    """Weighted least-squares slope of y on x and its standard error (NaN if undetermined)."""
    ok = np.isfinite(x) & np.isfinite(y) & (err > 0)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0:
        return np.nan, np.nan
    w = 1.0 / err[ok] ** 2
    xm = np.average(x[ok], weights=w)
    sxx = np.sum(w * (x[ok] - xm) ** 2)
    return float(np.sum(w * (x[ok] - xm) * y[ok]) / sxx), float(1.0 / np.sqrt(sxx))


def _level_free_chi2(sub):
    """Chi-square of the bin means about their weighted mean level (per ``by`` group)."""
    chi2, dof = 0.0, 0
    groups = sub.groupby("by_bin") if "by_bin" in sub else [(None, sub)]
    for _, g in groups:
        g = g[np.isfinite(g["pull"])]
        if len(g) < 2:
            continue
        w = 1.0 / g["stderr"].to_numpy() ** 2
        m = g["mean_residual"].to_numpy()
        level = np.sum(w * m) / np.sum(w)
        chi2 += float(np.sum(w * (m - level) ** 2))
        dof += len(g) - 1
    return chi2, dof


def trend_summary(trend, *, alpha=0.01):
    """Per abundance and column: the size of the nuisance trend before and after calibration, and
    whether a significant trend remains.

    Parameters
    ----------
    trend : DataFrame
        Output of :meth:`NuisanceCalibrator.nuisance_trend`.
    alpha : float, default 0.01
        Significance level for ``residual_trend``.

    Returns
    -------
    summary : DataFrame
        One row per (abundance, nuisance), in input order, with columns ``abundance``,
        ``nuisance``, ``kind``, ``n_bins``; ``span_before``, ``span_after`` (dex; largest minus
        smallest bin mean); for continuous columns ``slope_before``, ``slope_after`` and
        ``slope_after_err`` (dex per unit of the column; weighted line through the bin means
        against the bins' medians, with its standard error) and ``slope_after_pull``;
        ``max_abs_pull_after``; ``chi2_after`` and ``p_value_after`` (the "after" bin means
        against zero, chi-square with ``n_bins`` degrees of freedom); ``chi2_trend_after`` and
        ``p_value_trend_after`` (against their weighted mean level: a trend, not an offset, with
        ``n_bins - 1`` degrees of freedom); and ``residual_trend`` (``p_value_trend_after <
        alpha``). For a categorical column the bin means are the offsets of the categories.

    Notes
    -----
    On the stars the calibration was fitted on, the "after" bins of a nuisance that is in the
    model are least-squares residuals and the test is conservative; use held-out stars (or
    ``by``) for a stringent test.  Sort by ``p_value_trend_after`` to see the abundances that
    keep a trend (the paper's [Al/Fe]).
    """
    rows = []
    for (abund, nuis), sub in trend.groupby(["abundance", "nuisance"], sort=False):
        before = sub[sub["stage"] == "before"]
        after = sub[(sub["stage"] == "after") & np.isfinite(sub["pull"])]
        kind = sub["kind"].iloc[0]
        chi2 = float((after["pull"] ** 2).sum())
        chi2_trend, dof = _level_free_chi2(after)
        row = {
            "abundance": abund, "nuisance": nuis, "kind": kind, "n_bins": len(after),
            "span_before": before["mean_residual"].max() - before["mean_residual"].min(),
            "span_after": after["mean_residual"].max() - after["mean_residual"].min(),
            "slope_before": np.nan, "slope_after": np.nan, "slope_after_err": np.nan,
            "slope_after_pull": np.nan,
            "max_abs_pull_after": float(after["pull"].abs().max()) if len(after) else np.nan,
            "chi2_after": chi2,
            "p_value_after": float(stats.chi2.sf(chi2, len(after))) if len(after) else np.nan,
            "chi2_trend_after": chi2_trend,
            "p_value_trend_after": float(stats.chi2.sf(chi2_trend, dof)) if dof else np.nan,
        }
        if kind == "continuous":
            row["slope_before"] = _line(before["median"].to_numpy(),
                                        before["mean_residual"].to_numpy(),
                                        before["stderr"].to_numpy())[0]
            slope, err = _line(after["median"].to_numpy(), after["mean_residual"].to_numpy(),
                               after["stderr"].to_numpy())
            row.update(slope_after=slope, slope_after_err=err,
                       slope_after_pull=slope / err if err > 0 else np.nan)
        row["residual_trend"] = bool(row["p_value_trend_after"] < alpha)
        rows.append(row)
    return pd.DataFrame(rows)
