"""Sun & Abraham (2021) interaction-weighted event study: references, checks, truth, bad input."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from cpdimpact.did import EventStudy
from cpdimpact.did._twfe import Design, Prepared, fit_twfe
from cpdimpact.did.sun_abraham import ATT, POST_AVERAGE, SunAbraham, _fit_saturated
from cpdimpact.errors import (
    CpdImpactWarning,
    DesignError,
    EmptyComparisonGroupError,
    EstimationError,
    FewClustersWarning,
    InvalidValueError,
    MissingColumnError,
    SmallSampleWarning,
)

REF = Path(__file__).parent / "reference" / "sun_abraham"
R_CASES = json.loads((REF / "reference.json").read_text())["cases"]
DD_CASES = json.loads((REF / "diffdiff.json").read_text())["cases"]


def _spec(raw: dict) -> SunAbraham:
    spec = dict(raw)
    if "window" in spec:
        spec["window"] = tuple(spec["window"])
    return SunAbraham(**spec)


def _quiet_fit(spec: SunAbraham, data: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        return spec.fit(data)


# ---------------------------------------------------------------------- references
@pytest.mark.parametrize("case", R_CASES, ids=[c["name"] for c in R_CASES])
def test_matches_r_lm_sandwich(case):
    """lm() with dummies + sandwich::vcovCL (make_reference.R): coefficients, CR1, shares, IW."""
    res = _quiet_fit(_spec(case["spec"]), pd.read_csv(REF / case["file"]))
    assert (res.n_obs, res.n_units, res.n_periods, res.n_clusters, res.n_params) == (
        case["n_obs"],
        case["n_units"],
        case["n_periods"],
        case["n_clusters"],
        case["n_params"],
    )
    assert res.small_sample_factor == pytest.approx(case["small_sample_factor"], rel=1e-12)
    cells, ref = res.cohort_effects, case["cohort_effects"]
    assert cells["cohort"].tolist() == ref["cohort"]
    assert cells["event_time"].tolist() == ref["event_time"]
    for col in ("estimate", "std_error", "share"):
        np.testing.assert_allclose(cells[col], ref[col], rtol=1e-8, atol=1e-12, err_msg=col)
    np.testing.assert_allclose(res.cov.to_numpy(), case["coef_cov"], rtol=1e-8, atol=1e-14)
    if case["covariates"]["term"]:
        np.testing.assert_allclose(
            res.params[case["covariates"]["term"]], case["covariates"]["estimate"], rtol=1e-8
        )
    es = res.event_study.loc[~res.event_study["reference"]]
    ref_es = case["event_study"]
    assert es["event_time"].tolist() == ref_es["event_time"]
    for col in ("estimate", "std_error", "std_error_fixed_shares"):
        np.testing.assert_allclose(es[col], ref_es[col], rtol=1e-8, atol=1e-12, err_msg=col)
    np.testing.assert_allclose(res.event_study_cov, case["event_study_cov"], rtol=1e-8, atol=1e-14)
    avg = res.averages.set_index("term")
    for term, key in ((ATT, "att"), (POST_AVERAGE, "post_average")):
        for col in ("estimate", "std_error", "std_error_fixed_shares"):
            assert avg.loc[term, col] == pytest.approx(case[key][col], rel=1e-8, abs=1e-12)
    assert res.estimate == pytest.approx(case["att"]["estimate"], rel=1e-8)
    pre = case["pretrend"]
    assert res.pretrend.df_num == pre["df_num"] and res.pretrend.df_denom == pre["df_denom"]
    assert res.pretrend.statistic == pytest.approx(pre["statistic"], rel=1e-8)
    assert res.pretrend.p_value == pytest.approx(pre["p_value"], rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("case", DD_CASES, ids=[c["name"] for c in DD_CASES])
def test_matches_diff_diff(case):
    """diff-diff 3.13 SunAbraham (make_reference_diffdiff.py): cells, fixed-share IW SEs, ATT."""
    res = _quiet_fit(_spec(case["spec"]), pd.read_csv(REF / case["file"]))
    assert res.n_obs == case["n_obs"]
    ref = pd.DataFrame(case["cohort_effects"]).set_index(["cohort", "event_time"])
    ours = res.cohort_effects.set_index(["cohort", "event_time"])
    assert sorted(ours.index) == sorted(ref.index)
    ours = ours.loc[ref.index]
    for col in ("estimate", "std_error", "share"):
        np.testing.assert_allclose(ours[col], ref[col], rtol=1e-8, atol=1e-12, err_msg=col)
    es = res.event_study.set_index("event_time").loc[case["event_study"]["event_time"]]
    np.testing.assert_allclose(es["estimate"], case["event_study"]["estimate"], rtol=1e-8)
    np.testing.assert_allclose(
        es["std_error_fixed_shares"], case["event_study"]["std_error_fixed_shares"], rtol=1e-8
    )
    assert res.estimate == pytest.approx(case["att"], rel=1e-8)
    fixed = res.averages.set_index("term").loc[ATT, "std_error_fixed_shares"]
    assert fixed == pytest.approx(case["att_std_error_fixed_shares"], rel=1e-8)


def test_mpdta_agrees_with_callaway_santanna_without_covariates():
    """Never-treated controls, balanced panel: post cells are CS's ATT(g,t) (varying base)."""
    res = _spec(DD_CASES[0]["spec"]).fit(pd.read_csv(REF.parent / "mpdta" / "mpdta.csv"))
    # R did 2.5.1 (test_staggered.py): simple ATT -0.039951, dynamic overall -0.077240.
    assert res.estimate == pytest.approx(-0.039951, abs=5e-7)
    post = res.averages.set_index("term").loc[POST_AVERAGE, "estimate"]
    assert post == pytest.approx(-0.077240, abs=5e-7)
    cells = res.cohort_effects.set_index(["cohort", "event_time"])["estimate"]
    assert round(cells[(2004, 2)], 4) == -0.1373 and round(cells[(2006, 0)], 4) == -0.0046


