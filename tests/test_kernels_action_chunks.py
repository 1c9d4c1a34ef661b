"""Tests of one chunk of ActionTransformer's work (sklearn_selfcal._kernels.action_chunks): the
status of every row, and the Monte Carlo uncertainties."""

import joblib
import numpy as np

from sklearn_selfcal._kernels import action_chunks
from sklearn_selfcal._kernels.action_chunks import (OUTPUT_COLUMNS, REASONS, ChunkSettings,
                                                    evaluate, transform_chunk)
from sklearn_selfcal._kernels.action_methods import ActionModel
from sklearn_selfcal._kernels.staeckel import DEFAULT_DELTA_KPC
from sklearn_selfcal._paper import GAIA_PARALLAX_ZERO_POINT, R0_KPC, V_SUN_KMS, Z_SUN_KPC
from sklearn_selfcal.coordinates import galactocentric_frame, galactocentric_to_icrs
from sklearn_selfcal.potential import default_potential

_COLUMN = {c: i for i, c in enumerate(OUTPUT_COLUMNS)}


def _settings(n_samples):
    potential = default_potential()
    model = ActionModel(potential=potential, key=joblib.hash(potential), method="staeckel_fixed",
                        delta=DEFAULT_DELTA_KPC, focal=None, grid=None, check=False,
                        threshold=0.05)
    return ChunkSettings(r0=R0_KPC, z_sun=Z_SUN_KPC, v_sun=V_SUN_KMS, model=model,
                         is_parallax=True, parallax_zero_point=GAIA_PARALLAX_ZERO_POINT,
                         n_samples=n_samples)


def _observed(xyz, vxyz):
    """ra, dec, observed parallax (zero point included), pmra, pmdec, v_los of Galactocentric
    positions (kpc) and velocities (km/s), one star a row."""
    obs = galactocentric_to_icrs(np.transpose(xyz), np.transpose(vxyz),
                                 frame=galactocentric_frame())
    parallax = 1.0 / obs["distance"] + GAIA_PARALLAX_ZERO_POINT   # observed = true + zero point
    return np.column_stack([obs["ra"], obs["dec"], parallax, obs["pmra"], obs["pmdec"],
                            obs["radial_velocity"]])


# a disk star, one 50 pc from the Galactic z axis, one unbound (kpc, km/s)
_XYZ = [[-8.5, 0.6, 0.1], [0.05, 0.0, 0.3], [-9.0, 0.0, 0.0]]
_VXYZ = [[15.0, 230.0, 8.0], [0.0, 60.0, 0.0], [0.0, 900.0, 0.0]]


def test_every_bad_row_gets_its_reason_and_nan_actions_and_good_rows_their_phase_space():
    obs = _observed(_XYZ, _VXYZ)
    no_pm = obs[0].copy()
    no_pm[3] = np.nan
    past_pole = obs[0].copy()
    past_pole[1] = 95.0
    behind = obs[0].copy()
    behind[2] = GAIA_PARALLAX_ZERO_POINT - 0.1       # a negative true parallax
    rows = np.vstack([obs, no_pm, past_pole, behind])
    frame = galactocentric_frame()
    out, status, rel_err, averaged = evaluate(rows, _settings(0), frame)
    np.testing.assert_array_equal(status, [0, 3, 4, 1, 1, 2])
    assert set(status[status > 0]) <= set(REASONS)   # every reason has its message
    assert rel_err is None and averaged is None      # the model has no orbit check
    # the good row: its phase space back through the sky (parallax zero point removed), round-off
    got = out[0, [_COLUMN[c] for c in ("x", "y", "z", "v_x", "v_y", "v_z")]]
    np.testing.assert_allclose(got, np.r_[_XYZ[0], _VXYZ[0]], rtol=1e-9, atol=1e-9)
    J = out[:, [_COLUMN["J_R"], _COLUMN["L_z"], _COLUMN["J_z"]]]
    assert np.all(np.isfinite(J[0])) and np.all(J[0, [0, 2]] > 0)
    assert np.isnan(J[1:]).all()                     # no action where the row has a reason
    E = out[:, _COLUMN["E"]]
    assert E[0] < 0 < E[2]
    # a row's result does not depend on the rows around it
    alone = evaluate(rows[[0]], _settings(0), frame)[0]
    np.testing.assert_array_equal(alone[0], out[0])


def test_a_star_with_one_failed_action_gets_no_action_at_all(monkeypatch):
    compute_actions = action_chunks.compute_actions

    def j_z_fails_on_the_first_star(*args, **kwargs):
        J_R, J_z, rel_err, averaged = compute_actions(*args, **kwargs)
        J_z[0] = np.nan
        return J_R, J_z, rel_err, averaged

    monkeypatch.setattr(action_chunks, "compute_actions", j_z_fails_on_the_first_star)
    obs = _observed(_XYZ[:1] * 2, _VXYZ[:1] * 2)
    out, status, _, _ = evaluate(obs, _settings(0), galactocentric_frame())
    np.testing.assert_array_equal(status, [5, 0])    # "Staeckel action finder failed"
    J = out[:, [_COLUMN["J_R"], _COLUMN["L_z"], _COLUMN["J_z"]]]
    assert np.isnan(J[0]).all() and np.isfinite(J[1]).all()


def test_chunk_uncertainties_vanish_without_errors_and_bad_errors_are_flagged():
    obs = _observed(_XYZ[:1] * 3, _VXYZ[:1] * 3)     # three copies of the disk star
    err = np.array([[0.0, 0.0, 0.0, 0.0],            # exact observations
                    [0.02, 0.05, 0.05, 1.0],         # mas, mas/yr, mas/yr, km/s
                    [0.02, -0.05, 0.05, 1.0]])       # a negative uncertainty
    none = transform_chunk(obs, None, None, _settings(0), seed=0)
    assert none["std"] is None and none["err_status"] is None
    result = transform_chunk(obs, err, None, _settings(8), seed=0)
    np.testing.assert_array_equal(result["out"], none["out"])
    np.testing.assert_array_equal(result["status"], 0)
    np.testing.assert_array_equal(result["err_status"], [0, 0, 1])
    std = result["std"]
    assert std.shape == (3, len(OUTPUT_COLUMNS))
    np.testing.assert_allclose(std[0], 0.0, atol=1e-9)  # every draw is the observation itself
    assert np.all(std[1, [_COLUMN[c] for c in ("x", "v_y", "J_R", "J_z")]] > 0)
    assert np.isnan(std[2]).all()                    # no *_err from a negative uncertainty
