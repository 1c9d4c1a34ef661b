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
