"""Star catalogues in any common format, read (only the columns needed) and cleaned the same way."""

from __future__ import annotations

import csv
import gzip
import os

import pandas as pd

from ..cleaning import as_frame, clean_catalogue
from ..columns import check_unique, resolve_columns
from ._fits import int_nulls, nullable, open_table, read_columns, resolve_names, table_columns
from ._formats import CSV, ECSV, FITS, HDF5, PARQUET, kind_of
from .allstar import load_allstar, looks_like_allstar

__all__ = ["catalogue_columns", "read_catalogue"]

_KINDS = {"fits": FITS, "parquet": PARQUET, "csv": CSV, "ecsv": ECSV, "hdf5": HDF5}


def catalogue_columns(path, hdu="auto"):
    """The column names of a catalogue file, read from its header only.

    Parameters
    ----------
    path : str or path-like
        FITS, Parquet, CSV, ECSV or HDF5 catalogue (see :func:`read_catalogue`).
    hdu : "auto", int or str, default="auto"
        FITS only: the table HDU (see :func:`read_catalogue`).

    Returns
    -------
    names : list of str
        In file order (scalar FITS columns only).

    Raises
    ------
    ValueError
        For an unsupported suffix, a damaged file, or a name that appears twice (naming it).
    """
    path = os.fspath(path)
    kind = kind_of(path, _KINDS)
    if kind == "fits":
        with open_table(path, hdu) as (table, _):
            names = list(table.columns.names)
            shapes = table_columns(table)
        check_unique(names, path)
        return [n for n in names if shapes[n][1] == ()]
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            names = list(pq.read_schema(path).names)
        except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for damaged files
            raise ValueError(f"{path}: corrupt or truncated Parquet file ({exc})") from None
        names = [n for n in names if n != "__index_level_0__"]
    elif kind == "csv":
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", newline="") as fh:
            names = next(csv.reader(fh), [])
    else:
        names = _read_astropy(path, kind).colnames
    check_unique(names, path)
    return names


def _read_astropy(path, kind):
    from astropy.table import Table

    try:
        return Table.read(path, format="ascii.ecsv" if kind == "ecsv" else "hdf5")
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: cannot read the {kind.upper()} table ({exc})") from None


def read_catalogue(path, columns=None, *, mapping=None, gaia_names=None, clean=True, hdu="auto"):
    """Read a star catalogue, choosing the reader from the suffix, and clean it.

    Every format goes through the same cleaning
    (:func:`sklearn_selfcal.cleaning.clean_catalogue`): masked entries, sentinels (-9999,
    -9999.99, 99.999 mag, ...) and values outside each role's physical range become NaN with a
    warning per column, flagged abundances become NaN, and a column name that appears twice is an
    error. A damaged file is named as such.

    Parameters
    ----------
    path : str or path-like
        ``.fits``/``.fit``/``.fts`` (optionally ``.gz``), ``.parquet``/``.pq``, ``.csv``
        (optionally ``.gz``), ``.ecsv`` or ``.h5``/``.hdf5`` (an astropy HDF5 table). A FITS file
        that looks like an APOGEE allStar catalogue is read with
        :func:`~sklearn_selfcal.io.load_allstar` (memory-mapped, column by column). Of a FITS
        file with several tables, ``hdu`` says which is read.
    columns : list of str, optional
        Columns to read (in this order; names as in the file); ``None`` reads all (for FITS, all
        scalar columns).
    mapping : mapping of str to str, optional
        Explicit ``{role: column}`` for the cleaning (the ``[columns]`` config section).
    gaia_names : bool, optional
        allStar files only: rename its Gaia columns to the Gaia archive's names (see
        :func:`~sklearn_selfcal.io.load_allstar`); ``None`` means True. With False, ``columns``
        are the file's own names.
    clean : bool, default=True
        Run the cleaning (:func:`sklearn_selfcal.cleaning.clean_catalogue`); with False the table
        is returned as read, sentinels and all.
    hdu : "auto", int or str, default="auto"
        FITS only: the table HDU. ``"auto"`` reads the table whose header says ``INSTRMNT =
        'APOGEE'`` (the APOGEE results of an SDSS-V ``astraAllStarASPCAP`` file, HDU 2; HDU 1
        holds BOSS results), else HDU 2 of an astra summary file, else the first table; an integer
        is a position, other text an ``INSTRMNT`` or ``EXTNAME`` value
        (:func:`~sklearn_selfcal.io._fits.choose_hdu`).

    Returns
    -------
    frame : pandas.DataFrame
        The catalogue in the file's units; ``frame.attrs["cleaning"]`` counts what was set to NaN
        (when ``clean``); for FITS, ``frame.attrs["source"]`` says which HDU was read and why.

    Raises
    ------
    ValueError
        For an unsupported suffix, a damaged file or duplicate column names.
    KeyError
        Naming every requested column that is absent.

    Examples
    --------
    >>> import warnings
    >>> from sklearn_selfcal.io import read_catalogue
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     frame = read_catalogue("tests/data/apogee_dr17_allstar_95stars_kepler.fits",
    ...                            columns=["APOGEE_ID", "GAIAEDR3_PARALLAX", "LOGG"],
    ...                            gaia_names=False)
    >>> list(frame.columns), len(frame)
    (['APOGEE_ID', 'GAIAEDR3_PARALLAX', 'LOGG'], 95)
    """
    path = os.fspath(path)
    kind = kind_of(path, _KINDS)
    if columns is not None:
        columns = [columns] if isinstance(columns, str) else list(columns)
    available = catalogue_columns(path, hdu)
    if columns is not None:
        missing = [c for c in columns if c not in available]
        if missing and kind != "fits":  # FITS readers match case-insensitively and name misses
            raise KeyError(f"{path}: requested column(s) not in the file: {missing}; the file has "
                           f"{len(available)} columns, e.g. {available[:20]}")
    if kind == "fits":
        if looks_like_allstar(available):
            frame = load_allstar(path, columns=columns, gaia_names=gaia_names is not False,
                                 flagged_to_nan=False, hdu=hdu)
        else:
            frame = _read_fits_table(path, columns, hdu)
    elif kind == "parquet":
        try:
            frame = pd.read_parquet(path, columns=columns)
        except Exception as exc:  # pyarrow's errors for damaged files
            raise ValueError(f"{path}: corrupt or truncated Parquet file ({exc})") from None
    elif kind == "csv":
        try:
            frame = pd.read_csv(path, usecols=columns, low_memory=False)
        except (pd.errors.ParserError, EOFError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: cannot parse the CSV file ({exc})") from None
        if columns is not None:
            frame = frame[columns]
    else:
        table = _read_astropy(path, kind)
        frame = as_frame(table[columns] if columns is not None else table)
    if not clean:
        return frame
    cleaned, _ = clean_catalogue(frame, resolve_columns(frame.columns, mapping), stacklevel=2)
    return cleaned


def _read_fits_table(path, columns, hdu):
    """Any FITS table, column by column (byte order, strings, TNULL)."""
    with open_table(path, hdu) as (hdu, where):
        info = table_columns(hdu)
        if columns is None:
            pairs = [(n, n) for n, (_, shape) in info.items() if shape == ()]
        else:
            pairs = resolve_names(info, columns, path)
        read = read_columns(hdu, [src for _, src in pairs], info, path)
    result = {}
    for out_name, src in pairs:
        null = info[src][0]
        for suffix, values in read[src]:
            result[f"{out_name}{suffix}"] = nullable(values, int_nulls(values, null))
    frame = pd.DataFrame(result)
    frame.attrs["source"] = {"path": path, **where}
    return frame
