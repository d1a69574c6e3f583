"""Checks for a ``weights=`` column shared by the staggered and multilevel estimators.

A weights column (e.g. matching or inverse-probability weights from
:mod:`cpdimpact.comparison`) must be numeric, finite, present on every row and non-negative.
Rows of weight zero carry no information: estimators exclude them and count them in their
notes. Nothing is coerced: a bad value is an error naming the column and the first rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cpdimpact.errors import InvalidValueError, format_rows

__all__ = ["weight_values", "zero_weight_note", "nonzero_weight_rows", "constant"]


def weight_values(frame: pd.DataFrame, column: str) -> np.ndarray:
    """``frame[column]`` as float64, refusing non-numeric, missing, infinite or negative values."""
    series = frame[column]
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        raise InvalidValueError(
            f"column {column!r} (the weights) must be numeric, but has dtype {series.dtype}; "
            "pass non-negative numbers (e.g. the weight column that comparison.attach adds)"
        )
    w = series.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(w)
    if bad.any():
        raise InvalidValueError(
            f"column {column!r} (the weights) is missing or infinite at "
            f"{format_rows(frame.index[bad])}; give every row a finite weight (0 excludes a row)"
        )
    negative = w < 0
    if negative.any():
        raise InvalidValueError(
            f"column {column!r} (the weights) must be >= 0 but is negative at "
            f"{format_rows(frame.index[negative])}; fix the weights upstream"
        )
    if not (w > 0).any():
        raise InvalidValueError(
            f"column {column!r} (the weights) is zero on every row: nothing to estimate from"
        )
    return w


def zero_weight_note(column: str, zero: np.ndarray, index: pd.Index, what: str = "rows") -> str:
    """The note recording rows excluded for a zero weight."""
    return (
        f"{int(zero.sum())} {what} with zero weight in {column!r} were excluded "
        f"({format_rows(index[zero])})"
    )


def nonzero_weight_rows(
    frame: pd.DataFrame, column: str, notes: list[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows of ``frame`` with a positive weight and those weights (:func:`weight_values`);
    rows of weight zero are excluded and counted in ``notes`` (:func:`zero_weight_note`)."""
    weight = weight_values(frame, column)
    zero = weight == 0
    if zero.any():
        notes.append(zero_weight_note(column, zero, frame.index))
        frame, weight = frame.loc[~zero], weight[~zero]
    return frame, weight


def constant(w: np.ndarray) -> bool:
    """True when every weight is the same: the weighted fit is the unweighted one."""
    return bool(w.size == 0 or (w == w[0]).all())
