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
    }


def _spec_for(key: str, **options) -> tuple[StaggeredDiD, str]:
    parts = key.split("_")
    base = dict(outcome="y", time="year", first_treated="cohort", weights="w", n_bootstrap=0)
    if key.startswith("panel"):
        tag, method, control = parts[1], parts[2], parts[3]
        controls = {"nevertreated": "never_treated", "notyettreated": "not_yet_treated"}
        base.update(unit="unit", control_group=controls[control])
        data = "panel"
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
