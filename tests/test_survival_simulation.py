"""Simulation with known truth: bias and 95% coverage of the survival estimators.

Three designs, each with teachers in schools and participation clustered by school:

* **Cox**: exponential times to leaving with hazard ``0.25 exp(beta D - 0.08 x)`` (``x``:
  experience), censoring uniform; ``CoxModel`` adjusting for experience and clustered by school
  must recover ``beta`` (its hazard ratio) with intervals covering it about 95% of the time.
* **Discrete time**: yearly leaving probability ``expit(alpha_t + beta D + gamma x)`` for up to
  five census years; ``DiscreteTimeHazard`` must recover ``beta`` and the implied difference in
  leaving within 2 years over the participants (its truth computed from the true parameters
  over the sample's participants).
* **Selection on experience**: less experienced teachers participate more and leave more, and
  schools share a frailty (leavers cluster in schools). The retention effect on the
  participants at 2 years (truth by quadrature over the frailty and the participants'
  experience) is badly biased by the naive Kaplan-Meier comparison and recovered by the one
  weighted by exact matching on experience (``CoarsenedExactMatching``, teachers as units).

Monte Carlo bounds: the mean is within 3.5 Monte Carlo standard errors of the truth, and the
coverage within 3.5 binomial standard errors of 95% (with a fixed seed this is a fixed check
that fails for a real bias or a wrong variance, not for bad luck). The default runs take a few
seconds; ``-m slow`` runs ten times more replications.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit

from cpdimpact.comparison import CoarsenedExactMatching
from cpdimpact.errors import CpdImpactWarning
from cpdimpact.survival import CoxModel, DiscreteTimeHazard, KaplanMeier

BETA = np.log(0.7)
MC_BOUND = 3.5


def _schools(rng, n_schools, per_school):
    school = np.repeat(np.arange(n_schools), per_school)
    # experience is alike within a school, and participation is partly a school's decision
    experience = np.clip(
        np.round(rng.normal(7, 2.5, n_schools)[school] + rng.normal(0, 2.5, school.size)), 0, 14
    )
    return school, experience


def _check(estimates, errors, truth, q=1.959963984540054):
    estimates, errors = np.asarray(estimates), np.asarray(errors)
    r = estimates.size
    mc_se = estimates.std(ddof=1) / np.sqrt(r)
    assert abs(estimates.mean() - truth) < MC_BOUND * mc_se, (estimates.mean(), truth, mc_se)
    covered = np.mean(np.abs(estimates - truth) <= q * errors)
    assert abs(covered - 0.95) < MC_BOUND * np.sqrt(0.95 * 0.05 / r), covered
    return covered


# ---------------------------------------------------------------------- Cox hazard ratio
def _cox_sample(rng, n_schools=80, per_school=15):
    school, x = _schools(rng, n_schools, per_school)
    d = rng.random(school.size) < expit(rng.normal(0, 1, n_schools)[school] - 0.1 * (x - 7))
    time = rng.exponential(1 / (0.25 * np.exp(BETA * d - 0.08 * x)))
    censor = rng.uniform(1, 6, school.size)
    return pd.DataFrame(
        {
            "years": np.minimum(time, censor),
            "left": (time <= censor).astype(int),
            "cpd": d.astype(int),
            "experience": x,
            "school": school,
        }
    )


def _cox_run(replications, seed):
    rng = np.random.default_rng(seed)
    spec = CoxModel(
        duration="years",
        event="left",
        treatment="cpd",
        covariates=("experience",),
        cluster="school",
    )
    est, se = [], []
    for _ in range(replications):
        res = spec.fit(_cox_sample(rng))
        est.append(res.params.iloc[0])
        se.append(res.std_errors.iloc[0])
    _check(est, se, BETA)


def test_cox_hazard_ratio_bias_and_coverage():
    _cox_run(150, seed=11)


@pytest.mark.slow
def test_cox_hazard_ratio_bias_and_coverage_large():
    _cox_run(1500, seed=12)


# ---------------------------------------------------------------------- discrete time
ALPHA_T = np.array([-1.6, -1.9, -2.1, -2.2, -2.3])
GAMMA = -0.06


def _discrete_sample(rng, n_schools=80, per_school=15):
    school, x = _schools(rng, n_schools, per_school)
    d = rng.random(school.size) < expit(rng.normal(0, 1, n_schools)[school] - 0.1 * (x - 7))
    h = expit(ALPHA_T[None, :] + BETA * d[:, None] + GAMMA * x[:, None])
    leaves = rng.random(h.shape) < h
    first = np.where(leaves.any(axis=1), leaves.argmax(axis=1) + 1, 0)
    follow = rng.integers(2, 6, school.size)  # census years observed: 2 to 5
    left = (first > 0) & (first <= follow)
    years = np.where(left, first, follow)
    frame = pd.DataFrame(
        {
            "years": years,
            "left": left.astype(int),
            "cpd": d.astype(int),
            "experience": x,
            "school": school,
        }
    )
    # the truth of the leaving difference within 2 years, over this sample's participants
    xt = x[d]
    f = [
        1 - np.prod(1 - expit(ALPHA_T[None, :2] + BETA * arm + GAMMA * xt[:, None]), axis=1)
        for arm in (1, 0)
    ]
    return frame, float(np.mean(f[0] - f[1]))


def _discrete_run(replications, seed):
    rng = np.random.default_rng(seed)
    spec = DiscreteTimeHazard(
        duration="years",
        event="left",
        treatment="cpd",
        covariates=("experience",),
        cluster="school",
        horizons=(2,),
    )
    est, se, diff, diff_se, truths = [], [], [], [], []
    for _ in range(replications):
        frame, truth = _discrete_sample(rng)
        res = spec.fit(frame)
        est.append(res.params["cpd"])
        se.append(res.std_errors["cpd"])
        diff.append(res.differences["estimate"].iloc[0])
        diff_se.append(res.differences["std_error"].iloc[0])
        truths.append(truth)
    df = 79  # 80 schools: t on G - 1, as the estimator's intervals
    _check(est, se, BETA, q=stats.t.ppf(0.975, df))
    # the leaving difference's truth varies a little with the sample: centre each draw on its own
    errors = np.asarray(diff) - np.asarray(truths)
    _check(errors, diff_se, 0.0, q=stats.t.ppf(0.975, df))


def test_discrete_time_odds_ratio_and_leaving_difference():
    _discrete_run(150, seed=21)


@pytest.mark.slow
def test_discrete_time_odds_ratio_and_leaving_difference_large():
    _discrete_run(1500, seed=22)


# ---------------------------------------------------------------------- selection on experience
SEL_ALPHA = -1.2
SEL_GAMMA = -0.15  # experienced teachers leave less
FRAILTY_SD = 0.5
HORIZON = 2


def _selected_sample(rng, n_schools=100, per_school=16):
    school = np.repeat(np.arange(n_schools), per_school)
    x = rng.integers(0, 15, school.size).astype(float)
    # participation: early-career teachers far more often, and some schools more than others
    d = rng.random(school.size) < expit(1.2 - 0.3 * x + rng.normal(0, 0.5, n_schools)[school])
    v = rng.normal(0, FRAILTY_SD, n_schools)[school]
    h = expit(SEL_ALPHA + BETA * d + SEL_GAMMA * x + v)
    leaves = rng.random((school.size, 4)) < h[:, None]
    first = np.where(leaves.any(axis=1), leaves.argmax(axis=1) + 1, 0)
    left = first > 0
    return pd.DataFrame(
        {
            "teacher": np.arange(school.size),
            "years": np.where(left, first, 4),
            "left": left.astype(int),
            "cpd": d.astype(int),
            "experience": x,
            "school": school,
        }
    )


def _selected_truth() -> float:
    """Effect on the participants' share in post at 2 years: quadrature over the frailty (and,
    for the participants' experience, over the school propensity effect)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    weights = weights / weights.sum()
    x = np.arange(15.0)
    # P(D = 1 | x), integrating the school effect on participation
    p_d = (expit(1.2 - 0.3 * x[:, None] + 0.5 * nodes[None, :]) * weights).sum(axis=1)
    share = p_d / p_d.sum()  # x uniform: the participants' experience distribution
    effect = 0.0
    for arm, sign in ((1, 1.0), (0, -1.0)):
        h = expit(SEL_ALPHA + BETA * arm + SEL_GAMMA * x[:, None] + FRAILTY_SD * nodes[None, :])
        stay = ((1 - h) ** HORIZON * weights).sum(axis=1)
        effect += sign * float(share @ stay)
    return effect


