"""Spectro-photometric parallaxes: the paper's L1-regularised exponential-linear model (sec. 3.1).

Model (Hogg, Eilers & Rix 2019; eq. 5-7 of the paper): a star's Gaia parallax is
``exp(theta . x + b) + noise``, with ``x`` the log continuum-normalised APOGEE pixels, the Gaia /
2MASS / WISE magnitudes and the five LSF moments (see
:class:`~sklearn_selfcal.parallax_features.SpectroPhotometricFeatures`). The fitted objective is ::

    F(theta, b) = 1/S sum_n s_n r_n**2 / (2 parallax_error_n**2) + alpha sum_{j penalised} |theta_j|
    r_n = y_n - parallax_zero_point - exp(theta . x_n + b)

with per-star Gaia parallax uncertainty ``parallax_error_n`` (mas) and sample weights ``s_n``
(``S = sum_n s_n``, i.e. ``N`` without weights). The paper minimises
``chi2 / 2 + lambda |P theta|_1`` over its ``N`` training stars, which is ``N`` times ``F`` with
``alpha = lambda / N``: alpha is the penalty per star, so a value tuned on one training-set size
carries over to another. The paper's ``lambda = 160``, with each half of its 79,529 parent stars
(N ~ 39,765) as training set, is ``alpha ~ 4.0e-3`` (:data:`~sklearn_selfcal._paper.PAPER_ALPHA`).
This holds for the paper's unstandardised features (natural-log fluxes, magnitudes): the features
are not standardised here either, so a pixel coefficient's penalty is per unit log-flux.

Observed parallaxes may be negative and enter the fit as they are (no logarithm of the data is
taken). The solver (:mod:`sklearn_selfcal._kernels.explinear_l1`) finds the exact L1 optimum
(exact zeros) and stops on the relative KKT residual; ``exp`` is evaluated with its exponent
capped at 30. One module per piece: the regressor, its cross-validated variant, the scores
(chi-squared, fractional scatter), the pipeline step, and the code they share (``_base``).
"""

from ._base import (MAX_PARALLAX_MAS, PARALLAX_ERROR_RANGE_MAS, PARALLAX_RANGE_MAS,
                    UNPENALIZED_FEATURES)
from ._cv import SpectroPhotometricParallaxRegressorCV
from ._regressor import SpectroPhotometricParallaxRegressor
from ._scoring import ChiSquaredScorer, chi_squared, fractional_scatter
from ._step import SpectroPhotometricParallaxTransformer, make_parallax_pipeline

__all__ = ["SpectroPhotometricParallaxRegressor", "SpectroPhotometricParallaxRegressorCV",
           "chi_squared", "ChiSquaredScorer", "fractional_scatter", "make_parallax_pipeline",
           "SpectroPhotometricParallaxTransformer", "UNPENALIZED_FEATURES", "PARALLAX_RANGE_MAS",
           "PARALLAX_ERROR_RANGE_MAS", "MAX_PARALLAX_MAS"]
