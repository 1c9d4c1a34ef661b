"""Benchmark: NuisanceCalibrator fit + transform on 50,000 stars x 21 abundances.

Compares, in the same process and on the same data, against a naive baseline: per abundance, select
the valid training stars, weight the physical-unit design by 1/sigma and call ``numpy.linalg.lstsq``,
then ``(Y^T W Y)^{-1}`` for the covariance, and subtract the nuisance part.  Also times the
least-squares kernel alone (all abundances' normal matrices from one matrix product) against
per-abundance ``lstsq`` on the same scaled design, and checks that the answers agree.

Then the general model (three nuisances: a cubic B-spline in log g on 5 knots, Teff, the telescope
as categorical offsets; with ``<X>_NEW_ERR``) against the paper's model, fit + transform in the same
run (time ratio), and the cost of a 5-fold ``GridSearchCV`` over ``nuisance_degree`` in {1, 2, 3, 4}
(20 fits, 20 scores and the refit) against one fit + transform.

``--presets`` measures what the calibration presets (``CALIBRATION_PRESETS``) remove instead of
timing: on ``make_survey`` catalogues with per-element Teff and telescope systematics (on top of the
default log g ones), fitted on one survey and evaluated on the disk sample of another, the
per-element trend of (abundance - truth) with Teff at fixed log g (dex per 1000 K) and its offset
at LCO (dex), before calibration, after the paper's log g-only model and after the ``sdss5``
preset.

Times are the CPU time of this process with one BLAS thread (``--threads``), so that other jobs on
a shared machine do not distort them and every ratio compares equal work.

Run: ``python benchmarks/bench_calibration.py [--n-stars 50000] [--repeat 5] [--threads 1]``;
``python benchmarks/bench_calibration.py --presets [--n-stars 30000]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_limits

from sklearn_selfcal import NuisanceCalibrator
from sklearn_selfcal._paper import ABUNDANCE_COLUMNS
from sklearn_selfcal.calibration import CALIBRATION_PRESETS
from sklearn_selfcal.datasets import make_survey
from sklearn_selfcal.selection import disk_sample_mask
from sklearn_selfcal._kernels import design as kdesign
from sklearn_selfcal._kernels import wls as kwls


def make_table(n_stars, random_state=0):
    """Synthetic catalogue with actions, log g, x and 21 abundances with errors and missing values."""
    rng = np.random.default_rng(random_state)
    R_guide = rng.uniform(3.0, 18.0, n_stars)
    cols = {
        "J_R": rng.exponential(40.0, n_stars),
        "J_z": rng.exponential(12.0, n_stars),
        "L_z": -230.0 * R_guide,
        "x": -R_guide * np.cos(rng.normal(0.0, 0.5, n_stars)),
    }
    cols["LOGG"] = np.clip(2.0 - 0.1 * np.abs(R_guide - 8.2) + rng.normal(0, 0.3, n_stars), 0.2, 2.2)
    cols["TEFF"] = 4500.0 + 450.0 * (cols["LOGG"] - 2.0) + rng.normal(0.0, 60.0, n_stars)
    lco = rng.random(n_stars) < np.clip(0.8 - 0.06 * R_guide, 0.05, 0.95)
    cols["TELESCOPE"] = pd.Categorical(np.where(lco, "lco25m", "apo25m"))
    lg = cols["LOGG"] - 2.2
    for k, name in enumerate(ABUNDANCE_COLUMNS):
        err = rng.uniform(0.01, 0.08, n_stars)
        value = (0.1 - 0.05 * (R_guide - 8) + 0.001 * cols["J_z"] + rng.normal(0, 0.04, n_stars)
                 + 0.05 * lg - 0.03 * lg**2 + 0.01 * lg**3 + 0.03 * lco
                 + 0.1 * (cols["TEFF"] - 4500.0) / 1000.0 + err * rng.normal(size=n_stars))
        lost = rng.random(n_stars) < 0.01 + 0.01 * k  # 1% .. 21% missing, a pattern per abundance
        value[lost] = np.nan
        err[lost] = np.nan
        cols[name], cols[f"{name}_ERR"] = value, err
    return pd.DataFrame(cols)


PAPER_TERMS = ["1", "J_R", "J_z", "L_z", "J_R^2", "J_R J_z", "J_R L_z", "J_z^2", "J_z L_z", "L_z^2",
               "lg", "lg^2"]


def naive_fit_transform(X):
    """Baseline: physical design, per-abundance masked weighted lstsq, covariance, transform."""
    train = ((X["J_R"] > 0) & (X["J_R"] < 400) & (X["L_z"] > -5000) & (X["L_z"] < 1000)
             & (X["J_z"] > 0) & (X["J_z"] < 100) & (X["x"] < 0)).to_numpy()
    JR, Jz, Lz = (X[c].to_numpy() for c in ("J_R", "J_z", "L_z"))
    lg = X["LOGG"].to_numpy() - 2.2
    Y = np.column_stack([np.ones_like(JR), JR, Jz, Lz, JR**2, JR * Jz, JR * Lz, Jz**2, Jz * Lz,
                         Lz**2, lg, lg**2])
    coefs, covs, out = [], [], []
    for name in ABUNDANCE_COLUMNS:
        a = X[name].to_numpy()
        e = X[f"{name}_ERR"].to_numpy()
        m = train & np.isfinite(a)
        sw = 1.0 / e[m]
        theta, *_ = np.linalg.lstsq(Y[m] * sw[:, None], a[m] * sw, rcond=None)
        r = (a[m] - Y[m] @ theta) * sw
        cov = np.linalg.inv((Y[m] * sw[:, None] ** 2).T @ Y[m]) * (r @ r) / (m.sum() - Y.shape[1])
        coefs.append(theta)
        covs.append(cov)
        out.append(a - Y[:, 10:] @ theta[10:])
    return np.array(coefs), np.array(covs), np.column_stack(out)


def best_of(fn, repeat):
    """Best CPU time (s) of ``repeat`` calls of ``fn`` and the last result."""
    times = []
    for _ in range(repeat):
        c0 = time.process_time()
        result = fn()
        times.append(time.process_time() - c0)
    return min(times), result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-stars", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads")
    parser.add_argument("--presets", action="store_true",
                        help="measure the presets' residual Teff and telescope trends instead")
    args = parser.parse_args(argv)
    with threadpool_limits(args.threads):
        preset_trends(args.n_stars) if args.presets else run(args)


# per-element Teff (dex per 1000 K of TEFF - 4500 K) and LCO (dex) systematics for --presets:
# spread over both signs, every element different
TEFF_SYSTEMATICS = dict(zip(ABUNDANCE_COLUMNS, np.round(np.linspace(-0.10, 0.15, 21)[
    np.random.default_rng(1).permutation(21)], 4)))
LCO_OFFSETS = dict(zip(ABUNDANCE_COLUMNS, np.round(np.linspace(-0.03, 0.04, 21)[
    np.random.default_rng(2).permutation(21)], 4)))


def _disk_sample(seed, n_stars):
    s = make_survey(n_stars=n_stars, n_pixels=0, random_state=seed,
                    teff_systematics=TEFF_SYSTEMATICS, telescope_offsets={"lco25m": LCO_OFFSETS})
    X = pd.concat([s.frame, s.truth[["J_R", "J_z", "L_z", "x", "z", "R", "v_z"]]], axis=1)
    keep = disk_sample_mask(X)
    return X[keep], s.truth[keep]


def _teff_and_lco_trend(d, err, X, extra_cov=None):
    """Weighted LSQ of d on [1, lg, lg^2, (TEFF-4500)/1000, LCO]: the last two coefficients and
    their sandwich standard errors (plus ``extra_cov``, the calibration's, when given)."""
    m = np.isfinite(d)
    lg = X["LOGG"].to_numpy()[m] - 2.2
    Y = np.column_stack([np.ones(m.sum()), lg, lg**2, (X["TEFF"].to_numpy()[m] - 4500.0) / 1e3,
                         (X["TELESCOPE"].to_numpy()[m] == "lco25m").astype(float)])
    w = 1.0 / err[m] ** 2
    G_inv = np.linalg.inv((Y * w[:, None]).T @ Y)
    beta = G_inv @ (Y * w[:, None]).T @ d[m]
    r = d[m] - Y @ beta
    C = (G_inv @ ((Y * (w * r)[:, None] ** 2).T @ Y) @ G_inv)[3:, 3:]
    if extra_cov is not None:
        C = C + extra_cov
    return beta[3:], np.sqrt(np.diag(C))


def preset_trends(n_stars):
    """Per element: the Teff and LCO trends left by the paper's model and the sdss5 preset."""
    (Xa, _), (Xb, tb) = _disk_sample(0, n_stars), _disk_sample(1, n_stars)
    print(f"fit on {len(Xa)} disk stars of make_survey(n_stars={n_stars}, random_state=0), "
          f"measured on {len(Xb)} of random_state=1; Teff slope at fixed log g (dex per 1000 K) "
          "and LCO offset (dex) of abundance - truth, +- 1 sigma (with the calibration's own "
          "coefficient errors for sdss5)")
    models = {name: NuisanceCalibrator(**CALIBRATION_PRESETS[name]).fit(Xa)
              for name in ("paper", "sdss5")}
    sdss5 = models["sdss5"]
    # TEFF terms in dex per 1000 K: the linear one scaled by 1000 (the quadratic one is zero at
    # the reference, so the slope at 4500 K is the linear coefficient)
    idx = [sdss5.design_names_.index(t) for t in ("(TEFF-4500)", "TELESCOPE[lco25m]")]
    scale = np.array([1e3, 1.0])
    rows = []
    for k, a in enumerate(sdss5.abundance_columns_):
        err = Xb[f"{a}_ERR"].to_numpy()
        row = {"abundance": a, "teff_injected": TEFF_SYSTEMATICS[a], "lco_injected": LCO_OFFSETS[a]}
        stages = {"input": Xb[a].to_numpy()}
        stages.update({name: cal.transform(Xb)[:, k] for name, cal in models.items()})
        for stage, values in stages.items():
            extra = (sdss5.coef_cov_[k][np.ix_(idx, idx)] * np.outer(scale, scale)
                     if stage == "sdss5" else None)
            (teff, lco), (teff_err, lco_err) = _teff_and_lco_trend(values - tb[a].to_numpy(), err,
                                                                   Xb, extra)
            row.update({f"teff_{stage}": teff, f"teff_{stage}_err": teff_err,
                        f"lco_{stage}": lco, f"lco_{stage}_err": lco_err})
        rows.append(row)
    table = pd.DataFrame(rows).set_index("abundance")
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.round(4))
    for what in ("teff", "lco"):
        for stage in ("input", "paper", "sdss5"):
            pull = table[f"{what}_{stage}"] / table[f"{what}_{stage}_err"]
            trend = table[f"{what}_{stage}"].abs()
            print(f"  {what:4s} {stage:6s}: median |trend| {trend.median():.4f}, largest |trend| "
                  f"{trend.max():.4f}, largest |pull| {pull.abs().max():.1f}")
    err_paper = models["paper"].set_params(errors=True).transform(Xb)[:, 21:]
    err_sdss5 = sdss5.set_params(errors=True).transform(Xb)[:, 21:]
    reported = Xb[[f"{a}_ERR" for a in sdss5.abundance_columns_]].to_numpy()
    print(f"  <X>_NEW_ERR, median over stars and elements: paper {np.nanmedian(err_paper):.4f}, "
          f"sdss5 {np.nanmedian(err_sdss5):.4f} dex (reported {np.nanmedian(reported):.4f})")


