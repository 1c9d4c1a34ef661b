"""Spectro-photometric parallaxes: the paper's L1-regularised exponential-linear model (sec. 3.1).

Model (Hogg, Eilers & Rix 2019; eq. 5-7 of the paper): a star's Gaia parallax is
``exp(theta . x + b) + noise``, with ``x`` the log continuum-normalised APOGEE pixels, the Gaia /
2MASS / WISE magnitudes and the five LSF moments (see
:class:`~sklearn_selfcal.parallax_features.SpectroPhotometricFeatures`). The fitted objective is ::

    F(theta, b) = 1/S sum_n s_n (y_n - parallax_zero_point - exp(theta . x_n + b))**2 / (2 sigma_n**2)
                  + alpha sum_{j penalised} |theta_j|

with per-star Gaia parallax uncertainty ``sigma_n`` (mas) and sample weights ``s_n``
(``S = sum_n s_n``, i.e. ``N`` without weights). The paper minimises
``chi2 / 2 + lambda |P theta|_1`` over its ``N`` training stars, which is ``N`` times ``F`` with
``alpha = lambda / N``: alpha is the penalty per star, so a value tuned on one training-set size
carries over to another. The paper's ``lambda = 160``, with each half of its 79,529 parent stars
(N ~ 39,765) as training set, is ``alpha ~ 4.0e-3`` (:data:`PAPER_ALPHA`). This holds for the
paper's unstandardised features (natural-log fluxes, magnitudes): the features are not
standardised here either, so a pixel coefficient's penalty is per unit log-flux.

Observed parallaxes may be negative and enter the fit as they are (no logarithm of the data is
taken). The solver (:mod:`sklearn_selfcal._kernels.explinear_l1`) finds the exact L1 optimum
(exact zeros) and stops on the relative KKT residual; ``exp`` is evaluated with its exponent
capped at 30.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from joblib import Parallel, delayed
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import check_cv
from sklearn.utils.metadata_routing import MetadataRequest
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._kernels.explinear_l1 import (ExpLinearChi2, RowSubset, alpha_max, matvec, safe_exp,
                                    solve_gauss_newton)
from ._paper import GAIA_PARALLAX_ZERO_POINT, PAPER_ALPHA
from ._progress import progress
from ._validation import check_positive_column
from .parallax_features import LSF_COLUMNS, MAGNITUDE_COLUMNS, SpectroPhotometricFeatures

__all__ = [
    "UNPENALIZED_FEATURES",
    "SpectroPhotometricParallaxRegressor",
    "SpectroPhotometricParallaxRegressorCV",
    "chi_squared",
    "ChiSquaredScorer",
    "fractional_scatter",
    "make_parallax_pipeline",
]

#: Feature names left unpenalised by ``penalized="auto"``: the magnitudes and the LSF moments.
UNPENALIZED_FEATURES = MAGNITUDE_COLUMNS + LSF_COLUMNS


# ------------------------------------------------------------------------------------------
# metric, scorer, scatter
# ------------------------------------------------------------------------------------------
def chi_squared(y_true, y_pred, *, sigma, parallax_zero_point=0.0, sample_weight=None):
    """Mean chi-squared per star of predicted against observed parallaxes.

    Parameters
    ----------
    y_true : array-like of shape (n_stars,)
        Observed (Gaia) parallaxes (mas).
    y_pred : array-like of shape (n_stars,)
        Predicted true parallaxes (mas).
    sigma : array-like of shape (n_stars,)
        Uncertainty of ``y_true`` (mas, > 0).
    parallax_zero_point : float, default=0.0
        Zero point of ``y_true`` (mas), subtracted from it (``observed = true + zero point``);
        use the model's ``parallax_zero_point``.
    sample_weight : array-like of shape (n_stars,), optional

    Returns
    -------
    chi2 : float
        ``average(((y_true - parallax_zero_point - y_pred) / sigma)**2, weights=sample_weight)``.
    """
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    sigma = check_positive_column(np.asarray(sigma, dtype=float), "sigma")
    if not (y_true.shape == y_pred.shape == sigma.shape):
        raise ValueError(f"y_true, y_pred and sigma must have one shape, got {y_true.shape}, "
                         f"{y_pred.shape}, {sigma.shape}")
    z = (y_true - parallax_zero_point - y_pred) / sigma
    return float(np.average(z * z, weights=sample_weight))


class ChiSquaredScorer:
    """Scorer: minus the mean chi-squared per star of held-out parallaxes (greater is better).

    Requests ``sigma`` (per-star parallax uncertainty, mas) through metadata routing, so with
    ``sklearn.set_config(enable_metadata_routing=True)`` ``GridSearchCV(..., scoring=
    ChiSquaredScorer())`` and ``cross_validate`` route the held-out stars' ``sigma`` to it.

    Parameters
    ----------
    parallax_zero_point : float, default=GAIA_PARALLAX_ZERO_POINT
        Zero point of the observed parallaxes (mas, -0.017 for Gaia EDR3), subtracted from them as
        the model does when fitting.
    """

    def __init__(self, parallax_zero_point=GAIA_PARALLAX_ZERO_POINT):
        self.parallax_zero_point = parallax_zero_point
        self._sample_weight_request = None

    def __call__(self, estimator, X, y, sigma=None, sample_weight=None):
        if sigma is None:
            raise ValueError(
                "ChiSquaredScorer needs the held-out stars' sigma: enable metadata routing "
                "(sklearn.set_config(enable_metadata_routing=True)) and pass sigma to fit")
        return -chi_squared(y, estimator.predict(X), sigma=sigma, parallax_zero_point=self.parallax_zero_point,
                            sample_weight=sample_weight)

    def set_score_request(self, *, sample_weight=None):
        """Request ``sample_weight`` (``sigma`` is always requested). Returns ``self``."""
        self._sample_weight_request = sample_weight
        return self

    def get_metadata_routing(self):
        """Metadata request of the scorer: ``sigma`` always, ``sample_weight`` if requested."""
        request = MetadataRequest(owner=type(self).__name__)
        request.score.add_request(param="sigma", alias=True)
        request.score.add_request(param="sample_weight", alias=self._sample_weight_request)
        return request

    def __repr__(self):
        return f"ChiSquaredScorer(parallax_zero_point={self.parallax_zero_point!r})"


def fractional_scatter(y, y_pred, sigma, *, parallax_zero_point=0.0, y_pred_frac_err=None,
                       sample_weight=None):
    """Maximum-likelihood fractional scatter of true about predicted parallaxes.

    The model for held-out stars is ``y_n - parallax_zero_point ~ Normal(pred_n, sigma_n**2 +
    pred_n**2 (e_n**2 + s**2))``, with ``e_n`` the propagated fractional uncertainty of the
    prediction (0 if not given); ``s`` (dimensionless, in [0, 2]) is found by bounded 1-D
    maximisation of the (weighted) Gaussian likelihood.

    Parameters
    ----------
    y, y_pred, sigma : array-like of shape (n_stars,)
        Observed parallaxes, predictions and observed uncertainties (mas).
    parallax_zero_point : float
        Zero point of ``y`` (mas), subtracted from it.
    y_pred_frac_err : array-like of shape (n_stars,), optional
        Fractional uncertainty of each prediction already accounted for.
    sample_weight : array-like of shape (n_stars,), optional

    Returns
    -------
    s : float
        Fractional intrinsic scatter (e.g. 0.09 for 9 per cent).
    """
    y = np.asarray(y, dtype=float) - parallax_zero_point
    pred = np.asarray(y_pred, dtype=float)
    var0 = np.asarray(sigma, dtype=float) ** 2
    if y_pred_frac_err is not None:
        var0 = var0 + (pred * np.asarray(y_pred_frac_err, dtype=float)) ** 2
    r2 = (y - pred) ** 2
    p2 = pred**2
    w = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, dtype=float)

    def nll(s):
        v = var0 + p2 * s * s
        return 0.5 * float(np.sum(w * (r2 / v + np.log(v))))

    return float(minimize_scalar(nll, bounds=(0.0, 2.0), method="bounded",
                                 options={"xatol": 1e-6}).x)


# ------------------------------------------------------------------------------------------
# shared machinery
# ------------------------------------------------------------------------------------------
class _ParallaxModelMixin:
    """Validation, design, solving and prediction shared by the regressor and its CV variant."""

    __metadata_request__fit = {"sigma": True}

    # ---------------------------------------------------------------- validation
    def _validate_X(self, X, *, reset):
        dtype = [np.float64, np.float32] if self.dtype is None else self.dtype
        try:
            return validate_data(self, X, reset=reset, dtype=dtype, ensure_min_samples=1)
        except ValueError as exc:
            if "NaN" not in str(exc) and "infinity" not in str(exc):
                raise
            names = getattr(X, "columns", None)
            arr = np.asarray(X)
            with np.errstate(invalid="ignore"):
                bad = np.flatnonzero(~np.all(np.isfinite(arr.astype(float)), axis=0))
            which = [str(names[j]) if names is not None else f"column {j}" for j in bad[:10]]
            raise ValueError(f"X must be finite; NaN or infinity in feature(s) {which}"
                             + (f" and {bad.size - 10} more" if bad.size > 10 else "")) from exc

    def _validate_targets(self, y, sigma, sample_weight, n):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             "is None")
        y = column_or_1d(np.asarray(y, dtype=np.float64), warn=True)
        if y.shape[0] != n:
            raise ValueError(f"y (observed parallax, mas) must have shape ({n},), got {y.shape}")
        if not np.all(np.isfinite(y)):
            bad = np.flatnonzero(~np.isfinite(y))
            raise ValueError(f"y (observed parallax, mas) must be finite; {bad.size} value(s) are "
                             f"not, e.g. rows {bad[:5].tolist()} (select training stars with "
                             "gaia_training_mask)")
        if sigma is None:
            sigma = np.ones(n)
        else:
            sigma = np.asarray(sigma, dtype=np.float64)
            if sigma.shape != (n,):
                raise ValueError(f"sigma (parallax uncertainty, mas) must have shape ({n},), got "
                                 f"{sigma.shape}")
            check_positive_column(sigma, "sigma")
            if not np.all(np.isfinite(sigma)):
                raise ValueError("column 'sigma' must be finite")
        if sample_weight is None:
            sw = np.ones(n)
        else:
            sw = np.asarray(sample_weight, dtype=np.float64)
            if sw.ndim == 0:
                sw = np.full(n, float(sw))
            if sw.shape != (n,):
                raise ValueError(f"sample_weight must have shape ({n},), got {sw.shape}")
            if not np.all(np.isfinite(sw)) or np.any(sw < 0):
                raise ValueError("sample_weight must be finite and non-negative")
            if sw.sum() <= 0:
                raise ValueError("sample_weight: all weights are zero; at least one star must "
                                 "have a positive weight")
        return y, sigma, sw

    def _check_params(self):
        for name in ("tol",):
            v = getattr(self, name)
            if not isinstance(v, numbers.Real) or not v > 0:
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        if not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 1:
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter!r}")
        if not isinstance(self.parallax_zero_point, numbers.Real) or not np.isfinite(self.parallax_zero_point):
            raise ValueError(f"parallax_zero_point must be a finite number (mas), got {self.parallax_zero_point!r}")

    def _penalized_mask(self, n_features):
        """Boolean mask of penalised features from ``penalized`` and the seen feature names."""
        names = getattr(self, "feature_names_in_", None)
        spec = self.penalized
        if isinstance(spec, str):
            if spec != "auto":
                raise ValueError(
                    f"penalized must be 'auto', a mask, names or indices; got {spec!r}")
            if names is None:
                return np.ones(n_features, dtype=bool)
            return ~np.isin(np.asarray(names, dtype=object), list(UNPENALIZED_FEATURES))
        spec = np.asarray(spec)
        if spec.dtype == bool:
            if spec.shape != (n_features,):
                raise ValueError(f"a boolean penalized mask must have shape ({n_features},), got "
                                 f"{spec.shape}")
            return spec.copy()
        mask = np.zeros(n_features, dtype=bool)
        if spec.dtype.kind in "iu":
            if spec.size and (spec.min() < -n_features or spec.max() >= n_features):
                raise ValueError(f"penalized indices out of range for {n_features} features")
            mask[spec] = True
            return mask
        if names is None:
            raise ValueError("penalized given as feature names needs X with column names "
                             "(a DataFrame, e.g. a pipeline with set_output(transform='pandas'))")
        missing = sorted(set(spec.tolist()) - set(names.tolist()))
        if missing:
            raise KeyError(f"penalized names not among the features: {missing[:10]}")
        return np.isin(names, spec)

    # ---------------------------------------------------------------- design and solving
    def _unpenalized_block(self, X, unpen_cols):
        cols = [np.ones(X.shape[0])] if self.fit_intercept else []
        U = np.empty((X.shape[0], len(cols) + len(unpen_cols)))
        if cols:
            U[:, 0] = 1.0
        if len(unpen_cols):
            U[:, len(cols):] = X[:, unpen_cols]
        return U

    def _datafit(self, y, sigma, sw):
        return ExpLinearChi2(y - self.parallax_zero_point, sw / (sigma**2 * sw.sum()))

    def _initial_coef_u(self, datafit, k):
        coef_u = np.zeros(k)
        if self.fit_intercept:
            mean = np.average(datafit.y, weights=datafit.weights)
            coef_u[0] = np.log(max(mean, 1e-3))
        return coef_u

    def _callback(self, label):
        if not self.verbose:
            return None

        def report(info):
            print(f"[{type(self).__name__}{label}] iteration {info['iteration']}: objective "
                  f"{info['objective']:.8g}, KKT residual {info['kkt']:.2e}, "
                  f"{info['n_active']} non-zero pixel coefficients, "
                  f"{info['n_newton']} Newton steps, {info['time']:.1f} s", flush=True)
        return report

    def _solve(self, X, pen_cols, U, datafit, alpha, coef_u, coef_p, label=""):
        """Unpenalised warm-up (if ``coef_p`` is None) then the penalised solve."""
        if coef_p is None or len(pen_cols) == 0:
            scale = alpha if alpha > 0 else 1.0
            warm = solve_gauss_newton(X, pen_cols[:0], U, datafit, 0.0, coef_u=coef_u,
                                      tol=0.1 * self.tol * scale, max_iter=self.max_iter)
            if len(pen_cols) == 0:
                return warm
            coef_u = warm.coef_u
        return solve_gauss_newton(X, pen_cols, U, datafit, alpha, coef_u=coef_u, coef_p=coef_p,
                                  tol=self.tol, max_iter=self.max_iter,
                                  callback=self._callback(label))

    def _warn_if_not_converged(self, result, what):
        if not result.converged:
            warnings.warn(
                f"{type(self).__name__}: {what} stopped at a relative KKT residual of "
                f"{result.kkt:.2e} > tol={self.tol:g} after {result.n_iter} iterations; "
                "increase max_iter or tol", ConvergenceWarning, stacklevel=3)

    def _store(self, n_features, pen_cols, unpen_cols, result):
        coef = np.zeros(n_features)
        offset = 1 if self.fit_intercept else 0
        coef[unpen_cols] = result.coef_u[offset:]
        coef[pen_cols] = result.coef_p if len(pen_cols) else 0.0
        self.coef_ = coef
        self.intercept_ = float(result.coef_u[0]) if self.fit_intercept else 0.0
        self.n_iter_ = int(result.n_iter)
        self.kkt_residual_ = float(result.kkt)
        self.objective_ = float(result.objective)

    # ---------------------------------------------------------------- prediction
    def _propagated_frac_err(self, X_err, n):
        X_err = np.asarray(X_err, dtype=np.float64)
        if X_err.shape != (n, self.n_features_in_):
            raise ValueError(f"X_err must have the shape of X ({n}, {self.n_features_in_}), got "
                             f"{X_err.shape}")
        nz = np.flatnonzero(self.coef_)
        e = X_err[:, nz]
        if not np.all(np.isfinite(e)):
            raise ValueError("X_err must be finite where the model has non-zero coefficients")
        return np.sqrt(np.sum((e * self.coef_[nz]) ** 2, axis=1))

    def predict(self, X, X_err=None, return_std=False):
        """Spectro-photometric parallaxes, ``exp(x @ coef_ + intercept_)`` (mas).

        Parameters
        ----------
        X : array-like of shape (n_stars, n_features)
            Features (e.g. from ``SpectroPhotometricFeatures``).
        X_err : array-like of shape (n_stars, n_features), optional
            1-sigma feature uncertainties (``SpectroPhotometricFeatures.transform_err``); only
            used with ``return_std``.
        return_std : bool, default=False
            Also return the 1-sigma uncertainty of each prediction: ``pred * sqrt(e**2 + s**2)``
            with ``e = sqrt(sum_j X_err_j**2 coef_j**2)`` the paper's propagation of the feature
            uncertainties (0 without ``X_err``) and ``s`` the fractional ``intrinsic_scatter_``
            (0 if not estimated; see :meth:`estimate_intrinsic_scatter`). A ``Pipeline`` passes
            both keywords on to this method: ``pipe.predict(X, X_err=features.transform_err(X),
            return_std=True)``.

        Returns
        -------
        parallax : ndarray of shape (n_stars,)
            Predicted (true) parallax (mas); no zero point is subtracted.
        parallax_std : ndarray of shape (n_stars,)
            Only with ``return_std`` (mas).
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        nz = np.flatnonzero(self.coef_)
        pred = safe_exp(self.intercept_ + matvec(X, nz, self.coef_[nz]))
        if not return_std:
            return pred
        scatter = getattr(self, "intrinsic_scatter_", None)
        if X_err is None and scatter is None:
            raise ValueError("return_std=True needs X_err (feature uncertainties) or an "
                             "intrinsic_scatter_ (estimate_intrinsic_scatter or the CV fit)")
        frac2 = np.zeros(X.shape[0])
        if X_err is not None:
            frac2 += self._propagated_frac_err(X_err, X.shape[0]) ** 2
        if scatter is not None:
            frac2 += scatter**2
        return pred, pred * np.sqrt(frac2)

    def estimate_intrinsic_scatter(self, X, y, sigma, X_err=None, sample_weight=None):
        """Estimate the fractional intrinsic scatter of the model from held-out stars.

        Uses :func:`fractional_scatter` on stars the model was *not* trained on; the result is
        stored as ``intrinsic_scatter_`` and added in quadrature by ``predict(...,
        return_std=True)``. With ``X_err`` the propagated feature uncertainties are accounted
        for separately; without, the scatter includes them.

        Parameters
        ----------
        X : array-like of shape (n_stars, n_features)
        y : array-like of shape (n_stars,)
            Observed parallaxes (mas).
        sigma : array-like of shape (n_stars,)
            Their uncertainties (mas).
        X_err : array-like of shape (n_stars, n_features), optional
        sample_weight : array-like of shape (n_stars,), optional

        Returns
        -------
        s : float
            Fractional scatter (dimensionless).
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        y, sigma, sw = self._validate_targets(y, sigma, sample_weight, X.shape[0])
        nz = np.flatnonzero(self.coef_)
        pred = safe_exp(self.intercept_ + matvec(X, nz, self.coef_[nz]))
        frac = None if X_err is None else self._propagated_frac_err(X_err, X.shape[0])
        self.intrinsic_scatter_ = fractional_scatter(y, pred, sigma, parallax_zero_point=self.parallax_zero_point,
                                                     y_pred_frac_err=frac, sample_weight=sw)
        return self.intrinsic_scatter_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        # predictions are exp(x . theta) > 0: no R^2 of 0.5 on a signed, standardised target
        # such as scikit-learn's make_regression (observed parallaxes may be negative, so y is
        # not declared positive-only)
        tags.regressor_tags.poor_score = True
        return tags


# ------------------------------------------------------------------------------------------
# the regressor
# ------------------------------------------------------------------------------------------
class SpectroPhotometricParallaxRegressor(_ParallaxModelMixin, RegressorMixin, BaseEstimator):
    """The paper's spectro-photometric parallax model, ``parallax = exp(x @ theta + b)`` (mas).

    Minimises ``1/S sum_n s_n (y_n - parallax_zero_point - exp(theta . x_n + b))**2 / (2 sigma_n**2) +
    alpha sum_{j penalised} |theta_j|`` (module docstring), to its exact optimum: working sets of
    pixels, Newton steps (clipped-Hessian IRLS) whose Lasso subproblems are solved exactly, and a
    line search on the true objective (:func:`sklearn_selfcal._kernels.explinear_l1.
    solve_gauss_newton`), stopping when the relative KKT residual (largest violation of the
    optimality conditions divided by ``alpha``) is below ``tol``. Penalised coefficients are
    exactly zero where the data do not call for them.

    Parameters
    ----------
    alpha : float, default=PAPER_ALPHA
        L1 strength per training star (the paper's ``lambda / N``; ``lambda = 160`` over
        N ~ 39,765 stars gives the default ~4.02e-3), in units of the mean half chi-squared per
        unit coefficient. Independent of the number of training stars.
    penalized : "auto", array-like of bool, of str or of int, default="auto"
        Features whose coefficients are L1-penalised (a mask over features, feature names, or
        indices). "auto": with feature names, every feature except the magnitudes and LSF
        moments (:data:`UNPENALIZED_FEATURES`), i.e. the spectral pixels, as the paper's ``P``;
        without feature names, every feature. Inside a pipeline use
        ``make_pipeline(SpectroPhotometricFeatures(), model).set_output(transform="pandas")`` so
        the names reach the model. The intercept is never penalised.
    fit_intercept : bool, default=True
        Fit the unpenalised constant ``b``.
    parallax_zero_point : float, default=GAIA_PARALLAX_ZERO_POINT
        Zero point of the observed parallaxes (mas), ``observed = true + zero point``, subtracted
        before fitting; -0.017 mas is the median Gaia EDR3 zero point the paper corrects for
        (``make_survey`` injects it). See :mod:`sklearn_selfcal._paper`.
    tol : float, default=1e-4
        Target relative KKT residual.
    max_iter : int, default=100
        Maximum outer (working-set) iterations.
    warm_start : bool, default=False
        Start from the previous solution (same features and penalised set).
    dtype : {None, numpy.float32, numpy.float64}, default=None
        Working dtype of ``X``; None keeps float32 / float64 input as is (no copy). Arithmetic on
        ``X`` is float64 either way (blockwise), so float32 only saves memory.
    verbose : int, default=0
        Print one line per outer iteration.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        ``theta`` (per unit feature; e.g. per unit log-flux, per mag).
    intercept_ : float
        ``b``.
    penalized_ : ndarray of bool of shape (n_features,)
    n_iter_ : int
        Outer iterations used.
    kkt_residual_ : float
        Relative KKT residual at the solution.
    objective_ : float
        ``F`` at the solution.
    intrinsic_scatter_ : float
        Only after :meth:`estimate_intrinsic_scatter`.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only with named input.

    Notes
    -----
    Peak memory: besides ``X`` (kept as given when float32 / float64), the working-set columns
    of ``X`` (at most twice the number of non-zero coefficients, plus 64; copied only while they
    are at most half of ``X``), their Gram matrix and n-vectors: measured on 40,000 stars x
    7,514 float32 pixels (1.12 GB), 0.01 GB at the paper's alpha and under one copy of ``X`` at
    the smallest alphas (see ``benchmarks/bench_parallax_solver.py``).
    Metadata routing: ``sigma`` is requested by ``fit`` by default, so ``GridSearchCV``,
    ``cross_validate`` and ``cross_val_predict`` route it to every fold when routing is enabled
    (without routing they slice and pass fit parameters themselves).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_selfcal import SpectroPhotometricParallaxRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 5))
    >>> plx = np.exp(0.3 * X[:, 0] - 1.0)
    >>> sigma = np.full(300, 0.02)
    >>> y = plx + sigma * rng.normal(size=300) - 0.017
    >>> model = SpectroPhotometricParallaxRegressor(alpha=1e-3).fit(X, y, sigma=sigma)
    >>> bool(np.median(np.abs(model.predict(X) / plx - 1)) < 0.05)
    True
    """

    def __init__(self, alpha=PAPER_ALPHA, *, penalized="auto", fit_intercept=True,
                 parallax_zero_point=GAIA_PARALLAX_ZERO_POINT, tol=1e-4, max_iter=100, warm_start=False,
                 dtype=None, verbose=0):
        self.alpha = alpha
        self.penalized = penalized
        self.fit_intercept = fit_intercept
        self.parallax_zero_point = parallax_zero_point
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.dtype = dtype
        self.verbose = verbose

    def fit(self, X, y, sigma=None, sample_weight=None):
        """Fit the model to observed parallaxes.

        Parameters
        ----------
        X : array-like of shape (n_stars, n_features)
            Features (not modified, not copied when float32 / float64).
        y : array-like of shape (n_stars,)
            Observed Gaia parallaxes (mas); negative values are used as they are.
        sigma : array-like of shape (n_stars,), optional
            Their 1-sigma uncertainties (mas, > 0); ones if not given (unweighted fit).
        sample_weight : array-like of shape (n_stars,), optional
            Non-negative weights multiplying each star's chi-squared term.

        Returns
        -------
        self : SpectroPhotometricParallaxRegressor
        """
        self._check_params()
        if not isinstance(self.alpha, numbers.Real) or not self.alpha >= 0:
            raise ValueError(f"alpha must be a non-negative number, got {self.alpha!r}")
        previous = (self.coef_, self.intercept_, self.penalized_) if (
            self.warm_start and hasattr(self, "coef_")) else None
        X = self._validate_X(X, reset=True)
        y, sigma, sw = self._validate_targets(y, sigma, sample_weight, X.shape[0])
        n_features = X.shape[1]
        mask = self._penalized_mask(n_features)
        pen_cols, unpen_cols = np.flatnonzero(mask), np.flatnonzero(~mask)
        U = self._unpenalized_block(X, unpen_cols)
        datafit = self._datafit(y, sigma, sw)

        coef_u, coef_p = self._initial_coef_u(datafit, U.shape[1]), None
        if previous is not None and previous[0].shape == (n_features,) and np.array_equal(
                previous[2], mask):
            coef_u = np.concatenate([[previous[1]] if self.fit_intercept else [],
                                     previous[0][unpen_cols]])
            coef_p = previous[0][pen_cols]
        result = self._solve(X, pen_cols, U, datafit, float(self.alpha), coef_u, coef_p)
        self._warn_if_not_converged(result, "fit")
        self.penalized_ = mask
        self._store(n_features, pen_cols, unpen_cols, result)
        return self


# ------------------------------------------------------------------------------------------
# the cross-validated path
# ------------------------------------------------------------------------------------------
def _fold_path(model, X, U, y, sigma, sw, train, test, pen_cols, alphas, copy_rows):
    """Warm-started path over ``alphas`` on the training rows; held-out chi2 and predictions.

    With ``copy_rows`` the training rows of ``X`` are copied once (fast contiguous passes; one
    fold at a time keeps the peak at one extra copy of ``X``), otherwise they are gathered block
    by block on every pass (no copy; used when folds run in parallel).
    """
    Xtr = X[train] if copy_rows else RowSubset(X, train)
    datafit = model._datafit(y[train], sigma[train], sw[train])
    Utr = U[train]
    coef_u, coef_p = model._initial_coef_u(datafit, U.shape[1]), None
    Xte = RowSubset(X, test)
    chi2, preds, coefs, results = [], [], [], []
    for i, alpha in enumerate(progress(alphas, desc="alpha path", verbose=model.verbose,
                                       unit="alpha")):
        res = model._solve(Xtr, pen_cols, Utr, datafit, alpha, coef_u, coef_p,
                           label=f" alpha {i + 1}/{len(alphas)}")
        coef_u, coef_p = res.coef_u, res.coef_p
        nz = np.flatnonzero(coef_p)
        pred = safe_exp(U[test] @ coef_u + matvec(Xte, pen_cols[nz], coef_p[nz]))
        chi2.append(chi_squared(y[test], pred, sigma=sigma[test], parallax_zero_point=model.parallax_zero_point,
                                sample_weight=sw[test]))
        preds.append(pred)
        coefs.append((coef_u.copy(), coef_p.copy()))
        results.append(res)
    return np.array(chi2), np.array(preds), coefs, results


class SpectroPhotometricParallaxRegressorCV(_ParallaxModelMixin, RegressorMixin, BaseEstimator):
    """The parallax model with ``alpha`` chosen by K-fold cross-validation along a path.

    As :class:`sklearn.linear_model.LassoCV`: ``alpha_max`` (the smallest strength with all
    penalised coefficients zero) is computed in closed form at the unpenalised optimum, each fold
    is fitted along a geometric grid of ``alphas`` from ``alpha_max`` downwards, every fit warm
    started from the previous one, and scored by the held-out stars' mean chi-squared per star
    (with their own ``sigma``); the model is refitted on all stars at the best ``alpha_``. The
    out-of-fold predictions at ``alpha_`` give ``intrinsic_scatter_`` (:func:`fractional_scatter`,
    including the feature noise).

    Parameters
    ----------
    alphas : int or array-like of float, default=8
        Number of grid values (geometric, from ``alpha_max`` to ``eps * alpha_max``) or the
        values themselves (same units as ``SpectroPhotometricParallaxRegressor.alpha``).
    eps : float, default=1e-3
        Grid extent ``alpha_min / alpha_max``.
    cv : int, cross-validation generator or iterable, default=None
        As in scikit-learn (None: 5-fold). The paper's two random halves are
        ``KFold(2, shuffle=True, random_state=...)``.
    penalized, fit_intercept, parallax_zero_point, tol, max_iter, dtype, verbose
        As for :class:`SpectroPhotometricParallaxRegressor`.
    n_jobs : int, default=None
        Folds fitted in parallel threads. Sequentially (None or 1) each fold's training rows
        are copied once (peak: one extra copy of ``X``); in parallel they are shared, not
        copied, and gathered on the fly (slower per fold).

    Attributes
    ----------
    alpha_ : float
        Chosen strength.
    alphas_ : ndarray of shape (n_alphas,)
        Grid, decreasing.
    alpha_max_ : float
        On all stars.
    chi2_path_ : ndarray of shape (n_alphas, n_folds)
        Held-out mean chi-squared per star.
    coef_, intercept_, penalized_, n_iter_, kkt_residual_, objective_
        Of the refit at ``alpha_`` (see the regressor).
    cv_prediction_ : ndarray of shape (n_stars,)
        Out-of-fold predictions at ``alpha_`` (mas; stars in no test fold are NaN).
    intrinsic_scatter_ : float
        Fractional scatter of the out-of-fold predictions beyond the Gaia uncertainties.
    """

    def __init__(self, alphas=8, *, eps=1e-3, cv=None, penalized="auto", fit_intercept=True,
                 parallax_zero_point=GAIA_PARALLAX_ZERO_POINT, tol=1e-4, max_iter=100, dtype=None, n_jobs=None,
                 verbose=0):
        self.alphas = alphas
        self.eps = eps
        self.cv = cv
        self.penalized = penalized
        self.fit_intercept = fit_intercept
        self.parallax_zero_point = parallax_zero_point
        self.tol = tol
        self.max_iter = max_iter
        self.dtype = dtype
        self.n_jobs = n_jobs
        self.verbose = verbose

    def fit(self, X, y, sigma=None, sample_weight=None):
        """Cross-validate ``alpha`` along a warm-started path and refit at the best one.

        Parameters
        ----------
        X : array-like of shape (n_stars, n_features)
        y : array-like of shape (n_stars,)
            Observed Gaia parallaxes (mas).
        sigma : array-like of shape (n_stars,), optional
            Their uncertainties (mas); ones if not given.
        sample_weight : array-like of shape (n_stars,), optional

        Returns
        -------
        self : SpectroPhotometricParallaxRegressorCV
        """
        self._check_params()
        X = self._validate_X(X, reset=True)
        y, sigma, sw = self._validate_targets(y, sigma, sample_weight, X.shape[0])
        n_features = X.shape[1]
        mask = self._penalized_mask(n_features)
        pen_cols, unpen_cols = np.flatnonzero(mask), np.flatnonzero(~mask)
        U = self._unpenalized_block(X, unpen_cols)
        datafit = self._datafit(y, sigma, sw)

        warm = solve_gauss_newton(X, pen_cols[:0], U, datafit, 0.0,
                                  coef_u=self._initial_coef_u(datafit, U.shape[1]),
                                  tol=1e-10, max_iter=self.max_iter)
        self.alpha_max_ = alpha_max(X, pen_cols, U, datafit, warm.coef_u) if len(pen_cols) else 0.0
        if isinstance(self.alphas, numbers.Integral):
            if self.alphas < 1 or not 0 < self.eps < 1:
                raise ValueError("alphas must be >= 1 and 0 < eps < 1")
            top = self.alpha_max_ if self.alpha_max_ > 0 else 1.0
            alphas = np.geomspace(top, top * self.eps, self.alphas)
        else:
            alphas = np.sort(np.asarray(self.alphas, dtype=float))[::-1]
            if alphas.size == 0 or np.any(alphas < 0):
                raise ValueError("alphas must be non-negative")
        self.alphas_ = alphas

        folds = list(check_cv(self.cv).split(X, y))
        sequential = self.n_jobs in (None, 1)
        out = Parallel(n_jobs=self.n_jobs, prefer="threads")(
            delayed(_fold_path)(self, X, U, y, sigma, sw, train, test, pen_cols, alphas,
                                copy_rows=sequential)
            for train, test in folds)
        self.chi2_path_ = np.column_stack([o[0] for o in out])
        best = int(np.argmin(self.chi2_path_.mean(axis=1)))
        self.alpha_ = float(alphas[best])
        if best == len(alphas) - 1 and len(alphas) > 1:
            warnings.warn(
                f"{type(self).__name__}: the best alpha is the smallest of the grid "
                f"({self.alpha_:.3g}); the optimum may lie below it (decrease eps or pass alphas)",
                UserWarning, stacklevel=2)
        for fold_no, o in enumerate(out):
            for res in o[3]:
                if not res.converged:
                    self._warn_if_not_converged(res, f"the path of fold {fold_no}")
                    break

        self.cv_prediction_ = np.full(X.shape[0], np.nan)
        for (train, test), o in zip(folds, out):
            self.cv_prediction_[test] = o[1][best]
        held = np.isfinite(self.cv_prediction_)
        self.intrinsic_scatter_ = fractional_scatter(
            y[held], self.cv_prediction_[held], sigma[held], parallax_zero_point=self.parallax_zero_point,
            sample_weight=sw[held])

        # refit on all stars, warm started from the first fold's solution at alpha_
        coef_u, coef_p = out[0][2][best]
        result = self._solve(X, pen_cols, U, datafit, self.alpha_, coef_u,
                             coef_p if len(pen_cols) else None, label=" refit")
        self._warn_if_not_converged(result, "the refit")
        self.penalized_ = mask
        self._store(n_features, pen_cols, unpen_cols, result)
        return self


def make_parallax_pipeline(alpha=PAPER_ALPHA, *, features=None, **regressor_params):
    """The paper's parallax model as one estimator: features, then the regressor.

    ``make_pipeline(features, SpectroPhotometricParallaxRegressor(alpha, **regressor_params))``
    with pandas output between the steps, so that the feature names reach the regressor and
    ``penalized="auto"`` penalises the spectral pixels only (as the paper's ``P``).

    Parameters
    ----------
    alpha : float, default=PAPER_ALPHA
        L1 strength per training star.
    features : SpectroPhotometricFeatures, optional
        Feature step (default: ``SpectroPhotometricFeatures()``).
    **regressor_params
        Other parameters of :class:`SpectroPhotometricParallaxRegressor`.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Fit with ``pipeline.fit(table, parallax, spectrophotometricparallaxregressor__sigma=
        parallax_error)`` (or ``sigma=`` with metadata routing enabled); predict uncertainties
        with ``pipeline.predict(table, X_err=pipeline[0].transform_err(table),
        return_std=True)``.
    """
    from sklearn.pipeline import make_pipeline

    features = SpectroPhotometricFeatures() if features is None else features
    model = SpectroPhotometricParallaxRegressor(alpha=alpha, **regressor_params)
    return make_pipeline(features, model).set_output(transform="pandas")
