"""Face-on maps of the disk: a statistic of a column in square bins of the Galactocentric (x, y) plane.

Median abundance maps (Figures 6, 14-15), difference maps (16-17), mean [Fe/H] with mean velocity
vectors (Figure 5), star counts (Figure 1) and the 7th-93rd percentile colour limits.

Memory stays bounded whatever the data: without an explicit ``extent`` (or edges) a map covers the
stars with ``|x|, |y| <= limit`` (:data:`MAP_LIMIT_KPC`, 30 kpc) and warns how many stars beyond it
are left out, and no grid has more than :data:`MAX_MAP_BINS` bins (a larger one is an error, not an
allocation). A star placed at 10^6 kpc by a bad parallax costs a warning, not 13 TiB.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.utils import Bunch

from .._kernels import binned as _binned
from .._paper import R0_KPC
from .._validation import (check_edges, check_mask, check_min_stars, check_positive, clean_column,
                           name_of, numeric_values, validate_catalogue)
from ..exceptions import OutsideMapWarning

__all__ = [
    "FIGURE6_ABUNDANCES",
    "MAP_BIN_SIZE_KPC",
    "MAP_COLOR_PERCENTILES",
    "MAP_LIMIT_KPC",
    "MAP_MIN_STARS",
    "MAX_MAP_BINS",
    "SUN_XY",
    "binned_map",
    "color_limits",
    "face_on_map",
    "grid_edges",
    "map_extent",
    "velocity_map",
]

#: Galactocentric (x, y) of the Sun (kpc).
SUN_XY = (-R0_KPC, 0.0)
#: The four abundances of the paper's Figure 6 (reported names; mapped in their calibrated version).
FIGURE6_ABUNDANCES = ("FE_H", "MG_FE", "O_FE", "NI_FE")
#: Bin width (kpc) of the paper's abundance maps (Figures 6, 14-17); Figure 5 uses 0.5 kpc.
MAP_BIN_SIZE_KPC = 0.75
#: A bin is shown when it holds at least this many stars (the paper: more than 3).
MAP_MIN_STARS = 4
#: Percentiles of the binned values that set a map's colour limits (the paper's 7th and 93rd).
MAP_COLOR_PERCENTILES = (7.0, 93.0)
#: Half-width (kpc) of the largest map made without an explicit extent: stars with ``|x|`` or
#: ``|y|`` beyond it are left out with a warning. APOGEE's farthest disk giants are at about 25 kpc.
MAP_LIMIT_KPC = 30.0
#: Largest number of bins of a map (e.g. 2000 x 2000): a larger grid is a ValueError.
MAX_MAP_BINS = 4_000_000

_STATISTICS = ("median", "mean", "count")


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

    Raises
    ------
    ValueError
        If the range needs more than :data:`MAX_MAP_BINS` bins.

    Examples
    --------
    >>> grid_edges(-1.2, 0.3, 0.5).tolist()
    [-1.5, -1.0, -0.5, 0.0, 0.5]
    """
    bin_size = check_positive(bin_size, "bin_size")
    if not (np.isfinite(low) and np.isfinite(high) and low <= high):
        raise ValueError(f"grid_edges needs finite low <= high; got low={low!r}, high={high!r}")
    first = np.floor(low / bin_size)
    last = np.floor(high / bin_size) + 1
    if last - first > MAX_MAP_BINS:
        raise ValueError(
            f"a grid from {low:g} to {high:g} kpc in {bin_size:g} kpc bins has {last - first:.3g} "
            f"bins, more than MAX_MAP_BINS={MAX_MAP_BINS}; use a larger bin_size or a smaller extent"
        )
    first, last = int(first), int(last)
    first -= first * bin_size > low  # guard against rounding in the divisions
    last += last * bin_size <= high
    return np.arange(first, last + 1) * bin_size


