"""Scores of predicted against observed parallaxes: chi-squared and fractional scatter."""

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.utils._param_validation import validate_params
from sklearn.utils.metadata_routing import MetadataRequest

from .._paper import GAIA_PARALLAX_ZERO_POINT, PARALLAX_ERROR, correct_parallax
from .._validation import PARALLAX_ZERO_POINT_CONSTRAINT, check_positive_column


_ZERO_POINT = {"parallax_zero_point": PARALLAX_ZERO_POINT_CONSTRAINT}


@validate_params(_ZERO_POINT, prefer_skip_nested_validation=True)
def chi_squared(y_true, y_pred, *, parallax_error, parallax_zero_point=GAIA_PARALLAX_ZERO_POINT,
                sample_weight=None):
    """Mean chi-squared per star of predicted against observed parallaxes.

    Parameters
    ----------
    y_true : array-like of shape (n_stars,)
        Observed (Gaia) parallaxes (mas).
    y_pred : array-like of shape (n_stars,)
        Predicted true parallaxes (mas).
    parallax_error : array-like of shape (n_stars,)
        Uncertainty of ``y_true`` (mas, > 0).
    parallax_zero_point : float, default=GAIA_PARALLAX_ZERO_POINT
        Zero point of ``y_true`` (mas), removed by :func:`~sklearn_selfcal._paper.correct_parallax`
        (``observed = true + zero point``); use the model's ``parallax_zero_point``.
    sample_weight : array-like of shape (n_stars,), optional
        Non-negative weight of each star in the average; equal weights if not given.

    Returns
    -------
    chi2 : float
        ``average(((y_true - parallax_zero_point - y_pred) / parallax_error)**2,
        weights=sample_weight)``.
    """
    y_true = np.asarray(correct_parallax(y_true, parallax_zero_point))
    y_pred = np.asarray(y_pred, dtype=float)
    parallax_error = check_positive_column(parallax_error, PARALLAX_ERROR)
    if not (y_true.shape == y_pred.shape == parallax_error.shape):
        raise ValueError(f"y_true, y_pred and {PARALLAX_ERROR} must have one shape, got "
                         f"{y_true.shape}, {y_pred.shape}, {parallax_error.shape}")
    z = (y_true - y_pred) / parallax_error
    return float(np.average(z * z, weights=sample_weight))


class ChiSquaredScorer:
    """Scorer: minus the mean chi-squared per star of held-out parallaxes (greater is better).

    Requests ``parallax_error`` (per-star parallax uncertainty, mas) through metadata routing, so
    with ``sklearn.set_config(enable_metadata_routing=True)`` ``GridSearchCV(..., scoring=
    ChiSquaredScorer())`` and ``cross_validate`` route the held-out stars' ``parallax_error`` to
    it.

    Parameters
    ----------
    parallax_zero_point : float, default=GAIA_PARALLAX_ZERO_POINT
        Zero point of the observed parallaxes (mas, -0.017 for Gaia EDR3), removed from them as
        the model does when fitting.
    """

    def __init__(self, parallax_zero_point=GAIA_PARALLAX_ZERO_POINT):
        self.parallax_zero_point = parallax_zero_point
        self._sample_weight_request = None

    def __call__(self, estimator, X, y, parallax_error=None, sample_weight=None):
        if parallax_error is None:
            raise ValueError(f"ChiSquaredScorer needs the held-out stars' {PARALLAX_ERROR}: enable "
                             "metadata routing (sklearn.set_config(enable_metadata_routing=True)) "
                             f"and pass {PARALLAX_ERROR} to fit")
        return -chi_squared(y, estimator.predict(X), parallax_error=parallax_error,
                            parallax_zero_point=self.parallax_zero_point,
                            sample_weight=sample_weight)

    def set_score_request(self, *, sample_weight=None):
        """Request ``sample_weight`` (``parallax_error`` is always requested).

        Parameters
        ----------
        sample_weight : bool, str or None, default=None
            As in scikit-learn's ``set_score_request``: True to request ``sample_weight``, False
            to refuse it, None to raise an error if it is passed, or a string to request it under
            that alias.

        Returns
        -------
        self : ChiSquaredScorer
            The scorer, updated in place.
        """
        self._sample_weight_request = sample_weight
        return self

    def get_metadata_routing(self):
        """Get the metadata request of the scorer: ``parallax_error`` (and ``sample_weight``).

        Returns
        -------
        request : sklearn.utils.metadata_routing.MetadataRequest
            The request of the scorer's ``score`` method.
        """
        request = MetadataRequest(owner=type(self).__name__)
        request.score.add_request(param=PARALLAX_ERROR, alias=True)
        request.score.add_request(param="sample_weight", alias=self._sample_weight_request)
        return request

    def __repr__(self):
        return f"ChiSquaredScorer(parallax_zero_point={self.parallax_zero_point!r})"


@validate_params(_ZERO_POINT, prefer_skip_nested_validation=True)
def fractional_scatter(y, y_pred, parallax_error, *,
                       parallax_zero_point=GAIA_PARALLAX_ZERO_POINT, y_pred_frac_err=None,
                       y_pred_std=None, sample_weight=None):
    """Maximum-likelihood fractional scatter of true about predicted parallaxes.

    The model for held-out stars is ``y_n - parallax_zero_point ~ Normal(pred_n,
    parallax_error_n**2 + pred_n**2 (e_n**2 + s**2))``, with ``e_n`` the propagated fractional
    uncertainty of the prediction (0 if not given); ``s`` (dimensionless, in [0, 2]) is found by
    bounded 1-D maximisation of the (weighted) Gaussian likelihood.

    Parameters
    ----------
    y, y_pred, parallax_error : array-like of shape (n_stars,)
        Observed parallaxes, predictions and the observed parallaxes' uncertainties (mas).
    parallax_zero_point : float, default=GAIA_PARALLAX_ZERO_POINT
        Zero point of ``y`` (mas), removed by :func:`~sklearn_selfcal._paper.correct_parallax`.
    y_pred_frac_err : array-like of shape (n_stars,), optional
        Fractional uncertainty of each prediction already accounted for.
    y_pred_std : array-like of shape (n_stars,), optional
        The same as an absolute uncertainty (mas), ``y_pred_frac_err * y_pred``; give one or the
        other. This is the signature :class:`~sklearn_selfcal.crossfit.CrossFitTransformer`'s
        ``scatter`` calls.
    sample_weight : array-like of shape (n_stars,), optional
        Non-negative weight of each star's term in the log-likelihood; equal weights if not given.

    Returns
    -------
    s : float
        Fractional intrinsic scatter (e.g. 0.09 for 9 per cent).
    """
    y = np.asarray(correct_parallax(y, parallax_zero_point))
    pred = np.asarray(y_pred, dtype=float)
    var0 = np.asarray(parallax_error, dtype=float) ** 2
    if y_pred_std is not None:
        if y_pred_frac_err is not None:
            raise ValueError("give y_pred_frac_err or y_pred_std, not both")
        var0 = var0 + np.asarray(y_pred_std, dtype=float) ** 2
    if y_pred_frac_err is not None:
        var0 = var0 + (pred * np.asarray(y_pred_frac_err, dtype=float)) ** 2
    r2 = (y - pred) ** 2
    p2 = pred**2
    w = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, dtype=float)

    def nll(s):
        v = var0 + p2 * s * s
        return 0.5 * float(np.sum(w * (r2 / v + np.log(v))))

    return float(minimize_scalar(nll, bounds=(0.0, 2.0), method="bounded",
                                 options={"xatol": 1e-6}).x)
