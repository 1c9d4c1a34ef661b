"""Benchmark ActionTransformer: stars per second against gala's orbit-based actions, and peak memory.

Both methods run in the same process on the same simulated disk stars:

* the baseline: gala's ``find_actions_o2gf`` (integrate each orbit for 5 Gyr, fit a torus with
  N_max=6), timed on a few stars and extrapolated per star;
* ``ActionTransformer`` end to end (sky coordinates -> phase space, energy, Staeckel actions) on
  ``--n-stars`` stars: on one core (``n_jobs=1`` and galpy's OpenMP limited to one thread), with
  ``n_jobs=1`` and galpy's OpenMP threads on all cores (the default), and with ``--n-jobs`` loky
  worker processes.

Peak memory: the Python-heap peak of the serial transform (tracemalloc, which sees NumPy arrays) and
the process's maximum resident set size (resource.getrusage).

Usage::

    python benchmarks/bench_actions.py                      # 10^5 stars, 1 and 2 cores
    python benchmarks/bench_actions.py --n-stars 1000000    # the 10^6-star target (< 1 min on 2 cores)
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

from sklearn_selfcal.actions import ActionTransformer
from sklearn_selfcal.coordinates import galactocentric_to_icrs
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


def time_transform(df, n_jobs, omp_threads=None, trace=False):
    """Wall and CPU seconds (CPU of this process's threads only) and the traced peak (bytes)."""
    ActionTransformer().transform(df.iloc[:10])  # load galpy's OpenMP runtime before limiting it
    with threadpool_limits(omp_threads, user_api="openmp"):
        # warm up every worker (imports, galpy finder): many small chunks reach all of them
        ActionTransformer(n_jobs=n_jobs, chunk_size=20).transform(df.iloc[:40 * max(1, n_jobs)])
        at = ActionTransformer(n_jobs=n_jobs)
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

    if not args.skip_serial:
        elapsed, cpu, peak = time_transform(df, n_jobs=1, omp_threads=1, trace=True)
        print(f"ActionTransformer, one core (n_jobs=1, 1 OpenMP thread): {elapsed:.2f} s = "
              f"{n / elapsed:,.0f} stars/s ({n / cpu:,.0f} per CPU-second); "
              f"{n / elapsed * o2gf:,.0f}x the baseline; peak traced memory {peak / 2**20:.0f} MiB "
              f"[{_load()}]")
        elapsed, cpu, _ = time_transform(df, n_jobs=1)
        print(f"ActionTransformer, n_jobs=1 with galpy's OpenMP on all cores: {elapsed:.2f} s = "
              f"{n / elapsed:,.0f} stars/s [{_load()}]")
    elapsed, _, _ = time_transform(df, n_jobs=args.n_jobs)
    print(f"ActionTransformer, n_jobs={args.n_jobs} (loky processes): {elapsed:.2f} s = "
          f"{n / elapsed:,.0f} stars/s [{_load()}]")
    print(f"max resident set size of this process: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")


if __name__ == "__main__":
    main()
