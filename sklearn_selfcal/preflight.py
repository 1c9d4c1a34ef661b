"""Before any computation: which columns, which distances, how many stars pass each cut.

:func:`plan_run` decides, from a catalogue's column names and the configuration alone, which
column plays each role, where the distances come from, which magnitudes and LSF moments the
parallax model can use, which abundances will be calibrated and what is missing (with the
configuration key that fixes it). :func:`prepare_catalogue` reads nothing but cleans and renames
a table for the run, and :func:`count_cuts` counts the stars passing each cut of the paper in order.
The ``check`` command prints all of it in seconds; ``run`` performs the same checks first and stops
before the first expensive step when it could not proceed.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ._paper import (ABUNDANCE_COLUMNS, SPEC_PARALLAX, abundance_error_column,
                     parallax_to_distance, zero_point_of)
from .cleaning import as_frame, clean_catalogue
from .columns import DISTANCE_SOURCES, ROLES, as_mapping, canonical_frame, resolve_columns
from .config import step_setting
from .distances import DistanceTransformer, choose_distance_source, distance_transformer
from .selection import bounds_cuts, gaia_training_cuts, parent_sample_cuts, quality_cuts

__all__ = ["RunPlan", "plan_run", "plan_and_prepare", "sample_cuts", "empty_sample_message",
           "empty_columns", "prepare_catalogue", "count_cuts", "PAPER_BANDS", "LSF_ROLES",
           "ORBIT_ROLES"]

_ROLE = {role.name: role for role in ROLES}
#: The paper's eight magnitudes (Gaia G, BP, RP; 2MASS J, H, Ks; WISE W1, W2), as roles.
PAPER_BANDS = ("g_mag", "bp_mag", "rp_mag", "j_mag", "h_mag", "k_mag", "w1_mag", "w2_mag")
#: The five LSF moments of the paper's parallax model, as roles.
LSF_ROLES = tuple(f"lsf_{i}" for i in range(1, 6))
#: Roles every run needs: the orbits (sky position, proper motions, line-of-sight velocity) and
#: the giant cut (log g).
ORBIT_ROLES = ("ra", "dec", "pmra", "pmdec", "radial_velocity", "logg")
_ORBIT_ERROR_ROLES = ("pmra_error", "pmdec_error", "radial_velocity_error")
_KEEP_ROLES = ("star_id", "source_id", "telescope", "teff", "teff_error", "logg_error", "snr",
               "aspcapflag", "starflag", "extratarg", "M_H", "M_H_ERR", "spec_parallax",
               "spec_parallax_err", "pm_correlation", "sdss_id", "catalogid", "release",
               "flag_bad", "flag_warn", "result_flags", "bailer_jones_flags")
#: Roles read by the quality cuts only (before the method's Pipeline).
_QUALITY_ROLES = ("aspcapflag", "starflag", "extratarg", "flag_bad", "flag_warn", "result_flags",
                  "bailer_jones_flags")
#: At most this many disk stars get actions in ``check`` (the training-filter count is scaled).
CHECK_MAX_ACTIONS = 20_000


@dataclass
class RunPlan:
    """What a run will use, decided from the column names and the configuration.

    Parameters
    ----------
    columns : list of str
        The catalogue's columns.
    column_map : ColumnMap
        Which column plays each role.
    distance : DistanceChoice or None
        Where the distances come from (None: no source, see ``problems``).
    magnitudes, lsf : list of str
        Canonical names of the magnitudes and LSF moments of the parallax model (spectra only).
    left_out : list of str
        One line per band left out of the model, saying which catalogue provides it.
    abundances : list of str
        Abundance columns (canonical names) to calibrate.
    problems : list of str
        Why ``run`` could not proceed, each with the fix; empty when it can.
    notes : list of str
        Remarks for the user (e.g. an empty distance column passed over).
    spectra : bool
        Spectra are given: the parallax model is trained.
    sample : Bunch or None
        The quality and parent-sample cuts of the catalogue's rows (:func:`sample_cuts`), computed
        once by :func:`plan_and_prepare` and carried to the counts and the run.
    """

    columns: list
    column_map: object
    distance: object = None
    magnitudes: list = field(default_factory=list)
    lsf: list = field(default_factory=list)
    left_out: list = field(default_factory=list)
    abundances: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    spectra: bool = False
    sample: object = None

    @property
    def can_run(self):
        """No blocking problem was found."""
        return not self.problems

    def roles_used(self):
        """Every role whose column the run reads.

        Returns
        -------
        roles : list of str
            Role names present in the catalogue.
        """
        roles = list(ORBIT_ROLES) + list(_ORBIT_ERROR_ROLES) + list(_KEEP_ROLES)
        if self.spectra:
            roles += ["parallax", "parallax_error", "visibility_periods_used",
                      "astrometric_chi2_al", "astrometric_n_good_obs_al", "ruwe"]
            roles += [r for r in PAPER_BANDS if r in self.column_map]
            roles += [f"{r}_error" for r in PAPER_BANDS if f"{r}_error" in self.column_map]
            roles += [r for r in LSF_ROLES if r in self.column_map]
        if self.distance is not None and self.distance.kind == "parallax":
            roles += ["parallax", "parallax_error"]
        roles += [r for r in self.abundances]
        roles += [abundance_error_column(r) for r in self.abundances]
        roles += [f"{r}_FLAG" for r in self.abundances]
        return [r for r in dict.fromkeys(roles) if r in self.column_map]

    def method_columns(self, extra=()):
        """The columns the method's Pipeline reads, under the method's own names.

        The canonical names of :meth:`roles_used`, the chosen distance catalogue's columns under
        :data:`~sklearn_selfcal.distances.DISTANCE_INPUT`, and ``extra``: the same names whatever
        the catalogue's spelling, so that a Pipeline fitted on one release applies to another.

        Parameters
        ----------
        extra : iterable of str, default=()
            More columns (canonical names), e.g. a nuisance that is not a role.

        Returns
        -------
        columns : list of str
        """
        names = [_ROLE[r].canonical for r in self.roles_used() if r not in _QUALITY_ROLES]
        renames = self.distance.renames() if self.distance is not None else {}
        return list(dict.fromkeys([*names, *renames.values(), *extra]))

    def read_columns(self, extra=()):
        """The catalogue columns ``run`` reads: the roles used, the distance columns, ``extra``.

        Parameters
        ----------
        extra : iterable of str, default=()
            More columns to read (those absent from the catalogue are ignored).

        Returns
        -------
        columns : list of str
            Catalogue column names, without repetition.
        """
        cols = [self.column_map[r] for r in self.roles_used()]
        d = self.distance
        if d is not None and d.kind == "distance":
            cols += [c for c in (d.column, d.error, d.lo, d.hi) if c is not None]
        for s in DISTANCE_SOURCES:  # candidates too, so that an empty one can be passed over
            cols += [c for c in (s.column, s.error, s.lo, s.hi) if c in self.columns]
        cols += [self.column_map[r] for r in ("parallax", "parallax_error")
                 if r in self.column_map]
        cols += [c for c in extra if c in self.columns]
        return list(dict.fromkeys(cols))


def _configured_roles(value, defaults, what):
    """``"auto"`` -> (defaults, auto=True); a list of roles or canonical names -> (roles, False)."""
    if isinstance(value, str) and value == "auto":
        return list(defaults), True
    by_canonical = {r.canonical: r.name for r in ROLES}
    roles = []
    for item in value:
        name = item if item in _ROLE else by_canonical.get(item)
        if name is None:
            raise KeyError(f"[parallax] {what}: {item!r} is not a role or column name of the "
                           f"table of roles (e.g. {', '.join(defaults[:3])})")
        roles.append(name)
    return roles, False


def empty_columns(frame):
    """Columns of ``frame`` without a single usable value (all NaN, masked or sentinel).

    Parameters
    ----------
    frame : DataFrame
        A catalogue (or some of its rows).

    Returns
    -------
    columns : list of str
        The numeric or text columns that hold no value.
    """
    from .cleaning import masked_to_nan, sentinel_mask

    empty = []
    for name in frame.columns:
        col = frame[name]
        if not (pd.api.types.is_numeric_dtype(col) or col.dtype == object):
            continue
        values = masked_to_nan(col)[0]
        if not (np.isfinite(values) & ~sentinel_mask(values)).any():
            empty.append(name)
    return empty


def plan_run(columns, config, *, spectra=False, distance_column=None, empty=()):
    """Decide what a run will use from the catalogue's column names and the configuration.

    Parameters
    ----------
    columns : list of str
        The catalogue's columns (as in the file).
    config : dict
        From :func:`~sklearn_selfcal.workflow.load_config`.
    spectra : bool, default=False
        Spectra are given (the parallax model is trained).
    distance_column : str, optional
        ``--distance``.
    empty : iterable of str, optional
        Columns known to hold no value (:func:`empty_columns`): a distance catalogue found among
        them is passed over (and noted) when the source is chosen automatically.

    Returns
    -------
    plan : RunPlan
        Roles, distance source, bands, abundances and problems.
    """
    columns = list(columns)
    mapping = as_mapping(config.get("columns"))
    catalogue = config.get("catalogue", {})
    column_map = resolve_columns(columns, mapping, abundances=catalogue.get("abundances", "x_fe"),
                                 x_fe_error=catalogue.get("x_fe_error", "independent"))
    plan = RunPlan(columns=columns, column_map=column_map, spectra=spectra)
    for role in ORBIT_ROLES:
        if role not in column_map:
            plan.problems.append(f"no {_ROLE[role].description} column: map it with [columns] "
                                 f"{role} = \"<column>\" (provided by {_ROLE[role].provider})")
    if step_setting(config, "actions", "n_samples") > 0:
        for role in _ORBIT_ERROR_ROLES:
            if role not in column_map:
                plan.problems.append(f"[actions] n_samples > 0 needs the {_ROLE[role].description}"
                                     f": map it with [columns] {role} = \"<column>\"")
    dcfg = config["distance"]
    empty = [c for c in empty if c in columns]
    usable = [c for c in columns if c not in empty]
    skipped = [s.column for s in DISTANCE_SOURCES if s.column in empty]
    if skipped:
        plan.notes.append(f"distance column(s) {skipped} hold no value for the candidate parent-sample stars: passed over")
    try:
        plan.distance = choose_distance_source(
            usable, column_map.restrict(usable), spectra=spectra, source=dcfg["source"],
            column=distance_column or dcfg["column"] or None, error=dcfg["error"] or None,
            lo=dcfg["lo"] or None, hi=dcfg["hi"] or None, unit=dcfg["unit"],
            parallax_over_error=dcfg["parallax_over_error"],
            parallax_zero_point=dcfg["parallax_zero_point"])
    except ValueError as exc:
        plan.problems.append(str(exc))
    if spectra:
        _plan_parallax_model(plan, config)
    plan.abundances = column_map.abundances()
    missing_err = [c for c in plan.abundances if abundance_error_column(c) not in column_map]
    if missing_err and step_setting(config, "calibration", "weighted"):
        plan.notes.append(f"abundances without an uncertainty column are not calibrated: "
                          f"{missing_err} (map them with [columns] <X>_ERR = \"<column>\")")
        plan.abundances = [c for c in plan.abundances if c not in missing_err]
    if not plan.abundances:
        plan.notes.append("no abundance column (FE_H, <X>_FE, ALPHA_M): the calibration, profiles "
                          "and fit are skipped; map them with [columns] FE_H = \"<column>\"")
    return plan


def _plan_parallax_model(plan, config):
    pcfg = config["parallax"]
    cmap = plan.column_map
    for role in ("parallax", "parallax_error"):
        if role not in cmap:
            plan.problems.append(f"the parallax model is trained on Gaia parallaxes: no "
                                 f"{_ROLE[role].description} column; map it with [columns] "
                                 f"{role} = \"<column>\"")
    bands, auto = _configured_roles(pcfg["magnitudes"], PAPER_BANDS, "magnitudes")
    for role in bands:
        r = _ROLE[role]
        if role in cmap:
            plan.magnitudes.append(r.canonical)
        elif auto:
            plan.left_out.append(f"{r.description.split(' (')[0]} left out of the parallax model: "
                                 f"not in the catalogue (provided by {r.provider}; map it with "
                                 f"[columns] {role} = \"<column>\")")
        else:
            plan.problems.append(f"[parallax] magnitudes lists {role} ({r.description}), which the "
                                 f"catalogue lacks: it is provided by {r.provider}; map it with "
                                 f"[columns] {role} = \"<column>\" or remove it from the list")
    lsf, auto = _configured_roles(pcfg["lsf_moments"], LSF_ROLES, "lsf_moments")
    present = [r for r in lsf if r in cmap]
    plan.lsf = [_ROLE[r].canonical for r in present]
    absent = [r for r in lsf if r not in cmap]
    if absent and auto:
        plan.left_out.append(f"LSF moments {', '.join(absent)} left out of the parallax model: not "
                             f"in the catalogue (provided by {_ROLE[absent[0]].provider})")
    elif absent:
        plan.problems.append(f"[parallax] lsf_moments lists {absent}, which the catalogue lacks; "
                             "map them with [columns] lsf_1 = \"<column>\" ... or set "
                             "lsf_moments = []")
    if not plan.magnitudes:
        plan.problems.append("the parallax model has no magnitude at all; map at least one with "
                             "[columns] (e.g. h_mag = \"H\")")


def prepare_catalogue(frame, plan, *, warn=True):
    """The cleaned catalogue (its own names) and the canonical table the method works on.

    Parameters
    ----------
    frame : DataFrame or astropy Table
        The catalogue (not modified).
    plan : RunPlan
        From :func:`plan_run`: its column map says which columns play which role.
    warn : bool, default=True
        Emit the cleaning's warnings (one per column).

    Returns
    -------
    prepared : Bunch
        ``table`` (cleaned, the catalogue's own column names), ``work`` (the same values under
        the canonical names of :data:`~sklearn_selfcal.columns.ROLES`), ``cleaning`` (counts of
        values set to NaN per column).
    """
    frame = as_frame(frame)
    column_map = plan.column_map.restrict(frame.columns)
    table, report = clean_catalogue(frame, column_map, warn=warn, stacklevel=3)
    work = canonical_frame(table, column_map)
    return Bunch(table=table, work=work, cleaning=report)


def plan_and_prepare(frame, config, *, spectra=False, distance_column=None, columns=None,
                     has_spectrum=None):
    """:func:`plan_run`, :func:`prepare_catalogue`, then the plan again with the distance columns
    that hold no value for the candidate parent stars passed over.

    Parameters
    ----------
    frame : DataFrame or astropy Table
        The catalogue (or the columns of it that were read).
    config : dict
        From :func:`~sklearn_selfcal.workflow.load_config`.
    spectra : bool, default=False
        Spectra are given (the parallax model is trained).
    distance_column : str, optional
        ``--distance``.
    columns : list of str, optional
        All the catalogue's columns (default: ``frame``'s).
    has_spectrum : array-like of bool, optional
        Which rows have a spectrum (a parent-sample cut when given).

    Returns
    -------
    plan : RunPlan
        The plan, with the empty distance columns passed over and the sample cuts
        (:func:`sample_cuts`) in ``plan.sample``; when no star is left in the parent sample,
        its first problem names the cut that emptied it (:func:`empty_sample_message`).
    prepared : Bunch
        Of :func:`prepare_catalogue`.
    """
    frame = as_frame(frame)
    columns = list(frame.columns) if columns is None else list(columns)
    first = plan_run(columns, config, spectra=spectra, distance_column=distance_column)
    prepared = prepare_catalogue(frame, first)
    if "LOGG" not in prepared.work.columns:
        return first, prepared
    sample = sample_cuts(prepared.work, first, config, has_spectrum=has_spectrum)
    empty = empty_columns(prepared.table.loc[sample.parent]) if sample.parent.any() else ()
    plan = plan_run(columns, config, spectra=spectra, distance_column=distance_column,
                    empty=empty)
    plan.sample = sample
    if not sample.parent.any():
        plan.problems.insert(0, empty_sample_message(prepared.work, sample, config))
    return plan, prepared


def sample_cuts(work, plan, config, *, has_spectrum=None):
    """allStar's quality flags and the parent-sample cuts of every row, computed once.

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
    from .coordinates import cylindrical_from_cartesian, icrs_to_galactocentric

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
    from .actions import ActionTransformer
    from .exceptions import BadRowsWarning, InaccurateActionsWarning

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


