"""What the figures share: labels, a standalone Figure, the Galaxy's landmarks on a face-on panel."""

from __future__ import annotations

import re

import numpy as np
from matplotlib.figure import Figure

from .. import maps
from .._paper import CALIBRATED_SUFFIX
from .._validation import column_values

__all__ = ["abundance_label"]

X_LABEL = r"$x$ [kpc]"
Y_LABEL = r"$y$ [kpc]"
R_LABEL = r"$R_{\rm GC}$ [kpc]"
RINGS = (5.0, 10.0, 15.0, 20.0, 25.0)
POPULATION_LABELS = {"all": "all stars", "low_alpha": r"low-$\alpha$", "high_alpha": r"high-$\alpha$"}


def abundance_label(name, *, unit=True):
    """Readable label of an abundance column, e.g. ``"MG_FE_NEW"`` -> ``"[Mg/Fe] [dex]"``.

    Parameters
    ----------
    name : str
        APOGEE-style column name (``FE_H``, ``<X>_FE``, ``ALPHA_M``, ``M_H``), optionally with the
        calibrated suffix (``_NEW``).
    unit : bool, default=True
        Append `` [dex]``.

    Returns
    -------
    label : str
        Matplotlib mathtext label; unknown names are returned unchanged (plus the unit).

    Examples
    --------
    >>> from sklearn_selfcal._paper import calibrated_name
    >>> abundance_label(calibrated_name("MG_FE"))
    '[Mg/Fe] [dex]'
    >>> abundance_label("FE_H", unit=False)
    '[Fe/H]'
    """
    base = name.removesuffix(CALIBRATED_SUFFIX)
    special = {"FE_H": "[Fe/H]", "ALPHA_M": r"[$\alpha$/M]", "M_H": "[M/H]"}
    if base in special:
        label = special[base]
    elif re.fullmatch(r"[A-Z]{1,2}_FE", base):
        label = f"[{base[:-3].capitalize()}/Fe]"
    else:
        label = name
    return f"{label} [dex]" if unit else label


def new_figure(n_rows, n_cols, panel_size=(3.4, 3.0), figsize=None, **subplot_kw):
    """A standalone constrained-layout Figure (no pyplot) and its 2-D array of axes."""
    figsize = (panel_size[0] * n_cols, panel_size[1] * n_rows) if figsize is None else figsize
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False, **subplot_kw)
    return fig, axes


def _circle(radius, n_points=361):
    t = np.linspace(0.0, 2.0 * np.pi, n_points)
    return radius * np.cos(t), radius * np.sin(t)


def mark_galaxy(ax, *, rings=RINGS, bar=True, sun=True, centre=True, marker_size=11):
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


def face_on_axes(ax, extent=None):
    """Equal aspect, x and y labels (kpc) and, if given, the ``(x0, x1, y0, y1)`` limits."""
    ax.set_aspect("equal")
    ax.set_xlabel(X_LABEL)
    ax.set_ylabel(Y_LABEL)
    if extent is not None:
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])


def corner_text(ax, text, gid="n_stars"):
    """A small boxed text in the lower right corner of ``ax`` (``gid`` to find it)."""
    ax.text(0.97, 0.03, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=9, gid=gid,
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.7})


def draw_map(ax, result, *, cmap, vmin=None, vmax=None, norm=None):
    """``pcolormesh`` of a :func:`~sklearn_selfcal.maps.binned_map` result (``gid="map"``), NaN blank."""
    return ax.pcolormesh(result.x_edges, result.y_edges, np.ma.masked_invalid(result.statistic),
                         cmap=cmap, vmin=None if norm else vmin, vmax=None if norm else vmax, norm=norm,
                         shading="flat", gid="map", rasterized=True)


def shown_limits(results, margin=1.0):
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


def stars_extent(frame, x="x", y="y", where=None, *, what="face-on map"):
    """Extent (kpc) of the stars selected by ``where`` within the map limit (far stars: a warning).

    Raises :class:`~sklearn_selfcal.maps.TooFewStarsError` when no star can be placed.
    """
    xs = column_values(frame, x, what=what)
    ys = column_values(frame, y, what=what)
    if where is not None:
        xs = np.where(np.asarray(where, dtype=bool), xs, np.nan)
    extent = maps.map_extent(xs, ys, what=what)
    if extent is None:
        raise maps.TooFewStarsError(f"{what}: no star has a finite position (x, y) within the map limit "
                                    f"|x|, |y| <= {maps.MAP_LIMIT_KPC:g} kpc")
    return extent
