"""Tables over the integrals of motion: a focal distance per orbit and interpolated Staeckel actions.

Two tables are built once per potential (in memory: under a second for the focal distances, a few
seconds for the actions) on nodes in energy and angular momentum:

* :class:`FocalTable` -- the focal distance ``delta(E, L_z)`` of the Staeckel fudge. At each node
  a few orbits of that energy and angular momentum are integrated and ``delta`` is fitted to the
  points along them by least squares on the Staeckel condition of Sanders (2012), which every
  point of a Staeckel potential satisfies exactly. Because ``E`` and ``L_z`` are conserved, every
  point of an orbit gets the same ``delta`` (a focal distance estimated at each star's own
  position changes along the orbit and with it the actions).
* :class:`ActionGrid` -- the radial and vertical actions of the fudge with that ``delta``, tabulated
  over the variables they depend on (:mod:`sklearn_selfcal._kernels.staeckel_integrals`): the
  radial action over ``(E, L_z, I3U)``, the vertical action over ``(E, L_z, I3V, u)``. Evaluating
  it costs two cubic-spline interpolations and three potential evaluations per star.

Coordinates of the tables (natural units): ``x1 = asinh(|L_z| / L_SCALE)``; ``x2`` an ``asinh``
stretch of ``y = (E - E_c(L_z)) / (E_max - E_c(L_z))`` (``E_c``: energy of the circular orbit
with that angular momentum), which puts nodes where the cold disk orbits are; the third integral
normalised between the planar orbit and the shell orbit of the same ``E, L_z``; the star's ``u``
normalised to the range of the planar orbit. The tabulated quantities are the actions divided by
``y`` and by the normalised third integral, which vanish with them, so that nearly circular and
nearly planar orbits keep their relative accuracy.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numba
import numpy as np
from scipy import ndimage

from . import staeckel_integrals as si
from .orbit_sampling import potential_functions, circular_period_table, orbit_points
from .threads import map_stars

__all__ = [
    "FocalTable",
    "ActionGrid",
    "build_focal_table",
    "build_action_grid",
    "focal_distance",
    "grid_actions",
    "node_orbits",
    "axes_coordinates",
    "cached_tables",
]

#: Angular-momentum scale of the ``asinh`` axis (natural units; 0.0125 * 8 kpc * 220 km/s = 22 kpc
#: km/s): nodes are dense around L_z = 0 (bulge and halo) and log-spaced across the disk.
L_SCALE = 0.0125
#: Energy-axis stretch: ``x2 = asinh(y / Y_SCALE) / asinh(1 / Y_SCALE)``.
Y_SCALE = 0.003
#: Largest table radius (natural units, 80 kpc): circular orbits up to there, energies up to the
#: potential at 2 R_MAX; stars beyond fall back to the direct computation.
R_MAX = 10.0
#: Range of the normalised third integrals (0 = shell orbit for the radial, planar orbit for the
#: vertical action). The fudge's I3U and I3V of one star differ slightly, hence the margin past 1.
X3_MAX = 1.25
#: Soft lower limit of the tabulated focal distance (natural units, 2 kpc). Where the best prolate
#: fit wants less (the spherical centre, or an oblate-like outer disk and halo, where it would be
#: imaginary) a focal distance of about 2 kpc conserved the actions best along integrated orbits of
#: ``MilkyWayPotential2022`` (halo: median spread 1.3 % against 1.5 % at a 0.1-1 kpc floor and
#: 2.4 % at 3 kpc; see ``benchmarks/bench_actions_accuracy.py``).
DELTA_MIN = 0.25
_ORDER = 3
#: Ghost nodes added on each side of every axis by cubic extrapolation before the spline fit, so
#: that the spline follows the function's slope at the edges instead of flattening it.
_PAD = 3


def _extrapolate_axis(values, axis):
    """Pad ``values`` by ``_PAD`` nodes at both ends of ``axis`` with the cubic through the last 4."""
    values = np.moveaxis(values, axis, 0)
    # Lagrange weights of the cubic through nodes 0..3 evaluated at -1, -2, -3
    steps = np.arange(1, _PAD + 1)
    nodes = np.arange(4)
    weights = np.array([[np.prod([(-k - m) / (j - m) for m in nodes if m != j]) for j in nodes]
                        for k in steps])
    low = np.tensordot(weights, values[:4], axes=(1, 0))[::-1]
    high = np.tensordot(weights, values[::-1][:4], axes=(1, 0))
    return np.moveaxis(np.concatenate([low, values, high]), 0, axis)


def _spline(values):
    """Cubic B-spline coefficients of a table, padded with extrapolated ghost nodes."""
    for axis in range(values.ndim):
        values = _extrapolate_axis(values, axis)
    return ndimage.spline_filter(values, order=_ORDER, mode="nearest")


def _interpolate(coefficients, coordinates):
    """The spline at fractional node indices (of the unpadded table), one column per point.

    scipy's ``map_coordinates(order=3, prefilter=False, mode="nearest")`` (to rounding), compiled
    for up to 4 dimensions: the 4 weights of each dimension are computed once per point and the
    4^d coefficients summed in nested loops, 2-3x faster than scipy's general N-d code (blocks of
    points on the star threads).
    """
    coordinates = np.asarray(coordinates, dtype=float)
    d = coordinates.shape[0]
    table = np.ascontiguousarray(coefficients, dtype=float).reshape(
        (1,) * (4 - d) + coefficients.shape)
    columns = [np.ascontiguousarray(c).ravel() + _PAD for c in coordinates]
    columns = [np.zeros_like(columns[0])] * (4 - d) + columns
    return map_stars(_spline_at, columns, (table,)).reshape(coordinates.shape[1:])


@numba.njit(cache=True, nogil=True)
def _spline_at(c0, c1, c2, c3, table):
    """Cubic B-spline with coefficients ``table`` (4 dimensions, leading ones of size 1 for fewer)
    at the points ``(c0, c1, c2, c3)`` (indices into ``table``); edges repeated beyond it."""
    out = np.empty(c0.size)
    shape = table.shape
    w = np.zeros((4, 4))
    index = np.zeros((4, 4), dtype=np.int64)
    taps = np.array([1 if shape[k] == 1 else 4 for k in range(4)])
    for p in range(c0.size):
        finite = True
        for k, c in enumerate((c0[p], c1[p], c2[p], c3[p])):
            if not np.isfinite(c):
                finite = False
                break
            if taps[k] == 1:
                w[k, 0], index[k, 0] = 1.0, 0
                continue
            f = np.floor(c)
            t = c - f
            s = 1.0 - t
            w[k, 0] = s * s * s / 6.0
            w[k, 1] = (4.0 - 6.0 * t * t + 3.0 * t * t * t) / 6.0
            w[k, 2] = (1.0 + 3.0 * t + 3.0 * t * t - 3.0 * t * t * t) / 6.0
            w[k, 3] = t * t * t / 6.0
            for j in range(4):
                index[k, j] = min(max(int(f) - 1 + j, 0), shape[k] - 1)
        if not finite:
            out[p] = np.nan
            continue
        total = 0.0
        for i in range(taps[0]):
            for j in range(taps[1]):
                w_ij = w[0, i] * w[1, j]
                for k in range(taps[2]):
                    w_ijk = w_ij * w[2, k]
                    part = 0.0
                    for m in range(taps[3]):
                        part += w[3, m] * table[index[0, i], index[1, j], index[2, k], index[3, m]]
                    total += w_ijk * part
        out[p] = total
    return out


@dataclass(frozen=True)
class _Axes:
    """The ``(E, L_z)`` axes shared by the tables (natural units)."""

    x1_max: float
    n1: int
    n2: int
    E_max: float
    x1_fine: np.ndarray  # fine grid of x1 for E_c(L_z)
    E_c_fine: np.ndarray


def _make_axes(pot, n1, n2):
    phi, forces = potential_functions(pot)
    r = np.geomspace(1e-5, R_MAX, 4000)
    v_c = np.sqrt(-r * forces(r, 0.0 * r, 0.0 * r)[0])
    L = np.concatenate([[0.0], r * v_c])
    # L_z = 0: the bottom of the potential (evaluated just off the centre, where some profiles
    # such as galpy's NFW are 0/0)
    E_c = np.concatenate([phi(np.full(1, 1e-8), np.zeros(1)), phi(r, 0.0 * r) + 0.5 * v_c**2])
    x1 = np.arcsinh(L / L_SCALE)
    if np.any(np.diff(x1) <= 0) or np.any(np.diff(E_c) <= 0):
        raise ValueError("the circular velocity curve of this potential is not stable "
                         "(r v_c(r) or E_c(r) not increasing); no action tables")
    return _Axes(x1_max=float(x1[-1]), n1=n1, n2=n2,
                 E_max=float(phi(np.array([2.0 * R_MAX]), np.zeros(1))[0]),
                 x1_fine=x1, E_c_fine=E_c)


def node_orbits(pot, axes, angles):
    """Initial conditions of orbits at every ``(E, L_z)`` node of the tables.

    Each orbit starts in the mid-plane at the circular radius of ``L_z`` with the energy above
    the circular orbit shared between radial and vertical motion (a kick at each of ``angles``
    from the plane); at the circular orbit's own node (``y = 0``), which does not leave the
    plane, a small excursion is used.

    Parameters
    ----------
    pot : galpy potential
    axes : _Axes
        The tables' axes.
    angles : ndarray of shape (n_angles,)
        Kick angles from the plane (rad).

    Returns
    -------
    R, v_R, v_T, v_z : ndarray of shape (n1 * n2 * n_angles,)
        Natural units (``z = 0``), nodes in C order ``(L_z, E, angle)``.
    """
    L, _, y, E_c = _axes_nodes(axes)
    phi, forces = potential_functions(pot)
    r = np.geomspace(1e-5, R_MAX, 4000)
    L_r = r * np.sqrt(-r * forces(r, 0.0 * r, 0.0 * r)[0])
    R_c = np.interp(L, L_r, r, left=r[0])
    y_orbit = np.maximum(y, 0.5 * y[1])
    E = E_c[:, None] + y_orbit[None, :] * (axes.E_max - E_c[:, None])
    kick = np.sqrt(2.0 * np.clip(E - phi(R_c, 0.0 * R_c)[:, None] - 0.5 * (L / R_c)[:, None] ** 2,
                                 0.0, None))
    shape = (axes.n1, axes.n2, np.size(angles))
    R0 = np.broadcast_to(R_c[:, None, None], shape).ravel()
    v_T0 = np.broadcast_to((L / R_c)[:, None, None], shape).ravel()
    v_R0 = (kick[..., None] * np.cos(angles)).ravel()
    v_z0 = (kick[..., None] * np.sin(angles)).ravel()
    return R0, v_R0, v_T0, v_z0


def _axes_nodes(axes):
    x1 = np.linspace(0.0, axes.x1_max, axes.n1)
    x2 = np.linspace(0.0, 1.0, axes.n2)
    L = L_SCALE * np.sinh(x1)
    E_c = np.interp(x1, axes.x1_fine, axes.E_c_fine)
    y = Y_SCALE * np.sinh(x2 * np.arcsinh(1.0 / Y_SCALE))
    E = E_c[:, None] + y[None, :] * (axes.E_max - E_c[:, None])
    return L, E, y, E_c


def axes_coordinates(axes, E, L_z):
    """Fractional node indices ``(i1, i2)``, ``y`` and whether the point is inside the table.

    Parameters
    ----------
    axes : _Axes
    E, L_z : ndarray
        Energy and angular momentum (natural units).

    Returns
    -------
    i1, i2, y : ndarray
    inside : ndarray of bool
    """
    x1 = np.arcsinh(np.abs(L_z) / L_SCALE)
    E_c = np.interp(x1, axes.x1_fine, axes.E_c_fine)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = (E - E_c) / (axes.E_max - E_c)
        x2 = np.arcsinh(np.clip(y, 0.0, None) / Y_SCALE) / np.arcsinh(1.0 / Y_SCALE)
    inside = (x1 <= axes.x1_max) & (y >= 0) & (y <= 1)
    i1 = np.clip(x1, 0.0, axes.x1_max) / axes.x1_max * (axes.n1 - 1)
    i2 = np.clip(x2, 0.0, 1.0) * (axes.n2 - 1)
    return i1, i2, np.clip(y, 0.0, 1.0), inside


@dataclass(frozen=True)
class FocalTable:
    """Focal distance of the Staeckel fudge over ``(E, L_z)``; see :func:`build_focal_table`."""

    axes: _Axes
    log_delta: np.ndarray  # spline coefficients of log(delta) on the (n1, n2) nodes
    constant: float | None = None  # one delta for every orbit (the fixed-delta method)


def build_focal_table(pot, *, n1=40, n2=40, n_points=24, n_periods=4.0, smoothing=1.0,
                      delta_min=None, constant=None):
    """Tabulate the focal distance that best makes ``pot`` a Staeckel potential along orbits.

    At every ``(E, L_z)`` node three orbits start in the mid-plane at the circular radius of
    ``L_z`` with the energy above the circular orbit shared between radial and vertical motion
    (kicks at 15, 45 and 75 degrees from the plane) and are followed for ``n_periods`` circular
    periods. ``delta^2`` is the least-squares solution of Sanders (2012)'s condition
    ``delta^2 Phi_Rz = (z^2 - R^2) Phi_Rz + 3 z Phi_R - 3 R Phi_z + R z (Phi_RR - Phi_zz)`` over
    all their points, i.e. the focal distance of the Staeckel potential closest to ``pot`` where
    those orbits go.

    Parameters
    ----------
    pot : galpy potential
        Axisymmetric, with numpy-vectorised forces and second derivatives.
    n1, n2 : int
        Nodes in angular momentum and energy.
    n_points, n_periods : int, float
        Points per orbit and integration length (circular periods).
    smoothing : float
        Width (nodes) of the Gaussian weights pooling neighbouring nodes.
    delta_min : float, optional
        Soft lower limit of the focal distance (natural units; default :data:`DELTA_MIN`).
    constant : float, optional
        Build a table with this one focal distance (natural units) instead.

    Returns
    -------
    table : FocalTable
    """
    axes = _make_axes(pot, n1, n2)
    delta_min = DELTA_MIN if delta_min is None else delta_min
    if constant is not None:
        log_delta = np.full((n1, n2), np.log(constant))
        return FocalTable(axes=axes, log_delta=log_delta, constant=float(constant))
    from galpy.potential import (evaluateR2derivs, evaluateRforces, evaluateRzderivs,
                                 evaluatez2derivs, evaluatezforces)

    angles = np.deg2rad([15.0, 45.0, 75.0])
    shape = (n1, n2, angles.size)
    R0, v_R0, v_T0, v_z0 = node_orbits(pot, axes, angles)
    # a least-squares fit over the points needs points near the orbits, not accurate ones
    pts = orbit_points(pot, R0, np.zeros_like(R0), v_R0, v_T0, v_z0, n_periods, n_points,
                       eta=0.1, period_table=circular_period_table(pot)[1:])
    R = pts[:, 0].reshape(n_points, *shape)
    z = pts[:, 1].reshape(n_points, *shape)
    F_R = evaluateRforces(pot, R, z, use_physical=False)
    F_z = evaluatezforces(pot, R, z, use_physical=False)
    d_RR = evaluateR2derivs(pot, R, z, use_physical=False)
    d_zz = evaluatez2derivs(pot, R, z, use_physical=False)
    d_Rz = evaluateRzderivs(pot, R, z, use_physical=False)
    rhs = (z**2 - R**2) * d_Rz + 3.0 * R * F_z - 3.0 * z * F_R + R * z * (d_RR - d_zz)
    # least squares pooled over the points of the node's orbits and, with Gaussian weights of
    # width `smoothing` nodes, over its neighbours: a smooth table interpolates well
    numerator = ndimage.gaussian_filter(np.nansum(d_Rz * rhs, axis=(0, 3)), smoothing,
                                        mode="nearest")
    denominator = ndimage.gaussian_filter(np.nansum(d_Rz**2, axis=(0, 3)), smoothing,
                                          mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        delta2 = numerator / denominator
    delta2 = np.where(np.isfinite(delta2), delta2, 0.0)
    # where the best prolate fit degenerates (delta^2 <= 0: an oblate-like potential, or the
    # spherical centre) any small focal distance does about equally well; a smooth floor keeps
    # the table differentiable
    floor = delta_min**2
    log_delta = 0.5 * np.log(floor + floor * np.logaddexp(0.0, (delta2 - floor) / floor))
    return FocalTable(axes=axes, log_delta=_spline(log_delta))


def focal_distance(table, E, L_z):
    """Focal distance (natural units) of orbits with energy ``E`` and angular momentum ``L_z``.

    Outside the table the nearest node's value is used.
    """
    E, L_z = np.broadcast_arrays(np.asarray(E, dtype=float), np.asarray(L_z, dtype=float))
    if table.constant is not None:
        return np.full(E.shape, table.constant)
    i1, i2, _, _ = axes_coordinates(table.axes, E, L_z)
    out = np.exp(_interpolate(table.log_delta, np.array([i1.ravel(), i2.ravel()])))
    out = out.reshape(E.shape)
    return np.where(np.isfinite(E) & np.isfinite(L_z), out, np.nan)


@dataclass(frozen=True)
class ActionGrid:
    """Interpolation tables of the fudge's actions; see :func:`build_action_grid`."""

    focal: FocalTable
    n3: int
    n4: int
    u_star: np.ndarray  # (n1, n2) spline coefficients: where g(u) peaks (the shell orbit)
    u_range: np.ndarray  # (2, n1, n2) spline coefficients of the planar orbit's u range
    h_R: np.ndarray  # (n1, n2, n3) spline coefficients of J_R / (y x3)
    h_z: np.ndarray  # (n1, n2, n3, n4) spline coefficients of J_z / (y x3z)


