"""Tests of cov_type="CR2": clubSandwich reference values, the low-rank algebra against dense
formulas, invariances, warnings and errors, and a size simulation with few unequal clusters."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from cpdimpact.did import DiD, EventStudy
from cpdimpact.did._cr2 import _within, cr2
from cpdimpact.errors import (
    CpdImpactWarning,
    EstimationError,
    FewClustersWarning,
    SmallSampleWarning,
)

REF = Path(__file__).parent / "reference" / "cr2"
CASES = json.loads((REF / "reference.json").read_text())["cases"]
# Observed agreement with clubSandwich: ~1e-11, 3e-9 in the nearly singular design (where R and
# cpdimpact are both ~1e-9 from a 60-digit evaluation); 1e-8 leaves room for BLAS only.
RTOL = 1e-8


def fit_case(case, **extra):
    data = pd.read_csv(REF / case["data"])
    kw = dict(
        unit="school",
        cluster=case["cluster"],
        covariates=tuple(case["covariates"]),
        weights=case["weights"],
        cov_type="CR2",
        **extra,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        if case["kind"] == "did":
            return DiD(**kw).fit(data)
        window = tuple(case["window"]) if case["window"] else None
        return EventStudy(reference=case["reference"], window=window, **kw).fit(data)


def max_relative_differences() -> dict[str, float]:
    """Largest relative difference from clubSandwich over all cases, by quantity.

    python -c "import sys; sys.path.insert(0, 'tests'); import test_cr2 as t;
    print(t.max_relative_differences())"
    """
    worst: dict[str, float] = {}

    def note(key, ours, ref):
        rel = np.max(np.abs(np.asarray(ours, float) / np.asarray(ref, float) - 1))
        worst[key] = max(worst.get(key, 0.0), float(rel))

    for case in CASES:
        res = fit_case(case)
        frame = res.to_frame().set_index("term").loc[case["terms"]]
        for column in ("estimate", "std_error", "statistic", "p_value"):
            note(column, frame[column], case[column])
        note("df", res.df_terms[case["terms"]], case["df"])
        note("vcov", res.cov.loc[case["terms"], case["terms"]], case["vcov"])
        if case.get("pretrend"):
            pre, ref = res.pretrend, case["pretrend"]
            note("htz_statistic", pre.statistic, ref["statistic"])
            note("htz_df_denom", pre.df_denom, ref["df_denom"])
            note("htz_p_value", pre.p_value, ref["p_value"])
    return worst


# --------------------------------------------------------------------------- reference


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_clubsandwich(case):
    res = fit_case(case)
    terms = case["terms"]
    frame = res.to_frame().set_index("term").loc[terms]
    for column in ("estimate", "std_error", "statistic", "p_value"):
        np.testing.assert_allclose(frame[column], case[column], rtol=RTOL, err_msg=column)
    np.testing.assert_allclose(res.df_terms[terms], case["df"], rtol=RTOL)
    np.testing.assert_allclose(res.cov.loc[terms, terms], case["vcov"], rtol=RTOL, atol=0)
    assert (res.n_obs, res.n_clusters) == (case["n_obs"], case["n_clusters"])
    ref = case.get("pretrend")
    if case["kind"] == "es":
        assert (res.pretrend is None) == (ref is None)
    if ref:
        pre = res.pretrend
        assert list(pre.terms) == ref["terms"] and pre.df_num == ref["df_num"]
        np.testing.assert_allclose(
            [pre.statistic, pre.df_denom, pre.p_value],
            [ref["statistic"], ref["df_denom"], ref["p_value"]],
            rtol=RTOL,
        )
        assert f"{ref['delta']:.4g} * Q/q" in pre.method


def test_absorbed_design_equals_full_design_unless_weights_vary_within_units():
    # In R itself: Theorem 2 of Pustejovsky & Tipton (no weights, units nested in clusters),
    # which extends to weights constant within units; weights that vary within units break
    # it, which is why cpdimpact keeps the unit directions when weighted.
    for case in CASES:
        rel = np.abs(np.array(case["absorbed_std_error"]) / case["std_error"] - 1)
        weights = case["weights"]
        data = pd.read_csv(REF / case["data"])
        varies = weights is not None and data.groupby("school")[weights].nunique().max() > 1
        if varies:
            assert rel.max() > 1e-3, case["name"]
        else:  # 1e-8: R's own rounding in the nearly singular design is ~4e-9
            assert rel.max() < 1e-8, case["name"]


def test_constant_weights_give_the_unweighted_answer():
    # Constant weights take the weighted (full-design) path, no weights the absorbed one.
    data = pd.read_csv(REF / "pupils.csv").assign(one=3.0)
    kw = dict(unit="school", cluster="area", covariates=("prior",), cov_type="CR2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        plain = DiD(**kw).fit(data)
        weighted = DiD(weights="one", **kw).fit(data)
        es_plain = EventStudy(**kw).fit(data)
        es_weighted = EventStudy(weights="one", **kw).fit(data)
    for a, b in ((plain, weighted), (es_plain, es_weighted)):
        np.testing.assert_allclose(a.std_errors, b.std_errors, rtol=1e-10)
        np.testing.assert_allclose(a.df_terms, b.df_terms, rtol=1e-10)
    np.testing.assert_allclose(es_plain.pretrend.df_denom, es_weighted.pretrend.df_denom, 1e-10)


def test_one_tested_term_htz_is_the_squared_satterthwaite_t():
    case = next(c for c in CASES if c["name"] == "es_weighted_area")
    res = fit_case(case)
    (term,) = res.pretrend.terms
    t = res.params[term] / res.std_errors[term]
    np.testing.assert_allclose(res.pretrend.statistic, t**2, rtol=1e-10)
    np.testing.assert_allclose(res.pretrend.df_denom, res.df_terms[term], rtol=1e-10)


# --------------------------------------------------------------------------- dense formulas


def _matrix_power(x, power):
    lam, vec = np.linalg.eigh(x)
    safe = np.where(lam > 1e-12, lam, 1.0)
    return (vec * np.where(lam > 1e-12, safe**power, 0.0)) @ vec.T


def dense_cr2(x_full, y, w, cluster, coefs, tested):
    """clubSandwich's CR2, Satterthwaite df and HTZ written with dense N x N matrices."""
    n = y.size
    w = np.ones(n) if w is None else w / w.mean()
    bread = np.linalg.inv(x_full.T @ (w[:, None] * x_full))
    beta = bread @ x_full.T @ (w * y)
    resid = y - x_full @ beta
    ih = np.eye(n) - x_full @ bread @ x_full.T * w[None, :]
    ihh = ih @ ih.T
    groups = [np.flatnonzero(cluster == g) for g in np.unique(cluster)]
    adj = [_matrix_power(ihh[np.ix_(i, i)], -0.5) for i in groups]
    comps = np.column_stack(
        [x_full[i].T @ (w[i] * (a @ resid[i])) for i, a in zip(groups, adj, strict=True)]
    )
    cov = bread @ comps @ comps.T @ bread

    def gvecs(c):
        a = bread @ c
        return np.column_stack(
            [ih[i].T @ (m @ (w[i] * (x_full[i] @ a))) for i, m in zip(groups, adj, strict=True)]
        )

    dfs = []
    for k in coefs:
        g = gvecs(np.eye(x_full.shape[1])[k])
        p = g.T @ g
        dfs.append(np.trace(p) ** 2 / np.sum(p**2))
    q = len(tested)
    gs = [gvecs(np.eye(x_full.shape[1])[k]) for k in tested]
    p = np.array([[gs[s].T @ gs[t] for t in range(q)] for s in range(q)])
    omega = np.einsum("stjj->st", p)
    root = _matrix_power(omega, -0.5)
    b = np.einsum("sa,abjk,bt->stjk", root, p, root)
    var = np.array(
        [
            [np.sum(b[s, t] * b[t, s]) + np.sum(b[s, s] * b[t, t]) for t in range(q)]
            for s in range(q)
        ]
    )
    nu = q * (q + 1) / var.sum()
    return beta, cov, np.array(dfs), nu - q + 1