def map_extent(x, y, *, limit=MAP_LIMIT_KPC, what="map"):
    """The range of the points with ``|x| <= limit`` and ``|y| <= limit``, warning about the others.

    Parameters
    ----------
    x, y : array_like of shape (n_stars,)
        Galactocentric coordinates (kpc); non-finite points are ignored.
    limit : float, default=MAP_LIMIT_KPC (30 kpc)
        Largest ``|x|`` and ``|y|`` mapped (kpc).
    what : str, default="map"
        Named in the warning.

    Returns
    -------
    extent : tuple of 4 float or None
        ``(x_min, x_max, y_min, y_max)`` (kpc) of the finite points within ``limit``; ``None`` if
        there is none.

    Warns
    -----
    OutsideMapWarning
        Counting the finite points beyond ``limit`` (left out of the map).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     map_extent([-8.0, 2.0, 1e6], [0.0, 1.0, 0.0])
    (-8.0, 2.0, 0.0, 1.0)
    >>> print(caught[0].message)
    map: 1 star(s) with |x| or |y| > 30 kpc left out (pass extent= to map them)
    """
    limit = check_positive(limit, "limit")
    x = numeric_values(x, "x")
    y = numeric_values(y, "y")
    finite = np.isfinite(x) & np.isfinite(y)
    with np.errstate(invalid="ignore"):
        inside = finite & (np.abs(x) <= limit) & (np.abs(y) <= limit)
    n_out = int(finite.sum() - inside.sum())
    if n_out:
        warnings.warn(f"{what}: {n_out} star(s) with |x| or |y| > {limit:g} kpc left out (pass "
                      "extent= to map them)", OutsideMapWarning, stacklevel=2)
    if not inside.any():
        return None
    xs, ys = x[inside], y[inside]
    return (float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max()))


def _axis_edges(edges, span, bin_size, name):
    if edges is not None:
        return check_edges(edges, name)
    if span is None:
        return grid_edges(-bin_size, bin_size, bin_size)
    return grid_edges(span[0], span[1], bin_size)


def binned_map(x, y, values=None, *, bin_size=MAP_BIN_SIZE_KPC, statistic="median", min_stars=MAP_MIN_STARS,
               x_edges=None, y_edges=None, extent=None, limit=MAP_LIMIT_KPC):
    """A statistic of ``values`` in square bins of the ``(x, y)`` plane.

    Parameters
    ----------
    x, y : array_like of shape (n_stars,)
        Galactocentric coordinates (kpc). Stars with a non-finite coordinate are left out.
    values : array_like of shape (n_stars,) or None
        The quantity to summarise (e.g. an abundance in dex, a velocity in km/s); stars with a
        non-finite value are left out. ``None`` with ``statistic="count"``.
    bin_size : float, default=MAP_BIN_SIZE_KPC (0.75 kpc)
        Bin width in x and y (kpc); ignored along an axis whose edges are given.
    statistic : {"median", "mean", "count"}, default="median"
        What to compute per bin; ``"count"`` is the number of stars.
    min_stars : int, default=MAP_MIN_STARS (4)
        Bins with fewer stars get NaN (the paper shows bins with more than 3 stars).
    x_edges, y_edges : array_like or None, default=None
        Explicit bin edges (kpc). ``None``: multiples of ``bin_size`` (:func:`grid_edges`) covering
        ``extent`` or, without it, the stars within ``limit`` (:func:`map_extent`).
    extent : tuple of 4 float or None, default=None
        ``(x_min, x_max, y_min, y_max)`` (kpc) to cover when edges are not given.
    limit : float, default=MAP_LIMIT_KPC (30 kpc)
        Without ``extent`` or edges, stars with ``|x|`` or ``|y|`` beyond it are left out of the
        grid with a warning counting them.

    Returns
    -------
    result : sklearn.utils.Bunch
        ``statistic`` (ndarray of shape (n_y, n_x); row ``i`` is the y bin ``i``, the orientation of
        ``pcolormesh(x_edges, y_edges, statistic)``; NaN where ``count < min_stars``), ``count``
        (stars per bin, int, shape (n_y, n_x)), ``x_edges``, ``y_edges`` (kpc), ``x_centres``,
        ``y_centres`` (kpc), ``n_stars`` (stars in the bins shown, i.e. with ``count >= min_stars``),
        ``statistic_name``, ``min_stars`` and ``bin_size``.

    Raises
    ------
    ValueError
        If a coordinate or value is not a number (naming the argument and rows), or the grid would
        have more than :data:`MAX_MAP_BINS` bins.

    Examples
    --------
    >>> m = binned_map([0.1, 0.2, 0.3, 1.6], [0.1, 0.1, 0.2, 0.1], [1.0, 2.0, 3.0, 4.0],
    ...                bin_size=1.0, min_stars=2)
    >>> m.statistic.tolist(), m.count.tolist()
    ([[2.0, nan]], [[3, 1]])
    """
    if statistic not in _STATISTICS:
        raise ValueError(f"statistic must be one of {_STATISTICS}; got {statistic!r}")
    min_stars = check_min_stars(min_stars)
    bin_size = check_positive(bin_size, "bin_size")
    x = clean_column(x, name_of(x, "x"), what="binned_map", kpc=True)
    y = clean_column(y, name_of(y, "y"), what="binned_map", kpc=True)
    if values is None:
        if statistic != "count":
            raise ValueError(f"values are needed for statistic={statistic!r}")
        values = np.zeros_like(x)
    values = clean_column(values, name_of(values, "values"), what="binned_map")
    if not (x.shape == y.shape == values.shape and x.ndim == 1):
        raise ValueError(
            f"x, y and values must be 1-D of the same length; got shapes {x.shape}, {y.shape}, "
            f"{values.shape}"
        )
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(values)
    if extent is None and (x_edges is None or y_edges is None):
        extent = map_extent(x[keep], y[keep], limit=limit, what="binned_map")
    x_edges = _axis_edges(x_edges, None if extent is None else extent[:2], bin_size, "x_edges")
    y_edges = _axis_edges(y_edges, None if extent is None else extent[2:], bin_size, "y_edges")
    n_x, n_y = x_edges.size - 1, y_edges.size - 1
    if n_x * n_y > MAX_MAP_BINS:
        raise ValueError(f"a {n_x} x {n_y} grid has more than MAX_MAP_BINS={MAX_MAP_BINS} bins; use a "
                         "larger bin_size or a smaller extent")
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


