"""Spectra as one column of a catalogue: a pandas extension array backed by a 2-D array or a file.

A survey table carries its catalogue columns and, in two more columns, every star's spectrum and
its uncertainty (:func:`join_spectra` builds it). Each of these columns is a
:class:`SpectraArray`: a pandas ``ExtensionArray`` whose row ``i`` is star ``i``'s spectrum, but
whose pixels stay in one 2-D block -- an array in memory, a ``.npy`` file or an HDF5 dataset --
and are only read when a consumer asks for a block of rows (:meth:`SpectraArray.iter_blocks`).
Selecting rows (``table.iloc[rows]``, a boolean mask, the folds of cross-validation,
``sklearn.utils._safe_indexing``) composes row indices and never copies a pixel, so a table of
50,000 spectra is as cheap to slice, concatenate and pickle as its catalogue columns (a
file-backed array pickles as its path). The pixels are read-only.

Compared with one DataFrame column per pixel (15,028 columns for APOGEE's 7,514 pixels and their
errors), this keeps Pipeline, GridSearchCV, ``set_output(transform="pandas")`` and pickling
working unchanged while row selection, column look-up and feature extraction stop scaling with the
number of pixels. Tables are written to Parquet as fixed-size lists (``pyarrow``) and read back as
:class:`SpectraArray` columns.
"""

from __future__ import annotations

import os
import re
import sys

import numpy as np
import pandas as pd
from pandas.api.extensions import (ExtensionArray, ExtensionDtype, register_extension_dtype,
                                   take)

__all__ = ["SpectraDtype", "SpectraArray", "join_spectra", "spectra_block_rows", "register_dask"]

#: Default number of bytes of raw spectra read at once (one block, in the source's dtype): a few
#: MB, so that the chain of elementwise operations a consumer runs on a block stays in cache.
DEFAULT_BLOCK_BYTES = 4 * 2**20


