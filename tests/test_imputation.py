"""Tests of cpdimpact.did.imputation (Borusyak, Jaravel & Spiess 2024).

Reference values come from ``diff_diff.ImputationDiD`` 3.13 (``tests/reference/imputation/``);
the point estimates, the Theorem 3 variance and the Test 1 regression are also rebuilt here by
brute force (dense dummies, statsmodels), and simulations check bias and coverage against a
known truth.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from cpdimpact._results import TIDY_COLUMNS
from cpdimpact.did.imputation import ImputationDiD
from cpdimpact.errors import (
    CpdImpactWarning,
    DesignError,
    DuplicateRowsError,
    EmptyComparisonGroupError,
    EstimationError,
    FewClustersWarning,
    InvalidValueError,
    MissingColumnError,
    SmallSampleWarning,
)

REF = Path(__file__).parent / "reference" / "imputation"
REFERENCE = json.loads((REF / "reference.json").read_text())


def _data(name: str) -> pd.DataFrame:
    if name == "mpdta":
        return pd.read_csv(REF.parent / "mpdta" / "mpdta.csv")
    return pd.read_csv(REF / f"{name}.csv")


def _spec(case: dict, **extra) -> ImputationDiD:
    o = case["options"]
    return ImputationDiD(
        outcome=o["outcome"],
        unit=o["unit"],
        time=o["time"],
        first_treated=o["first_treated"],
        covariates=o["covariates"],
        cluster=o["cluster"],
        anticipation=o["anticipation"],
        weights=o["weights"],
        pretrend_leads=case.get("pretrend", {}).get("leads", 0),
        **extra,
    )


def _fit_quiet(spec: ImputationDiD, data: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        return spec.fit(data)


# ---------------------------------------------------------------------- brute force
def dense_bjs(
    df: pd.DataFrame,
    *,
    outcome="outcome",
    unit="unit",
    time="year",
    first="first_treated",
    covariates=(),
    weights=None,
    cluster=None,
    anticipation=0,
    aux_within=(),
) -> dict:
    """Theorem 2 and 3 with dense dummy matrices and a pseudo-inverse (no shortcuts).

    Returns ``{"tau": ..., term: (estimate, se), ...}`` with the eq. (8) sums formed within
    clusters (cpdimpact, Stata), plus ``{column: {term: (estimate, se)}}`` for each column of
    ``aux_within`` (the unit column reproduces diff_diff). Treated rows that cannot be imputed
    are dropped first, as cpdimpact does.
    """
    cluster = cluster or unit
    g = df[first].fillna(0).to_numpy(float)
    t = df[time].to_numpy(float)
    treated = (g != 0) & (t >= g - anticipation)
    untreated = ~treated
    ok = treated & df[unit].isin(df.loc[untreated, unit]) & df[time].isin(df.loc[untreated, time])
    df = df[untreated | ok].reset_index(drop=True)
    treated = treated[untreated | ok]
    units = pd.get_dummies(df[unit]).to_numpy(float)
    periods = pd.get_dummies(df[time]).to_numpy(float)[:, 1:]
    a = np.column_stack([units, periods, df[list(covariates)].to_numpy(float)])
    y = df[outcome].to_numpy(float)
    w = np.ones(len(df)) if weights is None else df[weights].to_numpy(float)
    a0, a1, y0, y1, w0, w1 = (
        a[~treated],
        a[treated],
        y[~treated],
        y[treated],
        w[~treated],
        w[treated],
    )
    # (A0'W0A0)^+ = B^+ B^+' with B = W0^(1/2) A0: no squared condition number.
    b_plus = np.linalg.pinv(np.sqrt(w0)[:, None] * a0)
    theta = b_plus @ (np.sqrt(w0) * y0)
    tau = y1 - a1 @ theta
    eps0 = y0 - a0 @ theta
    rows1 = df[treated].reset_index(drop=True)
    event = (rows1[time] - rows1[first]).to_numpy()
    targets = {"ATT": np.ones(len(rows1), dtype=bool)}
    targets |= {f"event_time={e}": event == e for e in np.unique(event)}
    out = {"tau": tau, **{column: {} for column in aux_within}}
    for name, mask in targets.items():
        v1 = np.where(mask, w1, 0.0)
        v1 = v1 / v1.sum()
        v0 = -w0 * (a0 @ (b_plus @ (b_plus.T @ (a1.T @ v1))))
        for column in (cluster, *aux_within):
            frame = pd.DataFrame(
                {
                    "cell": rows1[first].astype(str) + "/" + rows1[time].astype(str),
                    "aux": rows1[column],
                    "v": v1,
                    "vt": v1 * tau,
                }
            )
            per = frame.groupby(["cell", "aux"])[["v", "vt"]].sum()
            per["ab"], per["aa"] = per["v"] * per["vt"], per["v"] ** 2
            cells = per.groupby(level="cell")[["ab", "aa"]].sum()
            tilde = (cells["ab"] / cells["aa"]).fillna(0.0)
            eps1 = tau - frame["cell"].map(tilde).to_numpy()
            psi = pd.concat(
                [
                    pd.Series(v0 * eps0, index=df.loc[~treated, cluster].to_numpy()),
                    pd.Series(v1 * eps1, index=rows1[cluster].to_numpy()),
                ]
            )
            psi = psi.groupby(level=0).sum()
            value = (float(v1 @ tau), float(np.sqrt((psi**2).sum())))
            (out if column == cluster else out[column])[name] = value
    return out


def _tiny_panel(seed: int = 0, *, n_units: int = 42, covariate: bool = False) -> pd.DataFrame:
    """42 units x 6 years, cohorts 2018 and 2020 and never treated, dynamic effects."""
    rng = np.random.default_rng(seed)
    years = np.arange(2015, 2021)
    first = np.array([0, 2018, 2020])[np.arange(n_units) % 3]
    unit = np.repeat(np.arange(n_units), years.size)
    year = np.tile(years, n_units)
    g = first[unit]
    e = year - g
    effect = np.where((g > 0) & (e >= 0), 1.0 + 0.5 * e + 0.2 * (g == 2020), 0.0)
    df = pd.DataFrame({"unit": unit, "year": year, "first_treated": g})
    df["x"] = rng.normal(0, 1, len(df)) + 0.1 * year * (g > 0)
    df["w"] = rng.uniform(0.5, 3.0, len(df))  # varies within units
    df["area"] = unit % 5
    df["outcome"] = (
        rng.normal(0, 1, n_units)[unit]
        + 0.3 * (year - 2015)
        + (0.7 * df["x"] if covariate else 0)
        + effect
        + rng.normal(0, 1, len(df))
    )
    return df


# ---------------------------------------------------------------------- references
CASES = sorted(REFERENCE["cases"])


@pytest.mark.parametrize("name", CASES)
def test_against_diff_diff(name):
    """Estimates agree to 1e-8 everywhere; SEs where the variance definitions coincide."""
    case = REFERENCE["cases"][name]
    res = _fit_quiet(_spec(case), _data(case["data"]))
    peer = pd.DataFrame(case["event_study"]).set_index("event_time")
    peer = peer[np.isfinite(peer["estimate"])]  # diff_diff's NaN horizons: see no-never case
    ours = res.event_study.set_index("event_time")
    assert list(ours.index) == list(peer.index)
    np.testing.assert_allclose(res.estimate, case["overall"]["estimate"], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours["estimate"], peer["estimate"], rtol=1e-8, atol=1e-10)
    assert list(ours["n_obs"]) == list(peer["n_finite"])
    assert res.n_treated_obs == case["n_treated_finite"]
    assert res.n_untreated_obs == case["n_untreated_obs"]
    se, se_es = res.std_error, ours["std_error"].to_numpy()
    if case["options"]["weights"]:
        # diff_diff's survey variance: G/(G-1) * sum_c (psi_c - mean psi)^2 (module docstring).
        psi = res.influence.to_numpy()
        g = psi.shape[0]
        transformed = np.sqrt(g / (g - 1) * ((psi - psi.mean(axis=0)) ** 2).sum(axis=0))
        se, se_es = transformed[0], transformed[1:]
    if case["options"]["cluster"] not in (None, case["options"]["unit"]):
        # Documented convention: eq. (8) sums within clusters here, within units in diff_diff.
        assert not np.isclose(se, case["overall"]["std_error"], rtol=1e-6)
        np.testing.assert_allclose(se, case["overall"]["std_error"], rtol=0.01)
        return
    np.testing.assert_allclose(se, case["overall"]["std_error"], rtol=1e-8)
    np.testing.assert_allclose(se_es, peer["std_error"], rtol=1e-8)


@pytest.mark.parametrize("name", [n for n in CASES if "pretrend" in REFERENCE["cases"][n]])
def test_pretrend_against_diff_diff(name):
    case = REFERENCE["cases"][name]
    ref = case["pretrend"]
    pre = _fit_quiet(_spec(case), _data(case["data"])).pretrend
    np.testing.assert_allclose(pre.leads["estimate"], ref["estimate"], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(pre.leads["std_error"], ref["std_error"], rtol=1e-8)
    assert list(pre.leads["event_time"]) == ref["event_times"]
    np.testing.assert_allclose(pre.statistic, ref["statistic"], rtol=1e-8)
    np.testing.assert_allclose(pre.p_value, ref["p_value"], rtol=1e-7)
    assert (pre.df, pre.df_denom) == (ref["df"], ref["df_denom"])


def test_coarser_clusters_differ_from_diff_diff_only_by_the_eq8_sums():
    """With state clusters, dense BJS with eq. (8) sums within units reproduces diff_diff and
    with sums within clusters reproduces cpdimpact: the convention is the whole difference."""
    case = REFERENCE["cases"]["never_state_clusters"]
    data = _data(case["data"])
    res = _fit_quiet(_spec(case), data)
    as_ours = dense_bjs(data, covariates=["x"], cluster="state", aux_within=("unit",))
    as_peer = as_ours["unit"]
    terms = res.to_frame()["term"]
    peer = [case["overall"]["std_error"]] + [h["std_error"] for h in case["event_study"]]
    np.testing.assert_allclose([as_peer[t][1] for t in terms], peer, rtol=1e-8)
    np.testing.assert_allclose(
        [as_ours[t][1] for t in terms], res.to_frame()["std_error"], rtol=1e-8
    )


def test_no_never_treated_drops_unidentified_periods():
    """Without never-treated units the periods from the last cohort's start have no untreated
    row (BJS Proposition 5): diff_diff reports those horizons as NaN, cpdimpact drops and
    counts the rows and omits the horizons."""
    case = REFERENCE["cases"]["notyet"]
    data = _data("staggered_notyet")
    with pytest.warns(SmallSampleWarning, match="Proposition 5"):
        res = _spec(case).fit(data)
    nan_horizons = [h["event_time"] for h in case["event_study"] if np.isnan(h["estimate"])]
    assert nan_horizons == [4, 5, 6]
    assert not set(nan_horizons) & set(res.event_study["event_time"])
    dropped = case["n_treated_obs"] - case["n_treated_finite"]
    assert res.n_dropped == dropped == 844
    assert any(f"{dropped} treated rows in periods 2017, 2018, 2019" in n for n in res.notes)


# ---------------------------------------------------------------------- brute force
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"covariates": ["x"]},
        {"covariates": ["x"], "weights": "w"},
        {"cluster": "area"},
        {"covariates": ["x"], "weights": "w", "cluster": "area", "anticipation": 1},
    ],
    ids=["plain", "covariate", "weighted", "area-clusters", "all"],
)
def test_dense_brute_force_on_a_tiny_panel(options):
    data = _tiny_panel(3, covariate=True)
    res = _fit_quiet(ImputationDiD(**options), data)
    dense = dense_bjs(data, **options)
    np.testing.assert_allclose(res.treatment_effects["tau"], dense["tau"], rtol=1e-9, atol=1e-12)
    frame = res.to_frame().set_index("term")
    del dense["tau"]
    assert sorted(frame.index) == sorted(dense)
    for term, (estimate, se) in dense.items():
        np.testing.assert_allclose(frame.loc[term, "estimate"], estimate, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(frame.loc[term, "std_error"], se, rtol=1e-9)


def test_point_estimates_against_statsmodels_dummies():
    """Step 1 as statsmodels WLS with unit and year dummies on untreated rows; step 2 predicts."""
    data = _tiny_panel(5, covariate=True)
    treated = (data["first_treated"] > 0) & (data["year"] >= data["first_treated"])
    design = pd.get_dummies(data[["unit", "year"]].astype(str), drop_first=True, dtype=float)
    design = sm.add_constant(design.assign(x=data["x"]))
    fit = sm.WLS(data["outcome"][~treated], design[~treated], weights=data["w"][~treated]).fit()
    tau = data["outcome"][treated] - fit.predict(design[treated])
    res = ImputationDiD(covariates=["x"], weights="w").fit(data)
    np.testing.assert_allclose(res.treatment_effects["tau"], tau, rtol=1e-9, atol=1e-12)
    w1 = data["w"][treated]
    np.testing.assert_allclose(res.estimate, np.average(tau, weights=w1), rtol=1e-10)
    e = (data["year"] - data["first_treated"])[treated]
    by_e = (tau * w1).groupby(e).sum() / w1.groupby(e).sum()
    np.testing.assert_allclose(res.event_study["estimate"], by_e.to_numpy(), rtol=1e-10)


def test_pretrend_against_statsmodels_cluster_robust():
    """Test 1 = statsmodels OLS with dummies and leads on untreated rows, cluster-robust; its
    CR1 factor counts the unit dummies in K, cpdimpact's does not (units nested in clusters)."""
    data = _tiny_panel(7, n_units=30)
    g, year = data["first_treated"], data["year"]
    untreated = (g == 0) | (year < g)
    rows = data[untreated].reset_index(drop=True)
    leads = {
        f"lead{k}": ((rows["first_treated"] > 0) & (rows["year"] == rows["first_treated"] - k))
        for k in (1, 2)
    }
    design = pd.get_dummies(rows[["unit", "year"]].astype(str), drop_first=True, dtype=float)
    design = sm.add_constant(design.assign(**{k: v.astype(float) for k, v in leads.items()}))
    fit = sm.OLS(rows["outcome"], design).fit(cov_type="cluster", cov_kwds={"groups": rows["unit"]})
    n, k_sm, k_ours = len(rows), design.shape[1], 1 + 5 + 2  # constant, 5 years, 2 leads
    cov = fit.cov_params().loc[list(leads), list(leads)] * (n - k_sm) / (n - k_ours)
    b = fit.params[list(leads)].to_numpy()
    f_stat = b @ np.linalg.solve(cov, b) / 2
    pre = _fit_quiet(ImputationDiD(pretrend_leads=2), data).pretrend
    np.testing.assert_allclose(pre.leads["estimate"], b, rtol=1e-9)
    np.testing.assert_allclose(pre.leads["std_error"], np.sqrt(np.diag(cov)), rtol=1e-9)
    np.testing.assert_allclose(pre.statistic, f_stat, rtol=1e-9)
    assert pre.p_value == pytest.approx(stats.f.sf(f_stat, 2, 29), rel=1e-8)


