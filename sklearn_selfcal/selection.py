"""The paper's sample cuts (section 3) and the training filter (section 3.2) as boolean masks.

Every cut is a function of a table with named columns (a DataFrame, or any mapping of column name to
array) that returns one boolean per row; nothing is dropped or reordered, and the input is never
modified.  :func:`disk_sample_cuts` and :func:`bounds_cuts` return one boolean column per cut so that
:func:`cut_counts` can report how many stars each cut removes (alone and in sequence);
:func:`disk_sample_mask` and :func:`training_mask` return the combined mask.

Why masks and not a transformer that drops rows: a scikit-learn ``Pipeline`` passes every row of
``X`` (and of ``y`` and of any per-star metadata) from step to step, so a step that removed rows
would silently misalign them.  There are therefore two supported uses:

- select the analysis sample *before* the pipeline, ``frame[disk_sample_mask(frame)]`` (the paper's
  48,853-star disk sample is selected once, before anything is fitted);
- select the *training* stars *inside* an estimator, at fit time only: ``NuisanceCalibrator``'s
  ``training_filter`` takes the paper's bounds (``"paper"``, the default, i.e.
  :data:`PAPER_TRAINING_BOUNDS`), any mapping of column -> (low, high), or a callable returning a
  mask, such as :class:`DiskTrainingFilter` (the disk sample within the bounds, with parameters a
  Pipeline's ``set_params`` reaches), which the method's Pipeline uses; ``transform`` still returns
  a row for every input row.

Units: kpc for ``x``, ``z`` and ``R`` (Galactocentric, the paper's frame), km/s for ``v_z``,
kpc km/s for the actions, dex for ``LOGG``. The catalogue's own flags and duplicate rows
(:func:`quality_cuts`) live in :mod:`sklearn_selfcal.quality` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions

from ._paper import (DISK_VZ_MAX_KMS, DISK_WEDGE_ANGLE_DEG, DISK_Z_MAX_KPC, LOGG_MAX,
                     MAGNITUDE_COLUMNS, PAPER_TRAINING_BOUNDS)
from .cleaning import masked_to_nan
from .quality import (DUPLICATE_BIT, DUPLICATE_PRIORITY, STAR_BAD_BIT, duplicate_cut,
                      quality_cuts)
from ._validation import require_columns

__all__ = [
    "PAPER_TRAINING_BOUNDS",
    "STAR_BAD_BIT",
    "DUPLICATE_BIT",
    "DUPLICATE_PRIORITY",
    "duplicate_cut",
    "quality_cuts",
    "parent_sample_cuts",
    "gaia_training_cuts",
    "gaia_training_mask",
    "within_bounds",
    "bounds_cuts",
    "training_mask",
    "disk_sample_cuts",
    "disk_sample_mask",
    "DiskTrainingFilter",
    "cut_counts",
]



def within_bounds(values, low=None, high=None):
    """Test ``low < values < high`` elementwise (strict; ``None`` = unbounded; NaN is outside).

    Parameters
    ----------
    values : array-like of float
        The values to test, in the unit of the bounds.
    low, high : float or None, default=None
        Strict lower and upper bound; ``None`` leaves that side unbounded.

    Returns
    -------
    mask : ndarray of bool, same shape as ``values``
        True where the value lies strictly between the bounds; False for NaN.

    Examples
    --------
    >>> within_bounds([0.0, 0.5, float("nan"), 2.0, 3.0], low=0.0, high=2.0)
    array([False,  True, False, False, False])
    >>> within_bounds([-5.0, 5.0], high=2.0)
    array([ True, False])
    """
    values = np.asarray(values, dtype=float)
    mask = ~np.isnan(values)
    if low is not None:
        mask &= values > low
    if high is not None:
        mask &= values < high
    return mask


def _column(X, name):
    col = X[name]
    if isinstance(col, pd.Series):
        return col.to_numpy(dtype=float, na_value=np.nan)
    return np.asarray(col, dtype=float)


def _index(X):
    if isinstance(X, pd.DataFrame):
        return X.index
    first = next(iter(X.values()))
    return pd.RangeIndex(len(first))


def _columns_of(X):
    return list(X.columns) if isinstance(X, pd.DataFrame) else list(X.keys())


def _fmt(v):
    return f"{v:g}"


def _cuts_frame(cuts, conditions, index):
    out = pd.DataFrame(cuts, index=index)
    out.attrs["conditions"] = conditions
    return out


def parent_sample_cuts(X, *, logg_max=LOGG_MAX, magnitude_columns=(), has_spectrum=None):
    """The parent sample of paper section 3.1, one boolean column per cut (True = keep).

    - ``"logg"``: ``LOGG <= logg_max`` (dex): giants more luminous than the red clump;
    - ``"complete_photometry"`` (if ``magnitude_columns``): every magnitude finite;
    - ``"spectrum"`` (if ``has_spectrum`` is given): the star has a spectrum.

    Parameters
    ----------
    X : DataFrame or mapping of str -> array-like
        Catalogue with a ``LOGG`` column (dex) and the ``magnitude_columns``.
    logg_max : float, default=LOGG_MAX (2.2)
        Keep ``LOGG <= logg_max`` (dex).
    magnitude_columns : sequence of str, default=()
        The parallax model's magnitudes (mag); empty when no model is trained.
    has_spectrum : array-like of bool of shape (n_rows,), optional
        Whether each star has a spectrum; ``None`` (default) leaves the cut out.

    Returns
    -------
    cuts : DataFrame of bool
        One column per cut applied (``"logg"``, ``"complete_photometry"``, ``"spectrum"``), index
        of ``X``; ``attrs["conditions"]`` holds readable conditions for :func:`cut_counts`.

    Raises
    ------
    KeyError
        Naming the needed columns absent from ``X``.
    """
    require_columns(_columns_of(X), ["LOGG", *magnitude_columns], what="parent_sample_cuts")
    cuts = {"logg": _column(X, "LOGG") <= logg_max}
    conditions = {"logg": f"LOGG <= {_fmt(logg_max)}"}
    if len(magnitude_columns):
        cuts["complete_photometry"] = np.column_stack(
            [np.isfinite(_column(X, c)) for c in magnitude_columns]).all(axis=1)
        conditions["complete_photometry"] = "all of " + ", ".join(magnitude_columns) + " finite"
    if has_spectrum is not None:
        cuts["spectrum"] = np.asarray(has_spectrum, dtype=bool)
        conditions["spectrum"] = "a spectrum"
    return _cuts_frame(cuts, conditions, _index(X))


def gaia_training_cuts(X, *, min_parallax_over_error=None, min_visibility_periods=8,
                       chi2_factor=1.2, max_ruwe=None, magnitude_columns=MAGNITUDE_COLUMNS,
                       missing="error"):
    """Astrometric quality cuts of the parallax model's training stars, one boolean column each.

    - ``"finite_parallax"``: ``parallax`` finite and ``parallax_error`` finite and > 0 (mas).
      Negative parallaxes are kept: they carry information and removing them biases the model
      towards nearby stars (Hogg et al. 2019; section 5 of the paper).
    - ``"parallax_over_error"`` (only if ``min_parallax_over_error`` is given):
      ``parallax / parallax_error > min_parallax_over_error``. Off by default: the model needs no
      parallax signal-to-noise cut, and such a cut biases the training set.
    - ``"visibility_periods"``: ``visibility_periods_used >= min_visibility_periods`` (8 in
      Lindegren et al. 2018).
    - ``"astrometric_chi2"``: the unit-weight-error cut of Lindegren et al. (2018, eq. C.1),
      ``sqrt(astrometric_chi2_al / (astrometric_n_good_obs_al - 5)) < chi2_factor *
      max(1, exp(-0.2 (phot_g_mean_mag - 19.5)))``.
    - ``"ruwe"`` (only if ``max_ruwe`` is given): ``ruwe < max_ruwe``.
    - ``"complete_photometry"`` (if ``magnitude_columns``): every magnitude finite.

    Parameters
    ----------
    X : DataFrame
        Catalogue with the Gaia columns named above (Gaia archive spelling).
    min_parallax_over_error : float, optional
        Minimum parallax signal-to-noise ratio (dimensionless); ``None`` (default) applies no such
        cut.
    min_visibility_periods : int, default=8
        Minimum ``visibility_periods_used``.
    chi2_factor : float, default=1.2
        Factor of the unit-weight-error threshold (dimensionless).
    max_ruwe : float, optional
        Maximum renormalised unit weight error (dimensionless); ``None`` (default) applies no RUWE
        cut.
    magnitude_columns : sequence of str, default=MAGNITUDE_COLUMNS
        Magnitudes (mag) that must be finite (the paper's complete photometry); ``()`` for none.
    missing : {"error", "skip"}, default="error"
        A cut whose columns are absent raises a ``KeyError`` naming them, or (``"skip"``; APOGEE
        allStar files ship no visibility periods nor chi-square) is left out and listed in
        ``cuts.attrs["skipped"]``.

    Returns
    -------
    cuts : DataFrame of bool
        Index of ``X``; ``attrs["conditions"]`` for :func:`cut_counts`, ``attrs["skipped"]``.
    """
    names = set(_columns_of(X))
    require_columns(names, ["parallax", "parallax_error", *magnitude_columns],
                    what="gaia_training_cuts")

    def col(name):
        return masked_to_nan(X[name])[0]

    wanted = {
        "visibility_periods": ["visibility_periods_used"],
        "astrometric_chi2": ["astrometric_chi2_al", "astrometric_n_good_obs_al", "phot_g_mean_mag"],
        "ruwe": ["ruwe"] if max_ruwe is not None else [],
    }
    skipped = []
    for cut, needed in wanted.items():
        absent = [c for c in needed if c not in names]
        if absent and missing == "error":
            raise KeyError(f"gaia_training_cuts: missing column(s) {absent} for the {cut!r} cut "
                           "(pass missing='skip' to leave it out)")
        if absent:
            skipped.append(f"{cut} (no {', '.join(absent)})")
    plx, plx_err = col("parallax"), col("parallax_error")
    cuts, conditions = {}, {}
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        cuts["finite_parallax"] = np.isfinite(plx) & np.isfinite(plx_err) & (plx_err > 0)
        conditions["finite_parallax"] = "parallax finite, parallax_error finite and > 0"
        if min_parallax_over_error is not None:
            cuts["parallax_over_error"] = plx / plx_err > min_parallax_over_error
            conditions["parallax_over_error"] = (
                f"parallax/parallax_error > {_fmt(min_parallax_over_error)}")
        if "visibility_periods_used" in names:
            cuts["visibility_periods"] = col("visibility_periods_used") >= min_visibility_periods
            conditions["visibility_periods"] = f"visibility_periods_used >= {min_visibility_periods}"
        if {"astrometric_chi2_al", "astrometric_n_good_obs_al", "phot_g_mean_mag"} <= names:
            uwe = np.sqrt(col("astrometric_chi2_al") / (col("astrometric_n_good_obs_al") - 5.0))
            g = col("phot_g_mean_mag")
            cuts["astrometric_chi2"] = uwe < chi2_factor * np.maximum(1.0, np.exp(-0.2 * (g - 19.5)))
            conditions["astrometric_chi2"] = (
                "sqrt(astrometric_chi2_al/(astrometric_n_good_obs_al-5)) "
                f"< {_fmt(chi2_factor)} max(1, exp(-0.2 (G - 19.5)))")
        if max_ruwe is not None and "ruwe" in names:
            cuts["ruwe"] = col("ruwe") < max_ruwe
            conditions["ruwe"] = f"ruwe < {_fmt(max_ruwe)}"
        if len(magnitude_columns):
            cuts["complete_photometry"] = np.column_stack(
                [np.isfinite(col(c)) for c in magnitude_columns]).all(axis=1)
            conditions["complete_photometry"] = "all of " + ", ".join(magnitude_columns) + " finite"
    out = _cuts_frame(cuts, conditions, _index(X))
    out.attrs["skipped"] = skipped
    return out


def gaia_training_mask(X, **kwargs):
    """Select the stars passing every cut of :func:`gaia_training_cuts`.

    Parameters
    ----------
    X : DataFrame
        Catalogue with the Gaia columns (Gaia archive spelling); see :func:`gaia_training_cuts`.
    **kwargs
        Keyword arguments of :func:`gaia_training_cuts` (thresholds, ``magnitude_columns``,
        ``missing``).

    Returns
    -------
    mask : ndarray of bool of shape (n_stars,)
        True for the stars that pass every cut.
    """
    return gaia_training_cuts(X, **kwargs).to_numpy().all(axis=1)


def bounds_cuts(X, bounds=PAPER_TRAINING_BOUNDS):
    """One boolean column per bounded column: ``low < X[column] < high``.

    The one place bounds are applied: :func:`training_mask`, :class:`DiskTrainingFilter` and the
    calibrator's ``training_filter`` (:data:`PAPER_TRAINING_BOUNDS` or a mapping) go through it.

    Parameters
    ----------
    X : DataFrame or mapping of str -> array-like
        Table holding the bounded columns (units as in ``bounds``).
    bounds : mapping of str -> (float or None, float or None), default PAPER_TRAINING_BOUNDS
        Strict lower and upper bound per column, ``None`` for unbounded.

    Returns
    -------
    cuts : DataFrame of bool, shape (n_rows, len(bounds))
        Columns named as the bounded columns, index of ``X``; ``cuts.attrs["conditions"]`` maps each
        to a readable condition such as ``"0 < J_R < 400"``.

    Raises
    ------
    KeyError
        Naming the bounded columns absent from ``X``.
    ValueError
        Naming a column whose bounds are not a pair.
    """
    require_columns(_columns_of(X), list(bounds), what="bounds_cuts")
    cuts, conditions = {}, {}
    for name, pair in bounds.items():
        try:
            low, high = pair
        except (TypeError, ValueError):
            raise ValueError(f"bounds[{name!r}] must be a pair (low, high), got {pair!r}") from None
        cuts[name] = within_bounds(_column(X, name), low, high)
        conditions[name] = " ".join(
            ([_fmt(low), "<"] if low is not None else []) + [str(name)]
            + (["<", _fmt(high)] if high is not None else [])
        )
    out = pd.DataFrame(cuts, index=_index(X))
    out.attrs["conditions"] = conditions
    return out


def training_mask(X, bounds=PAPER_TRAINING_BOUNDS):
    """Select the stars inside all ``bounds`` (default: the paper's training filter).

    Parameters
    ----------
    X : DataFrame or mapping of str -> array-like
        Table holding the bounded columns (for the paper's bounds: actions in kpc km/s, ``LOGG``
        in dex).
    bounds : mapping of str -> (low, high), default PAPER_TRAINING_BOUNDS
        Strict lower and upper bound per column, ``None`` for unbounded; see :func:`bounds_cuts`.

    Returns
    -------
    mask : ndarray of bool, shape (n_rows,)
        True for the rows strictly inside every bound; NaN is outside.
    """
    return bounds_cuts(X, bounds).to_numpy().all(axis=1)


def disk_sample_cuts(X, *, z_max=DISK_Z_MAX_KPC, wedge_angle=DISK_WEDGE_ANGLE_DEG,
                     vz_max=DISK_VZ_MAX_KMS, logg_max=LOGG_MAX,
                     exclude_ids=None, z_column="z", R_column="R", vz_column="v_z",
                     logg_column="LOGG", id_column="APOGEE_ID"):
    """The paper's disk-sample cuts (section 3), one boolean column per cut.

    Parameters
    ----------
    X : DataFrame or mapping of str -> array-like
        Needs ``z_column`` and ``R_column`` (Galactocentric height and cylindrical radius, kpc),
        ``vz_column`` (km/s), ``logg_column`` (dex) and, when ``exclude_ids`` is given, ``id_column``.
    z_max : float, default 1.0
        Disk cut: keep ``|z| <= z_max`` (kpc) ...
    wedge_angle : float, default 6.0
        ... or inside the wedge ``|z| <= R tan(wedge_angle)`` opening from the Galactic centre
        (degrees), which follows the flaring outer disk.  ``None`` disables the wedge.
    vz_max : float, default 100.0
        Keep ``|v_z| < vz_max`` (km/s) to remove halo stars.  The paper writes ``v_z < 100``; the cut
        is applied to the absolute value here.
    logg_max : float, default 2.2
        Keep ``LOGG <= logg_max`` (dex): giants more luminous than the red clump.
    exclude_ids : iterable of str, optional
        IDs to remove (the paper removes 77 omega Cen members).  Compared after stripping
        surrounding blanks, since FITS string columns are blank-padded.
    z_column, R_column, vz_column, logg_column, id_column : str
        Column names (defaults: the names ``ActionTransformer`` and APOGEE allStar use).

    Returns
    -------
    cuts : DataFrame of bool
        Columns ``"disk"``, ``"v_z"``, ``"logg"`` and, when ``exclude_ids`` is given,
        ``"exclude_ids"``; index of ``X``.  Any NaN input fails its cut.
        ``cuts.attrs["conditions"]`` holds readable conditions.

    Raises
    ------
    KeyError
        Naming the needed columns absent from ``X``.
    """
    needed = [z_column, R_column, vz_column, logg_column]
    if exclude_ids is not None:
        needed.append(id_column)
    require_columns(_columns_of(X), needed, what="disk_sample_cuts")
    z = np.abs(_column(X, z_column))
    disk = z <= z_max
    disk_cond = f"|{z_column}| <= {_fmt(z_max)} kpc"
    if wedge_angle is not None:
        R = _column(X, R_column)
        disk |= z <= R * np.tan(np.deg2rad(wedge_angle))
        disk_cond += f" or |{z_column}| <= {R_column} tan({_fmt(wedge_angle)} deg)"
    cuts = {
        "disk": disk,
        "v_z": np.abs(_column(X, vz_column)) < vz_max,
        "logg": _column(X, logg_column) <= logg_max,
    }
    conditions = {
        "disk": disk_cond,
        "v_z": f"|{vz_column}| < {_fmt(vz_max)} km/s",
        "logg": f"{logg_column} <= {_fmt(logg_max)}",
    }
    if exclude_ids is not None:
        excluded = {str(i).strip() for i in exclude_ids}
        ids = pd.Series(np.asarray(X[id_column], dtype=object)).astype(str).str.strip()
        cuts["exclude_ids"] = ~ids.isin(excluded).to_numpy()
        conditions["exclude_ids"] = f"{id_column} not among {len(excluded)} excluded IDs"
    out = pd.DataFrame(cuts, index=_index(X))
    out.attrs["conditions"] = conditions
    return out


def disk_sample_mask(X, **kwargs):
    """Select the stars passing every cut of :func:`disk_sample_cuts`.

    Parameters
    ----------
    X : DataFrame or mapping of str -> array-like
        Table with the Galactocentric ``z`` and ``R`` (kpc), ``v_z`` (km/s) and ``LOGG`` (dex)
        columns; see :func:`disk_sample_cuts`.
    **kwargs
        Keyword arguments of :func:`disk_sample_cuts` (thresholds, ``exclude_ids``, column names).

    Returns
    -------
    mask : ndarray of bool, shape (n_rows,)
        True for the stars of the disk sample.
    """
    return disk_sample_cuts(X, **kwargs).to_numpy().all(axis=1)


def cut_counts(*cuts):
    """How many rows each cut keeps and removes, alone and applied in column order.

    Parameters
    ----------
    *cuts : DataFrame of bool
        One or more outputs of :func:`disk_sample_cuts` or :func:`bounds_cuts` (aligned rows), e.g.
        ``cut_counts(disk_sample_cuts(frame), bounds_cuts(frame))``; applied in the order given.

    Returns
    -------
    counts : DataFrame
        Indexed by cut, with columns ``condition``, ``n_pass`` and ``n_fail`` (the cut alone),
        ``n_removed`` (rows this cut removes after the previous ones) and ``n_remaining``
        (rows left after this and all previous cuts).  A last row ``"all"`` gives the total.
    """
    conditions = {}
    for c in cuts:
        conditions.update(c.attrs.get("conditions", {}))
    cuts = pd.concat(cuts, axis=1)
    if cuts.columns.duplicated().any():
        raise ValueError(f"cut names must be unique, got {list(cuts.columns)}")
    values = cuts.to_numpy(dtype=bool)
    n = values.shape[0]
    rows, remaining = [], np.ones(n, dtype=bool)
    for j, name in enumerate(cuts.columns):
        before = int(remaining.sum())
        remaining &= values[:, j]
        rows.append({
            "cut": name, "condition": conditions.get(name, name),
            "n_pass": int(values[:, j].sum()), "n_fail": int(n - values[:, j].sum()),
            "n_removed": before - int(remaining.sum()), "n_remaining": int(remaining.sum()),
        })
    rows.append({"cut": "all", "condition": "all cuts", "n_pass": int(remaining.sum()),
                 "n_fail": int(n - remaining.sum()), "n_removed": int(n - remaining.sum()),
                 "n_remaining": int(remaining.sum())})
    return pd.DataFrame(rows).set_index("cut")


class DiskTrainingFilter(BaseEstimator):
    """The calibration's training stars as a parametrised filter: the disk sample within bounds.

    A callable with parameters (``get_params``/``set_params``, validated by
    ``_parameter_constraints``), so that a Pipeline's ``set_params`` reaches its thresholds, e.g.
    ``pipe.set_params(calibrate__calibrator__training_filter__z_max=0.5)``, and the configuration's
    ``[disk]`` section is nothing but those parameters. ``filter(X)`` is True for the stars of the
    disk sample (:func:`disk_sample_cuts`) strictly inside ``bounds`` (:func:`training_mask`) and,
    with ``max_actions_rel_err``, whose actions are accurate to that fraction
    (``actions_rel_err``); :meth:`disk_cuts` gives the disk sample's cuts alone, with the same
    thresholds, for the run's profiles and maps.

    Parameters
    ----------
    logg_max : float, default=2.2
        Keep ``LOGG <= logg_max`` (dex).
    z_max : float, default=1.0
        Keep ``|z| <= z_max`` (kpc) ...
    wedge_angle : float or None, default=6.0
        ... or ``|z| <= R tan(wedge_angle)`` (deg); None: no wedge.
    vz_max : float, default=100.0
        Keep ``|v_z| < vz_max`` (km/s).
    exclude_ids : sequence of str or None, default=None
        ``APOGEE_ID`` values left out (the paper's omega Cen members); None or empty: none.
    bounds : "paper" or mapping of str -> (low, high), default="paper"
        Strict bounds of the training stars (actions in kpc km/s, ``x`` in kpc); ``"paper"`` is
        :data:`PAPER_TRAINING_BOUNDS`.
    max_actions_rel_err : float or None, default=None
        Also require ``actions_rel_err <= max_actions_rel_err`` (fractional); None: no such cut.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"z": [0.1, 3.0], "R": [8.0, 8.0], "v_z": [5.0, 5.0], "LOGG": [2.0, 2.0],
    ...                   "J_R": [10.0, 10.0], "L_z": [-2000.0, -2000.0], "J_z": [5.0, 5.0],
    ...                   "x": [-8.0, -8.0]})
    >>> DiskTrainingFilter()(X).tolist(), DiskTrainingFilter(z_max=5.0, wedge_angle=None)(X).tolist()
    ([True, False], [True, True])
    """

    _parameter_constraints = {
        "logg_max": [Real],
        "z_max": [Interval(Real, 0, None, closed="left")],
        "wedge_angle": [Interval(Real, 0, 90, closed="left"), None],
        "vz_max": [Interval(Real, 0, None, closed="neither")],
        "exclude_ids": ["array-like", None],
        "bounds": [StrOptions({"paper"}), Mapping],
        "max_actions_rel_err": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(self, *, logg_max=LOGG_MAX, z_max=DISK_Z_MAX_KPC, wedge_angle=DISK_WEDGE_ANGLE_DEG,
                 vz_max=DISK_VZ_MAX_KMS, exclude_ids=None, bounds="paper",
                 max_actions_rel_err=None):
        self.logg_max = logg_max
        self.z_max = z_max
        self.wedge_angle = wedge_angle
        self.vz_max = vz_max
        self.exclude_ids = exclude_ids
        self.bounds = bounds
        self.max_actions_rel_err = max_actions_rel_err

    @property
    def training_bounds(self):
        """The strict bounds of the training stars (mapping of column -> (low, high))."""
        return PAPER_TRAINING_BOUNDS if isinstance(self.bounds, str) else self.bounds

    def disk_cuts(self, X):
        """The disk sample's cuts of ``X`` (:func:`disk_sample_cuts` with these thresholds).

        Parameters
        ----------
        X : DataFrame or mapping of str -> array-like
            ``z``, ``R`` (kpc), ``v_z`` (km/s), ``LOGG`` (dex) and ``APOGEE_ID`` when
            ``exclude_ids`` is set.

        Returns
        -------
        cuts : DataFrame of bool
            One column per cut, index of ``X``.
        """
        self._validate_params()
        return disk_sample_cuts(X, z_max=self.z_max, wedge_angle=self.wedge_angle,
                                vz_max=self.vz_max, logg_max=self.logg_max,
                                exclude_ids=(list(self.exclude_ids) or None)
                                if self.exclude_ids is not None else None)

    def __call__(self, X):
        """The training stars of ``X``.

        Parameters
        ----------
        X : DataFrame or mapping of str -> array-like
            The columns of :meth:`disk_cuts`, the bounded columns and, with
            ``max_actions_rel_err``, ``actions_rel_err``.

        Returns
        -------
        mask : ndarray of bool of shape (n_rows,)
            True for the training stars.
        """
        mask = self.disk_cuts(X).to_numpy().all(axis=1) & training_mask(X, self.training_bounds)
        if self.max_actions_rel_err is not None:
            require_columns(_columns_of(X), ["actions_rel_err"], what="DiskTrainingFilter")
            with np.errstate(invalid="ignore"):
                mask &= _column(X, "actions_rel_err") <= self.max_actions_rel_err
        return mask
