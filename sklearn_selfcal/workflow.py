"""The whole method as ONE scikit-learn Pipeline, then the radial profiles and the gradient fit.

:func:`make_method_pipeline` builds the method: the distances (spectro-photometric parallaxes
cross-fitted on the spectra, paper section 3.1, or the distances the user already has), the orbits
(section 3.2) and the self-calibration (section 2), each step appending its columns to the table.
:func:`run_method` is that pipeline's ``fit_transform`` on the parent sample, followed by
:func:`profiles_and_fit` (section 4: Tables 1-3 and the broken power law); the command line runs
exactly this function, so the CLI and a user's own Pipeline give identical catalogues for the same
seed. :func:`~sklearn_selfcal.outputs.write_outputs` writes the results.

Steps that need more stars than a catalogue has (the calibration needs a few times as many training
stars as it has coefficients; the broken power law needs enough populated radial bins) are skipped
with a recorded reason; every output that can be made is made.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import config_context
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils import Bunch

from ._paper import (
    ABUNDANCE_COLUMNS,
    CALIBRATED_SUFFIX,
    DISK_VZ_MAX_KMS,
    DISK_WEDGE_ANGLE_DEG,
    DISK_Z_MAX_KPC,
    GAIA_PARALLAX_ZERO_POINT,
    LOGG_MAX,
    LOGG_REFERENCE,
    MAGNITUDE_COLUMNS,
    PAPER_ALPHA,
    PAPER_TRAINING_BOUNDS,
    calibrated_name,
)
from .actions import ACCURACY_COLUMN, ActionTransformer
from .calibration import NuisanceCalibrator, trend_summary
from .cleaning import as_frame
from .columns import ROLES
from .distances import (
    DEFAULT_PARALLAX_OVER_ERROR,
    DISTANCE_COLUMNS,
    distance_transformer,
)
from .gradients import fit_radial_gradient, radial_abundance_profile, radius_sampler
from .maps import profile_points
from .preflight import plan_and_prepare, prepare_catalogue
from .selection import (
    disk_sample_mask,
    disk_training_mask,
    gaia_training_mask,
    parent_sample_cuts,
    quality_cuts,
)
from .spectra import SpectraArray, SpectraDtype, join_spectra

__all__ = ["DEFAULT_CONFIG", "load_config", "make_method_pipeline", "pipeline_from_config",
           "run_method", "profiles_and_fit"]

#: Every setting of the main job, with the paper's values. A config file (TOML or JSON) overrides
#: any of them by section and key; ``[columns]`` maps roles to column names (see
#: :data:`sklearn_selfcal.columns.ROLES`). An empty string means "not set".
DEFAULT_CONFIG = {
    "columns": {},
    # the FITS table ("auto": APOGEE's of an SDSS-V astra file), and SDSS-V's [X/H] abundances:
    # converted to [X/Fe] ("x_fe", error "independent" or as "dr17") or kept ("x_h")
    "catalogue": {"hdu": "auto", "abundances": "x_fe", "x_fe_error": "independent"},
    "distance": {"source": "auto", "column": "", "error": "", "lo": "", "hi": "", "unit": "auto",
                 "parallax_over_error": DEFAULT_PARALLAX_OVER_ERROR},
    # exclude_duplicates: true (one row per star, selection.DUPLICATE_PRIORITY for SDSS-V), false,
    # or a list of criteria of selection.duplicate_cut ("not_bad", "sdss5", "dr17", "snr")
    "sample": {"logg_max": LOGG_MAX, "exclude_star_bad": True, "exclude_duplicates": True},
    "parallax": {
        "alpha": PAPER_ALPHA,       # L1 strength per training star (the paper's lambda = 160)
        "n_folds": 2,               # the paper's two halves
        "parallax_zero_point": GAIA_PARALLAX_ZERO_POINT,  # mas, subtracted from Gaia parallaxes
        "dtype": "float32",
        "tol": 1e-4,
        "max_iter": 100,
        "magnitudes": "auto",       # the paper's 8 bands that the catalogue has, or a list
        "lsf_moments": "auto",      # LSF_1..LSF_5 if present, or a list
        "refit": False,             # refit on all training stars (to apply the pipeline to others)
        "scratch": "auto",          # feature matrices in scratch files: "auto", true or false
    },
    "actions": {"n_samples": 0, "n_jobs": None, "method": "auto", "orbit_check": True},
    "disk": {"z_max": DISK_Z_MAX_KPC, "wedge_angle": DISK_WEDGE_ANGLE_DEG,
             "vz_max": DISK_VZ_MAX_KMS, "exclude_ids": []},
    # the paper's model; see docs/calibration.rst for the general one (Teff, telescope, splines)
    "calibration": {"nuisance_columns": ["LOGG"], "nuisance_reference": [LOGG_REFERENCE],
                    "nuisance_basis": "polynomial", "nuisance_degree": 2, "nuisance_knots": 5,
                    "nuisance_interactions": False, "orbit_basis": "polynomial",
                    "orbit_degree": 2, "orbit_knots": 5, "weighted": True, "errors": True,
                    "min_stars_per_coefficient": 3, "max_actions_rel_err": None},
    "gradient": {"column": "FE_H_NEW", "population": "low_alpha", "radius": "R_MEDIAN",
                 "n_walkers": 32, "n_steps": 5000, "burn_in": 1000, "thin": 10, "min_bins": 5,
                 "n_bootstrap": 0, "distance_errors": True, "calibration_errors": True,
                 "n_draws": 100},
    "diagnostics": {"trend_columns": ["LOGG", "TEFF", "TELESCOPE"], "trend_bins": 4},
    "figures": {"enabled": True, "dpi": 110},
    "output": {"columns": "used"},
    # a Dask cluster for the run (docs/scaling.rst): "" runs on this machine; "local" starts a
    # LocalCluster of n_workers processes (0: one per core); else a scheduler address or file
    "dask": {"scheduler": "", "n_workers": 0, "partitions": 0},
}
_ROLE_NAMES = {r.name for r in ROLES} | {r.canonical for r in ROLES}


def spectra_columns(X):
    """The columns of ``X`` that hold spectra (:class:`~sklearn_selfcal.spectra.SpectraArray`).

    The method's pipeline drops them once the parallaxes are fitted.

    Parameters
    ----------
    X : DataFrame
        A table of the method (:func:`~sklearn_selfcal.spectra.join_spectra`).

    Returns
    -------
    columns : list of str
    """
    return [c for c in X.columns if isinstance(X[c].dtype, SpectraDtype)]


def load_config(path=None, overrides=None):
    """The default configuration updated from a TOML/JSON file and/or a nested dict.

    Parameters
    ----------
    path : str or path-like, optional
        ``.toml`` or ``.json`` file with sections of :data:`DEFAULT_CONFIG`.
    overrides : dict, optional
        Applied after the file.

    Returns
    -------
    config : dict
        Every section of :data:`DEFAULT_CONFIG`, updated.

    Raises
    ------
    KeyError
        For a section or key that :data:`DEFAULT_CONFIG` does not have, or a ``[columns]`` entry
        that is not a role (typos are not ignored).

    Examples
    --------
    >>> load_config(overrides={"columns": {"parallax": "Plx"}})["columns"]
    {'parallax': 'Plx'}
    """
    config = copy.deepcopy(DEFAULT_CONFIG)
    updates = []
    if path is not None:
        path = Path(path)
        if path.suffix == ".toml":
            updates.append(tomllib.loads(path.read_text()))
        elif path.suffix == ".json":
            updates.append(json.loads(path.read_text()))
        else:
            raise ValueError(f"config file {path}: expected a .toml or .json file")
    if overrides:
        updates.append(overrides)
    for update in updates:
        for section, values in update.items():
            if section not in config:
                raise KeyError(f"config: unknown section [{section}]; sections are {sorted(config)}")
            if section == "columns":
                unknown = sorted(set(values) - _ROLE_NAMES)
                if unknown:
                    raise KeyError(f"config [columns]: {unknown} are not roles; roles are "
                                   f"{sorted(r.name for r in ROLES)}")
            else:
                unknown = sorted(set(values) - set(config[section]))
                if unknown:
                    raise KeyError(f"config [{section}]: unknown key(s) {unknown}; keys are "
                                   f"{sorted(config[section])}")
            config[section].update(values)
    return config


def _append(name, transformer):
    """A step that appends ``transformer``'s columns to its input table."""
    return FeatureUnion([("input", "passthrough"), (name, transformer)],
                        verbose_feature_names_out=False)