def _validated(frame, x, y, where, needed, what):
    """The cleaned columns (:func:`validate_catalogue`), ``x`` NaN for the stars not in ``where``."""
    values = validate_catalogue(frame, [x, y, *needed], what=what, kpc=(x, y), stacklevel=3)
    values[x] = np.where(check_mask(where, values[x].size), values[x], np.nan)
    return values


def face_on_map(frame, column=None, *, minus=None, where=None, bin_size=MAP_BIN_SIZE_KPC, statistic="median",
                min_stars=MAP_MIN_STARS, x="x", y="y", extent=None, limit=MAP_LIMIT_KPC):
    """Face-on map of the disk: a statistic of ``column`` (or ``column - minus``) per (x, y) bin.

    Figures 6 and 14-15 (median abundance, 0.75 kpc bins, more than 3 stars), Figure 5 (mean
    [Fe/H] in 0.5 kpc bins), Figures 16-17 (``column`` the calibrated [Fe/H], ``minus="FE_H"``:
    calibrated minus reported) and Figure 1 (``statistic="count"``).

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
    bin_size : float, default=MAP_BIN_SIZE_KPC (0.75 kpc)
        Bin width (kpc).
    statistic : {"median", "mean", "count"}, default="median"
        Statistic per bin (:func:`binned_map`).
    min_stars : int, default=MAP_MIN_STARS (4)
        Bins with fewer stars get NaN.
    x, y : str, default="x", "y"
        Columns of the Galactocentric Cartesian coordinates (kpc).
    extent : tuple of 4 float or None, default=None
        ``(x_min, x_max, y_min, y_max)`` (kpc) the grid covers; ``None``: the stars used, within
        ``limit``.
    limit : float, default=MAP_LIMIT_KPC (30 kpc)
        Without ``extent``, stars with ``|x|`` or ``|y|`` beyond it are left out with a warning.

    Returns
    -------
    result : sklearn.utils.Bunch
        As :func:`binned_map`, plus ``column`` and ``minus``. Stars with a non-finite position or
        value are left out (and not counted).

    Raises
    ------
    KeyError
        Naming the columns missing from ``frame``.
    ValueError
        Naming a column that holds a value that is not a number (and its first bad rows), a
        column name or index label given twice, or ``x``/``y`` in pc rather than kpc.
    TooFewStarsError
        If ``frame`` has no row.

    Warns
    -----
    DataQualityWarning
        Naming a column whose sentinels, out-of-range or infinite values were left out (NaN).

    Examples
    --------
    >>> import pandas as pd
    >>> stars = pd.DataFrame({"x": [-8.1, -8.2, -8.3, -8.9], "y": [0.1, 0.2, 0.3, 0.4],
    ...                       "FE_H": [0.0, 0.25, 0.75, 1.0]})
    >>> m = face_on_map(stars, "FE_H", bin_size=1.0, min_stars=4)
    >>> m.x_edges.tolist(), float(m.statistic[0, 0]), m.n_stars
    ([-9.0, -8.0], 0.5, 4)
    """
    if minus is not None and column is None:
        raise ValueError("minus needs a column to subtract it from")
    needed = [c for c in (column, minus) if c is not None]
    checked = _validated(frame, x, y, where, needed, "face_on_map")
    values = None if column is None else checked[column]
    if minus is not None:
        values = values - checked[minus]
    result = binned_map(checked[x], checked[y], values, bin_size=bin_size, statistic=statistic, min_stars=min_stars,
                        extent=extent, limit=limit)
    result.column = column
    result.minus = minus
    return result