def test_pupil_rows_equal_school_year_means_weighted_by_pupils():
    """Regressors constant within school-years: step 1 on pupils equals step 1 on means weighted
    by pupil counts, and so do the averages and the per-cluster sums of the variance."""
    pupils = _data("pupils")
    means = pupils.groupby(["school", "year"], as_index=False).agg(
        outcome=("outcome", "mean"),
        n_pupils=("outcome", "size"),
        first_treated=("first_treated", "first"),
    )
    a = ImputationDiD(unit="school").fit(pupils)
    b = ImputationDiD(unit="school", weights="n_pupils").fit(means)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame(), rtol=1e-10)
    assert a.n_obs == len(pupils) and b.n_obs == len(means)


def test_imputation_weights_balance_within_units_and_periods():
    """The estimator's weights v (treated: w; untreated: imputation weights) add up to zero in
    every unit and period (Stata did_imputation help), checked through the linearity of tau_w:
    adding a unit or period indicator to the outcome leaves every estimate unchanged."""
    data = _tiny_panel(11)
    base = ImputationDiD().fit(data).to_frame()
    for column, level in (("unit", 4), ("year", 2019)):
        moved = ImputationDiD().fit(data.assign(outcome=data["outcome"] + (data[column] == level)))
        np.testing.assert_allclose(moved.to_frame()["estimate"], base["estimate"], atol=1e-12)


