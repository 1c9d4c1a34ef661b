"""The per-star compiled loops give the same bits on any number of threads."""

import numpy as np
import pytest

from sklearn_selfcal._kernels import orbit_sampling, staeckel_compiled, threads
from sklearn_selfcal._kernels.staeckel import GALPY_RO_KPC, GALPY_VO_KMS, galpy_potential
from sklearn_selfcal.potential import default_potential


def _stars(n, seed=0):
    rng = np.random.default_rng(seed)
    ro, vo = GALPY_RO_KPC, GALPY_VO_KMS
    return (rng.uniform(0.5, 12, n) / ro, rng.normal(0, 0.5, n) / ro, rng.normal(0, 60, n) / vo,
            rng.normal(180, 60, n) / vo, rng.normal(0, 50, n) / vo)


@pytest.mark.parametrize("n_threads", [2, 3])
def test_orbits_and_compiled_actions_do_not_depend_on_the_threads(monkeypatch, n_threads):
    pot = galpy_potential(default_potential())
    params = staeckel_compiled.compiled_potential(pot)
    # 1000 stars: blocks of 333-500 (above MIN_BLOCK), uneven with 3 threads
    R, z, v_R, v_T, v_z = _stars(1000)
    delta = np.linspace(0.3, 8.0, R.size) / GALPY_RO_KPC
    kwargs = dict(interval=0.2, n_min=8, n_max=12, n_events=1, t_max=40.0)
    results = {}
    for n in (1, n_threads):
        monkeypatch.setattr(threads, "star_threads", lambda n=n: n)
        orbits = orbit_sampling.sample_orbits(pot, R, z, v_R, v_T, v_z, **kwargs)
        actions = staeckel_compiled.actions(params, R, z, v_R, v_T, v_z, delta)
        results[n] = (*orbits, *actions)
    for one, many in zip(results[1], results[n_threads]):
        np.testing.assert_array_equal(one, many)
    assert np.isfinite(results[1][-1]).mean() > 0.9  # the comparison is of actual actions


@pytest.mark.parametrize("n_threads", [2, 3])
def test_grid_interpolation_does_not_depend_on_the_threads(monkeypatch, n_threads):
    from sklearn_selfcal._kernels import staeckel_grid

    rng = np.random.default_rng(1)
    coefficients = rng.normal(size=(30, 30, 30))
    coordinates = rng.uniform(0, 20, size=(3, 50, 41))  # any shape of points, as the callers pass
    out = {}
    for n in (1, n_threads):
        monkeypatch.setattr(threads, "star_threads", lambda n=n: n)
        out[n] = staeckel_grid._interpolate(coefficients, coordinates)
    assert out[1].shape == (50, 41)
    np.testing.assert_array_equal(out[1], out[n_threads])


def test_star_threads_follows_the_openmp_limits_after_the_runtimes_are_found():
    # The OpenMP runtimes are found once (scanning the process's libraries costs ~7 ms a call);
    # their thread counts are asked every time, so that threadpool_limits still applies.
    from threadpoolctl import threadpool_limits

    galpy_potential(default_potential())  # galpy's OpenMP runtime loaded
    first = threads.star_threads()
    assert threads._openmp_controllers()  # the runtimes are cached ...
    with threadpool_limits(1, user_api="openmp"):
        assert threads.star_threads() == 1  # ... and their current limit is read
    assert threads.star_threads() == first
    if threads.usable_cpus() > 1:
        with threadpool_limits(2, user_api="openmp"):
            assert threads.star_threads() == 2
