"""Spectra: aspcapStar files on the 7,514-pixel ASPCAP grid, ``.npy`` arrays and HDF5 files."""

from __future__ import annotations

import glob
import os
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from sklearn.utils import Bunch

from .._apogee import (
    ASPCAP_CHIP_RANGES,
    DLOG10_LAMBDA,
    LOG10_LAMBDA0,
    N_ASPCAP_PIXELS,
    aspcap_wavelength,
)
from .._progress import progress
from ._formats import FITS, HDF5, LISTS, NPY, kind_of
from ._integrity import check_fits_file

__all__ = ["load_aspcap_spectra", "read_spectra", "spectra_rows"]


def _aspcap_file_index(header, path):
    """Indices into an aspcapStar HDU-1 array of the 7,514 ASPCAP pixels, checked against the grid.

    The header WCS gives log10(wavelength / Angstrom) of file pixel ``i`` (0-based) as
    ``CRVAL1 + CDELT1 * (i + 1 - CRPIX1)``. DR14-DR17 aspcapStar arrays are on the 8,575-pixel
    apStar grid (zeros in the chip gaps); an array of exactly 7,514 pixels is taken to be already
    cut to the ASPCAP pixels, with the header WCS describing the apStar grid they were cut from.
    """
    try:
        naxis1 = int(header["NAXIS1"])
        crval1 = float(header["CRVAL1"])
        cdelt1 = float(header["CDELT1"])
    except KeyError as exc:
        raise ValueError(f"{path}: HDU 1 header lacks the wavelength keyword {exc}") from None
    crpix1 = float(header.get("CRPIX1", 1.0))
    ctype1 = str(header.get("CTYPE1", "LOG-LINEAR")).strip().upper()
    if ctype1 not in ("LOG-LINEAR", "LOG10", "WAVE-LOG"):
        raise ValueError(f"{path}: CTYPE1={ctype1!r}; expected a log-linear wavelength axis")
    apstar_pix = np.concatenate([np.arange(a, b) for a, b in ASPCAP_CHIP_RANGES])
    if naxis1 == N_ASPCAP_PIXELS:
        index = np.arange(N_ASPCAP_PIXELS)
        log_wave = crval1 + cdelt1 * (apstar_pix + 1 - crpix1)
    else:
        # apStar pixel of file pixel 0; must be a whole number of pixels on the library grid
        start = (crval1 + cdelt1 * (1 - crpix1) - LOG10_LAMBDA0) / DLOG10_LAMBDA
        offset = int(round(start))
        index = apstar_pix - offset
        if abs(start - offset) > 1e-3 or index[0] < 0 or index[-1] >= naxis1:
            raise ValueError(_grid_message(path, naxis1, crval1, cdelt1, crpix1))
        log_wave = crval1 + cdelt1 * (index + 1 - crpix1)
    wavelength = 10.0**log_wave
    # 1e-8 relative is 2e-4 Angstrom, about 1e-3 of a pixel
    if not np.allclose(wavelength, aspcap_wavelength(), rtol=1e-8, atol=0):
        raise ValueError(_grid_message(path, naxis1, crval1, cdelt1, crpix1))
    return index, wavelength


def _grid_message(path, naxis1, crval1, cdelt1, crpix1):
    return (
        f"{path}: not on the APOGEE apStar/ASPCAP wavelength grid (header NAXIS1={naxis1}, "
        f"CRVAL1={crval1}, CDELT1={cdelt1}, CRPIX1={crpix1}; expected log10(lambda/Angstrom) = "
        f"{LOG10_LAMBDA0} + {DLOG10_LAMBDA} * apStar pixel, with {N_ASPCAP_PIXELS} ASPCAP pixels "
        f"in apStar pixel ranges {ASPCAP_CHIP_RANGES})"
    )


