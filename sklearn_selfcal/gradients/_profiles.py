"""Radial abundance profiles (the paper's Tables 1-3 and Figure 7) and their uncertainties.

Every bin's median carries the paper's uncertainty ``1.253 std / sqrt(N)`` (the scatter of the
stars' abundances), optionally a bootstrap uncertainty (resampling the bin's stars), and optionally
the uncertainty that the stars' distances add: the radii are redrawn from the distance
uncertainties many times, the profile recomputed for every draw, and the spread of every bin's
median (and its covariance between bins) recorded, ready for the broken power-law fit
(:func:`~sklearn_selfcal.gradients.fit_radial_gradient`).
"""

from __future__ import annotations

import numbers
import os
import warnings
from collections import Counter

import numpy as np
import pandas as pd

from .._kernels import profiles as _kprof
from .._kernels.sampling import as_generator
from .._kernels.binned import bin_index, grouped_median
from .._paper import ALPHA_SPLIT, MEDIAN_EFFICIENCY, PAPER_RADIUS_BINS
from .._validation import (check_finite_column, check_table, numeric_values, require_columns,
                           validate_catalogue)

__all__ = ["radial_abundance_profile", "profile_covariance", "write_profile_ecsv"]

POPULATIONS = ("all", "low_alpha", "high_alpha")
# Upper bound on the number of values gathered at once by the bootstrap (bounds its memory).
_BOOTSTRAP_CHUNK_ELEMENTS = 2**22


