"""Accuracy of ActionTransformer's actions and of its flag, per Galactic population, before and after.

For each population of ``sklearn_selfcal.datasets.make_orbits`` (bulge, inner disk, solar disk,
outer disk, halo) the stars are the 16 points of 2 Gyr orbits (galpy's C DOP853), turned into
observables and passed through ActionTransformer. Their actions are compared with an independent
reference for each orbit: the same orbits integrated for ``--ref-gyr`` Gyr (default 10: many
radial periods even of long-period halo orbits) and sampled at ``--ref-points`` times, galpy's
Staeckel fudge evaluated at every point with the focal distance that best conserves the actions
along that orbit (chosen from 0.25 to 8 kpc), and averaged. ``--o2gf N`` also compares the
reference with gala's orbit-based ``find_actions_o2gf`` on N orbits per population.

Error of a star: ``max(|J_R - J_R,ref|, |J_z - J_z,ref|) / max(J_R,ref, J_z,ref)`` (the measure
``actions_rel_err`` estimates: an action much smaller than the other is held to the larger's scale). Printed per population and method:

* median and 90th percentile of the error;
* ``flagged``: fraction of stars with ``actions_rel_err > 0.05``; ``chaotic``: with the chaotic
  bit of ``actions_flags`` (the new code only);
* ``precision``: of the flagged stars, the fraction whose error exceeds 0.05; ``recall``: of the
  stars whose error exceeds 0.05, the fraction flagged;
* ``missed``: stars more than 10 % off that are not flagged (``actions_rel_err <= 0.05`` and, in
  the new code, not chaotic).

"before" is main's code (``--before DIR``, a copy of its ``sklearn_selfcal`` package, e.g.
``git -C /work/main archive main sklearn_selfcal | tar -x -C /tmp/actions_before``), run in a
subprocess on the same stars; "after" is the installed package, in this process.

Usage::

    python benchmarks/bench_actions_accuracy.py --before /tmp/actions_before
    python benchmarks/bench_actions_accuracy.py --n-orbits 40 --ref-gyr 6   # quicker
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


def o2gf(ps, n_points, count):
    """gala's find_actions_o2gf (6 Gyr orbits in 0.5 Myr steps, N_max=8) of the first ``count``
    orbits: (2, count) J_R, J_z (kpc km/s)."""
    import astropy.units as u
    import gala.dynamics as gd
    import gala.potential as gp

    from sklearn_selfcal.potential import default_potential

    start = ps.iloc[::n_points].iloc[:count]
    w0 = gd.PhaseSpacePosition(pos=start[["x", "y", "z"]].to_numpy().T * u.kpc,
                               vel=start[["v_x", "v_y", "v_z"]].to_numpy().T * u.km / u.s)
    orbits = gp.Hamiltonian(default_potential()).integrate_orbit(w0, dt=0.5 * u.Myr,
                                                                 n_steps=12_000)
    out = np.full((2, count), np.nan)
    for i in range(count):
        try:
            with warnings.catch_warnings():  # gala's "More unknowns than equations!" on
                warnings.simplefilter("ignore")  # short orbits: the fit's residual is checked
                res = gd.find_actions_o2gf(orbits[:, i], N_max=8)
            J = np.ravel(res["actions"].to_value(u.kpc * u.km / u.s))
            out[:, i] = J[0], abs(J[2])
        except Exception:  # noqa: BLE001 - a failed torus fit is reported as NaN
            pass
    return out


def metrics(result, J_ref, n_orbits, n_times, new):
    J_R = np.asarray(result["J_R"]).reshape(n_orbits, n_times)
    J_z = np.asarray(result["J_z"]).reshape(n_orbits, n_times)
    rel = np.asarray(result["rel_err"]).reshape(n_orbits, n_times)
    flags = np.asarray(result["flags"]).astype(int).reshape(n_orbits, n_times)
    scale = np.fmax(J_ref[0], J_ref[1])[:, None]
    error = np.fmax(np.abs(J_R - J_ref[0][:, None]), np.abs(J_z - J_ref[1][:, None])) / scale
    ok = np.isfinite(error)
    chaotic = (flags & 2) != 0
    flagged = ~(rel <= THRESHOLD)
    untrusted = flagged | chaotic if new else flagged
    off = error > THRESHOLD
    e, f, o = error[ok], flagged[ok], off[ok]
    return {"median": np.median(e), "p90": np.percentile(e, 90), "flagged": f.mean(),
            "chaotic": chaotic[ok].mean(), "precision": (o & f).sum() / max(f.sum(), 1),
            "recall": (o & f).sum() / max(o.sum(), 1), "n_off": int(o.sum()),
            "missed": int(np.sum((error > 0.10) & ~untrusted & ok)),
            "rate": e.size / result["seconds"]}


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
        J_ref, spread, ps = reference(population, n, args.seed, args.ref_gyr, args.ref_points)
        refs[population] = J_ref
        line = (f"reference {population}: spread of the fudge along the long orbit at its best "
                f"focal distance, median {100 * np.median(spread):.2f} %, p90 "
                f"{100 * np.percentile(spread, 90):.2f} %")
        if args.o2gf:
            gala = o2gf(ps, args.ref_points, args.o2gf)
            radial = J_ref[0, :args.o2gf] >= J_ref[1, :args.o2gf]
            diff = np.abs(np.where(radial, gala[0] / J_ref[0, :args.o2gf],
                                   gala[1] / J_ref[1, :args.o2gf]) - 1)
            line += (f"; vs gala o2gf on {args.o2gf} orbits: median {100 * np.nanmedian(diff):.2f} "
                     f"%, max {100 * np.nanmax(diff):.2f} %")
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
    header = (f"{'population':11s} {'code':6s} {'method':8s} {'median':>7s} {'p90':>7s} "
              f"{'flagged':>7s} {'chaotic':>7s} {'precis.':>7s} {'recall':>7s} {'>5%':>5s} "
              f"{'missed':>6s} {'stars/s':>8s}")
    for population in populations:
        print("\n" + header)
        for method in METHODS:
            for code in ("before", "after"):
                if code not in results:
                    continue
                r = metrics(results[code][f"{method}/{population}"], refs[population], n, n_times,
                            new=code == "after")
                print(f"{population:11s} {code:6s} {method:8s} {100 * r['median']:6.2f}% "
                      f"{100 * r['p90']:6.2f}% {100 * r['flagged']:6.1f}% "
                      f"{100 * r['chaotic']:6.1f}% {100 * r['precision']:6.1f}% "
                      f"{100 * r['recall']:6.1f}% {r['n_off']:5d} {r['missed']:6d} "
                      f"{r['rate']:8.0f}")


if __name__ == "__main__":
    main()
