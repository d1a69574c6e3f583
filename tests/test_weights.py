"""Weights (``weights=``) in the staggered and multilevel estimators and the trials.

Peer parity (stored outputs of moderndid/csdid and R lme4, scripts beside them), invariances
(constant weights, scale, zero weights, integer weights as copies), known truth (weights undo
an over-sampled subgroup) and bad input.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cpdimpact.did import StaggeredDiD
from cpdimpact.errors import DesignError, InvalidValueError

REFERENCE = Path(__file__).parent / "reference"
STAGGERED = REFERENCE / "staggered"


# ---------------------------------------------------------------------- staggered: peers
def _staggered_cases():
    cases = json.loads((STAGGERED / "weighted_reference.json").read_text())["cases"]
    return sorted(cases.items())


@pytest.fixture(scope="module")
def weighted_inputs():
    return {
        "panel": pd.read_csv(STAGGERED / "weighted_panel.csv"),
        "cross": pd.read_csv(STAGGERED / "weighted_cross_sections.csv"),
        "unbalanced": pd.read_csv(STAGGERED / "weighted_unbalanced.csv"),
    }


def _spec_for(key: str, **options) -> tuple[StaggeredDiD, str]:
    parts = key.split("_")
    base = dict(outcome="y", time="year", first_treated="cohort", weights="w", n_bootstrap=0)
    if key.startswith("panel"):
        tag, method, control = parts[1], parts[2], parts[3]
        controls = {"nevertreated": "never_treated", "notyettreated": "not_yet_treated"}
        base.update(unit="unit", control_group=controls[control])
        data = "panel"
    elif key.startswith("unbalanced"):
        tag, method = parts[1], parts[2]
        base.update(unit="unit")
        data = "unbalanced"
    else:
        tag, method = parts[2], parts[3]
        base.update(unit="row", panel=False)
        data = "cross"
    base.update(method=method, covariates=("x", "z") if tag == "xz" else ())
    base.update(options)
    return StaggeredDiD(**base), data


@pytest.mark.parametrize(("key", "peers"), _staggered_cases(), ids=lambda v: str(v)[:40])
def test_staggered_weighted_matches_peers(weighted_inputs, key, peers):
    spec, data = _spec_for(key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = spec.fit(weighted_inputs[data])
    ours = result.group_time.set_index(["group", "time"])
    for peer, out in peers.items():
        theirs = pd.DataFrame(out["cells"]).set_index(["group", "time"])
        assert set(theirs.index) == set(ours.index), peer
        joined = ours.join(theirs.add_suffix("_peer"))
        # csdid prints 8 decimals; moderndid keeps full precision.
        tol = 1e-9 if peer == "moderndid" else 2e-8
        np.testing.assert_allclose(joined["estimate"], joined["estimate_peer"], atol=tol)
        # moderndid's doubly robust cross-section SE has a known sign error (docs/staggered.md).
        if not (peer == "moderndid" and key == "cross_sections_xz_dr"):
            np.testing.assert_allclose(joined["std_error"], joined["std_error_peer"], atol=tol)
        if peer == "csdid":  # moderndid 0.2's aggte ignores the weights in the cohort shares
            for kind, agg in out["aggregates"].items():
                mine = result.aggregate(kind)
                assert mine.estimate == pytest.approx(agg["estimate"], abs=1e-9), kind
                assert mine.std_error == pytest.approx(agg["std_error"], abs=1e-9), kind


def test_moderndid_aggregates_are_the_unweighted_share_ones(weighted_inputs):
    """The documented peer difference: moderndid 0.2 averages weighted cells with unweighted
    cohort shares. Rebuilding that from our cells reproduces its figure, so the difference is
    the shares and nothing else."""
    peers = dict(_staggered_cases())["panel_none_reg_nevertreated"]
    spec, data = _spec_for("panel_none_reg_nevertreated")
    frame = weighted_inputs[data]
    gt = spec.fit(frame).group_time
    post = gt["time"] >= gt["group"]
    counts = frame.drop_duplicates("unit")["cohort"].value_counts()
    p = gt["group"][post].map(counts).to_numpy(dtype=float)
    rebuilt = p @ gt["estimate"][post].to_numpy() / p.sum()
    expected = peers["moderndid"]["aggregates"]["simple"]["estimate"]
    assert rebuilt == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------- staggered: invariances
STAGGERED_VARIANTS = {
    "panel_dr": dict(unit="unit", covariates=("x", "z"), method="dr"),
    "panel_none": dict(unit="unit"),
    "cross_dr": dict(unit="row", covariates=("x", "z"), method="dr", panel=False),
    "panel_cluster_boot": dict(unit="unit", cluster="area", n_bootstrap=99, seed=3),
}


def _staggered(frame, variant, **options):
    base = dict(outcome="y", time="year", first_treated="cohort", n_bootstrap=0)
    base.update(STAGGERED_VARIANTS[variant])
    base.update(options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return StaggeredDiD(**base).fit(frame)


def _frame_for(weighted_inputs, variant):
    frame = weighted_inputs["cross" if variant.startswith("cross") else "panel"].copy()
    frame["area"] = frame["unit"] % 23 if "unit" in frame else 0
    return frame


def _same(a, b, *, exact=True):
    cols = ["estimate", "std_error"]
    if exact:
        pd.testing.assert_frame_equal(a.group_time, b.group_time)
    else:
        np.testing.assert_allclose(a.group_time[cols], b.group_time[cols], rtol=1e-10)
    for kind in ("simple", "dynamic", "group", "calendar"):
        x, y = a.aggregate(kind), b.aggregate(kind)
        if exact:
            assert (x.estimate, x.std_error) == (y.estimate, y.std_error), kind
        else:
            np.testing.assert_allclose(
                [x.estimate, x.std_error], [y.estimate, y.std_error], rtol=1e-10
            )


@pytest.mark.parametrize("variant", list(STAGGERED_VARIANTS))
def test_staggered_constant_weights_are_the_unweighted_fit(weighted_inputs, variant):
    frame = _frame_for(weighted_inputs, variant)
    plain = _staggered(frame, variant)
    for value in (1.0, 2.5):
        frame["c"] = value
        _same(_staggered(frame, variant, weights="c"), plain)


@pytest.mark.parametrize("variant", list(STAGGERED_VARIANTS))
def test_staggered_weights_scale_free_and_not_ignored(weighted_inputs, variant):
    frame = _frame_for(weighted_inputs, variant)
    weighted = _staggered(frame, variant, weights="w")
    frame["w10"] = frame["w"] * 10.0
    _same(_staggered(frame, variant, weights="w10"), weighted, exact=False)
    plain = _staggered(frame, variant)
    assert abs(weighted.estimate - plain.estimate) > 1e-3


def test_staggered_zero_weights_are_dropped_and_counted(weighted_inputs):
    frame = weighted_inputs["panel"].copy()
    dropped = frame["unit"] % 9 == 0
    frame.loc[dropped, "w"] = 0.0
    fit = _staggered(frame, "panel_dr", weights="w")
    without = _staggered(frame[~dropped], "panel_dr", weights="w")
    _same(fit, without, exact=False)
    assert fit.n_units == without.n_units == frame.loc[~dropped, "unit"].nunique()
    assert any(f"{int(dropped.sum())} rows with zero weight" in note for note in fit.notes)


def test_staggered_integer_weights_act_as_copies(weighted_inputs):
    """A unit of weight 2 enters the point estimates as two copies of it would."""
    frame = weighted_inputs["panel"].copy()
    frame["k"] = 1 + (frame["unit"] % 3 == 0).astype(int)
    twice = frame[frame["k"] == 2].assign(unit=lambda d: d["unit"] + 10_000)
    copies = pd.concat([frame, twice], ignore_index=True)
    for method in ("dr", "ipw", "reg"):
        a = _staggered(frame, "panel_dr", weights="k", method=method)
        b = _staggered(copies, "panel_dr", method=method)
        np.testing.assert_allclose(a.group_time["estimate"], b.group_time["estimate"], rtol=1e-9)
        assert a.estimate == pytest.approx(b.estimate, rel=1e-9)


def test_staggered_weights_do_not_modify_input_and_row_order_is_free(weighted_inputs):
    frame = weighted_inputs["cross"].copy()
    before = frame.copy()
    fit = _staggered(frame, "cross_dr", weights="w")
    pd.testing.assert_frame_equal(frame, before)
    shuffled = frame.sample(frac=1.0, random_state=5)
    _same(_staggered(shuffled, "cross_dr", weights="w"), fit, exact=False)


def test_staggered_weighted_bootstrap_agrees_with_analytic(weighted_inputs):
    frame = _frame_for(weighted_inputs, "panel_dr")
    analytic = _staggered(frame, "panel_dr", weights="w")
    boot = _staggered(frame, "panel_dr", weights="w", n_bootstrap=499, seed=11)
    ratio = boot.group_time["std_error"] / analytic.group_time["std_error"]
    assert ratio.between(0.8, 1.25).all()
    assert boot.aggregate("dynamic").std_error == pytest.approx(
        analytic.aggregate("dynamic").std_error, rel=0.15
    )


def test_staggered_weight_errors(weighted_inputs):
    frame = weighted_inputs["panel"].copy()
    spec = StaggeredDiD(outcome="y", time="year", first_treated="cohort", n_bootstrap=0)
    varying = frame.assign(v=frame["w"] + frame["year"] * (frame["unit"] == 4))
    with pytest.raises(InvalidValueError, match="constant within each unit"):
        replace(spec, weights="v").fit(varying)
    for bad, match in ((-1.0, "negative"), (np.nan, "missing"), (np.inf, "infinite")):
        broken = frame.copy()
        broken.loc[7, "w"] = bad
        with pytest.raises(InvalidValueError, match=match) as info:
            replace(spec, weights="w").fit(broken)
        assert "'w'" in str(info.value) and "row 7" in str(info.value)
    with pytest.raises(InvalidValueError, match="numeric"):
        replace(spec, weights="w").fit(frame.assign(w="a"))
    fit = replace(spec, weights="w", cluster="cohort").fit(frame)
    with pytest.raises(DesignError, match="weights"):
        fit.wild_bootstrap()
    from cpdimpact.did import wild_bootstrap_aggregate

    with pytest.raises(DesignError, match="weights"):
        wild_bootstrap_aggregate(fit)  # the function refuses too, not only the method


# ---------------------------------------------------------------------- staggered: truth
def _oversampled_panel(seed: int, n_units: int = 1600) -> tuple[pd.DataFrame, float]:
    """Two kinds of unit, half each in the population; the effect is 2 for kind A and 0 for
    kind B, so the population ATT is 1. The sample holds 80% kind A (over-sampled); the
    design weight undoes it: 0.5/0.8 for A, 0.5/0.2 for B."""
    rng = np.random.default_rng(seed)
    kind_a = rng.random(n_units) < 0.8
    cohort = np.where(rng.random(n_units) < 0.5, 2019, 0)  # assignment independent of kind
    level = rng.normal(size=n_units) + kind_a
    rows = []
    for t in range(2016, 2022):
        treated = (cohort > 0) & (t >= cohort)
        y = level + 0.3 * (t - 2016) + treated * np.where(kind_a, 2.0, 0.0)
        y = y + rng.normal(scale=0.5, size=n_units)
        rows.append(pd.DataFrame({"unit": np.arange(n_units), "year": t, "y": y, "g": cohort}))
    frame = pd.concat(rows, ignore_index=True)
    weight = np.where(kind_a, 0.5 / 0.8, 0.5 / 0.2)
    frame["w"] = weight[frame["unit"]]
    return frame, 1.0


def test_staggered_weights_recover_the_population_att():
    frame, truth = _oversampled_panel(seed=2)
    spec = dict(outcome="y", time="year", first_treated="g", n_bootstrap=0)
    weighted = StaggeredDiD(**spec, weights="w").fit(frame)
    plain = StaggeredDiD(**spec).fit(frame)
    assert abs(weighted.estimate - truth) < 3 * weighted.std_error
    assert abs(plain.estimate - truth) > 8 * plain.std_error  # the sample's ATT (about 1.6)


# ---------------------------------------------------------------------- multilevel: lme4
MULTILEVEL = REFERENCE / "multilevel"
ML_CASES = json.loads((MULTILEVEL / "weighted.json").read_text())["cases"]
ML_RTOL = 1e-5  # as tests/test_multilevel.py: lme4's optimum is polished to ~1e-9 in theta


def _ml_model(case: dict, **options):
    from cpdimpact.multilevel import MultilevelModel

    return MultilevelModel(
        outcome=case["formula"].split("~")[0].strip(),
        covariates=tuple(case["covariates"]),
        groups=tuple(case["groups"]),
        slopes=case["slopes"],
        method=case["method"],
        **options,
    )


@pytest.fixture(scope="module")
def ml_fits():
    return {
        name: _ml_model(case, weights="w").fit(pd.read_csv(MULTILEVEL / case["data"]))
        for name, case in ML_CASES.items()
    }


@pytest.mark.parametrize("name", list(ML_CASES))
def test_multilevel_weighted_matches_lme4(ml_fits, name):
    case, fit = ML_CASES[name], ml_fits[name]
    series = {k: pd.Series(case[k], dtype=float) for k in ("fixed", "std_errors")}
    scale = float(np.abs(series["fixed"]).max())
    np.testing.assert_allclose(
        fit.params[series["fixed"].index], series["fixed"], rtol=ML_RTOL, atol=1e-8 * scale
    )
    np.testing.assert_allclose(
        fit.std_errors[series["std_errors"].index], series["std_errors"], rtol=ML_RTOL
    )
    vc = pd.Series(case["variance_components"], dtype=float)
    np.testing.assert_allclose(fit.variance_components[vc.index], vc, rtol=ML_RTOL, atol=1e-9)
    assert fit.loglik == pytest.approx(case["loglik"], rel=1e-8)
    assert fit.sigma == pytest.approx(case["sigma"], rel=ML_RTOL)
    assert fit.n_obs == case["n_obs"]
    df = pd.Series(case["satterthwaite_df"], dtype=float)
    np.testing.assert_allclose(fit.df[df.index], df, rtol=1e-4)
    vcov = pd.DataFrame(case["vcov"]).loc[fit.cov_params.index, fit.cov_params.columns]
    np.testing.assert_allclose(fit.cov_params, vcov, rtol=1e-4, atol=1e-10)


@pytest.mark.parametrize("name", list(ML_CASES))
def test_multilevel_weighted_random_effects_match_lme4(ml_fits, name):
    case, fit = ML_CASES[name], ml_fits[name]
    for group, rows in case["random_effects"].items():
        ours = fit.random_effects[group]
        id_cols = list(case["groups"][: len(rows[0]["ids"])])
        for row in rows:
            match = ours["term"] == row["term"]
            for col, value in zip(id_cols, row["ids"], strict=True):
                match &= ours[col] == value
            got = ours.loc[match]
            assert len(got) == 1
            assert got["estimate"].iloc[0] == pytest.approx(row["estimate"], rel=1e-4, abs=1e-7)
            assert got["cond_sd"].iloc[0] == pytest.approx(row["cond_sd"], rel=1e-5)


@pytest.mark.parametrize("name", ["crt_weighted_reml", "three_level_weighted_ml"])
def test_multilevel_weights_are_scale_free_as_in_lme4(ml_fits, name):
    """lme4 with weights times 7 changes only sigma (by sqrt 7); ours normalises weights, so
    its fit with weights times 7 is the fit with the weights, and matches lme4's fixed effects
    and log-likelihood there."""
    case = ML_CASES[name]
    data = pd.read_csv(MULTILEVEL / case["data"])
    fit = _ml_model(case, weights="w7").fit(data.assign(w7=data["w"] * 7))
    lme4 = case["weights_times_7"]
    fixed = pd.Series(lme4["fixed"], dtype=float)
    np.testing.assert_allclose(fit.params[fixed.index], fixed, rtol=ML_RTOL, atol=1e-8)
    assert fit.loglik == pytest.approx(lme4["loglik"], rel=1e-8)
    assert fit.sigma * np.sqrt(7) == pytest.approx(lme4["sigma"], rel=ML_RTOL)
    np.testing.assert_allclose(fit.params, ml_fits[name].params, rtol=1e-7)


# ---------------------------------------------------------------------- multilevel: invariances
def _three_level():
    return pd.read_csv(MULTILEVEL / "weighted_three_level.csv")


def _ml_same(a, b, *, exact=True):
    pairs = [
        (a.params, b.params),
        (a.std_errors, b.std_errors),
        (a.variance_components, b.variance_components),
        (a.df, b.df),
    ]
    for x, y in pairs:
        if exact:
            pd.testing.assert_series_equal(x, y)
        else:
            np.testing.assert_allclose(x, y, rtol=1e-7, atol=1e-10)
    if exact:
        assert a.loglik == b.loglik
    else:
        assert a.loglik == pytest.approx(b.loglik, rel=1e-10)


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_multilevel_constant_weights_are_the_unweighted_fit(method):
    from cpdimpact.multilevel import MultilevelModel

    data = _three_level()
    spec = dict(outcome="y", covariates=("prior", "fsm", "treat"), groups=("school", "teacher"))
    plain = MultilevelModel(**spec, method=method).fit(data)
    for value in (1.0, 3.0):
        fit = MultilevelModel(**spec, method=method, weights="c").fit(data.assign(c=value))
        _ml_same(fit, plain)


def test_multilevel_zero_weights_are_dropped_and_counted():
    from cpdimpact.multilevel import MultilevelModel

    data = _three_level()
    zero = data.index % 11 == 0
    spec = dict(outcome="y", covariates=("prior", "fsm", "treat"), groups=("school", "teacher"))
    fit = MultilevelModel(**spec, weights="v").fit(data.assign(v=np.where(zero, 0.0, data["w"])))
    kept = MultilevelModel(**spec, weights="w").fit(data[~zero])
    _ml_same(fit, kept, exact=False)
    assert fit.n_obs == int((~zero).sum())
    assert any(f"{int(zero.sum())} rows with zero weight" in note for note in fit.notes)


def test_multilevel_weighted_likelihood_from_dense_matrices():
    """The per-group recursion against the weighted model written densely: at the fitted
    variances, V = sigma^2 (W^-1 + theta^2 Z Z') gives the GLS coefficients and the ML
    log-likelihood -0.5 (n log 2 pi + log|V| + r'V^-1 r)."""
    from cpdimpact.multilevel import MultilevelModel

    data = pd.read_csv(MULTILEVEL / "weighted_crtData.csv")
    fit = MultilevelModel(
        outcome="Posttest",
        covariates=("Intervention", "Prettest"),
        groups=("School",),
        method="ml",
        weights="w",
    ).fit(data)
    x = np.column_stack([np.ones(len(data)), data["Intervention"], data["Prettest"]])
    y = data["Posttest"].to_numpy()
    z = (data["School"].to_numpy()[:, None] == np.unique(data["School"])[None, :]).astype(float)
    w = data["w"].to_numpy() / data["w"].mean()
    v = fit.sigma**2 * np.diag(1 / w) + fit.variance_components["School"] * z @ z.T
    vi = np.linalg.inv(v)
    beta = np.linalg.solve(x.T @ vi @ x, x.T @ vi @ y)
    np.testing.assert_allclose(fit.params, beta, rtol=1e-9)
    r = y - x @ beta
    loglik = -0.5 * (len(y) * np.log(2 * np.pi) + np.linalg.slogdet(v)[1] + r @ vi @ r)
    assert fit.loglik == pytest.approx(loglik, rel=1e-10)
    np.testing.assert_allclose(fit.std_errors, np.sqrt(np.diag(np.linalg.inv(x.T @ vi @ x))))


def test_multilevel_weight_errors():
    from cpdimpact.multilevel import MultilevelModel

    data = _three_level()
    spec = dict(outcome="y", covariates=("prior",), groups=("school", "teacher"), weights="w")
    for bad, match in ((-0.5, "negative"), (np.nan, "missing"), (np.inf, "infinite")):
        broken = data.copy()
        broken.loc[3, "w"] = bad
        with pytest.raises(InvalidValueError, match=match) as info:
            MultilevelModel(**spec).fit(broken)
        assert "'w'" in str(info.value) and "row 3" in str(info.value)
    with pytest.raises(InvalidValueError, match="numeric"):
        MultilevelModel(**spec).fit(data.assign(w="x"))
    from cpdimpact.errors import MissingColumnError

    with pytest.raises(MissingColumnError):
        MultilevelModel(**{**spec, "weights": "nope"}).fit(data)
    before = data.copy()
    MultilevelModel(**spec).fit(data)
    pd.testing.assert_frame_equal(data, before)


def test_multilevel_did_passes_weights():
    from cpdimpact.cohort import CohortSpec
    from cpdimpact.datasets import city_partnership
    from cpdimpact.multilevel import MultilevelDiD, MultilevelModel

    pupils = CohortSpec(covariates=("prior",)).build(city_partnership(seed=4, scale=0.2)).pupils
    rng = np.random.default_rng(1)
    pupils = pupils.assign(w=rng.uniform(0.3, 2.0, len(pupils)))
    plain = MultilevelDiD(covariates=("prior",)).fit(pupils)
    same = MultilevelDiD(covariates=("prior",), weights="c").fit(pupils.assign(c=2.0))
    assert (same.estimate, same.std_error, same.df, same.effect_size_sd) == (
        plain.estimate,
        plain.std_error,
        plain.df,
        plain.effect_size_sd,
    )
    weighted = MultilevelDiD(covariates=("prior",), weights="w").fit(pupils)
    assert weighted.estimate != pytest.approx(plain.estimate, rel=1e-6)
    assert weighted.model.model.weights == "w"
    assert weighted.unconditional.model.weights == "w"
    # the same model written out through MultilevelModel
    data = pupils.assign(
        treated=pupils["treated"].astype(float),
        exposed=pupils["exposed"].astype(float),
        **{
            f"y{y}": (pupils["year"] == y).astype(float)
            for y in sorted(pupils["year"].unique())[1:]
        },
    )
    years = tuple(f"y{y}" for y in sorted(pupils["year"].unique())[1:])
    by_hand = MultilevelModel(
        outcome="outcome",
        covariates=("treated", *years, "exposed", "prior"),
        groups=("school", "year"),
        check_nesting=False,
        weights="w",
    ).fit(data)
    assert weighted.estimate == pytest.approx(by_hand.params["exposed"], rel=1e-8)
    assert weighted.std_error == pytest.approx(by_hand.std_errors["exposed"], rel=1e-6)


# ---------------------------------------------------------------------- trials
def _crt_weighted():
    return pd.read_csv(MULTILEVEL / "weighted_crtData.csv")


def _slope_weighted():
    return pd.read_csv(MULTILEVEL / "weighted_slope.csv")


def _trial(kind, **options):
    from cpdimpact.multilevel import ClusterTrial, MultisiteTrial, SimpleTrial

    if kind == "cluster":
        base = dict(
            outcome="Posttest", treatment="Intervention", covariates=("Prettest",), cluster="School"
        )
        return ClusterTrial(**base, **options), _crt_weighted()
    if kind == "multisite":
        base = dict(outcome="y", treatment="treat", covariates=("prior",), cluster="school")
        return MultisiteTrial(**base, **options), _slope_weighted()
    base = dict(outcome="y", treatment="treat", covariates=("prior",))
    return SimpleTrial(**base, **options), _slope_weighted()


def _trial_same(a, b):
    pd.testing.assert_frame_equal(a.coefficient, b.coefficient)
    pd.testing.assert_frame_equal(a.effect_sizes, b.effect_sizes)
    pd.testing.assert_frame_equal(a.variances, b.variances)
    for x, y in (
        (a.bootstrap_draws, b.bootstrap_draws),
        (a.permutation_draws, b.permutation_draws),
    ):
        if x is None:
            assert y is None
        else:
            pd.testing.assert_frame_equal(x, y)


@pytest.mark.parametrize("kind", ["simple", "cluster", "multisite"])
def test_trial_constant_weights_are_the_unweighted_fit(kind):
    draws = dict(n_bootstrap=40, n_permutations=40, seed=9)
    spec, data = _trial(kind, **draws)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = spec.fit(data)
        weighted = replace(spec, weights="c").fit(data.assign(c=4.0))
    _trial_same(weighted, plain)


def test_cluster_trial_weighted_matches_lme4():
    ref = ML_CASES["crt_weighted_reml"]
    uncond = ML_CASES["crt_weighted_unconditional"]
    spec, data = _trial("cluster", weights="w")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = spec.fit(data)
    row = res.coefficient.set_index("method").loc["satterthwaite"]
    assert row["estimate"] == pytest.approx(ref["fixed"]["Intervention"], rel=ML_RTOL)
    assert row["std_error"] == pytest.approx(ref["std_errors"]["Intervention"], rel=ML_RTOL)
    assert row["df"] == pytest.approx(ref["satterthwaite_df"]["Intervention"], rel=1e-4)
    v = res.variances
    assert v.loc["conditional", "between"] == pytest.approx(
        ref["variance_components"]["School"], rel=ML_RTOL
    )
    assert v.loc["conditional", "within"] == pytest.approx(
        ref["variance_components"]["Residual"], rel=ML_RTOL
    )
    assert v.loc["unconditional", "between"] == pytest.approx(
        uncond["variance_components"]["School"], rel=ML_RTOL
    )
    assert v.loc["unconditional", "within"] == pytest.approx(
        uncond["variance_components"]["Residual"], rel=ML_RTOL
    )
    assert any("weighted by 'w'" in note for note in res.notes)


@pytest.mark.parametrize("kind", ["cluster", "multisite"])
def test_trial_weighted_profile_interval_is_the_ml_likelihood_ratio(kind):
    """At each end of the profile interval the weighted ML log-likelihood with the coefficient
    fixed there (an offset) is chi2(1, 0.95)/2 below the weighted ML maximum, as computed by
    MultilevelModel directly."""
    from scipy import stats

    from cpdimpact.multilevel import MultilevelModel

    spec, data = _trial(kind, weights="w", ci_method="profile")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = spec.fit(data)
    row = res.coefficient.set_index("method").loc["profile"]
    slopes = {spec.cluster: (spec.treatment,)} if kind == "multisite" else {}
    full = MultilevelModel(
        outcome=spec.outcome,
        covariates=(spec.treatment, *spec.covariates),
        groups=(spec.cluster,),
        slopes=slopes,
        method="ml",
        weights="w",
        df_method="normal",
    ).fit(data)
    for bound in (row["ci_lower"], row["ci_upper"]):
        shifted = data.assign(offset_y=data[spec.outcome] - bound * data[spec.treatment])
        restricted = MultilevelModel(
            outcome="offset_y",
            covariates=tuple(spec.covariates),
            groups=(spec.cluster,),
            slopes=slopes,
            method="ml",
            weights="w",
            df_method="normal",
        ).fit(shifted)
        drop = 2 * (full.loglik - restricted.loglik)
        assert drop == pytest.approx(stats.chi2.ppf(0.95, 1), rel=1e-4)


def test_simple_trial_weighted_is_weighted_least_squares():
    import statsmodels.api as sm

    spec, data = _trial("simple", weights="w")
    res = spec.fit(data)
    x = sm.add_constant(data[["treat", "prior"]])
    wls = sm.WLS(data["y"], x, weights=data["w"]).fit()
    row = res.coefficient.iloc[0]
    assert row["estimate"] == pytest.approx(wls.params["treat"], rel=1e-10)
    assert row["std_error"] == pytest.approx(wls.bse["treat"], rel=1e-10)
    w = data["w"] / data["w"].mean()
    assert res.variances.loc["conditional", "within"] == pytest.approx(
        (w * wls.resid**2).sum() / wls.df_resid, rel=1e-10
    )


@pytest.mark.parametrize("kind", ["simple", "cluster", "multisite"])
def test_trial_weighted_refit_of_the_sample_is_the_fit(kind):
    """The batched refits of the bootstrap and permutations, given the analysed sample itself
    with its weights, reproduce the weighted fit: the weights reach the refits."""
    from cpdimpact.multilevel._resample import TrialArrays, _Batch, _refit

    spec, data = _trial(kind, weights="w", n_bootstrap=20, n_permutations=20, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = spec.fit(data)
    x = np.column_stack(
        [np.ones(len(data)), data[spec.treatment], *[data[c] for c in spec.covariates]]
    )
    site = (
        pd.factorize(data[spec.cluster], sort=True)[0]
        if spec.cluster is not None
        else np.zeros(len(data), dtype=np.int64)
    ).astype(np.int64)
    theta = res.model.theta.to_numpy() if res.model is not None else np.zeros(1)
    w = data["w"].to_numpy() / data["w"].mean()
    arrays = TrialArrays(
        design=kind,
        x=x,
        y=data[spec.outcome].to_numpy(dtype=float),
        site=site,
        n_sites=int(site.max()) + 1,
        beta=np.zeros(x.shape[1]),
        sigma2=1.0,
        site_cov=np.zeros((1, 1)),
        blups=np.zeros((1, 1)),
        theta=theta,
        beta_u=0.0,
        sigma2_u=1.0,
        site_var_u=0.0,
        blups_u=np.zeros(1),
        w=w * 3.0,  # any scale: each draw's weights are normalised
    )
    batch = _Batch(
        [arrays.x], [arrays.y], [arrays.y], [arrays.site], [arrays.treatment], [arrays.w]
    )
    out = _refit(arrays, batch, unconditional=True)
    assert out["coefficient"][0] == pytest.approx(res.coefficient["estimate"].iloc[0], rel=1e-6)
    v = res.variances
    assert out["within_c"][0] == pytest.approx(v.loc["conditional", "within"], rel=1e-5)
    assert out["total_u"][0] == pytest.approx(v.loc["unconditional", "total"], rel=1e-5)
    boot = res.bootstrap_draws
    assert boot["ok"].all() and boot["coefficient"].std() > 0
    plain = replace(spec, weights=None).fit(data) if kind == "simple" else None
    if plain is not None:
        assert not np.allclose(plain.bootstrap_draws["coefficient"], boot["coefficient"])


def test_trial_weight_options_and_errors():
    from cpdimpact.multilevel import ClusterTrial

    with pytest.raises(ValueError, match="residual"):
        ClusterTrial(
            outcome="Posttest",
            treatment="Intervention",
            cluster="School",
            weights="w",
            n_bootstrap=10,
            bootstrap="residual",
        )
    with pytest.raises(ValueError, match="two roles"):
        ClusterTrial(
            outcome="Posttest", treatment="Intervention", cluster="School", weights="School"
        )
    spec, data = _trial("cluster", weights="w")
    broken = data.copy()
    broken.loc[4, "w"] = -1.0
    with pytest.raises(InvalidValueError, match="negative"):
        spec.fit(broken)
    from cpdimpact.errors import MissingColumnError

    with pytest.raises(MissingColumnError, match="weights"):
        spec.fit(data.drop(columns="w"))
    zero = data.assign(w=np.where(data.index < 5, 0.0, data["w"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = spec.fit(zero)
        kept = spec.fit(data.iloc[5:])
    assert fit.n_obs == len(data) - 5
    assert any("5 rows with zero weight" in note for note in fit.notes)
    np.testing.assert_allclose(fit.coefficient["estimate"], kept.coefficient["estimate"], rtol=1e-9)


def _oversampled_trial(seed: int, n_schools: int = 60, pupils: int = 40):
    """A cluster-randomised trial whose sample over-samples FSM pupils (60% of the sample,
    30% of the population). The effect is 0.5 for FSM pupils and 0.1 for the others, so the
    population effect is 0.3 * 0.5 + 0.7 * 0.1 = 0.22 and the sample's 0.34; the design weight
    (0.3/0.6 for FSM pupils, 0.7/0.4 for the others) undoes the over-sampling."""
    rng = np.random.default_rng(seed)
    school = np.repeat(np.arange(n_schools), pupils)
    treated = (school % 2).astype(float)
    fsm = (rng.random(len(school)) < 0.6).astype(float)
    effect = np.where(fsm == 1, 0.5, 0.1)
    y = (
        rng.normal(0, 0.4, n_schools)[school]
        - 0.4 * fsm
        + treated * effect
        + rng.normal(size=len(school))
    )
    frame = pd.DataFrame({"school": school, "treated": treated, "fsm": fsm, "y": y})
    frame["w"] = np.where(fsm == 1, 0.3 / 0.6, 0.7 / 0.4)
    return frame, 0.22


def test_cluster_trial_weights_recover_the_population_effect():
    from cpdimpact.multilevel import ClusterTrial

    frame, truth = _oversampled_trial(seed=3)
    spec = dict(outcome="y", treatment="treated", covariates=("fsm",), cluster="school")
    weighted = ClusterTrial(**spec, weights="w").fit(frame).coefficient.iloc[0]
    plain = ClusterTrial(**spec).fit(frame).coefficient.iloc[0]
    # Effect heterogeneity is by pupil, so the school-level noise cancels in the difference
    # between the two estimates: it isolates the re-weighting (0.34 - 0.22 = 0.12 expected).
    assert abs(weighted["estimate"] - truth) < 3 * weighted["std_error"]
    assert plain["estimate"] - weighted["estimate"] == pytest.approx(0.12, abs=0.04)


@pytest.mark.slow
def test_staggered_weighted_bias_and_coverage_full_size():
    """200 over-sampled panels (400 units each): the weighted estimator is unbiased for the
    population ATT with 95% intervals covering it about 95% of the time; the unweighted one
    estimates the sample's ATT (about 1.6)."""
    spec = dict(outcome="y", time="year", first_treated="g", n_bootstrap=0)
    weighted, covered, plain = [], [], []
    for seed in range(200):
        frame, truth = _oversampled_panel(seed=1000 + seed, n_units=400)
        fit = StaggeredDiD(**spec, weights="w").fit(frame)
        lower, upper = fit.aggregate("simple").conf_int().iloc[0]
        weighted.append(fit.estimate)
        covered.append(lower <= truth <= upper)
        plain.append(StaggeredDiD(**spec).fit(frame).estimate)
    assert abs(np.mean(weighted) - truth) < 0.02
    assert 0.91 <= np.mean(covered) <= 0.99
    assert np.mean(plain) == pytest.approx(1.6, abs=0.03)


def test_matching_weights_flow_through_every_estimator():
    """cpdimpact.comparison's school weights, attached to school-year and pupil rows (unmatched
    schools kept with weight 0), are accepted by StaggeredDiD, MultilevelDiD and ClusterTrial-
    style models; the zero-weight schools are excluded and counted."""
    from cpdimpact.cohort import CohortSpec
    from cpdimpact.comparison import NearestMatching
    from cpdimpact.datasets import city_partnership
    from cpdimpact.multilevel import MultilevelDiD

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cohort = CohortSpec(covariates=("prior",)).build(city_partnership(seed=4, scale=0.2))
    uy = cohort.unit_years
    first_year = uy["year"].min()
    schools = (
        uy[uy["year"] == first_year][["unit", "treated", "outcome", "fsm"]]
        .rename(columns={"outcome": "baseline"})
        .assign(treated=lambda d: d["treated"].astype(bool))
    )
    matched = NearestMatching(covariates=["baseline", "fsm"], unit="unit", replace=True).fit(
        schools
    )
    years = matched.attach(uy, unmatched="keep")
    zero_units = years.loc[years["weight"] == 0, "unit"].nunique()
    assert zero_units > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = StaggeredDiD(weights="weight", n_bootstrap=0).fit(years)
        dropped = StaggeredDiD(weights="weight", n_bootstrap=0).fit(years[years["weight"] > 0])
    assert fit.n_units == uy["unit"].nunique() - zero_units
    assert any("zero weight" in note for note in fit.notes)
    assert fit.estimate == pytest.approx(dropped.estimate, rel=1e-10)
    pupils = matched.attach(cohort.pupils, unmatched="keep")
    ml = MultilevelDiD(covariates=("prior",), weights="weight").fit(pupils)
    assert ml.n_obs == int((pupils["weight"] > 0).sum())
    assert any("zero weight" in note for note in ml.notes)


def test_weighted_fits_say_so(weighted_inputs):
    from cpdimpact.multilevel import MultilevelModel

    spec = StaggeredDiD(
        outcome="y", unit="unit", time="year", first_treated="cohort", weights="w", n_bootstrap=0
    )
    assert "weighted by w (sampling weights)" in spec.describe()
    assert "sampling weights, as R did" in str(spec.fit(weighted_inputs["panel"]).summary())
    assert "weighted" not in replace(spec, weights=None).describe()
    fit = MultilevelModel(
        outcome="y", covariates=("prior",), groups=("school", "teacher"), weights="w"
    ).fit(_three_level())
    assert any("prior weights 'w'" in note for note in fit.notes)
