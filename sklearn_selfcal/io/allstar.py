"""APOGEE allStar catalogues (DR16/DR17 FITS): only the columns asked for, cleaned on the way in."""

from __future__ import annotations

import os
import re

import pandas as pd

from ..cleaning import GENERIC_SENTINELS, clean_catalogue
from ..columns import ROLES, resolve_columns
from ._fits import int_nulls, nullable, open_table, read_columns, resolve_names, table_columns

__all__ = ["ALLSTAR_SENTINELS", "GAIA_NAMES", "load_allstar", "looks_like_allstar"]

#: allStar's "no measurement" values of floating-point columns (see
#: :data:`sklearn_selfcal.cleaning.GENERIC_SENTINELS`).
ALLSTAR_SENTINELS = GENERIC_SENTINELS

#: allStar spelling -> name used by this library, for the Gaia and WISE columns shipped in allStar
#: DR17 (``GAIAEDR3_*``, Gaia EDR3) and DR16 (``GAIA_*``, Gaia DR2), and RA/DEC; from the
#: ``allstar`` spellings of :data:`sklearn_selfcal.columns.ROLES`. Units: parallax (mas), proper
#: motions (mas/yr), magnitudes (mag), radial velocity (km/s), ra/dec (deg).
GAIA_NAMES = {spelling: role.canonical for role in ROLES for spelling in role.allstar}
# Library name -> allStar spellings, in the order tried (DR17 first).
_GAIA_SPELLINGS = {}
for _allstar, _name in GAIA_NAMES.items():
    _GAIA_SPELLINGS.setdefault(_name, []).append(_allstar)

_ABUNDANCE = re.compile(r"^(?:[A-Z]+_FE|FE_H)$")


def looks_like_allstar(names):
    """Tell whether a table's column names are those of an APOGEE allStar catalogue.

    Parameters
    ----------
    names : iterable of str
        The table's column names.

    Returns
    -------
    bool
        True when both ``APOGEE_ID`` and ``ASPCAPFLAG`` are among ``names``.

    Examples
    --------
    >>> looks_like_allstar(["APOGEE_ID", "ASPCAPFLAG", "FE_H"]), looks_like_allstar(["ra", "dec"])
    (True, False)
    """
    names = set(names)
    return "APOGEE_ID" in names and "ASPCAPFLAG" in names


