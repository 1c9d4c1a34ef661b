"""The Staeckel fudge compiled with numba, star by star, on closed-form potentials.

The same quantities as the vectorised numpy fudge (:mod:`sklearn_selfcal._kernels.
staeckel_integrals`, whose conventions and formulas these follow) and galpy's C code, about 4.4
times faster than the latter (132,000 against 30,000 evaluations per CPU-second on inner-Galaxy
points): the potential is evaluated from the closed forms of its components (no Python call per
evaluation) and each root is found to machine precision with an early exit. The radial action's
turning points are those around the star's own ``u`` (where ``g(u) - I3U = p_u^2 / 2 delta^2 >=
0``), bracketed by steps of 10 % outwards and inwards as galpy does (where ``g(u) - I3U`` has four
roots the numpy fudge's bracket from the maximum of ``g`` can pick another orbit's); the maximum of
``g`` is only searched for (golden section, as in the numpy fudge) when the star sits at a turning
point.

Only potentials whose every component has a closed form here are compiled
(:func:`compiled_potential`: Miyamoto-Nagai, galpy's three-Miyamoto-Nagai exponential disk,
Hernquist, spherical NFW, Plummer, isochrone, Kepler); the callers fall back to galpy's C code for
the others.
Everything is in galpy's natural units.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .threads import map_stars

__all__ = ["N_NODES", "compiled_potential", "cached_compiled_potential", "potential", "actions"]

# component codes of the parameter table (amp, a, b)
_MIYAMOTO_NAGAI, _HERNQUIST, _NFW, _PLUMMER, _KEPLER, _ISOCHRONE = 0, 1, 2, 3, 4, 5
#: Gauss-Legendre nodes of the action integrals (twice the numpy fudge's): on the bulge and halo
#: orbits whose focal distance is fitted, the 16-node rule errs by up to 2.5e-3 (p99 2.5e-6) of
#: the larger action against 128 nodes, 32 nodes by 2.2e-4 (p99 1.5e-10), galpy's C by 4.1e-4
#: (p99 7e-8); 22 % more time.
N_NODES = 32
_X, _W = np.polynomial.legendre.leggauss(N_NODES)
#: The nodes mapped to ``[0, pi]`` (radial) and ``[0, pi / 2]`` (vertical action), as
#: ``(cos theta, weight * sin theta)``.
_RADIAL = np.array([np.cos(0.5 * np.pi * (_X + 1.0)), _W * np.sin(0.5 * np.pi * (_X + 1.0))])
_VERTICAL = np.array([np.cos(0.25 * np.pi * (_X + 1.0)), _W * np.sin(0.25 * np.pi * (_X + 1.0))])
#: Illinois iterations at most per root (each converges superlinearly; most stop after ~8).
_MAX_ITER = 40


def _components(pot):
    """``(code, amp, a, b)`` of each component of a galpy potential, or None if one is unknown."""
    from galpy.potential import (HernquistPotential, IsochronePotential, KeplerPotential,
                                 MiyamotoNagaiPotential, MN3ExponentialDiskPotential, NFWPotential,
                                 PlummerPotential)

    rows = []
    for c in (list(pot) if hasattr(pot, "__iter__") else [pot]):
        amp = float(c._amp)
        if type(c) is MN3ExponentialDiskPotential:
            for m in c._mn3:
                if type(m) is not MiyamotoNagaiPotential:
                    return None
                rows.append((_MIYAMOTO_NAGAI, amp * float(m._amp), float(m._a), float(m._b)))
        elif type(c) is MiyamotoNagaiPotential:
            rows.append((_MIYAMOTO_NAGAI, amp, float(c._a), float(c._b)))
        elif type(c) is HernquistPotential:
            rows.append((_HERNQUIST, amp, float(c.a), 0.0))
        elif type(c) is NFWPotential:
            rows.append((_NFW, amp, float(c.a), 0.0))
        elif type(c) is PlummerPotential:
            rows.append((_PLUMMER, amp, float(c._b), 0.0))
        elif type(c) is IsochronePotential:
            rows.append((_ISOCHRONE, amp, float(c.b), 0.0))
        elif type(c) is KeplerPotential:
            rows.append((_KEPLER, amp, 0.0, 0.0))
        else:
            return None
    return rows


def compiled_potential(pot):
    """The parameter table of a galpy potential for :func:`actions`, or None if it has none.

    The table is checked against galpy's own values at points from the centre to 200 kpc (relative
    1e-12); None when a component has no closed form here or the check fails.

    Parameters
    ----------
    pot : galpy potential
        A single component or a combination of them.

    Returns
    -------
    params : ndarray of shape (n_components, 4) or None
        Rows ``(code, amp, a, b)`` (natural units).
    """
    from galpy.potential import evaluatePotentials

    try:
        rows = _components(pot)
    except (AttributeError, TypeError):
        return None
    if not rows:
        return None
    params = np.array(rows, dtype=float)
    R = np.array([1e-4, 0.01, 0.05, 0.3, 1.0, 2.5, 6.0, 25.0])
    z = np.array([0.0, 0.003, -0.02, 0.2, -0.7, 1.5, 4.0, -10.0])
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = evaluatePotentials(pot, R, z, use_physical=False)
    if not np.allclose(potential(params, R, z), ref, rtol=1e-12, atol=0.0):
        return None
    return params


#: galpy potential objects seen by :func:`cached_compiled_potential` (kept alive, so that their
#: ``id`` stays theirs) and their tables.
_SEEN = {}


def cached_compiled_potential(pot):
    """:func:`compiled_potential` of ``pot``, computed once per potential object and process.

    Parameters
    ----------
    pot : galpy potential

    Returns
    -------
    params : ndarray of shape (n_components, 4) or None
    """
    entry = _SEEN.get(id(pot))
    if entry is None or entry[0] is not pot:
        if len(_SEEN) >= 8:
            _SEEN.clear()
        entry = _SEEN[id(pot)] = (pot, compiled_potential(pot))
    return entry[1]


@numba.njit(cache=True)
def _phi(params, R, z):
    """Potential at one point (natural units); ``r`` and ``sqrt(z^2 + b^2)`` computed once for
    the components that share them."""
    out = 0.0
    r2 = R * R + z * z
    r = -1.0
    b_last, zb = -1.0, 0.0
    for k in range(params.shape[0]):
        code, amp, a, b = int(params[k, 0]), params[k, 1], params[k, 2], params[k, 3]
        if code == _MIYAMOTO_NAGAI:
            if b != b_last:
                b_last, zb = b, math.sqrt(z * z + b * b)
            s = a + zb
            out -= amp / math.sqrt(R * R + s * s)
            continue
        if code == _PLUMMER:
            out -= amp / math.sqrt(r2 + a * a)
            continue
        if code == _ISOCHRONE:
            out -= amp / (a + math.sqrt(r2 + a * a))
            continue
        if r < 0.0:
            r = math.sqrt(r2)
        if code == _HERNQUIST:
            out -= amp / (1.0 + r / a) / 2.0 / a
        elif code == _NFW:
            out -= amp * (math.log1p(r / a) / r if r > 0.0 else 1.0 / a)
        else:
            out -= amp / r
    return out


@numba.njit(cache=True)
def _phi_array(params, R, z):
    out = np.empty(R.size)
    for i in range(R.size):
        out[i] = _phi(params, R[i], z[i])
    return out


def potential(params, R, z):
    """Potential of :func:`compiled_potential`'s table at points (natural units).

    Parameters
    ----------
    params : ndarray of shape (n_components, 4)
    R, z : ndarray
        Broadcastable positions (natural units).

    Returns
    -------
    phi : ndarray
    """
    R, z = np.broadcast_arrays(np.asarray(R, dtype=float), np.asarray(z, dtype=float))
    return _phi_array(params, np.ascontiguousarray(R).ravel(),
                      np.ascontiguousarray(z).ravel()).reshape(R.shape)


@numba.njit(cache=True, inline="always")
def _g(params, u, E, L_z, delta):
    """``g(u) = E sinh^2 u - cosh^2 u Phi(delta sinh u, 0) - L_z^2 / (2 delta^2 sinh^2 u)``."""
    sh = math.sinh(u)
    sinh2 = sh * sh
    barrier = 0.0 if L_z == 0.0 else L_z * L_z / (2.0 * delta * delta * sinh2)
    return E * sinh2 - (1.0 + sinh2) * _phi(params, delta * math.sqrt(sinh2), 0.0) - barrier


@numba.njit(cache=True, inline="always")
def _f_v(params, v, E, L_z, I3V, delta, sinh2_u0, phi_mid):
    sin_v = math.sin(v)
    sin2 = sin_v * sin_v
    phi_uv = _phi(params, delta * math.sqrt(sinh2_u0) * sin_v,
                  delta * math.sqrt(1.0 + sinh2_u0) * math.cos(v))
    dV = (1.0 + sinh2_u0) * phi_mid - (sinh2_u0 + sin2) * phi_uv
    barrier = 0.0 if L_z == 0.0 else L_z * L_z / (2.0 * delta * delta * sin2)
    return E * sin2 + I3V + dV - barrier


@numba.njit(cache=True, inline="always")
def _f(params, kind, x, E, L_z, I3, delta, sinh2_u0, phi_mid):
    """The radial (``kind == 0``: ``g(u) - I3U``) or vertical (``f_v(v)``) function."""
    if kind == 0:
        return _g(params, x, E, L_z, delta) - I3
    return _f_v(params, x, E, L_z, I3, delta, sinh2_u0, phi_mid)


@numba.njit(cache=True)
def _root(params, kind, lo, hi, E, L_z, I3, delta, sinh2_u0, phi_mid):
    """The root of :func:`_f` in ``[lo, hi]`` (``0 <= lo < hi``): bisection (geometric while the
    bracket spans decades, then 4 steps) and the Illinois variant of regula falsi to machine
    precision, as the numpy fudge's; an end of the bracket without a sign change.""" 
    f_lo = _f(params, kind, lo, E, L_z, I3, delta, sinh2_u0, phi_mid)
    f_hi = _f(params, kind, hi, E, L_z, I3, delta, sinh2_u0, phi_mid)
    for step in range(64 + 4):
        # a bracket spanning decades (the centrifugal barrier near 0) is bisected in log first,
        # then 4 plain bisection steps
        geometric = 0.0 < lo and 16.0 * lo < hi and step < 64
        if not geometric and step < 64:
            continue
        mid = math.sqrt(lo * hi) if geometric else 0.5 * (lo + hi)
        f_mid = _f(params, kind, mid, E, L_z, I3, delta, sinh2_u0, phi_mid)
        if np.sign(f_mid) == np.sign(f_lo):
            lo, f_lo = mid, f_mid
        else:
            hi, f_hi = mid, f_mid
    side = 0
    for _ in range(_MAX_ITER):
        new = (lo * f_hi - hi * f_lo) / (f_hi - f_lo) if f_hi != f_lo else 0.5 * (lo + hi)
        if not (math.isfinite(new) and min(lo, hi) < new < max(lo, hi)):
            new = 0.5 * (lo + hi)
            if not (min(lo, hi) < new < max(lo, hi)):
                break  # the bracket is one floating-point step wide
        f_new = _f(params, kind, new, E, L_z, I3, delta, sinh2_u0, phi_mid)
        if f_new == 0.0:
            return new
        if np.sign(f_new) == np.sign(f_lo):
            if side == 1:
                f_hi *= 0.5
            lo, f_lo = new, f_new
            side = 1
        else:
            if side == -1:
                f_lo *= 0.5
            hi, f_hi = new, f_new
            side = -1
        if abs(hi - lo) <= 4e-16 * (abs(lo) + abs(hi)):
            break
    return lo if abs(f_lo) < abs(f_hi) else hi


