"""Survey scale on one machine: write a simulated survey to disk, run the method on it.

For each size, in fresh processes (so that each peak is its own):

1. ``write``: :func:`sklearn_selfcal.datasets.write_survey` (catalogue, truth, settings, then the
   spectra as HDF5, block by block);
2. ``cli``: the command line, ``sklearn-selfcal run catalogue.parquet --spectra spectra.h5 --out
   DIR`` (spectra read from the file by row blocks), called in the child as
   ``sklearn_selfcal.cli.main``;

and, at ``--in-memory`` sizes, 3. ``memory``: ``make_survey`` in memory, then ``run_method`` on its
arrays (the path of ``sklearn-selfcal demo``), for comparison.

Each child measures itself: it splits its run into steps at the ``[sklearn-selfcal] <step> ...``
lines the package prints when verbose (plus the reading of the inputs and the writing of the
outputs) and records each step's wall time and peak resident memory (``VmHWM`` of
``/proc/self/status``, reset between steps through ``/proc/self/clear_refs``; ``ru_maxrss``
is not used: on Linux a child inherits its parent's). The parallax model's float32 feature
matrix, ``n_parent x (n_pixels + 13) x 4`` bytes, is printed beside the peaks, and so is each step's peak *anonymous* resident memory (sampled
every 0.1 s): resident memory also counts the pages of memory-mapped scratch and spectra files,
which the system reclaims under pressure, the anonymous part it cannot. The machine is
shared: compare within one run.

Usage::

    PYTHONPATH=$PWD python benchmarks/bench_scale.py                  # 48,853 and 200,000 stars
    PYTHONPATH=$PWD python benchmarks/bench_scale.py --sizes 5000 --in-memory 5000 --n-pixels 500
    PYTHONPATH=$PWD python benchmarks/bench_scale.py --sizes 1000000 --in-memory --memory-limit 16
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Magnitudes (8) and LSF moments (5) that the parallax features add to the pixels.
N_EXTRA_FEATURES = 13
_STEP = re.compile(r"\[sklearn-selfcal\] (.+) \.\.\.$")


def _hwm_gb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1e6
    return float("nan")


def _reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:  # pragma: no cover - not Linux: peaks are then cumulative
        pass


def _anon_gb():
    """Resident anonymous memory (GB): what the process holds that the system cannot reclaim.

    Resident memory (``VmHWM``) also counts the pages of memory-mapped files (the parallax
    model's scratch files, the spectra file), which the system drops under pressure.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon"):
                return int(line.split()[1]) / 1e6
    return float("nan")


class StepMeter(io.TextIOBase):
    """A stdout tee that closes a step at each ``[sklearn-selfcal] <step> ...`` line.

    A daemon thread samples the resident anonymous memory every 0.1 s (there is no kernel
    high-water mark for it) and keeps each step's maximum.
    """

    def __init__(self, stream, first):
        import threading

        self.stream, self.pending, self.steps = stream, "", []
        self.current, self.t0 = first, time.perf_counter()
        self.anon_peak = _anon_gb()
        _reset_hwm()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self):
        while True:
            self.anon_peak = max(self.anon_peak, _anon_gb())
            time.sleep(0.1)

    def write(self, text):
        self.stream.write(text)
        self.pending += text
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            match = _STEP.match(line.strip())
            if match:
                self.mark(match.group(1))
        return len(text)

    def flush(self):
        self.stream.flush()

    def mark(self, name):
        """End the current step (its time and peak resident memory) and start ``name``."""
        now = time.perf_counter()
        anon = max(self.anon_peak, _anon_gb())
        self.steps.append({"step": self.current, "seconds": round(now - self.t0, 2),
                           "peak_gb": round(_hwm_gb(), 3), "anon_gb": round(anon, 3)})
        _reset_hwm()
        self.anon_peak = _anon_gb()
        self.current, self.t0 = name, time.perf_counter()


