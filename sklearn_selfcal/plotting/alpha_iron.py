"""Figures 9-10: the [alpha/M] vs [Fe/H] plane in bins of position or of orbital actions."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm

from .. import maps
from ._common import abundance_label, corner_text, new_figure

__all__ = ["plot_alpha_iron_planes"]

_BIN_LABELS = {"|z|": r"$|z|$", "R": r"$R$", "L_z": r"$L_z$", "sqrt(J_R^2 + J_z^2)": r"$\sqrt{J_R^2 + J_z^2}$"}
_UNIT_LABELS = {"kpc km/s": r"kpc km s$^{-1}$"}
_PLANES = {"position": maps.alpha_iron_by_position, "actions": maps.alpha_iron_by_actions}


def plot_alpha_iron_planes(frame, *, by="position", planes=None, figsize=None, **bin_kwargs):
    """Figures 9-10: the [alpha/M] vs [Fe/H] plane in bins of position or of orbital actions.

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue; not modified. Unused when ``planes`` is given.
    by : {"position", "actions"}, default="position"
        Panels in bins of (``|z|``, R) (:func:`~sklearn_selfcal.maps.alpha_iron_by_position`) or of
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
        if by not in _PLANES:
            raise ValueError(f"by must be one of {sorted(_PLANES)}; got {by!r}")
        planes = _PLANES[by](frame, **bin_kwargs)
    n_rows, n_cols = planes.counts.shape[:2]
    fig, axes = new_figure(n_rows, n_cols, panel_size=(2.4, 2.2), figsize=figsize, sharex=True, sharey=True)
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
            corner_text(ax, f"N = {planes.n_stars[i, j]:,}")
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
