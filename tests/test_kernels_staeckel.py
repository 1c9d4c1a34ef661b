"""Tests of the Staeckel-fudge wrapper around galpy's C code (sklearn_selfcal._kernels.staeckel):
physical units in and out, the orbital energy, the focal distance of the default potential."""

import astropy.units as u
import gala.potential as gp
import numpy as np
from astropy.constants import G
from gala.units import galactic

from sklearn_selfcal._kernels.staeckel import (DEFAULT_DELTA_KPC, estimate_delta, make_staeckel,
                                               orbital_energy, staeckel_actions)
from sklearn_selfcal.potential import default_potential


def test_default_delta_is_within_the_range_that_conserves_actions_best():
    # estimate_delta minimises the spread of J_R, J_z along 24 reference disk orbits; for this potential
    # the criterion is flat from ~2.5 to ~4.5 kpc, and the default 3.8 kpc (chosen against o2gf) is in it
    delta = estimate_delta(default_potential())
    assert 2.5 <= delta <= 4.5
    assert 2.5 <= DEFAULT_DELTA_KPC <= 4.5


def test_actions_and_energy_in_physical_units_equal_the_isochrones_exact_ones():
    # The isochrone's energy and actions are known in closed form (Binney & Tremaine, eq. 3.226):
    # Phi = -GM / (b + sqrt(b^2 + r^2)), J_R = GM / sqrt(-2E) - (L + sqrt(L^2 + 4 GM b)) / 2 and,
    # the potential being spherical, J_z = L - |L_z|.
    M, b = 1e11, 1.0  # Msun, kpc
    iso = gp.IsochronePotential(m=M, b=b, units=galactic)
    GM = (G * M * u.Msun).to_value(u.kpc * u.km**2 / u.s**2)
    rng = np.random.default_rng(0)
    n = 200
    R, z, phi = rng.uniform(2, 15, n), rng.normal(0, 1, n), rng.uniform(0, 2 * np.pi, n)
    v_R, v_phi, v_z = rng.normal(0, 40, n), -rng.normal(180, 40, n), rng.normal(0, 30, n)
    xyz = np.array([R * np.cos(phi), R * np.sin(phi), z])
    vxyz = np.array([v_R * np.cos(phi) - v_phi * np.sin(phi),
                     v_R * np.sin(phi) + v_phi * np.cos(phi), v_z])
    E = -GM / (b + np.sqrt(b**2 + R**2 + z**2)) + 0.5 * (v_R**2 + v_phi**2 + v_z**2)
    np.testing.assert_allclose(orbital_energy(iso, xyz, vxyz), E, rtol=1e-12)  # km^2/s^2
    L = np.linalg.norm(np.cross(xyz.T, vxyz.T), axis=1)
    J_R = GM / np.sqrt(-2 * E) - 0.5 * (L + np.sqrt(L**2 + 4 * GM * b))
    J_z = L - np.abs(R * v_phi)
    # A spherical potential is separable in the delta -> 0 limit of the fudge's coordinates; the
    # error falls as delta^2: measured 2e-5 (J_R) and 7e-5 (J_z) at worst at delta = 10 pc, 2e-3
    # and 7e-3 at 100 pc -- a unit slip (kpc for natural units, ro for vo) is far outside 5e-4.
    delta = 0.01  # kpc
    finder = make_staeckel(iso, delta=delta)
    for per_star in (None, np.full(n, delta)):
        got_R, got_z = staeckel_actions(finder, R, z, v_R, v_phi, v_z, delta=per_star)
        assert np.max(np.abs(got_R / J_R - 1)) < 5e-4 and np.max(np.abs(got_z / J_z - 1)) < 5e-4
