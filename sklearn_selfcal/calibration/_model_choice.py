"""Choosing the calibration model with scikit-learn's search tools, overall or per abundance."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["abundance_scorer", "chosen_models"]

_PREFIX = "mean_test_"
_TOTAL = "score"


def abundance_scorer(estimator, X, y=None):
    """Held-out scores of a fitted :class:`NuisanceCalibrator`: overall and per abundance.

    A multi-metric scorer for scikit-learn's searches: pass ``scoring=abundance_scorer,
    refit="score"`` to ``GridSearchCV`` so that the model is still chosen by the overall score
    (:meth:`NuisanceCalibrator.score`) while every abundance's own held-out score is kept in
    ``cv_results_`` (``mean_test_<abundance>``) for :func:`chosen_models`.

    Parameters
    ----------
    estimator : NuisanceCalibrator
        Fitted.
    X : DataFrame or array
        Held-out stars.
    y : None
        Ignored.

    Returns
    -------
    scores : dict of str to float
        ``"score"`` (overall) and one entry per abundance column (minus the mean weighted
        chi-square per star).
    """
    out = {_TOTAL: estimator.score(X)}
    out.update({str(k): float(v) for k, v in estimator.abundance_scores(X).items()})
    return out


def chosen_models(search, *, per_abundance=False):
    """The model chosen for every abundance by a search run with :func:`abundance_scorer`.

    Parameters
    ----------
    search : GridSearchCV, RandomizedSearchCV or its ``cv_results_`` dict
        Fitted with ``scoring=abundance_scorer``.
    per_abundance : bool, default False
        ``False``: the candidate with the best overall score (one model for all abundances), with
        every abundance's score under it.  ``True``: every abundance chooses the candidate with its
        own best mean held-out score.

    Returns
    -------
    chosen : DataFrame
        Index abundance; one column per searched parameter (the chosen value), ``mean_test_score``
        and ``std_test_score`` (that abundance's held-out score under the chosen candidate; minus
        the mean weighted chi-square per star), ``rank`` (1 = that abundance's best candidate) and
        ``same_as_overall`` (the chosen candidate is the overall best).

    Raises
    ------
    ValueError
        If the search did not record per-abundance scores.
    """
    results = pd.DataFrame(getattr(search, "cv_results_", search))
    abundances = [c[len(_PREFIX):] for c in results.columns
                  if c.startswith(_PREFIX) and c != _PREFIX + _TOTAL]
    if not abundances or _PREFIX + _TOTAL not in results:
        raise ValueError("the search has no per-abundance scores: run it with "
                         "scoring=abundance_scorer, refit='score'")
    overall = int(np.nanargmax(results[_PREFIX + _TOTAL].to_numpy()))
    rows = []
    for abund in abundances:
        mean = results[_PREFIX + abund].to_numpy(dtype=float)
        best = int(np.nanargmax(mean)) if per_abundance else overall
        rank = 1 + int(np.sum(mean > mean[best]))
        rows.append({"abundance": abund, **results["params"].iloc[best],
                     "mean_test_score": mean[best],
                     "std_test_score": float(results[f"std_test_{abund}"].iloc[best]),
                     "rank": rank, "same_as_overall": best == overall})
    return pd.DataFrame(rows).set_index("abundance")