# ---------------------------------------------------------------------- properties
@settings(max_examples=20, deadline=None)
@given(
    unit_shift=st.lists(st.floats(-50, 50), min_size=42, max_size=42),
    time_shift=st.lists(st.floats(-50, 50), min_size=6, max_size=6),
)
def test_unit_and_period_constants_leave_every_tau_unchanged(unit_shift, time_shift):
    data = _tiny_panel(1, covariate=True)
    shifted = data.assign(
        outcome=data["outcome"]
        + np.asarray(unit_shift)[data["unit"]]
        + np.asarray(time_shift)[data["year"] - 2015]
    )
    spec = ImputationDiD(covariates=["x"], pretrend_leads=1)
    base, moved = spec.fit(data), spec.fit(shifted)
    np.testing.assert_allclose(
        moved.treatment_effects["tau"], base.treatment_effects["tau"], atol=1e-9
    )
    np.testing.assert_allclose(
        moved.to_frame()["std_error"], base.to_frame()["std_error"], rtol=1e-8
    )
    np.testing.assert_allclose(moved.pretrend.statistic, base.pretrend.statistic, rtol=1e-8)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_row_order_never_matters(seed):
    data = _tiny_panel(2, covariate=True)
    shuffled = data.sample(frac=1, random_state=np.random.RandomState(seed % 2**32))
    spec = ImputationDiD(covariates=["x"], weights="w", cluster="area", pretrend_leads=1)
    a, b = _fit_quiet(spec, data), _fit_quiet(spec, shuffled)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame(), rtol=1e-12)
    pd.testing.assert_frame_equal(
        a.treatment_effects, b.treatment_effects.loc[a.treatment_effects.index], rtol=1e-12
    )
    assert a.pretrend.statistic == pytest.approx(b.pretrend.statistic, rel=1e-12)


