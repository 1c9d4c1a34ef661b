"""Direct tests of the one cleaning every input goes through (sklearn_selfcal.cleaning).

Sentinels, the writers' fill values, masks, physical ranges, per-element flags and duplicate names:
each bad value becomes NaN (or a missing identifier/text) with one DataQualityWarning per column
naming it and counting its rows; rows are never dropped or reordered and the input never modified.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from astropy.table import MaskedColumn, Table

from sklearn_selfcal.cleaning import (as_frame, clean_catalogue, clean_values, frame_if_table,
                                      masked_to_nan, sentinel_mask)
from sklearn_selfcal.columns import get_role, resolve_columns
from sklearn_selfcal.exceptions import DataQualityWarning


def _clean(frame, **kwargs):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out, report = clean_catalogue(frame, **kwargs)
    return out, report, [str(w.message) for w in record if w.category is DataQualityWarning]


def test_sentinels_match_in_float32_but_not_a_physical_value_next_to_them():
    # mutation tried: the comparison made in float64 -> float32(-9999.99) was not a sentinel
    values = np.array([np.float32(-9999.99), -9999.0, -999.99, float("-9999.9902"), -999.9902,
                       -9999.98, 1.5, np.nan])
    assert sentinel_mask(values).tolist() == [True, True, True, True, False, False, False, False]
    # 99.999 is "no measurement" for magnitudes only
    assert not sentinel_mask(np.array([99.999])).any()
    assert sentinel_mask(np.array([99.999, 12.0]), (99.999,)).tolist() == [True, False]


def test_clean_values_sentinels_ranges_and_text():
    with pytest.warns(DataQualityWarning) as record:
        cleaned, counts = clean_values(["12.1", "99.999", "", "--", "n/a", "-3"], "Jmag",
                                       ids=["a", "b", "c", "d", "e", "f"])
    np.testing.assert_array_equal(cleaned, [12.1, np.nan, np.nan, np.nan, np.nan, -3.0])
    assert counts == {"not_a_number": 1, "sentinel": 1}  # "" and "--" are blanks: missing, quiet
    assert [str(w.message) for w in record] == [
        "column 'Jmag': 1 row(s) are not numbers; set to NaN (row 4 (e))",
        "column 'Jmag': 1 row(s) hold a 'no measurement' value (99.999); set to NaN (row 1 (b))"]
    # the physical range, with right ascension's open upper end
    # mutation tried: high_open ignored -> ra = 360 kept
    with pytest.warns(DataQualityWarning, match=r"outside the physical range \[0, 360\) deg; set "
                                                r"to NaN \(rows 1, 2\)"):
        cleaned, counts = clean_values([0.0, 360.0, -1.0, 359.9], "ra")
    assert np.isnan(cleaned).tolist() == [False, True, True, False]
    cleaned, counts = clean_values([120.0], "DEC", ranges=False, warn=False)
    assert cleaned.tolist() == [120.0] and counts == {}
    with pytest.warns(DataQualityWarning, match=r"\[-90, 90\] deg"):
        assert np.isnan(clean_values([120.0], "DEC")[0][0])


def test_masked_entries_are_nan_never_the_hidden_value():
    masked = np.ma.array([1.0, -5.0, 3.0], mask=[False, True, False])
    out, not_numbers = masked_to_nan(masked)
    assert np.isnan(out).tolist() == [False, True, False] and not not_numbers.any()
    out, _ = masked_to_nan(pd.Series(pd.array([1, None, 3], dtype="Int64")))
    assert np.isnan(out).tolist() == [False, True, False]
    table = Table({"LOGG": MaskedColumn([2.0, 1e9], mask=[False, True]),
                   "SNR": MaskedColumn([10, 20], mask=[True, False]),
                   "TELESCOPE": MaskedColumn(["apo25m", "x"], mask=[False, True])})
    frame = as_frame(table)
    assert np.isnan(frame["LOGG"][1]) and pd.isna(frame["SNR"][0])
    assert pd.isna(frame["TELESCOPE"][1])
    assert frame["SNR"][1] == 20 and frame["TELESCOPE"][0] == "apo25m"
    assert frame_if_table(table).equals(frame) and frame_if_table(frame) is frame
    with pytest.raises(TypeError, match="DataFrame or an astropy Table"):
        as_frame([1, 2])


def test_one_warning_per_column_counts_in_the_report_rows_kept_input_unchanged():
    frame = pd.DataFrame({"APOGEE_ID": ["a", "b", "c", "d"],
                          "LOGG": [2.0, -9999.99, 7.5, 1.0],
                          "TEFF": [4500.0, 4600.0, -9999.99, 4700.0],
                          "MIN_H": [-9999.99, 1.0, 2.0, -9999.99],
                          "label": ["x", "y", "z", "w"]}, index=[10, 11, 12, 13])
    before = frame.copy(deep=True)
    out, report, messages = _clean(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert list(out.index) == [10, 11, 12, 13] and list(out.columns) == list(frame.columns)
    assert report == {"LOGG": {"sentinel": 1, "out_of_range": 1}, "TEFF": {"sentinel": 1},
                      "MIN_H": {"sentinel": 2}}
    assert out.attrs["cleaning"] == report
    assert messages == [
        "column 'LOGG': 1 row(s) hold a 'no measurement' value (-9999.99); set to NaN (row 1 (b))",
        "column 'LOGG': 1 row(s) are outside the physical range [-1, 6] dex; set to NaN "
        "(row 2 (c))",
        "column 'TEFF': 1 row(s) hold a 'no measurement' value (-9999.99); set to NaN (row 2 (c))",
        "'no measurement' sentinels (-9999, -9999.99, ...) set to NaN in 1 other column(s): "
        "MIN_H (2)"]
    np.testing.assert_array_equal(out["LOGG"], [2.0, np.nan, np.nan, 1.0])
    # a second pass finds nothing new and keeps the counts of the first
    again, report2, messages2 = _clean(out)
    assert messages2 == [] and report2 == report


def test_flagged_abundances_and_their_errors_become_nan():
    # mutation tried: _flag_columns returned nothing -> MG_FE kept where MG_FE_FLAG = 8
    frame = pd.DataFrame({"MG_FE": [0.1, 0.2, 0.3, np.nan], "MG_FE_ERR": [0.01, 0.02, 0.03, 0.04],
                          "MG_FE_FLAG": pd.array([0, 8, None, 16], dtype="Int64"),
                          "SI_FE": [0.1, 0.2, 0.3, 0.4], "SI_FE_ERR": [0.01, 0.0, np.nan, 0.02]})
    out, report, messages = _clean(frame)
    # a non-zero or missing flag is unreliable; a NaN value is not counted again
    np.testing.assert_array_equal(out["MG_FE"], [0.1, np.nan, np.nan, np.nan])
    np.testing.assert_array_equal(out["MG_FE_ERR"], [0.01, np.nan, np.nan, 0.04])
    assert report["MG_FE"] == {"flagged": 2}
    # an abundance without a usable uncertainty cannot be weighted
    np.testing.assert_array_equal(out["SI_FE"], [0.1, np.nan, np.nan, 0.4])
    assert report["SI_FE"] == {"no_uncertainty": 2}
    assert sorted(m.split(":")[0] for m in messages) == ["column 'MG_FE'", "column 'SI_FE'"]
    kept, report, _ = _clean(frame, flags=False)
    assert kept["MG_FE"][1] == 0.2 and "MG_FE" not in report


def test_astra_flags_and_fill_values():
    # astra's names: <x>_h_flags, -1 identifiers, empty strings, False booleans, 0 bit fields
    frame = pd.DataFrame({"sdss_id": np.array([2**60 + 3, -1, 7]),
                          "release": ["sdss5", "", "dr17"], "flag_bad": [False, True, False],
                          "fe_h": [0.1, -0.2, 0.0], "e_fe_h": [0.01, 0.01, 0.01],
                          "fe_h_flags": np.array([0, 2**9, 0]),
                          "result_flags": np.array([0, 0, 0])})
    before = frame.copy(deep=True)
    out, report, messages = _clean(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert out["sdss_id"].dtype == "Int64" and out["sdss_id"][0] == 2**60 + 3  # exact
    assert out["sdss_id"].isna().tolist() == [False, True, False]
    assert out["release"].isna().tolist() == [False, True, False]
    assert out["flag_bad"].tolist() == [False, True, False]
    np.testing.assert_array_equal(out["fe_h"], [0.1, np.nan, 0.0])
    assert report == {"sdss_id": {"fill_value": 1}, "release": {"fill_value": 1},
                      "fe_h": {"flagged": 1}}
    assert messages[0] == ("column 'sdss_id': 1 row(s) hold no identifier (-1: outside [1, inf], "
                           "a writer's fill value); set to missing (row 1)")
    assert messages[1] == "column 'release': 1 row(s) are empty strings; set to missing (row 1)"


def test_gaia_source_ids_of_0_or_below_are_missing_whatever_the_dtype():
    # DR16 ships GAIA_SOURCE_ID as float64 with -9999; DR17 as int64; VizieR as Int64 with NA
    for values in (np.array([5.2e17, -9999.0]), np.array([5, 0]), pd.array([5, -9999],
                                                                           dtype="Int64")):
        out, report, messages = _clean(pd.DataFrame({"GAIA_SOURCE_ID": values}))
        assert pd.isna(out["GAIA_SOURCE_ID"][1]) and not pd.isna(out["GAIA_SOURCE_ID"][0])
        assert report == {"GAIA_SOURCE_ID": {"fill_value": 1}} and len(messages) == 1


def test_duplicate_column_names_are_an_error_naming_them():
    # mutation tried: check_unique's call removed from clean_catalogue -> no error with a map
    frame = pd.DataFrame([[1.0, 2.0, 3.0]], columns=["LOGG", "TEFF", "LOGG"])
    for column_map in (None, resolve_columns(["LOGG", "TEFF"])):
        with pytest.raises(ValueError, match=r"duplicate column name\(s\) \['LOGG'\]"):
            clean_catalogue(frame, column_map)


def test_magnitude_sentinels_are_those_of_magnitude_roles():
    assert 99.999 in get_role("w2_mag").sentinels and 99.999 not in get_role("logg").sentinels
    out, report, _ = _clean(pd.DataFrame({"H": [12.0, 99.999], "LOGG": [2.0, 2.5]}))
    assert np.isnan(out["H"][1]) and report == {"H": {"sentinel": 1}}
