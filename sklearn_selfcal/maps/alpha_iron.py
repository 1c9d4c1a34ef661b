"""The [alpha/M] vs [Fe/H] plane in bins of position or of orbital actions (Figures 9-10)."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from .._kernels import binned as _binned
from .._validation import check_edges, check_table, clean_column, name_of, validate_catalogue
from .populations import alpha_column, calibrated_or_reported

__all__ = ["alpha_iron_by_actions", "alpha_iron_by_position", "binned_abundance_planes"]

#: Default histogram edges (dex): 0.04 dex in [Fe/H] over -1 to 0.6, 0.0125 dex in [alpha/M] over
#: -0.1 to 0.4.
_FEH_EDGES = np.round(np.arange(-1.0, 0.6001, 0.04), 10)
_ALPHA_EDGES = np.round(np.arange(-0.1, 0.4001, 0.0125), 10)


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

    Examples
    --------
    >>> planes = binned_abundance_planes([0.1, 0.1, 0.9], [0.1, 0.1, 0.1], [0.0, 1.5, 1.5],
    ...                                  [0.0, 0.0, 0.0], row_edges=[0, 1, 2], col_edges=[0, 1],
    ...                                  x_edges=[0, 0.5, 1], y_edges=[0, 1])
    >>> planes.n_stars.tolist(), planes.counts[1, 0].tolist()
    ([[1], [2]], [[1, 1]])
    """
    row_edges = check_edges(row_edges, "row_edges")
    col_edges = check_edges(col_edges, "col_edges")
    x_edges = check_edges(x_edges, "x_edges")
    y_edges = check_edges(y_edges, "y_edges")
    x, y, row, col = (clean_column(v, name_of(v, name), what="binned_abundance_planes")
                      for v, name in ((x, "x"), (y, "y"), (row, "row"), (col, "col")))
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


def _planes(frame, x, y, row, col, needed, what, kpc=(), heights=(), **edges):
    """Planes of the abundances ``x``, ``y`` (defaults: calibrated [Fe/H], the split [alpha/M]);
    ``row`` and ``col`` compute the panels' quantities from the validated columns."""
    frame = check_table(frame, what)
    x = calibrated_or_reported(frame, "FE_H") if x is None else x
    y = alpha_column(frame) if y is None else y
    v = validate_catalogue(frame, [x, y, *needed], what=what, kpc=kpc, heights=heights,
                           stacklevel=3)
    result = binned_abundance_planes(v[x], v[y], row(v), col(v), **edges)
    result.update(x=x, y=y)
    return result


def alpha_iron_by_position(frame, *, x=None, y=None, R_edges=(0.0, 5.0, 7.0, 9.0, 11.0, 13.0, 25.0),
                           abs_z_edges=(0.0, 0.5, 1.0, 2.0), x_edges=_FEH_EDGES, y_edges=_ALPHA_EDGES,
                           R="R", z="z"):
    """[alpha/M] vs [Fe/H] histograms in bins of Galactocentric radius and height (Figure 9).

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue with ``R``, ``z`` (kpc) and the two abundances; not modified.
    x, y : str or None, default=None
        Abundance columns (dex); ``None``: the calibrated [Fe/H] (else ``FE_H``) and the split
        [alpha/M] (:func:`~sklearn_selfcal.maps.alpha_column`).
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
        As :func:`binned_abundance_planes`, plus ``x``, ``y``, ``row_label``, ``col_label``,
        ``row_unit``, ``col_unit`` (axis labels and units).
    """
    result = _planes(frame, x, y, lambda v: np.abs(v[z]), lambda v: v[R], [R, z],
                     "alpha_iron_by_position", kpc=(R,), heights=(z,), row_edges=abs_z_edges, col_edges=R_edges,
                     x_edges=x_edges, y_edges=y_edges)
    result.update(row_label="|z|", row_unit="kpc", col_label="R", col_unit="kpc")
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
        As :func:`binned_abundance_planes`, plus ``x``, ``y``, ``row_label``, ``col_label``,
        ``row_unit``, ``col_unit``.
    """
    result = _planes(frame, x, y,
                     lambda v: np.hypot(v[J_R], v[J_z]), lambda v: v[L_z], [J_R, L_z, J_z],
                     "alpha_iron_by_actions",
                     row_edges=action_edges, col_edges=L_z_edges, x_edges=x_edges, y_edges=y_edges)
    result.update(row_label="sqrt(J_R^2 + J_z^2)", row_unit="kpc km/s", col_label="L_z",
                  col_unit="kpc km/s")
    return result
