"""FITS tables read column by column from a memory map, with a clear error for a damaged file."""

from __future__ import annotations

import contextlib
import os
import warnings

import numpy as np
import pandas as pd
from astropy.io import fits

__all__ = ["open_table", "table_columns", "resolve_names", "read_columns", "int_nulls",
           "nullable"]

_DAMAGE_HINTS = ("truncated", "Header size is not multiple", "missing END card", "END card")


@contextlib.contextmanager
def open_table(path):
    """Open ``path`` and yield its first table HDU, or raise naming a damaged or tableless file.

    Parameters
    ----------
    path : str

    Yields
    ------
    hdu : astropy.io.fits.BinTableHDU or TableHDU
        Backed by a memory map: nothing is read until a field is accessed.

    Raises
    ------
    ValueError
        ``"<path>: corrupt or truncated FITS file (...)"`` when the file is not a FITS file, ends
        before its headers say, or holds no table extension.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(path, memmap=True, lazy_load_hdus=False)
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise ValueError(f"{path}: corrupt or truncated FITS file ({exc})") from None
    with hdul:
        damage = [str(w.message) for w in caught if any(h in str(w.message) for h in _DAMAGE_HINTS)]
        hdu = next((h for h in hdul if isinstance(h, fits.BinTableHDU | fits.TableHDU)), None)
        if damage:
            raise ValueError(f"{path}: corrupt or truncated FITS file ({damage[0].splitlines()[0]})")
        if hdu is None:
            raise ValueError(f"{path}: no FITS table extension found")
        if not path.endswith(".gz"):
            end = hdu._data_offset + hdu._data_size
            size = os.path.getsize(path)
            if end > size:
                raise ValueError(f"{path}: corrupt or truncated FITS file (the table needs {end:,} "
                                 f"bytes, the file has {size:,})")
        yield hdu


def _column_shape(columns, name):
    """Per-row shape of a FITS column: ``()`` for scalars, ``None`` for variable-length arrays."""
    if columns[name].format.format in ("P", "Q"):
        return None
    return columns.dtype[name].shape


def table_columns(hdu):
    """``{name: (TNULL or None, per-row shape)}`` for every column of a FITS table HDU.

    Call it before touching ``hdu.data`` and keep no ``Column`` object: astropy copies every
    column out of the memory map when the file closes if ``Column`` objects created after the
    data are still referenced (``FITS_rec.__del__``), which would read the whole table.
    """
    columns = hdu.columns
    return {col.name: (col.null, _column_shape(columns, col.name)) for col in columns}


def resolve_names(available, requested, path, *, aliases=None, hint=""):
    """Map each requested name to a file column (exact, then aliases, then case-insensitive).

    Parameters
    ----------
    available : iterable of str
    requested : list of str
    path : str
    aliases : dict of str to list of str, optional
        Other spellings of a requested name, tried in order.
    hint : str
        Appended to the error message.

    Returns
    -------
    pairs : list of (output name, file name)

    Raises
    ------
    KeyError
        Naming every requested column that is absent.
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
        raise KeyError(f"{path}: requested column(s) not in the file: {missing}{hint}; the file "
                       f"has {len(available)} columns, e.g. {list(available)[:20]}")
    seen, unique = set(), []
    for out, src in resolved:
        if out not in seen:
            seen.add(out)
            unique.append((out, src))
    return unique


def _native(values):
    """Copy ``values`` out of the file in native byte order (strings decoded and stripped)."""
    values = np.asarray(values)
    if values.dtype.kind == "S":
        return np.char.strip(np.char.decode(values, "ascii", errors="replace")).astype(object)
    if values.dtype.kind == "U":
        return np.char.strip(values).astype(object)
    return values.astype(values.dtype.newbyteorder("="), copy=True)


def read_columns(hdu, wanted, info, path):
    """Read the named columns of ``hdu`` one at a time into native-order arrays.

    Multidimensional columns are flattened (C order of the per-row array).

    Returns
    -------
    columns : dict of str to list of (str, ndarray)
        ``{file_name: [(out_suffix, array)]}`` where ``out_suffix`` is ``""`` for a scalar column
        and ``"_i"`` for element ``i`` of a multidimensional one.

    Raises
    ------
    ValueError
        For a variable-length column, or a file that ends inside a column (naming the file).
    """
    data = hdu.data  # a memory map: nothing is read until a field is accessed
    out = {}
    for name in wanted:
        if info[name][1] is None:
            raise ValueError(
                f"{path}: column {name!r} holds variable-length arrays, which are not supported")
        try:
            raw = data.field(name)
            values = _native(raw)
        except (TypeError, ValueError, OSError) as exc:
            raise ValueError(f"{path}: corrupt or truncated FITS file (reading column {name!r}: "
                             f"{exc})") from None
        del raw
        if values.ndim == 1:
            out[name] = [("", values)]
        else:
            flat = values.reshape(len(values), -1)
            out[name] = [(f"_{i}", flat[:, i].copy()) for i in range(flat.shape[1])]
    del data
    return out


def int_nulls(values, null):
    """Boolean mask of FITS TNULL values in an integer column (``None`` if there are none)."""
    if values.dtype.kind not in "iu" or null is None:
        return None
    try:
        null = int(null)
    except (TypeError, ValueError):
        return None
    bad = values == null
    return bad if bad.any() else None


def nullable(values, bad):
    """Integer column with missing entries (``bad``) -> pandas nullable integer array."""
    if bad is None:
        return values
    kind = {"i": "Int", "u": "UInt"}[values.dtype.kind]
    arr = pd.array(values, dtype=f"{kind}{8 * values.dtype.itemsize}")
    arr[bad] = pd.NA
    return arr
