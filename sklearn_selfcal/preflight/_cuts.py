"""The paper's cuts of a planned run, computed once, counted, and explained when they empty it."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from .._paper import SPEC_PARALLAX, parallax_to_distance, zero_point_of
from ..distances import DistanceTransformer, distance_transformer
from ..selection import bounds_cuts, gaia_training_cuts, parent_sample_cuts, quality_cuts

#: At most this many disk stars get actions in ``check`` (the training-filter count is scaled).
CHECK_MAX_ACTIONS = 20_000


def sample_cuts(work, plan, config, *, has_spectrum=None):
    """The catalogue's quality flags and the parent-sample cuts of every row, computed once.

    Parameters
    ----------
    work : DataFrame
        The canonical table (:func:`prepare_catalogue`).
    plan : RunPlan
        The magnitudes of the parallax model (complete photometry is a parent cut when spectra
        are given).
    config : dict
        ``[sample]``: ``logg_max``, ``exclude_star_bad``, ``exclude_duplicates``.
    has_spectrum : array-like of bool, optional
        Which rows have a spectrum (default: not a cut).

    Returns
    -------
    sample : Bunch
        ``quality`` and ``parent_cuts`` (DataFrames of bool, one column per cut), ``quality_ok``
        and ``parent`` (ndarray of bool: every quality cut; every quality and parent cut).
    """
    scfg = config["sample"]
    quality = quality_cuts(work, star_bad=scfg["exclude_star_bad"],
                           duplicates=scfg["exclude_duplicates"])
    parent_cuts = parent_sample_cuts(work, logg_max=scfg["logg_max"],
                                     magnitude_columns=plan.magnitudes if plan.spectra else (),
                                     has_spectrum=has_spectrum)
    quality_ok = quality.to_numpy().all(axis=1)
    return Bunch(quality=quality, parent_cuts=parent_cuts, quality_ok=quality_ok,
                 parent=quality_ok & parent_cuts.to_numpy().all(axis=1))


#: The configuration key that widens each cut of the quality and parent samples.
_WIDEN = {"star_bad": "[sample] exclude_star_bad = false",
          "duplicates": "[sample] exclude_duplicates = false",
          "complete_photometry": "[parallax] magnitudes = [...] (the bands to use)",
          "spectrum": "--spectra with a spectrum for these stars"}


def empty_sample_message(work, sample, config):
    """Why no star is left in the parent sample: the cut that emptied it and how to widen it.

    Parameters
    ----------
    work : DataFrame
        The canonical table.
    sample : Bunch
        Of :func:`sample_cuts`.
    config : dict
        The configuration (the cut's threshold).

    Returns
    -------
    message : str
        Names the cut, the lowest value found for the log g cut, and the configuration key.
    """
    cuts = pd.concat([sample.quality, sample.parent_cuts], axis=1)
    conditions = {**sample.quality.attrs.get("conditions", {}),
                  **sample.parent_cuts.attrs.get("conditions", {})}
    kept = np.ones(len(work), dtype=bool)
    for name in cuts.columns:
        before = kept.copy()
        kept &= cuts[name].to_numpy()
        if kept.any():
            continue
        n = int(before.sum())
        what = f"no star passes the parent-sample cut {conditions.get(name, name)}"
        if name == "logg":
            logg = work["LOGG"].to_numpy(dtype=float)[before]
            logg = logg[np.isfinite(logg)]
            if not logg.size:
                return f"{what}: none of the {n:,} star(s) passing the cuts before it has a LOGG"
            wider = float(np.ceil(logg.min() * 10) / 10)
            return (f"{what}: the lowest LOGG of the {n:,} star(s) passing the cuts before it is "
                    f"{logg.min():.2f} (the paper keeps giants more luminous than the red clump); "
                    f"widen the cut with [sample] logg_max in a --config file, e.g. "
                    f"logg_max = {wider:g} keeps {int((logg <= wider).sum()):,} star(s)")
        return f"{what} ({n:,} star(s) before it); widen it with {_WIDEN.get(name, name)}"
    return "no star in the parent sample"


def count_cuts(work, plan, training_filter, *, n_jobs=None, random_state=0):
    """How many stars pass each cut of the paper, in order, and the positions used for them.

    The cuts: allStar's flags and the parent sample (log g, complete photometry and a spectrum
    when the parallax model is trained), as computed once in ``plan.sample``
    (:func:`sample_cuts`); the Gaia training cuts of the parallax model (spectra only; counted
    within the parent sample); the disk sample (positions and vertical velocities from the chosen
    distances; with spectra, *estimated* from Gaia parallaxes with parallax/error > 5, since the
    spectro-photometric ones are not fitted yet) and the calibration's training filter (actions
    computed for at most :data:`CHECK_MAX_ACTIONS` disk stars; the count is scaled when they are a
    subsample).

    Parameters
    ----------
    work : DataFrame
        The canonical table (:func:`prepare_catalogue`).
    plan : RunPlan
        From :func:`plan_and_prepare` (with ``plan.sample``).
    training_filter : DiskTrainingFilter
        The calibration's training filter, with the run's thresholds (the disk sample's cuts and
        the training bounds).
    n_jobs : int or None, default=None
        Parallel workers of the actions.
    random_state : int, default=0
        Chooses the subsample of disk stars whose actions are computed.

    Returns
    -------
    counts : Bunch
        ``table`` (DataFrame: ``stage, cut, condition, n_remaining``), ``parent`` (mask),
        ``notes`` (list of str).
    """
    rows, notes = [], []

    def add(stage, cuts, start):
        kept = start.copy()
        for name in cuts.columns:
            kept &= cuts[name].to_numpy()
            rows.append({"stage": stage, "cut": name,
                         "condition": cuts.attrs.get("conditions", {}).get(name, name),
                         "n_remaining": int(kept.sum())})
        notes.extend(f"{stage}: cut skipped, {s}" for s in cuts.attrs.get("skipped", []))
        return kept

    n = len(work)
    rows.append({"stage": "input", "cut": "all rows", "condition": "", "n_remaining": n})
    quality = add("quality", plan.sample.quality, np.ones(n, dtype=bool))
    parent = add("parent sample", plan.sample.parent_cuts, quality)
    if plan.spectra and plan.can_run:
        add("parallax training (Gaia)", gaia_training_cuts(work, missing="skip",
                                                           magnitude_columns=plan.magnitudes),
            parent)
    if plan.can_run:
        disk = _estimated_disk(work, plan, training_filter, parent, add, notes)
        if plan.distance.kind != "spectra" and parent.any() and not disk.with_distance.any():
            plan.problems.append(f"no star of the parent sample has a distance from "
                                 f"{plan.distance.describe()}")
        _training_count(work, training_filter, disk, rows, notes, n_jobs, random_state)
    return Bunch(table=pd.DataFrame(rows), parent=parent, notes=notes)


def _estimated_disk(work, plan, training_filter, parent, add, notes):
    from ..coordinates import cylindrical_from_cartesian, icrs_to_galactocentric

    d = plan.distance
    if d.kind == "spec_parallax":
        dist = parallax_to_distance(work[SPEC_PARALLAX].to_numpy(dtype=float),
                                    zero_point=zero_point_of(SPEC_PARALLAX))
    else:
        if d.kind == "spectra":
            step = DistanceTransformer(parallax_zero_point=d.parallax_zero_point)
            notes.append("disk sample estimated with Gaia parallaxes (parallax/error > 5); the run "
                         "uses the spectro-photometric ones")
        else:
            step = distance_transformer(d)
        dist = step.fit_transform(work)[:, 0]
    has = np.isfinite(dist)
    kept = add("distances", pd.DataFrame({"distance": has}, index=work.index).pipe(
        _with_condition, "distance", "a finite, positive distance"), parent)
    rows = np.flatnonzero(kept)
    if rows.size == 0:
        return Bunch(mask=kept, distance=dist, with_distance=kept)
    sub = work.iloc[rows]
    xyz, vxyz = icrs_to_galactocentric(sub["ra"].to_numpy(float), sub["dec"].to_numpy(float),
                                       dist[rows], sub["pmra"].to_numpy(float),
                                       sub["pmdec"].to_numpy(float),
                                       sub["VHELIO_AVG"].to_numpy(float))
    R = cylindrical_from_cartesian(xyz, vxyz)[0]
    pos = pd.DataFrame({"x": xyz[0], "y": xyz[1], "z": xyz[2], "v_z": vxyz[2], "R": R},
                       index=sub.index).join(sub[[c for c in ("LOGG", "APOGEE_ID")
                                                  if c in sub.columns]])
    cuts = training_filter.disk_cuts(pos)
    full = pd.DataFrame(False, index=work.index, columns=cuts.columns)
    full.iloc[rows] = cuts.to_numpy()
    full.attrs = cuts.attrs
    disk = add("disk sample", full, kept)
    return Bunch(mask=disk, distance=dist, with_distance=kept)


def _with_condition(frame, name, condition):
    frame.attrs["conditions"] = {name: condition}
    return frame


def _training_count(work, training_filter, disk, rows, notes, n_jobs, random_state):
    """The calibration's training bounds on (a subsample of) the disk sample."""
    from ..actions import ActionTransformer
    from ..exceptions import BadRowsWarning, InaccurateActionsWarning

    idx = np.flatnonzero(disk.mask)
    if idx.size == 0:
        rows.append({"stage": "calibration training", "cut": "bounds", "condition":
                     "actions within the training bounds", "n_remaining": 0})
        return
    rng = np.random.default_rng(random_state)
    sub = np.sort(rng.choice(idx, CHECK_MAX_ACTIONS, replace=False)) if idx.size > \
        CHECK_MAX_ACTIONS else idx
    frame = work.iloc[sub][["ra", "dec", "pmra", "pmdec", "VHELIO_AVG"]].copy()
    frame["distance_kpc"] = disk.distance[sub]
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # a count: the run reports these stars itself
        warnings.simplefilter("ignore", BadRowsWarning)
        warnings.simplefilter("ignore", InaccurateActionsWarning)
        phase = ActionTransformer(distance="distance_kpc", n_jobs=n_jobs) \
            .set_output(transform="pandas").fit_transform(frame)
    cuts = bounds_cuts(phase, training_filter.training_bounds)
    kept = cuts.to_numpy().all(axis=1)
    n = int(round(kept.sum() * idx.size / sub.size))
    approx = "" if sub.size == idx.size else f" (~, from {sub.size:,} of {idx.size:,} stars)"
    rows.append({"stage": "calibration training", "cut": "bounds" + approx,
                 "condition": "; ".join(cuts.attrs["conditions"].values()), "n_remaining": n})
    notes.append(f"actions of {sub.size:,} disk stars computed in {time.perf_counter() - t0:.1f} s "
                 "for the training-filter count")


