"""Dask scale-out on a 2-worker LocalCluster: fits and aggregations equal the in-memory ones.

One cluster (two worker processes, one thread each; shared with tests/test_pipeline.py,
tests/conftest.py) serves every test. The comparisons are against the in-memory function on
the same rows (``ddf.compute()``): the distributed paths compute the same sums in another order,
so they agree to rounding; the tolerances below (1e-10 relative, or exact equality for medians
and counts) leave four or more orders of magnitude above the differences measured (<= 5e-11
relative on coefficients and covariances of the calibrator); the parallax coefficients are
compared relative to the largest one (measured 4.5e-12), see the test.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

dd = pytest.importorskip("dask.dataframe", reason="dask is an optional extra (in [test])")
da = pytest.importorskip("dask.array", reason="dask is an optional extra (in [test])")
distributed = pytest.importorskip("dask.distributed", reason="dask is an optional extra")

from sklearn_selfcal import NuisanceCalibrator, SpectroPhotometricParallaxRegressor  # noqa: E402
from sklearn_selfcal._kernels import explinear_l1 as kl1  # noqa: E402
from sklearn_selfcal.datasets import make_survey  # noqa: E402
from sklearn_selfcal.exceptions import BadRowsWarning, InaccurateActionsWarning  # noqa: E402
from sklearn_selfcal.gradients import radial_abundance_profile  # noqa: E402
from sklearn_selfcal.maps import face_on_map  # noqa: E402
from sklearn_selfcal.parallax_features import SpectroPhotometricFeatures  # noqa: E402
from sklearn_selfcal.scaleout import (DaskRowBlocks, apply_to_hats,  # noqa: E402
                                      face_on_map_distributed, features_to_dask_array,
                                      fit_calibrator_distributed, fit_parallax_distributed,
                                      radial_profile_distributed)
from sklearn_selfcal.selection import disk_sample_mask  # noqa: E402
from sklearn_selfcal.spectra import join_spectra  # noqa: E402

RTOL = 1e-10
ABUNDANCES = ["FE_H", "MG_FE", "O_FE"]


@pytest.fixture
def client(dask_client):
    """The 2-worker cluster shared with tests/test_pipeline.py (tests/conftest.py)."""
    return dask_client


@pytest.fixture(scope="module")
def sample():
    """A simulated disk sample (~2,300 stars) with Teff and telescope systematics, true orbits."""
    s = make_survey(n_stars=3500, n_pixels=0, random_state=3, teff_systematics=0.1,
                    telescope_offsets={"lco25m": 0.03})
    X = pd.concat([s.frame, s.truth[["J_R", "L_z", "J_z", "x", "y", "z", "R", "v_z"]]], axis=1)
    # LCO stars first: the first partitions see one telescope only, so categories and their
    # counts must be gathered from every partition
    X = X[disk_sample_mask(X)].sort_values("TELESCOPE", ascending=False, kind="stable")
    X = X.reset_index(drop=True)
    X.loc[X.index[:40], "O_FE"] = np.nan  # a partition where one abundance is nearly all missing
    return X


@pytest.fixture(scope="module")
def ddf(sample):
    return dd.from_pandas(sample, npartitions=6).persist()


def _assert_same_fit(a, b):
    """Same fitted state: coefficients and covariances to RTOL, everything else equal."""
    np.testing.assert_allclose(b.coef_.to_numpy(), a.coef_.to_numpy(), rtol=RTOL, atol=0)
    # covariance entries relative to sqrt(C_ii C_jj): off-diagonal entries can be near zero
    scale = np.sqrt(np.einsum("kii,kjj->kij", a.coef_cov_, a.coef_cov_))
    assert np.max(np.abs(b.coef_cov_ - a.coef_cov_) / scale) < RTOL
    np.testing.assert_allclose(b.chi2_reduced_, a.chi2_reduced_, rtol=RTOL)
    pd.testing.assert_series_equal(b.n_stars_, a.n_stars_)
    assert b.n_training_stars_ == a.n_training_stars_
    assert b.design_names_ == a.design_names_
    assert b.nuisance_reference_ == a.nuisance_reference_
    assert b.categories_ == a.categories_
    assert b.knots_.keys() == a.knots_.keys()
    for name in a.knots_:
        np.testing.assert_array_equal(b.knots_[name], a.knots_[name])
    np.testing.assert_array_equal(b.feature_names_in_, a.feature_names_in_)


@pytest.mark.parametrize("params", [
    {},
    # categorical nuisance, every reference chosen by the data (medians, most frequent category),
    # a spline nuisance with knots at quantiles, and the calibrated uncertainties
    dict(nuisance_columns=["LOGG", "TEFF", "TELESCOPE"], nuisance_reference=[None, None, None],
         nuisance_basis={"LOGG": "spline"}, errors=True),
    dict(orbit_basis="spline", orbit_degree=3, covariance="chi2",
         training_filter=lambda X: np.asarray(X["LOGG"] < 2.3)),
], ids=["paper", "general", "spline-orbit"])
def test_calibrator_fit_summed_over_partitions_equals_in_memory(client, sample, ddf, params):
    params = dict(abundance_columns=ABUNDANCES, **params)
    whole = NuisanceCalibrator(**params).fit(sample)
    parts = fit_calibrator_distributed(NuisanceCalibrator(**params), ddf, client=client)
    _assert_same_fit(whole, parts)
    np.testing.assert_allclose(parts.transform(sample), whole.transform(sample), rtol=RTOL,
                               atol=1e-13)


def test_calibrator_distributed_errors_name_the_column(client, sample):
    bad = sample.assign(MG_FE=np.nan)
    with pytest.raises(ValueError, match="'MG_FE' has no finite value"):
        fit_calibrator_distributed(NuisanceCalibrator(abundance_columns=ABUNDANCES),
                                   dd.from_pandas(bad, npartitions=3), client=client)
    bad = sample.assign(FE_H_ERR=sample["FE_H_ERR"].where(sample.index != 1500, -1.0))
    with pytest.raises(ValueError, match="FE_H_ERR"):
        fit_calibrator_distributed(NuisanceCalibrator(abundance_columns=ABUNDANCES),
                                   dd.from_pandas(bad, npartitions=3), client=client)


def test_an_empty_partition_is_harmless(client, sample):
    """A filter upstream can leave partitions without rows: they add nothing to any sum."""
    ddf = dd.from_pandas(sample, npartitions=4).map_partitions(lambda p: p[p.index >= 700])
    rows = sample[sample.index >= 700]
    params = dict(abundance_columns=ABUNDANCES)
    _assert_same_fit(NuisanceCalibrator(**params).fit(rows),
                     fit_calibrator_distributed(NuisanceCalibrator(**params), ddf, client=client))
    pd.testing.assert_frame_equal(radial_profile_distributed(ddf, ["FE_H"], client=client),
                                  radial_abundance_profile(rows, ["FE_H"]), rtol=1e-12)


def test_radial_profile_distributed_equals_in_memory(client, sample, ddf):
    columns = ["FE_H", "MG_FE", "O_FE"]
    whole = radial_abundance_profile(sample, columns)
    parts = radial_profile_distributed(ddf, columns, client=client)
    medians = ["R_MEDIAN", "N_STARS"] + columns + [f"{c}_N" for c in columns]
    pd.testing.assert_frame_equal(parts[medians], whole[medians], check_exact=True)
    pd.testing.assert_frame_equal(parts, whole, check_exact=False, rtol=1e-12)
    assert parts.attrs == whole.attrs
    with pytest.raises(TypeError, match="n_bootstrap"):
        radial_profile_distributed(ddf, columns, n_bootstrap=10)


@pytest.mark.parametrize("statistic", ["median", "mean", "count"])
def test_face_on_map_distributed_equals_in_memory(client, sample, statistic):
    frame = sample.assign(low=sample["ALPHA_M"] < 0.12)
    frame.loc[frame.index[7], "x"] = 250.0  # beyond the 30 kpc limit: left out with a warning
    column = None if statistic == "count" else "FE_H"
    ddf = dd.from_pandas(frame, npartitions=5)
    with pytest.warns(UserWarning, match="1 star"):
        whole = face_on_map(frame, column, where=frame["low"].to_numpy(), statistic=statistic)
    with pytest.warns(UserWarning, match="1 star"):
        parts = face_on_map_distributed(ddf, column, where="low", statistic=statistic,
                                        client=client)
    np.testing.assert_array_equal(parts.x_edges, whole.x_edges)
    np.testing.assert_array_equal(parts.y_edges, whole.y_edges)
    np.testing.assert_array_equal(parts.count, whole.count)
    assert parts.n_stars == whole.n_stars > 0
    if statistic == "median":
        np.testing.assert_array_equal(parts.statistic, whole.statistic)
    else:
        np.testing.assert_allclose(parts.statistic, whole.statistic, rtol=1e-13)


def test_face_on_map_distributed_difference_map_with_extent(client, sample):
    ddf = dd.from_pandas(sample, npartitions=4)
    extent = (-15.0, 0.0, -5.0, 5.0)
    whole = face_on_map(sample, "FE_H", minus="M_H", extent=extent, bin_size=1.0)
    parts = face_on_map_distributed(ddf, "FE_H", minus="M_H", extent=extent, bin_size=1.0,
                                    client=client)
    np.testing.assert_array_equal(parts.statistic, whole.statistic)
    assert parts.statistic.shape == (11, 16)


# ------------------------------------------------------------------------------ parallax
@pytest.fixture(scope="module")
def spectra_table():
    s = make_survey(n_stars=1200, n_pixels=150, random_state=5)
    table = join_spectra(s.frame, s.spectra, s.spectra_err)
    good = (s.frame["parallax_error"] < 0.1).to_numpy()
    return table[good].reset_index(drop=True)


def test_dask_row_blocks_match_the_in_memory_kernels(client):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 40)).astype(np.float32)
    op = DaskRowBlocks(da.from_array(X, chunks=(130, 20)), client=client)
    v, s, bz, rt = rng.normal(size=(4, 500))
    Q = np.linalg.qr(rng.normal(size=(500, 3)))[0]
    inv_w = rng.uniform(0.5, 2, 7)
    cols = np.array([0, 3, 5, 11, 17, 29, 39])
    np.testing.assert_allclose(op.rmatvec(v), kl1.rmatvec(X, v), rtol=1e-12)
    np.testing.assert_allclose(op.matvec(cols, inv_w), kl1.matvec(X, cols, inv_w), rtol=1e-12)
    ws = op.take_columns(cols)
    for got, want in zip(ws.projected_gram(s, inv_w, bz, rt, Q),
                         kl1.projected_gram(np.ascontiguousarray(X[:, cols]), s, inv_w, bz, rt,
                                            Q)):
        np.testing.assert_allclose(np.triu(got) if got.ndim == 2 and got.shape[0] == 7
                                   else got, np.triu(want) if want.ndim == 2
                                   and want.shape[0] == 7 else want, rtol=1e-12, atol=1e-12)


def test_parallax_fit_on_spectra_partitions_equals_in_memory(client, spectra_table):
    """The feature step on SpectraArray partitions, then the solver over the row chunks."""
    table = spectra_table
    features = SpectroPhotometricFeatures().set_output(transform="pandas").fit(table)
    y, err = table["parallax"].to_numpy(), table["parallax_error"].to_numpy()
    params = dict(alpha=2e-3, tol=1e-8)
    whole = SpectroPhotometricParallaxRegressor(**params).fit(features.transform(table), y,
                                                             parallax_error=err)
    X, names = features_to_dask_array(features, dd.from_pandas(table, npartitions=4),
                                      client=client)
    assert X.numblocks[0] == 4
    parts = fit_parallax_distributed(SpectroPhotometricParallaxRegressor(**params), X, y, err,
                                     feature_names=names, client=client)
    nz = whole.coef_ != 0
    assert 10 < nz.sum() < whole.coef_.size   # a sparse solution: the penalty is active
    np.testing.assert_array_equal(parts.coef_ != 0, nz)
    # the two paths take the same steps with sums over rows in another order; the last iterate's
    # rounding differences are amplified along the problem's flattest directions, so the bound
    # is relative to the largest coefficient (measured: 4.5e-12 of it, 1.5e-10 of the smallest)
    np.testing.assert_allclose(parts.coef_, whole.coef_, rtol=0,
                               atol=RTOL * np.abs(whole.coef_).max())
    assert parts.intercept_ == pytest.approx(whole.intercept_, rel=RTOL)
    np.testing.assert_array_equal(parts.penalized_, whole.penalized_)
    assert parts.n_iter_ == whole.n_iter_
    np.testing.assert_allclose(parts.predict(features.transform(table)),
                               whole.predict(features.transform(table)), rtol=RTOL)


def test_parallax_distributed_refuses_non_finite_features(client):
    X = np.ones((50, 4))
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity in feature"):
        fit_parallax_distributed(SpectroPhotometricParallaxRegressor(),
                                 da.from_array(X, chunks=(20, 4)), np.ones(50), client=client)


# ------------------------------------------------------------------------------ HATS / LSDB
def test_apply_to_hats_equals_in_memory_transform(client, sample, tmp_path):
    lsdb = pytest.importorskip("lsdb", reason="lsdb is the optional [lsdb] extra")
    columns = ["APOGEE_ID", "ra", "dec", "J_R", "J_z", "L_z", "x", "LOGG", *ABUNDANCES,
               *[f"{a}_ERR" for a in ABUNDANCES]]
    frame = sample[columns].copy()
    cal = NuisanceCalibrator(abundance_columns=ABUNDANCES).set_output(transform="pandas")
    cal.fit(frame)
    catalogue = lsdb.from_dataframe(frame, ra_column="ra", dec_column="dec", partition_rows=600,
                                    use_pyarrow_types=False)
    catalogue.write_catalog(tmp_path / "source", catalog_name="survey", progress_bar=False)
    with warnings.catch_warnings():  # lsdb 0.11 calls pandas' deprecated inplace set_index
        warnings.simplefilter("ignore", DeprecationWarning)
        out = apply_to_hats(cal, tmp_path / "source", tmp_path / "calibrated",
                            keep_columns=["APOGEE_ID"], client=client)
        got = lsdb.open_catalog(out).compute()
    assert got.shape[0] == len(frame) and catalogue.npartitions > 1
    got = got.set_index("APOGEE_ID").loc[frame["APOGEE_ID"]]
    expected = cal.transform(frame).set_axis(frame["APOGEE_ID"])
    np.testing.assert_allclose(got[expected.columns].to_numpy(dtype=float),
                               expected.to_numpy(), rtol=1e-15, atol=0, equal_nan=True)
    np.testing.assert_allclose(got["ra"].to_numpy(dtype=float), frame["ra"].to_numpy())


def test_run_on_a_local_cluster_equals_the_single_machine_run(tmp_path):
    """``run --scheduler local``: folds, action chunks, calibration and profiles on the workers.

    Spectra are read from an HDF5 file by the workers (the file-backed spectra travel as the
    file's path). The cluster's run is the single-machine run up to rounding: the parallax
    solver's sums run in another BLAS order on one-thread workers (measured 3e-12 relative on
    ``spec_parallax``, asserted 1e-9) and everything downstream follows from the same numbers.
    Two places amplify rounding, both bounded by the method's own error estimates: the
    actions of stars on irregular orbits (``actions_rel_err`` > 0.05: ~30 of 1,200 here), which
    differ by less than their stated accuracy, and, through those stars among the training
    stars, the calibration (measured 1.8e-4 dex on ``<X>_NEW``, asserted 1e-3 dex: ten times
    below the abundances' 0.01-dex uncertainties). The MCMC sees profiles equal to 1e-3 dex;
    its chains then differ, so the fitted slope is compared within its posterior width.
    """
    import json

    from sklearn_selfcal.cli import main
    from sklearn_selfcal.datasets import write_survey

    write_survey(1200, tmp_path / "survey", n_pixels=80, random_state=4)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"figures": {"enabled": False}, "dask": {"n_workers": 2},
                               "gradient": {"n_walkers": 16, "n_steps": 300, "burn_in": 100,
                                            "thin": 2, "n_draws": 10}}))
    runs = {}
    for name, extra in (("single", []), ("cluster", ["--scheduler", "local"])):
        with warnings.catch_warnings():  # NaN actions and flagged orbits: reported by the run
            warnings.simplefilter("ignore", BadRowsWarning)
            warnings.simplefilter("ignore", InaccurateActionsWarning)
            warnings.filterwarnings("ignore", "the post-burn-in chain")  # short test chains
            assert main(["run", str(tmp_path / "survey" / "catalogue.parquet"), "--spectra",
                         str(tmp_path / "survey" / "spectra.h5"), "--out", str(tmp_path / name),
                         "--config", str(cfg), "--quiet", *extra]) == 0
        runs[name] = tmp_path / name
    a = pd.read_parquet(runs["single"] / "catalogue.parquet")
    b = pd.read_parquet(runs["cluster"] / "catalogue.parquet")
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_series_equal(a["DISK_SAMPLE"], b["DISK_SAMPLE"])
    for column in ("spec_parallax", "spec_parallax_err", "R", "L_z"):
        np.testing.assert_allclose(b[column], a[column], rtol=1e-9, err_msg=column)
    accuracy = a["actions_rel_err"].to_numpy()
    regular = accuracy < 0.05
    assert regular.sum() > 0.5 * np.isfinite(accuracy).sum()
    for column in ("J_R", "J_z"):
        x, y = a[column].to_numpy(), b[column].to_numpy()
        np.testing.assert_array_equal(np.isfinite(y), np.isfinite(x))
        # the Staeckel roots take a fixed number of regula-falsi steps, so a 3e-12 change of the
        # input can move a root within its bracket: measured 7e-8 relative on 2 of 940 regular
        # stars; 1e-6 is still 5e4 times below the 5% accuracy that makes them regular
        np.testing.assert_allclose(y[regular], x[regular], rtol=1e-6, err_msg=column)
        irregular = ~regular & np.isfinite(x)
        assert np.all(np.abs(y - x)[irregular]
                      <= 2 * accuracy[irregular] * np.abs(x[irregular]) + 1e-8)
    new = [c for c in a.columns if c.endswith("_NEW")]
    assert len(new) > 10 and a["FE_H_NEW"].notna().sum() > 100
    np.testing.assert_allclose(b[new].to_numpy(float), a[new].to_numpy(float), rtol=0,
                               atol=1e-3)
    pa, pb = (Table.read(runs[k] / "radial_profiles.ecsv").to_pandas() for k in runs)
    pd.testing.assert_frame_equal(pa[["population", "R", "N_STARS"]],
                                  pb[["population", "R", "N_STARS"]])
    np.testing.assert_allclose(pb["FE_H_NEW"], pa["FE_H_NEW"], rtol=0, atol=1e-3)
    fa, fb = (json.loads((runs[k] / "feh_gradient_fit.json").read_text())["posterior"]["m1"]
              for k in runs)
    assert abs(fb["median"] - fa["median"]) < fa["err_minus"] + fa["err_plus"]
    prov = json.loads((runs["cluster"] / "provenance.json").read_text())
    assert prov["summary"]["scheduler"] == "local"
