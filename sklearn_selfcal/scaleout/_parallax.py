"""The parallax model fitted where the spectra live: a row-chunked ``dask.array`` of features.

The solver (:func:`~sklearn_selfcal._kernels.explinear_l1.solve_gauss_newton`) touches the big
feature matrix only through four passes over its rows: ``X b`` (linear predictor), ``X^T v``
(gradient), gathering the working-set columns, and the projected Gram matrix of those columns.
:class:`DaskRowBlocks` implements the four on a ``dask.array`` whose row chunks stay on the
workers: every chunk runs the in-memory kernel on its rows, and the p-vectors and the
working-set Gram matrices are summed by a tree on the workers. The solver's n-vectors (linear
predictor, weights, the unpenalised block of magnitudes and LSF moments, 8 bytes x 14 per star)
stay on the client; only they and the small matrices cross the network.
"""

import numpy as np

from .._kernels import explinear_l1 as _kernel
from .._kernels.explinear_l1 import RowBlockOperator
from ._reduce import SPLIT_EVERY, tree_reduce

__all__ = ["DaskRowBlocks", "features_to_dask_array", "fit_parallax_distributed"]


def _add_arrays(parts):
    """Sum of a list of arrays or of tuples of arrays."""
    if isinstance(parts[0], tuple):
        return tuple(sum(items[1:], items[0]) for items in zip(*parts))
    return sum(parts[1:], parts[0])


def _take(block, cols):
    return np.ascontiguousarray(block[:, cols])


