"""Tests of the paper's Galactocentric frame and the coordinate conversions (sklearn_selfcal.coordinates)."""

import astropy.coordinates as coord
import astropy.units as u
import numpy as np
import pytest

from sklearn_selfcal.coordinates import (
    R0_KPC,
    V_SUN_KMS,
    Z_SUN_KPC,
    cylindrical_from_cartesian,
    galactocentric_frame,
    galactocentric_to_icrs,
    icrs_to_galactocentric,
)


def random_observables(n=500, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "ra": rng.uniform(0, 360, n),
        "dec": np.degrees(np.arcsin(rng.uniform(-1, 1, n))),
        "distance": rng.uniform(0.1, 20, n),
        "pmra": rng.normal(0, 10, n),
        "pmdec": rng.normal(0, 10, n),
        "radial_velocity": rng.normal(0, 100, n),
    }


def test_frame_defaults_are_the_papers():
    frame = galactocentric_frame()
    assert frame.galcen_distance.to_value(u.kpc) == R0_KPC == 8.178
    assert frame.z_sun.to_value(u.kpc) == Z_SUN_KPC == 0.025
    np.testing.assert_array_equal(frame.galcen_v_sun.xyz.to_value(u.km / u.s), [11.1, 245.8, 7.8])
    assert V_SUN_KMS == (11.1, 245.8, 7.8)


def test_frame_accepts_cartesian_differential():
    v = coord.CartesianDifferential([10.0, 240.0, 7.0] * u.km / u.s)
    frame = galactocentric_frame(r0=8.0, z_sun=0.02, v_sun=v)
    np.testing.assert_array_equal(frame.galcen_v_sun.xyz.to_value(u.km / u.s), [10.0, 240.0, 7.0])
    assert frame.galcen_distance.to_value(u.kpc) == 8.0


def test_round_trip_icrs_galactocentric_icrs():
    obs = random_observables()
    xyz, vxyz = icrs_to_galactocentric(**obs)
    back = galactocentric_to_icrs(xyz, vxyz)
    # double precision through two rotations and a translation: errors ~1e-12 relative
    for key, atol in [("dec", 1e-9), ("distance", 1e-10), ("pmra", 1e-9), ("pmdec", 1e-9),
                      ("radial_velocity", 1e-8)]:
        np.testing.assert_allclose(back[key], obs[key], rtol=0, atol=atol, err_msg=key)
    dra = (back["ra"] - obs["ra"] + 180.0) % 360.0 - 180.0
    assert np.max(np.abs(dra)) < 1e-9


def test_round_trip_galactocentric_icrs_galactocentric():
    rng = np.random.default_rng(1)
    xyz = rng.normal(0, 8, (3, 300))
    vxyz = rng.normal(0, 150, (3, 300))
    obs = galactocentric_to_icrs(xyz, vxyz)
    xyz2, vxyz2 = icrs_to_galactocentric(obs["ra"], obs["dec"], obs["distance"], obs["pmra"],
                                         obs["pmdec"], obs["radial_velocity"])
    np.testing.assert_allclose(xyz2, xyz, atol=1e-10)
    np.testing.assert_allclose(vxyz2, vxyz, atol=1e-8)


def test_a_star_at_the_sun_has_the_suns_phase_space():
    # 1 micro-kpc from the Sun, at rest relative to it
    xyz, vxyz = icrs_to_galactocentric([123.0], [45.0], [1e-6], [0.0], [0.0], [0.0])
    # astropy tilts the frame so that the Sun is at height z_sun, distance R0 from the centre
    expected_x = -np.sqrt(R0_KPC**2 - Z_SUN_KPC**2)
    np.testing.assert_allclose(xyz[:, 0], [expected_x, 0.0, Z_SUN_KPC], atol=2e-6)
    np.testing.assert_allclose(vxyz[:, 0], V_SUN_KMS, atol=1e-9)
    _R, phi, _v_R, v_phi, L_z = cylindrical_from_cartesian(xyz, vxyz)
    assert phi[0] == pytest.approx(np.pi, abs=1e-6)  # the Sun is at phi = pi
    assert L_z[0] < 0 and v_phi[0] < 0  # disk rotation has negative L_z in this frame


def test_cylindrical_conventions():
    rng = np.random.default_rng(2)
    xyz = rng.normal(0, 8, (3, 100))
    vxyz = rng.normal(0, 150, (3, 100))
    R, phi, v_R, v_phi, L_z = cylindrical_from_cartesian(xyz, vxyz)
    x, y, _ = xyz
    vx, vy, _ = vxyz
    np.testing.assert_array_equal(L_z, x * vy - y * vx)
    np.testing.assert_allclose(R, np.hypot(x, y))
    np.testing.assert_allclose(phi, np.arctan2(y, x))
    np.testing.assert_allclose(v_phi * R, L_z)
    # velocity magnitude in the plane is preserved by the rotation to (v_R, v_phi)
    np.testing.assert_allclose(v_R**2 + v_phi**2, vx**2 + vy**2)
    # v_R is the projection on the unit radial vector
    np.testing.assert_allclose(v_R, (x * vx + y * vy) / R)
