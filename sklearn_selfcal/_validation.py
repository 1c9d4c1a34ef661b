"""The one validation layer of the public entry points: clear errors, or NaN with a warning.

Every public function and estimator that takes a catalogue checks it here, before any computation,
so that a user who calls it directly gets the protection the readers and ``run`` give:

* :func:`validate_catalogue` -- the structure of a table (a DataFrame or an astropy Table; no
  column name twice, no index label twice, enough rows) and its numeric columns through
  :func:`clean_column`;
* :func:`clean_column` -- one column or array: masked entries become NaN (never the hidden value),
  text that is not a number is an error naming the column and its first rows, and the role-aware
  cleaning of the readers (:func:`sklearn_selfcal.cleaning.clean_values`: sentinels, the physical
  ranges of the role table in :mod:`sklearn_selfcal.columns`) plus infinities make NaN with one
  :class:`~sklearn_selfcal.exceptions.DataQualityWarning` per column; a column that must be
  finite for every star raises instead, and a length column in kpc whose values are those of pc is
  an error naming the likely unit;
* :func:`estimator_input` -- the same structural checks (and masked arrays -> NaN) at the top of an
  estimator's ``fit`` / ``transform``;
* small checks of arguments (:func:`numeric_values`, :func:`check_edges`, ...).

No entry point writes checks of its own for these; the messages name the entry point (``what``).
"""

from __future__ import annotations

import numbers
import warnings
from numbers import Real

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import Interval

from ._paper import CALIBRATED_SUFFIX, PARALLAX_ZERO_POINT_RANGE_MAS
from .cleaning import _row_labels, as_frame, clean_values, frame_if_table, masked_to_nan
from .columns import check_unique, role_of
from .exceptions import DataQualityWarning

__all__ = [
    "GALACTOCENTRIC_LENGTH_MAX_KPC",
    "MEDIAN_DISTANCE_RANGE_KPC",
    "PARALLAX_ZERO_POINT_CONSTRAINT",
    "TooFewStarsError",
    "check_edges",
    "check_finite_column",
    "check_mask",
    "check_min_stars",
    "check_numeric_columns",
    "check_positive",
    "check_positive_column",
    "check_table",
    "clean_column",
    "column_index",
    "column_values",
    "estimator_input",
    "unmask",
    "name_of",
    "numeric_values",
    "require_columns",
    "validate_catalogue",
    "warn_empty_rows",
]


#: Unit guards accept samples whose median heliocentric distance lies in this range (kpc): outside
#: it a parallax is most likely in arcsec or micro-arcsec, or a distance in pc.
MEDIAN_DISTANCE_RANGE_KPC = (0.01, 100.0)

#: Largest median ``|value|`` of a Galactocentric length column in kpc: ``"length"`` (x, y, R),
#: about the Milky Way's virial radius, and ``"height"`` (z), far above any star sample's median
#: height. A catalogue of its stars in pc has a median |R| of thousands of pc and a median |z| of
#: tens to hundreds.
GALACTOCENTRIC_LENGTH_MAX_KPC = {"length": 300.0, "height": 30.0}

#: The ``_parameter_constraints`` entry of every ``parallax_zero_point`` (mas): the one range,
#: :data:`~sklearn_selfcal._paper.PARALLAX_ZERO_POINT_RANGE_MAS`.
PARALLAX_ZERO_POINT_CONSTRAINT = [Interval(Real, *PARALLAX_ZERO_POINT_RANGE_MAS, closed="both")]


class TooFewStarsError(ValueError):
    """Too few stars (rows, or rows with finite values) to bin, compare, fit or draw.

    A :class:`ValueError`; :func:`sklearn_selfcal.figures.render_figures` skips a figure whose
    data raise it and records the message as the reason.
    """


# --------------------------------------------------------------------------- tables


