"""Behaviour of the survival estimators: hand-computed values, options, bad input.

Parity with R survival, lifelines and statsmodels is in ``test_survival_parity.py``; bias and
coverage with known truth in ``test_survival_simulation.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cpdimpact.errors import (
    CpdImpactError,
    DurationError,
    EventCodingError,
    InvalidArgumentError,
    InvalidValueError,
    MissingColumnError,
    SeparationError,
    SingleArmError,
)
from cpdimpact.survival import CoxModel, DiscreteTimeHazard, KaplanMeier, person_periods

ESTIMATORS = [KaplanMeier, CoxModel, DiscreteTimeHazard]


def _spells(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Spells with user row labels 101, 102, ... so that messages can be checked."""
    rng = np.random.default_rng(seed)
    treated = np.arange(n) % 2
    years = rng.geometric(np.where(treated == 1, 0.2, 0.3))
    return pd.DataFrame(
        {
            "years": np.minimum(years, 4),
            "left": (years <= 4).astype(int),
            "cpd": treated,
            "school": rng.integers(0, 12, n),
            "experience": rng.integers(0, 20, n),
        },
        index=pd.RangeIndex(101, 101 + n),
    )


def _spec(cls, **options):
    return cls(duration="years", event="left", treatment="cpd", **options)


# ------------------------------------------------------------------ hand-computed values
def test_kaplan_meier_by_hand():
    # comparison: times 1, 1+, 2, 3+ ; treated: 2, 3, 3+
    data = pd.DataFrame(
        {
            "years": [1, 1, 2, 3, 2, 3, 3],
            "left": [1, 0, 1, 0, 1, 1, 0],
            "cpd": [0, 0, 0, 0, 1, 1, 1],
        }
    )
    res = _spec(KaplanMeier, horizons=(1, 2, 3)).fit(data)
    comparison = res.retention.query("arm == 'comparison'")["survival"].to_numpy()
    treated = res.retention.query("arm == 'treated'")["survival"].to_numpy()
    # comparison: at 1, 4 at risk, 1 leaves -> 3/4; at 2, 2 at risk, 1 leaves -> 3/8
    np.testing.assert_allclose(comparison, [0.75, 0.375, 0.375])
    # treated: at 2, 3 at risk, 1 leaves -> 2/3; at 3, 2 at risk, 1 leaves -> 1/3
    np.testing.assert_allclose(treated, [1.0, 2 / 3, 1 / 3])
    np.testing.assert_allclose(res.differences["estimate"], [0.25, 2 / 3 - 0.375, 1 / 3 - 0.375])
    # Greenwood: var log S(2) of the comparison = 1/(4*3) + 1/(2*1)
    se = res.retention.query("arm == 'comparison'")["std_error"].to_numpy()
    assert se[1] == pytest.approx(np.sqrt(1 / 12 + 1 / 2))
    # difference at 2: Var = S1^2 var1 + S0^2 var0, the arms independent
    var1 = (2 / 3) ** 2 * (1 / (3 * 2))
    var0 = 0.375**2 * (1 / 12 + 1 / 2)
    assert res.differences["std_error"].iloc[1] == pytest.approx(np.sqrt(var1 + var0))


def test_person_periods_expand_and_keep_labels():
    data = pd.DataFrame({"years": [3, 1], "left": [1, 0], "x": ["a", "b"]}, index=[7, 9])
    out = person_periods(data, duration="years", event="left", left="gone")
    assert out.index.tolist() == [7, 7, 7, 9]
    assert out["period"].tolist() == [1, 2, 3, 1]
    assert out["gone"].tolist() == [0, 0, 1, 0]
    assert list(data.columns) == ["years", "left", "x"]  # not modified
    with pytest.raises(InvalidArgumentError, match="already have a column 'x'"):
        person_periods(data, duration="years", event="left", left="x")


def test_discrete_time_leaving_difference_by_hand():
    # without covariates every participant has the same hazards, so the implied difference in
    # leaving within k is F_k(1) - F_k(0) computed from the coefficients by hand
    data = _spells(400, seed=3)
    res = _spec(DiscreteTimeHazard, horizons=(1, 2)).fit(data)
    a = res.params[["period 1", "period 2"]].to_numpy()
    b = res.params["cpd"]
    expit = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    f1 = 1 - np.cumprod(1 - expit(a + b))
    f0 = 1 - np.cumprod(1 - expit(a))
    np.testing.assert_allclose(res.differences["estimate"], f1 - f0, rtol=1e-12)


