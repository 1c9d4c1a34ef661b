"""Marks shared by the test modules that run the whole method (``run``, ``demo``, the Pipeline).

A run on simulated or real rows meets stars on unbound orbits (NaN actions: ``BadRowsWarning``) and
stars whose actions are inaccurate (``InaccurateActionsWarning``), and reports them to its user as
it should; the broken power law's short test chains (a few hundred steps) are shorter than its
autocorrelation check asks (``ConvergenceWarning``). The tests marked with these check other
things; the warnings themselves are asserted in tests/test_actions*.py and tests/test_gradients.py.
"""

import pytest

RUN_WARNINGS = [
    pytest.mark.filterwarnings("ignore::sklearn_selfcal.exceptions.BadRowsWarning"),
    pytest.mark.filterwarnings("ignore::sklearn_selfcal.exceptions.InaccurateActionsWarning"),
    pytest.mark.filterwarnings("ignore:the post-burn-in chain:sklearn.exceptions.ConvergenceWarning"),
]
