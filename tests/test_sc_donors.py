"""One treated area with few pre-years: donor pools, held-out pre-years, covariates for
synthetic DiD and the exact-fit statement (issue 13, item 3 (b)-(e)).

Checks: each feature against the same estimator run by hand on the data it should see (a
filtered panel, the pre-period rows relabelled, the outcome adjusted by statsmodels'
coefficients stored in ``tests/reference/donors/``), simulations with known truth, and bad
input raising a :class:`~cpdimpact.errors.CpdImpactError` subclass with the fix.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cpdimpact.comparison import (
    NonUniqueWeightsWarning,
    SyntheticControl,
    SyntheticDiD,
    compare_synthetic,
    cross_validate_synthetic,
)
from cpdimpact.comparison._donors import EXACT_FIT_THRESHOLD
from cpdimpact.errors import (
    ArgumentTypeError,
    EmptyComparisonGroupError,
    InvalidArgumentError,
    InvalidValueError,
    MissingColumnError,
    TooFewPreYearsError,
)

REF = Path(__file__).parent / "reference" / "donors"
KS2_YEARS = (2017, 2018, 2019, 2022, 2023, 2024)  # no tests in 2020 and 2021


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _panel(
    seed: int,
    *,
    years=KS2_YEARS,
    n_donors: int = 12,
    start: int = 2022,
    effect: float = 1.0,
    treated_trend: float = 0.0,
    loading_sd: float = 1.0,
) -> pd.DataFrame:
    """``Y_it = a_i + b_t + g_i' f_t + e_it`` (+ effect in the treated area's programme
    years, + a trend of its own; ``loading_sd=0``: parallel trends), with a region per area: donors 0-5 in "North", the others
    in "South", the treated area ("City", last) in "North"."""
    rng = np.random.default_rng(seed)
    n = n_donors + 1
    level = rng.normal(0, 2, n)
    loading = rng.normal(0, loading_sd, (n, 2))
    names = [f"LA{i:02d}" for i in range(n_donors)] + ["City"]
    rows = []
    for t in years:
        shock, factor = rng.normal(0, 1), rng.normal(0, 1, 2)
        noise = rng.normal(0, 0.5, n)
        for i, a in enumerate(names):
            treated = a == "City" and t >= start
            y = level[i] + shock + loading[i] @ factor + noise[i]
            y += (effect if treated else 0.0) + (
                treated_trend * (t - years[0]) if i == n - 1 else 0
            )
            region = "North" if i < 6 or a == "City" else "South"
            rows.append((a, t, y, int(treated), region))
    return pd.DataFrame(rows, columns=["area", "year", "outcome", "treated", "region"])


# ============================================================================ donor pools
POOL = ["LA01", "LA03", "LA04", "LA08", "LA10"]


@pytest.mark.parametrize(
    "spec",
    [SyntheticControl(), SyntheticDiD(), SyntheticDiD(method="did")],
    ids=["sc", "sdid", "did"],
)
def test_a_donor_list_gives_the_fit_on_the_pool_alone_and_names_the_rest(spec):
    data = _panel(1)
    before = data.copy()
    pooled = _quiet(type(spec)(**{**_options(spec), "donor_pool": POOL}).fit, data)
    by_hand = _quiet(spec.fit, data[data["area"].isin([*POOL, "City"])])
    assert list(pooled.unit_weights.index) == POOL
    np.testing.assert_allclose(pooled.unit_weights, by_hand.unit_weights, atol=1e-12)
    assert pooled.estimate == pytest.approx(by_hand.estimate, abs=1e-12)
    np.testing.assert_allclose(pooled.placebo_effects, by_hand.placebo_effects, atol=1e-12)
    left_out = tuple(f"LA{i:02d}" for i in range(12) if f"LA{i:02d}" not in POOL)
    assert pooled.excluded_donors == left_out
    assert by_hand.excluded_donors == ()
    assert any(
        n.startswith("Donor pool: 7 area(s) outside the pool left out") for n in pooled.notes
    )
    assert "LA00" in str(pooled.summary())
    assert pooled.to_dict()["excluded_donors"] == list(left_out)
    pd.testing.assert_frame_equal(data, before)


def _options(spec) -> dict:
    return {"method": spec.method} if isinstance(spec, SyntheticDiD) else {}


def test_a_statistical_neighbours_table_uses_the_treated_areas_rows_only():
    """One row per area and neighbour, for every authority (as DfE publishes them): only the
    treated area's neighbours are donors."""
    table = pd.DataFrame(
        {
            "la": ["City"] * 4 + ["LA00"] * 3 + ["Elsewhere"] * 2,
            "neighbour": ["LA02", "LA05", "LA07", "LA11", "LA01", "LA03", "City", "LA09", "X"],
            "rank": [1, 2, 3, 4, 1, 2, 3, 1, 2],
        }
    )
    data = _panel(2)
    fit = SyntheticDiD(donor_pool=table, donor_pool_columns=("la", "neighbour")).fit(data)
    assert list(fit.unit_weights.index) == ["LA02", "LA05", "LA07", "LA11"]
    assert len(fit.excluded_donors) == 8
    by_hand = SyntheticDiD().fit(data[data["area"].isin(["LA02", "LA05", "LA07", "LA11", "City"])])
    assert fit.estimate == pytest.approx(by_hand.estimate, abs=1e-12)
    # the spec holds an immutable copy: it is hashable and the table can change afterwards
    spec = SyntheticDiD(donor_pool=table, donor_pool_columns=("la", "neighbour"))
    hash(spec)
    table.loc[0, "neighbour"] = "LA03"
    assert spec.fit(data).estimate == pytest.approx(fit.estimate, abs=1e-12)


