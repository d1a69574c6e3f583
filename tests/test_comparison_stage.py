"""The comparison-group stage of the evaluation: matching or weighting schools before the
estimate, with the weights reaching every estimator and the report."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from conftest import run_quietly
from cpdimpact import CohortSpec, Evaluation
from cpdimpact.comparison import EntropyBalancing, NearestMatching, school_characteristics
from cpdimpact.datasets import city_partnership
from cpdimpact.did import DiD
from cpdimpact.errors import CpdImpactWarning, DesignError
from cpdimpact.multilevel import MultilevelDiD

COVARIATES = ["level", "trend", "fsm_share", "size"]


@pytest.fixture(scope="module")
def records():
    return city_partnership(seed=21, scale=0.3)


@pytest.fixture(scope="module")
def matched(records):
    spec = NearestMatching(covariates=COVARIATES, caliper=0.2)
    return run_quietly(Evaluation(comparison=spec, estimator=DiD(), prior_bands=0), records)


def test_matched_estimate_is_the_weighted_did_on_the_matched_schools(records, matched):
    """The same numbers by hand: characteristics, matching, weights attached, a weighted DiD."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        cohort = CohortSpec().build(records)
        weights = NearestMatching(covariates=COVARIATES, caliper=0.2).fit(
            school_characteristics(records)
        )
        pupils = weights.attach(cohort.pupils, unit="school", name="w")
        by_hand = DiD(weights="w").fit(pupils)
    head = matched.groups[0].did
    assert head.estimate == pytest.approx(by_hand.estimate, rel=1e-10)
    assert head.std_error == pytest.approx(by_hand.std_error, rel=1e-10)
    assert matched.comparison.n_treated == weights.n_treated
    assert set(matched.cohort.pupils["school"]) == set(pupils["school"])


def test_flow_log_counts_the_schools_the_comparison_design_left_out(records, matched):
    flow = matched.cohort.flow
    available = flow.count("available")
    assert available == len(records.pupils)
    assert available - flow.exclusions["pupils"].sum() == flow.count("analysed")
    row = flow.exclusions.iloc[0]
    left_out = matched.comparison.weights.index[matched.comparison.weights == 0]
    assert "comparison design" in row["reason"]
    assert row["schools"] == len(left_out)
    assert row["pupils"] == int(records.pupils["school"].isin(left_out).sum())
    # Attrition is measured within the design: the schools left out are not attrition.
    assert matched.attrition.overall == 0.0


def test_entropy_weights_reach_did_multilevel_and_the_report(records, tmp_path):
    spec = EntropyBalancing(covariates=COVARIATES)
    for estimator in (DiD(), MultilevelDiD()):
        result = run_quietly(
            Evaluation(comparison=spec, estimator=estimator, gaps=(), prior_bands=0), records
        )
        assert result.groups[0].did is not None
        assert result.comparison.method == "entropy"
    # Uniform weights would give the unweighted estimate: entropy weights must change it.
    plain = run_quietly(Evaluation(estimator=DiD(), gaps=(), prior_bands=0), records)
    weighted = run_quietly(
        Evaluation(comparison=spec, estimator=DiD(), gaps=(), prior_bands=0), records
    )
    assert weighted.groups[0].did.estimate != pytest.approx(plain.groups[0].did.estimate)
    weighted.save(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "## Comparison group" in md and "entropy balancing" in md
    assert (tmp_path / "figures" / "love_plot.png").exists()
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["comparison"]["method"] == "entropy"
    after = [r for r in payload["comparison"]["balance"] if r["sample"] == "after"]
    assert max(abs(r["std_mean_diff"]) for r in after) < 1e-6  # means balanced exactly


def test_comparison_design_errors(records):
    spec = NearestMatching(covariates=COVARIATES)
    with pytest.raises(DesignError, match="never take part"):
        run_quietly(
            Evaluation(cohort=CohortSpec(comparison="not_yet_treated"), comparison=spec), records
        )
    with pytest.raises(DesignError, match="both weight the rows"):
        run_quietly(Evaluation(comparison=spec, estimator=DiD(weights="prior")), records)


def _weighting_study(seeds, scale):
    rows = []
    for seed in seeds:
        records = city_partnership(seed=seed, scale=scale)
        truth = records.truth.effect_size
        evaluation = Evaluation(
            # Four moments from 20 comparison schools can be out of reach (the design error
            # says so); the level and FSM share, which selection acts on, are enough here.
            comparison=EntropyBalancing(covariates=["level", "fsm_share"]),
            estimator=DiD(),
            gaps=(),
            prior_bands=0,
        )
        es = run_quietly(evaluation, records).effect_size
        rows.append(((es.estimate - truth) / es.std_error, es.ci_lower <= truth <= es.ci_upper))
    return np.array(rows, dtype=float)


def test_entropy_weighted_did_recovers_the_simulated_truth():
    """Schools join more often the more disadvantaged their pupils (selection on FSM share);
    entropy balancing on the pre-period characteristics, then the weighted DiD, must stay
    unbiased for the effect on the joining schools with honest intervals (reduced size)."""
    study = _weighting_study(range(300, 308), scale=0.25)
    z, covered = study[:, 0], study[:, 1]
    assert abs(z.mean()) < 3 / np.sqrt(len(z))
    assert covered.sum() >= 6  # P(at most 5 of 8 cover | 95%) is about 0.6%


@pytest.mark.slow
def test_entropy_weighted_did_recovers_the_simulated_truth_full_size():
    study = _weighting_study(range(400, 500), scale=0.5)
    z, covered = study[:, 0], study[:, 1]
    assert abs(z.mean()) < 3 / np.sqrt(len(z))
    assert 0.89 <= covered.mean() <= 0.99


def test_comparison_table_in_a_spec_file():
    from cpdimpact.spec_file import SpecError, load_spec_text

    base = '[data]\nsimulate = "city_partnership"\n[comparison]\n'
    spec = load_spec_text(
        base + 'kind = "nearest"\ncovariates = ["level", "trend"]\ncaliper = 0.2\n'
    )
    assert spec.evaluation.comparison == NearestMatching(covariates=["level", "trend"], caliper=0.2)
    spec = load_spec_text(base + 'kind = "entropy"\ncovariates = ["level"]\nmoments = 2\n')
    assert spec.evaluation.comparison == EntropyBalancing(covariates=["level"], moments=2)
    with pytest.raises(SpecError, match=r":4: \[comparison\] kind: expected one of"):
        load_spec_text(base + 'kind = "matching"\n')
    with pytest.raises(SpecError, match=r":5: \[comparison\] calliper: unknown key"):
        load_spec_text(base + 'kind = "nearest"\ncalliper = 0.2\ncovariates = ["level"]\n')


def test_comparison_paragraph_suppresses_small_school_counts(matched):
    import dataclasses

    from cpdimpact.pipeline import ReportOptions

    used = matched.comparison.n_treated
    assert used >= 10  # published as it is under the default threshold
    text = matched.report().to_markdown().split("## Comparison group")[1].split("**")[0]
    assert f"{used} of " in text
    strict = dataclasses.replace(
        matched,
        evaluation=dataclasses.replace(
            matched.evaluation, report=ReportOptions(suppress_below=used + 1)
        ),
    )
    text = strict.report().to_markdown().split("## Comparison group")[1].split("**")[0]
    assert f"{used} of " not in text and f"\\<{used + 1} of " in text