def make_method_pipeline(*, distance=None, magnitude_columns=None, lsf_columns=None,
                         alpha=PAPER_ALPHA, n_folds=2, parallax_zero_point=GAIA_PARALLAX_ZERO_POINT,
                         dtype="float32", tol=1e-4, max_iter=100, refit=True, scratch_dir=None,
                         n_samples=0, n_jobs=None, actions_method="auto", orbit_check=True, logg_max=LOGG_MAX, disk=None,
                         max_actions_rel_err=None, random_state=None, verbose=0,
                         **calibrator_params):
    """The whole method as one scikit-learn ``Pipeline`` (distances -> orbits -> calibration).

    Steps (each appends its columns to the table it receives, so the output holds the input
    columns, the distances, the phase space and actions, and ``<X>_NEW``):

    1. the distances: ``"parallax"``, the spectro-photometric parallax model cross-fitted on the
       stars (:func:`~sklearn_selfcal.parallax.make_parallax_step`: ``spec_parallax`` and a
       complete ``spec_parallax_err``), when ``distance`` is None or of kind ``"spectra"``; or
       ``"distance"``, a :class:`~sklearn_selfcal.distances.DistanceTransformer` giving
       ``distance_kpc``/``distance_kpc_err`` from the user's distances or Gaia parallaxes; nothing
       when the table already holds ``spec_parallax``;
    2. ``"orbits"``: :class:`~sklearn_selfcal.ActionTransformer` (phase space, actions, energy);
    3. ``"calibrate"``: :class:`~sklearn_selfcal.NuisanceCalibrator`, fitted on the disk sample's
       training stars (:func:`~sklearn_selfcal.selection.disk_training_mask`), giving ``<X>_NEW``
       (and ``<X>_NEW_ERR`` with ``errors=True``).

    Fit it as ``pipe.fit_transform(table, table["parallax"], sigma=table["parallax_error"])`` with
    metadata routing enabled (``sklearn.set_config(enable_metadata_routing=True)``) when the
    parallax model is trained (``table`` from :func:`~sklearn_selfcal.parallax_features.join_spectra`
    on the parent sample, canonical column names), or ``pipe.fit_transform(table)`` otherwise.

    Parameters
    ----------
    distance : DistanceChoice, optional
        From :func:`~sklearn_selfcal.distances.choose_distance_source`; None trains the parallax
        model on spectra.
    magnitude_columns, lsf_columns : sequence of str, optional
        The parallax model's magnitudes (mag) and LSF moments (default: the paper's).
    alpha : float, default=PAPER_ALPHA
        L1 strength per training star of the parallax model.
    n_folds : int, default=2
        Cross-fitting folds (the paper's two halves).
    parallax_zero_point : float, default=-0.017
        Gaia parallax zero point (mas), subtracted.
    dtype : str, default="float32"
        Dtype of the parallax model's feature matrix.
    tol : float, default=1e-4
        Relative KKT tolerance of the parallax solver.
    max_iter : int, default=100
        Outer iterations of the parallax solver.
    refit : bool, default=True
        Also refit the parallax model on every training star, so that the fitted pipeline can
        ``transform`` new stars (``fit_transform`` gives out-of-fold predictions either way).
    scratch_dir : str or path-like, optional
        Write the parallax model's feature matrices to memory-mapped scratch files there (their
        memory then does not grow with the number of stars).
    n_samples : int, default=0
        Monte Carlo samples of :class:`~sklearn_selfcal.ActionTransformer` (0: no ``_err``).
    n_jobs : int, optional
        Parallel workers of the actions.
    actions_method : {"auto", "staeckel", "staeckel_fixed", "grid"}, default="auto"
        Of :class:`~sklearn_selfcal.ActionTransformer` (``method``).
    orbit_check : bool, default=True
        Of :class:`~sklearn_selfcal.ActionTransformer`: the per-star accuracy ``actions_rel_err``.
    logg_max : float, default=2.2
        Giant cut of the disk sample (dex).
    disk : dict, optional
        Keyword arguments of :func:`~sklearn_selfcal.selection.disk_sample_cuts` (``z_max``,
        ``wedge_angle``, ``vz_max``, ``exclude_ids``).
    max_actions_rel_err : float, optional
        Also leave out of the calibration's training stars those whose actions are less accurate
        than this (``actions_rel_err``, fractional; needs ``orbit_check``). None: the paper's
        training filter only.
    random_state : int or None
        Seeds the cross-fitting halves and the Monte Carlo draws.
    verbose : int
        Progress reports of the steps.
    **calibrator_params
        Of :class:`~sklearn_selfcal.NuisanceCalibrator` (``abundance_columns``,
        ``nuisance_columns``, ``nuisance_reference``, ``nuisance_basis``, ``errors``, ...).

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        With pandas output.
    """
    steps = []
    if distance is None or distance.kind == "spectra":
        from .parallax import make_parallax_step

        options = {}
        if magnitude_columns is not None:
            options["magnitude_columns"] = tuple(magnitude_columns)
        if lsf_columns is not None:
            options["lsf_columns"] = tuple(lsf_columns)
        mags = tuple(options.get("magnitude_columns", MAGNITUDE_COLUMNS))
        steps.append(("parallax", make_parallax_step(
            alpha=alpha, parallax_zero_point=parallax_zero_point, n_folds=n_folds,
            training_filter=functools.partial(gaia_training_mask, magnitude_columns=mags,
                                              missing="skip"),
            dtype=np.dtype(dtype).type, tol=tol, max_iter=max_iter, scratch_dir=scratch_dir,
            random_state=random_state, verbose=verbose, **options).set_params(refit=refit)))
        steps.append(("drop_spectra", ColumnTransformer(
            [("spectra", "drop", spectra_columns)], remainder="passthrough",
            verbose_feature_names_out=False)))
        orbit_source = {"parallax": "spec_parallax"}
    elif distance.kind == "spec_parallax":
        orbit_source = {"parallax": "spec_parallax"}
    else:
        steps.append(("distance", _append("distance", distance_transformer(distance))))
        orbit_source = {"distance": DISTANCE_COLUMNS[0]}
    steps.append(("orbits", _append("orbits", ActionTransformer(
        **orbit_source, n_samples=n_samples, n_jobs=n_jobs, method=actions_method,
        orbit_check=orbit_check, random_state=random_state,
        verbose=verbose))))
    disk_kwargs = {"logg_max": logg_max, **(disk or {})}
    if not disk_kwargs.get("exclude_ids"):
        disk_kwargs["exclude_ids"] = None
    if max_actions_rel_err is not None:
        disk_kwargs["bounds"] = {**PAPER_TRAINING_BOUNDS,
                                 ACCURACY_COLUMN: (None, float(max_actions_rel_err))}
    calibrator = NuisanceCalibrator(
        training_filter=functools.partial(disk_training_mask, **disk_kwargs),
        **_calibrator_options(calibrator_params))
    steps.append(("calibrate", _append("calibrate", calibrator)))
    return Pipeline(steps).set_output(transform="pandas")


