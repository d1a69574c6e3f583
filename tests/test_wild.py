"""Tests of cpdimpact.did.wild: wildboottest reference values, brute-force refits, the test
inversion, seeds and enumeration, warnings and errors, and a few-clusters size simulation."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cpdimpact.did import DiD
from cpdimpact.did.wild import WildBootstrapResult, _draws, wild_cluster_bootstrap
from cpdimpact.errors import (
    EstimationError,
    FewClustersWarning,
    InvalidValueError,
    MissingColumnError,
)

REF = Path(__file__).parent / "reference" / "wild"
REFERENCE = json.loads((REF / "reference.json").read_text())
CASES = REFERENCE["cases"]
# Observed agreement with wildboottest is ~3e-13; 1e-8 leaves room for BLAS differences only.
RTOL = 1e-8
# Monte Carlo tolerance for two independent sets of 9,999 draws: the SD of a difference of two
# p-values near 0.5 is sqrt(2 * 0.25 / 9999) = 0.007, so 0.02 is ~3 SD.
MC_TOL = 0.02

pytestmark = pytest.mark.filterwarnings("ignore::cpdimpact.errors.FewClustersWarning")


def load(name: str) -> tuple[pd.DataFrame, dict]:
    case = CASES[name]
    return pd.read_csv(REF / case["csv"]), case


def rescale(case: dict, res: WildBootstrapResult) -> float:
    """wildboottest's K counts the unit dummies; t_ours = t_wbt * sqrt(ssc_wbt / ssc_ours)."""
    return float(np.sqrt(case["ssc_wildboottest"] / res.small_sample_factor))


def small_panel(seed: int = 3) -> pd.DataFrame:
    """18 schools in 9 areas, 1-3 pupils per school-year, a covariate and weights."""
    rng = np.random.default_rng(seed)
    rows = [(u, y) for u in range(18) for y in range(2015, 2021) for _ in range(rng.integers(1, 4))]
    df = pd.DataFrame(rows, columns=["unit", "year"])
    df["area"] = df["unit"] % 9
    df["exposed"] = ((df["area"] < 4) & (df["year"] >= 2018)).astype(float)
    df["prior"] = rng.normal(size=len(df))
    df["w"] = rng.uniform(0.5, 2, len(df))
    df["outcome"] = 0.1 * df["unit"] + 0.3 * df["prior"] + 0.5 * df["exposed"]
    df["outcome"] += rng.normal(size=len(df))
    return df


# --------------------------------------------------------------------------- wildboottest


