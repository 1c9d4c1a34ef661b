"""Random draws for the Monte Carlo propagation of uncertainties: generators and Gaussian vectors."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["as_generator", "gaussian_draws"]


def as_generator(random_state):
    """A :class:`numpy.random.Generator` from None, an int, a Generator or a RandomState.

    A RandomState (scikit-learn's convention) seeds a new Generator from one of its draws.
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    if random_state is None or isinstance(random_state, numbers.Integral):
        return np.random.default_rng(random_state)
    raise ValueError(f"random_state must be None, an int, a numpy Generator or RandomState; got "
                     f"{random_state!r}")


def gaussian_draws(mean, cov, rng):
    """One draw of each of K Gaussian vectors ``N(mean_k, cov_k)``.

    Parameters
    ----------
    mean : ndarray of shape (K, D)
    cov : ndarray of shape (K, D, D)
        Symmetric positive semi-definite (a square root from its eigen-decomposition is used, so
        singular covariances are fine; tiny negative eigenvalues from rounding count as 0).
    rng : numpy.random.Generator

    Returns
    -------
    draws : ndarray of shape (K, D)
    """
    values, vectors = np.linalg.eigh(cov)
    root = vectors * np.sqrt(np.maximum(values, 0.0))[:, None, :]
    z = rng.standard_normal(mean.shape)
    return mean + np.einsum("kij,kj->ki", root, z)
