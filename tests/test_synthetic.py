"""Synthetic control, synthetic DiD and DiD for one treated area (cpdimpact.comparison).

Reference values: synthdid 0.0.9 (R) and pysyncon 1.7.0 on California's Proposition 99, stored
with the scripts that produced them under tests/reference/synthetic/.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from cpdimpact.comparison import (
    NonUniqueWeightsWarning,
    SyntheticComparison,
    SyntheticControl,
    SyntheticDiD,
    SyntheticResult,
    area_year_outcomes,
    compare_synthetic,
)
from cpdimpact.comparison._synthetic_solvers import (
    frank_wolfe,
    simplex_least_squares,
)
from cpdimpact.errors import (
    DesignError,
    DuplicateRowsError,
    EmptyComparisonGroupError,
    InvalidValueError,
    MissingColumnError,
    NonAbsorbingTreatmentError,
    SmallSampleWarning,
)

REF = Path(__file__).parent / "reference" / "synthetic"
COLS = dict(area="State", year="Year", outcome="PacksPerCapita")


@pytest.fixture(scope="module")
def prop99() -> pd.DataFrame:
    return pd.read_csv(REF / "california_prop99.csv", sep=";")


@pytest.fixture(scope="module")
def fits(prop99) -> dict[str, SyntheticResult]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonUniqueWeightsWarning)
        out = {m: SyntheticDiD(method=m, **COLS).fit(prop99) for m in ("sdid", "sc", "did")}
        out["exact"] = SyntheticControl(**COLS).fit(prop99)
    return out


def _panel(
    n_areas=12, n_years=10, start=7, effect=2.0, seed=0, treated=("a00",), inside_hull=False
):
    """A factor-model area-by-year panel with a known effect on the treated areas."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n_years, 2)).cumsum(axis=0)
    loadings = rng.normal(size=(n_areas, 2))
    y = 50 + rng.normal(size=(n_areas, 1)) * 3 + loadings @ factors.T
    if inside_hull:  # the treated area's path is a mix of three donors' (SC's own model)
        y[0] = y[1:4].mean(axis=0)
    y = y + rng.normal(scale=0.5, size=y.shape)
    areas = [f"a{i:02d}" for i in range(n_areas)]
    years = np.arange(2010, 2010 + n_years)
    frame = pd.DataFrame(
        {
            "area": np.repeat(areas, n_years),
            "year": np.tile(years, n_areas),
            "outcome": y.ravel(),
        }
    )
    on = frame["area"].isin(treated) & (frame["year"] >= years[start])
    frame["treated"] = on.astype(int)
    frame.loc[on, "outcome"] += effect
    return frame


# ------------------------------------------------------------------ Prop 99 against synthdid


@pytest.mark.parametrize("method", ["sdid", "sc", "did"])
def test_prop99_estimates_match_synthdid(fits, method):
    ref = pd.read_csv(REF / "synthdid_estimates.csv").set_index("method").loc[method]
    fit = fits[method]
    assert fit.estimate == pytest.approx(ref["estimate"], abs=1e-8)
    assert fit.std_error == pytest.approx(ref["placebo_se_every_donor"], abs=1e-8)


def test_prop99_published_figures(fits):
    # Arkhangelsky et al. (2021), Table 1: SDID -15.6, SC -19.6, DiD -27.3 (no covariates)
    assert round(fits["sdid"].estimate, 2) == -15.60
    assert round(fits["did"].estimate, 2) == -27.35
    assert round(fits["sc"].estimate, 2) == -19.62
    assert round(fits["exact"].estimate, 1) == -19.5


@pytest.mark.parametrize("method", ["sdid", "sc", "did"])
def test_prop99_weights_match_synthdid(fits, method):
    ref = pd.read_csv(REF / "synthdid_weights.csv")
    ref = ref[ref["method"] == method]
    omega = ref[ref["kind"] == "omega"].set_index("name")["weight"]
    lam = ref[ref["kind"] == "lambda"].set_index("name")["weight"]
    fit = fits[method]
    np.testing.assert_allclose(fit.unit_weights.reindex(omega.index), omega, atol=1e-8)
    np.testing.assert_allclose(fit.time_weights.to_numpy(), lam.to_numpy(), atol=1e-8)
    assert fit.unit_weights.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["sdid", "sc", "did"])
