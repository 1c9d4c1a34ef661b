"""The ``sklearn-selfcal`` command: ``simulate``, ``demo``, ``check``, ``run`` and ``apply``.

* ``simulate`` -- write a simulated survey (``catalogue.parquet`` + ``spectra.h5``) in bounded
  memory, at any size;
* ``demo`` -- ``simulate`` followed by ``run``: the whole method on the built-in simulated survey
  (no download), its truth printed next to what was recovered;
* ``check CATALOGUE`` -- in seconds and before any computation: the column used for every role, the
  distance source, the stars passing each cut of the paper, the abundances to calibrate, and the
  configuration key that fixes anything missing; exits 1 when ``run`` could not proceed;
* ``run CATALOGUE --out DIR`` -- the same checks, then the method, then every output that can be
  made (``model.pkl``, the fitted Pipeline, among them), written into a private directory moved
  onto ``DIR`` at the end;
* ``apply MODEL CATALOGUE --out DIR`` -- a fitted model applied to another catalogue (a later data
  release, another spelling): the same roles, cleaning and cuts, the model's ``transform``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

__all__ = ["main", "build_parser", "script"]


def build_parser():
    """The argument parser of the ``sklearn-selfcal`` command.

    Returns
    -------
    parser : argparse.ArgumentParser
        With the sub-commands ``simulate``, ``demo``, ``check``, ``run`` and ``apply``.
    """
    parser = argparse.ArgumentParser(
        prog="sklearn-selfcal",
        description="Self-calibrated stellar abundances and Milky Way disk maps "
                    "(Eilers, Hogg, Rix et al. 2022).")
    sub = parser.add_subparsers(dest="command", required=True)

    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", type=Path, help="TOML or JSON file overriding the defaults")
    config.add_argument("--no-verify", action="store_true",
                        help="do not verify the FITS files' CHECKSUM/DATASUM cards (a file edited "
                             "on purpose); by default a damaged file is refused, named")
    config.add_argument("--random-state", type=int, default=0, help="seed of every random step")

    outputs = argparse.ArgumentParser(add_help=False)
    outputs.add_argument("--out", required=True, type=Path, help="output directory")
    outputs.add_argument("--overwrite", action="store_true",
                         help="replace the results of an earlier run in --out")
    outputs.add_argument("--quiet", action="store_true", help="no progress report")

    catalogue = argparse.ArgumentParser(add_help=False)
    catalogue.add_argument("catalogue", type=Path,
                           help="APOGEE + Gaia catalogue: allStar FITS (DR16/DR17), other FITS, "
                                "Parquet, CSV, ECSV or HDF5, in any recognised column spelling")
    catalogue.add_argument("--spectra", type=Path,
                           help="spectra aligned with the catalogue rows: .npy (+ <stem>_err.npy), "
                                "HDF5 (flux, flux_err), a text file listing aspcapStar files or a "
                                "glob pattern; the spectro-photometric parallax model is trained")
    catalogue.add_argument("--hdu", help="FITS table to read: a position or an INSTRMNT/EXTNAME "
                                          "value (default: APOGEE's of an SDSS-V astra file, HDU 2; "
                                          "else the first table; overrides [catalogue] hdu)")
    catalogue.add_argument("--distance", metavar="COLUMN",
                           help="use this distance column (unit and uncertainty from [distance] "
                                "or from the recognised catalogue) instead of the ones found")

    size = argparse.ArgumentParser(add_help=False)
    size.add_argument("--n-stars", type=_at_least(100), default=20_000,
                      help="stars in the survey (20,000; at least 100)")
    size.add_argument("--n-pixels", type=_at_least(1), default=7_514,
                      help="pixels per spectrum (7,514: the ASPCAP grid; at least 1)")
    sub.add_parser("simulate", parents=[config, outputs, size],
                   help="write a simulated survey: catalogue.parquet, spectra.h5 (flux, "
                        "flux_err), truth.parquet, params.json")
    sub.add_parser("demo", parents=[config, outputs, size],
                   help="simulate a survey, then run the whole method on it")
    sub.add_parser("check", parents=[catalogue, config],
                   help="check a catalogue for run: columns, distances, cuts; exit 1 if run "
                        "could not proceed")
    run = sub.add_parser("run", parents=[catalogue, config, outputs],
                         help="run the method on a catalogue")
    apply = sub.add_parser("apply", parents=[config, outputs],
                           help="apply a fitted model (model.pkl of an earlier run) to another "
                                "catalogue, e.g. of a later data release")
    apply.add_argument("model", type=Path, help="model.pkl written by run")
    apply.add_argument("catalogue", type=Path, help="the catalogue, in any recognised spelling")
    apply.add_argument("--spectra", type=Path,
                       help="its spectra, when the model predicts spectro-photometric parallaxes")
    apply.add_argument("--hdu", help="FITS table to read (as for run)")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="run on a Dask cluster: its scheduler's address (tcp://host:8786) or "
                          "scheduler file (.json), or 'local' for a LocalCluster on this machine "
                          "(overrides [dask] scheduler)")
    return parser


def _at_least(low):
    """An argparse type: an integer >= ``low`` (refused at once, before anything is computed)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is below the minimum of {low}")
        return value

    return parse