def test_cox_single_binary_covariate_score_test_sign():
    data = _spells(600, seed=5)
    res = _spec(CoxModel).fit(data)
    # participants (hazard 0.2 per year) leave less than comparison teachers (0.3)
    assert res.hazard_ratio < 1
    assert res.hazard_ratios()["hazard_ratio"].iloc[0] == pytest.approx(res.hazard_ratio)
    assert res.variance == "model" and res.cluster is None


# ------------------------------------------------------------------ contract behaviour
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_fit_never_modifies_data_and_excludes_zero_weights_with_a_note(cls):
    data = _spells()
    data["w"] = 1.0
    data.loc[[103, 150], "w"] = 0.0
    before = data.copy(deep=True)
    res = _spec(cls, weights="w", cluster="school").fit(data)
    pd.testing.assert_frame_equal(data, before)
    assert any("2 rows with zero weight in 'w'" in n and "103" in n for n in res.notes)
    summary = str(res.summary())
    assert "w" in summary


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_whole_number_weights_are_counts(cls):
    """Weights of 2 give the estimate of the data with those rows written twice.

    For Cox with Breslow ties: Efron's weighted form (coxph's, which the parity tests check)
    uses the mean weight of the tied leavers, so doubling a row is not the same as weight 2.
    """
    data = _spells(200, seed=2)
    data["w"] = np.where(np.arange(200) % 3 == 0, 2.0, 1.0)
    doubled = pd.concat([data, data[data["w"] == 2]], ignore_index=True)
    options = {"ties": "breslow"} if cls is CoxModel else {}
    a = _spec(cls, **options).fit(doubled).to_frame()
    b = _spec(cls, weights="w", **options).fit(data).to_frame()
    np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(a["std_error"], b["std_error"], rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.1, 0.01])
def test_alpha_sets_the_level(alpha):
    data = _spells()
    res = _spec(CoxModel, alpha=alpha).fit(data)
    lower, upper = res.hazard_ratio_ci
    frame = res.hazard_ratios()
    assert frame["ci_lower"].iloc[0] == pytest.approx(lower)
    assert frame["ci_upper"].iloc[0] == pytest.approx(upper)
    wide = res.conf_int(alpha=alpha / 2).iloc[0]
    assert wide["ci_lower"] < np.log(lower) and wide["ci_upper"] > np.log(upper)


def test_options_are_checked_when_the_spec_is_made():
    with pytest.raises(InvalidArgumentError, match="conf_type"):
        KaplanMeier(conf_type="arcsin")
    with pytest.raises(InvalidArgumentError, match="ties"):
        CoxModel(ties="exact")
    with pytest.raises(InvalidArgumentError, match="horizons"):
        KaplanMeier(horizons=(2, 1))
    with pytest.raises(InvalidArgumentError, match="whole periods"):
        DiscreteTimeHazard(horizons=(1.5,))
    with pytest.raises(InvalidArgumentError, match="also listed in covariates"):
        CoxModel(treatment="cpd", covariates=("cpd",))
    with pytest.raises(InvalidArgumentError, match="pool_from"):
        DiscreteTimeHazard(pool_from=1)


def test_horizon_beyond_follow_up_is_noted_not_invented():
    data = _spells()
    res = _spec(KaplanMeier, horizons=(1, 10)).fit(data)
    assert np.isnan(res.differences["estimate"].iloc[1])
    assert any("beyond 4 years" in n for n in res.notes)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("bad", [0, -2])
