"""Cohort construction: exposure, comparison arms, standardisation, flow log and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_tables
from cpdimpact.cohort import CohortSpec, balance_groups, standardised_difference
from cpdimpact.datasets import city_partnership
from cpdimpact.errors import (
    ArgumentTypeError,
    CpdImpactError,
    DesignError,
    DuplicateRowsError,
    EmptyComparisonGroupError,
    InvalidValueError,
    MissingColumnError,
    UnknownReferenceError,
)
from cpdimpact.records import Records


def _flow_balances(cohort) -> None:
    flow = cohort.flow
    available = flow.count("available")
    assert available - flow.exclusions["pupils"].sum() == flow.count("analysed")
    assert flow.count("analysed") == len(cohort.pupils)
    assert flow.count("analysed", "treated") + flow.count("analysed", "comparison") == len(
        cohort.pupils
    )


def test_school_exposure_and_event_time(records):
    cohort = CohortSpec().build(records)
    p = cohort.pupils
    assert set(p.loc[p["treated"], "school"]) == {1, 2, 3, 4}
    assert (p.loc[p["treated"], "first_treated"] == 2020).all()
    assert (p.loc[~p["treated"], "first_treated"] == 0).all()
    assert p.loc[~p["treated"], "event_time"].isna().all()
    treated = p[p["treated"]]
    assert (treated["event_time"] == treated["year"] - 2020).all()
    assert (p["exposed"] == (p["treated"] & (p["year"] >= 2020))).all()
    assert cohort.start_years == (2020,)
    assert not cohort.is_staggered
    _flow_balances(cohort)


def test_teacher_exposure_uses_school_teacher_pairs(records):
    cohort = CohortSpec(exposure="teacher").build(records)
    # Teacher ids 1 and 2 repeat in every school: only the pair names a teacher.
    assert cohort.pupils["unit"].nunique() == 16
    assert cohort.arms().loc["treated", "units"] == 8
    assert cohort.unit_years["unit"].nunique() == 16


def test_teacher_exposure_only_named_teachers():
    tables = make_tables()
    part = tables["participation"]
    tables["participation"] = part[part["teacher"] == 1].reset_index(drop=True)
    cohort = CohortSpec(exposure="teacher").build(Records(**tables))
    treated = cohort.pupils[cohort.pupils["treated"]]
    assert set(treated["teacher"]) == {1}
    assert set(treated["school"]) == {1, 2, 3, 4}


def test_whole_school_enrolment_enrols_every_teacher():
    tables = make_tables()
    part = tables["participation"]
    tables["participation"] = part.drop_duplicates("school").assign(teacher=np.nan)
    cohort = CohortSpec(exposure="teacher").build(Records(**tables))
    assert cohort.arms().loc["treated", "units"] == 8


def test_lag_shifts_first_treated(records):
    cohort = CohortSpec(lag=1).build(records)
    p = cohort.pupils
    assert (p.loc[p["treated"], "first_treated"] == 2021).all()
    assert not p.loc[p["year"] == 2020, "exposed"].any()


def test_not_yet_treated_excludes_comparison_after_its_start():
    tables = make_tables(n_schools=8, n_treated=8, years=(2017, 2018, 2019, 2020, 2021))
    part = tables["participation"]
    # Schools 5-8 start two years after schools 1-4: a staggered roll-out with no never-treated.
    tables["participation"] = part.assign(start_year=np.where(part["school"] <= 4, 2019, 2021))
    records = Records(**tables)
    with pytest.raises(EmptyComparisonGroupError, match="not_yet_treated"):
        CohortSpec(comparison="never_treated").build(records)
    assert CohortSpec().build(records).spec.comparison == "staggered"  # "auto": a roll-out
    cohort = CohortSpec(comparison="not_yet_treated").build(records)
    p = cohort.pupils
    assert set(p.loc[p["treated"], "school"]) == {1, 2, 3, 4}
    assert p.loc[~p["treated"], "year"].max() == 2020
    # No comparison unit is left in 2021, so that year is excluded for everyone.
    assert p["year"].max() == 2020
    # Later starters are untreated throughout the analysis; their start is kept apart.
    later = p[p["school"] > 4]
    assert (later["first_treated"] == 0).all() and (later["programme_start"] == 2021).all()
    assert later["event_time"].isna().all()
    reasons = set(cohort.flow.exclusions["reason"])
    assert any("own start" in r for r in reasons)
    _flow_balances(cohort)


def test_staggered_never_treated_keeps_all_cohorts():
    tables = make_tables(n_schools=9, n_treated=6)
    part = tables["participation"]
    tables["participation"] = part.assign(start_year=np.where(part["school"] <= 3, 2019, 2020))
    cohort = CohortSpec().build(Records(**tables))
    assert cohort.start_years == (2019, 2020)
    assert cohort.is_staggered


def test_comparison_standardisation(records):
    cohort = CohortSpec().build(records)
    comp = cohort.pupils[~cohort.pupils["treated"]]
    by_year = comp.groupby("year")["outcome_std"]
    np.testing.assert_allclose(by_year.mean(), 0, atol=1e-12)
    np.testing.assert_allclose(by_year.std(ddof=1), 1, rtol=1e-12)
    # The effect-size SD pools the within-year variances of the comparison arm.
    variances = comp.groupby("year")["outcome"].var(ddof=1)
    counts = comp.groupby("year").size()
    pooled = np.sqrt((variances * (counts - 1)).sum() / (counts - 1).sum())
    assert cohort.outcome_sd == pytest.approx(pooled)
    assert cohort.outcome_sd_n == len(comp)


def test_national_standardisation(records):
    cohort = CohortSpec(standardise="national", national_mean=100.0, national_sd=5.0).build(records)
    np.testing.assert_allclose(
        cohort.pupils["outcome_std"], (cohort.pupils["outcome"] - 100) / 5, rtol=1e-12
    )
    assert cohort.outcome_sd == 5.0
    by_year = {y: 100.0 + y - 2018 for y in (2018, 2019, 2020, 2021)}
    cohort = CohortSpec(standardise="national", national_mean=by_year, national_sd=5.0).build(
        records
    )
    p = cohort.pupils
    np.testing.assert_allclose(p["outcome_std"], (p["outcome"] - p["year"].map(by_year)) / 5)
    with pytest.raises(InvalidValueError, match="2021"):
        CohortSpec(standardise="national", national_mean={2018: 1.0}, national_sd=5.0).build(
            records
        )


def test_missing_covariate_rows_are_counted(tables):
    pupils = tables["pupils"].copy()
    pupils.loc[[0, 5, 9], "prior"] = np.nan
    tables["pupils"] = pupils
    cohort = CohortSpec(covariates=("prior",)).build(Records(**tables))
    excl = cohort.flow.exclusions
    assert excl.loc[excl["reason"] == "prior missing", "pupils"].item() == 3
    assert len(cohort.pupils) == len(pupils) - 3
    _flow_balances(cohort)


def test_missing_outcome_rows_are_counted(tables):
    pupils = tables["pupils"].copy()
    pupils.loc[[1, 2], "outcome"] = np.nan
    tables["pupils"] = pupils
    cohort = CohortSpec().build(Records(**tables))
    excl = cohort.flow.exclusions
    assert excl.loc[excl["reason"] == "outcome missing", "pupils"].item() == 2
    _flow_balances(cohort)


def test_year_window_and_school_without_records(tables):
    schools = pd.concat(
        [tables["schools"], pd.DataFrame({"school": [99], "area": ["North"], "size": [10]})],
        ignore_index=True,
    )
    tables["schools"] = schools
    cohort = CohortSpec(years=(2019, 2021)).build(Records(**tables))
    assert cohort.years == (2019, 2020, 2021)
    excl = cohort.flow.exclusions.set_index("reason")
    assert excl.loc["school has no pupil records", "schools"] == 1
    assert excl.loc["year outside 2019-2021", "pupils"] == (tables["pupils"]["year"] == 2018).sum()
    assert cohort.flow.count("available", level="schools") == 9
    _flow_balances(cohort)


def test_strand_filter_excludes_partly_enrolled_units(tables):
    part = tables["participation"]
    tables["participation"] = part.assign(
        strand=np.where(part["school"] == 4, "headship", "whole_school")
    )
    cohort = CohortSpec(strands=("whole_school",)).build(Records(**tables))
    assert 4 not in set(cohort.pupils["school"])
    assert set(cohort.pupils.loc[cohort.pupils["treated"], "school"]) == {1, 2, 3}
    excl = cohort.flow.exclusions
    assert excl["reason"].str.contains("other strands").any()
    _flow_balances(cohort)


def test_min_dose_excludes_low_dose_units(tables):
    part = tables["participation"]
    tables["participation"] = part.assign(dose_hours=np.where(part["school"] == 1, 2.0, 20.0))
    cohort = CohortSpec(min_dose=10).build(Records(**tables))
    assert 1 not in set(cohort.pupils["school"])
    treated = cohort.pupils[cohort.pupils["treated"]]
    assert (treated["dose_hours"] == 40.0).all()  # two teachers x 20 hours per school


def test_balance_standardised_difference_by_hand(records):
    cohort = CohortSpec().build(records)
    pre = cohort.pupils[cohort.pupils["year"] < 2020]
    t, c = pre[pre["treated"]]["prior"], pre[~pre["treated"]]["prior"]
    expected = (t.mean() - c.mean()) / np.sqrt((t.var() + c.var()) / 2)
    row = cohort.balance.set_index("variable").loc["prior"]
    assert row["std_difference"] == pytest.approx(expected)
    assert standardised_difference(0.5, 0.3, 0.25, 0.21) == pytest.approx(0.2 / np.sqrt(0.23))


def test_summary_and_faces(records):
    cohort = CohortSpec().build(records)
    assert "never treated" in str(cohort.summary())
    assert "<table>" in cohort._repr_html_()
    assert {"kind", "stage", "pupils"} <= set(cohort.to_frame().columns)
    ax = cohort.plot()
    assert len(ax.get_lines()) >= 2
    assert cohort.flow.plot() is not None


def test_column_mapping(tables):
    pupils = tables["pupils"].rename(columns={"pupil": "UPN", "outcome": "ks2", "school": "URN"})
    part = tables["participation"].rename(columns={"school": "URN", "start_year": "cohort"})
    schools = tables["schools"].rename(columns={"school": "URN"})
    teachers = tables["teachers"].rename(columns={"school": "URN"})
    records = Records.from_frames(
        pupils=pupils,
        participation=part,
        schools=schools,
        teachers=teachers,
        columns={"pupil": "UPN", "outcome": "ks2", "school": "URN", "start_year": "cohort"},
    )
    cohort = CohortSpec().build(records)
    assert len(cohort.pupils) == len(pupils)
    assert "UPN" in pupils.columns  # the user's frame keeps its names
    with pytest.raises(KeyError, match="unknown canonical"):
        Records.from_frames(pupils=pupils, participation=part, columns={"score": "ks2"})


# ---------------------------------------------------------------------- bad input
def _build(tables, **spec):
    return CohortSpec(**spec).build(Records(**tables))


def test_missing_column_names_column_and_fix(tables):
    tables["pupils"] = tables["pupils"].drop(columns="outcome")
    with pytest.raises(MissingColumnError, match=r"'outcome'.*columns=") as err:
        _build(tables)
    assert "pupils table" in str(err.value)


def test_missing_column_mentions_mapping(tables):
    pupils = tables["pupils"].rename(columns={"outcome": "ks2"})
    records = Records.from_frames(
        pupils=pupils.drop(columns="ks2"),
        participation=tables["participation"],
        columns={"outcome": "ks2"},
    )
    with pytest.raises(MissingColumnError, match="mapped from your column 'ks2'"):
        CohortSpec().build(records)


def test_non_numeric_outcome_names_rows(tables):
    pupils = tables["pupils"].copy()
    pupils["outcome"] = pupils["outcome"].astype(object)
    pupils.loc[[3, 7], "outcome"] = "absent"
    tables["pupils"] = pupils
    with pytest.raises(InvalidValueError, match=r"'outcome'.*numeric.*rows 3, 7.*'absent'"):
        _build(tables)


def test_all_missing_outcome(tables):
    tables["pupils"] = tables["pupils"].assign(outcome=np.nan)
    with pytest.raises(InvalidValueError, match="entirely missing"):
        _build(tables)


def test_duplicate_pupil_year_rows(tables):
    pupils = tables["pupils"]
    tables["pupils"] = pd.concat([pupils, pupils.iloc[[10]]], ignore_index=True)
    with pytest.raises(DuplicateRowsError, match=r"one row per pupil per year.*pupil=11"):
        _build(tables)


def test_participation_for_unknown_school(tables):
    part = tables["participation"]
    tables["participation"] = pd.concat(
        [part, pd.DataFrame({"school": [42], "teacher": [1], "start_year": [2020]})],
        ignore_index=True,
    )
    with pytest.raises(UnknownReferenceError, match=r"school=42.*row 8"):
        _build(tables)


def test_participation_for_unknown_teacher(tables):
    part = tables["participation"]
    tables["participation"] = part.assign(teacher=np.where(part.index == 0, 7, part["teacher"]))
    with pytest.raises(UnknownReferenceError, match=r"teacher=7"):
        _build(tables, exposure="teacher")


@pytest.mark.parametrize("start", [2018, 2015, 2022])
def test_start_years_outside_the_data(tables, start):
    part = tables["participation"]
    tables["participation"] = part.assign(start_year=np.where(part.index == 2, start, 2020))
    with pytest.raises(InvalidValueError, match=rf"start_year.*\[{start}\].*row 2"):
        _build(tables)


def test_empty_comparison_group(tables):
    all_schools = tables["schools"]["school"]
    tables["participation"] = pd.DataFrame({"school": all_schools, "start_year": 2020})
    with pytest.raises(EmptyComparisonGroupError, match="comparison group is empty"):
        _build(tables)


def test_errors_share_a_base_class(tables):
    tables["pupils"] = tables["pupils"].drop(columns="year")
    with pytest.raises(CpdImpactError):
        _build(tables)


def test_bad_spec_values():
    with pytest.raises(ValueError, match="exposure"):
        CohortSpec(exposure="class")
    with pytest.raises(ValueError, match="national_mean"):
        CohortSpec(standardise="national")
    with pytest.raises(ValueError, match="lag"):
        CohortSpec(lag=-1)


# ---------------------------------------------------------------------- properties
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_schools=st.integers(min_value=4, max_value=9),
    seed=st.integers(min_value=0, max_value=10_000),
    exposure=st.sampled_from(["school", "teacher"]),
)
def test_inputs_are_never_modified(n_schools, seed, exposure):
    tables = make_tables(
        n_schools=n_schools, n_treated=n_schools // 2, seed=seed, pupils_per_class=2
    )
    tables["pupils"].loc[0, "prior"] = np.nan
    before = {name: frame.copy(deep=True) for name, frame in tables.items()}
    CohortSpec(exposure=exposure, covariates=("prior",)).build(Records(**tables))
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(frame, before[name])


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10_000))
def test_row_order_never_matters(seed):
    tables = make_tables(pupils_per_class=2)
    records = Records(**tables)
    shuffled = Records(
        **{name: frame.sample(frac=1.0, random_state=seed) for name, frame in tables.items()}
    )
    assert records.fingerprint() == shuffled.fingerprint()
    a, b = CohortSpec().build(records), CohortSpec().build(shuffled)
    key = ["pupil", "year"]
    pd.testing.assert_frame_equal(
        a.pupils.sort_values(key).reset_index(drop=True),
        b.pupils.sort_values(key).reset_index(drop=True),
    )
    pd.testing.assert_frame_equal(a.balance, b.balance, rtol=1e-10)
    assert a.outcome_sd == pytest.approx(b.outcome_sd, rel=1e-12)


def test_fingerprint_changes_with_a_value(tables):
    records = Records(**tables)
    changed = dict(tables)
    changed["pupils"] = tables["pupils"].assign(
        outcome=tables["pupils"]["outcome"].where(tables["pupils"].index != 0, 0.0)
    )
    assert records.fingerprint() != Records(**changed).fingerprint()


def test_teachers_without_pupils_are_accounted_for(tables):
    extra = pd.DataFrame({"teacher": [3], "school": [1], "years_service": [4]})
    tables["teachers"] = pd.concat([tables["teachers"], extra], ignore_index=True)
    cohort = CohortSpec().build(Records(**tables))
    flow = cohort.flow
    assert flow.count("available", level="teachers") == 17
    excluded = flow.exclusions["teachers"].sum()
    assert flow.count("available", level="teachers") - excluded == flow.count(
        "analysed", level="teachers"
    )


def test_public_names_resolve():
    import cpdimpact

    for name in cpdimpact.__all__:
        assert getattr(cpdimpact, name) is not None
    assert set(cpdimpact._LAZY) | set(cpdimpact._SUBMODULES) | {"__version__"} == set(
        cpdimpact.__all__
    )


def test_a_dict_of_tables_is_accepted(tables):
    from_dict = CohortSpec().build(tables)
    from_records = CohortSpec().build(Records(**tables))
    pd.testing.assert_frame_equal(from_dict.pupils, from_records.pupils)
    with pytest.raises(KeyError, match="unknown tables"):
        CohortSpec().build({**tables, "classes": tables["pupils"]})
    with pytest.raises(TypeError, match="dict of DataFrames"):
        CohortSpec().build(tables["pupils"])


def test_treated_unit_without_pre_period_is_excluded_and_counted(tables):
    pupils = tables["pupils"]
    # School 1 has no records before its 2020 start.
    tables["pupils"] = pupils[~((pupils["school"] == 1) & (pupils["year"] < 2020))]
    cohort = CohortSpec().build(Records(**tables))
    assert 1 not in set(cohort.pupils["school"])
    excl = cohort.flow.exclusions.set_index("reason")
    row = excl.loc["treated unit with no record before its start"]
    assert row["schools"] == 1 and row["pupils"] == 24
    _flow_balances(cohort)
    # A year window can cut the pre-period the same way, for every treated school.
    with pytest.raises(DesignError, match="treated arm is empty"):
        CohortSpec(years=(2020, 2021)).build(Records(**tables))


# ---------------------------------------------------------------------- staggered balance
def _two_cohort_tables(*, never: bool, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Schools 1-2 start in 2020, schools 3-4 in 2021; schools 5-8 never (or in 2021 too)."""
    tables = make_tables(n_schools=8, n_treated=4, seed=seed)
    joined = range(1, 5) if never else range(1, 9)
    tables["participation"] = pd.DataFrame(
        {
            "school": list(joined),
            "strand": "whole_school",
            "start_year": [2020 if s <= 2 else 2021 for s in joined],
            "dose_hours": 20.0,
        }
    )
    return tables