def _calibrator_options(params):
    """NuisanceCalibrator parameters from the configuration (TOML lists become tuples)."""
    out = {}
    for key, value in params.items():
        if key in ("min_stars_per_coefficient", "max_actions_rel_err"):
            continue
        out[key] = tuple(value) if isinstance(value, list) and key != "abundance_columns" \
            else value
    return out


def pipeline_from_config(config, plan, *, random_state=None, verbose=0, scratch_dir=None):
    """:func:`make_method_pipeline` with the settings of a configuration and a run plan.

    Parameters
    ----------
    config : dict
        From :func:`load_config`.
    plan : RunPlan
        From :func:`~sklearn_selfcal.preflight.plan_run`: the distances, bands and abundances.
    random_state : int or None
        Seed of every random step.
    verbose : int
        Progress reports.
    scratch_dir : str or path-like, optional
        Where the parallax model's scratch files go when ``[parallax] scratch`` says so.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Unfitted.
    """
    pcfg = config["parallax"]
    disk = {k: v for k, v in config["disk"].items()}
    return make_method_pipeline(
        distance=plan.distance, magnitude_columns=plan.magnitudes or None,
        lsf_columns=plan.lsf if plan.spectra else None, alpha=pcfg["alpha"],
        n_folds=pcfg["n_folds"], parallax_zero_point=pcfg["parallax_zero_point"],
        dtype=pcfg["dtype"], tol=pcfg["tol"], max_iter=pcfg["max_iter"], refit=pcfg["refit"],
        scratch_dir=scratch_dir,
        n_samples=config["actions"]["n_samples"], n_jobs=config["actions"]["n_jobs"],
        actions_method=config["actions"]["method"], orbit_check=config["actions"]["orbit_check"],
        max_actions_rel_err=config["calibration"]["max_actions_rel_err"],
        logg_max=config["sample"]["logg_max"], disk=disk, random_state=random_state,
        verbose=verbose, abundance_columns=plan.abundances or None,
        **_calibrator_options(config["calibration"]))