# ---------------------------------------------------------------------- independent checks
def _random_design(seed: int, n: int = 900):
    rng = np.random.default_rng(seed)
    n_units, n_periods = 36, 6
    unit = rng.integers(0, n_units, n)
    time = rng.integers(0, n_periods, n)
    g = np.array([0] * 12 + [2] * 12 + [4] * 12)[unit]
    e = time - g
    keys = sorted({(a, b) for a, b in zip(g, e, strict=True) if a > 0 and b != -1})
    lookup = {k: i for i, k in enumerate(keys)}
    cell = np.array([lookup.get((a, b), -1) if a > 0 else -1 for a, b in zip(g, e, strict=True)])
    x = rng.normal(size=n) + 0.1 * unit
    y = rng.normal(size=n) + 0.3 * unit + 0.2 * time + 0.5 * x
    w = rng.uniform(0.5, 2, n)
    return unit, time, cell, keys, x, y, w, rng


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("clusters", ["unit", "nested", "crossed"])
def test_sparse_engine_equals_the_twfe_engine(weighted, clusters):
    """_fit_saturated reproduces fit_twfe (linearmodels, dense) on pupil-like unbalanced rows."""
    unit, time, cell, keys, x, y, w, rng = _random_design(3)
    cluster = {"unit": unit, "nested": unit // 5, "crossed": rng.integers(0, 15, unit.size)}
    cl = cluster[clusters]
    weights = w if weighted else None
    names = [f"c{k}" for k in range(len(keys))]
    ours = _fit_saturated(
        y=y,
        unit=unit,
        time=time,
        cell=cell,
        n_cells=len(keys),
        covariates={"x": x},
        weights=weights,
        cluster=cl,
        names=names,
        roles={},
    )
    prep = Prepared(
        index=pd.RangeIndex(y.size),
        y=y,
        unit=unit,
        time=time,
        time_levels=pd.Index(range(6)),
        cluster=cl,
        weights=weights,
        covariates={"x": x},
    )
    targets = {n: (cell == k).astype(float) for k, n in enumerate(names)}
    ref = fit_twfe(Design(data=prep, targets=targets, target_roles=dict.fromkeys(names, "")))
    np.testing.assert_allclose(ours.params, ref.params.to_numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.cov, ref.cov.to_numpy(), rtol=1e-9, atol=1e-14)
    assert ours.n_params == ref.n_params
    assert ours.factor == pytest.approx(ref.small_sample_factor, rel=1e-14)


def _small_staggered(seed: int, n_units: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    years = np.arange(2015, 2021)
    first = np.resize([0, 2017, 2018, 2019], n_units)
    unit = np.repeat(np.arange(n_units), years.size)
    year = np.tile(years, n_units)
    g = first[unit]
    e = year - g
    effect = np.where((g > 0) & (e >= 0), (g - 2016) * 0.5 + 0.3 * e, 0.0)
    x = rng.normal(size=unit.size)
    y = rng.normal(0, 1, n_units)[unit] + 0.1 * year + 0.4 * x + effect + rng.normal(size=unit.size)
    return pd.DataFrame(
        {
            "unit": unit,
            "school": unit,
            "area": unit % 9,
            "year": year,
            "first_treated": g,
            "x": x,
            "outcome": y,
        }
    )


def test_interactions_equal_brute_force_dummy_ols():
    """statsmodels OLS with unit, year and cohort x event-time dummies, clustered by school."""
    import statsmodels.api as sm

    data = _small_staggered(4)
    res = SunAbraham(covariates=["x"]).fit(data)
    g, e = data["first_treated"], data["year"] - data["first_treated"]
    dummies = {}
    for cohort, event in zip(
        res.cohort_effects["cohort"], res.cohort_effects["event_time"], strict=True
    ):
        dummies[f"{cohort}:{event}"] = ((g == cohort) & (e == event)).astype(float)
    design = pd.concat(
        [
            pd.DataFrame(dummies),
            data[["x"]],
            pd.get_dummies(data["unit"], prefix="u", drop_first=True, dtype=float),
            pd.get_dummies(data["year"], prefix="t", drop_first=True, dtype=float),
        ],
        axis=1,
    )
    design = sm.add_constant(design)
    ols = sm.OLS(data["outcome"], design).fit(
        cov_type="cluster", cov_kwds={"groups": data["school"].to_numpy()}
    )
    k = len(dummies)
    np.testing.assert_allclose(res.params.iloc[:k], ols.params.iloc[1 : k + 1], rtol=1e-9)
    # statsmodels counts every dummy in K; cpdimpact leaves out unit effects nested in clusters.
    n, k_all = len(data), design.shape[1]
    rescale = np.sqrt((n - k_all) / (n - res.n_params))
    np.testing.assert_allclose(
        res.cohort_effects["std_error"], ols.bse.iloc[1 : k + 1] * rescale, rtol=1e-9
    )


def test_one_treated_cohort_equals_the_twfe_event_study():
    """With a single start period the IW estimates are the TWFE coefficients, SEs included."""
    data = _small_staggered(5)
    data = data[data["first_treated"].isin([0, 2018])]
    iw = _quiet_fit(SunAbraham(covariates=["x"]), data)
    with pytest.warns(FewClustersWarning):  # 20 schools
        twfe = EventStudy(covariates=["x"]).fit(data)
    es = iw.event_study.set_index("event_time")
    np.testing.assert_allclose(es["estimate"], twfe.coefficients["estimate"], rtol=1e-9)
    np.testing.assert_allclose(es["std_error"], twfe.coefficients["std_error"], rtol=1e-9)
    np.testing.assert_allclose(es["std_error"], es["std_error_fixed_shares"], rtol=1e-12)
    assert iw.pretrend.statistic == pytest.approx(twfe.pretrend.statistic, rel=1e-9)


def test_homogeneous_effects_iw_equals_twfe_equals_truth_and_heterogeneous_contaminates():
    """Noise-free outcomes: IW recovers the effects either way; TWFE only if cohorts agree."""
    data = _small_staggered(6, n_units=48)
    e = (data["year"] - data["first_treated"]).to_numpy()
    treated = (data["first_treated"] > 0).to_numpy()
    unit_fe = 0.7 * data["unit"].to_numpy() % 3
    base = unit_fe + 0.1 * (data["year"].to_numpy() - 2015)
    same = np.where(treated & (e >= 0), 1.0 + 0.5 * e, 0.0)
    iw = SunAbraham().fit(data.assign(outcome=base + same)).event_study.set_index("event_time")
    with pytest.warns(CpdImpactWarning):
        twfe = EventStudy().fit(data.assign(outcome=base + same)).coefficients
    truth = np.where(iw.index >= 0, 1.0 + 0.5 * iw.index, 0.0)
    np.testing.assert_allclose(iw["estimate"], truth, atol=1e-9)
    np.testing.assert_allclose(twfe["estimate"], iw["estimate"], atol=1e-9)

    # Cohort-specific effects: the IW estimate is the cohort-share average of the truth; the
    # TWFE coefficients pick up effects of other cohorts and event times (pre-periods too).
    g = data["first_treated"].to_numpy()
    differ = np.where(treated & (e >= 0), (g - 2016) * (1.0 + 0.5 * e), 0.0)
    res = SunAbraham().fit(data.assign(outcome=base + differ))
    cells = res.cohort_effects
    np.testing.assert_allclose(
        cells["estimate"],
        np.where(
            cells["event_time"] >= 0,
            (cells["cohort"] - 2016) * (1.0 + 0.5 * cells["event_time"]),
            0.0,
        ),
        atol=1e-9,
    )
    iw = res.event_study.set_index("event_time")
    expected = cells.assign(part=cells["share"] * cells["estimate"]).groupby("event_time")["part"]
    np.testing.assert_allclose(iw["estimate"].drop(-1), expected.sum(), atol=1e-12)
    np.testing.assert_allclose(iw.loc[iw.index < 0, "estimate"], 0.0, atol=1e-9)
    with pytest.warns(CpdImpactWarning):
        twfe = EventStudy().fit(data.assign(outcome=base + differ)).coefficients
    assert np.abs(twfe.loc[twfe.index < -1, "estimate"]).max() > 0.1


def test_shares_att_and_post_average_by_hand():
    data = _small_staggered(7)
    data = data.iloc[np.random.default_rng(0).permutation(len(data))[:200]]  # unbalanced
    res = _quiet_fit(SunAbraham(), data)
    cells = res.cohort_effects
    assert np.allclose(cells.groupby("event_time")["share"].sum(), 1.0)
    n = cells.groupby(["cohort", "event_time"]).size()
    assert (n == 1).all()
    post = cells[cells["event_time"] >= 0]
    att = (post["weight"] * post["estimate"]).sum() / post["weight"].sum()
    assert res.estimate == pytest.approx(att, rel=1e-12)
    es = res.event_study.set_index("event_time")
    avg = res.averages.set_index("term").loc[POST_AVERAGE, "estimate"]
    assert avg == pytest.approx(es.loc[es.index >= 0, "estimate"].mean(), rel=1e-12)
    # Shares are the cohorts' treated rows at each event time.
    e = data["year"] - data["first_treated"]
    counts = data[(data["first_treated"] > 0) & (e != -1)].groupby(["first_treated", e]).size()
    np.testing.assert_array_equal(cells["n_obs"], counts.to_numpy())


def test_school_year_means_weighted_equal_pupil_rows():
    """Without covariates, pupil rows and their school-year means weighted by pupils agree."""
    pupils = pd.read_csv(REF / "pupils.csv")
    means = (
        pupils.groupby(["school", "year", "first_treated"], as_index=False)
        .agg(outcome=("outcome", "mean"), n_pupils=("outcome", "size"))
        .sample(frac=1.0, random_state=1)
    )
    a = SunAbraham(unit="school").fit(pupils)
    b = SunAbraham(unit="school", weights="n_pupils").fit(means)
    np.testing.assert_allclose(b.cohort_effects["estimate"], a.cohort_effects["estimate"])
    np.testing.assert_allclose(b.cohort_effects["share"], a.cohort_effects["share"])
    np.testing.assert_allclose(b.event_study["estimate"], a.event_study["estimate"])
    assert b.estimate == pytest.approx(a.estimate, rel=1e-10)


def test_window_bins_the_ends_per_cohort():
    data = pd.read_csv(REF / "staggered.csv")
    res = SunAbraham(window=(-3, 2), cluster="unit").fit(data)
    es = res.event_study
    assert es["event_time"].tolist() == [-3, -2, -1, 0, 1, 2]
    assert es["term"].tolist()[0] == "event_time<=-3" and es["binned"].tolist()[-1]
    assert res.pretrend.terms == ("event_time<=-3", "event_time=-2")


# ---------------------------------------------------------------------- truth
COHORTS = np.array([0, 2014, 2016, 2018])
PROBS = np.array([0.25, 0.25, 0.25, 0.25])
LEVEL = {2014: 0.0, 2016: 1.0, 2018: 3.0}
SLOPE = {2014: 0.1, 2016: 0.4, 2018: 1.0}
YEARS = np.arange(2012, 2020)


def _tau(g, e):
    return LEVEL[g] + SLOPE[g] * e if e >= 0 else 0.0


def _truth() -> tuple[dict[int, float], float]:
    """Population IW estimands (cohort probabilities as shares) and the post-cell ATT."""
    by_event, num, den = {}, 0.0, 0.0
    for e in range(-6, 6):
        on = [(g, p) for g, p in zip(COHORTS[1:], PROBS[1:], strict=True) if g + e in YEARS]
        if on and e != -1:
            by_event[e] = sum(p * _tau(g, e) for g, p in on) / sum(p for _, p in on)
            if e >= 0:
                num += sum(p * _tau(g, e) for g, p in on)
                den += sum(p for _, p in on)
    return by_event, num / den


def _heterogeneous_panel(rng, n_units: int) -> pd.DataFrame:
    """Cohorts drawn at random (so shares are estimated); effects differ by cohort and grow."""
    first = rng.choice(COHORTS, n_units, p=PROBS)
    unit = np.repeat(np.arange(n_units), YEARS.size)
    year = np.tile(YEARS, n_units)
    g = first[unit]
    e = year - g
    level = np.array([LEVEL.get(v, 0.0) for v in g])
    slope = np.array([SLOPE.get(v, 0.0) for v in g])
    effect = np.where((g > 0) & (e >= 0), level + slope * e, 0.0)
    y = rng.normal(0, 1, n_units)[unit] + 0.1 * (year - 2012) + effect
    y = y + rng.normal(0, 1, unit.size)
    return pd.DataFrame(
        {"unit": unit, "school": unit, "year": year, "first_treated": g, "outcome": y}
    )


def _monte_carlo(reps: int, n_units: int, seed: int) -> pd.DataFrame:
    truth, att = _truth()
    rng = np.random.default_rng(seed)
    rows = []
    for rep in range(reps):
        res = SunAbraham().fit(_heterogeneous_panel(rng, n_units))
        q = stats.t.ppf(0.975, res.df)
        es = res.event_study.loc[~res.event_study["reference"]]
        targets = [*zip(es["event_time"], es["estimate"], es["std_error"],
                        es["std_error_fixed_shares"], strict=True)]  # fmt: skip
        head = res.averages.iloc[0]
        targets.append(("att", head["estimate"], head["std_error"], head["std_error_fixed_shares"]))
        for key, est, se, se_fixed in targets:
            err = est - (att if key == "att" else truth[key])
            rows.append((rep, str(key), err, abs(err) <= q * se, abs(err) <= q * se_fixed))
    return pd.DataFrame(rows, columns=["rep", "target", "error", "covered", "covered_fixed"])


def _check_unbiased_and_covering(study: pd.DataFrame, reps: int, z: float) -> pd.DataFrame:
    summary = study.groupby("target").agg(
        bias=("error", "mean"), sd=("error", "std"), coverage=("covered", "mean")
    )
    mc_se = summary["sd"] / np.sqrt(reps)
    assert (summary["bias"].abs() <= z * mc_se).all(), summary
    return summary


def test_unbiased_with_nominal_coverage_under_heterogeneous_dynamic_effects():
    """60 panels of 120 units, cohorts drawn at random: IW unbiased, intervals cover ~95%.

    Bias of the ATT and of each of the 11 event-time estimates within 3.5 Monte Carlo SEs
    (12 checks, false alarm about 0.6%); ATT coverage at least 51/60 (P(X <= 50) is about 1%
    at 95%); mean coverage over event times at least 0.89 (correlated within a panel).
    """
    reps = 60
    study = _monte_carlo(reps, 120, seed=2021)
    summary = _check_unbiased_and_covering(study, reps, z=3.5)
    att = study[study["target"] == "att"]
    assert att["covered"].sum() >= 51
    assert summary.drop("att")["coverage"].mean() >= 0.89


@pytest.mark.slow
def test_full_monte_carlo_share_variance_restores_coverage():
    """1,000 panels of 200 units: coverage in the central 99% binomial band; holding the shares
    fixed (fixest, diff-diff) under-covers where cohort effects differ most."""
    reps = 1000
    study = _monte_carlo(reps, 200, seed=1)
    summary = _check_unbiased_and_covering(study, reps, z=3.5)
    lo, hi = stats.binom.ppf([0.005, 0.995], reps, 0.95) / reps
    assert lo <= summary.loc["att", "coverage"] <= hi
    assert summary["coverage"].between(lo - 0.01, hi + 0.01).all(), summary
    fixed = study.groupby("target")["covered_fixed"].mean()
    assert fixed["1"] < lo, fixed


@pytest.mark.slow
def test_twfe_event_study_is_contaminated_where_iw_is_not():
    """60 panels: TWFE pre-period coefficients are far from zero, IW ones are not."""
    rng = np.random.default_rng(3)
    rows = []
    for _ in range(60):
        data = _heterogeneous_panel(rng, 200)
        iw = SunAbraham().fit(data).event_study.set_index("event_time")["estimate"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CpdImpactWarning)
            twfe = EventStudy().fit(data).coefficients["estimate"]
        rows.append((iw[-4], twfe[-4]))
    iw_pre, twfe_pre = np.array(rows).T
    mc = np.sqrt(len(rows))
    assert abs(iw_pre.mean()) < 3 * iw_pre.std() / mc
    assert twfe_pre.mean() < -10 * twfe_pre.std() / mc


@pytest.mark.slow
def test_two_million_rows():
    """Unit FE absorbed from sparse sums: 200,000 units x 10 years in seconds, under 2 GB."""
    rng = np.random.default_rng(0)
    n_units, years = 200_000, np.arange(2010, 2020)
    unit = np.repeat(np.arange(n_units), years.size)
    year = np.tile(years, n_units)
    g = rng.choice([0, 2013, 2015, 2017], n_units)[unit]
    e = year - g
    y = rng.normal(size=unit.size) + unit % 7 + np.where((g > 0) & (e >= 0), 0.1 * (e + 1), 0)
    data = pd.DataFrame({"unit": unit, "school": unit, "year": year, "first_treated": g})
    res = SunAbraham().fit(data.assign(outcome=y))
    es = res.event_study.set_index("event_time")
    post = es.loc[es.index >= 0]
    z = (post["estimate"] - 0.1 * (post.index + 1)) / post["std_error"]
    assert (z.abs() < 4).all()
    assert res.n_obs == 2_000_000


# ---------------------------------------------------------------------- properties
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    unit_shift=st.lists(st.floats(-1e3, 1e3), min_size=40, max_size=40),
    time_shift=st.lists(st.floats(-1e3, 1e3), min_size=6, max_size=6),
)
def test_unit_and_period_constants_leave_estimates_unchanged(seed, unit_shift, time_shift):
    data = _small_staggered(seed)
    spec = SunAbraham(covariates=["x"], cluster="area")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        base = spec.fit(data)
        shifted = data.assign(
            outcome=data["outcome"]
            + np.asarray(unit_shift)[data["unit"]]
            + np.asarray(time_shift)[data["year"] - 2015]
        )
        res = spec.fit(shifted)
    # Shifts up to 1e3 on outcomes of order 1: absolute error near 1e3 * machine epsilon.
    for col in ("estimate", "std_error"):
        np.testing.assert_allclose(res.event_study[col], base.event_study[col], atol=1e-8)
        np.testing.assert_allclose(res.cohort_effects[col], base.cohort_effects[col], atol=1e-8)
    np.testing.assert_allclose(res.averages["std_error"], base.averages["std_error"], atol=1e-8)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), perm_seed=st.integers(0, 10_000))
