"""The calibrator's inputs: which columns of ``X`` it reads as abundances, uncertainties, orbit
features and nuisances (from its parameters), and reading them.

Columns are given by name (``X`` a DataFrame) or by position; errors name what is missing or
malformed. A nuisance column is *categorical* when it is a pandas categorical, string, boolean or
object-of-strings column of a DataFrame, and *continuous* otherwise (every column of a numpy array
is continuous). The catalogue's role table (which spelling is ``LOGG``) is
:mod:`sklearn_selfcal.columns`.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from numbers import Integral, Real

import numpy as np
import pandas as pd
from pandas.api import types as pdt
from sklearn.utils import Bunch

from .._kernels import categorical as _categorical
from .._paper import PAPER_TRAINING_BOUNDS, abundance_error_column
from .._validation import check_numeric_columns, check_positive_column, require_columns
from ..cleaning import clean_values
from ..exceptions import UnseenCategoryWarning
from ..selection import training_mask

__all__ = ["CONTINUOUS", "CATEGORICAL", "Columns", "resolve_columns", "as_list", "positions",
           "display_names", "column_series", "is_categorical", "values", "per_column",
           "continuous_values", "category_codes", "abundances_and_weights", "training_rows",
           "prepare_rows"]

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


def subset_abundances(cols, kept):
    """``cols`` with only the abundances at the indices ``kept`` (and their uncertainties)."""
    pick = [cols.abundance_names[k] for k in kept]
    return replace(
        cols, abundance=[cols.abundance[k] for k in kept], abundance_names=pick,
        error=None if cols.error is None else [cols.error[k] for k in kept],
        error_names=None if cols.error_names is None else [cols.error_names[k] for k in kept])


def resolve_columns(X, feature_names, params):
    """The columns of every role, from the calibrator's parameters (``get_params()``).

    Raises a ``KeyError`` naming a missing column and a ``ValueError`` for an empty role, a column
    given twice or a column both abundance and orbit feature or nuisance.
    """
    n_features = X.shape[1]
    spec = as_list(params["abundance_columns"], "abundance_columns")
    if params["abundance_columns"] is None:
        spec = default_abundances(feature_names)
    if not spec:
        raise ValueError("abundance_columns is empty")
    abund = positions(spec, feature_names, n_features, "abundance_columns")
    orbit = positions(as_list(params["orbit_features"], "orbit_features"), feature_names,
                      n_features, "orbit_features")
    nuis = positions(as_list(params["nuisance_columns"], "nuisance_columns"), feature_names,
                     n_features, "nuisance_columns")
    if not nuis:
        raise ValueError("nuisance_columns is empty: there would be nothing to calibrate")
    shared = set(abund) & set(orbit + nuis)
    if shared:
        raise ValueError(f"columns {display_names(sorted(shared), feature_names)} are used both "
                         "as abundances and as orbit features or nuisance parameters")
    repeated = [name for name, count in Counter(
        display_names(abund + orbit + nuis, feature_names)).items() if count > 1]
    if repeated:
        raise ValueError(f"columns {repeated} are given more than once among the abundance, "
                         "orbit and nuisance columns")
    err = err_names = None
    if params["weighted"] or params["errors"]:
        err_spec = error_specification(params["error_columns"], spec, feature_names)
        err = positions(err_spec, feature_names, n_features, "error_columns")
        err_names = display_names(err, feature_names)
    kinds = [CATEGORICAL if is_categorical(X, p) else CONTINUOUS for p in nuis]
    return Columns(abund, display_names(abund, feature_names), err, err_names, orbit,
                   display_names(orbit, feature_names), nuis, display_names(nuis, feature_names),
                   kinds, references(params["nuisance_reference"], len(nuis)))


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


def values(X, pos, names, where=None):
    """Float columns of X at ``pos`` as an (n, len(pos)) array; NaN for missing.

    ``where`` (n, len(pos)) bool, optional: the values that are used; the others are NaN and
    neither checked nor cleaned (the uncertainty of a missing abundance may be anything). In a
    DataFrame, a catalogue's "no measurement" sentinels (-9999.99, ...) and values outside the
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
    if where is not None:
        out[~np.asarray(where, dtype=bool).T] = np.nan
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


def continuous_values(X, cols):
    """``V``: the orbit features, then the continuous nuisances (raw values), (n, n_continuous)."""
    pos = cols.orbit + [cols.nuisance[j] for j in cols.continuous]
    names = cols.orbit_names + [cols.nuisance_names[j] for j in cols.continuous]
    return values(X, pos, names)


