"""Run the method on catalogues larger than one machine's memory, with Dask.

Fitted transforms (:func:`transform_partitions`, :func:`apply_to_parquet`,
:func:`apply_to_hats`) map a fitted pipeline over the partitions of a catalogue. Fits and
aggregations are reductions over partitions that give the in-memory results:
:func:`fit_calibrator_distributed` (normal equations summed over partitions),
:func:`radial_profile_distributed` and :func:`face_on_map_distributed` (exact medians: the stars
are shuffled so that every bin lies in one partition) and :func:`fit_parallax_distributed` (the
parallax model's solver with every pass over the rows of a row-chunked ``dask.array`` of features
run on the workers that hold them). :func:`dask_client` runs a whole
``sklearn-selfcal run`` on a cluster (``--scheduler``). See :doc:`/scaling`.

Dask is an optional dependency (``pip install "sklearn-selfcal[dask]"``).
"""

from __future__ import annotations

from ..spectra import register_dask
from ._binned import face_on_map_distributed, radial_profile_distributed
from ._calibration import fit_calibrator_distributed
from ._cluster import LOCAL_SCHEDULER, dask_client, partitioned
from ._parallax import DaskRowBlocks, features_to_dask_array, fit_parallax_distributed
from ._transform import apply_to_hats, apply_to_parquet, transform_partitions

try:  # spectra columns (SpectraArray) in Dask DataFrames
    register_dask()
except ImportError:  # pragma: no cover - dask is optional
    pass

__all__ = [
    "transform_partitions",
    "apply_to_parquet",
    "apply_to_hats",
    "fit_calibrator_distributed",
    "radial_profile_distributed",
    "face_on_map_distributed",
    "fit_parallax_distributed",
    "features_to_dask_array",
    "DaskRowBlocks",
    "dask_client",
    "partitioned",
    "LOCAL_SCHEDULER",
]
