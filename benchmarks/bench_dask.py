"""Time the Dask paths against the in-memory ones in the same run, with the workers' peak memory.

For a few catalogue sizes, on a ``LocalCluster`` of two worker processes (one thread each, the
machine has two cores): the calibrator's fit (:func:`fit_calibrator_distributed` against
``NuisanceCalibrator.fit``), the radial profile and the median and mean face-on maps (the
median's shuffle by bin against the mean's plain sums is the price of exact medians), and the
parallax model's fit on a row-chunked feature matrix (:func:`fit_parallax_distributed` against
``SpectroPhotometricParallaxRegressor.fit``). The catalogue is persisted on the workers first (its
transfer is timed apart), so the times compare computations. Every size gets a new cluster, so
the workers' peak resident memory (``ru_maxrss``) is that size's. Every distributed
result is checked against the in-memory one.

On two cores the cluster cannot beat the in-memory code (same two cores, plus serialisation and
scheduling); the point is the overhead per pass and that memory per worker follows the partition
size, not the catalogue's.

Run::

    python benchmarks/bench_dask.py [--sizes 100000 1000000] [--parallax 20000x1000 50000x2000]
"""

import argparse
import resource
import time
import warnings

import numpy as np
import pandas as pd

ABUNDANCES = ["FE_H", "MG_FE", "O_FE", "SI_FE", "NI_FE", "CA_FE"]


def catalogue(n, rng):
    """A calibrator-ready catalogue: orbits (kpc km/s), positions (kpc), nuisances, abundances."""
    R = rng.uniform(2.0, 16.0, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    frame = pd.DataFrame({
        "J_R": rng.uniform(1.0, 300.0, n), "J_z": rng.uniform(1.0, 90.0, n),
        "L_z": -R * 220.0 + rng.normal(0, 50, n), "x": -R * np.cos(phi), "y": R * np.sin(phi),
        "R": R, "LOGG": rng.uniform(0.5, 3.0, n), "TEFF": rng.uniform(4000.0, 5200.0, n),
        "TELESCOPE": np.where(rng.random(n) < 0.4, "lco25m", "apo25m"),
        "ALPHA_M": rng.uniform(-0.05, 0.3, n),
    })
    for k, name in enumerate(ABUNDANCES):
        frame[name] = (0.3 - 0.05 * R + 0.02 * k * (frame["LOGG"] - 2.2)
                       + rng.normal(0, 0.05, n))
        frame[f"{name}_ERR"] = rng.uniform(0.01, 0.05, n)
    return frame


def timed(func, repeat=1):
    """Best time of ``repeat`` calls (s) and the last result."""
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = func()
        best = min(best, time.perf_counter() - t0)
    return best, out


def best2(func):
    """Best of two calls: the first one pays for warm-up (imports, caches)."""
    return timed(func, repeat=2)


def wait_for(collection):
    """Block until a persisted collection is in the workers' memory; return it."""
    from distributed import wait

    wait(collection)
    return collection


class WorkerPeaks:
    """Peak resident memory (MB) of every worker process, sampled every 20 ms from the client.

    (``ru_maxrss`` cannot be used: worker processes forked from the client inherit its peak.)
    """

    def __init__(self, client):
        import os
        import threading

        import psutil

        self.processes = [psutil.Process(pid) for pid in client.run(os.getpid).values()]
        self.start = [p.memory_info().rss for p in self.processes]
        self.peaks = list(self.start)
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self):
        while self.running:
            for i, p in enumerate(self.processes):
                self.peaks[i] = max(self.peaks[i], p.memory_info().rss)
            time.sleep(0.02)

    def stop(self):
        self.running = False
        self.thread.join()
        return sorted((peak / 1e6, start / 1e6) for peak, start in zip(self.peaks, self.start))


