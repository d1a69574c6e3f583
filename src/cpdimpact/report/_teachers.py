"""The report's teacher sections: did the programme keep teachers, grow leaders, and at what cost?

Two sections, each a list of blocks to put in a :class:`~cpdimpact.report.Document`:

* :func:`teachers_section`: retention curves by arm, the effect on leaving within one, two and
  three years (percentage points and the hazard ratio, with intervals), promotions for a
  leadership strand and the cost per additional teacher retained, from fitted
  :mod:`cpdimpact.survival` results and the spells (:func:`cpdimpact.workforce.spells`) they
  were fitted on;
* :func:`school_turnover_section`: the change in the teacher leaving (or turnover) rate of
  participating schools from school-level workforce statistics
  (:meth:`cpdimpact.workforce.SchoolWorkforce.panel`), by difference-in-differences.

The words follow the headline's rule (:mod:`cpdimpact.report._headline`): an effect is called
positive or negative only when its whole interval lies on one side of no effect; otherwise the
sentence says that we cannot rule out no effect. Every count passes through the report's
suppression rule (:func:`~cpdimpact.report.suppress_small_counts`): teacher counts are small and
identifying.
"""

from __future__ import annotations

import math
import numbers
import textwrap
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._disclosure import is_suppressed
from ..errors import InvalidArgumentError, MissingColumnError
from ._blocks import Figure, Heading, Paragraph, Table
from ._headline import _bound
from ._privacy import published_table

__all__ = [
    "TeacherCost",
    "cost_per_teacher_retained",
    "school_turnover_section",
    "teachers_section",
]

#: What a spell's ending means, by :attr:`cpdimpact.workforce.Spells.outcome`: (the event in
#: words, the state kept while in the spell).
_OUTCOME_WORDS = {
    "teaching": ("left state-funded teaching", "still teaching in state-funded schools"),
    "school": ("left their school", "still in the school they taught in at the start"),
    "promotion": ("were promoted", "not yet promoted"),
}
_ROLE_WORDS = {"senior leader": "the leadership group", "head": "headship"}
_NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
#: Line style, marker and grey of each arm in the retention figure: the arms stay apart in
#: print and for readers who cannot tell colours apart.
_ARM_STYLE = {
    "treated": ("-", "o", "0.0", "Participating teachers"),
    "comparison": ("--", "s", "0.5", "Comparison teachers"),
}


def _years(h: float) -> str:
    n = int(h) if float(h).is_integer() else h
    word = _NUMBER_WORDS.get(n, f"{n:g}") if isinstance(n, int) else f"{n:g}"
    return f"{word} year" if n == 1 else f"{word} years"


def _words(name: object) -> str:
    """A user's label (column or strand name) for prose: underscores read as spaces."""
    return str(name).replace("_", " ")


def _level(alpha: float) -> str:
    return f"{100 * (1 - alpha):g}%"


def _pp(value: float) -> str:
    """A share difference in percentage points, signed, one decimal."""
    text = f"{100 * value:+.1f}"
    return "0.0" if text in ("+0.0", "-0.0") else text


def _share_finding(who: str, others: str, est, lower, upper, level, event, noun, years):
    """A difference in the share of teachers who ``event`` within ``years``, in plain words.

    The headline's rule: an effect is claimed only when the interval lies on one side of
    zero, else "We cannot rule out no effect". ``noun`` names what the programme changes
    ("leaving", "promotion").
    """
    numbers_ = f"{level} confidence interval {_pp(lower)} to {_pp(upper)} percentage points"
    if lower > 0 or upper < 0:
        more, side, how = ("more", "above", "increasing") if lower > 0 else (
            "fewer", "below", "reducing")  # fmt: skip
        return (
            f"Within {years}, {abs(100 * est):.1f} percentage points {more} of {who} {event} "
            f"than of {others} ({numbers_}). The interval lies {side} zero: the data point to "
            f"the programme {how} {noun}."
        )
    return (
        f"We cannot rule out no effect on the share of {who} who {event} within {years}: the "
        f"estimate is {_pp(est)} percentage points, but its {numbers_} includes zero."
    )


