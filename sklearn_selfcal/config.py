"""The configuration of the main job: the run's own settings, and the Pipeline's parameters.

A configuration file (TOML or JSON) has two kinds of sections:

- **step sections** set the parameters of one step of the method's ``Pipeline``
  (:func:`~sklearn_selfcal.workflow.make_method_pipeline`): every key of ``[parallax]`` is a
  parameter of :class:`~sklearn_selfcal.parallax.SpectroPhotometricParallaxTransformer`, of
  ``[actions]`` of :class:`~sklearn_selfcal.ActionTransformer`, of ``[calibration]`` of
  :class:`~sklearn_selfcal.NuisanceCalibrator`, of ``[disk]`` of the calibrator's
  :class:`~sklearn_selfcal.selection.DiskTrainingFilter` (:data:`STEP_SECTIONS` gives the
  ``step__param`` prefix of each). They are applied with ``Pipeline.set_params``, so each value is
  validated by the step's own ``_parameter_constraints`` (``check`` does so before any
  computation), and a key the file does not set keeps the step's default: there is one default
  per setting, the estimator's;
- **run sections** (:data:`RUN_SETTINGS`): what only the run uses (the catalogue's columns, the
  distance source, the parent sample, the profiles and fit, diagnostics, figures, outputs, Dask),
  plus a few keys of the step sections that the run resolves against the catalogue before it sets
  the parameters (``[parallax] magnitudes = "auto"``, ...).
"""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path

from sklearn.utils._param_validation import InvalidParameterError

from ._paper import GAIA_PARALLAX_ZERO_POINT, LOGG_MAX
from .columns import ROLES
from .distances import DEFAULT_PARALLAX_OVER_ERROR

__all__ = ["RUN_SETTINGS", "DEFAULT_CONFIG", "STEP_SECTIONS", "load_config", "step_setting",
           "config_params", "check_config", "check_run_settings", "effective_config"]

