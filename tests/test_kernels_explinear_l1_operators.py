"""Tests of the passes over the big matrix and their block plan
(sklearn_selfcal._kernels.explinear_l1.operators): every storage gives numpy's float64 products,
and the same bits for any number of workers."""

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from sklearn_selfcal._kernels.explinear_l1 import operators
from sklearn_selfcal._kernels.explinear_l1.operators import (ColumnSubset, RowSubset, block_plan,
                                                             matvec, projected_gram, rmatvec,
                                                             working_set_columns)


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of ~4 kB and tasks of ~3 blocks: many tasks and blocks on a small matrix."""
    monkeypatch.setattr(operators, "CAST_BLOCK_BYTES", 4096)
    monkeypatch.setattr(operators, "TASK_BYTES", 3 * 4096)
    monkeypatch.setattr(operators, "GRAM_CHUNK_BYTES", 8192)


def _problem(n=700, d=90, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32).astype(np.float64)   # float32-exact values
    cols = np.sort(rng.choice(d, 25, replace=False))
    vectors = rng.normal(size=(4, n))
    Q = np.linalg.qr(rng.normal(size=(n, 3)))[0]
    return X, cols, rng.normal(size=d), vectors, Q, rng.uniform(0.5, 2.0, 25)


def _storages(X, tmp_path):
    """The same matrix as every kind of storage the solvers accept."""
    path = tmp_path / "X.npy"
    np.save(path, X.astype(np.float32))
    bigger = np.zeros((2 * X.shape[0], X.shape[1]))
    rows = np.arange(0, bigger.shape[0], 2)
    bigger[rows] = X
    return {"C float64": X, "C float32": X.astype(np.float32),
            "F float64": np.asfortranarray(X), "F float32": np.asfortranarray(X, np.float32),
            "memmap float32": np.load(path, mmap_mode="r"), "rows of a bigger X": RowSubset(
                bigger, rows), "strided view": np.repeat(X, 2, axis=0)[::2]}


def test_every_storage_gives_numpys_float64_products(small_blocks, tmp_path):
    X, cols, coef, (v, s, bz, rt), Q, inv_w = _problem()
    s = np.abs(s)
    Z = X[:, cols] * s[:, None] * inv_w
    for name, A in _storages(X, tmp_path).items():
        # rtol 1e-12: float64 sums of ~700 terms of size ~1 in another order (rounding ~1e-14)
        np.testing.assert_allclose(matvec(A, None, coef), X @ coef, rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(matvec(A, cols, coef[cols]), X[:, cols] @ coef[cols],
                                   rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(rmatvec(A, v), X.T @ v, rtol=1e-12, err_msg=name)
        Xws = working_set_columns(A, cols)
        np.testing.assert_array_equal(np.asarray(Xws), X[:, cols])   # a copy: exact
        G, zb, gz, C = projected_gram(Xws, s, inv_w, bz, rt, Q)
        np.testing.assert_allclose(G, Z.T @ Z, rtol=1e-12, atol=1e-12 * np.abs(Z.T @ Z).max(),
                                   err_msg=name)
        np.testing.assert_allclose(np.c_[zb, gz, C.T], Z.T @ np.c_[bz, rt, Q], rtol=1e-12,
                                   atol=1e-12, err_msg=name)


def test_passes_are_the_same_bits_for_any_number_of_workers(small_blocks):
    X, cols, coef, (v, s, bz, rt), Q, inv_w = _problem(seed=1)
    for A in (X.astype(np.float32), np.asfortranarray(X)):
        Xws = working_set_columns(A, cols)
        results = []
        for workers in (1, 2, 3):
            with block_plan(workers=workers):
                results.append([matvec(A, None, coef), matvec(A, cols, coef[cols]),
                                rmatvec(A, v), *projected_gram(Xws, np.abs(s), inv_w, bz, rt, Q)])
        for other in results[1:]:
            for got, want in zip(other, results[0]):
                np.testing.assert_array_equal(got, want)


def test_float32_and_float64_copies_give_the_same_bits(small_blocks):
    X, cols, coef, (v, *_), _, _ = _problem(seed=2)
    for op in (lambda A: rmatvec(A, v), lambda A: matvec(A, None, coef)):
        np.testing.assert_array_equal(op(X.astype(np.float32)), op(X))


def test_a_working_set_as_big_as_x_is_gathered_on_every_pass():
    X, *_ = _problem(seed=3)
    wide = working_set_columns(X, np.arange(X.shape[1]))
    assert isinstance(wide, ColumnSubset)
    np.testing.assert_array_equal(wide[10:20], X[10:20])


def test_the_plan_takes_its_workers_from_the_blas_threads_and_limits_blas_to_one():
    with threadpool_limits(1):
        with block_plan() as workers:
            assert workers == 1
    with block_plan(workers=2) as workers:
        assert workers == 2
        with block_plan() as inner:               # nested: the outermost plan's workers
            assert inner == 2
        assert all(lib["num_threads"] == 1 for lib in threadpool_info()
                   if lib["user_api"] == "blas")