def _std_difference(a: pd.Series, b: pd.Series) -> float:
    return (a.mean() - b.mean()) / np.sqrt((a.var() + b.var()) / 2)


def test_balance_compares_the_earliest_with_later_cohorts_when_everyone_takes_part():
    tables = _two_cohort_tables(never=False)
    cohort = CohortSpec(comparison="staggered").build(Records(**tables))
    assert cohort.balance_groups == (
        "earliest cohort (started 2020)",
        "later cohort (started 2021)",
    )
    assert balance_groups(cohort.pupils) == cohort.balance_groups
    pupils = tables["pupils"]
    pre = pupils[pupils["year"] < 2020]  # before anyone started
    early, late = pre[pre["school"] <= 2], pre[pre["school"] > 2]
    table = cohort.balance.set_index("variable")
    assert table.loc["prior", "std_difference"] == pytest.approx(
        _std_difference(early["prior"], late["prior"])
    )
    assert table.loc["outcome", "treated_mean"] == pytest.approx(early["outcome"].mean())
    assert table.loc["outcome", "comparison_mean"] == pytest.approx(late["outcome"].mean())
    assert table.loc["fsm", ["n_treated", "n_comparison"]].tolist() == [len(early), len(late)]
    sizes = tables["schools"].set_index("school")["size"]
    assert table.loc["size", ["n_treated", "n_comparison"]].tolist() == [2, 6]
    assert table.loc["size", "treated_mean"] == pytest.approx(sizes.loc[[1, 2]].mean())
    assert table.loc["size", "comparison_mean"] == pytest.approx(sizes.loc[3:].mean())
    assert table[["treated_mean", "comparison_mean", "std_difference"]].notna().all().all()