def test_row_order_never_matters_and_input_is_unchanged(seed, perm_seed):
    data = _small_staggered(seed)
    data.index = pd.RangeIndex(500, 500 + len(data))
    shuffled = data.sample(frac=1.0, random_state=perm_seed)
    before = shuffled.copy(deep=True)
    spec = SunAbraham(covariates=["x"])
    a, b = spec.fit(data), spec.fit(shuffled)
    pd.testing.assert_frame_equal(b.cohort_effects, a.cohort_effects, rtol=1e-9, atol=1e-12)
    pd.testing.assert_frame_equal(b.event_study, a.event_study, rtol=1e-9, atol=1e-12)
    pd.testing.assert_frame_equal(b.averages, a.averages, rtol=1e-9, atol=1e-12)
    pd.testing.assert_frame_equal(shuffled, before)


def test_weighted_fit_does_not_modify_input():
    data = pd.read_csv(REF / "rollout.csv")
    before = data.copy(deep=True)
    _quiet_fit(SunAbraham(unit="school", weights="n_pupils", control="last_treated"), data)
    pd.testing.assert_frame_equal(data, before)


# ---------------------------------------------------------------------- bad input
def test_treatment_switching_off_is_refused():
    data = _small_staggered(1)
    data.loc[(data["unit"] == 1) & (data["year"] == 2020), "first_treated"] = 0
    with pytest.raises(InvalidValueError, match="absorbing") as err:
        SunAbraham().fit(data)
    assert "'first_treated'" in str(err.value) and "row" in str(err.value)