def test_input_untouched_and_result_faces():
    data = _tiny_panel(4)
    before = data.copy()
    res = ImputationDiD(pretrend_leads=2).fit(data)
    pd.testing.assert_frame_equal(data, before)
    frame = res.to_frame()
    assert tuple(frame.columns) == TIDY_COLUMNS
    assert frame["term"].tolist() == ["ATT"] + [f"event_time={e}" for e in range(3)]
    assert list(res.event_study.columns) == [
        "event_time",
        "estimate",
        "std_error",
        "ci_lower",
        "ci_upper",
        "n_obs",
    ]
    np.testing.assert_allclose(np.sqrt(np.diag(res.vcov())), frame["std_error"], rtol=1e-12)
    ci = res.conf_int(0.1)
    assert ci.loc["ATT", "ci_lower"] == pytest.approx(res.estimate - 1.6448536 * res.std_error)
    assert res.df == np.inf and res.n_clusters == 42 and res.cluster == "unit"
    assert "Theorem 3" in res.cov_type and "42 clusters" in res.inference
    text = str(res.summary())
    assert "Imputation DiD" in text and "Test 1" in text
    assert "<table>" in res._repr_html_()
    assert res.plot().get_xlabel().startswith("event time")
    assert res.p_value == pytest.approx(2 * stats.norm.sf(abs(res.statistic)))
    with pytest.raises(AttributeError):
        res.estimate = 0.0


