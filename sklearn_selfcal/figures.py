"""Every figure of the paper as a PNG file: the figure registry and the file writing.

:func:`render_figures` receives what the workflow computed -- the disk sample, its radial profile
table and the fitted broken power-law -- and draws each figure with :mod:`sklearn_selfcal.plotting`;
it never fits a model or reads a file. A figure that cannot be made (a missing column or input, too
few stars) is skipped with a :class:`FigureSkippedWarning` and its reason is returned, for the
provenance of a run.

The figures are drawn in ``n_jobs`` worker processes (matplotlib's Agg canvas, no pyplot), each
receiving only the columns its figure reads; the PNG bytes come back and are written here, and the
warnings a figure raised are raised again here, in the figures' order, under the caller's filters.
What is written and warned does not depend on ``n_jobs``.

Figure 8 draws the profile points the regressor was fitted to: pass the radius column used in the
fit as ``fit_radius`` (the workflow fits at ``"R_MEDIAN"``, the median radius of each bin's stars).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from . import maps, plotting
from ._figure_jobs import _FigureJob, start_workers
from ._paper import ALPHA_SPLIT_COLUMNS, CALIBRATED_SUFFIX, abundance_error_column, calibrated_name
from .exceptions import FigureSkippedWarning
from .maps.populations import UNMAPPED_COLUMNS

__all__ = ["FIGURES", "TREND_ABUNDANCES", "FigureInputs", "FigureSkippedWarning", "FigureSpec",
           "RenderedFigures", "figure_specs", "render_figures", "start_figures", "start_workers"]

#: Abundances of Figures 2, 3 and 4 (reported names).
TREND_ABUNDANCES = ("FE_H", "MG_FE", "AL_FE")
_FE_H = calibrated_name("FE_H")
_MG_FE = calibrated_name("MG_FE")


class _Unavailable(Exception):
    """Raised while listing a figure's needs: an input it needs is absent (the message says which)."""


@dataclass(frozen=True)
class FigureInputs:
    """What the figures are drawn from: the inputs of :func:`render_figures`, in one record.

    Each :class:`FigureSpec` receives one of these; the methods look up the columns a figure needs
    and raise an internal exception, caught by :meth:`FigureSpec.missing`, when one is absent.

    Parameters
    ----------
    frame : pandas.DataFrame
        The disk sample of the calibrated catalogue (positions in kpc, velocities in km/s, actions
        in kpc km/s, ``TEFF`` in K, ``LOGG`` and abundances in dex); see :func:`render_figures`.
    profile : pandas.DataFrame or None, default=None
        The radial profile table drawn in Figures 7 and 8.
    regressor : fitted BrokenPowerLawRegressor or None, default=None
        The fit drawn in Figure 8.
    fit_radius : str, default="R_MEDIAN"
        The profile's radius column (kpc) the regressor was fitted at.
    fit_column : str, default="FE_H_NEW"
        The profile column fitted (the calibrated [Fe/H], dex).
    fit_population : str, default="low_alpha"
        The profile rows fitted.
    random_state : int, default=0
        Seed of everything random in a figure.
    """

    frame: object
    profile: object = None
    regressor: object = None
    fit_radius: str = "R_MEDIAN"
    fit_column: str = _FE_H
    fit_population: str = "low_alpha"
    random_state: int = 0

    def calibrated_names(self):
        """List the reported abundances that have a calibrated column in the frame.

        Returns
        -------
        names : list of str
            Reported names (e.g. ``["FE_H", "MG_FE"]``), as
            :func:`sklearn_selfcal.maps.calibrated_abundances`; the figure is skipped when there
            is none.
        """
        names = maps.calibrated_abundances(self.frame)
        if not names:
            raise _Unavailable(f"no calibrated abundance column <X>{CALIBRATED_SUFFIX} next to its reported <X>")
        return names

    def alpha_column(self):
        """Name the [alpha/M] column that splits the populations.

        Returns
        -------
        name : str
            ``ALPHA_M_NEW`` if present, else ``ALPHA_M``
            (:func:`sklearn_selfcal.maps.alpha_column`); the figure is skipped when there is
            neither.
        """
        try:
            return maps.alpha_column(self.frame)
        except KeyError:
            raise _Unavailable(f"no [alpha/M] column to split the populations (one of "
                               f"{list(ALPHA_SPLIT_COLUMNS)})") from None

    def profile_abundances(self):
        """List the calibrated abundance columns of the profile that have an uncertainty column.

        Returns
        -------
        names : list of str
            Calibrated columns ``<X>_NEW`` of ``profile`` (dex) drawn in Figure 7, in the
            profile's order; the figure is skipped when there is none.
        """
        names = [c for c in self.profile.columns
                 if c.endswith(CALIBRATED_SUFFIX) and c.removesuffix(CALIBRATED_SUFFIX) not in UNMAPPED_COLUMNS
                 and abundance_error_column(c) in self.profile.columns]
        if not names:
            raise _Unavailable(f"the profile has no calibrated abundance column <X>{CALIBRATED_SUFFIX} "
                               "with its uncertainty")
        return names


