"""``write_survey`` / ``load_survey``: a simulated survey on disk, equal to ``make_survey``'s, written
in bounded memory."""

import json
import time
import tracemalloc

import h5py
import numpy as np
import pandas as pd
import pytest

from sklearn_selfcal.datasets import SURVEY_FILES, load_survey, make_survey, write_survey
from sklearn_selfcal.datasets import _survey_files
from sklearn_selfcal.io.spectra import spectra_rows
from sklearn_selfcal.spectra import SpectraArray

# 5,000 stars span three random-stream chunks of 2,048 (the last one partial)
N, PIXELS = 5000, 60


@pytest.fixture(scope="module")
def reference():
    return make_survey(N, n_pixels=PIXELS, random_state=11)


def _assert_same_survey(loaded, survey):
    pd.testing.assert_frame_equal(loaded.frame, survey.frame, check_exact=True)
    pd.testing.assert_frame_equal(loaded.truth, survey.truth, check_exact=True)
    for name in ("spectra", "spectra_err"):
        got = getattr(loaded, name)
        got = got.to_numpy_2d() if isinstance(got, SpectraArray) else got
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, getattr(survey, name), err_msg=name)
    np.testing.assert_array_equal(loaded.wavelength, survey.wavelength)
    for key in ("systematics", "telescope_offsets"):
        pd.testing.assert_frame_equal(loaded.params[key], survey.params[key], check_exact=True)
    pd.testing.assert_series_equal(loaded.params["teff_systematics"],
                                   survey.params["teff_systematics"], check_exact=True)
    for key in ("n_stars", "n_pixels", "random_state", "parallax_zero_point", "feh_gradient",
                "logg_ref", "action_delta"):
        assert loaded.params[key] == survey.params[key], key


@pytest.mark.parametrize("chunk_rows, n_jobs", [(None, 1), (1, 2), (10**6, 2)])
def test_files_equal_make_survey(tmp_path, reference, chunk_rows, n_jobs):
    """Bit for bit, whatever the block size (one stream chunk, the default, all of them) and
    the number of threads."""
    written = write_survey(N, tmp_path, n_pixels=PIXELS, random_state=11, chunk_rows=chunk_rows,
                           n_jobs=n_jobs)
    assert written.spectra == str(tmp_path / SURVEY_FILES["spectra"])
    _assert_same_survey(load_survey(tmp_path, on_disk=False), reference)


