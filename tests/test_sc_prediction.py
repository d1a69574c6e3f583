"""Prediction intervals for synthetic control (PredictionIntervals) against scpi-pkg and truth.

References in tests/reference/scpi/ were produced by scpi_reference.py there with scpi-pkg 4.0.0
(4000 simulations; see that folder's README). Tests never need scpi installed.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cpdimpact.comparison import NonUniqueWeightsWarning, PredictionIntervals, SyntheticControl
from cpdimpact.comparison._prediction import prediction_bounds
from cpdimpact.errors import (
    ArgumentTypeError,
    CpdImpactError,
    DesignError,
    ExactFitWarning,
    InvalidArgumentError,
)

REF = Path(__file__).parent / "reference" / "scpi"
SYN = Path(__file__).parent / "reference" / "synthetic"

EXAMPLES = {
    "germany": dict(
        path=REF / "scpi_germany.csv",
        sep=",",
        unit="country",
        time="year",
        outcome="gdp",
        treated="West Germany",
        start=1991,
    ),
    "prop99": dict(
        path=SYN / "california_prop99.csv",
        sep=";",
        unit="State",
        time="Year",
        outcome="PacksPerCapita",
        treated="California",
        start=1989,
    ),
}


def _panel(name):
    ex = EXAMPLES[name]
    data = pd.read_csv(ex["path"], sep=ex["sep"])
    data = data[[ex["unit"], ex["time"], ex["outcome"]]].copy()
    data["treated"] = (
        (data[ex["unit"]] == ex["treated"]) & (data[ex["time"]] >= ex["start"])
    ).astype(int)
    return data


def _fit(name, **options):
    ex = EXAMPLES[name]
    spec = SyntheticControl(
        unit=ex["unit"],
        time=ex["time"],
        outcome=ex["outcome"],
        placebo=False,
        prediction=PredictionIntervals(**options),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonUniqueWeightsWarning)
        return spec.fit(_panel(name))


def _matrices(name, *, scpi_weights=False):
    """Donor and treated matrices of an example, with our weights or scpi's."""
    result = _fit(name, n_simulations=10, seed=0)
    ex = EXAMPLES[name]
    data = _panel(name)
    wide = data.pivot(index=ex["time"], columns=ex["unit"], values=ex["outcome"])
    donors = list(result.unit_weights.index)
    pre = wide.index < ex["start"]
    B = wide.loc[pre, donors].to_numpy(float)
    a = wide.loc[pre, ex["treated"]].to_numpy(float)
    P = wide.loc[~pre, donors].to_numpy(float)
    w = result.unit_weights.to_numpy()
    if scpi_weights:
        ref = pd.read_csv(REF / f"scpi_{name}_weights.csv").set_index("donor")["weight"]
        w = ref[[str(d) for d in donors]].to_numpy()
    return B, a, P, w


# --------------------------------------------------------------------------------------------
# Parity with scpi-pkg
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["germany", "prop99"])
def test_weights_match_scpi(name):
    """Simplex weights: scpi solves the same least-squares problem with cvxpy (its weights
    are feasible to 3e-11). The sums of squared residuals agree to 1e-8 (relative) and the
    weights to 5e-6: on Prop 99 the minimum is so flat that weights 2.6e-6 apart have
    residual sums 2e-9 apart (relative), so the solvers' stopping rules decide the last
    digits (5.5e-7 on Germany)."""
    ref = pd.read_csv(REF / f"scpi_{name}_weights.csv").set_index("donor")["weight"]
    ours = _fit(name, n_simulations=10, seed=0).unit_weights
    ours.index = ours.index.astype(str)
    assert set(ours.index) == set(ref.index)
    np.testing.assert_allclose(ours[ref.index].to_numpy(), ref.to_numpy(), atol=5e-6)
    B, a, P, w = _matrices(name)
    _, _, _, w_scpi = _matrices(name, scpi_weights=True)
    ssr, ssr_scpi = np.sum((a - B @ w) ** 2), np.sum((a - B @ w_scpi) ** 2)
    assert ssr == pytest.approx(ssr_scpi, rel=1e-8)


