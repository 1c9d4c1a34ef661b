"""Direct tests of the role table and its resolution (sklearn_selfcal.columns, _roles).

Each survey's own column names (read from the real files in tests/data where there is one) must
land on the right role; an explicit ``[columns]`` mapping always wins; a column never plays two
roles; a name given twice is an error naming it.
"""

from pathlib import Path

import pandas as pd
import pytest

from sklearn_selfcal.columns import (DISTANCE_SOURCES, ROLES, ColumnMap, canonical_frame,
                                     check_unique, get_role, resolve_columns, role_of)
from sklearn_selfcal.exceptions import DataQualityWarning
from sklearn_selfcal.io import catalogue_columns

DATA = Path(__file__).parent / "data"


def _columns(name, hdu="auto"):
    return catalogue_columns(DATA / name, hdu)


# the columns of each survey that play a role in the method, as the survey spells them
SPELLINGS = {
    "dr17": (_columns("apogee_dr17_allstar_95stars_kepler.fits"), {
        "star_id": "APOGEE_ID", "ra": "RA", "dec": "DEC", "parallax": "GAIAEDR3_PARALLAX",
        "parallax_error": "GAIAEDR3_PARALLAX_ERROR", "pmra": "GAIAEDR3_PMRA",
        "pmdec_error": "GAIAEDR3_PMDEC_ERROR", "radial_velocity": "VHELIO_AVG",
        "radial_velocity_error": "VERR", "gaia_radial_velocity": "GAIAEDR3_DR2_RADIAL_VELOCITY",
        "g_mag": "GAIAEDR3_PHOT_G_MEAN_MAG", "j_mag": "J", "k_mag_error": "K_ERR", "logg": "LOGG",
        "teff": "TEFF", "snr": "SNR", "aspcapflag": "ASPCAPFLAG", "extratarg": "EXTRATARG",
        "source_id": "GAIAEDR3_SOURCE_ID", "FE_H": "FE_H", "MG_FE_ERR": "MG_FE_ERR",
        "CE_FE_FLAG": "CE_FE_FLAG", "M_H": "M_H", "ALPHA_M": "ALPHA_M", "telescope": "TELESCOPE"}),
    "dr16": (_columns("apogee_dr16_allstar_33stars.fits"), {
        "parallax": "GAIA_PARALLAX", "pmdec": "GAIA_PMDEC", "source_id": "GAIA_SOURCE_ID",
        "rp_mag": "GAIA_PHOT_RP_MEAN_MAG", "w2_mag": "WISE_4_5", "w2_mag_error": "WISE_4_5_ERR",
        "gaia_radial_velocity": "GAIA_RADIAL_VELOCITY", "logg": "LOGG"}),
    "sdss5": (_columns("astraAllStarASPCAP-dr17rows.fits.gz"), {
        "sdss_id": "sdss_id", "star_id": "sdss4_apogee_id", "source_id": "gaia_dr3_source_id",
        "catalogid": "catalogid", "release": "release", "telescope": "telescope", "ra": "ra",
        "parallax": "plx", "parallax_error": "e_plx", "pmdec": "pmde", "pmdec_error": "e_pmde",
        "radial_velocity": "v_rad", "radial_velocity_error": "e_v_rad",
        "gaia_radial_velocity": "gaia_v_rad", "g_mag": "g_mag", "bp_mag": "bp_mag",
        "j_mag": "j_mag", "h_mag_error": "e_h_mag", "w1_mag": "w1_mag", "w2_mag_error": "e_w2_mag",
        "teff": "teff", "teff_error": "e_teff", "logg_error": "e_logg", "snr": "snr",
        "flag_bad": "flag_bad", "flag_warn": "flag_warn", "result_flags": "result_flags",
        "bailer_jones_flags": "bailer_jones_flags", "M_H": "m_h_atm", "ALPHA_M": "alpha_m_atm",
        "ALPHA_M_ERR": "e_alpha_m_atm", "FE_H": "fe_h", "FE_H_ERR": "e_fe_h",
        "FE_H_FLAG": "fe_h_flags", "MG_FE": "mg_h", "MG_FE_ERR": "e_mg_h",
        "MG_FE_FLAG": "mg_h_flags"}),
    "gaia archive": (["source_id", "ra", "dec", "parallax", "parallax_error", "pmra", "pmdec",
                      "pmra_pmdec_corr", "ruwe", "phot_g_mean_mag", "radial_velocity"], {
        "source_id": "source_id", "parallax": "parallax", "pm_correlation": "pmra_pmdec_corr",
        "ruwe": "ruwe", "g_mag": "phot_g_mean_mag", "radial_velocity": "radial_velocity"}),
    "vizier": (["RA_ICRS", "DE_ICRS", "Source", "Plx", "e_Plx", "pmRA", "e_pmRA", "pmDE", "HRV",
                "e_HRV", "Gmag", "BPmag", "Jmag", "e_Ksmag", "W1mag", "RUWE", "Teff", "logg"], {
        "ra": "RA_ICRS", "dec": "DE_ICRS", "source_id": "Source", "parallax": "Plx",
        "pmra_error": "e_pmRA", "pmdec": "pmDE", "radial_velocity": "HRV",
        "radial_velocity_error": "e_HRV", "g_mag": "Gmag", "bp_mag": "BPmag", "j_mag": "Jmag",
        "k_mag_error": "e_Ksmag", "w1_mag": "W1mag", "ruwe": "RUWE", "teff": "Teff",
        "logg": "logg"}),
}


