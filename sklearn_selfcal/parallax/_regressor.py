"""The paper's spectro-photometric parallax model at one L1 strength (sec. 3.1)."""

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval

from .._kernels.explinear_l1 import RowBlockOperator, explinear_l1_path
from .._paper import GAIA_PARALLAX_ZERO_POINT, PAPER_ALPHA
from ._base import _initial_coef_u, _nonfinite_features_error, _ParallaxModelMixin


class SpectroPhotometricParallaxRegressor(_ParallaxModelMixin, RegressorMixin, BaseEstimator):
    """The paper's spectro-photometric parallax model, ``parallax = exp(x @ theta + b)`` (mas).

    Minimises ``1/S sum_n s_n (y_n - parallax_zero_point - exp(theta . x_n + b))**2 / (2
    parallax_error_n**2) + alpha sum_{j penalised} |theta_j|`` (:mod:`sklearn_selfcal.parallax`),
    to its exact optimum: working sets of pixels, Newton steps (clipped-Hessian IRLS) whose Lasso
    subproblems are solved exactly, and a line search on the true objective
    (:func:`sklearn_selfcal._kernels.explinear_l1.solve_gauss_newton`), stopping when the
    relative KKT residual (largest violation of the optimality conditions divided by ``alpha``)
    is below ``tol``. Penalised coefficients are exactly zero where the data do not call for
    them.

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
        outside 0.01-100 kpc, as ActionTransformer's unit guard) or if the median
        ``parallax_error`` lies outside :data:`PARALLAX_ERROR_RANGE_MAS` (1e-3-10 mas).
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
    Metadata routing: ``parallax_error`` is requested by ``fit`` by default, so ``GridSearchCV``,
    ``cross_validate`` and ``cross_val_predict`` route it to every fold when routing is enabled
    (without routing they slice and pass fit parameters themselves).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_selfcal import SpectroPhotometricParallaxRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 5))
    >>> plx = np.exp(0.3 * X[:, 0] - 1.0)
    >>> parallax_error = np.full(300, 0.02)
    >>> y = plx + parallax_error * rng.normal(size=300) - 0.017
    >>> model = SpectroPhotometricParallaxRegressor(alpha=1e-3).fit(X, y, parallax_error)
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
    def fit(self, X, y, parallax_error=None, sample_weight=None):
        """Fit the model to observed parallaxes.

        Parameters
        ----------
        X : array-like or RowBlockOperator of shape (n_stars, n_features)
            Features (not modified, not copied when float32 / float64). A matrix held elsewhere
            (out of core, or in row chunks on Dask workers:
            :class:`~sklearn_selfcal.scaleout.DaskRowBlocks`) is passed as a
            :class:`~sklearn_selfcal._kernels.explinear_l1.RowBlockOperator` that also has
            ``columns(cols)`` (in-memory float64 columns), ``nonfinite_columns()`` and
            ``feature_names`` (None or one name per column): the solver reads it only through
            its passes over the rows.
        y : array-like of shape (n_stars,)
            Observed Gaia parallaxes (mas); negative values are used as they are.
        parallax_error : array-like of shape (n_stars,), optional
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
        X = (self._validate_row_blocks(X) if isinstance(X, RowBlockOperator)
             else self._validate_X(X, reset=True))
        d = self._prepare(X, y, parallax_error, sample_weight)
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
        self._warn_if_not_converged(path.results[0], "fit")
        self._store(d, path.coefs_u[0], path.coefs_p[0], path.results[0])
        return self

    def _validate_row_blocks(self, X):
        """Finite values and the input attributes of features given as a row-block operator."""
        names = getattr(X, "feature_names", None)
        bad = X.nonfinite_columns()
        if bad.size:
            raise _nonfinite_features_error(bad, names)
        self.n_features_in_ = X.shape[1]
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return X