def _no_columns(inputs):
    """List no frame column: the default ``columns`` of a :class:`FigureSpec`.

    Parameters
    ----------
    inputs : FigureInputs
        Ignored.

    Returns
    -------
    list of str
        An empty list.
    """
    return []


@dataclass(frozen=True)
class FigureSpec:
    """One figure of :func:`render_figures`.

    Parameters
    ----------
    name : str
        File name stem (``<name>.png``); the paper's figure number comes first.
    make : callable
        ``make(inputs) -> matplotlib.figure.Figure`` with ``inputs`` a :class:`FigureInputs`.
    columns : callable, default: none
        ``columns(inputs) -> list of str``: the columns of the frame needed.
    profile_columns : callable or None, default=None
        ``profile_columns(inputs) -> list of str``: the columns of the profile table needed;
        ``None``: the figure does not draw the profile.
    needs_fit : bool, default=False
        Whether the figure draws the fitted regressor.
    """

    name: str
    make: Callable
    columns: Callable = field(default=_no_columns)
    profile_columns: Callable | None = None
    needs_fit: bool = False

    def missing(self, inputs):
        """Say why the figure cannot be made from ``inputs``.

        Parameters
        ----------
        inputs : FigureInputs
            What the figures are drawn from.

        Returns
        -------
        reason : str or None
            The reason (an absent input or column), or ``None`` if the figure can be tried.
        """
        try:
            if self.profile_columns is not None:
                if inputs.profile is None:
                    return "no radial profile given (profile=None)"
                absent = [c for c in self.profile_columns(inputs) if c not in inputs.profile.columns]
                if absent:
                    return f"the profile lacks column(s) {absent}"
            if self.needs_fit and inputs.regressor is None:
                return "no fitted broken power law given (regressor=None); it is never fitted here"
            absent = [c for c in self.columns(inputs) if c not in inputs.frame.columns]
        except _Unavailable as exc:
            return str(exc)
        return f"missing column(s) {absent}" if absent else None


def _positions(*extra):
    return lambda inputs: ["x", "y", *extra]


def _maps_spec(name, abundances, populations, difference):
    def names(inputs):
        return inputs.calibrated_names() if abundances == "all" else list(abundances)

    def make(inputs):
        return plotting.plot_abundance_maps(inputs.frame, names(inputs), populations=populations,
                                            difference=difference, n_cols=4 if abundances == "all" else None)

    def columns(inputs):  # "all": the reported columns too, which say which are calibrated
        reported = names(inputs)
        return ["x", "y", inputs.alpha_column(), *map(calibrated_name, reported),
                *(reported if difference or abundances == "all" else [])]

    return FigureSpec(name, make, columns)


def _trend_spec(number, nuisance, abundance):
    return FigureSpec(
        f"fig{number:02d}_{nuisance.lower()}_trends_{abundance.lower()}",
        lambda inputs: plotting.plot_logg_trends(inputs.frame, abundance, nuisance=nuisance),
        lambda inputs: [nuisance, abundance, calibrated_name(abundance), *maps.TREND_FEATURES],
    )