def _checked_config(path):
    """The configuration of ``--config``, every value validated by the step it sets (seconds)."""
    from .config import check_config, check_run_settings, config_params, load_config
    from .workflow import make_method_pipeline

    config = load_config(path)
    pipe = make_method_pipeline()
    problems = check_config(pipe.set_params(**config_params(config, pipe)))
    problems += check_run_settings(config)
    if problems:
        raise ValueError("invalid configuration: " + "; ".join(problems))
    return config


def _print(lines, file=None):
    print("\n".join(lines), file=file or sys.stdout, flush=True)


def _summary_lines(result, extra, paths, seconds):
    s = result.summary
    lines = ["", "sklearn-selfcal summary",
             f"  stars: {s['n_input']:,} in, {s['n_parent']:,} parent sample, "
             f"{s['n_disk']:,} disk sample",
             f"  distances: {s['distance_source']['description']}"]
    if "parallax_intrinsic_scatter" in s:
        lines.append(f"  spectro-photometric parallaxes: trained on "
                     f"{s['parallax_training_stars']:,} stars, intrinsic scatter "
                     f"{100 * s['parallax_intrinsic_scatter']:.1f} %")
    if "parallax_precision" in extra:
        p = extra["parallax_precision"]
        lines.append(f"  parallax precision vs truth (median |pred/true - 1|): spectro-photometric "
                     f"{100 * p['spectro_photometric']:.1f} %, Gaia {100 * p['gaia']:.1f} %")
    excluded = {k: v for k, v in s.get("excluded_by_flags", {}).items() if v}
    if excluded:
        lines.append("  excluded by allStar flags: " + ", ".join(f"{k} {v:,}" for k, v in
                                                                excluded.items()))
    cleaned = {c: sum(v.values()) for c, v in s.get("cleaning", {}).items()}
    if cleaned:
        top = sorted(cleaned.items(), key=lambda kv: -kv[1])[:6]
        lines.append(f"  values set to NaN (sentinels, out of range, flags) in {len(cleaned)} "
                     "column(s), e.g. " + ", ".join(f"{c} {n:,}" for c, n in top))
    if "n_calibration_training" in s:
        n = s["n_calibration_training"]
        lines.append(f"  calibration: {len(n)} abundances, {min(n.values()):,}-{max(n.values()):,}"
                     " training stars each")
    fit = s.get("feh_gradient")
    if fit is not None:
        injected = extra.get("injected_feh_gradient", {})
        truth = extra.get("truth_feh_gradient", {})
        lines.append("  [Fe/H] broken power law of the low-alpha disk: posterior median and 16-84 "
                     "% range (the paper's errors),\n  and the standard deviation with the "
                     "distance and calibration uncertainties propagated (all errors):")
        errors = s.get("feh_gradient_errors", {})
        header = f"    {'':>2}   {'recovered':>27}" + (f"   {'all errors':>10}" if errors else "")
        header += f"   {'truth, same fit':>16}" if truth else ""
        header += f"   {'injected':>8}" if injected else ""
        lines.append(header + "   unit")
        for name, unit in (("m1", "dex/kpc"), ("m2", "dex/kpc"), ("k", "kpc"), ("b", "dex")):
            f = fit[name]
            line = f"    {name:>2} = {f['median']:+9.4f} -{f['err_minus']:.4f} +{f['err_plus']:.4f}"
            line += f"   {'+-' + format(errors[name]['std_total'], '.4f'):>10}" if errors else ""
            line += f"   {truth[name]['median']:+16.4f}" if truth else ""
            line += f"   {injected[name]:+8.4f}" if injected else ""
            lines.append(line + f"   {unit}")
        if injected:
            lines.append("    (injected: in guiding radius; truth, same fit: the same binned fit to "
                         "the true\n     [Fe/H] at the true radius of the same stars, what a "
                         "perfect method recovers)")
    for step, why in result.skipped.items():
        lines.append(f"  skipped {step}: {why}")
    out = Path(paths["provenance"]).parent if paths else None
    lines.append(f"  outputs in {out} ({len(paths)} files), {seconds:.0f} s")
    return lines


