"""The multilevel DiD stage and its place in the evaluation pipeline."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import make_tables
from cpdimpact import CohortSpec, DiD, Evaluation, MultilevelDiD, Records
from cpdimpact.datasets import city_partnership
from cpdimpact.errors import CpdImpactWarning, DesignError
from cpdimpact.estimator import ModelBased
from cpdimpact.multilevel import MultilevelModel


@pytest.fixture(scope="module")
def cohort():
    return CohortSpec(covariates=("prior",)).build(city_partnership(seed=4, scale=0.3))


def test_equals_the_underlying_multilevel_model(cohort):
    res = MultilevelDiD(covariates=("prior",)).fit(cohort.pupils)
    # The same model written out by hand: arm, year dummies, exposure, prior, school/year.
    data = cohort.pupils.assign(
        treated=cohort.pupils["treated"].astype(float),
        exposed=cohort.pupils["exposed"].astype(float),
        **{f"y{y}": (cohort.pupils["year"] == y).astype(float) for y in cohort.years[1:]},
    )
    by_hand = MultilevelModel(
        outcome="outcome",
        covariates=("treated", *[f"y{y}" for y in cohort.years[1:]], "exposed", "prior"),
        groups=("school", "year"),
        check_nesting=False,
    ).fit(data)
    assert res.estimate == pytest.approx(by_hand.params["exposed"], rel=1e-8)
    assert res.std_error == pytest.approx(by_hand.std_errors["exposed"], rel=1e-6)
    assert res.df == pytest.approx(by_hand.df["exposed"], rel=1e-4)
    # The effect-size SD: total variance of the unconditional model of the comparison arm.
    comparison = data[data["treated"] == 0]
    unconditional = MultilevelModel(
        outcome="outcome",
        covariates=tuple(f"y{y}" for y in cohort.years[1:]),
        groups=("school", "year"),
        check_nesting=False,
        inference=ModelBased("normal"),
    ).fit(comparison)
    total = unconditional.variance_components[["school", "year", "Residual"]].sum()
    assert res.effect_size_sd == pytest.approx(np.sqrt(total), rel=1e-8)


def test_agrees_with_fixed_effects_did(cohort):
    ml = MultilevelDiD(covariates=("prior",)).fit(cohort.pupils)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        fe = DiD(covariates=("prior",)).fit(cohort.pupils)
    # Two estimators of one effect on the same data: close relative to their SEs.
    assert abs(ml.estimate - fe.estimate) < 0.5 * fe.std_error


def test_faces(cohort):
    res = MultilevelDiD(groups=("school", "teacher")).fit(cohort.pupils)
    assert list(res.to_frame()["term"]) == ["exposed"]
    assert "Multilevel" in str(res.summary())
    assert "<table>" in res._repr_html_()
    assert res.plot() is not None
    assert res.cov_type.startswith("model-based (REML)")
    assert res.conf_int().loc["exposed", "ci_lower"] < res.estimate
    assert (
        "teacher within school-year within school"
        in MultilevelDiD(groups=("school", "teacher")).describe()
    )


def test_no_exposure_variation_is_an_error(cohort):
    with pytest.raises(DesignError, match="exposed"):
        MultilevelDiD().fit(cohort.pupils.assign(exposed=False))
    with pytest.raises(ValueError, match="cannot also be a group"):
        MultilevelDiD(groups=("school", "year"))


def test_pipeline_uses_the_models_sd_for_every_group(tmp_path):
    records = city_partnership(seed=8, scale=0.3)
    result = Evaluation(estimator=MultilevelDiD(covariates=("prior",))).run(records)
    sd = result.groups[0].did.effect_size_sd
    assert result.effect_size_sd == sd
    for group in result.groups:
        es = group.effect_size
        assert es.estimate == pytest.approx(es.correction * group.did.estimate / sd)
    paths = result.save(tmp_path)
    md = paths["report.md"].read_text()
    assert "Multilevel difference-in-differences" in md
    assert "unconditional multilevel model" in md
    with pytest.raises(ValueError, match="pupil records"):
        Evaluation(estimator=MultilevelDiD(), level="unit_year")


def test_pipeline_never_modifies_inputs():
    tables = make_tables(n_schools=12, n_treated=6)
    before = {k: v.copy(deep=True) for k, v in tables.items()}
    Evaluation(estimator=MultilevelDiD(), event_study=None).run(Records(**tables))
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(frame, before[name])


def test_recovers_known_truth_through_the_pipeline():
    evaluation = Evaluation(
        estimator=MultilevelDiD(covariates=("prior",), inference=ModelBased("between_within")),
        event_study=None,
        subgroups=(),
    )
    rows = []
    for seed in range(300, 316):
        records = city_partnership(seed=seed, scale=0.25)
        result = evaluation.run(records)
        es = result.effect_size
        truth = records.truth.att / result.effect_size_sd
        rows.append(((es.estimate - truth) / es.std_error, es.ci_lower <= truth <= es.ci_upper))
    z = np.array([r[0] for r in rows])
    covered = sum(r[1] for r in rows)
    assert abs(z.mean()) < 3 * z.std(ddof=1) / np.sqrt(len(z))
    # 16 replications of 95% intervals: at least 13 cover (P(X <= 12) is about 0.7%).
    assert covered >= 13


def test_pipeline_output_is_reproducible(tmp_path):
    records = city_partnership(seed=12, scale=0.25)
    evaluation = Evaluation(estimator=MultilevelDiD(covariates=("prior",)), seed=12)
    first = evaluation.run(records).save(tmp_path / "a")
    second = evaluation.run(records).save(tmp_path / "b")
    for name in ("results.json", "report.md"):
        assert first[name].read_bytes() == second[name].read_bytes()
