"""Tests of the orbit sampling (sklearn_selfcal._kernels.orbit_sampling): leapfrog points that keep
E and L_z, and the tabulated forces."""

import numpy as np
import pandas as pd
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


def test_companion_orbits_part_exponentially_only_on_chaotic_orbits(pot):
    # a bulge star of make_orbits on a sticky chaotic orbit (its actions stay steady for the
    # check's dozen radial periods, then wander: the companion started 8e-6 pc away ends ~1e4
    # times farther, 30 times farther than halfway) against a solar-disk star (regular: twice as
    # far at the end as halfway)
    from sklearn_selfcal._kernels.action_methods import _natural
    from sklearn_selfcal.coordinates import cylindrical_from_cartesian
    from sklearn_selfcal.datasets import make_orbits

    stars = pd.concat([make_orbits("bulge", 12, n_times=8, random_state=7).phase_space.iloc[[90]],
                       make_orbits("solar_disk", 1, n_times=1, random_state=7).phase_space])
    xyz, vxyz = stars[["x", "y", "z"]].to_numpy().T, stars[["v_x", "v_y", "v_z"]].to_numpy().T
    R, _, v_R, v_phi, _ = cylindrical_from_cartesian(xyz, vxyz)
    natural = _natural(R, xyz[2], v_R, v_phi, vxyz[2])
    _, _, _, growth = orbit_sampling.sample_orbits(pot, *natural, interval=0.5, n_min=24,
                                                   n_max=96, n_events=6)
    ratio = growth[1] / growth[0]
    assert ratio[1] < 4 and ratio[0] > 10


def test_interpolated_forces_match_the_potential(pot):
    table = orbit_sampling.force_table(pot)
    exact = orbit_sampling.potential_functions(pot)[1]
    rng = np.random.default_rng(5)
    x, y, z = rng.normal(0.0, 1.5, (3, 5000))
    a, b = orbit_sampling.interpolated_forces(table, x, y, z), np.array(exact(x, y, z))
    rel = np.linalg.norm(a - b, axis=0) / np.linalg.norm(b, axis=0)
    # bilinear on 1024 x 1024 asinh-spaced nodes: measured 1e-5 median, 1e-4 at worst
    assert np.median(rel) < 3e-5 and np.percentile(rel, 99) < 3e-4
    # the vertical force points back to the plane on both sides
    below = orbit_sampling.interpolated_forces(table, np.array([1.0]), np.zeros(1), np.array([-0.2]))
    above = orbit_sampling.interpolated_forces(table, np.array([1.0]), np.zeros(1), np.array([0.2]))
    assert below[2, 0] > 0 > above[2, 0] and below[2, 0] == -above[2, 0]
    far = orbit_sampling.interpolated_forces(table, np.array([80.0]), np.zeros(1), np.ones(1))
    assert np.isnan(far).all()  # beyond the table (640 kpc): NaN, never a clamped force


def test_radial_period_of_isochrone_orbits_is_recovered_and_does_not_drift():
    # Injection and recovery: in the isochrone (a regular potential) the radial period is
    # 2 pi amp / (-2 E)^1.5 exactly; the least-squares period over 6 pericentres of each half of
    # the orbit must find it, and the same in both halves (no drift: the orbits are regular).
    amp, b = 1.0, 0.3
    iso = IsochronePotential(amp=amp, b=b)
    rng = np.random.default_rng(8)
    n = 60
    R, z = rng.uniform(0.3, 1.5, n), rng.normal(0.0, 0.3, n)
    v_R, v_T, v_z = rng.normal(0, 0.3, n), rng.normal(0.6, 0.2, n), rng.normal(0, 0.3, n)
    E = iso(R, z, use_physical=False) + 0.5 * (v_R**2 + v_T**2 + v_z**2)
    keep = E < -0.2
    R, z, v_R, v_T, v_z, E = (a[keep] for a in (R, z, v_R, v_T, v_z, E))
    T_r = 2.0 * np.pi * amp / (-2.0 * E) ** 1.5
    _, n_points, periods, growth = orbit_sampling.sample_orbits(
        iso, R, z, v_R, v_T, v_z, interval=T_r / 4.0, n_min=8, n_max=96, n_events=6)
    assert np.all(np.isfinite(periods[0]))
    # the leapfrog's period error at ~125 steps per orbit and the linear interpolation of the
    # pericentre times: measured 3e-4 median; 1 % would be a wrong event count or interpolation
    np.testing.assert_allclose(periods[0, 0], T_r, rtol=1e-2)
    np.testing.assert_allclose(periods[0, 1], T_r, rtol=1e-2)
    drift = np.abs(periods[0, 0] / periods[0, 1] - 1)
    assert np.max(drift) < 0.01
    assert np.all(n_points >= 8)
    # neighbouring orbits in the isochrone part linearly in time: about twice as far apart within
    # 12 radial periods as within 6 (measured median 2.7; the chaos test's limit is a factor 10).
    # The exceptions (2 of 57, factors 10 and 60) are nearly radial orbits through the core, where
    # the leapfrog's own steps are not integrable: the test then errs on the side of "chaotic".
    ratio = growth[1] / growth[0]
    assert np.all(ratio > 1) and np.median(ratio) < 4 and np.mean(ratio < 10) > 0.9


def test_a_continued_integration_gives_the_bits_of_one_run_from_the_start(pot):
    # The chaos confirmation continues the check's integration where it stopped (``later``, then
    # ``resume``): its periods and companion distances must be those of the confirmation run from
    # the start (bit for bit: the same steps), for any subset of the stars in any order.
    R, z, v_R, v_T, v_z = natural_stars(120, seed=11)
    _, E_c, T_c = orbit_sampling.circular_period_table(pot)
    period = np.interp(phi_of(pot)(R, z) + 0.5 * (v_R**2 + v_T**2 + v_z**2), E_c, T_c)
    check = dict(interval=period / 4.0, n_min=24, n_max=96, n_events=6, t_max=40 * period)
    longer = dict(interval=period, n_min=2, n_max=162, n_events=24, t_max=160 * period)
    alone = orbit_sampling.sample_orbits(pot, R, z, v_R, v_T, v_z, **check)
    *first, state = orbit_sampling.sample_orbits(pot, R, z, v_R, v_T, v_z, **check,
                                                 later=(period, 24))
    for a, b in zip(alone, first):  # recording for a continuation changes nothing
        np.testing.assert_array_equal(a, b)
    fresh = orbit_sampling.sample_orbits(pot, R, z, v_R, v_T, v_z, **longer)
    rows = np.arange(R.size)[::-3]  # every third star, reversed
    sub = {k: (v[rows] if isinstance(v, np.ndarray) else v) for k, v in longer.items()}
    continued = orbit_sampling.sample_orbits(pot, R[rows], z[rows], v_R[rows], v_T[rows],
                                             v_z[rows], **sub,
                                             resume=tuple(a[rows] for a in state))
    np.testing.assert_array_equal(continued[2], fresh[2][..., rows])  # periods
    np.testing.assert_array_equal(continued[3], fresh[3][..., rows])  # companion distances
    assert np.isfinite(fresh[2]).mean() > 0.9 and np.isfinite(fresh[3]).all()
    # the continuation did run on past the check (24 periods per half, not 6)
    assert np.all(np.isnan(first[2]) | (first[2] != fresh[2]))