def test_no_never_treated_units_suggests_last_treated():
    data = _small_staggered(1)
    data = data[data["first_treated"] > 0]
    with pytest.raises(EmptyComparisonGroupError, match="control_group='last_treated'"):
        SunAbraham().fit(data)
    res = _quiet_fit(SunAbraham(control="last_treated"), data)
    assert (res.cohorts["role"] == "comparison (last treated)").sum() == 1
    assert res.cohorts.loc[res.cohorts["role"] != "treated", "cohort"].tolist() == [2019]
    assert res.cohort_effects["cohort"].max() == 2018
    assert any("2019 and later were dropped" in note for note in res.notes)


def test_last_treated_drops_never_treated_units_and_needs_two_cohorts():
    data = _small_staggered(1)
    res = _quiet_fit(SunAbraham(control="last_treated"), data)
    assert 0 not in res.cohorts["cohort"].tolist()
    assert any("never-treated units were dropped" in note for note in res.notes)
    one = data[data["first_treated"].isin([0, 2018])]
    with pytest.raises(DesignError, match="at least two start cohorts"):
        SunAbraham(control="last_treated").fit(one[one["first_treated"] > 0])


def test_always_treated_units_are_dropped_counted_and_warned():
    data = _small_staggered(1, n_units=48)
    data.loc[data["unit"].isin([0, 4]), "first_treated"] = 2015  # treated from the first year
    with pytest.warns(SmallSampleWarning, match="2 always-treated units"):
        res = SunAbraham().fit(data)
    assert res.n_always_treated_dropped == 2
    assert res.n_units == 46
    assert any("always-treated" in note for note in res.notes)


