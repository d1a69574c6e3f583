"""What flows through ``Evaluation.run``: the seed, alpha, warnings, and the user's own names."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import make_tables, run_quietly
from cpdimpact import CohortSpec, DiD, Evaluation, EventStudy, Records
from cpdimpact.did import StaggeredDiD
from cpdimpact.errors import DesignError
from cpdimpact.pipeline import SEED_STAGES, stage_seed


def _hub_records():
    from cpdimpact.datasets import hub_rollout

    return hub_rollout(seed=2, scale=0.04)


# ---------------------------------------------------------------------- seed
def _seeded_staggered(**kwargs) -> Evaluation:
    return Evaluation(
        cohort=CohortSpec(comparison="staggered"),
        estimator=StaggeredDiD(n_bootstrap=49, control_group="not_yet_treated", **kwargs),
        subgroups=(),
        gaps=(),
        prior_bands=0,
        seed=1,
    )


def test_seeded_staggered_bootstrap_is_reproducible():
    records = _hub_records()
    first = run_quietly(_seeded_staggered(), records)
    second = run_quietly(_seeded_staggered(), records)
    assert first.to_json() == second.to_json()
    assert first.estimator.seed == 1  # the headline estimator receives the seed itself
    assert first.groups[0].did.std_error == second.groups[0].did.std_error
    # and it is the seed that fixes the draws: another seed gives other bootstrap errors
    other = run_quietly(dataclasses.replace(_seeded_staggered(), seed=2), records)
    assert other.groups[0].did.std_error != first.groups[0].did.std_error


def test_an_estimators_own_seed_takes_precedence():
    records = _hub_records()
    result = run_quietly(_seeded_staggered(seed=99), records)
    assert result.estimator.seed == 99
    direct = (
        run_quietly(dataclasses.replace(_seeded_staggered(seed=99), seed=5), records).groups[0].did
    )
    assert direct.std_error == result.groups[0].did.std_error


def test_stage_seeds_are_fixed_per_stage():
    assert stage_seed(7, "estimator") == 7
    derived = {stage: stage_seed(7, stage) for stage in SEED_STAGES}
    assert len(set(derived.values())) == len(SEED_STAGES)
    child = np.random.SeedSequence(7).spawn(3)[SEED_STAGES["comparison"]]
    assert derived["comparison"] == int(child.generate_state(1, np.uint32)[0])


def test_random_order_matching_receives_a_seed():
    from cpdimpact.comparison import NearestMatching

    tables = make_tables(n_schools=20, n_treated=8, pupils_per_class=3)
    spec = Evaluation(
        estimator=DiD(),
        event_study=None,
        subgroups=(),
        gaps=(),
        prior_bands=0,
        comparison=NearestMatching(covariates=("level", "trend"), order="random"),
        seed=3,
    )
    first = run_quietly(spec, Records(**tables))
    second = run_quietly(spec, Records(**tables))
    assert first.to_json() == second.to_json()
    assert first.comparison.spec.seed == stage_seed(3, "comparison")
    assert spec.comparison.seed is None  # the user's spec is not modified
    own = dataclasses.replace(spec, comparison=dataclasses.replace(spec.comparison, seed=11))
    assert run_quietly(own, Records(**tables)).comparison.spec.seed == 11


# ---------------------------------------------------------------------- alpha
@pytest.mark.filterwarnings("ignore::cpdimpact.errors.FewClustersWarning")
def test_alpha_sets_every_interval_and_label(tmp_path):
    tables = make_tables(n_schools=12, n_treated=6)
    evaluation = Evaluation(alpha=0.10, prior_bands=2)
    result = run_quietly(evaluation, Records(**tables))
    pupils = result.cohort.pupils
    did = result.groups[0].did
    direct = DiD(alpha=0.10).fit(pupils)
    assert (did.ci_lower, did.ci_upper) == pytest.approx((direct.ci_lower, direct.ci_upper))
    assert did.alpha == 0.10
    es = result.effect_size
    assert es.alpha == 0.10
    assert (es.ci_upper - es.ci_lower) == pytest.approx(
        (did.ci_upper - did.ci_lower) * es.estimate / did.estimate
    )
    coefs = result.event_study.coefficients
    direct_es = EventStudy(alpha=0.10).fit(pupils).coefficients
    assert coefs["ci_lower"].to_numpy() == pytest.approx(direct_es["ci_lower"].to_numpy())
    assert all(g.alpha == 0.10 for g in result.gaps)
    assert all(g.effect_size.alpha == 0.10 for g in (*result.groups, *result.breakdown) if g.did)
    paths = result.save(tmp_path)
    summary = str(result.summary())
    md = paths["report.md"].read_text()
    assert "90% CI" in summary and "95%" not in summary
    assert "90%" in md and "95%" not in md
    assert "95%" not in paths["results.json"].read_text()


def test_alpha_reaches_the_staggered_aggregates():
    records = _hub_records()
    evaluation = Evaluation(
        cohort=CohortSpec(comparison="staggered"),
        estimator=StaggeredDiD(n_bootstrap=0, control_group="not_yet_treated"),
        alpha=0.10,
        subgroups=(),
        gaps=(),
        prior_bands=0,
    )
    result = run_quietly(evaluation, records)
    assert result.estimator.alpha == 0.10
    assert result.staggered.dynamic.alpha == 0.10
    md = result.report().to_markdown()
    assert "90%" in md and "95%" not in md


def test_an_estimator_alpha_that_contradicts_the_evaluation_is_refused():
    tables = make_tables()
    evaluation = Evaluation(estimator=DiD(alpha=0.10), alpha=0.05)
    with pytest.raises(DesignError, match=r"DiD\(alpha=0\.1\).*Evaluation\(alpha=0\.05\)"):
        run_quietly(evaluation, Records(**tables))
    # the same level given twice is no contradiction
    result = run_quietly(Evaluation(estimator=DiD(alpha=0.10), alpha=0.10), Records(**tables))
    assert result.groups[0].did.alpha == 0.10
