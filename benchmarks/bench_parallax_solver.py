"""Benchmark: solvers for the paper's L1-penalised exponential-linear parallax model.

On one simulated training set (``make_survey``; default 40,000 stars x 7,514 pixels, float32
features from ``SpectroPhotometricFeatures``) and one ``alpha`` (default the paper's lambda = 160,
i.e. ``PAPER_ALPHA``), in the same process, it runs

1. this package's solver: ``SpectroPhotometricParallaxRegressor.fit`` (working-set Gauss-Newton,
   timed end to end including input validation and the unpenalised warm-up);
2. the paper's approach: scipy's L-BFGS-B on the same objective with ``alpha * sign(theta)`` as the
   gradient of the penalty, started at ``theta = 0.001 / D``;
3. a generic baseline: FISTA with backtracking (``solve_fista``), started at the same unpenalised
   optimum as (1), with a wall-time cap;

and prints for each the wall time, the final objective, the relative KKT residual (largest
violation of the optimality conditions over ``alpha``, all computed by the same function),
the number of exact zeros among the penalised coefficients and the mean chi-squared per star of
held-out stars. Then (``--cv``) it times ``SpectroPhotometricParallaxRegressorCV`` (a warm-started
path over 8 alphas, K folds) against a cold ``GridSearchCV`` over the same alphas and folds.

Run (full size: ~40 minutes, most of it FISTA's time cap, and ~6 GB):
``python benchmarks/bench_parallax_solver.py --n-stars 40000 --n-pixels 7514 --cv``
(``--alpha-scan 0.001 0.0002`` adds fits at smaller alphas: time, peak memory, held-out chi2).
Quick: ``python benchmarks/bench_parallax_solver.py --n-stars 4000 --n-pixels 1000 --cv``
BLAS threads default to 1 (``--threads``) so that timings are not distorted by other jobs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from sklearn.model_selection import GridSearchCV, KFold

from sklearn_selfcal import (SpectroPhotometricParallaxRegressor,
                             SpectroPhotometricParallaxRegressorCV)
from sklearn_selfcal._kernels.explinear_l1 import (
    ExpLinearChi2, WeightedL1, kkt_residual, matvec, rmatvec, safe_exp, solve_gauss_newton)
from sklearn_selfcal.datasets import make_survey
from sklearn_selfcal._paper import GAIA_PARALLAX_ZERO_POINT, PAPER_ALPHA
from sklearn_selfcal.parallax import ChiSquaredScorer, chi_squared

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _fista import solve_fista  # noqa: E402  (the generic baseline lives with the tests)
from sklearn_selfcal.parallax_features import (SpectroPhotometricFeatures, gaia_training_mask,
                                               join_spectra)


def simulate_features(n_stars, n_pixels, random_state, chunk=2000):
    """make_survey -> quality cuts -> float32 features (built in row chunks to bound memory)."""
    survey = make_survey(n_stars=n_stars, n_pixels=n_pixels, random_state=random_state)
    keep = np.flatnonzero(gaia_training_mask(survey.frame))
    frame = survey.frame.iloc[keep].reset_index(drop=True)
    features = SpectroPhotometricFeatures()
    first = keep[:min(len(keep), 5 * chunk)]
    features.fit(join_spectra(frame.iloc[:len(first)], survey.spectra[first],
                              survey.spectra_err[first]))
    X = np.empty((len(keep), len(features.get_feature_names_out())), dtype=np.float32)
    for start in range(0, len(keep), chunk):
        rows = keep[start:start + chunk]
        X[start:start + len(rows)] = features.transform(join_spectra(
            frame.iloc[start:start + len(rows)], survey.spectra[rows], survey.spectra_err[rows]))
    names = features.get_feature_names_out()
    y = frame["parallax"].to_numpy()
    sigma = frame["parallax_error"].to_numpy()
    true = survey.truth["parallax"].to_numpy()[keep]
    return X, names, y, sigma, true


def problem_pieces(X, names, y, sigma, zero_point):
    """Datafit, penalised columns and unpenalised block exactly as the estimator builds them."""
    probe = SpectroPhotometricParallaxRegressor()
    probe.feature_names_in_ = np.asarray(names, dtype=object)
    mask = probe._penalized_mask(X.shape[1])
    pen, unpen = np.flatnonzero(mask), np.flatnonzero(~mask)
    U = np.column_stack([np.ones(X.shape[0]), X[:, unpen].astype(np.float64)])
    datafit = ExpLinearChi2(y - zero_point, 1.0 / (sigma**2 * len(y)))
    return pen, unpen, U, datafit


def evaluate(X, pen, U, datafit, alpha, coef_u, coef_p):
    eta = U @ coef_u + matvec(X, pen, coef_p)
    v = datafit.raw_grad(eta)
    g_u, g_p = U.T @ v, rmatvec(X, v)[pen]
    penalty = WeightedL1(alpha, np.ones(len(pen)))
    return (datafit.value(eta) + penalty.value(coef_p), kkt_residual(g_u, coef_p, g_p, penalty),
            int(np.sum(coef_p == 0)))


def heldout_chi2(X, pen, U, y, sigma, coef_u, coef_p, zero_point):
    pred = safe_exp(U @ coef_u + matvec(X, pen, coef_p))
    return chi_squared(y, pred, parallax_error=sigma, parallax_zero_point=zero_point), pred


def paper_lbfgsb(X, pen, U, datafit, alpha, max_time):
    """The paper's approach: L-BFGS-B with alpha * sign(theta) as the penalty's gradient."""
    k, p = U.shape[1], len(pen)
    x0 = np.full(k + p, 0.001 / (k + p))
    t0 = time.perf_counter()

    def fun(theta):
        eta = U @ theta[:k] + matvec(X, pen, theta[k:])
        v = datafit.raw_grad(eta)
        g = np.concatenate([U.T @ v, rmatvec(X, v)[pen] + alpha * np.sign(theta[k:])])
        return datafit.value(eta) + alpha * np.abs(theta[k:]).sum(), g

    def stop(intermediate_result):
        if time.perf_counter() - t0 > max_time:
            raise StopIteration

    res = minimize(fun, x0, jac=True, method="L-BFGS-B", callback=stop,
                   options={"maxiter": 100000, "maxfun": 100000})
    return res.x[:k], res.x[k:], f"{res.nit} iterations, {res.nfev} evaluations: {res.message}"


def peak_memory(func):
    """Run ``func()``; return its result and the rise of the peak RSS during it (GB, or NaN).

    Linux only: the peak (``VmHWM``) is reset through ``/proc/self/clear_refs``.
    """
    def status():
        with open("/proc/self/status") as fh:
            d = dict(line.split(":", 1) for line in fh)
        return int(d["VmRSS"].split()[0]) / 2**20, int(d["VmHWM"].split()[0]) / 2**20

    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        before = status()[0]
    except OSError:
        return func(), float("nan")
    out = func()
    return out, status()[1] - before


def report(name, seconds, objective, kkt, zeros, n_pen, chi2, note=""):
    print(f"{name:<34s} {seconds:9.1f} s  objective {objective:.10g}  KKT {kkt:9.2e}  "
          f"zeros {zeros:5d}/{n_pen}  held-out chi2 {chi2:.4f}  {note}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-stars", type=int, default=40000, help="training stars")
    ap.add_argument("--n-pixels", type=int, default=7514)
    ap.add_argument("--n-test", type=int, default=5000, help="held-out stars")
    ap.add_argument("--alpha", type=float, default=PAPER_ALPHA)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--fista-max-time", type=float, default=1800.0, help="s")
    ap.add_argument("--fista-shrink", type=float, default=1.0,
                    help="FISTA's per-iteration Lipschitz decrease factor (1 = plain backtracking)")
    ap.add_argument("--lbfgs-max-time", type=float, default=900.0, help="s")
    ap.add_argument("--alpha-scan", type=float, nargs="*", default=[],
                    help="also fit at these alphas (time, memory, held-out chi2)")
    ap.add_argument("--cv", action="store_true", help="also time CV path vs cold grid search")
    ap.add_argument("--cv-folds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads")
    ap.add_argument("--random-state", type=int, default=0)
    args = ap.parse_args()

    with threadpool_limits(args.threads):
        t = time.perf_counter()
        # simulate a bit more than needed: the quality cuts remove ~2 % of stars
        n_sim = int(1.03 * (args.n_stars + args.n_test)) + 50
        X_all, names, y_all, sig_all, true_all = simulate_features(n_sim, args.n_pixels,
                                                                   args.random_state)
        n = min(args.n_stars, X_all.shape[0] - args.n_test)
        X, y, sigma = X_all[:n], y_all[:n], sig_all[:n]
        Xte, yte, sigte, truete = (X_all[n:n + args.n_test], y_all[n:n + args.n_test],
                                   sig_all[n:n + args.n_test], true_all[n:n + args.n_test])
        print(f"data: {n} training x {X.shape[1]} features ({X.dtype}, {X.nbytes / 2**30:.2f} GB), "
              f"{len(yte)} held out, {np.mean(y < 0):.1%} negative parallaxes; "
              f"simulated in {time.perf_counter() - t:.0f} s; alpha = {args.alpha:.4g}, "
              f"tol = {args.tol:g}, {args.threads} BLAS thread(s)", flush=True)

        pen, unpen, U, datafit = problem_pieces(X, names, y, sigma, GAIA_PARALLAX_ZERO_POINT)
        Ute = np.column_stack([np.ones(len(yte)), Xte[:, unpen].astype(np.float64)])

        # 1. this package (a DataFrame view of X carries the feature names, so that the
        # magnitudes and LSF moments are left unpenalised; no copy is made)
        Xdf = pd.DataFrame(X, columns=names, copy=False)
        t = time.perf_counter()
        model, extra_gb = peak_memory(lambda: SpectroPhotometricParallaxRegressor(
            alpha=args.alpha, tol=args.tol, max_iter=200).fit(Xdf, y, parallax_error=sigma))
        t_ours = time.perf_counter() - t
        cu = np.concatenate([[model.intercept_], model.coef_[unpen]])
        cp = model.coef_[pen]
        obj, kkt, zeros = evaluate(X, pen, U, datafit, args.alpha, cu, cp)
        chi2, pred = heldout_chi2(Xte, pen, Ute, yte, sigte, cu, cp, GAIA_PARALLAX_ZERO_POINT)
        report("working-set Newton (ours)", t_ours, obj, kkt, zeros, len(pen), chi2,
               f"{model.n_iter_} outer iterations; held-out median |pred/true - 1| = "
               f"{np.median(np.abs(pred / truete - 1)):.4f}; peak memory +{extra_gb:.2f} GB")
        best = obj

        # 2. the paper's approach
        t = time.perf_counter()
        lu, lp, note = paper_lbfgsb(X, pen, U, datafit, args.alpha, args.lbfgs_max_time)
        t_lb = time.perf_counter() - t
        obj_lb, kkt_lb, zeros_lb = evaluate(X, pen, U, datafit, args.alpha, lu, lp)
        chi2_lb, _ = heldout_chi2(Xte, pen, Ute, yte, sigte, lu, lp, GAIA_PARALLAX_ZERO_POINT)
        report("paper: L-BFGS-B + sign(theta)", t_lb, obj_lb, kkt_lb, zeros_lb, len(pen), chi2_lb,
               f"{note}; objective / optimum = {obj_lb / best:.3g}")

        # 3. FISTA with backtracking from the same unpenalised optimum
        warm = solve_gauss_newton(X, pen[:0], U, datafit, WeightedL1(0.0, np.zeros(0)),
                                  coef_u=np.r_[np.log(np.mean(y - GAIA_PARALLAX_ZERO_POINT)),
                                               np.zeros(U.shape[1] - 1)], tol=1e-10)
        t = time.perf_counter()
        fista = solve_fista(X, pen, U, datafit, WeightedL1(args.alpha, np.ones(len(pen))),
                            coef_u=warm.coef_u, tol=args.tol,
                            max_time=args.fista_max_time, check_every=20,
                            shrink=args.fista_shrink)
        t_fi = time.perf_counter() - t
        obj_fi, kkt_fi, zeros_fi = evaluate(X, pen, U, datafit, args.alpha, fista.coef_u,
                                            fista.coef_p)
        chi2_fi, _ = heldout_chi2(Xte, pen, Ute, yte, sigte, fista.coef_u, fista.coef_p,
                                  GAIA_PARALLAX_ZERO_POINT)
        report(f"FISTA + backtracking (shrink {args.fista_shrink:g})", t_fi, obj_fi, kkt_fi,
               zeros_fi, len(pen), chi2_fi,
               f"{fista.n_iter} iterations, converged={fista.converged}")
        sign = "" if fista.converged else ">= "
        print(f"\nspeed-up of ours over FISTA: {sign}{t_fi / t_ours:.1f}x "
              f"(FISTA {'reached' if fista.converged else 'did not reach'} KKT <= {args.tol:g}"
              f"{'' if fista.converged else f' within {args.fista_max_time:.0f} s'}); "
              f"ours over the paper's L-BFGS-B: {t_lb / t_ours:.2f}x in time, with objective "
              f"{obj_lb / best:.3g}x the optimum", flush=True)

        if args.alpha_scan:
            alpha_scan(Xdf, y, sigma, Xte, yte, sigte, truete, names, args)
        if args.cv:
            cv_benchmark(Xdf, y, sigma, args)


def alpha_scan(Xdf, y, sigma, Xte, yte, sigte, truete, names, args):
    """Time, memory and held-out quality of this package's fit at other alphas."""
    print("\nalpha scan (this package's solver):", flush=True)
    Xte = pd.DataFrame(Xte, columns=names, copy=False)
    x_gb = Xdf.to_numpy().nbytes / 2**30
    for alpha in args.alpha_scan:
        t = time.perf_counter()
        model, extra_gb = peak_memory(lambda: SpectroPhotometricParallaxRegressor(
            alpha=alpha, tol=args.tol, max_iter=300).fit(Xdf, y, parallax_error=sigma))
        seconds = time.perf_counter() - t
        pred = model.predict(Xte)
        chi2 = chi_squared(yte, pred, parallax_error=sigte, parallax_zero_point=GAIA_PARALLAX_ZERO_POINT)
        print(f"  alpha {alpha:9.3g}: {seconds:7.1f} s  KKT {model.kkt_residual_:8.1e}  "
              f"{np.count_nonzero(model.coef_[model.penalized_]):5d} non-zero pixels  peak memory "
              f"+{extra_gb:.2f} GB ({extra_gb / x_gb:.2f} x X)  held-out chi2 {chi2:.4f}  "
              f"median |pred/true - 1| {np.median(np.abs(pred / truete - 1)):.4f}", flush=True)