#: The run's own settings, with their defaults. ``[columns]`` maps roles to column names (see
#: :data:`sklearn_selfcal.columns.ROLES`); an empty string means "not set".
RUN_SETTINGS = {
    "columns": {},
    # the FITS table ("auto": APOGEE's of an SDSS-V astra file), and SDSS-V's [X/H] abundances:
    # converted to [X/Fe] ("x_fe", error "independent" or as "dr17") or kept ("x_h")
    "catalogue": {"hdu": "auto", "abundances": "x_fe", "x_fe_error": "independent"},
    # parallax_zero_point (mas) is that of the catalogue's Gaia parallaxes: the parallax model's
    # targets (parallax__parallax_zero_point) and the Gaia distances
    "distance": {"source": "auto", "column": "", "error": "", "lo": "", "hi": "", "unit": "auto",
                 "parallax_over_error": DEFAULT_PARALLAX_OVER_ERROR,
                 "parallax_zero_point": GAIA_PARALLAX_ZERO_POINT},
    # logg_max is also the training filter's (calibrate__calibrator__training_filter__logg_max);
    # exclude_duplicates: true (one row per star, selection.DUPLICATE_PRIORITY for SDSS-V), false,
    # or a list of criteria of selection.duplicate_cut ("not_bad", "sdss5", "dr17", "snr")
    "sample": {"logg_max": LOGG_MAX, "exclude_star_bad": True, "exclude_duplicates": True},
    "parallax": {
        "magnitudes": "auto",   # the paper's 8 bands that the catalogue has, or a list of roles
        "lsf_moments": "auto",  # LSF_1..LSF_5 if present, or a list
        "scratch": "auto",      # feature matrices in scratch files: "auto", true or false
    },
    # a named model of calibration.CALIBRATION_PRESETS ("paper", "sdss5", "sdss5_release"), its
    # parameters set before the section's own keys
    "calibration": {"preset": "paper"},
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
#: The run settings (:data:`RUN_SETTINGS`), with the step sections empty: what
#: :func:`load_config` returns without a file.
DEFAULT_CONFIG = {**copy.deepcopy(RUN_SETTINGS), "actions": {}, "disk": {}}

#: Step sections -> the ``step__param`` prefix of the Pipeline's parameters they set.
STEP_SECTIONS = {
    "parallax": "parallax",
    "actions": "orbits__actions",
    "calibration": "calibrate__calibrator",
    "disk": "calibrate__calibrator__training_filter",
}
#: Run settings that also set parameters of steps (one value, every use).
SHARED_SETTINGS = {
    ("sample", "logg_max"): ("calibrate__calibrator__training_filter__logg_max",),
    ("distance", "parallax_zero_point"): ("parallax__parallax_zero_point",
                                          "orbits__actions__parallax_zero_point"),
}
#: Parameters the run sets itself, and where the user sets them instead.
RUN_OWNED = {
    "random_state": "the --random-state option", "verbose": "the --quiet option",
    "training_filter": "the [disk] section", "scratch_dir": "[parallax] scratch",
    "magnitude_columns": "[parallax] magnitudes", "lsf_columns": "[parallax] lsf_moments",
    "parallax": "[distance] and [columns]", "distance": "[distance] and [columns]",
    "parallax_error": "[columns] parallax_error", "distance_error": "[distance] error",
    "logg_max": "[sample] logg_max", "parallax_zero_point": "[distance] parallax_zero_point",
}
_ROLE_NAMES = {r.name for r in ROLES} | {r.canonical for r in ROLES}


def _step_classes():
    """The class whose parameters each step section sets (imported when needed)."""
    from .actions import ActionTransformer
    from .calibration import NuisanceCalibrator
    from .selection import DiskTrainingFilter
    from .parallax import SpectroPhotometricParallaxTransformer

    return {"parallax": SpectroPhotometricParallaxTransformer, "actions": ActionTransformer,
            "calibration": NuisanceCalibrator, "disk": DiskTrainingFilter}


def _check_keys(section, values, config):
    """Raise a ``KeyError`` for a key that is neither a run setting nor a step's parameter."""
    if section == "columns":
        unknown = sorted(set(values) - _ROLE_NAMES)
        if unknown:
            raise KeyError(f"config [columns]: {unknown} are not roles; roles are "
                           f"{sorted(r.name for r in ROLES)}")
        return
    run_keys = set(RUN_SETTINGS.get(section, {}))
    params = set()
    if section in STEP_SECTIONS:
        params = set(_step_classes()[section]().get_params(deep=False))
    for key in values:
        if key in run_keys:
            continue
        if key in params and key in RUN_OWNED:
            raise KeyError(f"config [{section}] {key}: set by the run; use {RUN_OWNED[key]}")
        if key not in params:
            raise KeyError(f"config [{section}]: unknown key {key!r}; keys are "
                           f"{sorted(run_keys | (params - set(RUN_OWNED)))}")


def load_config(path=None, overrides=None):
    """The run settings' defaults updated from a TOML/JSON file and/or a nested dict.

    Parameters
    ----------
    path : str or path-like, optional
        ``.toml`` or ``.json`` file with sections of :data:`RUN_SETTINGS` and
        :data:`STEP_SECTIONS`.
    overrides : dict, optional
        Applied after the file.

    Returns
    -------
    config : dict
        Every run section with its defaults, updated; the step sections hold the parameters the
        file sets (the steps' own defaults apply to the others).

    Raises
    ------
    KeyError
        For a section or key that is neither a run setting nor a parameter of the section's step,
        a parameter the run sets itself (naming the setting to use instead), or a ``[columns]``
        entry that is not a role (typos are not ignored). Values are checked by
        :func:`check_config`.

    Examples
    --------
    >>> load_config(overrides={"columns": {"parallax": "Plx"}})["columns"]
    {'parallax': 'Plx'}
    >>> load_config(overrides={"calibration": {"nuisance_degree": 3}})["calibration"]
    {'preset': 'paper', 'nuisance_degree': 3}
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
            _check_keys(section, values, config)
            config[section].update(values)
    return config


def step_setting(config, section, key):
    """The value of a step's parameter in a run: the configuration's, else the step's default.

    Parameters
    ----------
    config : dict
        From :func:`load_config`.
    section : str
        A step section (:data:`STEP_SECTIONS`).
    key : str
        One of its step's parameters.

    Returns
    -------
    value : object
        The parameter's value in the run.

    Examples
    --------
    >>> step_setting(load_config(), "actions", "n_samples")
    0
    """
    if key in config.get(section, {}):
        return config[section][key]
    return _step_classes()[section]().get_params(deep=False)[key]


def config_params(config, pipeline):
    """The Pipeline parameters (``step__param`` -> value) that a configuration sets.

    Only the steps present in ``pipeline`` are set (without spectra there is no ``parallax``
    step, and its section is ignored).

    Parameters
    ----------
    config : dict
        From :func:`load_config`.
    pipeline : sklearn.pipeline.Pipeline
        From :func:`~sklearn_selfcal.workflow.make_method_pipeline`.

    Returns
    -------
    params : dict
        For ``pipeline.set_params(**params)``.
    """
    available = pipeline.get_params(deep=True)
    params = {}
    calibrator = STEP_SECTIONS["calibration"]
    if calibrator in available:
        from .calibration import CALIBRATION_PRESETS

        preset = config.get("calibration", {}).get("preset", RUN_SETTINGS["calibration"]["preset"])
        if preset not in CALIBRATION_PRESETS:
            raise KeyError(f"config [calibration] preset = {preset!r}: the presets are "
                           f"{sorted(CALIBRATION_PRESETS)}")
        params.update({f"{calibrator}__{k}": v for k, v in CALIBRATION_PRESETS[preset].items()})
    for section, prefix in STEP_SECTIONS.items():
        if prefix not in available:
            continue
        run_keys = RUN_SETTINGS.get(section, {})
        params.update({f"{prefix}__{k}": v for k, v in config.get(section, {}).items()
                       if k not in run_keys})
    for (section, key), names in SHARED_SETTINGS.items():
        params.update({name: config[section][key] for name in names if name in available})
    return params


def check_config(pipeline, columns=None):
    """Validate every step's parameters before any computation.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        With the configuration's parameters set (:func:`config_params`).
    columns : iterable of str, optional
        The columns of the table the pipeline will be fitted on (canonical names): the
        calibrator's column parameters must then name columns of it or of what the earlier steps
        add (a column position means nothing in a run's named tables).

    Returns
    -------
    problems : list of str
        One line per invalid value, naming the section, the key and what the step accepts.
    """
    available = pipeline.get_params(deep=True)
    problems = []
    for section, prefix in STEP_SECTIONS.items():
        step = available.get(prefix)
        if step is None:
            continue
        try:
            step._validate_params()
        except InvalidParameterError as exc:
            problems.append(f"[{section}] {exc}")
    calibrator = available.get(STEP_SECTIONS["calibration"])
    if columns is not None and calibrator is not None and not problems:
        known = set(columns) | set(_added_columns(available))
        for key in ("abundance_columns", "nuisance_columns", "orbit_features"):
            value = getattr(calibrator, key)
            names = [value] if isinstance(value, (str, int)) else list(value or ())
            for name in names:
                if not isinstance(name, str):
                    problems.append(f"[calibration] {key} = {value!r}: {name!r} is a column "
                                    "position, but a run's tables have named columns; give the "
                                    "names (e.g. \"LOGG\")")
                elif name not in known:
                    problems.append(f"[calibration] {key}: {name!r} is not a column of the "
                                    "catalogue (map it with [columns] <role> = \"<column>\")")
    return problems


def check_run_settings(config):
    """Validate the run's own settings that a computation would only meet late.

    Parameters
    ----------
    config : dict
        From :func:`load_config`.

    Returns
    -------
    problems : list of str
        One line per invalid value, naming the section and key (``[gradient]``: the broken power
        law's population, radius and chain, checked by
        :func:`~sklearn_selfcal.gradients.check_fit_options`; ``[parallax] scratch``).
    """
    from .gradients import check_fit_options

    problems = []
    g = config["gradient"]
    try:
        check_fit_options(population=g["population"], radius=g["radius"],
                          n_walkers=g["n_walkers"], n_steps=g["n_steps"], burn_in=g["burn_in"],
                          thin=g["thin"])
    except (TypeError, ValueError) as exc:
        problems.append(f"[gradient] {exc}")
    if config["parallax"]["scratch"] not in ("auto", True, False, "true", "false"):
        problems.append(f"[parallax] scratch must be \"auto\", true or false, got "
                        f"{config['parallax']['scratch']!r}")
    return problems


def _added_columns(params):
    """The columns the steps before the calibration append to the table."""
    from .distances import DISTANCE_COLUMNS

    added = list(DISTANCE_COLUMNS) + ["spec_parallax", "spec_parallax_err"]
    actions = params.get(STEP_SECTIONS["actions"])
    if actions is not None:
        added += list(actions.get_feature_names_out())
    return added


def effective_config(config, pipeline):
    """Every setting a run used: the run settings, and each step's parameters as fitted.

    Parameters
    ----------
    config : dict
        From :func:`load_config`.
    pipeline : sklearn.pipeline.Pipeline
        The run's Pipeline.

    Returns
    -------
    config : dict
        The run sections of ``config``, and for each step section present in the pipeline all
        the parameters of its step (not only those the file set), for ``provenance.json``.
    """
    out = {section: dict(values) for section, values in config.items()}
    available = pipeline.get_params(deep=True)
    for section, prefix in STEP_SECTIONS.items():
        step = available.get(prefix)
        if step is not None:
            out[section] = {**out.get(section, {}), **{
                k: v for k, v in step.get_params(deep=False).items()
                if not hasattr(v, "get_params")}}
    return out
