"""Named calibration models: :class:`NuisanceCalibrator` parameters a configuration can name."""

from __future__ import annotations

from types import MappingProxyType

from .._paper import LOGG_REFERENCE

__all__ = ["CALIBRATION_PRESETS"]

#: Teff (K) of the SDSS-V presets' reference star (with log g at the paper's 2.2 dex): inside the
#: giants' Teff spread at that log g, and the simulator's ``teff_reference``.
_TEFF_REFERENCE = 4500.0


def _preset(columns, reference):
    return MappingProxyType({
        "nuisance_columns": columns, "nuisance_reference": reference,
        "nuisance_basis": "polynomial", "nuisance_degree": 2, "nuisance_interactions": False,
    })


#: Read-only ``name -> NuisanceCalibrator parameters`` (``NuisanceCalibrator(**preset)``; a
#: parameter given after it overrides it). Every preset sets the same keys, so that switching
#: presets leaves no key of the previous one behind (what each removes: :doc:`/calibration`):
#:
#: - ``"paper"``: the paper's model, a quadratic in ``LOGG - 2.2`` (the calibrator's defaults);
#: - ``"sdss5"``: for SDSS-V DR19 (whose abundances keep the Teff trends along the giant branch
#:   that Meszaros et al. 2025 describe): quadratics in ``LOGG - 2.2`` and ``TEFF - 4500 K`` and
#:   one offset per ``TELESCOPE`` relative to ``apo25m``;
#: - ``"sdss5_release"``: ``"sdss5"`` plus one offset per ``RELEASE`` relative to ``sdss5``, for
#:   catalogues that hold rows of both releases (the DR17 re-reduction, ``dr17``, and SDSS-V).
CALIBRATION_PRESETS = MappingProxyType({
    "paper": _preset(("LOGG",), (LOGG_REFERENCE,)),
    "sdss5": _preset(("LOGG", "TEFF", "TELESCOPE"), (LOGG_REFERENCE, _TEFF_REFERENCE, "apo25m")),
    "sdss5_release": _preset(("LOGG", "TEFF", "TELESCOPE", "RELEASE"),
                             (LOGG_REFERENCE, _TEFF_REFERENCE, "apo25m", "sdss5")),
})