class _Steps:
    """Times the steps of the job and reports them when verbose."""

    def __init__(self, verbose):
        self.verbose = verbose
        self.times = {}

    def __call__(self, name):
        steps = self

        class _Step:
            def __enter__(self):
                if steps.verbose:
                    print(f"[sklearn-selfcal] {name} ...", flush=True)
                self.t0 = time.perf_counter()
                return self

            def __exit__(self, *exc):
                steps.times[name] = round(time.perf_counter() - self.t0, 2)
                if steps.verbose and exc[0] is None:
                    print(f"[sklearn-selfcal] {name}: {steps.times[name]:.1f} s", flush=True)

        return _Step()

    def note(self, text):
        """Print a line of the report (when verbose)."""
        if self.verbose:
            print(f"[sklearn-selfcal] {text}", flush=True)


def _fit_step(step, Xt, client, partitions):
    """Fit the ``"calibrate"`` step: in memory, or summed over partitions on a Dask cluster."""
    if client is None:
        return step, step.fit_transform(Xt)
    from sklearn.frozen import FrozenEstimator

    from .scaleout import fit_calibrator_distributed
    from .scaleout._cluster import partitioned

    name, calibrator = step.transformer_list[1]
    fit_calibrator_distributed(calibrator, partitioned(Xt, client, partitions), client=client)
    fitted = clone(step).set_params(**{name: FrozenEstimator(calibrator)})
    return fitted, fitted.fit_transform(Xt)


def _fit_calibration(step, Xt, min_per_coefficient, client=None, partitions=0):
    """Fit the ``"calibrate"`` step; drop the abundances with too few training stars.

    Returns the table with ``<X>_NEW`` (``Xt`` itself when nothing could be fitted), the fitted
    calibrator (or None), the fitted step and ``{what: why}`` for what was skipped.
    """
    calibrator = step.transformer_list[1][1]
    skipped = {}
    train = np.asarray(calibrator.training_filter(Xt), dtype=bool)
    names = calibrator.abundance_columns or [c for c in ABUNDANCE_COLUMNS if c in Xt.columns]
    counts = {c: int((train & np.isfinite(Xt[c].to_numpy(dtype=float))).sum()) for c in names}
    empty = [c for c, n in counts.items() if n == 0]
    if len(empty) == len(counts):
        return Xt, None, step, {"calibration": f"no training star: {int(train.sum())} stars pass the "
                                         "disk sample and the training filter, none with an "
                                         "abundance"}
    if empty:
        skipped[f"calibration of {', '.join(empty)}"] = "no training star with a value"
        calibrator.set_params(abundance_columns=[c for c in names if c not in empty])
    while True:
        try:
            fitted, out = _fit_step(step, Xt, client, partitions)
        except (ValueError, np.linalg.LinAlgError) as exc:
            return Xt, None, step, {"calibration": f"too few training stars for the calibration "
                                             f"({max(counts.values())} at most): the model "
                                             f"cannot be fitted ({exc})"}
        n_terms = calibrator.coef_.shape[1]
        needed = min_per_coefficient * n_terms
        n_stars = calibrator.n_stars_
        too_few = [a for a, n in n_stars.items() if n < needed]
        if not too_few:
            return out, calibrator, fitted, skipped
        why = (f"fewer than {needed} training stars (the model has {n_terms} coefficients per "
               f"abundance; [calibration] min_stars_per_coefficient = {min_per_coefficient})")
        if len(too_few) == len(n_stars):
            return Xt, None, step, {"calibration": f"too few training stars for the calibration: "
                                             f"{int(n_stars.max())} at most, {why}"}
        skipped[f"calibration of {', '.join(too_few)}"] = why
        calibrator.set_params(abundance_columns=[a for a in n_stars.index if a not in too_few])