def _ratio_finding(ratio: float, lower: float, upper: float, level: str, event: str) -> str:
    """The hazard ratio in plain words; no effect is a ratio of 1."""
    numbers_ = f"hazard ratio {ratio:.2f}; {level} confidence interval {_bound(lower)} to "
    numbers_ += _bound(upper)
    if upper < 1 or lower > 1:
        how = "a lower" if upper < 1 else "a higher"
        side = "below" if upper < 1 else "above"
        return (
            f"In any year, participating teachers {event} at {how} rate than comparison "
            f"teachers ({numbers_}). The interval lies {side} 1, the value for no effect."
        )
    return (
        f"We cannot rule out no effect on the rate at which teachers {event} in any year: "
        f"the hazard ratio is {ratio:.2f}, but its {level} confidence interval, "
        f"{_bound(lower)} to {_bound(upper)}, includes 1, the value for no effect."
    )


def _differences(result) -> pd.DataFrame:
    """The estimator's differences (treated minus comparison share) with its intervals."""
    frame = result.to_frame()
    rows = frame[frame["term"].str.startswith("difference at ")]
    return pd.DataFrame(
        {
            "horizon": result.differences["horizon"].to_numpy(dtype=float),
            "estimate": rows["estimate"].to_numpy(dtype=float),
            "ci_lower": rows["ci_lower"].to_numpy(dtype=float),
            "ci_upper": rows["ci_upper"].to_numpy(dtype=float),
        }
    )


def _shares(result) -> pd.DataFrame:
    """Each arm's share at each horizon, with its interval, from the estimator's frame."""
    frame = result.to_frame()
    out = []
    for arm in ("treated", "comparison"):
        rows = frame[frame["term"].str.startswith(f"{arm} at ")]
        out.append(
            pd.DataFrame(
                {
                    "arm": arm,
                    "horizon": result.differences["horizon"].to_numpy(dtype=float),
                    "share": rows["estimate"].to_numpy(dtype=float),
                    "ci_lower": rows["ci_lower"].to_numpy(dtype=float),
                    "ci_upper": rows["ci_upper"].to_numpy(dtype=float),
                }
            )
        )
    return pd.concat(out, ignore_index=True)


def _spell_frame(spells) -> pd.DataFrame:
    return spells.data if hasattr(spells, "data") else spells


def _arm_counts(spells, result, threshold: int, noun: str) -> pd.DataFrame:
    """Teachers, schools and events by arm as published (counts suppressed)."""
    data = _spell_frame(spells)
    arm, event = result.treatment, result.event
    school = result.cluster or "school"
    for column in (arm, event, school):
        if column not in data.columns:
            raise MissingColumnError(
                f"the spells have no column {column!r}, which the fitted result used; give the "
                f"spells the result was fitted on."
            )
    if result.weights is None:  # without weights the estimator used every row
        counts = {"treated": int((data[arm] == 1).sum()), "comparison": int((data[arm] == 0).sum())}
        if counts != dict(result.n_spells):
            raise InvalidArgumentError(
                f"the spells have {counts['treated']:,} participating and "
                f"{counts['comparison']:,} comparison teachers, but the result was fitted on "
                f"{result.n_spells['treated']:,} and {result.n_spells['comparison']:,}: give "
                "the spells the result was fitted on."
            )
    rows = []
    for code, label in ((1, "Participating"), (0, "Comparison")):
        part = data[data[arm] == code]
        rows.append(
            {
                "Arm": label,
                "Teachers": int(len(part)),
                "Schools": int(part[school].nunique()),
                noun: int(part[event].sum()),
            }
        )
    return published_table(pd.DataFrame(rows), ["Teachers", "Schools", noun], threshold)


#: Thousands separators for the counts (a suppression marker passes through).
_COUNT_FORMATS = {"Teachers": "{:,}", "Schools": "{:,}"}


def _too_few(spells, result, threshold: int, events: str) -> list[str]:
    """Why no estimate can be shown, one phrase per arm: its number of teachers, or its number
    of ``events`` (leavers, promotions), is one the suppression rule hides. A share (or a
    difference from the other arm's share) of so few would let a reader work back to the
    count, and so to the teachers."""
    data = _spell_frame(spells)
    labels = {1: "participating", 0: "comparison"}
    reasons = []
    for code in (1, 0):
        rows = data[result.treatment] == code
        if is_suppressed(int(rows.sum()), threshold):
            reasons.append(f"fewer than {threshold} {labels[code]} teachers")
        elif is_suppressed(int(data.loc[rows, result.event].sum()), threshold):
            reasons.append(f"fewer than {threshold} {labels[code]} teachers who {events}")
    return reasons


