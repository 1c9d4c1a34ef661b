"""The Staeckel fudge (Binney 2012) written out in vectorised numpy.

galpy's C code (:mod:`sklearn_selfcal._kernels.staeckel`) is the reference implementation used for
every star; these functions compute the same quantities for whole arrays at once so that the
interpolation tables of :mod:`sklearn_selfcal._kernels.staeckel_grid` can be built in a second and
checked against galpy. They follow galpy's conventions exactly:

* prolate spheroidal coordinates ``R = delta sinh(u) sin(v)``, ``z = delta cosh(u) cos(v)``;
* the radial integral uses the potential in the mid-plane (``v = pi/2``), so the radial action is a
  function of ``(E, L_z, I3U)`` only, with ``I3U = g(u) - p_u^2 / (2 delta^2)`` and
  ``g(u) = E sinh^2 u - cosh^2 u Phi(delta sinh u, 0) - L_z^2 / (2 delta^2 sinh^2 u)``;
* the vertical integral uses the potential on the ellipse ``u = u_star`` through the star, so the
  vertical action depends on ``(E, L_z, I3V, u_star)``.

Everything here is in galpy's natural units (lengths in units of ``ro``, velocities in units of
``vo``); ``phi(R, z)`` is any vectorised callable returning the potential in those units. A planar
orbit has ``I3U = I3V = I3_MIN = L_z^2 / (2 delta^2) - E``, a shell orbit (no radial action) has
``I3U = max_u g(u)``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ellipsoidal_coordinates",
    "integrals_of_motion",
    "radial_function",
    "max_radial_function",
    "radial_action",
    "vertical_action",
    "actions",
]

_N_QUAD = 16
_THETA, _WEIGHT = np.polynomial.legendre.leggauss(_N_QUAD)


def ellipsoidal_coordinates(R, z, v_R, v_z, delta):
    """Prolate spheroidal coordinates ``u, v`` and their momenta ``p_u, p_v``.

    Parameters
    ----------
    R, z, v_R, v_z, delta : ndarray
        Cylindrical position and velocity and the focal distance (natural units), broadcastable.

    Returns
    -------
    u, v, p_u, p_v : ndarray
    """
    d1 = np.sqrt(R**2 + (z + delta) ** 2)
    d2 = np.sqrt(R**2 + (z - delta) ** 2)
    u = np.arccosh(np.maximum((d1 + d2) / (2.0 * delta), 1.0))
    v = np.arccos(np.clip((d1 - d2) / (2.0 * delta), -1.0, 1.0))
    sinh_u, cosh_u, sin_v, cos_v = np.sinh(u), np.cosh(u), np.sin(v), np.cos(v)
    p_u = delta * (v_R * cosh_u * sin_v + v_z * sinh_u * cos_v)
    p_v = delta * (v_R * sinh_u * cos_v - v_z * cosh_u * sin_v)
    return u, v, p_u, p_v


def radial_function(phi, u, E, L_z, delta):
    """``g(u) = E sinh^2 u - cosh^2 u Phi(delta sinh u, 0) - L_z^2 / (2 delta^2 sinh^2 u)``."""
    sinh2 = np.sinh(u) ** 2
    with np.errstate(divide="ignore"):
        barrier = np.where(L_z == 0.0, 0.0, L_z**2 / (2.0 * delta**2 * sinh2))
    return E * sinh2 - (1.0 + sinh2) * phi(delta * np.sqrt(sinh2), 0.0 * u) - barrier


def integrals_of_motion(phi, R, z, v_R, v_T, v_z, delta):
    """Energy, angular momentum and the fudge's two third integrals of phase-space points.

    Parameters
    ----------
    phi : callable
        ``phi(R, z)``, the potential (natural units).
    R, z, v_R, v_T, v_z : ndarray
        Cylindrical phase space (natural units; ``v_T`` positive for prograde orbits, galpy's
        convention).
    delta : float or ndarray
        Focal distance (natural units).

    Returns
    -------
    integrals : dict of ndarray
        ``E, L_z, I3U, I3V, u, v``.
    """
    delta = np.broadcast_to(np.asarray(delta, dtype=float), np.shape(R))
    L_z = R * v_T
    phi_star = phi(R, z)
    E = phi_star + 0.5 * (v_R**2 + v_T**2 + v_z**2)
    u, v, p_u, p_v = ellipsoidal_coordinates(R, z, v_R, v_z, delta)
    sinh2_u, sin2_v = np.sinh(u) ** 2, np.sin(v) ** 2
    phi_mid = phi(delta * np.sqrt(sinh2_u), 0.0 * R)
    I3U = radial_function(phi, u, E, L_z, delta) - p_u**2 / (2.0 * delta**2)
    dV = (1.0 + sinh2_u) * phi_mid - (sinh2_u + sin2_v) * phi_star
    with np.errstate(divide="ignore", invalid="ignore"):
        barrier = np.where(L_z == 0.0, 0.0, L_z**2 / (2.0 * delta**2 * sin2_v))
    I3V = -E * sin2_v + p_v**2 / (2.0 * delta**2) + barrier - dV
    return {"E": E, "L_z": L_z, "I3U": I3U, "I3V": I3V, "u": u, "v": v}


def _bisect(f, lo, hi, n_iter=12):
    """Root of ``f`` in ``[lo, hi]`` (elementwise) where ``f(lo)`` and ``f(hi)`` differ in sign.

    Four bisection steps bracket the root, then the Illinois variant of regula falsi converges
    superlinearly (a simple root to ~1e-13 in the remaining steps); elements without a sign change
    converge to an end of the bracket.
    """
    f_lo, f_hi = f(lo), f(hi)
    for _ in range(4):
        mid = 0.5 * (lo + hi)
        f_mid = f(mid)
        left = np.sign(f_mid) == np.sign(f_lo)
        lo, f_lo = np.where(left, mid, lo), np.where(left, f_mid, f_lo)
        hi, f_hi = np.where(left, hi, mid), np.where(left, f_hi, f_mid)
    side = np.zeros(np.shape(lo), dtype=np.int8)
    for _ in range(n_iter):
        with np.errstate(invalid="ignore", divide="ignore"):
            new = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
        new = np.where(np.isfinite(new) & (new > np.minimum(lo, hi)) & (new < np.maximum(lo, hi)),
                       new, 0.5 * (lo + hi))
        f_new = f(new)
        left = np.sign(f_new) == np.sign(f_lo)
        # Illinois: halve the stale end's value when the same end is kept twice in a row
        f_hi = np.where(left & (side == 1), 0.5 * f_hi, f_hi)
        f_lo = np.where(~left & (side == -1), 0.5 * f_lo, f_lo)
        lo, f_lo = np.where(left, new, lo), np.where(left, f_new, f_lo)
        hi, f_hi = np.where(left, hi, new), np.where(left, f_hi, f_new)
        side = np.where(left, 1, -1).astype(np.int8)
    return np.where(np.abs(f_lo) < np.abs(f_hi), lo, hi)


def _u_far(phi, E, delta):
    """A ``u`` beyond every orbit of energy ``E``: where the mid-plane potential exceeds ``E``."""
    R = np.full(np.shape(E), 2.0)
    for _ in range(60):  # grow until Phi(R, 0) > E (bound orbits, Phi -> 0 at infinity)
        inside = phi(R, 0.0 * R) <= E
        if not inside.any():
            break
        R = np.where(inside, 2.0 * R, R)
    return np.arcsinh(R / delta)


def max_radial_function(phi, E, L_z, delta, n_iter=60):
    """Location ``u*`` and value of the maximum of :func:`radial_function` (golden section).

    Parameters
    ----------
    phi : callable
    E, L_z, delta : ndarray
        Natural units, broadcastable.

    Returns
    -------
    u_star, g_max : ndarray
        ``g_max = I3U`` of the shell orbit (no radial action) with these ``E, L_z``.
    """
    E, L_z, delta = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (E, L_z, delta)))
    a = np.full(E.shape, 1e-6)
    b = _u_far(phi, E, delta)
    ratio = 0.5 * (np.sqrt(5.0) - 1.0)
    c = b - ratio * (b - a)
    d = a + ratio * (b - a)
    g_c = radial_function(phi, c, E, L_z, delta)
    g_d = radial_function(phi, d, E, L_z, delta)
    for _ in range(n_iter):
        left = g_c > g_d  # maximum in [a, d]
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        new = np.where(left, b - ratio * (b - a), a + ratio * (b - a))
        g_new = radial_function(phi, new, E, L_z, delta)
        c, d, g_c, g_d = (np.where(left, new, d), np.where(left, c, new),
                          np.where(left, g_new, g_d), np.where(left, g_c, g_new))
    u_star = 0.5 * (a + b)
    return u_star, radial_function(phi, u_star, E, L_z, delta)


def radial_action(phi, E, L_z, I3U, delta, u_star=None):
    """Radial action ``J_R = sqrt(2) delta / pi * int sqrt(g(u) - I3U) du`` (natural units).

    Parameters
    ----------
    phi : callable
    E, L_z, I3U, delta : ndarray
        Natural units, broadcastable.
    u_star : ndarray, optional
        Location of the maximum of ``g`` (from :func:`max_radial_function`).

    Returns
    -------
    J_R : ndarray
        0 where ``I3U`` is at or above the maximum of ``g`` (no radial motion).
    """
    E, L_z, I3U, delta = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (E, L_z, I3U, delta)))
    if u_star is None:
        u_star, _ = max_radial_function(phi, E, L_z, delta)
    u_star = np.broadcast_to(u_star, E.shape)

    def f(u):
        return radial_function(phi, u, E, L_z, delta) - I3U

    f_star = f(u_star)
    moving = f_star > 0
    u_in = np.where(f(np.zeros(E.shape) + 1e-12) > 0, 0.0,
                    _bisect(f, np.full(E.shape, 1e-12), u_star))
    u_out = _bisect(f, u_star, _u_far(phi, E, delta))
    centre, half = 0.5 * (u_out + u_in), 0.5 * (u_out - u_in)
    theta = 0.5 * np.pi * (_THETA + 1.0)  # nodes on [0, pi]
    u = centre[..., None] - half[..., None] * np.cos(theta)
    integrand = np.sqrt(np.clip(f_grid(f, u), 0.0, None)) * np.sin(theta)
    integral = half * 0.5 * np.pi * np.sum(_WEIGHT * integrand, axis=-1)
    return np.where(moving, np.sqrt(2.0) * delta / np.pi * integral, 0.0)


def f_grid(f, u):
    """Evaluate an elementwise function of shape (...) on a trailing grid axis of ``u``."""
    return np.moveaxis(f(np.moveaxis(u, -1, 0)), 0, -1)


def vertical_action(phi, E, L_z, I3V, delta, u0):
    """Vertical action ``J_z = 2 sqrt(2) delta / pi * int_{v_min}^{pi/2} sqrt(f_v(v)) dv``.

    ``f_v(v) = E sin^2 v + I3V + dV(v) - L_z^2 / (2 delta^2 sin^2 v)`` with
    ``dV(v) = cosh^2 u0 Phi(u0, pi/2) - (sinh^2 u0 + sin^2 v) Phi(u0, v)``.

    Parameters
    ----------
    phi : callable
    E, L_z, I3V, delta, u0 : ndarray
        Natural units, broadcastable; ``u0`` is the star's own ``u``.

    Returns
    -------
    J_z : ndarray
        0 where ``I3V <= L_z^2 / (2 delta^2) - E`` (no vertical motion).
    """
    E, L_z, I3V, delta, u0 = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (E, L_z, I3V, delta, u0)))
    sinh2_u0 = np.sinh(u0) ** 2
    phi_mid = phi(delta * np.sqrt(sinh2_u0), 0.0 * E)

    def f(v):
        sin2 = np.sin(v) ** 2
        phi_uv = phi(delta * np.sqrt(sinh2_u0) * np.sin(v), delta * np.sqrt(1.0 + sinh2_u0) * np.cos(v))
        dV = (1.0 + sinh2_u0) * phi_mid - (sinh2_u0 + sin2) * phi_uv
        with np.errstate(divide="ignore"):
            barrier = np.where(L_z == 0.0, 0.0, L_z**2 / (2.0 * delta**2 * sin2))
        return E * sin2 + I3V + dV - barrier

    half_pi = np.full(E.shape, 0.5 * np.pi)
    moving = f(half_pi) > 0
    v_min = np.where(f(np.zeros(E.shape) + 1e-12) > 0, 0.0,
                     _bisect(f, np.full(E.shape, 1e-12), half_pi))
    width = 0.5 * np.pi - v_min
    theta = 0.25 * np.pi * (_THETA + 1.0)  # nodes on [0, pi/2]
    v = 0.5 * np.pi - width[..., None] * np.cos(theta)
    integrand = np.sqrt(np.clip(f_grid(f, v), 0.0, None)) * np.sin(theta)
    integral = width * 0.25 * np.pi * np.sum(_WEIGHT * integrand, axis=-1)
    return np.where(moving, 2.0 * np.sqrt(2.0) * delta / np.pi * integral, 0.0)


def actions(phi, R, z, v_R, v_T, v_z, delta):
    """Radial and vertical actions of phase-space points by the Staeckel fudge (natural units).

    Parameters
    ----------
    phi : callable
        ``phi(R, z)`` in natural units.
    R, z, v_R, v_T, v_z : ndarray
        Cylindrical phase space (natural units, galpy's sign of ``v_T``).
    delta : float or ndarray
        Focal distance (natural units).

    Returns
    -------
    J_R, J_z : ndarray
    """
    q = integrals_of_motion(phi, R, z, v_R, v_T, v_z, delta)
    delta = np.broadcast_to(np.asarray(delta, dtype=float), np.shape(R))
    J_R = radial_action(phi, q["E"], q["L_z"], q["I3U"], delta)
    J_z = vertical_action(phi, q["E"], q["L_z"], q["I3V"], delta, q["u"])
    return J_R, J_z