def radial_abundance_profile(
    frame,
    columns,
    *,
    radius="R",
    bins=PAPER_RADIUS_BINS,
    split="ALPHA_M",
    split_value=ALPHA_SPLIT,
    min_stars=4,
    n_bootstrap=0,
    radius_draws=None,
    calibration_draws=None,
    n_draws=100,
    random_state=None,
):
    """Median abundances in bins of Galactocentric radius, for all, low-alpha and high-alpha stars.

    The paper's Tables 1-3 and Figure 7: in every radial bin, the median of every abundance with the
    uncertainty of the median ``1.253 * std / sqrt(N)`` (``1.253 = sqrt(pi / 2)``; ``std`` is the
    sample standard deviation, ``ddof=1``, of the N stars in the bin with a finite value of that
    abundance). Optionally also a bootstrap uncertainty of every median, and the uncertainty the
    stars' distances add, propagated by Monte Carlo through the radii.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per star; not modified.
    columns : list of str
        Abundance columns (dex), e.g. ``["FE_H_NEW", "MG_FE_NEW"]`` (the calibrator's output) or the
        raw APOGEE names ``["FE_H", "MG_FE"]``. NaN values are excluded column by column.
    radius : str, default="R"
        Column of Galactocentric radius (kpc); must be finite for every star.
    bins : array-like of float, default=PAPER_RADIUS_BINS
        Increasing bin edges (kpc); bins are ``[edge_i, edge_{i+1})``. The default, edges
        0, 2, ..., 22 kpc, gives the paper's bins centred on 1, 3, ..., 21 kpc.
    split : str or None, default="ALPHA_M"
        Column used to split the populations ([alpha/M], dex); ``None`` gives only ``"all"``.
    split_value : float, default=0.12
        Low-alpha stars have ``split < split_value``, high-alpha stars ``split >= split_value``
        (dex). Stars with NaN in ``split`` count in ``"all"`` only.
    min_stars : int, default=4
        Bins with fewer finite values of an abundance than this get NaN median and uncertainty for
        that abundance (4 matches the paper's maps, which show bins with more than 3 stars).
    n_bootstrap : int, default=0
        Bootstrap resamples of every bin's stars; with ``n_bootstrap > 0`` every abundance ``X``
        gets ``X_ERR_BOOT``, the standard deviation of the resampled medians (dex).
    radius_draws : ndarray of shape (n_draws, n_stars), callable or None, default=None
        Monte Carlo draws of every star's radius (kpc) from its distance uncertainty (see
        :func:`~sklearn_selfcal.gradients.radius_sampler`): an array, one draw per row, or a
        callable ``draw(rng) -> ndarray (n_stars,)`` called ``n_draws`` times with a
        :class:`numpy.random.Generator` (one draw in memory at a time, for large catalogues).
        Every draw bins the stars anew (populations do not change); see Notes.
    calibration_draws : ndarray of shape (n_draws, n_stars, n_columns), callable or None
        Monte Carlo draws of the abundance columns under the calibration's uncertainty, e.g.
        ``lambda rng: calibrator.sample_transform(frame, random_state=rng)[:, index]`` with
        ``index`` picking ``columns`` from the calibrator's abundances
        (:meth:`~sklearn_selfcal.NuisanceCalibrator.sample_transform`): an array or a callable
        ``draw(rng) -> ndarray (n_stars, n_columns)``. The radii and populations do not change.
    n_draws : int, default=100
        Number of calls of a callable ``radius_draws`` or ``calibration_draws``.
    random_state : int, numpy Generator or RandomState, or None
        Seeds the bootstrap and the callables' generator.

    Returns
    -------
    profile : pandas.DataFrame
        One row per (population, bin), populations in the order ``"all"``, ``"low_alpha"``,
        ``"high_alpha"``, every bin present even if empty. Columns: ``population``; ``R`` (bin
        centre, kpc), ``R_MIN``, ``R_MAX`` (bin edges, kpc); ``R_MEDIAN`` (median radius of the
        bin's stars, kpc); ``N_STARS`` (stars of the population in the bin); and for every abundance
        column ``X``: ``X`` (median, dex), ``X_ERR`` (uncertainty of the median, dex) and ``X_N``
        (stars with a finite ``X``); with ``n_bootstrap``, ``X_ERR_BOOT`` (dex); with
        ``radius_draws``, ``R_MEDIAN_ERR_DIST`` (kpc) and ``X_ERR_DIST`` (dex); with
        ``calibration_draws``, ``X_ERR_CAL`` (dex); with either, ``X_ERR_TOTAL``, the paper's
        ``X_ERR`` and these in quadrature (dex). ``profile.attrs`` records ``radius``,
        ``split``, ``split_value``, ``bins``, ``min_stars``, ``n_bootstrap``, and with draws
        ``distance_covariance`` and ``calibration_covariance`` (population -> column -> the
        covariance of the bins' medians, dex^2, a nested list with NaN where undefined; see
        :func:`profile_covariance`), which :func:`write_profile_ecsv` writes as table metadata.

    Raises
    ------
    KeyError
        If a requested column is missing (the message names it).
    ValueError
        If a column is named twice (in ``columns`` or in ``frame``), an index label repeats, a
        column is not numeric, the radius (or a radius draw) is not finite for some star or is in
        pc rather than kpc, or ``bins`` is not increasing.

    Warns
    -----
    DataQualityWarning
        Naming an abundance or split column whose sentinels (-9999, ...), values outside the
        physical range or infinities were left out (NaN): never counted as numbers.

    Notes
    -----
    Distance uncertainties move stars between bins, so both a bin's median abundance and its
    median radius change from draw to draw. A fit places every bin at one radius
    (``R_MEDIAN`` of the point estimates), so a draw's median is first moved along the profile's
    local slope back to that radius: ``X_d - s (R_MEDIAN_d - R_MEDIAN)``, ``s`` the slope of the
    central profile between neighbouring bins. ``X_ERR_DIST`` is the standard deviation of these
    over the draws and ``distance_covariance`` their covariance between bins (neighbouring bins
    exchange stars, so their errors are correlated). The draws' spread is that of a profile
    whose radii carry the distance errors twice (once in the point estimates, once in the draws);
    to first order it is the spread the point estimates have about the truth.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> R = rng.uniform(0, 22, 3000)
    >>> frame = pd.DataFrame({"R": R, "FE_H": 0.4 - 0.06 * R + rng.normal(0, 0.1, R.size),
    ...                       "ALPHA_M": 0.03})
    >>> draws = R * rng.lognormal(0.0, 0.1, (50, R.size))  # 10 % distance-like errors
    >>> profile = radial_abundance_profile(frame, ["FE_H"], n_bootstrap=50, radius_draws=draws,
    ...                                    random_state=0)
    >>> low = profile[profile.population == "low_alpha"]
    >>> bool((low.FE_H_ERR_DIST > 0).all() and (low.FE_H_ERR_TOTAL > low.FE_H_ERR).all())
    True
    """
    profile, _ = profile_with_draws(
        frame, columns, radius=radius, bins=bins, split=split, split_value=split_value,
        min_stars=min_stars, n_bootstrap=n_bootstrap, radius_draws=radius_draws,
        calibration_draws=calibration_draws, n_draws=n_draws, random_state=random_state)
    return profile


