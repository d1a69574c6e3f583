"""Multilevel models: lme4/lmerTest/nlme parity, properties, known truth and bad input."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from cpdimpact.errors import InvalidValueError, MissingColumnError, SmallSampleWarning
from cpdimpact.multilevel import MultilevelModel, NestingError

REF = Path(__file__).parent / "reference" / "multilevel"
CASES = json.loads((REF / "reference.json").read_text())["cases"]
NLME = json.loads((REF / "nlme_between_within.json").read_text())
RTOL = 1e-5  # lme4's optimum is polished to ~1e-9 in theta (see the README there)


def _model(case: dict, **options) -> MultilevelModel:
    return MultilevelModel(
        outcome=case["formula"].split("~")[0].strip(),
        covariates=tuple(case["covariates"]),
        groups=tuple(case["groups"]),
        slopes=case["slopes"],
        method=case["method"],
        **options,
    )


_FITS: dict[str, object] = {}


def _fit(name: str):
    if name not in _FITS:
        case = CASES[name]
        _FITS[name] = _model(case).fit(pd.read_csv(REF / case["data"]))
    return _FITS[name]


def _series(d: dict) -> pd.Series:
    return pd.Series(d, dtype=float)


@pytest.mark.parametrize("name", list(CASES))
def test_matches_lme4(name):
    case, fit = CASES[name], _fit(name)
    fixed = _series(case["fixed"])
    np.testing.assert_allclose(fit.params[fixed.index], fixed, rtol=RTOL)
    se = _series(case["std_errors"])
    np.testing.assert_allclose(fit.std_errors[se.index], se, rtol=RTOL)
    vc = _series(case["variance_components"])
    # A variance at exactly zero (singular fit) is compared absolutely.
    np.testing.assert_allclose(fit.variance_components[vc.index], vc, rtol=RTOL, atol=1e-9)
    assert fit.loglik == pytest.approx(case["loglik"], rel=1e-8)
    assert fit.n_obs == case["n_obs"]
    assert dict(fit.n_groups) == case["n_groups"]
    assert fit.singular == case["singular"]
    assert fit.converged


@pytest.mark.parametrize("name", list(CASES))
def test_satterthwaite_df_matches_lmertest(name):
    case, fit = CASES[name], _fit(name)
    df = _series(case["satterthwaite_df"])
    # lmerTest differentiates numerically too: agreement to 1e-4 is the honest bound.
    np.testing.assert_allclose(fit.df[df.index], df, rtol=1e-4)


@pytest.mark.parametrize("name", list(CASES))
def test_random_effects_match_lme4(name):
    case, fit = CASES[name], _fit(name)
    for group, rows in case["random_effects"].items():
        ours = fit.random_effects[group]
        id_columns = list(fit.model.groups[: fit.model.groups.index(group) + 1])
        for row in rows:
            mask = ours["term"] == row["term"]
            for column, value in zip(id_columns, row["ids"], strict=True):
                mask &= ours[column] == value
            match = ours[mask]
            assert len(match) == 1, (group, row)
            assert match["estimate"].item() == pytest.approx(row["estimate"], rel=1e-4, abs=1e-7)
            assert match["cond_sd"].item() == pytest.approx(row["cond_sd"], rel=1e-4, abs=1e-7)


@pytest.mark.parametrize("name", [n for n in NLME if n != "versions"])
def test_between_within_df_matches_nlme(name):
    case = CASES[name]
    fit = _model(case, df_method="between_within").fit(pd.read_csv(REF / case["data"]))
    expected = _series(NLME[name]["between_within_df"])
    np.testing.assert_array_equal(fit.df[expected.index], expected)


def test_published_eefanalytics_crt_values():
    """crtData as published by eefAnalytics 1.1.5 (docs/sources.md, "Trial analyses")."""
    fit = _fit("crt_conditional")
    assert fit.params["Intervention"] == pytest.approx(3.109709, abs=5e-7)
    assert fit.std_errors["Intervention"] == pytest.approx(1.209383, abs=5e-7)
    assert fit.variance_components["School"] == pytest.approx(5.673723, abs=5e-7)
    assert fit.variance_components["Residual"] == pytest.approx(14.779399, abs=5e-7)
    assert fit.icc["School"] == pytest.approx(0.28, abs=0.005)
    effects = fit.random_effects["School"].set_index("School")["estimate"]
    np.testing.assert_allclose(
        effects.loc[1:6], [-2.75, 1.44, 3.21, 4.13, -0.48, -2.35], atol=0.005
    )


# ---------------------------------------------------------------------- other faces
def test_faces_and_formula():
    case = CASES["three_level_reml"]
    data = pd.read_csv(REF / case["data"])
    fit = MultilevelModel.from_formula(case["formula"]).fit(data)
    np.testing.assert_allclose(fit.params, _fit("three_level_reml").params, rtol=1e-10)
    frame = fit.to_frame()
    assert list(frame.columns[:7]) == [
        "term",
        "estimate",
        "std_error",
        "statistic",
        "p_value",
        "ci_lower",
        "ci_upper",
    ]
    assert "teacher" in str(fit.summary())
    assert "<table>" in fit._repr_html_()
    assert fit.plot() is not None and fit.plot(group="teacher") is not None
    assert set(fit.icc.index) == {"school", "teacher"}
    wide, narrow = fit.conf_int(0.01), fit.conf_int(0.2)
    assert (wide["ci_lower"] < narrow["ci_lower"]).all()
    normal = _model(case, df_method="normal").fit(data)
    assert np.isinf(normal.df).all()


def test_formula_variants():
    m = MultilevelModel.from_formula("y ~ treat + prior + (1 + treat | school)")
    assert m.groups == ("school",) and dict(m.slopes) == {"school": ("treat",)}
    m = MultilevelModel.from_formula("y ~ 1 + (1 | school) + (1 | school:teacher)")
    assert m.groups == ("school", "teacher") and m.covariates == ()
    with pytest.raises(ValueError, match="intercept"):
        MultilevelModel.from_formula("y ~ 0 + x + (1 | school)")
    with pytest.raises(ValueError, match="outermost"):
        MultilevelModel(groups=("school", "teacher"), slopes={"teacher": ("x",)})


# ---------------------------------------------------------------------- properties
def _small_two_level(seed: int, n_groups: int, sd_group: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 15, n_groups)
    school = np.repeat(np.arange(n_groups), sizes)
    x = rng.normal(size=school.size)
    y = 1 + 0.5 * x + rng.normal(0, sd_group, n_groups)[school] + rng.normal(size=school.size)
    return pd.DataFrame({"school": school, "x": x, "y": y})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n_groups=st.integers(8, 25),
    sd_group=st.floats(0.0, 2.0),
    method=st.sampled_from(["reml", "ml"]),
)
@example(seed=8, n_groups=10, sd_group=0.5, method="reml")  # optimum near, not at, zero
@example(seed=0, n_groups=8, sd_group=0.5, method="reml")
def test_agrees_with_statsmodels_mixedlm(seed, n_groups, sd_group, method):
    data = _small_two_level(seed, n_groups, sd_group)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ref = smf.mixedlm("y ~ x", data, groups=data["school"]).fit(reml=method == "reml")
        except np.linalg.LinAlgError:  # statsmodels fails on some near-singular data
            ref = None
    assume(ref is not None and ref.converged and np.isfinite(ref.llf))
    fit = MultilevelModel(
        outcome="y", covariates=("x",), groups=("school",), method=method, df_method="normal"
    ).fit(data)
    # Our optimum is never worse than statsmodels'.
    assert fit.loglik >= ref.llf - 1e-6
    # Compare estimates where both reached the same optimum (statsmodels sometimes reports
    # convergence short of it) and the group variance is clearly positive (near zero the
    # likelihood is too flat for two optimisers to agree on where it peaks).
    assume(abs(fit.loglik - ref.llf) < 1e-5 and ref.cov_re.iloc[0, 0] > 0.05 * ref.scale)
    np.testing.assert_allclose(
        fit.params.to_numpy(), ref.fe_params.to_numpy(), rtol=1e-3, atol=1e-4
    )
    assert fit.variance_components["school"] == pytest.approx(ref.cov_re.iloc[0, 0], rel=1e-2)
    assert fit.variance_components["Residual"] == pytest.approx(ref.scale, rel=1e-3)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), a=st.floats(0.1, 10), b=st.floats(-50, 50))
def test_rescaling_and_row_order(seed, a, b):
    data = _small_two_level(seed, 12, 1.0)
    model = MultilevelModel(outcome="y", covariates=("x",), df_method="normal")
    base = model.fit(data)
    shuffled = model.fit(data.sample(frac=1, random_state=seed))
    np.testing.assert_allclose(shuffled.params, base.params, rtol=1e-6, atol=1e-9)
    scaled = model.fit(data.assign(y=a * data["y"] + b))
    np.testing.assert_allclose(scaled.params["x"], a * base.params["x"], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(
        scaled.variance_components, a**2 * base.variance_components, rtol=1e-4, atol=1e-10
    )


def test_input_never_modified():
    data = pd.read_csv(REF / "three_level.csv")
    data.loc[3, "prior"] = np.nan
    before = data.copy(deep=True)
    MultilevelModel(
        outcome="y", covariates=("prior", "fsm"), groups=("school", "teacher"), df_method="normal"
    ).fit(data)
    pd.testing.assert_frame_equal(data, before)


# ---------------------------------------------------------------------- known truth
def test_recovers_known_truth_in_three_levels():
    """Treatment effect, its Satterthwaite interval and the variances, over 60 simulations."""
    rng = np.random.default_rng(2026)
    truth = {"treat": 0.3, "school": 0.15, "teacher": 0.05, "Residual": 0.8}
    rows = []
    for _ in range(60):
        n_schools = 24
        teachers = rng.integers(2, 5, n_schools)
        school = np.repeat(np.arange(n_schools), teachers)
        pupils = rng.integers(5, 20, school.size)
        teacher_code = np.repeat(np.arange(school.size), pupils)
        school_of_pupil = school[teacher_code]
        treat = (np.arange(n_schools) % 2)[school_of_pupil]
        y = (
            truth["treat"] * treat
            + rng.normal(0, np.sqrt(truth["school"]), n_schools)[school_of_pupil]
            + rng.normal(0, np.sqrt(truth["teacher"]), school.size)[teacher_code]
            + rng.normal(0, np.sqrt(truth["Residual"]), teacher_code.size)
        )
        data = pd.DataFrame(
            {"school": school_of_pupil, "teacher": teacher_code, "treat": treat, "y": y}
        )
        fit = MultilevelModel(outcome="y", covariates=("treat",), groups=("school", "teacher")).fit(
            data
        )
        ci = fit.conf_int().loc["treat"]
        rows.append(
            {
                "estimate": fit.params["treat"],
                "covered": ci["ci_lower"] <= truth["treat"] <= ci["ci_upper"],
                **{k: fit.variance_components[k] for k in ("school", "teacher", "Residual")},
            }
        )
    study = pd.DataFrame(rows)
    n = len(study)
    est = study["estimate"]
    assert abs(est.mean() - truth["treat"]) < 3 * est.std() / np.sqrt(n)
    # 95% intervals: at least 51 of 60 cover (P(X <= 50) is about 1.1% if coverage is 95%).
    assert study["covered"].sum() >= 51
    for component in ("school", "Residual"):
        values = study[component]
        assert abs(values.mean() - truth[component]) < 3 * values.std() / np.sqrt(n)


# ---------------------------------------------------------------------- bad input
@pytest.fixture
def three_level() -> pd.DataFrame:
    return pd.read_csv(REF / "three_level.csv")


def _fit_quiet(data, **kw):
    kw.setdefault("df_method", "normal")
    return MultilevelModel(outcome="y", **kw).fit(data)


def test_missing_values_dropped_and_counted_or_raised(three_level):
    data = three_level.copy()
    data.loc[[0, 5], "y"] = np.nan
    data.loc[9, "prior"] = np.nan
    fit = _fit_quiet(data, covariates=("prior",), groups=("school", "teacher"))
    assert fit.n_dropped == 3 and fit.n_obs == len(data) - 3
    assert any("3 rows" in note for note in fit.notes)
    with pytest.raises(InvalidValueError, match=r"3 rows.*\['y', 'prior'\].*rows 0, 5, 9"):
        _fit_quiet(data, covariates=("prior",), groups=("school",), missing="raise")


def test_collinear_covariates_are_named(three_level):
    data = three_level.assign(prior2=2 * three_level["prior"] + 1)
    with pytest.raises(InvalidValueError, match=r"\['prior2'\].*collinear"):
        _fit_quiet(data, covariates=("prior", "prior2"), groups=("school",))


def test_grouping_column_with_one_level(three_level):
    with pytest.raises(InvalidValueError, match="'area' has a single level"):
        _fit_quiet(three_level.assign(area=1), groups=("area", "school"))


def test_clusters_of_one_pupil(three_level):
    data = three_level.assign(pupil=np.arange(len(three_level)))
    with pytest.raises(InvalidValueError, match="single pupil"):
        _fit_quiet(data, groups=("school", "pupil"))
    # Some singleton teachers are fine (lme4 fits them); a majority earns a warning.
    assert _fit_quiet(three_level, groups=("school", "teacher")).converged
    # Ids restart within each school; all but a tenth of the pupils sit alone with a teacher.
    within = three_level.groupby("school").cumcount()
    mostly_single = three_level.assign(teacher=np.where(within % 10 == 0, 0, within + 1))
    with pytest.warns(SmallSampleWarning, match="single pupil"):
        _fit_quiet(mostly_single, groups=("school", "teacher"))


def test_ids_not_nested_as_declared(three_level):
    # Globally unique teacher ids, one of which is recorded in two schools.
    data = three_level.assign(teacher=three_level.groupby(["school", "teacher"]).ngroup())
    moved = data.index[data["school"] == data["school"].iloc[-1]][:3]
    data.loc[moved, "teacher"] = data["teacher"].iloc[0]
    with pytest.raises(NestingError, match="not nested as declared"):
        _fit_quiet(data, groups=("school", "teacher"))


def test_non_numeric_covariate_suggests_dummies(three_level):
    data = three_level.assign(band=np.where(three_level["prior"] > 0, "high", "low"))
    with pytest.raises(InvalidValueError, match="get_dummies"):
        _fit_quiet(data, covariates=("band",), groups=("school",))


def test_missing_column(three_level):
    with pytest.raises(MissingColumnError, match="'ks2'"):
        MultilevelModel(outcome="ks2").fit(three_level)
