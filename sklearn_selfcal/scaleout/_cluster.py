"""The whole run on a Dask cluster (``sklearn-selfcal run --scheduler ADDRESS``).

A run on a cluster is the single-machine run with three joints moved to the workers:

- every :class:`sklearn.utils.parallel.Parallel` loop of the pipeline (the cross-fitting folds of
  the parallax model, the chunks of the actions) goes through joblib's Dask backend, so the folds
  and the chunks are computed on the workers (spectra read from a file travel as the file's path
  and are read there, by row blocks: the workers must see the same file system);
- the calibration is fitted by :func:`~sklearn_selfcal.scaleout.fit_calibrator_distributed`
  (normal equations summed over partitions);
- the radial profiles by :func:`~sklearn_selfcal.scaleout.radial_profile_distributed` (exact
  medians, a shuffle by bin).

Everything else (the MCMC of the broken power law, the figures, the writing of the outputs) runs
on the client, on tables of one row per radial bin or per star.
"""

from __future__ import annotations

import contextlib

__all__ = ["LOCAL_SCHEDULER", "dask_client", "partitioned"]

#: The ``--scheduler`` value that starts a :class:`distributed.LocalCluster` on this machine.
LOCAL_SCHEDULER = "local"


@contextlib.contextmanager
def dask_client(scheduler, *, n_workers=None, timeout=30):
    """A Dask client for a run, with joblib's parallel loops sent to its workers.

    Parameters
    ----------
    scheduler : str
        The scheduler's address (``"tcp://host:8786"``, or a scheduler file's path ending in
        ``.json``), or ``"local"`` to start a :class:`distributed.LocalCluster` of worker
        processes with one thread each, closed on exit.
    n_workers : int, optional
        Workers of the local cluster (default: one per core).
    timeout : float, default=30
        Seconds to wait for a remote scheduler before failing.

    Yields
    ------
    client : distributed.Client
        Inside the block, ``sklearn.utils.parallel.Parallel`` loops use joblib's ``"dask"``
        backend with as many jobs as the cluster has threads.

    Raises
    ------
    ImportError
        When Dask's distributed scheduler is not installed (``pip install
        "sklearn-selfcal[dask]"``).
    OSError
        When the scheduler cannot be reached within ``timeout``, naming the address.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - dask is in the test extra
        raise ImportError('a run on a Dask cluster needs Dask: pip install '
                          '"sklearn-selfcal[dask]"') from exc
    import joblib

    with contextlib.ExitStack() as stack:
        if scheduler == LOCAL_SCHEDULER:
            cluster = stack.enter_context(LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=True,
                dashboard_address=None))
            client = stack.enter_context(Client(cluster))
        else:
            options = ({"scheduler_file": scheduler} if str(scheduler).endswith(".json")
                       else {"address": scheduler})
            try:
                client = stack.enter_context(Client(**options, timeout=timeout))
            except (OSError, TimeoutError) as exc:
                raise OSError(f"cannot reach the Dask scheduler at {scheduler!r} within "
                              f"{timeout:g} s ({exc})") from exc
        stack.enter_context(joblib.parallel_config(backend="dask", n_jobs=-1))
        yield client


def partitioned(frame, client, n_partitions=0):
    """A pandas table as a Dask DataFrame with one partition per worker thread.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per star.
    client : distributed.Client
        The cluster the partitions are meant for.
    n_partitions : int, default=0
        Partitions (0: one per thread of the cluster, at least 1).

    Returns
    -------
    ddf : dask.dataframe.DataFrame
        The rows of ``frame`` in their order, scattered to the workers.
    """
    import dask.dataframe as dd

    if not n_partitions:
        n_partitions = max(1, sum(client.nthreads().values()))
    n_partitions = max(1, min(int(n_partitions), len(frame)))
    return client.persist(dd.from_pandas(frame, npartitions=n_partitions, sort=False))