def spectra_block_rows(n_pixels, itemsize=4, block_bytes=DEFAULT_BLOCK_BYTES):
    """Count the rows of ``n_pixels`` values of ``itemsize`` bytes that fit in ``block_bytes``.

    Parameters
    ----------
    n_pixels : int
        Pixels per spectrum.
    itemsize : int, default=4
        Bytes per pixel value (4 for float32).
    block_bytes : int, default=DEFAULT_BLOCK_BYTES
        Bytes of raw spectra to read at once (4 MiB by default).

    Returns
    -------
    n_rows : int
        Rows per block, at least 1 (a single spectrum larger than ``block_bytes`` is one block).

    Examples
    --------
    >>> spectra_block_rows(7514, itemsize=4, block_bytes=4 * 2**20)
    139
    >>> spectra_block_rows(10**6, block_bytes=1024)
    1
    """
    return max(1, int(block_bytes) // max(1, int(n_pixels) * int(itemsize)))


# --------------------------------------------------------------------------------------------
# row sources: where the pixels live
# --------------------------------------------------------------------------------------------
class _MemoryRows:
    """Rows of a 2-D array in memory (or a ``numpy.memmap``: its pages count as resident)."""

    def __init__(self, array):
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype

    def read(self, rows):
        """``array[rows]`` for sorted unique ``rows`` (a read-only view for a range of rows)."""
        if rows.size and rows[-1] - rows[0] + 1 == rows.size:
            view = self.array[rows[0]:rows[-1] + 1].view()
            view.flags.writeable = False
            return view
        return self.array[rows]

    def describe(self):
        return "memory"


class _NpyRows:
    """Rows of a C-ordered ``.npy`` file, read with positioned reads (no memory map, no cache)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        with open(self.path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(fh)
            self.offset = fh.tell()
        if len(shape) != 2 or fortran:
            raise ValueError(f"{self.path}: spectra must be a C-ordered 2-D array (n_stars, "
                             f"n_pixels); got shape {shape}{' in Fortran order' if fortran else ''}")
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        expected = self.offset + int(np.prod(self.shape)) * self.dtype.itemsize
        if os.path.getsize(self.path) < expected:
            raise ValueError(f"{self.path}: corrupt or truncated .npy file (its header announces "
                             f"{expected:,} bytes, the file has {os.path.getsize(self.path):,})")
        self._fd = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_fd"} | {"_fd": None}

    def read(self, rows):
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        width = self.shape[1] * self.dtype.itemsize
        out = np.empty((rows.size, self.shape[1]), dtype=self.dtype)
        buf = out.reshape(-1).view(np.uint8)
        # runs of consecutive rows are read with one call each
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        for start, stop in zip(np.r_[0, breaks], np.r_[breaks, rows.size]):
            view = memoryview(buf[start * width:stop * width])
            got = os.preadv(self._fd, [view], self.offset + int(rows[start]) * width)
            if got != len(view):
                raise OSError(f"{self.path}: short read of rows {rows[start]}-{rows[stop - 1]}")
        return out

    def describe(self):
        return self.path


class _HDF5Rows:
    """Rows of a 2-D HDF5 dataset (h5py); dense row sets are read as ranges."""

    def __init__(self, path, dataset):
        import h5py

        self.path, self.dataset = os.fspath(path), dataset
        with h5py.File(self.path, "r") as fh:
            if dataset not in fh:
                raise KeyError(f"{self.path}: no dataset {dataset!r} (found {list(fh.keys())})")
            ds = fh[dataset]
            if ds.ndim != 2:
                raise ValueError(f"{self.path}:{dataset}: spectra must be 2-D (n_stars, n_pixels); "
                                 f"got shape {ds.shape}")
            self.shape, self.dtype = tuple(ds.shape), ds.dtype
        self._file = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_file"} | {"_file": None}

    def read(self, rows):
        import h5py

        if self._file is None:
            self._file = h5py.File(self.path, "r")
        ds = self._file[self.dataset]
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        if rows.size * 4 >= hi - lo:       # dense: read the range, select in memory
            return ds[lo:hi][rows - lo]
        return ds[rows]

    def describe(self):
        return f"{self.path}:{self.dataset}"


# --------------------------------------------------------------------------------------------
# the pandas extension type
# --------------------------------------------------------------------------------------------
@register_extension_dtype
class SpectraDtype(ExtensionDtype):
    """Dtype of a :class:`SpectraArray`: one spectrum of ``n_pixels`` values per row.

    Parameters
    ----------
    n_pixels : int
        Pixels per spectrum.
    pixel_dtype : str or numpy dtype, default="float32"
        Dtype of the stored pixel values.
    """

    type = np.ndarray
    kind = "O"
    na_value = np.nan
    _metadata = ("n_pixels", "pixel_dtype")
    _match = re.compile(r"^spectra\[(?P<dtype>\w+),\s*(?P<n>\d+)\]$")

    def __init__(self, n_pixels=0, pixel_dtype="float32"):
        self.n_pixels = int(n_pixels)
        self.pixel_dtype = np.dtype(pixel_dtype).name

    @property
    def name(self):
        """The dtype's string name, ``"spectra[<pixel dtype>,<n_pixels>]"``.

        Returns
        -------
        str
            E.g. ``"spectra[float32,7514]"``; :meth:`construct_from_string` parses it back.
        """
        return f"spectra[{self.pixel_dtype},{self.n_pixels}]"

    @classmethod
    def construct_array_type(cls):
        return SpectraArray

    @classmethod
    def construct_from_string(cls, string):
        if not isinstance(string, str):
            raise TypeError(f"'construct_from_string' expects a string, got {type(string)}")
        m = cls._match.match(string)
        if m is None:
            raise TypeError(f"Cannot construct a 'SpectraDtype' from '{string}'")
        return cls(int(m["n"]), m["dtype"])

    def __from_arrow__(self, array):
        """Rebuild the column from Parquet / Arrow (fixed-size lists of the pixel values)."""
        import pyarrow as pa

        chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
        blocks = [c.flatten().to_numpy(zero_copy_only=False).reshape(len(c), self.n_pixels)
                  for c in chunks]
        values = (np.concatenate(blocks) if blocks
                  else np.empty((0, self.n_pixels), dtype=self.pixel_dtype))
        return SpectraArray(values.astype(self.pixel_dtype, copy=False))


class SpectraArray(ExtensionArray):
    """Spectra of many stars as one DataFrame column; rows selected lazily, pixels read in blocks.

    Parameters
    ----------
    values : ndarray of shape (n_stars, n_pixels) or a row source
        The pixels (continuum-normalised flux or its uncertainty, dimensionless). Not copied.
    rows : ndarray of int, optional
        Rows of ``values`` that this array holds, in order (``-1``: a missing spectrum, read as
        NaN). Default: every row.

    Notes
    -----
    Build one with :meth:`from_array`, :meth:`from_npy` or :meth:`from_hdf5`, or a whole table with
    :func:`join_spectra`. Consumers read the pixels with :meth:`iter_blocks` or :meth:`to_numpy_2d`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_selfcal.spectra import SpectraArray
    >>> flux = np.arange(12, dtype=np.float32).reshape(4, 3)
    >>> table = pd.DataFrame({"id": [10, 11, 12, 13], "FLUX": SpectraArray.from_array(flux)})
    >>> sub = table.iloc[[3, 1]]                      # no pixel is copied
    >>> sub["FLUX"].array.to_numpy_2d()
    array([[ 9., 10., 11.],
           [ 3.,  4.,  5.]], dtype=float32)
    """

    def __init__(self, values, rows=None):
        source = values if hasattr(values, "read") else _MemoryRows(_as_2d(values))
        self._source = source
        self._rows = None if rows is None else np.asarray(rows, dtype=np.intp)
        self._dtype = SpectraDtype(source.shape[1], source.dtype)

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_array(cls, values):
        """Spectra held in a 2-D array (or ``numpy.memmap``) of shape (n_stars, n_pixels)."""
        return cls(values)

    @classmethod
    def from_npy(cls, path):
        """Spectra in a ``.npy`` file, read by row blocks with positioned reads (bounded memory)."""
        return cls(_NpyRows(path))

    @classmethod
    def from_hdf5(cls, path, dataset):
        """Spectra in a 2-D dataset of an HDF5 file (needs ``h5py``), read by row blocks."""
        return cls(_HDF5Rows(path, dataset))

    # ---------------------------------------------------------------- array protocol
    @classmethod
    def _from_sequence(cls, scalars, *, dtype=None, copy=False):
        if isinstance(scalars, SpectraArray):
            return scalars
        rows = [np.asarray(s) for s in scalars]
        n_pixels = dtype.n_pixels if isinstance(dtype, SpectraDtype) else None
        if not rows:
            return cls(np.empty((0, n_pixels or 0), dtype=np.float32))
        width = n_pixels or max(r.size for r in rows if r.ndim)
        stacked = np.stack([r if r.ndim else np.full(width, np.nan) for r in rows])
        return cls(stacked)

    @classmethod
    def _from_factorized(cls, values, original):
        return original.take(values)

    @property
    def dtype(self):
        """The :class:`SpectraDtype` of this array (pixel dtype and pixels per spectrum).

        Returns
        -------
        SpectraDtype
            The dtype shared by every row.
        """
        return self._dtype

    @property
    def shape(self):
        """The shape of the column, ``(n_stars,)``: one spectrum per row.

        Returns
        -------
        tuple of int
            ``(len(self),)``.
        """
        return (len(self),)

    @property
    def n_pixels(self):
        """Pixels per spectrum."""
        return self._dtype.n_pixels

    @property
    def source(self):
        """Where the pixels are read from (``"memory"``, a ``.npy`` path or ``path:dataset``)."""
        return self._source.describe()

    def __len__(self):
        return self._source.shape[0] if self._rows is None else self._rows.size

    def _row_index(self):
        return np.arange(self._source.shape[0]) if self._rows is None else self._rows

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self._read(self._row_index()[[key]])[0]
        if isinstance(key, tuple) and len(key) == 1:
            key = key[0]
        key = pd.api.indexers.check_array_indexer(self, key) if not isinstance(key, slice) else key
        return type(self)(self._source, self._row_index()[key])

    def take(self, indices, *, allow_fill=False, fill_value=None):
        """Select rows by position without reading or copying a pixel.

        Parameters
        ----------
        indices : sequence of int
            Positions of the rows to take, in the order wanted.
        allow_fill : bool, default=False
            If True, ``-1`` in ``indices`` marks a missing spectrum (read as NaN); if False,
            negative indices count from the end, as in :func:`numpy.take`.
        fill_value : object, optional
            Ignored: a missing spectrum is always NaN. Accepted for the pandas
            ``ExtensionArray.take`` interface.

        Returns
        -------
        SpectraArray
            A new array on the same pixel source, holding the selected rows.
        """
        rows = take(self._row_index(), indices, allow_fill=allow_fill, fill_value=-1)
        return type(self)(self._source, rows)

    def copy(self):
        """Return a copy of the row selection; the read-only pixels are shared, not copied.

        Returns
        -------
        SpectraArray
            A new array on the same pixel source with the same rows.
        """
        # the pixels are read-only: a copy shares them
        return type(self)(self._source, None if self._rows is None else self._rows.copy())

    def isna(self):
        """Flag the missing spectra (rows taken with ``-1``, e.g. by a reindexing).

        Returns
        -------
        ndarray of bool of shape (n_stars,)
            True where the row has no spectrum.
        """
        return self._row_index() < 0

    @property
    def nbytes(self):
        """The size of this array's pixels in bytes, whether in memory or on disk.

        Returns
        -------
        int
            ``n_stars * n_pixels * itemsize`` of the stored pixel dtype.
        """
        return len(self) * self.n_pixels * np.dtype(self._dtype.pixel_dtype).itemsize

    @classmethod
    def _concat_same_type(cls, to_concat):
        to_concat = list(to_concat)
        first = to_concat[0]._source
        if all(a._source is first for a in to_concat):
            return cls(first, np.concatenate([a._row_index() for a in to_concat]))
        return cls(np.concatenate([a.to_numpy_2d() for a in to_concat]))

    def __eq__(self, other):
        if not isinstance(other, SpectraArray) or len(other) != len(self):
            return np.zeros(len(self), dtype=bool)
        a, b = self.to_numpy_2d(), other.to_numpy_2d()
        return np.all((a == b) | (np.isnan(a) & np.isnan(b)), axis=1)

    def __setitem__(self, key, value):
        raise TypeError("SpectraArray is read-only: build a new one with SpectraArray.from_array")

    def __array__(self, dtype=None, copy=None):
        # what pandas asks for when it needs plain objects: one 1-D spectrum per row
        out = np.empty(len(self), dtype=object)
        out[:] = list(self.to_numpy_2d())
        return out

    def _formatter(self, boxed=False):
        return lambda spectrum: f"<spectrum: {np.size(spectrum)} px>"

    def __arrow_array__(self, type=None):
        import pyarrow as pa

        values = self.to_numpy_2d()
        return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), self.n_pixels)

    def _values_for_argsort(self):
        return self._row_index()

    # ---------------------------------------------------------------- reading pixels
    def _read(self, rows):
        """Pixels of source rows ``rows`` (any order, repeats and -1 allowed), in that order."""
        out_dtype = self._source.dtype
        missing = rows < 0
        if missing.any():
            out_dtype = np.result_type(out_dtype, np.float32)
        present = rows[~missing]
        uniq, inverse = np.unique(present, return_inverse=True)
        data = self._source.read(uniq) if uniq.size else np.empty((0, self.n_pixels), out_dtype)
        if uniq.size == rows.size and np.array_equal(uniq, rows):
            return data
        out = np.full((rows.size, self.n_pixels), np.nan, dtype=out_dtype)
        out[~missing] = data[inverse.ravel()]
        return out

    def iter_blocks(self, block_rows=None):
        """Yield ``(rows, pixels)`` for consecutive blocks of this array's rows.

        Parameters
        ----------
        block_rows : int, optional
            Rows per block (default: about 4 MB of pixels, :data:`DEFAULT_BLOCK_BYTES`).

        Yields
        ------
        rows : slice
            Positions of the block in this array.
        pixels : ndarray of shape (block size, n_pixels)
            In the stored dtype (NaN for missing spectra); a read-only view when the block is a
            range of rows of an array in memory, a fresh array otherwise.
        """
        n = len(self)
        step = block_rows or spectra_block_rows(self.n_pixels, self._source.dtype.itemsize)
        index = self._row_index()
        for start in range(0, n, step):
            stop = min(start + step, n)
            yield slice(start, stop), self._read(index[start:stop])

    def to_numpy_2d(self):
        """Read all the spectra into one 2-D array.

        Returns
        -------
        pixels : ndarray of shape (n_stars, n_pixels)
            In the stored dtype (NaN rows for missing spectra). A copy, except for a range of rows
            of an array in memory, which is returned as a read-only view.
        """
        if not len(self):
            return np.empty((0, self.n_pixels), dtype=self._source.dtype)
        return self._read(self._row_index())


def _as_2d(values):
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"spectra must be a 2-D array of shape (n_stars, n_pixels); got shape "
                         f"{values.shape}")
    if values.dtype.kind not in "fiu":
        raise ValueError(f"spectra must be numeric; got dtype {values.dtype}")
    return values


def join_spectra(frame, spectra, spectra_err=None, *, flux_column="FLUX",
                 flux_err_column="FLUX_ERR"):
    """Attach spectra to a catalogue: the input of the parallax model.

    Parameters
    ----------
    frame : DataFrame of shape (n_stars, n_columns)
        Catalogue (not modified).
    spectra : array-like of shape (n_stars, n_pixels) or SpectraArray
        Continuum-normalised flux (dimensionless, ~1 in the continuum): an array in memory (not
        copied), ``numpy.load(path, mmap_mode="r")``, or a file-backed
        :meth:`SpectraArray.from_npy` / :meth:`SpectraArray.from_hdf5`.
    spectra_err : same, optional
        1-sigma flux uncertainty (same units and shape).
    flux_column, flux_err_column : str
        Names of the two new columns.

    Returns
    -------
    table : DataFrame
        ``frame``'s columns, then ``flux_column`` (and ``flux_err_column``), each a
        :class:`SpectraArray` column; ``frame``'s index.

    Examples
    --------
    >>> from sklearn_selfcal.datasets import make_survey
    >>> from sklearn_selfcal.spectra import join_spectra
    >>> s = make_survey(n_stars=50, n_pixels=30, random_state=0)
    >>> table = join_spectra(s.frame, s.spectra, s.spectra_err)
    >>> str(table["FLUX"].dtype), table.shape == (50, s.frame.shape[1] + 2)
    ('spectra[float32,30]', True)
    """
    columns = {}
    for name, values in ((flux_column, spectra), (flux_err_column, spectra_err)):
        if values is None:
            continue
        array = values if isinstance(values, SpectraArray) else SpectraArray(values)
        if len(array) != len(frame):
            raise ValueError(f"{name}: spectra must have shape (n_stars={len(frame)}, n_pixels), "
                             f"got {len(array)} rows")
        columns[name] = array
    if spectra_err is not None and columns[flux_err_column].n_pixels != columns[flux_column].n_pixels:
        raise ValueError(f"spectra_err must have the shape of spectra ({len(frame)}, "
                         f"{columns[flux_column].n_pixels}), got {columns[flux_err_column].n_pixels} "
                         "pixels")
    added = pd.DataFrame({k: pd.Series(v, index=frame.index) for k, v in columns.items()})
    return pd.concat([frame, added], axis=1)


def _nonempty_spectra(dtype):
    return SpectraArray(np.ones((2, dtype.n_pixels), dtype=dtype.pixel_dtype))


def register_dask():
    """Teach ``dask.dataframe`` to make placeholder rows of spectra columns (needs dask).

    Dask builds two-row placeholders ("meta") of every column it handles; for an extension type it
    asks a registry, which this fills in. Called on import of this module when ``dask.dataframe``
    is already imported; call it once otherwise, before handing spectra tables to dask.
    """
    from dask.dataframe.extensions import make_array_nonempty

    make_array_nonempty.register(SpectraDtype)(_nonempty_spectra)


if "dask.dataframe" in sys.modules:   # pragma: no cover - depends on the import order
    register_dask()
