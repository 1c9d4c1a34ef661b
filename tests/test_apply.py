"""A model fitted on one data release applied to the next: ``run`` writes model.pkl, ``apply``
reads it in a fresh process and transforms a catalogue of another spelling (SDSS-V astra)."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_selfcal.cli import main
from sklearn_selfcal.exceptions import (BadRowsWarning, DataQualityWarning,
                                       InaccurateActionsWarning)

DATA = Path(__file__).parent / "data"
DR17 = DATA / "apogee_dr17_allstar_95stars_kepler.fits"
ASTRA = DATA / "astraAllStarASPCAP-dr17rows.fits.gz"
# log g up to 3.5 puts ~80 of the 95 Kepler giants in the disk sample: enough training stars for
# the paper's 12 coefficients per abundance (3 per coefficient), so the model calibrates
CONFIG = {"figures": {"enabled": False}, "sample": {"logg_max": 3.5},
          "gradient": {"n_walkers": 16, "n_steps": 400, "burn_in": 100, "thin": 2}}


def _cli(*commands):
    """The commands, one after the other, in one fresh process (a pickled model must load
    without the state of the process that wrote it). Returns each command's status and the
    output."""
    argvs = [list(map(str, command)) for command in commands]
    script = ("from sklearn_selfcal.cli import main\n"
              f"print('STATUSES', [main(argv) for argv in {argvs!r}])")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    statuses = [line for line in done.stdout.splitlines() if line.startswith("STATUSES ")]
    return json.loads(statuses[-1].removeprefix("STATUSES ")), output


@pytest.fixture(scope="module")
def dr17_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dr17_model")
    config = tmp / "cfg.json"
    config.write_text(json.dumps(CONFIG))
    # `run` in this process (only `apply` needs a fresh one); what the run reports to its user
    # (dirty real rows, rows without a distance, flagged orbits, short test chains) is not
    # checked here
    with warnings.catch_warnings():
        for category in (BadRowsWarning, DataQualityWarning, InaccurateActionsWarning):
            warnings.simplefilter("ignore", category)
        warnings.filterwarnings("ignore", "the post-burn-in chain", ConvergenceWarning)
        status = main(["run", str(DR17), "--out", str(tmp / "run"), "--config", str(config),
                       "--quiet"])
    assert status == 0
    return tmp / "run" / "model.pkl", config


def test_a_dr17_model_gives_the_same_abundances_on_the_same_stars_in_sdss5_spelling(dr17_model,
                                                                                   tmp_path):
    model, config = dr17_model
    outputs = {}
    names = {"astra": ASTRA, "dr17": DR17}
    statuses, out = _cli(*(("apply", model, path, "--out", tmp_path / name, "--config", config)
                           for name, path in names.items()))
    for name, status in zip(names, statuses, strict=True):
        assert status == 0, out
        outputs[name] = pd.read_parquet(tmp_path / name / "catalogue.parquet")
    astra = outputs["astra"]
    astra = astra[~astra["sdss4_apogee_id"].duplicated(keep=False)].set_index("sdss4_apogee_id")
    dr17 = outputs["dr17"].set_index("APOGEE_ID")
    new = [c for c in dr17.columns if c.endswith("_NEW")]
    assert len(new) >= 15  # the model calibrated (enough training stars)
    common = astra.index.intersection(dr17.index)
    a, b = astra.loc[common, new].to_numpy(float), dr17.loc[common, new].to_numpy(float)
    both = np.isfinite(a) & np.isfinite(b)
    assert both.sum() > 15 * 60
    # the same stars, the same model: the same calibrated abundances, to the float32 rounding of
    # the files' values (1 ulp of a ~0.1 dex float32 value is ~7e-9; the [X/H] - [Fe/H] of the
    # astra spelling adds one rounding)
    np.testing.assert_allclose(a[both], b[both], rtol=0, atol=1e-7)
    assert np.isfinite(astra.loc[common, ["J_R", "L_z", "J_z"]].to_numpy(float)).any()


def test_the_model_is_the_fitted_pipeline_and_pickles(dr17_model):
    model, _ = dr17_model
    pipe = joblib.load(model)
    assert [name for name, _ in pipe.steps] == ["distance", "orbits", "calibrate"]
    # the Pipeline reads the method's names, never a release's spelling
    assert "distance_input" in pipe.feature_names_in_
    assert not any(c.startswith("GAIAEDR3_") for c in pipe.feature_names_in_)


def test_apply_names_a_file_that_is_not_a_model(tmp_path, capsys):
    bad = tmp_path / "model.pkl"
    bad.write_bytes(b"not a pickle")
    assert main(["apply", str(bad), str(DR17), "--out", str(tmp_path / "o")]) == 1
    assert f"{bad}: not a model written by sklearn-selfcal run" in capsys.readouterr().err
