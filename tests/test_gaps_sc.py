"""Synthetic control, synthetic DiD and the multilevel DiD on years with no data.

There were no KS2 tests in summer 2020 or 2021, so a KS2 series over 2017-2024 has six years,
not eight. Each estimator takes the observed years as its periods: the pre/post split is by the
first programme year observed, time weights run over the observed pre-years, effects are
reported per observed year, and the result names the missing years.

Checks: relabelling the observed years as consecutive periods changes nothing (property);
independent numpy/SciPy computations of the same estimators on the observed years; pysyncon
and statsmodels references on gapped panels stored under ``tests/reference/gaps_sc/``;
simulations with known truth and the 2020-21 gap (bias, coverage); and the bundled presets
(``maths_challenge``, ``city_partnership``) with the gap cut out.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

matplotlib.use("Agg")

from cpdimpact.cohort import CohortSpec
from cpdimpact.comparison import (
    SyntheticControl,
    SyntheticDiD,
    area_year_outcomes,
    compare_synthetic,
)
from cpdimpact.datasets import city_partnership, maths_challenge
from cpdimpact.multilevel import MultilevelDiD

REF = Path(__file__).parent / "reference" / "gaps_sc"
GAP = (2020, 2021)
KS2_YEARS = tuple(y for y in range(2017, 2025) if y not in GAP)


def _factor_panel(
    seed: int,
    *,
    years=KS2_YEARS,
    n_donors: int = 12,
    start: int = 2021,
    effect: float = 1.0,
) -> pd.DataFrame:
    """Area-by-year outcomes from a two-factor model, one treated area drawn like the donors.

    ``Y_it = a_i + b_t + g_i' f_t + e_it``; each year's draws come from a generator seeded by
    (seed, year), so a year that is left out is exactly a year never generated.
    """
    unit_rng = np.random.default_rng([seed, 0])
    n = n_donors + 1
    level = unit_rng.normal(0, 2, n)
    loading = unit_rng.normal(0, 1, (n, 2))
    rows = []
    for t in years:
        rng = np.random.default_rng([seed, int(t)])
        shock = rng.normal(0, 1)
        factor = rng.normal(0, 1, 2)
        noise = rng.normal(0, 0.5, n)
        for i in range(n):
            treated = i == n - 1 and t >= start
            y = level[i] + shock + loading[i] @ factor + noise[i] + (effect if treated else 0.0)
            rows.append((f"area{i:02d}", int(t), y, int(treated)))
    return pd.DataFrame(rows, columns=["area", "year", "outcome", "treated"])


def _quiet(fit, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(data)


ESTIMATORS = {
    "SyntheticControl": SyntheticControl(),
    "SyntheticDiD": SyntheticDiD(),
    "SyntheticDiD(sc)": SyntheticDiD(method="sc"),
    "SyntheticDiD(did)": SyntheticDiD(method="did"),
}


# ------------------------------------------------------------------ what the gap does


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_gap_years_are_not_periods_and_are_named(name):
    """2020-21 cut from every area, programme starting in 2021 (inside the gap): the fit runs,
    its periods are the six observed years, the first programme year is 2022, and the summary,
    the dict and the notes name the missing years."""
    res = _quiet(ESTIMATORS[name].fit, _factor_panel(1))
    assert res.years_without_data == GAP
    assert (res.n_pre, res.n_post) == (3, 3)
    assert res.first_treated == 2022
    assert list(res.time_weights.index) == [2017, 2018, 2019]
    assert list(res.effect_by_year.index) == [2022, 2023, 2024]
    assert list(res.treated_path.index) == list(KS2_YEARS)
    assert res.to_dict()["years_without_data"] == [2020, 2021]
    text = str(res.summary())
    assert "Years with no data   2020, 2021" in text
    assert "first programme year with data; none in 2020, 2021" in text
    assert "a start in 2020 or 2021 gives the same pre/post split" in text


def test_a_gap_inside_the_pre_period_is_left_out_of_the_time_weights():
    """Start in 2023: the pre-period is 2017-2019 and 2022, four observed years; SDID's time
    weights are on those years, and the summary says no data but not that the start is in a
    gap."""
    res = _quiet(SyntheticDiD().fit, _factor_panel(2, start=2023))
    assert list(res.time_weights.index) == [2017, 2018, 2019, 2022]
    assert res.time_weights.sum() == pytest.approx(1.0)
    assert res.first_treated == 2023 and (res.n_pre, res.n_post) == (4, 2)
    text = str(res.summary())
    assert "Years with no data" in text and "none in" not in text


def test_a_panel_without_gaps_says_nothing_about_them():
    res = _quiet(SyntheticDiD().fit, _factor_panel(3, years=range(2017, 2025)))
    assert res.years_without_data == ()
    assert "no data" not in str(res.summary()).lower()


def test_comparison_table_names_the_gap_and_plots_break_across_it():
    comp = _quiet(compare_synthetic, _factor_panel(4))
    text = str(comp.summary())
    assert "Years with no data  2020, 2021" in text
    ax = comp.plot()
    treated = ax.get_lines()[0]
    x, y = treated.get_xdata(), np.asarray(treated.get_ydata(), dtype=float)
    # the line has a point (NaN) at each missing year, so matplotlib breaks it there
    assert list(x) == list(range(2017, 2025))
    assert np.isnan(y[[3, 4]]).all() and np.isfinite(np.delete(y, [3, 4])).all()
    assert any(p.get_label() == "no data" for p in ax.patches)
    res = comp["sdid"]
    for kind in ("trajectories", "gaps", "placebo"):
        ax = res.plot(kind)
        for line in ax.get_lines():
            ys = np.asarray(line.get_ydata(), dtype=float)
            if len(ys) == 8:  # a path by year: broken at 2020 and 2021
                assert np.isnan(ys[[3, 4]]).all()
        assert sum(p.get_label() == "no data" for p in ax.patches) == 1


# ------------------------------------------------------------------ property: relabelling


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_relabelled_consecutive_periods_give_the_same_fit(name):
    """Years enter these estimators only through their order: the weights solve problems on
    the columns of the area-by-year matrix (pre-period columns, post-period column means), the
    noise level uses differences of adjacent columns and the effect is a weighted double
    difference, none of which reads the distance between two years. So the panel with 2020
    and 2021 cut out and the same rows relabelled 1-6 (a series where those years never
    existed) must give the same weights, effect and placebo effects, to rounding; and the cut
    panel is exactly the one generated without those years."""
    full = _factor_panel(5, years=range(2017, 2025))
    cut = full[~full["year"].isin(GAP)]
    never = _factor_panel(5)
    pd.testing.assert_frame_equal(cut.reset_index(drop=True), never)
    relabelled = cut.assign(year=cut["year"].map({y: k + 1 for k, y in enumerate(KS2_YEARS)}))
    a = _quiet(ESTIMATORS[name].fit, cut)
    b = _quiet(ESTIMATORS[name].fit, relabelled)
    assert b.years_without_data == ()
    np.testing.assert_allclose(a.estimate, b.estimate, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.unit_weights, b.unit_weights, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.time_weights, b.time_weights, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.placebo_effects, b.placebo_effects, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.effect_by_year, b.effect_by_year, rtol=1e-12, atol=1e-12)
    assert a.std_error == pytest.approx(b.std_error, rel=1e-10)


# ------------------------------------------------------------------ independent computations


def _wide(panel):
    wide = panel.pivot(index="area", columns="year", values="outcome")
    treated_area = panel.loc[panel["treated"] == 1, "area"].iloc[0]
    donors = [a for a in wide.index if a != treated_area]
    first = panel.loc[panel["treated"] == 1, "year"].min()
    pre = [y for y in wide.columns if y < first]
    post = [y for y in wide.columns if y >= first]
    return wide, treated_area, donors, pre, post


def _simplex_qp(A, b, penalty=0.0, intercept=False):
    """min |A w + w0 - b|^2 + penalty |w|^2 over the simplex (w0 free when ``intercept``),
    by SciPy's SLSQP: an independent solver."""
    if intercept:
        A = A - A.mean(axis=0)
        b = b - b.mean()
    n = A.shape[1]
    res = optimize.minimize(
        lambda w: np.sum((A @ w - b) ** 2) + penalty * w @ w,
        np.full(n, 1 / n),
        jac=lambda w: 2 * A.T @ (A @ w - b) + 2 * penalty * w,
        bounds=[(0, 1)] * n,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1, "jac": lambda w: np.ones(n)}],
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 2000},
    )
    return res.x


