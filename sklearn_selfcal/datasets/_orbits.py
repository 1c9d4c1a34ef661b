"""``make_orbits``: stars of a Galactic population followed along their orbits, to test actions.

True actions are conserved along an orbit, so the spread of computed actions over points of one
integrated orbit measures an action method's error without any reference solver (the check of
issue 14). The populations reuse the disk and bulge models of :func:`make_survey`
(:mod:`sklearn_selfcal.datasets._galaxy`) and add a stellar halo.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ..coordinates import cylindrical_from_cartesian, galactocentric_to_icrs
from ..potential import default_potential
from . import _galaxy
from ._random import seed_sequence

__all__ = ["ORBIT_POPULATIONS", "make_orbits"]

#: Populations of :func:`make_orbits` and the ranges of their starting radius (kpc): cylindrical R
#: for the bulge and disks, spherical r for the halo.
ORBIT_POPULATIONS = {
    "bulge": (0.2, 3.0),
    "inner_disk": (3.0, 6.0),
    "solar_disk": (6.0, 10.0),
    "outer_disk": (10.0, 15.0),
    "halo": (3.0, 40.0),
}
#: Velocity dispersion of the halo (km/s, isotropic, no rotation) and the slope of its density,
#: ``rho ~ r^-3.5`` (Deason et al. 2011 beyond ~25 kpc).
HALO_SIGMA_KMS = 110.0
HALO_DENSITY_SLOPE = 3.5


def _sample_disk(rng, n, lo, hi, galaxy, vc_table):
    """Thin and thick disk stars (in the proportions of ``galaxy``) starting at lo <= R < hi."""
    weights = galaxy["population_weights"]
    thin_fraction = weights["thin"] / (weights["thin"] + weights["thick"])
    parts = []
    for population, share in (("thin", thin_fraction), ("thick", 1.0 - thin_fraction)):
        m = int(rng.binomial(n, share)) if population == "thin" else n - sum(p[0].shape[1] for p in parts)
        xyz = np.empty((3, 0))
        while xyz.shape[1] < m:
            trial = _galaxy.sample_positions(rng, population, 4 * m + 16, galaxy)
            R = np.hypot(trial[0], trial[1])
            xyz = np.hstack([xyz, trial[:, (R >= lo) & (R < hi)]])[:, :m]
        parts.append((xyz, _galaxy.sample_velocities(rng, population, xyz, galaxy, vc_table)))
    return np.hstack([p[0] for p in parts]), np.hstack([p[1] for p in parts])


def _sample_bulge(rng, n, lo, hi, galaxy, vc_table):
    xyz = np.empty((3, 0))
    while xyz.shape[1] < n:
        trial = _galaxy.sample_positions(rng, "bulge", 4 * n + 16, galaxy)
        R = np.hypot(trial[0], trial[1])
        xyz = np.hstack([xyz, trial[:, (R >= lo) & (R < hi)]])[:, :n]
    return xyz, _galaxy.sample_velocities(rng, "bulge", xyz, galaxy, vc_table)


def _sample_halo(rng, n, lo, hi):
    # r^2 rho(r) ~ r^(2 - slope): inverse transform of its integral between lo and hi
    k = 3.0 - HALO_DENSITY_SLOPE
    u = rng.uniform(0.0, 1.0, n)
    r = (lo**k + u * (hi**k - lo**k)) ** (1.0 / k)
    cos_theta = rng.uniform(-1.0, 1.0, n)
    azimuth = rng.uniform(0.0, 2.0 * np.pi, n)
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    xyz = r * np.array([sin_theta * np.cos(azimuth), sin_theta * np.sin(azimuth), cos_theta])
    return xyz, rng.normal(0.0, HALO_SIGMA_KMS, (3, n))


def _draw(population, rng, n, potential, galaxy, vc_table):
    """``n`` bound stars of ``population`` starting at R >= 0.2 kpc: (xyz, vxyz) of shape (3, n)."""
    import astropy.units as u

    lo, hi = ORBIT_POPULATIONS[population]
    xyz, vxyz = np.empty((3, 0)), np.empty((3, 0))
    while xyz.shape[1] < n:
        m = 2 * (n - xyz.shape[1]) + 8
        if population == "halo":
            p, v = _sample_halo(rng, m, lo, hi)
        elif population == "bulge":
            p, v = _sample_bulge(rng, m, lo, hi, galaxy, vc_table)
        else:
            p, v = _sample_disk(rng, m, lo, hi, galaxy, vc_table)
        E = potential.energy(p * u.kpc).to_value(u.km**2 / u.s**2) + 0.5 * np.sum(v**2, axis=0)
        keep = (E < 0) & (np.hypot(p[0], p[1]) >= ORBIT_POPULATIONS["bulge"][0])
        xyz, vxyz = np.hstack([xyz, p[:, keep]]), np.hstack([vxyz, v[:, keep]])
    return xyz[:, :n], vxyz[:, :n]


def _integrate(potential, xyz, vxyz, times_gyr):
    """Phase space at ``times_gyr`` along each orbit, galpy's C DOP853 (relative energy error ~1e-12).

    Returns xyz, vxyz of shape (3, n_orbits, n_times).
    """
    import astropy.units as u
    from galpy.orbit import Orbit
    from galpy.util import galpyWarningVerbose

    from .._kernels.staeckel import GALPY_RO_KPC as ro, GALPY_VO_KMS as vo, galpy_potential

    R, phi, v_R, v_phi, _ = cylindrical_from_cartesian(xyz, vxyz)
    # galpy's azimuth runs the other way: mirror phi and v_phi (the potential is axisymmetric)
    vxvv = np.column_stack([R / ro, v_R / vo, -v_phi / vo, xyz[2] / ro, vxyz[2] / vo, -phi])
    orbits = Orbit(vxvv, ro=ro, vo=vo)
    ts = np.asarray(times_gyr, dtype=float) * u.Gyr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", galpyWarningVerbose)  # "Using C implementation ..."
        orbits.integrate(ts, galpy_potential(potential), method="dop853_c", progressbar=False)
    R_t, z_t = orbits.R(ts), orbits.z(ts)
    phi_t, v_R_t, v_phi_t, v_z_t = -orbits.phi(ts), orbits.vR(ts), -orbits.vT(ts), orbits.vz(ts)
    cos, sin = np.cos(phi_t), np.sin(phi_t)
    xyz_t = np.array([R_t * cos, R_t * sin, z_t])
    vxyz_t = np.array([v_R_t * cos - v_phi_t * sin, v_R_t * sin + v_phi_t * cos, v_z_t])
    return xyz_t, vxyz_t


def make_orbits(population, n_orbits=20, *, n_times=16, duration=2.0, potential=None,
                random_state=None):
    """Stars of a Galactic population and the points of their integrated orbits.

    Each star's orbit is integrated in ``potential`` for ``duration`` Gyr with galpy's C
    integrator (DOP853, energy conserved to ~1e-12) and sampled at ``n_times`` equally spaced
    times, starting with the star itself. The actions computed at the points of one orbit should
    all be equal; their spread is the error of the method that computed them.

    Populations (starting positions and velocities):

    - ``"bulge"``: the bar-shaped bulge of :func:`make_survey` (exponential, scale lengths
      1.6/0.65/0.40 kpc; dispersion 90 km/s, slow rotation), cylindrical R = 0.2-3 kpc;
    - ``"inner_disk"``, ``"solar_disk"``, ``"outer_disk"``: its thin and thick disks (68:17),
      R = 3-6, 6-10 and 10-15 kpc;
    - ``"halo"``: a non-rotating isotropic halo, density ``r^-3.5`` between r = 3 and 40 kpc,
      velocity dispersion 110 km/s.

    Unbound stars are redrawn.

    Parameters
    ----------
    population : {"bulge", "inner_disk", "solar_disk", "outer_disk", "halo"}
        The population.
    n_orbits : int, default=20
        Number of stars (orbits).
    n_times : int, default=16
        Points per orbit.
    duration : float, default=2.0
        Integration time (Gyr).
    potential : gala.potential.PotentialBase or None, default=None
        Axisymmetric potential; ``None`` is :func:`~sklearn_selfcal.potential.default_potential`.
    random_state : int, RandomState instance, Generator or None, default=None
        Seed of the draws.

    Returns
    -------
    orbits : sklearn.utils.Bunch
        ``phase_space``: DataFrame with one row per point, ``n_orbits * n_times`` rows ordered by
        orbit then time, columns ``orbit``, ``time`` (Gyr), ``x, y, z`` (kpc), ``v_x, v_y, v_z``
        (km/s; astropy's Galactocentric frame, the package's default solar parameters) and the
        heliocentric observables ``ra, dec`` (deg), ``distance`` (kpc), ``parallax`` (mas),
        ``pmra, pmdec`` (mas/yr), ``radial_velocity`` (km/s); ``population``, ``n_orbits``,
        ``n_times``.

    Examples
    --------
    >>> from sklearn_selfcal.datasets import make_orbits
    >>> orbits = make_orbits("solar_disk", n_orbits=2, n_times=3, duration=0.1, random_state=0)
    >>> orbits.phase_space.shape
    (6, 15)
    """
    if population not in ORBIT_POPULATIONS:
        raise ValueError(f"population must be one of {list(ORBIT_POPULATIONS)}, got {population!r}")
    if int(n_orbits) < 1 or int(n_times) < 1:
        raise ValueError(f"n_orbits and n_times must be positive, got {n_orbits}, {n_times}")
    potential = default_potential() if potential is None else potential
    rng = np.random.default_rng(seed_sequence(random_state))
    galaxy = _galaxy.DEFAULT_GALAXY
    vc_table = _galaxy.circular_velocity_table(potential)
    xyz0, vxyz0 = _draw(population, rng, int(n_orbits), potential, galaxy, vc_table)
    times = np.linspace(0.0, float(duration), int(n_times))
    xyz, vxyz = _integrate(potential, xyz0, vxyz0, times)
    flat_xyz, flat_vxyz = xyz.reshape(3, -1), vxyz.reshape(3, -1)
    obs = galactocentric_to_icrs(flat_xyz, flat_vxyz)
    table = pd.DataFrame({
        "orbit": np.repeat(np.arange(int(n_orbits)), int(n_times)),
        "time": np.tile(times, int(n_orbits)),
        "x": flat_xyz[0], "y": flat_xyz[1], "z": flat_xyz[2],
        "v_x": flat_vxyz[0], "v_y": flat_vxyz[1], "v_z": flat_vxyz[2],
        "ra": obs["ra"], "dec": obs["dec"], "distance": obs["distance"],
        "parallax": 1.0 / obs["distance"], "pmra": obs["pmra"], "pmdec": obs["pmdec"],
        "radial_velocity": obs["radial_velocity"],
    })
    return Bunch(phase_space=table, population=population, n_orbits=int(n_orbits),
                 n_times=int(n_times))
