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

import functools
import numbers
import re
import warnings
from numbers import Integral, Real

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import check_cv
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.metadata_routing import MetadataRequest
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._kernels.explinear_l1 import (ExpLinearChi2, RowSubset, WeightedL1, alpha_max,
                                    explinear_l1_path, matvec, safe_exp, solve_gauss_newton)
from ._paper import GAIA_PARALLAX_ZERO_POINT, PAPER_ALPHA
from ._progress import progress
from ._validation import (MEDIAN_DISTANCE_RANGE_KPC, PARALLAX_ZERO_POINT_CONSTRAINT,
                          check_numeric_columns, check_positive_column)
from .parallax_features import (LSF_COLUMNS, MAGNITUDE_COLUMNS, PIXEL_FEATURE_PREFIX,
                                SpectroPhotometricFeatures, gaia_training_mask)

__all__ = [
    "UNPENALIZED_FEATURES",
    "SpectroPhotometricParallaxRegressor",
    "SpectroPhotometricParallaxRegressorCV",
    "chi_squared",
    "ChiSquaredScorer",
    "fractional_scatter",
    "make_parallax_pipeline",
    "make_parallax_step",
    "PARALLAX_RANGE_MAS",
    "PARALLAX_ERROR_RANGE_MAS",
    "MAX_PARALLAX_MAS",
]

#: Feature names left unpenalised by ``penalized="auto"``: the magnitudes and the LSF moments.
UNPENALIZED_FEATURES = MAGNITUDE_COLUMNS + LSF_COLUMNS
_PIXEL_NAME = re.compile(re.escape(PIXEL_FEATURE_PREFIX) + r"\d+$")

#: The unit check accepts training sets whose median parallax (after the zero point) lies in this
#: range (mas): the median distance of the unit guards (ActionTransformer's too), 0.01-100 kpc,
#: inverted.
PARALLAX_RANGE_MAS = (1.0 / MEDIAN_DISTANCE_RANGE_KPC[1], 1.0 / MEDIAN_DISTANCE_RANGE_KPC[0])
#: ... and whose median parallax uncertainty lies in this range (mas): Gaia's run from ~0.01 mas
#: (bright stars) to ~1 mas (G ~ 20); outside it sigma is likely in arcsec or micro-arcsec.
PARALLAX_ERROR_RANGE_MAS = (1e-3, 10.0)
#: No star can have a larger parallax (mas): 1 pc (the nearest star, Proxima Cen, has 768 mas).
MAX_PARALLAX_MAS = 1000.0


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
        Non-negative weight of each star in the average; equal weights if not given.

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
        """Request ``sample_weight`` (``sigma`` is always requested).

        Parameters
        ----------
        sample_weight : bool, str or None, default=None
            As in scikit-learn's ``set_score_request``: True to request ``sample_weight``, False
            to refuse it, None to raise an error if it is passed, or a string to request it under
            that alias.

        Returns
        -------
        self : ChiSquaredScorer
            The scorer, updated in place.
        """
        self._sample_weight_request = sample_weight
        return self

    def get_metadata_routing(self):
        """Get the metadata request of the scorer: ``sigma`` always, ``sample_weight`` if requested.

        Returns
        -------
        request : sklearn.utils.metadata_routing.MetadataRequest
            The request of the scorer's ``score`` method.
        """
        request = MetadataRequest(owner=type(self).__name__)
        request.score.add_request(param="sigma", alias=True)
        request.score.add_request(param="sample_weight", alias=self._sample_weight_request)
        return request

    def __repr__(self):
        return f"ChiSquaredScorer(parallax_zero_point={self.parallax_zero_point!r})"


