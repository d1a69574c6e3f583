"""Standardised effect sizes and months of progress.

A model estimate in outcome units (a difference-in-differences ATT in scaled-score points, a
trial coefficient) becomes an :class:`EffectSize` by dividing by a **pupil-level** standard
deviation (:func:`hedges_g`); :func:`months_of_progress` converts effect sizes to the EEF
Teaching and Learning Toolkit's months of additional progress.
"""

from ._hedges import EffectSize, hedges_correction, hedges_g, hedges_g_from_summary
from ._months import EEF_MONTHS, months_band, months_of_progress

__all__ = [
    "EEF_MONTHS",
    "EffectSize",
    "hedges_correction",
    "hedges_g",
    "hedges_g_from_summary",
    "months_band",
    "months_of_progress",
]
