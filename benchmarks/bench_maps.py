"""Time the face-on maps on a large catalogue against the bare kernels, with and without a far star.

The baseline, measured in the same process, is the least a median map must do: bin the stars
(``bin_index_2d``) and take the grouped median (``grouped_median``) on a grid given in advance. The
ratio is the cost of everything ``face_on_map`` adds: reading and checking the columns (text in a
numeric column is an error naming it), choosing the extent (stars beyond ``MAP_LIMIT_KPC`` are
counted in a warning) and the bookkeeping of the result. One star moved to 10^6 kpc must not change
the time or the grid.

Run::

    python benchmarks/bench_maps.py [--n-stars 1000000] [--repeat 5]
"""

import argparse
import resource
import time
import warnings

import numpy as np
import pandas as pd

from sklearn_selfcal import maps
from sklearn_selfcal._kernels import binned


def best_of(repeat, func):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-stars", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.n_stars
    R = rng.uniform(0.0, 20.0, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    frame = pd.DataFrame({"x": R * np.cos(phi), "y": R * np.sin(phi), "FE_H": -0.06 * R + rng.normal(0, 0.1, n)})
    far = frame.copy()
    far.loc[0, ["x", "y"]] = [1e6, -5e5]

    x_edges = y_edges = maps.grid_edges(-20.0, 20.0, 0.75)

    def bare():
        index = binned.bin_index_2d(frame["x"].to_numpy(), frame["y"].to_numpy(), x_edges, y_edges)
        return binned.grouped_median(index, frame["FE_H"].to_numpy(), (x_edges.size - 1) ** 2)

    t_base, _ = best_of(args.repeat, bare)
    t_map, result = best_of(args.repeat, lambda: maps.face_on_map(frame, "FE_H"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_far, far_result = best_of(args.repeat, lambda: maps.face_on_map(far, "FE_H"))
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux: kB
    print(f"face_on_map, {n:,} stars, 0.75 kpc bins (best of {args.repeat})")
    print(f"  baseline (bin_index_2d + grouped_median): {t_base * 1e3:8.1f} ms")
    print(f"  face_on_map                             : {t_map * 1e3:8.1f} ms  ratio {t_map / t_base:.2f}")
    print(f"  face_on_map, one star at 10^6 kpc       : {t_far * 1e3:8.1f} ms  ratio {t_far / t_base:.2f}; "
          f"grid {far_result.statistic.shape} (without it {result.statistic.shape})")
    print(f"  process peak RSS {peak_gb:.2f} GB")


if __name__ == "__main__":
    main()