def check_table(frame, what, *, index=True):
    """``frame`` as a DataFrame with unique column names (and index labels), or a clear error.

    Parameters
    ----------
    frame : DataFrame or astropy Table
        Not modified (a Table is converted, masked entries NaN).
    what : str
        The entry point, named in the messages.
    index : bool, default=True
        Also refuse an index whose labels repeat (rows concatenated without
        ``ignore_index=True``): results aligned on it would be ambiguous.

    Returns
    -------
    frame : DataFrame
        ``frame`` itself when it is a DataFrame.

    Raises
    ------
    TypeError
        If ``frame`` is neither a DataFrame nor an astropy Table.
    ValueError
        Naming the repeated column names or index labels.
    """
    try:
        frame = as_frame(frame)
    except TypeError as exc:
        raise TypeError(f"{what}: {exc}") from None
    check_unique([str(c) for c in frame.columns], f"{what}: the table")
    if index and frame.index.has_duplicates:
        labels = frame.index[frame.index.duplicated()].unique()
        raise ValueError(f"{what}: the table's index repeats {labels.size} label(s) (e.g. "
                         f"{labels[:5].tolist()}); rows concatenated without ignore_index=True? "
                         "Give every row its own label (frame.reset_index(drop=True))")
    return frame


def validate_catalogue(frame, columns, *, what, finite=(), kpc=(), heights=(), min_rows=1,
                       stacklevel=2):
    """Check a catalogue and clean the numeric columns an entry point reads, before computing.

    Parameters
    ----------
    frame : DataFrame or astropy Table
        One row per star; not modified.
    columns : sequence of str
        The numeric columns read (``None`` entries are skipped, repeats read once); each goes
        through :func:`clean_column`.
    what : str
        The entry point, named in the messages.
    finite : sequence of str, default=()
        Columns that must be finite for every star (an error instead of NaN).
    kpc : sequence of str, default=()
        Columns of Galactocentric lengths in kpc: x, y, R (checked not to be in pc).
    heights : sequence of str, default=()
        Columns of heights above the plane in kpc: z (checked not to be in pc).
    min_rows : int, default=1
        Fewest rows the computation needs.
    stacklevel : int, default=2
        Of the warnings, counted from the caller of this function.

    Returns
    -------
    values : dict of str to ndarray of float64
        Every column in ``columns``, cleaned (new arrays).

    Raises
    ------
    TypeError, ValueError
        As :func:`check_table` (wrong type, a repeated column name or index label).
    KeyError
        Naming every missing column.
    TooFewStarsError
        If the table has fewer than ``min_rows`` rows.
    ValueError
        As :func:`clean_column` (text in a numeric column, a non-finite value in a ``finite``
        column, a length in pc).

    Warns
    -----
    DataQualityWarning
        One per column with values set to NaN, naming it and counting the rows.

    Examples
    --------
    >>> import pandas as pd, warnings
    >>> stars = pd.DataFrame({"R": [4.0, 8.0], "FE_H": [0.1, -9999.0]})
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     values = validate_catalogue(stars, ["R", "FE_H"], what="demo", kpc=["R"])
    >>> values["FE_H"].tolist()
    [0.1, nan]
    >>> print(caught[0].message)
    column 'FE_H': 1 row(s) hold a 'no measurement' value (-9999); set to NaN (row 1)
    """
    frame = check_table(frame, what)
    columns = list(dict.fromkeys(c for c in columns if c is not None))
    require_columns(frame.columns, columns, what=what)
    if len(frame) < min_rows:
        raise TooFewStarsError(f"{what}: the table has {len(frame)} row(s); at least {min_rows} "
                               "needed")
    return {c: clean_column(frame[c], c, what=what, finite=c in finite,
                            kpc="height" if c in heights else c in kpc,
                            stacklevel=stacklevel + 1) for c in columns}


def unmask(X, *, stacklevel=2):
    """A masked array's masked entries as NaN, with one warning per column that has any.

    ``check_array`` and ``numpy.asarray`` read the hidden values behind a mask; this never does.

    Parameters
    ----------
    X : object
        The input; anything but a ``numpy.ma.MaskedArray`` is returned as is.
    stacklevel : int
        Of the warning.

    Returns
    -------
    X : object
        A new float array (NaN where masked) if ``X`` was a masked array.
    """
    if not isinstance(X, np.ma.MaskedArray):
        return X
    data = np.ma.getdata(X)
    mask = np.ma.getmaskarray(X)
    out = np.array(data, dtype=np.float64)
    out[mask] = np.nan
    if mask.any():
        columns = np.atleast_2d(mask.T if mask.ndim == 2 else mask[:, None].T)
        for j, col in enumerate(columns):
            if col.any():
                warnings.warn(f"column {j}: {int(col.sum())} row(s) are masked; set to NaN "
                              "(never their hidden values)", DataQualityWarning,
                              stacklevel=stacklevel + 1)
    return out


