"""The calibration model's design: its columns, their names, how to evaluate them and in which units.

The design of one abundance is ``[1, orbit terms, nuisance terms]``:

- the orbit part is a complete polynomial in the orbit features (the paper) or a sum of B-splines,
  one per feature (``orbit_basis="spline"``), with the constant;
- every continuous nuisance contributes a polynomial in its offset from the reference without a
  constant (the paper's ``lg, lg^2``) or B-splines that vanish at the reference; with
  ``interactions`` the polynomial nuisances form one complete polynomial instead (cross terms);
- every categorical nuisance contributes one offset per category other than the reference.

Every nuisance term is zero at the reference, so subtracting the nuisance part puts every star on
the scale of a star at the reference values. Values are held in two tables: ``V`` (continuous:
the orbit features, then the continuous nuisances, raw) and ``codes`` (one integer column per
categorical nuisance, from :mod:`sklearn_selfcal._kernels.categorical`).

Polynomial terms are fitted in centred and scaled variables (well-conditioned normal equations)
and reported in physical units through :func:`~sklearn_selfcal._kernels.design.change_of_basis`;
spline and offset columns are fitted as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral

import numpy as np

from .._kernels import bspline as _bspline
from .._kernels import categorical as _categorical
from .._kernels import design as _poly
from ._inputs import CATEGORICAL, CONTINUOUS, per_column

__all__ = ["BASES", "DEFAULT_DEGREE", "DEFAULT_KNOTS", "NuisanceSpec", "Design", "orbit_knots",
           "nuisance_specs", "build_design"]

ORBIT = "orbit"
INTERACTIONS = "interactions"
BASES = ("polynomial", "spline")
DEFAULT_DEGREE = 2
DEFAULT_KNOTS = 5


@dataclass
class NuisanceSpec:
    """One nuisance, resolved: name, kind, basis, degree, knots setting and reference."""

    name: str
    kind: str                 # CONTINUOUS or CATEGORICAL
    basis: str | None = None  # "polynomial" or "spline" (continuous only)
    degree: int | None = None
    knots: object = None      # int or array of knot positions (spline only)
    reference: object = None  # float, or category (str)
    categories: list | None = None  # categorical only: the fitted categories (str)


@dataclass
class _Spline:
    variable: int        # column of V
    knots: np.ndarray
    degree: int
    reference: float
    columns: np.ndarray  # positions in the design


@dataclass
class _Offsets:
    variable: int        # column of codes
    categories: list
    reference: int       # code of the reference category
    columns: np.ndarray


@dataclass
class Design:
    """A fitted design: evaluates its columns on new values and converts coefficients to units."""

    names: list
    groups: list          # per column: "orbit" (constant included), a nuisance name, "interactions"
    poly_variables: np.ndarray
    poly_shift: np.ndarray
    powers: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    poly_columns: np.ndarray
    splines: list = field(default_factory=list)
    offsets: list = field(default_factory=list)

    @property
    def n_terms(self):
        return len(self.names)

    @property
    def is_nuisance(self):
        """Boolean mask of the nuisance columns (those :meth:`transform` subtracts)."""
        return np.array([g != ORBIT for g in self.groups])

    def columns(self, part):
        """Boolean mask of the columns of ``part``: ``"all"``, ``"orbit"`` or ``"nuisance"``."""
        return {"all": np.ones(self.n_terms, bool), "orbit": ~self.is_nuisance,
                "nuisance": self.is_nuisance}[part]

    def evaluate(self, V, codes, *, part="all", fit_units=False):
        """Design columns on the rows of ``V`` / ``codes``.

        Parameters
        ----------
        V : ndarray of shape (n, n_continuous)
        codes : ndarray of int of shape (n, n_categorical)
        part : {"all", "orbit", "nuisance"}
            Which columns (in design order).
        fit_units : bool
            Polynomial terms in the centred and scaled variables of the fit.

        Returns
        -------
        Y : ndarray of shape (n, n_selected)
            NaN where a needed value is NaN, missing or an unseen category.
        """
        keep = self.columns(part)
        out = np.empty((V.shape[0], self.n_terms))
        rows = keep[self.poly_columns]
        if rows.any():
            x = V[:, self.poly_variables] - self.poly_shift
            if fit_units:
                x = (x - self.center) / self.scale
            out[:, self.poly_columns[rows]] = _poly.evaluate_monomials(x, self.powers[rows])
        for s in self.splines:
            if keep[s.columns].any():
                out[:, s.columns] = _bspline.centred_basis(V[:, s.variable], s.knots, s.degree,
                                                           s.reference)
        for c in self.offsets:
            if keep[c.columns].any():
                out[:, c.columns] = _categorical.treatment_columns(
                    codes[:, c.variable], len(c.categories), c.reference)
        return out[:, keep]

    def to_physical(self):
        """``T`` with ``coef_physical = coef_fit @ T.T`` (and ``cov = T cov T.T``)."""
        T = np.eye(self.n_terms)
        idx = self.poly_columns
        T[np.ix_(idx, idx)] = _poly.change_of_basis(self.powers, self.center, self.scale)
        return T


def check_knots(knots, name):
    """An int >= 2 or an array of knot positions (validated), for the spline of ``name``."""
    if np.ndim(knots) == 0:
        if not isinstance(knots, Integral) or isinstance(knots, bool) or knots < 2:
            raise ValueError(f"the number of knots of {name!r} must be an integer >= 2, got "
                             f"{knots!r}")
        return int(knots)
    return _bspline.check_knots(knots, what=f"knots of {name!r}")


def orbit_knots(cols, params):
    """The knots setting of every orbit feature, from the calibrator's parameters (validated)."""
    if params["orbit_basis"] == "spline" and params["orbit_degree"] < 1:
        raise ValueError("orbit_basis='spline' needs orbit_degree >= 1 (the spline degree)")
    knots = per_column(params["orbit_knots"], cols.orbit_names, "orbit_knots")
    if np.ndim(params["orbit_knots"]) > 0 and not isinstance(params["orbit_knots"], dict) \
            and len(cols.orbit) > 1 and params["orbit_basis"] == "spline":
        raise ValueError("orbit_knots gives one set of knot positions for several orbit "
                         "features; pass a dict feature -> knots")
    return [check_knots(DEFAULT_KNOTS if k is None else k, name)
            for k, name in zip(knots, cols.orbit_names)]


