"""Benchmark ActionTransformer: stars per second against gala's orbit-based actions, and peak memory.

All methods run in the same process on the same simulated disk stars:

* the baseline: gala's ``find_actions_o2gf`` (integrate each orbit for 5 Gyr, fit a torus with
  N_max=6), timed on a few stars and extrapolated per star;
* the action kernels on one core: galpy's direct Staeckel fudge (the focal distance of each
  orbit) against the interpolation grid (``method="grid"``), and the grid's error against it;
* ``ActionTransformer`` end to end (sky coordinates -> phase space, energy, actions) on
  ``--n-stars`` stars, for the fixed focal distance without the orbit check (the previous
  default), the grid without the check (the fast option) and the default (``method="auto"``
  with the orbit check): on one core (``n_jobs=1`` and galpy's OpenMP limited to one thread),
  and the default with ``--n-jobs`` loky worker processes.

Peak memory: the Python-heap peak of the serial transform (tracemalloc, which sees NumPy arrays) and
the process's maximum resident set size (resource.getrusage).

Usage::

    python benchmarks/bench_actions.py                      # 10^5 stars, 1 and 2 cores
    python benchmarks/bench_actions.py --n-stars 50000      # the paper's disk sample
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc
import warnings

import astropy.units as u
import gala.dynamics as gd
import gala.potential as gp
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from sklearn_selfcal._kernels.staeckel import (GALPY_RO_KPC, GALPY_VO_KMS, galpy_potential,
                                               make_staeckel)
from sklearn_selfcal._kernels.staeckel_grid import cached_tables, grid_actions
from sklearn_selfcal.actions import ActionTransformer
from sklearn_selfcal.coordinates import cylindrical_from_cartesian, galactocentric_to_icrs
from sklearn_selfcal.potential import default_potential


def simulate(n, seed=0):
    """Disk stars (R = 4-14 kpc around the Sun's azimuth) as a Gaia x APOGEE catalogue."""
    rng = np.random.default_rng(seed)
    R = rng.uniform(4, 14, n)
    ph = rng.uniform(2.4, 3.9, n)
    v_R, v_phi, v_z = rng.normal(0, 35, n), -rng.normal(225, 20, n), rng.normal(0, 20, n)
    xyz = np.array([R * np.cos(ph), R * np.sin(ph), rng.normal(0, 0.3, n)])
    vxyz = np.array([v_R * np.cos(ph) - v_phi * np.sin(ph), v_R * np.sin(ph) + v_phi * np.cos(ph), v_z])
    obs = galactocentric_to_icrs(xyz, vxyz)
    return pd.DataFrame({"ra": obs["ra"], "dec": obs["dec"], "parallax": 1.0 / obs["distance"],
                         "pmra": obs["pmra"], "pmdec": obs["pmdec"],
                         "VHELIO_AVG": obs["radial_velocity"]}), xyz, vxyz


def time_o2gf(xyz, vxyz, n_steps=5000, n_max=6):
    """Seconds per star of gala's orbit-based actions (integration + torus fit)."""
    potential = default_potential()
    t0 = time.perf_counter()
    w0 = gd.PhaseSpacePosition(pos=xyz * u.kpc, vel=vxyz * u.km / u.s)
    orbits = gp.Hamiltonian(potential).integrate_orbit(w0, dt=1.0 * u.Myr, n_steps=n_steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(xyz.shape[1]):
            gd.find_actions_o2gf(orbits[:, i], N_max=n_max)
    return (time.perf_counter() - t0) / xyz.shape[1]


def time_kernels(xyz, vxyz):
    """Stars/s of the direct fudge and of the grid on one core, and the grid's relative errors."""
    import joblib
    import numpy as np

    potential = default_potential()
    focal, grid = cached_tables(potential, joblib.hash(potential))
    finder = make_staeckel(potential)
    pot = galpy_potential(potential)
    R, _, v_R, v_phi, _ = cylindrical_from_cartesian(xyz, vxyz)
    ro, vo = GALPY_RO_KPC, GALPY_VO_KMS
    args = (R / ro, xyz[2] / ro, v_R / vo, -v_phi / vo, vxyz[2] / vo)
    with threadpool_limits(1, user_api="openmp"):
        t0 = time.perf_counter()
        J_R, J_z, delta = grid_actions(grid, pot, *args)
        t_grid = time.perf_counter() - t0
        t0 = time.perf_counter()
        jr, _, jz = finder(args[0], args[2], args[3], args[1], args[4], delta=delta)
        t_direct = time.perf_counter() - t0
    ok = np.isfinite(J_R)
    errors = [np.abs(a[ok] / b[ok] - 1) for a, b in ((J_R, jr), (J_z, jz))]
    return R.size / t_direct, R.size / t_grid, errors, ok.mean()


def time_transform(df, n_jobs, omp_threads=None, trace=False, **params):
    """Wall and CPU seconds (CPU of this process's threads only) and the traced peak (bytes)."""
    ActionTransformer(**params).transform(df.iloc[:10])  # OpenMP runtime loaded, tables built
    with threadpool_limits(omp_threads, user_api="openmp"):
        # warm up every worker (imports, galpy finder): many small chunks reach all of them
        ActionTransformer(n_jobs=n_jobs, chunk_size=20, **params).transform(
            df.iloc[:40 * max(1, n_jobs)])
        at = ActionTransformer(n_jobs=n_jobs, **params)
        if trace:
            tracemalloc.start()
        t0, c0 = time.perf_counter(), time.process_time()
        out = at.transform(df)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        peak = tracemalloc.get_traced_memory()[1] if trace else None
        if trace:
            tracemalloc.stop()
    assert np.isfinite(out[:, 10:13]).mean() > 0.99
    return elapsed, cpu, peak


def _load():
    return f"load average {os.getloadavg()[0]:.1f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-stars", type=int, default=100_000)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--n-o2gf", type=int, default=3, help="stars timed with find_actions_o2gf")
    parser.add_argument("--skip-serial", action="store_true", help="only the parallel runs")
    args = parser.parse_args(argv)
    n = args.n_stars

    df, xyz, vxyz = simulate(n)
    print(f"{n:,} simulated disk stars; {os.cpu_count()} cores ({_load()}: other processes share "
          "the cores when it exceeds the number of busy workers)")

    o2gf = time_o2gf(xyz[:, :args.n_o2gf], vxyz[:, :args.n_o2gf])
    print(f"baseline, gala find_actions_o2gf (5 Gyr orbit, N_max=6): {o2gf:.2f} s/star "
          f"= {1 / o2gf:.2f} stars/s on one core (timed on {args.n_o2gf} stars)")

    import numpy as np

    t0 = time.perf_counter()
    ActionTransformer().transform(df.iloc[:10])
    ActionTransformer(method="staeckel_fixed").transform(df.iloc[:10])
    print(f"tables built once per process: {time.perf_counter() - t0:.1f} s "
          "(focal distances and action grids for the per-orbit and the fixed focal distance)")
    direct, tabulated, errors, inside = time_kernels(xyz, vxyz)
    print(f"kernels, one core: direct Staeckel fudge {direct:,.0f} stars/s; grid {tabulated:,.0f} "
          f"stars/s ({tabulated / direct:.1f}x); grid vs direct: J_R median "
          f"{np.median(errors[0]):.1e} (p90 {np.percentile(errors[0], 90):.1e}), J_z median "
          f"{np.median(errors[1]):.1e} (p90 {np.percentile(errors[1], 90):.1e}); "
          f"{100 * inside:.1f} % of stars inside the tables [{_load()}]")
    if not args.skip_serial:
        runs = [("fixed delta, no check (previous default)",
                 {"method": "staeckel_fixed", "orbit_check": False}),
                ("grid, no check", {"method": "grid", "orbit_check": False}),
                ("auto with orbit check (default)", {})]
        for label, params in runs:
            elapsed, cpu, peak = time_transform(df, n_jobs=1, omp_threads=1, trace=not params,
                                                **params)
            memory = f"; peak traced memory {peak / 2**20:.0f} MiB" if peak else ""
            print(f"ActionTransformer {label}, one core: {elapsed:.2f} s = {n / elapsed:,.0f} "
                  f"stars/s ({n / cpu:,.0f} per CPU-second); {n / elapsed * o2gf:,.0f}x the "
                  f"baseline{memory} [{_load()}]")
    elapsed, _, _ = time_transform(df, n_jobs=args.n_jobs)
    print(f"ActionTransformer default, n_jobs={args.n_jobs} (loky processes): {elapsed:.2f} s = "
          f"{n / elapsed:,.0f} stars/s [{_load()}]")
    print(f"max resident set size of this process: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")


if __name__ == "__main__":
    main()