def run_method(frame, spectra=None, spectra_err=None, *, config=None, random_state=0, verbose=1,
               distance_column=None, plan=None, prepared=None, scratch_dir=None, client=None):
    """Run the paper's method on a catalogue (and its spectra).

    The catalogue's columns are mapped to roles (:mod:`sklearn_selfcal.columns`, with the
    ``[columns]`` configuration), cleaned (:mod:`sklearn_selfcal.cleaning`), and the parent sample
    (allStar's flags, ``LOGG <= logg_max``, and complete photometry and a spectrum when spectra are
    given) goes through :func:`make_method_pipeline`'s ``fit_transform``; then the radial profiles
    and the broken power-law fit of the disk sample (:func:`profiles_and_fit`).

    Parameters
    ----------
    frame : DataFrame or astropy Table of shape (n_stars, n_columns)
        APOGEE + Gaia catalogue in any recognised spelling (allStar DR16/DR17, Gaia archive,
        VizieR, ...). Not modified.
    spectra, spectra_err : ndarray of shape (n_stars, n_pixels), optional
        Continuum-normalised spectra aligned with ``frame``: the parallax model is trained.
        Without them the distances come from the catalogue (``spec_parallax``, a distance
        catalogue or Gaia parallaxes; see :mod:`sklearn_selfcal.distances`).
    config : dict, optional
        From :func:`load_config` (default :data:`DEFAULT_CONFIG`).
    random_state : int, default=0
        Seeds every random step (halves, Monte Carlo errors, MCMC, figure subsampling).
    verbose : int, default=1
        Report each step and show progress bars.
    distance_column : str, optional
        A distance column to use (``--distance``).
    plan : RunPlan, optional
        From :func:`~sklearn_selfcal.preflight.plan_run` (made here if not given).
    prepared : Bunch, optional
        From :func:`~sklearn_selfcal.preflight.prepare_catalogue` of ``frame`` with ``plan``
        (made here if not given), so that a caller that checked the catalogue first does not
        clean it twice.
    scratch_dir : str or path-like, optional
        Where the parallax model may write its feature matrices as memory-mapped scratch files
        (``[parallax] scratch``: ``"auto"`` does so when they would take more than a quarter of
        the machine's memory; default: the system's temporary directory).
    client : distributed.Client, optional
        Run on this Dask cluster (see :func:`~sklearn_selfcal.scaleout.dask_client`, which also
        sends the pipeline's parallel loops, the parallax folds and the action chunks, to its
        workers): the calibration is fitted over partitions
        (:func:`~sklearn_selfcal.scaleout.fit_calibrator_distributed`) and the profiles
        aggregated there (:func:`~sklearn_selfcal.scaleout.radial_profile_distributed`). The
        results are those of the run without it (to rounding: 1e-10 relative).

    Returns
    -------
    result : Bunch
        ``catalogue`` (DataFrame: the catalogue's cleaned columns, then ``QUALITY_OK``,
        ``PARENT_SAMPLE``, the distances, phase space, actions, ``<X>_NEW`` and ``DISK_SAMPLE``),
        ``pipeline`` (the fitted Pipeline, to apply to new stars), ``profile`` (DataFrame or None),
        ``regressor`` (fitted BrokenPowerLawRegressor or None), ``calibrator`` (or None),
        ``disk_sample`` (the disk sample's rows with canonical column names, for figures),
        ``plan``, ``summary`` (dict of numbers and choices), ``skipped`` (step -> reason),
        ``timings`` (s per step) and ``config``.

    Raises
    ------
    ValueError
        When the run could not make anything (no orbit column, no distances, no star in the parent
        sample), with what would fix it.
    """
    config = load_config() if config is None else config
    frame = as_frame(frame)
    steps = _Steps(verbose)
    if plan is None:
        plan, prepared = plan_and_prepare(frame, config, spectra=spectra is not None,
                                          distance_column=distance_column)
    if not plan.can_run:
        raise ValueError("the run cannot proceed: " + "; ".join(plan.problems))
    prep = prepared if prepared is not None else prepare_catalogue(frame, plan)
    work = prep.work
    skipped = {}
    summary = {"n_input": int(len(frame)), "distance_source": plan.distance.as_dict(),
               "cleaning": prep.cleaning, "left_out_of_parallax_model": plan.left_out}

    with steps("parent sample"):
        scfg = config["sample"]
        quality = quality_cuts(work, star_bad=scfg["exclude_star_bad"],
                               duplicates=scfg["exclude_duplicates"])
        summary["excluded_by_flags"] = {c: int((~quality[c]).sum()) for c in quality.columns}
        has_spectrum = None
        if spectra is not None:
            spectra, spectra_err, has_spectrum = _aligned_spectra(spectra, spectra_err, len(work))
        cuts = parent_sample_cuts(work, logg_max=scfg["logg_max"],
                                  magnitude_columns=plan.magnitudes if plan.spectra else (),
                                  has_spectrum=has_spectrum)
        quality_ok = quality.to_numpy().all(axis=1)
        parent = quality_ok & cuts.to_numpy().all(axis=1)
        summary["n_parent"] = int(parent.sum())
    if not parent.any():
        raise ValueError(f"no star passes the parent-sample cuts (allStar flags, LOGG <= "
                         f"{scfg['logg_max']}" + (", complete photometry, a spectrum" if
                                                   plan.spectra else "") + "): nothing to do")
    for line in plan.left_out:
        steps.note(line)

    scratch = _scratch_dir(config["parallax"]["scratch"], scratch_dir, spectra,
                           int(parent.sum())) if plan.spectra else None
    if scratch is not None:
        steps.note(f"parallax features in scratch files under {scratch} (memory bounded)")
    pipe = pipeline_from_config(config, plan, random_state=random_state, verbose=verbose,
                                scratch_dir=scratch)
    X = work.loc[parent]
    fit_params = {}
    if plan.spectra:  # row selection of the spectra columns composes indices: no pixel copied
        X = join_spectra(work, spectra, spectra_err).loc[parent]
        fit_params = {"sigma": X["parallax_error"].to_numpy(dtype=float)}
    y = X["parallax"].to_numpy(dtype=float) if plan.spectra else None
    Xt = X
    with config_context(enable_metadata_routing=True):
        for name, step in pipe.steps[:-1]:
            with steps(_STEP_LABELS[name]):
                Xt = step.fit_transform(Xt, y, **(fit_params if name == "parallax" else {}))
        X_orbits = Xt  # what the calibrator is fitted on (its draws and trends need it)
        with steps(_STEP_LABELS["calibrate"]):
            Xt, calibrator, fitted, why = _fit_calibration(
                pipe.named_steps["calibrate"], Xt,
                config["calibration"]["min_stars_per_coefficient"], client=client,
                partitions=config["dask"]["partitions"])
            pipe.steps[-1] = ("calibrate", fitted)
        skipped.update(why)
        for what, text in why.items():
            steps.note(f"{what} skipped: {text}")
        if calibrator is None:
            pipe = Pipeline(pipe.steps[:-1]).set_output(transform="pandas")

    if plan.spectra:
        parallax_step = pipe.named_steps["parallax"]
        summary["parallax_training_stars"] = int(np.sum(parallax_step.training_mask_))
        summary["parallax_intrinsic_scatter"] = float(parallax_step.intrinsic_scatter_)
    catalogue = _catalogue(prep.table, Xt, X, parent, quality_ok)
    view = _disk_view(catalogue, work)
    disk = parent & disk_sample_mask(view, logg_max=scfg["logg_max"], **_disk_kwargs(config))
    catalogue["DISK_SAMPLE"] = disk
    summary["n_disk"] = int(disk.sum())
    trends = None
    disk_view = view[disk]
    X_disk = X_orbits.loc[disk_view.index]
    del X, Xt, X_orbits, view  # the parent sample's tables: the catalogue holds what they added
    if calibrator is not None:
        summary["n_calibration_training"] = {k: int(v) for k, v in calibrator.n_stars_.items()}
        trends = _trends(calibrator, X_disk, config["diagnostics"], skipped)

    with steps("radial profiles and broken power-law fit"):
        g = config["gradient"]
        fit = profiles_and_fit(
            disk_view, g, random_state=random_state, verbose=verbose, client=client,
            partitions=config["dask"]["partitions"],
            radius_draws=_radius_draws(disk_view, plan.distance) if g["distance_errors"]
            else None,
            calibration_draws=_calibration_draws(calibrator, X_disk, g["column"])
            if g["calibration_errors"] else None)
    skipped.update(fit.skipped)
    for step, text in fit.skipped.items():
        steps.note(f"{step} skipped: {text}")
    if fit.regressor is not None:
        summary["feh_gradient"] = _posterior(fit.regressor)
        summary["feh_gradient_errors"] = fit.errors.to_dict(orient="index")
        summary["fit_column"] = fit.column
    return Bunch(catalogue=catalogue, pipeline=pipe, profile=fit.profile, regressor=fit.regressor,
                 gradient_errors=fit.errors, calibrator=calibrator, trends=trends,
                 disk_sample=disk_view, plan=plan, summary=summary, skipped=skipped,
                 timings=steps.times, config=config)


