"""The torus fit's actions against gala's torus fit, per population (the go/no-go measure).

For the bulge, halo and inner-disk populations of ``make_orbits`` (``--n-orbits`` orbits x 16
stars, 2 Gyr), the references of ``bench_actions_accuracy.py`` are computed (gala's O2GF on each
half of an 8 Gyr gala orbit where the halves agree and the orbit is regular: the *regular*
orbits). Every star is followed as the orbit check follows it
(:func:`~sklearn_selfcal._kernels.orbit_sampling.sample_orbits` with the check's settings, or
``--points-per-period`` / ``--max-points`` / ``--events`` to try others) and its points are
fitted (:func:`~sklearn_selfcal._kernels.torus_fit.torus_fit`). Printed per population, on the
stars of regular orbits: the fraction *usable* (estimated error < ``--usable``), the median / p90
/ max error there, the fraction of usable stars more than 5 % off (the estimate's honesty), and
``method="auto"`` of this process's code on the same stars; CPU seconds of the sampling and of the
fit. References are cached in ``--cache`` (they take minutes).

Usage::

    python benchmarks/bench_torus_fit.py --seed 2024 --n-orbits 20
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_actions_accuracy as accuracy  # noqa: E402


def references(population, n, seed, cache):
    """The long average, the independent reference and where it is gala's O2GF (cached)."""
    path = os.path.join(cache, f"{population}_{seed}_{n}.npz") if cache else None
    if path and os.path.exists(path):
        d = np.load(path)
        return d["J_long"], d["J_ind"], d["used"]
    J_long, _, ps = accuracy.reference(population, n, seed, 8.0, 300)
    orbits = accuracy.long_orbits(ps, 300, 8.0)
    drift = accuracy.period_drift(orbits)
    J_ind, used = accuracy.independent_reference(J_long, accuracy.o2gf(orbits, n), drift)
    if path:
        os.makedirs(cache, exist_ok=True)
        np.savez(path, J_long=J_long, J_ind=J_ind, used=used)
    return J_long, J_ind, used


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-orbits", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--populations", nargs="*", default=["bulge", "halo", "inner_disk"])
    parser.add_argument("--points-per-period", type=float)
    parser.add_argument("--max-points", type=int)
    parser.add_argument("--min-points", type=int)
    parser.add_argument("--events", type=int)
    parser.add_argument("--n-max", type=int)
    parser.add_argument("--eta", type=float)
    parser.add_argument("--usable", type=float, default=0.025)
    parser.add_argument("--cache", default="/tmp/o2gf_ref")
    parser.add_argument("--no-auto", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="list auto's stars > 5 % off unflagged")
    args = parser.parse_args(argv)

    from sklearn_selfcal._kernels import action_methods as am
    from sklearn_selfcal._kernels import torus_fit as tf
    from sklearn_selfcal._kernels.orbit_sampling import (circular_period_table, force_table,
                                                         potential_functions, sample_orbits)
    from sklearn_selfcal._kernels.staeckel import GALPY_RO_KPC as ro, GALPY_VO_KMS as vo
    from sklearn_selfcal._kernels.staeckel import galpy_potential
    from sklearn_selfcal.coordinates import cylindrical_from_cartesian
    from sklearn_selfcal.datasets import make_orbits
    from sklearn_selfcal.potential import default_potential

    pot = galpy_potential(default_potential())
    table = force_table(pot)
    _, E_c, T_c = circular_period_table(pot)
    phi, _ = potential_functions(pot)
    per_period = args.points_per_period or tf.FIT_POINTS_PER_PERIOD
    n_min = args.min_points or tf.FIT_MIN_POINTS
    n_max_points = args.max_points or tf.FIT_MAX_POINTS
    events = args.events or tf.FIT_EVENTS
    n_max = args.n_max or tf.N_MAX
    n = args.n_orbits
    print(f"seed {args.seed}, {n} orbits x 16 stars per population; points per period "
          f"{per_period:g}, {n_min}-{n_max_points} points, {events} events per half, N_max "
          f"{n_max}; load average {os.getloadavg()[0]:.1f}")
    for population in args.populations:
        sample = make_orbits(population, n, n_times=16, duration=2.0, random_state=args.seed)
        J_long, J_ind, used = references(population, n, args.seed, args.cache)
        xyz = sample.phase_space[["x", "y", "z"]].to_numpy().T
        vxyz = sample.phase_space[["v_x", "v_y", "v_z"]].to_numpy().T
        R, _, v_R, v_phi, _ = cylindrical_from_cartesian(xyz, vxyz)
        R, z, v_R, v_T, v_z = R / ro, xyz[2] / ro, v_R / vo, -v_phi / vo, vxyz[2] / vo
        E = phi(R, z) + 0.5 * (v_R**2 + v_T**2 + v_z**2)
        period = np.interp(E, E_c, T_c)
        c0 = time.process_time()
        points, n_points, _, _ = sample_orbits(
            pot, R, z, v_R, v_T, v_z, interval=period / per_period, n_min=n_min,
            n_max=n_max_points, n_events=events, t_max=am.CHECK_MAX_PERIODS * period,
            eta=args.eta or tf.FIT_ETA, table=table)
        c1 = time.process_time()
        tf.torus_fit(points[:, :, :1], n_points[:1], n_max)  # compiled
        c2 = time.process_time()
        J_R, J_z, err_est = tf.torus_fit(points, n_points, n_max)
        c3 = time.process_time()
        J_R, J_z = J_R * ro * vo, J_z * ro * vo
        ref_R, ref_z = np.repeat(J_ind[0], 16), np.repeat(J_ind[1], 16)
        scale = np.fmax(ref_R, ref_z)
        err = np.fmax(abs(J_R - ref_R), abs(J_z - ref_z)) / scale
        regular = np.repeat(used, 16)
        usable = regular & (err_est < args.usable)
        p = lambda e: (lambda e: f"median {100 * np.median(e):.2f} %, p90 {100 * np.percentile(e, 90):.2f} %, "
                       f"max {100 * np.max(e):.2f} %" if e.size else "-")(e[np.isfinite(e)])
        line = (f"{population}: sampling {c1 - c0:.2f} CPU-s, fit {c3 - c2:.2f} CPU-s for {R.size} "
                f"stars (points median {np.median(n_points):.0f}); regular stars {regular.sum()}: "
                f"usable {100 * usable.sum() / max(regular.sum(), 1):.0f} %, error there {p(err[usable])}, "
                f"> 5 % off {100 * np.mean(err[usable] > 0.05) if usable.any() else 0:.1f} %; "
                f"all regular: {p(err[regular & np.isfinite(err)])}; "
                f"usable on non-regular orbits {100 * np.mean(err_est[~regular] < args.usable):.0f} %")
        if not args.no_auto:
            auto = accuracy.transform({population: sample.phase_space[accuracy.COLUMNS]},
                                      ("auto",))[f"auto/{population}"]
            err_auto = np.fmax(abs(np.array(auto["J_R"]) - ref_R),
                               abs(np.array(auto["J_z"]) - ref_z)) / scale
            line += f"; auto on the usable: {p(err_auto[usable])}, all regular: {p(err_auto[regular])}"
            # auto's flag against the independent reference (every orbit: O2GF where it holds)
            flags = np.asarray(auto["flags"]).astype(int)
            flagged, chaotic = ~(np.asarray(auto["rel_err"]) <= 0.05), (flags & 2) != 0
            ok = np.isfinite(err_auto)
            d = accuracy._flag_scores(err_auto, flagged, chaotic, ok)
            torus = (flags & 8) != 0
            line += (f"\n  auto vs independent: {p(err_auto[ok])}; flagged {100 * flagged[ok].mean():.1f} %, "
                     f"chaotic {100 * chaotic[ok].mean():.1f} %, torus fit {100 * torus[ok].mean():.1f} %; "
                     f"precision {100 * d['precision']:.0f} %, recall {100 * d['recall']:.0f} %, "
                     f"missed > 10 % {d['missed']}; unflagged > 5 % off: "
                     f"{int(np.sum(~flagged & ~chaotic & ok & (err_auto > 0.05)))}")
            if args.verbose:
                miss = np.flatnonzero(~flagged & ~chaotic & ok & (err_auto > 0.05))
                for i in miss:
                    line += (f"\n    star {i} (orbit {i // 16}, regular {regular[i]}): off "
                             f"{100 * err_auto[i]:.1f} %, rel_err {100 * auto['rel_err'][i]:.1f} %, "
                             f"flags {flags[i]}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
