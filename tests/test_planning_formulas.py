"""Closed-form power analysis (cpdimpact.planning): PowerUpR parity, DiD/CITS variance by
simulation with known truth, bad input, result faces and the example script."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from cpdimpact.errors import CpdImpactError, DesignError, InvalidValueError
from cpdimpact.planning import (
    DESIGNS,
    POWERUP_NAMES,
    PowerAnalysis,
    mdes,
    mdes_curve,
    plot_mdes_curve,
    power,
    sample_size,
    schools_needed,
)

matplotlib.use("Agg")

REFERENCE = Path(__file__).resolve().parent / "reference" / "planning" / "powerupr.csv"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# PowerUpR's argument names -> ours.
NAMES = {
    "n": "pupils",
    "J": "schools",
    "p": "treated_share",
    "rho2": "icc",
    "rho3": "icc_area",
    "omega2": "effect_heterogeneity",
    "r21": "r2_pupil",
    "r22": "r2_school",
    "r23": "r2_area",
    "r2t2": "r2_effect",
    "g1": "covariates",
    "g2": "covariates",
    "g3": "covariates",
}


def _cases():
    frame = pd.read_csv(REFERENCE)
    return [row for _, row in frame.iterrows()]


def _arguments(row):
    params = {
        ours: float(row[theirs]) for theirs, ours in NAMES.items() if not pd.isna(row[theirs])
    }
    if not pd.isna(row["K"]):
        params["areas" if row["design"] == "cra3" else "blocks"] = float(row["K"])
    settings = {
        "alpha": 0.05 if pd.isna(row["alpha"]) else float(row["alpha"]),
        "two_tailed": True if pd.isna(row["two_tailed"]) else bool(row["two_tailed"]),
    }
    target_power = 0.80 if pd.isna(row["power"]) else float(row["power"])
    return params, settings, target_power


# --- PowerUpR parity ------------------------------------------------------------------------


def test_reference_file_covers_every_randomised_design_and_the_options():
    frame = pd.read_csv(REFERENCE)
    assert set(frame["design"]) == {"ira", "cra2", "cra3", "bira2", "bcra3f2"}
    assert (frame["two_tailed"] == False).sum() >= 3  # noqa: E712 - CSV booleans
    assert frame[["r21", "r22", "r23", "r2t2"]].notna().any(axis=None)
    assert frame["p"].notna().sum() >= 3


@pytest.mark.parametrize("row", _cases(), ids=lambda r: r["case"])
def test_mdes_interval_df_and_se_match_powerupr(row):
    params, settings, target_power = _arguments(row)
    result = mdes(row["design"], power=target_power, **settings, **params)
    assert result.mdes == pytest.approx(row["mdes"], abs=5e-4)
    assert result.ci_lower == pytest.approx(row["ci_lower"], abs=5e-4)
    assert result.ci_upper == pytest.approx(row["ci_upper"], abs=5e-4)
    assert result.std_error == pytest.approx(row["sse"], abs=5e-4)
    assert result.df == row["df"]
    # tighter than three decimals: the same formulas, not merely close ones
    assert result.mdes == pytest.approx(row["mdes"], rel=1e-9)


@pytest.mark.parametrize("row", _cases(), ids=lambda r: r["case"])
def test_power_matches_powerupr(row):
    params, settings, _ = _arguments(row)
    result = power(row["design"], es=float(row["es"]), **settings, **params)
    assert result.power == pytest.approx(row["power_at_es"], abs=5e-4)
    assert result.effect == row["es"]


@pytest.mark.parametrize("row", _cases(), ids=lambda r: r["case"])
def test_solved_sample_size_matches_powerupr(row):
    params, settings, target_power = _arguments(row)
    solve_for = {
        "n": "pupils",
        "J": "schools",
        "K": "areas" if row["design"] == "cra3" else "blocks",
    }[row["solve_for"]]
    params.pop(solve_for)
    result = sample_size(
        row["design"],
        mdes=float(row["target"]),
        solve_for=solve_for,
        power=target_power,
        **settings,
        **params,
    )
    # the real-valued root of PowerUpR's own mdes.* (uniroot) to three decimals
    assert result.exact == pytest.approx(row["exact"], abs=5e-4)
    # PowerUpR's mrss.* stops iterating within 0.1 and rounds; we round up
    assert abs(row["mrss"] - result.exact) < 1.0
    assert result.required == math.ceil(row["exact"])
    assert result.mdes <= row["target"] + 1e-12
    try:
        smaller = mdes(
            row["design"],
            power=target_power,
            **settings,
            **{**params, solve_for: result.required - 1},
        )
    except DesignError:  # one fewer is not a valid design at all
        smaller = None
    if smaller is not None:
        assert smaller.mdes > row["target"]


@pytest.mark.parametrize(
    ("design", "params", "expected", "df"),
    [
        ("cra2", {"icc": 0.17, "pupils": 15, "schools": 20}, 0.629, 18),
        (
            "cra3",
            {
                "icc": 0.06,
                "icc_area": 0.18,
                "covariates": 1,
                "r2_pupil": 0.55,
                "r2_school": 0.50,
                "r2_area": 0.45,
                "treated_share": 0.40,
                "pupils": 10,
                "schools": 2,
                "areas": 83,
            },
            0.230,
            80,
        ),
        (
            "cra3",
            {"icc_area": 0.06, "icc": 0.17, "pupils": 15, "schools": 3, "areas": 60},
            0.269,
            58,
        ),
        ("bcra3f2", {"icc": 0.10, "pupils": 20, "schools": 44, "blocks": 5}, 0.145, 210),
        (
            "bira2",
            {"icc": 0.35, "effect_heterogeneity": 0.10, "pupils": 83, "schools": 10},
            0.256,
            9,
        ),
    ],
)
def test_reference_readme_table(design, params, expected, df):
    result = mdes(design, **params)
    assert round(result.mdes, 3) == expected
    assert result.df == df


def test_readme_cra2_interval():
    result = mdes("cra2", icc=0.17, pupils=15, schools=20)
    assert (round(result.ci_lower, 3), round(result.ci_upper, 3)) == (0.183, 1.075)
    # PowerUpR's interval is MDES -/+ t_crit * SE (t_crit = t(0.975, 18))
    assert result.ci_upper - result.mdes == pytest.approx(stats.t.ppf(0.975, 18) * result.std_error)
    assert tuple(result.conf_int().iloc[0]) == pytest.approx((result.ci_lower, result.ci_upper))


def test_powerup_names_are_accepted_and_agree():
    ours = mdes("cra3", icc=0.17, icc_area=0.06, pupils=15, schools=3, areas=60)
    theirs = mdes("cra3", rho2=0.17, rho3=0.06, n=15, J=3, K=60)
    assert theirs.mdes == ours.mdes
    assert mdes("bcra3f2", rho2=0.1, n=20, J=44, K=5).parameters["blocks"] == 5
    with pytest.raises(InvalidValueError, match="given twice"):
        mdes("cra2", icc=0.1, rho2=0.1, pupils=10, schools=20)
    assert set(POWERUP_NAMES) >= {"pupils", "schools", "icc", "r2_pupil", "treated_share"}


def test_one_tailed_is_smaller_and_alpha_power_move_mdes_the_right_way():
    base = dict(icc=0.15, pupils=25, schools=40)
    two = mdes("cra2", **base)
    assert mdes("cra2", two_tailed=False, **base).mdes < two.mdes
    assert mdes("cra2", power=0.9, **base).mdes > two.mdes
    assert mdes("cra2", alpha=0.01, **base).mdes > two.mdes
    # the MDES is the effect detected with the target power
    assert power("cra2", es=two.mdes, **base).power == pytest.approx(0.80, abs=1e-3)


def test_covariates_reduce_mdes_and_cost_degrees_of_freedom():
    plain = mdes("cra2", icc=0.15, pupils=25, schools=40)
    adjusted = mdes(
        "cra2", icc=0.15, pupils=25, schools=40, r2_pupil=0.5, r2_school=0.5, covariates=1
    )
    assert adjusted.mdes < plain.mdes
    assert adjusted.df == plain.df - 1


@settings(max_examples=40, deadline=None)
@given(
    schools=st.integers(5, 400),
    pupils=st.integers(2, 200),
    icc=st.floats(0.0, 0.6),
    r2=st.floats(0.0, 0.9),
    share=st.floats(0.1, 0.9),
)
def test_properties_of_the_cluster_trial(schools, pupils, icc, r2, share):
    base = dict(pupils=pupils, icc=icc, r2_pupil=r2, r2_school=r2)
    result = mdes("cra2", schools=schools, treated_share=share, **base)
    # swapping the arms changes nothing; more schools never hurt; power at the MDES is 80%
    assert mdes("cra2", schools=schools, treated_share=1 - share, **base).mdes == pytest.approx(
        result.mdes, rel=1e-12
    )
    assert mdes("cra2", schools=schools + 1, treated_share=share, **base).mdes < result.mdes
    # (Bloom's multiplier uses the central t: with 3 df the exact power at the MDES is 0.784)
    at_mdes = power("cra2", es=result.mdes, schools=schools, treated_share=share, **base)
    assert at_mdes.power == pytest.approx(0.80, abs=0.02 if schools < 10 else 0.002)
    assert result.ci_lower < result.mdes < result.ci_upper


@settings(max_examples=30, deadline=None)
@given(
    before=st.integers(1, 6),
    after=st.integers(1, 6),
    rho=st.floats(-0.3, 1.0),
    icc=st.floats(0.01, 0.5),
)
def test_properties_of_did(before, after, rho, icc):
    base = dict(pupils=40, years_before=before, years_after=after, icc=icc, autocorrelation=rho)
    result = mdes("did", schools=60, **base)
    assert result.std_error > 0
    # with perfectly stable school effects only the pupil noise is left: c'c / n terms
    stable = mdes("did", schools=60, **{**base, "autocorrelation": 1.0})
    pupils_only = (1 - icc) / 40 * (1 / before + 1 / after) / (0.25 * 60)
    assert stable.std_error**2 == pytest.approx(pupils_only, rel=1e-10)
    assert stable.std_error <= result.std_error + 1e-12


# --- DiD and CITS: formula against simulation with known truth ------------------------------


def _simulate_panel_estimates(
    *,
    reps,
    treated,
    comparison,
    pupils,
    before,
    after,
    icc,
    stable_share,
    phi,
    effect,
    design,
    seed,
):
    """DiD or CITS estimates from simulated pupils: school random effect (variance
    icc * stable_share), AR(1) school-year shocks (variance icc * (1 - stable_share), lag-1
    correlation phi), pupil noise (variance 1 - icc); different pupils every year."""
    rng = np.random.default_rng(seed)
    schools = treated + comparison
    years = before + after
    var_stable = icc * stable_share
    var_shock = icc * (1 - stable_share)
    estimates = np.empty(reps)
    statistics = np.empty(reps)
    group = np.r_[np.ones(treated, bool), np.zeros(comparison, bool)]
    time = np.arange(years, dtype=float)
    for r in range(reps):
        stable = rng.normal(0.0, math.sqrt(var_stable), size=(schools, 1))
        shock = np.empty((schools, years))
        shock[:, 0] = rng.normal(0.0, math.sqrt(var_shock), size=schools)
        innovation = math.sqrt(var_shock * (1 - phi**2))
        for t in range(1, years):
            shock[:, t] = phi * shock[:, t - 1] + rng.normal(0.0, innovation, size=schools)
        trend = 0.05 * time + 0.3 * np.sin(time)  # a shared, non-linear national trend
        pupils_noise = rng.normal(0.0, math.sqrt(1 - icc), size=(schools, years, pupils))
        y = stable[:, :, None] + shock[:, :, None] + trend[None, :, None] + pupils_noise
        y[np.ix_(group, np.arange(before, years))] += effect
        means = y.mean(axis=2)  # school-year means of that year's pupils
        if design == "did":
            contrast = means[:, before:].mean(axis=1) - means[:, :before].mean(axis=1)
        else:  # project each school's baseline trend into the post years
            slope, intercept = np.polyfit(time[:before], means[:, :before].T, 1)
            projected = intercept[:, None] + slope[:, None] * time[None, before:]
            contrast = (means[:, before:] - projected).mean(axis=1)
        a, b = contrast[group], contrast[~group]
        estimates[r] = a.mean() - b.mean()
        pooled = ((a.var(ddof=1) * (treated - 1)) + b.var(ddof=1) * (comparison - 1)) / (
            schools - 2
        )
        statistics[r] = estimates[r] / math.sqrt(pooled * (1 / treated + 1 / comparison))
    return estimates, statistics


def _lag_correlations(stable_share, phi, years):
    """Correlation of a school's total effect at lags 1.. under the simulated model (truth)."""
    return [stable_share + (1 - stable_share) * phi**k for k in range(1, years)]


