"""Tests of the parallax model's features (SpectroPhotometricFeatures) and training-set cuts."""

import pickle

import numpy as np
import pandas as pd
import pytest
import sklearn

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
    with pytest.raises(KeyError, match="FLUX_ERR"):
        features.transform(X.drop(columns="FLUX_ERR"))
    with pytest.raises(ValueError, match="7 pixels; fitted on 6"):
        features.transform(join_spectra(X.drop(columns=["FLUX", "FLUX_ERR"]),
                                        np.ones((len(X), 7)), np.ones((len(X), 7))))
    with pytest.raises(TypeError, match="SpectraArray"):
        features.transform(X.assign(FLUX=1.0))
    with pytest.raises(TypeError, match="DataFrame"):
        SpectroPhotometricFeatures().fit(X["FLUX"].array.to_numpy_2d())
    with pytest.raises(ValueError, match="flux_range"):
        SpectroPhotometricFeatures(flux_range=(1.0, 0.5)).fit(X)


def test_array_input_is_a_flux_block():
    rng = np.random.default_rng(1)
    flux = rng.uniform(0.6, 1.0, (20, 5))
    flux[0, 0] = -1.0
    tr = SpectroPhotometricFeatures(magnitude_columns=(), lsf_columns=(), flux_err_column=None)
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
    assert list(joined.columns[-1:]) == ["FLUX"] and "FLUX" not in frame.columns
    np.testing.assert_array_equal(joined["FLUX"].array.to_numpy_2d(), np.ones((3, 2)))


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


# ------------------------------------------------------------------------------------------
# spectra as array-backed columns: layouts, sources, bounded passes
# ------------------------------------------------------------------------------------------
def _legacy_layout(X):
    """The same table with one column per pixel (FLUX_0000 ..., FLUX_ERR_0000 ...)."""
    flux, err = X["FLUX"].array.to_numpy_2d(), X["FLUX_ERR"].array.to_numpy_2d()
    cols = {f"FLUX_{j:04d}": flux[:, j] for j in range(flux.shape[1])}
    cols |= {f"FLUX_ERR_{j:04d}": err[:, j] for j in range(err.shape[1])}
    return pd.concat([X.drop(columns=["FLUX", "FLUX_ERR"]), pd.DataFrame(cols, index=X.index)],
                     axis=1)


def test_one_column_per_pixel_gives_the_same_features(table):
    X, _, _ = table
    new = SpectroPhotometricFeatures().fit(X)
    old = SpectroPhotometricFeatures().fit(_legacy_layout(X))
    np.testing.assert_array_equal(old.transform(_legacy_layout(X)), new.transform(X))
    np.testing.assert_array_equal(old.transform_err(_legacy_layout(X)), new.transform_err(X))


def test_fit_transform_fit_and_transform_with_err_agree(table):
    X, _, _ = table
    one_pass = SpectroPhotometricFeatures()
    out = one_pass.fit_transform(X)
    # a tiny working memory: fit reads the spectra once per pixel (six passes)
    with sklearn.config_context(working_memory=1e-6):
        two_pass = SpectroPhotometricFeatures().fit(X)
    np.testing.assert_array_equal(two_pass.impute_values_, one_pass.impute_values_)
    np.testing.assert_array_equal(two_pass.impute_err_, one_pass.impute_err_)
    np.testing.assert_array_equal(two_pass.transform(X), out)
    feats, errs = two_pass.transform_with_err(X)
    np.testing.assert_array_equal(feats, out)
    np.testing.assert_array_equal(errs, two_pass.transform_err(X))


def test_row_selection_never_copies_pixels(table):
    from sklearn.utils._indexing import _safe_indexing

    X, flux, _ = table
    rows = np.array([5, 0, 5, 39])
    for sub in (X.iloc[rows], _safe_indexing(X, rows), X.loc[X.index[rows]]):
        assert sub["FLUX"].array._source is X["FLUX"].array._source     # the same pixels
        np.testing.assert_array_equal(sub["FLUX"].array.to_numpy_2d(), flux[rows])
    half = X[X.index % 2 == 0]
    assert half["FLUX_ERR"].array._source is X["FLUX_ERR"].array._source
    both = pd.concat([half, X[X.index % 2 == 1]])
    assert both["FLUX"].array._source is X["FLUX"].array._source
    np.testing.assert_array_equal(both.sort_index()["FLUX"].array.to_numpy_2d(), flux)


@pytest.mark.parametrize("kind", ["npy", "memmap", "hdf5"])
def test_spectra_on_disk_give_identical_features(table, tmp_path, kind):
    h5py = pytest.importorskip("h5py", reason="h5py is in the test extra") if kind == "hdf5" else None
    from sklearn_selfcal.spectra import SpectraArray

    X, flux, err = table
    if kind == "hdf5":
        path = tmp_path / "spectra.h5"
        with h5py.File(path, "w") as fh:
            fh["flux"], fh["flux_err"] = flux, err
        arrays = [SpectraArray.from_hdf5(path, name) for name in ("flux", "flux_err")]
    else:
        paths = [tmp_path / "flux.npy", tmp_path / "flux_err.npy"]
        np.save(paths[0], flux)
        np.save(paths[1], err)
        arrays = ([SpectraArray.from_npy(p) for p in paths] if kind == "npy"
                  else [np.load(p, mmap_mode="r") for p in paths])
    on_disk = join_spectra(X.drop(columns=["FLUX", "FLUX_ERR"]), *arrays)
    rows = np.random.default_rng(3).permutation(len(X))[:30]   # shuffled, as CV folds are
    expected = SpectroPhotometricFeatures().fit(X.iloc[rows])
    got = SpectroPhotometricFeatures().fit(on_disk.iloc[rows])
    np.testing.assert_array_equal(got.impute_values_, expected.impute_values_)
    np.testing.assert_array_equal(got.transform(on_disk), expected.transform(X))
    np.testing.assert_array_equal(got.transform_err(on_disk.iloc[rows[::-1]]),
                                  expected.transform_err(X.iloc[rows[::-1]]))
    # a pickled table reopens its files (it does not carry the pixels)
    back = pickle.loads(pickle.dumps(on_disk))
    np.testing.assert_array_equal(back["FLUX"].array.to_numpy_2d(), flux)


def test_spectra_tables_round_trip_through_parquet(table, tmp_path):
    X, flux, _ = table
    X.iloc[[3, 1]].to_parquet(tmp_path / "t.parquet")
    back = pd.read_parquet(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(back, X.iloc[[3, 1]])
    np.testing.assert_array_equal(back["FLUX"].array.to_numpy_2d(), flux[[3, 1]])


def test_outputs_in_scratch_files_are_file_backed_and_identical(table, tmp_path):
    X, _, _ = table
    expected = SpectroPhotometricFeatures().fit(X)
    features = SpectroPhotometricFeatures(scratch_dir=tmp_path)
    out = features.fit_transform(X)
    assert isinstance(out, np.memmap)                     # pages backed by a file, reclaimable
    assert list(tmp_path.iterdir()) == []                 # unlinked at once: nothing left behind
    np.testing.assert_array_equal(out, expected.transform(X))
    feats, errs = features.transform_with_err(X)
    assert isinstance(feats, np.memmap) and isinstance(errs, np.memmap)
    np.testing.assert_array_equal(errs, expected.transform_err(X))
    # pandas output wraps the mapped array without copying it
    frame = features.set_output(transform="pandas").transform(X)
    base = frame.to_numpy()
    while not isinstance(base, np.memmap) and base.base is not None:
        base = base.base
    assert isinstance(base, np.memmap)
