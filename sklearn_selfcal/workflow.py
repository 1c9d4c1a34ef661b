"""The whole method end to end: catalogue + spectra -> calibrated catalogue, tables, fit, figures.

Each step is a small function working on a DataFrame (one row per star, never dropped or
reordered); :func:`run_method` chains them and :func:`write_outputs` writes the results. The command
line (:mod:`sklearn_selfcal.cli`) is a thin layer over these two.

Steps (paper sections in brackets):

1. :func:`parent_sample_mask` -- giants with log g <= 2.2, complete photometry and a spectrum [3.1];
2. :func:`cross_fitted_parallaxes` -- spectro-photometric parallaxes, every star predicted by the
   model trained on the other half of the parent sample [3.1];
3. :func:`orbits` -- Galactocentric phase space and actions from those parallaxes [3.2];
4. :func:`~sklearn_selfcal.selection.disk_sample_mask` -- the disk sample [3];
5. :func:`self_calibrate` -- ``NuisanceCalibrator`` fitted on the disk sample's training stars [2];
6. :func:`gradients` -- radial profiles (Tables 1-3) and the broken power-law fit of [Fe/H] [4];
7. figures (:func:`sklearn_selfcal.plotting.render_all_figures`) [4, 5.2].
"""

from __future__ import annotations

import copy
import hashlib
import json
import platform
import sys
import time
import tomllib
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import config_context
from sklearn.utils import Bunch


from .actions import ActionTransformer
from .calibration import NuisanceCalibrator
from .crossfit import CrossFitTransformer
from .gradients import BrokenPowerLawRegressor, radial_abundance_profile
from .io import atomic_write, write_catalogue, write_table
from ._paper import (ABUNDANCE_COLUMNS, GAIA_PARALLAX_ZERO_POINT, LOGG_MAX, LOGG_REFERENCE,
                     PAPER_ALPHA)
from .parallax import fractional_scatter, make_parallax_pipeline
from .parallax_features import MAGNITUDE_COLUMNS, gaia_training_mask, join_spectra
from .selection import disk_sample_mask

__all__ = ["DEFAULT_CONFIG", "ORBIT_INPUT_COLUMNS", "make_method_pipeline", "load_config",
           "parent_sample_mask", "cross_fitted_parallaxes",
           "orbits", "self_calibrate", "gradients", "run_method", "write_outputs",
           "prepare_output_dir", "provenance"]

#: Every setting of the main job, with the paper's values. A config file (TOML or JSON) overrides
#: any of them by section and key.
DEFAULT_CONFIG = {
    "sample": {"logg_max": LOGG_MAX},
    "parallax": {
        "alpha": PAPER_ALPHA,       # L1 strength per training star (the paper's lambda = 160)
        "n_folds": 2,               # the paper's two halves
        "parallax_zero_point": GAIA_PARALLAX_ZERO_POINT,  # mas, subtracted from Gaia parallaxes
        "dtype": "float32",
        "tol": 1e-4,
        "max_iter": 100,
    },
    "actions": {"n_samples": 0, "n_jobs": None},
    "disk": {"z_max": 1.0, "wedge_angle": 6.0, "vz_max": 100.0, "exclude_ids": []},
    "calibration": {"nuisance_columns": ["LOGG"], "nuisance_reference": [LOGG_REFERENCE],
                    "orbit_degree": 2, "nuisance_degree": 2},
    "gradient": {"column": "FE_H_NEW", "population": "low_alpha", "radius": "R_MEDIAN",
                 "n_walkers": 32, "n_steps": 5000, "burn_in": 1000, "thin": 10},
    "figures": {"enabled": True, "dpi": 110},
}

#: Catalogue columns the orbit step of :func:`make_method_pipeline` reads.
ORBIT_INPUT_COLUMNS = ("ra", "dec", "spec_parallax", "spec_parallax_err", "pmra", "pmra_error",
                       "pmdec", "pmdec_error", "VHELIO_AVG", "VERR")

