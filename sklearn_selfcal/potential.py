"""The Galactic potential used for orbits and actions."""

from __future__ import annotations

import warnings

import gala.potential as gp
import numpy as np

__all__ = ["check_axisymmetric", "default_potential"]


def default_potential():
    """Return gala's ``MilkyWayPotential2022``, the model fitted to the Eilers et al. (2019) curve.

    Newer gala versions name it ``MilkyWayPotential(version="v2")``; older ones only know the
    ``MilkyWayPotential2022`` class. Both are the same axisymmetric model (disk, bulge, nucleus,
    NFW halo) in gala's ``galactic`` unit system (kpc, Myr, Msun).

    Returns
    -------
    potential : gala.potential.PotentialBase
        A new instance of the composite potential (disk, bulge, nucleus and halo).
    """
    try:
        return gp.MilkyWayPotential(version="v2")
    except TypeError:  # gala < 1.9 has no versioned class
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return gp.MilkyWayPotential2022()


def check_axisymmetric(potential, *, rtol=1e-8):
    """Raise a ``ValueError`` unless ``potential`` is a physical, axisymmetric gala potential.

    The potential is evaluated on rings (R = 0.5 to 30 kpc, z = -3 to 3 kpc) at 8 azimuths each;
    it is axisymmetric about the z axis if every ring has the same value at all azimuths to
    relative precision ``rtol``.

    Parameters
    ----------
    potential : gala.potential.PotentialBase
        The potential to check (a single component or a ``CompositePotential``).
    rtol : float, default=1e-8
        Allowed relative variation with azimuth.

    Returns
    -------
    potential : gala.potential.PotentialBase
        The input, unchanged.

    Raises
    ------
    TypeError
        If ``potential`` is not a gala potential or has no physical unit system.
    ValueError
        If it is not 3-dimensional or varies with azimuth.
    """
    import astropy.units as u

    if not isinstance(potential, gp.PotentialBase):
        raise TypeError(
            f"potential must be a gala.potential.PotentialBase (e.g. gala.potential."
            f"MilkyWayPotential2022()), got {type(potential).__name__}"
        )
    if getattr(potential, "ndim", 3) != 3:
        raise ValueError(f"potential must be 3-dimensional, got ndim={potential.ndim}")
    from gala.units import DimensionlessUnitSystem

    if isinstance(potential.units, DimensionlessUnitSystem):
        raise TypeError("potential must have a physical unit system (e.g. gala.units.galactic)")
    R, z, phi = np.meshgrid([0.5, 2.0, 5.0, 8.0, 15.0, 30.0], [-3.0, -0.5, 0.0, 0.2, 1.0, 3.0],
                            np.linspace(0.0, 2.0 * np.pi, 8, endpoint=False), indexing="ij")
    xyz = np.array([R * np.cos(phi), R * np.sin(phi), z]).reshape(3, -1)
    values = potential.energy(xyz * u.kpc).value.reshape(phi.shape)
    scale = np.abs(values).max(axis=-1, keepdims=True)
    variation = np.abs(values - values[..., :1]) / np.where(scale > 0, scale, 1.0)
    if not np.all(np.isfinite(values)) or variation.max() > rtol:
        worst = np.unravel_index(np.nanargmax(variation), variation.shape)
        raise ValueError(
            "actions need an axisymmetric potential, but this potential varies with azimuth: "
            f"relative variation {np.nanmax(variation):.3g} on the ring R = {R[worst]:.1f} kpc, "
            f"z = {z[worst]:.1f} kpc"
        )
    return potential

