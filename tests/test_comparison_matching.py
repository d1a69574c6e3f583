"""Matching and weighting of schools (cpdimpact.comparison).

Reference outputs: tests/reference/comparison/ (matchit.R with R MatchIt 4.5.1 plus the two
upstream fixes in build_patched_matchit.sh; data: MatchIt's lalonde).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpdimpact.comparison import (
    CoarsenedExactMatching,
    ComparisonWeights,
    EntropyBalancing,
    MahalanobisMatching,
    NearestMatching,
    balance_table,
    plot_love,
    propensity_score,
    school_characteristics,
)
from cpdimpact.errors import (
    DesignError,
    DuplicateRowsError,
    EmptyComparisonGroupError,
    InvalidValueError,
    MissingColumnError,
)

matplotlib.use("Agg")

REF = Path(__file__).parent / "reference" / "comparison"
COVS = ["age", "educ", "race", "married", "nodegree", "re74", "re75"]
CUTS = {
    "age": [20, 25, 30, 40],
    "educ": [9, 12],
    "re74": [1, 5000, 15000],
    "re75": [1, 5000, 15000],
    "married": 0,
    "nodegree": 0,
}
KW = {"treatment": "treat", "unit": "id"}

CASES = {
    "nearest_ps": NearestMatching(covariates=COVS, distance="probability", **KW),
    "nearest_logit_caliper": NearestMatching(covariates=COVS, caliper=0.2, **KW),
    "nearest_ps_caliper": NearestMatching(
        covariates=COVS, distance="probability", caliper=0.01, **KW
    ),
    "nearest_replace": NearestMatching(covariates=COVS, replace=True, **KW),
    "nearest_2to1": NearestMatching(covariates=COVS, ratio=2, **KW),
    "nearest_3to1_replace": NearestMatching(covariates=COVS, ratio=3, replace=True, **KW),
    "mahalanobis": MahalanobisMatching(
        covariates=["age", "educ", "married", "nodegree", "re74", "re75"], **KW
    ),
    "cem": CoarsenedExactMatching(covariates=COVS, cutpoints=CUTS, **KW),
    "cem_sturges": CoarsenedExactMatching(
        covariates=["age", "educ", "race", "married", "re74"], **KW
    ),
}


@pytest.fixture(scope="module")
def lalonde():
    return pd.read_csv(REF / "lalonde.csv")


@pytest.fixture(scope="module")
def fitted(lalonde):
    return {name: spec.fit(lalonde) for name, spec in CASES.items()}


def _partition(labels: pd.Series) -> set[frozenset]:
    groups = labels.dropna().groupby(labels.dropna()).groups
    return {frozenset(ids) for ids in groups.values()}


# ---------------------------------------------------------------------------- MatchIt parity
@pytest.mark.parametrize("name", list(CASES))
def test_weights_match_matchit(fitted, name):
    ref = pd.read_csv(REF / f"weights_{name}.csv")
    res = fitted[name]
    ours = res.weights.reindex(ref["id"]).to_numpy()
    np.testing.assert_allclose(ours, ref["weight"].to_numpy(), rtol=0, atol=1e-12)
    assert res.counts.loc["treated", "used"] == int(((ref.treat == 1) & (ref.weight > 0)).sum())
    assert res.counts.loc["control", "used"] == int(((ref.treat == 0) & (ref.weight > 0)).sum())


@pytest.mark.parametrize(
    "name", [n for n in CASES if n.startswith("nearest") or n == "mahalanobis"]
)
def test_matched_pairs_match_matchit(fitted, name):
    ref = pd.read_csv(REF / f"matches_{name}.csv").dropna(subset=["control"])
    ours = fitted[name].matches
    assert set(zip(ref.treated, ref["rank"], ref.control, strict=True)) == set(
        zip(ours.treated, ours["rank"], ours.control, strict=True)
    )


@pytest.mark.parametrize(
    "name",
    [n for n in CASES if "replace" not in n and not n.startswith("cem")] + ["cem", "cem_sturges"],
)
def test_matched_sets_match_matchit(fitted, name):
    ref = pd.read_csv(REF / f"weights_{name}.csv").set_index("id")["subclass"]
    ours = fitted[name].subclass.reindex(ref.index)
    assert _partition(ours.astype("float")) == _partition(ref)


@pytest.mark.parametrize("name", [n for n in CASES if n.startswith("nearest")])
def test_propensity_score_matches_glm(fitted, name):
    ref = pd.read_csv(REF / f"weights_{name}.csv").set_index("id")["distance"]
    ours = fitted[name].distance.reindex(ref.index)
    # glm stops at a relative deviance change of 1e-8; we iterate further
    np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), rtol=0, atol=1e-7)


@pytest.mark.parametrize("name", list(CASES))
def test_balance_matches_matchit_summary(fitted, name):
    ref = pd.read_csv(REF / f"balance_{name}.csv")
    ref = ref[ref.variable != "distance"].copy()
    ref["variable"] = ref["variable"].str.replace(r"^race(\w+)$", r"race=\1", regex=True)
    ours = fitted[name].balance.set_index(["variable", "sample"])
    ref = ref.set_index(["variable", "sample"])
    assert set(ref.index) == set(ours.index)
    cols = [
        "treated_mean",
        "control_mean",
        "std_mean_diff",
        "variance_ratio",
        "ecdf_mean",
        "ecdf_max",
    ]
    a, b = ours.loc[ref.index, cols].to_numpy(dtype=float), ref[cols].to_numpy(dtype=float)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-10, atol=1e-8)


def test_caliper_width_in_sd_of_distance(fitted, lalonde):
    res = fitted["nearest_logit_caliper"]
    # matchit.R prints the caliper in distance units: 0.3609024
    assert res.diagnostics["caliper_width"] == pytest.approx(0.3609024, abs=1e-7)
    assert res.n_treated_dropped == 185 - 117
    assert any("no match" in n for n in res.summary().notes)
    assert (res.matches["distance"] <= res.diagnostics["caliper_width"]).all()


# ---------------------------------------------------------------------------- weights' rules
def test_att_weight_conventions(fitted):
    for name, res in fitted.items():
        w, t = res.weights.to_numpy(), res.treated.to_numpy()
        assert set(np.unique(w[t])) <= {0.0, 1.0}, name
        assert (w >= 0).all()
        wc = w[~t]
        assert wc.sum() == pytest.approx((wc > 0).sum()), name


def test_matching_without_replacement_uses_each_control_once(fitted):
    m = fitted["nearest_2to1"].matches
    assert not m["control"].duplicated().any()
    assert (m.groupby("treated").size() == 2).all()


def test_inputs_are_not_modified(lalonde):
    before = lalonde.copy(deep=True)
    NearestMatching(covariates=COVS, caliper=0.2, **KW).fit(lalonde)
    CoarsenedExactMatching(covariates=COVS, cutpoints=CUTS, **KW).fit(lalonde)
    pd.testing.assert_frame_equal(lalonde, before)


def test_cem_does_not_depend_on_row_order(lalonde):
    spec = CoarsenedExactMatching(covariates=COVS, cutpoints=CUTS, **KW)
    a = spec.fit(lalonde).weights
    b = spec.fit(lalonde.sample(frac=1, random_state=3)).weights
    pd.testing.assert_series_equal(a, b.reindex(a.index))


def test_random_order_is_seeded(lalonde):
    spec = NearestMatching(covariates=COVS, order="random", seed=5, **KW)
    a, b = spec.fit(lalonde), spec.fit(lalonde)
    pd.testing.assert_series_equal(a.weights, b.weights)


def test_propensity_score_function(lalonde, fitted):
    ps = propensity_score(lalonde, covariates=COVS, **KW)
    np.testing.assert_allclose(ps.to_numpy(), fitted["nearest_ps"].distance.to_numpy(), atol=1e-12)
    assert ((ps > 0) & (ps < 1)).all()


# ---------------------------------------------------------------------------- bad input
def _toy(n=60, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "school": np.arange(n),
            "level": rng.normal(size=n),
            "fsm_share": rng.uniform(0.05, 0.6, size=n),
            "phase": rng.choice(["primary", "secondary"], size=n),
        }
    )
    df["treated"] = (rng.random(n) < 0.35).astype(int)
    return df


def test_complete_separation_names_the_covariate():
    df = _toy()
    df["level"] = np.where(df.treated == 1, 5.0, 0.0) + np.linspace(0, 1, len(df))
    with pytest.raises(DesignError, match="no overlap") as err:
        NearestMatching(covariates=["level", "fsm_share"]).fit(df)
    assert "level" in str(err.value)
    assert "fsm_share (" not in str(err.value)


def test_quasi_separation_by_a_level_names_it():
    df = _toy(200, seed=1)
    df.loc[df.index[:12], "phase"] = "special"
    df.loc[df.index[:12], "treated"] = 1
    with pytest.raises(DesignError, match=r"phase=special \(held only by treated"):
        NearestMatching(covariates=["level", "phase"]).fit(df)


def test_caliper_dropping_every_treated_school_is_an_error():
    df = _toy(80, seed=2)
    with pytest.raises(EmptyComparisonGroupError, match=r"0 of \d+ matched"):
        NearestMatching(covariates=["level"], caliper=1e-12).fit(df)


def test_missing_covariate_names_column_and_rows():
    df = _toy()
    df.loc[[3, 7], "fsm_share"] = np.nan
    with pytest.raises(InvalidValueError, match=r"'fsm_share' is missing for 2 .* rows 3, 7"):
        NearestMatching(covariates=["level", "fsm_share"]).fit(df)
    with pytest.raises(InvalidValueError, match="fsm_share"):
        CoarsenedExactMatching(covariates=["fsm_share"]).fit(df)


def test_too_few_controls_for_k_to_1():
    df = _toy(30, seed=3)
    df["treated"] = (np.arange(30) < 12).astype(int)  # 12 treated, 18 controls
    with pytest.raises(DesignError, match=r"needs at least 24 comparison schools .* 18"):
        NearestMatching(covariates=["level"], ratio=2).fit(df)
    with pytest.raises(DesignError, match="replace=True"):
        MahalanobisMatching(covariates=["level"], ratio=2).fit(df)
    NearestMatching(covariates=["level"], ratio=2, replace=True).fit(df)  # fine


def test_other_bad_input():
    df = _toy()
    with pytest.raises(MissingColumnError, match="'trend'"):
        NearestMatching(covariates=["trend"]).fit(df)
    with pytest.raises(MissingColumnError, match="school id"):
        NearestMatching(covariates=["level"], unit="urn").fit(df)
    dup = pd.concat([df, df.iloc[[0]]])
    with pytest.raises(DuplicateRowsError, match="one row per school"):
        NearestMatching(covariates=["level"]).fit(dup)
    bad = df.assign(treated=df.treated.replace({1: 2}))
    with pytest.raises(InvalidValueError, match="0/1"):
        NearestMatching(covariates=["level"]).fit(bad)
    with pytest.raises(EmptyComparisonGroupError):
        NearestMatching(covariates=["level"]).fit(df.assign(treated=1))
    with pytest.raises(ValueError, match="caliper"):
        NearestMatching(covariates=["level"], caliper=-1)
    with pytest.raises(ValueError, match="ratio"):
        NearestMatching(covariates=["level"], ratio=0)
    with pytest.raises(ValueError, match="cutpoints"):
        CoarsenedExactMatching(covariates=["level"], cutpoints={"size": 3})


# ---------------------------------------------------------------------------- attach and faces
def _pupils(schools, per=3):
    return pd.DataFrame(
        {
            "school": np.repeat(schools["school"].to_numpy(), per),
            "score": np.arange(len(schools) * per, dtype=float),
        }
    )


def test_attach_drops_zero_weight_schools_and_counts_them():
    df = _toy(120, seed=4)
    res = NearestMatching(covariates=["level", "fsm_share"], caliper=0.05).fit(df)
    pupils = _pupils(df)
    before = pupils.copy()
    out = res.attach(pupils)
    pd.testing.assert_frame_equal(pupils, before)
    info = out.attrs["cpdimpact_attach"]
    zero = set(res.weights.index[res.weights == 0])
    assert set(info["schools_dropped"]) == zero
    assert info["rows_dropped"] == 3 * len(zero) == len(pupils) - len(out)
    assert (out["weight"] > 0).all()
    assert (
        out.groupby("school")["weight"]
        .first()
        .equals(res.weights[res.weights > 0].rename_axis("school"))
    )
    kept = res.attach(pupils, unmatched="keep", name="w")
    assert len(kept) == len(pupils)
    assert (kept["w"] == 0).sum() == 3 * len(zero)


def test_attach_refuses_unknown_schools_and_clashing_names():
    df = _toy()
    res = NearestMatching(covariates=["level"]).fit(df)
    pupils = _pupils(df)
    extra = pd.concat([pupils, pd.DataFrame({"school": [999], "score": [1.0]})], ignore_index=True)
    with pytest.raises(InvalidValueError, match="999"):
        res.attach(extra)
    with pytest.raises(InvalidValueError, match="already has a column 'score'"):
        res.attach(pupils, name="score")
    with pytest.raises(MissingColumnError):
        res.attach(pupils.rename(columns={"school": "urn"}))
    assert len(res.attach(pupils.rename(columns={"school": "urn"}), unit="urn")) > 0


def test_weights_flow_into_did():
    """Two periods, one row per school-year: the weighted TWFE DiD equals the difference of
    the treated schools' mean change and the weighted mean change of the comparison schools."""
    from cpdimpact.did import DiD

    rng = np.random.default_rng(7)
    schools = _toy(80, seed=7)
    res = NearestMatching(covariates=["level", "fsm_share"], replace=True).fit(schools)
    rows = []
    for year in (2019, 2020):
        for s in schools.itertuples():
            exposed = bool(s.treated) and year == 2020
            y = s.level * (1 + (year == 2020)) + 0.3 * exposed + rng.normal(scale=0.1)
            rows.append({"school": s.school, "year": year, "exposed": exposed, "y": y})
    panel = res.attach(pd.DataFrame(rows))
    fit = DiD(outcome="y", unit="school", time="year", cluster="school", weights="weight").fit(
        panel
    )
    wide = panel.pivot(index="school", columns="year", values="y")
    change = wide[2020] - wide[2019]
    w = res.weights.reindex(change.index)
    t = res.treated.reindex(change.index)
    expected = change[t].mean() - np.average(change[~t], weights=w[~t])
    assert fit.estimate == pytest.approx(expected, rel=1e-9)
    assert res.n_control < int((~res.treated).sum())  # some controls really were dropped


