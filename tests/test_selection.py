"""Tests of the paper's sample cuts and training filter (sklearn_selfcal.selection)."""

import numpy as np
import pandas as pd
import pytest

from sklearn_selfcal.selection import (
    PAPER_TRAINING_BOUNDS,
    bounds_cuts,
    cut_counts,
    disk_sample_cuts,
    disk_sample_mask,
    training_mask,
    within_bounds,
)


def test_within_bounds_is_strict_and_nan_fails():
    v = np.array([-1.0, 0.0, 0.5, 1.0, 2.0, np.nan])
    assert within_bounds(v, 0.0, 1.0).tolist() == [False, False, True, False, False, False]
    assert within_bounds(v, None, 1.0).tolist() == [True, True, True, False, False, False]
    assert within_bounds(v).tolist() == [True] * 5 + [False]


def test_paper_training_bounds_values_and_read_only():
    # section 3.2: 0 < J_R < 400, -5000 < L_z < 1000, 0 < J_z < 100 kpc km/s, x < 0 kpc
    assert dict(PAPER_TRAINING_BOUNDS) == {"J_R": (0.0, 400.0), "L_z": (-5000.0, 1000.0),
                                           "J_z": (0.0, 100.0), "x": (None, 0.0)}
    with pytest.raises(TypeError):
        PAPER_TRAINING_BOUNDS["J_R"] = (0, 1)


def _training_frame():
    return pd.DataFrame({
        #        ok     J_R=0  J_R=400 L_z=-5000 J_z=100 x=0    x>0    NaN J_R
        "J_R": [10.0, 0.0, 400.0, 10.0, 10.0, 10.0, 10.0, np.nan],
        "L_z": [-2000.0, -2000.0, -2000.0, -5000.0, -2000.0, -2000.0, -2000.0, -2000.0],
        "J_z": [5.0, 5.0, 5.0, 5.0, 100.0, 5.0, 5.0, 5.0],
        "x": [-8.0, -8.0, -8.0, -8.0, -8.0, 0.0, 3.0, -8.0],
    }, index=[10, 11, 12, 13, 14, 15, 16, 17])


def test_training_mask_paper_filter_row_by_row():
    X = _training_frame()
    before = X.copy()
    mask = training_mask(X)
    assert mask.tolist() == [True] + [False] * 7
    pd.testing.assert_frame_equal(X, before)  # input untouched
    cuts = bounds_cuts(X)
    assert list(cuts.columns) == ["J_R", "L_z", "J_z", "x"]
    assert cuts.index.equals(X.index)
    assert cuts.attrs["conditions"]["J_R"] == "0 < J_R < 400"
    assert cuts.attrs["conditions"]["x"] == "x < 0"


def test_training_mask_custom_bounds_and_mapping_input():
    X = {"a": np.array([1.0, 2.0, 3.0]), "b": np.array([0.0, 0.0, 9.0])}
    assert training_mask(X, {"a": (1.5, None)}).tolist() == [False, True, True]
    assert training_mask(X, {"a": (None, 3.5), "b": (None, 1.0)}).tolist() == [True, True, False]


def test_missing_column_is_named():
    with pytest.raises(KeyError, match="J_z"):
        training_mask(pd.DataFrame({"J_R": [1.0], "L_z": [-1.0], "x": [-1.0]}))
    with pytest.raises(KeyError, match="APOGEE_ID"):
        disk_sample_cuts(pd.DataFrame({"z": [0.0], "R": [8.0], "v_z": [0.0], "LOGG": [2.0]}),
                         exclude_ids=["a"])


def _disk_frame():
    tan6 = np.tan(np.deg2rad(6.0))
    return pd.DataFrame({
        "APOGEE_ID": ["A", "B", "C", "D", "E", "F", "G", "H  ", "I"],
        # in: |z| = 1 exactly; in the wedge at R = 20; out of wedge at R = 8; just outside wedge
        "z": [1.0, -1.5, 1.5, 20 * tan6 + 1e-6, 0.1, 0.1, 0.1, 0.1, np.nan],
        "R": [8.0, 20.0, 8.0, 20.0, 8.0, 8.0, 8.0, 8.0, 8.0],
        "v_z": [0.0, 0.0, 0.0, 0.0, -99.9, 100.0, 0.0, 0.0, 0.0],
        "LOGG": [2.2, 1.0, 1.0, 1.0, 1.0, 1.0, 2.2001, 1.0, 1.0],
    })


