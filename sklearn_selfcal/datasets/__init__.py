"""Simulated surveys with known truth, for injection-and-recovery tests and the demo."""

from ._survey import DEFAULT_PHYSICS, make_survey

__all__ = ["make_survey", "DEFAULT_PHYSICS"]
