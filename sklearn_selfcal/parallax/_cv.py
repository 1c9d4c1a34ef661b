"""The parallax model with its L1 strength chosen by cross-validation along a warm-started path."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import Interval
from sklearn.utils.parallel import Parallel, delayed

from .._kernels.explinear_l1 import (RowSubset, WeightedL1, alpha_max, explinear_l1_path, matvec,
                                     safe_exp, solve_gauss_newton)
from .._paper import GAIA_PARALLAX_ZERO_POINT
from .._progress import progress
from ._base import _initial_coef_u, _parallax_datafit, _ParallaxModelMixin
from ._scoring import chi_squared, fractional_scatter


def _fold_path(X, U, y, parallax_error, sw, train, test, pen_cols, alphas, *,
               parallax_zero_point, fit_intercept, tol, max_iter, copy_rows, callback=None):
    """The path over ``alphas`` on the training rows; held-out chi2 and predictions at each alpha.

    With ``copy_rows`` the training rows of ``X`` are copied once (fast contiguous passes; one
    fold at a time keeps the peak at one extra copy of ``X``), otherwise they are gathered block
    by block on every pass (no copy; used when folds run in parallel).
    """
    Xtr = X[train] if copy_rows else RowSubset(X, train)
    datafit = _parallax_datafit(y[train], parallax_error[train], sw[train], parallax_zero_point)
    path = explinear_l1_path(Xtr, pen_cols, U[train], datafit, alphas,
                             coef_u=_initial_coef_u(datafit, U.shape[1], fit_intercept),
                             tol=tol, max_iter=max_iter, callback=callback)
    Xte = RowSubset(X, test)
    preds = np.empty((len(alphas), len(test)))
    for i in range(len(alphas)):
        nz = np.flatnonzero(path.coefs_p[i])
        preds[i] = safe_exp(U[test] @ path.coefs_u[i] + matvec(Xte, pen_cols[nz],
                                                               path.coefs_p[i][nz]))
    chi2 = np.array([chi_squared(y[test], pred, parallax_error=parallax_error[test],
                                 parallax_zero_point=parallax_zero_point,
                                 sample_weight=sw[test]) for pred in preds])
    return chi2, preds, path


class SpectroPhotometricParallaxRegressorCV(_ParallaxModelMixin, RegressorMixin, BaseEstimator):
    """The parallax model with ``alpha`` chosen by K-fold cross-validation along a path.

    As :class:`sklearn.linear_model.LassoCV`: ``alpha_max`` (the smallest strength with all
    penalised coefficients zero) is computed in closed form at the unpenalised optimum, each fold
    is fitted along a geometric grid of ``alphas`` from ``alpha_max`` downwards, every fit warm
    started from the previous one, and scored by the held-out stars' mean chi-squared per star
    (with their own ``parallax_error``); the model is refitted on all stars at the best
    ``alpha_``. The out-of-fold predictions at ``alpha_`` give ``intrinsic_scatter_``
    (:func:`fractional_scatter`, including the feature noise).

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
    def fit(self, X, y, parallax_error=None, sample_weight=None):
        """Cross-validate ``alpha`` along a warm-started path and refit at the best one.

        Parameters
        ----------
        X : array-like of shape (n_stars, n_features)
            Features (e.g. the output of
            :class:`~sklearn_selfcal.parallax_features.SpectroPhotometricFeatures`).
        y : array-like of shape (n_stars,)
            Observed Gaia parallaxes (mas).
        parallax_error : array-like of shape (n_stars,), optional
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
        if not isinstance(self.alphas, Integral):   # a grid: checked before any solve
            alphas = np.sort(np.asarray(self.alphas, dtype=float).ravel())[::-1]
            if alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas < 0):
                raise ValueError(f"alphas must be non-empty, finite and non-negative, got "
                                 f"{self.alphas!r}")
        d = self._prepare(self._validate_X(X, reset=True), y, parallax_error, sample_weight)
        X, y, parallax_error, sw, pen_cols = d.X, d.y, d.parallax_error, d.sw, d.pen_cols
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
            delayed(_fold_path)(X, d.U, y, parallax_error, sw, train, test, pen_cols, alphas,
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
            for res in [res for res in path.results if not res.converged][:1]:
                self._warn_if_not_converged(res, f"the path of fold {fold_no}")

        self.cv_prediction_ = np.full(X.shape[0], np.nan)
        for (train, test), (_, preds, _) in zip(folds, out):
            self.cv_prediction_[test] = preds[best]
        held = np.isfinite(self.cv_prediction_)
        self.intrinsic_scatter_ = fractional_scatter(
            y[held], self.cv_prediction_[held], parallax_error[held],
            parallax_zero_point=self.parallax_zero_point, sample_weight=sw[held])

        # refit on all stars: a one-point path warm started from the first fold's solution
        first = out[0][2]
        path = explinear_l1_path(X, pen_cols, d.U, d.datafit, [self.alpha_],
                                 coef_u=first.coefs_u[best],
                                 coef_p=first.coefs_p[best] if len(pen_cols) else None,
                                 tol=self.tol, max_iter=self.max_iter,
                                 callback=self._callback(" refit"))
        self._warn_if_not_converged(path.results[0], "the refit")
        self._store(d, path.coefs_u[0], path.coefs_p[0], path.results[0])
        return self