_PACKAGES = ("sklearn-selfcal", "numpy", "scipy", "scikit-learn", "pandas", "astropy", "gala",
             "galpy", "emcee", "joblib", "matplotlib", "pyarrow")


def make_method_pipeline(*, alpha=PAPER_ALPHA, n_folds=2,
                         parallax_zero_point=GAIA_PARALLAX_ZERO_POINT, n_samples=0,
                         random_state=None, **calibrator_params):
    """The whole method as one scikit-learn ``Pipeline`` (parallaxes -> orbits -> calibration).

    Steps:

    1. ``"parallax"``: :class:`~sklearn_selfcal.crossfit.CrossFitTransformer` around
       :func:`~sklearn_selfcal.parallax.make_parallax_pipeline`, appending ``spec_parallax`` and
       ``spec_parallax_err`` (out of fold in ``fit_transform``, from the refitted model in
       ``transform``);
    2. ``"orbits"``: a ``ColumnTransformer`` running :class:`~sklearn_selfcal.ActionTransformer` on
       :data:`ORBIT_INPUT_COLUMNS`, dropping the spectral pixel columns and passing every other
       column through;
    3. ``"calibrate"``: :class:`~sklearn_selfcal.NuisanceCalibrator` fitted on the disk sample's
       training stars (:func:`~sklearn_selfcal.selection.disk_training_mask`), returning ``<X>_NEW``.

    Fit it with metadata routing enabled (``sklearn.set_config(enable_metadata_routing=True)``):
    ``pipe.fit_transform(table, parallax, sigma=parallax_error, sample_weight=training_mask)``
    where ``table`` is :func:`~sklearn_selfcal.parallax_features.join_spectra` of the catalogue and
    its spectra; ``sample_weight`` (e.g. the Gaia quality cuts) reaches the parallax model only.

    Parameters
    ----------
    alpha, parallax_zero_point : float
        Of :class:`~sklearn_selfcal.SpectroPhotometricParallaxRegressor`.
    n_folds : int, default=2
        Cross-fitting folds (the paper's halves).
    n_samples : int, default=0
        Monte Carlo samples of :class:`~sklearn_selfcal.ActionTransformer` (0: no ``_err`` columns).
    random_state : int or None
    **calibrator_params
        Other parameters of :class:`~sklearn_selfcal.NuisanceCalibrator`.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        With pandas output.
    """
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.pipeline import Pipeline

    from .selection import disk_training_mask

    with config_context(enable_metadata_routing=True):
        model = make_parallax_pipeline(alpha=alpha, parallax_zero_point=parallax_zero_point)
        model[-1].set_fit_request(sigma=True, sample_weight=True)
        calibrator = NuisanceCalibrator(training_filter=disk_training_mask, **calibrator_params)
    orbits = ColumnTransformer(
        [("actions", ActionTransformer(parallax="spec_parallax", n_samples=n_samples,
                                       random_state=random_state), list(ORBIT_INPUT_COLUMNS)),
         ("spectra", "drop", make_column_selector(pattern=r"^FLUX_"))],
        remainder="passthrough", verbose_feature_names_out=False)
    return Pipeline([
        ("parallax", CrossFitTransformer(model, cv=n_folds, random_state=random_state)),
        ("orbits", orbits),
        ("calibrate", calibrator),
    ]).set_output(transform="pandas")


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

    Raises
    ------
    KeyError
        For a section or key that :data:`DEFAULT_CONFIG` does not have (typos are not ignored).
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
            unknown = sorted(set(values) - set(config[section]))
            if unknown:
                raise KeyError(f"config [{section}]: unknown key(s) {unknown}; keys are "
                               f"{sorted(config[section])}")
            config[section].update(values)
    return config


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