SCENARIOS = {
    "did_ar1": dict(design="did", treated=20, comparison=20, pupils=20, before=3, after=2,
                    icc=0.15, stable_share=0.0, phi=0.6),
    "did_stable_plus_ar1": dict(design="did", treated=12, comparison=28, pupils=15, before=4,
                                after=3, icc=0.2, stable_share=0.5, phi=0.5),
    "did_constant": dict(design="did", treated=20, comparison=20, pupils=25, before=2, after=2,
                         icc=0.15, stable_share=0.7, phi=0.0),
    "cits_stable_plus_ar1": dict(design="cits", treated=20, comparison=20, pupils=20, before=4,
                                 after=2, icc=0.15, stable_share=0.5, phi=0.6),
}  # fmt: skip


def _formula(s):
    years = s["before"] + s["after"]
    if s["phi"] == 0.0:  # stable effect + independent shocks: the "constant" structure
        corr = {"autocorrelation": s["stable_share"], "correlation": "constant"}
    elif s["stable_share"] == 0.0:
        corr = {"autocorrelation": s["phi"], "correlation": "ar1"}
    else:
        corr = {"autocorrelation": _lag_correlations(s["stable_share"], s["phi"], years)}
    return mdes(
        s["design"],
        schools_treated=s["treated"],
        schools_comparison=s["comparison"],
        pupils=s["pupils"],
        years_before=s["before"],
        years_after=s["after"],
        icc=s["icc"],
        **corr,
    )


