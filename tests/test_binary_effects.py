"""Effect sizes for pass/fail outcomes (issue 17): conversions against hand computations, the
marginal percentage-point difference against brute-force integration, statsmodels and
simulation, the 0/1 guards, and bad input."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special
from scipy import stats as sps

from cpdimpact._guards import is_binary, require_binary, require_proportions
from cpdimpact.effects import (
    BinaryEffectSize,
    EffectSize,
    binary_months,
    cox_index,
    difference_effect_size,
    difference_to_odds_ratio,
    hedges_g,
    marginal_difference,
    months_of_progress,
    odds_ratio_effect_size,
    odds_ratio_to_difference,
    proportions_effect_size,
)
from cpdimpact.errors import InvalidValueError, NotBinaryError

Z975 = NormalDist().inv_cdf(0.975)


def logit(p):
    return math.log(p / (1 - p))


# --------------------------------------------------------------------------- conversions
def test_cox_conversion_by_hand():
    lor, se = math.log(1.5), 0.1
    es = odds_ratio_effect_size(lor, se)
    assert isinstance(es, BinaryEffectSize) and isinstance(es, EffectSize)
    assert es.estimate == pytest.approx(0.4054651081 / 1.65, rel=1e-9)
    assert es.std_error == pytest.approx(0.1 / 1.65, rel=1e-12)
    assert es.variance == pytest.approx(0.01 / 1.65**2, rel=1e-12)
    assert es.ci_lower == pytest.approx((lor - Z975 * se) / 1.65, rel=1e-9)
    assert es.ci_upper == pytest.approx((lor + Z975 * se) / 1.65, rel=1e-9)
    lo, hi = es.odds_ratio_ci
    assert lo == pytest.approx(math.exp(lor - Z975 * se)) and hi == pytest.approx(
        math.exp(lor + Z975 * se)
    )
    assert es.symbol == "d_Cox" and "Cox" in es.method and es.odds_ratio == pytest.approx(1.5)


def test_hasselblad_hedges_conversion_by_hand_is_labelled():
    lor, se = math.log(0.8), 0.2
    es = odds_ratio_effect_size(lor, se, method="hasselblad-hedges", df=40)
    assert es.estimate == pytest.approx(lor * math.sqrt(3) / math.pi, rel=1e-12)
    assert es.variance == pytest.approx(se**2 * 3 / math.pi**2, rel=1e-12)
    q = sps.t.ppf(0.975, 40)
    assert es.ci_lower == pytest.approx((lor - q * se) * math.sqrt(3) / math.pi, rel=1e-9)
    assert es.symbol == "d_HH" and "Hasselblad & Hedges" in es.method
    # the two conversions differ by the ratio of their divisors, 1.65 / 1.8138
    cox = odds_ratio_effect_size(lor, se)
    assert es.estimate / cox.estimate == pytest.approx(1.65 / 1.8137993642, rel=1e-9)


def test_proportions_by_hand_with_the_2x2_table():
    # 260 of 400 treated and 290 of 500 comparison pupils reach the standard
    es = proportions_effect_size(0.65, 0.58, n_treatment=400, n_comparison=500)
    odds = (260 / 140) / (290 / 210)
    se = math.sqrt(1 / 260 + 1 / 140 + 1 / 290 + 1 / 210)  # Woolf
    omega = 1 - 3 / (4 * 900 - 9)
    assert es.odds_ratio == pytest.approx(odds, rel=1e-12)
    assert es.log_odds_ratio_se == pytest.approx(se, rel=1e-12)
    assert es.estimate == pytest.approx(omega * math.log(odds) / 1.65, rel=1e-12)
    assert es.std_error == pytest.approx(omega * se / 1.65, rel=1e-12)
    # the WWC improvement index: the Cox index as a percentile gain, 100 * (Phi(d) - 0.5)
    assert es.improvement_index == pytest.approx(100 * (NormalDist().cdf(es.estimate) - 0.5))
    assert es.percentage_points == pytest.approx(7.0)
    # the same rule as the baseline-equivalence Cox index (one divisor, one omega)
    assert es.estimate == pytest.approx(cox_index(0.65, 0.58, n=900), rel=1e-12)
    plain = proportions_effect_size(0.30, 0.25)
    assert plain.estimate == pytest.approx(cox_index(0.30, 0.25), rel=1e-12)
    assert math.isnan(plain.std_error) and math.isnan(plain.ci_lower)
    json.dumps(plain.to_dict(), allow_nan=False)
    json.dumps(es.to_dict(), allow_nan=False)


def test_docs_worked_example_numbers():
    """The numbers printed in docs/effects.md, 'Binary (pass/fail) outcomes', by hand."""
    es = proportions_effect_size(0.65, 0.58, n_treatment=400, n_comparison=500)
    assert round(es.odds_ratio, 3) == 1.345
    assert round(es.log_odds_ratio, 4) == 0.2963
    assert round(es.estimate, 3) == 0.179
    assert round(es.improvement_index, 1) == 7.1
    assert es.months == 2
    assert round(es.log_odds_ratio_se, 4) == 0.1386
    assert round(1 - 3 / (4 * 900 - 9), 5) == 0.99916
    hh = proportions_effect_size(
        0.65,
        0.58,
        n_treatment=400,
        n_comparison=500,
        method="hasselblad-hedges",
        small_sample=False,
    )
    assert round(hh.estimate, 3) == round(math.log((260 / 140) / (290 / 210)) * 3**0.5 / math.pi, 3)
    assert round(hh.estimate, 3) == 0.163
    did = difference_effect_size(0.04, 0.015, p_treated=0.62, df=59)
    assert round(did.odds_ratio, 3) == 1.181  # (0.62 / 0.38) / (0.58 / 0.42) = 1.18149
    assert round(did.estimate, 3) == 0.101
    assert round(did.log_odds_ratio_se, 4) == 0.0616


def test_difference_to_odds_ratio_and_back():
    r = difference_to_odds_ratio(0.04, p_treated=0.62, std_error=0.015)
    assert r.p_comparison == pytest.approx(0.58)
    assert r.log_odds_ratio == pytest.approx(logit(0.62) - logit(0.58), rel=1e-12)
    assert r.log_odds_ratio_se == pytest.approx(0.015 / (0.58 * 0.42), rel=1e-12)
    # delta method = the numerical derivative of L(tau) with p1 fixed
    h = 1e-6
    slope = (logit(0.62) - logit(0.62 - 0.04 - h) - (logit(0.62) - logit(0.62 - 0.04 + h))) / (
        2 * h
    )
    assert r.log_odds_ratio_se == pytest.approx(abs(slope) * 0.015, rel=1e-6)
    # anchored on the comparison proportion, the conversion and its inverse undo each other
    there = difference_to_odds_ratio(0.04, p_comparison=0.58, std_error=0.015)
    back = odds_ratio_to_difference(
        there.log_odds_ratio, p_comparison=0.58, std_error=there.log_odds_ratio_se
    )
    assert back.difference == pytest.approx(0.04, rel=1e-12)
    assert back.difference_se == pytest.approx(0.015, rel=1e-12)
    anchored = odds_ratio_to_difference(math.log(1.5), p_treated=0.6)
    assert anchored.p_comparison == pytest.approx(0.5, rel=1e-12)


def test_difference_effect_size_matches_the_two_step_conversion():
    es = difference_effect_size(-0.03, 0.01, p_treated=0.4, df=30, method="hasselblad-hedges")
    lor = logit(0.4) - logit(0.43)
    se = 0.01 / (0.43 * 0.57)
    q = sps.t.ppf(0.975, 30)
    k = math.sqrt(3) / math.pi
    assert es.estimate == pytest.approx(lor * k, rel=1e-12)
    assert es.ci_upper == pytest.approx((lor + q * se) * k, rel=1e-9)
    assert es.p_comparison == pytest.approx(0.43)


def test_the_evaluation_percentage_rule_is_the_proportions_rule():
    """evaluation/result.py converts each end of a percentage-point interval with cox_index;
    proportions_effect_size gives the same numbers (so that call site can switch)."""
    p1 = 63.2
    for shift in (4.1, 1.0, 7.3):
        assert proportions_effect_size(p1 / 100, (p1 - shift) / 100).estimate == pytest.approx(
            cox_index(p1 / 100, (p1 - shift) / 100), rel=1e-12
        )


# --------------------------------------------------------------------------- months rule
def test_months_only_for_attainment_through_the_conversion():
    es = proportions_effect_size(0.70, 0.58, n_treatment=300, n_comparison=300)
    assert es.months == months_of_progress(es.estimate)
    assert binary_months(es) == es.months
    assert "attainment" in es.months_caveat and "Cox" in es.months_caveat
    assert any("attainment" in note for note in es.summary().notes)
    assert str(es).endswith("months (converted)")
    absence = proportions_effect_size(0.10, 0.14, attainment=False)
    assert absence.months is None
    with pytest.raises(InvalidValueError, match="attainment"):
        binary_months(absence)
    with pytest.raises(InvalidValueError, match="attainment"):
        binary_months(0.2, attainment=False)
    with pytest.raises(InvalidValueError, match="BinaryEffectSize"):
        binary_months(hedges_g(1.0, 0.5, 5.0))
    assert binary_months(0.185) == 3


# --------------------------------------------------------------------------- marginal effect
def _design(n=40, seed=3):
    rng = np.random.default_rng(seed)
    prior = rng.normal(0, 1, n)
    fsm = (rng.random(n) < 0.3).astype(float)
    treat = (rng.random(n) < 0.5).astype(float)
    frame = pd.DataFrame(
        {
            "const": 1.0,
            "treat": treat,
            "prior": prior,
            "fsm": fsm,
            "treat_fsm": treat * fsm,
        }
    )
    beta = pd.Series(
        [-0.3, 0.45, 0.8, -0.4, 0.2], index=["const", "treat", "prior", "fsm", "treat_fsm"]
    )
    a = rng.normal(size=(5, 5))
    cov = 0.01 * (a @ a.T + np.eye(5))
    return frame, beta, cov


def _brute(frame, beta, variance, t):
    x = frame.to_numpy(dtype=float).copy()
    x[:, 1] = t
    x[:, 4] = t * x[:, 3]
    eta = x @ beta.to_numpy()
    s = math.sqrt(variance)
    if s == 0:
        return float(special.expit(eta).mean())
    values = [
        integrate.quad(
            lambda z, e=e: special.expit(e + s * z) * sps.norm.pdf(z),
            -np.inf,
            np.inf,
            epsabs=1e-13,
            epsrel=1e-12,
        )[0]
        for e in eta
    ]
    return float(np.mean(values))


@pytest.mark.parametrize("variance", [0.0, 0.3, 1.7])
def test_marginal_difference_against_brute_force_integration(variance):
    frame, beta, cov = _design(n=12)
    res = marginal_difference(
        beta,
        cov,
        frame,
        "treat",
        variance=variance,
        interactions={"treat_fsm": "fsm"},
    )
    p1, p0 = _brute(frame, beta, variance, 1.0), _brute(frame, beta, variance, 0.0)
    assert res.p_treated == pytest.approx(p1, abs=1e-10)
    assert res.p_untreated == pytest.approx(p0, abs=1e-10)
    assert res.estimate == pytest.approx(p1 - p0, abs=1e-10)
    # gradient: numerical derivative of the brute-force difference (variance 0 keeps it fast)
    if variance == 0.0:
        grad = []
        for k in range(5):
            up, down = beta.copy(), beta.copy()
            up.iloc[k] += 1e-6
            down.iloc[k] -= 1e-6
            d_up = _brute(frame, up, 0.0, 1.0) - _brute(frame, up, 0.0, 0.0)
            d_down = _brute(frame, down, 0.0, 1.0) - _brute(frame, down, 0.0, 0.0)
            grad.append((d_up - d_down) / 2e-6)
        np.testing.assert_allclose(res.gradient, grad, atol=1e-8)
        assert res.std_error == pytest.approx(math.sqrt(np.array(grad) @ cov @ grad), rel=1e-6)


def test_population_averaged_levels_add_and_rows_may_differ():
    frame, beta, cov = _design()
    one = marginal_difference(beta, cov, frame, 1, variance=0.8, interactions={4: 3})
    two = marginal_difference(beta, cov, frame, 1, variance=(0.5, 0.3), interactions={4: 3})
    rows = marginal_difference(
        beta, cov, frame, 1, row_variances=np.full(len(frame), 0.8), interactions={4: 3}
    )
    assert one.estimate == pytest.approx(two.estimate, abs=1e-14)
    assert one.std_error == pytest.approx(rows.std_error, abs=1e-14)
    fine = marginal_difference(
        beta, cov, frame, 1, variance=0.8, interactions={4: 3}, n_quadrature=80
    )
    assert one.estimate == pytest.approx(fine.estimate, abs=1e-10)
    cond = marginal_difference(
        beta, cov, frame, 1, variance=0.8, kind="conditional", interactions={4: 3}
    )
    no_re = marginal_difference(beta, cov, frame, 1, variance=0.0, interactions={4: 3})
    assert cond.kind == "conditional" and one.kind == "population-averaged"
    assert cond.estimate == pytest.approx(no_re.estimate, abs=1e-14)
    assert cond.std_error == pytest.approx(no_re.std_error, abs=1e-14)
    assert abs(one.estimate - cond.estimate) > 1e-4  # the integral matters


def test_population_averaged_effect_matches_a_simulation_of_the_model():
    """Simulate pupils in schools from the random-intercept logistic model with known
    parameters: the share passing with and without the programme is what the population-
    averaged difference says."""
    rng = np.random.default_rng(11)
    frame, beta, cov = _design(n=30, seed=5)
    sigma2 = 1.2
    res = marginal_difference(
        beta, cov, frame, "treat", variance=sigma2, interactions={"treat_fsm": "fsm"}
    )
    draws = 200_000
    u = rng.normal(0, math.sqrt(sigma2), draws)
    x = frame.to_numpy(dtype=float)
    diffs = []
    for row in x:
        r1, r0 = row.copy(), row.copy()
        r1[1], r1[4] = 1.0, row[3]
        r0[1], r0[4] = 0.0, 0.0
        y1 = rng.random(draws) < special.expit(r1 @ beta.to_numpy() + u)
        y0 = rng.random(draws) < special.expit(r0 @ beta.to_numpy() + u)
        diffs.append(y1.mean() - y0.mean())
    simulated = float(np.mean(diffs))
    mc_se = math.sqrt(2 * 0.25 / (draws * len(x)))  # at most, per arm
    assert abs(simulated - res.estimate) < 4 * mc_se


def test_delta_method_se_matches_a_simulation_of_the_fixed_effects():
    rng = np.random.default_rng(2)
    frame, beta, cov = _design()
    res = marginal_difference(
        beta, cov, frame, "treat", variance=0.6, interactions={"treat_fsm": "fsm"}
    )
    draws = rng.multivariate_normal(beta.to_numpy(), cov, size=1000)
    values = [
        marginal_difference(
            pd.Series(b, index=beta.index),
            cov,
            frame,
            "treat",
            variance=0.6,
            interactions={"treat_fsm": "fsm"},
        ).estimate
        for b in draws
    ]
    # SD of 1000 draws: relative Monte Carlo error about 1/sqrt(2 * 1000) = 2.2%
    assert np.std(values, ddof=1) == pytest.approx(res.std_error, rel=0.08)


def test_conditional_marginal_effect_equals_statsmodels_average_discrete_change():
    import statsmodels.api as sm

    rng = np.random.default_rng(4)
    n = 3000
    prior = rng.normal(size=n)
    treat = (rng.random(n) < 0.5).astype(float)
    y = (rng.random(n) < special.expit(-0.2 + 0.5 * treat + 0.9 * prior)).astype(float)
    x = pd.DataFrame({"const": 1.0, "treat": treat, "prior": prior})
    fit = sm.Logit(y, x).fit(disp=0)
    peer = fit.get_margeff(at="overall", dummy=True)
    ours = marginal_difference(fit.params, fit.cov_params(), x, "treat", kind="conditional")
    assert ours.estimate == pytest.approx(peer.margeff[0], rel=1e-8)
    assert ours.std_error == pytest.approx(peer.margeff_se[0], rel=1e-5)


def test_logistic_marginal_effect_covers_the_truth():
    """Known truth: the average effect on the probability among these pupils. 95% Wald
    intervals of the delta-method SE cover it at about the nominal rate."""
    import statsmodels.api as sm

    rng = np.random.default_rng(8)
    n, reps = 600, 200
    prior = rng.normal(size=n)
    treat = (np.arange(n) % 2).astype(float)
    x = pd.DataFrame({"const": 1.0, "treat": treat, "prior": prior})
    beta = np.array([-0.4, 0.5, 0.7])
    truth = float(
        (special.expit(-0.4 + 0.5 + 0.7 * prior) - special.expit(-0.4 + 0.7 * prior)).mean()
    )
    covered, estimates = 0, []
    for _ in range(reps):
        y = (rng.random(n) < special.expit(x.to_numpy() @ beta)).astype(float)
        fit = sm.Logit(y, x).fit(disp=0)
        res = marginal_difference(fit.params, fit.cov_params(), x, "treat", kind="conditional")
        covered += res.ci_lower <= truth <= res.ci_upper
        estimates.append(res.estimate)
    # 200 replications: coverage 0.95 has SD 0.015; accept 0.91-0.99
    assert 0.91 <= covered / reps <= 0.99
    assert abs(np.mean(estimates) - truth) < 3 * np.std(estimates) / math.sqrt(reps)


# --------------------------------------------------------------------------- guards
def test_require_binary_accepts_bool_and_01_and_refuses_the_rest():
    ok = pd.DataFrame(
        {
            "b": [True, False, True],
            "i": [1, 0, 1],
            "f": [1.0, 0.0, 0.0],
            "nullable": pd.array([1, 0, 1], dtype="Int64"),
        }
    )
    for column in ok:
        values = require_binary(ok, column)
        assert set(values) <= {0.0, 1.0}
    assert is_binary(ok["i"]) and not is_binary(pd.Series([0.0, 0.5]))
    cases = {
        2: "percentages or scores",
        0.5: "proportions",
        -1: "code each pupil 1",
    }
    for bad, fix in cases.items():
        frame = pd.DataFrame({"ks2_pass": [0, 1, bad, 1, bad]}, index=[101, 102, 103, 104, 105])
        with pytest.raises(NotBinaryError, match=fix) as info:
            require_binary(frame, "ks2_pass")
        assert "'ks2_pass'" in str(info.value) and "rows 103, 105" in str(info.value)
    words = pd.DataFrame({"ks2_pass": ["Y", "N", "Y"]})
    with pytest.raises(NotBinaryError, match=r"map\(\{'Y': 1, 'N': 0\}\)"):
        require_binary(words, "ks2_pass")
    digits = pd.DataFrame({"ks2_pass": ["1", "0"]})
    with pytest.raises(NotBinaryError, match="to_numeric"):
        require_binary(digits, "ks2_pass")
    gaps = pd.DataFrame({"ks2_pass": [1.0, np.nan]})
    with pytest.raises(NotBinaryError, match="missing at row 1"):
        require_binary(gaps, "ks2_pass")
    assert np.isnan(require_binary(gaps, "ks2_pass", allow_missing=True)[1])
    before = words.copy()
    with pytest.raises(NotBinaryError):
        require_binary(words, "ks2_pass")
    pd.testing.assert_frame_equal(words, before)


def test_require_proportions():
    good = pd.DataFrame({"pct": [0.5, 0.25, 1.0], "pupils": [10, 4, 30]})
    p, n = require_proportions(good, "pct", "pupils")
    np.testing.assert_array_equal(p * n, [5, 1, 30])
    with pytest.raises(NotBinaryError, match="divide the column by 100"):
        require_proportions(good.assign(pct=[50.0, 25.0, 100.0]), "pct", "pupils")
    with pytest.raises(NotBinaryError, match="'pupils'.*positive.*row 1"):
        require_proportions(good.assign(pupils=[10, 0, 30]), "pct", "pupils")
    with pytest.raises(NotBinaryError, match="whole number of pupils"):
        require_proportions(good.assign(pct=[0.5, 0.33, 1.0]), "pct", "pupils")
    with pytest.raises(NotBinaryError, match="missing"):
        require_proportions(good.assign(pct=[0.5, None, 1.0]), "pct", "pupils")


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: odds_ratio_effect_size(math.inf, 0.1), "finite"),
        (lambda: odds_ratio_effect_size(0.2, -0.1), "std_error"),
        (lambda: odds_ratio_effect_size(0.2, 0.1, method="chinn"), "method"),
        (lambda: odds_ratio_effect_size(0.2, 0.1, attainment="yes"), "attainment"),
        (lambda: proportions_effect_size(65, 58), "fractions: 0.65"),
        (lambda: proportions_effect_size(1.0, 0.5), "strictly between 0 and 1"),
        (lambda: proportions_effect_size(0.6, 0.5, n_treatment=10), "both"),
        (lambda: proportions_effect_size(0.6, 0.5, n_treatment=10, n_comparison=2.5), "whole"),
        (lambda: difference_to_odds_ratio(0.05), "exactly one"),
        (lambda: difference_to_odds_ratio(0.05, p_treated=0.6, p_comparison=0.5), "exactly one"),
        (lambda: difference_to_odds_ratio(0.07, p_treated=0.05), "outside \\(0, 1\\)"),
        (lambda: difference_effect_size(0.2, 0.1, p_treated=0.1), "percentage points only"),
        (lambda: odds_ratio_to_difference(0.2, p_comparison=1.2), "strictly between"),
    ],
)
def test_conversions_refuse_bad_input(call, match):
    with pytest.raises(InvalidValueError, match=match):
        call()


def test_marginal_difference_refuses_bad_input():
    frame, beta, cov = _design(n=5)
    with pytest.raises(InvalidValueError, match="not a column"):
        marginal_difference(beta, cov, frame, "treated")
    with pytest.raises(InvalidValueError, match="shape"):
        marginal_difference(beta, cov, frame.iloc[:, :3], "treat")
    with pytest.raises(InvalidValueError, match="covariance"):
        marginal_difference(beta, cov[:3, :3], frame, "treat")
    with pytest.raises(InvalidValueError, match="at least 0"):
        marginal_difference(beta, cov, frame, "treat", variance=-0.1)
    with pytest.raises(InvalidValueError, match="one latent variance per design row"):
        marginal_difference(beta, cov, frame, "treat", row_variances=[0.1, 0.2])
    with pytest.raises(InvalidValueError, match="kind"):
        marginal_difference(beta, cov, frame, "treat", kind="marginal")
    with pytest.raises(InvalidValueError, match="missing or infinite"):
        marginal_difference(beta, cov, frame.assign(prior=np.nan), "treat")


def test_marginal_difference_is_the_same_in_blocks_of_rows(monkeypatch):
    import cpdimpact.effects._marginal as marginal

    frame, beta, cov = _design(n=40)
    whole = marginal_difference(beta, cov, frame, "treat", variance=0.7, interactions={4: 3})
    monkeypatch.setattr(marginal, "_BLOCK", 7)  # 40 rows in 6 blocks, the last of 5
    blocks = marginal_difference(beta, cov, frame, "treat", variance=0.7, interactions={4: 3})
    assert blocks.estimate == pytest.approx(whole.estimate, abs=1e-15)
    np.testing.assert_allclose(blocks.gradient, whole.gradient, atol=1e-15)


def test_marginal_difference_reads_labelled_parameters_in_the_design_order():
    frame, beta, cov = _design(n=20)
    plain = marginal_difference(beta, cov, frame, "treat", variance=0.4)
    order = ["prior", "treat_fsm", "const", "fsm", "treat"]
    labelled = pd.DataFrame(cov, index=beta.index, columns=beta.index).loc[order, order]
    again = marginal_difference(beta[order], labelled, frame, "treat", variance=0.4)
    assert again.estimate == pytest.approx(plain.estimate, abs=1e-15)
    assert again.std_error == pytest.approx(plain.std_error, abs=1e-15)
