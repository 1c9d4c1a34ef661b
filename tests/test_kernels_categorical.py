"""Tests of the categorical offsets of the calibration (sklearn_selfcal._kernels.categorical)."""

import numpy as np
import pandas as pd

from sklearn_selfcal._kernels import categorical


def test_categorical_codes_and_treatment_columns():
    values = pd.Series(["lco25m", "apo25m", None, "apo1m", "lco25m"], dtype="category")
    assert categorical.categories_of(values) == ["apo1m", "apo25m", "lco25m"]
    codes = categorical.encode(values, ["apo25m", "lco25m"])
    np.testing.assert_array_equal(codes, [1, 0, categorical.MISSING, categorical.UNSEEN, 1])
    D = categorical.treatment_columns(codes, 2, reference=0)
    np.testing.assert_array_equal(D[[0, 1, 4], 0], [1.0, 0.0, 1.0])
    assert np.isnan(D[[2, 3]]).all()
    # strings of any storage compare equal; numbers are categories by their text
    np.testing.assert_array_equal(
        categorical.encode(np.array(["a", np.nan, "b"], dtype=object), ["a", "b"]), [0, -1, 1])
    np.testing.assert_array_equal(categorical.encode(pd.Series([1, 2, 1]), ["1", "2"]), [0, 1, 0])
