"""Pass/fail outcomes (issue 17) through the pipeline: cohort, estimate, report.

A pass/fail outcome is held as 0 or 100 by the cohort, so every estimate is in percentage
points; its effect size is Cox's conversion of the two percentages, never a Hedges' g.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from cpdimpact import Evaluation
from cpdimpact.cohort import CohortSpec
from cpdimpact.datasets import city_partnership
from cpdimpact.did import DiD
from cpdimpact.errors import DesignError, InvalidArgumentError, NotBinaryError
from cpdimpact.multilevel import MultilevelDiD


@pytest.fixture(scope="module")
def passed():
    return city_partnership(seed=1, scale=0.2).with_pass_mark(100)


@pytest.fixture(scope="module")
def result(passed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Evaluation().run(passed)


def test_pass_mark_makes_a_0_1_outcome_and_keeps_the_score():
    records = city_partnership(seed=1, scale=0.2)
    before = records.pupils.copy()
    passed = records.with_pass_mark(100)
    pd.testing.assert_frame_equal(records.pupils, before)  # input untouched
    assert passed.pupils["outcome"].tolist() == (before["outcome"] >= 100).astype(int).tolist()
    assert passed.pupils["score"].tolist() == before["outcome"].tolist()
    assert passed.columns["outcome"] == "reached_expected_standard"
    with pytest.raises(InvalidArgumentError, match="already have a pass/fail outcome"):
        passed.with_pass_mark(105)


def test_true_pass_effect_counts_pupils_pushed_over_the_mark(passed):
    cohort = CohortSpec().build(passed)
    truth = passed.true_effect(cohort.pupils)
    # By hand: a pupil counts when the score passes and the score less its effect does not.
    exposed = cohort.pupils[cohort.pupils["exposed"]]
    score = exposed["score"].to_numpy()
    effect = (
        passed.truth.pupil_effects.set_axis(passed.pupils["pupil"]).loc[exposed["pupil"]].to_numpy()
    )
    gained = np.mean((score >= 100) & (score - effect < 100)) * 100
    assert truth["att"] == pytest.approx(gained, rel=1e-12)
    assert truth["percent_passing"] == pytest.approx(100 * np.mean(score >= 100), rel=1e-12)
    p1, p0 = truth["percent_passing"] / 100, truth["percent_without"] / 100
    cox = (math.log(p1 / (1 - p1)) - math.log(p0 / (1 - p0))) / 1.65
    assert truth["effect_size"] == pytest.approx(cox, rel=1e-12)


def test_cohort_holds_a_pass_fail_outcome_as_percentages(passed):
    cohort = CohortSpec().build(passed)
    assert cohort.outcome_kind == "pass_fail"
    assert cohort.outcome_units == "percentage points"
    assert set(np.unique(cohort.pupils["outcome"])) == {0.0, 100.0}
    assert math.isnan(cohort.outcome_sd)
    assert "pass/fail" in cohort.outcome_sd_source
    # a score stays a score, and a 0/1 outcome can be declared one
    assert CohortSpec().build(city_partnership(seed=1, scale=0.2)).outcome_kind == "score"
    as_score = CohortSpec(outcome_kind="score").build(passed)
    assert as_score.outcome_kind == "score" and as_score.pupils["outcome"].max() == 1


def test_estimate_is_the_linear_probability_did_in_percentage_points(passed, result):
    # Independent check: OLS of the 0/1 outcome on school and year dummies and exposure,
    # school-clustered, times 100.
    pupils = result.cohort.pupils.assign(passed=lambda d: d["outcome"] / 100)
    ols = smf.ols("passed ~ exposed + C(school) + C(year)", data=pupils).fit(
        cov_type="cluster", cov_kwds={"groups": pupils["school"]}
    )
    row = result.headline.iloc[0]
    assert row["estimate"] == pytest.approx(100 * ols.params["exposed[T.True]"], rel=1e-9)
    assert result.outcome_units == "percentage points"
    assert not result.has_effect_size
    assert pd.isna(row["effect_size"]) and pd.isna(row["months"])


def test_odds_ratio_and_cox_effect_size_by_hand(result):
    table = result.percentage_effect_sizes
    assert list(table["group"]) == ["All pupils", "FSM pupils"]
    pupils = result.cohort.pupils
    for (_, row), mask in zip(
        table.iterrows(), (pupils["exposed"], pupils["exposed"] & (pupils["fsm"] == 1)), strict=True
    ):
        p1 = pupils.loc[mask, "outcome"].mean()
        estimate = result.headline.set_index("group").loc[row["group"], "estimate"]
        p0 = p1 - estimate
        odds = (p1 / (100 - p1)) / (p0 / (100 - p0))
        assert row["percent_participating"] == pytest.approx(p1, rel=1e-12)
        assert row["odds_ratio"] == pytest.approx(odds, rel=1e-12)
        assert row["effect_size"] == pytest.approx(math.log(odds) / 1.65, rel=1e-12)
        assert row["odds_ratio_lower"] < row["odds_ratio"] < row["odds_ratio_upper"]


def test_report_speaks_of_percentage_points_and_pupils_passing(result, tmp_path):
    result.save(tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert (
        "percentage points in the share of pupils passing (reached\\_expected\\_standard)" in text
    )
    assert "odds ratio of" in text
    assert "outcome points" not in text
    assert "divided by the same SD" not in text


def test_summary_gives_the_odds_ratio_and_no_empty_effect_size_columns(result):
    summary = result.summary()
    facts = dict(summary.facts)
    row = result.percentage_effect_sizes.iloc[0]
    assert facts["odds ratio"].startswith(f"{row['odds_ratio']:.2f} (95% CI")
    assert facts["effect size (Cox)"].startswith(f"{row['effect_size']:.2f} (95% CI")
    assert "no months" in facts["effect size (Cox)"]
    assert "effect size" not in facts  # no "not computed" beside the converted one
    assert not summary.table.isna().all().any()
    assert "months" not in summary.table.columns


def test_declared_pass_fail_refuses_other_values_naming_rows():
    records = city_partnership(seed=1, scale=0.2)
    with pytest.raises(NotBinaryError, match=r"must be 0/1.*rows 0, 1"):
        CohortSpec(outcome_kind="pass_fail").build(records)
    with pytest.raises(InvalidArgumentError, match="takes no pupil-level SD"):
        CohortSpec(outcome_kind="pass_fail", pupil_sd=15.0, pupil_sd_source="national")
    with pytest.raises(InvalidArgumentError, match="outcome_kind"):
        CohortSpec(outcome_kind="binary")


def _coverage(seeds, scale):
    errors, covered = [], 0
    for seed in seeds:
        records = city_partnership(seed=seed, scale=scale).with_pass_mark(100)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cohort = CohortSpec().build(records)
            fit = DiD().fit(cohort.pupils)
        truth = records.true_effect(cohort.pupils)["att"]
        errors.append(fit.estimate - truth)
        covered += fit.ci_lower <= truth <= fit.ci_upper
    return np.asarray(errors), covered


def _check(errors, covered):
    reps = len(errors)
    assert abs(errors.mean()) <= 3 * errors.std(ddof=1) / np.sqrt(reps)
    lo, hi = stats.binom.ppf([0.0025, 0.9975], reps, 0.95)
    assert lo <= covered <= hi, covered


def test_truth_recovered_in_percentage_points():
    """Known truth: the percentage of pupils the programme pushed over the mark."""
    _check(*_coverage(range(20), 0.2))


@pytest.mark.slow
def test_truth_recovered_in_percentage_points_full():
    _check(*_coverage(range(200), 0.5))


def test_multilevel_did_on_pass_fail_gives_no_sd_effect_size(passed):
    """MultilevelDiD carries its own SD; on a pass/fail outcome that SD (of a 0/100 variable)
    must not turn into a Hedges' g and months."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = Evaluation(estimator=MultilevelDiD(), event_study=None).run(passed)
    assert not result.has_effect_size
    assert result.outcome_units == "percentage points"
    assert result.percentage_effect_sizes["effect_size"].notna().all()


