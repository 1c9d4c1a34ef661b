"""
Maps, gradients and diagnostics of the Milky Way disk: the paper's figures
===========================================================================

This example runs the science half of Eilers et al. (2022) on a simulated APOGEE x Gaia survey
with known truth and draws every figure of the paper that the method produces (Figures 1-10 and
13-17) as PNG files:

1. simulate a red-giant survey with :func:`sklearn_selfcal.datasets.make_survey`;
2. compute Galactocentric phase space and orbital actions with
   :class:`~sklearn_selfcal.ActionTransformer`;
3. keep the paper's disk sample (:func:`sklearn_selfcal.selection.disk_sample_mask`);
4. remove the log g systematics with :class:`~sklearn_selfcal.NuisanceCalibrator`;
5. tabulate the radial abundance gradients and fit the broken power-law of equation 9 with
   :class:`~sklearn_selfcal.BrokenPowerLawRegressor`;
6. write every figure with :func:`sklearn_selfcal.figures.render_figures`, which draws the profile
   and the fit it is given (it never fits anything itself).

The spectro-photometric parallaxes of the paper's section 3.1 need the spectra and have their own
example; to keep this one quick, it stands in for them with the true parallaxes perturbed by 9 %
Gaussian noise, about the paper's precision for these giants.

Set the environment variable ``SKLEARN_SELFCAL_EXAMPLE_FAST=1`` for a small, quick run (docs
builds; three of the figures) and ``SKLEARN_SELFCAL_EXAMPLE_OUT`` to choose the output directory (default
``paper_figures`` in the working directory).
"""

# %%
# Settings
# --------
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from sklearn_selfcal import ActionTransformer, BrokenPowerLawRegressor, NuisanceCalibrator, maps, plotting
from sklearn_selfcal.datasets import make_survey
from sklearn_selfcal.exceptions import BadRowsWarning, InaccurateActionsWarning
from sklearn_selfcal.figures import render_figures
from sklearn_selfcal.gradients import radial_abundance_profile, write_profile_ecsv
from sklearn_selfcal.selection import disk_sample_mask

FAST = os.environ.get("SKLEARN_SELFCAL_EXAMPLE_FAST", "0") not in ("", "0")
N_STARS = 3_000 if FAST else 40_000
MCMC = {"n_walkers": 32, "n_steps": 600, "burn_in": 200} if FAST else {"n_walkers": 32, "n_steps": 5_000}
DPI = 60 if FAST else 110
# a FAST run draws three of the figures (every figure is drawn by the test suite's demo run)
FIGURES = ["fig01_sample", "fig07_radial_gradients", "fig08_feh_broken_power_law"] if FAST else None
OUT = Path(os.environ.get("SKLEARN_SELFCAL_EXAMPLE_OUT", "paper_figures"))
OUT.mkdir(parents=True, exist_ok=True)

# %%
# A simulated survey
# ------------------
# ``n_pixels=0`` skips the spectra: this example starts from the parallaxes.
survey = make_survey(N_STARS, n_pixels=0, random_state=0)
catalogue = survey.frame.copy()
rng = np.random.default_rng(1)
catalogue["spec_parallax"] = survey.truth["parallax"] * (1.0 + 0.09 * rng.standard_normal(len(catalogue)))
catalogue["spec_parallax_err"] = 0.09 * catalogue["spec_parallax"].abs()
print(f"{len(catalogue):,} stars simulated")

# %%
# Phase space and actions
# -----------------------
# ``ActionTransformer`` uses ``spec_parallax`` when the column is present (the paper's catalogue
# name). Stars it cannot place (missing velocities) get NaN and drop out of the disk sample below.
actions = ActionTransformer().set_output(transform="pandas")
with warnings.catch_warnings():
    # the counts of rows with NaN or inaccurate actions, reported below
    warnings.simplefilter("ignore", BadRowsWarning)
    warnings.simplefilter("ignore", InaccurateActionsWarning)
    phase_space = actions.fit_transform(catalogue)
