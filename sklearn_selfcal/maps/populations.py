"""The low- and high-alpha disk populations and the calibrated abundance columns of a catalogue."""

from __future__ import annotations

import numpy as np

from .._paper import ALPHA_SPLIT, ALPHA_SPLIT_COLUMNS, CALIBRATED_SUFFIX, calibrated_name
from .._validation import check_table, require_columns, validate_catalogue

__all__ = ["UNMAPPED_COLUMNS", "alpha_column", "alpha_population_masks", "calibrated_abundances",
           "calibrated_or_reported"]

#: Reported columns never mapped or stacked as abundances: they split the populations or sum the
#: metals.
UNMAPPED_COLUMNS = ("ALPHA_M", "M_H")


def alpha_column(frame):
    """The [alpha/M] column used to split low- and high-alpha stars.

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue; not modified.

    Returns
    -------
    name : str
        The first of :data:`sklearn_selfcal._paper.ALPHA_SPLIT_COLUMNS` present: the calibrated
        [alpha/M] (``ALPHA_M_NEW``, as the paper splits), else the reported ``ALPHA_M``.

    Raises
    ------
    KeyError
        If neither column is present.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_selfcal._paper import calibrated_name
    >>> alpha_column(pd.DataFrame(columns=["ALPHA_M", calibrated_name("ALPHA_M")]))
    'ALPHA_M_NEW'
    """
    for name in ALPHA_SPLIT_COLUMNS:
        if name in frame.columns:
            return name
    require_columns(frame.columns, [" or ".join(ALPHA_SPLIT_COLUMNS)], what="alpha split")


def alpha_population_masks(frame, *, column=None, split=ALPHA_SPLIT):
    """Boolean masks of the low- and high-alpha populations.

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue; not modified.
    column : str or None, default=None
        [alpha/M] column (dex); ``None``: :func:`alpha_column`.
    split : float, default=ALPHA_SPLIT (0.12 dex)
        Low-alpha stars have ``[alpha/M] < split``, high-alpha stars ``[alpha/M] >= split`` (dex), as
        :func:`sklearn_selfcal.gradients.radial_abundance_profile` splits. Stars with NaN [alpha/M]
        are in neither.

    Returns
    -------
    masks : dict of str to ndarray of bool
        ``{"all": ..., "low_alpha": ..., "high_alpha": ...}``, each of shape (n_stars,).

    Raises
    ------
    ValueError
        If the [alpha/M] column holds a value that is not a number (naming the column and rows).
    """
    frame = check_table(frame, "alpha_population_masks")
    column = alpha_column(frame) if column is None else column
    alpha = validate_catalogue(frame, [column], what="alpha split")[column]
    return {
        "all": np.ones(alpha.size, dtype=bool),
        "low_alpha": alpha < split,
        "high_alpha": alpha >= split,
    }


def calibrated_abundances(frame, suffix=CALIBRATED_SUFFIX):
    """Reported abundance columns that have a calibrated counterpart in ``frame``.

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue; not modified.
    suffix : str, default=CALIBRATED_SUFFIX
        Suffix of the calibrated columns (:class:`~sklearn_selfcal.NuisanceCalibrator`'s ``_NEW``).

    Returns
    -------
    names : list of str
        Reported names ``X`` (e.g. ``"FE_H"``, ``"MG_FE"``; ``ALPHA_M`` and ``M_H`` excluded, they
        split the populations or sum the metals) such that both ``X`` and ``X + suffix`` are
        columns, in ``frame``'s order.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_selfcal._paper import calibrated_name
    >>> columns = ["FE_H", calibrated_name("FE_H"), "MG_FE", "ALPHA_M", calibrated_name("ALPHA_M")]
    >>> calibrated_abundances(pd.DataFrame(columns=columns))
    ['FE_H']
    """
    columns = set(frame.columns)
    reported = [c[: -len(suffix)] for c in frame.columns if suffix and c.endswith(suffix)]
    return [c for c in reported if c in columns and c not in UNMAPPED_COLUMNS]


def calibrated_or_reported(frame, name):
    """The calibrated column of abundance ``name`` if ``frame`` has it, else ``name`` itself.

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue; not modified.
    name : str
        Reported abundance column, e.g. ``"FE_H"``.

    Returns
    -------
    column : str
        ``<name>_NEW`` when that column is in ``frame``, else ``name``.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_selfcal._paper import calibrated_name
    >>> calibrated_or_reported(pd.DataFrame(columns=["FE_H", calibrated_name("FE_H")]), "FE_H")
    'FE_H_NEW'
    >>> calibrated_or_reported(pd.DataFrame(columns=["FE_H"]), "FE_H")
    'FE_H'
    """
    calibrated = calibrated_name(name)
    return calibrated if calibrated in frame.columns else name
