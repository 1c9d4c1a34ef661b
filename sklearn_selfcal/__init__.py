"""sklearn-selfcal: self-calibrated stellar abundances and Milky Way disk maps as scikit-learn estimators.

The method is Eilers, Hogg, Rix et al. (2022), "Stellar abundance maps of the Milky Way disk".
Public estimators are imported lazily so that ``import sklearn_selfcal`` stays cheap.
"""

from importlib import import_module

__version__ = "0.1.0.dev0"

_EXPORTS = {
    "SpectroPhotometricParallaxRegressor": "parallax",
    "SpectroPhotometricParallaxRegressorCV": "parallax",
    "SpectroPhotometricParallaxTransformer": "parallax",
    "ActionTransformer": "actions",
    "NuisanceCalibrator": "calibration",
    "BrokenPowerLawRegressor": "gradients",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
