"""Tests of the paper's figures (sklearn_selfcal.plotting): the data in the artists, not pixels."""

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.collections import PathCollection, QuadMesh
from matplotlib.figure import Figure
from matplotlib.quiver import Quiver
from test_maps import survey_frame  # the shared simulated catalogue (tests/test_maps.py)

from sklearn_selfcal import maps, plotting
from sklearn_selfcal._kernels.broken_line import broken_line
from sklearn_selfcal.gradients import radial_abundance_profile


@pytest.fixture(scope="module")
def frame():
    return survey_frame(4000, random_state=5)[0]


def artists(fig, gid):
    """Every artist of ``fig`` with this gid."""
    return [a for ax in fig.axes for a in ax.get_children() if a.get_gid() == gid]


def one(fig, gid):
    found = artists(fig, gid)
    assert len(found) == 1, f"expected one artist with gid {gid!r}, found {len(found)}"
    return found[0]


def mesh_values(mesh):
    return np.ma.filled(np.ma.asarray(mesh.get_array(), dtype=float), np.nan)


def panel(fig, title_part):
    matches = [ax for ax in fig.axes if title_part in ax.get_title()]
    assert len(matches) == 1, [ax.get_title() for ax in fig.axes]
    return matches[0]


def plot_axes(fig):
    """The figure's panels, without the colour-bar axes."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def mesh_of(ax, gid="map"):
    return next(c for c in ax.collections if isinstance(c, QuadMesh) and c.get_gid() == gid)


# ----------------------------------------------------------------------------- Figures 6, 14-17


def test_abundance_maps_show_binned_medians_with_paper_colour_limits(frame):
    fig = plotting.plot_abundance_maps(frame, ["FE_H", "MG_FE"])
    assert isinstance(fig, Figure)
    masks = maps.alpha_population_masks(frame)
    for name, label in (("FE_H", "[Fe/H]"), ("MG_FE", "[Mg/Fe]")):
        for population, pop_label in (("low_alpha", "low"), ("high_alpha", "high")):
            ax = panel(fig, f"{label} (calibrated), {pop_label}")
            mesh = mesh_of(ax)
            expected = maps.face_on_map(frame, f"{name}_NEW", where=masks[population], bin_size=0.75,
                                        extent=(frame.x.min(), frame.x.max(), frame.y.min(), frame.y.max()))
            values = mesh_values(mesh)
            np.testing.assert_allclose(values, expected.statistic, equal_nan=True)
            # NaN exactly where a bin holds 3 stars or fewer
            np.testing.assert_array_equal(np.isnan(values), expected.count <= 3)
            finite = values[np.isfinite(values)]
            assert mesh.get_clim() == pytest.approx(tuple(np.percentile(finite, [7, 93])))
            assert one_in(ax, "n_stars").get_text() == f"N = {expected.n_stars:,}"
            colorbar = mesh.colorbar
            assert colorbar.ax.get_ylabel() == f"{label} [dex]"
            sun = one_in(ax, "sun")
            np.testing.assert_allclose(np.ravel(sun.get_xydata()), [-8.178, 0.0])


def test_abundance_map_grid_labels_outer_panels(frame):
    fig = plotting.plot_abundance_maps(frame, ["FE_H", "MG_FE", "O_FE"], populations=("low_alpha",), n_cols=2)
    grid = plot_axes(fig)
    visible = [ax for ax in grid if ax.get_visible()]
    assert len(visible) == 3 and len(grid) == 4  # 3 maps on a 2 x 2 grid
    # x labels under the last map of every column, y labels on the first column
    assert [ax.get_xlabel() for ax in visible] == ["", "$x$ [kpc]", "$x$ [kpc]"]
    assert [ax.get_ylabel() for ax in visible] == ["$y$ [kpc]", "", "$y$ [kpc]"]


def one_in(ax, gid):
    found = [a for a in ax.get_children() if a.get_gid() == gid]
    assert len(found) == 1
    return found[0]


def test_difference_maps_are_calibrated_minus_input(frame):
    fig = plotting.plot_abundance_maps(frame, ["FE_H"], populations=("high_alpha",), difference=True)
    ax = fig.axes[0]
    mesh = mesh_of(ax)
    expected = maps.face_on_map(frame, "FE_H_NEW", minus="FE_H",
                                where=maps.alpha_population_masks(frame)["high_alpha"],
                                extent=(frame.x.min(), frame.x.max(), frame.y.min(), frame.y.max()))
    np.testing.assert_allclose(mesh_values(mesh), expected.statistic, equal_nan=True)
    lo, hi = mesh.get_clim()
    assert lo == -hi == pytest.approx(-max(abs(np.nanpercentile(expected.statistic, [7, 93]))))
    assert "calibrated $-$ input" in ax.get_title()


# ----------------------------------------------------------------------------- Figure 5


def test_metallicity_map_arrows_are_mean_velocities_and_bar_is_drawn(frame):
    fig = plotting.plot_metallicity_map(frame, min_stars=4)
    ax = fig.axes[0]
    slab = np.abs(frame["z"]) < 1.0
    mesh = mesh_of(ax)
    extent = (frame.x[slab].min(), frame.x[slab].max(), frame.y[slab].min(), frame.y[slab].max())
    expected = maps.face_on_map(frame, "FE_H_NEW", where=slab, bin_size=0.5, statistic="mean", extent=extent)
    np.testing.assert_allclose(mesh_values(mesh), expected.statistic, equal_nan=True)
    quiver = next(c for c in ax.collections if isinstance(c, Quiver))
    assert quiver.get_gid() == "velocity"
    # arrows from the same stars as the colours (finite [Fe/H]): one arrow on every coloured bin
    vel = maps.velocity_map(frame, where=slab & frame["FE_H_NEW"].notna(), bin_size=0.5, extent=extent)
    shown = np.isfinite(vel.mean_v_x)
    np.testing.assert_array_equal(shown, np.isfinite(expected.statistic))
    X, Y = np.meshgrid(vel.x_centres, vel.y_centres)
    np.testing.assert_allclose(quiver.U, vel.mean_v_x[shown])
    np.testing.assert_allclose(quiver.V, vel.mean_v_y[shown])
    np.testing.assert_allclose(quiver.X, X[shown])
    np.testing.assert_allclose(quiver.Y, Y[shown])
    # rotation: arrows near the Sun point to +y at about the circular speed
    near_sun = np.hypot(quiver.X + 8.178, quiver.Y) < 1.5
    assert np.median(quiver.V[near_sun]) > 150
    bar = one_in(ax, "bar_outline").get_xydata()
    r = np.hypot(bar[:, 0], bar[:, 1])
    tip = bar[np.argmax(r)] * np.sign(-bar[np.argmax(r), 0])
    assert r.max() == pytest.approx(5.0, abs=1e-3)
    assert np.degrees(np.arctan2(tip[1], -tip[0])) == pytest.approx(25.0, abs=0.5)
    for radius in (5, 10, 15):
        ring = one_in(ax, f"ring_{radius}").get_xydata()
        np.testing.assert_allclose(np.hypot(ring[:, 0], ring[:, 1]), radius)
    np.testing.assert_allclose(np.ravel(one_in(ax, "galactic_centre").get_xydata()), [0.0, 0.0])
    assert "[dex]" in mesh.colorbar.ax.get_ylabel()


# ----------------------------------------------------------------------------- Figure 1


def test_sample_overview(frame):
    fig = plotting.plot_sample_overview(frame)
    left, right = plot_axes(fig)
    points = one_in(left, "kiel")
    assert isinstance(points, PathCollection)
    assert points.get_offsets().shape[0] == len(frame)
    assert left.get_xlim()[0] > left.get_xlim()[1]  # Teff decreasing to the right
    assert left.get_ylim()[0] > left.get_ylim()[1]  # log g increasing downwards
    assert left.get_xlabel() == r"$T_{\rm eff}$ [K]"
    counts = maps.face_on_map(frame, statistic="count", min_stars=1)
    np.testing.assert_allclose(mesh_values(mesh_of(right)), counts.statistic, equal_nan=True)
    assert np.nansum(mesh_values(mesh_of(right))) == len(frame)


# ----------------------------------------------------------------------------- Figures 2-4


def test_logg_trends_lines_are_the_binned_medians(frame):
    trends = maps.logg_trends(frame, "MG_FE")
    fig = plotting.plot_logg_trends(frame, "MG_FE", trends=trends)
    main_axes = plot_axes(fig)
    assert len(main_axes) == 10  # 2 rows x (J_R, J_z, L_z, R, z)
    assert [ax.get_xlabel() for ax in main_axes[:5]] == list(maps.TREND_FEATURES.values())
    ax = main_axes[7]  # calibrated row, L_z
    for i in range(4):
        line = one_in(ax, f"nuisance_group_{i}")
        part = trends[(trends.stage == "calibrated") & (trends.feature == "L_z") & (trends.nuisance_group == i)]
        np.testing.assert_allclose(line.get_ydata(), part["median"], equal_nan=True)
        np.testing.assert_allclose(line.get_xdata(), part["feature_centre"])
    assert "self-calibrated" in main_axes[5].get_ylabel() and "[dex]" in main_axes[5].get_ylabel()
    legend = main_axes[0].get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    lowest = trends[trends.nuisance_group == 0].iloc[0]
    assert labels[0] == rf"{lowest.nuisance_min:.4g} $\leq$ $\log g$ $\leq$ {lowest.nuisance_max:.4g}"
    assert len(labels) == 4 and r"equal-count bins of $\log g$" in fig.get_suptitle()


def test_trends_figure_against_a_categorical_nuisance_draws_one_line_per_category(frame):
    fig = plotting.plot_logg_trends(frame, "FE_H", nuisance="TELESCOPE", features=["R", "z"])
    trends = maps.logg_trends(frame, "FE_H", nuisance="TELESCOPE", features=["R", "z"])
    main_axes = plot_axes(fig)
    assert len(main_axes) == 4  # 2 rows x (R, z)
    for i, telescope in enumerate(["apo25m", "lco25m"]):
        line = one_in(main_axes[0], f"nuisance_group_{i}")
        assert line.get_label() == f"TELESCOPE = {telescope}"
        part = trends[(trends.stage == "input") & (trends.feature == "R") & (trends.nuisance_category == telescope)]
        np.testing.assert_allclose(line.get_ydata(), part["median"], equal_nan=True)
    assert not artists(fig, "nuisance_group_2")
    assert fig.get_suptitle().endswith("per TELESCOPE")


# ----------------------------------------------------------------------------- Figures 7-8


@pytest.fixture(scope="module")
def profile(frame):
    cols = ["FE_H_NEW", "MG_FE_NEW", "O_FE_NEW", "MN_FE_NEW"]
    return radial_abundance_profile(frame, cols, split="ALPHA_M_NEW")


def test_radial_gradients_draw_offset_profiles(profile):
    fig = plotting.plot_radial_gradients(profile, step=0.2)
    layout = maps.radial_gradient_layout(profile, profile.attrs["columns"], step=0.2)
    low = profile[profile.population == "low_alpha"]
    for col, row in layout.iterrows():
        line = next(a for a in fig.axes[int(row.panel)].get_lines() if a.get_gid() == f"profile_{col}")
        ok = low[col].notna()
        np.testing.assert_allclose(line.get_ydata(), low.loc[ok, col] + row.offset)
    assert fig.axes[1].get_xlabel() == r"$R_{\rm GC}$ [kpc]"


def test_broken_power_law_figure_with_a_stand_in_regressor(profile):
    rng = np.random.default_rng(0)
    theta = np.array([-0.057, -0.019, 0.41, 14.5])
    samples = theta + rng.normal(size=(500, 4)) * [0.001, 0.003, 0.01, 0.3]
    fit = SimpleNamespace(samples_=samples, m1_=-0.057, m2_=-0.019, b_=0.41, k_=14.5)
    fig = plotting.plot_broken_power_law(profile, fit, n_draws=100, random_state=0)
    ax = fig.axes[0]
    draws = [a for a in ax.get_lines() if a.get_gid() == "draw"]
    assert len(draws) == 100
    picked = {tuple(np.round(d.get_ydata()[[0, -1]], 12)) for d in draws}
    assert len(picked) == 100  # 100 different posterior samples
    line = one_in(ax, "fit")
    np.testing.assert_allclose(line.get_ydata(), broken_line(line.get_xdata(), *theta))
    knee = one_in(ax, "knee")
    assert np.all(np.asarray(knee.get_xdata()) == 14.5)
    low = profile[(profile.population == "low_alpha") & profile.FE_H_NEW.notna()]
    points = next(a for a in ax.get_lines() if a.get_gid() == "profile")
    np.testing.assert_allclose(points.get_ydata(), low.FE_H_NEW)
    # drawn where the workflow fits them: at the median radius of each bin's stars, not its centre
    np.testing.assert_allclose(points.get_xdata(), low.R_MEDIAN)
    assert np.max(np.abs(low.R_MEDIAN - low.R)) > 0.1
    centres = plotting.plot_broken_power_law(profile, fit, radius="R", n_draws=1)
    points = next(a for a in centres.axes[0].get_lines() if a.get_gid() == "profile")
    np.testing.assert_allclose(points.get_xdata(), low.R)
    assert "k = 14.5" in " ".join(t.get_text() for t in ax.get_legend().get_texts())
    assert ax.get_ylabel() == "[Fe/H] [dex]"
    with pytest.raises(TypeError, match="samples_"):
        plotting.plot_broken_power_law(profile, SimpleNamespace(m1_=0, m2_=0, b_=0, k_=1))


# ----------------------------------------------------------------------------- Figures 9-10, 13


@pytest.mark.parametrize("by, compute", [("position", maps.alpha_iron_by_position),
                                         ("actions", maps.alpha_iron_by_actions)])
def test_alpha_iron_planes(frame, by, compute):
    planes = compute(frame)
    fig = plotting.plot_alpha_iron_planes(frame, by=by)
    n_rows, n_cols = planes.counts.shape[:2]
    for i in range(n_rows):
        for j in range(n_cols):
            values = mesh_values(one(fig, f"plane_{i}_{j}"))
            counts = planes.counts[i, j].astype(float)
            np.testing.assert_allclose(values, np.where(counts >= 1, counts, np.nan), equal_nan=True)
    labels = " ".join(ax.get_title() + ax.get_ylabel() for ax in fig.axes)
    assert "kpc" in labels and "[dex]" in labels


def test_on_off_bar_figure(frame):
    samples = maps.on_off_bar_samples(frame, random_state=3)
    summary = maps.compare_samples(samples.on, samples.off, ["FE_H_NEW", "MG_FE_NEW"], n_permutations=99,
                                   random_state=0)
    fig = plotting.plot_on_off_bar(frame, samples=samples, summary=summary)
    spatial = fig.axes[0]
    np.testing.assert_allclose(one_in(spatial, "on_bar").get_offsets(), samples.on[["x", "y"]])
    np.testing.assert_allclose(one_in(spatial, "off_bar").get_offsets(), samples.off[["x", "y"]])
    for radius in (2, 3, 5):
        ring = one_in(spatial, f"ring_{radius}").get_xydata()
        np.testing.assert_allclose(np.hypot(ring[:, 0], ring[:, 1]), radius)
    one_in(spatial, "bar_outline")
    chem = fig.axes[2]
    np.testing.assert_allclose(one_in(chem, "on_bar_abundances").get_offsets(),
                               samples.on[["FE_H_NEW", "MG_FE_NEW"]])
    assert f"p = {summary.energy_pvalue:.2f}" in one_in(chem, "comparison").get_text()
    assert chem.get_xlabel() == "[Fe/H] [dex]" and chem.get_ylabel() == "[Mg/Fe] [dex]"


# ----------------------------------------------------------------------------- threads


def test_figures_are_thread_safe(frame):
    """Figures built and saved concurrently in threads equal those built one at a time.

    No pyplot, no shared figure state; the Sun marker is a plain marker rather than a mathtext glyph
    (matplotlib's shared text-to-path parser failed under threads with the glyph).
    """
    import io
    from concurrent.futures import ThreadPoolExecutor

    def build(_):
        fig = plotting.plot_abundance_maps(frame, ["FE_H"], populations=("low_alpha",))
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=40)
        return mesh_values(mesh_of(fig.axes[0])), buffer.getvalue()

    serial_values, serial_png = build(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(build, range(6)))
    for values, png in results:
        np.testing.assert_array_equal(values, serial_values)
        assert png == serial_png
