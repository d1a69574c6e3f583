"""Trial analyses: eefAnalytics parity, resampling, known truth, properties and bad input."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cpdimpact.errors import (
    CpdImpactWarning,
)
from cpdimpact.multilevel import (
    ClusterTrial,
    MultisiteTrial,
    SimpleTrial,
    TrialResult,
)

REF = Path(__file__).parent / "reference" / "trials"
DATA = Path(__file__).parent / "reference" / "multilevel"
CASES = json.loads((REF / "reference.json").read_text())["cases"]
CRT = pd.read_csv(DATA / "crtData.csv")
MST = pd.read_csv(DATA / "mstData.csv")
SPEC = {"outcome": "Posttest", "treatment": "Intervention", "covariates": ("Prettest",)}


def _shown(value: float, shown: float, decimals: int) -> None:
    """``value`` rounds to ``shown`` at ``decimals`` places (as the README prints it)."""
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


# ============================================================================ README figures
def test_crt_matches_published_eefanalytics():
    """reference/README.md section 1, crtData (eefAnalytics 1.1.5 output)."""
    res = _fit("crt_cluster")
    _shown(res.estimate, 3.109709, 6)
    _shown(res.std_error, 1.209383, 6)
    assert res.ci_method == "profile"
    _shown(res.ci[0], 0.75, 2)
    _shown(res.ci[1], 5.47, 2)
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
    # The README's note: coefficient / sqrt(unconditional total) = 0.60688, no correction.
    headline = res.headline
    assert headline["definition"] == "eef_guidance" and headline["variance"] == "total"
    _shown(res.effect_size, 0.60688, 5)
    effects = res.school_effects
    first = effects[effects["term"] == "Intercept"]["estimate"].iloc[:6]
    for value, shown in zip(first, (-2.75, 1.44, 3.21, 4.13, -0.48, -2.35), strict=True):
        _shown(value, shown, 2)


def test_mst_matches_published_eefanalytics():
    """reference/README.md section 1, mstData: simple and multisite analyses."""
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
    _shown(multi.ci[0], 1.07, 2)
    _shown(multi.ci[1], 6.22, 2)
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
        assert res.ci == pytest.approx(
            (tr["profile_ci"]["lower"], tr["profile_ci"]["upper"]), rel=1e-7
        )
        assert coef.loc["satterthwaite", "df"] == pytest.approx(tr["df"], rel=1e-4)
        assert coef.loc["satterthwaite", ["ci_lower", "ci_upper"]].tolist() == pytest.approx(
            [tr["satterthwaite_ci"]["lower"], tr["satterthwaite_ci"]["upper"]], rel=1e-5
        )
        for model in ("conditional", "unconditional"):
            for key, value in case["variances"][model].items():
                if key in res.variances.columns:
                    assert res.variances.loc[model, key] == pytest.approx(value, rel=1e-6), key
        head = case["headline"]
        assert res.effect_size == pytest.approx(head["estimate"], rel=1e-6)
        assert res.headline[["ci_lower", "ci_upper"]].tolist() == pytest.approx(
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
    res = _fit("crt_cluster")
    lme4 = tr["lme4_profile_ci"]
    assert res.ci == pytest.approx((lme4["lower"], lme4["upper"]), abs=5e-6)


def test_eefanalytics_unconditional_total_is_the_headline_times_hedges_factor():
    res = _fit("crt_cluster")
    factor = CASES["crt_cluster"]["total_corrections"]["unconditional"]
    assert _es(res, "unconditional", "total")["estimate"] == pytest.approx(
        res.effect_size * factor, rel=1e-9
    )
    assert factor < 1
