"""Fixtures shared by several test modules (plain helpers are in ``tests/_helpers.py``)."""

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import joblib
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from sklearn_selfcal._kernels import orbit_sampling, staeckel_compiled, staeckel_grid
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


class _Cluster:
    """A 2-worker LocalCluster (processes, one thread each), started when a test asks for it."""

    client = cluster = None

    def get(self):
        if self.client is None:
            distributed = pytest.importorskip("dask.distributed", reason="dask is in [test]")
            self.cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                                    processes=True, dashboard_address=None)
            self.client = distributed.Client(self.cluster)
        return self.client

    def close(self):
        if self.client is not None:
            self.client.close()
            self.cluster.close()
            self.client = self.cluster = None


_CLUSTER = _Cluster()


@pytest.fixture
def dask_client():
    """The cluster shared by the Dask tests of tests/test_scaleout.py and tests/test_pipeline.py.

    The two modules are dealt to the same xdist worker (``SAME_WORKER``), one after the other:
    one cluster instead of two (~7 CPU-s to start two worker processes and import the package
    in them; the action tables built on its workers once). It is closed after the last test of
    those modules (``pytest_runtest_teardown``): left running to the end of the session, its
    idle workers cost more than a new one.
    """
    return _CLUSTER.get()


def pytest_runtest_teardown(item, nextitem):
    """Close the shared cluster when the next test is not one of the modules that use it."""
    if nextitem is None or nextitem.path.name not in SAME_WORKER[0]:
        _CLUSTER.close()


# The slowest modules, with their CPU seconds (the module's tests, fixtures and the processes
# they start; measured under `pytest -n 2` on a shared 2-core machine: only their ratios matter).
# They run first, each whole on one worker (module-scoped fixtures are set up once), dealt out by
# the scheduler below so that the two workers get about the same share; the many short tests then
# fill in behind them. xdist's own load scheduling sends each worker a first chunk of N/8
# consecutive tests: sorted slowest first, every slow module went to the first worker (626 s of
# tests there, 526 s on the other, in one measured run), and the run ended when that worker did.
SLOW_MODULES = {"test_scaleout.py": 40, "test_pipeline.py": 38, "test_docs.py": 33,
                "test_figures.py": 31, "test_cli.py": 30, "test_real_catalogues.py": 22,
                "test_apply.py": 11}
SLOW_MODULES_FIRST = sorted(SLOW_MODULES, key=SLOW_MODULES.get, reverse=True)
#: Modules dealt to the same worker, as one (they share ``dask_client``, closed after them).
SAME_WORKER = [("test_scaleout.py", "test_pipeline.py")]


