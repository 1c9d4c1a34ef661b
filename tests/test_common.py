"""scikit-learn's generic estimator checks on every public estimator of the package.

The estimators are discovered from the package (every public class deriving from ``BaseEstimator``
in a public module), so that a new estimator without checks fails
:func:`test_every_public_estimator_is_checked`. The generic checks feed small random numpy arrays
(no column names, 1-10 columns, values that are not physical), so each estimator is configured to
read its columns by position; the reason for every expected failure is given next to it. Physical
behaviour is tested in each estimator's own module.
"""

import importlib
import inspect
import pickle
import pkgutil
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures
from sklearn.utils.estimator_checks import check_param_validation, parametrize_with_checks

import sklearn_selfcal
from sklearn_selfcal import (ActionTransformer, BrokenPowerLawRegressor, NuisanceCalibrator,
                             SpectroPhotometricParallaxRegressor,
                             SpectroPhotometricParallaxRegressorCV)
from sklearn_selfcal.actions import BadRowsWarning, InaccurateActionsWarning
from sklearn_selfcal.exceptions import DataQualityWarning
from sklearn_selfcal.crossfit import CrossFitTransformer
from sklearn_selfcal.distances import DistanceTransformer
from sklearn_selfcal.parallax_features import SpectroPhotometricFeatures
from sklearn_selfcal.parallax import SpectroPhotometricParallaxTransformer

# every observable read from column 0 (the checks' arrays may have a single column)
_COL0 = {"ra": 0, "dec": 0, "parallax": 0, "pmra": 0, "pmdec": 0, "radial_velocity": 0}
# abundance in column 0, log g offset in column 1, unweighted (no positive error column in random
# data) and without the paper's training filter (no action columns)
_CALIB = dict(abundance_columns=[0], weighted=False, nuisance_columns=[1], nuisance_reference=[0.0],
              nuisance_degree=1, training_filter=None)

CASES = [
    # the checks' targets (standard normal, or make_regression's) are no parallaxes in mas: the
    # unit check is switched off (it has its own tests in test_parallax.py)
    (SpectroPhotometricParallaxRegressor(check_units=False), {}),
    (SpectroPhotometricParallaxRegressorCV(alphas=3, cv=2, check_units=False), {}),
    # magnitudes and LSF moments need named columns; with none configured the transformer takes a
    # plain array of fluxes, which is what the checks feed it
    (SpectroPhotometricFeatures(magnitude_columns=(), lsf_columns=()), {}),
    (ActionTransformer(**_COL0), {
        "check_fit_idempotent": "its data (values up to ~100) read as parallaxes in mas put the median "
        "star 10 pc from the Sun, which the unit guard rejects by design (check_units=True)",
    }),
    (ActionTransformer(**_COL0, n_samples=3, random_state=0, parallax_error=0, pmra_error=0,
                       pmdec_error=0, radial_velocity_error=0, check_units=False), {}),
    (NuisanceCalibrator(orbit_features=(), **_CALIB), {}),
    # with an orbit feature the calibrator reads three distinct columns (abundance, nuisance,
    # orbit) and six checks feed two: PolynomialFeatures(degree=3) in front gives every check's
    # data at least three (one column: x0, x0^2, x0^3; two: x0, x1, x0^2, ...)
    (make_pipeline(PolynomialFeatures(degree=3, include_bias=False),
                   NuisanceCalibrator(orbit_features=[2], orbit_degree=1, **_CALIB)),
     {check: "a Pipeline fits its steps in place, so its 'steps' parameter changes in fit "
      "(scikit-learn's own Pipeline of two scalers fails this check too)"
      for check in ("check_estimators_overwrite_params", "check_dont_overwrite_parameters")}),
    # short chains keep the checks cheap (the defaults, 32 walkers x 5000 steps, are for science);
    # the checks pass several columns: radius_column=0 reads the first as R
    (BrokenPowerLawRegressor(n_walkers=10, n_steps=60, burn_in=20, thin=1, autocorr_tol=1e-3,
                             radius_column=0, random_state=0), {
        "check_estimators_dtypes": "integer X in [0, 3) has 3 distinct radii; a broken line (m1, "
        "m2, b, k) needs at least 4, and the regressor says so with a ValueError",
        "check_regressors_train": "column 0 of the check's make_regression data is pure noise (the "
        "informative feature is column 4), so R^2 <= 0.5 is the right answer",
    }),
    (CrossFitTransformer(LinearRegression(), return_std=False, random_state=0), {
        "check_transformer_general": "by design fit_transform returns out-of-fold predictions and "
        "transform the refitted model's, like scikit-learn's TargetEncoder",
        "check_transformer_data_not_an_array": "the same fit_transform/transform comparison as "
        "check_transformer_general, on list-like input",
    }),
    # a distance column (kpc) in column 0 with its uncertainty in column 0 too
    (DistanceTransformer(0, unit="kpc", error=0), {}),
    # the method's parallax step on plain arrays of fluxes (no magnitude or LSF column, no flux
    # uncertainty to propagate)
    (SpectroPhotometricParallaxTransformer(magnitude_columns=(), lsf_columns=(), gaia_cuts=False,
                                           return_std=False, check_units=False,
                                           random_state=0),
     {"check_transformer_general": "by design fit_transform returns out-of-fold predictions and "
      "transform the refitted model's (CrossFitTransformer)",
      "check_transformer_data_not_an_array": "the same comparison as check_transformer_general"}),
]
_EXPECTED = {id(est): expected for est, expected in CASES}


