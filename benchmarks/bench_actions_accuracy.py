"""Accuracy of ActionTransformer's actions and of its flag, per Galactic population, before and after.

For each population of ``sklearn_selfcal.datasets.make_orbits`` (bulge, inner disk, solar disk,
outer disk, halo) the stars are the 16 points of 2 Gyr orbits (galpy's C DOP853), turned into
observables and passed through ActionTransformer. Their actions are compared with two references
per orbit:

* the **long average** (every orbit): the same orbit integrated for ``--ref-gyr`` Gyr (default
  10) and sampled at ``--ref-points`` times, galpy's Staeckel fudge evaluated at every point with
  the focal distance that best conserves the actions along that orbit (0.25-8 kpc), averaged. The
  same estimator family as ``auto``'s orbit averages: it shares their bias where the fudge varies
  along the orbit.
* the **independent reference** (the first ``--o2gf N`` orbits of each population): gala's
  orbit-based torus fit ``find_actions_o2gf`` (N_max=8) on each half of the orbit integrated by
  gala (0.5 Myr steps), their mean where the halves agree to :data:`O2GF_AGREE` and the orbit is
  regular; the long average elsewhere (the number of each is printed).

An orbit is **chaotic by the reference** where its radial or vertical period (least-squares slope
of its pericentre / plane-crossing times) differs by more than :data:`DRIFT_CHAOS` between the two
halves of gala's long integration.

Error of a star: ``max(|J_R - J_R,ref|, |J_z - J_z,ref|) / max(J_R,ref, J_z,ref)`` (the measure
``actions_rel_err`` estimates). Printed per population and method:

* median and 90th percentile of the error against the long average and (``ind.``) against the
  independent reference (the O2GF subsample);
* ``flagged``: fraction of stars with ``actions_rel_err > 0.05``; ``chaotic``: with the chaotic
  bit of ``actions_flags`` (the new code only);
* precision (of the flagged stars, the fraction whose error exceeds 0.05), recall (of the stars
  whose error exceeds 0.05, the fraction flagged) and ``missed`` (stars more than 10 % off,
  neither flagged nor chaotic), against the long average, the independent reference, and the
  independent reference on its regular (O2GF) orbits only;
* ``confirmed``: of the stars with the chaotic bit, the fraction on orbits chaotic by the
  reference; ``found``: of the stars on such orbits, the fraction with the bit.

"before" is main's code (``--before DIR``, a copy of its ``sklearn_selfcal`` package, e.g.
``git -C /work/main archive main sklearn_selfcal | tar -x -C /tmp/actions_before``), run in a
subprocess on the same stars; "after" is the installed package, in this process.

Usage::

    python benchmarks/bench_actions_accuracy.py --n-orbits 30 --ref-gyr 8 --ref-points 300 \
        --o2gf 10 --before /tmp/actions_before
    python benchmarks/bench_actions_accuracy.py --n-orbits 10 --ref-gyr 6   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd

THRESHOLD = 0.05
#: A reference orbit is chaotic where its radial or vertical period changes by more than this
#: between the two halves of the long integration.
DRIFT_CHAOS = 0.02
#: gala's O2GF is the independent reference of an orbit where its two halves agree to this.
O2GF_AGREE = 0.02
METHODS = ("auto", "staeckel")
COLUMNS = ["ra", "dec", "distance", "pmra", "pmdec", "radial_velocity"]


def transform(tables, methods):
    """ActionTransformer outputs of every population table for every method (this process's code)."""
    from threadpoolctl import threadpool_limits

    from sklearn_selfcal import ActionTransformer

    out = {}
    for method in methods:
        for name, table in tables.items():
            at = ActionTransformer(distance="distance", radial_velocity="radial_velocity",
                                   method=method)
            with warnings.catch_warnings(), threadpool_limits(1, user_api="openmp"):
                warnings.simplefilter("ignore")  # the warnings count what this script measures
                t0 = time.perf_counter()
                res = at.set_output(transform="pandas").fit_transform(table)
                elapsed = time.perf_counter() - t0
            flags = res["actions_flags"].to_numpy() if "actions_flags" in res else np.zeros(len(res))
            out[f"{method}/{name}"] = {"J_R": res["J_R"].tolist(), "J_z": res["J_z"].tolist(),
                                       "rel_err": res["actions_rel_err"].tolist(),
                                       "flags": np.nan_to_num(flags).tolist(), "seconds": elapsed}
    return out


def reference(population, n_orbits, seed, gyr, n_points):
    """Per orbit: the mean of the fudge along a long orbit with its best focal distance."""
    from galpy.actionAngle import actionAngleStaeckel

    from sklearn_selfcal._kernels.staeckel import GALPY_RO_KPC as ro, GALPY_VO_KMS as vo
    from sklearn_selfcal._kernels.staeckel import galpy_potential
    from sklearn_selfcal.coordinates import cylindrical_from_cartesian
    from sklearn_selfcal.datasets import make_orbits
    from sklearn_selfcal.potential import default_potential

    ps = make_orbits(population, n_orbits, n_times=n_points, duration=gyr,
                     random_state=seed).phase_space
    xyz, vxyz = ps[["x", "y", "z"]].to_numpy().T, ps[["v_x", "v_y", "v_z"]].to_numpy().T
    R, _, v_R, v_phi, _ = cylindrical_from_cartesian(xyz, vxyz)
    pot = galpy_potential(default_potential())
    shape = (n_orbits, n_points)
    best = np.full(n_orbits, np.inf)
    J_ref = np.full((2, n_orbits), np.nan)
    for delta in np.concatenate([np.arange(0.25, 2.0, 0.25), np.arange(2.0, 8.01, 0.5)]):
        finder = actionAngleStaeckel(pot=pot, delta=delta / ro, c=True)
        with warnings.catch_warnings():  # galpy's for the deltas that fail on an orbit: the
            warnings.simplefilter("ignore")  # reference keeps the delta that conserves it best
            J_R, _, J_z = finder(R / ro, v_R / vo, -v_phi / vo, xyz[2] / ro, vxyz[2] / vo)
        J_R, J_z = np.asarray(J_R).reshape(shape), np.asarray(J_z).reshape(shape)
        bad = (J_R > 9999) | (J_z > 9999)
        J_R[bad] = J_z[bad] = np.nan
        mean_R, mean_z = np.nanmean(J_R, axis=1), np.nanmean(J_z, axis=1)
        J = np.where((mean_R >= mean_z)[:, None], J_R, J_z)
        spread = np.nanstd(J, axis=1) / np.fmax(mean_R, mean_z)
        spread[np.mean(bad, axis=1) > 0.1] = np.inf
        better = spread < best
        best[better] = spread[better]
        J_ref[:, better] = mean_R[better] * ro * vo, mean_z[better] * ro * vo
    return J_ref, best, ps


def long_orbits(ps, n_points, gyr):
    """The orbits of ``ps`` (one per ``n_points`` rows) integrated by gala for ``gyr`` Gyr in
    0.5 Myr steps (its DOP853; independent of galpy's integrator and of the package's leapfrog)."""
    import astropy.units as u
    import gala.dynamics as gd
    import gala.potential as gp

    from sklearn_selfcal.potential import default_potential

    start = ps.iloc[::n_points]
    w0 = gd.PhaseSpacePosition(pos=start[["x", "y", "z"]].to_numpy().T * u.kpc,
                               vel=start[["v_x", "v_y", "v_z"]].to_numpy().T * u.km / u.s)
    return gp.Hamiltonian(default_potential()).integrate_orbit(
        w0, dt=0.5 * u.Myr, n_steps=int(round(gyr * 2000)))


def period_drift(orbits):
    """Chaos on the reference orbits: (2, n) relative change of the radial (pericentre) and vertical
    (upward plane crossing) period between the two halves of the long integration (least-squares
    slope of the event times against their number in each half; NaN with fewer than 3 events per
    half). A regular orbit's periods are fixed; a chaotic orbit's frequencies diffuse."""
    import astropy.units as u

    pos, vel = orbits.xyz.to_value(u.kpc), orbits.v_xyz.to_value(u.km / u.s)
    pos, vel = pos.reshape(3, pos.shape[1], -1), vel.reshape(3, vel.shape[1], -1)  # one orbit
    t = orbits.t.to_value(u.Myr)
    v_r = np.sum(pos * vel, axis=0) / np.sqrt(np.sum(pos**2, axis=0))
    drift = np.full((2, pos.shape[2]), np.nan)
    for i in range(pos.shape[2]):
        for e, s in enumerate((v_r[:, i], pos[2, :, i])):
            c = np.flatnonzero((s[:-1] < 0) & (s[1:] >= 0))
            when = t[c] - (t[c + 1] - t[c]) * s[c] / (s[c + 1] - s[c])
            h = when.size // 2
            if h >= 3:
                first = np.polyfit(np.arange(h), when[:h], 1)[0]
                second = np.polyfit(np.arange(when.size - h), when[h:], 1)[0]
                drift[e, i] = abs(first - second) / (0.5 * (first + second))
    return drift


def o2gf(orbits, count):
    """gala's find_actions_o2gf (N_max=8) on each half of the first ``count`` long orbits:
    (2 halves, 2, count) J_R, J_z (kpc km/s); NaN where the fit raised."""
    import astropy.units as u
    import gala.dynamics as gd

    n_t = orbits.t.size
    out = np.full((2, 2, count), np.nan)
    for i in range(count):
        for h, part in enumerate((slice(0, n_t // 2), slice(n_t // 2, None))):
            try:
                with warnings.catch_warnings():  # gala's "More unknowns than equations!" on
                    warnings.simplefilter("ignore")  # short orbits: the halves are compared
                    res = gd.find_actions_o2gf(orbits[part, i], N_max=8)
                J = np.ravel(res["actions"].to_value(u.kpc * u.km / u.s))
                out[h, :, i] = J[0], abs(J[2])
            except Exception:  # noqa: BLE001 - a failed torus fit is reported as NaN
                pass
    return out


def independent_reference(J_long, gala, drift):
    """Per orbit of the O2GF subsample: gala's torus fit (mean of the halves) where it is
    trustworthy (halves within O2GF_AGREE of each other, orbit regular by DRIFT_CHAOS), else
    the long average; and which one was used (True: O2GF)."""
    count = gala.shape[2]
    mean = gala.mean(axis=0)
    scale = np.fmax(mean[0], mean[1])
    with np.errstate(invalid="ignore"):
        agree = np.max(np.abs(gala[0] - gala[1]), axis=0) / scale <= O2GF_AGREE
    use = agree & ~reference_chaotic(drift[:, :count])
    return np.where(use, mean, J_long[:, :count]), use


def reference_chaotic(drift):
    """Orbits whose radial or vertical period drifts by more than DRIFT_CHAOS over the long
    integration."""
    return np.any(drift > DRIFT_CHAOS, axis=0)


def _flag_scores(error, flagged, chaotic, ok):
    """Precision and recall of ``flagged`` (at THRESHOLD) and the stars > 10 % off and trusted."""
    off = error > THRESHOLD
    f, o = flagged & ok, off & ok
    return {"precision": (o & f).sum() / max(f.sum(), 1), "recall": (o & f).sum() / max(o.sum(), 1),
            "n_flagged": int(f.sum()), "n_off": int(o.sum()),
            "missed": int(np.sum((error > 0.10) & ~(flagged | chaotic) & ok))}


def _error(J_R, J_z, J_ref):
    scale = np.fmax(J_ref[0], J_ref[1])[:, None]
    return np.fmax(np.abs(J_R - J_ref[0][:, None]), np.abs(J_z - J_ref[1][:, None])) / scale


def metrics(result, ref, n_orbits, n_times):
    """Scores of one method's output against the long average (every orbit) and against the
    independent reference (O2GF subsample), and of the chaotic bit against the long orbits."""
    J_R = np.asarray(result["J_R"]).reshape(n_orbits, n_times)
    J_z = np.asarray(result["J_z"]).reshape(n_orbits, n_times)
    rel = np.asarray(result["rel_err"]).reshape(n_orbits, n_times)
    flags = np.asarray(result["flags"]).astype(int).reshape(n_orbits, n_times)
    error = _error(J_R, J_z, ref["long"])
    ok = np.isfinite(error)
    chaotic = (flags & 2) != 0
    flagged = ~(rel <= THRESHOLD)
    e = error[ok]
    out = {"median": np.median(e), "p90": np.percentile(e, 90), "flagged": flagged[ok].mean(),
           "chaotic": chaotic[ok].mean(), "rate": e.size / result["seconds"],
           "long": _flag_scores(error, flagged, chaotic, ok)}
    # the chaotic bit against the long orbits' period drift (per star, its orbit's drift)
    ref_chaos = np.broadcast_to(ref["chaotic"][:, None], ok.shape)
    out["confirmed"] = (chaotic & ref_chaos & ok).sum() / max((chaotic & ok).sum(), 1)
    out["chaos_recall"] = (chaotic & ref_chaos & ok).sum() / max((ref_chaos & ok).sum(), 1)
    count = ref["independent"].shape[1]
    if count:
        sub = slice(0, count)
        err_ind = _error(J_R[sub], J_z[sub], ref["independent"])
        ok_ind = np.isfinite(err_ind)
        out["independent"] = _flag_scores(err_ind, flagged[sub], chaotic[sub], ok_ind)
        out["ind_error"] = (np.median(err_ind[ok_ind]), np.percentile(err_ind[ok_ind], 90))
        # the same on the regular orbits only (those with a torus fit), where actions exist
        regular = ok_ind & ref["o2gf_used"][:, None]
        out["regular"] = _flag_scores(err_ind, flagged[sub], chaotic[sub], regular)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-orbits", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--ref-gyr", type=float, default=10.0)
    parser.add_argument("--ref-points", type=int, default=400)
    parser.add_argument("--o2gf", type=int, default=0, help="orbits per population checked with gala")
    parser.add_argument("--before", help="directory holding main's sklearn_selfcal package")
    parser.add_argument("--populations", nargs="*")
    parser.add_argument("--worker", nargs=2, metavar=("IN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        tables = {k: pd.DataFrame(v) for k, v in json.load(open(args.worker[0])).items()}
        json.dump(transform(tables, METHODS), open(args.worker[1], "w"))
        return

    from sklearn_selfcal.datasets import ORBIT_POPULATIONS, make_orbits

    populations = args.populations or list(ORBIT_POPULATIONS)
    n, n_times = args.n_orbits, 16
    print(f"{n} orbits x {n_times} stars per population (2 Gyr); reference: {args.ref_points} "
          f"points over {args.ref_gyr:g} Gyr per orbit; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    tables, refs = {}, {}
    for population in populations:
        sample = make_orbits(population, n, n_times=n_times, duration=2.0, random_state=args.seed)
        tables[population] = sample.phase_space[COLUMNS]
        J_long, spread, ps = reference(population, n, args.seed, args.ref_gyr, args.ref_points)
        orbits = long_orbits(ps, args.ref_points, args.ref_gyr)
        drift = period_drift(orbits)
        count = min(args.o2gf, n)
        gala = o2gf(orbits, count)
        J_ind, used = independent_reference(J_long, gala, drift)
        refs[population] = {"long": J_long, "chaotic": reference_chaotic(drift),
                            "independent": J_ind, "o2gf_used": used}
        line = (f"reference {population}: best fudge's spread along the long orbit median "
                f"{100 * np.median(spread):.2f} %, p90 {100 * np.percentile(spread, 90):.2f} %; "
                f"{100 * np.mean(refs[population]['chaotic']):.0f} % of orbits chaotic (period "
                f"drift > {100 * DRIFT_CHAOS:g} % over {args.ref_gyr:g} Gyr)")
        if count:
            diff = np.fmax(*np.abs(J_long[:, :count] - J_ind)) / np.fmax(*J_ind)
            line += (f"; independent reference on {count} orbits: gala O2GF on {int(used.sum())} "
                     f"(long average vs O2GF there: median {100 * np.median(diff[used]):.2f} %, "
                     f"max {100 * np.max(diff[used], initial=0):.2f} %), long average on "
                     f"{count - int(used.sum())}")
        print(line, flush=True)

    results = {"after": transform(tables, METHODS)}
    if args.before:
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = os.path.join(tmp, "in.json"), os.path.join(tmp, "out.json")
            json.dump({k: v.to_dict(orient="list") for k, v in tables.items()}, open(src, "w"))
            env = {**os.environ, "PYTHONPATH": os.path.abspath(args.before)}
            subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", src, dst],
                           env=env, check=True, cwd=tmp)
            results["before"] = json.load(open(dst))
    print("\nflagged: actions_rel_err > 0.05; chaotic: bit 2. Precision / recall / missed (> 10 % off, "
          "neither flagged nor chaotic) against the long average (all orbits), the independent "
          "reference (O2GF subsample: O2GF where it holds, else the long average) and on the "
          "subsample's regular orbits only (O2GF); confirmed: chaotic stars whose long orbit "
          "drifts; found: drifting orbits' stars with the chaotic bit")
    header = (f"{'population':11s} {'code':6s} {'method':8s} {'median':>7s} {'p90':>7s} "
              f"{'ind.med':>7s} {'ind.p90':>7s} {'flagged':>7s} {'chaotic':>7s} | "
              f"{'long: prec/rec/missed':>21s} | "
              f"{'independent':>17s} | {'regular (O2GF)':>17s} | {'confirmed':>9s} {'found':>6s} "
              f"{'stars/s':>8s}")

    def scores(d):
        if d is None:
            return f"{'-':>17s}"
        return f"{100 * d['precision']:5.1f}/{100 * d['recall']:5.1f}/{d['missed']:4d}"

    for population in populations:
        print("\n" + header)
        for method in METHODS:
            for code in ("before", "after"):
                if code not in results:
                    continue
                r = metrics(results[code][f"{method}/{population}"], refs[population], n, n_times)
                ind = r.get("ind_error", (np.nan, np.nan))
                print(f"{population:11s} {code:6s} {method:8s} {100 * r['median']:6.2f}% "
                      f"{100 * r['p90']:6.2f}% {100 * ind[0]:6.2f}% {100 * ind[1]:6.2f}% "
                      f"{100 * r['flagged']:6.1f}% "
                      f"{100 * r['chaotic']:6.1f}% | {scores(r['long']):>21s} | "
                      f"{scores(r.get('independent'))} | {scores(r.get('regular'))} | "
                      f"{100 * r['confirmed']:8.1f}% {100 * r['chaos_recall']:5.1f}% "
                      f"{r['rate']:8.0f}")


if __name__ == "__main__":
    main()
