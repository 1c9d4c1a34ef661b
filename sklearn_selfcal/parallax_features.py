"""Features of the spectro-photometric parallax model (section 3.1) and its training-set cuts.

:class:`SpectroPhotometricFeatures` turns a catalogue joined with spectra into the paper's feature
vector: the log of every continuum-normalised spectral pixel, the eight Gaia / 2MASS / WISE
magnitudes and the five LSF moments. It is the first step of the model,
``make_pipeline(SpectroPhotometricFeatures(), SpectroPhotometricParallaxRegressor())``.

Input layout (one table per star, as the end-to-end pipeline carries it): a DataFrame holding the
catalogue columns plus one column per pixel, ``FLUX_0000 ... FLUX_7513`` (continuum-normalised
flux) and ``FLUX_ERR_0000 ...`` (its 1-sigma uncertainty); :func:`join_spectra` builds it from
``make_survey``'s (or a reader's) ``frame``, ``spectra`` and ``spectra_err``. Pixel columns are
found by prefix (prefix + digits), magnitudes and LSF moments by name. A plain array is accepted
only as a block of fluxes, when no magnitude or LSF columns are configured.

:func:`gaia_training_cuts` / :func:`gaia_training_mask` are the astrometric quality cuts of the
training set (one boolean column per cut, compatible with
:func:`sklearn_selfcal.selection.cut_counts`).
"""

from __future__ import annotations

import re
import warnings
from numbers import Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validation import check_numeric_columns, require_columns

__all__ = [
    "MAGNITUDE_COLUMNS",
    "LSF_COLUMNS",
    "PIXEL_FEATURE_PREFIX",
    "SpectroPhotometricFeatures",
    "join_spectra",
    "gaia_training_cuts",
    "gaia_training_mask",
]

#: Gaia G, BP, RP; 2MASS J, H, K; WISE W1, W2 (mag), in the real catalogues' spelling.
MAGNITUDE_COLUMNS = ("phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag", "J", "H", "K",
                     "w1mpro", "w2mpro")
#: The first five moments of the APOGEE line-spread function (dimensionless).
LSF_COLUMNS = ("LSF_1", "LSF_2", "LSF_3", "LSF_4", "LSF_5")
#: Output names of the pixel features are this prefix plus the input column's suffix.
PIXEL_FEATURE_PREFIX = "LOGFLUX_"


def join_spectra(frame, spectra, spectra_err=None, *, flux_prefix="FLUX_",
                 flux_err_prefix="FLUX_ERR_"):
    """Append spectra to a catalogue as one column per pixel (the transformer's input layout).

    Parameters
    ----------
    frame : DataFrame of shape (n_stars, n_columns)
        Catalogue (not modified).
    spectra : array-like of shape (n_stars, n_pixels)
        Continuum-normalised flux (dimensionless, ~1 in the continuum).
    spectra_err : array-like of shape (n_stars, n_pixels), optional
        1-sigma flux uncertainty (same units).
    flux_prefix, flux_err_prefix : str
        Column prefixes; columns are numbered ``0000, 0001, ...``.

    Returns
    -------
    table : DataFrame
        ``frame``'s columns followed by the flux (and error) columns, with ``frame``'s index.
    """
    spectra = np.asarray(spectra)
    if spectra.ndim != 2 or spectra.shape[0] != len(frame):
        raise ValueError(f"spectra must have shape (n_stars={len(frame)}, n_pixels), got "
                         f"{spectra.shape}")
    width = max(4, len(str(spectra.shape[1] - 1)))
    suffixes = [f"{i:0{width}d}" for i in range(spectra.shape[1])]
    blocks = [frame, pd.DataFrame(spectra, index=frame.index, copy=False,
                                  columns=[flux_prefix + s for s in suffixes])]
    if spectra_err is not None:
        spectra_err = np.asarray(spectra_err)
        if spectra_err.shape != spectra.shape:
            raise ValueError(f"spectra_err must have the shape of spectra {spectra.shape}, got "
                             f"{spectra_err.shape}")
        blocks.append(pd.DataFrame(spectra_err, index=frame.index, copy=False,
                                   columns=[flux_err_prefix + s for s in suffixes]))
    return pd.concat(blocks, axis=1)


def _pixel_columns(columns, prefix):
    pattern = re.compile(re.escape(prefix) + r"(\d+)$")
    return [c for c in columns if isinstance(c, str) and pattern.match(c)]


