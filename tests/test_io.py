"""Tests of sklearn_selfcal.io on real APOGEE rows (tests/data, see its README) and round trips."""

import os
import re
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.table import Table

from sklearn_selfcal._apogee import N_ASPCAP_PIXELS, aspcap_wavelength
from sklearn_selfcal.exceptions import DataQualityWarning
from sklearn_selfcal.io import (
    GAIA_NAMES,
    atomic_write,
    load_allstar,
    load_aspcap_spectra,
    read_catalogue,
    read_spectra,
    write_catalogue,
    write_table,
)

DATA = Path(__file__).parent / "data"
ALLSTAR = DATA / "apogee_dr16_allstar_33stars.fits"
ASPCAP_NPZ = DATA / "aspcapstar_dr14_one_spectrum.npz"
ASPCAPSTAR = DATA / "aspcapStar-dr14-2M08002084+4044415.fits"

# Every sentinel in the fixture is <= -999 and no genuine value of these columns is (checked in
# test_sentinels_become_nan), so "raw <= -999" is an independent description of "missing".
NUMERIC = ["TEFF", "TEFF_ERR", "LOGG", "FE_H", "FE_H_ERR", "MG_FE", "CE_FE", "VHELIO_AVG", "SNR",
           "RA", "DEC", "J", "K_ERR", "WISE_4_5", "GAIA_PARALLAX", "GAIA_PMRA", "GAIA_R_EST"]
STRINGS = ["APOGEE_ID", "TELESCOPE", "FIELD", "ASPCAPFLAGS", "AK_TARG_METHOD"]


@pytest.fixture(scope="module")
def astropy_table():
    return Table.read(ALLSTAR)


@pytest.fixture(scope="module")
def raw():
    with fits.open(ALLSTAR) as hdul:
        return hdul[1].data.copy()


def _warned(record):
    """The columns named by the cleaning's DataQualityWarnings in ``record``."""
    names = set()
    for w in record:
        if not issubclass(w.category, DataQualityWarning):
            continue
        text = str(w.message)
        match = re.match(r"column '([^']+)'", text)
        if match:
            names.add(match.group(1))
        elif "other column(s):" in text:
            names.update(re.findall(r"(\w+) \(\d+\)", text.split("other column(s):")[1]))
    return names


def _sentinel_columns(raw, names):
    """The columns of ``names`` that hold a sentinel (<= -999) in the raw file."""
    return {n for n in names if (np.asarray(raw[n], dtype=float) <= -999).any()}


def _strings(column):
    values = np.asarray(column.filled(b"") if hasattr(column, "filled") else column)
    return [v.decode().strip() if isinstance(v, bytes) else str(v).strip() for v in values]


# ---------------------------------------------------------------------------------------------
# load_allstar


def test_load_allstar_numeric_columns_match_astropy(astropy_table, raw):
    with pytest.warns(DataQualityWarning) as record:
        frame = load_allstar(ALLSTAR, columns=NUMERIC, flagged_to_nan=False)
    # one warning per column holding a sentinel, and none for the others
    assert _warned(record) == _sentinel_columns(raw, NUMERIC)
    assert list(frame.columns) == NUMERIC
    assert len(frame) == len(astropy_table) == 33
    for name in NUMERIC:
        expected = np.asarray(astropy_table[name], dtype=float)
        got = frame[name].to_numpy(dtype=float)
        missing = expected <= -999
        np.testing.assert_array_equal(got[~missing], expected[~missing], err_msg=name)
        assert np.isnan(got[missing]).all(), name
        # the file's own NaN (e.g. GAIA_R_EST) stay NaN
        assert np.array_equal(np.isnan(got[~missing]), np.isnan(expected[~missing])), name