def cv_benchmark(Xdf, y, sigma, args):
    """Warm-started CV path vs cold GridSearchCV over the same 8 alphas and folds."""
    folds = KFold(args.cv_folds, shuffle=True, random_state=args.random_state)
    print(f"\nCV: {args.cv_folds} folds x 8 alphas on {len(y)} stars", flush=True)
    t = time.perf_counter()
    cv_model = SpectroPhotometricParallaxRegressorCV(alphas=8, cv=folds, tol=args.tol,
                                                     max_iter=200).fit(Xdf, y, parallax_error=sigma)
    t_path = time.perf_counter() - t
    print(f"  warm-started path (SpectroPhotometricParallaxRegressorCV): {t_path:8.1f} s; "
          f"alphas {np.array2string(cv_model.alphas_, precision=3)}; alpha_ = "
          f"{cv_model.alpha_:.4g}; intrinsic scatter {cv_model.intrinsic_scatter_:.3f}", flush=True)
    with sklearn.config_context(enable_metadata_routing=True):
        grid = GridSearchCV(
            SpectroPhotometricParallaxRegressor(tol=args.tol, max_iter=200),
            {"alpha": list(cv_model.alphas_)}, cv=folds,
            scoring=ChiSquaredScorer(parallax_zero_point=GAIA_PARALLAX_ZERO_POINT))
        t = time.perf_counter()
        grid.fit(Xdf, y, parallax_error=sigma)
        t_grid = time.perf_counter() - t
    print(f"  cold GridSearchCV (same alphas, folds, refit):          {t_grid:8.1f} s; "
          f"best alpha {grid.best_params_['alpha']:.4g}", flush=True)
    print(f"  path speed-up over cold grid search: {t_grid / t_path:.2f}x; same choice: "
          f"{np.isclose(grid.best_params_['alpha'], cv_model.alpha_)}", flush=True)


if __name__ == "__main__":
    main()
