"""Column roles: which catalogue column plays which part in the method, in every survey's spelling.

Every column the method reads has a *role* (sky position, parallax, a magnitude, log g, an
abundance, ...). :data:`ROLES` (defined in :mod:`sklearn_selfcal._roles`, re-exported here) is one
declarative table: for each role its canonical name, unit, physical range, "no measurement" values,
provider and the spellings recognised without any configuration -- APOGEE allStar DR16 and DR17,
SDSS-V DR19/DR20 (astra's ``astraAllStarASPCAP``), the Gaia archive, 2MASS and AllWISE, VizieR.

SDSS-V's abundances are [X/H] (``mg_h``, ``e_mg_h``, ``mg_h_flags``); the method calibrates [X/Fe]
(DR17's ``MG_FE``). By default :func:`resolve_columns` maps the [X/Fe] roles to the [X/H] columns
and :func:`canonical_frame` converts them, ``[X/Fe] = [X/H] - [Fe/H]`` with the uncertainty
``sqrt(e_x_h**2 + e_fe_h**2)`` (the two errors taken as independent; or ``e_x_h`` alone, DR17's
convention); ``abundances="x_h"`` keeps [X/H] under the roles ``MG_H``, ... instead.

:func:`resolve_columns` maps a catalogue's columns to roles once (an explicit mapping, e.g. the
``[columns]`` section of the configuration, always wins; then the recognised spellings in order;
then a case-insensitive match) and returns a :class:`ColumnMap` that reports what it found (the
``check`` command prints it). :func:`canonical_frame` renames a catalogue to the canonical names
(and converts [X/H]); :func:`sklearn_selfcal.cleaning.clean_catalogue` turns sentinels, fill values
and values outside the physical ranges into NaN with one warning per column; the readers
(:mod:`sklearn_selfcal.io`) and the workflow both use them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ._paper import ABUNDANCE_COLUMNS, ELEMENTS
from ._roles import (ABUNDANCE_SCALES, DISTANCE_SOURCES, MAGNITUDE_SENTINELS, ROLES, X_FE_ERRORS,
                     DistanceSource, Role, distance_pc_factor, get_role, role_of)
from ._roles import _BY_CANONICAL, _BY_NAME
from .exceptions import DataQualityWarning

__all__ = [
    "Role",
    "ROLES",
    "DistanceSource",
    "DISTANCE_SOURCES",
    "ColumnMap",
    "resolve_columns",
    "canonical_frame",
    "role_of",
    "get_role",
    "MAGNITUDE_SENTINELS",
    "check_unique",
    "ABUNDANCE_SCALES",
    "X_FE_ERRORS",
]


@dataclass
class ColumnMap:
    """Which column of a catalogue plays each role.

    Parameters
    ----------
    columns : dict of str to str
        Role name -> column name in the catalogue, for the roles found.
    explicit : set of str
        Roles given by an explicit mapping (the ``[columns]`` config section).
    missing : list of str
        Roles with no column.
    converted : dict of str to str or None
        [X/Fe] roles read from an [X/H] column (SDSS-V): role -> the [Fe/H] role (or its error)
        that :func:`canonical_frame` combines it with; ``None`` for a plain rename.
    abundance_scale : {"x_fe", "x_h"}
        What the abundances are calibrated as (:data:`ABUNDANCE_SCALES`).
    x_fe_error : {"independent", "dr17"}
        Uncertainty of a converted [X/Fe] (:data:`X_FE_ERRORS`).
    """

    columns: dict
    explicit: set = field(default_factory=set)
    missing: list = field(default_factory=list)
    converted: dict = field(default_factory=dict)
    abundance_scale: str = "x_fe"
    x_fe_error: str = "independent"

    def __getitem__(self, role):
        return self.columns[role]

    def __contains__(self, role):
        return role in self.columns

    def get(self, role, default=None):
        """Column of ``role`` or ``default``.

        Parameters
        ----------
        role : str
            Role name.
        default : object, optional
            Returned when the role has no column.

        Returns
        -------
        column : str or object
            The catalogue column, or ``default``.
        """
        return self.columns.get(role, default)

    def restrict(self, columns):
        """The same map without the roles whose column is not among ``columns``.

        Parameters
        ----------
        columns : iterable of str
            The columns that remain (e.g. those that were read).

        Returns
        -------
        column_map : ColumnMap
            A new map.
        """
        columns = set(columns)
        kept = {r: c for r, c in self.columns.items() if c in columns}
        converted = {r: by for r, by in self.converted.items()
                     if r in kept and (by is None or by in kept)}
        kept = {r: c for r, c in kept.items() if r not in self.converted or r in converted}
        return ColumnMap(kept, self.explicit & set(kept),
                         [r.name for r in ROLES if r.name not in kept], converted,
                         self.abundance_scale, self.x_fe_error)

    def abundances(self):
        """The abundance roles found, in the paper's order: FE_H, the [X/Fe] and ALPHA_M, or
        FE_H, the [X/H] and ALPHA_M when the abundance scale is ``"x_h"``.

        Returns
        -------
        roles : list of str
            Canonical names of the abundances to calibrate (dex).
        """
        if self.abundance_scale == "x_h":
            names = ("FE_H", *(f"{element}_H" for element in ELEMENTS), "ALPHA_M")
        else:
            names = ABUNDANCE_COLUMNS
        return [name for name in names if name in self.columns]

    def conversion(self, role):
        """How the column of ``role`` is read: the column, or the [X/H] -> [X/Fe] formula.

        Parameters
        ----------
        role : str
            Role name.

        Returns
        -------
        text : str
            E.g. ``"mg_h - fe_h"`` or ``"sqrt(e_mg_h**2 + e_fe_h**2)"``.
        """
        column = self.columns[role]
        by = self.converted.get(role)
        if by is None:
            return column
        if role.endswith("_ERR"):
            return f"sqrt({column}**2 + {self.columns[by]}**2)"
        return f"{column} - {self.columns[by]}"

    def renames(self):
        """Renames from the catalogue's names to the canonical ones.

        Returns
        -------
        renames : dict of str to str
            ``{catalogue column: canonical name}`` for the roles found (identity entries left
            out).
        """
        return {col: _BY_NAME[role].canonical for role, col in self.columns.items()
                if col != _BY_NAME[role].canonical}

    def report(self, roles=None):
        """One line per role: the column used, ``(config)`` if mapped explicitly, or ``missing``.

        Parameters
        ----------
        roles : iterable of str, optional
            Roles to report (default: all of :data:`ROLES`).

        Returns
        -------
        lines : list of str
            One line per role, for printing.
        """
        lines = []
        for name in roles if roles is not None else _BY_NAME:
            role = _BY_NAME[name]
            if name in self.columns:
                how = " (config)" if name in self.explicit else ""
                lines.append(f"{name:<24} {self.conversion(name)}{how}")
            else:
                lines.append(f"{name:<24} missing  (from {role.provider}; map it with "
                             f"[columns] {name} = \"<column>\")")
        return lines


def resolve_columns(columns, mapping=None, *, abundances="x_fe", x_fe_error="independent"):
    """Map the columns of a catalogue to roles.

    Parameters
    ----------
    columns : iterable of str
        The catalogue's column names.
    mapping : mapping of str to str, optional
        Explicit ``{role: column}`` (the ``[columns]`` config section); always wins. A role may
        also be given by its canonical name.
    abundances : {"x_fe", "x_h"}, default="x_fe"
        For catalogues that give [X/H] (SDSS-V ``mg_h``, ...): map the [X/Fe] roles to them, to
        be converted by :func:`canonical_frame` when [Fe/H] is there too (``"x_fe"``), or keep
        them as the [X/H] roles ``MG_H``, ... (``"x_h"``). ``[catalogue] abundances``.
    x_fe_error : {"independent", "dr17"}, default="independent"
        Uncertainty of a converted [X/Fe] (:data:`X_FE_ERRORS`); ``[catalogue] x_fe_error``.

    Returns
    -------
    column_map : ColumnMap
        The roles found, with the explicit ones marked.

    Raises
    ------
    ValueError
        If ``columns`` holds a name twice (naming it), or for an unknown ``abundances`` or
        ``x_fe_error``.
    KeyError
        If ``mapping`` names an unknown role or a column the catalogue lacks (naming both).

    Examples
    --------
    >>> cmap = resolve_columns(["RA_ICRS", "DE_ICRS", "Plx", "e_Plx", "W1mag", "LOGG"])
    >>> cmap["parallax"], cmap["w1_mag"], "pmra" in cmap
    ('Plx', 'W1mag', False)
    >>> resolve_columns(["Plx", "my_plx"], {"parallax": "my_plx"})["parallax"]
    'my_plx'
    >>> resolve_columns(["fe_h", "mg_h", "e_fe_h", "e_mg_h"]).conversion("MG_FE_ERR")
    'sqrt(e_mg_h**2 + e_fe_h**2)'
    """
    for key, value, allowed in (("abundances", abundances, ABUNDANCE_SCALES),
                                ("x_fe_error", x_fe_error, X_FE_ERRORS)):
        if value not in allowed:
            raise ValueError(f"[catalogue] {key} must be one of {list(allowed)}, got {value!r}")
    columns = [str(c) for c in columns]
    check_unique(columns)
    present = set(columns)
    by_upper = {}
    for c in columns:
        by_upper.setdefault(c.upper(), c)
    found, explicit = {}, set()
    for key, column in (mapping or {}).items():
        role = _BY_NAME.get(key) or _BY_CANONICAL.get(key)
        if role is None:
            raise KeyError(f"[columns] {key!r} is not a role; roles are {sorted(_BY_NAME)}")
        if column not in present:
            raise KeyError(f"[columns] {key} = {column!r}: the catalogue has no column {column!r}")
        found[role.name] = column
        explicit.add(role.name)
    taken = set(found.values())
    for role in ROLES:
        if role.name in found:
            continue
        match = next((n for n in role.spellings if n in present and n not in taken), None)
        if match is None:
            match = next((by_upper[n.upper()] for n in role.spellings
                          if n.upper() in by_upper and by_upper[n.upper()] not in taken), None)
        if match is not None:
            found[role.name] = match
            taken.add(match)
    converted = {}  # [X/Fe] roles read from [X/H] columns (value first, then error and flag)
    for role in ROLES if abundances == "x_fe" else ():
        if not role.from_h or role.name in found:
            continue
        source, by = role.from_h
        if role.name.endswith("_ERR") and x_fe_error == "dr17":
            by = None
        value = role.name.rsplit("_", 1)[0] if role.name.endswith(("_ERR", "_FLAG")) else None
        if source not in found or (by is not None and by not in found) or \
                (value is not None and value not in converted):
            continue
        found[role.name] = found.pop(source)
        converted[role.name] = by
        if source in explicit:
            explicit.discard(source)
            explicit.add(role.name)
    missing = [role.name for role in ROLES if role.name not in found]
    return ColumnMap(found, explicit, missing, converted, abundances, x_fe_error)


def check_unique(columns, where="the catalogue"):
    """Raise a ``ValueError`` naming every column name that appears more than once.

    Parameters
    ----------
    columns : sequence of str
        Column names.
    where : str, default="the catalogue"
        What they are the columns of (for the message).
    """
    seen, dup = set(), []
    for c in columns:
        if c in seen and c not in dup:
            dup.append(c)
        seen.add(c)
    if dup:
        raise ValueError(f"{where} has duplicate column name(s) {dup}; rename them so that each "
                         "column has one name")


def canonical_frame(frame, column_map):
    """The catalogue with its role columns renamed to the canonical names (a new frame).

    Columns without a role keep their names; a canonical name already taken by a column that does
    not play that role is left alone (the role column keeps its own name) with a warning. The
    [X/Fe] roles read from [X/H] columns (``column_map.converted``, SDSS-V) become ``[X/Fe] =
    [X/H] - [Fe/H]`` (dex), their uncertainty ``sqrt(e_x_h**2 + e_fe_h**2)`` (independent errors)
    or ``e_x_h`` (``x_fe_error="dr17"``); a row with [X/H] but no [Fe/H] gets NaN, counted in one
    :class:`~sklearn_selfcal.exceptions.DataQualityWarning` per column.

    Parameters
    ----------
    frame : DataFrame
        Not modified.
    column_map : ColumnMap
        Its roles (:func:`resolve_columns`).

    Returns
    -------
    frame : DataFrame
        A new frame (the data are shared, converted columns are new) with canonical names.
    """
    renames = column_map.renames()
    targets = {}
    for src, dst in renames.items():
        if dst in frame.columns and dst not in renames:
            warnings.warn(f"column {src!r} plays the role of {dst!r}, but the catalogue also has a "
                          f"column {dst!r} of its own: it is renamed to '{dst}_input'",
                          DataQualityWarning, stacklevel=2)
            targets[dst] = f"{dst}_input"
        targets[src] = dst
    out = frame.rename(columns=targets)
    converted = {}
    for name, by in column_map.converted.items():
        if by is None:
            continue
        values = out[name].to_numpy(dtype=np.float64, na_value=np.nan)
        other = out[by].to_numpy(dtype=np.float64, na_value=np.nan)
        converted[name] = np.hypot(values, other) if name.endswith("_ERR") else values - other
        lost = np.isfinite(values) & ~np.isfinite(other)
        if lost.any() and not name.endswith("_ERR"):
            rows = np.flatnonzero(lost)
            warnings.warn(f"column {name!r} ({column_map.conversion(name)}): {rows.size} row(s) "
                          f"have [X/H] but no [Fe/H] ({column_map[by]!r}); set to NaN (rows "
                          f"{', '.join(map(str, rows[:5]))}{' ...' if rows.size > 5 else ''})",
                          DataQualityWarning, stacklevel=2)
    return out.assign(**converted) if converted else out


def as_mapping(value, what="[columns]"):
    """A ``{role: column}`` mapping from the config (``None`` -> empty)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a table of role = \"column\" entries, got {value!r}")
    return {str(k): str(v) for k, v in value.items()}
