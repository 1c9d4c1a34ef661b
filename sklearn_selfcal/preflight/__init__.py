"""Before any computation: which columns, which distances, how many stars pass each cut.

:func:`plan_run` decides, from a catalogue's column names and the configuration alone, which
column plays each role, where the distances come from, which magnitudes and LSF moments the
parallax model can use, which abundances will be calibrated and what is missing (with the
configuration key that fixes it). :func:`prepare_catalogue` reads nothing but cleans and renames
a table for the run, and :func:`count_cuts` counts the stars passing each cut of the paper in order.
The ``check`` command prints all of it in seconds; ``run`` performs the same checks first and stops
before the first expensive step when it could not proceed.
"""

from ._cuts import CHECK_MAX_ACTIONS, count_cuts, empty_sample_message, sample_cuts
from ._plan import (LSF_ROLES, ORBIT_ROLES, PAPER_BANDS, RunPlan, empty_columns, plan_and_prepare,
                    plan_run, prepare_catalogue)
from ._report import summary_lines

__all__ = ["RunPlan", "plan_run", "plan_and_prepare", "sample_cuts", "empty_sample_message",
           "empty_columns", "prepare_catalogue", "count_cuts", "summary_lines", "PAPER_BANDS",
           "LSF_ROLES", "ORBIT_ROLES", "CHECK_MAX_ACTIONS"]
