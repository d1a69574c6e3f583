"""Tests of cpdimpact.did: R reference values, invariances, the 2x2 identity, errors, simulation."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from cpdimpact.did import DiD, DiDResult, EventStudy, EventStudyResult, PretrendTest
from cpdimpact.errors import (
    CpdImpactWarning,
    DesignError,
    EmptyComparisonGroupError,
    EstimationError,
    ExactFitWarning,
    FewClustersWarning,
    InvalidValueError,
    MissingColumnError,
    StaggeredTimingWarning,
)

REF = Path(__file__).parent / "reference" / "did"
CASES = json.loads((REF / "reference.json").read_text())["cases"]
# Observed agreement with R is ~1e-12; 1e-8 leaves room for BLAS differences only.
RTOL = 1e-8


# --------------------------------------------------------------------------- helpers


def panel(
    *,
    n_schools=50,
    years=range(2016, 2022),
    start=2019,
    n_treated=None,
    pupils=1,
    effect=1.0,
    seed=0,
    noise=1.0,
):
    """Pupil rows (``pupils`` per school-year) with one start year; canonical column names."""
    rng = np.random.default_rng(seed)
    years = list(years)
    n_treated = n_schools // 2 if n_treated is None else n_treated
    school = np.repeat(np.arange(n_schools), len(years) * pupils)
    year = np.tile(np.repeat(years, pupils), n_schools)
    first = np.where(school < n_treated, start, 0)
    exposed = (first > 0) & (year >= first)
    school_fx = rng.normal(0, 1, n_schools)[school]
    year_fx = dict(zip(years, rng.normal(0, 1, len(years)), strict=True))
    prior = rng.normal(0, 1, school.size)
    outcome = (
        school_fx
        + np.vectorize(year_fx.get)(year)
        + effect * exposed
        + 0.5 * prior
        + rng.normal(0, noise, school.size)
    )
    return pd.DataFrame(
        {
            "school": [f"S{s:02d}" for s in school],
            "unit": [f"S{s:02d}" for s in school],
            "year": year,
            "first_treated": first,
            "exposed": exposed,
            "prior": prior,
            "outcome": outcome,
        }
    )


def quiet_fit(spec, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        return spec.fit(data)


# --------------------------------------------------------------------------- reference values


def _spec(case):
    kw = dict(
        unit="school",
        cluster=case["cluster"],
        covariates=tuple(case["covariates"]),
        weights=case["weights"],
    )
    if case["kind"] == "did":
        return DiD(**kw)
    window = tuple(case["window"]) if case["window"] is not None else None
    return EventStudy(**kw, reference=case["reference"], window=window)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_r_reference(case):
    data = pd.read_csv(REF / case["data"])
    res = quiet_fit(_spec(case), data)
    terms = case["terms"]
    np.testing.assert_allclose(res.params.loc[terms], case["estimate"], rtol=RTOL)
    np.testing.assert_allclose(res.std_errors.loc[terms], case["std_error"], rtol=RTOL)
    np.testing.assert_allclose(res.cov.loc[terms, terms], case["vcov"], rtol=RTOL, atol=1e-14)
    np.testing.assert_allclose(res.small_sample_factor, case["small_sample_factor"], rtol=1e-12)
    assert (res.n_obs, res.n_units, res.n_periods) == (
        case["n_obs"],
        case["n_units"],
        case["n_periods"],
    )
    assert (res.n_clusters, res.n_params, res.df) == (
        case["n_clusters"],
        case["n_params"],
        case["df"],
    )
    assert res.cluster == case["cluster"]
    if case["kind"] == "did":
        assert res.estimate == pytest.approx(case["estimate"][0], rel=RTOL)
        assert res.std_error == pytest.approx(case["std_error"][0], rel=RTOL)
    if "pretrend" in case:
        pre = case["pretrend"]
        assert res.pretrend.statistic == pytest.approx(pre["statistic"], rel=RTOL)
        assert res.pretrend.p_value == pytest.approx(pre["p_value"], rel=1e-6)
        assert (res.pretrend.df_num, res.pretrend.df_denom) == (pre["df_num"], pre["df_denom"])
        assert list(res.pretrend.terms) == pre["terms"]


def test_reference_cases_raise_the_expected_warnings():
    expected = {
        "did_staggered": {StaggeredTimingWarning},
        "es_pupil_all": {StaggeredTimingWarning},
        "es_window_area": {StaggeredTimingWarning, FewClustersWarning},
    }
    for case in CASES:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _spec(case).fit(pd.read_csv(REF / case["data"]))
        got = {w.category for w in caught if issubclass(w.category, CpdImpactWarning)}
        assert got == expected.get(case["name"], set()), case["name"]


def test_units_not_nested_in_clusters_count_their_effects():
    """Units (areas) coarser than clusters (schools): K includes the U-1 unit effects.

    Compared with a dummy-variable OLS and a hand-written sandwich, independent of linearmodels.
    """
    df = panel(n_schools=48, pupils=3, seed=3)
    df["area"] = df["school"].str[1:].astype(int) // 4  # 12 areas of 4 schools
    first = df.groupby("area")["first_treated"].transform("max")
    df["exposed"] = (first > 0) & (df["year"] >= first)
    res = DiD(unit="area", covariates=("prior",)).fit(df)

    dummies = pd.get_dummies(df[["area", "year"]].astype(str), drop_first=True, dtype=float)
    x = np.column_stack([df["exposed"].astype(float), df["prior"], np.ones(len(df)), dummies])
    y = df["outcome"].to_numpy()
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    bread = np.linalg.inv(x.T @ x)
    scores = pd.DataFrame(x * resid[:, None]).groupby(df["school"].to_numpy()).sum().to_numpy()
    n, k, g = x.shape[0], x.shape[1], scores.shape[0]
    cov = bread @ scores.T @ scores @ bread * g / (g - 1) * (n - 1) / (n - k)
    assert res.n_params == k
    np.testing.assert_allclose(res.params.to_numpy(), beta[:2], rtol=1e-9)
    np.testing.assert_allclose(res.std_errors.to_numpy(), np.sqrt(np.diag(cov))[:2], rtol=1e-9)


# --------------------------------------------------------------------------- identities


def test_2x2_equals_difference_of_four_means():
    df = panel(n_schools=40, pupils=7, seed=11, years=range(2015, 2021), start=2018)
    res = DiD().fit(df)
    treated = df["first_treated"] > 0
    post = df["year"] >= 2018
    m = df.groupby([treated, post])["outcome"].mean()
    classic = (m[True, True] - m[True, False]) - (m[False, True] - m[False, False])
    assert res.estimate == pytest.approx(classic, rel=1e-10, abs=1e-12)


def test_school_year_means_with_weights_equal_pupil_rows_without_covariates():
    """Weighted unit-year means reproduce the pupil-row point estimate (not the SE: N differs)."""
    df = panel(n_schools=44, pupils=5, seed=5)
    df = df.drop(index=df.index[::7])  # unequal pupils per school-year
    means = df.groupby(["school", "year"], as_index=False).agg(
        outcome=("outcome", "mean"), exposed=("exposed", "first"), n_pupils=("outcome", "size")
    )
    means["unit"] = means["school"]
    pupil = DiD().fit(df)
    school = DiD(weights="n_pupils").fit(means)
    assert school.estimate == pytest.approx(pupil.estimate, rel=1e-10)
    assert school.n_obs == len(means)


def test_event_study_recovers_noiseless_dynamic_effects():
    df = panel(n_schools=40, years=range(2012, 2022), start=2017, noise=0.0, effect=0.0, seed=2)
    event = np.where(df["first_treated"] > 0, df["year"] - df["first_treated"], np.nan)
    truth = {-5: 0, -4: 0, -3: 0, -2: 0, 0: 1.0, 1: 1.5, 2: 2.0, 3: 2.5, 4: 3.0}
    df["outcome"] = df["outcome"] + pd.Series(event).map(truth).fillna(0).to_numpy()
    with pytest.warns(ExactFitWarning, match="'outcome'.*exactly"):
        res = EventStudy(covariates=("prior",)).fit(df)
    est = res.coefficients["estimate"].drop(-1)
    np.testing.assert_allclose(est.to_numpy(), [truth[e] for e in est.index], atol=1e-9)
    assert res.coefficients.loc[-1, "reference"]
    assert res.coefficients.loc[-1, ["estimate", "ci_lower", "ci_upper"]].eq(0).all()
    assert np.isnan(res.coefficients.loc[-1, "std_error"])
    assert res.params["prior"] == pytest.approx(0.5, abs=1e-9)


def test_window_bins_the_ends():
    df = panel(n_schools=50, years=range(2012, 2022), start=2017, seed=4)
    res = EventStudy(window=(-3, 2)).fit(df)
    coef = res.coefficients
    assert coef.index.tolist() == [-3, -2, -1, 0, 1, 2]
    assert coef.loc[-3, "term"] == "event_time<=-3" and coef.loc[2, "term"] == "event_time>=2"
    assert coef["binned"].tolist() == [True, False, False, False, False, True]
    assert res.pretrend.terms == ("event_time<=-3", "event_time=-2")
    res_all = EventStudy().fit(df)
    assert len(res_all.params) == 9 and len(res.params) == 5


def test_pretrend_none_without_pre_periods_and_missing_first_treated_is_never():
    df = panel(n_schools=50, seed=6)
    df["first_treated"] = df["first_treated"].where(df["first_treated"] > 0)  # NaN = never
    res = EventStudy(window=(-1, 2)).fit(df)
    assert res.pretrend is None
    base = EventStudy(window=(-1, 2)).fit(panel(n_schools=50, seed=6))
    pd.testing.assert_series_equal(res.params, base.params)


# --------------------------------------------------------------------------- property tests


def _small_panel(seed):
    return panel(n_schools=42, years=range(2016, 2021), start=2018, pupils=2, seed=seed)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    unit_shift=st.lists(st.floats(-1e3, 1e3), min_size=42, max_size=42),
    time_shift=st.lists(st.floats(-1e3, 1e3), min_size=5, max_size=5),
)
def test_unit_and_time_constants_leave_estimates_unchanged(seed, unit_shift, time_shift):
    df = _small_panel(seed)
    base = DiD(covariates=("prior",)).fit(df)
    shifted = df.copy()
    codes = shifted["school"].str[1:].astype(int).to_numpy()
    shifted["outcome"] = (
        shifted["outcome"]
        + np.asarray(unit_shift)[codes]
        + np.asarray(time_shift)[shifted["year"].to_numpy() - 2016]
    )
    res = DiD(covariates=("prior",)).fit(shifted)
    # Shifts up to 1e3 on outcomes of order 1: absolute error stays near 1e3 * machine epsilon.
    assert res.estimate == pytest.approx(base.estimate, abs=1e-8)
    assert res.std_error == pytest.approx(base.std_error, abs=1e-8)
    es0 = EventStudy().fit(df)
    es1 = EventStudy().fit(shifted)
    np.testing.assert_allclose(es1.params, es0.params, atol=1e-8)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), perm_seed=st.integers(0, 10_000))
def test_row_order_never_matters_and_input_is_unchanged(seed, perm_seed):
    df = _small_panel(seed)
    df.index = pd.RangeIndex(1000, 1000 + len(df))
    shuffled = df.sample(frac=1.0, random_state=perm_seed)
    before = shuffled.copy(deep=True)
    for spec in (DiD(covariates=("prior",)), EventStudy(covariates=("prior",))):
        a, b = spec.fit(df), spec.fit(shuffled)
        np.testing.assert_allclose(b.params, a.params, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b.std_errors, a.std_errors, rtol=1e-9, atol=1e-12)
        pd.testing.assert_frame_equal(shuffled, before)
        assert shuffled.index.equals(before.index)


def test_weighted_fit_does_not_modify_input():
    data = pd.read_csv(REF / "school_years.csv")
    before = data.copy(deep=True)
    DiD(unit="school", weights="n_pupils", covariates=["prior"]).fit(data)
    EventStudy(unit="school", weights="n_pupils", window=(-2, 2)).fit(data)
    pd.testing.assert_frame_equal(data, before)


# --------------------------------------------------------------------------- errors


def test_missing_column_names_it_and_lists_columns():
    df = panel().drop(columns="exposed")
    with pytest.raises(MissingColumnError, match=r"'exposed'.*treatment.*columns \['school'"):
        DiD().fit(df)
    with pytest.raises(MissingColumnError, match="'fsm'"):
        DiD(covariates=("fsm",)).fit(panel())
    with pytest.raises(MissingColumnError, match="'ft'"):
        EventStudy(first_treated="ft").fit(panel())


def test_non_numeric_outcome_or_treatment():
    df = panel()
    df["outcome"] = df["outcome"].astype(str)
    df.loc[3, "outcome"] = "absent"
    with pytest.raises(InvalidValueError, match=r"'outcome'.*numeric.*3 \('absent'\)"):
        DiD().fit(df)
    df = panel()
    df["exposed"] = np.where(df["exposed"], "yes", "no")
    with pytest.raises(InvalidValueError, match="'exposed'.*numeric"):
        DiD().fit(df)


@pytest.mark.parametrize("column", ["outcome", "exposed", "prior", "school", "year", "unit"])
def test_missing_values_raise_naming_column_and_rows(column):
    df = panel()
    df[column] = df[column].astype(object) if column == "exposed" else df[column]
    df.loc[[4, 9], column] = None
    with pytest.raises(InvalidValueError, match=rf"'{column}'.*2 missing values at rows 4, 9"):
        DiD(covariates=("prior",)).fit(df)


def test_design_errors():
    df = panel()
    with pytest.raises(DesignError, match="no treated rows"):
        DiD().fit(df.assign(exposed=False))
    with pytest.raises(EmptyComparisonGroupError, match="no comparison rows"):
        DiD().fit(df.assign(exposed=True))
    with pytest.raises(DesignError, match="no treated units"):
        EventStudy().fit(df.assign(first_treated=0))
    with pytest.raises(EmptyComparisonGroupError):
        EventStudy().fit(df.query("first_treated > 0 and year >= 2019"))
    # treated units never observed at -1 (2018 observed for the comparison units only)
    with pytest.raises(DesignError, match="reference event time -1"):
        EventStudy().fit(df.query("year >= 2019 or first_treated == 0"))
    # with 2018 missing for every unit (a year with no data) the reference is 2017, e = -2
    gapped = EventStudy().fit(df.query("year != 2018"))
    assert gapped.reference == -2 and gapped.reference_years.to_dict() == {2019: 2017}


def test_no_variation_after_absorbing_fixed_effects():
    df = panel()
    # Everyone starts in 2019: treatment is a year effect (first_treated, which would now
    # disagree with the indicator, is dropped).
    with pytest.raises(EstimationError, match="no variation left"):
        DiD().fit(df.drop(columns="first_treated").assign(exposed=df["year"] >= 2019))
    # A covariate constant within units is absorbed.
    with pytest.raises(EstimationError, match="'size'.*constant within units"):
        DiD(covariates=("size",)).fit(df.assign(size=df["school"].str[1:].astype(float)))
    # One cohort, no never-treated units, all event times: relative time = calendar time.
    only_treated = df[df["first_treated"] > 0]
    with pytest.raises(EstimationError, match="collinear"), pytest.warns(FewClustersWarning):
        EventStudy().fit(only_treated)


def test_other_value_errors():
    df = panel()
    with pytest.raises(InvalidValueError, match="must be positive"):
        DiD(weights="w").fit(df.assign(w=np.where(df.index == 2, 0.0, 1.0)))
    bad = df.copy()
    bad.loc[0, "first_treated"] = 2020
    with pytest.raises(InvalidValueError, match="varies within units"):
        EventStudy().fit(bad)
    with pytest.raises(InvalidValueError, match="whole periods"):
        EventStudy().fit(df.assign(year=df["year"] + 0.5))
    with pytest.raises(ValueError, match="window"):
        EventStudy(window=(2, -3))
    with pytest.raises(ValueError, match="outside window"):
        EventStudy(window=(0, 3))
    with pytest.raises(ValueError, match="alpha"):
        DiD(alpha=1.5)


# --------------------------------------------------------------------------- warnings


def test_clean_design_raises_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", CpdImpactWarning)
        DiD().fit(panel())
        EventStudy().fit(panel())


def test_few_clusters_warning_and_note():
    with pytest.warns(FewClustersWarning, match="only 20 clusters"):
        res = DiD().fit(panel(n_schools=20))
    assert any("20 clusters" in n for n in res.notes)
    assert "Note:" in str(res.summary())


def test_staggered_timing_warning():
    df = panel(n_schools=50)
    late = df["school"].isin([f"S{s:02d}" for s in range(10)])
    df.loc[late, "first_treated"] = 2020
    df["exposed"] = (df["first_treated"] > 0) & (df["year"] >= df["first_treated"])
    with pytest.warns(StaggeredTimingWarning, match="StaggeredDiD"):
        DiD().fit(df)
    with pytest.warns(StaggeredTimingWarning, match="2019, 2020"):
        EventStudy().fit(df)


def test_missing_year_is_not_mistaken_for_staggered_start():
    df = panel(n_schools=50)
    df = df[~((df["school"] == "S00") & (df["year"] == 2019))]  # S00 first seen treated in 2020
    with warnings.catch_warnings():
        warnings.simplefilter("error", CpdImpactWarning)
        DiD().fit(df)


# --------------------------------------------------------------------------- faces


def test_result_faces():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = DiD(covariates=("prior",), alpha=0.1).fit(panel())
    assert isinstance(res, DiDResult)
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
    assert frame["term"].tolist() == ["exposed", "prior"]
    ci = res.conf_int()
    q = stats.t.ppf(0.975, res.df)
    assert ci.loc["exposed", "ci_upper"] == pytest.approx(res.estimate + q * res.std_error)
    assert frame.loc[0, "ci_upper"] == pytest.approx(
        res.estimate + stats.t.ppf(0.95, res.df) * res.std_error
    )
    assert res.ci_upper == pytest.approx(frame.loc[0, "ci_upper"])
    assert res.p_value == pytest.approx(2 * stats.t.sf(abs(res.statistic), res.df))
    text = str(res.summary())
    for fact in ("Clusters (G)", "school", "Degrees of freedom", "CR1", "Observations"):
        assert fact in text
    assert "<table>" in res._repr_html_()
    ax = res.plot()
    assert isinstance(ax, plt.Axes)
    plt.close("all")

    es = EventStudy().fit(panel())
    assert isinstance(es, EventStudyResult) and isinstance(es.pretrend, PretrendTest)
    assert es.pretrend.df_denom == es.df == es.n_clusters - 1
    assert set(es.conf_int(0.2).columns) == {"ci_lower", "ci_upper"}
    assert "Pre-trend test" in str(es.summary()) and "<h4>" in es._repr_html_()
    fig, ax = plt.subplots()
    assert es.plot(ax=ax) is ax
    assert any(line.get_xdata()[0] == -0.5 for line in ax.get_lines())
    plt.close("all")


def test_importing_did_is_cheap():
    code = (
        "import sys, cpdimpact.did; "
        "print(any(m in sys.modules for m in ('matplotlib', 'linearmodels', 'statsmodels')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- simulation


def test_simulation_unbiased_with_nominal_coverage():
    """200 replications of a 60-school, 6-year panel with AR(1) school-year errors.

    Checks the mean estimate is within 3 Monte Carlo SEs of the truth and that the 95% CI
    coverage lies in the central 99.5% binomial band around 0.95 for 200 replications.
    """
    rng = np.random.default_rng(20240917)
    n_schools, n_years, reps, tau, rho = 60, 6, 200, 0.5, 0.5
    school = np.repeat(np.arange(n_schools), n_years)
    year = np.tile(np.arange(n_years), n_schools)
    exposed = (school < n_schools // 2) & (year >= 3)
    base = pd.DataFrame({"school": school, "unit": school, "year": year, "exposed": exposed})
    estimates, covered = [], 0
    for _ in range(reps):
        shocks = rng.normal(0, 1, (n_schools, n_years))
        errors = np.empty_like(shocks)
        errors[:, 0] = shocks[:, 0]
        for t in range(1, n_years):  # serial correlation within schools: clustering matters
            errors[:, t] = rho * errors[:, t - 1] + np.sqrt(1 - rho**2) * shocks[:, t]
        y = rng.normal(0, 1, n_schools)[school] + 0.2 * year + tau * exposed + errors.ravel()
        res = DiD().fit(base.assign(outcome=y))
        estimates.append(res.estimate)
        covered += res.ci_lower <= tau <= res.ci_upper
    estimates = np.asarray(estimates)
    mc_se = estimates.std(ddof=1) / np.sqrt(reps)
    assert abs(estimates.mean() - tau) <= 3 * mc_se
    lo, hi = stats.binom.ppf([0.0025, 0.9975], reps, 0.95)
    assert lo <= covered <= hi, covered


def test_warns_when_treated_clusters_are_few():
    # One treated area among many: the sandwich understates its variance (Conley & Taber 2011).
    rng = np.random.default_rng(5)
    rows = [(a, s, y) for a in range(50) for s in range(2) for y in range(2016, 2022)]
    df = pd.DataFrame(rows, columns=["area", "school", "year"])
    df["unit"] = df["area"] * 10 + df["school"]
    df["exposed"] = (df["area"] == 0) & (df["year"] >= 2019)
    df["outcome"] = rng.normal(size=len(df))
    with pytest.warns(FewClustersWarning, match="only 1 treated cluster"):
        res = DiD(cluster="area").fit(df)
    assert any("Conley & Taber" in note for note in res.notes)
    # Fifty clusters in all: the overall few-clusters warning stays quiet.
    assert not any("over-reject with fewer than" in note for note in res.notes)
