"""``make_survey``: a simulated APOGEE x Gaia red-giant survey with known truth."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from .._apogee import N_ASPCAP_PIXELS
from .._paper import ELEMENTS, LOGG_REFERENCE, R0_KPC, V_SUN_KMS, Z_SUN_KPC
from ..coordinates import (cylindrical_from_cartesian,
                           galactocentric_frame, galactocentric_to_icrs)
from ..potential import default_potential
from .._kernels.staeckel import DEFAULT_DELTA_KPC, cached_staeckel, orbital_energy, staeckel_actions
from . import _astrometry, _chemistry, _dust, _galaxy, _spectra, _stars, _targeting
from ._random import seed_sequence

__all__ = ["make_survey", "simulate_catalogue", "DEFAULT_PHYSICS"]

#: Every physics keyword of :func:`make_survey` and its default, grouped by the piece it belongs to.
DEFAULT_PHYSICS = {
    "galaxy": _galaxy.DEFAULT_GALAXY,
    "stars": _stars.DEFAULT_STARS,
    "dust": _dust.DEFAULT_DUST,
    "targeting": _targeting.DEFAULT_TARGETING,
    "chemistry": _chemistry.DEFAULT_CHEMISTRY,
    "astrometry": _astrometry.DEFAULT_ASTROMETRY,
    "spectra": _spectra.DEFAULT_SPECTRA,
}

# Append new streams at the end only: a SeedSequence's i-th child does not depend on how many are
# spawned, so the existing streams (and the default catalogue) stay the same.
_STREAMS = ("galaxy", "stars", "chemistry", "astrometry", "photometry", "labels", "spectra",
            "telescope")


def _resolve_physics(overrides):
    physics = {group: copy.deepcopy(values) for group, values in DEFAULT_PHYSICS.items()}
    owner = {key: group for group, values in physics.items() for key in values}
    unknown = sorted(set(overrides) - set(owner))
    if unknown:
        raise TypeError(f"make_survey() got unknown physics keyword(s) {unknown}; "
                        f"valid keywords are {sorted(owner)}")
    for key, value in overrides.items():
        group = owner[key]
        if key == "systematics":
            value = _chemistry.systematics_table(value)
        elif isinstance(physics[group][key], dict) and isinstance(value, dict):
            unknown = sorted(set(value) - set(physics[group][key]))
            if unknown:
                raise TypeError(f"{key}: unknown entries {unknown}; expected {sorted(physics[group][key])}")
            value = {**physics[group][key], **value}
        physics[group][key] = value
    return physics


def _apogee_ids(ra, dec):
    """2MASS-style designations 2MHHMMSSss+DDMMSSs from coordinates (deg)."""
    h = ra / 15.0
    hh, mm = np.floor(h), np.floor((h % 1) * 60)
    ss = np.floor(((h * 60) % 1) * 6000)
    sign = np.where(dec < 0, "-", "+")
    d = np.abs(dec)
    dd, dm = np.floor(d), np.floor((d % 1) * 60)
    ds = np.floor(((d * 60) % 1) * 600)
    ids = [f"2M{a:02.0f}{b:02.0f}{c:04.0f}{s}{e:02.0f}{f:02.0f}{g:03.0f}"
           for a, b, c, s, e, f, g in zip(hh, mm, ss, sign, dd, dm, ds)]
    seen = {}
    for i, name in enumerate(ids):  # disambiguate the rare identical designations
        if name in seen:
            seen[name] += 1
            ids[i] = f"{name}_{seen[name]}"
        else:
            seen[name] = 0
    return np.array(ids, dtype=object)


def _draw_candidates(rngs, n, physics, potential, frame, vc_table):
    """One batch of candidate giants from every population that pass the survey selection.

    Nothing here depends on chemistry: the selection (H-band window by field, targeting
    probability) sees only position, log g, Teff, mass and dust.
    """
    g, st = rngs["galaxy"], rngs["stars"]
    weights = physics["galaxy"]["population_weights"]
    counts = g.multinomial(n, [weights[p] for p in _galaxy.POPULATIONS])
    xyz, vxyz = [], []
    for pop, k in zip(_galaxy.POPULATIONS, counts):
        xyz.append(_galaxy.sample_positions(g, pop, k, physics["galaxy"]))
        vxyz.append(_galaxy.sample_velocities(g, pop, xyz[-1], physics["galaxy"], vc_table))
    perm = g.permutation(n)
    c = {"xyz": np.concatenate(xyz, axis=1)[:, perm], "vxyz": np.concatenate(vxyz, axis=1)[:, perm],
         "pop": np.repeat(np.array(_galaxy.POPULATIONS, dtype=object), counts)[perm]}
    c["logg"], c["teff"], c["mass"] = _stars.sample_stellar_parameters(st, n, physics["stars"])
    c["M_K"] = _stars.absolute_k_magnitude(st, c["logg"], c["teff"], c["mass"], physics["stars"])
    pos, vel = c["xyz"], c["vxyz"]
    c["obs"] = _by_blocks(lambda i: galactocentric_to_icrs(pos[:, i], vel[:, i], frame), n)
    c["A_K"] = _by_blocks(lambda i: _dust.extinction_k(pos[:, i], physics["dust"]), n)
    c["dist_mod"] = 5.0 * np.log10(c["obs"]["distance"] * 100.0)  # distance in kpc
    h_mag = (c["M_K"] + _stars.intrinsic_colours(c["teff"])["H"] + c["dist_mod"]
             + _stars.EXTINCTION_RATIOS["H"] * c["A_K"])
    c["E"] = _by_blocks(lambda i: orbital_energy(potential, pos[:, i], vel[:, i]), n)
    keep = (_targeting.is_targeted(g, h_mag, c["obs"]["l"], c["obs"]["b"], physics["targeting"])
            & (np.hypot(c["xyz"][0], c["xyz"][1]) >= 0.1) & (c["E"] < 0))
    return _take(c, keep)


#: Candidates per call of the deterministic per-star transforms (sky coordinates, dust, energy),
#: whose temporaries would otherwise grow with the number of candidates drawn (~4 per star kept).
_TRANSFORM_BLOCK = 2**18


def _by_blocks(func, n):
    """``func(slice)`` over consecutive blocks of ``n`` candidates, concatenated (dicts too)."""
    parts = [func(slice(a, min(a + _TRANSFORM_BLOCK, n))) for a in range(0, n, _TRANSFORM_BLOCK)]
    return parts[0] if len(parts) == 1 else _concat(parts)


def _take(c, idx):
    out = {}
    for key, v in c.items():
        out[key] = _take(v, idx) if isinstance(v, dict) else v[..., idx]
    return out


def _concat(batches):
    """Batches (dicts of arrays, nested, or arrays) joined along their last axis."""
    first = batches[0]
    if not isinstance(first, dict):
        return np.concatenate(batches, axis=-1)
    return {key: _concat([b[key] for b in batches]) for key in first}


def make_survey(n_stars=2000, n_pixels=N_ASPCAP_PIXELS, random_state=None, n_jobs=None, **physics):
    """Simulate an APOGEE x Gaia red-giant survey of the Milky Way with known truth.

    Stars are drawn from a thin disk, a thick disk and a bulge/bar in gala's
    ``MilkyWayPotential2022``, observed through dust with an H-band magnitude window that is
    shallower towards the bulge, so that lower-log g (more luminous) giants are seen farther away:
    log g is confounded with position and orbit, the problem the paper's self-calibration solves.
    True abundances are smooth functions of the orbit only (a broken radial [Fe/H] gradient in
    guiding radius for the low-alpha disk, a flat high-alpha disk, membership of the high-alpha
    population a probability set by ``J_z`` and the guiding radius); the reported abundances add a
    per-element systematic quadratic in ``LOGG - 2.2`` (optionally of higher degree, plus a
    systematic linear in Teff and an offset per telescope) and noise at the reported uncertainty.

    Two simplifications make the paper's assumption (abundances depend on the orbit, and on log g
    only through the systematics) hold exactly: a giant's luminosity does not depend on its
    chemistry, and all populations share one mass distribution. The survey selection therefore
    depends on log g, position and dust but never on abundance at fixed orbit.
    Gaia parallaxes carry a zero point and noise growing with magnitude (negative parallaxes
    occur); spectra are continuum-normalised fluxes whose log is nearly linear in the labels, so
    that the log-parallax is nearly linear in log-pixels and magnitudes, as the paper assumes.

    Parameters
    ----------
    n_stars : int, default=2000
        Number of stars in the survey (after the survey selection).
    n_pixels : int, default=7514
        Pixels per spectrum; 7,514 is the real ASPCAP grid. 0 skips the spectra.
    random_state : int, RandomState, Generator or None, default=None
        Seed. The catalogue does not depend on ``n_pixels`` or ``n_jobs``.
    n_jobs : int, default=None
        Threads used to fill the spectra (joblib convention).
    **physics
        Any default of :data:`DEFAULT_PHYSICS`, by name. The main ones:

        ``population_weights`` (dict, thin 0.58 / thick 0.17 / bulge 0.25 of candidate giants);
        ``thin_scale_length`` (3.0 kpc), ``thin_scale_height`` (0.30 kpc, flaring outside R0),
        ``thick_scale_length`` (2.2 kpc), ``thick_scale_height`` (0.90 kpc),
        ``bar_scale_lengths`` ((1.6, 0.65, 0.40) kpc), ``bar_angle`` (25 deg),
        ``thin_sigma`` / ``thick_sigma`` ((35, 25, 20) / (60, 45, 45) km/s at R0),
        ``logg_range`` ((0.3, 2.35) dex), ``absmag_scatter`` (0.10 mag), ``mass`` (1.2 Msun),
        ``high_alpha_orbit`` (dict jz0=35 kpc km/s, width=0.45 dex, rg_slope=0.1 dex/kpc),
        ``a_k_per_kpc`` (0.10 mag/kpc of K-band extinction in the plane at R0),
        ``h_faint`` (12.2 mag), ``bulge_h_faint`` (11.0 mag in the bulge fields, ``|l| < 15``, ``|b| < 12`` deg),
        ``feh_gradient`` (dict m1=-0.057 dex/kpc, b=0.41 dex, k=14.5 kpc, m2=-0.019 dex/kpc),
        ``feh_scatter`` (0.05 dex), ``systematics`` (DataFrame/dict of per-abundance ``lg``,
        ``lg2`` coefficients, or a scale factor on the defaults; 0 switches them off; further
        terms ``lg3``, ``lg4``, ... inject a non-quadratic log g systematic),
        ``parallax_zero_point`` (-0.017 mas), ``parallax_error_scale`` (1.0),
        ``snr_at_h11`` (100 per pixel), ``bad_pixel_fraction`` (0.003).

        Nuisance systematics beyond log g, all off by default (the default catalogue does not
        change): ``teff_systematics`` (dex per 1000 K of ``TEFF - teff_reference``, on the reported
        Teff; a number for every abundance or a mapping abundance -> coefficient),
        ``teff_reference`` (4500 K), ``telescope_offsets`` (mapping telescope -> offset in dex,
        a number for every abundance or a mapping abundance -> offset, e.g. ``{"lco25m":
        0.03}``), ``lco_fraction`` (None: stars south of dec = -20 deg are observed from LCO,
        about 47 % of the survey; a number in (0, 1): LCO observes a star with a probability that
        falls smoothly with declination over ``lco_dec_width`` = 8 deg, so that the expected LCO
        fraction is this number). The southern telescope sees the bulge and the inner disk, so
        a telescope offset is confounded with position, as in the real survey.

    Returns
    -------
    survey : sklearn.utils.Bunch
        frame : pandas.DataFrame
            One row per star with the real catalogues' column names (APOGEE upper case, Gaia and
            WISE lower case): ``APOGEE_ID, TELESCOPE, ra, dec, GLON, GLAT`` (deg), ``TEFF``,
            ``TEFF_ERR`` (K), ``LOGG``, ``LOGG_ERR`` (dex), ``M_H, ALPHA_M, FE_H`` and the 19
            ``<X>_FE`` with ``_ERR`` (dex; NaN where missing), ``VHELIO_AVG, VERR`` (km/s),
            ``SNR``, ``LSF_1..LSF_5`` (dimensionless LSF moments), ``parallax,
            parallax_error`` (mas), ``pmra, pmdec`` with ``_error`` (mas/yr),
            ``visibility_periods_used, astrometric_n_good_obs_al, astrometric_chi2_al, ruwe``,
            ``phot_g/bp/rp_mean_mag``, ``J, H, K``, ``w1mpro, w2mpro`` (mag) with errors
            (``_error`` or 2MASS ``_ERR``).
        spectra, spectra_err : ndarray of shape (n_stars, n_pixels), float32
            Continuum-normalised flux and its 1-sigma error; bad pixels have flux 0 and error 1e10.
        wavelength : ndarray of shape (n_pixels,)
            Angstrom.
        truth : pandas.DataFrame
            Aligned with ``frame``: ``distance`` (kpc), ``parallax`` (mas), ``x, y, z`` (kpc),
            ``v_x, v_y, v_z`` (km/s), ``R`` (kpc), ``phi`` (rad), ``v_R, v_phi`` (km/s),
            ``J_R, L_z, J_z`` (kpc km/s), ``E`` (km^2/s^2), ``R_guide`` (kpc), ``population``,
            ``high_alpha``, ``TEFF`` (K), ``LOGG`` (dex), ``mass`` (Msun), ``M_K``, ``A_K`` (mag)
            and the true abundances (dex) under the frame's names, before systematics and noise.
        params : dict
            The injected settings: ``systematics`` (DataFrame, index abundance column, columns
            ``lg`` and ``lg2`` and any higher power), ``teff_systematics`` (Series, dex per
            1000 K, zeros when off), ``teff_reference`` (K), ``telescope_offsets`` (DataFrame,
            index abundance, one column per telescope with an offset, dex; no columns when off),
            ``logg_ref`` (2.2), ``feh_gradient``, ``parallax_zero_point``
            (mas), ``frame`` (R0, z_sun, v_sun), ``action_delta`` (kpc), ``physics`` (every
            setting), ``n_stars``, ``n_pixels`` and ``random_state``.

    Examples
    --------
    >>> from sklearn_selfcal.datasets import make_survey
    >>> survey = make_survey(n_stars=500, n_pixels=0, random_state=0)
    >>> survey.frame.shape[0]
    500
    """
    n_stars = int(n_stars)
    if n_stars < 1:
        raise ValueError(f"n_stars must be a positive integer, got {n_stars}")
    _check_pixels(n_pixels)
    survey = simulate_catalogue(n_stars, random_state, **physics)
    wavelength = spectra = spectra_err = None
    if _check_pixels(n_pixels) > 0:
        wavelength, spectra, spectra_err = _spectra.simulate_spectra(
            survey.spectra_seed, survey.labels, survey.snr, survey.params["physics"]["spectra"],
            int(n_pixels), n_jobs=n_jobs)
    return Bunch(frame=survey.frame, spectra=spectra, spectra_err=spectra_err,
                 wavelength=wavelength, truth=survey.truth,
                 params={**survey.params, "n_pixels": int(n_pixels)})


def _check_pixels(n_pixels):
    if int(n_pixels) < 0:
        raise ValueError(f"n_pixels must be >= 0, got {n_pixels}")
    return int(n_pixels)


def simulate_catalogue(n_stars, random_state=None, **physics):
    """Everything :func:`make_survey` simulates but the spectra, and what the spectra need.

    Parameters
    ----------
    n_stars : int
    random_state : int, RandomState, Generator or None
    **physics
        As for :func:`make_survey`.

    Returns
    -------
    survey : sklearn.utils.Bunch
        ``frame``, ``truth`` and ``params`` (without ``n_pixels``) as in :func:`make_survey`;
        ``labels`` (n_stars, len(LABELS)) float32 and ``snr`` (n_stars,), the inputs of the
        spectra; ``spectra_seed``, the :class:`numpy.random.SeedSequence` of their streams.
    """
    n_stars = int(n_stars)
    if n_stars < 1:
        raise ValueError(f"n_stars must be a positive integer, got {n_stars}")
    physics = _resolve_physics(physics)
    seq = seed_sequence(random_state)
    children = seq.spawn(len(_STREAMS))
    rngs = {name: np.random.default_rng(child) for name, child in zip(_STREAMS, children)}
    potential = default_potential()
    frame = galactocentric_frame()
    vc_table = _galaxy.circular_velocity_table(potential)

    batches, have, drawn = [], 0, 0
    while have < n_stars:
        rate = have / drawn if have else 0.25  # acceptance of the survey selection so far
        size = int(1.2 * (n_stars - have) / max(rate, 0.01)) + 1000
        batch = _draw_candidates(rngs, size, physics, potential, frame, vc_table)
        batches.append(batch)
        have += batch["pop"].size
        drawn += size
    c = _take(_concat(batches), slice(0, n_stars))
    del batches

    R, phi, v_R, v_phi, L_z = cylindrical_from_cartesian(c["xyz"], c["vxyz"])
    finder = cached_staeckel(potential, DEFAULT_DELTA_KPC, key="default_potential")
    J_R, J_z = staeckel_actions(finder, R, c["xyz"][2], v_R, v_phi, c["vxyz"][2])
    chem = physics["chemistry"]
    rc = rngs["chemistry"]
    R_guide = _chemistry.guiding_radius(L_z, vc_table)
    high_alpha = rc.uniform(0.0, 1.0, n_stars) < _chemistry.high_alpha_probability(J_z, R_guide, chem)
    feh = _chemistry.true_metallicity(rc, high_alpha, R_guide, chem)
    true_ab = _chemistry.true_abundances(rc, high_alpha, feh, J_z, chem)
    colours = _stars.intrinsic_colours(c["teff"], feh)
    apparent = {b: c["M_K"] + colours[b] + c["dist_mod"] + _stars.EXTINCTION_RATIOS[b] * c["A_K"]
                for b in _stars.BANDS}

    ra_, rs = rngs["astrometry"], rngs["stars"]
    obs = c["obs"]
    logg_err = rs.uniform(0.04, 0.08, n_stars)
    teff_err = rs.uniform(50.0, 100.0, n_stars)
    logg_rep = c["logg"] + rs.normal(0.0, 1.0, n_stars) * logg_err
    teff_rep = c["teff"] + rs.normal(0.0, 1.0, n_stars) * teff_err
    snr = _spectra.spectrum_snr(apparent["H"], physics["spectra"])
    telescope = _targeting.assign_telescope(rngs["telescope"], obs["dec"], physics["targeting"])
    measured = _chemistry.measure_abundances(rngs["chemistry"], true_ab, logg_rep, snr, chem,
                                             teff_reported=teff_rep, telescope=telescope)
    astro = _astrometry.observe_astrometry(
        ra_, 1.0 / obs["distance"], (obs["pmra"], obs["pmdec"]), obs["radial_velocity"],
        apparent["phot_g_mean_mag"], physics["astrometry"])
    phot = _astrometry.observe_photometry(rngs["photometry"], apparent)

    rl = rngs["labels"]
    lco = telescope == _targeting.TELESCOPES[1]
    lsf = rl.normal(0.0, 1.0, (5, n_stars)) * np.array([1.0, 0.5, 0.3, 0.2, 0.1])[:, None]
    lsf[0] += np.where(lco, 0.8, 0.0)

    table = {
        "APOGEE_ID": _apogee_ids(obs["ra"], obs["dec"]),
        "TELESCOPE": telescope,
        "ra": obs["ra"], "dec": obs["dec"], "GLON": obs["l"], "GLAT": obs["b"],
        "SNR": snr,
        "TEFF": teff_rep, "TEFF_ERR": teff_err, "LOGG": logg_rep, "LOGG_ERR": logg_err,
    }
    for col in ("M_H", "ALPHA_M", "FE_H") + tuple(f"{x}_FE" for x in ELEMENTS):
        table[col], table[f"{col}_ERR"] = measured[col], measured[f"{col}_ERR"]
    table.update({k: astro[k] for k in ("VHELIO_AVG", "VERR")})
    table.update({f"LSF_{i + 1}": lsf[i] for i in range(5)})
    table.update({k: v for k, v in astro.items() if k not in ("VHELIO_AVG", "VERR")})
    table.update(phot)
    _astrometry.drop_undetected(table, apparent["phot_g_mean_mag"], physics["astrometry"])
    frame_df = pd.DataFrame(table)  # a copy: free the pieces before the truth is built
    del table, measured, astro, phot, apparent

    truth = pd.DataFrame({
        "distance": obs["distance"], "parallax": 1.0 / obs["distance"],
        "x": c["xyz"][0], "y": c["xyz"][1], "z": c["xyz"][2],
        "v_x": c["vxyz"][0], "v_y": c["vxyz"][1], "v_z": c["vxyz"][2],
        "R": R, "phi": phi, "v_R": v_R, "v_phi": v_phi,
        "J_R": J_R, "L_z": L_z, "J_z": J_z, "E": c["E"], "R_guide": R_guide,
        "population": c["pop"], "high_alpha": high_alpha,
        "TEFF": c["teff"], "LOGG": c["logg"], "mass": c["mass"], "M_K": c["M_K"], "A_K": c["A_K"],
        **true_ab,
    })

    params = {
        "systematics": chem["systematics"].copy(),
        "teff_systematics": _chemistry.per_abundance(chem["teff_systematics"], "teff_systematics"),
        "teff_reference": chem["teff_reference"],
        "telescope_offsets": _chemistry.telescope_offset_table(chem["telescope_offsets"]),
        "logg_ref": LOGG_REFERENCE,
        "feh_gradient": dict(chem["feh_gradient"]),
        "parallax_zero_point": physics["astrometry"]["parallax_zero_point"],
        "frame": {"R0": R0_KPC, "z_sun": Z_SUN_KPC, "v_sun": V_SUN_KMS},
        "action_delta": DEFAULT_DELTA_KPC,
        "physics": physics,
        "n_stars": n_stars,
        "random_state": random_state if isinstance(random_state, (int, np.integer, type(None))) else None,
    }
    labels = _spectra.label_matrix(c["teff"], c["logg"], feh, true_ab["ALPHA_M"], true_ab["C_FE"],
                                   true_ab["N_FE"], lsf[0], lsf[1])
    # drawn whether or not spectra are made: the stream is used for nothing else
    spectra_seed = np.random.SeedSequence(rngs["spectra"].integers(0, 2**63 - 1))
    return Bunch(frame=frame_df, truth=truth, params=params, labels=labels, snr=snr,
                 spectra_seed=spectra_seed)