def category_codes(X, cols, categories, warn=True):
    """Codes of the categorical nuisances in the fitted ``categories`` (name -> list), (n, C).

    Unseen categories get :data:`~sklearn_selfcal._kernels.categorical.UNSEEN`, with an
    :class:`UnseenCategoryWarning` naming the column when ``warn``.
    """
    codes = np.empty((X.shape[0], len(cols.categorical)), dtype=int)
    for c, j in enumerate(cols.categorical):
        name = cols.nuisance_names[j]
        raw = column_series(X, cols.nuisance[j])
        codes[:, c] = _categorical.encode(raw, categories[name])
        unseen = codes[:, c] == _categorical.UNSEEN
        if warn and unseen.any():
            found = sorted(set(_categorical.categories_of(np.asarray(raw, dtype=object)[unseen])))
            warnings.warn(
                f"nuisance column {name!r}: {int(unseen.sum())} row(s) take categories the "
                f"calibrator was not fitted on ({found[:10]}; fitted: {categories[name]}); their "
                "calibrated abundances are NaN", UnseenCategoryWarning, stacklevel=4)
    return codes


def abundances_and_weights(X, cols, *, weighted, check):
    """Abundances (n, K) and weights (n, K): 1/sigma^2 (or 1), zero where the value is NaN.

    Uncertainties are read only where the abundance is finite. With ``check`` a non-positive or
    missing one there raises a ``ValueError`` naming the column and rows; without, that value
    gets weight 0.
    """
    A = values(X, cols.abundance, cols.abundance_names)
    finite = np.isfinite(A)
    if not weighted:
        return A, finite.astype(float)
    E = values(X, cols.error, cols.error_names, where=finite)
    if check:
        for k, name in enumerate(cols.error_names):
            try:
                check_positive_column(np.where(finite[:, k], E[:, k], 1.0), name)
            except ValueError as exc:
                raise ValueError(f"{exc} (uncertainty of {cols.abundance_names[k]!r}, needed "
                                 "wherever the abundance is finite)") from None
    else:
        finite &= E > 0
    return A, np.where(finite, 1.0 / np.where(finite, E, 1.0) ** 2, 0.0)


def training_rows(X, feature_names, training_filter):
    """Rows passing ``training_filter``: ``"paper"`` (:data:`PAPER_TRAINING_BOUNDS`), a mapping
    column (name or position) -> (low, high) (applied by
    :func:`~sklearn_selfcal.selection.training_mask`), a callable ``f(X) -> bool array`` or None."""
    n = X.shape[0]
    if training_filter is None:
        return np.ones(n, dtype=bool)
    if callable(training_filter) and not isinstance(training_filter, Mapping):
        mask = np.asarray(training_filter(X))
        if mask.shape != (n,) or mask.dtype != bool:
            raise ValueError(f"training_filter returned an array of shape {mask.shape} and dtype "
                             f"{mask.dtype}; expected booleans of shape ({n},)")
        return mask
    bounds = PAPER_TRAINING_BOUNDS if isinstance(training_filter, str) else training_filter
    if not bounds:
        return np.ones(n, dtype=bool)
    pos = positions(list(bounds), feature_names, X.shape[1], "training_filter")
    columns = values(X, pos, display_names(pos, feature_names)).T
    return training_mask(dict(zip(bounds, columns)), bounds)


def prepare_rows(X, cols, *, weighted, training_filter):
    """What every pass of the fit reads of one table or partition: abundances and weights (n, K),
    continuous values ``V`` and the training rows (finite ``V``, a category present).

    Row-level data checks (a non-positive uncertainty where the abundance is finite, an infinite
    value, a non-numeric column) raise here, naming the column.
    """
    feature_names = np.asarray(X.columns, dtype=object) if isinstance(X, pd.DataFrame) else None
    A, weights = abundances_and_weights(X, cols, weighted=weighted, check=True)
    V = continuous_values(X, cols)
    missing_cat = np.zeros(X.shape[0], dtype=bool)
    for j in cols.categorical:
        missing_cat |= pd.isna(np.asarray(column_series(X, cols.nuisance[j]),
                                          dtype=object)).astype(bool)
    train = training_rows(X, feature_names, training_filter) & np.isfinite(V).all(axis=1) \
        & ~missing_cat
    return Bunch(X=X, A=A, weights=weights, V=V, train=train, cache={})