def _retention_figure(result, kept: str, name: str, caption: str) -> Figure:
    """Both arms' curves as steps, with a line style, marker and grey per arm."""
    import matplotlib.pyplot as plt  # lazy: importing cpdimpact stays cheap
    from matplotlib.ticker import MaxNLocator

    frame = result.curve_frame()
    fig, ax = plt.subplots(figsize=(7, 4))
    for arm, (style, mark, grey, label) in _ARM_STYLE.items():
        part = frame[frame["arm"] == arm]
        x = np.concatenate([[0.0], part["time"].to_numpy(dtype=float)])
        y = np.concatenate([[1.0], part["survival"].to_numpy(dtype=float)])
        ax.step(
            x, y, where="post", linestyle=style, marker=mark, color=grey, markersize=5, label=label
        )
        for bound in ("ci_lower", "ci_upper"):
            b = np.concatenate([[1.0], part[bound].to_numpy(dtype=float)])
            ax.step(x, b, where="post", linestyle=":", color=grey, linewidth=0.8)
    ax.set_xlabel("Years since the start of the programme")
    ax.set_ylabel(textwrap.fill(f"Share of teachers {kept}", 32))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Teachers {kept}, by arm")
    ax.legend(frameon=False, loc="lower left")
    fig.tight_layout()
    block = Figure(fig, name=name, caption=caption)
    plt.close(fig)
    return block


@dataclass(frozen=True, kw_only=True)
class TeacherCost:
    """The cost per additional teacher retained, with its interval.

    Attributes
    ----------
    cost : float
        The programme's cost in pounds.
    participants : int
        The participating teachers the cost paid for.
    horizon : float
        Years after the start at which retention is compared.
    difference, lower, upper : float
        The difference in the share still in post (participants minus comparison) and its
        interval.
    additional : float
        Additional teachers retained, ``difference * participants``.
    per_teacher : float
        ``cost / additional``; ``nan`` when the difference is not above zero (no teacher
        retained, so no cost per teacher).
    per_teacher_lower, per_teacher_upper : float
        The interval of ``per_teacher``: ``cost / (upper * participants)`` to
        ``cost / (lower * participants)``; the upper end is ``inf`` (unbounded) when the
        difference's interval reaches zero, and both are ``nan`` when it lies below zero.
    """

    cost: float
    participants: int
    horizon: float
    difference: float
    lower: float
    upper: float
    additional: float
    per_teacher: float
    per_teacher_lower: float
    per_teacher_upper: float

    @property
    def unbounded(self) -> bool:
        """The interval of the difference includes zero: no upper limit to the cost."""
        return self.lower <= 0 < self.upper


def cost_per_teacher_retained(
    cost: float, participants: int, horizon: float, difference: float, lower: float, upper: float
) -> TeacherCost:
    r"""The programme's cost per additional teacher retained, with its interval.

    Parameters
    ----------
    cost
        The programme's cost in pounds (everything spent on the participating teachers).
    participants
        The participating teachers the cost paid for.
    horizon
        The years after the start at which retention is compared.
    difference, lower, upper
        The difference in the share still in post at ``horizon``, participants minus
        comparison (e.g. :attr:`cpdimpact.survival.KaplanMeierResult.differences`), and its
        interval.

    Returns
    -------
    TeacherCost

    Raises
    ------
    cpdimpact.errors.InvalidArgumentError
        A cost that is not a positive number of pounds, or participants that are not a
        positive whole number.

    Notes
    -----
    The additional teachers retained are :math:`\Delta \times N` (:math:`\Delta` the
    difference in the share retained, :math:`N` the participants), and the cost per
    additional teacher is :math:`C / (\Delta N)`. The map :math:`\Delta \mapsto C/(\Delta N)`
    is decreasing for :math:`\Delta > 0`, so the interval :math:`[\Delta_l, \Delta_u]` of
    the difference gives :math:`[C/(\Delta_u N), C/(\Delta_l N)]`; when :math:`\Delta_l \le 0`
    the data are consistent with no teacher retained and the upper end is unbounded (Fieller's
    problem for a ratio whose denominator may be zero; Briggs, O'Brien & Blackhouse 2002).

    References
    ----------
    Briggs, A. H., O'Brien, B. J. & Blackhouse, G. (2002). Thinking outside the box: recent
    advances in the analysis and presentation of uncertainty in cost-effectiveness studies.
    *Annual Review of Public Health* 23, 377-401.

    Examples
    --------
    >>> c = cost_per_teacher_retained(200_000, 400, 3, 0.05, 0.01, 0.09)
    >>> round(c.additional), round(c.per_teacher), round(c.per_teacher_upper)
    (20, 10000, 50000)
    """
    if (
        isinstance(cost, bool)
        or not isinstance(cost, numbers.Real)
        or not math.isfinite(cost)
        or cost <= 0
    ):
        raise InvalidArgumentError(
            f"cost must be the programme's cost in pounds, a positive number; got {cost!r}."
        )
    if isinstance(participants, bool) or not isinstance(participants, numbers.Integral):
        raise InvalidArgumentError(
            f"participants must be a whole number of teachers, got {participants!r}."
        )
    if participants <= 0:
        raise InvalidArgumentError(f"participants must be positive, got {participants!r}.")
    n = int(participants)
    with np.errstate(divide="ignore"):
        per = cost / (difference * n) if difference > 0 else math.nan
        if upper <= 0:  # the whole interval says no teacher retained
            low = high = math.nan
        else:
            low = cost / (upper * n)
            high = cost / (lower * n) if lower > 0 else math.inf
    return TeacherCost(
        cost=float(cost),
        participants=n,
        horizon=float(horizon),
        difference=float(difference),
        lower=float(lower),
        upper=float(upper),
        additional=float(difference * n),
        per_teacher=float(per),
        per_teacher_lower=float(low),
        per_teacher_upper=float(high),
    )


