"""Tests of the random draws of the Monte Carlo error propagation
(sklearn_selfcal._kernels.sampling): scikit-learn's random_state conventions and Gaussian vectors
with a covariance per row."""

import numpy as np
import pytest

from sklearn_selfcal._kernels import sampling


def test_as_generator_follows_scikit_learns_random_state_conventions():
    generator = np.random.default_rng(0)
    assert sampling.as_generator(generator) is generator          # used as is, not re-seeded
    np.testing.assert_array_equal(sampling.as_generator(7).random(3),
                                  sampling.as_generator(7).random(3))
    assert sampling.as_generator(np.int64(7)).random() == sampling.as_generator(7).random()
    assert sampling.as_generator(7).random() != sampling.as_generator(8).random()
    assert isinstance(sampling.as_generator(None), np.random.Generator)
    # a RandomState seeds a new Generator from one of its draws: reproducible from the
    # RandomState's seed, and two calls with one RandomState give two different streams
    state = np.random.RandomState(3)
    first, second = (sampling.as_generator(state).random() for _ in range(2))
    assert first != second
    assert sampling.as_generator(np.random.RandomState(3)).random() == first
    with pytest.raises(ValueError, match="random_state"):
        sampling.as_generator(1.5)


def test_gaussian_draws_have_each_rows_mean_and_covariance_even_when_singular():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(3, 3))
    full = A @ A.T + 0.1 * np.eye(3)                 # correlated, positive definite
    v = np.array([1.0, -2.0, 0.5])
    singular = np.outer(v, v) - 1e-17 * np.eye(3)    # rank 1, a rounding-negative eigenvalue
    n = 20000                                        # draws per law
    mean = np.tile([[1.0, -3.0, 20.0]], (2 * n, 1))
    cov = np.concatenate([np.broadcast_to(full, (n, 3, 3)), np.broadcast_to(singular, (n, 3, 3))])
    draws = sampling.gaussian_draws(mean, cov, np.random.default_rng(1))
    assert draws.shape == (2 * n, 3) and np.all(np.isfinite(draws))
    for rows, expected in ((slice(0, n), full), (slice(n, None), singular)):
        d = draws[rows] - mean[rows]
        # standard errors of a sample mean and covariance of n Gaussian draws; 5 of them is a
        # band no correct sampler leaves (and a missing square root or transposed root does)
        var = np.diag(expected).clip(0)
        assert np.all(np.abs(d.mean(axis=0)) <= 5 * np.sqrt(var / n) + 1e-12)
        se = np.sqrt((np.outer(var, var) + expected**2) / n)
        assert np.all(np.abs(np.cov(d.T) - expected) <= 5 * se + 1e-12)
    # the singular law's draws lie on its one direction (up to the square roots, ~1e-8, of the
    # rounding-level eigenvalues of the null space; a draw off the line would be ~1 away)
    d = draws[n:] - mean[n:]
    np.testing.assert_allclose(np.cross(d, v), 0.0, atol=1e-6)