def velocity_map(frame, *, where=None, bin_size=0.5, min_stars=MAP_MIN_STARS, x="x", y="y", v_x="v_x", v_y="v_y",
                 extent=None, limit=MAP_LIMIT_KPC):
    """Mean in-plane velocity vector of the stars in every (x, y) bin (the arrows of Figure 5).

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per star with columns ``x, y`` (kpc) and ``v_x, v_y`` (km/s); not modified.
    where : array_like of bool or None, default=None
        Stars to use; ``None``: all.
    bin_size : float, default=0.5
        Bin width (kpc).
    min_stars : int, default=MAP_MIN_STARS (4)
        Bins with fewer stars (with finite position and both velocities) get NaN.
    x, y, v_x, v_y : str
        Column names.
    extent : tuple of 4 float or None, default=None
        ``(x_min, x_max, y_min, y_max)`` (kpc) to cover; ``None``: the stars, within ``limit``.
    limit : float, default=MAP_LIMIT_KPC (30 kpc)
        Without ``extent``, stars with ``|x|`` or ``|y|`` beyond it are left out with a warning.

    Returns
    -------
    result : sklearn.utils.Bunch
        ``mean_v_x``, ``mean_v_y`` (km/s, shape (n_y, n_x), NaN where ``count < min_stars``),
        ``count``, ``x_edges``, ``y_edges``, ``x_centres``, ``y_centres`` (kpc), ``n_stars``.

    Raises
    ------
    KeyError, ValueError
        As :func:`face_on_map`.
    """
    checked = _validated(frame, x, y, where, [v_x, v_y], "velocity_map")
    xs, ys, vx, vy = (checked[c] for c in (x, y, v_x, v_y))
    xs = np.where(np.isfinite(vx) & np.isfinite(vy), xs, np.nan)
    mx = binned_map(xs, ys, vx, bin_size=bin_size, statistic="mean", min_stars=min_stars, extent=extent,
                    limit=limit)
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


def color_limits(image, percentiles=MAP_COLOR_PERCENTILES, *, symmetric=False):
    """Colour-bar limits from percentiles of the finite values of a map.

    Parameters
    ----------
    image : array_like
        Map values (e.g. ``face_on_map(...).statistic``); NaN bins are ignored.
    percentiles : tuple of 2 float, default=MAP_COLOR_PERCENTILES (7, 93)
        Lower and upper percentiles (the paper's maps use the 7th and 93rd).
    symmetric : bool, default=False
        Return ``(-m, m)`` with ``m`` the larger absolute value of the two percentiles (for difference
        maps drawn with a diverging colour map centred on zero).

    Returns
    -------
    vmin, vmax : float
        Limits in the unit of ``image``; ``(nan, nan)`` for a map without finite values.

    Examples
    --------
    >>> color_limits([[0.0, 1.0], [2.0, float("nan")]], (0, 100))
    (0.0, 2.0)
    """
    values = numeric_values(image, "image").ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, percentiles)
    if symmetric:
        m = max(abs(lo), abs(hi))
        return -float(m), float(m)
    return float(lo), float(hi)