@pytest.mark.parametrize("method", ["gaussian", "ls", "qreg"])
@pytest.mark.parametrize("name", ["germany", "prop99"])
def test_out_of_sample_bounds_match_scpi(name, method):
    """The out-of-sample bounds are deterministic: given scpi's weights, scpi's combined bound
    minus its in-sample bound equals ours to 1e-6 (outcome units; the CSV keeps 10 digits)."""
    ref = pd.read_csv(REF / f"scpi_{name}_bounds.csv")
    B, a, P, w = _matrices(name, scpi_weights=True)
    spec = PredictionIntervals(out_of_sample=method, n_simulations=10, seed=0)
    bounds = prediction_bounds(spec, B, a, P, w, np.random.default_rng(0))
    np.testing.assert_allclose(
        bounds.out_lower[:-1], ref[f"{method}_lower"] - ref["in_lower"], atol=1e-6
    )
    np.testing.assert_allclose(
        bounds.out_upper[:-1], ref[f"{method}_upper"] - ref["in_upper"], atol=1e-6
    )


def _in_sample_parity(name, sims, seed):
    ref = pd.read_csv(REF / f"scpi_{name}_bounds.csv")
    meta = json.loads((REF / f"scpi_{name}.json").read_text())
    B, a, P, w = _matrices(name, scpi_weights=True)
    spec = PredictionIntervals(n_simulations=sims, seed=seed)
    b = prediction_bounds(spec, B, a, P, w, np.random.default_rng(seed))
    assert b.rho == pytest.approx(meta["rho"], rel=1e-6)
    synthetic = P @ w
    np.testing.assert_allclose(synthetic, ref["synthetic"], atol=1e-5)
    # Monte Carlo tolerance: each side's standard error estimated from our draws (scpi's
    # scaled by the square root of the ratio of draws), four combined SEs.
    for ours, se, col in (
        (b.in_lower[:-1], b.in_lower_se[:-1], "in_lower"),
        (b.in_upper[:-1], b.in_upper_se[:-1], "in_upper"),
    ):
        combined = se * np.sqrt(1 + sims / meta["sims"])
        gap = np.abs(synthetic + ours - ref[col].to_numpy())
        assert np.all(gap <= 4 * combined + 1e-6), (col, gap / combined)


def test_in_sample_bounds_match_scpi_germany():
    """In-sample bounds against scpi's 4000-draw run, to four Monte Carlo SEs."""
    _in_sample_parity("germany", sims=300, seed=11)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["germany", "prop99"])
def test_in_sample_bounds_match_scpi_many_draws(name):
    _in_sample_parity(name, sims=4000, seed=12)


def test_dual_solver_matches_a_general_solver():
    """Each simulated problem (max p'x over the localised simplex inside the ellipsoid) solved
    by the smoothed dual agrees with scipy's SLSQP on the primal to 1e-6."""
    from scipy.optimize import minimize

    from cpdimpact.comparison._prediction import _max_linear

    rng = np.random.default_rng(5)
    T0, J = 4, 12
    B = rng.normal(size=(T0, J)).cumsum(axis=0) + 10
    w = rng.dirichlet(np.full(J, 0.3))
    w[w < 0.05] = 0
    w /= w.sum()
    lower = np.where(w < 0.1, w, 0.0)
    p = rng.normal(size=J) + 10
    Q = B.T @ B / T0
    for _ in range(4):
        h = rng.normal(size=T0) * rng.uniform(0.01, 1)
        G = B.T @ h
        cons = [
            {"type": "eq", "fun": lambda x: x.sum() - 1},
            {"type": "ineq", "fun": lambda x, G=G: -((x - w) @ Q @ (x - w) - 2 * G @ (x - w))},
        ]
        best = -np.inf
        for start in range(6):  # SLSQP from a few starts; the best feasible answer
            x0 = w if start == 0 else 0.99 * w + 0.01 * rng.dirichlet(np.ones(J))
            primal = minimize(
                lambda x: -(p @ x),
                x0,
                bounds=[(lo, None) for lo in lower],
                constraints=cons,
                method="SLSQP",
                options={"ftol": 1e-14, "maxiter": 1000},
            )
            x = primal.x
            feasible = (
                abs(x.sum() - 1) < 1e-9 and np.all(x >= lower - 1e-9) and cons[1]["fun"](x) >= -1e-9
            )
            if feasible:
                best = max(best, p @ x)
        assert np.isfinite(best)
        Bc = B - (B @ w)[:, None]
        U, sv, Vt = np.linalg.svd(Bc, full_matrices=False)
        Bt = sv[:, None] * Vt
        centre = (T0 * h) @ U
        K = np.sqrt((Bt**2).sum(axis=0)).max()
        value = _max_linear(
            Bt / K,
            (p - p @ w)[None],
            lower,
            1 - lower.sum(),
            (centre / np.linalg.norm(centre))[None],
            np.array([np.linalg.norm(centre) / K]),
        )
        assert value[0, 0] + p @ w == pytest.approx(best, abs=1e-6)


