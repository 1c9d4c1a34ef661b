"""Tests of the cross-fitting pipeline step."""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn import config_context
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_selfcal.crossfit import CrossFitTransformer, predict_with_std


class _MemorisingRegressor(RegressorMixin, BaseEstimator):
    """Predicts the training target for stars it saw (by the value of column 0), else -1."""

    def fit(self, X, y, sample_weight=None):
        X = np.asarray(X)
        self.seen_ = dict(zip(X[:, 0].tolist(), np.asarray(y).tolist()))
        self.weights_ = None if sample_weight is None else np.asarray(sample_weight)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X, return_std=False):
        X = np.asarray(X)
        pred = np.array([self.seen_.get(v, -1.0) for v in X[:, 0].tolist()])
        return (pred, np.full(len(pred), 0.5)) if return_std else pred


def _table(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"id": np.arange(n, dtype=float), "a": rng.normal(size=n)}, index=np.arange(n) + 100)
    y = 3.0 * X["a"].to_numpy() + 1.0
    return X, y


def test_out_of_fold_predictions_never_come_from_a_model_that_saw_the_star():
    X, y = _table()
    out = CrossFitTransformer(_MemorisingRegressor(), cv=2, output="p", random_state=0).fit_transform(X, y)
    # a memorising model returns the training target for stars it saw: out-of-fold it never can
    assert np.all(out["p"].to_numpy() == -1.0)
    assert list(out.columns) == ["id", "a", "p", "p_err"]
    assert out.index.equals(X.index)


def test_transform_uses_model_refitted_on_everything():
    X, y = _table()
    step = CrossFitTransformer(_MemorisingRegressor(), cv=2, output="p", return_std=False, random_state=0)
    step.fit_transform(X, y)
    np.testing.assert_array_equal(step.transform(X)["p"].to_numpy(), y)


def test_folds_are_the_papers_two_random_halves():
    X, y = _table(n=41)
    step = CrossFitTransformer(LinearRegression(), cv=2, return_std=False, random_state=3)
    step.fit_transform(X, y)
    a, b = step.oof_indices_
    assert abs(len(a) - len(b)) <= 1 and np.intersect1d(a, b).size == 0
    assert np.union1d(a, b).size == 41
    assert not np.array_equal(np.sort(a), np.arange(len(a)))  # shuffled, not the first half
    again = CrossFitTransformer(LinearRegression(), cv=2, return_std=False, random_state=3)
    again.fit_transform(X, y)
    np.testing.assert_array_equal(a, again.oof_indices_[0])


def test_predictions_match_manual_cross_fit():
    X, y = _table(n=60, seed=1)
    y = y + np.random.default_rng(2).normal(size=60)
    out = CrossFitTransformer(LinearRegression(), cv=KFold(3), output="p", return_std=False).fit_transform(X, y)
    expected = np.empty(60)
    for train, test in KFold(3).split(X):
        expected[test] = LinearRegression().fit(X.iloc[train], y[train]).predict(X.iloc[test])
    np.testing.assert_allclose(out["p"], expected)


class _WeightCheckRegressor(RegressorMixin, BaseEstimator):
    """Predicts 1 if every training row came with its own weight (star ``i`` has ``10 i``), else 0.

    ``sample_weight`` must be sliced alike with the rows of ``X``: a fold handed the unsliced array
    (40 weights for 20 rows) pairs row ``k`` with star ``k``'s weight and predicts 0.
    """

    def fit(self, X, y, sample_weight=None):
        ids = np.asarray(X)[:, 0]
        w = np.asarray(sample_weight, dtype=float)
        self.ok_ = bool(len(w) == len(ids) and np.array_equal(w, 10.0 * ids))
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X):
        return np.full(len(X), float(self.ok_))


def test_per_star_metadata_is_split_with_the_folds():
    X, y = _table()
    w = 10.0 * X["id"].to_numpy()
    for routing in (False, True):
        with config_context(enable_metadata_routing=routing):
            est = _WeightCheckRegressor()
            if routing:
                est = est.set_fit_request(sample_weight=True)
            step = CrossFitTransformer(est, cv=KFold(2, shuffle=True, random_state=0),
                                       output="p", return_std=False)
            out = step.fit_transform(X, y, sample_weight=w)
        # every out-of-fold prediction comes from a fold model that got its rows' own weights
        np.testing.assert_array_equal(out["p"].to_numpy(), np.ones(40))
        assert step.estimator_.ok_


