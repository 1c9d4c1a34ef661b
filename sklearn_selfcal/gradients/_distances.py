"""Monte Carlo draws of distances and Galactocentric radii from distance uncertainties.

The radial profiles' distance uncertainty is propagated by redrawing every star's distance and
recomputing its Galactocentric radius. The transformation from a heliocentric position to the
Galactocentric frame is affine, so a star's Galactocentric position is ``origin + d * u`` for
distance ``d`` along its line of sight: the two vectors are computed once per star with astropy
(:func:`~sklearn_selfcal.coordinates.galactocentric_frame`, the paper's frame) and every draw then
costs a few array operations.
"""

from __future__ import annotations

import astropy.coordinates as coord
import astropy.units as u
import numpy as np

from .._kernels.sampling import as_generator
from .._validation import check_finite_column, check_positive_column
from ..coordinates import galactocentric_frame

__all__ = ["sample_distances", "galactocentric_radius", "radius_sampler"]


def _check(value, error, kind):
    if kind not in ("parallax", "distance"):
        raise ValueError(f"kind must be 'parallax' or 'distance'; got {kind!r}")
    unit = "mas" if kind == "parallax" else "kpc"
    value = check_positive_column(check_finite_column(np.asarray(value, dtype=float),
                                                      f"{kind} ({unit})"), f"{kind} ({unit})")
    error = np.broadcast_to(np.asarray(error, dtype=float), value.shape)
    check_finite_column(error, f"{kind} error ({unit})")
    if (error < 0).any():
        bad = np.flatnonzero(error < 0)
        raise ValueError(f"column '{kind} error ({unit})' must be >= 0; {bad.size} value(s) are "
                         f"not: rows {bad[:5].tolist()}")
    return value, error


def sample_distances(value, error, *, n_draws=None, kind="parallax", random_state=None):
    """Draw distances (kpc) from a parallax or a distance and its uncertainty.

    The draws are log-normal, ``value * exp(f * N(0, 1))`` with the fractional uncertainty
    ``f = error / value``: always positive, with the median at the estimate, as for the
    spectro-photometric parallaxes whose model (and whose uncertainty) is fractional.

    Parameters
    ----------
    value : array-like of shape (n_stars,)
        Parallax (mas, ``kind="parallax"``, e.g. ``spec_parallax``) or distance (kpc); positive.
    error : array-like of shape (n_stars,) or float
        Its 1-sigma uncertainty (same unit), >= 0.
    n_draws : int, optional
        Number of draws; ``None`` gives one draw of shape (n_stars,).
    kind : {"parallax", "distance"}, default "parallax"
        Whether ``value`` is a parallax (mas) or a distance (kpc).
    random_state : int, numpy Generator or RandomState, or None
        Seed or generator of the draws; ``None`` draws fresh entropy.

    Returns
    -------
    distance : ndarray of shape (n_draws, n_stars) or (n_stars,)
        Distances (kpc).

    Raises
    ------
    ValueError
        If a value is not positive and finite or an uncertainty negative or not finite (the
        message names the rows).
    """
    value, error = _check(value, error, kind)
    rng = as_generator(random_state)
    shape = value.shape if n_draws is None else (int(n_draws),) + value.shape
    draw = value * np.exp((error / value) * rng.standard_normal(shape))
    return 1.0 / draw if kind == "parallax" else draw


def _line_of_sight(ra, dec, frame):
    """``origin`` and ``direction`` (3, n) with Galactocentric position ``origin + d direction``."""
    frame = galactocentric_frame() if frame is None else frame
    ra = np.asarray(ra, dtype=float)
    dec = np.asarray(dec, dtype=float)
    check_finite_column(ra, "ra")
    check_finite_column(dec, "dec")
    points = []
    for d in (1.0, 2.0):
        c = coord.SkyCoord(ra=ra * u.deg, dec=dec * u.deg, distance=np.full(ra.shape, d) * u.kpc,
                           frame="icrs").transform_to(frame)
        points.append(np.vstack([c.x.to_value(u.kpc), c.y.to_value(u.kpc), c.z.to_value(u.kpc)]))
    direction = points[1] - points[0]
    return points[0] - direction, direction


def galactocentric_radius(ra, dec, distance, *, frame=None):
    """Galactocentric cylindrical radius (kpc) of stars at the given distances.

    Parameters
    ----------
    ra, dec : array-like of shape (n_stars,)
        ICRS coordinates (deg).
    distance : array-like of shape (n_stars,) or (n_draws, n_stars)
        Heliocentric distances (kpc), e.g. from :func:`sample_distances`.
    frame : astropy.coordinates.Galactocentric, optional
        Default: the paper's frame (:func:`~sklearn_selfcal.coordinates.galactocentric_frame`).

    Returns
    -------
    R : ndarray, shape of ``distance``
        ``sqrt(x^2 + y^2)`` in the Galactocentric frame (kpc).

    Examples
    --------
    >>> from sklearn_selfcal.gradients import galactocentric_radius
    >>> R = galactocentric_radius([266.405], [-28.936], [8.178])  # towards the Galactic centre
    >>> bool(R[0] < 0.05)
    True
    """
    origin, direction = _line_of_sight(ra, dec, frame)
    d = np.asarray(distance, dtype=float)
    x = origin[0] + d * direction[0]
    y = origin[1] + d * direction[1]
    return np.hypot(x, y)


def radius_sampler(ra, dec, value, error, *, kind="parallax", frame=None):
    """A function drawing every star's Galactocentric radius (kpc) from its distance uncertainty.

    For :func:`~sklearn_selfcal.gradients.radial_abundance_profile`'s ``radius_draws``: each call
    ``draw(rng)`` returns one Monte Carlo draw of shape (n_stars,), so that only one draw is held
    in memory at a time. The lines of sight are computed once.

    Parameters
    ----------
    ra, dec : array-like of shape (n_stars,)
        ICRS coordinates (deg).
    value, error : array-like of shape (n_stars,)
        Parallax and its uncertainty (mas; e.g. ``spec_parallax``, ``spec_parallax_err``) or
        distance and its uncertainty (kpc), see :func:`sample_distances`.
    kind : {"parallax", "distance"}, default "parallax"
        Whether ``value`` is a parallax (mas) or a distance (kpc).
    frame : astropy.coordinates.Galactocentric, optional
        Default: the paper's frame (:func:`~sklearn_selfcal.coordinates.galactocentric_frame`).

    Returns
    -------
    draw : callable
        ``draw(rng) -> ndarray (n_stars,)`` (kpc), ``rng`` a :class:`numpy.random.Generator`.
    """
    value, error = _check(value, error, kind)
    origin, direction = _line_of_sight(ra, dec, frame)

    def draw(rng):
        d = sample_distances(value, error, kind=kind, random_state=rng)
        return np.hypot(origin[0] + d * direction[0], origin[1] + d * direction[1])

    return draw
