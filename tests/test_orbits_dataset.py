"""Tests of sklearn_selfcal.datasets.make_orbits: populations, integration, observables."""

import astropy.units as u
import numpy as np
import pytest

from sklearn_selfcal.coordinates import icrs_to_galactocentric
from sklearn_selfcal.datasets import ORBIT_POPULATIONS, make_orbits
from sklearn_selfcal.potential import default_potential


@pytest.mark.parametrize("population", list(ORBIT_POPULATIONS))
def test_stars_start_in_their_population_on_bound_orbits(population):
    sample = make_orbits(population, 30, n_times=2, duration=0.01, random_state=0)
    start = sample.phase_space[sample.phase_space["time"] == 0]
    assert len(start) == 30 and sample.phase_space.shape[0] == 60
    xyz = start[["x", "y", "z"]].to_numpy().T
    vxyz = start[["v_x", "v_y", "v_z"]].to_numpy().T
    lo, hi = ORBIT_POPULATIONS[population]
    radius = np.sqrt(np.sum(xyz**2, axis=0)) if population == "halo" else np.hypot(xyz[0], xyz[1])
    assert np.all((radius >= lo) & (radius < hi))
    E = default_potential().energy(xyz * u.kpc).to_value(u.km**2 / u.s**2) + 0.5 * np.sum(vxyz**2, 0)
    assert np.all(E < 0)
    L_z = xyz[0] * vxyz[1] - xyz[1] * vxyz[0]
    if population.endswith("disk"):  # the disks rotate with L_z < 0 in astropy's frame
        assert np.mean(L_z < 0) > 0.9
    if population == "halo":  # no net rotation: both senses are common
        assert 0.2 < np.mean(L_z < 0) < 0.8


def test_orbits_conserve_energy_and_angular_momentum_and_are_reproducible():
    a = make_orbits("bulge", 5, n_times=6, duration=0.5, random_state=3)
    b = make_orbits("bulge", 5, n_times=6, duration=0.5, random_state=3)
    np.testing.assert_array_equal(a.phase_space.to_numpy(), b.phase_space.to_numpy())
    ps = a.phase_space
    xyz, vxyz = ps[["x", "y", "z"]].to_numpy().T, ps[["v_x", "v_y", "v_z"]].to_numpy().T
    E = (default_potential().energy(xyz * u.kpc).to_value(u.km**2 / u.s**2)
         + 0.5 * np.sum(vxyz**2, axis=0)).reshape(5, 6)
    L_z = (xyz[0] * vxyz[1] - xyz[1] * vxyz[0]).reshape(5, 6)
    # galpy's DOP853: measured 1e-11 relative on these bulge orbits (through the centre)
    np.testing.assert_allclose(E, np.broadcast_to(E[:, :1], E.shape), rtol=1e-8)
    np.testing.assert_allclose(L_z, np.broadcast_to(L_z[:, :1], L_z.shape), rtol=1e-8)
    # the stars moved, along their orbits (6 distinct points)
    assert np.all(np.ptp(xyz[0].reshape(5, 6), axis=1) > 0.05)
    assert not np.array_equal(ps.to_numpy(), make_orbits("bulge", 5, n_times=6, duration=0.5,
                                                          random_state=4).phase_space.to_numpy())


def test_observables_give_back_the_phase_space():
    ps = make_orbits("solar_disk", 4, n_times=3, duration=0.2, random_state=1).phase_space
    xyz, vxyz = icrs_to_galactocentric(ps["ra"].to_numpy(), ps["dec"].to_numpy(),
                                       ps["distance"].to_numpy(), ps["pmra"].to_numpy(),
                                       ps["pmdec"].to_numpy(), ps["radial_velocity"].to_numpy())
    np.testing.assert_allclose(xyz.T, ps[["x", "y", "z"]].to_numpy(), atol=1e-9)
    np.testing.assert_allclose(vxyz.T, ps[["v_x", "v_y", "v_z"]].to_numpy(), atol=1e-7)
    np.testing.assert_allclose(ps["parallax"], 1.0 / ps["distance"])


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="population"):
        make_orbits("thick_disk")
    with pytest.raises(ValueError, match="positive"):
        make_orbits("halo", 0)
