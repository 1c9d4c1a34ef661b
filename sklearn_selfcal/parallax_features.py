"""Features of the spectro-photometric parallax model (section 3.1) and its training-set cuts.

:class:`SpectroPhotometricFeatures` turns a catalogue joined with spectra into the paper's feature
vector: the log of every continuum-normalised spectral pixel, the eight Gaia / 2MASS / WISE
magnitudes and the five LSF moments. It is the first step of the model,
``make_pipeline(SpectroPhotometricFeatures(), SpectroPhotometricParallaxRegressor())``.

Input layout (one table per star, as the end-to-end pipeline carries it): a DataFrame holding the
catalogue columns plus two spectra columns, ``FLUX`` (continuum-normalised flux) and ``FLUX_ERR``
(its 1-sigma uncertainty), each a :class:`~sklearn_selfcal.spectra.SpectraArray` whose rows are
the stars' spectra, backed by one 2-D array in memory or on disk
(:func:`~sklearn_selfcal.spectra.join_spectra` builds the table). The pixels are read in row
blocks, so neither row selection nor the features ever hold more than the output plus a block
of raw spectra. A table with one column per pixel (``FLUX_0000 ... FLUX_7513``, ``FLUX_ERR_0000
...``) is still accepted: its pixel columns are gathered into one array first (a copy). A plain
array is accepted only as a block of fluxes, when no magnitude or LSF columns are configured.

:func:`~sklearn_selfcal.selection.gaia_training_cuts` /
:func:`~sklearn_selfcal.selection.gaia_training_mask` (the astrometric quality cuts of the
training set) live with the paper's other cuts in :mod:`sklearn_selfcal.selection` and are
re-exported here.
"""

import os
import re
import tempfile
from numbers import Real

import numpy as np
import pandas as pd
from sklearn import get_config
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._kernels.column_median import nanmedian_mad_columns
from ._validation import (check_numeric_columns, clean_column, estimator_input, require_columns,
                          warn_empty_rows)
from ._paper import LSF_COLUMNS, MAGNITUDE_COLUMNS
from .selection import gaia_training_cuts, gaia_training_mask  # the section 3 cuts live there
from .spectra import SpectraArray, join_spectra

__all__ = [
    "MAGNITUDE_COLUMNS",
    "LSF_COLUMNS",
    "PIXEL_FEATURE_PREFIX",
    "SpectroPhotometricFeatures",
    "join_spectra",
    "gaia_training_cuts",
    "gaia_training_mask",
]

#: Output names of the pixel features are this prefix plus the pixel number.
PIXEL_FEATURE_PREFIX = "LOGFLUX_"
#: Robust standard deviation from the median absolute deviation of a normal law.
_MAD_TO_SIGMA = 1.4826


def _pixel_columns(columns, prefix):
    pattern = re.compile(re.escape(prefix) + r"(\d+)$")
    return [c for c in columns if isinstance(c, str) and pattern.match(c)]


