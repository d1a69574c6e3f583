"""Every DiD estimator on years with no data (no KS2 tests in 2020 and 2021; issue 12, item 3).

The periods are the years observed and event time is measured in years. Checked here: parity
with peers on a gapped panel (moderndid and csdid for ATT(g,t) and aggregates; pyfixest for the
event studies, Sun & Abraham's saturated regression and the two-stage imputation estimates;
scripts and outputs in tests/reference/gaps/), hand computations (numpy least squares; the
Sun & Abraham cell as a 2x2 difference of means), the property that removing a year leaves
every Sun & Abraham cell that does not use it unchanged, simulations with known truth, and a
KS2-like series from ``cpdimpact.datasets`` through the cohort stage.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cpdimpact.did import DiD, EventStudy, ImputationDiD, StaggeredDiD, SunAbraham

REFERENCE = Path(__file__).parent / "reference" / "gaps"
GAP = (2020, 2021)


def _peer_panel() -> pd.DataFrame:
    """The stored gapped panel (2017-2019, 2022-2024; cohorts 2019-2023 and never treated)."""
    data = pd.read_csv(REFERENCE / "panel.csv")
    return data.assign(
        school=data["unit"],
        exposed=((data["first_treated"] > 0) & (data["year"] >= data["first_treated"])).astype(int),
    )


def _quiet(fit, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(data)


def _panel(seed: int, n_units: int = 150, years=range(2017, 2025), cohorts=None, slope=None):
    """One row per school-year, 2017-2024 by default; effect ``slope * (years since start + 1)``
    (the same for every cohort unless ``slope`` maps cohort -> slope); parallel trends."""
    rng = np.random.default_rng(seed)
    cohorts = (0, 2019, 2020, 2022) if cohorts is None else cohorts
    first = rng.choice(cohorts, size=n_units)
    level = rng.normal(size=n_units)
    rows = []
    for t in years:
        shock = rng.normal(0, 0.3)
        for unit in range(n_units):
            g = int(first[unit])
            s = 0.2 if slope is None else slope[g]
            effect = s * (t - g + 1) if g and t >= g else 0.0
            rows.append((unit, t, g, level[unit] + 0.1 * (t - 2017) + shock + effect))
    frame = pd.DataFrame(rows, columns=["unit", "year", "first_treated", "outcome"])
    frame["outcome"] += rng.normal(0, 0.5, len(frame))
    frame["school"] = frame["unit"]
    frame["exposed"] = (frame["first_treated"] > 0) & (frame["year"] >= frame["first_treated"])
    frame["exposed"] = frame["exposed"].astype(int)
    return frame


def _gapped(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[~frame["year"].isin(GAP)].reset_index(drop=True)


# ---------------------------------------------------------------------- parity with peers
@pytest.mark.parametrize("control", ["nevertreated", "notyettreated"])
@pytest.mark.parametrize("base", ["varying", "universal"])
def test_staggered_att_gt_equal_moderndid_on_the_gapped_panel(control, base):
    """moderndid (the Python port of R did) computes ATT(g,t) on unequally spaced years, with
    the base the last observed year before the start: every cell and standard error agrees."""
    peer = pd.read_csv(REFERENCE / f"moderndid_att_gt_{control}_{base}.csv")
    spec = StaggeredDiD(
        outcome="y",
        control_group={"nevertreated": "never_treated", "notyettreated": "not_yet_treated"}[
            control
        ],
        base_period=base,
        method="reg",
        n_bootstrap=0,
    )
    ours = _quiet(spec.fit, _peer_panel()).group_time.set_index(["group", "time"])
    # moderndid lists the universal base's own cell as a zero with no standard error
    peer = peer[peer["std_error"].notna()].set_index(["group", "time"])
    assert set(ours.index) == set(peer.index)
    ours = ours.loc[peer.index]
    np.testing.assert_allclose(ours["estimate"], peer["estimate"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours["std_error"], peer["std_error"], rtol=1e-6)


@pytest.mark.parametrize("control", ["nevertreated", "notyettreated"])
def test_staggered_aggregates_equal_moderndid_on_the_gapped_panel(control):
    spec = StaggeredDiD(
        outcome="y",
        control_group={"nevertreated": "never_treated", "notyettreated": "not_yet_treated"}[
            control
        ],
        method="reg",
        n_bootstrap=0,
    )
    res = _quiet(spec.fit, _peer_panel())
    peer = pd.read_csv(REFERENCE / "moderndid_aggte.csv")
    for kind, row in peer[peer["control"] == control].set_index("kind").iterrows():
        agg = res.aggregate(kind)
        assert agg.estimate == pytest.approx(row["estimate"], rel=1e-9), kind
        assert agg.std_error == pytest.approx(row["std_error"], rel=1e-6), kind
    pieces = pd.read_csv(REFERENCE / "moderndid_dynamic.csv")
    pieces = pieces[pieces["control"] == control].set_index("event_time")
    ours = res.aggregate("dynamic").pieces.set_index("event_time")
    # event time in years: nothing at e = -2 or -1 is invented for want of 2020-21 data
    assert list(ours.index) == list(pieces.index)
    np.testing.assert_allclose(ours["estimate"], pieces["estimate"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours["std_error"], pieces["std_error"], rtol=1e-6)


def test_staggered_att_gt_equal_csdid_on_the_gapped_panel():
    peer = pd.read_csv(REFERENCE / "csdid_att_gt.csv").set_index(["group", "time"])
    spec = StaggeredDiD(outcome="y", method="reg", n_bootstrap=0)
    ours = _quiet(spec.fit, _peer_panel()).group_time.set_index(["group", "time"])
    assert set(ours.index) == set(peer.index)
    np.testing.assert_allclose(
        ours.loc[peer.index, "estimate"], peer["estimate"], rtol=1e-9, atol=1e-12
    )


def test_event_study_equals_pyfixest_with_each_cohorts_last_observed_reference():
    """pyfixest.feols on dummies built with the rule (each cohort against its year at -1, or
    its last observed year before it): coefficients and CR1 standard errors agree."""
    peer = pd.read_csv(REFERENCE / "pyfixest_event_study_gap_reference.csv")
    res = _quiet(EventStudy(outcome="y", cluster="unit").fit, _peer_panel())
    coef = res.coefficients
    est = coef.loc[~coef["reference"]]
    assert est.index.tolist() == peer["event_time"].tolist()
    np.testing.assert_allclose(est["estimate"], peer["estimate"], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(est["std_error"], peer["std_error"], rtol=1e-6)
    # cohorts 2021 and 2022 have no data at e = -1 (2020, 2021): measured against 2019
    assert res.reference == -1
    assert res.reference_years.to_dict() == {
        2019: 2018,
        2020: 2019,
        2021: 2019,
        2022: 2019,
        2023: 2022,
    }
    assert any("cohort 2022: 2019 (event time -3), as 2021 has no data" in n for n in res.notes)


def test_event_study_equals_pyfixest_i_ref_when_no_reference_is_in_the_gap():
    """pyfixest's own ``i(rel, ref=-1)`` on the cohorts whose year -1 is observed."""
    peer = pd.read_csv(REFERENCE / "pyfixest_event_study_iref.csv")
    data = _peer_panel()
    data = data[data["first_treated"].isin([0, 2019, 2020, 2023])]
    res = _quiet(EventStudy(outcome="y", cluster="unit").fit, data)
    est = res.coefficients.loc[~res.coefficients["reference"]]
    assert est.index.tolist() == peer["event_time"].tolist()
    np.testing.assert_allclose(est["estimate"], peer["estimate"], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(est["std_error"], peer["std_error"], rtol=1e-6)


def test_sun_abraham_equals_pyfixest_saturated_regression_on_the_gapped_panel():
    """Cell estimates and CR1 standard errors from pyfixest.feols on the saturated cohort x
    event-time dummies; interaction-weighted estimates with fixed shares computed from them."""
    cells = pd.read_csv(REFERENCE / "pyfixest_sunab_cells.csv")
    iw = pd.read_csv(REFERENCE / "pyfixest_sunab_iw.csv").set_index("event_time")
    res = _quiet(SunAbraham(outcome="y", cluster="unit").fit, _peer_panel())
    ours = res.cohort_effects.set_index(["cohort", "event_time"])
    peer = cells.set_index(["cohort", "event_time"])
    assert list(ours.index) == list(peer.index)
    np.testing.assert_allclose(ours["estimate"], peer["estimate"], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours["std_error"], peer["std_error"], rtol=1e-6)
    assert (ours["n_obs"] == peer["n_obs"]).all()
    es = res.event_study.set_index("event_time")
    es = es.loc[~es["reference"]]
    assert [str(e) for e in es.index] == [e for e in iw.index if e != "ATT"]
    np.testing.assert_allclose(es["estimate"], iw["estimate"].drop("ATT"), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(
        es["std_error_fixed_shares"], iw["std_error_fixed_shares"].drop("ATT"), rtol=1e-6
    )
    att = res.averages.set_index("term").iloc[0]
    assert att["estimate"] == pytest.approx(iw.loc["ATT", "estimate"], rel=1e-8)
    assert att["std_error_fixed_shares"] == pytest.approx(
        iw.loc["ATT", "std_error_fixed_shares"], rel=1e-6
    )
    # not refused: every cohort is measured against its last observed year before the start
    assert res.reference_years.to_dict()[2022] == 2019
    assert "Reference year by cohort" in str(res.summary())


def test_imputation_equals_pyfixest_on_the_gapped_panel():
    """The imputation estimates (Borusyak, Jaravel & Spiess 2024) with step 1 fitted by
    pyfixest on the untreated rows; event times in the gap are simply absent."""
    peer = pd.read_csv(REFERENCE / "pyfixest_imputation.csv").set_index("event_time")
    res = _quiet(ImputationDiD(outcome="y").fit, _peer_panel())
    es = res.event_study.set_index("event_time")
    assert [str(e) for e in es.index] == [e for e in peer.index if e != "ATT"]
    np.testing.assert_allclose(es["estimate"], peer["estimate"].drop("ATT"), rtol=1e-8, atol=1e-10)
    assert res.estimate == pytest.approx(peer.loc["ATT", "estimate"], rel=1e-8)


# ---------------------------------------------------------------------- hand computations
def _cr1_ols(y, x_report, unit, year, cluster):
    """OLS on explicit unit and year dummies with numpy; CR1 with G/(G-1)(N-1)/(N-K), K
    counting the constant, year dummies and reported terms (unit effects nested in clusters)."""
    units = pd.get_dummies(unit).to_numpy(float)
    years = pd.get_dummies(year, drop_first=True).to_numpy(float)
    x = np.column_stack([x_report, units, years])
    xtx_inv = np.linalg.pinv(x.T @ x)
    beta = xtx_inv @ x.T @ y
    resid = y - x @ beta
    k = x_report.shape[1]
    groups = pd.factorize(cluster)[0]
    scores = np.zeros((groups.max() + 1, x.shape[1]))
    np.add.at(scores, groups, x * resid[:, None])
    cov = xtx_inv @ scores.T @ scores @ xtx_inv
    n, g = len(y), groups.max() + 1
    n_params = 1 + years.shape[1] + k
    cov *= g / (g - 1) * (n - 1) / (n - n_params)
    return beta[:k], np.sqrt(np.diag(cov)[:k])


def test_did_on_the_gapped_panel_equals_least_squares_by_hand():
    """Two-way FE DiD is not invariant to dropping years (the year effects change), so the
    gapped fit is checked against explicit-dummy least squares on the same rows instead."""
    data = _peer_panel()
    res = _quiet(DiD(outcome="y", cluster="unit").fit, data)
    beta, se = _cr1_ols(
        data["y"].to_numpy(float),
        data[["exposed"]].to_numpy(float),
        data["unit"],
        data["year"],
        data["unit"],
    )
    assert res.estimate == pytest.approx(beta[0], rel=1e-9)
    assert res.std_error == pytest.approx(se[0], rel=1e-9)
    assert res.n_periods == 6


def test_sun_abraham_cells_are_two_by_two_differences_from_each_cohorts_reference_year():
    """On a balanced panel a cell is (cohort mean in t - in its reference year) - (never-treated
    mean in t - in that year); for cohort 2022 the year is 2019, for 2020 (a start in the gap)
    2019 too, with its first cell at e = 2 (2022)."""
    data = _gapped(_panel(seed=3))
    res = _quiet(SunAbraham().fit, data)
    means = data.groupby(["first_treated", "year"])["outcome"].mean()
    refs = res.reference_years.to_dict()
    assert refs == {2019: 2018, 2020: 2019, 2022: 2019}
    for _, cell in res.cohort_effects.iterrows():
        g, t = int(cell["cohort"]), int(cell["cohort"] + cell["event_time"])
        b = refs[g]
        hand = (means[g, t] - means[g, b]) - (means[0, t] - means[0, b])
        assert cell["estimate"] == pytest.approx(hand, abs=1e-10), (g, t)
    cells = res.cohort_effects.groupby("cohort")["event_time"].apply(list).to_dict()
    assert cells[2020] == [-3, -2, 2, 3, 4]  # no e = 0 or 1 (2020, 2021), reference 2019
    assert cells[2022] == [-5, -4, 0, 1, 2]  # reference 2019 (e = -3); e = -2, -1 in the gap


def test_imputation_on_the_gapped_panel_equals_least_squares_by_hand():
    """Step 1: unit and year effects by explicit-dummy least squares on the untreated rows
    (numpy); step 2: the mean of y minus the imputed untreated outcome by event time."""
    data = _gapped(_panel(seed=9))
    post = (data["first_treated"] > 0) & (data["year"] >= data["first_treated"])
    untreated = data[~post]
    units = pd.get_dummies(untreated["unit"])
    years = pd.get_dummies(untreated["year"], drop_first=True)
    x = np.column_stack([units.to_numpy(float), years.to_numpy(float)])
    beta = np.linalg.lstsq(x, untreated["outcome"].to_numpy(float), rcond=None)[0]
    unit_effect = dict(zip(units.columns, beta[: units.shape[1]], strict=True))
    year_effect = dict(zip(years.columns, beta[units.shape[1] :], strict=True))
    treated = data[post]
    imputed = treated["unit"].map(unit_effect) + treated["year"].map(year_effect).fillna(0.0)
    effect = treated["outcome"] - imputed
    hand = effect.groupby(treated["year"] - treated["first_treated"]).mean()
    res = _quiet(ImputationDiD().fit, data)
    es = res.event_study.set_index("event_time")
    assert es.index.tolist() == hand.index.tolist() == [0, 1, 2, 3, 4, 5]
    np.testing.assert_allclose(es["estimate"], hand, rtol=1e-9, atol=1e-11)
    assert res.estimate == pytest.approx(effect.mean(), rel=1e-9)


@pytest.mark.parametrize("removed", [(2020,), (2021,), (2020, 2021)])
def test_removing_years_leaves_every_sun_abraham_cell_that_does_not_use_them(removed):
    """With never-treated comparisons, a cell depends on its own year and its cohort's
    reference year only: removing other years from every unit leaves it unchanged, to
    rounding; a cell whose reference year is removed moves to the last observed year."""
    full = _panel(seed=7)
    gapped = full[~full["year"].isin(removed)]
    ours = _quiet(SunAbraham().fit, gapped)
    theirs = _quiet(SunAbraham().fit, full)
    a = ours.cohort_effects.set_index(["cohort", "event_time"])
    b = theirs.cohort_effects.set_index(["cohort", "event_time"])
    moved = {g for g, y in ours.reference_years.items() if y != g - 1}
    assert moved == {g for g in (2019, 2020, 2022) if g - 1 in removed}
    kept = [
        (g, e) for g, e in b.index if g + e not in removed and g not in moved and (g, e) in a.index
    ]
    assert len(kept) >= 10
    np.testing.assert_allclose(a.loc[kept, "estimate"], b.loc[kept, "estimate"], atol=1e-10)
    assert not any(g + e in removed for g, e in a.index)


def test_event_study_on_the_gapped_panel_equals_least_squares_by_hand():
    data = _gapped(_panel(seed=4))
    res = _quiet(EventStudy().fit, data)
    est = res.coefficients.loc[~res.coefficients["reference"]]
    event = np.where(data["first_treated"] > 0, data["year"] - data["first_treated"], np.nan)
    ref = data["first_treated"].map({2019: -1, 2020: -1, 2022: -3}).to_numpy()
    dummies = np.column_stack([(event == e) & (event != ref) for e in est.index]).astype(float)
    beta, se = _cr1_ols(
        data["outcome"].to_numpy(float), dummies, data["unit"], data["year"], data["school"]
    )
    np.testing.assert_allclose(est["estimate"], beta, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(est["std_error"], se, rtol=1e-8)


# ---------------------------------------------------------------------- the reference year
def test_one_cohort_starting_after_the_gap_is_measured_from_2019_and_says_so():
    """A 2022 start with 2021 (and 2020) missing: the reference is 2019 (e = -3), stated in
    ``reference``, ``reference_years``, the summary and a note; e = -2 and -1 are absent (not
    zero, not a reference); the pre-trend test uses the observed pre-years (e = -5, -4)."""
    data = _gapped(_panel(seed=5, cohorts=(0, 2022)))
    for spec in (EventStudy(), SunAbraham()):
        res = _quiet(spec.fit, data)
        frame = res.event_time_frame()
        assert frame.index.tolist() == [-5, -4, -3, 0, 1, 2]
        assert frame.loc[frame["reference"]].index.tolist() == [-3]
        assert res.reference == -3 and res.reference_event_time == -3
        assert res.reference_years.to_dict() == {2022: 2019}
        text = str(res.summary())
        assert "cohort 2022: 2019" in text and "as 2021 has no data" in text
        assert res.pretrend.df_num == 2
        assert set(res.pretrend.terms) == {"event_time=-5", "event_time=-4"}
    assert "its last observed year before it" in EventStudy().describe()


def test_binning_with_a_gap_keeps_the_end_points_right():
    data = _gapped(_panel(seed=6))
    for spec in (EventStudy(window=(-4, 3)), SunAbraham(window=(-4, 3))):
        res = _quiet(spec.fit, data)
        frame = res.event_time_frame()
        # observed event times: -5..-2 (2019, 2020 cohorts: -2, -1 / -3, -2) and -5, -4 (2022)
        assert frame.index.tolist() == [-4, -3, -2, -1, 0, 1, 2, 3]
        assert frame.loc[-4, "binned"] and frame.loc[3, "binned"]
        assert not frame.loc[[-3, -2, 0, 1, 2], "binned"].any()
        assert frame.loc[frame["reference"]].index.tolist() == [-1]


def test_a_start_in_the_gap_is_kept_with_its_first_effect_in_2022():
    data = _gapped(_panel(seed=8, cohorts=(0, 2020, 2021)))
    for spec in (EventStudy(), SunAbraham(), ImputationDiD()):
        res = _quiet(spec.fit, data)
        frame = res.event_time_frame()
        post = frame.index[frame.index >= 0].tolist()
        assert post == [1, 2, 3, 4]  # 2022-2024: e = 1..3 for 2021, 2..4 for 2020
    st = _quiet(StaggeredDiD(n_bootstrap=0).fit, data).group_time
    assert set(st.loc[st["time"] >= st["group"], "time"]) == {2022, 2023, 2024}


# ---------------------------------------------------------------------- known truth
def _simulate(reps: int, seed0: int, event_study: bool = True):
    """Effects 0.2 * (years since start + 1), the same for every cohort (cohorts 2019, 2020,
    2022 and never treated), 2020 and 2021 removed: truth 0.2 at e = 0, 0.6 at e = 2, and no
    effect before the start."""
    truth = {-4: 0.0, 0: 0.2, 2: 0.6}
    specs = {"sun_abraham": SunAbraham(), "imputation": None}
    if event_study:  # two-way FE fits cost ~0.3 s each: many draws only when marked slow
        specs["event study"] = EventStudy()
    draws = {(name, e): [] for name in specs for e in truth}
    covered = {key: 0 for key in draws}
    for rep in range(reps):
        data = _gapped(_panel(seed=seed0 + rep, n_units=120))
        for name, spec in specs.items():
            if spec is None:
                spec = ImputationDiD(pretrend_leads=0)
            frame = _quiet(spec.fit, data).event_time_frame()
            for e, value in truth.items():
                if e not in frame.index or (name == "imputation" and e < 0):
                    continue
                row = frame.loc[e]
                draws[name, e].append(row["estimate"])
                covered[name, e] += row["ci_lower"] <= value <= row["ci_upper"]
    return truth, draws, covered


def _check_truth(reps, truth, draws, covered):
    bound = 3 * np.sqrt(0.95 * 0.05 / reps)
    for (name, e), values in draws.items():
        if not values:
            continue
        values = np.asarray(values)
        assert abs(values.mean() - truth[e]) < 3 * values.std(ddof=1) / np.sqrt(reps), (name, e)
        assert abs(covered[name, e] / reps - 0.95) < bound, (name, e, covered[name, e] / reps)


def test_with_the_2020_21_gap_event_studies_are_unbiased_and_intervals_cover():
    reps = 100
    _check_truth(reps, *_simulate(reps, seed0=500, event_study=False))


@pytest.mark.slow
def test_with_the_2020_21_gap_event_studies_are_unbiased_and_intervals_cover_many_draws():
    reps = 500
    _check_truth(reps, *_simulate(reps, seed0=9000))


# ---------------------------------------------------------------------- a KS2-like series
def test_every_estimator_runs_on_a_ks2_series_2017_2024_without_2020_and_2021():
    """City partnership data for 2017-2024 with starts in 2019 and 2022, built with the cohort
    stage's ``exclude_years=(2020, 2021)``: every estimator runs, states the reference year
    and, where the design allows, recovers the simulated effect within its own uncertainty."""
    from cpdimpact import CohortSpec
    from cpdimpact.datasets import city_partnership

    records = city_partnership(
        seed=5, scale=0.5, years=(2017, 2024), start_years={"City": (2019, 2022)}
    )
    cohort = CohortSpec(comparison="staggered", exclude_years=GAP).build(records)
    pupils = cohort.pupils
    assert sorted(pupils["year"].unique()) == [2017, 2018, 2019, 2022, 2023, 2024]
    effects = records.pupils.assign(effect=records.truth.pupil_effects)[["pupil", "year", "effect"]]
    kept = pupils.merge(effects, on=["pupil", "year"], how="left", validate="one_to_one")
    exposed = kept["exposed"].astype(bool)
    truth = kept.loc[exposed, "effect"].mean()  # the ATT over the pupil-years analysed
    truth_e0 = kept.loc[exposed & (kept["event_time"] == 0), "effect"].mean()

    def within(estimate, std_error, value):
        return abs(estimate - value) < 4 * std_error

    did = _quiet(DiD(covariates=("prior",)).fit, pupils)
    assert np.isfinite([did.estimate, did.std_error]).all() and did.estimate > 0

    es = _quiet(EventStudy(covariates=("prior",)).fit, pupils)
    assert es.reference_years.to_dict() == {2019: 2018, 2022: 2019}
    # -1 is 2018 for the 2019 starters; -3 is 2019 for the 2022 starters (no other cohort
    # is observed at -3, so it is a reference row, not an estimate)
    assert es.coefficients.loc[es.coefficients["reference"]].index.tolist() == [-3, -1]
    assert np.isfinite(es.coefficients["estimate"]).all()

    sa = _quiet(SunAbraham(covariates=("prior",)).fit, pupils)
    assert sa.reference_years.to_dict() == {2019: 2018, 2022: 2019}
    assert within(sa.estimate, sa.std_error, truth)
    e0 = sa.event_study.set_index("event_time").loc[0]
    assert within(e0["estimate"], e0["std_error"], truth_e0)

    imp = _quiet(ImputationDiD(covariates=("prior",)).fit, pupils)
    assert within(imp.estimate, imp.std_error, truth)

    st = _quiet(StaggeredDiD(panel=False, n_bootstrap=0).fit, pupils)
    assert set(st.group_time["base"]) <= {2017, 2018, 2019, 2022, 2023}
    assert st.group_time.set_index(["group", "time"]).loc[(2022, 2022), "base"] == 2019
    dyn = st.aggregate("dynamic").pieces.set_index("event_time")
    assert within(dyn.loc[0, "estimate"], dyn.loc[0, "std_error"], truth_e0)
