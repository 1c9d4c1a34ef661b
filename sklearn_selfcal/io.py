"""Readers and writers for real survey data.

* APOGEE ``allStar`` catalogues (DR16/DR17 FITS): :func:`load_allstar` reads only the columns asked
  for, from a memory map, and cleans APOGEE's conventions (sentinels, flags, byte order).
* APOGEE ``aspcapStar`` spectra: :func:`load_aspcap_spectra` puts pseudo-continuum-normalised flux
  and its uncertainty on the 7,514-pixel ASPCAP grid.
* The command line's inputs and outputs: :func:`read_catalogue` (FITS, Parquet, CSV, ECSV),
  :func:`read_spectra` (``.npy``, HDF5, aspcapStar files), :func:`write_catalogue` (Parquet, FITS)
  and :func:`write_table` (ECSV). Every writer goes through :func:`atomic_write`, so an interrupted
  run never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import secrets
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits
from sklearn.utils import Bunch

from ._apogee import (
    ASPCAP_CHIP_RANGES,
    DLOG10_LAMBDA,
    LOG10_LAMBDA0,
    N_ASPCAP_PIXELS,
    aspcap_wavelength,
)
from ._progress import progress

__all__ = [
    "ALLSTAR_SENTINELS",
    "GAIA_NAMES",
    "load_allstar",
    "load_aspcap_spectra",
    "read_catalogue",
    "read_spectra",
    "write_catalogue",
    "write_table",
    "atomic_write",
]

#: Values APOGEE writes for "no measurement" in floating-point allStar columns: -9999 (Gaia
#: columns of DR16), -9999.99 (parameters, abundances, photometry), -999.99 / -999 (their
#: uncertainties) and -9999.9999. Matched to a relative tolerance of 1e-6, which absorbs float32
#: storage (float32(-9999.99) = -9999.990234...).
ALLSTAR_SENTINELS = (-9999.0, -9999.99, -9999.9999, -999.0, -999.99)
_SENTINEL_RTOL = 1e-6

#: allStar spelling -> name used by this library (Gaia / WISE lower case). DR17 (Gaia EDR3
#: cross-match, ``GAIAEDR3_*``) and DR16 (Gaia DR2 cross-match, ``GAIA_*``) spellings.
#: Units: parallax (mas), proper motions (mas/yr), magnitudes (mag), radial velocity (km/s),
#: ra/dec (deg).
GAIA_NAMES = {
    # DR17
    "GAIAEDR3_SOURCE_ID": "source_id",
    "GAIAEDR3_PARALLAX": "parallax",
    "GAIAEDR3_PARALLAX_ERROR": "parallax_error",
    "GAIAEDR3_PMRA": "pmra",
    "GAIAEDR3_PMRA_ERROR": "pmra_error",
    "GAIAEDR3_PMDEC": "pmdec",
    "GAIAEDR3_PMDEC_ERROR": "pmdec_error",
    "GAIAEDR3_PHOT_G_MEAN_MAG": "phot_g_mean_mag",
    "GAIAEDR3_PHOT_BP_MEAN_MAG": "phot_bp_mean_mag",
    "GAIAEDR3_PHOT_RP_MEAN_MAG": "phot_rp_mean_mag",
    "GAIAEDR3_DR2_RADIAL_VELOCITY": "radial_velocity",
    "GAIAEDR3_DR2_RADIAL_VELOCITY_ERROR": "radial_velocity_error",
    # DR16
    "GAIA_SOURCE_ID": "source_id",
    "GAIA_PARALLAX": "parallax",
    "GAIA_PARALLAX_ERROR": "parallax_error",
    "GAIA_PMRA": "pmra",
    "GAIA_PMRA_ERROR": "pmra_error",
    "GAIA_PMDEC": "pmdec",
    "GAIA_PMDEC_ERROR": "pmdec_error",
    "GAIA_PHOT_G_MEAN_MAG": "phot_g_mean_mag",
    "GAIA_PHOT_BP_MEAN_MAG": "phot_bp_mean_mag",
    "GAIA_PHOT_RP_MEAN_MAG": "phot_rp_mean_mag",
    "GAIA_RADIAL_VELOCITY": "radial_velocity",
    "GAIA_RADIAL_VELOCITY_ERROR": "radial_velocity_error",
    # both releases
    "RA": "ra",
    "DEC": "dec",
    "WISE_4_5": "w2mpro",
    "WISE_4_5_ERR": "w2mpro_error",
}
# Library name -> allStar spellings, in the order tried (DR17 first).
_GAIA_SPELLINGS = {}
for _allstar, _gaia in GAIA_NAMES.items():
    _GAIA_SPELLINGS.setdefault(_gaia, []).append(_allstar)

# Abundance columns whose ``<BASE>_FLAG`` sibling marks unreliable values: [X/Fe] and [Fe/H].
_ABUNDANCE = re.compile(r"^(?:[A-Z]+_FE|FE_H)$")
_SOURCE_ID = re.compile(r"^GAIA(?:EDR3)?_SOURCE_ID$")


# ---------------------------------------------------------------------------------------------
# FITS tables, column by column


def _first_table_hdu(hdul, path):
    for hdu in hdul:
        if isinstance(hdu, fits.BinTableHDU | fits.TableHDU):
            return hdu
    raise ValueError(f"{path}: no FITS table extension found")


def _column_shape(columns, name):
    """Per-row shape of a FITS column: ``()`` for scalars, ``None`` for variable-length arrays."""
    if columns[name].format.format in ("P", "Q"):
        return None
    return columns.dtype[name].shape


def _native(values):
    """Copy ``values`` out of the file in native byte order (strings decoded and stripped)."""
    values = np.asarray(values)
    if values.dtype.kind == "S":
        return np.char.strip(np.char.decode(values, "ascii", errors="replace")).astype(object)
    if values.dtype.kind == "U":
        return np.char.strip(values).astype(object)
    return values.astype(values.dtype.newbyteorder("="), copy=True)


def _table_columns(hdu):
    """``{name: (TNULL or None, per-row shape)}`` for every column of a FITS table HDU.

    Call it before touching ``hdu.data`` and keep no ``Column`` object: astropy copies every
    column out of the memory map when the file closes if ``Column`` objects created after the
    data are still referenced (``FITS_rec.__del__``), which would read the whole table.
    """
    columns = hdu.columns
    return {col.name: (col.null, _column_shape(columns, col.name)) for col in columns}


def _resolve_names(available, requested, path, *, aliases=None):
    """Map each requested name to a file column (exact, then case-insensitive, then aliases).

    Returns a list of ``(output_name, file_name)``; raises a ``KeyError`` naming every requested
    column that is absent.
    """
    by_upper = {}
    for name in available:
        by_upper.setdefault(name.upper(), name)
    resolved, missing = [], []
    for name in requested:
        if name in available:
            resolved.append((name, name))
        elif aliases and name in aliases:
            found = [s for s in aliases[name] if s in available]
            if found:
                resolved.append((name, found[0]))
            else:
                missing.append(f"{name} (tried {', '.join(aliases[name])})")
        elif name.upper() in by_upper:
            resolved.append((by_upper[name.upper()], by_upper[name.upper()]))
        else:
            missing.append(name)
    if missing:
        hint = ""
        if aliases is None and any(name in _GAIA_SPELLINGS for name in missing):
            hint = " (Gaia names such as 'parallax' need gaia_names=True)"
        raise KeyError(
            f"{path}: requested column(s) not in the file: {missing}{hint}; the file has "
            f"{len(available)} columns, e.g. {list(available)[:20]}"
        )
    seen, unique = set(), []
    for out, src in resolved:
        if out not in seen:
            seen.add(out)
            unique.append((out, src))
    return unique


def _int_nulls(values, null):
    """Boolean mask of FITS TNULL values in an integer column (``None`` if there are none)."""
    if values.dtype.kind not in "iu" or null is None:
        return None
    try:
        null = int(null)
    except (TypeError, ValueError):
        return None
    bad = values == null
    return bad if bad.any() else None


def _to_series_values(values, bad):
    """Integer column with missing entries (``bad``) -> pandas nullable integer array."""
    if bad is None:
        return values
    kind = {"i": "Int", "u": "UInt"}[values.dtype.kind]
    arr = pd.array(values, dtype=f"{kind}{8 * values.dtype.itemsize}")
    arr[bad] = pd.NA
    return arr


def _read_fits_columns(hdu, wanted, info, path):
    """Read the named columns of ``hdu`` one at a time into native-order arrays.

    Multidimensional columns are flattened (C order of the per-row array). Returns
    ``{file_name: [(out_suffix, array)]}`` where ``out_suffix`` is ``""`` for a scalar column and
    ``"_i"`` for element ``i`` of a multidimensional one.
    """
    data = hdu.data  # a memory map: nothing is read until a field is accessed
    out = {}
    for name in wanted:
        if info[name][1] is None:
            raise ValueError(
                f"{path}: column {name!r} holds variable-length arrays, which are not supported"
            )
        raw = data.field(name)
        values = _native(raw)
        del raw
        if values.ndim == 1:
            out[name] = [("", values)]
        else:
            flat = values.reshape(len(values), -1)
            out[name] = [(f"_{i}", flat[:, i].copy()) for i in range(flat.shape[1])]
    del data
    return out


# ---------------------------------------------------------------------------------------------
# allStar


def load_allstar(path, columns=None, gaia_names=False, flagged_to_nan=True):
    """Read an APOGEE allStar catalogue (DR16 or DR17 FITS) into a DataFrame.

    The file is opened as a memory map and only the requested columns are copied out, one at a
    time, so the ~4 GB, ~470,000-row real catalogue is never loaded whole: memory use is about
    the size of the returned DataFrame (plus the ``<X>_FE_FLAG`` columns read for masking).

    Cleaning applied to the copies (the file is never modified):

    * native byte order (FITS is big-endian);
    * floating-point sentinels :data:`ALLSTAR_SENTINELS` (-9999, -9999.99, -999.99, ...) -> NaN;
    * integer columns: values equal to the column's FITS ``TNULL`` -> missing (the column becomes
      a pandas nullable integer); Gaia source identifiers <= 0 -> missing;
    * with ``flagged_to_nan``, each ``<X>_FE``, ``<X>_FE_ERR``, ``FE_H`` and ``FE_H_ERR`` is set to
      NaN where its ``<X>_FE_FLAG`` (``FE_H_FLAG``) is non-zero, a null flag counting as set (the
      flag column is read for this even when not requested, and returned only if requested);
    * string columns decoded (ASCII) and stripped of surrounding blanks.

    Parameters
    ----------
    path : str or path-like
        allStar FITS file; the first table extension (HDU 1) is read.
    columns : list of str, optional
        Columns to read, in this order. ``None`` reads every scalar column and skips the
        multidimensional ones (``PARAM``, ``FPARAM``, ``PARAM_COV``, ``FELEM``, ``X_H``, ...).
        A multidimensional column named here explicitly is expanded into ``NAME_0 .. NAME_k``
        (its elements flattened in C order of the per-row array, e.g. ``PARAM_COV_0 ..
        PARAM_COV_80`` for the 9 x 9 covariance). Names are matched exactly, then
        case-insensitively (FITS names are case-insensitive); with ``gaia_names=True`` the
        library's Gaia names (``"parallax"``, ...) are also accepted and resolved to the spelling
        of the file's data release.
    gaia_names : bool, default=False
        Rename the Gaia/WISE columns shipped in allStar to the names used by this library (see
        :data:`GAIA_NAMES`): DR16 ``GAIA_PARALLAX`` / DR17 ``GAIAEDR3_PARALLAX`` -> ``parallax``
        (mas), ``*_PMRA``/``*_PMDEC`` (+ ``_ERROR``) -> ``pmra``/``pmdec`` (mas/yr),
        ``*_PHOT_{G,BP,RP}_MEAN_MAG`` -> ``phot_{g,bp,rp}_mean_mag`` (mag), the radial velocity
        -> ``radial_velocity`` (km/s), ``*_SOURCE_ID`` -> ``source_id``, ``RA``/``DEC`` ->
        ``ra``/``dec`` (deg), ``WISE_4_5``/``WISE_4_5_ERR`` -> ``w2mpro``/``w2mpro_error`` (mag).
        If a file carried both spellings, the DR17 one takes the name and the other keeps its own.
    flagged_to_nan : bool, default=True
        Mask flagged abundances as described above.

    Returns
    -------
    frame : pandas.DataFrame of shape (n_stars, n_columns)
        One row per allStar row, in file order, with the file's units (K for TEFF, dex for
        abundances and log g, km/s for velocities, mag for photometry, deg for coordinates).

    Raises
    ------
    KeyError
        Naming every requested column that the file lacks.
    ValueError
        If a requested column holds variable-length arrays.
    """
    path = os.fspath(path)
    with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
        hdu = _first_table_hdu(hdul, path)
        info = _table_columns(hdu)
        if columns is None:
            pairs = [(n, n) for n, (_, shape) in info.items() if shape == ()]
        else:
            if isinstance(columns, str):
                columns = [columns]
            aliases = _GAIA_SPELLINGS if gaia_names else None
            pairs = _resolve_names(info, list(columns), path, aliases=aliases)
        sources = [src for _, src in pairs]
        flags = {}
        if flagged_to_nan:
            for src in sources:
                base = src[:-4] if src.endswith("_ERR") else src
                flag = f"{base}_FLAG"
                if _ABUNDANCE.match(base) and flag in info and info[flag][1] == ():
                    flags[src] = flag
        to_read = list(dict.fromkeys(sources + list(flags.values())))
        read = _read_fits_columns(hdu, to_read, info, path)

    result = {}
    for out_name, src in pairs:
        null = info[src][0]
        for suffix, values in read[src]:
            values, missing = _clean_allstar_values(values, null, src)
            if src in flags:
                flag_values = read[flags[src]][0][1]
                flagged = np.asarray(flag_values != 0)
                if values.dtype.kind == "f":
                    values = np.where(flagged, np.nan, values).astype(values.dtype)
            result[f"{out_name}{suffix}"] = _to_series_values(values, missing)

    frame = pd.DataFrame(result)
    if gaia_names:
        frame = frame.rename(columns=_gaia_renames(frame.columns))
    return frame


def _clean_allstar_values(values, null, src):
    """Sentinels -> NaN (floats) or a missing mask (integers)."""
    if values.dtype.kind == "f":
        bad = np.zeros(values.shape, dtype=bool)
        finite = np.isfinite(values)
        for s in ALLSTAR_SENTINELS:
            bad |= finite & (np.abs(values - s) <= _SENTINEL_RTOL * abs(s))
        if bad.any():
            values = values.copy()
            values[bad] = np.nan
        return values, None
    if values.dtype.kind in "iu":
        bad = _int_nulls(values, null)
        if _SOURCE_ID.match(src.upper()):
            nonpositive = values <= 0
            bad = nonpositive if bad is None else bad | nonpositive
            if not bad.any():
                bad = None
        return values, bad
    return values, None


def _gaia_renames(present):
    """Renames ``{allStar name: library name}`` for the columns present, without collisions.

    A library name already present (asked for under that name) is kept; otherwise the first
    spelling present in :data:`GAIA_NAMES` order (DR17 before DR16) takes it.
    """
    present = list(present)
    taken = set(present)
    renames = {}
    for gaia in _GAIA_SPELLINGS:
        for spelling in _GAIA_SPELLINGS[gaia]:
            if spelling in present and spelling not in renames and gaia not in taken:
                renames[spelling] = gaia
                taken.add(gaia)
                break
    return renames


def _looks_like_allstar(names):
    names = set(names)
    return "APOGEE_ID" in names and "ASPCAPFLAG" in names


# ---------------------------------------------------------------------------------------------
# aspcapStar spectra


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
    with fits.open(path, memmap=False) as hdul:
        if len(hdul) < 3:
            raise ValueError(
                f"{path}: an aspcapStar file needs HDU 1 (flux) and HDU 2 (error); "
                f"found {len(hdul)} HDU(s)"
            )
        header = hdul[1].header
        flux, err = hdul[1].data, hdul[2].data
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
    from joblib import Parallel, delayed

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


# ---------------------------------------------------------------------------------------------
# Catalogues and spectra for the command line

_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_CSV_SUFFIXES = (".csv", ".csv.gz")
_ECSV_SUFFIXES = (".ecsv",)
_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
_LIST_SUFFIXES = (".txt", ".lst", ".list")


def _kind(path, kinds):
    name = Path(path).name.lower()
    for kind, suffixes in kinds.items():
        if name.endswith(suffixes):
            return kind
    expected = ", ".join(s for suffixes in kinds.values() for s in suffixes)
    raise ValueError(
        f"{path}: unsupported file format {Path(path).suffix!r}; expected one of {expected}"
    )


def read_catalogue(path, columns=None):
    """Read a star catalogue (FITS, Parquet, CSV or ECSV), choosing the reader from the suffix.

    A FITS file that looks like an APOGEE allStar catalogue (it has ``APOGEE_ID`` and
    ``ASPCAPFLAG`` columns) is read with :func:`load_allstar` with ``gaia_names=True``, so the Gaia
    columns it ships come out under this library's names; other FITS tables are read column by
    column from a memory map with the same byte-order, string and TNULL handling but no APOGEE
    sentinel or flag cleaning.

    Parameters
    ----------
    path : str or path-like
        ``.fits``/``.fit``/``.fts`` (optionally ``.gz``), ``.parquet``/``.pq``, ``.csv``
        (optionally ``.gz``) or ``.ecsv``.
    columns : list of str, optional
        Columns to read (in this order); ``None`` reads all (for FITS, all scalar columns).

    Returns
    -------
    frame : pandas.DataFrame
        The catalogue, in the file's units (see :func:`load_allstar` for allStar files).

    Raises
    ------
    ValueError
        For an unsupported suffix.
    KeyError
        Naming every requested column that is absent.
    """
    path = os.fspath(path)
    kind = _kind(
        path,
        {"fits": _FITS_SUFFIXES, "parquet": _PARQUET_SUFFIXES, "csv": _CSV_SUFFIXES,
         "ecsv": _ECSV_SUFFIXES},
    )
    if columns is not None:
        columns = [columns] if isinstance(columns, str) else list(columns)
    if kind == "fits":
        return _read_fits_catalogue(path, columns)
    if kind == "parquet":
        import pyarrow.parquet as pq

        if columns is not None:
            _resolve_exact(pq.read_schema(path).names, columns, path)
        return pd.read_parquet(path, columns=columns)
    if kind == "csv":
        if columns is not None:
            _resolve_exact(pd.read_csv(path, nrows=0).columns, columns, path)
            return pd.read_csv(path, usecols=columns)[columns]
        return pd.read_csv(path)
    from astropy.table import Table

    table = Table.read(path, format="ascii.ecsv")
    if columns is not None:
        _resolve_exact(table.colnames, columns, path)
        table = table[columns]
    return table.to_pandas()


def _resolve_exact(available, requested, path):
    missing = [c for c in requested if c not in set(available)]
    if missing:
        available = list(available)
        raise KeyError(
            f"{path}: requested column(s) not in the file: {missing}; the file has "
            f"{len(available)} columns, e.g. {available[:20]}"
        )


def _read_fits_catalogue(path, columns):
    with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
        is_allstar = _looks_like_allstar(_first_table_hdu(hdul, path).columns.names)
    if is_allstar:
        return load_allstar(path, columns=columns, gaia_names=True)
    return _read_fits_table(path, columns)


def _read_fits_table(path, columns):
    """Any FITS table, column by column (byte order, strings, TNULL; no APOGEE cleaning)."""
    with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
        hdu = _first_table_hdu(hdul, path)
        info = _table_columns(hdu)
        if columns is None:
            pairs = [(n, n) for n, (_, shape) in info.items() if shape == ()]
        else:
            pairs = _resolve_names(info, columns, path)
        read = _read_fits_columns(hdu, [src for _, src in pairs], info, path)
    result = {}
    for out_name, src in pairs:
        null = info[src][0]
        for suffix, values in read[src]:
            result[f"{out_name}{suffix}"] = _to_series_values(values, _int_nulls(values, null))
    return pd.DataFrame(result)


def read_spectra(path_or_paths):
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
    kind = _kind(
        path,
        {"npy": (".npy",), "hdf5": _HDF5_SUFFIXES, "fits": _FITS_SUFFIXES, "list": _LIST_SUFFIXES},
    )
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
        flux = np.load(path)
        stem = path[: -len(".npy")]
        err_path = f"{stem}_err.npy"
        flux_err = np.load(err_path) if os.path.exists(err_path) else None
        paths = [path] + ([err_path] if flux_err is not None else [])
        return _spectra_bunch(flux, flux_err, None, paths)
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is a test dependency
        raise ImportError(f"reading HDF5 spectra ({path}) needs h5py: pip install h5py") from exc
    with h5py.File(path, "r") as fh:
        if "flux" not in fh:
            raise KeyError(f"{path}: no dataset 'flux' (found {list(fh.keys())})")
        flux = fh["flux"][()]
        flux_err = fh["flux_err"][()] if "flux_err" in fh else None
        wavelength = fh["wavelength"][()] if "wavelength" in fh else None
    return _spectra_bunch(flux, flux_err, wavelength, [path])


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


# ---------------------------------------------------------------------------------------------
# Writers


@contextlib.contextmanager
def atomic_write(path):
    """Context manager giving a temporary path to write, renamed onto ``path`` on success.

    The temporary file is created by the caller's writer in the same directory as ``path`` (so
    the final :func:`os.replace` is an atomic rename on the same file system), under a hidden
    name ending with ``path``'s own suffix (so writers that choose a format from the suffix still
    work). On success it is flushed to disk and renamed onto ``path``, replacing any existing
    file; if the block raises (including ``KeyboardInterrupt``), the temporary file is removed and
    ``path`` is left untouched: it never holds a half-written file.

    Parameters
    ----------
    path : str or path-like
        Final file name. Its directory must exist.

    Yields
    ------
    tmp_path : str
        Where to write.

    Examples
    --------
    >>> with atomic_write("out/summary.json") as tmp:  # doctest: +SKIP
    ...     Path(tmp).write_text(text)
    """
    path = Path(path)
    directory = path.parent
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot write {path}: directory {directory} does not exist")
    suffix = "".join(path.suffixes) or ".tmp"
    tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp{suffix}"
    try:
        yield str(tmp)
        if not tmp.exists():
            raise FileNotFoundError(f"atomic_write: nothing was written to {tmp} for {path}")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _frame_to_table(frame, units=None, meta=None):
    """An astropy Table of ``frame`` (index dropped), NaN kept as NaN in float columns."""
    from astropy.table import Column, Table

    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    if not frame.columns.is_unique:
        dup = frame.columns[frame.columns.duplicated()].tolist()
        raise ValueError(f"duplicate column name(s) {dup}: cannot write a table")
    table = Table.from_pandas(frame, index=False)
    for name in table.colnames:
        col = table[name]
        if col.dtype.kind == "f" and getattr(col, "mask", None) is not None:
            table[name] = Column(col.filled(np.nan), name=name)
    if units:
        unknown = [c for c in units if c not in table.colnames]
        if unknown:
            raise KeyError(f"units given for column(s) not in the frame: {unknown}")
        for name, unit in units.items():
            table[name].unit = unit
    if meta:
        table.meta.update(meta)
    return table


def write_catalogue(frame, path, units=None):
    """Write a catalogue to Parquet or FITS, atomically (see :func:`atomic_write`).

    Parameters
    ----------
    frame : pandas.DataFrame
        The catalogue; not modified.
    path : str or path-like
        ``.parquet``/``.pq`` (pyarrow; the index and pandas dtypes are kept) or
        ``.fits``/``.fit``/``.fts`` (astropy binary table; the index is dropped, NaN is kept
        as NaN, missing values of nullable integer columns become FITS ``TNULL`` values and
        missing strings become empty strings). An existing file is replaced.
    units : dict of str to str, optional
        FITS only: ``{column: unit}`` written as ``TUNITn`` (e.g. ``{"parallax": "mas"}``).

    Raises
    ------
    ValueError
        For an unsupported suffix.
    """
    path = os.fspath(path)
    kind = _kind(path, {"parquet": _PARQUET_SUFFIXES, "fits": _FITS_SUFFIXES[:3]})
    if kind == "parquet":
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame, got {type(frame).__name__}")
        with atomic_write(path) as tmp:
            frame.to_parquet(tmp)
        return
    table = _frame_to_table(frame, units=units)
    with atomic_write(path) as tmp:
        table.write(tmp, format="fits")


def write_table(frame, path, units=None, meta=None):
    """Write a table to ECSV (astropy), atomically (see :func:`atomic_write`).

    Parameters
    ----------
    frame : pandas.DataFrame
        The table; not modified. The index is dropped (``reset_index()`` first to keep it).
    path : str or path-like
        Output ``.ecsv`` file; an existing file is replaced.
    units : dict of str to str, optional
        ``{column: unit}`` recorded in the ECSV header (e.g. ``{"R": "kpc"}``).
    meta : dict, optional
        Table metadata recorded in the ECSV header (e.g. the fit settings).

    Raises
    ------
    ValueError
        If ``path`` does not end with ``.ecsv``.
    """
    path = os.fspath(path)
    _kind(path, {"ecsv": _ECSV_SUFFIXES})
    table = _frame_to_table(frame, units=units, meta=meta)
    with atomic_write(path) as tmp:
        table.write(tmp, format="ascii.ecsv")
