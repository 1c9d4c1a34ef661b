"""The parallax model as pipeline pieces: features then regressor, and its cross-fitted step."""

import functools

import numpy as np
from sklearn.pipeline import make_pipeline

from .._paper import GAIA_PARALLAX_ZERO_POINT, PAPER_ALPHA, SPEC_PARALLAX
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
        parallax_error=table["parallax_error"])``; ``step.training_mask_`` tells the training
        stars.

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
    ...     out = step.fit_transform(table, table["parallax"],
    ...                              parallax_error=table["parallax_error"])
    >>> bool(out[["spec_parallax", "spec_parallax_err"]].notna().all().all())
    True
    >>> 0 < step.intrinsic_scatter_ < 1
    True
    """
    from ..crossfit import CrossFitTransformer

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
        output=SPEC_PARALLAX, random_state=random_state, n_jobs=n_jobs, verbose=verbose)