def _trends(calibrator, X_disk, diagnostics, skipped):
    """The residual trend of every abundance with every diagnostic column, before and after."""
    columns = [c for c in diagnostics["trend_columns"] if c in X_disk.columns]
    if not columns:
        skipped["nuisance trends"] = (f"none of [diagnostics] trend_columns "
                                      f"{diagnostics['trend_columns']} is in the catalogue")
        return None
    try:
        bins = calibrator.nuisance_trend(X_disk, columns=columns, n_bins=diagnostics["trend_bins"])
    except ValueError as exc:  # e.g. fewer training stars than bins
        skipped["nuisance trends"] = str(exc)
        return None
    return Bunch(bins=bins, summary=trend_summary(bins))


def _radius_draws(disk, distance):
    """Monte Carlo Galactocentric radii of the disk stars from their distance uncertainties."""
    if distance.kind in ("spectra", "spec_parallax"):
        value, error, kind = disk["spec_parallax"], disk["spec_parallax_err"], "parallax"
    else:
        value, error, kind = disk[DISTANCE_COLUMNS[0]], disk[DISTANCE_COLUMNS[1]], "distance"
    error = error.to_numpy(dtype=float)
    if len(disk) == 0 or not np.all(np.isfinite(error) & (error >= 0)):
        return None
    return radius_sampler(disk["ra"].to_numpy(float), disk["dec"].to_numpy(float),
                          value.to_numpy(float), error, kind=kind)