def _pounds(value: float) -> str:
    return f"£{value:,.0f}"


def _cost_paragraphs(c: TeacherCost, level: str, kept: str, compared: str) -> list[str]:
    years = _years(c.horizon)
    if c.upper <= 0:
        finding = (
            f"The programme cost {_pounds(c.cost)} for {c.participants:,} participating "
            f"teachers. After {years}, the data do not show more participating teachers "
            f"{kept} than comparison teachers (the whole {level} confidence interval of the "
            "difference lies at or below zero), so no cost per additional teacher retained "
            "can be given."
        )
    elif not c.difference > 0:
        finding = (
            f"The programme cost {_pounds(c.cost)} for {c.participants:,} participating "
            f"teachers. After {years}, the estimated difference in the share {kept} is not "
            "above zero, so no cost per additional teacher retained can be given; at the "
            f"most favourable end of its {level} confidence interval it would be "
            f"{_pounds(c.per_teacher_lower)} per teacher."
        )
    else:
        interval = (
            f"from {_pounds(c.per_teacher_lower)} with no upper limit: the {level} confidence "
            "interval of the difference includes zero, so the data are consistent with no "
            "additional teacher retained, and then any cost per teacher would be possible"
            if c.unbounded
            else f"from {_pounds(c.per_teacher_lower)} to {_pounds(c.per_teacher_upper)} "
            f"({level} confidence interval)"
        )
        finding = (
            f"The programme cost {_pounds(c.cost)} for {c.participants:,} participating "
            f"teachers. After {years}, an estimated {c.additional:.1f} more of them were "
            f"{kept} than if they had left at the comparison teachers' rate: "
            f"{_pounds(c.per_teacher)} per additional teacher retained, {interval}."
        )
    assumptions = (
        f"How this is worked out: the programme's whole cost divided by the additional "
        f"teachers retained, which are the difference in the share {kept} after {years} "
        f"(participating minus comparison teachers) times the number of participating "
        f"teachers. It compares participating teachers with {compared}, and assumes that "
        "the comparison teachers show how many participants would have stayed without the "
        "programme, that the cost paid for all the participating teachers counted here, and "
        "that retention is the only benefit bought: the programme's other aims (better "
        "teaching, pupils' progress, leaders grown) are not netted off, so this overstates "
        "the cost of retention alone."
    )
    return [finding, assumptions]


def _compared_words(spells) -> str:
    data = _spell_frame(spells)
    later = "censored_at_start" in data.columns and bool(data["censored_at_start"].any())
    text = "teachers in post at the same census who did not take part"
    if later:
        text += (
            " (teachers who joined the programme later count as comparison teachers until "
            "they joined)"
        )
    return text