class DaskRowBlocks(RowBlockOperator):
    """A row-chunked ``dask.array`` as the parallax solver's feature matrix.

    Parameters
    ----------
    X : dask.array.Array of shape (n_stars, n_features)
        Features (float32 or float64), chunked along rows only (columns are rechunked into one
        chunk if needed). Persist it (``X.persist()``) so that the passes do not recompute it.
    client : dask.distributed.Client, optional
        Computes on it; without one, Dask's current scheduler.
    split_every : int, default=8
        Row blocks summed per task of the reduction trees.
    feature_names : array-like of str of shape (n_features,), optional
        Names of the columns; the regressor's fit reads them as it reads a DataFrame's columns.

    Notes
    -----
    Gathered working-set columns are persisted on the workers (the distributed counterpart of
    the in-memory solver's contiguous copy).
    """

    def __init__(self, X, *, client=None, split_every=SPLIT_EVERY, feature_names=None):
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D, got shape {X.shape}")
        if len(X.chunks[1]) > 1:
            X = X.rechunk({1: -1})
        if any(np.isnan(c) for c in X.chunks[0]):
            X.compute_chunk_sizes()
        self.X = X
        self.shape = tuple(int(d) for d in X.shape)
        self.dtype = np.dtype(X.dtype)
        self.client = client
        self.split_every = split_every
        self.feature_names = feature_names
        if feature_names is not None and len(feature_names) != self.shape[1]:
            raise ValueError(f"{len(feature_names)} feature_names for {self.shape[1]} columns")
        self.blocks = list(X.to_delayed().ravel())
        self.bounds = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(int)

    def _split(self, v):
        """``v`` (n_stars, ...) cut into the row chunks of X."""
        return [v[a:b] for a, b in zip(self.bounds[:-1], self.bounds[1:])]

    def _each(self, func, *vectors):
        """``func(block, *vector slices)`` for every row chunk, as delayed values."""
        pieces = [self._split(np.asarray(v)) for v in vectors]
        return [_delayed(func, block, *(p[i] for p in pieces))
                for i, block in enumerate(self.blocks)]

    def _compute(self, values):
        import dask

        if self.client is not None:
            return self.client.gather(self.client.compute(values))
        return dask.compute(*values)

    def _sum(self, func, *vectors):
        """Tree sum over the row chunks of ``func(block, *vector slices)``."""
        return tree_reduce(self._each(func, *vectors), lambda x: x, _add_arrays,
                           client=self.client, split_every=self.split_every)

    def matvec(self, cols, coef):
        """``X[:, cols] @ coef`` in float64, computed on every row chunk and gathered.

        Parameters
        ----------
        cols : ndarray of int or None
            Columns used (``None``: all).
        coef : ndarray
            Their coefficients.

        Returns
        -------
        product : ndarray of shape (n_stars,)
            The linear predictor's part from these columns.
        """
        if cols is not None and len(cols) == 0:
            return np.zeros(self.shape[0])
        out = self._compute([_delayed(_kernel.matvec, b, cols, coef) for b in self.blocks])
        return np.concatenate(out)

    def rmatvec(self, v):
        """``X.T @ v`` in float64, summed over the row chunks by a tree on the workers.

        Parameters
        ----------
        v : ndarray of shape (n_stars,)
            One value per row (star).

        Returns
        -------
        product : ndarray of shape (n_features,)
            One value per column (feature).
        """
        return self._sum(_kernel.rmatvec, np.asarray(v, dtype=np.float64))

    def take_columns(self, cols):
        """The columns ``cols``, gathered and persisted on the workers.

        Parameters
        ----------
        cols : ndarray of int
            Column indices.

        Returns
        -------
        columns : DaskRowBlocks of shape (n_stars, len(cols))
            The working set, with the row chunks of ``X``.
        """
        cols = np.asarray(cols, dtype=np.intp)
        gathered = self.X.map_blocks(_take, cols, chunks=(self.X.chunks[0], (cols.size,)),
                                     dtype=self.X.dtype)
        gathered = (self.client.persist(gathered) if self.client is not None
                    else gathered.persist())
        return DaskRowBlocks(gathered, client=self.client, split_every=self.split_every)

    def projected_gram(self, s, inv_w, bz, rt, Q):
        """The Newton step's Gram pass, summed over the row chunks.

        Parameters
        ----------
        s : ndarray of shape (n_stars,)
            Row weights (square roots of the curvatures).
        inv_w : ndarray of shape (n_columns,)
            Column scales (inverse penalty weights).
        bz, rt : ndarray of shape (n_stars,)
            Weighted working response and weighted gradient factors.
        Q : ndarray of shape (n_stars, q)
            Orthonormal basis of the row-weighted unpenalised block.

        Returns
        -------
        G : ndarray of shape (n_columns, n_columns)
            ``Z^T Z`` (Fortran order; its upper triangle is meaningful).
        zb : ndarray of shape (n_columns,)
            ``Z^T bz``.
        gz : ndarray of shape (n_columns,)
            ``Z^T rt``.
        C : ndarray of shape (q, n_columns)
            ``Q^T Z``.
        """
        def block_gram(block, s_b, bz_b, rt_b, Q_b):
            return _kernel.projected_gram(block, s_b, inv_w, bz_b, rt_b, Q_b)

        G, zb, gz, C = self._sum(block_gram, s, bz, rt, Q)
        return np.asfortranarray(G), zb, gz, C

    def columns(self, cols):
        """``X[:, cols]`` as an in-memory float64 array (e.g. the unpenalised block).

        Parameters
        ----------
        cols : ndarray of int
            Column indices.

        Returns
        -------
        columns : ndarray of shape (n_stars, len(cols))
            Their values, in memory on the client.
        """
        cols = np.asarray(cols, dtype=np.intp)
        parts = self._compute([_delayed(_take, b, cols) for b in self.blocks])
        return np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, cols.size))

    def nonfinite_columns(self):
        """Indices of the columns holding a NaN or an infinity (one pass).

        Returns
        -------
        columns : ndarray of int
            Indices of the columns with a non-finite value.
        """
        import dask.array as da

        return np.flatnonzero(self._compute([~da.isfinite(self.X).all(axis=0)])[0])


def _delayed(func, *args):
    """``func(*args)`` as a pure ``dask.delayed`` value."""
    import dask

    return dask.delayed(func, pure=True)(*args)


