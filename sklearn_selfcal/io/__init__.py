"""Readers and writers for real survey data, by format, all passing through the same cleaning.

* :mod:`~sklearn_selfcal.io.allstar` -- APOGEE ``allStar`` catalogues (DR16/DR17 FITS), read
  column by column from a memory map;
* :mod:`~sklearn_selfcal.io.catalogue` -- any catalogue (FITS, Parquet, CSV, ECSV, HDF5), reading
  only the columns asked for;
* :mod:`~sklearn_selfcal.io.spectra` -- ``aspcapStar`` files, ``.npy`` and HDF5 spectra;
* :mod:`~sklearn_selfcal.io.write` -- Parquet/FITS catalogues and ECSV tables, written atomically;
* :mod:`~sklearn_selfcal.io.outdir` -- the output directory of a run: private, locked, moved
  into place at the end.

Sentinels, masks, physical ranges and flags are handled once, in :mod:`sklearn_selfcal.cleaning`;
a damaged file is always named as such (FITS ``CHECKSUM`` / ``DATASUM`` cards are verified when
present; :func:`verify_checksums` turns that off).
"""

from ._integrity import verify_checksums
from .allstar import ALLSTAR_SENTINELS, GAIA_NAMES, load_allstar
from .catalogue import catalogue_columns, read_catalogue
from .spectra import load_aspcap_spectra, read_spectra
from .write import atomic_write, write_catalogue, write_table

__all__ = [
    "ALLSTAR_SENTINELS",
    "GAIA_NAMES",
    "catalogue_columns",
    "load_allstar",
    "load_aspcap_spectra",
    "read_catalogue",
    "read_spectra",
    "write_catalogue",
    "write_table",
    "atomic_write",
    "verify_checksums",
]