def test_balance_of_a_national_roll_out_names_pilot_and_later_areas():
    from cpdimpact.datasets import hub_rollout

    cohort = CohortSpec(comparison="staggered").build(hub_rollout(seed=2, scale=0.04))
    assert cohort.balance_groups == (
        "earliest cohort (started 2019)",
        "later cohort (started 2021)",
    )
    pupils = cohort.pupils
    pre = pupils[pupils["year"] < 2019]
    table = cohort.balance.set_index("variable")
    assert table.loc["prior", "n_treated"] == int((pre["first_treated"] == 2019).sum())
    assert table.loc["prior", "n_comparison"] == int((pre["first_treated"] == 2021).sum())
    assert (table["n_treated"] > 0).all() and (table["n_comparison"] > 0).all()


def test_balance_keeps_the_never_treated_arm_when_there_is_one():
    tables = _two_cohort_tables(never=True)
    cohort = CohortSpec(comparison="staggered").build(Records(**tables))
    assert cohort.is_staggered
    assert cohort.balance_groups == ("intervention", "comparison")
    pupils = tables["pupils"]
    pre = pupils[pupils["year"] < 2020]
    treated, never = pre[pre["school"] <= 4], pre[pre["school"] > 4]
    row = cohort.balance.set_index("variable").loc["prior"]
    assert row["std_difference"] == pytest.approx(_std_difference(treated["prior"], never["prior"]))
    assert [row["n_treated"], row["n_comparison"]] == [len(treated), len(never)]