def load_allstar(path, columns=None, gaia_names=False, flagged_to_nan=True, hdu="auto"):
    """Read an APOGEE allStar catalogue (DR16 or DR17 FITS) into a DataFrame.

    The file is opened as a memory map and only the requested columns are copied out, one at a
    time, so the ~4 GB, ~730,000-row real catalogue is never loaded whole: memory use is about
    the size of the returned DataFrame (plus the ``<X>_FE_FLAG`` columns read for masking).

    Cleaning applied to the copies (the file is never modified):

    * native byte order (FITS is big-endian); string columns decoded (ASCII) and stripped;
    * integer columns: values equal to the column's FITS ``TNULL`` -> missing (the column becomes
      a pandas nullable integer); identifiers outside their role's range (Gaia source
      identifiers <= 0) -> missing, by the cleaning below;
    * the shared cleaning of :func:`sklearn_selfcal.cleaning.clean_catalogue`: sentinels
      (:data:`ALLSTAR_SENTINELS`: -9999, -9999.99, -999.99, ...; 99.999 for magnitudes) -> NaN,
      values outside each role's physical range -> NaN (with a warning per column), and with
      ``flagged_to_nan`` each abundance and its ``_ERR`` set to NaN where its ``<X>_FLAG`` is
      non-zero (the flag column is read for this even when not requested, and returned only if
      requested).

    Parameters
    ----------
    path : str or path-like
        allStar FITS file; the first table extension (HDU 1) is read.
    columns : list of str, optional
        Columns to read, in this order. ``None`` reads every scalar column and skips the
        multidimensional ones (``PARAM``, ``FPARAM``, ``PARAM_COV``, ``FELEM``, ``X_H``, ...).
        A multidimensional column named here explicitly is expanded into ``NAME_0 .. NAME_k``
        (its elements flattened in C order of the per-row array, e.g. ``PARAM_COV_0 ..
        PARAM_COV_80`` for the 9 x 9 covariance). Names are matched exactly, then
        case-insensitively (FITS names are case-insensitive); with ``gaia_names=True`` the
        library's Gaia names (``"parallax"``, ...) are also accepted and resolved to the spelling
        of the file's data release.
    gaia_names : bool, default=False
        Rename the Gaia/WISE columns shipped in allStar to the names used by this library (see
        :data:`GAIA_NAMES`): DR16 ``GAIA_PARALLAX`` / DR17 ``GAIAEDR3_PARALLAX`` -> ``parallax``
        (mas), ``*_PMRA``/``*_PMDEC`` (+ ``_ERROR``) -> ``pmra``/``pmdec`` (mas/yr),
        ``*_PHOT_{G,BP,RP}_MEAN_MAG`` -> ``phot_{g,bp,rp}_mean_mag`` (mag), the Gaia radial
        velocity -> ``radial_velocity`` (km/s), ``*_SOURCE_ID`` -> ``source_id``, ``RA``/``DEC``
        -> ``ra``/``dec`` (deg), ``WISE_4_5``/``WISE_4_5_ERR`` -> ``w2mpro``/``w2mpro_error``
        (mag). If a file carried both spellings, the DR17 one takes the name.
    flagged_to_nan : bool, default=True
        Mask flagged abundances as described above.
    hdu : "auto", int or str, default="auto"
        The table HDU (:func:`~sklearn_selfcal.io._fits.choose_hdu`; an allStar file has one).

    Returns
    -------
    frame : pandas.DataFrame of shape (n_stars, n_columns)
        One row per allStar row, in file order, with the file's units (K for TEFF, dex for
        abundances and log g, km/s for velocities, mag for photometry, deg for coordinates).
        ``frame.attrs["cleaning"]`` counts, per column, the values set to NaN;
        ``frame.attrs["source"]`` says which HDU was read and why.

    Raises
    ------
    KeyError
        Naming every requested column that the file lacks.
    ValueError
        If a requested column holds variable-length arrays, or the file is damaged (naming it).

    Examples
    --------
    >>> import warnings
    >>> from sklearn_selfcal.io import load_allstar
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     frame = load_allstar("tests/data/apogee_dr16_allstar_33stars.fits",
    ...                          columns=["APOGEE_ID", "LOGG", "parallax"], gaia_names=True)
    >>> frame.shape
    (33, 3)
    """
    path = os.fspath(path)
    with open_table(path, hdu) as (hdu, where):
        info = table_columns(hdu)
        if columns is None:
            pairs = [(n, n) for n, (_, shape) in info.items() if shape == ()]
        else:
            columns = [columns] if isinstance(columns, str) else list(columns)
            aliases = _GAIA_SPELLINGS if gaia_names else None
            hint = "" if gaia_names or not any(c in _GAIA_SPELLINGS for c in columns) else \
                " (Gaia names such as 'parallax' need gaia_names=True)"
            pairs = resolve_names(info, columns, path, aliases=aliases, hint=hint)
        sources = [src for _, src in pairs]
        flags = []
        if flagged_to_nan:
            for src in sources:
                base = src[:-4] if src.endswith("_ERR") else src
                flag = f"{base}_FLAG"
                if _ABUNDANCE.match(base) and flag in info and info[flag][1] == ():
                    flags.append(flag)
        to_read = list(dict.fromkeys(sources + flags))
        read = read_columns(hdu, to_read, info, path)

    result = {}
    for out_name, src in [*pairs, *((f, f) for f in flags if f not in sources)]:
        null = info[src][0]
        for suffix, values in read[src]:
            result[f"{out_name}{suffix}"] = nullable(values, int_nulls(values, null))
    frame = pd.DataFrame(result)
    frame.attrs["source"] = {"path": path, **where}
    frame, _ = clean_catalogue(frame, resolve_columns(frame.columns), flags=flagged_to_nan,
                               stacklevel=2)
    extra = [f for f in flags if f not in sources]
    if extra:
        attrs = frame.attrs
        frame = frame.drop(columns=extra)
        frame.attrs = attrs
    if gaia_names:
        frame = frame.rename(columns=_gaia_renames(frame.columns))
    return frame


def _gaia_renames(present):
    """Renames ``{allStar name: library name}`` for the columns present, without collisions.

    A library name already present (asked for under that name) is kept; otherwise the first
    spelling present in :data:`GAIA_NAMES` order (DR17 before DR16) takes it.
    """
    present = list(present)
    taken = set(present)
    renames = {}
    for name, spellings in _GAIA_SPELLINGS.items():
        for spelling in spellings:
            if spelling in present and spelling not in renames and name not in taken:
                renames[spelling] = name
                taken.add(name)
                break
    return renames
