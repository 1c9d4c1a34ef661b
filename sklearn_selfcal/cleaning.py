"""One cleaning for every input path: sentinels, fill values, masks, physical ranges and flags.

Survey files are dirty in the same few ways whatever their format: "no measurement" written as a
number (-9999.99, 99.999 mag), a writer's fill values (SDSS-V's astra writes NaN for floats, -1 for
integers and identifiers, "" for text), masked entries whose hidden value is garbage, values that
cannot be physical (a declination of 120 deg, a log g of -9999), strings in a numeric column,
abundances whose per-element ``_FLAG`` (DR17) or ``<x>_h_flags`` (SDSS-V) says they are unreliable,
duplicate column names. Every reader of
:mod:`sklearn_selfcal.io` and the workflow pass their tables through :func:`clean_catalogue`, so
a catalogue gives the same result as FITS, Parquet, CSV, HDF5 or a DataFrame. Bad values become
NaN with one :class:`~sklearn_selfcal.exceptions.DataQualityWarning` per column naming how many rows
and the first rows; rows are never dropped or reordered, and the input is never modified.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .columns import MAGNITUDE_SENTINELS, ROLES, check_unique, resolve_columns, role_of
from .exceptions import DataQualityWarning

__all__ = ["GENERIC_SENTINELS", "MAGNITUDE_SENTINELS", "as_frame", "frame_if_table", "clean_values",
           "clean_catalogue", "sentinel_mask", "masked_to_nan"]

#: Values written for "no measurement" in floating-point columns of APOGEE, Gaia cross-matches and
#: VizieR tables: -9999 (Gaia columns of DR16), -9999.99 (parameters, abundances, photometry),
#: -999.99 / -999 (uncertainties) and -9999.9999. A value matches when it rounds to the same
#: float32 as the sentinel (half a float32 step, ~3e-8 relative), which absorbs float32 storage
#: (float32(-9999.99) = -9999.990234...) and text written from it ("-9999.9902"), but not a
#: physical value that merely lies near a sentinel: an angular momentum of -999.9902 kpc km/s,
#: met at 10^6 stars, is 3 float32 steps from -999.99 and is kept.
GENERIC_SENTINELS = (-9999.0, -9999.99, -9999.9999, -999.0, -999.99)
_SENTINEL_RTOL = 1e-6  # width of the cheap pre-selection of candidates only
_BLANKS = frozenset(["", "nan", "NaN", "NAN", "--", "null", "NULL", "None", "N/A", "NA"])
_N_SHOWN = 5


def sentinel_mask(values, sentinels=GENERIC_SENTINELS):
    """Which finite values equal one of ``sentinels`` (in float32: to ~3e-8 relative).

    Parameters
    ----------
    values : ndarray of float
        Column values (any unit).
    sentinels : sequence of float
        The "no measurement" values to look for.

    Returns
    -------
    mask : ndarray of bool
        True where a value is one of ``sentinels``.
    """
    values = np.asarray(values)
    bad = np.zeros(values.shape, dtype=bool)
    if not sentinels or values.size == 0:
        return bad
    # one cheap pass finds the candidates (every sentinel is far from typical values)
    low = max((s for s in sentinels if s < 0), default=None)
    high = min((s for s in sentinels if s > 0), default=None)
    with np.errstate(invalid="ignore"):
        near = np.zeros(values.shape, dtype=bool)
        if low is not None:
            near |= values <= low * (1 - _SENTINEL_RTOL)
        if high is not None:
            near |= values >= high * (1 - _SENTINEL_RTOL)
        idx = np.flatnonzero(near)
        if idx.size:
            candidates = values[idx]
            hit = np.zeros(idx.size, dtype=bool)
            as_float32 = candidates.astype(np.float32)
            for s in sentinels:
                hit |= as_float32 == np.float32(s)
            bad[idx[hit]] = True
    return bad


def _row_labels(ids, bad):
    """``"3 (2M...), 7 (2M...) and 12 more"``: the first bad positions, with ids when given."""
    rows = np.flatnonzero(bad)
    shown = [f"{i}" if ids is None else f"{i} ({str(ids[i]).strip()})" for i in rows[:_N_SHOWN]]
    more = rows.size - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def masked_to_nan(values):
    """Float64 copy of ``values`` with masked / missing entries NaN, and a mask of non-numbers.

    Numpy masked arrays, astropy masked columns and pandas ``NA`` give NaN (never the hidden
    value); strings are parsed as numbers, blanks (``""``, ``"nan"``, ``"--"``, ...) are missing and
    anything else is flagged as not a number (and NaN).

    Parameters
    ----------
    values : array-like or Series
        A column (numbers, strings, masked entries).

    Returns
    -------
    out : ndarray of float64
        A new array; NaN where the value is missing, masked or not a number.
    not_numbers : ndarray of bool
        Where the value was text that is not a number.
    """
    mask = None
    if isinstance(values, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(values)
        values = np.ma.getdata(values)
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        out = np.array(series.to_numpy(dtype=np.float64, na_value=np.nan))
        not_numbers = np.zeros(out.shape, dtype=bool)
    else:
        text = series.astype(object).map(
            lambda v: v.decode("ascii", "replace") if isinstance(v, bytes) else v)
        out = np.array(pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64,
                                                                    na_value=np.nan))
        blank = text.isna().to_numpy() | text.map(lambda v: str(v).strip() in _BLANKS).to_numpy()
        not_numbers = np.isnan(out) & ~blank
    if mask is not None:
        out[mask] = np.nan
        not_numbers &= ~mask
    return out, not_numbers


def _outside(values, role):
    low, high = role.valid
    with np.errstate(invalid="ignore"):
        out = np.isinf(values)
        if low is not None:
            out |= values < low
        if high is not None:
            out |= (values >= high) if role.high_open else (values > high)
    return out


def _range_text(role):
    low, high = role.valid
    text = f"[{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}"
    return text + (")" if role.high_open else "]") + (f" {role.unit}" if role.unit else "")


def clean_values(values, column, role=None, *, ranges=True, ids=None, warn=True, stacklevel=2):
    """One column as float64 with every value that cannot be physical set to NaN.

    Parameters
    ----------
    values : array-like or Series of shape (n_rows,)
        Not modified.
    column : str
        Column name, for the messages and to find the role (:func:`~sklearn_selfcal.columns.role_of`)
        when ``role`` is None.
    role : Role, optional
        Gives the physical range and the extra sentinels (magnitudes: 99.999).
    ranges : bool, default=True
        Apply the role's physical range (False: sentinels and non-numbers only, e.g. before a
        check that a whole column is in the wrong units).
    ids : array-like of shape (n_rows,), optional
        Star identifiers shown next to the row positions in the messages.
    warn : bool, default=True
        Emit one :class:`~sklearn_selfcal.exceptions.DataQualityWarning` per kind of bad value.
    stacklevel : int
        Of the warnings (2: the caller's line).

    Returns
    -------
    cleaned : ndarray of float64 of shape (n_rows,)
        A new array.
    counts : dict of str to int
        Rows set to NaN by kind: ``"not_a_number"``, ``"sentinel"``, ``"out_of_range"`` (non-zero
        entries only).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     cleaned, counts = clean_values([2.1, -9999.99, 7.0], "LOGG")
    >>> cleaned.tolist(), counts
    ([2.1, nan, nan], {'sentinel': 1, 'out_of_range': 1})
    >>> print(caught[0].message)
    column 'LOGG': 1 row(s) hold a 'no measurement' value (-9999.99); set to NaN (row 1)
    """
    role = role_of(column) if role is None else role
    out, not_numbers = masked_to_nan(values)
    found = []
    if not_numbers.any():
        found.append(("not_a_number", not_numbers, "are not numbers"))
    bad = sentinel_mask(out, GENERIC_SENTINELS + (role.sentinels if role is not None else ()))
    if bad.any():
        shown = ", ".join(f"{v:.7g}" for v in np.unique(out[bad])[:4])
        found.append(("sentinel", bad, f"hold a 'no measurement' value ({shown})"))
        out[bad] = np.nan
    if ranges and role is not None and role.valid is not None:
        bad = _outside(out, role)
        if bad.any():
            found.append(("out_of_range", bad, f"are outside the physical range {_range_text(role)}"))
            out[bad] = np.nan
    counts = {kind: int(mask.sum()) for kind, mask, _ in found}
    if warn:
        for _, mask, what in found:
            rows = "row" if mask.sum() == 1 else "rows"
            warnings.warn(f"column {column!r}: {int(mask.sum())} row(s) {what}; set to NaN "
                          f"({rows} {_row_labels(ids, mask)})", DataQualityWarning,
                          stacklevel=stacklevel + 1)
    return out, counts


def _ids(frame, column_map):
    """Star identifiers for messages (``None`` when the catalogue has no id column)."""
    id_col = column_map.get("star_id")
    return None if id_col is None else frame[id_col].to_numpy(dtype=object)


def clean_catalogue(frame, column_map=None, *, flags=True, warn=True, stacklevel=2):
    """Clean every column that plays a role, and the sentinels of every other float column.

    * Role columns (found by ``column_map`` or :func:`~sklearn_selfcal.columns.resolve_columns`):
      masked entries, non-numbers, sentinels (:data:`GENERIC_SENTINELS`, plus 99.999-style
      values for magnitudes) and values outside the role's physical range become NaN, one
      warning per column.
    * Integer and text role columns: the writer's fill values become missing (pandas ``NA`` /
      ``None``), one warning per column: identifiers outside their role's range (SDSS-V's
      ``sdss_id = -1``, Gaia source ids <= 0) and empty strings. Bit fields written as 0 and
      booleans written as False mean "no flag" and stay as they are.
    * Other floating-point columns: sentinels become NaN (one summary warning for all of them).
    * With ``flags``, every abundance whose ``<X>_FLAG`` column is non-zero (or missing) becomes
      NaN together with its uncertainty, one warning per abundance.
    * An abundance whose uncertainty is missing or not positive becomes NaN (it cannot be
      weighted), one warning per abundance.

    Parameters
    ----------
    frame : DataFrame or astropy Table
        Not modified.
    column_map : ColumnMap, optional
        From :func:`~sklearn_selfcal.columns.resolve_columns` (default: resolved here).
    flags : bool, default=True
        Honour the per-element ``_FLAG`` columns.
    warn : bool, default=True
        Emit the warnings (the counts are returned either way).
    stacklevel : int
        Of the warnings (2: the caller's line).

    Returns
    -------
    cleaned : DataFrame
        Same rows, order, index and columns; cleaned columns are new float64 arrays.
    report : dict of str to dict
        Per column, the rows set to NaN by kind (``"sentinel"``, ``"out_of_range"``,
        ``"not_a_number"``, ``"flagged"``); also stored in ``cleaned.attrs["cleaning"]``.

    Raises
    ------
    ValueError
        If a column name appears twice (naming it).
    """
    frame = as_frame(frame)
    check_unique(list(frame.columns))
    column_map = resolve_columns(frame.columns) if column_map is None else column_map
    ids = _ids(frame, column_map)
    replaced = {}
    report = {c: dict(v) for c, v in frame.attrs.get("cleaning", {}).items()}  # earlier readers
    role_columns = {}
    for role in ROLES:
        column = column_map.get(role.name)
        if column is not None and role.kind == "float":
            role_columns[column] = role
    for column, role in role_columns.items():
        values, counts = clean_values(frame[column], column, role, ids=ids, warn=warn,
                                      stacklevel=stacklevel + 1)
        if counts or not pd.api.types.is_float_dtype(frame[column]):
            replaced[column] = values  # unchanged float columns are shared, not copied
        for kind, n in counts.items():
            report.setdefault(column, {})[kind] = report.get(column, {}).get(kind, 0) + n
    for role in ROLES:
        column = column_map.get(role.name)
        if column is None or role.kind not in ("int", "str"):
            continue
        role_columns.setdefault(column, role)
        values, missing, what = _fill_values(frame[column], role)
        if missing.any():
            replaced[column] = values
            report.setdefault(column, {})["fill_value"] = int(missing.sum())
            if warn:
                rows = "row" if missing.sum() == 1 else "rows"
                warnings.warn(f"column {column!r}: {int(missing.sum())} row(s) {what}; set to "
                              f"missing ({rows} {_row_labels(ids, missing)})", DataQualityWarning,
                              stacklevel=stacklevel + 1)
    other = {}
    for column in frame.columns:
        if column in role_columns or not pd.api.types.is_float_dtype(frame[column]):
            continue
        values = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
        bad = sentinel_mask(values)
        if bad.any():
            values = values.copy()
            values[bad] = np.nan
            replaced[column] = values
            report.setdefault(column, {})["sentinel"] = int(bad.sum())
            other[column] = int(bad.sum())
    if other and warn:
        listed = ", ".join(f"{c} ({n})" for c, n in list(other.items())[:8])
        warnings.warn(f"'no measurement' sentinels (-9999, -9999.99, ...) set to NaN in "
                      f"{len(other)} other column(s): {listed}"
                      + (" ..." if len(other) > 8 else ""), DataQualityWarning,
                      stacklevel=stacklevel + 1)
    def current(column):
        return replaced.get(column, frame[column].to_numpy(dtype=float))

    def set_nan(mask, value_col, error_col, kind, what):
        """NaN in ``value_col`` (and ``error_col``) where ``mask``; counted, one warning."""
        for target in (value_col, error_col):
            if target is not None:
                values = current(target).copy()
                values[mask] = np.nan
                replaced[target] = values
        report.setdefault(value_col, {})[kind] = int(mask.sum())
        if warn:
            rows = "row" if mask.sum() == 1 else "rows"
            warnings.warn(f"column {value_col!r}: {int(mask.sum())} row(s) {what}; set to NaN "
                          f"({rows} {_row_labels(ids, mask)})", DataQualityWarning,
                          stacklevel=stacklevel + 2)

    if flags:
        for role, flag in _flag_columns(column_map):
            flagged = _flagged(frame[column_map[flag]]) & np.isfinite(current(column_map[role]))
            if flagged.any():
                set_nan(flagged, column_map[role], column_map.get(f"{role}_ERR"), "flagged",
                        f"flagged unreliable by {column_map[flag]!r} (its uncertainty too)")
    for role, error_role in _error_columns(column_map):
        with np.errstate(invalid="ignore"):
            unusable = np.isfinite(current(column_map[role])) & \
                ~(current(column_map[error_role]) > 0)
        if unusable.any():
            set_nan(unusable, column_map[role], None, "no_uncertainty",
                    f"have no usable uncertainty in {column_map[error_role]!r} (missing or <= 0: "
                    "an abundance cannot be weighted without it)")
    out = frame.copy(deep=False)
    for column, values in replaced.items():
        out[column] = values
    out.attrs = {**frame.attrs, "cleaning": report}
    return out, report


def _fill_values(series, role):
    """An integer or text role column with its fill values missing, the mask, and what they were.

    Integers outside ``role.valid`` (identifiers: below 1, e.g. SDSS-V's -1) become ``NA``; empty
    strings become ``None``. Returns the column unchanged (and an empty mask) otherwise.
    """
    series = series if isinstance(series, pd.Series) else pd.Series(series)
    none = np.zeros(len(series), dtype=bool)
    if role.kind == "str":  # the column keeps its dtype (pandas' str: missing is NaN)
        blank = series.map(lambda v: isinstance(v, str | bytes) and not v.strip()).to_numpy(bool)
        return series.where(~blank).array, blank, "are empty strings"
    if role.valid is None or not pd.api.types.is_numeric_dtype(series) or \
            pd.api.types.is_bool_dtype(series):
        return series, none, ""
    low, high = role.valid
    outside = none.copy()
    if low is not None:
        outside |= (series < low).fillna(False).to_numpy(dtype=bool)
    if high is not None:
        outside |= (series > high).fillna(False).to_numpy(dtype=bool)
    if not outside.any():
        return series, outside, ""
    if pd.api.types.is_float_dtype(series):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        values[outside] = np.nan
    else:
        kind = "UInt" if pd.api.types.is_unsigned_integer_dtype(series) else "Int"
        values = series.astype(f"{kind}{8 * series.dtype.itemsize}").array.copy()
        values[outside] = pd.NA
    shown = ", ".join(str(v) for v in pd.unique(series[outside])[:4])
    return values, outside, (f"hold no identifier ({shown}: outside "
                             f"{_range_text(role)}, a writer's fill value)")


def _error_columns(column_map):
    """``(abundance role, its _ERR role)`` pairs present in ``column_map``."""
    return [(role.name, f"{role.name}_ERR") for role in ROLES
            if role.unit == "dex" and role.name.endswith(("_FE", "_H", "_M"))
            and role.name in column_map and f"{role.name}_ERR" in column_map]


def _flag_columns(column_map):
    """``(abundance role, flag role)`` pairs present in ``column_map``."""
    return [(role.name, f"{role.name}_FLAG") for role in ROLES
            if role.unit == "dex" and f"{role.name}_FLAG" in column_map and role.name in column_map]


def _flagged(values):
    """Non-zero (or missing) flag values."""
    numeric, not_numbers = masked_to_nan(values)
    return ~(numeric == 0) | not_numbers


def frame_if_table(X):
    """``X`` itself, or a DataFrame if it is an astropy Table (estimators accept both).

    Parameters
    ----------
    X : object
        An estimator's input.

    Returns
    -------
    X : object
        A DataFrame when ``X`` was an astropy Table (masked entries NaN, never the hidden value),
        else ``X`` unchanged.
    """
    if type(X).__module__.startswith("astropy.table"):
        return as_frame(X)
    return X


def as_frame(table):
    """A DataFrame from a DataFrame (returned as is) or an astropy Table (masked -> NaN / NA).

    Parameters
    ----------
    table : DataFrame or astropy.table.Table
        A table; multidimensional columns of a Table are left out.

    Returns
    -------
    frame : DataFrame
        ``table`` itself, or a new DataFrame in native byte order.
    """
    if isinstance(table, pd.DataFrame):
        return table
    try:
        from astropy.table import Table
    except ImportError:  # pragma: no cover - astropy is a dependency
        Table = ()
    if isinstance(table, Table):
        check_unique(table.colnames, "the table")
        columns = {}
        for name in table.colnames:
            col = table[name]
            if col.ndim > 1:
                continue
            data = np.ma.getdata(col)
            mask = np.ma.getmaskarray(col) if hasattr(col, "mask") else None
            if data.dtype.kind == "f":
                values = np.array(data, dtype=data.dtype.newbyteorder("="))
                if mask is not None:
                    values[mask] = np.nan
            elif data.dtype.kind in "iu":
                values = data.astype(data.dtype.newbyteorder("="))
                if mask is not None and mask.any():
                    values = pd.array(values, dtype=f"{'Int' if data.dtype.kind == 'i' else 'UInt'}"
                                                    f"{8 * data.dtype.itemsize}")
                    values[mask] = pd.NA
            elif data.dtype.kind in "SU":
                values = np.char.strip(data.astype(str)).astype(object)
                if mask is not None:
                    values[mask] = None
            else:
                values = np.asarray(data)
            columns[name] = values
        return pd.DataFrame(columns)
    raise TypeError(f"expected a pandas DataFrame or an astropy Table, got {type(table).__name__}")

