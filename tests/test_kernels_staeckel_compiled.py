"""Tests of the compiled Staeckel fudge (sklearn_selfcal._kernels.staeckel_compiled) against
galpy's C code, the numpy fudge and the isochrone's exact actions."""

import astropy.units as u
import gala.potential as gp
import numpy as np
from astropy.constants import G
from galpy.actionAngle import actionAngleStaeckel
from gala.units import galactic

from sklearn_selfcal._kernels import staeckel_compiled as sc
from sklearn_selfcal._kernels import staeckel_integrals as si
from sklearn_selfcal._kernels.staeckel import GALPY_RO_KPC, GALPY_VO_KMS, galpy_potential

from _helpers import natural_stars, phi_of


def _inner_galaxy(n, seed=0):
    """Bulge, bar-region and halo-like points (natural units) with a focal distance each."""
    rng = np.random.default_rng(seed)
    ro, vo = GALPY_RO_KPC, GALPY_VO_KMS
    return (rng.uniform(0.5, 5, n) / ro, rng.normal(0, 0.5, n) / ro, rng.normal(0, 100, n) / vo,
            rng.normal(150, 60, n) / vo, rng.normal(0, 80, n) / vo, rng.uniform(0.3, 8, n) / ro)


def test_the_default_potential_is_compiled_and_equals_galpys(pot):
    params = sc.compiled_potential(pot)
    assert params is not None and params.shape == (6, 4)  # 3 Miyamoto-Nagai, 2 Hernquist, NFW
    R = np.geomspace(1e-3, 30, 50)
    z = np.linspace(-5, 5, 50)
    np.testing.assert_allclose(sc.potential(params, R, z), phi_of(pot)(R, z), rtol=1e-13)


def test_a_potential_without_closed_form_is_not_compiled():
    log = gp.LogarithmicPotential(v_c=200 * u.km / u.s, r_h=1.0, q1=1, q2=1, q3=0.9,
                                  units=galactic)
    assert sc.compiled_potential(galpy_potential(log)) is None


def test_compiled_fudge_reproduces_galpys_c_code_and_the_numpy_fudge(pot):
    params = sc.compiled_potential(pot)
    for R, z, v_R, v_T, v_z, delta in (natural_stars(300) + (np.random.default_rng(1).uniform(
            0.05, 0.6, 300),), _inner_galaxy(2000)):
        J_R, J_z = sc.actions(params, R, z, v_R, v_T, v_z, delta)
        jr, _, jz = actionAngleStaeckel(pot=pot, delta=0.45, c=True)(R, v_R, v_T, z, v_z,
                                                                     delta=delta)
        ok = jr < 9999  # galpy's failure value
        scale = np.fmax(jr[ok], jz[ok])
        # same integrals and turning points, both quadratures converged (32 nodes here, galpy's
        # own rule): measured (relative to the larger action) at most 1e-10 median, 4e-8 at p99,
        # 2.4e-7 worst; with the numpy fudge's 16 nodes 3e-5 worst
        for got, ref in ((J_R[ok], jr[ok]), (J_z[ok], jz[ok])):
            assert np.median(np.abs(got - ref) / scale) < 1e-9
            assert np.percentile(np.abs(got - ref) / scale, 99) < 1e-7
            assert np.max(np.abs(got - ref) / scale) < 1e-5
        nr, nz = si.actions(phi_of(pot), R, z, v_R, v_T, v_z, delta)
        close = np.abs(J_R - nr) <= 1e-6 * np.fmax(nr, nz)  # the numpy fudge: 16 nodes
        assert close.mean() > 0.99  # the rest: where g(u) - I3U has more than two roots


def test_the_turning_points_are_those_around_the_star_where_g_has_more_roots(pot):
    # bar-region points where g(u) - I3U has four roots (0.20, 0.59, 0.74, 1.18 for the first,
    # the star at u = 1.02): the numpy fudge, bracketing from the maximum of g, finds an orbit
    # that is not the star's (J_R 2.3x too large) and a bisection over [0, u] may; galpy's C
    # code and the compiled fudge step out from the star's own u
    R, z, v_R, v_T, v_z, delta = (a[[4889, 8542, 17955]] for a in _inner_galaxy(20000))
    params = sc.compiled_potential(pot)
    J_R, _ = sc.actions(params, R, z, v_R, v_T, v_z, delta)
    jr, _, _ = actionAngleStaeckel(pot=pot, delta=0.45, c=True)(R, v_R, v_T, z, v_z, delta=delta)
    nr, _ = si.actions(phi_of(pot), R, z, v_R, v_T, v_z, delta)
    assert abs(nr[0] / jr[0] - 1) > 0.5  # the case still has several roots
    np.testing.assert_allclose(J_R, jr, rtol=1e-6)


def test_compiled_fudge_recovers_the_isochrones_exact_actions():
    # spherical: the fudge is exact as delta -> 0 (error ~ delta^2; 2e-5 at 10 pc, see
    # test_kernels_staeckel); J_R = GM / sqrt(-2E) - (L + sqrt(L^2 + 4 GM b)) / 2, J_z = L - |L_z|
    M, b = 5e11, 1.0  # these stars bound
    pot = galpy_potential(gp.IsochronePotential(m=M, b=b, units=galactic))
    params = sc.compiled_potential(pot)
    assert params is not None
    ro, vo = GALPY_RO_KPC, GALPY_VO_KMS
    GM = (G * M * u.Msun).to_value(u.kpc * u.km**2 / u.s**2) / (ro * vo**2)
    R, z, v_R, v_T, v_z = natural_stars(300)
    J_R, J_z = sc.actions(params, R, z, v_R, v_T, v_z, 0.01 / ro)
    E = -GM / (b / ro + np.sqrt((b / ro) ** 2 + R**2 + z**2)) + 0.5 * (v_R**2 + v_T**2 + v_z**2)
    L = np.sqrt((R**2 + z**2) * v_T**2 + (R * v_z - z * v_R) ** 2)  # |r x v|
    exact_R = GM / np.sqrt(-2 * E) - 0.5 * (L + np.sqrt(L**2 + 4 * GM * b / ro))
    exact_z = L - np.abs(R * v_T)
    assert np.all(E < 0)
    # galpy's C code errs as much (4.5e-4 in J_R); J_z of nearly planar orbits relative to L, and
    # of nearly polar ones (|L_z| -> 0: measured 6e-3 at v_T = 1.5 km/s, galpy's C the same) left out
    assert np.max(np.abs(J_R / exact_R - 1)) < 5e-4
    polar = np.abs(v_T) < 0.05
    assert polar.sum() < 10 and np.max(np.abs(J_z - exact_z)[~polar] / L[~polar]) < 5e-4