def teachers_section(
    spells,
    retention,
    hazard=None,
    *,
    promotion=None,
    promotion_spells=None,
    cost: float | None = None,
    participants: int | None = None,
    cost_horizon: float | None = None,
    suppress_below: int = 10,
    level: int = 2,
    name: str = "teachers",
) -> list:
    """The "Teachers" section of a report: retention, promotion and the cost per teacher kept.

    Parameters
    ----------
    spells : cpdimpact.workforce.Spells or pandas.DataFrame
        The spells ``retention`` (and ``hazard``) were fitted on, for the counts by arm and
        what leaving means (``Spells.outcome``: leaving state-funded teaching or the school).
    retention : cpdimpact.survival.KaplanMeierResult
        Retention curves by arm and the differences at each horizon (one, two and three
        years by default).
    hazard : cpdimpact.survival.CoxResult, optional
        The hazard ratio of leaving (e.g. cluster-robust by school).
    promotion : cpdimpact.survival.KaplanMeierResult, optional
        Curves of promotion for a leadership strand (fitted on ``promotion_spells``, from
        ``spells(records, outcome="promotion", promotion_to=...)`` restricted to the strand's
        participants and comparison teachers like them).
    promotion_spells : cpdimpact.workforce.Spells or pandas.DataFrame, optional
        The spells ``promotion`` was fitted on; required with ``promotion``.
    cost : float, optional
        The programme's cost in pounds, for the cost per additional teacher retained.
    participants : int, optional
        The participating teachers the cost paid for; default: the participants in
        ``spells``.
    cost_horizon : float, optional
        The horizon of the cost per teacher; default: the last of ``retention``'s horizons.
    suppress_below : int, default 10
        Counts from 1 to ``suppress_below - 1`` are suppressed (0: none); an arm with so few
        teachers has no estimate shown.
    level : int, default 2
        The section heading's level (subsections one below).
    name : str, default "teachers"
        Stem of the figures' file names.

    Returns
    -------
    list
        :class:`Heading`, :class:`Paragraph`, :class:`Table` and :class:`Figure` blocks.

    Raises
    ------
    cpdimpact.errors.InvalidArgumentError
        ``promotion`` without ``promotion_spells``, spells other than those a result was
        fitted on (their teachers by arm differ), a horizon the result does not have, or a bad
        cost.
    cpdimpact.errors.MissingColumnError
        Spells without the columns the result was fitted on.

    See Also
    --------
    school_turnover_section : the school-level section.
    cost_per_teacher_retained : the cost and its interval.

    Notes
    -----
    Counts (teachers, schools, leavers) pass through
    :func:`~cpdimpact.report.suppress_small_counts` with ``suppress_below``. Shares and
    differences are estimates and are shown, as the pupils' effects are, unless an arm has
    fewer teachers, or fewer leavers (promotions), than ``suppress_below``: a share of so few,
    with the number of teachers beside it, or a difference from the other arm's share, would
    give the suppressed count back (secondary disclosure), so no estimate is shown and the
    section says why.

    Examples
    --------
    >>> import warnings
    >>> from cpdimpact.datasets import simulate_careers
    >>> from cpdimpact.survival import KaplanMeier
    >>> from cpdimpact.workforce import spells
    >>> s = spells(simulate_careers("city_partnership", seed=1, scale=0.5))
    >>> km = KaplanMeier(treatment="treated", cluster="school").fit(s.data)
    >>> blocks = teachers_section(s, km, cost=100_000)
    >>> blocks[0].text
    'Teachers'
    """
    if promotion is not None and promotion_spells is None:
        raise InvalidArgumentError(
            "promotion needs promotion_spells=: the spells the promotion curves were fitted "
            "on (for the counts of teachers and promotions by arm)."
        )
    outcome = getattr(spells, "outcome", "teaching")
    event, kept = _OUTCOME_WORDS.get(outcome, _OUTCOME_WORDS["teaching"])
    alpha = retention.alpha
    level_text = _level(alpha)
    sub = min(level + 1, 6)
    baseline = getattr(spells, "baseline", None)
    when = (
        f"in post at the November {baseline - 1} census, at the start of the programme"
        if baseline is not None
        else "in post at the start of the programme"
    )
    compared = _compared_words(spells)
    blocks: list = [
        Heading("Teachers", level=level),
        Paragraph(
            f"Did the programme keep teachers? This section follows every teacher {when}, "
            f"and compares how many of the participating teachers {event} in the following "
            f"years with {compared}. A teacher still in post at the last census is counted "
            "for the years they were seen."
        ),
    ]
    counts = _arm_counts(spells, retention, suppress_below, "Left")
    blocks.append(
        Table(
            counts,
            caption=f"Teachers followed, their schools, and those who {event}",
            formats=_COUNT_FORMATS | {"Left": "{:,}"},
            notes=(_suppression_note(suppress_below),),
        )
    )
    blocks += _excluded(spells, suppress_below)
    hidden = _too_few(spells, retention, suppress_below, event)
    if hidden:
        blocks.append(Paragraph(_hidden_words(hidden)))
        return blocks

    diffs = _differences(retention)
    blocks.append(Heading("Retention", level=sub))
    # the curves are of staying: the difference in the share who left is minus theirs
    findings = [
        _share_finding(
            "participating teachers",
            "comparison teachers",
            -row.estimate,
            -row.ci_upper,
            -row.ci_lower,
            level_text,
            event,
            "leaving",
            _years(row.horizon),
        )
        for row in diffs.itertuples()
    ]
    blocks.append(Paragraph(" ".join(findings)))
    if hazard is not None:
        lower, upper = hazard.hazard_ratio_ci
        adjusted = list(hazard.params.index[1:])
        how = (
            f" It compares teachers with the same {', '.join(map(_words, adjusted))}."
            if adjusted
            else ""
        )
        clustered = (
            " Its interval allows for teachers of one school leaving together."
            if hazard.cluster
            else ""
        )
        blocks.append(
            Paragraph(
                _ratio_finding(hazard.hazard_ratio, lower, upper, _level(hazard.alpha), event)
                + " A hazard ratio below 1 means participants left at a lower rate."
                + how
                + clustered
            )
        )
    blocks.append(
        _retention_figure(
            retention,
            kept,
            f"{name}_retention",
            f"Share of teachers {kept} in each year after the start, participating "
            f"(solid line, circles) and comparison teachers (dashed line, squares), with "
            f"dotted {level_text} confidence intervals.",
        )
    )
    blocks.append(
        Table(
            _effects_table(retention, hazard, diffs, event, level_text),
            caption="The effect on leaving",
            notes=(
                f"Percentage points: the share of participating teachers who {event} minus "
                "that of comparison teachers; below zero means fewer participants left. The "
                "hazard ratio compares the yearly rate of leaving, participants over "
                "comparison teachers.",
            ),
        )
    )
    if cost is not None:
        horizon = float(diffs["horizon"].iloc[-1]) if cost_horizon is None else cost_horizon
        row = diffs.loc[np.isclose(diffs["horizon"], float(horizon))]
        if row.empty:
            raise InvalidArgumentError(
                f"cost_horizon {horizon!r} is not one of the retention horizons "
                f"{diffs['horizon'].tolist()!r}; fit the curves with it in horizons=."
            )
        n = participants if participants is not None else retention.n_spells["treated"]
        row = row.iloc[0]
        c = cost_per_teacher_retained(
            cost, n, horizon, row["estimate"], row["ci_lower"], row["ci_upper"]
        )
        blocks.append(Heading("Cost per additional teacher retained", level=sub))
        blocks += [Paragraph(p) for p in _cost_paragraphs(c, level_text, kept, compared)]
    if promotion is not None:
        blocks += _promotion_blocks(
            promotion_spells, promotion, suppress_below, sub, name, level_text
        )
    return blocks


