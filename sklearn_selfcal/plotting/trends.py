"""Figures 2-4: an abundance against orbit and position, one line per group of a nuisance parameter."""

from __future__ import annotations

import pandas as pd
from matplotlib import colormaps

from .. import maps
from ._common import abundance_label, new_figure

__all__ = ["plot_logg_trends"]

#: How a nuisance column reads on a figure (others by their column name).
_NUISANCE_LABELS = {"LOGG": r"$\log g$", "TEFF": r"$T_{\rm eff}$"}
#: Colours of the groups, distinct for up to 10 groups (at most ``max_categories`` by default).
_GROUP_COLOURS = colormaps["tab10"].colors


def _group_label(row):
    """Legend entry of a nuisance group: its category, or the range of its bin."""
    name = _NUISANCE_LABELS.get(row["nuisance"], row["nuisance"])
    if pd.notna(row["nuisance_category"]):
        return f"{name} = {row['nuisance_category']}"
    return rf"{row['nuisance_min']:.4g} $\leq$ {name} $\leq$ {row['nuisance_max']:.4g}"


def plot_logg_trends(frame, abundance, *, calibrated=None, trends=None, figsize=None, **trend_kwargs):
    """Figures 2-4: an abundance against J_R, J_z, L_z, R and z in groups of a nuisance parameter.

    The paper's four equal-count log g bins by default; any nuisance of
    :func:`~sklearn_selfcal.maps.logg_trends` (e.g. ``nuisance="TEFF"`` in equal-count bins, or
    ``nuisance="TELESCOPE"``, one line per telescope).

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue (see :func:`sklearn_selfcal.maps.logg_trends`); not modified. Unused when
        ``trends`` is given.
    abundance : str
        Reported abundance column (dex), e.g. ``"FE_H"``; drawn in the top row.
    calibrated : str or None, default=None
        Calibrated column (``<abundance>_NEW``), drawn in the bottom row.
    trends : pandas.DataFrame or None, default=None
        Precomputed output of :func:`~sklearn_selfcal.maps.logg_trends`; computed when ``None``.
    figsize : tuple of float or None
        Figure size (inches).
    **trend_kwargs
        Passed to :func:`~sklearn_selfcal.maps.logg_trends` (``nuisance``, ``categorical``,
        ``features``, ``n_nuisance_bins``, ``n_feature_bins``, ``min_stars``, ...).

    Returns
    -------
    fig : matplotlib.figure.Figure
        Two rows (reported, calibrated) by one column per feature; in every panel one line of
        binned medians per nuisance group (``gid="nuisance_group_<i>"``, labelled with the bin's
        range or the category) with a band of the uncertainty of the median. Rows share the
        vertical range.
    """
    if trends is None:
        trends = maps.logg_trends(frame, abundance, calibrated=calibrated, **trend_kwargs)
    features = list(dict.fromkeys(trends["feature"]))
    groups = trends.drop_duplicates("nuisance_group").sort_values("nuisance_group")
    nuisance = groups["nuisance"].iloc[0]
    fig, axes = new_figure(2, len(features), panel_size=(3.0, 2.6), figsize=figsize, sharey=True)
    stages = (("input", "APOGEE (input)"), ("calibrated", "self-calibrated"))
    for row, (stage, stage_label) in enumerate(stages):
        part = trends[trends["stage"] == stage]
        column = part["column"].iloc[0]
        for col, feature in enumerate(features):
            ax = axes[row, col]
            sub = part[part["feature"] == feature]
            for _, group in groups.iterrows():
                i = int(group["nuisance_group"])
                b = sub[sub["nuisance_group"] == i]
                colour = _GROUP_COLOURS[i % len(_GROUP_COLOURS)]
                xs, med, err = (b[k].to_numpy(dtype=float) for k in ("feature_centre", "median", "median_err"))
                ax.fill_between(xs, med - err, med + err, color=colour, alpha=0.25, lw=0)
                ax.plot(xs, med, color=colour, lw=1.4, label=_group_label(group), gid=f"nuisance_group_{i}")
            ax.set_xlabel(maps.TREND_FEATURES.get(feature, feature))
            if col == 0:
                ax.set_ylabel(f"{abundance_label(column, unit=False)} {stage_label} [dex]")
    axes[0, 0].legend(fontsize=7, loc="best")
    kind = ("per " if groups["nuisance_category"].notna().any() else "in equal-count bins of ")
    fig.suptitle(f"{abundance_label(abundance, unit=False)} before (top) and after (bottom) the "
                 f"self-calibration, {kind}{_NUISANCE_LABELS.get(nuisance, nuisance)}")
    return fig