def _check_scenario(name, reps, tolerance, seed):
    s = SCENARIOS[name]
    formula = _formula(s)
    estimates, _ = _simulate_panel_estimates(reps=reps, effect=0.0, seed=seed, **s)
    assert abs(estimates.mean()) < 4 * formula.std_error / math.sqrt(reps)
    assert estimates.std(ddof=1) == pytest.approx(formula.std_error, rel=tolerance)
    return formula


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_did_cits_standard_error_matches_simulation(name):
    # 1,500 replications: the SD is known to about 1.8%; 6% is over three of its SEs
    _check_scenario(name, reps=1500, tolerance=0.06, seed=11)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_did_cits_standard_error_matches_simulation_full(name):
    # 20,000 replications: SD known to 0.5%; 2% is four of its SEs
    _check_scenario(name, reps=20_000, tolerance=0.02, seed=12)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["did_stable_plus_ar1", "cits_stable_plus_ar1"])
def test_did_cits_power_at_mdes_is_eighty_percent_full(name):
    s = SCENARIOS[name]
    formula = _formula(s)
    reps = 10_000
    _, statistics = _simulate_panel_estimates(reps=reps, effect=formula.mdes, seed=13, **s)
    crit = stats.t.ppf(0.975, formula.df)
    rejected = np.mean(np.abs(statistics) > crit)
    assert rejected == pytest.approx(0.80, abs=0.015)  # 4 SEs of a proportion at 10,000


