"""Group-time DiD (Callaway & Sant'Anna): mpdta parity, properties, truth, bad input."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpdimpact.did import DiD, StaggeredDiD
from cpdimpact.errors import (
    CpdImpactWarning,
    DuplicateRowsError,
    EmptyComparisonGroupError,
    EstimationError,
    InvalidValueError,
    MissingColumnError,
    SmallSampleWarning,
)
from cpdimpact.estimator import fitted_rows

MPDTA = Path(__file__).parent / "reference" / "mpdta" / "mpdta.csv"
SPEC = StaggeredDiD(
    outcome="lemp", unit="countyreal", time="year", first_treated="first_treat", n_bootstrap=0
)

# R did 2.5.1, doubly robust, no covariates, never-treated controls, varying base period.
PUBLISHED_ATT = {
    (2004, 2004): -0.0105, (2004, 2005): -0.0704, (2004, 2006): -0.1373, (2004, 2007): -0.1008,
    (2006, 2004): 0.0065, (2006, 2005): -0.0028, (2006, 2006): -0.0046, (2006, 2007): -0.0412,
    (2007, 2004): 0.0305, (2007, 2005): -0.0027, (2007, 2006): -0.0311, (2007, 2007): -0.0261,
}  # fmt: skip
ANALYTIC = {  # estimate, analytic SE (four Python implementations agree to 6 decimals)
    "simple": (-0.039951, 0.012034),
    "dynamic": (-0.077240, 0.019965),
    "group": (-0.031018, 0.012446),
    "calendar": (-0.041700, 0.015972),
}


@pytest.fixture(scope="module")
def mpdta_fit():
    return SPEC.fit(pd.read_csv(MPDTA))


def test_mpdta_group_time_effects(mpdta_fit):
    gt = mpdta_fit.group_time.set_index(["group", "time"])["estimate"]
    assert len(gt) == len(PUBLISHED_ATT)
    for cell, value in PUBLISHED_ATT.items():
        assert round(gt[cell], 4) == pytest.approx(value, abs=1e-12), cell


@pytest.mark.parametrize("kind", list(ANALYTIC))
def test_mpdta_aggregates_and_analytic_standard_errors(mpdta_fit, kind):
    agg = mpdta_fit.aggregate(kind)
    estimate, se = ANALYTIC[kind]
    assert agg.estimate == pytest.approx(estimate, abs=5e-7)
    assert agg.std_error == pytest.approx(se, abs=5e-6)


def test_mpdta_pieces_and_pretrend(mpdta_fit):
    dynamic = mpdta_fit.aggregate("dynamic").pieces.set_index("event_time")["estimate"]
    np.testing.assert_allclose(
        dynamic.round(4), [0.0305, -0.0006, -0.0245, -0.0199, -0.0510, -0.1373, -0.1008]
    )
    group = mpdta_fit.aggregate("group").pieces.set_index("group")["estimate"]
    np.testing.assert_allclose(group.round(4), [-0.0797, -0.0229, -0.0261])
    assert mpdta_fit.pretrend.p_value == pytest.approx(0.16812, abs=5e-6)
    assert mpdta_fit.pretrend.df == 5


def test_faces(mpdta_fit):
    frame = mpdta_fit.to_frame()
    assert frame["term"].iloc[0] == "ATT(2004,2004)"
    assert "Callaway" in str(mpdta_fit.summary())
    assert "<table>" in mpdta_fit._repr_html_()
    assert mpdta_fit.plot() is not None
    agg = mpdta_fit.aggregate("dynamic", min_e=-1, max_e=2)
    assert list(agg.pieces["event_time"]) == [-1, 0, 1, 2]
    lower, upper = agg.conf_int().iloc[0]
    assert lower < agg.estimate < upper
    assert agg.to_frame()["term"].iloc[0] == "dynamic: overall"
    with pytest.raises(ValueError, match="kind"):
        mpdta_fit.aggregate("cohort")


# ---------------------------------------------------------------------- by hand
def _tiny_panel() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for unit in range(12):
        first = (0, 0, 0, 3, 3, 3, 4, 4, 4, 5, 5, 5)[unit]
        for t in range(1, 6):
            effect = 0.5 * (t - first + 1) if first and t >= first else 0.0
            rows.append((unit, t, first, unit * 0.3 + 0.2 * t + effect + rng.normal(0, 0.1)))
    return pd.DataFrame(rows, columns=["unit", "year", "first_treated", "outcome"])


def test_not_yet_treated_cell_by_hand():
    data = _tiny_panel()
    res = StaggeredDiD(control_group="not_yet_treated", n_bootstrap=0).fit(data)
    wide = data.pivot(index="unit", columns="year", values="outcome")
    first = data.groupby("unit")["first_treated"].first()
    # ATT(3, 3): cohort 3 against units not yet treated in period 3 (cohorts 4, 5, never).
    change = wide[3] - wide[2]
    expected = change[first == 3].mean() - change[(first == 0) | (first > 3)].mean()
    cell = res.group_time.set_index(["group", "time"]).loc[(3, 3)]
    assert cell["estimate"] == pytest.approx(expected, rel=1e-12)
    assert cell["n_control"] == 9  # 3 never treated, 3 starting in 4, 3 in 5


def test_universal_base_period():
    data = _tiny_panel()
    res = StaggeredDiD(base_period="universal", n_bootstrap=0).fit(data)
    cells = res.group_time
    assert (cells["base"] == cells["group"] - 1).all()
    assert not (cells["time"] == cells["group"] - 1).any()
    wide = data.pivot(index="unit", columns="year", values="outcome")
    first = data.groupby("unit")["first_treated"].first()
    change = wide[1] - wide[3]  # cohort 4, period 1 against its base 3
    expected = change[first == 4].mean() - change[first == 0].mean()
    assert cells.set_index(["group", "time"]).loc[(4, 1), "estimate"] == pytest.approx(expected)


@settings(max_examples=15, deadline=None)
@given(
    unit_shift=st.lists(st.floats(-5, 5), min_size=12, max_size=12),
    time_shift=st.lists(st.floats(-5, 5), min_size=5, max_size=5),
)
def test_unit_and_period_constants_leave_every_att_unchanged(unit_shift, time_shift):
    data = _tiny_panel()
    shifted = data.assign(
        outcome=data["outcome"]
        + np.asarray(unit_shift)[data["unit"]]
        + np.asarray(time_shift)[data["year"] - 1]
    )
    base = StaggeredDiD(n_bootstrap=0).fit(data).group_time
    moved = StaggeredDiD(n_bootstrap=0).fit(shifted).group_time
    np.testing.assert_allclose(moved["estimate"], base["estimate"], atol=1e-9)
    np.testing.assert_allclose(moved["std_error"], base["std_error"], rtol=1e-7, atol=1e-12)


def test_row_order_and_input_untouched():
    data = _tiny_panel()
    before = data.copy()
    a = StaggeredDiD(n_bootstrap=0).fit(data).group_time
    b = StaggeredDiD(n_bootstrap=0).fit(data.sample(frac=1, random_state=1)).group_time
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(data, before)


# ---------------------------------------------------------------------- known truth
def _staggered_panel(rng, n_units=240):
    """Three cohorts with effects growing over event time at different rates, plus never."""
    first = rng.choice([0, 4, 6, 8], size=n_units, p=[0.4, 0.2, 0.2, 0.2])
    years = np.arange(1, 11)
    unit = np.repeat(np.arange(n_units), years.size)
    year = np.tile(years, n_units)
    g = first[unit]
    event = np.where(g > 0, year - g, -1)
    slope = {4: 0.3, 6: 0.2, 8: 0.1}
    effect = np.where(event >= 0, (event + 1) * np.vectorize(slope.get)(np.where(g > 0, g, 4)), 0)
    y = rng.normal(0, 1, n_units)[unit] + 0.1 * year + effect + rng.normal(0, 0.5, unit.size)
    truth_cells = {(c, t): (t - c + 1) * slope[c] for c in (4, 6, 8) for t in years if t >= c}
    shares = {c: (first == c).mean() for c in (4, 6, 8)}
    weights = np.array([shares[c] for c, _ in truth_cells])
    simple = float(weights @ np.array(list(truth_cells.values())) / weights.sum())
    data = pd.DataFrame(
        {
            "unit": unit,
            "year": year,
            "first_treated": g,
            "outcome": y,
            "exposed": event >= 0,
            "school": unit,
        }
    )
    return data, simple


def test_unbiased_and_covering_where_twfe_is_biased():
    rng = np.random.default_rng(11)
    rows = []
    for _ in range(60):
        data, truth = _staggered_panel(rng)
        agg = StaggeredDiD(n_bootstrap=0).fit(data).aggregate("simple")
        lower, upper = agg.conf_int().iloc[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CpdImpactWarning)
            twfe = DiD().fit(data).estimate
        rows.append(
            (
                agg.estimate - truth,
                (agg.estimate - truth) / agg.std_error,
                lower <= truth <= upper,
                twfe - truth,
            )
        )
    study = pd.DataFrame(rows, columns=["error", "z", "covered", "twfe_error"])
    n = len(study)
    assert abs(study["error"].mean()) < 3 * study["error"].std() / np.sqrt(n)
    assert study["covered"].sum() >= 51  # of 60; P(X <= 50) is about 1% at 95% coverage
    # Growing effects make already-treated controls subtract effects: TWFE is biased down.
    assert study["twfe_error"].mean() < -10 * study["twfe_error"].std() / np.sqrt(n)


# ---------------------------------------------------------------------- bad input
def test_switching_treatment_is_refused():
    data = _tiny_panel()
    data.loc[(data["unit"] == 4) & (data["year"] == 5), "first_treated"] = 0
    with pytest.raises(InvalidValueError, match="absorbing"):
        StaggeredDiD(n_bootstrap=0).fit(data)


def test_units_treated_from_the_first_period_are_dropped_and_counted():
    data = _tiny_panel()
    data.loc[data["unit"] == 0, "first_treated"] = 1
    with pytest.warns(SmallSampleWarning, match="1 units treated from the first period"):
        res = StaggeredDiD(n_bootstrap=0).fit(data)
    assert res.n_units == 11
    assert any("first period" in note for note in res.notes)


def test_no_never_treated_units():
    data = _tiny_panel()
    data = data[data["first_treated"] > 0]
    with pytest.raises(EmptyComparisonGroupError, match="not_yet_treated"):
        StaggeredDiD(n_bootstrap=0).fit(data)
    res = StaggeredDiD(control_group="not_yet_treated", n_bootstrap=0).fit(data)
    assert (res.group_time["time"] < 5).all()  # no control is left once everyone has started


def test_cohort_of_one_unit_warns():
    data = _tiny_panel()
    data = data[~data["unit"].isin([10, 11])]
    with pytest.warns(SmallSampleWarning, match=r"cohorts \[5\] hold a single unit"):
        StaggeredDiD(n_bootstrap=0).fit(data)


def test_duplicates_and_non_integer_time():
    data = _tiny_panel()
    with pytest.raises(DuplicateRowsError, match="one row per unit and period"):
        StaggeredDiD(n_bootstrap=0).fit(pd.concat([data, data.iloc[[0]]], ignore_index=True))
    with pytest.raises(InvalidValueError, match="whole periods"):
        StaggeredDiD(n_bootstrap=0).fit(data.assign(year=data["year"] + 0.5))


def test_unbalanced_panel_is_used_as_it_is():
    data = _tiny_panel()
    data = data.drop(index=data.index[(data["unit"] == 1) & (data["year"] == 2)])
    res = StaggeredDiD(n_bootstrap=0).fit(data)
    assert res.n_units == 12 and res.n_rows == len(data)
    assert any("unbalanced panel: 1 of 12 units" in note for note in res.notes)
    # Cells whose two periods do not involve the gap are the balanced-panel ones exactly.
    balanced = (
        StaggeredDiD(n_bootstrap=0).fit(_tiny_panel()).group_time.set_index(["group", "time"])
    )
    cells = res.group_time.set_index(["group", "time"])
    untouched = (cells["base"] != 2) & (cells.index.get_level_values("time") != 2)
    np.testing.assert_allclose(
        cells.loc[untouched, "estimate"], balanced.loc[untouched, "estimate"], atol=1e-12
    )


def test_bad_specs():
    with pytest.raises(ValueError, match="method must be one of"):
        StaggeredDiD(method="aipw")
    with pytest.raises(ValueError, match="panel must be True or False"):
        StaggeredDiD(panel="no")
    assert StaggeredDiD(covariates="prior").covariates == ("prior",)
    assert StaggeredDiD.data_level == "unit_year"  # a class variable (issue 14)
    assert fitted_rows(StaggeredDiD(panel=False), "pupil") == "pupil"  # cross-sections: any
    assert fitted_rows(StaggeredDiD(), "pupil") == "unit_year"


# ---------------------------------------------------------------------- bootstrap
def test_multiplier_bootstrap_close_to_analytic_and_reproducible(mpdta_fit):
    data = pd.read_csv(MPDTA)
    spec = StaggeredDiD(
        outcome="lemp",
        unit="countyreal",
        time="year",
        first_treated="first_treat",
        n_bootstrap=999,
        seed=20261123,
    )
    boot = spec.fit(data)
    again = spec.fit(data)
    pd.testing.assert_frame_equal(boot.group_time, again.group_time)
    assert "999 draws, seed 20261123" in boot.inference
    # The IQR-based bootstrap SE has a Monte Carlo CV of about 4% at 999 draws.
    ratio = boot.group_time["std_error"] / mpdta_fit.group_time["std_error"]
    assert ratio.between(0.85, 1.15).all(), ratio.to_numpy()
    simple = boot.aggregate("simple")
    assert simple.std_error == pytest.approx(ANALYTIC["simple"][1], rel=0.15)
    # Uniform bands are wider than pointwise intervals.
    gt = boot.group_time
    assert (gt["band_upper"] - gt["band_lower"] > gt["ci_upper"] - gt["ci_lower"]).all()


def test_unit_clusters_equal_no_clustering():
    data = _tiny_panel().assign(area=lambda d: d["unit"])
    plain = StaggeredDiD(n_bootstrap=199, seed=5).fit(data)
    clustered = StaggeredDiD(n_bootstrap=199, seed=5, cluster="area").fit(data)
    np.testing.assert_allclose(
        plain.group_time["std_error"], clustered.group_time["std_error"], rtol=1e-12
    )
    assert "clustered by area (12 clusters)" in clustered.inference


def test_cluster_column_checks():
    data = _tiny_panel().assign(area=lambda d: d["unit"] % 4)
    res = StaggeredDiD(n_bootstrap=99, seed=1, cluster="area").fit(data)
    assert "4 clusters" in res.inference
    bad = data.assign(area=np.arange(len(data)) % 4)
    with pytest.raises(InvalidValueError, match="constant within each unit"):
        StaggeredDiD(n_bootstrap=99, seed=1, cluster="area").fit(bad)
    analytic = StaggeredDiD(n_bootstrap=0, cluster="area").fit(data)
    assert "analytic influence-function standard errors, clustered by area (4 clusters)" in (
        analytic.inference
    )


# ---------------------------------------------------------------------- pipeline
def test_pipeline_uses_it_by_default_for_staggered_designs(tmp_path):
    import json

    from cpdimpact import Evaluation
    from cpdimpact.datasets import city_partnership

    records = city_partnership(seed=1, scale=0.3, start_years={"City": (2020, 2022)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        result = Evaluation(seed=3).run(records)
        single = Evaluation(seed=3).run(city_partnership(seed=1, scale=0.3))
    assert type(result.estimator).__name__ == "StaggeredDiD"
    assert type(single.estimator).__name__ == "DiD"
    head = result.headline.set_index("group")
    assert np.isfinite(head.loc["All pupils", "effect_size"])
    assert head.loc["All pupils", "estimate"] == pytest.approx(
        result.groups[0].did.aggregate("simple").estimate
    )
    paths = result.save(tmp_path)
    payload = json.loads(paths["results.json"].read_text())
    assert payload["estimator_used"]["kind"] == "StaggeredDiD"
    assert payload["estimator_used"]["seed"] == 3
    assert "Callaway" in paths["report.md"].read_text()


def test_staggered_cohort_for_a_national_roll_out():
    from cpdimpact import CohortSpec, Evaluation
    from cpdimpact.datasets import hub_rollout

    records = hub_rollout(seed=2, scale=0.04)
    cohort = CohortSpec(comparison="staggered").build(records)
    assert cohort.start_years == (2019, 2021)
    assert cohort.flow.exclusions["pupils"].sum() == 0  # every pupil record kept
    table = cohort.standardisation
    # Once everyone has started, no record is unexposed: those years borrow an earlier year's.
    assert list(table.index[table["borrowed_from"].notna()]) == [2021, 2022]
    assert cohort.outcome_sd_source.startswith("records not yet exposed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        result = Evaluation(
            cohort=CohortSpec(comparison="staggered"), event_study=None, seed=1
        ).run(records)
    assert result.estimator.control_group == "not_yet_treated"
    head = result.headline.set_index("group")
    assert np.isfinite(head.loc[["All pupils", "FSM pupils"], "effect_size"]).all()


def test_cohort_starting_after_the_data_serves_as_never_treated():
    data = _tiny_panel()
    late = data.assign(first_treated=np.where(data["first_treated"] == 0, 9, data["first_treated"]))
    res = StaggeredDiD(n_bootstrap=0).fit(late)
    base = StaggeredDiD(n_bootstrap=0).fit(data)
    pd.testing.assert_frame_equal(res.group_time, base.group_time)
    assert any("after the last period" in note for note in res.notes)


def test_bootstrap_draws_do_not_depend_on_threads(monkeypatch):
    import cpdimpact.did._multiplier as module

    data = _tiny_panel()
    spec = StaggeredDiD(n_bootstrap=300, seed=8)
    threaded = spec.fit(data).group_time
    monkeypatch.setattr(module.os, "cpu_count", lambda: 1)
    serial = spec.fit(data).group_time
    pd.testing.assert_frame_equal(threaded, serial)


# ---------------------------------------------------------------------- covariates, rows
REFERENCE = Path(__file__).parent / "reference" / "staggered"
PEER_CASES = json.loads((REFERENCE / "reference.json").read_text())["cases"]
CONTROLS = {"nevertreated": "never_treated", "notyettreated": "not_yet_treated"}


def _reference_case(key: str) -> tuple[pd.DataFrame, StaggeredDiD]:
    """The data and spec of a stored peer case (see tests/reference/staggered)."""
    parts = key.split("_")
    spec = dict(outcome="y", unit="unit", time="year", first_treated="cohort", n_bootstrap=0)
    if key.startswith("mpdta"):
        data = pd.read_csv(MPDTA).rename(
            columns={"lemp": "y", "first_treat": "cohort", "countyreal": "unit"}
        )
        spec.update(covariates=("lpop",), method=parts[2], control_group=CONTROLS[parts[3]])
    elif key.startswith("panel"):
        data = pd.read_csv(REFERENCE / "panel.csv")
        spec.update(covariates=("x", "z"), method=parts[2], control_group=CONTROLS[parts[3]])
    else:
        cross = key.startswith("cross")
        data = pd.read_csv(REFERENCE / ("cross_sections.csv" if cross else "unbalanced.csv"))
        tag, method = parts[-2], parts[-1]
        spec.update(covariates=() if tag == "none" else ("x", "z"), method=method, panel=not cross)
    return data, StaggeredDiD(**spec)


# moderndid 0.2 (like the R DRDID source it ports) adds the base-period outcome regressions'
# estimation effect in drdid_rc with the wrong sign; csdid's drdid and a leave-one-out check
# (test_repeated_cross_section_influence_function_is_the_jackknife_one) agree with ours.
KNOWN_SE_DIFFERENCE = {("cross_sections_xz_dr", "moderndid")}


@pytest.mark.parametrize(
    "key, peer", [(k, p) for k, peers in sorted(PEER_CASES.items()) for p in sorted(peers)]
)
def test_peer_parity_covariates_unbalanced_cross_sections(key, peer):
    data, spec = _reference_case(key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        res = spec.fit(data)
    ours = res.group_time.set_index(["group", "time"])
    theirs = pd.DataFrame(PEER_CASES[key][peer]["cells"]).set_index(["group", "time"])
    assert sorted(theirs.index) == sorted(ours.index)
    theirs = theirs.loc[ours.index]
    # csdid's table carries 8-9 significant digits; moderndid's full double precision.
    est_tol, se_rtol = (1e-7, 1e-6) if peer == "csdid" else (1e-10, 1e-9)
    np.testing.assert_allclose(ours["estimate"], theirs["estimate"], atol=est_tol, rtol=0)
    if (key, peer) in KNOWN_SE_DIFFERENCE:
        return
    np.testing.assert_allclose(ours["std_error"], theirs["std_error"], rtol=se_rtol)
    for kind, agg in PEER_CASES[key][peer].get("aggregates", {}).items():
        mine = res.aggregate(kind)
        assert mine.estimate == pytest.approx(agg["estimate"], abs=1e-10), kind
        assert mine.std_error == pytest.approx(agg["std_error"], rel=1e-9), kind


def test_repeated_cross_section_influence_function_is_the_jackknife_one():
    """The doubly robust cross-section IF equals the leave-one-out linearisation."""
    from cpdimpact.did._drdid import repeated_att

    rng = np.random.default_rng(5)
    n = 20_000
    x = np.column_stack([np.ones(n), rng.normal(size=n), rng.binomial(1, 0.4, n)])
    d = rng.random(n) < 1 / (1 + np.exp(-(0.3 * x[:, 1] - 0.5 + 0.4 * x[:, 2])))
    post = rng.random(n) < 0.5
    y = 1 + x[:, 1] + 0.5 * post + 0.3 * x[:, 1] ** 2 * post + d * post * (1 + 0.5 * x[:, 1])
    y = y + 0.5 * d + rng.normal(size=n)
    att, inf = repeated_att(y, post, d, x, "dr", "test")
    assert abs(inf.mean()) < 1e-10
    for i in np.flatnonzero(~d & ~post)[:4].tolist() + np.flatnonzero(d & post)[:2].tolist():
        keep = np.arange(n) != i
        loo, _ = repeated_att(y[keep], post[keep], d[keep], x[keep], "dr", "test")
        jackknife = -(loo - att) * (n - 1)
        # Second-order terms are O(1/n): ~1e-3 of the IF at this n; the sign error of the
        # moderndid IF moves these rows by ~1e-2.
        assert jackknife == pytest.approx(inf[i], rel=2e-3, abs=2e-3), i


def _covariate_panel(rng, n_units=300):
    """Selection on x, with trends that depend on x: unconditional DiD is biased."""
    x = rng.normal(size=n_units)
    first = np.where(x + rng.logistic(scale=0.7, size=n_units) > 0.3, 4, 0)
    years = np.arange(1, 7)
    unit, year = np.repeat(np.arange(n_units), years.size), np.tile(years, n_units)
    xu, fu = x[unit], first[unit]
    effect = np.where((fu > 0) & (year >= fu), 1.0, 0.0)
    y = rng.normal(size=n_units)[unit] + 0.5 * year * xu + effect + rng.normal(0, 0.5, unit.size)
    return pd.DataFrame({"unit": unit, "year": year, "first_treated": fu, "x": xu, "outcome": y})


@pytest.mark.parametrize(
    "method, panel", [("dr", True), ("ipw", True), ("reg", True), ("dr", False), ("reg", False)]
)
def test_covariates_remove_the_bias_of_covariate_specific_trends(method, panel):
    """Coverage with covariates; panel=False treats the rows as cross-sections clustered by
    unit (the unit effects make rows of one unit dependent)."""
    rng = np.random.default_rng(21)
    hits, zs = 0, []
    cluster = None if panel else "unit"
    for _ in range(20):
        data = _covariate_panel(rng)
        agg = StaggeredDiD(
            covariates=("x",), method=method, panel=panel, cluster=cluster, n_bootstrap=0
        ).fit(data)
        simple = agg.aggregate("simple")
        zs.append((simple.estimate - 1.0) / simple.std_error)
        lower, upper = simple.conf_int().iloc[0]
        hits += lower <= 1.0 <= upper
    # 20 replications: at least 16 covering (P < 1% under 95% coverage); mean z within 3 MC SE.
    assert hits >= 16, hits
    assert abs(np.mean(zs)) < 3 / np.sqrt(20), np.mean(zs)
    unadjusted = StaggeredDiD(n_bootstrap=0).fit(data).aggregate("simple").estimate
    assert unadjusted > 1.3  # selection on x with x-specific trends: biased upwards


@settings(max_examples=10, deadline=None)
@given(
    unit_shift=st.lists(st.floats(-5, 5), min_size=300, max_size=300),
    time_shift=st.lists(st.floats(-5, 5), min_size=6, max_size=6),
    method=st.sampled_from(["dr", "ipw", "reg"]),
    panel=st.booleans(),
)
def test_constants_leave_covariate_adjusted_atts_unchanged(unit_shift, time_shift, method, panel):
    data = _covariate_panel(np.random.default_rng(2))
    shifted = data.assign(
        outcome=data["outcome"]
        + np.asarray(unit_shift)[data["unit"]]
        + np.asarray(time_shift)[data["year"] - 1]
    )
    if not panel:  # a period constant only: rows of a cross-section have no unit effect
        shifted["outcome"] = data["outcome"] + np.asarray(time_shift)[data["year"] - 1]
    spec = StaggeredDiD(covariates=("x",), method=method, panel=panel, n_bootstrap=0)
    base, moved = spec.fit(data).group_time, spec.fit(shifted).group_time
    np.testing.assert_allclose(moved["estimate"], base["estimate"], atol=1e-8)
    np.testing.assert_allclose(moved["std_error"], base["std_error"], rtol=1e-6)


def test_covariate_bad_input():
    data = _covariate_panel(np.random.default_rng(3))
    with pytest.raises(MissingColumnError, match="prior"):
        StaggeredDiD(covariates=("prior",), n_bootstrap=0).fit(data)
    with pytest.raises(InvalidValueError, match="dummy-encode"):
        StaggeredDiD(covariates=("x",), n_bootstrap=0).fit(data.assign(x="a"))
    gappy = data.assign(x=data["x"].where(data.index != 7))
    with pytest.warns(SmallSampleWarning, match="1 rows with a missing outcome or covariate"):
        res = StaggeredDiD(covariates=("x",), n_bootstrap=0).fit(gappy)
    assert res.n_rows == len(data) - 1
    # A covariate that separates the cohort from its controls: no overlap.
    separated = data.assign(x=(data["first_treated"] > 0).astype(float))
    with pytest.raises(EstimationError, match="no overlap|separate"):
        StaggeredDiD(covariates=("x",), method="ipw", n_bootstrap=0).fit(separated)


def test_pupil_rows_as_repeated_cross_sections_recover_the_truth():
    from cpdimpact.cohort import CohortSpec
    from cpdimpact.datasets import city_partnership

    records = city_partnership(seed=4, scale=0.5)
    cohort = CohortSpec().build(records)
    pupils = cohort.pupils
    spec = StaggeredDiD(panel=False, cluster="unit", n_bootstrap=0, covariates=("fsm",))
    res = spec.fit(pupils.assign(fsm=pupils["fsm"].astype(float)))
    assert res.n_rows == len(pupils) and "clustered by unit" in res.inference
    treated = pupils[(pupils["first_treated"] > 0) & (pupils["year"] >= pupils["first_treated"])]
    truth = records.true_effect(treated)["att"]
    lower, upper = res.aggregate("simple").conf_int(alpha=0.001).iloc[0]
    assert lower < truth < upper


@pytest.mark.parametrize("kind", ["simple", "dynamic", "group", "calendar"])
def test_cell_weights_reproduce_every_aggregate(mpdta_fit, kind):
    agg = mpdta_fit.aggregate(kind)
    weights = agg.cell_weights
    assert weights @ mpdta_fit.group_time["estimate"].to_numpy() == pytest.approx(agg.estimate)
    assert weights.sum() == pytest.approx(1.0) and (weights >= 0).all()


def test_wild_bootstrap_method_is_the_function():
    from cpdimpact.did import wild_bootstrap_aggregate

    data = _tiny_panel().assign(area=lambda d: d["unit"] % 6)
    fit = StaggeredDiD(cluster="area", n_bootstrap=0).fit(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        a = fit.wild_bootstrap("simple", weights_type="rademacher", seed=1)
        b = wild_bootstrap_aggregate(fit, "simple", weights_type="rademacher", seed=1)
    assert (a.p_value, a.ci_lower, a.ci_upper) == (b.p_value, b.ci_lower, b.ci_upper)
    assert not a.restricted  # unrestricted by default for aggregates


def test_an_event_time_missing_for_want_of_comparisons_is_not_a_reference():
    """A national roll-out, not-yet-treated controls: the later cohort's event time -2 has no
    unit left to compare with, so the dynamic aggregate lacks it. With a varying base period
    there is no reference period, and the gap must not be drawn as one (a zero)."""
    from cpdimpact.cohort import CohortSpec
    from cpdimpact.datasets import hub_rollout

    cohort = CohortSpec(comparison="staggered").build(hub_rollout(seed=1, scale=0.05))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = StaggeredDiD(control_group="not_yet_treated", n_bootstrap=0).fit(cohort.unit_years)
        universal = StaggeredDiD(
            control_group="not_yet_treated", n_bootstrap=0, base_period="universal"
        ).fit(cohort.unit_years)
    dynamic = fit.aggregate("dynamic")
    times = set(dynamic.pieces["event_time"])
    assert -2 not in times and {-3, -1} <= times  # the gap
    assert dynamic.reference_event_time is None
    frame = dynamic.event_time_frame()
    assert not frame["reference"].any() and -2 not in frame.index
    assert universal.aggregate("dynamic").reference_event_time == -1


def _panel_with_years(seed: int = 11, n_units: int = 240) -> pd.DataFrame:
    """Cohorts 2018, 2020, 2021, 2023 and never treated, 2015-2024, effects growing with
    exposure, covariate-free parallel trends."""
    rng = np.random.default_rng(seed)
    cohorts = rng.choice([0, 2018, 2020, 2021, 2023], size=n_units)
    level = rng.normal(size=n_units)
    rows = []
    for t in range(2015, 2025):
        shock = rng.normal(0, 0.3)
        for unit in range(n_units):
            g = cohorts[unit]
            effect = 0.2 * (t - g + 1) if g and t >= g else 0.0
            y = level[unit] + 0.1 * (t - 2015) + shock + effect + rng.normal(0, 0.5)
            rows.append((unit, t, g, y))
    return pd.DataFrame(rows, columns=["unit", "year", "first_treated", "outcome"])


@pytest.mark.parametrize("control_group", ["never_treated", "not_yet_treated"])
@pytest.mark.parametrize("base_period", ["varying", "universal"])
@pytest.mark.parametrize("removed", [(2020,), (2020, 2021)])
def test_removing_years_leaves_every_cell_that_does_not_use_them(
    control_group, base_period, removed
):
    """No KS2 tests in 2020 and 2021: with those years gone, every ATT(g, t) whose two periods
    are still observed is the full panel's, to the last bit of arithmetic; cells whose base
    year is gone are measured from the last observed year before (never refused)."""
    full = _panel_with_years()
    gapped = full[~full["year"].isin(removed)]
    spec = StaggeredDiD(control_group=control_group, base_period=base_period, n_bootstrap=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = spec.fit(gapped).group_time.set_index(["group", "time"])
        theirs = spec.fit(full).group_time.set_index(["group", "time"])
    kept = theirs[~theirs.index.get_level_values("time").isin(removed)]
    kept = kept[~kept["base"].isin(removed)]
    same = ours.loc[kept.index]
    assert (same["base"] == kept["base"]).all()
    np.testing.assert_allclose(same["estimate"], kept["estimate"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(same["std_error"], kept["std_error"], rtol=1e-10)
    assert not ours.index.get_level_values("time").isin(removed).any()
    # the cells that used a removed year as their base now start from the last year before it
    moved = theirs[
        theirs["base"].isin(removed) & ~theirs.index.get_level_values("time").isin(removed)
    ]
    for (g, t), row in moved.iterrows():
        if (g, t) in ours.index:
            base = ours.loc[(g, t), "base"]
            assert base not in removed and base < row["base"]
    # a cohort starting in a year with no data keeps its later effects (did issue #89)
    if 2021 in removed:
        assert (2021, 2022) in ours.index and ours.loc[(2021, 2022), "base"] == 2019


def test_a_gap_in_the_years_keeps_the_aggregates_honest():
    """The dynamic aggregate averages the cells it has, by event time in years; e = 0 of the
    cohort that started in a year with no data is simply missing from that average."""
    full = _panel_with_years()
    gapped = full[~full["year"].isin((2020, 2021))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = StaggeredDiD(control_group="not_yet_treated", n_bootstrap=0).fit(gapped)
    dynamic = fit.aggregate("dynamic")
    gt = fit.group_time
    post = gt[gt["time"] >= gt["group"]].assign(e=lambda d: d["time"] - d["group"])
    shares = gapped.drop_duplicates("unit")["first_treated"].value_counts()
    for e, cells in post.groupby("e"):
        w = shares.reindex(cells["group"]).to_numpy(dtype=float)
        by_hand = float(np.average(cells["estimate"], weights=w))
        got = dynamic.pieces.set_index("event_time").loc[e, "estimate"]
        assert got == pytest.approx(by_hand, rel=1e-12)


def test_with_the_2020_21_gap_effects_are_unbiased_and_intervals_cover():
    """Known truth with no data in 2020 and 2021: the effect at one year after the start is
    0.4 for every cohort (0.2 a year of exposure), and e = 2 is 0.6. Over 200 simulated panels
    the dynamic aggregate's estimates centre on the truth and its 95% intervals cover it about
    95% of the time (Monte Carlo bounds: three standard errors)."""
    reps, truth = 200, {1: 0.4, 2: 0.6}
    spec = StaggeredDiD(control_group="not_yet_treated", n_bootstrap=0)
    estimates = {e: [] for e in truth}
    covered = {e: 0 for e in truth}
    for seed in range(reps):
        data = _panel_with_years(seed=1000 + seed, n_units=120)
        data = data[~data["year"].isin((2020, 2021))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dynamic = spec.fit(data).aggregate("dynamic")
        frame = dynamic.event_time_frame()
        for e, value in truth.items():
            row = frame.loc[e]
            estimates[e].append(row["estimate"])
            covered[e] += row["ci_lower"] <= value <= row["ci_upper"]
    bound = 3 * np.sqrt(0.95 * 0.05 / reps)
    for e, value in truth.items():
        draws = np.asarray(estimates[e])
        assert abs(draws.mean() - value) < 3 * draws.std(ddof=1) / np.sqrt(reps), e
        assert abs(covered[e] / reps - 0.95) < bound, (e, covered[e] / reps)
