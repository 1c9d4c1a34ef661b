"""The big matrix ``X``: its passes, run on a deterministic block plan.

The solvers touch ``X`` (float32 or float64, C or Fortran order, an ``np.memmap`` on disk, a
:class:`RowSubset` of its rows, or a :class:`RowBlockOperator` held elsewhere) only through the
functions of this module: :func:`matvec`, :func:`rmatvec`, :func:`working_set_columns` and
:func:`projected_gram`. All arithmetic is float64 whatever ``X``'s dtype: float32 blocks are
cast into a cache-sized float64 buffer on the way (exact), and ``X`` is never copied or cast as a
whole.

The block plan. A pass cuts ``X`` along its contiguous axis (row ranges of a C-ordered or
row-accessed matrix, column ranges of a Fortran-ordered one) into *tasks* of a fixed size in
bytes, and every task into cache-sized *blocks*; the Gram pass cuts the rows of the working set
into a fixed number of tasks. The cuts depend on the shape and dtype only. Tasks run on a small pool of threads, each BLAS call on one thread
(``threadpoolctl``), and the partial sums of a reduction are added in task order, so every
result is bitwise the same whatever the number of workers. The number of workers is the number
of BLAS threads in effect when a solve starts (so ``threadpoolctl.threadpool_limits(1)`` runs
everything on the calling thread); calls from threads other than the main one run serially.
"""

from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

__all__ = ["RowSubset", "ColumnSubset", "RowBlockOperator", "block_plan", "blas_threads",
           "matvec", "rmatvec", "working_set_columns", "projected_gram"]

#: Bytes of ``X`` per task of a pass (fixed, so the partial sums do not depend on the workers).
TASK_BYTES = 8 * 2**20
#: Float64 bytes of a block: a float32 block is cast into a buffer of this size, about the L2
#: cache, so that the cast and the products that follow read it from cache.
CAST_BLOCK_BYTES = 2 * 2**20
#: Float64 bytes of the row-weighted working-set columns formed at once by a Gram task.
GRAM_CHUNK_BYTES = 16 * 2**20
#: Row tasks of the Gram pass (each sums its own Gram matrix; the sums are added in order).
GRAM_TASKS = 4

_LOCAL = threading.local()
_POOLS = {}
_POOLS_LOCK = threading.Lock()
_CONTROLLER = None


# --------------------------------------------------------------------------------------------
# the plan: workers, BLAS threads, tasks and blocks
# --------------------------------------------------------------------------------------------
def _controller():
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


def blas_threads(n_threads):
    """Context limiting the BLAS threads (threadpoolctl) to ``n_threads``.

    Parameters
    ----------
    n_threads : int or None
        Threads of every BLAS library (None: no limit).

    Returns
    -------
    context : threadpoolctl limiter
        Use in a ``with`` statement.
    """
    return _controller().limit(limits=n_threads, user_api="blas")


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:    # pragma: no cover - not Linux
        return os.cpu_count() or 1


@contextmanager
def block_plan(workers=None):
    """Context in which the passes over ``X`` run on ``workers`` threads, BLAS on one thread each.

    Nested plans keep the outermost one's workers. The results do not depend on ``workers``.

    Parameters
    ----------
    workers : int, optional
        Threads of the pool; by default the number of BLAS threads in effect, at most the number
        of usable CPUs (one outside the main thread).

    Yields
    ------
    workers : int
        The number of workers in use.
    """
    outer = getattr(_LOCAL, "workers", None)
    if outer is not None and workers is None:
        yield outer
        return
    if workers is None:
        workers = 1
        if threading.current_thread() is threading.main_thread():
            libs = _controller().select(user_api="blas").lib_controllers
            workers = min(max([lib.num_threads or 1 for lib in libs], default=1), _cpus())
    workers = max(1, int(workers))
    with blas_threads(1):
        _LOCAL.workers = workers
        try:
            yield workers
        finally:
            _LOCAL.workers = outer


