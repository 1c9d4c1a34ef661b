"""Tests of the exp-linear chi-squared datafit (sklearn_selfcal._kernels.explinear_l1.datafits)."""

import numpy as np
import pytest

from sklearn_selfcal._kernels.explinear_l1.datafits import EXP_CAP, ExpLinearChi2, safe_exp


def _datafit(n=500, seed=0):
    rng = np.random.default_rng(seed)
    eta = rng.normal(-0.5, 0.8, n)
    y = safe_exp(eta) * (1 + 0.3 * rng.normal(size=n))
    y[:20] = -np.abs(y[:20])                                    # negative parallaxes
    return ExpLinearChi2(y, rng.uniform(0.5, 2.0, n) / n), eta, rng


@pytest.mark.parametrize("scale", [1e-10, 1e-3, 0.3])
def test_remainder_is_the_exact_non_linear_part_of_a_change(scale):
    datafit, eta, rng = _datafit()
    d = scale * rng.normal(size=eta.size)
    mu = safe_exp(eta)
    got = datafit.remainder(eta, d)
    if scale >= 0.1:
        # large steps: the direct difference is accurate (no cancellation to speak of)
        want = datafit.value(eta + d) - datafit.value(eta) - datafit.raw_grad(eta) @ d
        assert got == pytest.approx(want, rel=1e-9, abs=0)
        return
    # small steps: the Taylor series to 4th order, term by term (truncation ~ d**3 relative):
    # c [(mu - y) mu (d^2/2 + d^3/6 + d^4/24) + mu^2 (d + d^2/2 + d^3/6)^2 / 2]
    c, y = datafit.weights, datafit.y
    em1_minus = d**2 / 2 + d**3 / 6 + d**4 / 24
    em1 = d + d**2 / 2 + d**3 / 6
    want = float(np.sum(c * ((mu - y) * mu * em1_minus + 0.5 * (mu * em1) ** 2)))
    # 1e-9: the series' truncation is ~scale**3 relative and rounding ~1e-15; a change computed
    # as a difference of values is far off at scale 1e-10 (checked below), and expm1(d) - d without
    # its series errs by 2 eps / |d| ~ 4e-6 per star
    assert got == pytest.approx(want, rel=1e-9, abs=0)
    naive = datafit.value(eta + d) - datafit.value(eta) - datafit.raw_grad(eta) @ d
    if scale < 1e-6:
        assert naive != pytest.approx(want, rel=1e-6, abs=0)   # a difference of values is not


def test_remainder_and_values_stay_finite_past_the_exponent_cap():
    datafit, eta, rng = _datafit()
    d = np.full(eta.size, 60.0)                               # a trial step of absurd length
    with np.errstate(over="raise", invalid="raise"):
        r = datafit.remainder(eta, d)
        v = datafit.value(eta + d)
    assert np.isfinite(r) and np.isfinite(v) and r > 0
    assert safe_exp(np.array([EXP_CAP + 100.0]))[0] == np.exp(EXP_CAP)


def test_curvatures_are_positive_and_the_hessian_one_exact_where_it_is():
    datafit, eta, _ = _datafit()
    mu = safe_exp(eta)
    fisher = datafit.curvature(eta, kind="fisher")
    hess = datafit.curvature(eta, kind="hessian")
    exact = datafit.weights * mu * (2 * mu - datafit.y)
    assert np.all(fisher > 0) and np.all(hess > 0)
    ok = datafit.y < 1.9 * mu                                  # the factor 2 - y/mu above the floor
    np.testing.assert_allclose(hess[ok], exact[ok], rtol=1e-12)
    with pytest.raises(ValueError, match="kind"):
        datafit.curvature(eta, kind="newton")
