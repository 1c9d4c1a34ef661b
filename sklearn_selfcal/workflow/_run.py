"""The main job: plan, the method's Pipeline on the parent sample, then profiles and the fit.

:func:`run_method` is what ``sklearn-selfcal run`` does: the catalogue's columns are mapped to roles
and cleaned, the parent sample is cut (once, :func:`~sklearn_selfcal.preflight.sample_cuts`), the
Pipeline of :func:`~sklearn_selfcal.workflow.pipeline_from_config` is fitted with its own
``fit_transform``, the disk sample is cut with the fitted training filter's thresholds, and the
radial profiles and the broken power law are fitted (:func:`~sklearn_selfcal.workflow.profiles_and_fit`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time

import numpy as np
import pandas as pd
from sklearn import config_context
from sklearn.utils import Bunch

from .._paper import PARALLAX_ERROR
from ..calibration import trend_summary
from .._validation import check_table
from ..config import check_run_settings, effective_config, load_config
from ..preflight import plan_and_prepare, prepare_catalogue
from ..spectra import SpectraArray, join_spectra
from ._pipeline import pipeline_from_config
from ._profiles import _calibration_draws, _posterior, _radius_draws, profiles_and_fit

__all__ = ["run_method"]


def run_method(frame, spectra=None, spectra_err=None, *, config=None, random_state=0, verbose=1,
               distance_column=None, plan=None, prepared=None, scratch_dir=None, client=None,
               before_fit=None):
    """Run the paper's method on a catalogue (and its spectra).

    The catalogue's columns are mapped to roles (:mod:`sklearn_selfcal.columns`, with the
    ``[columns]`` configuration) and cleaned (:mod:`sklearn_selfcal.cleaning`); the parent sample
    (allStar's flags, ``LOGG <= logg_max``, and complete photometry and a spectrum when spectra
    are given) goes through the ``fit_transform`` of the Pipeline of
    :func:`~sklearn_selfcal.workflow.pipeline_from_config`; then the radial profiles and the
    broken power-law fit of the disk sample (:func:`~sklearn_selfcal.workflow.profiles_and_fit`).

    Parameters
    ----------
    frame : DataFrame or astropy Table of shape (n_stars, n_columns)
        APOGEE + Gaia catalogue in any recognised spelling (allStar DR16/DR17, Gaia archive,
        VizieR, ...). Not modified.
    spectra, spectra_err : ndarray of shape (n_stars, n_pixels) or SpectraArray, optional
        Continuum-normalised spectra aligned with ``frame``: the parallax model is trained.
        Without them the distances come from the catalogue (``spec_parallax``, a distance
        catalogue or Gaia parallaxes; see :mod:`sklearn_selfcal.distances`).
    config : dict, optional
        From :func:`~sklearn_selfcal.config.load_config` (default: its defaults).
    random_state : int, default=0
        Seeds every random step (halves, Monte Carlo errors, MCMC, figure subsampling).
    verbose : int, default=1
        Report each step and show progress bars.
    distance_column : str, optional
        A distance column to use (``--distance``).
    plan : RunPlan, optional
        From :func:`~sklearn_selfcal.preflight.plan_and_prepare` (made here if not given), with the
        sample cuts it computed.
    prepared : Bunch, optional
        From :func:`~sklearn_selfcal.preflight.prepare_catalogue` of ``frame`` with ``plan``
        (made here if not given), so that a caller that checked the catalogue first does not
        clean it twice.
    scratch_dir : str or path-like, optional
        Where the parallax model may write its feature matrices as memory-mapped scratch files
        (``[parallax] scratch``: ``"auto"`` does so when they would take more than a quarter of
        the machine's memory; default: the system's temporary directory).
    client : distributed.Client, optional
        Aggregate the radial profiles on this Dask cluster
        (:func:`~sklearn_selfcal.scaleout.radial_profile_distributed`); the pipeline's parallel
        loops (folds, action chunks) go to its workers through joblib's Dask backend when the
        caller opened one (:func:`~sklearn_selfcal.scaleout.dask_client` does). The results are
        those of the run without it (to rounding: 1e-10 relative).
    before_fit : callable, optional
        Called with the result so far (the Bunch returned below, without ``profile``,
        ``regressor`` and ``gradient_errors``; not to be modified) just before the radial profiles
        and the fit, e.g. to start drawing the figures that do not need them
        (:func:`~sklearn_selfcal.outputs.start_run_figures`) while they run.

    Returns
    -------
    result : Bunch
        ``catalogue`` (DataFrame: the catalogue's cleaned columns, then ``QUALITY_OK``,
        ``PARENT_SAMPLE``, the distances, phase space, actions, ``<X>_NEW`` and ``DISK_SAMPLE``),
        ``pipeline`` (the fitted Pipeline, to apply to new stars), ``profile`` (DataFrame or None),
        ``regressor`` (fitted BrokenPowerLawRegressor or None), ``calibrator`` (or None when no
        abundance could be calibrated), ``disk_sample`` (the disk sample's rows with canonical
        column names, for figures), ``plan``, ``summary`` (dict of numbers and choices),
        ``skipped`` (step -> reason), ``timings`` (s per step) and ``config`` (every setting the
        run used: :func:`~sklearn_selfcal.config.effective_config`).

    Raises
    ------
    ValueError
        Before any computation, when the run could not make anything (no orbit column, no
        distances, no star in the parent sample: the message names the cut that emptied it and
        the configuration key that widens it), a configuration value a step rejects, or a
        catalogue whose row index repeats itself.
    """
    config = load_config() if config is None else config
    frame = check_table(frame, "run_method")  # repeated column names or index labels: refused
    steps = _Steps(verbose)
    has_spectrum = None
    if spectra is not None:
        spectra, spectra_err, has_spectrum = _aligned_spectra(spectra, spectra_err, len(frame))
    if plan is None:
        plan, prepared = plan_and_prepare(frame, config, spectra=spectra is not None,
                                          distance_column=distance_column,
                                          has_spectrum=has_spectrum)
    problems = plan.problems + check_run_settings(config)
    if problems:
        raise ValueError("the run cannot proceed: " + "; ".join(problems))
    prep = prepared if prepared is not None else prepare_catalogue(frame, plan)
    work, sample = prep.work, plan.sample
    parent = sample.parent
    scratch = _scratch_dir(config["parallax"]["scratch"], scratch_dir, spectra,
                           int(parent.sum())) if plan.spectra else None
    pipe = pipeline_from_config(config, plan, columns=work.columns, random_state=random_state,
                                verbose=verbose, scratch_dir=scratch)
    summary = {"n_input": int(len(frame)), "distance_source": plan.distance.as_dict(),
               "cleaning": prep.cleaning, "left_out_of_parallax_model": plan.left_out,
               "excluded_by_flags": {c: int((~sample.quality[c]).sum())
                                     for c in sample.quality.columns},
               "n_parent": int(parent.sum())}
    for line in plan.left_out:
        steps.note(line)
    if scratch is not None:
        steps.note(f"parallax features in scratch files under {scratch} (memory bounded)")

    X = method_input(work, plan, pipe, spectra, spectra_err).loc[parent]
    y, fit_params = None, {}
    if plan.spectra:
        y = X["parallax"].to_numpy(dtype=float)
        fit_params = {PARALLAX_ERROR: X[PARALLAX_ERROR].to_numpy(dtype=float)}
    if plan.spectra:  # the orbits step's tables are built while the parallax model is fitted
        threading.Thread(target=_build_action_tables, args=(pipe,), name="action tables",
                         daemon=True).start()
    with steps("the method's pipeline (" + " -> ".join(n for n, _ in pipe.steps) + ")"), \
            config_context(enable_metadata_routing=True):
        Xt = pipe.fit_transform(X, y, **fit_params)
    calibrator, skipped = _calibration_outcome(pipe)
    if plan.spectra:
        parallax_step = pipe.named_steps["parallax"]
        summary["parallax_training_stars"] = int(np.sum(parallax_step.training_mask_))
        summary["parallax_intrinsic_scatter"] = float(parallax_step.intrinsic_scatter_)
    catalogue = _catalogue(prep.table, Xt, X, parent, sample.quality_ok)
    view = _disk_view(catalogue, work)
    training_filter = pipe.get_params()["calibrate__calibrator__training_filter"]
    disk = parent & training_filter.disk_cuts(view).to_numpy().all(axis=1)  # with its thresholds
    catalogue["DISK_SAMPLE"] = disk
    summary["n_disk"] = int(disk.sum())
    disk_view = view[disk]
    fitted_on = pipe.named_steps["calibrate"].transformer_list[1][1].feature_names_in_
    X_disk = Xt.loc[disk_view.index, list(fitted_on)]  # what the calibrator saw, disk rows
    del X, Xt, view  # the parent sample's tables: the catalogue holds what they added
    trends = None
    if calibrator is not None:
        summary["n_calibration_training"] = {k: int(v) for k, v in calibrator.n_stars_.items()}
        trends = _trends(calibrator, X_disk, config["diagnostics"], skipped)

    result = Bunch(catalogue=catalogue, pipeline=pipe, calibrator=calibrator, trends=trends,
                   disk_sample=disk_view, plan=plan, summary=summary, skipped=skipped,
                   timings=steps.times, config=effective_config(config, pipe))
    if before_fit is not None:
        before_fit(result)
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
    for step, text in skipped.items():
        steps.note(f"{step} skipped: {text}")
    if fit.regressor is not None:
        summary["feh_gradient"] = _posterior(fit.regressor)
        summary["feh_gradient_errors"] = fit.errors.to_dict(orient="index")
        summary["fit_column"] = fit.column
    result.update(profile=fit.profile, regressor=fit.regressor, gradient_errors=fit.errors)
    return result


def _build_action_tables(pipe):
    """Build the tables of the orbits step's :class:`~sklearn_selfcal.ActionTransformer` (they
    depend on the potential only; built once per process, a second caller waits for them) while
    the parallax step fits: it leaves one of two cores idle for much of its time. The tables
    use no BLAS, so they are the same bits whatever else runs. A bad setting is left for the
    orbits step itself to report."""
    with contextlib.suppress(ValueError, TypeError):
        pipe.get_params()["orbits__actions"]._model()


def method_input(work, plan, pipe, spectra=None, spectra_err=None):
    """The method Pipeline's input table: its columns of ``work``, under the method's names.

    Only the columns the steps read (:meth:`~sklearn_selfcal.preflight.RunPlan.method_columns`
    and the calibrator's named columns), the chosen distance catalogue's renamed to
    :data:`~sklearn_selfcal.distances.DISTANCE_INPUT`, and the spectra when given: the fitted
    Pipeline then applies to a catalogue of another release whatever its spelling.

    Parameters
    ----------
    work : DataFrame
        The canonical table (:func:`~sklearn_selfcal.preflight.prepare_catalogue`).
    plan : RunPlan
        Its plan.
    pipe : sklearn.pipeline.Pipeline
        The method's Pipeline (its calibrator's column parameters).
    spectra, spectra_err : SpectraArray, optional
        Aligned with ``work`` (:func:`~sklearn_selfcal.spectra.join_spectra`).

    Returns
    -------
    X : DataFrame
        Every row of ``work``.
    """
    calibrator = pipe.get_params()["calibrate__calibrator"]
    named = [c for key in ("abundance_columns", "nuisance_columns", "orbit_features")
             for c in np.atleast_1d(getattr(calibrator, key) or ()) if isinstance(c, str)]
    table = work.rename(columns=plan.distance.renames())
    X = table[[c for c in plan.method_columns(extra=named) if c in table.columns]]
    if spectra is not None:  # spectra columns compose row selections: no pixel copied
        X = join_spectra(X, spectra, spectra_err)
    return X


def _calibration_outcome(pipe):
    """The fitted calibrator (None when it calibrated nothing) and what it skipped, with why."""
    calibrator = pipe.named_steps["calibrate"].transformer_list[1][1]
    why = calibrator.skipped_
    skipped = {f"calibration of {name}": text for name, text in why.items()}
    if not len(calibrator.abundance_columns_):
        return None, {"calibration": "; ".join(sorted(set(why.values())))
                      or "no abundance to calibrate"}
    return calibrator, skipped


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