def _suppression_note(threshold: int) -> str:
    return (
        f"Counts from 1 to {threshold - 1} are suppressed."
        if threshold
        else "Counts are not suppressed."
    )


def _hidden_words(reasons: list[str]) -> str:
    text = " and ".join(reasons)
    return (
        f"{text[0].upper()}{text[1:]}: their share, or its difference from the other group's, "
        "would let a reader work back to individual teachers, so no estimate is shown."
    )


def _excluded(spells, threshold: int) -> list:
    excluded = getattr(spells, "excluded", None)
    if excluded is None or excluded.empty:
        return []
    shown = published_table(excluded, ["teachers"], threshold)
    return [
        Table(
            shown.rename(columns={"reason": "Reason", "teachers": "Teachers"}),
            caption="Teachers not followed, and why",
        )
    ]


def _effects_table(retention, hazard, diffs, event: str, level: str) -> pd.DataFrame:
    """Shares who left by each horizon (1 - S), their difference, then the hazard ratio."""
    shares = _shares(retention)
    effect = f"Difference, percentage points ({level} CI)"

    def left(arm: str, h: float) -> str:
        row = shares[(shares["arm"] == arm) & np.isclose(shares["horizon"], h)].iloc[0]
        return f"{100 * (1 - row.share):.1f}%"

    rows = [
        {
            "Measure": f"Within {_years(r.horizon)}",
            f"Participating: share who {event}": left("treated", r.horizon),
            f"Comparison: share who {event}": left("comparison", r.horizon),
            effect: f"{_pp(-r.estimate)} ({_pp(-r.ci_upper)} to {_pp(-r.ci_lower)})",
        }
        for r in diffs.itertuples()
    ]
    frame = pd.DataFrame(rows)
    if hazard is None:
        return frame.rename(columns={effect: f"Effect ({level} CI)"})
    lower, upper = hazard.hazard_ratio_ci
    ratio = pd.DataFrame(
        {
            "Measure": ["Hazard ratio of leaving"],
            f"Participating: share who {event}": [""],
            f"Comparison: share who {event}": [""],
            effect: [f"{hazard.hazard_ratio:.2f} ({_bound(lower)} to {_bound(upper)})"],
        }
    )
    return pd.concat([frame, ratio], ignore_index=True).rename(
        columns={effect: f"Effect ({level} CI)"}
    )


