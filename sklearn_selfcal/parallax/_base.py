"""What the parallax estimators share: unit guards, the fit's design, validation, prediction."""

import re
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .._kernels.explinear_l1 import ExpLinearChi2, RowBlockOperator, matvec, safe_exp
from .._paper import PARALLAX_ERROR, correct_parallax
from .._validation import (MEDIAN_DISTANCE_RANGE_KPC, PARALLAX_ZERO_POINT_CONSTRAINT,
                           check_finite_column, check_numeric_columns, check_positive_column)
from ..parallax_features import LSF_COLUMNS, MAGNITUDE_COLUMNS, PIXEL_FEATURE_PREFIX
from ._scoring import fractional_scatter


#: Feature names left unpenalised by ``penalized="auto"``: the magnitudes and the LSF moments.
UNPENALIZED_FEATURES = MAGNITUDE_COLUMNS + LSF_COLUMNS
_PIXEL_NAME = re.compile(re.escape(PIXEL_FEATURE_PREFIX) + r"\d+$")

#: The unit check accepts training sets whose median parallax (after the zero point) lies in this
#: range (mas): the median distance of the unit guards (ActionTransformer's too), 0.01-100 kpc,
#: inverted.
PARALLAX_RANGE_MAS = (1.0 / MEDIAN_DISTANCE_RANGE_KPC[1], 1.0 / MEDIAN_DISTANCE_RANGE_KPC[0])
#: ... and whose median parallax uncertainty lies in this range (mas): Gaia's run from ~0.01 mas
#: (bright stars) to ~1 mas (G ~ 20); outside it the uncertainty is likely in arcsec or
#: micro-arcsec.
PARALLAX_ERROR_RANGE_MAS = (1e-3, 10.0)
#: No star can have a larger parallax (mas): 1 pc (the nearest star, Proxima Cen, has 768 mas).
MAX_PARALLAX_MAS = 1000.0


def _parallax_datafit(y, parallax_error, sample_weight, parallax_zero_point):
    """The chi-squared datafit of the model: ``c_n = s_n / (parallax_error_n**2 sum_m s_m)``."""
    return ExpLinearChi2(correct_parallax(y, parallax_zero_point),
                         sample_weight / (parallax_error**2 * sample_weight.sum()))


def _initial_coef_u(datafit, n_unpenalized, fit_intercept):
    """Start of the unpenalised block: the intercept at the log of the mean (positive) parallax."""
    coef_u = np.zeros(n_unpenalized)
    if fit_intercept:
        mean = np.average(datafit.y, weights=datafit.weights)
        coef_u[0] = np.log(max(mean, 1e-3))
    return coef_u


def _nonfinite_features_error(bad, names):
    """The error naming the first features (of indices ``bad``) holding a NaN or an infinity."""
    which = [str(names[j]) if names is not None else f"column {j}" for j in bad[:10]]
    return ValueError(f"X must be finite; NaN or infinity in feature(s) {which}"
                      + (f" and {bad.size - 10} more" if bad.size > 10 else ""))


def _check_training_targets(y, parallax_error, sw, n_unpenalized, parallax_zero_point, *,
                            check_units, error_given):
    """Data checks of the training stars (positive weight): count, then units of y and its error."""
    train = sw > 0
    n_train = int(train.sum())
    if n_train < n_unpenalized:
        raise ValueError(
            f"{n_train} training star(s) (n_samples = {n_train} with positive weight) for "
            f"{n_unpenalized} unpenalised parameters (intercept, magnitudes, LSF moments): at "
            f"least {n_unpenalized} are needed")
    if not check_units:
        return
    lo, hi = PARALLAX_RANGE_MAS
    far = np.flatnonzero(train & (np.abs(correct_parallax(y, parallax_zero_point))
                                  > MAX_PARALLAX_MAS))
    if far.size:
        raise ValueError(
            f"y (observed parallax, mas): {far.size} value(s) exceed {MAX_PARALLAX_MAS:g} mas in "
            f"absolute value, closer than 1 pc (e.g. rows {far[:5].tolist()}: "
            f"{y[far[:5]].tolist()}); is y in mas? (check_units=False disables this check)")
    median = float(np.median(y[train]))   # before the zero point, which is in mas itself
    if not lo <= median <= hi:
        raise ValueError(
            f"y (observed parallax, mas) has a median of {median:.4g} mas, a median distance "
            f"outside {1 / hi:g}-{1 / lo:g} kpc: is it in mas (not arcsec or micro-arcsec)? "
            "(check_units=False disables this check)")
    if error_given:
        median = float(np.median(parallax_error[train]))
        lo, hi = PARALLAX_ERROR_RANGE_MAS
        if not lo <= median <= hi:
            raise ValueError(
                f"{PARALLAX_ERROR} (parallax uncertainty, mas) has a median of {median:.4g} mas, "
                f"outside the plausible {lo:g}-{hi:g} mas: is it in mas? (check_units=False "
                "disables this check)")