def test_result_faces(fitted):
    res = fitted["nearest_logit_caliper"]
    assert isinstance(res, ComparisonWeights)
    text = str(res.summary())
    assert "117 used of 185" in text and "smd_before" in text
    assert "<table>" in res._repr_html_()
    json.dumps(res.to_dict())
    frame = res.to_frame()
    assert list(frame.columns[:3]) == ["id", "treated", "weight"] and len(frame) == 614
    assert res.tidy().equals(res.balance)
    ax = res.plot()
    assert len(ax.get_yticklabels()) == res.balance["variable"].nunique()
    assert 0 < res.effective_n_control <= res.n_control


def test_balance_table_without_weights_and_plot(lalonde):
    tab = balance_table(lalonde, treatment="treat", covariates=["age", "race"])
    assert list(tab["sample"].unique()) == ["before"]
    assert list(tab["variable"]) == ["age", "race=black", "race=hispan", "race=white"]
    ax = plot_love(tab, statistic="ecdf_max", threshold=None)
    quick = balance_table(lalonde, treatment="treat", covariates=["age", "race"], ecdf=False)
    assert (
        np.isnan(quick.loc[0, "ecdf_mean"]) and quick.loc[1, "ecdf_max"] == tab.loc[1, "ecdf_max"]
    )
    pd.testing.assert_series_equal(quick["std_mean_diff"], tab["std_mean_diff"])
    assert ax.get_xlabel().startswith("eCDF")
    # hand check: std. mean difference of age with the treated SD
    t = lalonde[lalonde.treat == 1]["age"]
    c = lalonde[lalonde.treat == 0]["age"]
    assert tab.loc[0, "std_mean_diff"] == pytest.approx((t.mean() - c.mean()) / t.std(ddof=1))