def run(args):
    X = make_table(args.n_stars)
    K = len(ABUNDANCE_COLUMNS)
    n_patterns = len({tuple(col) for col in np.isfinite(X[list(ABUNDANCE_COLUMNS)].to_numpy()).T})
    print(f"{args.n_stars} stars x {K} abundances ({n_patterns} distinct missing-value patterns), "
          f"best of {args.repeat}, CPU time of this process")

    def ours(cov):
        cal = NuisanceCalibrator(covariance=cov)
        return cal, cal.fit(X).transform(X)

    t_sand, (cal, out) = best_of(lambda: ours("sandwich"), args.repeat)
    t_chi2, (cal_c, out_c) = best_of(lambda: ours("chi2"), args.repeat)
    t_naive, (coef_n, cov_n, out_n) = best_of(lambda: naive_fit_transform(X), args.repeat)
    t_fit, _ = best_of(lambda: NuisanceCalibrator().fit(X), args.repeat)

    coef_rel = np.max(np.abs(cal_c.coef_.to_numpy() - coef_n) / (np.sqrt(np.einsum("kii->ki", cov_n))))
    se_rel = np.max(np.abs(cal_c.coef_stderr_.to_numpy() / np.sqrt(np.einsum("kii->ki", cov_n)) - 1))
    out_diff = np.nanmax(np.abs(out_c - out_n))
    print(f"  NuisanceCalibrator fit+transform (sandwich cov, default): {t_sand * 1e3:8.1f} ms")
    print(f"  NuisanceCalibrator fit only       (sandwich cov, default): {t_fit * 1e3:8.1f} ms")
    print(f"  NuisanceCalibrator fit+transform (chi2 cov):               {t_chi2 * 1e3:8.1f} ms")
    print(f"  naive per-abundance lstsq fit+transform (chi2 cov):        {t_naive * 1e3:8.1f} ms")
    print(f"  speed-up vs naive: {t_naive / t_chi2:.1f}x (same covariance), "
          f"{t_naive / t_sand:.1f}x (default)")
    print(f"  agreement with naive: max |coef diff| / SE = {coef_rel:.2e}, max |SE ratio - 1| = "
          f"{se_rel:.2e}, max |calibrated diff| = {out_diff:.2e} dex")

    # the least-squares kernel alone, on the same scaled design
    V = np.column_stack([X[c].to_numpy() for c in ("J_R", "J_z", "L_z")] + [X["LOGG"] - 2.2])
    powers = kdesign.block_powers([kdesign.monomial_powers(3, 2, include_bias=True),
                                   kdesign.monomial_powers(1, 2, include_bias=False)])
    Ys = kdesign.evaluate_monomials((V - V.mean(0)) / V.std(0), powers)
    A = X[list(ABUNDANCE_COLUMNS)].to_numpy()
    E = X[[f"{c}_ERR" for c in ABUNDANCE_COLUMNS]].to_numpy()
    W = np.where(np.isfinite(A), 1.0 / E**2, 0.0)
    # the kernels' layout: one row per term / abundance, one column per star
    Ys_t, A_t, W_t = (np.ascontiguousarray(a.T) for a in (Ys, A, W))

    def loop():
        out = []
        for k in range(K):
            m = W[:, k] > 0
            sw = np.sqrt(W[m, k])
            out.append(np.linalg.lstsq(Ys[m] * sw[:, None], A[m, k] * sw, rcond=None)[0])
        return np.array(out)

    t_k, res = best_of(lambda: kwls.solve_many(Ys_t, A_t, W_t), args.repeat)
    t_l, coef_l = best_of(loop, args.repeat)
    print(f"  kernel: batched normal equations {t_k * 1e3:.1f} ms vs per-abundance lstsq "
          f"{t_l * 1e3:.1f} ms ({t_l / t_k:.1f}x); max |coef diff| {np.max(np.abs(res.coef - coef_l)):.1e}")

    # the general model against the paper's, same data, same run
    general = dict(nuisance_columns=("LOGG", "TEFF", "TELESCOPE"),
                   nuisance_reference=(2.2, 4500.0, "apo25m"),
                   nuisance_basis={"LOGG": "spline", "TEFF": "polynomial"},
                   nuisance_degree={"LOGG": 3, "TEFF": 1}, nuisance_knots=5, errors=True)

    def fit_transform(**params):
        cal = NuisanceCalibrator(**params)
        return cal, cal.fit(X).transform(X)

    t_paper, _ = best_of(lambda: fit_transform(), args.repeat)
    t_general, (cal_g, _) = best_of(lambda: fit_transform(**general), args.repeat)
    t_general_noerr, _ = best_of(lambda: fit_transform(**{**general, "errors": False}),
                                 args.repeat)
    print(f"  general model ({len(cal_g.design_names_)} terms: log g spline + Teff + telescope) "
          f"fit+transform {t_general * 1e3:.1f} ms with <X>_NEW_ERR, "
          f"{t_general_noerr * 1e3:.1f} ms without, vs the paper's model "
          f"({len(PAPER_TERMS)} terms) {t_paper * 1e3:.1f} ms: ratio {t_general / t_paper:.2f}x "
          f"({t_general_noerr / t_paper:.2f}x without errors)")

    # model selection: 5-fold GridSearchCV over 4 degrees (20 fits + 20 scores + refit)
    def search():
        return GridSearchCV(NuisanceCalibrator(), {"nuisance_degree": [1, 2, 3, 4]},
                            cv=5).fit(X)

    t_search, gs = best_of(search, max(1, args.repeat // 2))
    print(f"  GridSearchCV(nuisance_degree in 1..4, cv=5): {t_search:.2f} s = "
          f"{t_search / t_paper:.1f}x one fit+transform of the paper's model "
          f"(chosen degree {gs.best_params_['nuisance_degree']})")


if __name__ == "__main__":
    main()
