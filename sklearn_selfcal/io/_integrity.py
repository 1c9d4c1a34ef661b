"""FITS integrity: checksums verified when present, column names unique, a damaged file named.

A FITS writer may record, for every HDU, ``DATASUM`` (the 32-bit ones' complement sum of the
data unit) and ``CHECKSUM`` (chosen so that the sum over the header and the data is all ones). A
file changed or corrupted after it was written fails them, and :func:`verify_fits_checksums`
raises an error naming the file and the HDU. The sums are computed from the file's bytes, a block
at a time, without building astropy's data objects (memory stays one block whatever the table).

Verification is on by default; ``with verify_checksums(False): ...`` turns it off (the command
line's ``--no-verify``), e.g. for a file known to have been edited by hand.

:func:`check_fits_file` is what the readers call on every file they open: the checksums, and the
column names of its tables (a name twice is an error naming it, where astropy says "name already
used as a name or title").
"""

from __future__ import annotations

import contextlib
import contextvars
import gzip

import numpy as np
from astropy.io import fits

from ..columns import check_unique

__all__ = ["check_fits_file", "verify_checksums", "verify_fits_checksums"]

_VERIFY = contextvars.ContextVar("sklearn_selfcal_verify_checksums", default=True)
_FITS_BLOCK = 2880
_READ_BYTES = 2**24  # a multiple of 4: every block but the last holds whole 32-bit words
_ALL_ONES = 0xFFFFFFFF


@contextlib.contextmanager
def verify_checksums(enabled=True):
    """Turn the verification of FITS checksums on or off within a ``with`` block.

    Parameters
    ----------
    enabled : bool, default=True
        Whether the readers (:func:`~sklearn_selfcal.io.read_catalogue`,
        :func:`~sklearn_selfcal.io.load_allstar`, :func:`~sklearn_selfcal.io.load_aspcap_spectra`)
        verify ``CHECKSUM`` / ``DATASUM`` cards.

    Yields
    ------
    None

    Examples
    --------
    >>> from sklearn_selfcal.io import read_catalogue, verify_checksums
    >>> with verify_checksums(False):
    ...     pass  # read_catalogue("edited-by-hand.fits") would not check its sums here
    """
    token = _VERIFY.set(bool(enabled))
    try:
        yield
    finally:
        _VERIFY.reset(token)


def check_fits_file(hdul, path):
    """Check an open FITS file before reading it: unique column names, then the checksums.

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
        The open file.
    path : str
        The file, named in the errors.

    Raises
    ------
    ValueError
        Naming the file and a column name that a table holds twice, or the HDU that fails its
        checksums (:func:`verify_fits_checksums`).
    """
    for i, hdu in enumerate(hdul):
        if isinstance(hdu, fits.BinTableHDU | fits.TableHDU):
            check_unique(hdu.columns.names, f"{path} (HDU {i})")
    verify_fits_checksums(hdul, path)


def _fold(total):
    """Ones' complement of a sum of 32-bit words: carries folded back into the low 32 bits."""
    while total >> 32:
        total = (total & _ALL_ONES) + (total >> 32)
    return total


def _sum_words(fh, start, size, path, what):
    """Ones' complement sum of ``size`` bytes from ``start`` (big-endian 32-bit words)."""
    fh.seek(start)
    total, remaining = 0, size
    while remaining:
        chunk = fh.read(min(_READ_BYTES, remaining))
        if not chunk:
            raise ValueError(f"{path}: corrupt or truncated FITS file (it ends inside {what})")
        remaining -= len(chunk)
        chunk += b"\0" * (-len(chunk) % 4)
        total += int(np.frombuffer(chunk, dtype=">u4").sum(dtype=np.uint64))
    return _fold(total)


def verify_fits_checksums(hdul, path):
    """Raise if an HDU of an open FITS file fails the ``DATASUM`` or ``CHECKSUM`` it carries.

    Does nothing inside ``verify_checksums(False)`` or when no HDU carries the cards.

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
        The open file (its headers read; its data need not be).
    path : str
        The file (read again here, by blocks; ``.gz`` files are decompressed as a stream).

    Raises
    ------
    ValueError
        ``"<path>: damaged FITS file: HDU <i> fails its DATASUM ..."`` (or ``CHECKSUM``).
    """
    if not _VERIFY.get():
        return
    checked = [(i, h) for i, h in enumerate(hdul)
               if "CHECKSUM" in h.header or "DATASUM" in h.header]
    if not checked:
        return
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        for i, hdu in checked:
            padded = -(-hdu._data_size // _FITS_BLOCK) * _FITS_BLOCK
            data_sum = _sum_words(fh, hdu._data_offset, padded, path, f"the data of HDU {i}")
            stored = str(hdu.header.get("DATASUM", "")).strip()
            if stored and stored != str(data_sum):
                raise ValueError(_damaged(path, i, "DATASUM", "its data were changed or corrupted"))
            if "CHECKSUM" in hdu.header:
                header_sum = _sum_words(fh, hdu._header_offset,
                                        hdu._data_offset - hdu._header_offset, path,
                                        f"the header of HDU {i}")
                if _fold(header_sum + data_sum) != _ALL_ONES:
                    raise ValueError(_damaged(path, i, "CHECKSUM",
                                              "its header or data were changed or corrupted"))


def _damaged(path, index, card, what):
    return (f"{path}: damaged FITS file: HDU {index} fails its {card} ({what} after it was "
            "written); read it anyway inside sklearn_selfcal.io.verify_checksums(False) or with "
            "--no-verify")
