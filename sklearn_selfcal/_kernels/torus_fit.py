"""Actions of regular orbits from points along them: the orbit-to-generating-function torus fit.

Sanders & Binney (2014, MNRAS 441, 3284): along a regular orbit, the actions ``J'`` and angles
``theta'`` of a toy potential satisfy ``J' = J + 2 sum_n n S_n cos(n . theta')``, linear in the
true actions ``J`` and the coefficients ``S_n`` of the generating function of the map from the toy
torus to the true one. Each star's points (from :func:`~sklearn_selfcal._kernels.orbit_sampling.
sample_orbits`) give two such equations each; a least-squares fit gives the actions.

In an axisymmetric potential with a spherical toy, ``L_z`` is shared by both tori and only the
meridional problem is fitted: toy actions ``J_r`` and ``J_theta = L - |L_z|`` with their angles
``theta_r, theta_theta``, vectors ``n = (n_r, n_theta)`` on the half lattice (``n_r > 0``, or
``n_r = 0 < n_theta``) with ``|n| <= n_max`` and ``n_theta`` even (the potential's symmetry
``z -> -z`` moves ``theta_theta`` by pi). The true ``J_R, J_z`` are the fitted ``J_r, J_theta``.

The toy is an isochrone ``Phi = -GM / (b + sqrt(b^2 + r^2))`` fitted to each orbit: for a given
``b`` the toy energy ``v^2 / 2 - GM f(r)`` is linear in ``GM``, so the ``GM`` minimising its
variance over the points is closed-form and the variance left is ``var(v^2 / 2) (1 - rho^2)``,
``rho`` the correlation of ``v^2 / 2`` and ``f``; ``b`` maximises ``rho`` over a logarithmic grid,
refined by golden section. Its actions and angles are the closed forms of Binney & Tremaine
(2008, section 3.5.2, with the erratum to eq. 3.225).

The error of a star's fit is estimated from the data, relative to the larger action: half the
difference between the fits to the two halves of its points (the first and the second half of
the orbit), plus the root-mean-square residual of the whole fit over the square root of the
number of equations, plus :data:`TRUNCATION_FRACTION` of the change from the series two orders
shorter. Resonant and chaotic orbits, whose toy angles do not cover one torus, give halves that
disagree or a series that does not converge; an orbit that looks regular over the fitted
stretch but wanders on longer time scales (weakly chaotic) is not seen.

Everything is in galpy's natural units; each star is fitted on its own (the same result in any
batch, order or chunk of stars, for any number of threads).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .orbit_sampling import sample_orbits
from .threads import map_stars

__all__ = ["N_MAX", "FIT_EVENTS", "FIT_POINTS_PER_PERIOD", "FIT_MIN_POINTS", "FIT_MAX_POINTS",
           "n_vectors", "isochrone_actions_angles", "torus_fit", "orbit_torus_fit"]

#: Largest ``|n|`` of the generating function's terms (fewer where a star's points are few: at
#: least :data:`POINTS_PER_UNKNOWN` points per unknown in each half). Measured (seed 2024, with the
#: truncation term): N_max 6 usable on 64 % of the regular bulge orbits, 8 on 78 % (median error
#: 0.49 %, none of the usable more than 5 % off).
N_MAX = 8
POINTS_PER_UNKNOWN = 1.0
#: The error estimate adds this fraction of the change of the actions from the series two
#: orders shorter (its truncation).
TRUNCATION_FRACTION = 0.5
#: The points fitted: each star followed over :data:`FIT_EVENTS` radial and vertical periods in
#: either half, :data:`FIT_POINTS_PER_PERIOD` points per circular period at its energy on average
#: (at least :data:`FIT_MIN_POINTS`, at most :data:`FIT_MAX_POINTS`). Measured on make_orbits'
#: bulge and halo (seed 2024, against gala's O2GF; ``benchmarks/bench_torus_fit.py``): the check's
#: own points (6 periods per half, 4 per circular period, median 33-48 points) give an error
#: below 2.5 % on 28 % (bulge) and 48 % (halo) of the regular orbits; 12 periods per half at 8
#: points, 79 and 84 %; at 12 points, 86 and 92 % (median error 0.61 and 0.40 %). The toy
#: angles must wind round the torus: more points along the same stretch of orbit help less than
#: a longer stretch.
FIT_EVENTS = 12
FIT_POINTS_PER_PERIOD = 12.0
FIT_MIN_POINTS = 48
FIT_MAX_POINTS = 512
#: Leapfrog time-step factor of the fit's integration (``ETA`` of
#: :mod:`~sklearn_selfcal._kernels.orbit_sampling`).
FIT_ETA = 0.05
#: Scale lengths ``b`` of the toy isochrone tried, relative to the root-mean-square radius of the
#: star's points, before the golden-section refinement.
_B_GRID = np.exp(np.linspace(np.log(0.01), np.log(30.0), 48))
_GOLDEN_STEPS = 24


def n_vectors(n_max=N_MAX):
    """The generating function's terms ``(n_r, n_theta)``, by increasing ``|n|``.

    Parameters
    ----------
    n_max : int, default=N_MAX
        Largest ``|n|`` (dimensionless).

    Returns
    -------
    n : ndarray of int of shape (k, 2)
        Half lattice (``n_r > 0``, or ``n_r = 0 < n_theta``), ``n_theta`` even.
    """
    out = [(i, j) for i in range(0, n_max + 1) for j in range(-n_max, n_max + 1, 2)
           if (i > 0 or j > 0) and i * i + j * j <= n_max * n_max]
    out.sort(key=lambda n: (n[0] ** 2 + n[1] ** 2, n[0], n[1]))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


@numba.njit(cache=True, nogil=True)
def _half_angle(x, y):
    """``arctan(x tan(y / 2))`` continued over ``-pi < y <= pi``."""
    return math.atan2(x * math.sin(0.5 * y), math.cos(0.5 * y))


@numba.njit(cache=True, nogil=True)
def _isochrone_point(GM, b, R, z, v_R, v_T, v_z, out):
    """Toy actions and angles of one point; ``out`` = (J_r, J_theta, theta_r, theta_theta), NaN
    where the point is unbound in the toy."""
    r2 = R * R + z * z
    r = math.sqrt(r2)
    E = 0.5 * (v_R * v_R + v_T * v_T + v_z * v_z) - GM / (b + math.sqrt(b * b + r2))
    rv_theta = z * v_R - R * v_z  # r times the polar-angle velocity
    L_z = R * v_T
    L = math.sqrt(L_z * L_z + z * z * v_T * v_T + rv_theta * rv_theta)
    if not (E < 0.0) or not (L > 0.0):
        out[:] = np.nan
        return
    root = math.sqrt(L * L + 4.0 * GM * b)
    out[0] = GM / math.sqrt(-2.0 * E) - 0.5 * (L + root)
    out[1] = L - abs(L_z)
    c = GM / (-2.0 * E) - b
    e = math.sqrt(max(0.0, 1.0 - L * L * (1.0 + b / c) / (GM * c)))
    v_r = (R * v_R + z * v_z) / r if r > 0.0 else 0.0
    eta = math.atan2(r * v_r / math.sqrt(-2.0 * E), b + c - math.sqrt(b * b + r2))
    theta_r = eta - e * c * math.sin(eta) / (c + b)
    # angle in the orbital plane from the ascending node: z = r sin(i) sin(psi)
    psi = math.atan2(z * L, -R * rv_theta)
    ratio = 0.5 * (1.0 + L / root)
    a = math.sqrt((1.0 + e) / (1.0 - e)) if e < 1.0 else np.inf
    a_p = math.sqrt((1.0 + e + 2.0 * b / c) / (1.0 - e + 2.0 * b / c))
    theta_t = (psi + ratio * theta_r - _half_angle(a, eta)
               - _half_angle(a_p, eta) / math.sqrt(1.0 + 4.0 * GM * b / (L * L)))
    two_pi = 2.0 * math.pi
    out[2] = theta_r % two_pi
    out[3] = theta_t % two_pi


@numba.njit(cache=True, nogil=True)
def _isochrone_many(GM, b, R, z, v_R, v_T, v_z):
    out = np.empty((4, R.size))
    one = np.empty(4)
    for k in range(R.size):
        _isochrone_point(GM[k], b[k], R[k], z[k], v_R[k], v_T[k], v_z[k], one)
        out[:, k] = one
    return out


def isochrone_actions_angles(GM, b, R, z, v_R, v_T, v_z):
    """Actions and angles of the meridional motion in an isochrone potential.

    Parameters
    ----------
    GM, b : float or ndarray
        Mass (natural units, ``G = 1``) and scale length of the isochrone (natural units).
    R, z, v_R, v_T, v_z : ndarray of shape (n,)
        Cylindrical phase space (natural units; ``v_T = L_z / R``).

    Returns
    -------
    J_r, J_theta : ndarray of shape (n,)
        Radial action and ``L - |L_z|`` (natural units); NaN for unbound points.
    theta_r, theta_theta : ndarray of shape (n,)
        Their angles (radians, in ``[0, 2 pi)``).
    """
    R, z, v_R, v_T, v_z = (np.ascontiguousarray(a, dtype=float).ravel()
                           for a in (R, z, v_R, v_T, v_z))
    GM, b = (np.ascontiguousarray(np.broadcast_to(np.asarray(x, float), R.shape))
             for x in (GM, b))
    return tuple(_isochrone_many(GM, b, R, z, v_R, v_T, v_z))


@numba.njit(cache=True, nogil=True)
def _toy_misfit(b, r2, K):
    """``1 - rho^2`` of the kinetic energy and ``f = 1 / (b + sqrt(b^2 + r^2))``, and the ``GM``."""
    m = r2.size
    mf = 0.0
    mK = 0.0
    for i in range(m):
        mf += 1.0 / (b + math.sqrt(b * b + r2[i]))
        mK += K[i]
    mf /= m
    mK /= m
    sff = 0.0
    sKK = 0.0
    sfK = 0.0
    for i in range(m):
        df = 1.0 / (b + math.sqrt(b * b + r2[i])) - mf
        dK = K[i] - mK
        sff += df * df
        sKK += dK * dK
        sfK += df * dK
    if not (sff > 0.0 and sKK > 0.0):
        return 1.0, np.nan
    return 1.0 - sfK * sfK / (sff * sKK), sfK / sff


@numba.njit(cache=True, nogil=True)
def _fit_toy(r2, K, b_grid):
    """Best toy isochrone ``(GM, b)`` of one star's points."""
    scale = math.sqrt(np.mean(r2))
    best, k_best = np.inf, -1
    for k in range(b_grid.size):
        miss, GM = _toy_misfit(b_grid[k] * scale, r2, K)
        if GM > 0.0 and miss < best:
            best, k_best = miss, k
    if k_best < 0:
        return np.nan, np.nan
    lo = math.log(b_grid[max(k_best - 1, 0)] * scale)
    hi = math.log(b_grid[min(k_best + 1, b_grid.size - 1)] * scale)
    g = 0.5 * (math.sqrt(5.0) - 1.0)
    x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
    f1 = _toy_misfit(math.exp(x1), r2, K)[0]
    f2 = _toy_misfit(math.exp(x2), r2, K)[0]
    for _ in range(_GOLDEN_STEPS):
        if f1 < f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - g * (hi - lo)
            f1 = _toy_misfit(math.exp(x1), r2, K)[0]
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + g * (hi - lo)
            f2 = _toy_misfit(math.exp(x2), r2, K)[0]
    b = math.exp(0.5 * (lo + hi))
    miss, GM = _toy_misfit(b, r2, K)
    if not (GM > 0.0):
        return np.nan, np.nan
    return GM, b


