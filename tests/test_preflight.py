"""Direct tests of the preflight: the plan, the sample cuts computed once, why a sample is empty."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _marks import RUN_WARNINGS
from astropy.table import Table

from sklearn_selfcal import preflight
from sklearn_selfcal.cli import main
from sklearn_selfcal.config import load_config
from sklearn_selfcal.exceptions import DataQualityWarning
from sklearn_selfcal.io import read_catalogue
from sklearn_selfcal.preflight import (count_cuts, empty_sample_message, plan_and_prepare,
                                       plan_run)
from sklearn_selfcal.selection import DiskTrainingFilter

pytestmark = RUN_WARNINGS  # what a run reports to its user (tests/_marks.py)

DATA = Path(__file__).parent / "data"
DR17 = DATA / "apogee_dr17_allstar_95stars_kepler.fits"
FAST = {"figures": {"enabled": False},
        "gradient": {"n_walkers": 16, "n_steps": 400, "burn_in": 100, "thin": 2}}


def _dr17():
    with pytest.warns(DataQualityWarning):
        return read_catalogue(DR17, gaia_names=False, clean=False)


@pytest.fixture(scope="module")
def kepler_giants(tmp_path_factory):
    """16 real Kepler-field giants with log g 2.34-2.6, all above the paper's cut of 2.2, with Gaia
    parallaxes and no distance catalogue (as an APOGEE x Gaia DR2 file)."""
    table = Table.read(DR17)
    logg = np.asarray(table["LOGG"], dtype=float)
    rows = np.flatnonzero(logg > 2.34)[np.argsort(logg[logg > 2.34])][:16]
    table = table[np.sort(rows)]
    table.remove_columns([c for c in table.colnames if c.startswith("GAIAEDR3_R_")])
    path = tmp_path_factory.mktemp("kepler") / "kepler_16_giants.fits"
    table.write(path)
    return path


def test_plan_of_real_dr17_rows():
    frame = _dr17()
    plan = plan_run(frame.columns, load_config())
    assert plan.can_run
    assert plan.column_map["parallax"] == "GAIAEDR3_PARALLAX"
    assert plan.distance.kind == "distance" and plan.distance.column == "GAIAEDR3_R_MED_PHOTOGEO"
    assert "FE_H" in plan.abundances and "MG_FE" in plan.abundances
    with_spectra = plan_run(frame.columns, load_config(), spectra=True)
    assert with_spectra.distance.kind == "spectra"
    # no WISE magnitudes in these rows: left out of the model, said where to find them
    assert any("AllWISE" in line for line in with_spectra.left_out)


def test_the_sample_cuts_are_computed_once_per_run(tmp_path, monkeypatch):
    calls = []
    from sklearn_selfcal.preflight import _cuts

    original = _cuts.parent_sample_cuts

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(_cuts, "parent_sample_cuts", counted)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(FAST))
    with pytest.warns(DataQualityWarning):
        assert main(["run", str(DR17), "--out", str(tmp_path / "out"), "--config", str(cfg),
                     "--quiet"]) == 0
    assert len(calls) == 1


def test_the_empty_parent_sample_names_its_cut(kepler_giants, tmp_path, capsys):
    """All 16 giants have log g > 2.2: the message names the log g cut, the lowest value found
    and the configuration key; with [sample] logg_max = 3.5 the run proceeds on Gaia parallaxes."""
    assert main(["check", str(kepler_giants)]) == 1  # check reports its warnings itself
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("ERROR: run cannot proceed: no star passes the parent-sample cut "
                           "LOGG <= 2.2")
    assert "lowest LOGG of the 16 star(s)" in last and "2.36" in last
    assert "[sample] logg_max" in last
    assert "distances" not in last  # not the distance source's error
    with pytest.warns(DataQualityWarning):
        assert main(["run", str(kepler_giants), "--out", str(tmp_path / "no")]) == 1
    assert "[sample] logg_max" in capsys.readouterr().err
    cfg = tmp_path / "wide.json"
    cfg.write_text(json.dumps({**FAST, "sample": {"logg_max": 3.5}}))
    with pytest.warns(DataQualityWarning):
        assert main(["run", str(kepler_giants), "--out", str(tmp_path / "out"), "--config",
                     str(cfg), "--quiet"]) == 0
    catalogue = pd.read_parquet(tmp_path / "out" / "catalogue.parquet")
    assert catalogue["PARENT_SAMPLE"].sum() > 10
    record = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert record["distance_source"]["kind"] == "parallax"


def test_empty_sample_message_for_a_flag_cut():
    work = pd.DataFrame({"LOGG": [1.0, 1.5], "ASPCAPFLAG": [1 << 23, 1 << 23]})
    config = load_config()
    sample = preflight.sample_cuts(work, plan_run(["LOGG"], config), config)
    message = empty_sample_message(work, sample, config)
    assert "star_bad" in message or "STAR_BAD" in message
    assert "[sample] exclude_star_bad = false" in message


def test_counts_use_the_training_filters_thresholds():
    frame = _dr17()
    config = load_config()
    with pytest.warns(DataQualityWarning):
        plan, prepared = plan_and_prepare(frame, config)
    wide = count_cuts(prepared.work, plan, DiskTrainingFilter(z_max=10.0)).table
    narrow = count_cuts(prepared.work, plan, DiskTrainingFilter(z_max=0.0, wedge_angle=None)).table

    def disk(table):
        return int(table.loc[table["stage"] == "disk sample", "n_remaining"].iloc[-1])

    assert disk(narrow) < disk(wide)


def test_run_method_refuses_a_repeated_index_before_any_computation(monkeypatch):
    """Issue 21: a table with a repeated row index used to run the whole method, then fail."""
    from sklearn_selfcal.actions import ActionTransformer
    from sklearn_selfcal.workflow import run_method

    def computed(*args, **kwargs):
        raise AssertionError("the method ran on a table with a repeated index")

    monkeypatch.setattr(ActionTransformer, "fit_transform", computed)
    frame = _dr17()
    frame = pd.concat([frame, frame.iloc[:3]])  # rows appended without ignore_index=True
    with pytest.raises(ValueError, match=r"run_method: the table's index repeats 3 label\(s\).*"
                       r"reset_index"):
        run_method(frame, verbose=0)