def _truth_gradient(survey, result, config, random_state):
    """The same binned broken power-law fit on the true [Fe/H] at the true radius (same stars)."""
    from .workflow import profiles_and_fit

    disk = result.catalogue["DISK_SAMPLE"].to_numpy()
    truth = survey.truth[disk]
    frame = truth[["R"]].assign(FE_H_NEW=truth["FE_H"], ALPHA_M_NEW=truth["ALPHA_M"])
    regressor = profiles_and_fit(frame, config["gradient"], random_state=random_state).regressor
    if regressor is None:
        return {}
    return {name: {"median": float(row["median"]), "err_minus": float(row["err_minus"]),
                   "err_plus": float(row["err_plus"])} for name, row in regressor.summary_.iterrows()}


def _simulate_into(directory, args, verbose):
    """``write_survey`` of the command's size and seed into ``directory``."""
    from .datasets import write_survey

    if verbose:
        print(f"[sklearn-selfcal] simulating {args.n_stars:,} stars x {args.n_pixels:,} pixels "
              f"into {directory} ...", flush=True)
    return write_survey(args.n_stars, directory, n_pixels=args.n_pixels,
                        random_state=args.random_state, n_jobs=os.cpu_count(), overwrite=True,
                        verbose=verbose)


def _simulate(args):
    from .io.outdir import OutputDirectory

    _checked_config(args.config)  # a bad config is reported before anything is simulated
    verbose = 0 if args.quiet else 1
    outdir = OutputDirectory(args.out, args.overwrite)
    with outdir as tmp:
        written = _simulate_into(tmp, args, verbose)
    names = {k: outdir.path / Path(v).name for k, v in written.items()
             if k in ("catalogue", "spectra", "truth", "params")}
    _print([f"simulated survey of {args.n_stars:,} stars x {args.n_pixels:,} pixels in "
            f"{outdir.path}:"] + [f"  {k:<10} {v}" for k, v in names.items()] +
           [f"run the method on it with: sklearn-selfcal run {names['catalogue']} --spectra "
            f"{names['spectra']} --out <directory>"])
    return 0