def parent_sample_mask(frame, has_spectrum=None, *, logg_max=2.2):
    """The parallax model's parent sample (paper section 3.1).

    Giants with ``LOGG <= logg_max`` (dex), every magnitude of the model finite and a spectrum.

    Parameters
    ----------
    frame : DataFrame
        Catalogue with ``LOGG`` and the magnitude columns.
    has_spectrum : array-like of bool, optional
        Which rows have a spectrum (default: all).
    logg_max : float, default=2.2

    Returns
    -------
    mask : ndarray of bool of shape (n_stars,)
    """
    mask = (frame["LOGG"].to_numpy(dtype=float) <= logg_max)
    mask &= np.isfinite(frame[list(MAGNITUDE_COLUMNS)].to_numpy(dtype=float)).all(axis=1)
    if has_spectrum is not None:
        mask &= np.asarray(has_spectrum, dtype=bool)
    return mask


def cross_fitted_parallaxes(frame, spectra, spectra_err, *, alpha=PAPER_ALPHA, n_folds=2,
                            parallax_zero_point=GAIA_PARALLAX_ZERO_POINT, dtype="float32", tol=1e-4, max_iter=100,
                            random_state=None, verbose=0):
    """Spectro-photometric parallaxes, each star predicted by a model that did not see it.

    The stars are split into ``n_folds`` random parts (the paper's two halves); the model
    (:func:`~sklearn_selfcal.parallax.make_parallax_pipeline`) is trained on the stars of the other
    parts that pass the Gaia quality cuts (:func:`~sklearn_selfcal.parallax_features.gaia_training_mask`;
    stars failing them, e.g. without a Gaia parallax, get a prediction but never train a model).
    The uncertainty combines the propagated feature uncertainties with the model's fractional
    intrinsic scatter, estimated on the same out-of-fold predictions.

    Parameters
    ----------
    frame : DataFrame of shape (n_stars, n_columns)
        Catalogue: magnitudes, LSF moments, ``parallax``, ``parallax_error`` (mas) and the Gaia
        quality columns.
    spectra, spectra_err : ndarray of shape (n_stars, n_pixels)
        Continuum-normalised flux and its uncertainty.
    alpha, parallax_zero_point, tol, max_iter : float
        Of :class:`~sklearn_selfcal.SpectroPhotometricParallaxRegressor`.
    n_folds : int, default=2
    dtype : str, default="float32"
    random_state : int or None
        Fold assignment.
    verbose : int

    Returns
    -------
    result : Bunch
        ``spec_parallax``, ``spec_parallax_err`` (mas, arrays aligned with ``frame``),
        ``intrinsic_scatter`` (fractional), ``train`` (bool mask of training stars).
    """
    table = join_spectra(frame, np.asarray(spectra, dtype=dtype), np.asarray(spectra_err, dtype=dtype))
    train = gaia_training_mask(frame)
    y = np.where(train, frame["parallax"].to_numpy(dtype=float), 0.0)
    sigma = np.where(train, frame["parallax_error"].to_numpy(dtype=float), 1.0)
    model = make_parallax_pipeline(alpha=alpha, parallax_zero_point=parallax_zero_point, tol=tol, max_iter=max_iter,
                                   dtype=np.dtype(dtype).type, verbose=max(verbose - 1, 0))
    with config_context(enable_metadata_routing=True):
        model[-1].set_fit_request(sigma=True, sample_weight=True)
        step = CrossFitTransformer(model, cv=n_folds, output="spec_parallax", return_std=True,
                                   passthrough=False, refit=False, random_state=random_state,
                                   verbose=verbose)
        out = step.fit_transform(table, y, sigma=sigma, sample_weight=train.astype(float))
    pred = out["spec_parallax"].to_numpy()
    feature_frac = out["spec_parallax_err"].to_numpy() / pred
    scatter = fractional_scatter(y[train], pred[train], sigma[train],
                                 parallax_zero_point=parallax_zero_point,
                                 y_pred_frac_err=feature_frac[train])
    err = pred * np.sqrt(feature_frac**2 + scatter**2)
    return Bunch(spec_parallax=pred, spec_parallax_err=err, intrinsic_scatter=float(scatter),
                 train=train)