def test_donors_within_a_region_and_with_a_list():
    data = _panel(3)
    north = [f"LA{i:02d}" for i in range(6)]
    fit = SyntheticDiD(donors_within="region").fit(data)
    assert list(fit.unit_weights.index) == north
    assert fit.excluded_donors == tuple(f"LA{i:02d}" for i in range(6, 12))
    both = SyntheticDiD(donors_within="region", donor_pool=["LA00", "LA02", "LA09"]).fit(data)
    assert list(both.unit_weights.index) == ["LA00", "LA02"]
    by_hand = SyntheticDiD().fit(data[data["area"].isin(north + ["City"])])
    assert fit.estimate == pytest.approx(by_hand.estimate, abs=1e-12)


def test_compare_synthetic_applies_the_pool_to_every_method():
    comp = _quiet(compare_synthetic, _panel(4), donors_within="region")
    for m in ("sc", "sdid", "did"):
        assert comp[m].n_donors == 6 and len(comp[m].excluded_donors) == 6


def test_a_donor_outside_the_pool_may_lack_outcomes():
    """The pool is applied first: a gap in an area that is not a donor is not an error."""
    data = _panel(5)
    data = data.drop(data.index[(data["area"] == "LA11") & (data["year"] == 2018)])
    with pytest.raises(InvalidValueError, match="LA11"):
        SyntheticDiD().fit(data)
    assert SyntheticDiD(donors_within="region").fit(data).n_donors == 6


