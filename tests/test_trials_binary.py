"""Pass/fail (0/1) outcomes in the trial designs and the multilevel DiD (issue 17, item 2).

* ``family="binomial"``: parity with R (``glm`` for the pupil-randomised trial, ``glmer`` and
  ``glmmTMB`` for the cluster and multisite trials and the multilevel DiD) on the data in
  ``tests/reference/glmer_trials/`` (see its README), including the marginal percentage-point
  difference and its delta-method SE computed in R by independent code;
* the results' faces (odds ratio, percentage points, Cox effect size; no months);
* the default linear model on a 0/1 outcome: the linear probability estimate, said so;
* bad input: outcomes that are not 0/1, separation, options a logistic model does not take;
* simulation with known truth: bias and 95% coverage of the log odds ratio (conditional truth)
  and of the percentage points (marginal truth), small in CI, full size under ``slow``.
"""

from __future__ import annotations

import json
import math
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from cpdimpact.errors import (
    CpdImpactWarning,
    FewClustersWarning,
    InvalidArgumentError,
    NotBinaryError,
    SeparationError,
)
from cpdimpact.multilevel import ClusterTrial, MultilevelDiD, MultisiteTrial, SimpleTrial

REF = Path(__file__).resolve().parent / "reference" / "glmer_trials"


@cache
def _reference() -> dict:
    return json.loads((REF / "reference.json").read_text(encoding="utf-8"))


def _data(case: str) -> pd.DataFrame:
    return pd.read_csv(REF / _reference()[case]["data"])


