"""Messages from inside an evaluation, in the user's words: their column names and their rows.

The estimators of an evaluation see the cohort's frame: canonical column names (``outcome``,
``school``...), columns the cohort derives (``unit``, ``exposed``...) and rows numbered by the
cohort. Their messages are translated once, at the pipeline's boundary: a quoted canonical
name becomes the user's (from the ``columns=`` mapping of the records), a derived name is
explained, and cohort row numbers become the user's row labels (the index of the pupils table
as given) or, for unit-by-year means, the unit and year.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd

from .errors import format_value
from .records import row_words

__all__ = ["user_message"]

#: Columns the cohort derives, which the user never typed: what each one is.
DERIVED = {
    "unit": "the cohort's unit: the {unit}",
    "exposed": "the cohort's exposure flag, from the participation table's {start_year!r}",
    "first_treated": "the cohort's first exposed year: {start_year!r} plus the lag",
    "treated": "the cohort's arm: 1 for the units that take part",
    "event_time": "the cohort's years since the first exposed year",
    "outcome_std": "the cohort's standardised {outcome!r}",
    "n_pupils": "the cohort's number of pupil records per unit and year",
    "comparison_weight": "the comparison design's school weights",
    "comparison_weight_x_pupils": "the comparison design's school weights times pupil records",
}

_QUOTED = re.compile(r"'([A-Za-z_][A-Za-z0-9_]*)'")
_ROWS = re.compile(r"\b(rows?) (\d+(?:, \d+)*)((?: and \d+ more)?)")


def user_message(message: str, cohort, frame: pd.DataFrame | None = None) -> str:
    """``message`` with the user's column names and, when ``frame`` (the rows an estimator
    was given) is known, the user's rows."""
    columns: Mapping[str, str] = getattr(cohort, "user_columns", None) or {}
    user = {**{c: c for c in DERIVED}, **columns}.get
    unit = (
        f"school and teacher ({user('school', 'school')!r}, {user('teacher', 'teacher')!r})"
        if cohort.spec.exposure == "teacher"
        else f"school ({user('school', 'school')!r})"
    )
    fill = {
        "unit": unit,
        "start_year": user("start_year", "start_year"),
        "outcome": user("outcome", "outcome"),
    }
    explained: set[str] = set()

    def name(match: re.Match) -> str:
        word = match.group(1)
        if word in DERIVED and word not in columns:
            if word in explained:
                return match.group(0)
            explained.add(word)
            return f"{match.group(0)} ({DERIVED[word].format(**fill)})"
        return repr(columns[word]) if word in columns else match.group(0)

    message = _QUOTED.sub(name, message)
    if frame is None:
        return message
    return _ROWS.sub(lambda m: _rows(m, cohort, frame), message)


def _rows(match: re.Match, cohort, frame: pd.DataFrame) -> str:
    labels = [int(x) for x in match.group(2).split(", ")]
    if not all(label in frame.index for label in labels):
        return match.group(0)  # not rows of this frame: leave the text as it is
    more = match.group(3)
    if "n_pupils" in frame.columns:  # unit-by-year means: name the unit and the year
        columns = getattr(cohort, "user_columns", None) or {}
        unit = (
            "school/teacher"
            if cohort.spec.exposure == "teacher"
            else columns.get("school", "school")
        )
        shown = ", ".join(
            f"{unit} {format_value(frame.at[label, 'unit'])} in "
            f"{format_value(frame.at[label, 'year'])}"
            for label in labels
        )
        return f"the pupils' means of {shown}{more}"
    source = getattr(cohort, "source_rows", None)
    if source is None or not frame.index.isin(cohort.pupils.index).all():
        return match.group(0)
    shown = ", ".join(format_value(source[label]) for label in labels)
    return f"{row_words(f'{match.group(1)} {shown}{more}', source.name)} of the pupils table"
