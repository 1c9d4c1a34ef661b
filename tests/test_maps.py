"""Tests of the binned maps and diagnostics behind the paper's figures (sklearn_selfcal.maps)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sklearn_selfcal import maps
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


def test_logg_trends_recovers_the_injected_systematic(survey):
    frame, sim = survey
    trends = maps.logg_trends(frame, "AL_FE", features=["R"], min_stars=15)
    labels, _ = maps.equal_count_bins(frame["LOGG"], 4)
    row = trends[(trends["stage"] == "input") & (trends["nuisance_group"] == 2)].dropna(subset="median").iloc[3]
    sel = ((labels == 2) & (frame["R"] >= row.feature_min) & (frame["R"] < row.feature_max)
           & frame["AL_FE"].notna())
    assert row["median"] == pytest.approx(np.median(frame.loc[sel, "AL_FE"]))
    assert row["n_stars"] == sel.sum()

    # Difference between the lowest and the highest log g bin at the same R, averaged over R bins.
    def gap(stage):
        t = trends[trends["stage"] == stage].pivot(index="feature_centre", columns="nuisance_group", values="median")
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


def test_trends_against_a_categorical_nuisance_recover_a_telescope_offset(frame):
    # Telescopes assigned at random (the simulation's own TELESCOPE follows the sky, hence the
    # orbits) and a 0.08 dex offset injected into the reported [Mg/Fe] of the "lco25m" stars only;
    # the calibrated column stays free of it, as a calibration with a telescope nuisance would be.
    rng = np.random.default_rng(7)
    telescope = np.where(rng.random(len(frame)) < 0.4, "lco25m", "apo25m")
    offset = 0.08
    stars = frame.assign(TELESCOPE=telescope, MG_FE=frame["MG_FE"] + offset * (telescope == "lco25m"))
    trends = maps.logg_trends(stars, "MG_FE", features=["R"], nuisance="TELESCOPE", min_stars=15)
    assert set(trends["nuisance_category"]) == {"apo25m", "lco25m"}
    assert trends["nuisance_min"].isna().all() and (trends["nuisance"] == "TELESCOPE").all()
    row = trends[(trends.stage == "input") & (trends.nuisance_category == "lco25m")].dropna(subset="median").iloc[4]
    sel = ((telescope == "lco25m") & (stars["R"] >= row.feature_min) & (stars["R"] < row.feature_max)
           & stars["MG_FE"].notna())
    assert row["median"] == pytest.approx(np.median(stars.loc[sel, "MG_FE"]))
    assert row["n_stars"] == sel.sum()

    def gap(stage):
        t = trends[trends.stage == stage].pivot(index="feature_centre", columns="nuisance_category",
                                                values="median")
        return np.nanmean(t["lco25m"] - t["apo25m"])

    # The mean over ~19 R bins of differences of medians of ~50-150 stars each scatters by ~0.003
    # dex between random telescope assignments (seeds 7-11: 0.075-0.083 and -0.004-0.0015 dex);
    # 0.015 dex is 5 times that.
    assert gap("input") == pytest.approx(offset, abs=0.015)
    assert abs(gap("calibrated")) < 0.015


def test_nuisance_groups_detect_categories_and_refuse_what_is_not_a_nuisance(frame):
    logg = maps.nuisance_groups(frame, "LOGG")
    assert not logg.categorical and logg.n_groups == 4 and logg.categories is None
    labels, _ = maps.equal_count_bins(frame["LOGG"], 4)
    np.testing.assert_array_equal(logg.labels, labels)
    tel = maps.nuisance_groups(frame, "TELESCOPE")
    assert tel.categorical and tel.categories == ["apo25m", "lco25m"]
    np.testing.assert_array_equal(tel.labels, np.where(frame["TELESCOPE"] == "lco25m", 1, 0))
    # an integer-coded nuisance can be declared categorical
    coded = maps.nuisance_groups(frame.assign(FIBER=frame.index % 3), "FIBER", categorical=True)
    assert coded.categories == [0, 1, 2]
    with pytest.raises(ValueError, match="'APOGEE_ID' has 6000 categories"):
        maps.nuisance_groups(frame, "APOGEE_ID")
    with pytest.raises(ValueError, match="column 'TELESCOPE' must be a number"):
        maps.nuisance_groups(frame, "TELESCOPE", categorical=False)
    with pytest.raises(maps.TooFewStarsError, match="at least 4 stars"):
        maps.nuisance_groups(frame.iloc[:3], "LOGG")


# ----------------------------------------------------------------------------- bad input


def _with_text(frame, column, row=7):
    """A copy of ``frame`` with the text "bad" in row ``row`` of a numeric column."""
    bad = frame.copy()
    bad[column] = bad[column].astype(object)
    bad.loc[bad.index[row], column] = "bad"
    return bad


_EDGES = {"row_edges": [0, 1, 2], "col_edges": [0, 10, 20], "x_edges": [-1, 0, 1], "y_edges": [-1, 0, 1]}
#: Every public maps function that reads numbers: (table given text, its column, name in the error,
#: call on the table).
TEXT_CASES = {
    "face_on_map": ("frame", "FE_H", "FE_H", lambda f: maps.face_on_map(f, "FE_H_NEW", minus="FE_H")),
    "binned_map": ("frame", "y", "y", lambda f: maps.binned_map(f["x"], f["y"], f["FE_H"])),
    "velocity_map": ("frame", "v_y", "v_y", lambda f: maps.velocity_map(f)),
    "map_extent": ("frame", "x", "x", lambda f: maps.map_extent(f["x"], f["y"])),
    "color_limits": ("frame", "FE_H", "image", lambda f: maps.color_limits(f["FE_H"])),
    "on_bar": ("frame", "y", "y", lambda f: maps.on_bar(f["x"], f["y"])),
    "on_off_bar_samples": ("frame", "R", "R", lambda f: maps.on_off_bar_samples(f, random_state=0)),
    "compare_samples": ("frame", "MG_FE_NEW", "MG_FE_NEW",
                        lambda f: maps.compare_samples(f.iloc[:50], f.iloc[50:99])),
    "energy_distance": ("frame", "FE_H", "a",
                        lambda f: maps.energy_distance(f["FE_H"].iloc[:50], f["FE_H"].iloc[50:99])),
    "alpha_population_masks": ("frame", "ALPHA_M_NEW", "ALPHA_M_NEW", lambda f: maps.alpha_population_masks(f)),
    "alpha_iron_by_position": ("frame", "z", "z", lambda f: maps.alpha_iron_by_position(f)),
    "alpha_iron_by_actions": ("frame", "J_z", "J_z", lambda f: maps.alpha_iron_by_actions(f)),
    "binned_abundance_planes": ("frame", "MG_FE", "MG_FE", lambda f: maps.binned_abundance_planes(
        f["FE_H"], f["MG_FE"], f["z"], f["R"], **_EDGES)),
    "logg_trends": ("frame", "L_z", "L_z", lambda f: maps.logg_trends(f, "FE_H")),
    "nuisance_groups": ("frame", "LOGG", "LOGG", lambda f: maps.nuisance_groups(f, "LOGG")),
    "profile_points": ("profile", "FE_H_NEW", "FE_H_NEW", lambda p: maps.profile_points(p, "FE_H_NEW")),
    "radial_gradient_layout": ("profile", "FE_H_NEW_ERR", "FE_H_NEW_ERR",
                               lambda p: maps.radial_gradient_layout(p, ["FE_H_NEW"])),
}
#: Public functions of names and geometry only (no data column to read).
NO_DATA = {"alpha_column", "bar_axes", "bar_outline", "calibrated_abundances", "calibrated_or_reported",
           "equal_count_bins", "grid_edges"}


def test_every_public_maps_function_reading_numbers_is_checked_for_text():
    public = {name for name in maps.__all__
              if callable(getattr(maps, name)) and not isinstance(getattr(maps, name), type)}
    assert public - NO_DATA == set(TEXT_CASES)


@pytest.mark.parametrize("function", sorted(TEXT_CASES))
def test_text_in_a_numeric_column_is_an_error_naming_column_and_row(frame, function):
    table, column, shown, call = TEXT_CASES[function]
    if table == "profile":
        frame = radial_abundance_profile(frame, ["FE_H_NEW"], split="ALPHA_M_NEW")
    row = 14  # a low-alpha bin of the profile (rows 11-21), a star of the frame
    with pytest.raises(ValueError, match=rf"column '{shown}' must be a number; 1 value\(s\) are not: "
                                         rf"row {row}: 'bad'"):
        call(_with_text(frame, column, row))


# ----------------------------------------------------------------------------- bounded memory


def _far(frame, distance):
    """``frame`` with its first star moved to ``(distance, -distance / 2)`` kpc (a bad parallax)."""
    far = frame.copy()
    far.loc[far.index[0], ["x", "y"]] = [distance, -distance / 2]
    return far


MAP_CALLS = {
    "face_on_map": lambda f: maps.face_on_map(f, "FE_H_NEW"),
    "binned_map": lambda f: maps.binned_map(f["x"], f["y"], f["FE_H_NEW"]),
    "velocity_map": lambda f: maps.velocity_map(f),
}


@pytest.mark.parametrize("distance", [3_000.0, 1e6])
@pytest.mark.parametrize("function", sorted(MAP_CALLS))
def test_a_far_star_is_left_out_with_a_warning_not_allocated(frame, function, distance):
    call = MAP_CALLS[function]
    with pytest.warns(UserWarning, match=r"1 star\(s\) with \|x\| or \|y\| > 30 kpc left out"):
        result = call(_far(frame, distance))
    # the grid is that of the other stars (the simulated disk reaches ~24 kpc), nothing else changes
    expected = call(frame.iloc[1:])
    np.testing.assert_array_equal(result.x_edges, expected.x_edges)
    np.testing.assert_array_equal(result.y_edges, expected.y_edges)
    np.testing.assert_array_equal(result.count, expected.count)
    assert result.x_edges[-1] - result.x_edges[0] <= 2 * maps.MAP_LIMIT_KPC + 1


def test_maps_within_the_limit_do_not_warn_and_explicit_extents_are_bounded(frame):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        maps.face_on_map(frame, "FE_H_NEW")
        far = maps.face_on_map(_far(frame, 40.0), "FE_H_NEW", extent=(-45, 45, -45, 45), min_stars=1)
    assert far.count.sum() == frame["FE_H_NEW"].notna().sum()  # the star at 40 kpc is mapped
    # an extent too large for the grid is a clear error, not an allocation
    with pytest.raises(ValueError, match="MAX_MAP_BINS"):
        maps.face_on_map(frame, "FE_H_NEW", extent=(-1e6, 1e6, -1e6, 1e6))  # 2.7e6 bins per axis
    with pytest.raises(ValueError, match="MAX_MAP_BINS"):
        maps.face_on_map(frame, "FE_H_NEW", extent=(-1e3, 1e3, -1e3, 1e3))  # 2667 x 2667 bins
    with pytest.raises(ValueError, match="MAX_MAP_BINS"):
        maps.velocity_map(frame, bin_size=1e-3)


def test_map_extent_counts_the_stars_beyond_the_limit():
    x = np.array([-8.0, 2.0, 31.0, np.nan, 0.0, 1e6])
    y = np.array([0.0, 1.0, 0.0, 0.0, -35.0, 0.0])
    with pytest.warns(UserWarning, match=r"3 star\(s\)"):
        assert maps.map_extent(x, y) == (-8.0, 2.0, 0.0, 1.0)
    with pytest.warns(UserWarning, match=r"2 star\(s\) with \|x\| or \|y\| > 32 kpc"):
        assert maps.map_extent(x, y, limit=32) == (-8.0, 31.0, 0.0, 1.0)
    with pytest.warns(UserWarning):
        assert maps.map_extent([1e6], [0.0]) is None


# ----------------------------------------------------------------------------- profile points


def test_profile_points_are_the_fittable_rows_at_the_fit_radius(frame):
    profile = radial_abundance_profile(frame, ["FE_H_NEW"], split="ALPHA_M_NEW")
    profile.loc[profile.index[13], "FE_H_NEW_ERR"] = 0.0  # a low-alpha bin without an uncertainty
    low = profile[(profile.population == "low_alpha") & profile.FE_H_NEW.notna() & (profile.FE_H_NEW_ERR > 0)]
    assert 5 < len(low) < (profile.population == "low_alpha").sum()
    points = maps.profile_points(profile, "FE_H_NEW")
    np.testing.assert_array_equal(points.R, low["R_MEDIAN"])
    np.testing.assert_array_equal(points.y, low["FE_H_NEW"])
    np.testing.assert_array_equal(points.err, low["FE_H_NEW_ERR"])
    assert list(points.index) == list(low.index)
    # the median radius of a bin's stars is not its centre
    assert np.max(np.abs(points.R - low["R"].to_numpy())) > 0.1
    np.testing.assert_array_equal(maps.profile_points(profile, "FE_H_NEW", radius="R").R, low["R"])
    with pytest.raises(ValueError, match="no rows of population 'thick'"):
        maps.profile_points(profile, "FE_H_NEW", population="thick")


def test_compare_samples_bounds_the_energy_distance_sample():
    rng = np.random.default_rng(5)
    a = pd.DataFrame({"FE_H_NEW": rng.normal(0.0, 0.2, 3000), "MG_FE_NEW": rng.normal(0.1, 0.05, 3000)})
    b = pd.DataFrame({"FE_H_NEW": rng.normal(0.1, 0.2, 2500), "MG_FE_NEW": rng.normal(0.1, 0.05, 2500)})
    summary = maps.compare_samples(a, b, n_permutations=99, energy_max_stars=400, random_state=0)
    assert (summary.n_a, summary.n_b, summary.n_energy_a, summary.n_energy_b) == (3000, 2500, 400, 400)
    # medians use every star
    assert summary.table.loc["FE_H_NEW", "median_a"] == pytest.approx(np.median(a["FE_H_NEW"]))
    # a 0.5 sigma shift in 400 vs 400 stars is still a ~7 sigma effect: no permutation reaches it
    assert summary.energy_pvalue == pytest.approx(1 / 100)
    again = maps.compare_samples(a, b, n_permutations=99, energy_max_stars=400, random_state=0)
    assert again.energy_distance == summary.energy_distance
    small = maps.compare_samples(a.iloc[:300], b.iloc[:200], n_permutations=0, energy_max_stars=None)
    assert (small.n_energy_a, small.n_energy_b) == (300, 200) and np.isnan(small.energy_pvalue)
    with pytest.raises(maps.TooFewStarsError, match="at least 2 stars"):
        maps.compare_samples(a.iloc[:1], b)