# ---------------------------------------------------------------------- known truth
def _simulate(rng, n_units=150):
    """Cohorts 2018/2020/2022 and never, effects growing with event time at cohort-specific
    rates plus unit-level noise in the effect; truth = mean effect over the treated rows."""
    years = np.arange(2015, 2025)
    first = rng.choice([0, 2018, 2020, 2022], size=n_units, p=[0.4, 0.2, 0.2, 0.2])
    unit = np.repeat(np.arange(n_units), years.size)
    year = np.tile(years, n_units)
    g = first[unit]
    e = year - g
    treated = (g > 0) & (e >= 0)
    rate = np.select([g == 2018, g == 2020], [0.4, 0.2], 0.1)
    effect = np.where(treated, 0.5 + rate * (e + 1) + rng.normal(0, 0.3, n_units)[unit], 0.0)
    y = rng.normal(0, 1, n_units)[unit] + 0.2 * (year - 2015) + effect + rng.normal(0, 1, unit.size)
    data = pd.DataFrame(
        {"unit": unit, "year": year, "first_treated": g, "outcome": y, "exposed": treated}
    )
    return data, effect[treated].mean()


def _twfe(data: pd.DataFrame) -> float:
    """Static TWFE coefficient; on a balanced panel the two-way within transformation
    ``z - mean_i - mean_t + mean`` is exact (Frisch-Waugh-Lovell)."""

    def within(z: pd.Series) -> np.ndarray:
        by_unit = z.groupby(data["unit"]).transform("mean")
        by_year = z.groupby(data["year"]).transform("mean")
        return (z - by_unit - by_year + z.mean()).to_numpy()

    d, y = within(data["exposed"].astype(float)), within(data["outcome"])
    return float(d @ y / (d @ d))