def test_disk_sample_cuts_row_by_row():
    X = _disk_frame()
    cuts = disk_sample_cuts(X, exclude_ids=["H", "ZZ"])
    assert list(cuts.columns) == ["disk", "v_z", "logg", "exclude_ids"]
    assert cuts["disk"].tolist() == [True, True, False, False, True, True, True, True, False]
    assert cuts["v_z"].tolist() == [True] * 5 + [False] + [True] * 3  # |v_z| < 100 strictly
    assert cuts["logg"].tolist() == [True] * 6 + [False] + [True] * 2  # LOGG <= 2.2 inclusive
    # the ID column is blank-padded in FITS files: "H  " matches "H"
    assert cuts["exclude_ids"].tolist() == [True] * 7 + [False, True]
    mask = disk_sample_mask(X, exclude_ids=["H", "ZZ"])
    assert mask.tolist() == [True, True, False, False, True, False, False, False, False]


def test_disk_cut_thresholds_are_parameters():
    X = _disk_frame()
    # no wedge: the R = 20 kpc star at |z| = 1.5 kpc is no longer in the disk
    assert not disk_sample_cuts(X, wedge_angle=None)["disk"].iloc[1]
    # a thicker slab takes it back, and a wider wedge takes the R = 8 kpc star at |z| = 1.5
    assert disk_sample_cuts(X, z_max=1.6, wedge_angle=None)["disk"].iloc[2]
    assert disk_sample_cuts(X, wedge_angle=11.0)["disk"].iloc[2]
    assert disk_sample_cuts(X, vz_max=100.1)["v_z"].iloc[5]
    assert disk_sample_cuts(X, logg_max=2.3)["logg"].iloc[6]
    renamed = X.rename(columns={"LOGG": "logg_spec"})
    assert disk_sample_cuts(renamed, logg_column="logg_spec")["logg"].tolist() == \
        disk_sample_cuts(X)["logg"].tolist()


def test_cut_counts_alone_and_sequential():
    X = _disk_frame()
    counts = cut_counts(disk_sample_cuts(X, exclude_ids=["H"]), bounds_cuts(
        X.assign(J_R=[1.0] * 8 + [500.0]), {"J_R": (0, 400)}))
    assert list(counts.index) == ["disk", "v_z", "logg", "exclude_ids", "J_R", "all"]
    assert counts.loc["disk", "n_pass"] == 6 and counts.loc["disk", "n_fail"] == 3
    # sequential: disk leaves 6; |v_z| removes F; logg removes G; the ID removes H; J_R removes
    # only I, which the disk cut already removed
    assert counts["n_remaining"].tolist() == [6, 5, 4, 3, 3, 3]
    assert counts["n_removed"].tolist() == [3, 1, 1, 1, 0, 6]
    assert counts.loc["J_R", "n_fail"] == 1
    assert counts.loc["v_z", "condition"] == "|v_z| < 100 km/s"
    with pytest.raises(ValueError, match="unique"):
        cut_counts(disk_sample_cuts(X), disk_sample_cuts(X))


def test_cuts_on_simulated_survey_match_direct_expressions():
    from sklearn_selfcal.datasets import make_survey

    s = make_survey(n_stars=1500, n_pixels=0, random_state=3)
    X = pd.concat([s.frame, s.truth[["x", "z", "R", "v_z", "J_R", "J_z", "L_z"]]], axis=1)
    omega_cen = X["APOGEE_ID"].iloc[:7].tolist()
    mask = disk_sample_mask(X, exclude_ids=omega_cen)
    z, R = X["z"].abs(), X["R"]
    direct = (((z <= 1) | (z <= R * np.tan(np.deg2rad(6)))) & (X["v_z"].abs() < 100)
              & (X["LOGG"] <= 2.2) & ~X["APOGEE_ID"].isin(omega_cen))
    np.testing.assert_array_equal(mask, direct.to_numpy())
    assert not mask[:7].any()
    train = training_mask(X)
    direct = ((X.J_R > 0) & (X.J_R < 400) & (X.L_z > -5000) & (X.L_z < 1000) & (X.J_z > 0)
              & (X.J_z < 100) & (X.x < 0))
    np.testing.assert_array_equal(train, direct.to_numpy())
    assert 0 < train.sum() < len(X)
