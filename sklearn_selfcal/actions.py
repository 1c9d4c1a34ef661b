"""Galactocentric phase space and orbital actions of stars (paper sections 3.1 and 3.2).

:class:`ActionTransformer` turns the observed columns of a catalogue (sky position, parallax or
distance, proper motions, line-of-sight velocity) into Galactocentric Cartesian and cylindrical
phase space, the orbital actions ``J_R, L_z, J_z`` by the Staeckel fudge and the orbital energy
``E``. The numerics live in :mod:`sklearn_selfcal.coordinates` and
:mod:`sklearn_selfcal._kernels.staeckel`; this module validates the input and dispatches chunks
of stars to (parallel) workers.
"""

from __future__ import annotations

import functools
import numbers
import warnings
from dataclasses import dataclass

import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, validate_data

from ._kernels.staeckel import (
    DEFAULT_DELTA_KPC,
    cached_staeckel,
    estimate_delta,
    orbital_energy,
    staeckel_actions,
)
from ._progress import progress
from ._validation import require_columns
from .coordinates import (
    R0_KPC,
    V_SUN_KMS,
    Z_SUN_KPC,
    cylindrical_from_cartesian,
    galactocentric_frame,
    icrs_to_galactocentric,
)
from .potential import check_axisymmetric, default_potential

__all__ = ["OUTPUT_COLUMNS", "ActionTransformer", "BadRowsWarning"]

#: Output columns of :class:`ActionTransformer`, in order (kpc, km/s, rad, kpc km/s, km^2/s^2).
OUTPUT_COLUMNS = ("x", "y", "z", "v_x", "v_y", "v_z", "R", "phi", "v_R", "v_phi",
                  "J_R", "L_z", "J_z", "E")
_ACTIONS = [OUTPUT_COLUMNS.index(c) for c in ("J_R", "L_z", "J_z")]
_PHI = OUTPUT_COLUMNS.index("phi")

#: Stars closer to the Galactic z axis than this get NaN actions (kpc).
MIN_R_KPC = 0.1
#: The unit guard accepts samples whose median heliocentric distance lies in this range (kpc).
DISTANCE_RANGE_KPC = (0.01, 100.0)
#: ... and whose median |line-of-sight| and tangential velocities are below this (km/s).
MAX_MEDIAN_SPEED_KMS = 1000.0
#: Tangential velocity (km/s) of 1 mas/yr at 1 kpc.
_K_MASYR_KPC = 4.740470463533348

# Row status codes (0 = good); the messages of the single warning ``transform`` emits.
_REASONS = {
    1: "non-finite input or |dec| > 90 deg",
    2: "non-positive parallax or distance",
    3: f"R < {MIN_R_KPC} kpc",
    4: "unbound orbit (E >= 0)",
    5: "Staeckel action finder failed",
}
_ERR_REASONS = {
    1: "non-finite or negative uncertainty (no *_err)",
    2: "fewer than half of the Monte Carlo samples valid (*_err set to NaN)",
}


class BadRowsWarning(UserWarning):
    """Some rows got NaN actions (bad input, unbound or near-axis orbits); no row was dropped."""


@dataclass(frozen=True)
class _Settings:
    """Everything a chunk worker needs; picklable, so any joblib backend can ship it."""

    r0: float
    z_sun: float
    v_sun: tuple
    potential: object
    potential_key: str
    delta: float
    is_parallax: bool
    parallax_zero_point: float
    n_samples: int


