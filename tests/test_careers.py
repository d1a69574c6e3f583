"""Simulated careers (cpdimpact.datasets.simulate_careers): presets, determinism, known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cpdimpact.datasets import CareersScenario, SimulatedCareers, simulate_careers
from cpdimpact.did import DiD, StaggeredDiD
from cpdimpact.errors import InvalidArgumentError
from cpdimpact.workforce import (
    ROLES,
    TeacherRecords,
    cohort_outcomes,
    school_workforce,
    spells,
)


def _trial(**changes) -> CareersScenario:
    """Teachers enrolled at random within half the schools (no selection unless asked)."""
    base = dict(
        name="trial",
        years=(2017, 2021),
        areas=("X",),
        schools_per_area=400,
        start_years={"X": 2018},
        join_share=0.5,
        selection_fsm=0.0,
        participants_per_school=6,
        strands=(("a", 1.0),),
        leave_hr={"a": 0.6},
        promote_hr={"a": 1.5},
    )
    return CareersScenario(**{**base, **changes})


def _naive(rec: SimulatedCareers, k: int) -> tuple[float, float]:
    """Participants minus the other teachers of the same schools: the share leaving teaching
    within k years, and the standard error of a difference of two independent shares."""
    data = spells(rec, outcome="teaching").data
    data = data[data["school"].isin(rec.participation["school"])]
    left = ((data["event"] == 1) & (data["duration"] <= k)).to_numpy()
    treated = data["treated"].to_numpy() == 1
    p1, p0 = left[treated].mean(), left[~treated].mean()
    se = np.sqrt(p0 * (1 - p0) * (1 / treated.sum() + 1 / (~treated).sum()))
    return p1 - p0, se


# ---------------------------------------------------------------------- presets
def test_city_partnership_is_valid_teacher_records_with_its_strands():
    rec = simulate_careers("city_partnership", seed=0)
    assert isinstance(rec, TeacherRecords)
    again = TeacherRecords.from_frames(
        census=rec.census, participation=rec.participation, schools=rec.schools
    )
    assert len(again.census) == len(rec.census)
    part = rec.participation
    assert len(part) == 400 and part["school"].nunique() == 80
    assert part["strand"].value_counts().to_dict() == {
        "whole_school": 295,
        "teacher_educator": 80,
        "headship": 25,
    }
    assert part["start_year"].eq(2021).all() and rec.years == (2017, 2024)
    # the headship strand: top teachers below head, more senior than the others
    at_start = rec.census[rec.census["year"] == 2021].set_index("teacher")
    rank = at_start["role"].map({r: i for i, r in enumerate(ROLES)})
    head = rank.loc[part.loc[part["strand"] == "headship", "teacher"]]
    rest = rank.loc[part.loc[part["strand"] != "headship", "teacher"]]
    assert head.max() < 3 and head.mean() > rest.mean()
    assert rec.truth.hazard_ratios.loc["headship", "promotion"] == 2.0
    assert set(rec.truth.effects.index.get_level_values("years")) == {1, 2, 3}


def test_hub_rollout_starts_in_nine_pilot_areas_then_nationally():
    rec = simulate_careers("hub_rollout", seed=0, scale=0.3)
    part = rec.participation.merge(rec.schools, on="school")
    assert part["teacher"].isna().all()  # whole schools
    starts = part.groupby("area")["start_year"].first()
    assert (starts == 2020).sum() == 9 and (starts == 2021).sum() == 21
    # hubs reach high-FSM schools first
    joined = rec.schools["school"].isin(part["school"])
    assert (
        rec.schools.loc[joined, "fsm_share"].mean() > rec.schools.loc[~joined, "fsm_share"].mean()
    )
    sp = spells(rec, outcome="school", baseline=2020).data
    assert sp.loc[sp["start_year"] == 2021, "censored_at_start"].max() == 1


def test_the_seed_decides_the_records():
    a = simulate_careers("city_partnership", seed=7, scale=0.25)
    b = simulate_careers("city_partnership", seed=7, scale=0.25)
    c = simulate_careers("city_partnership", seed=8, scale=0.25)
    for name in ("census", "participation", "schools"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    pd.testing.assert_frame_equal(a.truth.effects, b.truth.effects)
    assert not a.census.equals(c.census)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_bad_scenarios_are_refused():
    with pytest.raises(InvalidArgumentError, match="not a preset"):
        simulate_careers("city")
    with pytest.raises(InvalidArgumentError, match="unknown CareersScenario fields"):
        simulate_careers("city_partnership", effect=0.2)
    with pytest.raises(InvalidArgumentError, match="not one of the strands"):
        _trial(leave_hr={"b": 0.5})
    with pytest.raises(InvalidArgumentError, match="start_years"):
        _trial(start_years={"X": 2021})


# ---------------------------------------------------------------------- the truth
def test_truth_is_the_realised_careers_with_and_without_the_programme():
    """The participants' observed share leaving within k years is the truth's programme
    career exactly: the change plus the share leaving without the programme."""
    rec = simulate_careers("city_partnership", seed=2)
    data = spells(rec, outcome="teaching").data
    treated = data[data["treated"] == 1]
    assert len(treated) == rec.truth.effects.loc[("all", 1), "teachers"] == 400
    for k in (1, 2, 3):
        row = rec.truth.effects.loc[("all", k)]
        observed = ((treated["event"] == 1) & (treated["duration"] <= k)).mean()
        assert observed == pytest.approx(row["left_teaching"] + row["left_teaching_without"])
    strands = rec.truth.effects.xs(1, level="years")["teachers"]
    assert strands.drop("all").to_dict() == {
        "whole_school": 295,
        "teacher_educator": 80,
        "headship": 25,
    }


def test_random_enrolment_recovers_the_true_change_in_leaving():
    """Enrolled at random within schools, participants minus the others estimates the true
    change in the share leaving within 1, 2, 3 years (the difference of the untreated
    outcomes of the two groups has mean 0; bound: 4 standard errors)."""
    rec = simulate_careers(_trial(), seed=11)
    for k in (1, 2, 3):
        estimate, se = _naive(rec, k)
        assert abs(estimate - rec.truth.leaving_within(k)) < 4 * se


def test_selection_on_experience_biases_the_naive_comparison():
    """Early-career teachers, who leave most, enrol more: the naive comparison understates
    the (larger) true change, by several standard errors at every k."""
    rec = simulate_careers(_trial(schools_per_area=600, selection_experience=-0.4), seed=4)
    data = spells(rec).data
    assert data.loc[data["treated"] == 1, "years_service"].mean() < 0.6 * (
        data.loc[data["treated"] == 0, "years_service"].mean()
    )
    z = [(_naive(rec, k)[0] - rec.truth.leaving_within(k)) / _naive(rec, k)[1] for k in (1, 2, 3)]
    assert min(z) > 2


def test_stratifying_on_experience_removes_the_selection_bias():
    """In the same draw, participants minus the others within strata of baseline years of
    service, averaged over the participants' strata (the weighting a comparison design does),
    recovers the true change (bound: 4 standard errors)."""
    rec = simulate_careers(_trial(schools_per_area=600, selection_experience=-0.4), seed=4)
    data = spells(rec).data
    data = data[data["school"].isin(rec.participation["school"])]
    for k in (1, 2, 3):
        left = (data["event"] == 1) & (data["duration"] <= k)
        cells = left.groupby([data["years_service"], data["treated"]]).agg(["mean", "size"])
        cells = cells.unstack("treated").dropna()
        p0, p1 = cells[("mean", 0)], cells[("mean", 1)]
        n0, n1 = cells[("size", 0)], cells[("size", 1)]
        weight = n1 / n1.sum()
        estimate = float((weight * (p1 - p0)).sum())
        se = float(np.sqrt((weight**2 * (p0 * (1 - p0) / n0 + p1 * (1 - p1) / n1)).sum()))
        assert n1.sum() > 0.97 * (data["treated"] == 1).sum()  # nearly all participants matched
        assert abs(estimate - rec.truth.leaving_within(k)) < 4 * se


def _yearly_hazards(rec: SimulatedCareers, kind: str):
    """Events and teacher-years at risk for participants and others, pooled over the years
    after the start, in the band of service (5 to 34 years) where, without school effects or
    FSM, the yearly hazard is constant; ``kind`` is leaving or promotion from classroom teacher
    (among those still teaching)."""
    census = rec.census
    start = int(rec.participation["start_year"].iloc[0])
    enrolled = set(rec.participation["teacher"])
    here = census.set_index(["teacher", "year"])
    counts = {True: [0, 0], False: [0, 0]}
    for year in range(start, rec.years[1]):
        now = census[(census["year"] == year) & census["years_service"].between(5, 34)]
        if kind == "promotion":
            now = now[now["role"] == ROLES[0]]
        later = here.reindex(list(zip(now["teacher"], [year + 1] * len(now), strict=True)))
        if kind == "leaving":
            event, at_risk = later["school"].isna().to_numpy(), np.ones(len(now), dtype=bool)
        else:
            at_risk = later["school"].notna().to_numpy()
            event = (later["role"] != ROLES[0]).to_numpy() & at_risk
        treated = now["teacher"].isin(enrolled).to_numpy()
        for arm in (True, False):
            rows = at_risk & (treated == arm)
            counts[arm][0] += int(event[rows].sum())
            counts[arm][1] += int(rows.sum())
    return counts


def _log_hr(counts):
    """cloglog(p1) - cloglog(p0) and its delta-method standard error."""
    out, var = 0.0, 0.0
    for arm, sign in ((True, 1), (False, -1)):
        events, n = counts[arm]
        p = events / n
        out += sign * np.log(-np.log1p(-p))
        var += p * (1 - p) / n / ((1 - p) * -np.log1p(-p)) ** 2
    return out, np.sqrt(var)


@pytest.mark.parametrize(("kind", "ratio"), [("leaving", 0.6), ("promotion", 1.5)])
def test_the_true_hazard_ratio_is_recovered(kind, ratio):
    """Without school effects and FSM, the grouped (cloglog) hazards of participants and
    others differ by the log of the true hazard ratio (bound: 4 standard errors)."""
    sc = _trial(schools_per_area=500, school_sd=0.0, fsm_leave=0.0)
    rec = simulate_careers(sc, seed=5)
    truth = rec.truth.hazard_ratios.loc["a", kind]
    assert truth == ratio
    estimate, se = _log_hr(_yearly_hazards(rec, kind))
    assert abs(estimate - np.log(truth)) < 4 * se


# ---------------------------------------------------------------------- feeding the estimators
def test_cohort_outcomes_feed_the_did_family():
    rec = simulate_careers("city_partnership", seed=3, scale=0.5)
    out = cohort_outcomes(rec, years=1)
    did = DiD(outcome="share_left_teaching", weights="n_teachers").fit(out)
    assert np.isfinite(did.estimate) and np.isfinite(did.std_error)
    staggered = StaggeredDiD(
        outcome="share_left_teaching",
        unit="school",
        weights="school_teachers",
        anticipation=1,
        n_bootstrap=0,
    ).fit(out)
    assert np.isfinite(staggered.aggregate("simple").estimate)
    rates = school_workforce(rec).panel("leaving_rate", rec.participation)
    fit = DiD(outcome="outcome", weights="weight").fit(rates)
    assert np.isfinite(fit.estimate)


@pytest.mark.slow
def test_random_enrolment_is_unbiased_over_many_draws():
    """Over 200 draws the mean of (naive estimate - truth) is within 3 Monte Carlo standard
    errors of 0 at every k, the 95% interval estimate +/- 1.96 SE covers the truth in 95% of
    draws (within 3 Monte Carlo SEs), and the mean log hazard ratio estimate is within 3
    Monte Carlo SEs of log 0.6."""
    gaps, covered, log_hrs = {1: [], 2: [], 3: []}, {1: [], 2: [], 3: []}, []
    sc = _trial(schools_per_area=400, school_sd=0.0, fsm_leave=0.0)
    for seed in range(200):
        rec = simulate_careers(sc, seed=1000 + seed)
        for k in gaps:
            estimate, se = _naive(rec, k)
            gaps[k].append(estimate - rec.truth.leaving_within(k))
            covered[k].append(abs(gaps[k][-1]) <= 1.96 * se)
        log_hrs.append(_log_hr(_yearly_hazards(rec, "leaving"))[0])
    for k, values in gaps.items():
        values = np.asarray(values)
        assert abs(values.mean()) < 3 * values.std(ddof=1) / np.sqrt(len(values)), k
        assert abs(np.mean(covered[k]) - 0.95) < 3 * np.sqrt(0.95 * 0.05 / len(values)), k
    log_hrs = np.asarray(log_hrs)
    assert abs(log_hrs.mean() - np.log(0.6)) < 3 * log_hrs.std(ddof=1) / np.sqrt(len(log_hrs))
