"""Input checks shared by the difference-in-differences estimators.

Every check raises a :class:`~cpdimpact.errors.CpdImpactError` subclass whose message names the
column, the first offending rows and the fix. Nothing here drops or coerces rows: the cohort
stage has already dropped and counted them, so a problem reaching the estimator is an error.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from cpdimpact._guards import reject_infinite, reject_negative
from cpdimpact.errors import InvalidValueError, MissingColumnError, format_rows

__all__ = [
    "require_columns",
    "numeric_column",
    "key_column",
    "integer_valued",
    "start_column",
    "FIRST_TREATED",
]

#: The first-treated column of a cohort's frames; an estimator that takes a treatment indicator
#: checks the indicator against it when the frame has one (see ``_guards.check_absorbing``).
FIRST_TREATED = "first_treated"


def require_columns(data: pd.DataFrame, roles: Iterable[tuple[str, str, str]]) -> None:
    """Raise :class:`MissingColumnError` for the first ``(column, role, option)`` not in ``data``."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    present = [str(c) for c in data.columns]
    for column, role, option in roles:
        if column not in data.columns:
            shown = ", ".join(repr(c) for c in present[:30])
            more = f" and {len(present) - 30} more" if len(present) > 30 else ""
            raise MissingColumnError(
                f"column {column!r} (the {role}) is not in the data; the data have columns "
                f"[{shown}{more}]. Pass {option}='<name>' to name the right column."
            )


def _no_missing(series: pd.Series, role: str) -> None:
    missing = series.isna().to_numpy()
    if missing.any():
        rows = series.index[missing]
        raise InvalidValueError(
            f"column {series.name!r} (the {role}) has {int(missing.sum())} missing values at "
            f"{format_rows(rows)}. The estimator never drops rows silently: drop or impute "
            "them upstream (the cohort stage records dropped rows in its flow log)."
        )


_NUMERIC_KINDS = {"boolean", "integer", "floating", "mixed-integer-float", "empty"}


def _is_number(value) -> bool:
    return isinstance(value, bool | int | float | np.number)


def numeric_column(
    data: pd.DataFrame, column: str, role: str, *, allow_missing: bool = False
) -> np.ndarray:
    """Return ``data[column]`` as float64, refusing non-numeric, missing or infinite values."""
    series = data[column]
    numeric = pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
    # An object column of Python bools/numbers (e.g. with None for missing) is numeric data;
    # strings are not, and are never parsed silently.
    if not numeric and pd.api.types.infer_dtype(series, skipna=True) not in _NUMERIC_KINDS:
        bad = series.notna().to_numpy() & ~series.map(_is_number).to_numpy(dtype=bool)
        where = list(series.index[bad][:5])
        shown = ", ".join(f"{i} ({series.loc[i]!r})" for i in where)
        raise InvalidValueError(
            f"column {column!r} (the {role}) must be numeric or boolean but has dtype "
            f"{series.dtype}; {int(bad.sum())} non-numeric values, first at rows {shown}. "
            "Convert it with pandas.to_numeric (or map labels to 0/1) before fitting."
        )
    if not allow_missing:
        _no_missing(series, role)
    values = series.to_numpy(dtype=float, na_value=np.nan)
    reject_infinite(values, series.index, column, role)
    return values


def key_column(data: pd.DataFrame, column: str, role: str) -> tuple[np.ndarray, pd.Index]:
    """Integer codes and sorted levels of an identifier column (unit, time, cluster)."""
    series = data[column]
    _no_missing(series, role)
    codes, levels = pd.factorize(series, sort=True)
    return codes.astype(np.intp, copy=False), pd.Index(levels)


def integer_valued(values: np.ndarray, index: pd.Index, column: str, role: str) -> None:
    """Refuse non-integer values (event times must be whole periods)."""
    finite = np.isfinite(values)
    bad = finite & (values != np.round(values))
    if bad.any():
        raise InvalidValueError(
            f"column {column!r} (the {role}) must hold whole periods (e.g. years) but has "
            f"fractional values at {format_rows(index[bad])}."
        )


def start_column(data: pd.DataFrame, column: str, role: str = "first treated period") -> np.ndarray:
    """Each row's first treated period as float: whole periods, 0 for never treated.

    Missing values mean never treated (as 0 does); negative, infinite or fractional values
    are refused (a negative start is not "never": it would silently drop the unit's rows).
    """
    first = numeric_column(data, column, role, allow_missing=True)
    integer_valued(first, data.index, column, role)
    reject_negative(
        first,
        data.index,
        column,
        role,
        "give the first treated period (e.g. 2019), or 0 or a "
        "missing value for a unit never treated.",
    )
    return np.where(np.isnan(first), 0.0, first)