def test_not_yet_treated_balance_is_the_earliest_cohort_against_its_comparisons():
    tables = _two_cohort_tables(never=False)
    cohort = CohortSpec(comparison="not_yet_treated").build(Records(**tables))
    assert cohort.balance_groups == ("intervention", "comparison")
    row = cohort.balance.set_index("variable").loc["size"]
    assert [row["n_treated"], row["n_comparison"]] == [2, 6]


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10_000), never=st.booleans())
def test_staggered_balance_ignores_row_order(seed, never):
    tables = _two_cohort_tables(never=never)
    shuffled = {name: frame.sample(frac=1.0, random_state=seed) for name, frame in tables.items()}
    spec = CohortSpec(comparison="staggered")
    a, b = spec.build(Records(**tables)), spec.build(Records(**shuffled))
    pd.testing.assert_frame_equal(a.balance, b.balance, rtol=1e-10)
    assert a.balance_groups == b.balance_groups


def test_trends_plot_draws_one_line_per_start_cohort():
    spec = CohortSpec(comparison="staggered")
    everyone = spec.build(Records(**_two_cohort_tables(never=False))).plot()
    assert [t.get_text() for t in everyone.get_legend().get_texts()] == [
        "started 2020",
        "started 2021",
    ]
    with_never = spec.build(Records(**_two_cohort_tables(never=True))).plot()
    assert [t.get_text() for t in with_never.get_legend().get_texts()] == [
        "started 2020",
        "started 2021",
        "never took part",
    ]


