"""Tests of the evidence standards in cpdimpact.effects: WWC attrition, baseline equivalence,
clustering correction and study rating; EEF months, cost and the padlock assistant.

The WWC and EEF figures are checked against docs/sources.md, sections "EEF conventions" and
"WWC figures" (copied below as literal text). Those sections are themselves secondary
transcriptions of the WWC handbook and EEF guidance.
"""

from __future__ import annotations

import json
import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cpdimpact.cohort import CohortSpec, FlowLog
from cpdimpact.datasets import city_partnership
from cpdimpact.effects import (
    EEF_ATTRITION_THRESHOLDS,
    EEF_COST_THRESHOLDS,
    EEF_DESIGN_PADLOCKS,
    EEF_MDES_THRESHOLDS,
    EEF_THREATS,
    WWC_ATTRITION,
    AttritionRates,
    PadlockAssessment,
    Threat,
    attrition_rates,
    baseline_equivalence,
    baseline_equivalence_table,
    cox_index,
    eef_cost,
    eef_cost_rating,
    hedges_g_from_data,
    months_band,
    months_of_progress,
    propose_padlocks,
    wwc_attrition,
    wwc_attrition_limit,
    wwc_clustering_correction,
    wwc_study_rating,
)
from cpdimpact.errors import CpdImpactError, DesignError, InvalidValueError, MissingColumnError

matplotlib.use("Agg")

# docs/sources.md "WWC figures", copied verbatim.
README_CAUTIOUS = (
    "5.7 5.8 5.9 5.9 6.0 6.1 6.2 6.3 6.3 6.3 6.3 6.2 6.2 6.1 6.0 5.9 5.9 5.8 5.7 5.5 5.4 5.3 5.2 "
    "5.1 4.9 4.8 4.7 4.5 4.4 4.3 4.1 4.0 3.8 3.6 3.5 3.3 3.2 3.1 2.9 2.8 2.6 2.5 2.3 2.1 2.0 1.8 "
    "1.6 1.5 1.3 1.2 1.0 0.9 0.7 0.6 0.4 0.3 0.2 0.0"
)
README_OPTIMISTIC = (
    "10.0 10.1 10.2 10.3 10.4 10.5 10.7 10.8 10.9 10.9 10.9 10.9 10.9 10.8 10.8 10.7 10.6 10.5 "
    "10.3 10.2 10.0 9.9 9.7 9.5 9.4 9.2 9.0 8.8 8.6 8.4 8.2 8.0 7.8 7.6 7.4 7.2 7.0 6.7 6.5 6.3 "
    "6.0 5.8 5.6 5.3 5.1 4.9 4.6 4.4 4.2 3.9 3.7 3.5 3.2 3.0 2.8 2.6 2.3 2.1 1.9 1.6 1.4 1.1 0.9 "
    "0.7 0.5 0.3"
)


# --- WWC attrition ---------------------------------------------------------------------------


def test_readme_attrition_checks():
    # 8% overall, 3 pp differential is low (cautious).
    assert wwc_attrition(overall=0.08, differential=0.03) == "low"
    # 30% overall, 6 pp: high under cautious (limit 4.1), low under optimistic (limit 8.2).
    assert wwc_attrition(overall=0.30, differential=0.06, boundary="cautious") == "high"
    assert wwc_attrition(overall=0.30, differential=0.06, boundary="optimistic") == "low"
    assert wwc_attrition_limit(0.30, "cautious") == pytest.approx(0.041)
    assert wwc_attrition_limit(0.30, "optimistic") == pytest.approx(0.082)


@pytest.mark.parametrize(
    ("boundary", "text", "always_high_from"),
    [("cautious", README_CAUTIOUS, 58), ("optimistic", README_OPTIMISTIC, 66)],
)
def test_every_row_of_the_boundary_table(boundary, text, always_high_from):
    limits = [float(v) for v in text.split()]
    assert len(limits) == always_high_from
    np.testing.assert_array_equal(WWC_ATTRITION[boundary].dropna().to_numpy(), limits)
    for percent, limit in enumerate(limits):
        overall = percent / 100
        assert wwc_attrition_limit(overall, boundary) == pytest.approx(limit / 100)
        assert wwc_attrition(overall, limit / 100, boundary=boundary) == "low"
        assert wwc_attrition(overall, (limit + 0.1) / 100, boundary=boundary) == "high"
    assert wwc_attrition(always_high_from / 100, 0.0, boundary=boundary) == "high"
    assert wwc_attrition_limit(always_high_from / 100, boundary) == -math.inf