def test_did_is_the_double_difference_of_the_observed_years():
    panel = _factor_panel(6)
    wide, tr, donors, pre, post = _wide(panel)
    hand = (wide.loc[tr, post].mean() - wide.loc[tr, pre].mean()) - (
        wide.loc[donors, post].to_numpy().mean() - wide.loc[donors, pre].to_numpy().mean()
    )
    res = _quiet(SyntheticDiD(method="did").fit, panel)
    assert res.estimate == pytest.approx(hand, abs=1e-12)


def test_synthetic_control_matches_slsqp_on_the_observed_pre_years():
    """Ten observed pre-years (2010-2019), eight donors: unique weights. SLSQP on the observed
    pre-years only gives the same weights and effect."""
    years = [y for y in range(2010, 2025) if y not in GAP]
    panel = _factor_panel(7, years=years, n_donors=8)
    wide, tr, donors, pre, post = _wide(panel)
    w = _simplex_qp(wide.loc[donors, pre].to_numpy().T, wide.loc[tr, pre].to_numpy())
    hand = float((wide.loc[tr, post] - w @ wide.loc[donors, post].to_numpy()).mean())
    res = _quiet(SyntheticControl().fit, panel)
    np.testing.assert_allclose(res.unit_weights.reindex(donors), w, atol=1e-5)
    assert res.estimate == pytest.approx(hand, abs=1e-4)


