"""File formats recognised by suffix."""

from __future__ import annotations

from pathlib import Path

__all__ = ["FITS", "PARQUET", "CSV", "ECSV", "HDF5", "LISTS", "NPY", "kind_of"]

FITS = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
PARQUET = (".parquet", ".pq")
CSV = (".csv", ".csv.gz")
ECSV = (".ecsv",)
HDF5 = (".h5", ".hdf5", ".hdf")
LISTS = (".txt", ".lst", ".list")
NPY = (".npy",)


def kind_of(path, kinds):
    """The key of ``kinds`` (a dict of format -> suffixes) whose suffix ``path`` ends with.

    Raises
    ------
    ValueError
        Naming the file and the accepted suffixes.
    """
    name = Path(path).name.lower()
    for kind, suffixes in kinds.items():
        if name.endswith(suffixes):
            return kind
    expected = ", ".join(s for suffixes in kinds.values() for s in suffixes)
    raise ValueError(f"{path}: unsupported file format {Path(path).suffix!r}; expected one of "
                     f"{expected}")
