"""Tests of cpdimpact.effects: Hedges' g, EffectSize faces and EEF months of progress."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

import matplotlib
import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy import stats

from cpdimpact._results import TIDY_COLUMNS
from cpdimpact.effects import (
    EEF_MONTHS,
    EffectSize,
    hedges_correction,
    hedges_g,
    hedges_g_from_summary,
    months_band,
    months_of_progress,
)
from cpdimpact.errors import InvalidValueError

matplotlib.use("Agg")

Z975 = 1.959963984540054  # standard normal 0.975 quantile


def round_half_up(x: float) -> float:
    """The test's own two-decimal rounding, independent of the code under test."""
    return float(Decimal(repr(float(x))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


# --- Hedges' g: known values computed by hand ----------------------------------------------


def test_wwc_check_treatment_567_control_456():
    # Means 6 and 5, SDs 1 and 1, N = 6: d = 1, omega = 1 - 3/(24 - 9) = 0.8 (WWC handbook).
    t, c = np.array([5.0, 6.0, 7.0]), np.array([4.0, 5.0, 6.0])
    es = hedges_g_from_summary(
        mean_treatment=t.mean(),
        sd_treatment=t.std(ddof=1),
        n_treatment=3,
        mean_control=c.mean(),
        sd_control=c.std(ddof=1),
        n_control=3,
    )
    assert es.estimate == pytest.approx(0.8, abs=1e-12)
    assert es.correction == pytest.approx(0.8, abs=1e-12)
    assert es.sd == pytest.approx(1.0)
    assert es.n == 6
    # V(g) = J^2 (N / (n_t n_c) + d^2 / (2N)) = 0.64 * (6/9 + 1/12)
    assert es.std_error == pytest.approx(math.sqrt(0.64 * (6 / 9 + 1 / 12)), rel=1e-12)
    assert es.df is None


def test_hedges_g_normal_interval_by_hand():
    j = 1 - 3 / (4 * 100 - 9)
    es = hedges_g(2.0, 0.5, 8.0, n=100)
    assert es.correction == pytest.approx(j, rel=1e-14)
    assert es.estimate == pytest.approx(j * 0.25, rel=1e-14)
    assert es.std_error == pytest.approx(j * 0.0625, rel=1e-14)
    assert es.ci_lower == pytest.approx(j * (2.0 - Z975 * 0.5) / 8.0, rel=1e-12)
    assert es.ci_upper == pytest.approx(j * (2.0 + Z975 * 0.5) / 8.0, rel=1e-12)


def test_hedges_g_t_interval_on_model_df():
    q = stats.t.ppf(0.975, 8)  # e.g. 9 hub areas -> 8 df
    es = hedges_g(1.5, 0.6, 6.5, df=8)
    assert es.correction == 1.0 and es.n is None
    assert es.estimate == pytest.approx(1.5 / 6.5, rel=1e-14)
    assert es.ci_lower == pytest.approx((1.5 - q * 0.6) / 6.5, rel=1e-12)
    assert es.ci_upper == pytest.approx((1.5 + q * 0.6) / 6.5, rel=1e-12)
    assert es.p_value == pytest.approx(2 * stats.t.sf(2.5, 8), rel=1e-10)


def test_conf_int_recomputed_for_new_alpha():
    es = hedges_g(1.0, 0.5, 5.0, df=12)
    ci = es.conf_int(0.10)
    q = stats.t.ppf(0.95, 12)
    assert list(ci.columns) == ["ci_lower", "ci_upper"]
    assert ci.index.tolist() == ["effect size"] and ci.index.name == "term"
    assert ci.loc["effect size", "ci_lower"] == pytest.approx(0.2 - q * 0.1, rel=1e-12)
    assert ci.loc["effect size", "ci_upper"] == pytest.approx(0.2 + q * 0.1, rel=1e-12)
    default = es.conf_int()
    assert default.loc["effect size", "ci_lower"] == pytest.approx(es.ci_lower)


def test_hedges_correction_values():
    assert hedges_correction(None) == 1.0
    assert hedges_correction(6) == pytest.approx(0.8)
    assert hedges_correction(1000) == pytest.approx(1 - 3 / 3991)
    assert hedges_correction(np.int64(10)) == pytest.approx(1 - 3 / 31)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sd": 0.0}, "sd must be a positive"),
        ({"sd": -1.0}, "sd must be a positive"),
        ({"sd": float("nan")}, "sd must be a positive"),
        ({"sd": float("inf")}, "sd must be a positive"),
        ({"std_error": -0.1}, "std_error must be finite and at least 0"),
        ({"std_error": float("nan")}, "std_error"),
        ({"estimate": float("nan")}, "estimate must be finite"),
        ({"n": 3}, "at least 4"),
        ({"n": 10.5}, "whole number"),
        ({"df": 0}, "df must be positive"),
        ({"alpha": 1.0}, "alpha"),
        ({"estimate": "1.0"}, "real number"),
    ],
)
def test_invalid_inputs_raise(kwargs, match):
    args = {"estimate": 1.0, "std_error": 0.5, "sd": 6.0} | kwargs
    with pytest.raises(InvalidValueError, match=match):
        hedges_g(args.pop("estimate"), args.pop("std_error"), args.pop("sd"), **args)


