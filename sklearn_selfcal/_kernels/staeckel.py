"""Orbital actions by the Staeckel fudge (Binney 2012), through galpy's C implementation.

gala potentials are translated to galpy with gala's interop; galpy works in natural units
(``ro`` kpc, ``vo`` km/s), these functions take and return physical units.

The finder is built with one focal distance ``delta``; :func:`staeckel_actions` also takes one per
star, which :mod:`sklearn_selfcal._kernels.staeckel_grid` tabulates per orbit as ``delta(E, L_z)``
(a focal distance estimated at each star's own position, as gala's ``get_staeckel_fudge_delta``
does, changes along an orbit and makes J_R vary by tens of per cent along it). For gala's
``MilkyWayPotential2022`` the agreement of one fixed ``delta`` with gala's orbit-based
``find_actions_o2gf`` is flat between about 3 and 4.5 kpc (median relative difference 0.2 % in J_R
and 0.3 % in J_z on 40 disk orbits at delta = 3.8 kpc), hence its default.
"""

from __future__ import annotations

import functools
import operator
import threading
from collections import OrderedDict

import numpy as np

__all__ = [
    "DEFAULT_DELTA_KPC",
    "GALPY_RO_KPC",
    "GALPY_VO_KMS",
    "cached_staeckel",
    "estimate_delta",
    "galpy_potential",
    "make_staeckel",
    "orbital_energy",
    "staeckel_actions",
]

#: One focal distance for the whole sample (kpc). A per-star focal distance makes J_R vary by tens of
#: per cent along a single orbit; a single value near 3.8 kpc matches gala's orbit-based actions of
#: ``MilkyWayPotential2022`` to about 0.2-0.3 % (median) in J_R and J_z.
DEFAULT_DELTA_KPC = 3.8
GALPY_RO_KPC = 8.0
GALPY_VO_KMS = 220.0
# galpy's C code returns 9999.99 (natural units) for an action it could not compute
_GALPY_FAILED = 9999.0


def _spherical_nfw_or_none(component):
    """A spherical galpy ``NFWPotential`` equal to ``component`` if it is a round TriaxialNFW.

    gala's interop turns every gala ``NFWPotential`` into galpy's ``TriaxialNFWPotential``, which
    evaluates forces by 50-point Gauss-Legendre quadrature even when it is spherical; the closed
    form is about twice as fast for the whole action computation. The replacement is checked
    numerically and ``None`` is returned when it does not reproduce the original.
    """
    from galpy.potential import NFWPotential, TriaxialNFWPotential, evaluatePotentials

    if not isinstance(component, TriaxialNFWPotential):
        return None
    if not (getattr(component, "_aligned", False) and abs(component._b - 1.0) < 1e-12
            and abs(component._c - 1.0) < 1e-12):
        return None
    a = component.a
    spherical = NFWPotential(amp=component._amp * 4.0 * np.pi * a**3, a=a,
                             ro=component._ro, vo=component._vo)
    R = np.array([0.05, 0.3, 1.0, 2.5, 6.0])
    z = np.array([0.0, 0.2, -0.7, 1.5, 4.0])
    ref = evaluatePotentials(component, R, z, use_physical=False)
    new = evaluatePotentials(spherical, R, z, use_physical=False)
    if not np.allclose(new, ref, rtol=1e-10, atol=0):
        return None
    return spherical


def galpy_potential(potential, ro=GALPY_RO_KPC, vo=GALPY_VO_KMS):
    """Translate a gala potential to a list of galpy potentials usable by galpy's C code.

    Parameters
    ----------
    potential : gala.potential.PotentialBase
        Axisymmetric potential (a single component or a ``CompositePotential``).
    ro, vo : float
        galpy's unit scales (kpc, km/s).

    Returns
    -------
    galpy_pot : galpy.potential.Potential
        The components combined with ``+`` (galpy's ``CompositePotential`` if more than one).
        Round NFW haloes are replaced by galpy's closed-form ``NFWPotential`` (identical values,
        faster than the quadrature-based ``TriaxialNFWPotential`` gala's interop produces).

    Raises
    ------
    ValueError
        If gala cannot translate a component, or a component has no C implementation in galpy
        (the action computation would silently fall back to slow Python).
    """
    import astropy.units as u
    from galpy.actionAngle.actionAngleStaeckel import _check_c

    try:
        pots = potential.as_interop("galpy", ro=ro * u.kpc, vo=vo * u.km / u.s)
    except Exception as exc:  # gala raises TypeError / NotImplementedError for unknown classes
        raise ValueError(
            f"gala could not translate the potential {potential!r} to galpy ({exc}); only gala "
            "potential classes with a galpy counterpart can be used for Staeckel actions"
        ) from exc
    pots = list(pots) if isinstance(pots, (list, tuple)) else [pots]
    pots = [_spherical_nfw_or_none(p) or p for p in pots]
    if not _check_c(pots):
        raise ValueError(
            "a component of the potential has no C implementation in galpy, so Staeckel actions "
            f"would fall back to pure Python (orders of magnitude slower): {pots}"
        )
    return functools.reduce(operator.add, pots)


