"""Cross-fitting: a regressor's out-of-fold predictions as a pipeline step (paper section 3.1).

The paper splits its parent sample into two random halves and predicts every star's parallax with
the model trained on the *other* half. :class:`CrossFitTransformer` does this inside a scikit-learn
``Pipeline``: ``fit_transform`` appends out-of-fold predictions (no star is predicted by a model that
saw it), while ``transform`` on new data uses the model refitted on every training star, as
scikit-learn's ``TargetEncoder`` and ``StackingRegressor`` do.
"""

import numbers
from numbers import Integral

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, MetaEstimatorMixin, TransformerMixin, _fit_context, clone
from sklearn.model_selection import KFold, check_cv
from sklearn.pipeline import Pipeline
from sklearn.utils._indexing import _safe_indexing
from sklearn.utils._param_validation import Interval, HasMethods
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted, validate_data

from ._paper import PARALLAX_ERROR, SPEC_PARALLAX
from ._progress import progress
from ._validation import estimator_input

__all__ = ["CrossFitTransformer", "predict_with_std"]


def predict_with_std(estimator, X):
    """Predictions and their 1-sigma uncertainties from a fitted regressor or pipeline.

    For a ``Pipeline`` whose last transformer has a ``transform_err`` method (such as
    :class:`~sklearn_selfcal.parallax_features.SpectroPhotometricFeatures`), the feature
    uncertainties it returns are passed to the final regressor's ``predict(X, X_err=...,
    return_std=True)``, which propagates them; a ``transform_with_err`` method gives features and
    uncertainties in one pass. Otherwise ``predict(X, return_std=True)`` is called.

    Parameters
    ----------
    estimator : fitted regressor or Pipeline
        A regressor whose ``predict`` accepts ``return_std=True``, or a ``Pipeline`` ending in one
        (which then also accepts ``X_err=`` when the last transformer gives uncertainties).
    X : array-like or DataFrame of shape (n_samples, n_features)
        The input of ``estimator`` (for the parallax pipeline: the catalogue with its spectra,
        magnitudes in mag).

    Returns
    -------
    y_pred, y_std : ndarray of shape (n_samples,)
        Predictions and their 1-sigma uncertainties, in the target's units (mas for parallaxes).
    """
    if not isinstance(estimator, Pipeline):
        return estimator.predict(X, return_std=True)
    *transformers, (_, final) = estimator.steps
    Xt, X_err = X, None
    for i, (_, step) in enumerate(transformers):
        if step is None or step == "passthrough":
            continue
        if i == len(transformers) - 1 and hasattr(step, "transform_with_err"):
            Xt, X_err = step.transform_with_err(Xt)
            if hasattr(final, "feature_names_in_"):     # what set_output would have handed it
                Xt = pd.DataFrame(Xt, columns=step.get_feature_names_out(), copy=False)
            continue
        if i == len(transformers) - 1 and hasattr(step, "transform_err"):
            X_err = step.transform_err(Xt)
        Xt = step.transform(Xt)
    if X_err is None:
        return final.predict(Xt, return_std=True)
    return final.predict(Xt, X_err=X_err, return_std=True)


def _slice_params(params, indices, n_samples):
    """Index every per-sample array of ``params`` (nested dicts allowed) with ``indices``."""
    out = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out[key] = _slice_params(value, indices, n_samples)
        elif hasattr(value, "__len__") and not isinstance(value, str) and len(value) == n_samples:
            out[key] = _safe_indexing(value, indices)
        else:
            out[key] = value
    return out


def _predict_in_blocks(estimator, X, return_std, block_rows):
    """Predictions (and std) of ``X`` computed ``block_rows`` rows at a time.

    Predictions are row by row, so the blocks only bound the memory of the intermediate features
    (and their uncertainties) to a block's worth, whatever the number of stars.
    """
    n = X.shape[0]
    step = n if block_rows is None else max(1, int(block_rows))
    preds, stds = [], []
    for start in range(0, max(n, 1), step):
        block = _safe_indexing(X, np.arange(start, min(start + step, n)))
        if return_std:
            p, s = predict_with_std(estimator, block)
            stds.append(np.asarray(s, dtype=float))
        else:
            p = estimator.predict(block)
        preds.append(np.asarray(p, dtype=float))
    pred = np.concatenate(preds) if preds else np.empty(0)
    return pred, (np.concatenate(stds) if return_std and stds else None)


