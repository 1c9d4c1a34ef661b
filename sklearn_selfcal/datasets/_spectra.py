"""Continuum-normalised APOGEE-like spectra whose pixels respond to Teff, log g and abundances.

The log-flux of every pixel is a fixed linear combination of a star's labels and a few of their
products (a line list with Gaussian profiles whose depths respond to the labels). The line list is
the same for every simulated survey (its own fixed seed), so a model trained on one simulated
catalogue applies to another. Noise is photon-like at a signal-to-noise set by the H magnitude.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from joblib import Parallel, delayed

from .._apogee import N_ASPCAP_PIXELS, aspcap_wavelength

__all__ = ["LABELS", "DEFAULT_SPECTRA", "spectral_model", "label_matrix", "simulate_spectra",
           "spectrum_snr"]

#: Label terms of the log-flux model, in the column order of the response matrix.
LABELS = ("const", "teff", "logg", "feh", "alpha", "c", "n", "lsf1", "lsf2",
          "teff2", "teff_logg", "logg2", "teff_feh")

DEFAULT_SPECTRA = {
    "snr_at_h11": 100.0,      # per-pixel S/N of an H = 11 mag star
    "snr_range": (50.0, 800.0),
    "bad_pixel_fraction": 0.003,
    "bad_pixel_error": 1e10,  # error assigned to bad pixels (their flux is set to 0)
    "chunk_size": 2048,
}

_LINE_LIST_SEED = 20220301


@lru_cache(maxsize=4)
def spectral_model(n_pixels=N_ASPCAP_PIXELS):
    """Wavelength grid and response matrix of the simulated spectra.

    Parameters
    ----------
    n_pixels : int
        Number of pixels. 7,514 gives the real ASPCAP grid; other values resample it uniformly in
        log-wavelength between the same limits.

    Returns
    -------
    wavelength : ndarray of shape (n_pixels,)
        Angstrom.
    response : ndarray of shape (n_pixels, len(LABELS)), float32
        ``log(flux) = response @ label_terms``.
    """
    rng = np.random.default_rng(_LINE_LIST_SEED)
    wave = aspcap_wavelength()
    if n_pixels != wave.size:
        wave = np.geomspace(wave[0], wave[-1], n_pixels)
    n_lines = max(4, n_pixels // 6)
    centre = rng.uniform(0.0, n_pixels, n_lines)
    width = rng.uniform(1.2, 2.5, n_lines)
    depth = np.exp(rng.uniform(np.log(0.01), np.log(0.45), n_lines))
    species = rng.choice(6, n_lines, p=[0.45, 0.2, 0.1, 0.1, 0.1, 0.05])  # Fe, alpha, C, N, CN, other
    coef = np.zeros((n_lines, len(LABELS)))
    coef[:, 0] = 1.0
    coef[:, 1] = -rng.uniform(0.2, 0.6, n_lines)          # lines weaken with Teff
    coef[:, 2] = rng.uniform(-0.5, 0.5, n_lines)          # gravity-sensitive lines
    sat = rng.uniform(0.3, 0.9, n_lines)                  # curve-of-growth saturation
    coef[:, 3] = np.where(species == 5, 0.2, sat)
    coef[:, 4] = np.where(species == 1, sat, 0.0)
    coef[:, 5] = np.where(np.isin(species, (2, 4)), sat, 0.0)
    coef[:, 6] = np.where(np.isin(species, (3, 4)), sat, 0.0)
    coef[:, 7] = -0.05                                    # a broader LSF makes lines shallower
    coef[:, 8] = rng.uniform(-0.01, 0.01, n_lines)
    coef[:, 9:] = rng.uniform(-0.08, 0.08, (n_lines, len(LABELS) - 9))
    coef *= -depth[:, None]                               # absorption: negative log-flux
    response = np.zeros((n_pixels, len(LABELS)))
    offsets = np.arange(-7, 8)
    pix = np.floor(centre)[:, None].astype(int) + offsets[None, :]
    prof = np.exp(-0.5 * ((pix + 0.5 - centre[:, None]) / width[:, None]) ** 2)
    ok = (pix >= 0) & (pix < n_pixels)
    for j in range(len(LABELS)):
        np.add.at(response[:, j], pix[ok], (prof * coef[:, j][:, None])[ok])
    return wave, response.astype(np.float32)


def label_matrix(teff, logg, feh, alpha, c_fe, n_fe, lsf1, lsf2):
    """Label terms (n_stars, len(LABELS)) float32 from physical labels (K, dex, dex, ...)."""
    t = (np.asarray(teff) - 4500.0) / 500.0
    g = np.asarray(logg) - 1.5
    cols = [np.ones_like(t), t, g, feh, alpha, c_fe, n_fe, lsf1, lsf2, t * t, t * g, g * g, t * feh]
    return np.column_stack(cols).astype(np.float32)


def spectrum_snr(h_mag, spectra):
    """Per-pixel signal-to-noise of a star of apparent magnitude ``h_mag`` (H, mag)."""
    lo, hi = spectra["snr_range"]
    return np.clip(spectra["snr_at_h11"] * 10.0 ** (-0.2 * (np.asarray(h_mag) - 11.0)), lo, hi)


def _fill_chunk(seed, labels, inv_snr, response, inv_throughput, flux, err, rows, spectra):
    """Fill ``flux[rows]`` and ``err[rows]`` in place (no full-size temporaries but the noise)."""
    rng = np.random.default_rng(seed)
    f, e = flux[rows], err[rows]  # views
    np.matmul(labels[rows], response.T, out=f)
    np.exp(f, out=f)
    np.maximum(f, 0.05, out=e)  # photon noise ~ sqrt(flux), floored in saturated line cores
    np.sqrt(e, out=e)
    e *= inv_snr[rows, None]
    e *= inv_throughput[None, :]
    noise = rng.standard_normal(f.shape, dtype=np.float32)
    noise *= e
    f += noise
    n_bad = rng.binomial(f.size, spectra["bad_pixel_fraction"])
    bad = rng.integers(0, f.size, n_bad)
    f.flat[bad] = 0.0
    e.flat[bad] = spectra["bad_pixel_error"]


def simulate_spectra(seed_seq, labels, snr, spectra, n_pixels, n_jobs=None):
    """Noisy spectra and errors, float32 arrays of shape (n_stars, n_pixels), filled in chunks.

    Chunks are independent random streams spawned from ``seed_seq`` and are filled in threads,
    so the result does not depend on ``n_jobs``; memory is the two outputs plus one chunk per thread.
    """
    wave, response = spectral_model(n_pixels)
    n = labels.shape[0]
    # a smooth, fixed throughput pattern across each detector
    throughput = (0.85 + 0.15 * np.cos(np.linspace(0.0, 6.0 * np.pi, n_pixels)) ** 2).astype(np.float32)
    flux = np.empty((n, n_pixels), dtype=np.float32)
    err = np.empty((n, n_pixels), dtype=np.float32)
    inv_snr = (1.0 / np.asarray(snr, dtype=np.float64)).astype(np.float32)
    step = spectra["chunk_size"]
    starts = range(0, n, step)
    seeds = seed_seq.spawn(len(starts))
    Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(_fill_chunk)(s, labels, inv_snr, response, 1.0 / throughput, flux, err,
                             slice(i, min(i + step, n)), spectra)
        for s, i in zip(seeds, starts)
    )
    return wave, flux, err
