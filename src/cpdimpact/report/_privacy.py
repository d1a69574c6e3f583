"""Small-number suppression for published counts."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._disclosure import marker as default_marker
from .._disclosure import published_count
from ..errors import InvalidValueError, MissingColumnError, format_rows
from ._format import is_missing, is_number

__all__ = ["published_table", "suppress_small_counts"]


def suppress_small_counts(
    frame: pd.DataFrame,
    columns: str | Sequence[str],
    threshold: int = 10,
    replacement: str | None = None,
    *,
    suppress_zero: bool = False,
) -> pd.DataFrame:
    """Replace small counts by a marker before publication.

    Parameters
    ----------
    frame : pandas.DataFrame
        Aggregate table (one row per school, group or year; never pupils). Not modified.
    columns : str or sequence of str
        The count columns to check.
    threshold : int, default 10
        Counts from 1 to ``threshold - 1`` are suppressed.
    replacement : str, optional
        The marker; defaults to ``"<{threshold}"``, i.e. ``"<10"``.
    suppress_zero : bool, default False
        Also suppress zeros.

    Returns
    -------
    pandas.DataFrame
        A new frame. The checked columns have ``object`` dtype and hold Python ``int`` counts,
        the marker, or the original missing value; other columns are unchanged.

    Raises
    ------
    cpdimpact.errors.MissingColumnError
        If a column is absent.
    cpdimpact.errors.InvalidValueError
        If a count is negative, fractional, infinite or not a number.

    Notes
    -----
    Statistical disclosure control in English education statistics (DfE and the ONS) hides
    counts below a small threshold so that no individual pupil can be identified. Zero is
    shown by default: it reveals no individual's result and suppressing it hides real
    information; pass ``suppress_zero=True`` where a zero would disclose something about a
    whole group (e.g. "no FSM pupil in this school met the standard").

    This is primary suppression only. If a table also shows totals or percentages, the caller
    must make sure suppressed cells cannot be recovered from them (secondary suppression),
    for instance by suppressing the matching percentage or the next-smallest cell.

    Examples
    --------
    >>> import pandas as pd
    >>> from cpdimpact.report import suppress_small_counts
    >>> counts = pd.DataFrame({"school": ["A", "B", "C"], "fsm_pupils": [3, 10, 0]})
    >>> suppress_small_counts(counts, "fsm_pupils")
      school fsm_pupils
    0      A        <10
    1      B         10
    2      C          0
    """
    if not isinstance(frame, pd.DataFrame):
        raise InvalidValueError(
            f"suppress_small_counts needs a pandas DataFrame, got {type(frame).__name__}."
        )
    names = [columns] if isinstance(columns, str) else list(columns)
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise MissingColumnError(
            f"suppress_small_counts: column(s) {missing!r} not in the frame; its columns are "
            f"{[str(c) for c in frame.columns]!r}."
        )
    if (
        isinstance(threshold, bool | np.bool_)
        or not isinstance(threshold, numbers.Integral)
        or threshold < 1
    ):
        raise InvalidValueError(f"threshold must be a positive integer, got {threshold!r}.")
    threshold = int(threshold)
    marker = default_marker(threshold) if replacement is None else replacement
    if not isinstance(marker, str):
        raise InvalidValueError(f"replacement must be a string, got {replacement!r}.")

    out = frame.copy()
    for name in names:
        values = frame[name].tolist()
        bad = [
            label
            for label, v in zip(frame.index, values, strict=True)
            if not is_missing(v) and not _is_count(v)
        ]
        if bad:
            raise InvalidValueError(
                f"suppress_small_counts: column {name!r} must hold non-negative whole counts; "
                f"{format_rows(bad)} do not. Check that the column is a count, not a share or "
                f"mean."
            )
        new = [
            v
            if is_missing(v)
            else published_count(int(v), threshold, replacement=marker, suppress_zero=suppress_zero)
            for v in values
        ]
        out[name] = pd.Series(new, index=frame.index, dtype=object)
    return out


def _is_count(value: object) -> bool:
    if not is_number(value):
        return False
    number = float(value)
    return math.isfinite(number) and number >= 0 and number.is_integer()


def published_table(frame: pd.DataFrame, columns: Sequence[str], threshold: int) -> pd.DataFrame:
    """``frame`` as published: :func:`suppress_small_counts` on ``columns`` with the report's
    ``threshold`` (``ReportOptions.suppress_below``), or unchanged when it is 0 (no
    suppression)."""
    return suppress_small_counts(frame, columns, threshold=threshold) if threshold else frame
