"""The calibrator's fit summed over the partitions of a Dask DataFrame."""

from __future__ import annotations

import functools

from ._reduce import SPLIT_EVERY, first_rows, tree_reduce

__all__ = ["fit_calibrator_distributed"]


def fit_calibrator_distributed(calibrator, ddf, *, client=None, split_every=SPLIT_EVERY):
    """Fit a :class:`~sklearn_selfcal.NuisanceCalibrator` on a Dask DataFrame, partition by partition.

    The fit is the in-memory one (:meth:`~sklearn_selfcal.NuisanceCalibrator.fit_partitioned`,
    the same code as ``fit``) with every pass over the rows run on the partitions and reduced by
    sums on the workers:

    1. a summary of every partition (row counts, categories and their counts among the training
       rows, count / mean / squared deviations of the continuous values, merged exactly), which
       fixes the categories, the references and the centring and scaling of the polynomial terms;
    2. the normal equations of every partition, summed and solved on the client (a few D x D
       systems);
    3. the weighted chi-square and the sandwich covariance's meat at the solution, summed.

    The training filter is applied in every partition (a callable filter must therefore work row
    by row). A median reference (``nuisance_reference=None`` for a continuous nuisance) and
    spline knots placed at quantiles gather the training values of that one column on the
    client (8 bytes per training star, one more pass); give them explicitly to avoid it. Every
    pass reads the partitions again: ``ddf.persist()`` first if the columns fit in the cluster's
    memory.

    Parameters
    ----------
    calibrator : NuisanceCalibrator
        Its parameters define the model; it is fitted in place and returned.
    ddf : dask.dataframe.DataFrame
        The catalogue (every column the calibrator reads: orbit features in kpc km/s, nuisances,
        abundances and uncertainties in dex, the training filter's columns).
    client : dask.distributed.Client, optional
        Computes on it; without one, Dask's current scheduler.
    split_every : int, default=8
        Partition results combined per task of the reduction tree.

    Returns
    -------
    calibrator : NuisanceCalibrator
        Fitted: the same state as ``calibrator.fit(ddf.compute())`` (``coef_``, ``coef_cov_``,
        ``n_stars_``, ...) to rounding (tested to 1e-10 relative).

    Examples
    --------
    >>> import dask.dataframe as dd
    >>> import numpy as np, pandas as pd
    >>> from sklearn_selfcal import NuisanceCalibrator
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"L_z": rng.uniform(-4000, -500, 600), "LOGG": rng.uniform(0.5, 2.2, 600),
    ...                   "FE_H_ERR": 0.01})
    >>> X["FE_H"] = 1e-4 * X.L_z + 0.05 * (X.LOGG - 2.2) + rng.normal(0, 0.01, 600)
    >>> cal = NuisanceCalibrator(orbit_features=["L_z"], orbit_degree=1, nuisance_degree=1,
    ...                          training_filter=None)
    >>> parts = fit_calibrator_distributed(cal, dd.from_pandas(X, npartitions=3))
    >>> whole = NuisanceCalibrator(**cal.get_params()).fit(X)
    >>> bool(np.allclose(parts.coef_, whole.coef_, rtol=1e-10, atol=0))
    True
    """
    map_reduce = functools.partial(tree_reduce, ddf.to_delayed(), client=client,
                                   split_every=split_every)
    return calibrator.fit_partitioned(first_rows(ddf), map_reduce)