@numba.njit(cache=True)
def _u_far(params, E, delta):
    R = 2.0
    for _ in range(60):
        if _phi(params, R, 0.0) > E:
            break
        R *= 2.0
    return math.asinh(R / delta)


@numba.njit(cache=True)
def _u_star(params, E, L_z, delta):
    """Location of the maximum of ``g`` (the numpy fudge's golden section)."""
    a, b = 1e-6, _u_far(params, E, delta)
    ratio = 0.5 * (math.sqrt(5.0) - 1.0)
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    g_c, g_d = _g(params, c, E, L_z, delta), _g(params, d, E, L_z, delta)
    for _ in range(60):
        if g_c > g_d:
            b = d
            d, g_d = c, g_c
            c = b - ratio * (b - a)
            g_c = _g(params, c, E, L_z, delta)
        else:
            a = c
            c, g_c = d, g_d
            d = a + ratio * (b - a)
            g_d = _g(params, d, E, L_z, delta)
    return 0.5 * (a + b)


@numba.njit(cache=True)
def _one(params, R, z, v_R, v_T, v_z, delta, radial, vertical):
    """``J_R, J_z`` of one phase-space point (natural units)."""
    L_z = R * v_T
    phi_star = _phi(params, R, z)
    E = phi_star + 0.5 * (v_R * v_R + v_T * v_T + v_z * v_z)
    # prolate spheroidal coordinates and momenta
    d1 = math.sqrt(R * R + (z + delta) ** 2)
    d2 = math.sqrt(R * R + (z - delta) ** 2)
    u = math.acosh(max((d1 + d2) / (2.0 * delta), 1.0))
    v = math.acos(min(max((d1 - d2) / (2.0 * delta), -1.0), 1.0))
    sinh_u, cosh_u, sin_v, cos_v = math.sinh(u), math.cosh(u), math.sin(v), math.cos(v)
    p_u = delta * (v_R * cosh_u * sin_v + v_z * sinh_u * cos_v)
    p_v = delta * (v_R * sinh_u * cos_v - v_z * cosh_u * sin_v)
    sinh2_u, sin2_v = sinh_u * sinh_u, sin_v * sin_v
    phi_mid = _phi(params, delta * math.sqrt(sinh2_u), 0.0)
    I3U = _g(params, u, E, L_z, delta) - p_u * p_u / (2.0 * delta * delta)
    dV = (1.0 + sinh2_u) * phi_mid - (sinh2_u + sin2_v) * phi_star
    barrier = 0.0 if L_z == 0.0 else L_z * L_z / (2.0 * delta * delta * sin2_v)
    I3V = -E * sin2_v + p_v * p_v / (2.0 * delta * delta) + barrier - dV
    # radial action: the turning points around a u where g(u) - I3U > 0
    J_R = 0.0
    inner = u
    if not (_g(params, inner, E, L_z, delta) - I3U > 0.0):
        inner = _u_star(params, E, L_z, delta)
    if _g(params, inner, E, L_z, delta) - I3U > 0.0:
        # the turning points nearest to it: steps of 10 % outwards and inwards bracket them (as
        # galpy does; where g - I3U has more than two roots, the orbit's own are these)
        lo, hi = inner, 1.1 * inner
        u_far = _u_far(params, E, delta)
        while _g(params, hi, E, L_z, delta) - I3U >= 0.0 and hi < u_far:
            lo, hi = hi, 1.1 * hi
        u_out = _root(params, 0, lo, min(hi, u_far), E, L_z, I3U, delta, 0.0, 0.0)
        lo, hi = 0.9 * inner, inner
        while _g(params, lo, E, L_z, delta) - I3U >= 0.0 and lo > 1e-6:
            lo, hi = 0.9 * lo, lo
        tiny = 1e-12
        if _g(params, lo, E, L_z, delta) - I3U < 0.0:
            u_in = _root(params, 0, lo, hi, E, L_z, I3U, delta, 0.0, 0.0)
        elif _g(params, tiny, E, L_z, delta) - I3U > 0.0:
            u_in = 0.0
        else:
            u_in = _root(params, 0, tiny, lo, E, L_z, I3U, delta, 0.0, 0.0)
        centre, half = 0.5 * (u_out + u_in), 0.5 * (u_out - u_in)
        total = 0.0
        for k in range(radial.shape[1]):
            f = _g(params, centre - half * radial[0, k], E, L_z, delta) - I3U
            total += radial[1, k] * math.sqrt(max(f, 0.0))
        J_R = math.sqrt(2.0) * delta / math.pi * half * 0.5 * math.pi * total
    # vertical action on the ellipse u = u0 through the star
    J_z = 0.0
    half_pi = 0.5 * math.pi
    if _f_v(params, half_pi, E, L_z, I3V, delta, sinh2_u, phi_mid) > 0.0:
        tiny = 1e-12
        if _f_v(params, tiny, E, L_z, I3V, delta, sinh2_u, phi_mid) > 0.0:
            v_min = 0.0
        else:
            v_min = _root(params, 1, tiny, half_pi, E, L_z, I3V, delta, sinh2_u, phi_mid)
        width = half_pi - v_min
        total = 0.0
        for k in range(vertical.shape[1]):
            f = _f_v(params, half_pi - width * vertical[0, k], E, L_z, I3V, delta, sinh2_u,
                     phi_mid)
            total += vertical[1, k] * math.sqrt(max(f, 0.0))
        J_z = 2.0 * math.sqrt(2.0) * delta / math.pi * width * 0.25 * math.pi * total
    return J_R, J_z


