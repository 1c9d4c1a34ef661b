"""Galactocentric phase space and orbital actions of stars (paper sections 3.1 and 3.2).

:class:`ActionTransformer` turns the observed columns of a catalogue (sky position, parallax or
distance, proper motions, line-of-sight velocity) into Galactocentric Cartesian and cylindrical
phase space, the orbital actions ``J_R, L_z, J_z``, the orbital energy ``E`` and a per-star
estimate of the actions' accuracy. This module validates the input and dispatches chunks of stars
to (parallel) workers; the numerics live in :mod:`sklearn_selfcal.coordinates` and
:mod:`sklearn_selfcal._kernels` (``action_chunks``, ``action_methods``, ``staeckel``,
``staeckel_grid``, ``orbit_sampling``, ``montecarlo``).
"""

from __future__ import annotations

import functools
import numbers
from numbers import Integral, Real

import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import validate_data

from ._action_columns import (check_combinations, check_units, extract, physical_values,
                              velocity_kms)
from ._action_flags import (ACCURACY_COLUMN, CHAOTIC, FLAGS_COLUMN, ORBIT_AVERAGE, TABULATED,
                            TORUS_FIT, warn_bad_rows, warn_inaccurate)
from ._kernels.action_chunks import MIN_R_KPC, OUTPUT_COLUMNS, ChunkSettings, transform_chunk
from ._kernels.action_methods import METHODS, ActionModel, accuracy_table
from ._kernels.staeckel import DEFAULT_DELTA_KPC, estimate_delta
from ._kernels.staeckel_grid import cached_tables
from ._progress import progress
from ._paper import GAIA_PARALLAX_ZERO_POINT, zero_point_of
from ._validation import PARALLAX_ZERO_POINT_CONSTRAINT, estimator_input
from .exceptions import BadRowsWarning, InaccurateActionsWarning
from .coordinates import R0_KPC, V_SUN_KMS, Z_SUN_KPC
from .potential import check_axisymmetric, default_potential

__all__ = ["OUTPUT_COLUMNS", "ACCURACY_COLUMN", "FLAGS_COLUMN", "ORBIT_AVERAGE", "CHAOTIC",
           "TABULATED", "TORUS_FIT", "ActionTransformer", "BadRowsWarning",
           "InaccurateActionsWarning", "MIN_R_KPC"]


