"""A cohort that ends empty says which exclusions of the flow log emptied it, with counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import make_tables
from cpdimpact import CohortSpec, Records
from cpdimpact.errors import DesignError, EmptyComparisonGroupError


def _build_fails(spec: CohortSpec, tables, error=DesignError, columns=None) -> str:
    before = {name: frame.copy() for name, frame in tables.items()}
    records = Records.from_frames(**tables, columns=columns)
    with pytest.raises(error) as info:
        spec.build(records)
    for name, frame in tables.items():  # the input is never modified
        pd.testing.assert_frame_equal(frame, before[name])
    return str(info.value)


def test_every_prior_missing_is_named_with_its_counts():
    tables = make_tables()
    tables["pupils"] = tables["pupils"].assign(ks1=np.nan).drop(columns="prior")
    message = _build_fails(CohortSpec(covariates=("prior",)), tables, columns={"prior": "ks1"})
    assert "every record of the participating schools was excluded" in message
    assert "ks1 missing (192 pupil records of 4 schools)" in message
    assert "Covariate 'ks1' is missing for them" in message
    assert "school and teacher ids" not in message  # not the generic checklist


def test_years_outside_the_data_are_named():
    message = _build_fails(CohortSpec(years=(2030, 2031)), make_tables())
    assert "year outside 2030-2031 (192 pupil records of 4 schools)" in message
    assert "The pupil records cover 2018-2021" in message


def test_a_lag_past_the_data_is_named():
    message = _build_fails(CohortSpec(lag=3), make_tables())
    assert "first exposed year after the data (start year plus lag) (192 pupil records" in message
    assert "lag=3" in message and "(2021)" in message


def test_a_strand_filter_that_matches_nothing_is_named():
    tables = make_tables()
    tables["participation"] = tables["participation"].rename(columns={"strand": "route"})
    message = _build_fails(CohortSpec(strands=("leaders",)), tables, columns={"strand": "route"})
    assert "enrolled only in other strands or below the minimum dose (192 pupil records" in message
    assert "CohortSpec(strands=('leaders',))" in message
    assert "column 'route' of the participation table holds 'whole_school'" in message


def test_comparison_schools_with_every_outcome_missing_are_named():
    tables = make_tables(n_schools=8, n_treated=4)
    pupils = tables["pupils"]
    tables["pupils"] = pupils.assign(score=pupils["outcome"].where(pupils["school"] <= 4)).drop(
        columns="outcome"
    )
    message = _build_fails(
        CohortSpec(), tables, EmptyComparisonGroupError, columns={"outcome": "score"}
    )
    assert "every record of the comparison schools was excluded" in message
    assert "outcome missing (192 pupil records of 4 schools)" in message
    assert "Column 'score' of the pupils table is empty for them" in message
    assert "every analysed unit" not in message  # they do not all take part


def test_a_window_without_pre_period_empties_the_treated_arm_and_says_so():
    message = _build_fails(CohortSpec(years=(2020, 2021)), make_tables())
    assert "the treated arm is empty" in message
    assert "year outside 2020-2021 (96 pupil records of 4 schools)" in message
    assert "treated unit with no record before its start (96 pupil records of 4 schools)" in (
        message
    )
    assert "needs a record before its first exposed year" in message
    assert "window within them" not in message  # the window does overlap the data