def _spectra_column(X, name, *, what, required=True):
    """The SpectraArray of column ``name`` of ``X``, or one gathered from ``name_<digits>`` columns."""
    if name in X.columns:
        array = X[name].array
        if not isinstance(array, SpectraArray):
            raise TypeError(f"{what}: column {name!r} must hold spectra (a SpectraArray column, see "
                            f"join_spectra), got dtype {X[name].dtype}")
        return array
    legacy = _pixel_columns(X.columns, name + "_")
    if legacy:     # one column per pixel: gathered once (a copy)
        check_numeric_columns(X, legacy, what=what)
        return SpectraArray(X[legacy].to_numpy())
    if not required:
        return None
    raise KeyError(f"{what}: no spectra column {name!r} (nor pixel columns {name}_0000, ...) in X; "
                   "build the table with join_spectra(frame, spectra, spectra_err)")


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
    magnitude errors, and 0 for the LSF moments. :meth:`transform_with_err` returns both in one
    pass over the spectra.

    Parameters
    ----------
    flux_column : str, default="FLUX"
        Column of the flux spectra (a :class:`~sklearn_selfcal.spectra.SpectraArray`, see
        :func:`~sklearn_selfcal.spectra.join_spectra`); without it, the columns
        ``<flux_column>_<digits>`` (one per pixel) are used.
    flux_err_column : str or None, default="FLUX_ERR"
        Column of their uncertainties (or ``<flux_err_column>_<digits>``). ``None``: no
        uncertainties (bad pixels are then only those with flux not finite or ``<= 0``).
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
    scratch_dir : str, path-like or None, default=None
        Folder in which the outputs of ``fit_transform``, ``transform`` and
        ``transform_with_err`` are written as memory-mapped files (deleted as soon as they are
        created: they vanish with the arrays). Their pages are then file-backed and the system can
        reclaim them, so the anonymous memory of the parallax stage grows with the number of stars
        times the solver's working set (a few hundred columns) rather than times the number of
        pixels. None: outputs in memory.

    Attributes
    ----------
    n_pixels_ : int
    impute_values_ : ndarray of shape (``n_pixels_``,)
        Log-flux given to bad pixels.
    impute_err_ : ndarray of shape (``n_pixels_``,)
        Uncertainty of an imputed log-flux.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only with DataFrame input.

    Notes
    -----
    Memory: :meth:`fit_transform`, :meth:`transform` and :meth:`transform_with_err` hold their
    output and one block of raw spectra (4 MB); :meth:`fit` alone holds the log-fluxes of as many
    pixels as fit in scikit-learn's ``working_memory`` (``sklearn.set_config``) and reads the
    spectra once per such group of pixels.

    Examples
    --------
    >>> from sklearn_selfcal.datasets import make_survey
    >>> from sklearn_selfcal.parallax import make_parallax_pipeline
    >>> from sklearn_selfcal.parallax_features import (SpectroPhotometricFeatures,
    ...                                                gaia_training_mask, join_spectra)
    >>> s = make_survey(n_stars=300, n_pixels=200, random_state=1)  # every star has a spectrum
    >>> table = join_spectra(s.frame, s.spectra, s.spectra_err)[gaia_training_mask(s.frame)]
    >>> features = SpectroPhotometricFeatures().fit(table)
    >>> features.transform(table).shape[1]          # 200 pixels, 8 magnitudes, 5 LSF moments
    213
    >>> model = make_parallax_pipeline().fit(
    ...     table, table["parallax"],
    ...     spectrophotometricparallaxregressor__parallax_error=table["parallax_error"])
    >>> model.predict(table).shape == (len(table),)
    True
    """

    _parameter_constraints = {
        "flux_column": [str],
        "flux_err_column": [str, None],
        "magnitude_columns": ["array-like"],
        "magnitude_error_columns": [StrOptions({"auto"}), "array-like"],
        "lsf_columns": ["array-like"],
        "flux_range": [tuple],
        "max_flux_err": [Interval(Real, 0, None, closed="neither")],
        "impute": [StrOptions({"median", "continuum"})],
        "dtype": [Options(type, {np.float32, np.float64})],
        "scratch_dir": [str, HasMethods(["__fspath__"]), None],
    }

    def __init__(self, flux_column="FLUX", flux_err_column="FLUX_ERR", *,
                 magnitude_columns=MAGNITUDE_COLUMNS, magnitude_error_columns="auto",
                 lsf_columns=LSF_COLUMNS, flux_range=(0.01, 1.5), max_flux_err=1.0,
                 impute="median", dtype=np.float32, scratch_dir=None):
        self.flux_column = flux_column
        self.flux_err_column = flux_err_column
        self.magnitude_columns = magnitude_columns
        self.magnitude_error_columns = magnitude_error_columns
        self.lsf_columns = lsf_columns
        self.flux_range = flux_range
        self.max_flux_err = max_flux_err
        self.impute = impute
        self.dtype = dtype
        self.scratch_dir = scratch_dir

    # ------------------------------------------------------------------ input handling
    def _check_flux_range(self):
        # the relation between the two bounds is beyond what _parameter_constraints express
        if len(self.flux_range) != 2 or not 0 < self.flux_range[0] < self.flux_range[1]:
            raise ValueError(f"flux_range must be (low, high) with 0 < low < high, got "
                             f"{self.flux_range}")

    def _catalogue_columns(self):
        return list(self.magnitude_columns) + list(self.lsf_columns)

    def _inputs(self, X, *, reset):
        """(flux SpectraArray, flux-error SpectraArray or None, catalogue block); checks names."""
        what = type(self).__name__
        X = estimator_input(X, what, min_rows=1 if reset else 0)
        if isinstance(X, pd.DataFrame):
            if not reset:
                check_is_fitted(self)
            flux = _spectra_column(X, self.flux_column, what=what)
            err = None
            if self.flux_err_column is not None:
                err = _spectra_column(X, self.flux_err_column, what=f"{what} (flux errors)")
                if err.n_pixels != flux.n_pixels:
                    raise ValueError(f"{what}: {self.flux_err_column!r} has {err.n_pixels} pixels, "
                                     f"{self.flux_column!r} {flux.n_pixels}")
            require_columns(X.columns, self._catalogue_columns(), what=what)
            cat = (np.column_stack([_finite_column(X, c) for c in self._catalogue_columns()])
                   if self._catalogue_columns() else np.zeros((len(X), 0)))
            if reset:
                self.n_features_in_ = X.shape[1]
                self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        elif self._catalogue_columns():
            raise TypeError(
                f"{what} needs a DataFrame with spectra and the catalogue columns "
                f"{self._catalogue_columns()} (see join_spectra); an array is only accepted with "
                "magnitude_columns=() and lsf_columns=() as a block of fluxes")
        else:
            values = validate_data(self, X, reset=reset, ensure_all_finite=False,
                                   dtype=[np.float64, np.float32])
            flux, err, cat = SpectraArray(values), None, np.zeros((values.shape[0], 0))
        if not reset and flux.n_pixels != self.n_pixels_:
            raise ValueError(f"{what}: X has spectra of {flux.n_pixels} pixels; fitted on "
                             f"{self.n_pixels_}")
        return flux, err, cat

    def _new_output(self, shape):
        """An empty output array: in memory, or a memory-mapped file in ``scratch_dir``."""
        if self.scratch_dir is None:
            return np.empty(shape, dtype=self.dtype)
        fd, path = tempfile.mkstemp(suffix=".npy", prefix="features-", dir=self.scratch_dir)
        os.close(fd)
        try:
            return np.lib.format.open_memmap(path, mode="w+", dtype=self.dtype, shape=shape)
        finally:
            os.unlink(path)      # the mapping keeps the data until the array is freed

    def _blocks(self, flux, err, out=None, out_err=None, warn=True):
        """Per block of stars: (rows, log-flux, bad-pixel mask, relative flux error or None).

        The log-fluxes (bad pixels not yet replaced) are written into ``out[rows, :n_pixels]``
        and the relative errors into ``out_err[rows, :n_pixels]`` when given (no intermediate
        copies); the yielded arrays are those views, or fresh blocks otherwise.
        """
        lo, hi = self.flux_range
        n_pix = flux.n_pixels
        err_blocks = err.iter_blocks() if err is not None else None
        empty = []
        for rows, f in flux.iter_blocks():
            e = next(err_blocks)[1] if err_blocks is not None else None
            with np.errstate(invalid="ignore", divide="ignore"):
                good = f > 0                      # False for NaN too
                good &= f < np.inf
                if e is not None:
                    good &= e <= self.max_flux_err
                    good &= e > -np.inf
                bad = np.logical_not(good, out=good)
                logf = np.clip(f, lo, hi, out=None if out is None else out[rows, :n_pix])
                rel = None
                if e is not None and out_err is not None:
                    rel = np.divide(e, logf, out=out_err[rows, :n_pix])
                np.log(logf, out=logf)
            empty.append(rows.start + np.flatnonzero(bad.all(axis=1)))
            yield rows, logf, bad, rel
        if warn:
            warn_empty_rows(np.concatenate([[], *empty]), self.flux_column, "have no good pixel: every "
                            f"pixel imputed ({self.impute!r})")

    def _impute(self, logf_nan):
        """Per-pixel median and robust spread of the finite log-fluxes (float64), in place of none."""
        med, mad = nanmedian_mad_columns(logf_nan)
        # pixels bad in every training star get 0 (the continuum) and no spread
        med = np.where(np.isfinite(med), med, 0.0)
        mad = np.where(np.isfinite(mad), mad, 0.0)
        return (med if self.impute == "median" else np.zeros_like(med)), _MAD_TO_SIGMA * mad

    def _fill_bad(self, pixels):
        """Replace the NaN of ``pixels`` (a view of the output) by ``impute_values_``, in place."""
        for rows in _row_chunks(pixels):
            block = pixels[rows]
            np.copyto(block, self.impute_values_.astype(block.dtype)[None, :],
                      where=np.isnan(block))

    # ------------------------------------------------------------------ estimator API
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Find the per-pixel imputation values from the training stars.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_stars, n_columns)
            The training stars: spectra columns and magnitude (mag) and LSF columns; see the
            module docstring for the layout.
        y : None
            Ignored; present for scikit-learn's API.

        Returns
        -------
        self : SpectroPhotometricFeatures
            The fitted transformer (``n_pixels_``, ``impute_values_``, ``impute_err_``).
        """
        self._check_flux_range()
        flux, err, _ = self._inputs(X, reset=True)
        n, n_pix = len(flux), flux.n_pixels
        self.n_pixels_ = n_pix
        self.impute_values_ = np.zeros(n_pix)
        self.impute_err_ = np.zeros(n_pix)
        # as many pixels at once as fit in the working memory: one pass over the spectra each
        group = max(1, int(get_config()["working_memory"] * 2**20) // (4 * max(n, 1)))
        for start in range(0, n_pix, group):
            cols = slice(start, min(start + group, n_pix))
            logf = np.empty((n, cols.stop - cols.start), dtype=np.float32)
            for rows, block, bad, _ in self._blocks(flux, err, warn=start == 0):
                block[bad] = np.nan
                logf[rows] = block[:, cols]
            self.impute_values_[cols], self.impute_err_[cols] = self._impute(logf)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None, **fit_params):
        """Fit, then transform, reading the spectra once.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_stars, n_columns)
            The training stars: spectra columns and magnitude (mag) and LSF columns; see the
            module docstring for the layout.
        y : None
            Ignored; present for scikit-learn's API.
        **fit_params : dict
            Ignored; accepted for scikit-learn's ``fit_transform`` signature.

        Returns
        -------
        features : ndarray of shape (n_stars, ``n_pixels_`` + n_magnitudes + n_lsf)
            As :meth:`transform` returns for ``X`` after :meth:`fit` on ``X``.
        """
        self._check_flux_range()
        flux, err, cat = self._inputs(X, reset=True)
        n_pix = self.n_pixels_ = flux.n_pixels
        out = self._new_output((len(flux), n_pix + cat.shape[1]))
        for _, logf, bad, _ in self._blocks(flux, err, out):   # log-fluxes, NaN at bad pixels
            logf[bad] = np.nan
        self.impute_values_ = np.zeros(n_pix)
        self.impute_err_ = np.zeros(n_pix)
        step = max(1, int(get_config()["working_memory"] * 2**20) // (8 * max(len(flux), 1)))
        for start in range(0, n_pix, step):   # medians over pixel groups of the output itself
            cols = slice(start, min(start + step, n_pix))
            self.impute_values_[cols], self.impute_err_[cols] = self._impute(out[:, cols])
        self._fill_bad(out[:, :n_pix])
        out[:, n_pix:] = cat
        return out

    def transform(self, X):
        """Feature matrix: log pixel fluxes, then magnitudes, then LSF moments.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_stars, n_columns)
            Spectra columns and magnitude (mag) and LSF columns, as in :meth:`fit`.

        Returns
        -------
        features : ndarray of shape (n_stars, ``n_pixels_`` + n_magnitudes + n_lsf)
            Log-flux (natural log, dimensionless), magnitudes (mag), LSF moments; ``dtype``.
        """
        return self._transform(X, features=True, errors=False)[0]

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
        return self._transform(X, features=False, errors=True)[1]

    def transform_with_err(self, X):
        """:meth:`transform` and :meth:`transform_err` in one pass over the spectra.

        Parameters
        ----------
        X : DataFrame
            As for :meth:`transform`, with the flux-error and magnitude-error (mag) columns.

        Returns
        -------
        features, feature_err : ndarray of shape (n_stars, n_features_out)
            The outputs of :meth:`transform` and :meth:`transform_err`; ``dtype``.
        """
        return self._transform(X, features=True, errors=True)

    def _transform(self, X, *, features, errors):
        check_is_fitted(self)
        flux, err, cat = self._inputs(X, reset=False)
        if errors and err is None:
            raise ValueError("transform_err needs flux uncertainties (flux_err_column is None or "
                             "the input is an array)")
        n_pix, shape = self.n_pixels_, (len(flux), self.n_pixels_ + cat.shape[1])
        out = self._new_output(shape) if features else None
        out_err = self._new_output(shape) if errors else None
        impute_values = self.impute_values_.astype(self.dtype)
        impute_err = self.impute_err_.astype(self.dtype)
        for _, logf, bad, rel in self._blocks(flux, err, out, out_err):
            if features:
                np.copyto(logf, impute_values[None, :], where=bad)
            if errors:
                np.copyto(rel, impute_err[None, :], where=bad)
        if features:
            out[:, n_pix:] = cat
        if errors:
            mag_err = self._magnitude_errors(X)
            out_err[:, n_pix:] = 0.0
            out_err[:, n_pix:n_pix + mag_err.shape[1]] = mag_err
        return out, out_err

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

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored: the output names depend only on the fitted number of pixels and the
            configured magnitude and LSF columns.

        Returns
        -------
        names : ndarray of str
            ``LOGFLUX_<pixel number>`` per pixel (``0000``, ``0001``, ...), then the magnitude and
            LSF column names.
        """
        check_is_fitted(self)
        width = max(4, len(str(self.n_pixels_ - 1)))
        pix = [f"{PIXEL_FEATURE_PREFIX}{i:0{width}d}" for i in range(self.n_pixels_)]
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
    return clean_column(X[name], name, what="SpectroPhotometricFeatures", finite=True, ranges=False,
                        hint=": the parallax model needs complete photometry and LSF moments; "
                        "select stars with gaia_training_mask (its 'complete_photometry' cut)")