@numba.njit(cache=True, nogil=True)
def _design(toy, use, nvec, k):
    """Rows of the fit at the points ``use``: ``2 n_r cos(n . theta')`` (``[0]``) and
    ``2 n_theta cos(n . theta')`` (``[1]``) for the first ``k`` terms, (2, m, k); the cosines by
    the angle-addition recurrence from the multiples of each angle."""
    m = use.size
    top = 0
    for q in range(k):
        top = max(top, abs(nvec[q, 0]), abs(nvec[q, 1]))
    c_r, s_r = np.empty(top + 1), np.empty(top + 1)
    c_t, s_t = np.empty(top + 1), np.empty(top + 1)
    D = np.empty((2, m, k))
    for p in range(m):
        i = use[p]
        c1, s1 = math.cos(toy[2, i]), math.sin(toy[2, i])
        c2, s2 = math.cos(toy[3, i]), math.sin(toy[3, i])
        c_r[0], s_r[0], c_t[0], s_t[0] = 1.0, 0.0, 1.0, 0.0
        for j in range(1, top + 1):
            c_r[j] = c_r[j - 1] * c1 - s_r[j - 1] * s1
            s_r[j] = s_r[j - 1] * c1 + c_r[j - 1] * s1
            c_t[j] = c_t[j - 1] * c2 - s_t[j - 1] * s2
            s_t[j] = s_t[j - 1] * c2 + c_t[j - 1] * s2
        for q in range(k):
            n_r, n_t = nvec[q, 0], nvec[q, 1]
            sign = 1.0 if n_t >= 0 else -1.0
            c = 2.0 * (c_r[n_r] * c_t[abs(n_t)] - s_r[n_r] * sign * s_t[abs(n_t)])
            D[0, p, q] = n_r * c
            D[1, p, q] = n_t * c
    return D