def test_late_cohort_serves_as_never_treated():
    data = _small_staggered(1)
    data.loc[data["first_treated"] == 0, "first_treated"] = 2030
    res = SunAbraham().fit(data)
    assert res.cohorts.loc[res.cohorts["cohort"] == 0, "n_units"].item() == 10
    assert any("after the last period" in note for note in res.notes)


def test_missing_columns_and_non_integer_time():
    data = _small_staggered(1)
    with pytest.raises(MissingColumnError, match="'first_treated'"):
        SunAbraham().fit(data.drop(columns="first_treated"))
    with pytest.raises(MissingColumnError, match="'area'.*cluster"):
        SunAbraham(cluster="area").fit(data.drop(columns="area"))
    with pytest.raises(MissingColumnError, match="'fsm'"):
        SunAbraham(covariates="fsm").fit(data)
    with pytest.raises(InvalidValueError, match="whole periods"):
        SunAbraham().fit(data.assign(year=data["year"] + 0.5))
    with pytest.raises(InvalidValueError, match="whole periods"):
        SunAbraham().fit(data.assign(first_treated=np.where(data["first_treated"] > 0, 2017.5, 0)))
    with pytest.raises(InvalidValueError, match="missing"):
        SunAbraham().fit(data.assign(outcome=np.where(data.index == 3, np.nan, data["outcome"])))