def _fit_rows(estimator, X, y, rows, fit_params):
    """A clone fitted on the rows ``rows`` of ``X`` and ``y`` (metadata sliced alike; None: all)."""
    if rows is None:
        return clone(estimator).fit(X, y, **fit_params)
    return clone(estimator).fit(_safe_indexing(X, rows), _safe_indexing(y, rows),
                                **_slice_params(fit_params, rows, len(y)))


class CrossFitTransformer(MetaEstimatorMixin, TransformerMixin, BaseEstimator):
    """Append a regressor's predictions to a table; out of fold when fitting.

    Parameters
    ----------
    estimator : regressor or Pipeline ending in a regressor
        The model, e.g. ``make_pipeline(SpectroPhotometricFeatures(),
        SpectroPhotometricParallaxRegressor()).set_output(transform="pandas")``. It receives the
        whole input table.
    cv : int or cross-validation splitter, default=2
        Folds for the out-of-fold predictions. An int ``k`` means ``KFold(k, shuffle=True,
        random_state=random_state)``; 2 is the paper's two random halves.
    training_filter : callable or None, default=None
        ``f(X) -> bool array of shape (n_stars,)``, evaluated on the input table (e.g.
        :func:`~sklearn_selfcal.parallax_features.gaia_training_mask`): the stars that train the
        models. Every star gets an out-of-fold prediction, but stars failing the filter never
        train any model (nor the refitted ``estimator_``), and their ``y`` and per-star metadata
        (``parallax_error``) may be NaN. None: every star trains.
    scatter : callable or None, default=None
        Estimates a fractional intrinsic scatter ``s`` from the training stars' out-of-fold
        predictions, called as ``scatter(y, y_pred, parallax_error, y_pred_std=std)`` with
        ``parallax_error`` the metadata passed to ``fit`` (e.g.
        ``functools.partial(fractional_scatter, parallax_zero_point=...)``, see
        :class:`~sklearn_selfcal.parallax.SpectroPhotometricParallaxTransformer`).
        ``<output>_err`` is then ``sqrt(std**2 + (s * prediction)**2)``, in ``fit_transform`` and
        ``transform`` alike. Needs ``return_std`` and ``parallax_error``.
    output : str, default="spec_parallax"
        Name of the appended prediction column.
    return_std : bool, default=True
        Also append ``<output>_err``, the 1-sigma uncertainty from :func:`predict_with_std`
        (combined with the intrinsic scatter when ``scatter`` is given).
    passthrough : bool, default=True
        Keep the input columns in front of the new ones (False: return only the new ones).
    refit : bool, default=True
        In ``fit_transform``, also refit the estimator on every training star (``estimator_``,
        needed by :meth:`transform` for new stars). ``False`` saves that fit when only the
        out-of-fold predictions are wanted.
    random_state : int, RandomState instance or None, default=None
        Shuffles the folds when ``cv`` is an int.
    n_jobs : int, default=None
        Workers fitting the fold models and the refitted model together, then predicting the
        held-out folds (:class:`sklearn.utils.parallel.Parallel`, which carries the
        scikit-learn configuration, such as metadata routing, to the workers). The results do
        not depend on it.
    verbose : int, default=0
        Progress bar over the fits.
    predict_block_rows : int or None, default=20000
        Stars predicted at a time (held-out folds and ``transform``): the model's intermediate
        features exist for one block only, so memory does not grow with the number of stars.
        None: all at once. The predictions do not depend on it.

    Attributes
    ----------
    estimator_ : estimator
        ``estimator`` refitted on the training stars given to ``fit`` (and to ``fit_transform``
        when ``refit``); used by :meth:`transform`.
    oof_indices_ : list of ndarray
        Test indices of each fold, from the last ``fit_transform``.
    training_mask_ : ndarray of bool of shape (n_stars,)
        The stars of the last fit that trained models (``training_filter``).
    intrinsic_scatter_ : float or None
        The fractional intrinsic scatter found by ``scatter`` (None without one).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only for DataFrame input.

    Notes
    -----
    ``fit_transform(X, y)`` differs from ``fit(X, y).transform(X)``, exactly as for scikit-learn's
    ``TargetEncoder``: the former returns predictions for every star from a model that did not see
    it (its fold was held out), the latter would predict stars with a model trained on them. With
    a ``scatter``, ``fit`` also runs the cross-fitting, since the scatter is measured on
    out-of-fold predictions.

    Metadata (``parallax_error``, ``sample_weight``) reaches the inner estimator through
    scikit-learn's metadata routing when it is enabled (``sklearn.set_config(
    enable_metadata_routing=True)``); the step itself consumes ``parallax_error`` (requested by
    default) for ``scatter``. Without routing, keyword arguments of ``fit``/``fit_transform`` are
    passed to the inner estimator's ``fit`` as they are (``stepname__param`` for a Pipeline), and
    ``parallax_error``, if given, also to ``scatter``.
    Per-star arrays are split with the folds and the training filter.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.linear_model import LinearRegression
    >>> from sklearn_selfcal.crossfit import CrossFitTransformer
    >>> X = pd.DataFrame({"a": np.arange(10.0), "b": np.ones(10)})
    >>> y = 2 * X["a"] + 1
    >>> step = CrossFitTransformer(LinearRegression(), output="pred", return_std=False,
    ...                            random_state=0)
    >>> list(step.fit_transform(X, y).columns)
    ['a', 'b', 'pred']
    """

    __metadata_request__fit = {PARALLAX_ERROR: True}

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict"])],
        "cv": ["cv_object"],
        "training_filter": [callable, None],
        "scatter": [callable, None],
        "output": [str],
        "return_std": ["boolean"],
        "passthrough": ["boolean"],
        "refit": ["boolean"],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
        "predict_block_rows": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, estimator, *, cv=2, training_filter=None, scatter=None,
                 output=SPEC_PARALLAX, return_std=True, passthrough=True, refit=True,
                 random_state=None, n_jobs=None, verbose=0, predict_block_rows=20000):
        self.estimator = estimator
        self.cv = cv
        self.training_filter = training_filter
        self.scatter = scatter
        self.output = output
        self.return_std = return_std
        self.passthrough = passthrough
        self.refit = refit
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.predict_block_rows = predict_block_rows

    # ---------------------------------------------------------------- metadata routing
    def get_metadata_routing(self):
        """Route ``fit`` / ``fit_transform`` metadata to the inner estimator's ``fit``.

        The step also consumes ``parallax_error`` itself (for ``scatter``).

        Returns
        -------
        routing : sklearn.utils.metadata_routing.MetadataRouter
            The step's own request (``parallax_error`` for ``fit``) and the mapping of its ``fit`` and
            ``fit_transform`` to the inner estimator's ``fit``.
        """
        return MetadataRouter(owner=self.__class__.__name__).add_self_request(self).add(
            estimator=self.estimator,
            method_mapping=MethodMapping().add(caller="fit", callee="fit")
            .add(caller="fit_transform", callee="fit"),
        )

    def _start_fit(self, method, X, y, params):
        """Checked X and y and ``training_mask_``; params of the inner fit, parallax_error."""
        routing = _routing_enabled()
        fit_params = process_routing(self, method, **params).estimator.fit if routing else params
        X = self._check_input(X, reset=True)
        y = self._check_target(y, X)
        self.training_mask_ = self._training_mask(X, len(y))
        return X, y, fit_params, params.get(PARALLAX_ERROR)

    # ---------------------------------------------------------------- fitting
    def _splitter(self):
        if isinstance(self.cv, numbers.Integral):
            return KFold(n_splits=int(self.cv), shuffle=True, random_state=self.random_state)
        return check_cv(self.cv)

    def _check_input(self, X, *, reset):
        X = estimator_input(X, type(self).__name__)
        if sp.issparse(X):
            raise TypeError("CrossFitTransformer does not accept sparse input; pass a DataFrame or "
                            "a dense array")
        if not isinstance(X, pd.DataFrame):
            X = np.asarray(X)
            if X.ndim != 2:
                raise ValueError(f"Expected a 2D array of shape (n_stars, n_features), got shape "
                                 f"{X.shape}. Reshape your data with X.reshape(-1, 1) for a single feature")
        # names and widths are recorded and checked here; values are the inner estimator's business
        validate_data(self, X, reset=reset, skip_check_array=True)
        return X

    def _check_target(self, y, X):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is "
                             "None")
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must have shape ({len(X)},), got {y.shape}")
        return y

    def _training_mask(self, X, n):
        if self.training_filter is None:
            return np.ones(n, dtype=bool)
        mask = np.asarray(self.training_filter(X))
        if mask.shape != (n,) or mask.dtype != bool:
            raise ValueError(f"training_filter must return a boolean array of shape ({n},), got "
                             f"dtype {mask.dtype} and shape {mask.shape}")
        if not mask.any():
            raise ValueError("training_filter: no star passes it, so no model can be trained")
        return mask

    def _cross_fit(self, X, y, fit_params, parallax_error, *, refit):
        """Out-of-fold predictions (and std) for every star; sets the fitted attributes.

        The fold models and, with ``refit``, the model of every training star (``estimator_``)
        are independent fits: they run together in ``n_jobs`` workers, the largest (the refit)
        first, then the held-out rows are predicted, one fold per worker. The fits and the
        predictions are those of a sequential run whatever ``n_jobs``.
        """
        n = len(y)
        train_mask = self.training_mask_
        splits = list(self._splitter().split(X, y))
        rows = [train[train_mask[train]] for train, _ in splits]
        if refit:
            everyone = np.flatnonzero(train_mask)
            rows.insert(0, None if everyone.size == n else everyone)
        parallel = Parallel(n_jobs=self.n_jobs)
        models = parallel(progress(
            (delayed(_fit_rows)(self.estimator, X, y, r, fit_params) for r in rows),
            total=len(rows), desc="cross-fit models", verbose=self.verbose))
        if refit:
            self.estimator_ = models.pop(0)
        results = parallel(
            delayed(_predict_in_blocks)(model, _safe_indexing(X, test), self.return_std,
                                        self.predict_block_rows)
            for model, (_, test) in zip(models, splits))
        pred = np.full(n, np.nan)
        std = np.full(n, np.nan) if self.return_std else None
        for (_, test), (p, s) in zip(splits, results):
            pred[test] = p
            if self.return_std:
                std[test] = s
        self.oof_indices_ = [test for _, test in splits]
        self.intrinsic_scatter_ = None
        if self.scatter is not None:
            if not self.return_std:
                raise ValueError("scatter needs return_std=True")
            if parallax_error is None:
                raise ValueError(f"scatter needs the stars' {PARALLAX_ERROR}: pass {PARALLAX_ERROR}= "
                                 "to fit / fit_transform (with metadata routing enabled, "
                                 "sklearn.set_config(enable_metadata_routing=True))")
            m = train_mask
            self.intrinsic_scatter_ = float(self.scatter(
                np.asarray(y, dtype=float)[m], pred[m],
                np.asarray(parallax_error, dtype=float)[m], y_pred_std=std[m]))
            std = self._with_scatter(pred, std)
        return pred, std

    def _with_scatter(self, pred, std):
        if self.intrinsic_scatter_ is None:
            return std
        return np.sqrt(std**2 + (self.intrinsic_scatter_ * pred) ** 2)

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, **params):
        """Fit the inner estimator on every training star.

        With a ``scatter``, the cross-fitting of :meth:`fit_transform` is run too, to measure the
        intrinsic scatter on out-of-fold predictions.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_stars, n_features)
            Input table handed whole to ``estimator`` (and to ``training_filter``).
        y : array-like of shape (n_stars,)
            Target (observed parallaxes, mas, for the parallax model); NaN allowed for stars
            failing ``training_filter``.
        **params : dict
            Metadata for the inner ``fit`` (e.g. ``parallax_error``, ``sample_weight``).

        Returns
        -------
        self : CrossFitTransformer
            The fitted transformer.
        """
        X, y, fit_params, parallax_error = self._start_fit("fit", X, y, params)
        self.intrinsic_scatter_ = None
        if self.scatter is not None:
            self._cross_fit(X, y, fit_params, parallax_error, refit=True)
        else:
            rows = np.flatnonzero(self.training_mask_)
            self.estimator_ = _fit_rows(self.estimator, X, y,
                                        None if rows.size == len(y) else rows, fit_params)
        return self

    @_fit_context(prefer_skip_nested_validation=False)
    def fit_transform(self, X, y, **params):
        """Fit on every training star and return out-of-fold predictions appended to ``X``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_stars, n_features)
            Input table handed whole to ``estimator`` (and to ``training_filter``).
        y : array-like of shape (n_stars,)
            Target (observed parallaxes, mas, for the parallax model); NaN allowed for stars
            failing ``training_filter``.
        **params : dict
            Metadata for the inner ``fit``; per-star arrays are split with the folds.

        Returns
        -------
        Xt : DataFrame or ndarray
            ``X`` (if ``passthrough``) followed by ``<output>`` (and ``<output>_err``), every value
            predicted by a model that did not see that star.
        """
        X, y, fit_params, parallax_error = self._start_fit("fit_transform", X, y, params)
        pred, std = self._cross_fit(X, y, fit_params, parallax_error, refit=self.refit)
        return self._append(X, pred, std)

    def transform(self, X):
        """Append the refitted model's predictions to ``X`` (for new stars).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_stars, n_features)
            New stars, with the columns seen in ``fit``.

        Returns
        -------
        Xt : DataFrame or ndarray
            ``X`` (if ``passthrough``) followed by ``<output>`` (and ``<output>_err``) predicted by
            ``estimator_``; a DataFrame with ``X``'s index for DataFrame input.
        """
        check_is_fitted(self, "estimator_")
        X = self._check_input(X, reset=False)
        pred, std = _predict_in_blocks(self.estimator_, X, self.return_std,
                                       self.predict_block_rows)
        if self.return_std:
            std = self._with_scatter(pred, std)
        return self._append(X, pred, std)

    def _append(self, X, pred, std):
        new = {self.output: np.asarray(pred, dtype=float)}
        if std is not None:
            new[f"{self.output}_err"] = np.asarray(std, dtype=float)
        if isinstance(X, pd.DataFrame):
            added = pd.DataFrame(new, index=X.index)
            return pd.concat([X, added], axis=1) if self.passthrough else added
        added = np.column_stack(list(new.values()))
        return np.hstack([np.asarray(X), added]) if self.passthrough else added

    def get_feature_names_out(self, input_features=None):
        """Get the names of the output columns: the input's (if ``passthrough``) then the new ones.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Names of the input columns. None: ``feature_names_in_`` if fitted on a DataFrame,
            otherwise ``x0, x1, ...``. Ignored when ``passthrough`` is False.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The input names (if ``passthrough``), then ``<output>`` and, with ``return_std``,
            ``<output>_err``.
        """
        check_is_fitted(self, "n_features_in_")
        new = [self.output] + ([f"{self.output}_err"] if self.return_std else [])
        if not self.passthrough:
            return np.asarray(new, dtype=object)
        if input_features is None:
            input_features = getattr(self, "feature_names_in_",
                                     [f"x{i}" for i in range(self.n_features_in_)])
        return np.asarray(list(input_features) + new, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags
