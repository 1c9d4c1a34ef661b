"""Tests of the spectro-photometric parallax model (section 3.1): estimators, tuning, and the
estimators as points of the kernel's path (the solver: tests/test_kernels_explinear_l1.py)."""

import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold, cross_val_predict
from sklearn.pipeline import make_pipeline

from sklearn_selfcal import (SpectroPhotometricParallaxRegressor,
                             SpectroPhotometricParallaxRegressorCV)
from sklearn_selfcal._kernels import explinear_l1 as kl1
from sklearn_selfcal._kernels.explinear_l1 import explinear_l1_path
from sklearn_selfcal.datasets import make_survey
from sklearn_selfcal._paper import GAIA_PARALLAX_ZERO_POINT, PAPER_ALPHA, PARALLAX_ERROR
from sklearn_selfcal.parallax import (ChiSquaredScorer, chi_squared, fractional_scatter,
                                      make_parallax_pipeline,
                                      SpectroPhotometricParallaxTransformer)
from sklearn_selfcal.parallax_features import (MAGNITUDE_COLUMNS, SpectroPhotometricFeatures,
                                               gaia_training_mask, join_spectra)

from _helpers import explinear_pieces as _pieces
from _helpers import toy_parallax_problem as _toy_problem


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def survey():
    """A small simulated survey: training-quality stars, their table and features."""
    s = make_survey(n_stars=3000, n_pixels=300, random_state=3)
    keep = gaia_training_mask(s.frame)
    table = join_spectra(s.frame, s.spectra, s.spectra_err)[keep].reset_index(drop=True)
    return dict(table=table, y=table["parallax"].to_numpy(),
                parallax_error=table["parallax_error"].to_numpy(),
                true=s.truth["parallax"].to_numpy()[keep])


@pytest.fixture(scope="module")
def survey_features(survey):
    features = SpectroPhotometricFeatures().set_output(transform="pandas")
    return features.fit_transform(survey["table"])


# ------------------------------------------------------------------------------------------
# the regressor
# ------------------------------------------------------------------------------------------
def test_alpha_is_per_star_and_sample_weight_is_repetition():
    X, y, err, _, names = _toy_problem(n=200, seed=5)
    df = pd.DataFrame(X, columns=names)
    once = SpectroPhotometricParallaxRegressor(alpha=2e-3, tol=1e-8).fit(df, y, parallax_error=err)
    twice = SpectroPhotometricParallaxRegressor(alpha=2e-3, tol=1e-8).fit(
        pd.concat([df, df]), np.r_[y, y], parallax_error=np.r_[err, err])
    np.testing.assert_allclose(twice.coef_, once.coef_, rtol=1e-6, atol=1e-9)
    # weight 2 = the star twice, weight 0 = the star left out
    w = np.where(np.arange(200) < 50, 2.0, 1.0)
    w[50:60] = 0.0
    weighted = SpectroPhotometricParallaxRegressor(alpha=2e-3, tol=1e-8).fit(
        df, y, parallax_error=err, sample_weight=w)
    rows = np.r_[np.arange(200), np.arange(50)]
    rows = rows[(rows < 50) | (rows >= 60)]
    rep = SpectroPhotometricParallaxRegressor(alpha=2e-3, tol=1e-8).fit(
        df.iloc[rows], y[rows], parallax_error=err[rows])
    np.testing.assert_allclose(weighted.coef_, rep.coef_, rtol=1e-6, atol=1e-9)


def test_penalized_auto_leaves_magnitudes_unpenalised():
    X, y, err, true, names = _toy_problem(seed=6)
    df = pd.DataFrame(X, columns=names)
    strong = SpectroPhotometricParallaxRegressor(alpha=10.0).fit(df, y, parallax_error=err)
    np.testing.assert_array_equal(strong.penalized_, [n.startswith("LOGFLUX") for n in names])
    assert np.all(strong.coef_[:-2] == 0) and np.all(strong.coef_[-2:] != 0)
    # without feature names every feature is penalised (documented): magnitudes shrink too
    plain = SpectroPhotometricParallaxRegressor(alpha=10.0).fit(X, y, parallax_error=err)
    assert plain.penalized_.all()
    assert np.abs(plain.coef_[-2:]).sum() < 0.9 * np.abs(strong.coef_[-2:]).sum()
    # by name, by index and by mask give the same model
    by_name = SpectroPhotometricParallaxRegressor(alpha=1e-3, penalized=names[:-2]).fit(
        df, y, parallax_error=err)
    by_index = SpectroPhotometricParallaxRegressor(alpha=1e-3, penalized=np.arange(40)).fit(
        X, y, parallax_error=err)
    by_mask = SpectroPhotometricParallaxRegressor(alpha=1e-3, penalized=strong.penalized_).fit(
        X, y, parallax_error=err)
    np.testing.assert_allclose(by_name.coef_, by_index.coef_, rtol=1e-10)
    np.testing.assert_allclose(by_mask.coef_, by_index.coef_, rtol=1e-10)
    with pytest.raises(KeyError, match="nope"):
        SpectroPhotometricParallaxRegressor(penalized=["nope"]).fit(df, y, parallax_error=err)


def test_negative_parallaxes_stay_in_the_fit_and_no_overflow():
    X, y, err, _, names = _toy_problem(seed=7)
    y = y.copy()
    y[:40] = -np.abs(y[:40])                 # negative observed parallaxes carry information
    model = SpectroPhotometricParallaxRegressor(alpha=1e-3, tol=1e-6)
    with np.errstate(over="raise", invalid="raise"), warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(pd.DataFrame(X * 30.0, columns=names), y, parallax_error=err)   # steep exponent
    pred = model.predict(pd.DataFrame(X * 30.0, columns=names))
    assert np.all(np.isfinite(pred)) and np.all(pred > 0)
    objective = (np.mean((y - GAIA_PARALLAX_ZERO_POINT - pred) ** 2 / (2 * err**2))
                 + 1e-3 * np.abs(model.coef_[model.penalized_]).sum())
    assert model.objective_ == pytest.approx(objective, rel=1e-9)   # every star counted
    dropped = SpectroPhotometricParallaxRegressor(alpha=1e-3, tol=1e-6).fit(
        pd.DataFrame(X[40:] * 30.0, columns=names), y[40:], parallax_error=err[40:])
    assert not np.allclose(dropped.coef_, model.coef_)


def test_input_errors_name_the_culprit():
    X, y, err, _, names = _toy_problem(n=50, p=5)
    df = pd.DataFrame(X, columns=names)
    model = SpectroPhotometricParallaxRegressor()
    bad = err.copy()
    bad[3] = 0.0
    with pytest.raises(ValueError, match="parallax_error"):
        model.fit(df, y, parallax_error=bad)
    with pytest.raises(ValueError, match="parallax_error"):
        model.fit(df, y, parallax_error=err[:-1])
    nan = df.copy()
    nan.iloc[4, 2] = np.nan
    with pytest.raises(ValueError, match="LOGFLUX_0002"):
        model.fit(nan, y, parallax_error=err)
    ynan = y.copy()
    ynan[7] = np.nan
    with pytest.raises(ValueError, match="parallax"):
        model.fit(df, ynan, parallax_error=err)
    with pytest.raises(ValueError):
        model.fit(df, y[:-2], parallax_error=err)
    with pytest.raises(ValueError, match="alpha"):
        SpectroPhotometricParallaxRegressor(alpha=-1.0).fit(df, y, parallax_error=err)
    fitted = SpectroPhotometricParallaxRegressor().fit(df, y, parallax_error=err)
    with pytest.raises(ValueError, match="X_err"):
        fitted.predict(df, return_std=True)
    with pytest.raises(ValueError, match="X_err"):
        fitted.predict(df, X_err=np.zeros((50, 3)), return_std=True)


def test_does_not_modify_or_copy_float32_input():
    X, y, err, _, names = _toy_problem(dtype=np.float32)
    before = X.copy()
    model = SpectroPhotometricParallaxRegressor(alpha=1e-3).fit(X, y, parallax_error=err)
    np.testing.assert_array_equal(X, before)
    m64 = SpectroPhotometricParallaxRegressor(alpha=1e-3).fit(X.astype(np.float64), y, err)
    np.testing.assert_allclose(model.predict(X), m64.predict(X.astype(np.float64)), rtol=1e-4)


