"""Gaia-like astrometry and photometry, 2MASS/WISE photometry and APOGEE radial velocities."""

from __future__ import annotations

import numpy as np

from .._paper import GAIA_PARALLAX_ZERO_POINT

__all__ = ["DEFAULT_ASTROMETRY", "GAIA_COLUMNS", "drop_undetected", "parallax_uncertainty", "observe_astrometry", "observe_photometry"]

DEFAULT_ASTROMETRY = {
    "parallax_zero_point": GAIA_PARALLAX_ZERO_POINT,  # mas, added to the true parallax
    "parallax_error_scale": 1.0,
    "pm_error_ratio": 1.1,           # sigma_pm / sigma_parallax ((mas/yr) / mas)
    "binary_fraction": 0.04,         # stars with RUWE > 1.4 and inflated astrometric noise
    "rv_error": (0.05, 0.3),         # km/s, range of APOGEE VERR
    "gaia_g_limit": 20.8,            # mag; fainter stars have no Gaia entry (NaN Gaia columns)
}

#: Columns that are NaN for stars Gaia did not detect.
GAIA_COLUMNS = ("parallax", "parallax_error", "pmra", "pmra_error", "pmdec", "pmdec_error",
                "visibility_periods_used", "astrometric_n_good_obs_al", "astrometric_chi2_al", "ruwe",
                "phot_g_mean_mag", "phot_g_mean_mag_error", "phot_bp_mean_mag",
                "phot_bp_mean_mag_error", "phot_rp_mean_mag", "phot_rp_mean_mag_error")

_PHOT_FLOOR = {"phot_g_mean_mag": 0.003, "phot_bp_mean_mag": 0.005, "phot_rp_mean_mag": 0.004,
               "J": 0.022, "H": 0.022, "K": 0.020, "w1mpro": 0.022, "w2mpro": 0.020}
_PHOT_ERROR_NAME = {"J": "J_ERR", "H": "H_ERR", "K": "K_ERR"}


def parallax_uncertainty(g_mag):
    """Gaia EDR3-like parallax uncertainty (mas) as a function of G (mag); grows with magnitude."""
    z = 10.0 ** (0.4 * (np.maximum(g_mag, 13.0) - 15.0))
    return 1e-3 * np.sqrt(40.0 + 800.0 * z + 30.0 * z**2)


def observe_astrometry(rng, parallax_true, pm_true, rv_true, g_mag, astrometry):
    """Noisy Gaia parallaxes/proper motions (mas, mas/yr), quality columns, and APOGEE RVs (km/s)."""
    n = parallax_true.size
    binary = rng.uniform(0.0, 1.0, n) < astrometry["binary_fraction"]
    ruwe = np.where(binary, rng.uniform(1.4, 3.0, n), 1.0 + np.abs(rng.normal(0.0, 0.08, n)))
    sig = parallax_uncertainty(g_mag) * astrometry["parallax_error_scale"] * rng.uniform(0.85, 1.15, n)
    sig_pm = sig * astrometry["pm_error_ratio"]
    # binaries have astrometric noise beyond the formal error (the reason for the RUWE cut)
    true_noise = sig * ruwe
    vpu = rng.integers(8, 26, n)
    n_good = vpu * rng.integers(18, 30, n)
    lo, hi = astrometry["rv_error"]
    verr = rng.uniform(lo, hi, n)
    return {
        "parallax": parallax_true + astrometry["parallax_zero_point"] + rng.normal(0.0, 1.0, n) * true_noise,
        "parallax_error": sig,
        "pmra": pm_true[0] + rng.normal(0.0, 1.0, n) * sig_pm * ruwe,
        "pmra_error": sig_pm,
        "pmdec": pm_true[1] + rng.normal(0.0, 1.0, n) * sig_pm * ruwe,
        "pmdec_error": sig_pm,
        "visibility_periods_used": vpu,
        "astrometric_n_good_obs_al": n_good,
        "astrometric_chi2_al": (n_good - 5) * ruwe**2 * rng.uniform(0.9, 1.1, n),
        "ruwe": ruwe,
        "VHELIO_AVG": rv_true + rng.normal(0.0, 1.0, n) * verr,
        "VERR": verr,
    }


def observe_photometry(rng, apparent):
    """Noisy apparent magnitudes and their uncertainties (mag), Gaia/2MASS/WISE column names."""
    out = {}
    for band, mag in apparent.items():
        floor = _PHOT_FLOOR[band]
        # errors grow towards the faint end of each survey
        err = floor * (1.0 + 10.0 ** (0.4 * (mag - (17.0 if band.startswith("phot") else 13.5))))
        out[band] = mag + rng.normal(0.0, 1.0, mag.size) * err
        out[_PHOT_ERROR_NAME.get(band, f"{band}_error")] = err
    return out


def drop_undetected(table, g_true, astrometry):
    """Set the Gaia columns of ``table`` (dict of arrays) to NaN where G exceeds Gaia's limit."""
    lost = g_true > astrometry["gaia_g_limit"]
    for col in GAIA_COLUMNS:
        table[col] = np.where(lost, np.nan, table[col].astype(float))
    return table