def test_trends_plot_reads_without_colour():
    """Each arm has its own marker and line style (a printed grey copy still tells them
    apart), the start lines are labelled, and the axis names the user's outcome column."""
    import matplotlib

    matplotlib.use("Agg")
    tables = _two_cohort_tables(never=True)
    tables["pupils"] = tables["pupils"].rename(columns={"outcome": "ks2_maths"})
    cohort = CohortSpec(comparison="staggered").build(
        Records.from_frames(**tables, columns={"outcome": "ks2_maths"})
    )
    ax = cohort.plot()
    arms = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    styles = {(line.get_marker(), line.get_linestyle()) for line in arms}
    assert len(arms) == 3 and len(styles) == 3
    texts = [t.get_text() for t in ax.texts]
    assert texts == [f"start {s}" for s in cohort.start_years]
    assert ax.get_ylabel() == "mean ks2_maths"
    assert ax.get_xlabel() == "test year (summer)"


def test_balance_as_allocated_counts_records_later_excluded():
    records = city_partnership(seed=4, scale=0.2)
    pupils = records.pupils.copy()
    missing = np.random.default_rng(1).random(len(pupils)) < 0.1
    pupils.loc[missing, "outcome"] = np.nan
    cohort = CohortSpec().build(
        {"pupils": pupils, "participation": records.participation, "schools": records.schools}
    )
    allocated = cohort.balance_allocated.set_index("variable")
    analysed = cohort.balance.set_index("variable")
    # Prior attainment is known for pupils whose outcome is missing: the table as allocated
    # counts them, the table as analysed does not.
    first_start = min(cohort.start_years)
    participants = pupils["school"].isin(records.participation["school"])
    pre = pupils["year"] < first_start
    assert allocated.loc["prior", "n_treated"] == (participants & pre).sum()
    assert analysed.loc["prior", "n_treated"] == (participants & pre & ~missing).sum()
    assert allocated.loc["prior", "treated_mean"] == pytest.approx(
        pupils.loc[participants & pre, "prior"].mean()
    )
    assert cohort.flow.allocated["pupils"].sum() == len(pupils)