def test_convergence_warning_and_warm_start():
    X, y, err, _, names = _toy_problem(seed=8)
    df = pd.DataFrame(X, columns=names)
    with pytest.warns(ConvergenceWarning, match="KKT"):
        SpectroPhotometricParallaxRegressor(alpha=1e-4, max_iter=1).fit(df, y, parallax_error=err)
    model = SpectroPhotometricParallaxRegressor(alpha=1e-3, warm_start=True, tol=1e-6)
    model.fit(df, y, parallax_error=err)
    coef = model.coef_.copy()
    model.fit(df, y, parallax_error=err)        # restarting at the optimum: nothing left to do
    assert model.n_iter_ == 0
    np.testing.assert_allclose(model.coef_, coef)


def test_predict_std_propagates_feature_errors_and_scatter():
    X, y, err, true, names = _toy_problem(seed=9)
    df = pd.DataFrame(X, columns=names)
    model = SpectroPhotometricParallaxRegressor(alpha=1e-3).fit(df, y, parallax_error=err)
    X_err = np.full_like(X, 0.01)
    pred, std = model.predict(df, X_err=X_err, return_std=True)
    np.testing.assert_allclose(std, pred * np.sqrt(np.sum((0.01 * model.coef_) ** 2)))
    s = model.estimate_intrinsic_scatter(df, y, err)
    assert model.intrinsic_scatter_ == s
    _, std2 = model.predict(df, X_err=X_err, return_std=True)
    np.testing.assert_allclose(std2, np.sqrt(std**2 + (s * pred) ** 2))


def test_fractional_scatter_recovers_an_injected_scatter():
    rng = np.random.default_rng(10)
    pred = rng.uniform(0.1, 1.0, 20000)
    err = rng.uniform(0.02, 0.2, 20000)
    # observed = true + zero point (the Gaia default, which fractional_scatter removes)
    y = (pred * (1 + 0.09 * rng.normal(size=pred.size)) + err * rng.normal(size=pred.size)
         + GAIA_PARALLAX_ZERO_POINT)
    # 20,000 stars: the ML estimate's standard error is ~0.001, so 0.005 is a 5-sigma band
    assert fractional_scatter(y, pred, err) == pytest.approx(0.09, abs=0.005)
    # no intrinsic scatter: ~0 once the zero point is removed (measured 0.008); the -0.017 mas
    # left in reads as a scatter of a few per cent (measured 0.025)
    noise_only = pred + err * rng.normal(size=pred.size) + GAIA_PARALLAX_ZERO_POINT
    assert fractional_scatter(noise_only, pred, err) < 0.012
    assert fractional_scatter(noise_only, pred, err, parallax_zero_point=0.0) > 0.02


# ------------------------------------------------------------------------------------------
# injection and recovery on make_survey; tuning with scikit-learn's tools
# ------------------------------------------------------------------------------------------
def test_two_halves_recover_true_parallaxes(survey):
    """The paper's scheme: each half predicted by the model trained on the other half."""
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(SpectroPhotometricFeatures(),
                             SpectroPhotometricParallaxRegressor(alpha=PAPER_ALPHA))
        pipe.set_output(transform="pandas")
        halves = KFold(2, shuffle=True, random_state=0)
        pred = cross_val_predict(pipe, survey["table"], survey["y"], cv=halves,
                                 params={"parallax_error": survey["parallax_error"]})
    frac = np.median(np.abs(pred / survey["true"] - 1))
    gaia = np.median(np.abs((survey["y"] - GAIA_PARALLAX_ZERO_POINT) / survey["true"] - 1))
    # reached: ~6.3 % with ~1,500 training stars per half and 300 pixels (Gaia alone: ~12 %); the
    # paper quotes ~9 % on real data. 9 % bounds it, and beating Gaia's own parallaxes by a
    # quarter shows the spectra and photometry carry the distance information.
    assert frac < 0.09
    assert frac < 0.75 * gaia
    # the same two fits by hand: cross_val_predict routed parallax_error to every fold
    for train, test in halves.split(survey["table"]):
        manual = make_pipeline(SpectroPhotometricFeatures(),
                               SpectroPhotometricParallaxRegressor(alpha=PAPER_ALPHA))
        manual.set_output(transform="pandas")
        manual.fit(survey["table"].iloc[train], survey["y"][train],
                   spectrophotometricparallaxregressor__parallax_error=(
                       survey["parallax_error"][train]))
        np.testing.assert_allclose(pred[test], manual.predict(survey["table"].iloc[test]),
                                   rtol=1e-10)