@numba.njit(cache=True, nogil=True)
def _accumulate(toy, use, D, lo, hi, ATA, ATy):
    """Normal equations of ``J' = J + 2 sum n S_n cos(n . theta')`` over the points
    ``use[lo:hi]`` (unknowns ``J_r, J_theta, S_1..S_k``; rows ``D``), added to ``ATA``
    (upper triangle) and ``ATy``."""
    k = D.shape[2]
    for p in range(lo, hi):
        i = use[p]
        y_r, y_t = toy[0, i], toy[1, i]
        ATA[0, 0] += 1.0
        ATA[1, 1] += 1.0
        ATy[0] += y_r
        ATy[1] += y_t
        a_r, a_t = D[0, p], D[1, p]
        for q in range(k):
            ATA[0, 2 + q] += a_r[q]
            ATA[1, 2 + q] += a_t[q]
            ATy[2 + q] += a_r[q] * y_r + a_t[q] * y_t
            row = ATA[2 + q]
            r_q, t_q = a_r[q], a_t[q]
            for j in range(q, k):
                row[2 + j] += r_q * a_r[j] + t_q * a_t[j]


@numba.njit(cache=True, nogil=True)
def _solve(ATA, ATy):
    """Solution of the symmetric normal equations (upper triangle of ``ATA``) by Cholesky, with a
    relative ridge of 1e-10 on the generating function's coefficients; NaN if not positive."""
    u = ATA.shape[0]
    L = np.zeros((u, u))
    for i in range(u):
        for j in range(i + 1):
            s = ATA[j, i] if j <= i else ATA[i, j]
            if i == j and i >= 2:
                s *= 1.0 + 1e-10
            for q in range(j):
                s -= L[i, q] * L[j, q]
            if i == j:
                if not (s > 0.0):
                    return np.full(u, np.nan)
                L[i, i] = math.sqrt(s)
            else:
                L[i, j] = s / L[j, j]
    x = np.empty(u)
    for i in range(u):
        s = ATy[i]
        for q in range(i):
            s -= L[i, q] * x[q]
        x[i] = s / L[i, i]
    for i in range(u - 1, -1, -1):
        s = x[i]
        for q in range(i + 1, u):
            s -= L[q, i] * x[q]
        x[i] = s / L[i, i]
    return x