def fractional_scatter(y, y_pred, sigma, *, parallax_zero_point=0.0, y_pred_frac_err=None,
                       y_pred_std=None, sample_weight=None):
    """Maximum-likelihood fractional scatter of true about predicted parallaxes.

    The model for held-out stars is ``y_n - parallax_zero_point ~ Normal(pred_n, sigma_n**2 +
    pred_n**2 (e_n**2 + s**2))``, with ``e_n`` the propagated fractional uncertainty of the
    prediction (0 if not given); ``s`` (dimensionless, in [0, 2]) is found by bounded 1-D
    maximisation of the (weighted) Gaussian likelihood.

    Parameters
    ----------
    y, y_pred, sigma : array-like of shape (n_stars,)
        Observed parallaxes, predictions and observed uncertainties (mas).
    parallax_zero_point : float, default=0.0
        Zero point of ``y`` (mas), subtracted from it.
    y_pred_frac_err : array-like of shape (n_stars,), optional
        Fractional uncertainty of each prediction already accounted for.
    y_pred_std : array-like of shape (n_stars,), optional
        The same as an absolute uncertainty (mas), ``y_pred_frac_err * y_pred``; give one or the
        other. This is the signature :class:`~sklearn_selfcal.crossfit.CrossFitTransformer`'s
        ``scatter`` calls.
    sample_weight : array-like of shape (n_stars,), optional
        Non-negative weight of each star's term in the log-likelihood; equal weights if not given.

    Returns
    -------
    s : float
        Fractional intrinsic scatter (e.g. 0.09 for 9 per cent).
    """
    y = np.asarray(y, dtype=float) - parallax_zero_point
    pred = np.asarray(y_pred, dtype=float)
    var0 = np.asarray(sigma, dtype=float) ** 2
    if y_pred_std is not None:
        if y_pred_frac_err is not None:
            raise ValueError("give y_pred_frac_err or y_pred_std, not both")
        var0 = var0 + np.asarray(y_pred_std, dtype=float) ** 2
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
# plain functions shared by the estimators
# ------------------------------------------------------------------------------------------
def _parallax_datafit(y, sigma, sample_weight, parallax_zero_point):
    """The chi-squared datafit of the model: ``c_n = s_n / (sigma_n**2 sum_m s_m)``."""
    return ExpLinearChi2(y - parallax_zero_point,
                         sample_weight / (sigma**2 * sample_weight.sum()))


def _initial_coef_u(datafit, n_unpenalized, fit_intercept):
    """Start of the unpenalised block: the intercept at the log of the mean (positive) parallax."""
    coef_u = np.zeros(n_unpenalized)
    if fit_intercept:
        mean = np.average(datafit.y, weights=datafit.weights)
        coef_u[0] = np.log(max(mean, 1e-3))
    return coef_u


def _unpenalized_block(X, unpen_cols, fit_intercept):
    """``[1, X[:, unpen_cols]]`` (float64); the intercept column only with ``fit_intercept``."""
    offset = 1 if fit_intercept else 0
    U = np.empty((X.shape[0], offset + len(unpen_cols)))
    if fit_intercept:
        U[:, 0] = 1.0
    if len(unpen_cols):
        U[:, offset:] = X[:, unpen_cols]
    return U


def _fold_path(X, U, y, sigma, sw, train, test, pen_cols, alphas, *, parallax_zero_point,
               fit_intercept, tol, max_iter, copy_rows, callback=None):
    """The path over ``alphas`` on the training rows; held-out chi2 and predictions at each alpha.

    With ``copy_rows`` the training rows of ``X`` are copied once (fast contiguous passes; one
    fold at a time keeps the peak at one extra copy of ``X``), otherwise they are gathered block
    by block on every pass (no copy; used when folds run in parallel).
    """
    Xtr = X[train] if copy_rows else RowSubset(X, train)
    datafit = _parallax_datafit(y[train], sigma[train], sw[train], parallax_zero_point)
    path = explinear_l1_path(Xtr, pen_cols, U[train], datafit, alphas,
                             coef_u=_initial_coef_u(datafit, U.shape[1], fit_intercept),
                             tol=tol, max_iter=max_iter, callback=callback)
    Xte = RowSubset(X, test)
    preds = np.empty((len(alphas), len(test)))
    for i in range(len(alphas)):
        nz = np.flatnonzero(path.coefs_p[i])
        preds[i] = safe_exp(U[test] @ path.coefs_u[i] + matvec(Xte, pen_cols[nz],
                                                               path.coefs_p[i][nz]))
    chi2 = np.array([chi_squared(y[test], pred, sigma=sigma[test],
                                 parallax_zero_point=parallax_zero_point,
                                 sample_weight=sw[test]) for pred in preds])
    return chi2, preds, path


