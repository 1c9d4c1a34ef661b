"""The configuration is the Pipeline's own parameters: sections -> ``step__param``, validated by
the steps' ``_parameter_constraints`` before any computation, one default per setting."""

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from sklearn_selfcal.cli import main
from sklearn_selfcal.config import (RUN_SETTINGS, STEP_SECTIONS, check_config, config_params,
                                    effective_config, load_config, step_setting)
from sklearn_selfcal.distances import DistanceChoice
from sklearn_selfcal.exceptions import DataQualityWarning
from sklearn_selfcal.preflight import RunPlan
from sklearn_selfcal.workflow import make_method_pipeline, pipeline_from_config

DR17 = Path(__file__).parent / "data" / "apogee_dr17_allstar_95stars_kepler.fits"


def _plan(kind="spectra"):
    return RunPlan(columns=[], column_map=None, distance=DistanceChoice(kind),
                   magnitudes=["H", "K"], lsf=[], abundances=["FE_H", "MG_FE"], spectra=True)


def test_a_toml_value_reaches_the_estimator_through_set_params(tmp_path):
    path = tmp_path / "cfg.toml"
    path.write_text('[calibration]\nnuisance_columns = ["LOGG", "TEFF"]\nnuisance_reference = '
                    '[2.2, 4500.0]\n[actions]\nmethod = "staeckel"\n[parallax]\nalpha = 0.01\n'
                    '[disk]\nz_max = 0.5\n[sample]\nlogg_max = 2.5\n'
                    '[distance]\nparallax_zero_point = -0.02\n')
    config = load_config(path)
    pipe = pipeline_from_config(config, _plan())
    params = pipe.get_params()
    calibrator = params["calibrate__calibrator"]
    assert calibrator.nuisance_columns == ["LOGG", "TEFF"]
    assert params["orbits__actions__method"] == "staeckel"
    assert params["parallax__alpha"] == 0.01
    training_filter = params["calibrate__calibrator__training_filter"]
    assert training_filter.z_max == 0.5
    # a run setting that is also a step's parameter: one value, every use
    assert training_filter.logg_max == 2.5
    assert params["parallax__parallax_zero_point"] == -0.02
    assert params["orbits__actions__parallax_zero_point"] == -0.02
    # what the plan resolves from the catalogue
    assert params["parallax__magnitude_columns"] == ("H", "K")
    assert calibrator.abundance_columns == ["FE_H", "MG_FE"]


def test_one_default_per_setting():
    """A key the file does not set keeps the step's own default, in the run and in Python."""
    config = load_config()
    assert all(config[section] == {k: v for k, v in RUN_SETTINGS.get(section, {}).items()}
               for section in STEP_SECTIONS)
    from_config = pipeline_from_config(config, _plan()).get_params()
    by_hand = make_method_pipeline().get_params()
    for key in ("parallax__refit", "parallax__dtype", "parallax__alpha", "orbits__actions__method",
                "calibrate__calibrator__errors", "calibrate__calibrator__nuisance_degree"):
        assert from_config[key] == by_hand[key], key
    assert step_setting(config, "parallax", "refit") is by_hand["parallax__refit"]
    effective = effective_config(config, make_method_pipeline())
    assert effective["actions"]["method"] == by_hand["orbits__actions__method"]


def test_an_invalid_value_is_named_by_check_config():
    pipe = make_method_pipeline()
    pipe.set_params(**config_params(load_config(overrides={"calibration": {
        "nuisance_columns": 3}, "disk": {"z_max": -1.0}}), pipe))
    problems = check_config(pipe)
    assert any(p.startswith("[disk]") and "'z_max'" in p for p in problems)
    pipe.set_params(calibrate__calibrator__training_filter__z_max=1.0)
    assert check_config(pipe) == []  # 3 is a valid column position for arrays ...
    problems = check_config(pipe, columns=["LOGG", "FE_H", "TEFF"])
    # ... but not in a run's named tables
    assert problems and problems[0].startswith("[calibration] nuisance_columns = 3")
    pipe.set_params(calibrate__calibrator__nuisance_columns=["LOGG", "TEFFX"])
    assert "'TEFFX' is not a column" in check_config(pipe, columns=["LOGG", "FE_H"])[0]


def test_unknown_and_run_owned_keys_are_refused():
    with pytest.raises(KeyError, match="nuisance_colums"):
        load_config(overrides={"calibration": {"nuisance_colums": ["LOGG"]}})
    with pytest.raises(KeyError, match=r"\[sample\] logg_max"):
        load_config(overrides={"disk": {"logg_max": 3.0}})
    with pytest.raises(KeyError, match="--random-state"):
        load_config(overrides={"actions": {"random_state": 1}})
    with pytest.raises(KeyError, match="unknown section"):
        load_config(overrides={"calibrate": {}})


def test_check_and_run_refuse_an_invalid_value_before_any_computation(tmp_path, capsys,
                                                                     monkeypatch):
    """``nuisance_columns = 3`` fails in ``check`` and ``run`` with the parameter's name, and
    neither of them computes an orbit."""
    from sklearn_selfcal.actions import ActionTransformer

    def computed(*args, **kwargs):
        raise AssertionError("an orbit was computed before the configuration was checked")

    monkeypatch.setattr(ActionTransformer, "transform", computed)
    monkeypatch.setattr(ActionTransformer, "fit_transform", computed)
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[calibration]\nnuisance_columns = 3\n")
    assert main(["check", str(DR17), "--config", str(cfg)]) == 1  # check reports its warnings
    out = capsys.readouterr().out
    assert "[calibration] nuisance_columns = 3" in out.splitlines()[-1]
    with pytest.warns(DataQualityWarning):
        assert main(["run", str(DR17), "--config", str(cfg), "--out", str(tmp_path / "o"),
                     "--quiet"]) == 1
    assert "[calibration] nuisance_columns = 3" in capsys.readouterr().err
    assert not (tmp_path / "o" / "catalogue.parquet").exists()