def estimator_input(X, what, *, min_rows=0):
    """An estimator's ``X`` checked at the top of ``fit`` / ``transform``.

    Parameters
    ----------
    X : DataFrame, astropy Table, array-like or numpy masked array
        Not modified.
    what : str
        The estimator, named in the messages.
    min_rows : int, default=0
        Fewest rows of a table (``fit`` needs stars; ``transform`` maps any number of rows).

    Returns
    -------
    X : DataFrame or array-like
        A DataFrame (from a DataFrame, checked by :func:`check_table`, or from a Table), a float
        array with NaN where a masked array was masked (:func:`unmask`, with a warning per
        column), or ``X`` unchanged.
    """
    if isinstance(X, np.ma.MaskedArray):
        return unmask(X, stacklevel=3)
    X = frame_if_table(X)
    if not isinstance(X, pd.DataFrame):
        return X
    X = check_table(X, what)
    if len(X) < min_rows:
        raise TooFewStarsError(f"{what}: the table has {len(X)} row(s); at least {min_rows} "
                               "needed")
    return X


# --------------------------------------------------------------------------- columns


def _role(name):
    """The role of column ``name``; a calibrated ``<X>_NEW`` column has the role of ``<X>``."""
    role = role_of(name)
    if role is None and name.endswith(CALIBRATED_SUFFIX):
        role = role_of(name[: -len(CALIBRATED_SUFFIX)])
    return role


def clean_column(values, name, *, what="input", finite=False, kpc=False, ranges=True, hint="",
                 role=None, stacklevel=2):
    """One numeric column (or array) of a catalogue as float64, cleaned as the readers clean it.

    Masked entries become NaN; text that is not a number is an error; the role-aware cleaning of
    :func:`~sklearn_selfcal.cleaning.clean_values` (sentinels such as -9999 or 99.999 mag, values
    outside the physical range of the column's role) and infinities make NaN, with one
    :class:`~sklearn_selfcal.exceptions.DataQualityWarning` per kind naming the column.

    Parameters
    ----------
    values : array-like, Series or masked array
        Not modified.
    name : str
        Column name: for the messages, and its role (a calibrated ``<X>_NEW`` has ``<X>``'s).
    what : str, default="input"
        The entry point, named in errors.
    finite : bool, default=False
        Every value must end finite: a ValueError (naming the rows and why) instead of NaN.
    kpc : bool or "height", default=False
        A Galactocentric length in kpc (True: x, y, R; ``"height"``: z): a median ``|value|``
        above :data:`GALACTOCENTRIC_LENGTH_MAX_KPC` (300 kpc, 30 kpc for a height) is an error
        naming the likely unit (pc).
    ranges : bool, default=True
        Apply the physical range of the column's role (False: sentinels, text and infinities
        only).
    hint : str, default=""
        Appended to the error of a ``finite`` column.
    role : Role, optional
        The column's role (default: the role its name has in the role table).
    stacklevel : int, default=2
        Of the warnings, counted from the caller of this function.

    Returns
    -------
    cleaned : ndarray of float64
        A new array, same shape as ``values``.

    Examples
    --------
    >>> clean_column([8.0, 8100.0, 7900.0], "R", kpc=True)
    Traceback (most recent call last):
    ...
    ValueError: input: column 'R' is a length in kpc, but its median |value| is 7900 (above 300 kpc): it looks like pc; divide it by 1000
    """
    shape = np.shape(values)
    flat = values if isinstance(values, pd.Series) else _flat(values)
    out, not_numbers = masked_to_nan(flat)
    if not_numbers.any():
        raw = flat.to_numpy(dtype=object) if isinstance(flat, pd.Series) else np.asarray(flat)
        raise ValueError(f"{what}: " + _bad_rows_message(raw, not_numbers, name, "a number"))
    was_nan = np.isnan(out)
    out, counts = clean_values(out, name, _role(name) if role is None else role, ranges=ranges,
                               warn=not finite,
                               stacklevel=stacklevel + 1)
    infinite = np.isinf(out)
    if infinite.any():
        counts["infinite"] = int(infinite.sum())
        out[infinite] = np.nan
        if not finite:
            warnings.warn(f"column {name!r}: {counts['infinite']} row(s) are infinite; set to NaN "
                          f"({_rows(infinite)})", DataQualityWarning,
                          stacklevel=stacklevel + 1)
    if finite and np.isnan(out).any():
        bad = np.isnan(out)
        why = [f"{n} {k.replace('_', ' ')}" for k, n in counts.items()]
        missing = int((was_nan & bad).sum())
        why += [f"{missing} missing (NaN)"] if missing else []
        why = ", ".join(why)
        raise ValueError(f"{what}: column {name!r} must be finite for every star; {int(bad.sum())} "
                         f"value(s) are not ({why}; {_rows(bad)}){hint}")
    if kpc:
        _check_kpc(out, name, what, GALACTOCENTRIC_LENGTH_MAX_KPC[
            "height" if kpc == "height" else "length"])
    return out.reshape(shape)