def _check_training_targets(y, sigma, sw, n_unpenalized, parallax_zero_point, *, check_units,
                            sigma_given):
    """Data checks of the training stars (positive weight): count, then units of y and sigma."""
    train = sw > 0
    n_train = int(train.sum())
    if n_train < n_unpenalized:
        raise ValueError(
            f"{n_train} training star(s) (n_samples = {n_train} with positive weight) for "
            f"{n_unpenalized} unpenalised parameters (intercept, magnitudes, LSF moments): at least "
            f"{n_unpenalized} are needed")
    if not check_units:
        return
    lo, hi = PARALLAX_RANGE_MAS
    far = np.flatnonzero(train & (np.abs(y - parallax_zero_point) > MAX_PARALLAX_MAS))
    if far.size:
        raise ValueError(
            f"y (observed parallax, mas): {far.size} value(s) exceed {MAX_PARALLAX_MAS:g} mas in "
            f"absolute value, closer than 1 pc (e.g. rows {far[:5].tolist()}: "
            f"{y[far[:5]].tolist()}); is y in mas? (check_units=False disables this check)")
    median = float(np.median(y[train]))   # before the zero point, which is in mas itself
    if not lo <= median <= hi:
        raise ValueError(
            f"y (observed parallax, mas) has a median of {median:.4g} mas, a median distance outside {1 / hi:g}-{1 / lo:g} kpc: is it in mas (not arcsec or "
            "micro-arcsec)? (check_units=False disables this check)")
    if sigma_given:
        median = float(np.median(sigma[train]))
        lo, hi = PARALLAX_ERROR_RANGE_MAS
        if not lo <= median <= hi:
            raise ValueError(
                f"sigma (parallax uncertainty, mas) has a median of {median:.4g} mas, outside the "
                f"plausible {lo:g}-{hi:g} mas: is it in mas? (check_units=False disables this "
                "check)")