def _wrap(module, name, meter, label):
    original = getattr(module, name)

    def wrapped(*args, **kwargs):
        meter.mark(label)
        return original(*args, **kwargs)

    setattr(module, name, wrapped)


# ------------------------------------------------------------------------------ child processes
def child_write(n_stars, folder, n_pixels, n_jobs):
    from sklearn_selfcal.datasets import write_survey

    meter = sys.stdout = StepMeter(sys.stdout, "imports")
    written = write_survey(n_stars, folder, n_pixels=n_pixels, random_state=0, n_jobs=n_jobs,
                           overwrite=True, verbose=1)
    meter.mark("end")
    bytes_ = sum(os.path.getsize(p) for p in (written.catalogue, written.truth, written.spectra)
                 if p)
    return {"steps": meter.steps, "file_bytes": bytes_}


def child_cli(folder, out):
    import sklearn_selfcal.io.spectra as spectra_io
    import sklearn_selfcal.outputs as outputs
    from sklearn_selfcal import cli

    meter = sys.stdout = StepMeter(sys.stdout, "imports")
    _wrap(spectra_io, "read_spectra", meter, "open the spectra file")
    _wrap(outputs, "write_outputs", meter, "write outputs")
    meter.mark("read catalogue, preflight")
    status = cli.main(["run", str(Path(folder) / "catalogue.parquet"), "--spectra",
                       str(Path(folder) / "spectra.h5"), "--out", str(out), "--overwrite",
                       "--random-state", "0"])
    meter.mark("end")
    summary = json.loads((Path(out) / "provenance.json").read_text())["summary"] if status == 0 \
        else {}
    return {"steps": meter.steps, "status": status, "n_parent": summary.get("n_parent")}


def child_memory(n_stars, n_pixels, n_jobs):
    from sklearn_selfcal.datasets import make_survey
    from sklearn_selfcal.workflow import run_method

    meter = sys.stdout = StepMeter(sys.stdout, "imports")
    meter.mark("make_survey (in memory)")
    survey = make_survey(n_stars, n_pixels=n_pixels, random_state=0, n_jobs=n_jobs)
    meter.mark("run_method preparation")
    result = run_method(survey.frame, survey.spectra, survey.spectra_err, random_state=0,
                        verbose=1)
    meter.mark("end")
    return {"steps": meter.steps, "n_parent": result.summary["n_parent"]}


def _child(argv):
    mode, limit_gb, *rest = argv
    if float(limit_gb) > 0:  # address-space cap: a failed allocation raises, no OOM killer
        import resource

        cap = int(float(limit_gb) * 1e9)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        if mode == "write":
            out = child_write(int(rest[0]), rest[1], int(rest[2]), int(rest[3]))
        elif mode == "cli":
            out = child_cli(rest[0], rest[1])
        else:
            out = child_memory(int(rest[0]), int(rest[1]), int(rest[2]))
    except BaseException as exc:   # report the steps done and where it failed
        import traceback

        meter = sys.stdout
        sys.stdout = sys.__stdout__
        steps = []
        if isinstance(meter, StepMeter):
            meter.mark("(failed)")
            steps = meter.steps
        print("RESULT " + json.dumps({"steps": steps, "error": traceback.format_exc()}),
              flush=True)
        raise SystemExit(1) from exc
    sys.stdout = sys.__stdout__
    print("RESULT " + json.dumps(out), flush=True)


# ------------------------------------------------------------------------------ the parent
def _spawn(args, log, limit_gb=0):
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run([sys.executable, __file__, "--child", args[0], str(limit_gb),
                               *map(str, args[1:])],
                              stdout=subprocess.PIPE, stderr=fh, text=True, env=os.environ)
    wall = time.perf_counter() - t0
    result = None
    with open(log, "a") as fh:
        fh.write(proc.stdout)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
    if result is None:
        tail = "\n".join(Path(log).read_text().splitlines()[-15:])
        return {"failed": proc.returncode, "wall": wall, "tail": tail}
    result["wall"] = wall
    return result


