"""Time ``make_survey`` at the paper's size (50,000 stars x 7,514 pixels) against a baseline.

The baseline, measured in the same process on the same machine, is the bare cost of filling the
two output arrays with Gaussian float32 noise (the least any simulator of that size must do).
Peak memory is reported relative to the size of the returned spectra.

Run::

    python benchmarks/bench_make_survey.py [--n-stars 50000] [--n-pixels 7514] [--n-jobs 2]
"""

import argparse
import resource
import time

import numpy as np

from sklearn_selfcal.datasets import make_survey


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-stars", type=int, default=50_000)
    parser.add_argument("--n-pixels", type=int, default=7_514)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    shape = (args.n_stars, args.n_pixels)

    make_survey(n_stars=100, n_pixels=10, random_state=0)  # warm-up: imports, potential set-up
    # baseline: draw the same number of float32 normals, in slabs so it adds no memory
    rng = np.random.default_rng(0)
    slab = np.empty((min(5000, shape[0]), shape[1]), dtype=np.float32)
    t0 = time.perf_counter()
    for _ in range(2 * int(np.ceil(shape[0] / slab.shape[0]))):
        rng.standard_normal(out=slab, dtype=np.float32)
    t_base = time.perf_counter() - t0
    del slab

    t0 = time.perf_counter()
    make_survey(n_stars=args.n_stars, n_pixels=0, random_state=0)
    t_cat = time.perf_counter() - t0

    t0 = time.perf_counter()
    survey = make_survey(n_stars=args.n_stars, n_pixels=args.n_pixels, random_state=0, n_jobs=args.n_jobs)
    t_full = time.perf_counter() - t0

    out_gb = 2 * survey.spectra.nbytes / 1e9
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux: kB
    print(f"make_survey({args.n_stars}, {args.n_pixels}), n_jobs={args.n_jobs}")
    print(f"  catalogue only      : {t_cat:7.2f} s")
    print(f"  catalogue + spectra : {t_full:7.2f} s   (target < 60 s on 2 cores)")
    print(f"  baseline (2 x normal float32 arrays of that shape): {t_base:.2f} s")
    print(f"  ratio full / baseline: {t_full / t_base:.1f}")
    print(f"  spectra + errors: {out_gb:.2f} GB; process peak RSS {peak_gb:.2f} GB "
          f"({peak_gb / out_gb:.2f} x the output)")


if __name__ == "__main__":
    main()