def _study(n_seeds: int, n_units: int) -> pd.DataFrame:
    rng = np.random.default_rng(2024)
    rows = []
    for _ in range(n_seeds):
        data, truth = _simulate(rng, n_units)
        res = ImputationDiD().fit(data)
        lower, upper = res.conf_int().loc["ATT"]
        rows.append(
            (res.estimate - truth, res.std_error, lower <= truth <= upper, _twfe(data) - truth)
        )
    return pd.DataFrame(rows, columns=["error", "std_error", "covered", "twfe_error"])


def test_unbiased_and_covering_where_twfe_is_biased():
    study = _study(20, 150)
    n = len(study)
    assert abs(study["error"].mean()) < 3 * study["error"].std() / np.sqrt(n)
    # Coverage is at least nominal (the variance is conservative): P(X <= 16 | n=20, p=0.95)
    # is about 1.6%, so 17 of 20 is the threshold.
    assert study["covered"].sum() >= 17
    # Effects that grow with event time make TWFE's forbidden comparisons subtract effects.
    assert study["twfe_error"].mean() < -5 * study["twfe_error"].std() / np.sqrt(n)


@pytest.mark.slow
def test_unbiased_and_covering_full_size():
    study = _study(1000, 400)
    n = len(study)
    assert abs(study["error"].mean()) < 3 * study["error"].std() / np.sqrt(n)
    # At least nominal coverage: below 0.935 has probability about 1.5% at n = 1000, p = 0.95.
    assert study["covered"].mean() >= 0.935
    # Conservative, not anti-conservative: the mean SE is not below the spread of the errors
    # (the SD of 1000 errors is known to about 2.2%).
    assert study["std_error"].mean() >= 0.95 * study["error"].std()
    assert study["twfe_error"].mean() < -10 * study["twfe_error"].std() / np.sqrt(n)


