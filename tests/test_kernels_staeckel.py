"""Tests of the Staeckel-fudge wrapper around galpy's C code (sklearn_selfcal._kernels.staeckel):
physical units in and out, the orbital energy, the focal distance of the default potential."""

from sklearn_selfcal._kernels.staeckel import DEFAULT_DELTA_KPC, estimate_delta
from sklearn_selfcal.potential import default_potential


def test_default_delta_is_within_the_range_that_conserves_actions_best():
    # estimate_delta minimises the spread of J_R, J_z along 24 reference disk orbits; for this potential
    # the criterion is flat from ~2.5 to ~4.5 kpc, and the default 3.8 kpc (chosen against o2gf) is in it
    delta = estimate_delta(default_potential())
    assert 2.5 <= delta <= 4.5
    assert 2.5 <= DEFAULT_DELTA_KPC <= 4.5
