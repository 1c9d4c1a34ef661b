"""The command line: the main job on the simulated survey and on a user's catalogue."""

import json
import os
from pathlib import Path
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from _marks import RUN_WARNINGS
from astropy.table import Table

from sklearn_selfcal.cli import main

pytestmark = RUN_WARNINGS  # what a run reports to its user (tests/_marks.py)

# short chains and small spectra keep the end-to-end runs to seconds; the science defaults are
# exercised by the demo itself (README) and by the estimators' own tests
FAST = {"gradient": {"n_walkers": 16, "n_steps": 600, "burn_in": 200, "thin": 2}}


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "fast.json"
    path.write_text(json.dumps(FAST))
    return path


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory, config_file):
    out = tmp_path_factory.mktemp("demo") / "out"
    status = main(["demo", "--out", str(out), "--n-stars", "2500", "--n-pixels", "150",
                   "--config", str(config_file), "--random-state", "3", "--quiet"])
    assert status == 0
    return out


def test_demo_writes_every_output(demo_dir, capsys):
    for name in ("catalogue.parquet", "catalogue.fits", "radial_profiles.ecsv",
                 "feh_gradient_fit.json", "provenance.json"):
        assert (demo_dir / name).is_file(), name
    pngs = sorted(p.name for p in (demo_dir / "figures").glob("*.png"))
    assert len(pngs) >= 10
    cat = pd.read_parquet(demo_dir / "catalogue.parquet")
    for col in ("spec_parallax", "spec_parallax_err", "x", "v_z", "J_R", "L_z", "J_z", "FE_H_NEW",
                "MG_FE_NEW", "PARENT_SAMPLE", "DISK_SAMPLE"):
        assert col in cat.columns, col
    assert len(cat) == 2500  # no row dropped
    parent = cat["PARENT_SAMPLE"]
    assert cat.loc[parent, "spec_parallax"].notna().all()
    assert (cat.loc[parent, "spec_parallax_err"] > 0).all()
    fits = Table.read(demo_dir / "catalogue.fits")
    np.testing.assert_allclose(np.asarray(fits["FE_H_NEW"], dtype=float), cat["FE_H_NEW"], equal_nan=True)
    profile = Table.read(demo_dir / "radial_profiles.ecsv")
    assert {"population", "R", "FE_H_NEW", "FE_H_NEW_ERR"} <= set(profile.colnames)
    # one writer of the profile table: units and binning are in the run's file too
    assert str(profile["R"].unit) == "kpc" and str(profile["FE_H_NEW"].unit) == "dex"
    assert "bins" in profile.meta or "radius_bins" in profile.meta or "edges" in str(profile.meta)


def test_demo_provenance_and_fit_summary(demo_dir):
    prov = json.loads((demo_dir / "provenance.json").read_text())
    assert prov["random_state"] == 3
    assert prov["versions"]["numpy"] == np.__version__
    assert prov["config"]["gradient"]["n_steps"] == 600
    assert prov["simulation"]["n_stars"] == 2500
    fit = json.loads((demo_dir / "feh_gradient_fit.json").read_text())
    m1 = fit["posterior"]["m1"]["median"]
    # a 2,500-star survey still measures the inner [Fe/H] gradient to ~0.005 dex/kpc; the
    # injected -0.057 dex/kpc (in guiding radius) is steeper in current radius, ~-0.06
    assert -0.075 < m1 < -0.045
    assert fit["injected_feh_gradient"]["m1"] == -0.057
    # the reference fit on the true abundances of the same stars is recorded next to it
    assert abs(fit["truth_feh_gradient"]["m1"]["median"] - m1) < 0.01
    # ... computed while the figures are drawn (write_outputs calls extra then): in both files
    assert prov["truth_feh_gradient"] == fit["truth_feh_gradient"]


def test_refuses_non_empty_output_dir_without_overwrite(demo_dir, config_file, capsys):
    status = main(["demo", "--out", str(demo_dir), "--n-stars", "500", "--n-pixels", "20", "--quiet"])
    assert status == 1
    assert "--overwrite" in capsys.readouterr().err