# ---------------------------------------------------------------------- bad input
def test_switching_treatment_is_refused():
    data = _tiny_panel()
    data.loc[(data["unit"] == 1) & (data["year"] == 2020), "first_treated"] = 0
    with pytest.raises(InvalidValueError, match="absorbing treatment") as info:
        ImputationDiD().fit(data)
    assert "units 1" in str(info.value)


def test_units_treated_in_every_period_are_dropped_counted_and_warned():
    data = _tiny_panel()
    data.loc[data["unit"].isin([1, 4]), "first_treated"] = 2015
    with pytest.warns(SmallSampleWarning, match="2 units are treated in every period"):
        res = ImputationDiD().fit(data)
    assert res.n_dropped == 12
    assert res.n_treated_obs + res.n_untreated_obs == len(data) - 12
    assert any("2 units are treated in every period" in note for note in res.notes)


def test_disconnected_untreated_rows_drop_the_rows_that_cannot_be_imputed():
    """Unit 0 is observed untreated only in 2015-16, when no other unit is: its treated 2017
    row cannot be linked to the 2017 period effect, estimated from the other units only."""
    rows = [(0, 2015, 2017), (0, 2016, 2017), (0, 2017, 2017)]
    rows += [(u, y, 0) for u in range(1, 5) for y in (2017, 2018, 2019)]
    rows += [(5, y, 2019) for y in (2017, 2018, 2019)]
    data = pd.DataFrame(rows, columns=["unit", "year", "first_treated"])
    data["outcome"] = np.random.default_rng(0).normal(size=len(data))
    with pytest.warns(SmallSampleWarning, match="split into 2 groups"):
        res = _fit_quiet_except_small(ImputationDiD(), data)
    assert res.n_dropped == 1 and res.n_treated_obs == 1
    assert res.treatment_effects["unit"].tolist() == [5]


def _fit_quiet_except_small(spec, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        return spec.fit(data)


def test_missing_columns_and_bad_values():
    data = _tiny_panel()
    with pytest.raises(MissingColumnError, match="first_treated='<name>'"):
        ImputationDiD().fit(data.drop(columns="first_treated"))
    with pytest.raises(MissingColumnError, match="'lpop'"):
        ImputationDiD(covariates=["lpop"]).fit(data)
    with pytest.raises(InvalidValueError, match="must be numeric"):
        ImputationDiD().fit(data.assign(year=data["year"].astype(str)))
    with pytest.raises(InvalidValueError, match="whole periods"):
        ImputationDiD().fit(data.assign(year=data["year"] + 0.5))
    with pytest.raises(InvalidValueError, match="whole periods"):
        ImputationDiD().fit(data.assign(first_treated=data["first_treated"] + 0.5))
    with pytest.raises(InvalidValueError, match="missing values"):
        ImputationDiD().fit(data.assign(outcome=data["outcome"].where(data.index != 3)))
    with pytest.raises(InvalidValueError, match="must be positive"):
        ImputationDiD(weights="w").fit(data.assign(w=data["w"] - 1))


def test_missing_first_treated_means_never_treated():
    data = _tiny_panel()
    a = ImputationDiD().fit(data)
    b = ImputationDiD().fit(data.assign(first_treated=data["first_treated"].replace(0, np.nan)))
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())


