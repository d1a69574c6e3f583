"""The report's Teachers and School turnover sections (issue 18 item 4).

Every number the sections print is checked against the estimators' own results, with the
expected text computed here from their raw parts (differences and standard errors, Cox
coefficients and covariance, the DiD estimate, the spells' rows), never through the code under
test; the cost per additional teacher retained is worked out by hand. Small teacher counts are
suppressed by the report's rule, and the main text passes the report's no-code scan.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cpdimpact.datasets import simulate_careers
from cpdimpact.did import DiD
from cpdimpact.errors import InvalidArgumentError, MissingColumnError
from cpdimpact.report import (
    Document,
    Figure,
    Heading,
    Paragraph,
    Table,
    cost_per_teacher_retained,
    school_turnover_section,
    teachers_section,
)
from cpdimpact.survival import CoxModel, KaplanMeier
from cpdimpact.workforce import school_workforce, spells
from test_report_plain import _offences

Z = stats.norm.ppf(0.975)
ARMS = {"duration": "duration", "event": "event", "treatment": "treated", "cluster": "school"}
COST = 600_000


def _pp(value: float) -> str:
    text = f"{100 * value:+.1f}"
    return "0.0" if text in ("+0.0", "-0.0") else text


def _strand(promotion, strand="headship"):
    data = promotion.data
    chosen = (data["treated"] == 1) & (data["strand"] == strand)
    like = (data["treated"] == 0) & data["role"].isin(set(data.loc[chosen, "role"]))
    return dataclasses.replace(promotion, data=data[chosen | like].reset_index(drop=True))


@pytest.fixture(scope="module")
def city():
    records = simulate_careers("city_partnership", seed=1)
    leaving = spells(records, outcome="teaching")
    promotion = _strand(spells(records, outcome="promotion", promotion_to="head"))
    panel = school_workforce(records).panel("leaving_rate", records.participation)
    return {
        "records": records,
        "spells": leaving,
        "km": KaplanMeier(**ARMS).fit(leaving.data),
        "cox": CoxModel(**ARMS).fit(leaving.data),
        "promotion": promotion,
        "km_promotion": KaplanMeier(**ARMS).fit(promotion.data),
        "panel": panel,
        "did": DiD(weights="weight").fit(panel),
    }


@pytest.fixture(scope="module")
def section(city):
    return teachers_section(
        city["spells"],
        city["km"],
        city["cox"],
        promotion=city["km_promotion"],
        promotion_spells=city["promotion"],
        cost=COST,
    )


def _tables(blocks) -> dict[str, tuple]:
    return {b.caption: (b.headers(), b.cells()) for b in blocks if isinstance(b, Table)}


def _text(blocks) -> str:
    return " ".join(b.text for b in blocks if isinstance(b, Paragraph))


def _after(blocks, heading: str) -> list:
    """The blocks of the subsection ``heading`` (up to the next heading)."""
    at = next(i for i, b in enumerate(blocks) if isinstance(b, Heading) and b.text == heading)
    end = next(
        (i for i, b in enumerate(blocks[at + 1 :], at + 1) if isinstance(b, Heading)),
        len(blocks),
    )
    return blocks[at + 1 : end]


def test_retention_effects_are_the_estimators(city, section):
    km, cox = city["km"], city["cox"]
    _, cells = _tables(section)["The effect on leaving"]
    d = km.differences
    for row, h in zip(cells, (1, 2, 3), strict=False):
        line = d[d["horizon"] == h].iloc[0]
        # the curves are of staying: the share who left is 1 - S, its difference minus S's
        lower, upper = -line.estimate - Z * line.std_error, -line.estimate + Z * line.std_error
        assert row[0] == f"Within {['one', 'two', 'three'][h - 1]} year{'s' * (h > 1)}"
        assert row[3] == f"{_pp(-line.estimate)} ({_pp(lower)} to {_pp(upper)})"
        for arm, cell in (("treated", row[1]), ("comparison", row[2])):
            r = km.retention
            share = r.loc[(r["arm"] == arm) & (r["horizon"] == h), "survival"].iloc[0]
            assert cell == f"{100 * (1 - share):.1f}%"
    b, se = float(cox.params.iloc[0]), math.sqrt(float(cox.cov.iloc[0, 0]))
    ratio = f"{math.exp(b):.2f} ({math.exp(b - Z * se):.2f} to {math.exp(b + Z * se):.2f})"
    assert cells[3] == ("Hazard ratio of leaving", "", "", ratio)
    # the words say the same numbers, and that no interval excludes no effect here
    words = _text(_after(section, "Retention"))
    assert f"hazard ratio is {math.exp(b):.2f}" in words
    assert words.count("We cannot rule out no effect") == 4
    assert "includes 1, the value for no effect" in words


def test_the_counts_are_the_spells(city, section):
    data = city["spells"].data
    _, cells = _tables(section)[
        "Teachers followed, their schools, and those who left state-funded teaching"
    ]
    for row, code in zip(cells, (1, 0), strict=True):
        arm = data[data["treated"] == code]
        assert row[1:] == (
            f"{len(arm):,}",
            f"{arm['school'].nunique():,}",
            f"{int(arm['event'].sum()):,}",
        )


def test_cost_per_teacher_retained_by_hand(city, section):
    data, d = city["spells"].data, city["km"].differences
    n = int((data["treated"] == 1).sum())
    line = d[d["horizon"] == 3].iloc[0]
    lower, upper = line.estimate - Z * line.std_error, line.estimate + Z * line.std_error
    assert lower < 0 < line.estimate  # this draw: a positive estimate, an interval with 0
    per_teacher = COST / (line.estimate * n)
    cheapest = COST / (upper * n)
    words = _text(_after(section, "Cost per additional teacher retained"))
    assert f"cost £{COST:,} for {n:,} participating teachers" in words
    assert f"an estimated {line.estimate * n:.1f} more of them" in words
    assert f"£{per_teacher:,.0f} per additional teacher retained" in words
    assert f"from £{cheapest:,.0f} with no upper limit" in words
    for assumption in ("comparison teachers show how many participants would have stayed",
                       "retention is the only benefit"):  # fmt: skip
        assert assumption in words


def test_cost_with_an_interval_above_zero():
    """A strong simulated effect: the interval of the cost is bounded, by hand."""
    records = simulate_careers("city_partnership", seed=2, leave_hr=dict.fromkeys(
        ("whole_school", "teacher_educator", "headship"), 0.3))  # fmt: skip
    leaving = spells(records)
    km = KaplanMeier(**ARMS).fit(leaving.data)
    line = km.differences.iloc[-1]
    lower, upper = line.estimate - Z * line.std_error, line.estimate + Z * line.std_error
    assert lower > 0
    n = 350  # the teachers the cost paid for, given by the evaluator
    blocks = teachers_section(leaving, km, cost=100_000, participants=n)
    words = _text(blocks)
    low, high = 100_000 / (upper * n), 100_000 / (lower * n)
    assert f"£{100_000 / (line.estimate * n):,.0f} per additional teacher retained" in words
    assert f"from £{low:,.0f} to £{high:,.0f} (95% confidence interval)" in words
    fewer = f"Within three years, {100 * line.estimate:.1f} percentage points fewer of "
    assert fewer + "participating teachers left state-funded teaching" in words
    assert "The interval lies below zero: the data point to the programme reducing leaving" in words


@pytest.mark.parametrize(
    ("difference", "lower", "upper", "expected"),
    [
        (0.05, 0.01, 0.09, (10_000.0, 200_000 / 36, 50_000.0)),
        (0.05, -0.01, 0.09, (10_000.0, 200_000 / 36, math.inf)),
        (-0.01, -0.05, 0.02, (math.nan, 25_000.0, math.inf)),
        (-0.03, -0.05, -0.01, (math.nan, math.nan, math.nan)),
    ],
)
def test_cost_per_teacher_retained_cases(difference, lower, upper, expected):
    c = cost_per_teacher_retained(200_000, 400, 3, difference, lower, upper)
    got = (c.per_teacher, c.per_teacher_lower, c.per_teacher_upper)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert c.additional == pytest.approx(difference * 400)
    assert c.unbounded == (lower <= 0 < upper)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cost": -5.0}, "cost must be the programme's cost in pounds"),
        ({"cost": float("nan")}, "cost must be"),
        ({"participants": 0}, "participants must be positive"),
        ({"participants": 2.5}, "whole number of teachers"),
    ],
)
def test_cost_bad_arguments(kwargs, match):
    args = {"cost": 1000.0, "participants": 10} | kwargs
    with pytest.raises(InvalidArgumentError, match=match):
        cost_per_teacher_retained(args["cost"], args["participants"], 3, 0.1, 0.0, 0.2)


def test_promotion_is_the_estimators(city):
    """The numbers of the promotion subsection are the estimator's (shown here with no
    suppression asked: with the default threshold this draw's few promotions hide them, see
    below)."""
    km, data = city["km_promotion"], city["promotion"].data
    unsuppressed = teachers_section(
        city["spells"],
        city["km"],
        city["cox"],
        promotion=km,
        promotion_spells=city["promotion"],
        cost=COST,
        suppress_below=0,
    )
    blocks = _after(unsuppressed, "Promotion to leadership")
    _, cells = _tables(blocks)["Promotion to headship"]
    for row, h in zip(cells, (1, 2, 3), strict=True):
        line = km.differences[km.differences["horizon"] == h].iloc[0]
        # curves of "not yet promoted": the share promoted is 1 - S, its difference minus S's
        lower = -line.estimate - Z * line.std_error
        upper = -line.estimate + Z * line.std_error
        assert row[3] == f"{_pp(-line.estimate)} ({_pp(lower)} to {_pp(upper)})"
        treated = km.retention.query("arm == 'treated' and horizon == @h")["survival"].iloc[0]
        assert row[1] == f"{100 * (1 - treated):.1f}%"
    words = _text(blocks)
    line = km.differences[km.differences["horizon"] == 2].iloc[0]
    assert -line.estimate - Z * line.std_error > 0  # this draw: more promoted within two years
    assert (
        f"Within two years, {-100 * line.estimate:.1f} percentage points more of the headship "
        "strand's participants were promoted to headship than of comparison teachers"
    ) in words
    assert "the data point to the programme increasing promotion" in words
    assert "the headship strand's participants" in words
    assert "comparison teachers in the same roles (senior leader at the start)" in words
    assert set(data.loc[data["treated"] == 1, "strand"]) == {"headship"}


def test_small_counts_are_suppressed(city, section):
    data = city["promotion"].data
    promoted = [int(data.loc[data["treated"] == c, "event"].sum()) for c in (1, 0)]
    assert all(1 <= p < 10 for p in promoted)  # this draw: few promotions in both arms
    headers, cells = _tables(section)["Teachers followed for promotion to headship"]
    assert [row[headers.index("Promoted")] for row in cells] == ["<10", "<10"]
    shown = teachers_section(
        city["promotion"], city["km_promotion"], suppress_below=0
    )  # no suppression asked: the counts themselves
    _, cells = _tables(shown)["Teachers followed, their schools, and those who were promoted"]
    assert [row[3] for row in cells] == [str(p) for p in promoted]


def test_few_promotions_show_no_share_that_would_give_the_count_back(city, section):
    """A share of the 23 headship participants, beside their number, would give back the
    promotions the table suppresses ('<10'): 18.3% of 23 is 4. So no share, difference or
    interval is published for them, and the section says why."""
    blocks = _after(section, "Promotion to leadership")
    words = _text(blocks)
    assert "Fewer than 10 participating teachers who were promoted to headship" in words
    assert "no estimate is shown" in words
    assert "%" not in words and "Promotion to headship" not in _tables(blocks)


def test_an_arm_of_few_teachers_shows_no_estimate(city):
    data = city["spells"].data
    few = pd.concat([data[data["treated"] == 1].head(6), data[data["treated"] == 0]])
    km = KaplanMeier(**ARMS).fit(few)
    blocks = teachers_section(few, km, cost=COST)
    _, cells = _tables(blocks)[
        "Teachers followed, their schools, and those who left state-funded teaching"
    ]
    assert cells[0][1:3] == ("<10", "<10")
    words = _text(blocks)
    assert "Fewer than 10 participating teachers" in words and "no estimate is shown" in words
    assert not any(isinstance(b, Figure) for b in blocks)
    assert "%" not in words and "£" not in words  # no share, no cost


def test_school_turnover_is_the_did(city):
    did, panel = city["did"], city["panel"]
    blocks = school_turnover_section(did, panel)
    words = _text(blocks)
    half = stats.t.ppf(0.975, did.df) * did.std_error  # t on G - 1, as the DiD reports
    lower, upper = did.estimate - half, did.estimate + half
    assert f"changed by {_pp(did.estimate)} percentage points" in words
    assert f"{_pp(lower)} to {_pp(upper)} percentage points, includes zero" in words
    _, cells = _tables(blocks)["Rate by group of schools, before and after the start"]
    start = int(panel.loc[panel["exposed"] == 1, "year"].min())
    for row, code in zip(cells, (1, 0), strict=True):
        part = panel[panel["treated"] == code]
        before, after = part[part["year"] < start], part[part["year"] >= start]
        assert row[1] == f"{part['school'].nunique()}"
        for cell, frame in ((row[2], before), (row[3], after)):
            rate = np.average(frame["outcome"], weights=frame["weight"])
            assert cell == f"{100 * rate:.1f}%"
    assert f"Rates for {panel.attrs['missing']:,} school-years" in words
    hidden = _tables(school_turnover_section(did, panel, suppress_below=100))
    assert [r[1] for r in hidden["Rate by group of schools, before and after the start"]
            [1]] == ["<100", "<100"]  # fmt: skip


def test_the_retention_figure_reads_in_grey(section):
    figure = next(b for b in section if isinstance(b, Figure))
    ax = figure.figure.axes[0]
    curves = [line for line in ax.get_lines() if line.get_label() in (
        "Participating teachers", "Comparison teachers")]  # fmt: skip
    assert len(curves) == 2
    styles = {(c.get_linestyle(), c.get_marker()) for c in curves}
    assert len(styles) == 2 and all(m not in ("None", "", None) for _, m in styles)
    assert ax.get_xlabel() == "Years since the start of the programme"
    assert "_" not in ax.get_ylabel() and "Share of teachers" in ax.get_ylabel()


def test_no_code_or_formula_in_the_sections(city, section):
    blocks = [*section, *school_turnover_section(city["did"], city["panel"])]
    markdown = Document(title="Teachers", blocks=tuple(blocks)).to_markdown()
    assert not _offences(markdown), "\n".join(_offences(markdown))
    assert not re.search(r"\b(treated|duration|event)\b", _text(blocks))


def test_bad_arguments(city):
    km, leaving = city["km"], city["spells"]
    with pytest.raises(InvalidArgumentError, match="promotion needs promotion_spells"):
        teachers_section(leaving, km, promotion=city["km_promotion"])
    with pytest.raises(InvalidArgumentError, match="cost_horizon 5"):
        teachers_section(leaving, km, cost=COST, cost_horizon=5)
    with pytest.raises(InvalidArgumentError, match="the result was fitted on 400 and 1,567"):
        teachers_section(leaving.data.iloc[1:], km)
    with pytest.raises(InvalidArgumentError, match="fitted on"):  # the other spells
        teachers_section(leaving, km, promotion=city["km"], promotion_spells=city["promotion"])
    with pytest.raises(MissingColumnError, match="'treated'"):
        teachers_section(leaving.data.drop(columns="treated"), km)
    with pytest.raises(MissingColumnError, match="exposed"):
        school_turnover_section(city["did"], city["panel"].drop(columns="exposed"))


def test_leaving_the_school_and_other_variants_read_plainly(city):
    """The no-code scan on the other shapes of the section: leaving the school, no Cox model,
    a cost whose difference lies below zero, an arm too small to show."""
    records = city["records"]
    moving = spells(records, outcome="school")
    km = KaplanMeier(**ARMS).fit(moving.data)
    blocks = teachers_section(moving, km, cost=COST, cost_horizon=1)
    words = _text(blocks)
    assert "who left their school within one year" in words
    assert "Share of teachers still in the school" in " ".join(
        b.caption for b in blocks if isinstance(b, Figure)
    )
    # a programme after which more participants leave: no cost per teacher retained
    worse = spells(simulate_careers("city_partnership", seed=2, leave_hr=dict.fromkeys(
        ("whole_school", "teacher_educator", "headship"), 3.0)))  # fmt: skip
    km_worse = KaplanMeier(**ARMS).fit(worse.data)
    line = km_worse.differences.iloc[-1]
    assert line.estimate + Z * line.std_error < 0
    worse_blocks = teachers_section(worse, km_worse, cost=COST)
    assert "no cost per additional teacher retained can be given" in _text(worse_blocks)
    assert "the data point to the programme increasing leaving" in _text(worse_blocks)
    few = city["spells"].data.groupby("treated").head(5)
    for variant in (blocks, worse_blocks, teachers_section(few, KaplanMeier(**ARMS).fit(few))):
        markdown = Document(title="T", blocks=tuple(variant)).to_markdown()
        assert not _offences(markdown), "\n".join(_offences(markdown))


def test_the_estimators_take_spells_as_they_come(city):
    """spells() names its columns as the survival estimators expect by default (duration,
    event, the arm treated): no column names to pass."""
    data = city["spells"].data
    default = KaplanMeier(cluster="school").fit(data)
    pd.testing.assert_frame_equal(default.differences, city["km"].differences)
    assert CoxModel(cluster="school").fit(data).hazard_ratio == city["cox"].hazard_ratio