def test_prop99_every_donor_placebos_match_synthdid(fits, method):
    ref = pd.read_csv(REF / "synthdid_placebos.csv")
    ref = ref[ref["method"] == method].set_index("area")["estimate"]
    got = fits[method].placebo_effects.reindex(ref.index)
    np.testing.assert_allclose(got, ref, atol=1e-6)


def test_prop99_exact_sc_matches_pysyncon(fits, prop99):
    ref = pd.read_csv(REF / "pysyncon_sc_weights.csv").set_index("area")["weight"]
    meta = json.loads((REF / "pysyncon_sc.json").read_text())
    fit = fits["exact"]
    # SLSQP stops a little short of the optimum on this flat problem: the weights agree to
    # 1e-5 and the exact solver's pre-period error is no larger than pysyncon's.
    np.testing.assert_allclose(fit.unit_weights.reindex(ref.index), ref, atol=2e-5)
    assert fit.estimate == pytest.approx(meta["estimate"], abs=1e-3)
    wide = prop99.pivot(index="Year", columns="State", values="PacksPerCapita").loc[:1988]
    donors = list(ref.index)

    def loss(w):
        return np.mean((wide["California"] - wide[donors].to_numpy() @ np.asarray(w)) ** 2)

    assert loss(fit.unit_weights.reindex(donors)) <= loss(ref)


def test_exact_sc_fits_at_least_as_well_as_frank_wolfe(fits):
    # the exact solver minimises the pre-period error; synthdid's FW (tiny ridge) stops early
    assert fits["exact"].pre_rmspe <= fits["sc"].pre_rmspe + 1e-9


# ------------------------------------------------------------------ solvers


def _kkt_violation(A, b, x):
    """Largest violation of the optimality conditions of min |Ax-b|^2 on the simplex."""
    grad = 2 * A.T @ (A @ x - b)
    support = x > 1e-9
    nu = grad[support].mean()
    return max(np.abs(grad[support] - nu).max(), max(0.0, -(grad - nu).min()))


@pytest.mark.parametrize("seed", range(8))
def test_simplex_least_squares_is_optimal(seed):
    rng = np.random.default_rng(seed)
    T, n = rng.integers(5, 25), rng.integers(2, 20)
    A = rng.normal(size=(T, n))
    b = A[:, : min(3, n)].mean(axis=1) + rng.normal(scale=0.3, size=T)
    x, _ = simplex_least_squares(A, b)
    assert x.min() >= 0 and x.sum() == pytest.approx(1.0)
    scale = np.abs(2 * A.T @ b).max() + np.abs(2 * A.T @ A).max()
    assert _kkt_violation(A, b, x) < 1e-8 * scale
    # no vertex or random feasible point does better
    for _ in range(50):
        y = rng.dirichlet(np.ones(n) * 0.3)
        assert np.sum((A @ x - b) ** 2) <= np.sum((A @ y - b) ** 2) + 1e-10


def test_frank_wolfe_batch_equals_single_problems():
    rng = np.random.default_rng(3)
    B, T, n = 5, 8, 6
    opts = dict(eta=0.1, zeta2=0.1 / T, nrow=T, min_decrease=1e-6, max_iter=500)
    As = rng.normal(size=(B, T, n))
    bs = rng.normal(size=(B, T))
    G = np.einsum("bti,btj->bij", As, As)
    c = np.einsum("bti,bt->bi", As, bs)
    bb = np.einsum("bt,bt->b", bs, bs)
    x0 = np.full((B, n), 1 / n)
    batch, its = frank_wolfe(G, c, bb, x0, **opts)
    for k in range(B):
        single, it = frank_wolfe(G[k], c[k : k + 1], bb[k : k + 1], x0[k : k + 1], **opts)
        np.testing.assert_allclose(batch[k], single[0], atol=1e-12)
        assert its[k] == it[0]
    assert np.allclose(batch.sum(axis=1), 1) and batch.min() >= 0


# ------------------------------------------------------------------ invariances and truth


def test_rows_order_and_unit_constants_do_not_matter():
    data = _panel(seed=1)
    base = SyntheticDiD(placebo=False).fit(data)
    shuffled = data.sample(frac=1.0, random_state=4)
    assert SyntheticDiD(placebo=False).fit(shuffled).estimate == base.estimate
    shifted = data.copy()
    shifted["outcome"] += shifted["area"].str[1:].astype(int) * 7.0
    moved = SyntheticDiD(placebo=False).fit(shifted)
    assert moved.estimate == pytest.approx(base.estimate, abs=1e-8)
    assert SyntheticDiD(method="did").fit(shifted).estimate == pytest.approx(
        SyntheticDiD(method="did").fit(data).estimate, abs=1e-10
    )


