"""The parallax stage at survey scale: time per sub-step and peak memory, before and after.

One run of this script:

1. simulates a survey (``make_survey(n_stars, n_pixels=7514)``), keeps the stars with complete
   photometry (the parallax model's input) and writes the catalogue (Parquet) and the float32
   spectra to a scratch folder as ``.npy`` files and one HDF5 file;
2. runs the cross-fitted parallax stage (two folds, the paper's alpha, the Gaia training cuts,
   random_state 0, only out-of-fold predictions as the command line does) in a fresh process per
   variant, so that each peak memory is its own:

   - ``before``: the package at ``--baseline`` (``git archive`` of that commit), spectra in memory
     as one DataFrame column per pixel (``workflow.cross_fitted_parallaxes``);
   - ``memory``: this package, spectra in memory as two array-backed columns
     (``SpectroPhotometricParallaxTransformer``);
   - ``npy``, ``memmap``, ``hdf5``: the same with the spectra read from disk by row blocks
     (``SpectraArray.from_npy``, ``numpy.load(mmap_mode="r")``, ``SpectraArray.from_hdf5``);
   - ``npy-scratch``: ``npy`` with the feature matrices in memory-mapped scratch files
     (``scratch_dir``): their pages are file-backed, so the anonymous memory stays bounded;
3. times the solver alone on one fold's features, float32 against float64 and one BLAS thread
   against the library default;
4. prints per-sub-step times, the peak resident memory of the stage (rise above the memory held
   once the inputs are loaded, and absolute; and the rise of anonymous memory, sampled every
   20 ms, which leaves out file pages the system can reclaim), the bytes of the float32 feature matrix, and checks
   that memory, ``.npy``, memmap and HDF5 spectra give identical parallaxes.

Sub-steps are timed by wrapping the estimators' methods (the same wrappers for both versions):
features fit (and the one-pass ``fit_transform``), transforms, feature uncertainties, row
selection (``_safe_indexing`` in the cross-fitting step), solver (the regressor's ``fit``) and
predict. The machine is shared: compare ratios within one run.

Usage::

    PYTHONPATH=$PWD python benchmarks/bench_parallax_stage.py            # 48,853 stars, ~15 min
    PYTHONPATH=$PWD python benchmarks/bench_parallax_stage.py --n-stars 5000 --modes memory,npy
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STEPS = ("attach spectra", "training filter", "row selection", "features fit",
         "features fit_transform", "features transform", "features transform_err",
         "features transform_with_err", "solver (regressor fit)", "predict", "total stage")


# --------------------------------------------------------------------------------------------
# memory
# --------------------------------------------------------------------------------------------
def _status():
    with open("/proc/self/status") as fh:
        d = dict(line.split(":", 1) for line in fh)
    return int(d["VmRSS"].split()[0]) / 2**20, int(d["VmHWM"].split()[0]) / 2**20


def _reset_peak():
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return _status()[0]


class _AnonPeak:
    """Largest anonymous resident memory (RssAnon: not file pages) seen, sampled every 20 ms."""

    def __init__(self):
        import threading

        self.peak, self._stop = self._anon(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _anon():
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 2**20
        return float("nan")

    def _run(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._anon())

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.peak


# --------------------------------------------------------------------------------------------
# instrumentation shared by both versions
# --------------------------------------------------------------------------------------------
TIMES = defaultdict(float)


def _timed(label, func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            TIMES[label] += time.perf_counter() - t
    return wrapper


def _instrument():
    from sklearn_selfcal import crossfit, parallax, parallax_features

    features = parallax_features.SpectroPhotometricFeatures
    for name in ("fit", "fit_transform", "transform", "transform_err", "transform_with_err"):
        if name in features.__dict__:
            setattr(features, name, _timed(f"features {name}", features.__dict__[name]))
    regressor = parallax.SpectroPhotometricParallaxRegressor
    regressor.fit = _timed("solver (regressor fit)", regressor.__dict__["fit"])
    regressor.predict = _timed("predict", regressor.predict)
    crossfit._safe_indexing = _timed("row selection", crossfit._safe_indexing)


# --------------------------------------------------------------------------------------------
# children: one variant each
# --------------------------------------------------------------------------------------------
def child(mode, scratch):
    import pandas as pd
    import sklearn

    scratch = Path(scratch)
    frame = pd.read_parquet(scratch / "frame.parquet")
    if mode in ("before", "memory"):
        flux, flux_err = np.load(scratch / "flux.npy"), np.load(scratch / "flux_err.npy")
    _instrument()
    from sklearn_selfcal.parallax_features import gaia_training_mask

    baseline = _reset_peak()
    anon0, anon = _AnonPeak._anon(), _AnonPeak()
    t0 = time.perf_counter()
    if mode == "before":
        from sklearn_selfcal import parallax_features, workflow

        workflow.join_spectra = _timed("attach spectra", parallax_features.join_spectra)
        workflow.gaia_training_mask = _timed("training filter", gaia_training_mask)
        out = workflow.cross_fitted_parallaxes(frame, flux, flux_err, random_state=0,
                                               dtype="float32")
        pred, err, scatter = out.spec_parallax, out.spec_parallax_err, out.intrinsic_scatter
    else:
        from sklearn_selfcal.parallax import SpectroPhotometricParallaxTransformer
        from sklearn_selfcal.spectra import SpectraArray, join_spectra

        if mode in ("npy", "npy-scratch"):
            flux, flux_err = (SpectraArray.from_npy(scratch / f) for f in ("flux.npy",
                                                                          "flux_err.npy"))
        elif mode == "memmap":
            flux, flux_err = (np.load(scratch / f, mmap_mode="r") for f in ("flux.npy",
                                                                            "flux_err.npy"))
        elif mode == "hdf5":
            flux, flux_err = (SpectraArray.from_hdf5(scratch / "spectra.h5", d)
                              for d in ("flux", "flux_err"))
        table = _timed("attach spectra", join_spectra)(frame, flux, flux_err)
        with sklearn.config_context(enable_metadata_routing=True):
            step = SpectroPhotometricParallaxTransformer(
                random_state=0, refit=False,
                scratch_dir=scratch if mode == "npy-scratch" else None)
            out = step.fit_transform(table, table["parallax"],
                                         parallax_error=table["parallax_error"])
        pred, err = out["spec_parallax"].to_numpy(), out["spec_parallax_err"].to_numpy()
        scatter = step.intrinsic_scatter_
    TIMES["total stage"] = time.perf_counter() - t0
    anon_rise = anon.stop() - anon0
    rss, peak = _status()
    np.save(scratch / f"pred_{mode}.npy", np.column_stack([pred, err]))
    print(json.dumps(dict(mode=mode, times=dict(TIMES), peak_rise_gb=peak - baseline,
                          peak_gb=peak, baseline_gb=baseline, anon_rise_gb=anon_rise,
                          scatter=scatter)), flush=True)


def solver_child(scratch):
    """Solver alone on one training half: float32 vs float64 X, one BLAS thread vs default."""
    import pandas as pd
    from sklearn.model_selection import KFold
    from threadpoolctl import threadpool_limits

    from sklearn_selfcal import parallax
    from sklearn_selfcal.parallax_features import SpectroPhotometricFeatures, gaia_training_mask
    from sklearn_selfcal.spectra import SpectraArray, join_spectra

    scratch = Path(scratch)
    frame = pd.read_parquet(scratch / "frame.parquet")
    table = join_spectra(frame, SpectraArray.from_npy(scratch / "flux.npy"),
                         SpectraArray.from_npy(scratch / "flux_err.npy"))
    train, _ = next(KFold(2, shuffle=True, random_state=0).split(table))
    train = train[gaia_training_mask(table.iloc[train])]
    X32 = SpectroPhotometricFeatures().set_output(transform="pandas").fit_transform(
        table.iloc[train])
    y, sigma = table["parallax"].to_numpy()[train], table["parallax_error"].to_numpy()[train]
    results = {}
    for label, X, threads in (("float64, 1 BLAS thread", X32.astype(np.float64), 1),
                              ("float32, 1 BLAS thread", X32, 1),
                              ("float32, default BLAS threads", X32, None)):
        with threadpool_limits(threads):        # the solver's workers follow the BLAS threads
            t = time.perf_counter()
            model = parallax.SpectroPhotometricParallaxRegressor().fit(X, y, parallax_error=sigma)
        results[label] = dict(seconds=time.perf_counter() - t, n_iter=model.n_iter_,
                              nonzero=int(np.count_nonzero(model.coef_[model.penalized_])))
    print(json.dumps(dict(mode="solver", n_train=int(train.size), results=results)), flush=True)


# --------------------------------------------------------------------------------------------
# parent
# --------------------------------------------------------------------------------------------
def _prepare(args, scratch):
    import h5py

    from sklearn_selfcal.datasets import make_survey
    from sklearn_selfcal.parallax_features import MAGNITUDE_COLUMNS

    t = time.perf_counter()
    s = make_survey(args.n_stars, n_pixels=args.n_pixels, random_state=args.random_state)
    keep = np.isfinite(s.frame[list(MAGNITUDE_COLUMNS)].to_numpy()).all(axis=1)
    s.frame[keep].reset_index(drop=True).to_parquet(scratch / "frame.parquet")
    flux = np.ascontiguousarray(s.spectra[keep], dtype=np.float32)
    np.save(scratch / "flux.npy", flux)
    err = np.ascontiguousarray(s.spectra_err[keep], dtype=np.float32)
    np.save(scratch / "flux_err.npy", err)
    with h5py.File(scratch / "spectra.h5", "w") as fh:
        # row chunks of 64 stars: a row block reads whole chunks
        fh.create_dataset("flux", data=flux, chunks=(64, flux.shape[1]))
        fh.create_dataset("flux_err", data=err, chunks=(64, err.shape[1]))
    n = int(keep.sum())
    print(f"simulated {args.n_stars} stars x {args.n_pixels} pixels, {n} with complete photometry "
          f"({time.perf_counter() - t:.0f} s); scratch {scratch}", flush=True)
    return n


def _baseline_tree(commit, scratch):
    dest = scratch / f"baseline-{commit}"
    if not dest.exists():
        dest.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "sklearn_selfcal"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _run_child(argv, pythonpath):
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    done = subprocess.run([sys.executable, __file__, *argv], env=env, capture_output=True,
                          text=True)
    if done.returncode:
        print(done.stdout[-3000:], done.stderr[-6000:], flush=True)
        raise SystemExit(f"child {argv} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-stars", type=int, default=48853)
    ap.add_argument("--n-pixels", type=int, default=7514)
    ap.add_argument("--random-state", type=int, default=0)
    ap.add_argument("--baseline", default="8b924d3", help="commit of the 'before' version")
    ap.add_argument("--modes", default="before,memory,npy,memmap,hdf5,npy-scratch,solver")
    ap.add_argument("--scratch", default=None, help="folder for the data files (default: temp)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return solver_child(args.scratch) if args.child == "solver" else child(args.child,
                                                                               args.scratch)

    with tempfile.TemporaryDirectory(dir=args.scratch) as tmp:
        scratch = Path(tmp)
        n = _prepare(args, scratch)
        n_features = args.n_pixels + 13
        feature_gb = n * n_features * 4 / 2**30
        raw_gb = 2 * n * args.n_pixels * 4 / 2**30
        print(f"float32 feature matrix of all {n} stars: {feature_gb:.2f} GB; raw float32 flux + "
              f"error: {raw_gb:.2f} GB", flush=True)
        modes = args.modes.split(",")
        reports = {}
        for mode in modes:
            path = _baseline_tree(args.baseline, scratch) if mode == "before" else REPO
            reports[mode] = _run_child(["--child", mode, "--scratch", str(scratch)], path)
            print(f"  ran {mode}: {reports[mode].get('times', {}).get('total stage', 0):.1f} s",
                  flush=True)

        stage = [m for m in modes if m != "solver"]
        print(f"\nparallax stage, {n} stars x {args.n_pixels} pixels (s per sub-step, summed over "
              "folds)")
        print(f"{'sub-step':<30s}" + "".join(f"{m:>12s}" for m in stage))
        for step in STEPS:
            row = [reports[m]["times"].get(step) for m in stage]
            if any(v is not None for v in row):
                print(f"{step:<30s}" + "".join(f"{'-' if v is None else f'{v:.1f}':>12s}"
                                               for v in row))
        print(f"{'peak memory rise (GB)':<30s}" + "".join(
            f"{reports[m]['peak_rise_gb']:>12.2f}" for m in stage))
        print(f"{'peak memory, absolute (GB)':<30s}" + "".join(
            f"{reports[m]['peak_gb']:>12.2f}" for m in stage))
        print(f"{'peak anonymous rise (GB)':<30s}" + "".join(
            f"{reports[m]['anon_rise_gb']:>12.2f}" for m in stage))
        print(f"{'intrinsic scatter':<30s}" + "".join(
            f"{reports[m]['scatter']:>12.4f}" for m in stage))
        if "before" in reports and "memory" in reports:
            b, a = reports["before"]["times"], reports["memory"]["times"]
            print(f"\nspeed-up of the stage, before / after (memory): "
                  f"{b['total stage'] / a['total stage']:.2f}x; stage / solver: before "
                  f"{b['total stage'] / b['solver (regressor fit)']:.2f}x, after "
                  f"{a['total stage'] / a['solver (regressor fit)']:.2f}x")
        for m in stage:
            if m not in ("before",):
                t = reports[m]["times"]
                print(f"  {m}: stage / solver = "
                      f"{t['total stage'] / t['solver (regressor fit)']:.2f}x; peak rise / "
                      f"float32 features = {reports[m]['peak_rise_gb'] / feature_gb:.2f}")
        preds = {m: np.load(scratch / f"pred_{m}.npy") for m in stage}
        ref = preds.get("memory")
        for m in stage:
            if ref is not None and m not in ("memory", "before"):
                print(f"  {m} vs memory: identical spec_parallax and spec_parallax_err: "
                      f"{np.array_equal(preds[m], ref)}")
        if ref is not None and "before" in preds:
            rel = np.abs(preds["before"][:, 0] / ref[:, 0] - 1)
            print(f"  before vs after: spec_parallax median |ratio - 1| {np.median(rel):.2e}, "
                  f"max {rel.max():.2e} (same optimum, other solver path and float rounding)")
        if "solver" in reports:
            r = reports["solver"]
            print(f"\nsolver alone on one training half ({r['n_train']} stars):")
            base = r["results"]["float64, 1 BLAS thread"]["seconds"]
            for label, v in r["results"].items():
                print(f"  {label:<32s} {v['seconds']:7.1f} s ({v['seconds'] / base:.2f}x float64)"
                      f"  {v['n_iter']} outer iterations, {v['nonzero']} non-zero pixels")


if __name__ == "__main__":
    main()