def pytest_collection_modifyitems(config, items):
    """Start the slowest modules first (a stable sort: every worker collects the same order)."""
    rank = {name: i for i, name in enumerate(SLOW_MODULES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def _deal_slow_modules(collection, nodes):
    """``{node: [index, ...]}``: each slow module's tests (or group's, ``SAME_WORKER``), the
    costliest first, to the node with the least CPU so far."""
    group = {name: names[0] for names in SAME_WORKER for name in names}
    modules, members = {}, {}
    for i, nodeid in enumerate(collection):
        name = Path(nodeid.split("::")[0]).name
        if name in SLOW_MODULES:
            modules.setdefault(group.get(name, name), set()).add(name)
            members.setdefault(group.get(name, name), []).append(i)
    load = {node: 0.0 for node in nodes}
    plan = {node: [] for node in nodes}
    cost = {key: sum(SLOW_MODULES[name] for name in names) for key, names in modules.items()}
    for key in sorted(cost, key=cost.get, reverse=True):
        node = min(nodes, key=load.get)  # the first such node on a tie
        load[node] += cost[key]
        plan[node].extend(members[key])
    return {node: sorted(indices) for node, indices in plan.items()}


@pytest.hookimpl(optionalhook=True)  # an xdist hook: pytest without xdist runs too
def pytest_xdist_make_scheduler(config, log):
    """``-n N`` (``--dist load``): xdist's load scheduling with the slow modules dealt out first."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScheduling

    if not callable(getattr(LoadScheduling, "_send_tests", None)):
        return None  # an xdist whose internals differ: its own scheduling (slower, still right)
    class SlowModulesDealt(LoadScheduling):
        """The first chunk each node is sent is its share of the slow modules (then as xdist's)."""

        _plan = None

        def _send_tests(self, node, num):
            if self._plan is None:
                self._plan = _deal_slow_modules(self.collection, self.nodes)
                dealt = {i for indices in self._plan.values() for i in indices}
                self.pending[:] = [i for i in self.pending if i not in dealt]
            indices = self._plan.pop(node, None)
            if not indices:
                return super()._send_tests(node, num)
            self.node2pending[node].extend(indices)
            node.send_runtest_some(indices)

    return SlowModulesDealt(config, log)


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


# The numba kernels are compiled on first use and cached beside their modules (``cache=True``,
# in __pycache__). In a fresh clone every xdist worker, and every process a test starts before a
# cache is written (the docs build, Dask workers), compiled the same kernels at the same time:
# ~8.5 CPU-s each. Under xdist the controller compiles them once, in a thread, while the workers
# start and collect (~12 CPU-s each); a worker waits for it before its first test and then loads
# them from the cache (~0.1 s). In a warm checkout the thread only loads the cache.
_KERNELS_READY = "SKLEARN_SELFCAL_TESTS_KERNELS_READY"


def _compile_kernels(marker):
    """Call every compiled kernel once on one star (writes numba's cache), then touch ``marker``."""
    try:
        pot = galpy_potential(default_potential())
        params = staeckel_compiled.cached_compiled_potential(pot)
        one = np.ones(1)
        staeckel_compiled.potential(params, one, 0.01 * one)
        staeckel_compiled.actions(params, one, 0.01 * one, 0.1 * one, one, 0.05 * one, 0.5 * one)
        table = orbit_sampling.force_table(pot)
        orbit_sampling.interpolated_forces(table, one, 0.0 * one, 0.01 * one)
        orbit_sampling.sample_orbits(pot, one, 0.01 * one, 0.1 * one, one, 0.05 * one,
                                     interval=0.1 * one, n_min=3, n_max=4, n_events=1,
                                     table=table)
    finally:  # a failure here shows in the tests that call the kernel: the workers go on
        Path(marker).touch()


def pytest_collection_finish(session):
    """In an xdist worker, wait (collected, before the first test) for the controller's kernels."""
    marker = os.environ.get(_KERNELS_READY)
    if marker and "PYTEST_XDIST_WORKER" in os.environ:
        deadline = time.monotonic() + 300.0
        while not os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.05)


def pytest_configure(config):
    """In an xdist worker, limit the BLAS and OpenMP threads to this worker's share of the cores;
    in the xdist controller, compile the numba kernels once for the workers."""
    global _THREAD_LIMITS
    n_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if "PYTEST_XDIST_WORKER" not in os.environ:
        if getattr(config.option, "dist", "no") != "no" and not config.option.collectonly:
            marker = Path(tempfile.mkdtemp(prefix="selfcal-kernels-")) / "ready"
            os.environ[_KERNELS_READY] = str(marker)  # inherited by the workers started next
            threading.Thread(target=_compile_kernels, args=(marker,), daemon=True).start()
        return
    if n_workers < 1:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    share = max(1, (cores or 1) // n_workers)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "LOKY_MAX_CPU_COUNT"):
        os.environ[name] = str(share)
    _THREAD_LIMITS = threadpool_limits(share)


def pytest_unconfigure(config):
    """The controller removes the marker's directory."""
    marker = os.environ.get(_KERNELS_READY)
    if marker and "PYTEST_XDIST_WORKER" not in os.environ:
        shutil.rmtree(Path(marker).parent, ignore_errors=True)