def make_staeckel(potential, delta=DEFAULT_DELTA_KPC, ro=GALPY_RO_KPC, vo=GALPY_VO_KMS):
    """Build galpy's C Staeckel-fudge action finder for an axisymmetric gala potential.

    Parameters
    ----------
    potential : gala.potential.PotentialBase
        Axisymmetric potential.
    delta : float, default=3.8
        Focal distance of the prolate spheroidal coordinates (kpc).
    ro, vo : float
        galpy's unit scales (kpc, km/s).

    Returns
    -------
    finder : galpy.actionAngle.actionAngleStaeckel
    """
    from galpy.actionAngle import actionAngleStaeckel

    return actionAngleStaeckel(pot=galpy_potential(potential, ro=ro, vo=vo), delta=delta / ro, c=True)


_CACHE = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 4
# galpy's C code switches GSL's process-global error handler off and back on around each call; two
# threads inside it at once can restore the aborting handler under the other's feet (observed: a
# "gsl: brent.c: endpoints do not straddle y=0" abort with joblib's threading backend). One call
# at a time per process; processes (loky, dask workers) run in parallel.
_GALPY_LOCK = threading.Lock()


def cached_staeckel(potential, delta, key, ro=GALPY_RO_KPC, vo=GALPY_VO_KMS):
    """:func:`make_staeckel`, cached per process under ``(key, delta, ro, vo)``.

    Parallel workers (processes of loky or dask, or threads) rebuild the finder once from the
    picklable gala potential and then reuse it for every chunk they are given.

    Parameters
    ----------
    potential : gala.potential.PotentialBase
    delta : float
        Focal distance (kpc).
    key : str
        A hash identifying ``potential`` (e.g. ``joblib.hash(potential)``).
    ro, vo : float
        galpy's unit scales (kpc, km/s).

    Returns
    -------
    finder : galpy.actionAngle.actionAngleStaeckel
    """
    cache_key = (key, float(delta), float(ro), float(vo))
    with _CACHE_LOCK:
        finder = _CACHE.get(cache_key)
        if finder is not None:
            _CACHE.move_to_end(cache_key)
            return finder
    finder = make_staeckel(potential, delta=delta, ro=ro, vo=vo)
    with _CACHE_LOCK:
        _CACHE[cache_key] = finder
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return finder


def _call_finder(finder, R, vR, vT, z, vz, delta=None):
    """Run the C finder; if it reports an error for the batch, bisect to isolate the bad stars."""
    extra = {} if delta is None else {"delta": delta}
    try:
        J_R, _, J_z = finder(R, vR, vT, z, vz, **extra)
        return np.array(J_R, dtype=float), np.array(J_z, dtype=float)
    except RuntimeError:
        if R.size == 1:
            return np.full(1, np.nan), np.full(1, np.nan)
        h = R.size // 2
        lo = None if delta is None else delta[:h]
        hi = None if delta is None else delta[h:]
        a = _call_finder(finder, R[:h], vR[:h], vT[:h], z[:h], vz[:h], lo)
        b = _call_finder(finder, R[h:], vR[h:], vT[h:], z[h:], vz[h:], hi)
        return np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])


def staeckel_actions(finder, R, z, v_R, v_phi, v_z, ro=GALPY_RO_KPC, vo=GALPY_VO_KMS, delta=None):
    """Radial and vertical actions of stars by the Staeckel fudge.

    Parameters
    ----------
    finder : galpy.actionAngle.actionAngleStaeckel
        From :func:`make_staeckel`.
    R, z : ndarray of shape (n_stars,)
        Galactocentric cylindrical radius and height (kpc).
    v_R, v_phi, v_z : ndarray of shape (n_stars,)
        Velocities (km/s), ``v_phi`` in this package's convention (negative for disk stars).
    ro, vo : float
        The unit scales ``finder`` was built with (kpc, km/s).
    delta : ndarray of shape (n_stars,), optional
        A focal distance per star (kpc) instead of the finder's own.

    Returns
    -------
    J_R, J_z : ndarray of shape (n_stars,)
        Radial and vertical actions (kpc km/s); NaN for stars the C code failed on (an error, or
        its 9999.99 failure value). The actions are even in ``v_phi``, so the sign convention
        does not matter; ``L_z`` is not returned (it is ``R * v_phi`` exactly). Calls from
        several threads of one process are serialised (galpy's C code is not thread-safe);
        parallelism comes from processes, and the number of OpenMP threads galpy uses within a
        call from ``threadpoolctl`` or ``OMP_NUM_THREADS`` (joblib's workers limit it).
    """
    R = np.atleast_1d(np.asarray(R, dtype=float))
    if R.size == 0:
        return np.empty(0), np.empty(0)
    extra = {} if delta is None else {"delta": np.atleast_1d(np.asarray(delta, float)) / ro}
    # galpy's frame is left-handed (disk stars have v_T > 0): flip v_phi.
    with _GALPY_LOCK:
        J_R, J_z = _call_finder(
            finder,
            R / ro,
            np.atleast_1d(np.asarray(v_R, dtype=float)) / vo,
            -np.atleast_1d(np.asarray(v_phi, dtype=float)) / vo,
            np.atleast_1d(np.asarray(z, dtype=float)) / ro,
            np.atleast_1d(np.asarray(v_z, dtype=float)) / vo,
            **extra,
        )
    failed = (J_R >= _GALPY_FAILED) | (J_z >= _GALPY_FAILED)
    J_R[failed] = np.nan
    J_z[failed] = np.nan
    scale = ro * vo
    return J_R * scale, J_z * scale


