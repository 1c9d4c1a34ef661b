"""The bad-input suite: every public entry point x every kind of bad input (issue 21).

Property-based (hypothesis): every example draws a table (its size and seed), the row and the
column to spoil and the bad value, and asserts the contract of the package's validation layer
(:mod:`sklearn_selfcal._validation`):

* a clear error -- ``ValueError`` (``TooFewStarsError`` is one), ``KeyError`` or ``TypeError``, never
  a low-level one (``AttributeError``, ``IndexError``, numpy's broadcast or reshape messages) --
  naming the column (or the index, the row, the file); or
* a result equal to the one the same call gives when the bad value is NaN (the bad value counts as
  missing, never as a number), with a :class:`~sklearn_selfcal.exceptions.DataQualityWarning`
  naming the column for a value that was not already missing;
* the input is never modified.

The writers are faithful instead: what they write reads back as it was given.

Examples: 20 per case by default (the ``ci`` profile, derandomised: CI runs the same examples
every time); ``HYPOTHESIS_PROFILE=long`` runs 300 per case.
"""

from __future__ import annotations

import copy
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
from astropy.table import MaskedColumn, Table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sklearn_selfcal import ActionTransformer, BrokenPowerLawRegressor, NuisanceCalibrator
from sklearn_selfcal import maps
from sklearn_selfcal.cleaning import GENERIC_SENTINELS, MAGNITUDE_SENTINELS
from sklearn_selfcal.columns import role_of
from sklearn_selfcal.distances import DistanceTransformer
from sklearn_selfcal.exceptions import DataQualityWarning
from sklearn_selfcal.gradients import (fit_radial_gradient, profile_covariance,
                                       radial_abundance_profile)
from sklearn_selfcal.io import write_catalogue, write_table
from sklearn_selfcal.parallax_features import SpectroPhotometricFeatures, join_spectra

