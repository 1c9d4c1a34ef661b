"""Warnings and errors of sklearn-selfcal (as :mod:`sklearn.exceptions` is for scikit-learn)."""

from __future__ import annotations

__all__ = ["DataQualityWarning"]


class DataQualityWarning(UserWarning):
    """Values that cannot be physical (sentinels, out-of-range values, flagged values) became NaN.

    The message names the column, counts the rows and shows the first rows; no row is dropped.
    Silence it with ``warnings.simplefilter("ignore", DataQualityWarning)``.
    """
