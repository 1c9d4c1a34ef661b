"""A simulated survey written to disk in bounded memory, and read back.

:func:`write_survey` writes what :func:`~sklearn_selfcal.datasets.make_survey` returns into a
folder -- the catalogue, the spectra as HDF5, the truth and the injected settings -- generating the
spectra block by block, so that 10^6 stars x 7,514 pixels (60 GB of float32 flux and errors) are
simulated with a few hundred MB of memory. The files are those the command line reads
(``sklearn-selfcal run catalogue.parquet --spectra spectra.h5``); :func:`load_survey` reads them
back, with the spectra left on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import effective_n_jobs
from sklearn.utils import Bunch

from .._apogee import N_ASPCAP_PIXELS
from .._progress import progress
from ..io.write import atomic_write, write_catalogue
from . import _spectra
from ._survey import _check_pixels, simulate_catalogue

__all__ = ["SURVEY_FILES", "write_survey", "load_survey"]

#: The files of a survey folder.
SURVEY_FILES = {"catalogue": "catalogue.parquet", "spectra": "spectra.h5",
                "truth": "truth.parquet", "params": "params.json"}

#: Largest HDF5 chunk (bytes). HDF5 caches 1 MiB of chunks per open dataset by default: chunks
#: that fit are read once even when consecutive row blocks of a reader start inside them.
_HDF5_CHUNK_BYTES = 2**20


def _log(verbose, text):
    if verbose:
        print(f"[sklearn-selfcal] {text}", flush=True)


def _hdf5_chunk_rows(n_pixels, stream_rows):
    """Rows per HDF5 chunk: a power of two (so that it divides a power-of-two block of the
    random streams) of at most :data:`_HDF5_CHUNK_BYTES` of float32 pixels."""
    rows = max(1, _HDF5_CHUNK_BYTES // (4 * n_pixels))
    rows = 1 << (rows.bit_length() - 1)
    return max(1, min(rows, stream_rows))


def _spectra_blocks(n_chunks, chunks_per_block):
    """Consecutive groups of random-stream chunks, one group per block written."""
    return [range(k, min(k + chunks_per_block, n_chunks))
            for k in range(0, n_chunks, chunks_per_block)]


def _write_spectra(path, plan, *, chunk_rows, n_jobs, verbose):
    """Write ``plan``'s spectra to an HDF5 file, one block of rows at a time.

    A block is a whole number of the plan's random-stream chunks (so the pixels are those of
    :func:`~sklearn_selfcal.datasets.make_survey`); its chunks are filled in ``n_jobs`` threads
    while the previous block is written, so memory is two blocks of flux and errors (allocated
    once and filled in turn: no fresh pages to fault in per block) plus a few rows of noise per
    thread.
    """
    import h5py

    n, p = plan.n_stars, plan.n_pixels
    n_threads = max(1, effective_n_jobs(n_jobs))
    if chunk_rows is None:
        chunk_rows = plan.chunk_size * n_threads
    blocks = _spectra_blocks(len(plan.starts), max(1, -(-int(chunk_rows) // plan.chunk_size)))
    h5_rows = _hdf5_chunk_rows(p, plan.chunk_size)

    block_rows = max(plan.chunk_rows(b[-1]).stop - plan.chunk_rows(b[0]).start for b in blocks)
    # flux and errors of two blocks: one filled while the other is written
    buffers = [np.empty((2, block_rows, p), dtype=np.float32) for _ in blocks[:2]]

    def start(i):
        block = blocks[i]
        rows = slice(plan.chunk_rows(block[0]).start, plan.chunk_rows(block[-1]).stop)
        flux, err = buffers[i % len(buffers)][:, :rows.stop - rows.start]
        jobs = []
        for k in block:
            local = plan.chunk_rows(k)
            local = slice(local.start - rows.start, local.stop - rows.start)
            jobs.append(pool.submit(plan.fill, k, flux[local], err[local]))
        return rows, flux, err, jobs

    bar = progress(total=n, desc="spectra", verbose=verbose, unit="star")
    with (atomic_write(path) as tmp, h5py.File(tmp, "w") as fh,
          ThreadPoolExecutor(n_threads) as pool):
        options = {"shape": (n, p), "dtype": np.float32, "chunks": (min(h5_rows, n), p)}
        flux_ds = fh.create_dataset("flux", **options)
        err_ds = fh.create_dataset("flux_err", **options)
        fh.create_dataset("wavelength", data=plan.wavelength)
        flux_ds.attrs["description"] = "continuum-normalised flux (dimensionless)"
        err_ds.attrs["description"] = ("1-sigma flux uncertainty (dimensionless); bad pixels have "
                                       f"flux 0 and error {plan.spectra['bad_pixel_error']:g}")
        fh["wavelength"].attrs["unit"] = "Angstrom"
        pending = start(0)
        for i in range(len(blocks)):
            rows, flux, err, jobs = pending
            for job in jobs:
                job.result()
            pending = start(i + 1) if i + 1 < len(blocks) else None  # the other buffers
            flux_ds[rows] = flux
            err_ds[rows] = err
            bar.update(rows.stop - rows.start)
    bar.close()


def _jsonable(obj):
    """``obj`` with DataFrames and Series tagged, tuples as lists and numpy scalars as numbers."""
    if isinstance(obj, pd.DataFrame):
        return {"__dataframe__": {"index": list(obj.index), "index_name": obj.index.name,
                                  "columns": list(obj.columns),
                                  "data": _jsonable(obj.to_numpy().tolist())}}
    if isinstance(obj, pd.Series):
        return {"__series__": {"index": list(obj.index), "index_name": obj.index.name,
                               "name": obj.name, "data": _jsonable(obj.to_numpy().tolist())}}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _from_json(obj):
    """Inverse of :func:`_jsonable` for the tagged DataFrames and Series (a JSON object hook)."""
    if "__dataframe__" in obj:
        d = obj["__dataframe__"]
        index = pd.Index(d["index"], name=d["index_name"])
        data = np.asarray(d["data"], dtype=float).reshape(len(index), len(d["columns"]))
        frame = pd.DataFrame(index=index)  # built as the simulator builds its tables
        for j, column in enumerate(d["columns"]):
            frame[column] = data[:, j]
        return frame
    if "__series__" in obj:
        d = obj["__series__"]
        return pd.Series(np.asarray(d["data"], dtype=float),
                         index=pd.Index(d["index"], name=d["index_name"]), name=d["name"])
    return obj


def _free_bytes(directory):
    return shutil.disk_usage(directory).free


def write_survey(n_stars, out_dir, *, n_pixels=N_ASPCAP_PIXELS, random_state=None,
                 chunk_rows=None, n_jobs=None, overwrite=False, verbose=0, **physics):
    """Simulate a survey and write it to a folder, generating the spectra block by block.

    The files hold exactly what :func:`~sklearn_selfcal.datasets.make_survey` returns for the
    same ``n_stars``, ``n_pixels``, ``random_state`` and physics (bit for bit), but the spectra are
    never held whole: memory is the catalogue plus two blocks of ``chunk_rows`` spectra. Every
    file is written under a temporary name and renamed when complete.

    Parameters
    ----------
    n_stars : int
        Number of stars.
    out_dir : str or path-like
        Folder to write into (created if missing). It receives ``catalogue.parquet`` (the
        catalogue, ``make_survey(...).frame``), ``spectra.h5`` (datasets ``flux`` and
        ``flux_err``, float32 of shape (n_stars, n_pixels), chunked by rows, and ``wavelength``
        in Angstrom; not written when ``n_pixels`` is 0), ``truth.parquet`` and ``params.json``
        (the injected settings; see :data:`SURVEY_FILES`).
    n_pixels : int, default=7514
        Pixels per spectrum (7,514: the ASPCAP grid); 0 writes no spectra.
    random_state : int, RandomState, Generator or None, default=None
        Seed, as for :func:`~sklearn_selfcal.datasets.make_survey`.
    chunk_rows : int, optional
        Spectra generated and written at once, rounded up to a whole number of the simulator's
        random-stream chunks (``chunk_size``, 2,048 stars); the default is one chunk per thread.
        Memory for the spectra is about ``2 * 2 * 4 * chunk_rows * n_pixels`` bytes (two
        blocks of flux and errors), plus one chunk of noise per thread.
    n_jobs : int, optional
        Threads filling the spectra (joblib convention; ``None`` means one); the files do not
        depend on it.
    overwrite : bool, default=False
        Replace files of an existing survey in ``out_dir``; otherwise they raise an error.
    verbose : int, default=0
        Report each stage and show a progress bar over the spectra.
    **physics
        Any keyword of :data:`~sklearn_selfcal.datasets.DEFAULT_PHYSICS`, as for
        :func:`~sklearn_selfcal.datasets.make_survey`.

    Returns
    -------
    written : sklearn.utils.Bunch
        ``catalogue``, ``spectra`` (None without pixels), ``truth`` and ``params``: the paths
        written; ``n_stars``, ``n_pixels``; ``timings``: seconds per stage (``catalogue``,
        ``spectra``).

    Raises
    ------
    FileExistsError
        If ``out_dir`` already holds one of the files and ``overwrite`` is False.
    OSError
        If the file system of ``out_dir`` has less free space than the spectra need
        (``8 * n_stars * n_pixels`` bytes), before anything is simulated.

    See Also
    --------
    load_survey : Read the folder back, spectra on disk.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_selfcal.datasets import load_survey, write_survey
    >>> folder = tempfile.mkdtemp()
    >>> written = write_survey(300, folder, n_pixels=40, random_state=0)
    >>> survey = load_survey(folder)
    >>> survey.frame.shape[0], survey.spectra.n_pixels, survey.spectra.source.endswith("flux")
    (300, 40, True)
    """
    n_pixels = _check_pixels(n_pixels)
    n_stars = int(n_stars)
    if n_stars < 1:
        raise ValueError(f"n_stars must be a positive integer, got {n_stars}")
    if chunk_rows is not None and int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows}")
    if n_pixels:
        import h5py  # noqa: F401  -- fail before the simulation if it is missing
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {key: out_dir / name for key, name in SURVEY_FILES.items()}
    if not n_pixels:
        paths["spectra"] = None
    existing = [str(p) for p in paths.values() if p is not None and p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out_dir} already holds a survey ({', '.join(existing)}); pass "
                              "overwrite=True to replace it")
    need = 2 * 4 * n_stars * n_pixels
    free = _free_bytes(out_dir)
    if need > free:
        raise OSError(f"{out_dir}: the spectra of {n_stars:,} stars x {n_pixels:,} pixels need "
                      f"{need / 1e9:.1f} GB (float32 flux and errors); the file system has "
                      f"{free / 1e9:.1f} GB free. Write fewer pixels or to another folder")

    timings = {}
    t0 = time.perf_counter()
    _log(verbose, f"simulating the catalogue of {n_stars:,} stars ...")
    survey = simulate_catalogue(n_stars, random_state, **physics)
    write_catalogue(survey.frame, paths["catalogue"])
    write_catalogue(survey.truth, paths["truth"])
    with atomic_write(paths["params"]) as tmp:
        Path(tmp).write_text(json.dumps(_jsonable({**survey.params, "n_pixels": n_pixels}),
                                        indent=1))
    timings["catalogue"] = round(time.perf_counter() - t0, 2)
    _log(verbose, f"catalogue, truth and settings written: {timings['catalogue']:.1f} s")
    spectra = survey.params["physics"]["spectra"]
    labels, snr, seed = survey.labels, survey.snr, survey.spectra_seed
    del survey  # the catalogue is on disk: keep only what the spectra need

    if n_pixels:
        t0 = time.perf_counter()
        _log(verbose, f"simulating {n_stars:,} spectra of {n_pixels:,} pixels "
                      f"({need / 1e9:.1f} GB) ...")
        plan = _spectra.SpectraPlan(seed, labels, snr, spectra, n_pixels)
        _write_spectra(paths["spectra"], plan, chunk_rows=chunk_rows, n_jobs=n_jobs,
                       verbose=verbose)
        timings["spectra"] = round(time.perf_counter() - t0, 2)
        _log(verbose, f"spectra written to {paths['spectra']}: {timings['spectra']:.1f} s")
    return Bunch(**{k: (None if v is None else str(v)) for k, v in paths.items()},
                 n_stars=n_stars, n_pixels=n_pixels, timings=timings)


def load_survey(path, *, on_disk=True):
    """Read a survey folder written by :func:`write_survey`.

    Parameters
    ----------
    path : str or path-like
        The folder.
    on_disk : bool, default=True
        Leave the spectra in the HDF5 file (:class:`~sklearn_selfcal.spectra.SpectraArray`
        objects that read rows when asked) rather than reading them into memory.

    Returns
    -------
    survey : sklearn.utils.Bunch
        As :func:`~sklearn_selfcal.datasets.make_survey`'s: ``frame``, ``spectra``,
        ``spectra_err`` (float32, dimensionless; :class:`~sklearn_selfcal.spectra.SpectraArray`
        when ``on_disk``; None when the survey has no spectra), ``wavelength`` (Angstrom),
        ``truth`` and ``params`` (DataFrames and Series restored; tuples come back as lists).

    Raises
    ------
    FileNotFoundError
        Naming the first file of :data:`SURVEY_FILES` that the folder lacks.
    """
    from ..io.spectra import read_spectra

    folder = Path(path)
    for key in ("catalogue", "truth", "params"):
        if not (folder / SURVEY_FILES[key]).exists():
            raise FileNotFoundError(f"{folder / SURVEY_FILES[key]}: no such file (not a folder "
                                    "written by write_survey?)")
    params = json.loads((folder / SURVEY_FILES["params"]).read_text(), object_hook=_from_json)
    out = Bunch(frame=pd.read_parquet(folder / SURVEY_FILES["catalogue"]), spectra=None,
                spectra_err=None, wavelength=None,
                truth=pd.read_parquet(folder / SURVEY_FILES["truth"]), params=params)
    spectra_path = folder / SURVEY_FILES["spectra"]
    if params.get("n_pixels"):
        if not spectra_path.exists():
            raise FileNotFoundError(f"{spectra_path}: no such file (the survey has "
                                    f"{params['n_pixels']} pixels per spectrum)")
        spectra = read_spectra(os.fspath(spectra_path), on_disk=on_disk)
        out.update(spectra=spectra.flux, spectra_err=spectra.flux_err,
                   wavelength=spectra.wavelength)
    return out
