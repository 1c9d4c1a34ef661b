"""SDSS-V DR19/DR20 (astra's astraAllStarASPCAP) end to end, on a fixture true to the datamodel.

``tests/data/astraAllStarASPCAP-dr17rows.fits.gz`` holds the 95 real DR17 rows of
``apogee_dr17_allstar_95stars_kepler.fits`` written as astra writes DR19 (HDU layout, lower-case
names, float32/int64, fill values, [X/H] abundances and astra's flag bits) plus 14 SDSS-V rows of 12
of those stars that share their ``sdss_id`` (tests/data/README.md says exactly how). The copies
carry their star's values, so the same stars in DR17 spelling must give the same calibration.
"""

import contextlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from sklearn_selfcal.cli import main
from sklearn_selfcal.columns import resolve_columns, role_of
from sklearn_selfcal.exceptions import DataQualityWarning, InaccurateActionsWarning
from sklearn_selfcal.io import catalogue_columns, read_catalogue
from sklearn_selfcal.io._fits import choose_hdu
from sklearn_selfcal.preflight import plan_and_prepare
from sklearn_selfcal.selection import quality_cuts
from sklearn_selfcal.workflow import load_config

DATA = Path(__file__).parent / "data"
ASTRA = DATA / "astraAllStarASPCAP-dr17rows.fits.gz"
DR17 = DATA / "apogee_dr17_allstar_95stars_kepler.fits"
N_DR17, N_SDSS5 = 95, 14
#: Rows of the fixture (tests/data/README.md): DR17 rows 0-94, then the SDSS-V copies
SDSS5_OF = {95: 10, 96: 11, 97: 12, 98: 13, 99: 14, 100: 15, 101: 20, 102: 21, 103: 22,
            104: 30, 105: 30, 106: 31, 107: 31, 108: 2}
#: 95 Kepler giants cannot constrain the paper's model (log g <= 2.2 leaves 9 stars): a smaller
#: model on a wider log g range, so that every abundance gets <X>_NEW; fast MCMC settings
SMALL = {"figures": {"enabled": False}, "sample": {"logg_max": 3.5},
         "calibration": {"min_stars_per_coefficient": 1, "orbit_degree": 1, "nuisance_degree": 1},
         "gradient": {"n_walkers": 16, "n_steps": 200, "burn_in": 50, "thin": 2}}


def _config_file(tmp_path, extra=None, name="config.json"):
    config = json.loads(json.dumps(SMALL))
    for section, values in (extra or {}).items():
        config.setdefault(section, {}).update(values)
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return path


def _prepared(overrides=None, frame=None):
    """The plan and the cleaned, canonical table of the fixture (cleaning warnings recorded)."""
    config = load_config(overrides=overrides)
    frame = read_catalogue(ASTRA, clean=False) if frame is None else frame
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        plan, prepared = plan_and_prepare(frame, config)
    return plan, prepared, [str(w.message) for w in record if w.category is DataQualityWarning]


# --------------------------------------------------------------------------------------------
# the fixture is what the datamodel says


def test_the_fixture_has_the_datamodels_layout_types_and_fill_values():
    with fits.open(ASTRA) as hdul:
        assert len(hdul) == 3 and hdul[0].header["NAXIS"] == 0 and "V_ASTRA" in hdul[0].header
        assert [h.header.get("INSTRMNT") for h in hdul[1:]] == ["BOSS", "APOGEE"]
        assert not any("EXTNAME" in h.header for h in hdul)
        assert hdul[1].header["NAXIS2"] == 0 and hdul[2].header["NAXIS2"] == N_DR17 + N_SDSS5
        columns = hdul[2].columns
        assert len(columns) == 396 and all(name == name.lower() for name in columns.names)
        formats = {c.name: c.format for c in columns}
        assert (formats["sdss_id"], formats["ra"], formats["mg_h_flags"], formats["flag_bad"],
                formats["n_visits"]) == ("K", "E", "K", "L", "J")
        data = hdul[2].data
        assert set(data["release"]) == {"dr17", "sdss5"}
        assert set(data["telescope"]) == {"apo25m", "apo1m"}
        ids = data["sdss_id"]
        assert (ids == -1).sum() == 2
        assert np.unique(ids[ids > 0], return_counts=True)[1].max() == 3
        assert np.isnan(data["w1_mag"]).all() and (data["catalogid"] == -1).all()
        assert (data["bailer_jones_flags"] == "").all()


# --------------------------------------------------------------------------------------------
# check and run


