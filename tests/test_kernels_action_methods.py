"""Tests of the action methods (sklearn_selfcal._kernels.action_methods): galpy's C fudge with the
numpy fudge where galpy gives up."""

import numpy as np

from sklearn_selfcal._kernels import staeckel_integrals as si
from sklearn_selfcal._kernels.action_methods import ActionModel, _direct
from sklearn_selfcal._kernels.staeckel import (GALPY_RO_KPC, GALPY_VO_KMS, make_staeckel,
                                               staeckel_actions)
from sklearn_selfcal.potential import default_potential

from _helpers import phi_of


# a halo star on which galpy's C root finding gives up (J_R = 9999.99, natural units)
_GALPY_FAILS = dict(R=2.879521792165946, z=-3.478902654821262, v_R=1.615322680280282,
                    v_T=0.4983077668753245, v_z=0.350006963298146, delta=0.24955207297461485)


def test_galpy_failures_become_nan_and_the_compiled_fudge_computes_them(pot):
    s = {k: np.array([v]) for k, v in _GALPY_FAILS.items()}
    finder = make_staeckel(default_potential())
    raw = finder(s["R"], s["v_R"], s["v_T"], s["z"], s["v_z"], delta=s["delta"])
    assert raw[0][0] > 9999  # the case still fails in galpy (else this test tests nothing)
    ro, vo = GALPY_RO_KPC, GALPY_VO_KMS
    J_R, J_z = staeckel_actions(finder, s["R"] * ro, s["z"] * ro, s["v_R"] * vo, -s["v_T"] * vo,
                                s["v_z"] * vo, delta=s["delta"] * ro)
    assert np.isnan(J_R[0]) and np.isnan(J_z[0])  # not a silent 17-million kpc km/s
    model = ActionModel(potential=default_potential(), key="k", method="staeckel_fixed",
                        delta=float(s["delta"][0] * ro), focal=None, grid=None, check=False,
                        threshold=0.05)
    J_R, J_z = _direct(model, pot, s["R"], s["z"], s["v_R"], s["v_T"], s["v_z"])
    expected = si.actions(phi_of(pot), s["R"], s["z"], s["v_R"], s["v_T"], s["v_z"], s["delta"])
    assert np.isfinite(J_R[0]) and 0 < J_R[0] < 100
    # the same integrals by the numpy fudge: its 16 quadrature nodes against the compiled fudge's
    # 32 differ by ~1e-8 here (up to 2.5e-3 on rare bulge points), 1e-6 holds them to that
    np.testing.assert_allclose([J_R[0], J_z[0]], [expected[0][0], expected[1][0]], rtol=1e-6)


def test_check_points_outside_the_tables_get_the_fudges_actions(pot, tables):
    # The check's points beyond the action tables (here angular momenta past the circular orbit
    # at 80 kpc) are computed by the compiled fudge with the orbit's focal distance, not left NaN;
    # they must be galpy's C fudge's actions (the star's own values) to the compiled fudge's
    # accuracy (within 3e-5 of galpy's C code; 1e-4 here), and the points inside the tables the
    # grid's.
    import joblib

    from sklearn_selfcal._kernels.action_methods import _points_actions
    from sklearn_selfcal._kernels.staeckel_grid import grid_actions

    focal, grid = tables
    potential = default_potential()
    model = ActionModel(potential=potential, key=joblib.hash(potential), method="auto", delta=0.0,
                        focal=focal, grid=grid, check=True, threshold=0.05)
    rng = np.random.default_rng(4)
    n = 6
    # (n_points=3, 5, n): stars 0-2 in the disk, 3-5 beyond the tables; one NaN point (a star's
    # points past its last one)
    R = np.concatenate([rng.uniform(0.8, 1.2, (3, 3)), rng.uniform(12.0, 14.0, (3, 3))], axis=1)
    points = np.array([R, rng.normal(0, 0.05, R.shape), rng.normal(0, 0.1, R.shape),
                       np.full(R.shape, 0.9), rng.normal(0, 0.05, R.shape)]).transpose(1, 0, 2)
    points[2, :, 1] = np.nan
    flat = [points[:, i].ravel() for i in range(5)]
    outside = np.isnan(grid_actions(grid, pot, *flat)[0]) & np.isfinite(flat[0])
    assert outside.sum() == 9  # the case is outside the tables (else this tests nothing)
    J_R, J_z = (J.ravel() for J in _points_actions(model, pot, points))
    assert np.isnan(J_R[np.isnan(flat[0])]).all()
    expected = _direct(model, pot, *(a[outside] for a in flat))
    np.testing.assert_allclose(J_R[outside], expected[0], rtol=1e-4)
    np.testing.assert_allclose(J_z[outside], expected[1], rtol=1e-4)
    inside = ~outside & np.isfinite(flat[0])
    np.testing.assert_array_equal(J_R[inside], grid_actions(grid, pot, *(a[inside] for a in flat))[0])
