"""A fitted method applied to a new catalogue: another release, another spelling, same model.

:func:`apply_method` is what ``sklearn-selfcal apply MODEL CATALOGUE`` does: the catalogue goes
through the same role table, cleaning and sample cuts as in ``run`` (so the Pipeline sees the
method's own column names whatever the file's spelling, e.g. SDSS-V astra's lower-case names or
DR17's ``GAIAEDR3_*``), and the fitted Pipeline's ``transform`` gives its distances, orbits and
calibrated abundances. Nothing is refitted: the parallax model and the calibration are the
model's. The distance step only reads columns, so it reads the new catalogue's own distance
source (set with ``set_params``).
"""

from __future__ import annotations

import copy

from sklearn.utils import Bunch

from ..cleaning import as_frame
from ..config import load_config
from ..distances import distance_transformer
from ..preflight import plan_and_prepare
from ._run import _aligned_spectra, _catalogue, _disk_view, method_input

__all__ = ["apply_method"]


def apply_method(pipeline, frame, spectra=None, spectra_err=None, *, config=None, verbose=0):
    """Apply a fitted method Pipeline (of ``run``, ``model.pkl``) to a new catalogue.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Fitted by :func:`~sklearn_selfcal.workflow.run_method` (its ``pipeline``) or by
        ``pipe.fit_transform`` of :func:`~sklearn_selfcal.workflow.make_method_pipeline`. Not
        modified.
    frame : DataFrame or astropy Table of shape (n_stars, n_columns)
        The new catalogue, in any recognised spelling. Not modified.
    spectra, spectra_err : ndarray or SpectraArray, optional
        Its spectra, needed when the model predicts spectro-photometric parallaxes.
    config : dict, optional
        Of :func:`~sklearn_selfcal.config.load_config`: the new catalogue's ``[columns]``,
        ``[catalogue]``, ``[sample]`` and ``[distance]`` settings (the model's own parameters are
        fixed).
    verbose : int, default=0
        Progress reports.

    Returns
    -------
    result : Bunch
        ``catalogue`` (DataFrame: the cleaned columns, ``QUALITY_OK``, ``PARENT_SAMPLE``, what the
        Pipeline adds for the parent sample, ``DISK_SAMPLE``), ``plan``, ``summary`` and
        ``missing`` (columns the model was fitted with that this catalogue lacks: NaN).

    Raises
    ------
    ValueError
        Before any computation: a model that needs spectra without them, or a catalogue the
        method cannot run on (the plan's problems, e.g. no star in the parent sample).
    """
    config = load_config() if config is None else config
    frame = as_frame(frame)
    steps = dict(pipeline.steps)
    needs_spectra = "parallax" in steps
    if needs_spectra and spectra is None:
        raise ValueError("this model predicts spectro-photometric parallaxes from spectra: give "
                         "the catalogue's spectra (--spectra)")
    has_spectrum = None
    if needs_spectra:
        spectra, spectra_err, has_spectrum = _aligned_spectra(spectra, spectra_err, len(frame))
    plan, prep = plan_and_prepare(frame, config, spectra=needs_spectra,
                                  has_spectrum=has_spectrum)
    if "distance" in steps and plan.distance is not None and plan.distance.kind in (
            "distance", "parallax"):  # this catalogue's own distances, read by the same step
        pipeline = copy.deepcopy(pipeline).set_params(
            distance__distance=distance_transformer(plan.distance.canonical()))
    elif "distance" in steps:
        plan.problems.append("the model reads distances or Gaia parallaxes: this catalogue has "
                             f"none ({plan.distance.describe() if plan.distance else 'none'})")
    if not plan.can_run:
        raise ValueError("the model cannot be applied: " + "; ".join(plan.problems))
    parent = plan.sample.parent
    X = method_input(prep.work, plan, pipeline, spectra, spectra_err).loc[parent]
    fitted = list(pipeline.feature_names_in_)
    missing = [c for c in fitted if c not in X.columns]
    X = X.reindex(columns=fitted)  # the model's columns, in its order; absent ones are NaN
    if verbose and missing:
        print(f"[sklearn-selfcal] columns of the model absent from this catalogue (NaN): "
              f"{missing}", flush=True)
    Xt = pipeline.transform(X)
    catalogue = _catalogue(prep.table, Xt, X, parent, plan.sample.quality_ok)
    view = _disk_view(catalogue, prep.work)
    training_filter = pipeline.get_params()["calibrate__calibrator__training_filter"]
    catalogue["DISK_SAMPLE"] = parent & training_filter.disk_cuts(view).to_numpy().all(axis=1)
    summary = {"n_input": int(len(frame)), "n_parent": int(parent.sum()),
               "n_disk": int(catalogue["DISK_SAMPLE"].sum()),
               "distance_source": plan.distance.as_dict() if plan.distance else None,
               "cleaning": prep.cleaning, "missing_model_columns": missing,
               "excluded_by_flags": {c: int((~plan.sample.quality[c]).sum())
                                     for c in plan.sample.quality.columns}}
    return Bunch(catalogue=catalogue, plan=plan, summary=summary, missing=missing)
