"""What :class:`~sklearn_selfcal.ActionTransformer` says about each star's actions.

Two columns, two questions:

``actions_rel_err`` (:data:`ACCURACY_COLUMN`)
    How far the given ``J_R, J_z`` may be from the true actions: the estimated relative error of
    the larger of the two (dimensionless). Select on it.
``actions_flags`` (:data:`FLAGS_COLUMN`)
    What kind of number the actions are, a bit field (sum of the bits below):

    - :data:`ORBIT_AVERAGE` (1): the Staeckel fudge's value at the star's position was off by more
      than half of ``rel_err_threshold`` (or the fudge varies that much along the orbit);
      ``J_R, J_z`` come from the star's orbit (``method="auto"``): a torus fit to it (bit 8) or
      the fudge's average over it, whichever has the smaller error; ``actions_rel_err`` is that
      error.
    - :data:`CHAOTIC` (2): the orbit is chaotic and has no actions; ``J_R, J_z`` are averages over
      a finite stretch of it, and mean little. Set only where an integration over 24 radial and
      vertical periods in each half confirms it: a companion orbit parts from the star's
      exponentially *and* the radial (vertical) period drifts by more than 1 % (3 %) between
      the halves.
    - :data:`TABULATED` (4): the accuracy was read from a table over the integrals of motion built
      once per potential (the star's orbit is one on which the fudge is accurate everywhere); no
      orbit of this star was integrated.
    - :data:`TORUS_FIT` (8, set with bit 1): ``J_R, J_z`` are the orbit-to-generating-function
      torus fit to points along 24 radial and vertical periods of the star's orbit
      (:mod:`~sklearn_selfcal._kernels.torus_fit`); ``actions_rel_err`` is the fit's own error
      (its two halves apart, its residual and its truncation).

This module also writes the two warnings of ``transform``.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._kernels.action_chunks import ERR_REASONS, REASONS
from ._kernels.action_methods import CHAOTIC, ORBIT_AVERAGE, TABULATED, TORUS_FIT
from .exceptions import BadRowsWarning, InaccurateActionsWarning

__all__ = ["ACCURACY_COLUMN", "FLAGS_COLUMN", "ORBIT_AVERAGE", "CHAOTIC", "TABULATED",
           "TORUS_FIT", "warn_bad_rows", "warn_inaccurate"]

#: Name of the accuracy column appended by the orbit check (fractional error of the actions).
ACCURACY_COLUMN = "actions_rel_err"
#: Name of the bit-field column appended by the orbit check.
FLAGS_COLUMN = "actions_flags"


def warn_bad_rows(status, err_status, n, stacklevel=3):
    """One :class:`BadRowsWarning` counting the rows with NaN actions per reason, if any.

    Parameters
    ----------
    status : ndarray of int of shape (n,)
        Row status (0 good, else a key of ``REASONS``).
    err_status : ndarray of int of shape (n,) or None
        Monte Carlo status (a key of ``ERR_REASONS``), or None without uncertainties.
    n : int
        Number of rows.
    stacklevel : int
        Of the warning.
    """
    parts = [f"{np.sum(status == code)} {label}" for code, label in REASONS.items()
             if np.any(status == code)]
    if err_status is not None:
        parts += [f"{np.sum(err_status == code)} {label}" for code, label in ERR_REASONS.items()
                  if np.any(err_status == code)]
    if parts:
        n_bad = int(np.sum(status != 0))
        warnings.warn(
            f"ActionTransformer: {n_bad} of {n} rows have NaN actions (no row dropped): "
            + "; ".join(parts),
            BadRowsWarning,
            stacklevel=stacklevel + 1,
        )


def warn_inaccurate(rel_err, flags, status, threshold, stacklevel=3):
    """One :class:`InaccurateActionsWarning` counting inaccurate and chaotic stars, if any.

    Parameters
    ----------
    rel_err : ndarray of shape (n,)
        ``actions_rel_err``.
    flags : ndarray of shape (n,)
        ``actions_flags``.
    status : ndarray of int of shape (n,)
        Row status (0 good).
    threshold : float
        ``rel_err_threshold``.
    stacklevel : int
        Of the warning.
    """
    good = status == 0
    above = good & ~(rel_err <= threshold)
    chaotic = good & ((np.nan_to_num(flags).astype(np.int64) & CHAOTIC) != 0)
    if above.any() or chaotic.any():
        warnings.warn(
            f"ActionTransformer: of {int(good.sum())} stars with actions, {int(above.sum())} have "
            f"{ACCURACY_COLUMN} > {threshold:g} (their J_R or J_z may be off by more than that) "
            f"and {int(chaotic.sum())} are on chaotic orbits ({FLAGS_COLUMN} bit {CHAOTIC}: no "
            f"actions exist). Select on {ACCURACY_COLUMN} and {FLAGS_COLUMN} before using their "
            "actions, e.g. in a training filter.",
            InaccurateActionsWarning,
            stacklevel=stacklevel + 1,
        )