def test_duplicates_refused_on_unit_rows_allowed_on_pupil_rows():
    data = _tiny_panel()
    with pytest.raises(DuplicateRowsError, match="look unit level"):
        ImputationDiD().fit(pd.concat([data, data.iloc[[5]]], ignore_index=True))
    pupils = _data("pupils")
    assert ImputationDiD(unit="school").fit(pupils).n_obs == len(pupils)
    # A sparse pupil subgroup: most school-years hold one pupil, a third hold two.
    rank = pupils.groupby(["school", "year"]).cumcount()
    sparse = pupils[(rank == 0) | ((rank == 1) & (pupils["school"] % 3 == 0))]
    assert (sparse.groupby(["school", "year"]).size() == 1).mean() > 0.6
    assert ImputationDiD(unit="school").fit(sparse).n_obs == len(sparse)


def test_collinear_covariate_and_leads_are_named():
    data = _tiny_panel()
    with pytest.raises(EstimationError, match="covariate 'size' is explained"):
        ImputationDiD(covariates=["size"]).fit(data.assign(size=data["unit"] * 2.0))
    with pytest.raises(DesignError, match="lower pretrend_leads to at most 5"):
        ImputationDiD(pretrend_leads=6).fit(data)
    # Cohort 2020 has five pre-periods, cohort 2018 three: leads 1-5 span the unit effects of
    # cohort 2020 only if every pre-period has a lead; with one cohort that happens at K = 5.
    one_cohort = data[data["first_treated"] != 2018]
    with pytest.raises(EstimationError, match="lead 5"):
        _fit_quiet(ImputationDiD(pretrend_leads=5), one_cohort)


def test_unavailable_horizons_are_missing_and_warned():
    data = _tiny_panel()
    with pytest.warns(SmallSampleWarning, match=r"horizons \[7\] have no treated rows"):
        res = ImputationDiD(horizons=[0, 2, 7]).fit(data)
    es = res.event_study.set_index("event_time")
    assert es.loc[7, "n_obs"] == 0 and np.isnan(es.loc[7, "estimate"])
    assert es.loc[[0, 2], "estimate"].notna().all()
    # The overall ATT averages every treated row whatever the horizons asked for.
    assert res.estimate == pytest.approx(ImputationDiD().fit(data).estimate)


def test_no_treated_or_no_untreated_rows():
    data = _tiny_panel()
    with pytest.raises(DesignError, match="no treated rows"):
        ImputationDiD().fit(data.assign(first_treated=0))
    with pytest.raises(EmptyComparisonGroupError, match="every row is treated"):
        ImputationDiD().fit(data.assign(first_treated=2015))


def test_few_clusters_warn():
    data = _tiny_panel()
    with pytest.warns(FewClustersWarning, match="only 5 clusters of 'area'"):
        ImputationDiD(cluster="area").fit(data)


def test_spec_validation():
    with pytest.raises(ValueError, match="anticipation"):
        ImputationDiD(anticipation=-1)
    with pytest.raises(ValueError, match="pretrend_leads"):
        ImputationDiD(pretrend_leads=1.5)
    with pytest.raises(ValueError, match="alpha"):
        ImputationDiD(alpha=1.0)
    with pytest.raises(ValueError, match="pretrend_leads instead"):
        ImputationDiD(horizons=[-1, 0])
    with pytest.raises(ValueError, match="whole numbers"):
        ImputationDiD(horizons=[0.5])
    assert ImputationDiD(horizons=[2, 0, 2], anticipation=1).horizons == (0, 2)
    assert ImputationDiD(covariates="x").covariates == ("x",)
    assert ImputationDiD.data_level == "any"
    with pytest.raises(AttributeError):
        ImputationDiD().alpha = 0.1


def test_anticipation_moves_rows_out_of_step_one():
    data = _tiny_panel(6)
    res = ImputationDiD(anticipation=1).fit(data)
    assert res.event_study["event_time"].min() == -1
    n_treated = ((data["first_treated"] > 0) & (data["year"] >= data["first_treated"] - 1)).sum()
    assert res.n_treated_obs == n_treated