def orbits(frame, *, n_samples=0, n_jobs=None, random_state=None, verbose=0):
    """Galactocentric phase space and actions from the spectro-photometric parallaxes.

    Parameters
    ----------
    frame : DataFrame
        ``ra, dec`` (deg), ``spec_parallax`` (+ ``spec_parallax_err`` for Monte Carlo errors, mas),
        ``pmra, pmdec`` (mas/yr) and ``VHELIO_AVG`` (km/s).
    n_samples, n_jobs, random_state, verbose
        Of :class:`~sklearn_selfcal.ActionTransformer`.

    Returns
    -------
    phase_space : DataFrame
        ``x, y, z, v_x, v_y, v_z, R, phi, v_R, v_phi, J_R, L_z, J_z, E`` (and ``_err`` columns), index
        of ``frame``.
    """
    transformer = ActionTransformer(parallax="spec_parallax", n_samples=n_samples, n_jobs=n_jobs,
                                    random_state=random_state, verbose=verbose)
    return transformer.set_output(transform="pandas").fit_transform(frame)


def self_calibrate(frame, train_rows, *, nuisance_columns=("LOGG",), nuisance_reference=(2.2,),
                   orbit_degree=2, nuisance_degree=2):
    """Fit :class:`~sklearn_selfcal.NuisanceCalibrator` on ``train_rows`` and calibrate every row.

    Parameters
    ----------
    frame : DataFrame
        Actions ``J_R, J_z, L_z`` (kpc km/s), the nuisance columns and the abundances with errors.
    train_rows : array-like of bool
        The disk sample; the calibrator's own training filter (the paper's action bounds and x < 0)
        applies within it.

    Returns
    -------
    calibrated : DataFrame
        ``<X>_NEW`` for every abundance present, index of ``frame``.
    calibrator : NuisanceCalibrator
        Fitted.
    """
    abundances = [c for c in ABUNDANCE_COLUMNS if c in frame.columns]
    calibrator = NuisanceCalibrator(abundance_columns=abundances,
                                    nuisance_columns=tuple(nuisance_columns),
                                    nuisance_reference=tuple(nuisance_reference),
                                    orbit_degree=orbit_degree, nuisance_degree=nuisance_degree)
    calibrator.set_output(transform="pandas").fit(frame[np.asarray(train_rows, dtype=bool)])
    return calibrator.transform(frame), calibrator


def gradients(frame, *, column="FE_H_NEW", population="low_alpha", radius="R_MEDIAN", n_walkers=32,
              n_steps=5000, burn_in=1000, thin=10, random_state=None, verbose=0):
    """Radial abundance profiles (Tables 1-3) and the broken power-law fit of one of them.

    The fit uses the profile's medians with their ``1.253 sigma / sqrt(N)`` uncertainties, placed at
    ``radius`` (``"R_MEDIAN"``, the median radius of the bin's stars, avoids the bias of placing
    them at the bin centre ``"R"`` when the star density changes across a bin).

    Returns
    -------
    profile : DataFrame
        Of :func:`~sklearn_selfcal.gradients.radial_abundance_profile` for every ``<X>_NEW``.
    regressor : BrokenPowerLawRegressor
        Fitted to ``column`` of ``population``.
    """
    columns = [c for c in frame.columns if c.endswith("_NEW")]
    split = "ALPHA_M_NEW" if "ALPHA_M_NEW" in frame.columns else "ALPHA_M"
    profile = radial_abundance_profile(frame, columns, split=split)
    rows = profile[(profile["population"] == population) & profile[column].notna()
                   & (profile[f"{column}_ERR"] > 0)]
    regressor = BrokenPowerLawRegressor(n_walkers=n_walkers, n_steps=n_steps, burn_in=burn_in,
                                        thin=thin, random_state=random_state, verbose=verbose)
    regressor.fit(rows[[radius]].to_numpy(), rows[column].to_numpy(),
                  sigma=rows[f"{column}_ERR"].to_numpy())
    return profile, regressor


