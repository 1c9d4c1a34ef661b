"""The survey's selection: an H-band magnitude window, shallower towards the bulge."""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_TARGETING", "bulge_field", "is_targeted"]

DEFAULT_TARGETING = {
    "h_bright": 7.0,          # mag
    "h_faint": 12.2,          # mag, APOGEE main-survey limit in disk fields
    "bulge_h_faint": 11.0,    # mag, shallower limit in bulge fields: only the most luminous giants
    "bulge_max_l": 15.0,      # deg, bulge fields: |l| < 15 and |b| < 12
    "bulge_max_b": 12.0,
    # a fixed number of fibres per field under-samples the crowded inner Galaxy: the probability of
    # targeting a visible star falls from 1 towards the anticentre to centre_weight towards l = 0
    "centre_weight": 0.3,
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
