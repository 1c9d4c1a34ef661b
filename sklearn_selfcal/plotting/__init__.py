"""The paper's figures (Eilers et al. 2022, Figures 1-10 and 13-17) drawn with matplotlib.

Drawing only: these functions never fit a model, read or write a file. Every function returns a
:class:`matplotlib.figure.Figure` built with the object-oriented API on a standalone ``Figure``
(never ``pyplot``): nothing is shown, no global figure registry or backend is involved, so the
functions run headless and in threads. Save with ``fig.savefig(path)``; show in a notebook by
displaying the returned object. The numbers drawn come from :mod:`sklearn_selfcal.maps`, the radial
profile table of :func:`sklearn_selfcal.gradients.radial_abundance_profile` and a fitted
:class:`~sklearn_selfcal.BrokenPowerLawRegressor`; :func:`sklearn_selfcal.figures.render_figures`
writes them all as PNG files.

One module per subject: :mod:`~sklearn_selfcal.plotting.face_on` (Figures 1, 5, 6, 14-17),
:mod:`~sklearn_selfcal.plotting.trends` (2-4), :mod:`~sklearn_selfcal.plotting.profiles` (7-8),
:mod:`~sklearn_selfcal.plotting.alpha_iron` (9-10) and :mod:`~sklearn_selfcal.plotting.bar` (13).

Artists that carry data have a ``gid`` (``"map"``, ``"velocity"``, ``"bar_outline"``,
``"ring_5"``, ``"sun"``, ``"galactic_centre"``, ``"n_stars"``, ...) so that they can be found with
``[a for a in ax.get_children() if a.get_gid() == "map"]``.
"""


from ._common import abundance_label
from .alpha_iron import plot_alpha_iron_planes
from .bar import plot_on_off_bar
from .face_on import plot_abundance_maps, plot_metallicity_map, plot_sample_overview
from .profiles import FIT_ATTRIBUTES, plot_broken_power_law, plot_radial_gradients
from .trends import plot_logg_trends

__all__ = [
    "FIT_ATTRIBUTES",
    "abundance_label",
    "plot_abundance_maps",
    "plot_alpha_iron_planes",
    "plot_broken_power_law",
    "plot_logg_trends",
    "plot_metallicity_map",
    "plot_on_off_bar",
    "plot_radial_gradients",
    "plot_sample_overview",
]
