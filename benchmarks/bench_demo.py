"""The paper-size demo step by step, before and after: ``sklearn-selfcal demo`` timed per step.

Each variant of the package runs ``sklearn-selfcal demo --n-stars N`` in its own subprocess (a fresh
interpreter: imports, galpy set-up and the loky workers are counted), with light wrappers that time
the steps by the functions they call:

==================  =========================================================================
simulate catalogue  ``simulate_catalogue`` of ``write_survey`` (the stars, their orbits, truth)
write survey        the survey's catalogue.parquet and truth.parquet
simulate spectra    the spectra to HDF5
parallax, orbits,   the method's steps: every call of ``CrossFitTransformer`` (the parallax
calibrate           model's cross-fitting), ``ActionTransformer`` and ``NuisanceCalibrator``
profiles and fit    the run's radial profiles and broken power law, and the demo's same fit to
                    the simulation's truth
outputs             ``write_outputs``: the catalogue, tables, fit summary, figures, provenance
  catalogue files   of which catalogue.parquet and catalogue.fits
  figures           of which the 15 PNG figures, when drawn apart ("-" when they are drawn while
                    the catalogue is written)
total               the whole command, by its own clock (``cli.main``)
process             the process, from its launch to its exit (interpreter start-up, imports and
                    tear-down included): what ``/usr/bin/time`` reports
==================  =========================================================================

Every row gives the wall-clock seconds and the CPU seconds of the process and its children
(loky workers included, through psutil), so that a loaded machine shows as wall >> CPU. Each run
writes into a fresh directory, removed after it (untimed: a demo at the paper's size writes 3 GB).
"before" is the code of ``--before`` or of the git ref ``--ref`` (default: ``main``, exported with
``git archive`` into a temporary directory), "after" the code this script sits in; they run alternately,
``--repeat`` times each, and the table gives the smallest time of each step (the least disturbed).

Run::

    python benchmarks/bench_demo.py [--n-stars 48853] [--repeat 1] [--before DIR | --ref REF]
                                    [--config after.toml]
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

#: Runs inside the subprocess: wrap the steps' functions, run the demo, print the times as JSON.
DRIVER = r"""
import functools, json, resource, sys, time
import psutil
import sklearn.pipeline
import sklearn_selfcal.cli as cli
import sklearn_selfcal.datasets._survey_files as survey_files
import sklearn_selfcal.figures as figures
import sklearn_selfcal.outputs as outputs
from sklearn_selfcal import ActionTransformer, NuisanceCalibrator
from sklearn_selfcal.crossfit import CrossFitTransformer
try:                    # the run's module: workflow/_run.py, or workflow.py in older trees
    import sklearn_selfcal.workflow._run as run
except ImportError:
    import sklearn_selfcal.workflow as run

me = psutil.Process()
times = {}


def cpu():
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    return total + sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])


active = set()  # steps being timed: a call nested in another of the same step counts once


def timed(module, attr, name):
    original = getattr(module, attr)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        if name in active:
            return original(*args, **kwargs)
        active.add(name)
        w0, c0 = time.perf_counter(), cpu()
        try:
            return original(*args, **kwargs)
        finally:
            active.discard(name)
            wall, cpu_s = times.get(name, (0.0, 0.0))
            times[name] = (wall + time.perf_counter() - w0, cpu_s + cpu() - c0)

    setattr(module, attr, wrapper)


#: The method's steps, by the estimators that do their work (every call of their methods during
#: the demo, whatever code path of the package calls them, so that trees of any age compare).
for cls, methods, step in ((CrossFitTransformer, ("fit_transform", "fit", "transform"), "parallax"),
                           (ActionTransformer, ("fit_transform", "transform"), "orbits"),
                           (NuisanceCalibrator, ("fit_transform", "fit", "transform"), "calibrate")):
    for method in methods:
        timed(cls, method, step)
