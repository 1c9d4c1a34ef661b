"""``NuisanceCalibrator``: remove the dependence of abundances on nuisance parameters at fixed orbit.

The estimator validates its input, resolves the columns' roles and dispatches to the kernels: the
design is laid out by :mod:`._design` from the basis kernels (:mod:`sklearn_selfcal._kernels.design`,
``bspline``, ``categorical``), and every abundance is fitted by the batched weighted least squares
of :mod:`sklearn_selfcal._kernels.wls`.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from .._kernels import categorical as _categorical
from .._kernels import wls as _wls
from .._kernels.sampling import as_generator, gaussian_draws
from .._kernels.bspline import check_knots
from .._paper import LOGG_REFERENCE, PAPER_TRAINING_BOUNDS, abundance_error_column, calibrated_name
from ..exceptions import UnseenCategoryWarning
from .._validation import check_positive_column, estimator_input
from ..selection import within_bounds
from . import _columns as _col
from . import _sufficient, _trends
from ._design import NuisanceSpec

__all__ = ["NuisanceCalibrator", "UnseenCategoryWarning"]

_BASES = ("polynomial", "spline")
_DEFAULT_DEGREE = 2
_DEFAULT_KNOTS = 5


class NuisanceCalibrator(TransformerMixin, BaseEstimator):
    """Remove the dependence of abundances on nuisance parameters (log g, Teff, telescope, ...) at
    fixed orbit.

    For every abundance ``a`` (dex) the model is (paper equations 1-2, generalised)::

        a = f_orbit(J_R, J_z, L_z) + sum_j g_j(nuisance_j) + noise

    with ``f_orbit`` a complete polynomial of degree ``orbit_degree`` in the orbit features (with
    the constant) or a sum of B-splines, and every ``g_j`` zero at the nuisance's reference value:
    a polynomial in ``nuisance_j - reference_j`` without constant, a sum of B-splines minus their
    value at the reference, or, for a categorical nuisance, one offset per category relative to the
    reference category. The model is fitted by least squares weighted by ``1 / sigma^2`` from the
    abundance's uncertainty column; :meth:`transform` subtracts only the nuisance part (paper
    equation 4), so calibrated abundances keep their dependence on the orbit and are put on the
    scale of a star at the reference values. Fitting the orbit part at the same time is what
    separates a genuine nuisance systematic from the dependence of abundance on Galactic position
    that log g inherits through the survey's flux limit (and that the telescope inherits through
    the sky each one sees).

    With the defaults the design is the paper's, ``[1, J_R, J_z, L_z, J_R^2, J_R J_z, J_R L_z,
    J_z^2, J_z L_z, L_z^2, lg, lg^2]`` with ``lg = LOGG - 2.2``.

    Parameters
    ----------
    abundance_columns : sequence of str or int, default None
        Abundance columns to calibrate (dex).  ``None``: ``FE_H``, every ``<X>_FE`` column and
        ``ALPHA_M`` present in ``X`` (needs a DataFrame).  Integers are column positions.
    error_columns : None, callable or sequence, default None
        Uncertainty (1 sigma, dex) of each abundance.  ``None``: APOGEE's naming, ``<X>_ERR``
        (``MG_FE`` -> ``MG_FE_ERR``); a callable maps an abundance column (name or position, as
        given) to its uncertainty column; a sequence lists them in the order of the abundances.
        Not read when ``weighted=False`` and ``errors=False``.
    weighted : bool, default True
        Weight each star by ``1 / sigma^2`` (the paper).  ``False`` fits unweighted.
    orbit_features : sequence of str or int, default ("J_R", "J_z", "L_z")
        The orbit features the true abundances depend on (kpc km/s; the names ``ActionTransformer``
        writes).  An empty sequence fits the nuisance part alone (no control for the orbit).
    orbit_basis : {"polynomial", "spline"}, default "polynomial"
        ``"polynomial"``: complete polynomial of total degree ``orbit_degree`` (the paper).
        ``"spline"``: the constant plus, per orbit feature, B-splines of degree ``orbit_degree`` on
        ``orbit_knots`` knots (additive, no cross terms): a flexible orbit part, so that an orbit
        dependence a quadratic cannot follow does not leak into the nuisance part.
    orbit_degree : int, default 2
        Total polynomial degree, or spline degree (>= 1 for splines).
    orbit_knots : int, array-like or dict, default 5
        Spline knots of every orbit feature: their number (>= 2, placed at quantiles of the training
        stars, boundary knots at the extremes), their positions (one feature only) or a dict
        feature -> number or positions.  Ignored for the polynomial basis.
    nuisance_columns : str or sequence of str or int, default ("LOGG",)
        Nuisance parameters.  Continuous (e.g. ``"LOGG"`` in dex, ``"TEFF"`` in K, ``"SNR"``) or
        categorical: a pandas categorical, string, boolean or object-of-strings column of a
        DataFrame (e.g. ``"TELESCOPE"``, a fibre group, a field programme).
    nuisance_reference : number, str, None or sequence of them, default (2.2,)
        Reference of each nuisance, in the position of its column: calibrated abundances are those
        of a star at these values.  A number (in the column's units) for a continuous nuisance, a
        category for a categorical one (e.g. ``(2.2, 4500.0, "apo25m")``).  ``None``: the median
        of the training stars (continuous) or their most frequent category.
    nuisance_basis : {"polynomial", "spline"} or dict, default "polynomial"
        Basis of every continuous nuisance, or a dict column -> basis (others: polynomial).
        ``"polynomial"``: powers 1 to ``nuisance_degree`` of the offset from the reference (the
        paper).  ``"spline"``: B-splines of degree ``nuisance_degree`` on ``nuisance_knots`` knots,
        minus their value at the reference (the knots enclose the reference), one function dropped;
        linear beyond the boundary knots.  Nuisances add up (no cross terms) unless
        ``nuisance_interactions``.
    nuisance_degree : int or dict, default 2
        Polynomial or spline degree (>= 1), for every continuous nuisance or per column.
    nuisance_knots : int, array-like or dict, default 5
        As ``orbit_knots``, for the spline nuisances.
    nuisance_interactions : bool, default False
        Replace the separate polynomials of the continuous nuisances by one complete polynomial
        of total degree ``nuisance_degree`` in all of them (cross terms such as ``lg (TEFF-4500)``).
        Needs the polynomial basis with one degree.  Categorical offsets never interact.
    training_filter : "paper", mapping, callable or None, default "paper"
        Stars used to fit the coefficients (``transform`` applies to every row).  ``"paper"``: the
        paper's section 3.2 filter ``0 < J_R < 400``, ``-5000 < L_z < 1000``, ``0 < J_z < 100``
        (kpc km/s) and ``x < 0`` (kpc), i.e. :data:`sklearn_selfcal.selection.PAPER_TRAINING_BOUNDS`;
        a mapping column -> (low, high) of strict bounds (``None`` = unbounded); a callable
        ``f(X) -> bool array``; ``None``: every star.  Stars whose orbit features or nuisance values
        are missing never take part in the fit.  :meth:`score` uses the same filter.
    covariance : {"sandwich", "chi2", "reported"}, default "sandwich"
        How ``coef_cov_`` is estimated.  ``"sandwich"``: the heteroscedasticity-robust (HC1)
        covariance ``G^-1 (Y^T W diag(r^2) W Y) G^-1 n / (n - D)`` with ``G = Y^T W Y`` and ``r``
        the residuals; honest whatever the scatter of the abundances about the model, in
        particular when the true abundances scatter at fixed orbit by more than (and not in
        proportion to) their reported uncertainties.  ``"chi2"``: ``G^-1`` times the reduced
        chi-square of the fit, honest only if the extra scatter is proportional to the reported
        uncertainties (with a constant intrinsic scatter it under-states the errors: on
        ``make_survey`` the log g coefficients' pulls spread by 1.46 with it and by 1.02 with the
        sandwich, over 12 surveys of 4,000 stars).  ``"reported"``: ``G^-1``, trusting the
        reported uncertainties.
    errors : bool, default False
        Also return ``<X>_NEW_ERR`` (dex): the reported uncertainty combined in quadrature with
        the uncertainty of the subtracted nuisance part (from ``coef_cov_``).
    verbose : int, default 0
        When truthy, report each fit (training stars, abundances, time, the most significant
        nuisance terms).  A fit is one pass over the data (about a second for 10^5 stars), so
        there is no progress bar.

    Attributes
    ----------
    abundance_columns_ : list of str
        Calibrated abundance columns (positions in arrays are named ``x<i>``).
    error_columns_ : list of str or None
        Their uncertainty columns (``None`` when neither weighted nor ``errors``).
    design_names_ : list of str
        Names of the design columns: ``"1"``, orbit terms (``"J_R"``, ..., ``"L_z^2"`` or
        ``"B1(J_R)"``, ...), then nuisance terms (``"(LOGG-2.2)"``, ``"(LOGG-2.2)^2"``,
        ``"B1(LOGG)"``, ``"TELESCOPE[lco25m]"``, ...).
    nuisance_terms_ : list of str
        The design columns that make up the nuisance part (those ``transform`` subtracts).
    nuisance_groups_ : dict of str to list of str
        The nuisance terms of every nuisance column (``"interactions"`` holds cross terms).
    nuisance_kinds_ : dict of str to str
        ``"continuous"`` or ``"categorical"`` for every nuisance column.
    nuisance_reference_ : dict
        The reference of every nuisance (chosen by the fit where ``nuisance_reference`` is None).
    categories_ : dict of str to list of str
        The categories of every categorical nuisance seen in the training stars.
    knots_ : dict of str to ndarray
        The knots of every spline variable (in its units).
    coef_ : DataFrame of shape (n_abundances, n_design)
        Coefficients in physical units (dex per unit of the term), index ``abundance_columns_``,
        columns ``design_names_``.
    coef_cov_ : ndarray of shape (n_abundances, n_design, n_design)
        Covariance of each abundance's coefficients (physical units), as ``covariance`` says.
    coef_stderr_ : DataFrame of shape (n_abundances, n_design)
        Square roots of the diagonals of ``coef_cov_``.
    chi2_reduced_ : Series
        Weighted residual sum of squares over ``n_stars_ - n_design`` per abundance.
    n_stars_ : Series of int
        Stars that entered each abundance's fit (training rows with a valid value).
    n_training_stars_ : int
        Rows passing the training filter with finite orbit features and nuisance values.
    n_features_in_ : int
        Number of columns of ``X`` seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names of ``X`` seen in ``fit`` (DataFrame input only).

    See Also
    --------
    sklearn_selfcal.selection.disk_sample_mask : the paper's disk-sample cuts, applied before.
    sklearn_selfcal.calibration.trend_summary : which abundances keep a nuisance trend.
    sklearn_selfcal.calibration.chosen_models : the model a grid search chose, per abundance.

    Notes
    -----
    Missing data: an abundance that is NaN for a star is fitted without that star (its uncertainty
    may then be anything); :meth:`transform` returns NaN where the abundance is NaN, where any
    nuisance value is missing, and where a categorical nuisance takes a category the fit never saw
    (with an :class:`UnseenCategoryWarning`: no offset is ever guessed).  Orbit features are
    needed only to fit and score: stars whose actions failed (NaN) are calibrated too.  Rows are
    never dropped or reordered.

    Model selection: :meth:`score` is the held-out fit quality, so scikit-learn's tools choose the
    model, e.g. ``GridSearchCV(NuisanceCalibrator(), {"nuisance_degree": [1, 2, 3, 4]}, cv=5)``
    (folds of stars; the training filter applies inside every fold).  With
    ``scoring=abundance_scorer, refit="score"`` every abundance's own held-out score is kept and
    :func:`~sklearn_selfcal.calibration.chosen_models` reports the choice per abundance.

    The design columns are centred and scaled internally for the polynomial terms (the normal
    equations stay well conditioned) and the coefficients and their covariance converted exactly
    to physical units.  The K normal matrices are formed with one matrix product for all
    abundances (see ``sklearn_selfcal._kernels.wls``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_selfcal import NuisanceCalibrator
    >>> rng = np.random.default_rng(0)
    >>> n = 2000
    >>> X = pd.DataFrame({"L_z": rng.uniform(-4000, -500, n), "LOGG": rng.uniform(0.5, 2.2, n),
    ...                   "TELESCOPE": rng.choice(["apo25m", "lco25m"], n)})
    >>> truth = 0.1 + 1e-4 * (X["L_z"] + 2000)  # depends on the orbit only
    >>> X["FE_H"] = (truth + 0.05 * (X["LOGG"] - 2.2) + 0.03 * (X["TELESCOPE"] == "lco25m")
    ...              + rng.normal(0, 0.01, n))
    >>> X["FE_H_ERR"] = 0.01
    >>> cal = NuisanceCalibrator(orbit_features=["L_z"], orbit_degree=1,
    ...                          nuisance_columns=["LOGG", "TELESCOPE"],
    ...                          nuisance_reference=[2.2, "apo25m"], nuisance_degree=1,
    ...                          training_filter=None, errors=True)
    >>> calibrated = cal.set_output(transform="pandas").fit_transform(X)
    >>> calibrated.columns.tolist()
    ['FE_H_NEW', 'FE_H_NEW_ERR']
    >>> cal.coef_.loc["FE_H", ["(LOGG-2.2)", "TELESCOPE[lco25m]"]].round(2).tolist()
    [0.05, 0.03]
    >>> bool(np.abs(calibrated["FE_H_NEW"] - truth).max() < 0.05)
    True
    """

    _parameter_constraints = {
        "abundance_columns": [None, str, Integral, "array-like"],
        "error_columns": [None, callable, "array-like"],
        "weighted": ["boolean"],
        "orbit_features": [str, Integral, "array-like"],
        "orbit_basis": [StrOptions(set(_BASES))],
        "orbit_degree": [Interval(Integral, 0, None, closed="left")],
        "orbit_knots": [Interval(Integral, 2, None, closed="left"), "array-like", dict],
        "nuisance_columns": [str, Integral, "array-like"],
        "nuisance_reference": [None, Real, str, "array-like"],
        "nuisance_basis": [StrOptions(set(_BASES)), dict],
        "nuisance_degree": [Interval(Integral, 1, None, closed="left"), dict],
        "nuisance_knots": [Interval(Integral, 2, None, closed="left"), "array-like", dict],
        "nuisance_interactions": ["boolean"],
        "training_filter": [StrOptions({"paper"}), Mapping, callable, None],
        "covariance": [StrOptions({"sandwich", "chi2", "reported"})],
        "errors": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(self, abundance_columns=None, *, error_columns=None, weighted=True,
                 orbit_features=("J_R", "J_z", "L_z"), orbit_basis="polynomial", orbit_degree=2,
                 orbit_knots=_DEFAULT_KNOTS, nuisance_columns=("LOGG",),
                 nuisance_reference=(LOGG_REFERENCE,), nuisance_basis="polynomial",
                 nuisance_degree=_DEFAULT_DEGREE, nuisance_knots=_DEFAULT_KNOTS,
                 nuisance_interactions=False, training_filter="paper", covariance="sandwich",
                 errors=False, verbose=0):
        self.abundance_columns = abundance_columns
        self.error_columns = error_columns
        self.weighted = weighted
        self.orbit_features = orbit_features
        self.orbit_basis = orbit_basis
        self.orbit_degree = orbit_degree
        self.orbit_knots = orbit_knots
        self.nuisance_columns = nuisance_columns
        self.nuisance_reference = nuisance_reference
        self.nuisance_basis = nuisance_basis
        self.nuisance_degree = nuisance_degree
        self.nuisance_knots = nuisance_knots
        self.nuisance_interactions = nuisance_interactions
        self.training_filter = training_filter
        self.covariance = covariance
        self.errors = errors
        self.verbose = verbose

    # ------------------------------------------------------------------ input handling
    def _validate_X(self, X, reset):
        X = estimator_input(X, type(self).__name__)
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=reset, skip_check_array=True)
            if len(X) == 0:
                raise ValueError("Found array with 0 sample(s) (shape=(0, "
                                 f"{X.shape[1]})) while a minimum of 1 is required.")
            return X, np.asarray(X.columns, dtype=object)
        X = validate_data(self, X, reset=reset, dtype="numeric", ensure_all_finite=False)
        return X, None

    def _resolve_columns(self, X, feature_names):
        n_features = X.shape[1]
        spec = _col.as_list(self.abundance_columns, "abundance_columns")
        if self.abundance_columns is None:
            spec = _col.default_abundances(feature_names)
        if not spec:
            raise ValueError("abundance_columns is empty")
        abund = _col.positions(spec, feature_names, n_features, "abundance_columns")
        orbit = _col.positions(_col.as_list(self.orbit_features, "orbit_features"), feature_names,
                               n_features, "orbit_features")
        nuis = _col.positions(_col.as_list(self.nuisance_columns, "nuisance_columns"),
                              feature_names, n_features, "nuisance_columns")
        if not nuis:
            raise ValueError("nuisance_columns is empty: there would be nothing to calibrate")
        shared = set(abund) & set(orbit + nuis)
        if shared:
            raise ValueError(f"columns {_col.display_names(sorted(shared), feature_names)} are "
                             "used both as abundances and as orbit features or nuisance parameters")
        repeated = [name for name, count in Counter(
            _col.display_names(abund + orbit + nuis, feature_names)).items() if count > 1]
        if repeated:
            raise ValueError(f"columns {repeated} are given more than once among the abundance, "
                             "orbit and nuisance columns")
        err = err_names = None
        if self.weighted or self.errors:
            err_spec = _col.error_specification(self.error_columns, spec, feature_names)
            err = _col.positions(err_spec, feature_names, n_features, "error_columns")
            err_names = _col.display_names(err, feature_names)
        kinds = [_col.CATEGORICAL if _col.is_categorical(X, p) else _col.CONTINUOUS for p in nuis]
        return _col.Columns(
            abund, _col.display_names(abund, feature_names), err, err_names, orbit,
            _col.display_names(orbit, feature_names), nuis, _col.display_names(nuis, feature_names),
            kinds, _col.references(self.nuisance_reference, len(nuis)))

    def _training_rows(self, X, feature_names):
        tf = self.training_filter
        n = X.shape[0]
        if tf is None:
            return np.ones(n, dtype=bool)
        if callable(tf) and not isinstance(tf, Mapping):
            mask = np.asarray(tf(X))
            if mask.shape != (n,) or mask.dtype != bool:
                raise ValueError(f"training_filter returned an array of shape {mask.shape} and dtype "
                                 f"{mask.dtype}; expected booleans of shape ({n},)")
            return mask
        bounds = PAPER_TRAINING_BOUNDS if isinstance(tf, str) else tf
        keys = list(bounds)
        pos = _col.positions(keys, feature_names, X.shape[1], "training_filter")
        vals = _col.values(X, pos, _col.display_names(pos, feature_names))
        mask = np.ones(n, dtype=bool)
        for j, key in enumerate(keys):
            try:
                low, high = bounds[key]
            except (TypeError, ValueError):
                raise ValueError(f"training_filter[{key!r}] must be a pair (low, high), got "
                                 f"{bounds[key]!r}") from None
            mask &= within_bounds(vals[:, j], low, high)
        return mask

    def _continuous(self, X, cols):
        """``V``: the orbit features, then the continuous nuisances (raw values)."""
        pos = cols.orbit + [cols.nuisance[j] for j in cols.continuous]
        names = cols.orbit_names + [cols.nuisance_names[j] for j in cols.continuous]
        return _col.values(X, pos, names)

    def _codes(self, X, cols, warn=True):
        """Codes of the categorical nuisances (fitted categories); warns about unseen ones."""
        codes = np.empty((X.shape[0], len(cols.categorical)), dtype=int)
        for c, j in enumerate(cols.categorical):
            name = cols.nuisance_names[j]
            raw = _col.column_series(X, cols.nuisance[j])
            codes[:, c] = _categorical.encode(raw, self.categories_[name])
            unseen = codes[:, c] == _categorical.UNSEEN
            if warn and unseen.any():
                found = sorted(set(_categorical.categories_of(np.asarray(raw, dtype=object)[unseen])))
                warnings.warn(
                    f"nuisance column {name!r}: {int(unseen.sum())} row(s) take categories the "
                    f"calibrator was not fitted on ({found[:10]}; fitted: "
                    f"{self.categories_[name]}); their calibrated abundances are NaN",
                    UnseenCategoryWarning, stacklevel=3)
        return codes

    def _abundances_and_weights(self, X, cols, check):
        """Abundances (n, K) and weights (n, K): 1/sigma^2 (or 1), zero where the value is NaN."""
        A = _col.values(X, cols.abundance, cols.abundance_names)
        finite = np.isfinite(A)
        if not self.weighted:
            return A, finite.astype(float)
        E = _col.values(X, cols.error, cols.error_names)
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

    def _nuisance_specs(self, cols, training):
        """Resolve basis, degree, knots, reference and categories of every nuisance.

        ``training``: the training rows' statistics (:class:`._sufficient.TrainingStatistics`).
        """
        names = cols.nuisance_names
        cont = [names[j] for j in cols.continuous]
        basis = _col.per_column(self.nuisance_basis, cont, "nuisance_basis")
        degree = _col.per_column(self.nuisance_degree, cont, "nuisance_degree")
        knots = _col.per_column(self.nuisance_knots, cont, "nuisance_knots")
        specs, n_orbit = [], len(cols.orbit)
        for j, name in enumerate(names):
            ref = cols.nuisance_reference[j]
            if cols.nuisance_kinds[j] == _col.CATEGORICAL:
                categories, counts = training.categories(cols.categorical.index(j))
                if ref is None:
                    ref = max(categories, key=lambda c: counts[c])
                elif str(ref) not in categories:
                    raise ValueError(f"nuisance_reference {ref!r} of the categorical nuisance "
                                     f"{name!r} is not one of its categories among the training "
                                     f"stars: {categories[:20]}")
                specs.append(NuisanceSpec(name, _col.CATEGORICAL, reference=str(ref),
                                          categories=categories))
                continue
            c = cont.index(name)
            b = _BASES[0] if basis[c] is None else basis[c]
            d = _DEFAULT_DEGREE if degree[c] is None else degree[c]
            k = _DEFAULT_KNOTS if knots[c] is None else knots[c]
            if b not in _BASES:
                raise ValueError(f"nuisance_basis[{name!r}] must be one of {_BASES}, got {b!r}")
            if not isinstance(d, Integral) or isinstance(d, bool) or d < 1:
                raise ValueError(f"nuisance_degree[{name!r}] must be an integer >= 1, got {d!r}")
            if isinstance(ref, str):
                raise ValueError(f"nuisance_reference {ref!r} of the continuous nuisance {name!r} "
                                 "must be a number (or None)")
            ref = (training.median(n_orbit + cols.continuous.index(j)) if ref is None
                   else float(ref))
            specs.append(NuisanceSpec(name, _col.CONTINUOUS, b, int(d), _check_knots(k, name),
                                      ref))
        spline_arrays = [s.name for s in specs
                         if s.basis == "spline" and np.ndim(s.knots) > 0]
        if np.ndim(self.nuisance_knots) > 0 and not isinstance(self.nuisance_knots, dict) \
                and len(spline_arrays) > 1:
            raise ValueError("nuisance_knots gives one set of knot positions but several "
                             f"nuisances use splines ({spline_arrays}); pass a dict column -> knots")
        poly = [s for s in specs if s.basis == "polynomial"]
        if self.nuisance_interactions and (len(poly) != len(cols.continuous)
                                           or len({s.degree for s in poly}) > 1):
            raise ValueError("nuisance_interactions=True needs every continuous nuisance in the "
                             "polynomial basis with one nuisance_degree (a complete polynomial)")
        return specs

    def _orbit_knots(self, cols):
        if self.orbit_basis == "spline" and self.orbit_degree < 1:
            raise ValueError("orbit_basis='spline' needs orbit_degree >= 1 (the spline degree)")
        knots = _col.per_column(self.orbit_knots, cols.orbit_names, "orbit_knots")
        if np.ndim(self.orbit_knots) > 0 and not isinstance(self.orbit_knots, dict) \
                and len(cols.orbit) > 1 and self.orbit_basis == "spline":
            raise ValueError("orbit_knots gives one set of knot positions for several orbit "
                             "features; pass a dict feature -> knots")
        return [_check_knots(_DEFAULT_KNOTS if k is None else k, name)
                for k, name in zip(knots, cols.orbit_names)]

    # ------------------------------------------------------------------ fit / transform
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the orbit + nuisance model of every abundance on the training stars.

        Parameters
        ----------
        X : DataFrame or array of shape (n_stars, n_columns)
            Orbit features (kpc km/s), nuisance parameters (LOGG in dex, TEFF in K, categories,
            ...), abundances (dex) and their uncertainties (dex), plus any column the training
            filter uses (e.g. ``x``, kpc).
        y : None
            Ignored.

        Returns
        -------
        self : NuisanceCalibrator
            The fitted calibrator (``coef_``, ``coef_cov_``, ``design_names_``, ...).

        Raises
        ------
        KeyError
            A needed column is missing (named).
        ValueError
            An abundance with no valid training star or fewer stars than design terms, a
            non-positive or NaN uncertainty where the abundance is finite, an infinite value, a
            reference category absent from the training stars, or a rank-deficient design (naming
            the abundance and the collinear design columns).
        """
        t_start = time.perf_counter()
        X, feature_names = self._validate_X(X, reset=True)
        return _sufficient.fit_in_passes(
            self, X, feature_names, lambda cols: _sufficient.InMemoryRunner(self, cols, X),
            t_start)

    def _store_fit(self, cols, specs, design, res, meat, n_train):
        """Fitted attributes from the solution in the scaled basis (``res``: coef, gram_inv, chi2,
        n_obs) and the sandwich meat (or None), converted to physical units."""
        n_terms = design.n_terms
        chi2_red = res.chi2 / (res.n_obs - n_terms)
        cov_s = self._scaled_covariance(res, meat, n_terms)

        T = design.to_physical()
        coef = res.coef @ T.T
        cov = T @ cov_s @ T.T
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))

        index = pd.Index(list(cols.abundance_names), name="abundance")
        self.abundance_columns_ = list(cols.abundance_names)
        self.error_columns_ = list(cols.error_names) if cols.error_names is not None else None
        self.design_names_ = list(design.names)
        self.nuisance_terms_ = [n for n, nuis in zip(design.names, design.is_nuisance) if nuis]
        self.nuisance_groups_ = {g: [n for n, gg in zip(design.names, design.groups) if gg == g]
                                 for g in dict.fromkeys(design.groups) if g != "orbit"}
        self.nuisance_kinds_ = dict(zip(cols.nuisance_names, cols.nuisance_kinds))
        self.nuisance_reference_ = {s.name: s.reference for s in specs}
        self.knots_ = {cols.orbit_names[s.variable] if s.variable < len(cols.orbit)
                       else cols.nuisance_names[cols.continuous[s.variable - len(cols.orbit)]]:
                       s.knots for s in design.splines}
        self.coef_ = pd.DataFrame(coef, index=index, columns=self.design_names_)
        self.coef_cov_ = cov
        self.coef_stderr_ = pd.DataFrame(np.sqrt(np.einsum("kii->ki", cov)), index=index,
                                         columns=self.design_names_)
        self.chi2_reduced_ = pd.Series(chi2_red, index=index, name="chi2_reduced")
        self.n_stars_ = pd.Series(res.n_obs.astype(int), index=index, name="n_stars")
        self.n_training_stars_ = n_train
        self._cols = cols
        self._design = design


    def _report_fit(self, seconds):
        """One line per fit: sizes, time and the most significant nuisance terms."""
        z = (self.coef_[self.nuisance_terms_] / self.coef_stderr_[self.nuisance_terms_]).abs()
        best = z.stack().nlargest(3)
        top = ", ".join(f"{a} {term} ({value:.0f} sigma)" for (a, term), value in best.items())
        print(f"NuisanceCalibrator: {len(self.abundance_columns_)} abundances fitted on "
              f"{self.n_training_stars_} training stars in {seconds:.2f} s "
              f"({len(self.design_names_)} terms); strongest nuisance terms: {top}", flush=True)

    def _scaled_covariance(self, res, meat, n_terms):
        """Coefficient covariance in the scaled basis, as ``covariance`` says."""
        dof = res.n_obs - n_terms
        if self.covariance == "chi2":
            return res.gram_inv * (res.chi2 / dof)[:, None, None]
        if self.covariance == "sandwich":
            return res.gram_inv @ meat @ res.gram_inv * (res.n_obs / dof)[:, None, None]
        return res.gram_inv

    def _parts(self, X, part, warn=True):
        """Design columns of ``part`` on X and their coefficients (K, D_part), physical units."""
        cols = self._cols
        Y = self._design.evaluate(self._continuous(X, cols), self._codes(X, cols, warn=warn),
                                  part=part)
        mask = {"all": np.ones(len(self.design_names_), bool), "orbit": ~self._design.is_nuisance,
                "nuisance": self._design.is_nuisance}[part]
        return Y, self.coef_.to_numpy()[:, mask], mask

    def _nuisance_part(self, X, warn=True):
        """``Y_nuis theta_nuis`` (n_stars, n_abundances), physical units, from ``coef_``."""
        Y, coef, _ = self._parts(X, "nuisance", warn)
        return Y @ coef.T

    def _orbit_part(self, X):
        """``Y_orbit theta_orbit`` (n_stars, n_abundances), physical units, from ``coef_``."""
        Y, coef, _ = self._parts(X, "orbit", warn=False)
        return Y @ coef.T

    def transform(self, X):
        """Subtract the fitted nuisance part from every abundance (paper equation 4).

        Parameters
        ----------
        X : DataFrame or array of shape (n_stars, n_columns)
            Same columns as in ``fit``; the nuisance, abundance (and, with ``errors``, uncertainty)
            columns are read.

        Returns
        -------
        calibrated : ndarray or DataFrame of shape (n_stars, n_abundances) or (n_stars, 2 K)
            Calibrated abundances (dex), columns ``<X>_NEW`` (see ``get_feature_names_out``), then
            with ``errors`` their uncertainties ``<X>_NEW_ERR`` (dex), one row per input row in the
            same order; NaN where the abundance or a nuisance value is missing or a category is
            unseen.
        """
        check_is_fitted(self, "coef_")
        X, _ = self._validate_X(X, reset=False)
        cols = self._cols
        A = _col.values(X, cols.abundance, cols.abundance_names)
        Y, coef, mask = self._parts(X, "nuisance")
        out = A - Y @ coef.T
        if not self.errors:
            return np.ascontiguousarray(out)
        E = _col.values(X, cols.error, cols.error_names)
        cov = self.coef_cov_[:, mask][:, :, mask]
        var = _wls.prediction_variance(np.ascontiguousarray(Y.T), cov).T
        err = np.sqrt(E**2 + np.maximum(var, 0.0))
        err[np.isnan(out)] = np.nan
        return np.hstack([out, err])

    def sample_transform(self, X, *, random_state=None):
        """One Monte Carlo draw of the calibrated abundances under the calibration's uncertainty.

        The nuisance coefficients of every abundance are drawn from ``N(coef_, coef_cov_)``
        (independently between abundances) and subtracted as in :meth:`transform`. Many draws
        propagate the calibration model's own uncertainty into anything computed from the
        calibrated abundances, e.g. radial profiles and gradients
        (:func:`~sklearn_selfcal.gradients.radial_abundance_profile`'s ``calibration_draws``):
        unlike ``<X>_NEW_ERR`` (per star), the draws keep the correlation between stars, which
        share the coefficients.

        Parameters
        ----------
        X : DataFrame or array
            As for :meth:`transform`.
        random_state : int, numpy Generator or RandomState, or None
            Seed or generator of the coefficient draw; ``None`` draws fresh entropy, so two calls
            give different draws.

        Returns
        -------
        calibrated : ndarray of shape (n_stars, n_abundances)
            Calibrated abundances (dex), columns in the order of ``abundance_columns_``.
        """
        check_is_fitted(self, "coef_")
        X, _ = self._validate_X(X, reset=False)
        cols = self._cols
        A = _col.values(X, cols.abundance, cols.abundance_names)
        Y, coef, mask = self._parts(X, "nuisance")
        draws = gaussian_draws(coef, self.coef_cov_[:, mask][:, :, mask],
                               as_generator(random_state))
        return np.ascontiguousarray(A - Y @ draws.T)

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns: ``<abundance>_NEW`` (then ``<abundance>_NEW_ERR``).

        Parameters
        ----------
        input_features : array-like of str, optional
            Input column names; must match ``feature_names_in_`` if that is set.

        Returns
        -------
        names : ndarray of str
            ``<abundance>_NEW`` for every abundance column, in the order of
            ``abundance_columns_``, then (with ``errors``) ``<abundance>_NEW_ERR``.
        """
        check_is_fitted(self, "coef_")
        names = _check_feature_names_in(self, input_features)
        new = [calibrated_name(names[p]) for p in self._cols.abundance]
        if self.errors:
            new += [abundance_error_column(name) for name in new]
        return np.asarray(new, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.requires_fit = True
        return tags

    # ------------------------------------------------------------------ model selection
    def _held_out_chi2(self, X):
        """Weighted chi-square of the full model and the number of values, per abundance."""
        check_is_fitted(self, "coef_")
        X, feature_names = self._validate_X(X, reset=False)
        cols = self._cols
        A, W = self._abundances_and_weights(X, cols, check=False)
        Y, coef, _ = self._parts(X, "all")
        rows = self._training_rows(X, feature_names) & np.isfinite(Y).all(axis=1)
        W[~rows] = 0.0
        resid = np.where(W > 0, A - np.where(rows[:, None], Y, 0.0) @ coef.T, 0.0)
        n = (W > 0).sum(axis=0)
        if n.sum() == 0:
            raise ValueError("no star of X passes the training filter with finite orbit features, "
                             "nuisance values and a valid abundance: nothing to score")
        return (W * resid**2).sum(axis=0), n

    def score(self, X, y=None):
        """Held-out fit quality: minus the mean weighted chi-square per star and abundance.

        The full model (orbit + nuisance part) is evaluated on the rows of ``X`` that pass the
        training filter with finite orbit features and nuisance values, for every abundance value
        with a valid uncertainty; the weights are those of the fit (``1 / sigma^2``, or 1 when
        unweighted). Larger is better, so ``GridSearchCV`` uses it as it is.

        Parameters
        ----------
        X : DataFrame or array
            Same columns as in ``fit``; orbit features are needed.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Minus the weighted chi-square summed over stars and abundances, divided by the number
            of values scored (dimensionless; 0 is a perfect fit).
        """
        chi2, n = self._held_out_chi2(X)
        return -float(chi2.sum() / n.sum())

    def abundance_scores(self, X):
        """The held-out fit quality of every abundance (as :meth:`score`, per abundance).

        Parameters
        ----------
        X : DataFrame or array
            Same columns as in ``fit``; orbit features are needed.

        Returns
        -------
        scores : Series
            Minus the mean weighted chi-square per star, index ``abundance_columns_`` (NaN for an
            abundance without a valid value in ``X``).
        """
        chi2, n = self._held_out_chi2(X)
        with np.errstate(invalid="ignore", divide="ignore"):
            return pd.Series(-chi2 / n, index=pd.Index(self.abundance_columns_,
                                                       name="abundance"), name="score")

    # ------------------------------------------------------------------ diagnostics
    def nuisance_trend(self, X, *, columns=None, n_bins=4, by=None, n_by_bins=4,
                       training_only=True):
        """Mean abundance residual at fixed orbit in bins of every nuisance, before and after.

        For every abundance, the fitted orbit part is removed from the abundances before
        calibration (``input - orbit part``: the trend the fit found, the paper's Figures 2-4
        upper rows) and after (``calibrated - orbit part``: what is left), and the weighted mean
        is taken in equal-count bins of a continuous column or in every category of a categorical
        one. Any column of ``X`` can be examined, including nuisances the model does not have
        (e.g. the residual trend with Teff or the telescope after a log g-only calibration).

        Parameters
        ----------
        X : DataFrame or array
            Same columns as in ``fit``; orbit features are needed here.
        columns : str, int or sequence, optional
            Columns to bin in (default: the model's nuisance columns).  Categorical when the
            column is categorical in ``X`` (see ``nuisance_columns``).
        n_bins : int, default 4
            Number of equal-count bins of a continuous column (paper: four bins in log g).
        by : str or int, optional
            A column of ``X`` (e.g. ``"R"`` in kpc or ``"L_z"``) to split the stars further into
            ``n_by_bins`` equal-count bins, so that a nuisance dependence that changes across the
            Galaxy shows up.
        n_by_bins : int, default 4
            Number of bins of ``by``.
        training_only : bool, default True
            Use only the rows passing the training filter (the stars the fit saw).  ``False`` uses
            every row with finite orbit features and nuisance values.  Held-out stars are the most
            stringent test: on the training stars the "after" means of a nuisance *in* the model
            are small by construction (least-squares residuals are orthogonal to its terms).

        Returns
        -------
        trend : DataFrame
            One row per abundance, nuisance column, stage (``"before"``, ``"after"``), [``by``
            bin] and bin, with columns ``abundance, nuisance, kind, stage, [by_bin, by_low,
            by_high,] bin, label`` (the category, or the bin's range), ``low, high, median`` (the
            bin's range and median in the column's units; NaN for a category), ``n_stars``,
            ``mean_residual`` (dex; weighted by ``1/sigma^2`` as in the fit), ``stderr`` (dex;
            from the scatter of the residuals in the bin, so it includes any intrinsic scatter)
            and ``pull = mean_residual / stderr``.

        See Also
        --------
        trend_summary : per abundance and column, the size and significance of what is left.
        """
        check_is_fitted(self, "coef_")
        X, feature_names = self._validate_X(X, reset=False)
        cols = self._cols
        pos = (cols.nuisance if columns is None else
               _col.positions(_col.as_list(columns, "columns"), feature_names, X.shape[1],
                              "columns"))
        names = _col.display_names(pos, feature_names)
        A, weights = self._abundances_and_weights(X, cols, check=False)
        Yo, coef_o, _ = self._parts(X, "orbit", warn=False)
        orbit_part = Yo @ coef_o.T
        nuis_part = self._nuisance_part(X, warn=False)
        rows = np.isfinite(orbit_part).all(axis=1) & np.isfinite(nuis_part).all(axis=1)
        if training_only:
            rows &= self._training_rows(X, feature_names)
        if not rows.any():
            raise ValueError("no star has finite orbit features and nuisance values to bin")
        binned = []
        for p, name in zip(pos, names):
            if _col.is_categorical(X, p) or self.nuisance_kinds_.get(name) == _col.CATEGORICAL:
                binned.append((name, "categorical", _col.column_series(X, p)))
            else:
                binned.append((name, "continuous", _col.values(X, [p], [name])[:, 0]))
        by_values = by_name = None
        if by is not None:
            (pb,) = _col.positions([by], feature_names, X.shape[1], "by")
            by_name = _col.display_names([pb], feature_names)[0]
            by_values = _col.values(X, [pb], [by_name])[:, 0]
        return _trends.binned_residuals(
            cols.abundance_names, {"before": A - orbit_part, "after": A - nuis_part - orbit_part},
            np.where(rows[:, None], weights, 0.0), binned, n_bins=n_bins, by=(by_name, by_values),
            n_by_bins=n_by_bins)


def _check_knots(knots, name):
    """An int >= 2 or an array of knot positions (validated), for the spline of ``name``."""
    if np.ndim(knots) == 0:
        if not isinstance(knots, Integral) or isinstance(knots, bool) or knots < 2:
            raise ValueError(f"the number of knots of {name!r} must be an integer >= 2, got "
                             f"{knots!r}")
        return int(knots)
    return check_knots(knots, what=f"knots of {name!r}")
