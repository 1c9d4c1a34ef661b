"""Facts about APOGEE data products shared by the readers and the simulator."""

from __future__ import annotations

import numpy as np

__all__ = [
    "ASPCAP_CHIP_RANGES",
    "N_ASPCAP_PIXELS",
    "aspcap_wavelength",
]

#: apStar pixel ranges [start, stop) of the three detector chips kept on the ASPCAP grid (blue, green,
#: red); the chip gaps between them are not part of the 7,514-pixel grid.
ASPCAP_CHIP_RANGES = ((246, 3274), (3585, 6080), (6344, 8335))
N_ASPCAP_PIXELS = sum(b - a for a, b in ASPCAP_CHIP_RANGES)  # 7514
#: log10(wavelength / Angstrom) of apStar pixel 0 and the step per pixel.
LOG10_LAMBDA0 = 4.179
DLOG10_LAMBDA = 6e-6


def aspcap_wavelength():
    """Vacuum wavelength of the 7,514 ASPCAP pixels.

    Returns
    -------
    wavelength : ndarray of shape (7514,)
        Wavelength (Angstrom), log-uniform: ``log10(lambda) = 4.179 + 6e-6 * apstar_pixel``.
    """
    pix = np.concatenate([np.arange(a, b) for a, b in ASPCAP_CHIP_RANGES])
    return 10.0 ** (LOG10_LAMBDA0 + DLOG10_LAMBDA * pix)