def test_affine_outcome_scales_the_estimate():
    data = _panel(seed=2)
    scaled = data.assign(outcome=3.0 * data["outcome"] + 10.0)
    for method in ("sdid", "did"):
        a = SyntheticDiD(method=method).fit(data)
        b = SyntheticDiD(method=method).fit(scaled)
        assert b.estimate == pytest.approx(3.0 * a.estimate, rel=1e-6)
        assert b.std_error == pytest.approx(3.0 * a.std_error, rel=1e-6)


def test_input_frame_is_not_modified():
    data = _panel(seed=3)
    before = data.copy()
    compare_synthetic(data, methods=("sdid", "did"))
    pd.testing.assert_frame_equal(data, before)


def test_recovers_a_known_effect_on_average():
    # five factor-model panels in which the treated area's path lies among the donors': the
    # mean SDID and SC estimates lie near the true effect of 2
    est = {"sdid": [], "sc": []}
    for seed in range(5):
        data = _panel(n_areas=20, n_years=12, start=8, seed=seed, inside_hull=True)
        est["sdid"].append(SyntheticDiD(placebo=False).fit(data).estimate)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NonUniqueWeightsWarning)
            est["sc"].append(SyntheticControl(placebo=False).fit(data).estimate)
    assert abs(np.mean(est["sdid"]) - 2.0) < 0.4
    assert abs(np.mean(est["sc"]) - 2.0) < 0.4


@pytest.mark.slow
def test_placebo_se_tracks_the_spread_of_estimates():
    draws, ses = [], []
    for seed in range(60):
        fit = SyntheticDiD().fit(_panel(n_areas=25, n_years=12, start=8, seed=100 + seed))
        draws.append(fit.estimate)
        ses.append(fit.std_error)
    assert abs(np.mean(draws) - 2.0) < 0.3
    assert 0.5 < np.mean(ses) / np.std(draws) < 2.0


# ------------------------------------------------------------------ placebo inference


def test_permutation_p_value_and_rank():
    data = _panel(n_areas=10, effect=30.0, seed=5)
    fit = SyntheticDiD().fit(data)
    assert len(fit.placebo_effects) == 9
    assert fit.rank == 1
    assert fit.p_value_permutation == pytest.approx(1 / 10)
    assert fit.p_value_rmspe == pytest.approx(1 / 10)
    null = SyntheticDiD().fit(_panel(n_areas=10, effect=0.0, seed=5))
    assert null.p_value_permutation > 0.1
    effects = fit.placebo_effects.to_numpy()
    assert fit.std_error == pytest.approx(np.sqrt(np.mean((effects - effects.mean()) ** 2)))


def test_placebo_gaps_and_paths_are_consistent():
    fit = SyntheticDiD().fit(_panel(seed=6))
    post = fit.gaps[fit.gaps.index >= fit.first_treated]
    assert post.mean() == pytest.approx(fit.estimate)
    assert list(fit.placebo_gaps.columns) == list(fit.placebo_effects.index)
    for area, effect in fit.placebo_effects.items():
        col = fit.placebo_gaps[area]
        assert col[col.index >= fit.first_treated].mean() == pytest.approx(effect)


def test_block_of_treated_areas_for_sdid_and_clear_error_for_sc():
    data = _panel(n_areas=14, seed=7, treated=("a00", "a01"))
    fit = SyntheticDiD(seed=1, replications=5).fit(data)
    assert fit.treated_areas == ("a00", "a01")
    assert len(fit.placebo_effects) == 5
    again = SyntheticDiD(seed=1, replications=5).fit(data)
    assert again.std_error == fit.std_error
    with pytest.raises(DesignError, match="SyntheticDiD\\(method='sc'\\)"):
        SyntheticControl().fit(data)
    comparison = compare_synthetic(data, replications=3, seed=2)
    assert comparison["sc"].options["solver"].startswith("Frank-Wolfe")
    assert len(comparison["did"].placebo_effects) == 3


# ------------------------------------------------------------------ bad input


