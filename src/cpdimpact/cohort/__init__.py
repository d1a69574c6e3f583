"""Cohort construction: from school records to an analysis-ready cohort.

:class:`CohortSpec` validates the input :class:`~cpdimpact.records.Records`, assigns exposure
(school or teacher level, with an optional lag), the first treated year and event time, forms
the comparison arm (never treated or not yet treated), standardises the outcome, measures
pre-period balance, and counts every school, teacher and pupil record in a :class:`FlowLog`.
"""

from ..errors import SelectionOnDipWarning
from ._balance import balance_groups, balance_table, standardised_difference
from ._build import Cohort, CohortSpec, analysis_columns, unit_year_means
from ._dip import DipCheck, check_pre_period_dip
from ._flow import FlowLog

__all__ = [
    "Cohort",
    "CohortSpec",
    "DipCheck",
    "FlowLog",
    "SelectionOnDipWarning",
    "analysis_columns",
    "balance_groups",
    "balance_table",
    "check_pre_period_dip",
    "standardised_difference",
    "unit_year_means",
]