def summary_lines(plan, counts=None, *, path=None, n_rows=None, seconds=None, roles=None,
                  source=None):
    """The text ``check`` prints (and ``run`` prints before it starts).

    ``source`` is the reader's ``frame.attrs["source"]`` (which FITS HDU was read, and why).

    Returns
    -------
    lines : list of str
        The last line starts with ``OK:`` or ``ERROR:``.
    """
    lines = []
    if path is not None:
        lines.append(f"catalogue: {path} ({n_rows:,} rows, {len(plan.columns)} columns)")
    if source and "hdu" in source:
        lines.append(f"  read {source['reason']}; --hdu or [catalogue] hdu reads another")
    lines.append("columns used (role -> column):")
    if roles is None:
        roles = [*ORBIT_ROLES, *_ORBIT_ERROR_ROLES, "star_id", "telescope", "teff",
                 "aspcapflag", "extratarg"]
        if plan.spectra or (plan.distance is not None and plan.distance.kind == "parallax"):
            roles += ["parallax", "parallax_error"]
        if plan.spectra:
            roles += [*PAPER_BANDS, *(f"{b}_error" for b in PAPER_BANDS), *LSF_ROLES,
                      "visibility_periods_used", "astrometric_chi2_al",
                      "astrometric_n_good_obs_al", "ruwe"]
        if "sdss_id" in plan.column_map:  # SDSS-V: its own flags instead of allStar's
            roles = [r for r in roles if r not in ("aspcapflag", "extratarg")]
            roles += [r for r in ("sdss_id", "release", "snr", "flag_bad") if r in plan.column_map]
    lines += ["  " + line for line in plan.column_map.report(roles)]
    found = [c for c in ABUNDANCE_COLUMNS if c in plan.column_map]
    lines.append(f"  abundances               {len(found)} of the paper's {len(ABUNDANCE_COLUMNS)}"
                 + (f" ({', '.join(plan.column_map[c] for c in found)}), with _ERR and _FLAG "
                    "where present" if found else ""))
    lines.append("distances: " + (plan.distance.describe() if plan.distance else "none"))
    if plan.spectra:
        lines.append("parallax model: magnitudes " + (", ".join(plan.magnitudes) or "none")
                     + "; LSF moments " + (", ".join(plan.lsf) or "none"))
        lines += ["  " + line for line in plan.left_out]
    lines.append(f"abundances to calibrate ({len(plan.abundances)}): "
                 + (", ".join(plan.abundances) or "none"))
    cmap = plan.column_map
    converted = [r for r in plan.abundances if cmap.converted.get(r)]
    if converted:
        e = f"{converted[0]}_ERR"
        err = (f"uncertainty {cmap.conversion(e)} ("
               + ("independent errors)" if cmap.converted.get(e) else "DR17's convention)")
               if e in cmap else "no uncertainty")
        lines.append(f"[X/H] -> [X/Fe] for {len(converted)} abundances: [X/Fe] = [X/H] - [Fe/H], "
                     f"e.g. {converted[0]} = {cmap.conversion(converted[0])}, {err}; "
                     "[catalogue] abundances = \"x_h\" keeps [X/H]")
    elif cmap.abundance_scale == "x_h":
        lines.append("[X/H] kept as [X/H] ([catalogue] abundances = \"x_h\")")
    if counts is not None:
        table = counts.table
        dup = table["condition"][(table["stage"] == "quality") & (table["cut"] == "duplicate")]
        if len(dup):
            lines.append(f"duplicates: {dup.iloc[0]}; [sample] exclude_duplicates = false keeps "
                         "every row")
        lines.append("stars passing each cut, in order:")
        for _, row in counts.table.iterrows():
            lines.append(f"  {row['stage']:<26} {row['cut']:<24} {row['n_remaining']:>9,}"
                         + (f"   ({row['condition']})" if row["condition"] else ""))
    for note in plan.notes + (counts.notes if counts is not None else []):
        lines.append(f"note: {note}")
    for problem in plan.problems:
        lines.append(f"problem: {problem}")
    if seconds is not None:
        lines.append(f"checked in {seconds:.1f} s")
    if plan.problems:
        lines.append(f"ERROR: run cannot proceed: {plan.problems[0]}")
    else:
        n_parent = int(counts.parent.sum()) if counts is not None else None
        lines.append("OK: run can proceed" + (f" ({n_parent:,} stars in the parent sample; "
                                              f"distances from {plan.distance.kind})"
                                              if n_parent is not None else ""))
    return lines