def orbital_energy(potential, xyz, vxyz):
    """Specific orbital energy ``Phi(x) + v^2 / 2``.

    Parameters
    ----------
    potential : gala.potential.PotentialBase
    xyz : ndarray of shape (3, n_stars)
        Galactocentric position (kpc).
    vxyz : ndarray of shape (3, n_stars)
        Galactocentric velocity (km/s).

    Returns
    -------
    E : ndarray of shape (n_stars,)
        Energy (km^2/s^2); negative for bound orbits.
    """
    import astropy.units as u

    phi = potential.energy(np.asarray(xyz, dtype=float) * u.kpc).to_value(u.km**2 / u.s**2)
    return phi + 0.5 * np.sum(np.asarray(vxyz, dtype=float) ** 2, axis=0)


def _reference_orbit_samples(potential, n_points=30):
    """Phase-space points sampled along 24 typical disk orbits (guiding radii 4-14 kpc).

    Returns ``(R, z, v_R, v_phi, v_z)``, each of shape (n_points, 24), in kpc and km/s.
    """
    import astropy.units as u
    import gala.dynamics as gd
    import gala.potential as gp

    R0, sR, sz = (a.ravel() for a in np.meshgrid([4.0, 6.0, 8.0, 10.0, 12.0, 14.0], [15.0, 40.0],
                                                   [10.0, 30.0], indexing="ij"))
    zeros = np.zeros_like(R0)
    v_c = potential.circular_velocity(np.array([R0, zeros, zeros]) * u.kpc).to_value(u.km / u.s)
    w0 = gd.PhaseSpacePosition(pos=np.array([R0, zeros, zeros]) * u.kpc,
                               vel=np.array([sR, -v_c, sz]) * u.km / u.s)
    orbits = gp.Hamiltonian(potential).integrate_orbit(w0, dt=1.0 * u.Myr, n_steps=3000)
    w = orbits[np.linspace(100, 3000, n_points).astype(int)]
    x, y, z = w.xyz.to_value(u.kpc)
    vx, vy, vz = w.v_xyz.to_value(u.km / u.s)
    R = np.hypot(x, y)
    return R, z, (x * vx + y * vy) / R, (x * vy - y * vx) / R, vz


def estimate_delta(potential, grid=None, ro=GALPY_RO_KPC, vo=GALPY_VO_KMS):
    """Focal distance that best conserves Staeckel actions along typical disk orbits.

    24 orbits (guiding radii 4-14 kpc, radial and vertical velocity kicks of 15-40 and
    10-30 km/s) are integrated for 3 Gyr with gala and sampled at 30 times each. For every
    ``delta`` on ``grid`` the Staeckel actions are computed at all samples and the spread of
    J_R and J_z along each orbit (standard deviation over mean) is averaged over orbits; the
    ``delta`` with the smallest summed spread is returned. Only the potential enters, never the
    data, so the result is reproducible. For ``MilkyWayPotential2022`` the criterion is flat
    between about 2.5 and 4.5 kpc.

    Parameters
    ----------
    potential : gala.potential.PotentialBase
        Axisymmetric potential in physical units.
    grid : array-like, optional
        Candidate focal distances (kpc); default 0.5 to 8 kpc in steps of 0.25 kpc.
    ro, vo : float
        galpy's unit scales (kpc, km/s).

    Returns
    -------
    delta : float
        Focal distance (kpc).
    """
    from galpy.actionAngle import actionAngleStaeckel

    grid = np.arange(0.5, 8.01, 0.25) if grid is None else np.asarray(grid, dtype=float)
    R, z, v_R, v_phi, v_z = _reference_orbit_samples(potential)
    pots = galpy_potential(potential, ro=ro, vo=vo)
    cost = np.full(grid.size, np.inf)
    for i, delta in enumerate(grid):
        finder = actionAngleStaeckel(pot=pots, delta=delta / ro, c=True)
        J_R, J_z = staeckel_actions(finder, R.ravel(), z.ravel(), v_R.ravel(), v_phi.ravel(),
                                    v_z.ravel(), ro=ro, vo=vo)
        J_R, J_z = J_R.reshape(R.shape), J_z.reshape(R.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            spread = np.std(J_R, axis=0) / np.mean(J_R, axis=0) + np.std(J_z, axis=0) / np.mean(J_z, axis=0)
        if np.all(np.isfinite(spread)):
            cost[i] = np.mean(spread)
    if not np.isfinite(cost).any():
        raise ValueError("Staeckel actions failed on every reference orbit for every focal distance")
    return float(grid[np.argmin(cost)])
