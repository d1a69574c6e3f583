"""Tests of cpdimpact.datasets: determinism, structure of the presets, and the known truth."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpdimpact.datasets import (
    PRESETS,
    Scenario,
    SimulatedRecords,
    Truth,
    city_partnership,
    hub_rollout,
    maths_challenge,
    simulate,
)
from cpdimpact.records import Records

SMALL = {
    "city_partnership": 0.25,
    "hub_rollout": 0.02,
    "maths_challenge": 0.3,
    "support_after_dip": 0.25,
}
TABLE_COLUMNS = {
    "schools": ["school", "area", "phase", "size", "fsm_share"],
    "teachers": ["teacher", "school", "years_service"],
    "pupils": [
        "pupil", "school", "teacher", "year", "prior", "outcome", "fsm", "sen", "eal", "sex",
    ],
    "participation": ["school", "teacher", "strand", "start_year", "dose_hours"],
}  # fmt: skip


def untreated(rec: SimulatedRecords) -> pd.Series:
    """Y(0): the observed outcome less the effect that was added."""
    return rec.pupils["outcome"] - rec.truth.pupil_effects


def school_start(rec: SimulatedRecords) -> pd.Series:
    """Start year of each pupil row's school (NaN for never-treated schools)."""
    start = rec.participation.groupby("school")["start_year"].min()
    return rec.pupils["school"].map(start)


def anova_icc(y: pd.Series, group: pd.Series) -> float:
    """One-way ANOVA estimator of the intraclass correlation with unequal group sizes."""
    frame = pd.DataFrame({"y": y.to_numpy(), "g": group.to_numpy()})
    sizes = frame.groupby("g")["y"].size()
    means = frame.groupby("g")["y"].mean()
    n, k = len(frame), len(sizes)
    msb = (sizes * (means - frame["y"].mean()) ** 2).sum() / (k - 1)
    msw = ((frame["y"] - frame["g"].map(means)) ** 2).sum() / (n - k)
    n0 = (n - (sizes**2).sum() / n) / (k - 1)
    between = (msb - msw) / n0
    return between / (between + msw)


def did_of_means(rec: SimulatedRecords, *, reps: int = 400) -> tuple[float, float]:
    """2x2 DiD of pupil means (treated vs never treated, post vs pre), school bootstrap SE."""
    pupils = rec.pupils
    start = school_start(rec)
    post = pupils["year"] >= start.min()
    cells = (
        pupils.assign(treated=start.notna(), post=post)
        .groupby(["school", "treated", "post"])["outcome"]
        .agg(["sum", "size"])
        .unstack("post", fill_value=0)
    )
    treated = cells.index.get_level_values("treated").to_numpy()
    sums, counts = cells["sum"].to_numpy(), cells["size"].to_numpy()

    def estimate(weight):
        s, c = sums * weight[:, None], counts * weight[:, None]

        def mean(arm, period):
            return s[arm, period].sum() / c[arm, period].sum()

        return (mean(treated, 1) - mean(treated, 0)) - (mean(~treated, 1) - mean(~treated, 0))

    rng = np.random.default_rng(12345)
    draws = [estimate(rng.poisson(1.0, len(sums)).astype(float)) for _ in range(reps)]
    return estimate(np.ones(len(sums))), float(np.std(draws))


# ---------------------------------------------------------------------- determinism
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_same_seed_gives_identical_tables(name):
    first = PRESETS[name](seed=7, scale=SMALL[name])
    second = PRESETS[name](seed=7, scale=SMALL[name])
    for table in TABLE_COLUMNS:
        pd.testing.assert_frame_equal(first.table(table), second.table(table))
    assert first.truth.to_dict() == second.truth.to_dict()
    assert first.fingerprint() == second.fingerprint()


def test_generator_seed_is_used_as_given():
    scenario = Scenario(schools_per_area=12)
    from_int = simulate(scenario, seed=3)
    from_generator = simulate(scenario, seed=np.random.default_rng(3))
    pd.testing.assert_frame_equal(from_int.pupils, from_generator.pupils)


