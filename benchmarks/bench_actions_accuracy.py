"""Accuracy of ActionTransformer's methods per Galactic population: actions along integrated orbits.

No reference solver: true actions are conserved along an orbit, so for each population of
``sklearn_selfcal.datasets.make_orbits`` (bulge, inner disk, solar disk, outer disk, halo) every
orbit is integrated for 2 Gyr in MilkyWayPotential2022 (galpy's C DOP853), 16 points along it are
turned into observables and passed through ActionTransformer with each method, all in this
process. Printed per population and method:

* median and 90th percentile over orbits of the spread (standard deviation over mean) of the
  larger of J_R, J_z along each orbit -- the measure of issue 14;
* ``>10%``: points whose action is more than 10 % from their orbit's mean, and ``missed``: those
  among them with ``actions_rel_err <= 0.05`` (called good by the default threshold);
* ``flagged``: the fraction of points with ``actions_rel_err > 0.05``;
* stars/s of the whole transform (sky -> phase space -> actions -> accuracy) with ``n_jobs=1``
  and galpy's OpenMP limited to one thread (the tables are built before timing).

Usage::

    python benchmarks/bench_actions_accuracy.py                 # 100 orbits per population
    python benchmarks/bench_actions_accuracy.py --n-orbits 40   # quicker
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from sklearn_selfcal import ActionTransformer
from sklearn_selfcal.actions import ACCURACY_COLUMN
from sklearn_selfcal.datasets import ORBIT_POPULATIONS, make_orbits

METHODS = {  # label -> parameters
    "fixed delta": {"method": "staeckel_fixed"},
    "staeckel": {"method": "staeckel"},
    "auto (default)": {"method": "auto"},
    "grid": {"method": "grid"},
}
THRESHOLD = 0.05


def measure(sample, params):
    at = ActionTransformer(distance="distance", radial_velocity="radial_velocity", **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        out = at.set_output(transform="pandas").fit_transform(sample.phase_space)
        elapsed = time.perf_counter() - t0
    shape = (sample.n_orbits, sample.n_times)
    J_R, J_z = (out[c].to_numpy().reshape(shape) for c in ("J_R", "J_z"))
    J = np.where((np.nanmean(J_R, axis=1) >= np.nanmean(J_z, axis=1))[:, None], J_R, J_z)
    spread = np.nanstd(J, axis=1) / np.nanmean(J, axis=1)
    off = np.abs(J / np.nanmean(J, axis=1, keepdims=True) - 1) > 0.10
    err = out[ACCURACY_COLUMN].to_numpy().reshape(shape)
    return {"median": np.nanmedian(spread), "p90": np.nanpercentile(spread, 90),
            "off": int(off.sum()), "missed": int(np.sum(off & (err <= THRESHOLD))),
            "flagged": float(np.mean(err[np.isfinite(err)] > THRESHOLD)),
            "rate": J.size / elapsed}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-orbits", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)
    print(f"{args.n_orbits} orbits x 16 points per population, 2 Gyr; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    t0 = time.perf_counter()
    warm = make_orbits("solar_disk", 2, n_times=2, duration=0.01).phase_space
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in ("staeckel_fixed", "auto"):
            ActionTransformer(method=method, distance="distance",
                              radial_velocity="radial_velocity").transform(warm)
    print(f"tables (focal distances, action grids for the table and the fixed delta) built in "
          f"{time.perf_counter() - t0:.1f} s")
    header = (f"{'population':11s} {'method':15s} {'median':>7s} {'p90':>7s} {'>10%':>5s} "
              f"{'missed':>6s} {'flagged':>7s} {'stars/s':>8s}")
    for population in ORBIT_POPULATIONS:
        sample = make_orbits(population, args.n_orbits, random_state=args.seed)
        print("\n" + header)
        for label, params in METHODS.items():
            with threadpool_limits(1, user_api="openmp"):
                r = measure(sample, params)
            print(f"{population:11s} {label:15s} {100 * r['median']:6.2f}% {100 * r['p90']:6.2f}% "
                  f"{r['off']:5d} {r['missed']:6d} {100 * r['flagged']:6.1f}% {r['rate']:8.0f}")


if __name__ == "__main__":
    main()
