"""Tests of the focal-distance and action tables (sklearn_selfcal._kernels.staeckel_grid)."""

import numpy as np
import pytest
from galpy.actionAngle import actionAngleStaeckel

from sklearn_selfcal._kernels import orbit_sampling, staeckel_grid
from sklearn_selfcal._kernels.staeckel import GALPY_RO_KPC

from _helpers import natural_stars, phi_of


def test_focal_distances_are_constant_along_an_orbit_and_sensible(pot, tables):
    focal, _ = tables
    R, z, v_R, v_T, v_z = natural_stars(50, seed=6)
    points = orbit_sampling.orbit_points(pot, R, z, v_R, v_T, v_z, 2.0, 5)
    phi = phi_of(pot)
    P_R, P_z, P_vR, P_vT, P_vz = points.transpose(1, 0, 2)
    E = phi(P_R, P_z) + 0.5 * (P_vR**2 + P_vT**2 + P_vz**2)
    delta = staeckel_grid.focal_distance(focal, E, P_R * P_vT)
    np.testing.assert_allclose(delta, np.broadcast_to(delta[0], delta.shape), rtol=1e-10)
    # the Sun's orbit: the fixed 3.8 kpc is in the flat optimum 2.5-4.5 kpc of estimate_delta
    sun = staeckel_grid.focal_distance(focal, phi(np.array([1.02]), np.zeros(1)) + 0.5 * 1.1**2,
                                       np.array([1.02 * 1.1])) * GALPY_RO_KPC
    assert 2.5 < sun[0] < 4.5
    constant = staeckel_grid.build_focal_table(pot, n1=4, n2=4, constant=0.3)
    np.testing.assert_array_equal(staeckel_grid.focal_distance(constant, E, P_R * P_vT), 0.3)


def test_action_grid_reproduces_the_direct_fudge(pot, tables):
    focal, grid = tables
    R, z, v_R, v_T, v_z = natural_stars(2000, seed=7)
    J_R, J_z, delta = staeckel_grid.grid_actions(grid, pot, R, z, v_R, v_T, v_z)
    jr, _, jz = actionAngleStaeckel(pot=pot, delta=0.45, c=True)(R, v_R, v_T, z, v_z, delta=delta)
    inside = np.isfinite(J_R)
    assert inside.mean() > 0.95
    rel_R, rel_z = np.abs(J_R[inside] / jr[inside] - 1), np.abs(J_z[inside] / jz[inside] - 1)
    # the goal: a median error <= 0.1 %; measured 1e-5 (J_R) and 1e-4 (J_z) on this mix
    assert np.median(rel_R) < 1e-3 and np.median(rel_z) < 1e-3
    assert np.percentile(rel_R, 90) < 1e-2 and np.percentile(rel_z, 90) < 1e-2
    # far beyond the tables (energy above the potential at 160 kpc): NaN, computed directly
    J_far = staeckel_grid.grid_actions(grid, pot, np.array([1.0]), np.zeros(1), np.array([2.0]),
                                       np.array([1.0]), np.zeros(1))[0]
    assert np.isnan(J_far[0])


def test_tables_asked_for_by_two_threads_at_once_are_built_once(monkeypatch):
    # the run builds the orbits step's tables in a thread while the parallax model fits; the
    # orbits step asking for them meanwhile waits for that build instead of starting its own
    import threading
    import time

    from sklearn_selfcal.potential import default_potential

    builds = []

    def slow_build(pot, constant=None):
        builds.append(constant)
        time.sleep(0.3)  # a build long enough for the second caller to arrive during it
        return object()

    monkeypatch.setattr(staeckel_grid, "build_focal_table", slow_build)
    name = "a potential key no other test uses"
    out = [None, None]

    def ask(k):
        out[k] = staeckel_grid.cached_tables(default_potential(), name, grid=False)

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and out[0][0] is out[1][0]


@pytest.mark.parametrize("shape", [(12, 9), (10, 8, 7), (9, 8, 7, 6)])
def test_compiled_spline_equals_scipys(shape):
    # The grid's interpolation is compiled (the check evaluates it at every point of every
    # integrated orbit); it must be scipy's cubic B-spline of the padded table with edges repeated,
    # to rounding (1e-13 of the values' scale: the same sums in another order), everywhere the
    # callers go: inside, on the nodes, at the edges and beyond them (clipped by the callers, but
    # the taps of an edge point reach the ghost nodes, and past those scipy repeats the edge), and
    # NaN where the point is NaN.
    from scipy import ndimage

    rng = np.random.default_rng(3)
    coefficients = staeckel_grid._spline(rng.normal(size=shape))
    points = np.array([rng.uniform(-4.5, n + 3.5, 500) for n in shape])
    points[:, :3] = np.array([[0.0, n - 1.0, 2.0] for n in shape])
    expected = ndimage.map_coordinates(coefficients, points + staeckel_grid._PAD, order=3,
                                       prefilter=False, mode="nearest")
    got = staeckel_grid._interpolate(coefficients, points)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-13 * np.abs(expected).max())
    points[0, 5] = np.nan
    assert np.isnan(staeckel_grid._interpolate(coefficients, points)[5])