def _distance_kpc(values, settings):
    """Heliocentric distance (kpc) from the parallax (mas) or distance (kpc) column; NaN if <= 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d = 1.0 / (values - settings.parallax_zero_point) if settings.is_parallax else values.copy()
    d[~(d > 0) | ~np.isfinite(d)] = np.nan
    return d


def _evaluate(obs, settings, frame):
    """Phase space, energy and actions of the rows of ``obs`` (n, 6); returns (out (n, 14), status)."""
    ra, dec, dist_col, pmra, pmdec, rv = obs.T
    status = np.zeros(obs.shape[0], dtype=np.int8)
    bad_dec = ~(np.abs(dec) <= 90.0)
    status[~np.all(np.isfinite(obs), axis=1) | bad_dec] = 1
    dec = np.where(bad_dec, np.nan, dec)
    distance = _distance_kpc(dist_col, settings)
    status[(status == 0) & np.isnan(distance)] = 2

    xyz, vxyz = icrs_to_galactocentric(ra, dec, distance, pmra, pmdec, rv, frame=frame)
    R, phi, v_R, v_phi, L_z = cylindrical_from_cartesian(xyz, vxyz)
    E = np.full(obs.shape[0], np.nan)
    finite = np.all(np.isfinite(xyz), axis=0) & np.all(np.isfinite(vxyz), axis=0)
    E[finite] = orbital_energy(settings.potential, xyz[:, finite], vxyz[:, finite])
    status[(status == 0) & (R < MIN_R_KPC)] = 3
    status[(status == 0) & ~(E < 0)] = 4

    J_R = np.full(obs.shape[0], np.nan)
    J_z = np.full(obs.shape[0], np.nan)
    good = status == 0
    if good.any():
        finder = cached_staeckel(settings.potential, settings.delta, settings.potential_key)
        J_R[good], J_z[good] = staeckel_actions(finder, R[good], xyz[2, good], v_R[good],
                                                v_phi[good], vxyz[2, good])
    status[(status == 0) & ~(np.isfinite(J_R) & np.isfinite(J_z))] = 5
    L_z_out = np.where(status == 0, L_z, np.nan)
    J_R[status != 0] = np.nan
    J_z[status != 0] = np.nan
    out = np.column_stack([xyz[0], xyz[1], xyz[2], vxyz[0], vxyz[1], vxyz[2],
                           R, phi, v_R, v_phi, J_R, L_z_out, J_z, E])
    return out, status


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x):
    """The splitmix64 mixing function on uint64 arrays (wrapping arithmetic)."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _row_normals(rows, seed, n_samples):
    """Standard normal draws of shape (n_samples, n, 4) that depend only on each row and ``seed``.

    Each row's values (its bits) and the seed are hashed with splitmix64 into a key; uniforms are
    hashes of the key with the sample and dimension index, turned into normals by Box-Muller. A
    star therefore gets the same draws whatever the chunking, row order, subset, ``n_jobs`` or
    backend, which keeps ``transform`` invariant to all of them.
    """
    with np.errstate(over="ignore"):
        key = np.full(rows.shape[0], np.uint64(seed))
        for column in np.ascontiguousarray(rows, dtype=np.float64).T:
            key = _splitmix64(key ^ np.ascontiguousarray(column).view(np.uint64))
        counter = np.arange(1, 4 * n_samples + 1, dtype=np.uint64).reshape(n_samples, 1, 4)
        bits = _splitmix64(key[None, :, None] ^ (counter * _GOLDEN))
    u = ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53  # uniform in (0, 1)
    radius = np.sqrt(-2.0 * np.log(u[..., 0::2]))
    angle = 2.0 * np.pi * u[..., 1::2]
    return np.concatenate([radius * np.cos(angle), radius * np.sin(angle)], axis=-1)


def _draw_samples(obs, err, corr, n_samples, seed):
    """Monte Carlo copies of ``obs`` (n, 6) with Gaussian errors; returns (n_samples * n, 6)."""
    n = obs.shape[0]
    rows = obs if corr is None else np.column_stack([obs, corr])
    noise = _row_normals(np.column_stack([rows, err]), seed, n_samples)
    if corr is not None:  # correlated proper motions: Cholesky factor of [[1, rho], [rho, 1]]
        rho = np.clip(np.nan_to_num(corr), -1.0, 1.0)
        noise[..., 2] = rho * noise[..., 1] + np.sqrt(1.0 - rho**2) * noise[..., 2]
    samples = np.broadcast_to(obs, (n_samples, n, 6)).copy()
    samples[..., 2:] += noise * err
    return samples.reshape(n_samples * n, 6)


