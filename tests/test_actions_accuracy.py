"""Actions are conserved along integrated orbits, and actions_rel_err says when they are not.

Injection and recovery without a reference solver: true actions are the same at every point of an
orbit, so each population of :func:`~sklearn_selfcal.datasets.make_orbits` is integrated for 2 Gyr,
its points go through :class:`~sklearn_selfcal.ActionTransformer` as observables, and the spread
of the actions over the points of one orbit is the method's error there. The numbers quoted in the
comments come from ``benchmarks/bench_actions_accuracy.py`` (40-200 orbits per population).
"""

import warnings

import numpy as np
import pytest

from sklearn_selfcal import ActionTransformer
from sklearn_selfcal.actions import ACCURACY_COLUMN, InaccurateActionsWarning
from sklearn_selfcal.datasets import ORBIT_POPULATIONS, make_orbits

N_ORBITS, N_TIMES = 10, 8
THRESHOLD = 0.05  # the default rel_err_threshold: a star is "good" at or below it


@pytest.fixture(scope="module")
def orbits():
    return {p: make_orbits(p, N_ORBITS, n_times=N_TIMES, duration=2.0, random_state=7)
            for p in ORBIT_POPULATIONS}


def _actions(sample, **params):
    at = ActionTransformer(distance="distance", radial_velocity="radial_velocity", **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InaccurateActionsWarning)
        out = at.set_output(transform="pandas").fit_transform(sample.phase_space)
    shape = (sample.n_orbits, sample.n_times)
    J_R, J_z = (out[c].to_numpy().reshape(shape) for c in ("J_R", "J_z"))
    larger = np.where((np.nanmean(J_R, axis=1) >= np.nanmean(J_z, axis=1))[:, None], J_R, J_z)
    err = out[ACCURACY_COLUMN].to_numpy().reshape(shape) if ACCURACY_COLUMN in out else None
    return larger, err


def _spread(J):
    """Standard deviation over mean of each orbit's action (the issue's measure)."""
    return np.nanstd(J, axis=1) / np.nanmean(J, axis=1)


@pytest.fixture(scope="module")
def auto(orbits):
    return {p: _actions(s) for p, s in orbits.items()}


# Tolerances on the median spread of the default method: the goals (1 % for the disks,
# 5 % for bulge and halo). Measured on 40 orbits each: 0.2-0.5 % (disks), ~1 % (bulge, halo); with
# 10 orbits the median moves by a factor ~2 at most, well inside the goals.
@pytest.mark.parametrize("population, tolerance", [
    ("bulge", 0.05), ("inner_disk", 0.01), ("solar_disk", 0.01), ("outer_disk", 0.01),
    ("halo", 0.05)])
def test_default_actions_are_conserved_along_orbits(auto, population, tolerance):
    J, _ = auto[population]
    spread = _spread(J)
    assert np.isfinite(spread).sum() >= N_ORBITS - 1  # an orbit may pass within 0.1 kpc of the axis
    assert np.nanmedian(spread) < tolerance, spread


def test_orbit_averaging_is_what_conserves_bulge_actions(orbits, auto):
    # With one focal distance the bulge spreads by a median ~23 % (most of its orbits are chaotic
    # in this potential); the default's orbit averages bring that to ~1 %. Without the averaging
    # ("staeckel", same focal distances) the spread stays above 10 %.
    point, _ = _actions(orbits["bulge"], method="staeckel", orbit_check=False)
    assert np.nanmedian(_spread(point)) > 0.10
    assert np.nanmedian(_spread(auto["bulge"][0])) < np.nanmedian(_spread(point)) / 3


def test_accuracy_estimate_calls_no_star_good_that_is_more_than_10_percent_off(auto):
    # "off": the star's action against the mean over its 2 Gyr orbit (true actions are
    # conserved, so that mean is the best estimate of them we have without a reference solver)
    n_off, steady = 0, []
    for population, (J, err) in auto.items():
        off = np.abs(J / np.nanmean(J, axis=1, keepdims=True) - 1)
        assert np.array_equal(np.isnan(err), np.isnan(J)), population
        called_good = err <= THRESHOLD
        assert not np.any(called_good & (off > 0.10)), population
        n_off += np.sum(off > 0.10)
        if population.endswith("disk"):  # disk stars whose actions stay within 1 % everywhere
            steady.append(called_good[np.nanmax(off, axis=1) < 0.01])
    assert n_off > 0  # the samples do hold stars more than 10 % off (in the bulge, the halo)
    # and the estimate is not vacuous: it calls the steady disk stars good. It reads ~3x the true
    # deviation of a cold disk orbit (the leapfrog's points lie on a slightly different torus),
    # so a star 1 % off can read up to ~5 %; measured: 99 % of them called good. (Bulge orbit
    # averages are steady too, but keep the large deviation of the fudge along their orbit.)
    steady = np.concatenate(steady)
    assert steady.size > 100 and np.mean(steady) > 0.9


