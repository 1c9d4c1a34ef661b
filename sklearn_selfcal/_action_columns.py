"""Reading :class:`~sklearn_selfcal.ActionTransformer`'s input: columns by role, unit guard.

The estimator (:mod:`sklearn_selfcal.actions`) validates its parameters and dispatches the work;
this module turns a catalogue (DataFrame, astropy Table, array, masked array) into one float array
per role (``ra, dec, dist, pmra, pmdec, rv`` and the uncertainties), with every value that cannot
be physical set to NaN with a warning naming its column, and refuses columns in the wrong units.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_array

from ._paper import parallax_to_distance
from ._validation import clean_column, require_columns
from .cleaning import clean_values
from .columns import get_role

__all__ = ["DISTANCE_RANGE_KPC", "MAX_MEDIAN_SPEED_KMS", "check_combinations", "resolve_roles",
           "extract", "physical_values", "check_units", "velocity_kms"]

#: The unit guard accepts samples whose median heliocentric distance lies in this range (kpc).
DISTANCE_RANGE_KPC = (0.01, 100.0)
#: ... and whose median |line-of-sight| and tangential velocities are below this (km/s).
MAX_MEDIAN_SPEED_KMS = 1000.0
#: Tangential velocity (km/s) of 1 mas/yr at 1 kpc.
_K_MASYR_KPC = 4.740470463533348

#: Which role of :data:`sklearn_selfcal.columns.ROLES` (physical range, sentinels) each input of
#: a DataFrame plays; a distance column in kpc has no role (only the generic sentinels apply).
_COLUMN_ROLES = {"ra": "ra", "dec": "dec", "dist": "parallax", "pmra": "pmra", "pmdec": "pmdec",
                 "rv": "radial_velocity", "dist_err": "parallax_error", "pmra_err": "pmra_error",
                 "pmdec_err": "pmdec_error", "rv_err": "radial_velocity_error",
                 "pm_corr": "pm_correlation"}


def velocity_kms(v):
    """A velocity (km/s) from 3 numbers or an astropy ``CartesianDifferential``.

    Parameters
    ----------
    v : tuple of 3 float or astropy.coordinates.CartesianDifferential
        Velocity (km/s when plain numbers).

    Returns
    -------
    v : ndarray
        The components (km/s).
    """
    import astropy.coordinates as coord
    import astropy.units as u

    if isinstance(v, coord.CartesianDifferential):
        return v.d_xyz.to_value(u.km / u.s)
    return np.asarray(v, dtype=float)


def _is_velocity(v):
    try:
        values = velocity_kms(v)
    except (TypeError, ValueError, AttributeError):
        return False
    return values.shape == (3,) and bool(np.all(np.isfinite(values)))


def check_combinations(est):
    """What the parameter constraints cannot express: values of ``v_sun``, column pairs.

    Parameters
    ----------
    est : ActionTransformer
        The estimator whose parameters are checked.
    """
    if not _is_velocity(est.v_sun):
        raise ValueError(
            f"v_sun must be 3 finite numbers (km/s) or a CartesianDifferential, got {est.v_sun!r}"
        )
    if est.distance is not None and not (isinstance(est.parallax, str) and est.parallax == "auto"):
        raise ValueError(
            f"give either parallax={est.parallax!r} or distance={est.distance!r}, not both"
        )
    if est.distance is None and est.parallax is None:
        raise ValueError("give a parallax column (or 'auto') or a distance column")


def resolve_roles(est, names):
    """Map each role (ra, dec, dist, ...) to a column name or position, resolving 'auto'.

    Parameters
    ----------
    est : ActionTransformer
    names : list of str or None
        The input's column names (None: no string column names).

    Returns
    -------
    roles : dict of str to str or int
    """
    uses_distance = est.distance is not None
    if uses_distance:
        dist = est.distance
    elif isinstance(est.parallax, str) and est.parallax == "auto":
        dist = "spec_parallax" if names is not None and "spec_parallax" in names else "parallax"
    else:
        dist = est.parallax
    roles = {"ra": est.ra, "dec": est.dec, "dist": dist, "pmra": est.pmra,
             "pmdec": est.pmdec, "rv": est.radial_velocity}
    if est.n_samples > 0:
        rule = est.distance_error if uses_distance else est.parallax_error
        if isinstance(rule, str) and rule == "auto":
            if isinstance(dist, numbers.Integral):
                raise ValueError(
                    "the 'auto' uncertainty column needs a named parallax/distance column; "
                    "give parallax_error (or distance_error) as a column name or position"
                )
            rule = (f"{dist}_err" if names is not None and f"{dist}_err" in names
                    else f"{dist}_error")
        roles.update({"dist_err": rule, "pmra_err": est.pmra_error,
                      "pmdec_err": est.pmdec_error, "rv_err": est.radial_velocity_error})
        if est.pm_correlation is not None:
            roles["pm_corr"] = est.pm_correlation
    return roles




def extract(est, X):
    """Columns by role as float arrays.

    String parameters are column names of a DataFrame; for input without string column names
    they stand for the documented default position of their role. Integer parameters are
    column positions in either case.

    Parameters
    ----------
    est : ActionTransformer
    X : DataFrame or array-like
        The catalogue (masked entries already NaN, see :func:`~sklearn_selfcal._validation.unmask`).

    Returns
    -------
    data : dict of str to ndarray
        One array per role.
    roles : dict of str to str or int
        The column of each role.
    """
    names = None
    if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns):
        names = list(X.columns)
    roles = resolve_roles(est, names)
    by_name = {r: c for r, c in roles.items() if not isinstance(c, numbers.Integral)}
    if names is not None:
        require_columns(names, list(by_name.values()), what="ActionTransformer")
    else:
        X = check_array(X, dtype=np.float64, ensure_all_finite=False)
        needed = len(roles)
        if by_name and X.shape[1] < needed:
            raise ValueError(
                f"ActionTransformer: input without column names is read by position and must "
                f"hold the columns {list(roles)} in this order ({needed} columns); got "
                f"{X.shape[1]} column(s). Pass a DataFrame or integer column parameters."
            )
    positions = {r: i for i, r in enumerate(roles)}
    data = {}
    for role, col in roles.items():
        where = col if isinstance(col, numbers.Integral) else positions[role]
        if names is not None and not isinstance(col, numbers.Integral):
            values = X[col]
        elif isinstance(X, pd.DataFrame):
            values = X.iloc[:, where]
        else:
            if not -X.shape[1] <= where < X.shape[1]:
                raise ValueError(f"column position {where} ({role}) out of range for "
                                 f"{X.shape[1]} column(s)")
            values = X[:, where]
        if names is not None:
            # a catalogue's sentinels are NaN (warned), never numbers; the physical ranges
            # are applied after the unit check (physical_values)
            data[role] = clean_column(values, col, what="ActionTransformer", ranges=False,
                                      role=get_role(_COLUMN_ROLES[role])
                                      if role in _COLUMN_ROLES else None, stacklevel=5)
            continue
        try:
            data[role] = (values.to_numpy(dtype=float, na_value=np.nan)
                          if isinstance(values, pd.Series) else np.asarray(values, dtype=float))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"column {col!r} ({role}) must be numeric: {exc}") from exc
    return data, roles


def physical_values(data, roles, is_parallax):
    """Values outside their role's physical range (dec beyond 90 deg, |v| > 1000 km/s, ...)
    become NaN with a warning naming the column; a distance in kpc has no range.

    Parameters
    ----------
    data : dict of str to ndarray
        From :func:`extract`.
    roles : dict of str to str or int
        The column of each role.
    is_parallax : bool
        Whether ``dist`` is a parallax (mas) rather than a distance (kpc).

    Returns
    -------
    data : dict of str to ndarray
        New arrays where a value was set to NaN.
    """
    out = {}
    for key, values in data.items():
        kind = _COLUMN_ROLES.get(key)
        if key in ("dist", "dist_err") and not is_parallax:
            kind = None
        out[key] = clean_values(values, str(roles[key]), get_role(kind), stacklevel=6)[0] \
            if kind else values
    return out


def check_units(data, roles, is_parallax):
    """Raise a ``ValueError`` naming the column if the sample's typical values are in wrong units.

    Parameters
    ----------
    data : dict of str to ndarray
        From :func:`extract`.
    roles : dict of str to str or int
        The column of each role.
    is_parallax : bool
        Whether ``dist`` is a parallax (mas) rather than a distance (kpc).
    """
    # the column's own units, before any zero point: a parallax in arcsec shifted by -0.017 mas
    # would look like a distant sample in mas
    d = parallax_to_distance(data["dist"], zero_point=0.0) if is_parallax else data["dist"]
    ok = np.isfinite(d) & (d > 0)
    if not ok.any():
        return
    median_d = float(np.median(d[ok]))
    lo, hi = DISTANCE_RANGE_KPC
    if not lo <= median_d <= hi:
        unit = "mas (not arcsec or micro-arcsec)" if is_parallax else "kpc (not pc)"
        raise ValueError(
            f"column {roles['dist']!r} gives a median heliocentric distance of {median_d:.4g} "
            f"kpc, outside the plausible {lo}-{hi} kpc: is it in {unit}? (check_units=False "
            "disables this check)"
        )
    rv = np.abs(data["rv"][np.isfinite(data["rv"])])
    if rv.size and np.median(rv) > MAX_MEDIAN_SPEED_KMS:
        raise ValueError(
            f"column {roles['rv']!r} has a median |line-of-sight velocity| of "
            f"{np.median(rv):.4g} km/s: is it in km/s (not m/s)? (check_units=False disables "
            "this check)"
        )
    v_tan = _K_MASYR_KPC * np.hypot(data["pmra"], data["pmdec"]) * np.where(ok, d, np.nan)
    v_tan = v_tan[np.isfinite(v_tan)]
    if v_tan.size and np.median(v_tan) > MAX_MEDIAN_SPEED_KMS:
        raise ValueError(
            f"columns {roles['pmra']!r}, {roles['pmdec']!r} give a median tangential velocity "
            f"of {np.median(v_tan):.4g} km/s: are they in mas/yr? (check_units=False disables "
            "this check)"
        )
