"""The text ``check`` prints (and ``run`` prints before it starts)."""

from __future__ import annotations

from .._paper import ABUNDANCE_COLUMNS

from ._plan import _ORBIT_ERROR_ROLES, LSF_ROLES, ORBIT_ROLES, PAPER_BANDS

__all__ = ["summary_lines"]


def summary_lines(plan, counts=None, *, path=None, n_rows=None, seconds=None, roles=None,
                  source=None):
    """The text ``check`` prints (and ``run`` prints before it starts).

    Parameters
    ----------
    plan : RunPlan
        The plan (roles, distances, bands, abundances, problems).
    counts : Bunch, optional
        Of :func:`~sklearn_selfcal.preflight.count_cuts`.
    path : str or path-like, optional
        The catalogue's file.
    n_rows : int, optional
        Its number of rows.
    seconds : float, optional
        The time the check took (s).
    roles : list of str, optional
        The roles to list (default: those the run reads).
    source : dict, optional
        The reader's ``frame.attrs["source"]`` (which FITS HDU was read, and why).

    Returns
    -------
    lines : list of str
        The last line starts with ``OK:`` or ``ERROR:``.
    """
    lines = []
    if path is not None:
        lines.append(f"catalogue: {path} ({n_rows:,} rows, {len(plan.columns)} columns)")
    if source and "hdu" in source:
        lines.append(f"  read {source['reason']}; --hdu or [catalogue] hdu reads another")
    lines.append("columns used (role -> column):")
    if roles is None:
        roles = [*ORBIT_ROLES, *_ORBIT_ERROR_ROLES, "star_id", "telescope", "teff",
                 "aspcapflag", "extratarg"]
        if plan.spectra or (plan.distance is not None and plan.distance.kind == "parallax"):
            roles += ["parallax", "parallax_error"]
        if plan.spectra:
            roles += [*PAPER_BANDS, *(f"{b}_error" for b in PAPER_BANDS), *LSF_ROLES,
                      "visibility_periods_used", "astrometric_chi2_al",
                      "astrometric_n_good_obs_al", "ruwe"]
        if "sdss_id" in plan.column_map:  # SDSS-V: its own flags instead of allStar's
            roles = [r for r in roles if r not in ("aspcapflag", "extratarg")]
            roles += [r for r in ("sdss_id", "release", "snr", "flag_bad") if r in plan.column_map]
    lines += ["  " + line for line in plan.column_map.report(roles)]
    found = [c for c in ABUNDANCE_COLUMNS if c in plan.column_map]
    lines.append(f"  abundances               {len(found)} of the paper's {len(ABUNDANCE_COLUMNS)}"
                 + (f" ({', '.join(plan.column_map[c] for c in found)}), with _ERR and _FLAG "
                    "where present" if found else ""))
    lines.append("distances: " + (plan.distance.describe() if plan.distance else "none"))
    if plan.spectra:
        lines.append("parallax model: magnitudes " + (", ".join(plan.magnitudes) or "none")
                     + "; LSF moments " + (", ".join(plan.lsf) or "none"))
        lines += ["  " + line for line in plan.left_out]
    lines.append(f"abundances to calibrate ({len(plan.abundances)}): "
                 + (", ".join(plan.abundances) or "none"))
    cmap = plan.column_map
    converted = [r for r in plan.abundances if cmap.converted.get(r)]
    if converted:
        e = f"{converted[0]}_ERR"
        err = (f"uncertainty {cmap.conversion(e)} ("
               + ("independent errors)" if cmap.converted.get(e) else "DR17's convention)")
               if e in cmap else "no uncertainty")
        lines.append(f"[X/H] -> [X/Fe] for {len(converted)} abundances: [X/Fe] = [X/H] - [Fe/H], "
                     f"e.g. {converted[0]} = {cmap.conversion(converted[0])}, {err}; "
                     "[catalogue] abundances = \"x_h\" keeps [X/H]")
    elif cmap.abundance_scale == "x_h":
        lines.append("[X/H] kept as [X/H] ([catalogue] abundances = \"x_h\")")
    if counts is not None:
        table = counts.table
        dup = table["condition"][(table["stage"] == "quality") & (table["cut"] == "duplicate")]
        if len(dup):
            lines.append(f"duplicates: {dup.iloc[0]}; [sample] exclude_duplicates = false keeps "
                         "every row")
        lines.append("stars passing each cut, in order:")
        for _, row in counts.table.iterrows():
            lines.append(f"  {row['stage']:<26} {row['cut']:<24} {row['n_remaining']:>9,}"
                         + (f"   ({row['condition']})" if row["condition"] else ""))
    for note in plan.notes + (counts.notes if counts is not None else []):
        lines.append(f"note: {note}")
    for problem in plan.problems:
        lines.append(f"problem: {problem}")
    if seconds is not None:
        lines.append(f"checked in {seconds:.1f} s")
    if plan.problems:
        lines.append(f"ERROR: run cannot proceed: {plan.problems[0]}")
    else:
        n_parent = int(counts.parent.sum()) if counts is not None else None
        lines.append("OK: run can proceed" + (f" ({n_parent:,} stars in the parent sample; "
                                              f"distances from {plan.distance.kind})"
                                              if n_parent is not None else ""))
    return lines