def test_a_regional_shock_biases_did_unless_the_donors_share_the_region():
    """Known truth: from 2022 every North area (the treated one included) drops by 2 points;
    DiD against all donors takes the shock for part of the effect, DiD within the region does
    not."""
    effect, estimates, pooled = 1.0, [], []
    for seed in range(20):
        data = _panel(100 + seed, effect=effect, loading_sd=0.0)
        north_post = (data["region"] == "North") & (data["year"] >= 2022)
        data.loc[north_post, "outcome"] -= 2.0
        spec = SyntheticDiD(method="did", placebo=False)
        estimates.append(spec.fit(data).estimate)
        pooled.append(
            SyntheticDiD(method="did", placebo=False, donors_within="region").fit(data).estimate
        )
    # all donors: 1 - 2 * 6/12 = 0 ; within the region: 1
    se = np.std(pooled, ddof=1) / np.sqrt(len(pooled))
    assert abs(np.mean(pooled) - effect) < 3 * se + 0.02
    se = np.std(estimates, ddof=1) / np.sqrt(len(estimates))
    assert abs(np.mean(estimates) - 0.0) < 3 * se + 0.02


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"donor_pool": []}, EmptyComparisonGroupError, "leaves 0 donor area"),
        ({"donor_pool": ["LA03"]}, EmptyComparisonGroupError, "at least two. Widen the pool"),
        ({"donor_pool": ["LA03", "LA99", "Nowhere"]}, InvalidValueError, "'LA99', 'Nowhere'"),
        ({"donor_pool": "LA03"}, InvalidArgumentError, "got str"),
        ({"donors_within": ["region"]}, ArgumentTypeError, "name of one column"),
        ({"donors_within": "county"}, MissingColumnError, "donors_within='county'"),
        (
            {"donors_within": "region", "donor_pool": ["LA07", "LA08"]},
            EmptyComparisonGroupError,
            "the treated area's region ('North')",
        ),
    ],
)
def test_bad_pools_are_refused_with_the_fix(options, error, words):
    with pytest.raises(error) as info:
        SyntheticDiD(**options).fit(_panel(6))
    assert words in str(info.value)


def test_bad_pool_tables_and_regions_are_refused():
    data = _panel(7)
    table = pd.DataFrame({"area": ["LA00", "LA00"], "donor": ["LA01", "LA02"]})
    with pytest.raises(InvalidValueError, match=r"no donors for the treated area\(s\) 'City'"):
        SyntheticDiD(donor_pool=table).fit(data)
    with pytest.raises(MissingColumnError, match="donor_pool_columns"):
        SyntheticDiD(donor_pool=table.rename(columns={"donor": "nb"}))
    with pytest.raises(InvalidValueError, match="row 1"):
        SyntheticDiD(donor_pool=pd.DataFrame({"area": ["City", None], "donor": ["LA01", "LA02"]}))
    moving = data.copy()
    moving.loc[(moving["area"] == "LA02") & (moving["year"] == 2024), "region"] = "South"
    with pytest.raises(InvalidValueError, match="changes over the years within area"):
        SyntheticDiD(donors_within="region").fit(moving)
    blank = data.copy()
    blank.loc[blank["area"] == "City", "region"] = None
    with pytest.raises(InvalidValueError, match="missing for the treated area"):
        SyntheticDiD(donors_within="region").fit(blank)


# ============================================================== held-out pre-years (CV)
def test_the_check_is_each_method_fitted_on_the_earlier_years_by_hand():
    """The last pre-year (2019) held out of 2017-2019: each method is fitted on 2017-2018 as
    if a programme started in 2019; the gaps are recomputed here from the weights."""
    data = _panel(8)
    table = _quiet(cross_validate_synthetic, data)
    assert list(table["method"]) == ["sc", "sdid", "did"]
    assert list(table.columns) == [
        "method", "label", "n_fit_years", "holdout_years", "pseudo_effect", "holdout_rmse",
        "holdout_max_abs_gap", "fit_rmse",
    ]  # fmt: skip
    assert set(table["holdout_years"]) == {"2019"} and set(table["n_fit_years"]) == {2}
    pre = data[data["year"] <= 2019].copy()
    pre["treated"] = ((pre["area"] == "City") & (pre["year"] == 2019)).astype(int)
    Y = pre.pivot(index="area", columns="year", values="outcome")
    donors = [f"LA{i:02d}" for i in range(12)]
    fits = {
        "sc": _quiet(SyntheticControl(placebo=False).fit, pre),
        "sdid": SyntheticDiD(placebo=False).fit(pre),
        "did": SyntheticDiD(method="did", placebo=False).fit(pre),
    }
    for m, fit in fits.items():
        w = fit.unit_weights.reindex(donors).to_numpy()
        lam = fit.time_weights.to_numpy()
        gap = Y.loc["City"].to_numpy() - w @ Y.loc[donors].to_numpy()
        held_gap = gap[2] - lam @ gap[:2]
        row = table.set_index("method").loc[m]
        assert row["pseudo_effect"] == pytest.approx(held_gap, abs=1e-10)
        assert row["holdout_rmse"] == pytest.approx(abs(held_gap), abs=1e-10)
        fit_gap = gap[:2] - lam @ gap[:2]
        assert row["fit_rmse"] == pytest.approx(np.sqrt(np.mean(fit_gap**2)), abs=1e-10)


