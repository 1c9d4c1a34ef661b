"""The calibrator's fit as passes over partitions of the rows, reduced by sums.

Everything the fit needs of the data is a sum over rows, or an order statistic of one column of
the training rows:

1. a *summary* of every partition: its row and training-row counts, which abundances have a
   finite value, the counts of every category of a categorical nuisance among the training rows,
   and the count, mean and sum of squared deviations of every continuous value (merged exactly as
   Chan et al.'s parallel variance). These fix the references, the categories and the centring
   and scaling of the polynomial terms;
2. the *normal equations* of every partition in the scaled basis
   (:func:`~sklearn_selfcal._kernels.wls.normal_equations`), summed and solved once;
3. the *residual sums* at the solution (weighted chi-square and the sandwich covariance's
   "meat", :func:`~sklearn_selfcal._kernels.wls.residual_sums`), summed.

A median reference (``nuisance_reference=None``) and spline knots at quantiles need the training
values of that one column; they are gathered only when asked for (one more pass).

The passes are run by a *runner*, a callable ``run(func, combine)`` applying ``func`` to the
prepared rows of every partition (:func:`prepare_rows`) and reducing the results with
``combine`` (associative: a list of results, or of combined results, to one). :meth:`NuisanceCalibrator.fit` runs them
on its one in-memory table (:class:`InMemoryRunner`); ``sklearn_selfcal.scaleout`` runs them on the
partitions of a Dask DataFrame, so that both fits are the same code and agree to rounding.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from .._kernels import categorical as _categorical
from .._kernels import wls as _wls
from .._kernels.reductions import merge_moments, moments
from . import _columns as _col
from ._design import build_design

__all__ = ["Summary", "TrainingStatistics", "InMemoryRunner", "prepare_rows", "add_tuples",
           "fit_in_passes", "fit_partitioned"]


def prepare_rows(est, cols, X):
    """What every pass reads of one partition: abundances, weights, continuous values, training rows.

    Row-level data checks (a non-positive uncertainty where the abundance is finite, an infinite
    value, a non-numeric column) raise here, naming the column.
    """
    feature_names = np.asarray(X.columns, dtype=object) if isinstance(X, pd.DataFrame) else None
    A, weights = est._abundances_and_weights(X, cols, check=True)
    V = est._continuous(X, cols)
    missing_cat = np.zeros(X.shape[0], dtype=bool)
    for j in cols.categorical:
        missing_cat |= pd.isna(np.asarray(_col.column_series(X, cols.nuisance[j]),
                                          dtype=object)).astype(bool)
    train = est._training_rows(X, feature_names) & np.isfinite(V).all(axis=1) & ~missing_cat
    return Bunch(X=X, A=A, weights=weights, V=V, train=train, cache={})


@dataclass
class Summary:
    """Pass 1 of one partition (or of several, merged with :meth:`merge`)."""

    n_rows: int
    n_train: int
    finite_any: np.ndarray           # (K,) bool: the abundance has a finite value in some row
    category_counts: list            # per categorical nuisance: Counter category (str) -> count
    moments: tuple                   # (n, mean, M2) of every continuous value, training rows

    @classmethod
    def of(cls, est, cols, rows):
        Vt = rows.V[rows.train]
        counts = []
        for j in cols.categorical:
            raw = _col.column_series(rows.X, cols.nuisance[j])
            raw = raw[rows.train]
            counts.append(Counter(dict(zip(*_category_counts(raw)))))
        return cls(n_rows=int(rows.A.shape[0]), n_train=int(rows.train.sum()),
                   finite_any=np.isfinite(rows.A).any(axis=0), category_counts=counts,
                   moments=moments(Vt))

    @classmethod
    def merge(cls, summaries):
        first = summaries[0]
        counts = [sum((s.category_counts[c] for s in summaries), Counter())
                  for c in range(len(first.category_counts))]
        return cls(n_rows=sum(s.n_rows for s in summaries),
                   n_train=sum(s.n_train for s in summaries),
                   finite_any=np.logical_or.reduce([s.finite_any for s in summaries]),
                   category_counts=counts,
                   moments=merge_moments([s.moments for s in summaries]))


def _category_counts(values):
    """Distinct non-missing categories (as str) of ``values`` and how often each occurs."""
    categories = _categorical.categories_of(values)
    codes = _categorical.encode(values, categories)
    return categories, np.bincount(codes[codes >= 0], minlength=len(categories)).tolist()


@dataclass
class TrainingStatistics:
    """The training rows' statistics the design and the references need (see :func:`build_design`).

    Order statistics gather the training values of one continuous column through ``run`` (one
    pass, cached).
    """

    summary: Summary
    run: object
    _gathered: dict = field(default_factory=dict)

    def values(self, j):
        """Training values of continuous column ``j`` (orbit features, then continuous nuisances)."""
        if j not in self._gathered:
            self._gathered[j] = self.run(lambda rows: rows.V[rows.train, j], np.concatenate)
        return self._gathered[j]

    def median(self, j):
        return float(np.median(self.values(j)))

    def categories(self, c):
        """Sorted categories of categorical nuisance ``c`` among the training rows, and counts."""
        counts = self.summary.category_counts[c]
        return sorted(counts), counts

    def center_scale(self, columns, shift):
        """Mean and standard deviation (``ddof=0``) of ``V[:, columns] - shift`` (training rows)."""
        n, mean, m2 = self.summary.moments
        if columns.size == 0 or n == 0:
            return np.zeros(columns.size), np.ones(columns.size)
        scale = np.sqrt(m2[columns] / n)
        return mean[columns] - shift, np.where(scale > 0, scale, 1.0)


class InMemoryRunner:
    """Runs the passes on one in-memory table (prepared once; the design columns cached)."""

    def __init__(self, est, cols, X):
        self.rows = prepare_rows(est, cols, X)

    def __call__(self, func, combine):
        return combine([func(self.rows)])


def _design_t(est, cols, design, rows):
    """Transposed design of the training rows in fit units, and its pair products (cached)."""
    key = id(design)
    if key not in rows.cache:
        codes = est._codes(rows.X, cols, warn=False)
        design_t = np.ascontiguousarray(
            design.evaluate(rows.V[rows.train], codes[rows.train], fit_units=True).T)
        rows.cache.clear()
        rows.cache[key] = (design_t, _wls.pair_products(design_t))
    return rows.cache[key]


def _training_targets(rows):
    """Abundances and weights of the training rows in the kernels' layout (K, n_train)."""
    return rows.A.T[:, rows.train], rows.weights.T[:, rows.train]