def test_zero_standard_error_is_allowed():
    es = hedges_g(1.0, 0.0, 5.0)
    assert es.ci_lower == es.ci_upper == pytest.approx(0.2)


# --- EffectSize faces ----------------------------------------------------------------------


def test_effect_size_is_frozen_and_faces_work():
    es = hedges_g(1.2, 0.4, 6.0, n=400, df=19, label="ATT")
    assert isinstance(es, EffectSize)
    with pytest.raises(AttributeError):
        es.estimate = 0.0  # type: ignore[misc]
    frame = es.to_frame()
    assert tuple(frame.columns) == TIDY_COLUMNS
    assert frame.loc[0, "term"] == "ATT"
    assert frame.loc[0, "estimate"] == pytest.approx(es.estimate)
    assert frame.loc[0, "statistic"] == pytest.approx(3.0)
    assert frame.loc[0, "ci_lower"] == pytest.approx(es.ci_lower)
    assert frame.loc[0, "ci_upper"] == pytest.approx(es.ci_upper)
    assert es.months == 3
    text = str(es.summary())
    assert "Months of progress" in text and "+3" in text and "SD as known" in text
    assert "<h4>" in es._repr_html_()
    assert es.to_dict()["months"] == 3


def test_plot_returns_axes():
    import matplotlib.pyplot as plt

    es = hedges_g(1.2, 0.4, 6.0, label="ATT")
    ax = es.plot()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["ATT"]
    fig, given_ax = plt.subplots()
    assert es.plot(ax=given_ax) is given_ax
    plt.close("all")


# --- months of progress --------------------------------------------------------------------

BOUNDARIES = [
    (0.00, 0),
    (0.01, 0),
    (0.02, 1),
    (0.09, 1),
    (0.10, 2),
    (0.18, 2),
    (0.19, 3),
    (0.26, 3),
    (0.27, 4),
    (0.35, 4),
    (0.36, 5),
    (0.44, 5),
    (0.45, 6),
    (0.52, 6),
    (0.53, 7),
    (0.61, 7),
    (0.62, 8),
    (0.69, 8),
    (0.70, 9),
    (0.78, 9),
    (0.79, 10),
    (0.87, 10),
    (0.88, 11),
    (0.95, 11),
    (0.96, 12),
    (1.00, 12),
    (2.00, 12),
    (float("inf"), 12),
]


@pytest.mark.parametrize(("es", "months"), BOUNDARIES)
def test_every_table_boundary_and_its_mirror(es, months):
    assert months_of_progress(es) == months
    assert months_of_progress(-es) == -months
    assert isinstance(months_of_progress(es), int)


@pytest.mark.parametrize(
    ("es", "months"),
    [
        (0.094, 1),
        (0.095, 2),  # rounds to 0.10 first
        (0.185, 3),  # binary 0.18499..., but printed 0.185 rounds half-up to 0.19
        (0.184999, 2),
        (0.015, 1),  # -> 0.02
        (0.0149, 0),
        (0.955, 12),
        (-0.095, -2),
        (-0.185, -3),
        (np.float64(0.185), 3),
    ],
)
def test_rounding_happens_first(es, months):
    assert months_of_progress(es) == months


def test_months_on_arrays_and_series():
    out = months_of_progress(np.array([0.01, 0.02, -0.5, 0.96]))
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [0, 1, -6, 12])
    with_nan = months_of_progress([0.1, float("nan"), None])
    assert with_nan.dtype == np.float64
    np.testing.assert_array_equal(with_nan, [2.0, np.nan, np.nan])
    series = pd.Series([0.19, np.nan, -0.3], index=["all", "fsm", "non-fsm"], name="g")
    months = months_of_progress(series)
    assert str(months.dtype) == "Int64"
    assert months.name == "g" and months.index.tolist() == ["all", "fsm", "non-fsm"]
    assert months.iloc[0] == 3 and months.iloc[2] == -4 and months.isna().iloc[1]
    assert months_of_progress(float("nan")) is pd.NA
    assert months_of_progress(None) is pd.NA
    np.testing.assert_array_equal(months_of_progress(np.array([[0.1], [0.2]])), [[2], [3]])


