"""The report's headline in plain words (issue 16): positive, negative and null findings are
worded by where the interval lies, and the demo report opens with the answer."""

from __future__ import annotations

import math
import re
import warnings

import pytest

from conftest import make_tables
from cpdimpact import Evaluation, Records
from cpdimpact.datasets import city_partnership
from cpdimpact.errors import CpdImpactWarning
from cpdimpact.report._headline import finding_sentence

WHO = ("Pupils in participating schools", "pupils in the comparison schools")


def test_a_clearly_positive_finding():
    text = finding_sentence(*WHO, 0.07, 0.03, 0.10, 1, "95%")
    assert text == (
        "Pupils in participating schools made about one month's additional progress compared "
        "with pupils in the comparison schools (effect size 0.07; 95% confidence interval 0.03 "
        "to 0.10). The interval lies above zero: the data point to a positive effect."
    )


def test_a_clearly_negative_finding():
    text = finding_sentence(*WHO, -0.19, -0.30, -0.05, -3, "90%")
    assert text.startswith(
        "Pupils in participating schools made about 3 months' less progress than pupils in "
        "the comparison schools (effect size -0.19; 90% confidence interval -0.30 to -0.05)."
    )
    assert text.endswith("The interval lies below zero: the data point to a negative effect.")


@pytest.mark.parametrize(
    ("estimate", "lower", "upper", "months", "about"),
    [
        (0.02, -0.03, 0.07, 1, "0.02 (about one month's additional progress)"),
        (-0.05, -0.12, 0.01, -1, "-0.05 (about one month's less progress)"),
        (0.00, -0.03, 0.03, 0, "0.00 (no months' progress either way)"),
    ],
)
def test_an_interval_that_includes_zero_says_we_cannot_rule_out_no_effect(
    estimate, lower, upper, months, about
):
    text = finding_sentence(*WHO, estimate, lower, upper, months, "95%")
    assert text.startswith("We cannot rule out no effect for pupils in participating schools")
    assert f"the estimate is {about}, but its 95% confidence interval" in text
    assert "positive effect" not in text and "negative effect" not in text


def test_a_small_but_clear_effect_is_not_printed_as_an_interval_from_zero():
    text = finding_sentence(*WHO, 0.012, 0.002, 0.03, 0, "95%")
    assert "slightly more progress than pupils in the comparison schools" in text
    assert "less than one month's worth" in text
    assert "interval 0.002 to 0.03" in text  # not "0.00 to 0.03 ... lies above zero"


def test_a_group_without_an_estimate():
    nan = math.nan
    text = finding_sentence(*WHO, nan, nan, nan, nan, "95%")
    assert (
        text
        == "Pupils in participating schools: no effect could be estimated (the tables below say why)."
    )


@pytest.fixture(scope="module")
def demo_markdown():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        result = Evaluation(subgroups=("fsm",), seed=1).run(city_partnership(seed=7, scale=0.3))
    return result, result.report().to_markdown()


def test_the_report_opens_with_the_answer_in_words_then_the_caveats(demo_markdown):
    result, md = demo_markdown
    after = md.split("## Headline findings\n\n", 1)[1]
    first = after.split("\n\n", 1)[0]
    head = result.headline.set_index("group")
    for group, who in (
        ("All pupils", "Pupils in participating schools"),
        ("FSM pupils", "Pupils eligible for free school meals (FSM) in participating schools"),
    ):
        row = head.loc[group]
        assert who.lower() in first.lower()
        assert f"{row['ci_lower']:.2f} to {row['ci_upper']:.2f}" in first
        assert f" {row['effect_size']:.2f}" in first
    assert "not chosen at random" in first


def test_the_caveats_sit_right_after_the_headline_table():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        result = Evaluation().run(Records(**make_tables(n_schools=8, n_treated=4)))
    md = result.report().to_markdown()
    table = md.index("**Impact on attainment**")
    caveats = md.index("### Caveats")
    assert table < caveats < md.index("## Design")
    assert "clusters" in md[caveats : md.index("## Design")]


def test_the_headline_paragraph_holds_no_code_or_formula(demo_markdown):
    _, md = demo_markdown
    first = md.split("## Headline findings\n\n", 1)[1].split("\n\n", 1)[0]
    assert not re.search(r"[A-Za-z_]\w*\(|=|`|_[a-z]", first), first
