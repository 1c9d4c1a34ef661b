"""Positions and velocities of the simulated stars: thin disk, thick disk and the bulge/bar region.

All functions work in astropy's Galactocentric frame (kpc, km/s) with the disk rotating towards
negative ``L_z`` (see :mod:`sklearn_selfcal.coordinates`).
"""

from __future__ import annotations

import numpy as np

from .._paper import R0_KPC

__all__ = ["POPULATIONS", "DEFAULT_GALAXY", "sample_positions", "sample_velocities",
           "circular_velocity_table"]

POPULATIONS = ("thin", "thick", "bulge")

#: Structural and kinematic defaults (kpc, km/s, degrees).
DEFAULT_GALAXY = {
    # fraction of each population among *candidate* giants before the survey selection
    "population_weights": {"thin": 0.68, "thick": 0.17, "bulge": 0.15},
    "thin_scale_length": 3.5,
    "thin_scale_height": 0.30,
    "thin_flare_length": 8.0,  # h_z grows as exp((R - R0) / flare) outside R0
    "thick_scale_length": 2.2,
    "thick_scale_height": 0.90,
    "max_radius": 25.0,
    # bar: exponential triaxial density, major axis at bar_angle from the Sun-centre line,
    # near end at positive Galactic longitude
    "bar_scale_lengths": (1.6, 0.65, 0.40),
    "bar_angle": 25.0,
    # velocity dispersions at R0 (thin, thick) and for the bulge (km/s)
    "thin_sigma": (35.0, 25.0, 20.0),   # (sigma_R, sigma_phi, sigma_z)
    "thick_sigma": (60.0, 45.0, 40.0),
    "bulge_sigma": 90.0,
    "bulge_rotation": 60.0,
}


def _cylinder_to_cartesian(R, phi, z):
    return np.vstack([R * np.cos(phi), R * np.sin(phi), z])


def sample_positions(rng, population, n, galaxy):
    """Draw ``n`` Galactocentric positions (kpc), shape (3, n), for one population."""
    if population == "bulge":
        a, b, c = galaxy["bar_scale_lengths"]
        u = np.vstack([rng.laplace(0.0, a, n), rng.laplace(0.0, b, n), rng.laplace(0.0, c, n)])
        # major axis points from the centre to the near end: towards the Sun (-x) rotated to +y
        ang = np.deg2rad(galaxy["bar_angle"])
        major = np.array([-np.cos(ang), np.sin(ang)])
        minor = np.array([np.sin(ang), np.cos(ang)])
        xy = np.outer(major, u[0]) + np.outer(minor, u[1])
        return np.vstack([xy, u[2]])
    h_R = galaxy[f"{population}_scale_length"]
    h_z = galaxy[f"{population}_scale_height"]
    # surface density exp(-R / h) -> R ~ Gamma(2, h); redraw beyond the edge
    R = rng.gamma(2.0, h_R, n)
    while np.any(far := R > galaxy["max_radius"]):
        R[far] = rng.gamma(2.0, h_R, far.sum())
    if population == "thin":
        h_z = h_z * np.exp(np.clip(R - R0_KPC, 0.0, None) / galaxy["thin_flare_length"])
    z = rng.laplace(0.0, 1.0, n) * h_z
    return _cylinder_to_cartesian(R, rng.uniform(0.0, 2.0 * np.pi, n), z)


def circular_velocity_table(potential, r_max=60.0, n=600):
    """Circular speed of ``potential`` in the mid-plane on a radius grid.

    Returns
    -------
    R : ndarray of shape (n,)
        Radius (kpc), from 0.02 kpc to ``r_max``.
    v_c : ndarray of shape (n,)
        Circular speed (km/s).
    """
    import astropy.units as u

    R = np.linspace(0.02, r_max, n)
    xyz = np.vstack([R, np.zeros_like(R), np.zeros_like(R)]) * u.kpc
    return R, potential.circular_velocity(xyz).to_value(u.km / u.s)


def sample_velocities(rng, population, xyz, galaxy, vc_table):
    """Draw Galactocentric velocities (km/s), shape (3, n), from a disk-like distribution.

    Disk stars get Gaussian velocities around circular rotation lagging by the asymmetric drift
    ``sigma_R^2 / 80 km/s``; dispersions fall off as ``exp(-(R - R0) / (2 h_R))``. Bulge stars are
    hot and slowly rotating.
    """
    n = xyz.shape[1]
    R = np.hypot(xyz[0], xyz[1])
    phi = np.arctan2(xyz[1], xyz[0])
    v_c = np.interp(R, *vc_table)
    if population == "bulge":
        s = galaxy["bulge_sigma"]
        v_R = rng.normal(0.0, s, n)
        v_z = rng.normal(0.0, s, n)
        v_T = galaxy["bulge_rotation"] * np.tanh(R / 1.0) + rng.normal(0.0, s, n)
    else:
        s_R, s_phi, s_z = galaxy[f"{population}_sigma"]
        scale = np.clip(np.exp(-(R - R0_KPC) / (2.0 * galaxy[f"{population}_scale_length"])), 0.4, 2.5)
        s_R, s_phi, s_z = s_R * scale, s_phi * scale, s_z * scale
        v_a = s_R**2 / 80.0
        v_R = rng.normal(0.0, 1.0, n) * s_R
        v_z = rng.normal(0.0, 1.0, n) * s_z
        v_T = np.clip(v_c - v_a, 0.0, None) + rng.normal(0.0, 1.0, n) * s_phi
    # rotation is clockwise seen from +z: v_phi = -v_T
    v_phi = -v_T
    v_x = v_R * np.cos(phi) - v_phi * np.sin(phi)
    v_y = v_R * np.sin(phi) + v_phi * np.cos(phi)
    return np.vstack([v_x, v_y, v_z])
