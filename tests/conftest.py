"""Fixtures shared by several test modules (plain helpers are in ``tests/_helpers.py``)."""

import os

import joblib
import pytest
from threadpoolctl import threadpool_limits

from sklearn_selfcal._kernels import staeckel_grid
from sklearn_selfcal._kernels.staeckel import galpy_potential
from sklearn_selfcal.potential import default_potential


@pytest.fixture(scope="session")
def pot():
    """The default potential translated to galpy (natural units), as the action kernels use it."""
    return galpy_potential(default_potential())


@pytest.fixture(scope="session")
def tables():
    """The focal-distance and action tables of the default potential: ``(focal, grid)``."""
    potential = default_potential()
    return staeckel_grid.cached_tables(potential, joblib.hash(potential))


# The slowest modules first (a Sphinx build with the gallery, whole runs, Dask clusters): under
# `pytest -n 2` xdist hands the first quarter of the tests to the two workers in turn, so a long
# test started early runs beside the many short ones instead of finishing alone at the end.
# Tests keep their order within a module (module-scoped fixtures are set up once per worker).
SLOW_MODULES_FIRST = ["test_docs.py", "test_scaleout.py", "test_real_catalogues.py",
                      "test_pipeline.py", "test_apply.py", "test_cli.py", "test_figures.py"]


def pytest_collection_modifyitems(config, items):
    """Start the slowest modules first (a stable sort: every worker collects the same order)."""
    rank = {name: i for i, name in enumerate(SLOW_MODULES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


# Under `pytest -n N` the N workers share the machine's cores: each worker's BLAS and OpenMP
# pools get cores // N threads (as scikit-learn's own test suite does). Left at one thread per
# core in every worker, N workers run N times too many threads, and OpenBLAS's and OpenMP's
# waiting threads spin on cores another worker needs: on 2 cores with 2 workers a 20,000-star
# calibration grid search took 10.9 CPU-s instead of 1.7. Results never depend on the thread
# count (tests that check it set their own limits); the environment variables reach the
# libraries loaded later (galpy's OpenMP) and the subprocesses tests start. Dask's and joblib's
# worker processes limit their own threads. joblib's cpu_count() is the share too
# (LOKY_MAX_CPU_COUNT): ``n_jobs=-1`` (a run's figures) means this worker's cores, so a run does
# not start a figure process (~5 CPU-s of imports) for a core the other worker is using; the
# figures' worker processes are tested with explicit n_jobs in tests/test_figures.py.
_THREAD_LIMITS = None


def pytest_configure(config):
    """In an xdist worker, limit the BLAS and OpenMP threads to this worker's share of the cores."""
    global _THREAD_LIMITS
    n_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if n_workers < 1 or "PYTEST_XDIST_WORKER" not in os.environ:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    share = max(1, (cores or 1) // n_workers)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "LOKY_MAX_CPU_COUNT"):
        os.environ[name] = str(share)
    _THREAD_LIMITS = threadpool_limits(share)