def _calibration_draws(calibrator, X_disk, column):
    """Draws of the fitted abundance under the calibration's coefficient uncertainty."""
    if calibrator is None or not column.endswith(CALIBRATED_SUFFIX):
        return None
    name = column[:-len(CALIBRATED_SUFFIX)]
    if name not in calibrator.abundance_columns_:
        return None
    k = calibrator.abundance_columns_.index(name)
    return lambda rng: calibrator.sample_transform(X_disk, random_state=rng)[:, k]


_STEP_LABELS = {"parallax": "spectro-photometric parallaxes", "drop_spectra": "spectra dropped",
                "distance": "distances",
                "orbits": "phase space and actions", "calibrate": "self-calibration"}


def _scratch_dir(setting, where, spectra, n_parent):
    """Where the parallax features go: None (memory) or a directory, as ``[parallax] scratch``."""
    if setting is False or setting == "false":
        return None
    if setting == "auto":
        n_pixels = spectra.n_pixels if isinstance(spectra, SpectraArray) else np.shape(spectra)[1]
        feature_bytes = n_parent * (n_pixels + 13) * 4  # one float32 matrix, both halves
        try:
            memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
            memory = 16 * 2**30
        if feature_bytes <= memory / 4:
            return None
    elif setting is not True and setting != "true":
        raise ValueError(f"[parallax] scratch must be 'auto', true or false, got {setting!r}")
    return os.fspath(where) if where is not None else tempfile.gettempdir()


def _aligned_spectra(spectra, spectra_err, n):
    """The spectra as :class:`SpectraArray` (files stay on disk) and which rows have one."""
    if spectra_err is None:
        raise ValueError("spectra without flux uncertainties: they are needed to mask bad pixels "
                         "and to propagate feature errors")
    if not isinstance(spectra, SpectraArray):
        spectra = np.asarray(spectra)
        if spectra.ndim != 2:
            raise ValueError(f"spectra must be 2-D (n_stars, n_pixels), got shape {spectra.shape}")
        # a row of NaN (a star without a spectrum in an aligned array) is not in the parent sample
        has_spectrum = np.isfinite(spectra[:, 0])
        spectra = SpectraArray.from_array(spectra)
    else:
        has_spectrum = None
    if not isinstance(spectra_err, SpectraArray):
        spectra_err = SpectraArray.from_array(np.asarray(spectra_err))
    for name, array in (("spectra", spectra), ("spectra uncertainties", spectra_err)):
        if len(array) != n:
            raise ValueError(f"{len(array)} {name} for {n} catalogue rows; they must be aligned "
                             "row by row")
    return spectra, spectra_err, has_spectrum


def _disk_kwargs(config):
    dcfg = dict(config["disk"])
    dcfg["exclude_ids"] = dcfg["exclude_ids"] or None
    return dcfg


def _catalogue(table, Xt, X, parent, quality_ok):
    """The catalogue's cleaned columns, then every column the pipeline added (NaN off-parent)."""
    added = [c for c in Xt.columns if c not in X.columns]
    clash = [c for c in added if c in table.columns]
    out = table.rename(columns={c: f"{c}_input" for c in clash}) if clash else table
    flags = pd.DataFrame({"QUALITY_OK": quality_ok, "PARENT_SAMPLE": parent}, index=table.index)
    full = pd.DataFrame(np.nan, index=table.index, columns=added)
    full.loc[table.index[parent], added] = Xt[added].reindex(table.index[parent]).to_numpy(float)
    return pd.concat([out, flags, full], axis=1)  # one copy of the table: the catalogue


def _disk_view(catalogue, work):
    """The catalogue with the canonical names of the input columns too (aligned rows).

    The catalogue keeps the user's column names; the disk cuts, the profiles, the error draws and
    the figures read the canonical ones (``LOGG``, ``ra``, ``FE_H``, ...).
    """
    missing = [c for c in work.columns if c not in catalogue.columns]
    return pd.concat([catalogue, work[missing]], axis=1) if missing else catalogue


def _posterior(regressor):
    return {name: {"median": float(row["median"]), "err_minus": float(row["err_minus"]),
                   "err_plus": float(row["err_plus"])} for name, row in
            regressor.summary_.iterrows()}


