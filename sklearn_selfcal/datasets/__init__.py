"""Simulated surveys with known truth, for injection-and-recovery tests and the demo."""

from ._orbits import ORBIT_POPULATIONS, make_orbits
from ._survey import DEFAULT_PHYSICS, make_survey

__all__ = ["make_survey", "DEFAULT_PHYSICS", "make_orbits", "ORBIT_POPULATIONS"]