def test_load_allstar_integer_and_string_columns_match_astropy(astropy_table):
    names = STRINGS + ["ASPCAPFLAG", "STARFLAG", "LOCATION_ID", "MG_FE_FLAG"]
    frame = load_allstar(ALLSTAR, columns=names)
    for name in STRINGS:
        assert frame[name].tolist() == _strings(astropy_table[name]), name
    assert frame["APOGEE_ID"].iloc[0] == "2M00060411+7345557"
    assert "STAR_WARN" in frame["ASPCAPFLAGS"].iloc[3]
    for name in ["ASPCAPFLAG", "STARFLAG", "MG_FE_FLAG"]:
        np.testing.assert_array_equal(frame[name].to_numpy(), np.asarray(astropy_table[name]))
    # LOCATION_ID declares TNULL = 999999: astropy masks those rows, we make them missing
    location = astropy_table["LOCATION_ID"]
    mask = np.ma.getmaskarray(location)
    assert mask.any()
    np.testing.assert_array_equal(frame["LOCATION_ID"].isna().to_numpy(), mask)
    np.testing.assert_array_equal(
        frame["LOCATION_ID"][~mask].to_numpy(dtype=np.int64), np.asarray(location)[~mask]
    )


def test_load_allstar_native_byte_order(raw):
    assert raw["TEFF"].dtype.byteorder == ">"  # the file is big-endian, so the test means something
    with pytest.warns(DataQualityWarning) as record:  # the real file's sentinels
        frame = load_allstar(ALLSTAR)
    assert {"TEFF", "GAIA_PARALLAX", "MIN_H"} <= _warned(record)
    numpy_dtypes = [d for d in frame.dtypes if isinstance(d, np.dtype)]
    assert len(numpy_dtypes) > 100
    assert all(d.isnative for d in numpy_dtypes)
    # arithmetic on a native float32 column gives the value, not byte-swapped garbage
    assert 3000 < np.nanmedian(frame["TEFF"].to_numpy()) < 6000


def test_sentinels_become_nan(raw):
    names = ["TEFF", "TEFF_ERR", "GAIA_PARALLAX", "NA_FE_ERR", "MIN_H"]
    with pytest.warns(DataQualityWarning) as record:
        frame = load_allstar(ALLSTAR, columns=names, flagged_to_nan=False)
    assert _warned(record) == set(names)  # MIN_H has no role: named in the summary warning
    for name, sentinel in [("TEFF", -9999.99), ("TEFF_ERR", -999.99), ("GAIA_PARALLAX", -9999.0),
                           ("NA_FE_ERR", -999.99), ("MIN_H", -9999.99)]:
        is_sentinel = np.isclose(raw[name], sentinel, rtol=1e-7, atol=0)
        assert is_sentinel.any(), name
        # the fixture has no other values <= -999, so nothing else may be masked
        assert np.array_equal(raw[name] <= -999, is_sentinel), name
        assert np.array_equal(frame[name].isna().to_numpy(), is_sentinel | np.isnan(raw[name]))


def _allstar_with_flags(tmp_path, changes):
    """A copy of the fixture with some ``<X>_FE_FLAG`` entries set (row, column, value)."""
    path = tmp_path / "allStar-flagged.fits"
    with fits.open(ALLSTAR) as hdul:
        for row, column, value in changes:
            hdul[1].data[column][row] = value
        hdul.writeto(path)
    return path


