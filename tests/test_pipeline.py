"""The whole method as a Pipeline: the CLI's path, pickling, a new process, Dask."""

import json
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
from _marks import RUN_WARNINGS
import sklearn

from sklearn_selfcal.cli import main
from sklearn_selfcal.datasets import make_survey
from sklearn_selfcal.parallax_features import MAGNITUDE_COLUMNS, join_spectra
from sklearn_selfcal.selection import parent_sample_cuts
from sklearn_selfcal.workflow import make_method_pipeline

pytestmark = RUN_WARNINGS  # what a run reports to its user (tests/_marks.py)

FAST = {"figures": {"enabled": False},
        "gradient": {"n_walkers": 16, "n_steps": 400, "burn_in": 100, "thin": 2}}


def _parent(frame):
    return parent_sample_cuts(frame, magnitude_columns=MAGNITUDE_COLUMNS).to_numpy().all(axis=1)


def _table(seed, n_stars=1500, n_pixels=120):
    s = make_survey(n_stars, n_pixels, random_state=seed)
    keep = _parent(s.frame)
    return join_spectra(s.frame[keep], s.spectra[keep], s.spectra_err[keep]), s


@pytest.fixture(scope="module")
def fitted():
    table, _ = _table(0)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_method_pipeline(random_state=0)
        out = pipe.fit_transform(table, table["parallax"], parallax_error=table["parallax_error"])
    new_table, _ = _table(1)
    return pipe, out, new_table


def test_pipeline_appends_every_product_to_the_table(fitted):
    pipe, out, new_table = fitted
    for col in ("spec_parallax", "spec_parallax_err", "J_R", "L_z", "J_z", "FE_H_NEW",
                "MG_FE_NEW", "APOGEE_ID", "LOGG"):
        assert col in out.columns, col
    assert not any(c.startswith("FLUX_") for c in out.columns)  # spectra dropped once used
    crossfit = pipe.named_steps["parallax"]
    assert len(crossfit.oof_indices_) == 2  # the paper's two halves
    # the calibrator was fitted on the disk sample's training stars only
    calibrator = pipe.named_steps["calibrate"].transformer_list[1][1]
    assert 0 < calibrator.n_stars_["FE_H"] < len(out)


def test_cli_and_pipeline_give_identical_catalogues(tmp_path):
    """One path: ``run`` is the pipeline's fit_transform on the parent sample (same seed)."""
    s = make_survey(1200, 80, random_state=4)
    s.frame.to_parquet(tmp_path / "cat.parquet")
    np.save(tmp_path / "spec.npy", s.spectra)
    np.save(tmp_path / "spec_err.npy", s.spectra_err)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(FAST))
    assert main(["run", str(tmp_path / "cat.parquet"), "--spectra", str(tmp_path / "spec.npy"),
                 "--out", str(tmp_path / "out"), "--config", str(cfg), "--random-state", "7",
                 "--quiet"]) == 0
    cli = pd.read_parquet(tmp_path / "out" / "catalogue.parquet")
    parent = _parent(s.frame)
    np.testing.assert_array_equal(cli["PARENT_SAMPLE"].to_numpy(), parent)
    table = join_spectra(s.frame[parent], s.spectra[parent], s.spectra_err[parent])
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_method_pipeline(random_state=7)
        out = pipe.fit_transform(table, table["parallax"], parallax_error=table["parallax_error"])
    columns = ["spec_parallax", "spec_parallax_err", "x", "v_z", "J_R", "L_z", "J_z", "E",
               *[c for c in out.columns if c.endswith("_NEW")]]
    assert len(columns) > 25
    np.testing.assert_array_equal(cli.loc[parent, columns].to_numpy(float),
                                  out[columns].to_numpy(float))
    # the error budget is complete in both: feature uncertainty (> 0) and intrinsic scatter
    scatter = pipe.named_steps["parallax"].intrinsic_scatter_
    frac = (out["spec_parallax_err"] / out["spec_parallax"]).to_numpy()
    assert 0.02 < scatter < 0.5
    assert np.all(frac > scatter)


def test_pickled_pipeline_gives_identical_results_in_a_new_process(fitted, tmp_path):
    pipe, _, new_table = fitted
    # 300 stars: the new process must give the same frame; that needs no size
    new_table = new_table.iloc[:300]
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


# dask_client: the cluster shared with tests/test_scaleout.py (tests/conftest.py)


def test_dask_local_cluster_equals_in_memory(fitted, dask_client, tmp_path):
    dd = pytest.importorskip("dask.dataframe", reason="dask is in the test extra")

    from sklearn_selfcal.scaleout import apply_to_parquet, transform_partitions

    pipe, _, new_table = fitted
    # 600 stars in 4 partitions: a bit-for-bit comparison needs partitions, not size
    new_table = new_table.iloc[:600]
    source = tmp_path / "catalogue"
    dd.from_pandas(new_table, npartitions=4).to_parquet(source)
    in_memory = dd.read_parquet(source).compute()  # the same rows the workers read, in memory
    np.testing.assert_array_equal(in_memory.index, new_table.index)
    expected = pipe[:3].transform(in_memory)
    got = transform_partitions(pipe[:3], dd.read_parquet(source), client=dask_client).compute()
    dest = apply_to_parquet(pipe, source, tmp_path / "calibrated", keep_columns=["APOGEE_ID"],
                            client=dask_client)
    # row for row: same index, same values, bit for bit
    pd.testing.assert_frame_equal(got.loc[expected.index], expected)
    calibrated = dd.read_parquet(dest).compute().loc[in_memory.index]
    # a Pipeline's transform is its steps' transforms in turn: the whole pipeline's in-memory
    # result is its last steps applied to the first three's (computed once, above)
    pd.testing.assert_frame_equal(calibrated, pipe[3:].transform(expected))


def test_actions_under_joblib_dask_backend_equal_serial(fitted, dask_client):
    import joblib

    from sklearn_selfcal import ActionTransformer

    pipe, _, new_table = fitted
    # 600 stars: three chunks of 200 over the two workers, compared bit for bit with one process
    with_plx = pipe[:1].transform(new_table.iloc[:600])
    serial = ActionTransformer(parallax="spec_parallax").fit_transform(with_plx)
    with joblib.parallel_backend("dask", client=dask_client):
        parallel = ActionTransformer(parallax="spec_parallax", n_jobs=-1,
                                     chunk_size=200).fit_transform(with_plx)
    np.testing.assert_array_equal(parallel, serial)
