"""The broken-line ("broken power-law") model of Eilers et al. (2022), eq. 9, and its posterior.

Plain numpy functions with no scikit-learn machinery. The model of an abundance ``y`` (dex) against
Galactocentric radius ``R`` (kpc) is

    y = b + m1 * R                        for R <= k,
    y = (b + m1 * k) + m2 * (R - k)       for R >  k,

which is the same as ``y = b + m1 * min(R, k) + m2 * max(R - k, 0)``: linear in ``(m1, m2, b)`` for
a fixed knee ``k``. This module is the one implementation of the equation in the package (the
simulator's injected gradient and the regressor both use :func:`broken_line`). Parameter vectors
are ordered ``theta = (m1, m2, b, k[, ln_s])``, where ``ln_s`` is the natural log of an optional
intrinsic scatter ``s`` (dex) added in quadrature to the per-point uncertainties. Every
log-probability function takes a *batch* of parameter vectors of shape ``(n_walkers, n_params)``
and returns one value per walker, so that emcee can evaluate all walkers in a single call
(``vectorize=True``).

The noise of the data is Gaussian with per-point uncertainties ``sigma`` or, when the points'
errors are correlated (e.g. binned medians sharing distance uncertainties), a full covariance
matrix. Both are handled in the eigenbasis of the covariance (:func:`noise_basis`): the residuals
are rotated once per call and the likelihood is a sum over independent components, to which the
intrinsic scatter adds ``s**2`` (the covariance plus ``s**2`` times the identity has the same
eigenvectors).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "PARAMETER_NAMES",
    "broken_line",
    "broken_line_batch",
    "log_prior",
    "log_likelihood",
    "log_prob",
    "noise_basis",
    "scan_knee",
    "least_squares_start",
]

#: Order of the model parameters in a parameter vector (then ``ln_s`` if the scatter is fitted).
PARAMETER_NAMES = ("m1", "m2", "b", "k")

_LOG_2PI = np.log(2.0 * np.pi)


def broken_line(R, m1, m2, b, k):
    """Evaluate equation 9 (broadcasting over all arguments).

    Parameters
    ----------
    R : array_like
        Galactocentric radius (kpc).
    m1, m2 : array_like
        Inner and outer slopes (dex/kpc).
    b : array_like
        Value at R = 0 of the inner line (dex).
    k : array_like
        Radius of the break, the "knee" (kpc).

    Returns
    -------
    y : ndarray
        Model abundance (dex), broadcast shape of the inputs.
    """
    R = np.asarray(R, dtype=float)
    return b + m1 * np.minimum(R, k) + m2 * np.maximum(R - k, 0.0)


def broken_line_batch(theta, R):
    """Evaluate equation 9 for many parameter vectors at many radii.

    Parameters
    ----------
    theta : ndarray of shape (n_walkers, n_params)
        Parameter vectors, columns ``(m1, m2, b, k, ...)``; extra columns are ignored.
    R : ndarray of shape (n_points,)
        Galactocentric radius (kpc).

    Returns
    -------
    y : ndarray of shape (n_walkers, n_points)
        Model abundance (dex).
    """
    theta = np.atleast_2d(theta)
    return broken_line(
        np.asarray(R, dtype=float)[None, :], *(theta[:, i : i + 1] for i in range(4))
    )


def log_prior(theta, bounds):
    """Log of a uniform (box) prior, up to a constant.

    Parameters
    ----------
    theta : ndarray of shape (n_walkers, n_params)
        Parameter vectors.
    bounds : ndarray of shape (n_params, 2)
        Lower and upper bound of every parameter (same units as ``theta``); the box is open.

    Returns
    -------
    log_p : ndarray of shape (n_walkers,)
        ``0`` inside the box, ``-inf`` outside (or where a parameter is not finite).
    """
    theta = np.atleast_2d(theta)
    bounds = np.asarray(bounds, dtype=float)
    inside = ((theta > bounds[:, 0]) & (theta < bounds[:, 1])).all(axis=1)
    return np.where(inside, 0.0, -np.inf)


def noise_basis(sigma):
    """Eigen-decomposition of the noise covariance: ``(basis, variances)``.

    Parameters
    ----------
    sigma : ndarray of shape (n_points,) or (n_points, n_points)
        Per-point uncertainties (dex), or the covariance matrix of the points (dex^2).

    Returns
    -------
    basis : ndarray of shape (n_points, n_points) or None
        Orthonormal eigenvectors of the covariance (``None`` for independent points).
    variances : ndarray of shape (n_points,)
        Its eigenvalues (``sigma**2`` for independent points).

    Raises
    ------
    ValueError
        If a covariance matrix is not symmetric positive definite.
    """
    sigma = np.asarray(sigma, dtype=float)
    if sigma.ndim == 1:
        return None, sigma**2
    if sigma.ndim != 2 or sigma.shape[0] != sigma.shape[1] \
            or not np.allclose(sigma, sigma.T, rtol=1e-10, atol=0.0):
        raise ValueError(f"a covariance must be a symmetric square matrix; got shape {sigma.shape}")
    variances, basis = np.linalg.eigh(sigma)
    if not variances[0] > 0:
        raise ValueError("the covariance matrix must be positive definite; its smallest "
                         f"eigenvalue is {variances[0]:.3g}")
    return basis, variances


def log_likelihood(theta, R, y, sigma, *, scatter=False, noise=None):
    """Gaussian log-likelihood of the data under equation 9.

    Parameters
    ----------
    theta : ndarray of shape (n_walkers, n_params)
        Parameter vectors ``(m1, m2, b, k)``, plus ``ln_s`` (natural log of the intrinsic scatter,
        dex) as a fifth column when ``scatter`` is true.
    R : ndarray of shape (n_points,)
        Galactocentric radius (kpc).
    y : ndarray of shape (n_points,)
        Abundance (dex).
    sigma : ndarray of shape (n_points,) or (n_points, n_points)
        Per-point uncertainty (dex; may be zero when ``scatter`` is true), or the covariance of
        the points (dex^2).
    scatter : bool
        Whether ``theta[:, 4]`` is ``ln_s``; the covariance is then ``Sigma + s**2 I``.
    noise : tuple, optional
        :func:`noise_basis` of ``sigma``, if already computed (the sampler passes it).

    Returns
    -------
    log_l : ndarray of shape (n_walkers,)
        Log-likelihood, including the normalisation ``-0.5 * log det(2 pi Sigma)``.
    """
    theta = np.atleast_2d(theta)
    R = np.asarray(R, dtype=float)
    basis, var = noise_basis(sigma) if noise is None else noise
    resid = np.asarray(y, dtype=float) - broken_line_batch(theta, R)
    if basis is not None:
        resid = resid @ basis
    sq = resid**2
    if scatter:
        var = var + np.exp(2.0 * theta[:, 4:5])
        return -0.5 * (np.sum(sq / var + np.log(var), axis=1) + R.size * _LOG_2PI)
    return -0.5 * (sq @ (1.0 / var) + np.sum(np.log(var)) + R.size * _LOG_2PI)


def log_prob(theta, R, y, sigma, bounds, scatter=False, noise=None):
    """Log-posterior (up to a constant) of many parameter vectors at once.

    This is the function emcee calls with ``vectorize=True``: one numpy evaluation for all walkers.
    The likelihood is evaluated only for the walkers inside the prior box.

    Parameters
    ----------
    theta : ndarray of shape (n_walkers, n_params)
        Parameter vectors, see :func:`log_likelihood`.
    R, y : ndarray of shape (n_points,)
        Radius (kpc) and abundance (dex).
    sigma : ndarray of shape (n_points,) or (n_points, n_points)
        Uncertainties (dex) or covariance (dex^2), see :func:`log_likelihood`.
    bounds : ndarray of shape (n_params, 2)
        Uniform-prior bounds, see :func:`log_prior`.
    scatter : bool
        Whether the fifth parameter is ``ln_s``.
    noise : tuple, optional
        :func:`noise_basis` of ``sigma``, if already computed.

    Returns
    -------
    log_p : ndarray of shape (n_walkers,)
        Log-posterior; ``-inf`` outside the prior.
    """
    theta = np.atleast_2d(theta)
    noise = noise_basis(sigma) if noise is None else noise
    lp = log_prior(theta, bounds)
    ok = np.isfinite(lp)
    if ok.all():  # the usual case: no fancy indexing
        return lp + log_likelihood(theta, R, y, sigma, scatter=scatter, noise=noise)
    if ok.any():
        lp[ok] += log_likelihood(theta[ok], R, y, sigma, scatter=scatter, noise=noise)
    return lp


def scan_knee(R, y, sigma, k_grid):
    """Weighted least-squares fit of ``(m1, m2, b)`` for every candidate knee, all at once.

    Parameters
    ----------
    R, y, sigma : ndarray of shape (n_points,)
        Radius (kpc), abundance (dex) and its uncertainty (dex, positive).
    k_grid : ndarray of shape (n_knees,)
        Candidate knee radii (kpc).

    Returns
    -------
    params : ndarray of shape (n_knees, 4)
        Best ``(m1, m2, b, k)`` for every candidate knee.
    chi2 : ndarray of shape (n_knees,)
        Weighted sum of squared residuals of every fit.

    Notes
    -----
    For a fixed knee the model is linear, ``y = b + m1 min(R, k) + m2 max(R - k, 0)``, so the fits
    are batched normal equations. A tiny ridge (``1e-12`` of the trace) keeps them solvable when a
    knee leaves one segment without data (the slope of that segment is then 0).
    """
    R = np.asarray(R, dtype=float)
    y = np.asarray(y, dtype=float)
    w = 1.0 / np.asarray(sigma, dtype=float) ** 2
    k = np.asarray(k_grid, dtype=float)[:, None]
    # Design matrices (n_knees, n_points, 3), columns m1, m2, b.
    A = np.stack(
        [np.minimum(R[None, :], k), np.maximum(R[None, :] - k, 0.0), np.ones((k.shape[0], R.size))],
        axis=-1,
    )
    AtW = A.transpose(0, 2, 1) * w[None, None, :]
    normal = AtW @ A
    ridge = 1e-12 * np.trace(normal, axis1=1, axis2=2)[:, None, None] * np.eye(3)[None]
    coef = np.linalg.solve(normal + ridge, (AtW @ y)[..., None])[..., 0]
    resid = y[None, :] - np.einsum("knp,kp->kn", A, coef)
    chi2 = np.sum(w[None, :] * resid**2, axis=1)
    return np.column_stack([coef, k[:, 0]]), chi2


def least_squares_start(R, y, sigma, k_grid):
    """Least-squares starting point: the knee of ``k_grid`` with the smallest chi-square.

    Parameters
    ----------
    R, y, sigma : ndarray of shape (n_points,)
        Radius (kpc), abundance (dex) and its uncertainty (dex, positive).
    k_grid : ndarray of shape (n_knees,)
        Candidate knee radii (kpc).

    Returns
    -------
    theta0 : ndarray of shape (4,)
        ``(m1, m2, b, k)`` of the best fit (dex/kpc, dex/kpc, dex, kpc).
    chi2 : float
        Its weighted sum of squared residuals.
    """
    params, chi2 = scan_knee(R, y, sigma, k_grid)
    best = int(np.argmin(chi2))
    return params[best], float(chi2[best])
