"""Radial profiles: the stacked gradients of Figure 7 and the broken power-law of Figure 8.

Both draw the table of :func:`sklearn_selfcal.gradients.radial_abundance_profile`; Figure 8 also a
fitted :class:`~sklearn_selfcal.BrokenPowerLawRegressor`, which is never fitted here. Its points are
:func:`sklearn_selfcal.maps.profile_points` at the radius column the fit used.
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from sklearn.utils import check_random_state

from .. import maps
from .._kernels.broken_line import broken_line
from .._paper import CALIBRATED_SUFFIX, abundance_error_column, calibrated_name
from ..maps.populations import UNMAPPED_COLUMNS
from ._common import POPULATION_LABELS, R_LABEL, abundance_label, new_figure

__all__ = ["FIT_ATTRIBUTES", "plot_broken_power_law", "plot_radial_gradients"]

#: What a fitted broken power-law must have: posterior medians of ``m1, m2`` (dex/kpc), ``b``
#: (dex), ``k`` (kpc) and the posterior samples (n_samples, 4).
FIT_ATTRIBUTES = ("m1_", "m2_", "b_", "k_", "samples_")
#: The calibrated [Fe/H], the column of Figure 8.
_FE_H = calibrated_name("FE_H")
_RADIUS_LABELS = {"R_MEDIAN": "at the median radius of each bin's stars", "R": "at the bin centres"}


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
        Radius column of the points (kpc): ``"R"`` (bin centres) or ``"R_MEDIAN"``.
    grid_spacing : float, default=0.1
        Spacing of the grey horizontal lines that give the scale (dex).
    figsize : tuple of float or None
        Figure size (inches).

    Returns
    -------
    fig : matplotlib.figure.Figure
        Left: abundances with a non-negative slope; right: negative slopes. Each curve
        (``gid="profile_<column>"``) is the :func:`~sklearn_selfcal.maps.profile_points` of a column
        plus its offset, with error bars, labelled at its outer end, coloured from purple (steepest
        positive) to green (steepest negative).
    """
    if columns is None:
        columns = [c for c in profile.attrs.get("columns", [])
                   if c.removesuffix(CALIBRATED_SUFFIX) not in UNMAPPED_COLUMNS]
    layout = maps.radial_gradient_layout(profile, columns, population=population, step=step, radius=radius)
    layout = layout[np.isfinite(layout["slope"])]
    if layout.empty:
        raise maps.TooFewStarsError("plot_radial_gradients: no abundance has two radial bins with a median")
    fig, axes = new_figure(1, 2, panel_size=(4.5, 7.0), figsize=figsize, sharey=True)
    cmap = colormaps["PRGn"]
    radii = []
    for panel, (start, stop) in enumerate(((0.0, 0.3), (0.7, 1.0))):  # purple: positive, green: negative
        in_panel = layout[layout["panel"] == panel]
        n = len(in_panel)
        for rank, (col, row) in enumerate(in_panel.iterrows()):
            ax = axes[0, panel]
            p = maps.profile_points(profile, col, population=population, radius=radius)
            y = p.y + row["offset"]
            colour = cmap(start + (stop - start) * rank / max(n - 1, 1))
            ax.errorbar(p.R, y, yerr=p.err, color=colour, marker="o", ms=3, lw=1.2, capsize=0,
                        gid=f"profile_{col}")
            ax.annotate(abundance_label(col, unit=False), (p.R[-1], y[-1]), xytext=(4, 0),
                        textcoords="offset points", va="center", fontsize=8, color=colour)
            radii.append(p.R)
    radii = np.concatenate(radii)
    lo, hi = axes[0, 0].get_ylim()
    for ax, title in zip(axes[0], ("positive slopes", "negative slopes")):
        for level in np.arange(np.floor(lo / grid_spacing), np.ceil(hi / grid_spacing) + 1) * grid_spacing:
            ax.axhline(level, color="0.85", lw=0.5, zorder=0, gid="scale_line")
        ax.set_xlabel(R_LABEL)
        ax.set_title(f"{POPULATION_LABELS.get(population, population)}: {title}", fontsize=10)
        ax.set_xlim(radii.min() - 1, radii.max() + 3.5)
    axes[0, 0].set_ylabel(f"median abundance + offset [dex] (grey lines every {grid_spacing:g} dex)")
    return fig