def build_action_grid(pot, focal, *, n3=24, n4=8):
    """Tabulate the Staeckel-fudge actions with the focal distances of ``focal``.

    Parameters
    ----------
    pot : galpy potential
    focal : FocalTable
    n3, n4 : int
        Nodes in the normalised third integral and in the star's ``u`` (vertical action only).

    Returns
    -------
    grid : ActionGrid
    """
    axes = focal.axes
    phi, _ = potential_functions(pot)
    L, _, y, E_c = _axes_nodes(axes)
    # at y = 0 the orbit is circular and the actions vanish: evaluate their ratio just above
    y_eval = np.maximum(y, 1e-3 * y[1])[None, :]
    E_eval = E_c[:, None] + y_eval * (axes.E_max - E_c[:, None])
    L2 = np.broadcast_to(L[:, None], E_eval.shape)
    delta = focal_distance(focal, E_eval, L2)
    u_star, g_max = si.max_radial_function(phi, E_eval, L2, delta)
    I3_min = L2**2 / (2.0 * delta**2) - E_eval
    span = g_max - I3_min
    u_lo, u_hi = _planar_u_range(phi, E_eval, L2, delta, u_star, I3_min)

    x3 = np.linspace(0.0, X3_MAX, n3)
    x3_eval = np.maximum(x3, 1e-3 * x3[1])
    # radial action on (n1, n2, n3)
    I3U = g_max[..., None] - x3_eval * span[..., None]
    J_R = si.radial_action(phi, E_eval[..., None], L2[..., None], I3U, delta[..., None],
                           u_star=u_star[..., None])
    h_R = J_R / (y_eval[..., None] * x3_eval)
    # vertical action on (n1, n2, n3, n4)
    x4 = np.linspace(0.0, 1.0, n4)
    u0 = u_lo[..., None] + x4 * (u_hi - u_lo)[..., None]
    I3V = I3_min[..., None] + x3_eval * span[..., None]
    J_z = si.vertical_action(phi, E_eval[..., None, None], L2[..., None, None],
                             I3V[..., None], delta[..., None, None], u0[..., None, :])
    h_z = J_z / (y_eval[..., None, None] * x3_eval[:, None])
    return ActionGrid(focal=focal, n3=n3, n4=n4, u_star=_spline(u_star),
                      u_range=np.array([_spline(u_lo), _spline(u_hi)]),
                      h_R=_spline(h_R), h_z=_spline(h_z))


