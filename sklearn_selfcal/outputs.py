"""The files a run writes, and the record of how they were made.

:func:`write_outputs` writes, into a directory the caller owns (the command line gives it a private
one that is moved into place at the end, :class:`~sklearn_selfcal.io.outdir.OutputDirectory`):
``catalogue.parquet`` and ``catalogue.fits``, ``radial_profiles.ecsv`` (Tables 1-3), ``nuisance_trends.ecsv`` and
``nuisance_trend_bins.ecsv`` (the residual trends after the calibration),
``feh_gradient_fit.json``, ``figures/*.png``, ``model.pkl`` (the fitted Pipeline, for
``sklearn-selfcal apply``) and ``provenance.json`` -- each only when it could be
made, the reason of any missing one recorded in ``provenance.json``.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from .gradients import write_profile_ecsv
from .io import atomic_write, write_catalogue, write_table

__all__ = ["write_outputs", "start_run_figures", "provenance", "write_json"]

_PACKAGES = ("sklearn-selfcal", "numpy", "scipy", "scikit-learn", "pandas", "astropy", "gala",
             "galpy", "emcee", "joblib", "matplotlib", "pyarrow")


#: Inputs larger than this are checksummed on their first and last 64 MiB only (a 60 GB spectra
#: file would otherwise take minutes); ``provenance.json`` says which.
FULL_CHECKSUM_BYTES = 2 * 2**30
_PART = 64 * 2**20


def _checksum(path):
    """``{"sha256": ..., "bytes": ..., "scope": "whole file" | "first and last 64 MiB"}``."""
    size = Path(path).stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        if size <= FULL_CHECKSUM_BYTES:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
            scope = "whole file"
        else:
            digest.update(f.read(_PART))
            f.seek(size - _PART)
            digest.update(f.read(_PART))
            scope = "first and last 64 MiB"
    return {"sha256": digest.hexdigest(), "bytes": size, "scope": scope}


def provenance(*, config, random_state, inputs=(), command=None, timings=None, extra=None):
    """Record how a result was made: versions, parameters, seed, input checksums.

    Parameters
    ----------
    config : dict
        The run's configuration (JSON-serialisable), recorded as it is.
    random_state : int or None
        The run's seed, recorded as it is.
    inputs : sequence of path-like, default=()
        Files read; their SHA-256 checksums are recorded.
    command : list of str, optional
        The command line.
    timings : dict, optional
        Seconds per step.
    extra : dict, optional
        More entries merged into the record's top level (they override the standard keys of the
        same name).

    Returns
    -------
    record : dict (JSON-serialisable)
        ``created_utc``, ``command`` (default: ``sys.argv``), ``python``, ``platform``,
        ``versions`` (of the main dependencies, None when not installed), ``random_state``,
        ``config``, ``inputs`` (path -> ``sha256`` and ``bytes``), ``timings_s``, then ``extra``.

    Examples
    --------
    >>> record = provenance(config={"gradient": {"column": "FE_H_NEW"}}, random_state=0,
    ...                     command=["sklearn-selfcal", "demo"], extra={"note": "test"})
    >>> record["command"], record["random_state"], record["note"], record["inputs"]
    (['sklearn-selfcal', 'demo'], 0, 'test', {})
    """
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command if command is not None else sys.argv,
        "python": sys.version,
        "platform": platform.platform(),
        "versions": versions,
        "random_state": random_state,
        "config": config,
        "inputs": {str(p): _checksum(p) for p in inputs},
        "timings_s": timings or {},
        **(extra or {}),
    }


def write_json(obj, path):
    """Write ``obj`` as indented JSON, atomically (numpy scalars and arrays, DataFrames allowed).

    Parameters
    ----------
    obj : dict
        The record.
    path : str or path-like
        The file.
    """
    with atomic_write(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pd.DataFrame):
        return value.to_dict(orient="records")
    return str(value)


_UNITS = {"spec_parallax": "mas", "spec_parallax_err": "mas", "distance_kpc": "kpc",
          "distance_kpc_err": "kpc", "x": "kpc", "y": "kpc", "z": "kpc", "R": "kpc",
          "v_x": "km/s", "v_y": "km/s", "v_z": "km/s", "v_R": "km/s", "v_phi": "km/s",
          "phi": "rad", "J_R": "kpc km/s", "L_z": "kpc km/s", "J_z": "kpc km/s",
          "E": "km2 / s2"}


def write_outputs(result, out_dir, *, random_state=0, inputs=(), command=None, extra=None,
                  checks=None, n_jobs=-1, verbose=1, figures=None):
    """Write the calibrated catalogue, tables, fit summary, figures and provenance.

    The figures (:func:`~sklearn_selfcal.figures.start_figures`) are drawn by ``n_jobs - 1``
    worker processes while the catalogue and the tables are written, then by this process too;
    those that do not need the radial profiles and the fit may have been started earlier
    (:func:`start_run_figures`, ``figures``).

    Parameters
    ----------
    result : Bunch
        Of :func:`~sklearn_selfcal.workflow.run_method`.
    out_dir : str or path-like
        An existing directory.
    random_state : int, default=0
        Seed of everything random in the figures, recorded in ``provenance.json``.
    inputs : sequence of path-like, default=()
        Files read (checksummed in ``provenance.json``).
    command : list of str, optional
        The command line recorded in ``provenance.json`` (default: ``sys.argv``).
    extra : dict or callable, optional
        Added to ``provenance.json`` and ``feh_gradient_fit.json`` (e.g. the simulation's truth).
        A callable returning the dict is called once the figures are started, so that its work
        (e.g. the demo's fit to the simulation's truth) runs while the workers draw.
    checks : DataFrame, optional
        The preflight's cut counts, recorded in ``provenance.json``.
    n_jobs : int or None, default=-1
        Processes drawing the figures, this one included (joblib's convention; -1: one per core).
        The figures do not depend on it; they take about 20 s of one core whatever the
        catalogue's size, a worker about 2 s more to start.
    verbose : int, default=1
        Show a progress bar over the figures when truthy.
    figures : object, optional
        What :func:`start_run_figures` returned for this run before its profiles and fit (then
        ``random_state``, ``n_jobs`` and ``verbose`` of the figures are those given there); None:
        the figures are started here.

    Returns
    -------
    paths : dict of str to str
        What was written.
    """
    out_dir = Path(out_dir)
    paths = {}
    skipped = dict(result.skipped)
    if figures is None:  # drawn in the workers while the files are written
        figures = start_run_figures(result, random_state=random_state, n_jobs=n_jobs,
                                    verbose=verbose)
    if figures is None:
        skipped["figures"] = "[figures] enabled = false"
    if callable(extra):
        extra = extra()
    catalogue = result.catalogue
    paths["catalogue_parquet"] = str(out_dir / "catalogue.parquet")
    write_catalogue(catalogue, paths["catalogue_parquet"])
    paths["catalogue_fits"] = str(out_dir / "catalogue.fits")
    units = {c: u for c, u in _UNITS.items() if c in catalogue.columns}
    units.update({f"{c}_err": u for c, u in _UNITS.items() if f"{c}_err" in catalogue.columns})
    write_catalogue(catalogue, paths["catalogue_fits"], units=units, non_ascii="escape")
    if result.profile is not None:  # one writer of the profile table: units and binning kept
        paths["profiles"] = write_profile_ecsv(result.profile, out_dir / "radial_profiles.ecsv")
    if result.trends is not None:
        paths["trend_bins"] = str(out_dir / "nuisance_trend_bins.ecsv")
        write_table(result.trends.bins, paths["trend_bins"],
                    meta={"description": "mean abundance residual at fixed orbit (dex) in bins of "
                          "every nuisance, before and after the calibration"})
        paths["trends"] = str(out_dir / "nuisance_trends.ecsv")
        write_table(result.trends.summary.reset_index(), paths["trends"],
                    meta={"description": "residual trend of every abundance with every nuisance "
                          "after the calibration, with its significance"})
    if result.regressor is not None:
        paths["fit"] = str(out_dir / "feh_gradient_fit.json")
        write_json({"model": "broken power law, eq. 9 of Eilers et al. 2022",
                     "column": result.summary["fit_column"],
                     "units": {"m1": "dex/kpc", "m2": "dex/kpc", "b": "dex", "k": "kpc"},
                     "posterior": result.summary["feh_gradient"],
                     "errors": result.summary["feh_gradient_errors"],
                     "errors_description": "std: the posterior's (the paper's errors: the scatter "
                     "of the bins' medians); std_distance and std_calibration: propagated by "
                     "Monte Carlo from the distance and the calibration uncertainties; "
                     "*_total: all in quadrature",
                     "acceptance_fraction": float(np.mean(result.regressor.acceptance_fraction_)),
                     "autocorr_time": result.regressor.autocorr_time_.tolist(),
                     **(extra or {})}, paths["fit"])
    paths["model"] = str(out_dir / "model.pkl")  # the fitted Pipeline: sklearn-selfcal apply
    with atomic_write(paths["model"]) as tmp:
        joblib.dump(result.pipeline, tmp)
    if figures is not None:
        drawn, why = figures.write(result, out_dir / "figures")
        paths.update({f"figure_{k}": v for k, v in drawn.items()})
        skipped.update(why)
    paths["provenance"] = str(out_dir / "provenance.json")
    record = {"summary": result.summary, "skipped": skipped,
              "distance_source": result.summary.get("distance_source"),
              "files": sorted(Path(p).name for p in paths.values()), **(extra or {})}
    if checks is not None:
        record["cut_counts"] = checks
    write_json(provenance(config=result.config, random_state=random_state, inputs=inputs,
                           command=command, timings=result.timings, extra=record),
                paths["provenance"])
    return paths


def start_run_figures(result, *, random_state=0, n_jobs=-1, verbose=1, workers=None):
    """Start drawing a run's figures from its disk sample, the profiles and the fit given later.

    The figures that need neither the radial profiles nor the fit (all but Figures 7 and 8) start
    at once in ``n_jobs - 1`` worker processes (:func:`~sklearn_selfcal.figures.start_figures`,
    ``fit_later``), e.g. while :func:`~sklearn_selfcal.workflow.run_method` fits the profiles
    (its ``before_fit``); :func:`write_outputs` (``figures=``) adds the profiles and the fit and
    writes them all. The figures are the same as when they are all started by
    :func:`write_outputs`.

    Parameters
    ----------
    result : Bunch
        Of :func:`~sklearn_selfcal.workflow.run_method`, complete or as passed to its
        ``before_fit`` (``disk_sample``, ``calibrator``, ``config``, ``summary``).
    random_state : int, default=0
        Seed of everything random in the figures.
    n_jobs : int or None, default=-1
        Processes drawing the figures, the caller's included (joblib's convention).
    verbose : int, default=1
        Show a progress bar over the figures when truthy.
    workers : object or None, default=None
        Worker processes started ahead (:func:`~sklearn_selfcal.figures.start_workers`, then
        ``n_jobs`` is theirs), e.g. when the run started; stopped after the figures.

    Returns
    -------
    figures : object or None
        To pass to :func:`write_outputs`; None when ``[figures] enabled = false``. Its ``close()``
        stops the workers of a run that fails before its outputs are written.
    """
    if not result.config["figures"]["enabled"]:
        if workers is not None:
            workers.close()
        return None
    return _RunFigures(result, random_state, n_jobs, verbose, workers)


class _RunFigures:
    """The figures of a run: started from its disk sample, written with its profiles and fit."""

    def __init__(self, result, random_state, n_jobs, verbose, workers):
        from .figures import start_figures

        self.job = None
        if len(result.disk_sample) == 0:
            if workers is not None:
                workers.close()
            return
        g = result.config["gradient"]
        fitted = result.calibrator.nuisance_columns if result.calibrator is not None else ("LOGG",)
        nuisances = [n for n in fitted if isinstance(n, str) and n in result.disk_sample.columns]
        self.job = start_figures(
            result.disk_sample, fit_radius=g["radius"], fit_column=g["column"],
            fit_population=g["population"], nuisances=nuisances or ("LOGG",),
            random_state=random_state, dpi=result.config["figures"]["dpi"], n_jobs=n_jobs,
            verbose=verbose, fit_later=True, workers=workers)

    def write(self, result, out_dir):
        """Write the figures into ``out_dir``: (name -> path, figure -> why it was skipped)."""
        from .exceptions import FigureSkippedWarning

        if self.job is None:
            return {}, {"figures": "no star in the disk sample"}
        self.job.add_fit(result.profile, result.regressor,
                         result.summary.get("fit_column", result.config["gradient"]["column"]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FigureSkippedWarning)  # recorded in provenance.json
            rendered = self.job.write(out_dir)
        return dict(rendered), {f"figure {k}": v for k, v in rendered.skipped.items()}

    def close(self):
        """Stop the workers of figures that will not be written."""
        if self.job is not None:
            self.job.close()
