"""A lean cohort for simulated records: the rows and SDs a diagnosis needs, nothing else.

:meth:`CohortSpec.build` validates the records, writes the flow log, computes two balance
tables and checks for a pre-period dip: what a published evaluation needs, and most of the
cost of one simulation (about 0.1-0.2 s of the 0.17 s of a default ``city_partnership``
simulation). A diagnosis only needs the analysed pupil rows, their unit-year means and the
effect-size SD. For simulated records (valid by construction) and the common cohort specs
(school exposure, no lag, no year window, every strand, no minimum dose, never-treated or
staggered comparison, outcome standardised against the comparison records),
:func:`lean_cohort` builds exactly those, with the builder's own standardisation and
unit-year helpers; ``tests/test_diagnose.py`` checks they equal the full build's. Anything
else (and any design the full build would reject or trim) returns ``None`` and the caller
uses :meth:`CohortSpec.build`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..cohort import CohortSpec, analysis_columns, unit_year_means

__all__ = ["LeanCohort", "lean_cohort"]


@dataclass(frozen=True, eq=False)
class LeanCohort:
    """The parts of a :class:`~cpdimpact.cohort.Cohort` a diagnosis reads."""

    spec: CohortSpec
    pupils: pd.DataFrame
    unit_years: pd.DataFrame
    outcome_sd: float
    outcome_sd_n: int | None
    outcome_sd_source: str
    start_years: tuple[int, ...]
    #: The simulated outcomes of a diagnosis are scores (see :class:`~cpdimpact.cohort.Cohort`).
    outcome_kind: str = "score"

    @property
    def is_staggered(self) -> bool:
        return len(self.start_years) > 1


def lean_cohort(spec: CohortSpec, records) -> LeanCohort | None:
    """The lean cohort of simulated ``records``, or ``None`` when the full build is needed."""
    from ..datasets import SimulatedRecords

    spec = spec.resolve(records)
    if not (
        isinstance(records, SimulatedRecords)
        and spec.exposure == "school"
        and spec.lag == 0
        and spec.comparison in ("never_treated", "staggered")
        and spec.standardise == "comparison"
        and spec.years is None
        and spec.strands is None
        and spec.min_dose == 0
        and records.schools is not None
    ):
        return None
    pupils = records.pupils
    needed = ("outcome", *spec.covariates)
    if any(c not in pupils.columns for c in needed) or pupils[list(needed)].isna().any().any():
        return None  # exclusions to log: the full build does that
    data = pupils.reset_index(drop=True)
    data = data.assign(year=data["year"].astype(int))
    area = records.schools.drop_duplicates("school").set_index("school")["area"]
    data = data.assign(area=data["school"].map(area), unit=data["school"])
    part = records.participation
    hours = part["dose_hours"] if "dose_hours" in part.columns else pd.Series(0.0, part.index)
    per_unit = (
        part.assign(unit=part["school"], _dose=hours.fillna(0.0).astype(float))
        .groupby("unit", sort=True)
        .agg(start=("start_year", "min"), dose_hours=("_dose", "sum"))
    )
    first = data["unit"].map(per_unit["start"].astype(int)).fillna(0).astype(int)
    dose = data["unit"].map(per_unit["dose_hours"]).fillna(0.0).astype(float)
    data = data.assign(first_treated=first.to_numpy(), dose_hours=dose.to_numpy())
    year = data["year"].to_numpy()
    first_np = data["first_treated"].to_numpy()
    treated = first_np > 0
    if (first_np > year.max()).any():
        return None  # starts after the data: the full build excludes them
    first_year = data.groupby("unit")["year"].transform("min").to_numpy()
    if (treated & (first_year >= first_np)).any():
        return None  # treated units without a pre-period: excluded by the full build
    start_years = tuple(int(s) for s in np.unique(first_np[treated]))
    if not treated.any() or (
        treated.all() and not (spec.comparison == "staggered" and len(start_years) > 1)
    ):
        return None  # an empty arm: the full build raises the right error
    data, _, outcome_sd, sd_n, sd_source = analysis_columns(spec, data.assign(treated=treated))
    return LeanCohort(
        spec=spec,
        pupils=data,
        unit_years=unit_year_means(data),
        outcome_sd=outcome_sd,
        outcome_sd_n=sd_n,
        outcome_sd_source=sd_source,
        start_years=start_years,
    )
