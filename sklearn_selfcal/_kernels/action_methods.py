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
    ``"staeckel"``; stars whose orbit check finds the point estimate off get actions from their
    orbit: the torus fit to it (:mod:`~sklearn_selfcal._kernels.torus_fit`) where its error is the
    smaller, the fudge's average over the check's points otherwise.

The orbit check (:func:`orbit_check`) follows each star's orbit over a number of its own radial
and vertical periods (:data:`CHECK_EVENTS` of each in either half; not a fixed time, so long-period
halo orbits are followed as long as they need) and evaluates the method's actions at points spread
over it at irregular times. Their mean estimates the true actions; ``actions_rel_err`` is the
star's own distance from it plus the uncertainty of the mean (half the difference between the
means of the two halves), for the larger of ``J_R, J_z``. ``"auto"`` gives the orbit's actions
instead where the point value is off (:func:`_auto`), with their error. An orbit whose radial period (or,
more tolerantly, vertical period) differs between the two halves by more than :data:`CHAOS_DRIFT`,
or whose companion parts from it exponentially, is a chaos candidate; it is chaotic only where an
integration :data:`CONFIRM_FACTOR` times longer confirms it (:func:`_confirmed_chaos`).

Stars whose orbit lies where the fudge is accurate (a table over ``(E, L_z)`` and the share of
vertical action of the largest deviation along orbits, built once per potential:
:mod:`sklearn_selfcal._kernels.accuracy_table`) skip the integration; their ``actions_rel_err`` is
the tabulated bound.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from . import staeckel_compiled, staeckel_integrals
from .accuracy_table import accuracy_bound, cached_accuracy_table
from .orbit_sampling import circular_period_table, force_table, potential_functions, sample_orbits
from .staeckel import GALPY_RO_KPC, GALPY_VO_KMS, cached_staeckel, galpy_potential, staeckel_actions
from .staeckel_grid import focal_distance, grid_actions
from .torus_fit import orbit_torus_fit

__all__ = [
    "METHODS",
    "ORBIT_AVERAGE",
    "CHAOTIC",
    "TABULATED",
    "TORUS_FIT",
    "CHECK_EVENTS",
    "CHAOS_DRIFT",
    "CONFIRM_FACTOR",
    "TABLE_FRACTION",
    "ActionModel",
    "compute_actions",
    "accuracy_table",
    "orbit_check",
]