def test_synthetic_did_matches_its_equations_solved_by_slsqp():
    """Arkhangelsky et al. (2021) eq. 2.2 and 2.3 on the observed years, solved by SLSQP, with
    sigma the SD of the donors' changes between consecutive observed pre-years (2019 -> 2022
    counts as one step when 2022 is a pre-year): SDID run to convergence without
    sparsification gives the same weights and effect."""
    years = [y for y in range(2014, 2025) if y not in GAP]
    panel = _factor_panel(8, years=years, n_donors=10, start=2023)
    wide, tr, donors, pre, post = _wide(panel)
    Y0pre = wide.loc[donors, pre].to_numpy()
    sigma = np.std(np.diff(Y0pre, axis=1), ddof=1)
    T0, N0, T1 = len(pre), len(donors), len(post)
    zeta_omega = (1 * T1) ** 0.25 * sigma
    zeta_lambda = 1e-6 * sigma
    omega = _simplex_qp(Y0pre.T, wide.loc[tr, pre].to_numpy(), zeta_omega**2 * T0, True)
    lam = _simplex_qp(
        Y0pre, wide.loc[donors, post].to_numpy().mean(axis=1), zeta_lambda**2 * N0, True
    )
    gap = wide.loc[tr].to_numpy() - omega @ wide.loc[donors].to_numpy()
    hand = gap[T0:].mean() - lam @ gap[:T0]
    spec = SyntheticDiD(sparsify=False, min_decrease=1e-10, max_iter=50_000, placebo=False)
    res = _quiet(spec.fit, panel)
    # Frank-Wolfe converges slowly near the optimum: weights agree to 1e-4, the effect closer
    np.testing.assert_allclose(res.unit_weights.reindex(donors), omega, atol=1e-4)
    np.testing.assert_allclose(res.time_weights.reindex(pre), lam, atol=1e-4)
    assert res.estimate == pytest.approx(hand, abs=2e-5)
    assert res.options["noise_level"] == pytest.approx(sigma, rel=1e-12)


# ------------------------------------------------------------------ stored peer references


def _prop99_gapped():
    data = pd.read_csv(
        Path(__file__).parent / "reference" / "synthetic" / "california_prop99.csv", sep=";"
    )
    removed = json.loads((REF / "pysyncon_gapped.json").read_text())["removed_years"]
    data = data[~data["Year"].isin(removed)]
    data = data.assign(treated=((data["State"] == "California") & (data["Year"] >= 1989)))
    return data.assign(treated=data["treated"].astype(int)), removed


def test_prop99_with_years_removed_matches_pysyncon():
    """pysyncon 1.7.0 (SLSQP) on Prop 99 with 1980-81 and 1988-89 removed (the start falls in
    the second gap): same weights to SLSQP's precision, same effect, and ours fits the observed
    pre-years at least as well."""
    data, removed = _prop99_gapped()
    meta = json.loads((REF / "pysyncon_gapped.json").read_text())
    ref = pd.read_csv(REF / "pysyncon_gapped_weights.csv").set_index("area")["weight"]
    res = _quiet(
        SyntheticControl(unit="State", time="Year", outcome="PacksPerCapita", placebo=False).fit,
        data,
    )
    assert res.years_without_data == tuple(removed)
    assert res.first_treated == 1990 and res.n_pre == meta["n_pre"]
    np.testing.assert_allclose(res.unit_weights.reindex(ref.index), ref, atol=2e-5)
    assert res.estimate == pytest.approx(meta["estimate"], abs=1e-3)
    wide = data.pivot(index="Year", columns="State", values="PacksPerCapita")
    pre = wide.loc[wide.index < 1989]
    donors = list(ref.index)

    def loss(w):
        return np.mean((pre["California"] - pre[donors].to_numpy() @ np.asarray(w)) ** 2)

    assert loss(res.unit_weights.reindex(donors)) <= loss(ref)


