"""The catalogue's own quality flags and its duplicate rows, as boolean masks (True = keep).

APOGEE allStar (DR16/DR17) flags a bad ASPCAP fit with ``ASPCAPFLAG`` bit 23 (``STAR_BAD``) and the
lower-S/N entry of a star observed twice with ``EXTRATARG`` bit 4. SDSS-V's astra summary files
(DR19/DR20) flag a bad result with the boolean ``flag_bad`` (FERRE failure, grid edges, S/N < 20,
``std_v_rad`` > 1 km/s, ...) and give one star several rows -- a re-reduction of its DR17 spectrum
(``release = "dr17"``) and SDSS-V spectra from one or more telescopes -- sharing one ``sdss_id``.
:func:`quality_cuts` applies both surveys' flags and :func:`duplicate_cut` keeps one row per
``sdss_id`` by a documented, overridable rule (:data:`DUPLICATE_PRIORITY`), counting what it left
out. Nothing is dropped or reordered; the input is never modified. Columns have the canonical
names of :data:`sklearn_selfcal.columns.ROLES` (``ASPCAPFLAG``, ``EXTRATARG``, ``FLAG_BAD``,
``SDSS_ID``, ``RELEASE``, ``SNR``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .cleaning import masked_to_nan

__all__ = ["STAR_BAD_BIT", "DUPLICATE_BIT", "DUPLICATE_PRIORITY", "duplicate_cut", "quality_cuts"]


#: ASPCAPFLAG bit set when ASPCAP's fit of the star is unreliable (APOGEE DR16/DR17).
STAR_BAD_BIT = 23
#: EXTRATARG bit marking the lower-S/N entry of a star observed more than once (DR16/DR17).
DUPLICATE_BIT = 4
#: SDSS-V's rule for the rows that share an ``sdss_id`` (a DR17 re-reduction and SDSS-V spectra,
#: from several telescopes): the row kept is the first by these criteria in turn -- a row without
#: ``flag_bad`` before a bad one (so that a bad row is never kept over a good one), a ``release``
#: ``"sdss5"`` row before the DR17 re-reduction, the highest ``snr``; then file order.
DUPLICATE_PRIORITY = ("not_bad", "sdss5", "snr")
_PRIORITY_TEXT = {"not_bad": "a row without flag_bad", "sdss5": "release sdss5",
                  "dr17": "release dr17", "snr": "the highest snr"}


def _bit_set(X, column, bit):
    """Rows whose integer ``column`` has ``bit`` set (missing values: not set)."""
    values, _ = masked_to_nan(X[column])
    ok = np.isfinite(values)
    out = np.zeros(values.shape, dtype=bool)
    out[ok] = (values[ok].astype(np.int64) >> bit) & 1 == 1
    return out


def _star_bad(X, columns):
    """Rows flagged bad by allStar's ``ASPCAPFLAG`` bit 23 or SDSS-V's ``FLAG_BAD``."""
    bad = np.zeros(len(X), dtype=bool)
    used = []
    if "ASPCAPFLAG" in columns:
        bad |= _bit_set(X, "ASPCAPFLAG", STAR_BAD_BIT)
        used.append("ASPCAPFLAG bit 23 (STAR_BAD) unset")
    if "FLAG_BAD" in columns:
        bad |= masked_to_nan(X["FLAG_BAD"])[0] == 1
        used.append("FLAG_BAD false")
    return bad, " and ".join(used)


def duplicate_cut(X, priority=DUPLICATE_PRIORITY, *, id_column="SDSS_ID"):
    """One row per star: of the rows sharing an identifier, the first by ``priority`` (a mask).

    Rows whose identifier is missing (SDSS-V's ``sdss_id = -1``) are each a star of their own.

    Parameters
    ----------
    X : DataFrame
        With ``id_column`` and, for the criteria, ``FLAG_BAD`` (or ``ASPCAPFLAG``), ``RELEASE`` and
        ``SNR`` (absent columns make a criterion a tie).
    priority : sequence of {"not_bad", "sdss5", "dr17", "snr"}, default=DUPLICATE_PRIORITY
        Criteria in order: no bad-result flag, release ``"sdss5"``, release ``"dr17"``, highest
        S/N; ties go to the row that comes first in ``X``.
    id_column : str, default="SDSS_ID"
        The star identifier.

    Returns
    -------
    keep : ndarray of bool of shape (n_rows,)
        True for the row kept of each star (and for every row without an identifier).
    info : dict
        ``rows_left_out``, ``ids_with_several_rows`` and ``rule`` (readable).

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"SDSS_ID": [7, 7, 7, None], "FLAG_BAD": [False, True, False, False],
    ...                   "RELEASE": ["dr17", "sdss5", "sdss5", "sdss5"], "SNR": [90, 300, 60, 10]})
    >>> duplicate_cut(X)[0]
    array([False, False,  True,  True])
    """
    priority = list(priority)
    unknown = [p for p in priority if p not in _PRIORITY_TEXT]
    if unknown:
        raise ValueError(f"[sample] exclude_duplicates: unknown criteria {unknown}; use true, false "
                         f"or a list of {sorted(_PRIORITY_TEXT)}")
    columns = list(X.columns)
    n = len(X)
    codes = pd.factorize(X[id_column])[0]  # a missing identifier: -1
    rows = np.flatnonzero(codes >= 0)
    codes = codes[rows]
    release = (X["RELEASE"].astype("str").str.strip().str.lower().to_numpy()
               if "RELEASE" in columns else np.full(n, ""))
    keys = {"not_bad": _star_bad(X, columns)[0].astype(np.int8),
            "sdss5": (release != "sdss5").astype(np.int8),
            "dr17": (release != "dr17").astype(np.int8)}
    if "SNR" in columns:
        snr = masked_to_nan(X["SNR"])[0]
        keys["snr"] = np.where(np.isfinite(snr), -snr, np.inf)
    order = np.lexsort([rows, *(keys[p][rows] for p in reversed(priority) if p in keys), codes])
    ranked = codes[order]
    first = np.r_[True, ranked[1:] != ranked[:-1]] if ranked.size else np.ones(0, dtype=bool)
    keep = np.ones(n, dtype=bool)
    keep[rows[order[~first]]] = False
    rule = ", then ".join([_PRIORITY_TEXT[p] for p in priority] + ["file order"])
    info = {"rows_left_out": int((~keep).sum()),
            "ids_with_several_rows": int((np.bincount(codes) > 1).sum()) if codes.size else 0,
            "rule": f"one row per {id_column}: {rule}"}
    return keep, info


def quality_cuts(X, *, star_bad=True, duplicates=True):
    """Apply the catalogue's own flags, one boolean column per cut (True = keep).

    - ``"star_bad"``: the star's result is not flagged bad: allStar's ``ASPCAPFLAG`` bit
      ``STAR_BAD`` (23) unset, SDSS-V's ``FLAG_BAD`` false;
    - ``"duplicate"``: one row per star. SDSS-V (an ``SDSS_ID`` column): of the rows sharing an
      ``sdss_id``, the first by :data:`DUPLICATE_PRIORITY` (:func:`duplicate_cut`); allStar: the
      ``EXTRATARG`` bit 4 unset (the star's other, higher-S/N entry is kept).

    A cut whose columns are absent is left out and listed in ``cuts.attrs["skipped"]``; the
    per-element flags are honoured by :func:`sklearn_selfcal.cleaning.clean_catalogue`.

    Parameters
    ----------
    X : DataFrame
        Canonical names: ``ASPCAPFLAG``, ``EXTRATARG`` (integers), ``FLAG_BAD`` (bool),
        ``SDSS_ID``, ``RELEASE``, ``SNR`` where present.
    star_bad : bool, default=True
        Apply the first cut.
    duplicates : bool or sequence of str, default=True
        Apply the second cut; a sequence gives the criteria of :func:`duplicate_cut` instead of
        :data:`DUPLICATE_PRIORITY` (``[sample] exclude_duplicates``). False keeps every row (then
        ``RELEASE`` and ``TELESCOPE`` can be categorical nuisances of the calibration).

    Returns
    -------
    cuts : DataFrame of bool
        Index of ``X``; ``attrs["conditions"]``, ``attrs["skipped"]`` and, for SDSS-V,
        ``attrs["duplicates"]`` (the counts of :func:`duplicate_cut`).
    """
    if not isinstance(duplicates, bool):
        if isinstance(duplicates, str):
            duplicates = [duplicates]
        duplicates = list(duplicates)
    columns = list(X.columns)
    cuts, conditions, skipped = {}, {}, []
    extra = {}
    if star_bad:
        bad, text = _star_bad(X, columns)
        if text:
            cuts["star_bad"], conditions["star_bad"] = ~bad, text
        else:
            skipped.append("star_bad (no ASPCAPFLAG or FLAG_BAD column)")
    if duplicates is not False:
        if "SDSS_ID" in columns:
            keep, info = duplicate_cut(X, DUPLICATE_PRIORITY if duplicates is True else duplicates)
            cuts["duplicate"] = keep
            conditions["duplicate"] = (f"{info['rule']} ({info['rows_left_out']:,} rows of "
                                       f"{info['ids_with_several_rows']:,} stars left out)")
            extra["duplicates"] = info
        elif "EXTRATARG" in columns:
            cuts["duplicate"] = ~_bit_set(X, "EXTRATARG", DUPLICATE_BIT)
            conditions["duplicate"] = "EXTRATARG bit 4 (duplicate entry) unset"
        else:
            skipped.append("duplicate (no SDSS_ID or EXTRATARG column)")
    out = pd.DataFrame(cuts, index=X.index)
    out.attrs.update(conditions=conditions, skipped=skipped, **extra)
    return out