def run_method(frame, spectra=None, spectra_err=None, *, config=None, random_state=0, verbose=1):
    """Run the paper's method on a catalogue (and its spectra).

    Parameters
    ----------
    frame : DataFrame of shape (n_stars, n_columns)
        APOGEE + Gaia catalogue (see :doc:`/conventions` for the column names). Not modified.
    spectra, spectra_err : ndarray of shape (n_stars, n_pixels), optional
        Continuum-normalised spectra aligned with ``frame``. Without them the catalogue must already
        hold ``spec_parallax`` and ``spec_parallax_err`` (e.g. the paper's public catalogue) and the
        parallax step is skipped.
    config : dict, optional
        From :func:`load_config` (default :data:`DEFAULT_CONFIG`).
    random_state : int, default=0
        Seeds every random step (halves, Monte Carlo errors, MCMC, figure subsampling).
    verbose : int, default=1
        Report each step and show progress bars.

    Returns
    -------
    result : Bunch
        ``catalogue`` (DataFrame: the input columns plus ``PARENT_SAMPLE``, ``spec_parallax``,
        ``spec_parallax_err``, phase space, actions, ``DISK_SAMPLE`` and ``<X>_NEW``),
        ``profile`` (DataFrame), ``regressor`` (fitted BrokenPowerLawRegressor), ``calibrator``,
        ``summary`` (dict of numbers) and ``timings`` (s per step).
    """
    config = load_config() if config is None else config
    steps = _Steps(verbose)
    out = frame.copy()
    summary = {"n_input": int(len(frame))}

    with steps("parent sample"):
        parent = parent_sample_mask(frame, **config["sample"])
        if spectra is not None:
            parent &= np.isfinite(np.asarray(spectra[:, :1], dtype=float)).ravel()
        out["PARENT_SAMPLE"] = parent
        summary["n_parent"] = int(parent.sum())
    if summary["n_parent"] < 100:
        raise ValueError(f"only {summary['n_parent']} stars pass the parent-sample cuts (LOGG <= "
                         f"{config['sample']['logg_max']}, complete photometry); at least 100 needed")

    if spectra is not None:
        with steps("spectro-photometric parallaxes"):
            pcfg = config["parallax"]
            plx = cross_fitted_parallaxes(
                frame[parent], spectra[parent], spectra_err[parent], alpha=pcfg["alpha"],
                n_folds=pcfg["n_folds"], parallax_zero_point=pcfg["parallax_zero_point"], dtype=pcfg["dtype"],
                tol=pcfg["tol"], max_iter=pcfg["max_iter"], random_state=random_state,
                verbose=verbose)
            for col in ("spec_parallax", "spec_parallax_err"):
                out[col] = np.nan
                out.loc[parent, col] = plx[col]
            summary["parallax_training_stars"] = int(plx.train.sum())
            summary["parallax_intrinsic_scatter"] = plx.intrinsic_scatter
    elif not {"spec_parallax", "spec_parallax_err"} <= set(frame.columns):
        raise KeyError("no spectra given and the catalogue has no 'spec_parallax' / "
                       "'spec_parallax_err' columns: pass spectra or a catalogue with them")

    with steps("phase space and actions"):
        acfg = config["actions"]
        phase = orbits(out[parent], n_samples=acfg["n_samples"], n_jobs=acfg["n_jobs"],
                       random_state=random_state, verbose=verbose)
        for col in phase.columns:
            out[col] = np.nan
            out.loc[parent, col] = phase[col].to_numpy()

    with steps("disk sample"):
        dcfg = dict(config["disk"])
        dcfg["exclude_ids"] = dcfg["exclude_ids"] or None
        disk = parent & disk_sample_mask(out, logg_max=config["sample"]["logg_max"], **dcfg)
        out["DISK_SAMPLE"] = disk
        summary["n_disk"] = int(disk.sum())

    with steps("self-calibration"):
        calibrated, calibrator = self_calibrate(out[parent], disk[parent], **config["calibration"])
        for col in calibrated.columns:
            out[col] = np.nan
            out.loc[parent, col] = calibrated[col].to_numpy()
        summary["n_calibration_training"] = {k: int(v) for k, v in calibrator.n_stars_.items()}

    with steps("gradients and broken power-law fit"):
        gcfg = config["gradient"]
        profile, regressor = gradients(out[disk], random_state=random_state, verbose=verbose,
                                       **gcfg)
        summary["feh_gradient"] = {name: {"median": float(row["median"]),
                                          "err_minus": float(row["err_minus"]),
                                          "err_plus": float(row["err_plus"])}
                                   for name, row in regressor.summary_.iterrows()}

    return Bunch(catalogue=out, profile=profile, regressor=regressor, calibrator=calibrator,
                 summary=summary, timings=steps.times, config=config)


