"""Radial profiles and face-on maps of a Dask DataFrame, with exact medians.

A median is not a sum: it needs all of a bin's values in one place. The stars are therefore
*shuffled by bin* (``DataFrame.shuffle`` on the bin index, only the columns the statistic reads):
afterwards every bin lies wholly in one partition, the in-memory kernels compute each partition's
bins exactly, and the partitions' results are merged by taking every bin from the partition that
holds it. Counts, sums and means need no shuffle (sums of per-partition ``bincount``).

The alternative, an approximate median from mergeable sketches (histograms, t-digests) with an
error bound, was not needed: the shuffle moves a few float columns once, and its cost is measured
by ``benchmarks/bench_dask.py`` (see :doc:`/scaling`).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .._kernels import binned as _binned
from .._paper import ALPHA_SPLIT, PAPER_RADIUS_BINS
from .._validation import check_finite_column, require_columns
from ..exceptions import OutsideMapWarning
from ..gradients import radial_abundance_profile
from ..maps.face_on import (MAP_BIN_SIZE_KPC, MAP_LIMIT_KPC, MAP_MIN_STARS, binned_map,
                            grid_edges)
from .._validation import check_mask, numeric_values
from ._reduce import SPLIT_EVERY, tree_reduce

__all__ = ["radial_profile_distributed", "face_on_map_distributed"]

_BIN = "__bin__"
_VALUE = "__value__"


def _shuffled_parts(binned, n_groups):
    """Partitions of ``binned`` after a shuffle on ``_BIN``: each bin wholly in one partition."""
    n_out = max(1, min(binned.npartitions, n_groups))
    return binned.shuffle(on=_BIN, npartitions=n_out).to_delayed()


def _owner_merge(frames, counts, values):
    """Merge per-partition tables of whole bins: ``counts`` summed, ``values`` from the holder.

    Row ``i`` of every frame is the same bin; the bin's values are taken from the frame in which
    its first count column is positive (only one frame holds the bin's stars).
    """
    out = frames[0].copy()
    held = np.array([f[counts[0]].to_numpy() > 0 for f in frames])
    owner = np.argmax(held, axis=0)
    rows = np.arange(len(out))
    for col in counts:
        out[col] = np.sum([f[col].to_numpy() for f in frames], axis=0).astype(out[col].dtype)
    for col in values:
        stacked = np.array([f[col].to_numpy(dtype=float) for f in frames])
        out[col] = stacked[owner, rows]
    return out


# ------------------------------------------------------------------------------ radial profiles
def _profile_rows(part, radius, bins, keep):
    """The columns a profile reads, with the radial bin; stars outside every bin dropped."""
    R = check_finite_column(numeric_values(part[radius], radius), radius)
    which = _binned.bin_index(R, bins)
    return part[keep].assign(**{_BIN: which})[which >= 0]


def radial_profile_distributed(ddf, columns, *, radius="R", bins=PAPER_RADIUS_BINS,
                               split="ALPHA_M", split_value=ALPHA_SPLIT, min_stars=4,
                               client=None, split_every=SPLIT_EVERY, **kwargs):
    """:func:`~sklearn_selfcal.gradients.radial_abundance_profile` of a Dask DataFrame, exactly.

    The stars inside the radial bins are shuffled by bin (only ``radius``, ``split`` and
    ``columns`` travel), so that every bin lies in one partition; the in-memory function computes
    every partition's bins and the results are merged. Medians, their ``1.253 std / sqrt(N)``
    uncertainties and the counts are those of the in-memory profile of ``ddf.compute()``
    (medians identical, uncertainties to rounding).

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        One row per star.
    columns : list of str
        Abundance columns (dex).
    radius : str, default="R"
        Column of Galactocentric radius (kpc); must be finite for every star.
    bins : array-like of float, default=PAPER_RADIUS_BINS
        Increasing bin edges (kpc).
    split : str or None, default="ALPHA_M"
        Column splitting the low- and high-alpha populations ([alpha/M], dex).
    split_value : float, default=0.12
        Low-alpha stars have ``split < split_value`` (dex).
    min_stars : int, default=4
        Bins with fewer finite values of an abundance get NaN for it.
    client : dask.distributed.Client, optional
        Computes on it; without one, Dask's current scheduler.
    split_every : int, default=8
        Partition results merged per task.
    **kwargs
        ``n_bootstrap``, ``radius_draws`` and ``calibration_draws`` are not supported here (the
        draws move stars between bins, and the bootstrap's random stream is sequential): compute
        the point profile here and its Monte Carlo uncertainties on a sample in memory.

    Returns
    -------
    profile : pandas.DataFrame
        As :func:`~sklearn_selfcal.gradients.radial_abundance_profile` (same rows, columns and
        ``attrs``).

    Raises
    ------
    KeyError, ValueError
        As the in-memory function (missing or non-numeric columns, a non-finite radius, bad
        bins); ``TypeError`` for an unsupported keyword.
    """
    unsupported = sorted(k for k, v in kwargs.items() if v not in (None, 0))
    if unsupported or set(kwargs) - {"n_bootstrap", "radius_draws", "calibration_draws",
                                     "n_draws", "random_state"}:
        raise TypeError(f"radial_profile_distributed does not support {sorted(kwargs)}: the "
                        "bootstrap and the Monte Carlo draws run in memory (see the docstring)")
    columns = [columns] if isinstance(columns, str) else list(columns)
    options = dict(radius=radius, bins=bins, split=split, split_value=split_value,
                   min_stars=min_stars)
    keep = list(dict.fromkeys([radius, *columns] + ([split] if split is not None else [])))
    require_columns(ddf.columns, keep, what="radial_abundance_profile")
    empty = radial_abundance_profile(ddf._meta[keep], columns, **options)  # checks the options
    edges = np.asarray(bins, dtype=float)
    binned = ddf.map_partitions(_profile_rows, radius, edges, keep,
                                meta=ddf._meta[keep].assign(**{_BIN: np.int64(0)}))
    counts = ["N_STARS"] + [f"{c}_N" for c in columns]
    values = ["R_MEDIAN"] + [name for c in columns for name in (c, f"{c}_ERR")]

    def profile(part):
        return radial_abundance_profile(part.drop(columns=_BIN), columns, **options)

    def merge(frames):
        return _owner_merge(frames, counts, values)

    out = tree_reduce(_shuffled_parts(binned, edges.size - 1), profile, merge, client=client,
                      split_every=split_every)
    out.attrs = empty.attrs
    return out


# ------------------------------------------------------------------------------ face-on maps
def _map_points(part, column, minus, where, x, y):
    """x, y and the mapped value of every star (NaN where not selected or not finite)."""
    xs, ys = numeric_values(part[x], x), numeric_values(part[y], y)
    if where is not None:
        xs = np.where(check_mask(part[where].to_numpy(), len(part), where), xs, np.nan)
    values = np.zeros_like(xs) if column is None else numeric_values(part[column], column)
    if minus is not None:
        values = values - numeric_values(part[minus], minus)
    keep = np.isfinite(xs) & np.isfinite(ys) & np.isfinite(values)
    return xs[keep], ys[keep], values[keep]


def _extent_part(points, limit):
    """(x_min, x_max, y_min, y_max, n_out) of the points within ``limit``, and the count beyond."""
    xs, ys, _ = points
    inside = (np.abs(xs) <= limit) & (np.abs(ys) <= limit)
    if not inside.any():
        return (np.inf, -np.inf, np.inf, -np.inf, int(xs.size))
    return (xs[inside].min(), xs[inside].max(), ys[inside].min(), ys[inside].max(),
            int(xs.size - inside.sum()))


def _extent_merge(parts):
    lo_x, hi_x, lo_y, hi_y, n_out = zip(*parts)
    return min(lo_x), max(hi_x), min(lo_y), max(hi_y), sum(n_out)


def _cells(points, x_edges, y_edges):
    xs, ys, values = points
    return _binned.bin_index_2d(xs, ys, x_edges, y_edges), values


def face_on_map_distributed(ddf, column=None, *, minus=None, where=None,
                            bin_size=MAP_BIN_SIZE_KPC, statistic="median",
                            min_stars=MAP_MIN_STARS, x="x", y="y", extent=None,
                            limit=MAP_LIMIT_KPC, client=None, split_every=SPLIT_EVERY):
    """:func:`~sklearn_selfcal.maps.face_on_map` of a Dask DataFrame, exactly.

    Without ``extent``, a first pass finds the range of the stars within ``limit`` (warning, as
    the in-memory map, how many lie beyond). ``"count"`` and ``"mean"`` are sums over partitions;
    ``"median"`` shuffles the mapped values by (x, y) bin so that every bin lies in one partition.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        One row per star with ``x``, ``y`` (kpc) and ``column``.
    column : str or None, default=None
        Column to summarise (dex for abundances); ``None`` only with ``statistic="count"``.
    minus : str or None, default=None
        Column subtracted from ``column`` before binning (a difference map).
    where : str or None, default=None
        Name of a boolean column of ``ddf`` selecting the stars (the in-memory function takes
        the mask itself).
    bin_size : float, default=MAP_BIN_SIZE_KPC (0.75 kpc)
        Bin width (kpc).
    statistic : {"median", "mean", "count"}, default="median"
        Statistic per bin.
    min_stars : int, default=MAP_MIN_STARS (4)
        Bins with fewer stars get NaN.
    x, y : str, default="x", "y"
        Columns of the Galactocentric Cartesian coordinates (kpc).
    extent : tuple of 4 float or None, default=None
        ``(x_min, x_max, y_min, y_max)`` (kpc) the grid covers; ``None``: the stars used,
        within ``limit``.
    limit : float, default=MAP_LIMIT_KPC (30 kpc)
        Without ``extent``, stars with ``|x|`` or ``|y|`` beyond it are left out with a warning.
    client : dask.distributed.Client, optional
        Computes on it; without one, Dask's current scheduler.
    split_every : int, default=8
        Partition results merged per task.

    Returns
    -------
    result : sklearn.utils.Bunch
        As :func:`~sklearn_selfcal.maps.face_on_map`: the same edges, counts and statistic as
        the map of ``ddf.compute()`` (medians identical, means to rounding).
    """
    if minus is not None and column is None:
        raise ValueError("minus needs a column to subtract it from")
    needed = [c for c in (x, y, column, minus, where) if c is not None]
    require_columns(ddf.columns, needed, what="face_on_map")
    parts = ddf[list(dict.fromkeys(needed))].to_delayed()

    def points(part):
        return _map_points(part, column, minus, where, x, y)

    if extent is None:
        x_lo, x_hi, y_lo, y_hi, n_out = tree_reduce(
            parts, lambda p: _extent_part(p, limit), _extent_merge, prepare=points,
            client=client, split_every=split_every)
        if n_out:
            warnings.warn(f"binned_map: {n_out} star(s) with |x| or |y| > {limit:g} kpc left out "
                          "(pass extent= to map them)", OutsideMapWarning, stacklevel=2)
        extent = None if x_lo > x_hi else (x_lo, x_hi, y_lo, y_hi)
    if extent is None:
        x_edges = y_edges = grid_edges(-bin_size, bin_size, bin_size)
    else:
        x_edges = grid_edges(extent[0], extent[1], bin_size)
        y_edges = grid_edges(extent[2], extent[3], bin_size)
    # the in-memory function on no star: validates the options, gives the result's layout
    result = binned_map(np.zeros(0), np.zeros(0), np.zeros(0), bin_size=bin_size,
                        statistic=statistic, min_stars=min_stars, x_edges=x_edges,
                        y_edges=y_edges)
    n_cells = result.count.size

    if statistic == "median":
        def cell_frame(part):
            cells, values = _cells(points(part), x_edges, y_edges)
            inside = cells >= 0
            return pd.DataFrame({_BIN: cells[inside], _VALUE: values[inside]})

        meta = pd.DataFrame({_BIN: np.zeros(0, dtype=np.int64), _VALUE: np.zeros(0)})
        binned = ddf[list(dict.fromkeys(needed))].map_partitions(cell_frame, meta=meta)

        def medians(part):
            med, count = _binned.grouped_median(part[_BIN].to_numpy(), part[_VALUE].to_numpy(),
                                                n_cells)
            return pd.DataFrame({"count": count, "stat": med})

        merged = tree_reduce(_shuffled_parts(binned, n_cells), medians,
                             lambda frames: _owner_merge(frames, ["count"], ["stat"]),
                             client=client, split_every=split_every)
        count, stat = merged["count"].to_numpy(), merged["stat"].to_numpy()
    else:
        def sums(p):
            total, count = _binned.grouped_sum(*_cells(p, x_edges, y_edges), n_cells)
            return total, count

        total, count = tree_reduce(
            parts, sums, lambda r: tuple(np.sum(a, axis=0) for a in zip(*r)), prepare=points,
            client=client, split_every=split_every)
        stat = (_binned.mean_from_sum(total, count) if statistic == "mean"
                else count.astype(float))
    shown = count >= result.min_stars
    result.statistic = np.where(shown, stat, np.nan).reshape(result.statistic.shape)
    result.count = count.reshape(result.count.shape)
    result.n_stars = int(count[shown].sum())
    result.column = column
    result.minus = minus
    return result