settings.register_profile("ci", max_examples=20, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture])
settings.register_profile("long", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture])
settings.register_profile("dev", max_examples=3, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Messages of low-level failures: an error saying one of these is not a clear one.
LOW_LEVEL = ("could not broadcast", "setting an array element", "cannot reshape",
             "name already used", "truth value of an array", "object has no attribute",
             "unhashable", "index out of", "invalid literal", "could not convert")

KINDS = ("sentinel", "out_of_range", "nan", "inf", "masked", "units", "duplicate_column",
         "duplicate_index", "string", "empty", "one_row")


# --------------------------------------------------------------------------- tables


def catalogue(n, seed):
    """A small disk sample with every column the entry points read (units as documented)."""
    rng = np.random.default_rng(seed)
    R = rng.uniform(2.0, 18.0, n)
    phi = rng.uniform(-0.5, 0.5, n)
    feh = 0.3 - 0.06 * R + rng.normal(0, 0.05, n)
    alpha = rng.uniform(-0.05, 0.3, n)
    return pd.DataFrame({
        "R": R, "x": -R * np.cos(phi), "y": R * np.sin(phi), "z": rng.normal(0, 0.3, n),
        "v_x": rng.normal(0, 30, n), "v_y": rng.normal(230, 20, n),
        "J_R": rng.exponential(30, n), "L_z": -230 * R, "J_z": rng.exponential(10, n),
        "FE_H": feh, "FE_H_ERR": rng.uniform(0.01, 0.03, n), "FE_H_NEW": feh + 0.01,
        "MG_FE": 0.2 * alpha, "MG_FE_NEW": 0.2 * alpha + 0.01,
        "ALPHA_M": alpha, "ALPHA_M_NEW": alpha + 0.005, "LOGG": rng.uniform(0.5, 2.2, n),
        "parallax": rng.uniform(0.2, 2.0, n), "parallax_error": rng.uniform(0.01, 0.03, n),
    })


def orbit_table(n, seed):
    """Sky positions, distances (kpc), proper motions and velocities of disk stars."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"ra": rng.uniform(0, 360, n), "dec": rng.uniform(-60, 60, n),
                         "distance": rng.uniform(0.5, 4.0, n), "pmra": rng.normal(0, 5, n),
                         "pmdec": rng.normal(0, 5, n), "VHELIO_AVG": rng.normal(0, 40, n)})


def profile_table(n, seed):
    """A radial profile table (the input of profile_covariance, profile_points, ...)."""
    frame = catalogue(max(n, 8) * 20, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return radial_abundance_profile(frame, ["FE_H"], min_stars=2)


def profile_points_table(n, seed):
    """The 11 bins of a low-alpha profile as rows (R, FE_H, FE_H_ERR): what the regressor fits."""
    rng = np.random.default_rng(seed)
    R = np.arange(1.0, 22.0, 2.0) + rng.uniform(-0.2, 0.2, 11)
    return pd.DataFrame({"R": R, "FE_H": 0.4 - 0.06 * np.minimum(R, 14) - 0.02 * np.maximum(R - 14, 0),
                         "FE_H_ERR": rng.uniform(0.01, 0.02, 11)})


_SURVEY = {}


def spectra_table(n, seed):
    """Catalogue rows joined with their spectra (SpectroPhotometricFeatures' input)."""
    if not _SURVEY:
        from sklearn_selfcal.datasets import make_survey
        from sklearn_selfcal.parallax_features import MAGNITUDE_COLUMNS

        s = make_survey(n_stars=200, n_pixels=12, random_state=0)
        complete = np.isfinite(s.frame[list(MAGNITUDE_COLUMNS)].to_numpy()).all(axis=1)
        _SURVEY["table"] = join_spectra(s.frame, s.spectra, s.spectra_err)[complete] \
            .reset_index(drop=True)
    table = _SURVEY["table"]
    rows = np.random.default_rng(seed).choice(len(table), min(n, len(table)), replace=False)
    return table.iloc[np.sort(rows)].reset_index(drop=True)


def _role(column):
    """The column's role in the role table (a calibrated ``<X>_NEW`` has ``<X>``'s)."""
    return role_of(column) or role_of(column.removesuffix("_NEW"))


def _role_has_range(column):
    role = _role(column)
    return role is not None and role.valid is not None


# --------------------------------------------------------------------------- entry points


def _fast_mcmc():
    return dict(n_walkers=10, n_steps=40, burn_in=10, thin=1, autocorr_tol=1e-3, random_state=0)


def _write_read(suffix, writer):
    def call(frame, tmp_path):
        path = tmp_path / f"out{suffix}"
        writer(frame, path)
        if suffix == ".parquet":
            return pd.read_parquet(path)
        return Table.read(path).to_pandas()
    return call


@dataclass
class Entry:
    """A public entry point: how to call it on a table, and which numeric columns it reads."""

    name: str
    call: object                         # call(table, tmp_path) -> result
    columns: tuple                       # numeric columns read (the ones spoiled)
    table: object = catalogue            # table(n, seed) -> a good input
    kpc: tuple = ()                      # Galactocentric lengths (kpc)
    finite: tuple = ()                   # must be finite for every star: an error otherwise
    empty_ok: bool = False               # an empty table gives an empty result, not an error
    faithful: bool = False               # a writer: bad values are written as given
    arrays: bool = False                 # takes arrays: no table structure to spoil
    row_of: object = staticmethod(lambda row: row)   # a row's position in what the call reads
    min_rows: int = 8
    not_applicable: dict = field(default_factory=dict)   # kind -> why


ENTRIES = [
    Entry("radial_abundance_profile",
          lambda t, _: radial_abundance_profile(t, ["FE_H_NEW"], min_stars=2, n_bootstrap=3,
                                                random_state=0),
          ("R", "FE_H_NEW", "ALPHA_M"), kpc=("R",), finite=("R",), empty_ok=True),
    Entry("profile_covariance", lambda t, _: profile_covariance(t, "FE_H", population="all"),
          ("FE_H_ERR",), table=profile_table, empty_ok=True),
    Entry("fit_radial_gradient",
          lambda t, _: fit_radial_gradient(t, "FE_H_NEW", population="all", min_stars=2,
                                           **_fast_mcmc()),
          ("R", "FE_H_NEW", "ALPHA_M"), kpc=("R",), finite=("R",), min_rows=60),
    Entry("BrokenPowerLawRegressor.fit",
          lambda t, _: BrokenPowerLawRegressor(radius_column="R", **_fast_mcmc()).fit(
              t[["R"]], t["FE_H"], sigma=t["FE_H_ERR"]),
          ("R", "FE_H", "FE_H_ERR"), table=profile_points_table, kpc=("R",),
          finite=("R", "FE_H", "FE_H_ERR")),
    Entry("face_on_map", lambda t, _: maps.face_on_map(t, "FE_H_NEW", min_stars=1),
          ("x", "y", "FE_H_NEW"), kpc=("x", "y")),
    Entry("face_on_map (difference)",
          lambda t, _: maps.face_on_map(t, "FE_H_NEW", minus="FE_H", min_stars=1),
          ("FE_H_NEW", "FE_H")),
    Entry("binned_map", lambda t, _: maps.binned_map(t["x"], t["y"], t["FE_H_NEW"], min_stars=1),
          ("x", "y", "FE_H_NEW"), kpc=("x", "y"), arrays=True, empty_ok=True),
    Entry("velocity_map", lambda t, _: maps.velocity_map(t, min_stars=1),
          ("x", "y", "v_x", "v_y"), kpc=("x", "y")),
    Entry("alpha_iron_by_position", lambda t, _: maps.alpha_iron_by_position(t),
          ("R", "z", "FE_H_NEW", "ALPHA_M_NEW"), kpc=("R", "z")),
    Entry("alpha_iron_by_actions", lambda t, _: maps.alpha_iron_by_actions(t),
          ("J_R", "L_z", "J_z", "FE_H_NEW", "ALPHA_M_NEW")),
    Entry("on_off_bar_samples",
          lambda t, _: (lambda r: (list(r.on.index), list(r.off.index), r.cells))(
              maps.on_off_bar_samples(t, R_max=20.0, z_max=2.0, random_state=0)),
          ("x", "y", "z", "R"), kpc=("x", "y", "z", "R")),
    Entry("compare_samples",
          lambda t, _: maps.compare_samples(t[::2], t[1::2], ["FE_H_NEW", "MG_FE_NEW"],
                                            n_permutations=9, random_state=0),
          ("FE_H_NEW", "MG_FE_NEW"), row_of=lambda row: row // 2),
    Entry("logg_trends",
          lambda t, _: maps.logg_trends(t, "FE_H", features=["R", "L_z"], n_feature_bins=3,
                                        min_stars=2),
          ("LOGG", "FE_H", "FE_H_NEW", "R", "L_z")),
    Entry("nuisance_groups", lambda t, _: maps.nuisance_groups(t, "LOGG", n_bins=2), ("LOGG",)),
    Entry("alpha_population_masks", lambda t, _: maps.alpha_population_masks(t),
          ("ALPHA_M_NEW",)),
    Entry("profile_points", lambda t, _: maps.profile_points(t, "FE_H", population="all"),
          ("R_MEDIAN", "FE_H", "FE_H_ERR"), table=profile_table, kpc=("R_MEDIAN",),
          empty_ok=True),
    Entry("radial_gradient_layout",
          lambda t, _: maps.radial_gradient_layout(t, ["FE_H"], population="all"),
          ("R", "FE_H", "FE_H_ERR"), table=profile_table, kpc=("R",)),
    Entry("SpectroPhotometricFeatures.fit_transform",
          lambda t, _: SpectroPhotometricFeatures().fit_transform(t),
          ("phot_g_mean_mag", "J", "w2mpro", "LSF_2"), table=spectra_table,
          finite=("phot_g_mean_mag", "J", "w2mpro", "LSF_2"),
          not_applicable={"masked": "an astropy Table cannot hold the spectra columns",
                          "units": "no length column",
                          "out_of_range": "magnitudes are taken as given beyond the role's range "
                          "(make_survey's faintest synthetic stars); sentinels are refused"}),
    Entry("NuisanceCalibrator.fit_transform",
          lambda t, _: NuisanceCalibrator(["FE_H"], orbit_features=("J_R", "J_z", "L_z"),
                                          orbit_degree=1, nuisance_degree=1,
                                          training_filter=None).fit_transform(t),
          ("FE_H", "FE_H_ERR", "LOGG", "J_R", "L_z"), min_rows=40,
          not_applicable={"units": "no length column"}),
    Entry("ActionTransformer.fit_transform",
          lambda t, _: ActionTransformer(distance="distance", orbit_check=False,
                                         method="staeckel_fixed").fit_transform(t),
          ("ra", "dec", "pmra", "VHELIO_AVG"), table=orbit_table, empty_ok=True,
          not_applicable={"units": "its own unit guard has its tests (tests/test_actions.py)"}),
    Entry("DistanceTransformer.fit_transform",
          lambda t, _: DistanceTransformer().fit_transform(t), ("parallax", "parallax_error"),
          empty_ok=True, not_applicable={"units": "no length column"}),
    Entry("write_catalogue (FITS)", _write_read(".fits", write_catalogue),
          ("FE_H", "R"), faithful=True),
    Entry("write_catalogue (Parquet)", _write_read(".parquet", write_catalogue),
          ("FE_H", "R"), faithful=True),
    Entry("write_table (ECSV)", _write_read(".ecsv", write_table), ("FE_H", "R"), faithful=True),
]
_NO_UNITS = "no Galactocentric length column"
for _entry in ENTRIES:
    if not _entry.kpc and not _entry.faithful:
        _entry.not_applicable.setdefault("units", _NO_UNITS)
    if not any(_role_has_range(c) for c in _entry.columns):
        _entry.not_applicable.setdefault("out_of_range", "no column has a physical range")
    if _entry.arrays:
        for _kind in ("duplicate_column", "duplicate_index"):
            _entry.not_applicable.setdefault(_kind, "takes arrays, not a table")
    if _entry.faithful:
        _entry.not_applicable.setdefault("units", "a writer writes the units it is given")
        _entry.not_applicable.setdefault("masked", "a writer takes a DataFrame (no masked arrays)")
SLOW = {"fit_radial_gradient", "BrokenPowerLawRegressor.fit", "NuisanceCalibrator.fit_transform",
        "SpectroPhotometricFeatures.fit_transform"}
CASES = [(e, k) for e in ENTRIES for k in KINDS if k not in e.not_applicable]
# Entry points that need more than one star (two per sample, one per bin, a line's 4 radii, a
# fit's design terms): a one-row table is a clear error, never a result computed from one star.
ONE_ROW_ERROR = {"compare_samples", "logg_trends", "nuisance_groups", "fit_radial_gradient",
                 "BrokenPowerLawRegressor.fit", "NuisanceCalibrator.fit_transform"}


# --------------------------------------------------------------------------- spoiling


def _bad_value(kind, column, draw):
    if kind == "sentinel":
        role = _role(column)
        sentinels = GENERIC_SENTINELS + (MAGNITUDE_SENTINELS if role is not None
                                         and role.unit == "mag" else ())
        value = draw(st.sampled_from(sentinels))
        # as stored in float32 (-9999.99 -> -9999.990234...) half of the time
        return float(np.float32(value)) if draw(st.booleans()) else value
    if kind == "out_of_range":   # beyond the physical range of the column's role
        low, high = _role(column).valid
        beyond = [v for v in (None if low is None else low - 1 - 10 * abs(low),
                              None if high is None else high + 1 + 10 * abs(high)) if v is not None]
        return draw(st.sampled_from(beyond))
    if kind == "inf":
        return draw(st.sampled_from([np.inf, -np.inf]))
    return np.nan


def _with_value(table, column, row, value):
    out = table.copy()
    values = out[column].to_numpy(dtype=float, copy=True)
    values[row] = value
    out[column] = values
    return out


def _masked(table, column, row, hidden):
    """An astropy Table whose ``column`` is masked at ``row``, ``hidden`` behind the mask."""
    out = Table.from_pandas(table)
    values = out[column].data.astype(float).copy()
    values[row] = hidden
    mask = np.zeros(len(values), dtype=bool)
    mask[row] = True
    out[column] = MaskedColumn(values, mask=mask)
    return out


# --------------------------------------------------------------------------- the contract


def _call(entry, table, tmp_path):
    """``(result, error, DataQualityWarning messages)``; the input is checked unchanged."""
    before = copy.deepcopy(table)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result, error = entry.call(table, tmp_path), None
        except Exception as exc:  # noqa: BLE001 - the contract is about which exceptions
            result, error = None, exc
    _assert_unchanged(table, before)
    messages = [str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)]
    return result, error, messages


def _assert_unchanged(table, before):
    if isinstance(table, Table):
        assert table.colnames == before.colnames
        for name in table.colnames:
            np.testing.assert_array_equal(np.ma.getdata(table[name]), np.ma.getdata(before[name]))
            np.testing.assert_array_equal(np.ma.getmaskarray(table[name]),
                                          np.ma.getmaskarray(before[name]))
    else:
        pd.testing.assert_frame_equal(table, before)


def _assert_clear(error, *names):
    """A clear error: the package's kinds, no low-level message, naming one of ``names``."""
    assert isinstance(error, ValueError | KeyError | TypeError), repr(error)
    message = str(error)
    assert not any(phrase in message for phrase in LOW_LEVEL), message
    assert any(name in message for name in names), f"{names} not named in: {message}"


def _same(a, b):
    """Equal results (NaN equal to NaN), recursively through Bunches, frames and estimators."""
    if isinstance(a, pd.Index):
        pd.testing.assert_index_equal(a, b)
    elif isinstance(a, pd.DataFrame | pd.Series):
        if isinstance(a, pd.DataFrame):
            pd.testing.assert_frame_equal(a, b, check_exact=True)
        else:
            pd.testing.assert_series_equal(a, b, check_exact=True)
    elif isinstance(a, dict):  # Bunch
        assert a.keys() == b.keys()
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    elif hasattr(a, "get_params"):   # a fitted estimator: its fitted attributes
        fitted = [k for k in vars(a) if k.endswith("_") and not k.startswith("_")]
        for key in fitted:
            _same(getattr(a, key), getattr(b, key))
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b)
    else:
        assert a == b


def check_contract(entry, kind, data, tmp_path):
    n = data.draw(st.integers(entry.min_rows // 2, entry.min_rows // 2 + 20), label="n") * 2
    seed = data.draw(st.integers(0, 2**16), label="seed")
    table = entry.table(n, seed)
    column = data.draw(st.sampled_from(entry.columns), label="column")
    row = data.draw(st.integers(0, len(table) - 1), label="row")

    if kind in ("sentinel", "out_of_range", "inf", "nan", "masked"):
        if kind == "out_of_range":
            column = data.draw(st.sampled_from([c for c in entry.columns if _role_has_range(c)]),
                               label="column with a physical range")
        value = _bad_value(kind, column, data.draw)
        reference = _with_value(table, column, row, np.nan)
        # behind a mask: another star's value, a plausible number that must not be used
        hidden = float(table[column].iloc[(row + 1) % len(table)])
        bad = (_masked(table, column, row, hidden) if kind == "masked"
               else _with_value(table, column, row, value))
        result, error, messages = _call(entry, bad, tmp_path)
        if entry.faithful:
            assert error is None, repr(error)
            _same(result, bad.reset_index(drop=True) if not entry.name.endswith("Parquet")
                  else bad)
            return
        if error is not None:   # a clear error naming the column (and the row where it must
            _assert_clear(error, column)            # be finite) is the other half of the contract
            if column in entry.finite:
                assert f"row {entry.row_of(row)}" in str(error), str(error)
            return
        assert column not in entry.finite, f"{column} must be finite: no error for {kind}"
        ref_result, ref_error, ref_messages = _call(entry, reference, tmp_path)
        assert ref_error is None, ref_error
        _same(result, ref_result)
        if kind in ("sentinel", "out_of_range", "inf"):
            assert any(f"column {column!r}" in m for m in messages), (kind, column, messages)
        return

    if kind == "units":
        column = data.draw(st.sampled_from(entry.kpc), label="kpc column")
        bad = table.copy()
        bad[column] = bad[column] * 1000.0
        _, error, _ = _call(entry, bad, tmp_path)
        assert error is not None, f"{column} in pc accepted"
        _assert_clear(error, column)
        assert "pc" in str(error)
        return

    if kind == "duplicate_column":
        bad = pd.concat([table, table[[column]]], axis=1)
        _, error, _ = _call(entry, bad, tmp_path)
        assert error is not None, f"duplicate column {column} accepted"
        _assert_clear(error, column)
        return

    if kind == "duplicate_index":
        labels = table.index.to_numpy().copy()
        labels[row] = labels[(row + 2) % len(labels)]
        bad = table.set_axis(labels)
        result, error, _ = _call(entry, bad, tmp_path)
        if entry.faithful:  # FITS and ECSV drop the index; Parquet keeps it as given
            assert error is None, repr(error)
            return
        assert error is not None, "a duplicated index accepted"
        _assert_clear(error, "index")
        return

    if kind == "string":
        bad = table.astype({column: object})
        bad.iloc[row, bad.columns.get_loc(column)] = "bad"
        result, error, _ = _call(entry, bad, tmp_path)
        if entry.faithful and error is None:   # written as text, faithfully
            return
        assert error is not None, f"text in {column} accepted"
        _assert_clear(error, column)
        assert f"row {entry.row_of(row)}" in str(error), str(error)
        return

    if kind in ("empty", "one_row"):
        bad = table.iloc[: 0 if kind == "empty" else 1]
        result, error, _ = _call(entry, bad, tmp_path)
        if error is not None:
            _assert_clear(error, "row", "star", "point", "sample", "radii", "bins")
            return
        if kind == "empty" and not (entry.empty_ok or entry.faithful):
            pytest.fail(f"{entry.name} accepted an empty table without an error")
        if kind == "one_row" and entry.name in ONE_ROW_ERROR:
            pytest.fail(f"{entry.name} gave a result from one star")
        return
    raise AssertionError(kind)


def _ids(case):
    entry, kind = case
    return f"{entry.name}-{kind}"


@pytest.mark.parametrize("case", [c for c in CASES if c[0].name not in SLOW], ids=_ids)
@given(data=st.data())
def test_bad_input_contract(case, data, tmp_path):
    check_contract(*case, data, tmp_path)


@pytest.mark.parametrize("case", [c for c in CASES if c[0].name in SLOW], ids=_ids)
@settings(max_examples=max(3, settings.default.max_examples // 5))
@given(data=st.data())
def test_bad_input_contract_slow_entry_points(case, data, tmp_path):
    check_contract(*case, data, tmp_path)


def test_suite_size():
    """Every entry point meets every kind, except the combinations said not to apply (and why)."""
    assert len(ENTRIES) >= 23
    skipped = {(e.name, k): why for e in ENTRIES for k, why in e.not_applicable.items()}
    assert len(CASES) + len(skipped) == len(ENTRIES) * len(KINDS)
    assert all(why for why in skipped.values())


# --------------------------------------------------------------------------- the examples
# Each example of issue 21, with the message it now gives.


def _disk(n=400, seed=0):
    frame = catalogue(n, seed)
    frame.loc[5, "FE_H_NEW"] = -9999.0
    return frame


def test_sentinel_abundance_is_not_counted_by_the_profile():
    frame = _disk()
    with pytest.warns(DataQualityWarning, match=r"column 'FE_H_NEW': 1 row\(s\) hold a 'no "
                      r"measurement' value \(-9999\); set to NaN \(row 5\)"):
        profile = radial_abundance_profile(frame, ["FE_H_NEW"])
    expected = radial_abundance_profile(frame.assign(FE_H_NEW=frame.FE_H_NEW.mask(
        frame.index == 5)), ["FE_H_NEW"])
    pd.testing.assert_frame_equal(profile, expected)   # the bin's error no longer grows 7,700x
    assert profile["FE_H_NEW_ERR"].max() < 0.05


def test_sentinel_abundance_is_not_drawn_by_face_on_map():
    with pytest.warns(DataQualityWarning, match="column 'FE_H_NEW'.*-9999"):
        image = maps.face_on_map(_disk(), "FE_H_NEW", min_stars=1).statistic
    assert np.nanmin(image) > -5


def test_sentinel_magnitude_is_no_feature():
    table = spectra_table(30, 0)
    table.loc[3, "phot_g_mean_mag"] = -9999.0
    with pytest.raises(ValueError, match=r"SpectroPhotometricFeatures: column 'phot_g_mean_mag' "
                       r"must be finite for every star; 1 value\(s\) are not \(1 sentinel; row 3\)"
                       ".*complete_photometry"):
        SpectroPhotometricFeatures().fit_transform(table)


def test_a_star_without_a_good_pixel_is_named():
    table = spectra_table(30, 0)
    flux = table["FLUX"].array.to_numpy_2d().copy()
    flux[4] = 0.0   # APOGEE writes a bad pixel as flux 0
    table["FLUX"] = join_spectra(table[[]], flux, flux)["FLUX"]
    with pytest.warns(DataQualityWarning, match=r"column 'FLUX': 1 row\(s\) have no good pixel: "
                      r"every pixel imputed \('median'\) \(row 4\)"):
        SpectroPhotometricFeatures(flux_err_column=None).fit_transform(table)


def test_radius_in_pc_is_refused_by_the_profile_and_the_regressor():
    frame = catalogue(200, 0)
    frame["R"] *= 1000
    with pytest.raises(ValueError, match=r"radial_abundance_profile: column 'R' is a length in "
                       r"kpc, but its median \|value\| is .* it looks like pc; divide it by 1000"):
        radial_abundance_profile(frame, ["FE_H_NEW"])
    points = profile_points_table(11, 0)
    with pytest.raises(ValueError, match="BrokenPowerLawRegressor: column 'R' is a length in kpc"):
        BrokenPowerLawRegressor(radius_column="R", **_fast_mcmc()).fit(
            points[["R"]] * 1000, points["FE_H"], sigma=points["FE_H_ERR"])


def test_masked_values_are_missing_not_their_hidden_value():
    points = profile_points_table(11, 0)
    R = np.ma.masked_array(points["R"].to_numpy(copy=True), mask=np.arange(11) == 3)
    R.data[3] = 1e6
    with pytest.raises(ValueError, match=r"column 'R' must be finite .*1 missing \(NaN\); row 3"), \
            pytest.warns(DataQualityWarning, match="column 0: 1 row"):  # the mask, said first
        BrokenPowerLawRegressor(**_fast_mcmc()).fit(R[:, None], points["FE_H"],
                                                    sigma=points["FE_H_ERR"])
    frame = catalogue(100, 0)
    table = _masked(frame, "FE_H_NEW", 7, -9999.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        masked = maps.face_on_map(table, "FE_H_NEW", min_stars=1)
        reference = maps.face_on_map(frame.assign(FE_H_NEW=frame.FE_H_NEW.mask(frame.index == 7)),
                                     "FE_H_NEW", min_stars=1)
    np.testing.assert_array_equal(masked.statistic, reference.statistic)


def test_duplicated_columns_are_named_before_any_work(tmp_path):
    frame = catalogue(50, 0)
    twice = pd.concat([frame, frame[["FE_H_NEW"]]], axis=1)
    with pytest.raises(ValueError, match=r"writing .*x.fits: the table has duplicate column "
                       r"name\(s\) \['FE_H_NEW'\]"):
        write_catalogue(twice, tmp_path / "x.fits")
    assert not (tmp_path / "x.fits").exists()
    with pytest.raises(ValueError, match=r"radial_abundance_profile: the table has duplicate "
                       r"column name\(s\) \['FE_H_NEW'\]"):
        radial_abundance_profile(twice, ["FE_H_NEW"])


def test_duplicated_index_is_named():
    frame = pd.concat([catalogue(30, 0), catalogue(30, 1)])
    with pytest.raises(ValueError, match=r"face_on_map: the table's index repeats 30 label\(s\) "
                       r"\(e.g. \[0, 1, 2, 3, 4\]\); rows concatenated without ignore_index=True"):
        maps.face_on_map(frame, "FE_H_NEW")


def _fits_with_checksums(path, frame):
    from astropy.io import fits

    fits.HDUList([fits.PrimaryHDU(), fits.table_to_hdu(Table.from_pandas(frame))]).writeto(
        path, checksum=True)
    return path


def test_fits_checksums_are_verified(tmp_path):
    from astropy.io import fits

    from sklearn_selfcal.io import read_catalogue, verify_checksums

    frame = catalogue(40, 0)[["R", "FE_H", "LOGG"]]
    good = _fits_with_checksums(tmp_path / "good.fits", frame)
    pd.testing.assert_frame_equal(read_catalogue(good), frame)
    raw = bytearray(good.read_bytes())
    with fits.open(good) as hdul:
        start = hdul[1]._data_offset
    raw[start + 3 * 24 + 8 + 3] ^= 0x10      # one bit of row 3's FE_H (rows of 3 doubles)
    damaged = tmp_path / "damaged.fits"
    damaged.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"damaged.fits: damaged FITS file: HDU 1 fails its "
                       r"DATASUM .*verify_checksums\(False\) or with --no-verify"):
        read_catalogue(damaged)
    with verify_checksums(False):
        read = read_catalogue(damaged, clean=False)
    assert (read["FE_H"] != frame["FE_H"]).sum() == 1          # read as asked, damage and all
    header = bytearray(good.read_bytes())
    at = header.find(b"TTYPE2  = 'FE_H")
    header[at + 12:at + 13] = b"G"                              # a renamed column
    (tmp_path / "edited.fits").write_bytes(bytes(header))
    with pytest.raises(ValueError, match="edited.fits: damaged FITS file: HDU 1 fails its CHECKSUM"):
        read_catalogue(tmp_path / "edited.fits")


def test_fits_duplicate_column_names_are_named(tmp_path):
    from sklearn_selfcal.io import read_catalogue

    path = tmp_path / "twice.fits"
    Table.from_pandas(catalogue(10, 0)[["R", "LOGG"]]).write(path)
    raw = path.read_bytes().replace(b"TTYPE2  = 'LOGG", b"TTYPE2  = 'R   ")
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=r"twice.fits \(HDU 1\) has duplicate column name\(s\) "
                       r"\['R'\]"):
        read_catalogue(path)


def test_aspcapstar_cut_inside_its_error_hdu_is_named(tmp_path):
    from astropy.io import fits

    from sklearn_selfcal.io import load_aspcap_spectra

    source = os.path.join(os.path.dirname(__file__), "data",
                          "aspcapStar-dr14-2M08002084+4044415.fits")
    with fits.open(source) as hdul:
        cut_at = hdul[2]._data_offset + 1000            # inside HDU 2, the flux errors
    path = tmp_path / "aspcapStar-cut.fits"
    with open(source, "rb") as fh:
        path.write_bytes(fh.read()[:cut_at])
    with pytest.raises(ValueError, match=r"aspcapStar-cut.fits: corrupt or truncated FITS file"):
        load_aspcap_spectra([path])


def test_parquet_read_errors_name_the_file(tmp_path):
    from sklearn_selfcal.io import read_catalogue

    path = tmp_path / "cut.parquet"
    catalogue(50, 0).to_parquet(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"cut.parquet: corrupt or truncated Parquet file"):
        read_catalogue(path)