def _planar_u_range(phi, E, L_z, delta, u_star, I3_min):
    """``u`` range of the planar orbit: the roots of ``g(u) = I3_min`` around ``u_star``."""

    def f(u):
        return si.radial_function(phi, u, E, L_z, delta) - I3_min

    tiny = np.full(E.shape, 1e-12)
    u_lo = np.where(f(tiny) > 0, 0.0, si._bisect(f, tiny, u_star))
    u_hi = si._bisect(f, u_star, si._u_far(phi, E, delta))
    return u_lo, u_hi


def grid_actions(grid, pot, R, z, v_R, v_T, v_z):
    """Radial and vertical actions by interpolation in ``grid`` (natural units).

    Parameters
    ----------
    grid : ActionGrid
    pot : galpy potential
        The potential ``grid`` was built for.
    R, z, v_R, v_T, v_z : ndarray of shape (n,)
        Cylindrical phase space (natural units, galpy's sign of ``v_T``).

    Returns
    -------
    J_R, J_z : ndarray of shape (n,)
        NaN where the star is outside the tables (compute those directly).
    delta : ndarray of shape (n,)
        The focal distance of each star's orbit (natural units).
    """
    phi, _ = potential_functions(pot)
    R, z, v_R, v_T, v_z = (np.asarray(a, dtype=float) for a in (R, z, v_R, v_T, v_z))
    axes = grid.focal.axes
    L_z = R * v_T
    E = phi(R, z) + 0.5 * (v_R**2 + v_T**2 + v_z**2)
    delta = focal_distance(grid.focal, E, L_z)
    i1, i2, y, inside = axes_coordinates(axes, E, L_z)
    q = si.integrals_of_motion(phi, R, z, v_R, v_T, v_z, delta)
    plane = np.array([i1, i2])
    u_star = _interpolate(grid.u_star, plane)
    g_max = si.radial_function(phi, u_star, E, L_z, delta)
    I3_min = L_z**2 / (2.0 * delta**2) - E
    span = g_max - I3_min
    with np.errstate(invalid="ignore", divide="ignore"):
        x3 = (g_max - q["I3U"]) / span
        x3z = (q["I3V"] - I3_min) / span
        u_lo = _interpolate(grid.u_range[0], plane)
        u_hi = _interpolate(grid.u_range[1], plane)
        x4 = (q["u"] - u_lo) / (u_hi - u_lo)
    ok = (inside & (span > 0) & (x3 >= -1e-9) & (x3 <= X3_MAX) & (x3z >= -1e-9) & (x3z <= X3_MAX)
          & (x4 >= -1e-3) & (x4 <= 1.0 + 1e-3))
    i3 = np.clip(x3, 0.0, X3_MAX) / X3_MAX * (grid.n3 - 1)
    i3z = np.clip(x3z, 0.0, X3_MAX) / X3_MAX * (grid.n3 - 1)
    i4 = np.clip(x4, 0.0, 1.0) * (grid.n4 - 1)
    J_R = y * np.clip(x3, 0.0, None) * _interpolate(grid.h_R, np.array([i1, i2, i3]))
    J_z = y * np.clip(x3z, 0.0, None) * _interpolate(grid.h_z, np.array([i1, i2, i3z, i4]))
    J_R = np.where(ok, np.clip(J_R, 0.0, None), np.nan)
    J_z = np.where(ok, np.clip(J_z, 0.0, None), np.nan)
    return J_R, J_z, delta


