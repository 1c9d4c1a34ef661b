"""``NuisanceCalibrator``: validation and dispatch (columns: :mod:`._inputs`, design:
:mod:`._design`, the fit from sums over the rows, in memory or over partitions: :mod:`._sufficient`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from .._kernels import wls as _wls
from .._kernels.sampling import as_generator, gaussian_draws
from .._paper import LOGG_REFERENCE, abundance_error_column, calibrated_name
from .._validation import estimator_input
from ..exceptions import UnseenCategoryWarning
from . import _inputs, _sufficient, _trends
from ._design import BASES, DEFAULT_DEGREE, DEFAULT_KNOTS

__all__ = ["NuisanceCalibrator", "UnseenCategoryWarning"]


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
    min_stars_per_coefficient : int or None, default None
        None: an abundance that cannot be fitted (no value, no more training stars than design
        terms, a rank-deficient design) is an error. An int ``m``: such abundances, and those with
        fewer than ``m`` training stars per coefficient, are left uncalibrated (no ``<X>_NEW``
        column) and recorded with the reason in ``skipped_``; the others are fitted as if alone.
    verbose : int, default 0
        When truthy, report each fit (training stars, abundances, time, the most significant
        nuisance terms; a fit takes about a second for 10^5 stars: no progress bar).

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
    skipped_ : dict of str to str
        Abundances left uncalibrated, with why (``min_stars_per_coefficient``); empty otherwise.
    n_features_in_ : int
        Number of columns of ``X`` seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names of ``X`` seen in ``fit`` (DataFrame input only).

    See Also
    --------
    sklearn_selfcal.selection.disk_sample_mask : the paper's disk-sample cuts, applied before.
    sklearn_selfcal.calibration.trend_summary : which abundances keep a nuisance trend.
    sklearn_selfcal.calibration.chosen_models : the model a grid search chose, per abundance.
    sklearn_selfcal.calibration.CALIBRATION_PRESETS : named models (the paper's, SDSS-V DR19's).

    Notes
    -----
    Missing data: an abundance that is NaN for a star is fitted without that star (its uncertainty
    may then be anything); :meth:`transform` returns NaN where the abundance is NaN, where any
    nuisance value is missing, and where a categorical nuisance takes a category the fit never saw
    (with an :class:`UnseenCategoryWarning`: no offset is ever guessed).  Orbit features are
    needed only to fit and score: stars whose actions failed (NaN) are calibrated too.  Rows are
    never dropped or reordered.

    Model selection: :meth:`score` is the held-out fit quality, so scikit-learn's searches choose
    the model, e.g. ``GridSearchCV(NuisanceCalibrator(), {"nuisance_degree": [1, 2, 3, 4]})``
    (the training filter applies inside every fold); per abundance with
    :func:`~sklearn_selfcal.calibration.abundance_scorer` and ``chosen_models``.

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
        "orbit_basis": [StrOptions(set(BASES))],
        "orbit_degree": [Interval(Integral, 0, None, closed="left")],
        "orbit_knots": [Interval(Integral, 2, None, closed="left"), "array-like", dict],
        "nuisance_columns": [str, Integral, "array-like"],
        "nuisance_reference": [None, Real, str, "array-like"],
        "nuisance_basis": [StrOptions(set(BASES)), dict],
        "nuisance_degree": [Interval(Integral, 1, None, closed="left"), dict],
        "nuisance_knots": [Interval(Integral, 2, None, closed="left"), "array-like", dict],
        "nuisance_interactions": ["boolean"],
        "training_filter": [StrOptions({"paper"}), Mapping, callable, None],
        "covariance": [StrOptions({"sandwich", "chi2", "reported"})],
        "errors": ["boolean"],
        "min_stars_per_coefficient": [Interval(Integral, 1, None, closed="left"), None],
        "verbose": ["verbose"],
    }

    def __init__(self, abundance_columns=None, *, error_columns=None, weighted=True,
                 orbit_features=("J_R", "J_z", "L_z"), orbit_basis="polynomial", orbit_degree=2,
                 orbit_knots=DEFAULT_KNOTS, nuisance_columns=("LOGG",),
                 nuisance_reference=(LOGG_REFERENCE,), nuisance_basis="polynomial",
                 nuisance_degree=DEFAULT_DEGREE, nuisance_knots=DEFAULT_KNOTS,
                 nuisance_interactions=False, training_filter="paper", covariance="sandwich",
                 errors=False, min_stars_per_coefficient=None, verbose=0):
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
        self.min_stars_per_coefficient = min_stars_per_coefficient
        self.verbose = verbose

    def _validate_X(self, X, reset):
        X = estimator_input(X, type(self).__name__)
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=reset, skip_check_array=True)
            if len(X) == 0:
                raise ValueError("Found array with 0 sample(s) (shape=(0, "
                                 f"{X.shape[1]})) while a minimum of 1 is required.")
            return X, np.asarray(X.columns, dtype=object)
        return validate_data(self, X, reset=reset, dtype="numeric", ensure_all_finite=False), None

    # ------------------------------------------------------------------ fit
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
        def run(X, prepare):  # one partition, prepared once for every pass
            rows = prepare(X)
            return lambda func, combine: combine([func(rows)])

        return self._fit_passes(X, run)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_partitioned(self, head, map_reduce):
        """Fit on rows held in partitions (out of core): the same fit as :meth:`fit`, from sums.

        Every pass of the fit over the rows is a function of one partition whose results are
        combined by an associative reduction, so the partitions may live anywhere
        (``sklearn_selfcal.scaleout`` runs them on a Dask cluster).

        Parameters
        ----------
        head : DataFrame
            The first rows (at least one) with every column and the dtypes of the whole: the
            columns' roles and kinds (continuous or categorical) are resolved on it.
        map_reduce : callable
            ``map_reduce(func, combine)`` returns ``combine([func(part) for part in
            partitions])`` over the partitions (DataFrames with the columns of ``head``);
            ``combine`` is associative, so results may be combined in any grouping (a tree).
            A callable ``training_filter`` is applied to every partition on its own.

        Returns
        -------
        self : NuisanceCalibrator
            The fitted calibrator, as :meth:`fit` on the concatenated partitions (to rounding).
        """
        return self._fit_passes(head, lambda head, prepare: lambda func, combine: map_reduce(
            lambda part: func(prepare(part)), combine))

    def _fit_passes(self, head, make_run):
        """Validate ``head``, resolve the columns, solve by the passes of ``make_run(head,
        prepare)`` (``run(func, combine)`` over the prepared partitions) and store the fit."""
        t_start = time.perf_counter()
        head, feature_names = self._validate_X(head, reset=True)
        params = self.get_params(deep=False)
        cols = _inputs.resolve_columns(head, feature_names, params)
        self.skipped_ = {}
        while True:  # abundances skipped (too few stars): the others fitted as if alone
            prepare = functools.partial(_inputs.prepare_rows, cols=cols, weighted=self.weighted,
                                        training_filter=self.training_filter)
            fit = _sufficient.fit_passes(make_run(head, prepare), cols, params)
            if "skipped" not in fit:
                break
            self.skipped_.update(fit.skipped)
            kept = [k for k, name in enumerate(cols.abundance_names) if name not in fit.skipped]
            cols = _inputs.subset_abundances(cols, kept)
            if not kept:  # nothing to calibrate: transform adds no column
                vars(self).update(_sufficient.fitted_attributes(None, cols))
                self._cols, self._design = cols, None
                return self
        vars(self).update(_sufficient.fitted_attributes(fit, cols))
        self._cols, self._design = cols, fit.design
        if self.verbose:
            z = (self.coef_[self.nuisance_terms_] / self.coef_stderr_[self.nuisance_terms_]).abs()
            top = ", ".join(f"{a} {term} ({value:.0f} sigma)"
                            for (a, term), value in z.stack().nlargest(3).items())
            print(f"NuisanceCalibrator: {len(self.abundance_columns_)} abundances fitted on "
                  f"{self.n_training_stars_} training stars in {time.perf_counter() - t_start:.2f}"
                  f" s ({fit.design.n_terms} terms); strongest nuisance terms: {top}", flush=True)
        return self

    # ------------------------------------------------------------------ transform
    def _parts(self, X, part, warn=True):
        """Design columns of ``part`` on X and their coefficients (K, D_part), physical units."""
        cols = self._cols
        Y = self._design.evaluate(_inputs.continuous_values(X, cols),
                                  _inputs.category_codes(X, cols, self.categories_, warn=warn),
                                  part=part)
        mask = self._design.columns(part)
        return Y, self.coef_.to_numpy()[:, mask], mask

    def _nuisance_design(self, X):
        """``X`` validated, its abundances (n, K), the nuisance design, coefficients and mask."""
        check_is_fitted(self, "coef_")
        X, _ = self._validate_X(X, reset=False)
        A = _inputs.values(X, self._cols.abundance, self._cols.abundance_names)
        return (X, A) + self._parts(X, "nuisance")

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
        if not self.abundance_columns_:  # every abundance skipped (min_stars_per_coefficient)
            check_is_fitted(self, "coef_")
            return np.empty((self._validate_X(X, reset=False)[0].shape[0], 0))
        X, A, Y, coef, mask = self._nuisance_design(X)
        out = A - Y @ coef.T
        if not self.errors:
            return np.ascontiguousarray(out)
        E = _inputs.values(X, self._cols.error, self._cols.error_names, where=np.isfinite(out))
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
        X, A, Y, coef, mask = self._nuisance_design(X)
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
    def _residual_rows(self, X, training_only=True, warn=True):
        """Abundances, weights (0 outside the rows), full design and coefficients, and the rows
        with finite design (and passing the training filter) of the validated ``X``."""
        check_is_fitted(self, "coef_")
        X, feature_names = self._validate_X(X, reset=False)
        A, W = _inputs.abundances_and_weights(X, self._cols, weighted=self.weighted, check=False)
        Y, coef, _ = self._parts(X, "all", warn=warn)
        rows = np.isfinite(Y).all(axis=1)
        if training_only:
            rows &= _inputs.training_rows(X, feature_names, self.training_filter)
        return (X, feature_names, A, np.where(rows[:, None], W, 0.0),
                np.where(rows[:, None], Y, 0.0), coef)

    def _held_out_chi2(self, X):
        """Weighted chi-square of the full model and the number of values, per abundance."""
        _, _, A, W, Y, coef = self._residual_rows(X)
        n = (W > 0).sum(axis=0)
        if n.sum() == 0:
            raise ValueError("no star of X passes the training filter with finite orbit features, "
                             "nuisance values and a valid abundance: nothing to score")
        return (W * np.where(W > 0, A - Y @ coef.T, 0.0) ** 2).sum(axis=0), n

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
        X, feature_names, A, weights, Y, coef = self._residual_rows(X, training_only, warn=False)
        if not (weights > 0).any():
            raise ValueError("no star has finite orbit features, nuisance values and a valid "
                             "abundance to bin")
        nuis = self._design.is_nuisance
        orbit_part, nuis_part = Y[:, ~nuis] @ coef[:, ~nuis].T, Y[:, nuis] @ coef[:, nuis].T
        columns = self._cols.nuisance if columns is None else _inputs.as_list(columns, "columns")
        binned, by = _trends.columns_to_bin(X, feature_names, columns, by, self.nuisance_kinds_)
        return _trends.binned_residuals(
            self.abundance_columns_, {"before": A - orbit_part,
                                      "after": A - nuis_part - orbit_part},
            weights, binned, n_bins=n_bins, by=by, n_by_bins=n_by_bins)