def _selected_run(replications, seed):
    rng = np.random.default_rng(seed)
    truth = _selected_truth()
    naive = KaplanMeier(
        duration="years", event="left", treatment="cpd", cluster="school", horizons=(HORIZON,)
    )
    weighted = KaplanMeier(
        duration="years",
        event="left",
        treatment="cpd",
        cluster="school",
        horizons=(HORIZON,),
        weights="weight",
    )
    matching = CoarsenedExactMatching(
        covariates=("experience",),
        cutpoints={"experience": 0},
        treatment="cpd",
        unit="teacher",
    )
    results = {"naive": ([], []), "weighted": ([], [])}
    for _ in range(replications):
        frame = _selected_sample(rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CpdImpactWarning)
            matched = matching.fit(frame).attach(frame, unit="teacher")
        for name, spec, data in (("naive", naive, frame), ("weighted", weighted, matched)):
            res = spec.fit(data).differences  # the headline row, without the tidy table
            results[name][0].append(res["estimate"].iloc[0])
            results[name][1].append(res["std_error"].iloc[0])
    naive_est = np.asarray(results["naive"][0])
    mc_se = naive_est.std(ddof=1) / np.sqrt(replications)
    # participants are less experienced and would leave more: the naive comparison hides
    # much of the effect
    assert naive_est.mean() - truth < -8 * mc_se, (naive_est.mean(), truth)
    _check(*results["weighted"], truth)


def test_selection_on_experience_naive_biased_weighted_not():
    _selected_run(120, seed=31)


@pytest.mark.slow
def test_selection_on_experience_naive_biased_weighted_not_large():
    _selected_run(1000, seed=32)
