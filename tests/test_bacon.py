"""Goodman-Bacon decomposition: the exact identity, a reference implementation, bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib.axes
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpdimpact.did import DiD
from cpdimpact.did.bacon import (
    COMPARISON_TYPES,
    BaconDecomposition,
    bacon_decomposition,
)
from cpdimpact.errors import (
    CpdImpactError,
    CpdImpactWarning,
    DesignError,
    DuplicateRowsError,
    EmptyComparisonGroupError,
    InvalidValueError,
    MissingColumnError,
)

REFERENCE = Path(__file__).parent / "reference" / "bacon"
NEVER, EARLY_LATE, LATE_EARLY, ALWAYS = COMPARISON_TYPES


def simulate(
    seed, cohorts, sizes, n_never=0, n_always=0, years=(2014, 2023), growth=0.4, noise=1.0
):
    """Balanced panel; effects that grow with time since treatment (cohort-specific)."""
    rng = np.random.default_rng(seed)
    first = np.concatenate(
        [np.repeat(cohorts, sizes), np.zeros(n_never, int), np.full(n_always, years[0] - 1)]
    ).astype(int)
    rows = []
    for u, g in enumerate(first):
        alpha = rng.normal(0, 2)
        for t in range(years[0], years[1] + 1):
            treated = g > 0 and t >= g
            effect = (1.0 + growth * (t - g) * (1 + (g % 2))) if treated else 0.0
            y = 100 + alpha + 0.3 * (t - years[0]) + effect + noise * rng.normal()
            rows.append((f"s{u:03d}", t, g, y))
    return pd.DataFrame(rows, columns=["unit", "year", "first_treated", "outcome"])


def twfe_lstsq(df):
    """TWFE coefficient by least squares on explicit unit and year dummies."""
    d = ((df["first_treated"] > 0) & (df["year"] >= df["first_treated"])).to_numpy(float)
    units = pd.get_dummies(df["unit"], dtype=float).to_numpy()
    years = pd.get_dummies(df["year"], dtype=float).to_numpy()[:, 1:]
    x = np.column_stack([d, units, years])
    coef, *_ = np.linalg.lstsq(x, df["outcome"].to_numpy(float), rcond=None)
    return coef[0]


def twfe_did(df):
    """TWFE coefficient from cpdimpact.did.DiD (linearmodels AbsorbingLS)."""
    df = df.assign(exposed=((df["first_treated"] > 0) & (df["year"] >= df["first_treated"])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return DiD(cluster="unit").fit(df).estimate


def decompose(df, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        return bacon_decomposition(df, **kwargs)


DESIGNS = [
    # cohorts, sizes, never-treated, always-treated
    ([2016, 2019], [5, 9], 7, 0),
    ([2016, 2019], [3, 12], 0, 0),
    ([2016, 2018, 2021], [3, 8, 4], 0, 0),
    ([2016, 2018, 2021], [2, 7, 5], 10, 0),
    ([2015, 2017, 2019, 2022], [2, 5, 3, 6], 4, 0),
    ([2015, 2016, 2020, 2023], [9, 1, 4, 3], 0, 0),
    ([2017, 2020], [4, 6], 3, 5),
    ([2017, 2019, 2021], [5, 2, 6], 0, 3),
]


# ---------------------------------------------------------------- the exact identity
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("cohorts", "sizes", "n_never", "n_always"), DESIGNS)
def test_weights_sum_to_one_and_reproduce_twfe(seed, cohorts, sizes, n_never, n_always):
    df = simulate(seed, cohorts, sizes, n_never, n_always)
    dec = decompose(df)
    table = dec.table
    assert abs(table["weight"].sum() - 1) < 1e-12
    assert (table["weight"] >= 0).all()
    assert abs(dec.decomposed_estimate - dec.twfe_estimate) < 1e-10
    assert abs(dec.twfe_estimate - twfe_lstsq(df)) < 1e-9
    assert abs(dec.twfe_estimate - twfe_did(df)) < 1e-9
    # number of comparisons: each cohort vs each untreated group, each pair twice
    k = len(cohorts)
    n_control_groups = (n_never > 0) + (n_always > 0)
    assert len(table) == k * n_control_groups + k * (k - 1)
    by_type = dec.by_type
    assert abs(by_type["weight"].sum() - 1) < 1e-12
    assert abs(by_type["contribution"].sum() - dec.twfe_estimate) < 1e-10
    forbidden = table.loc[table["type"].isin([LATE_EARLY, ALWAYS]), "weight"].sum()
    assert dec.forbidden_weight_share == pytest.approx(forbidden, abs=1e-15)


def test_one_cohort_and_never_treated_is_one_2x2_of_weight_one():
    df = simulate(3, [2018], [6], n_never=5)
    dec = decompose(df)
    table = dec.table
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["treated_group"], row["control_group"], row["type"]) == (2018, "never", NEVER)
    assert row["weight"] == pytest.approx(1, abs=1e-12)
    means = df.assign(
        group=np.where(df["first_treated"] > 0, "T", "C"), post=df["year"] >= 2018
    ).pivot_table(index="group", columns="post", values="outcome", aggfunc="mean")
    four_means = (means.loc["T", True] - means.loc["T", False]) - (
        means.loc["C", True] - means.loc["C", False]
    )
    assert row["estimate"] == pytest.approx(four_means, abs=1e-10)
    assert dec.twfe_estimate == pytest.approx(four_means, abs=1e-10)
    assert dec.forbidden_weight_share == 0


def test_constant_effect_makes_every_2x2_equal_to_it():
    df = simulate(4, [2016, 2018, 2021], [3, 5, 4], n_never=3, n_always=2, growth=0, noise=0)
    dec = decompose(df)
    np.testing.assert_allclose(dec.table["estimate"], 1.0, atol=1e-10)
    assert dec.twfe_estimate == pytest.approx(1.0, abs=1e-10)


def test_growing_effects_push_forbidden_comparisons_down():
    df = simulate(5, [2016, 2020], [8, 8], n_never=0, growth=1.0, noise=0)
    dec = decompose(df)
    by_type = dec.by_type
    # clean comparison: early cohort vs the later one before it starts, positive effects
    assert by_type.loc[EARLY_LATE, "estimate"] > 1
    # forbidden: the already-treated early cohort's growing effect is subtracted
    assert by_type.loc[LATE_EARLY, "estimate"] < 0
    assert dec.twfe_estimate < by_type.loc[EARLY_LATE, "estimate"]


def test_weights_match_the_closed_form_for_two_equal_cohorts():
    # T = 10 periods, cohorts start at index 3 and 7 (Dbar = 0.7, 0.3), no untreated group:
    # numerators n_k n_l (Dk - Dl)(1 - Dk) and n_k n_l Dl (Dk - Dl), shares 1/2 each.
    df = simulate(6, [2017, 2021], [4, 4])
    table = decompose(df).table.set_index("type")
    early, late = 0.25 * 0.4 * 0.3, 0.25 * 0.3 * 0.4
    assert table.loc[EARLY_LATE, "weight"] == pytest.approx(early / (early + late))
    assert table.loc[LATE_EARLY, "weight"] == pytest.approx(late / (early + late))
    row = decompose(df).table.set_index("type").loc[EARLY_LATE]
    assert (row["window_start"], row["window_end"]) == (2014, 2020)
    row = decompose(df).table.set_index("type").loc[LATE_EARLY]
    assert (row["window_start"], row["window_end"]) == (2017, 2023)


# ---------------------------------------------------------------- property test
@st.composite
def panels(draw):
    n_periods = draw(st.integers(2, 6))
    n_units = draw(st.integers(2, 9))
    periods = list(range(2000, 2000 + n_periods))
    choices = [0, 1999, *periods, 2000 + n_periods]  # never, always, cohorts, after the end
    first = draw(st.lists(st.sampled_from(choices), min_size=n_units, max_size=n_units))
    values = draw(
        st.lists(
            st.floats(-50, 50, allow_nan=False, allow_subnormal=False),
            min_size=n_units * n_periods,
            max_size=n_units * n_periods,
        )
    )
    rows = [
        (u, t, first[u], values[u * n_periods + i])
        for u in range(n_units)
        for i, t in enumerate(periods)
    ]
    df = pd.DataFrame(rows, columns=["unit", "year", "first_treated", "outcome"])
    order = draw(st.permutations(range(len(df))))
    return df.iloc[list(order)].reset_index(drop=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(panels(), st.sampled_from(["control", "drop"]))
def test_property_exact_identity(df, always_treated):
    before = df.copy()
    try:
        dec = decompose(df, always_treated=always_treated)
    except DesignError:
        # no switch inside the panel, or a single timing group without comparisons: then
        # the treatment has no variation left after the fixed effects
        used = df
        if always_treated == "drop":
            used = df[~((df["first_treated"] > 0) & (df["first_treated"] <= 2000))]
        d = ((used["first_treated"] > 0) & (used["year"] >= used["first_treated"])).astype(float)
        if len(used):
            frame = used.assign(d=d)
            resid = (
                frame["d"]
                - frame.groupby("unit")["d"].transform("mean")
                - frame.groupby("year")["d"].transform("mean")
                + frame["d"].mean()
            )
            assert np.abs(resid).max() < 1e-12
        return
    pd.testing.assert_frame_equal(df, before)
    scale = max(1.0, float(np.abs(df["outcome"]).max()))
    assert abs(dec.table["weight"].sum() - 1) < 1e-12
    assert abs(dec.decomposed_estimate - dec.twfe_estimate) < 1e-10 * scale
    used = df
    if always_treated == "drop":
        used = df[~((df["first_treated"] > 0) & (df["first_treated"] <= 2000))]
    assert abs(dec.twfe_estimate - twfe_lstsq(used)) < 1e-8 * scale


def test_row_order_does_not_matter():
    df = simulate(7, [2016, 2019, 2021], [3, 4, 5], n_never=2)
    shuffled = df.sample(frac=1, random_state=1)
    a, b = decompose(df).table, decompose(shuffled).table
    pd.testing.assert_frame_equal(a, b, check_exact=False, atol=1e-12, rtol=0)


# ---------------------------------------------------------------- reference implementation
def test_matches_pybacondecomp_with_earlier_later_detail():
    panel = pd.read_csv(REFERENCE / "panel_never.csv")
    ref = pd.read_csv(REFERENCE / "pybacondecomp_never.csv", dtype={"control": str})
    twfe = pd.read_csv(REFERENCE / "pybacondecomp_twfe.csv").set_index("panel")["twfe"]
    dec = decompose(panel)
    assert dec.twfe_estimate == pytest.approx(twfe["never"], abs=1e-10)
    types = {"Never vs timing": NEVER, "Early vs Late": EARLY_LATE, "Late vs Early": LATE_EARLY}
    ours = dec.table.assign(control_group=dec.table["control_group"].astype(str))
    ours = ours.set_index(["treated_group", "control_group", "type"])
    assert len(ours) == len(ref)
    for row in ref.itertuples():
        control = "never" if row.control == "Never" else row.control
        mine = ours.loc[(row.treated, control, types[row.type])]
        assert mine["estimate"] == pytest.approx(row.estimate, abs=1e-10)
        assert mine["weight"] == pytest.approx(row.weight, abs=1e-12)


def test_matches_pybacondecomp_with_always_treated_units():
    panel = pd.read_csv(REFERENCE / "panel_always.csv")
    ref = pd.read_csv(REFERENCE / "pybacondecomp_always.csv", dtype={"control": str})
    twfe = pd.read_csv(REFERENCE / "pybacondecomp_twfe.csv").set_index("panel")["twfe"]
    with pytest.warns(CpdImpactWarning, match="4 units are treated in every period"):
        dec = bacon_decomposition(panel)
    assert dec.twfe_estimate == pytest.approx(twfe["always"], abs=1e-10)
    table = dec.table
    for row in ref.itertuples():
        if row.type == "Timing groups":  # both directions pooled
            pair = table[
                table["treated_group"].isin([row.treated, int(row.control)])
                & table["control_group"].astype(str).isin([str(row.treated), row.control])
            ]
            assert len(pair) == 2
            weight = pair["weight"].sum()
            estimate = (pair["weight"] * pair["estimate"]).sum() / weight
        else:
            control = row.control.lower()
            mine = table[
                (table["treated_group"] == row.treated) & (table["control_group"] == control)
            ]
            assert len(mine) == 1
            weight, estimate = mine["weight"].iloc[0], mine["estimate"].iloc[0]
            assert mine["type"].iloc[0] == (NEVER if control == "never" else ALWAYS)
        assert estimate == pytest.approx(row.estimate, abs=1e-10)
        assert weight == pytest.approx(row.weight, abs=1e-12)


# ---------------------------------------------------------------- always treated, edge groups
def test_always_treated_dropped_and_counted():
    df = simulate(8, [2017, 2020], [4, 6], n_never=3, n_always=5)
    with pytest.warns(CpdImpactWarning, match="5 units treated in every period"):
        dec = bacon_decomposition(df, always_treated="drop")
    assert dec.n_dropped_always_treated == 5 and dec.n_always_treated == 0
    assert dec.n_units == 13
    assert ALWAYS not in set(dec.table["type"])
    kept = df[df["first_treated"] != 2013]
    assert dec.twfe_estimate == pytest.approx(twfe_did(kept), abs=1e-9)
    assert abs(dec.identity_error) < 1e-10
    assert any("dropped" in n for n in dec.notes)


def test_always_treated_kept_as_forbidden_controls():
    df = simulate(8, [2017, 2020], [4, 6], n_never=0, n_always=5)
    dec = decompose(df)
    assert dec.n_always_treated == 5
    always = dec.table[dec.table["control_group"] == "always"]
    assert len(always) == 2 and set(always["type"]) == {ALWAYS}
    assert dec.twfe_estimate == pytest.approx(twfe_did(df), abs=1e-9)
    expected = dec.table.loc[dec.table["type"].isin([LATE_EARLY, ALWAYS]), "weight"].sum()
    assert dec.forbidden_weight_share == pytest.approx(expected)


def test_missing_first_treated_and_late_cohorts_count_as_never_treated():
    df = simulate(9, [2016, 2019, 2030], [3, 4, 2], n_never=2)
    df["first_treated"] = df["first_treated"].astype(float)
    df.loc[df["first_treated"] == 0, "first_treated"] = np.nan
    dec = decompose(df)
    assert dec.n_never_treated == 4
    assert set(dec.cohort_sizes) == {2016, 2019}
    assert any("after the last period" in n for n in dec.notes)
    assert abs(dec.identity_error) < 1e-10
    filled = df.fillna({"first_treated": 0}).assign(
        first_treated=lambda d: d["first_treated"].where(d["first_treated"] != 2030, 0)
    )
    assert dec.twfe_estimate == pytest.approx(twfe_lstsq(filled), abs=1e-9)


def test_gaps_in_periods_group_starts_by_first_treated_period():
    df = simulate(10, [2016, 2017, 2020], [3, 3, 3], n_never=3)
    df = df[df["year"] != 2016]  # 2016 starters are first seen treated in 2017
    dec = decompose(df)
    assert dec.cohort_sizes == {2017: 6, 2020: 3}
    assert any("between observed periods" in n for n in dec.notes)
    assert abs(dec.identity_error) < 1e-10
    assert dec.twfe_estimate == pytest.approx(twfe_lstsq(df), abs=1e-9)


# ---------------------------------------------------------------- faces
def test_result_faces():
    df = simulate(11, [2016, 2019], [5, 9], n_never=7)
    before = df.copy()
    dec = decompose(df)
    pd.testing.assert_frame_equal(df, before)
    assert isinstance(dec, BaconDecomposition)
    assert list(dec.table.columns[:5]) == [
        "treated_group",
        "control_group",
        "type",
        "estimate",
        "weight",
    ]
    pd.testing.assert_frame_equal(dec.to_frame(), dec.table)
    copy = dec.table
    copy.loc[0, "weight"] = 99.0  # a copy: the result does not change
    assert dec.table.loc[0, "weight"] < 1
    text = str(dec.summary())
    assert "TWFE estimate" in text and "forbidden weight share" in text
    assert NEVER in text
    assert "<table>" in dec._repr_html_()
    assert "BaconDecomposition(" in repr(dec)
    ax = dec.plot()
    assert isinstance(ax, matplotlib.axes.Axes)
    assert len(ax.collections) == 3  # one scatter per type present
    with pytest.raises(NotImplementedError, match="no confidence intervals"):
        dec.conf_int()
    assert list(dec.by_type.columns) == ["n_comparisons", "weight", "estimate", "contribution"]


def test_plot_on_given_axes():
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    dec = decompose(simulate(12, [2016, 2019], [5, 9], n_never=7))
    assert dec.plot(ax=ax) is ax
    plt.close("all")


# ---------------------------------------------------------------- bad input
def test_unbalanced_panel_is_refused():
    df = simulate(13, [2016, 2019], [5, 9], n_never=7)
    df = df.drop(index=[3, 25])
    with pytest.raises(InvalidValueError, match="needs a balanced panel") as info:
        bacon_decomposition(df)
    assert "s000" in str(info.value) and "s002" in str(info.value)


def test_non_absorbing_treatment_is_refused():
    df = simulate(14, [2016, 2019], [5, 9], n_never=7)
    df.loc[(df["unit"] == "s001") & (df["year"] > 2018), "first_treated"] = 0
    with pytest.raises(InvalidValueError, match="absorbing") as info:
        bacon_decomposition(df)
    assert "s001" in str(info.value)


def test_duplicate_rows_are_refused():
    df = simulate(15, [2016, 2019], [5, 9], n_never=7)
    df = pd.concat([df, df.iloc[[0]]])
    with pytest.raises(DuplicateRowsError, match="one row per unit and period"):
        bacon_decomposition(df)


def test_covariates_are_not_supported():
    df = simulate(16, [2016, 2019], [5, 9], n_never=7)
    with pytest.raises(CpdImpactError, match="covariates are not supported"):
        bacon_decomposition(df, covariates=["fsm"])


def test_missing_column_and_missing_outcome():
    df = simulate(17, [2016, 2019], [5, 9], n_never=7)
    with pytest.raises(MissingColumnError, match="first_treated='<name>'"):
        bacon_decomposition(df.drop(columns="first_treated"))
    df.loc[4, "outcome"] = np.nan
    with pytest.raises(InvalidValueError, match="missing values"):
        bacon_decomposition(df)


def test_designs_without_a_decomposition():
    never_switch = simulate(18, [2030], [4], n_never=3)
    with pytest.raises(DesignError, match="no unit switches"):
        decompose(never_switch)
    one_cohort = simulate(19, [2018], [6])
    with pytest.raises(EmptyComparisonGroupError, match="collinear"):
        decompose(one_cohort)
    with pytest.raises(ValueError, match="always_treated"):
        bacon_decomposition(one_cohort, always_treated="keep")
    with pytest.raises(InvalidValueError, match="negative"):
        bacon_decomposition(one_cohort.assign(first_treated=-1))