def _normal_equations(est, cols, design, rows):
    design_t, products = _design_t(est, cols, design, rows)
    At, W = _training_targets(rows)
    gram, rhs = _wls.normal_equations(design_t, At, W, products)
    return gram, rhs, (W > 0).sum(axis=1)


def _residual_sums(est, cols, design, coef, meat, rows):
    design_t, products = _design_t(est, cols, design, rows)
    At, W = _training_targets(rows)
    return _wls.residual_sums(design_t, At, W, coef, products, meat=meat)


def add_tuples(parts):
    """Element-wise sum of a list of tuples of arrays (``None`` stays ``None``)."""
    return tuple(None if items[0] is None else sum(items[1:], items[0])
                 for items in zip(*parts))


def fit_in_passes(est, X, feature_names, make_runner, t_start=None):
    """Fit ``est`` (a NuisanceCalibrator) by passes of ``run`` over the partitions of the data.

    Parameters
    ----------
    est : NuisanceCalibrator
        Parameters validated; ``n_features_in_`` (and ``feature_names_in_``) set from ``X``.
    X : DataFrame or ndarray
        The data, or its first rows (column roles and kinds are resolved on it).
    feature_names : ndarray of str or None
    make_runner : callable
        ``make_runner(cols) -> run`` with ``run(func, combine)`` the results of ``func(rows)`` for
        the :func:`prepare_rows` of every partition reduced by ``combine`` (``cols``: the resolved
        column roles).
    t_start : float, optional
        ``time.perf_counter()`` at the start of the fit (for ``verbose``).

    Returns
    -------
    est : NuisanceCalibrator
        Fitted.
    """
    t_start = time.perf_counter() if t_start is None else t_start
    cols = est._resolve_columns(X, feature_names)
    orbit_knots = est._orbit_knots(cols)
    run = make_runner(cols)
    summary = run(lambda rows: Summary.of(est, cols, rows), Summary.merge)
    for k, name in enumerate(cols.abundance_names):
        if not summary.finite_any[k]:
            raise ValueError(f"abundance column {name!r} has no finite value (all NaN)")
    if summary.n_train == 0:
        raise ValueError(f"no training star: of X's {summary.n_rows} row(s) none passes the "
                         "training filter with finite orbit features and nuisance values")
    training = TrainingStatistics(summary, run)
    specs = est._nuisance_specs(cols, training)
    est.categories_ = {s.name: s.categories for s in specs if s.kind == _col.CATEGORICAL}
    design = build_design(training, orbit_names=cols.orbit_names, orbit_basis=est.orbit_basis,
                          orbit_degree=est.orbit_degree, orbit_knots=orbit_knots,
                          nuisances=specs, interactions=est.nuisance_interactions)
    n_terms = design.n_terms

    gram, rhs, n_stars = run(lambda rows: _normal_equations(est, cols, design, rows), add_tuples)
    few = [(name, int(n)) for name, n in zip(cols.abundance_names, n_stars) if n <= n_terms]
    if few:
        raise ValueError(
            f"too few training stars with a valid value to fit {n_terms} design terms "
            f"(need more than {n_terms}) for: {few}; X has n_samples={summary.n_rows} row(s), of "
            f"which {summary.n_train} pass the training filter with finite orbit features and "
            "nuisance values"
        )
    deficient = _wls.rank_deficiencies(gram)
    if deficient:
        parts = [f"{cols.abundance_names[k]!r}: {[design.names[j] for j in js]}"
                 for k, js in deficient.items()]
        raise ValueError(
            "the design matrix is rank deficient (columns (nearly) collinear among the training "
            "stars) for " + "; ".join(parts) + ". Check that the orbit features and nuisance "
            "parameters vary among the training stars and that every category has stars with "
            "a valid value, or lower the degrees / number of knots."
        )
    coef_s, gram_inv = _wls.coef_from_normal(gram, rhs)
    sandwich = est.covariance == "sandwich"
    chi2, n_obs, meat = run(lambda rows: _residual_sums(est, cols, design, coef_s, sandwich, rows),
                            add_tuples)
    res = _wls.WLSResult(coef=coef_s, gram_inv=gram_inv, chi2=chi2, n_obs=n_obs, resid=None)
    est._store_fit(cols, specs, design, res, meat, summary.n_train)
    if est.verbose:
        est._report_fit(time.perf_counter() - t_start)
    return est


def fit_partitioned(est, head, make_runner):
    """Fit ``est`` on partitioned data: parameters validated, columns resolved on ``head``.

    The entry point of out-of-memory fits (``sklearn_selfcal.scaleout``): what
    :meth:`NuisanceCalibrator.fit` does, with the data's passes run by ``make_runner(cols)``
    instead of on one table.

    Parameters
    ----------
    est : NuisanceCalibrator
    head : DataFrame
        The first rows of the data (at least one), with every column and the dtypes of the
        whole: column roles and kinds (continuous or categorical) are resolved on it.
    make_runner : callable
        As in :func:`fit_in_passes`.

    Returns
    -------
    est : NuisanceCalibrator
        Fitted.
    """
    t_start = time.perf_counter()
    est._validate_params()
    X, feature_names = est._validate_X(head, reset=True)
    return fit_in_passes(est, X, feature_names, make_runner, t_start)