@numba.njit(cache=True, nogil=True)
def _rms(toy, use, D, k, x):
    """Root-mean-square residual of the fit ``x`` (its first ``k`` terms) over the points ``use``
    (per degree of freedom)."""
    r2 = 0.0
    for p in range(use.size):
        i = use[p]
        f_r, f_t = x[0], x[1]
        for q in range(k):
            f_r += D[0, p, q] * x[2 + q]
            f_t += D[1, p, q] * x[2 + q]
        r2 += (toy[0, i] - f_r) ** 2 + (toy[1, i] - f_t) ** 2
    return math.sqrt(r2 / max(2 * use.size - 2 - k, 1))


@numba.njit(cache=True, nogil=True)
def _fit_stars(points, n_points, nvec, counts, b_grid, points_per_unknown):
    """Per star: (J_R, J_z), the halves' (J_R, J_z), the residual and (J_R, J_z) of the series
    two orders shorter; stars on axis 0 of ``points`` (n, 5, n_max). ``counts[N]``: the terms
    with ``|n| <= N``."""
    n = points.shape[0]
    out = np.full((9, n), np.nan)
    toy_point = np.empty(4)
    for s in range(n):
        m_all = n_points[s]
        R, z, v_R, v_T, v_z = (points[s, 0, :m_all], points[s, 1, :m_all], points[s, 2, :m_all],
                               points[s, 3, :m_all], points[s, 4, :m_all])
        ok = np.isfinite(R) & np.isfinite(z) & np.isfinite(v_R) & np.isfinite(v_T) & np.isfinite(v_z)
        idx = np.flatnonzero(ok)
        m = idx.size
        if m < 8:
            continue
        r2 = R[idx] ** 2 + z[idx] ** 2
        K = 0.5 * (v_R[idx] ** 2 + v_T[idx] ** 2 + v_z[idx] ** 2)
        GM, b = _fit_toy(r2, K, b_grid)
        if not np.isfinite(GM):
            continue
        toy = np.empty((4, m))
        for p in range(m):
            i = idx[p]
            _isochrone_point(GM, b, R[i], z[i], v_R[i], v_T[i], v_z[i], toy_point)
            toy[:, p] = toy_point
        good = np.flatnonzero(np.isfinite(toy[0]) & np.isfinite(toy[1]) & np.isfinite(toy[2])
                              & np.isfinite(toy[3]))
        m = good.size
        # terms: every |n| <= N for the largest N (at most n_max) the halves' points allow
        N = counts.size - 1
        while N > 0 and (2 + counts[N]) * points_per_unknown > m // 2:
            N -= 1
        k, k_lo = counts[N], counts[max(N - 2, 0)]
        half = m // 2
        A1, y1 = np.zeros((2 + k, 2 + k)), np.zeros(2 + k)
        A2, y2 = np.zeros((2 + k, 2 + k)), np.zeros(2 + k)
        D = _design(toy, good, nvec, k)
        _accumulate(toy, good, D, 0, half, A1, y1)
        _accumulate(toy, good, D, half, m, A2, y2)
        A, y = A1 + A2, y1 + y2
        x = _solve(A, y)
        x1 = _solve(A1, y1)
        x2 = _solve(A2, y2)
        # the series two orders shorter (the leading block: the terms are sorted by |n|)
        x_lo = _solve(np.ascontiguousarray(A[:2 + k_lo, :2 + k_lo]), y[:2 + k_lo])
        out[0, s], out[1, s] = x[0], x[1]
        out[2, s], out[3, s], out[4, s], out[5, s] = x1[0], x1[1], x2[0], x2[1]
        out[6, s] = _rms(toy, good, D, k, x)
        out[7, s], out[8, s] = x_lo[0], x_lo[1]
    return out


