"""Reading an allStar-sized catalogue: only the columns the method needs, against astropy's whole table.

Writes (once, cached in --workdir) an allStar DR17-like FITS file of 733,901 rows -- the size of
allStar-dr17-synspec_rev1 -- by repeating the 95 real DR17 rows of tests/data (every DR17 column,
multidimensional ones included, ~2.3 GB), then, each in a fresh process so that peak memory is its
own, times and measures:

* ``sklearn-selfcal``: the columns ``run`` reads (:meth:`RunPlan.read_columns`, ~80 of 214), via
  :func:`sklearn_selfcal.io.read_catalogue` (memory-mapped, column by column, cleaned);
* ``astropy``: ``astropy.table.Table.read`` of the whole table (what a user would do first).

Prints wall time and peak resident memory of each and their ratios (same machine, same run).

    python benchmarks/bench_allstar_read.py [--rows 733901] [--workdir /tmp/bench_allstar]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DR17 = ROOT / "tests" / "data" / "apogee_dr17_allstar_95stars_kepler.fits"

_MEASURE = r"""
import json, sys, time, warnings
t0 = time.perf_counter()
mode, path = sys.argv[1], sys.argv[2]
if mode == "selfcal":
    from sklearn_selfcal.io import catalogue_columns, read_catalogue
    from sklearn_selfcal.preflight import plan_run
    from sklearn_selfcal.workflow import load_config
    plan = plan_run(catalogue_columns(path), load_config())
    columns = plan.read_columns()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = read_catalogue(path, columns=columns, gaia_names=False)
    shape = frame.shape
else:
    from astropy.table import Table
    table = Table.read(path)
    shape = (len(table), len(table.colnames))
seconds = time.perf_counter() - t0
# VmHWM: this process's own peak (ru_maxrss would carry over the parent's peak across exec)
peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
            if line.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "peak_bytes": peak, "shape": shape}))
"""


def write_file(path, n_rows):
    from astropy.io import fits

    with fits.open(DR17) as hdul:
        rows = hdul[1].data
        header = hdul[1].header
        reps = -(-n_rows // len(rows))
        data = np.tile(np.asarray(rows), reps)[:n_rows]
        fits.BinTableHDU(data=data, header=header).writeto(path, overwrite=True)


def measure(mode, path):
    out = subprocess.run([sys.executable, "-c", _MEASURE, mode, str(path)], check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=733_901)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_allstar"))
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write is not None:
        write_file(args.write, args.rows)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"allStar-like-{args.rows}.fits"
    if not path.exists():
        t0 = time.perf_counter()
        # in a child process, so that this one stays small
        subprocess.run([sys.executable, __file__, "--write", str(path), "--rows", str(args.rows)],
                       check=True)
        print(f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB) in "
              f"{time.perf_counter() - t0:.0f} s")
    results = {mode: measure(mode, path) for mode in ("selfcal", "astropy")}
    print(f"\n{args.rows:,} rows, file {path.stat().st_size / 1e9:.2f} GB")
    print(f"{'reader':<44} {'columns':>8} {'time (s)':>9} {'peak RSS (GB)':>14}")
    labels = {"selfcal": "sklearn-selfcal read_catalogue (run's columns)",
              "astropy": "astropy Table.read (whole table)"}
    for mode, r in results.items():
        print(f"{labels[mode]:<44} {r['shape'][1]:>8} {r['seconds']:>9.1f} "
              f"{r['peak_bytes'] / 1e9:>14.2f}")
    s, a = results["selfcal"], results["astropy"]
    print(f"\nratios sklearn-selfcal / astropy: time {s['seconds'] / a['seconds']:.2f}, "
          f"peak memory {s['peak_bytes'] / a['peak_bytes']:.2f}")


if __name__ == "__main__":
    main()