def _promotion_blocks(spells, result, threshold: int, sub: int, name: str, level: str) -> list:
    data = _spell_frame(spells)
    to = _ROLE_WORDS.get(getattr(spells, "promotion_to", "senior leader"), "leadership")
    strands = (
        sorted({_words(s) for s in data.loc[data[result.treatment] == 1, "strand"].dropna()})
        if "strand" in data.columns
        else []
    )
    who = (
        f"the {' and '.join(strands)} strand" if strands else "the leadership strand"
    ) + "'s participants"
    roles = sorted({_words(r) for r in data["role"].dropna()}) if "role" in data.columns else []
    like = f" ({' or '.join(roles)} at the start)" if roles else ""
    blocks: list = [
        Heading("Promotion to leadership", level=sub),
        Paragraph(
            f"Did the programme grow leaders? This compares how many of {who} were promoted "
            f"to {to} with comparison teachers in the same roles{like}. A teacher who left "
            "teaching before being promoted is counted for the years they were seen."
        ),
        Table(
            _arm_counts(spells, result, threshold, "Promoted"),
            caption=f"Teachers followed for promotion to {to}",
            formats=_COUNT_FORMATS | {"Promoted": "{:,}"},
            notes=(_suppression_note(threshold),),
        ),
    ]
    hidden = _too_few(spells, result, threshold, f"were promoted to {to}")
    if hidden:
        return [*blocks, Paragraph(_hidden_words(hidden))]
    diffs = _differences(result)
    shares = _shares(result)
    sentences = []
    for r in diffs.itertuples():
        # the curves are of "not yet promoted": minus the difference is the share promoted
        est, lower, upper = -r.estimate, -r.ci_upper, -r.ci_lower
        sentences.append(
            _share_finding(
                who,
                "comparison teachers",
                est,
                lower,
                upper,
                level,
                f"were promoted to {to}",
                "promotion",
                _years(r.horizon),
            )
        )
    blocks.append(Paragraph(" ".join(sentences)))
    rows = []
    for r in diffs.itertuples():
        t = shares[(shares["arm"] == "treated") & np.isclose(shares["horizon"], r.horizon)]
        c = shares[(shares["arm"] == "comparison") & np.isclose(shares["horizon"], r.horizon)]
        rows.append(
            {
                "Measure": f"Within {_years(r.horizon)}",
                f"Participating: share promoted to {to}": f"{100 * (1 - t.share.iloc[0]):.1f}%",
                f"Comparison: share promoted to {to}": f"{100 * (1 - c.share.iloc[0]):.1f}%",
                f"Difference, percentage points ({level} CI)": (
                    f"{_pp(-r.estimate)} ({_pp(-r.ci_upper)} to {_pp(-r.ci_lower)})"
                ),
            }
        )
    blocks.append(Table(pd.DataFrame(rows), caption=f"Promotion to {to}"))
    return blocks


#: The school-level rates in words, by :data:`cpdimpact.workforce.SchoolWorkforce` rate name.
_RATE_WORDS = {
    "leaving_rate": "the share of their teachers who left state-funded teaching by the next census",
    "moving_rate": "the share of their teachers who moved to another school by the next census",
    "turnover_rate": "the share of their teachers who left the school (for another school or "
    "out of teaching) by the next census",
    "retention_rate": "the share of their teachers still in the school at the next census",
    "entrant_rate": "the share of their teachers who were new to the school",
}


