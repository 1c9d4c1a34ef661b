"""Tests of the parallax model's features (SpectroPhotometricFeatures) and training-set cuts."""

import numpy as np
import pandas as pd
import pytest

from sklearn_selfcal.parallax_features import (LSF_COLUMNS, MAGNITUDE_COLUMNS,
                                               SpectroPhotometricFeatures, gaia_training_cuts,
                                               gaia_training_mask, join_spectra)
from sklearn_selfcal.selection import cut_counts


def _catalogue(n, rng):
    frame = pd.DataFrame({c: rng.uniform(8, 16, n) for c in MAGNITUDE_COLUMNS})
    for c in MAGNITUDE_COLUMNS:
        frame[c + ("_ERR" if c in ("J", "H", "K") else "_error")] = rng.uniform(0.01, 0.05, n)
    for c in LSF_COLUMNS:
        frame[c] = rng.normal(size=n)
    frame["APOGEE_ID"] = [f"2M{i:08d}" for i in range(n)]
    return frame


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    n, p = 40, 6
    flux = rng.uniform(0.5, 1.05, (n, p)).astype(np.float32)
    err = np.full((n, p), 0.01, dtype=np.float32)
    flux[0, 1], err[0, 1] = 0.0, 1e10          # APOGEE-style bad pixel
    flux[1, 2] = np.nan                         # missing pixel
    flux[2, 3] = 3.0                            # above the clip range
    flux[3, 4] = 0.001                          # below the clip range (still good)
    err[4, 5] = 5.0                             # error above max_flux_err
    return join_spectra(_catalogue(n, rng), flux, err), flux, err


