"""Tests of the per-column NaN median kernel (sklearn_selfcal._kernels.column_median)."""

import warnings

import numpy as np
import pytest

from sklearn_selfcal._kernels.column_median import nanmedian_columns, nanmedian_mad_columns


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_rows", [1, 2, 7, 400])
def test_equals_numpy_nanmedian(dtype, n_rows):
    rng = np.random.default_rng(n_rows)
    a = rng.normal(size=(n_rows, 60)).astype(dtype)
    a[rng.random(a.shape) < 0.05] = np.nan        # scattered bad pixels: counts differ by column
    a[:, 3] = np.nan                              # a chip gap: bad in every star
    a[: n_rows // 2 + 1, 5] = np.nan              # mostly bad: handled on its own
    a[:1, 7] = np.inf                             # infinities are missing values too
    a[:, 9] = 1.0                                 # ties
    before = a.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmedian(np.where(np.isfinite(a), a, np.nan).astype(np.float64), axis=0)
    got, mad = nanmedian_mad_columns(a, block_columns=16)   # several column blocks
    assert got.dtype == np.float64
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=0, atol=0)
    np.testing.assert_array_equal(nanmedian_columns(a), got)
    # the MAD about the median rounded to the data's dtype, as numpy computes it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        dev = np.abs(np.where(np.isfinite(a), a, np.nan) - expected.astype(dtype))
        expected_mad = np.nanmedian(dev.astype(np.float64), axis=0)
    np.testing.assert_allclose(mad, expected_mad, rtol=0, atol=0)
    np.testing.assert_array_equal(a, before)      # the input is never modified


def test_input_is_not_modified_and_empty_shapes():
    a = np.array([[3.0, np.nan], [1.0, 2.0], [2.0, np.nan]])
    before = a.copy()
    np.testing.assert_array_equal(nanmedian_columns(a), [2.0, 2.0])
    np.testing.assert_array_equal(a, before)
    assert nanmedian_columns(np.empty((0, 3))).shape == (3,)
    assert nanmedian_columns(np.empty((4, 0))).shape == (0,)