def _demo(args):
    from .datasets import load_survey
    from .io.outdir import OutputDirectory
    from .workflow import run_method

    t0 = time.perf_counter()
    config = _checked_config(args.config)
    verbose = 0 if args.quiet else 1
    outdir = OutputDirectory(args.out, args.overwrite)
    outdir.check()
    with outdir as tmp, _EarlyFigures(config, args.random_state, verbose) as figures:
        # simulate, then run on the files: spectra read from disk by rows
        written = _simulate_into(tmp / "survey", args, verbose)
        survey = load_survey(tmp / "survey")
        result = run_method(survey.frame, survey.spectra, survey.spectra_err, config=config,
                            random_state=args.random_state, verbose=verbose, scratch_dir=tmp,
                            before_fit=figures.start)
        paths, extra = _demo_outputs(args, config, survey, result, tmp, verbose, figures.job)
        paths.update({f"survey_{k}": str(v) for k, v in written.items()
                      if k in ("catalogue", "spectra", "truth", "params")})
    paths = {k: str(outdir.path / Path(v).relative_to(tmp)) for k, v in paths.items()}
    _print(_summary_lines(result, extra, paths, time.perf_counter() - t0))
    return 0


class _EarlyFigures(contextlib.AbstractContextManager):
    """The figures of a run drawn early: their workers start with the command (their imports take
    a core ~2 s while the first steps leave one idle), and ``start`` (run_method's ``before_fit``)
    has them draw the figures that need neither the profiles nor the fit while these are fitted
    (:func:`~sklearn_selfcal.outputs.start_run_figures`); ``job`` goes to ``write_outputs``. The
    workers are stopped if the command fails before."""

    def __init__(self, config, random_state, verbose):
        from .figures import start_workers

        self.random_state, self.verbose, self.job = random_state, verbose, None
        self.workers = start_workers() if config["figures"]["enabled"] else None

    def start(self, result):
        from .outputs import start_run_figures

        self.job = start_run_figures(result, random_state=self.random_state, verbose=self.verbose,
                                     workers=self.workers)
        self.workers = None  # the job's now

    def __exit__(self, *exc):
        if exc[0] is not None:
            for owner in (self.job, self.workers):
                if owner is not None:
                    owner.close()


def _demo_outputs(args, config, survey, result, tmp, verbose, figures=None):
    """The demo's outputs: those of ``run``, with the truth of the simulation beside them."""
    from ._paper import correct_parallax
    from .outputs import write_outputs

    parent = result.catalogue["PARENT_SAMPLE"].to_numpy()
    true = survey.truth["parallax"].to_numpy()[parent]
    gaia = correct_parallax(survey.frame["parallax"].to_numpy()[parent],
                            config["distance"]["parallax_zero_point"])
    spec = result.catalogue["spec_parallax"].to_numpy()[parent]
    extra = {
        "injected_feh_gradient": survey.params["feh_gradient"],
        "parallax_precision": {
            "spectro_photometric": float(np.nanmedian(np.abs(spec / true - 1))),
            "gaia": float(np.nanmedian(np.abs(gaia / true - 1))),
        },
        "simulation": {"n_stars": args.n_stars, "n_pixels": args.n_pixels,
                       "random_state": args.random_state},
    }

    def with_truth():  # the truth's fit runs while the figures are drawn
        extra["truth_feh_gradient"] = _truth_gradient(survey, result, config, args.random_state)
        return extra

    paths = write_outputs(result, tmp, random_state=args.random_state, command=sys.argv,
                          extra=with_truth, verbose=verbose, figures=figures)
    return paths, extra