def test_a_yes_no_outcome_with_absent_pupils_is_read_from_a_dfe_file(tmp_path, passed):
    """A KS2 extract writes the expected standard Y/N and absent pupils A: with format="dfe"
    Y/N are 1/0 and A is missing with its reason, counted in the flow log."""
    from cpdimpact import Records

    pupils = passed.pupils.drop(columns="score").rename(columns={"outcome": "maths_expected"})
    cells = pupils["maths_expected"].map({1: "Y", 0: "n"}).astype(object)
    cells.iloc[[3, 8]] = "A"
    pupils.assign(maths_expected=cells).to_csv(tmp_path / "pupils.csv", index=False)
    passed.participation.to_csv(tmp_path / "participation.csv", index=False)
    records = Records.from_csv(
        pupils=tmp_path / "pupils.csv",
        participation=tmp_path / "participation.csv",
        columns={"outcome": "maths_expected"},
        format="dfe",
    )
    expected = passed.pupils["outcome"].to_numpy(dtype=float, copy=True)
    expected[[3, 8]] = np.nan
    np.testing.assert_array_equal(records.pupils["outcome"].to_numpy(dtype=float), expected)
    assert any("yes/no read as 1/0" in note for note in records.reading_notes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cohort = CohortSpec().build(records)
    assert cohort.outcome_kind == "pass_fail"
    reasons = " ".join(cohort.flow.exclusions["reason"].astype(str))
    assert "absent" in reasons


def test_a_logistic_headline_is_refused_with_the_way_to_fit_it(passed):
    """The cohort holds a pass/fail outcome as 0/100 and the report reads the headline in
    percentage points: a family="binomial" headline would be read as percentage points (or
    refused as 'not 0/1' about a column the user wrote as 0/1), so it is refused by name."""
    with pytest.raises(DesignError, match=r"MultilevelDiD\(family='binomial'\) gives a log odds"):
        Evaluation(estimator=MultilevelDiD(family="binomial"), seed=1).run(passed)