def test_between_rows_the_stricter_neighbour_applies():
    # 30.5% overall: rows 30 (4.1) and 31 (4.0) -> 4.0.
    assert wwc_attrition_limit(0.305) == pytest.approx(0.040)
    assert wwc_attrition(0.305, 0.0405) == "high"
    # 8.5%: rows 8 and 9 are both 6.3. Rising part, 2.5%: rows 2 (5.9) and 3 (5.9).
    assert wwc_attrition_limit(0.085) == pytest.approx(0.063)
    # 57.5% cautious: row 58 does not exist, always high.
    assert wwc_attrition(0.575, 0.0) == "high"


def test_rates_from_counts_at_the_boundary_survive_float_noise():
    # 2000 per arm, 641 and 559 lost: overall 30%, differential 4.1 pp exactly on the line.
    rates = attrition_rates(randomised=(2000, 2000), analysed=(1359, 1441))
    assert rates.overall == pytest.approx(0.30)
    assert rates.differential == pytest.approx(0.041)
    assert rates.rating("cautious") == "low"
    assert wwc_attrition(rates.overall, rates.differential) == "low"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"overall": 30, "differential": 6}, "fractions"),
        ({"overall": 0.3, "differential": -0.06}, "absolute difference"),
        ({"overall": 0.3, "differential": 1.5}, "differential"),
        ({"overall": -0.1, "differential": 0.01}, "overall"),
        ({"overall": 0.3, "differential": 0.01, "boundary": "lenient"}, "boundary"),
        ({"overall": 0.3}, "needs overall and differential"),
        ({"overall": 0.3, "differential": 0.01, "randomised": (10, 10)}, "cohort"),
    ],
)
def test_attrition_bad_input(kwargs, match):
    with pytest.raises(InvalidValueError, match=match):
        wwc_attrition(**kwargs)


@pytest.fixture(scope="module")
def cohort():
    return CohortSpec(covariates=("prior",)).build(city_partnership(seed=1, scale=0.2))


def test_attrition_from_cohort_flow_log(cohort):
    flow = cohort.flow
    # A hand-built log without allocation rows: the numbers randomised must be given.
    bare = FlowLog(stages=flow.stages, exclusions=flow.exclusions)
    with pytest.raises(DesignError, match="randomised=\\(treatment, control\\)"):
        attrition_rates(bare)
    with pytest.raises(DesignError, match="missing"):
        wwc_attrition(cohort=bare)
    n_t = flow.count("analysed", "treated", "schools")
    n_c = flow.count("analysed", "comparison", "schools")
    rates = attrition_rates(cohort, randomised=(n_t + 2, n_c + 1), level="schools")
    assert rates.analysed == (n_t, n_c)
    assert rates.treatment == pytest.approx(2 / (n_t + 2))
    assert rates.control == pytest.approx(1 / (n_c + 1))
    assert rates.overall == pytest.approx(3 / (n_t + n_c + 3))
    assert "flow log" in rates.source
    assert wwc_attrition(cohort=cohort, randomised=(n_t + 2, n_c + 1), level="schools") == (
        rates.rating()
    )
    # A FlowLog works as well as a Cohort.
    assert attrition_rates(flow, randomised=(n_t + 2, n_c + 1), level="schools") == rates
    pupils = attrition_rates(
        cohort,
        randomised=(flow.count("analysed", "treated"), flow.count("analysed", "comparison")),
    )
    assert pupils.overall == 0.0 and pupils.rating() == "low"
    with pytest.raises(InvalidValueError, match="more schools analysed than randomised"):
        attrition_rates(cohort, randomised=(n_t - 1, n_c), level="schools")
    with pytest.raises(InvalidValueError, match="analysed"):
        attrition_rates(cohort, randomised=(n_t, n_c), analysed=(1, 1))
    with pytest.raises(InvalidValueError, match="Cohort or FlowLog"):
        attrition_rates(pd.DataFrame())


