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


def test_per_star_metadata_is_split_with_the_folds():
    X, y = _table()
    w = np.arange(40, dtype=float)
    step = CrossFitTransformer(_MemorisingRegressor(), cv=KFold(2), return_std=False)
    step.fit_transform(X, y, sample_weight=w)
    np.testing.assert_array_equal(step.estimator_.weights_, w)
    with config_context(enable_metadata_routing=True):
        est = _MemorisingRegressor().set_fit_request(sample_weight=True)
        step = CrossFitTransformer(est, cv=KFold(2), return_std=False)
        step.fit_transform(X, y, sample_weight=w)
        np.testing.assert_array_equal(step.estimator_.weights_, w)


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
    with pytest.raises(ValueError, match="cv must be >= 2"):
        CrossFitTransformer(LinearRegression(), cv=1).fit_transform(X, y)
