"""Writers: catalogues (Parquet, FITS) and tables (ECSV), every file written atomically."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

import numpy as np
import pandas as pd

from .._validation import check_table
from ._fits_write import stream_fits
from ._formats import ECSV, FITS, PARQUET, kind_of

__all__ = ["atomic_write", "write_catalogue", "write_table"]


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
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "summary.json"
    >>> with atomic_write(target) as tmp:
    ...     _ = Path(tmp).write_text("{}")
    >>> target.read_text()
    '{}'
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


def _checked(frame, path):
    """The table to write: a DataFrame with unique column names (:func:`check_table`), and no
    column mixing numbers and text (which no file format stores; the row is named)."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{path}: expected a pandas DataFrame to write, got {type(frame).__name__}")
    frame = check_table(frame, f"writing {path}", index=False)
    for name in frame.columns:
        values = frame[name].to_numpy()
        if values.dtype != object or not pd.api.types.infer_dtype(values).startswith("mixed"):
            continue
        text = np.array([isinstance(v, str | bytes) for v in values])
        number = ~text & ~pd.isna(values)
        if text.any() and number.any():
            row = int(np.flatnonzero(text if text.sum() <= number.sum() else number)[0])
            raise ValueError(f"{path}: column {name!r} mixes numbers and text (row {row}: "
                             f"{values[row]!r}); make it all numbers (NaN where missing) or all "
                             "text")
    return frame


def _ascii_strings(frame, path, non_ascii):
    """String columns checked (or escaped) for FITS, whose character columns are ASCII only."""
    replaced = {}
    for name in frame.columns:
        col = frame[name]
        if not (col.dtype == object or pd.api.types.is_string_dtype(col)):
            continue
        text = col.astype(object)
        bad = text.map(lambda v: isinstance(v, str) and not v.isascii()).to_numpy()
        if not bad.any():
            continue
        if non_ascii == "error":
            rows = np.flatnonzero(bad)
            raise ValueError(
                f"{path}: column {name!r} holds non-ASCII text, which FITS cannot store "
                f"({rows.size} row(s), first row {rows[0]}: {text.iloc[rows[0]]!r}); write "
                "Parquet, or pass non_ascii='escape'")
        replaced[name] = text.map(
            lambda v: v.encode("ascii", "backslashreplace").decode("ascii")
            if isinstance(v, str) else v)
    if not replaced:
        return frame
    out = frame.copy(deep=False)
    for name, values in replaced.items():
        out[name] = values
    return out


def write_catalogue(frame, path, units=None, *, non_ascii="error"):
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
    non_ascii : {"error", "escape"}, default="error"
        FITS only (its text columns are ASCII): a string with other characters raises an error
        naming the column and row, or is written with backslash escapes (``"Ω"`` -> ``"\\u03a9"``).

    Raises
    ------
    ValueError
        For an unsupported suffix, duplicate column names, or non-ASCII text in FITS.
    """
    path = os.fspath(path)
    kind = kind_of(path, {"parquet": PARQUET, "fits": FITS[:3]})
    frame = _checked(frame, path)
    if kind == "parquet":
        with atomic_write(path) as tmp:
            frame.to_parquet(tmp)
        return
    if non_ascii not in ("error", "escape"):
        raise ValueError(f"non_ascii must be 'error' or 'escape', got {non_ascii!r}")
    frame = _ascii_strings(frame, path, non_ascii)
    with atomic_write(path) as tmp:  # by blocks of rows when the columns allow it
        if not stream_fits(frame.reset_index(drop=True), tmp,
                           lambda block: _frame_to_table(block, units=units)):
            _frame_to_table(frame, units=units).write(tmp, format="fits")


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
    kind_of(path, {"ecsv": ECSV})
    table = _frame_to_table(_checked(frame, path), units=units, meta=meta)
    with atomic_write(path) as tmp:
        table.write(tmp, format="ascii.ecsv")