# --------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------


def test_result_carries_intervals_and_shows_them():
    result = _fit("germany", n_simulations=50, seed=1)
    pi = result.prediction_intervals
    assert list(pi.index[:-1]) == list(range(1991, 2004)) and pi.index[-1] == "average"
    np.testing.assert_allclose(pi["effect"].iloc[:-1], result.effect_by_year.to_numpy())
    assert pi["effect"].iloc[-1] == pytest.approx(result.estimate)
    assert np.all(pi["lower"] <= pi["lower_in_sample"])
    assert np.all(pi["lower_in_sample"] <= pi["upper_in_sample"])
    assert np.all(pi["upper_in_sample"] <= pi["upper"])
    text = str(result.summary())
    assert "Prediction intervals" in text and "1991" in text
    frame = result.to_frame()
    assert {"pi_lower", "pi_upper"} <= set(frame.columns)
    assert frame["pi_lower"].iloc[0] == pytest.approx(pi["lower"].iloc[-1])
    d = result.to_dict()
    assert d["prediction_intervals"]["1991"]["lower"] == pytest.approx(pi["lower"].iloc[0])
    json.dumps(d)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.prediction_intervals = None


def test_same_seed_same_intervals_and_generator_seed():
    a = _fit("germany", n_simulations=30, seed=7).prediction_intervals
    b = _fit("germany", n_simulations=30, seed=7).prediction_intervals
    pd.testing.assert_frame_equal(a, b)
    c = _fit("germany", n_simulations=30, seed=np.random.default_rng(7)).prediction_intervals
    pd.testing.assert_frame_equal(a, c)


def test_gaps_plot_draws_the_band():
    import matplotlib

    matplotlib.use("Agg")
    result = _fit("germany", n_simulations=30, seed=1)
    ax = result.plot("gaps")
    assert len(ax.collections) >= 2  # the two bands
    import matplotlib.pyplot as plt

    plt.close("all")


def test_describe_mentions_the_intervals():
    text = SyntheticControl(prediction=PredictionIntervals(n_simulations=300)).describe()
    assert "prediction intervals" in text and "300 simulations" in text and "90%" in text


def test_no_prediction_by_default():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonUniqueWeightsWarning)
        result = SyntheticControl(unit="country", time="year", outcome="gdp", placebo=False).fit(
            _panel("germany")
        )
    assert result.prediction_intervals is None
    assert "pi_lower" not in result.to_frame().columns


# --------------------------------------------------------------------------------------------
# Truth: one treated area, 3 pre-years, 40 donors, a factor model
# --------------------------------------------------------------------------------------------


def factor_panel(seed, *, n_donors=40, pre=3, post=2, effect=1.0, extreme=True):
    """Two-factor model Y_it = 10 + a_i + l_i'f_t + e_it (e ~ N(0, 0.5^2)); the treated area
    (area 0) gains ``effect`` in each programme year. With ``extreme`` the treated area has
    loadings and level outside the donors' range (the pre-period fit is then not exact)."""
    rng = np.random.default_rng(seed)
    T = pre + post
    f = rng.normal(size=(T, 2))
    loadings = rng.normal(size=(n_donors + 1, 2))
    level = rng.normal(size=n_donors + 1)
    if extreme:
        loadings[0] = [2.5, 2.5]
        level[0] = 2.0
    Y = 10 + level[:, None] + loadings @ f.T + rng.normal(size=(n_donors + 1, T)) * 0.5
    Y[0, pre:] += effect
    frame = pd.DataFrame(
        {
            "area": np.repeat(np.arange(n_donors + 1), T),
            "year": np.tile(np.arange(2015, 2015 + T), n_donors + 1),
            "outcome": Y.ravel(),
        }
    )
    frame["treated"] = ((frame["area"] == 0) & (frame["year"] >= 2015 + pre)).astype(int)
    return frame