def test_did_formula_against_schochets_scalar_form():
    """Schochet (2022), one timing group, cross-sectional DiD: the variance written with the
    average pre, post and pre-post correlations (independent of the matrix form used)."""
    J_t, J_c, n, b, a, icc, rho = 30, 50, 40, 4, 3, 0.18, 0.55
    pre = [(s, t) for s in range(b) for t in range(b) if t > s]
    post = [(s, t) for s in range(b, b + a) for t in range(b, b + a) if t > s]
    rho_pre = sum(rho ** (t - s) for s, t in pre) / len(pre)
    rho_post = sum(rho ** (t - s) for s, t in post) / len(post)
    rho_pp = sum(rho ** (t - s) for s in range(b) for t in range(b, b + a)) / (a * b)
    theta = icc * ((1 + rho_post * (a - 1)) / a + (1 + rho_pre * (b - 1)) / b - 2 * rho_pp)
    e = (1 - icc) / n * (1 / a + 1 / b)
    variance = (1 / J_t + 1 / J_c) * (theta + e)
    result = mdes(
        "did",
        schools_treated=J_t,
        schools_comparison=J_c,
        pupils=n,
        years_before=b,
        years_after=a,
        icc=icc,
        autocorrelation=rho,
    )
    assert result.std_error**2 == pytest.approx(variance, rel=1e-12)
    assert result.df == J_t + J_c - 2


def test_did_r_squared_scales_the_two_levels():
    base = dict(schools=60, pupils=30, years_before=3, years_after=2, icc=0.2, autocorrelation=0.6)
    v0 = mdes("did", **base).std_error ** 2
    v_pupil = mdes("did", r2_pupil=0.5, **base).std_error ** 2
    v_both = mdes("did", r2_pupil=0.5, r2_school=0.5, **base).std_error ** 2
    assert v_both == pytest.approx(v0 / 2)
    assert v_both < v_pupil < v0