def nuisance_specs(cols, training, params):
    """Basis, degree, knots, reference and categories of every nuisance, from the calibrator's
    ``params`` and the ``training`` rows' statistics (:class:`._sufficient.TrainingStatistics`)."""
    names = cols.nuisance_names
    cont = [names[j] for j in cols.continuous]
    basis = per_column(params["nuisance_basis"], cont, "nuisance_basis")
    degree = per_column(params["nuisance_degree"], cont, "nuisance_degree")
    knots = per_column(params["nuisance_knots"], cont, "nuisance_knots")
    specs, n_orbit = [], len(cols.orbit)
    for j, name in enumerate(names):
        ref = cols.nuisance_reference[j]
        if cols.nuisance_kinds[j] == CATEGORICAL:
            categories, counts = training.categories(cols.categorical.index(j))
            if ref is None:
                ref = max(categories, key=lambda c: counts[c])
            elif str(ref) not in categories:
                raise ValueError(f"nuisance_reference {ref!r} of the categorical nuisance "
                                 f"{name!r} is not one of its categories among the training "
                                 f"stars: {categories[:20]}")
            specs.append(NuisanceSpec(name, CATEGORICAL, reference=str(ref),
                                      categories=categories))
            continue
        c = cont.index(name)
        b = BASES[0] if basis[c] is None else basis[c]
        d = DEFAULT_DEGREE if degree[c] is None else degree[c]
        k = DEFAULT_KNOTS if knots[c] is None else knots[c]
        if b not in BASES:
            raise ValueError(f"nuisance_basis[{name!r}] must be one of {BASES}, got {b!r}")
        if not isinstance(d, Integral) or isinstance(d, bool) or d < 1:
            raise ValueError(f"nuisance_degree[{name!r}] must be an integer >= 1, got {d!r}")
        if isinstance(ref, str):
            raise ValueError(f"nuisance_reference {ref!r} of the continuous nuisance {name!r} "
                             "must be a number (or None)")
        ref = training.median(n_orbit + cols.continuous.index(j)) if ref is None else float(ref)
        specs.append(NuisanceSpec(name, CONTINUOUS, b, int(d), check_knots(k, name), ref))
    spline_arrays = [s.name for s in specs if s.basis == "spline" and np.ndim(s.knots) > 0]
    if np.ndim(params["nuisance_knots"]) > 0 and not isinstance(params["nuisance_knots"], dict) \
            and len(spline_arrays) > 1:
        raise ValueError("nuisance_knots gives one set of knot positions but several "
                         f"nuisances use splines ({spline_arrays}); pass a dict column -> knots")
    poly = [s for s in specs if s.basis == "polynomial"]
    if params["nuisance_interactions"] and (len(poly) != len(cols.continuous)
                                            or len({s.degree for s in poly}) > 1):
        raise ValueError("nuisance_interactions=True needs every continuous nuisance in the "
                         "polynomial basis with one nuisance_degree (a complete polynomial)")
    return specs