def test_attrition_from_a_cohort_counts_records_lost_after_allocation():
    records = city_partnership(seed=2, scale=0.2)
    pupils = records.pupils.copy()
    rng = np.random.default_rng(0)
    lost = rng.random(len(pupils)) < 0.04  # outcomes missing at random
    pupils.loc[lost, "outcome"] = np.nan
    participants = set(records.participation["school"])
    first_school = sorted(participants)[0]
    # ... and one treated school loses every outcome: a school lost to attrition
    pupils.loc[pupils["school"] == first_school, "outcome"] = np.nan
    cohort = CohortSpec().build(
        {"pupils": pupils, "participation": records.participation, "schools": records.schools}
    )
    in_arm = pupils["school"].isin(participants)
    expected_t = 1 - (in_arm & pupils["outcome"].notna()).sum() / in_arm.sum()
    expected_c = 1 - (~in_arm & pupils["outcome"].notna()).sum() / (~in_arm).sum()
    rates = attrition_rates(cohort)
    assert rates.randomised == (int(in_arm.sum()), int((~in_arm).sum()))
    assert rates.treatment == pytest.approx(expected_t)
    assert rates.control == pytest.approx(expected_c)
    schools = attrition_rates(cohort, level="schools")
    assert schools.randomised[0] - schools.analysed[0] == 1 and schools.control == 0
    assert wwc_attrition(cohort=cohort) == rates.rating()


def test_attrition_uses_per_arm_rows_when_the_flow_log_has_them():
    stages = pd.DataFrame(
        [
            ("assigned", "treated", 10, 0, 300),
            ("assigned", "comparison", 10, 0, 310),
            ("analysed", "treated", 10, 0, 270),
            ("analysed", "comparison", 10, 0, 295),
        ],
        columns=["stage", "arm", "schools", "teachers", "pupils"],
    )
    flow = FlowLog(stages=stages, exclusions=stages.iloc[:0])
    rates = attrition_rates(flow, stage="assigned")
    assert rates.randomised == (300, 310) and rates.analysed == (270, 295)
    assert rates.treatment == pytest.approx(0.10) and rates.control == pytest.approx(15 / 310)
    assert rates.overall == pytest.approx(1 - 565 / 610)


def test_attrition_rates_faces():
    rates = attrition_rates(randomised=(150, 150), analysed=(129, 147))
    assert isinstance(rates, AttritionRates)
    frame = rates.to_frame()
    assert frame["arm"].tolist() == ["treatment", "control", "overall"]
    assert frame["lost"].tolist() == [21, 3, 24]
    payload = rates.to_dict()
    json.dumps(payload)
    assert payload["rating_cautious"] == "high"
    assert "secondary transcription" in str(rates.summary())
    assert "<table>" in rates._repr_html_()
    ax = rates.plot()
    assert ax.get_xlabel().startswith("Overall attrition")
    with pytest.raises(AttributeError):
        rates.overall = 0.0  # type: ignore[misc]
    with pytest.raises(InvalidValueError, match="randomised"):
        attrition_rates(randomised=(0, 10), analysed=(0, 10))
    with pytest.raises(InvalidValueError, match="pair"):
        attrition_rates(randomised=150, analysed=(1, 1))


# --- baseline equivalence ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("es", "verdict"),
    [
        (0.0, "satisfied"),
        (0.05, "satisfied"),
        (-0.05, "satisfied"),
        (0.0501, "adjustment required"),
        (0.25, "adjustment required"),
        (-0.25, "adjustment required"),
        (0.2501, "not satisfied"),
        (-1.0, "not satisfied"),
    ],
)
def test_baseline_thresholds(es, verdict):
    # docs/sources.md "WWC figures": |ES| <= 0.05 satisfied; 0.05-0.25 with adjustment; > 0.25 not.
    assert baseline_equivalence(es) == verdict


def test_baseline_custom_thresholds_and_errors():
    assert baseline_equivalence(0.08, satisfied=0.1, adjustment=0.2) == "satisfied"
    with pytest.raises(InvalidValueError, match="satisfied <= adjustment"):
        baseline_equivalence(0.1, satisfied=0.3, adjustment=0.2)
    with pytest.raises(InvalidValueError, match="effect_size"):
        baseline_equivalence(float("nan"))


def test_cox_index_by_hand():
    lo = math.log(0.3 / 0.7) - math.log(0.25 / 0.75)
    assert cox_index(0.30, 0.25) == pytest.approx(lo / 1.65, rel=1e-14)
    assert cox_index(0.25, 0.30) == pytest.approx(-lo / 1.65, rel=1e-14)
    assert cox_index(0.30, 0.25, n=100) == pytest.approx((1 - 3 / 391) * lo / 1.65, rel=1e-14)
    for bad in ({"p_treatment": 0.0}, {"p_control": 1.0}, {"p_treatment": 1.2}):
        args = {"p_treatment": 0.3, "p_control": 0.2} | bad
        with pytest.raises(InvalidValueError, match=next(iter(bad))):
            cox_index(**args)


