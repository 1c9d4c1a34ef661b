"""Independent, reproducible random streams for each piece of the simulated survey."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["seed_sequence", "spawn_generators"]


def seed_sequence(random_state):
    """Turn a scikit-learn style ``random_state`` into a :class:`numpy.random.SeedSequence`.

    Parameters
    ----------
    random_state : None, int, numpy.random.RandomState, numpy.random.Generator or SeedSequence
        ``None`` draws fresh entropy; an int is a seed; a RandomState or Generator is advanced by
        one draw to derive a seed.
    """
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if random_state is None or isinstance(random_state, numbers.Integral):
        return np.random.SeedSequence(None if random_state is None else int(random_state))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(0, 2**31 - 1)))
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(0, 2**63 - 1)))
    raise TypeError(f"random_state must be None, an int, a RandomState or a Generator, got {random_state!r}")


def spawn_generators(random_state, names):
    """One independent :class:`numpy.random.Generator` per name, derived from ``random_state``.

    Each stream depends only on the seed and its position in ``names``, so that e.g. changing the
    number of spectral pixels never changes the simulated catalogue.
    """
    children = seed_sequence(random_state).spawn(len(names))
    return {name: np.random.default_rng(child) for name, child in zip(names, children)}