_TABLES = {}
_TABLES_LOCK = threading.Lock()
_BUILD_LOCK = threading.Lock()
_TABLES_SIZE = 8


def cached_tables(potential, key, delta=None, grid=True):
    """Focal-distance table and action grid of a gala potential, built once per process.

    Parameters
    ----------
    potential : gala.potential.PotentialBase
    key : str
        A hash identifying ``potential``.
    delta : float, optional
        One focal distance (kpc) for every orbit instead of the table ``delta(E, L_z)``.
    grid : bool
        Also build (or fetch) the :class:`ActionGrid`.

    Returns
    -------
    focal : FocalTable
    action_grid : ActionGrid or None
    """
    name = (key, None if delta is None else float(delta))
    with _BUILD_LOCK:  # one build at a time: a second caller waits for the first one's tables
        return _cached_tables(potential, name, grid)


def _cached_tables(potential, name, grid):
    from .staeckel import GALPY_RO_KPC, galpy_potential

    delta = name[1]
    with _TABLES_LOCK:
        focal, action_grid = _TABLES.get(name, (None, None))
    if focal is None or (grid and action_grid is None):
        pot = galpy_potential(potential)
        if focal is None:
            constant = None if delta is None else float(delta) / GALPY_RO_KPC
            focal = build_focal_table(pot, constant=constant)
        if grid and action_grid is None:
            action_grid = build_action_grid(pot, focal)
        with _TABLES_LOCK:
            _TABLES[name] = (focal, action_grid)
            while len(_TABLES) > _TABLES_SIZE:
                _TABLES.pop(next(iter(_TABLES)))
    return focal, (action_grid if grid else None)
