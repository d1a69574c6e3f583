"""Difference-in-differences on 0/1 (pass/fail) outcomes (issue 17): the estimate is a
difference in proportions from a linear probability model. The results say so, keep what a
report needs to convert it to an odds ratio, and warn when the counterfactual proportion leaves
[0, 1]; the estimates themselves are those of any numeric outcome."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from cpdimpact.did import DiD, EventStudy, StaggeredDiD, SunAbraham
from cpdimpact.effects import difference_effect_size
from cpdimpact.errors import (
    CpdImpactWarning,
    InvalidValueError,
    ProbabilityBoundsWarning,
    StaggeredTimingWarning,
)

TAU = 0.05  # the true effect: +5 percentage points


def _schools(rng, *, schools=200, pupils=5, years=range(2017, 2022), tau=TAU):
    """Pupils in schools, a 0/1 outcome whose probability is additive (so the linear
    probability model is right): school level + trend + a school-year shock shared by the
    school's pupils (what clustering by school must absorb) + tau after the start. A third of
    the schools start in 2019, a third in 2020, a third never."""
    years = np.asarray(list(years))
    s = np.repeat(np.arange(schools), len(years) * pupils)
    y = np.tile(np.repeat(years, pupils), schools)
    start = np.select([np.arange(schools) % 3 == 0, np.arange(schools) % 3 == 1], [2019, 2020], 0)
    first = start[s]
    exposed = ((first > 0) & (y >= first)).astype(int)
    level = rng.uniform(0.3, 0.6, schools)[s]
    shock = rng.uniform(-0.06, 0.06, (schools, len(years)))[s, y - years[0]]
    p = level + 0.02 * (y - years[0]) + shock + tau * exposed
    assert (p > 0).all() and (p < 1).all()
    return pd.DataFrame(
        {
            "school": s,
            "unit": s,
            "year": y,
            "first_treated": first,
            "exposed": exposed,
            "outcome": (rng.random(len(s)) < p).astype(int),
        }
    )


def _fits(frame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StaggeredTimingWarning)
        did = DiD().fit(frame)
    staggered = StaggeredDiD(panel=False, cluster="school", n_bootstrap=0).fit(frame)
    return did, staggered.aggregate("simple")


def _coverage(reps, seed, **size):
    rng = np.random.default_rng(seed)
    hits = {"did": 0, "staggered": 0}
    estimates = {"did": [], "staggered": []}
    for _ in range(reps):
        for name, res in zip(("did", "staggered"), _fits(_schools(rng, **size)), strict=True):
            lo, hi = res.conf_int(0.05).iloc[0]
            hits[name] += lo <= TAU <= hi
            estimates[name].append(res.estimate)
    return hits, {k: np.asarray(v) for k, v in estimates.items()}


def test_binary_did_is_unbiased_and_covers_in_a_simulation():
    """25 replications of 150 schools (CI size): mean within 3.5 Monte Carlo SEs of the truth
    and at least 20 of 25 intervals covering (at 0.95, fewer has probability about 0.7%)."""
    reps = 25
    hits, estimates = _coverage(reps, seed=17, schools=150)
    for name in hits:
        est = estimates[name]
        assert abs(est.mean() - TAU) < 3.5 * est.std(ddof=1) / math.sqrt(reps), name
        assert hits[name] >= 20, (name, hits[name])


@pytest.mark.slow
def test_binary_did_coverage_full_size():
    """1,000 replications of 300 schools x 10 pupils x 5 years: bias within 3 Monte Carlo SEs
    and coverage within 3 Monte Carlo SDs of 0.95 (0.929-0.971).

    A first run with 400 replications of 300 x 20 pupils put the staggered mean 3.96 Monte
    Carlo SEs above the truth, although its estimate equals the hand formula of cohort-period
    means, whose expectation is exactly TAU here (two further seeds: 0.2 and 0.5 SEs); the
    larger run shrinks the Monte Carlo error rather than moving the bound.
    """
    reps = 1000
    hits, estimates = _coverage(reps, seed=2026, schools=300, pupils=10)
    for name in hits:
        est = estimates[name]
        assert abs(est.mean() - TAU) < 3 * est.std(ddof=1) / math.sqrt(reps), name
        assert 0.929 <= hits[name] / reps <= 0.971, (name, hits[name])


def _two_by_two():
    """Two schools, two years, one treated in the second: the DiD is the 2x2 difference."""
    rows = []
    counts = {(0, 2018): (4, 10), (0, 2019): (6, 10), (1, 2018): (5, 10), (1, 2019): (6, 10)}
    for school in range(6):
        treated = school % 2 == 0
        for year in (2018, 2019):
            passed, n = counts[(0 if treated else 1, year)]
            for k in range(n):
                rows.append((school, year, int(treated and year == 2019), int(k < passed)))
    return pd.DataFrame(rows, columns=["school", "year", "exposed", "outcome"]).assign(
        unit=lambda f: f["school"]
    )


def test_a_0_1_outcome_is_reported_as_a_difference_in_proportions():
    frame = _two_by_two()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)  # six schools: few clusters
        res = DiD().fit(frame)
    # by hand: (0.6 - 0.4) - (0.6 - 0.5) = 0.1, the linear-probability DiD
    assert res.estimate == pytest.approx(0.1, abs=1e-12)
    assert res.outcome_kind == "pass_fail"
    assert res.treated_proportion == pytest.approx(0.6, abs=1e-12)
    assert "percentage points" in res.estimate_units
    facts = dict(res.summary().facts)
    assert "linear probability model" in facts["Outcome scale"]
    assert facts["Treated rows passing (after the start)"] == "60.0%"
    assert res.pass_value == 1.0
    # the same rows with a bool outcome, and with the outcome as float 0.0/1.0: same result
    for outcome in (frame["outcome"].astype(bool), frame["outcome"].astype(float)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CpdImpactWarning)
            again = DiD().fit(frame.assign(outcome=outcome))
        assert again.estimate == res.estimate and again.outcome_kind == "pass_fail"
    # held as 0/100 (as the cohort stage holds a pass/fail outcome): percentage points
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        percent = DiD().fit(frame.assign(outcome=100 * frame["outcome"]))
    assert percent.estimate == pytest.approx(10.0, abs=1e-10)
    assert percent.outcome_kind == "pass_fail" and percent.pass_value == 100.0
    assert percent.treated_proportion == pytest.approx(0.6, abs=1e-12)
    assert "percentage points" in dict(percent.summary().facts)["Outcome scale"]
    # what a report does with it: p0 = 0.6 - 0.1 = 0.5, OR = 1.5
    es = difference_effect_size(
        res.estimate, res.std_error, p_treated=res.treated_proportion, df=res.df
    )
    assert es.odds_ratio == pytest.approx((0.6 / 0.4) / (0.5 / 0.5), rel=1e-12)


def test_a_continuous_outcome_is_unchanged():
    frame = _two_by_two()
    frame["outcome"] = frame["outcome"] * 3.0 + frame["school"] * 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        res = DiD().fit(frame)
    assert res.outcome_kind == "score" and res.treated_proportion is None
    assert "Outcome scale" not in dict(res.summary().facts)
    assert res.estimate_units == "units of 'outcome'"


def test_event_study_and_staggered_say_so_too():
    rng = np.random.default_rng(3)
    frame = _schools(rng, schools=60, pupils=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        es = EventStudy().fit(frame)
        staggered = StaggeredDiD(panel=False, cluster="school", n_bootstrap=0).fit(frame)
        sun = SunAbraham().fit(frame)
    assert es.outcome_kind == "pass_fail" and staggered.outcome_kind == "pass_fail"
    assert sun.outcome_kind == "pass_fail" and "linear probability model" in str(sun.summary())
    after = frame[frame["exposed"] == 1]["outcome"].mean()
    assert es.treated_proportion == pytest.approx(after, abs=1e-12)
    assert staggered.treated_proportion == pytest.approx(after, abs=1e-12)
    for result in (es, staggered, staggered.aggregate("simple"), staggered.aggregate("dynamic")):
        assert "linear probability model" in str(result.summary())


def _out_of_bounds():
    """Treated schools: 0% before, 5.9% after (59 of 1,000 pupils); comparison schools: 10%
    before (100 of 1,000), 0% after. The DiD is 0.059 - (-0.10) = 0.159, more than the 5.9%
    observed: without the programme the treated would have had -10%."""
    rows = []
    for school in range(40):
        treated = school < 20
        wobble = school % 3 - 1  # -1, 0, +1 pupils: schools differ, so the fit is not exact
        for year in (2018, 2019):
            rate = {(True, 2018): 0, (True, 2019): 3, (False, 2018): 5, (False, 2019): 0}[
                (treated, year)
            ]
            rate = rate + wobble if rate else 0
            for k in range(50):
                rows.append((school, year, int(treated and year == 2019), int(k < rate)))
    frame = pd.DataFrame(rows, columns=["school", "year", "exposed", "outcome"])
    frame["unit"] = frame["school"]
    frame["first_treated"] = np.where(frame["school"] < 20, 2019, 0)
    return frame


def test_a_counterfactual_outside_0_1_warns_once_and_changes_nothing():
    frame = _out_of_bounds()
    with pytest.warns(ProbabilityBoundsWarning, match=r"5\.9% observed, -10\.0% implied") as got:
        res = DiD().fit(frame)
    assert len([w for w in got if w.category is ProbabilityBoundsWarning]) == 1
    assert res.estimate == pytest.approx(0.159, abs=1e-12)
    assert any("outside 0-100%" in note for note in res.notes)
    with pytest.raises(InvalidValueError, match="outside \\(0, 1\\)"):
        difference_effect_size(res.estimate, res.std_error, p_treated=res.treated_proportion)
    with pytest.warns(ProbabilityBoundsWarning, match="event time 0"):
        EventStudy().fit(frame.assign(year=frame["year"]))
    with pytest.warns(ProbabilityBoundsWarning, match="overall ATT"):
        StaggeredDiD(panel=False, cluster="school", n_bootstrap=0).fit(frame)
    with pytest.warns(ProbabilityBoundsWarning, match="ATT \\(post"):
        SunAbraham().fit(frame)
    # the same rows held as 0/100: the same check, on the percent scale
    with pytest.warns(ProbabilityBoundsWarning, match=r"5\.9% observed, -10\.0% implied"):
        DiD().fit(frame.assign(outcome=100 * frame["outcome"]))
    # the warning can be made an error in a locked-down pipeline
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProbabilityBoundsWarning)
        with pytest.raises(ProbabilityBoundsWarning):
            DiD().fit(frame)


def test_pass_fail_labels_are_refused_with_the_column_named():
    frame = _two_by_two()
    frame["outcome"] = np.where(frame["outcome"] == 1, "Y", "N")
    with pytest.raises(InvalidValueError, match="'outcome'.*map labels to 0/1"):
        DiD().fit(frame)
    gaps = _two_by_two().astype({"outcome": float})
    gaps.loc[3, "outcome"] = np.nan
    with pytest.raises(InvalidValueError, match="outcome"):
        DiD().fit(gaps)