# ---------------------------------------------------------------------------- entropy balancing
@pytest.mark.parametrize("case, moments", [("means", 1), ("variances", 2)])
def test_entropy_weights_match_ebal(lalonde, case, moments):
    ref = pd.read_csv(REF / f"entropy_{case}.csv")
    res = EntropyBalancing(covariates=COVS, moments=moments, **KW).fit(lalonde)
    ours = res.weights.reindex(ref["id"]).to_numpy()
    # ebal scales the comparison weights to sum to the number treated; ours average 1
    assert ours.sum() == pytest.approx(len(ref))
    ours = ours / ours.sum() * ref["weight"].sum()
    np.testing.assert_allclose(ours, ref["weight"].to_numpy(), rtol=1e-8)
    assert res.n_control == len(ref) and res.n_control_dropped == 0


def test_entropy_defining_property_against_generic_optimiser():
    """Moments equal the treated's exactly and no other weighting closer (in KL) to the base
    weights satisfies them: compare with scipy's SLSQP on the primal problem."""
    from scipy.optimize import minimize

    df = _toy(60, seed=11)
    df["base"] = np.random.default_rng(1).uniform(0.5, 2.0, len(df))
    res = EntropyBalancing(
        covariates=["level", "fsm_share", "phase"], moments=2, base_weights="base"
    ).fit(df)
    t = df["treated"].to_numpy() == 1
    c = df[~t]
    G = np.column_stack(
        [c.level, c.fsm_share, c.phase == "secondary", c.level**2, c.fsm_share**2]
    ).astype(float)
    target = np.array(
        [
            df.level[t].mean(),
            df.fsm_share[t].mean(),
            (df.phase[t] == "secondary").mean(),
            (df.level[t] ** 2).mean(),
            (df.fsm_share[t] ** 2).mean(),
        ]
    )
    ours = res.weights[c["school"]].to_numpy()
    ours = ours / ours.sum()
    np.testing.assert_allclose(ours @ G, target, atol=1e-9)
    q = c["base"].to_numpy() / c["base"].sum()

    def kl(w):
        w = np.clip(w, 1e-300, None)
        return float(np.sum(w * np.log(w / q)))

    def kl_grad(w):
        return np.log(np.clip(w, 1e-300, None) / q) + 1

    cons = [
        {"type": "eq", "fun": lambda w: w @ G - target, "jac": lambda w: G.T},
        {"type": "eq", "fun": lambda w: w.sum() - 1, "jac": lambda w: np.ones((1, len(w)))},
    ]
    start = np.full(len(q), 1 / len(q))
    generic = minimize(
        kl,
        start,
        jac=kl_grad,
        constraints=cons,
        bounds=[(1e-12, 1)] * len(q),
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 500},
    )
    assert generic.success
    assert kl(ours) <= kl(generic.x) + 1e-9
    np.testing.assert_allclose(ours, generic.x, atol=1e-5)
    assert res.diagnostics["kl_divergence"] == pytest.approx(kl(ours), rel=1e-10)