class SpectroPhotometricFeatures(TransformerMixin, BaseEstimator):
    """The paper's parallax features: log pixel fluxes, magnitudes and LSF moments.

    For every pixel the feature is ``log(clip(flux, *flux_range))``. A pixel is *bad* when its
    flux is not finite or ``<= 0`` or its uncertainty is not finite or exceeds ``max_flux_err``
    (APOGEE flags bad pixels and chip gaps with flux 0 and a huge error); bad pixels are imputed
    with the pixel's median log-flux over the training stars' good pixels (``impute="median"``) or
    with 0, the continuum (``impute="continuum"``). Magnitudes and LSF moments are passed through
    and must be finite (the paper requires complete photometry).

    Feature uncertainties (:meth:`transform_err`, used by
    ``SpectroPhotometricParallaxRegressor.predict(X, X_err=..., return_std=True)``) are
    ``err / clip(flux)`` for good pixels (first-order propagation through the log), the training
    stars' robust spread of the pixel's log-flux (1.4826 MAD) for imputed pixels, the catalogue's
    magnitude errors, and 0 for the LSF moments.

    Parameters
    ----------
    flux_prefix : str
        Pixel flux columns are ``flux_prefix`` followed by digits (see :func:`join_spectra`);
        default ``"FLUX_"``.
    flux_err_prefix : str or None
        Prefix of the flux-uncertainty columns (same digits; default ``"FLUX_ERR_"``).
        ``None``: no uncertainties (bad pixels are then only those with flux not finite or
        ``<= 0``).
    magnitude_columns : sequence of str, default=MAGNITUDE_COLUMNS
        Magnitude columns (mag) appended to the features.
    magnitude_error_columns : "auto" or sequence of str, default="auto"
        Their 1-sigma errors (mag), for :meth:`transform_err` only; "auto" takes ``<name>_error``
        (Gaia, WISE) or ``<name>_ERR`` (2MASS), whichever exists.
    lsf_columns : sequence of str, default=LSF_COLUMNS
        LSF-moment columns appended to the features.
    flux_range : (float, float), default=(0.01, 1.5)
        Fluxes are clipped to this range before the log (continuum-normalised units).
    max_flux_err : float, default=1.0
        Pixels with a larger flux uncertainty are bad (continuum-normalised units).
    impute : {"median", "continuum"}, default="median"
        Value given to bad pixels' log-flux.
    dtype : numpy dtype, default=numpy.float32
        Output dtype (float32 halves the memory of the 7,514-pixel design matrix).

    Attributes
    ----------
    pixel_columns_ : list of str
        Flux columns used (for array input: ``None``).
    n_pixels_ : int
    impute_values_ : ndarray of shape (``n_pixels_``,)
        Log-flux given to bad pixels.
    impute_err_ : ndarray of shape (``n_pixels_``,)
        Uncertainty of an imputed log-flux.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only with DataFrame input.

    Examples
    --------
    >>> from sklearn_selfcal.datasets import make_survey
    >>> from sklearn_selfcal.parallax import make_parallax_pipeline
    >>> from sklearn_selfcal.parallax_features import (SpectroPhotometricFeatures,
    ...                                                gaia_training_mask, join_spectra)
    >>> s = make_survey(n_stars=300, n_pixels=200, random_state=0)
    >>> table = join_spectra(s.frame, s.spectra, s.spectra_err)[gaia_training_mask(s.frame)]
    >>> features = SpectroPhotometricFeatures().fit(table)
    >>> features.transform(table).shape[1]          # 200 pixels, 8 magnitudes, 5 LSF moments
    213
    >>> model = make_parallax_pipeline().fit(
    ...     table, table["parallax"],
    ...     spectrophotometricparallaxregressor__sigma=table["parallax_error"])
    >>> model.predict(table).shape == (len(table),)
    True
    """

    _parameter_constraints = {
        "flux_prefix": [str],
        "flux_err_prefix": [str, None],
        "magnitude_columns": ["array-like"],
        "magnitude_error_columns": [StrOptions({"auto"}), "array-like"],
        "lsf_columns": ["array-like"],
        "flux_range": [tuple],
        "max_flux_err": [Interval(Real, 0, None, closed="neither")],
        "impute": [StrOptions({"median", "continuum"})],
        "dtype": [Options(type, {np.float32, np.float64})],
    }

    def __init__(self, flux_prefix="FLUX_", flux_err_prefix="FLUX_ERR_", *,
                 magnitude_columns=MAGNITUDE_COLUMNS, magnitude_error_columns="auto",
                 lsf_columns=LSF_COLUMNS, flux_range=(0.01, 1.5), max_flux_err=1.0,
                 impute="median", dtype=np.float32):
        self.flux_prefix = flux_prefix
        self.flux_err_prefix = flux_err_prefix
        self.magnitude_columns = magnitude_columns
        self.magnitude_error_columns = magnitude_error_columns
        self.lsf_columns = lsf_columns
        self.flux_range = flux_range
        self.max_flux_err = max_flux_err
        self.impute = impute
        self.dtype = dtype

    # ------------------------------------------------------------------ input handling
    def _check_flux_range(self):
        # the relation between the two bounds is beyond what _parameter_constraints express
        if len(self.flux_range) != 2 or not 0 < self.flux_range[0] < self.flux_range[1]:
            raise ValueError(f"flux_range must be (low, high) with 0 < low < high, got "
                             f"{self.flux_range}")

    def _catalogue_columns(self):
        return list(self.magnitude_columns) + list(self.lsf_columns)

    def _split(self, X, *, reset):
        """Return (flux, flux_err or None, catalogue block) as arrays; validate names."""
        if isinstance(X, pd.DataFrame):
            if reset:
                self.pixel_columns_ = _pixel_columns(X.columns, self.flux_prefix)
                if not self.pixel_columns_:
                    raise KeyError(f"no pixel flux columns named {self.flux_prefix!r} + digits "
                                   "in X; "
                                   "build the table with join_spectra(frame, spectra, spectra_err)")
                self.n_features_in_ = X.shape[1]
                self.feature_names_in_ = np.asarray(X.columns, dtype=object)
            else:
                check_is_fitted(self)
                if self.pixel_columns_ is None:
                    raise TypeError("fitted on an array; transform needs an array too")
                require_columns(X.columns, self.pixel_columns_, what="SpectroPhotometricFeatures")
            flux = X[self.pixel_columns_].to_numpy()
            err = None
            if self.flux_err_prefix is not None:
                err_cols = [self.flux_err_prefix + c[len(self.flux_prefix):]
                            for c in self.pixel_columns_]
                require_columns(X.columns, err_cols,
                                what="SpectroPhotometricFeatures (flux errors)")
                err = X[err_cols].to_numpy()
            require_columns(X.columns, self._catalogue_columns(), what="SpectroPhotometricFeatures")
            check_numeric_columns(X, [*self.pixel_columns_, *(err_cols if err is not None else []),
                                      *self._catalogue_columns()],
                                  what="SpectroPhotometricFeatures")
            cat = np.column_stack([_finite_column(X, c) for c in self._catalogue_columns()]) \
                if self._catalogue_columns() else np.zeros((len(X), 0))
            return flux, err, cat
        if self._catalogue_columns():
            raise TypeError(
                "SpectroPhotometricFeatures needs a DataFrame with pixel columns and the catalogue "
                f"columns {self._catalogue_columns()} (see join_spectra); an array is only "
                "accepted "
                "with magnitude_columns=() and lsf_columns=() as a block of fluxes")
        flux = validate_data(self, X, reset=reset, ensure_all_finite=False,
                             dtype=[np.float64, np.float32])
        if reset:
            self.pixel_columns_ = None
        return flux, None, np.zeros((flux.shape[0], 0))

    def _bad_pixels(self, flux, err):
        with np.errstate(invalid="ignore"):
            bad = ~(np.isfinite(flux) & (flux > 0))
            if err is not None:
                bad |= ~(np.isfinite(err) & (err <= self.max_flux_err))
        return bad

    def _log_flux(self, flux, err):
        lo, hi = self.flux_range
        bad = self._bad_pixels(flux, err)
        with np.errstate(invalid="ignore", divide="ignore"):
            logf = np.log(np.clip(flux, lo, hi))
        return logf, bad

    # ------------------------------------------------------------------ estimator API
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Find the pixel columns and the per-pixel imputation values.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_stars, n_columns)
            See the module docstring for the layout.
        y : ignored

        Returns
        -------
        self : SpectroPhotometricFeatures
        """
        self._check_flux_range()
        flux, err, _ = self._split(X, reset=True)
        n_pix = flux.shape[1]
        self.n_pixels_ = n_pix
        self.impute_values_ = np.zeros(n_pix)
        self.impute_err_ = np.zeros(n_pix)
        step = max(1, 2**22 // max(1, flux.shape[0]))  # column chunks of ~32 MB
        for start in range(0, n_pix, step):
            cols = slice(start, min(start + step, n_pix))
            logf, bad = self._log_flux(flux[:, cols], None if err is None else err[:, cols])
            logf = np.where(bad, np.nan, logf)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                # pixels bad in every training star get 0 (continuum) and no spread
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(logf, axis=0)
                mad = np.nanmedian(np.abs(logf - med), axis=0)
            med = np.where(np.isfinite(med), med, 0.0)
            mad = np.where(np.isfinite(mad), mad, 0.0)
            if self.impute == "median":
                self.impute_values_[cols] = med
            self.impute_err_[cols] = 1.4826 * mad
        return self

    def transform(self, X):
        """Feature matrix: log pixel fluxes, then magnitudes, then LSF moments.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_stars, n_columns)

        Returns
        -------
        features : ndarray of shape (n_stars, ``n_pixels_`` + n_magnitudes + n_lsf)
            Log-flux (natural log, dimensionless), magnitudes (mag), LSF moments; ``dtype``.
        """
        check_is_fitted(self)
        flux, err, cat = self._split(X, reset=False)
        out = np.empty((flux.shape[0], self.n_pixels_ + cat.shape[1]), dtype=self.dtype)
        for rows in _row_chunks(flux):
            logf, bad = self._log_flux(flux[rows], None if err is None else err[rows])
            out[rows, :self.n_pixels_] = np.where(bad, self.impute_values_[None, :], logf)
        out[:, self.n_pixels_:] = cat
        return out

    def transform_err(self, X):
        """1-sigma uncertainties of the features, aligned with :meth:`transform`'s output.

        Parameters
        ----------
        X : DataFrame
            As for :meth:`transform`, with the flux-error and magnitude-error columns.

        Returns
        -------
        feature_err : ndarray of shape (n_stars, n_features_out)
            ``err / flux`` (log-flux), imputed pixels the training spread, magnitude errors
            (mag), 0 for LSF moments; ``dtype``.
        """
        check_is_fitted(self)
        flux, err, _ = self._split(X, reset=False)
        if err is None:
            raise ValueError("transform_err needs flux uncertainties (flux_err_prefix is None or "
                             "the input is an array)")
        mag_err = self._magnitude_errors(X)
        lo, hi = self.flux_range
        out = np.zeros((flux.shape[0], self.n_pixels_ + len(self._catalogue_columns())),
                       dtype=self.dtype)
        for rows in _row_chunks(flux):
            bad = self._bad_pixels(flux[rows], err[rows])
            with np.errstate(invalid="ignore", divide="ignore"):
                rel = err[rows] / np.clip(flux[rows], lo, hi)
            out[rows, :self.n_pixels_] = np.where(bad, self.impute_err_[None, :], rel)
        out[:, self.n_pixels_:self.n_pixels_ + mag_err.shape[1]] = mag_err
        return out

    def _magnitude_errors(self, X):
        if self.magnitude_error_columns == "auto":
            names = []
            for c in self.magnitude_columns:
                options = [c + "_error", c + "_ERR"]
                found = [o for o in options if o in X.columns]
                names.append(found[0] if found else options[0])
        else:
            names = list(self.magnitude_error_columns)
            if len(names) != len(self.magnitude_columns):
                raise ValueError("magnitude_error_columns must match magnitude_columns one to one")
        require_columns(X.columns, names, what="SpectroPhotometricFeatures (magnitude errors)")
        if not names:
            return np.zeros((len(X), 0))
        return np.column_stack([_finite_column(X, c) for c in names])

    def get_feature_names_out(self, input_features=None):
        """Names of the output features.

        Returns
        -------
        names : ndarray of str
            ``LOGFLUX_<suffix>`` per pixel (the flux column's digits, or the pixel index), then
            the magnitude and LSF column names.
        """
        check_is_fitted(self)
        if self.pixel_columns_ is None:
            width = max(4, len(str(self.n_pixels_ - 1)))
            pix = [f"{PIXEL_FEATURE_PREFIX}{i:0{width}d}" for i in range(self.n_pixels_)]
        else:
            pix = [PIXEL_FEATURE_PREFIX + c[len(self.flux_prefix):] for c in self.pixel_columns_]
        return np.asarray(pix + self._catalogue_columns(), dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True      # bad pixels (NaN flux) are imputed
        tags.transformer_tags.preserves_dtype = []  # the output dtype is the `dtype` parameter
        return tags


def _row_chunks(a, chunk_bytes=64 * 2**20):
    step = max(1, chunk_bytes // (8 * max(1, a.shape[1])))
    for start in range(0, a.shape[0], step):
        yield slice(start, min(start + step, a.shape[0]))


def _finite_column(X, name):
    check_numeric_columns(X, [name], what="SpectroPhotometricFeatures")
    values = pd.to_numeric(X[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"column {name!r} must be finite (the parallax model needs complete photometry and "
            f"LSF moments); {rows.size} value(s) are not, e.g. rows {rows[:5].tolist()}; select "
            "stars with gaia_training_mask (its 'complete_photometry' cut)")
    return values


# ------------------------------------------------------------------------------------------
# training-set quality cuts
# ------------------------------------------------------------------------------------------
def gaia_training_cuts(X, *, min_parallax_over_error=None, min_visibility_periods=8,
                       chi2_factor=1.2, magnitude_columns=MAGNITUDE_COLUMNS):
    """Astrometric and photometric quality cuts for the parallax model's training stars.

    One boolean column per cut (True = keep):

    - ``"finite_parallax"``: ``parallax`` finite and ``parallax_error`` finite and > 0 (mas).
      Negative parallaxes are kept: they carry information and removing them biases the model
      towards nearby stars (Hogg et al. 2019; section 5 of the paper).
    - ``"parallax_over_error"`` (only if ``min_parallax_over_error`` is given):
      ``parallax / parallax_error > min_parallax_over_error``. Off by default: the model needs no
      parallax signal-to-noise cut, and such a cut biases the training set.
    - ``"visibility_periods"``: ``visibility_periods_used >= min_visibility_periods`` (8 in
      Lindegren et al. 2018).
    - ``"astrometric_chi2"``: the unit-weight-error cut of Lindegren et al. (2018, eq. C.1),
      ``sqrt(astrometric_chi2_al / (astrometric_n_good_obs_al - 5)) < chi2_factor *
      max(1, exp(-0.2 (phot_g_mean_mag - 19.5)))``; with ``chi2_factor = 1.2`` this is
      ``chi2 / (n - 5) < 1.44 max(1, exp(-0.4 (G - 19.5)))``.
    - ``"complete_photometry"``: every magnitude column finite (the paper requires complete
      photometry).

    Parameters
    ----------
    X : DataFrame
        Catalogue with the Gaia columns named above (Gaia archive spelling) and the magnitudes.
    min_parallax_over_error : float, optional
    min_visibility_periods : int, default=8
    chi2_factor : float, default=1.2
    magnitude_columns : sequence of str, default=MAGNITUDE_COLUMNS

    Returns
    -------
    cuts : DataFrame of bool
        Index of ``X``; ``cuts.attrs["conditions"]`` holds readable conditions, so that
        :func:`sklearn_selfcal.selection.cut_counts` can tabulate how many stars each removes.

    Raises
    ------
    KeyError
        Naming the columns absent from ``X``.
    """
    needed = ["parallax", "parallax_error", "visibility_periods_used", "astrometric_chi2_al",
              "astrometric_n_good_obs_al", "phot_g_mean_mag", *magnitude_columns]
    require_columns(X.columns, list(dict.fromkeys(needed)), what="gaia_training_cuts")

    def col(name):
        return pd.to_numeric(X[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)

    plx, plx_err = col("parallax"), col("parallax_error")
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        cuts = {"finite_parallax": np.isfinite(plx) & np.isfinite(plx_err) & (plx_err > 0)}
        conditions = {"finite_parallax": "parallax finite, parallax_error finite and > 0"}
        if min_parallax_over_error is not None:
            cuts["parallax_over_error"] = plx / plx_err > min_parallax_over_error
            conditions["parallax_over_error"] = (
                f"parallax/parallax_error > {min_parallax_over_error:g}")
        cuts["visibility_periods"] = col("visibility_periods_used") >= min_visibility_periods
        conditions["visibility_periods"] = f"visibility_periods_used >= {min_visibility_periods}"
        uwe = np.sqrt(col("astrometric_chi2_al") / (col("astrometric_n_good_obs_al") - 5.0))
        g = col("phot_g_mean_mag")
        cuts["astrometric_chi2"] = uwe < chi2_factor * np.maximum(1.0, np.exp(-0.2 * (g - 19.5)))
        conditions["astrometric_chi2"] = ("sqrt(astrometric_chi2_al/(astrometric_n_good_obs_al-5))"
                                          " "
                                          f"< {chi2_factor:g} max(1, exp(-0.2 (G - 19.5)))")
        cuts["complete_photometry"] = np.all(
            np.column_stack([np.isfinite(col(c)) for c in magnitude_columns]), axis=1)
        conditions["complete_photometry"] = "all of " + ", ".join(magnitude_columns) + " finite"
    out = pd.DataFrame(cuts, index=X.index)
    out.attrs["conditions"] = conditions
    return out


def gaia_training_mask(X, **kwargs):
    """Stars passing every cut of :func:`gaia_training_cuts` (same keyword arguments).

    Returns
    -------
    mask : ndarray of bool of shape (n_stars,)
    """
    return gaia_training_cuts(X, **kwargs).to_numpy().all(axis=1)
