"""Galactocentric frame of the paper and conversions between observed and Galactocentric coordinates.

Conventions (see ``docs/conventions.rst``)
------------------------------------------
* astropy's right-handed :class:`~astropy.coordinates.Galactocentric` frame: the Galactic centre is
  at the origin, the Sun at ``x = -R0`` (``x ~ -8.178 kpc``), ``z`` points to the North Galactic Pole
  and the disk rotates clockwise seen from the North, so disk stars have ``v_y > 0`` at the Sun and
  **negative** ``L_z = x v_y - y v_x`` (the Sun: about -2,010 kpc km/s).
* ``phi = arctan2(y, x)`` increases counter-clockwise, opposite to Galactic rotation (the paper's
  convention); the Sun is at ``phi = pi``. ``v_phi = L_z / R`` is negative for disk stars and
  ``v_R = (x v_x + y v_y) / R``.
* Units: kpc, km/s, kpc km/s, degrees, mas and mas/yr.
"""

from __future__ import annotations

import astropy.coordinates as coord
import astropy.units as u
import numpy as np

from ._paper import R0_KPC, V_SUN_KMS, Z_SUN_KPC

__all__ = [
    "R0_KPC",
    "V_SUN_KMS",
    "Z_SUN_KPC",
    "cylindrical_from_cartesian",
    "galactocentric_frame",
    "galactocentric_to_icrs",
    "icrs_to_galactocentric",
]



def galactocentric_frame(r0=R0_KPC, z_sun=Z_SUN_KPC, v_sun=V_SUN_KMS):
    """Return the paper's :class:`astropy.coordinates.Galactocentric` frame.

    Parameters
    ----------
    r0 : float, default=8.178
        Sun - Galactic centre distance (kpc).
    z_sun : float, default=0.025
        Height of the Sun above the mid-plane (kpc).
    v_sun : tuple of 3 float or astropy.coordinates.CartesianDifferential, default=(11.1, 245.8, 7.8)
        Galactocentric Cartesian velocity of the Sun (km/s).

    Returns
    -------
    frame : astropy.coordinates.Galactocentric
        The frame with the Sun ``r0`` kpc from the Galactic centre, ``z_sun`` kpc above the
        mid-plane, moving at ``v_sun`` km/s.
    """
    if not isinstance(v_sun, coord.CartesianDifferential):
        v_sun = coord.CartesianDifferential(np.asarray(v_sun, dtype=float) * u.km / u.s)
    return coord.Galactocentric(
        galcen_distance=float(r0) * u.kpc, z_sun=float(z_sun) * u.kpc, galcen_v_sun=v_sun
    )


def icrs_to_galactocentric(ra, dec, distance, pmra, pmdec, radial_velocity, frame=None):
    """Convert heliocentric ICRS observables to Galactocentric Cartesian phase space.

    Parameters
    ----------
    ra, dec : array-like of shape (n_stars,)
        Right ascension and declination (deg).
    distance : array-like of shape (n_stars,)
        Heliocentric distance (kpc); must be positive.
    pmra, pmdec : array-like of shape (n_stars,)
        Proper motions (mas/yr); ``pmra`` includes the ``cos(dec)`` factor, as Gaia's.
    radial_velocity : array-like of shape (n_stars,)
        Heliocentric line-of-sight velocity (km/s).
    frame : astropy.coordinates.Galactocentric, optional
        Defaults to :func:`galactocentric_frame` ().

    Returns
    -------
    xyz : ndarray of shape (3, n_stars)
        Galactocentric position (kpc).
    vxyz : ndarray of shape (3, n_stars)
        Galactocentric velocity (km/s).
    """
    frame = galactocentric_frame() if frame is None else frame
    c = coord.SkyCoord(
        ra=np.asarray(ra, dtype=float) * u.deg,
        dec=np.asarray(dec, dtype=float) * u.deg,
        distance=np.asarray(distance, dtype=float) * u.kpc,
        pm_ra_cosdec=np.asarray(pmra, dtype=float) * u.mas / u.yr,
        pm_dec=np.asarray(pmdec, dtype=float) * u.mas / u.yr,
        radial_velocity=np.asarray(radial_velocity, dtype=float) * u.km / u.s,
        frame="icrs",
    )
    g = c.transform_to(frame)
    xyz = np.vstack([g.x.to_value(u.kpc), g.y.to_value(u.kpc), g.z.to_value(u.kpc)])
    vxyz = np.vstack(
        [g.v_x.to_value(u.km / u.s), g.v_y.to_value(u.km / u.s), g.v_z.to_value(u.km / u.s)]
    )
    return xyz, vxyz


