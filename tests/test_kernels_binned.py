"""Tests of the grouped-statistics kernels (sklearn_selfcal._kernels.binned) against numpy per group."""

import numpy as np
import pytest

from sklearn_selfcal._kernels import binned
from sklearn_selfcal._paper import MEDIAN_EFFICIENCY


def test_grouped_statistics_equal_numpy_per_group():
    rng = np.random.default_rng(0)
    values = rng.normal(size=2000)
    values[rng.random(2000) < 0.05] = np.nan
    group = rng.integers(-2, 40, size=2000)  # negative: in no group; group 39 may be empty
    group[group == 39] = -1
    med, n = binned.grouped_median(group, values, 40)
    mean, _ = binned.grouped_mean(group, values, 40)
    std, _ = binned.grouped_std(group, values, 40)
    med2, err, n2 = binned.grouped_median_and_error(group, values, 40)
    np.testing.assert_array_equal(med2, med)
    np.testing.assert_array_equal(n2, n)
    for g in range(40):
        v = values[(group == g) & np.isfinite(values)]
        assert n[g] == v.size
        if v.size == 0:
            assert np.isnan(med[g]) and np.isnan(mean[g]) and np.isnan(err[g])
            continue
        assert med[g] == pytest.approx(np.median(v), abs=1e-12)
        assert mean[g] == pytest.approx(np.mean(v), abs=1e-12)
        if v.size > 1:
            assert std[g] == pytest.approx(np.std(v, ddof=1), abs=1e-12)
            # the paper's uncertainty of a median: 1.253 sigma / sqrt(N)
            assert err[g] == pytest.approx(MEDIAN_EFFICIENCY * np.std(v, ddof=1) / np.sqrt(v.size), rel=1e-12)
    assert n[39] == 0


def test_bin_index_is_half_open_and_rejects_outside():
    edges = np.array([0.0, 1.0, 2.0])
    idx = binned.bin_index([-0.1, 0.0, 0.999, 1.0, 1.5, 2.0, np.nan], edges)
    np.testing.assert_array_equal(idx, [-1, 0, 0, 1, 1, -1, -1])
    flat = binned.bin_index_2d([0.5, 1.5, 1.5, 3.0], [0.5, 0.5, 1.5, 0.5], edges, edges)
    np.testing.assert_array_equal(flat, [0, 1, 3, -1])  # row-major (y, x)


def test_equal_count_bins_even_with_ties():
    values = np.r_[np.repeat(1.0, 50), np.linspace(0, 2, 51), np.nan]
    labels, ranges = binned.equal_count_bins(values, 4)
    counts = np.bincount(labels[labels >= 0])
    assert counts.max() - counts.min() <= 1 and counts.sum() == 101
    assert labels[-1] == -1
    assert np.all(ranges[:-1, 1] <= ranges[1:, 0])


def test_category_bins_one_label_per_distinct_value():
    values = np.array(["lco25m", "apo25m", "apo1m", "apo25m", "lco25m", "x"], dtype=object)
    where = np.array([True, True, True, True, True, False])
    labels, categories = binned.category_bins(values, where=where)
    assert categories.tolist() == ["apo1m", "apo25m", "lco25m"]  # sorted
    np.testing.assert_array_equal(labels, [2, 1, 0, 1, 2, -1])
    # every labelled value is its category
    assert all(categories[lab] == v for lab, v in zip(labels, values) if lab >= 0)
    # floats: non-finite values are in no category
    labels, categories = binned.category_bins(np.array([2.0, np.nan, 1.0, 2.0]))
    np.testing.assert_array_equal(labels, [1, -1, 0, 1])
    with pytest.raises(ValueError, match="same length"):
        binned.category_bins(values, where=where[:3])