def test_training_filter_stars_are_predicted_but_never_train():
    X, y = _table()
    keep = (X["id"].to_numpy() % 3) != 0

    def training_filter(table):
        return (table["id"].to_numpy() % 3) != 0

    y = np.where(keep, y, np.nan)             # no target for the stars that do not train
    step = CrossFitTransformer(_MemorisingRegressor(), cv=2, training_filter=training_filter,
                               output="p", random_state=0)
    out = step.fit_transform(X, y)
    np.testing.assert_array_equal(step.training_mask_, keep)
    assert np.all(out["p"].to_numpy() == -1.0)          # out of fold for everyone
    # the refitted model saw exactly the training stars
    assert set(step.estimator_.seen_) == set(X["id"].to_numpy()[keep].tolist())
    refit = step.transform(X)["p"].to_numpy()
    np.testing.assert_array_equal(refit[keep], y[keep])
    assert np.all(refit[~keep] == -1.0)
    with pytest.raises(ValueError, match="boolean array of shape"):
        CrossFitTransformer(_MemorisingRegressor(), training_filter=lambda t: np.ones(3, bool)
                            ).fit_transform(X, y)


def test_scatter_completes_the_error_budget_in_fit_transform_and_transform():
    X, y = _table()
    err = np.full(40, 0.2)
    calls = []

    def scatter(y_, pred, err_, *, y_pred_std):
        calls.append((y_.copy(), pred.copy(), err_.copy(), y_pred_std.copy()))
        return 0.25

    keep = np.arange(40) >= 5
    step = CrossFitTransformer(LinearRegression(), cv=2, training_filter=lambda t: keep,
                               scatter=scatter, output="p", random_state=0)
    with pytest.raises(ValueError, match="return_std"), config_context(enable_metadata_routing=True):
        CrossFitTransformer(LinearRegression(), scatter=scatter, return_std=False).fit_transform(
            X, y, parallax_error=err)

    class StdRegressor(LinearRegression):
        def predict(self, X, return_std=False):
            pred = super().predict(X)
            return (pred, np.full(len(pred), 0.1)) if return_std else pred

    step.set_params(estimator=StdRegressor())
    with pytest.raises(ValueError, match="parallax_error"):
        step.fit_transform(X, y)
    with config_context(enable_metadata_routing=True):
        # the step consumes parallax_error itself; the inner regressor does not ask for it
        out = step.fit_transform(X, y, parallax_error=err)
    assert step.intrinsic_scatter_ == 0.25
    (y_, pred, err_, std), = calls
    # the scatter saw the training stars only, with their out-of-fold predictions
    np.testing.assert_array_equal(y_, y[keep])
    np.testing.assert_array_equal(pred, out["p"].to_numpy()[keep])
    np.testing.assert_array_equal(err_, err[keep])
    np.testing.assert_array_equal(std, np.full(keep.sum(), 0.1))
    p = out["p"].to_numpy()
    np.testing.assert_allclose(out["p_err"], np.sqrt(0.1**2 + (0.25 * p) ** 2))
    new = step.transform(X)
    np.testing.assert_allclose(new["p_err"], np.sqrt(0.1**2 + (0.25 * new["p"]) ** 2))


def test_parallel_folds_with_routing_equal_sequential_ones():
    X, y = _table(n=60, seed=4)
    w = np.linspace(1.0, 2.0, 60)
    out = {}
    with config_context(enable_metadata_routing=True):
        for n_jobs in (1, 2):
            # a Pipeline only accepts sample_weight=... when routing is on in the worker too
            est = make_pipeline(StandardScaler().set_fit_request(sample_weight=False),
                                LinearRegression().set_fit_request(sample_weight=True))
            step = CrossFitTransformer(est, cv=3, output="p", return_std=False, random_state=0,
                                       n_jobs=n_jobs)
            out[n_jobs] = step.fit_transform(X, y + np.sin(X["a"].to_numpy()), sample_weight=w)
    pd.testing.assert_frame_equal(out[2], out[1])