def test_different_seeds_differ():
    a = city_partnership(seed=0, scale=0.25)
    b = city_partnership(seed=1, scale=0.25)
    assert a.fingerprint() != b.fingerprint()
    assert not np.allclose(a.pupils["outcome"].head(100), b.pupils["outcome"].head(100))


def test_untreated_outcome_does_not_depend_on_the_effect():
    base = city_partnership(seed=4, scale=0.25)
    bigger = city_partnership(seed=4, scale=0.25, effect=0.3, effect_fsm_extra=0.1)
    pd.testing.assert_series_equal(untreated(base), untreated(bigger))
    assert bigger.truth.att > base.truth.att


# ---------------------------------------------------------------------- tables
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid_records(name):
    rec = PRESETS[name](seed=1, scale=SMALL[name])
    assert isinstance(rec, SimulatedRecords) and isinstance(rec, Records)
    assert isinstance(rec.truth, Truth) and rec.scenario.name == name
    rec.validate()
    rec.validate(teacher_level=True)
    for table, columns in TABLE_COLUMNS.items():
        assert list(rec.table(table).columns) == columns
    pupils = rec.pupils
    assert pupils["pupil"].is_unique
    assert rec.teachers["teacher"].is_unique
    assert set(pupils["sex"]) == {"F", "M"}
    for column in ("fsm", "sen", "eal"):
        assert set(pupils[column]) == {0, 1}
    # Prior attainment is standardised (in the population: a sample of few schools drifts by
    # the school component's SE, sqrt(0.12 / n_schools)); the outcome sits on the phase's scale.
    assert abs(pupils["prior"].mean()) < 4 * np.sqrt(0.12 / len(rec.schools))
    assert abs(pupils["prior"].std() - 1) < 0.05
    assert abs(pupils["outcome"].mean() - rec.scenario.outcome_mean) < rec.scenario.outcome_sd / 4
    # Each pupil's class teacher belongs to the pupil's school.
    teacher_school = rec.teachers.set_index("teacher")["school"]
    assert (pupils["teacher"].map(teacher_school) == pupils["school"]).all()