def test_flagged_abundances_become_nan(tmp_path, raw):
    # row 0 has finite MG_FE and FE_H with zero flags in the real file
    assert raw["MG_FE_FLAG"][0] == 0 and raw["FE_H_FLAG"][1] == 0
    assert raw["MG_FE"][0] > -999 and raw["FE_H"][1] > -999
    path = _allstar_with_flags(tmp_path, [(0, "MG_FE_FLAG", 8), (1, "FE_H_FLAG", 512)])
    columns = ["MG_FE", "MG_FE_ERR", "FE_H", "FE_H_ERR", "SI_FE"]

    with pytest.warns(DataQualityWarning) as record:
        masked = load_allstar(path, columns=columns)
    flagged = [str(w.message) for w in record if "flagged unreliable" in str(w.message)]
    assert sorted(flagged) == [
        "column 'FE_H': 1 row(s) flagged unreliable by 'FE_H_FLAG' (its uncertainty too); set to "
        "NaN (row 1)",
        "column 'MG_FE': 1 row(s) flagged unreliable by 'MG_FE_FLAG' (its uncertainty too); set "
        "to NaN (row 0)"]
    assert list(masked.columns) == columns  # the flag columns are read, not returned
    assert np.isnan(masked["MG_FE"][0]) and np.isnan(masked["MG_FE_ERR"][0])
    assert np.isnan(masked["FE_H"][1]) and np.isnan(masked["FE_H_ERR"][1])
    assert np.isfinite(masked["MG_FE"][1]) and np.isfinite(masked["FE_H"][0])

    with pytest.warns(DataQualityWarning) as record:  # the real file's sentinels only
        kept = load_allstar(path, columns=columns, flagged_to_nan=False)
    assert not any("flagged" in str(w.message) for w in record)
    assert _warned(record) == _sentinel_columns(raw, columns)
    assert kept["MG_FE"][0] == pytest.approx(float(raw["MG_FE"][0]))
    assert kept["FE_H"][1] == pytest.approx(float(raw["FE_H"][1]))
    # apart from the two changed entries, the real flags agree with the real values here
    unchanged = masked.drop(index=[0, 1])
    pd.testing.assert_frame_equal(unchanged, kept.drop(index=[0, 1]))


def test_gaia_names_dr16(raw):
    with pytest.warns(DataQualityWarning) as record:
        frame = load_allstar(ALLSTAR, gaia_names=True)
    # warnings name the file's columns; a Gaia source id of -9999 is no identifier
    assert {"GAIA_PARALLAX", "GAIA_SOURCE_ID"} <= _warned(record)
    assert pd.isna(frame["source_id"][3]) and raw["GAIA_SOURCE_ID"][3] == -9999
    dr16 = {k: v for k, v in GAIA_NAMES.items() if not k.startswith("GAIAEDR3")}
    for allstar_name, gaia_name in dr16.items():
        assert gaia_name in frame.columns, gaia_name
        assert allstar_name not in frame.columns, allstar_name
        expected = np.asarray(raw[allstar_name], dtype=float)
        expected = np.where(expected <= -999, np.nan, expected)
        np.testing.assert_array_equal(frame[gaia_name].to_numpy(dtype=float), expected)
    # APOGEE names stay upper case
    assert {"TEFF", "FE_H", "J", "GLON"} <= set(frame.columns)


def test_gaia_names_can_be_requested(raw):
    with pytest.warns(DataQualityWarning) as record:
        frame = load_allstar(ALLSTAR, columns=["parallax", "pmra_error", "TEFF", "ra"],
                             gaia_names=True)
    # the columns asked for by their Gaia names are read under those names
    assert _warned(record) == {"parallax", "pmra_error", "TEFF"}
    assert list(frame.columns) == ["parallax", "pmra_error", "TEFF", "ra"]
    np.testing.assert_array_equal(frame["ra"].to_numpy(), raw["RA"])
    with pytest.raises(KeyError, match="gaia_names=True"):
        load_allstar(ALLSTAR, columns=["parallax"])