def test_check_names_the_hdu_the_roles_the_conversion_and_the_duplicates(capsys):
    assert main(["check", str(ASTRA)]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()]
    assert "read HDU 2, INSTRMNT = 'APOGEE' (tables: HDU 1 (BOSS, 0 rows), 2 (APOGEE, 109 rows))" \
        in out
    for role, column in (("ra", "ra"), ("pmdec", "pmde"), ("radial_velocity", "v_rad"),
                         ("radial_velocity_error", "e_v_rad"), ("logg", "logg"),
                         ("star_id", "sdss4_apogee_id"), ("sdss_id", "sdss_id"),
                         ("release", "release"), ("flag_bad", "flag_bad")):
        assert [role, column] in lines, role
    assert not any(line[:1] == ["aspcapflag"] for line in lines)  # allStar's flags: not asked
    assert "distances: r_med_photogeo (pc;" in out
    assert ("[X/H] -> [X/Fe] for 19 abundances: [X/Fe] = [X/H] - [Fe/H], e.g. C_FE = c_h - fe_h, "
            "uncertainty sqrt(e_c_h**2 + e_fe_h**2) (independent errors)") in out
    assert ("duplicates: one row per SDSS_ID: a row without flag_bad, then release sdss5, then the "
            "highest snr, then file order (14 rows of 12 stars left out)") in out
    counts = {tuple(line[:2]): int(line[2].replace(",", "")) for line in lines
              if line[:1] == ["quality"]}
    assert counts == {("quality", "star_bad"): 99, ("quality", "duplicate"): 89}
    assert out.splitlines()[-1].startswith("OK: run can proceed")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``run`` on the fixture and on the DR17 rows, with the same settings.

    Both keep flagged stars (``exclude_star_bad = false``): astra's ``flag_bad`` and DR17's
    ``STAR_BAD`` flag different stars (std_v_rad > 1 km/s is bad in astra only), and the same
    stars must enter both. [X/Fe] errors by DR17's convention (``x_fe_error = "dr17"``: DR17 ships
    ``X_FE_ERR == X_H_ERR``), so that the weights are the same too. DR17's ``FERRE_ERR_USED`` flag
    bit has no astra counterpart and is not in the fixture: it is cleared in the DR17 copy.
    """
    tmp = tmp_path_factory.mktemp("sdss5")
    config = _config_file(tmp, {"sample": {"exclude_star_bad": False},
                                "catalogue": {"x_fe_error": "dr17"}})
    dr17 = tmp / "dr17.fits"
    with fits.open(DR17) as hdul:
        flag = hdul[1].data["C_FE_FLAG"]
        assert ((flag >> 5) & 1).sum() == 1  # the one value flagged only by FERRE_ERR_USED
        flag &= ~np.int32(1 << 5)
        hdul.writeto(dr17)
    out = {}
    for name, path in (("astra", ASTRA), ("dr17", dr17)):
        printed = io.StringIO()
        with warnings.catch_warnings(record=True) as record, contextlib.redirect_stdout(printed):
            warnings.simplefilter("always")
            status = main(["run", str(path), "--config", str(config), "--out",
                           str(tmp / name)])
        assert status == 0
        (tmp / name / "stdout.txt").write_text(printed.getvalue())
        # the files' fill values and flagged abundances; and, both times, the real orbits of 16
        # of the 94 stars on which the Staeckel fudge is not accurate to 5 %
        categories = {w.category for w in record}
        assert categories == {DataQualityWarning, InaccurateActionsWarning}, categories
        out[name] = tmp / name
    return out


def test_run_exits_0_and_records_the_duplicates_and_the_conversion(runs):
    printed = (runs["astra"] / "stdout.txt").read_text()
    assert "read HDU 2, INSTRMNT = 'APOGEE'" in printed
    assert "  radial_velocity          v_rad\n" in printed
    assert "  sdss_id                  sdss_id\n" in printed
    assert "[X/H] -> [X/Fe] for 19 abundances" in printed and "(DR17's convention)" in printed
    assert "(14 rows of 12 stars left out)" in printed
    prov = json.loads((runs["astra"] / "provenance.json").read_text())
    assert prov["summary"]["excluded_by_flags"] == {"duplicate": 14}
    assert any("14 rows of 12 stars left out" in row["condition"] for row in prov["cut_counts"])
    assert prov["summary"]["n_input"] == N_DR17 + N_SDSS5
    assert prov["summary"]["cleaning"]["n_h"] == {"flagged": 60}
    assert prov["summary"]["cleaning"]["sdss_id"] == {"fill_value": 2}
    cat = pd.read_parquet(runs["astra"] / "catalogue.parquet")
    assert len(cat) == N_DR17 + N_SDSS5  # every row, in file order
    assert cat["QUALITY_OK"].sum() == N_DR17


def test_the_same_rows_in_dr17_spelling_give_the_same_calibrated_abundances(runs):
    astra = pd.read_parquet(runs["astra"] / "catalogue.parquet")
    dr17 = pd.read_parquet(runs["dr17"] / "catalogue.parquet")
    kept = astra[astra["QUALITY_OK"]].set_index("sdss4_apogee_id").loc[dr17["APOGEE_ID"]]
    new = [c for c in dr17.columns if c.endswith("_NEW")]
    assert len(new) == 19  # FE_H, ALPHA_M and 17 [X/Fe] (P and Cu are not published in DR17)
    for column in new:
        a, b = kept[column].to_numpy(float), dr17[column].to_numpy(float)
        np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b), err_msg=column)
        assert np.isfinite(b).sum() >= 38, column
        # The inputs differ by float32 rounding only: astra stores [X/H] (float32) where DR17
        # stores [X/Fe], and ra/dec in float32 (DR17: float64): a few 1e-8 dex in [X/Fe] and
        # < 0.1 arcsec in position; through the linear calibration that is ~1e-7 dex, far below
        # 1e-6 dex (and the 1e-2 dex of the abundances' own uncertainties).
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0, err_msg=column)


# --------------------------------------------------------------------------------------------
# the HDU


def test_the_apogee_table_is_found_by_instrmnt_then_by_position(tmp_path):
    with fits.open(ASTRA) as hdul:
        assert choose_hdu(hdul, "auto")[0] == 2
        assert choose_hdu(hdul, "boss") == (1, "HDU 1 (BOSS) as asked")
        assert choose_hdu(hdul, 2)[0] == choose_hdu(hdul, "2")[0] == 2
        with pytest.raises(ValueError, match=r"HDU 0 is not a table; the tables are HDU 1 \(BOSS"):
            choose_hdu(hdul, 0)
        with pytest.raises(ValueError, match="no table HDU with INSTRMNT or EXTNAME 'galex'"):
            choose_hdu(hdul, "galex")
        # a copy whose tables lost INSTRMNT: astra's position (the primary says V_ASTRA)
        for hdu in hdul[1:]:
            del hdu.header["INSTRMNT"]
        hdul.writeto(tmp_path / "no_instrmnt.fits")
    with fits.open(tmp_path / "no_instrmnt.fits") as hdul:
        index, reason = choose_hdu(hdul, "auto")
        assert index == 2 and "position in astra summary files" in reason
    assert len(read_catalogue(tmp_path / "no_instrmnt.fits", columns=["sdss_id"], clean=False)) \
        == N_DR17 + N_SDSS5


def test_hdu_option_and_config_key_read_another_table(tmp_path, capsys):
    assert catalogue_columns(ASTRA, hdu=1)[-1] == "raw_e_v_h"
    assert "run2d" in catalogue_columns(ASTRA, hdu=1) and "run2d" not in catalogue_columns(ASTRA)
    # BOSS's table is empty in DR19: check says so and exits 1
    assert main(["check", str(ASTRA), "--hdu", "1"]) == 1
    out = capsys.readouterr().out
    assert "read HDU 1 (BOSS) as asked" in out and "(0 rows," in out
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"catalogue": {"hdu": 1}}))
    assert main(["check", str(ASTRA), "--config", str(config)]) == 1
    assert main(["check", str(ASTRA), "--config", str(config), "--hdu", "2"]) == 0  # --hdu wins
    assert main(["check", str(ASTRA), "--hdu", "7"]) == 1
    assert "HDU 7 is not a table" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# fill values, flags, duplicates, [X/H]


def test_fill_values_are_missing_values():
    # mutation tried: the loop of clean_catalogue over integer and text roles removed -> the two
    # sdss_id = -1 rows became one star, and 15 rows were left out as duplicates
    plan, prepared, messages = _prepared()
    work = prepared.work
    assert work["SDSS_ID"].isna().to_numpy().nonzero()[0].tolist() == [40, 41]
    assert pd.isna(work["BAILER_JONES_FLAGS"]).all() and pd.isna(work["CATALOGID"]).all()
    assert ("column 'sdss_id': 2 row(s) hold no identifier (-1: outside [1, inf], a writer's fill "
            "value); set to missing (rows 40 (2M19292505+4359410), 41 (2M18420885+4406595))"
            in messages)
    cuts = quality_cuts(work)
    assert cuts["duplicate"].to_numpy()[[40, 41]].all()  # two stars, not one id of -1
    assert cuts.attrs["duplicates"]["rows_left_out"] == N_SDSS5
    # NaN floats, 0 bit fields and False booleans need nothing: NaN is missing, 0/False no flag
    assert np.isnan(work["w1mpro"]).all()
    assert (prepared.table["mg_h_flags"] == 0).sum() == N_DR17 + N_SDSS5


def test_text_and_identifier_fill_values_in_a_table_of_any_origin():
    frame = pd.DataFrame({"sdss_id": np.array([5, -1, 5, -1]), "telescope": ["apo25m", "", "", "x"],
                          "gaia_dr3_source_id": np.array([2**62 + 1, -1, 3, 4]),
                          "logg": [2.0, 2.1, 2.2, 2.3]})
    _, prepared, messages = _prepared(frame=frame)
    assert sorted(m.split(":")[0] for m in messages) == [
        "column 'gaia_dr3_source_id'", "column 'sdss_id'", "column 'telescope'"]
    work = prepared.work
    assert work["source_id"].dtype == "Int64" and work["source_id"][0] == 2**62 + 1  # exact
    assert work["SDSS_ID"].isna().tolist() == [False, True, False, True]
    assert work["TELESCOPE"].isna().tolist() == [False, True, True, False]
    assert quality_cuts(work)["duplicate"].tolist() == [True, True, False, True]


def test_per_element_and_star_level_flags():
    # mutations tried: astra's spelling <x>_h_flags removed from the role table -> no flagged
    # value (n_h kept in 60 rows); the FLAG_BAD branch of quality_cuts removed -> no star_bad cut
    plan, prepared, messages = _prepared()
    flagged = sorted(m for m in messages if "flagged unreliable" in m)
    assert [m.split(":")[0] for m in flagged] == [
        "column 'cr_h'", "column 'k_h'", "column 'n_h'", "column 'na_h'"]  # one per column
    assert flagged[2].startswith("column 'n_h': 60 row(s) flagged unreliable by 'n_h_flags'")
    work, raw = prepared.work, prepared.table
    with fits.open(ASTRA) as hdul:
        n_h, flags = hdul[2].data["n_h"], hdul[2].data["n_h_flags"]
    hit = (flags != 0) & np.isfinite(n_h)
    assert hit.sum() == 60 and np.isnan(work.loc[hit, "N_FE"]).all()
    assert np.isnan(work.loc[hit, "N_FE_ERR"]).all() and np.isfinite(work.loc[~hit, "N_FE"]).any()
    assert np.isfinite(raw.loc[~hit & np.isfinite(n_h), "n_h"]).all()
    cuts = quality_cuts(work)
    assert cuts.attrs["conditions"]["star_bad"] == "FLAG_BAD false"
    bad = np.asarray(raw["flag_bad"], dtype=bool)
    assert bad.sum() == 10 and (cuts["star_bad"].to_numpy() == ~bad).all()


def test_duplicates_rule_and_its_overrides():
    # mutation tried: "not_bad" dropped from DUPLICATE_PRIORITY -> the bad, higher-S/N SDSS-V
    # rows 101-103 were kept over their good DR17 rows 20-22 (and then cut as bad)
    work = _prepared()[1].work
    keep = quality_cuts(work)["duplicate"].to_numpy()
    kept_sdss5 = [row for row in SDSS5_OF if keep[row]]
    assert kept_sdss5 == [95, 96, 97, 98, 99, 100, 105, 107, 108]
    assert not keep[[10, 11, 12, 13, 14, 15, 30, 31, 2]].any()  # their SDSS-V rows won
    assert keep[[20, 21, 22]].all()  # a bad row never wins, whatever its S/N
    # the highest S/N first: the bad rows win, and their stars are then lost to the star_bad cut
    cuts = quality_cuts(work, duplicates=["snr"])
    assert cuts["duplicate"].to_numpy()[[101, 102, 103]].all()
    lost = ~cuts.to_numpy().all(axis=1)
    assert lost[[20, 21, 22, 101, 102, 103]].all()
    # the DR17 re-reduction over SDSS-V, through the configuration
    _, prepared, _ = _prepared({"sample": {"exclude_duplicates": ["not_bad", "dr17", "snr"]}})
    assert not quality_cuts(prepared.work, duplicates=["not_bad", "dr17", "snr"])[
        "duplicate"].to_numpy()[95:108].any()
    # every row kept: release and telescope are there for the calibration's nuisances
    cuts = quality_cuts(work, duplicates=False)
    assert list(cuts.columns) == ["star_bad"]
    assert set(work["RELEASE"]) == {"dr17", "sdss5"} and set(work["TELESCOPE"]) == {"apo25m",
                                                                                    "apo1m"}
    with pytest.raises(ValueError, match=r"unknown criteria \['telescope'\]"):
        quality_cuts(work, duplicates=["telescope"])


def test_x_h_is_converted_to_x_fe_with_the_stated_error_propagation():
    # mutation tried: np.hypot replaced by the [X/H] error alone -> MG_FE_ERR == e_mg_h, failed
    plan, prepared, _ = _prepared()
    raw, work = prepared.table, prepared.work
    mg, fe = raw["mg_h"].to_numpy(float), raw["fe_h"].to_numpy(float)
    np.testing.assert_array_equal(work["MG_FE"].to_numpy(), mg - fe)
    np.testing.assert_array_equal(work["MG_FE_ERR"].to_numpy(),
                                  np.hypot(raw["e_mg_h"].to_numpy(float),
                                           raw["e_fe_h"].to_numpy(float)))
    assert "MG_FE" in plan.abundances and "mg_h" in raw and "MG_H" not in work
    # the DR17 rows' [X/Fe] come back to float32 rounding
    with fits.open(DR17) as hdul:
        dr17 = np.ma.filled(np.ma.asarray(hdul[1].data["MG_FE"], dtype=float), np.nan)
    np.testing.assert_allclose(work["MG_FE"].to_numpy()[:N_DR17], dr17, atol=2e-7, rtol=0)
    # DR17's convention for the error, or [X/H] kept as it is
    work = _prepared({"catalogue": {"x_fe_error": "dr17"}})[1].work
    np.testing.assert_array_equal(work["MG_FE_ERR"].to_numpy(), raw["e_mg_h"].to_numpy(float))
    plan, prepared, _ = _prepared({"catalogue": {"abundances": "x_h"}})
    assert plan.abundances[:3] == ["FE_H", "C_H", "N_H"] and "MG_FE" not in prepared.work
    np.testing.assert_array_equal(prepared.work["MG_H"].to_numpy(), mg)
    with pytest.raises(ValueError, match=r"\[catalogue\] abundances must be one of"):
        _prepared({"catalogue": {"abundances": "x_m"}})


def test_an_x_h_without_fe_h_is_nan_with_a_warning():
    frame = pd.DataFrame({"fe_h": [0.1, np.nan, -0.2], "e_fe_h": [0.01, np.nan, 0.01],
                          "mg_h": [0.2, 0.3, np.nan], "e_mg_h": [0.02, 0.02, np.nan]})
    cmap = resolve_columns(frame.columns)
    from sklearn_selfcal.columns import canonical_frame

    with pytest.warns(DataQualityWarning, match=r"'MG_FE' \(mg_h - fe_h\): 1 row\(s\) have "
                                                r"\[X/H\] but no \[Fe/H\] \('fe_h'\); set to NaN"):
        out = canonical_frame(frame, cmap)
    np.testing.assert_allclose(out["MG_FE"], [0.1, np.nan, np.nan])
    np.testing.assert_allclose(out["MG_FE_ERR"], [np.hypot(0.02, 0.01), np.nan, np.nan])
    pd.testing.assert_frame_equal(frame, pd.DataFrame({"fe_h": [0.1, np.nan, -0.2],
                                                       "e_fe_h": [0.01, np.nan, 0.01],
                                                       "mg_h": [0.2, 0.3, np.nan],
                                                       "e_mg_h": [0.02, 0.02, np.nan]}))


def test_ratios_and_atmospheric_parameters_keep_their_meaning():
    # c_12_13 is an isotope ratio, not an abundance: no role, never calibrated
    assert role_of("c_12_13") is None and role_of("e_c_12_13") is None
    cmap = resolve_columns(catalogue_columns(ASTRA))
    assert "c_12_13" not in cmap.columns.values()
    # the atmospheric [M/H] and [alpha/M] are relative to metallicity, as DR17's M_H and ALPHA_M
    assert (cmap["M_H"], cmap["ALPHA_M"], cmap["ALPHA_M_ERR"]) == ("m_h_atm", "alpha_m_atm",
                                                                    "e_alpha_m_atm")
    assert "ALPHA_M" not in cmap.converted and "FE_H" not in cmap.converted
    assert cmap.abundances()[0] == "FE_H" and cmap.abundances()[-1] == "ALPHA_M"