def school_turnover_section(
    did,
    panel: pd.DataFrame,
    *,
    rate: str = "leaving_rate",
    source: str = "",
    suppress_below: int = 10,
    level: int = 2,
) -> list:
    """The "School turnover" section: a school-level rate compared by difference-in-differences.

    Parameters
    ----------
    did : cpdimpact.did.DiDResult
        The difference-in-differences fitted on ``panel`` (rates are shares, so the estimate
        is shown in percentage points).
    panel : pandas.DataFrame
        The school-by-year panel it was fitted on (:meth:`cpdimpact.workforce.SchoolWorkforce.panel`):
        ``school``, ``year``, ``outcome``, ``weight`` (teachers' FTE) and ``treated``; its
        ``attrs["missing"]`` counts rates left out (suppressed or missing).
    rate : str, default "leaving_rate"
        Which rate the panel holds, for the words.
    source : str, optional
        Where the figures come from ("School workforce in England, school level").
    suppress_below : int, default 10
        Counts from 1 to ``suppress_below - 1`` are suppressed (0: none).
    level : int, default 2
        The heading's level.

    Returns
    -------
    list
        Heading, paragraphs and a table.

    Raises
    ------
    cpdimpact.errors.MissingColumnError
        A panel without ``school``, ``year``, ``outcome``, ``weight`` or ``treated``.

    Examples
    --------
    >>> from cpdimpact.datasets import simulate_careers
    >>> from cpdimpact.did import DiD
    >>> from cpdimpact.workforce import school_workforce
    >>> rec = simulate_careers("city_partnership", seed=1, scale=0.5)
    >>> panel = school_workforce(rec).panel("leaving_rate", rec.participation)
    >>> blocks = school_turnover_section(DiD(weights="weight").fit(panel), panel)
    >>> blocks[0].text
    'School turnover'
    """
    needed = ["school", "year", "outcome", "weight", "treated", "exposed"]
    missing = [c for c in needed if c not in panel.columns]
    if missing:
        raise MissingColumnError(
            f"the school panel has no column(s) {missing!r}; build it with "
            "SchoolWorkforce.panel(rate, participation)."
        )
    what = _RATE_WORDS.get(rate, _words(rate))
    level_text = _level(did.alpha)
    exposed_years = panel.loc[panel["exposed"] == 1, "year"]
    # the comparison schools' "after" starts with the earliest start
    first = int(exposed_years.min()) if len(exposed_years) else int(panel["year"].max()) + 1
    rows = []
    for code, label in ((1, "Participating schools"), (0, "Comparison schools")):
        part = panel[panel["treated"] == code]
        before = part[part["exposed"] == 0] if code else part[part["year"] < first]
        after = part[part["exposed"] == 1] if code else part[part["year"] >= first]

        def mean(frame):
            w = frame["weight"].to_numpy(dtype=float)
            return float(np.sum(w * frame["outcome"].to_numpy(dtype=float)) / w.sum())

        rows.append(
            {
                "Schools": label,
                "Number": int(part["school"].nunique()),
                "Before the start": f"{100 * mean(before):.1f}%" if len(before) else "",
                "After the start": f"{100 * mean(after):.1f}%" if len(after) else "",
            }
        )
    table = published_table(pd.DataFrame(rows), ["Number"], suppress_below)
    estimate, (lower, upper) = did.estimate, (did.ci_lower, did.ci_upper)
    if lower > 0 or upper < 0:
        direction = "rose" if lower > 0 else "fell"
        finding = (
            f"Against the comparison schools, the rate in participating schools {direction} "
            f"by {abs(100 * estimate):.1f} percentage points after the start ({level_text} "
            f"confidence interval {_pp(lower)} to {_pp(upper)}). The interval lies "
            f"{'above' if lower > 0 else 'below'} zero: the data point to a "
            f"{'higher' if lower > 0 else 'lower'} rate."
        )
    else:
        finding = (
            "We cannot rule out no effect on the rate in participating schools: against the "
            f"comparison schools it changed by {_pp(estimate)} percentage points after the "
            f"start, but its {level_text} confidence interval, {_pp(lower)} to {_pp(upper)} "
            "percentage points, includes zero."
        )
    from_ = f" ({source})" if source else ""
    lost = int(panel.attrs.get("missing", 0))
    lost_words = (
        f" Rates for {lost:,} school-years could not be computed (figures missing or "
        "suppressed, or the last year, which has no next census) and are left out."
        if lost
        else ""
    )
    return [
        Heading("School turnover", level=level),
        Paragraph(
            f"School-level workforce statistics{from_} give, for each school and year, "
            f"{what}, counted in full-time equivalents. This compares how that rate changed in "
            "participating schools after the programme started with how it changed in the "
            "comparison schools over the same years, each school-year weighted by its "
            "teachers. It assumes that without the programme both groups' rates would have "
            f"moved in parallel.{lost_words}"
        ),
        Paragraph(finding),
        Table(
            table,
            caption="Rate by group of schools, before and after the start",
            notes=(
                "Rates weighted by teachers' full-time equivalents. "
                + _suppression_note(suppress_below),
            ),
        ),
    ]
