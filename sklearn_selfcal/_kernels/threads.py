"""Threads: the usable CPUs, and per-star compiled loops spread over threads.

The orbit integrator (:mod:`~sklearn_selfcal._kernels.orbit_sampling`) and the compiled Staeckel
fudge (:mod:`~sklearn_selfcal._kernels.staeckel_compiled`) treat each star on its own, in numba
functions that release the GIL. :func:`map_stars` cuts the stars into contiguous blocks, runs the
blocks on a pool of threads and joins the results along the stars' axis: a star's result does not
depend on the blocks or on the number of threads.

The number of threads follows galpy's C code, which spreads stars over OpenMP threads: the
OpenMP threads in effect (all usable CPUs by default; ``OMP_NUM_THREADS``,
``threadpoolctl.threadpool_limits(n, user_api="openmp")`` and joblib's workers lower it).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["usable_cpus", "star_threads", "map_stars"]

#: Fewest stars per block: a block costs ~0.1 ms to hand to a thread, a star at least ~0.05 ms
#: (the compiled fudge at a few points; a check integration costs ~0.1-1 ms).
MIN_BLOCK = 32
#: Blocks per thread: the threads take the next block as they finish one, so that a thread that
#: drew the costly stars (bulge orbits, chaos confirmations) does not leave the others idle.
BLOCKS_PER_THREAD = 4

_POOLS = {}
_LOCK = threading.Lock()


def usable_cpus():
    """CPUs this process may run on (its affinity mask; all CPUs elsewhere than Linux).

    Returns
    -------
    n_cpus : int
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def star_threads():
    """Threads for the per-star loops: the OpenMP threads in effect, at most the usable CPUs.

    The OpenMP runtimes loaded in the process are found once (scanning the process's libraries
    costs ~5-10 ms, a few per cent of a batch of the orbit check) and asked for their current
    number of threads at every call, so that ``threadpool_limits`` and ``OMP_NUM_THREADS`` still
    apply; the scan is repeated while none is loaded.

    Returns
    -------
    n_threads : int
    """
    cpus = usable_cpus()
    found = [c.num_threads for c in _openmp_controllers()]
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    n = min(found) if found else (int(env) if env.isdigit() else cpus)
    return max(1, min(int(n), cpus))


_OPENMP = []


def _openmp_controllers():
    """threadpoolctl's controllers of the OpenMP runtimes loaded in this process (found once)."""
    with _LOCK:
        if not _OPENMP:
            from threadpoolctl import ThreadpoolController

            _OPENMP.extend(ThreadpoolController().select(user_api="openmp").lib_controllers)
        return list(_OPENMP)


def map_stars(func, arrays, args=(), n_threads=None):
    """``func(*blocks, *args)`` on contiguous blocks of the stars, joined along the last axis.

    Parameters
    ----------
    func : callable
        A numba function releasing the GIL; its per-star inputs come first, its outputs are arrays
        (or a tuple of them) whose last axis is the stars'.
    arrays : sequence of ndarray of shape (n,)
        The per-star inputs.
    args : tuple
        The other arguments, the same for every block.
    n_threads : int, optional
        Default: :func:`star_threads`.

    Returns
    -------
    out : ndarray or tuple of ndarray
        As ``func(*arrays, *args)``.
    """
    n = arrays[0].size
    if n < 2 * MIN_BLOCK:  # one block: no need to ask how many threads (~2 ms)
        return func(*arrays, *args)
    n_threads = star_threads() if n_threads is None else int(n_threads)
    n_blocks = min(BLOCKS_PER_THREAD * n_threads, n // MIN_BLOCK)
    if n_threads < 2 or n_blocks < 2 or threading.current_thread().name.startswith("star_threads"):
        return func(*arrays, *args)
    edges = np.linspace(0, n, n_blocks + 1).astype(int)
    with _LOCK:
        pool = _POOLS.get(n_threads)
        if pool is None:
            pool = _POOLS[n_threads] = ThreadPoolExecutor(n_threads, "star_threads")
    parts = list(pool.map(lambda k: func(*(a[edges[k]:edges[k + 1]] for a in arrays), *args),
                          range(n_blocks)))
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate(p, axis=-1) for p in zip(*parts))
    return np.concatenate(parts, axis=-1)
