"""The passes over the big matrix ``X``, on a deterministic block plan.

The solvers touch ``X`` (float32 or float64, C or Fortran order, an ``np.memmap``, a
:class:`RowSubset` of its rows, or a :class:`RowBlockOperator` held elsewhere) only through
:func:`matvec`, :func:`rmatvec`, :func:`working_set_columns` and :func:`projected_gram`, in
float64 arithmetic whatever ``X``'s dtype (float32 blocks are cast into a cache-sized buffer).

The block plan: a pass cuts ``X`` along its contiguous axis (rows of a C-ordered or row-accessed
matrix, columns of a Fortran-ordered one) into *tasks* of fixed size and every task into
cache-sized *blocks*; the Gram pass cuts the working set's rows into a fixed number of tasks. The
cuts depend on the shape only. Tasks run on a pool of threads, every BLAS call on one thread,
and partial sums are added in task order: every result has the same bits whatever the number of
workers (and for float32 and float64 copies of the same matrix). The workers are the BLAS
threads in effect when a solve starts (``threadpool_limits(1)``: the calling thread only).
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

from ..threads import usable_cpus

__all__ = ["RowSubset", "ColumnSubset", "RowBlockOperator", "block_plan", "matvec", "rmatvec",
           "working_set_columns", "projected_gram"]

#: Float64 bytes per task of a pass, and per block (~L2: a cast block is read again from cache).
TASK_BYTES, CAST_BLOCK_BYTES = 8 * 2**20, 2 * 2**20
#: Float64 bytes of the row-weighted columns formed at once, and row tasks of the Gram pass.
GRAM_CHUNK_BYTES, GRAM_TASKS = 16 * 2**20, 4

_LOCAL = threading.local()
_POOLS = {}
_POOLS_LOCK = threading.Lock()
_CONTROLLER = None


def _controller():
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


_ONE_BLAS_LOCK = threading.Lock()
_ONE_BLAS = {"users": 0, "limiter": None}


@contextmanager
def _one_blas_thread():
    """BLAS on one thread while any thread of the process is inside a plan.

    threadpoolctl's limits are process-wide: a plan of one thread that restored the original
    limit on leaving while another thread's plan still ran would hand that plan's passes a
    multithreaded BLAS (another order of the additions, other bits). The first plan to enter sets
    the limit, the last to leave restores it.
    """
    with _ONE_BLAS_LOCK:
        if _ONE_BLAS["users"] == 0:
            _ONE_BLAS["limiter"] = _controller().limit(limits=1, user_api="blas")
        _ONE_BLAS["users"] += 1
    try:
        yield
    finally:
        with _ONE_BLAS_LOCK:
            _ONE_BLAS["users"] -= 1
            if _ONE_BLAS["users"] == 0:
                _ONE_BLAS.pop("limiter").restore_original_limits()
                _ONE_BLAS["limiter"] = None


@contextmanager
def block_plan(workers=None):
    """Context in which the passes run on ``workers`` threads, BLAS on one thread each.

    Nested plans keep the outermost one's workers; the results do not depend on them.

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
            workers = min(max([lib.num_threads or 1 for lib in libs], default=1), usable_cpus())
    workers = max(1, int(workers))
    with _one_blas_thread():
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
    """Task ranges along ``length`` rows (or columns) of ``width`` values: whole blocks."""
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


def _blocks(rng, width):
    """The cache-sized blocks ``(start, stop)`` of the task ``rng`` (of vectors of ``width``)."""
    step = CAST_BLOCK_BYTES // (8 * max(width, 1))
    return [(rng[0] + a, rng[0] + b) for a, b in _ranges(rng[1] - rng[0], step)]


def _add_in_order(parts, size):
    """Sum of the partial results in task order (the same bits for any number of workers)."""
    out = np.zeros(size)
    for part in parts:
        out += part
    return out


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
        self.X, self.index, self.dtype = X, np.asarray(rows, dtype=np.intp), X.dtype
        self.shape = (self.index.size, X.shape[1])

    def __getitem__(self, key):
        if not isinstance(key, slice):
            raise TypeError(f"{type(self).__name__} only supports slices of rows")
        return self._rows(key)

    def _rows(self, key):
        return self.X[self.index[key]]