def prepare_output_dir(path, overwrite=False):
    """Create the output directory; refuse a non-empty one unless ``overwrite``.

    Raises
    ------
    FileExistsError
        If ``path`` holds files and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} exists and is not a directory")
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(f"output directory {path} is not empty; pass --overwrite to replace "
                              "its files")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(*, config, random_state, inputs=(), command=None, timings=None, extra=None):
    """A record of how a result was made: versions, parameters, seed, input checksums.

    Parameters
    ----------
    config : dict
    random_state : int or None
    inputs : sequence of path-like
        Files read; their SHA-256 checksums are recorded.
    command : list of str, optional
        The command line.
    timings : dict, optional
    extra : dict, optional

    Returns
    -------
    record : dict (JSON-serialisable)
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
        "inputs": {str(p): {"sha256": _sha256(p), "bytes": Path(p).stat().st_size} for p in inputs},
        "timings_s": timings or {},
        **(extra or {}),
    }


def _write_json(obj, path):
    with atomic_write(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pd.DataFrame):
        return value.to_dict(orient="index")
    return str(value)


def write_outputs(result, out_dir, *, random_state=0, inputs=(), command=None, extra=None,
                  verbose=1):
    """Write the calibrated catalogue, tables, fit summary, figures and provenance.

    Files (each written atomically: an interrupted run never leaves a half-written file under its
    final name): ``catalogue.parquet`` and ``catalogue.fits`` (input columns + ``spec_parallax``,
    ``spec_parallax_err``, phase space, actions, ``<X>_NEW``, sample flags),
    ``radial_profiles.ecsv`` (Tables 1-3), ``feh_gradient_fit.json``, ``figures/*.png`` and
    ``provenance.json``.

    Returns
    -------
    paths : dict of str to str
    """
    out_dir = Path(out_dir)
    paths = {}
    catalogue = result.catalogue
    paths["catalogue_parquet"] = str(out_dir / "catalogue.parquet")
    write_catalogue(catalogue, paths["catalogue_parquet"])
    paths["catalogue_fits"] = str(out_dir / "catalogue.fits")
    write_catalogue(catalogue, paths["catalogue_fits"])
    paths["profiles"] = str(out_dir / "radial_profiles.ecsv")
    write_table(result.profile, paths["profiles"],
                meta={"description": "median abundances (dex) in bins of Galactocentric radius "
                      "(kpc); uncertainties 1.253 sigma / sqrt(N)"})
    paths["fit"] = str(out_dir / "feh_gradient_fit.json")
    _write_json({"model": "broken power law, eq. 9 of Eilers et al. 2022",
                 "units": {"m1": "dex/kpc", "m2": "dex/kpc", "b": "dex", "k": "kpc"},
                 "posterior": result.summary["feh_gradient"],
                 "acceptance_fraction": float(np.mean(result.regressor.acceptance_fraction_)),
                 "autocorr_time": result.regressor.autocorr_time_.tolist(),
                 **(extra or {})}, paths["fit"])
    if result.config["figures"]["enabled"]:
        from .plotting import render_all_figures

        disk = catalogue[catalogue["DISK_SAMPLE"]]
        figures = render_all_figures(disk, out_dir / "figures", regressor=result.regressor,
                                     random_state=random_state,
                                     dpi=result.config["figures"]["dpi"], verbose=verbose)
        paths.update({f"figure_{k}": v for k, v in figures.items()})
    paths["provenance"] = str(out_dir / "provenance.json")
    _write_json(provenance(config=result.config, random_state=random_state, inputs=inputs,
                           command=command, timings=result.timings,
                           extra={"summary": result.summary, **(extra or {})}),
                paths["provenance"])
    return paths