def test_holding_out_years_skips_the_years_without_data():
    """Programme from 2023: pre-years 2017-2019 and 2022; two held out are 2019 and 2022."""
    data = _panel(9, start=2023)
    table = _quiet(cross_validate_synthetic, data, holdout=2, methods=("sdid", "did"))
    assert list(table["holdout_years"]) == ["2019, 2022"] * 2
    assert list(table["n_fit_years"]) == [2, 2]
    by_year = _quiet(cross_validate_synthetic, data, holdout=2, by_year=True, methods=("sdid",))
    assert list(by_year["year"]) == [2019, 2022]
    assert np.sqrt(np.mean(by_year["gap"] ** 2)) == pytest.approx(table["holdout_rmse"].iloc[0])
    assert by_year["gap"].mean() == pytest.approx(table["pseudo_effect"].iloc[0])


def test_pseudo_effects_are_centred_on_zero_without_a_programme_and_not_with_a_trend():
    """Known truth: no programme before the start, so the pretend effect averages zero over
    seeds (within Monte Carlo bounds); a treated area on a trend of its own (2 points a year)
    that no donor follows gives DiD a pretend effect far from zero."""
    effects = np.array(
        [_quiet(cross_validate_synthetic, _panel(200 + s))["pseudo_effect"] for s in range(30)]
    )
    mean, se = effects.mean(axis=0), effects.std(axis=0, ddof=1) / np.sqrt(len(effects))
    assert np.all(np.abs(mean) < 3 * se + 0.02), (mean, se)
    data = _panel(300, treated_trend=2.0, loading_sd=0.0)
    trend = _quiet(cross_validate_synthetic, data, methods=("did",))
    # 2019 against the mean of 2017-18: 2 * (2 - 0.5) = 3 points, noise SD about 0.6
    assert trend["pseudo_effect"].iloc[0] > 1.5


def test_the_check_keeps_the_donor_pool_and_leaves_the_data_alone():
    data = _panel(10)
    before = data.copy()
    pooled = _quiet(cross_validate_synthetic, data, donor_pool=POOL)
    by_hand = _quiet(cross_validate_synthetic, data[data["area"].isin([*POOL, "City"])])
    pd.testing.assert_frame_equal(pooled, by_hand)
    pd.testing.assert_frame_equal(data, before)


def test_holding_out_too_many_years_is_refused_with_the_fix():
    data = _panel(11)  # three pre-years: 2017, 2018, 2019
    with pytest.raises(TooFewPreYearsError, match=r"leaves 1 to fit on.*\(holdout=1\)"):
        cross_validate_synthetic(data, holdout=2)
    two = data[data["year"] >= 2018]
    with pytest.raises(TooFewPreYearsError, match="with 2 pre-period years there is nothing"):
        cross_validate_synthetic(two)
    with pytest.raises(InvalidArgumentError, match="holdout"):
        cross_validate_synthetic(data, holdout=0)
    with pytest.raises(ArgumentTypeError, match=r"unexpected options \['covariates'\]"):
        cross_validate_synthetic(data, covariates=["fsm"])