def _radial_gradients(inputs):
    return plotting.plot_radial_gradients(inputs.profile, inputs.profile_abundances(), radius=inputs.fit_radius)


def _broken_power_law(inputs):
    return plotting.plot_broken_power_law(inputs.profile, inputs.regressor, column=inputs.fit_column,
                                          population=inputs.fit_population, radius=inputs.fit_radius,
                                          random_state=inputs.random_state)


def figure_specs(nuisances=("LOGG",)):
    """The figures of :func:`render_figures`, in order (paper figure numbers in the names).

    Parameters
    ----------
    nuisances : sequence of str, default=("LOGG",)
        Nuisance columns of the trend figures 2-4 (:func:`sklearn_selfcal.plotting.plot_logg_trends`):
        one set of three figures per nuisance, named ``fig02_<nuisance>_trends_fe_h``, ... (the
        paper's log g: ``fig02_logg_trends_fe_h``).

    Returns
    -------
    specs : tuple of FigureSpec
        One spec per figure, in the paper's order; each says what the figure needs and how to
        draw it.

    Examples
    --------
    >>> [spec.name for spec in figure_specs(("LOGG", "TELESCOPE"))][1:7]  # doctest: +NORMALIZE_WHITESPACE
    ['fig02_logg_trends_fe_h', 'fig03_logg_trends_mg_fe', 'fig04_logg_trends_al_fe',
     'fig02_telescope_trends_fe_h', 'fig03_telescope_trends_mg_fe', 'fig04_telescope_trends_al_fe']
    """
    nuisances = [nuisances] if isinstance(nuisances, str) else list(nuisances)
    trends = [_trend_spec(2 + k, nuisance, abundance)
              for nuisance in nuisances for k, abundance in enumerate(TREND_ABUNDANCES)]
    return (
        FigureSpec("fig01_sample", lambda inputs: plotting.plot_sample_overview(inputs.frame),
                   _positions("TEFF", "LOGG", "FE_H")),
        *trends,
        FigureSpec("fig05_feh_velocity_map", lambda inputs: plotting.plot_metallicity_map(inputs.frame),
                   _positions("z", "v_x", "v_y", _FE_H)),
        _maps_spec("fig06_abundance_maps", maps.FIGURE6_ABUNDANCES, ("low_alpha", "high_alpha"), False),
        FigureSpec("fig07_radial_gradients", _radial_gradients,
                   profile_columns=lambda inputs: [inputs.fit_radius, "population", *inputs.profile_abundances()]),
        FigureSpec("fig08_feh_broken_power_law", _broken_power_law,
                   profile_columns=lambda inputs: [inputs.fit_radius, "population", inputs.fit_column,
                                                   abundance_error_column(inputs.fit_column)],
                   needs_fit=True),
        FigureSpec("fig09_alpha_iron_by_position",
                   lambda inputs: plotting.plot_alpha_iron_planes(inputs.frame, by="position"),
                   lambda inputs: ["R", "z", _FE_H, inputs.alpha_column()]),
        FigureSpec("fig10_alpha_iron_by_actions",
                   lambda inputs: plotting.plot_alpha_iron_planes(inputs.frame, by="actions"),
                   lambda inputs: ["J_R", "L_z", "J_z", _FE_H, inputs.alpha_column()]),
        FigureSpec("fig13_on_off_bar",
                   lambda inputs: plotting.plot_on_off_bar(inputs.frame, random_state=inputs.random_state),
                   _positions("z", "R", _FE_H, _MG_FE)),
        _maps_spec("fig14_abundance_maps_low_alpha", "all", ("low_alpha",), False),
        _maps_spec("fig15_abundance_maps_high_alpha", "all", ("high_alpha",), False),
        _maps_spec("fig16_difference_maps_low_alpha", "all", ("low_alpha",), True),
        _maps_spec("fig17_difference_maps_high_alpha", "all", ("high_alpha",), True),
    )