def test_grid_search_in_a_pipeline_routes_parallax_error(survey):
    table, y, err = survey["table"], survey["y"], survey["parallax_error"]
    folds = KFold(2, shuffle=True, random_state=1)
    alphas = [3e-2, 4e-3]
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(SpectroPhotometricFeatures(), SpectroPhotometricParallaxRegressor())
        pipe.set_output(transform="pandas")
        grid = GridSearchCV(pipe, {"spectrophotometricparallaxregressor__alpha": alphas},
                            cv=folds, scoring=ChiSquaredScorer()).fit(table, y, parallax_error=err)
    # recompute the held-out chi2 of each fold by hand, with each star's own parallax_error
    for i, alpha in enumerate(alphas):
        scores = []
        for train, test in folds.split(table):
            model = make_pipeline(SpectroPhotometricFeatures(),
                                  SpectroPhotometricParallaxRegressor(alpha=alpha))
            model.set_output(transform="pandas")
            model.fit(table.iloc[train], y[train],
                      spectrophotometricparallaxregressor__parallax_error=err[train])
            scores.append(-chi_squared(y[test], model.predict(table.iloc[test]),
                                       parallax_error=err[test],
                                       parallax_zero_point=GAIA_PARALLAX_ZERO_POINT))
        assert grid.cv_results_["mean_test_score"][i] == pytest.approx(np.mean(scores), rel=1e-9)
    with pytest.raises(ValueError, match="routing"):
        ChiSquaredScorer()(grid.best_estimator_, table, y)


def test_cv_path_matches_fits_at_each_alpha(survey, survey_features):
    X, y, err = survey_features, survey["y"], survey["parallax_error"]
    folds = KFold(2, shuffle=True, random_state=2)
    cv = SpectroPhotometricParallaxRegressorCV(alphas=5, eps=1e-3, cv=folds, tol=1e-6).fit(
        X, y, parallax_error=err)
    assert np.all(np.diff(cv.alphas_) < 0) and cv.alphas_[0] == pytest.approx(cv.alpha_max_)
    assert cv.chi2_path_.shape == (5, 2)
    assert cv.alpha_ in cv.alphas_
    # alpha_max: nothing penalised survives; the chosen model has pixels switched on
    top = SpectroPhotometricParallaxRegressor(alpha=cv.alpha_max_ * 1.0001).fit(X, y, err)
    assert np.all(top.coef_[top.penalized_] == 0)
    assert np.count_nonzero(cv.coef_[cv.penalized_]) > 0
    # the warm-started path gives the cold fits' held-out chi2
    train, test = next(folds.split(X))
    for i in (1, 3):
        cold = SpectroPhotometricParallaxRegressor(alpha=cv.alphas_[i], tol=1e-6).fit(
            X.iloc[train], y[train], parallax_error=err[train])
        chi2 = chi_squared(y[test], cold.predict(X.iloc[test]), parallax_error=err[test],
                           parallax_zero_point=GAIA_PARALLAX_ZERO_POINT)
        assert cv.chi2_path_[i, 0] == pytest.approx(chi2, rel=1e-5)
    refit = SpectroPhotometricParallaxRegressor(alpha=cv.alpha_, tol=1e-6).fit(X, y, err)
    assert cv.objective_ == pytest.approx(refit.objective_, rel=1e-8)
    # a grid that stops above the optimum is reported
    with pytest.warns(UserWarning, match="smallest of the grid"):
        SpectroPhotometricParallaxRegressorCV(alphas=[cv.alphas_[1], cv.alphas_[2]], cv=folds).fit(
            X, y, parallax_error=err)
    # out-of-fold predictions give the model's intrinsic fractional scatter (~8.6 % here)
    assert 0.03 < cv.intrinsic_scatter_ < 0.15
    assert np.all(np.isfinite(cv.cv_prediction_))


def test_pipeline_predicts_with_propagated_uncertainties(survey):
    table, y, err = survey["table"].iloc[:800], survey["y"][:800], survey["parallax_error"][:800]
    pipe = make_parallax_pipeline()
    pipe.fit(table, y, spectrophotometricparallaxregressor__parallax_error=err)
    model, names = pipe[-1], pipe[0].get_feature_names_out()
    # feature names reached the regressor: magnitudes and LSF moments unpenalised, pixels penalised
    np.testing.assert_array_equal(model.penalized_, [n.startswith("LOGFLUX_") for n in names])
    assert np.all(model.coef_[np.isin(names, MAGNITUDE_COLUMNS)] != 0)
    X_err = pipe[0].transform_err(table)
    pred, std = pipe.predict(table, X_err=X_err, return_std=True)
    expected = pred * np.sqrt(np.sum((X_err * model.coef_) ** 2, axis=1))   # the paper's recipe
    np.testing.assert_allclose(std, expected, rtol=1e-6)
    with sklearn.config_context(enable_metadata_routing=True):
        model.set_predict_request(X_err=True, return_std=True)
        pred2, std2 = pipe.predict(table, X_err=X_err, return_std=True)
        model.set_predict_request(X_err=None, return_std=None)
    np.testing.assert_allclose(std2, std)


