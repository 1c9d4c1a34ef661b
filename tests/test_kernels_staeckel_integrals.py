"""Tests of the numpy Staeckel fudge (sklearn_selfcal._kernels.staeckel_integrals) against galpy's
C implementation."""

import numpy as np
from galpy.actionAngle import actionAngleStaeckel

from sklearn_selfcal._kernels import staeckel_integrals as si

from _helpers import natural_stars, phi_of


def test_numpy_fudge_reproduces_galpys_c_code(pot):
    R, z, v_R, v_T, v_z = natural_stars(300)
    delta = np.random.default_rng(1).uniform(0.05, 0.6, R.size)  # a focal distance per star
    J_R, J_z = si.actions(phi_of(pot), R, z, v_R, v_T, v_z, delta)
    jr, _, jz = actionAngleStaeckel(pot=pot, delta=0.45, c=True)(R, v_R, v_T, z, v_z, delta=delta)
    ok = jr < 9999  # galpy's failure value (see the next test)
    # same integrals, same roots; both quadratures converged: measured 1e-13 median, 2e-5 worst
    assert np.median(np.abs(J_R[ok] / jr[ok] - 1)) < 1e-9
    assert np.median(np.abs(J_z[ok] / jz[ok] - 1)) < 1e-9
    assert np.max(np.abs(J_R[ok] / jr[ok] - 1)) < 1e-4
    assert np.max(np.abs(J_z[ok] / jz[ok] - 1)) < 1e-4
