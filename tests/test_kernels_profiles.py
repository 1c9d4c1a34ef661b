"""Tests of the presorted group medians of the radial profiles
(sklearn_selfcal._kernels.profiles)."""

import numpy as np

from sklearn_selfcal._kernels import profiles


def test_group_medians_of_presorted_values_equal_numpy():
    rng = np.random.default_rng(4)
    values = rng.normal(size=(1001, 3))
    values[rng.random(values.shape) < 0.1] = np.nan
    groups = rng.integers(-1, 7, 1001)
    orders, sorted_values = profiles.presort(values)
    for k in range(3):
        med, count = profiles.group_medians(sorted_values[k], groups[orders[k]], 8)
        for g in range(8):
            sel = values[(groups == g) & np.isfinite(values[:, k]), k]
            assert count[g] == sel.size
            if sel.size:
                assert med[g] == np.median(sel)
            else:
                assert np.isnan(med[g])
