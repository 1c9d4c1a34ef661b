"""Where the distances come from: spectro-photometric parallaxes, a user's distance catalogue or Gaia.

The orbits need a distance for every star. In order of preference (paper section 3.1 and the
practice of APOGEE users):

1. ``"spectra"``: spectro-photometric parallaxes fitted to the spectra (``run --spectra``);
2. ``"spec_parallax"``: a catalogue that already holds ``spec_parallax`` and ``spec_parallax_err``
   (mas; e.g. the paper's public catalogue);
3. ``"distance"``: a distance catalogue the user trusts -- a column named on the command line
   (``--distance``) or in the ``[distance]`` configuration, or one of
   :data:`~sklearn_selfcal.columns.DISTANCE_SOURCES` (Bailer-Jones et al. 2021 as shipped in APOGEE
   DR17 ``GAIAEDR3_R_MED_PHOTOGEO`` or in the Gaia archive / VizieR, astroNN ``dist``, StarHorse
   ``dist50``), in pc or kpc as its name implies, with its uncertainty or 16th/84th percentiles;
4. ``"parallax"``: the Gaia parallax, corrected for its zero point, for the stars with
   ``parallax / parallax_error`` above a cut (default 5) so that its inverse is a fair distance.

:func:`choose_distance_source` makes the choice from the catalogue's columns and
:class:`DistanceTransformer` turns the chosen columns into ``distance_kpc`` and ``distance_kpc_err``
(kpc) inside the method's Pipeline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, validate_data

from ._paper import GAIA_PARALLAX_ZERO_POINT, parallax_to_distance, zero_point_of
from ._validation import PARALLAX_ZERO_POINT_CONSTRAINT, clean_column, estimator_input
from .columns import DISTANCE_SOURCES, distance_pc_factor

__all__ = ["DistanceChoice", "DistanceTransformer", "choose_distance_source",
           "DEFAULT_PARALLAX_OVER_ERROR", "DISTANCE_COLUMNS", "DISTANCE_INPUT"]

#: Minimum ``parallax / parallax_error`` of a Gaia parallax used as a distance (``1/parallax``).
DEFAULT_PARALLAX_OVER_ERROR = 5.0
#: Output columns of :class:`DistanceTransformer` (kpc).
DISTANCE_COLUMNS = ("distance_kpc", "distance_kpc_err")
_KINDS = ("auto", "spectra", "spec_parallax", "distance", "parallax")


#: The names under which the method's Pipeline reads a distance catalogue's columns.
DISTANCE_INPUT = {"column": "distance_input", "error": "distance_input_error",
                  "lo": "distance_input_lo", "hi": "distance_input_hi"}


@dataclass(frozen=True)
class DistanceChoice:
    """The distance source of a run.

    Parameters
    ----------
    kind : {"spectra", "spec_parallax", "distance", "parallax"}
        Where the distances come from (see the module docstring for the order of preference).
    column : str or None, default=None
        The column (parallax in mas, or distance in ``unit``) in the canonical frame of the run
        (:func:`~sklearn_selfcal.columns.canonical_frame`: a Gaia parallax is ``"parallax"``, a
        distance catalogue keeps its own name).
    unit : str or None, default=None
        ``"mas"`` for parallaxes, ``"pc"`` or ``"kpc"`` for distances.
    error, lo, hi : str or None, default=None
        Uncertainty column, or 16th/84th percentile columns (same unit).
    label : str, default=""
        Where the distances come from, for the summary and ``provenance.json``.
    parallax_over_error : float or None, default=None
        The minimum ``parallax / parallax_error`` of Gaia parallaxes used as distances
        (dimensionless); None for the other kinds.
    parallax_zero_point : float, default=-0.017
        Zero point of the catalogue's Gaia parallaxes (mas), subtracted from them (the
        ``"parallax"`` kind's distances, the ``"spectra"`` kind's training targets).

    Examples
    --------
    >>> choice = DistanceChoice("distance", "dist", "kpc", error="dist_err", label="astroNN")
    >>> choice.describe()
    'dist (kpc; astroNN), uncertainty dist_err'
    """

    kind: str
    column: str | None = None
    unit: str | None = None
    error: str | None = None
    lo: str | None = None
    hi: str | None = None
    label: str = ""
    parallax_over_error: float | None = None
    parallax_zero_point: float = GAIA_PARALLAX_ZERO_POINT

    def describe(self):
        """Describe the source in one line, for the run's summary.

        Returns
        -------
        str
            The kind of source, its column and unit, and its uncertainty (and, for Gaia
            parallaxes, the zero point in mas and the signal-to-noise cut).
        """
        if self.kind == "spectra":
            return "spectro-photometric parallaxes fitted to the spectra (paper section 3.1)"
        if self.kind == "spec_parallax":
            return "the catalogue's spec_parallax (mas) with spec_parallax_err"
        err = (f"uncertainty {self.error}" if self.error else
               f"uncertainty ({self.hi} - {self.lo}) / 2" if self.lo else "no uncertainty")
        if self.kind == "distance":
            return f"{self.column} ({self.unit}; {self.label}), {err}"
        return (f"{self.label} minus its zero point {self.parallax_zero_point:+g} mas,"
                f" for stars with parallax/error > {self.parallax_over_error:g}; {err}")

    def renames(self):
        """The catalogue's distance columns -> the method's own names (:data:`DISTANCE_INPUT`).

        A distance catalogue's spelling differs between releases (DR17's
        ``GAIAEDR3_R_MED_PHOTOGEO`` is SDSS-V's ``r_med_photogeo``); the method's Pipeline reads
        the chosen columns under these names, so a fitted Pipeline applies to any spelling.

        Returns
        -------
        renames : dict of str to str
            Empty unless the kind is ``"distance"``.
        """
        if self.kind != "distance":
            return {}
        return {getattr(self, field): name for field, name in DISTANCE_INPUT.items()
                if getattr(self, field) is not None}

    def canonical(self):
        """The same choice reading the method's own names (:meth:`renames`).

        Returns
        -------
        choice : DistanceChoice
            With the column fields renamed (the choice itself for the other kinds).
        """
        if self.kind != "distance":
            return self
        return replace(self, **{field: name for field, name in DISTANCE_INPUT.items()
                                if getattr(self, field) is not None})

    def as_dict(self):
        """Return the choice as a JSON-serialisable record (for ``provenance.json``).

        Returns
        -------
        dict
            Every field of the choice, plus ``"description"`` (:meth:`describe`).
        """
        return {**asdict(self), "description": self.describe()}


def choose_distance_source(columns, column_map, *, spectra=False, source="auto", column=None,
                           error=None, lo=None, hi=None, unit="auto",
                           parallax_over_error=DEFAULT_PARALLAX_OVER_ERROR,
                           parallax_zero_point=GAIA_PARALLAX_ZERO_POINT):
    """Choose where a run's distances come from (see the module docstring for the order).

    Parameters
    ----------
    columns : iterable of str
        The catalogue's columns (names as in the file).
    column_map : ColumnMap
        Its roles (:func:`~sklearn_selfcal.columns.resolve_columns`).
    spectra : bool, default=False
        Spectra were given: the spectro-photometric model is trained (kind ``"spectra"``).
    source : {"auto", "spectra", "spec_parallax", "distance", "parallax"}, default="auto"
        Force a kind (``[distance] source``).
    column : str, optional
        A distance column (``--distance``); implies ``source="distance"``.
    error, lo, hi : str, optional
        Its uncertainty, or 16th/84th percentile columns.
    unit : {"auto", "pc", "kpc"}, default="auto"
        Unit of ``column``; ``"auto"`` takes it from the recognised catalogue.
    parallax_over_error : float, default=5
        Cut on Gaia parallaxes used as distances.
    parallax_zero_point : float, default=-0.017
        Gaia parallax zero point (mas), subtracted.

    Returns
    -------
    choice : DistanceChoice
        The chosen kind of source with its columns, unit and (for Gaia parallaxes) the cut and the
        zero point.

    Raises
    ------
    ValueError
        When no source is possible, naming what would fix it (a column, a config key, a file).
    """
    columns = set(columns)
    if source not in _KINDS:
        raise ValueError(f"[distance] source must be one of {_KINDS}, got {source!r}")
    if column is not None:
        source = "distance"
    if source in ("auto", "spectra") and spectra:
        return DistanceChoice("spectra", label="spectro-photometric model",
                              parallax_zero_point=float(parallax_zero_point))
    if source == "spectra":
        raise ValueError("[distance] source = 'spectra' needs spectra: pass --spectra FILE")
    if source in ("auto", "spec_parallax") and {"spec_parallax", "spec_parallax_err"} <= columns:
        return DistanceChoice("spec_parallax", "spec_parallax", "mas", error="spec_parallax_err",
                              label="catalogue spec_parallax")
    if source == "spec_parallax":
        raise ValueError("[distance] source = 'spec_parallax' but the catalogue has no "
                         "'spec_parallax' and 'spec_parallax_err' columns")
    if source in ("auto", "distance"):
        choice = _distance_choice(columns, column, error, lo, hi, unit)
        if choice is not None:
            return choice
        if source == "distance":
            raise ValueError(
                "no distance column found: pass --distance COLUMN (with [distance] unit = 'pc' or "
                "'kpc' and error, or lo/hi) or a catalogue with one of "
                + ", ".join(s.column for s in DISTANCE_SOURCES))
    if "parallax" in column_map and "parallax_error" in column_map:
        return DistanceChoice("parallax", "parallax", "mas", error="parallax_error",
                              label=f"Gaia parallax (catalogue columns {column_map['parallax']}, "
                                    f"{column_map['parallax_error']})",
                              parallax_over_error=float(parallax_over_error),
                              parallax_zero_point=float(parallax_zero_point))
    raise ValueError(
        "no distances: give spectra (--spectra), a distance column (--distance COLUMN, or one of "
        + ", ".join(s.column for s in DISTANCE_SOURCES)
        + "), spec_parallax/spec_parallax_err, or a Gaia parallax with its error (map them with "
        "[columns] parallax = \"...\" and parallax_error = \"...\")")


def _distance_choice(columns, column, error, lo, hi, unit):
    if column is not None:
        if column not in columns:
            raise ValueError(f"--distance {column!r}: the catalogue has no such column")
        known = next((s for s in DISTANCE_SOURCES if s.column == column), None)
        if unit == "auto":
            if known is None:
                raise ValueError(f"--distance {column!r}: its unit is not known; set [distance] "
                                 "unit = 'pc' or 'kpc'")
            unit = known.unit
        distance_pc_factor(unit)
        if error is None and lo is None and known is not None:
            error, lo, hi = known.error, known.lo, known.hi
        for name in (error, lo, hi):
            if name is not None and name not in columns:
                raise ValueError(f"[distance] uncertainty column {name!r} is not in the catalogue")
        if (lo is None) != (hi is None):
            raise ValueError("[distance] give both lo and hi (16th and 84th percentiles), or error")
        return DistanceChoice("distance", column, unit, error=error, lo=lo, hi=hi,
                              label=known.label if known else "user's distance column")
    for s in DISTANCE_SOURCES:
        if s.column in columns:
            has_err = s.error in columns if s.error else False
            has_pct = s.lo in columns and s.hi in columns if s.lo else False
            return DistanceChoice("distance", s.column, s.unit if unit == "auto" else unit,
                                  error=s.error if has_err else None,
                                  lo=s.lo if has_pct else None, hi=s.hi if has_pct else None,
                                  label=s.label)
    return None


class DistanceTransformer(TransformerMixin, BaseEstimator):
    """Heliocentric distances (kpc) from a distance column or a Gaia parallax.

    A stateless transformer: ``transform`` returns ``distance_kpc`` and ``distance_kpc_err``
    for every row (NaN where the input gives no usable distance). With ``unit="mas"`` the column
    is a parallax, inverted by :func:`~sklearn_selfcal._paper.parallax_to_distance` (zero point
    subtracted, kept only where the corrected ``parallax / parallax_error`` exceeds
    ``min_parallax_over_error``: below it the inverse parallax is a biased distance). Otherwise the
    column is a distance in ``unit`` with an uncertainty column or 16th/84th percentiles
    (``(hi - lo) / 2``). Distances that are not positive are NaN.

    Parameters
    ----------
    column : str or int, default="parallax"
        The parallax (mas) or distance column.
    unit : {"mas", "pc", "kpc"}, default="mas"
        Unit of ``column``: ``"mas"`` for a parallax, ``"pc"`` or ``"kpc"`` for a distance.
    error : str, int or None, default="parallax_error"
        1-sigma uncertainty column (same unit as ``column``).
    lo, hi : str, int or None, default=None
        16th and 84th percentile columns, used when ``error`` is None.
    parallax_zero_point : float, default=-0.017
        Subtracted from a Gaia parallax (mas; 0 is used for ``spec_parallax``, see
        :func:`~sklearn_selfcal._paper.zero_point_of`); ignored for distances.
    min_parallax_over_error : float, default=5
        Parallaxes with a smaller signal-to-noise give NaN; ignored for distances.

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only with DataFrame input.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"r_med_photogeo": [2000.0, 500.0], "r_lo_photogeo": [1900.0, 480.0],
    ...                   "r_hi_photogeo": [2100.0, 520.0]})
    >>> step = DistanceTransformer("r_med_photogeo", unit="pc", error=None, lo="r_lo_photogeo",
    ...                            hi="r_hi_photogeo").set_output(transform="pandas")
    >>> step.fit_transform(X).round(3).to_dict("list")
    {'distance_kpc': [2.0, 0.5], 'distance_kpc_err': [0.1, 0.02]}
    """

    _parameter_constraints = {
        "column": [str, Interval(Integral, 0, None, closed="left")],
        "unit": [StrOptions({"mas", "pc", "kpc"})],
        "error": [str, Interval(Integral, 0, None, closed="left"), None],
        "lo": [str, Interval(Integral, 0, None, closed="left"), None],
        "hi": [str, Interval(Integral, 0, None, closed="left"), None],
        "parallax_zero_point": PARALLAX_ZERO_POINT_CONSTRAINT,
        "min_parallax_over_error": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, column="parallax", *, unit="mas", error="parallax_error", lo=None, hi=None,
                 parallax_zero_point=GAIA_PARALLAX_ZERO_POINT,
                 min_parallax_over_error=DEFAULT_PARALLAX_OVER_ERROR):
        self.column = column
        self.unit = unit
        self.error = error
        self.lo = lo
        self.hi = hi
        self.parallax_zero_point = parallax_zero_point
        self.min_parallax_over_error = min_parallax_over_error

    def _columns(self):
        return [c for c in (self.column, self.error, self.lo, self.hi) if c is not None]

    def _read(self, X):
        """The configured columns as float arrays, by name (DataFrame) or position."""
        out = []
        for c in self._columns():
            if isinstance(X, pd.DataFrame) and isinstance(c, str):
                if c not in X.columns:
                    raise KeyError(f"DistanceTransformer: column {c!r} is not in X")
                values = X[c]
            elif isinstance(X, pd.DataFrame):
                values = X.iloc[:, c]
            else:
                if isinstance(c, str):
                    raise ValueError(f"DistanceTransformer: column {c!r} is given by name but X "
                                     "has no column names; pass a DataFrame or positions")
                if c >= X.shape[1]:
                    raise ValueError(f"DistanceTransformer: column position {c} is out of range "
                                     f"for X with {X.shape[1]} column(s)")
                values = X[:, c]
            out.append(clean_column(values, str(c), what="DistanceTransformer", stacklevel=4))
        return out

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check the columns; nothing is learned.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_stars, n_columns)
            Table holding ``column`` and its uncertainty columns (by name for a DataFrame, by
            position otherwise).
        y : None
            Ignored; present for scikit-learn's API.

        Returns
        -------
        self : DistanceTransformer
            The transformer, with ``n_features_in_`` (and ``feature_names_in_``) recorded.
        """
        X = estimator_input(X, "DistanceTransformer")
        if self.unit != "mas" and self.error is None and (self.lo is None) != (self.hi is None):
            raise ValueError("give both lo and hi (16th and 84th percentiles), or error")
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=True, skip_check_array=True)
        else:
            X = validate_data(self, X, reset=True, dtype=np.float64, ensure_all_finite=False)
        self._read(X)
        return self

    def transform(self, X):
        """Distances and their uncertainties (kpc) of every row.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_stars, n_columns)
            Table holding ``column`` (parallax in mas, or distance in ``unit``) and its uncertainty
            columns.

        Returns
        -------
        distances : ndarray of shape (n_stars, 2)
            ``distance_kpc``, ``distance_kpc_err`` (a DataFrame with ``set_output``).
        """
        X = estimator_input(X, "DistanceTransformer")
        fitted = hasattr(self, "n_features_in_")  # stateless: fit only records the input's width
        if isinstance(X, pd.DataFrame):
            if fitted:
                validate_data(self, X, reset=False, skip_check_array=True)
        elif fitted:
            X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=False)
        else:
            X = check_array(X, dtype=np.float64, ensure_all_finite=False)
        values = self._read(X)
        value = values[0]
        if self.error is not None:
            err = values[1]
        elif self.lo is not None:
            err = 0.5 * (values[-1] - values[-2])
        else:
            err = np.full(value.shape, np.nan)
        if self.unit == "mas":
            dist, dist_err = parallax_to_distance(
                value, err, zero_point=zero_point_of(self.column, self.parallax_zero_point),
                min_over_error=self.min_parallax_over_error)
        else:
            scale = distance_pc_factor(self.unit) / 1000.0
            with np.errstate(invalid="ignore"):
                dist = np.where(value > 0, value * scale, np.nan)
                dist_err = np.where((value > 0) & (err >= 0), err * scale, np.nan)
        return np.column_stack([dist, dist_err])

    def get_feature_names_out(self, input_features=None):
        """Get the names of the two output columns.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored: the output columns do not depend on the input's names.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``["distance_kpc", "distance_kpc_err"]`` (kpc).
        """
        return np.asarray(DISTANCE_COLUMNS, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.requires_fit = False
        return tags


def distance_transformer(choice):
    """The :class:`DistanceTransformer` of a ``"distance"`` or ``"parallax"`` choice."""
    if choice.kind == "parallax":
        return DistanceTransformer(choice.column, unit="mas", error=choice.error,
                                   parallax_zero_point=choice.parallax_zero_point,
                                   min_parallax_over_error=choice.parallax_over_error)
    if choice.kind == "distance":
        return DistanceTransformer(choice.column, unit=choice.unit, error=choice.error,
                                   lo=choice.lo, hi=choice.hi)
    raise ValueError(f"a {choice.kind!r} source needs no DistanceTransformer")
