"""Self-calibration of stellar abundances against nuisance parameters at fixed orbit (paper section 2).

Each abundance is modelled as a function of the orbital actions plus a function of the nuisance
parameters (log g in the paper; any continuous or categorical column here) that vanishes at their
reference values, fitted by weighted least squares; only the nuisance part is subtracted (the
paper's equations 1-4; see :class:`NuisanceCalibrator`).

Modules: ``_estimator`` (the estimator: validation and dispatch), ``_inputs`` (which columns the
model reads, and reading them), ``_design`` (the model's design from the basis kernels),
``_sufficient`` (the fit from sums over partitions of the rows), ``_trends`` (residual-trend
diagnostics), ``_model_choice`` (model choice with scikit-learn's searches), ``_presets`` (named
models: :data:`CALIBRATION_PRESETS`).
"""

from ._estimator import NuisanceCalibrator, UnseenCategoryWarning
from ._model_choice import abundance_scorer, chosen_models
from ._presets import CALIBRATION_PRESETS
from ._trends import trend_summary

__all__ = ["NuisanceCalibrator", "UnseenCategoryWarning", "CALIBRATION_PRESETS", "abundance_scorer",
           "chosen_models", "trend_summary"]
