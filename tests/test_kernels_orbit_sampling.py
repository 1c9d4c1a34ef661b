"""Tests of the orbit sampling (sklearn_selfcal._kernels.orbit_sampling): leapfrog points that keep
E and L_z, and the tabulated forces."""

import numpy as np
from galpy.potential import IsochronePotential

from sklearn_selfcal._kernels import orbit_sampling

from _helpers import natural_stars, phi_of


def test_orbit_points_keep_energy_and_angular_momentum_exactly(pot):
    R, z, v_R, v_T, v_z = natural_stars(200, seed=2)
    points = orbit_sampling.orbit_points(pot, R, z, v_R, v_T, v_z, 3.0, 8)
    phi = phi_of(pot)
    E0 = phi(R, z) + 0.5 * (v_R**2 + v_T**2 + v_z**2)
    P_R, P_z, P_vR, P_vT, P_vz = points.transpose(1, 0, 2)
    E = phi(P_R, P_z) + 0.5 * (P_vR**2 + P_vT**2 + P_vz**2)
    rel = np.abs(E / E0 - 1)
    # exact, except at the rare point the leapfrog left a hair outside the zero-velocity curve
    # near a turning point (no meridional velocity left to rescale; 2 of 1600 here, 3e-5 off)
    assert np.mean(rel < 1e-12) > 0.99 and rel.max() < 1e-4
    np.testing.assert_allclose(P_R * P_vT, np.broadcast_to(R * v_T, P_R.shape), rtol=1e-12)
    np.testing.assert_array_equal(points[0], np.array([R, z, v_R, v_T, v_z]))
    assert np.all(np.ptp(P_R, axis=0) > 0)  # the stars moved


def test_orbit_points_lie_on_the_orbit_in_a_spherical_potential():
    # In the isochrone, |L| is conserved: E and L_z are restored exactly, so the conservation of
    # the total angular momentum measures the integration error alone (the third integral).
    iso = IsochronePotential(amp=1.0, b=0.3)
    rng = np.random.default_rng(3)
    n = 100
    R, z = rng.uniform(0.3, 2.0, n), rng.normal(0.0, 0.5, n)
    v_R, v_T, v_z = rng.normal(0, 0.3, n), rng.normal(0.5, 0.3, n), rng.normal(0, 0.3, n)
    bound = iso(R, z, use_physical=False) + 0.5 * (v_R**2 + v_T**2 + v_z**2) < 0
    R, z, v_R, v_T, v_z = (a[bound] for a in (R, z, v_R, v_T, v_z))
    points = orbit_sampling.orbit_points(iso, R, z, v_R, v_T, v_z, 3.0, 8, eta=0.07)
    P_R, P_z, P_vR, P_vT, P_vz = points.transpose(1, 0, 2)
    L2 = (P_R * P_vT) ** 2 + (P_R * P_vz - P_z * P_vR) ** 2 + (P_z * P_vT) ** 2  # |r x v|^2
    rel = np.abs(np.sqrt(L2 / L2[0]) - 1)
    # leapfrog at eta = 0.07 (~90 steps per period): measured 1e-4 median, 2e-3 at the 95th
    # percentile (nearly radial orbits, whose small L changes most in relative terms)
    assert np.median(rel) < 1e-3 and np.percentile(rel, 95) < 1e-2


def test_orbit_points_do_not_depend_on_the_batch(pot):
    R, z, v_R, v_T, v_z = natural_stars(60, seed=4)
    full = orbit_sampling.orbit_points(pot, R, z, v_R, v_T, v_z, 3.0, 8)
    order = np.random.default_rng(0).permutation(60)[:25]
    part = orbit_sampling.orbit_points(pot, R[order], z[order], v_R[order], v_T[order],
                                       v_z[order], 3.0, 8)
    np.testing.assert_array_equal(part, full[:, :, order])


def test_tabulated_forces_match_the_potential(pot):
    forces = orbit_sampling.tabulated_forces(orbit_sampling.force_table(pot))
    exact = orbit_sampling.potential_functions(pot)[1]
    rng = np.random.default_rng(5)
    x, y, z = rng.normal(0.0, 1.5, (3, 5000))
    a, b = np.array(forces(x, y, z)), np.array(exact(x, y, z))
    rel = np.linalg.norm(a - b, axis=0) / np.linalg.norm(b, axis=0)
    # bilinear on 1024 x 1024 asinh-spaced nodes: measured 1e-5 median, 1e-4 at worst
    assert np.median(rel) < 3e-5 and np.percentile(rel, 99) < 3e-4
    far = np.array([[80.0], [0.0], [1.0]])  # beyond the table (640 kpc): computed exactly
    np.testing.assert_allclose(np.array(forces(*far)), np.array(exact(*far)), rtol=1e-12)