def torus_fit(points, n_points, n_max=N_MAX, n_threads=None):
    """Actions of each star from points along its orbit, with their estimated error.

    Parameters
    ----------
    points : ndarray of shape (n_max_points, 5, n)
        ``R, z, v_R, v_T, v_z`` at points along each star's orbit (natural units; NaN past
        ``n_points``), as :func:`~sklearn_selfcal._kernels.orbit_sampling.sample_orbits` gives.
    n_points : ndarray of int of shape (n,)
        Points per star.
    n_max : int, default=N_MAX
        Largest ``|n|`` of the generating function's terms (dimensionless).
    n_threads : int, optional
        Threads (:func:`~sklearn_selfcal._kernels.threads.map_stars`).

    Returns
    -------
    J_R, J_z : ndarray of shape (n,)
        Actions (natural units); NaN where the fit failed.
    rel_err : ndarray of shape (n,)
        Estimated error of the larger action, relative to it: half the difference between the
        fits to the two halves of the points, plus the fit's root-mean-square residual over the
        square root of the number of equations, plus :data:`TRUNCATION_FRACTION` of the change
        from the series two orders shorter.
    """
    nvec = n_vectors(n_max)
    norms = nvec[:, 0] ** 2 + nvec[:, 1] ** 2
    counts = np.searchsorted(norms, np.arange(n_max + 1) ** 2, side="right")
    stars = np.ascontiguousarray(np.asarray(points, dtype=float).transpose(2, 1, 0))
    n_points = np.ascontiguousarray(np.minimum(np.asarray(n_points, np.int64), stars.shape[2]))
    out = map_stars(_fit_stars, (stars, n_points),
                    (nvec, counts, _B_GRID, float(POINTS_PER_UNKNOWN)), n_threads)
    J_R, J_z = out[0], out[1]
    scale = np.fmax(J_R, J_z)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = np.fmax(np.abs(out[2] - out[4]), np.abs(out[3] - out[5])) / (2.0 * scale)
        resid = out[6] / np.sqrt(2.0 * np.maximum(n_points, 1)) / scale
        truncation = np.fmax(np.abs(out[7] - J_R), np.abs(out[8] - J_z)) / scale
    rel_err = half + resid + TRUNCATION_FRACTION * truncation
    bad = ~(np.isfinite(J_R) & np.isfinite(J_z) & np.isfinite(rel_err)) | (J_R < 0) | (J_z < 0)
    J_R, J_z, rel_err = (np.where(bad, np.nan, a) for a in (J_R, J_z, rel_err))
    return J_R, J_z, rel_err