def test_not_yet_treated_keeps_years_while_a_later_wave_is_still_waiting():
    from cpdimpact.datasets import Scenario, simulate

    records = simulate(
        Scenario(schools_per_area=30, start_years={"City": (2019, 2020, 2021)}, join_share=1.0),
        seed=1,
    )
    cohort = CohortSpec(comparison="not_yet_treated").build(records)
    pupils = cohort.pupils
    # In 2020 the 2020 wave has started but the 2021 wave has not: it is the comparison.
    comparison_2020 = pupils[(pupils["year"] == 2020) & ~pupils["treated"]]
    assert len(comparison_2020) > 0
    assert set(comparison_2020["programme_start"]) == {2021}
    # From 2021 every school has started: those years are excluded, and counted.
    assert pupils["year"].max() == 2020
    reasons = cohort.flow.exclusions.set_index("reason")["pupils"]
    lost = reasons["year with no comparison unit left (every unit has started)"]
    # Later waves' own years went first (own start); what is left from 2021 is the first wave's.
    first_wave = records.participation.loc[records.participation["start_year"] == 2019, "school"]
    pupils_in = records.pupils
    assert lost == int(((pupils_in["year"] >= 2021) & pupils_in["school"].isin(first_wave)).sum())


@pytest.mark.filterwarnings("ignore::cpdimpact.errors.SelectionOnDipWarning")
def test_auto_comparison_is_never_treated_when_some_school_never_takes_part():
    records = city_partnership(seed=3, scale=0.1)
    assert not records.pupils["school"].isin(records.participation["school"]).all()
    assert CohortSpec().comparison == "auto"
    assert CohortSpec().resolve(records) == CohortSpec(comparison="never_treated")
    built = CohortSpec().build(records)
    assert built.spec.comparison == "never_treated"
    explicit = CohortSpec(comparison="never_treated").build(records)
    pd.testing.assert_frame_equal(built.pupils, explicit.pupils)