def test_baseline_equivalence_table():
    rng = np.random.default_rng(5)
    n = 400
    df = pd.DataFrame(
        {
            "t": np.repeat([1, 0], n // 2),
            "prior": rng.normal(100, 15, n),
            "fsm": rng.binomial(1, 0.25, n),
            "constant": np.ones(n),
        }
    )
    df.loc[[3, 250], "prior"] = np.nan
    before = df.copy()
    table = baseline_equivalence_table(df, treatment="t", covariates=["prior", "fsm", "constant"])
    pd.testing.assert_frame_equal(df, before)
    prior = table.set_index("covariate").loc["prior"]
    expected = hedges_g_from_data(
        df.loc[df.t == 1, "prior"].dropna(), df.loc[df.t == 0, "prior"].dropna()
    )
    assert prior["effect_size"] == pytest.approx(expected.estimate, rel=1e-12)
    assert prior["index"] == "hedges_g" and prior["kind"] == "continuous"
    assert (prior["n_treatment"], prior["n_control"]) == (199, 199)
    assert prior["verdict"] == baseline_equivalence(expected.estimate)
    fsm = table.set_index("covariate").loc["fsm"]
    pt, pc = df.fsm[df.t == 1].mean(), df.fsm[df.t == 0].mean()
    assert fsm["effect_size"] == pytest.approx(cox_index(pt, pc, n=n), rel=1e-12)
    assert fsm["index"] == "cox" and math.isnan(fsm["sd_treatment"])
    constant = table.set_index("covariate").loc["constant"]
    # All ones: auto-detected as binary with proportion 1, so the Cox index is undefined.
    assert constant["verdict"] == "undefined" and math.isnan(constant["effect_size"])
    as_continuous = baseline_equivalence_table(
        df, treatment="t", covariates=["fsm"], binary=[]
    ).iloc[0]
    assert as_continuous["index"] == "hedges_g"


def test_baseline_table_errors():
    df = pd.DataFrame({"t": [1, 1, 0, 0], "x": [1.0, 2.0, 3.0, 4.0], "s": list("abcd")})
    with pytest.raises(MissingColumnError, match="'prior'"):
        baseline_equivalence_table(df, treatment="t", covariates=["prior"])
    with pytest.raises(InvalidValueError, match="'t'"):
        baseline_equivalence_table(df.assign(t=[1, 2, 0, 0]), treatment="t", covariates=["x"])
    with pytest.raises(InvalidValueError, match="'s' must be numeric"):
        baseline_equivalence_table(df, treatment="t", covariates=["s"])


# --- WWC clustering correction ---------------------------------------------------------------


def test_readme_clustering_correction_check():
    # g = 0.30, 200 + 200 pupils in 10 + 10 clusters (n = 20), rho = 0.2:
    # t = 2.9833, t_a = 1.3486, h = 231.66, p = 0.1788.
    c = wwc_clustering_correction(0.30, n_treatment=200, n_control=200, n_clusters=20, icc=0.2)
    assert round(c.t, 4) == 2.9833
    assert round(c.t_adjusted, 4) == 1.3486
    assert round(c.df, 2) == 231.66
    assert round(c.p_value, 4) == 0.1788
    assert not c.significant
    same = wwc_clustering_correction(0.30, n_treatment=200, n_control=200, cluster_size=20)
    assert same == c  # icc defaults to 0.20 and n = N / M


def test_clustering_correction_without_clustering_is_the_naive_test():
    c = wwc_clustering_correction(0.25, n_treatment=120, n_control=90, n_clusters=30, icc=0.0)
    assert c.t_adjusted == pytest.approx(c.t, rel=1e-14)
    assert c.df == pytest.approx(208.0, rel=1e-14)
    assert c.p_value == pytest.approx(2 * stats.t.sf(c.t, 208), rel=1e-12)
    naive = c.to_frame().set_index("term")
    assert naive.loc["ignoring clustering", "p_value"] == pytest.approx(c.p_value, rel=1e-12)
    # More clustering, a weaker test.
    stronger = wwc_clustering_correction(
        0.25, n_treatment=120, n_control=90, n_clusters=30, icc=0.3
    )
    assert stronger.t_adjusted < c.t_adjusted and stronger.p_value > c.p_value


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"icc": 1.0}, "icc"),
        ({"icc": -0.2}, "icc"),
        ({"n_clusters": 1}, "n_clusters"),
        ({"n_clusters": None}, "exactly one"),
        ({"cluster_size": 20}, "exactly one"),
        ({"n_treatment": 1}, "n_treatment"),
        ({"n_control": 10.5}, "n_control"),
        ({"cluster_size": 250, "n_clusters": None}, "cluster_size"),
        ({"n_clusters": 500}, "n_clusters"),
    ],
)
def test_clustering_correction_errors(kwargs, match):
    args = {"n_treatment": 200, "n_control": 200, "n_clusters": 20} | kwargs
    with pytest.raises(InvalidValueError, match=match):
        wwc_clustering_correction(0.3, **args)