def test_gaia_names_dr17_spelling(tmp_path):
    big_id = 2**62 + 12345  # not representable in float64: must come back exact
    n = 3
    columns = [
        fits.Column(name="APOGEE_ID", format="18A", array=np.array(["a", "b", "c"])),
        fits.Column(name="ASPCAPFLAG", format="K", array=np.zeros(n, dtype=np.int64)),
        fits.Column(name="RA", format="D", array=np.array([1.0, 2.0, 3.0])),
        fits.Column(name="GAIAEDR3_SOURCE_ID", format="K",
                    array=np.array([big_id, -9999, 7], dtype=np.int64)),
        fits.Column(name="GAIAEDR3_PARALLAX", format="E", array=np.array([0.5, np.nan, -0.1])),
        fits.Column(name="GAIAEDR3_DR2_RADIAL_VELOCITY", format="E",
                    array=np.array([-9999.0, 12.5, 3.0])),
        fits.Column(name="GAIAEDR3_PHOT_G_MEAN_MAG", format="E", array=np.array([12, 13, 14.0])),
    ]
    path = tmp_path / "allStar-dr17-like.fits"
    fits.BinTableHDU.from_columns(columns).writeto(path)

    with pytest.warns(DataQualityWarning) as record:
        frame = load_allstar(path, gaia_names=True)
    assert _warned(record) == {"GAIAEDR3_SOURCE_ID", "GAIAEDR3_DR2_RADIAL_VELOCITY"}
    assert {"source_id", "parallax", "radial_velocity", "phot_g_mean_mag", "ra"} <= set(frame)
    assert frame["source_id"].dtype == "Int64"
    assert frame["source_id"][0] == big_id and frame["source_id"][2] == 7
    assert pd.isna(frame["source_id"][1])
    np.testing.assert_allclose(frame["parallax"].to_numpy(), [0.5, np.nan, -0.1], rtol=1e-7)
    assert np.isnan(frame["radial_velocity"][0]) and frame["radial_velocity"][1] == 12.5

    with pytest.warns(DataQualityWarning) as record:
        subset = load_allstar(path, columns=["parallax", "radial_velocity"], gaia_names=True)
    assert _warned(record) == {"radial_velocity"}
    assert list(subset.columns) == ["parallax", "radial_velocity"]
    # read_catalogue recognises allStar and uses the library's names
    with pytest.warns(DataQualityWarning) as record:
        pd.testing.assert_frame_equal(read_catalogue(path), frame)
    assert _warned(record) == {"GAIAEDR3_SOURCE_ID", "GAIAEDR3_DR2_RADIAL_VELOCITY"}


def test_missing_columns_error_names_them():
    with pytest.raises(KeyError) as info:
        load_allstar(ALLSTAR, columns=["TEFF", "NOT_A_COLUMN", "ALSO_MISSING"])
    message = str(info.value)
    assert "NOT_A_COLUMN" in message and "ALSO_MISSING" in message
    assert ALLSTAR.name in message
    assert "'TEFF'" not in message.split("not in the file")[1].split(";")[0]


def test_columns_subset_and_multidimensional_columns(raw):
    with pytest.warns(DataQualityWarning) as record:
        frame = load_allstar(ALLSTAR, columns=["LOGG", "PARAM", "PARAM_COV", "TEFF"])
    assert {"LOGG", "TEFF", "PARAM_0"} <= _warned(record)
    names = ["LOGG"] + [f"PARAM_{i}" for i in range(9)] + [f"PARAM_COV_{i}" for i in range(81)]
    assert list(frame.columns) == names + ["TEFF"]
    param = np.where(raw["PARAM"] <= -999, np.nan, raw["PARAM"])
    for i in range(9):
        np.testing.assert_array_equal(frame[f"PARAM_{i}"].to_numpy(), param[:, i])
    cov = np.where(raw["PARAM_COV"] <= -999, np.nan, raw["PARAM_COV"])  # (33, 9, 9)
    for i, j in [(0, 0), (0, 1), (1, 0), (3, 6), (8, 8)]:
        np.testing.assert_array_equal(frame[f"PARAM_COV_{9 * i + j}"].to_numpy(), cov[:, i, j])

    with pytest.warns(DataQualityWarning):
        everything = load_allstar(ALLSTAR)
    assert "TEFF" in everything and "PARAM" not in everything
    assert not any(c.startswith(("PARAM_", "FELEM", "X_H")) for c in everything.columns)
    with fits.open(ALLSTAR) as hdul:
        n_scalar = sum(hdul[1].columns.dtype[c].shape == () for c in hdul[1].columns.names)
    assert everything.shape == (33, n_scalar)


