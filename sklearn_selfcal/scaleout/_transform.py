"""Apply fitted estimators to catalogues larger than memory, partition by partition.

A fitted pipeline is a function of one row at a time (``transform``/``predict`` never look at other
rows), so a catalogue that does not fit in memory can be processed partition by partition:
:func:`transform_partitions` maps a fitted estimator over the partitions of a
``dask.dataframe.DataFrame`` and :func:`apply_to_parquet` does it from Parquet files to Parquet
files. With a ``dask.distributed`` client the partitions are processed on its workers (a
``LocalCluster`` on one machine or a multi-machine cluster: the code is the same, see
:doc:`/scaling`); the fitted estimator is shipped to each worker once.

Dask is an optional dependency (``pip install "sklearn-selfcal[dask]"``).
"""

from __future__ import annotations

import os

import pandas as pd

__all__ = ["transform_partitions", "apply_to_parquet", "apply_to_hats"]


def _apply(partition, estimator, method, keep=()):
    """Run ``estimator.<method>`` on one partition; a DataFrame on its index (``keep`` in front)."""
    result = getattr(estimator, method)(partition)
    if isinstance(result, pd.DataFrame):
        result = result.set_axis(partition.index, axis=0)
    elif getattr(result, "ndim", 2) == 1:
        result = pd.DataFrame({method: result}, index=partition.index)
    else:
        names = getattr(estimator, "get_feature_names_out", lambda: None)()
        result = pd.DataFrame(result, index=partition.index, columns=names)
    keep = [c for c in keep if c not in result.columns]  # the method pipeline keeps its input
    if keep:
        result = pd.concat([partition[keep], result], axis=1)
    return result


def transform_partitions(estimator, ddf, *, method="transform", keep_columns=(), meta=None,
                         client=None):
    """Lazily apply a fitted estimator to every partition of a Dask DataFrame.

    Parameters
    ----------
    estimator : fitted estimator or Pipeline
        Must work row by row (every transformer and predictor of this package does). Its output
        should be a DataFrame (``set_output(transform="pandas")``) so columns keep their names.
    ddf : dask.dataframe.DataFrame
        The catalogue, partitioned by rows.
    method : str, default="transform"
        ``"transform"`` or ``"predict"``.
    keep_columns : sequence of str, default=()
        Input columns copied in front of the estimator's output (e.g. ``APOGEE_ID``).
    meta : DataFrame, optional
        Empty DataFrame with the output's columns and dtypes; by default computed by applying the
        estimator to the first rows of the first partition (one small eager computation).
    client : dask.distributed.Client, optional
        If given, the estimator is scattered to every worker once instead of being embedded in each
        task.

    Returns
    -------
    result : dask.dataframe.DataFrame
        One row per input row, same index and partitions; nothing is computed until asked.
    """
    keep = tuple(keep_columns)
    estimator, meta = _shipped(estimator, ddf, method, keep, meta, client)
    return ddf.map_partitions(_apply, estimator, method, keep, meta=meta)


def _shipped(estimator, ddf, method, keep, meta, client):
    """The output's meta (from the first rows unless given) and the estimator to ship."""
    if meta is None:
        head = ddf.head(64, npartitions=1)
        if len(head) == 0:
            raise ValueError("the first partition is empty; pass meta= explicitly")
        meta = _apply(head, estimator, method, keep).iloc[:0]
    if client is not None:
        estimator = client.scatter(estimator, broadcast=True)
    return estimator, meta


def apply_to_parquet(estimator, source, destination, *, columns=None, method="transform",
                     keep_columns=(), client=None, **read_kwargs):
    """Apply a fitted estimator to a Parquet catalogue and write the result as Parquet.

    Parameters
    ----------
    estimator : fitted estimator or Pipeline
        Must work row by row, as for :func:`transform_partitions`; its output should be a
        DataFrame (``set_output(transform="pandas")``) so columns keep their names.
    source : str or path-like
        A Parquet file, a directory of Parquet files or a glob (anything
        ``dask.dataframe.read_parquet`` reads, local or remote).
    destination : str or path-like
        Output directory (one Parquet file per partition).
    columns : sequence of str, optional
        Columns to read (default: all); reading only what the estimator needs saves I/O.
    method : str, default="transform"
        ``"transform"`` or ``"predict"``.
    keep_columns : sequence of str, default=()
        See :func:`transform_partitions`.
    client : dask.distributed.Client, optional
        See :func:`transform_partitions`; without one Dask's default scheduler is used.
    **read_kwargs
        Passed to ``dask.dataframe.read_parquet`` (e.g. ``blocksize``, ``split_row_groups``).

    Returns
    -------
    destination : str
        The output directory, once every partition is written (one row per input row, with the
        input's index).
    """
    import dask.dataframe as dd

    ddf = dd.read_parquet(source, columns=list(columns) if columns is not None else None, **read_kwargs)
    result = transform_partitions(estimator, ddf, method=method, keep_columns=keep_columns,
                                  client=client)
    result.to_parquet(str(destination), write_index=True)
    return str(destination)


def apply_to_hats(estimator, source, destination, *, columns=None, method="transform",
                  keep_columns=(), catalog_name=None, client=None, **open_kwargs):
    """Apply a fitted estimator to a HATS catalogue (as LSDB serves them) and write a HATS catalogue.

    HATS (Hierarchical Adaptive Tiling Scheme) catalogues are Parquet files partitioned by HEALPix
    pixel, the layout in which Gaia-scale catalogues are served to LSDB. The catalogue is opened
    lazily with :func:`lsdb.open_catalog`, the estimator applied to every pixel's partition
    (:func:`transform_partitions`' row-by-row rule) and the result written as a new HATS
    catalogue with the same pixels, carrying the source's right ascension and declination so that
    LSDB can cross-match and search it.

    Needs the optional ``lsdb`` package (``pip install "sklearn-selfcal[lsdb]"``).

    Parameters
    ----------
    estimator : fitted estimator or Pipeline
        Works row by row (see :func:`transform_partitions`).
    source : str or path-like
        Directory of the HATS catalogue (local or remote, anything ``lsdb.open_catalog`` reads).
    destination : str or path-like
        Directory of the new HATS catalogue (must not exist).
    columns : sequence of str, optional
        Columns to read (default: the catalogue's default columns).
    method : str, default="transform"
        ``"transform"`` or ``"predict"``.
    keep_columns : sequence of str, default=()
        Input columns copied in front of the output, after the coordinates (deg).
    catalog_name : str, optional
        Name of the new catalogue (default: the destination directory's name).
    client : dask.distributed.Client, optional
        The estimator is scattered to its workers once; the work runs on Dask's current
        scheduler (a client made active, e.g. ``with Client(...)``).
    **open_kwargs
        Passed to ``lsdb.open_catalog`` (e.g. ``search_filter=lsdb.ConeSearch(...)``).

    Returns
    -------
    destination : str
        The new catalogue's directory (open it with ``lsdb.open_catalog``).
    """
    import lsdb

    catalog = lsdb.open_catalog(source, columns=list(columns) if columns is not None else None,
                                **open_kwargs)
    info = catalog.hc_structure.catalog_info
    keep = tuple(dict.fromkeys([info.ra_column, info.dec_column, *keep_columns]))
    estimator, meta = _shipped(estimator, catalog.to_dask_dataframe(), method, keep, None, client)
    result = catalog.map_partitions(_apply, estimator, method, keep, meta=meta)
    name = catalog_name if catalog_name is not None else os.path.basename(
        os.path.normpath(os.fspath(destination)))
    result.write_catalog(os.fspath(destination), catalog_name=name, progress_bar=False)
    return str(destination)
