"""Points along the orbits of many stars at once: a vectorised, adaptive leapfrog in numpy.

The accuracy check and the orbit averaging of :mod:`sklearn_selfcal._kernels.action_methods` need
a handful of phase-space points on each star's orbit, not an accurate trajectory in time: the
points only have to lie on the same orbit. So every star is integrated with its own adaptive time
step (kick-drift-kick leapfrog with ``dt = eta * sqrt((r + r_soft) / |a|)``, which resolves the
passages through the Galactic centre of bulge and halo orbits), all stars advance together in
numpy, stars that have collected their points drop out, and every recorded point is put back on
the star's energy and angular-momentum surface by rescaling its meridional velocity (``L_z`` and
``E`` are exact integrals; the leapfrog's energy error of ~1e-3 would otherwise change the radial
action of a cold disk orbit by several per cent).

A star's result depends only on its own initial conditions (elementwise arithmetic, no reduction
across stars), so it is the same whatever the batch, order or chunking.

Everything is in galpy's natural units; the potential is a galpy potential with numpy-vectorised
forces (:func:`sklearn_selfcal._kernels.staeckel.galpy_potential`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["circular_period_table", "force_table", "orbit_points", "potential_functions",
           "tabulated_forces"]

#: Time step factor of the leapfrog: ``dt = ETA * sqrt((r + R_SOFT) / |a|)`` (~125 steps per
#: circular orbit). Measured on solar-neighbourhood disk orbits: the spread of the Staeckel actions
#: over 8 points of 3 periods is then within 10 % of the spread along the exact orbit (twice it
#: with ETA = 0.1, as the leapfrog's shadow orbit differs from the true one; a fourth-order
#: Yoshida composition is worse with adaptive steps).
ETA = 0.05
#: Softening length of the time-step criterion (natural units, 0.08 kpc for ro = 8 kpc): keeps
#: the step finite for a star passing through r = 0 of a cored or cuspy potential.
R_SOFT = 0.01


def potential_functions(pot):
    """``phi(R, z)`` and ``forces(x, y, z)`` of a galpy potential (natural units)."""
    from galpy.potential import evaluatePotentials, evaluateRforces, evaluatezforces

    # galpy evaluates the generic and the small-radius formulas of some profiles everywhere and
    # keeps the right one; the discarded one divides by zero at the centre
    def phi(R, z):
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
#: out to ``_FORCE_EXTENT`` (natural units: 6 pc and 400 kpc), bilinear interpolation (five times
#: cheaper than cubic splines; the force error of ~1e-5 moves the points to an orbit of a potential
#: that differs by as little, far below what the check resolves).
_FORCE_SCALE = 7.5e-4
_FORCE_EXTENT = 50.0
_FORCE_NODES = 1024


def force_table(pot):
    """Tables of ``F_R / R`` and ``F_z`` over the meridional plane (natural units).

    Evaluating them costs two bilinear interpolations per point instead of one force evaluation
    of every component of the potential (and about 10 microseconds per call instead of several
    hundred, which matters for the few stars integrated longest); relative error ~1e-5.

    Returns
    -------
    table : tuple
        Pass to :func:`tabulated_forces`.
    """

    x = np.linspace(0.0, np.arcsinh(_FORCE_EXTENT / _FORCE_SCALE), _FORCE_NODES)
    coordinate = _FORCE_SCALE * np.sinh(x)
    R, z = np.meshgrid(coordinate, coordinate, indexing="ij")
    R = np.maximum(R, 1e-9)
    _, exact = potential_functions(pot)
    F_x, _, F_z = exact(R, np.zeros_like(R), z)  # at y = 0, F_x = F_R and F_x / x = F_R / R
    return (x[1], F_x / R, F_z, exact)


def tabulated_forces(table):
    """``forces(x, y, z)`` from :func:`force_table`; points beyond the table are computed exactly."""

    from scipy import ndimage

    step, over_R, vertical, exact = table
    limit = np.arcsinh(_FORCE_EXTENT / _FORCE_SCALE)

    def forces(x, y, z):
        i = np.arcsinh(np.hypot(x, y) / _FORCE_SCALE)
        j = np.arcsinh(np.abs(z) / _FORCE_SCALE)
        where = np.array([i / step, j / step])
        G = ndimage.map_coordinates(over_R, where, order=1, mode="nearest")
        F_z = np.sign(z) * ndimage.map_coordinates(vertical, where, order=1, mode="nearest")
        out = (i >= limit) | (j >= limit)
        if out.any():
            F = exact(x[out], y[out], z[out])
            G[out] = F[0] / np.where(x[out] != 0, x[out], 1.0)
            F_z[out] = F[2]
        return G * x, G * y, F_z

    return forces


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
                 forces=None):
    """Phase-space points spread over each star's orbit.

    Each star is integrated for ``n_periods`` periods of the circular orbit of its energy and its
    state recorded ``n_points`` times at equal intervals (the first point is the star itself).

    Parameters
    ----------
    pot : galpy potential
    R, z, v_R, v_T, v_z : ndarray of shape (n,)
        Cylindrical phase space (natural units; ``v_T = L_z / R``).
    n_periods : float
        Length of the integration in circular periods at the star's energy.
    n_points : int
        Points per star (>= 2).
    eta : float
        Time-step factor.
    period_table : tuple of ndarray, optional
        ``(E_c, T_c)``, the last two arrays of :func:`circular_period_table` (computed when not
        given).
    forces : callable, optional
        ``forces(x, y, z)`` in natural units, e.g. :func:`tabulated_forces` (default: galpy's).

    Returns
    -------
    points : ndarray of shape (n_points, 5, n)
        ``R, z, v_R, v_T, v_z`` at each point, with ``E`` and ``L_z`` equal to the star's.
    """
    phi, exact_forces = potential_functions(pot)
    forces = exact_forces if forces is None else forces
    E_c, T_c = circular_period_table(pot)[1:] if period_table is None else period_table
    R, z, v_R, v_T, v_z = (np.array(a, dtype=float) for a in (R, z, v_R, v_T, v_z))
    n = R.size
    E0 = phi(R, z) + 0.5 * (v_R**2 + v_T**2 + v_z**2)
    L_z = R * v_T
    interval = n_periods * np.interp(E0, E_c, T_c) / (n_points - 1)
    # Cartesian state, the star on the x axis (the potential is axisymmetric)
    points = np.full((n_points, 6, n), np.nan)
    points[0] = [R, np.zeros(n), z, v_R, v_T, v_z]
    index = np.flatnonzero(np.isfinite(E0) & (interval > 0))  # stars still integrated
    state = points[0][:, index].copy()
    acc = np.array(forces(*state[:3]))
    interval = interval[index]
    t = np.zeros(index.size)
    next_point = np.ones(index.size, dtype=np.int64)
    while index.size:
        # written out term by term: a reduction's order could depend on the batch
        r = np.sqrt(state[0] ** 2 + state[1] ** 2 + state[2] ** 2)
        dt = eta * np.sqrt((r + R_SOFT) / np.sqrt(acc[0] ** 2 + acc[1] ** 2 + acc[2] ** 2))
        state[3:] += 0.5 * dt * acc
        state[:3] += dt * state[3:]
        acc = np.array(forces(*state[:3]))
        state[3:] += 0.5 * dt * acc
        t += dt
        due = t >= next_point * interval
        if due.any():
            points[next_point[due], :, index[due]] = state[:, due].T
            next_point[due] += 1
            going = next_point < n_points
            if not going.all():
                index, state, acc = index[going], state[:, going], acc[:, going]
                interval, t, next_point = interval[going], t[going], next_point[going]
    return _restore_integrals(phi, points, E0, L_z)


def _restore_integrals(phi, points, E0, L_z):
    """Cylindrical coordinates of the points, velocities rescaled to the star's ``E`` and ``L_z``.

    The first point is the star itself, returned unchanged.
    """
    x, y, z, v_x, v_y, v_z = points.transpose(1, 0, 2)
    R = np.hypot(x, y)
    with np.errstate(invalid="ignore", divide="ignore"):
        v_R = (x * v_x + y * v_y) / R
        v_T = L_z / R
        meridional = 2.0 * (E0 - phi(R, z)) - v_T**2
        current = v_R**2 + v_z**2
        scale = np.sqrt(np.clip(meridional, 0.0, None) / np.where(current > 0, current, 1.0))
    out = np.array([R, z, v_R * scale, v_T, v_z * scale]).transpose(1, 0, 2)
    out[0] = [x[0], z[0], v_x[0], v_y[0], v_z[0]]  # the star: x = R, v_x = v_R, v_y = v_T
    return out
