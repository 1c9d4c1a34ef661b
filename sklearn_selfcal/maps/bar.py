"""The Galactic bar: its outline, an on-bar membership test and matched on/off-bar samples (section 5.2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils import Bunch, check_random_state

from .._kernels import binned as _binned
from .._paper import BAR_ANGLE_DEG, BAR_AXIS_RATIO, BAR_HALF_LENGTH_KPC
from .._validation import check_positive, check_table, clean_column, name_of, validate_catalogue

__all__ = ["bar_axes", "bar_outline", "on_bar", "on_off_bar_samples"]


def bar_axes(angle=BAR_ANGLE_DEG):
    """Unit vectors of the bar's major and minor axes in the (x, y) plane.

    Parameters
    ----------
    angle : float, default=BAR_ANGLE_DEG (25 deg)
        Angle (deg) from the Sun-Galactic centre line to the major axis, towards positive Galactic
        longitude.

    Returns
    -------
    major : ndarray of shape (2,)
        ``(-cos(angle), sin(angle))``: from the Galactic centre to the bar's near end (towards the
        Sun, at ``x < 0``, rotated to ``y > 0``).
    minor : ndarray of shape (2,)
        ``(sin(angle), cos(angle))``, perpendicular to ``major``.

    Examples
    --------
    >>> major, minor = bar_axes(0.0)
    >>> major.tolist(), minor.tolist()
    ([-1.0, 0.0], [0.0, 1.0])
    """
    a = np.deg2rad(angle)
    return np.array([-np.cos(a), np.sin(a)]), np.array([np.sin(a), np.cos(a)])


def bar_outline(half_length=BAR_HALF_LENGTH_KPC, axis_ratio=BAR_AXIS_RATIO, angle=BAR_ANGLE_DEG,
                n_points=181):
    """Vertices of the bar's outline: an ellipse centred on the Galactic centre.

    Parameters
    ----------
    half_length : float, default=BAR_HALF_LENGTH_KPC (5 kpc)
        Half-length of the major axis (kpc).
    axis_ratio : float, default=BAR_AXIS_RATIO (0.4)
        Minor-to-major axis ratio (the minor half-axis is ``axis_ratio * half_length``).
    angle : float, default=BAR_ANGLE_DEG (25 deg)
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


def on_bar(x, y, *, half_length=BAR_HALF_LENGTH_KPC, axis_ratio=BAR_AXIS_RATIO, angle=BAR_ANGLE_DEG):
    """Whether points lie inside (or on) the bar outline of :func:`bar_outline`.

    Parameters
    ----------
    x, y : array_like
        Galactocentric coordinates (kpc).
    half_length : float, default=BAR_HALF_LENGTH_KPC (5 kpc)
        Half-length of the major axis (kpc).
    axis_ratio : float, default=BAR_AXIS_RATIO (0.4)
        Minor-to-major axis ratio.
    angle : float, default=BAR_ANGLE_DEG (25 deg)
        Angle of the major axis from the Sun-centre line (deg), near end at ``y > 0``.

    Returns
    -------
    inside : ndarray of bool
        ``(u / a)**2 + (v / b)**2 <= 1`` with ``u, v`` the coordinates along the major and minor axes,
        ``a = half_length``, ``b = axis_ratio * half_length``; False for non-finite points.

    Examples
    --------
    >>> from sklearn_selfcal.maps import SUN_XY
    >>> on_bar([0.0, SUN_XY[0]], [0.0, SUN_XY[1]]).tolist()  # the Galactic centre and the Sun
    [True, False]
    """
    x = clean_column(x, name_of(x, "x"), what="on_bar", kpc=True)
    y = clean_column(y, name_of(y, "y"), what="on_bar", kpc=True)
    major, minor = bar_axes(angle)
    u = x * major[0] + y * major[1]
    v = x * minor[0] + y * minor[1]
    a, b = half_length, axis_ratio * half_length
    with np.errstate(invalid="ignore"):
        return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def _span_edges(low, high, step):
    """Edges ``low, low + step, ...`` up to ``high`` (the last bin is shorter if ``step`` does not divide)."""
    n = max(1, int(np.ceil((high - low) / step - 1e-9)))
    edges = low + step * np.arange(n + 1)
    edges[-1] = high
    return edges


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

    Raises
    ------
    KeyError, ValueError
        Naming a missing column, or a column that holds a value that is not a number.
    """
    frame = check_table(frame, "on_off_bar_samples")
    v = validate_catalogue(frame, [x, y, z, R], what="on_off_bar_samples", kpc=(x, y, R),
                           heights=(z,))
    z_max = check_positive(z_max, "z_max")
    R_max = check_positive(R_max, "R_max")
    R_bin = check_positive(R_bin, "R_bin")
    z_bin = check_positive(z_bin, "z_bin")
    rng = check_random_state(random_state)
    zs, Rs = v[z], v[R]
    with np.errstate(invalid="ignore"):
        slab = (np.abs(zs) < z_max) & (Rs < R_max)
    bar_member = on_bar(v[x], v[y], **bar)
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
