"""Deterministic text for report cells, Markdown and JSON.

Everything here maps a value to the same string on every run and machine: no ``repr`` of
floats with 17 digits, no locale, no dictionary-order dependence.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
import re
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

#: Text shown for a missing value (NaN, None, pd.NA, NaT): an em dash.
NA_REP = "\u2014"
#: Format of a float when the table gives none for its column.
DEFAULT_FLOAT_FORMAT = "{:.3f}"

FormatSpec = str | Callable[[object], object]

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")
_MD_ORDERED_LIST = re.compile(r"^(\d{1,9})([.)])(?=\s|$)")
_MD_BLOCK_MARKER = re.compile(r"^(?:#{1,6}(?=\s|$)|[-+](?=\s|$)|-{3,}$|=+$)")
_NUMBER_TEXT = re.compile(r"^-?\d{1,3}(,\d{3})*(\.\d+)?$|^-?\d+(\.\d+)?$")
_NEGATIVE_ZERO = re.compile(r"^-(0[0.,]*[^0-9]*)$")  # "-0.00", "-0.0%", not "-0.01"


def is_missing(value: object) -> bool:
    """True for None, NaN, pd.NA and NaT; False for anything else, including containers."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, str | bytes) or np.ndim(value) != 0:
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def is_number(value: object) -> bool:
    """A real number that is not a boolean."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _apply_spec(spec: FormatSpec, value: object) -> str:
    if callable(spec):
        return str(spec(value))
    return spec.format(value) if "{" in spec else format(value, spec)


def format_cell(value: object, *, spec: FormatSpec | None, na_rep: str) -> str:
    """Text of one table cell; see :class:`cpdimpact.report.Table` for the rules."""
    if is_missing(value):
        return na_rep
    if spec is not None and (callable(spec) or is_number(value)):
        text = _apply_spec(spec, value)
        return _NEGATIVE_ZERO.sub(r"\1", text) if is_number(value) else text
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            return "inf" if number > 0 else "-inf"
        text = DEFAULT_FLOAT_FORMAT.format(number)
        return _NEGATIVE_ZERO.sub(r"\1", text)  # -0.0004 -> "0.000", not "-0.000"
    if isinstance(value, pd.Timestamp | _dt.date):
        return value.isoformat()
    return str(value)


def format_column(
    values: list[object], *, spec: FormatSpec | None = None, na_rep: str = NA_REP
) -> list[str]:
    """Format a column's cells (see :class:`cpdimpact.report.Table` for the rules)."""
    return [format_cell(v, spec=spec, na_rep=na_rep) for v in values]


def is_numeric_column(values: list[object]) -> bool:
    """Right-align a column holding at least one number (e.g. counts with "<10" markers),
    written as a number or as its text (``"11,680"``, ``"248.9"``, ``"-0.075"``)."""
    return any(
        (is_number(v) and not is_missing(v)) or (isinstance(v, str) and _NUMBER_TEXT.match(v))
        for v in values
    )


def one_line(text: object) -> str:
    """Collapse runs of whitespace, including newlines, to single spaces."""
    return " ".join(str(text).split())


def md_escape(text: object, *, block_start: bool = False) -> str:
    """Plain text made safe for Markdown: inline markup characters and pipes are escaped.

    With ``block_start``, a leading marker that would turn a paragraph into a heading, a list
    or a rule (``# ``, ``- ``, ``+ ``, ``1. ``, ``---``) is escaped too.
    """
    text = _MD_SPECIAL.sub(r"\\\1", one_line(text))
    if block_start and _MD_BLOCK_MARKER.match(text):
        text = "\\" + text
    elif block_start:
        text = _MD_ORDERED_LIST.sub(r"\1\\\2", text)
    return text


def json_value(value: object) -> object:
    """A JSON-safe version of ``value`` (numbers, strings, lists and dicts with sorted keys).

    Missing values become ``None``; infinite floats the strings ``"inf"`` / ``"-inf"`` (JSON
    has no infinity); numpy scalars Python numbers; dates ISO strings.
    """
    if is_missing(value):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isinf(number):
            return "inf" if number > 0 else "-inf"
        return number
    if isinstance(value, str):
        return value
    if isinstance(value, pd.Timestamp | _dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_value(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple | np.ndarray | pd.Series):
        return [json_value(v) for v in list(value)]
    return str(value)


def metadata_text(value: object) -> str:
    """Short deterministic text of a metadata value for the report footer."""
    value = json_value(value)
    if value is None:
        return NA_REP
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return repr(value)  # shortest round-trip form: identical on every IEEE-754 machine
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
    return str(value)
