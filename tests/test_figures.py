"""Tests of the figure registry and file writing (sklearn_selfcal.figures): what is drawn, written or
skipped, and why; the drawing itself is tested in tests/test_plotting.py."""

import io
import os
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from test_maps import survey_frame  # the shared simulated catalogue (tests/test_maps.py)

from sklearn_selfcal import _figure_jobs, figures, maps, plotting, workflow
from sklearn_selfcal._kernels.broken_line import broken_line
from sklearn_selfcal.exceptions import OutsideMapWarning
from sklearn_selfcal.figures import FigureSkippedWarning, render_figures
from sklearn_selfcal.gradients import BrokenPowerLawRegressor, radial_abundance_profile

PNG = b"\x89PNG\r\n\x1a\n"
#: A stand-in for a fitted BrokenPowerLawRegressor (the attributes plotting draws).
FIT = SimpleNamespace(samples_=np.tile([-0.05, -0.02, 0.4, 14.0], (50, 1)), m1_=-0.05, m2_=-0.02, b_=0.4,
                      k_=14.0)


@pytest.fixture(scope="module")
def frame():
    """A disk sample with a few calibrated abundances (fewer panels: faster figures)."""
    frame = survey_frame(2000, random_state=5)[0]
    keep = {"FE_H_NEW", "MG_FE_NEW", "O_FE_NEW", "NI_FE_NEW", "AL_FE_NEW", "ALPHA_M_NEW"}
    return frame.drop(columns=[c for c in frame.columns if c.endswith("_NEW") and c not in keep])


@pytest.fixture(scope="module")
def profile(frame):
    return radial_abundance_profile(frame, [c for c in frame.columns if c.endswith("_NEW")], split="ALPHA_M_NEW")


