"""The run plan: which column plays each role, where the distances come from, what is missing.

:func:`plan_run` decides from the column names and the configuration alone;
:func:`prepare_catalogue` cleans and renames a table for the run; :func:`plan_and_prepare` does
both and carries the sample cuts, computed once (:mod:`._cuts`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from .._paper import abundance_error_column
from ..cleaning import as_frame, clean_catalogue
from ..columns import DISTANCE_SOURCES, ROLES, as_mapping, canonical_frame, resolve_columns
from ..config import step_setting
from ..distances import choose_distance_source
from ._cuts import empty_sample_message, sample_cuts

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
            Canonical names, without repetition.
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
    from ..cleaning import masked_to_nan, sentinel_mask

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