class _ParallaxModelMixin:
    """Validation, design and prediction shared by the regressor and its CV variant."""

    __metadata_request__fit = {PARALLAX_ERROR: True}

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
            with np.errstate(invalid="ignore"):
                bad = np.flatnonzero(~np.all(np.isfinite(np.asarray(X).astype(float)), axis=0))
            raise _nonfinite_features_error(bad, getattr(X, "columns", None)) from exc

    def _validate_targets(self, y, parallax_error, sample_weight, n):
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
        if parallax_error is None:
            parallax_error = np.ones(n)
        else:
            parallax_error = np.asarray(parallax_error, dtype=np.float64)
            if parallax_error.shape != (n,):
                raise ValueError(f"{PARALLAX_ERROR} (parallax uncertainty, mas) must have shape "
                                 f"({n},), got {parallax_error.shape}")
            check_finite_column(check_positive_column(parallax_error, PARALLAX_ERROR),
                                PARALLAX_ERROR)
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
        return y, parallax_error, sw

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

    def _prepare(self, X, y, parallax_error, sample_weight):
        """The fit prelude of both estimators: validated targets, design blocks and datafit.

        ``X`` is validated already: an array, or a row-block operator with a ``columns`` method.
        """
        error_given = parallax_error is not None
        y, parallax_error, sw = self._validate_targets(y, parallax_error, sample_weight,
                                                       X.shape[0])
        mask = self._penalized_mask(X.shape[1])
        pen_cols, unpen_cols = np.flatnonzero(mask), np.flatnonzero(~mask)
        n_unpen = len(unpen_cols) + (1 if self.fit_intercept else 0)
        _check_training_targets(y, parallax_error, sw, n_unpen, self.parallax_zero_point,
                                check_units=self.check_units, error_given=error_given)
        # the unpenalised block, [1, X[:, unpen_cols]] in float64 (1 only with an intercept)
        U = np.asarray(X.columns(unpen_cols) if isinstance(X, RowBlockOperator)
                       else X[:, unpen_cols], dtype=np.float64)
        U = np.column_stack([np.ones(len(U)), U]) if self.fit_intercept else U
        datafit = _parallax_datafit(y, parallax_error, sw, self.parallax_zero_point)
        return Bunch(X=X, y=y, parallax_error=parallax_error, sw=sw, mask=mask,
                     pen_cols=pen_cols, unpen_cols=unpen_cols, U=U, datafit=datafit)

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

    def _store(self, d, coef_u, coef_p, result):
        """Set the fitted attributes from the solution on the design ``d`` of :meth:`_prepare`."""
        coef = np.zeros(d.mask.size)
        coef[d.unpen_cols] = coef_u[1 if self.fit_intercept else 0:]
        coef[d.pen_cols] = coef_p if len(d.pen_cols) else 0.0
        self.penalized_ = d.mask
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

    def estimate_intrinsic_scatter(self, X, y, parallax_error, X_err=None, sample_weight=None):
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
        parallax_error : array-like of shape (n_stars,)
            Their uncertainties (mas).
        X_err : array-like of shape (n_stars, n_features), optional
            1-sigma feature uncertainties.
        sample_weight : array-like of shape (n_stars,), optional
            Non-negative weight of each star's term in the likelihood.

        Returns
        -------
        s : float
            Fractional scatter (dimensionless).
        """
        pred = self.predict(X)
        y, parallax_error, sw = self._validate_targets(y, parallax_error, sample_weight, pred.size)
        frac = None if X_err is None else self._propagated_frac_err(X_err, pred.size)
        self.intrinsic_scatter_ = fractional_scatter(
            y, pred, parallax_error, parallax_zero_point=self.parallax_zero_point,
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