def test_overwrite_leaves_no_file_of_the_previous_run(demo_dir, tmp_path):
    # the previous run is a copy of the demo's folder (its figures and its survey too): a run
    # drawing figures of its own here spent 70 % of this test's 25 CPU-s on them. 800 stars:
    # what is checked is the set of files in --out, which does not depend on size
    import shutil

    from sklearn_selfcal.exceptions import DataQualityWarning

    out = tmp_path / "out"
    shutil.copytree(demo_dir, out)
    assert len(list((out / "figures").glob("*.png"))) >= 5 and (out / "survey").is_dir()
    path = tmp_path / "cat.parquet"
    pd.read_parquet(demo_dir / "survey" / "catalogue.parquet").iloc[:800].to_parquet(path)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"figures": {"enabled": False}, **FAST}))
    args = ["run", str(path), "--out", str(out), "--config", str(cfg), "--quiet"]
    with warnings.catch_warnings():  # flagged rows of the simulated catalogue: reported by run
        warnings.simplefilter("ignore", DataQualityWarning)
        assert main(args) == 1  # not empty, no --overwrite
        assert main([*args, "--overwrite"]) == 0
    assert not (out / "figures").exists() and not (out / "survey").exists()
    prov = json.loads((out / "provenance.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == sorted(prov["files"])


def test_run_on_a_catalogue_with_spectro_photometric_parallaxes(demo_dir, tmp_path):
    # the paper's public catalogue ships spec_parallax: the parallax step is then skipped. The
    # input holds no product of the demo (no actions, no <X>_NEW), so what comes back was
    # recomputed from spec_parallax alone, and must equal the demo's own products.
    first = pd.read_parquet(demo_dir / "catalogue.parquet")
    products = [c for c in first.columns if c.endswith("_NEW")] + [
        "x", "y", "z", "v_x", "v_y", "v_z", "R", "phi", "v_R", "v_phi", "J_R", "L_z", "J_z", "E",
        "QUALITY_OK", "PARENT_SAMPLE", "DISK_SAMPLE"]
    assert "FE_H_NEW" in products
    parent = first["PARENT_SAMPLE"].to_numpy()
    source = first.loc[parent].drop(columns=products)
    source.to_parquet(tmp_path / "paper_catalogue.parquet")
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("[figures]\nenabled = false\n[gradient]\nn_walkers = 16\nn_steps = 400\n"
                   "burn_in = 100\nthin = 2\n")
    out = tmp_path / "run"
    status = main(["run", str(tmp_path / "paper_catalogue.parquet"), "--out", str(out),
                   "--config", str(cfg), "--quiet", "--random-state", "3"])
    assert status == 0
    again = pd.read_parquet(out / "catalogue.parquet")
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["distance_source"]["kind"] == "spec_parallax"
    for col in ("J_R", "L_z", "J_z", "FE_H_NEW", "MG_FE_NEW"):
        np.testing.assert_allclose(again[col].to_numpy(), first.loc[parent, col].to_numpy(),
                                   rtol=1e-9, equal_nan=True, err_msg=col)
    assert str(tmp_path / "paper_catalogue.parquet") in prov["inputs"]
    assert len(prov["inputs"][str(tmp_path / "paper_catalogue.parquet")]["sha256"]) == 64


def test_run_with_spectra_files(tmp_path):
    from sklearn_selfcal.datasets import make_survey

    s = make_survey(800, 60, random_state=5)
    s.frame.to_csv(tmp_path / "cat.csv", index=False)
    np.save(tmp_path / "spec.npy", s.spectra)
    np.save(tmp_path / "spec_err.npy", s.spectra_err)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"figures": {"enabled": False}, **FAST}))
    status = main(["run", str(tmp_path / "cat.csv"), "--spectra", str(tmp_path / "spec.npy"),
                   "--out", str(tmp_path / "o"), "--config", str(cfg), "--quiet"])
    assert status == 0
    cat = pd.read_parquet(tmp_path / "o" / "catalogue.parquet")
    assert cat["spec_parallax"].notna().sum() > 500