@pytest.mark.parametrize("survey", list(SPELLINGS))
def test_each_surveys_spelling_resolves_to_its_role(survey):
    columns, expected = SPELLINGS[survey]
    cmap = resolve_columns(columns)
    assert {role: cmap.get(role) for role in expected} == expected
    assert not cmap.explicit


def test_the_table_has_one_name_and_one_canonical_name_per_role():
    names = [r.name for r in ROLES]
    canonical = [r.canonical for r in ROLES]
    assert len(set(names)) == len(names) and len(set(canonical)) == len(canonical)
    assert all(r.kind in ("float", "int", "str", "bool") for r in ROLES)
    assert get_role("parallax").unit == "mas" and role_of("e_pmde").name == "pmdec_error"
    with pytest.raises(KeyError, match="'plx' is not a role; roles are"):
        get_role("plx")
    assert role_of("not a column") is None
    # every [X/Fe] role converts from an [X/H] role of the table
    for role in ROLES:
        if role.from_h:
            assert get_role(role.from_h[0]).unit == role.unit
    assert [s.column for s in DISTANCE_SOURCES[:2]] == ["GAIAEDR3_R_MED_PHOTOGEO", "r_med_photogeo"]


def test_preference_order_canonical_then_allstar_dr17_then_dr16_then_others():
    # mutation tried: spellings tried in reverse order -> GAIA_PARALLAX (DR16) taken over DR17's
    cmap = resolve_columns(["GAIA_PARALLAX", "GAIAEDR3_PARALLAX", "Plx"])
    assert cmap["parallax"] == "GAIAEDR3_PARALLAX"
    assert resolve_columns(["Plx", "parallax", "GAIAEDR3_PARALLAX"])["parallax"] == "parallax"


def test_case_insensitive_match_comes_last():
    # mutation tried: the case-insensitive pass removed -> "LoGg" found no role
    cmap = resolve_columns(["LoGg", "E_TEFF", "Teff"])
    assert cmap["logg"] == "LoGg" and cmap["teff"] == "Teff" and cmap["teff_error"] == "E_TEFF"
    # an exact spelling wins over a case-insensitive one
    assert resolve_columns(["TEFF", "teff"])["teff"] == "TEFF"


def test_an_explicit_mapping_always_wins_and_is_reported():
    # mutation tried: the recognised spellings resolved before the mapping -> parallax = "Plx"
    cmap = resolve_columns(["Plx", "my_plx", "my_rv"],
                           {"parallax": "my_plx", "VHELIO_AVG": "my_rv"})
    assert cmap["parallax"] == "my_plx" and cmap["radial_velocity"] == "my_rv"
    assert cmap.explicit == {"parallax", "radial_velocity"}
    lines = cmap.report(["parallax", "pmra"])
    assert lines[0].split() == ["parallax", "my_plx", "(config)"]
    assert lines[1].startswith("pmra ") and 'map it with [columns] pmra = "<column>"' in lines[1]
    with pytest.raises(KeyError, match=r"\[columns\] 'plx' is not a role"):
        resolve_columns(["Plx"], {"plx": "Plx"})
    with pytest.raises(KeyError, match=r"\[columns\] parallax = 'nope': the catalogue has no "
                                       r"column 'nope'"):
        resolve_columns(["Plx"], {"parallax": "nope"})