def test_months_rejects_non_numeric():
    with pytest.raises(InvalidValueError, match="numeric"):
        months_of_progress("0.2")
    with pytest.raises(InvalidValueError, match="numeric"):
        months_of_progress(True)


def test_months_band_values():
    assert months_band(0) == (-0.01, 0.01)
    assert months_band(1) == (0.02, 0.09)
    assert months_band(3) == (0.19, 0.26)
    assert months_band(11) == (0.88, 0.95)
    assert months_band(12) == (0.96, math.inf)
    assert months_band(-12) == (-math.inf, -0.96)
    assert months_band(-3) == (-0.26, -0.19)
    for bad in (13, -13, 2.5, "3", True):
        with pytest.raises(InvalidValueError):
            months_band(bad)


def test_eef_table_frame():
    assert list(EEF_MONTHS.columns) == ["months", "es_low", "es_high"]
    assert EEF_MONTHS["months"].tolist() == list(range(13))
    assert EEF_MONTHS["es_low"].tolist() == [
        -0.01,
        0.02,
        0.10,
        0.19,
        0.27,
        0.36,
        0.45,
        0.53,
        0.62,
        0.70,
        0.79,
        0.88,
        0.96,
    ]
    assert EEF_MONTHS["es_high"].tolist()[:-1] == [
        0.01,
        0.09,
        0.18,
        0.26,
        0.35,
        0.44,
        0.52,
        0.61,
        0.69,
        0.78,
        0.87,
        0.95,
    ]
    assert math.isinf(EEF_MONTHS["es_high"].iloc[-1])
    # Bands are contiguous in hundredths.
    for high, low in zip(EEF_MONTHS["es_high"][:-1], EEF_MONTHS["es_low"][1:], strict=True):
        assert round((low - high) * 100) == 1


# --- properties ----------------------------------------------------------------------------

effect_sizes = st.floats(min_value=-3, max_value=3, allow_nan=False)


@given(effect_sizes, effect_sizes)
def test_months_monotone(a, b):
    low, high = sorted((a, b))
    assert months_of_progress(low) <= months_of_progress(high)


@given(effect_sizes)
def test_months_mirror(x):
    assert months_of_progress(-x) == -months_of_progress(x)


@given(effect_sizes)
def test_band_contains_rounded_effect(x):
    low, high = months_band(months_of_progress(x))
    assert low <= round_half_up(x) <= high


@given(
    estimate=st.floats(-50, 50),
    std_error=st.floats(0, 20),
    sd=st.floats(0.1, 50),
    a=st.floats(1e-3, 1e3),
    n=st.none() | st.integers(4, 10_000),
    df=st.none() | st.floats(1, 500),
)
def test_effect_size_invariant_to_rescaling(estimate, std_error, sd, a, n, df):
    base = hedges_g(estimate, std_error, sd, n=n, df=df)
    scaled = hedges_g(estimate * a, std_error * a, sd * a, n=n, df=df)
    for field in ("estimate", "std_error", "ci_lower", "ci_upper"):
        assert getattr(scaled, field) == pytest.approx(getattr(base, field), rel=1e-9, abs=1e-12)


@given(
    means=st.tuples(st.floats(-100, 100), st.floats(-100, 100)),
    sds=st.tuples(st.floats(0.5, 30), st.floats(0.5, 30)),
    sizes=st.tuples(st.integers(2, 500), st.integers(2, 500)),
    a=st.floats(0.01, 100),
    b=st.floats(-1000, 1000),
)
def test_summary_effect_size_invariant_to_affine_outcome(means, sds, sizes, a, b):
    assume(sizes[0] + sizes[1] >= 4)

    def g(scale, shift):
        return hedges_g_from_summary(
            mean_treatment=scale * means[0] + shift,
            sd_treatment=scale * sds[0],
            n_treatment=sizes[0],
            mean_control=scale * means[1] + shift,
            sd_control=scale * sds[1],
            n_control=sizes[1],
        )

    base, moved = g(1.0, 0.0), g(a, b)
    assert moved.estimate == pytest.approx(base.estimate, rel=1e-7, abs=1e-7)
    assert moved.std_error == pytest.approx(base.std_error, rel=1e-7, abs=1e-7)
