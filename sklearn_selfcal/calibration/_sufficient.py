"""The calibrator's fit as passes over partitions of the rows, reduced by sums.

Everything the fit needs of the data is a sum over rows (a :class:`Summary` of counts, categories
and moments, merged exactly as Chan et al.'s parallel variance; the normal equations in the scaled
basis, :func:`~sklearn_selfcal._kernels.wls.normal_equations`; the residual sums at the solution,
:func:`~sklearn_selfcal._kernels.wls.residual_sums`), or the training values of one column where a
median reference or quantile knots need them (one more pass, only then). :func:`fit_passes` runs
the passes with a *runner* ``run(func, combine)`` that applies ``func`` to the prepared rows
(:func:`._inputs.prepare_rows`) of every partition and reduces the results with the associative
``combine``: on one in-memory table in :meth:`NuisanceCalibrator.fit`, on any partitions in
:meth:`NuisanceCalibrator.fit_partitioned`, so that both fits are the same code.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from .._kernels import categorical as _categorical
from .._kernels import wls as _wls
from .._kernels.reductions import merge_moments, moments
from . import _inputs
from ._design import build_design, nuisance_specs, orbit_knots

__all__ = ["Summary", "TrainingStatistics", "add_tuples", "fit_passes"]


@dataclass
class Summary:
    """Pass 1 of one partition (or of several, merged with :meth:`merge`)."""

    n_rows: int
    n_train: int
    finite_any: np.ndarray           # (K,) bool: the abundance has a finite value in some row
    category_counts: list            # per categorical nuisance: Counter category (str) -> count
    moments: tuple                   # (n, mean, M2) of every continuous value, training rows

    @classmethod
    def of(cls, cols, rows):
        Vt = rows.V[rows.train]
        counts = []
        for j in cols.categorical:
            raw = _inputs.column_series(rows.X, cols.nuisance[j])[rows.train]
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


def _design_t(cols, design, categories, rows):
    """Transposed design of the training rows in fit units, and its pair products (cached)."""
    key = id(design)
    if key not in rows.cache:
        codes = _inputs.category_codes(rows.X, cols, categories, warn=False)
        design_t = np.ascontiguousarray(
            design.evaluate(rows.V[rows.train], codes[rows.train], fit_units=True).T)
        rows.cache.clear()
        rows.cache[key] = (design_t, _wls.pair_products(design_t))
    return rows.cache[key]


def _training_targets(rows):
    """Abundances and weights of the training rows in the kernels' layout (K, n_train)."""
    return rows.A.T[:, rows.train], rows.weights.T[:, rows.train]


def _normal_equations(cols, design, categories, rows):
    design_t, products = _design_t(cols, design, categories, rows)
    At, W = _training_targets(rows)
    gram, rhs = _wls.normal_equations(design_t, At, W, products)
    return gram, rhs, (W > 0).sum(axis=1)


def _residual_sums(cols, design, categories, coef, meat, rows):
    design_t, products = _design_t(cols, design, categories, rows)
    At, W = _training_targets(rows)
    return _wls.residual_sums(design_t, At, W, coef, products, meat=meat)


def add_tuples(parts):
    """Element-wise sum of a list of tuples of arrays (``None`` stays ``None``)."""
    return tuple(None if items[0] is None else sum(items[1:], items[0])
                 for items in zip(*parts))