def test_folds_and_refit_fitted_together_in_workers_equal_sequential_ones():
    """The refit runs in the same workers as the fold models: same out-of-fold predictions, and
    ``estimator_`` is the model of every training star (not a fold's), whatever ``n_jobs``."""
    X, y = _table(n=50, seed=5)
    train = X["a"].to_numpy() > -0.8
    fitted = {}
    for n_jobs in (None, 2):
        step = CrossFitTransformer(_MemorisingRegressor(), cv=2, output="p", random_state=0,
                                   training_filter=lambda t: t["a"].to_numpy() > -0.8,
                                   n_jobs=n_jobs)
        fitted[n_jobs] = (step.fit_transform(X, y), step)
    pd.testing.assert_frame_equal(fitted[2][0], fitted[None][0])
    for out, step in fitted.values():
        assert np.all(out["p"].to_numpy() == -1.0)          # still out of fold
        # the refitted model saw exactly the training stars, each with its own target
        assert step.estimator_.seen_ == dict(zip(X["id"][train].tolist(), y[train].tolist()))


def test_numpy_input_and_no_passthrough():
    X, y = _table()
    step = CrossFitTransformer(LinearRegression(), output="p", return_std=False, passthrough=False,
                               random_state=0)
    out = step.fit_transform(X.to_numpy(), y)
    assert out.shape == (40, 1)
    assert list(step.get_feature_names_out()) == ["p"]


def test_predict_with_std_through_a_pipeline_uses_transform_err():
    class Features(StandardScaler):
        def transform_err(self, X):
            return np.full(np.shape(X), 0.1)

    class Model(LinearRegression):
        def predict(self, X, X_err=None, return_std=False):
            pred = super().predict(X)
            if not return_std:
                return pred
            return pred, np.sqrt(np.sum((X_err * self.coef_) ** 2, axis=1))

    X, y = _table()
    pipe = make_pipeline(Features(), Model()).fit(X, y)
    pred, std = predict_with_std(pipe, X)
    coef = pipe[-1].coef_
    np.testing.assert_allclose(std, np.full(40, np.sqrt(np.sum((0.1 * coef) ** 2))))


def test_pickle_round_trip(tmp_path):
    X, y = _table()
    step = CrossFitTransformer(LinearRegression(), output="p", return_std=False, random_state=0)
    step.fit_transform(X, y)
    back = pickle.loads(pickle.dumps(step))
    pd.testing.assert_frame_equal(back.transform(X), step.transform(X))


def test_bad_cv():
    X, y = _table()
    with pytest.raises(ValueError, match="'cv' parameter"):
        CrossFitTransformer(LinearRegression(), cv=1).fit_transform(X, y)


class _BlockRecorder(_MemorisingRegressor):
    """Records the number of rows of every predict call (a proxy for the features' memory)."""

    def predict(self, X, return_std=False):
        type(self).calls.append(len(np.asarray(X)))
        return super().predict(X, return_std=return_std)


def test_predictions_in_row_blocks_are_the_same_and_bounded():
    X, y = _table(n=103)
    _BlockRecorder.calls = []
    blocked = CrossFitTransformer(_BlockRecorder(), cv=2, output="p", random_state=0,
                                  predict_block_rows=10)
    out = blocked.fit_transform(X, y)
    # every held-out star was predicted in calls of at most 10 rows
    assert _BlockRecorder.calls and max(_BlockRecorder.calls) <= 10
    _BlockRecorder.calls = []
    new = blocked.transform(X)
    assert max(_BlockRecorder.calls) <= 10 and sum(_BlockRecorder.calls) == len(X)
    whole = CrossFitTransformer(_BlockRecorder(), cv=2, output="p", random_state=0,
                                predict_block_rows=None)
    pd.testing.assert_frame_equal(out, whole.fit_transform(X, y))
    pd.testing.assert_frame_equal(new, whole.transform(X))