def _read_aspcapstar(path):
    """Flux and flux error (float32, ASPCAP grid) and the wavelength of one aspcapStar file."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
            damage = [str(w.message).splitlines()[0] for w in caught
                      if "truncated" in str(w.message) or "Header size" in str(w.message)]
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise ValueError(f"{path}: corrupt or truncated FITS file ({exc})") from None
    with hdul:
        if damage:
            raise ValueError(f"{path}: corrupt or truncated FITS file ({damage[0]})")
        if len(hdul) < 3:
            raise ValueError(
                f"{path}: an aspcapStar file needs HDU 1 (flux) and HDU 2 (error); "
                f"found {len(hdul)} HDU(s)"
            )
        check_fits_file(hdul, path)
        header = hdul[1].header
        try:
            flux, err = hdul[1].data, hdul[2].data
        except (OSError, ValueError, TypeError) as exc:  # e.g. "cannot reshape" of a cut file
            raise ValueError(f"{path}: corrupt or truncated FITS file ({exc})") from None
        if flux is None or err is None or flux.ndim != 1 or flux.shape != err.shape:
            raise ValueError(
                f"{path}: HDU 1 (flux) and HDU 2 (error) must be 1-D arrays of equal length; got "
                f"shapes {None if flux is None else flux.shape} and "
                f"{None if err is None else err.shape}"
            )
        index, wavelength = _aspcap_file_index(header, path)
        return (flux[index].astype(np.float32), err[index].astype(np.float32), wavelength)


def load_aspcap_spectra(paths, verbose=0, n_jobs=None):
    """Read aspcapStar files into flux and uncertainty arrays on the 7,514-pixel ASPCAP grid.

    An aspcapStar file (DR14-DR17) holds the pseudo-continuum-normalised combined spectrum in
    HDU 1, its 1-sigma uncertainty in HDU 2 and the best-fitting ASPCAP model in HDU 3 (not read),
    on the log-linear apStar grid of 8,575 pixels described by the HDU-1 header
    (``CRVAL1 = 4.179``, ``CDELT1 = 6e-6`` in log10 Angstrom, ``CRPIX1 = 1``,
    ``CTYPE1 = 'LOG-LINEAR'``), zero in the chip gaps. The 7,514 pixels of the three detector
    chips (:data:`sklearn_selfcal._apogee.ASPCAP_CHIP_RANGES`) are kept. Arrays of exactly 7,514
    pixels are accepted as already cut to the ASPCAP pixels.

    Parameters
    ----------
    paths : str, path-like or sequence of them
        aspcapStar FITS files, one star each.
    verbose : int, default=0
        Show a progress bar when non-zero.
    n_jobs : int, optional
        Number of threads reading files at once (I/O bound); ``None`` means one (or the
        enclosing :func:`joblib.parallel_config`).

    Returns
    -------
    spectra : sklearn.utils.Bunch
        ``flux`` : float32 ndarray of shape (n_files, 7514), normalised flux (dimensionless);
        ``flux_err`` : float32 ndarray of shape (n_files, 7514), its 1-sigma uncertainty;
        ``wavelength`` : float64 ndarray of shape (7514,), vacuum wavelength (Angstrom) from the
        header WCS; ``paths`` : list of str, the files in row order.

    Raises
    ------
    ValueError
        Naming the first file whose header wavelength grid differs from the ASPCAP grid (hence
        from the other files'), or whose HDUs are malformed.
    """
    from joblib import Parallel, delayed  # threads reading files; no estimator runs here

    paths = _as_path_list(paths)
    if not paths:
        raise ValueError("load_aspcap_spectra: no aspcapStar files given")
    n = len(paths)
    flux = np.empty((n, N_ASPCAP_PIXELS), dtype=np.float32)
    flux_err = np.empty((n, N_ASPCAP_PIXELS), dtype=np.float32)
    wavelength = None

    def read_one(i):
        return i, _read_aspcapstar(paths[i])

    results = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")(
        delayed(read_one)(i) for i in range(n)
    )
    for i, (f, e, w) in progress(
        results, total=n, desc="reading aspcapStar", verbose=verbose, unit="file"
    ):
        flux[i], flux_err[i] = f, e
        if wavelength is None:
            wavelength = w
    return Bunch(flux=flux, flux_err=flux_err, wavelength=wavelength, paths=paths)


def _as_path_list(paths):
    if isinstance(paths, str | os.PathLike):
        return [os.fspath(paths)]
    return [os.fspath(p) for p in paths]


def read_spectra(path_or_paths, *, on_disk=False):
    """Read spectra for the command line from ``.npy``, HDF5 or aspcapStar files.

    Parameters
    ----------
    path_or_paths : str, path-like or sequence of them
        One of:

        * ``flux.npy``: a 2-D array (n_stars, n_pixels) of normalised flux; its uncertainty is read
          from a sibling ``flux_err.npy`` (``<stem>_err.npy``) if present;
        * ``spectra.h5`` / ``.hdf5``: datasets ``flux`` (n_stars, n_pixels), optional ``flux_err``
          (same shape) and ``wavelength`` (n_pixels,) in Angstrom (needs ``h5py``);
        * aspcapStar FITS files, given as a sequence of paths, a glob pattern
          (``"spectra/aspcapStar-*.fits"``), a single ``.fits`` file, or a text file
          (``.txt``/``.lst``/``.list``) listing one path per line (blank lines and lines starting
          with ``#`` ignored; relative paths are relative to the list file).
    on_disk : bool, default=False
        For ``.npy`` and HDF5 files, return :class:`~sklearn_selfcal.spectra.SpectraArray` objects
        that read rows from the file when asked (never the whole file at once) instead of arrays
        in memory; aspcapStar files are always read into memory.

    Returns
    -------
    spectra : sklearn.utils.Bunch
        ``flux`` : float32 ndarray (n_stars, n_pixels), normalised flux (dimensionless);
        ``flux_err`` : float32 ndarray of the same shape (1-sigma), or ``None`` if the input has
        none; ``wavelength`` : float64 ndarray (n_pixels,) in Angstrom, or ``None`` if the input
        has none (``.npy``); ``paths`` : list of str, the files read.

    Raises
    ------
    ValueError
        For an unsupported suffix, a glob matching nothing, or arrays of inconsistent shape.
    """
    if not isinstance(path_or_paths, str | os.PathLike):
        return load_aspcap_spectra(path_or_paths)
    path = os.fspath(path_or_paths)
    if glob.has_magic(path):
        matches = sorted(glob.glob(path))
        if not matches:
            raise ValueError(f"read_spectra: the pattern {path!r} matches no file")
        return load_aspcap_spectra(matches)
    kind = kind_of(path, {"npy": NPY, "hdf5": HDF5, "fits": FITS, "list": LISTS})
    if kind == "fits":
        return load_aspcap_spectra([path])
    if kind == "list":
        base = Path(path).parent
        with open(path) as fh:
            lines = [ln.strip() for ln in fh]
        files = [str(base / ln) for ln in lines if ln and not ln.startswith("#")]
        if not files:
            raise ValueError(f"{path}: the list of aspcapStar files is empty")
        return load_aspcap_spectra(files)
    if kind == "npy":
        stem = path[: -len(".npy")]
        err_path = f"{stem}_err.npy"
        if on_disk:
            from ..spectra import SpectraArray

            flux = SpectraArray.from_npy(path)
            flux_err = SpectraArray.from_npy(err_path) if os.path.exists(err_path) else None
            return _disk_bunch(flux, flux_err, None, [path] + ([err_path] if flux_err is not None
                                                              else []))
        flux = _load_npy(path)
        flux_err = _load_npy(err_path) if os.path.exists(err_path) else None
        paths = [path] + ([err_path] if flux_err is not None else [])
        return _spectra_bunch(flux, flux_err, None, paths)
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is a test dependency
        raise ImportError(f"reading HDF5 spectra ({path}) needs h5py: pip install h5py") from exc
    try:
        with h5py.File(path, "r") as fh:
            if "flux" not in fh:
                raise KeyError(f"{path}: no dataset 'flux' (found {list(fh.keys())})")
            if on_disk:
                from ..spectra import SpectraArray

                wavelength = fh["wavelength"][()] if "wavelength" in fh else None
                has_err = "flux_err" in fh
                flux = SpectraArray.from_hdf5(path, "flux")
                flux_err = SpectraArray.from_hdf5(path, "flux_err") if has_err else None
                return _disk_bunch(flux, flux_err, wavelength, [path])
            flux = fh["flux"][()]
            flux_err = fh["flux_err"][()] if "flux_err" in fh else None
            wavelength = fh["wavelength"][()] if "wavelength" in fh else None
    except OSError as exc:
        raise ValueError(f"{path}: corrupt or truncated HDF5 file ({exc})") from None
    return _spectra_bunch(flux, flux_err, wavelength, [path])


def _disk_bunch(flux, flux_err, wavelength, paths):
    """A ``read_spectra`` result for file-backed spectra (shapes checked, nothing read)."""
    shape = (len(flux), flux.n_pixels)
    if flux_err is not None and (len(flux_err), flux_err.n_pixels) != shape:
        raise ValueError(f"{paths[0]}: flux_err has shape {(len(flux_err), flux_err.n_pixels)}, "
                         f"flux has shape {shape}")
    if wavelength is not None and np.shape(wavelength) != (flux.n_pixels,):
        raise ValueError(f"{paths[0]}: wavelength has shape {np.shape(wavelength)}; expected "
                         f"({flux.n_pixels},)")
    return Bunch(flux=flux, flux_err=flux_err, wavelength=wavelength, paths=list(paths))


def _spectra_bunch(flux, flux_err, wavelength, paths):
    where = paths[0]
    flux = np.asarray(flux)
    if flux.ndim != 2:
        raise ValueError(f"{where}: flux must be 2-D (n_stars, n_pixels); got shape {flux.shape}")
    flux = flux.astype(np.float32, copy=False)
    if flux_err is not None:
        flux_err = np.asarray(flux_err)
        if flux_err.shape != flux.shape:
            raise ValueError(
                f"{where}: flux_err has shape {flux_err.shape}, flux has shape {flux.shape}"
            )
        flux_err = flux_err.astype(np.float32, copy=False)
    if wavelength is not None:
        wavelength = np.asarray(wavelength, dtype=np.float64)
        if wavelength.shape != (flux.shape[1],):
            raise ValueError(
                f"{where}: wavelength has shape {wavelength.shape}; expected ({flux.shape[1]},)"
            )
    return Bunch(flux=flux, flux_err=flux_err, wavelength=wavelength, paths=list(paths))




def _load_npy(path):
    """``np.load`` with a clear error naming a damaged file."""
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise ValueError(f"{path}: corrupt or truncated .npy file ({exc})") from None


def _spectra_files(path):
    """aspcapStar files of a glob pattern or a list file (``None`` for array files)."""
    if glob.has_magic(path):
        return sorted(glob.glob(path))
    kind = kind_of(path, {"npy": NPY, "hdf5": HDF5, "fits": FITS, "list": LISTS})
    if kind == "fits":
        return [path]
    if kind == "list":
        base = Path(path).parent
        with open(path) as fh:
            return [str(base / ln.strip()) for ln in fh if ln.strip() and not
                    ln.strip().startswith("#")]
    return None


def spectra_rows(path):
    """How many spectra a file holds and whether it has uncertainties, without reading the flux.

    Parameters
    ----------
    path : str or path-like
        As for :func:`read_spectra`.

    Returns
    -------
    n_rows : int
        Number of spectra (stars): rows of the ``.npy`` array or of the HDF5 ``flux`` dataset, or
        number of aspcapStar files matched.
    has_errors : bool
        Whether uncertainties come with the flux (a sibling ``<stem>_err.npy``, an HDF5
        ``flux_err`` dataset; always True for aspcapStar files).

    Raises
    ------
    ValueError
        For a damaged file, an unsupported suffix or a pattern matching nothing (naming it).
    FileNotFoundError
        For a missing file.
    """
    path = os.fspath(path)
    files = _spectra_files(path)
    if files is not None:
        if not files:
            raise ValueError(f"{path}: no aspcapStar file found")
        return len(files), True
    if not os.path.exists(path):
        raise FileNotFoundError(f"spectra file {path} does not exist")
    if path.endswith(".npy"):
        try:
            shape = np.load(path, mmap_mode="r").shape
        except (ValueError, EOFError, OSError) as exc:
            raise ValueError(f"{path}: corrupt or truncated .npy file ({exc})") from None
        return shape[0], os.path.exists(f"{path[:-4]}_err.npy")
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            if "flux" not in fh:
                raise ValueError(f"{path}: no dataset 'flux' (found {list(fh.keys())})")
            return fh["flux"].shape[0], "flux_err" in fh
    except OSError as exc:
        raise ValueError(f"{path}: corrupt or truncated HDF5 file ({exc})") from None
