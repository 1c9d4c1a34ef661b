"""Points along the orbits of many stars: an adaptive leapfrog compiled with numba.

The accuracy check and the orbit averages of :mod:`sklearn_selfcal._kernels.action_methods` need
phase-space points on each star's orbit, not an accurate trajectory in time: the points only have
to lie on the same orbit. So every star is integrated with its own adaptive time step
(kick-drift-kick leapfrog with ``dt = eta * sqrt((r + r_soft) / |a|)``, which resolves the passages
through the Galactic centre of bulge and halo orbits) in forces interpolated in a table over the
meridional plane, and every recorded point is put back on the star's energy and angular-momentum
surface by rescaling its meridional velocity (``L_z`` and ``E`` are exact integrals; the leapfrog's
energy error of ~1e-3 would otherwise change the radial action of a cold disk orbit by several per
cent).

Points are recorded at irregular times (intervals ``interval * (0.5 + frac(k * golden ratio))``):
points at equal times can alias with the orbit's radial or vertical period and all fall at the same
phase. :func:`sample_orbits` also times the orbit's pericentres and upward crossings of the plane,
so that a check can run over a number of radial and vertical periods (not a fixed time) and compare
the periods of the two halves of the orbit (a chaotic orbit's frequencies drift).

A star's result depends only on its own initial conditions (stars are integrated one by one), so
it is the same whatever the batch, order or chunking. Everything is in galpy's natural units; the
potential is a galpy potential with numpy-vectorised forces
(:func:`sklearn_selfcal._kernels.staeckel.galpy_potential`).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .threads import map_stars

__all__ = ["ETA", "circular_period_table", "force_table", "interpolated_forces", "orbit_points",
           "potential_functions", "sample_orbits"]

#: Time step factor of the leapfrog: ``dt = ETA * sqrt((r + R_SOFT) / |a|)`` (~125 steps per
#: circular orbit).
ETA = 0.05
#: Softening length of the time-step criterion (natural units, 0.08 kpc for ro = 8 kpc): keeps
#: the step finite for a star passing through r = 0 of a cored or cuspy potential.
R_SOFT = 0.01
_GOLDEN = 0.5 * (math.sqrt(5.0) - 1.0)
#: Vertical offset of the companion orbit of a check (natural units, 8e-6 pc).
_OFFSET = 1e-9


def potential_functions(pot):
    """``phi(R, z)`` and ``forces(x, y, z)`` of a galpy potential (natural units).

    Parameters
    ----------
    pot : galpy potential

    Returns
    -------
    phi, forces : callable
        Vectorised over numpy arrays.
    """
    from galpy.potential import evaluatePotentials, evaluateRforces, evaluatezforces

    from .staeckel_compiled import cached_compiled_potential, potential

    params = cached_compiled_potential(pot)

    # galpy evaluates the generic and the small-radius formulas of some profiles everywhere and
    # keeps the right one; the discarded one divides by zero at the centre
    def phi(R, z):
        if params is not None:  # the closed forms compiled (equal to galpy's to 1e-12, faster)
            return potential(params, R, z)
        with np.errstate(invalid="ignore", divide="ignore"):
            return evaluatePotentials(pot, R, z, use_physical=False)

    def forces(x, y, z):
        R = np.hypot(x, y)
        with np.errstate(invalid="ignore", divide="ignore"):
            F_R = evaluateRforces(pot, R, z, use_physical=False)
            F_z = evaluatezforces(pot, R, z, use_physical=False)
            scale = np.where(R > 0, F_R / R, 0.0)
        return scale * x, scale * y, F_z

    return phi, forces


#: Force table: nodes uniform in ``asinh(R / _FORCE_SCALE)`` and ``asinh(|z| / _FORCE_SCALE)``
#: out to ``_FORCE_EXTENT`` (natural units: 6 pc and 400 kpc), bilinear interpolation (the force
#: error of ~1e-5 moves the points to an orbit of a potential that differs by as little, far below
#: what the check resolves). A star leaving the table gets NaN points.
_FORCE_SCALE = 7.5e-4
_FORCE_EXTENT = 50.0
_FORCE_NODES = 1024


def force_table(pot):
    """Tables of ``F_R / R`` and ``F_z`` over the meridional plane (natural units).

    Parameters
    ----------
    pot : galpy potential

    Returns
    -------
    table : tuple
        ``(step, F_R / R, F_z)``: the node spacing in ``asinh(coordinate / scale)`` and two
        (nodes, nodes) arrays over ``(R, |z|)``; pass to :func:`interpolated_forces` and
        :func:`sample_orbits`.
    """
    x = np.linspace(0.0, np.arcsinh(_FORCE_EXTENT / _FORCE_SCALE), _FORCE_NODES)
    coordinate = _FORCE_SCALE * np.sinh(x)
    R, z = np.meshgrid(coordinate, coordinate, indexing="ij")
    R = np.maximum(R, 1e-9)
    _, exact = potential_functions(pot)
    F_x, _, F_z = exact(R, np.zeros_like(R), z)  # at y = 0, F_x = F_R and F_x / x = F_R / R
    return (float(x[1]), np.ascontiguousarray(F_x / R), np.ascontiguousarray(F_z))


@numba.njit(cache=True, inline="always")
def _force(x, y, z, step, over_R, vertical):
    """Bilinear forces at one point; ``inside`` is False beyond the table."""
    i = math.asinh(math.sqrt(x * x + y * y) / _FORCE_SCALE) / step
    j = math.asinh(abs(z) / _FORCE_SCALE) / step
    last = over_R.shape[0] - 1
    if not (i < last and j < last):
        return 0.0, 0.0, 0.0, False
    i0, j0 = int(i), int(j)
    fi, fj = i - i0, j - j0
    w00, w01, w10, w11 = (1 - fi) * (1 - fj), (1 - fi) * fj, fi * (1 - fj), fi * fj
    G = (w00 * over_R[i0, j0] + w01 * over_R[i0, j0 + 1] + w10 * over_R[i0 + 1, j0]
         + w11 * over_R[i0 + 1, j0 + 1])
    F_z = (w00 * vertical[i0, j0] + w01 * vertical[i0, j0 + 1] + w10 * vertical[i0 + 1, j0]
           + w11 * vertical[i0 + 1, j0 + 1])
    return G * x, G * y, (F_z if z >= 0.0 else -F_z), True


@numba.njit(cache=True)
def _forces_at(x, y, z, step, over_R, vertical):
    out = np.full((3, x.size), np.nan)
    for k in range(x.size):
        a_x, a_y, a_z, inside = _force(x[k], y[k], z[k], step, over_R, vertical)
        if inside:
            out[0, k], out[1, k], out[2, k] = a_x, a_y, a_z
    return out


def interpolated_forces(table, x, y, z):
    """Forces from :func:`force_table` at Cartesian points (natural units).

    Parameters
    ----------
    table : tuple
        From :func:`force_table`.
    x, y, z : ndarray of shape (n,)
        Positions (natural units).

    Returns
    -------
    forces : ndarray of shape (3, n)
        ``F_x, F_y, F_z``; NaN beyond the table.
    """
    step, over_R, vertical = table
    args = (np.ascontiguousarray(a, dtype=float).ravel() for a in (x, y, z))
    return _forces_at(*args, step, over_R, vertical)


#: Layout of a star's saved state (:func:`sample_orbits` ``later=``/``resume=``): position,
#: velocity, the companion's, the companion's largest squared distance, time, the last radial
#: velocity and height, the continuation's point count and next point time, the event counts,
#: and whether the star left the force table.
_STATE = 21


@numba.njit(cache=True, nogil=True)
def _integrate(R0, z0, v_R0, v_T0, v_z0, interval, t_max, later_interval, state, events, n_min,
               n_max, n_events, eta, step, over_R, vertical):
    n = R0.size
    points = np.full((n_max, 4, n), np.nan)  # R, z, v_R, v_z
    n_points = np.zeros(n, dtype=np.int64)
    counts = np.zeros((2, n), dtype=np.int64)
    # a companion started _OFFSET above the star (checks only): how far apart they are at the end
    growth = np.nan * np.zeros(n)
    n_record = events.shape[2]
    for s in range(n):
        x, y, z = R0[s], 0.0, z0[s]  # the star on the x axis (the potential is axisymmetric)
        v_x, v_y, v_z = v_R0[s], v_T0[s], v_z0[s]
        points[0, 0, s], points[0, 1, s], points[0, 2, s], points[0, 3, s] = x, z, v_x, v_z
        k = 1
        if not (interval[s] > 0) or not np.isfinite(x + z + v_x + v_y + v_z):
            n_points[s] = 1
            continue
        c_x, c_y, c_z, c_vx, c_vy, c_vz = x, y, z + _OFFSET, v_x, v_y, v_z
        apart = 0.0  # largest squared distance of the companion so far
        t = 0.0
        t_next = interval[s] * (0.5 + (k * _GOLDEN) % 1.0)
        # the point schedule of a later continuation (``later``), kept so that it resumes exactly
        k_later = 1
        t_later = later_interval[s] * (0.5 + (k_later * _GOLDEN) % 1.0)
        r = math.sqrt(x * x + y * y + z * z)  # (y = 0) carried from step to step
        v_r_old = (x * v_x + z * v_z) / r
        z_old = z
        left = False
        if np.isfinite(state[s, 0]):  # resume where an earlier call stopped
            x, y, z, v_x, v_y, v_z = state[s, 0], state[s, 1], state[s, 2], state[s, 3], \
                state[s, 4], state[s, 5]
            c_x, c_y, c_z, c_vx, c_vy, c_vz = state[s, 6], state[s, 7], state[s, 8], \
                state[s, 9], state[s, 10], state[s, 11]
            apart, t, v_r_old, z_old = state[s, 12], state[s, 13], state[s, 14], state[s, 15]
            k, t_next = int(state[s, 16]), state[s, 17]
            counts[0, s], counts[1, s] = int(state[s, 18]), int(state[s, 19])
            left = state[s, 20] > 0
            r = math.sqrt(x * x + y * y + z * z)
        a_x, a_y, a_z, inside = _force(x, y, z, step, over_R, vertical)
        b_x, b_y, b_z, _ = _force(c_x, c_y, c_z, step, over_R, vertical)
        inside = inside and not left
        while inside:
            dt = eta * math.sqrt((r + R_SOFT) / math.sqrt(a_x * a_x + a_y * a_y + a_z * a_z))
            v_x += 0.5 * dt * a_x
            v_y += 0.5 * dt * a_y
            v_z += 0.5 * dt * a_z
            x += dt * v_x
            y += dt * v_y
            z += dt * v_z
            a_x, a_y, a_z, inside = _force(x, y, z, step, over_R, vertical)
            if not inside:
                break
            v_x += 0.5 * dt * a_x
            v_y += 0.5 * dt * a_y
            v_z += 0.5 * dt * a_z
            if n_events > 0:  # the companion, with the star's time steps
                c_vx += 0.5 * dt * b_x
                c_vy += 0.5 * dt * b_y
                c_vz += 0.5 * dt * b_z
                c_x += dt * c_vx
                c_y += dt * c_vy
                c_z += dt * c_vz
                b_x, b_y, b_z, _ = _force(c_x, c_y, c_z, step, over_R, vertical)
                c_vx += 0.5 * dt * b_x
                c_vy += 0.5 * dt * b_y
                c_vz += 0.5 * dt * b_z
                apart = max(apart, (c_x - x) ** 2 + (c_y - y) ** 2 + (c_z - z) ** 2)
            t += dt
            r = math.sqrt(x * x + y * y + z * z)
            v_r = (x * v_x + y * v_y + z * v_z) / r
            if n_events > 0:
                # pericentre: the spherical radial velocity turns from negative to positive (the
                # cylindrical one also turns where an inclined orbit crosses the pole region);
                # upward crossing of the plane. Their times are recorded (and the companion's
                # distance at pericentres)
                for e, old, new in ((0, v_r_old, v_r), (1, z_old, z)):
                    if old < 0.0 <= new:
                        c = counts[e, s]
                        if c < n_record:
                            events[s, e, c] = t - dt * new / (new - old)
                            if e == 0:
                                events[s, 2, c] = apart
                        counts[e, s] = c + 1
            v_r_old, z_old = v_r, z
            if t >= t_later:
                k_later += 1
                t_later += later_interval[s] * (0.5 + (k_later * _GOLDEN) % 1.0)
            if t >= t_next:
                R = math.sqrt(x * x + y * y)
                points[k, 0, s], points[k, 1, s] = R, z
                points[k, 2, s], points[k, 3, s] = (x * v_x + y * v_y) / R, v_z
                k += 1
                t_next += interval[s] * (0.5 + (k * _GOLDEN) % 1.0)
                if k == n_max:
                    break
                if k >= n_min and (n_events == 0 or (counts[0, s] > 2 * n_events
                                                     and counts[1, s] > 2 * n_events)):
                    break
            if t >= t_max[s] and k >= 2:
                break
        for i, value in enumerate((x, y, z, v_x, v_y, v_z, c_x, c_y, c_z, c_vx, c_vy, c_vz,
                                   apart, t, v_r_old, z_old, float(k_later), t_later,
                                   float(counts[0, s]), float(counts[1, s]),
                                   0.0 if inside else 1.0)):
            state[s, i] = value
        if not inside:  # left the table: no points
            points[1:, :, s] = np.nan
            k = 1
        elif n_events > 0:
            growth[s] = math.sqrt(apart) / _OFFSET
        n_points[s] = k
    return points, n_points, counts, growth


@numba.njit(cache=True)
def _event_sums(events, counts, n_events):
    """Least-squares sums (count, k, t, k^2, k t) of the event times against their index, for
    pericentres / upward plane crossings (``[0]``, ``[1]``), over the first (events
    ``0..n_events``) and the second half (``n_events..2 n_events``); shape (2, 2, 5, n)."""
    n = events.shape[0]
    sums = np.zeros((2, 2, 5, n))
    for s in range(n):
        for e in range(2):
            for c in range(min(counts[e, s], 2 * n_events + 1)):
                when = events[s, e, c]
                for h in range(2):
                    if h * n_events <= c <= (h + 1) * n_events:
                        sums[e, h, 0, s] += 1.0
                        sums[e, h, 1, s] += c
                        sums[e, h, 2, s] += when
                        sums[e, h, 3, s] += c * c
                        sums[e, h, 4, s] += c * when
    return sums


def sample_orbits(pot, R, z, v_R, v_T, v_z, *, interval, n_min, n_max, n_events=0, t_max=None,
                  eta=ETA, table=None, later=None, resume=None):
    """Points along each star's orbit, and the times of its pericentres and plane crossings.

    Points are recorded at irregular times of mean spacing ``interval`` (the first point is the
    star itself) until the star has ``n_min`` points and, with ``n_events > 0``, more than
    ``2 n_events`` pericentres and upward crossings of the plane; or ``n_max`` points; or the time
    ``t_max``.

    An integration can be continued where it stopped (``later``, then ``resume``): the continued
    one gives the same bits as one run from the start with its own settings, without repeating
    the common stretch (the chaos confirmation of a check).

    Parameters
    ----------
    pot : galpy potential
    R, z, v_R, v_T, v_z : ndarray of shape (n,)
        Cylindrical phase space (natural units; ``v_T = L_z / R``).
    interval : ndarray of shape (n,)
        Mean time between points (natural units).
    n_min, n_max : int
        Fewest and most points per star (``n_max >= 2``).
    n_events : int, default=0
        Radial and vertical periods per half of the orbit (0: stop at ``n_min`` points).
    t_max : ndarray of shape (n,), optional
        Longest integration (natural units; default: unlimited).
    eta : float, default=ETA
        Time-step factor.
    table : tuple, optional
        :func:`force_table` of ``pot`` (built when not given).
    later : tuple, optional
        ``(interval, n_events)`` of a continuation that may follow (its mean time between points,
        natural units, and its periods per half, at least these ``n_events``): the state to
        continue from is returned too.
    resume : tuple, optional
        The state returned with ``later`` (rows of the stars continued, which are these stars):
        continue from there, with ``interval``, ``n_events`` etc. those given as ``later``.

    Returns
    -------
    points : ndarray of shape (n_max, 5, n)
        ``R, z, v_R, v_T, v_z`` at each point, with ``E`` and ``L_z`` equal to the star's; NaN
        past the star's last point (and for a star that left the force table, every point but
        the first). A continuation's points are those after it resumed.
    n_points : ndarray of int of shape (n,)
        Points recorded per star.
    periods : ndarray of shape (2, 2, n)
        Radial (``[0]``) and vertical (``[1]``) period over the first and the second ``n_events``
        periods (``[:, 0]``, ``[:, 1]``; natural units): the least-squares slope of the times of
        the pericentres (upward plane crossings) against their number, which averages out their
        quasi-periodic jitter; NaN where fewer were seen.
    growth : ndarray of shape (2, n)
        With ``n_events > 0``: the largest distance from the star of a companion started 1e-9
        (natural units) above it, over that initial offset, until the star's ``n_events + 1``-th
        pericentre (``[0]``) and until the end (``[1]``); NaN otherwise. Neighbouring regular
        orbits part linearly in time (the second about twice the first), chaotic ones
        exponentially.
    state : tuple of ndarray
        With ``later``: ``(state, events)`` of each star (rows), to pass as ``resume``.
    """
    phi, _ = potential_functions(pot)
    table = force_table(pot) if table is None else table
    R, z, v_R, v_T, v_z = (np.array(a, dtype=float).ravel() for a in (R, z, v_R, v_T, v_z))
    n = R.size
    interval = np.broadcast_to(np.asarray(interval, dtype=float), (n,)).copy()
    t_max = np.full(n, np.inf) if t_max is None else np.broadcast_to(
        np.asarray(t_max, dtype=float), (n,)).copy()
    E0 = phi(R, z) + 0.5 * (v_R**2 + v_T**2 + v_z**2)
    interval[~np.isfinite(E0)] = np.nan
    n_events = int(n_events)
    later_interval, later_events = (np.inf, 0) if later is None else later
    later_interval = np.broadcast_to(np.asarray(later_interval, dtype=float), (n,)).copy()
    if resume is None:
        state = np.full((n, _STATE), np.nan)
        events = np.full((n, 3, 2 * max(n_events, int(later_events)) + 1), np.nan)
    else:
        state, events = (np.array(a, dtype=float) for a in resume)  # copies: kept unchanged
    raw, n_points, counts, end = map_stars(
        _integrate, (R, z, v_R, v_T, v_z, interval, t_max, later_interval, state, events),
        (int(n_min), int(n_max), n_events, float(eta), *table))
    points = _restore_integrals(phi, raw, E0, R * v_T)
    points[0] = [R, z, v_R, v_T, v_z]  # the star itself, unchanged
    sums = _event_sums(events, counts, n_events)
    N, S_k, S_t, S_kk, S_kt = (sums[:, :, i] for i in range(5))
    with np.errstate(invalid="ignore", divide="ignore"):
        periods = (N * S_kt - S_k * S_t) / (N * S_kk - S_k**2)  # slope of time against index
    periods[np.broadcast_to(counts[:, None] <= 2 * n_events, periods.shape)] = np.nan
    growth = np.full((2, n), np.nan)
    if n_events > 0:  # the companion's distance at the (n_events + 1)-th pericentre, and at the end
        halfway = counts[0] > n_events
        growth[0, halfway] = np.sqrt(events[halfway, 2, n_events]) / _OFFSET
        growth[1] = end
    if later is None:
        return points, n_points, periods, growth
    return points, n_points, periods, growth, (state, events)


def _restore_integrals(phi, raw, E0, L_z):
    """``R, z, v_R, v_T, v_z`` of the points with the meridional velocity rescaled to ``E0``."""
    R, z, v_R, v_z = raw.transpose(1, 0, 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        v_T = L_z / R
        meridional = 2.0 * (E0 - phi(np.nan_to_num(R, nan=1.0), np.nan_to_num(z))) - v_T**2
        current = v_R**2 + v_z**2
        scale = np.sqrt(np.clip(meridional, 0.0, None) / np.where(current > 0, current, 1.0))
    return np.array([R, z, v_R * scale, v_T, v_z * scale]).transpose(1, 0, 2)


def circular_period_table(pot, r_min=1e-3, r_max=100.0, n=2000):
    """Energy and period of circular orbits in the mid-plane, on a radius grid (natural units).

    Parameters
    ----------
    pot : galpy potential
    r_min, r_max : float
        Radius range (natural units).
    n : int
        Number of radii (log-spaced).

    Returns
    -------
    r, E_c, T_c : ndarray of shape (n,)
        Radii, increasing energies and the matching periods ``2 pi r / v_c``.
    """
    phi, forces = potential_functions(pot)
    r = np.geomspace(r_min, r_max, n)
    F_R = forces(r, 0.0 * r, 0.0 * r)[0]
    v_c = np.sqrt(np.clip(-r * F_R, 1e-300, None))
    E_c = phi(r, 0.0 * r) + 0.5 * v_c**2
    return r, E_c, 2.0 * np.pi * r / v_c


def orbit_points(pot, R, z, v_R, v_T, v_z, n_periods, n_points, *, eta=ETA, period_table=None,
                 table=None):
    """``n_points`` points spread over ``n_periods`` circular periods of each star's orbit.

    The period is that of the circular orbit of the star's energy; the first point is the star.

    Parameters
    ----------
    pot : galpy potential
    R, z, v_R, v_T, v_z : ndarray of shape (n,)
        Cylindrical phase space (natural units; ``v_T = L_z / R``).
    n_periods : float
        Mean length of the integration in circular periods at the star's energy.
    n_points : int
        Points per star (>= 2).
    eta : float
        Time-step factor.
    period_table : tuple of ndarray, optional
        ``(E_c, T_c)``, the last two arrays of :func:`circular_period_table` (computed when not
        given).
    table : tuple, optional
        :func:`force_table` of ``pot`` (built when not given).

    Returns
    -------
    points : ndarray of shape (n_points, 5, n)
        ``R, z, v_R, v_T, v_z`` at each point, with ``E`` and ``L_z`` equal to the star's.
    """
    phi, _ = potential_functions(pot)
    E_c, T_c = circular_period_table(pot)[1:] if period_table is None else period_table
    R, z, v_R, v_T, v_z = (np.array(a, dtype=float).ravel() for a in (R, z, v_R, v_T, v_z))
    E0 = phi(R, z) + 0.5 * (v_R**2 + v_T**2 + v_z**2)
    interval = n_periods * np.interp(E0, E_c, T_c) / (n_points - 1)
    return sample_orbits(pot, R, z, v_R, v_T, v_z, interval=interval, n_min=n_points,
                         n_max=n_points, eta=eta, table=table)[0]