def profiles_and_fit(frame, gradient_config=None, *, radius_draws=None, calibration_draws=None,
                     random_state=None, verbose=0, client=None, partitions=0):
    """Radial abundance profiles (Tables 1-3) and the broken power-law fit with its error budget.

    The profiles are those of the calibrated ``<X>_NEW`` columns (of the reported abundances when
    the calibration was skipped). The fit (:func:`~sklearn_selfcal.gradients.fit_radial_gradient`)
    uses the profile's medians with their ``1.253 sigma / sqrt(N)`` uncertainties (the paper's
    errors), placed at ``radius`` (``"R_MEDIAN"``, the median radius of the bin's stars, avoids the
    bias of placing them at the bin centre ``"R"``): the points of
    :func:`~sklearn_selfcal.maps.profile_points`, which Figure 8 draws. With ``radius_draws`` and
    ``calibration_draws``, the distance and calibration uncertainties are propagated by Monte Carlo
    and added in quadrature (``errors``).

    Parameters
    ----------
    frame : DataFrame
        The disk sample: ``R`` (kpc), abundances (dex) and ``ALPHA_M`` (or ``ALPHA_M_NEW``).
    gradient_config : dict, optional
        The ``[gradient]`` configuration (default: :data:`DEFAULT_CONFIG`'s).
    radius_draws, calibration_draws : callable, optional
        Of :func:`~sklearn_selfcal.gradients.fit_radial_gradient`: Monte Carlo radii (kpc) and
        calibrated abundances (dex) of the rows of ``frame``.
    random_state : int or None
        Seeds the bootstrap, the draws and the MCMC.
    verbose : int
        Progress of the MCMC.
    client : distributed.Client, optional
        Aggregate the profiles on this Dask cluster
        (:func:`~sklearn_selfcal.scaleout.radial_profile_distributed`, the same medians) unless
        a bootstrap is asked for (``n_bootstrap``, computed in memory).
    partitions : int, default=0
        Partitions of the table on the cluster (0: one per worker thread).

    Returns
    -------
    result : Bunch
        ``profile`` (DataFrame or None), ``regressor`` (fitted BrokenPowerLawRegressor or None,
        when there are too few populated bins), ``errors`` (DataFrame of the fit's errors: the
        paper's, from the distances, from the calibration and in total; or None), ``column`` (the
        profile column fitted) and ``skipped`` (product -> why it was not made).
    """
    g = {**DEFAULT_CONFIG["gradient"], **(gradient_config or {})}
    out = Bunch(profile=None, regressor=None, errors=None, column=None, skipped={})
    columns = [c for c in frame.columns if c.endswith(CALIBRATED_SUFFIX)
               and c[:-len(CALIBRATED_SUFFIX)] in ABUNDANCE_COLUMNS]
    if not columns:
        columns = [c for c in ABUNDANCE_COLUMNS if c in frame.columns]
    radius = frame["R"].to_numpy(float) if "R" in frame.columns else np.empty(0)
    if not columns or radius.size == 0 or not np.isfinite(radius).all():
        out.skipped["radial profiles"] = "no disk star with a radius and an abundance"
        out.skipped["broken power-law fit"] = "no radial profile"
        return out
    split = next((c for c in (calibrated_name("ALPHA_M"), "ALPHA_M") if c in frame.columns), None)
    if client is not None and not g["n_bootstrap"]:
        from .scaleout import radial_profile_distributed
        from .scaleout._cluster import partitioned

        keep = list(dict.fromkeys(["R", *columns] + ([split] if split else [])))
        out.profile = radial_profile_distributed(
            partitioned(frame[keep], client, partitions), columns, split=split, client=client)
    else:
        out.profile = radial_abundance_profile(frame, columns, split=split,
                                               n_bootstrap=g["n_bootstrap"],
                                               random_state=random_state)
    requested = g["column"]
    reported = requested[:-len(CALIBRATED_SUFFIX)] if requested.endswith(CALIBRATED_SUFFIX) \
        else requested
    out.column = next((c for c in (requested, reported) if c in columns), None)
    if out.column is None:
        out.skipped["broken power-law fit"] = f"no {requested} column in the profile"
        return out
    if not (out.profile["population"] == g["population"]).any():
        out.skipped["broken power-law fit"] = (
            f"no {g['population']} population in the profile (the catalogue has no [alpha/M] "
            "column to split the disk: map it with [columns] ALPHA_M = \"<column>\")")
        return out
    points = profile_points(out.profile, out.column, population=g["population"],
                            radius=g["radius"])
    if points.R.size < g["min_bins"]:
        out.skipped["broken power-law fit"] = (
            f"{points.R.size} populated radial bin(s) of {out.column} for the {g['population']} "
            f"population; the fit needs at least {g['min_bins']} ([gradient] min_bins)")
        return out
    fit = fit_radial_gradient(
        frame, out.column, population=g["population"], radius=g["radius"], split=split,
        radius_draws=radius_draws,
        calibration_draws=calibration_draws if out.column == requested else None,
        n_draws=g["n_draws"], random_state=random_state, n_walkers=g["n_walkers"],
        n_steps=g["n_steps"], burn_in=g["burn_in"], thin=g["thin"], verbose=verbose)
    out.regressor, out.errors = fit.regressor, fit.errors
    return out
