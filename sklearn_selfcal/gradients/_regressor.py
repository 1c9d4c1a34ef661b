"""``BrokenPowerLawRegressor``: the MCMC fit of a broken line to a radial profile (equation 9).

Section 4.1 of Eilers et al. (2022), Figure 8. The model and its posterior are plain functions in
:mod:`sklearn_selfcal._kernels.broken_line`; this module validates, starts and runs the sampler.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import emcee
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._kernels import broken_line as _bl
from .._validation import (check_finite_column, check_numeric_columns, check_positive_column,
                           check_table, clean_column, column_index, estimator_input, name_of,
                           numeric_values)

__all__ = ["BrokenPowerLawRegressor"]


# Upper bound on the number of (posterior sample x radius) model evaluations held at once in
# predict.
_PREDICT_CHUNK_ELEMENTS = 2**21
# Number of candidate knees in the least-squares scan that starts the walkers.
_N_KNEE_GRID = 400


class BrokenPowerLawRegressor(RegressorMixin, BaseEstimator):
    """Broken-line fit of an abundance against Galactocentric radius, sampled with emcee (eq. 9).

    The model of an abundance ``y`` (dex) against radius ``R`` (kpc) is ``y = m1 R + b`` for
    ``R <= k`` and ``y = (m1 k + b) + m2 (R - k)`` for ``R > k``, with a Gaussian likelihood whose
    variance is ``sigma_i**2`` (the per-point uncertainty passed to :meth:`fit`), plus ``s**2`` when
    an intrinsic scatter ``s`` is fitted. The priors are uniform in ``m1, m2, b, k`` and in ``ln s``
    within the bounds below. The walkers start in a small ball around a weighted least-squares fit
    whose knee is found by scanning a grid of knees over the prior range of ``k`` within the data.

    Parameters
    ----------
    n_walkers : int, default=32
        Number of emcee walkers; at least twice the number of parameters (4, or 5 with scatter).
    n_steps : int, default=5000
        Number of steps every walker takes (including burn-in).
    burn_in : int, default=1000
        Steps discarded from the start of every walker's chain.
    thin : int, default=10
        Keep every ``thin``-th step after burn-in. The posterior sample has
        ``n_walkers * ceil((n_steps - burn_in) / thin)`` rows.
    m1_bounds, m2_bounds : tuple of float, default=(-1.0, 1.0)
        Uniform-prior bounds of the inner and outer slopes (dex/kpc).
    b_bounds : tuple of float, default=(-5.0, 5.0)
        Uniform-prior bounds of the value of the inner line at ``R = 0`` (dex).
    k_bounds : tuple of float or None, default=None
        Uniform-prior bounds of the knee (kpc); ``None`` means the range of the radii passed to
        :meth:`fit`.
    intrinsic_scatter : {"auto"} or bool, default="auto"
        Whether to fit an intrinsic scatter ``s`` (dex), a fifth parameter sampled as ``ln s``.
        ``"auto"`` fits it exactly when ``sigma`` is not given (the scatter is then the whole noise
        model); with ``sigma`` given, e.g. the uncertainties of binned medians, it is not fitted.
    ln_scatter_bounds : tuple of float, default=(-10.0, 2.0)
        Uniform-prior bounds of ``ln s`` (``s`` in dex).
    init_scale : float, default=1e-4
        Standard deviation of the initial walker ball around the least-squares start, as a fraction
        of the width of every parameter's prior range.
    autocorr_tol : float, default=50
        Warn (:class:`~sklearn.exceptions.ConvergenceWarning`) when the post-burn-in chain is
        shorter than ``autocorr_tol`` integrated autocorrelation times of any parameter (emcee's
        criterion for a reliable autocorrelation estimate).
    radius_column : None, int or str, default=None
        Which column of ``X`` holds the radius R (kpc). ``None``: ``X`` must have exactly one
        column. An int selects a column by position and a str by name (``X`` a DataFrame); the other
        columns are then ignored, so the regressor can be given a whole catalogue.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial walker ball and emcee's own generator, making the chain reproducible; the
        global numpy random state is not touched.
    verbose : int, default=0
        Show emcee's progress bar when truthy.

    Attributes
    ----------
    m1_, m2_ : float
        Posterior medians of the inner and outer slopes (dex/kpc).
    b_ : float
        Posterior median of the inner line's value at ``R = 0`` (dex).
    k_ : float
        Posterior median of the knee (kpc).
    samples_ : ndarray of shape (n_samples, 4)
        Posterior samples after burn-in and thinning, columns ``(m1, m2, b, k)``.
    scatter_samples_ : ndarray of shape (n_samples,) or None
        Posterior samples of the intrinsic scatter ``s`` (dex), aligned with ``samples_``; ``None``
        when no scatter is fitted.
    scatter_ : float or None
        Posterior median of ``s`` (dex), or ``None``.
    summary_ : pandas.DataFrame
        One row per parameter (``m1, m2, b, k`` and ``scatter`` when fitted) with columns
        ``median``, ``p16``, ``p84`` (16th and 84th percentiles), ``err_minus = median - p16``,
        ``err_plus = p84 - median`` and ``std`` (posterior standard deviation); units as above.
    fit_scatter_ : bool
        Whether the intrinsic scatter was fitted.
    k_bounds_ : tuple of float
        The knee prior bounds used (kpc).
    theta_start_ : ndarray of shape (n_params,)
        The least-squares starting point ``(m1, m2, b, k[, ln s])``.
    acceptance_fraction_ : ndarray of shape (n_walkers,)
        Fraction of accepted proposals of every walker (about 0.2-0.5 is healthy).
    autocorr_time_ : ndarray of shape (n_params,)
        Integrated autocorrelation time (steps) of ``(m1, m2, b, k[, ln s])`` on the post-burn-in
        chain.
    n_features_in_ : int
        Number of columns of ``X`` (1 unless ``radius_column`` selects one of several).
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of the columns of ``X`` when it was a DataFrame with string column names.

    See Also
    --------
    radial_abundance_profile : The binned median profiles this estimator is usually fitted to.

    Notes
    -----
    ``sigma`` reaches :meth:`fit` through scikit-learn's metadata routing; it is requested by
    default (a per-point uncertainty is part of this model's likelihood), so
    ``GridSearchCV(...).fit(X, y, sigma=err)`` and ``cross_val_score(..., params={"sigma": err})``
    slice and route it with no further set-up; ``set_fit_request(sigma=False)`` opts out.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_selfcal.gradients import BrokenPowerLawRegressor
    >>> R = np.arange(1.0, 22.0, 2.0)
    >>> y = 0.41 - 0.057 * np.minimum(R, 14.5) - 0.019 * np.maximum(R - 14.5, 0)
    >>> reg = BrokenPowerLawRegressor(random_state=0)
    >>> reg = reg.fit(R[:, None], y, sigma=np.full(R.size, 0.01))
    >>> round(reg.m1_, 2), round(reg.k_)
    (-0.06, 15)
    """

    __metadata_request__fit = {"sigma": True}

    _parameter_constraints = {
        "n_walkers": [Interval(Integral, 2, None, closed="left")],
        "n_steps": [Interval(Integral, 2, None, closed="left")],
        "burn_in": [Interval(Integral, 0, None, closed="left")],
        "thin": [Interval(Integral, 1, None, closed="left")],
        "m1_bounds": ["array-like"],
        "m2_bounds": ["array-like"],
        "b_bounds": ["array-like"],
        "k_bounds": ["array-like", None],
        "intrinsic_scatter": [StrOptions({"auto"}), "boolean"],
        "ln_scatter_bounds": ["array-like"],
        "init_scale": [Interval(Real, 0, None, closed="neither")],
        "autocorr_tol": [Interval(Real, 0, None, closed="neither")],
        "radius_column": [None, Integral, str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        n_walkers=32,
        n_steps=5000,
        burn_in=1000,
        thin=10,
        m1_bounds=(-1.0, 1.0),
        m2_bounds=(-1.0, 1.0),
        b_bounds=(-5.0, 5.0),
        k_bounds=None,
        intrinsic_scatter="auto",
        ln_scatter_bounds=(-10.0, 2.0),
        init_scale=1e-4,
        autocorr_tol=50,
        radius_column=None,
        random_state=None,
        verbose=0,
    ):
        self.n_walkers = n_walkers
        self.n_steps = n_steps
        self.burn_in = burn_in
        self.thin = thin
        self.m1_bounds = m1_bounds
        self.m2_bounds = m2_bounds
        self.b_bounds = b_bounds
        self.k_bounds = k_bounds
        self.intrinsic_scatter = intrinsic_scatter
        self.ln_scatter_bounds = ln_scatter_bounds
        self.init_scale = init_scale
        self.autocorr_tol = autocorr_tol
        self.radius_column = radius_column
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = False
        return tags

    # ------------------------------------------------------------------ validation helpers

    def _check_bounds(self):
        """Checks across parameters that the constraints cannot express."""
        if self.burn_in >= self.n_steps:
            raise ValueError(
                f"burn_in ({self.burn_in}) must be smaller than n_steps ({self.n_steps})"
            )
        for name in ("m1_bounds", "m2_bounds", "b_bounds", "ln_scatter_bounds", "k_bounds"):
            value = getattr(self, name)
            if not (name == "k_bounds" and value is None):
                _as_bounds(value, name)

    def _validate_X(self, X, *, reset, y=None):
        """The radius (kpc, finite, not in pc) and ``y`` (dex, finite; masked entries refused)."""
        what = type(self).__name__
        X = estimator_input(X, what)
        if isinstance(X, pd.DataFrame):
            check_numeric_columns(X, what=what)
        if reset:
            y_name = name_of(y, "y")
            if isinstance(y, pd.DataFrame):
                check_table(y, what)
            elif isinstance(y, pd.Series | np.ndarray | list) and np.ndim(y) == 1:
                y = clean_column(y, y_name, what=what, finite=True)
            X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64,
                                 ensure_all_finite=False)
            y = clean_column(y, y_name, what=what, finite=True)
        else:
            X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=False)
        index = self._radius_index(X.shape[1])
        names = getattr(self, "feature_names_in_", None)
        name = "R" if names is None else str(names[index])
        return clean_column(X[:, index], name, what=what, finite=True, kpc=True), y

    def _radius_index(self, n_columns):
        """Position of the radius column in ``X`` (errors name what is wrong)."""
        col = self.radius_column
        if col is None:
            if n_columns != 1:
                raise ValueError(
                    "X must have exactly one column, the Galactocentric radius R (kpc); got an "
                    f"array with {n_columns} columns (set radius_column to pick one of them)"
                )
            return 0
        if isinstance(col, str):
            names = getattr(self, "feature_names_in_", None)
            if names is None:
                raise ValueError(
                    f"radius_column={col!r} names a column but X has no column names; pass a "
                    "DataFrame or give the column's position"
                )
            return column_index(names, col, what="BrokenPowerLawRegressor radius_column")
        if isinstance(col, Integral) and not isinstance(col, bool) and -n_columns <= col < n_columns:
            return int(col) % n_columns
        raise ValueError(
            f"radius_column must be None, a column name or a position in [0, {n_columns}); got {col!r}"
        )

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sigma=None):
        """Sample the posterior of ``(m1, m2, b, k)`` (and ``s``) given radii and abundances.

        Parameters
        ----------
        X : array-like of shape (n_points, 1)
            Galactocentric radius R (kpc), e.g. bin centres of a radial profile.
        y : array-like of shape (n_points,)
            Abundance (dex), e.g. the median [Fe/H] of each bin.
        sigma : array-like of shape (n_points,) or (n_points, n_points), default=None
            Uncertainty of every ``y`` (dex, positive), e.g. ``1.253 std / sqrt(N)`` of a binned
            median; or, as in :func:`scipy.optimize.curve_fit`, the covariance matrix of the ``y``
            (dex^2, symmetric positive definite) when their errors are correlated (e.g. medians
            sharing distance uncertainties, :func:`~sklearn_selfcal.gradients.profile_covariance`;
            note that a broken line that does not describe the data exactly can move far along
            the directions a strongly correlated covariance leaves free). Routed by metadata
            routing (requested by default; a covariance cannot be split into cross-validation
            folds). With
            ``None`` the noise is modelled by the intrinsic scatter alone (requires
            ``intrinsic_scatter`` "auto" or True).

        Returns
        -------
        self : BrokenPowerLawRegressor
            The fitted estimator.
        """
        self._check_bounds()
        R, y = self._validate_X(X, reset=True, y=y)
        n = R.size
        sigma = _validate_sigma(sigma, n)
        n_distinct = np.unique(R).size
        if n_distinct < 4:
            raise ValueError(
                "a broken line (m1, m2, b, k) needs at least 4 distinct radii in X; got "
                f"{n_distinct} distinct value(s) among n_samples = {n}"
            )
        fit_scatter = (
            sigma is None if self.intrinsic_scatter == "auto" else bool(self.intrinsic_scatter)
        )
        if sigma is None and not fit_scatter:
            raise ValueError(
                "sigma is None and intrinsic_scatter=False leaves no noise model; pass sigma (dex) "
                "or set intrinsic_scatter='auto' or True"
            )
        n_params = 5 if fit_scatter else 4
        if self.n_walkers < 2 * n_params:
            raise ValueError(
                f"n_walkers must be an integer >= 2 * n_params = {2 * n_params} "
                f"(emcee's stretch move); got {self.n_walkers!r}"
            )

        bounds = self._prior_bounds(R, fit_scatter)
        sigma = np.zeros(n) if sigma is None else sigma  # the scatter alone is the noise
        theta0 = self._least_squares_start(R, y, sigma, bounds, fit_scatter)
        rng = check_random_state(self.random_state)
        chain = self._sample(R, y, sigma, bounds, theta0, fit_scatter, rng)

        self.samples_ = np.ascontiguousarray(chain[:, :4])
        self.fit_scatter_ = fit_scatter
        self.scatter_samples_ = np.exp(chain[:, 4]) if fit_scatter else None
        self.k_bounds_ = tuple(float(v) for v in bounds[3])
        self.theta_start_ = theta0
        self.m1_, self.m2_, self.b_, self.k_ = (float(v) for v in np.median(self.samples_, axis=0))
        self.scatter_ = float(np.median(self.scatter_samples_)) if fit_scatter else None
        self.summary_ = self._summary()
        return self

    def _prior_bounds(self, R, fit_scatter):
        """Uniform-prior bounds, shape (n_params, 2); the knee's default is the range of R."""
        k_bounds = (R.min(), R.max()) if self.k_bounds is None else self.k_bounds
        bounds = [self.m1_bounds, self.m2_bounds, self.b_bounds, k_bounds]
        names = ["m1_bounds", "m2_bounds", "b_bounds", "k_bounds"]
        if fit_scatter:
            bounds.append(self.ln_scatter_bounds)
            names.append("ln_scatter_bounds")
        return np.array(
            [_as_bounds(b, name) for b, name in zip(bounds, names, strict=True)], dtype=float
        )

    def _sample(self, R, y, sigma, bounds, theta0, fit_scatter, rng):
        """Run emcee from a small ball around ``theta0``; return the flat, thinned, burnt-in chain.

        Sets ``acceptance_fraction_`` and ``autocorr_time_``; the sampler is discarded.
        """
        n_params = bounds.shape[0]
        width = bounds[:, 1] - bounds[:, 0]
        p0 = theta0 + self.init_scale * width * rng.standard_normal((self.n_walkers, n_params))
        p0 = np.clip(p0, bounds[:, 0] + 1e-6 * width, bounds[:, 1] - 1e-6 * width)
        sampler = emcee.EnsembleSampler(
            self.n_walkers,
            n_params,
            _bl.log_prob,
            kwargs=dict(
                R=R,
                y=y,
                sigma=sigma,
                bounds=bounds,
                scatter=fit_scatter,
                noise=_bl.noise_basis(sigma),
            ),
            vectorize=True,
        )
        # emcee draws from its own numpy RandomState; seed it from ours (global state untouched).
        sampler.random_state = np.random.RandomState(
            rng.randint(np.iinfo(np.int32).max)
        ).get_state()
        sampler.run_mcmc(p0, self.n_steps, progress=bool(self.verbose))
        self.acceptance_fraction_ = np.array(sampler.acceptance_fraction, dtype=float)
        self.autocorr_time_ = self._autocorr(sampler.get_chain(discard=self.burn_in))
        return sampler.get_chain(discard=self.burn_in, thin=self.thin, flat=True)

    @staticmethod
    def _least_squares_start(R, y, sigma, bounds, fit_scatter):
        """Least-squares ``(m1, m2, b, k[, ln s])``, the knee scanned within the prior and the data.

        The knee grid spans the prior range of ``k`` within the second-smallest and second-largest
        distinct radius (so both segments hold data); the starting scatter is the residual rms in
        excess of the given uncertainties.
        """
        distinct = np.unique(R)
        lo = max(bounds[3, 0], distinct[1])
        hi = min(bounds[3, 1], distinct[-2])
        if not lo < hi:  # the knee prior lies (mostly) outside the data: scan the prior itself
            lo, hi = bounds[3]
        k_grid = np.linspace(lo, hi, _N_KNEE_GRID + 2)[1:-1]
        point_sigma = np.sqrt(np.diag(sigma)) if sigma.ndim == 2 else sigma
        theta0, _ = _bl.least_squares_start(R, y, np.where(point_sigma > 0, point_sigma, 1.0),
                                            k_grid)
        if fit_scatter:
            resid = y - _bl.broken_line(R, *theta0)
            excess = np.mean(resid**2) - np.mean(point_sigma**2)
            theta0 = np.append(theta0, 0.5 * np.log(max(excess, 1e-12)))
        width = bounds[:, 1] - bounds[:, 0]
        return np.clip(theta0, bounds[:, 0] + 0.01 * width, bounds[:, 1] - 0.01 * width)

    def _autocorr(self, chain):
        """Integrated autocorrelation time per parameter, warning when the chain is too short."""
        n_kept = chain.shape[0]
        # tol=0 turns emcee's own check (which raises or logs) off; the check is done here instead.
        tau = emcee.autocorr.integrated_time(chain, tol=0, quiet=True)
        if np.any(self.autocorr_tol * tau > n_kept) or not np.all(np.isfinite(tau)):
            names = list(_bl.PARAMETER_NAMES) + ["ln_s"]
            worst = int(np.nanargmax(tau)) if np.any(np.isfinite(tau)) else 0
            warnings.warn(
                f"the post-burn-in chain ({n_kept} steps) is shorter than autocorr_tol="
                f"{self.autocorr_tol} autocorrelation times (largest: {tau[worst]:.1f} steps for "
                f"{names[worst]}); the autocorrelation estimate and the posterior summaries may be "
                "unreliable: increase n_steps",
                ConvergenceWarning,
                stacklevel=4,  # _autocorr <- _sample <- fit <- the caller
            )
        return tau

    def _summary(self):
        names = list(_bl.PARAMETER_NAMES)
        samples = self.samples_
        if self.fit_scatter_:
            names.append("scatter")
            samples = np.column_stack([samples, self.scatter_samples_])
        p16, p50, p84 = np.percentile(samples, [16, 50, 84], axis=0)
        summary = pd.DataFrame(
            {
                "median": p50,
                "p16": p16,
                "p84": p84,
                "err_minus": p50 - p16,
                "err_plus": p84 - p50,
                "std": samples.std(axis=0, ddof=1),
            },
            index=pd.Index(names, name="parameter"),
        )
        return summary

    # ------------------------------------------------------------------ predict

    def predict(self, X, return_std=False):
        """Posterior predictive mean (and standard deviation) of the abundance at radii ``X``.

        Parameters
        ----------
        X : array-like of shape (n_points, 1)
            Galactocentric radius R (kpc).
        return_std : bool, default=False
            Also return the posterior predictive standard deviation.

        Returns
        -------
        y_mean : ndarray of shape (n_points,)
            Mean of equation 9 over the posterior samples (dex).
        y_std : ndarray of shape (n_points,)
            Only with ``return_std``: standard deviation over the posterior samples of the model
            line (dex), with the intrinsic scatter added in quadrature (mean of ``s**2``) when it
            was fitted. Measurement errors of new points are not included.

        Notes
        -----
        The samples are evaluated in chunks of radii so that memory stays bounded (about
        ``2**21`` model values at a time) for any number of samples and radii.
        """
        check_is_fitted(self, "samples_")
        R, _ = self._validate_X(X, reset=False)
        n_samples = self.samples_.shape[0]
        chunk = max(1, _PREDICT_CHUNK_ELEMENTS // n_samples)
        mean = np.empty(R.size)
        std = np.empty(R.size) if return_std else None
        for start in range(0, R.size, chunk):
            lines = _bl.broken_line_batch(self.samples_, R[start : start + chunk])
            mean[start : start + chunk] = lines.mean(axis=0)
            if return_std:
                std[start : start + chunk] = lines.std(axis=0)
        if not return_std:
            return mean
        if self.fit_scatter_:
            std = np.sqrt(std**2 + np.mean(self.scatter_samples_**2))
        return mean, std


def _validate_sigma(sigma, n):
    """``sigma`` as finite positive uncertainties (n,) or a positive definite covariance (n, n)."""
    if sigma is None:
        return None
    if isinstance(sigma, pd.DataFrame):
        check_table(sigma, "BrokenPowerLawRegressor sigma")
    if isinstance(sigma, pd.Series | np.ndarray | list) and np.ndim(sigma) == 1:   # named after its column, cleaned by its role (FE_H_ERR: 0-5 dex)
        sigma = clean_column(sigma, name_of(sigma, "sigma"), what="BrokenPowerLawRegressor",
                             finite=True)
    sigma = numeric_values(sigma, "sigma")  # masked entries NaN, refused below
    if sigma.shape == (n, n) and n > 1:
        check_finite_column(sigma.ravel(), "sigma")
        _bl.noise_basis(sigma)  # symmetric positive definite, or a clear error
        return sigma
    if sigma.ndim != 1 or sigma.shape[0] != n:
        raise ValueError(
            f"sigma must have shape (n_points,) = ({n},) like y, or (n_points, n_points) for a "
            f"covariance; got shape {sigma.shape}"
        )
    check_finite_column(sigma, "sigma")
    return check_positive_column(sigma, "sigma")


def _as_bounds(value, name):
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a pair (lower, upper) of numbers; got {value!r}"
        ) from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must be finite with lower < upper; got {value!r}")
    return lo, hi
