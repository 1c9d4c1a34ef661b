"""`check` and `run` on the real APOGEE rows, in every column spelling, through every file format.

Real files (tests/data, provenance in its README): 33 allStar DR16 rows and 95 allStar DR17 rows
(Kepler field, with Bailer-Jones distances). Dirt is injected into a simulated catalogue written as
CSV, Parquet and FITS: whatever the format, a sentinel or an unphysical value must act exactly as a
missing value does.
"""

import functools
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _marks import RUN_WARNINGS
from astropy.table import Table

from sklearn_selfcal.cli import main
from sklearn_selfcal.exceptions import DataQualityWarning

pytestmark = RUN_WARNINGS  # what a run reports to its user (tests/_marks.py)

DATA = Path(__file__).parent / "data"
DR16 = DATA / "apogee_dr16_allstar_33stars.fits"
DR17 = DATA / "apogee_dr17_allstar_95stars_kepler.fits"
FAST = {"figures": {"enabled": False},
        "gradient": {"n_walkers": 16, "n_steps": 400, "burn_in": 100, "thin": 2}}


def _config(tmp_path, extra=None, name="cfg.json"):
    path = tmp_path / name
    cfg = json.loads(json.dumps(FAST))
    for section, values in (extra or {}).items():
        cfg.setdefault(section, {}).update(values)
    path.write_text(json.dumps(cfg))
    return path


