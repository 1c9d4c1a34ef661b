"""The penalty ``alpha sum_j w_j |b_j|`` and the optimality (KKT) residual of the full problem."""

from __future__ import annotations

import numpy as np

__all__ = ["WeightedL1", "kkt_residual"]


class WeightedL1:
    """Penalty ``alpha sum_j w_j |b_j|`` on the penalised coefficients (all ``w_j > 0``).

    Unpenalised coefficients (intercept, magnitudes, LSF moments) are not part of ``b``: the
    solvers keep them in a separate block, i.e. they carry weight zero.

    Parameters
    ----------
    alpha : float
        Strength (>= 0), in the units of the datafit per unit coefficient.
    weights : ndarray of shape (n_penalized,), optional
        Positive per-feature weights; ones by default.
    """

    def __init__(self, alpha, weights):
        self.alpha = float(alpha)
        self.weights = np.asarray(weights, dtype=np.float64)

    def value(self, b):
        """Penalty at coefficients ``b`` (datafit units)."""
        return self.alpha * float(np.sum(self.weights * np.abs(b)))

    def prox(self, b, step):
        """Soft threshold: proximal operator of ``step * penalty`` at ``b``."""
        thresh = step * self.alpha * self.weights
        return np.sign(b) * np.maximum(np.abs(b) - thresh, 0.0)

    def violation(self, b, grad):
        """Per-coefficient distance of ``-grad`` to the penalty's subdifferential at ``b``.

        ``|grad_j + alpha w_j sign(b_j)|`` where ``b_j != 0`` and ``max(|grad_j| - alpha w_j, 0)``
        where ``b_j == 0``; zero everywhere exactly at the optimum.
        """
        lam = self.alpha * self.weights
        out = np.maximum(np.abs(grad) - lam, 0.0)
        nz = b != 0
        out[nz] = np.abs(grad[nz] + lam[nz] * np.sign(b[nz]))
        return out


def kkt_residual(grad_u, b, grad_b, penalty):
    """Relative optimality (KKT) residual of the full problem.

    ``max(max_j |grad_u_j|, max_j violation_j) / alpha`` (divided by 1 when ``alpha == 0``):
    the largest violation of the optimality conditions, in units of the penalty strength, for
    the unpenalised block (whose gradient must vanish) and the penalised block (see
    :meth:`WeightedL1.violation`).
    """
    worst = 0.0
    if grad_u.size:
        worst = float(np.max(np.abs(grad_u)))
    if b.size:
        worst = max(worst, float(np.max(penalty.violation(b, grad_b))))
    scale = penalty.alpha if penalty.alpha > 0 else 1.0
    return worst / scale
