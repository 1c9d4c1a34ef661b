"""Which columns of ``X`` play which role in the calibration, and reading them.

Columns are given by name (``X`` a DataFrame) or by position; errors name what is missing or
malformed. A nuisance column is *categorical* when it is a pandas categorical, string, boolean or
object-of-strings column of a DataFrame, and *continuous* otherwise (every column of a numpy array
is continuous).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from .._paper import abundance_error_column
from .._validation import check_numeric_columns, require_columns
from ..cleaning import clean_values

__all__ = ["CONTINUOUS", "CATEGORICAL", "Columns", "as_list", "positions", "display_names",
           "default_abundances", "column_series", "is_categorical", "values",
           "error_specification", "references", "per_column"]

CONTINUOUS = "continuous"
CATEGORICAL = "categorical"


@dataclass
class Columns:
    """Positions (in ``X``) and display names of the columns each role uses.

    ``nuisance_kinds`` says which nuisances are continuous or categorical; ``nuisance_reference``
    holds the references as given (None where the fit chooses one).
    """

    abundance: list
    abundance_names: list
    error: list | None
    error_names: list | None
    orbit: list
    orbit_names: list
    nuisance: list
    nuisance_names: list
    nuisance_kinds: list
    nuisance_reference: list

    @property
    def continuous(self):
        """Indices (into the nuisance lists) of the continuous nuisances."""
        return [j for j, k in enumerate(self.nuisance_kinds) if k == CONTINUOUS]

    @property
    def categorical(self):
        """Indices (into the nuisance lists) of the categorical nuisances."""
        return [j for j, k in enumerate(self.nuisance_kinds) if k == CATEGORICAL]


def as_list(value, what):
    """A column specification (name, position or sequence of them) as a list."""
    if value is None:
        return []
    if isinstance(value, (str, Integral)):
        return [value]
    if isinstance(value, (Sequence, np.ndarray)):
        return list(value)
    raise TypeError(f"{what} must be a column name, a position or a sequence of them, got {value!r}")


def positions(spec, feature_names, n_features, what):
    """Column names or integer positions -> positions in X (errors name what is missing)."""
    for s in spec:
        if not isinstance(s, (str, Integral)) or isinstance(s, bool):
            raise TypeError(f"{what}: columns must be names (str) or positions (int), got {s!r}")
    names = [s for s in spec if isinstance(s, str)]
    if names and feature_names is None:
        raise ValueError(
            f"{what}: columns {names} are given by name but X has no column names (a numpy array); "
            "pass a pandas DataFrame or give the columns as integer positions"
        )
    if names:
        require_columns(feature_names, names, what=what)
    out = []
    for s in spec:
        if isinstance(s, str):
            out.append(int(np.flatnonzero(np.asarray(feature_names) == s)[0]))
        else:
            if not -n_features <= int(s) < n_features:
                raise ValueError(f"{what}: column position {int(s)} is out of range for X with "
                                 f"{n_features} feature(s)")
            out.append(int(s) % n_features)
    return out


def display_names(pos, feature_names):
    """Names of the columns at ``pos`` (``x<i>`` when X has no column names)."""
    if feature_names is None:
        return [f"x{p}" for p in pos]
    return [str(feature_names[p]) for p in pos]


def default_abundances(feature_names):
    """``FE_H``, every ``<X>_FE`` and ``ALPHA_M`` present, in that order."""
    if feature_names is None:
        raise ValueError("abundance_columns=None picks the abundance columns by name, but X has no "
                         "column names (a numpy array); pass a DataFrame or list the columns")
    names = [str(c) for c in feature_names]
    found = (["FE_H"] if "FE_H" in names else []) + [c for c in names if c.endswith("_FE")]
    found += ["ALPHA_M"] if "ALPHA_M" in names else []
    if not found:
        raise ValueError("abundance_columns=None found no abundance column (FE_H, <X>_FE, ALPHA_M) "
                         f"in X; columns are {names[:50]}")
    return found


def column_series(X, p):
    """Column ``p`` of ``X`` as it is stored (a Series for a DataFrame, an array otherwise)."""
    return X.iloc[:, p] if isinstance(X, pd.DataFrame) else X[:, p]


def is_categorical(X, p):
    """Whether column ``p`` of ``X`` holds categories rather than numbers (DataFrames only).

    Categories: a pandas categorical or boolean column, or text (string dtype, or object holding
    strings or booleans). Text that reads entirely as numbers is refused with an error naming the
    column: convert it to float (a continuous nuisance) or to a pandas categorical (categories).
    A column mixing numbers and text is numeric, and reading it names the column.
    """
    if not isinstance(X, pd.DataFrame):
        return False
    col = X.iloc[:, p]
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pdt.is_bool_dtype(dtype):
        return True
    if pdt.is_object_dtype(dtype):
        kind = pdt.infer_dtype(col, skipna=True)
        if kind == "boolean":
            return True
        is_text = kind == "string"
    else:
        is_text = pdt.is_string_dtype(dtype)
    if is_text:
        present = col.dropna()
        if len(present) and pd.to_numeric(present, errors="coerce").notna().all():
            raise ValueError(f"column {X.columns[p]!r} holds numbers stored as text; convert it to "
                             "float for a continuous nuisance or to a pandas categorical for "
                             "categories")
    return bool(is_text)


def values(X, pos, names):
    """Float columns of X at ``pos`` as an (n, len(pos)) array; NaN for missing.

    In a DataFrame, a catalogue's "no measurement" sentinels (-9999.99, ...) and values outside the
    physical range of a recognised column (``LOGG``, ``TEFF``, an abundance, ...; see
    :data:`sklearn_selfcal.columns.ROLES`) are NaN, with a warning naming the column
    (:func:`sklearn_selfcal.cleaning.clean_values`): never numbers.

    Raises
    ------
    ValueError
        Naming the column when a value is not a number or is infinite.
    """
    if isinstance(X, pd.DataFrame):
        out = np.empty((len(pos), len(X)))
        for j, (p, name) in enumerate(zip(pos, names)):
            check_numeric_columns(X.iloc[:, [p]], what="NuisanceCalibrator")
            try:
                out[j] = X.iloc[:, p].to_numpy(dtype=float, na_value=np.nan)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"column {name!r} must be numeric: {exc}") from None
    else:
        out = np.ascontiguousarray(np.asarray(X[:, pos], dtype=float).T)
    bad = np.isinf(out)
    if bad.any():
        j = int(np.flatnonzero(bad.any(axis=1))[0])
        rows = np.flatnonzero(bad[j])
        raise ValueError(f"column {names[j]!r} must not be infinite (NaN marks a missing value); "
                         f"{rows.size} value(s) are: rows {rows[:5].tolist()}")
    if isinstance(X, pd.DataFrame):
        for j, name in enumerate(names):
            out[j] = clean_values(out[j], str(name), stacklevel=4)[0]
    return out.T


def error_specification(error_columns, spec, feature_names):
    """The uncertainty column of every abundance (names or positions), from ``error_columns``."""
    if error_columns is None:
        if feature_names is None or not all(isinstance(s, str) for s in spec):
            raise ValueError("error_columns=None derives '<X>_ERR' names from abundance "
                             "names; with positional columns give error_columns explicitly")
        return [abundance_error_column(s) for s in spec]
    if callable(error_columns):
        return [error_columns(s) for s in spec]
    err_spec = as_list(error_columns, "error_columns")
    if len(err_spec) != len(spec):
        raise ValueError(f"error_columns has {len(err_spec)} entries for {len(spec)} "
                         "abundance columns")
    return err_spec


def references(reference, n_nuisance):
    """``nuisance_reference`` as a list with one entry (number, str or None) per nuisance."""
    ref = list(reference) if isinstance(reference, (Sequence, np.ndarray)) \
        and not isinstance(reference, str) else [reference]
    if len(ref) != n_nuisance or not all(r is None or isinstance(r, (Real, str)) for r in ref):
        raise ValueError(f"nuisance_reference must give one value per nuisance column "
                         f"({n_nuisance}): a number for a continuous one, a category for a "
                         f"categorical one, or None; got {reference!r}")
    return ref


def per_column(value, names, what, *, scalar=lambda v: not isinstance(v, Mapping)):
    """A per-variable setting given once for all (``scalar(value)``) or as a mapping name -> value.

    Returns a list with one entry per name; a mapping must only name known variables and leaves
    the others at ``None`` (the caller's default).
    """
    if scalar(value):
        return [value] * len(names)
    unknown = sorted(set(value) - set(names))
    if unknown:
        raise ValueError(f"{what}: unknown column(s) {unknown}; the columns are {list(names)}")
    return [value.get(name) for name in names]