def test_entropy_infeasible_names_the_covariate():
    # each treated mean lies inside the comparison range, but the pair lies outside the
    # comparison schools' convex hull (their level + fsm_share never exceeds 1)
    rng = np.random.default_rng(12)
    n0, n1 = 60, 20
    x0 = rng.uniform(0, 1, n0)
    df = pd.DataFrame(
        {
            "school": np.arange(n0 + n1),
            "treated": np.r_[np.zeros(n0), np.ones(n1)].astype(int),
            "level": np.r_[x0, rng.uniform(0.7, 0.9, n1)],
            "fsm_share": np.r_[1 - x0 - rng.uniform(0, 0.05, n0), rng.uniform(0.7, 0.9, n1)],
        }
    )
    with pytest.raises(DesignError, match=r"did not reach balance .* worst: (level|fsm_share)"):
        EntropyBalancing(covariates=["level", "fsm_share"], max_iter=100).fit(df)
    df2 = _toy(80, seed=12)
    df2["fsm_share"] = np.where(df2.treated == 1, 0.9, df2.fsm_share)
    with pytest.raises(DesignError, match=r"infeasible: the treated mean of fsm_share"):
        EntropyBalancing(covariates=["level", "fsm_share"]).fit(df2)


def test_entropy_row_order_and_bad_input():
    df = _toy(100, seed=13)
    spec = EntropyBalancing(covariates=["level", "fsm_share", "phase"])
    a = spec.fit(df).weights
    b = spec.fit(df.sample(frac=1, random_state=1)).weights.reindex(a.index)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-9)
    with pytest.raises(InvalidValueError, match="constant"):
        EntropyBalancing(covariates=["level", "k"]).fit(df.assign(k=1.0))
    with pytest.raises(InvalidValueError, match="base_weights"):
        EntropyBalancing(covariates=["level"], base_weights="b").fit(df.assign(b=-1.0))
    with pytest.raises(ValueError, match="moments"):
        EntropyBalancing(covariates=["level"], moments=3)