def _quiet(spec, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        return spec.fit(data)


SPECS = {
    "simple": lambda: SimpleTrial(
        outcome="passed", treatment="programme", covariates=("prior",), family="binomial"
    ),
    "cluster": lambda: ClusterTrial(
        outcome="passed",
        treatment="programme",
        covariates=("prior", "fsm"),
        cluster="school_id",
        family="binomial",
    ),
    "multisite": lambda: MultisiteTrial(
        outcome="passed",
        treatment="programme",
        covariates=("prior",),
        cluster="school",
        family="binomial",
    ),
    "all_pass_school": lambda: ClusterTrial(
        outcome="passed",
        treatment="programme",
        covariates=("prior",),
        cluster="school",
        family="binomial",
    ),
    "did": lambda: MultilevelDiD(outcome="passed", covariates=("prior",), family="binomial"),
}


@cache
def _fit(case: str):
    return _quiet(SPECS[case](), _data(case))


def _ours(case: str) -> tuple[pd.Series, pd.Series]:
    """Every fixed effect and its SE, named as R names them."""
    res = _fit(case)
    if case == "did":
        params, se = res.model.params, res.model.std_errors
    else:
        frame = res.to_frame().set_index("term")
        params, se = frame["estimate"], frame["std_error"]
    rename = {"Intercept": "(Intercept)"}
    return params.rename(index=rename), se.rename(index=rename)


# ------------------------------------------------------------------------------ parity
# Against the exact Laplace optimum (glmmTMB; glm for the single-level trial) everything is
# held to 1e-6 relative. Against glmer: fixed effects and the marginal difference to 1e-6 too;
# glmer's standard errors come from a finite-difference Hessian, which the reference run
# measured at up to 1.2e-5 from glmmTMB's exact one (reference.json, glmer_vs_glmmTMB.se; see
# tests/reference/glmer/README.md, "Standard errors"), so its SEs are held to 3e-5.
EXACT = [
    ("simple", "glm"),
    *((c, "glmmTMB") for c in ("cluster", "multisite", "all_pass_school", "did")),
]
GLMER = ["cluster", "multisite", "all_pass_school", "did"]


def _check(case, fit, se_rtol):
    ref = _reference()[case][fit]
    params, se = _ours(case)
    names = list(ref["fixef"])
    np.testing.assert_allclose(params[names], [ref["fixef"][n] for n in names], rtol=1e-6)
    np.testing.assert_allclose(se[names], [ref["se"][n] for n in names], rtol=se_rtol)
    res = _fit(case)
    m = ref["marginal"]
    pp = res.percentage_points
    assert pp["estimate"] == pytest.approx(100 * m["estimate"], rel=1e-6)
    assert pp["std_error"] == pytest.approx(100 * m["std_error"], rel=se_rtol)
    assert res.marginal.p_treated == pytest.approx(m["p_treated"], rel=1e-6)
    assert res.marginal.p_untreated == pytest.approx(m["p_untreated"], rel=1e-6)
    wald = ref["treatment_wald"]
    odds = res.odds_ratio
    assert odds["estimate"] == pytest.approx(wald["odds_ratio"], rel=1e-6)
    assert odds["ci_lower"] == pytest.approx(wald["odds_ratio_lower"], rel=se_rtol)
    assert odds["ci_upper"] == pytest.approx(wald["odds_ratio_upper"], rel=se_rtol)


@pytest.mark.parametrize(("case", "fit"), EXACT)
def test_against_the_exact_optimum(case, fit):
    _check(case, fit, se_rtol=1e-6)


@pytest.mark.parametrize("case", GLMER)
def test_against_glmer(case):
    assert _reference()[case]["glmer_vs_glmmTMB"]["se"] < 1.5e-5  # what the 3e-5 rests on
    _check(case, "glmer", se_rtol=3e-5)


@pytest.mark.parametrize("case", GLMER)
def test_variance_components(case):
    res = _fit(case)
    ref = _reference()[case]["glmmTMB"]["varcomp"]
    if case == "did":
        ours = res.model.variance_components
        pairs = [("school", "school"), ("year", "year:school")]
    else:
        v = res.variances.loc["conditional"]
        pairs = [("between", list(ref)[0])]
        ours = v
        if case == "multisite":
            pairs += [
                ("slope", "school:programme"),
                ("intercept_slope", "school:(Intercept):programme"),
            ]
    for mine, theirs in pairs:
        assert ours[mine] == pytest.approx(ref[theirs], rel=1e-4)


def test_the_r_marginal_is_converged_in_its_nodes():
    """The reference's own check: 40 and 80 Gauss-Hermite nodes agree."""
    for case in GLMER:
        ref = _reference()[case]["glmmTMB"]
        assert ref["marginal_40_nodes"] == pytest.approx(ref["marginal"]["estimate"], rel=1e-10)


def test_a_school_where_every_pupil_passes_is_fitted_finitely():
    data = _data("all_pass_school")
    assert data.loc[data["school"] == 7, "passed"].eq(1).all()
    res = _fit("all_pass_school")
    effects = res.school_effects.set_index("school")["estimate"]
    assert np.isfinite(effects).all() and effects.idxmax() == 7


# ------------------------------------------------------------------------------ faces
@pytest.mark.parametrize("case", ["simple", "cluster", "multisite"])
def test_trial_faces(case):
    res = _fit(case)
    lor = res.coefficient.iloc[0]
    assert res.estimate == lor["estimate"] and res.ci_method == "normal"
    # the odds ratio's interval is the log odds ratio's, exponentiated
    odds = res.odds_ratio
    assert odds["estimate"] == pytest.approx(math.exp(lor["estimate"]), rel=1e-12)
    assert odds["ci_lower"] == pytest.approx(math.exp(lor["ci_lower"]), rel=1e-12)
    assert odds["ci_upper"] == pytest.approx(math.exp(lor["ci_upper"]), rel=1e-12)
    z = stats.norm.ppf(0.975)
    assert lor["ci_upper"] - lor["estimate"] == pytest.approx(z * lor["std_error"], rel=1e-12)
    # Cox (headline) and Hasselblad-Hedges conversions of the log odds ratio
    es = res.effect_sizes.set_index("definition")
    assert es.loc["cox", "headline"] and not es.loc["hasselblad_hedges", "headline"]
    assert res.effect_size == pytest.approx(lor["estimate"] / 1.65, rel=1e-12)
    assert es.loc["cox", "ci_lower"] == pytest.approx(lor["ci_lower"] / 1.65, rel=1e-12)
    hh = lor["estimate"] * math.sqrt(3) / math.pi
    assert es.loc["hasselblad_hedges", "estimate"] == pytest.approx(hh, rel=1e-12)
    assert "eef_guidance" not in es.index and "eefanalytics" not in es.index
    # the tidy faces stay on the log-odds scale and honour alpha
    frame = res.to_frame()
    assert list(frame["term"])[:2] == ["Intercept", "programme"]
    ci90 = res.conf_int(0.10).loc["programme"]
    assert ci90["ci_upper"] - lor["estimate"] == pytest.approx(
        stats.norm.ppf(0.95) * lor["std_error"], rel=1e-10
    )
    # the summary gives the odds ratio, percentage points and Cox; no months, and says why
    text = str(res.summary())
    for words in ("odds ratio", "percentage points", "Cox", "No months of progress"):
        assert words in text
    assert "months of progress (EEF guidance" not in text
    assert res.outcome_kind == "pass_fail" and res.family == "binomial"
    assert "log odds ratio" in res.estimate_units
    assert "logistic" in res.spec.describe()
    assert res.binary_effects["measure"].tolist() == [
        "log_odds_ratio",
        "odds_ratio",
        "percentage_points",
    ]


def test_did_faces():
    res = _fit("did")
    row = res.to_frame().set_index("term").loc["exposed"]
    assert res.estimate == row["estimate"]
    assert res.odds_ratio["estimate"] == pytest.approx(math.exp(row["estimate"]), rel=1e-12)
    assert res.effect_sizes.set_index("definition").loc["cox", "estimate"] == pytest.approx(
        row["estimate"] / 1.65, rel=1e-12
    )
    assert math.isnan(res.effect_size_sd) and res.unconditional is None
    text = str(res.summary())
    assert "odds ratio" in text and "percentage points" in text and "No months" in text
    assert "logistic mixed model" in SPECS["did"]().describe()
    # averaged over the exposed records only
    assert _reference()["did"]["marginal_rows"] == int(_data("did")["exposed"].sum())


# ------------------------------------------------------------------------------ linear on 0/1
def test_linear_trial_on_a_pass_fail_outcome_is_a_linear_probability_estimate():
    data = _data("cluster")
    res = _quiet(
        ClusterTrial(
            outcome="passed", treatment="programme", covariates=("prior",), cluster="school_id"
        ),
        data,
    )
    lead = res.coefficient.iloc[0]
    assert res.outcome_kind == "pass_fail" and res.pass_value == 1.0 and res.family == "gaussian"
    assert "linear probability" in res.estimate_units
    assert res.percentage_points["estimate"] == pytest.approx(100 * lead["estimate"], rel=1e-12)
    p1 = data.loc[data["programme"] == 1, "passed"].mean()
    assert res.treated_proportion == pytest.approx(p1, rel=1e-12)
    # no SD-based effect size: the odds ratio implied by p0 = p1 - estimate, by Cox
    es = res.effect_sizes.set_index("definition")
    assert set(es.index) == {"cox", "hasselblad_hedges"}
    p0 = p1 - lead["estimate"]
    lor = math.log(p1 / (1 - p1)) - math.log(p0 / (1 - p0))
    assert res.effect_size == pytest.approx(lor / 1.65, rel=1e-10)
    assert es.loc["cox", "std_error"] == pytest.approx(
        lead["std_error"] / (p0 * (1 - p0)) / 1.65, rel=1e-10
    )
    text = str(res.summary())
    assert "No months of progress" in text and "months of progress (EEF" not in text
    # the same outcome held as 0/100 gives the same effect in percentage points
    res100 = _quiet(
        ClusterTrial(
            outcome="passed", treatment="programme", covariates=("prior",), cluster="school_id"
        ),
        data.assign(passed=100 * data["passed"]),
    )
    assert res100.pass_value == 100.0
    assert res100.percentage_points["estimate"] == pytest.approx(
        res.percentage_points["estimate"], rel=1e-8
    )
    assert res100.effect_size == pytest.approx(res.effect_size, rel=1e-8)


def test_linear_simple_trial_and_a_score_are_unchanged():
    data = _data("simple")
    res = SimpleTrial(outcome="passed", treatment="programme", covariates=("prior",)).fit(data)
    assert res.outcome_kind == "pass_fail" and res.ci_method == "t"
    score = SimpleTrial(outcome="prior", treatment="programme").fit(data)
    assert score.outcome_kind == "score" and score.pass_value is None
    assert score.percentage_points is None and score.odds_ratio is None
    assert score.headline["definition"] == "eef_guidance"


def test_linear_multilevel_did_on_a_pass_fail_outcome():
    data = _data("did")
    res = _quiet(MultilevelDiD(outcome="passed", covariates=("prior",)), data)
    assert res.outcome_kind == "pass_fail" and res.family == "gaussian"
    assert "linear probability" in res.estimate_units
    exposed = data.loc[data["exposed"] == 1, "passed"].mean()
    assert res.treated_proportion == pytest.approx(exposed, rel=1e-12)
    assert res.percentage_points["estimate"] == pytest.approx(100 * res.estimate, rel=1e-12)
    assert "Outcome scale" in str(res.summary())
    assert MultilevelDiD().method == "reml" and SPECS["did"]().method == "ml"


def test_linear_bootstrap_keeps_the_conversion_rows_unbootstrapped():
    data = _data("simple")
    res = SimpleTrial(
        outcome="passed", treatment="programme", n_bootstrap=20, n_permutations=20, seed=1
    ).fit(data)
    assert res.effect_sizes["boot_se"].isna().all()
    assert res.effect_sizes["perm_p_value"].isna().all()
    assert np.isfinite(res.coefficient.set_index("method").loc["bootstrap", "std_error"])


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("spec", ["simple", "cluster", "multisite"])
def test_an_outcome_that_is_not_0_1_is_refused_naming_column_and_rows(spec):
    case = "all_pass_school" if spec == "cluster" else spec
    data = _data(case)
    data.index = [f"pupil-{i}" for i in range(len(data))]
    bad = data.copy()
    bad.iloc[[3, 10], bad.columns.get_loc("passed")] = 2
    fit_spec = SPECS[spec]()
    if spec == "cluster":
        fit_spec = SPECS["all_pass_school"]()
    with pytest.raises(NotBinaryError, match=r"'passed'.*pupil-3.*pupil-10"):
        fit_spec.fit(bad)
    words = data.assign(passed=np.where(data["passed"] == 1, "Y", "N"))
    with pytest.raises(NotBinaryError, match=r"'passed'.*map each label"):
        fit_spec.fit(words)
    assert data["passed"].isin([0, 1]).all()  # the input is not modified


def test_separation_reaches_the_user_with_the_trials_column_names():
    data = _data("all_pass_school")
    every_treated_passes = data.assign(passed=np.where(data["programme"] == 1, 1, data["passed"]))
    for spec in (SPECS["all_pass_school"](), SPECS["simple"]()):
        with pytest.raises(SeparationError, match="'programme'.*'passed'"):
            _quiet(spec, every_treated_passes)
    # a continuous covariate that predicts the outcome perfectly
    split = data.assign(passed=(data["prior"] > 0.1).astype(int))
    with pytest.raises(SeparationError, match="prior"):
        _quiet(SPECS["simple"](), split)
    with pytest.raises(SeparationError, match="prior"):
        _quiet(SPECS["all_pass_school"](), split)


def test_multilevel_did_bad_input():
    data = _data("did")
    data.index = data.index + 1000
    bad = data.assign(passed=data["passed"].where(data.index != 1004, 3))
    with pytest.raises(NotBinaryError, match=r"'passed'.*1004"):
        SPECS["did"]().fit(bad)
    every_exposed_passes = data.assign(passed=data["passed"].where(data["exposed"] == 0, 1))
    with pytest.raises(SeparationError, match="'exposed'.*'passed'"):
        _quiet(SPECS["did"](), every_exposed_passes)


def test_few_schools_warn_that_wald_intervals_are_too_narrow():
    with pytest.warns(FewClustersWarning, match="Wald z"):
        SPECS["all_pass_school"]().fit(_data("all_pass_school"))


def test_options_a_logistic_model_does_not_take():
    base = {"outcome": "y", "treatment": "t", "family": "binomial"}
    for extra in ({"n_bootstrap": 10}, {"n_permutations": 10}, {"weights": "w"}):
        with pytest.raises(InvalidArgumentError, match="family='binomial'"):
            SimpleTrial(**base, **extra)
    from cpdimpact.estimator import ModelBased

    with pytest.raises(InvalidArgumentError, match="Wald z"):
        ClusterTrial(**base, cluster="s", inference=ModelBased("profile"))
    with pytest.raises(InvalidArgumentError, match="family='binomial'"):
        MultilevelDiD(family="binomial", weights="w")
    with pytest.raises(InvalidArgumentError):
        SimpleTrial(outcome="y", treatment="t", family="poisson")


# ------------------------------------------------------------------------------ simulation
LOG_OR = 0.5  # conditional (school-specific) log odds ratio of the programme
B0, B_PRIOR, SCHOOL_SD = -0.3, 0.6, 0.6


def _marginal_truth() -> float:
    """The population-averaged difference in the share passing: prior ~ N(0, 1) and the
    school effect ~ N(0, SCHOOL_SD^2) add to one normal latent term (numpy's Gauss-Hermite
    rule, independent of the code under test)."""
    x, w = np.polynomial.hermite_e.hermegauss(120)
    w = w / w.sum()
    s = math.hypot(B_PRIOR, SCHOOL_SD)
    return float(w @ (special.expit(B0 + LOG_OR + s * x) - special.expit(B0 + s * x)))


def _simulate(replications: int, seed: int, n_school: int, n_pupil: int):
    rng = np.random.default_rng(seed)
    spec = ClusterTrial(
        outcome="y", treatment="t", covariates=("prior",), cluster="school", family="binomial"
    )
    lor, lor_in, pp, pp_in = [], [], [], []
    truth = 100 * _marginal_truth()
    for _ in range(replications):
        school = np.repeat(np.arange(n_school), n_pupil)
        t = (rng.permutation(n_school) < n_school // 2).astype(float)[school]
        prior = rng.normal(size=school.size)
        u = rng.normal(0, SCHOOL_SD, n_school)[school]
        eta = B0 + LOG_OR * t + B_PRIOR * prior + u
        y = (rng.random(school.size) < special.expit(eta)).astype(float)
        res = _quiet(spec, pd.DataFrame({"y": y, "t": t, "prior": prior, "school": school}))
        row = res.binary_effects.set_index("measure")
        lor.append(row.loc["log_odds_ratio", "estimate"])
        lor_in.append(
            row.loc["log_odds_ratio", "ci_lower"] <= LOG_OR <= row.loc["log_odds_ratio", "ci_upper"]
        )
        pp.append(row.loc["percentage_points", "estimate"])
        pp_in.append(
            row.loc["percentage_points", "ci_lower"]
            <= truth
            <= row.loc["percentage_points", "ci_upper"]
        )
    return (np.array(lor), np.array(lor_in)), (np.array(pp), np.array(pp_in)), truth


def _check_simulation(estimates, covered, truth):
    r = estimates.size
    mc_se = estimates.std(ddof=1) / np.sqrt(r)
    assert abs(estimates.mean() - truth) < 3.5 * mc_se
    assert covered.sum() >= stats.binom.ppf(0.001, r, 0.95)


def test_marginal_truth_is_what_a_huge_sample_gives():
    rng = np.random.default_rng(5)
    n = 2_000_000
    z = B_PRIOR * rng.normal(size=n) + SCHOOL_SD * rng.normal(size=n)
    mc = float(np.mean(special.expit(B0 + LOG_OR + z) - special.expit(B0 + z)))
    assert _marginal_truth() == pytest.approx(mc, abs=5e-4)


def test_known_truth_small():
    (lor, lor_in), (pp, pp_in), truth = _simulate(16, seed=2026, n_school=30, n_pupil=20)
    _check_simulation(lor, lor_in, LOG_OR)
    _check_simulation(pp, pp_in, truth)


#: The multilevel DiD's truth: year effects, the treated arm's level, school and school-year SDs.
DID_YEARS = {2016: 0.0, 2017: 0.1, 2018: 0.25, 2019: 0.3}
DID_ARM, DID_SCHOOL_SD, DID_YEAR_SD = 0.2, 0.5, 0.25


def _simulate_did(replications: int, seed: int, n_school: int, n_pupil: int):
    """Schools followed over four years, half in the programme from 2018. The percentage-point
    truth of each replication averages, over its exposed records, the difference in the
    probability of passing with and without the exposure integrated over the school and
    school-year effects (numpy's Gauss-Hermite rule)."""
    rng = np.random.default_rng(seed)
    spec = MultilevelDiD(covariates=("prior",), family="binomial")
    x, w = np.polynomial.hermite_e.hermegauss(60)
    w = w / w.sum()
    s = math.hypot(DID_SCHOOL_SD, DID_YEAR_SD)
    lor, lor_in, pp, pp_in, truths = [], [], [], [], []
    for _ in range(replications):
        rows = []
        arm = rng.permutation(np.arange(n_school) % 2)
        for school in range(n_school):
            u = rng.normal(0, DID_SCHOOL_SD)
            for year, effect in DID_YEARS.items():
                prior = rng.normal(size=n_pupil)
                exposed = float(arm[school] == 1 and year >= 2018)
                eta = (
                    B0 + effect + DID_ARM * arm[school] + B_PRIOR * prior
                    + u + rng.normal(0, DID_YEAR_SD)
                )  # fmt: skip
                rows.append(
                    pd.DataFrame(
                        {
                            "school": school,
                            "year": year,
                            "treated": float(arm[school]),
                            "exposed": exposed,
                            "prior": prior,
                            "base": eta,
                            "outcome": 0.0,
                        }
                    )
                )
        data = pd.concat(rows, ignore_index=True)
        eta = data["base"].to_numpy() + LOG_OR * data["exposed"].to_numpy()
        data["outcome"] = (rng.random(len(data)) < special.expit(eta)).astype(float)
        on = data["exposed"].to_numpy() == 1
        # the fixed part of the exposed records (the school and year draws integrated out)
        fixed = (
            B0 + data.loc[on, "year"].map(DID_YEARS).to_numpy() + DID_ARM
            + B_PRIOR * data.loc[on, "prior"].to_numpy()
        )  # fmt: skip
        truth = 100 * float(
            np.mean(
                special.expit(fixed[:, None] + LOG_OR + s * x) @ w
                - special.expit(fixed[:, None] + s * x) @ w
            )
        )
        res = _quiet(spec, data.drop(columns="base"))
        row = res.binary_effects.set_index("measure")
        l_row, p_row = row.loc["log_odds_ratio"], row.loc["percentage_points"]
        lor.append(l_row["estimate"])
        lor_in.append(l_row["ci_lower"] <= LOG_OR <= l_row["ci_upper"])
        pp.append(p_row["estimate"] - truth)
        pp_in.append(p_row["ci_lower"] <= truth <= p_row["ci_upper"])
        truths.append(truth)
    return (np.array(lor), np.array(lor_in)), (np.array(pp), np.array(pp_in)), np.array(truths)


def test_multilevel_did_known_truth_small():
    (lor, lor_in), (err, pp_in), _ = _simulate_did(5, seed=7, n_school=20, n_pupil=12)
    _check_simulation(lor, lor_in, LOG_OR)
    _check_simulation(err, pp_in, 0.0)  # the percentage points minus each replication's truth


@pytest.mark.slow
def test_multilevel_did_known_truth_full():
    (lor, lor_in), (err, pp_in), _ = _simulate_did(200, seed=8, n_school=40, n_pupil=25)
    _check_simulation(lor, lor_in, LOG_OR)
    _check_simulation(err, pp_in, 0.0)
    assert abs(lor_in.mean() - 0.95) < 0.04
    assert abs(pp_in.mean() - 0.95) < 0.04


@pytest.mark.slow
def test_known_truth_full():
    (lor, lor_in), (pp, pp_in), truth = _simulate(300, seed=17, n_school=40, n_pupil=25)
    _check_simulation(lor, lor_in, LOG_OR)
    _check_simulation(pp, pp_in, truth)
    assert abs(lor_in.mean() - 0.95) < 0.035
    assert abs(pp_in.mean() - 0.95) < 0.035


def test_marginal_difference_takes_the_treated_arms_own_variance():
    """With a random treatment slope the treated arm integrates over its own latent variance:
    the two probabilities equal those of separate calls at each variance."""
    from cpdimpact.effects import marginal_difference

    rng = np.random.default_rng(3)
    design = np.column_stack([np.ones(50), rng.integers(0, 2, 50), rng.normal(size=50)])
    beta, cov = [-0.2, 0.4, 0.7], np.diag([0.01, 0.02, 0.005])
    both = marginal_difference(
        beta, cov, design, 1, row_variances=np.full(50, 0.4), treated_row_variances=np.full(50, 0.9)
    )
    at_1 = marginal_difference(beta, cov, design, 1, variance=0.9)
    at_0 = marginal_difference(beta, cov, design, 1, variance=0.4)
    assert both.p_treated == pytest.approx(at_1.p_treated, rel=1e-14)
    assert both.p_untreated == pytest.approx(at_0.p_untreated, rel=1e-14)
    assert both.estimate == pytest.approx(at_1.p_treated - at_0.p_untreated, rel=1e-13)