@pytest.mark.parametrize("reader", [load_allstar, read_catalogue])
def test_fits_readers_read_only_requested_columns(tmp_path, reader):
    # A 64-column, 20,000-row table (~10 MB). Reading one column copies 160 kB; reading the whole
    # table, or astropy copying it out of the memory map on close, would allocate >= 10 MB.
    n_rows, n_cols = 20_000, 64
    rng = np.random.default_rng(0)
    columns = [fits.Column(name=f"C{i}", format="D", array=rng.random(n_rows))
               for i in range(n_cols)]
    columns.append(fits.Column(name="FE_H", format="E", array=rng.random(n_rows)))
    columns.append(fits.Column(name="FE_H_FLAG", format="J", array=np.zeros(n_rows, "i4")))
    path = tmp_path / "wide.fits"
    fits.BinTableHDU.from_columns(columns).writeto(path)
    table_bytes = n_rows * (8 * n_cols + 8)

    tracemalloc.start()
    try:
        frame = reader(path, columns=["C3", "FE_H"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frame.shape == (n_rows, 2)
    assert peak < 0.2 * table_bytes, f"peak {peak / 1e6:.1f} MB, table {table_bytes / 1e6:.1f} MB"
    with fits.open(path) as hdul:
        np.testing.assert_array_equal(frame["C3"].to_numpy(), hdul[1].data["C3"])


# ---------------------------------------------------------------------------------------------
# aspcapStar spectra


def test_load_aspcap_spectra_recovers_the_real_spectrum():
    npz = np.load(ASPCAP_NPZ)
    spectra = load_aspcap_spectra([ASPCAPSTAR])
    assert spectra.flux.shape == spectra.flux_err.shape == (1, N_ASPCAP_PIXELS)
    assert spectra.flux.dtype == spectra.flux_err.dtype == np.float32
    np.testing.assert_array_equal(spectra.flux[0], npz["normalized_flux"].astype(np.float32))
    np.testing.assert_array_equal(spectra.flux_err[0], npz["normalized_error"].astype(np.float32))
    # the header WCS (log10 lambda = 4.179 + 6e-6 * pixel) reproduces both independent grids to
    # double precision: any off-by-one pixel would be a 1.4e-5 relative error
    np.testing.assert_allclose(spectra.wavelength, aspcap_wavelength(), rtol=1e-12)
    np.testing.assert_allclose(spectra.wavelength, npz["wavelength_nm"] * 10, rtol=1e-12)
    assert spectra.paths == [str(ASPCAPSTAR)]


def test_load_aspcap_spectra_many_files_threads_and_progress(tmp_path):
    paths = []
    for k in range(3):
        path = tmp_path / f"aspcapStar-{k}.fits"
        with fits.open(ASPCAPSTAR) as hdul:
            hdul[1].data = hdul[1].data * (1 + k)
            hdul.writeto(path)
        paths.append(path)
    spectra = load_aspcap_spectra(paths, verbose=1, n_jobs=2)
    reference = load_aspcap_spectra(ASPCAPSTAR).flux[0]
    for k in range(3):  # rows stay in input order under threads
        np.testing.assert_allclose(spectra.flux[k], reference * (1 + k), rtol=1e-6)
    assert spectra.paths == [str(p) for p in paths]


def test_load_aspcap_spectra_accepts_arrays_already_on_the_aspcap_grid(tmp_path):
    npz = np.load(ASPCAP_NPZ)
    path = tmp_path / "aspcapStar-cut.fits"
    with fits.open(ASPCAPSTAR) as hdul:
        for ext in (1, 2, 3):
            hdul[ext].data = hdul[ext].data[npz["apstar_pixel"]]
        hdul.writeto(path)
    cut = load_aspcap_spectra([path])
    full = load_aspcap_spectra([ASPCAPSTAR])
    np.testing.assert_array_equal(cut.flux, full.flux)
    np.testing.assert_array_equal(cut.flux_err, full.flux_err)
    np.testing.assert_allclose(cut.wavelength, full.wavelength, rtol=1e-12)


def test_load_aspcap_spectra_follows_the_header_wcs(tmp_path):
    # the same spectrum with its first 10 apStar pixels dropped and CRVAL1 moved accordingly
    path = tmp_path / "aspcapStar-trimmed.fits"
    with fits.open(ASPCAPSTAR) as hdul:
        for ext in (1, 2, 3):
            hdul[ext].data = hdul[ext].data[10:]
            hdul[ext].header["CRVAL1"] = 4.179 + 10 * 6e-6
        hdul.writeto(path)
    trimmed, full = load_aspcap_spectra([path]), load_aspcap_spectra([ASPCAPSTAR])
    np.testing.assert_array_equal(trimmed.flux, full.flux)
    np.testing.assert_allclose(trimmed.wavelength, full.wavelength, rtol=1e-12)


# half a pixel off in wavelength, and a 1.7% different dispersion
@pytest.mark.parametrize("key, value", [("CRVAL1", 4.179 + 3e-6), ("CDELT1", 6.1e-6)])
def test_load_aspcap_spectra_grid_mismatch_names_the_file(tmp_path, key, value):
    bad = tmp_path / "aspcapStar-shifted.fits"
    with fits.open(ASPCAPSTAR) as hdul:
        hdul[1].header[key] = value
        hdul.writeto(bad)
    with pytest.raises(ValueError, match="aspcapStar-shifted.fits") as info:
        load_aspcap_spectra([ASPCAPSTAR, bad])
    assert str(ASPCAPSTAR) not in str(info.value)
    assert key in str(info.value)


# ---------------------------------------------------------------------------------------------
# read_spectra


def _spectra(n=4, p=50, seed=0):
    rng = np.random.default_rng(seed)
    flux = (1 + 0.05 * rng.standard_normal((n, p))).astype(np.float32)
    err = (0.01 + 0.01 * rng.random((n, p))).astype(np.float32)
    flux[1, 3] = np.nan
    return flux, err


def test_read_spectra_npy_with_and_without_errors(tmp_path):
    flux, err = _spectra()
    np.save(tmp_path / "flux.npy", flux)
    alone = read_spectra(tmp_path / "flux.npy")
    np.testing.assert_array_equal(alone.flux, flux)
    assert alone.flux_err is None and alone.wavelength is None
    np.save(tmp_path / "flux_err.npy", err)
    both = read_spectra(str(tmp_path / "flux.npy"))
    np.testing.assert_array_equal(both.flux, flux)  # NaN in the same place
    np.testing.assert_array_equal(both.flux_err, err)
    assert both.paths[1].endswith("flux_err.npy")


def test_read_spectra_npy_shape_errors(tmp_path):
    flux, err = _spectra()
    np.save(tmp_path / "one.npy", flux[0])
    with pytest.raises(ValueError, match="2-D"):
        read_spectra(tmp_path / "one.npy")
    np.save(tmp_path / "flux.npy", flux)
    np.save(tmp_path / "flux_err.npy", err[:, :-1])
    with pytest.raises(ValueError, match="flux_err has shape"):
        read_spectra(tmp_path / "flux.npy")


def test_read_spectra_hdf5(tmp_path):
    h5py = pytest.importorskip("h5py", reason="HDF5 spectra need h5py (a test dependency)")
    flux, err = _spectra()
    wavelength = np.linspace(15_100.0, 17_000.0, flux.shape[1])
    with h5py.File(tmp_path / "spectra.h5", "w") as fh:
        fh["flux"], fh["flux_err"], fh["wavelength"] = flux.astype(np.float64), err, wavelength
    spectra = read_spectra(tmp_path / "spectra.h5")
    assert spectra.flux.dtype == np.float32
    np.testing.assert_array_equal(spectra.flux, flux)
    np.testing.assert_array_equal(spectra.flux_err, err)
    np.testing.assert_array_equal(spectra.wavelength, wavelength)
    with h5py.File(tmp_path / "no_flux.hdf5", "w") as fh:
        fh["spectra"] = flux
    with pytest.raises(KeyError, match="flux"):
        read_spectra(tmp_path / "no_flux.hdf5")


def test_read_spectra_aspcapstar_list_glob_and_sequence(tmp_path):
    folder = tmp_path / "spectra"
    folder.mkdir()
    for name in ["aspcapStar-a.fits", "aspcapStar-b.fits"]:
        shutil.copy(ASPCAPSTAR, folder / name)
    listing = tmp_path / "files.txt"
    listing.write_text(
        "# aspcapStar files\nspectra/aspcapStar-b.fits\n\nspectra/aspcapStar-a.fits\n"
    )
    from_list = read_spectra(listing)
    assert [Path(p).name for p in from_list.paths] == ["aspcapStar-b.fits", "aspcapStar-a.fits"]
    from_glob = read_spectra(str(folder / "aspcapStar-*.fits"))
    assert [Path(p).name for p in from_glob.paths] == ["aspcapStar-a.fits", "aspcapStar-b.fits"]
    from_sequence = read_spectra([folder / "aspcapStar-a.fits"])
    single = read_spectra(ASPCAPSTAR)
    for spectra in (from_list, from_glob, from_sequence):
        np.testing.assert_array_equal(spectra.flux, np.repeat(single.flux, len(spectra.paths), 0))
    with pytest.raises(ValueError, match="matches no file"):
        read_spectra(str(folder / "nothing-*.fits"))
    with pytest.raises(ValueError, match="unsupported file format"):
        read_spectra(tmp_path / "spectra.zip")


# ---------------------------------------------------------------------------------------------
# Catalogue round trips and atomic writes


@pytest.fixture
def catalogue():
    return pd.DataFrame({
        "APOGEE_ID": ["2M00000001+0000001", "2M00000002+0000002", "2M00000003+0000003"],
        "FE_H": [-0.1, np.nan, 0.25],
        "parallax": [0.5, -0.02, np.nan],
        "NVISITS": np.array([1, 3, 2], dtype=np.int32),
        "good": [True, False, True],
        "source_id": pd.array([2**60 + 1, None, 42], dtype="Int64"),
    })


@pytest.mark.parametrize("name", ["cat.parquet", "cat.fits"])
def test_write_read_catalogue_round_trip(tmp_path, catalogue, name):
    before = catalogue.copy(deep=True)
    write_catalogue(catalogue, tmp_path / name)
    pd.testing.assert_frame_equal(catalogue, before)  # input not mutated
    back = read_catalogue(tmp_path / name)
    pd.testing.assert_frame_equal(back, catalogue)
    assert np.isnan(back["FE_H"][1]) and pd.isna(back["source_id"][1])
    assert os.listdir(tmp_path) == [name]  # no temporary file left behind
    subset = read_catalogue(tmp_path / name, columns=["parallax", "APOGEE_ID"])
    pd.testing.assert_frame_equal(subset, catalogue[["parallax", "APOGEE_ID"]])
    with pytest.raises(KeyError, match="NOPE"):
        read_catalogue(tmp_path / name, columns=["FE_H", "NOPE"])


def test_write_table_ecsv_round_trip(tmp_path, catalogue):
    before = catalogue.copy(deep=True)
    path = tmp_path / "gradients.ecsv"
    write_table(catalogue, path, units={"parallax": "mas"}, meta={"note": "test"})
    pd.testing.assert_frame_equal(catalogue, before)
    pd.testing.assert_frame_equal(read_catalogue(path), catalogue)
    table = Table.read(path, format="ascii.ecsv")
    assert str(table["parallax"].unit) == "mas" and table.meta["note"] == "test"
    with pytest.raises(ValueError, match="unsupported file format"):
        write_table(catalogue, tmp_path / "gradients.csv")


def test_read_catalogue_csv(tmp_path, catalogue):
    path = tmp_path / "cat.csv"
    catalogue.to_csv(path, index=False)
    back = read_catalogue(path)
    np.testing.assert_array_equal(back["FE_H"].to_numpy(), catalogue["FE_H"].to_numpy())
    assert back["APOGEE_ID"].tolist() == catalogue["APOGEE_ID"].tolist()
    subset = read_catalogue(path, columns=["parallax", "APOGEE_ID"])
    assert list(subset.columns) == ["parallax", "APOGEE_ID"]  # requested order, not file order
    with pytest.raises(KeyError, match="NOPE"):
        read_catalogue(path, columns=["NOPE"])


def test_read_catalogue_allstar_uses_gaia_names():
    columns = ["APOGEE_ID", "parallax", "TEFF"]
    with pytest.warns(DataQualityWarning) as record:
        frame = read_catalogue(ALLSTAR, columns=columns)
    assert _warned(record) == {"parallax", "TEFF"}
    with pytest.warns(DataQualityWarning) as record:
        expected = load_allstar(ALLSTAR, columns=columns, gaia_names=True)
    assert _warned(record) == {"parallax", "TEFF"}
    pd.testing.assert_frame_equal(frame, expected)


def test_unknown_formats_are_refused(tmp_path, catalogue):
    with pytest.raises(ValueError, match=r"unsupported file format '\.xlsx'"):
        read_catalogue(tmp_path / "cat.xlsx")
    with pytest.raises(ValueError, match="unsupported file format"):
        write_catalogue(catalogue, tmp_path / "cat.csv")
    with pytest.raises(TypeError, match="DataFrame"):
        write_catalogue(catalogue.to_numpy(), tmp_path / "cat.fits")
    assert os.listdir(tmp_path) == []


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "summary.json"
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_write(target) as tmp:
            assert Path(tmp).parent == tmp_path and Path(tmp).name.endswith(".json")
            Path(tmp).write_text('{"half": ')
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == []

    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target) as tmp:
            Path(tmp).write_text("new but unfinished")
            raise KeyboardInterrupt
    assert target.read_text() == "old"  # the previous file is untouched
    assert os.listdir(tmp_path) == ["summary.json"]

    with atomic_write(target) as tmp:
        Path(tmp).write_text("new")
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["summary.json"]


def test_write_catalogue_interrupted_mid_write(tmp_path, catalogue, monkeypatch):
    def half_write(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half_write)
    with pytest.raises(OSError, match="disk full"):
        write_catalogue(catalogue, tmp_path / "cat.parquet")
    assert os.listdir(tmp_path) == []


def test_atomic_write_needs_an_existing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with atomic_write(tmp_path / "missing" / "x.fits"):
            pass


@pytest.mark.parametrize("nullable", [False, True], ids=["streamed", "whole-table"])
def test_fits_catalogue_written_by_blocks_is_astropys_file(tmp_path, monkeypatch, nullable):
    """Blocks of rows give the bytes astropy writes for the whole table (text widths, NaN,
    booleans, units); a nullable integer column, whose null value astropy picks from the data,
    takes the whole-table path and gives the same file too."""
    from sklearn_selfcal.io import _fits_write
    from sklearn_selfcal.io.write import _frame_to_table

    monkeypatch.setattr(_fits_write, "BLOCK_ROWS", 1000)  # several blocks, a partial last one
    rng = np.random.default_rng(0)
    n = 3_517
    frame = pd.DataFrame({
        "APOGEE_ID": [f"2M{i}" for i in range(n)],  # the longest ids are in the last blocks
        "TELESCOPE": pd.Series(rng.choice(["apo1m", "lco25m"], n), dtype="string"),
        "x": rng.normal(size=n), "ASPCAPFLAG": rng.integers(0, 2**40, n),
        "ok": rng.random(n) < 0.5, "f32": rng.normal(size=n).astype(np.float32)})
    frame.loc[::7, "x"] = np.nan
    if nullable:
        frame["n"] = pd.array(np.where(rng.random(n) < 0.1, None, 3), dtype="Int64")
    calls = []
    original = _fits_write._block_hdu
    monkeypatch.setattr(_fits_write, "_block_hdu", lambda *a: calls.append(1) or original(*a))
    write_catalogue(frame, tmp_path / "blocks.fits", units={"x": "kpc"})
    _frame_to_table(frame, units={"x": "kpc"}).write(tmp_path / "whole.fits", format="fits")
    assert (tmp_path / "blocks.fits").read_bytes() == (tmp_path / "whole.fits").read_bytes()
    assert len(calls) == (0 if nullable else 4)