def test_did_more_stable_school_effects_give_smaller_mdes_and_cits_costs_power():
    base = dict(schools=80, pupils=60, years_before=4, years_after=3, icc=0.15)
    low = mdes("did", autocorrelation=0.3, **base).mdes
    high = mdes("did", autocorrelation=0.9, **base).mdes
    assert high < low
    assert (
        mdes("cits", autocorrelation=0.6, **base).mdes
        > mdes("did", autocorrelation=0.6, **base).mdes
    )


def test_did_schools_needed_and_df_override():
    base = dict(pupils=60, years_before=3, years_after=3, icc=0.15, autocorrelation=0.7)
    result = schools_needed("did", mdes=0.2, **base)
    assert result.mdes <= 0.2 < mdes("did", schools=result.required - 1, **base).mdes
    override = mdes("did", schools=40, df=200, **base)
    assert override.df == 200
    assert override.mdes < mdes("did", schools=40, **base).mdes


# --- sample sizes ---------------------------------------------------------------------------


def test_solving_for_pupils_and_the_unreachable_target():
    result = sample_size("cra2", mdes=0.3, solve_for="pupils", schools=60, icc=0.1)
    assert result.solved_for == "pupils"
    assert result.mdes <= 0.3 < mdes("cra2", schools=60, icc=0.1, pupils=result.required - 1).mdes
    with pytest.raises(DesignError, match="No number of pupils per school reaches an MDES of 0.2"):
        sample_size("cra2", mdes=0.2, solve_for="pupils", schools=20, icc=0.2)


def test_solving_when_the_smallest_design_already_suffices():
    result = sample_size("cra2", mdes=5.0, pupils=100, icc=0.05)
    assert result.required == 3  # fewer than 3 clusters is never offered


def test_sample_size_rejects_the_solved_parameter_among_inputs():
    with pytest.raises(InvalidValueError, match="leave it out"):
        sample_size("cra2", mdes=0.2, schools=30, pupils=20, icc=0.1)
    with pytest.raises(InvalidValueError, match="solve_for must be one of"):
        sample_size("ira", mdes=0.2, solve_for="schools")


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "error", "words"),
    [
        (dict(icc=1.0, pupils=20, schools=30), InvalidValueError, "icc must lie in \\[0, 1\\)"),
        (dict(icc=-0.1, pupils=20, schools=30), InvalidValueError, "icc"),
        (dict(icc=15, pupils=20, schools=30), InvalidValueError, "0.15 for 15%"),
        (dict(icc=0.1, pupils=20, schools=2), DesignError, "schools = 2 is too few"),
        (dict(icc=0.1, pupils=20, schools=30, r2_pupil=1.0), InvalidValueError, "r2_pupil = 1"),
        (dict(icc=0.1, pupils=20, schools=30, r2_school=1.2), InvalidValueError, "r2_school"),
        (
            dict(icc=0.1, pupils=20, schools=30, treated_share=1.0),
            InvalidValueError,
            "treated_share",
        ),
        (dict(icc=0.1, pupils=20, schools=30, treated_share=0), InvalidValueError, "treated_share"),
        (dict(icc=0.1, pupils=20, schools=5, covariates=3), DesignError, "degrees of freedom"),
        (dict(icc=0.1, pupils=20, schools=30, covariates=1.5), InvalidValueError, "covariates"),
        (dict(icc=0.1, pupils=20), InvalidValueError, "needs schools"),
        (dict(icc=0.1, pupils=20, schools=30, teachers=4), InvalidValueError, "Unknown parameter"),
        (dict(icc="high", pupils=20, schools=30), InvalidValueError, "icc must be a number"),
    ],
)
def test_bad_input_names_the_parameter_and_the_fix(params, error, words):
    with pytest.raises(error, match=words):
        mdes("cra2", **params)


def test_bad_settings_and_designs():
    base = dict(icc=0.1, pupils=20, schools=30)
    with pytest.raises(InvalidValueError, match="alpha"):
        mdes("cra2", alpha=0, **base)
    with pytest.raises(InvalidValueError, match="power"):
        mdes("cra2", power=80, **base)
    with pytest.raises(InvalidValueError, match="two_tailed"):
        mdes("cra2", two_tailed="yes", **base)
    with pytest.raises(InvalidValueError, match="Unknown design 'rct'"):
        mdes("rct", **base)
    with pytest.raises(DesignError, match="areas = 2 is too few"):
        mdes("cra3", icc=0.1, icc_area=0.05, pupils=20, schools=3, areas=2)
    with pytest.raises(InvalidValueError, match="icc \\+ icc_area"):
        mdes("cra3", icc=0.6, icc_area=0.5, pupils=20, schools=3, areas=20)
    with pytest.raises(InvalidValueError, match="effect_heterogeneity"):
        mdes("bira2", icc=0.1, effect_heterogeneity=-1, pupils=20, schools=20)
    assert all(issubclass(e, CpdImpactError) for e in (InvalidValueError, DesignError))