class _ParallaxModelMixin:
    """Validation, design and prediction shared by the regressor and its CV variant."""

    __metadata_request__fit = {"sigma": True}

    _common_constraints = {
        "penalized": [StrOptions({"auto"}), "array-like"],
        "fit_intercept": ["boolean"],
        # |zero point| <= 1 mas: Gaia's are a few hundredths of a mas
        "parallax_zero_point": PARALLAX_ZERO_POINT_CONSTRAINT,
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "dtype": [None, Options(type, {np.float32, np.float64})],
        "check_units": ["boolean"],
        "verbose": ["verbose"],
    }

    # ---------------------------------------------------------------- validation
    def _validate_X(self, X, *, reset):
        dtype = [np.float64, np.float32] if self.dtype is None else self.dtype
        check_numeric_columns(X, what=type(self).__name__)
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
                             "gaia_training_mask, or CrossFitTransformer's training_filter)")
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

    def _penalized_mask(self, n_features):
        """Boolean mask of penalised features from ``penalized`` and the seen feature names."""
        names = getattr(self, "feature_names_in_", None)
        spec = self.penalized
        if isinstance(spec, str):          # "auto" (the only string the constraints allow)
            if names is None:
                return np.ones(n_features, dtype=bool)
            names = np.asarray(names, dtype=object)
            pixels = np.array([_PIXEL_NAME.match(str(n)) is not None for n in names])
            if pixels.any():
                return pixels
            return ~np.isin(names, list(UNPENALIZED_FEATURES))
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

    def _prepare(self, X, y, sigma, sample_weight):
        """The fit prelude of both estimators: validated data, design blocks and datafit."""
        X = self._validate_X(X, reset=True)
        sigma_given = sigma is not None
        y, sigma, sw = self._validate_targets(y, sigma, sample_weight, X.shape[0])
        mask = self._penalized_mask(X.shape[1])
        pen_cols, unpen_cols = np.flatnonzero(mask), np.flatnonzero(~mask)
        n_unpen = len(unpen_cols) + (1 if self.fit_intercept else 0)
        _check_training_targets(y, sigma, sw, n_unpen, self.parallax_zero_point,
                                check_units=self.check_units, sigma_given=sigma_given)
        U = _unpenalized_block(X, unpen_cols, self.fit_intercept)
        datafit = _parallax_datafit(y, sigma, sw, self.parallax_zero_point)
        return Bunch(X=X, y=y, sigma=sigma, sw=sw, mask=mask, pen_cols=pen_cols,
                     unpen_cols=unpen_cols, U=U, datafit=datafit)

    def _callback(self, label):
        if not self.verbose:
            return None

        def report(info):
            print(f"[{type(self).__name__}{label} alpha {info['alpha']:.3g}] iteration "
                  f"{info['iteration']}: objective {info['objective']:.8g}, KKT residual "
                  f"{info['kkt']:.2e}, {info['n_active']} non-zero pixel coefficients, "
                  f"{info['n_newton']} Newton steps, {info['time']:.1f} s", flush=True)
        return report

    def _warn_if_not_converged(self, result, what):
        if not result.converged:
            warnings.warn(
                f"{type(self).__name__}: {what} stopped at a relative KKT residual of "
                f"{result.kkt:.2e} > tol={self.tol:g} after {result.n_iter} iterations; "
                "increase max_iter or tol", ConvergenceWarning, stacklevel=3)

    def _store(self, n_features, pen_cols, unpen_cols, coef_u, coef_p, result):
        coef = np.zeros(n_features)
        offset = 1 if self.fit_intercept else 0
        coef[unpen_cols] = coef_u[offset:]
        coef[pen_cols] = coef_p if len(pen_cols) else 0.0
        self.coef_ = coef
        self.intercept_ = float(coef_u[0]) if self.fit_intercept else 0.0
        self.n_iter_ = int(result.n_iter)
        self.kkt_residual_ = float(result.kkt)
        self.objective_ = float(result.objective)

    # ---------------------------------------------------------------- prediction
    def _propagated_frac_err(self, X_err, n):
        X_err = np.asarray(X_err)           # no copy of a float32 matrix or single-dtype frame
        if X_err.shape != (n, self.n_features_in_):
            raise ValueError(f"X_err must have the shape of X ({n}, {self.n_features_in_}), got "
                             f"{X_err.shape}")
        nz = np.flatnonzero(self.coef_)
        e = X_err[:, nz].astype(np.float64)  # only the columns with non-zero coefficients
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
        moments, i.e. the spectral pixels, as the paper's ``P``: the features named
        ``LOGFLUX_<digits>`` (:class:`~sklearn_selfcal.parallax_features.SpectroPhotometricFeatures`'
        pixel features) if there are any, else every feature not in :data:`UNPENALIZED_FEATURES`;
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
    check_units : bool, default=True
        Check that the training stars' parallaxes are in mas: an error if any ``|y -
        parallax_zero_point|`` exceeds :data:`MAX_PARALLAX_MAS` (1000 mas, closer than 1 pc), if
        the median ``y`` lies outside :data:`PARALLAX_RANGE_MAS` (0.01-100 mas, a median distance
        outside 0.01-100 kpc, as ActionTransformer's unit guard) or if the median ``sigma`` lies
        outside :data:`PARALLAX_ERROR_RANGE_MAS` (1e-3-10 mas).
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

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "warm_start": ["boolean"],
        **_ParallaxModelMixin._common_constraints,
    }

    def __init__(self, alpha=PAPER_ALPHA, *, penalized="auto", fit_intercept=True,
                 parallax_zero_point=GAIA_PARALLAX_ZERO_POINT, tol=1e-4, max_iter=100,
                 warm_start=False, dtype=None, check_units=True, verbose=0):
        self.alpha = alpha
        self.penalized = penalized
        self.fit_intercept = fit_intercept
        self.parallax_zero_point = parallax_zero_point
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.dtype = dtype
        self.check_units = check_units
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
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
            The fitted model (``coef_``, ``intercept_``, ``kkt_residual_``, ...).
        """
        previous = (self.coef_, self.intercept_, self.penalized_) if (
            self.warm_start and hasattr(self, "coef_")) else None
        d = self._prepare(X, y, sigma, sample_weight)
        coef_u = _initial_coef_u(d.datafit, d.U.shape[1], self.fit_intercept)
        coef_p = None
        if previous is not None and previous[0].shape == (d.X.shape[1],) and np.array_equal(
                previous[2], d.mask):
            coef_u = np.concatenate([[previous[1]] if self.fit_intercept else [],
                                     previous[0][d.unpen_cols]])
            coef_p = previous[0][d.pen_cols]
        path = explinear_l1_path(d.X, d.pen_cols, d.U, d.datafit, [self.alpha], coef_u=coef_u,
                                 coef_p=coef_p, tol=self.tol, max_iter=self.max_iter,
                                 callback=self._callback(""))
        result = path.results[0]
        self._warn_if_not_converged(result, "fit")
        self.penalized_ = d.mask
        self._store(d.X.shape[1], d.pen_cols, d.unpen_cols, path.coefs_u[0], path.coefs_p[0],
                    result)
        return self


# ------------------------------------------------------------------------------------------
# the cross-validated path
# ------------------------------------------------------------------------------------------
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
    penalized : "auto", array-like of bool, of str or of int, default="auto"
        Features whose coefficients are L1-penalised, as for
        :class:`SpectroPhotometricParallaxRegressor`.
    fit_intercept : bool, default=True
        Fit the unpenalised constant ``b``.
    parallax_zero_point : float, default=GAIA_PARALLAX_ZERO_POINT
        Zero point of the observed parallaxes (mas), ``observed = true + zero point``, subtracted
        before fitting and scoring.
    tol : float, default=1e-4
        Target relative KKT residual of every fit along the path.
    max_iter : int, default=100
        Maximum outer (working-set) iterations of every fit.
    dtype : {None, numpy.float32, numpy.float64}, default=None
        Working dtype of ``X``, as for :class:`SpectroPhotometricParallaxRegressor`.
    check_units : bool, default=True
        Check that the parallaxes are in mas, as for
        :class:`SpectroPhotometricParallaxRegressor`. ``alphas`` and ``eps`` are checked before
        any solve.
    n_jobs : int, default=None
        Folds fitted in parallel threads. Sequentially (None or 1) each fold's training rows
        are copied once (peak: one extra copy of ``X``); in parallel they are shared, not
        copied, and gathered on the fly (slower per fold).
    verbose : int, default=0
        Progress bar over the folds and one line per outer iteration of every fit.

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

    _parameter_constraints = {
        "alphas": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "eps": [Interval(Real, 0, 1, closed="neither")],
        "cv": ["cv_object"],
        "n_jobs": [Integral, None],
        **_ParallaxModelMixin._common_constraints,
    }

    def __init__(self, alphas=8, *, eps=1e-3, cv=None, penalized="auto", fit_intercept=True,
                 parallax_zero_point=GAIA_PARALLAX_ZERO_POINT, tol=1e-4, max_iter=100, dtype=None,
                 check_units=True, n_jobs=None, verbose=0):
        self.alphas = alphas
        self.eps = eps
        self.cv = cv
        self.penalized = penalized
        self.fit_intercept = fit_intercept
        self.parallax_zero_point = parallax_zero_point
        self.tol = tol
        self.max_iter = max_iter
        self.dtype = dtype
        self.check_units = check_units
        self.n_jobs = n_jobs
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sigma=None, sample_weight=None):
        """Cross-validate ``alpha`` along a warm-started path and refit at the best one.

        Parameters
        ----------
        X : array-like of shape (n_stars, n_features)
            Features (e.g. the output of
            :class:`~sklearn_selfcal.parallax_features.SpectroPhotometricFeatures`).
        y : array-like of shape (n_stars,)
            Observed Gaia parallaxes (mas).
        sigma : array-like of shape (n_stars,), optional
            Their uncertainties (mas); ones if not given.
        sample_weight : array-like of shape (n_stars,), optional
            Non-negative weights multiplying each star's chi-squared term, in the fits and in the
            held-out scores.

        Returns
        -------
        self : SpectroPhotometricParallaxRegressorCV
            The model refitted at ``alpha_`` on all stars, with the path's attributes.
        """
        alphas = None
        if not isinstance(self.alphas, numbers.Integral):   # a grid: checked before any solve
            alphas = np.sort(np.asarray(self.alphas, dtype=float).ravel())[::-1]
            if alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas < 0):
                raise ValueError(f"alphas must be non-empty, finite and non-negative, got "
                                 f"{self.alphas!r}")
        d = self._prepare(X, y, sigma, sample_weight)
        X, y, sigma, sw, pen_cols = d.X, d.y, d.sigma, d.sw, d.pen_cols
        folds = list(check_cv(self.cv).split(X, y))

        unpen = solve_gauss_newton(X, pen_cols[:0], d.U, d.datafit, WeightedL1(0.0, np.zeros(0)),
                                   coef_u=_initial_coef_u(d.datafit, d.U.shape[1],
                                                          self.fit_intercept),
                                   tol=1e-10, max_iter=self.max_iter)
        self.alpha_max_ = (alpha_max(X, pen_cols, d.U, d.datafit, unpen.coef_u)
                           if len(pen_cols) else 0.0)
        if alphas is None:
            top = self.alpha_max_ if self.alpha_max_ > 0 else 1.0
            alphas = np.geomspace(top, top * self.eps, self.alphas)
        self.alphas_ = alphas

        sequential = self.n_jobs in (None, 1)
        out = Parallel(n_jobs=self.n_jobs, prefer="threads")(
            delayed(_fold_path)(X, d.U, y, sigma, sw, train, test, pen_cols, alphas,
                                parallax_zero_point=self.parallax_zero_point,
                                fit_intercept=self.fit_intercept, tol=self.tol,
                                max_iter=self.max_iter, copy_rows=sequential,
                                callback=self._callback(f" fold {k}"))
            for k, (train, test) in enumerate(progress(folds, desc="CV folds",
                                                       verbose=self.verbose, unit="fold")))
        self.chi2_path_ = np.column_stack([chi2 for chi2, _, _ in out])
        best = int(np.argmin(self.chi2_path_.mean(axis=1)))
        self.alpha_ = float(alphas[best])
        if best == len(alphas) - 1 and len(alphas) > 1:
            warnings.warn(
                f"{type(self).__name__}: the best alpha is the smallest of the grid "
                f"({self.alpha_:.3g}); the optimum may lie below it (decrease eps or pass alphas)",
                UserWarning, stacklevel=2)
        for fold_no, (_, _, path) in enumerate(out):
            for res in path.results:
                if not res.converged:
                    self._warn_if_not_converged(res, f"the path of fold {fold_no}")
                    break

        self.cv_prediction_ = np.full(X.shape[0], np.nan)
        for (train, test), (_, preds, _) in zip(folds, out):
            self.cv_prediction_[test] = preds[best]
        held = np.isfinite(self.cv_prediction_)
        self.intrinsic_scatter_ = fractional_scatter(
            y[held], self.cv_prediction_[held], sigma[held],
            parallax_zero_point=self.parallax_zero_point, sample_weight=sw[held])

        # refit on all stars: a one-point path warm started from the first fold's solution
        first = out[0][2]
        path = explinear_l1_path(X, pen_cols, d.U, d.datafit, [self.alpha_],
                                 coef_u=first.coefs_u[best],
                                 coef_p=first.coefs_p[best] if len(pen_cols) else None,
                                 tol=self.tol, max_iter=self.max_iter,
                                 callback=self._callback(" refit"))
        self._warn_if_not_converged(path.results[0], "the refit")
        self.penalized_ = d.mask
        self._store(X.shape[1], pen_cols, d.unpen_cols, path.coefs_u[0], path.coefs_p[0],
                    path.results[0])
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


def make_parallax_step(*, alpha=PAPER_ALPHA, parallax_zero_point=GAIA_PARALLAX_ZERO_POINT,
                       n_folds=2, magnitude_columns=MAGNITUDE_COLUMNS, lsf_columns=LSF_COLUMNS,
                       training_filter=gaia_training_mask, dtype=np.float32, tol=1e-4,
                       max_iter=100, scratch_dir=None, random_state=None, n_jobs=None,
                       verbose=0):
    """The paper's cross-fitted spectro-photometric parallaxes as one pipeline step.

    A :class:`~sklearn_selfcal.crossfit.CrossFitTransformer` around
    :func:`make_parallax_pipeline`: the stars are split into ``n_folds`` random parts (the paper's
    two halves) and each part is predicted by the model trained on the *training stars*
    (``training_filter``) of the other parts. It appends ``spec_parallax`` and
    ``spec_parallax_err`` (mas), the latter the whole error budget: the propagated feature
    uncertainties combined in quadrature with the fractional intrinsic scatter of the
    out-of-fold predictions (:func:`fractional_scatter`, fitted attribute ``intrinsic_scatter_``).

    Parameters
    ----------
    alpha : float, default=PAPER_ALPHA
        L1 strength per training star.
    parallax_zero_point : float, default=GAIA_PARALLAX_ZERO_POINT
        Zero point of the observed parallaxes (mas), ``observed = true + zero point``.
    n_folds : int, default=2
        Cross-fitting folds (the paper's two halves).
    magnitude_columns, lsf_columns : sequence of str
        Catalogue columns used as unpenalised features (mag; dimensionless LSF moments); drop the
        bands or moments a catalogue lacks.
    training_filter : callable or None, default=gaia_training_mask
        ``f(table) -> bool array``: the stars that train the models; the others are predicted but
        never trained on, and may have NaN ``parallax`` / ``parallax_error``.
        :func:`~sklearn_selfcal.parallax_features.gaia_training_mask` is called with
        ``magnitude_columns``. None: every star trains.
    dtype : numpy.float32 or numpy.float64, default=numpy.float32
        Dtype of the feature matrix.
    tol : float, default=1e-4
        Target relative KKT residual of :class:`SpectroPhotometricParallaxRegressor`.
    max_iter : int, default=100
        Maximum outer iterations of :class:`SpectroPhotometricParallaxRegressor`.
    scratch_dir : str, path-like or None, default=None
        Folder for the feature matrices as memory-mapped files (see
        :class:`~sklearn_selfcal.parallax_features.SpectroPhotometricFeatures`); None: in memory.
    random_state : int, RandomState instance or None
        Fold assignment.
    n_jobs : int, default=None
        Folds fitted in parallel.
    verbose : int, default=0
        Progress bar over the folds and one line per outer iteration of each fit (its
        objective, KKT residual, non-zero coefficients and time: a fold of 10^5 stars
        takes minutes).

    Returns
    -------
    step : CrossFitTransformer
        Use with metadata routing enabled: ``step.fit_transform(table, table["parallax"],
        sigma=table["parallax_error"])``; ``step.training_mask_`` tells the training stars.

    Examples
    --------
    >>> import numpy as np, sklearn
    >>> from sklearn_selfcal.datasets import make_survey
    >>> from sklearn_selfcal.parallax import make_parallax_step
    >>> from sklearn_selfcal.parallax_features import MAGNITUDE_COLUMNS, join_spectra
    >>> s = make_survey(n_stars=400, n_pixels=50, random_state=0)
    >>> photometry = s.frame[list(MAGNITUDE_COLUMNS)].notna().all(axis=1).to_numpy()
    >>> table = join_spectra(s.frame, s.spectra, s.spectra_err)[photometry]
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     step = make_parallax_step(random_state=0)
    ...     out = step.fit_transform(table, table["parallax"], sigma=table["parallax_error"])
    >>> bool(out[["spec_parallax", "spec_parallax_err"]].notna().all().all())
    True
    >>> 0 < step.intrinsic_scatter_ < 1
    True
    """
    from .crossfit import CrossFitTransformer

    if training_filter is gaia_training_mask:
        training_filter = functools.partial(gaia_training_mask,
                                            magnitude_columns=tuple(magnitude_columns))
    features = SpectroPhotometricFeatures(magnitude_columns=tuple(magnitude_columns),
                                          lsf_columns=tuple(lsf_columns), dtype=dtype,
                                          scratch_dir=scratch_dir)
    model = make_parallax_pipeline(alpha, features=features,
                                   parallax_zero_point=parallax_zero_point, tol=tol,
                                   max_iter=max_iter, verbose=verbose)
    return CrossFitTransformer(
        model, cv=n_folds, training_filter=training_filter,
        scatter=functools.partial(fractional_scatter, parallax_zero_point=parallax_zero_point),
        output="spec_parallax", random_state=random_state, n_jobs=n_jobs, verbose=verbose)