def test_missing_donor_outcomes_error_names_areas_and_years():
    data = _panel(seed=8)
    gappy = data.drop(data.index[(data["area"] == "a03") & (data["year"] == 2012)])
    with pytest.raises(InvalidValueError, match=r"'a03' 2012.*missing='drop'"):
        SyntheticDiD().fit(gappy)
    nan = data.copy()
    nan.loc[(nan["area"] == "a05") & (nan["year"] == 2011), "outcome"] = np.nan
    with pytest.raises(InvalidValueError, match="'a05' 2011"):
        SyntheticDiD().fit(nan)
    with pytest.warns(SmallSampleWarning, match="1 donor area"):
        fit = SyntheticDiD(missing="drop").fit(gappy)
    assert fit.n_donors == 10 and fit.dropped_donors == ("a03",)


def test_missing_treated_outcome_is_an_error():
    data = _panel(seed=8)
    data = data.drop(data.index[(data["area"] == "a00") & (data["year"] == 2011)])
    with pytest.raises(InvalidValueError, match="treated area"):
        SyntheticDiD(missing="drop").fit(data)


def test_more_donors_than_pre_periods_warns_for_sc():
    data = _panel(n_areas=12, n_years=8, start=4, seed=9)
    with pytest.warns(NonUniqueWeightsWarning, match="11 donor areas but only 4"):
        fit = SyntheticControl().fit(data)
    assert fit.notes
    few = _panel(n_areas=5, n_years=10, start=7, seed=9)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonUniqueWeightsWarning)
        SyntheticControl().fit(few)


def test_too_few_pre_periods():
    data = _panel(n_years=6, start=1, seed=10)
    with pytest.raises(DesignError, match="only 1 pre-period"):
        SyntheticDiD().fit(data)


def test_design_errors():
    data = _panel(seed=11)
    with pytest.raises(DesignError, match="no row has treated=1"):
        SyntheticDiD().fit(data.assign(treated=0))
    stag = data.copy()
    stag.loc[(stag["area"] == "a01") & (stag["year"] >= 2015), "treated"] = 1
    with pytest.raises(DesignError, match="different years"):
        SyntheticDiD().fit(stag)
    off = data.copy()
    off.loc[(off["area"] == "a00") & (off["year"] == 2019), "treated"] = 0
    with pytest.raises(NonAbsorbingTreatmentError, match="'treated'.*switches off") as info:
        SyntheticDiD().fit(off)
    assert "'a00' (treated from 2017, untreated in 2019)" in str(info.value)
    with pytest.raises(DuplicateRowsError):
        SyntheticDiD().fit(pd.concat([data, data.head(1)]))
    with pytest.raises(MissingColumnError, match="'score'"):
        SyntheticDiD(outcome="score").fit(data)
    with pytest.raises(InvalidValueError, match="0/1"):
        SyntheticDiD().fit(data.assign(treated=data["treated"] * 2))
    two = _panel(n_areas=3, seed=11, treated=("a00", "a01"))
    with pytest.raises(EmptyComparisonGroupError):
        SyntheticDiD().fit(two)


def test_predictors_enter_the_match():
    data = _panel(seed=12)
    data["fsm"] = np.where(data["area"] == "a00", 0.5, 0.2) + 0.01 * data["year"].mod(3)
    data.loc[data["area"] == "a04", "fsm"] = 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonUniqueWeightsWarning)
        plain = SyntheticControl(placebo=False).fit(data)
        heavy = SyntheticControl(predictors=["fsm"], predictor_weights=[100.0], placebo=False)
        heavy = heavy.fit(data)
    assert heavy.unit_weights["a04"] > plain.unit_weights["a04"]
    with pytest.raises(MissingColumnError):
        SyntheticControl(predictors=["nope"]).fit(data)


# ------------------------------------------------------------------ pupil records


def test_area_year_outcomes_from_records_and_cohort():
    from cpdimpact import CohortSpec
    from cpdimpact.datasets import maths_challenge

    rec = maths_challenge(seed=1, scale=0.2)
    panel = area_year_outcomes(rec)
    pupils = rec.pupils.merge(rec.schools[["school", "area"]], on="school")
    expected = pupils.groupby(["area", "year"])["outcome"].agg(["mean", "size"])
    got = panel.set_index(["area", "year"])
    np.testing.assert_allclose(got["outcome"], expected["mean"].reindex(got.index))
    assert (got["n_pupils"] == expected["size"].reindex(got.index)).all()
    treated = panel.loc[panel["treated"] == 1]
    assert set(treated["area"]) == {"Riverton"} and treated["year"].min() == 2021
    cohort = CohortSpec(exposure="school", comparison="never_treated").build(rec)
    pd.testing.assert_frame_equal(area_year_outcomes(cohort), panel)


