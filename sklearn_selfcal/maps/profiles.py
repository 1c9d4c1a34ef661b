"""Radial abundance profiles as drawn: the points of a fit (Figure 8) and the stacking of Figure 7.

Both read the table of :func:`sklearn_selfcal.gradients.radial_abundance_profile`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from .._paper import abundance_error_column
from .._validation import check_table, require_columns, validate_catalogue

__all__ = ["profile_points", "radial_gradient_layout"]


def _population_rows(profile, population, columns, what):
    """Mask of the rows of ``population``, after checking that the profile has them and ``columns``."""
    profile = check_table(profile, what)
    require_columns(profile.columns, ["population", *columns], what=what)
    rows = (profile["population"] == population).to_numpy()
    if not rows.any():
        raise ValueError(f"{what}: profile has no rows of population {population!r}")
    return rows


def profile_points(profile, column, *, population="low_alpha", radius="R_MEDIAN"):
    """The points of a radial profile that a fit uses and a figure draws.

    The rows of ``population`` with a finite radius, a finite median and a positive finite
    uncertainty: the points a :class:`~sklearn_selfcal.BrokenPowerLawRegressor` can be fitted to
    with ``sigma=err``, and the points Figure 8 draws, so that the figure shows the fitted points.

    Parameters
    ----------
    profile : pandas.DataFrame
        Output of :func:`sklearn_selfcal.gradients.radial_abundance_profile`.
    column : str
        Abundance column of ``profile`` (dex); its uncertainty is ``column + "_ERR"``.
    population : str, default="low_alpha"
        Rows of ``profile`` to use (its ``population`` column).
    radius : str, default="R_MEDIAN"
        Radius column (kpc): ``"R_MEDIAN"`` (median radius of each bin's stars) or ``"R"`` (bin
        centre).

    Returns
    -------
    points : sklearn.utils.Bunch
        ``R`` (kpc), ``y`` and ``err`` (dex), arrays of the same length, in the profile's order, and
        ``index`` (the profile's index labels of those rows).

    Examples
    --------
    >>> import pandas as pd
    >>> profile = pd.DataFrame({"population": "low_alpha", "R": [1.0, 3.0, 5.0],
    ...                         "R_MEDIAN": [1.2, 2.9, 5.3], "FE_H": [0.2, float("nan"), 0.1],
    ...                         "FE_H_ERR": [0.01, 0.02, 0.01]})
    >>> profile_points(profile, "FE_H").R.tolist()
    [1.2, 5.3]
    """
    error = abundance_error_column(column)
    profile = check_table(profile, "profile_points")
    rows = _population_rows(profile, population, [radius, column, error], "profile_points")
    v = validate_catalogue(profile, [radius, column, error], what="profile_points", kpc=(radius,))
    R, y, err = (v[c] for c in (radius, column, error))
    with np.errstate(invalid="ignore"):
        ok = rows & np.isfinite(R) & np.isfinite(y) & np.isfinite(err) & (err > 0)
    return Bunch(R=R[ok], y=y[ok], err=err[ok], index=profile.index[ok])


def radial_gradient_layout(profile, columns, *, population="low_alpha", step=0.15, radius="R"):
    """Slopes, panels and vertical offsets for stacking radial abundance profiles (Figure 7).

    Every profile's slope is a weighted least-squares line (weights ``1 / err**2``) through its
    points (:func:`profile_points`). Abundances with a non-negative slope go to panel 0 (left), the
    others to panel 1 (right); within a panel they are ordered by slope, highest first, and shifted
    so that the ``i``-th curve (counted from the bottom) has its weighted mean at ``i * step``.

    Parameters
    ----------
    profile : pandas.DataFrame
        Output of :func:`sklearn_selfcal.gradients.radial_abundance_profile`.
    columns : sequence of str
        Abundance columns of ``profile`` to lay out.
    population : str, default="low_alpha"
        Rows of ``profile`` to use (its ``population`` column).
    step : float, default=0.15
        Vertical spacing of consecutive curves (dex).
    radius : str, default="R"
        Radius column (kpc): ``"R"`` (bin centres) or ``"R_MEDIAN"``.

    Returns
    -------
    layout : pandas.DataFrame
        Indexed by column, sorted by slope (descending): ``slope`` (dex/kpc), ``panel`` (0 or 1),
        ``offset`` (dex, to add to the medians), ``n_bins`` (points used).
    """
    columns = list(columns)
    _population_rows(profile, population, [radius, *columns, *map(abundance_error_column, columns)],
                     "radial_gradient_layout")
    rows = []
    for col in columns:
        p = profile_points(profile, col, population=population, radius=radius)
        if p.R.size < 2:
            rows.append((col, np.nan, np.nan, int(p.R.size)))
            continue
        w = 1.0 / p.err**2
        slope, _intercept = np.polyfit(p.R, p.y, 1, w=np.sqrt(w))
        rows.append((col, slope, np.sum(w * p.y) / np.sum(w), int(p.R.size)))
    layout = pd.DataFrame(rows, columns=["column", "slope", "level", "n_bins"]).set_index("column")
    layout = layout.sort_values("slope", ascending=False, na_position="last")
    layout["panel"] = np.where(layout["slope"] >= 0, 0, 1)
    offsets = np.full(len(layout), np.nan)
    for panel in (0, 1):
        idx = np.flatnonzero((layout["panel"].to_numpy() == panel) & np.isfinite(layout["slope"].to_numpy()))
        # highest slope on top: the i-th from the bottom is the (n - 1 - i)-th in descending order
        for rank, i in enumerate(idx[::-1]):
            offsets[i] = rank * step - layout["level"].iloc[i]
    layout["offset"] = offsets
    return layout[["slope", "panel", "offset", "n_bins"]]