@numba.njit(cache=True, nogil=True)
def _actions(params, R, z, v_R, v_T, v_z, delta, radial, vertical):
    n = R.size
    J = np.full((2, n), np.nan)
    for i in range(n):
        if (math.isfinite(R[i] + z[i] + v_R[i] + v_T[i] + v_z[i]) and delta[i] > 0.0
                and math.isfinite(delta[i])):
            J[0, i], J[1, i] = _one(params, R[i], z[i], v_R[i], v_T[i], v_z[i], delta[i], radial,
                                    vertical)
    return J


def actions(params, R, z, v_R, v_T, v_z, delta):
    """Radial and vertical actions of phase-space points by the Staeckel fudge (natural units).

    Parameters
    ----------
    params : ndarray of shape (n_components, 4)
        From :func:`compiled_potential`.
    R, z, v_R, v_T, v_z : ndarray
        Cylindrical phase space (natural units, galpy's sign of ``v_T``), broadcastable.
    delta : float or ndarray
        Focal distance (natural units), broadcastable.

    Returns
    -------
    J_R, J_z : ndarray
        Of the broadcast shape; NaN where an input is not finite or ``delta <= 0``.
    """
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (R, z, v_R, v_T, v_z,
                                                                        delta)))
    shape = arrays[0].shape
    flat = [np.ascontiguousarray(a).ravel() for a in arrays]
    J = map_stars(lambda *a: _actions(params, *a), flat, (_RADIAL, _VERTICAL))
    return J[0].reshape(shape), J[1].reshape(shape)