def capture(monkeypatch, name):
    """Record the figures returned by ``plotting.<name>`` when the registry calls it."""
    made = []
    original = getattr(plotting, name)

    def spy(*args, **kwargs):
        made.append(original(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(plotting, name, spy)
    return made


def test_registry_names_follow_the_paper():
    names = [spec.name for spec in figures.FIGURES]
    assert len(set(names)) == len(names)
    assert {int(n[3:5]) for n in names} == {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16, 17}
    assert names[1:4] == ["fig02_logg_trends_fe_h", "fig03_logg_trends_mg_fe", "fig04_logg_trends_al_fe"]


def test_render_figures_writes_pngs_and_records_what_it_skips(frame, profile, tmp_path):
    chosen = ["fig01_sample", "fig05_feh_velocity_map", "fig07_radial_gradients", "fig08_feh_broken_power_law",
              "fig13_on_off_bar"]
    paths = render_figures(frame, tmp_path, profile=profile, regressor=FIT, figures=chosen, dpi=30)
    assert list(paths) == chosen and paths.skipped == {}
    for name, path in paths.items():
        assert path == os.path.join(tmp_path, f"{name}.png")
        with open(path, "rb") as fh:
            assert fh.read(8) == PNG
    assert sorted(os.listdir(tmp_path)) == sorted(f"{n}.png" for n in chosen)  # no temporary files left

    # without the profile and the fit, Figures 7 and 8 are skipped with their reasons, never computed
    with pytest.warns(FigureSkippedWarning) as caught:
        paths = render_figures(frame, tmp_path / "no_fit",
                               figures=["fig07_radial_gradients", "fig08_feh_broken_power_law"])
    assert [str(w.message) for w in caught] == [
        "skipping figure fig07_radial_gradients: no radial profile given (profile=None)",
        "skipping figure fig08_feh_broken_power_law: no radial profile given (profile=None)"]
    assert paths == {} and set(paths.skipped) == {"fig07_radial_gradients", "fig08_feh_broken_power_law"}
    with pytest.warns(FigureSkippedWarning, match="regressor=None"):
        paths = render_figures(frame, tmp_path / "no_fit", profile=profile, figures=["fig08_feh_broken_power_law"])
    assert "never fitted here" in paths.skipped["fig08_feh_broken_power_law"]
    with pytest.warns(FigureSkippedWarning, match=r"the profile lacks column\(s\) \['R_MEDIAN'\]"):
        render_figures(frame, tmp_path / "no_fit", profile=profile.drop(columns="R_MEDIAN"), regressor=FIT,
                       figures=["fig08_feh_broken_power_law"])

    # a missing column: the figures that need it are skipped, the others made
    with pytest.warns(FigureSkippedWarning, match=r"fig05_feh_velocity_map: missing column\(s\) \['FE_H_NEW'\]"):
        paths = render_figures(frame.drop(columns="FE_H_NEW"), tmp_path / "partial",
                               figures=["fig01_sample", "fig05_feh_velocity_map"], dpi=20)
    assert list(paths) == ["fig01_sample"]
    assert paths.skipped == {"fig05_feh_velocity_map": "missing column(s) ['FE_H_NEW']"}
    # no calibrated column at all: the all-abundance maps are skipped, not drawn empty
    raw = frame.drop(columns=[c for c in frame.columns if c.endswith("_NEW")])
    with pytest.warns(FigureSkippedWarning, match="no calibrated abundance column"):
        paths = render_figures(raw, tmp_path / "raw", figures=["fig14_abundance_maps_low_alpha"])
    assert paths == {} and list(paths.skipped) == ["fig14_abundance_maps_low_alpha"]
    with pytest.raises(ValueError, match="fig99"):
        render_figures(frame, tmp_path, figures=["fig99_nothing"])


def test_figure_8_draws_the_points_the_workflow_fitted(frame, tmp_path, monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a deliberately short chain
        fit = workflow.profiles_and_fit(frame, {"n_walkers": 12, "n_steps": 200, "burn_in": 50,
                                                "thin": 2}, random_state=0)
    profile, regressor = fit.profile, fit.regressor
    made = capture(monkeypatch, "plot_broken_power_law")
    render_figures(frame, tmp_path, profile=profile, regressor=regressor, figures=["fig08_feh_broken_power_law"],
                   dpi=20)
    ax = made[0].axes[0]
    fitted = profile[(profile.population == "low_alpha") & profile.FE_H_NEW.notna() & (profile.FE_H_NEW_ERR > 0)]
    points = next(a for a in ax.get_lines() if a.get_gid() == "profile")
    np.testing.assert_array_equal(points.get_xdata(), fitted["R_MEDIAN"])  # the workflow's default radius
    np.testing.assert_array_equal(points.get_ydata(), fitted["FE_H_NEW"])
    assert not np.allclose(points.get_xdata(), fitted["R"])  # not the bin centres
    line = next(a for a in ax.get_lines() if a.get_gid() == "fit")
    theta = [regressor.m1_, regressor.m2_, regressor.b_, regressor.k_]
    np.testing.assert_allclose(line.get_ydata(), broken_line(line.get_xdata(), *theta))
    # a fit at the bin centres is drawn at the bin centres
    render_figures(frame, tmp_path, profile=profile, regressor=regressor, fit_radius="R",
                   figures=["fig08_feh_broken_power_law"], dpi=20)
    points = next(a for a in made[1].axes[0].get_lines() if a.get_gid() == "profile")
    np.testing.assert_array_equal(points.get_xdata(), fitted["R"])


def test_render_figures_never_fits(frame, profile, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("render_figures fitted a model")

    monkeypatch.setattr(BrokenPowerLawRegressor, "fit", refuse)
    with pytest.warns(FigureSkippedWarning, match="fig08"):
        paths = render_figures(frame, tmp_path, profile=profile,
                               figures=["fig07_radial_gradients", "fig08_feh_broken_power_law"], dpi=20)
    assert list(paths) == ["fig07_radial_gradients"] and list(paths.skipped) == ["fig08_feh_broken_power_law"]


def test_every_figure_keeps_memory_bounded_with_a_star_at_3000_kpc(frame, profile, monkeypatch):
    far = frame.copy()
    far.loc[far.index[0], ["x", "y", "R"]] = [3000.0, -1500.0, np.hypot(3000.0, 1500.0)]
    grids = []
    binned_map = maps.face_on.binned_map

    def spy(*args, **kwargs):
        result = binned_map(*args, **kwargs)
        grids.append(result.statistic.size)
        return result

    monkeypatch.setattr(maps.face_on, "binned_map", spy)
    inputs = figures.FigureInputs(far, profile, FIT)
    face_on = {"fig01_sample", "fig05_feh_velocity_map", "fig06_abundance_maps"} | {
        spec.name for spec in figures.FIGURES if "maps_" in spec.name}
    for spec in figures.FIGURES:
        assert spec.missing(inputs) is None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            spec.make(inputs)
        messages = [str(w.message) for w in caught]
        if spec.name in face_on:  # one warning per figure, counting the star left out
            assert messages == [m for m in messages if "1 star(s) with |x| or |y| > 30 kpc left out" in m]
            assert len(messages) == 1, (spec.name, messages)
        else:
            assert messages == [], (spec.name, messages)
    # every grid drawn is that of the disk (|x|, |y| <= 30 kpc in >= 0.5 kpc bins), not of the far star
    assert grids and max(grids) <= (2 * 30 / 0.5 + 2) ** 2


def test_a_far_star_is_counted_when_the_files_are_written(frame, tmp_path):
    far = frame.copy()
    far.loc[far.index[:3], ["x", "y"]] = [[1e6, 0.0], [0.0, -3000.0], [np.nan, 1e9]]
    with pytest.warns(UserWarning, match=r"plot_abundance_maps: 2 star\(s\) with \|x\| or \|y\| > 30 kpc"):
        paths = render_figures(far, tmp_path, figures=["fig06_abundance_maps"], dpi=20)
    assert list(paths) == ["fig06_abundance_maps"]


def test_too_few_stars_skip_figures_with_their_reasons(frame, profile, tmp_path):
    tiny = frame.iloc[:3]
    chosen = ["fig01_sample", "fig02_logg_trends_fe_h", "fig05_feh_velocity_map", "fig13_on_off_bar"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FigureSkippedWarning)
        paths = render_figures(tiny, tmp_path, figures=chosen, dpi=20)
    assert set(paths) | set(paths.skipped) == set(chosen)
    assert "need at least 4 stars" in paths.skipped["fig02_logg_trends_fe_h"]
    assert "at least 2 stars" in paths.skipped["fig13_on_off_bar"]
    nowhere = frame.assign(x=np.nan)
    with pytest.warns(FigureSkippedWarning, match="no star has a finite position"):
        paths = render_figures(nowhere, tmp_path, figures=["fig01_sample"])
    assert paths == {}


def test_trend_figures_for_other_nuisances(frame, tmp_path, monkeypatch):
    made = capture(monkeypatch, "plot_logg_trends")
    paths = render_figures(frame, tmp_path, nuisances=("LOGG", "TELESCOPE"),
                           figures=["fig03_telescope_trends_mg_fe"], dpi=20)
    assert list(paths) == ["fig03_telescope_trends_mg_fe"]
    labels = [t.get_text() for t in made[0].axes[0].get_legend().get_texts()]
    assert labels == ["TELESCOPE = apo25m", "TELESCOPE = lco25m"]
    with pytest.raises(ValueError, match="fig03_telescope_trends_mg_fe"):
        render_figures(frame, tmp_path, figures=["fig03_telescope_trends_mg_fe"])  # LOGG only by default




def _pngs(paths):
    return {name: open(path, "rb").read() for name, path in paths.items()}


def test_a_worker_draws_from_the_columns_it_is_sent_the_same_figure(frame, profile):
    """A worker receives only the frame's columns its figure reads: every figure must be the one
    drawn from the whole frame (same PNG bytes)."""
    inputs = figures.FigureInputs(frame, profile, FIT, random_state=3)
    # one figure of every way of listing columns (Figures 3-4, 15 and 17 list theirs as 2, 14 and
    # 16 do; 7 and 8 draw no column of the frame)
    for spec in figures.FIGURES:
        if spec.name[:5] in ("fig03", "fig04", "fig07", "fig08", "fig15", "fig17"):
            continue
        sent = _figure_jobs._needed(spec, inputs)
        assert len(sent.frame.columns) < len(frame.columns), spec.name
        assert _figure_jobs._draw(spec.name, ("LOGG",), sent, 20) == _figure_jobs._draw(spec.name, ("LOGG",), inputs, 20), \
            spec.name


def test_a_figure_drawn_once_is_the_png_savefig_writes(frame, profile):
    """_draw lays a figure out and paints it in one draw (savefig draws twice): the same bytes, for
    figures of every kind of layout (colour bars, shared axes, hidden panels, one panel)."""
    inputs = figures.FigureInputs(frame, profile, FIT, random_state=3)
    for spec in figures.FIGURES:
        if spec.name[:5] not in ("fig01", "fig02", "fig08", "fig10", "fig13", "fig16"):
            continue
        buffer = io.BytesIO()
        spec.make(inputs).savefig(buffer, dpi=37, format="png")
        assert _figure_jobs._draw(spec.name, ("LOGG",), inputs, 37)[0] == buffer.getvalue(), spec.name


def test_figures_do_not_depend_on_the_number_of_workers(frame, profile, tmp_path):
    chosen = ["fig02_logg_trends_fe_h", "fig06_abundance_maps", "fig08_feh_broken_power_law",
              "fig13_on_off_bar", "fig14_abundance_maps_low_alpha"]
    kwargs = {"profile": profile, "regressor": FIT, "figures": chosen, "dpi": 20, "random_state": 3}
    serial = _pngs(render_figures(frame, tmp_path / "one", n_jobs=1, **kwargs))
    parallel = _pngs(render_figures(frame, tmp_path / "three", n_jobs=3, **kwargs))
    assert list(serial) == list(parallel) == chosen  # the figures' order, wherever they were drawn
    assert serial == parallel
    # the figures' workers are their own: joblib's process pool still works afterwards
    from joblib import Parallel, delayed
    assert Parallel(n_jobs=2)(delayed(abs)(-i) for i in range(3)) == [0, 1, 2]


def test_warnings_of_the_workers_are_raised_in_the_caller(frame, tmp_path):
    far = frame.copy()
    far.loc[far.index[:2], ["x", "y"]] = [[1e6, 0.0], [0.0, -3000.0]]
    records = []
    for n_jobs in (1, 2):
        with pytest.warns(OutsideMapWarning) as caught:
            render_figures(far, tmp_path / str(n_jobs), figures=["fig01_sample", "fig06_abundance_maps"],
                           dpi=20, n_jobs=n_jobs)
        records.append([(w.category, str(w.message), w.filename, w.lineno) for w in caught])
    assert records[0] == records[1]
    assert [r[1] for r in records[0]] == [
        "plot_sample_overview: 2 star(s) with |x| or |y| > 30 kpc left out (pass extent= to map them)",
        "plot_abundance_maps: 2 star(s) with |x| or |y| > 30 kpc left out (pass extent= to map them)"]
    assert all(r[2].endswith(os.path.join("plotting", "_common.py")) for r in records[0])  # where raised
    # raised from the package's module, so that the package's filters apply (here: an error)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", module="sklearn_selfcal.plotting")
        with pytest.raises(OutsideMapWarning, match="plot_abundance_maps: 2 star"):
            render_figures(far, tmp_path / "error", figures=["fig06_abundance_maps"], dpi=20, n_jobs=2)


def test_start_figures_then_write(frame, profile, tmp_path):
    job = figures.start_figures(frame, profile=profile, regressor=FIT, dpi=20, n_jobs=2,
                                figures=["fig08_feh_broken_power_law", "fig07_radial_gradients"])
    assert next(iter(job._taken)) == "fig07_radial_gradients"  # the first in the queue, sent at once
    assert not tmp_path.joinpath("later").exists()  # nothing is written before write()
    paths = job.write(tmp_path / "later")
    assert list(paths) == ["fig07_radial_gradients", "fig08_feh_broken_power_law"]  # the figures' order
    assert all(open(p, "rb").read(8) == PNG for p in paths.values())
    with pytest.raises(RuntimeError, match="already written"):
        job.write(tmp_path / "again")
    with pytest.raises(ValueError, match="fig99"):
        figures.start_figures(frame, figures=["fig99_nothing"])


def _gone(pid, seconds=60):
    """Whether process ``pid`` has exited (waiting up to ``seconds``)."""
    import time

    import psutil

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.1)
    return False


def test_workers_started_ahead_draw_the_same_figures_then_stop(frame, profile, tmp_path):
    chosen = ["fig01_sample", "fig06_abundance_maps", "fig08_feh_broken_power_law"]
    workers = figures.start_workers(n_jobs=2)
    assert workers.n_workers == 1
    pid = workers.warm[0].result(timeout=300)  # the worker's pid, once its imports are done
    job = figures.start_figures(frame, profile=profile, regressor=FIT, figures=chosen, dpi=20, random_state=3,
                                workers=workers)
    assert list(job._taken) == ["fig06_abundance_maps"]  # the costliest, sent to the worker at once
    ahead = _pngs(job.write(tmp_path / "ahead"))
    assert _gone(pid)  # stopped once every figure is in
    direct = _pngs(render_figures(frame, tmp_path / "direct", profile=profile, regressor=FIT, figures=chosen,
                                  dpi=20, random_state=3))
    assert list(ahead) == chosen and ahead == direct
    spare = figures.start_workers(n_jobs=2)  # not used: stopped by close()
    pid = spare.warm[0].result(timeout=300)
    spare.close()
    assert _gone(pid)
    assert figures.start_workers(n_jobs=1) is None  # only the caller's process


def test_figures_of_the_fit_wait_for_it_and_are_the_same(frame, profile, tmp_path):
    """fit_later: the figures of the profile and the fit (7, 8) are held until add_fit gives them,
    the others start at once; the files are those of render_figures given everything at once."""
    chosen = ["fig01_sample", "fig07_radial_gradients", "fig08_feh_broken_power_law", "fig13_on_off_bar"]
    job = figures.start_figures(frame, figures=chosen, dpi=20, n_jobs=2, random_state=3, fit_later=True)
    with pytest.raises(RuntimeError, match="add_fit"):
        job.write(tmp_path / "early")
    waiting = {"fig07_radial_gradients", "fig08_feh_broken_power_law"}
    assert not waiting & (set(job._taken) | {spec.name for spec in job._queue})
    job.add_fit(profile, FIT)
    later = _pngs(job.write(tmp_path / "later"))
    direct = _pngs(render_figures(frame, tmp_path / "direct", profile=profile, regressor=FIT, figures=chosen,
                                  dpi=20, random_state=3))
    assert list(later) == chosen and later == direct
    # no profile or fit given later: skipped with the reason, as render_figures skips them
    job = figures.start_figures(frame, figures=sorted(waiting), dpi=20, fit_later=True)
    job.add_fit(None, None)
    with pytest.warns(FigureSkippedWarning, match="no radial profile given"):
        rendered = job.write(tmp_path / "none")
    assert rendered == {} and set(rendered.skipped) == waiting
