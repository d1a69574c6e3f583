"""One small-count disclosure rule: every output path publishes the same count the same way.

The rule (``cpdimpact/_disclosure.py``): with threshold ``t`` > 0, counts from 1 to ``t - 1``
are published as ``"<t"``; 0 and counts from ``t`` up as they are; ``t = 0`` publishes every
count. The expected markers below are written out by hand, and each path a count can take to
the reader (tables, sentences and figure labels, ``results.json``) must give them; a second
copy of the rule that drifts fails here.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from cpdimpact import Evaluation
from cpdimpact._disclosure import is_suppressed, published_count
from cpdimpact.datasets import city_partnership
from cpdimpact.errors import CpdImpactWarning
from cpdimpact.evaluation import ReportOptions
from cpdimpact.report import suppress_small_counts
from cpdimpact.report._figures import count_text
from cpdimpact.report._privacy import published_table
from cpdimpact.report.evaluation import attrition_hidden, headline_table
from cpdimpact.report.publish import published_json_tables

#: (count, threshold, as published), by hand.
CASES = [
    (0, 10, 0),
    (1, 10, "<10"),
    (9, 10, "<10"),
    (10, 10, 10),
    (11, 10, 11),
    (3, 0, 3),
    (0, 0, 0),
    (4, 5, "<5"),
    (5, 5, 5),
    (1, 1, 1),
    (1, 2, "<2"),
]


@pytest.mark.parametrize(("count", "threshold", "shown"), CASES)
def test_every_path_publishes_a_count_alike(count, threshold, shown):
    assert published_count(count, threshold) == shown
    assert is_suppressed(count, threshold) == isinstance(shown, str)
    assert count_text(count, threshold, grouping=False) == str(shown)
    frame = pd.DataFrame({"n": [count]})
    assert published_table(frame, ["n"], threshold)["n"].iloc[0] == shown
    if threshold:
        assert suppress_small_counts(frame, "n", threshold=threshold)["n"].iloc[0] == shown

    class Rates:  # what attrition_hidden reads of AttritionRates
        randomised = (count, 50)
        analysed = (40, 45)

    assert attrition_hidden(Rates, threshold) == isinstance(shown, str)


@pytest.fixture(scope="module")
def result():
    records = city_partnership(seed=4, scale=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        return Evaluation(event_study=None, prior_bands=0).run(records)


def test_report_table_and_results_json_publish_the_same_counts(result):
    """A threshold between the headline's counts: the printed headline table and
    ``results.json`` hide the same cells with the same marker."""
    import dataclasses

    head = result.headline
    counts = ["pupils_treated", "pupils_comparison", "schools_treated", "schools_comparison"]
    values = sorted({int(v) for v in head[counts].to_numpy().ravel()})
    threshold = values[len(values) // 2]  # some counts below it, some not
    assert any(v < threshold for v in values if v) and any(v >= threshold for v in values)
    shown = dataclasses.replace(
        result,
        evaluation=dataclasses.replace(
            result.evaluation, report=ReportOptions(suppress_below=threshold)
        ),
    )
    json_rows = published_json_tables(shown)["headline"]
    table = headline_table(shown, suppress_below=threshold)
    pupils = next(c for c in table.columns if c.startswith("Pupils"))
    schools = next(c for c in table.columns if c.startswith("Schools"))
    for row, (_, printed), (_, raw) in zip(
        json_rows, table.iterrows(), head.iterrows(), strict=True
    ):
        for key in counts:  # as the one rule publishes the raw count
            assert row[key] == published_count(int(raw[key]), threshold)
        # printed with thousands separators (2,675); a marker as it is
        shown = {k: f"{v:,}" if isinstance(v, int) else v for k, v in row.items()}
        assert printed[pupils] == f"{shown['pupils_treated']}; {shown['pupils_comparison']}"
        assert printed[schools] == f"{shown['schools_treated']}; {shown['schools_comparison']}"


def test_a_result_republished_with_another_threshold_suppresses_every_sentence():
    """The staggered note naming the schools behind the estimate is written when published,
    under the report options of that publication (it was written once during the run, so a
    result republished with a higher threshold kept counts the new threshold hides)."""
    import dataclasses
    import json

    from cpdimpact import CohortSpec, StaggeredDiD
    from cpdimpact.datasets import hub_rollout

    records = hub_rollout(seed=2, scale=0.04)
    evaluation = Evaluation(
        cohort=CohortSpec(comparison="staggered"),
        estimator=StaggeredDiD(control_group="not_yet_treated", n_bootstrap=0),
        subgroups=(),
        gaps=(),
        prior_bands=0,
        report=ReportOptions(suppress_below=0),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        shown = evaluation.run(records)
    hidden = dataclasses.replace(
        shown,
        evaluation=dataclasses.replace(evaluation, report=ReportOptions(suppress_below=10**6)),
    )
    schools = int(shown.headline.loc[0, "schools_treated"])
    open_note = json.loads(shown.to_json())["staggered"]["arms_behind"]
    hidden_note = json.loads(hidden.to_json())["staggered"]["arms_behind"]
    assert f"treated: {schools} schools in" in open_note
    assert "treated: <1000000 schools in" in hidden_note
    assert f"{schools} schools" not in hidden_note
    assert "<1000000 schools in" in hidden.report().to_markdown().replace("\\<", "<")