def test_simulated_records_are_frozen():
    rec = city_partnership(seed=0, scale=0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.truth = None
    assert "city_partnership" in repr(rec)


def test_city_partnership_structure():
    rec = city_partnership(seed=0)
    part = rec.participation
    assert len(rec.schools) == 160
    assert part["school"].nunique() == 80
    assert len(part) == 400 and part["teacher"].notna().all()
    assert part["strand"].value_counts()["headship"] == 25
    assert set(part["strand"]) == {"whole_school", "teacher_educator", "headship"}
    assert set(part["start_year"]) == {2021}
    assert sorted(rec.pupils["year"].unique()) == list(range(2017, 2024))
    assert set(rec.schools["area"]) == {"City"} and set(rec.schools["phase"]) == {"primary"}
    assert abs(rec.pupils["fsm"].mean() - 0.30) < 0.04
    assert abs(rec.schools["fsm_share"].mean() - 0.30) < 0.04
    assert 30_000 <= len(rec.pupils) <= 60_000
    assert rec.truth.programme_cost == 750_000
    assert rec.truth.exposure == "school"
    # Scale shrinks the schools but keeps both arms.
    small = city_partnership(seed=0, scale=0.1)
    joined = small.participation["school"].nunique()
    assert len(small.schools) == 16 and joined == 8


def test_hub_rollout_structure():
    rec = hub_rollout(seed=0, scale=0.01)
    areas = rec.schools.set_index("school")["area"]
    start = rec.participation.assign(area=rec.participation["school"].map(areas))
    by_area = start.groupby("area")["start_year"].agg(["min", "max", "size"])
    assert len(by_area) == 30
    assert (by_area["min"] == by_area["max"]).all()  # the area is the unit of assignment
    assert (by_area["min"] == 2019).sum() == 9
    assert (by_area["min"] == 2021).sum() == 21
    assert by_area["size"].sum() == len(rec.schools)  # every school of every area joins
    assert rec.participation["teacher"].isna().all()
    assert (rec.schools.groupby("area").size() >= 2).all()
    assert rec.scenario.schools_per_area == (2, 3)


@pytest.mark.slow
def test_hub_rollout_full_size():
    rec = hub_rollout(seed=0)
    per_area = rec.schools.groupby("area").size()
    assert len(per_area) == 30 and per_area.between(200, 300).all()
    assert rec.participation.groupby("start_year")["school"].size().index.tolist() == [2019, 2021]
    assert len(rec.pupils) > 1_000_000
    rec.validate()


def test_maths_challenge_structure():
    rec = maths_challenge(seed=0, scale=0.3)
    areas = rec.schools.set_index("school")["area"]
    treated_areas = set(rec.participation["school"].map(areas))
    assert treated_areas == {"Riverton"}
    assert set(rec.schools.loc[rec.schools["area"] == "Riverton", "school"]) == set(
        rec.participation["school"]
    )
    assert rec.schools["area"].nunique() == 9
    years = sorted(rec.pupils["year"].unique())
    start = int(rec.participation["start_year"].iloc[0])
    assert sum(y < start for y in years) == 4 and sum(y >= start for y in years) == 4
    assert set(rec.schools["phase"]) == {"secondary"}
    assert list(rec.truth.by_event_time.index) == [0, 1, 2, 3]


def test_staggered_starts_within_an_area():
    rec = simulate(Scenario(schools_per_area=40, start_years={"City": (2019, 2021)}), seed=2)
    counts = rec.participation.groupby("start_year")["school"].nunique()
    assert list(counts.index) == [2019, 2021] and list(counts) == [10, 10]


# ---------------------------------------------------------------------- truth
def test_truth_is_consistent_with_the_tables():
    rec = city_partnership(seed=3, scale=0.5)
    truth, pupils = rec.truth, rec.pupils
    start = school_start(rec)
    exposed = (start.notna() & (pupils["year"] >= start)).to_numpy()
    effects = truth.pupil_effects
    assert effects.index.equals(pupils.index)
    assert "effect" not in pupils.columns
    assert truth.n_exposed == exposed.sum()
    assert (effects[~exposed] == 0).all() and (effects[exposed] > 0).all()
    assert truth.att == pytest.approx(effects[exposed].mean())
    fsm = pupils["fsm"].to_numpy() == 1
    assert truth.att_fsm == pytest.approx(effects[exposed & fsm].mean())
    assert truth.att_non_fsm == pytest.approx(effects[exposed & ~fsm].mean())
    assert truth.effect_size == pytest.approx(truth.att / truth.outcome_sd)
    assert truth.effect_size_fsm == pytest.approx(truth.att_fsm / truth.outcome_sd)
    assert truth.effect_size_non_fsm == pytest.approx(truth.att_non_fsm / truth.outcome_sd)
    # Effects grow with exposure and favour FSM pupils, as the preset says.
    assert truth.by_event_time.name == "att"
    assert list(truth.by_event_time.index) == [0, 1, 2]
    assert truth.by_event_time.is_monotonic_increasing
    assert truth.by_event_time.diff().dropna().gt(0.05).all()
    assert truth.att_fsm > truth.att_non_fsm
    # outcome_sd is the pooled within-year pupil SD of Y(0).
    y0 = untreated(rec)
    pooled = np.sqrt(y0.groupby(pupils["year"]).var().mean())
    assert truth.outcome_sd == pytest.approx(pooled)
    assert abs(truth.outcome_sd - 6.5) < 0.3


def test_constant_effect_is_exact():
    rec = city_partnership(seed=5, scale=0.25, effect=0.1, effect_growth=0.0, effect_fsm_extra=0)
    points = 0.1 * rec.scenario.outcome_sd
    assert np.allclose(rec.truth.by_event_time, points)
    assert rec.truth.att == pytest.approx(points)
    assert rec.truth.att_fsm == pytest.approx(rec.truth.att_non_fsm)


def test_truth_to_dict_is_plain_json():
    out = city_partnership(seed=0, scale=0.1).truth.to_dict()
    text = json.dumps(out)
    assert json.loads(text)["exposure"] == "school"
    assert all(type(out[k]) is float for k in ("att", "effect_size", "outcome_sd"))
    assert type(out["n_exposed"]) is int and "pupil_effects" not in out


def test_teacher_exposure_follows_participating_teachers():
    rec = city_partnership(seed=1, scale=0.5, exposure="teacher")
    rec.validate(teacher_level=True)
    pupils = rec.pupils
    start = rec.participation.set_index("teacher")["start_year"]
    teacher_start = pupils["teacher"].map(start.astype(float))
    exposed = teacher_start.notna() & (pupils["year"] >= teacher_start)
    assert rec.truth.n_exposed == exposed.sum() > 0
    assert (rec.truth.pupil_effects[~exposed] == 0).all()
    school_level = city_partnership(seed=1, scale=0.5)
    assert rec.truth.n_exposed < school_level.truth.n_exposed
    assert rec.truth.exposure == "teacher"


def test_difference_in_differences_recovers_the_truth():
    rec = city_partnership(seed=11, scale=3, selection_fsm=1.0)
    estimate, se = did_of_means(rec)
    assert 0.05 < se < 0.2
    assert abs(estimate - rec.truth.att) < 3.5 * se
    # The tolerance is tight relative to the effect: a generator that added nothing would fail.
    assert estimate > 3.5 * se


def test_selection_keeps_parallel_trends_under_no_effect():
    rec = city_partnership(
        seed=21, scale=3, selection_fsm=3.0, effect=0, effect_growth=0, effect_fsm_extra=0
    )
    assert rec.truth.att == 0
    # Strong selection: joining schools serve clearly more FSM pupils ...
    joined = rec.schools["school"].isin(rec.participation["school"])
    fsm = rec.schools.groupby(joined)["fsm_share"].mean()
    assert fsm[True] - fsm[False] > 0.05
    # ... yet the DiD of untreated outcomes is centred on zero.
    estimate, se = did_of_means(rec)
    assert abs(estimate) < 3.5 * se


def test_school_icc_is_near_the_parameter():
    rec = city_partnership(seed=2, scale=3)
    y0 = untreated(rec)
    within_year = y0 - y0.groupby(rec.pupils["year"]).transform("mean")
    assert anova_icc(within_year, rec.pupils["school"]) == pytest.approx(0.17, abs=0.04)
    lower = city_partnership(seed=2, scale=3, school_icc=0.08)
    y0 = untreated(lower)
    within_year = y0 - y0.groupby(lower.pupils["year"]).transform("mean")
    assert anova_icc(within_year, lower.pupils["school"]) == pytest.approx(0.08, abs=0.03)


def test_disadvantage_gaps():
    rec = maths_challenge(seed=0, scale=0.5)
    pupils, y0 = rec.pupils, untreated(rec)
    fsm = pupils["fsm"] == 1
    raw_gap = (y0[~fsm].mean() - y0[fsm].mean()) / rec.truth.outcome_sd
    assert 0.45 < raw_gap < 0.75  # secondary: about 0.5-0.7 SD at 16
    assert pupils.loc[fsm, "prior"].mean() < pupils.loc[~fsm, "prior"].mean() - 0.3
    primary = city_partnership(seed=0)
    y0, fsm = untreated(primary), primary.pupils["fsm"] == 1
    primary_gap = (y0[~fsm].mean() - y0[fsm].mean()) / primary.truth.outcome_sd
    assert 0.3 < primary_gap < raw_gap


# ---------------------------------------------------------------------- scenario checks
def test_scenario_defaults_and_normalisation():
    sc = Scenario(schools_per_area=10, start_years={"City": 2020})
    assert sc.schools_per_area == (10, 10)
    assert sc.start_years == (("City", (2020,)),)
    assert hash(sc) == hash(Scenario(schools_per_area=10, start_years={"City": 2020}))
    secondary = Scenario(phase="secondary")
    assert (secondary.outcome_mean, secondary.outcome_sd, secondary.class_size) == (47, 19, 22)
    budget = sc.variance_budget()
    assert budget["school"] > 0 and budget["pupil"] > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        sc.effect = 1.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"school_icc": 1.0}, "school_icc"),
        ({"school_icc": -0.1}, "school_icc"),
        ({"school_icc": 0.01}, "school_icc"),
        ({"teacher_sd": 1.0}, "residual"),
        ({"years": (2023, 2017)}, "years"),
        ({"start_years": {"City": 2017}}, "pre-period"),
        ({"start_years": {"Town": 2021}}, "Town"),
        ({"exposure": "pupil"}, "exposure"),
        ({"phase": "nursery"}, "phase"),
        ({"fsm_share": 0.0}, "fsm_share"),
        ({"join_share": 0.0}, "join_share"),
        ({"exposure": "teacher", "participants_per_school": 0}, "participants_per_school"),
        ({"schools_per_area": (10, 5)}, "schools_per_area"),
        ({"outcome_sd": -1.0}, "outcome_sd"),
        ({"strands": (("a", 1.0, 5.0), ("a", 1.0, 5.0))}, "strand"),
    ],
)
def test_scenario_rejects_bad_parameters(overrides, message):
    with pytest.raises(ValueError, match=message):
        Scenario(**overrides)


