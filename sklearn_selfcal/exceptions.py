"""Warnings and errors of sklearn-selfcal (as :mod:`sklearn.exceptions` is for scikit-learn).

Every warning the package emits is a :class:`SelfcalWarning` (or scikit-learn's
:class:`~sklearn.exceptions.ConvergenceWarning` for an optimiser or sampler that stopped early), so
``warnings.simplefilter("error", SelfcalWarning)`` turns all of them into errors; the test suite
does exactly that.
"""

from __future__ import annotations

__all__ = ["SelfcalWarning", "DataQualityWarning", "BadRowsWarning", "InaccurateActionsWarning",
           "UnseenCategoryWarning", "FigureSkippedWarning", "OutsideMapWarning"]


class SelfcalWarning(UserWarning):
    """Base class of the warnings of sklearn-selfcal."""


class DataQualityWarning(SelfcalWarning):
    """Values that cannot be physical (sentinels, out-of-range values, flagged values) became NaN.

    The message names the column, counts the rows and shows the first rows; no row is dropped.
    Silence it with ``warnings.simplefilter("ignore", DataQualityWarning)``.
    """


class BadRowsWarning(SelfcalWarning):
    """Some rows got NaN actions (bad input, unbound or near-axis orbits); no row was dropped."""


class InaccurateActionsWarning(SelfcalWarning):
    """Some stars' actions may be off by more than ``rel_err_threshold``, or their orbits are chaotic."""


class UnseenCategoryWarning(SelfcalWarning):
    """A categorical nuisance takes a value the calibrator was not fitted on (its rows get NaN)."""


class FigureSkippedWarning(SelfcalWarning):
    """A figure of :func:`~sklearn_selfcal.figures.render_figures` could not be made (reason given)."""


class OutsideMapWarning(SelfcalWarning):
    """Stars beyond a map's extent (|x| or |y| in kpc) were left out of it; the message counts them."""