def _robust_std(samples, nominal, min_valid):
    """Half the 16-84 percentile range over axis 0 of (n_samples, n, k), NaN-aware."""
    samples = samples.copy()
    # phi wraps at +-pi: measure the scatter of the angular offset from the nominal azimuth
    samples[..., _PHI] = np.angle(np.exp(1j * (samples[..., _PHI] - nominal[:, _PHI])))
    n_valid = np.sum(np.isfinite(samples), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        lo, hi = np.nanpercentile(samples, [16.0, 84.0], axis=0)
    std = 0.5 * (hi - lo)
    std[(n_valid < min_valid) | np.isnan(nominal)] = np.nan
    return std, n_valid


def _transform_chunk(obs, err, corr, settings, seed):
    """Worker: outputs, their Monte Carlo uncertainties and row status codes for one chunk.

    A top-level function of picklable arguments, so it runs under any joblib backend; the galpy
    action finder is rebuilt once per worker process and cached.
    """
    frame = galactocentric_frame(settings.r0, settings.z_sun, settings.v_sun)
    out, status = _evaluate(obs, settings, frame)
    if settings.n_samples == 0:
        return out, None, status, None
    n = obs.shape[0]
    err_status = np.zeros(n, dtype=np.int8)
    bad_err = ~np.all(np.isfinite(err) & (err >= 0), axis=1)
    err_status[bad_err] = 1
    samples = _draw_samples(obs, np.where(bad_err[:, None], 0.0, err), corr, settings.n_samples, seed)
    sample_out, _ = _evaluate(samples, settings, frame)
    sample_out = sample_out.reshape(settings.n_samples, n, len(OUTPUT_COLUMNS))
    min_valid = max(2, (settings.n_samples + 1) // 2)
    std, n_valid = _robust_std(sample_out, out, min_valid)
    too_few = (status == 0) & (n_valid[:, _ACTIONS[0]] < min_valid) & ~bad_err
    err_status[too_few] = 2
    std[bad_err] = np.nan
    return out, std, status, err_status


class ActionTransformer(TransformerMixin, BaseEstimator):
    """Galactocentric phase space and orbital actions (Staeckel fudge) of stars.

    A stateless transformer: ``fit`` only checks the columns and records the feature names,
    ``transform`` works on any table with the required columns. Output columns, in order:
    ``x, y, z`` (kpc), ``v_x, v_y, v_z`` (km/s), ``R`` (kpc), ``phi`` (rad), ``v_R, v_phi``
    (km/s), ``J_R, L_z, J_z`` (kpc km/s) and ``E`` (km^2/s^2); with ``n_samples > 0`` they are
    followed by their Monte Carlo uncertainties ``x_err, ..., E_err`` in the same order and units.
    Only these new columns are returned (the scikit-learn convention); to keep the input columns
    use ``ColumnTransformer(..., remainder="passthrough")`` or ``pandas.concat``.

    Conventions (paper section 3.1): astropy's right-handed Galactocentric frame with the Sun at
    ``x = -r0``; ``phi = arctan2(y, x)`` is measured from the centre-anticentre line and increases
    counter-clockwise seen from the North Galactic Pole, opposite to Galactic rotation (the Sun is
    at ``phi = pi``); disk stars have ``v_phi < 0`` and ``L_z = x v_y - y v_x < 0`` (the Sun about
    -2,010 kpc km/s), as the paper's training cut ``-5000 < L_z < 1000`` assumes.

    Actions are computed by the Staeckel fudge (Binney 2012) with galpy's C implementation and
    ONE focal distance ``delta`` for the whole sample, in an axisymmetric gala potential.

    Parameters
    ----------
    ra, dec : str, default="ra", "dec"
        Columns of the ICRS right ascension and declination (deg).
    parallax : str, int or "auto", default="auto"
        Column of the parallax (mas). ``"auto"``: the spectro-photometric parallax
        ``"spec_parallax"`` (the paper's catalogue name) when that column is present, otherwise
        Gaia's ``"parallax"``. Ignored when ``distance`` is given.
    distance : str or None, default=None
        Column of the heliocentric distance (kpc), used instead of a parallax when given.
    pmra, pmdec : str, default="pmra", "pmdec"
        Columns of the proper motions (mas/yr; ``pmra`` includes ``cos(dec)``, as Gaia's).
    radial_velocity : str, default="VHELIO_AVG"
        Column of the heliocentric line-of-sight velocity (km/s).
    parallax_zero_point : float, default=0.0
        Zero point of the parallax column (mas), ``observed = true + zero point``, subtracted
        before inverting it: ``-0.017`` (:data:`sklearn_selfcal._paper.GAIA_PARALLAX_ZERO_POINT`)
        for Gaia EDR3 parallaxes, as the paper corrects them; leave 0 for ``spec_parallax``.
    r0 : float, default=8.178
        Distance of the Sun from the Galactic centre (kpc).
    z_sun : float, default=0.025
        Height of the Sun above the mid-plane (kpc).
    v_sun : tuple of 3 float or astropy.coordinates.CartesianDifferential, default=(11.1, 245.8, 7.8)
        Galactocentric Cartesian velocity of the Sun in astropy's frame (km/s; the paper quotes
        the x component as -11.1 in its own sign convention).
    potential : gala.potential.PotentialBase or None, default=None
        Axisymmetric potential in physical units; ``None`` is gala's ``MilkyWayPotential2022``
        (fitted to the Eilers et al. 2019 rotation curve, see
        :func:`~sklearn_selfcal.potential.default_potential`). A potential that varies with
        azimuth raises a ``ValueError``.
    delta : float, "auto" or None, default=None
        Focal distance of the Staeckel fudge (kpc), one value for all stars. ``"auto"``: the value
        that best conserves the actions along 24 typical disk orbits integrated in ``potential``
        (:func:`~sklearn_selfcal._kernels.staeckel.estimate_delta`; it depends on the potential
        only, never on the data, and is computed once per potential). ``None``: 3.8 kpc for the
        default potential, given or not (measured against gala's orbit-based
        ``find_actions_o2gf``; "auto" gives 3.5 kpc for it, in the same flat optimum), ``"auto"``
        for any other.
    n_samples : int, default=0
        Monte Carlo samples for uncertainty propagation (0: off). Each star's parallax (or
        distance), proper motions and line-of-sight velocity are drawn from Gaussians with the
        given uncertainties (proper motions correlated if ``pm_correlation`` is set; ra/dec are
        exact) and the outputs recomputed; ``<name>_err`` is half the 16th-84th percentile range
        over the valid samples (for ``phi`` of the offset from the nominal azimuth). Samples with
        a non-positive parallax, unbound or near-axis orbit are invalid; if fewer than half are
        valid, the error is NaN. The main columns are always the nominal values, not sample
        medians. For fractional parallax errors above ~20 % the distribution of ``1/parallax`` is
        skewed and the errors are only indicative.
    parallax_error : str or "auto", default="auto"
        Column of the parallax uncertainty (mas) for ``n_samples > 0``. ``"auto"``:
        ``"<parallax>_err"`` if present (the paper's ``spec_parallax_err``), else
        ``"<parallax>_error"`` (Gaia's ``parallax_error``).
    distance_error : str or "auto", default="auto"
        Column of the distance uncertainty (kpc) when ``distance`` is used; ``"auto"`` as above.
    pmra_error, pmdec_error : str, default="pmra_error", "pmdec_error"
        Columns of the proper-motion uncertainties (mas/yr).
    radial_velocity_error : str, default="VERR"
        Column of the line-of-sight velocity uncertainty (km/s).
    pm_correlation : str or None, default=None
        Column of the pmra-pmdec correlation coefficient (Gaia's ``"pmra_pmdec_corr"``); None
        treats the proper motions as independent.
    check_units : bool, default=True
        Guard against columns in the wrong units: raise a ``ValueError`` if the median
        heliocentric distance of the valid rows is outside 0.01-100 kpc (a parallax in arcsec or
        micro-arcsec, a distance in pc) or the median ``|line-of-sight velocity|`` or tangential
        velocity exceeds 1000 km/s (velocities in m/s, proper motions in micro-arcsec/yr).
    chunk_size : int or None, default=None
        Stars per chunk of work; ``None``: ``50_000 // (1 + n_samples)``. Results never depend on
        it (nor on ``n_jobs``, the backend or the row order).
    n_jobs : int or None, default=None
        Chunks computed in parallel with joblib (``None``: 1 unless inside a
        ``joblib.parallel_config`` context; ``-1``: all cores). Works under any joblib backend
        (loky, multiprocessing, dask; threading is safe but serialises the action computation,
        as galpy's C code is not thread-safe). Independently, galpy's C code spreads the stars
        of each chunk over OpenMP threads, all cores by default like scikit-learn's own OpenMP
        code; limit them with ``threadpoolctl.threadpool_limits(n, user_api="openmp")`` or
        ``OMP_NUM_THREADS`` (joblib's loky workers limit them automatically).
    random_state : int, RandomState instance or None, default=None
        Seed of the Monte Carlo draws. The draws of a star are a hash of the seed and the star's
        own input values, so a star gets the same ``*_err`` in any batch, order or chunking.
    verbose : int, default=0
        Show a progress bar over stars when truthy.

    Attributes
    ----------
    n_features_in_ : int
        Number of input columns seen in ``fit`` (only set by ``fit``).
    feature_names_in_ : ndarray of str
        Column names seen in ``fit``, if the input had string column names.

    Notes
    -----
    Bad rows are never dropped. Rows with a non-finite input, a non-positive parallax/distance,
    ``R < 0.1`` kpc, an unbound orbit (``E >= 0``) or a failure of the action finder get NaN
    ``J_R, L_z, J_z``; the phase-space columns and ``E`` are still given when their inputs allow
    (positions need only ra, dec and distance). ``transform`` emits one :class:`BadRowsWarning`
    with the count per reason; other rows are unaffected. Missing columns raise a ``KeyError``
    naming them.

    Every column parameter may also be an integer column position (for arrays and DataFrames).
    Input without string column names (a NumPy array) and string column parameters is read by
    position: ra, dec, parallax (or distance, if ``distance`` is set), pmra, pmdec, radial
    velocity and, for ``n_samples > 0``, the uncertainties of parallax (or distance), pmra,
    pmdec and radial velocity (then the pm correlation if ``pm_correlation`` is set); further
    columns are ignored.

    Examples
    --------
    >>> from sklearn_selfcal import ActionTransformer
    >>> at = ActionTransformer().set_output(transform="pandas")
    >>> orbits = at.fit_transform(catalogue)  # doctest: +SKIP
    >>> orbits[["J_R", "L_z", "J_z"]]  # doctest: +SKIP

    With uncertainties from 100 Monte Carlo draws per star, on both cores:

    >>> at = ActionTransformer(n_samples=100, random_state=0, n_jobs=2)
    >>> at.set_output(transform="pandas").fit_transform(catalogue)["J_R_err"]  # doctest: +SKIP
    """

    def __init__(self, *, ra="ra", dec="dec", parallax="auto", distance=None, pmra="pmra",
                 pmdec="pmdec", radial_velocity="VHELIO_AVG", parallax_zero_point=0.0,
                 r0=R0_KPC, z_sun=Z_SUN_KPC, v_sun=V_SUN_KMS, potential=None, delta=None,
                 n_samples=0, parallax_error="auto", distance_error="auto",
                 pmra_error="pmra_error", pmdec_error="pmdec_error", radial_velocity_error="VERR",
                 pm_correlation=None, check_units=True, chunk_size=None, n_jobs=None,
                 random_state=None, verbose=0):
        self.ra = ra
        self.dec = dec
        self.parallax = parallax
        self.distance = distance
        self.pmra = pmra
        self.pmdec = pmdec
        self.radial_velocity = radial_velocity
        self.parallax_zero_point = parallax_zero_point
        self.r0 = r0
        self.z_sun = z_sun
        self.v_sun = v_sun
        self.potential = potential
        self.delta = delta
        self.n_samples = n_samples
        self.parallax_error = parallax_error
        self.distance_error = distance_error
        self.pmra_error = pmra_error
        self.pmdec_error = pmdec_error
        self.radial_velocity_error = radial_velocity_error
        self.pm_correlation = pm_correlation
        self.check_units = check_units
        self.chunk_size = chunk_size
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.allow_nan = True
        return tags

    # ------------------------------------------------------------------ validation
    def _check_params(self):
        if not (isinstance(self.n_samples, numbers.Integral) and self.n_samples >= 0):
            raise ValueError(f"n_samples must be an integer >= 0, got {self.n_samples!r}")
        for name in ("r0", "parallax_zero_point", "z_sun"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and np.isfinite(value)):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if not self.r0 > 0:
            raise ValueError(f"r0 must be positive (kpc), got {self.r0!r}")
        if not _is_velocity(self.v_sun):
            raise ValueError(
                f"v_sun must be 3 finite numbers (km/s) or a CartesianDifferential, got {self.v_sun!r}"
            )
        if not (self.delta is None or (isinstance(self.delta, str) and self.delta == "auto")
                or (isinstance(self.delta, numbers.Real) and self.delta > 0)):
            raise ValueError(f"delta must be a positive number (kpc), 'auto' or None, got {self.delta!r}")
        if self.chunk_size is not None and not (
                isinstance(self.chunk_size, numbers.Integral) and self.chunk_size > 0):
            raise ValueError(f"chunk_size must be a positive integer or None, got {self.chunk_size!r}")
        if self.distance is not None and not (isinstance(self.parallax, str) and self.parallax == "auto"):
            raise ValueError(
                f"give either parallax={self.parallax!r} or distance={self.distance!r}, not both"
            )
        if self.distance is None and self.parallax is None:
            raise ValueError("give a parallax column (or 'auto') or a distance column")

    def _roles(self, names):
        """Map each role (ra, dec, dist, ...) to a column name, resolving the 'auto' defaults."""
        uses_distance = self.distance is not None
        if uses_distance:
            dist = self.distance
        elif isinstance(self.parallax, str) and self.parallax == "auto":
            dist = "spec_parallax" if names is not None and "spec_parallax" in names else "parallax"
        else:
            dist = self.parallax
        roles = {"ra": self.ra, "dec": self.dec, "dist": dist, "pmra": self.pmra,
                 "pmdec": self.pmdec, "rv": self.radial_velocity}
        if self.n_samples > 0:
            rule = self.distance_error if uses_distance else self.parallax_error
            if isinstance(rule, str) and rule == "auto":
                if isinstance(dist, numbers.Integral):
                    raise ValueError(
                        "the 'auto' uncertainty column needs a named parallax/distance column; "
                        "give parallax_error (or distance_error) as a column name or position"
                    )
                rule = (f"{dist}_err" if names is not None and f"{dist}_err" in names
                        else f"{dist}_error")
            roles.update({"dist_err": rule, "pmra_err": self.pmra_error,
                          "pmdec_err": self.pmdec_error, "rv_err": self.radial_velocity_error})
            if self.pm_correlation is not None:
                roles["pm_corr"] = self.pm_correlation
        return roles

    def _extract(self, X):
        """Columns by role as float arrays.

        String parameters are column names of a DataFrame; for input without string column names
        they stand for the documented default position of their role. Integer parameters are
        column positions in either case.
        """
        names = None
        if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns):
            names = list(X.columns)
        roles = self._roles(names)
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
            try:
                data[role] = (values.to_numpy(dtype=float, na_value=np.nan)
                              if isinstance(values, pd.Series) else np.asarray(values, dtype=float))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"column {col!r} ({role}) must be numeric: {exc}") from exc
        return data, roles

    def _check_units(self, data, roles, is_parallax):
        with np.errstate(divide="ignore", invalid="ignore"):
            d = (1.0 / (data["dist"] - self.parallax_zero_point) if is_parallax else data["dist"])
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

    def _settings(self, is_parallax):
        potential = default_potential() if self.potential is None else self.potential
        check_axisymmetric(potential)
        key = joblib.hash(potential)
        if self.delta is None:
            delta = DEFAULT_DELTA_KPC if key == _default_potential_key() else _auto_delta(potential, key)
        elif isinstance(self.delta, str):  # "auto"
            delta = _auto_delta(potential, key)
        else:
            delta = float(self.delta)
        v_sun = self.v_sun
        if not isinstance(v_sun, tuple):
            v_sun = tuple(float(v) for v in _velocity_kms(v_sun))
        return _Settings(r0=float(self.r0), z_sun=float(self.z_sun), v_sun=v_sun,
                         potential=potential, potential_key=key, delta=delta,
                         is_parallax=is_parallax,
                         parallax_zero_point=float(self.parallax_zero_point) if is_parallax else 0.0,
                         n_samples=int(self.n_samples))

    # ------------------------------------------------------------------ API
    def fit(self, X, y=None):
        """Check the columns and record the feature names; nothing is learned.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_stars, n_columns)
            The catalogue (see the class docstring for the columns).
        y : None
            Ignored.

        Returns
        -------
        self : ActionTransformer
        """
        self._check_params()
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=True, skip_check_array=True)
        else:
            X = validate_data(self, X, reset=True, dtype=np.float64, ensure_all_finite=False)
        self._extract(X)
        return self

    def transform(self, X):
        """Compute Galactocentric phase space, actions and energy of every row of ``X``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_stars, n_columns)
            The catalogue; never modified.

        Returns
        -------
        Xt : ndarray of shape (n_stars, 14) or (n_stars, 28)
            Columns :meth:`get_feature_names_out` (a DataFrame with ``set_output``), one row per
            input row, in the input order.
        """
        self._check_params()
        if hasattr(self, "n_features_in_"):
            if isinstance(X, pd.DataFrame):
                validate_data(self, X, reset=False, skip_check_array=True)
            else:
                X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=False)
        data, roles = self._extract(X)
        is_parallax = self.distance is None
        if self.check_units:
            self._check_units(data, roles, is_parallax)
        settings = self._settings(is_parallax)

        obs = np.column_stack([data[r] for r in ("ra", "dec", "dist", "pmra", "pmdec", "rv")])
        n = obs.shape[0]
        err = corr = None
        if settings.n_samples > 0:
            err = np.column_stack([data[r] for r in ("dist_err", "pmra_err", "pmdec_err", "rv_err")])
            corr = data.get("pm_corr")
        size = self.chunk_size or max(1, 50_000 // (1 + settings.n_samples))
        seed = 0
        if settings.n_samples > 0:
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        tasks = (
            joblib.delayed(_transform_chunk)(
                obs[s:s + size], None if err is None else err[s:s + size],
                None if corr is None else corr[s:s + size], settings, seed)
            for s in range(0, n, size)
        )
        results = []
        bar = progress(total=n, desc="ActionTransformer", verbose=self.verbose, unit="star")
        try:
            for res in joblib.Parallel(n_jobs=self.n_jobs, return_as="generator")(tasks):
                results.append(res)
                bar.update(res[0].shape[0])
        finally:
            bar.close()

        if not results:
            return np.empty((0, len(self.get_feature_names_out())))
        out = np.concatenate([r[0] for r in results])
        status = np.concatenate([r[2] for r in results])
        err_status = None
        if settings.n_samples > 0:
            out = np.hstack([out, np.concatenate([r[1] for r in results])])
            err_status = np.concatenate([r[3] for r in results])
        _warn_bad_rows(status, err_status, n)
        return out

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns.

        Parameters
        ----------
        input_features : array-like of str or None
            Ignored except for a consistency check with ``feature_names_in_`` when fitted.

        Returns
        -------
        names : ndarray of str
            ``x, y, z, v_x, v_y, v_z, R, phi, v_R, v_phi, J_R, L_z, J_z, E`` and, with
            ``n_samples > 0``, the same names with ``_err`` appended.
        """
        if (input_features is not None and hasattr(self, "feature_names_in_")
                and list(input_features) != list(self.feature_names_in_)):
            raise ValueError("input_features is not equal to feature_names_in_")
        names = list(OUTPUT_COLUMNS)
        if isinstance(self.n_samples, numbers.Integral) and self.n_samples > 0:
            names += [f"{c}_err" for c in OUTPUT_COLUMNS]
        return np.asarray(names, dtype=object)


_DELTA_CACHE = {}


@functools.lru_cache(maxsize=1)
def _default_potential_key():
    return joblib.hash(default_potential())


def _auto_delta(potential, key):
    if key not in _DELTA_CACHE:
        _DELTA_CACHE[key] = estimate_delta(potential)
    return _DELTA_CACHE[key]


def _velocity_kms(v):
    import astropy.coordinates as coord
    import astropy.units as u

    if isinstance(v, coord.CartesianDifferential):
        return v.d_xyz.to_value(u.km / u.s)
    return np.asarray(v, dtype=float)


def _is_velocity(v):
    try:
        values = _velocity_kms(v)
    except (TypeError, ValueError, AttributeError):
        return False
    return values.shape == (3,) and bool(np.all(np.isfinite(values)))


def _warn_bad_rows(status, err_status, n):
    parts = [f"{np.sum(status == code)} {label}" for code, label in _REASONS.items()
             if np.any(status == code)]
    if err_status is not None:
        parts += [f"{np.sum(err_status == code)} {label}" for code, label in _ERR_REASONS.items()
                  if np.any(err_status == code)]
    if parts:
        n_bad = int(np.sum(status != 0))
        warnings.warn(
            f"ActionTransformer: {n_bad} of {n} rows have NaN actions (no row dropped): "
            + "; ".join(parts),
            BadRowsWarning,
            stacklevel=3,
        )
