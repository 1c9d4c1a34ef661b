"""Tests of the broken line of equation 9 and its vectorised posterior
(sklearn_selfcal._kernels.broken_line)."""

import numpy as np
import pytest
from scipy import stats

from sklearn_selfcal._kernels import broken_line as bl

from _helpers import BIN_CENTRES
from _helpers import PAPER_FEH_PROFILE as PAPER


def test_broken_line_is_equation_9():
    R = np.linspace(0, 22, 221)
    inner = PAPER["m1"] * R + PAPER["b"]
    outer = PAPER["m1"] * PAPER["k"] + PAPER["b"] + PAPER["m2"] * (R - PAPER["k"])
    np.testing.assert_allclose(bl.broken_line(R, **PAPER), np.where(R <= PAPER["k"], inner, outer))
    theta = np.array([[PAPER["m1"], PAPER["m2"], PAPER["b"], PAPER["k"]], [0.1, -0.2, 0.0, 5.0]])
    batch = bl.broken_line_batch(theta, R)
    assert batch.shape == (2, R.size)
    np.testing.assert_allclose(batch[1], bl.broken_line(R, 0.1, -0.2, 0.0, 5.0))


def _log_prob_reference(theta, R, y, sigma, bounds, scatter=False):
    """The log-posterior of one parameter vector written directly from equation 9, independently
    of the package's vectorised kernel: a box prior, the two segments by ``np.where`` and the
    Gaussian density from scipy (full covariance when ``sigma`` is a matrix)."""
    for value, (lo, hi) in zip(theta, bounds, strict=True):
        if not lo < value < hi:
            return -np.inf
    m1, m2, b, k = theta[:4]
    model = np.where(R <= k, m1 * R + b, m1 * k + b + m2 * (R - k))
    extra = np.exp(2.0 * theta[4]) if scatter else 0.0
    cov = (np.diag(sigma**2) if np.ndim(sigma) == 1 else sigma) + extra * np.eye(R.size)
    return float(stats.multivariate_normal(model, cov).logpdf(y))


def test_vectorised_log_prob_equals_reference_and_respects_prior():
    rng = np.random.default_rng(0)
    R = BIN_CENTRES
    y = bl.broken_line(R, **PAPER) + 0.01 * rng.standard_normal(R.size)
    sigma = np.full(R.size, 0.01)
    # a covariance with correlated neighbours (distance errors), positive definite
    corr = 0.4 ** np.abs(np.subtract.outer(np.arange(R.size), np.arange(R.size)))
    cov = np.outer(sigma, sigma) * corr + np.diag(sigma**2)
    bounds = np.array([[-1, 1], [-1, 1], [-5, 5], [1, 21], [-10, 2]], dtype=float)
    theta = np.column_stack(
        [
            rng.uniform(-0.1, 0.1, 50),
            rng.uniform(-0.1, 0.1, 50),
            rng.uniform(0, 1, 50),
            rng.uniform(-2, 25, 50),
            rng.uniform(-6, 0, 50),
        ]
    )
    for noise in (sigma, cov):
        for scatter, ndim in [(False, 4), (True, 5)]:
            vec = bl.log_prob(theta[:, :ndim], R, y, noise, bounds[:ndim], scatter)
            ref = [_log_prob_reference(t, R, y, noise, bounds[:ndim], scatter)
                   for t in theta[:, :ndim]]
            np.testing.assert_allclose(vec, ref, rtol=1e-10)
            outside = (theta[:, 3] <= 1) | (theta[:, 3] >= 21)
            assert (
                outside.any()
                and np.all(np.isneginf(vec[outside]))
                and np.all(np.isfinite(vec[~outside]))
            )
    # Gaussian normalisation: one point, residual 0, variance sigma^2 + s^2.
    lp = bl.log_likelihood(
        np.array([[0.0, 0.0, 1.0, 5.0, np.log(0.3)]]),
        np.array([1.0]),
        np.array([1.0]),
        np.array([0.4]),
        scatter=True,
    )
    np.testing.assert_allclose(lp, -0.5 * np.log(2 * np.pi * 0.25))
    with pytest.raises(ValueError, match="positive definite"):
        bl.noise_basis(-np.eye(3))


def test_least_squares_start_finds_the_knee_on_exact_data():
    R = np.linspace(0.5, 21.5, 30)
    y = bl.broken_line(R, **PAPER)
    theta, chi2 = bl.least_squares_start(R, y, np.ones_like(R), np.linspace(2, 20, 181))
    np.testing.assert_allclose(theta, [PAPER[p] for p in ("m1", "m2", "b", "k")], atol=1e-9)
    assert chi2 < 1e-15