def _run(args, capsys=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        status = main(args)
    return status


# --------------------------------------------------------------------------------------------
# the real rows, without any configuration


@pytest.mark.parametrize("path", [DR16, DR17], ids=["dr16", "dr17"])
def test_check_on_real_allstar_rows(path, capsys):
    assert _run(["check", str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[-1].startswith("OK: run can proceed")
    # every role the orbits need is found under allStar's own spelling
    for role, column in (("ra", "RA"), ("dec", "DEC"), ("radial_velocity", "VHELIO_AVG"),
                         ("logg", "LOGG")):
        assert any(line.split() == [role, column] for line in lines), role
    assert "stars passing each cut, in order:" in out
    assert "calibration training" in out


def test_check_reports_the_distance_source_of_each_release(capsys):
    _run(["check", str(DR17)])
    out = capsys.readouterr().out
    assert "distances: GAIAEDR3_R_MED_PHOTOGEO (pc" in out
    # DR16's Bailer-Jones (2018) column is empty for these giants: the Gaia parallax is used
    _run(["check", str(DR16)])
    out = capsys.readouterr().out
    assert "GAIA_R_EST" in out and "passed over" in out
    assert "distances: Gaia parallax (catalogue columns GAIA_PARALLAX, GAIA_PARALLAX_ERROR)" in out


@pytest.fixture(scope="module")
def dr17_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dr17")
    out = tmp / "out"
    assert _run(["run", str(DR17), "--out", str(out), "--quiet"]) == 0
    return out


def test_run_on_dr17_uses_its_bailer_jones_distances(dr17_run):
    prov = json.loads((dr17_run / "provenance.json").read_text())
    source = prov["distance_source"]
    assert source["kind"] == "distance" and source["column"] == "GAIAEDR3_R_MED_PHOTOGEO"
    assert source["unit"] == "pc"
    cat = pd.read_parquet(dr17_run / "catalogue.parquet")
    raw = Table.read(DR17)
    assert len(cat) == len(raw) == 95  # no row dropped, file order kept
    assert list(cat["APOGEE_ID"]) == [str(v).strip() for v in raw["APOGEE_ID"]]
    # the distance column (pc) became kpc: 1/1000 of the file's value on the parent stars
    parent = cat["PARENT_SAMPLE"].to_numpy()
    r_pc = np.asarray(raw["GAIAEDR3_R_MED_PHOTOGEO"], dtype=float)
    np.testing.assert_allclose(cat.loc[parent, "distance_kpc"], r_pc[parent] / 1000.0, rtol=1e-6)
    # every parent star with complete astrometry has finite actions
    complete = parent & np.isfinite(r_pc) & np.isfinite(np.asarray(raw["GAIAEDR3_PMRA"], float)) \
        & np.isfinite(np.asarray(raw["VHELIO_AVG"], float))
    assert complete.sum() >= 5
    assert np.isfinite(cat.loc[complete, ["J_R", "L_z", "J_z"]].to_numpy()).all()
    # Kepler field giants are mostly disk stars a few kpc from the Sun: R ~ 8 kpc, and L_z < 0
    # (disk rotation in astropy's frame; one of these real giants counter-rotates)
    assert cat.loc[complete, "R"].between(6.5, 10).all()
    assert -2500 < cat.loc[complete, "L_z"].median() < -1000


def test_small_real_sample_skips_what_it_cannot_fit_and_says_so(dr17_run):
    prov = json.loads((dr17_run / "provenance.json").read_text())
    assert "calibration" in prov["skipped"] and "too few training stars" in prov["skipped"]["calibration"]
    assert "broken power-law fit" in prov["skipped"]
    assert not (dr17_run / "feh_gradient_fit.json").exists()
    # what could be made was made
    assert (dr17_run / "catalogue.fits").is_file() and (dr17_run / "radial_profiles.ecsv").is_file()
    assert prov["summary"]["n_parent"] == 9
    assert prov["summary"]["excluded_by_flags"]["star_bad"] == 1
    # the per-element flags of the real file were honoured and counted
    assert prov["summary"]["cleaning"]["N_FE"]["flagged"] == 48


def test_run_on_dr16_falls_back_to_gaia_parallaxes(tmp_path):
    out = tmp_path / "out"
    assert _run(["run", str(DR16), "--out", str(out), "--quiet"]) == 0
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["distance_source"]["kind"] == "parallax"
    assert prov["distance_source"]["parallax_over_error"] == 5.0
    cat = pd.read_parquet(out / "catalogue.parquet")
    raw = Table.read(DR16)
    plx = np.asarray(raw["GAIA_PARALLAX"], float)
    err = np.asarray(raw["GAIA_PARALLAX_ERROR"], float)
    with np.errstate(invalid="ignore", divide="ignore"):
        good = cat["PARENT_SAMPLE"].to_numpy() & (plx > 0) & (plx / err > 5)
        expected = 1.0 / (plx[good] + 0.017)  # zero point -0.017 mas subtracted
    np.testing.assert_allclose(cat.loc[good, "distance_kpc"], expected, rtol=1e-9)
    # below the parallax/error cut, no distance (never an inverse of a noisy parallax)
    assert cat.loc[cat["PARENT_SAMPLE"].to_numpy() & ~good, "distance_kpc"].isna().all()


# --------------------------------------------------------------------------------------------
# other spellings and explicit mappings

VIZIER = {"RA": "RA_ICRS", "DEC": "DE_ICRS", "GAIAEDR3_PARALLAX": "Plx",
          "GAIAEDR3_PARALLAX_ERROR": "e_Plx", "GAIAEDR3_PMRA": "pmRA", "GAIAEDR3_PMDEC": "pmDE",
          "GAIAEDR3_PMRA_ERROR": "e_pmRA", "GAIAEDR3_PMDEC_ERROR": "e_pmDE",
          "GAIAEDR3_PHOT_G_MEAN_MAG": "Gmag", "GAIAEDR3_PHOT_BP_MEAN_MAG": "BPmag",
          "GAIAEDR3_PHOT_RP_MEAN_MAG": "RPmag", "J": "Jmag", "H": "Hmag", "K": "Kmag",
          "VHELIO_AVG": "HRV", "VERR": "e_HRV", "LOGG": "logg", "TEFF": "Teff",
          "FE_H": "[Fe/H]", "FE_H_ERR": "e_[Fe/H]", "GAIAEDR3_R_MED_PHOTOGEO": "rpgeo",
          "GAIAEDR3_R_LO_PHOTOGEO": "b_rpgeo", "GAIAEDR3_R_HI_PHOTOGEO": "B_rpgeo"}


def _vizier_copy(tmp_path, n_rows=95):
    raw = Table.read(DR17)[:n_rows]
    keep = list(VIZIER) + ["APOGEE_ID", "MG_FE", "MG_FE_ERR", "ALPHA_M", "ALPHA_M_ERR"]
    table = raw[keep]
    table.rename_columns(list(VIZIER), list(VIZIER.values()))
    path = tmp_path / "vizier.fits"
    table.write(path)
    return path, raw


def test_vizier_names_run_without_configuration(tmp_path, dr17_run, capsys):
    path, raw = _vizier_copy(tmp_path)
    assert _run(["check", str(path)]) == 0
    out = capsys.readouterr().out
    for role, column in (("ra", "RA_ICRS"), ("pmdec", "pmDE"), ("radial_velocity", "HRV"),
                         ("logg", "logg")):
        assert any(line.split() == [role, column] for line in out.splitlines()), role
    assert "distances: rpgeo (pc; Bailer-Jones et al. (2021) photo-geometric (VizieR I/352))" in out
    out_dir = tmp_path / "out"
    assert _run(["run", str(path), "--out", str(out_dir), "--quiet"]) == 0
    cat = pd.read_parquet(out_dir / "catalogue.parquet")
    assert "RA_ICRS" in cat.columns and "Plx" in cat.columns  # the user's names are kept
    # the same stars give the same orbits as the allStar-named run
    ref = pd.read_parquet(dr17_run / "catalogue.parquet").iloc[:len(cat)]
    both = cat["PARENT_SAMPLE"].to_numpy() & ref["PARENT_SAMPLE"].to_numpy()
    assert both.sum() >= 2
    np.testing.assert_allclose(cat.loc[both, ["R", "z", "J_R", "L_z", "J_z"]].to_numpy(),
                               ref.loc[both, ["R", "z", "J_R", "L_z", "J_z"]].to_numpy(),
                               rtol=1e-9)


def test_explicit_mapping_overrides_a_detected_name(tmp_path, capsys):
    raw = Table.read(DR17)
    frame = raw[["APOGEE_ID", "RA", "DEC", "GAIAEDR3_PMRA", "GAIAEDR3_PMDEC", "VHELIO_AVG",
                 "VERR", "LOGG", "FE_H", "FE_H_ERR", "GAIAEDR3_R_MED_PHOTOGEO"]].to_pandas()
    frame["rv_corrected"] = frame["VHELIO_AVG"] + 25.0  # the user's own velocities
    path = tmp_path / "cat.parquet"
    frame.to_parquet(path)
    cfg = _config(tmp_path, {"columns": {"radial_velocity": "rv_corrected"}}, "map.json")
    assert _run(["check", str(path), "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert any(line.split() == ["radial_velocity", "rv_corrected", "(config)"]
               for line in out.splitlines())
    runs = {}
    for name, extra in (("detected", []), ("mapped", ["--config", str(cfg)])):
        out_dir = tmp_path / name
        assert _run(["run", str(path), "--out", str(out_dir), "--quiet", *extra]) == 0
        runs[name] = pd.read_parquet(out_dir / "catalogue.parquet")
    ok = runs["detected"]["J_R"].notna()
    assert ok.sum() >= 5
    # a 25 km/s shift of every line-of-sight velocity moves the velocities, positions do not move
    np.testing.assert_allclose(runs["mapped"].loc[ok, "R"], runs["detected"].loc[ok, "R"])
    assert (np.abs(runs["mapped"].loc[ok, "v_z"] - runs["detected"].loc[ok, "v_z"]) > 1).any()


def test_a_mapping_to_a_missing_column_or_an_unknown_role_is_an_error(tmp_path, capsys):
    cfg = _config(tmp_path, {"columns": {"parallax": "NO_SUCH_COLUMN"}}, "bad.json")
    assert main(["check", str(DR17), "--config", str(cfg)]) == 1
    assert "no column 'NO_SUCH_COLUMN'" in capsys.readouterr().err
    cfg = _config(tmp_path, {"columns": {"paralax": "GAIAEDR3_PARALLAX"}}, "typo.json")
    assert main(["check", str(DR17), "--config", str(cfg)]) == 1
    assert "['paralax'] are not roles" in capsys.readouterr().err


def test_check_exits_1_and_names_the_fix_when_run_could_not_proceed(tmp_path, capsys):
    frame = Table.read(DR17)[["APOGEE_ID", "RA", "DEC", "LOGG", "FE_H", "FE_H_ERR"]].to_pandas()
    frame.to_csv(tmp_path / "no_motions.csv", index=False)
    assert main(["check", str(tmp_path / "no_motions.csv")]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("ERROR: run cannot proceed")
    assert '[columns] pmra = "<column>"' in out
    assert main(["run", str(tmp_path / "no_motions.csv"), "--out", str(tmp_path / "o")]) == 1
    assert not (tmp_path / "o").exists()  # it failed before writing anything


def test_a_listed_band_the_catalogue_lacks_names_its_provider(tmp_path, capsys):
    frame = Table.read(DR17).to_pandas()
    frame.to_parquet(tmp_path / "cat.parquet")
    np.save(tmp_path / "spec.npy", np.ones((len(frame), 10), dtype=np.float32))
    np.save(tmp_path / "spec_err.npy", np.full((len(frame), 10), 0.01, dtype=np.float32))
    args = ["check", str(tmp_path / "cat.parquet"), "--spectra", str(tmp_path / "spec.npy")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "WISE W1 magnitude left out of the parallax model" in out
    assert "AllWISE" in out and '[columns] w1_mag = "<column>"' in out
    cfg = _config(tmp_path, {"parallax": {"magnitudes": ["h_mag", "w1_mag"]}}, "bands.json")
    assert main([*args, "--config", str(cfg)]) == 1
    out = capsys.readouterr().out
    assert "[parallax] magnitudes lists w1_mag" in out and "AllWISE" in out


# --------------------------------------------------------------------------------------------
# dirt, whatever the file type


@functools.lru_cache(maxsize=1)
def _simulated_survey():
    from sklearn_selfcal.datasets import make_survey

    return make_survey(2500, n_pixels=8, random_state=11).frame


def _survey_catalogue():
    """The simulated catalogue, simulated once per module (3 s); each caller gets its own copy."""
    return _simulated_survey().copy()


DIRT = [  # (column, value): a sentinel or an unphysical value in every role the method reads
    ("ra", -9999.0), ("dec", 120.0), ("parallax", -9999.0), ("parallax_error", -999.99),
    ("pmra", -9999.99), ("pmdec", 1e6), ("VHELIO_AVG", 5000.0), ("VERR", -999.99),
    ("LOGG", -9999.99), ("TEFF", 50000.0), ("FE_H", -9999.99), ("FE_H_ERR", -999.99),
    ("MG_FE", 7.5), ("ALPHA_M", -9999.99), ("J", 99.999), ("AL_FE_ERR", -5.0),
]


def _dirty(frame, rng):
    """A copy with dirt in 30 random rows per column, and the same copy with NaN there instead."""
    dirty = frame.copy()
    clean = frame.copy()
    where = {}
    for column, value in DIRT:
        rows = rng.choice(len(frame), 30, replace=False)
        dirty.loc[rows, column] = value
        clean.loc[rows, column] = np.nan
        where[column] = rows
    return dirty, clean, where


def _write(frame, path):
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        Table.from_pandas(frame).write(path)
    return path


@pytest.fixture(scope="module")
def dirt_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dirt")
    # 1,200 stars: 30 dirty rows per column, and what is compared (clean run vs dirty runs,
    # value for value) does not depend on the number of stars
    dirty, clean, where = _dirty(_survey_catalogue().iloc[:1200].reset_index(drop=True),
                                 np.random.default_rng(0))
    cfg = _config(tmp, {"output": {"columns": "all"}})  # every column read, cleaned and written
    runs = {}
    for name, frame, suffix in (("reference", clean, ".parquet"), ("csv", dirty, ".csv"),
                                ("parquet", dirty, ".parquet"), ("fits", dirty, ".fits")):
        path = _write(frame, tmp / f"{name}{suffix}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            status = main(["run", str(path), "--out", str(tmp / name), "--config", str(cfg),
                           "--quiet"])
        assert status == 0, name
        quality = [str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)]
        runs[name] = (tmp / name, quality)
    return runs, where


@pytest.mark.parametrize("fmt", ["csv", "parquet", "fits"])
def test_dirt_acts_as_missing_values_in_every_format(dirt_runs, fmt):
    runs, where = dirt_runs
    ref_dir, _ = runs["reference"]
    out_dir, _ = runs[fmt]
    ref = pd.read_parquet(ref_dir / "catalogue.parquet")
    got = pd.read_parquet(out_dir / "catalogue.parquet")
    assert len(got) == len(ref)
    added = ["distance_kpc", "x", "z", "v_z", "J_R", "L_z", "J_z", "FE_H_NEW", "MG_FE_NEW",
             "ALPHA_M_NEW", "PARENT_SAMPLE", "DISK_SAMPLE"]
    for column in added + [c for c, _ in DIRT]:
        np.testing.assert_allclose(got[column].to_numpy(float), ref[column].to_numpy(float),
                                   rtol=1e-9, atol=0, equal_nan=True, err_msg=column)
    profile_ref = Table.read(ref_dir / "radial_profiles.ecsv").to_pandas()
    profile = Table.read(out_dir / "radial_profiles.ecsv").to_pandas()
    pd.testing.assert_frame_equal(profile, profile_ref)
    fit_ref = json.loads((ref_dir / "feh_gradient_fit.json").read_text())["posterior"]
    fit = json.loads((out_dir / "feh_gradient_fit.json").read_text())["posterior"]
    assert fit == fit_ref


@pytest.mark.parametrize("fmt", ["csv", "parquet", "fits"])
def test_dirt_gives_one_warning_per_column_and_is_counted(dirt_runs, fmt):
    runs, where = dirt_runs
    out_dir, quality = runs[fmt]
    prov = json.loads((out_dir / "provenance.json").read_text())
    cleaning = prov["summary"]["cleaning"]
    for column, value in DIRT:
        messages = [m for m in quality if m.startswith(f"column {column!r}:")
                    and "no usable uncertainty" not in m]  # a consequence of FE_H_ERR's dirt
        assert len(messages) == 1, (column, messages)
        assert "30 row(s)" in messages[0]
        # a sentinel is reported as one, an unphysical value as out of range
        sentinel = value in (-9999.0, -9999.99, -999.99, 99.999)
        kind = "hold a 'no measurement' value" if sentinel else "are outside the physical range"
        assert kind in messages[0], messages[0]
        assert sum(cleaning[column].values()) >= 30
    # the reference run (NaN, not dirt) reports no sentinel nor unphysical value
    assert not [m for m in runs["reference"][1] if "no usable uncertainty" not in m]


def test_the_input_frame_is_not_modified(tmp_path):
    from sklearn_selfcal.workflow import load_config, run_method

    dirty, _, _ = _dirty(_survey_catalogue().iloc[:800].reset_index(drop=True),
                         np.random.default_rng(1))
    before = dirty.copy(deep=True)
    with pytest.warns(DataQualityWarning):  # the injected dirt, one warning per column
        run_method(dirty, config=load_config(overrides=FAST), verbose=0)
    pd.testing.assert_frame_equal(dirty, before)


def test_masked_astropy_table_means_nan_never_the_hidden_value():
    from sklearn_selfcal.workflow import load_config, run_method

    frame = _survey_catalogue().iloc[:1500].reset_index(drop=True)
    table = Table.from_pandas(frame, index=False)
    table = Table(table, masked=True)
    table["LOGG"].mask[:40] = True
    table["LOGG"].data.data[:40] = 1.0  # a plausible hidden value, which must not be used
    result = run_method(table, config=load_config(overrides=FAST), verbose=0)
    assert not result.catalogue["PARENT_SAMPLE"].iloc[:40].any()
    assert result.catalogue["PARENT_SAMPLE"].iloc[40:].sum() > 1000


# --------------------------------------------------------------------------------------------
# files that are damaged or ambiguous


@pytest.mark.parametrize("suffix", [".fits", ".parquet"])
def test_a_truncated_catalogue_is_named_as_such(tmp_path, suffix, capsys):
    from sklearn_selfcal.io import read_catalogue

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        frame = read_catalogue(DR17)
    path = _write(frame, tmp_path / f"cat{suffix}")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "corrupt or truncated" in err


def test_duplicate_column_names_are_an_error_naming_the_column(tmp_path, capsys):
    path = tmp_path / "dup.csv"
    path.write_text("ra,dec,LOGG,LOGG\n1,2,1.5,1.6\n")
    assert main(["check", str(path)]) == 1
    assert "duplicate column name(s) ['LOGG']" in capsys.readouterr().err


def test_non_ascii_text_in_fits_names_the_column(tmp_path):
    from sklearn_selfcal.io import write_catalogue

    frame = pd.DataFrame({"APOGEE_ID": ["2M0001", "ωCen-17"], "x": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"column 'APOGEE_ID' holds non-ASCII text.*row 1"):
        write_catalogue(frame, tmp_path / "c.fits")
    write_catalogue(frame, tmp_path / "c.fits", non_ascii="escape")
    assert Table.read(tmp_path / "c.fits")["APOGEE_ID"][1] == "\\u03c9Cen-17"


# --------------------------------------------------------------------------------------------
# the output directory


def test_a_second_concurrent_run_on_the_same_out_refuses(tmp_path, monkeypatch, capsys):
    import sklearn_selfcal.workflow as workflow

    # The first run is a real `run` in this process; while it computes (inside run_method, with
    # the lock taken) the second `run` starts on the same --out. flock locks belong to an open
    # file description, so the second run's own open of the lock file conflicts with the first's
    # exactly as another process's would; no long chain is needed to keep the first one busy.
    path = _write(_survey_catalogue().iloc[:800].reset_index(drop=True),
                  tmp_path / "cat.parquet")
    cfg = _config(tmp_path)
    out = tmp_path / "out"
    lock = tmp_path / ".out.sklearn-selfcal.lock"
    real_run_method = workflow.run_method
    second = {}

    def run_method_meanwhile(*args, **kwargs):
        assert lock.exists(), "the first run never took the lock"
        capsys.readouterr()
        second["status"] = main(["run", str(path), "--out", str(out), "--config", str(cfg),
                                 "--quiet", "--overwrite"])
        second["stderr"] = capsys.readouterr().err
        return real_run_method(*args, **kwargs)

    monkeypatch.setattr(workflow, "run_method", run_method_meanwhile)
    first = _run(["run", str(path), "--out", str(out), "--config", str(cfg), "--quiet"])
    assert second["status"] == 1
    assert "another sklearn-selfcal run is writing" in second["stderr"]
    assert first == 0
    assert (out / "catalogue.parquet").is_file()
    assert not lock.exists() and not list(tmp_path.glob(".out.sklearn-selfcal.tmp-*"))


def test_an_interrupted_run_leaves_nothing_behind_on_the_next_start(tmp_path):
    from sklearn_selfcal.io.outdir import OutputDirectory

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        with OutputDirectory(out) as tmp:
            (tmp / "half.parquet").write_bytes(b"...")
            raise KeyboardInterrupt
    assert not out.exists() and not list(tmp_path.glob(".out.*"))
    # a crash that never reached __exit__ leaves its private directory: the next run removes it
    stale = tmp_path / ".out.sklearn-selfcal.tmp-dead"
    stale.mkdir()
    (stale / "catalogue.parquet").write_bytes(b"stale")
    with OutputDirectory(out) as tmp:
        (tmp / "catalogue.parquet").write_bytes(b"new")
    assert not stale.exists()
    assert (out / "catalogue.parquet").read_bytes() == b"new"


# --------------------------------------------------------------------------------------------
# DataFrames (and astropy Tables) passed to the estimators directly


@pytest.fixture(scope="module")
def orbit_frame():
    from sklearn_selfcal.datasets import make_survey

    s = make_survey(3000, n_pixels=8, random_state=21)
    return s.frame.join(s.truth[["J_R", "L_z", "J_z", "x", "distance"]])


def test_calibrator_takes_sentinels_as_missing_values(orbit_frame):
    from sklearn_selfcal import NuisanceCalibrator

    rng = np.random.default_rng(3)
    dirty, clean = orbit_frame.copy(), orbit_frame.copy()
    for column in ("LOGG", "FE_H", "MG_FE"):
        rows = rng.choice(len(dirty), 30, replace=False)
        dirty.loc[rows, column] = -9999.99
        clean.loc[rows, column] = np.nan
    cal = NuisanceCalibrator(abundance_columns=["FE_H", "MG_FE"], training_filter=None)
    with pytest.warns(DataQualityWarning) as caught:
        got = cal.fit(dirty).transform(dirty)
    messages = {str(w.message).split(":")[0] for w in caught}
    assert {"column 'LOGG'", "column 'FE_H'", "column 'MG_FE'"} <= messages
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataQualityWarning)  # the NaN copy has nothing to report
        ref_cal = NuisanceCalibrator(abundance_columns=["FE_H", "MG_FE"], training_filter=None)
        ref = ref_cal.fit(clean).transform(clean)
    np.testing.assert_allclose(cal.coef_.to_numpy(), ref_cal.coef_.to_numpy(), rtol=1e-12)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_action_transformer_takes_unphysical_values_as_missing(orbit_frame):
    from sklearn_selfcal import ActionTransformer

    dirty = orbit_frame.copy()
    dirty.loc[[5, 9], "dec"] = 120.0        # outside [-90, 90]
    dirty.loc[[7], "pmra"] = -9999.99       # a sentinel
    at = ActionTransformer(distance="distance", orbit_check=False, method="staeckel_fixed")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = at.set_output(transform="pandas").fit_transform(dirty)
    messages = [str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)]
    assert any(m.startswith("column 'dec': 2 row(s) are outside the physical range") for m in messages)
    assert any(m.startswith("column 'pmra': 1 row(s) hold a 'no measurement'") for m in messages)
    assert got.loc[[5, 7, 9], ["J_R", "L_z", "J_z"]].isna().all().all()
    ref = at.fit_transform(orbit_frame)
    others = np.setdiff1d(np.arange(len(dirty)), [5, 7, 9])
    np.testing.assert_array_equal(got.iloc[others].to_numpy(), ref.iloc[others].to_numpy())


def test_estimators_accept_an_astropy_table(orbit_frame):
    from sklearn_selfcal import ActionTransformer, NuisanceCalibrator

    frame = orbit_frame.iloc[:800].reset_index(drop=True)
    table = Table.from_pandas(frame, index=False)
    at = ActionTransformer(distance="distance", orbit_check=False, method="staeckel_fixed")
    np.testing.assert_array_equal(at.fit_transform(table), at.fit_transform(frame))
    cal = NuisanceCalibrator(abundance_columns=["FE_H"], training_filter=None)
    np.testing.assert_array_equal(cal.fit_transform(table), cal.fit_transform(frame))


def test_a_physical_value_near_a_sentinel_is_kept():
    """Sentinels match to float32 rounding, not to a loose relative tolerance.

    Found at 10^6 simulated stars: an angular momentum of -999.9902 kpc km/s was taken for the
    -999.99 sentinel (1e-6 relative tolerance) and set to NaN. Sentinels as stored in float32,
    or printed from float32 with 8 digits, must still match.
    """
    from sklearn_selfcal.cleaning import sentinel_mask

    kept = np.array([-999.9902, -999.9895, -1000.0, -9999.95, -9999.9802, 42.0])
    assert not sentinel_mask(kept).any()
    found = np.array([-999.99, np.float32(-999.99), -9999.99, np.float32(-9999.99), -9999.9902,
                      np.float32(-9999.9999), -9999.0, -999.0])
    assert sentinel_mask(found).all()