def test_auto_comparison_is_staggered_for_a_roll_out_where_every_school_takes_part():
    from cpdimpact.datasets import hub_rollout

    records = hub_rollout(seed=2, scale=0.03)
    assert records.pupils["school"].isin(records.participation["school"]).all()
    assert CohortSpec().resolve(records).comparison == "staggered"
    with pytest.raises(EmptyComparisonGroupError, match="not_yet_treated"):
        CohortSpec(comparison="never_treated").build(records)  # an explicit choice is kept
    built = CohortSpec().build(records)
    explicit = CohortSpec(comparison="staggered").build(records)
    pd.testing.assert_frame_equal(built.pupils, explicit.pupils)
    # teacher-level exposure keeps the never-treated design (enrolments name teachers)
    teacher = CohortSpec(exposure="teacher")
    assert teacher.resolve(records).comparison == "never_treated"
    assert CohortSpec(comparison="not_yet_treated").resolve(records).comparison == (
        "not_yet_treated"
    )


@pytest.mark.filterwarnings("ignore::cpdimpact.errors.CpdImpactWarning")
def test_trend_lines_break_across_a_year_with_no_records():
    """No KS2 tests in 2020: the trend plot leaves the year empty rather than drawing a line
    from 2019 to 2021 as if there were results in between."""
    import matplotlib

    matplotlib.use("Agg")
    records = city_partnership(seed=3, scale=0.1)
    kept = records.pupils[records.pupils["year"] != 2020]
    gap = Records(pupils=kept, participation=records.participation, schools=records.schools)
    cohort = CohortSpec(comparison="never_treated").build(gap)
    assert 2020 not in cohort.years
    ax = cohort.plot()
    for line in ax.get_lines()[:2]:  # the two arms (the rest are the start markers)
        years = list(line.get_xdata())
        y = np.asarray(line.get_ydata(), dtype=float)
        assert 2020 in years and np.isnan(y[years.index(2020)])
        assert np.isfinite(y[years.index(2019)]) and np.isfinite(y[years.index(2021)])


