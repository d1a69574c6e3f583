"""Trial analyses: eefAnalytics parity, resampling, known truth, properties and bad input."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from cpdimpact.errors import (
    CpdImpactWarning,
    DesignError,
    FewClustersWarning,
    InvalidValueError,
    MissingColumnError,
)
from cpdimpact.multilevel import (
    ClusterTrial,
    MultilevelModel,
    MultisiteTrial,
    SimpleTrial,
    TrialResult,
    _resample,
)

REF = Path(__file__).parent / "reference" / "trials"
DATA = Path(__file__).parent / "reference" / "multilevel"
CASES = json.loads((REF / "reference.json").read_text())["cases"]
CRT = pd.read_csv(DATA / "crtData.csv")
MST = pd.read_csv(DATA / "mstData.csv")
SPEC = {"outcome": "Posttest", "treatment": "Intervention", "covariates": ("Prettest",)}


def _shown(value: float, shown: float, decimals: int) -> None:
    """``value`` rounds to ``shown`` at ``decimals`` places (as docs/sources.md prints it)."""
    assert abs(value - shown) <= 0.5 * 10.0**-decimals + 1e-12, (value, shown)


_FITS: dict[str, TrialResult] = {}


def _fit(name: str) -> TrialResult:
    if name not in _FITS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CpdImpactWarning)  # mstData: one single-arm school
            if name == "crt_cluster":
                _FITS[name] = ClusterTrial(**SPEC, cluster="School").fit(CRT)
            elif name == "mst_multisite":
                _FITS[name] = MultisiteTrial(**SPEC, cluster="School").fit(MST)
            elif name == "mst_simple":
                _FITS[name] = SimpleTrial(**SPEC).fit(MST)
            elif name == "crt_simple":
                _FITS[name] = SimpleTrial(**SPEC).fit(CRT)
    return _FITS[name]


def _es(res: TrialResult, model: str, variance: str, definition: str = "eefanalytics"):
    es = res.effect_sizes
    row = es[(es["model"] == model) & (es["variance"] == variance)]
    return row[row["definition"] == definition].iloc[0]


# ================================================================ published figures (sources)
def test_crt_matches_published_eefanalytics():
    """docs/sources.md "Trial analyses", crtData (eefAnalytics 1.1.5 output)."""
    res = _fit("crt_cluster")
    # docs/sources.md gives 12 intervention schools / 121 pupils and 10 control / 144: the data (and
    # the coefficient's sign) have them the other way round.
    assert res.n_clusters_per_arm.to_dict() == {"treated": 10, "control": 12}
    assert res.n_per_arm.to_dict() == {"treated": 144, "control": 121}
    _shown(res.estimate, 3.109709, 6)
    _shown(res.std_error, 1.209383, 6)
    profile = res.coefficient.set_index("method").loc["profile"]
    _shown(profile["ci_lower"], 0.75, 2)
    _shown(profile["ci_upper"], 5.47, 2)
    v = res.variances
    _shown(v.loc["conditional", "between"], 5.673723, 6)
    _shown(v.loc["conditional", "within"], 14.779399, 6)
    _shown(v.loc["conditional", "total"], 20.45, 2)
    _shown(v.loc["conditional", "icc"], 0.28, 2)
    _shown(v.loc["unconditional", "between"], 6.591869, 6)
    _shown(v.loc["unconditional", "within"], 19.664431, 6)
    _shown(v.loc["unconditional", "total"], 26.26, 2)
    _shown(v.loc["unconditional", "icc"], 0.25, 2)
    published = {
        ("conditional", "within"): (0.81, 0.10, 1.52),
        ("conditional", "total"): (0.67, 0.07, 1.28),
        ("unconditional", "within"): (0.70, 0.04, 1.37),
        ("unconditional", "total"): (0.60, 0.02, 1.17),
    }
    for (model, variance), values in published.items():
        row = _es(res, model, variance)
        for column, shown in zip(("estimate", "ci_lower", "ci_upper"), values, strict=True):
            _shown(row[column], shown, 2)
    # The note in docs/sources.md: coefficient / sqrt(unconditional total) = 0.60688, no correction.
    headline = res.headline
    assert headline["definition"] == "eef_guidance" and headline["variance"] == "total"
    _shown(res.effect_size, 0.60688, 5)
    effects = res.school_effects
    first = effects[effects["term"] == "Intercept"]["estimate"].iloc[:6]
    for value, shown in zip(first, (-2.75, 1.44, 3.21, 4.13, -0.48, -2.35), strict=True):
        _shown(value, shown, 2)


def test_mst_matches_published_eefanalytics():
    """docs/sources.md "Trial analyses", mstData: simple and multisite analyses."""
    simple = _fit("mst_simple")
    _shown(simple.estimate, 3.59, 2)
    _shown(simple.ci[0], 0.58, 2)
    _shown(simple.ci[1], 6.59, 2)
    for model, values in (
        ("conditional", (0.32, 0.05, 0.60)),
        ("unconditional", (0.27, 0.0, 0.54)),
    ):
        row = _es(simple, model, "total")
        for column, shown in zip(("estimate", "ci_lower", "ci_upper"), values, strict=True):
            _shown(row[column], shown, 2)
    multi = _fit("mst_multisite")
    _shown(multi.estimate, 3.64, 2)
    profile = multi.coefficient.set_index("method").loc["profile"]
    _shown(profile["ci_lower"], 1.07, 2)
    _shown(profile["ci_upper"], 6.22, 2)
    published = {
        ("conditional", "within"): (0.42, 0.12, 0.73),
        ("conditional", "total"): (0.33, 0.09, 0.56),
        ("unconditional", "within"): (0.36, -0.06, 0.78),
        ("unconditional", "total"): (0.27, -0.05, 0.60),
    }
    for (model, variance), values in published.items():
        row = _es(multi, model, variance)
        for column, shown in zip(("estimate", "ci_lower", "ci_upper"), values, strict=True):
            _shown(row[column], shown, 2)


# ============================================================================ R (lme4) outputs
@pytest.mark.parametrize("name", ["crt_cluster", "mst_multisite", "mst_simple", "crt_simple"])
def test_matches_r_reference(name):
    """Tighter: every quantity against make_reference.R (lme4, lmerTest, unrounded)."""
    case, res = CASES[name], _fit(name)
    tr = case["treatment"]
    assert res.estimate == pytest.approx(tr["estimate"], rel=1e-6)
    assert res.std_error == pytest.approx(tr["std_error"], rel=1e-6)
    coef = res.coefficient.set_index("method")
    if case["design"] == "SimpleTrial":
        assert res.ci == pytest.approx((tr["t_ci"]["lower"], tr["t_ci"]["upper"]), rel=1e-9)
        assert coef.loc["t", "df"] == tr["df"]
        v = case["variances"]
        assert res.variances.loc["conditional", "within"] == pytest.approx(
            v["conditional"]["within"], rel=1e-9
        )
        assert res.variances.loc["unconditional", "total"] == pytest.approx(
            v["unconditional"]["within"], rel=1e-9
        )
        head = case["headline"]
        assert res.effect_size == pytest.approx(head["estimate"], rel=1e-9)
        assert res.headline[["ci_lower", "ci_upper"]].tolist() == pytest.approx(
            [head["t_ci"]["lower"], head["t_ci"]["upper"]], rel=1e-9
        )
    else:
        # The profile interval: both sides solved exactly, R to uniroot tol 1e-11.
        assert coef.loc["profile", ["ci_lower", "ci_upper"]].tolist() == pytest.approx(
            [tr["profile_ci"]["lower"], tr["profile_ci"]["upper"]], rel=1e-7
        )
        assert coef.loc["satterthwaite", "df"] == pytest.approx(tr["df"], rel=1e-4)
        satterthwaite = (tr["satterthwaite_ci"]["lower"], tr["satterthwaite_ci"]["upper"])
        assert res.ci == pytest.approx(satterthwaite, rel=1e-5)
        for model in ("conditional", "unconditional"):
            for key, value in case["variances"][model].items():
                if key in res.variances.columns:
                    assert res.variances.loc[model, key] == pytest.approx(value, rel=1e-6), key
        head = case["headline"]
        assert res.effect_size == pytest.approx(head["estimate"], rel=1e-6)
        # its interval: the lead (Satterthwaite) coefficient interval over the SD
        assert res.headline[["ci_lower", "ci_upper"]].tolist() == pytest.approx(
            [v / head["sd"] for v in satterthwaite], rel=1e-5
        )
        if name == "crt_cluster":
            with pytest.warns(FewClustersWarning, match="profile intervals tend to be too narrow"):
                profile_es = _crt(ci_method="profile").fit(CRT)
            assert profile_es.headline[["ci_lower", "ci_upper"]].tolist() == pytest.approx(
                [head["profile_ci"]["lower"], head["profile_ci"]["upper"]], rel=1e-6
            )
        for term, ref in case["school_effects"].items():
            got = res.school_effects[res.school_effects["term"] == term]
            np.testing.assert_array_equal(got[res.spec.cluster].to_numpy(), ref["ids"])
            np.testing.assert_allclose(got["estimate"], ref["estimate"], rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(got["cond_sd"], ref["cond_sd"], rtol=1e-5)
    for ref in case["effect_sizes"]:
        row = _es(res, ref["model"], ref["variance"])
        for column in ("estimate", "std_error", "ci_lower", "ci_upper"):
            assert row[column] == pytest.approx(ref[column], rel=1e-6, abs=1e-9), (ref, column)


def test_lme4_spline_profile_is_close_to_the_exact_one():
    """lme4 interpolates the profile with splines; the exact roots differ by ~1e-6 on crtData."""
    tr = CASES["crt_cluster"]["treatment"]
    profile = _fit("crt_cluster").coefficient.set_index("method").loc["profile"]
    lme4 = tr["lme4_profile_ci"]
    assert (profile["ci_lower"], profile["ci_upper"]) == pytest.approx(
        (lme4["lower"], lme4["upper"]), abs=5e-6
    )


def test_eefanalytics_unconditional_total_is_the_headline_times_hedges_factor():
    res = _fit("crt_cluster")
    factor = CASES["crt_cluster"]["total_corrections"]["unconditional"]
    assert _es(res, "unconditional", "total")["estimate"] == pytest.approx(
        res.effect_size * factor, rel=1e-9
    )
    assert factor < 1


# ============================================================================ resampling
def _crt(**options) -> ClusterTrial:
    return ClusterTrial(**SPEC, cluster="School", **options)


def test_draws_are_reproducible_and_independent_of_chunking(monkeypatch):
    res = _crt(n_bootstrap=40, n_permutations=30, seed=11).fit(CRT)
    again = _crt(n_bootstrap=40, n_permutations=30, seed=11).fit(CRT)
    pd.testing.assert_frame_equal(res.bootstrap_draws, again.bootstrap_draws)
    pd.testing.assert_frame_equal(res.permutation_draws, again.permutation_draws)
    pd.testing.assert_frame_equal(res.effect_sizes, again.effect_sizes)
    # draw i depends on (seed, i) only: a shorter run is a prefix, chunking does not matter
    fewer = _crt(n_bootstrap=15, n_permutations=10, seed=11).fit(CRT)
    pd.testing.assert_frame_equal(fewer.bootstrap_draws, res.bootstrap_draws.iloc[:15])
    pd.testing.assert_frame_equal(fewer.permutation_draws, res.permutation_draws.iloc[:10])
    monkeypatch.setattr(_resample, "CHUNK", 7)
    chunked = _crt(n_bootstrap=40, n_permutations=30, seed=11).fit(CRT)
    pd.testing.assert_frame_equal(chunked.bootstrap_draws, res.bootstrap_draws)
    pd.testing.assert_frame_equal(chunked.permutation_draws, res.permutation_draws)
    other = _crt(n_bootstrap=40, seed=12).fit(CRT)
    assert not np.allclose(other.bootstrap_draws["coefficient"], res.bootstrap_draws["coefficient"])


def test_seed_none_records_entropy_that_repeats_the_run():
    res = SimpleTrial(**SPEC, n_bootstrap=20, seed=None).fit(MST)
    again = SimpleTrial(**SPEC, n_bootstrap=20, seed=res.seed_entropy).fit(MST)
    pd.testing.assert_frame_equal(res.bootstrap_draws, again.bootstrap_draws)
    generator = SimpleTrial(**SPEC, n_bootstrap=5, seed=np.random.default_rng(1)).fit(MST)
    assert generator.bootstrap_draws["ok"].all()
    # building a spec does not consume the generator: the first fit draws the same as a fresh one
    rng = np.random.default_rng(1)
    SimpleTrial(**SPEC, n_bootstrap=5, seed=rng)
    assert rng.integers(0, 2**63) == np.random.default_rng(1).integers(0, 2**63)


def _arrays(design: str, data: pd.DataFrame) -> _resample.TrialArrays:
    """The arrays a fit builds (enough of them for drawing rows)."""
    site, labels = pd.factorize(data["School"], sort=True)
    x = np.column_stack([np.ones(len(data)), data["Intervention"], data["Prettest"]]).astype(float)
    blank = np.zeros((1, 1))
    return _resample.TrialArrays(
        design, x, data["Posttest"].to_numpy(float), site.astype(np.int64), len(labels),
        np.zeros(3), 1.0, blank, blank, np.zeros(1), 0.0, 1.0, 0.0, np.zeros(1),
    )  # fmt: skip


@pytest.mark.parametrize("design", ["cluster", "multisite"])
def test_batched_refits_match_the_engine_on_bootstrap_draws(design):
    """Each case-bootstrap draw, refitted by MultilevelModel, gives the batched values."""
    data, trial = (CRT, ClusterTrial) if design == "cluster" else (MST, MultisiteTrial)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        res = trial(**SPEC, cluster="School", n_bootstrap=4, seed=5).fit(data)
    arrays = _arrays(design, data)
    sites = _resample._sites(arrays)
    ss = _resample.seed_sequence(5)
    slopes = {"School": ("Intervention",)} if design == "multisite" else {}
    for i, draw in res.bootstrap_draws.iterrows():
        rng = _resample._draw_rng(ss, _resample.BOOTSTRAP_STREAM, i)
        while True:
            rows, slot = _resample._case_rows(rng, arrays, sites)
            if _resample._both_arms(arrays.treatment[rows]):
                break
        sample = data.iloc[rows].assign(School=slot)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cond = MultilevelModel(
                outcome="Posttest", covariates=("Intervention", "Prettest"), groups=("School",),
                slopes=slopes, df_method="normal",
            ).fit(sample)  # fmt: skip
            uncond = MultilevelModel(outcome="Posttest", df_method="normal").fit(
                sample.rename(columns={"School": "school"})
            )
        vc, vu = cond.variance_components, uncond.variance_components
        total_c = vc["School"] + vc["Residual"]
        if design == "multisite":
            share = sample["Intervention"].mean()
            total_c += share * (vc["School:Intervention"] + 2 * vc["School:Intercept:Intervention"])
        assert draw["coefficient"] == pytest.approx(cond.params["Intervention"], rel=1e-5)
        assert draw["within_c"] == pytest.approx(vc["Residual"], rel=1e-5)
        assert draw["total_c"] == pytest.approx(total_c, rel=1e-5)
        assert draw["within_u"] == pytest.approx(vu["Residual"], rel=1e-5)
        assert draw["total_u"] == pytest.approx(vu["school"] + vu["Residual"], rel=1e-5)


@pytest.mark.parametrize("design", ["cluster", "multisite", "simple", "blocks"])
def test_permutations_rerandomise_at_the_level_of_assignment(design):
    data = CRT if design == "cluster" else MST
    arrays = _arrays("simple" if design == "blocks" else design, data)
    if design == "simple":
        arrays = _resample.TrialArrays(
            "simple", arrays.x, arrays.y, np.zeros(len(arrays.y), dtype=np.int64), 1,
            *[getattr(arrays, f) for f in ("beta", "sigma2", "site_cov", "blups", "theta",
                                            "beta_u", "sigma2_u", "site_var_u", "blups_u")],
        )  # fmt: skip
    rng = np.random.default_rng(0)
    site, t = arrays.site, arrays.treatment
    changed = False
    for _ in range(20):
        new = _resample.permuted_treatment(rng, arrays)
        assert set(np.unique(new)) <= {0.0, 1.0}
        if design == "cluster":  # whole schools, as many treated schools as before
            per_school = pd.Series(new).groupby(site).agg(["min", "max"])
            assert (per_school["min"] == per_school["max"]).all()
            assert per_school["min"].sum() == pd.Series(t).groupby(site).max().sum()
        else:  # within sites (blocks): each keeps its number of treated pupils
            np.testing.assert_array_equal(
                np.bincount(site, weights=new), np.bincount(site, weights=t)
            )
        changed |= not np.array_equal(new, t)
    assert changed


def test_reflated_effects_have_the_fitted_covariance():
    rng = np.random.default_rng(3)
    values = rng.normal(size=(50, 2)) @ np.array([[1.0, 0.0], [0.6, 0.3]]) + 4.0
    target = np.array([[2.0, 0.5], [0.5, 1.0]])
    out = _resample._reflate(values, target)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.T @ out / len(out), target, rtol=1e-10)
    # a singular fit (perfectly correlated BLUPs, as mstData's) stays finite
    line = np.column_stack([values[:, 0], 2 * values[:, 0]])
    assert np.isfinite(_resample._reflate(line, np.array([[1.0, 2.0], [2.0, 4.0]]))).all()


@pytest.mark.parametrize("scheme", ["case", "residual"])
def test_bootstrap_and_permutation_outputs(scheme):
    res = _crt(n_bootstrap=200, bootstrap=scheme, n_permutations=99, seed=3).fit(CRT)
    coef = res.coefficient.set_index("method")
    assert list(coef.index) == ["satterthwaite", "profile", "normal", "bootstrap", "permutation"]
    lo, hi = coef.loc["bootstrap", ["ci_lower", "ci_upper"]]
    assert lo < res.estimate < hi
    # bootstrap SE near the model SE (crtData: 1.21)
    assert 0.8 < coef.loc["bootstrap", "std_error"] / res.std_error < 1.3
    assert 0 < coef.loc["permutation", "p_value"] < 0.1
    es = res.effect_sizes
    assert {"boot_se", "boot_ci_lower", "boot_ci_upper", "perm_p_value"} <= set(es.columns)
    # the headline and eefAnalytics' unconditional Total share their bootstrap draws
    head = es.iloc[0]
    total_u = _es(res, "unconditional", "total")
    assert head["boot_ci_lower"] == total_u["boot_ci_lower"]
    draws = res.bootstrap_draws
    values = draws["coefficient"] / np.sqrt(draws["total_u"])
    assert head["boot_ci_lower"] == pytest.approx(np.quantile(values, 0.025))
    assert res.bootstrap_draws["ok"].all() and res.permutation_draws["ok"].all()


def test_multisite_and_simple_resampling_run():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        res = MultisiteTrial(
            **SPEC, cluster="School", n_bootstrap=60, bootstrap="residual", n_permutations=40,
            seed=2,
        ).fit(MST)  # fmt: skip
    assert res.bootstrap_draws["ok"].all() and res.permutation_draws["ok"].all()
    assert res.coefficient.set_index("method").loc["permutation", "p_value"] < 0.1
    simple = SimpleTrial(**SPEC, cluster="School", n_bootstrap=50, n_permutations=50, seed=1)
    out = simple.fit(MST)
    assert out.effect_sizes["boot_ci_lower"].notna().all()
    assert out.n_clusters == 54 and "54 School blocks" in str(out.summary())
    # blocks change the resampling, not the OLS model
    assert out.estimate == pytest.approx(_fit("mst_simple").estimate, rel=1e-12)


def test_a_large_effect_gets_the_smallest_permutation_p_value():
    data = CRT.assign(Posttest=CRT["Posttest"] + 8 * CRT["Intervention"])
    res = _crt(n_permutations=49, seed=1, ci_method="satterthwaite").fit(data)
    assert res.coefficient.set_index("method").loc["permutation", "p_value"] == 1 / 50
    assert (res.effect_sizes["perm_p_value"] == 1 / 50).all()


# ============================================================================ known truth
def _simulate_crt(seed, *, n_schools=20, pupils=20, effect=0.2, icc=0.15):
    rng = np.random.default_rng(seed)
    school = np.repeat(np.arange(n_schools), pupils)
    treated = np.zeros(n_schools)
    treated[rng.permutation(n_schools)[: n_schools // 2]] = 1
    prior = rng.normal(size=school.size)
    y = (
        effect * treated[school]
        + 0.5 * prior
        + rng.normal(0, np.sqrt(icc), n_schools)[school]
        + rng.normal(0, np.sqrt(1 - icc), school.size)
    )
    return pd.DataFrame({"school": school, "t": treated[school], "prior": prior, "y": y})


def _crt_coverage(reps: int, seed0: int):
    spec = ClusterTrial(outcome="y", treatment="t", covariates=("prior",), cluster="school")
    estimates, covered = [], []
    for rep in range(reps):
        res = spec.fit(_simulate_crt(seed0 + rep))
        coef = res.coefficient.set_index("method")
        estimates.append(res.estimate)
        covered.append(
            [coef.loc[m, "ci_lower"] <= 0.2 <= coef.loc[m, "ci_upper"]
             for m in ("profile", "satterthwaite")]
        )  # fmt: skip
    return np.array(estimates), np.array(covered, dtype=float)


def test_cluster_trial_is_unbiased_and_covers_small():
    """20 schools of 20 pupils, ICC 0.15, effect 0.2: 40 trials (the slow test runs 1000)."""
    estimates, covered = _crt_coverage(40, seed0=100)
    assert abs(estimates.mean() - 0.2) < 3 * estimates.std() / np.sqrt(len(estimates))
    # 1600 trials gave 93% (profile) and 95% (Satterthwaite); 40 trials: at least 34
    assert (covered.sum(axis=0) >= 34).all()


@pytest.mark.slow
def test_cluster_trial_is_unbiased_and_covers_full():
    reps = 1000
    estimates, covered = _crt_coverage(reps, seed0=10_000)
    mc = 3 * estimates.std() / np.sqrt(reps)
    assert abs(estimates.mean() - 0.2) < mc
    se = np.sqrt(0.95 * 0.05 / reps)
    coverage = covered.mean(axis=0)
    assert abs(coverage[1] - 0.95) < 3 * se  # Satterthwaite (the default): nominal
    # ML profile (eefAnalytics'), normal cut-off: too narrow with 20 schools (92-94%)
    assert 0.95 - 0.04 < coverage[0] < 0.95 + 3 * se


def test_simple_trial_covers():
    covered = []
    for rep in range(300):
        rng = np.random.default_rng(rep)
        t = rng.permutation(np.repeat([0.0, 1.0], 30))
        x = rng.normal(size=60)
        data = pd.DataFrame({"y": 0.4 * t + x + rng.normal(size=60), "t": t, "x": x})
        res = SimpleTrial(outcome="y", treatment="t", covariates=("x",)).fit(data)
        covered.append(res.ci[0] <= 0.4 <= res.ci[1])
    assert abs(np.mean(covered) - 0.95) < 3 * np.sqrt(0.95 * 0.05 / 300)


def _null_p_values(reps, n_perm, design):
    out = []
    for rep in range(reps):
        rng = np.random.default_rng(rep)
        if design == "simple":
            t = rng.permutation(np.repeat([0.0, 1.0], 20))
            data = pd.DataFrame({"y": rng.normal(size=40), "t": t})
            spec = SimpleTrial(outcome="y", treatment="t", n_permutations=n_perm, seed=rep)
        else:
            data = _simulate_crt(rep, n_schools=12, pupils=8, effect=0.0)
            spec = ClusterTrial(
                outcome="y", treatment="t", cluster="school", n_permutations=n_perm,
                seed=rep, ci_method="satterthwaite",
            )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CpdImpactWarning)
            res = spec.fit(data)
        out.append(res.coefficient.set_index("method").loc["permutation", "p_value"])
    return np.array(out)


def test_permutation_p_values_are_uniform_under_the_null():
    """Rough: 150 pupil-randomised and 25 cluster-randomised null trials."""
    p = _null_p_values(150, 99, "simple")
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert np.mean(p <= 0.05) < 0.05 + 3 * np.sqrt(0.05 * 0.95 / 150)
    p = _null_p_values(25, 99, "cluster")
    assert stats.kstest(p, "uniform").pvalue > 0.01


@pytest.mark.slow
def test_permutation_p_values_are_uniform_under_the_null_full():
    p = _null_p_values(400, 199, "cluster")
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert abs(np.mean(p <= 0.05) - 0.05) < 3 * np.sqrt(0.05 * 0.95 / 400)


# ============================================================================ properties
def test_row_order_and_cluster_labels_do_not_matter():
    base = _fit("crt_cluster")
    rng = np.random.default_rng(4)
    shuffled = CRT.iloc[rng.permutation(len(CRT))]
    shuffled = shuffled.assign(School="s" + (100 - shuffled["School"]).astype(str))
    res = _crt().fit(shuffled)
    assert res.estimate == pytest.approx(base.estimate, rel=1e-8)
    assert res.ci == pytest.approx(base.ci, rel=1e-5)  # Satterthwaite df: numerical derivatives
    pd.testing.assert_frame_equal(res.variances, base.variances, rtol=1e-6)
    cols = ["estimate", "std_error", "ci_lower", "ci_upper"]
    pd.testing.assert_frame_equal(res.effect_sizes[cols], base.effect_sizes[cols], rtol=1e-6)
    mapping = dict(zip("s" + (100 - CRT["School"]).astype(str), CRT["School"], strict=False))
    ours = res.school_effects.assign(School=res.school_effects["School"].map(mapping))
    ours = ours.sort_values("School").reset_index(drop=True)
    np.testing.assert_allclose(ours["estimate"], base.school_effects["estimate"], rtol=1e-5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scale=st.floats(0.01, 100.0),
    shift=st.floats(-1000.0, 1000.0),
    seed=st.integers(0, 10_000),
)
def test_effect_sizes_are_unchanged_by_rescaling_the_outcome(scale, shift, seed):
    rng = np.random.default_rng(seed)
    t = rng.permutation(np.repeat([0.0, 1.0], 15))
    x = rng.normal(size=30)
    data = pd.DataFrame({"y": 0.3 * t + x + rng.normal(size=30), "t": t, "x": x})
    spec = SimpleTrial(outcome="y", treatment="t", covariates=("x",))
    base = spec.fit(data)
    moved = spec.fit(data.assign(y=scale * data["y"] + shift))
    assert moved.estimate == pytest.approx(scale * base.estimate, rel=1e-7, abs=1e-9)
    np.testing.assert_allclose(
        moved.effect_sizes[["estimate", "ci_lower", "ci_upper"]],
        base.effect_sizes[["estimate", "ci_lower", "ci_upper"]],
        rtol=1e-6,
        atol=1e-9,
    )


def test_cluster_effect_sizes_are_unchanged_by_rescaling_the_outcome():
    base = _fit("crt_cluster")
    res = _crt().fit(CRT.assign(Posttest=0.1 * CRT["Posttest"] - 7))
    assert res.estimate == pytest.approx(0.1 * base.estimate, rel=1e-7)
    cols = ["estimate", "ci_lower", "ci_upper"]
    np.testing.assert_allclose(res.effect_sizes[cols], base.effect_sizes[cols], rtol=1e-6)
    np.testing.assert_allclose(res.icc, base.icc, rtol=1e-6)


def test_boolean_treatment_and_inputs_untouched():
    data = CRT.assign(Intervention=CRT["Intervention"].astype(bool))
    before = data.copy()
    res = _crt().fit(data)
    pd.testing.assert_frame_equal(data, before)
    assert res.estimate == pytest.approx(_fit("crt_cluster").estimate, rel=1e-10)


# ============================================================================ options and faces
def test_ci_methods():
    base = _fit("crt_cluster")
    assert base.ci_method == "satterthwaite"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)  # 22 schools
        profile = _crt(ci_method="profile").fit(CRT)
        normal = _crt(ci_method="normal").fit(CRT)
    assert profile.coefficient["method"].tolist() == ["profile", "satterthwaite", "normal"]
    rows = base.coefficient.set_index("method")
    assert profile.ci == pytest.approx(tuple(rows.loc["profile", ["ci_lower", "ci_upper"]]))
    assert profile.p_value == pytest.approx(rows.loc["profile", "p_value"])
    assert profile.to_frame().set_index("term").loc["Intervention", "interval"] == "profile"
    bw = _crt(ci_method="between_within").fit(CRT)
    assert bw.coefficient.iloc[0]["df"] == 22 - 2  # schools minus intercept and treatment
    assert normal.coefficient.iloc[0]["df"] == np.inf
    # the headline interval is the lead coefficient interval over the SD
    sd = np.sqrt(base.variances.loc["unconditional", "total"])
    assert base.headline["ci_lower"] == pytest.approx(base.ci[0] / sd)
    assert profile.headline["ci_upper"] == pytest.approx(profile.ci[1] / sd)


def test_conf_int_and_to_frame():
    res = _fit("crt_cluster")
    frame = res.to_frame()
    assert list(frame.columns[:7]) == [
        "term", "estimate", "std_error", "statistic", "p_value", "ci_lower", "ci_upper"
    ]  # fmt: skip
    assert frame.set_index("term").loc["Intervention", "interval"] == "satterthwaite"
    ci = res.conf_int()
    assert tuple(ci.loc["Intervention"]) == pytest.approx(res.ci, rel=1e-12)
    wider = res.conf_int(0.01)
    assert (wider["ci_lower"] < ci["ci_lower"]).all() and (wider["ci_upper"] > ci["ci_upper"]).all()
    # eefAnalytics prints lme4's profile intervals for every fixed effect
    profile = res.conf_int(method="profile")
    row = res.coefficient.set_index("method").loc["profile"]
    assert tuple(profile.loc["Intervention"]) == pytest.approx((row["ci_lower"], row["ci_upper"]))
    assert profile.loc["Prettest", "ci_lower"] < res.fixed_effects["estimate"].iloc[2]
    with pytest.raises(ValueError, match="degrees of freedom"):
        res.conf_int(method="between_within")
    simple = _fit("mst_simple")
    assert tuple(simple.conf_int().loc["Intervention"]) == pytest.approx(simple.ci)
    with pytest.raises(ValueError, match="profile"):
        simple.conf_int(method="profile")


def test_summary_html_plot_and_repr():
    res = _crt(n_bootstrap=20, n_permutations=20, seed=1).fit(CRT)
    text = str(res.summary())
    for piece in ("Cluster-randomised trial", "Satterthwaite t", "profile likelihood", "months",
                  "EEF guidance", "ICC", "permutations", "bootstrap"):  # fmt: skip
        assert piece in text, piece
    assert "<table>" in res._repr_html_()
    assert repr(res).startswith("TrialResult(design='cluster'")
    for kind in ("effect_sizes", "school_effects"):
        ax = res.plot(kind=kind)
        assert ax is not None
        plt.close("all")
    with pytest.raises(ValueError, match="no school effects"):
        _fit("mst_simple").plot(kind="school_effects")
    assert "Multisite trial" in str(_fit("mst_multisite").summary())
    assert "Pupil-randomised" in str(_fit("mst_simple").summary())


def test_user_strings_are_escaped_in_html():
    data = CRT.rename(columns={"School": "<b>school</b>"})
    res = ClusterTrial(**SPEC, cluster="<b>school</b>").fit(data)
    assert "<b>school</b>" not in res._repr_html_()


# ============================================================================ bad input
def test_cluster_trial_rejects_treatment_varying_within_clusters():
    with pytest.raises(
        DesignError, match=r"varies within 53 'School' clusters \(1, 2, 3, 4, 5 and 48 more\)"
    ):
        ClusterTrial(**SPEC, cluster="School").fit(MST)


def test_multisite_trial_single_arm_sites():
    with pytest.warns(CpdImpactWarning, match=r"1 of 54 'School' sites .* \(32\); kept"):
        kept = MultisiteTrial(**SPEC, cluster="School").fit(MST)
    with pytest.warns(CpdImpactWarning, match=r"dropped: 2 pupils removed"):
        dropped = MultisiteTrial(**SPEC, cluster="School", single_arm_sites="drop").fit(MST)
    assert dropped.n_obs == kept.n_obs - 2 and dropped.n_clusters == 53
    assert any("dropped" in note for note in dropped.notes)
    with pytest.raises(DesignError, match="use ClusterTrial"):
        MultisiteTrial(**SPEC, cluster="School").fit(CRT)


def test_non_binary_treatment():
    with pytest.raises(
        InvalidValueError, match=r"must be 0/1 .* holds 2 \(rows 0, 1, 4, 5, 8 and 97 more\)"
    ):
        SimpleTrial(**SPEC).fit(MST.assign(Intervention=MST["Intervention"] * 2))
    with pytest.raises(InvalidValueError, match="must be 0/1"):
        SimpleTrial(**SPEC).fit(MST.assign(Intervention=np.where(MST["Intervention"], "a", "b")))
    with pytest.raises(DesignError, match="both arms"):
        SimpleTrial(**SPEC).fit(MST.assign(Intervention=1))


def test_missing_values_are_counted_and_dropped():
    data = CRT.copy()
    data.loc[[3, 40], "Prettest"] = np.nan
    data.loc[7, "Posttest"] = np.nan
    with pytest.warns(
        CpdImpactWarning, match=r"3 of 265 rows have missing values .*\(rows 3, 7, 40\)"
    ):
        res = _crt().fit(data)
    assert res.n_dropped == 3 and res.n_obs == 262
    assert res.estimate == pytest.approx(_crt().fit(data.dropna()).estimate, rel=1e-10)


def test_too_few_clusters():
    few = CRT[CRT["School"].isin([1, 2, 4, 8])]  # two treated, two control schools
    with pytest.warns(FewClustersWarning, match="only 4 clusters"):
        _crt(ci_method="satterthwaite").fit(few)
    one = CRT[CRT["School"].isin([1, 2, 4])]  # one control school
    one_arm = one.groupby("School")["Intervention"].first().value_counts()
    assert one_arm.min() == 1
    with pytest.raises(DesignError, match="at least 2 clusters"):
        _crt().fit(one)
    with pytest.raises(DesignError, match="at least 2 pupils"):
        SimpleTrial(**SPEC).fit(MST.iloc[:3].assign(Intervention=[1, 0, 0]))


def test_specification_errors():
    with pytest.raises(ValueError, match="needs cluster"):
        ClusterTrial(**SPEC)
    with pytest.raises(ValueError, match="two roles"):
        ClusterTrial(**SPEC, cluster="Prettest")
    with pytest.raises(ValueError, match="bootstrap must be"):
        SimpleTrial(**SPEC, bootstrap="wild")
    with pytest.raises(ValueError, match="n_bootstrap"):
        SimpleTrial(**SPEC, n_bootstrap=-1)
    with pytest.raises(ValueError, match="ci_method"):
        ClusterTrial(**SPEC, cluster="School", ci_method="kenward_roger")
    with pytest.raises(TypeError, match="seed"):
        SimpleTrial(**SPEC, seed="one")
    with pytest.raises(MissingColumnError, match="Pretest"):
        SimpleTrial(outcome="Posttest", treatment="Intervention", covariates=("Pretest",)).fit(MST)
    with pytest.raises(InvalidValueError, match="not numeric"):
        SimpleTrial(**SPEC).fit(MST.assign(Prettest=MST["Prettest"].astype(str)))