def bench_catalogue(client, n, n_partitions, rng):
    import dask.dataframe as dd

    from sklearn_selfcal import NuisanceCalibrator
    from sklearn_selfcal.gradients import radial_abundance_profile
    from sklearn_selfcal.maps import face_on_map
    from sklearn_selfcal.scaleout import (face_on_map_distributed, fit_calibrator_distributed,
                                          radial_profile_distributed)

    frame = catalogue(n, rng)
    t_persist, ddf = timed(lambda: wait_for(client.persist(
        dd.from_pandas(frame, npartitions=n_partitions))))
    params = dict(abundance_columns=ABUNDANCES, nuisance_columns=["LOGG", "TEFF", "TELESCOPE"],
                  nuisance_reference=[2.2, 4500.0, "apo25m"], training_filter=None)
    rows = []
    t_mem, whole = best2(lambda: NuisanceCalibrator(**params).fit(frame))
    t_dask, parts = best2(lambda: fit_calibrator_distributed(NuisanceCalibrator(**params), ddf,
                                                             client=client))
    diff = np.abs(parts.coef_.to_numpy() - whole.coef_.to_numpy())
    rows.append(("calibrator fit", t_mem, t_dask,
                 f"coef diff: max {np.max(diff / whole.coef_stderr_.to_numpy()):.1e} of its "
                 f"stderr, {np.median(diff / np.abs(whole.coef_.to_numpy())):.0e} relative "
                 "(median)"))
    t_mem, p1 = best2(lambda: radial_abundance_profile(frame, ABUNDANCES[:3]))
    t_dask, p2 = best2(lambda: radial_profile_distributed(ddf, ABUNDANCES[:3], client=client))
    same = p1[ABUNDANCES[:3]].equals(p2[ABUNDANCES[:3]])
    rows.append(("radial profile (shuffle)", t_mem, t_dask, f"medians identical: {same}"))
    for statistic in ("median", "mean"):
        t_mem, m1 = best2(lambda: face_on_map(frame, "FE_H", statistic=statistic))
        t_dask, m2 = best2(lambda: face_on_map_distributed(ddf, "FE_H", statistic=statistic,
                                                           client=client))
        ok = np.allclose(m1.statistic, m2.statistic, rtol=1e-12, equal_nan=True)
        how = "shuffle by bin" if statistic == "median" else "sums"
        rows.append((f"face-on map {statistic} ({how})", t_mem, t_dask, f"equal: {ok}"))
    return t_persist, rows


def bench_parallax(client, n, p, n_chunks, rng):
    import dask.array as da

    from sklearn_selfcal import SpectroPhotometricParallaxRegressor
    from sklearn_selfcal.scaleout import fit_parallax_distributed

    X = rng.normal(size=(n, p)).astype(np.float32)
    theta = np.zeros(p)
    theta[: p // 20] = rng.normal(0, 0.05, p // 20)
    err = rng.uniform(0.02, 0.1, n)
    y = np.exp(X @ theta - 0.7) + err * rng.normal(size=n) - 0.017
    t_persist, Xd = timed(lambda: wait_for(client.persist(
        da.from_array(X, chunks=(-(-n // n_chunks), p)))))
    alpha = 3e-3
    t_mem, whole = best2(lambda: SpectroPhotometricParallaxRegressor(alpha=alpha).fit(
        X, y, parallax_error=err))
    t_dask, parts = best2(lambda: fit_parallax_distributed(
        SpectroPhotometricParallaxRegressor(alpha=alpha), Xd, y, err, client=client))
    diff = np.max(np.abs(parts.coef_ - whole.coef_)) / np.max(np.abs(whole.coef_))
    note = (f"{np.count_nonzero(whole.coef_)} non-zero, {whole.n_iter_}/{parts.n_iter_} "
            f"iterations, max coef diff {diff:.1e} of the largest")
    return t_persist, [(f"parallax fit {n} x {p} float32", t_mem, t_dask, note)]


def report(title, t_persist, rows, peaks):
    print(f"\n{title} (persisted on the workers in {t_persist:.2f} s; worker peak RSS "
          f"{', '.join(f'{peak:.0f} (at start {start:.0f})' for peak, start in peaks)} MB)")
    print(f"  {'step':34s} {'in memory':>10s} {'Dask':>9s} {'ratio':>6s}  check")
    for name, t_mem, t_dask, note in rows:
        print(f"  {name:34s} {t_mem:9.2f}s {t_dask:8.2f}s {t_dask / t_mem:6.1f}  {note}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--parallax", nargs="+", default=["20000x1000", "50000x2000"])
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    rng = np.random.default_rng(0)
    warnings.simplefilter("ignore")

    def on_new_cluster(func, *func_args):
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.run(lambda: __import__("sklearn_selfcal.scaleout"))  # imports not timed
            peaks = WorkerPeaks(client)
            return (*func(client, *func_args), peaks.stop())

    for n in args.sizes:
        report(f"catalogue of {n} stars in {args.partitions} partitions",
               *on_new_cluster(bench_catalogue, n, args.partitions, rng))
    for shape in args.parallax:
        n, p = (int(v) for v in shape.split("x"))
        report(f"parallax features {n} x {p} in {args.partitions} row chunks",
               *on_new_cluster(bench_parallax, n, p, args.partitions, rng))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    print(f"\nclient process (in-memory runs) peak RSS: {peak:.0f} MB")


if __name__ == "__main__":
    main()
