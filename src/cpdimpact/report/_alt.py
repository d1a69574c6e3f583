"""Alternative text for the report's figures: what each figure shows, in numbers, for a reader
who cannot see it (WCAG 2.1, success criterion 1.1.1: a chart's text alternative gives its
information, not only its title).

Each function reads the numbers the figure was drawn from and says what they are, with the
suppression rule of the tables applied to counts.
"""

from __future__ import annotations

import pandas as pd

from ._figures import _ARM_LABELS, count_text

__all__ = ["event_study_alt", "flow_alt", "forest_alt", "trends_alt"]


def _interval(estimate: float, lower: float, upper: float) -> str:
    if pd.isna(estimate):
        return "not estimated"
    return f"{estimate:.2f} ({lower:.2f} to {upper:.2f})"


def forest_alt(groups: pd.DataFrame, scale: str, level: str) -> str:
    """``groups``: ``group, effect_size, ci_lower, ci_upper`` as the forest plot draws them."""
    rows = "; ".join(
        f"{row['group']} {_interval(row['effect_size'], row['ci_lower'], row['ci_upper'])}"
        for _, row in groups.iterrows()
    )
    return f"Chart of the {scale} by group, with {level} confidence intervals: {rows}."


def event_study_alt(result, units: str, level: str) -> str:
    """``result``: any event-study result (its :meth:`event_time_frame`)."""
    frame = result.event_time_frame()
    frame = frame[~frame["reference"].to_numpy(bool)].dropna(subset=["estimate"])
    pre, post = frame[frame.index < 0], frame[frame.index >= 0]

    def excluding_zero(rows) -> int:
        return int(((rows["ci_lower"] > 0) | (rows["ci_upper"] < 0)).sum())

    parts = [
        f"Chart of the effect in {units} by year relative to the start, with {level} "
        "confidence intervals."
    ]
    if len(pre):
        parts.append(
            f"Before the start the {len(pre)} estimates lie between "
            f"{pre['estimate'].min():.2f} and {pre['estimate'].max():.2f}; "
            f"{excluding_zero(pre)} of their intervals exclude zero."
        )
    if len(post):
        shown = ", ".join(
            f"{'+' if e >= 0 else ''}{e:.2f} in year {t}" for t, e in post["estimate"].items()
        )
        parts.append(
            f"From the start: {shown}; {excluding_zero(post)} of {len(post)} intervals exclude "
            "zero."
        )
    return " ".join(parts)


def trends_alt(means: pd.DataFrame, outcome: str) -> str:
    """``means``: :meth:`Cohort.mean_outcomes <cpdimpact.cohort.Cohort.mean_outcomes>`;
    ``outcome``: what they are means of, in words (the figure's axis label)."""
    lines = []
    for label, series in means.items():
        known = series.dropna()
        if known.empty:
            continue
        first, last = known.index[0], known.index[-1]
        lines.append(f"{label}: {known.iloc[0]:.1f} in {first} and {known.iloc[-1]:.1f} in {last}")
    gaps = [int(y) for y in means.index if means.loc[y].isna().all()]
    missing = (
        f" No data in {', '.join(map(str, gaps))} (no tests): the lines break there."
        if gaps
        else ""
    )
    return f"Chart of the {outcome} by test year: {'; '.join(lines)}.{missing}"


def flow_alt(stages: pd.DataFrame, exclusions: pd.DataFrame, threshold: int, record: str) -> str:
    """``stages`` and ``exclusions``: the flow log's tables, counts suppressed as in the
    diagram."""
    main = stages[stages["arm"] == "all"].set_index("stage")["pupils"]
    arms = stages[(stages["arm"] != "all") & (stages["stage"] == "analysed")]
    counts = lambda n: count_text(n, threshold)  # noqa: E731
    text = f"Flow diagram: {counts(main.iloc[0])} {record}s available"
    if "analysed" in main.index:
        text += f", {counts(main['analysed'])} analysed"
    if len(arms):
        shown = ", ".join(
            f"{counts(r['pupils'])} {_ARM_LABELS.get(str(r['arm']), r['arm']).lower()}"
            for _, r in arms.iterrows()
        )
        text += f" ({shown})"
    text += "."
    if len(exclusions):
        reasons = exclusions.groupby("reason", sort=False)["pupils"].sum()
        reasons = reasons.sort_values(ascending=False, kind="stable")
        shown = "; ".join(f"{reason}: {counts(n)}" for reason, n in reasons.items())
        text += f" Excluded ({record}s): {shown}."
    return text