METHODS = ("auto", "staeckel", "staeckel_fixed", "grid")
#: Bits of ``actions_flags``: the actions come from the orbit, not the point value (the fudge's
#: point value was off: a torus fit or the fudge's orbit average) ...
ORBIT_AVERAGE = 1
#: ... the orbit is chaotic (its frequencies drift), it has no actions ...
CHAOTIC = 2
#: ... the accuracy comes from the table over the integrals of motion (no integration) ...
TABULATED = 4
#: ... the actions (from the orbit: with :data:`ORBIT_AVERAGE`) are the torus fit to the star's
#: orbit (:mod:`~sklearn_selfcal._kernels.torus_fit`), not the fudge's average.
TORUS_FIT = 8
#: Radial and vertical periods in each half of the orbit check (pericentres and upward plane
#: crossings counted along the integration).
CHECK_EVENTS = 6
#: Mean points per circular period (at the star's energy) of the check, and their fewest and most.
POINTS_PER_PERIOD = 4.0
CHECK_MIN_POINTS = 24
CHECK_MAX_POINTS = 96
#: Longest check (circular periods at the star's energy), for orbits without vertical crossings.
CHECK_MAX_PERIODS = 40.0
#: Leapfrog time-step factor of the check (~125 steps per circular period).
CHECK_ETA = 0.05
#: ``"auto"`` gives the orbit average where the point value's error exceeds this fraction of the
#: threshold.
AVERAGE_FRACTION = 0.5
#: An orbit whose radial or vertical period changes between the halves of its check by more than
#: this (relative) is chaotic; an oscillation carrying less than :data:`MIN_ACTION_SHARE` of the
#: larger action is not tested (its period is ill-defined).
CHAOS_DRIFT = 0.05
MIN_ACTION_SHARE = 0.1
#: ... or whose companion orbit (started 8e-6 pc away) parts from it by more than this factor
#: over the second half of the check (regular neighbours part linearly in time, by a factor ~2;
#: chaotic ones exponentially), or ends farther than :data:`SATURATED_GROWTH` times the offset
#: (parted exponentially already in the first half).
CHAOS_GROWTH = 10.0
SATURATED_GROWTH = 1e6
#: A chaos candidate of the check is followed for this many times the check's periods (and
#: circular periods at most) and called chaotic only if its companion parts by more than
#: :data:`CONFIRM_GROWTH` times the offset and its period drifts by more than
#: :data:`CONFIRM_DRIFT` between the halves. Calibrated on make_orbits' bulge and halo (30 orbits
#: each, seed 2024) against the drift of the periods over 8 Gyr of gala's integration (> 2 %:
#: chaotic): of the stars so called, 97 % (bulge) and 50 % (halo) are on orbits the long
#: integration finds chaotic, against 85 % and 25 % for the check's own test (validated on seed
#: 7's bulge: 90 % against 80 %); regular bulge orbits part from their companion to at most ~1e5
#: times the offset, chaotic ones saturate at ~1e9. (Halo orbits that stay regular over 30 Gyr
#: of galpy's DOP853 can part exponentially, their periods drifting by 1-2 %, in this leapfrog
#: on tabulated forces: the remaining false calls.)
CONFIRM_FACTOR = 4
CONFIRM_GROWTH = 1e6
CONFIRM_DRIFT = 0.01
#: The vertical period is tested against this multiple of :data:`CHAOS_DRIFT`: the times between
#: plane crossings of an eccentric, inclined orbit jitter with its radial phase (regular halo
#: orbits drift by up to ~10 % over 6 periods), its pericentres do not.
VERTICAL_DRIFT_FACTOR = 3.0
#: The error of a point value or an orbit average adds this fraction of the fudge's spread along
#: the orbit (the average of a fudge that varies along the orbit may be biased) ...
BIAS_FRACTION = 0.25
#: ... an orbit average where the fudge varies along a regular orbit by more than the limit (and
#: the torus fit did better), this fraction of the spread: on make_orbits' regular bulge and halo
#: orbits the fudge's average is off gala's torus fit by a median 0.45-0.58 times its spread.
AVERAGE_BIAS_FRACTION = 0.5
#: Stars whose tabulated accuracy bound is below this fraction of the threshold are not integrated
#: (the bound comes from orbits near the star's, not its own: on an inner-disk orbit trapped at a
#: resonance of make_orbits' test sample the bound was 0.049 and the star 7 % off).
TABLE_FRACTION = 0.9
#: Stars checked per batch (memory: CHECK_MAX_POINTS x 5 x batch floats).
_BATCH = 4096

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
        ``rel_err_threshold``: ``"auto"`` averages the stars whose point value is off by more
        than :data:`AVERAGE_FRACTION` of it.
    accuracy : AccuracyTable or None
        Largest deviation of the actions along orbits over ``(E, L_z)``: stars where it is small
        skip the integration (None: every star is integrated).
    """

    potential: object
    key: str
    method: str
    delta: float
    focal: object
    grid: object
    check: bool
    threshold: float
    accuracy: object = None


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
def _compiled(keyed):
    return staeckel_compiled.compiled_potential(_galpy(keyed))


@functools.lru_cache(maxsize=4)
def _periods(keyed):
    return circular_period_table(_galpy(keyed))


@functools.lru_cache(maxsize=4)
def _forces(keyed):
    return force_table(_galpy(keyed))


def accuracy_table(potential, key, grid, delta=None):
    """The :class:`~sklearn_selfcal._kernels.accuracy_table.AccuracyTable` of ``grid``, once per
    process.

    Parameters
    ----------
    potential : gala.potential.PotentialBase
    key : str
        Hash of ``potential``.
    grid : ActionGrid
        The action grid of the method's focal distances.
    delta : float, optional
        The one focal distance of ``grid`` (kpc), if it has one.

    Returns
    -------
    table : AccuracyTable
    """
    keyed = _Keyed(key, potential)
    return cached_accuracy_table(_galpy(keyed), grid, _forces(keyed), (key, delta))


def _natural(R, z, v_R, v_phi, v_z):
    """Physical (kpc, km/s, this package's sign of v_phi) -> galpy's natural units and v_T."""
    ro, vo = GALPY_RO_KPC, GALPY_VO_KMS
    return (np.asarray(R, float) / ro, np.asarray(z, float) / ro, np.asarray(v_R, float) / vo,
            -np.asarray(v_phi, float) / vo, np.asarray(v_z, float) / vo)


def _fudge(model, R, z, v_R, v_T, v_z, delta, compiled=True):
    """The Staeckel fudge (natural units in and out) with focal distances ``delta`` (natural
    units, broadcast against the points; None: the finder's own): compiled where the potential
    has a closed form (:mod:`~sklearn_selfcal._kernels.staeckel_compiled`, 4x faster) and
    ``compiled``, galpy's C otherwise."""
    params = _compiled(_Keyed(model.key, model.potential)) if compiled else None
    if params is not None:
        d = model.delta / GALPY_RO_KPC if delta is None else delta
        return staeckel_compiled.actions(params, R, z, v_R, v_T, v_z, d)
    shape = np.broadcast_shapes(np.shape(R), np.shape(delta))
    R, z, v_R, v_T, v_z = (np.broadcast_to(a, shape).ravel() for a in (R, z, v_R, v_T, v_z))
    if delta is not None:
        delta = np.broadcast_to(delta, shape).ravel() * GALPY_RO_KPC
    finder = cached_staeckel(model.potential, model.delta, model.key)
    J_R, J_z = staeckel_actions(finder, R * GALPY_RO_KPC, z * GALPY_RO_KPC, v_R * GALPY_VO_KMS,
                                -v_T * GALPY_VO_KMS, v_z * GALPY_VO_KMS, delta=delta)
    return (J_R / _SCALE).reshape(shape), (J_z / _SCALE).reshape(shape)


def _direct(model, pot, R, z, v_R, v_T, v_z):
    """The fudge (natural units in and out) with the method's focal distance(s)."""
    if R.size == 0:
        return np.empty(0), np.empty(0)
    if model.method == "staeckel_fixed":
        delta = None
    else:
        E = _energy(pot, R, z, v_R, v_T, v_z)
        delta = focal_distance(model.focal, E, R * v_T)
    # galpy's C code: the point values of the direct methods stay those of make_survey's truths
    # and of earlier releases (the compiled fudge differs from it by up to 3e-5 relative, where
    # galpy's roots or quadrature are the less precise)
    J_R, J_z = _fudge(model, R, z, v_R, v_T, v_z, delta, compiled=False)
    failed = ~(np.isfinite(J_R) & np.isfinite(J_z))
    if failed.any():  # galpy's root finding gave up: the compiled fudge (same integrals, its
        # turning points bracketed from the star's own position) or the numpy fudge retries
        d = model.delta / GALPY_RO_KPC if delta is None else delta[failed]
        args = (R[failed], z[failed], v_R[failed], v_T[failed], v_z[failed], d)
        if _compiled(_Keyed(model.key, model.potential)) is not None:
            J_R[failed], J_z[failed] = _fudge(model, *args)
        else:
            J_R[failed], J_z[failed] = staeckel_integrals.actions(functools.partial(_phi, pot), *args)
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
    if model.method == "grid" or (model.method == "auto" and model.grid is not None):
        return _tabulated(model, pot, *phase_space)
    return _direct(model, pot, *phase_space)


def _mean(J, where=None):
    """Mean over the points (axis 0 of (n_points, n)), the same for a star in any batch.

    numpy reduces along the contiguous axis pairwise and along the others term by term, and
    which one it takes for axis 0 depends on the array's shape (a batch of one star): summing the
    rows of the transposed, contiguous copy fixes the order of the additions for every star.
    ``where`` selects the points (and NaN points are left out).
    """
    J = np.asarray(J, dtype=float)
    use = np.isfinite(J) if where is None else (np.isfinite(J) & where)
    rows = np.ascontiguousarray(np.where(use, J, 0.0).T)
    count = np.ascontiguousarray(use.T).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return rows.sum(axis=1) / count


def _points_actions(model, pot, points):
    """Actions at the points (n_points, 5, n) of :func:`sample_orbits`; arrays (n_points, n)."""
    n_points, _, n = points.shape
    flat = [points[:, i].ravel() for i in range(5)]
    ok = np.isfinite(flat[0])
    J_R, J_z = np.full(flat[0].shape, np.nan), np.full(flat[0].shape, np.nan)
    args = [a[ok] for a in flat]
    if model.grid is None:
        J_R[ok], J_z[ok] = _direct(model, pot, *args)
        return J_R.reshape(n_points, n), J_z.reshape(n_points, n)
    J_R_ok, J_z_ok, delta = grid_actions(model.grid, pot, *args)
    # points outside the tables: the compiled fudge (4x faster than galpy's C code and within
    # 3e-5 of it, far below what the check resolves); galpy's C code where the potential has no
    # closed form or where the compiled fudge gives up
    out = ~(np.isfinite(J_R_ok) & np.isfinite(J_z_ok))
    if out.any() and _compiled(_Keyed(model.key, model.potential)) is not None:
        J_R_ok[out], J_z_ok[out] = _fudge(model, *(a[out] for a in args), delta[out])
        out = ~(np.isfinite(J_R_ok) & np.isfinite(J_z_ok))
    if out.any():
        J_R_ok[out], J_z_ok[out] = _direct(model, pot, *(a[out] for a in args))
    J_R[ok], J_z[ok] = J_R_ok, J_z_ok
    return J_R.reshape(n_points, n), J_z.reshape(n_points, n)


def orbit_check(model, pot, R, z, v_R, v_T, v_z, J_R, J_z):
    """Error of the point actions, the orbit averages, their error and a chaos test.

    Parameters
    ----------
    model : ActionModel
    pot : galpy potential
    R, z, v_R, v_T, v_z : ndarray of shape (n,)
        Natural units, galpy's sign of ``v_T``.
    J_R, J_z : ndarray of shape (n,)
        The method's actions of the stars (natural units).

    Returns
    -------
    point_err : ndarray of shape (n,)
        Relative distance of the star's larger action from its mean over the points, plus the
        mean's uncertainty (half the difference of the means of the two halves), plus
        :data:`BIAS_FRACTION` of the spread: the estimated error of ``J_R, J_z``. NaN if the
        orbit could not be followed.
    spread : ndarray of shape (n,)
        Standard deviation over mean of the larger action over the points (the fudge's variation
        along the orbit, with the method's focal distance).
    averages : tuple of ndarray
        ``(J_R, J_z)`` averaged over the points and the average's uncertainty (relative; half the
        difference of the averages of the two halves).
    chaotic : ndarray of bool of shape (n,)
        A candidate (the radial or the vertical period differs between the halves by more than
        :data:`CHAOS_DRIFT`, or the companion parts exponentially) that a longer integration
        confirms (:func:`_confirmed_chaos`).
    """
    keyed = _Keyed(model.key, model.potential)
    _, E_c, T_c = _periods(keyed)
    E = _energy(pot, R, z, v_R, v_T, v_z)
    period = np.interp(E, E_c, T_c)
    points, n_points, periods, growth, state = sample_orbits(
        pot, R, z, v_R, v_T, v_z, interval=period / POINTS_PER_PERIOD, n_min=CHECK_MIN_POINTS,
        n_max=CHECK_MAX_POINTS, n_events=CHECK_EVENTS, t_max=CHECK_MAX_PERIODS * period,
        eta=CHECK_ETA, table=_forces(keyed), later=(period, CONFIRM_FACTOR * CHECK_EVENTS))
    P_R, P_z = _points_actions(model, pot, points[:, :, :])
    P_R[0], P_z[0] = J_R, J_z  # the star itself: the method's own values
    first = np.arange(points.shape[0])[:, None] < n_points / 2.0
    mean_R, mean_z = _mean(P_R), _mean(P_z)
    mean_err, spread, scale = _variation(P_R, P_z, mean_R, mean_z, first)
    with np.errstate(invalid="ignore", divide="ignore"):
        point_err = (np.fmax(np.abs(J_R - mean_R), np.abs(J_z - mean_z)) / scale + mean_err
                     + BIAS_FRACTION * spread)
        drift = np.abs(periods[:, 0] - periods[:, 1]) / (0.5 * (periods[:, 0] + periods[:, 1]))
        larger = np.fmax(mean_R, mean_z)
        tested = np.array([mean_R, mean_z]) > MIN_ACTION_SHARE * larger
    limit = CHAOS_DRIFT * np.array([1.0, VERTICAL_DRIFT_FACTOR])[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        exponential = (growth[1] / growth[0] > CHAOS_GROWTH) | (growth[1] > SATURATED_GROWTH)
    candidate = np.any(tested & (drift > limit), axis=0) | exponential
    # a candidate is chaotic only where a longer integration confirms it
    chaotic = np.zeros(R.shape, dtype=bool)
    chaotic[candidate] = _confirmed_chaos(pot, keyed, period[candidate], tested[:, candidate],
                                          R[candidate], z[candidate], v_R[candidate],
                                          v_T[candidate], v_z[candidate],
                                          tuple(a[candidate] for a in state))
    lost = n_points < CHECK_MIN_POINTS // 2  # the orbit left the force table (beyond 400 kpc)
    point_err[lost] = mean_err[lost] = spread[lost] = np.nan
    return point_err, spread, (mean_R, mean_z, mean_err), chaotic, (points, n_points)


def _confirmed_chaos(pot, keyed, period, tested, R, z, v_R, v_T, v_z, resume=None):
    """Chaos confirmed over :data:`CONFIRM_FACTOR` times the check's periods: the companion orbit
    parts exponentially (farther than :data:`CONFIRM_GROWTH` times its offset) *and* the radial
    (vertical) period drifts between the halves by more than :data:`CONFIRM_DRIFT` (three times
    that). Either alone overcalls: regular orbits passing near the centre part from their
    companion exponentially without a measurable drift of their frequencies, and pericentre
    times of resonant orbits jitter by up to 30 % over 6 periods (~5 % over 24). ``resume``: the
    check's state of these stars (:func:`sample_orbits`), which the integration continues (the
    same bits as from the start, a quarter of the steps fewer)."""
    if R.size == 0:
        return np.zeros(0, dtype=bool)
    factor = CONFIRM_FACTOR
    _, _, periods, growth = sample_orbits(
        pot, R, z, v_R, v_T, v_z, interval=period, n_min=2,
        n_max=int(factor * CHECK_MAX_PERIODS) + 2, n_events=factor * CHECK_EVENTS,
        t_max=factor * CHECK_MAX_PERIODS * period, eta=CHECK_ETA, table=_forces(keyed),
        resume=resume)
    with np.errstate(invalid="ignore", divide="ignore"):
        drift = np.abs(periods[:, 0] - periods[:, 1]) / (0.5 * (periods[:, 0] + periods[:, 1]))
    limit = CONFIRM_DRIFT * np.array([1.0, VERTICAL_DRIFT_FACTOR])[:, None]
    return np.any(tested & (drift > limit), axis=0) & (growth[1] > CONFIRM_GROWTH)


def _variation(P_R, P_z, mean_R, mean_z, first):
    """Half the difference of the halves' means and the spread of the actions at the points
    (n_points, n), each the larger of the two actions' and relative to the larger mean, which is
    returned too (an action much smaller than the other is not held to its own relative error)."""
    scale = np.fmax(mean_R, mean_z)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = np.fmax(np.abs(_mean(P_R, first) - _mean(P_R, ~first)),
                       np.abs(_mean(P_z, first) - _mean(P_z, ~first))) / (2.0 * scale)
        spread = np.sqrt(np.fmax(_mean((P_R - mean_R) ** 2), _mean((P_z - mean_z) ** 2))) / scale
    return half, spread, scale


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
        ``actions_rel_err`` (None without the check): the estimated relative error of the larger
        of ``J_R, J_z`` as given (of the orbit average where it is one).
    flags : ndarray of shape (n,) or None
        ``actions_flags``: sums of :data:`ORBIT_AVERAGE`, :data:`CHAOTIC`, :data:`TABULATED`.
    """
    check = model.check if check is None else check
    keyed = _Keyed(model.key, model.potential)
    pot = _galpy(keyed)
    phase_space = _natural(R, z, v_R, v_phi, v_z)
    J_R, J_z = _point_actions(model, pot, *phase_space)
    if not check:
        return _physical(J_R), _physical(J_z), None, None
    rel_err = np.full(J_R.shape, np.nan)
    flags = np.zeros(J_R.shape)
    bound = np.full(J_R.shape, np.nan)
    if model.accuracy is not None:
        bound = accuracy_bound(model.accuracy, pot, *phase_space, J_R, J_z)
    tabulated = bound < TABLE_FRACTION * model.threshold
    rel_err[tabulated] = bound[tabulated]
    flags[tabulated] = TABULATED
    todo = np.flatnonzero(~tabulated & np.isfinite(J_R) & np.isfinite(J_z))
    for start in range(0, todo.size, _BATCH):
        rows = todo[start:start + _BATCH]
        point_err, spread, (mean_R, mean_z, mean_err), chaotic, _ = orbit_check(
            model, pot, *(a[rows] for a in phase_space), J_R[rows], J_z[rows])
        err = point_err
        if model.method == "auto":
            err = point_err.copy()
            _auto(model, pot, keyed, [a[rows] for a in phase_space], point_err, spread, chaotic,
                  (mean_R, mean_z, mean_err), J_R, J_z, err, flags, rows)
        rel_err[rows] = err
        flags[rows[chaotic]] += CHAOTIC
    return _physical(J_R), _physical(J_z), rel_err, flags


def _auto(model, pot, keyed, phase_space, point_err, spread, chaotic, averages, J_R, J_z, err,
          flags, rows):
    """``"auto"``'s values of the stars ``rows`` whose point value is off (in place): the torus
    fit to the orbit where its error is the smaller, else the fudge's orbit average."""
    mean_R, mean_z, mean_err = averages
    # the point value is off, or the fudge varies along the orbit (then its average with this
    # focal distance may be biased too), or the orbit is chaotic
    limit = AVERAGE_FRACTION * model.threshold
    average = ~(point_err <= limit) | ~(spread <= limit) | chaotic
    # the fudge's average; biased by about half its spread where that is large on a regular orbit
    bias = np.where((spread > limit) & ~chaotic, AVERAGE_BIAS_FRACTION, BIAS_FRACTION)
    new_R, new_z, new_err = mean_R.copy(), mean_z.copy(), mean_err + bias * spread
    torus = np.zeros(average.shape, dtype=bool)
    # the torus fit where the average's error exceeds the limit too (a chaotic orbit has no torus)
    regular = np.flatnonzero(average & ~chaotic & ~(new_err <= limit))
    if regular.size:
        _, E_c, T_c = _periods(keyed)
        R, z, v_R, v_T, v_z = (a[regular] for a in phase_space)
        period = np.interp(_energy(pot, R, z, v_R, v_T, v_z), E_c, T_c)
        fit_R, fit_z, fit_err = orbit_torus_fit(pot, R, z, v_R, v_T, v_z, period=period,
                                                t_max=2 * CHECK_MAX_PERIODS * period,
                                                table=_forces(keyed))
        better = np.isfinite(fit_err) & ~(new_err[regular] <= fit_err)
        better &= np.isfinite(fit_R) & np.isfinite(fit_z)
        take = regular[better]
        new_R[take], new_z[take], new_err[take] = fit_R[better], fit_z[better], fit_err[better]
        torus[take] = True
    average &= np.isfinite(new_R) & np.isfinite(new_z)
    J_R[rows[average]], J_z[rows[average]] = new_R[average], new_z[average]
    err[average] = new_err[average]
    flags[rows[average]] += ORBIT_AVERAGE
    flags[rows[average & torus]] += TORUS_FIT


def _physical(J):
    J = np.asarray(J, dtype=float) * _SCALE
    J[~np.isfinite(J)] = np.nan
    return J
