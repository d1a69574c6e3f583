"""Teacher records, retention and progression outcomes, and published workforce statistics.

Programmes promise to keep teachers and grow leaders. This package reads the records that
answer it:

* :class:`TeacherRecords`: teacher-by-year records in the shape of the School Workforce
  Census (teacher, school, year, role, FTE, years of service, in post at the census date),
  with the programme's teacher and school enrolments and strands, validated as the pupil
  tables are;
* :func:`spells`: one row per teacher of a baseline cohort with the time to leaving the
  school, leaving state-funded teaching or a first promotion to leadership, for the survival
  estimators;
* :func:`cohort_outcomes`: the share of each school's cohort of teachers still in the school,
  still teaching or promoted k years on, for the difference-in-differences family;
* :class:`SchoolWorkforce`: school-level workforce statistics as DfE publishes them (teachers
  in post, leavers, movers, pupil-teacher ratio), with turnover rates.

The year convention (:data:`YEAR_CONVENTION`): ``year`` is the summer of the academic year, so
the November 2018 census is year 2019. See ``docs/teachers.md``.
"""

from ._outcomes import Spells, cohort_outcomes, spells
from ._published import EES_COLUMNS, SchoolWorkforce, school_workforce
from ._records import (
    CENSUS_COLUMNS,
    LEADERSHIP_ROLES,
    ROLE_WORDS,
    ROLES,
    YEAR_CONVENTION,
    TeacherRecords,
)

__all__ = [
    "CENSUS_COLUMNS",
    "EES_COLUMNS",
    "LEADERSHIP_ROLES",
    "ROLES",
    "ROLE_WORDS",
    "SchoolWorkforce",
    "Spells",
    "TeacherRecords",
    "YEAR_CONVENTION",
    "cohort_outcomes",
    "school_workforce",
    "spells",
]