# ---------------------------------------------------------------------------- characteristics
def _records():
    rows = []
    # school 1: means 100, 102, 104 (trend 2); school 2: 90, 90, 96 (trend 3); school 3 only
    # tested from 2020 (no pre-period)
    for school, means in (
        (1, [100, 102, 104, 110]),
        (2, [90, 90, 96, 97]),
        (3, [None, None, None, 99]),
    ):
        for k, year in enumerate((2017, 2018, 2019, 2020)):
            if means[k] is None:
                continue
            for d, fsm in ((-1.0, 1), (1.0, 0)):
                rows.append(
                    {
                        "pupil": len(rows),
                        "school": school,
                        "year": year,
                        "outcome": means[k] + d,
                        "fsm": fsm if school != 2 else 1,
                    }
                )
    pupils = pd.DataFrame(rows)
    part = pd.DataFrame({"school": [1], "start_year": [2020]})
    schools = pd.DataFrame({"school": [1, 2, 3], "phase": ["primary"] * 3, "size": [300, 200, 100]})
    return {"pupils": pupils, "participation": part, "schools": schools}


def test_school_characteristics_by_hand():
    out = school_characteristics(_records()).set_index("school")
    assert out.loc[1, "treated"] == 1 and out.loc[1, "first_treated"] == 2020
    assert out.loc[2, "treated"] == 0 and out.loc[2, "first_treated"] == 0
    assert out.loc[1, "level"] == pytest.approx(102.0)
    assert out.loc[1, "trend"] == pytest.approx(2.0)
    assert out.loc[2, "trend"] == pytest.approx(3.0)
    assert out.loc[1, "fsm_share"] == pytest.approx(0.5) and out.loc[2, "fsm_share"] == 1.0
    assert out.loc[2, "size"] == 200 and out.loc[1, "n_pupils_pre"] == 6
    assert np.isnan(out.loc[3, "level"]) and out.loc[3, "n_years_pre"] == 0
    two = school_characteristics(_records(), pre_years=2).set_index("school")
    assert two.loc[2, "trend"] == pytest.approx(6.0) and two.loc[2, "n_years_pre"] == 2
    with pytest.raises(InvalidValueError, match="on or after the earliest programme start"):
        school_characteristics(_records(), pre_years=[2019, 2020])
    # a school without pre-period records cannot be matched: named, not dropped
    with pytest.raises(InvalidValueError, match=r"'level' is missing for 1 of 3 schools"):
        NearestMatching(covariates=["level"]).fit(school_characteristics(_records()))