def test_presets_reject_bad_arguments():
    with pytest.raises(TypeError, match="unknown Scenario fields"):
        city_partnership(efect=0.1)
    with pytest.raises(ValueError, match="scale"):
        hub_rollout(scale=0)
    with pytest.raises(TypeError, match="Scenario"):
        simulate({"effect": 0.1})


# ---------------------------------------------------------------------- properties
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    schools=st.integers(4, 20),
    join_share=st.floats(0.2, 1.0),
    exposure=st.sampled_from(["school", "teacher"]),
    phase=st.sampled_from(["primary", "secondary"]),
    effect=st.floats(-0.2, 0.3),
    growth=st.floats(0.0, 0.05),
    seed=st.integers(0, 2**31),
)
def test_any_valid_scenario_gives_valid_records(
    schools, join_share, exposure, phase, effect, growth, seed
):
    sc = Scenario(
        schools_per_area=schools,
        join_share=join_share,
        exposure=exposure,
        phase=phase,
        effect=effect,
        effect_growth=growth,
        classes_per_year=(1, 2),
    )
    rec = simulate(sc, seed=seed)
    rec.validate(teacher_level=True)
    truth = rec.truth
    if truth.n_exposed:
        assert truth.effect_size == pytest.approx(truth.att / truth.outcome_sd)
        assert truth.by_event_time.index.min() >= 0
    assert (truth.pupil_effects != 0).sum() <= truth.n_exposed


def test_true_effect_of_an_analysis_subset():
    from cpdimpact.cohort import CohortSpec

    records = hub_rollout(seed=3, scale=0.05)
    full = records.true_effect(
        records.pupils.assign(exposed=records.truth.pupil_effects.to_numpy() != 0)
    )
    assert full["att"] == pytest.approx(records.truth.att)
    assert full["att_fsm"] == pytest.approx(records.truth.att_fsm)
    # A not-yet-treated design keeps only the pilot areas' first two years: smaller effects.
    cohort = CohortSpec(comparison="not_yet_treated").build(records)
    subset = records.true_effect(cohort.pupils)
    assert subset["n_exposed"] == cohort.pupils["exposed"].sum()
    assert subset["att"] < records.truth.att
    by_event = records.truth.by_event_time
    assert by_event.loc[0] <= subset["att"] <= by_event.loc[1]
