"""Tests of the Monte Carlo draws that depend only on each row, and of the robust scatter of the
samples (sklearn_selfcal._kernels.montecarlo)."""

import numpy as np
import pytest

from sklearn_selfcal._kernels import montecarlo


def test_row_normals_are_standard_normal_and_depend_only_on_the_row():
    rows = np.random.default_rng(8).normal(size=(500, 3))
    draws = montecarlo.row_normals(rows, seed=11, n_samples=40, n_dims=4)
    assert draws.shape == (40, 500, 4)
    assert abs(draws.mean()) < 0.02 and abs(draws.std() - 1) < 0.02
    np.testing.assert_array_equal(montecarlo.row_normals(rows[::-1], 11, 40, 4), draws[:, ::-1])
    assert not np.array_equal(montecarlo.row_normals(rows, 12, 40, 4), draws)


def test_draw_samples_correlate_the_proper_motions():
    n = 4000
    obs = np.tile([10.0, 20.0, 1.0, 2.0, -3.0, 50.0], (n, 1)) + np.arange(n)[:, None] * 1e-6
    err = np.tile([0.1, 1.0, 1.0, 2.0], (n, 1))
    samples = montecarlo.draw_samples(obs, err, np.full(n, 0.8), 1, seed=3)
    assert np.all(samples[:, :2] == obs[:, :2])  # positions exact
    assert np.corrcoef(samples[:, 3], samples[:, 4])[0, 1] == pytest.approx(0.8, abs=0.03)
    assert np.std(samples[:, 5] - obs[:, 5]) == pytest.approx(2.0, rel=0.05)
