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
    # the bound of each point with its own actions (the angles around its share of vertical
    # action) and without them (every angle)
    bound = accuracy_table.accuracy_bound(table, pot, *stars, J_R.ravel(), J_z.ravel())
    bound = bound.reshape(25, 16)
    every = accuracy_table.accuracy_bound(table, pot, *stars).reshape(25, 16)
    assert np.all(np.isfinite(bound))
    assert np.all(bound >= deviation)
    assert np.all(bound <= every) and np.any(bound < every)
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


def test_bound_takes_the_angles_around_the_stars_share_of_vertical_action(pot, table):
    # A table whose deviation grows with the launch angle (0.01 per angle) and whose orbits' share
    # J_z / (J_R + J_z) is angle / 10 at every node: a star of share 0.25 lies between angles 2
    # and 3 and is bounded by angles 1-4 (one more on either side): 0.05. Without its actions, or
    # where a node's shares do not increase with the angle, every angle counts: 0.08.
    import dataclasses

    table, _ = table
    n1, n2, n_angles = table.bound.shape
    assert n_angles == 8 and accuracy_table.SIDE_ANGLES == 1
    angle = np.arange(n_angles)
    synthetic = dataclasses.replace(
        table, bound=np.broadcast_to(0.01 * (angle + 1), (n1, n2, n_angles)),
        share=np.broadcast_to(angle / 10.0, (n1, n2, n_angles)))
    stars = [np.array([v, v]) for v in (1.0, 0.05, 0.1, 0.9, 0.1)]  # a disk star, twice
    J_R, J_z = np.array([0.75, 0.99]), np.array([0.25, 0.01])  # shares 0.25 and 0.01
    bound = accuracy_table.accuracy_bound(synthetic, pot, *stars, J_R, J_z)
    np.testing.assert_allclose(bound, [0.05, 0.03])  # angles 1-4; 0-2 (below angle 1's share)
    np.testing.assert_allclose(accuracy_table.accuracy_bound(synthetic, pot, *stars), 0.08)
    shuffled = dataclasses.replace(synthetic, share=synthetic.share[..., ::-1])
    np.testing.assert_allclose(accuracy_table.accuracy_bound(shuffled, pot, *stars, J_R, J_z), 0.08)
