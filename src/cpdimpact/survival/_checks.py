"""Input checks of the survival estimators: one spell per row, read once, never modified.

Each check raises a :class:`~cpdimpact.errors.CpdImpactError` subclass naming the user's column,
the first offending rows (index labels, as :func:`~cpdimpact.errors.format_rows` shows them) and
the fix. Rows of zero weight are set aside and counted in the result's notes; nothing else is
dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cpdimpact._guards import not_indicator, reject_infinite
from cpdimpact._weights import nonzero_weight_rows
from cpdimpact.errors import (
    DurationError,
    EventCodingError,
    InvalidArgumentError,
    InvalidValueError,
    MissingColumnError,
    SeparationError,
    SingleArmError,
    format_rows,
    format_value,
)

__all__ = ["Spells", "prepare_spells", "normalise_names", "require_leavers_in_both_arms"]


@dataclass(frozen=True)
class Spells:
    """The checked columns of the rows used (rows of zero weight set aside)."""

    time: np.ndarray
    event: np.ndarray
    arm: np.ndarray
    weight: np.ndarray
    covariates: np.ndarray
    cluster: np.ndarray | None
    n_clusters: int
    index: pd.Index
    weighted: bool
    notes: tuple[str, ...]


def normalise_names(names, option: str) -> tuple[str, ...]:
    """One column name or a sequence of them as a tuple (a bare string is one column)."""
    if names is None:
        return ()
    if isinstance(names, str):
        return (names,)
    names = tuple(names)
    repeated = sorted({n for n in names if names.count(n) > 1}, key=names.index)
    if repeated:
        raise InvalidArgumentError(
            f"{option} repeats {', '.join(map(format_value, repeated))}; list each column once."
        )
    return names


def _require_columns(data: pd.DataFrame, roles: Sequence[tuple[str, str, str]]) -> None:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    for column, role, option in roles:
        if column not in data.columns:
            shown = ", ".join(repr(c) for c in list(data.columns)[:30])
            raise MissingColumnError(
                f"column {column!r} (the {role}) is not in the data; the data have columns "
                f"[{shown}]. Pass {option}='<name>' to name the right column."
            )


def _numbers(data: pd.DataFrame, column: str, role: str, error: type) -> np.ndarray:
    series = data[column]
    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
        converted = pd.to_numeric(series, errors="coerce")
        bad = series.notna() & converted.isna()
        raise error(
            f"column {column!r} (the {role}) must be numeric but has dtype {series.dtype}; "
            f"values such as {format_value(series[bad].iloc[0]) if bad.any() else '?'} at "
            f"{format_rows(series.index[bad.to_numpy()])}. Convert it with pandas.to_numeric "
            "before fitting."
        )
    values = series.to_numpy(dtype=float, na_value=np.nan)
    missing = np.isnan(values)
    if missing.any():
        raise error(
            f"column {column!r} (the {role}) is missing at {format_rows(series.index[missing])}. "
            "The estimator never drops rows silently: drop or fill them upstream and count "
            "them in the cohort flow log."
        )
    return values


def duration_values(data: pd.DataFrame, column: str, *, whole: bool = False) -> np.ndarray:
    """Positive finite durations (whole periods when ``whole``), else :class:`DurationError`."""
    values = _numbers(data, column, "duration of each spell", DurationError)
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        shown = ", ".join(sorted({format_value(v) for v in values[bad][:50]})[:5])
        raise DurationError(
            f"column {column!r} (the duration of each spell) must be positive but holds "
            f"{shown} at {format_rows(data.index[bad])}. A spell lasts some time: a teacher in "
            "post at one census and gone by the next has duration 1 (year); a zero or negative "
            "duration usually means the start and end dates were swapped or a spell was "
            "recorded twice. Fix or drop those rows upstream (and count them)."
        )
    if whole:
        fractional = values != np.round(values)
        if fractional.any():
            raise DurationError(
                f"column {column!r} (the duration of each spell) must hold whole periods for a "
                f"discrete-time model but has fractions at {format_rows(data.index[fractional])}"
                "; give the number of census years in post (1, 2, ...), or use CoxModel for "
                "continuous durations."
            )
    return values


def event_values(data: pd.DataFrame, column: str) -> np.ndarray:
    """The 0/1 event indicator as floats, else :class:`EventCodingError`."""
    series = data[column]
    bad = not_indicator(series)
    if bad.any():
        offending = pd.unique(series[bad].to_numpy(dtype=object))[:5]
        shown = ", ".join(format_value(v) for v in offending)
        raise EventCodingError(
            f"column {column!r} (whether the spell ended, the teacher leaving) must be 0/1 (or "
            f"True/False) but holds {shown} at {format_rows(series.index[bad])}. Code 1 for a "
            "teacher who left and 0 for one still in post when last seen (censored); map "
            "labels first, e.g. data[col].map({'left': 1, 'stayed': 0}), checking that every "
            "label is mapped."
        )
    return series.to_numpy(dtype=float)


def arm_values(data: pd.DataFrame, column: str) -> np.ndarray:
    """The 0/1 treatment (participation) indicator as floats, else InvalidValueError."""
    series = data[column]
    bad = not_indicator(series)
    if bad.any():
        offending = pd.unique(series[bad].to_numpy(dtype=object))[:5]
        raise InvalidValueError(
            f"column {column!r} (the treatment: 1 for a participating teacher, 0 for a "
            f"comparison teacher) must be 0/1 (or True/False) but holds "
            f"{', '.join(format_value(v) for v in offending)} at "
            f"{format_rows(series.index[bad])}; code participants 1 and the others 0."
        )
    return series.to_numpy(dtype=float)


def cluster_codes(data: pd.DataFrame, column: str) -> tuple[np.ndarray, int]:
    """Integer codes of the cluster column (no missing values) and the number of clusters."""
    series = data[column]
    missing = series.isna().to_numpy()
    if missing.any():
        raise InvalidValueError(
            f"column {column!r} (the cluster of the standard errors, e.g. the school) is "
            f"missing at {format_rows(series.index[missing])}. Give every teacher their "
            "school (the school of the spell), or drop those rows upstream and count them."
        )
    codes, levels = pd.factorize(series, sort=True)
    if len(levels) < 2:
        raise InvalidValueError(
            f"column {column!r} (the cluster of the standard errors) holds one value, "
            f"{format_value(levels[0])}, on every row: clustered standard errors need many "
            "clusters (schools). Name the school column, or leave cluster=None."
        )
    return codes.astype(np.intp, copy=False), len(levels)


def prepare_spells(
    data: pd.DataFrame,
    *,
    duration: str,
    event: str,
    treatment: str,
    covariates: Sequence[str] = (),
    cluster: str | None = None,
    weights: str | None = None,
    whole: bool = False,
) -> Spells:
    """Check the columns of ``data`` and return the rows used as arrays (``data`` untouched)."""
    roles = [
        (duration, "duration of each spell", "duration"),
        (event, "event: 1 left, 0 still in post", "event"),
        (treatment, "treatment: 1 participant, 0 comparison", "treatment"),
        *((c, "covariate", "covariates") for c in covariates),
    ]
    if cluster is not None:
        roles.append((cluster, "cluster of the standard errors", "cluster"))
    if weights is not None:
        roles.append((weights, "case weights", "weights"))
    _require_columns(data, roles)
    notes: list[str] = []
    frame = data
    weight = np.ones(len(data))
    if weights is not None:
        frame, weight = nonzero_weight_rows(data, weights, notes)
    time = duration_values(frame, duration, whole=whole)
    ended = event_values(frame, event)
    arm = arm_values(frame, treatment)
    if np.unique(arm).size < 2:
        only = "participants" if arm.size and arm[0] == 1 else "comparison teachers"
        raise SingleArmError(
            f"column {treatment!r} (the treatment) is {format_value(arm[0]) if arm.size else '-'}"
            f" on every row used: all {arm.size:,} spells are {only}, so there is nothing to "
            "compare. Add the comparison (or participating) teachers"
            + (
                f", or check that the weights in {weights!r} are not zero for one arm."
                if weights
                else "."
            )
        )
    columns = []
    for name in covariates:
        values = _numbers(frame, name, "covariate", InvalidValueError)
        reject_infinite(values, frame.index, name, "covariate")
        columns.append(values)
    x = np.column_stack(columns) if columns else np.empty((len(frame), 0))
    codes, n_clusters = (None, 0) if cluster is None else cluster_codes(frame, cluster)
    return Spells(
        time=time,
        event=ended,
        arm=arm,
        weight=weight,
        covariates=x,
        cluster=codes,
        n_clusters=n_clusters,
        index=frame.index,
        weighted=weights is not None,
        notes=tuple(notes),
    )


def require_leavers_in_both_arms(spells: Spells, treatment: str, event: str) -> None:
    """Refuse an arm in which nobody leaves: its hazard (or odds) ratio would be 0 or infinite,
    and a fit would only stop where the likelihood stops changing."""
    for code, who in ((1, "participant"), (0, "comparison teacher")):
        mine = spells.arm == code
        if not np.any(spells.event[mine] > 0):
            raise SeparationError(
                f"no {who} (column {treatment!r} = {code}) leaves: column {event!r} is 0 for "
                f"all {int(mine.sum()):,} of them, so the ratio of hazards of leaving is "
                f"{'zero' if code == 1 else 'infinite'} and cannot be estimated. Compare the "
                "arms' retention with KaplanMeier instead, or follow the teachers for longer."
            )