def test_area_year_outcomes_counts_missing_outcomes():
    pupils = pd.DataFrame(
        {
            "area": ["x", "x", "x", "y"],
            "year": [1, 1, 1, 1],
            "outcome": [1.0, np.nan, 3.0, 5.0],
            "exposed": [True, True, False, False],
        }
    )
    out = area_year_outcomes(pupils).set_index("area")
    assert out.loc["x", "outcome"] == 2.0
    assert out.loc["x", "n_pupils"] == 2 and out.loc["x", "n_missing"] == 1
    assert out.loc["x", "treated"] == 1 and out.loc["y", "treated"] == 0
    with pytest.raises(MissingColumnError, match="exposed"):
        area_year_outcomes(pupils.drop(columns="exposed"))


# ------------------------------------------------------------------ faces


def test_result_faces():
    import matplotlib.pyplot as plt

    with pytest.warns(NonUniqueWeightsWarning):
        comparison = compare_synthetic(_panel(seed=13))
    assert isinstance(comparison, SyntheticComparison)
    table = comparison.to_frame()
    assert list(table["term"]) == ["sc", "sdid", "did"]
    assert {"estimate", "std_error", "p_value", "ci_lower", "p_value_permutation"} <= set(table)
    json.dumps(comparison.to_dict())
    assert "synthetic control" in str(comparison.summary())
    assert "<table>" in comparison._repr_html_()
    assert comparison.unit_weights().shape == (11, 3)
    fit = comparison["sdid"]
    assert "Placebo SE" in str(fit.summary())
    ci = fit.conf_int()
    assert ci.loc["sdid", "ci_lower"] < fit.estimate < ci.loc["sdid", "ci_upper"]
    for kind in ("trajectories", "gaps", "placebo"):
        ax = fit.plot(kind)
        assert ax.get_lines()
        plt.close(ax.figure)
    ax = comparison.plot()
    assert len(ax.get_lines()) >= 4
    plt.close("all")
    with pytest.raises(ValueError):
        fit.plot("nope")
    with pytest.raises(ValueError):
        compare_synthetic(_panel(seed=13), methods=("sc", "xyz"))


# ------------------------------------------------------------------ the example script


def test_maths_challenge_example_runs(tmp_path, capsys):
    import importlib.util
    import sys

    path = Path(__file__).resolve().parent.parent / "examples" / "maths_challenge.py"
    spec = importlib.util.spec_from_file_location("maths_challenge_example", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["maths_challenge_example"] = module
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path), "--scale", "0.2", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "Simulated truth" in out and "sdid" in out
    for name in ("estimates.csv", "estimates.md", "results.json", "trajectories.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "placebo_sdid.png").exists()
    table = pd.read_csv(tmp_path / "estimates.csv")
    assert list(table["term"]) == ["sc", "sdid", "did"]
    # own area-by-year file
    own = tmp_path / "own"
    panel = pd.read_csv(REF / "california_prop99.csv", sep=";")
    panel.to_csv(tmp_path / "prop99.csv", index=False)
    args = ["--area-year", str(tmp_path / "prop99.csv"), "--out", str(own)]
    args += ["--column", "area=State", "--column", "year=Year"]
    args += ["--column", "outcome=PacksPerCapita"]
    assert module.main(args) == 0
    table = pd.read_csv(own / "estimates.csv").set_index("term")
    assert round(table.loc["sdid", "estimate"], 2) == -15.60


def test_block_of_treated_areas_matches_synthdid(prop99):
    # Utah marked treated from 1989 alongside California: synthdid averages the block
    data = prop99.copy()
    data.loc[(data["State"] == "Utah") & (data["Year"] >= 1989), "treated"] = 1
    ref = pd.read_csv(REF / "synthdid_block.csv").set_index("method")["estimate"]
    weights = pd.read_csv(REF / "synthdid_block_weights.csv")
    for method in ("sdid", "sc", "did"):
        fit = SyntheticDiD(method=method, placebo=False, **COLS).fit(data)
        assert fit.treated_areas == ("California", "Utah")
        assert fit.estimate == pytest.approx(ref[method], abs=1e-8)
        omega = weights[(weights["method"] == method) & (weights["kind"] == "omega")]
        omega = omega.set_index("name")["weight"]
        np.testing.assert_allclose(fit.unit_weights.reindex(omega.index), omega, atol=1e-8)