@pytest.mark.parametrize("name", sorted(CASES))
def test_enumerated_rademacher_matches_wildboottest(name):
    df, case = load(name)
    res = wild_cluster_bootstrap(df, covariates=case["covariates"], weights_type="rademacher")
    g = case["n_clusters"]
    assert res.n_clusters == g and res.n_obs == case["n_obs"]
    assert res.enumerated and res.n_bootstrap == 2**g and res.seed is None
    scale = rescale(case, res)
    assert res.t_statistic == pytest.approx(case["t_stat"] * scale, rel=RTOL)
    # The whole bootstrap distribution agrees, not just the p-value.
    ref_t = np.asarray(case["t_boot_wcr_rademacher_enumerated"]) * scale
    np.testing.assert_allclose(np.sort(np.abs(res.t_boot)), np.sort(np.abs(ref_t)), rtol=RTOL)
    # Exact p-value: ours counts ties |t*| = |t| (the identity draw and its mirror), a
    # recount of wildboottest's draws under that convention agrees exactly ...
    recount = np.mean(np.abs(ref_t) >= abs(res.t_statistic) * (1 - 1e-10))
    assert res.p_value == recount
    # ... and wildboottest's own strict count is below by exactly those two draws.
    assert res.p_value - case["p_wcr_rademacher_enumerated"] == pytest.approx(2 / 2**g, abs=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_t_statistic_matches_did(name):
    df, case = load(name)
    res = wild_cluster_bootstrap(df, covariates=case["covariates"], seed=0, n_bootstrap=99)
    did = DiD(cluster="area", covariates=case["covariates"]).fit(df)
    assert res.estimate == pytest.approx(did.estimate, rel=RTOL)
    assert res.std_error == pytest.approx(did.std_error, rel=RTOL)
    assert res.t_statistic == pytest.approx(did.statistic, rel=RTOL)
    assert res.cr1_p_value == pytest.approx(did.p_value, rel=RTOL)
    assert res.n_params == did.n_params


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize(("restricted", "key"), [(True, "p_wcr_webb"), (False, "p_wcu_webb")])
def test_webb_within_monte_carlo_error_of_wildboottest(name, restricted, key):
    df, case = load(name)
    res = wild_cluster_bootstrap(
        df, covariates=case["covariates"], restricted=restricted, n_bootstrap=9999, seed=11
    )
    assert res.n_bootstrap == 9999 and not res.enumerated
    assert abs(res.p_value - case[key]) < MC_TOL


# --------------------------------------------------------------------------- brute force


def brute_force(df, *, cluster, weights, restricted, v, covariates):
    """Refit OLS with explicit unit/year dummies for every draw; CR1 with our K."""
    units = pd.get_dummies(df["unit"], drop_first=True, dtype=float).to_numpy()
    years = pd.get_dummies(df["year"], drop_first=True, dtype=float).to_numpy()
    X = np.column_stack([df["exposed"], np.ones(len(df)), units, years, df[list(covariates)]])
    sw = np.sqrt(df[weights].to_numpy()) if weights else np.ones(len(df))
    Xs, ys = X * sw[:, None], df["outcome"].to_numpy() * sw
    cl = pd.factorize(df[cluster], sort=True)[0]
    bread = np.linalg.pinv(Xs.T @ Xs)

    def fit(y):
        b = bread @ Xs.T @ y
        u = y - Xs @ b
        scores = np.array([Xs[cl == g].T @ u[cl == g] for g in range(cl.max() + 1)])
        return b[0], np.sqrt((bread @ scores.T @ scores @ bread)[0, 0])

    beta, _ = fit(ys)
    base = Xs[:, 1:] if restricted else Xs
    fitted = base @ np.linalg.lstsq(base, ys, rcond=None)[0]
    resid = ys - fitted
    t = []
    for j in range(v.shape[1]):
        b, s = fit(fitted + resid * v[cl, j])
        t.append((b - (0.0 if restricted else beta)) / s)
    return np.array(t)  # CR0 t; ours is this / sqrt(CR1 factor)


@pytest.mark.parametrize("cluster", ["area", "unit", "mixed"])
@pytest.mark.parametrize("weights", [None, "w"])
@pytest.mark.parametrize("restricted", [True, False])
def test_bootstrap_t_equals_refitting_every_draw(cluster, weights, restricted):
    df = small_panel()
    df["mixed"] = (df["unit"] + df["year"]) % 7  # units not nested in clusters
    res = wild_cluster_bootstrap(
        df,
        cluster=cluster,
        weights=weights,
        covariates=["prior"],
        restricted=restricted,
        n_bootstrap=60,
        seed=5,
    )
    v, _, _ = _draws(res.n_clusters, 60, "webb", 5)
    ref = brute_force(
        df, cluster=cluster, weights=weights, restricted=restricted, v=v, covariates=["prior"]
    )
    np.testing.assert_allclose(res.t_boot, ref / np.sqrt(res.small_sample_factor), rtol=1e-8)
    did = DiD(cluster=cluster, weights=weights, covariates=["prior"]).fit(df)
    assert res.t_statistic == pytest.approx(did.statistic, rel=RTOL)


# --------------------------------------------------------------------------- intervals


def test_p_value_function_and_interval_inversion():
    df = small_panel()
    res = wild_cluster_bootstrap(df, n_bootstrap=999, seed=2)
    assert res.p_value_at(0.0) == res.p_value
    # Testing beta = beta0 is testing 0 on the outcome minus beta0 * treatment.
    for beta0 in (-0.3, 0.4, 1.2):
        shifted = df.assign(outcome=df["outcome"] - beta0 * df["exposed"])
        other = wild_cluster_bootstrap(shifted, n_bootstrap=999, seed=2)
        assert res.p_value_at(beta0) == pytest.approx(other.p_value, abs=1e-12)
    lo, hi = res.ci_lower, res.ci_upper
    assert lo < res.estimate < hi
    eps = 1e-6 * res.std_error
    assert res.p_value_at(lo + eps) > res.alpha >= res.p_value_at(lo - eps)
    assert res.p_value_at(hi - eps) > res.alpha >= res.p_value_at(hi + eps)
    wide, narrow = res.conf_int(0.01).iloc[0], res.conf_int(0.2).iloc[0]
    assert wide["ci_lower"] < lo < narrow["ci_lower"] and narrow["ci_upper"] < hi < wide["ci_upper"]


def test_unrestricted_interval_is_symmetric_bootstrap_t():
    df = small_panel()
    res = wild_cluster_bootstrap(df, restricted=False, n_bootstrap=999, seed=4)
    q = np.sort(np.abs(res.t_boot))[::-1][int(np.floor(0.05 * 999))]  # (floor(aB)+1)-th largest
    assert res.ci_lower == pytest.approx(res.estimate - q * res.std_error, abs=1e-8)
    assert res.ci_upper == pytest.approx(res.estimate + q * res.std_error, abs=1e-8)


# --------------------------------------------------------------------------- draws and seeds


def test_same_seed_same_output_and_generator_accepted():
    df = small_panel()
    a = wild_cluster_bootstrap(df, n_bootstrap=499, seed=42)
    b = wild_cluster_bootstrap(df, n_bootstrap=499, seed=42)
    np.testing.assert_array_equal(a.t_boot, b.t_boot)
    assert (a.p_value, a.ci_lower, a.ci_upper, a.seed) == (b.p_value, b.ci_lower, b.ci_upper, 42)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    c = wild_cluster_bootstrap(df, n_bootstrap=499, seed=np.random.default_rng(42))
    np.testing.assert_array_equal(c.t_boot, a.t_boot)
    assert c.seed is None
    d = wild_cluster_bootstrap(df, n_bootstrap=499)  # a seed is drawn and recorded
    assert isinstance(d.seed, int)
    e = wild_cluster_bootstrap(df, n_bootstrap=499, seed=d.seed)
    np.testing.assert_array_equal(d.t_boot, e.t_boot)


def test_weights_distributions():
    v, enumerated, _ = _draws(9, 60000, "webb", 0)
    assert not enumerated
    values, counts = np.unique(v, return_counts=True)
    np.testing.assert_allclose(
        values, [-np.sqrt(1.5), -1, -np.sqrt(0.5), np.sqrt(0.5), 1, np.sqrt(1.5)]
    )
    assert np.all(np.abs(counts / v.size - 1 / 6) < 0.005)
    assert v.mean() == pytest.approx(0, abs=0.01) and (v**2).mean() == pytest.approx(1, abs=0.01)
    r, enumerated, _ = _draws(9, 511, "rademacher", 0)  # 2^9 = 512 > 511: random
    assert not enumerated and r.shape == (9, 511) and set(np.unique(r)) == {-1.0, 1.0}
    full, enumerated, seed = _draws(9, 512, "rademacher", 0)  # 2^G <= B: every sign vector
    assert enumerated and seed is None and full.shape == (9, 512)
    assert np.unique(full, axis=1).shape[1] == 512


def test_enumerated_p_value_is_a_multiple_of_one_over_2g():
    df = small_panel()
    res = wild_cluster_bootstrap(df, weights_type="rademacher", n_bootstrap=9999)
    assert res.enumerated and res.n_bootstrap == 512
    assert (res.p_value * 512) == pytest.approx(round(res.p_value * 512), abs=1e-9)
    assert res.p_value >= 2 / 512
    assert "enumerated" in res.method


# --------------------------------------------------------------------------- faces


def test_faces():
    df = small_panel()
    res = wild_cluster_bootstrap(df, n_bootstrap=199, seed=1)
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
    row = frame.iloc[0]
    assert row["term"] == "exposed" and row["p_value"] == res.p_value
    assert row["statistic"] == res.t_statistic == res.statistic
    text = str(res.summary())
    assert "WCR" in text and "seed 1" in text and "K = " in text and "Webb" in text
    assert "<table>" in res._repr_html_()
    assert "WildBootstrapResult(" in repr(res)
    ci = res.conf_int()
    assert ci.loc["exposed", "ci_lower"] == res.ci_lower
    import matplotlib.pyplot as plt

    ax = res.plot()
    assert ax.get_xlabel().startswith("bootstrap t")
    plt.close("all")


# --------------------------------------------------------------------------- warnings, errors


def test_few_clusters_warnings():
    df = small_panel()
    few = df[df["area"] < 5]
    with pytest.warns(FewClustersWarning, match="Rademacher"):
        res = wild_cluster_bootstrap(few, weights_type="rademacher")
    assert res.enumerated and res.n_bootstrap == 32 and res.notes
    one_treated = df.assign(exposed=((df["area"] == 0) & (df["year"] >= 2018)).astype(float))
    with pytest.warns(FewClustersWarning, match="1 treated"):
        wild_cluster_bootstrap(one_treated, n_bootstrap=99, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FewClustersWarning)
        wild_cluster_bootstrap(df, n_bootstrap=99, seed=0)  # 9 areas, 4 treated: no warning


def test_bad_input():
    df = small_panel()
    with pytest.raises(EstimationError, match="at least 2 clusters"):
        wild_cluster_bootstrap(df.assign(area=1), n_bootstrap=9)
    with pytest.raises(MissingColumnError, match="'region'"):
        wild_cluster_bootstrap(df, cluster="region")
    with pytest.raises(EstimationError, match="no variation"):
        wild_cluster_bootstrap(df.assign(exposed=1.0), n_bootstrap=9)
    with pytest.raises(EstimationError, match="no variation"):
        # Treatment constant within units: absorbed by the unit effects.
        wild_cluster_bootstrap(df.assign(exposed=(df["area"] < 4).astype(float)), n_bootstrap=9)
    with pytest.raises(EstimationError, match="covariate 'const'"):
        wild_cluster_bootstrap(df.assign(const=df["unit"] * 2.0), covariates=["const"])
    bad = df.copy()
    bad.loc[[3, 7], "outcome"] = np.nan
    with pytest.raises(InvalidValueError, match=r"'outcome'.*rows 3, 7"):
        wild_cluster_bootstrap(bad)
    bad = df.copy()
    bad.loc[5, "area"] = None
    with pytest.raises(InvalidValueError, match=r"'area'.*row 5"):
        wild_cluster_bootstrap(bad)
    with pytest.raises(ValueError, match="weights_type"):
        wild_cluster_bootstrap(df, weights_type="mammen")
    with pytest.raises(ValueError, match="alpha"):
        wild_cluster_bootstrap(df, alpha=1.5)
    with pytest.raises(TypeError, match="seed"):
        wild_cluster_bootstrap(df, seed="7")


# --------------------------------------------------------------------------- simulation


def test_size_with_nine_heterogeneous_clusters():
    """H0 true; 9 areas of 1-12 schools, 4 treated (1, 2, 3 and 6 schools), area-year shocks,
    6 years. Over these 1,000 replications (B = 399 Webb draws each) the CR1 t-test on G - 1 df
    rejects 12.1% of the time at 5% and the WCR bootstrap 6.2%. Thresholds from the binomial
    SD with 1,000 reps: 0.0069 at 5%, so 0.085 is 5 SD above nominal; 0.0103 at 12%, so 0.08
    is 4 SD below CR1's rate. The bootstrap rate's floor 0.02 catches a test that never
    rejects."""
    rng = np.random.default_rng(123)
    sizes = np.array([1, 1, 2, 2, 3, 4, 6, 8, 12])
    area = np.repeat(np.repeat(np.arange(9), sizes), 6)
    unit = np.repeat(np.arange(sizes.sum()), 6)
    year = np.tile(np.arange(6), sizes.sum())
    exposed = (np.isin(area, [0, 2, 4, 6]) & (year >= 3)).astype(float)
    reps = 1000
    cr1 = wild = 0
    for r in range(reps):
        outcome = (
            rng.normal(0, 1, sizes.sum())[unit]
            + 0.2 * year
            + rng.normal(0, 1, (9, 6))[area, year]
            + rng.normal(0, 0.5, area.size)
        )
        df = pd.DataFrame(
            {"area": area, "unit": unit, "year": year, "exposed": exposed, "outcome": outcome}
        )
        res = wild_cluster_bootstrap(df, n_bootstrap=399, seed=r)
        cr1 += res.cr1_p_value < 0.05
        wild += res.p_value < 0.05
    cr1_rate, wild_rate = cr1 / reps, wild / reps
    assert cr1_rate > 0.08, cr1_rate
    assert 0.02 < wild_rate < 0.085, wild_rate