def test_pickle_round_trip(survey, survey_features):
    table, y, err = survey["table"].iloc[:600], survey["y"][:600], survey["parallax_error"][:600]
    pipe = make_pipeline(SpectroPhotometricFeatures(),
                         SpectroPhotometricParallaxRegressor()).set_output(transform="pandas")
    pipe.fit(table, y, spectrophotometricparallaxregressor__parallax_error=err)
    cv = SpectroPhotometricParallaxRegressorCV(alphas=3, cv=2).fit(
        survey_features.iloc[:600], y, parallax_error=err)
    for fitted, X in [(pipe, table), (cv, survey_features.iloc[:600])]:
        clone = pickle.loads(pickle.dumps(fitted))
        np.testing.assert_array_equal(clone.predict(X), fitted.predict(X))


# ------------------------------------------------------------------------------------------
# one path, declarative validation, clear errors
# ------------------------------------------------------------------------------------------
def test_regressor_and_cv_folds_are_points_of_the_kernel_path():
    X, y, err, _, names = _toy_problem(seed=11)
    pen, U, datafit = _pieces(X, y, err)
    alphas = [3e-3, 1e-3]
    start = np.r_[np.log(np.mean(datafit.y)), np.zeros(U.shape[1] - 1)]
    path = explinear_l1_path(X, pen, U, datafit, alphas, coef_u=start, tol=1e-8)
    np.testing.assert_array_equal(path.alphas, sorted(alphas, reverse=True))
    assert all(r.converged for r in path.results)
    # the regressor is the one-point path (its penalised set: the LOGFLUX_ columns)
    for i, alpha in enumerate(path.alphas):
        model = SpectroPhotometricParallaxRegressor(alpha=alpha, tol=1e-8).fit(
            pd.DataFrame(X, columns=names), y, parallax_error=err)
        np.testing.assert_allclose(model.coef_[pen], path.coefs_p[i], rtol=1e-5, atol=1e-8)
        assert model.intercept_ == pytest.approx(path.coefs_u[i][0], rel=1e-6)


def test_cv_checks_alphas_and_eps_before_any_solve(monkeypatch):
    from sklearn_selfcal.parallax import _cv

    def no_solve(*args, **kwargs):
        raise AssertionError("a solve ran before the parameters were checked")

    monkeypatch.setattr(_cv, "solve_gauss_newton", no_solve)
    monkeypatch.setattr(_cv, "explinear_l1_path", no_solve)
    X, y, err, _, _ = _toy_problem(n=60, p=5)
    for alphas in ([-1.0, 1e-3], [], [np.nan]):
        with pytest.raises(ValueError, match="alphas"):
            SpectroPhotometricParallaxRegressorCV(alphas=alphas, cv=2).fit(X, y, parallax_error=err)
    for params in (dict(alphas=0), dict(eps=2.0), dict(eps=0.0)):
        with pytest.raises(ValueError, match="alphas|eps"):
            SpectroPhotometricParallaxRegressorCV(cv=2, **params).fit(X, y, parallax_error=err)


@pytest.mark.parametrize("make", [
    lambda: SpectroPhotometricParallaxRegressor(),
    lambda: SpectroPhotometricParallaxRegressorCV(),
    lambda: SpectroPhotometricFeatures(),
    lambda: __import__("sklearn_selfcal.crossfit", fromlist=["x"]).CrossFitTransformer(
        SpectroPhotometricParallaxRegressor()),
])
def test_parameter_constraints_are_declared_and_enforced(make):
    from sklearn.utils.estimator_checks import check_param_validation

    est = make()
    assert set(est._parameter_constraints) == set(est.get_params(deep=False))
    check_param_validation(type(est).__name__, est)


