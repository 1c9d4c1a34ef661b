"""The ``sklearn-selfcal`` command: ``demo`` on a simulated survey, ``run`` on a user's catalogue."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "build_parser"]


def build_parser():
    """The argument parser of the ``sklearn-selfcal`` command."""
    parser = argparse.ArgumentParser(
        prog="sklearn-selfcal",
        description="Self-calibrated stellar abundances and Milky Way disk maps "
                    "(Eilers, Hogg, Rix et al. 2022).")
    sub = parser.add_subparsers(dest="command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", required=True, type=Path, help="output directory")
    common.add_argument("--config", type=Path, help="TOML or JSON file overriding the defaults")
    common.add_argument("--random-state", type=int, default=0, help="seed of every random step")
    common.add_argument("--overwrite", action="store_true",
                        help="replace the files of a non-empty output directory")
    common.add_argument("--quiet", action="store_true", help="no progress report")

    demo = sub.add_parser("demo", parents=[common],
                          help="run the whole method on the built-in simulated survey")
    demo.add_argument("--n-stars", type=int, default=20_000, help="stars in the survey (20,000)")
    demo.add_argument("--n-pixels", type=int, default=7_514,
                      help="pixels per spectrum (7,514: the ASPCAP grid)")

    run = sub.add_parser("run", parents=[common], help="run the method on a catalogue")
    run.add_argument("catalogue", type=Path,
                     help="APOGEE + Gaia catalogue: allStar FITS, other FITS, Parquet or CSV")
    run.add_argument("--spectra", type=Path,
                     help="spectra aligned with the catalogue rows: .npy (+ <stem>_err.npy), HDF5 "
                          "(flux, flux_err) or a text file listing aspcapStar files; without it "
                          "the catalogue must hold spec_parallax and spec_parallax_err")
    return parser


def _print_summary(result, extra, paths, seconds):
    s = result.summary
    print("\nsklearn-selfcal summary")
    print(f"  stars: {s['n_input']} in, {s['n_parent']} parent sample, {s['n_disk']} disk sample")
    if "parallax_intrinsic_scatter" in s:
        print(f"  spectro-photometric parallaxes: trained on {s['parallax_training_stars']} stars, "
              f"intrinsic scatter {100 * s['parallax_intrinsic_scatter']:.1f} %")
    if "parallax_precision" in extra:
        p = extra["parallax_precision"]
        print(f"  parallax precision vs truth (median |pred/true - 1|): spectro-photometric "
              f"{100 * p['spectro_photometric']:.1f} %, Gaia {100 * p['gaia']:.1f} %")
    fit = s["feh_gradient"]
    injected = extra.get("injected_feh_gradient", {})
    truth = extra.get("truth_feh_gradient", {})
    print("  [Fe/H] broken power law of the low-alpha disk (posterior median and 16-84 % range):")
    header = f"    {'':>2}   {'recovered':>27}"
    if truth:
        header += f"   {'truth, same fit':>16}"
    if injected:
        header += f"   {'injected':>8}"
    print(header + "   unit")
    for name, unit in (("m1", "dex/kpc"), ("m2", "dex/kpc"), ("k", "kpc"), ("b", "dex")):
        f = fit[name]
        line = f"    {name:>2} = {f['median']:+9.4f} -{f['err_minus']:.4f} +{f['err_plus']:.4f}"
        if truth:
            line += f"   {truth[name]['median']:+16.4f}"
        if injected:
            line += f"   {injected[name]:+8.4f}"
        print(line + f"   {unit}")
    if injected:
        print("    (injected: in guiding radius; truth, same fit: the same binned fit to the true\n"
              "     [Fe/H] at the true radius of the same stars, what a perfect method recovers)")
    print(f"  outputs in {Path(paths['provenance']).parent} ({len(paths)} files), "
          f"{seconds:.0f} s")


def _truth_gradient(survey, result, config, random_state):
    """The same binned broken power-law fit on the true [Fe/H] at the true radius (same stars)."""
    from .workflow import gradients

    disk = result.catalogue["DISK_SAMPLE"].to_numpy()
    truth = survey.truth[disk]
    frame = truth[["R"]].assign(FE_H_NEW=truth["FE_H"], ALPHA_M_NEW=truth["ALPHA_M"])
    _, regressor = gradients(frame, random_state=random_state, **config["gradient"])
    return {name: {"median": float(row["median"]), "err_minus": float(row["err_minus"]),
                   "err_plus": float(row["err_plus"])} for name, row in regressor.summary_.iterrows()}


def _demo(args):
    from ._paper import correct_parallax
    from .datasets import make_survey
    from .workflow import load_config, prepare_output_dir, run_method, write_outputs

    t0 = time.perf_counter()
    out = prepare_output_dir(args.out, args.overwrite)
    config = load_config(args.config)
    verbose = 0 if args.quiet else 1
    if verbose:
        print(f"[sklearn-selfcal] simulating {args.n_stars} stars x {args.n_pixels} pixels ...",
              flush=True)
    survey = make_survey(args.n_stars, n_pixels=args.n_pixels, random_state=args.random_state,
                         n_jobs=-1)
    result = run_method(survey.frame, survey.spectra, survey.spectra_err, config=config,
                        random_state=args.random_state, verbose=verbose)
    extra_truth = _truth_gradient(survey, result, config, args.random_state)
    parent = result.catalogue["PARENT_SAMPLE"].to_numpy()
    true = survey.truth["parallax"].to_numpy()[parent]
    gaia = correct_parallax(survey.frame["parallax"].to_numpy()[parent],
                           config["parallax"]["parallax_zero_point"])
    spec = result.catalogue["spec_parallax"].to_numpy()[parent]
    extra = {
        "injected_feh_gradient": survey.params["feh_gradient"],
        "truth_feh_gradient": extra_truth,
        "parallax_precision": {
            "spectro_photometric": float(np.nanmedian(np.abs(spec / true - 1))),
            "gaia": float(np.nanmedian(np.abs(gaia / true - 1))),
        },
        "simulation": {"n_stars": args.n_stars, "n_pixels": args.n_pixels,
                       "random_state": args.random_state},
    }
    paths = write_outputs(result, out, random_state=args.random_state, command=sys.argv,
                          extra=extra, verbose=verbose)
    _print_summary(result, extra, paths, time.perf_counter() - t0)
    return 0


def _run(args):
    from .io import read_catalogue, read_spectra
    from .workflow import load_config, prepare_output_dir, run_method, write_outputs

    t0 = time.perf_counter()
    out = prepare_output_dir(args.out, args.overwrite)
    config = load_config(args.config)
    frame = read_catalogue(args.catalogue)
    inputs = [args.catalogue]
    flux = flux_err = None
    if args.spectra is not None:
        spectra = read_spectra(args.spectra)
        flux, flux_err = spectra.flux, spectra.flux_err
        if flux.shape[0] != len(frame):
            raise ValueError(f"{args.spectra}: {flux.shape[0]} spectra for {len(frame)} catalogue "
                             "rows; they must be aligned row by row")
        if flux_err is None:
            raise ValueError(f"{args.spectra}: no flux uncertainties found (needed to mask bad "
                             "pixels and propagate feature errors)")
        inputs += [Path(p) for p in (spectra.get("paths") or [args.spectra])]
    if args.config is not None:
        inputs.append(args.config)
    verbose = 0 if args.quiet else 1
    result = run_method(frame, flux, flux_err, config=config, random_state=args.random_state,
                        verbose=verbose)
    paths = write_outputs(result, out, random_state=args.random_state, inputs=inputs,
                          command=sys.argv, verbose=verbose)
    _print_summary(result, {}, paths, time.perf_counter() - t0)
    return 0


def main(argv=None):
    """Entry point of ``sklearn-selfcal`` and ``python -m sklearn_selfcal``.

    Returns
    -------
    status : int
        0 on success; 1 with a one-line message on a user error (bad input, non-empty output
        directory).
    """
    args = build_parser().parse_args(argv)
    try:
        return {"demo": _demo, "run": _run}[args.command](args)
    except (FileExistsError, FileNotFoundError, KeyError, ValueError, NotADirectoryError) as err:
        print(f"sklearn-selfcal {args.command}: error: {err}", file=sys.stderr)
        return 1
