"""True abundances as smooth functions of the orbit, and their measurement by a pipeline.

The truth depends on the orbit only: the guiding radius (from ``L_z``) and ``J_z`` set both the
probability of belonging to the high-alpha population and the abundances within each population.
The measurement adds, for every abundance, a systematic that is polynomial in ``LOGG - 2.2``
(quadratic by default; the *reported* surface gravity: the pipeline's own artefact), optionally a
systematic linear in the reported ``TEFF`` and an offset per telescope, then Gaussian noise at the
reported uncertainty; some values are missing (NaN).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy.special import expit

from .._kernels.broken_line import broken_line
from .._paper import ABUNDANCE_COLUMNS, ELEMENTS, LOGG_REFERENCE, R0_KPC

__all__ = ["DEFAULT_CHEMISTRY", "DEFAULT_SYSTEMATICS", "logg_powers", "systematics_table",
           "per_abundance", "telescope_offset_table", "guiding_radius", "high_alpha_probability",
           "true_metallicity", "true_abundances", "nuisance_systematic", "measure_abundances"]

#: Injected systematics: coefficients of lg = LOGG - 2.2 and lg^2 (dex per dex, dex per dex^2).
DEFAULT_SYSTEMATICS = pd.DataFrame(
    {
        "lg": [0.050, 0.120, -0.100, -0.030, 0.080, -0.040, -0.120, 0.030, -0.060, 0.070, 0.050,
               -0.020, 0.090, -0.080, 0.040, -0.050, 0.100, 0.020, -0.090, 0.060, -0.025],
        "lg2": [0.030, -0.040, 0.050, 0.020, -0.050, 0.020, 0.100, -0.020, 0.050, 0.030, -0.030,
                0.015, 0.040, 0.060, -0.020, 0.010, 0.050, 0.010, -0.040, 0.080, 0.010],
    },
    index=pd.Index(ABUNDANCE_COLUMNS, name="abundance"),
)

# Per element: (zero point, response to [Fe/H], response to [alpha/M], intrinsic scatter,
# uncertainty at SNR 100, missing fraction). Dex.
_ELEMENT_TABLE = {
    "C": (0.05, -0.10, 0.30, 0.04, 0.025, 0.01),
    "N": (0.25, 0.20, 0.00, 0.05, 0.035, 0.01),
    "O": (0.02, -0.05, 1.00, 0.03, 0.030, 0.02),
    "NA": (0.00, 0.10, 0.20, 0.06, 0.090, 0.10),
    "MG": (0.01, -0.05, 1.10, 0.03, 0.020, 0.01),
    "AL": (0.00, 0.05, 0.50, 0.05, 0.035, 0.03),
    "SI": (0.00, -0.05, 0.80, 0.03, 0.025, 0.01),
    "P": (0.05, 0.00, 0.60, 0.08, 0.110, 0.30),
    "S": (0.05, -0.05, 0.90, 0.05, 0.060, 0.05),
    "K": (0.00, 0.00, 0.40, 0.04, 0.045, 0.03),
    "CA": (0.00, -0.05, 0.70, 0.03, 0.030, 0.01),
    "TI": (-0.02, 0.00, 0.80, 0.05, 0.045, 0.03),
    "V": (-0.03, 0.05, 0.30, 0.07, 0.090, 0.10),
    "CR": (0.00, -0.02, -0.05, 0.04, 0.050, 0.04),
    "MN": (-0.05, 0.25, -0.40, 0.04, 0.035, 0.02),
    "CO": (0.00, 0.05, 0.30, 0.06, 0.065, 0.06),
    "NI": (0.00, 0.05, 0.10, 0.03, 0.025, 0.01),
    "CU": (-0.05, 0.20, 0.20, 0.07, 0.090, 0.12),
    "CE": (0.00, -0.10, -0.30, 0.07, 0.075, 0.15),
}

DEFAULT_CHEMISTRY = {
    # low-alpha [Fe/H] vs guiding radius (eq. 9 of the paper, its fitted numbers): dex/kpc, dex, kpc
    "feh_gradient": {"m1": -0.057, "b": 0.41, "k": 14.5, "m2": -0.019},
    "feh_scatter": 0.05,            # dex, low-alpha [Fe/H] at fixed orbit
    "high_alpha_feh": (-0.40, 0.15),  # mean, spread (dex): no radial gradient
    # probability of belonging to the high-alpha population, a function of the orbit only:
    # expit((log10(J_z / jz0) + rg_slope min(R_guide - R0, 0)) / width), J_z in kpc km/s, R in kpc
    "high_alpha_orbit": {"jz0": 35.0, "width": 0.45, "rg_slope": 0.1},
    "alpha_low": (0.02, -0.06, 0.0005, 0.02),   # [a/M] = a0 + a1 [Fe/H] + a2 J_z + N(0, s)
    "alpha_high": (0.20, -0.08, 0.0, 0.025),    # a1 applies to ([Fe/H] + 0.4)
    "feh_error": 0.010, "alpha_error": 0.012, "feh_missing": 0.005,
    "systematics": DEFAULT_SYSTEMATICS,
    # opt-in nuisance systematics beyond log g (None = off; see make_survey):
    "teff_systematics": None,       # dex per 1000 K of (reported TEFF - teff_reference)
    "teff_reference": 4500.0,       # K
    "telescope_offsets": None,      # dex, per telescope (relative to a telescope without one)
}

_LOGG_TERM = re.compile(r"^lg(\d*)$")


def logg_powers(columns):
    """Power of ``LOGG - 2.2`` of every systematics column: ``"lg"`` -> 1, ``"lg3"`` -> 3.

    Raises
    ------
    ValueError
        For a column that is not ``lg`` or ``lg<p>`` with ``p >= 1``.
    """
    powers = {}
    for col in columns:
        match = _LOGG_TERM.match(str(col))
        power = (int(match.group(1)) if match.group(1) else 1) if match else 0
        if power < 1:
            raise ValueError(f"systematics: unknown term {col!r}; terms are 'lg' (LOGG - 2.2), "
                             "'lg2' ((LOGG - 2.2)^2), 'lg3', ... (dex per dex^p)")
        powers[col] = power
    return powers


def systematics_table(value):
    """The log g systematics table from a ``make_survey(systematics=...)`` value.

    A number scales the defaults (0 switches them off); a DataFrame (index abundance, columns
    terms) or a mapping abundance -> {term: coefficient} overrides the given entries; new terms
    (``lg3``, ``lg4``, ...) are added with 0 for the other abundances.
    """
    base = DEFAULT_SYSTEMATICS.copy()
    if np.isscalar(value):  # a scale factor on the default systematics
        return base * float(value)
    table = pd.DataFrame(value).T if isinstance(value, dict) else pd.DataFrame(value)
    unknown = sorted(set(table.index) - set(base.index))
    if unknown:
        raise ValueError(f"systematics: unknown abundance column(s) {unknown}")
    logg_powers(table.columns)
    for col in table.columns:
        if col not in base.columns:
            base[col] = 0.0
    base.loc[table.index, table.columns] = table.astype(float)
    return base[sorted(base.columns, key=logg_powers(base.columns).get)]


def per_abundance(value, what):
    """One coefficient per abundance column (Series, 0 where not given) from a number or mapping."""
    out = pd.Series(0.0, index=DEFAULT_SYSTEMATICS.index, name=what)
    if value is None:
        return out
    if np.isscalar(value):
        return out + float(value)
    given = pd.Series(value, dtype=float)
    unknown = sorted(set(given.index) - set(out.index))
    if unknown:
        raise ValueError(f"{what}: unknown abundance column(s) {unknown}")
    out[given.index] = given
    return out


def telescope_offset_table(value):
    """Offsets (dex) as a DataFrame, index abundance, one column per telescope with an offset.

    ``value`` maps a telescope name to a number (the same offset for every abundance) or to a
    mapping abundance -> offset; ``None`` gives an empty table.
    """
    table = pd.DataFrame(index=DEFAULT_SYSTEMATICS.index)
    if value is None:
        return table
    if not isinstance(value, dict):
        raise ValueError("telescope_offsets must map a telescope name (e.g. 'lco25m') to an "
                         f"offset in dex or to a mapping abundance -> offset; got {value!r}")
    for telescope, offsets in value.items():
        table[str(telescope)] = per_abundance(offsets, f"telescope_offsets[{telescope!r}]")
    return table


def guiding_radius(L_z, vc_table):
    """Radius of the circular orbit with angular momentum ``|L_z|`` (kpc; L_z in kpc km/s)."""
    R, v_c = vc_table
    return np.interp(np.abs(L_z), R * v_c, R)


def high_alpha_probability(J_z, R_guide, chem):
    """Probability that a star on this orbit belongs to the high-alpha population."""
    p = chem["high_alpha_orbit"]
    lj = np.log10(np.maximum(J_z, 1e-3) / p["jz0"])
    # inside R0 the vertical action of a given population grows inwards: raise the threshold there
    return expit((lj + p["rg_slope"] * np.minimum(R_guide - R0_KPC, 0.0)) / p["width"])


def true_metallicity(rng, high_alpha, R_guide, chem):
    """True [Fe/H] (dex) of low-alpha (gradient in guiding radius) and high-alpha (flat) stars."""
    n = R_guide.size
    low = broken_line(R_guide, **chem["feh_gradient"]) + rng.normal(0.0, chem["feh_scatter"], n)
    mu, s = chem["high_alpha_feh"]
    high = rng.normal(mu, s, n)
    return np.where(high_alpha, high, low)


def true_abundances(rng, high_alpha, feh, J_z, chem):
    """All true abundances (dex) given [Fe/H] and the orbit, keyed by APOGEE column name."""
    n = feh.size
    a0, a1, a2, s = chem["alpha_low"]
    alpha_low = a0 + a1 * feh + a2 * J_z + rng.normal(0.0, s, n)
    a0, a1, a2, s = chem["alpha_high"]
    alpha_high = a0 + a1 * (feh + 0.4) + a2 * J_z + rng.normal(0.0, s, n)
    alpha = np.where(high_alpha, alpha_high, alpha_low)
    out = {"FE_H": feh, "ALPHA_M": alpha, "M_H": feh + 0.25 * alpha}
    for x in ELEMENTS:
        zp, g, k, s, _, _ = _ELEMENT_TABLE[x]
        out[f"{x}_FE"] = zp + g * (feh + 0.1) + k * alpha + rng.normal(0.0, s, n)
    return out


def nuisance_systematic(column, logg_reported, teff_reported, telescope, chem):
    """The terms of the systematic (dex) the pipeline adds to ``column``.

    Parameters
    ----------
    column : str
        Abundance column (``M_H`` takes the systematics of ``FE_H``).
    logg_reported : ndarray
        Reported log g (dex); the polynomial is in ``LOGG - 2.2``.
    teff_reported : ndarray or None
        Reported Teff (K), needed when ``chem["teff_systematics"]`` is set.
    telescope : ndarray of str or None
        Telescope of every star, needed when ``chem["telescope_offsets"]`` is set.
    chem : dict
        Chemistry settings (``systematics``, ``teff_systematics``, ``teff_reference``,
        ``telescope_offsets``).

    Returns
    -------
    terms : list of ndarray
        The log g terms by increasing power, then the Teff term and the telescope offsets when
        set. The caller adds them left to right, so that the default quadratic systematics give
        values bit-identical to earlier versions of the simulator.
    """
    key = "FE_H" if column == "M_H" else column
    sys_ = chem["systematics"]
    lg = logg_reported - LOGG_REFERENCE
    terms = [sys_.loc[key, col] * (lg if p == 1 else lg**p)
             for col, p in logg_powers(sys_.columns).items()]
    teff_coef = per_abundance(chem["teff_systematics"], "teff_systematics")[key]
    if teff_coef != 0.0:
        terms.append(teff_coef * (teff_reported - chem["teff_reference"]) / 1000.0)
    offsets = telescope_offset_table(chem["telescope_offsets"])
    for name in offsets.columns:
        if offsets.loc[key, name] != 0.0:
            terms.append(np.where(telescope == name, offsets.loc[key, name], 0.0))
    return terms


def measure_abundances(rng, truth, logg_reported, snr, chem, *, teff_reported=None,
                       telescope=None):
    """Reported abundances and uncertainties (dex), with systematics, noise and missing values.

    Parameters
    ----------
    rng : numpy.random.Generator
    truth : dict of ndarray
        True abundances (dex).
    logg_reported : ndarray
        Reported log g (dex).
    snr : ndarray
        Signal-to-noise ratio per pixel.
    chem : dict
        Chemistry settings.
    teff_reported : ndarray, optional
        Reported Teff (K), for the optional Teff systematic.
    telescope : ndarray of str, optional
        Telescope of every star, for the optional telescope offsets.

    Returns
    -------
    values : dict of ndarray
        ``<X>_FE``, ``FE_H``, ``ALPHA_M``, ``M_H`` and their ``_ERR`` columns.
    """
    noise_scale = np.clip(100.0 / snr, 0.3, 3.0)
    specs = {"FE_H": (chem["feh_error"], chem["feh_missing"]),
             "ALPHA_M": (chem["alpha_error"], chem["feh_missing"]),
             "M_H": (chem["feh_error"], chem["feh_missing"])}
    specs.update({f"{x}_FE": _ELEMENT_TABLE[x][4:] for x in ELEMENTS})
    out = {}
    n = logg_reported.size
    for col, (err0, missing) in specs.items():
        err = err0 * noise_scale * rng.uniform(0.8, 1.25, n)
        value = truth[col]
        for term in nuisance_systematic(col, logg_reported, teff_reported, telescope, chem):
            value = value + term
        value = value + rng.normal(0.0, 1.0, n) * err
        # values go missing more often at low signal-to-noise
        lost = rng.uniform(0.0, 1.0, n) < missing * noise_scale
        value[lost] = np.nan
        err[lost] = np.nan
        out[col], out[f"{col}_ERR"] = value, err
    return out
