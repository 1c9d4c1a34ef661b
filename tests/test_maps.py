"""Tests of the binned maps and diagnostics behind the paper's figures (sklearn_selfcal.maps)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sklearn_selfcal import maps
from sklearn_selfcal._kernels import binned
from sklearn_selfcal.datasets import make_survey
from sklearn_selfcal.gradients import radial_abundance_profile

PHASE_SPACE = ["x", "y", "z", "v_x", "v_y", "v_z", "R", "phi", "v_R", "v_phi", "J_R", "L_z", "J_z", "E"]


def survey_frame(n_stars, random_state):
    """A catalogue as the pipeline produces it, from make_survey's truth.

    Phase space and actions are the true ones (ActionTransformer's columns); ``<X>_NEW`` is the
    reported abundance minus the injected log g systematic, i.e. a perfect calibration.
    """
    survey = make_survey(n_stars, n_pixels=0, random_state=random_state)
    frame = pd.concat([survey.truth[PHASE_SPACE], survey.frame], axis=1)
    lg = frame["LOGG"] - survey.params["logg_ref"]
    new = {}
    for name, row in survey.params["systematics"].iterrows():
        new[f"{name}_NEW"] = frame[name] - row["lg"] * lg - row["lg2"] * lg**2
    return pd.concat([frame, pd.DataFrame(new)], axis=1), survey


@pytest.fixture(scope="module")
def survey():
    return survey_frame(6000, random_state=3)


@pytest.fixture(scope="module")
def frame(survey):
    return survey[0]


# ----------------------------------------------------------------------------- kernels


def test_grouped_statistics_equal_numpy_per_group():
    rng = np.random.default_rng(0)
    values = rng.normal(size=2000)
    values[rng.random(2000) < 0.05] = np.nan
    group = rng.integers(-2, 40, size=2000)  # negative: in no group; group 39 may be empty
    group[group == 39] = -1
    med, n = binned.grouped_median(group, values, 40)
    mean, _ = binned.grouped_mean(group, values, 40)
    std, _ = binned.grouped_std(group, values, 40)
    for g in range(40):
        v = values[(group == g) & np.isfinite(values)]
        assert n[g] == v.size
        if v.size == 0:
            assert np.isnan(med[g]) and np.isnan(mean[g])
            continue
        assert med[g] == pytest.approx(np.median(v), abs=1e-12)
        assert mean[g] == pytest.approx(np.mean(v), abs=1e-12)
        if v.size > 1:
            assert std[g] == pytest.approx(np.std(v, ddof=1), abs=1e-12)
    assert n[39] == 0


def test_bin_index_is_half_open_and_rejects_outside():
    edges = np.array([0.0, 1.0, 2.0])
    idx = binned.bin_index([-0.1, 0.0, 0.999, 1.0, 1.5, 2.0, np.nan], edges)
    np.testing.assert_array_equal(idx, [-1, 0, 0, 1, 1, -1, -1])
    flat = binned.bin_index_2d([0.5, 1.5, 1.5, 3.0], [0.5, 0.5, 1.5, 0.5], edges, edges)
    np.testing.assert_array_equal(flat, [0, 1, 3, -1])  # row-major (y, x)


# ----------------------------------------------------------------------------- face-on maps


def _brute_force_map(x, y, v, x_edges, y_edges, func, min_stars):
    out = np.full((y_edges.size - 1, x_edges.size - 1), np.nan)
    count = np.zeros(out.shape, dtype=int)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            sel = ((x >= x_edges[j]) & (x < x_edges[j + 1]) & (y >= y_edges[i]) & (y < y_edges[i + 1])
                   & np.isfinite(v))
            count[i, j] = sel.sum()
            if sel.sum() >= min_stars:
                out[i, j] = func(v[sel])
    return out, count


def test_binned_map_median_equals_brute_force_and_hides_sparse_bins():
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 2, 3000), rng.normal(0, 2, 3000)
    v = 0.1 * x + rng.normal(0, 0.05, 3000)
    v[:50] = np.nan
    m = maps.binned_map(x, y, v, bin_size=0.75)
    # edges sit on multiples of the bin size (the Galactic centre is a bin corner)
    np.testing.assert_allclose(m.x_edges / 0.75, np.round(m.x_edges / 0.75), atol=1e-9)
    assert 0.0 in np.round(m.x_edges, 9) and 0.0 in np.round(m.y_edges, 9)
    expected, count = _brute_force_map(x, y, v, m.x_edges, m.y_edges, np.median, 4)
    np.testing.assert_array_equal(m.count, count)
    np.testing.assert_allclose(m.statistic, expected, equal_nan=True)
    # the paper's rule: a bin is shown when it has more than 3 stars
    assert np.all(np.isnan(m.statistic[(count > 0) & (count <= 3)]))
    assert np.all(np.isfinite(m.statistic[count > 3]))
    assert m.n_stars == count[count > 3].sum()
    mean = maps.binned_map(x, y, v, bin_size=0.75, statistic="mean", min_stars=2)
    expected_mean, _ = _brute_force_map(x, y, v, m.x_edges, m.y_edges, np.mean, 2)
    np.testing.assert_allclose(mean.statistic, expected_mean, equal_nan=True)


def test_face_on_map_difference_and_mask(frame):
    low = maps.alpha_population_masks(frame)["low_alpha"]
    diff = maps.face_on_map(frame, "FE_H_NEW", minus="FE_H", where=low, bin_size=1.0)
    values = np.where(low, frame["FE_H_NEW"] - frame["FE_H"], np.nan)
    direct = maps.binned_map(frame["x"], frame["y"], values, bin_size=1.0, x_edges=diff.x_edges,
                             y_edges=diff.y_edges)
    np.testing.assert_allclose(diff.statistic, direct.statistic, equal_nan=True)
    # a perfect calibration differs from the input by minus the injected systematic, which is
    # largest for the most luminous (lowest log g) giants, seen mostly towards the bulge
    assert np.nanmedian(diff.statistic) != 0


def test_velocity_map_means(frame):
    vel = maps.velocity_map(frame, bin_size=1.0, min_stars=5)
    expected_x, _count = _brute_force_map(frame["x"].to_numpy(), frame["y"].to_numpy(),
                                         frame["v_x"].to_numpy(), vel.x_edges, vel.y_edges, np.mean, 5)
    expected_y, _ = _brute_force_map(frame["x"].to_numpy(), frame["y"].to_numpy(),
                                     frame["v_y"].to_numpy(), vel.x_edges, vel.y_edges, np.mean, 5)
    np.testing.assert_allclose(vel.mean_v_x, expected_x, equal_nan=True)
    np.testing.assert_allclose(vel.mean_v_y, expected_y, equal_nan=True)
    # disk rotation in this frame: v_y > 0 near the Sun (x < 0, y ~ 0)
    iy = np.searchsorted(vel.y_edges, 0.0) - 1
    ix = np.searchsorted(vel.x_edges, -8.178) - 1
    assert vel.mean_v_y[iy, ix] > 150


def test_color_limits_are_7th_and_93rd_percentiles():
    image = np.arange(100.0).reshape(10, 10)
    image[0, :5] = np.nan
    finite = image[np.isfinite(image)]
    assert maps.color_limits(image) == pytest.approx(tuple(np.percentile(finite, [7, 93])))
    lo, hi = maps.color_limits(image - 80.0, symmetric=True)
    assert hi == -lo == pytest.approx(max(abs(np.percentile(finite - 80, [7, 93]))))
    assert all(np.isnan(maps.color_limits(np.full(3, np.nan))))


def test_missing_column_is_named_and_input_not_mutated(frame):
    before = frame.copy()
    with pytest.raises(KeyError, match="NOT_A_COLUMN"):
        maps.face_on_map(frame, "NOT_A_COLUMN")
    maps.face_on_map(frame, "FE_H_NEW", minus="FE_H")
    maps.on_off_bar_samples(frame, random_state=0)
    maps.logg_trends(frame, "FE_H")
    pd.testing.assert_frame_equal(frame, before)


# ----------------------------------------------------------------------------- bar


def test_bar_outline_geometry():
    xy = maps.bar_outline()
    r = np.hypot(xy[:, 0], xy[:, 1])
    far = np.argmax(r)
    assert r.max() == pytest.approx(5.0, abs=1e-3)  # half-length of the major axis
    assert r.min() == pytest.approx(2.0, abs=1e-2)  # axis ratio 0.4
    np.testing.assert_allclose(xy[0], xy[-1])  # closed
    # the near end: towards the Sun (x < 0) and at positive longitude (y > 0), 25 deg off the Sun-GC line
    tip = xy[far] if xy[far, 0] < 0 else -xy[far]
    assert tip[1] > 0
    angle = np.degrees(np.arctan2(tip[1], -tip[0]))
    assert angle == pytest.approx(25.0, abs=0.5)


@pytest.mark.parametrize(
    "along, distance, expected",
    [
        ("major", 4.9, True),  # just inside the near tip
        ("major", 5.1, False),  # just beyond it
        ("major", -4.9, True),  # far end
        ("minor", 1.9, True),  # side: minor half-axis = 0.4 * 5 = 2 kpc
        ("minor", 2.1, False),
        ("mirror", 4.0, False),  # 25 deg on the other side (y < 0): not on the bar
    ],
)
def test_on_bar_membership_at_tip_and_side(along, distance, expected):
    a = np.deg2rad(25.0)
    direction = {
        "major": (-np.cos(a), np.sin(a)),
        "minor": (np.sin(a), np.cos(a)),
        "mirror": (-np.cos(a), -np.sin(a)),
    }[along]
    x, y = distance * direction[0], distance * direction[1]
    assert bool(maps.on_bar(x, y)) is expected


# ----------------------------------------------------------------------------- on bar vs off bar


def test_on_off_bar_matching(frame):
    result = maps.on_off_bar_samples(frame, random_state=0)
    cells = result.cells
    assert len(cells) == 6 * 4  # R in 0.5 kpc bins to 3 kpc, z in 0.25 kpc bins within 0.5 kpc
    np.testing.assert_array_equal(cells["N_MATCHED"], np.minimum(cells["N_ON"], cells["N_OFF"]))
    assert len(result.on) == len(result.off) == cells["N_MATCHED"].sum() > 20
    for sample, on_bar in ((result.on, True), (result.off, False)):
        assert np.all(np.abs(sample["z"]) < 0.5) and np.all(sample["R"] < 3.0)
        assert np.all(maps.on_bar(sample["x"], sample["y"]) == on_bar)
        # same count per cell in both samples
        counts = [((sample["R"] >= c.R_MIN) & (sample["R"] < c.R_MAX) & (sample["z"] >= c.Z_MIN)
                   & (sample["z"] < c.Z_MAX)).sum() for c in cells.itertuples()]
        np.testing.assert_array_equal(counts, cells["N_MATCHED"])
    # off-bar stars of cells with at least as many on-bar stars are all kept, untouched
    full = cells[(cells["N_OFF"] <= cells["N_ON"]) & (cells["N_OFF"] > 0)]
    for c in full.itertuples():
        sel = ((result.off_all["R"] >= c.R_MIN) & (result.off_all["R"] < c.R_MAX)
               & (result.off_all["z"] >= c.Z_MIN) & (result.off_all["z"] < c.Z_MAX))
        assert set(result.off_all.index[sel]) <= set(result.off.index)
    pd.testing.assert_frame_equal(result.off, frame.loc[result.off.index])
    # reproducible with random_state, different with another seed
    again = maps.on_off_bar_samples(frame, random_state=0)
    assert result.on.index.equals(again.on.index) and result.off.index.equals(again.off.index)
    other = maps.on_off_bar_samples(frame, random_state=1)
    assert not result.on.index.equals(other.on.index)


def test_energy_distance_matches_scipy_in_one_dimension():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=40), rng.normal(0.5, 1.5, size=60)
    assert maps.energy_distance(a, b) == pytest.approx(stats.energy_distance(a, b), rel=1e-12)
    assert maps.energy_distance(np.c_[a, a], np.c_[a, a]) == pytest.approx(0.0, abs=1e-12)


def test_compare_samples_detects_a_shift_and_not_its_absence():
    rng = np.random.default_rng(4)

    def sample(n, shift):
        return pd.DataFrame({"FE_H_NEW": rng.normal(shift, 0.2, n), "MG_FE_NEW": rng.normal(0.1, 0.05, n)})

    a, same, shifted = sample(200, 0.0), sample(200, 0.0), sample(200, 0.1)
    null = maps.compare_samples(a, same, n_permutations=199, random_state=0)
    alt = maps.compare_samples(a, shifted, n_permutations=199, random_state=0)
    # a 0.5 sigma shift of 200 vs 200 stars is a ~5 sigma effect: every permutation falls below it
    assert alt.energy_pvalue == pytest.approx(1 / 200)
    assert null.energy_pvalue > 0.05
    ks = stats.ks_2samp(a["FE_H_NEW"], shifted["FE_H_NEW"])
    assert alt.table.loc["FE_H_NEW", "ks_statistic"] == pytest.approx(ks.statistic)
    assert alt.table.loc["FE_H_NEW", "median_diff"] == pytest.approx(
        np.median(a["FE_H_NEW"]) - np.median(shifted["FE_H_NEW"]))
    # the uncertainty of the median is 1.253 sigma / sqrt(N)
    assert alt.table.loc["FE_H_NEW", "median_err_a"] == pytest.approx(
        1.2533 * a["FE_H_NEW"].std(ddof=1) / np.sqrt(200), rel=1e-3)
    again = maps.compare_samples(a, shifted, n_permutations=199, random_state=0)
    assert again.energy_pvalue == alt.energy_pvalue


# ----------------------------------------------------------------------------- [alpha/M] vs [Fe/H]


def test_alpha_iron_planes_count_every_star_once(frame):
    planes = maps.alpha_iron_by_position(frame)
    assert planes.x == "FE_H_NEW" and planes.y == "ALPHA_M_NEW"
    R, absz = frame["R"].to_numpy(), np.abs(frame["z"].to_numpy())
    feh, alpha = frame["FE_H_NEW"].to_numpy(), frame["ALPHA_M_NEW"].to_numpy()
    i, j = 1, 2  # 0.5 <= |z| < 1, 7 <= R < 9
    sel = (absz >= 0.5) & (absz < 1.0) & (R >= 7.0) & (R < 9.0)
    expected, _, _ = np.histogram2d(alpha[sel], feh[sel], bins=[planes.y_edges, planes.x_edges])
    np.testing.assert_array_equal(planes.counts[i, j], expected)
    actions = maps.alpha_iron_by_actions(frame)
    action = np.hypot(frame["J_R"], frame["J_z"]).to_numpy()
    sel = (action >= 30) & (action < 60) & (frame["L_z"] >= -2000).to_numpy() & (frame["L_z"] < -1500).to_numpy()
    expected, _, _ = np.histogram2d(alpha[sel], feh[sel], bins=[actions.y_edges, actions.x_edges])
    np.testing.assert_array_equal(actions.counts[1, 3], expected)
    np.testing.assert_array_equal(actions.n_stars, actions.counts.sum(axis=(2, 3)))


# ----------------------------------------------------------------------------- log g diagnostics


def test_equal_count_bins_even_with_ties():
    values = np.r_[np.repeat(1.0, 50), np.linspace(0, 2, 51), np.nan]
    labels, ranges = maps.equal_count_bins(values, 4)
    counts = np.bincount(labels[labels >= 0])
    assert counts.max() - counts.min() <= 1 and counts.sum() == 101
    assert labels[-1] == -1
    assert np.all(ranges[:-1, 1] <= ranges[1:, 0])


def test_logg_trends_recovers_the_injected_systematic(survey):
    frame, sim = survey
    trends = maps.logg_trends(frame, "AL_FE", features=["R"], min_stars=15)
    labels, _ = maps.equal_count_bins(frame["LOGG"], 4)
    row = trends[(trends["stage"] == "input") & (trends["logg_bin"] == 2)].dropna().iloc[3]
    sel = ((labels == 2) & (frame["R"] >= row.feature_min) & (frame["R"] < row.feature_max)
           & frame["AL_FE"].notna())
    assert row["median"] == pytest.approx(np.median(frame.loc[sel, "AL_FE"]))
    assert row["n_stars"] == sel.sum()

    # Difference between the lowest and the highest log g bin at the same R, averaged over R bins.
    def gap(stage):
        t = trends[trends["stage"] == stage].pivot(index="feature_centre", columns="logg_bin", values="median")
        return np.nanmean(t[0] - t[3])

    lg = frame["LOGG"] - sim.params["logg_ref"]
    coef = sim.params["systematics"].loc["AL_FE"]
    injected = coef["lg"] * lg + coef["lg2"] * lg**2
    expected_gap = np.median(injected[labels == 0]) - np.median(injected[labels == 3])
    # The input shows the injected gap (about 0.3 dex for [Al/Fe]); it is recovered to 10 %, the rest
    # being real differences of the orbits sampled by luminous and faint giants at the same R.
    assert expected_gap > 0.2
    assert gap("input") == pytest.approx(expected_gap, rel=0.1)
    # A perfect calibration removes it (what remains is < 20 % of the injected gap).
    assert abs(gap("calibrated")) < 0.2 * expected_gap


# ----------------------------------------------------------------------------- Figure 7 layout


def test_radial_gradient_layout(frame):
    cols = ["FE_H_NEW", "MG_FE_NEW", "O_FE_NEW", "MN_FE_NEW"]
    profile = radial_abundance_profile(frame, cols, split="ALPHA_M_NEW")
    layout = maps.radial_gradient_layout(profile, cols, step=0.2)
    low = profile[profile["population"] == "low_alpha"]
    ok = low["FE_H_NEW"].notna()
    slope = np.polyfit(low.loc[ok, "R"], low.loc[ok, "FE_H_NEW"], 1, w=1 / low.loc[ok, "FE_H_NEW_ERR"])[0]
    assert layout.loc["FE_H_NEW", "slope"] == pytest.approx(slope)
    assert layout.loc["FE_H_NEW", "slope"] < -0.03  # the injected gradient is -0.057 dex/kpc inside 14.5 kpc
    assert list(layout["slope"]) == sorted(layout["slope"], reverse=True)
    np.testing.assert_array_equal(layout["panel"], np.where(layout["slope"] >= 0, 0, 1))
    for panel in (0, 1):
        part = layout[layout["panel"] == panel]
        levels = []
        for col in part.index:
            w = 1 / low[f"{col}_ERR"] ** 2
            ok = low[col].notna()
            levels.append(np.sum(w[ok] * low.loc[ok, col]) / np.sum(w[ok]) + part.loc[col, "offset"])
        # highest slope on top, curves 0.2 dex apart
        np.testing.assert_allclose(levels, 0.2 * np.arange(len(part))[::-1], atol=1e-9)


def test_alpha_split_prefers_calibrated_alpha(frame):
    assert maps.alpha_column(frame) == "ALPHA_M_NEW"
    assert maps.alpha_column(frame.drop(columns="ALPHA_M_NEW")) == "ALPHA_M"
    masks = maps.alpha_population_masks(frame)
    np.testing.assert_array_equal(masks["low_alpha"], frame["ALPHA_M_NEW"] < 0.12)
    np.testing.assert_array_equal(masks["high_alpha"], frame["ALPHA_M_NEW"] >= 0.12)
    names = maps.calibrated_abundances(frame)
    assert "FE_H" in names and "MG_FE" in names and "ALPHA_M" not in names
