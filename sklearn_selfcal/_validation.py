"""Input checks shared by the estimators: clear errors that name the column or value at fault."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "require_columns",
    "column_index",
    "check_finite_column",
    "check_positive_column",
]


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
    missing = [c for c in required if c not in available]
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
