"""Tests of the B-spline bases of the calibration (sklearn_selfcal._kernels.bspline)."""

import numpy as np
import pytest
from scipy.interpolate import BSpline

from sklearn_selfcal._kernels import bspline


def test_basis_is_a_partition_of_unity_and_reproduces_polynomials():
    knots = np.array([0.3, 0.9, 1.5, 1.8, 2.35])
    x = np.linspace(0.3, 2.35, 400)
    for degree in (1, 2, 3):
        B = bspline.basis(x, knots, degree)
        assert B.shape == (x.size, knots.size + degree - 1)
        np.testing.assert_allclose(B.sum(axis=1), 1.0, atol=1e-12)
        assert (B >= -1e-12).all()
        # every polynomial of the spline's degree lies in the span of the basis (exactly)
        y = 0.3 - 0.2 * x + 0.05 * x**degree
        coef, *_ = np.linalg.lstsq(B, y, rcond=None)
        np.testing.assert_allclose(B @ coef, y, atol=1e-10)


def test_basis_equals_scipy_bspline_inside_and_is_tangent_outside():
    knots = np.array([0.0, 1.0, 2.5, 3.0])
    degree = 3
    t = np.r_[[0.0] * 3, knots, [3.0] * 3]
    coef = np.array([0.4, -1.0, 2.0, 0.5, -0.3, 1.2])
    spline = BSpline(t, coef, degree)  # an independent evaluation of one spline
    inside = np.linspace(0, 3, 31)
    np.testing.assert_allclose(bspline.basis(inside, knots, degree) @ coef, spline(inside),
                               atol=1e-12)
    # outside: the straight line tangent at the nearest boundary knot
    d = spline.derivative()
    for x, edge in ((-0.7, 0.0), (4.2, 3.0)):
        value = bspline.basis(np.array([x]), knots, degree)[0] @ coef
        assert value == pytest.approx(spline(edge) + d(edge) * (x - edge), rel=1e-12)
    assert np.isnan(bspline.basis(np.array([np.nan, 1.0]), knots, degree)[0]).all()


def test_centred_basis_vanishes_at_the_reference_and_spans_the_corrections():
    knots = np.array([0.3, 1.0, 1.6, 2.2])
    x = np.linspace(0.0, 2.5, 200)
    B = bspline.basis(x, knots, 3)
    # an interior reference (e.g. Teff) and one on the outer knot (log g 2.2 above the data)
    for ref in (1.3, 2.2):
        C = bspline.centred_basis(x, knots, 3, ref)
        assert C.shape == (x.size, knots.size + 3 - 2)
        np.testing.assert_allclose(bspline.centred_basis(np.array([ref]), knots, 3, ref), 0.0,
                                   atol=1e-14)
        np.testing.assert_allclose(C, B[:, :-1] - bspline.basis(np.array([ref]), knots, 3)[0, :-1])
        # with a constant the centred columns span the whole spline space (nothing lost)
        design = np.column_stack([np.ones(x.size), C])
        assert np.linalg.matrix_rank(design) == B.shape[1]
        np.testing.assert_allclose(np.linalg.lstsq(design, B, rcond=None)[1], 0.0, atol=1e-20)


def test_knots():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 2.0, 1000)
    k = bspline.quantile_knots(np.r_[x, np.nan], 5, include=2.2)
    assert k.size == 5 and k[0] == x.min() and k[-1] == 2.2
    np.testing.assert_allclose(k[1:-1], np.quantile(np.r_[x, 2.2], [0.25, 0.5, 0.75]))
    assert bspline.quantile_knots(np.repeat([1.0, 2.0], 50), 6).tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="two distinct values"):
        bspline.quantile_knots(np.ones(10), 4)
    with pytest.raises(ValueError, match="strictly increasing"):
        bspline.check_knots([1.0, 1.0, 2.0], "knots of 'LOGG'")
