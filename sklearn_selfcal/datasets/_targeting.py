"""The survey's selection: an H-band magnitude window, shallower towards the bulge, and the
telescope that observes each star (APO in the north, LCO in the south)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

__all__ = ["DEFAULT_TARGETING", "TELESCOPES", "bulge_field", "is_targeted", "assign_telescope"]

#: The two APOGEE spectrographs' telescope names, (northern, southern).
TELESCOPES = ("apo25m", "lco25m")

DEFAULT_TARGETING = {
    "h_bright": 7.0,          # mag
    "h_faint": 12.2,          # mag, APOGEE main-survey limit in disk fields
    "bulge_h_faint": 11.0,    # mag, shallower limit in bulge fields: only the most luminous giants
    "bulge_max_l": 15.0,      # deg, bulge fields: |l| < 15 and |b| < 12
    "bulge_max_b": 12.0,
    # a fixed number of fibres per field under-samples the crowded inner Galaxy: the probability of
    # targeting a visible star falls from 1 towards the anticentre to centre_weight towards l = 0
    "centre_weight": 0.3,
    # telescope: None observes every star south of dec = -20 deg from LCO and the rest from APO; a
    # fraction f in (0, 1) observes a star from LCO with probability expit((d0 - dec) / width),
    # d0 set so that the expected LCO fraction of the survey is f (southern fields, which hold the
    # bulge and the inner disk, go to LCO; a band of declinations is shared by both telescopes)
    "lco_fraction": None,
    "lco_dec_width": 8.0,     # deg
}


def bulge_field(l, b, targeting):
    """True for stars in the bulge fields (Galactic longitude and latitude in degrees)."""
    l_wrapped = (np.asarray(l) + 180.0) % 360.0 - 180.0
    return (np.abs(l_wrapped) < targeting["bulge_max_l"]) & (np.abs(b) < targeting["bulge_max_b"])


def is_targeted(rng, h_mag, l, b, targeting):
    """Boolean mask of stars that pass the magnitude window of their field and are picked."""
    faint = np.where(bulge_field(l, b, targeting), targeting["bulge_h_faint"], targeting["h_faint"])
    w = targeting["centre_weight"]
    p_pick = w + (1.0 - w) * 0.5 * (1.0 - np.cos(np.deg2rad(l)))
    return (h_mag >= targeting["h_bright"]) & (h_mag <= faint) & (rng.uniform(0, 1, np.size(l)) < p_pick)


def assign_telescope(rng, dec, targeting):
    """Telescope name of every star (``"apo25m"`` or ``"lco25m"``) from its declination (deg).

    Parameters
    ----------
    rng : numpy.random.Generator
        Used only when ``targeting["lco_fraction"]`` is set.
    dec : ndarray
        Declination (deg).
    targeting : dict
        ``lco_fraction`` (None or a number in (0, 1)) and ``lco_dec_width`` (deg).

    Returns
    -------
    telescope : ndarray of object
    """
    dec = np.asarray(dec, dtype=float)
    fraction = targeting["lco_fraction"]
    if fraction is None:
        lco = dec < -20.0
    else:
        fraction = float(fraction)
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"lco_fraction must be None or a number in (0, 1), got {fraction!r}")
        width = float(targeting["lco_dec_width"])
        if not width > 0:
            raise ValueError(f"lco_dec_width must be positive (deg), got {width!r}")

        def excess(d0):
            return expit((d0 - dec) / width).mean() - fraction

        d0 = brentq(excess, -90.0 - 20 * width, 90.0 + 20 * width, xtol=1e-6)
        lco = rng.uniform(0.0, 1.0, dec.size) < expit((d0 - dec) / width)
    return np.where(lco, TELESCOPES[1], TELESCOPES[0]).astype(object)