def test_figures_started_before_the_fit_are_those_drawn_after_it(tmp_path, monkeypatch):
    """The demo and run start the figures that need neither the profiles nor the fit while these
    are fitted (run_method's before_fit): the files are those write_outputs draws alone."""
    from sklearn_selfcal import figures as figures_module
    from sklearn_selfcal.config import load_config
    from sklearn_selfcal.datasets import make_survey
    from sklearn_selfcal.outputs import start_run_figures, write_outputs
    from sklearn_selfcal.workflow import run_method

    # four of the 15 figures, drawn twice (all 15 twice took 23 s): two held for the profiles and
    # the fit (7, 8) and two drawn early (the sample; a map, in a worker), which is all the
    # early/late split distinguishes (workers find a figure by its name in the full list)
    every = figures_module.figure_specs
    kept = {"fig01_sample", "fig07_radial_gradients", "fig08_feh_broken_power_law",
            "fig14_abundance_maps_low_alpha"}
    monkeypatch.setattr(figures_module, "figure_specs",
                        lambda *a, **k: tuple(s for s in every(*a, **k) if s.name in kept))

    s = make_survey(800, 60, random_state=5)
    seen = {}

    def before_fit(partial):
        seen.update(partial, figures=start_run_figures(partial, random_state=2, n_jobs=2, verbose=0))

    result = run_method(s.frame, s.spectra, s.spectra_err, config=load_config(overrides=FAST), verbose=0,
                        before_fit=before_fit)
    assert "profile" not in seen and "regressor" not in seen
    assert seen["disk_sample"] is result.disk_sample and result.regressor is not None
    written = {}
    for name, figures in (("early", seen["figures"]), ("late", None)):
        (tmp_path / name).mkdir()
        paths = write_outputs(result, tmp_path / name, random_state=2, n_jobs=2, verbose=0,
                              figures=figures)
        written[name] = {k: Path(v).read_bytes() for k, v in paths.items() if k.startswith("figure_")}
    assert "figure_fig08_feh_broken_power_law" in written["early"]
    assert "figure_fig14_abundance_maps_low_alpha" in written["early"]
    assert set(written["early"]) == {f"figure_{name}" for name in kept}
    assert written["early"] == written["late"]


def test_the_console_script_flushes_runs_exit_handlers_and_exits_with_the_status(tmp_path):
    """script() ends the process without the interpreter's tear-down: what it printed (to a pipe,
    block-buffered), the exit handlers' work and the status must all be there."""
    code = ("import atexit, pathlib, sys; from sklearn_selfcal.cli import script; "
            "atexit.register(pathlib.Path(sys.argv[1]).write_text, 'handlers ran'); "
            "atexit.register(print, 'printed by a handler', end=''); "  # buffered: flushed by script
            "sys.argv = ['sklearn-selfcal'] + sys.argv[2:]; script()")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"parallax": {"lambda": 160}}))
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    for args, status in ((["simulate", "--n-stars", "100", "--n-pixels", "5", "--out", str(tmp_path / "s")], 0),
                         (["demo", "--out", str(tmp_path / "d"), "--config", str(bad), "--quiet"], 1)):
        marker = tmp_path / f"marker{status}"
        proc = subprocess.run([sys.executable, "-c", code, str(marker), *args], capture_output=True,
                              text=True, timeout=600, env=buffered)
        assert proc.returncode == status, proc.stderr
        assert marker.read_text() == "handlers ran"
        assert proc.stdout.endswith("printed by a handler")
        if status == 0:
            assert proc.stdout.splitlines()[-2].endswith("--out <directory>")  # the command's last line
            assert (tmp_path / "s" / "spectra.h5").is_file()
        else:
            assert "unknown key 'lambda'" in proc.stderr


