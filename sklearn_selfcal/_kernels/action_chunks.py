"""One chunk of :class:`~sklearn_selfcal.ActionTransformer`'s work: observables to phase space,
energy, actions and their accuracy, and Monte Carlo uncertainties.

Plain functions of picklable arguments, so that any joblib backend can run them; the galpy objects
and tables they need are rebuilt (once per worker process) or shipped in :class:`ChunkSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._paper import parallax_to_distance
from ..coordinates import cylindrical_from_cartesian, galactocentric_frame, icrs_to_galactocentric
from .action_methods import compute_actions
from .montecarlo import draw_samples, robust_std
from .staeckel import orbital_energy

__all__ = ["OUTPUT_COLUMNS", "MIN_R_KPC", "REASONS", "ERR_REASONS", "ChunkSettings",
           "evaluate", "transform_chunk"]

#: Output columns, in order (kpc, km/s, rad, kpc km/s, km^2/s^2).
OUTPUT_COLUMNS = ("x", "y", "z", "v_x", "v_y", "v_z", "R", "phi", "v_R", "v_phi",
                  "J_R", "L_z", "J_z", "E")
_ACTIONS = [OUTPUT_COLUMNS.index(c) for c in ("J_R", "L_z", "J_z")]
_PHI = OUTPUT_COLUMNS.index("phi")

#: Stars closer to the Galactic z axis than this get NaN actions (kpc).
MIN_R_KPC = 0.1

#: Row status codes (0 = good) and their messages.
REASONS = {
    1: "non-finite input or |dec| > 90 deg",
    2: "non-positive parallax or distance",
    3: f"R < {MIN_R_KPC} kpc",
    4: "unbound orbit (E >= 0)",
    5: "Staeckel action finder failed",
}
ERR_REASONS = {
    1: "non-finite or negative uncertainty (no *_err)",
    2: "fewer than half of the Monte Carlo samples valid (*_err set to NaN)",
}


@dataclass(frozen=True)
class ChunkSettings:
    """Everything a chunk worker needs; picklable."""

    r0: float
    z_sun: float
    v_sun: tuple
    model: object  # action_methods.ActionModel
    is_parallax: bool
    parallax_zero_point: float
    n_samples: int


def _distance_kpc(values, settings):
    """Heliocentric distance (kpc) from the parallax (mas) or distance (kpc) column; NaN if <= 0."""
    if settings.is_parallax:
        return parallax_to_distance(values, zero_point=settings.parallax_zero_point)
    return np.where((values > 0) & np.isfinite(values), values, np.nan)


def evaluate(obs, settings, frame, check=True):
    """Phase space, energy and actions of the rows of ``obs`` (n, 6).

    Returns
    -------
    out : ndarray of shape (n, 14)
        :data:`OUTPUT_COLUMNS`.
    status : ndarray of int8 of shape (n,)
        0 or a key of :data:`REASONS`.
    rel_err : ndarray of shape (n,) or None
        ``actions_rel_err`` (None without the orbit check); NaN where the actions are NaN.
    flags : ndarray of shape (n,) or None
        ``actions_flags`` (bits of :mod:`~sklearn_selfcal._kernels.action_methods`, as floats);
        NaN where the actions are NaN.
    """
    ra, dec, dist_col, pmra, pmdec, rv = obs.T
    n = obs.shape[0]
    status = np.zeros(n, dtype=np.int8)
    bad_dec = ~(np.abs(dec) <= 90.0)
    status[~np.all(np.isfinite(obs), axis=1) | bad_dec] = 1
    dec = np.where(bad_dec, np.nan, dec)
    distance = _distance_kpc(dist_col, settings)
    status[(status == 0) & np.isnan(distance)] = 2

    xyz, vxyz = icrs_to_galactocentric(ra, dec, distance, pmra, pmdec, rv, frame=frame)
    R, phi, v_R, v_phi, L_z = cylindrical_from_cartesian(xyz, vxyz)
    E = np.full(n, np.nan)
    finite = np.all(np.isfinite(xyz), axis=0) & np.all(np.isfinite(vxyz), axis=0)
    E[finite] = orbital_energy(settings.model.potential, xyz[:, finite], vxyz[:, finite])
    status[(status == 0) & (R < MIN_R_KPC)] = 3
    status[(status == 0) & ~(E < 0)] = 4

    J_R = np.full(n, np.nan)
    J_z = np.full(n, np.nan)
    rel_err = flags = None
    good = status == 0
    do_check = check and settings.model.check
    if do_check:
        rel_err = np.full(n, np.nan)
        flags = np.full(n, np.nan)
    if good.any():
        J_R[good], J_z[good], err, bits = compute_actions(
            settings.model, R[good], xyz[2, good], v_R[good], v_phi[good], vxyz[2, good],
            check=do_check)
        if do_check:
            rel_err[good], flags[good] = err, bits
    status[(status == 0) & ~(np.isfinite(J_R) & np.isfinite(J_z))] = 5
    bad = status != 0
    J_R[bad] = J_z[bad] = np.nan
    if do_check:
        rel_err[bad] = np.nan
        flags[bad] = np.nan
    L_z_out = np.where(bad, np.nan, L_z)
    out = np.column_stack([xyz[0], xyz[1], xyz[2], vxyz[0], vxyz[1], vxyz[2],
                           R, phi, v_R, v_phi, J_R, L_z_out, J_z, E])
    return out, status, rel_err, flags


def transform_chunk(obs, err, corr, settings, seed):
    """Worker: outputs, Monte Carlo uncertainties, row status, accuracy of one chunk of rows.

    Parameters
    ----------
    obs : ndarray of shape (n, 6)
        ra, dec (deg), parallax (mas) or distance (kpc), pmra, pmdec (mas/yr), velocity (km/s).
    err : ndarray of shape (n, 4) or None
        Uncertainties of the last four columns (``settings.n_samples > 0``).
    corr : ndarray of shape (n,) or None
        pmra-pmdec correlation.
    settings : ChunkSettings
    seed : int
        Seed of the Monte Carlo draws.

    Returns
    -------
    result : dict
        ``out`` (n, 14), ``std`` (n, 14) or None, ``status``, ``err_status`` or None,
        ``rel_err`` or None, ``flags`` or None.
    """
    frame = galactocentric_frame(settings.r0, settings.z_sun, settings.v_sun)
    out, status, rel_err, flags = evaluate(obs, settings, frame)
    result = {"out": out, "std": None, "status": status, "err_status": None,
              "rel_err": rel_err, "flags": flags}
    if settings.n_samples == 0:
        return result
    n = obs.shape[0]
    err_status = np.zeros(n, dtype=np.int8)
    bad_err = ~np.all(np.isfinite(err) & (err >= 0), axis=1)
    err_status[bad_err] = 1
    samples = draw_samples(obs, np.where(bad_err[:, None], 0.0, err), corr, settings.n_samples, seed)
    sample_out = evaluate(samples, settings, frame, check=False)[0]
    sample_out = sample_out.reshape(settings.n_samples, n, len(OUTPUT_COLUMNS))
    min_valid = max(2, (settings.n_samples + 1) // 2)
    std, n_valid = robust_std(sample_out, out, min_valid, angle_columns=(_PHI,))
    too_few = (status == 0) & (n_valid[:, _ACTIONS[0]] < min_valid) & ~bad_err
    err_status[too_few] = 2
    std[bad_err] = np.nan
    result.update(std=std, err_status=err_status)
    return result
