"""How accurate the tabulated Staeckel actions are along orbits, tabulated over ``(E, L_z)``.

The orbit check of :mod:`sklearn_selfcal._kernels.action_methods` integrates a star's orbit to
learn how far its actions are from their orbit average; for most disk stars the answer is "far
less than the threshold" and the integration is wasted. This table answers that question once per
potential: at every ``(E, L_z)`` node of the action grid (:mod:`~sklearn_selfcal._kernels.
staeckel_grid`), orbits launched at :data:`ANGLES_DEG` from the plane (mostly radial to mostly
vertical motion, :func:`~sklearn_selfcal._kernels.staeckel_grid.node_orbits`) are integrated over
a few of their radial and vertical periods, and the largest relative deviation of the larger
action from its mean over their points is recorded, with the orbit's share of vertical action
``J_z / (J_R + J_z)``. A star's bound is the largest value over the four nodes around its
``(E, L_z)`` (a star between nodes, or near a resonance that one node's orbits missed, is not
underestimated) and, at each node, over the launch angles whose share brackets the star's own and
one more on either side (all angles where the shares do not increase with the angle, or without
the star's actions). Stars where the bound is small are not integrated; the bound is their
``actions_rel_err``.

Measured against the orbit check itself (run on every star) on the first 40,000 stars of the
10^6-star run's parent sample: with 4 angles and the largest deviation over all of them, 62.0 % of
the stars were cleared (bound < 0.05) and 176 of them had a check error above 0.05, 29 above 0.1;
with 8 angles and the bracketing ones, 62.8 % are cleared, 63 above 0.05, none above 0.1 (the
finer angles find resonances that 4 miss, and a star is held to the orbits like its own); with
the bound below 0.045 (``action_methods.TABLE_FRACTION``) 59.0 %, 25 and none. On the demo's
parent sample: 61.8 % / 85 / 10 with 4 angles, 58.9 % / 4 / 0 now.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from .orbit_sampling import circular_period_table, potential_functions, sample_orbits
from .staeckel_grid import axes_coordinates, grid_actions, node_orbits

__all__ = ["ANGLES_DEG", "AccuracyTable", "build_accuracy_table", "accuracy_bound",
           "cached_accuracy_table"]

#: Launch angles of the node orbits (degrees from the plane).
ANGLES_DEG = tuple(np.linspace(5.0, 85.0, 8))
#: Launch angles beyond the two that bracket a star's share of vertical action, on either side,
#: whose deviation bounds the star's.
SIDE_ANGLES = 1
#: Radial and vertical periods of each node orbit (in each half) and its points.
_EVENTS, _MIN_POINTS, _MAX_POINTS = 3, 24, 48


@dataclass(frozen=True)
class AccuracyTable:
    """Largest deviation of the grid's actions along orbits on the ``(E, L_z)`` nodes."""

    axes: object  # staeckel_grid._Axes
    bound: np.ndarray  # (n1, n2, n_angles) relative deviation, inf where unknown
    share: np.ndarray  # (n1, n2, n_angles) J_z / (J_R + J_z) of the node orbits (mean actions)