timed(survey_files, "simulate_catalogue", "simulate catalogue")
timed(survey_files, "write_catalogue", "write survey")
timed(survey_files, "_write_spectra", "simulate spectra")
timed(run, "profiles_and_fit", "profiles and fit")
timed(cli, "_truth_gradient", "profiles and fit")
timed(outputs, "write_catalogue", "  catalogue files")
timed(figures, "render_figures", "  figures")
timed(outputs, "write_outputs", "outputs")
w0, c0 = time.perf_counter(), cpu()
status = cli.main(["demo", "--n-stars", sys.argv[1], "--out", sys.argv[2], "--quiet"]
                  + (["--config", sys.argv[3]] if len(sys.argv) > 3 else []))
times["total"] = (time.perf_counter() - w0, cpu() - c0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
print("BENCH" + json.dumps({"status": status, "times": times, "peak_gb": peak}))
"""

ORDER = ("simulate catalogue", "write survey", "simulate spectra", "parallax", "orbits",
         "calibrate", "profiles and fit", "outputs", "  catalogue files", "  figures", "total",
         "process")


def run_variant(root, n_stars, out, config=None):
    """One demo in a subprocess importing the package from ``root``; its step times."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONNOUSERSITE": "1"}
    extra = [] if config is None else [str(Path(config).resolve())]
    shutil.rmtree(out, ignore_errors=True)
    w0, c0 = time.perf_counter(), _children_cpu()
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(n_stars), str(out), *extra], env=env,
                          capture_output=True, text=True, cwd=tempfile.gettempdir())
    process = (time.perf_counter() - w0, _children_cpu() - c0)
    shutil.rmtree(out, ignore_errors=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH")), None)
    if proc.returncode or line is None:
        sys.exit(f"the demo of {root} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    record = json.loads(line[len("BENCH"):])
    record["times"]["process"] = process
    if record["status"]:
        sys.exit(f"the demo of {root} exited with status {record['status']}:\n{proc.stderr[-3000:]}")
    return record


def _children_cpu():
    """CPU seconds of this process's finished children (the demo and its workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def export(ref, into):
    """``git archive`` of the package at ``ref`` into ``into``."""
    archive = subprocess.run(["git", "-C", str(HERE), "archive", ref, "sklearn_selfcal"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-stars", type=int, default=48_853)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--before", help="a directory holding the 'before' sklearn_selfcal package")
    parser.add_argument("--ref", default="main", help="git ref exported as 'before' (default main)")
    parser.add_argument("--config", help="a configuration file given to the 'after' demo (e.g. "
                        "[parallax] n_jobs = 2); 'before' runs the defaults")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(args.before) if args.before else export(args.ref, Path(tmp))
        variants = {"before": before, "after": HERE}
        records = {name: [] for name in variants}
        for i in range(args.repeat):
            for name, root in variants.items():
                print(f"run {i + 1}/{args.repeat}: {name} ({root}) ...", flush=True)
                records[name].append(run_variant(root, args.n_stars, Path(tmp) / f"demo_{name}",
                                                 args.config if name == "after" else None))
    load = os.getloadavg()
    best = {name: {step: [min(r["times"][step][k] for r in recs if step in r["times"])
                          if any(step in r["times"] for r in recs) else float("nan")
                          for k in (0, 1)]
                   for step in ORDER}
            for name, recs in records.items()}
    print(f"\nsklearn-selfcal demo --n-stars {args.n_stars:,}: smallest of {args.repeat} run(s); "
          f"load average after the runs {load[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'step':<20} {'before wall':>11} {'cpu':>7}   {'after wall':>10} {'cpu':>7}   "
          f"{'ratio (wall)':>12}")
    for step in ORDER:
        (bw, bc), (aw, ac) = best["before"][step], best["after"][step]
        ratio = aw / bw if bw else float("nan")
        cells = [f"{v:.1f}" if v == v else "-" for v in (bw, bc, aw, ac)] + [
            f"{ratio:.2f}" if ratio == ratio else "-"]
        print(f"{step:<20} {cells[0]:>11} {cells[1]:>7}   {cells[2]:>10} {cells[3]:>7}   "
              f"{cells[4]:>12}")
    for name, recs in records.items():
        print(f"peak RSS {name}: {min(r['peak_gb'] for r in recs):.2f} GB")


if __name__ == "__main__":
    main()