def test_clustering_correction_faces():
    c = wwc_clustering_correction(0.30, n_treatment=200, n_control=200, n_clusters=20)
    json.dumps(c.to_dict())
    text = str(c.summary())
    assert "231.66" in text and "not statistically significant" in text


# --- study rating -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "rating"),
    [
        ({"design": "randomised", "attrition": "low"}, "meets standards without reservations"),
        (
            {"design": "randomised", "attrition": "low", "baseline": "not satisfied"},
            "meets standards without reservations",
        ),
        (
            {"design": "randomised", "attrition": "high", "baseline": "satisfied"},
            "meets standards with reservations",
        ),
        (
            {"design": "randomised", "attrition": "high", "baseline": "adjustment required"},
            "does not meet standards",
        ),
        (
            {
                "design": "randomised",
                "attrition": "high",
                "baseline": "adjustment required",
                "adjusted": True,
            },
            "meets standards with reservations",
        ),
        ({"design": "randomised", "attrition": "high"}, "does not meet standards"),
        (
            {"design": "quasi-experimental", "baseline": "satisfied"},
            "meets standards with reservations",
        ),
        (
            {"design": "quasi-experimental", "baseline": "not satisfied", "adjusted": True},
            "does not meet standards",
        ),
        ({"design": "quasi-experimental"}, "does not meet standards"),
        (
            {"design": "randomised", "attrition": "low", "confounded": True},
            "does not meet standards",
        ),
    ],
)
def test_study_rating_paths(kwargs, rating):
    result = wwc_study_rating(**kwargs)
    assert result.rating == rating == str(result)
    assert result.steps["step"].iloc[-1] == "rating"
    assert result.steps["outcome"].iloc[-1] == rating
    json.dumps(result.to_dict())


def test_study_rating_errors():
    with pytest.raises(InvalidValueError, match="attrition"):
        wwc_study_rating(design="randomised")
    with pytest.raises(InvalidValueError, match="design"):
        wwc_study_rating(design="rct", attrition="low")
    with pytest.raises(InvalidValueError, match="baseline"):
        wwc_study_rating(design="quasi-experimental", baseline="fine")
    with pytest.raises(InvalidValueError, match="adjusted"):
        wwc_study_rating(design="quasi-experimental", baseline="satisfied", adjusted="yes")


# --- EEF months of progress (docs/sources.md "EEF conventions") -------------------------------

README_MONTHS = """
0 -0.01 0.01 | 1 0.02 0.09 | 2 0.10 0.18 | 3 0.19 0.26 | 4 0.27 0.35 | 5 0.36 0.44 | 6 0.45 0.52
7 0.53 0.61 | 8 0.62 0.69 | 9 0.70 0.78 | 10 0.79 0.87 | 11 0.88 0.95 | 12 0.96 inf
"""


def test_readme_months_table():
    rows = [r.split() for r in README_MONTHS.replace("\n", "|").split("|") if r.strip()]
    assert len(rows) == 13
    for months, low, high in rows:
        months, low, high = int(months), float(low), float(high)
        assert months_band(months) == (low, high)
        assert months_of_progress(low) == months
        if math.isfinite(high):
            assert months_of_progress(high) == months
            assert months_of_progress(round(high + 0.01, 2)) == months + 1
        if months > 0:  # negative effects mirror the table
            assert months_of_progress(-low) == -months