def _inspect(args, config):
    """Plan, read, clean, validate the configuration and count: what ``check`` prints and ``run``
    starts from, all before any computation."""
    from .config import check_run_settings
    from .io import catalogue_columns, read_catalogue
    from .io.spectra import spectra_rows
    from .preflight import count_cuts, plan_and_prepare, plan_run, summary_lines
    from .selection import DiskTrainingFilter
    from .workflow import pipeline_from_config

    t0 = time.perf_counter()
    hdu = args.hdu if args.hdu is not None else config["catalogue"]["hdu"]
    columns = catalogue_columns(args.catalogue, hdu)
    spectra = args.spectra is not None
    plan = plan_run(columns, config, spectra=spectra, distance_column=args.distance)
    if spectra:
        n_spectra, has_errors = spectra_rows(args.spectra)
    read = None if config["output"]["columns"] == "all" else plan.read_columns()
    frame = read_catalogue(args.catalogue, columns=read, gaia_names=False, clean=False, hdu=hdu)
    plan, prepared = plan_and_prepare(frame, config, spectra=spectra,
                                      distance_column=args.distance, columns=columns)
    if spectra and not has_errors:
        plan.problems.append(f"{args.spectra}: no flux uncertainties (a <stem>_err.npy file or "
                             "an HDF5 dataset flux_err); they are needed to mask bad pixels")
    if spectra and n_spectra != len(frame):
        plan.problems.append(f"{args.spectra}: {n_spectra} spectra for {len(frame)} catalogue "
                             "rows; they must be aligned row by row")
    plan.problems += check_run_settings(config)
    training_filter = DiskTrainingFilter()
    if plan.distance is not None:
        try:  # every value of the configuration, validated by the step it sets
            pipe = pipeline_from_config(config, plan, columns=prepared.work.columns)
            training_filter = pipe.get_params()["calibrate__calibrator__training_filter"]
        except ValueError as exc:
            plan.problems.append(str(exc))
    counts = None
    if plan.sample is not None:
        counts = count_cuts(prepared.work, plan, training_filter,
                            n_jobs=config["actions"].get("n_jobs"), random_state=args.random_state)
    lines = summary_lines(plan, counts, path=args.catalogue, n_rows=len(frame),
                          seconds=time.perf_counter() - t0, source=frame.attrs.get("source"))
    return plan, frame, prepared, counts, lines