@pytest.mark.filterwarnings("ignore::cpdimpact.errors.CpdImpactWarning")
def test_exclude_years_drops_non_comparable_years_and_counts_them():
    """KS4 grades in 2020 and 2021 were teacher-assessed: an evaluator leaves them out. Their
    records leave the analysis, counted in the flow log under their reason; the staggered
    estimators treat the years left as the periods."""
    from cpdimpact.datasets import hub_rollout

    records = hub_rollout(seed=2, scale=0.05)
    in_2020 = int((records.pupils["year"] == 2020).sum())
    assert in_2020 > 0
    cohort = CohortSpec(exclude_years=2020).build(records)
    assert cohort.spec.exclude_years == (2020,)
    assert 2020 not in cohort.years and 2020 not in set(cohort.pupils["year"])
    row = cohort.flow.exclusions.set_index("reason").loc["year excluded as not comparable (2020)"]
    assert row["pupils"] == in_2020
    _flow_balances(cohort)
    from cpdimpact.did import StaggeredDiD

    fit = StaggeredDiD(control_group="not_yet_treated", n_bootstrap=0).fit(cohort.unit_years)
    assert 2020 not in set(fit.group_time["time"]) and 2020 not in set(fit.group_time["base"])


@pytest.mark.parametrize(
    ("value", "error"),
    [("2020", ArgumentTypeError), ((2020.5,), ArgumentTypeError), (2020.5, ArgumentTypeError)],
)
def test_exclude_years_must_be_whole_years(value, error):
    with pytest.raises(error, match="exclude_years"):
        CohortSpec(exclude_years=value)
    assert CohortSpec(exclude_years=None).exclude_years == ()
    assert CohortSpec(exclude_years=[2021, 2020, 2021]).exclude_years == (2020, 2021)
