"""Fixtures shared by several test modules (plain helpers are in ``tests/_helpers.py``)."""

import joblib
import pytest

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
