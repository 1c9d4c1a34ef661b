"""Binned maps and diagnostics of the Milky Way disk (Eilers et al. 2022, sections 4 and 5.2).

The computations behind the paper's figures, as plain functions returning arrays, Bunches of arrays
and tidy DataFrames (the figures themselves are drawn by :mod:`sklearn_selfcal.plotting`), one
module per subject:

- :mod:`~sklearn_selfcal.maps.face_on`: a statistic (median, mean or count) of a column in square
  bins of the Galactocentric ``(x, y)`` plane (Figures 1, 5, 6, 14-17), mean-velocity vectors
  (Figure 5), difference maps (16-17), colour limits; memory bounded whatever the data;
- :mod:`~sklearn_selfcal.maps.bar`: the Galactic bar's outline, an on-bar test and the matched
  on/off-bar samples of section 5.2; :mod:`~sklearn_selfcal.maps.comparison`: their two-sample
  comparison (Figure 13);
- :mod:`~sklearn_selfcal.maps.alpha_iron`: the [alpha/M] vs [Fe/H] plane in spatial and in action
  bins (Figures 9-10);
- :mod:`~sklearn_selfcal.maps.trends`: abundance trends with orbit and position in groups of a
  nuisance parameter, equal-count log g bins in the paper (Figures 2-4);
- :mod:`~sklearn_selfcal.maps.profiles`: the points of a radial profile fit and the stacking of the
  radial gradients (Figures 7-8);
- :mod:`~sklearn_selfcal.maps.populations`: the low- and high-alpha split and the calibrated columns.

Conventions: astropy's Galactocentric frame as written by
:class:`~sklearn_selfcal.ActionTransformer` (columns ``x, y, z`` in kpc, ``v_x, v_y, v_z`` in km/s,
``R`` in kpc, ``J_R, L_z, J_z`` in kpc km/s); the Sun at ``(x, y) = (-R0_KPC, 0)``, Galactic
rotation with ``v_y > 0`` at the Sun, ``L_z < 0`` for disk stars and positive Galactic longitude on
the ``y > 0`` side. Abundances in dex: APOGEE names for the reported values (``FE_H``, ``MG_FE``, ...)
and :func:`sklearn_selfcal._paper.calibrated_name` (``<X>_NEW``) for the self-calibrated ones
(:class:`~sklearn_selfcal.NuisanceCalibrator`). No function modifies its input. Every function
checks its catalogue first (:func:`sklearn_selfcal._validation.validate_catalogue`): text where
numbers are expected, a column name or index label given twice, an empty table and positions in pc
instead of kpc are errors naming the column (and rows); sentinels (-9999, ...), values outside a
column's physical range and infinities become NaN with a
:class:`~sklearn_selfcal.exceptions.DataQualityWarning` naming the column.
"""

from .._kernels.binned import equal_count_bins
from .._paper import ALPHA_SPLIT, BAR_AXIS_RATIO
from .._paper import BAR_ANGLE_DEG as BAR_ANGLE
from .._paper import BAR_HALF_LENGTH_KPC as BAR_HALF_LENGTH
from .._validation import TooFewStarsError
from .alpha_iron import alpha_iron_by_actions, alpha_iron_by_position, binned_abundance_planes
from .bar import bar_axes, bar_outline, on_bar, on_off_bar_samples
from .comparison import compare_samples, energy_distance
from .face_on import (
    FIGURE6_ABUNDANCES,
    MAP_BIN_SIZE_KPC,
    MAP_COLOR_PERCENTILES,
    MAP_LIMIT_KPC,
    MAP_MIN_STARS,
    MAX_MAP_BINS,
    SUN_XY,
    binned_map,
    color_limits,
    face_on_map,
    grid_edges,
    map_extent,
    velocity_map,
)
from .populations import alpha_column, alpha_population_masks, calibrated_abundances, calibrated_or_reported
from .profiles import profile_points, radial_gradient_layout
from .trends import TREND_FEATURES, logg_trends, nuisance_groups

__all__ = [
    "ALPHA_SPLIT",
    "BAR_ANGLE",
    "BAR_AXIS_RATIO",
    "BAR_HALF_LENGTH",
    "FIGURE6_ABUNDANCES",
    "MAP_BIN_SIZE_KPC",
    "MAP_COLOR_PERCENTILES",
    "MAP_LIMIT_KPC",
    "MAP_MIN_STARS",
    "MAX_MAP_BINS",
    "SUN_XY",
    "TREND_FEATURES",
    "TooFewStarsError",
    "alpha_column",
    "alpha_iron_by_actions",
    "alpha_iron_by_position",
    "alpha_population_masks",
    "bar_axes",
    "bar_outline",
    "binned_abundance_planes",
    "binned_map",
    "calibrated_abundances",
    "calibrated_or_reported",
    "color_limits",
    "compare_samples",
    "energy_distance",
    "equal_count_bins",
    "face_on_map",
    "grid_edges",
    "logg_trends",
    "map_extent",
    "nuisance_groups",
    "on_bar",
    "on_off_bar_samples",
    "profile_points",
    "radial_gradient_layout",
    "velocity_map",
]
