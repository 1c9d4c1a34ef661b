"""The datafit of the exponential-linear model: ``1/2 sum_n c_n (y_n - exp(eta_n))**2``."""

from __future__ import annotations

import numpy as np

__all__ = ["EXP_CAP", "safe_exp", "ExpLinearChi2"]

#: Largest exponent evaluated: ``exp(min(eta, EXP_CAP))`` (exp(30) = 1.07e13; squares stay finite).
EXP_CAP = 30.0

#: Below this ``|d|``, ``expm1(d) - d`` is summed from its series (relative error < 1e-19);
#: above, the direct difference loses at most ``2 eps / |d|`` < 3e-13 of its value.
_SERIES_BELOW = 1e-3


def safe_exp(eta):
    """``exp(min(eta, EXP_CAP))``: the overflow-safe link.

    Parameters
    ----------
    eta : ndarray
        Linear predictor (for the parallax model: log parallax in mas).

    Returns
    -------
    mu : ndarray
        The capped exponential (mas for the parallax model).
    """
    return np.exp(np.minimum(eta, EXP_CAP))


def _expm1_minus_identity(d):
    """``expm1(d) - d`` to full relative accuracy, also where it is far below ``d``."""
    out = np.expm1(d) - d
    small = np.abs(d) < _SERIES_BELOW
    if np.any(small):
        x = d[small]
        # d**2/2 (1 + d/3 (1 + d/4 (1 + d/5 (1 + d/6 (1 + d/7)))))
        out[small] = 0.5 * x * x * (1 + x / 3 * (1 + x / 4 * (1 + x / 5 * (1 + x / 6 * (
            1 + x / 7)))))
    return out


class ExpLinearChi2:
    """Datafit ``1/2 sum_n c_n (y_n - exp(eta_n))**2`` of the exponential-linear model.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Observed values (for the parallax model: Gaia parallax plus zero point, mas; may be
        negative).
    weights : ndarray of shape (n_samples,)
        Non-negative ``c_n`` (mas^-2 for the parallax model).
    """

    def __init__(self, y, weights):
        self.y = np.asarray(y, dtype=np.float64)
        self.weights = np.asarray(weights, dtype=np.float64)

    def value(self, eta, mu=None):
        """Datafit value at linear predictor ``eta`` (dimensionless for the parallax model)."""
        mu = safe_exp(eta) if mu is None else mu
        r = self.y - mu
        return 0.5 * float(np.dot(self.weights * r, r))

    def remainder(self, eta, d_eta, mu=None):
        """``value(eta + d_eta) - value(eta) - raw_grad(eta) . d_eta``, without cancellation.

        The non-linear part of a change of the datafit: with ``mu1 = mu exp(d_eta)`` it is
        ``sum_n c_n [(mu_n - y_n) mu_n (expm1(d) - d) + (mu_n expm1(d))**2 / 2]``, each term
        computed to full relative accuracy however small ``d_eta`` is. A line search adds it to
        the linear part ``grad . step``, which it sums per coefficient together with the
        penalty's change (those two nearly cancel near the optimum and must not be rounded
        separately). Stars at the exponent cap use the direct difference.
        """
        e0 = np.minimum(eta, EXP_CAP)
        mu = np.exp(e0) if mu is None else mu
        d = np.minimum(d_eta, EXP_CAP - e0)       # as d_eta where no cap is met (no overflow)
        dmu = mu * np.expm1(d)
        terms = self.weights * ((mu - self.y) * mu * _expm1_minus_identity(d) + 0.5 * dmu * dmu)
        capped = (eta > EXP_CAP) | (eta + d_eta > EXP_CAP)
        if np.any(capped):
            w, y, m0 = self.weights[capped], self.y[capped], mu[capped]
            m1 = np.exp(np.minimum(eta[capped] + d_eta[capped], EXP_CAP))
            terms[capped] = 0.5 * w * ((y - m1) ** 2 - (y - m0) ** 2) - (
                w * (m0 - y) * m0 * d_eta[capped])
        return float(np.sum(terms))

    def raw_grad(self, eta, mu=None):
        """Derivative with respect to ``eta``: ``c (mu - y) mu`` (capped ``mu``)."""
        mu = safe_exp(eta) if mu is None else mu
        return self.weights * (mu - self.y) * mu

    def curvature(self, eta, mu=None, kind="fisher", floor=0.1):
        """Curvature with respect to ``eta`` used by the Newton-type models (always positive).

        ``kind="fisher"``: the Gauss-Newton (expected Fisher) form ``c mu**2``.
        ``kind="hessian"``: the exact second derivative ``c mu (2 mu - y) = c mu**2 (2 - y / mu)``
        with the factor ``2 - y / mu`` floored at ``floor``, since it is negative where
        ``y > 2 mu``. Both keep every quadratic model convex; the clipped Hessian is the true one
        for most stars near the optimum, which turns Gauss-Newton's linear convergence (slow when
        residuals are large, as for faint stars) into nearly Newton's.
        """
        mu = safe_exp(eta) if mu is None else mu
        fisher = self.weights * mu * mu
        if kind == "fisher":
            return fisher
        if kind != "hessian":
            raise ValueError(f"kind must be 'fisher' or 'hessian', got {kind!r}")
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = 2.0 - self.y / mu
        return fisher * np.maximum(np.nan_to_num(factor, nan=floor, posinf=floor, neginf=floor),
                                   floor)
