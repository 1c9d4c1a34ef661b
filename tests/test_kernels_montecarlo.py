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


def test_robust_std_is_the_gaussian_sigma_across_the_angle_wrap():
    rng = np.random.default_rng(5)
    n_samples = 20000
    sigma = np.array([0.3, 0.05])                    # a distance-like column, an angle (rad)
    nominal = np.array([[1.0, np.pi - 0.01], [2.0, -np.pi + 0.02], [np.nan, 0.0]])
    samples = nominal + sigma * rng.normal(size=(n_samples, 3, 2))
    samples[..., 1] = np.angle(np.exp(1j * samples[..., 1]))  # angles in (-pi, pi], as atan2
    samples[:, 2, 0] = rng.normal(size=n_samples)    # valid draws around a failed nominal value
    samples[5:, 2, 1] = np.nan                       # 5 valid samples only
    before = samples.copy()
    std, n_valid = montecarlo.robust_std(samples, nominal, min_valid=10, angle_columns=(1,))
    np.testing.assert_array_equal(samples, before)
    # half the 16-84 percentile range of N(0, sigma) is 0.9945 sigma; with 20,000 draws each
    # percentile scatters by 0.011 sigma and half their difference by ~0.008 sigma, so 3 % is a
    # ~4-sigma band. The angles straddle +-pi: read without unwrapping they would spread by ~pi.
    np.testing.assert_allclose(std[:2], np.broadcast_to(0.9945 * sigma, (2, 2)), rtol=0.03)
    np.testing.assert_array_equal(n_valid[:, 0], n_samples)
    np.testing.assert_array_equal(n_valid[:2, 1], n_samples)
    assert n_valid[2, 1] == 5
    assert np.isnan(std[2]).all()                    # a NaN nominal value; too few valid samples