def _print_steps(title, result, feature_gb=None):
    print(f"\n  {title}: {result['wall']:.1f} s wall (process)")
    if "error" in result:
        print("    FAILED:\n      " + "\n      ".join(result["error"].splitlines()[-12:]))
    if "failed" in result:
        print(f"    FAILED (exit {result['failed']}); last lines of its log:")
        print("      " + result["tail"].replace("\n", "\n      "))
        return
    if not result["steps"]:
        return
    peak = max(s["peak_gb"] for s in result["steps"])
    for s in result["steps"]:
        if s["step"] == "imports" or (s["step"] == "end"):
            continue
        print(f"    {s['step']:<45s} {s['seconds']:9.1f} s   peak RSS {s['peak_gb']:6.2f} GB"
              f"  (anonymous {s.get('anon_gb', float('nan')):5.2f} GB)")
    anon = max(s.get("anon_gb", float("nan")) for s in result["steps"])
    line = f"    process peak RSS {peak:.2f} GB (anonymous {anon:.2f} GB)"
    if feature_gb:
        line += f"; float32 feature matrix {feature_gb:.2f} GB (peak / matrix {peak / feature_gb:.2f})"
    print(line)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[48_853, 200_000])
    parser.add_argument("--in-memory", type=int, nargs="*", default=[48_853],
                        help="sizes also run with make_survey in memory (none: --in-memory)")
    parser.add_argument("--n-pixels", type=int, default=7_514)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--steps", default="write,cli", help="write, cli or both")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the surveys are written (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the files written")
    parser.add_argument("--memory-limit", type=float, default=0.0,
                        help="cap each child's address space (GB; 0: none), so that a run too "
                             "big for the machine fails with MemoryError instead of waking "
                             "the OOM killer on a shared machine")
    args = parser.parse_args()
    steps = set(args.steps.split(","))
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=args.workdir))
    print(f"bench_scale: sizes {args.sizes}, {args.n_pixels} pixels, n_jobs={args.n_jobs}, "
          f"files in {base} ({shutil.disk_usage(base).free / 1e9:.0f} GB free)")
    try:
        for n in args.sizes:
            folder = base / f"survey-{n}"
            print(f"\n== {n:,} stars x {args.n_pixels:,} pixels "
                  f"(spectra file {8 * n * args.n_pixels / 1e9:.1f} GB)")
            if "write" in steps:
                w = _spawn(["write", n, folder, args.n_pixels, args.n_jobs],
                           base / f"write-{n}.log", args.memory_limit)
                _print_steps("write_survey", w)
                if "file_bytes" in w:
                    print(f"    files: {w['file_bytes'] / 1e9:.2f} GB, "
                          f"{w['file_bytes'] / 1e6 / w['wall']:.0f} MB/s over the whole write")
            if "cli" in steps:
                r = _spawn(["cli", folder, base / f"out-{n}"], base / f"cli-{n}.log",
                           args.memory_limit)
                gb = (r.get("n_parent") or 0) * (args.n_pixels + N_EXTRA_FEATURES) * 4 / 1e9
                _print_steps(f"sklearn-selfcal run (spectra on disk, n_parent "
                             f"{r.get('n_parent')})", r, gb or None)
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
                shutil.rmtree(base / f"out-{n}", ignore_errors=True)
        for n in args.in_memory:
            m = _spawn(["memory", n, args.n_pixels, args.n_jobs], base / f"memory-{n}.log",
                       args.memory_limit)
            gb = (m.get("n_parent") or 0) * (args.n_pixels + N_EXTRA_FEATURES) * 4 / 1e9
            _print_steps(f"in memory: make_survey + run_method, {n:,} stars (n_parent "
                         f"{m.get('n_parent')})", m, gb or None)
    finally:
        print(f"\nlogs in {base}")
        if not args.keep:
            for p in base.glob("survey-*"):
                shutil.rmtree(p, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2:])
    else:
        main()
