"""The paper's figures (Eilers et al. 2022, Figures 1-10 and 13-17) drawn with matplotlib.

Every function returns a :class:`matplotlib.figure.Figure` built with the object-oriented API on a
standalone ``Figure`` (never ``pyplot``): nothing is shown, no global figure registry or backend is
involved, so the functions run headless and in threads. Save with ``fig.savefig(path)``; show in a
notebook by displaying the returned object. The numbers drawn come from :mod:`sklearn_selfcal.maps`
and :func:`sklearn_selfcal.gradients.radial_abundance_profile`; :func:`render_all_figures` writes
every figure as a PNG.

Artists that carry data have a ``gid`` (``"map"``, ``"velocity"``, ``"bar_outline"``,
``"ring_5"``, ``"sun"``, ``"galactic_centre"``, ``"n_stars"``, ...) so that they can be found with
``[a for a in ax.get_children() if a.get_gid() == "map"]``.
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from sklearn.utils import check_random_state

from . import maps
from ._kernels.broken_line import broken_line
from ._progress import progress
from ._validation import require_columns

__all__ = [
    "FIGURES",
    "FigureSpec",
    "abundance_label",
    "plot_abundance_maps",
    "plot_alpha_iron_planes",
    "plot_broken_power_law",
    "plot_logg_trends",
    "plot_metallicity_map",
    "plot_on_off_bar",
    "plot_radial_gradients",
    "plot_sample_overview",
    "render_all_figures",
]

_X_LABEL = r"$x$ [kpc]"
_Y_LABEL = r"$y$ [kpc]"
_RINGS = (5.0, 10.0, 15.0, 20.0, 25.0)
_POPULATION_LABELS = {"all": "all stars", "low_alpha": r"low-$\alpha$", "high_alpha": r"high-$\alpha$"}
_BIN_LABELS = {"|z|": r"$|z|$", "R": r"$R$", "L_z": r"$L_z$", "sqrt(J_R^2 + J_z^2)": r"$\sqrt{J_R^2 + J_z^2}$"}
_UNIT_LABELS = {"kpc km/s": r"kpc km s$^{-1}$"}
_LOGG_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")


# ---------------------------------------------------------------------------- labels and helpers


def abundance_label(name, *, unit=True):
    """Readable label of an abundance column, e.g. ``"MG_FE_NEW"`` -> ``"[Mg/Fe] [dex]"``.

    Parameters
    ----------
    name : str
        APOGEE-style column name (``FE_H``, ``<X>_FE``, ``ALPHA_M``, ``M_H``), optionally with the
        calibrated suffix ``_NEW``.
    unit : bool, default=True
        Append `` [dex]``.

    Returns
    -------
    label : str
        Matplotlib mathtext label; unknown names are returned unchanged (plus the unit).
    """
    base = name.removesuffix("_NEW")
    special = {"FE_H": "[Fe/H]", "ALPHA_M": r"[$\alpha$/M]", "M_H": "[M/H]"}
    if base in special:
        label = special[base]
    elif re.fullmatch(r"[A-Z]{1,2}_FE", base):
        label = f"[{base[:-3].capitalize()}/Fe]"
    else:
        label = name
    return f"{label} [dex]" if unit else label


def _new_figure(n_rows, n_cols, panel_size=(3.4, 3.0), figsize=None, **subplot_kw):
    figsize = (panel_size[0] * n_cols, panel_size[1] * n_rows) if figsize is None else figsize
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False, **subplot_kw)
    return fig, axes


def _circle(radius, n_points=361):
    t = np.linspace(0.0, 2.0 * np.pi, n_points)
    return radius * np.cos(t), radius * np.sin(t)


def _mark_galaxy(ax, *, rings=_RINGS, bar=True, sun=True, centre=True, marker_size=11):
    """Rings of constant R, the bar outline, the Sun and the Galactic centre on a face-on panel."""
    for r in rings:
        ax.plot(*_circle(r), color="0.5", lw=0.6, zorder=3, gid=f"ring_{r:g}")
    if bar:
        xy = maps.bar_outline()
        ax.plot(xy[:, 0], xy[:, 1], color="0.35", lw=0.8, zorder=3, gid="bar_outline")
    if sun:  # the astronomical Sun symbol: a circle with a dot (plain markers, no mathtext glyphs)
        ax.plot(*maps.SUN_XY, marker="o", mfc="white", mec="k", mew=1.3, ms=marker_size, ls="none", zorder=4,
                gid="sun")
        ax.plot(*maps.SUN_XY, marker="o", color="k", ms=0.25 * marker_size, ls="none", zorder=5, gid="sun_dot")
    if centre:
        ax.plot(0.0, 0.0, marker="+", color="k", ms=0.7 * marker_size, mew=1.2, ls="none", zorder=4,
                gid="galactic_centre")


def _face_on_axes(ax, extent=None):
    ax.set_aspect("equal")
    ax.set_xlabel(_X_LABEL)
    ax.set_ylabel(_Y_LABEL)
    if extent is not None:
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])


def _corner_text(ax, text, gid="n_stars"):
    ax.text(0.97, 0.03, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=9, gid=gid,
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.7})


def _draw_map(ax, result, *, cmap, vmin=None, vmax=None, norm=None):
    mesh = ax.pcolormesh(result.x_edges, result.y_edges, np.ma.masked_invalid(result.statistic),
                         cmap=cmap, vmin=None if norm else vmin, vmax=None if norm else vmax, norm=norm,
                         shading="flat", gid="map", rasterized=True)
    return mesh


def _data_extent(frame, x="x", y="y", where=None, pad=0.5):
    require_columns(frame.columns, [x, y], what="face-on map")
    xs, ys = frame[x].to_numpy(dtype=float), frame[y].to_numpy(dtype=float)
    ok = np.isfinite(xs) & np.isfinite(ys)
    if where is not None:
        ok &= np.asarray(where, dtype=bool)
    if not ok.any():
        raise ValueError("no star has a finite position (x, y)")
    return (xs[ok].min() - pad, xs[ok].max() + pad, ys[ok].min() - pad, ys[ok].max() + pad)


def _shown_limits(results, margin=1.0):
    """Axis limits (kpc) around the bins shown in any of the maps, plus ``margin``."""
    xs, ys = [], []
    for r in results:
        iy, ix = np.nonzero(np.isfinite(r.statistic))
        xs += [r.x_edges[ix], r.x_edges[ix + 1]]
        ys += [r.y_edges[iy], r.y_edges[iy + 1]]
    xs, ys = np.concatenate(xs), np.concatenate(ys)
    if xs.size == 0:
        r = results[0]
        return (r.x_edges[0], r.x_edges[-1], r.y_edges[0], r.y_edges[-1])
    return (xs.min() - margin, xs.max() + margin, ys.min() - margin, ys.max() + margin)


def _calibrated_or_reported(frame, name):
    return f"{name}_NEW" if f"{name}_NEW" in frame.columns else name


# ---------------------------------------------------------------------------- Figure 1


def plot_sample_overview(frame, *, teff="TEFF", logg="LOGG", color="FE_H", bin_size=0.75, x="x", y="y",
                         figsize=None):
    """Figure 1: the sample in the Kiel diagram and on the face-on star-count map.

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue with ``TEFF`` (K), ``LOGG`` (dex), ``color`` (dex) and ``x, y`` (kpc); not modified.
    teff, logg, color : str
        Columns of the effective temperature (K), surface gravity (dex) and the colour-coded quantity
        (the reported [Fe/H], dex).
    bin_size : float, default=0.75
        Bin width of the star-count map (kpc).
    x, y : str
        Galactocentric coordinate columns (kpc).
    figsize : tuple of float or None
        Figure size (inches).

    Returns
    -------
    fig : matplotlib.figure.Figure
        Left: log g against Teff (both axes reversed, as a Kiel diagram), points coloured by
        ``color``. Right: number of stars per ``bin_size`` bin (logarithmic colour scale; empty bins
        blank), the Sun and the Galactic centre marked.
    """
    require_columns(frame.columns, [teff, logg, color, x, y], what="plot_sample_overview")
    fig, axes = _new_figure(1, 2, panel_size=(5.0, 4.3), figsize=figsize)
    ax = axes[0, 0]
    c = frame[color].to_numpy(dtype=float)
    lo, hi = maps.color_limits(c, (2, 98))
    order = np.argsort(np.where(np.isfinite(c), c, -np.inf))
    points = ax.scatter(frame[teff].to_numpy(dtype=float)[order], frame[logg].to_numpy(dtype=float)[order],
                        c=c[order], s=2, cmap="viridis", vmin=lo, vmax=hi, lw=0, rasterized=True, gid="kiel")
    ax.set_xlim(*np.nanpercentile(frame[teff], [99.9, 0.1]))
    ax.set_ylim(*np.nanpercentile(frame[logg], [99.9, 0.1]))
    ax.set_xlabel(r"$T_{\rm eff}$ [K]")
    ax.set_ylabel(r"$\log g$ [dex]")
    fig.colorbar(points, ax=ax, label=abundance_label(color))
    _corner_text(ax, f"N = {np.isfinite(c).sum():,}")

    ax = axes[0, 1]
    counts = maps.face_on_map(frame, statistic="count", bin_size=bin_size, min_stars=1, x=x, y=y)
    mesh = _draw_map(ax, counts, cmap="magma_r",
                     norm=LogNorm(vmin=1, vmax=max(2, np.nanmax(counts.statistic))))
    fig.colorbar(mesh, ax=ax, label=f"stars per {bin_size:g} kpc bin")
    _mark_galaxy(ax, rings=(), bar=False)
    _face_on_axes(ax, _shown_limits([counts]))
    _corner_text(ax, f"N = {counts.n_stars:,}")
    return fig


# ---------------------------------------------------------------------------- Figures 2-4


def plot_logg_trends(frame, abundance, *, calibrated=None, trends=None, figsize=None, **trend_kwargs):
    """Figures 2-4: an abundance against J_R, J_z, L_z, R and z in four equal-count log g bins.

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue (see :func:`sklearn_selfcal.maps.logg_trends`); not modified.
    abundance : str
        Reported abundance column (dex), e.g. ``"FE_H"``; drawn in the top row.
    calibrated : str or None, default=None
        Calibrated column (``abundance + "_NEW"``), drawn in the bottom row.
    trends : pandas.DataFrame or None, default=None
        Precomputed output of :func:`~sklearn_selfcal.maps.logg_trends`; computed when ``None``.
    figsize : tuple of float or None
        Figure size (inches).
    **trend_kwargs
        Passed to :func:`~sklearn_selfcal.maps.logg_trends` (``features``, ``n_logg_bins``,
        ``n_feature_bins``, ``min_stars``, ...).

    Returns
    -------
    fig : matplotlib.figure.Figure
        Two rows (reported, calibrated) by one column per feature; in every panel one line of
        binned medians per log g bin (``gid="logg_bin_<i>"``) with a band of the uncertainty of the
        median. Rows share the vertical range.
    """
    if trends is None:
        trends = maps.logg_trends(frame, abundance, calibrated=calibrated, **trend_kwargs)
    features = list(dict.fromkeys(trends["feature"]))
    n_logg = int(trends["logg_bin"].max()) + 1
    fig, axes = _new_figure(2, len(features), panel_size=(3.0, 2.6), figsize=figsize, sharey=True)
    stages = (("input", "APOGEE (input)"), ("calibrated", "self-calibrated"))
    for row, (stage, stage_label) in enumerate(stages):
        part = trends[trends["stage"] == stage]
        column = part["column"].iloc[0]
        for col, feature in enumerate(features):
            ax = axes[row, col]
            sub = part[part["feature"] == feature]
            for i in range(n_logg):
                b = sub[sub["logg_bin"] == i]
                colour = _LOGG_COLOURS[i % len(_LOGG_COLOURS)]
                label = rf"{b['logg_min'].iloc[0]:.2f} $\leq \log g \leq$ {b['logg_max'].iloc[0]:.2f}"
                xs, med, err = (b[k].to_numpy() for k in ("feature_centre", "median", "median_err"))
                ax.fill_between(xs, med - err, med + err, color=colour, alpha=0.25, lw=0)
                ax.plot(xs, med, color=colour, lw=1.4, label=label, gid=f"logg_bin_{i}")
            ax.set_xlabel(maps.TREND_FEATURES.get(feature, feature))
            if col == 0:
                ax.set_ylabel(f"{abundance_label(column, unit=False)} {stage_label} [dex]")
    axes[0, 0].legend(fontsize=7, loc="best")
    fig.suptitle(f"{abundance_label(abundance, unit=False)} before (top) and after (bottom) the "
                 "self-calibration, in equal-count log g bins")
    return fig


# ---------------------------------------------------------------------------- Figure 5


def plot_metallicity_map(frame, *, column=None, z_max=1.0, bin_size=0.5, statistic="mean", min_stars=4,
                         percentiles=(7.0, 93.0), arrow_scale=400.0, x="x", y="y", z="z", v_x="v_x",
                         v_y="v_y", figsize=None):
    """Figure 5: face-on [Fe/H] map of the disk with the mean in-plane motion per bin.

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue with ``x, y, z`` (kpc), ``v_x, v_y`` (km/s) and ``column``; not modified.
    column : str or None, default=None
        Colour-coded abundance (dex); ``None``: ``FE_H_NEW`` if present, else ``FE_H``.
    z_max : float, default=1.0
        Only stars with ``|z| < z_max`` (kpc).
    bin_size : float, default=0.5
        Bin width (kpc).
    statistic : {"mean", "median"}, default="mean"
        Statistic of the abundance per bin (the paper's caption: the mean).
    min_stars : int, default=4
        Bins with fewer stars are blank and carry no arrow.
    percentiles : tuple of 2 float, default=(7, 93)
        Colour limits from these percentiles of the binned values.
    arrow_scale : float, default=400
        Velocity (km/s) drawn as an arrow 1 kpc long.
    x, y, z, v_x, v_y : str
        Column names.
    figsize : tuple of float or None
        Figure size (inches).

    Returns
    -------
    fig : matplotlib.figure.Figure
        One panel: the binned abundance (``gid="map"``), arrows of the mean ``(v_x, v_y)`` of every
        shown bin (``gid="velocity"``, a Quiver whose ``U, V`` are the means in km/s), rings every
        5 kpc, the bar outline, the Sun and the Galactic centre.
    """
    column = _calibrated_or_reported(frame, "FE_H") if column is None else column
    require_columns(frame.columns, [x, y, z, v_x, v_y, column], what="plot_metallicity_map")
    with np.errstate(invalid="ignore"):
        slab = np.abs(frame[z].to_numpy(dtype=float)) < z_max
    extent = _data_extent(frame, x, y, where=slab, pad=0.0)
    result = maps.face_on_map(frame, column, where=slab, bin_size=bin_size, statistic=statistic,
                              min_stars=min_stars, x=x, y=y, extent=extent)
    vel = maps.velocity_map(frame, where=slab & np.isfinite(frame[column].to_numpy(dtype=float)),
                            bin_size=bin_size, min_stars=min_stars, x=x, y=y, v_x=v_x, v_y=v_y,
                            extent=extent)
    fig, axes = _new_figure(1, 1, panel_size=(8.0, 7.0), figsize=figsize)
    ax = axes[0, 0]
    vmin, vmax = maps.color_limits(result.statistic, percentiles)
    mesh = _draw_map(ax, result, cmap="viridis", vmin=vmin, vmax=vmax)
    fig.colorbar(mesh, ax=ax, label=f"{statistic} {abundance_label(column)}", shrink=0.8)
    shown = np.isfinite(vel.mean_v_x) & np.isfinite(vel.mean_v_y)
    X, Y = np.meshgrid(vel.x_centres, vel.y_centres)
    ax.quiver(X[shown], Y[shown], vel.mean_v_x[shown], vel.mean_v_y[shown], angles="xy",
              scale_units="xy", scale=arrow_scale, width=0.0018, headwidth=3.5, headlength=4,
              headaxislength=3.5, color="k", alpha=0.75,
              zorder=2, gid="velocity")
    _mark_galaxy(ax)
    _face_on_axes(ax, _shown_limits([result]))
    ax.set_title(rf"$|z| < {z_max:g}$ kpc, {bin_size:g} kpc bins; arrows: mean $(v_x, v_y)$ "
                 rf"({arrow_scale:g} km s$^{{-1}}$ per kpc)", fontsize=9)
    _corner_text(ax, f"N = {result.n_stars:,}")
    return fig


# ---------------------------------------------------------------------------- Figures 6, 14-17


def plot_abundance_maps(frame, abundances=maps.FIGURE6_ABUNDANCES, *, populations=("low_alpha", "high_alpha"),
                        difference=False, calibrated_suffix="_NEW", n_cols=None, bin_size=0.75, min_stars=4,
                        percentiles=(7.0, 93.0), alpha=None, split=maps.ALPHA_SPLIT, rings=_RINGS, x="x",
                        y="y", panel_size=(3.4, 3.0), figsize=None):
    """Figures 6 and 14-17: face-on median maps of abundances for the low- and high-alpha disks.

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue with ``x, y`` (kpc), the abundances and the [alpha/M] split column; not modified.
        The paper's maps use its disk sample (``|z| < 1`` kpc or a 6 degree wedge; see
        :func:`sklearn_selfcal.selection.disk_sample_mask`); pass the frame already cut.
    abundances : sequence of str, default=("FE_H", "MG_FE", "O_FE", "NI_FE")
        Reported abundance names (dex); the calibrated columns are ``name + calibrated_suffix``.
    populations : sequence of {"low_alpha", "high_alpha", "all"}, default=("low_alpha", "high_alpha")
        One block of panel rows per population, in this order.
    difference : bool, default=False
        Map ``calibrated - reported`` (Figures 16-17; diverging colour map, limits symmetric about
        zero from the same percentiles) instead of the calibrated abundance.
    calibrated_suffix : str or None, default="_NEW"
        Suffix of the calibrated columns; ``None`` or ``""`` maps the reported columns themselves
        (not allowed with ``difference``).
    n_cols : int or None, default=None
        Panels per row; ``None``: ``min(len(abundances), 4)``.
    bin_size : float, default=0.75
        Bin width (kpc).
    min_stars : int, default=4
        Bins with fewer stars are blank (the paper: more than 3 stars).
    percentiles : tuple of 2 float, default=(7, 93)
        Colour limits of every panel: these percentiles of its binned medians.
    alpha : str or None, default=None
        [alpha/M] column for the split; ``None``: ``ALPHA_M_NEW`` if present, else ``ALPHA_M``.
    split : float, default=0.12
        Low-alpha: ``[alpha/M] < split``; high-alpha: ``>= split`` (dex).
    rings : sequence of float, default=(5, 10, 15, 20, 25)
        Radii of the grey rings (kpc).
    x, y : str
        Galactocentric coordinate columns (kpc).
    panel_size, figsize : tuple of float or None
        Size of one panel or of the whole figure (inches).

    Returns
    -------
    fig : matplotlib.figure.Figure
        One panel per (population, abundance) with the binned median (``gid="map"``, NaN where a bin
        has fewer than ``min_stars`` stars), its own colour bar, the number of stars mapped in the
        lower right corner (``gid="n_stars"``), the Sun and the Galactic centre. All panels share
        one grid (edges on multiples of ``bin_size``) and axis range.
    """
    abundances = [abundances] if isinstance(abundances, str) else list(abundances)
    if not abundances:
        raise ValueError("abundances must name at least one abundance")
    suffix = calibrated_suffix or ""
    if difference and not suffix:
        raise ValueError("difference maps need calibrated_suffix (calibrated minus reported)")
    shown_cols = [a + suffix for a in abundances]
    needed = shown_cols + (abundances if difference else [])
    require_columns(frame.columns, [x, y, *needed], what="plot_abundance_maps")
    masks = maps.alpha_population_masks(frame, column=alpha, split=split)
    unknown = [p for p in populations if p not in masks]
    if unknown:
        raise ValueError(f"unknown population(s) {unknown}; choose from {list(masks)}")
    n_cols = min(len(abundances), 4) if n_cols is None else int(n_cols)
    rows_per_pop = -(-len(abundances) // n_cols)
    extent = _data_extent(frame, x, y, pad=0.0)
    fig, axes = _new_figure(rows_per_pop * len(populations), n_cols, panel_size=panel_size, figsize=figsize,
                            sharex=True, sharey=True)
    for ax in axes.ravel():
        ax.set_visible(False)
    cmap = "RdBu_r" if difference else "viridis"
    panels = []
    for p, population in enumerate(populations):
        for k, name in enumerate(abundances):
            result = maps.face_on_map(frame, name + suffix, minus=name if difference else None,
                                      where=masks[population], bin_size=bin_size, min_stars=min_stars,
                                      x=x, y=y, extent=extent)
            panels.append((axes[p * rows_per_pop + k // n_cols, k % n_cols], population, name, result))
    limits = _shown_limits([panel[3] for panel in panels])
    for ax, population, name, result in panels:
        ax.set_visible(True)
        vmin, vmax = maps.color_limits(result.statistic, percentiles, symmetric=difference)
        mesh = _draw_map(ax, result, cmap=cmap, vmin=vmin, vmax=vmax)
        label = abundance_label(name, unit=False)
        if difference:
            cbar_label, title = rf"$\Delta${label} [dex]", rf"{label}: calibrated $-$ input"
        else:
            cbar_label, title = f"{label} [dex]", f"{label}{' (calibrated)' if suffix else ''}"
        fig.colorbar(mesh, ax=ax, label=cbar_label, shrink=0.85)
        _mark_galaxy(ax, rings=rings, bar=False, marker_size=7)
        _face_on_axes(ax, limits)
        ax.set_title(f"{title}, {_POPULATION_LABELS[population]}", fontsize=9)
        _corner_text(ax, f"N = {result.n_stars:,}")
    _outer_labels_only(axes)
    return fig


def _outer_labels_only(axes):
    """On a grid of panels sharing axes, keep tick labels and axis labels on the outer panels only."""
    n_rows, n_cols = axes.shape
    for r in range(n_rows):
        for c in range(n_cols):
            ax = axes[r, c]
            if not ax.get_visible():
                continue
            bottom = r == n_rows - 1 or not axes[r + 1, c].get_visible()
            ax.tick_params(labelbottom=bottom, labelleft=c == 0)
            if not bottom:
                ax.set_xlabel("")
            if c != 0:
                ax.set_ylabel("")


# ---------------------------------------------------------------------------- Figure 7


def plot_radial_gradients(profile, columns=None, *, population="low_alpha", step=0.15, radius="R",
                          grid_spacing=0.1, figsize=None):
    """Figure 7: median radial profiles of many abundances, stacked with offsets and sorted by slope.

    Parameters
    ----------
    profile : pandas.DataFrame
        Output of :func:`sklearn_selfcal.gradients.radial_abundance_profile` (medians and their
        ``_ERR`` per radial bin).
    columns : sequence of str or None, default=None
        Abundance columns to draw; ``None``: every column of ``profile.attrs["columns"]`` except
        [alpha/M] and [M/H].
    population : str, default="low_alpha"
        Rows of ``profile`` to draw.
    step : float, default=0.15
        Vertical spacing of consecutive curves (dex); see
        :func:`~sklearn_selfcal.maps.radial_gradient_layout`.
    radius : str, default="R"
        Column of the bin centres (kpc).
    grid_spacing : float, default=0.1
        Spacing of the grey horizontal lines that give the scale (dex).
    figsize : tuple of float or None
        Figure size (inches).

    Returns
    -------
    fig : matplotlib.figure.Figure
        Left: abundances with a non-negative slope; right: negative slopes. Each curve
        (``gid="profile_<column>"``) is ``median + offset`` with error bars, labelled at its outer
        end, coloured from purple (steepest positive) to green (steepest negative).
    """
    if columns is None:
        columns = [c for c in profile.attrs.get("columns", [])
                   if c.replace("_NEW", "") not in ("ALPHA_M", "M_H")]
    layout = maps.radial_gradient_layout(profile, columns, population=population, step=step, radius=radius)
    layout = layout[np.isfinite(layout["slope"])]
    part = profile[profile["population"] == population]
    R = part[radius].to_numpy(dtype=float)
    fig, axes = _new_figure(1, 2, panel_size=(4.5, 7.0), figsize=figsize, sharey=True)
    cmap = colormaps["PRGn"]
    for panel, (start, stop) in enumerate(((0.0, 0.3), (0.7, 1.0))):  # purple: positive, green: negative
        in_panel = layout[layout["panel"] == panel]
        n = len(in_panel)
        for rank, (col, row) in enumerate(in_panel.iterrows()):
            ax = axes[0, panel]
            y = part[col].to_numpy(dtype=float) + row["offset"]
            e = part[f"{col}_ERR"].to_numpy(dtype=float)
            colour = cmap(start + (stop - start) * rank / max(n - 1, 1))
            ok = np.isfinite(y)
            ax.errorbar(R[ok], y[ok], yerr=e[ok], color=colour, marker="o", ms=3, lw=1.2, capsize=0,
                        gid=f"profile_{col}")
            ax.annotate(abundance_label(col, unit=False), (R[ok][-1], y[ok][-1]), xytext=(4, 0),
                        textcoords="offset points", va="center", fontsize=8, color=colour)
    lo, hi = axes[0, 0].get_ylim()
    for ax, title in zip(axes[0], ("positive slopes", "negative slopes")):
        for level in np.arange(np.floor(lo / grid_spacing), np.ceil(hi / grid_spacing) + 1) * grid_spacing:
            ax.axhline(level, color="0.85", lw=0.5, zorder=0, gid="scale_line")
        ax.set_xlabel(r"$R_{\rm GC}$ [kpc]")
        ax.set_title(f"{_POPULATION_LABELS.get(population, population)}: {title}", fontsize=10)
        ax.set_xlim(R.min() - 1, R.max() + 3.5)
    axes[0, 0].set_ylabel(f"median abundance + offset [dex] (grey lines every {grid_spacing:g} dex)")
    return fig


# ---------------------------------------------------------------------------- Figure 8


def _with_errors(value, minus, plus):
    """Mathtext ``value^{+plus}_{-minus}`` rounded to two significant digits of the smaller error."""
    err = min(abs(minus), abs(plus))
    decimals = 3 if not np.isfinite(err) or err <= 0 else int(np.clip(1 - np.floor(np.log10(err)), 0, 6))
    return f"{value:.{decimals}f}^{{+{plus:.{decimals}f}}}_{{-{minus:.{decimals}f}}}"


def plot_broken_power_law(profile, regressor, *, column="FE_H_NEW", population="low_alpha", n_draws=100,
                          random_state=None, radius="R", figsize=None):
    """Figure 8: the median [Fe/H] profile with the broken power-law fit (equation 9).

    Parameters
    ----------
    profile : pandas.DataFrame
        Output of :func:`sklearn_selfcal.gradients.radial_abundance_profile` holding ``column``.
    regressor : fitted BrokenPowerLawRegressor or compatible
        Anything with ``m1_, m2_`` (dex/kpc), ``b_`` (dex), ``k_`` (kpc) (posterior medians) and
        ``samples_`` (n_samples x 4 posterior samples of ``m1, m2, b, k``).
    column : str, default="FE_H_NEW"
        Profile column drawn (dex).
    population : str, default="low_alpha"
        Rows of ``profile`` drawn.
    n_draws : int, default=100
        Posterior samples drawn as thin lines (all if there are fewer).
    random_state : int, RandomState instance or None, default=None
        Which posterior samples are drawn.
    radius : str, default="R"
        Column of the bin centres (kpc).
    figsize : tuple of float or None
        Figure size (inches).

    Returns
    -------
    fig : matplotlib.figure.Figure
        The binned medians with their uncertainties (red, ``gid="profile"``), the line at the
        posterior-median parameters (blue, ``gid="fit"``), ``n_draws`` posterior lines (thin blue,
        ``gid="draw"``), and the knee ``k_`` as a dotted vertical line (``gid="knee"``); the legend
        gives ``m1, m2, k`` with 16th-84th percentile uncertainties.
    """
    for attr in ("m1_", "m2_", "b_", "k_", "samples_"):
        if not hasattr(regressor, attr):
            raise TypeError(f"regressor must be a fitted BrokenPowerLawRegressor (no attribute {attr!r})")
    require_columns(profile.columns, [radius, "population", column, f"{column}_ERR"], what="plot_broken_power_law")
    part = profile[profile["population"] == population]
    R = part[radius].to_numpy(dtype=float)
    y = part[column].to_numpy(dtype=float)
    e = part[f"{column}_ERR"].to_numpy(dtype=float)
    ok = np.isfinite(y)
    samples = np.asarray(regressor.samples_, dtype=float)
    rng = check_random_state(random_state)
    pick = rng.choice(samples.shape[0], size=min(int(n_draws), samples.shape[0]), replace=False)
    grid = np.linspace(0.0, max(R.max() + 1.0, 1.0), 300)
    fig, axes = _new_figure(1, 1, panel_size=(6.5, 4.5), figsize=figsize)
    ax = axes[0, 0]
    for i, theta in enumerate(samples[pick]):
        ax.plot(grid, broken_line(grid, *theta), color="tab:blue", lw=0.4, alpha=0.15, gid="draw",
                label="posterior draws" if i == 0 else None)
    p16, p84 = np.percentile(samples, [16, 84], axis=0)
    med = np.array([regressor.m1_, regressor.m2_, regressor.b_, regressor.k_])
    pm = [_with_errors(m, m - lo, hi - m) for m, lo, hi in zip(med, p16, p84)]
    ax.plot(grid, broken_line(grid, *med), color="tab:blue", lw=2,
            label=(rf"broken power-law: $m_1 = {pm[0]}$, $m_2 = {pm[1]}$ dex kpc$^{{-1}}$," "\n"
                   rf"$b = {pm[2]}$ dex"),
            gid="fit")
    ax.axvline(med[3], color="k", ls=":", lw=1.2, gid="knee", label=rf"knee $k = {pm[3]}$ kpc")
    ax.errorbar(R[ok], y[ok], yerr=e[ok], color="tab:red", marker="o", ms=4, ls="none", capsize=2,
                zorder=5, gid="profile", label=f"median {abundance_label(column, unit=False)}, "
                f"{_POPULATION_LABELS.get(population, population)}")
    ax.set_xlabel(r"$R_{\rm GC}$ [kpc]")
    ax.set_ylabel(abundance_label(column))
    ax.set_xlim(grid[0], grid[-1])
    finite_y = y[ok]
    if finite_y.size:
        pad = 0.15 * (finite_y.max() - finite_y.min() + 0.1)
        ax.set_ylim(finite_y.min() - pad, finite_y.max() + pad)
    ax.legend(fontsize=8, loc="lower left")
    return fig


# ---------------------------------------------------------------------------- Figures 9-10


def plot_alpha_iron_planes(frame, *, by="position", planes=None, figsize=None, **bin_kwargs):
    """Figures 9-10: the [alpha/M] vs [Fe/H] plane in bins of position or of orbital actions.

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue; not modified.
    by : {"position", "actions"}, default="position"
        Panels in bins of (|z|, R) (:func:`~sklearn_selfcal.maps.alpha_iron_by_position`) or of
        (``sqrt(J_R^2 + J_z^2)``, ``L_z``) (:func:`~sklearn_selfcal.maps.alpha_iron_by_actions`).
    planes : sklearn.utils.Bunch or None, default=None
        Precomputed output of one of those functions; computed when ``None``.
    figsize : tuple of float or None
        Figure size (inches).
    **bin_kwargs
        Passed to the binning function (edges, column names).

    Returns
    -------
    fig : matplotlib.figure.Figure
        One panel per (row bin, column bin), the highest row bin at the top; the 2-D histogram of
        counts (``gid="plane_<i>_<j>"`` for row bin ``i``, column bin ``j``; logarithmic colours,
        empty cells blank), the number of stars in the corner.
    """
    if planes is None:
        if by == "position":
            planes = maps.alpha_iron_by_position(frame, **bin_kwargs)
        elif by == "actions":
            planes = maps.alpha_iron_by_actions(frame, **bin_kwargs)
        else:
            raise ValueError(f"by must be 'position' or 'actions'; got {by!r}")
    n_rows, n_cols = planes.counts.shape[:2]
    fig, axes = _new_figure(n_rows, n_cols, panel_size=(2.4, 2.2), figsize=figsize, sharex=True, sharey=True)
    vmax = max(2, planes.counts.max())
    row_name, col_name = (_BIN_LABELS.get(k, k) for k in (planes.row_label, planes.col_label))
    row_unit, col_unit = (_UNIT_LABELS.get(k, k) for k in (planes.row_unit, planes.col_unit))
    for i in range(n_rows):
        for j in range(n_cols):
            ax = axes[n_rows - 1 - i, j]
            counts = planes.counts[i, j].astype(float)
            mesh = ax.pcolormesh(planes.x_edges, planes.y_edges, np.ma.masked_less(counts, 1),
                                 norm=LogNorm(vmin=1, vmax=vmax), cmap="Greys", gid=f"plane_{i}_{j}",
                                 rasterized=True)
            _corner_text(ax, f"N = {planes.n_stars[i, j]:,}")
            if i == n_rows - 1:
                ax.set_title(rf"${planes.col_edges[j]:g} \leq$ {col_name} $< {planes.col_edges[j + 1]:g}$ "
                             f"{col_unit}", fontsize=8)
            if j == 0:
                ax.set_ylabel(rf"${planes.row_edges[i]:g} \leq$ {row_name} $< {planes.row_edges[i + 1]:g}$ "
                              f"{row_unit}\n{abundance_label(planes.y)}", fontsize=8)
            if i == 0:
                ax.set_xlabel(abundance_label(planes.x), fontsize=8)
    fig.colorbar(mesh, ax=axes, label="stars per cell", shrink=0.6)
    return fig


# ---------------------------------------------------------------------------- Figure 13


def plot_on_off_bar(frame, *, x_abundance=None, y_abundance=None, samples=None, summary=None, random_state=None,
                    n_permutations=999, figsize=None, **sample_kwargs):
    """Figure 13: on-bar against off-bar stars of the inner Galaxy (section 5.2).

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue with ``x, y, z, R`` (kpc) and the two abundances; not modified.
    x_abundance, y_abundance : str or None, default=None
        Abundances on the horizontal and vertical axes (dex); ``None``: ``FE_H_NEW`` and
        ``MG_FE_NEW`` (the reported names when the calibrated ones are absent).
    samples : sklearn.utils.Bunch or None, default=None
        Output of :func:`~sklearn_selfcal.maps.on_off_bar_samples`; computed when ``None``.
    summary : sklearn.utils.Bunch or None, default=None
        Output of :func:`~sklearn_selfcal.maps.compare_samples`; computed when ``None``.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsampling and the permutation test.
    n_permutations : int, default=999
        Permutations of the energy-distance test.
    figsize : tuple of float or None
        Figure size (inches).
    **sample_kwargs
        Passed to :func:`~sklearn_selfcal.maps.on_off_bar_samples` (``z_max``, ``R_max``, bin sizes).

    Returns
    -------
    fig : matplotlib.figure.Figure
        Left: the matched on-bar (``gid="on_bar"``) and off-bar (``gid="off_bar"``) stars in the
        (x, y) plane with rings at 2, 3 and 5 kpc and the bar outline, the unmatched slab stars in
        grey; middle: the same stars in (R, z); right: ``y_abundance`` against ``x_abundance`` for
        both samples
        (``gid="on_bar_abundances"``, ``"off_bar_abundances"``), their medians, and the KS and
        energy-distance p-values (``gid="comparison"``).
    """
    x = _calibrated_or_reported(frame, "FE_H") if x_abundance is None else x_abundance
    y = _calibrated_or_reported(frame, "MG_FE") if y_abundance is None else y_abundance
    rng = check_random_state(random_state)
    if samples is None:
        samples = maps.on_off_bar_samples(frame, random_state=rng, **sample_kwargs)
    if summary is None:
        summary = maps.compare_samples(samples.on, samples.off, [x, y], n_permutations=n_permutations,
                                       random_state=rng)
    fig = Figure(figsize=figsize or (14.0, 4.6), layout="constrained")
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": (1.0, 1.0, 1.1)})
    on, off = samples.on, samples.off
    styles = (("on_bar", on, "tab:red", "on bar"), ("off_bar", off, "tab:blue", "off bar"))

    ax = axes[0]
    rest = samples.on_all.index.union(samples.off_all.index).difference(on.index.union(off.index))
    ax.scatter(frame.loc[rest, "x"], frame.loc[rest, "y"], s=2, color="0.75", lw=0, gid="unmatched",
               label="not matched")
    for gid, part, colour, label in styles:
        ax.scatter(part["x"], part["y"], s=5, color=colour, lw=0, gid=gid, label=f"{label} ({len(part)})")
    _mark_galaxy(ax, rings=(2.0, 3.0, 5.0), bar=True, sun=False)
    _face_on_axes(ax, (-5.5, 5.5, -5.5, 5.5))
    ax.legend(fontsize=7, loc="upper right")

    ax = axes[1]
    for gid, part, colour, label in styles:
        ax.scatter(part["R"], part["z"], s=5, color=colour, lw=0, gid=f"{gid}_Rz", label=label)
    ax.set_xlabel(r"$R_{\rm GC}$ [kpc]")
    ax.set_ylabel(r"$z$ [kpc]")

    ax = axes[2]
    for gid, part, colour, label in styles:
        ax.scatter(part[x], part[y], s=6, color=colour, alpha=0.6, lw=0, gid=f"{gid}_abundances", label=label)
    table = summary.table
    for suffix, colour in (("a", "tab:red"), ("b", "tab:blue")):
        ax.errorbar(table.loc[x, f"median_{suffix}"], table.loc[y, f"median_{suffix}"],
                    xerr=table.loc[x, f"median_err_{suffix}"], yerr=table.loc[y, f"median_err_{suffix}"],
                    color=colour, marker="s", ms=7, mec="k", capsize=2, zorder=5)
    text = (f"KS p: {abundance_label(x, unit=False)} {table.loc[x, 'ks_pvalue']:.2f}, "
            f"{abundance_label(y, unit=False)} {table.loc[y, 'ks_pvalue']:.2f}\n"
            f"energy distance {summary.energy_distance:.3f} dex, p = {summary.energy_pvalue:.2f}")
    ax.text(0.03, 0.03, text, transform=ax.transAxes, fontsize=8, va="bottom", gid="comparison",
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8})
    ax.set_xlabel(abundance_label(x))
    ax.set_ylabel(abundance_label(y))
    ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"on-bar vs off-bar stars, |z| < {sample_kwargs.get('z_max', 0.5):g} kpc, "
                 f"R < {sample_kwargs.get('R_max', 3.0):g} kpc", fontsize=10)
    return fig


# ---------------------------------------------------------------------------- all figures


@dataclass(frozen=True)
class FigureSpec:
    """One figure of :func:`render_all_figures`.

    Parameters
    ----------
    name : str
        File name stem (``<name>.png``).
    make : callable
        ``make(context) -> Figure``. ``context`` has attributes ``frame``, ``random_state``,
        ``abundances`` (reported names with a calibrated ``_NEW`` column), ``profile`` (the radial
        abundance profile, computed once) and ``get_regressor()`` (the Figure 8 fit, made once).
    columns : callable
        ``columns(context) -> list of str``: the columns needed; the figure is skipped with a warning
        when any is missing.
    """

    name: str
    make: object
    columns: object = field(default=lambda ctx: [])


def _positions(*extra):
    return lambda ctx: ["x", "y", *extra]


def _maps_spec(name, abundances, populations, difference):
    def make(ctx):
        names = ctx.calibrated_names() if abundances == "all" else list(abundances)
        return plot_abundance_maps(ctx.frame, names, populations=populations, difference=difference,
                                   n_cols=4 if abundances == "all" else None)

    def columns(ctx):
        names = ctx.calibrated_names() if abundances == "all" else list(abundances)
        return ["x", "y", maps.alpha_column(ctx.frame), *[n + "_NEW" for n in names],
                *(names if difference else [])]

    return FigureSpec(name, make, columns)


def _trend_spec(name, abundance):
    return FigureSpec(name, lambda ctx: plot_logg_trends(ctx.frame, abundance),
                      lambda ctx: ["LOGG", abundance, abundance + "_NEW", *maps.TREND_FEATURES])


#: The figures written by :func:`render_all_figures`, in order (paper figure numbers in the names).
FIGURES = (
    FigureSpec("fig01_sample", lambda ctx: plot_sample_overview(ctx.frame), _positions("TEFF", "LOGG", "FE_H")),
    _trend_spec("fig02_logg_trends_fe_h", "FE_H"),
    _trend_spec("fig03_logg_trends_mg_fe", "MG_FE"),
    _trend_spec("fig04_logg_trends_al_fe", "AL_FE"),
    FigureSpec("fig05_feh_velocity_map", lambda ctx: plot_metallicity_map(ctx.frame),
               _positions("z", "v_x", "v_y", "FE_H_NEW")),
    _maps_spec("fig06_abundance_maps", maps.FIGURE6_ABUNDANCES, ("low_alpha", "high_alpha"), False),
    FigureSpec("fig07_radial_gradients", lambda ctx: plot_radial_gradients(ctx.profile),
               lambda ctx: ["R", maps.alpha_column(ctx.frame), *[a + "_NEW" for a in ctx.calibrated_names()]]),
    FigureSpec("fig08_feh_broken_power_law",
               lambda ctx: plot_broken_power_law(ctx.profile, ctx.get_regressor(),
                                                 random_state=ctx.random_state),
               lambda ctx: ["R", maps.alpha_column(ctx.frame), "FE_H_NEW"]),
    FigureSpec("fig09_alpha_iron_by_position", lambda ctx: plot_alpha_iron_planes(ctx.frame, by="position"),
               lambda ctx: ["R", "z", "FE_H_NEW", maps.alpha_column(ctx.frame)]),
    FigureSpec("fig10_alpha_iron_by_actions", lambda ctx: plot_alpha_iron_planes(ctx.frame, by="actions"),
               lambda ctx: ["J_R", "L_z", "J_z", "FE_H_NEW", maps.alpha_column(ctx.frame)]),
    FigureSpec("fig13_on_off_bar", lambda ctx: plot_on_off_bar(ctx.frame, random_state=ctx.random_state),
               _positions("z", "R", "FE_H_NEW", "MG_FE_NEW")),
    _maps_spec("fig14_abundance_maps_low_alpha", "all", ("low_alpha",), False),
    _maps_spec("fig15_abundance_maps_high_alpha", "all", ("high_alpha",), False),
    _maps_spec("fig16_difference_maps_low_alpha", "all", ("low_alpha",), True),
    _maps_spec("fig17_difference_maps_high_alpha", "all", ("high_alpha",), True),
)


def render_all_figures(frame, out_dir, *, figures=None, regressor=None, regressor_params=None,
                       random_state=0, dpi=110, verbose=0):
    """Write every figure of the paper reproducible from ``frame`` as a PNG in ``out_dir``.

    Parameters
    ----------
    frame : pandas.DataFrame
        The calibrated catalogue: ``x, y, z, v_x, v_y, v_z, R, J_R, L_z, J_z`` (kpc, km/s,
        kpc km/s; :class:`~sklearn_selfcal.ActionTransformer`), ``TEFF`` (K), ``LOGG`` (dex), the
        reported abundances (``FE_H``, ``<X>_FE``, ``ALPHA_M``, dex) and the calibrated ``<X>_NEW``
        (:class:`~sklearn_selfcal.NuisanceCalibrator`). Figures whose columns are missing are
        skipped with a warning. Not modified.
    out_dir : str or path-like
        Output directory, created if needed; existing files of the same names are replaced (each
        written atomically, never left half-written).
    figures : sequence of str or None, default=None
        Names (see :data:`FIGURES`) to write; ``None``: all.
    regressor : fitted BrokenPowerLawRegressor or None, default=None
        The fit drawn in Figure 8; ``None``: a :class:`~sklearn_selfcal.BrokenPowerLawRegressor` is
        fitted (``random_state`` and ``regressor_params``) to the low-alpha ``FE_H_NEW`` profile
        with the uncertainties of its medians.
    regressor_params : dict or None, default=None
        Parameters of the regressor fitted when ``regressor`` is ``None``.
    random_state : int, default=0
        Seed of everything random in the figures (posterior draws, on/off-bar subsampling and
        permutations, the fit).
    dpi : int, default=110
        Resolution of the PNGs.
    verbose : int, default=0
        Show a progress bar over the figures when truthy.

    Returns
    -------
    paths : dict of str to str
        Figure name to the PNG path written, for the figures that were made.
    """
    from .io import atomic_write

    specs = FIGURES if figures is None else [s for s in FIGURES if s.name in set(figures)]
    if figures is not None:
        unknown = set(figures) - {s.name for s in FIGURES}
        if unknown:
            raise ValueError(f"unknown figure name(s) {sorted(unknown)}; known: {[s.name for s in FIGURES]}")
    os.makedirs(out_dir, exist_ok=True)
    ctx = _Context(frame, random_state, regressor, regressor_params)
    paths = {}
    for spec in progress(specs, desc="figures", verbose=verbose, unit="figure"):
        try:
            missing = [c for c in spec.columns(ctx) if c not in frame.columns]
        except KeyError as exc:  # e.g. no [alpha/M] column to split the populations
            missing = [exc.args[0]]
        if missing:
            warnings.warn(f"skipping figure {spec.name}: missing column(s) {missing}", UserWarning, stacklevel=2)
            continue
        fig = spec.make(ctx)
        path = os.path.join(os.fspath(out_dir), f"{spec.name}.png")
        with atomic_write(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
        paths[spec.name] = path
    return paths


class _Context:
    """What the figure makers share: the frame, the radial profile and the fit (each made at most once)."""

    def __init__(self, frame, random_state, regressor, regressor_params):
        self.frame = frame
        self.random_state = random_state
        self.regressor = regressor
        self.regressor_params = dict(regressor_params or {})
        self.abundances = maps.calibrated_abundances(frame)

    def calibrated_names(self):
        """The reported names with a calibrated column; a KeyError (figure skipped) if there is none."""
        if not self.abundances:
            raise KeyError("no calibrated abundance column <X>_NEW next to its reported <X>")
        return self.abundances

    @functools.cached_property
    def profile(self):
        from .gradients import radial_abundance_profile

        cols = [a + "_NEW" for a in self.calibrated_names()]
        return radial_abundance_profile(self.frame, cols, split=maps.alpha_column(self.frame))

    def get_regressor(self):
        if self.regressor is None:
            from .gradients import BrokenPowerLawRegressor

            part = self.profile[self.profile["population"] == "low_alpha"]
            ok = np.isfinite(part["FE_H_NEW"]) & np.isfinite(part["FE_H_NEW_ERR"]) & (part["FE_H_NEW_ERR"] > 0)
            params = {"random_state": self.random_state, **self.regressor_params}
            self.regressor = BrokenPowerLawRegressor(**params).fit(
                part.loc[ok, ["R"]].to_numpy(), part.loc[ok, "FE_H_NEW"].to_numpy(),
                sigma=part.loc[ok, "FE_H_NEW_ERR"].to_numpy(),
            )
        return self.regressor