def test_multilevel_did_with_years_removed_matches_statsmodels_mixedlm():
    """statsmodels 0.14 MixedLM (REML) on a stored pupil panel with 2020-21 removed and
    schools first exposed in 2022: same exposure coefficient, standard error and variances,
    with a random intercept for schools and (period_effects) for school-years."""
    data = pd.read_csv(REF / "multilevel_gapped.csv")
    ref = json.loads((REF / "multilevel_gapped.json").read_text())
    assert sorted(data["year"].unique()) == list(KS2_YEARS)
    for case, period_effects in (("school", False), ("school_year", True)):
        res = _quiet(MultilevelDiD(period_effects=period_effects).fit, data)
        want = ref[case]
        assert res.years_without_data == GAP
        assert res.estimate == pytest.approx(want["estimate"], abs=1e-4)
        assert res.std_error == pytest.approx(want["std_error"], rel=1e-3)
        vc = res.model.variance_components
        assert vc["school"] == pytest.approx(want["var_school"], rel=1e-3)
        assert vc["Residual"] == pytest.approx(want["var_residual"], rel=1e-3)
        if period_effects:
            assert vc["year"] == pytest.approx(want["var_school_year"], rel=1e-3)


# ------------------------------------------------------------------ simulations, known truth


def _coverage_bounds(n: int, level: float = 0.95, z: float = 3.0) -> tuple[float, float]:
    se = np.sqrt(level * (1 - level) / n)
    return level - z * se, level + z * se


def _synthetic_simulation(spec, reps: int, seed0: int):
    errors, covered = [], []
    for r in range(reps):
        panel = _factor_panel(seed0 + r, n_donors=19, effect=1.0)
        res = _quiet(spec.fit, panel)
        lo, hi = res.conf_int().iloc[0]
        errors.append(res.estimate - 1.0)
        covered.append(lo <= 1.0 <= hi)
    return np.asarray(errors), np.asarray(covered)


def _check_simulation(errors, covered):
    n = len(errors)
    # bias within 3 Monte Carlo standard errors of zero
    assert abs(errors.mean()) < 3 * errors.std(ddof=1) / np.sqrt(n)
    lo, hi = _coverage_bounds(n)
    assert lo <= covered.mean() <= hi, covered.mean()


def test_simulation_with_the_gap_is_unbiased_and_covers():
    """Factor model, 19 donors and one treated area exchangeable with them, 2020-21 missing
    and the start in 2021: the effect (1.0 in each observed programme year) is recovered
    without bias and the 95% placebo intervals cover about 95% of the time (60 panels, DiD
    weights: synthetic DiD's solver takes about a second a panel, so its coverage is in the
    slow test)."""
    errors, covered = _synthetic_simulation(SyntheticDiD(method="did"), 60, 1000)
    _check_simulation(errors, covered)


def test_synthetic_did_simulation_with_the_gap_is_unbiased():
    errors = np.asarray(
        [
            _quiet(SyntheticDiD(placebo=False).fit, _factor_panel(3000 + r, n_donors=19)).estimate
            - 1.0
            for r in range(15)
        ]
    )
    assert abs(errors.mean()) < 3 * errors.std(ddof=1) / np.sqrt(len(errors))


@pytest.mark.slow
@pytest.mark.parametrize(
    "spec", [SyntheticDiD(), SyntheticDiD(method="did"), SyntheticControl()], ids=repr
)
def test_simulation_with_the_gap_large(spec):
    errors, covered = _synthetic_simulation(spec, 600, 5000)
    if isinstance(spec, SyntheticControl):
        # synthetic control's placebo SE is not a design-based SE: check the bias only
        assert abs(errors.mean()) < 3 * errors.std(ddof=1) / np.sqrt(len(errors))
    else:
        _check_simulation(errors, covered)