def test_school_characteristics_from_simulated_records_and_cohort():
    from cpdimpact.cohort import CohortSpec
    from cpdimpact.datasets import city_partnership

    rec = city_partnership()
    chars = school_characteristics(rec, pre_years=3)
    assert chars["school"].is_unique and len(chars) == rec.schools["school"].nunique()
    assert chars["treated"].sum() == rec.participation["school"].nunique()
    from_cohort = school_characteristics(CohortSpec().build(rec), pre_years=3)
    merged = chars.merge(from_cohort, on="school", suffixes=("", "_c"))
    np.testing.assert_allclose(merged["level"], merged["level_c"])
    np.testing.assert_array_equal(merged["treated"], merged["treated_c"])
    res = EntropyBalancing(covariates=["level", "trend", "fsm_share", "size"]).fit(chars)
    after = res.balance[res.balance["sample"] == "after"]
    assert np.abs(after["std_mean_diff"]).max() < 1e-8


# ---------------------------------------------------------------------------- invariances
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    a=st.floats(0.01, 100.0),
    b=st.floats(-1000.0, 1000.0),
)
def test_affine_covariate_changes_leave_weights_unchanged(seed, a, b):
    """a*x + b (a > 0) on a covariate changes neither the entropy weights, nor the propensity
    score matches, nor the standardised differences."""
    df = _toy(120, seed=seed)
    moved = df.assign(level=a * df["level"] + b)
    covs = ["level", "fsm_share", "phase"]
    e0 = EntropyBalancing(covariates=covs, moments=2).fit(df)
    e1 = EntropyBalancing(covariates=covs, moments=2).fit(moved)
    np.testing.assert_allclose(e0.weights.to_numpy(), e1.weights.to_numpy(), rtol=1e-6)
    n0 = NearestMatching(covariates=covs, replace=True).fit(df)
    n1 = NearestMatching(covariates=covs, replace=True).fit(moved)
    np.testing.assert_allclose(n0.distance.to_numpy(), n1.distance.to_numpy(), atol=1e-8)
    b0 = balance_table(df, treatment="treated", covariates=covs, weights=n0)
    b1 = balance_table(moved, treatment="treated", covariates=covs, weights=n0)
    np.testing.assert_allclose(b0["std_mean_diff"], b1["std_mean_diff"], atol=1e-9)
    np.testing.assert_allclose(b0["variance_ratio"], b1["variance_ratio"], rtol=1e-9)