#: The paper's figures (trends against log g), as written by :func:`render_figures` by default.
FIGURES = figure_specs()


class RenderedFigures(dict):
    """Figure name to the path of the PNG written, for the figures made.

    Parameters
    ----------
    paths : mapping or iterable of (str, str), default=()
        Figure name to the path of its PNG.
    skipped : mapping of str to str or None, default=None
        Figure name to the reason it was not made.

    Attributes
    ----------
    skipped : dict of str to str
        Figure name to the reason it was not made (for a run's provenance).
    """

    def __init__(self, paths=(), skipped=None):
        super().__init__(paths)
        self.skipped = dict(skipped or {})


def render_figures(frame, out_dir, *, profile=None, regressor=None, fit_radius="R_MEDIAN", fit_column=_FE_H,
                   fit_population="low_alpha", figures=None, nuisances=("LOGG",), random_state=0, dpi=110,
                   n_jobs=None, verbose=0):
    """Write every figure of the paper that can be made from the inputs as a PNG in ``out_dir``.

    Nothing is fitted or read here: the workflow passes what it computed.

    Parameters
    ----------
    frame : pandas.DataFrame
        The disk sample of the calibrated catalogue: ``x, y, z, v_x, v_y, R, J_R, L_z, J_z`` (kpc,
        km/s, kpc km/s; :class:`~sklearn_selfcal.ActionTransformer`), ``TEFF`` (K), ``LOGG`` (dex),
        the reported abundances (``FE_H``, ``<X>_FE``, ``ALPHA_M``, dex) and the calibrated
        ``<X>_NEW`` (:class:`~sklearn_selfcal.NuisanceCalibrator`). Not modified. Stars farther
        than :data:`sklearn_selfcal.maps.MAP_LIMIT_KPC` in ``|x|`` or ``|y|`` are left out of the
        maps with a warning counting them.
    out_dir : str or path-like
        Output directory, created if needed; existing files of the same names are replaced (each
        written atomically, never left half-written).
    profile : pandas.DataFrame or None, default=None
        The radial profile table (:func:`sklearn_selfcal.gradients.radial_abundance_profile` of the
        calibrated columns) drawn in Figures 7 and 8; ``None``: both are skipped.
    regressor : fitted BrokenPowerLawRegressor or None, default=None
        The fit drawn in Figure 8 (anything with the attributes of
        :data:`sklearn_selfcal.plotting.FIT_ATTRIBUTES`); ``None``: Figure 8 is skipped.
    fit_radius : str, default="R_MEDIAN"
        The profile's radius column the regressor was fitted at (kpc); Figures 7 and 8 draw the
        profile points there.
    fit_column : str, default="FE_H_NEW"
        The profile column fitted (the calibrated [Fe/H]).
    fit_population : str, default="low_alpha"
        The profile rows fitted.
    figures : sequence of str or None, default=None
        Names (see :func:`figure_specs`) to write; ``None``: all.
    nuisances : sequence of str, default=("LOGG",)
        Nuisance columns of the trend figures 2-4, e.g. ``("LOGG", "TEFF", "TELESCOPE")`` for a
        calibration with these nuisances (:func:`figure_specs`).
    random_state : int, default=0
        Seed of everything random in the figures (posterior draws, on/off-bar subsampling and
        permutations); each figure uses it afresh, so a figure does not depend on which others are
        made.
    dpi : int, default=110
        Resolution of the PNGs.
    n_jobs : int or None, default=None
        Worker processes drawing the figures (joblib's convention: ``None`` is one, in this
        process, unless in a :func:`joblib.parallel_config` context; ``-1`` all cores). The files
        and the warnings do not depend on it. A process costs its start (about 2 s of imports)
        once: it pays for the paper-size figures (about 20 s on one core), not for small ones.
    verbose : int, default=0
        Show a progress bar over the figures when truthy.

    Returns
    -------
    paths : RenderedFigures
        A dict of figure name to the PNG path written, for the figures made, with attribute
        ``skipped``: figure name to the reason it was skipped.

    Warns
    -----
    FigureSkippedWarning
        For every figure skipped, with its reason.

    Raises
    ------
    ValueError
        For an unknown figure name, or a column holding text where numbers are expected.
    """
    os.makedirs(out_dir, exist_ok=True)  # before any drawing: a directory that cannot be made fails now
    job = start_figures(frame, profile=profile, regressor=regressor, fit_radius=fit_radius,
                        fit_column=fit_column, fit_population=fit_population, figures=figures,
                        nuisances=nuisances, random_state=random_state, dpi=dpi, n_jobs=n_jobs,
                        verbose=verbose)
    return job._write(out_dir, stacklevel=3)


