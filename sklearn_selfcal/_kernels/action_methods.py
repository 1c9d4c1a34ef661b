"""Radial and vertical actions of stars by several methods, with a per-star accuracy check.

Methods (physical units in and out; see :class:`ActionModel`):

``"staeckel_fixed"``
    galpy's C Staeckel fudge with one focal distance for every star.
``"staeckel"``
    the same with the focal distance of each star's orbit, ``delta(E, L_z)``
    (:class:`~sklearn_selfcal._kernels.staeckel_grid.FocalTable`).
``"grid"``
    ``"staeckel"`` interpolated in tables over the integrals of motion
    (:class:`~sklearn_selfcal._kernels.staeckel_grid.ActionGrid`); stars outside the tables are
    computed directly.
``"auto"``
    ``"staeckel"``; stars whose orbit check finds the point estimate off by more than the
    threshold get the average of the fudge's actions over a longer stretch of their orbit.

The orbit check (:func:`orbit_check`) integrates every star for :data:`CHECK_PERIODS` circular
periods and evaluates the actions at :data:`CHECK_POINTS` points along the way, with the grid of
the method's focal distances. True actions are the same at every point of an orbit; the largest
relative deviation of the larger of ``J_R, J_z`` from its mean over the points is the star's
``actions_rel_err``. Orbits that may be chaotic -- bound within the inner Galaxy, or diving into
it -- and stars whose short check is above half the threshold are followed for
:data:`AVERAGE_PERIODS` periods (:data:`AVERAGE_POINTS` points) as well: a chaotic orbit can look
regular for a few periods.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from . import staeckel_integrals
from .orbit_sampling import (circular_period_table, force_table, orbit_points, potential_functions,
                             tabulated_forces)
from .staeckel import GALPY_RO_KPC, GALPY_VO_KMS, cached_staeckel, galpy_potential, staeckel_actions
from .staeckel_grid import focal_distance, grid_actions

__all__ = [
    "METHODS",
    "ORBIT_AVERAGE",
    "CHAOTIC",
    "TABULATED",
    "CHECK_PERIODS",
    "CHECK_POINTS",
    "AVERAGE_PERIODS",
    "AVERAGE_POINTS",
    "INNER_RADIUS_KPC",
    "LONG_CHECK_FRACTION",
    "ActionModel",
    "compute_actions",
    "inner_orbits",
    "orbit_check",
    "orbit_average",
]

METHODS = ("auto", "staeckel", "staeckel_fixed", "grid")
#: Bits of ``actions_flags``: the actions are an orbit average (the fudge's point value was off) ...
ORBIT_AVERAGE = 1
#: ... the orbit is chaotic (its frequencies drift), it has no actions ...
CHAOTIC = 2
#: ... the accuracy comes from the table over the integrals of motion (no integration).
TABULATED = 4
#: Length (circular periods at the star's energy) and points of the orbit check.
CHECK_PERIODS = 3.0
CHECK_POINTS = 8
#: Leapfrog time-step factor of the check (~90 steps per circular period). The leapfrog's points lie
#: on a slightly different torus, which the check sees as a deviation: measured on cold disk orbits
#: the check reads ~3x the true largest deviation at 0.07 (2x at 0.05, 5x at 0.1), an upper estimate
#: that flags 1.4 % of outer-disk stars at 5 % (16 % at 0.1), for 3/4 of the cost of 0.05.
CHECK_ETA = 0.07
#: Length and points of the orbit average of ``method="auto"``, and of the check of inner orbits.
AVERAGE_PERIODS = 24.0
AVERAGE_POINTS = 48
#: Orbits bound more tightly than the circular orbit at this radius (kpc) get the long check.
INNER_RADIUS_KPC = 3.0
#: ... and so do the others whose short check exceeds this fraction of the threshold.
LONG_CHECK_FRACTION = 0.5

_SCALE = GALPY_RO_KPC * GALPY_VO_KMS


@dataclass(frozen=True)
class ActionModel:
    """Everything a worker needs to compute actions; picklable.

    Attributes
    ----------
    potential : gala.potential.PotentialBase
    key : str
        Hash of ``potential``.
    method : str
        One of :data:`METHODS`.
    delta : float
        Focal distance of ``"staeckel_fixed"`` (kpc).
    focal : FocalTable or None
        Focal distance per orbit (all methods but ``"staeckel_fixed"``).
    grid : ActionGrid or None
        Tables of the method's actions: ``"grid"`` and the orbit check.
    check : bool
        Run the orbit check.
    threshold : float
        ``"auto"`` averages the stars whose check exceeds it.
    """

    potential: object
    key: str
    method: str
    delta: float
    focal: object
    grid: object
    check: bool
    threshold: float


@dataclass(frozen=True)
class _Keyed:
    """A potential hashed by its key, so that per-process caches can hold what is built from it."""

    key: str
    potential: object = None

    def __hash__(self):
        return hash(self.key)

    def __eq__(self, other):
        return isinstance(other, _Keyed) and other.key == self.key


@functools.lru_cache(maxsize=4)
def _galpy(keyed):
    return galpy_potential(keyed.potential)


@functools.lru_cache(maxsize=4)
def _periods(keyed):
    return circular_period_table(_galpy(keyed))


@functools.lru_cache(maxsize=4)
def _forces(keyed):
    return tabulated_forces(force_table(_galpy(keyed)))


def _natural(R, z, v_R, v_phi, v_z):
    """Physical (kpc, km/s, this package's sign of v_phi) -> galpy's natural units and v_T."""
    ro, vo = GALPY_RO_KPC, GALPY_VO_KMS
    return (np.asarray(R, float) / ro, np.asarray(z, float) / ro, np.asarray(v_R, float) / vo,
            -np.asarray(v_phi, float) / vo, np.asarray(v_z, float) / vo)


def _direct(model, pot, R, z, v_R, v_T, v_z):
    """galpy's C fudge (natural units in and out) with the method's focal distance(s)."""
    if R.size == 0:
        return np.empty(0), np.empty(0)
    finder = cached_staeckel(model.potential, model.delta, model.key)
    if model.method == "staeckel_fixed":
        delta = None
    else:
        E = _energy(pot, R, z, v_R, v_T, v_z)
        delta = focal_distance(model.focal, E, R * v_T) * GALPY_RO_KPC
    J_R, J_z = staeckel_actions(finder, R * GALPY_RO_KPC, z * GALPY_RO_KPC, v_R * GALPY_VO_KMS,
                                -v_T * GALPY_VO_KMS, v_z * GALPY_VO_KMS, delta=delta)
    J_R, J_z = J_R / _SCALE, J_z / _SCALE
    failed = ~(np.isfinite(J_R) & np.isfinite(J_z))
    if failed.any():  # galpy's root finding gave up: the numpy fudge (same integrals) retries
        d = model.delta / GALPY_RO_KPC if delta is None else delta[failed] / GALPY_RO_KPC
        phi = functools.partial(_phi, pot)
        J_R[failed], J_z[failed] = staeckel_integrals.actions(
            phi, R[failed], z[failed], v_R[failed], v_T[failed], v_z[failed], d)
    return J_R, J_z


def _phi(pot, R, z):
    return potential_functions(pot)[0](R, z)


def _energy(pot, R, z, v_R, v_T, v_z):
    return _phi(pot, R, z) + 0.5 * (v_R**2 + v_T**2 + v_z**2)


def _tabulated(model, pot, R, z, v_R, v_T, v_z):
    """Grid actions (natural units), computed directly where a star is outside the tables."""
    J_R, J_z, _ = grid_actions(model.grid, pot, R, z, v_R, v_T, v_z)
    out = ~(np.isfinite(J_R) & np.isfinite(J_z))
    if out.any():
        J_R[out], J_z[out] = _direct(model, pot, R[out], z[out], v_R[out], v_T[out], v_z[out])
    return J_R, J_z


def _point_actions(model, pot, *phase_space):
    if model.method == "grid":
        return _tabulated(model, pot, *phase_space)
    return _direct(model, pot, *phase_space)


def _mean(J, nan=False):
    """Mean over the points (axis 0 of (n_points, n)), the same for a star in any batch.

    numpy reduces along the contiguous axis pairwise and along the others term by term, and
    which one it takes for axis 0 depends on the array's shape (a batch of one star): summing the
    rows of the transposed, contiguous copy fixes the order of the additions for every star.
    """
    rows = np.ascontiguousarray(np.asarray(J).T)
    return np.nanmean(rows, axis=1) if nan else np.mean(rows, axis=1)


def _larger(J_R, J_z):
    """The larger of the two actions of each star (by its mean over the points, axis 0)."""
    radial = _mean(J_R, nan=True) >= _mean(J_z, nan=True)
    return np.where(radial, J_R, J_z)


def _points_actions(model, pot, points):
    """Actions at the points (n_points, 5, n) of :func:`orbit_points`; arrays (n_points, n)."""
    n_points, _, n = points.shape
    flat = [points[:, i].ravel() for i in range(5)]
    if model.grid is not None:
        J_R, J_z = _tabulated(model, pot, *flat)
    else:
        J_R, J_z = _direct(model, pot, *flat)
    return J_R.reshape(n_points, n), J_z.reshape(n_points, n)


def _stretch(model, pot, phase_space, n_periods, n_points):
    """Actions along a stretch of each orbit: (J_R, J_z) of shape (n_points, n), natural units,
    and the smallest galactocentric distance of the points (natural units)."""
    keyed = _Keyed(model.key, model.potential)
    points = orbit_points(pot, *phase_space, n_periods, n_points, eta=CHECK_ETA,
                          period_table=_periods(keyed)[1:], forces=_forces(keyed))
    r_min = np.min(np.hypot(points[:, 0], points[:, 1]), axis=0)
    return (*_points_actions(model, pot, points), r_min)


def _deviation(J_R, J_z):
    """Largest relative deviation of the larger action from its mean over the points (axis 0)."""
    J = _larger(J_R, J_z)
    mean = _mean(J)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.max(np.abs(J - mean), axis=0) / mean


def inner_orbits(model, pot, R, z, v_R, v_T, v_z):
    """Stars bound more tightly than the circular orbit at :data:`INNER_RADIUS_KPC`."""
    r, E_c, _ = _periods(_Keyed(model.key, model.potential))
    E = _energy(pot, R, z, v_R, v_T, v_z)
    return E < np.interp(INNER_RADIUS_KPC / GALPY_RO_KPC, r, E_c)


def orbit_check(model, pot, R, z, v_R, v_T, v_z):
    """Largest relative deviation of the (larger) action along a stretch of each orbit.

    Parameters
    ----------
    model : ActionModel
    pot : galpy potential
    R, z, v_R, v_T, v_z : ndarray of shape (n,)
        Natural units, galpy's sign of ``v_T``.

    Returns
    -------
    rel_err : ndarray of shape (n,)
        ``max_k |J_k - mean(J)| / mean(J)`` over :data:`CHECK_POINTS` points spread over
        :data:`CHECK_PERIODS` circular periods (the first point is the star). Over
        :data:`AVERAGE_POINTS` points of :data:`AVERAGE_PERIODS` periods as well (the larger of
        the two counts) for the orbits of the inner Galaxy (:func:`inner_orbits`), many of them
        chaotic, whose actions can stay steady for a few periods and then wander, for the stars
        whose short stretch comes within :data:`INNER_RADIUS_KPC` of the Galactic centre, and for
        those whose short check exceeds :data:`LONG_CHECK_FRACTION` of the threshold. NaN if an
        action failed at any point.
    averages : tuple of ndarray
        ``(J_R, J_z)`` averaged over the long stretch where it was integrated, NaN elsewhere.
    """
    phase_space = (R, z, v_R, v_T, v_z)
    rel_err = np.full(R.shape, np.nan)
    averages = (np.full(R.shape, np.nan), np.full(R.shape, np.nan))
    long = inner_orbits(model, pot, *phase_space)
    short = ~long
    if short.any():
        J_R, J_z, r_min = _stretch(model, pot, [a[short] for a in phase_space], CHECK_PERIODS,
                                   CHECK_POINTS)
        rel_err[short] = _deviation(J_R, J_z)
        # a deviation of half the threshold over a few periods may grow over more, and orbits
        # that dive into the inner Galaxy may be chaotic
        long[short] = ((rel_err[short] > LONG_CHECK_FRACTION * model.threshold)
                       | (r_min < INNER_RADIUS_KPC / GALPY_RO_KPC))
    if long.any():
        J_R, J_z, _ = _stretch(model, pot, [a[long] for a in phase_space], AVERAGE_PERIODS,
                               AVERAGE_POINTS)
        rel_err[long] = np.fmax(rel_err[long], _deviation(J_R, J_z))
        averages[0][long], averages[1][long] = _mean(J_R), _mean(J_z)
    return rel_err, averages


def orbit_average(model, pot, R, z, v_R, v_T, v_z):
    """Actions averaged over :data:`AVERAGE_POINTS` points of :data:`AVERAGE_PERIODS` periods.

    Returns
    -------
    J_R, J_z : ndarray of shape (n,)
        Natural units.
    """
    J_R, J_z, _ = _stretch(model, pot, (R, z, v_R, v_T, v_z), AVERAGE_PERIODS, AVERAGE_POINTS)
    return _mean(J_R), _mean(J_z)


def compute_actions(model, R, z, v_R, v_phi, v_z, *, check=None):
    """Radial and vertical actions of stars, with their accuracy estimate.

    Parameters
    ----------
    model : ActionModel
    R, z : ndarray of shape (n,)
        Galactocentric cylindrical radius and height (kpc).
    v_R, v_phi, v_z : ndarray of shape (n,)
        Velocities (km/s; ``v_phi`` in this package's convention, negative for disk stars).
    check : bool, optional
        Override ``model.check`` (Monte Carlo samples are never checked).

    Returns
    -------
    J_R, J_z : ndarray of shape (n,)
        Actions (kpc km/s); NaN where the computation failed.
    rel_err : ndarray of shape (n,) or None
        ``actions_rel_err`` (None without the check). Orbit-averaged stars keep the value of
        their check: the average is steadier than the point value, but on a chaotic orbit it is
        not an action, and nothing short of a much longer integration tells the two apart.
    averaged : ndarray of bool of shape (n,) or None
        Stars whose actions are orbit averages (``method="auto"``).
    """
    check = model.check if check is None else check
    pot = _galpy(_Keyed(model.key, model.potential))
    phase_space = _natural(R, z, v_R, v_phi, v_z)
    J_R, J_z = _point_actions(model, pot, *phase_space)
    if not check:
        return _physical(J_R), _physical(J_z), None, None
    rel_err, (mean_R, mean_z) = orbit_check(model, pot, *phase_space)
    averaged = np.zeros(R.shape, dtype=bool)
    if model.method == "auto":
        averaged = rel_err > model.threshold
        missing = averaged & np.isnan(mean_R)
        if missing.any():
            mean_R[missing], mean_z[missing] = orbit_average(
                model, pot, *(a[missing] for a in phase_space))
        J_R[averaged], J_z[averaged] = mean_R[averaged], mean_z[averaged]
    return _physical(J_R), _physical(J_z), rel_err, np.where(averaged, ORBIT_AVERAGE, 0.0)


def _physical(J):
    J = np.asarray(J, dtype=float) * _SCALE
    J[~np.isfinite(J)] = np.nan
    return J