def test_features_layout_log_clip_and_imputation(table):
    X, flux, err = table
    before = X.copy()
    features = SpectroPhotometricFeatures().fit(X)
    out = features.transform(X)
    pd.testing.assert_frame_equal(X, before)          # input never modified
    p = flux.shape[1]
    assert out.shape == (len(X), p + len(MAGNITUDE_COLUMNS) + len(LSF_COLUMNS))
    assert out.dtype == np.float32
    names = features.get_feature_names_out()
    assert list(names[:p]) == [f"LOGFLUX_{i:04d}" for i in range(p)]
    assert list(names[p:]) == list(MAGNITUDE_COLUMNS) + list(LSF_COLUMNS)

    good = np.ones_like(flux, dtype=bool)
    good[0, 1] = good[1, 2] = good[4, 5] = False
    expected = np.log(np.clip(flux, 0.01, 1.5))
    np.testing.assert_allclose(out[:, :p][good], expected[good], rtol=1e-6)
    assert out[2, 3] == pytest.approx(np.log(1.5))      # clipped high
    assert out[3, 4] == pytest.approx(np.log(0.01))     # clipped low
    # bad pixels get the pixel's median log-flux over the good training pixels
    for (i, j) in [(0, 1), (1, 2), (4, 5)]:
        col_good = good[:, j]
        med = np.median(np.log(np.clip(flux[col_good, j], 0.01, 1.5)))
        assert out[i, j] == pytest.approx(med, rel=1e-6)
    np.testing.assert_allclose(out[:, p:p + 8], X[list(MAGNITUDE_COLUMNS)].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(out[:, p + 8:], X[list(LSF_COLUMNS)].to_numpy(), rtol=1e-6)


def test_continuum_imputation_and_pandas_output(table):
    X, _, _ = table
    out = SpectroPhotometricFeatures(impute="continuum").set_output(transform="pandas").fit(X)
    frame = out.transform(X)
    assert isinstance(frame, pd.DataFrame)
    assert frame.loc[0, "LOGFLUX_0001"] == 0.0 and frame.loc[4, "LOGFLUX_0005"] == 0.0
    assert frame.index.equals(X.index)


def test_feature_uncertainties(table):
    X, flux, err = table
    features = SpectroPhotometricFeatures().fit(X)
    e = features.transform_err(X)
    p = flux.shape[1]
    assert e.shape == features.transform(X).shape
    # good pixel: first-order propagation through the log
    assert e[5, 0] == pytest.approx(err[5, 0] / flux[5, 0], rel=1e-6)
    assert e[2, 3] == pytest.approx(err[2, 3] / 1.5, rel=1e-6)        # clipped flux
    # imputed pixel: the training stars' robust spread of that pixel's log-flux
    assert e[0, 1] == pytest.approx(features.impute_err_[1], rel=1e-6) and e[0, 1] > 0
    np.testing.assert_allclose(e[:, p + 3], X["J_ERR"], rtol=1e-6)
    np.testing.assert_allclose(e[:, p], X["phot_g_mean_mag_error"], rtol=1e-6)
    assert np.all(e[:, p + 8:] == 0)                                     # LSF moments


def test_clear_errors(table):
    X, _, _ = table
    with pytest.raises(KeyError, match="w2mpro"):
        SpectroPhotometricFeatures().fit(X.drop(columns="w2mpro"))
    with pytest.raises(KeyError, match="FLUX_"):
        SpectroPhotometricFeatures().fit(X[list(MAGNITUDE_COLUMNS) + list(LSF_COLUMNS)])
    bad = X.copy()
    bad.loc[3, "H"] = np.nan
    with pytest.raises(ValueError, match="'H'"):
        SpectroPhotometricFeatures().fit(bad)
    features = SpectroPhotometricFeatures().fit(X)
    with pytest.raises(KeyError, match="FLUX_0002"):
        features.transform(X.drop(columns="FLUX_0002"))
    with pytest.raises(KeyError, match="FLUX_ERR_0000"):
        features.transform(X.drop(columns="FLUX_ERR_0000"))
    with pytest.raises(TypeError, match="DataFrame"):
        SpectroPhotometricFeatures().fit(X.filter(like="FLUX_").to_numpy())
    with pytest.raises(ValueError, match="flux_range"):
        SpectroPhotometricFeatures(flux_range=(1.0, 0.5)).fit(X)


def test_array_input_is_a_flux_block():
    rng = np.random.default_rng(1)
    flux = rng.uniform(0.6, 1.0, (20, 5))
    flux[0, 0] = -1.0
    tr = SpectroPhotometricFeatures(magnitude_columns=(), lsf_columns=(), flux_err_prefix=None)
    out = tr.fit_transform(flux)
    assert out.shape == (20, 5)
    np.testing.assert_allclose(out[1:, 0], np.log(flux[1:, 0]), rtol=1e-6)
    assert out[0, 0] == pytest.approx(np.median(np.log(flux[1:, 0])), rel=1e-6)
    assert list(tr.get_feature_names_out())[:2] == ["LOGFLUX_0000", "LOGFLUX_0001"]


def test_join_spectra_checks_shapes():
    frame = _catalogue(3, np.random.default_rng(2))
    with pytest.raises(ValueError, match="spectra"):
        join_spectra(frame, np.ones((4, 2)))
    with pytest.raises(ValueError, match="spectra_err"):
        join_spectra(frame, np.ones((3, 2)), np.ones((3, 3)))
    joined = join_spectra(frame, np.ones((3, 2)))
    assert list(joined.columns[-2:]) == ["FLUX_0000", "FLUX_0001"]
    assert "FLUX_0000" not in frame.columns


def _gaia_frame():
    g = np.array([12.0, 12.0, 12.0, 12.0, 12.0, 21.0, 21.0, 12.0])
    n_obs = np.full(8, 305.0)
    # unit-weight error sqrt(chi2 / (n - 5)); its limit is 1.2 max(1, exp(-0.2 (G - 19.5))):
    # 1.2 exp(1.5) = 5.38 at G = 12 (looser for bright stars), 1.2 at G = 21
    lim12 = 1.2 * np.exp(1.5)
    uwe = np.array([1.0, lim12 * 0.99, lim12 * 1.01, 1.0, 1.0, 1.19, 1.21, 1.0])
    frame = pd.DataFrame({
        "parallax": [0.2, -0.1, 0.2, np.nan, 0.2, 0.2, 0.2, 0.2],
        "parallax_error": [0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.0],
        "visibility_periods_used": [9, 9, 9, 9, 7, 9, 9, 9],
        "astrometric_chi2_al": uwe**2 * (n_obs - 5),
        "astrometric_n_good_obs_al": n_obs,
    })
    for c in MAGNITUDE_COLUMNS:
        frame[c] = g if c == "phot_g_mean_mag" else 10.0
    return frame


def test_gaia_training_cuts_each_reason():
    frame = _gaia_frame()
    cuts = gaia_training_cuts(frame)
    assert list(cuts.columns) == ["finite_parallax", "visibility_periods", "astrometric_chi2",
                                  "complete_photometry"]
    np.testing.assert_array_equal(cuts["finite_parallax"],
                                  [True, True, True, False, True, True, True, False])
    np.testing.assert_array_equal(cuts["visibility_periods"],
                                  [True, True, True, True, False, True, True, True])
    np.testing.assert_array_equal(cuts["astrometric_chi2"],
                                  [True, True, False, True, True, True, False, True])
    mask = gaia_training_mask(frame)
    # the negative parallax (row 1) is kept
    np.testing.assert_array_equal(mask, [True, True, False, False, False, True, False, False])
    counts = cut_counts(cuts)
    assert counts.loc["all", "n_remaining"] == 3


def test_gaia_training_cuts_options_and_missing_columns():
    frame = _gaia_frame()
    frame.loc[0, "w1mpro"] = np.nan
    cuts = gaia_training_cuts(frame, min_parallax_over_error=3.0)
    np.testing.assert_array_equal(cuts["parallax_over_error"].to_numpy()[:3], [True, False, True])
    assert not cuts.loc[0, "complete_photometry"]
    with pytest.raises(KeyError, match="visibility_periods_used"):
        gaia_training_cuts(frame.drop(columns="visibility_periods_used"))