# --- EEF cost --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cost", "rating"),
    [
        (0, "very low"),
        (79.99, "very low"),
        (80, "low"),
        (200, "low"),
        (200.01, "moderate"),
        (720, "moderate"),
        (720.01, "high"),
        (1200, "high"),
        (1200.01, "very high"),
    ],
)
def test_cost_bands(cost, rating):
    # docs/sources.md "EEF conventions": very low under 80; low up to 200; moderate up to 720;
    # high up to 1,200; very high above 1,200.
    assert eef_cost_rating(cost) == rating


def test_eef_cost_per_pupil_per_year():
    cost = eef_cost(pupils=250, one_off=45_000, per_year=15_000)
    assert cost.total_cost == 90_000
    assert cost.per_pupil_per_year == pytest.approx(90_000 / (250 * 3))
    assert cost.rating == "low" and cost.pounds == 2
    same = eef_cost(pupils=250, total=90_000)
    assert same == cost
    one_year = eef_cost(pupils=250, total=90_000, years=1)
    assert one_year.per_pupil_per_year == pytest.approx(360) and one_year.rating == "moderate"
    json.dumps(cost.to_dict())
    assert "£120.00" in str(cost.summary())
    assert EEF_COST_THRESHOLDS == (80.0, 200.0, 720.0, 1200.0)
    assert eef_cost_rating(150, thresholds=(100, 150, 300, 600)) == "low"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: eef_cost(pupils=0, total=100), "pupils"),
        (lambda: eef_cost(pupils=10, total=-5), "total"),
        (lambda: eef_cost(pupils=10, one_off=-5), "one_off"),
        (lambda: eef_cost(pupils=10, total=100, per_year=5), "not both"),
        (lambda: eef_cost(pupils=10, total=100, years=0), "years"),
        (lambda: eef_cost_rating(-1), "cost_per_pupil"),
        (lambda: eef_cost_rating(10, thresholds=(80, 70, 720, 1200)), "thresholds"),
    ],
)
def test_cost_errors(call, match):
    with pytest.raises(InvalidValueError, match=match):
        call()


# --- padlock assistant ----------------------------------------------------------------------


def padlocks(**kwargs):
    args = {"design": "randomised", "mdes": 0.15, "attrition": 0.05} | kwargs
    return propose_padlocks(**args)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.15, 5), (0.2, 5), (0.21, 4), (0.3, 4), (0.35, 3), (0.5, 2), (0.6, 1), (0.61, 0)],
)
def test_mdes_thresholds(value, expected):
    assert padlocks(mdes=value).proposed == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.0, 5), (0.10, 5), (0.11, 4), (0.2, 4), (0.25, 3), (0.4, 2), (0.5, 1), (0.51, 0)],
)
def test_attrition_thresholds(value, expected):
    assert padlocks(attrition=value).proposed == expected


def test_design_ceiling_and_lowest_of_three():
    for design, cap in EEF_DESIGN_PADLOCKS.items():
        assert padlocks(design=design).proposed == cap
    assessment = padlocks(design="well-matched comparison", mdes=0.25, attrition=0.45)
    steps = assessment.steps.set_index("step")["padlocks"]
    assert (steps["design"], steps["MDES"], steps["attrition"]) == (3, 4, 1)
    assert steps["initial"] == 1 == assessment.proposed
    assert padlocks(design=2).proposed == 2


@pytest.mark.parametrize(
    ("threats", "down"),
    [
        ({}, 0),
        ({"contamination": "low", "fidelity": "low"}, 0),
        # up to four moderate with unknown direction: one
        ({"contamination": "moderate"}, 1),
        (dict.fromkeys(EEF_THREATS[:4], "moderate"), 1),
        # up to two moderate in the same direction: one
        ({"fidelity": ("moderate", "inflates"), "missing data": ("moderate", "inflates")}, 1),
        # one high and the rest low: one
        ({"confounding": "high", "fidelity": "low"}, 1),
        # one high and two moderate: two
        ({"confounding": "high", "fidelity": "moderate", "missing data": "moderate"}, 2),
        # two or more high: two (and never more than two)
        ({"confounding": "high", "contamination": "high"}, 2),
        (dict.fromkeys(EEF_THREATS, "high"), 2),
        # the assistant's readings where the guidance is silent
        ({"confounding": "high", "fidelity": "moderate"}, 1),
        (dict.fromkeys(EEF_THREATS[:5], "moderate"), 2),
        (
            {
                "fidelity": ("moderate", "inflates"),
                "missing data": ("moderate", "inflates"),
                "contamination": ("moderate", "inflates"),
            },
            2,
        ),
        ({"fidelity": ("moderate", "inflates"), "missing data": ("moderate", "deflates")}, 1),
    ],
)
def test_threat_rules(threats, down):
    assessment = padlocks(threats=threats)
    assert assessment.proposed == 5 - down
    row = assessment.steps.set_index("step").loc["threats"]
    assert row["padlocks"] == -down and row["rule"]


