"""Parity of the survival estimators with R survival, lifelines and statsmodels.

The references were computed once on ``tests/reference/survival/spells.csv`` by the scripts
stored beside them (``survival_reference.R``, ``lifelines_reference.py``,
``statsmodels_reference.py``; versions and how to rerun in that folder's README.md). The tests
need none of the peers installed.

Tolerances: Kaplan-Meier is closed-form arithmetic (1e-9 relative). Cox and the logit are
iterative: R stops when the log partial likelihood changes by less than 1e-9 relatively, so
coefficients agree to about 1e-6 (statsmodels was run with ``tol=1e-12``, agreeing to 1e-7).
lifelines' robust variance ignores ties (its changelog, v0.15.0), so its robust standard errors
are compared on the continuous durations only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cpdimpact.survival import CoxModel, DiscreteTimeHazard, KaplanMeier

REF = Path(__file__).parent / "reference" / "survival"
SPELLS = pd.read_csv(REF / "spells.csv")
COLUMNS = {"event": "left", "treatment": "treated"}

KM_VARIANTS = {
    "plain": dict(duration="years"),
    "loglog": dict(duration="years", conf_type="log-log"),
    "plain_ci": dict(duration="years", conf_type="plain"),
    "cluster": dict(duration="years", cluster="school"),
    "weights": dict(duration="years", weights="weight"),
    "weights_cluster": dict(duration="years", weights="weight", cluster="school"),
    "counts": dict(duration="years", weights="count"),
    "exact_cluster": dict(duration="years_exact", cluster="school", conf_type="log-log"),
}


@pytest.mark.parametrize("variant", list(KM_VARIANTS))
def test_kaplan_meier_curves_match_r_survfit(variant):
    ref = pd.read_csv(REF / "r_km_curves.csv").query("variant == @variant")
    res = KaplanMeier(**COLUMNS, **KM_VARIANTS[variant]).fit(SPELLS)
    ours = res.curve_frame()
    assert len(ours) == len(ref)
    for arm in ("treated", "comparison"):
        a = ours.loc[ours["arm"] == arm].reset_index(drop=True)
        b = ref.loc[ref["arm"] == arm].reset_index(drop=True)
        for column in ("time", "n_risk", "n_event", "n_censor", "survival"):
            np.testing.assert_allclose(a[column], b[column], rtol=1e-9, atol=1e-12, err_msg=column)
        # survfit's std.err is that of log S under Greenwood but that of S itself under the
        # jackknife (its intervals then divide by S); ours is always that of log S
        scale = a["survival"] if res.variance == "jackknife" else 1.0
        np.testing.assert_allclose(a["std_error"] * scale, b["std_error"], rtol=1e-9, atol=1e-14)
        for column in ("ci_lower", "ci_upper"):
            # R leaves the interval undefined where S = 1 on the log-log scale
            np.testing.assert_allclose(
                a[column].to_numpy(float), b[column].to_numpy(float), rtol=1e-9, equal_nan=True
            )


@pytest.mark.parametrize("variant", ["cluster", "weights_cluster", "exact_cluster"])
def test_retention_differences_match_r_influence(variant):
    ref = pd.read_csv(REF / "r_km_differences.csv").query("variant == @variant")
    res = KaplanMeier(**COLUMNS, **KM_VARIANTS[variant]).fit(SPELLS)
    np.testing.assert_allclose(res.differences["estimate"], ref["estimate"], rtol=1e-9)
    np.testing.assert_allclose(res.differences["std_error"], ref["std_error"], rtol=1e-9)
    frame = res.to_frame().set_index("term")
    assert frame.loc["difference at 1", "estimate"] == pytest.approx(ref["estimate"].iloc[0])
    assert res.estimate == pytest.approx(ref["estimate"].iloc[0])


def test_kaplan_meier_matches_lifelines():
    ref = pd.read_csv(REF / "lifelines_km.csv")
    for variant, weights in (("plain", None), ("counts", "count")):
        res = KaplanMeier(**COLUMNS, duration="years", weights=weights, conf_type="log-log")
        ours = res.fit(SPELLS).curve_frame()
        mine = ref[ref["variant"] == variant]
        for arm in ("treated", "comparison"):
            a = ours.loc[ours["arm"] == arm].reset_index(drop=True)
            b = mine.loc[mine["arm"] == arm].reset_index(drop=True)
            np.testing.assert_allclose(a["survival"], b["survival"], rtol=1e-9)
            # lifelines' default "exponential Greenwood" interval is survfit's log-log
            np.testing.assert_allclose(a["ci_lower"], b["ci_lower"], rtol=1e-9)
            np.testing.assert_allclose(a["ci_upper"], b["ci_upper"], rtol=1e-9)


COX_VARIANTS = {
    "plain": dict(duration="years"),
    "cluster": dict(duration="years", covariates=("experience", "senior"), cluster="school"),
    "weights": dict(duration="years", covariates=("experience", "senior"), weights="weight"),
    "weights_cluster": dict(
        duration="years", covariates=("experience", "senior"), weights="weight", cluster="school"
    ),
    "counts": dict(duration="years", covariates=("experience",), weights="count"),
    "exact_cluster": dict(duration="years_exact", covariates=("experience",), cluster="school"),
}


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("variant", list(COX_VARIANTS))
def test_cox_matches_r_coxph(variant, ties):
    ref = pd.read_csv(REF / "r_cox.csv").query("variant == @variant and ties == @ties")
    res = CoxModel(**COLUMNS, ties=ties, **COX_VARIANTS[variant]).fit(SPELLS)
    ref = ref.set_index("term").loc[list(res.params.index)]
    np.testing.assert_allclose(res.params, ref["estimate"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(res.std_errors, ref["std_error"], rtol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.diag(res.model_cov)), ref["model_std_error"], rtol=1e-6)
    np.testing.assert_allclose(res.cov.iloc[:, 0], ref["cov_treated"], rtol=1e-5, atol=1e-10)
    assert res.loglik == pytest.approx(ref["loglik"].iloc[0], rel=1e-9)
    assert res.loglik_null == pytest.approx(ref["loglik_null"].iloc[0], rel=1e-12)
    expected = (
        "robust"
        if variant in ("cluster", "weights", "weights_cluster", "exact_cluster")
        else "model"
    )
    assert res.variance == expected
    lower, upper = res.hazard_ratio_ci
    b, se = ref["estimate"].iloc[0], ref["std_error"].iloc[0]
    assert res.hazard_ratio == pytest.approx(np.exp(b), rel=1e-6)
    assert lower == pytest.approx(np.exp(b - 1.959963984540054 * se), rel=1e-6)
    assert upper == pytest.approx(np.exp(b + 1.959963984540054 * se), rel=1e-6)


LIFELINES_COX = {
    "plain": dict(),
    "cluster": dict(covariates=("experience", "senior"), cluster="school"),
    "weights_cluster": dict(
        covariates=("experience", "senior"), cluster="school", weights="weight"
    ),
}


@pytest.mark.parametrize("duration", ["years", "years_exact"])
@pytest.mark.parametrize("variant", list(LIFELINES_COX))
def test_cox_matches_lifelines(variant, duration):
    ref = pd.read_csv(REF / "lifelines_cox.csv").query(
        "variant == @variant and duration == @duration"
    )
    res = CoxModel(**COLUMNS, duration=duration, **LIFELINES_COX[variant]).fit(SPELLS)
    ref = ref.set_index("term").loc[list(res.params.index)]
    np.testing.assert_allclose(res.params, ref["estimate"], rtol=1e-5, atol=1e-6)
    if variant == "plain" or duration == "years_exact":
        np.testing.assert_allclose(res.std_errors, ref["std_error"], rtol=1e-5)


DISCRETE_VARIANTS = {
    "cluster": dict(covariates=("experience", "senior"), cluster="school", pool_from=6),
    "weights_cluster": dict(
        covariates=("experience", "senior"), cluster="school", weights="weight", pool_from=6
    ),
    "model": dict(),
    "weights_spell": dict(covariates=("experience",), weights="weight", pool_from=5),
}


@pytest.mark.parametrize("variant", list(DISCRETE_VARIANTS))
def test_discrete_time_hazard_matches_statsmodels_glm(variant):
    ref = pd.read_csv(REF / "statsmodels_glm.csv").query("variant == @variant")
    res = DiscreteTimeHazard(**COLUMNS, duration="years", **DISCRETE_VARIANTS[variant]).fit(SPELLS)
    ref = ref.set_index("term")
    assert sorted(ref.index) == sorted(res.params.index)
    ref = ref.loc[list(res.params.index)]
    np.testing.assert_allclose(res.params, ref["estimate"], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(res.std_errors, ref["std_error"], rtol=1e-7)
    if variant in ("cluster", "weights_cluster"):
        assert res.df == ref["df"].iloc[0] == 59
    leaving = pd.read_csv(REF / "statsmodels_leaving.csv").query("variant == @variant")
    np.testing.assert_allclose(res.differences["estimate"], leaving["estimate"], rtol=1e-7)
    # the reference gradient is a central difference (step 1e-6): agreement to 1e-6
    np.testing.assert_allclose(res.differences["std_error"], leaving["std_error"], rtol=1e-6)
