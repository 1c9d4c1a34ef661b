"""Input checks shared by the estimators: clear errors that name the column or value at fault."""

from __future__ import annotations

from numbers import Real

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import Interval

from ._paper import PARALLAX_ZERO_POINT_RANGE_MAS

__all__ = [
    "MEDIAN_DISTANCE_RANGE_KPC",
    "PARALLAX_ZERO_POINT_CONSTRAINT",
    "require_columns",
    "column_index",
    "check_finite_column",
    "check_positive_column",
    "check_numeric_columns",
]


#: Unit guards accept samples whose median heliocentric distance lies in this range (kpc): outside
#: it a parallax is most likely in arcsec or micro-arcsec, or a distance in pc.
MEDIAN_DISTANCE_RANGE_KPC = (0.01, 100.0)

#: The ``_parameter_constraints`` entry of every ``parallax_zero_point`` (mas): the one range,
#: :data:`~sklearn_selfcal._paper.PARALLAX_ZERO_POINT_RANGE_MAS`.
PARALLAX_ZERO_POINT_CONSTRAINT = [Interval(Real, *PARALLAX_ZERO_POINT_RANGE_MAS, closed="both")]


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


def _bad_rows_message(values, bad, name, condition):
    idx = np.flatnonzero(bad)
    shown = ", ".join(f"row {i}: {values[i]!r}" for i in idx[:5])
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


def to_frame(X, feature_names=None):
    """Return ``X`` as a DataFrame without copying a DataFrame input (never mutated by callers)."""
    if isinstance(X, pd.DataFrame):
        return X
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D table of shape (n_stars, n_columns), got shape {X.shape}")
    return pd.DataFrame(X, columns=feature_names)


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