def name_of(values, default):
    """The name of a Series or an astropy column, else ``default`` (for the messages)."""
    name = getattr(values, "name", None)
    return default if name is None else str(name)


def warn_empty_rows(rows, column, what, stacklevel=3):
    """One :class:`~sklearn_selfcal.exceptions.DataQualityWarning` naming ``column`` and ``rows``.

    Parameters
    ----------
    rows : ndarray of int
        Positions of the rows concerned (nothing is warned when empty).
    column : str
        Named in the message.
    what : str
        What is true of these rows, e.g. ``"have no good pixel: every pixel imputed"``.
    stacklevel : int, default=3
        Of the warning (3: the caller of the function calling this one).
    """
    rows = np.asarray(rows, dtype=int)
    if rows.size:
        mask = np.zeros(rows.max() + 1, dtype=bool)
        mask[rows] = True
        warnings.warn(f"column {column!r}: {rows.size} row(s) {what} ({_rows(mask)})",
                      DataQualityWarning, stacklevel=stacklevel)


def _rows(mask):
    """``"row 3"`` or ``"rows 3, 7 and 2 more"``."""
    return ("row " if mask.sum() == 1 else "rows ") + _row_labels(None, mask)


def _flat(values):
    """A 1-D view of an array-like (masked arrays kept masked)."""
    array = values if isinstance(values, np.ma.MaskedArray) else np.asarray(values)
    return array.reshape(-1) if array.ndim != 1 else array


def _check_kpc(values, name, what, largest):
    finite = np.abs(values[np.isfinite(values)])
    if finite.size == 0:
        return
    median = float(np.median(finite))
    if median > largest:
        unit = "pc; divide it by 1000" if median < 1e3 * largest else "a unit far smaller than kpc"
        raise ValueError(f"{what}: column {name!r} is a length in kpc, but its median |value| is "
                         f"{median:.4g} (above {largest:g} kpc): it looks like {unit}")


def column_values(frame, name, *, what="input", **options):
    """Column ``name`` of ``frame`` through :func:`clean_column` (an error if it is missing).

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue; not modified.
    name : str
        Column name.
    what : str, default="input"
        The caller, named in the errors.
    **options
        Of :func:`clean_column` (``finite``, ``kpc``, ...).

    Returns
    -------
    values : ndarray of float of shape (n_rows,)
    """
    require_columns(frame.columns, [name], what=what)
    column = frame[name]
    if isinstance(column, pd.DataFrame):  # a name given twice
        check_unique([str(c) for c in frame.columns], f"{what}: the table")
    return clean_column(column, name, what=what, stacklevel=3, **options)


def require_columns(available, required, *, what="input"):
    """Raise a ``KeyError`` naming every required column that is absent.

    Parameters
    ----------
    available : iterable of str
        Column names present (e.g. ``X.columns`` or ``feature_names_in_``).
    required : iterable of str
        Column names needed.
    what : str
        What the columns are for, used in the message.
    """
    available = list(available)
    present = set(available)        # a set: 7,514 pixel names against 15,116 columns stay linear
    missing = [c for c in required if c not in present]
    if missing:
        raise KeyError(
            f"{what}: missing column(s) {missing}; available columns are {available[:50]}"
            + (" ..." if len(available) > 50 else "")
        )


def column_index(feature_names, name, *, what="input"):
    """Position of column ``name`` in ``feature_names`` (error naming it if absent)."""
    names = list(feature_names)
    require_columns(names, [name], what=what)
    return names.index(name)


def _plain(value):
    """A numpy scalar as the Python value it holds (``'bad'``, not ``np.str_('bad')``)."""
    return value.item() if isinstance(value, np.generic) else value


def _bad_rows_message(values, bad, name, condition):
    idx = np.flatnonzero(bad)
    shown = ", ".join(f"row {i}: {_plain(values[i])!r}" for i in idx[:5])
    more = f" (and {idx.size - 5} more)" if idx.size > 5 else ""
    return f"column {name!r} must be {condition}; {idx.size} value(s) are not: {shown}{more}"