class ColumnSubset(RowSubset):
    """Read-only stand-in for ``X[:, cols]`` (row slices return the gathered columns), for
    working sets whose copy would cost more memory than it saves time.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The whole matrix.
    cols : ndarray of int
        Columns taken.
    """

    def __init__(self, X, cols):
        super().__init__(X, cols)
        self.shape = (X.shape[0], self.index.size)

    def _rows(self, key):
        return np.take(self.X[key], self.index, axis=1)


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


def _dense(d, cols, coef):
    """Columns and float64 coefficients of a product; many columns become one full-width product
    (cheaper than gathering them), ``cols=None``."""
    c = np.asarray(coef, dtype=np.float64)
    if cols is not None and len(cols) > d // 4:
        full = np.zeros(d)
        full[cols] = c
        return None, full
    return (None if cols is None else np.asarray(cols, dtype=np.intp)), c


@_planned
def matvec(X, cols, coef):
    """``X[:, cols] @ coef`` in float64 arithmetic (float32 products would put ~1e-7 relative
    noise into the linear predictor, enough to stall a Newton method), on the block plan.

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
            for a, b in _blocks(rng, d):
                out[a:b] = _float64(X[a:b] if cols is None else np.take(X[a:b], cols, 1)) @ c
        _map(task, _tasks(n, d))
        return out

    def task(rng):                  # column tasks (of cols, if given), partial sums over them
        part = np.zeros(n)
        for a, b in _blocks(rng, n):
            part += _float64(X[:, a:b] if cols is None else np.take(X, cols[a:b], 1)) @ c[a:b]
        return part
    return _add_in_order(_map(task, _tasks(c.size, n)), n)


@_planned
def rmatvec(X, v):
    """``X.T @ v`` in float64 arithmetic (the optimality conditions are checked on gradients
    that nearly cancel, ``|grad_j| = alpha`` on the support: float32 sums over tens of thousands
    of stars could not certify a residual of 1e-4), on the block plan.

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
            for a, b in _blocks(rng, d):
                part += _float64(X[a:b]).T @ v[a:b]
            return part
        return _add_in_order(_map(task, _tasks(n, d)), d)
    out = np.empty(d)

    def task(rng):
        for a, b in _blocks(rng, n):
            out[a:b] = _float64(X[:, a:b]).T @ v
    _map(task, _tasks(d, n))
    return out


@_planned
def working_set_columns(X, cols):
    """The columns ``cols`` of ``X`` for the passes of a Newton step.

    A copy in ``X``'s dtype and memory order while it, its Gram matrix and Cholesky factor stay
    under 0.9 copies of ``X`` (fast passes); otherwise a :class:`ColumnSubset` gathering them on
    every pass; a :class:`RowBlockOperator`'s own :meth:`~RowBlockOperator.take_columns`.

    Parameters
    ----------
    X : ndarray, RowSubset or RowBlockOperator of shape (n_samples, n_features)
        The matrix.
    cols : ndarray of int
        Columns.

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
    if not _by_rows(X):
        return np.asfortranarray(X[:, cols])           # contiguous columns: a plain gather
    out = np.empty((n, m), dtype=X.dtype)

    def task(rng):
        np.take(X[rng[0]:rng[1]], cols, axis=1, out=out[rng[0]:rng[1]], mode="clip")
    _map(task, _tasks(n, X.shape[1]))
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
    G : ndarray of shape (m, m)
        ``Z^T Z`` (both triangles).
    zb, gz : ndarray of shape (m,)
        ``Z^T bz`` and ``Z^T rt``.
    C : ndarray of shape (q, m)
        ``Q^T Z``.

    Notes
    -----
    Every output is a sum over rows: those of row blocks add up to the whole's, which is how a
    :class:`RowBlockOperator` computes them. Here ``GRAM_TASKS`` row ranges sum their own (by
    chunks of ``diag(s) Xws`` in float64), added in task order; the column scales come last.
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
    return G, side[:, 0].copy(), side[:, 1].copy(), np.ascontiguousarray(side[:, 2:].T)
