"""Tests of the two-group and cluster-design effect sizes in cpdimpact.effects.

Reference values: the published checks (docs/sources.md, "WWC figures" and "Hedges (2007)"),
the worked example of Borenstein et al. (2009, ch. 4), closed-form formulas written out here
independently of the code, statsmodels' ``effectsize_smd`` (same Hedges' g point estimate),
Hedges' (1981) exact variance of d, and simulations from the normal (nested) model with known truth.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import special, stats

from cpdimpact._results import TIDY_COLUMNS
from cpdimpact.effects import (
    EffectSize,
    cluster_d_total,
    cluster_d_total_from_data,
    cluster_d_within,
    cluster_d_within_from_data,
    cohens_d_from_data,
    cohens_d_from_summary,
    glass_delta_from_data,
    glass_delta_from_summary,
    hedges_g,
    hedges_g_from_data,
    hedges_g_from_summary,
    improvement_index,
    three_level_d_total,
    three_level_d_within,
)
from cpdimpact.errors import CpdImpactError, DesignError, InvalidValueError

Z975 = stats.norm.ppf(0.975)


def summary_of(t, c):
    t, c = np.asarray(t, float), np.asarray(c, float)
    return {
        "mean_treatment": t.mean(),
        "sd_treatment": t.std(ddof=1),
        "n_treatment": t.size,
        "mean_control": c.mean(),
        "sd_control": c.std(ddof=1),
        "n_control": c.size,
    }


# --- published checks -----------------------------------------------------------------------


def test_wwc_g_is_0_8_from_data_and_summary():
    # docs/sources.md "WWC figures": treatment (5, 6, 7), control (4, 5, 6) gives g = 0.8.
    assert hedges_g_from_data([5, 6, 7], [4, 5, 6]).estimate == pytest.approx(0.8, abs=1e-12)
    assert hedges_g_from_summary(**summary_of([5, 6, 7], [4, 5, 6])).estimate == pytest.approx(
        0.8, abs=1e-12
    )
    assert cohens_d_from_data([5, 6, 7], [4, 5, 6]).estimate == pytest.approx(1.0, abs=1e-12)


def test_borenstein_worked_example():
    # Borenstein, Hedges, Higgins & Rothstein (2009), Introduction to Meta-Analysis, ch. 4:
    # means 103 / 100, SDs 5.5 / 4.5, n 50 / 50 give S_within 5.0249, d 0.5970, V_d 0.0418,
    # SE_d 0.2044; J 0.9923, g 0.5924, V_g 0.0411, SE_g 0.2028 (printed to 4 decimals).
    args = {
        "mean_treatment": 103,
        "sd_treatment": 5.5,
        "n_treatment": 50,
        "mean_control": 100,
        "sd_control": 4.5,
        "n_control": 50,
    }
    d = cohens_d_from_summary(**args)
    assert round(d.sd, 4) == 5.0249
    assert round(d.estimate, 4) == 0.5970
    assert round(d.variance, 4) == 0.0418
    assert round(d.std_error, 4) == 0.2044
    g = hedges_g_from_summary(**args)
    assert round(g.correction, 4) == 0.9923
    assert round(g.estimate, 4) == 0.5924
    assert round(g.variance, 4) == 0.0411
    assert round(g.std_error, 4) == 0.2028


@pytest.mark.parametrize(("g", "index"), [(0.25, 10), (0.0, 0), (-0.25, -10), (1.0, 34)])
def test_improvement_index_rounded(g, index):
    # docs/sources.md "WWC figures": g = 0.25 gives +10 (9.87 before rounding).
    assert round(improvement_index(g)) == index
    assert improvement_index(g) == pytest.approx(100 * stats.norm.cdf(g) - 50, abs=1e-12)


def test_improvement_index_array_and_effect_size():
    np.testing.assert_allclose(improvement_index([0.25, -0.25]), [9.870633, -9.870633], atol=1e-6)
    es = hedges_g_from_data([5, 6, 7], [4, 5, 6])
    assert (
        improvement_index(es)
        == es.improvement_index
        == pytest.approx(100 * stats.norm.cdf(0.8) - 50)
    )
    with pytest.raises(InvalidValueError):
        improvement_index("0.2")
    with pytest.raises(InvalidValueError):
        improvement_index(True)


def test_readme_d_t_check():
    # docs/sources.md "Hedges (2007)": diff / S_T = 0.30, 200 + 200 pupils, n = 20, rho = 0.2.
    es = cluster_d_total(
        0.3, 1.0, icc=0.2, n_clusters_treatment=10, n_clusters_control=10, cluster_size=20
    )
    assert round(es.estimate, 5) == 0.29712
    assert round(es.variance, 5) == 0.04819
    assert es.symbol == "d_T" and "Hedges (2007)" in es.method
    assert es.ci_lower == pytest.approx(es.estimate - Z975 * es.std_error)


# --- direct computation and agreement between the entry points ---------------------------

RNG = np.random.default_rng(20240501)
T = RNG.normal(52.0, 9.0, size=37)
C = RNG.normal(49.0, 11.0, size=45)


def test_cohen_and_glass_by_direct_computation():
    nt, nc = T.size, C.size
    pooled = math.sqrt(((nt - 1) * T.var(ddof=1) + (nc - 1) * C.var(ddof=1)) / (nt + nc - 2))
    d = (T.mean() - C.mean()) / pooled
    es = cohens_d_from_data(T, C)
    assert es.estimate == pytest.approx(d, rel=1e-12)
    assert es.variance == pytest.approx((nt + nc) / (nt * nc) + d**2 / (2 * (nt + nc)), rel=1e-12)
    assert es.ci_lower == pytest.approx(d - Z975 * es.std_error, rel=1e-12)
    assert es.correction == 1.0 and es.symbol == "d"

    delta = (T.mean() - C.mean()) / C.std(ddof=1)
    glass = glass_delta_from_data(T, C)
    assert glass.estimate == pytest.approx(delta, rel=1e-12)
    assert glass.variance == pytest.approx(
        (nt + nc) / (nt * nc) + delta**2 / (2 * (nc - 1)), rel=1e-12
    )
    corrected = glass_delta_from_data(T, C, correct=True)
    j = 1 - 3 / (4 * (nc - 1) - 1)
    assert corrected.estimate == pytest.approx(j * delta, rel=1e-12)
    assert corrected.variance == pytest.approx(j**2 * glass.variance, rel=1e-12)

    g = hedges_g_from_data(T, C)
    assert g.estimate == pytest.approx((1 - 3 / (4 * (nt + nc) - 9)) * d, rel=1e-12)


def test_data_and_summary_entry_points_agree():
    s = summary_of(T, C)
    pairs = [
        (cohens_d_from_data(T, C), cohens_d_from_summary(**s)),
        (hedges_g_from_data(T, C), hedges_g_from_summary(**s)),
        (
            glass_delta_from_data(T, C, correct=True),
            glass_delta_from_summary(
                mean_treatment=s["mean_treatment"],
                n_treatment=s["n_treatment"],
                mean_control=s["mean_control"],
                sd_control=s["sd_control"],
                n_control=s["n_control"],
                correct=True,
            ),
        ),
    ]
    for a, b in pairs:
        for field in ("estimate", "std_error", "ci_lower", "ci_upper", "sd", "correction"):
            assert getattr(a, field) == pytest.approx(getattr(b, field), rel=1e-12)


def test_hedges_g_point_estimate_matches_statsmodels():
    from statsmodels.stats.meta_analysis import effectsize_smd

    s = summary_of(T, C)
    smd, _ = effectsize_smd(
        s["mean_treatment"],
        s["sd_treatment"],
        s["n_treatment"],
        s["mean_control"],
        s["sd_control"],
        s["n_control"],
    )
    # Same estimator (pooled SD, J = 1 - 3/(4N - 9)). statsmodels' variance uses Chen & Peace's
    # N - 3.94 denominator instead of Borenstein's J^2 (.. + d^2/(2N)), so only g is compared.
    assert hedges_g_from_summary(**s).estimate == pytest.approx(float(smd), rel=1e-13)


def test_large_sample_variance_close_to_hedges_exact_variance():
    # Hedges (1981): with m = N - 2 df and n~ = n_t n_c / N, the exact variance of d is
    # m/(m-2) (1/n~ + delta^2) - delta^2 / c(m)^2. The large-sample formula is within O(1/N).
    nt = nc = 200
    m, ntilde, delta = nt + nc - 2, nt * nc / (nt + nc), 0.5
    c = math.exp(special.gammaln(m / 2) - special.gammaln((m - 1) / 2)) / math.sqrt(m / 2)
    exact = m / (m - 2) * (1 / ntilde + delta**2) - delta**2 / c**2
    es = cohens_d_from_summary(
        mean_treatment=delta, sd_treatment=1, n_treatment=nt,
        mean_control=0, sd_control=1, n_control=nc,
    )  # fmt: skip
    assert es.variance == pytest.approx(exact, rel=0.01)


def _mc_variance_bounds(draws: np.ndarray, k: float = 4.0) -> tuple[float, float, float]:
    """Sample variance and a Monte Carlo band of k standard errors (via the 4th moment)."""
    centred = draws - draws.mean()
    var = float(np.mean(centred**2))
    se = math.sqrt(max(float(np.mean(centred**4)) - var**2, 0.0) / draws.size)
    return var, var - k * se, var + k * se


def test_hedges_g_and_glass_variance_by_simulation():
    rng = np.random.default_rng(7)
    reps, nt, nc, delta = 20_000, 200, 200, 0.5
    t = rng.normal(delta, 1.0, size=(reps, nt))
    c = rng.normal(0.0, 1.0, size=(reps, nc))
    diff = t.mean(axis=1) - c.mean(axis=1)
    vt, vc = t.var(axis=1, ddof=1), c.var(axis=1, ddof=1)
    pooled = np.sqrt(((nt - 1) * vt + (nc - 1) * vc) / (nt + nc - 2))
    j = 1 - 3 / (4 * (nt + nc) - 9)
    g = j * diff / pooled
    truth = hedges_g_from_summary(
        mean_treatment=delta / j, sd_treatment=1, n_treatment=nt,
        mean_control=0, sd_control=1, n_control=nc,
    )  # fmt: skip  # the formula evaluated at g = delta
    assert truth.estimate == pytest.approx(delta)
    var, low, high = _mc_variance_bounds(g)
    assert low <= truth.variance <= high, (var, truth.variance)
    # g is (nearly) unbiased for delta.
    assert abs(g.mean() - delta) < 4 * math.sqrt(var / reps)

    glass = diff / np.sqrt(vc)
    formula = glass_delta_from_summary(
        mean_treatment=delta, n_treatment=nt, mean_control=0, sd_control=1, n_control=nc
    ).variance
    _, low, high = _mc_variance_bounds(glass)
    assert low <= formula <= high


# --- Hedges (2007): closed forms written out here --------------------------------------------


def hedges_2007_equal(diff_over_s, n_t, n_c, n, rho, *, total):
    """Hedges (2007) equal-cluster-size formulas as printed (docs/sources.md, "Hedges (2007)")."""
    big_n = n_t + n_c
    m = big_n / n
    first = (n_t + n_c) / (n_t * n_c)
    if not total:
        d = diff_over_s
        return d, first * (1 + (n - 1) * rho) / (1 - rho) + d**2 / (2 * (big_n - m))
    d = diff_over_s * math.sqrt(1 - 2 * (n - 1) * rho / (big_n - 2))
    num = (
        (big_n - 2) * (1 - rho) ** 2
        + n * (big_n - 2 * n) * rho**2
        + 2 * (big_n - 2 * n) * rho * (1 - rho)
    )
    den = 2 * (big_n - 2) * ((big_n - 2) - 2 * (n - 1) * rho)
    return d, first * (1 + (n - 1) * rho) + d**2 * num / den


def hedges_2007_unequal(diff_over_s, sizes_t, sizes_c, rho, *, total):
    """Unequal cluster sizes via n_U, A and B (Hedges 2007), written out independently."""
    st_, sc_ = np.asarray(sizes_t, float), np.asarray(sizes_c, float)
    n_t, n_c = st_.sum(), sc_.sum()
    big_n, m = n_t + n_c, st_.size + sc_.size
    n_u = n_c * np.sum(st_**2) / (n_t * big_n) + n_t * np.sum(sc_**2) / (n_c * big_n)
    first = big_n / (n_t * n_c)
    if not total:
        d = diff_over_s
        return d, first * (1 + (n_u - 1) * rho) / (1 - rho) + d**2 / (2 * (big_n - m))
    tilde = [(s.sum() ** 2 - np.sum(s**2)) / (s.sum() * (s.size - 1)) for s in (st_, sc_)]
    b = tilde[0] * (st_.size - 1) + tilde[1] * (sc_.size - 1)
    a = sum(
        np.sum(s**2) - 2 * np.sum(s**3) / s.sum() + np.sum(s**2) ** 2 / s.sum() ** 2
        for s in (st_, sc_)
    )
    e0 = (big_n - 2) - rho * (big_n - 2 - b)
    d = diff_over_s * math.sqrt(e0 / (big_n - 2))
    num = (big_n - 2) * (1 - rho) ** 2 + a * rho**2 + 2 * b * rho * (1 - rho)
    return d, first * (1 + (n_u - 1) * rho) + d**2 * num / (2 * (big_n - 2) * e0)


@pytest.mark.parametrize("total", [False, True])
@pytest.mark.parametrize(
    ("m_t", "m_c", "n", "rho", "diff"),
    [(10, 10, 20, 0.2, 0.3), (6, 9, 25, 0.05, -0.4), (30, 25, 3, 0.6, 1.1), (2, 2, 2, 0.0, 0.2)],
)
def test_equal_sizes_match_printed_formulas(m_t, m_c, n, rho, diff, total):
    function = cluster_d_total if total else cluster_d_within
    es = function(
        diff * 7.0, 7.0, icc=rho, n_clusters_treatment=m_t, n_clusters_control=m_c, cluster_size=n
    )
    d, v = hedges_2007_equal(diff, m_t * n, m_c * n, n, rho, total=total)
    assert es.estimate == pytest.approx(d, rel=1e-12)
    assert es.variance == pytest.approx(v, rel=1e-12)


@pytest.mark.parametrize("total", [False, True])
def test_unequal_sizes_match_written_out_formulas(total):
    sizes_t, sizes_c = [12, 30, 7, 22, 19], [25, 8, 16, 40]
    function = cluster_d_total if total else cluster_d_within
    for rho in (0.0, 0.1, 0.35):
        es = function(
            0.25, 1.0, icc=rho, cluster_sizes_treatment=sizes_t, cluster_sizes_control=sizes_c
        )
        d, v = hedges_2007_unequal(0.25, sizes_t, sizes_c, rho, total=total)
        assert es.estimate == pytest.approx(d, rel=1e-12)
        assert es.variance == pytest.approx(v, rel=1e-12)


@pytest.mark.parametrize("total", [False, True])
def test_unequal_with_equal_sizes_reduces_to_equal_formula(total):
    function = cluster_d_total if total else cluster_d_within
    listed = function(
        0.3, 1.0, icc=0.2, cluster_sizes_treatment=[20] * 10, cluster_sizes_control=[20] * 8
    )
    d, v = hedges_2007_equal(0.3, 200, 160, 20, 0.2, total=total)
    assert listed.estimate == pytest.approx(d, rel=1e-12)
    assert listed.variance == pytest.approx(v, rel=1e-12)
    # ... and the independent unequal-size formulas reduce too.
    du, vu = hedges_2007_unequal(0.3, [20] * 10, [20] * 8, 0.2, total=total)
    assert (du, vu) == (pytest.approx(d, rel=1e-12), pytest.approx(v, rel=1e-12))
    details = dict(listed.details)
    assert details["cluster size n_U"] == pytest.approx(20.0)
    assert details["per-arm cluster size (treatment, control)"] == pytest.approx((20.0, 20.0))


def test_rho_zero_gives_the_ordinary_variances():
    sizes_t, sizes_c = [12, 30, 7], [25, 8, 16, 40]
    n_t, n_c = sum(sizes_t), sum(sizes_c)
    big_n, m = n_t + n_c, 7
    w = cluster_d_within(
        0.4, 1.0, icc=0.0, cluster_sizes_treatment=sizes_t, cluster_sizes_control=sizes_c
    )
    # Ordinary (Hedges & Olkin) variance of d with the SD's own degrees of freedom, N - M.
    assert w.variance == pytest.approx(big_n / (n_t * n_c) + 0.16 / (2 * (big_n - m)), rel=1e-12)
    t = cluster_d_total(
        0.4, 1.0, icc=0.0, cluster_sizes_treatment=sizes_t, cluster_sizes_control=sizes_c
    )
    assert t.estimate == pytest.approx(0.4, rel=1e-14)
    assert t.variance == pytest.approx(big_n / (n_t * n_c) + 0.16 / (2 * (big_n - 2)), rel=1e-12)
    # The first term is Cohen's d's; only the SD's degrees of freedom (N - 2 vs N) differ.
    d = cohens_d_from_summary(
        mean_treatment=0.4, sd_treatment=1, n_treatment=n_t,
        mean_control=0, sd_control=1, n_control=n_c,
    )  # fmt: skip
    assert d.variance - 0.16 / (2 * big_n) == pytest.approx(t.variance - 0.16 / (2 * (big_n - 2)))


def test_cluster_of_one_pupil_each_is_individual_randomisation():
    # Clusters of one pupil: d_T is the ordinary d for any rho (no clustering to correct).
    es = cluster_d_total(
        0.5, 1.0, icc=0.3, n_clusters_treatment=40, n_clusters_control=50, cluster_size=1
    )
    assert es.estimate == pytest.approx(0.5, rel=1e-14)
    assert es.variance == pytest.approx(90 / 2000 + 0.25 / (2 * 88), rel=1e-12)


# --- three levels (Hedges 2011) -------------------------------------------------------------


def test_three_level_reduces_to_two_level():
    kw = {"n_schools_treatment": 8, "n_schools_control": 7, "classes_per_school": 3}
    # No class-level variance: schools of p n pupils are the clusters.
    three = three_level_d_total(0.3, 1.0, icc_school=0.2, icc_class=0.0, class_size=9, **kw)
    two = cluster_d_total(
        0.3, 1.0, icc=0.2, n_clusters_treatment=8, n_clusters_control=7, cluster_size=27
    )
    assert (three.estimate, three.variance) == (
        pytest.approx(two.estimate, rel=1e-12),
        pytest.approx(two.variance, rel=1e-12),
    )
    # No school-level variance: the classes are the clusters (24 and 21 of them).
    three = three_level_d_total(0.3, 1.0, icc_school=0.0, icc_class=0.15, class_size=9, **kw)
    two = cluster_d_total(
        0.3, 1.0, icc=0.15, n_clusters_treatment=24, n_clusters_control=21, cluster_size=9
    )
    assert three.estimate == pytest.approx(two.estimate, rel=1e-12)
    assert three.variance == pytest.approx(two.variance, rel=1e-12)
    within3 = three_level_d_within(0.3, 1.0, icc_school=0.0, icc_class=0.15, class_size=9, **kw)
    within2 = cluster_d_within(
        0.3, 1.0, icc=0.15, n_clusters_treatment=24, n_clusters_control=21, cluster_size=9
    )
    assert within3.variance == pytest.approx(within2.variance, rel=1e-12)


def test_three_level_equal_sizes_closed_form():
    k_t, k_c, p, n, rs, rc, diff = 10, 12, 2, 11, 0.12, 0.06, 0.35
    n_t, n_c = k_t * p * n, k_c * p * n
    big_n = n_t + n_c
    e0 = (big_n - 2) - 2 * (p * n - 1) * rs - 2 * (n - 1) * rc
    es = three_level_d_total(
        diff, 1.0, icc_school=rs, icc_class=rc,
        n_schools_treatment=k_t, n_schools_control=k_c, classes_per_school=p, class_size=n,
    )  # fmt: skip
    assert es.estimate == pytest.approx(diff * math.sqrt(e0 / (big_n - 2)), rel=1e-12)
    deff = 1 + (p * n - 1) * rs + (n - 1) * rc
    assert dict(es.details)["design effect"] == pytest.approx(deff, rel=1e-12)
    within = three_level_d_within(
        diff, 1.0, icc_school=rs, icc_class=rc,
        n_schools_treatment=k_t, n_schools_control=k_c, classes_per_school=p, class_size=n,
    )  # fmt: skip
    classes = (k_t + k_c) * p
    expected = big_n / (n_t * n_c) * deff / (1 - rs - rc) + diff**2 / (2 * (big_n - classes))
    assert within.variance == pytest.approx(expected, rel=1e-12)
    # Listing the equal sizes explicitly gives the same answer.
    listed = three_level_d_total(
        diff, 1.0, icc_school=rs, icc_class=rc,
        class_sizes_treatment=[[n] * p] * k_t, class_sizes_control=[[n] * p] * k_c,
    )  # fmt: skip
    assert listed.variance == pytest.approx(es.variance, rel=1e-12)


# --- simulations from the nested model with known truth ------------------------------------


def _simulate_two_level(rng, sizes_t, sizes_c, rho, delta_t, reps):
    """Arm means, SS_W and SS_T of `reps` two-level trials (sigma_T = 1)."""
    out = {}
    for arm, sizes, shift in (("t", sizes_t, delta_t), ("c", sizes_c, 0.0)):
        sizes = np.asarray(sizes)
        codes = np.repeat(np.arange(sizes.size), sizes)
        u = rng.normal(0, math.sqrt(rho), size=(reps, sizes.size))
        y = shift + u[:, codes] + rng.normal(0, math.sqrt(1 - rho), size=(reps, codes.size))
        mean = y.mean(axis=1)
        cluster_means = np.stack([y[:, codes == j].mean(axis=1) for j in range(sizes.size)], 1)
        out[arm] = {
            "mean": mean,
            "ss_w": ((y - cluster_means[:, codes]) ** 2).sum(axis=1),
            "ss_t": ((y - mean[:, None]) ** 2).sum(axis=1),
        }
    return out


def test_two_level_unequal_sizes_by_simulation():
    rng = np.random.default_rng(11)
    sizes_t, sizes_c = [8, 30, 15, 22, 12, 27, 18], [25, 10, 16, 34, 9, 20]
    rho, delta_t, reps = 0.2, 0.3, 12_000
    sim = _simulate_two_level(rng, sizes_t, sizes_c, rho, delta_t, reps)
    n_all = sum(sizes_t) + sum(sizes_c)
    m_all = len(sizes_t) + len(sizes_c)
    diff = sim["t"]["mean"] - sim["c"]["mean"]
    s_t = np.sqrt((sim["t"]["ss_t"] + sim["c"]["ss_t"]) / (n_all - 2))
    s_w = np.sqrt((sim["t"]["ss_w"] + sim["c"]["ss_w"]) / (n_all - m_all))
    kw = {"icc": rho, "cluster_sizes_treatment": sizes_t, "cluster_sizes_control": sizes_c}

    factor = dict(cluster_d_total(1.0, 1.0, **kw).details)["S_T bias factor"]
    d_t = diff / s_t * factor
    truth = cluster_d_total(delta_t / factor, 1.0, **kw)  # the formula at d_T = delta_T
    assert truth.estimate == pytest.approx(delta_t)
    var, low, high = _mc_variance_bounds(d_t)
    assert low <= truth.variance <= high, (var, truth.variance)
    assert abs(d_t.mean() - delta_t) < 4 * math.sqrt(var / reps)

    delta_w = delta_t / math.sqrt(1 - rho)
    d_w = diff / s_w
    truth_w = cluster_d_within(delta_w, 1.0, **kw)
    var, low, high = _mc_variance_bounds(d_w)
    assert low <= truth_w.variance <= high, (var, truth_w.variance)
    assert abs(d_w.mean() - delta_w) < 4 * math.sqrt(var / reps) + delta_w * 2 / (n_all - m_all)


def test_three_level_unequal_sizes_by_simulation():
    rng = np.random.default_rng(12)
    schools_t = [[10, 14], [8, 12, 9], [15], [11, 13], [7, 9, 10], [12, 12]]
    schools_c = [[9, 16], [13], [10, 10, 8], [14, 6], [12, 11], [9, 15, 7]]
    rs, rc, delta_t, reps = 0.15, 0.08, 0.25, 10_000
    rw = 1 - rs - rc
    stats_ = {}
    for arm, schools, shift in (("t", schools_t, delta_t), ("c", schools_c, 0.0)):
        class_sizes = np.concatenate([np.asarray(s) for s in schools])
        school_of_class = np.concatenate([[k] * len(s) for k, s in enumerate(schools)])
        class_codes = np.repeat(np.arange(class_sizes.size), class_sizes)
        school_codes = school_of_class[class_codes]
        y = (
            shift
            + rng.normal(0, math.sqrt(rs), (reps, len(schools)))[:, school_codes]
            + rng.normal(0, math.sqrt(rc), (reps, class_sizes.size))[:, class_codes]
            + rng.normal(0, math.sqrt(rw), (reps, class_codes.size))
        )
        mean = y.mean(axis=1)
        class_means = np.stack(
            [y[:, class_codes == j].mean(axis=1) for j in range(class_sizes.size)], 1
        )
        stats_[arm] = (
            mean,
            ((y - mean[:, None]) ** 2).sum(axis=1),
            ((y - class_means[:, class_codes]) ** 2).sum(axis=1),
            class_codes.size,
            class_sizes.size,
        )
    n_all = stats_["t"][3] + stats_["c"][3]
    classes = stats_["t"][4] + stats_["c"][4]
    diff = stats_["t"][0] - stats_["c"][0]
    s_t = np.sqrt((stats_["t"][1] + stats_["c"][1]) / (n_all - 2))
    s_w = np.sqrt((stats_["t"][2] + stats_["c"][2]) / (n_all - classes))
    kw = {
        "icc_school": rs,
        "icc_class": rc,
        "class_sizes_treatment": schools_t,
        "class_sizes_control": schools_c,
    }
    factor = dict(three_level_d_total(1.0, 1.0, **kw).details)["S_T bias factor"]
    d_t = diff / s_t * factor
    truth = three_level_d_total(delta_t / factor, 1.0, **kw)
    var, low, high = _mc_variance_bounds(d_t)
    assert low <= truth.variance <= high, (var, truth.variance)
    assert abs(d_t.mean() - delta_t) < 4 * math.sqrt(var / reps)

    delta_w = delta_t / math.sqrt(rw)
    truth_w = three_level_d_within(delta_w, 1.0, **kw)
    var, low, high = _mc_variance_bounds(diff / s_w)
    assert low <= truth_w.variance <= high, (var, truth_w.variance)


# --- cluster effect sizes from pupil data ---------------------------------------------------


def _cluster_frame(seed=3, rho=0.2):
    rng = np.random.default_rng(seed)
    sizes = [12, 25, 18, 9, 30, 14, 21, 16]
    treated = [True, False] * 4
    cluster = np.repeat([f"s{j}" for j in range(8)], sizes)
    arm = np.repeat(treated, sizes)
    y = (
        50
        + 4 * arm
        + np.repeat(rng.normal(0, 10 * math.sqrt(rho), 8), sizes)
        + rng.normal(0, 10 * math.sqrt(1 - rho), sum(sizes))
    )
    return pd.DataFrame({"y": y, "treated": arm, "school": cluster})


def test_from_data_matches_summary_inputs():
    df = _cluster_frame()
    t, c = df[df.treated], df[~df.treated]
    diff = t.y.mean() - c.y.mean()
    ss_t = ((t.y - t.y.mean()) ** 2).sum() + ((c.y - c.y.mean()) ** 2).sum()
    ss_w = ((df.y - df.groupby("school").y.transform("mean")) ** 2).sum()
    sizes_t = t.groupby("school").size().tolist()
    sizes_c = c.groupby("school").size().tolist()
    kw = {"icc": 0.2, "cluster_sizes_treatment": sizes_t, "cluster_sizes_control": sizes_c}
    total = cluster_d_total_from_data(df.y, df.treated, df.school, icc=0.2)
    expected = cluster_d_total(diff, math.sqrt(ss_t / (len(df) - 2)), **kw)
    assert total.estimate == pytest.approx(expected.estimate, rel=1e-12)
    assert total.variance == pytest.approx(expected.variance, rel=1e-12)
    within = cluster_d_within_from_data(df.y, df.treated, df.school, icc=0.2)
    expected = cluster_d_within(diff, math.sqrt(ss_w / (len(df) - 8)), **kw)
    assert within.estimate == pytest.approx(expected.estimate, rel=1e-12)
    assert within.variance == pytest.approx(expected.variance, rel=1e-12)
    # Row order does not matter.
    shuffled = df.sample(frac=1.0, random_state=1)
    again = cluster_d_total_from_data(shuffled.y, shuffled.treated, shuffled.school, icc=0.2)
    assert again.estimate == pytest.approx(total.estimate, rel=1e-12)


def test_anova_icc_estimate_by_hand():
    df = _cluster_frame()
    es = cluster_d_total_from_data(df.y, df.treated, df.school)
    t = df.treated.to_numpy()
    arm_mean = np.where(t, df.y[t].mean(), df.y[~t].mean())
    cluster_mean = df.groupby("school").y.transform("mean").to_numpy()
    ss_w = np.sum((df.y - cluster_mean) ** 2)
    ss_b = np.sum((cluster_mean - arm_mean) ** 2)
    s2_w = ss_w / (len(df) - 8)
    b = 0.0
    for arm in (True, False):
        sizes = df[df.treated == arm].groupby("school").size().to_numpy(float)
        b += sizes.sum() - np.sum(sizes**2) / sizes.sum()
    sigma_b = max((ss_b - 6 * s2_w) / b, 0)
    assert dict(es.details)["ICC (ANOVA estimate)"] == pytest.approx(
        sigma_b / (sigma_b + s2_w), rel=1e-10
    )


def test_anova_icc_truncated_at_zero():
    # Cluster means identical within each arm: between-cluster sum of squares is 0.
    y = [1, 2, 3, 3, 2, 1, 0, 1, 2, 2, 1, 0]
    es = cluster_d_total_from_data(y, [1] * 6 + [0] * 6, list("aaabbbcccddd"))
    assert dict(es.details)["ICC (ANOVA estimate)"] == 0.0


# --- EffectSize faces for the new methods ----------------------------------------------------


def test_faces_of_new_effect_sizes():
    es = cluster_d_total(
        3.0, 10.0, icc=0.2, n_clusters_treatment=10, n_clusters_control=10, cluster_size=20,
        label="reading",
    )  # fmt: skip
    assert isinstance(es, EffectSize)
    assert tuple(es.to_frame().columns) == TIDY_COLUMNS
    text = str(es.summary())
    assert "Hedges (2007) d_T" in text and "ICC (given)" in text and "Improvement index" in text
    assert str(es).startswith("reading: d_T = 0.297")
    payload = es.to_dict()
    json.dumps(payload)  # JSON-safe
    assert payload["details"]["clusters (treatment, control)"] == [10, 10]
    assert payload["variance"] == pytest.approx(es.std_error**2)
    assert payload["symbol"] == "d_T"
    d = cohens_d_from_data(T, C)
    assert "Cohen's d" in str(d.summary()) and "SD as known" not in str(d.summary())
    assert "Glass" in glass_delta_from_data(T, C).method


def test_model_estimate_effect_size_unchanged():
    # The model-estimate path keeps its defaults: method, note about the SD treated as known.
    es = hedges_g(1.2, 0.4, 6.0, n=400, df=19, label="ATT")
    assert es.method == "model estimate / pupil-level SD" and es.symbol == "g"
    assert "SD as known" in str(es.summary())
    assert es.variance == pytest.approx(es.std_error**2)


# --- bad input ---------------------------------------------------------------------------

EQUAL = {"n_clusters_treatment": 10, "n_clusters_control": 10, "cluster_size": 20}


@pytest.mark.parametrize("icc", [1.0, -0.01, 20, float("nan"), "0.2"])
@pytest.mark.parametrize("function", [cluster_d_total, cluster_d_within])
def test_icc_outside_unit_interval(function, icc):
    with pytest.raises(InvalidValueError, match="icc"):
        function(0.3, 1.0, icc=icc, **EQUAL)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"icc_school": 1.0, "icc_class": 0.0}, InvalidValueError, "icc_school"),
        ({"icc_school": 0.1, "icc_class": -0.1}, InvalidValueError, "icc_class"),
        ({"icc_school": 0.6, "icc_class": 0.4}, InvalidValueError, "sum|below 1"),
    ],
)
def test_three_level_icc_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        three_level_d_total(
            0.3, 1.0, n_schools_treatment=5, n_schools_control=5, classes_per_school=2,
            class_size=10, **kwargs,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: cluster_d_total(0.3, -1.0, icc=0.2, **EQUAL), InvalidValueError, "sd_total"),
        (lambda: cluster_d_within(0.3, 0.0, icc=0.2, **EQUAL), InvalidValueError, "sd_within"),
        (
            lambda: cluster_d_total(
                0.3, 1.0, icc=0.2, n_clusters_treatment=1, n_clusters_control=10, cluster_size=5
            ),
            InvalidValueError,
            "n_clusters_treatment",
        ),
        (
            lambda: cluster_d_total(
                0.3, 1.0, icc=0.2, cluster_sizes_treatment=[20], cluster_sizes_control=[5, 5]
            ),
            DesignError,
            "cluster_sizes_treatment",
        ),
        (
            lambda: cluster_d_total(
                0.3, 1.0, icc=0.2, cluster_sizes_treatment=[20, 0], cluster_sizes_control=[5, 5]
            ),
            InvalidValueError,
            "cluster_sizes_treatment",
        ),
        (
            lambda: cluster_d_total(0.3, 1.0, icc=0.2, cluster_sizes_treatment=[3, 4], **EQUAL),
            InvalidValueError,
            "not a mixture",
        ),
        (
            lambda: cluster_d_within(
                0.3, 1.0, icc=0.2, n_clusters_treatment=5, n_clusters_control=5, cluster_size=1
            ),
            DesignError,
            "one pupil",
        ),
        (lambda: cohens_d_from_data([1.0], [1.0, 2.0]), InvalidValueError, "treatment"),
        (
            lambda: hedges_g_from_summary(
                mean_treatment=1,
                sd_treatment=-2,
                n_treatment=10,
                mean_control=0,
                sd_control=1,
                n_control=10,
            ),
            InvalidValueError,
            "sd_treatment",
        ),  # fmt: skip
        (
            lambda: cohens_d_from_summary(
                mean_treatment=1,
                sd_treatment=2,
                n_treatment=1,
                mean_control=0,
                sd_control=1,
                n_control=10,
            ),
            InvalidValueError,
            "n_treatment",
        ),  # fmt: skip
        (
            lambda: glass_delta_from_summary(
                mean_treatment=1, n_treatment=10, mean_control=0, sd_control=-1, n_control=10
            ),
            InvalidValueError,
            "sd_control",
        ),
        (
            lambda: glass_delta_from_data([1, 2, 3], [2.0, 2.0, 2.0]),
            InvalidValueError,
            "control",
        ),
        (
            lambda: glass_delta_from_data([1, 2, 3], [1, 2], correct=True),
            InvalidValueError,
            "n_control",
        ),
        (lambda: cohens_d_from_data([1, 1], [2, 2]), InvalidValueError, "constant"),
        (lambda: hedges_g_from_data([[1, 2]], [1, 2]), InvalidValueError, "treatment"),
        (lambda: hedges_g_from_data(["a", "b"], [1, 2]), InvalidValueError, "treatment"),
        (lambda: hedges_g_from_data([1, 2, 3], [1, 2], alpha=0), InvalidValueError, "alpha"),
    ],
)
def test_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match) as info:
        call()
    assert isinstance(info.value, CpdImpactError)


def test_missing_values_name_group_and_rows():
    t = pd.Series([1.0, np.nan, 3.0, np.nan], index=["p1", "p2", "p3", "p4"])
    with pytest.raises(InvalidValueError, match=r"treatment .*'p2', 'p4'"):
        hedges_g_from_data(t, [1.0, 2.0])


def test_cluster_data_errors():
    df = _cluster_frame()
    mixed = df.assign(treated=df.treated.where(df.index != 0, ~df.treated.iloc[0]))
    with pytest.raises(DesignError, match="both arms"):
        cluster_d_total_from_data(mixed.y, mixed.treated, mixed.school)
    with pytest.raises(InvalidValueError, match="outcome"):
        cluster_d_total_from_data(df.y.where(df.index != 3), df.treated, df.school)
    with pytest.raises(InvalidValueError, match="treatment"):
        cluster_d_total_from_data(df.y, df.treated.astype(int) * 2, df.school)
    with pytest.raises(InvalidValueError, match="same length"):
        cluster_d_within_from_data(df.y, df.treated[:-1], df.school)
    with pytest.raises(InvalidValueError, match="icc"):
        cluster_d_within_from_data(df.y, df.treated, df.school, icc=1.2)
    one = df[df.school.isin(["s0", "s1", "s3"])]
    with pytest.raises(DesignError, match="treatment arm has 1 cluster"):
        cluster_d_total_from_data(one.y, one.treated, one.school)
    before = df.copy()
    cluster_d_total_from_data(df.y, df.treated, df.school)
    pd.testing.assert_frame_equal(df, before)  # inputs untouched


# --- invariance: a*y + b with a > 0 leaves every effect size unchanged --------------------

scores = st.lists(st.integers(-50, 50), min_size=3, max_size=25)
affine = {"a": st.floats(0.01, 100), "b": st.floats(-1000, 1000)}


def _same(x: EffectSize, y: EffectSize):
    for field in ("estimate", "std_error", "ci_lower", "ci_upper"):
        assert getattr(y, field) == pytest.approx(getattr(x, field), rel=1e-7, abs=1e-9)


@given(t=scores, c=scores, **affine)
def test_two_group_effect_sizes_invariant_to_affine_outcome(t, c, a, b):
    t, c = np.asarray(t, float), np.asarray(c, float)
    assume(np.std(t) > 0 and np.std(c) > 0)
    for function in (cohens_d_from_data, hedges_g_from_data, glass_delta_from_data):
        _same(function(t, c), function(a * t + b, a * c + b))
    s, moved = summary_of(t, c), summary_of(a * t + b, a * c + b)
    for function in (cohens_d_from_summary, hedges_g_from_summary):
        _same(function(**s), function(**moved))


@settings(max_examples=60)
@given(
    values=st.lists(st.integers(-20, 20), min_size=24, max_size=24),
    sizes=st.lists(st.integers(2, 4), min_size=6, max_size=6),
    icc=st.none() | st.floats(0, 0.9),
    **affine,
)
def test_cluster_effect_sizes_invariant_to_affine_outcome(values, sizes, icc, a, b):
    n = sum(sizes)
    y = np.resize(np.asarray(values, float), n) + np.arange(n) % 3  # some spread
    cluster = np.repeat(np.arange(6), sizes)
    treated = cluster % 2 == 0
    for function in (cluster_d_within_from_data, cluster_d_total_from_data):
        _same(
            function(y, treated, cluster, icc=icc),
            function(a * y + b, treated, cluster, icc=icc),
        )
    rho = 0.2 if icc is None else icc
    kw = {"icc": rho, "n_clusters_treatment": 3, "n_clusters_control": 4, "cluster_size": 5}
    diff, sd = float(np.ptp(values)) + 1.0, float(np.std(values)) + 1.0
    for function in (cluster_d_within, cluster_d_total):
        _same(function(diff, sd, **kw), function(a * diff, a * sd, **kw))