# ======================================================================== exact fit
def _hull_panel(inside: bool, n_donors: int = 10) -> pd.DataFrame:
    """Donors on random paths; the treated area is half donor 0 and half donor 1 in the
    pre-years (inside their hull), or 5 points above every donor (outside)."""
    rng = np.random.default_rng(12)
    years = [2017, 2018, 2019, 2022, 2023]
    Y = rng.normal(100, 3, (n_donors, len(years)))
    treated = (Y[0] + Y[1]) / 2 if inside else Y.max(axis=0) + 5
    rows = [(f"LA{i:02d}", t, Y[i, k], 0) for i in range(n_donors) for k, t in enumerate(years)]
    rows += [
        ("City", t, treated[k] + (1.0 if t >= 2022 else 0), int(t >= 2022))
        for k, t in enumerate(years)
    ]
    return pd.DataFrame(rows, columns=["area", "year", "outcome", "treated"])


def test_an_exact_fit_with_many_donors_is_stated_and_still_warned():
    data = _hull_panel(inside=True)
    with pytest.warns(NonUniqueWeightsWarning):
        fit = SyntheticControl().fit(data)
    assert fit.pre_fit_exact
    text = fit.pre_fit_statement
    assert "reproduces City's outcomes in the 3 years before 2022 exactly" in text
    assert "not evidence that the comparison is right" in text
    assert "10 comparison areas and only 3 figures to match" in text
    assert fit.to_dict()["pre_fit_exact"] is True
    assert fit.to_dict()["pre_fit_statement"] == text


def test_a_treated_area_outside_the_donors_is_not_an_exact_fit():
    with pytest.warns(NonUniqueWeightsWarning):
        fit = SyntheticControl().fit(_hull_panel(inside=False))
    assert not fit.pre_fit_exact
    assert fit.pre_fit_statement.startswith("The comparison misses City's outcomes")
    assert "weights need not be unique" in fit.pre_fit_statement
    did = SyntheticDiD(method="did").fit(_hull_panel(inside=False))
    assert "parallel" in did.pre_fit_statement and not did.pre_fit_exact


@pytest.mark.parametrize("seed", range(4))
def test_exact_means_the_stated_share_of_the_outcomes_spread(seed):
    """The flag is the stated rule recomputed here: pre-period RMSE below 0.001 of the SD of
    every pre-period outcome."""
    assert EXACT_FIT_THRESHOLD == 1e-3
    data = _hull_panel(inside=seed % 2 == 0) if seed < 2 else _panel(seed)
    for fit in _quiet(compare_synthetic, data).results.values():
        pre = data[data["year"] < fit.first_treated]["outcome"]
        gap = fit.gaps.iloc[: fit.n_pre].to_numpy()
        ratio = np.sqrt(np.mean(gap**2)) / np.std(pre, ddof=1)
        assert fit.pre_fit_exact == (ratio < 1e-3)
        assert abs(np.log10(ratio / 1e-3)) > 1  # no case near the threshold


# ======================================================================== covariates
def _reference():
    data = pd.read_csv(REF / "covariates_panel.csv")
    ref = json.loads((REF / "covariates_statsmodels.json").read_text())
    return data, ref


