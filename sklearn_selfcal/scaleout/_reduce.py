"""Map a function over the partitions of a Dask collection and reduce the results by a tree.

Every partitioned computation of this package is ``combine(func(p) for p in partitions)`` with an
associative ``combine`` (a sum of normal equations, a merge of summaries, the union of whole
bins): the results are combined on the workers in groups of ``split_every``, so that only one
small result reaches the client whatever the number of partitions.
"""

from __future__ import annotations

import warnings

__all__ = ["tree_reduce", "first_rows"]

#: Results combined per task of the reduction tree.
SPLIT_EVERY = 8


def _apply(func, prepare, part):
    return func(part if prepare is None else prepare(part))


def tree_reduce(parts, func, combine, *, prepare=None, client=None, split_every=SPLIT_EVERY):
    """``combine([func(prepare(p)) for p in parts])``, computed as a tree on the workers.

    Parameters
    ----------
    parts : list of dask.delayed.Delayed
        The partitions (``ddf.to_delayed()``, ``array.to_delayed().ravel()``).
    func : callable
        Applied to every (prepared) partition.
    combine : callable
        Associative: a list of results (or of combined results) -> one result.
    prepare : callable, optional
        Applied to a partition before ``func`` (e.g. reading its columns).
    client : dask.distributed.Client, optional
        Computes on it; without one, Dask's current scheduler (a ``Client`` made active, or the
        local threads).
    split_every : int, default=8

    Returns
    -------
    result
        The combined result, on the client.
    """
    import dask

    if not parts:
        raise ValueError("no partition to reduce")
    level = [dask.delayed(_apply, pure=True)(func, prepare, p) for p in parts]
    while True:  # combine at least once, so that the result has the combined form
        level = [dask.delayed(combine, pure=True)(level[i:i + split_every])
                 for i in range(0, len(level), split_every)]
        if len(level) == 1:
            break
    if client is not None:
        return client.compute(level[0]).result()
    return level[0].compute()


def first_rows(ddf, n=64):
    """The first ``n`` rows of a Dask DataFrame (from the first partitions that have rows)."""
    with warnings.catch_warnings():  # dask warns when the first partition has fewer rows
        warnings.simplefilter("ignore", UserWarning)
        head = ddf.head(n, npartitions=1, compute=True)
    if len(head) == 0:
        head = ddf.head(n, npartitions=-1, compute=True)
    if len(head) == 0:
        raise ValueError("the Dask DataFrame has no row")
    return head