def test_next_block_filled_while_one_is_written(tmp_path, reference, monkeypatch):
    """The next block's chunks are filled in other buffers while a block is written (here a
    slow disk: every write waits until the next block is filled)."""
    write = h5py.Dataset.__setitem__

    def slow(self, key, value):
        time.sleep(0.1)  # the threads fill the next block meanwhile
        write(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", slow)
    write_survey(N, tmp_path, n_pixels=PIXELS, random_state=11, chunk_rows=1, n_jobs=2)
    _assert_same_survey(load_survey(tmp_path, on_disk=False), reference)


def test_physics_options_pass_through(tmp_path):
    """Physics keywords reach both the catalogue and the spectra (a stream chunk that is not a
    power of two, a telescope offset)."""
    options = dict(chunk_size=700, telescope_offsets={"lco25m": 0.03}, lco_fraction=0.4)
    survey = make_survey(1500, n_pixels=25, random_state=2, **options)
    write_survey(1500, tmp_path, n_pixels=25, random_state=2, chunk_rows=1, n_jobs=2, **options)
    loaded = load_survey(tmp_path, on_disk=False)
    _assert_same_survey(loaded, survey)
    assert loaded.params["physics"]["spectra"]["chunk_size"] == 700


def test_layout_read_by_the_command_line(tmp_path, reference):
    write_survey(N, tmp_path, n_pixels=PIXELS, random_state=11)
    path = tmp_path / SURVEY_FILES["spectra"]
    with h5py.File(path, "r") as fh:
        for name in ("flux", "flux_err"):
            ds = fh[name]
            assert ds.shape == (N, PIXELS) and ds.dtype == np.float32
            rows, width = ds.chunks                  # chunked by whole spectra
            assert width == PIXELS and 2048 % rows == 0 and rows * PIXELS * 4 <= 2**20
        assert fh["wavelength"].attrs["unit"] == "Angstrom"
    assert spectra_rows(path) == (N, True)
    on_disk = load_survey(tmp_path)                  # spectra stay in the file
    assert isinstance(on_disk.spectra, SpectraArray)
    assert on_disk.spectra.source == f"{path}:flux"
    rows = [4999, 3, 2048]
    np.testing.assert_array_equal(on_disk.spectra_err.take(rows).to_numpy_2d(),
                                  reference.spectra_err[rows])
    params = json.loads((tmp_path / SURVEY_FILES["params"]).read_text())
    assert params["physics"]["galaxy"]["bar_angle"] == reference.params["physics"]["galaxy"][
        "bar_angle"]


def test_spectra_written_in_bounded_memory(tmp_path, monkeypatch):
    """The spectra stage holds a few random-stream chunks, never the whole spectra.

    20,000 stars x 500 pixels are 80 MB of float32 flux and errors; one chunk of 2,048 spectra
    is 4.1 MB per array. With one thread, the stage holds two blocks of one chunk (flux and
    errors: 16.4 MB) and one chunk of noise (4.1 MB). The catalogue stage is measured apart: its
    own peak at 20,000 stars (~65 MB) would hide the spectra's. HDF5's chunk cache (1 MiB per
    dataset) is allocated by the C library, outside tracemalloc.
    """
    n, pixels = 20_000, 500
    chunk = 2048 * pixels * 4
    stage = {}
    write_spectra = _survey_files._write_spectra

    def measured(*args, **kwargs):
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        write_spectra(*args, **kwargs)
        stage["peak"] = tracemalloc.get_traced_memory()[1] - start

    monkeypatch.setattr(_survey_files, "_write_spectra", measured)
    tracemalloc.start()
    try:
        write_survey(n, tmp_path, n_pixels=pixels, random_state=0, n_jobs=1)
    finally:
        tracemalloc.stop()
    whole = 2 * n * pixels * 4
    assert stage["peak"] < 6 * chunk, (stage["peak"], chunk)   # measured: ~5.0 chunks
    assert stage["peak"] < whole / 3
    with h5py.File(tmp_path / SURVEY_FILES["spectra"], "r") as fh:
        assert fh["flux"].shape == (n, pixels)


def test_refuses_to_overwrite_and_checks_space_first(tmp_path, monkeypatch):
    write_survey(100, tmp_path, n_pixels=0, random_state=0)
    assert not (tmp_path / SURVEY_FILES["spectra"]).exists()
    assert load_survey(tmp_path).spectra is None
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_survey(100, tmp_path, n_pixels=0, random_state=1)
    write_survey(100, tmp_path, n_pixels=0, random_state=1, overwrite=True)
    assert load_survey(tmp_path).params["random_state"] == 1

    monkeypatch.setattr(_survey_files, "_free_bytes", lambda directory: 10**6)
    target = tmp_path / "big"
    with pytest.raises(OSError, match=r"need 8.0 GB .* 0.0 GB free"):
        write_survey(10**6, target, n_pixels=1000, random_state=0)
    assert list(target.iterdir()) == []          # refused before anything was written
    with pytest.raises(ValueError, match="chunk_rows"):
        write_survey(10, tmp_path / "x", n_pixels=5, chunk_rows=0)
    with pytest.raises(ValueError, match="n_pixels"):
        write_survey(10, tmp_path / "x", n_pixels=-1)


def test_failure_leaves_no_partial_spectra_file(tmp_path, monkeypatch):
    from sklearn_selfcal.datasets import _spectra

    fill = _spectra.SpectraPlan.fill

    def failing(self, chunk, flux, err):
        if chunk == 2:
            raise RuntimeError("disk on fire")
        fill(self, chunk, flux, err)

    monkeypatch.setattr(_spectra.SpectraPlan, "fill", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_survey(N, tmp_path, n_pixels=PIXELS, random_state=0, chunk_rows=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        SURVEY_FILES[k] for k in ("catalogue", "truth", "params"))


def test_verbose_reports_the_stages(tmp_path, capsys):
    write_survey(300, tmp_path, n_pixels=10, random_state=0, verbose=1)
    out = capsys.readouterr().out
    assert "simulating the catalogue of 300 stars" in out
    assert "spectra written to" in out


def test_load_survey_names_a_missing_file(tmp_path):
    write_survey(50, tmp_path, n_pixels=5, random_state=0)
    (tmp_path / SURVEY_FILES["spectra"]).unlink()
    with pytest.raises(FileNotFoundError, match="spectra.h5"):
        load_survey(tmp_path)
    (tmp_path / SURVEY_FILES["truth"]).unlink()
    with pytest.raises(FileNotFoundError, match="truth.parquet"):
        load_survey(tmp_path)