@st.composite
def designs(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_clusters = draw(st.integers(2, 5))
    units_per = rng.integers(1, 4, n_clusters)
    n_periods = draw(st.integers(3, 5))
    rows = []
    unit = 0
    for g, m in enumerate(units_per):
        for _ in range(m):
            years = np.flatnonzero(rng.random(n_periods) < 0.85)
            years = np.union1d(years, [0, n_periods - 1])
            for t in years:
                for _ in range(rng.integers(1, 3)):
                    rows.append((g, unit, t))
            unit += 1
    g, u, t = np.array(rows).T
    treated = rng.random(unit) < 0.5
    treated[0], treated[-1] = True, False
    d = (treated[u] & (t >= n_periods // 2)).astype(float)
    x = rng.normal(size=u.size)
    kind = draw(st.sampled_from(["none", "rows", "units"]))
    w = {
        "none": None,
        "rows": rng.uniform(0.5, 3, u.size),
        "units": rng.uniform(0.5, 3, unit)[u],
    }[kind]
    return g, u, t, np.column_stack([d, x]), rng.normal(size=u.size), w


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(designs())
def test_low_rank_algebra_matches_dense_formulas(design):
    cluster, unit, period, regressors, y, w = design
    n_periods = int(period.max()) + 1
    dummies = (period[:, None] == np.arange(1, n_periods)[None, :]).astype(float)
    units = (unit[:, None] == np.arange(1, unit.max() + 1)[None, :]).astype(float)
    x_full = np.column_stack([np.ones(y.size), regressors, units, dummies])
    # Identified, and not nearly saturated: with one or two residual df the answer hinges on
    # whether rounding puts eigenvalues of G_g above or below the pseudo-inverse cut.
    assume(np.linalg.matrix_rank(x_full) == x_full.shape[1])
    assume(y.size - x_full.shape[1] >= 4)
    x = np.column_stack([regressors, dummies])
    beta, parts = cr2(x, y, unit=unit, cluster=cluster, weights=w)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref_beta, ref_cov, ref_df, ref_htz_df = dense_cr2(x_full, y, w, cluster, [1, 2], [1, 2])
    np.testing.assert_allclose(beta[:2], ref_beta[1:3], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(parts.cov[:2, :2], ref_cov[1:3, 1:3], rtol=1e-7, atol=1e-12)
    df = parts.satterthwaite([0, 1])
    # NaN only where the CR2 variance is not estimable (zero up to rounding in both forms);
    # the dense df is then rounding noise.
    assert np.all(np.isfinite(df) | (np.diag(ref_cov)[1:3] < 1e-20))
    np.testing.assert_allclose(df[np.isfinite(df)], ref_df[np.isfinite(df)], rtol=1e-7)
    stat, delta, q, df_denom, p = parts.htz([0, 1], beta)
    if np.isfinite(df_denom):  # compare nu = df_denom + q - 1: df_denom itself may cancel
        np.testing.assert_allclose(df_denom + q - 1, ref_htz_df + q - 1, rtol=1e-7)


# --------------------------------------------------------------------------- invariances


def small_panel(seed, *, n_areas=6, weights=False):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 4, n_areas)
    area = np.repeat(np.arange(n_areas), sizes)
    rows = [(s, area[s], y) for s in range(area.size) for y in range(2016, 2022)]
    df = pd.DataFrame(rows, columns=["school", "area", "year"])
    df["unit"] = df["school"]
    df["first_treated"] = np.where(df["area"] < n_areas // 2, 2019, 0)
    df["exposed"] = (df["first_treated"] > 0) & (df["year"] >= 2019)
    df["x"] = rng.normal(size=len(df))
    df["outcome"] = rng.normal(size=len(df)) + 0.5 * df["exposed"] + 0.3 * df["x"]
    if weights:
        df["w"] = rng.uniform(1, 30, len(df))
    return df


def _fit_both(df, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        base = dict(cluster="area", covariates=("x",), cov_type="CR2", **kw)
        return DiD(**base).fit(df), EventStudy(**base).fit(df)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    perm_seed=st.integers(0, 10_000),
    weighted=st.booleans(),
    scale=st.floats(0.01, 100),
    unit_shift=st.floats(-50, 50),
    time_shift=st.floats(-50, 50),
)
def test_row_order_weight_scale_and_fixed_effect_constants_leave_cr2_unchanged(
    seed, perm_seed, weighted, scale, unit_shift, time_shift
):
    df = small_panel(seed, weights=weighted)
    kw = {"weights": "w"} if weighted else {}
    did, es = _fit_both(df, **kw)
    other = df.sample(frac=1, random_state=perm_seed).assign(
        outcome=df["outcome"] + unit_shift * df["school"] + time_shift * (df["year"] - 2016)
    )
    if weighted:
        other["w"] = other["w"] * scale
    did2, es2 = _fit_both(other, **kw)
    for a, b in ((did, did2), (es, es2)):
        np.testing.assert_allclose(a.params, b.params, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(a.std_errors, b.std_errors, rtol=1e-7)
        np.testing.assert_allclose(a.df_terms, b.df_terms, rtol=1e-7)
    np.testing.assert_allclose(es.pretrend.statistic, es2.pretrend.statistic, rtol=1e-6)
    np.testing.assert_allclose(es.pretrend.df_denom, es2.pretrend.df_denom, rtol=1e-7)


def test_fit_does_not_modify_input():
    df = small_panel(3, weights=True)
    before = df.copy()
    _fit_both(df, weights="w")
    pd.testing.assert_frame_equal(df, before)


# --------------------------------------------------------------------------- faces


def test_cr1_stays_the_default():
    df = small_panel(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        default = DiD(cluster="area").fit(df)
        cr1 = DiD(cluster="area", cov_type="CR1").fit(df)
    assert DiD().cov_type == EventStudy().cov_type == "CR1"
    assert default.df_terms is None and default.df == default.n_clusters - 1
    assert "CR1" in default.cov_type and "G - 1" in default.inference
    pd.testing.assert_frame_equal(default.to_frame(), cr1.to_frame())


def test_cr2_result_faces():
    import matplotlib.pyplot as plt

    df = small_panel(2)
    did, es = _fit_both(df)
    assert did.cov_type.startswith("cluster-robust CR2") and "weights" not in did.cov_type
    assert did.df == did.df_terms["exposed"] and did.small_sample_factor == 1.0
    frame = did.to_frame().set_index("term")
    df_x = did.df_terms["x"]
    assert frame.loc["x", "p_value"] == pytest.approx(
        2 * stats.t.sf(abs(frame.loc["x", "statistic"]), df_x)
    )
    ci = did.conf_int(0.1)
    q = stats.t.ppf(0.95, did.df_terms["exposed"])
    assert ci.loc["exposed", "ci_upper"] == pytest.approx(did.estimate + q * did.std_error)
    assert did.p_value == pytest.approx(frame.loc["exposed", "p_value"])
    text = str(did.summary())
    for fact in ("CR2", "Satterthwaite", "none (CR2 adjustment matrices)", "exposed"):
        assert fact in text
    assert "Satterthwaite" in did.inference and "CR2" in did.inference
    assert "df=" in repr(did) and "<table>" in did._repr_html_()
    # Event study: per-term df in the coefficient table, HTZ pre-trend test.
    coef = es.coefficients.set_index("term")
    term = "event_time=0"
    half = coef.loc[term, "ci_upper"] - coef.loc[term, "estimate"]
    q = stats.t.ppf(0.975, es.df_terms[term])
    assert half == pytest.approx(q * coef.loc[term, "std_error"])
    assert es.df == es.df_terms[[t for t in es.df_terms.index if t.startswith("event")]].min()
    assert "HTZ" in es.pretrend.method and "HTZ" in str(es.summary())
    assert isinstance(es.pretrend.df_denom, float)
    weighted = DiD(cluster="area", weights="w", cov_type="CR2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        res = weighted.fit(small_panel(2, weights=True))
    assert "inverse_var = FALSE" in res.cov_type
    ax = es.plot()
    assert isinstance(ax, plt.Axes)
    did.plot()
    plt.close("all")


def test_singular_cluster_warns_naming_cluster_and_terms():
    data = pd.read_csv(REF / "singular.csv")
    spec = EventStudy(unit="school", cluster="area", covariates=("x",), cov_type="CR2")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = spec.fit(data)
    msgs = [str(w.message) for w in caught if issubclass(w.category, SmallSampleWarning)]
    assert len(msgs) == 1
    msg = msgs[0]
    assert "'A0'" in msg and "pseudo-inverse" in msg and "clubSandwich" in msg
    assert "'event_time=3', 'event_time=4', 'event_time=5')" in msg
    assert "event_time=-2" not in msg
    assert any("pseudo-inverse" in note for note in res.notes)
    assert all(w.filename == __file__ for w in caught)
    # CR1 has no adjustment matrices: no such warning.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        EventStudy(unit="school", cluster="area", covariates=("x",)).fit(data)
    assert not any(issubclass(w.category, SmallSampleWarning) for w in caught)


def test_bad_input():
    with pytest.raises(ValueError, match="cov_type must be one of"):
        DiD(cov_type="CR3")
    with pytest.raises(ValueError, match="cov_type must be one of"):
        EventStudy(cov_type="cr2")
    df = small_panel(4)
    # Units that span clusters (clustered by year): CR2 needs them nested.
    with (
        warnings.catch_warnings(),
        pytest.raises(EstimationError, match="nested in the clusters"),
    ):
        warnings.simplefilter("ignore", CpdImpactWarning)
        DiD(cluster="year", cov_type="CR2").fit(df)
    with (
        warnings.catch_warnings(),
        pytest.raises(EstimationError, match="at least 2 clusters"),
    ):
        warnings.simplefilter("ignore", CpdImpactWarning)
        DiD(cluster="one", cov_type="CR2").fit(df.assign(one=1))


# --------------------------------------------------------------------------- size simulation

# Nine areas of 1-10 schools, three treated (one, three and ten schools), six years, errors with
# area-year shocks (sd 0.5) and school-year noise (sd 1). From 10,000 replications: CR1 with
# t(G-1) rejects a true null at 5% in 18.0% of samples, CR2 with Satterthwaite df in 5.0%.
SIM_SIZES = (1, 1, 1, 2, 2, 3, 4, 6, 10)
SIM_TREATED = (0, 3, 8)


def _simulate(reps, seed, fit):
    rng = np.random.default_rng(seed)
    area_of = np.repeat(np.arange(len(SIM_SIZES)), SIM_SIZES)
    school = np.repeat(np.arange(area_of.size), 6)
    year = np.tile(np.arange(6), area_of.size)
    area = area_of[school]
    exposed = np.isin(area, SIM_TREATED) & (year >= 3)
    rejections = np.zeros(2)
    for _ in range(reps):
        y = (
            rng.normal(0, 1, area_of.size)[school]
            + rng.normal(0, 0.5, (len(SIM_SIZES), 6))[area, year]
            + rng.normal(0, 1, school.size)
        )
        rejections += fit(school, year, area, exposed, y)
    return rejections / reps


def _fit_low_level(school, year, area, exposed, y):
    """CR2 from the engine; CR1 written out here (G/(G-1)(N-1)/(N-K), t on G-1)."""
    x = np.column_stack([exposed, (year[:, None] == np.arange(1, 6)).astype(float)])
    beta, parts = cr2(x, y, unit=school, cluster=area, weights=None)
    ones = np.ones(y.size)
    xd = _within(x, school, ones, school.max() + 1)
    yd = _within(y[:, None], school, ones, school.max() + 1)[:, 0]
    bread = np.linalg.inv(xd.T @ xd)
    resid = yd - xd @ (bread @ xd.T @ yd)
    scores = np.zeros((area.max() + 1, x.shape[1]))
    np.add.at(scores, area, xd * resid[:, None])
    g, n, k = area.max() + 1, y.size, x.shape[1] + 1
    v1 = g / (g - 1) * (n - 1) / (n - k) * bread @ scores.T @ scores @ bread
    p1 = 2 * stats.t.sf(abs(beta[0]) / np.sqrt(v1[0, 0]), g - 1)
    p2 = 2 * stats.t.sf(abs(beta[0]) / np.sqrt(parts.cov[0, 0]), parts.satterthwaite([0])[0])
    return np.array([p1 < 0.05, p2 < 0.05])


def _fit_public(school, year, area, exposed, y):
    df = pd.DataFrame(
        {"school": school, "unit": school, "area": area, "year": year, "exposed": exposed}
    ).assign(outcome=y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        p1 = DiD(cluster="area").fit(df).p_value
        p2 = DiD(cluster="area", cov_type="CR2").fit(df).p_value
    return np.array([p1 < 0.05, p2 < 0.05])


def _check_size(rates, reps):
    # "Close to 5%": a true rate in [3%, 7%]; accept what a 99.9% binomial band around that
    # range allows. CR1 must lie above the band (it over-rejects).
    lo = stats.binom.ppf(0.0005, reps, 0.03) / reps
    hi = stats.binom.ppf(0.9995, reps, 0.07) / reps
    cr1, cr2_rate = rates
    assert lo <= cr2_rate <= hi, rates
    assert cr1 > hi, rates


def test_few_unequal_clusters_cr1_over_rejects_cr2_close_to_nominal():
    reps = 800
    _check_size(_simulate(reps, 20250211, _fit_low_level), reps)


@pytest.mark.slow
def test_few_unequal_clusters_size_through_the_public_api():
    reps = 3000
    _check_size(_simulate(reps, 20250212, _fit_public), reps)
