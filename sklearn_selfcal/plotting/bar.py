"""Figure 13: on-bar against off-bar stars of the inner Galaxy (section 5.2)."""

from __future__ import annotations

from matplotlib.figure import Figure
from sklearn.utils import check_random_state

from .. import maps
from ._common import R_LABEL, abundance_label, face_on_axes, mark_galaxy

__all__ = ["plot_on_off_bar"]


def plot_on_off_bar(frame, *, x_abundance=None, y_abundance=None, samples=None, summary=None, random_state=None,
                    n_permutations=999, figsize=None, **sample_kwargs):
    """Figure 13: on-bar against off-bar stars of the inner Galaxy (section 5.2).

    Parameters
    ----------
    frame : pandas.DataFrame
        Catalogue with ``x, y, z, R`` (kpc) and the two abundances; not modified.
    x_abundance, y_abundance : str or None, default=None
        Abundances on the horizontal and vertical axes (dex); ``None``: the calibrated [Fe/H] and
        [Mg/Fe] (the reported names when the calibrated ones are absent).
    samples : sklearn.utils.Bunch or None, default=None
        Output of :func:`~sklearn_selfcal.maps.on_off_bar_samples`; computed when ``None``.
    summary : sklearn.utils.Bunch or None, default=None
        Output of :func:`~sklearn_selfcal.maps.compare_samples`; computed when ``None``.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsampling and the permutation test.
    n_permutations : int, default=999
        Permutations of the energy-distance test.
    figsize : tuple of float or None
        Figure size (inches).
    **sample_kwargs
        Passed to :func:`~sklearn_selfcal.maps.on_off_bar_samples` (``z_max``, ``R_max``, bin sizes).

    Returns
    -------
    fig : matplotlib.figure.Figure
        Left: the matched on-bar (``gid="on_bar"``) and off-bar (``gid="off_bar"``) stars in the
        (x, y) plane with rings at 2, 3 and 5 kpc and the bar outline, the unmatched slab stars in
        grey; middle: the same stars in (R, z); right: ``y_abundance`` against ``x_abundance`` for
        both samples (``gid="on_bar_abundances"``, ``"off_bar_abundances"``), their medians, and the
        KS and energy-distance p-values (``gid="comparison"``).

    Raises
    ------
    TooFewStarsError
        If either matched sample has fewer than 2 stars with both abundances.
    """
    x = maps.calibrated_or_reported(frame, "FE_H") if x_abundance is None else x_abundance
    y = maps.calibrated_or_reported(frame, "MG_FE") if y_abundance is None else y_abundance
    rng = check_random_state(random_state)
    if samples is None:
        samples = maps.on_off_bar_samples(frame, random_state=rng, **sample_kwargs)
    if summary is None:
        summary = maps.compare_samples(samples.on, samples.off, [x, y], n_permutations=n_permutations,
                                       random_state=rng)
    fig = Figure(figsize=figsize or (14.0, 4.6), layout="constrained")
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": (1.0, 1.0, 1.1)})
    on, off = samples.on, samples.off
    styles = (("on_bar", on, "tab:red", "on bar"), ("off_bar", off, "tab:blue", "off bar"))

    ax = axes[0]
    rest = samples.on_all.index.union(samples.off_all.index).difference(on.index.union(off.index))
    ax.scatter(frame.loc[rest, "x"], frame.loc[rest, "y"], s=2, color="0.75", lw=0, gid="unmatched",
               label="not matched")
    for gid, part, colour, label in styles:
        ax.scatter(part["x"], part["y"], s=5, color=colour, lw=0, gid=gid, label=f"{label} ({len(part)})")
    mark_galaxy(ax, rings=(2.0, 3.0, 5.0), bar=True, sun=False)
    face_on_axes(ax, (-5.5, 5.5, -5.5, 5.5))
    ax.legend(fontsize=7, loc="upper right")

    ax = axes[1]
    for gid, part, colour, label in styles:
        ax.scatter(part["R"], part["z"], s=5, color=colour, lw=0, gid=f"{gid}_Rz", label=label)
    ax.set_xlabel(R_LABEL)
    ax.set_ylabel(r"$z$ [kpc]")

    ax = axes[2]
    for gid, part, colour, label in styles:
        ax.scatter(part[x], part[y], s=6, color=colour, alpha=0.6, lw=0, gid=f"{gid}_abundances", label=label)
    table = summary.table
    for suffix, colour in (("a", "tab:red"), ("b", "tab:blue")):
        ax.errorbar(table.loc[x, f"median_{suffix}"], table.loc[y, f"median_{suffix}"],
                    xerr=table.loc[x, f"median_err_{suffix}"], yerr=table.loc[y, f"median_err_{suffix}"],
                    color=colour, marker="s", ms=7, mec="k", capsize=2, zorder=5)
    text = (f"KS p: {abundance_label(x, unit=False)} {table.loc[x, 'ks_pvalue']:.2f}, "
            f"{abundance_label(y, unit=False)} {table.loc[y, 'ks_pvalue']:.2f}\n"
            f"energy distance {summary.energy_distance:.3f} dex, p = {summary.energy_pvalue:.2f}")
    ax.text(0.03, 0.03, text, transform=ax.transAxes, fontsize=8, va="bottom", gid="comparison",
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8})
    ax.set_xlabel(abundance_label(x))
    ax.set_ylabel(abundance_label(y))
    ax.legend(fontsize=7, loc="upper right")
    cells = samples.cells
    fig.suptitle(f"on-bar vs off-bar stars, |z| < {cells['Z_MAX'].max():g} kpc, R < {cells['R_MAX'].max():g} kpc",
                 fontsize=10)
    return fig