def _pupil_panel(seed: int, *, n_schools: int = 16, pupils: int = 8, effect: float = 0.3):
    """Pupils in schools over the KS2 years without 2020-21; half the schools start in 2021
    (first exposed 2022). School, school-year and pupil noise; year effects."""
    rng = np.random.default_rng(seed)
    school_effect = rng.normal(0, 0.5, n_schools)
    treated = np.arange(n_schools) < n_schools // 2
    rows = []
    for t in KS2_YEARS:
        year_effect = rng.normal(0, 0.3)
        for s in range(n_schools):
            shock = rng.normal(0, 0.15)
            exposed = bool(treated[s] and t >= 2021)
            y = (
                school_effect[s]
                + year_effect
                + shock
                + effect * exposed
                + 0.2 * treated[s]
                + rng.normal(0, 1, pupils)
            )
            for v in y:
                rows.append((f"s{s:02d}", t, v, exposed, int(treated[s])))
    return pd.DataFrame(rows, columns=["school", "year", "outcome", "exposed", "treated"])


def _multilevel_simulation(reps: int, seed0: int):
    errors, covered = [], []
    for r in range(reps):
        res = _quiet(MultilevelDiD().fit, _pupil_panel(seed0 + r))
        lo, hi = res.conf_int().loc["exposed"]
        errors.append(res.estimate - 0.3)
        covered.append(lo <= 0.3 <= hi)
    return np.asarray(errors), np.asarray(covered)


def test_multilevel_did_simulation_with_the_gap():
    """16 schools (8 starting in 2021, inside the gap), 2020-21 missing: the exposure effect
    0.3 is recovered without bias and 95% intervals cover (12 panels, a loose Monte Carlo
    bound: 8 or fewer covering has probability below 0.003 at coverage 0.95; the tight check
    is the slow test)."""
    errors, covered = _multilevel_simulation(12, 200)
    assert abs(errors.mean()) < 3 * errors.std(ddof=1) / np.sqrt(len(errors))
    assert stats.binom.cdf(8, 12, 0.95) < 0.003
    assert covered.sum() >= 9


@pytest.mark.slow
def test_multilevel_did_simulation_with_the_gap_large():
    errors, covered = _multilevel_simulation(400, 10_000)
    _check_simulation(errors, covered)


# ------------------------------------------------------------------ the bundled presets


def _maths_challenge_gapped(seed: int):
    """maths_challenge (2017-2024, Riverton from 2021) with 2020 and 2021 cut from every area,
    and the true effect averaged as the estimators average it: Riverton's pupil mean in each
    observed programme year, then the mean over those years."""
    rec = maths_challenge(seed=seed, scale=0.3)
    panel = area_year_outcomes(rec)
    pupils = rec.pupils.assign(effect=rec.truth.pupil_effects.to_numpy())
    area_of = rec.schools.set_index("school")["area"]
    pupils = pupils.assign(area=pupils["school"].map(area_of))
    post = pupils[(pupils["area"] == "Riverton") & (pupils["year"] >= 2022)]
    truth = float(post.groupby("year")["effect"].mean().mean())
    return panel[~panel["year"].isin(GAP)], truth


@pytest.mark.parametrize("name", ["SyntheticControl", "SyntheticDiD"])
def test_maths_challenge_without_2020_and_2021(name):
    """KS2-like series 2017-2024 without 2020-21, start 2021: finite results on the observed
    years, and the estimate within 3 placebo standard errors of the true effect."""
    panel, truth = _maths_challenge_gapped(0)
    assert sorted(panel["year"].unique()) == list(KS2_YEARS)
    res = _quiet(ESTIMATORS[name].fit, panel)
    assert res.years_without_data == GAP
    assert list(res.effect_by_year.index) == [2022, 2023, 2024]
    assert np.isfinite(res.estimate) and np.isfinite(res.std_error) and res.std_error > 0
    assert np.isfinite(res.placebo_effects).all()
    assert abs(res.estimate - truth) < 3 * res.std_error, (res.estimate, truth)


def test_city_partnership_multilevel_did_without_2020_and_2021():
    """city_partnership (2017-2023, start 2021) with the 2020-21 gap: MultilevelDiD runs on the
    observed years and its interval covers the true effect of the exposed records."""
    rec = city_partnership(seed=2, scale=0.25)
    pupils = rec.pupils[~rec.pupils["year"].isin(GAP)]
    cohort = CohortSpec(exclude_years=GAP).build(rec)
    assert sorted(cohort.pupils["year"].unique()) == [2017, 2018, 2019, 2022, 2023]
    assert len(cohort.pupils) <= len(pupils)
    res = _quiet(MultilevelDiD(covariates=("prior",)).fit, cohort.pupils)
    truth = rec.true_effect(cohort.pupils)["att"]
    assert res.years_without_data == GAP
    assert "years with no data" in dict(res.summary().facts)
    assert np.isfinite(res.estimate) and res.std_error > 0
    assert abs(res.estimate - truth) < 3 * res.std_error, (res.estimate, truth)