def build_accuracy_table(pot, grid, force_table, *, eta=0.05):
    """Tabulate the largest relative deviation of ``grid``'s larger action along node orbits.

    Parameters
    ----------
    pot : galpy potential
    grid : ActionGrid
        The action grid whose accuracy is tabulated (its focal table gives the axes).
    force_table : tuple
        :func:`~sklearn_selfcal._kernels.orbit_sampling.force_table` of ``pot``.
    eta : float, default=0.05
        Time-step factor of the leapfrog.

    Returns
    -------
    table : AccuracyTable
    """
    axes = grid.focal.axes
    angles = np.deg2rad(ANGLES_DEG)
    R0, v_R0, v_T0, v_z0 = node_orbits(pot, axes, angles)
    z0 = np.zeros_like(R0)
    phi, _ = potential_functions(pot)
    _, E_c, T_c = circular_period_table(pot)
    period = np.interp(phi(R0, z0) + 0.5 * (v_R0**2 + v_T0**2 + v_z0**2), E_c, T_c)
    points, _, _, _ = sample_orbits(pot, R0, z0, v_R0, v_T0, v_z0, interval=period / 4.0,
                                 n_min=_MIN_POINTS, n_max=_MAX_POINTS, n_events=_EVENTS,
                                 t_max=20.0 * period, eta=eta, table=force_table)
    flat = [points[:, i].ravel() for i in range(5)]
    J_R, J_z = np.full(flat[0].shape, np.nan), np.full(flat[0].shape, np.nan)
    ok = np.isfinite(flat[0])
    J_R[ok], J_z[ok], _ = grid_actions(grid, pot, *(a[ok] for a in flat))
    J_R, J_z = J_R.reshape(points.shape[0], -1), J_z.reshape(points.shape[0], -1)
    recorded = np.isfinite(points[:, 0])
    with np.errstate(invalid="ignore", divide="ignore"):
        count = recorded.sum(axis=0)
        mean_R = np.where(recorded, J_R, 0.0).sum(axis=0) / count
        mean_z = np.where(recorded, J_z, 0.0).sum(axis=0) / count
        J = np.fmax(np.abs(J_R - mean_R), np.abs(J_z - mean_z))
        deviation = np.max(J, axis=0, initial=0.0, where=recorded & np.isfinite(J)) \
            / np.fmax(mean_R, mean_z)
    # a point outside the grid, or a node whose orbits could not be followed: unknown
    unknown = np.any(recorded & ~np.isfinite(J), axis=0) | ~np.isfinite(deviation) \
        | (recorded.sum(axis=0) < _MIN_POINTS // 2)
    deviation[unknown] = np.inf
    with np.errstate(invalid="ignore", divide="ignore"):
        share = mean_z / (mean_R + mean_z)
    shape = (axes.n1, axes.n2, angles.size)
    return AccuracyTable(axes=axes, bound=deviation.reshape(shape), share=share.reshape(shape))


def accuracy_bound(table, pot, R, z, v_R, v_T, v_z, J_R=None, J_z=None):
    """The tabulated bound at each star's ``(E, L_z)`` and share of vertical action.

    The largest deviation over the 4 nodes around the star and, at each, over the launch angles
    whose share ``J_z / (J_R + J_z)`` brackets the star's and :data:`SIDE_ANGLES` more on either
    side (all angles where the node's shares do not increase with the angle, or the star's
    actions are not given).

    Parameters
    ----------
    table : AccuracyTable
    pot : galpy potential
    R, z, v_R, v_T, v_z : ndarray of shape (n,)
        Natural units, galpy's sign of ``v_T``.
    J_R, J_z : ndarray of shape (n,), optional
        The stars' actions (any units, the same for both).

    Returns
    -------
    bound : ndarray of shape (n,)
        Relative deviation; NaN outside the table.
    """
    phi, _ = potential_functions(pot)
    E = phi(R, z) + 0.5 * (v_R**2 + v_T**2 + v_z**2)
    i1, i2, _, inside = axes_coordinates(table.axes, E, R * v_T)
    n1, n2, n_angles = table.bound.shape
    with np.errstate(invalid="ignore"):
        lo1 = np.clip(np.floor(np.nan_to_num(i1)).astype(int), 0, n1 - 2)
        lo2 = np.clip(np.floor(np.nan_to_num(i2)).astype(int), 0, n2 - 2)
        share = (np.full(np.shape(R), np.nan) if J_R is None
                 else np.asarray(J_z, dtype=float) / (np.asarray(J_R, dtype=float) + J_z))
    angle = np.arange(n_angles)
    bound = np.zeros(np.shape(R))
    for a, b in ((0, 0), (1, 0), (0, 1), (1, 1)):
        node_share, deviation = table.share[lo1 + a, lo2 + b], table.bound[lo1 + a, lo2 + b]
        ordered = np.all(np.diff(node_share, axis=-1) > 0, axis=-1) & np.isfinite(share)
        with np.errstate(invalid="ignore"):
            above = np.sum(node_share < share[:, None], axis=-1)  # the first angle above the star
        use = ((angle >= above[:, None] - 1 - SIDE_ANGLES) & (angle <= above[:, None] + SIDE_ANGLES)
               | ~ordered[:, None])
        bound = np.maximum(bound, np.max(np.where(use, deviation, 0.0), axis=-1))
    return np.where(inside & np.isfinite(E) & np.isfinite(bound), bound, np.nan)


_TABLES = {}
_TABLES_LOCK = threading.Lock()
_BUILD_LOCK = threading.Lock()


def cached_accuracy_table(pot, grid, force_table, name):
    """:func:`build_accuracy_table`, cached per process under ``name``.

    Parameters
    ----------
    pot : galpy potential
    grid : ActionGrid
    force_table : tuple
    name : hashable
        Identifies the potential and the grid's focal distances.

    Returns
    -------
    table : AccuracyTable
    """
    with _BUILD_LOCK:  # one build at a time: a second caller waits for the first one's table
        with _TABLES_LOCK:
            table = _TABLES.get(name)
        if table is None:
            table = build_accuracy_table(pot, grid, force_table)
            with _TABLES_LOCK:
                _TABLES[name] = table
                while len(_TABLES) > 8:
                    _TABLES.pop(next(iter(_TABLES)))
    return table
