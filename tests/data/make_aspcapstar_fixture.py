"""Build ``aspcapStar-dr14-2M08002084+4044415.fits`` from ``aspcapstar_dr14_one_spectrum.npz``.

The npz holds one real APOGEE DR14 pseudo-continuum-normalised spectrum on the 7,514 ASPCAP
pixels (with their apStar pixel numbers). This script writes it in the layout of a real
DR14-DR17 aspcapStar file, so the aspcapStar reader can be tested on real values:

* HDU 0: primary header only;
* HDU 1: normalised flux, HDU 2: its 1-sigma uncertainty, HDU 3: best-fitting model; each a
  float32 image of 8,575 pixels on the apStar log-linear grid (zero outside the three detector
  chips), with ``CRVAL1 = 4.179``, ``CDELT1 = 6e-6`` (log10 Angstrom), ``CRPIX1 = 1``,
  ``CTYPE1 = 'LOG-LINEAR'``, ``DC-FLAG = 1``.

The npz carries no ASPCAP model, so HDU 3 is a placeholder of zeros (flagged in its header); the
ASPCAP table of HDU 4 of the real files is left out. Run from anywhere::

    python tests/data/make_aspcapstar_fixture.py
"""

from pathlib import Path

import numpy as np
from astropy.io import fits

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "aspcapstar_dr14_one_spectrum.npz"
TARGET = HERE / "aspcapStar-dr14-2M08002084+4044415.fits"
APOGEE_ID = "2M08002084+4044415"
N_APSTAR_PIXELS = 8575


def _image(values, pixels, comment):
    data = np.zeros(N_APSTAR_PIXELS, dtype=np.float32)
    data[pixels] = values
    hdu = fits.ImageHDU(data)
    hdu.header["CRVAL1"] = (4.179, "log10(lambda/Angstrom) of the reference pixel")
    hdu.header["CDELT1"] = (6e-6, "log10(lambda/Angstrom) step per pixel")
    hdu.header["CRPIX1"] = (1, "reference pixel (1-based)")
    hdu.header["CTYPE1"] = ("LOG-LINEAR", "wavelength axis")
    hdu.header["DC-FLAG"] = (1, "log-linear dispersion")
    hdu.header["COMMENT"] = comment
    return hdu


def main():
    npz = np.load(SOURCE)
    pixels = npz["apstar_pixel"]
    primary = fits.PrimaryHDU()
    primary.header["OBJID"] = (APOGEE_ID, "APOGEE ID")
    primary.header["COMMENT"] = (
        "Test fixture of sklearn-selfcal: real APOGEE DR14 spectrum from "
        "tingyuansen/payne-zero examples/data/apogee_dr14_example.npz, rewritten in the "
        "aspcapStar layout by tests/data/make_aspcapstar_fixture.py"
    )
    hdul = fits.HDUList([
        primary,
        _image(npz["normalized_flux"], pixels, "pseudo-continuum-normalised flux"),
        _image(npz["normalized_error"], pixels, "1-sigma uncertainty of the normalised flux"),
        _image(np.zeros(pixels.size), pixels,
               "placeholder: the source npz has no ASPCAP best-fitting model"),
    ])
    hdul.writeto(TARGET, overwrite=True)
    print(f"wrote {TARGET} ({TARGET.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
