"""Tests of the accuracy table (sklearn_selfcal._kernels.accuracy_table): the tabulated bound on
how far the grid's actions vary along orbits, which lets disk stars skip the orbit check."""

import joblib
import numpy as np
import pytest

from sklearn_selfcal._kernels import accuracy_table
from sklearn_selfcal._kernels.action_methods import _natural
from sklearn_selfcal._kernels.orbit_sampling import force_table
from sklearn_selfcal._kernels.staeckel_grid import cached_tables, grid_actions
from sklearn_selfcal.coordinates import cylindrical_from_cartesian
from sklearn_selfcal.datasets import make_orbits
from sklearn_selfcal.potential import default_potential


@pytest.fixture(scope="module")
def table(pot):
    potential = default_potential()
    _, grid = cached_tables(potential, joblib.hash(potential))
    return accuracy_table.build_accuracy_table(pot, grid, force_table(pot)), grid


@pytest.mark.parametrize("population", ["solar_disk", "outer_disk"])
def test_bound_covers_the_variation_along_integrated_disk_orbits(pot, table, population):
    # Injection and recovery: disk orbits integrated for 2 Gyr (galpy's DOP853); the grid's larger
    # action at each of their 16 points deviates from the orbit's mean by some amount, and the
    # tabulated bound at the star's (E, L_z) must not be below it (it is the maximum over launch
    # angles of the same deviation on the orbits of the four nodes around the star).
    table, grid = table
    orbits = make_orbits(population, 25, n_times=16, duration=2.0, random_state=3).phase_space
    xyz, vxyz = orbits[["x", "y", "z"]].to_numpy().T, orbits[["v_x", "v_y", "v_z"]].to_numpy().T
    R, _, v_R, v_phi, _ = cylindrical_from_cartesian(xyz, vxyz)
    stars = _natural(R, xyz[2], v_R, v_phi, vxyz[2])
    J_R, J_z, _ = grid_actions(grid, pot, *stars)
    J_R, J_z = J_R.reshape(25, 16), J_z.reshape(25, 16)
    mean_R, mean_z = J_R.mean(axis=1, keepdims=True), J_z.mean(axis=1, keepdims=True)
    deviation = np.fmax(np.abs(J_R - mean_R), np.abs(J_z - mean_z)) / np.fmax(mean_R, mean_z)
    bound = accuracy_table.accuracy_bound(table, pot, *stars).reshape(25, 16)
    assert np.all(np.isfinite(bound))
    assert np.all(bound >= deviation)
    # and the bound is useful: most disk stars are accurate enough to skip the integration
    # (below the default threshold of 0.05; measured ~90 % solar, ~99 % outer disk)
    assert np.mean(bound < 0.05) > 0.75


def test_bound_is_nan_outside_the_table_and_large_in_the_bulge(pot, table):
    table, _ = table
    # an angular momentum beyond the table's (the circular orbit at 80 kpc): no bound
    R, z, v_R, v_T, v_z = (np.array([v]) for v in (12.0, 0.0, 0.0, 1.0, 0.0))
    assert np.isnan(accuracy_table.accuracy_bound(table, pot, R, z, v_R, v_T, v_z))[0]
    # low angular momentum orbits of the inner Galaxy, where the fudge fails: never skipped
    R, z, v_R, v_T, v_z = (np.array([v]) for v in (0.15, 0.05, 0.3, 0.05, 0.2))
    assert accuracy_table.accuracy_bound(table, pot, R, z, v_R, v_T, v_z)[0] > 0.05
