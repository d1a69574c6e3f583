"""Simulated English-school records with a known programme effect.

:func:`simulate` draws the four input tables (schools, teachers, pupils, participation) of a
CPD evaluation from a :class:`Scenario`, and returns them as :class:`SimulatedRecords`: ordinary
:class:`~cpdimpact.records.Records` that also carry the :class:`Truth` (the effects that were
added) and the scenario. Three presets model typical programmes:

- :func:`city_partnership`: 80 of a city's 160 primaries, about 400 teachers, three years;
- :func:`hub_rollout`: 9 pilot hub areas, then 21 more two years later, 200-300 schools each;
- :func:`maths_challenge`: every secondary of one authority against 8 comparison authorities;
- :func:`support_after_dip`: school-to-school support for schools chosen after a bad year
  (selection on a dip, regression to the mean), in three waves.

Examples
--------
>>> from cpdimpact.datasets import city_partnership
>>> rec = city_partnership(seed=0, scale=0.25)
>>> rec.validate()
>>> round(rec.truth.effect_size, 2)
0.08
"""

from ._careers import (
    CAREER_PRESETS,
    CareersScenario,
    CareersTruth,
    SimulatedCareers,
    simulate_careers,
)
from ._la import LA_MEASURES, LAStatistics, LATruth, la_statistics
from ._presets import PRESETS, city_partnership, hub_rollout, maths_challenge, support_after_dip
from ._published import DFE_SUPPRESS_BELOW, published_from_pupils
from ._scenario import Scenario
from ._simulate import SimulatedRecords, Truth, simulate

__all__ = [
    "CAREER_PRESETS",
    "CareersScenario",
    "CareersTruth",
    "SimulatedCareers",
    "simulate_careers",
    "DFE_SUPPRESS_BELOW",
    "LA_MEASURES",
    "LAStatistics",
    "LATruth",
    "PRESETS",
    "Scenario",
    "SimulatedRecords",
    "Truth",
    "city_partnership",
    "hub_rollout",
    "la_statistics",
    "maths_challenge",
    "published_from_pupils",
    "simulate",
    "support_after_dip",
]
