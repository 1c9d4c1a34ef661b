"""Simulated surveys with known truth, for injection-and-recovery tests and the demo."""

from ._orbits import ORBIT_POPULATIONS, make_orbits
from ._survey import DEFAULT_PHYSICS, make_survey
from ._survey_files import SURVEY_FILES, load_survey, write_survey

__all__ = ["make_survey", "write_survey", "load_survey", "DEFAULT_PHYSICS", "SURVEY_FILES",
           "make_orbits", "ORBIT_POPULATIONS"]