catalogue = pd.concat([catalogue, phase_space], axis=1)
print(f"{phase_space['J_R'].isna().sum()} stars without actions")

catalogue = catalogue[disk_sample_mask(catalogue)].reset_index(drop=True)
print(f"{len(catalogue):,} stars in the disk sample (|z| < 1 kpc or a 6 deg wedge, log g <= 2.2)")

# %%
# Self-calibration
# ----------------
# Every abundance (and [alpha/M]) is fitted as a quadratic in the actions plus a quadratic in
# ``LOGG - 2.2``; the calibrated ``<X>_NEW`` columns have the log g part removed.
calibrator = NuisanceCalibrator().set_output(transform="pandas")
calibrated = calibrator.fit_transform(catalogue)
catalogue = pd.concat([catalogue, calibrated], axis=1)
injected = survey.params["systematics"]
print("[Fe/H] log g coefficients, injected vs fitted:",
      injected.loc["FE_H", ["lg", "lg2"]].to_numpy(),
      calibrator.coef_.loc["FE_H", ["(LOGG-2.2)", "(LOGG-2.2)^2"]].to_numpy().round(3))

# %%
# Radial gradients and the broken power-law
# ------------------------------------------
# Median abundances in 2 kpc bins of Galactocentric radius for the low- and high-alpha disks
# (the paper's Tables 1-3), and the fit of equation 9 to the low-alpha [Fe/H] profile. Each bin's
# median is placed at the median radius of its stars (``R_MEDIAN``), not at the bin centre: the
# star density changes across a 2 kpc bin.
columns = list(calibrated.columns)
profile = radial_abundance_profile(catalogue, columns, split="ALPHA_M_NEW")
write_profile_ecsv(profile, OUT / "radial_profiles.ecsv")

points = maps.profile_points(profile, "FE_H_NEW", population="low_alpha", radius="R_MEDIAN")
regressor = BrokenPowerLawRegressor(random_state=0, **MCMC)
with warnings.catch_warnings():
    # a FAST chain is too short for a reliable autocorrelation time (a ConvergenceWarning)
    warnings.simplefilter("ignore", ConvergenceWarning)
    regressor.fit(points.R[:, None], points.y, sigma=points.err)
truth = survey.params["feh_gradient"]
print(regressor.summary_[["median", "err_minus", "err_plus"]].round(4))
print(f"injected (in guiding radius): m1 = {truth['m1']}, m2 = {truth['m2']}, k = {truth['k']} kpc")

# %%
# Every figure
# ------------
# The figures receive the profile and the fitted regressor, and the radius the fit used, so that
# Figure 8 shows the points that were fitted. A figure that cannot be made is skipped with a
# warning and its reason is listed in ``paths.skipped``.
paths = render_figures(catalogue, OUT, profile=profile, regressor=regressor, fit_radius="R_MEDIAN",
                       figures=FIGURES, random_state=0, dpi=DPI)
for name, path in paths.items():
    print(f"{name:34s} -> {path}")
for name, reason in paths.skipped.items():
    print(f"{name:34s} skipped: {reason}")

# %%
# Trends against another nuisance
# -------------------------------
# Figures 2-4 group the stars by log g; any nuisance works, e.g. the telescope (one line per
# telescope) -- a check of a calibration that includes it.
fig_telescope = plotting.plot_logg_trends(catalogue, "MG_FE", nuisance="TELESCOPE")

# %%
# The figures are ordinary :class:`matplotlib.figure.Figure` objects: a notebook displays the
# returned object, and ``fig.savefig`` writes it anywhere. Here, the [Fe/H] map of Figure 5, handed
# to pyplot (matplotlib >= 3.11 can adopt a standalone figure) so that the documentation shows it.
fig = plotting.plot_metallicity_map(catalogue)
try:
    import matplotlib.pyplot as plt

    plt.figure(fig)
except (TypeError, ValueError):  # older matplotlib: pyplot cannot adopt a Figure
    pass