def test_accuracy_estimate_tracks_the_spread_of_point_estimates(orbits):
    # Without orbit averages ("staeckel") the estimate must rise where the spread does: the halo
    # stars whose orbits spread by more than 5 % are flagged, and none more than 10 % off is not.
    J, err = _actions(orbits["halo"], method="staeckel")
    off = np.abs(J / np.nanmean(J, axis=1, keepdims=True) - 1)
    assert not np.any((err <= THRESHOLD) & (off > 0.10))
    spread = _spread(J)
    bad = spread > THRESHOLD
    assert bad.any()
    # every point of a badly conserved orbit sees a large deviation somewhere along its stretch;
    # all but occasional points of such orbits are flagged
    assert np.nanmean(err[bad] > THRESHOLD) > 0.7


def test_inaccurate_actions_warning_counts_the_flagged_stars(orbits):
    sample = orbits["bulge"]
    at = ActionTransformer(distance="distance", radial_velocity="radial_velocity")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = at.set_output(transform="pandas").fit_transform(sample.phase_space)
    messages = [str(w.message) for w in caught if issubclass(w.category, InaccurateActionsWarning)]
    assert len(messages) == 1
    n_flagged = int(np.sum(out[ACCURACY_COLUMN] > THRESHOLD))
    assert n_flagged > 0 and f"{n_flagged} of" in messages[0]


def test_results_do_not_depend_on_chunking_or_order_even_on_chaotic_orbits(orbits):
    # chaotic orbits amplify any difference in rounding (a reduction summed in another order in a
    # batch of one star) into different orbit averages: the strictest check of the invariance
    import pandas as pd

    sample = pd.concat([orbits["bulge"].phase_space.iloc[::4], orbits["halo"].phase_space.iloc[::4]],
                       ignore_index=True)
    params = {"distance": "distance", "radial_velocity": "radial_velocity"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = ActionTransformer(**params).fit_transform(sample)
        single = ActionTransformer(chunk_size=1, **params).fit_transform(sample)
        backwards = ActionTransformer(chunk_size=7, **params).fit_transform(sample.iloc[::-1])
    assert np.isfinite(whole[:, -1]).sum() > 30 and np.nanmax(whole[:, -1]) > THRESHOLD
    np.testing.assert_array_equal(single, whole)
    np.testing.assert_array_equal(backwards[::-1], whole)


def test_a_sticky_chaotic_orbit_quiet_for_a_few_periods_is_flagged():
    # A halo star (from make_orbits("halo", 100, random_state=2024)) on a low-L_z orbit that
    # dives to R ~ 1.3 kpc. At this point its actions stay within 2 % over the 3-period check,
    # while elsewhere on its 2 Gyr orbit they wander by 40 %: without a longer look it is called
    # good and keeps its point value, 13 % above the orbit averages its other points get. The long
    # check of orbits that reach the inner Galaxy flags it (and averages it like the others).
    import pandas as pd

    from sklearn_selfcal.coordinates import galactocentric_to_icrs
    from sklearn_selfcal.datasets._orbits import _integrate
    from sklearn_selfcal.potential import default_potential

    xyz = np.array([[-0.6918008188989333], [3.9604531642112852], [-0.06385710471249903]])
    vxyz = np.array([[46.95090452126554], [-155.70987905424988], [-45.62938287822054]])
    xyz_t, vxyz_t = _integrate(default_potential(), xyz, vxyz, np.linspace(0.0, 2.0, 16))
    obs = galactocentric_to_icrs(xyz_t.reshape(3, -1), vxyz_t.reshape(3, -1))
    table = pd.DataFrame({"ra": obs["ra"], "dec": obs["dec"], "distance": obs["distance"],
                          "pmra": obs["pmra"], "pmdec": obs["pmdec"],
                          "radial_velocity": obs["radial_velocity"]})
    at = ActionTransformer(distance="distance", radial_velocity="radial_velocity")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InaccurateActionsWarning)
        out = at.set_output(transform="pandas").fit_transform(table)
    J_R, err = out["J_R"].to_numpy(), out[ACCURACY_COLUMN].to_numpy()
    off = np.abs(J_R / np.mean(J_R) - 1)
    assert err[0] > THRESHOLD
    assert not np.any((off > 0.10) & (err <= THRESHOLD))
