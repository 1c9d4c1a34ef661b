"""Binned maps and diagnostics of the Milky Way disk (Eilers et al. 2022, sections 4 and 5.2).

The computations behind the paper's figures, as plain functions returning arrays, Bunches of arrays
and tidy DataFrames (the figures themselves are drawn by :mod:`sklearn_selfcal.plotting`):

- face-on maps: a statistic (median, mean or count) of a column in square bins of the Galactocentric
  ``(x, y)`` plane, kept where a bin holds at least ``min_stars`` stars (Figures 1, 5, 6, 14-17),
  mean-velocity vectors per bin (Figure 5), calibrated-minus-input difference maps (Figures 16-17)
  and the 7th-93rd percentile colour limits;
- the Galactic bar: its outline and an on-bar membership test;
- the on-bar versus off-bar comparison of section 5.2 (Figure 13);
- the [alpha/M] vs [Fe/H] plane in spatial and in action bins (Figures 9-10);
- abundance trends with orbit and position in equal-count log g bins (Figures 2-4);
- the layout of the stacked radial gradients of Figure 7.

Conventions: astropy's Galactocentric frame as written by
:class:`~sklearn_selfcal.ActionTransformer` (columns ``x, y, z`` in kpc, ``v_x, v_y, v_z`` in km/s,
``R`` in kpc, ``J_R, L_z, J_z`` in kpc km/s); the Sun at ``(x, y) = (-8.178, 0)`` kpc, Galactic
rotation with ``v_y > 0`` at the Sun, ``L_z < 0`` for disk stars and positive Galactic longitude on
the ``y > 0`` side. Abundances in dex: APOGEE names for the reported values (``FE_H``, ``MG_FE``, ...)
and ``<X>_NEW`` for the self-calibrated ones (:class:`~sklearn_selfcal.NuisanceCalibrator`).
No function modifies its input.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance
from sklearn.utils import Bunch, check_random_state

from ._kernels import binned as _binned
from ._kernels.binned import equal_count_bins
from ._validation import require_columns
from ._paper import ALPHA_SPLIT, BAR_AXIS_RATIO, R0_KPC
from ._paper import BAR_ANGLE_DEG as BAR_ANGLE
from ._paper import BAR_HALF_LENGTH_KPC as BAR_HALF_LENGTH

__all__ = [
    "ALPHA_SPLIT",
    "BAR_ANGLE",
    "BAR_AXIS_RATIO",
    "BAR_HALF_LENGTH",
    "FIGURE6_ABUNDANCES",
    "SUN_XY",
    "TREND_FEATURES",
    "alpha_column",
    "alpha_iron_by_actions",
    "alpha_iron_by_position",
    "alpha_population_masks",
    "bar_axes",
    "bar_outline",
    "binned_abundance_planes",
    "binned_map",
    "calibrated_abundances",
    "color_limits",
    "compare_samples",
    "energy_distance",
    "equal_count_bins",
    "face_on_map",
    "grid_edges",
    "logg_trends",
    "on_bar",
    "on_off_bar_samples",
    "radial_gradient_layout",
    "velocity_map",
]

#: Galactocentric (x, y) of the Sun (kpc).
SUN_XY = (-R0_KPC, 0.0)
#: The four abundances of the paper's Figure 6 (reported names; ``_NEW`` for the calibrated ones).
FIGURE6_ABUNDANCES = ("FE_H", "MG_FE", "O_FE", "NI_FE")

_STATISTICS = ("median", "mean", "count")


# ---------------------------------------------------------------------------- small helpers


def _column_values(frame, name):
    return frame[name].to_numpy(dtype=float)


def _check_min_stars(min_stars, minimum=1):
    if not isinstance(min_stars, numbers.Integral) or isinstance(min_stars, bool) or min_stars < minimum:
        raise ValueError(f"min_stars must be an integer >= {minimum}; got {min_stars!r}")
    return int(min_stars)


def _check_positive(value, name):
    if not (isinstance(value, numbers.Real) and np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number; got {value!r}")
    return float(value)


def _check_edges(edges, name):
    edges = np.asarray(edges, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError(f"{name} must be at least two increasing bin edges; got {edges!r}")
    return edges


def alpha_column(frame):
    """The [alpha/M] column used to split low- and high-alpha stars.

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue; not modified.

    Returns
    -------
    name : str
        ``"ALPHA_M_NEW"`` (the self-calibrated [alpha/M], as the paper splits) when present, else the
        reported ``"ALPHA_M"``.

    Raises
    ------
    KeyError
        If neither column is present.
    """
    for name in ("ALPHA_M_NEW", "ALPHA_M"):
        if name in frame.columns:
            return name
    require_columns(frame.columns, ["ALPHA_M_NEW or ALPHA_M"], what="alpha split")


def alpha_population_masks(frame, *, column=None, split=ALPHA_SPLIT):
    """Boolean masks of the low- and high-alpha populations.

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue; not modified.
    column : str or None, default=None
        [alpha/M] column (dex); ``None``: :func:`alpha_column` (``ALPHA_M_NEW`` if present).
    split : float, default=0.12
        Low-alpha stars have ``[alpha/M] < split``, high-alpha stars ``[alpha/M] >= split`` (dex), as
        :func:`sklearn_selfcal.gradients.radial_abundance_profile` splits. Stars with NaN [alpha/M]
        are in neither.

    Returns
    -------
    masks : dict of str to ndarray of bool
        ``{"all": ..., "low_alpha": ..., "high_alpha": ...}``, each of shape (n_stars,).
    """
    column = alpha_column(frame) if column is None else column
    require_columns(frame.columns, [column], what="alpha split")
    alpha = _column_values(frame, column)
    return {
        "all": np.ones(alpha.size, dtype=bool),
        "low_alpha": alpha < split,
        "high_alpha": alpha >= split,
    }


def calibrated_abundances(frame, suffix="_NEW"):
    """Reported abundance columns that have a calibrated ``<X>_NEW`` counterpart in ``frame``.

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue; not modified.
    suffix : str, default="_NEW"
        Suffix of the calibrated columns (:class:`~sklearn_selfcal.NuisanceCalibrator`'s).

    Returns
    -------
    names : list of str
        Reported names ``X`` (e.g. ``"FE_H"``, ``"MG_FE"``; ``ALPHA_M`` excluded, it only splits the
        populations) such that both ``X`` and ``X + suffix`` are columns, in ``frame``'s order.
    """
    cols = set(frame.columns)
    return [
        c[: -len(suffix)]
        for c in frame.columns
        if c.endswith(suffix) and c[: -len(suffix)] in cols and c[: -len(suffix)] not in ("ALPHA_M", "M_H")
    ]


# ---------------------------------------------------------------------------- face-on maps


def grid_edges(low, high, bin_size):
    """Bin edges on multiples of ``bin_size`` covering ``[low, high]``.

    Edges sit on integer multiples of ``bin_size`` so that the Galactic centre (0) is always a bin
    corner and maps made with the same bin size share their grid.

    Parameters
    ----------
    low, high : float
        Range to cover (kpc); ``low <= high``.
    bin_size : float
        Bin width (kpc), positive.

    Returns
    -------
    edges : ndarray of float
        ``floor(low / bin_size) * bin_size, ..., (floor(high / bin_size) + 1) * bin_size``; every
        value in ``[low, high]`` falls inside a half-open bin.
    """
    bin_size = _check_positive(bin_size, "bin_size")
    if not (np.isfinite(low) and np.isfinite(high) and low <= high):
        raise ValueError(f"grid_edges needs finite low <= high; got low={low!r}, high={high!r}")
    first = int(np.floor(low / bin_size))
    last = int(np.floor(high / bin_size)) + 1
    first -= first * bin_size > low  # guard against rounding in the divisions
    last += last * bin_size <= high
    return np.arange(first, last + 1) * bin_size


def _edges_for(values, bin_size, edges, extent):
    if edges is not None:
        return _check_edges(edges, "edges")
    if extent is not None:
        return grid_edges(extent[0], extent[1], bin_size)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return grid_edges(-bin_size, bin_size, bin_size)
    return grid_edges(finite.min(), finite.max(), bin_size)


def binned_map(x, y, values=None, *, bin_size=0.75, statistic="median", min_stars=4,
               x_edges=None, y_edges=None, extent=None):
    """A statistic of ``values`` in square bins of the ``(x, y)`` plane.

    Parameters
    ----------
    x, y : array_like of shape (n_stars,)
        Galactocentric coordinates (kpc). Stars with a non-finite coordinate are left out.
    values : array_like of shape (n_stars,) or None
        The quantity to summarise (e.g. an abundance in dex, a velocity in km/s); stars with a
        non-finite value are left out. ``None`` with ``statistic="count"``.
    bin_size : float, default=0.75
        Bin width in x and y (kpc); ignored along an axis whose edges are given.
    statistic : {"median", "mean", "count"}, default="median"
        What to compute per bin; ``"count"`` is the number of stars.
    min_stars : int, default=4
        Bins with fewer stars get NaN (the paper shows bins with more than 3 stars).
    x_edges, y_edges : array_like or None, default=None
        Explicit bin edges (kpc). ``None``: multiples of ``bin_size`` (:func:`grid_edges`) covering
        ``extent`` or, without it, the stars.
    extent : tuple of 4 float or None, default=None
        ``(x_min, x_max, y_min, y_max)`` (kpc) to cover when edges are not given.

    Returns
    -------
    result : sklearn.utils.Bunch
        ``statistic`` (ndarray of shape (n_y, n_x); row ``i`` is the y bin ``i``, the orientation of
        ``pcolormesh(x_edges, y_edges, statistic)``; NaN where ``count < min_stars``), ``count``
        (stars per bin, int, shape (n_y, n_x)), ``x_edges``, ``y_edges`` (kpc), ``x_centres``,
        ``y_centres`` (kpc), ``n_stars`` (stars in the bins shown, i.e. with ``count >= min_stars``),
        ``statistic_name``, ``min_stars`` and ``bin_size``.
    """
    if statistic not in _STATISTICS:
        raise ValueError(f"statistic must be one of {_STATISTICS}; got {statistic!r}")
    min_stars = _check_min_stars(min_stars)
    bin_size = _check_positive(bin_size, "bin_size")
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if values is None:
        if statistic != "count":
            raise ValueError(f"values are needed for statistic={statistic!r}")
        values = np.zeros_like(x)
    values = np.asarray(values, dtype=float)
    if not (x.shape == y.shape == values.shape and x.ndim == 1):
        raise ValueError(
            f"x, y and values must be 1-D of the same length; got shapes {x.shape}, {y.shape}, "
            f"{values.shape}"
        )
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(values)
    x_ext = None if extent is None else extent[:2]
    y_ext = None if extent is None else extent[2:]
    x_edges = _edges_for(x[keep], bin_size, x_edges, x_ext)
    y_edges = _edges_for(y[keep], bin_size, y_edges, y_ext)
    n_x, n_y = x_edges.size - 1, y_edges.size - 1
    index = np.where(keep, _binned.bin_index_2d(x, y, x_edges, y_edges), -1)
    if statistic == "median":
        stat, count = _binned.grouped_median(index, values, n_x * n_y)
    elif statistic == "mean":
        stat, count = _binned.grouped_mean(index, values, n_x * n_y)
    else:
        count = _binned.grouped_count(index, values, n_x * n_y)
        stat = count.astype(float)
    shown = count >= min_stars
    stat = np.where(shown, stat, np.nan)
    return Bunch(
        statistic=stat.reshape(n_y, n_x),
        count=count.reshape(n_y, n_x),
        x_edges=x_edges,
        y_edges=y_edges,
        x_centres=0.5 * (x_edges[:-1] + x_edges[1:]),
        y_centres=0.5 * (y_edges[:-1] + y_edges[1:]),
        n_stars=int(count[shown].sum()),
        statistic_name=statistic,
        min_stars=min_stars,
        bin_size=bin_size,
    )


def face_on_map(frame, column=None, *, minus=None, where=None, bin_size=0.75, statistic="median",
                min_stars=4, x="x", y="y", extent=None):
    """Face-on map of the disk: a statistic of ``column`` (or ``column - minus``) per (x, y) bin.

    Figures 6 and 14-15 (median abundance, 0.75 kpc bins, more than 3 stars), Figure 5 (mean
    [Fe/H] in 0.5 kpc bins), Figures 16-17 (``column="FE_H_NEW", minus="FE_H"``: calibrated minus
    reported) and Figure 1 (``statistic="count"``).

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per star with columns ``x``, ``y`` (kpc) and ``column``; not modified.
    column : str or None, default=None
        Column to summarise (dex for abundances); ``None`` only with ``statistic="count"``.
    minus : str or None, default=None
        Column subtracted from ``column`` before binning (a difference map).
    where : array_like of bool of shape (n_stars,) or None, default=None
        Stars to use (e.g. a mask from :func:`alpha_population_masks`); ``None``: all.
    bin_size : float, default=0.75
        Bin width (kpc).
    statistic : {"median", "mean", "count"}, default="median"
        Statistic per bin (:func:`binned_map`).
    min_stars : int, default=4
        Bins with fewer stars get NaN.
    x, y : str, default="x", "y"
        Columns of the Galactocentric Cartesian coordinates (kpc).
    extent : tuple of 4 float or None, default=None
        ``(x_min, x_max, y_min, y_max)`` (kpc) the grid covers; ``None``: the stars used.

    Returns
    -------
    result : sklearn.utils.Bunch
        As :func:`binned_map`, plus ``column`` and ``minus``. Stars with a non-finite position or
        value are left out (and not counted).

    Raises
    ------
    KeyError
        Naming the columns missing from ``frame``.
    """
    needed = [x, y] + [c for c in (column, minus) if c is not None]
    require_columns(frame.columns, needed, what="face_on_map")
    if minus is not None and column is None:
        raise ValueError("minus needs a column to subtract it from")
    xs, ys = _column_values(frame, x), _column_values(frame, y)
    values = None if column is None else _column_values(frame, column)
    if minus is not None:
        values = values - _column_values(frame, minus)
    if where is not None:
        where = np.asarray(where, dtype=bool)
        if where.shape != xs.shape:
            raise ValueError(f"where must have shape ({xs.size},); got {where.shape}")
        xs = np.where(where, xs, np.nan)
    result = binned_map(xs, ys, values, bin_size=bin_size, statistic=statistic, min_stars=min_stars,
                        extent=extent)
    result.column = column
    result.minus = minus
    return result


def velocity_map(frame, *, where=None, bin_size=0.5, min_stars=4, x="x", y="y", v_x="v_x", v_y="v_y",
                 extent=None):
    """Mean in-plane velocity vector of the stars in every (x, y) bin (the arrows of Figure 5).

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per star with columns ``x, y`` (kpc) and ``v_x, v_y`` (km/s); not modified.
    where : array_like of bool or None, default=None
        Stars to use; ``None``: all.
    bin_size : float, default=0.5
        Bin width (kpc).
    min_stars : int, default=4
        Bins with fewer stars (with finite position and both velocities) get NaN.
    x, y, v_x, v_y : str
        Column names.
    extent : tuple of 4 float or None, default=None
        ``(x_min, x_max, y_min, y_max)`` (kpc) to cover; ``None``: the stars.

    Returns
    -------
    result : sklearn.utils.Bunch
        ``mean_v_x``, ``mean_v_y`` (km/s, shape (n_y, n_x), NaN where ``count < min_stars``),
        ``count``, ``x_edges``, ``y_edges``, ``x_centres``, ``y_centres`` (kpc), ``n_stars``.
    """
    require_columns(frame.columns, [x, y, v_x, v_y], what="velocity_map")
    vx, vy = _column_values(frame, v_x), _column_values(frame, v_y)
    both = np.isfinite(vx) & np.isfinite(vy)
    ok = both if where is None else both & np.asarray(where, dtype=bool)
    xs = np.where(ok, _column_values(frame, x), np.nan)
    ys = _column_values(frame, y)
    mx = binned_map(xs, ys, vx, bin_size=bin_size, statistic="mean", min_stars=min_stars, extent=extent)
    my = binned_map(xs, ys, vy, bin_size=bin_size, statistic="mean", min_stars=min_stars,
                    x_edges=mx.x_edges, y_edges=mx.y_edges)
    return Bunch(
        mean_v_x=mx.statistic,
        mean_v_y=my.statistic,
        count=mx.count,
        x_edges=mx.x_edges,
        y_edges=mx.y_edges,
        x_centres=mx.x_centres,
        y_centres=mx.y_centres,
        n_stars=mx.n_stars,
        min_stars=mx.min_stars,
        bin_size=mx.bin_size,
    )


def color_limits(image, percentiles=(7.0, 93.0), *, symmetric=False):
    """Colour-bar limits from percentiles of the finite values of a map.

    Parameters
    ----------
    image : array_like
        Map values (e.g. ``face_on_map(...).statistic``); NaN bins are ignored.
    percentiles : tuple of 2 float, default=(7, 93)
        Lower and upper percentiles (the paper's maps use the 7th and 93rd).
    symmetric : bool, default=False
        Return ``(-m, m)`` with ``m`` the larger absolute value of the two percentiles (for difference
        maps drawn with a diverging colour map centred on zero).

    Returns
    -------
    vmin, vmax : float
        Limits in the unit of ``image``; ``(nan, nan)`` for a map without finite values.
    """
    values = np.asarray(image, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, percentiles)
    if symmetric:
        m = max(abs(lo), abs(hi))
        return -float(m), float(m)
    return float(lo), float(hi)


# ---------------------------------------------------------------------------- the bar


def bar_axes(angle=BAR_ANGLE):
    """Unit vectors of the bar's major and minor axes in the (x, y) plane.

    Parameters
    ----------
    angle : float, default=25
        Angle (deg) from the Sun-Galactic centre line to the major axis, towards positive Galactic
        longitude.

    Returns
    -------
    major : ndarray of shape (2,)
        ``(-cos(angle), sin(angle))``: from the Galactic centre to the bar's near end (towards the
        Sun, at ``x < 0``, rotated to ``y > 0``).
    minor : ndarray of shape (2,)
        ``(sin(angle), cos(angle))``, perpendicular to ``major``.
    """
    a = np.deg2rad(angle)
    return np.array([-np.cos(a), np.sin(a)]), np.array([np.sin(a), np.cos(a)])


def bar_outline(half_length=BAR_HALF_LENGTH, axis_ratio=BAR_AXIS_RATIO, angle=BAR_ANGLE, n_points=181):
    """Vertices of the bar's outline: an ellipse centred on the Galactic centre.

    Parameters
    ----------
    half_length : float, default=5
        Half-length of the major axis (kpc).
    axis_ratio : float, default=0.4
        Minor-to-major axis ratio (the minor half-axis is ``axis_ratio * half_length``).
    angle : float, default=25
        Angle (deg) of the major axis from the Sun-centre line, near end at ``y > 0``
        (:func:`bar_axes`).
    n_points : int, default=181
        Number of vertices; the first and last coincide (closed curve).

    Returns
    -------
    xy : ndarray of shape (n_points, 2)
        Galactocentric ``(x, y)`` of the outline (kpc). The first vertex is the near end of the bar.
    """
    major, minor = bar_axes(angle)
    t = np.linspace(0.0, 2.0 * np.pi, int(n_points))
    a, b = half_length, axis_ratio * half_length
    return np.outer(a * np.cos(t), major) + np.outer(b * np.sin(t), minor)


def on_bar(x, y, *, half_length=BAR_HALF_LENGTH, axis_ratio=BAR_AXIS_RATIO, angle=BAR_ANGLE):
    """Whether points lie inside (or on) the bar outline of :func:`bar_outline`.

    Parameters
    ----------
    x, y : array_like
        Galactocentric coordinates (kpc).
    half_length : float, default=5
        Half-length of the major axis (kpc).
    axis_ratio : float, default=0.4
        Minor-to-major axis ratio.
    angle : float, default=25
        Angle of the major axis from the Sun-centre line (deg), near end at ``y > 0``.

    Returns
    -------
    inside : ndarray of bool
        ``(u / a)**2 + (v / b)**2 <= 1`` with ``u, v`` the coordinates along the major and minor axes,
        ``a = half_length``, ``b = axis_ratio * half_length``; False for non-finite points.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    major, minor = bar_axes(angle)
    u = x * major[0] + y * major[1]
    v = x * minor[0] + y * minor[1]
    a, b = half_length, axis_ratio * half_length
    with np.errstate(invalid="ignore"):
        return (u / a) ** 2 + (v / b) ** 2 <= 1.0


# ---------------------------------------------------------------------------- on bar vs off bar


def on_off_bar_samples(frame, *, z_max=0.5, R_max=3.0, R_bin=0.5, z_bin=0.25, random_state=None,
                       x="x", y="y", z="z", R="R", **bar):
    """Spatially matched on-bar and off-bar samples of the inner Galaxy (section 5.2, Figure 13).

    Stars with ``|z| < z_max`` and ``R < R_max`` are split by :func:`on_bar` and binned in
    ``R_bin x z_bin`` cells (``R`` from 0 to ``R_max``, signed ``z`` from ``-z_max`` to ``z_max``).
    In every cell the on-bar stars are randomly subsampled, without replacement, to the number of
    off-bar stars, as the paper (after Lian et al. 2021) does, so both samples have the same number
    and spatial distribution of stars. Where a cell holds more off-bar than on-bar stars, the off-bar
    stars are subsampled to the on-bar count instead (equal counts in every cell); elsewhere every
    off-bar star is kept.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per star with columns ``x, y, z, R`` (kpc); not modified.
    z_max : float, default=0.5
        Half-thickness of the slab (kpc).
    R_max : float, default=3.0
        Outer Galactocentric radius (kpc).
    R_bin, z_bin : float, default=0.5, 0.25
        Cell sizes in R and z (kpc).
    random_state : int, RandomState instance or None, default=None
        Seeds the subsampling; the same seed gives the same samples.
    x, y, z, R : str
        Column names.
    **bar
        ``half_length``, ``axis_ratio``, ``angle`` of the bar (:func:`on_bar`).

    Returns
    -------
    result : sklearn.utils.Bunch
        ``on``, ``off``: the matched samples (rows of ``frame``, index kept, sorted by position in
        ``frame``); ``on_all``, ``off_all``: every on- and off-bar star of the slab before matching;
        ``cells``: DataFrame with one row per cell, columns ``R_MIN, R_MAX, Z_MIN, Z_MAX`` (kpc) and
        ``N_ON, N_OFF`` (stars before matching) and ``N_MATCHED`` (stars kept in each sample).
    """
    require_columns(frame.columns, [x, y, z, R], what="on_off_bar_samples")
    z_max = _check_positive(z_max, "z_max")
    R_max = _check_positive(R_max, "R_max")
    R_bin = _check_positive(R_bin, "R_bin")
    z_bin = _check_positive(z_bin, "z_bin")
    rng = check_random_state(random_state)
    zs, Rs = _column_values(frame, z), _column_values(frame, R)
    with np.errstate(invalid="ignore"):
        slab = (np.abs(zs) < z_max) & (Rs < R_max)
    bar_member = on_bar(_column_values(frame, x), _column_values(frame, y), **bar)
    R_edges = _span_edges(0.0, R_max, R_bin)
    z_edges = _span_edges(-z_max, z_max, z_bin)
    cell = np.where(slab, _binned.bin_index_2d(zs, Rs, z_edges, R_edges), -1)  # row-major (R, z)
    n_cells = (R_edges.size - 1) * (z_edges.size - 1)
    on_idx, off_idx, rows = [], [], []
    for c in range(n_cells):
        on_c = np.flatnonzero((cell == c) & bar_member)
        off_c = np.flatnonzero((cell == c) & ~bar_member)
        n = min(on_c.size, off_c.size)
        iR, iz = divmod(c, z_edges.size - 1)
        rows.append((R_edges[iR], R_edges[iR + 1], z_edges[iz], z_edges[iz + 1], on_c.size, off_c.size, n))
        if n == 0:
            continue
        on_idx.append(on_c if on_c.size == n else rng.choice(on_c, n, replace=False))
        off_idx.append(off_c if off_c.size == n else rng.choice(off_c, n, replace=False))
    on_sel = np.sort(np.concatenate(on_idx)) if on_idx else np.array([], dtype=int)
    off_sel = np.sort(np.concatenate(off_idx)) if off_idx else np.array([], dtype=int)
    cells = pd.DataFrame(rows, columns=["R_MIN", "R_MAX", "Z_MIN", "Z_MAX", "N_ON", "N_OFF", "N_MATCHED"])
    return Bunch(
        on=frame.iloc[on_sel],
        off=frame.iloc[off_sel],
        on_all=frame.iloc[np.flatnonzero(slab & bar_member)],
        off_all=frame.iloc[np.flatnonzero(slab & ~bar_member)],
        cells=cells,
    )


def _span_edges(low, high, step):
    """Edges ``low, low + step, ...`` up to ``high`` (the last bin is shorter if ``step`` does not divide)."""
    n = max(1, int(np.ceil((high - low) / step - 1e-9)))
    edges = low + step * np.arange(n + 1)
    edges[-1] = high
    return edges


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
    """
    a = np.asarray(a, dtype=float).reshape(len(a), -1)
    b = np.asarray(b, dtype=float).reshape(len(b), -1)
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


def compare_samples(a, b, columns=("FE_H_NEW", "MG_FE_NEW"), *, n_permutations=999, random_state=None):
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
        Abundance columns (dex). Stars with a NaN in any of them are left out.
    n_permutations : int, default=999
        Random relabellings of the pooled stars for the energy-distance p-value
        ``(1 + #{E_perm >= E_obs}) / (1 + n_permutations)``; 0 skips the test. Memory and time grow
        as the square of the pooled sample size.
    random_state : int, RandomState instance or None, default=None
        Seeds the permutations.

    Returns
    -------
    summary : sklearn.utils.Bunch
        ``table``: DataFrame indexed by column with ``median_a``, ``median_err_a``, ``median_b``,
        ``median_err_b``, ``median_diff`` (a - b) and ``median_diff_err`` (dex), ``ks_statistic``,
        ``ks_pvalue``; ``energy_distance`` (dex), ``energy_pvalue`` (NaN when skipped), ``n_a``,
        ``n_b`` (stars used) and ``columns``.
    """
    columns = [columns] if isinstance(columns, str) else list(columns)
    require_columns(a.columns, columns, what="compare_samples (first sample)")
    require_columns(b.columns, columns, what="compare_samples (second sample)")
    A = a[columns].to_numpy(dtype=float)
    B = b[columns].to_numpy(dtype=float)
    A = A[np.all(np.isfinite(A), axis=1)]
    B = B[np.all(np.isfinite(B), axis=1)]
    if A.shape[0] < 2 or B.shape[0] < 2:
        raise ValueError(
            f"compare_samples needs at least 2 stars with finite {columns} in each sample; got "
            f"{A.shape[0]} and {B.shape[0]}"
        )
    eff = np.sqrt(np.pi / 2.0)
    rows = {}
    for j, col in enumerate(columns):
        ma, mb = np.median(A[:, j]), np.median(B[:, j])
        ea = eff * A[:, j].std(ddof=1) / np.sqrt(A.shape[0])
        eb = eff * B[:, j].std(ddof=1) / np.sqrt(B.shape[0])
        ks = stats.ks_2samp(A[:, j], B[:, j])
        rows[col] = {"median_a": ma, "median_err_a": ea, "median_b": mb, "median_err_b": eb,
                         "median_diff": ma - mb, "median_diff_err": np.hypot(ea, eb),
                         "ks_statistic": float(ks.statistic), "ks_pvalue": float(ks.pvalue)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "column"
    pooled = np.vstack([A, B])
    n_a = A.shape[0]
    D = _pairwise(pooled)
    observed = _energy_statistics(D, n_a)[0]
    pvalue = float("nan")
    if n_permutations:
        rng = check_random_state(random_state)
        exceed, done, chunk = 0, 0, 100
        while done < n_permutations:
            m = min(chunk, n_permutations - done)
            perm = np.argsort(rng.random_sample((m, pooled.shape[0])), axis=1)
            labels = perm < n_a
            exceed += int(np.sum(_energy_statistics(D, n_a, labels) >= observed - 1e-15))
            done += m
        pvalue = (1 + exceed) / (1 + n_permutations)
    return Bunch(
        table=table,
        energy_distance=float(np.sqrt(max(observed, 0.0))),
        energy_pvalue=pvalue,
        n_a=n_a,
        n_b=B.shape[0],
        columns=columns,
    )


# ---------------------------------------------------------------------------- [alpha/M] vs [Fe/H]


def binned_abundance_planes(x, y, row, col, *, row_edges, col_edges, x_edges, y_edges):
    """2-D histograms of ``(x, y)`` in a grid of panels binned by two other quantities.

    Parameters
    ----------
    x, y : array_like of shape (n_stars,)
        Histogrammed quantities (e.g. [Fe/H] and [alpha/M], dex).
    row, col : array_like of shape (n_stars,)
        Quantities selecting the panel row and column (e.g. ``|z|`` and R in kpc).
    row_edges, col_edges : array_like
        Increasing panel edges (half-open bins, units of ``row`` and ``col``).
    x_edges, y_edges : array_like
        Increasing histogram edges (units of ``x`` and ``y``).

    Returns
    -------
    result : sklearn.utils.Bunch
        ``counts`` (int, shape (n_rows, n_cols, n_y, n_x): histogram of panel ``(i, j)`` with rows
        along y, the orientation of ``pcolormesh(x_edges, y_edges, counts[i, j])``), ``n_stars``
        (int, (n_rows, n_cols)), ``row_edges``, ``col_edges``, ``x_edges``, ``y_edges``. Stars with a
        non-finite value or outside the edges are not counted.
    """
    row_edges = _check_edges(row_edges, "row_edges")
    col_edges = _check_edges(col_edges, "col_edges")
    x_edges = _check_edges(x_edges, "x_edges")
    y_edges = _check_edges(y_edges, "y_edges")
    n_r, n_c = row_edges.size - 1, col_edges.size - 1
    n_x, n_y = x_edges.size - 1, y_edges.size - 1
    panel = _binned.bin_index_2d(col, row, col_edges, row_edges)  # r * n_c + c
    pix = _binned.bin_index_2d(x, y, x_edges, y_edges)  # iy * n_x + ix
    ok = (panel >= 0) & (pix >= 0)
    flat = np.bincount(panel[ok] * (n_x * n_y) + pix[ok], minlength=n_r * n_c * n_x * n_y)
    counts = flat.reshape(n_r, n_c, n_y, n_x)
    return Bunch(
        counts=counts,
        n_stars=counts.sum(axis=(2, 3)),
        row_edges=row_edges,
        col_edges=col_edges,
        x_edges=x_edges,
        y_edges=y_edges,
    )


_FEH_EDGES = np.round(np.arange(-1.0, 0.6001, 0.04), 10)
_ALPHA_EDGES = np.round(np.arange(-0.1, 0.4001, 0.0125), 10)


def _plane_columns(frame, x, y):
    x = x if x is not None else ("FE_H_NEW" if "FE_H_NEW" in frame.columns else "FE_H")
    y = y if y is not None else alpha_column(frame)
    return x, y


def alpha_iron_by_position(frame, *, x=None, y=None, R_edges=(0.0, 5.0, 7.0, 9.0, 11.0, 13.0, 25.0),
                           abs_z_edges=(0.0, 0.5, 1.0, 2.0), x_edges=_FEH_EDGES, y_edges=_ALPHA_EDGES,
                           R="R", z="z"):
    """[alpha/M] vs [Fe/H] histograms in bins of Galactocentric radius and height (Figure 9).

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue with ``R``, ``z`` (kpc) and the two abundances; not modified.
    x, y : str or None, default=None
        Abundance columns (dex); ``None``: ``FE_H_NEW`` (else ``FE_H``) and ``ALPHA_M_NEW`` (else
        ``ALPHA_M``).
    R_edges : sequence of float, default=(0, 5, 7, 9, 11, 13, 25)
        Panel columns: bins of R (kpc).
    abs_z_edges : sequence of float, default=(0, 0.5, 1, 2)
        Panel rows: bins of ``|z|`` (kpc).
    x_edges, y_edges : array_like
        Histogram edges (dex); default 0.04 dex bins over -1 to 0.6 in [Fe/H] and 0.0125 dex bins
        over -0.1 to 0.4 in [alpha/M].
    R, z : str
        Column names.

    Returns
    -------
    result : sklearn.utils.Bunch
        As :func:`binned_abundance_planes`, plus ``x``, ``y``, ``row_label``, ``col_label`` (axis
        labels with units).
    """
    x, y = _plane_columns(frame, x, y)
    require_columns(frame.columns, [x, y, R, z], what="alpha_iron_by_position")
    result = binned_abundance_planes(
        _column_values(frame, x), _column_values(frame, y), np.abs(_column_values(frame, z)),
        _column_values(frame, R), row_edges=abs_z_edges, col_edges=R_edges, x_edges=x_edges,
        y_edges=y_edges,
    )
    result.update(x=x, y=y, row_label="|z|", row_unit="kpc", col_label="R", col_unit="kpc")
    return result


def alpha_iron_by_actions(frame, *, x=None, y=None,
                          L_z_edges=(-5000.0, -3000.0, -2500.0, -2000.0, -1500.0, -1000.0, 0.0),
                          action_edges=(0.0, 30.0, 60.0, 120.0, 500.0), x_edges=_FEH_EDGES,
                          y_edges=_ALPHA_EDGES, J_R="J_R", L_z="L_z", J_z="J_z"):
    """[alpha/M] vs [Fe/H] histograms in bins of ``L_z`` and ``sqrt(J_R^2 + J_z^2)`` (Figure 10).

    ``L_z`` measures the orbit's guiding radius (``L_z < 0`` for disk stars; more negative is farther
    out, about ``-230 R`` kpc km/s), ``sqrt(J_R^2 + J_z^2)`` how far from circular and co-planar it is.

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue with ``J_R, L_z, J_z`` (kpc km/s) and the two abundances; not modified.
    x, y : str or None, default=None
        Abundance columns (dex), defaults as in :func:`alpha_iron_by_position`.
    L_z_edges : sequence of float, default=(-5000, -3000, -2500, -2000, -1500, -1000, 0)
        Panel columns: bins of ``L_z`` (kpc km/s).
    action_edges : sequence of float, default=(0, 30, 60, 120, 500)
        Panel rows: bins of ``sqrt(J_R^2 + J_z^2)`` (kpc km/s).
    x_edges, y_edges : array_like
        Histogram edges (dex).
    J_R, L_z, J_z : str
        Column names.

    Returns
    -------
    result : sklearn.utils.Bunch
        As :func:`binned_abundance_planes`, plus ``x``, ``y``, ``row_label``, ``col_label``.
    """
    x, y = _plane_columns(frame, x, y)
    require_columns(frame.columns, [x, y, J_R, L_z, J_z], what="alpha_iron_by_actions")
    result = binned_abundance_planes(
        _column_values(frame, x), _column_values(frame, y),
        np.hypot(_column_values(frame, J_R), _column_values(frame, J_z)), _column_values(frame, L_z),
        row_edges=action_edges, col_edges=L_z_edges, x_edges=x_edges, y_edges=y_edges,
    )
    result.update(x=x, y=y, row_label="sqrt(J_R^2 + J_z^2)", row_unit="kpc km/s", col_label="L_z",
                  col_unit="kpc km/s")
    return result


# ---------------------------------------------------------------------------- log g diagnostics


#: Features of the paper's Figures 2-4 and their axis labels with units.
TREND_FEATURES = {
    "J_R": r"$J_R$ [kpc km s$^{-1}$]",
    "J_z": r"$J_z$ [kpc km s$^{-1}$]",
    "L_z": r"$L_z$ [kpc km s$^{-1}$]",
    "R": r"$R_{\rm GC}$ [kpc]",
    "z": r"$z_{\rm GC}$ [kpc]",
}


def logg_trends(frame, abundance, *, calibrated=None, features=tuple(TREND_FEATURES), logg="LOGG",
                n_logg_bins=4, n_feature_bins=20, feature_ranges=None, percentile_range=(1.0, 99.0),
                min_stars=10):
    """Median abundance against orbit and position in equal-count log g bins (Figures 2-4).

    Stars are split into ``n_logg_bins`` bins of log g with equal numbers of stars; within each, the
    median of the reported abundance (``stage="input"``) and of the calibrated one
    (``stage="calibrated"``) is computed in bins of every feature. Trends that differ between log g
    bins at fixed orbit are the systematics the self-calibration removes.

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue with ``logg``, the features and both abundance columns; not modified.
    abundance : str
        Reported abundance column (dex), e.g. ``"FE_H"``.
    calibrated : str or None, default=None
        Calibrated column (dex); ``None``: ``abundance + "_NEW"``.
    features : sequence of str, default=("J_R", "J_z", "L_z", "R", "z")
        Columns on the horizontal axes (kpc km/s or kpc).
    logg : str, default="LOGG"
        Surface-gravity column (dex).
    n_logg_bins : int, default=4
        Number of equal-count log g bins (:func:`equal_count_bins`, over stars with finite log g).
    n_feature_bins : int, default=20
        Number of equal-width bins along each feature.
    feature_ranges : dict of str to (float, float) or None, default=None
        Range of the bins of a feature (its units); features not given use ``percentile_range``.
    percentile_range : tuple of 2 float, default=(1, 99)
        Default range of a feature: these percentiles of its finite values over all stars (so a few
        extreme orbits do not stretch the axis).
    min_stars : int, default=10
        Feature bins with fewer stars (finite abundance) in a log g bin get NaN.

    Returns
    -------
    trends : pandas.DataFrame
        Tidy table, one row per (stage, feature, log g bin, feature bin): ``stage`` ("input" or
        "calibrated"), ``column`` (the abundance column), ``feature``, ``logg_bin`` (0 = lowest log
        g), ``logg_min``, ``logg_max`` (dex), ``feature_min``, ``feature_max``, ``feature_centre``
        (feature units), ``median`` and ``median_err`` (``1.253 std / sqrt(N)``, dex) and
        ``n_stars``.
    """
    calibrated = f"{abundance}_NEW" if calibrated is None else calibrated
    features = list(features)
    require_columns(frame.columns, [logg, abundance, calibrated, *features], what="logg_trends")
    min_stars = _check_min_stars(min_stars, 2)
    if not isinstance(n_feature_bins, numbers.Integral) or n_feature_bins < 1:
        raise ValueError(f"n_feature_bins must be a positive integer; got {n_feature_bins!r}")
    feature_ranges = {} if feature_ranges is None else dict(feature_ranges)
    labels, ranges = equal_count_bins(_column_values(frame, logg), n_logg_bins)
    eff = np.sqrt(np.pi / 2.0)
    parts = []
    for feature in features:
        f = _column_values(frame, feature)
        if feature in feature_ranges:
            lo, hi = feature_ranges[feature]
        else:
            finite = f[np.isfinite(f)]
            if finite.size == 0:
                raise ValueError(f"column {feature!r} has no finite values")
            lo, hi = np.percentile(finite, percentile_range)
        if not hi > lo:
            hi = lo + 1.0
        edges = np.linspace(lo, hi, n_feature_bins + 1)
        fbin = _binned.bin_index(f, edges)
        n_groups = n_logg_bins * n_feature_bins
        group = np.where((labels >= 0) & (fbin >= 0), labels * n_feature_bins + fbin, -1)
        for stage, col in (("input", abundance), ("calibrated", calibrated)):
            v = _column_values(frame, col)
            med, n = _binned.grouped_median(group, v, n_groups)
            std, _ = _binned.grouped_std(group, v, n_groups)
            ok = n >= min_stars
            with np.errstate(invalid="ignore", divide="ignore"):
                err = np.where(ok, eff * std / np.sqrt(np.maximum(n, 1)), np.nan)
            lb, fb = np.divmod(np.arange(n_groups), n_feature_bins)
            parts.append(pd.DataFrame({
                "stage": stage,
                "column": col,
                "feature": feature,
                "logg_bin": lb,
                "logg_min": ranges[lb, 0],
                "logg_max": ranges[lb, 1],
                "feature_min": edges[fb],
                "feature_max": edges[fb + 1],
                "feature_centre": 0.5 * (edges[fb] + edges[fb + 1]),
                "median": np.where(ok, med, np.nan),
                "median_err": err,
                "n_stars": n,
            }))
    return pd.concat(parts, ignore_index=True)


# ---------------------------------------------------------------------------- Figure 7 layout


def radial_gradient_layout(profile, columns, *, population="low_alpha", step=0.15, radius="R"):
    """Slopes, panels and vertical offsets for stacking radial abundance profiles (Figure 7).

    Every profile's slope is a weighted least-squares line (weights ``1 / err**2``) through its
    finite bin medians. Abundances with a non-negative slope go to panel 0 (left), the others to
    panel 1 (right); within a panel they are ordered by slope, highest first, and shifted so that the
    ``i``-th curve (counted from the bottom) has its weighted mean at ``i * step``.

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
        Column of the bin centres (kpc).

    Returns
    -------
    layout : pandas.DataFrame
        Indexed by column, sorted by slope (descending): ``slope`` (dex/kpc), ``panel`` (0 or 1),
        ``offset`` (dex, to add to the medians), ``n_bins`` (finite bins used).
    """
    columns = list(columns)
    require_columns(profile.columns, [radius, "population", *columns, *[f"{c}_ERR" for c in columns]],
                    what="radial_gradient_layout")
    part = profile[profile["population"] == population]
    if part.empty:
        raise ValueError(f"profile has no rows of population {population!r}")
    R = part[radius].to_numpy(dtype=float)
    rows = []
    for col in columns:
        y = part[col].to_numpy(dtype=float)
        e = part[f"{col}_ERR"].to_numpy(dtype=float)
        ok = np.isfinite(y) & np.isfinite(e) & (e > 0)
        if ok.sum() < 2:
            rows.append((col, np.nan, np.nan, int(ok.sum())))
            continue
        w = 1.0 / e[ok] ** 2
        slope, _intercept = np.polyfit(R[ok], y[ok], 1, w=np.sqrt(w))
        rows.append((col, slope, np.sum(w * y[ok]) / np.sum(w), int(ok.sum())))
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