def fit_passes(run, cols, params):
    """Solve the calibration model's weighted least squares from sums over the rows' partitions.

    Parameters
    ----------
    run : callable
        ``run(func, combine)``: the results of ``func(rows)`` for the prepared rows
        (:func:`._inputs.prepare_rows`) of every partition, reduced by ``combine``.
    cols : Columns
        The resolved column roles.
    params : dict
        The calibrator's parameters (``get_params()``).

    Returns
    -------
    fit : Bunch
        ``specs`` (resolved nuisances), ``design``, ``coef`` (K, D) and ``cov`` (K, D, D) in
        physical units (``cov`` as ``params["covariance"]`` says), ``chi2`` (weighted residual
        sum of squares) and ``n_obs`` (values fitted) per abundance, ``n_train`` (training rows);
        or, with ``params["min_stars_per_coefficient"]`` set and abundances that cannot be
        fitted (no value, too few training stars, a rank-deficient design), only ``skipped``
        (abundance -> reason), before any solve.
    """
    knots = orbit_knots(cols, params)
    min_stars = params.get("min_stars_per_coefficient")
    skipped = {}

    def refuse(names, reason, message):
        """Raise ``message``, or (with ``min_stars_per_coefficient``) record the abundances."""
        if min_stars is None:
            raise ValueError(message)
        skipped.update({name: reason for name in names})

    summary = run(functools.partial(Summary.of, cols), Summary.merge)
    for k, name in enumerate(cols.abundance_names):
        if not summary.finite_any[k]:
            refuse([name], "no finite value", f"abundance column {name!r} has no finite value "
                                              "(all NaN)")
    if summary.n_train == 0:
        why = (f"no training star: of X's {summary.n_rows} row(s) none passes the training "
               "filter with finite orbit features and nuisance values")
        refuse(cols.abundance_names, why, why)
    if skipped:
        return Bunch(skipped=skipped)
    training = TrainingStatistics(summary, run)
    specs = nuisance_specs(cols, training, params)
    categories = {s.name: s.categories for s in specs if s.kind == _inputs.CATEGORICAL}
    design = build_design(training, orbit_names=cols.orbit_names,
                          orbit_basis=params["orbit_basis"], orbit_degree=params["orbit_degree"],
                          orbit_knots=knots, nuisances=specs,
                          interactions=params["nuisance_interactions"])
    n_terms = design.n_terms

    gram, rhs, n_stars = run(functools.partial(_normal_equations, cols, design, categories),
                             add_tuples)
    needed = n_terms + 1 if min_stars is None else max(n_terms + 1, min_stars * n_terms)
    few = [(name, int(n)) for name, n in zip(cols.abundance_names, n_stars) if n < needed]
    for name, n in few:
        refuse([name], f"too few training stars: {n} for {n_terms} coefficients (at least "
                       f"{needed}: min_stars_per_coefficient = {min_stars})",
               f"too few training stars with a valid value to fit {n_terms} design terms "
               f"(need more than {n_terms}) for: {few}; X has n_samples={summary.n_rows} row(s), "
               f"of which {summary.n_train} pass the training filter with finite orbit features "
               "and nuisance values")
    deficient = {k: js for k, js in _wls.rank_deficiencies(gram).items()
                 if cols.abundance_names[k] not in skipped}
    if deficient:
        parts = [f"{cols.abundance_names[k]!r}: {[design.names[j] for j in js]}"
                 for k, js in deficient.items()]
        for k, js in deficient.items():
            refuse([cols.abundance_names[k]],
                   f"rank-deficient design (collinear: {[design.names[j] for j in js]})",
                   "the design matrix is rank deficient (columns (nearly) collinear among the "
                   "training stars) for " + "; ".join(parts) + ". Check that the orbit features "
                   "and nuisance parameters vary among the training stars and that every "
                   "category has stars with a valid value, or lower the degrees / number of "
                   "knots.")
    if skipped:
        return Bunch(skipped=skipped)
    coef_s, gram_inv = _wls.coef_from_normal(gram, rhs)
    covariance = params["covariance"]
    chi2, n_obs, meat = run(functools.partial(_residual_sums, cols, design, categories, coef_s,
                                              covariance == "sandwich"), add_tuples)
    dof = n_obs - n_terms
    if covariance == "chi2":
        cov = gram_inv * (chi2 / dof)[:, None, None]
    elif covariance == "sandwich":
        cov = gram_inv @ meat @ gram_inv * (n_obs / dof)[:, None, None]
    else:
        cov = gram_inv
    T = design.to_physical()
    cov = T @ cov @ T.T
    return Bunch(specs=specs, design=design, coef=coef_s @ T.T,
                 cov=0.5 * (cov + np.swapaxes(cov, 1, 2)), chi2=chi2, n_obs=n_obs,
                 n_train=summary.n_train)


def fitted_attributes(fit, cols):
    """The calibrator's fitted attributes (name -> value) from :func:`fit_passes`' result.

    ``fit`` None (every abundance skipped) gives the attributes of a calibrator with nothing to
    calibrate: no abundance, no design term.
    """
    if fit is None:
        index = pd.Index([], name="abundance")
        return dict(abundance_columns_=[], error_columns_=None, design_names_=[],
                    nuisance_terms_=[], nuisance_groups_={}, coef_=pd.DataFrame(index=index),
                    coef_cov_=np.empty((0, 0, 0)), n_stars_=pd.Series([], dtype=int),
                    n_training_stars_=0)
    design = fit.design
    index = pd.Index(list(cols.abundance_names), name="abundance")
    names = list(design.names)
    return dict(
        abundance_columns_=list(cols.abundance_names),
        error_columns_=list(cols.error_names) if cols.error_names is not None else None,
        design_names_=names,
        nuisance_terms_=[n for n, nuis in zip(names, design.is_nuisance) if nuis],
        nuisance_groups_={g: [n for n, gg in zip(names, design.groups) if gg == g]
                          for g in dict.fromkeys(design.groups) if g != "orbit"},
        nuisance_kinds_=dict(zip(cols.nuisance_names, cols.nuisance_kinds)),
        nuisance_reference_={s.name: s.reference for s in fit.specs},
        categories_={s.name: s.categories for s in fit.specs if s.kind == _inputs.CATEGORICAL},
        knots_={cols.orbit_names[s.variable] if s.variable < len(cols.orbit)
                else cols.nuisance_names[cols.continuous[s.variable - len(cols.orbit)]]: s.knots
                for s in design.splines},
        coef_=pd.DataFrame(fit.coef, index=index, columns=names),
        coef_cov_=fit.cov,
        coef_stderr_=pd.DataFrame(np.sqrt(np.einsum("kii->ki", fit.cov)), index=index,
                                  columns=names),
        chi2_reduced_=pd.Series(fit.chi2 / (fit.n_obs - design.n_terms), index=index,
                                name="chi2_reduced"),
        n_stars_=pd.Series(fit.n_obs.astype(int), index=index, name="n_stars"),
        n_training_stars_=fit.n_train,
    )