@pytest.mark.parametrize("method", ["sdid", "sc", "did"])
def test_covariates_match_statsmodels_and_sdid_on_the_adjusted_outcome(method):
    """statsmodels' two-way fixed-effects coefficients on the untreated cells
    (tests/reference/donors/covariates_statsmodels.py), and the estimator on the outcome
    adjusted with them, are what SyntheticDiD(covariates=...) gives."""
    data, ref = _reference()
    before = data.copy()
    placebo = method != "sc"  # see below
    fit = SyntheticDiD(method=method, covariates=["fsm", "eal"], placebo=placebo).fit(data)
    for name in ("fsm", "eal"):
        assert fit.options["covariates"][name] == pytest.approx(ref["beta"][name], abs=1e-9)
    adjusted = data.assign(outcome=ref["adjusted_outcome"])
    by_hand = SyntheticDiD(method=method, placebo=placebo).fit(adjusted)
    assert fit.estimate == pytest.approx(by_hand.estimate, abs=1e-8)
    np.testing.assert_allclose(fit.unit_weights, by_hand.unit_weights, atol=1e-8)
    if placebo:
        # not for synthdid's SC solver (ridge 1e-6), which stops on a decrease rule: placebo
        # fits on outcomes that differ in the 15th digit stop a few steps apart (1e-5 here)
        np.testing.assert_allclose(fit.placebo_effects, by_hand.placebo_effects, atol=1e-8)
    pd.testing.assert_frame_equal(data, before)


def _covariate_panel(seed: int, n_donors: int = 20, effect: float = 1.0) -> pd.DataFrame:
    """The FSM share of the treated area rises 1.5 points a year (the donors' is flat), and
    each point lowers the outcome by 0.5: without adjustment a fall of 0.75 a year looks like
    part of the effect."""
    rng = np.random.default_rng(seed)
    years = [2016, 2017, 2018, 2019, 2022, 2023, 2024]
    n = n_donors + 1
    level = rng.normal(0, 2, n)
    rows = []
    for k, t in enumerate(years):
        shock = rng.normal(0, 1)
        for i in range(n):
            treated_area = i == n - 1
            fsm = 20 + rng.normal(0, 1) + (1.5 * k if treated_area else 0.0)
            treated = treated_area and t >= 2022
            y = level[i] + shock - 0.5 * fsm + rng.normal(0, 0.3) + (effect if treated else 0)
            rows.append(("City" if treated_area else f"LA{i:02d}", t, y, int(treated), fsm))
    return pd.DataFrame(rows, columns=["area", "year", "outcome", "treated", "fsm"])


def test_covariates_remove_the_bias_of_a_changing_intake():
    """Known truth 1.0: adjusted SDID is unbiased within Monte Carlo bounds over seeds; the
    unadjusted one is not (the treated area's outcome drifts down with its FSM share)."""
    adjusted, raw = [], []
    for seed in range(20):
        data = _covariate_panel(400 + seed)
        adjusted.append(SyntheticDiD(covariates="fsm", placebo=False).fit(data).estimate)
        raw.append(SyntheticDiD(placebo=False).fit(data).estimate)
    se = np.std(adjusted, ddof=1) / np.sqrt(len(adjusted))
    assert abs(np.mean(adjusted) - 1.0) < 3 * se + 0.02, (np.mean(adjusted), se)
    assert np.mean(raw) < 1.0 - 1.0  # the drift is worth more than the effect


def test_bad_covariates_are_refused():
    data = _covariate_panel(1)
    with pytest.raises(MissingColumnError, match="'idaci'"):
        SyntheticDiD(covariates=["fsm", "idaci"]).fit(data)
    holed = data.copy()
    holed.loc[5, "fsm"] = np.nan
    with pytest.raises(InvalidValueError, match="'fsm' is missing or not a finite number in row 5"):
        SyntheticDiD(covariates="fsm").fit(holed)
    fixed = data.assign(urban=data["area"].map(lambda a: 0.0 if a == "City" else int(a[2:])))
    with pytest.raises(InvalidValueError, match=r"\['urban'\] do not change within areas"):
        SyntheticDiD(covariates=["fsm", "urban"]).fit(fixed)
    twice = data.assign(fsm2=2 * data["fsm"] + 1)
    with pytest.raises(InvalidValueError, match="collinear"):
        SyntheticDiD(covariates=["fsm", "fsm2"]).fit(twice)
    assert SyntheticDiD(covariates="fsm").covariates == ("fsm",)
