"""How accurate the tabulated Staeckel actions are along orbits, tabulated over ``(E, L_z)``.

The orbit check of :mod:`sklearn_selfcal._kernels.action_methods` integrates a star's orbit to
learn how far its actions are from their orbit average; for most disk stars the answer is "far
less than the threshold" and the integration is wasted. This table answers that question once per
potential: at every ``(E, L_z)`` node of the action grid (:mod:`~sklearn_selfcal._kernels.
staeckel_grid`), orbits launched at several angles from the plane (mostly radial to mostly
vertical motion, :func:`~sklearn_selfcal._kernels.staeckel_grid.node_orbits`) are integrated over
a few of their radial and vertical periods and the largest relative deviation of the larger action
from its mean over their points is recorded; the table holds the largest value over the launch
angles and over the neighbouring nodes (so that a star between nodes, or near a resonance that one
node's orbits missed, is not underestimated). Stars where the table's bound is small are not
integrated; the bound is their ``actions_rel_err``.
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
ANGLES_DEG = (5.0, 30.0, 60.0, 85.0)
#: Radial and vertical periods of each node orbit (in each half) and its points.
_EVENTS, _MIN_POINTS, _MAX_POINTS = 3, 24, 48


@dataclass(frozen=True)
class AccuracyTable:
    """Largest deviation of the grid's actions along orbits on the ``(E, L_z)`` nodes."""

    axes: object  # staeckel_grid._Axes
    bound: np.ndarray  # (n1, n2) relative deviation, inf where unknown


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
    node = deviation.reshape(axes.n1, axes.n2, angles.size).max(axis=2)
    return AccuracyTable(axes=axes, bound=node)


def accuracy_bound(table, pot, R, z, v_R, v_T, v_z):
    """The tabulated bound at each star's ``(E, L_z)``: the largest value of its 4 nearest nodes.

    Parameters
    ----------
    table : AccuracyTable
    pot : galpy potential
    R, z, v_R, v_T, v_z : ndarray of shape (n,)
        Natural units, galpy's sign of ``v_T``.

    Returns
    -------
    bound : ndarray of shape (n,)
        Relative deviation; NaN outside the table.
    """
    phi, _ = potential_functions(pot)
    E = phi(R, z) + 0.5 * (v_R**2 + v_T**2 + v_z**2)
    i1, i2, _, inside = axes_coordinates(table.axes, E, R * v_T)
    n1, n2 = table.bound.shape
    lo1, lo2 = np.clip(np.floor(i1).astype(int), 0, n1 - 2), np.clip(np.floor(i2).astype(int), 0, n2 - 2)
    bound = np.maximum.reduce([table.bound[lo1, lo2], table.bound[lo1 + 1, lo2],
                               table.bound[lo1, lo2 + 1], table.bound[lo1 + 1, lo2 + 1]])
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