class ActionTransformer(TransformerMixin, BaseEstimator):
    """Galactocentric phase space, orbital actions and their accuracy for every star.

    A stateless transformer: ``fit`` only checks the columns and records the feature names,
    ``transform`` works on any table with the required columns. Output columns, in order:
    ``x, y, z`` (kpc), ``v_x, v_y, v_z`` (km/s), ``R`` (kpc), ``phi`` (rad), ``v_R, v_phi``
    (km/s), ``J_R, L_z, J_z`` (kpc km/s) and ``E`` (km^2/s^2); with ``n_samples > 0`` they are
    followed by their Monte Carlo uncertainties ``x_err, ..., E_err`` in the same order and units;
    with ``orbit_check=True`` (the default) the last two columns are ``actions_rel_err``
    (dimensionless: how far ``J_R, J_z`` may be from the true actions) and ``actions_flags`` (a bit
    field: what kind of number the actions are; see the Notes).
    Only these new columns are returned (the scikit-learn convention); to keep the input columns
    use ``ColumnTransformer(..., remainder="passthrough")`` or ``pandas.concat``.

    Conventions (paper section 3.1): astropy's right-handed Galactocentric frame with the Sun at
    ``x = -r0``; ``phi = arctan2(y, x)`` is measured from the centre-anticentre line and increases
    counter-clockwise seen from the North Galactic Pole, opposite to Galactic rotation (the Sun is
    at ``phi = pi``); disk stars have ``v_phi < 0`` and ``L_z = x v_y - y v_x < 0`` (the Sun about
    -2,010 kpc km/s), as the paper's training cut ``-5000 < L_z < 1000`` assumes.

    Actions are computed by the Staeckel fudge (Binney 2012; galpy's C implementation) in an
    axisymmetric gala potential; see ``method`` and the Notes for what each method does and how
    accurate it is (the docs page "Orbital actions" has the measurements).

    Parameters
    ----------
    ra, dec : str or int, default="ra", "dec"
        Columns of the ICRS right ascension and declination (deg).
    parallax : str, int, "auto" or None, default="auto"
        Column of the parallax (mas). ``"auto"``: the spectro-photometric parallax
        ``"spec_parallax"`` (the paper's catalogue name) when that column is present, otherwise
        Gaia's ``"parallax"``. Ignored when ``distance`` is given.
    distance : str, int or None, default=None
        Column of the heliocentric distance (kpc), used instead of a parallax when given.
    pmra, pmdec : str or int, default="pmra", "pmdec"
        Columns of the proper motions (mas/yr; ``pmra`` includes ``cos(dec)``, as Gaia's).
    radial_velocity : str or int, default="VHELIO_AVG"
        Column of the heliocentric line-of-sight velocity (km/s).
    parallax_zero_point : float, default=-0.017
        Zero point of an observed parallax column (mas), ``observed = true + zero point``,
        subtracted before inverting it (:data:`sklearn_selfcal._paper.GAIA_PARALLAX_ZERO_POINT`,
        the paper's Gaia EDR3 correction, by default). The column ``spec_parallax`` estimates the
        true parallax and gets zero point 0 whatever this says
        (:func:`sklearn_selfcal._paper.zero_point_of`).
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
    method : {"auto", "staeckel", "staeckel_fixed", "grid"}, default="auto"
        How the radial and vertical actions are computed:

        - ``"staeckel_fixed"``: the Staeckel fudge with one focal distance ``delta`` for every
          star (the fastest direct computation; accurate for disk orbits near the Sun).
        - ``"staeckel"``: the fudge with the focal distance of each star's orbit, a function of
          its energy and angular momentum tabulated once per potential (so it is the same at
          every point of an orbit).
        - ``"grid"``: ``"staeckel"`` interpolated in tables over the integrals of motion, built
          once per potential and process (about 5 s); for 10^6-10^7 stars.
        - ``"auto"``: ``"grid"``, except that stars whose orbit check finds their actions off
          by more than half of ``rel_err_threshold``, or the fudge varying along their orbit by
          as much, or their orbit chaotic (bulge and some halo orbits) get the average of the
          fudge over their orbit, with the focal distance that best conserves the actions on
          that orbit. Without ``orbit_check`` it is ``"staeckel"``.
    delta : float, "auto" or None, default=None
        Focal distance (kpc) of ``method="staeckel_fixed"`` (ignored by the other methods).
        ``"auto"``: the value that best conserves the actions along 24 typical disk orbits
        integrated in ``potential`` (:func:`~sklearn_selfcal._kernels.staeckel.estimate_delta`).
        ``None``: 3.8 kpc for the default potential (measured against gala's orbit-based
        ``find_actions_o2gf``), ``"auto"`` for any other.
    orbit_check : bool, default=True
        Estimate every star's accuracy and append ``actions_rel_err`` and ``actions_flags``.
        Stars whose orbit lies where the fudge is accurate everywhere (a table over energy and
        angular momentum of the largest variation of the actions along orbits, built once per
        potential) get that tabulated bound, an upper estimate. The others are integrated over
        6 of their own radial and vertical periods in each half (however long those are); the
        mean of the actions at points along the orbit estimates the true actions, and
        ``actions_rel_err`` is the star's distance from it plus the mean's uncertainty (half the
        difference of the two halves' means and a quarter of the fudge's spread along the orbit)
        or, for an orbit average, the average's uncertainty; the larger for ``J_R`` or ``J_z``,
        relative to the larger of the two. An orbit whose radial period drifts between the
        halves, or from which a companion started 8e-6 pc away parts exponentially, is chaotic
        (``actions_flags`` bit 2). NaN where the actions are NaN. About 5 microseconds of CPU per
        tabulated star, a few milliseconds per orbit-averaged one.
    rel_err_threshold : float, default=0.05
        Stars with ``actions_rel_err`` above it (or on chaotic orbits) are counted in an
        :class:`InaccurateActionsWarning`; stars whose tabulated bound is below it are not
        integrated; ``method="auto"`` averages the stars whose point value is off by more than
        half of it.
    n_samples : int, default=0
        Monte Carlo samples for uncertainty propagation (0: off). Each star's parallax (or
        distance), proper motions and line-of-sight velocity are drawn from Gaussians with the
        given uncertainties (proper motions correlated if ``pm_correlation`` is set; ra/dec are
        exact) and the outputs recomputed with the same method (``"auto"`` evaluates the
        samples like ``"staeckel"``, without orbit averaging); ``<name>_err`` is half the
        16th-84th percentile range over the valid samples (for ``phi`` of the offset from the
        nominal azimuth). Samples with a non-positive parallax, unbound or near-axis orbit are
        invalid; if fewer than half are valid, the error is NaN. The main columns are always the
        nominal values, not sample medians. For fractional parallax errors above ~20 % the
        distribution of ``1/parallax`` is skewed and the errors are only indicative.
    parallax_error : str, int or "auto", default="auto"
        Column of the parallax uncertainty (mas) for ``n_samples > 0``. ``"auto"``:
        ``"<parallax>_err"`` if present (the paper's ``spec_parallax_err``), else
        ``"<parallax>_error"`` (Gaia's ``parallax_error``).
    distance_error : str, int or "auto", default="auto"
        Column of the distance uncertainty (kpc) when ``distance`` is used; ``"auto"`` as above.
    pmra_error, pmdec_error : str or int, default="pmra_error", "pmdec_error"
        Columns of the proper-motion uncertainties (mas/yr).
    radial_velocity_error : str or int, default="VERR"
        Column of the line-of-sight velocity uncertainty (km/s).
    pm_correlation : str, int or None, default=None
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
        Chunks computed in parallel (``sklearn.utils.parallel.Parallel``; ``None``: 1 unless
        inside a ``joblib.parallel_config`` context; ``-1``: all cores). Works under any joblib
        backend (loky, multiprocessing, dask; threading is safe but serialises galpy's part, as
        its C code is not thread-safe). Independently, galpy's C code spreads the stars of each
        chunk over OpenMP threads, all cores by default like scikit-learn's own OpenMP code;
        limit them with ``threadpoolctl.threadpool_limits(n, user_api="openmp")`` or
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
    ``actions_flags`` is a bit field (:data:`ORBIT_AVERAGE` = 1: the actions come from the
    star's orbit, the fudge's value at the star being off; :data:`CHAOTIC` = 2: the orbit is
    chaotic and has no actions; :data:`TABULATED` = 4: the accuracy is the tabulated bound, no
    orbit was integrated; :data:`TORUS_FIT` = 8, with bit 1: they are a torus fit to the orbit,
    not the fudge's orbit average). Select stars with ``actions_rel_err <= 0.05`` and without the chaotic bit.

    The accuracy of each method per Galactic population, and how often the flag is right (its
    precision and recall against long orbit integrations checked with gala's orbit-based actions)
    are measured by ``benchmarks/bench_actions_accuracy.py`` and tabulated in the docs page
    "Orbital actions". The grid reproduces the direct ``"staeckel"`` actions to a median 1e-5
    (disk) to 1e-3 (bulge, halo).

    Bad rows are never dropped. Rows with a non-finite input, a non-positive parallax/distance,
    ``R < 0.1`` kpc, an unbound orbit (``E >= 0``) or a failure of the action finder get NaN
    ``J_R, L_z, J_z`` (and ``actions_rel_err``, ``actions_flags``); the phase-space columns and ``E`` are still given
    when their inputs allow (positions need only ra, dec and distance). ``transform`` emits one
    :class:`BadRowsWarning` with the count per reason, and one :class:`InaccurateActionsWarning`
    counting the stars above ``rel_err_threshold`` and those on chaotic orbits; other rows are
    unaffected. Masked entries of a ``numpy.ma`` array are NaN (with a
    :class:`~sklearn_selfcal.exceptions.DataQualityWarning` naming the column), never their hidden
    values. Missing columns
    raise a ``KeyError`` naming them.

    Every column parameter may also be an integer column position (for arrays and DataFrames).
    Input without string column names (a NumPy array) and string column parameters is read by
    position: ra, dec, parallax (or distance, if ``distance`` is set), pmra, pmdec, radial
    velocity and, for ``n_samples > 0``, the uncertainties of parallax (or distance), pmra,
    pmdec and radial velocity (then the pm correlation if ``pm_correlation`` is set); further
    columns are ignored.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_selfcal import ActionTransformer
    >>> star = pd.DataFrame({"ra": [266.4], "dec": [-28.9], "distance": [6.0], "pmra": [-3.0],
    ...                      "pmdec": [-5.5], "VHELIO_AVG": [10.0]})
    >>> at = ActionTransformer(distance="distance", method="staeckel_fixed", orbit_check=False)
    >>> out = at.set_output(transform="pandas").fit_transform(star)
    >>> list(out.columns[-4:])
    ['J_R', 'L_z', 'J_z', 'E']

    With uncertainties from 100 Monte Carlo draws per star (the uncertainty columns are read by
    name):

    >>> star = star.assign(distance_err=[0.3], pmra_error=[0.02], pmdec_error=[0.02], VERR=[0.1])
    >>> at = ActionTransformer(distance="distance", n_samples=100, random_state=0,
    ...                        method="staeckel_fixed", orbit_check=False)
    >>> errors = at.set_output(transform="pandas").fit_transform(star)["J_R_err"]
    >>> bool(errors.iloc[0] > 0)
    True
    """

    _parameter_constraints: dict = {
        "ra": [str, Integral],
        "dec": [str, Integral],
        "parallax": [str, Integral, None],
        "distance": [str, Integral, None],
        "pmra": [str, Integral],
        "pmdec": [str, Integral],
        "radial_velocity": [str, Integral],
        "parallax_zero_point": PARALLAX_ZERO_POINT_CONSTRAINT,
        "r0": [Interval(Real, 0, None, closed="neither")],
        "z_sun": [Interval(Real, None, None, closed="neither")],
        "v_sun": [tuple, list, np.ndarray, HasMethods(["d_xyz"])],
        "potential": [HasMethods(["energy", "gradient"]), None],
        "method": [StrOptions(set(METHODS))],
        "delta": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"}), None],
        "orbit_check": ["boolean"],
        "rel_err_threshold": [Interval(Real, 0, None, closed="neither")],
        "n_samples": [Interval(Integral, 0, None, closed="left")],
        "parallax_error": [str, Integral],
        "distance_error": [str, Integral],
        "pmra_error": [str, Integral],
        "pmdec_error": [str, Integral],
        "radial_velocity_error": [str, Integral],
        "pm_correlation": [str, Integral, None],
        "check_units": ["boolean"],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, *, ra="ra", dec="dec", parallax="auto", distance=None, pmra="pmra",
                 pmdec="pmdec", radial_velocity="VHELIO_AVG",
                 parallax_zero_point=GAIA_PARALLAX_ZERO_POINT,
                 r0=R0_KPC, z_sun=Z_SUN_KPC, v_sun=V_SUN_KMS, potential=None, method="auto",
                 delta=None, orbit_check=True, rel_err_threshold=0.05, n_samples=0,
                 parallax_error="auto", distance_error="auto", pmra_error="pmra_error",
                 pmdec_error="pmdec_error", radial_velocity_error="VERR", pm_correlation=None,
                 check_units=True, chunk_size=None, n_jobs=None, random_state=None, verbose=0):
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
        self.method = method
        self.delta = delta
        self.orbit_check = orbit_check
        self.rel_err_threshold = rel_err_threshold
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

    def _model(self):
        """The picklable :class:`ActionModel`: potential, focal distances and tables."""
        potential = default_potential() if self.potential is None else self.potential
        check_axisymmetric(potential)
        key = joblib.hash(potential)
        if self.delta is None:
            delta = DEFAULT_DELTA_KPC if key == _default_potential_key() else _auto_delta(potential, key)
        elif isinstance(self.delta, str):  # "auto"
            delta = _auto_delta(potential, key)
        else:
            delta = float(self.delta)
        fixed = self.method == "staeckel_fixed"
        needs_grid = self.method == "grid" or self.orbit_check
        focal = grid = accuracy = None
        if not fixed or needs_grid:
            focal, grid = cached_tables(potential, key, delta=delta if fixed else None,
                                        grid=needs_grid)
        if self.orbit_check:
            accuracy = accuracy_table(potential, key, grid, delta if fixed else None)
        return ActionModel(potential=potential, key=key, method=self.method, delta=delta,
                           focal=focal, grid=grid, check=bool(self.orbit_check),
                           threshold=float(self.rel_err_threshold), accuracy=accuracy)

    def _settings(self, is_parallax, zero_point):
        v_sun = self.v_sun
        if not isinstance(v_sun, tuple):
            v_sun = tuple(float(v) for v in velocity_kms(v_sun))
        return ChunkSettings(r0=float(self.r0), z_sun=float(self.z_sun), v_sun=v_sun,
                             model=self._model(), is_parallax=is_parallax,
                             parallax_zero_point=zero_point, n_samples=int(self.n_samples))

    # ------------------------------------------------------------------ API
    @_fit_context(prefer_skip_nested_validation=True)
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
            The transformer, with ``n_features_in_`` (and ``feature_names_in_``) recorded.
        """
        check_combinations(self)
        X = estimator_input(X, type(self).__name__)
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=True, skip_check_array=True)
        else:
            X = validate_data(self, X, reset=True, dtype=np.float64, ensure_all_finite=False)
        extract(self, X)
        return self

    def transform(self, X):
        """Compute Galactocentric phase space, actions, energy and accuracy of every row of ``X``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_stars, n_columns)
            The catalogue; never modified.

        Returns
        -------
        Xt : ndarray of shape (n_stars, n_outputs)
            Columns :meth:`get_feature_names_out` (a DataFrame with ``set_output``), one row per
            input row, in the input order.
        """
        X = estimator_input(X, type(self).__name__)
        self._validate_params()
        check_combinations(self)
        if hasattr(self, "n_features_in_"):
            if isinstance(X, pd.DataFrame):
                validate_data(self, X, reset=False, skip_check_array=True)
            else:
                X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=False)
        data, roles = extract(self, X)
        is_parallax = self.distance is None
        # the zero point of the column actually read: 0 for the spectro-photometric parallax
        zero_point = zero_point_of(roles["dist"], self.parallax_zero_point) if is_parallax else 0.0
        if self.check_units:
            check_units(data, roles, is_parallax)
        if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns):
            data = physical_values(data, roles, is_parallax)
        settings = self._settings(is_parallax, zero_point)

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
            delayed(transform_chunk)(
                obs[s:s + size], None if err is None else err[s:s + size],
                None if corr is None else corr[s:s + size], settings, seed)
            for s in range(0, n, size)
        )
        results = []
        bar = progress(total=n, desc="ActionTransformer", verbose=self.verbose, unit="star")
        try:
            for res in Parallel(n_jobs=self.n_jobs, return_as="generator")(tasks):
                results.append(res)
                bar.update(res["out"].shape[0])
        finally:
            bar.close()

        if not results:
            return np.empty((0, len(self.get_feature_names_out())))
        parts = [np.concatenate([r["out"] for r in results])]
        status = np.concatenate([r["status"] for r in results])
        err_status = None
        if settings.n_samples > 0:
            parts.append(np.concatenate([r["std"] for r in results]))
            err_status = np.concatenate([r["err_status"] for r in results])
        if self.orbit_check:
            rel_err = np.concatenate([r["rel_err"] for r in results])
            flags = np.concatenate([r["flags"] for r in results])
            parts += [rel_err[:, None], flags[:, None]]
        warn_bad_rows(status, err_status, n)
        if self.orbit_check:
            warn_inaccurate(rel_err, flags, status, self.rel_err_threshold)
        return np.hstack(parts)

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns.

        Parameters
        ----------
        input_features : array-like of str or None
            Ignored except for a consistency check with ``feature_names_in_`` when fitted.

        Returns
        -------
        names : ndarray of str
            ``x, y, z, v_x, v_y, v_z, R, phi, v_R, v_phi, J_R, L_z, J_z, E``; with
            ``n_samples > 0`` the same names with ``_err`` appended; with ``orbit_check``
            finally ``actions_rel_err``.
        """
        if (input_features is not None and hasattr(self, "feature_names_in_")
                and list(input_features) != list(self.feature_names_in_)):
            raise ValueError("input_features is not equal to feature_names_in_")
        names = list(OUTPUT_COLUMNS)
        if isinstance(self.n_samples, numbers.Integral) and self.n_samples > 0:
            names += [f"{c}_err" for c in OUTPUT_COLUMNS]
        if self.orbit_check:
            names += [ACCURACY_COLUMN, FLAGS_COLUMN]
        return np.asarray(names, dtype=object)


_DELTA_CACHE = {}


@functools.lru_cache(maxsize=1)
def _default_potential_key():
    return joblib.hash(default_potential())


def _auto_delta(potential, key):
    if key not in _DELTA_CACHE:
        _DELTA_CACHE[key] = estimate_delta(potential)
    return _DELTA_CACHE[key]