def _coverage(reps, sims):
    hits = []
    for seed in range(reps):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NonUniqueWeightsWarning)
            fit = SyntheticControl(
                placebo=False, prediction=PredictionIntervals(n_simulations=sims, seed=seed)
            ).fit(factor_panel(seed))
        pi = fit.prediction_intervals.iloc[:-1]
        hits.extend(((pi["lower"] <= 1.0) & (pi["upper"] >= 1.0)).tolist())
    return np.mean(hits), len(hits)


def test_coverage_three_pre_years_quick():
    """12 simulated areas (24 area-years): the >= 90% intervals cover the true effect in at
    least 75% of them (with true coverage 0.90 that fails with probability about 2% even if
    the two years of an area were one draw)."""
    coverage, n = _coverage(12, 60)
    assert coverage >= 0.75, coverage


@pytest.mark.slow
def test_coverage_three_pre_years():
    """200 simulated areas (400 area-years): coverage within 3.5 Monte Carlo SEs of 0.90 or
    above (SE computed as if the 400 were independent, sqrt(0.9 * 0.1 / 400) = 0.015)."""
    coverage, n = _coverage(200, 200)
    assert coverage >= 0.90 - 3.5 * np.sqrt(0.9 * 0.1 / n), coverage


def test_exact_fit_warns_and_says_so():
    """Treated area inside the donors' range: 3 pre-years, 40 donors, the fit is exact and
    the intervals cannot measure uncertainty: one ExactFitWarning, and a note."""
    data = factor_panel(3, extreme=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = SyntheticControl(
            placebo=False, prediction=PredictionIntervals(n_simulations=20, seed=0)
        ).fit(data)
    assert fit.pre_rmspe < 1e-6
    assert sum(issubclass(w.category, ExactFitWarning) for w in caught) == 1
    assert any("pre-period fit is exact" in n for n in fit.notes)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        (dict(alpha_in_sample=0), "alpha_in_sample"),
        (dict(alpha_out_of_sample=1.5), "alpha_out_of_sample"),
        (dict(alpha_in_sample=0.6, alpha_out_of_sample=0.5), "keep the sum below 1"),
        (dict(out_of_sample="normal"), "out_of_sample"),
        (dict(n_simulations=5), "n_simulations"),
        (dict(rho_max=0), "rho_max"),
        (dict(seed="x"), "seed"),
    ],
)
def test_bad_options_raise_with_the_fix(options, needle):
    with pytest.raises(CpdImpactError, match=needle):
        PredictionIntervals(**options)


def test_options_are_keyword_only_and_frozen():
    with pytest.raises(TypeError):
        PredictionIntervals("gaussian")
    spec = PredictionIntervals()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.n_simulations = 5


def test_prediction_must_be_the_option_object():
    with pytest.raises(ArgumentTypeError, match="PredictionIntervals"):
        SyntheticControl(prediction=0.9)


def test_too_few_pre_years():
    data = factor_panel(0, pre=2)
    with pytest.raises(DesignError, match="at least 3 pre-period years"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NonUniqueWeightsWarning)
            SyntheticControl(placebo=False, prediction=PredictionIntervals()).fit(data)


def test_predictors_not_supported():
    data = factor_panel(0)
    data["x"] = np.arange(len(data)) % 7
    with pytest.raises(DesignError, match="drop predictors= or prediction="):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            SyntheticControl(placebo=False, predictors=["x"], prediction=PredictionIntervals()).fit(
                data
            )


def test_error_classes():
    assert issubclass(InvalidArgumentError, CpdImpactError)