def features_to_dask_array(features, ddf, *, persist=True, client=None):
    """Apply a fitted feature step to every partition of a Dask DataFrame: a row-chunked array.

    Parameters
    ----------
    features : fitted transformer
        E.g. :class:`~sklearn_selfcal.parallax_features.SpectroPhotometricFeatures` fitted on the
        training stars (its pixel medians are fixed by that fit); applied row by row.
    ddf : dask.dataframe.DataFrame
        The stars, with spectra columns (:class:`~sklearn_selfcal.spectra.SpectraArray`, file
        backed or in memory) and the catalogue columns the features read.
    persist : bool, default=True
        Keep the feature matrix in the workers' memory (the solver passes over it many times).
    client : dask.distributed.Client, optional
        Persists on it; without one, Dask's current scheduler.

    Returns
    -------
    X : dask.array.Array of shape (n_stars, n_features)
        One row chunk per partition (float32 for the default features).
    names : ndarray of str
        ``features.get_feature_names_out()``.
    """
    import dask
    import dask.array as da

    names = np.asarray(features.get_feature_names_out(), dtype=object)
    sizes = ddf.map_partitions(len).compute()
    parts = ddf.to_delayed()
    probe = np.asarray(features.transform(ddf.head(2, npartitions=-1)))
    blocks = [da.from_delayed(dask.delayed(_transform_array, pure=True)(features, p),
                              shape=(int(n), names.size), dtype=probe.dtype)
              for p, n in zip(parts, sizes)]
    X = da.concatenate(blocks, axis=0)
    if persist:
        X = client.persist(X) if client is not None else X.persist()
    return X, names


def _transform_array(features, part):
    return np.asarray(features.transform(part))


def fit_parallax_distributed(regressor, X, y, parallax_error=None, *, sample_weight=None,
                             feature_names=None, client=None, split_every=SPLIT_EVERY):
    """Fit a :class:`~sklearn_selfcal.SpectroPhotometricParallaxRegressor` on a ``dask.array``.

    The regressor's own ``fit``, given the features as a row-block operator
    (:class:`DaskRowBlocks`), runs on the client with the feature matrix staying on the workers:
    every pass over its rows (linear predictor, gradient, working-set columns and their Gram
    matrix) is a Dask computation over its row chunks. The result is the in-memory fit's: the same objective,
    steps and stopping rule, with sums over rows taken in another order (rounding). The two paths
    take the same iterations and agree on the coefficients to a few 1e-12 of the largest one
    (``tol=1e-8``, measured in ``tests/test_scaleout.py``).

    Parameters
    ----------
    regressor : SpectroPhotometricParallaxRegressor
        Its parameters (``alpha``, ``penalized``, ``tol``, ``warm_start``, ...) define the fit;
        it is fitted in place and returned.
    X : dask.array.Array or DaskRowBlocks of shape (n_stars, n_features)
        Features of the training stars, chunked by rows (:func:`features_to_dask_array`).
    y : array-like of shape (n_stars,)
        Observed Gaia parallaxes (mas); a dask array or series is computed.
    parallax_error : array-like of shape (n_stars,), optional
        Their uncertainties (mas).
    sample_weight : array-like of shape (n_stars,), optional
        Non-negative weights of the stars' chi-squared terms.
    feature_names : array-like of str, optional
        Names of the features (``penalized="auto"`` and names in ``penalized`` need them); for a
        ``DaskRowBlocks`` give them to it instead.
    client : dask.distributed.Client, optional
        Computes on it; without one, Dask's current scheduler.
    split_every : int, default=8
        Row chunks summed per task of the reduction trees.

    Returns
    -------
    regressor : SpectroPhotometricParallaxRegressor
        Fitted (``coef_``, ``intercept_``, ``penalized_``, ``n_iter_``, ``kkt_residual_``,
        ``objective_``, ``n_features_in_``, ``feature_names_in_``).
    """
    if not isinstance(X, DaskRowBlocks):
        X = DaskRowBlocks(X, client=client, split_every=split_every, feature_names=feature_names)
    elif feature_names is not None:
        raise ValueError("X is a DaskRowBlocks: give it the feature_names")
    return regressor.fit(X, _local(y), _local(parallax_error), _local(sample_weight))


def _local(values):
    """A numpy array of ``values`` (computing a Dask collection), or None."""
    if values is None:
        return None
    if hasattr(values, "compute"):
        values = values.compute()
    return np.asarray(values, dtype=np.float64)