def _public_estimators():
    """Every public estimator class of the package: public modules, public names."""
    found = {}
    for info in pkgutil.walk_packages(sklearn_selfcal.__path__, "sklearn_selfcal."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            # estimators have ``fit`` (a parametrised cut such as DiskTrainingFilter does not)
            if (inspect.isclass(obj) and issubclass(obj, BaseEstimator) and not name.startswith("_")
                    and obj.__module__.startswith("sklearn_selfcal") and hasattr(obj, "fit")):
                found[name] = obj
    return found


def _quiet(check, estimator):
    with warnings.catch_warnings():
        # random check data contain negative "parallaxes": NaN actions with a warning, by design
        warnings.simplefilter("ignore", BadRowsWarning)
        # ... and random orbits, some of them where the Staeckel fudge is inaccurate (counted)
        warnings.simplefilter("ignore", InaccurateActionsWarning)
        # random check data hold stars none of whose "pixels" is a positive flux: every pixel
        # imputed, with a warning naming them (issue 21), by design
        warnings.simplefilter("ignore", DataQualityWarning)
        # tiny random data rarely fit the parallax model within max_iter, and their best alpha is
        # often the grid's smallest; neither is what these checks are about
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message=".*smallest of the grid")
        check(estimator)


@parametrize_with_checks([est for est, _ in CASES], expected_failed_checks=lambda est: _EXPECTED[id(est)])
def test_sklearn_compatible_estimator(estimator, check):
    _quiet(check, estimator)


@pytest.mark.parametrize("estimator", [est for est, _ in CASES], ids=lambda e: type(e).__name__)
def test_param_validation(estimator):
    """``_parameter_constraints`` reject a bad type and a bad value of every parameter in ``fit``."""
    assert estimator._parameter_constraints, type(estimator).__name__
    _quiet(lambda est: check_param_validation(type(est).__name__, est), estimator)


@pytest.mark.parametrize("estimator", [est for est, _ in CASES], ids=lambda e: type(e).__name__)
def test_unfitted_estimator_survives_a_pickle_round_trip(estimator):
    again = pickle.loads(pickle.dumps(estimator))
    assert again.get_params().keys() == estimator.get_params().keys()
    assert repr(again) == repr(estimator)


def test_every_public_estimator_is_checked():
    estimators = _public_estimators()
    # the discovery finds the estimators named in the package's own namespace and the others
    assert {name for name in sklearn_selfcal.__all__ if name[0].isupper()} <= set(estimators)
    assert {"CrossFitTransformer", "SpectroPhotometricFeatures", "DistanceTransformer"} <= set(estimators)
    checked = {type(est) for est, _ in CASES}
    unchecked = sorted(name for name, cls in estimators.items() if cls not in checked)
    assert not unchecked, f"public estimators without generic checks: {unchecked}"
    assert np.all([hasattr(cls, "_parameter_constraints") for cls in estimators.values()])