def galactocentric_to_icrs(xyz, vxyz, frame=None):
    """Convert Galactocentric Cartesian phase space to heliocentric ICRS observables.

    Parameters
    ----------
    xyz : array-like of shape (3, n_stars)
        Galactocentric position (kpc).
    vxyz : array-like of shape (3, n_stars)
        Galactocentric velocity (km/s).
    frame : astropy.coordinates.Galactocentric, optional
        Defaults to :func:`galactocentric_frame` ().

    Returns
    -------
    obs : dict of ndarray
        ``ra``, ``dec`` (deg), ``l``, ``b`` (deg), ``distance`` (kpc), ``pmra``, ``pmdec`` (mas/yr)
        and ``radial_velocity`` (km/s).
    """
    frame = galactocentric_frame() if frame is None else frame
    xyz = np.asarray(xyz, dtype=float)
    vxyz = np.asarray(vxyz, dtype=float)
    g = coord.SkyCoord(
        x=xyz[0] * u.kpc, y=xyz[1] * u.kpc, z=xyz[2] * u.kpc,
        v_x=vxyz[0] * u.km / u.s, v_y=vxyz[1] * u.km / u.s, v_z=vxyz[2] * u.km / u.s,
        frame=frame,
    )
    c = g.transform_to(coord.ICRS())
    gal = c.transform_to(coord.Galactic())
    return {
        "ra": c.ra.to_value(u.deg),
        "dec": c.dec.to_value(u.deg),
        "l": gal.l.to_value(u.deg),
        "b": gal.b.to_value(u.deg),
        "distance": c.distance.to_value(u.kpc),
        "pmra": c.pm_ra_cosdec.to_value(u.mas / u.yr),
        "pmdec": c.pm_dec.to_value(u.mas / u.yr),
        "radial_velocity": c.radial_velocity.to_value(u.km / u.s),
    }


def cylindrical_from_cartesian(xyz, vxyz):
    """Galactocentric cylindrical coordinates in the paper's convention.

    Parameters
    ----------
    xyz : array-like of shape (3, n_stars)
        Position (kpc).
    vxyz : array-like of shape (3, n_stars)
        Velocity (km/s).

    Returns
    -------
    R : ndarray
        Cylindrical radius (kpc).
    phi : ndarray
        Azimuth ``arctan2(y, x)`` (rad), counter-clockwise, opposite to rotation; the Sun is at pi.
    v_R : ndarray
        Radial velocity ``(x v_x + y v_y) / R`` (km/s).
    v_phi : ndarray
        Azimuthal velocity ``(x v_y - y v_x) / R`` (km/s); negative for disk stars.
    L_z : ndarray
        ``x v_y - y v_x`` (kpc km/s); negative for disk stars.
    """
    x, y, _ = np.asarray(xyz, dtype=float)
    vx, vy, _ = np.asarray(vxyz, dtype=float)
    R = np.hypot(x, y)
    L_z = x * vy - y * vx
    with np.errstate(invalid="ignore", divide="ignore"):
        v_R = (x * vx + y * vy) / R
        v_phi = L_z / R
    return R, np.arctan2(y, x), v_R, v_phi, L_z
