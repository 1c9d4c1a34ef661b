"""FITS tables read column by column from a memory map, with a clear error for a damaged file."""

from __future__ import annotations

import contextlib
import os
import warnings

import numpy as np
import pandas as pd
from astropy.io import fits

from ._integrity import check_fits_file

__all__ = ["AUTO_HDU", "choose_hdu", "open_table", "table_columns", "resolve_names",
           "read_columns", "int_nulls", "nullable"]

_DAMAGE_HINTS = ("truncated", "Header size is not multiple", "missing END card", "END card")


#: How the table HDU of a FITS catalogue is chosen by default (``hdu="auto"``).
AUTO_HDU = "auto"
#: The instrument whose results the method reads, in the ``INSTRMNT`` keyword of astra summary
#: files (``astraAllStarASPCAP``: HDU 1 BOSS, HDU 2 APOGEE, no ``EXTNAME``).
APOGEE_INSTRUMENT = "APOGEE"
#: Where astra summary files put the APOGEE table when ``INSTRMNT`` is missing.
ASTRA_APOGEE_HDU = 2


def _is_table(hdu):
    return isinstance(hdu, fits.BinTableHDU | fits.TableHDU)


def choose_hdu(hdul, hdu=AUTO_HDU, path=""):
    """The table HDU of a FITS file to read, and why it was chosen.

    ``"auto"``: the table whose header says ``INSTRMNT = 'APOGEE'`` (astra's ``astraAllStar*``
    files: HDU 1 holds BOSS results, HDU 2 APOGEE's); failing that, HDU 2 of a file whose primary
    header carries astra's ``V_ASTRA`` keyword; failing that, the first table. An integer is an
    HDU position; any other text matches ``INSTRMNT`` or ``EXTNAME`` (case-insensitive).

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
        The open file.
    hdu : "auto", int or str, default="auto"
        Which HDU (``--hdu`` / ``[catalogue] hdu``).
    path : str
        For the messages.

    Returns
    -------
    index : int
        Position of the table HDU.
    reason : str
        Why (printed by ``check``).

    Raises
    ------
    ValueError
        Naming the file's HDUs when the one asked for is absent or not a table, or when the file
        holds no table.
    """
    tables = [i for i, h in enumerate(hdul) if _is_table(h)]
    listing = ", ".join(f"{i} ({_label(hdul[i])}, {hdul[i].header.get('NAXIS2', 0):,} rows)"
                        for i in tables)
    if not tables:
        raise ValueError(f"{path}: no FITS table extension found")
    if isinstance(hdu, str) and hdu.strip().lstrip("-").isdigit():
        hdu = int(hdu)
    if isinstance(hdu, int) and not isinstance(hdu, bool):
        if hdu not in tables:
            raise ValueError(f"{path}: HDU {hdu} is not a table; the tables are HDU {listing}")
        return hdu, f"HDU {hdu} ({_label(hdul[hdu])}) as asked"
    if hdu is None or str(hdu).lower() == AUTO_HDU:
        several = f" (tables: HDU {listing})" if len(tables) > 1 else ""
        for i in tables:
            if str(hdul[i].header.get("INSTRMNT", "")).strip().upper() == APOGEE_INSTRUMENT:
                return i, f"HDU {i}, INSTRMNT = '{APOGEE_INSTRUMENT}'{several}"
        if "V_ASTRA" in hdul[0].header and ASTRA_APOGEE_HDU in tables:
            return ASTRA_APOGEE_HDU, (f"HDU {ASTRA_APOGEE_HDU}, APOGEE's position in astra "
                                      f"summary files (no INSTRMNT keyword){several}")
        return tables[0], f"HDU {tables[0]}, the first table{several}"
    wanted = str(hdu).strip().upper()
    for i in tables:
        header = hdul[i].header
        if wanted in (str(header.get("INSTRMNT", "")).strip().upper(),
                      str(header.get("EXTNAME", "")).strip().upper()):
            return i, f"HDU {i} ({_label(hdul[i])}) as asked"
    raise ValueError(f"{path}: no table HDU with INSTRMNT or EXTNAME {hdu!r}; the tables are HDU "
                     f"{listing}")


def _label(hdu):
    header = hdu.header
    return str(header.get("INSTRMNT") or header.get("EXTNAME") or "no name").strip()