def test_single_unit_cohort_warns():
    data = _small_staggered(1, n_units=60)
    data = data[(data["first_treated"] != 2019) | (data["unit"] == 3)]
    with pytest.warns(SmallSampleWarning, match=r"cohorts \[2019\] hold a single unit"):
        SunAbraham().fit(data)


def test_design_errors():
    data = _small_staggered(1)
    with pytest.raises(DesignError, match="no treated cohorts"):
        SunAbraham().fit(data.assign(first_treated=0))
    no_ref = data[~((data["first_treated"] == 2018) & (data["year"] == 2017))]
    with pytest.raises(DesignError, match="2018 have no row at the reference event time -1"):
        SunAbraham().fit(no_ref)
    with pytest.raises(DesignError, match="no treated row is at or after"):
        before = data["first_treated"].isin([0, 2018]) & (data["year"] < 2018)
        SunAbraham().fit(data[before | (data["first_treated"] == 0)])
    with pytest.raises(EstimationError, match="at least 2 clusters"):
        _quiet_fit(SunAbraham(cluster="one"), data.assign(one=1))
    with pytest.raises(EstimationError, match="covariate 'c'"):
        SunAbraham(covariates=["c"]).fit(data.assign(c=data["unit"] * 2.0))


def test_interaction_collinear_with_period_effects_is_named():
    # Never-treated units absent from 2020: the 2020 period effect and the 2020 cells coincide.
    data = _small_staggered(1)
    data = data[(data["first_treated"] != 0) | (data["year"] < 2020)]
    with pytest.raises(EstimationError, match="cohort x event-time dummy 'cohort=2019"):
        SunAbraham().fit(data)


