"""Section 4 of the paper on the disk sample: radial profiles and the broken power-law fit."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from .._paper import ABUNDANCE_COLUMNS, CALIBRATED_SUFFIX, calibrated_name
from ..config import RUN_SETTINGS
from ..distances import DISTANCE_COLUMNS
from ..gradients import fit_radial_gradient, radial_abundance_profile, radius_sampler
from ..maps import profile_points

__all__ = ["profiles_and_fit"]


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
        The ``[gradient]`` configuration (default: :data:`~sklearn_selfcal.config.RUN_SETTINGS`'s).
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
    g = {**RUN_SETTINGS["gradient"], **(gradient_config or {})}
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
        from ..scaleout import radial_profile_distributed
        from ..scaleout._cluster import partitioned

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
