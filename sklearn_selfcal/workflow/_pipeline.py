"""The whole method as ONE scikit-learn Pipeline, built with defaults and configured by parameters."""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.pipeline import FeatureUnion, Pipeline

from ..actions import ActionTransformer
from ..calibration import NuisanceCalibrator
from ..distances import DISTANCE_COLUMNS, distance_transformer
from ..selection import DiskTrainingFilter
from ..spectra import SpectraDtype
from ..config import check_config, config_params
from ..parallax import SpectroPhotometricParallaxTransformer

__all__ = ["make_method_pipeline", "pipeline_from_config", "spectra_columns"]


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
        The spectra columns.
    """
    return [c for c in X.columns if isinstance(X[c].dtype, SpectraDtype)]


def _append(name, transformer):
    """A step that appends ``transformer``'s columns to its input table."""
    return FeatureUnion([("input", "passthrough"), (name, transformer)],
                        verbose_feature_names_out=False)


def make_method_pipeline(distance=None, *, random_state=None, verbose=0, **params):
    """The whole method as one scikit-learn ``Pipeline`` (distances -> orbits -> calibration).

    Steps (each appends its columns to the table it receives, so the output holds the input
    columns, the distances, the phase space and actions, and ``<X>_NEW``):

    1. the distances: ``"parallax"``, a
       :class:`~sklearn_selfcal.parallax.SpectroPhotometricParallaxTransformer`
       (``spec_parallax``, ``spec_parallax_err``) then ``"drop_spectra"``, when ``distance`` is
       None or of kind ``"spectra"``; or ``"distance"``, a
       :class:`~sklearn_selfcal.distances.DistanceTransformer` (``distance_kpc``,
       ``distance_kpc_err``) from the user's distances or Gaia parallaxes; nothing when the table
       already holds ``spec_parallax``;
    2. ``"orbits"``: :class:`~sklearn_selfcal.ActionTransformer` (``orbits__actions``: phase
       space, actions, energy);
    3. ``"calibrate"``: :class:`~sklearn_selfcal.NuisanceCalibrator` (``calibrate__calibrator``)
       fitted on the disk sample's training stars (its ``training_filter``, a
       :class:`~sklearn_selfcal.selection.DiskTrainingFilter`), giving ``<X>_NEW`` and
       ``<X>_NEW_ERR``; an abundance with fewer than 3 training stars per coefficient is left
       uncalibrated, with the reason in the calibrator's ``skipped_``
       (``min_stars_per_coefficient``).

    Every setting is a parameter of a step: ``make_method_pipeline(parallax__alpha=0.01)`` or
    ``pipe.set_params(calibrate__calibrator__nuisance_columns=("LOGG", "TEFF"))``; the
    configuration file's sections are those parameters
    (:data:`~sklearn_selfcal.workflow.STEP_SECTIONS`).

    Fit it as ``pipe.fit_transform(table, table["parallax"],
    parallax_error=table["parallax_error"])`` with metadata routing enabled
    (``sklearn.set_config(enable_metadata_routing=True)``), or with ``parallax__parallax_error=...``
    without, when the parallax model is trained (``table`` from
    :func:`~sklearn_selfcal.parallax_features.join_spectra` on the parent sample, canonical column
    names), or ``pipe.fit_transform(table)`` otherwise.

    Parameters
    ----------
    distance : DistanceChoice, optional
        From :func:`~sklearn_selfcal.distances.choose_distance_source`; None trains the parallax
        model on spectra.
    random_state : int or None
        Seeds the cross-fitting halves and the Monte Carlo draws.
    verbose : int
        Progress reports of the steps (and the Pipeline's timing of each).
    **params
        Pipeline parameters (``step__param``) set on the pipeline.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        With pandas output.
    """
    steps = []
    if distance is None or distance.kind == "spectra":
        steps.append(("parallax", SpectroPhotometricParallaxTransformer(
            random_state=random_state, verbose=verbose)))
        steps.append(("drop_spectra", ColumnTransformer(
            [("spectra", "drop", spectra_columns)], remainder="passthrough",
            verbose_feature_names_out=False)))
        source = {"parallax": "spec_parallax"}
    elif distance.kind == "spec_parallax":
        source = {"parallax": "spec_parallax"}
    else:
        steps.append(("distance", _append("distance", distance_transformer(distance))))
        source = {"distance": DISTANCE_COLUMNS[0]}
    steps.append(("orbits", _append("actions", ActionTransformer(
        **source, random_state=random_state, verbose=verbose))))
    steps.append(("calibrate", _append("calibrator", NuisanceCalibrator(
        training_filter=DiskTrainingFilter(), errors=True, min_stars_per_coefficient=3,
        verbose=verbose))))
    pipe = Pipeline(steps, verbose=bool(verbose)).set_output(transform="pandas")
    return pipe.set_params(**params)


def pipeline_from_config(config, plan, *, columns=None, random_state=None, verbose=0,
                         scratch_dir=None):
    """:func:`make_method_pipeline` with a configuration's parameters and a run plan's choices.

    The plan resolves what depends on the catalogue (the distances, the bands and LSF moments the
    parallax model can use, the abundances to calibrate); the configuration's step sections are
    set with ``set_params`` (:func:`~sklearn_selfcal.workflow.config_params`).

    Parameters
    ----------
    config : dict
        From :func:`~sklearn_selfcal.workflow.load_config`.
    plan : RunPlan
        From :func:`~sklearn_selfcal.preflight.plan_run`.
    columns : iterable of str, optional
        The columns (canonical names) of the table the pipeline will be fitted on: the
        calibrator's column parameters are checked against them.
    random_state : int or None
        Seed of every random step.
    verbose : int
        Progress reports.
    scratch_dir : str or path-like, optional
        Where the parallax model's feature matrices go (``[parallax] scratch``).

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Unfitted.

    Raises
    ------
    ValueError
        Naming every invalid configuration value (:func:`~sklearn_selfcal.workflow.check_config`).
    """
    distance = plan.distance.canonical() if plan.distance is not None else None
    pipe = make_method_pipeline(distance, random_state=random_state, verbose=verbose)
    params = config_params(config, pipe)
    available = pipe.get_params(deep=True)
    if "parallax" in available:
        params.update(parallax__magnitude_columns=tuple(plan.magnitudes),
                      parallax__lsf_columns=tuple(plan.lsf), parallax__scratch_dir=scratch_dir)
    if plan.abundances and "abundance_columns" not in config.get("calibration", {}):
        params["calibrate__calibrator__abundance_columns"] = list(plan.abundances)
    pipe.set_params(**params)
    problems = check_config(pipe, columns)
    if problems:
        raise ValueError("invalid configuration: " + "; ".join(problems))
    return pipe