def test_entropy_converges_when_the_dual_is_flat_to_rounding():
    """Regression (found by hypothesis): near the optimum the dual's decrease falls below
    rounding and a line search on it stalled at a 1e-10 SD gap; Newton's full step goes on."""
    res = EntropyBalancing(covariates=["level", "fsm_share", "phase"], moments=2).fit(
        _toy(120, seed=2745)
    )
    assert res.diagnostics["converged"] and res.diagnostics["max_moment_gap_sd"] < 1e-12


# ---------------------------------------------------------------------------- ties and rounding
def _ulp_noise(values: np.ndarray, seed: int, max_ulps: int = 4) -> np.ndarray:
    """``values`` moved by up to ``max_ulps`` units in the last place, as another BLAS might."""
    steps = np.random.default_rng(seed).integers(-max_ulps, max_ulps + 1, size=values.shape)
    return values + steps * np.spacing(values)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
@pytest.mark.parametrize(
    "ratio, replace, order", [(1, True, "data"), (3, True, "data"), (2, False, "largest")]
)
def test_nearest_matches_do_not_move_with_ulp_noise(lalonde, ratio, replace, order, seed):
    # lalonde holds exact ties on the logit score: NSW71 sits halfway between PSID400 (10 years
    # older, a year less schooling) and PSID392 / PSID401 (identical covariates). Which one a
    # last-bit comparison picks changed with the BLAS kernel; the tie rule must not.
    from cpdimpact.comparison._matching import (
        _linear_predictor,
        _nearest_on_score,
        _treated_order,
        prepare_schools,
    )

    prep = prepare_schools(lalonde, unit="id", treatment="treat", covariates=COVS)
    t = prep.treated
    d = _linear_predictor(lalonde, prep)
    noisy = _ulp_noise(d, seed)
    assert not np.array_equal(d, noisy)
    runs = [
        _nearest_on_score(x, t, ratio, replace, None, _treated_order(x[t], order, None))[0]
        for x in (d, noisy)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
@pytest.mark.parametrize("replace", [True, False])
def test_mahalanobis_matches_do_not_move_with_ulp_noise(replace, seed):
    from cpdimpact.comparison._matching import _nearest_on_matrix

    # integer-valued covariates make many exactly tied distances
    rng = np.random.default_rng(7)
    Z = rng.integers(0, 3, size=(60, 2)).astype(float)
    t = np.zeros(60, dtype=bool)
    t[::4] = True
    order = np.arange(int(t.sum()))
    base = _nearest_on_matrix(Z, t, 2, replace, order)[0]
    noisy = _nearest_on_matrix(_ulp_noise(Z, seed), t, 2, replace, order)[0]
    np.testing.assert_array_equal(base, noisy)


def test_tie_rule_is_the_documented_one():
    # treated school at 0.5; comparison schools at 0.25 and 0.75 (exactly tied) and 0.75 again
    schools = pd.DataFrame(
        {"school": ["T", "below", "above", "above2"], "treated": [1, 0, 0, 0]}
    ).assign(score=[0.5, 0.25, 0.75, 0.75])
    from cpdimpact.comparison._matching import _nearest_on_score

    t = schools["treated"].to_numpy() == 1
    d = schools["score"].to_numpy()
    for replace in (True, False):
        mm, _ = _nearest_on_score(d, t, 3, replace, None, np.arange(1))
        # above wins a tie across the treated school; tied schools go in table order
        assert list(schools["school"].to_numpy()[mm[0]]) == ["above", "above2", "below"]


def _blas_settings() -> list[dict[str, str]]:
    """One and two OpenBLAS threads and, on x86-64 with AVX, older kernels (Sandybridge's
    rounding put NSW71 on the other side of its tie before ties were handled)."""
    settings_ = [{"OPENBLAS_NUM_THREADS": "1"}, {"OPENBLAS_NUM_THREADS": "2"}]
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    if platform.machine() == "x86_64" and " avx " in flags:
        settings_.append({"OPENBLAS_NUM_THREADS": "1", "OPENBLAS_CORETYPE": "Sandybridge"})
    return settings_


def test_replace_matching_is_the_same_under_every_blas_setting():
    # the matched sample of the reference case, computed in fresh processes under several
    # BLAS settings, is identical and is MatchIt's
    script = (
        "import pandas as pd, sys\n"
        "from cpdimpact.comparison import NearestMatching\n"
        f"df = pd.read_csv({str(REF / 'lalonde.csv')!r})\n"
        f"m = NearestMatching(covariates={COVS!r}, ratio=3, replace=True, **{KW!r}).fit(df)\n"
        "m = m.matches.sort_values(['rank', 'treated'])\n"
        "sys.stdout.write(m[['treated', 'rank', 'control']].to_csv(index=False))\n"
    )
    outputs = set()
    for blas in _blas_settings():
        run = subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, **blas},
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.add(run.stdout)
    ref = pd.read_csv(REF / "matches_nearest_3to1_replace.csv").dropna(subset=["control"])
    ref = ref.sort_values(["rank", "treated"])[["treated", "rank", "control"]]
    assert outputs == {ref.to_csv(index=False)}


def test_mahalanobis_constant_covariates_are_named_or_refused(lalonde):
    # a constant covariate was silently left out; when all were, matches followed table order
    frame = lalonde.assign(region=1.0, cohort=7.0)
    before = frame.copy(deep=True)
    covs = ["age", "educ", "region"]
    res = MahalanobisMatching(covariates=covs, **KW).fit(frame)
    assert any("region" in note and "same for every school" in note for note in res.notes)
    base = MahalanobisMatching(covariates=["age", "educ"], **KW).fit(lalonde)
    pd.testing.assert_series_equal(res.weights, base.weights)
    with pytest.raises(DesignError, match=r"every covariate is the same.*region, cohort"):
        MahalanobisMatching(covariates=["region", "cohort"], **KW).fit(frame)
    pd.testing.assert_frame_equal(frame, before)