def check_finite_column(values, name):
    """Raise a ``ValueError`` naming column ``name`` and the first bad rows if any value is not finite."""
    values = np.asarray(values)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(_bad_rows_message(values, bad, name, "finite"))
    return values


def check_positive_column(values, name, *, allow_nan=False):
    """Raise a ``ValueError`` naming column ``name`` if any value is <= 0 (or NaN unless allowed)."""
    values = np.asarray(values, dtype=float)
    bad = ~(values > 0)
    if allow_nan:
        bad &= ~np.isnan(values)
    if bad.any():
        raise ValueError(_bad_rows_message(values, bad, name, "positive"))
    return values


def check_numeric_columns(X, columns=None, *, what="input"):
    """Raise a ``ValueError`` naming the column, rows and values of a DataFrame that are not numbers.

    Only the ``columns`` given (default: all) of a non-numeric dtype (object, string, category)
    are examined, so numeric frames cost nothing; missing values (None, NaN) are left to the
    caller's finiteness checks. Arrays and other inputs pass unchanged.
    """
    if not isinstance(X, pd.DataFrame):
        return
    dtypes = X.dtypes if columns is None else X.dtypes[list(columns)]
    for name, dtype in dtypes.items():
        if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            continue
        values = X[name]
        converted = pd.to_numeric(values, errors="coerce")
        bad = (converted.isna() & values.notna()).to_numpy()
        if bad.any():
            raise ValueError(f"{what}: " + _bad_rows_message(values.to_numpy(), bad, name,
                                                             "numeric"))


# --------------------------------------------------------------------------- arguments


def numeric_values(values, name):
    """``values`` (an argument: edges, a mask's data, an image) as floats; text is an error.

    Parameters
    ----------
    values : array_like, masked array or pandas.Series
        Numbers; missing values (``None``, ``NaN``, ``pd.NA``, masked entries) become NaN.
    name : str
        Argument name used in the error message.

    Returns
    -------
    array : ndarray of float
        Same shape as ``values``.

    Raises
    ------
    ValueError
        Naming ``name``, how many values are not numbers and the first bad rows (by position).

    Examples
    --------
    >>> numeric_values([1, None, "2.5"], "FE_H").tolist()
    [1.0, nan, 2.5]
    >>> numeric_values([0.1, "bad"], "FE_H")
    Traceback (most recent call last):
    ...
    ValueError: column 'FE_H' must be a number; 1 value(s) are not: row 1: 'bad'
    """
    if isinstance(values, np.ma.MaskedArray):
        return np.ma.filled(numeric_values(np.ma.getdata(values), name), np.nan)
    if isinstance(values, (pd.Series, pd.Index)) and pd.api.types.is_numeric_dtype(values.dtype):
        return values.to_numpy(dtype=float, na_value=np.nan)
    raw = np.asarray(values)
    if raw.dtype.kind in "biuf":
        return raw.astype(float)
    out, not_numbers = masked_to_nan(raw.ravel())
    if not_numbers.any():
        raise ValueError(_bad_rows_message(raw.ravel(), not_numbers, name, "a number"))
    return out.reshape(raw.shape)


def check_mask(where, n_rows, name="where"):
    """A boolean mask of ``n_rows`` values (``None``: all True)."""
    if where is None:
        return np.ones(n_rows, dtype=bool)
    where = np.asarray(where, dtype=bool)
    if where.shape != (n_rows,):
        raise ValueError(f"{name} must have shape ({n_rows},); got {where.shape}")
    return where


def check_min_stars(min_stars, minimum=1):
    """``min_stars`` as an int, or a ValueError if it is not an integer >= ``minimum``."""
    if not isinstance(min_stars, numbers.Integral) or isinstance(min_stars, bool) or min_stars < minimum:
        raise ValueError(f"min_stars must be an integer >= {minimum}; got {min_stars!r}")
    return int(min_stars)


def check_positive(value, name):
    """``value`` as a float, or a ValueError naming ``name`` if it is not a positive finite number."""
    if not (isinstance(value, numbers.Real) and np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number; got {value!r}")
    return float(value)


def check_edges(edges, name):
    """``edges`` as a float array, or a ValueError if they are not at least two increasing numbers."""
    edges = numeric_values(edges, name)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError(f"{name} must be at least two increasing bin edges; got {edges!r}")
    return edges