def test_bad_panel_input():
    base = dict(schools=40, pupils=20, years_before=3, years_after=2, icc=0.1)
    with pytest.raises(InvalidValueError, match="autocorrelation must lie in"):
        mdes("did", autocorrelation=1.5, **base)
    with pytest.raises(InvalidValueError, match="lags 1 to 4"):
        mdes("did", autocorrelation=[0.5, 0.4], **base)
    with pytest.raises(InvalidValueError, match="valid correlation matrix"):
        mdes("did", autocorrelation=[0.9, -0.9, 0.9, -0.9], **base)
    with pytest.raises(DesignError, match="years_before = 2 is too few"):
        mdes("cits", autocorrelation=0.5, **{**base, "years_before": 2})
    with pytest.raises(InvalidValueError, match="correlation must be 'ar1'"):
        mdes("did", autocorrelation=0.5, correlation="exchangeable", **base)
    with pytest.raises(InvalidValueError, match="schools_treated and schools_comparison"):
        mdes("did", autocorrelation=0.5, schools_treated=10, **base)


def test_inputs_are_not_modified():
    params = {"icc": 0.1, "pupils": 20, "schools": 30}
    autocorrelation = [0.6, 0.5, 0.4, 0.3]
    before = dict(params)
    mdes("cra2", **params)
    mdes("did", schools=30, pupils=20, years_before=3, years_after=2, icc=0.1,
         autocorrelation=autocorrelation)  # fmt: skip
    assert params == before and autocorrelation == [0.6, 0.5, 0.4, 0.3]


# --- result faces ---------------------------------------------------------------------------


def test_result_is_frozen_and_has_the_five_faces(tmp_path):
    result = power("cra2", es=0.25, schools=80, pupils=60, icc=0.15, r2_pupil=0.5, r2_school=0.5)
    assert isinstance(result, PowerAnalysis)
    with pytest.raises(AttributeError):
        result.mdes = 0.1  # type: ignore[misc]
    text = str(result.summary())
    assert "In plain words" in text and "80 schools" in text and "months" in text
    assert "<table>" in result._repr_html_()
    frame = result.to_frame()
    assert frame.loc[0, "mdes"] == result.mdes and frame.loc[0, "schools"] == 80
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["inputs"]["icc"] == 0.15 and payload["power"] == result.power
    ax = result.plot()
    assert ax.get_xlabel() == "Number of schools"
    ax.figure.savefig(tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 0
    assert set(DESIGNS) == {"ira", "cra2", "cra3", "bira2", "bcra3f2", "did", "cits"}


def test_sample_size_summary_and_curve():
    result = schools_needed("cra2", mdes=0.2, pupils=60, icc=0.15, r2_pupil=0.5, r2_school=0.5)
    assert "schools needed" in str(result.summary()).lower()
    assert f"needs {result.required} schools" in result.plain_words()
    curve = result.curve()
    assert curve["mdes"].is_monotonic_decreasing
    assert curve["schools"].min() == 3
    again = mdes("cra2", schools=int(curve["schools"].iloc[-1]), pupils=60, icc=0.15,
                 r2_pupil=0.5, r2_school=0.5)  # fmt: skip
    assert curve["mdes"].iloc[-1] == again.mdes


def test_plot_mdes_curve_marks_the_design_and_the_target():
    ax = plot_mdes_curve("cits", schools=40, pupils=50, years_before=4, years_after=2, icc=0.15,
                         autocorrelation=0.6, target=0.2)  # fmt: skip
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("this design (40)" in s for s in labels) and any("target 0.2" in s for s in labels)
    frame = mdes_curve("cra3", values=[5, 10, 20], icc=0.1, icc_area=0.05, pupils=20, schools=4)
    assert list(frame["areas"]) == [5, 10, 20] and frame["mdes"].is_monotonic_decreasing


# --- the example script ---------------------------------------------------------------------


def test_planning_example_runs(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("planning_example", EXAMPLES / "planning.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["planning_example"] = module
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "schools" in out and "MDES" in out
    assert (tmp_path / "mdes_curve.png").stat().st_size > 0
