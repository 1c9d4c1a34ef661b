"""Progress reporting for long work (fits over many stars, action batches, MCMC)."""

from __future__ import annotations

from tqdm.auto import tqdm

__all__ = ["progress"]


def progress(iterable=None, *, total=None, desc=None, verbose=0, unit="it"):
    """Wrap ``iterable`` in a tqdm progress bar when ``verbose`` is truthy.

    Parameters
    ----------
    iterable : iterable, optional
        What to iterate over; with ``None`` a manually updated bar is returned.
    total : int, optional
        Number of items (if ``iterable`` has no length).
    desc : str, optional
        Label shown before the bar.
    verbose : int or bool
        Show the bar only when truthy; otherwise a silent, zero-overhead bar.
    unit : str
        Unit label (e.g. ``"star"``).

    Returns
    -------
    bar : tqdm.tqdm
        Iterate over it, or call ``bar.update(n)`` / ``bar.close()``.
    """
    return tqdm(iterable, total=total, desc=desc, disable=not verbose, unit=unit, leave=False)
