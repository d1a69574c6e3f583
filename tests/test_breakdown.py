"""Breakdowns of the headline: attainment gaps, prior-attainment bands, effect-size variants,
attrition, cost and security in the evaluation and its report."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from conftest import run_quietly
from cpdimpact import CohortSpec, Evaluation
from cpdimpact._breakdown import interacted_fit, interacted_gap, prior_band_masks, sd_components
from cpdimpact.datasets import city_partnership
from cpdimpact.did import DiD, wild_cluster_bootstrap
from cpdimpact.errors import CpdImpactWarning, InvalidValueError
from cpdimpact.estimator import WildBootstrap
from cpdimpact.pipeline import ProgrammeCost, ReportOptions, SecurityOptions


@pytest.fixture(scope="module")
def cohort():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        return CohortSpec(covariates=("prior",)).build(city_partnership(seed=11, scale=0.15))


def test_interacted_gap_is_the_difference_of_separate_fits(cohort):
    pupils = cohort.pupils
    spec = DiD(covariates=("prior",))
    rest, sub = pupils[pupils["fsm"] == 0], pupils[pupils["fsm"] == 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        joint = interacted_fit(spec, (rest, sub))
        separate = spec.fit(sub).estimate - spec.fit(rest).estimate
    assert joint.params["_treated_x_group"] == pytest.approx(separate, abs=1e-9)


def test_interacted_gap_se_is_the_cluster_sandwich_of_the_dummy_regression(cohort):
    """An independent computation: ordinary least squares with every fixed effect as a
    dummy (statsmodels), cluster-robust by school without small-sample factor; ours divided
    by its own factor must agree."""
    pupils = cohort.pupils
    spec = DiD(covariates=("prior",))
    rest, sub = pupils[pupils["fsm"] == 0], pupils[pupils["fsm"] == 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        joint = interacted_fit(spec, (rest, sub))
    data = pd.concat([rest.assign(g=0), sub.assign(g=1)], ignore_index=True)
    unit_g = data["unit"].astype(str) + "|" + data["g"].astype(str)
    year_g = data["year"].astype(str) + "|" + data["g"].astype(str)
    design = pd.concat(
        [
            pd.get_dummies(unit_g, dtype=float),
            # each group's own year effects, its first year the base
            pd.get_dummies(year_g[data["year"] > data["year"].min()], dtype=float).reindex(
                data.index, fill_value=0.0
            ),
            pd.DataFrame(
                {
                    "exposed": data["exposed"].astype(float),
                    "exposed_g": data["exposed"].astype(float) * data["g"],
                    "prior": data["prior"],
                    "prior_g": data["prior"] * data["g"],
                }
            ),
        ],
        axis=1,
    )
    design = design.loc[:, design.std() > 0]
    fit = sm.OLS(data["outcome"].to_numpy(), design).fit(
        cov_type="cluster",
        cov_kwds={"groups": pd.factorize(data["school"])[0], "use_correction": False},
    )
    assert fit.params["exposed_g"] == pytest.approx(joint.params["_treated_x_group"], abs=1e-8)
    raw = joint.std_errors["_treated_x_group"] ** 2 / joint.small_sample_factor
    assert raw == pytest.approx(fit.bse["exposed_g"] ** 2, rel=1e-6)


def test_gap_in_the_pipeline_uses_the_interacted_model_and_shares_the_scale():
    records = city_partnership(seed=5, scale=0.2)
    result = run_quietly(Evaluation(prior_bands=0), records)
    (gap,) = result.gaps
    groups = {g.label: g for g in (*result.groups, *result.breakdown)}
    fsm, rest = groups["FSM pupils"], groups["Non-FSM pupils"]
    assert gap.estimate == pytest.approx(
        fsm.effect_size.estimate - rest.effect_size.estimate, abs=1e-12
    )
    assert gap.points == pytest.approx(fsm.did.estimate - rest.did.estimate, abs=1e-9)
    assert "fully interacted" in gap.method
    # Pupils of one school share its shocks: the two estimates correlate positively, so the
    # joint SE is below the independent-estimates one.
    assert gap.points_std_error < math.hypot(fsm.did.std_error, rest.did.std_error)
    table = result.gap_table
    assert table.loc[0, "months"] == gap.months
    assert list(result.subgroup_effects["group"]) == ["All pupils", "FSM pupils", "Non-FSM pupils"]


def test_gap_under_the_wild_bootstrap_tests_the_difference_by_the_wild_bootstrap(cohort):
    """With inference=WildBootstrap() the groups' estimates are bootstrapped, and so is the
    change in the gap: the interacted model's difference term, built here by hand (each
    group's units, each group's years after the first, the covariate per group), tested by
    wild_cluster_bootstrap with the same draws. (The pipeline used to stop with an
    AttributeError: the bootstrap result has no degrees of freedom.)"""
    pupils = cohort.pupils
    boot = WildBootstrap(n_bootstrap=999, seed=3)
    spec = DiD(covariates=("prior",), inference=boot)
    rest, sub = pupils[pupils["fsm"] == 0], pupils[pupils["fsm"] == 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        joint = interacted_gap(spec, (rest, sub))
        data = pd.concat([rest.assign(g=0), sub.assign(g=1)], ignore_index=True)
        years = sorted(data["year"].unique())[1:]
        extra = {f"y{y}_g": ((data["year"] == y) * data["g"]).astype(float) for y in years}
        data = data.assign(
            unit_g=data["unit"].astype(str) + "|" + data["g"].astype(str),
            exposed_g=data["exposed"].astype(float) * data["g"],
            prior_g=data["prior"] * data["g"],
            **extra,
        )
        want = wild_cluster_bootstrap(
            data,
            unit="unit_g",
            time="year",
            treatment="exposed_g",
            cluster="school",
            covariates=("prior", "exposed", "prior_g", *extra),
            n_bootstrap=999,
            seed=3,
        )
    assert joint.difference == pytest.approx(want.estimate, abs=1e-9)
    assert joint.bootstrap_interval == pytest.approx((want.ci_lower, want.ci_upper), abs=1e-9)


def test_gap_in_the_pipeline_under_the_wild_bootstrap():
    records = city_partnership(seed=5, scale=0.2)
    estimator = DiD(covariates=("prior",), inference=WildBootstrap(n_bootstrap=499))
    result = run_quietly(Evaluation(estimator=estimator, prior_bands=0, seed=2), records)
    (gap,) = result.gaps
    assert "wild cluster bootstrap interval" in gap.method
    assert gap.ci_lower < gap.estimate < gap.ci_upper
    groups = {g.label: g for g in (*result.groups, *result.breakdown)}
    assert gap.points == pytest.approx(
        groups["FSM pupils"].did.estimate - groups["Non-FSM pupils"].did.estimate, abs=1e-9
    )


def test_gap_for_a_column_that_is_not_a_headline_subgroup():
    records = city_partnership(seed=5, scale=0.2)
    result = run_quietly(Evaluation(subgroups=(), gaps=("sen",), prior_bands=0), records)
    assert list(result.headline["group"]) == ["All pupils"]
    assert [g.label for g in result.breakdown] == ["SEN pupils", "Pupils without SEN"]
    assert result.gaps[0].label == "SEN gap"


def test_prior_bands_are_equal_count_ordered_and_skip_missing():
    prior = pd.Series([5.0, 1.0, np.nan, 3.0, 2.0, 4.0, 6.0, np.nan, 0.0])
    bands = prior_band_masks(prior, 3)
    assert [label for label, _ in bands] == [
        "Prior attainment: lowest third",
        "Prior attainment: middle third",
        "Prior attainment: highest third",
    ]
    values = [sorted(prior[m]) for _, m in bands]
    assert sum(values, []) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # contiguous, in order
    assert max(map(len, values)) - min(map(len, values)) <= 1
    assert not any(m[[2, 7]].any() for _, m in bands)  # no prior attainment: no band
    quartiles = prior_band_masks(pd.Series(np.arange(8.0)), 4)
    assert quartiles[0][0].endswith("band 1 of 4 (lowest)")
    assert [int(m.sum()) for _, m in quartiles] == [2, 2, 2, 2]


def test_prior_bands_in_the_pipeline():
    records = city_partnership(seed=6, scale=0.2)
    result = run_quietly(Evaluation(gaps=()), records)
    labels = [g.label for g in result.breakdown]
    assert labels == [
        "Prior attainment: lowest third",
        "Prior attainment: middle third",
        "Prior attainment: highest third",
    ]
    sizes = [int(g.arms["pupils"].sum()) for g in result.breakdown]
    assert sum(sizes) == len(result.cohort.pupils)
    assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError, match="prior_bands"):
        Evaluation(prior_bands=1)
    with pytest.raises(ValueError, match="prior_bands"):
        Evaluation(prior_bands=-2)


def test_effect_size_variants_follow_hedges_2007():
    records = city_partnership(seed=8, scale=0.2)
    result = run_quietly(Evaluation(gaps=(), prior_bands=0), records)
    variants = result.effect_size_variants
    estimate = result.groups[0].did.estimate
    # Independent ANOVA on the comparison arm: sums of squares within year and school-year.
    comparison = result.cohort.pupils[~result.cohort.pupils["treated"]]
    y = comparison["outcome"]
    ss_year = ((y - comparison.groupby("year")["outcome"].transform("mean")) ** 2).sum()
    cells = comparison.groupby(["school", "year"])["outcome"]
    ss_cell = ((y - cells.transform("mean")) ** 2).sum()
    n_total, n_cells, n_years = len(y), cells.ngroups, comparison["year"].nunique()
    s_t = math.sqrt(ss_year / (n_total - n_years))
    s_w = math.sqrt(ss_cell / (n_total - n_cells))
    rho = 1 - s_w**2 / s_t**2
    n = n_total / n_cells
    assert variants.loc[1, "estimate"] == pytest.approx(estimate / s_w, rel=1e-10)
    factor = math.sqrt(1 - 2 * (n - 1) * rho / (n_total - 2))
    assert variants.loc[2, "estimate"] == pytest.approx(estimate / s_t * factor, rel=1e-10)
    assert variants.loc[0, "estimate"] == pytest.approx(result.effect_size.estimate)
    assert variants.loc[0, "ci_lower"] == pytest.approx(result.effect_size.ci_lower)
    assert variants.loc[3, "estimate"] == pytest.approx(estimate)
    # The intervals rescale one interval: their ratio to the estimate is the same in each row.
    ratios = variants["ci_upper"] / variants["estimate"]
    assert np.allclose(ratios, ratios.iloc[0])
    assert sd_components(result.cohort.pupils)["icc"] == pytest.approx(rho)


def test_cost_and_security_in_the_result_report_and_json(tmp_path):
    records = city_partnership(seed=9, scale=0.2)
    options = ReportOptions(
        cost=ProgrammeCost(pupils=1_000, one_off=300_000, per_year=40_000),
        security=SecurityOptions(
            design="well-matched comparison",
            threats={"contamination": "moderate", "missing data": "moderate inflates"},
        ),
    )
    result = run_quietly(Evaluation(report=options, gaps=(), prior_bands=0), records)
    assert result.cost.per_pupil_per_year == pytest.approx((300_000 + 3 * 40_000) / 3_000)
    assert result.cost.rating == "low"
    security = result.security
    assert security.final is None
    mdes_row = security.steps.set_index("step").loc["MDES"]
    assert float(mdes_row["input"]) == pytest.approx(result.analysis_mdes, abs=5e-4)
    es = result.effect_size
    from scipy import stats

    t = stats.t(es.df)
    assert result.analysis_mdes == pytest.approx((t.ppf(0.975) + t.ppf(0.8)) * es.std_error)
    result.save(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "## Cost" in md and "low cost on the EEF Toolkit scale" in md
    assert "## Security" in md and "this rating is a proposal" in md
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["cost"]["rating"] == "low"
    assert payload["security"]["final"] is None

    decided = SecurityOptions(final=2, reason="contamination confirmed")
    result = run_quietly(
        Evaluation(report=ReportOptions(security=decided), gaps=(), prior_bands=0), records
    )
    assert result.security.final == 2
    assert "Security: 2 of 5 padlocks" in result.report().to_markdown()
    with pytest.raises(ValueError, match="final and reason"):
        SecurityOptions(final=3)
    with pytest.raises(InvalidValueError):
        SecurityOptions(design="randomized")
    with pytest.raises(InvalidValueError):
        ProgrammeCost(pupils=0, total=1000)


def test_report_sections_attrition_and_balance_as_allocated(tmp_path):
    records = city_partnership(seed=10, scale=0.2)
    pupils = records.pupils.copy()
    lost = np.random.default_rng(3).random(len(pupils)) < 0.2
    pupils.loc[lost & pupils["school"].isin(records.participation["school"]), "outcome"] = np.nan
    tables = {"pupils": pupils, "participation": records.participation, "schools": records.schools}
    result = run_quietly(Evaluation(prior_bands=0), tables)
    attrition = result.attrition
    assert attrition.treatment == pytest.approx(0.2, abs=0.02) and attrition.control == 0
    assert attrition.rating("cautious") == "high"
    md = result.report().to_markdown()
    for heading in (
        "### Effects by subgroup",
        "Change in the attainment gap",
        "## Effect sizes under each standard deviation",
        "As allocated",
        "As analysed",
        "### Attrition",
        "## Cost",
    ):
        assert heading in md, heading
    assert "high attrition on the WWC cautious boundary" in md
    payload = json.loads(result.to_json())
    assert payload["cohort"]["attrition"]["pupils"]["rating_cautious"] == "high"
    assert (
        payload["cohort"]["balance_allocated"][0]["n_treated"]
        > (payload["cohort"]["balance"][0]["n_treated"])
    )
    assert [g["group"] for g in payload["subgroups"]["groups"]] == [
        "All pupils",
        "FSM pupils",
        "Non-FSM pupils",
    ]
