"""Radial abundance gradients: profiles, their uncertainties and the broken power-law fit.

Section 4.1 of Eilers et al. (2022): the median abundances of the low- and high-alpha disks in 2-kpc
bins of Galactocentric radius (the paper's Tables 1-3 and Figure 7), and the MCMC fit of a broken
line ("broken power-law") to the low-alpha [Fe/H] profile (equation 9, Figure 8). Beyond the paper,
the profiles can carry bootstrap and distance uncertainties, and the fit the latter.

Modules: ``_regressor`` (:class:`BrokenPowerLawRegressor`), ``_profiles`` (the profile tables),
``_distances`` (Monte Carlo radii from distance uncertainties), ``_fit`` (the fit with its
uncertainties propagated).
"""

from .._paper import MEDIAN_EFFICIENCY, PAPER_RADIUS_BINS
from ._distances import galactocentric_radius, radius_sampler, sample_distances
from ._fit import check_fit_options, fit_radial_gradient
from ._profiles import profile_covariance, radial_abundance_profile, write_profile_ecsv
from ._regressor import BrokenPowerLawRegressor

__all__ = [
    "BrokenPowerLawRegressor",
    "radial_abundance_profile",
    "profile_covariance",
    "write_profile_ecsv",
    "fit_radial_gradient",
    "check_fit_options",
    "sample_distances",
    "galactocentric_radius",
    "radius_sampler",
    "MEDIAN_EFFICIENCY",
    "PAPER_RADIUS_BINS",
]
