"""Luminous red giants: surface gravity, temperature, mass, absolute magnitudes and colours.

Simplification (documented in :func:`make_survey`): a giant's luminosity depends on log g, Teff
and mass but not on its chemistry, and every population has the same mass distribution, so that the
survey selection depends on the orbit and position but not on the abundances at fixed orbit: the
paper's assumption holds in the simulation and the injected systematics are recoverable.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_STARS", "BANDS", "EXTINCTION_RATIOS", "sample_stellar_parameters",
           "absolute_k_magnitude", "intrinsic_colours"]

BANDS = ("phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag", "J", "H", "K", "w1mpro", "w2mpro")

#: A_band / A_K. The H - W2 ratio reproduces the RJCE relation A_K = 0.918 (H - W2 - 0.08).
EXTINCTION_RATIOS = {
    "phot_g_mean_mag": 7.0, "phot_bp_mean_mag": 9.2, "phot_rp_mean_mag": 5.3,
    "J": 2.5, "H": 1.55, "K": 1.0, "w1mpro": 0.6, "w2mpro": 0.46,
}

DEFAULT_STARS = {
    # true log g is drawn on the upper red giant branch with dN/dlogg ~ 10**(0.75 logg)
    "logg_range": (0.3, 2.35),
    "luminosity_function_slope": 0.75,
    # Teff = teff_ref + teff_logg_slope (logg - 2) + N(0, teff_scatter) (K)
    "teff_ref": 4500.0,
    "teff_logg_slope": 450.0,
    "teff_scatter": 60.0,
    "mass": 1.2,            # Msun, mean of a Gaussian ...
    "mass_scatter": 0.12,   # ... with this spread, the same for every population
    # extra intrinsic scatter of the absolute magnitude not captured by any label (mag)
    "absmag_scatter": 0.10,
}


def sample_stellar_parameters(rng, n, stars):
    """True log g (dex, cgs), Teff (K) and mass (Msun) of ``n`` upper-RGB giants."""
    lo, hi = stars["logg_range"]
    a = stars["luminosity_function_slope"] * np.log(10.0)
    # inverse CDF of p(logg) ~ exp(a logg) on [lo, hi]
    u = rng.uniform(0.0, 1.0, n)
    logg = np.log(np.exp(a * lo) + u * (np.exp(a * hi) - np.exp(a * lo))) / a
    teff = stars["teff_ref"] + stars["teff_logg_slope"] * (logg - 2.0) + rng.normal(0.0, stars["teff_scatter"], n)
    mass = np.clip(rng.normal(stars["mass"], stars["mass_scatter"], n), 0.7, 3.0)
    return logg, teff, mass


def absolute_k_magnitude(rng, logg, teff, mass, stars):
    """Absolute K magnitude (mag) from ``L = M (Teff / Teff_sun)^4 / (g / g_sun)``.

    The K-band bolometric correction ``2.3 + 0.8 (4500 K - Teff) / 1000 K`` approximates giants of
    3,600-4,900 K; ``absmag_scatter`` adds scatter no label explains.
    """
    log_l = np.log10(mass) + 4.0 * np.log10(teff / 5772.0) - (logg - 4.438)
    m_bol = 4.74 - 2.5 * log_l
    bc_k = 2.3 + 0.8 * (4500.0 - teff) / 1000.0
    return m_bol - bc_k + rng.normal(0.0, stars["absmag_scatter"], np.size(logg))


def intrinsic_colours(teff, feh=0.0):
    """Intrinsic colours ``band - K`` (mag) for every band of :data:`BANDS`.

    ``H - K`` does not depend on [Fe/H], so the H-band survey selection is blind to chemistry.
    """
    t = (4500.0 - np.asarray(teff)) / 1000.0
    return {
        "phot_g_mean_mag": 2.5 + 1.4 * t + 0.10 * feh,
        "phot_bp_mean_mag": 3.13 + 2.0 * t + 0.15 * feh,
        "phot_rp_mean_mag": 1.88 + 1.05 * t + 0.06 * feh,
        "J": 0.72 + 0.42 * t + 0.04 * feh,
        "H": 0.11 + 0.10 * t,
        "K": np.zeros_like(t),
        "w1mpro": -0.08 - 0.05 * t + 0.01 * feh,
        "w2mpro": 0.03 + 0.05 * t + 0.01 * feh,  # so that (H - W2)_0 = 0.08 + 0.05 t
    }