def _planned(func):
    """Run ``func`` inside a :func:`block_plan` (the outermost call sets it up)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with block_plan():
            return func(*args, **kwargs)
    return wrapper


def _map(func, items):
    """``[func(item) for item in items]``, on the plan's workers; results in the items' order."""
    workers = getattr(_LOCAL, "workers", None) or 1
    if workers == 1 or len(items) < 2:
        return [func(item) for item in items]
    with _POOLS_LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            pool = _POOLS[workers] = ThreadPoolExecutor(workers, "explinear_l1")
    return list(pool.map(func, items))


def _ranges(length, step):
    step = max(1, int(step))
    return [(a, min(a + step, length)) for a in range(0, length, step)]


def _by_rows(X):
    """Whether passes read ``X`` by rows (C order, subsets, operators) or by columns (F order)."""
    if isinstance(X, np.ndarray) and X.ndim == 2 and min(X.shape) > 1:
        return abs(X.strides[1]) <= abs(X.strides[0])
    return True


def _tasks(length, width):
    """The fixed task ranges of a pass along ``length`` rows (or columns) of ``width`` values:
    whole blocks holding about TASK_BYTES in float64, whatever the dtype (float32 and float64
    copies of the same matrix then give the same bits)."""
    block = max(1, CAST_BLOCK_BYTES // (8 * max(width, 1)))
    return _ranges(length, block * max(1, TASK_BYTES // CAST_BLOCK_BYTES))


def _buffer(shape):
    """This thread's float64 scratch array of ``shape`` (reused: no page faults per block)."""
    size = shape[0] * shape[1]
    buf = getattr(_LOCAL, "buffer", None)
    if buf is None or buf.size < size:
        buf = _LOCAL.buffer = np.empty(max(size, CAST_BLOCK_BYTES // 8))
    return buf[:size].reshape(shape)


def _float64(block):
    """``block`` as float64: itself if it already is, else cast into this thread's buffer."""
    if block.dtype == np.float64:
        return block
    if block.flags.f_contiguous and not block.flags.c_contiguous:
        out = _buffer(block.shape[::-1]).T           # keep a column block's layout
    else:
        out = _buffer(block.shape)
    np.copyto(out, block, casting="unsafe")
    return out


def _row_blocks(X, a, b):
    """``(start, stop, X[start:stop])`` over the cache-sized blocks of rows ``a:b``."""
    step = CAST_BLOCK_BYTES // (8 * max(X.shape[1], 1))
    for start, stop in _ranges(b - a, step):
        yield a + start, a + stop, X[a + start:a + stop]


def _column_blocks(X, a, b):
    """``(start, stop, X[:, start:stop])`` over the cache-sized blocks of columns ``a:b``."""
    step = CAST_BLOCK_BYTES // (8 * max(X.shape[0], 1))
    for start, stop in _ranges(b - a, step):
        yield a + start, a + stop, X[:, a + start:a + stop]


def _add_in_order(parts, size):
    """Sum of the partial results in task order (the same bits for any number of workers)."""
    out = np.zeros(size)
    for part in parts:
        out += part
    return out


# --------------------------------------------------------------------------------------------
# stand-ins for parts of X
# --------------------------------------------------------------------------------------------
class RowSubset:
    """Read-only stand-in for ``X[rows]`` that the solvers can use without copying ``X``.

    Supports what the kernels need: ``shape``, ``dtype`` and indexing by a slice of rows, which
    returns the corresponding (copied, block-sized) rows of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The whole matrix.
    rows : ndarray of int
        Rows taken.
    """

    def __init__(self, X, rows):
        self.X = X
        self.rows = np.asarray(rows, dtype=np.intp)
        self.shape = (self.rows.size, X.shape[1])
        self.dtype = X.dtype

    def __getitem__(self, key):
        if not isinstance(key, slice):
            raise TypeError("RowSubset only supports slices of rows")
        return self.X[self.rows[key]]


class ColumnSubset:
    """Read-only stand-in for ``X[:, cols]`` (row slices return the gathered columns).

    Used for large working sets, whose contiguous copy would cost more memory than it saves time.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The whole matrix.
    cols : ndarray of int
        Columns taken.
    """

    def __init__(self, X, cols):
        self.X = X
        self.cols = np.asarray(cols, dtype=np.intp)
        self.shape = (X.shape[0], self.cols.size)
        self.dtype = X.dtype

    def __getitem__(self, key):
        if not isinstance(key, slice):
            raise TypeError("ColumnSubset only supports slices of rows")
        return np.take(self.X[key], self.cols, axis=1)


class RowBlockOperator:
    """Interface of a big matrix held elsewhere (e.g. in row blocks on Dask workers).

    The solvers touch ``X`` only through :func:`matvec`, :func:`rmatvec`, the gathering of the
    working-set columns and the projected Gram pass of a Newton step; a subclass implements those
    four on its own storage (typically by running the in-memory kernels on every row block and
    summing), and the solvers run unchanged, the small vectors and matrices staying with the
    caller. Subclasses set ``shape`` and ``dtype``.
    """

    shape = (0, 0)
    dtype = np.dtype(np.float64)

    def matvec(self, cols, coef):
        """``X[:, cols] @ coef`` (float64, shape (n_samples,)); ``cols=None``: every column."""
        raise NotImplementedError

    def rmatvec(self, v):
        """``X.T @ v`` (float64, shape (n_features,))."""
        raise NotImplementedError

    def take_columns(self, cols):
        """The columns ``cols`` as another operator (the working set of a Newton step)."""
        raise NotImplementedError

    def projected_gram(self, s, inv_w, bz, rt, Q):
        """:func:`projected_gram` of this matrix."""
        raise NotImplementedError


# --------------------------------------------------------------------------------------------
# the passes
# --------------------------------------------------------------------------------------------
def _dense(d, cols, coef):
    """Columns and float64 coefficients of a product; many columns become one full-width product
    (cheaper than gathering them), returned as ``cols=None``."""
    c = np.asarray(coef, dtype=np.float64)
    if cols is not None and len(cols) > d // 4:
        full = np.zeros(d)
        full[cols] = c
        return None, full
    return (None if cols is None else np.asarray(cols, dtype=np.intp)), c


def _row_product(block, cols, c):
    """``block[:, cols] @ c`` (all columns if ``cols`` is None) in float64."""
    if cols is None:
        return _float64(block) @ c
    return _float64(np.take(block, cols, axis=1)) @ c


@_planned
def matvec(X, cols, coef):
    """``X[:, cols] @ coef`` in float64 arithmetic, on the block plan.

    Exact to float64 rounding for float32 data too (a float32 product would put ~1e-7 relative
    noise into the linear predictor, which is enough to stall a Newton method).

    Parameters
    ----------
    X : ndarray, RowSubset, ColumnSubset or RowBlockOperator of shape (n_samples, n_features)
        The matrix.
    cols : ndarray of int or None
        Columns used (``None``: all, with ``coef`` of length ``n_features``).
    coef : ndarray
        Coefficients.

    Returns
    -------
    product : ndarray of shape (n_samples,)
        Float64.
    """
    if isinstance(X, RowBlockOperator):
        return X.matvec(cols, coef)
    n, d = X.shape
    out = np.zeros(n)
    if cols is not None and len(cols) == 0:
        return out
    cols, c = _dense(d, cols, coef)
    if _by_rows(X):
        def task(rng):
            for start, stop, block in _row_blocks(X, *rng):
                out[start:stop] = _row_product(block, cols, c)
        _map(task, _tasks(n, d))
        return out
    index = np.arange(d) if cols is None else cols
    c_full = c if cols is None else None

    def task(rng):
        part = np.zeros(n)
        step = CAST_BLOCK_BYTES // (8 * n)
        for a, b in _ranges(rng[1] - rng[0], step):
            a, b = rng[0] + a, rng[0] + b
            block = X[:, a:b] if cols is None else np.take(X, index[a:b], axis=1)
            part += _float64(block) @ (c_full[a:b] if cols is None else c[a:b])
        return part
    return _add_in_order(_map(task, _tasks(index.size, n)), n)


@_planned
def rmatvec(X, v):
    """``X.T @ v`` in float64 arithmetic, on the block plan.

    Exact to float64 rounding whatever ``X``'s dtype: the optimality conditions are checked on
    gradients that nearly cancel (``|grad_j| = alpha`` on the support), so a float32 sum over tens
    of thousands of stars would not be able to certify a relative residual of 1e-4.

    Parameters
    ----------
    X : ndarray, RowSubset, ColumnSubset or RowBlockOperator of shape (n_samples, n_features)
        The matrix.
    v : ndarray of shape (n_samples,)
        One value per row.

    Returns
    -------
    product : ndarray of shape (n_features,)
        Float64.
    """
    if isinstance(X, RowBlockOperator):
        return X.rmatvec(v)
    v = np.asarray(v, dtype=np.float64)
    n, d = X.shape
    if _by_rows(X):
        def task(rng):
            part = np.zeros(d)
            for start, stop, block in _row_blocks(X, *rng):
                part += _float64(block).T @ v[start:stop]
            return part
        return _add_in_order(_map(task, _tasks(n, d)), d)
    out = np.empty(d)

    def task(rng):
        for a, b, block in _column_blocks(X, *rng):
            out[a:b] = _float64(block).T @ v
    _map(task, _tasks(d, n))
    return out


@_planned
def working_set_columns(X, cols, reuse=None):
    """The columns ``cols`` of ``X`` for the passes of a Newton step.

    A copy in ``X``'s dtype and memory order while it, its Gram matrix and Cholesky factor stay
    under 0.9 copies of ``X`` (fast passes); otherwise a :class:`ColumnSubset` gathering them on
    every pass; a :class:`RowBlockOperator`'s own :meth:`~RowBlockOperator.take_columns`.

    Parameters
    ----------
    X : ndarray, RowSubset or RowBlockOperator of shape (n_samples, n_features)
        The matrix.
    cols : ndarray of int
        Columns (sorted).
    reuse : tuple (previous_cols, previous_columns), optional
        An earlier result: the columns it shares with ``cols`` are copied from it instead of
        being gathered from ``X`` again.

    Returns
    -------
    columns : ndarray, ColumnSubset or RowBlockOperator of shape (n_samples, len(cols))
        The working-set columns.
    """
    if isinstance(X, RowBlockOperator):
        return X.take_columns(cols)
    cols = np.asarray(cols, dtype=np.intp)
    n, m = X.shape[0], cols.size
    itemsize = np.dtype(X.dtype).itemsize
    if n * m * itemsize + 16 * m**2 > 0.9 * n * X.shape[1] * itemsize:
        return ColumnSubset(X, cols)
    new, old = np.arange(m), np.zeros(0, dtype=np.intp)
    previous = None
    if reuse is not None and isinstance(reuse[1], np.ndarray):
        previous = reuse[1]
        _, new_kept, old = np.intersect1d(cols, reuse[0], assume_unique=True,
                                          return_indices=True)
        new = np.setdiff1d(np.arange(m), new_kept, assume_unique=True)
    by_rows = _by_rows(X)
    out = np.empty((n, m), dtype=X.dtype, order="C" if by_rows else "F")
    if by_rows:
        def task(rng):
            a, b = rng
            if not old.size:
                np.take(X[a:b], cols, axis=1, out=out[a:b], mode="clip")
                return
            out[a:b, new_kept] = np.take(previous[a:b], old, axis=1)
            if new.size:
                out[a:b, new] = np.take(X[a:b], cols[new], axis=1)
        _map(task, _tasks(n, X.shape[1]))
        return out
    if old.size:
        out[:, new_kept] = previous[:, old]

    def task(rng):
        out[:, new[rng[0]:rng[1]]] = X[:, cols[new[rng[0]:rng[1]]]]
    _map(task, _tasks(new.size, n))
    return out


@_planned
def projected_gram(Xws, s, inv_w, bz, rt, Q):
    """One pass over the row-weighted working-set columns ``Z = diag(s) Xws diag(inv_w)``.

    Parameters
    ----------
    Xws : ndarray, ColumnSubset or RowBlockOperator of shape (n_samples, m)
        The working-set columns.
    s : ndarray of shape (n_samples,)
        Row weights (square roots of the curvatures).
    inv_w : ndarray of shape (m,)
        Column scales (inverse penalty weights).
    bz, rt : ndarray of shape (n_samples,)
        Weighted working response and weighted gradient factors.
    Q : ndarray of shape (n_samples, q)
        Orthonormal basis of the row-weighted unpenalised block.

    Returns
    -------
    G : ndarray of shape (m, m), Fortran order
        ``Z^T Z`` (symmetric; callers may rely on its upper triangle only).
    zb, gz : ndarray of shape (m,)
        ``Z^T bz`` and ``Z^T rt``.
    C : ndarray of shape (q, m)
        ``Q^T Z``.

    Notes
    -----
    Every output is a sum over rows: those of row blocks add up to the whole's, which is how a
    :class:`RowBlockOperator` computes them. Here :data:`GRAM_TASKS` row ranges each sum their
    own (chunk by chunk, ``diag(s) Xws`` formed in float64 in a reused buffer), the sums are
    added in task order, and the column scales are applied to the result.
    """
    if isinstance(Xws, RowBlockOperator):
        return Xws.projected_gram(s, inv_w, bz, rt, Q)
    n, m = Xws.shape
    W = np.column_stack([bz, rt, Q])
    chunk = max(1, GRAM_CHUNK_BYTES // (8 * max(m, 1)))

    def task(rng):
        G = np.zeros((m, m))
        side = np.zeros((m, W.shape[1]))
        for a, b in _ranges(rng[1] - rng[0], chunk):
            a, b = rng[0] + a, rng[0] + b
            Z = _buffer((b - a, m))
            np.copyto(Z, Xws[a:b], casting="unsafe")
            Z *= s[a:b, None]
            G += Z.T @ Z                                  # a rank-k update (BLAS syrk)
            side += Z.T @ W[a:b]
        return G, side

    parts = _map(task, _ranges(n, -(-n // GRAM_TASKS)))
    G, side = parts[0] if parts else (np.zeros((m, m)), np.zeros((m, W.shape[1])))
    for G_t, side_t in parts[1:]:                         # in task order
        G += G_t
        side += side_t
    G *= inv_w[:, None]                                   # the column scales, applied once
    G *= inv_w[None, :]
    side *= inv_w[:, None]
    return (np.asfortranarray(G), side[:, 0].copy(), side[:, 1].copy(),
            np.ascontiguousarray(side[:, 2:].T))