def test_units_of_parallaxes_and_their_errors_are_checked():
    X, y, err, _, names = _toy_problem(n=80, p=5)
    df = pd.DataFrame(X, columns=names)
    model = SpectroPhotometricParallaxRegressor(alpha=1e-3)
    with pytest.raises(ValueError, match="median of .* mas.*arcsec"):
        model.fit(df, y / 1e4, parallax_error=err)                       # 10 kpc read as 1e5 kpc
    for outlier in (1e6, 1e200):
        bad = y.copy()
        bad[17] = outlier
        with pytest.raises(ValueError, match=r"rows \[17\]"):
            model.fit(df, bad, parallax_error=err)
    with pytest.raises(ValueError, match="parallax_error .* median"):
        model.fit(df, y, parallax_error=err * 1000.0)                    # micro-arcsec
    # stars with zero weight do not enter the unit check; check_units=False switches it off
    bad = y.copy()
    bad[17] = 1e6
    w = np.ones_like(y)
    w[17] = 0.0
    model.fit(df, bad, parallax_error=err, sample_weight=w)
    SpectroPhotometricParallaxRegressor(alpha=1e-3, check_units=False).fit(
        df, y / 1000.0, parallax_error=err / 1000.0)


def test_fewer_training_stars_than_unpenalised_parameters_is_an_error(survey):
    table = survey["table"]
    pipe = make_parallax_pipeline()
    with pytest.raises(ValueError, match="1 training star.*14 unpenalised parameters"):
        pipe.fit(table.iloc[:1], survey["y"][:1],
                 spectrophotometricparallaxregressor__parallax_error=survey["parallax_error"][:1])
    w = np.zeros(40)
    w[:5] = 1.0
    with pytest.raises(ValueError, match="5 training star"):
        pipe.fit(table.iloc[:40], survey["y"][:40],
                 spectrophotometricparallaxregressor__parallax_error=survey["parallax_error"][:40],
                 spectrophotometricparallaxregressor__sample_weight=w)


def test_strings_in_numeric_columns_are_named(survey):
    X, y, err, _, names = _toy_problem(n=50, p=5)
    df = pd.DataFrame(X, columns=names).astype({"K": object})
    df.loc[7, "K"] = "bad"
    with pytest.raises(ValueError, match=r"'K' must be numeric.*row 7: 'bad'"):
        SpectroPhotometricParallaxRegressor().fit(df, y, parallax_error=err)
    table = survey["table"].iloc[:50]
    flux = table["FLUX"].array.to_numpy_2d()
    per_pixel = pd.concat([table.drop(columns=["FLUX", "FLUX_ERR"]),   # one column per pixel
                           pd.DataFrame(flux, columns=[f"FLUX_{j:04d}" for j in range(300)],
                                        index=table.index)], axis=1)
    for frame, column in ((table, "J"), (per_pixel, "FLUX_0003")):
        bad = frame.astype({column: object})
        bad.iloc[9, bad.columns.get_loc(column)] = "bad"
        with pytest.raises(ValueError, match=rf"'{column}' must be numeric.*row 9: 'bad'"):
            SpectroPhotometricFeatures(flux_err_column=None).fit(bad)


def test_parallax_step_gives_the_whole_error_budget_for_every_star():
    """Injection and recovery of the error budget: cross-fitted predictions against the truth."""
    s = make_survey(n_stars=2800, n_pixels=150, random_state=5)
    parent = np.isfinite(s.frame[list(MAGNITUDE_COLUMNS)].to_numpy()).all(axis=1)  # photometry
    table = join_spectra(s.frame, s.spectra, s.spectra_err)[parent].reset_index(drop=True)
    truth = s.truth["parallax"].to_numpy()[parent]
    table.loc[table.index[:40], ["parallax", "parallax_error"]] = np.nan   # no Gaia astrometry
    with sklearn.config_context(enable_metadata_routing=True):
        step = SpectroPhotometricParallaxTransformer(random_state=0)
        out = step.fit_transform(table, table["parallax"], parallax_error=table["parallax_error"])
    train = gaia_training_mask(table)
    np.testing.assert_array_equal(step.training_mask_, train)
    assert not train[:40].any()
    pred, err = out["spec_parallax"].to_numpy(), out["spec_parallax_err"].to_numpy()
    assert np.all(np.isfinite(pred)) and np.all(err > 0)     # every star, trained on or not
    s_int = step.intrinsic_scatter_
    assert 0.02 < s_int < 0.3
    assert np.all(err >= s_int * pred * (1 - 1e-12))          # the scatter is in every error
    # the errors are complete: the truth lies within them as often as a normal law says
    # (68.3 %); with ~2,700 stars the binomial standard error is ~1 %, so 0.6-0.77 is a wide band
    # that an error budget missing the scatter (49 % inside here) or doubling it (96 %) fails
    inside = np.abs(pred - truth) < err
    assert 0.6 < inside.mean() < 0.77