def start_figures(frame, *, profile=None, regressor=None, fit_radius="R_MEDIAN", fit_column=_FE_H,
                  fit_population="low_alpha", figures=None, nuisances=("LOGG",), random_state=0, dpi=110,
                  n_jobs=None, verbose=0, fit_later=False, workers=None):
    """Start drawing the figures of :func:`render_figures` in worker processes; write them later.

    The caller is free to do other work while the workers draw (e.g. write the catalogue, or fit
    the radial profiles while the figures that do not need them are drawn: ``fit_later``); with
    one job nothing is drawn before ``job.write``.

    Parameters
    ----------
    frame : pandas.DataFrame
        The disk sample (positions in kpc, velocities in km/s, actions in kpc km/s, abundances in
        dex), as for :func:`render_figures`; not modified.
    profile : pandas.DataFrame or None, default=None
        The radial profile table (Figures 7 and 8).
    regressor : fitted BrokenPowerLawRegressor or None, default=None
        The fit drawn in Figure 8.
    fit_radius : str, default="R_MEDIAN"
        The profile's radius column (kpc) the regressor was fitted at.
    fit_column : str, default="FE_H_NEW"
        The profile column fitted (dex).
    fit_population : str, default="low_alpha"
        The profile rows fitted.
    figures : sequence of str or None, default=None
        Names to draw; ``None``: all.
    nuisances : sequence of str, default=("LOGG",)
        Nuisance columns of the trend figures 2-4.
    random_state : int, default=0
        Seed of everything random in the figures.
    dpi : int, default=110
        Resolution of the PNGs.
    n_jobs : int or None, default=None
        Worker processes (joblib's convention); the figures do not depend on it.
    verbose : int, default=0
        Show a progress bar while ``job.write`` draws and waits.
    fit_later : bool, default=False
        Hold back the figures that draw the radial profile or the fit (7 and 8) until
        ``job.add_fit(profile, regressor, fit_column)`` gives them (``profile`` and ``regressor``
        are then ignored); the others start at once.
    workers : object or None, default=None
        Worker processes started ahead by :func:`start_workers`
        (then ``n_jobs`` is theirs), stopped after the figures; None: started here.

    Returns
    -------
    job : object
        ``job.write(out_dir)`` draws the figures no worker took, waits for the others, writes them
        into ``out_dir`` (created if needed) and returns the :class:`RenderedFigures` of
        :func:`render_figures`, raising the figures' warnings there; once. With ``fit_later``,
        ``job.add_fit`` must come first. ``job.close()`` stops the workers of a job that will not
        be written.

    Raises
    ------
    ValueError
        For an unknown figure name.
    """
    specs = figure_specs(nuisances)
    known = [s.name for s in specs]
    if figures is not None:
        figures = [figures] if isinstance(figures, str) else list(figures)
        unknown = sorted(set(figures) - set(known))
        if unknown:
            raise ValueError(f"unknown figure name(s) {unknown}; known: {known}")
        specs = [s for s in specs if s.name in figures]
    if fit_later:
        profile = regressor = None
    inputs = FigureInputs(frame, profile, regressor, fit_radius, fit_column, fit_population, random_state)
    return _FigureJob(specs, inputs, nuisances, dpi, n_jobs, verbose, fit_later, workers)
