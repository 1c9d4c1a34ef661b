"""Monte Carlo propagation of Gaussian uncertainties with draws that depend only on each row.

A row's draws are a hash of the seed and the row's own values, so a star gets the same draws --
and the same uncertainties -- whatever the batch, chunking, row order, ``n_jobs`` or joblib
backend it is computed in.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["row_normals", "draw_samples", "robust_std"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x):
    """The splitmix64 mixing function on uint64 arrays (wrapping arithmetic)."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def row_normals(rows, seed, n_samples, n_dims):
    """Standard normal draws of shape (n_samples, n, n_dims) that depend only on each row and seed.

    Each row's values (their bits) and the seed are hashed with splitmix64 into a key; uniforms are
    hashes of the key with the sample and dimension index, turned into normals by Box-Muller.

    Parameters
    ----------
    rows : ndarray of shape (n, k)
        The values that identify each row.
    seed : int
        Non-negative seed.
    n_samples : int
        Draws per row.
    n_dims : int
        Even number of normals per draw.

    Returns
    -------
    normals : ndarray of shape (n_samples, n, n_dims)
    """
    with np.errstate(over="ignore"):
        key = np.full(rows.shape[0], np.uint64(seed))
        for column in np.ascontiguousarray(rows, dtype=np.float64).T:
            key = _splitmix64(key ^ np.ascontiguousarray(column).view(np.uint64))
        counter = np.arange(1, n_dims * n_samples + 1, dtype=np.uint64).reshape(n_samples, 1, n_dims)
        bits = _splitmix64(key[None, :, None] ^ (counter * _GOLDEN))
    u = ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53  # uniform in (0, 1)
    radius = np.sqrt(-2.0 * np.log(u[..., 0::2]))
    angle = 2.0 * np.pi * u[..., 1::2]
    return np.concatenate([radius * np.cos(angle), radius * np.sin(angle)], axis=-1)


def draw_samples(obs, err, corr, n_samples, seed):
    """Monte Carlo copies of observations with Gaussian errors on their last four columns.

    Parameters
    ----------
    obs : ndarray of shape (n, 6)
        ra, dec (exact), parallax or distance, pmra, pmdec, line-of-sight velocity.
    err : ndarray of shape (n, 4)
        Standard deviations of the last four columns (same units).
    corr : ndarray of shape (n,) or None
        Correlation coefficient of pmra and pmdec (NaN counts as 0).
    n_samples, seed : int

    Returns
    -------
    samples : ndarray of shape (n_samples * n, 6)
        Sample-major: rows ``[s * n, (s + 1) * n)`` are draw ``s`` of every star.
    """
    n = obs.shape[0]
    rows = obs if corr is None else np.column_stack([obs, corr])
    noise = row_normals(np.column_stack([rows, err]), seed, n_samples, 4)
    if corr is not None:  # correlated proper motions: Cholesky factor of [[1, rho], [rho, 1]]
        rho = np.clip(np.nan_to_num(corr), -1.0, 1.0)
        noise[..., 2] = rho * noise[..., 1] + np.sqrt(1.0 - rho**2) * noise[..., 2]
    samples = np.broadcast_to(obs, (n_samples, n, 6)).copy()
    samples[..., 2:] += noise * err
    return samples.reshape(n_samples * n, 6)


def robust_std(samples, nominal, min_valid, angle_columns=()):
    """Half the 16-84 percentile range over axis 0, NaN-aware.

    Parameters
    ----------
    samples : ndarray of shape (n_samples, n, k)
    nominal : ndarray of shape (n, k)
        The nominal values; a NaN makes the result NaN.
    min_valid : int
        Fewer valid samples than this give NaN.
    angle_columns : sequence of int
        Columns that are angles (rad) wrapping at +-pi: the scatter of the offset from the nominal
        value is measured.

    Returns
    -------
    std : ndarray of shape (n, k)
    n_valid : ndarray of int of shape (n, k)
    """
    samples = samples.copy()
    for c in angle_columns:
        samples[..., c] = np.angle(np.exp(1j * (samples[..., c] - nominal[:, c])))
    n_valid = np.sum(np.isfinite(samples), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        lo, hi = np.nanpercentile(samples, [16.0, 84.0], axis=0)
    std = 0.5 * (hi - lo)
    std[(n_valid < min_valid) | np.isnan(nominal)] = np.nan
    return std, n_valid