def test_parallax_step_in_two_workers_has_the_bits_of_the_sequential_one(survey):
    """Folds and refit fitted in two worker processes (``n_jobs=2``): the out-of-fold
    parallaxes, their errors and the refitted model are bit for bit those of ``n_jobs=None``."""
    table = survey["table"].iloc[:1200]
    out, models = {}, {}
    for n_jobs in (None, 2):
        with sklearn.config_context(enable_metadata_routing=True):
            step = SpectroPhotometricParallaxTransformer(random_state=0, n_jobs=n_jobs)
            out[n_jobs] = step.fit_transform(table, table["parallax"],
                                             parallax_error=table["parallax_error"])
        models[n_jobs] = step.crossfit_.estimator_[-1]
    pd.testing.assert_frame_equal(out[2], out[None], check_exact=True)
    np.testing.assert_array_equal(models[2].coef_, models[None].coef_)
    assert models[2].intercept_ == models[None].intercept_



def test_parallax_step_in_two_threads_gives_the_same_bits_every_time(survey):
    """Folds and refit solved concurrently in two threads: the one-thread BLAS limit of the
    solver's block plan is process-wide, so it is held until the last concurrent solve leaves it
    (a solve that restored it early handed the other a two-thread BLAS: refitted coefficients
    that changed from run to run by ~3e-13). Predictions outside the solver run with whatever
    BLAS threads are in effect, so against the sequential fit they agree to rounding only."""
    table = survey["table"].iloc[:1200]
    out, coef = [], []
    for n_jobs in (2, 2, None):
        with (sklearn.config_context(enable_metadata_routing=True),
              joblib.parallel_config(backend="threading")):
            step = SpectroPhotometricParallaxTransformer(random_state=0, n_jobs=n_jobs)
            out.append(step.fit_transform(table, table["parallax"],
                                          parallax_error=table["parallax_error"]))
        coef.append(step.crossfit_.estimator_[-1].coef_)
    pd.testing.assert_frame_equal(out[0], out[1], check_exact=True)
    np.testing.assert_array_equal(coef[0], coef[1])
    # rounding of a 1200-star, ~300-feature fit: 1e-9 relative is 1000x what was measured
    pd.testing.assert_frame_equal(out[0], out[2], check_exact=False, rtol=1e-9)
    np.testing.assert_allclose(coef[0], coef[2], rtol=1e-9, atol=1e-12)

# ------------------------------------------------------------------------------------------
# the seam of out-of-core fits, the one name of the parallax uncertainty, the zero point
# ------------------------------------------------------------------------------------------
class _ArrayRowBlocks(kl1.RowBlockOperator):
    """An in-memory matrix seen only through the row-block passes (what DaskRowBlocks offers)."""

    def __init__(self, X, feature_names=None):
        self.X, self.shape, self.dtype = X, X.shape, X.dtype
        self.feature_names = feature_names

    def matvec(self, cols, coef):
        return kl1.matvec(self.X, cols, coef)

    def rmatvec(self, v):
        return kl1.rmatvec(self.X, v)

    def take_columns(self, cols):
        return _ArrayRowBlocks(np.ascontiguousarray(self.X[:, cols]))

    def projected_gram(self, s, inv_w, bz, rt, Q):
        return kl1.projected_gram(self.X, s, inv_w, bz, rt, Q)

    def columns(self, cols):
        return self.X[:, cols].astype(np.float64)

    def nonfinite_columns(self):
        return np.flatnonzero(~np.isfinite(self.X).all(axis=0))


