"""Benchmark ActionTransformer: stars/s per core of each method, before and after, and the demo's flags.

Two samples, each passed through every method in fresh processes on one core (``n_jobs=1``,
galpy's OpenMP limited to one thread; the tables are built before the clock starts):

* ``--n-stars`` simulated disk stars (R = 4-14 kpc around the Sun's azimuth, as a Gaia x APOGEE
  catalogue), the sample of the issue's "grid speed" goal;
* the demo's parent sample: ``make_survey(20000, random_state=0)`` with ``LOGG <= 2.2`` and its
  true distances (what the run's spectro-photometric parallaxes estimate), inner Galaxy included;
  for ``method="auto"`` the fraction of stars flagged (``actions_rel_err > 0.05`` or chaotic) per
  2-kpc ring of Galactocentric R;
* with ``--million N``: the first ``N`` stars of the million-star run's parent sample
  (``make_survey(10**6, random_state=0)``, ``LOGG <= 2.2``, true distances; ``method="auto"``
  only), and its action step extrapolated to the whole parent sample on 2 cores (CPU time / 2).

"before" is main's code (``--before DIR``, a copy of its ``sklearn_selfcal`` package, e.g.
``git -C /work/main archive main sklearn_selfcal | tar -x -C /tmp/actions_before``); "after" the
installed package. The same process layout for both, run one after the other: compare the ratios,
and mind the load average printed (other processes share the cores).

Usage::

    python benchmarks/bench_actions.py --before /tmp/actions_before
    python benchmarks/bench_actions.py --n-stars 20000 --methods auto grid
    python benchmarks/bench_actions.py --methods auto --million 200000 --before /tmp/actions_before
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

METHODS = ("staeckel_fixed", "staeckel", "grid", "auto")
RINGS = np.arange(0.0, 16.1, 2.0)


def disk_sample(n, seed=0):
    """Disk stars (R = 4-14 kpc around the Sun's azimuth) as a Gaia x APOGEE catalogue."""
    from sklearn_selfcal.coordinates import galactocentric_to_icrs

    rng = np.random.default_rng(seed)
    R = rng.uniform(4, 14, n)
    ph = rng.uniform(2.4, 3.9, n)
    v_R, v_phi, v_z = rng.normal(0, 35, n), -rng.normal(225, 20, n), rng.normal(0, 20, n)
    xyz = np.array([R * np.cos(ph), R * np.sin(ph), rng.normal(0, 0.3, n)])
    vxyz = np.array([v_R * np.cos(ph) - v_phi * np.sin(ph), v_R * np.sin(ph) + v_phi * np.cos(ph),
                     v_z])
    obs = galactocentric_to_icrs(xyz, vxyz)
    return pd.DataFrame({"ra": obs["ra"], "dec": obs["dec"], "distance": obs["distance"],
                         "pmra": obs["pmra"], "pmdec": obs["pmdec"],
                         "VHELIO_AVG": obs["radial_velocity"]})


def demo_sample(n_survey=20_000):
    """The demo's parent sample (LOGG <= 2.2) with its true distances (of ``make_survey(n_survey)``)."""
    from sklearn_selfcal.datasets import make_survey

    survey = make_survey(n_survey, n_pixels=10, random_state=0)
    frame = survey.frame.assign(distance=survey.truth["distance"].to_numpy())
    keep = frame["LOGG"] <= 2.2
    return frame.loc[keep, ["ra", "dec", "distance", "pmra", "pmdec", "VHELIO_AVG"]]


def worker(path_in, path_out, methods):
    """Time each method on each sample in this process (one core)."""
    from threadpoolctl import threadpool_limits

    from sklearn_selfcal import ActionTransformer

    samples = {k: pd.DataFrame(v) for k, v in json.load(open(path_in)).items()}
    out = {}
    with warnings.catch_warnings(), threadpool_limits(1, user_api="openmp"):
        warnings.simplefilter("ignore")  # the warnings count what this script measures
        for method in methods:
            for name, frame in samples.items():
                if name == "million" and method != "auto":
                    continue
                at = ActionTransformer(distance="distance", method=method, n_jobs=1,
                                       orbit_check=method == "auto")
                at.transform(frame.iloc[:20])  # tables built, numba compiled
                t0, c0 = time.perf_counter(), time.process_time()
                res = at.set_output(transform="pandas").transform(frame)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                entry = {"wall": wall, "cpu": cpu, "n": len(frame)}
                if method == "auto":
                    flags = (np.nan_to_num(res["actions_flags"].to_numpy()).astype(int)
                             if "actions_flags" in res else np.zeros(len(res), dtype=int))
                    entry.update(R=res["R"].tolist(), rel_err=res["actions_rel_err"].tolist(),
                                 chaotic=((flags & 2) != 0).tolist(),
                                 tabulated=((flags & 4) != 0).tolist())
                out[f"{method}/{name}"] = entry
    json.dump(out, open(path_out, "w"))


def run(code_dir, samples, methods):
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.json"), os.path.join(tmp, "out.json")
        json.dump({k: v.to_dict(orient="list") for k, v in samples.items()}, open(src, "w"))
        env = dict(os.environ)
        if code_dir:
            env["PYTHONPATH"] = os.path.abspath(code_dir)
        subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", src, dst,
                        "--methods", *methods], env=env, check=True, cwd=tmp)
        return json.load(open(dst))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-stars", type=int, default=50_000)
    parser.add_argument("--before", help="directory holding main's sklearn_selfcal package")
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument("--million", type=int, default=0,
                        help="also time 'auto' on this many stars of the 10^6-star run's parent sample")
    parser.add_argument("--worker", nargs=2, metavar=("IN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker, args.methods)
        return
    samples = {"disk": disk_sample(args.n_stars), "demo parent": demo_sample()}
    n_parent = 0
    if args.million:
        parent = demo_sample(10**6)
        n_parent = len(parent)
        samples["million"] = parent.iloc[:args.million]
    print(f"{args.n_stars:,} disk stars; demo parent sample {len(samples['demo parent']):,} stars; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    results = {}
    for code in ("before", "after"):
        if code == "before" and not args.before:
            continue
        t0 = time.perf_counter()
        results[code] = run(args.before if code == "before" else None, samples, args.methods)
        print(f"{code}: {time.perf_counter() - t0:.0f} s; load average {os.getloadavg()[0]:.1f}")
    print(f"\n{'sample':12s} {'method':15s} " + " ".join(f"{c + ' stars/CPU-s':>20s}" for c in results)
          + ("  after/before" if len(results) == 2 else ""))
    for name in samples:
        for method in args.methods:
            if name == "million" and method != "auto":
                continue
            rates = [results[c][f"{method}/{name}"]["n"] / results[c][f"{method}/{name}"]["cpu"]
                     for c in results]
            ratio = f"  {rates[1] / rates[0]:12.2f}x" if len(rates) == 2 else ""
            print(f"{name:12s} {method:15s} " + " ".join(f"{r:20,.0f}" for r in rates) + ratio)
    if "auto" not in args.methods:
        return
    if n_parent:
        print(f"\nthe 10^6-star run's parent sample ({n_parent:,} stars), method='auto' on 2 cores, "
              "extrapolated from the rate above: " + ", ".join(
                  f"{code} {n_parent / (2 * r['auto/million']['n'] / r['auto/million']['cpu']):.0f} s"
                  for code, r in results.items()))
    for name in samples:
        print(f"\n{name}, method='auto': flagged fraction (actions_rel_err > 0.05 or chaotic) per "
              "2-kpc ring of R")
        print(f"{'ring (kpc)':12s} {'stars':>7s} " + " ".join(f"{c:>8s}" for c in results)
              + (f" {'chaotic':>8s} {'no integration':>15s}" if "after" in results else ""))
        for lo, hi in zip(RINGS[:-1], RINGS[1:]):
            cells, n_ring = [], 0
            for code in results:
                r = results[code][f"auto/{name}"]
                R = np.asarray(r["R"], dtype=float)
                ring = (R >= lo) & (R < hi)
                n_ring = int(ring.sum())
                flagged = ~(np.asarray(r["rel_err"], dtype=float) <= 0.05) | np.asarray(r["chaotic"])
                cells.append(f"{100 * flagged[ring].mean():7.1f}%" if n_ring else f"{'-':>8s}")
            extra = ""
            if "after" in results and n_ring:
                r = results["after"][f"auto/{name}"]
                R = np.asarray(r["R"], dtype=float)
                ring = (R >= lo) & (R < hi)
                extra = (f" {100 * np.mean(np.asarray(r['chaotic'])[ring]):7.1f}% "
                         f"{100 * np.mean(np.asarray(r['tabulated'])[ring]):14.1f}%")
            if n_ring:
                print(f"{lo:4.0f}-{hi:<7.0f} {n_ring:7d} " + " ".join(cells) + extra)


if __name__ == "__main__":
    main()