def test_bad_config_and_misaligned_spectra_are_reported(tmp_path, capsys):
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"parallax": {"lambda": 160}}))
    assert main(["demo", "--out", str(tmp_path / "a"), "--config", str(cfg), "--quiet"]) == 1
    assert "unknown key 'lambda'" in capsys.readouterr().err
    pd.DataFrame({"LOGG": [1.0, 2.0]}).to_csv(tmp_path / "c.csv", index=False)
    np.save(tmp_path / "s.npy", np.ones((3, 5)))
    np.save(tmp_path / "s_err.npy", np.ones((3, 5)))
    assert main(["run", str(tmp_path / "c.csv"), "--spectra", str(tmp_path / "s.npy"),
                 "--out", str(tmp_path / "b")]) == 1
    assert "3 spectra for 2 catalogue rows" in capsys.readouterr().err


def test_module_entry_point_help():
    done = subprocess.run([sys.executable, "-m", "sklearn_selfcal", "--help"], capture_output=True,
                          text=True, check=True)
    assert "demo" in done.stdout and "run" in done.stdout


def test_simulate_writes_a_survey_that_run_reads_from_disk(tmp_path, capsys):
    from sklearn_selfcal.datasets import load_survey, make_survey

    out = tmp_path / "survey"
    assert main(["simulate", "--out", str(out), "--n-stars", "300", "--n-pixels", "40",
                 "--random-state", "5", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"sklearn-selfcal run {out / 'catalogue.parquet'} --spectra {out / 'spectra.h5'}" in printed
    written = load_survey(out)
    expected = make_survey(300, 40, random_state=5)
    pd.testing.assert_frame_equal(written.frame, expected.frame)
    np.testing.assert_array_equal(written.spectra.to_numpy_2d(), expected.spectra)
    # a second simulate refuses a folder with a survey unless --overwrite
    assert main(["simulate", "--out", str(out), "--n-stars", "300", "--n-pixels", "40",
                 "--quiet"]) == 1


def test_demo_is_simulate_then_run(demo_dir):
    # the demo keeps the survey it simulated next to the results, and ran on the files
    for name in ("catalogue.parquet", "spectra.h5", "truth.parquet", "params.json"):
        assert (demo_dir / "survey" / name).is_file(), name
    prov = json.loads((demo_dir / "provenance.json").read_text())
    assert prov["distance_source"]["kind"] == "spectra"


def test_impossible_requests_fail_in_seconds_before_anything_is_computed(tmp_path, capsys):
    """Zero pixels and an impossible [gradient] are refused before the survey is simulated."""
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--out", str(tmp_path / "a"), "--n-pixels", "0"])
    assert exit_.value.code == 2
    assert "--n-pixels: 0 is below the minimum of 1" in capsys.readouterr().err
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[gradient]\nburn_in = 9000\n")
    assert main(["demo", "--out", str(tmp_path / "b"), "--config", str(cfg)]) == 1
    assert "[gradient] burn_in (9000) must be smaller than n_steps" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()  # nothing simulated, nothing written


def test_a_damaged_fits_file_is_named_and_no_verify_reads_it(tmp_path, capsys):
    from astropy.io import fits

    DR17 = Path(__file__).parent / "data" / "apogee_dr17_allstar_95stars_kepler.fits"
    with fits.open(DR17) as hdul:
        hdul.writeto(tmp_path / "sums.fits", checksum=True)
    raw = bytearray((tmp_path / "sums.fits").read_bytes())
    with fits.open(tmp_path / "sums.fits") as hdul:
        raw[hdul[1]._data_offset + 100] ^= 0x01        # one bit of the table's data
    (tmp_path / "damaged.fits").write_bytes(bytes(raw))
    assert main(["check", str(tmp_path / "damaged.fits")]) == 1
    assert "damaged.fits: damaged FITS file" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "damaged.fits"), "--no-verify"]) == 0
