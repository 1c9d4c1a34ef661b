"""Face-on figures: the sample (Figure 1), [Fe/H] with mean motions (Figure 5), abundance maps (6, 14-17).

Every map covers the stars within :data:`sklearn_selfcal.maps.MAP_LIMIT_KPC` of the Galactic
centre in ``x`` and ``y``; stars beyond are counted in one warning per figure and left out.
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm

from .. import maps
from .._paper import ALPHA_SPLIT, CALIBRATED_SUFFIX, DISK_Z_MAX_KPC
from .._validation import column_values, require_columns
from ..maps import MAP_BIN_SIZE_KPC, MAP_COLOR_PERCENTILES, MAP_MIN_STARS
from ._common import (
    POPULATION_LABELS,
    RINGS,
    abundance_label,
    corner_text,
    draw_map,
    face_on_axes,
    mark_galaxy,
    new_figure,
    shown_limits,
    stars_extent,
)

__all__ = ["plot_abundance_maps", "plot_metallicity_map", "plot_sample_overview"]


def plot_sample_overview(frame, *, teff="TEFF", logg="LOGG", color="FE_H", bin_size=MAP_BIN_SIZE_KPC, x="x", y="y",
                         figsize=None):
    """Figure 1: the sample in the Kiel diagram and on the face-on star-count map.

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue with ``TEFF`` (K), ``LOGG`` (dex), ``color`` (dex) and ``x, y`` (kpc); not modified.
    teff, logg, color : str
        Columns of the effective temperature (K), surface gravity (dex) and the colour-coded quantity
        (the reported [Fe/H], dex).
    bin_size : float, default=MAP_BIN_SIZE_KPC (0.75 kpc)
        Bin width of the star-count map (kpc).
    x, y : str
        Galactocentric coordinate columns (kpc).
    figsize : tuple of float or None
        Figure size (inches).

    Returns
    -------
    fig : matplotlib.figure.Figure
        Left: log g against Teff (both axes reversed, as a Kiel diagram; limits at the 0.1st and
        99.9th percentiles), points coloured by ``color`` (``gid="kiel"``). Right: number of stars
        per ``bin_size`` bin (logarithmic colour scale; empty bins blank), the Sun and the Galactic
        centre marked.

    Raises
    ------
    TooFewStarsError
        If no star has a finite Teff and log g, or a position within the map limit.
    """
    require_columns(frame.columns, [teff, logg, color, x, y], what="plot_sample_overview")
    t, g, c = (column_values(frame, name) for name in (teff, logg, color))
    placed = np.isfinite(t) & np.isfinite(g)
    if not placed.any():
        raise maps.TooFewStarsError(f"plot_sample_overview: no star has a finite {teff} and {logg}")
    extent = stars_extent(frame, x, y, what="plot_sample_overview")
    fig, axes = new_figure(1, 2, panel_size=(5.0, 4.3), figsize=figsize)
    ax = axes[0, 0]
    lo, hi = maps.color_limits(c, (2, 98))
    order = np.argsort(np.where(np.isfinite(c), c, -np.inf))
    points = ax.scatter(t[order], g[order], c=c[order], s=2, cmap="viridis", vmin=lo, vmax=hi, lw=0,
                        rasterized=True, gid="kiel")
    ax.set_xlim(*np.percentile(t[placed], [99.9, 0.1]))
    ax.set_ylim(*np.percentile(g[placed], [99.9, 0.1]))
    ax.set_xlabel(r"$T_{\rm eff}$ [K]")
    ax.set_ylabel(r"$\log g$ [dex]")
    fig.colorbar(points, ax=ax, label=abundance_label(color))
    corner_text(ax, f"N = {np.isfinite(c).sum():,}")

    ax = axes[0, 1]
    counts = maps.face_on_map(frame, statistic="count", bin_size=bin_size, min_stars=1, x=x, y=y,
                              extent=extent)
    mesh = draw_map(ax, counts, cmap="magma_r",
                    norm=LogNorm(vmin=1, vmax=max(2, np.nanmax(counts.statistic))))
    fig.colorbar(mesh, ax=ax, label=f"stars per {bin_size:g} kpc bin")
    mark_galaxy(ax, rings=(), bar=False)
    face_on_axes(ax, shown_limits([counts]))
    corner_text(ax, f"N = {counts.n_stars:,}")
    return fig


def plot_metallicity_map(frame, *, column=None, z_max=DISK_Z_MAX_KPC, bin_size=0.5, statistic="mean",
                         min_stars=MAP_MIN_STARS, percentiles=MAP_COLOR_PERCENTILES, arrow_scale=400.0, x="x", y="y", z="z", v_x="v_x",
                         v_y="v_y", figsize=None):
    """Figure 5: face-on [Fe/H] map of the disk with the mean in-plane motion per bin.

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue with ``x, y, z`` (kpc), ``v_x, v_y`` (km/s) and ``column``; not modified.
    column : str or None, default=None
        Colour-coded abundance (dex); ``None``: the calibrated [Fe/H] if present, else ``FE_H``.
    z_max : float, default=DISK_Z_MAX_KPC (1 kpc)
        Only stars with ``|z| < z_max`` (kpc).
    bin_size : float, default=0.5
        Bin width (kpc).
    statistic : {"mean", "median"}, default="mean"
        Statistic of the abundance per bin (the paper's caption: the mean).
    min_stars : int, default=MAP_MIN_STARS (4)
        Bins with fewer stars are blank and carry no arrow.
    percentiles : tuple of 2 float, default=MAP_COLOR_PERCENTILES (7, 93)
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

    Raises
    ------
    TooFewStarsError
        If no star of the slab has a position within the map limit.
    """
    column = maps.calibrated_or_reported(frame, "FE_H") if column is None else column
    require_columns(frame.columns, [x, y, z, v_x, v_y, column], what="plot_metallicity_map")
    with np.errstate(invalid="ignore"):
        slab = np.abs(column_values(frame, z)) < z_max
    extent = stars_extent(frame, x, y, where=slab, what="plot_metallicity_map")
    result = maps.face_on_map(frame, column, where=slab, bin_size=bin_size, statistic=statistic,
                              min_stars=min_stars, x=x, y=y, extent=extent)
    vel = maps.velocity_map(frame, where=slab & np.isfinite(column_values(frame, column)),
                            bin_size=bin_size, min_stars=min_stars, x=x, y=y, v_x=v_x, v_y=v_y,
                            extent=extent)
    fig, axes = new_figure(1, 1, panel_size=(8.0, 7.0), figsize=figsize)
    ax = axes[0, 0]
    vmin, vmax = maps.color_limits(result.statistic, percentiles)
    mesh = draw_map(ax, result, cmap="viridis", vmin=vmin, vmax=vmax)
    fig.colorbar(mesh, ax=ax, label=f"{statistic} {abundance_label(column)}", shrink=0.8)
    shown = np.isfinite(vel.mean_v_x) & np.isfinite(vel.mean_v_y)
    X, Y = np.meshgrid(vel.x_centres, vel.y_centres)
    ax.quiver(X[shown], Y[shown], vel.mean_v_x[shown], vel.mean_v_y[shown], angles="xy",
              scale_units="xy", scale=arrow_scale, width=0.0018, headwidth=3.5, headlength=4,
              headaxislength=3.5, color="k", alpha=0.75, zorder=2, gid="velocity")
    mark_galaxy(ax)
    face_on_axes(ax, shown_limits([result]))
    ax.set_title(rf"$|z| < {z_max:g}$ kpc, {bin_size:g} kpc bins; arrows: mean $(v_x, v_y)$ "
                 rf"({arrow_scale:g} km s$^{{-1}}$ per kpc)", fontsize=9)
    corner_text(ax, f"N = {result.n_stars:,}")
    return fig


def plot_abundance_maps(frame, abundances=maps.FIGURE6_ABUNDANCES, *, populations=("low_alpha", "high_alpha"),
                        difference=False, calibrated_suffix=CALIBRATED_SUFFIX, n_cols=None,
                        bin_size=MAP_BIN_SIZE_KPC, min_stars=MAP_MIN_STARS, percentiles=MAP_COLOR_PERCENTILES, alpha=None, split=ALPHA_SPLIT, rings=RINGS,
                        x="x", y="y", panel_size=(3.4, 3.0), figsize=None):
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
    calibrated_suffix : str or None, default=CALIBRATED_SUFFIX
        Suffix of the calibrated columns (``"_NEW"``); ``None`` or ``""`` maps the reported columns
        themselves (not allowed with ``difference``).
    n_cols : int or None, default=None
        Panels per row; ``None``: ``min(len(abundances), 4)``.
    bin_size : float, default=MAP_BIN_SIZE_KPC (0.75 kpc)
        Bin width (kpc).
    min_stars : int, default=MAP_MIN_STARS (4)
        Bins with fewer stars are blank (the paper: more than 3 stars).
    percentiles : tuple of 2 float, default=MAP_COLOR_PERCENTILES (7, 93)
        Colour limits of every panel: these percentiles of its binned medians.
    alpha : str or None, default=None
        [alpha/M] column for the split; ``None``: :func:`~sklearn_selfcal.maps.alpha_column`.
    split : float, default=ALPHA_SPLIT (0.12 dex)
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

    Raises
    ------
    TooFewStarsError
        If no star has a position within the map limit.
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
    extent = stars_extent(frame, x, y, what="plot_abundance_maps")
    fig, axes = new_figure(rows_per_pop * len(populations), n_cols, panel_size=panel_size, figsize=figsize,
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
    limits = shown_limits([panel[3] for panel in panels])
    for ax, population, name, result in panels:
        ax.set_visible(True)
        vmin, vmax = maps.color_limits(result.statistic, percentiles, symmetric=difference)
        mesh = draw_map(ax, result, cmap=cmap, vmin=vmin, vmax=vmax)
        label = abundance_label(name, unit=False)
        if difference:
            cbar_label, title = rf"$\Delta${label} [dex]", rf"{label}: calibrated $-$ input"
        else:
            cbar_label, title = f"{label} [dex]", f"{label}{' (calibrated)' if suffix else ''}"
        fig.colorbar(mesh, ax=ax, label=cbar_label, shrink=0.85)
        mark_galaxy(ax, rings=rings, bar=False, marker_size=7)
        face_on_axes(ax, limits)
        ax.set_title(f"{title}, {POPULATION_LABELS[population]}", fontsize=9)
        corner_text(ax, f"N = {result.n_stars:,}")
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
