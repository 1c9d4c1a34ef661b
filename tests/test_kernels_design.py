"""Tests of the polynomial design matrices of the calibration (sklearn_selfcal._kernels.design)."""

import numpy as np
import pytest

from sklearn_selfcal._kernels import design

from _helpers import PAPER_DESIGN


def test_monomial_order_and_names_are_the_papers():
    powers = design.block_powers([design.monomial_powers(3, 2, include_bias=True),
                                  design.monomial_powers(1, 2, include_bias=False)])
    names = design.monomial_names(["J_R", "J_z", "L_z", "(LOGG-2.2)"], powers)
    assert names == PAPER_DESIGN
    two = design.monomial_powers(2, 2, include_bias=False)
    assert design.monomial_names(["a", "b"], two) == ["a", "b", "a^2", "a b", "b^2"]


def test_change_of_basis_is_exact():
    rng = np.random.default_rng(0)
    powers = design.block_powers([design.monomial_powers(3, 3, include_bias=True),
                                  design.monomial_powers(2, 2, include_bias=False)])
    X = rng.normal(size=(50, 5)) * [50, 10, 800, 0.5, 300] + [40, 10, -2000, -0.8, 100]
    c, s = X.mean(0), X.std(0)
    T = design.change_of_basis(powers, c, s)
    np.testing.assert_allclose(design.evaluate_monomials((X - c) / s, powers),
                               design.evaluate_monomials(X, powers) @ T, rtol=1e-9, atol=1e-9)
    # a nuisance block without a constant cannot be centred unless the design has one
    with pytest.raises(ValueError, match="not part of the design"):
        design.change_of_basis(design.monomial_powers(1, 2, include_bias=False), [1.0], [1.0])