def _with_errors(value, minus, plus):
    """Mathtext ``value^{+plus}_{-minus}`` rounded to two significant digits of the smaller error."""
    err = min(abs(minus), abs(plus))
    decimals = 3 if not np.isfinite(err) or err <= 0 else int(np.clip(1 - np.floor(np.log10(err)), 0, 6))
    return f"{value:.{decimals}f}^{{+{plus:.{decimals}f}}}_{{-{minus:.{decimals}f}}}"


def plot_broken_power_law(profile, regressor, *, column=_FE_H, population="low_alpha",
                          radius="R_MEDIAN", n_draws=100, random_state=None, figsize=None):
    """Figure 8: the median [Fe/H] profile with the broken power-law fit (equation 9).

    The points drawn are the points fitted: :func:`~sklearn_selfcal.maps.profile_points` of
    ``column`` and ``population`` at ``radius``, which must be the radius column the regressor was
    fitted at (the workflow fits at ``"R_MEDIAN"``).

    Parameters
    ----------
    profile : pandas.DataFrame
        Output of :func:`sklearn_selfcal.gradients.radial_abundance_profile` holding ``column``.
    regressor : fitted BrokenPowerLawRegressor or compatible
        Anything with ``m1_, m2_`` (dex/kpc), ``b_`` (dex), ``k_`` (kpc) (posterior medians) and
        ``samples_`` (n_samples x 4 posterior samples of ``m1, m2, b, k``); not refitted.
    column : str, default="FE_H_NEW"
        Profile column drawn (dex), the calibrated [Fe/H] by default.
    population : str, default="low_alpha"
        Rows of ``profile`` drawn.
    radius : str, default="R_MEDIAN"
        Radius column of the points (kpc), the one the fit used: ``"R_MEDIAN"`` (median radius of
        each bin's stars) or ``"R"`` (bin centres).
    n_draws : int, default=100
        Posterior samples drawn as thin lines (all if there are fewer).
    random_state : int, RandomState instance or None, default=None
        Which posterior samples are drawn.
    figsize : tuple of float or None
        Figure size (inches).

    Returns
    -------
    fig : matplotlib.figure.Figure
        The profile points with their uncertainties (red, ``gid="profile"``), the line at the
        posterior-median parameters (blue, ``gid="fit"``), ``n_draws`` posterior lines (thin blue,
        ``gid="draw"``), and the knee ``k_`` as a dotted vertical line (``gid="knee"``); the legend
        gives ``m1, m2, k`` with 16th-84th percentile uncertainties.

    Raises
    ------
    TypeError
        If ``regressor`` lacks one of :data:`FIT_ATTRIBUTES` (not fitted).
    """
    for attr in FIT_ATTRIBUTES:
        if not hasattr(regressor, attr):
            raise TypeError(f"regressor must be a fitted BrokenPowerLawRegressor (no attribute {attr!r})")
    p = maps.profile_points(profile, column, population=population, radius=radius)
    if p.R.size == 0:
        raise maps.TooFewStarsError(f"plot_broken_power_law: no {population} bin of {column!r} has a median "
                                    f"with an uncertainty ({abundance_error_column(column)!r})")
    samples = np.asarray(regressor.samples_, dtype=float)
    rng = check_random_state(random_state)
    pick = rng.choice(samples.shape[0], size=min(int(n_draws), samples.shape[0]), replace=False)
    grid = np.linspace(0.0, max(p.R.max() + 1.0, 1.0), 300)
    fig, axes = new_figure(1, 1, panel_size=(6.5, 4.5), figsize=figsize)
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
    ax.errorbar(p.R, p.y, yerr=p.err, color="tab:red", marker="o", ms=4, ls="none", capsize=2,
                zorder=5, gid="profile", label=f"median {abundance_label(column, unit=False)}, "
                f"{POPULATION_LABELS.get(population, population)}, {_RADIUS_LABELS.get(radius, radius)}")
    ax.set_xlabel(R_LABEL)
    ax.set_ylabel(abundance_label(column))
    ax.set_xlim(grid[0], grid[-1])
    pad = 0.15 * (p.y.max() - p.y.min() + 0.1)
    ax.set_ylim(p.y.min() - pad, p.y.max() + pad)
    ax.legend(fontsize=8, loc="lower left")
    return fig
