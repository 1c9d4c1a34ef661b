"""Benchmark: the parallax solver's dtype and thread plans on three problem shapes, before and after.

One table: a row per problem shape, a column per plan (float32 / float64 features x 1 / 2 BLAS
threads, and the default plan: the float32 features ``run`` writes, threads left alone), each
cell the wall time of main's kernel ("before") and of this tree's ("after") on the same problem in
the same process, then the objective and the support of every run (they must agree) and the
default plan's time over the best plan's.

The problems come from an independent generator (not the package's simulator): stars with latent
labels, "pixels" that are noisy non-linear functions of a few labels (a tenth of them informative,
standardised), 8 magnitudes (distance modulus + a label-dependent absolute magnitude), parallaxes
``1 / d`` observed with a per-star sigma spanning a factor 5, and ``alpha`` a fixed fraction of
``alpha_max`` chosen so that a few hundred pixels are non-zero at the optimum. Shapes:

- ``paper``: 48,853 stars x 7,514 features in memory, C order (as the feature step writes them);
- ``sparse``: 40,000 x 7,400 in memory, Fortran order (the values of a column-built DataFrame);
- ``streamed``: 200,000 x 4,000 read-only ``np.memmap`` files on disk (as ``run``'s scratch files).

Each run is ``explinear_l1_path(X, pen, U, datafit, [alpha], coef_u=start, tol=tol)``, what
``SpectroPhotometricParallaxRegressor.fit`` calls after validating its input.

Run (full size, ~12 GB of scratch files and ~6 GB of memory; ~15 minutes on 2 cores):
``python benchmarks/bench_parallax_solver.py --scratch /tmp/bench``
Quick: ``python benchmarks/bench_parallax_solver.py --scale 0.1``. ``--before-ref`` names the git
revision whose kernel is "before" (default ``main``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import sklearn_selfcal._kernels.explinear_l1 as after

N_MAGS = 8
SHAPES = {  # name: (stars, features, storage, alpha / alpha_max: a few hundred non-zero pixels)
    "paper": (48853, 7514, "C", 0.007),
    "sparse": (40000, 7400, "F", 0.015),
    "streamed": (200000, 4000, "memmap", 0.01),
}
PLANS = [("float32", 1), ("float32", 2), ("float64", 1), ("float64", 2), ("float32", None)]


def make_problem(n, d, seed=0, out=None, chunk=4096):
    """Float32 features ``X`` (pixels then 8 magnitudes), observed parallaxes and their sigma.

    Written into ``out`` (an array or memmap of shape (n, d)) chunk by chunk; each chunk has its
    own random stream, so the problem does not depend on the chunk size.
    """
    rng = np.random.default_rng(seed)
    n_labels, p = 6, d - N_MAGS
    informative = rng.random(p) < 0.1
    W = rng.normal(size=(n_labels, p)) * rng.lognormal(-1.0, 1.0, size=p) * informative
    shift, noise = rng.normal(scale=0.5, size=p), rng.uniform(0.02, 0.2, size=p)
    lum = rng.normal(size=n_labels)
    lum /= np.linalg.norm(lum)
    colour = rng.normal(scale=0.05, size=(n_labels, N_MAGS))

    def pixels(labels, r):
        z = labels @ W + shift
        return 0.7 * z + 0.3 * np.tanh(z) + noise * r.normal(size=z.shape)

    sample = pixels(rng.normal(size=(4096, n_labels)), rng)
    mean, std = sample.mean(axis=0), sample.std(axis=0)
    X = np.empty((n, d), dtype=np.float32) if out is None else out
    y, sigma = np.empty(n), np.empty(n)
    for start in range(0, n, chunk):
        r = np.random.default_rng([seed, start])
        m = min(chunk, n - start)
        labels = r.normal(size=(m, n_labels))
        X[start:start + m, :p] = (pixels(labels, r) - mean) / std
        dist = r.uniform(0.5, 2.0, m)                                          # kpc
        absmag = labels @ lum + 0.2 * np.tanh(labels[:, 0] * labels[:, 1])
        X[start:start + m, p:] = (5 * np.log10(100 * dist) + absmag)[:, None] + labels @ colour \
            + 0.02 * r.normal(size=(m, N_MAGS))
        sigma[start:start + m] = r.uniform(0.02, 0.1, m)                       # mas
        y[start:start + m] = 1.0 / dist + sigma[start:start + m] * r.normal(size=m)
    return X, y, sigma


def load_before(ref, repo):
    """The kernel of git revision ``ref`` as a module of another name (file or subpackage)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-before-"))
    archive = subprocess.run(["git", "-C", str(repo), "archive", ref, "sklearn_selfcal/_kernels"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    base = tmp / "sklearn_selfcal" / "_kernels"
    if (base / "explinear_l1.py").exists():
        spec = importlib.util.spec_from_file_location("before_explinear_l1",
                                                      base / "explinear_l1.py")
    else:
        spec = importlib.util.spec_from_file_location(
            "before_explinear_l1", base / "explinear_l1" / "__init__.py",
            submodule_search_locations=[str(base / "explinear_l1")])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def storage(shape, X32, scratch):
    """The float32 and float64 matrices of a shape, in its storage."""
    n, d, kind, _ = SHAPES[shape]
    if kind == "memmap":
        out = np.lib.format.open_memmap(scratch / f"{shape}_float64.npy", mode="w+",
                                        dtype=np.float64, shape=(n, d))
        for start in range(0, n, 8192):
            out[start:start + 8192] = X32[start:start + 8192]
        out.flush()
        del out
        return {"float32": np.load(scratch / f"{shape}_float32.npy", mmap_mode="r"),
                "float64": np.load(scratch / f"{shape}_float64.npy", mmap_mode="r")}
    order = "F" if kind == "F" else "C"
    X32 = np.asarray(X32, order=order)
    return {"float32": X32, "float64": np.asarray(X32, dtype=np.float64, order=order)}


def solve(kernel, X, pen, U, y, sigma, alpha, start, tol, threads):
    datafit = kernel.ExpLinearChi2(y, 1.0 / (sigma**2 * len(y)))
    with threadpool_limits(threads):
        t = time.perf_counter()
        path = kernel.explinear_l1_path(X, pen, U, datafit, [alpha], coef_u=start, tol=tol)
        seconds = time.perf_counter() - t
    res = path.results[0]
    return dict(seconds=seconds, objective=float(res.objective), n_iter=int(res.n_iter),
                support=tuple(np.flatnonzero(res.coef_p)), converged=bool(res.converged))


def bench_shape(shape, kernels, args, scratch):
    n, d, kind, fraction = SHAPES[shape]
    n = max(2000, int(n * args.scale))
    SHAPES[shape] = (n, d, kind, fraction)
    t = time.perf_counter()
    out = None
    if kind == "memmap":
        out = np.lib.format.open_memmap(scratch / f"{shape}_float32.npy", mode="w+",
                                        dtype=np.float32, shape=(n, d))
    X32, y, sigma = make_problem(n, d, seed=args.seed, out=out)
    if out is not None:
        out.flush()
    Xs = storage(shape, X32, scratch)
    del X32, out
    pen = np.arange(d - N_MAGS)
    U = np.column_stack([np.ones(n), np.asarray(Xs["float64"][:, d - N_MAGS:])])
    datafit = after.ExpLinearChi2(y, 1.0 / (sigma**2 * n))
    start = np.r_[np.log(np.average(y, weights=1 / sigma**2)), np.zeros(N_MAGS)]
    warm = after.solve_gauss_newton(Xs["float64"], pen[:0], U, datafit,
                                    after.WeightedL1(0.0, np.zeros(0)), coef_u=start, tol=1e-10)
    alpha = fraction * after.alpha_max(Xs["float64"], pen, U, datafit, warm.coef_u)
    print(f"# {shape}: {n} x {d} ({kind}), alpha = {fraction} alpha_max = {alpha:.4g}; "
          f"made in {time.perf_counter() - t:.0f} s", flush=True)
    runs = {}
    for dtype, threads in PLANS:
        for label, kernel in kernels:
            best = None
            for _ in range(args.repeat):
                r = solve(kernel, Xs[dtype], pen, U, y, sigma, alpha, start, args.tol, threads)
                best = r if best is None or r["seconds"] < best["seconds"] else best
            runs[(dtype, threads, label)] = best
            print(f"#   {dtype} {threads or 'default'} thread(s) {label}: {best['seconds']:.2f} s, "
                  f"{best['n_iter']} iterations, {len(best['support'])} non-zero", flush=True)
    return runs


def table(results):
    head = ["shape"] + [f"{dt} {th or 'default'}t" for dt, th in PLANS] + [
        "objective (rel. spread)", "support", "default/best"]
    print("\n| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for shape, runs in results.items():
        cells = [f"{shape} {SHAPES[shape][0]}x{SHAPES[shape][1]}"]
        for dt, th in PLANS:
            b, a = runs.get((dt, th, "before")), runs[(dt, th, "after")]
            cells.append((f"{b['seconds']:.1f} -> " if b else "") + f"{a['seconds']:.1f} s")
        objs = np.array([r["objective"] for r in runs.values()])
        supports = {r["support"] for r in runs.values()}
        cells.append(f"{objs.mean():.10g} ({np.ptp(objs) / abs(objs.mean()):.1e})")
        cells.append(f"{len(next(iter(supports)))} pixels" + (
            "" if len(supports) == 1 else f", {len(supports)} different supports!"))
        best = min(runs[(dt, th, "after")]["seconds"] for dt, th in PLANS)
        cells.append(f"{runs[('float32', None, 'after')]['seconds'] / best:.2f}")
        print("| " + " | ".join(cells) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the stars of each shape")
    ap.add_argument("--tol", type=float, default=1e-4, help="relative KKT residual")
    ap.add_argument("--repeat", type=int, default=1, help="runs per cell (the fastest is kept)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--before-ref", default="main", help="git revision of the 'before' kernel "
                    "('' to skip)")
    ap.add_argument("--scratch", default=None, help="directory of the memmap files")
    args = ap.parse_args()

    kernels = [("after", after)]
    if args.before_ref:
        repo = Path(__file__).resolve().parents[1]
        kernels.insert(0, ("before", load_before(args.before_ref, repo)))
    print(f"# load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; numpy "
          f"{np.__version__}; tol {args.tol:g}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory(dir=args.scratch) as scratch:
        for shape in args.shapes:
            results[shape] = bench_shape(shape, kernels, args, Path(scratch))
            for f in Path(scratch).glob(f"{shape}_*.npy"):
                f.unlink()
    print(f"# load average {os.getloadavg()[0]:.2f} at the end", flush=True)
    table(results)


if __name__ == "__main__":
    main()