#: Stars sampled and fitted at once (memory: FIT_MAX_POINTS x 5 x 2 x this many floats).
_BATCH = 1024


def orbit_torus_fit(pot, R, z, v_R, v_T, v_z, *, period, t_max, table=None):
    """Actions of stars by the torus fit to points along their orbits, with their error.

    Each star is followed over :data:`FIT_EVENTS` radial and vertical periods in either half of
    its orbit (:func:`~sklearn_selfcal._kernels.orbit_sampling.sample_orbits`) and its points are
    fitted (:func:`torus_fit`).

    Parameters
    ----------
    pot : galpy potential
    R, z, v_R, v_T, v_z : ndarray of shape (n,)
        Cylindrical phase space (natural units; ``v_T = L_z / R``).
    period : ndarray of shape (n,)
        Circular period at each star's energy (natural units): sets the points' spacing.
    t_max : ndarray of shape (n,)
        Longest integration (natural units).
    table : tuple, optional
        :func:`~sklearn_selfcal._kernels.orbit_sampling.force_table` of ``pot``.

    Returns
    -------
    J_R, J_z, rel_err : ndarray of shape (n,)
        As :func:`torus_fit` (natural units).
    """
    n = np.size(R)
    out = np.full((3, n), np.nan)
    for start in range(0, n, _BATCH):
        part = slice(start, start + _BATCH)
        points, n_points, _, _ = sample_orbits(
            pot, R[part], z[part], v_R[part], v_T[part], v_z[part],
            interval=period[part] / FIT_POINTS_PER_PERIOD, n_min=FIT_MIN_POINTS,
            n_max=FIT_MAX_POINTS, n_events=FIT_EVENTS, t_max=t_max[part], eta=FIT_ETA,
            table=table)
        out[:, part] = torus_fit(points, n_points)
    return out[0], out[1], out[2]