def test_fit_from_a_row_block_operator_is_the_in_memory_fit():
    """The seam of out-of-core and distributed fits: the estimator's own fit, same result."""
    X, y, err, _, names = _toy_problem(seed=12)
    df = pd.DataFrame(X, columns=names)
    whole = SpectroPhotometricParallaxRegressor(alpha=1e-3, tol=1e-6).fit(df, y, err)
    model = SpectroPhotometricParallaxRegressor(alpha=1e-3, tol=1e-6)
    model.fit(_ArrayRowBlocks(X, feature_names=names), y, err)
    # the names reached penalized="auto" through the operator: the magnitudes stay unpenalised
    np.testing.assert_array_equal(model.feature_names_in_, names)
    np.testing.assert_array_equal(model.penalized_, whole.penalized_)
    assert model.n_features_in_ == X.shape[1] and model.n_iter_ == whole.n_iter_
    # the same solver through the operator's passes (its Gram matrices summed in another order):
    # the same support, and coefficients equal to rounding (measured 1.3e-12 of the largest one)
    np.testing.assert_array_equal(model.coef_ != 0, whole.coef_ != 0)
    np.testing.assert_allclose(model.coef_, whole.coef_, rtol=0,
                               atol=1e-10 * np.abs(whole.coef_).max())
    np.testing.assert_allclose(model.predict(df), whole.predict(df), rtol=1e-10)
    model.fit(_ArrayRowBlocks(X), y, err)           # no names now: none are kept
    assert not hasattr(model, "feature_names_in_") and model.penalized_.all()
    bad = X.copy()
    bad[5, 3] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity in feature.*LOGFLUX_0003"):
        model.fit(_ArrayRowBlocks(bad, feature_names=names), y, err)


def test_parallax_error_is_the_one_name_from_fit_to_scorer_and_step(survey):
    """fit, the routing requests, the scorer and the cross-fitting step all say parallax_error."""
    assert PARALLAX_ERROR == "parallax_error"
    for est in (SpectroPhotometricParallaxRegressor(), SpectroPhotometricParallaxRegressorCV(),
                SpectroPhotometricParallaxTransformer()):
        assert est.get_metadata_routing().consumes("fit", [PARALLAX_ERROR, "sigma"]) == {
            PARALLAX_ERROR}
    assert ChiSquaredScorer().get_metadata_routing().consumes("score", [PARALLAX_ERROR]) == {
        PARALLAX_ERROR}
    table, y, err = survey["table"].iloc[:400], survey["y"][:400], survey["parallax_error"][:400]
    with sklearn.config_context(enable_metadata_routing=True):
        with pytest.raises(TypeError, match="sigma"):   # the old name is no longer routed
            make_parallax_pipeline().fit(table, y, sigma=err)
        routed = make_parallax_pipeline().fit(table, y, parallax_error=err)
    by_name = make_parallax_pipeline().fit(
        table, y, spectrophotometricparallaxregressor__parallax_error=err)
    unweighted = make_parallax_pipeline().fit(table, y)
    np.testing.assert_array_equal(routed[-1].coef_, by_name[-1].coef_)
    assert not np.array_equal(routed[-1].coef_, unweighted[-1].coef_)   # it was used


def test_scores_remove_the_gaia_zero_point_by_default_and_validate_it():
    rng = np.random.default_rng(13)
    true = rng.uniform(0.2, 1.0, 5000)
    err = np.full(true.size, 0.01)
    observed = true + GAIA_PARALLAX_ZERO_POINT + err * rng.normal(size=true.size)
    # with the zero point removed the residuals are pure noise: chi2 per star ~ 1 (+-0.02 for
    # 5,000 stars); left in, the -0.017 mas offset adds (0.017 / 0.01)**2 = 2.9
    assert chi_squared(observed, true, parallax_error=err) == pytest.approx(1.0, abs=0.06)
    assert chi_squared(observed, true, parallax_error=err, parallax_zero_point=0.0) > 3.5
    assert chi_squared(observed, true, parallax_error=err) == pytest.approx(
        -ChiSquaredScorer()(_Fixed(true), None, observed, parallax_error=err))
    from sklearn.utils._param_validation import InvalidParameterError
    for func in (lambda zp: chi_squared(observed, true, parallax_error=err, parallax_zero_point=zp),
                 lambda zp: fractional_scatter(observed, true, err, parallax_zero_point=zp)):
        with pytest.raises(InvalidParameterError, match="parallax_zero_point"):
            func(17.0)                             # micro-arcsec read as mas


class _Fixed:
    """A fitted 'model' predicting given values."""

    def __init__(self, pred):
        self.pred = pred

    def predict(self, X):
        return self.pred