def test_spec_validation():
    with pytest.raises(ValueError, match="control"):
        SunAbraham(control="not_yet_treated")
    with pytest.raises(ValueError, match="reference"):
        SunAbraham(reference=1.5)
    with pytest.raises(ValueError, match="outside window"):
        SunAbraham(window=(0, 3))
    with pytest.raises(ValueError, match="lo < hi"):
        SunAbraham(window=(2, -2))
    with pytest.raises(ValueError, match="alpha"):
        SunAbraham(alpha=1.5)
    assert SunAbraham(covariates="x").covariates == ("x",)
    assert SunAbraham.data_level == "any"


# ---------------------------------------------------------------------- faces
def test_result_faces():
    res = SunAbraham(covariates=["x"]).fit(_small_staggered(2))
    frame = res.to_frame()
    assert list(frame.columns) == [
        "term",
        "estimate",
        "std_error",
        "statistic",
        "p_value",
        "ci_lower",
        "ci_upper",
    ]
    assert frame["term"].tolist()[:3] == [ATT, POST_AVERAGE, "event_time=-4"]
    ci = res.conf_int(0.10)
    assert ci.loc[ATT, "ci_lower"] > res.ci_lower and ci.loc[ATT, "ci_upper"] < res.ci_upper
    assert res.ci_lower < res.estimate < res.ci_upper
    assert res.p_value == pytest.approx(2 * stats.t.sf(abs(res.statistic), res.df))
    assert res.df == res.n_clusters - 1
    text = str(res.summary())
    assert "Sun & Abraham" in text and "Pre-trend test" in text and ATT in text
    assert "<table>" in res._repr_html_()
    assert "SunAbrahamResult(estimate=" in repr(res)
    assert "cohort shares" in res.inference
    es = res.event_study
    assert list(es.columns[:7]) == [
        "event_time",
        "term",
        "estimate",
        "std_error",
        "std_error_fixed_shares",
        "ci_lower",
        "ci_upper",
    ]
    assert es.loc[es["reference"], "estimate"].item() == 0.0
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = res.plot()
    assert "pre-trend" in ax.get_title()
    plt.close("all")
    with pytest.raises(AttributeError):
        res.df = 3  # frozen


def test_pretrend_not_computed_with_more_pre_periods_than_clusters():
    data = pd.read_csv(REF / "staggered.csv")
    with pytest.warns(FewClustersWarning):
        res = SunAbraham(cluster="grp").fit(data.assign(grp=data["area"] % 4))
    assert np.isnan(res.pretrend.statistic) and "not computed" in res.pretrend.method
