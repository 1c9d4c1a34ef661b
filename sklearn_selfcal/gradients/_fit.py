"""The broken power-law fit of a radial profile with its uncertainties propagated.

One MCMC run on the paper's uncertainties of the binned medians gives the posterior (the paper's
errors); the distance and calibration uncertainties are propagated by refitting, by weighted least
squares, the profile of every Monte Carlo draw and adding the spread of the refitted parameters in
quadrature. Measured on the demo survey (the package's own pipeline on ``make_survey``), fitting
once with the full propagated covariance of the bins instead (generalised least squares) moves the
point estimates by up to 3 of the new standard deviations: the calibration covariance is nearly a
common offset of all bins and the broken line is not an exact description of the profile in
current radius, so the fit leans on the directions the covariance leaves free. Refitting the draws
keeps the point estimate of the paper's fit and costs milliseconds per draw.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from .._kernels import broken_line as _bl
from .._paper import ALPHA_SPLIT, PAPER_RADIUS_BINS
from ._profiles import POPULATIONS, profile_with_draws
from ._regressor import BrokenPowerLawRegressor

__all__ = ["check_fit_options", "fit_radial_gradient"]

_PARAMETERS = ["m1", "m2", "b", "k"]
_N_KNEES = 1000  # knee grid of the least-squares refits


def fit_radial_gradient(frame, column="FE_H_NEW", *, population="low_alpha", radius="R_MEDIAN",
                        radius_column="R", split="ALPHA_M", split_value=ALPHA_SPLIT,
                        bins=PAPER_RADIUS_BINS, min_stars=4, radius_draws=None,
                        calibration_draws=None, n_draws=100, random_state=None,
                        **regressor_params):
    """Radial profile of one abundance, its broken power-law fit and the fit's full error budget.

    The profile (:func:`radial_abundance_profile`) of ``column`` is fitted once by
    :class:`BrokenPowerLawRegressor` with the paper's uncertainties of the bins' medians
    (``1.253 std / sqrt(N)``, the scatter of the stars). With ``radius_draws`` (distance
    uncertainties, e.g. :func:`radius_sampler`) and/or ``calibration_draws`` (the calibration's
    coefficient uncertainty, :meth:`~sklearn_selfcal.NuisanceCalibrator.sample_transform`), the
    profile of every draw is refitted by weighted least squares and the standard deviation of the
    refitted parameters over the draws is added in quadrature to the posterior's errors.

    Parameters
    ----------
    frame : DataFrame
        One row per star (e.g. the disk sample): ``radius_column`` (kpc), ``column`` (dex),
        ``split`` (dex).
    column : str, default "FE_H_NEW"
        The abundance column (dex) whose profile is fitted (the calibrated [Fe/H] by default).
    population : {"low_alpha", "high_alpha", "all"}, default "low_alpha"
        The profile rows fitted.
    radius : {"R_MEDIAN", "R"}, default "R_MEDIAN"
        Where every bin is placed (kpc): the median radius of its stars or the bin centre.
    radius_column : str, default "R"
        Column of Galactocentric radius (kpc); :func:`radial_abundance_profile`'s ``radius``.
    split : str or None, default "ALPHA_M"
        Column splitting the populations ([alpha/M], dex); ``None`` gives only ``"all"``.
    split_value : float, default=ALPHA_SPLIT (0.12)
        Low-alpha stars have ``split < split_value`` (dex).
    bins : array-like of float, default=PAPER_RADIUS_BINS
        Increasing bin edges (kpc); the default gives the paper's 2-kpc bins from 0 to 22 kpc.
    min_stars : int, default 4
        Bins with fewer finite values of ``column`` get NaN median and uncertainty.
    radius_draws : ndarray of shape (n_draws, n_stars), callable or None
        Monte Carlo radii (kpc), see :func:`radial_abundance_profile`.
    calibration_draws : ndarray of shape (n_draws, n_stars, 1), callable or None
        Monte Carlo draws of ``column`` (a callable returns an array of shape (n_stars, 1) or
        (n_stars,)), see :func:`radial_abundance_profile`.
    n_draws : int, default 100
        Calls of a callable ``radius_draws`` or ``calibration_draws``.
    random_state : int, numpy Generator or RandomState, or None
        Seeds the draws' generator and, unless given in ``regressor_params``, the MCMC.
    **regressor_params
        Of :class:`BrokenPowerLawRegressor` (``n_walkers``, ``n_steps``, ``burn_in``, ``thin``,
        ``verbose``, ``k_bounds``, ...).

    Returns
    -------
    result : Bunch
        ``profile`` (DataFrame, with ``<column>_ERR_DIST`` / ``_ERR_CAL`` / ``_ERR_TOTAL`` when
        drawn); ``regressor`` (fitted on the paper's uncertainties); ``parameter_draws`` (dict
        source -> ndarray (n_valid_draws, 4) of refitted ``m1, m2, b, k``); and ``errors``, a
        DataFrame indexed ``m1, m2, b, k`` (dex/kpc, dex/kpc, dex, kpc) with the posterior's
        ``median``, ``err_minus``, ``err_plus``, ``std`` (the paper's errors), ``std_distance`` and
        ``std_calibration`` (the propagated standard deviations, 0 when not drawn) and
        ``err_minus_total``, ``err_plus_total``, ``std_total`` (in quadrature).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_selfcal.gradients import fit_radial_gradient
    >>> rng = np.random.default_rng(0)
    >>> R = rng.uniform(0, 22, 4000)
    >>> feh = 0.41 - 0.057 * np.minimum(R, 14.5) - 0.019 * np.maximum(R - 14.5, 0)
    >>> frame = pd.DataFrame({"R": R, "FE_H": feh + rng.normal(0, 0.1, R.size), "ALPHA_M": 0.0})
    >>> draws = R * rng.lognormal(0.0, 0.1, (40, R.size))  # 10 % radius errors
    >>> fit = fit_radial_gradient(frame, "FE_H", radius_draws=draws, random_state=0,
    ...                           n_steps=1500, burn_in=500, autocorr_tol=20)
    >>> bool(fit.errors.loc["m1", "std_total"] > fit.errors.loc["m1", "std"])
    True
    """
    params = {"random_state": random_state, **regressor_params}
    check_fit_options(population=population, radius=radius, **params)
    if calibration_draws is not None and callable(calibration_draws):
        draw_values = calibration_draws

        def calibration_draws(rng):
            return np.asarray(draw_values(rng), dtype=float).reshape(-1, 1)

    profile, draws = profile_with_draws(
        frame, [column], radius=radius_column, bins=bins, split=split, split_value=split_value,
        min_stars=min_stars, n_bootstrap=0, radius_draws=radius_draws,
        calibration_draws=calibration_draws, n_draws=n_draws, random_state=random_state)
    rows = (profile["population"] == population).to_numpy()
    y = profile.loc[rows, column].to_numpy(dtype=float)
    sigma = profile.loc[rows, f"{column}_ERR"].to_numpy(dtype=float)
    x = profile.loc[rows, radius].to_numpy(dtype=float)
    ok = np.isfinite(y) & np.isfinite(x) & (sigma > 0)
    regressor = BrokenPowerLawRegressor(**params).fit(x[ok, None], y[ok], sigma=sigma[ok])

    p = POPULATIONS.index(population)
    distinct = np.unique(x[ok])
    lo, hi = max(regressor.k_bounds_[0], distinct[1]), min(regressor.k_bounds_[1], distinct[-2])
    k_grid = np.linspace(*((lo, hi) if lo < hi else regressor.k_bounds_), _N_KNEES + 2)[1:-1]
    parameter_draws, spread = {}, {}
    for source in ("distance", "calibration"):
        spread[source] = np.zeros(4)
        if source not in draws:
            continue
        medians, r_medians = draws[source]
        xs = np.broadcast_to(x, medians[:, p, 0].shape) if radius == "R" or r_medians is None \
            else r_medians[:, p]
        fits = [_refit(xd, yd, sigma, k_grid) for xd, yd in zip(xs, medians[:, p, 0])]
        parameter_draws[source] = np.array([f for f in fits if f is not None]).reshape(-1, 4)
        if len(parameter_draws[source]) > 1:
            spread[source] = parameter_draws[source].std(axis=0, ddof=1)

    errors = regressor.summary_.loc[_PARAMETERS, ["median", "err_minus", "err_plus", "std"]].copy()
    errors["std_distance"] = spread["distance"]
    errors["std_calibration"] = spread["calibration"]
    extra = spread["distance"] ** 2 + spread["calibration"] ** 2
    for name in ("err_minus", "err_plus", "std"):
        errors[f"{name}_total"] = np.sqrt(errors[name] ** 2 + extra)
    return Bunch(profile=profile, regressor=regressor, parameter_draws=parameter_draws,
                 errors=errors)


def check_fit_options(*, population="low_alpha", radius="R_MEDIAN", **regressor_params):
    """Check :func:`fit_radial_gradient`'s options before any computation.

    The run checks its ``[gradient]`` configuration with it before the first step, so that an
    impossible fit (``burn_in >= n_steps``, an unknown population) fails in seconds.

    Parameters
    ----------
    population : {"low_alpha", "high_alpha", "all"}, default "low_alpha"
        The profile rows fitted.
    radius : {"R_MEDIAN", "R"}, default "R_MEDIAN"
        Where every bin is placed (kpc).
    **regressor_params
        Of :class:`BrokenPowerLawRegressor` (``n_walkers``, ``n_steps``, ``burn_in``, ...).

    Returns
    -------
    regressor : BrokenPowerLawRegressor
        Unfitted, with ``regressor_params``.

    Raises
    ------
    ValueError, TypeError
        Naming the option and what it accepts (an unknown option is a TypeError).
    """
    if population not in POPULATIONS:
        raise ValueError(f"population must be one of {POPULATIONS}; got {population!r}")
    if radius not in ("R_MEDIAN", "R"):
        raise ValueError(f"radius must be 'R_MEDIAN' or 'R'; got {radius!r}")
    regressor = BrokenPowerLawRegressor(**regressor_params)
    regressor._validate_params()
    regressor._check_bounds()
    return regressor


def _refit(x, y, sigma, k_grid):
    """Weighted least-squares broken line of one drawn profile (None with fewer than 4 bins)."""
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(sigma) & (sigma > 0)
    if ok.sum() < 4:
        return None
    theta, _ = _bl.least_squares_start(x[ok], y[ok], sigma[ok], k_grid)
    return theta
