"""The whole method as a Pipeline: fit, pickle, reload in a new process, scale out on Dask."""

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import sklearn

from sklearn_selfcal.datasets import make_survey
from sklearn_selfcal.parallax_features import gaia_training_mask, join_spectra
from sklearn_selfcal.workflow import make_method_pipeline, parent_sample_mask


def _table(seed, n_stars=1500, n_pixels=120):
    s = make_survey(n_stars, n_pixels, random_state=seed)
    keep = parent_sample_mask(s.frame)
    frame = s.frame[keep]
    return join_spectra(frame, s.spectra[keep], s.spectra_err[keep]), frame


@pytest.fixture(scope="module")
def fitted():
    table, frame = _table(0)
    train = gaia_training_mask(frame)
    y = np.where(train, frame["parallax"], 0.0)
    sigma = np.where(train, frame["parallax_error"], 1.0)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_method_pipeline(random_state=0)
        calibrated = pipe.fit_transform(table, y, sigma=sigma, sample_weight=train.astype(float))
    new_table, _ = _table(1)
    return pipe, calibrated, new_table


def test_pipeline_outputs_calibrated_abundances(fitted):
    pipe, calibrated, new_table = fitted
    assert "FE_H_NEW" in calibrated.columns and "MG_FE_NEW" in calibrated.columns
    crossfit = pipe.named_steps["parallax"]
    assert len(crossfit.oof_indices_) == 2  # the paper's two halves
    # the calibrator was fitted on the disk sample's training stars only
    n_train = pipe.named_steps["calibrate"].n_stars_["FE_H"]
    assert 0 < n_train < len(calibrated)


def test_pickled_pipeline_gives_identical_results_in_a_new_process(fitted, tmp_path):
    pipe, _, new_table = fitted
    model_path, data_path, out_path = tmp_path / "model.pkl", tmp_path / "new.parquet", tmp_path / "out.parquet"
    model_path.write_bytes(pickle.dumps(pipe))
    new_table.to_parquet(data_path)
    expected = pipe.transform(new_table)
    script = textwrap.dedent(f"""
        import pickle, pandas as pd
        pipe = pickle.loads(open({str(model_path)!r}, "rb").read())
        pipe.transform(pd.read_parquet({str(data_path)!r})).to_parquet({str(out_path)!r})
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    pd.testing.assert_frame_equal(pd.read_parquet(out_path), expected)
    # and the intermediate products (spectro-photometric parallaxes, actions) too
    inner = pipe[:2]
    back = pickle.loads(model_path.read_bytes())[:2]
    pd.testing.assert_frame_equal(back.transform(new_table), inner.transform(new_table))


def test_dask_local_cluster_equals_in_memory(fitted, tmp_path):
    dd = pytest.importorskip("dask.dataframe", reason="dask is in the test extra")
    from dask.distributed import Client, LocalCluster

    from sklearn_selfcal.scaleout import apply_to_parquet, transform_partitions

    pipe, _, new_table = fitted
    source = tmp_path / "catalogue"
    dd.from_pandas(new_table, npartitions=4).to_parquet(source)
    in_memory = dd.read_parquet(source).compute()  # the same rows the workers read, in memory
    np.testing.assert_array_equal(in_memory.index, new_table.index)
    expected = pipe[:2].transform(in_memory)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        got = transform_partitions(pipe[:2], dd.read_parquet(source), client=client).compute()
        dest = apply_to_parquet(pipe, source, tmp_path / "calibrated", keep_columns=["APOGEE_ID"],
                                client=client)
    # row for row: same index, same values, bit for bit
    pd.testing.assert_frame_equal(got.loc[expected.index], expected)
    calibrated = dd.read_parquet(dest).compute().loc[in_memory.index]
    pd.testing.assert_frame_equal(calibrated.drop(columns="APOGEE_ID"), pipe.transform(in_memory))
    assert (calibrated["APOGEE_ID"] == in_memory["APOGEE_ID"]).all()


def test_actions_under_joblib_dask_backend_equal_serial(fitted):
    pytest.importorskip("dask.distributed", reason="dask is in the test extra")
    import joblib
    from dask.distributed import Client, LocalCluster

    from sklearn_selfcal import ActionTransformer

    pipe, _, new_table = fitted
    with_plx = pipe[:1].transform(new_table)
    serial = ActionTransformer(parallax="spec_parallax").fit_transform(with_plx)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        with joblib.parallel_backend("dask"):
            parallel = ActionTransformer(parallax="spec_parallax", n_jobs=-1,
                                         chunk_size=200).fit_transform(with_plx)
    np.testing.assert_array_equal(parallel, serial)
