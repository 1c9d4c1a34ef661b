"""The whole method as ONE scikit-learn Pipeline, then the radial profiles and the gradient fit.

:func:`make_method_pipeline` builds the method: the distances (spectro-photometric parallaxes
cross-fitted on the spectra, paper section 3.1, or the distances the user already has), the orbits
(section 3.2) and the self-calibration (section 2), each step appending its columns to the table;
every setting is a parameter of a step (``pipe.set_params(parallax__alpha=...)``), and a
configuration file's step sections are exactly those parameters
(:mod:`sklearn_selfcal.config`). :func:`run_method` is that pipeline's ``fit_transform`` on the
parent sample, followed by :func:`profiles_and_fit` (section 4: Tables 1-3 and the broken power
law); the command line runs exactly this function, so the CLI and a user's own Pipeline give
identical catalogues for the same seed. :func:`~sklearn_selfcal.outputs.write_outputs` writes the
results.
"""

from ..config import DEFAULT_CONFIG, load_config
from ._apply import apply_method
from ._pipeline import make_method_pipeline, pipeline_from_config, spectra_columns
from ._profiles import profiles_and_fit
from ._run import run_method

__all__ = ["DEFAULT_CONFIG", "load_config", "make_method_pipeline", "pipeline_from_config",
           "run_method", "apply_method", "profiles_and_fit", "spectra_columns"]
