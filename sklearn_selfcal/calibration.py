"""Self-calibration of stellar abundances against nuisance parameters at fixed orbit (paper section 2).

Each abundance is modelled as a polynomial in the orbital actions plus a polynomial in the offsets of
the nuisance parameters (log g) from a reference value, fitted by weighted least squares; only the
nuisance part is subtracted (the paper's equations 1-4).  Fitting the orbit part at the same time is
what separates a genuine log g systematic from the dependence of abundance on Galactic position that
log g inherits through the survey's flux limit (the confounding the paper's method removes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import time

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from ._paper import LOGG_REFERENCE, abundance_error_column, calibrated_name
from ._kernels import design as _design
from ._kernels import wls as _wls
from ._kernels.binned import equal_count_bins
from ._validation import check_positive_column, require_columns
from ._paper import PAPER_TRAINING_BOUNDS
from .selection import within_bounds

__all__ = ["NuisanceCalibrator", "trend_summary"]

_COVARIANCES = ("sandwich", "chi2", "reported")


@dataclass
class _Columns:
    """Positions (in ``X``) and display names of the columns each role uses."""

    abundance: list
    abundance_names: list
    error: list | None
    error_names: list | None
    orbit: list
    orbit_names: list
    nuisance: list
    nuisance_names: list
    reference: np.ndarray


def _as_list(value, what):
    if value is None:
        return []
    if isinstance(value, (str, Integral)):
        return [value]
    if isinstance(value, Sequence) or isinstance(value, np.ndarray):
        return list(value)
    raise TypeError(f"{what} must be a column name, a position or a sequence of them, got {value!r}")


def _positions(spec, feature_names, n_features, what):
    """Column names or integer positions -> positions in X (errors name what is missing)."""
    names = [s for s in spec if isinstance(s, str)]
    for s in spec:
        if not isinstance(s, (str, Integral)):
            raise TypeError(f"{what}: columns must be names (str) or positions (int), got {s!r}")
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


def _display_names(positions, feature_names):
    if feature_names is None:
        return [f"x{p}" for p in positions]
    return [str(feature_names[p]) for p in positions]


def _default_abundances(feature_names):
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


def _values(X, positions, names):
    """Float columns of X at ``positions`` as an (n, len(positions)) array; NaN for missing.

    Stored column by column (the transpose is C-contiguous), the kernels' layout.
    """
    if isinstance(X, pd.DataFrame):
        out = np.empty((len(positions), len(X)))
        for j, (p, name) in enumerate(zip(positions, names)):
            try:
                out[j] = X.iloc[:, p].to_numpy(dtype=float, na_value=np.nan)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"column {name!r} must be numeric: {exc}") from None
    else:
        out = np.ascontiguousarray(np.asarray(X[:, positions], dtype=float).T)
    bad = np.isinf(out)
    if bad.any():
        j = int(np.flatnonzero(bad.any(axis=1))[0])
        rows = np.flatnonzero(bad[j])
        raise ValueError(f"column {names[j]!r} must not be infinite (NaN marks a missing value); "
                         f"{rows.size} value(s) are: rows {rows[:5].tolist()}")
    return out.T


class NuisanceCalibrator(TransformerMixin, BaseEstimator):
    """Remove the dependence of abundances on nuisance parameters (log g) at fixed orbit.

    For every abundance ``a`` (dex) the model is (paper equations 1-2)::

        a = P_orbit(J_R, J_z, L_z) + P_nuis(LOGG - 2.2) + noise

    with ``P_orbit`` a full polynomial of degree ``orbit_degree`` in the orbit features (with the
    constant) and ``P_nuis`` a polynomial of degree ``nuisance_degree`` in the nuisance offsets
    without constant, fitted by least squares weighted by ``1 / sigma^2`` from the abundance's
    uncertainty column.  :meth:`transform` subtracts only the nuisance part (paper equation 4), so
    calibrated abundances keep their dependence on the orbit and are put on the scale of a star at
    the reference nuisance values (log g = 2.2, just above the red clump).  With the defaults the
    design vector is the paper's ``[1, J_R, J_z, L_z, J_R^2, J_R J_z, J_R L_z, J_z^2, J_z L_z,
    L_z^2, lg, lg^2]`` with ``lg = LOGG - 2.2``.

    Parameters
    ----------
    abundance_columns : sequence of str or int, default None
        Abundance columns to calibrate (dex).  ``None``: ``FE_H``, every ``<X>_FE`` column and
        ``ALPHA_M`` present in ``X`` (needs a DataFrame).  Integers are column positions.
    error_columns : None, callable or sequence, default None
        Uncertainty (1 sigma, dex) of each abundance.  ``None``: APOGEE's naming, ``<X>_ERR``
        (``MG_FE`` -> ``MG_FE_ERR``); a callable maps an abundance column (name or position, as
        given) to its uncertainty column; a sequence lists them in the order of the abundances.
        Ignored when ``weighted=False``.
    weighted : bool, default True
        Weight each star by ``1 / sigma^2`` (the paper).  ``False`` fits unweighted and needs no
        uncertainty columns.
    orbit_features : sequence of str or int, default ("J_R", "J_z", "L_z")
        The orbit features the true abundances depend on (kpc km/s; the names ``ActionTransformer``
        writes).  An empty sequence fits the nuisance part alone (no control for the orbit).
    orbit_degree : int, default 2
        Total degree of the orbit polynomial (it always has its constant).
    nuisance_columns : str or sequence of str or int, default ("LOGG",)
        Nuisance parameters (e.g. ``("LOGG", "TEFF")``).
    nuisance_reference : float or sequence of float, default (2.2,)
        Reference value of each nuisance parameter (in its units; dex for LOGG): calibrated
        abundances are those of a star at these values.
    nuisance_degree : int, default 2
        Total degree of the nuisance polynomial in the offsets (all products up to this degree; no
        constant).  At least 1.
    training_filter : "paper", mapping, callable or None, default "paper"
        Stars used to fit the coefficients (``transform`` applies to every row).  ``"paper"``: the
        paper's section 3.2 filter ``0 < J_R < 400``, ``-5000 < L_z < 1000``, ``0 < J_z < 100``
        (kpc km/s) and ``x < 0`` (kpc), i.e. :data:`sklearn_selfcal.selection.PAPER_TRAINING_BOUNDS`;
        a mapping column -> (low, high) of strict bounds (``None`` = unbounded); a callable
        ``f(X) -> bool array``; ``None``: every star.  Stars whose orbit features or nuisance values
        are NaN never take part in the fit.
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
    verbose : int, default 0
        When truthy, report each fit (training stars, abundances, time, the abundances whose log g
        coefficients are the most significant). The fit itself is one pass over the data (well
        under a second for 10^5 stars), so there is no progress bar to show.

    Attributes
    ----------
    abundance_columns_ : list of str
        Calibrated abundance columns (positions in arrays are named ``x<i>``).
    error_columns_ : list of str or None
        Their uncertainty columns (``None`` when unweighted).
    design_names_ : list of str
        Names of the design columns, e.g. ``"1", "J_R", ..., "L_z^2", "(LOGG-2.2)",
        "(LOGG-2.2)^2"``.
    nuisance_terms_ : list of str
        The design columns that make up the nuisance part (those ``transform`` subtracts).
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
    trend_summary : which abundances keep a nuisance trend after calibration.

    Notes
    -----
    Missing data: an abundance that is NaN for a star is fitted without that star (its uncertainty
    may then be anything); :meth:`transform` returns NaN where the abundance is NaN and where any
    nuisance value is NaN (the correction is unknown there).  Orbit features are needed only to fit:
    stars whose actions failed (NaN) are calibrated too.  Rows are never dropped or reordered.

    Features are centred and scaled internally (the normal equations stay well conditioned); the
    fitted coefficients and their covariance are converted exactly to physical units.  The K normal
    matrices are formed with one matrix product for all abundances (see
    ``sklearn_selfcal._kernels.wls``).

    Examples
    --------
    >>> from sklearn_selfcal import NuisanceCalibrator
    >>> cal = NuisanceCalibrator().set_output(transform="pandas")  # doctest: +SKIP
    >>> # frame: APOGEE columns plus J_R, J_z, L_z and x from ActionTransformer
    >>> calibrated = cal.fit_transform(frame)  # doctest: +SKIP
    >>> calibrated.columns[:2].tolist()  # doctest: +SKIP
    ['FE_H_NEW', 'C_FE_NEW']
    """

    def __init__(self, abundance_columns=None, *, error_columns=None, weighted=True,
                 orbit_features=("J_R", "J_z", "L_z"), orbit_degree=2,
                 nuisance_columns=("LOGG",), nuisance_reference=(LOGG_REFERENCE,), nuisance_degree=2,
                 training_filter="paper", covariance="sandwich", verbose=0):
        self.abundance_columns = abundance_columns
        self.error_columns = error_columns
        self.weighted = weighted
        self.orbit_features = orbit_features
        self.orbit_degree = orbit_degree
        self.nuisance_columns = nuisance_columns
        self.nuisance_reference = nuisance_reference
        self.nuisance_degree = nuisance_degree
        self.training_filter = training_filter
        self.covariance = covariance
        self.verbose = verbose

    # ------------------------------------------------------------------ input handling
    def _check_params(self):
        for name, low in (("orbit_degree", 0), ("nuisance_degree", 1)):
            value = getattr(self, name)
            if not isinstance(value, Integral) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.covariance not in _COVARIANCES:
            raise ValueError(f"covariance must be one of {_COVARIANCES}, got {self.covariance!r}")
        tf = self.training_filter
        if not (tf is None or (isinstance(tf, str) and tf == "paper") or isinstance(tf, Mapping)
                or callable(tf)):
            raise ValueError("training_filter must be 'paper', None, a mapping column -> (low, high) "
                             f"or a callable returning a boolean mask, got {tf!r}")

    def _validate_X(self, X, reset):
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=reset, skip_check_array=True)
            if len(X) == 0:
                raise ValueError("Found array with 0 sample(s) (shape=(0, "
                                 f"{X.shape[1]})) while a minimum of 1 is required.")
            return X, np.asarray(X.columns, dtype=object)
        X = validate_data(self, X, reset=reset, dtype="numeric", ensure_all_finite=False)
        return X, None

    def _resolve_columns(self, feature_names, n_features):
        spec = _as_list(self.abundance_columns, "abundance_columns")
        if self.abundance_columns is None:
            spec = _default_abundances(feature_names)
        if not spec:
            raise ValueError("abundance_columns is empty")
        abund = _positions(spec, feature_names, n_features, "abundance_columns")
        abund_names = _display_names(abund, feature_names)
        orbit = _positions(_as_list(self.orbit_features, "orbit_features"), feature_names,
                           n_features, "orbit_features")
        nuis = _positions(_as_list(self.nuisance_columns, "nuisance_columns"), feature_names,
                          n_features, "nuisance_columns")
        if not nuis:
            raise ValueError("nuisance_columns is empty: there would be nothing to calibrate")
        shared = set(abund) & set(orbit + nuis)
        if shared:
            raise ValueError(f"columns {_display_names(sorted(shared), feature_names)} are used "
                             "both as abundances and as orbit features or nuisance parameters")
        err = err_names = None
        if self.weighted:
            if self.error_columns is None:
                if feature_names is None or not all(isinstance(s, str) for s in spec):
                    raise ValueError("error_columns=None derives '<X>_ERR' names from abundance "
                                     "names; with positional columns give error_columns explicitly")
                err_spec = [abundance_error_column(s) for s in spec]
            elif callable(self.error_columns):
                err_spec = [self.error_columns(s) for s in spec]
            else:
                err_spec = _as_list(self.error_columns, "error_columns")
                if len(err_spec) != len(spec):
                    raise ValueError(f"error_columns has {len(err_spec)} entries for {len(spec)} "
                                     "abundance columns")
            err = _positions(err_spec, feature_names, n_features, "error_columns")
            err_names = _display_names(err, feature_names)
        ref = self.nuisance_reference
        ref = [ref] if isinstance(ref, Real) else list(ref)
        if len(ref) != len(nuis) or not all(isinstance(r, Real) for r in ref):
            raise ValueError(f"nuisance_reference must give one number per nuisance column "
                             f"({len(nuis)}), got {self.nuisance_reference!r}")
        return _Columns(abund, abund_names, err, err_names, orbit,
                        _display_names(orbit, feature_names), nuis,
                        _display_names(nuis, feature_names), np.asarray(ref, dtype=float))

    def _training_rows(self, X, feature_names, n_features):
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
        pos = _positions(keys, feature_names, n_features, "training_filter")
        names = _display_names(pos, feature_names)
        values = _values(X, pos, names)
        mask = np.ones(n, dtype=bool)
        for j, key in enumerate(keys):
            try:
                low, high = bounds[key]
            except (TypeError, ValueError):
                raise ValueError(f"training_filter[{key!r}] must be a pair (low, high), got "
                                 f"{bounds[key]!r}") from None
            mask &= within_bounds(values[:, j], low, high)
        return mask

    def _nuisance_offsets(self, X, cols):
        return _values(X, cols.nuisance, cols.nuisance_names) - cols.reference

    # ------------------------------------------------------------------ fit / transform
    def fit(self, X, y=None):
        """Fit the orbit + nuisance model of every abundance on the training stars.

        Parameters
        ----------
        X : DataFrame or array of shape (n_stars, n_columns)
            Orbit features (kpc km/s), nuisance parameters (LOGG, dex), abundances (dex) and their
            uncertainties (dex), plus any column the training filter uses (e.g. ``x``, kpc).
        y : None
            Ignored.

        Returns
        -------
        self : NuisanceCalibrator

        Raises
        ------
        KeyError
            A needed column is missing (named).
        ValueError
            An abundance with no valid training star or fewer stars than design terms, a
            non-positive or NaN uncertainty where the abundance is finite, an infinite value, or a
            rank-deficient design (naming the abundance and the collinear design columns).
        """
        t_start = time.perf_counter()
        self._check_params()
        X, feature_names = self._validate_X(X, reset=True)
        n_features = X.shape[1]
        cols = self._resolve_columns(feature_names, n_features)
        A, weights = self._abundances_and_weights(X, cols, check=True)
        V = np.hstack([_values(X, cols.orbit, cols.orbit_names), self._nuisance_offsets(X, cols)])
        train = self._training_rows(X, feature_names, n_features) & np.isfinite(V).all(axis=1)
        n_train = int(train.sum())
        powers, design_names, n_orbit_terms = self._design_spec(cols)
        n_terms = powers.shape[0]

        W = weights.T[:, train]  # kernels' layout: one row per abundance, one column per star
        n_stars = (W > 0).sum(axis=1)
        few = [(name, int(n)) for name, n in zip(cols.abundance_names, n_stars) if n <= n_terms]
        if few:
            raise ValueError(
                f"too few training stars with a valid value to fit {n_terms} design terms "
                f"(need more than {n_terms}) for: {few}; X has n_samples={X.shape[0]} row(s), of "
                f"which {n_train} pass the training filter with finite orbit features and "
                "nuisance values"
            )

        # centred and scaled variables keep the normal equations well conditioned
        Vt = V[train]
        center = Vt.mean(axis=0)
        scale = Vt.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        design_t = _design.evaluate_monomials((Vt - center) / scale, powers).T
        At = A.T[:, train]
        products = _wls.pair_products(design_t)
        gram, rhs = _wls.normal_equations(design_t, At, W, products)
        deficient = _wls.rank_deficiencies(gram)
        if deficient:
            parts = [f"{cols.abundance_names[k]!r}: {[design_names[j] for j in js]}"
                     for k, js in deficient.items()]
            raise ValueError(
                "the design matrix is rank deficient (columns (nearly) collinear among the training "
                "stars) for " + "; ".join(parts) + ". Check that the orbit features and nuisance "
                "parameters vary among the training stars, or lower orbit_degree/nuisance_degree."
            )
        res = _wls.solve_from_normal(design_t, At, W, gram, rhs)
        chi2_red = res.chi2 / (res.n_obs - n_terms)
        cov_s = self._scaled_covariance(res, design_t, W, products, n_terms)

        T = _design.change_of_basis(powers, center, scale)
        coef = res.coef @ T.T
        cov = T @ cov_s @ T.T
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))

        self.abundance_columns_ = list(cols.abundance_names)
        self.error_columns_ = list(cols.error_names) if cols.error_names is not None else None
        self.design_names_ = design_names
        self.nuisance_terms_ = design_names[n_orbit_terms:]
        self.coef_ = pd.DataFrame(coef, index=pd.Index(self.abundance_columns_, name="abundance"),
                                  columns=design_names)
        self.coef_cov_ = cov
        self.coef_stderr_ = pd.DataFrame(np.sqrt(np.einsum("kii->ki", cov)), index=self.coef_.index,
                                         columns=design_names)
        self.chi2_reduced_ = pd.Series(chi2_red, index=self.coef_.index, name="chi2_reduced")
        self.n_stars_ = pd.Series(res.n_obs.astype(int), index=self.coef_.index, name="n_stars")
        self.n_training_stars_ = n_train
        self._cols = cols
        self._powers = powers
        self._n_orbit_terms = n_orbit_terms
        if self.verbose:
            self._report_fit(time.perf_counter() - t_start)
        return self

    def _report_fit(self, seconds):
        """One line per fit: sizes, time and the most significant nuisance terms."""
        z = (self.coef_[self.nuisance_terms_] / self.coef_stderr_[self.nuisance_terms_]).abs().max(axis=1)
        top = ", ".join(f"{name} ({value:.0f} sigma)" for name, value in z.nlargest(3).items())
        print(f"NuisanceCalibrator: {len(self.abundance_columns_)} abundances fitted on "
              f"{self.n_training_stars_} training stars in {seconds:.2f} s; strongest nuisance "
              f"terms: {top}", flush=True)

    def _abundances_and_weights(self, X, cols, check):
        """Abundances (n, K) and weights (n, K): 1/sigma^2 (or 1), zero where the value is NaN."""
        A = _values(X, cols.abundance, cols.abundance_names)
        finite = np.isfinite(A)
        if check:
            for k, name in enumerate(cols.abundance_names):
                if not finite[:, k].any():
                    raise ValueError(f"abundance column {name!r} has no finite value (all NaN)")
        if not self.weighted:
            return A, finite.astype(float)
        E = _values(X, cols.error, cols.error_names)
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

    def _design_spec(self, cols):
        """Exponents of the design terms, their names and the number of orbit terms (first)."""
        powers = _design.block_powers([
            _design.monomial_powers(len(cols.orbit), self.orbit_degree, include_bias=True),
            _design.monomial_powers(len(cols.nuisance), self.nuisance_degree, include_bias=False),
        ])
        var_names = cols.orbit_names + [
            name if ref == 0 else f"({name}-{ref:g})"
            for name, ref in zip(cols.nuisance_names, cols.reference)
        ]
        n_nuis_terms = int((powers[:, len(cols.orbit):].sum(axis=1) > 0).sum())
        return powers, _design.monomial_names(var_names, powers), powers.shape[0] - n_nuis_terms

    def _scaled_covariance(self, res, design_t, W, products, n_terms):
        """Coefficient covariance in the scaled basis, as ``covariance`` says."""
        dof = res.n_obs - n_terms
        if self.covariance == "chi2":
            return res.gram_inv * (res.chi2 / dof)[:, None, None]
        if self.covariance == "sandwich":
            meat = _wls.sandwich_meat(design_t, res.resid, W, products)
            return res.gram_inv @ meat @ res.gram_inv * (res.n_obs / dof)[:, None, None]
        return res.gram_inv

    def _nuisance_part(self, X):
        """``Y_nuis theta_nuis`` (n_stars, n_abundances), physical units, from ``coef_``."""
        cols = self._cols
        offsets = self._nuisance_offsets(X, cols)
        nuis_powers = self._powers[self._n_orbit_terms:, len(cols.orbit):]
        Yn = _design.evaluate_monomials(offsets, nuis_powers)
        return Yn @ self.coef_.to_numpy()[:, self._n_orbit_terms:].T

    def _orbit_part(self, X):
        """``Y_orbit theta_orbit`` (n_stars, n_abundances), physical units, from ``coef_``."""
        cols = self._cols
        orbit_powers = self._powers[:self._n_orbit_terms, :len(cols.orbit)]
        Yo = _design.evaluate_monomials(_values(X, cols.orbit, cols.orbit_names), orbit_powers)
        return Yo @ self.coef_.to_numpy()[:, :self._n_orbit_terms].T

    def transform(self, X):
        """Subtract the fitted nuisance part from every abundance (paper equation 4).

        Parameters
        ----------
        X : DataFrame or array of shape (n_stars, n_columns)
            Same columns as in ``fit``; only the nuisance and abundance columns are read.

        Returns
        -------
        calibrated : ndarray or DataFrame of shape (n_stars, n_abundances)
            Calibrated abundances (dex), columns ``<X>_NEW`` (see ``get_feature_names_out``), one
            row per input row in the same order; NaN where the abundance or a nuisance value is NaN.
        """
        check_is_fitted(self, "coef_")
        X, _ = self._validate_X(X, reset=False)
        cols = self._cols
        A = _values(X, cols.abundance, cols.abundance_names)
        return np.ascontiguousarray(A - self._nuisance_part(X))

    def get_feature_names_out(self, input_features=None):
        """Names of the calibrated columns: ``<abundance>_NEW`` (the paper's catalogue naming).

        Parameters
        ----------
        input_features : array-like of str, optional
            Input column names; must match ``feature_names_in_`` if that is set.

        Returns
        -------
        names : ndarray of str
        """
        check_is_fitted(self, "coef_")
        names = _check_feature_names_in(self, input_features)
        return np.asarray([calibrated_name(names[p]) for p in self._cols.abundance], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.requires_fit = True
        return tags

    # ------------------------------------------------------------------ diagnostics
    def nuisance_trend(self, X, *, n_bins=4, nuisance=None, by=None, n_by_bins=4,
                       training_only=True):
        """Weighted mean abundance residual at fixed orbit in equal-count nuisance bins.

        For every abundance, the fitted orbit part is removed from the abundances before
        calibration (``input - orbit part``: shows the nuisance trend the fit found, the paper's
        Figures 2-4 upper rows) and after (``calibrated - orbit part``: what is left).  After a
        good calibration the "after" means are consistent with zero in every bin; a clear pattern
        means the nuisance dependence is not captured by the model (e.g. it differs between
        regions of the Galaxy; use ``by``).

        Parameters
        ----------
        X : DataFrame or array
            Same columns as in ``fit``; orbit features are needed here.
        n_bins : int, default 4
            Number of equal-count bins of the nuisance parameter (paper: four bins in log g).
        nuisance : str or int, optional
            Which nuisance column to bin in (default: the first).
        by : str or int, optional
            A column of ``X`` (e.g. ``"R"`` in kpc or ``"L_z"``) to split the stars further into
            ``n_by_bins`` equal-count bins, so that a nuisance dependence that changes across the
            Galaxy shows up (a single-bin "after" residual is partly fitted away).
        n_by_bins : int, default 4
            Number of bins of ``by``.
        training_only : bool, default True
            Use only the rows passing the training filter (the stars the fit saw).  ``False`` uses
            every row with finite orbit features and nuisance values.  Evaluating on stars *not*
            used in the fit (held out) is the most stringent test.

        Returns
        -------
        trend : DataFrame
            One row per abundance, stage (``"before"``, ``"after"``), [``by`` bin] and nuisance
            bin, with columns ``abundance, stage, [by_bin, <by>_low, <by>_high,] bin, <nuis>_low,
            <nuis>_high, <nuis>_median, n_stars, mean_residual`` (dex; weighted by ``1/sigma^2``
            as in the fit), ``stderr`` (dex; from the scatter of the residuals in the bin, so it
            includes any intrinsic scatter) and ``pull = mean_residual / stderr``.

        Notes
        -----
        The "after" residuals of the training stars are least-squares residuals: their weighted
        mean is zero overall and they are uncorrelated with the nuisance terms, so without ``by``
        the "after" bin means on the training stars are small by construction and test only the
        shape of the nuisance polynomial.  Use held-out stars or ``by`` for a stronger test, and
        :func:`trend_summary` to rank abundances.
        """
        check_is_fitted(self, "coef_")
        X, feature_names = self._validate_X(X, reset=False)
        cols = self._cols
        n_features = X.shape[1]
        nuis_j = 0
        if nuisance is not None:
            (p,) = _positions([nuisance], feature_names, n_features, "nuisance")
            if p not in cols.nuisance:
                raise ValueError(f"nuisance={nuisance!r} is not one of the nuisance columns "
                                 f"{cols.nuisance_names}")
            nuis_j = cols.nuisance.index(p)
        nuis_name = cols.nuisance_names[nuis_j]

        A, weights = self._abundances_and_weights(X, cols, check=False)
        V = np.hstack([_values(X, cols.orbit, cols.orbit_names), self._nuisance_offsets(X, cols)])
        rows = np.isfinite(V).all(axis=1)
        if training_only:
            rows &= self._training_rows(X, feature_names, n_features)
        weights[~rows] = 0.0

        nuis_part = self._nuisance_part(X)
        orbit_part = self._orbit_part(X)
        stages = {"before": A - orbit_part, "after": A - nuis_part - orbit_part}

        nuis_values = V[:, len(cols.orbit) + nuis_j] + cols.reference[nuis_j]
        if not rows.any():
            raise ValueError("no star has finite orbit features and nuisance values to bin")
        nbin, _ = equal_count_bins(nuis_values, n_bins, where=rows)
        groups = [(None, np.ones(len(A), dtype=bool), None, None)]
        by_name = None
        if by is not None:
            (pb,) = _positions([by], feature_names, n_features, "by")
            by_name = _display_names([pb], feature_names)[0]
            by_values = _values(X, [pb], [by_name])[:, 0]
            rows_by = rows & np.isfinite(by_values)
            bbin, _ = equal_count_bins(by_values, n_by_bins, where=rows_by)
            weights[~rows_by] = 0.0
            groups = []
            for b in range(n_by_bins):
                sel = bbin == b
                in_bin = by_values[sel & rows_by]
                groups.append((b, sel, in_bin.min() if in_bin.size else np.nan,
                               in_bin.max() if in_bin.size else np.nan))

        records = []
        for k, abund in enumerate(cols.abundance_names):
            for stage, resid in stages.items():
                for gb, gsel, glow, ghigh in groups:
                    for b in range(n_bins):
                        sel = gsel & (nbin == b) & (weights[:, k] > 0)
                        rec = {"abundance": abund, "stage": stage}
                        if by is not None:
                            rec.update({"by_bin": gb, f"{by_name}_low": glow,
                                        f"{by_name}_high": ghigh})
                        rec.update(_binned_mean(resid[sel, k], weights[sel, k], nuis_values[sel],
                                                b, nuis_name))
                        records.append(rec)
        return pd.DataFrame.from_records(records)


def _binned_mean(resid, w, nuis, b, nuis_name):
    n = resid.size
    out = {"bin": b, f"{nuis_name}_low": np.nan, f"{nuis_name}_high": np.nan,
           f"{nuis_name}_median": np.nan, "n_stars": n, "mean_residual": np.nan,
           "stderr": np.nan, "pull": np.nan}
    if n == 0:
        return out
    sw = w.sum()
    mean = (w * resid).sum() / sw
    out.update({f"{nuis_name}_low": nuis.min(), f"{nuis_name}_high": nuis.max(),
                f"{nuis_name}_median": float(np.median(nuis)), "mean_residual": mean})
    if n > 1:
        stderr = np.sqrt((w ** 2 * (resid - mean) ** 2).sum() * n / (n - 1)) / sw
        out.update({"stderr": stderr, "pull": mean / stderr if stderr > 0 else np.nan})
    return out


def trend_summary(trend, *, alpha=0.01):
    """Per abundance: how large the nuisance trend is before and after calibration, and whether a
    significant trend remains.

    Parameters
    ----------
    trend : DataFrame
        Output of :meth:`NuisanceCalibrator.nuisance_trend`.
    alpha : float, default 0.01
        Significance level for ``residual_trend``.

    Returns
    -------
    summary : DataFrame
        Indexed by abundance (in input order), columns ``span_before`` and ``span_after`` (dex;
        largest minus smallest bin mean), ``max_abs_pull_after``, ``chi2_after`` (sum of squared
        pulls of the "after" bins, compared with zero), ``n_bins``, ``p_value_after`` (chi-square
        with ``n_bins`` degrees of freedom; conservative on the training stars, see
        ``nuisance_trend``) and ``residual_trend`` (``p_value_after < alpha``).  Sort by
        ``p_value_after`` to see the abundances that keep a trend (the paper's [Al/Fe]).
    """
    rows = []
    for abund, sub in trend.groupby("abundance", sort=False):
        before = sub[sub["stage"] == "before"]
        after = sub[(sub["stage"] == "after") & np.isfinite(sub["pull"])]
        chi2 = float((after["pull"] ** 2).sum())
        p = float(stats.chi2.sf(chi2, len(after))) if len(after) else np.nan
        rows.append({
            "abundance": abund,
            "span_before": before["mean_residual"].max() - before["mean_residual"].min(),
            "span_after": after["mean_residual"].max() - after["mean_residual"].min(),
            "max_abs_pull_after": float(after["pull"].abs().max()) if len(after) else np.nan,
            "chi2_after": chi2, "n_bins": len(after), "p_value_after": p,
            "residual_trend": bool(p < alpha),
        })
    return pd.DataFrame(rows).set_index("abundance")
