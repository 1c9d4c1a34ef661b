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
           "spectrum_snr", "SpectraPlan"]

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


def _throughput(n_pixels):
    """A smooth, fixed throughput pattern across each detector (dimensionless, float32)."""
    return (0.85 + 0.15 * np.cos(np.linspace(0.0, 6.0 * np.pi, n_pixels)) ** 2).astype(np.float32)


#: Rows of a chunk turned into noisy spectra at a time once their noise-free log-fluxes are
#: computed: ~2 MB of float32 at 7,514 pixels, which stay in the processor's cache between the
#: passes (flux, errors, noise). The pixels do not depend on it: the chunk's random stream is drawn
#: in the same order, and the operations are element by element.
_ROW_BLOCK = 64


def _fill_chunk(seed, labels, inv_snr, response, inv_throughput, f, e, spectra):
    """Fill the views ``f`` and ``e`` (one random-stream chunk) in place; no full-size temporary:
    the noise is drawn :data:`_ROW_BLOCK` rows at a time."""
    rng = np.random.default_rng(seed)
    np.matmul(labels, response.T, out=f)
    rows = max(1, min(_ROW_BLOCK, f.shape[0]))
    noise = np.empty((rows, f.shape[1]), dtype=np.float32)
    for start in range(0, f.shape[0], rows):
        fb, eb = f[start:start + rows], e[start:start + rows]
        nb = noise[:fb.shape[0]]
        np.exp(fb, out=fb)
        np.maximum(fb, 0.05, out=eb)  # photon noise ~ sqrt(flux), floored in saturated line cores
        np.sqrt(eb, out=eb)
        eb *= inv_snr[start:start + rows, None]
        eb *= inv_throughput[None, :]
        rng.standard_normal(out=nb, dtype=np.float32)
        nb *= eb
        fb += nb
    n_bad = rng.binomial(f.size, spectra["bad_pixel_fraction"])
    bad = rng.integers(0, f.size, n_bad)
    f.flat[bad] = 0.0
    e.flat[bad] = spectra["bad_pixel_error"]


class SpectraPlan:
    """The random-stream chunks of a survey's spectra, to fill all at once or block by block.

    Row chunk ``k`` (rows ``k * chunk_size`` to ``(k + 1) * chunk_size``) is drawn from the
    ``k``-th child of ``seed_seq``, so the pixels of a star do not depend on how many chunks are
    filled at once, in which order or in how many threads.

    Parameters
    ----------
    seed_seq : numpy.random.SeedSequence
        Parent of the chunks' streams.
    labels : ndarray of shape (n_stars, len(LABELS)), float32
        From :func:`label_matrix`.
    snr : ndarray of shape (n_stars,)
        Per-pixel signal-to-noise.
    spectra : dict
        The ``spectra`` physics group (:data:`DEFAULT_SPECTRA`).
    n_pixels : int
    """

    def __init__(self, seed_seq, labels, snr, spectra, n_pixels):
        self.wavelength, self.response = spectral_model(n_pixels)
        self.labels, self.spectra, self.n_pixels = labels, spectra, int(n_pixels)
        self.n_stars = labels.shape[0]
        self.chunk_size = int(spectra["chunk_size"])
        self.inv_snr = (1.0 / np.asarray(snr, dtype=np.float64)).astype(np.float32)
        self.inv_throughput = 1.0 / _throughput(self.n_pixels)
        self.starts = range(0, self.n_stars, self.chunk_size)
        self.seeds = seed_seq.spawn(len(self.starts))

    def fill(self, chunk, flux, err):
        """Fill chunk ``chunk`` into ``flux`` and ``err`` (arrays of the chunk's rows)."""
        rows = self.chunk_rows(chunk)
        _fill_chunk(self.seeds[chunk], self.labels[rows], self.inv_snr[rows], self.response,
                    self.inv_throughput, flux, err, self.spectra)

    def chunk_rows(self, chunk):
        """The rows (a slice) of chunk ``chunk``."""
        start = self.starts[chunk]
        return slice(start, min(start + self.chunk_size, self.n_stars))


def simulate_spectra(seed_seq, labels, snr, spectra, n_pixels, n_jobs=None):
    """Noisy spectra and errors, float32 arrays of shape (n_stars, n_pixels), filled in chunks.

    Chunks are independent random streams spawned from ``seed_seq`` (:class:`SpectraPlan`) and
    are filled in threads, so the result does not depend on ``n_jobs``; memory is the two outputs
    plus one chunk per thread.
    """
    plan = SpectraPlan(seed_seq, labels, snr, spectra, n_pixels)
    flux = np.empty((plan.n_stars, plan.n_pixels), dtype=np.float32)
    err = np.empty((plan.n_stars, plan.n_pixels), dtype=np.float32)
    Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(plan.fill)(k, flux[plan.chunk_rows(k)], err[plan.chunk_rows(k)])
        for k in range(len(plan.starts))
    )
    return plan.wavelength, flux, err