def test_a_column_plays_one_role_only():
    # mutation tried: the "taken" check removed -> "radial_velocity" played both velocities
    cmap = resolve_columns(["radial_velocity"])
    assert cmap["radial_velocity"] == "radial_velocity"
    assert "gaia_radial_velocity" not in cmap
    # mapped explicitly to one role, a column is not taken by another role's spelling
    cmap = resolve_columns(["radial_velocity", "HRV"], {"gaia_radial_velocity": "radial_velocity"})
    assert (cmap["gaia_radial_velocity"], cmap["radial_velocity"]) == ("radial_velocity", "HRV")
    assert len(set(cmap.columns.values())) == len(cmap.columns)


def test_a_canonical_name_taken_by_another_column_is_kept_under_a_new_name():
    frame = pd.DataFrame({"Plx": [1.0, 2.0], "parallax": [9.0, 9.0]})
    cmap = resolve_columns(frame.columns, {"parallax": "Plx"})
    with pytest.warns(DataQualityWarning, match="column 'Plx' plays the role of 'parallax', but "
                                                "the catalogue also has a column 'parallax'"):
        out = canonical_frame(frame, cmap)
    assert out["parallax"].tolist() == [1.0, 2.0] and out["parallax_input"].tolist() == [9.0, 9.0]
    assert list(frame.columns) == ["Plx", "parallax"]  # not modified


def test_duplicate_column_names_are_an_error_naming_them():
    # mutation tried: check_unique's call removed from resolve_columns -> no error
    with pytest.raises(ValueError, match=r"the catalogue has duplicate column name\(s\) "
                                         r"\['RA', 'LOGG'\]"):
        resolve_columns(["RA", "LOGG", "RA", "LOGG", "RA", "DEC"])
    with pytest.raises(ValueError, match=r"cat.fits has duplicate column name\(s\) \['x'\]"):
        check_unique(["x", "y", "x"], "cat.fits")
    check_unique(["x", "X"])  # names differ by case: two columns


def test_restrict_keeps_only_the_columns_read_and_conversions_with_both_halves():
    cmap = resolve_columns(["fe_h", "e_fe_h", "mg_h", "e_mg_h", "ra"])
    assert cmap.converted == {"MG_FE": "FE_H", "MG_FE_ERR": "FE_H_ERR"}
    kept = cmap.restrict(["mg_h", "e_mg_h", "fe_h", "ra"])  # e_fe_h not read
    assert kept.converted == {"MG_FE": "FE_H"} and "MG_FE_ERR" not in kept
    assert "ra" in kept and "MG_FE_ERR" in kept.missing
    assert isinstance(kept, ColumnMap) and kept.x_fe_error == cmap.x_fe_error


def test_x_h_is_converted_only_with_fe_h_and_an_explicit_x_h_stays_explicit():
    # no [Fe/H]: the [X/H] role keeps the column, nothing is converted
    cmap = resolve_columns(["mg_h", "e_mg_h"])
    assert cmap["MG_H"] == "mg_h" and "MG_FE" not in cmap and not cmap.converted
    assert cmap.abundances() == []  # an [X/H] is calibrated only when asked ("x_h")
    assert resolve_columns(["mg_h"], abundances="x_h").abundances() == ["MG_H"]
    # a column mapped to an [X/H] role is converted, and stays marked as the user's
    cmap = resolve_columns(["fe_h", "magnesium"], {"MG_H": "magnesium"})
    assert cmap["MG_FE"] == "magnesium" and cmap.explicit == {"MG_FE"}
    assert cmap.report(["MG_FE"])[0].split() == ["MG_FE", "magnesium", "-", "fe_h", "(config)"]
    with pytest.raises(ValueError, match=r"\[catalogue\] x_fe_error must be one of"):
        resolve_columns(["fe_h"], x_fe_error="correlated")


def test_canonical_frame_renames_and_leaves_the_others():
    frame = pd.DataFrame({"RA_ICRS": [10.0], "Plx": [0.5], "mine": ["a"]})
    out = canonical_frame(frame, resolve_columns(frame.columns))
    assert list(out.columns) == ["ra", "parallax", "mine"]
    assert out["parallax"].tolist() == [0.5] and list(frame.columns) == ["RA_ICRS", "Plx", "mine"]

