"""Sensitivity analysis (Rambachan & Roth 2023) of imputation fits (Borusyak, Jaravel & Spiess).

``sensitivity(ImputationResult)`` reads the fit's placebo event study: the imputation estimator
refitted with the start moved ``pretrend_leads`` periods earlier, every event time less the one
before the start, with the joint covariance of the BJS Theorem 3 influence sums. Here the
placebo estimates and their covariance are rebuilt by brute force (dense dummies, numpy least
squares, Theorem 3 written out), checked against the TWFE event study computed by plain OLS
where the two coincide (one start, never-treated units, a balanced panel), and simulations with
a known truth check coverage under parallel trends and under a linear difference in trends.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from cpdimpact.did import ImputationDiD, sensitivity, sensitivity_from_estimates
from cpdimpact.errors import CpdImpactWarning, DesignError


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        return fn(*args, **kwargs)


def _panel(rng, *, starts, n_units, n_years=8, slope=0.0, effect=1.0, growth=0.0):
    """Balanced panel, years 1..n_years, start ``starts[u % len(starts)]`` (0 never treated).

    Untreated outcomes are unit + year effects + N(0, 1) noise plus, for ever-treated units,
    ``slope`` per year (a linear difference in trends); the effect at event time e >= 0 is
    ``effect + growth * e``.
    """
    unit, year = np.divmod(np.arange(n_units * n_years), n_years)
    year = year + 1
    start = np.asarray(starts)[unit % len(starts)]
    e = year - start
    treated = (start > 0) & (e >= 0)
    y = (
        rng.normal(0, 1, n_units)[unit]
        + np.sin(year)
        + slope * (start > 0) * year
        + np.where(treated, effect + growth * e, 0.0)
        + rng.normal(0, 1, unit.size)
    )
    return pd.DataFrame({"unit": unit, "year": year, "first_treated": start, "outcome": y})


def _by_hand(df: pd.DataFrame, leads: int, anticipation: int = 0):
    """Placebo event study by brute force: dense unit and year dummies, least squares on the
    rows before the start moved ``anticipation + leads`` periods earlier, BJS Theorem 3 written
    out (clusters = units, auxiliary averages by cohort x year cell), then every event time less
    the one before the anticipation window.
    Returns event times, estimates and covariance (reference omitted)."""
    y = df["outcome"].to_numpy(float)
    g = df["first_treated"].to_numpy()
    t = df["year"].to_numpy()
    u = df["unit"].to_numpy()
    e = t - g
    target = (g > 0) & (t >= g - anticipation - leads)
    years = np.unique(t)
    units = np.unique(u)
    design = np.column_stack(
        [(u[:, None] == units).astype(float), (t[:, None] == years[1:]).astype(float)]
    )
    a0, a1, y0 = design[~target], design[target], y[~target]
    coef, *_ = np.linalg.lstsq(a0, y0, rcond=None)
    resid0 = y0 - a0 @ coef
    tau = y[target] - a1 @ coef
    e1, u1, u0 = e[target], u[target], u[~target]
    cell = g[target] * 10_000 + t[target]
    bread = np.linalg.pinv(a0.T @ a0)
    horizons = np.arange(-anticipation - leads, e1.max() + 1)
    estimates, psis = [], []
    for h in horizons:
        w1 = (e1 == h) / np.count_nonzero(e1 == h)
        estimates.append(w1 @ tau)
        v0 = -a0 @ bread @ a1.T @ w1
        eps1 = tau.copy()
        for c in np.unique(cell[e1 == h]):
            in_cell = cell == c
            a = np.array([w1[in_cell & (u1 == k)].sum() for k in units])
            b = np.array([(w1 * tau)[in_cell & (u1 == k)].sum() for k in units])
            eps1[in_cell] = tau[in_cell] - (a @ b) / (a @ a)
        psi = np.array([(v0 * resid0)[u0 == k].sum() + (w1 * eps1)[u1 == k].sum() for k in units])
        psis.append(psi)
    estimates, psi = np.array(estimates), np.column_stack(psis)
    ref = int(np.flatnonzero(horizons == -anticipation - 1)[0])
    keep = horizons != -anticipation - 1
    beta = estimates[keep] - estimates[ref]
    psi = psi[:, keep] - psi[:, [ref]]
    return horizons[keep], beta, psi.T @ psi


def _twfe_event_study(df: pd.DataFrame, times) -> np.ndarray:
    """Plain OLS of the outcome on unit and year dummies and one dummy per event time of the
    treated units except -1 (every event time of the panel: the fully dynamic specification)."""
    g = df["first_treated"].to_numpy()
    t = df["year"].to_numpy()
    u = df["unit"].to_numpy()
    e = np.where(g > 0, t - g, -1)
    all_e = np.setdiff1d(np.unique(e[g > 0]), [-1])
    x = np.column_stack(
        [
            (u[:, None] == np.unique(u)).astype(float),
            (t[:, None] == np.unique(t)[1:]).astype(float),
            ((e[:, None] == all_e) & (g[:, None] > 0)).astype(float),
        ]
    )
    coef, *_ = np.linalg.lstsq(x, df["outcome"].to_numpy(float), rcond=None)
    coef = coef[-all_e.size :]
    return np.array([coef[np.flatnonzero(all_e == k)[0]] for k in times])


STAGGERED = dict(starts=[0, 5, 7, 0, 6], n_units=40)


@pytest.mark.parametrize(
    ("leads", "anticipation", "times"),
    [(3, 0, [-3, -2, 0, 1, 2, 3]), (2, 1, [-3, -1, 0, 1, 2, 3])],
)
def test_placebo_event_study_equals_a_brute_force_computation(leads, anticipation, times):
    df = _panel(np.random.default_rng(3), **STAGGERED, growth=0.3)
    spec = ImputationDiD(pretrend_leads=leads, anticipation=anticipation)
    res = _quiet(spec.fit, df)
    hand_times, beta, sigma = _by_hand(df, leads, anticipation)
    placebo = res.placebo
    assert placebo.reference == -anticipation - 1
    assert placebo.estimates.index.tolist() == hand_times.tolist() == times
    np.testing.assert_allclose(placebo.estimates["estimate"], beta, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(placebo.cov.to_numpy(), sigma, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(placebo.estimates["std_error"], np.sqrt(np.diag(sigma)), rtol=1e-9)
    # the fit's own estimates are untouched: the placebo fit is separate
    plain = _quiet(ImputationDiD(anticipation=anticipation).fit, df)
    pd.testing.assert_frame_equal(res.event_study, plain.event_study)
    assert plain.placebo is None and "pretrend_leads >= 2" in plain.placebo_note


@pytest.mark.parametrize("leads", [2, 3, 4])
def test_without_staggering_the_placebo_event_study_is_the_twfe_event_study(leads):
    # one start (year 6), never-treated units, balanced: p_e - p_{-1} is the TWFE coefficient
    df = _panel(np.random.default_rng(leads), starts=[0, 6], n_units=30, growth=0.2)
    res = _quiet(ImputationDiD(pretrend_leads=leads).fit, df)
    times = res.placebo.estimates.index.to_numpy()
    assert times.tolist() == [*range(-leads, -1), 0, 1, 2]
    np.testing.assert_allclose(
        res.placebo.estimates["estimate"], _twfe_event_study(df, times), rtol=1e-9, atol=1e-12
    )


@pytest.mark.parametrize(
    "options",
    [
        {"restriction": "smoothness", "bounds": [0.0, 0.05, 0.2]},
        {"restriction": "relative_magnitude", "bounds": [0.5, 1.0]},
        {"restriction": "smoothness", "bounds": [0.0, 0.1], "target": "average_post"},
    ],
)
def test_sensitivity_of_an_imputation_fit_equals_the_hand_built_inputs(options):
    df = _panel(np.random.default_rng(5), **STAGGERED, growth=0.3)
    res = _quiet(ImputationDiD(pretrend_leads=3).fit, df)
    times, beta, sigma = _by_hand(df, 3)
    got = sensitivity(res, breakdown=False, **options)
    want = sensitivity_from_estimates(beta, sigma, event_times=times, breakdown=False, **options)
    pd.testing.assert_frame_equal(got.table, want.table, rtol=1e-7)
    assert got.pre_event_times == (-3, -2) and got.post_event_times == (0, 1, 2, 3)
    assert any("placebo event study" in note for note in got.notes)


def test_sensitivity_explains_when_there_is_no_placebo_event_study():
    df = _panel(np.random.default_rng(6), **STAGGERED)
    with pytest.raises(DesignError, match="pretrend_leads >= 2"):
        sensitivity(_quiet(ImputationDiD(pretrend_leads=1).fit, df))


def test_placebo_event_study_drops_units_without_a_row_before_the_moved_start():
    # starts in years 4 and 7: with three leads the year-4 units have no untreated row left,
    # so the placebo event study rests on the year-7 units and stops at their last event time
    df = _panel(np.random.default_rng(7), starts=[0, 4, 7], n_units=30)
    res = _quiet(ImputationDiD(pretrend_leads=3).fit, df)
    assert res.event_study["event_time"].max() == 4
    placebo = res.placebo
    assert placebo.estimates.index.tolist() == [-3, -2, 0, 1]
    assert placebo.n_dropped == 10 * 8
    assert any("stops at event time 1" in note for note in placebo.notes)
    got = sensitivity(res, restriction="smoothness", bounds=[0.0], breakdown=False)
    assert got.post_event_times == (0, 1)


# --------------------------------------------------------------------------- simulations
def _coverage(n_reps, seed, *, slope, starts, n_units, leads):
    """Share of replications whose intervals hold the true effect at event time 0 (1.0):
    the fit's own (BJS) interval, the placebo event study's conventional interval and the
    smoothness interval at M = 0 (linear extrapolation of the pre-period trend)."""
    rng = np.random.default_rng(seed)
    hits = np.zeros(3)
    error = []
    for _ in range(n_reps):
        df = _panel(rng, starts=starts, n_units=n_units, slope=slope, growth=0.2)
        res = _quiet(ImputationDiD(pretrend_leads=leads).fit, df)
        own = res.event_study.set_index("event_time").loc[0]
        sens = sensitivity(res, restriction="smoothness", bounds=[0.0], breakdown=False).table
        error.append(res.placebo.estimates.loc[0, "estimate"] - 1.0)
        hits += [
            own["ci_lower"] <= 1.0 <= own["ci_upper"],
            sens["ci_lower"].iloc[0] <= 1.0 <= sens["ci_upper"].iloc[0],
            sens["ci_lower"].iloc[1] <= 1.0 <= sens["ci_upper"].iloc[1],
        ]
    return hits / n_reps, np.asarray(error)


def _mc_bounds(n_reps, p=0.95, z=3.5):
    se = np.sqrt(p * (1 - p) / n_reps)
    return p - z * se, p + z * se


def _check_parallel_trends(n_reps, seed, n_units=50):
    cover, error = _coverage(
        n_reps, seed, slope=0.0, starts=[0, 5, 7, 0, 6], n_units=n_units, leads=3
    )
    low, high = _mc_bounds(n_reps)
    # under parallel trends all three hold the truth about 95% of the time
    assert np.all(cover >= low), cover
    assert np.all(cover <= high), cover
    # and the placebo event study's first post-period estimate is unbiased
    assert abs(error.mean()) < 3.5 * error.std(ddof=1) / np.sqrt(n_reps)


def _check_linear_trend(n_reps, seed, n_units=60):
    # one start (year 6), never-treated units: treated units' untreated outcomes rise 0.8 a
    # year faster, so the fit's estimate at event time 0 is biased by 0.8 x 3 (the average of
    # its five pre-periods lies 3 years back) and the placebo's by 0.8 (one year back)
    cover, _ = _coverage(n_reps, seed, slope=0.8, starts=[0, 6], n_units=n_units, leads=4)
    low, high = _mc_bounds(n_reps)
    assert cover[0] < 0.1, cover  # the fit's own interval misses
    assert cover[1] < 0.7, cover  # so does the conventional one
    assert low <= cover[2] <= high, cover  # Delta^SD(0) extrapolates the pre-trend: covers


def test_coverage_under_parallel_trends():
    _check_parallel_trends(60, 11)


def test_smoothness_at_zero_recovers_coverage_under_a_linear_difference_in_trends():
    _check_linear_trend(60, 12)


@pytest.mark.slow
def test_coverage_under_parallel_trends_large():
    _check_parallel_trends(1000, 21, n_units=100)


@pytest.mark.slow
def test_smoothness_at_zero_recovers_coverage_large():
    _check_linear_trend(1000, 22, n_units=120)
