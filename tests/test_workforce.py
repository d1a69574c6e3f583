"""Teacher records (cpdimpact.workforce): validation, bad input, and outcomes by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from cpdimpact.errors import (
    AcademicYearError,
    ColumnMappingError,
    DuplicateRowsError,
    InvalidArgumentError,
    InvalidValueError,
    MissingColumnError,
    TeacherReturnWarning,
    UnknownReferenceError,
)
from cpdimpact.workforce import (
    ROLES,
    SchoolWorkforce,
    TeacherRecords,
    cohort_outcomes,
    school_workforce,
    spells,
)

CT, ML, SL, HD = ROLES


def _census() -> pd.DataFrame:
    """Seven teachers over the censuses 2018-2022 (see the table in each test)."""
    rows = []

    def add(teacher, school, years, roles):
        for year, role in zip(years, roles, strict=True):
            rows.append((teacher, school, year, role))

    add(1, "A", range(2018, 2023), [CT, CT, CT, SL, SL])  # promoted in 2021, enrolled 2019
    add(2, "A", range(2018, 2021), [CT, CT, CT])  # leaves teaching after 2020
    add(3, "A", [2019], [CT])  # joins A in 2019 ...
    add(3, "B", range(2020, 2023), [CT, CT, CT])  # ... and moves to B in 2020
    add(4, "B", range(2018, 2023), [HD] * 5)  # a head throughout
    add(6, "C", range(2019, 2023), [CT] * 4)  # C joins as a whole school in 2021
    frame = pd.DataFrame(rows, columns=["teacher", "school", "year", "role"])
    return frame.assign(fte=1.0)


def _returner() -> pd.DataFrame:
    # teacher 5: in B in 2019, absent in 2020, back in 2021-2022 (a returner)
    extra = pd.DataFrame(
        {
            "teacher": 5,
            "school": "B",
            "year": [2019, 2021, 2022],
            "role": CT,
            "fte": 1.0,
        }
    )
    return pd.concat([_census(), extra], ignore_index=True)


PART = pd.DataFrame(
    {
        "teacher": [1, np.nan],
        "school": ["A", "C"],
        "start_year": [2019, 2021],
        "strand": ["lead", "whole"],
    }
)


def _records(census=None, part=PART, **kwargs) -> TeacherRecords:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TeacherReturnWarning)
        return TeacherRecords.from_frames(
            census=_returner() if census is None else census, participation=part, **kwargs
        )


# ---------------------------------------------------------------------- reading
def test_user_columns_and_role_words_are_read_and_inputs_untouched():
    census = _census().rename(columns={"teacher": "tid", "school": "URN", "role": "post"})
    census["post"] = census["post"].replace({HD: "Head teacher", SL: " Deputy Head "})
    before = census.copy()
    rec = TeacherRecords.from_frames(
        census=census, columns={"teacher": "tid", "school": "URN", "role": "post"}
    )
    pd.testing.assert_frame_equal(census, before)
    assert set(rec.census["role"]) == {CT, SL, HD}
    assert rec.census["in_post"].all()  # no in_post column: everyone in post
    assert rec.years == (2018, 2022)
    assert rec.returners.empty


def test_roles_of_your_own_are_declared():
    census = _census()
    census.loc[0, "role"] = "Lead practitioner"
    with pytest.raises(InvalidValueError) as err:
        TeacherRecords.from_frames(census=census)
    message = str(err.value)
    assert "'role'" in message and "row 0" in message and "roles=" in message
    rec = TeacherRecords.from_frames(census=census, roles={"Lead practitioner": ML})
    assert rec.census.loc[0, "role"] == ML
    with pytest.raises(InvalidArgumentError, match="not roles"):
        TeacherRecords.from_frames(census=census, roles={"Lead practitioner": "guru"})


def test_columns_written_the_wrong_way_round():
    census = _census().rename(columns={"teacher": "tid"})
    with pytest.raises(ColumnMappingError, match="wrong way round"):
        TeacherRecords.from_frames(census=census, columns={"tid": "teacher"})


# ---------------------------------------------------------------------- bad input
def test_a_teacher_in_two_schools_in_one_census_names_the_rows_and_the_fix():
    census = pd.concat(
        [_census(), pd.DataFrame({"teacher": [2], "school": ["B"], "year": [2019], "role": [CT]})],
        ignore_index=True,
    ).rename(columns={"teacher": "trn"})
    with pytest.raises(DuplicateRowsError) as err:
        TeacherRecords.from_frames(census=census, columns={"teacher": "trn"})
    message = str(err.value)
    assert "teacher 2 (column 'trn')" in message
    assert "2 schools in the census of 2019" in message and "'A', 'B'" in message
    assert "rows 6, 21" in message
    assert "main post" in message and "in_post=0" in message


def test_a_second_post_marked_not_in_post_is_allowed():
    extra = pd.DataFrame(
        {"teacher": [2], "school": ["B"], "year": [2019], "role": [CT], "in_post": [0]}
    )
    census = pd.concat([_census().assign(in_post=1), extra], ignore_index=True)
    rec = TeacherRecords.from_frames(census=census)
    assert len(rec.census) == len(census)
    wf = school_workforce(rec).table.set_index(["school", "year"])
    assert wf.loc[("B", 2019), "teachers_headcount"] == 1  # the ended contract is not counted


def test_a_teacher_in_two_schools_from_csv_names_the_csv_lines(tmp_path):
    census = pd.concat(
        [_census(), pd.DataFrame({"teacher": [2], "school": ["B"], "year": [2019], "role": [CT]})],
        ignore_index=True,
    )
    path = tmp_path / "swc.csv"
    census.to_csv(path, index=False)
    with pytest.raises(DuplicateRowsError, match="CSV lines 8, 23"):
        TeacherRecords.from_csv(census=path)


def test_a_promotion_without_a_role_is_refused():
    census = _census().rename(columns={"role": "post"})
    census.loc[3, "post"] = None  # teacher 1's 2021 row: promoted, but to what?
    census.loc[4, "post"] = "  "
    with pytest.raises(InvalidValueError) as err:
        TeacherRecords.from_frames(census=census, columns={"role": "post"})
    message = str(err.value)
    assert "column 'post'" in message and "rows 3, 4" in message
    assert "promotion" in message and "Fill in the post held" in message


def test_a_returner_is_one_warning_and_the_first_absence_ends_the_spell():
    with pytest.warns(TeacherReturnWarning) as caught:
        rec = TeacherRecords.from_frames(census=_returner(), participation=PART)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "teacher 5" in message and "in post in 2019" in message and "back in 2021" in message
    assert "row 22" in message
    assert rec.returners.to_dict("records") == [
        {"teacher": 5, "left_after": 2019, "returned": 2021, "row": 22}
    ]
    row = spells(rec, outcome="teaching", baseline=2019).data.set_index("teacher").loc[5]
    assert (row["duration"], row["event"]) == (1, 1)


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        (lambda c: c.assign(fte=c["fte"].where(c.index != 2, 1.5)), InvalidValueError, "row 2"),
        (lambda c: c.assign(fte=c["fte"].where(c.index != 2, 0.0)), InvalidValueError, "above 0"),
        (lambda c: c.assign(year=c["year"].where(c.index != 5)), InvalidValueError, "census year"),
        (lambda c: c.assign(year=c["year"] + 0.5), InvalidValueError, "whole years"),
        (lambda c: c.assign(teacher=c["teacher"].where(c.index != 1)), InvalidValueError, "row 1"),
        (lambda c: c.drop(columns="role"), MissingColumnError, "'role'"),
        (lambda c: c[c["year"] != 2020], InvalidValueError, "no rows for 2020"),
        (lambda c: pd.concat([c, c.iloc[[0]]]), DuplicateRowsError, "one row per teacher"),
        (lambda c: c.assign(in_post="maybe"), InvalidValueError, "0/1"),
    ],
)
def test_bad_census(change, error, words):
    with pytest.raises(error, match=words):
        TeacherRecords.from_frames(census=change(_census()))


@pytest.mark.parametrize(
    ("part", "error", "words"),
    [
        (PART.assign(teacher=[99, np.nan]), UnknownReferenceError, "teachers missing"),
        (PART.assign(school=["Z", "C"]), UnknownReferenceError, "'Z'"),
        (PART.assign(school=["B", "C"]), UnknownReferenceError, "in post in school 'A'"),
        (PART.assign(start_year=[2017, 2021]), InvalidValueError, "outside the census years"),
        (PART.assign(start_year=[2019, 2022]), InvalidValueError, "2018 to 2021"),
        (PART.assign(start_year=[2019, None]), InvalidValueError, "start_year"),
        (pd.concat([PART, PART.iloc[[0]]]), DuplicateRowsError, "one enrolment per teacher"),
    ],
)
def test_bad_participation(part, error, words):
    with pytest.raises(error, match=words):
        TeacherRecords.from_frames(census=_census(), participation=part)


def test_dfe_format_reads_academic_years_start_dates_flags_and_markers(tmp_path):
    census = _census().assign(
        year=lambda c: (c["year"] - 1).astype(str) + "/" + (c["year"] % 100).astype(str),
        in_post="Y",
    )
    census["fte"] = census["fte"].astype(object)
    census.loc[0, "fte"] = "c"
    part = PART.assign(start_year=["02/09/2018", "2020/21"])
    census.to_csv(tmp_path / "census.csv", index=False)
    part.to_csv(tmp_path / "part.csv", index=False)
    rec = TeacherRecords.from_csv(
        census=tmp_path / "census.csv", participation=tmp_path / "part.csv", format="dfe"
    )
    assert rec.years == (2018, 2022)
    assert rec.participation["start_year"].tolist() == [2019, 2021]
    assert np.isnan(rec.census.loc[2, "fte"]) and rec.census["in_post"].all()
    assert rec.markers.to_dict("records") == [
        {
            "table": "census",
            "column": "fte",
            "marker": "c",
            "reason": "confidential: suppressed for disclosure (EES)",
            "cells": 1,
        }
    ]
    assert any("academic year 2018/19, start_year 2019" in n for n in rec.reading_notes)
    bad = part.assign(start_year=["autumn", "2020/21"])
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(AcademicYearError, match="'autumn'"):
        TeacherRecords.from_csv(
            census=tmp_path / "census.csv", participation=tmp_path / "bad.csv", format="dfe"
        )


# ---------------------------------------------------------------------- outcomes by hand
def _spells(outcome, **kwargs):
    out = spells(_records(), outcome=outcome, baseline=2019, **kwargs)
    return out, out.data.set_index("teacher")


def test_spells_to_leaving_teaching_by_hand():
    out, data = _spells("teaching")
    # teacher: (duration, event, treated, censored_at_start)
    expected = {
        1: (3, 0, 1, 0),  # in post to the last census, 2022: censored at 3
        2: (2, 1, 0, 0),  # absent from 2021: left within 2 years
        3: (3, 0, 0, 0),  # moved school, still teaching
        4: (3, 0, 0, 0),
        5: (1, 1, 0, 0),  # absent in 2020 (returns in 2021): left within 1 year
        6: (2, 0, 0, 1),  # C starts in 2021: comparison until then, censored at 2
    }
    got = {
        t: tuple(int(v) for v in data.loc[t, ["duration", "event", "treated", "censored_at_start"]])
        for t in data.index
    }
    assert got == expected
    assert data.loc[1, "strand"] == "lead" and data.loc[1, "school"] == "A"
    assert data.loc[6, "start_year"] == 2021
    assert out.excluded.empty
    assert "leaving state-funded teaching" in out.describe()


def test_spells_to_leaving_the_school_by_hand():
    _, data = _spells("school")
    got = {
        t: (int(r.duration), int(r.event), None if pd.isna(r.destination) else r.destination)
        for t, r in data.iterrows()
    }
    assert got == {
        1: (3, 0, None),
        2: (2, 1, "left teaching"),
        3: (1, 1, "moved school"),
        4: (3, 0, None),
        5: (1, 1, "left teaching"),
        6: (2, 0, None),
    }


def test_spells_to_promotion_by_hand():
    out, data = _spells("promotion")
    got = {t: (int(r.duration), int(r.event)) for t, r in data.iterrows()}
    assert got == {
        1: (2, 1),  # senior leader at the 2021 census
        2: (1, 0),  # last in post in 2020, then left: censored there
        3: (3, 0),
        6: (2, 0),  # censored at its school's start
    }
    assert out.excluded.to_dict("records") == [
        {"reason": "already senior leader or above at the baseline (not at risk)", "teachers": 1},
        # teacher 5, gone by 2020: no census in which a promotion could be seen
        {"reason": "left teaching before the next census (never seen at risk)", "teachers": 1},
    ]
    assert (out.data["duration"] >= 1).all()
    _, head = _spells("promotion", promotion_to="head")
    assert 4 not in head.index and head.loc[1, "event"] == 0


def test_spells_exclude_and_count_teachers_enrolled_before_the_baseline():
    out = spells(_records(), outcome="teaching", baseline=2020)
    assert 1 not in set(out.data["teacher"])
    assert out.excluded.to_dict("records") == [
        {"reason": "enrolled before the baseline (already taking part)", "teachers": 1}
    ]
    default = spells(_records(), outcome="teaching")
    assert default.baseline == 2019  # the earliest start
    with pytest.raises(InvalidArgumentError, match="from 2018 to 2021"):
        spells(_records(), baseline=2022)
    with pytest.raises(InvalidArgumentError, match="baseline="):
        spells(_records(part=None))


def test_cohort_outcomes_by_hand():
    out = cohort_outcomes(_records(), years=1).set_index(["school", "year"])
    cols = ["n_teachers", "stayed_school", "stayed_teaching", "n_at_risk_promotion", "promoted"]
    got = {k: tuple(int(v) for v in row) for k, row in out[cols].iterrows()}
    assert got == {
        ("A", 2018): (2, 2, 2, 2, 0),
        ("A", 2019): (3, 2, 3, 3, 0),  # teacher 3 moves to B
        ("A", 2020): (2, 1, 1, 2, 1),  # teacher 2 leaves; teacher 1 is promoted
        ("A", 2021): (1, 1, 1, 0, 0),
        ("B", 2018): (1, 1, 1, 0, 0),
        ("B", 2019): (2, 1, 1, 1, 0),  # teacher 5 is absent in 2020
        ("B", 2020): (2, 2, 2, 1, 0),
        ("B", 2021): (3, 3, 3, 2, 0),
        ("C", 2019): (1, 1, 1, 1, 0),
        ("C", 2020): (1, 1, 1, 1, 0),
        ("C", 2021): (1, 1, 1, 1, 0),
    }
    assert out.loc[("A", 2020), "share_left_teaching"] == 0.5
    assert out.loc[("A", 2020), "share_promoted"] == 0.5
    assert np.isnan(out.loc[("A", 2021), "share_promoted"])
    assert out.xs("A")["first_treated"].eq(2019).all() and out.xs("B")["first_treated"].eq(0).all()
    assert out.loc[("C", 2021), "exposed"] == 1 and out.loc[("C", 2020), "exposed"] == 0
    overlaps = out.index[out["window_overlaps_start"] == 1].tolist()
    assert overlaps == [("A", 2018), ("C", 2020)]
    assert out.loc[("B", 2019), "school_teachers"] == 2.0  # (1 + 2 + 2 + 3) / 4
    three = cohort_outcomes(_records(), years=3).set_index(["school", "year"])
    assert three.loc[("A", 2019), ["stayed_school", "stayed_teaching"]].tolist() == [1, 2]
    with pytest.raises(InvalidArgumentError, match="at most 4"):
        cohort_outcomes(_records(), years=5)


def test_cohort_shares_agree_with_spells():
    rec = _records()
    out = cohort_outcomes(rec, years=2).set_index(["school", "year"])
    sp = spells(rec, outcome="teaching", baseline=2019).data
    left = (sp["event"] == 1) & (sp["duration"] <= 2)
    by_school = left.groupby(sp["school"]).sum()
    for school in ("A", "B"):
        assert out.loc[(school, 2019), "left_teaching"] == by_school[school]


def test_school_workforce_from_records_by_hand():
    wf = school_workforce(_records()).table.set_index(["school", "year"])
    row = wf.loc[("A", 2019)]
    assert (row["teachers_headcount"], row["teachers_fte"], row["census_fte"]) == (3, 3.0, 3.0)
    assert (row["remained_fte"], row["moved_fte"], row["left_teaching_fte"]) == (2.0, 1.0, 0.0)
    assert row["entrants_headcount"] == 1  # teacher 3
    assert wf.loc[("B", 2020), "entrants_headcount"] == 1  # teacher 3 moves in
    assert wf.loc[("B", 2021), "entrants_headcount"] == 1  # teacher 5 returns
    assert np.isnan(wf.loc[("A", 2018), "entrants_fte"])
    assert np.isnan(wf.loc[("A", 2022), "left_teaching_fte"])
    rates = school_workforce(_records()).turnover_rates().set_index(["school", "year"])
    assert rates.loc[("B", 2019), "leaving_rate"] == 0.5
    assert rates.loc[("A", 2019), "turnover_rate"] == pytest.approx(1 / 3)


# ---------------------------------------------------------------------- published shape
def _ees_turnover() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time_period": [201819, 201819, 201819, 201920],
            "geographic_level": ["School", "School", "National", "School"],
            "school_urn": [100000, 100005, np.nan, 100000],
            "teacher_fte_in_census_year": ["14.2", "3", "461087.5", "20"],
            "remained_in_the_same_school": ["11.2", "c", "1", "15"],
            "left_the_state-funded_system": ["1", "c", "1", "2"],
            "left_to_another_state-funded_school": ["2", "c", "1", "3"],
        }
    )


def _ees_size() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time_period": ["201819", "201920"],
            "geographic_level": "School",
            "school_urn": [100000, 100000],
            "fte_all_teachers": ["14.2", "x"],
            "hc_all_teachers": ["15", "21"],
        }
    )


def test_school_workforce_reads_ees_files_with_markers():
    turnover, size = _ees_turnover(), _ees_size()
    before = turnover.copy()
    wf = SchoolWorkforce.from_frames(turnover=turnover, size=size)
    pd.testing.assert_frame_equal(turnover, before)
    table = wf.table.set_index(["school", "year"])
    assert sorted(table.index) == [(100000, 2019), (100000, 2020), (100005, 2019)]
    assert table.loc[(100000, 2019), "teachers_headcount"] == 15
    assert np.isnan(table.loc[(100000, 2020), "teachers_fte"])
    assert any("1 rows of other geographic levels" in n for n in wf.notes)
    marks = wf.markers.set_index(["column", "marker"])["cells"].to_dict()
    assert marks == {
        ("remained_in_the_same_school", "c"): 1,
        ("left_the_state-funded_system", "c"): 1,
        ("left_to_another_state-funded_school", "c"): 1,
        ("fte_all_teachers", "x"): 1,
    }
    rates = wf.turnover_rates().set_index(["school", "year"])
    assert rates.loc[(100000, 2019), "leaving_rate"] == pytest.approx(1 / 14.2)
    assert rates.loc[(100000, 2019), "turnover_rate"] == pytest.approx(3 / 14.2)
    assert rates.loc[(100000, 2020), "retention_rate"] == pytest.approx(0.75)
    assert np.isnan(rates.loc[(100005, 2019), "leaving_rate"])
    panel = wf.panel("leaving_rate", pd.DataFrame({"school": [100000], "start_year": [2020]}))
    assert panel.attrs["missing"] == 1
    assert panel[["year", "exposed", "weight"]].values.tolist() == [[2019, 0, 14.2], [2020, 1, 20]]


def test_school_workforce_from_csv_and_its_errors(tmp_path):
    path = tmp_path / "turnover.csv"
    _ees_turnover().to_csv(path, index=False)
    wf = SchoolWorkforce.from_csv(turnover=path)
    assert len(wf.table) == 3 and wf.markers["file"].eq("turnover.csv").all()
    renamed = _ees_turnover().rename(columns={"school_urn": "URN"})
    with pytest.raises(MissingColumnError, match="'school_urn'.*columns="):
        SchoolWorkforce.from_frames(turnover=renamed)
    assert len(SchoolWorkforce.from_frames(turnover=renamed, columns={"school": "URN"}).table) == 3
    twice = pd.concat([_ees_turnover(), _ees_turnover().iloc[[0]]], ignore_index=True)
    with pytest.raises(DuplicateRowsError, match="twice in 2019"):
        SchoolWorkforce.from_frames(turnover=twice)
    with pytest.raises(MissingColumnError, match="needs"):
        SchoolWorkforce.from_frames(size=_ees_size()).panel("leaving_rate")


def test_entrants_are_read_when_named():
    size = _ees_size().assign(entrants=["2", "SUPP"])
    wf = SchoolWorkforce.from_frames(size=size, columns={"entrants_fte": "entrants"})
    rates = wf.turnover_rates()
    assert rates["entrant_rate"].iloc[0] == pytest.approx(2 / 14.2)


def test_school_characteristics_are_carried_and_inputs_are_not_modified():
    schools = pd.DataFrame({"school": ["A", "B", "C"], "fsm_share": [0.1, 0.4, 0.2]})
    part, census = PART.copy(), _returner()
    rec = _records(census=census, part=part, schools=schools)
    pd.testing.assert_frame_equal(part, PART)
    pd.testing.assert_frame_equal(census, _returner())
    data = spells(rec, baseline=2019).data.set_index("teacher")
    assert data.loc[3, "fsm_share"] == 0.1 and data.loc[6, "fsm_share"] == 0.2
    assert cohort_outcomes(rec).groupby("school")["fsm_share"].first().to_dict() == {
        "A": 0.1,
        "B": 0.4,
        "C": 0.2,
    }
    with pytest.raises(UnknownReferenceError, match="'C'"):
        _records(schools=schools.iloc[:2])


def test_an_unknown_marker_names_the_file_and_the_fix(tmp_path):
    census = _census().astype({"fte": object})
    census.loc[4, "fte"] = "n/a"
    census.to_csv(tmp_path / "census.csv", index=False)
    with pytest.raises(InvalidValueError, match=r"'n/a' \(CSV line 6\).*na_values.*'census.csv'"):
        TeacherRecords.from_csv(census=tmp_path / "census.csv", format="dfe")
    rec = TeacherRecords.from_csv(
        census=tmp_path / "census.csv", format="dfe", na_values={"n/a": "not recorded"}
    )
    assert rec.markers["reason"].tolist() == ["not recorded"]


def test_a_comparison_teacher_moving_into_a_participating_school_is_censored_there():
    mover = pd.DataFrame(
        {"teacher": 7, "school": ["D", "D", "C", "C"], "year": range(2019, 2023), "role": CT}
    )
    rec = _records(census=pd.concat([_returner(), mover], ignore_index=True))
    teaching = spells(rec, outcome="teaching", baseline=2019).data.set_index("teacher").loc[7]
    # in post in C (a whole school taking part from 2021) at the 2021 census: censored there
    assert (teaching["duration"], teaching["event"], teaching["censored_at_start"]) == (2, 0, 1)
    school = spells(rec, outcome="school", baseline=2019).data.set_index("teacher").loc[7]
    assert (school["duration"], school["event"], school["destination"]) == (2, 1, "moved school")