def profile_with_draws(frame, columns, *, radius, bins, split, split_value, min_stars,
                       n_bootstrap, radius_draws, calibration_draws, n_draws, random_state):
    """:func:`radial_abundance_profile` and the per-draw medians of its Monte Carlo draws.

    Returns
    -------
    profile : DataFrame
    draws : dict
        ``"distance"``: (medians of shape (n_draws, 3, n_columns, n_bins), median radii of shape
        (n_draws, 3, n_bins)); ``"calibration"``: (medians, None); only the sources drawn.
        Populations in the order ``all, low_alpha, high_alpha``.
    """
    columns = [columns] if isinstance(columns, str) else list(columns)
    if not columns:
        raise ValueError("columns must name at least one abundance column")
    repeated = sorted(name for name, count in Counter(columns).items() if count > 1)
    if repeated:
        raise ValueError(f"radial_abundance_profile: column(s) {repeated} given more than once "
                         "in columns")
    edges = np.asarray(bins, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError(f"bins must be at least two increasing edges (kpc); got {bins!r}")
    for name, value, low in (("min_stars", min_stars, 2), ("n_bootstrap", n_bootstrap, 0),
                             ("n_draws", n_draws, 2)):
        if not (isinstance(value, numbers.Integral) and not isinstance(value, bool)
                and value >= low):
            raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")

    checked = validate_catalogue(frame, [radius, *columns, split], what="radial_abundance_profile",
                                 finite=(radius,), kpc=(radius,), min_rows=0, stacklevel=4)
    R = checked[radius]
    n_bins = edges.size - 1
    which = bin_index(R, edges)
    split_code = np.full(R.size, -1)
    populations = {"all": np.ones(R.size, dtype=bool)}
    if split is not None:
        alpha = checked[split]
        populations["low_alpha"] = alpha < split_value
        populations["high_alpha"] = alpha >= split_value
        split_code = np.where(populations["low_alpha"], 0, np.where(populations["high_alpha"], 1,
                                                                      -1))
    values = np.column_stack([checked[c] for c in columns])
    rng = as_generator(random_state)

    parts = []
    for name, member in populations.items():
        sel = member & (which >= 0)
        part = {
            "population": np.full(n_bins, name, dtype=object),
            "R": 0.5 * (edges[:-1] + edges[1:]),
            "R_MIN": edges[:-1],
            "R_MAX": edges[1:],
            "R_MEDIAN": np.full(n_bins, np.nan),
            "N_STARS": np.bincount(which[sel], minlength=n_bins),
        }
        stats = np.full((4, len(columns), n_bins), np.nan)  # median, err, n, bootstrap err
        for i in range(n_bins):
            rows = sel & (which == i)
            if rows.any():
                part["R_MEDIAN"][i] = np.median(R[rows])
            stats[:3, :, i] = _median_with_error(values[rows], min_stars)
            if n_bootstrap:
                stats[3, :, i] = _bootstrap_error(values[rows], min_stars, n_bootstrap, rng)
        for j, col in enumerate(columns):
            part[col] = stats[0, j]
            part[f"{col}_ERR"] = stats[1, j]
            part[f"{col}_N"] = stats[2, j].astype(int)
            if n_bootstrap:
                part[f"{col}_ERR_BOOT"] = stats[3, j]
        parts.append(pd.DataFrame(part))
    profile = pd.concat(parts, ignore_index=True)
    profile.attrs.update(
        radius=radius,
        split=split,
        split_value=float(split_value),
        bins=edges.tolist(),
        min_stars=int(min_stars),
        columns=columns,
        uncertainty="1.253 * std(ddof=1) / sqrt(N), N = stars with a finite value in the bin",
        n_bootstrap=int(n_bootstrap),
    )
    n_pops = len(populations)
    draws = {}
    if radius_draws is not None:
        draws["distance"] = _radius_mc(_draws(radius_draws, n_draws, rng, (R.size,), "radius"),
                                       values, edges, split_code, n_pops, min_stars)
        _store_mc(profile, "distance", "DIST", *draws["distance"], columns, n_pops)
    if calibration_draws is not None:
        draws["calibration"] = (_value_mc(_draws(calibration_draws, n_draws, rng, values.shape,
                                                 "calibration"),
                                          which, split_code, n_bins, n_pops, min_stars), None)
        _store_mc(profile, "calibration", "CAL", *draws["calibration"], columns, n_pops)
    for col in columns:
        extra = [f"{col}_ERR_{s}" for s in ("DIST", "CAL") if f"{col}_ERR_{s}" in profile]
        if extra:
            profile[f"{col}_ERR_TOTAL"] = np.sqrt(profile[[f"{col}_ERR", *extra]].pow(2).sum(
                axis=1, min_count=len(extra) + 1))
    return profile, draws


def _median_with_error(values, min_stars):
    """Per-column median, ``1.253 std / sqrt(N)`` and N of an (n_stars, n_columns) block.

    NaNs are excluded column by column; columns with fewer than ``min_stars`` values get NaN.
    """
    n = np.sum(np.isfinite(values), axis=0)
    out = np.full((3, values.shape[1]), np.nan)
    out[2] = n
    enough = n >= min_stars
    if enough.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            block = values[:, enough]
            out[0, enough] = np.nanmedian(block, axis=0)
            out[1, enough] = (
                MEDIAN_EFFICIENCY * np.nanstd(block, axis=0, ddof=1) / np.sqrt(n[enough])
            )
    return out


def _bootstrap_error(values, min_stars, n_bootstrap, rng):
    """Standard deviation of the medians of ``n_bootstrap`` resamples of the rows, per column."""
    n_rows, n_cols = values.shape
    n = np.sum(np.isfinite(values), axis=0)
    out = np.full(n_cols, np.nan)
    if n_rows == 0 or not (n >= min_stars).any():
        return out
    reduce = np.nanmedian if np.isnan(values).any() else np.median
    chunk = max(1, _BOOTSTRAP_CHUNK_ELEMENTS // (n_rows * n_cols))
    medians = []
    for start in range(0, n_bootstrap, chunk):
        idx = rng.integers(0, n_rows, size=(min(chunk, n_bootstrap - start), n_rows))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN resample of a column
            medians.append(reduce(values[idx], axis=1))
    medians = np.concatenate(medians, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = np.nanstd(medians, axis=0, ddof=1)
    out[n >= min_stars] = spread[n >= min_stars]
    return out


def _draws(draws, n_draws, rng, shape, what):
    """Iterate over Monte Carlo draws (an array, one per row, or a callable), checking each."""
    if callable(draws):
        source = (draws(rng) for _ in range(n_draws))
    else:
        draws = numeric_values(draws, f"{what}_draws")
        if draws.shape[1:] != shape or draws.shape[0] < 2:
            raise ValueError(f"{what}_draws must have shape (n_draws >= 2, "
                             f"{', '.join(map(str, shape))}); got {draws.shape}")
        source = iter(draws)
    for d, draw in enumerate(source):
        draw = numeric_values(draw, f"{what} draw {d}")
        if draw.shape != shape:
            raise ValueError(f"{what} draw {d} has shape {draw.shape}; expected {shape}")
        if what == "radius":
            check_finite_column(draw, f"radius draw {d}")
        yield draw


def _groupings(b, split_code, n_bins, n_pops):
    """Group index of every star for "all" (the bins) and for the two split populations."""
    groups = {"all": (b, n_bins, slice(0, 1))}
    if n_pops > 1:
        groups["split"] = (np.where((split_code >= 0) & (b >= 0), split_code * n_bins + b, -1),
                           2 * n_bins, slice(1, 3))
    return groups


def _radius_mc(draws, values, edges, split_code, n_pops, min_stars):
    """Medians of every column (and of R) per population and bin, for every radius draw."""
    n_bins, n_cols = edges.size - 1, values.shape[1]
    orders, sorted_values = _kprof.presort(values)
    medians, r_medians = [], []
    for draw in draws:
        this = np.full((3, n_cols, n_bins), np.nan)
        this_r = np.full((3, n_bins), np.nan)
        order = np.argsort(draw, kind="stable")
        for g, n_groups, rows in _groupings(bin_index(draw, edges), split_code, n_bins,
                                            n_pops).values():
            med, _ = _kprof.group_medians(draw[order], g[order], n_groups)
            this_r[rows] = med.reshape(-1, n_bins)
            for k in range(n_cols):
                med, count = _kprof.group_medians(sorted_values[k], g[orders[k]], n_groups)
                med[count < min_stars] = np.nan
                this[rows, k] = med.reshape(-1, n_bins)
        medians.append(this)
        r_medians.append(this_r)
    return np.asarray(medians), np.asarray(r_medians)


def _value_mc(draws, which, split_code, n_bins, n_pops, min_stars):
    """Medians of every column per population and bin (fixed bins), for every draw of values."""
    groups = _groupings(which, split_code, n_bins, n_pops)
    medians = []
    for draw in draws:
        this = np.full((3, draw.shape[1], n_bins), np.nan)
        for g, n_groups, rows in groups.values():
            for k in range(draw.shape[1]):
                med, count = grouped_median(g, draw[:, k], n_groups)
                med[count < min_stars] = np.nan
                this[rows, k] = med.reshape(-1, n_bins)
        medians.append(this)
    return np.asarray(medians)


def _store_mc(profile, source, suffix, medians, r_medians, columns, n_pops):
    """Spread and covariance over the draws of every bin's median, into ``profile``.

    With ``r_medians`` (radius draws) every draw's median is first moved along the central
    profile's local slope from the draw's median radius to the central one.
    """
    n_bins = medians.shape[-1]
    covariance = {}
    err = np.full((3, len(columns), n_bins), np.nan)
    for p, name in enumerate(POPULATIONS[:n_pops]):
        rows = (profile["population"] == name).to_numpy()
        x_c = profile.loc[rows, "R_MEDIAN"].to_numpy()
        covariance[name] = {}
        for k, col in enumerate(columns):
            y_c = profile.loc[rows, col].to_numpy()
            shifted = medians[:, p, k]
            if r_medians is not None:
                shifted = shifted - _local_slope(x_c, y_c) * (r_medians[:, p] - x_c)
            cov = pd.DataFrame(shifted).cov(min_periods=2).to_numpy(copy=True)
            cov[~np.isfinite(y_c)] = np.nan
            cov[:, ~np.isfinite(y_c)] = np.nan
            err[p, k] = np.sqrt(np.diag(cov))
            covariance[name][col] = cov.tolist()
    if r_medians is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            profile["R_MEDIAN_ERR_DIST"] = np.nanstd(r_medians[:, :n_pops], axis=0,
                                                     ddof=1).ravel()
    for k, col in enumerate(columns):
        profile[f"{col}_ERR_{suffix}"] = err[:n_pops, k].ravel()
    profile.attrs[f"{source}_covariance"] = covariance
    profile.attrs[f"n_{source}_draws"] = int(medians.shape[0])


def _local_slope(x, y):
    """Slope dy/dx of a profile at every point from its finite neighbours (0 where undefined)."""
    slope = np.zeros(x.size)
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    if ok.size >= 2:
        slope[ok] = np.gradient(y[ok], x[ok])
    return slope


def profile_covariance(profile, column, *, population="low_alpha", distance=False,
                       calibration=False):
    """Covariance (dex^2) of the bins' medians of one column and population of a profile.

    Parameters
    ----------
    profile : DataFrame
        Output of :func:`radial_abundance_profile`.
    column : str
        Abundance column.
    population : {"all", "low_alpha", "high_alpha"}
    distance, calibration : bool, default False
        Add the covariance from the distance (``radius_draws``) or calibration
        (``calibration_draws``) uncertainties to the paper's independent uncertainties
        ``X_ERR^2``; the profile must have been made with those draws.

    Returns
    -------
    cov : ndarray of shape (n_bins, n_bins)
        In the order of the population's rows; NaN rows and columns for bins without a median.
    """
    profile = check_table(profile, "profile_covariance")
    err = validate_catalogue(profile, [f"{column}_ERR"], what="profile_covariance")[f"{column}_ERR"]
    require_columns(profile.columns, ["population"], what="profile_covariance")
    rows = (profile["population"] == population).to_numpy()
    if not rows.any():
        raise ValueError(f"population {population!r} is not in the profile; it has "
                         f"{sorted(set(profile['population']))}")
    cov = np.diag(err[rows] ** 2)
    for source, wanted in (("distance", distance), ("calibration", calibration)):
        if not wanted:
            continue
        stored = profile.attrs.get(f"{source}_covariance", {}).get(population, {}).get(column)
        if stored is None:
            draws = "radius_draws" if source == "distance" else "calibration_draws"
            raise ValueError(f"the profile has no {source} covariance for {column!r} "
                             f"({population}); make it with {draws}")
        cov = cov + np.asarray(stored, dtype=float)
    return cov


def write_profile_ecsv(profile, path):
    """Write a radial profile table as ECSV with units and the binning in the metadata.

    Parameters
    ----------
    profile : pandas.DataFrame
        Output of :func:`radial_abundance_profile`; not modified.
    path : str or path-like
        Destination ``.ecsv`` file, written atomically (:func:`sklearn_selfcal.io.write_table`): an
        existing file is replaced, an interrupted write never leaves a half-written table.

    Returns
    -------
    path : str
        The path written.

    Notes
    -----
    Units: ``R``, ``R_MIN``, ``R_MAX``, ``R_MEDIAN`` (and ``R_MEDIAN_ERR_DIST``) in kpc; every
    abundance and uncertainty column in dex; counts unitless. ``profile.attrs`` (radius column,
    split, bins, uncertainty definitions, the distance covariance) goes to the ECSV metadata.
    Read back with ``astropy.table.Table.read(path)`` or :func:`sklearn_selfcal.io.read_catalogue`.
    """
    from ..io import write_table

    units = {name: "kpc" for name in ("R", "R_MIN", "R_MAX", "R_MEDIAN", "R_MEDIAN_ERR_DIST")
             if name in profile.columns}
    for col in profile.attrs.get("columns", []):
        units.update({name: "dex" for name in (col, f"{col}_ERR", f"{col}_ERR_BOOT",
                                               f"{col}_ERR_DIST", f"{col}_ERR_CAL",
                                               f"{col}_ERR_TOTAL")
                      if name in profile.columns})
    meta = dict(profile.attrs)
    meta["description"] = (
        "Median abundances in bins of Galactocentric radius (Eilers et al. 2022, Tables 1-3); "
        "uncertainty of the median = 1.253 std / sqrt(N)"
    )
    path = os.fspath(path)
    write_table(profile, path, units=units, meta=meta)
    return path