def _check(args):
    from .config import load_config

    config = load_config(args.config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan, _, prepared, _, lines = _inspect(args, config)
    quality = sorted({str(w.message) for w in caught
                      if w.category.__name__ == "DataQualityWarning"})
    if quality:
        lines[-1:-1] = [f"cleaning: {len(quality)} column(s) with values set to NaN:"] + \
                       [f"  {q}" for q in quality[:40]]
    _print(lines)
    return 0 if plan.can_run else 1


def _run(args):
    from .io.outdir import OutputDirectory
    from .io.spectra import read_spectra
    from .outputs import write_outputs
    from .workflow import run_method

    t0 = time.perf_counter()
    config = _checked_config(args.config)
    verbose = 0 if args.quiet else 1
    outdir = OutputDirectory(args.out, args.overwrite)
    # locked for the whole run; moved into place only if it succeeds
    with outdir as tmp, _EarlyFigures(config, args.random_state, verbose) as figures:
        plan, frame, prepared, counts, lines = _inspect(args, config)
        if verbose or not plan.can_run:
            _print(lines, file=None if plan.can_run else sys.stderr)
        if not plan.can_run:
            raise _CannotRun
        inputs = [args.catalogue]
        flux = flux_err = None
        if args.spectra is not None:
            spectra = read_spectra(args.spectra, on_disk=True)  # rows read when needed
            flux, flux_err = spectra.flux, spectra.flux_err
            inputs += [Path(p) for p in (spectra.get("paths") or [args.spectra])]
        if args.config is not None:
            inputs.append(args.config)
        scheduler = args.scheduler or config["dask"]["scheduler"]
        with contextlib.ExitStack() as stack:
            client = None
            if scheduler:
                from .scaleout import dask_client

                client = stack.enter_context(dask_client(
                    scheduler, n_workers=config["dask"]["n_workers"] or None))
                if verbose:
                    _print([f"Dask cluster: {scheduler} ({len(client.nthreads())} workers, "
                            f"{sum(client.nthreads().values())} threads)"])
            result = run_method(frame, flux, flux_err, config=config,
                                random_state=args.random_state, verbose=verbose, plan=plan,
                                prepared=prepared, client=client, scratch_dir=tmp,
                                before_fit=figures.start)
        result.summary["scheduler"] = scheduler or None
        checks = counts.table.to_dict(orient="records") if counts is not None else None
        paths = write_outputs(result, tmp, random_state=args.random_state, inputs=inputs,
                              command=sys.argv, checks=checks, verbose=verbose, figures=figures.job)
    paths = {k: str(outdir.path / Path(v).relative_to(tmp)) for k, v in paths.items()}
    _print(_summary_lines(result, {}, paths, time.perf_counter() - t0))
    return 0


def _apply(args):
    import joblib
    from sklearn.pipeline import Pipeline

    from .io import read_catalogue, write_catalogue
    from .io.outdir import OutputDirectory
    from .io.spectra import read_spectra
    from .outputs import provenance, write_json
    from .workflow import apply_method

    t0 = time.perf_counter()
    config = _checked_config(args.config)
    verbose = 0 if args.quiet else 1
    try:
        pipeline = joblib.load(args.model)
    except Exception as exc:  # a damaged or foreign file: named, whatever the unpickler raised
        raise ValueError(f"{args.model}: not a model written by sklearn-selfcal run ({exc})") \
            from None
    if not isinstance(pipeline, Pipeline) or "calibrate" not in pipeline.named_steps:
        raise ValueError(f"{args.model}: not a model written by sklearn-selfcal run (a fitted "
                         "method Pipeline)")
    hdu = args.hdu if args.hdu is not None else config["catalogue"]["hdu"]
    frame = read_catalogue(args.catalogue, gaia_names=False, clean=False, hdu=hdu)
    flux = flux_err = None
    if args.spectra is not None:
        spectra = read_spectra(args.spectra, on_disk=True)
        flux, flux_err = spectra.flux, spectra.flux_err
    outdir = OutputDirectory(args.out, args.overwrite)
    with outdir as tmp:
        result = apply_method(pipeline, frame, flux, flux_err, config=config, verbose=verbose)
        write_catalogue(result.catalogue, tmp / "catalogue.parquet")
        write_catalogue(result.catalogue, tmp / "catalogue.fits", non_ascii="escape")
        inputs = [args.model, args.catalogue] + ([args.spectra] if args.spectra else [])
        write_json(provenance(config=config, random_state=args.random_state, inputs=inputs,
                               command=sys.argv, extra={"summary": result.summary}),
                    tmp / "provenance.json")
    s = result.summary
    _print([f"applied {args.model} to {args.catalogue}: {s['n_input']:,} rows, "
            f"{s['n_parent']:,} in the parent sample, {s['n_disk']:,} in the disk sample",
            *([f"  columns of the model absent from the catalogue (NaN): {result.missing}"]
              if result.missing else []),
            f"  outputs in {outdir.path}, {time.perf_counter() - t0:.0f} s"])
    return 0


def script():
    """Entry point of the ``sklearn-selfcal`` console script: :func:`main`, then the process ends.

    Once the command is done -- its files written, closed and moved into place -- the exit
    handlers run and the output streams are flushed, then the process ends without the
    interpreter's tear-down of its ~2,500 modules and of the run's data (0.5-1 s of a core at the
    demo's size, spent after the last output). It exits with ``main``'s status and never
    returns; an exception ``main`` raises ends the process as usual, with its traceback.
    """
    import atexit

    status = main()
    atexit._run_exitfuncs()  # what the interpreter's exit would run: joblib's, loky's, ...
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


class _CannotRun(Exception):
    """The preflight found a problem; its report is already printed."""


def main(argv=None):
    """Entry point of ``sklearn-selfcal`` and ``python -m sklearn_selfcal``.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 on success; 1 with a message on a user error (bad input, output directory in use or
        not empty, a catalogue the method cannot run on).
    """
    from .io import verify_checksums
    from .io.outdir import OutputLockedError

    args = build_parser().parse_args(argv)
    try:
        with verify_checksums(not args.no_verify):
            return {"simulate": _simulate, "demo": _demo, "check": _check, "run": _run,
                    "apply": _apply}[args.command](args)
    except _CannotRun:
        return 1
    except (OSError, KeyError, ValueError, OutputLockedError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"sklearn-selfcal {args.command}: error: {message}", file=sys.stderr)
        return 1
