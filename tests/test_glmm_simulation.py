"""Simulation with known truth: the treatment log-odds ratio of a cluster-randomised trial
analysed with a logistic multilevel model (small in CI; the full run is marked slow)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from cpdimpact.multilevel import MultilevelModel

TRUTH = 0.5  # the conditional (school-specific) log-odds ratio of treatment


def _trial(rng, n_school=40, n_pupil=20, school_sd=0.5):
    school = np.repeat(np.arange(n_school), n_pupil)
    treat = (rng.permutation(n_school) < n_school // 2).astype(float)[school]
    prior = rng.normal(size=school.size)
    eta = -0.4 + 0.8 * prior + TRUTH * treat + rng.normal(0, school_sd, n_school)[school]
    y = (rng.random(school.size) < special.expit(eta)).astype(float)
    return pd.DataFrame({"y": y, "prior": prior, "treat": treat, "school": school})


def _run(replications, seed, **sizes):
    rng = np.random.default_rng(seed)
    model = MultilevelModel(
        outcome="y", covariates=("prior", "treat"), groups=("school",), family="binomial"
    )
    estimates, covered = [], []
    for _ in range(replications):
        row = model.fit(_trial(rng, **sizes)).to_frame().set_index("term").loc["treat"]
        estimates.append(row["estimate"])
        covered.append(row["ci_lower"] <= TRUTH <= row["ci_upper"])
    return np.array(estimates), np.array(covered)


def _check(estimates, covered):
    r = estimates.size
    # Bias: the mean within 3.5 Monte Carlo standard errors of the truth.
    mc_se = estimates.std(ddof=1) / np.sqrt(r)
    assert abs(estimates.mean() - TRUTH) < 3.5 * mc_se + 0.02
    # Coverage of the 95% Wald interval: no fewer hits than a 0.1% binomial tail allows.
    assert covered.sum() >= stats.binom.ppf(0.001, r, 0.95)


def test_treatment_log_odds_ratio_small():
    estimates, covered = _run(12, seed=2024, n_school=30, n_pupil=20)
    _check(estimates, covered)


@pytest.mark.slow
def test_treatment_log_odds_ratio_full():
    estimates, covered = _run(300, seed=17)
    _check(estimates, covered)
    assert abs(covered.mean() - 0.95) < 0.035