def test_rating_never_below_zero():
    assert padlocks(mdes=0.55, threats={"confounding": "high", "fidelity": "high"}).proposed == 0


def test_threats_as_objects_and_notes():
    threat = Threat("contamination", "moderate", "deflates", note="control schools shared slides")
    assessment = padlocks(threats=[threat])
    assert assessment.threats == (threat,)
    assert "control schools shared slides" in assessment.steps["input"].str.cat()


def test_evaluator_has_the_final_word():
    proposal = padlocks(threats={"contamination": "moderate"})
    assert proposal.proposed == 4 and proposal.final is None and not proposal.decided
    assert "not yet decided" in str(proposal.summary())
    with pytest.raises(InvalidValueError, match="reason is required"):
        proposal.override(5, reason="  ")
    with pytest.raises(TypeError):
        proposal.override(5)  # type: ignore[call-arg]
    with pytest.raises(InvalidValueError, match="0 to 5"):
        proposal.override(6, reason="x")
    decided = proposal.override(5, reason="contamination ruled out by school visits")
    assert isinstance(decided, PadlockAssessment)
    assert decided.final == 5 and decided.proposed == 4 and decided.decided
    assert proposal.final is None  # the original is unchanged
    last = decided.steps.iloc[-1]
    assert (last["step"], last["padlocks"], last["rule"]) == ("evaluator", 5, "overridden")
    again = decided.override(4, reason="on reflection, keep the proposal")
    assert (again.steps["step"] == "evaluator").sum() == 1
    assert again.steps.iloc[-1]["rule"] == "confirmed"
    json.dumps(again.to_dict())


def test_thresholds_are_visible_parameters_and_marked_unverified():
    assert EEF_MDES_THRESHOLDS == (0.2, 0.3, 0.4, 0.5, 0.6)
    assert EEF_ATTRITION_THRESHOLDS == (0.10, 0.20, 0.30, 0.40, 0.50)
    strict = padlocks(mdes=0.25, mdes_thresholds=(0.1, 0.15, 0.2, 0.25, 0.3))
    assert strict.proposed == 2
    custom = padlocks(design="pilot", design_padlocks={"pilot": 2})
    assert custom.proposed == 2
    assert "UNVERIFIED" in propose_padlocks.__doc__.upper()
    assert "thresholds for design, MDES and attrition are unverified" in str(padlocks().summary())
    assert padlocks().steps["rule"].str.contains("unverified").any()


def test_attrition_rates_object_is_accepted():
    rates = attrition_rates(randomised=(100, 100), analysed=(85, 90))
    assert padlocks(attrition=rates).steps.set_index("step").loc["attrition", "padlocks"] == 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"design": "rct"}, "design must be one of"),
        ({"design": 6}, "0 to 5"),
        ({"mdes": 0}, "mdes"),
        ({"attrition": 12}, "fraction"),
        ({"threats": {"weather": "high"}}, "threat name"),
        ({"threats": {"fidelity": "severe"}}, "threat level"),
        ({"threats": {"fidelity": ("moderate", "up")}}, "direction"),
        ({"threats": ["fidelity"]}, "Threat objects"),
        ({"mdes_thresholds": (0.2, 0.3)}, "mdes_thresholds"),
        ({"attrition_thresholds": (0.5, 0.4, 0.3, 0.2, 0.1)}, "attrition_thresholds"),
        ({"design_padlocks": {"randomised": 7}}, "design_padlocks"),
    ],
)
def test_padlock_errors(kwargs, match):
    with pytest.raises(InvalidValueError, match=match) as info:
        padlocks(**kwargs)
    assert isinstance(info.value, CpdImpactError)


def test_faces_render():
    import matplotlib.pyplot as plt

    assessment = padlocks(threats={"fidelity": "moderate"})
    assert "<table>" in assessment._repr_html_()
    assert assessment.plot().get_xlabel() == "Padlocks"
    rating = wwc_study_rating(design="randomised", attrition="low")
    assert "<h4>" in rating._repr_html_()
    plt.close("all")