@contextlib.contextmanager
def open_table(path, hdu=AUTO_HDU):
    """Open ``path`` and yield its table HDU (:func:`choose_hdu`), or raise naming a damaged file.

    Parameters
    ----------
    path : str
        FITS file (optionally gzip-compressed).
    hdu : "auto", int or str, default="auto"
        Which table (:func:`choose_hdu`).

    Yields
    ------
    table : astropy.io.fits.BinTableHDU or TableHDU
        Backed by a memory map: nothing is read until a field is accessed.
    where : dict
        ``{"hdu": position, "reason": why}``.

    Raises
    ------
    ValueError
        ``"<path>: corrupt or truncated FITS file (...)"`` when the file is not a FITS file, ends
        before its headers say, or holds no table extension (or not the one asked for).
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(path, memmap=True, lazy_load_hdus=False)
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise ValueError(f"{path}: corrupt or truncated FITS file ({exc})") from None
    with hdul:
        damage = [str(w.message) for w in caught if any(h in str(w.message) for h in _DAMAGE_HINTS)]
        if damage:
            raise ValueError(f"{path}: corrupt or truncated FITS file ({damage[0].splitlines()[0]})")
        check_fits_file(hdul, path)
        index, reason = choose_hdu(hdul, hdu, path)
        table = hdul[index]
        if not path.endswith(".gz"):
            end = table._data_offset + table._data_size
            size = os.path.getsize(path)
            if end > size:
                raise ValueError(f"{path}: corrupt or truncated FITS file (the table needs {end:,} "
                                 f"bytes, the file has {size:,})")
        yield table, {"hdu": index, "reason": reason}


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
    """Read the named columns of ``hdu`` into native-order arrays, in one pass over the file.

    Multidimensional columns are flattened (C order of the per-row array).

    Returns
    -------
    columns : dict of str to list of (str, ndarray)
        ``{file_name: [(out_suffix, array)]}`` where ``out_suffix`` is ``""`` for a scalar column
        and ``"_i"`` for element ``i`` of a multidimensional one.

    Raises
    ------
    ValueError
        For a variable-length column, or a file that ends inside the table (naming the file).
    """
    for name in wanted:
        if info[name][1] is None:
            raise ValueError(
                f"{path}: column {name!r} holds variable-length arrays, which are not supported")
    try:
        columns = _read_by_rows(hdu, wanted, path)
    except (TypeError, ValueError, OSError) as exc:
        raise ValueError(f"{path}: corrupt or truncated FITS file ({exc})") from None
    out = {}
    for name, values in columns.items():
        if values.ndim == 1:
            out[name] = [("", values)]
        else:
            flat = values.reshape(len(values), -1)
            out[name] = [(f"_{i}", flat[:, i].copy()) for i in range(flat.shape[1])]
    return out


def _on_disk_dtype(columns, row_bytes):
    """The record layout of a binary table on disk (big-endian), from its column definitions."""
    layout = columns.dtype  # native byte order, with the file's offsets
    names, formats, offsets = [], [], []
    for name in layout.names:
        dt, offset = layout.fields[name][:2]
        base = dt.base
        if base.kind in "fiuc":
            base = base.newbyteorder(">")
        names.append(name)
        formats.append((base, dt.shape) if dt.shape else base)
        offsets.append(offset)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                     "itemsize": row_bytes})


def _read_by_rows(hdu, wanted, path, block_bytes=32 * 2**20):
    """The ``wanted`` fields of a binary table, read from the file in blocks of whole rows.

    A field of a memory-mapped record array is strided over the whole file: reading columns one at
    a time touches every page of the file once per column, every page touched counts in the
    process's memory, and astropy copies the whole table out of the map when the file closes if
    column objects outlive the data. Here ``hdu.data`` is never touched: the file is read once,
    sequentially, one block of rows at a time, and only the wanted fields are kept. FITS
    conventions are applied as astropy does: ``TSCAL``/``TZERO`` (unsigned integers stored with an
    offset), logical ``'T'``/``'F'`` bytes, blank-padded strings.
    """
    columns = hdu.columns
    header = hdu.header
    if not isinstance(hdu, fits.BinTableHDU) or path.endswith(".gz") or header.get("PCOUNT", 0):
        data = hdu.data
        return {name: _native(data.field(name)) for name in wanted}
    n, row_bytes = int(header["NAXIS2"]), int(header["NAXIS1"])
    dtype = _on_disk_dtype(columns, row_bytes)
    conversions = {name: (columns[name].format.format, columns[name].bscale, columns[name].bzero)
                   for name in wanted}
    # blocks of at most ~1/16 of the table (at least 256 kB): memory stays a small part of it
    block_bytes = max(2**18, min(block_bytes, n * row_bytes // 16))
    step = max(1, block_bytes // row_bytes)
    parts = {name: [] for name in wanted}
    with open(path, "rb") as fh:
        fh.seek(hdu._data_offset)
        for start in range(0, n, step):
            count = min(step, n - start)
            block = np.fromfile(fh, dtype=dtype, count=count)
            if block.shape[0] != count:
                raise ValueError(f"the file ends inside the table, at row {start + block.shape[0]}")
            for name in wanted:
                parts[name].append(_convert(block[name], *conversions[name]))
    out = {}
    for name, chunks in parts.items():
        values = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
        out[name] = _native(values) if values.dtype.kind == "S" else values
    return out


def _convert(values, code, bscale, bzero):
    """On-disk FITS values of one column -> what astropy's ``field()`` gives (native order)."""
    if code == "L":
        return values == ord("T")
    if values.dtype.kind == "S":
        return values.copy()  # decoded once, after the blocks are joined
    values = values.astype(values.dtype.newbyteorder("="))
    scale = 1 if bscale in (None, "") else bscale
    zero = 0 if bzero in (None, "") else bzero
    if scale == 1 and zero == 0:
        return values
    bits = 8 * values.dtype.itemsize
    if values.dtype.kind == "i" and scale == 1 and zero == 2 ** (bits - 1):
        unsigned = values.view(f"u{values.dtype.itemsize}")
        return unsigned ^ np.array(1 << (bits - 1), dtype=unsigned.dtype)
    return values * scale + zero


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
