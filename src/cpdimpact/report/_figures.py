"""Report figures that carry counts or user-supplied labels: the flow diagram and forest plot.

Both draw with matplotlib. Any text that may come from the user (subgroup labels, exclusion
reasons) passes through :func:`plot_text`, so that a ``$`` never switches matplotlib into
mathtext (an unbalanced ``$`` makes rendering fail), and every count passes through
:func:`count_text`, so the figure obeys the same small-number suppression as the tables.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd

from .._disclosure import published_count
from ._format import is_missing, one_line

__all__ = ["count_text", "plot_flow_diagram", "plot_forest", "plot_text"]

_STAGE_LABELS = {
    "available": "Available",
    "eligible": "Eligible",
    "assigned": "Assigned to an arm",
    "analysed": "Analysed",
}
_ARM_LABELS = {"treated": "Intervention", "comparison": "Comparison", "all": "All"}


def plot_text(text: object, *, width: int | None = None) -> str:
    r"""Plain text safe for a matplotlib label: one line (or wrapped), ``$`` escaped.

    Examples
    --------
    >>> from cpdimpact.report._figures import plot_text
    >>> print(plot_text("Costs $5 per   pupil"))
    Costs \$5 per pupil
    """
    line = one_line(text).replace("\\", "\\\\").replace("$", r"\$")
    if width is None:
        return line
    return "\n".join(textwrap.wrap(line, width=width, break_long_words=True)) or ""


def count_text(value: object, threshold: int, *, grouping: bool = True) -> str:
    """A count as published: ``"<{threshold}"`` from 1 to ``threshold - 1`` when suppressing.

    Other counts print as integers, with thousands separators when ``grouping``.

    Examples
    --------
    >>> from cpdimpact.report._figures import count_text
    >>> count_text(3, 10), count_text(0, 10), count_text(14194, 10), count_text(3, 0)
    ('<10', '0', '14,194', '3')
    """
    if is_missing(value):
        return "\u2014"
    number = published_count(int(value), threshold)
    if isinstance(number, str):
        return number
    return f"{number:,}" if grouping else str(number)


def _counts(
    row, threshold: int, *, teachers: bool, record: str = "pupil record", unit: str = "school"
) -> str:
    parts = [f"{unit}s {count_text(row['schools'], threshold)}"]
    if teachers:
        parts.append(f"teachers {count_text(row['teachers'], threshold)}")
    parts.append(f"{record}s {count_text(row['pupils'], threshold)}")
    return "; ".join(parts)


def _box(ax, x: float, y: float, text: str, *, face: str = "white"):
    """A rounded box of ``text`` centred at ``(x, y)``; returns the box (its frame patch), for
    connectors to meet."""
    label = ax.text(
        x,
        y,
        text,
        ha="center",
        va="center",
        fontsize=8,
        wrap=False,
        bbox={"boxstyle": "round,pad=0.5", "facecolor": face, "edgecolor": "#444444"},
    )
    return label.get_bbox_patch()


def _connect(ax, start, end, *, start_at=None, end_at=None, arrow: bool = True) -> None:
    """A line (an arrow with ``arrow``) from ``start`` to ``end``: data coordinates, or, with
    ``start_at``/``end_at`` a box from :func:`_box`, a point of that box as fractions of its
    frame (``(0.5, 0)`` the middle of its bottom edge). The box's frame is sized only when
    the figure is drawn, so the line is found then, after the text (``zorder``) and after any
    ``tight_layout``: it meets the frame at any text size."""
    ax.annotate(
        "",
        xy=end,
        xycoords=end_at if end_at is not None else "data",
        xytext=start,
        textcoords=start_at if start_at is not None else "data",
        arrowprops={
            "arrowstyle": "->" if arrow else "-",
            "color": "#444444",
            "linewidth": 1,
            "shrinkA": 0,
            "shrinkB": 0,
        },
        zorder=4,
    )


def plot_flow_diagram(
    stages: pd.DataFrame,
    exclusions: pd.DataFrame,
    *,
    threshold: int = 10,
    ax=None,
    record: str = "pupil record",
    unit: str = "school",
):
    """A CONSORT-style flow diagram of a cohort's flow log.

    Parameters
    ----------
    stages : pandas.DataFrame
        ``FlowLog.stages``: columns ``stage, arm, schools, teachers, pupils``.
    exclusions : pandas.DataFrame
        ``FlowLog.exclusions``: columns ``stage, reason, schools, teachers, pupils``; each row
        is drawn as a side box on the way into its stage.
    threshold : int, default 10
        Counts from 1 to ``threshold - 1`` are shown as ``"<{threshold}"``; 0 shows all.
    ax : matplotlib.axes.Axes, optional
    record, unit : str
        What the ``pupils`` and ``schools`` columns count, singular (``FlowLog.record``;
        ``"area"`` for a cohort of area figures).

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    The main column has one box per stage of the ``"all"`` arm (available, eligible, assigned,
    analysed); each exclusion leaves the column on the right just before the stage that it
    leads to. When the log has rows per arm (``treated``, ``comparison``), the analysed
    stage splits into one box per arm, as in the CONSORT 2010 flow diagram (Schulz et al.
    2010).
    """
    import matplotlib.pyplot as plt

    teachers = bool((stages["teachers"].fillna(0) > 0).any()) if len(stages) else False
    main = stages[stages["arm"] == "all"].reset_index(drop=True)
    arms = stages[(stages["arm"] != "all") & (stages["stage"] == "analysed")]
    excl_by_stage: dict[str, list] = {}
    for _, row in exclusions.iterrows():
        excl_by_stage.setdefault(str(row["stage"]), []).append(row)

    # Layout, top to bottom: a stage box, then the side boxes of the next stage's exclusions.
    items: list[tuple[str, object]] = []
    for i, row in main.iterrows():
        if i > 0:
            for excl in excl_by_stage.get(str(row["stage"]), []):
                items.append(("excl", excl))
        items.append(("stage", row))
    n_rows = len(items) + (1 if len(arms) else 0)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, max(3.0, 1.0 * n_rows + 0.5)))
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.5, n_rows - 0.5)
    ax.invert_yaxis()
    ax.axis("off")

    last_stage = None
    for y, (kind, row) in enumerate(items):
        counts = _counts(row, threshold, teachers=teachers, record=record, unit=unit)
        if kind == "stage":
            label = _STAGE_LABELS.get(str(row["stage"]), plot_text(row["stage"]))
            box = _box(ax, 0.33, y, f"{label}\n{counts}")
            if last_stage is not None:
                _connect(ax, (0.5, 0), (0.5, 1), start_at=last_stage, end_at=box)
            last_stage = box
        else:
            reason = plot_text(row["reason"], width=38)
            box = _box(ax, 0.78, y, f"Excluded: {reason}\n{counts}", face="#f4f4f4")
            # from the main column's line to the side box's left edge
            _connect(ax, (0.33, y), (0, 0.5), end_at=box, arrow=False)
    if len(arms) and last_stage is not None:
        y = len(items)
        positions = np.linspace(0.18, 0.78, len(arms)) if len(arms) > 1 else [0.33]
        for x, (_, row) in zip(positions, arms.iterrows(), strict=True):
            arm = _ARM_LABELS.get(str(row["arm"]), plot_text(row["arm"]))
            counts = _counts(row, threshold, teachers=teachers, record=record, unit=unit)
            box = _box(ax, float(x), y, f"Analysed: {arm}\n{counts}")
            _connect(ax, (0.5, 0), (0.5, 1), start_at=last_stage, end_at=box)
    return ax


def plot_forest(
    groups: pd.DataFrame, *, level: str = "95%", ax=None, scale: str = "effect size (Hedges' g)"
):
    """A forest plot of effect sizes by group, with confidence intervals.

    Parameters
    ----------
    groups : pandas.DataFrame
        Columns ``group, effect_size, ci_lower, ci_upper`` (one row per group, in order;
        the first is drawn at the top). A row without an estimate is listed as
        "not estimated".
    level : str, default "95%"
        The intervals' confidence level, for the axis label.
    ax : matplotlib.axes.Axes, optional
    scale : str, default "effect size (Hedges' g)"
        What the estimates are, for the axis label (e.g. ``"percentage points"``).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from cpdimpact.report.evaluation import plot_forest
    >>> groups = pd.DataFrame({"group": ["All pupils", "FSM pupils"], "effect_size": [0.1, 0.2],
    ...                        "ci_lower": [0.0, -0.1], "ci_upper": [0.2, 0.5]})
    >>> ax = plot_forest(groups)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['All pupils', 'FSM pupils']
    """
    import matplotlib.pyplot as plt

    n = len(groups)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, max(2.0, 0.6 * n + 1.0)))
    y = np.arange(n, dtype=float)
    labels = []
    for i, row in enumerate(groups.itertuples(index=False)):
        label = plot_text(row.group, width=40)
        estimate = float(row.effect_size)
        if math.isnan(estimate):
            labels.append(f"{label} (not estimated)")
            continue
        labels.append(label)
        ax.errorbar(
            [estimate],
            [y[i]],
            xerr=[[estimate - float(row.ci_lower)], [float(row.ci_upper) - estimate]],
            fmt="s" if i else "D",
            color="C0" if i else "black",
            capsize=3,
        )
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlabel(f"{scale} with {plot_text(level)} confidence interval")
    return ax
