"""The parallax model as pipeline pieces: features then regressor, and the paper's cross-fitted step."""

import functools
import os
from numbers import Integral, Real

import numpy as np
from sklearn import config_context
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._paper import GAIA_PARALLAX_ZERO_POINT, PAPER_ALPHA, SPEC_PARALLAX
from .._validation import PARALLAX_ZERO_POINT_CONSTRAINT
from ..parallax_features import (LSF_COLUMNS, MAGNITUDE_COLUMNS, SpectroPhotometricFeatures,
                                 gaia_training_mask)
from ._regressor import SpectroPhotometricParallaxRegressor
from ._scoring import fractional_scatter


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
        Fit with ``pipeline.fit(table, parallax,
        spectrophotometricparallaxregressor__parallax_error=parallax_error)`` (or
        ``parallax_error=`` with metadata routing enabled); predict uncertainties with
        ``pipeline.predict(table, X_err=pipeline[0].transform_err(table), return_std=True)``.
    """
    features = SpectroPhotometricFeatures() if features is None else features
    model = SpectroPhotometricParallaxRegressor(alpha=alpha, **regressor_params)
    return make_pipeline(features, model).set_output(transform="pandas")


class SpectroPhotometricParallaxTransformer(TransformerMixin, BaseEstimator):
    """The paper's cross-fitted spectro-photometric parallaxes as one step (section 3.1).

    The stars are split into ``n_folds`` random parts (the paper's two halves); each part is
    predicted by the L1-penalised model (:class:`~sklearn_selfcal.SpectroPhotometricParallaxRegressor`
    on :class:`~sklearn_selfcal.parallax_features.SpectroPhotometricFeatures`) trained on the Gaia
    training stars (:func:`~sklearn_selfcal.selection.gaia_training_mask`) of the other parts.
    ``fit_transform`` appends ``spec_parallax`` and ``spec_parallax_err`` (mas), the latter the
    whole error budget (propagated feature uncertainties and the out-of-fold intrinsic scatter).
    Every setting is a parameter of this one step, so ``Pipeline.set_params(parallax__alpha=...)``
    and the configuration's ``[parallax]`` section reach all the pieces that use it.

    Parameters
    ----------
    alpha : float, default=PAPER_ALPHA
        L1 strength per training star (the paper's lambda = 160 over 39,764 stars).
    parallax_zero_point : float, default=-0.017
        Zero point of the observed Gaia parallaxes (mas), ``observed = true + zero point``.
    n_folds : int, default=2
        Cross-fitting folds (the paper's two halves).
    magnitude_columns, lsf_columns : tuple of str
        Unpenalised features: magnitudes (mag) and LSF moments (default: the paper's 8 bands and 5
        moments); a catalogue's missing ones are left out by the run.
    gaia_cuts : bool, default=True
        Train only on the stars passing the Gaia astrometric cuts of the paper
        (:func:`~sklearn_selfcal.selection.gaia_training_mask`, which needs the catalogue's named
        columns); False trains on every star.
    dtype : {"float32", "float64"}, default="float32"
        Dtype of the feature matrix (float32 halves its memory).
    tol : float, default=1e-4
        Relative KKT tolerance of the solver.
    max_iter : int, default=100
        Outer iterations of the solver.
    return_std : bool, default=True
        Also append ``spec_parallax_err`` (needs the spectra's flux uncertainties); False gives
        the predictions only.
    check_units : bool, default=True
        Refuse parallaxes whose median distance says they are not in mas.
    refit : bool, default=True
        Also refit on every training star, so that the fitted step can ``transform`` new stars
        (of another catalogue); ``fit_transform`` gives out-of-fold predictions either way.
    scratch_dir : str, path-like or None, default=None
        Folder for the feature matrices as memory-mapped scratch files (None: in memory).
    n_jobs : int or None, default=None
        Folds fitted in parallel.
    random_state : int, RandomState instance or None, default=None
        Fold assignment.
    verbose : int, default=0
        Progress of the folds and of the solver.

    Attributes
    ----------
    crossfit_ : CrossFitTransformer
        The fitted cross-fitting transformer (:class:`~sklearn_selfcal.crossfit.CrossFitTransformer`
        around :func:`make_parallax_pipeline`).
    training_mask_ : ndarray of bool
        The stars that trained the models.
    intrinsic_scatter_ : float
        Fractional intrinsic scatter of the out-of-fold predictions.
    n_iter_ : int
        Solver iterations of the refitted model (``refit=True``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
    """

    __metadata_request__fit = {"parallax_error": True}

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "parallax_zero_point": PARALLAX_ZERO_POINT_CONSTRAINT,
        "n_folds": [Interval(Integral, 2, None, closed="left")],
        "magnitude_columns": [tuple, list],
        "lsf_columns": [tuple, list],
        "gaia_cuts": ["boolean"],
        "dtype": [StrOptions({"float32", "float64"})],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "return_std": ["boolean"],
        "check_units": ["boolean"],
        "refit": ["boolean"],
        "scratch_dir": [str, os.PathLike, None],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, *, alpha=PAPER_ALPHA, parallax_zero_point=GAIA_PARALLAX_ZERO_POINT,
                 n_folds=2, magnitude_columns=MAGNITUDE_COLUMNS, lsf_columns=LSF_COLUMNS,
                 gaia_cuts=True, dtype="float32", tol=1e-4, max_iter=100, return_std=True,
                 check_units=True, refit=True, scratch_dir=None, n_jobs=None, random_state=None,
                 verbose=0):
        self.alpha = alpha
        self.parallax_zero_point = parallax_zero_point
        self.n_folds = n_folds
        self.magnitude_columns = magnitude_columns
        self.lsf_columns = lsf_columns
        self.gaia_cuts = gaia_cuts
        self.dtype = dtype
        self.tol = tol
        self.max_iter = max_iter
        self.return_std = return_std
        self.check_units = check_units
        self.refit = refit
        self.scratch_dir = scratch_dir
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def _crossfit(self):
        """The cross-fitting transformer of these parameters (the pieces that share them)."""
        from ..crossfit import CrossFitTransformer

        columns = tuple(self.magnitude_columns)
        features = SpectroPhotometricFeatures(magnitude_columns=columns,
                                              lsf_columns=tuple(self.lsf_columns),
                                              dtype=np.dtype(self.dtype).type,
                                              scratch_dir=self.scratch_dir)
        model = make_parallax_pipeline(self.alpha, features=features,
                                       parallax_zero_point=self.parallax_zero_point, tol=self.tol,
                                       max_iter=self.max_iter, check_units=self.check_units,
                                       verbose=self.verbose)
        return CrossFitTransformer(
            model, cv=self.n_folds,
            training_filter=functools.partial(gaia_training_mask, magnitude_columns=columns)
            if self.gaia_cuts else None,
            scatter=functools.partial(fractional_scatter,
                                      parallax_zero_point=self.parallax_zero_point)
            if self.return_std else None,
            output=SPEC_PARALLAX, return_std=self.return_std, refit=self.refit,
            random_state=self.random_state, n_jobs=self.n_jobs, verbose=self.verbose)

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, parallax_error=None):
        """Fit the cross-fitted model (see :meth:`fit_transform`).

        Parameters
        ----------
        X : DataFrame of shape (n_stars, n_columns)
            The catalogue with its spectra (:func:`~sklearn_selfcal.parallax_features.join_spectra`).
        y : array-like of shape (n_stars,)
            Observed Gaia parallaxes (mas); NaN allowed off the training stars.
        parallax_error : array-like of shape (n_stars,)
            Their uncertainties (mas).

        Returns
        -------
        self : SpectroPhotometricParallaxTransformer
            The fitted step.
        """
        self.fit_transform(X, y, parallax_error=parallax_error)
        return self

    @_fit_context(prefer_skip_nested_validation=False)
    def fit_transform(self, X, y, parallax_error=None):
        """Append out-of-fold ``spec_parallax`` and ``spec_parallax_err`` (mas) to ``X``.

        Parameters
        ----------
        X : DataFrame of shape (n_stars, n_columns)
            The catalogue with its spectra.
        y : array-like of shape (n_stars,)
            Observed Gaia parallaxes (mas); NaN allowed off the training stars.
        parallax_error : array-like of shape (n_stars,)
            Their uncertainties (mas).

        Returns
        -------
        Xt : DataFrame
            ``X`` followed by ``spec_parallax`` and ``spec_parallax_err``.
        """
        crossfit = self._crossfit()
        params = {} if parallax_error is None else {"parallax_error": parallax_error}
        with config_context(enable_metadata_routing=True):  # reaches the regressor
            out = crossfit.fit_transform(X, y, **params)
        self.crossfit_ = crossfit
        self.n_features_in_ = crossfit.n_features_in_
        if hasattr(crossfit, "feature_names_in_"):
            self.feature_names_in_ = crossfit.feature_names_in_
        return out

    def transform(self, X):
        """Append ``spec_parallax`` and ``spec_parallax_err`` (mas) of new stars (needs ``refit``).

        Parameters
        ----------
        X : DataFrame of shape (n_stars, n_columns)
            A catalogue with its spectra, in the spelling of the fitted one.

        Returns
        -------
        Xt : DataFrame
            ``X`` followed by the two columns.
        """
        check_is_fitted(self, "crossfit_")
        return self.crossfit_.transform(X)

    def get_feature_names_out(self, input_features=None):
        """The input columns followed by ``spec_parallax`` and ``spec_parallax_err``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input column names (default: those seen in ``fit``).

        Returns
        -------
        names : ndarray of str
            The output columns.
        """
        check_is_fitted(self, "crossfit_")
        return self.crossfit_.get_feature_names_out(input_features)

    @property
    def training_mask_(self):
        """The stars of the last fit that trained the models (ndarray of bool)."""
        return self.crossfit_.training_mask_

    @property
    def oof_indices_(self):
        """Test indices of each fold of the last ``fit_transform`` (list of ndarray)."""
        return self.crossfit_.oof_indices_

    @property
    def intrinsic_scatter_(self):
        """Fractional intrinsic scatter of the out-of-fold predictions (float)."""
        return self.crossfit_.intrinsic_scatter_

    @property
    def n_iter_(self):
        """Outer solver iterations of the model refitted on every training star (int)."""
        if not hasattr(self.crossfit_, "estimator_"):
            raise AttributeError("n_iter_ is that of the refitted model: fit with refit=True")
        return self.crossfit_.estimator_[-1].n_iter_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.allow_nan = True
        return tags