def _variable_name(spec):
    ref = spec.reference
    return spec.name if ref == 0 else f"({spec.name}-{ref:g})"


def build_design(training, *, orbit_names, orbit_basis, orbit_degree, orbit_knots,
                 nuisances, interactions):
    """Lay out the design and fix its data-dependent parts (knots, scaling) on the training rows.

    Parameters
    ----------
    training : TrainingStatistics
        What the design needs of the training rows' continuous values ``V`` (orbit features,
        then the continuous nuisances, raw): ``median(j)`` and ``values(j)`` of column ``j`` (for
        spline references and quantile knots) and ``center_scale(columns, shift)``, the mean and
        standard deviation (``ddof=0``) of ``V[:, columns] - shift`` (for the polynomial terms);
        see :mod:`._sufficient`, which computes them in memory or summed over partitions.
    orbit_names : list of str
    orbit_basis : {"polynomial", "spline"}
    orbit_degree : int
        Total polynomial degree, or spline degree.
    orbit_knots : list
        Per orbit feature: number of knots (int) or knot positions.
    nuisances : list of NuisanceSpec
        In the user's order, references resolved; categorical ones with their categories.
    interactions : bool
        One complete polynomial over the polynomial nuisances (all continuous nuisances must then
        be polynomial with one degree).

    Returns
    -------
    design : Design
    """
    n_orbit = len(orbit_names)
    continuous = [s for s in nuisances if s.kind == CONTINUOUS]
    cont_var = {s.name: n_orbit + j for j, s in enumerate(continuous)}
    cat_var = {s.name: j for j, s in enumerate(s for s in nuisances if s.kind != CONTINUOUS)}

    # (sort key, name, group, source) of every column; sorted at the end into design order:
    # keys (1, ...) for the constant and the orbit terms, (2, nuisance position, ...) for the rest
    columns = []
    poly_vars, poly_shift, poly_names = [], [], []
    blocks = []  # (exponents, key prefix, group) of every polynomial block
    if orbit_basis == "polynomial":
        poly_vars += list(range(n_orbit))
        poly_shift += [0.0] * n_orbit
        poly_names += list(orbit_names)
        blocks.append((_poly.monomial_powers(n_orbit, orbit_degree, include_bias=True), (1, 0),
                       ORBIT))
    else:  # the constant alone; the spline columns follow
        blocks.append((_poly.monomial_powers(0, 0, include_bias=True), (1, 0), ORBIT))

    poly_nuis = [s for s in continuous if s.basis == "polynomial"]
    if interactions and poly_nuis:
        poly_vars += [cont_var[s.name] for s in poly_nuis]
        poly_shift += [float(s.reference) for s in poly_nuis]
        poly_names += [_variable_name(s) for s in poly_nuis]
        blocks.append((_poly.monomial_powers(len(poly_nuis), poly_nuis[0].degree,
                                             include_bias=False),
                       (2, nuisances.index(poly_nuis[0])),
                       INTERACTIONS if len(poly_nuis) > 1 else poly_nuis[0].name))
    else:
        for s in poly_nuis:
            poly_vars.append(cont_var[s.name])
            poly_shift.append(float(s.reference))
            poly_names.append(_variable_name(s))
            blocks.append((_poly.monomial_powers(1, s.degree, include_bias=False),
                           (2, nuisances.index(s)), s.name))
    powers = _poly.block_powers([b[0] for b in blocks])
    names = _poly.monomial_names(poly_names, powers)
    t = 0
    for exponents, prefix, group in blocks:
        for i in range(exponents.shape[0]):
            columns.append((prefix + (i,), names[t], group, ("poly", t)))
            t += 1
    if interactions and len(poly_nuis) > 1:
        # a single-variable monomial of the complete polynomial belongs to that nuisance
        for k, (key, name, group, src) in enumerate(columns):
            if group == INTERACTIONS:
                used = np.flatnonzero(powers[src[1]])
                if used.size == 1:
                    var = poly_vars[used[0]]
                    owner = next(s.name for s in poly_nuis if cont_var[s.name] == var)
                    columns[k] = (key, name, owner, src)

    splines = []
    spline_vars = ([(j, name, orbit_degree, orbit_knots[j], training.median(j), ORBIT,
                     (1, 1 + j)) for j, name in enumerate(orbit_names)]
                   if orbit_basis == "spline" else [])
    spline_vars += [(cont_var[s.name], s.name, s.degree, s.knots, float(s.reference), s.name,
                     (2, nuisances.index(s))) for s in continuous if s.basis == "spline"]
    for var, name, degree, knots, ref, group, key in spline_vars:
        if np.ndim(knots) == 0:
            knots = _bspline.quantile_knots(training.values(var), int(knots),
                                            include=None if group == ORBIT else ref)
        else:
            knots = check_knots(knots, name)
        for i in range(_bspline.n_basis(knots, degree) - 1):
            columns.append((key + (i,), f"B{i + 1}({name})", group, ("spline", len(splines), i)))
        splines.append(_Spline(var, knots, int(degree), ref, None))

    offsets = []
    for s in nuisances:
        if s.kind == CONTINUOUS:
            continue
        categories = list(s.categories)
        for i, cat in enumerate(c for c in categories if c != s.reference):
            columns.append(((2, nuisances.index(s), i), f"{s.name}[{cat}]", s.name,
                            ("offset", len(offsets), i)))
        offsets.append(_Offsets(cat_var[s.name], categories, categories.index(s.reference), None))

    order = sorted(range(len(columns)), key=lambda k: columns[k][0])
    position = {columns[k][3]: p for p, k in enumerate(order)}
    poly_columns = np.array([position[("poly", t)] for t in range(powers.shape[0])], dtype=int)
    for b, s in enumerate(splines):
        s.columns = np.array([position[("spline", b, i)]
                              for i in range(_bspline.n_basis(s.knots, s.degree) - 1)], dtype=int)
    for b, c in enumerate(offsets):
        c.columns = np.array([position[("offset", b, i)] for i in range(len(c.categories) - 1)],
                             dtype=int)

    center, scale = training.center_scale(np.asarray(poly_vars, dtype=int),
                                          np.asarray(poly_shift, dtype=float))
    return Design(
        names=[columns[k][1] for k in order], groups=[columns[k][2] for k in order],
        poly_variables=np.asarray(poly_vars, dtype=int),
        poly_shift=np.asarray(poly_shift, dtype=float), powers=powers, center=center,
        scale=np.where(scale > 0, scale, 1.0), poly_columns=poly_columns, splines=splines,
        offsets=offsets)