def test_zero_or_negative_duration(cls, bad):
    data = _spells()
    data.loc[104, "years"] = bad
    with pytest.raises(DurationError) as info:
        _spec(cls).fit(data)
    message = str(info.value)
    assert "'years'" in message and "row 104" in message and "positive" in message
    assert "duration 1" in message  # the fix


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("bad", [2, "Y"])
def test_event_not_zero_one(cls, bad):
    data = _spells()
    data["left"] = data["left"].astype(object)
    data.loc[[106, 140], "left"] = bad
    with pytest.raises(EventCodingError) as info:
        _spec(cls).fit(data)
    message = str(info.value)
    assert "'left'" in message and "rows 106, 140" in message and repr(bad) in message
    assert "Code 1 for a teacher who left" in message


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_missing_cluster(cls):
    data = _spells()
    data["school"] = data["school"].astype(float)
    data.loc[111, "school"] = np.nan
    with pytest.raises(InvalidValueError) as info:
        _spec(cls, cluster="school").fit(data)
    message = str(info.value)
    assert "'school'" in message and "row 111" in message and "Give every teacher" in message


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_single_arm(cls):
    data = _spells()
    data["cpd"] = 1
    with pytest.raises(SingleArmError) as info:
        _spec(cls).fit(data)
    message = str(info.value)
    assert "'cpd'" in message and "participants" in message and "comparison" in message
    assert isinstance(info.value, CpdImpactError)


def test_single_arm_after_zero_weights_names_the_weights():
    data = _spells()
    data["w"] = np.where(data["cpd"] == 0, 0.0, 1.0)
    with pytest.raises(SingleArmError, match="weights in 'w'"):
        _spec(KaplanMeier, weights="w").fit(data)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_missing_column_names_the_option(cls):
    with pytest.raises(MissingColumnError, match="Pass cluster="):
        _spec(cls, cluster="urn").fit(_spells())


def test_fractional_duration_in_discrete_time():
    data = _spells()
    data["years"] = data["years"].astype(float)
    data.loc[120, "years"] = 1.5
    with pytest.raises(DurationError, match=r"whole periods.*row 120"):
        _spec(DiscreteTimeHazard).fit(data)


def test_period_without_leavers_asks_to_pool():
    data = _spells()
    data.loc[data["years"] == 4, "left"] = 0
    with pytest.raises(SeparationError, match=r"period 4 nobody.*pool_from=4"):
        _spec(DiscreteTimeHazard).fit(data)
    res = _spec(DiscreteTimeHazard, pool_from=3).fit(data)
    assert "period 3+" in res.params.index


def test_one_cluster_is_refused():
    data = _spells()
    data["school"] = 5
    with pytest.raises(InvalidValueError, match="holds one value"):
        _spec(CoxModel, cluster="school").fit(data)


def test_treatment_not_zero_one():
    data = _spells()
    data.loc[102, "cpd"] = 3
    with pytest.raises(InvalidValueError, match=r"'cpd'.*row 102"):
        _spec(KaplanMeier).fit(data)


def test_plot_draws(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    ax = _spec(KaplanMeier, cluster="school").fit(_spells()).plot()
    assert len(ax.get_lines()) >= 2


@pytest.mark.parametrize("cls", [CoxModel, DiscreteTimeHazard], ids=lambda c: c.__name__)
def test_an_arm_without_leavers_is_refused_not_fitted_to_infinity(cls):
    data = _spells()
    data.loc[data["cpd"] == 1, "left"] = 0
    with pytest.raises(SeparationError, match=r"no participant \(column 'cpd' = 1\) leaves"):
        _spec(cls).fit(data)
    _spec(KaplanMeier).fit(data)  # the retention difference is still defined


def test_entropy_balancing_weights_of_teachers_are_case_weights():
    """Weights fitted on a table of teachers attach to their spells and feed every estimator."""
    from cpdimpact.comparison import EntropyBalancing

    data = _spells(300, seed=9).assign(teacher=lambda f: [f"t{i}" for i in f.index])
    teachers = data[["teacher", "cpd", "experience"]]
    weights = EntropyBalancing(covariates=("experience",), treatment="cpd", unit="teacher")
    weighted = weights.fit(teachers).attach(data, unit="teacher")
    treated = weighted["cpd"] == 1
    means = [
        np.average(weighted.loc[arm, "experience"], weights=weighted.loc[arm, "weight"])
        for arm in (treated, ~treated)
    ]
    assert means[0] == pytest.approx(means[1], abs=1e-6)  # balanced on experience
    for cls in ESTIMATORS:
        res = _spec(cls, weights="weight", cluster="school").fit(weighted)
        assert np.isfinite(res.estimate) and res.weights == "weight"
