"""Guards every estimator runs on the frame it is given: one rule, one place.

Users call estimators on their own frames, not only through :class:`~cpdimpact.records.Records`
and the cohort stage, so each estimator checks here, before fitting, the assumptions a fit
would otherwise "succeed" without:

* :func:`reject_infinite` and :func:`reject_negative`: outcomes, covariates, doses and weights
  must be finite (and weights/doses non-negative);
* :func:`require_binary` and :func:`require_proportions`: a pass/fail outcome is 0/1 (or
  True/False), and an aggregate one is a proportion in [0, 1] with a positive denominator and
  a whole number of successes; :func:`is_binary` tells a 0/1 column from a score;
* :func:`check_absorbing`: a unit's treatment indicator never switches off after switching
  on, and agrees with a ``first_treated`` column of the same frame when there is one;
  :func:`check_start_constant`: a first-treated period is one value per unit;
* :func:`require_variation`, :func:`require_within_variation`, :func:`require_unexplained`
  and :func:`require_residual_variation`: the outcome varies in the rows used, within the
  innermost groups of a multilevel model, and beyond what the model explains exactly, so
  that no estimate or standard error is made of rounding noise. Where the estimator cannot
  proceed without a residual variance (a likelihood, an effect size over the residual SD) an
  exact fit is an error; where the point estimates stand (two-way fixed effects on noiseless
  simulated data) it is one :class:`~cpdimpact.errors.ExactFitWarning`.

Every check raises a :class:`~cpdimpact.errors.CpdImpactError` subclass naming the user's
column, the first offending rows (index labels) or units, and the fix. Nothing is modified.

Tolerances are relative to the data's own scale and far from the last bit: values count as
equal when they differ by less than :data:`NOISE_ULPS` units in the last place of the largest
magnitude (a mean of identical values computed in another order differs by a few), and a
standard error counts as rounding noise below that floor plus :data:`RTOL` of the outcome's
spread.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cpdimpact.errors import (
    ConstantOutcomeError,
    ExactFitWarning,
    InconsistentTreatmentError,
    InvalidValueError,
    NonAbsorbingTreatmentError,
    NotBinaryError,
    format_rows,
    format_value,
)

__all__ = [
    "NOISE_ULPS",
    "RTOL",
    "noise_floor",
    "reject_infinite",
    "reject_negative",
    "require_variation",
    "require_residual_variation",
    "require_within_variation",
    "require_unexplained",
    "check_absorbing",
    "check_start_constant",
    "not_indicator",
    "require_indicator",
    "is_binary",
    "require_binary",
    "require_proportions",
]

#: Values closer than this many units in the last place of the largest magnitude are equal
#: (about 2e-12 relative): far above the rounding of sums and means, far below any real spread.
NOISE_ULPS = 1e4

#: A standard error below this share of the outcome's spread (plus the noise floor) is noise.
RTOL = 1e-9

_EPS = float(np.finfo(float).eps)


def noise_floor(values: np.ndarray) -> float:
    """Rounding scale of ``values``: :data:`NOISE_ULPS` ulps of their largest magnitude."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return NOISE_ULPS * _EPS * (float(np.abs(finite).max()) if finite.size else 0.0)


def _role(role: str) -> str:
    return f" (the {role})" if role else ""


def reject_infinite(values: np.ndarray, index: pd.Index, column: str, role: str) -> None:
    """Refuse ``+inf``/``-inf`` in ``values`` (one per row of ``index``)."""
    infinite = np.isinf(np.asarray(values, dtype=float))
    if infinite.any():
        raise InvalidValueError(
            f"column {column!r}{_role(role)} has infinite values at "
            f"{format_rows(index[infinite])}; they usually come from a division by zero or "
            "a log of zero upstream. Replace them with the right value, or with missing "
            "values and drop those rows (and report it)."
        )


def reject_negative(
    values: np.ndarray, index: pd.Index, column: str, role: str, fix: str = ""
) -> None:
    """Refuse negative ``values`` (doses, counts, weights)."""
    negative = np.asarray(values, dtype=float) < 0
    if negative.any():
        raise InvalidValueError(
            f"column {column!r}{_role(role)} must be >= 0 but is negative at "
            f"{format_rows(index[negative])}; "
            + (fix or "fix the values upstream (a negative value is a coding error).")
        )


def require_variation(y: np.ndarray, column: str, *, where: str = "") -> None:
    """Refuse an outcome that does not vary among the rows an estimator uses.

    ``where`` describes those rows when they are a subset (e.g. "in the rows used, after
    dropping units treated from the first period"). Missing values are ignored.
    """
    values = np.asarray(y, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        spread, shown = 0.0, "missing"
    else:
        spread, shown = float(np.ptp(values)), format_value(float(values[0]))
    if spread <= noise_floor(values):
        place = f" {where}" if where else ""
        raise ConstantOutcomeError(
            f"column {column!r} (the outcome) does not vary{place}: every value is {shown}"
            + (" (to rounding)" if spread > 0 else "")
            + ". There is no difference to estimate, and an estimate or standard error would "
            f"be rounding noise. Check that {column!r} is the outcome you meant (not a "
            "constant, a flag or a column filled by a failed merge)."
        )


def _tolerance(values: np.ndarray) -> float:
    """What counts as no variation next to ``values``: RTOL of their spread plus the floor."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0
    return RTOL * float(np.ptp(values)) + noise_floor(values)


def require_within_variation(
    y: np.ndarray, groups: np.ndarray, column: str, *, group: str, fix: str
) -> None:
    """Refuse an outcome constant within every group (``groups``: integer codes per row).

    A model with a residual (pupil-level) variance cannot estimate it then, and fits it at
    rounding noise: e.g. school means copied to every pupil of the school.
    """
    values = np.asarray(y, dtype=float)
    n = int(groups.max()) + 1
    means = np.bincount(groups, weights=values, minlength=n) / np.bincount(groups, minlength=n)
    if np.abs(values - means[groups]).max() <= _tolerance(values):
        raise ConstantOutcomeError(
            f"column {column!r} (the outcome) does not vary within {group} groups: every row "
            "of a group has the same value, so no variation is left for the residual "
            f"variance and its estimate would be rounding noise. {fix}"
        )


def require_unexplained(
    residuals: np.ndarray, y: np.ndarray, column: str, *, explained_by: str
) -> None:
    """Refuse a fit whose residuals are all rounding noise where the estimator cannot proceed
    without a residual variance (a likelihood, an effect size over the residual SD)."""
    residuals = np.asarray(residuals, dtype=float)
    if residuals.size and np.abs(residuals).max() <= _tolerance(y):
        raise ConstantOutcomeError(
            f"column {column!r} (the outcome) is explained exactly by {explained_by}: no "
            "residual variation is left, so the model's variances and standard errors cannot "
            f"be estimated. Check that {column!r} is the measured outcome, not a fitted or "
            "constructed value."
        )


def require_residual_variation(
    estimates, std_errors, y: np.ndarray, column: str, *, explained_by: str, stacklevel: int = 3
) -> str | None:
    """Refuse, or warn about, a fit whose every standard error is rounding noise.

    The model then explains the outcome exactly (``explained_by`` names its terms). When the
    estimates are rounding noise too, the outcome does not vary beyond those terms and
    :class:`~cpdimpact.errors.ConstantOutcomeError` is raised; when they are not (noiseless
    simulated data), :class:`~cpdimpact.errors.ExactFitWarning` is emitted and its text
    returned for the result's notes. Returns ``None`` when the standard errors are real.
    """
    se = np.asarray(std_errors, dtype=float).ravel()
    est = np.asarray(estimates, dtype=float).ravel()
    keep = np.isfinite(se)
    se, est = se[keep], est[keep]
    if se.size == 0:
        return None
    tolerance = _tolerance(y)
    if not (se <= tolerance).all():
        return None
    if (np.abs(est) <= tolerance).all():
        raise ConstantOutcomeError(
            f"column {column!r} (the outcome) does not vary beyond {explained_by}: the "
            f"estimates (at most {float(np.abs(est).max()):.3g}) and their standard errors "
            f"(at most {float(se.max()):.3g}) are rounding noise. Check that {column!r} is the "
            "measured outcome, not a fitted or constructed value."
        )
    message = (
        f"the standard errors (at most {float(se.max()):.3g}) of the estimates on column "
        f"{column!r} (the outcome) are zero to rounding: {explained_by} explain the outcome "
        "exactly (e.g. noiseless simulated data), or every cluster lies wholly on one side "
        "of each comparison, so nothing measures the uncertainty. The estimates may be right; "
        "the standard errors, intervals and p-values are rounding noise: do not report them."
    )
    warnings.warn(message, ExactFitWarning, stacklevel=stacklevel)
    return message


def not_indicator(values: pd.Series) -> np.ndarray:
    """Where a 0/1 (or True/False) indicator column holds anything else, missing included."""
    return ~(values.isin([0, 1, True, False]) & values.notna()).to_numpy()


def require_indicator(data: pd.DataFrame, column: str, must: str) -> pd.Series:
    """``data[column]`` if it is a 0/1 indicator, else "column ... must {must}{rows}." is raised."""
    values = data[column]
    invalid = not_indicator(values)
    if invalid.any():
        raise InvalidValueError(f"column {column!r} must {must}{format_rows(data.index[invalid])}.")
    return values


def _flag(values: np.ndarray, index: pd.Index, column: str) -> np.ndarray:
    """A 0/1 treatment indicator as booleans; other values are an error."""
    ok = (values == 0) | (values == 1)
    if not ok.all():
        shown = ", ".join(sorted({format_value(v) for v in values[~ok][:50]})[:5])
        raise InvalidValueError(
            f"column {column!r} (the treatment indicator) must be 0/1 (or True/False) but "
            f"holds {shown} at {format_rows(index[~ok])}; code treated unit-periods 1 and "
            "the others 0."
        )
    return values == 1


def _units_text(unit_values, units: np.ndarray, detail: dict | None = None) -> str:
    shown = []
    for u in units[:5]:
        label = format_value(unit_values[u])
        shown.append(f"{label} ({detail[u]})" if detail else label)
    more = f" and {units.size - 5} more" if units.size > 5 else ""
    return ", ".join(shown) + more


def check_absorbing(
    data: pd.DataFrame,
    *,
    treatment: str,
    unit: str | Sequence[str],
    time: str,
    treated: np.ndarray | None = None,
    first_treated: str | None = None,
    unit_role: str = "unit",
    finer_exposure: bool = False,
) -> None:
    """Refuse a treatment indicator that switches off, or disagrees with ``first_treated``.

    ``treated`` is the indicator as booleans (when the caller has already read the column);
    otherwise ``data[treatment]`` is read as 0/1. Rows of one unit in one period may differ
    (e.g. exposure by teacher within a school): a unit switches off when a period with no
    treated row follows a period with one. ``first_treated`` names a column of the same frame
    holding each unit's first treated period (0 or missing: never treated); when given and
    present, the indicator must equal ``first_treated > 0 and time >= first_treated``.
    ``unit`` may list nested id columns (``("school", "teacher")``): the unit is then the
    path. With ``finer_exposure`` (the indicator may be set below ``unit``, e.g. by teacher
    within the schools of a multilevel model), the switch-off test is skipped when some unit
    mixes treated and untreated rows in one period: a school whose only exposed teacher left
    did not switch off. Missing ids or periods are left to the estimator's own checks.
    """
    index = data.index
    known = np.ones(len(data), dtype=bool)
    if treated is None:
        values = pd.to_numeric(data[treatment], errors="coerce").to_numpy(dtype=float)
        known = ~np.isnan(values)
        treated = np.zeros(len(values), dtype=bool)
        treated[known] = _flag(values[known], index[known], treatment)
    unit_columns = [unit] if isinstance(unit, str) else list(unit)
    usable = known & data[[*unit_columns, time]].notna().all(axis=1).to_numpy()
    if len(unit_columns) == 1:
        codes, unit_values = pd.factorize(data[unit_columns[0]], sort=True)
    else:  # nested ids: the unit is the path (school, teacher)
        codes, unit_values = pd.factorize(pd.MultiIndex.from_frame(data[unit_columns]), sort=True)
        unit = "/".join(unit_columns)
    times = data[time].to_numpy()
    if not usable.any():
        return
    period_codes, period_values = pd.factorize(data[time], sort=True)
    n_units, n_periods = len(unit_values), len(period_values)
    u, p, d = codes[usable], period_codes[usable], treated[usable]
    big = np.iinfo(np.intp).max
    start = np.full(n_units, big, dtype=np.intp)
    np.minimum.at(start, u[d], p[d])
    # A period of the unit with no treated row after its first treated period.
    any_treated = np.zeros(n_units * n_periods, dtype=bool)
    any_treated[(u * n_periods + p)[d]] = True
    off = usable.copy()
    off[usable] = (p > start[u]) & ~any_treated[u * n_periods + p]
    if finer_exposure and off.any():
        any_untreated = np.zeros(n_units * n_periods, dtype=bool)
        any_untreated[(u * n_periods + p)[~d]] = True
        if (any_treated & any_untreated).any():
            off[:] = False
    if off.any():
        bad_units = np.unique(codes[off])
        first_off = {}
        for k in np.flatnonzero(off):
            first_off.setdefault(codes[k], times[k])
            if times[k] < first_off[codes[k]]:
                first_off[codes[k]] = times[k]
        detail = {
            b: f"treated from {format_value(period_values[start[b]])}, untreated in "
            f"{format_value(first_off[b])}"
            for b in bad_units
        }
        raise NonAbsorbingTreatmentError(
            f"column {treatment!r} (the treatment indicator) switches off after switching on "
            f"within {bad_units.size} {unit_role}s of {unit!r}: "
            f"{_units_text(unit_values, bad_units, detail)} ({format_rows(index[off])}). "
            "The estimators assume absorbing treatment: a unit stays treated from its first "
            "treated period on. If the programme ended, keep the indicator at 1 after the "
            "start (the effect then includes the after-effects) or drop the unit's later "
            "periods; if the column records something else (e.g. attendance that year), "
            "derive the indicator from each unit's first treated period."
        )
    if first_treated is None or first_treated not in data.columns or first_treated == treatment:
        return
    starts = pd.to_numeric(data[first_treated], errors="coerce").to_numpy(dtype=float)
    period = pd.to_numeric(data[time], errors="coerce").to_numpy(dtype=float)
    if np.isnan(period[usable]).all():
        return
    starts = np.where(np.isnan(starts), 0.0, starts)
    expected = (starts > 0) & (period >= starts)
    clash = usable & ~np.isnan(period) & (expected != treated)
    if clash.any():
        bad_units = np.unique(codes[clash])
        raise InconsistentTreatmentError(
            f"column {treatment!r} (the treatment indicator) disagrees with column "
            f"{first_treated!r} (the first treated period) of the same rows in "
            f"{bad_units.size} {unit_role}s of {unit!r}: {_units_text(unit_values, bad_units)} "
            f"({format_rows(index[clash])}). A row is treated exactly when {first_treated!r} "
            f"is set (> 0) and {time!r} is on or after it. Fix whichever column is wrong, or "
            "if the programme has a lag or anticipation, shift one of them consistently."
        )


def check_start_constant(
    first: np.ndarray, units: pd.Series, *, column: str, estimator: str
) -> None:
    """Refuse a first-treated period that changes within a unit (treatment must be absorbing).

    ``first`` holds each row's first treated period (0 for never treated, missing values
    already replaced); ``units`` is the frame's unit column (its index labels name the rows).
    """
    codes, unit_values = pd.factorize(units, sort=True)
    usable = codes >= 0
    first, index, codes = first[usable], units.index[usable], codes[usable]
    n_units = len(unit_values)
    lo = np.full(n_units, np.inf)
    hi = np.full(n_units, -np.inf)
    np.minimum.at(lo, codes, first)
    np.maximum.at(hi, codes, first)
    varies = (lo != hi)[codes]
    if varies.any():
        bad_units = np.unique(codes[varies])
        detail = {b: f"{format_value(lo[b])} and {format_value(hi[b])}" for b in bad_units}
        raise NonAbsorbingTreatmentError(
            f"column {column!r} (the first treated period) varies within units of "
            f"{units.name!r}: it must be constant within each unit, but {bad_units.size} units "
            f"change it (units {_units_text(unit_values, bad_units, detail)}; "
            f"{format_rows(index[varies])}). {estimator} needs absorbing treatment: a unit "
            "stays treated from its first treated period on. Give each unit its first treated "
            "period (0 or missing if never treated), or model switching treatment another way."
        )


# --- pass/fail outcomes --------------------------------------------------------------------

_BINARY_VALUES = (0, 1, True, False)


def is_binary(values) -> bool:
    """Whether ``values`` (an array or Series) are all 0/1 (or True/False), missing values
    ignored, with at least one present: a pass/fail outcome rather than a score."""
    array = np.asarray(values, dtype=float) if not isinstance(values, pd.Series) else None
    if array is None:
        series = values
        if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
            return False
        array = series.to_numpy(dtype=float, na_value=np.nan)
    present = array[~np.isnan(array)]
    return bool(present.size) and bool(np.isin(present, (0.0, 1.0)).all())


def _shown(values: pd.Series, limit: int = 5) -> str:
    distinct = pd.unique(values.to_numpy(dtype=object))[:limit]
    return ", ".join(format_value(v) for v in distinct)


def _binary_fix(bad: pd.Series, column: str) -> str:
    """The fix for the values found: map labels, or treat scores/percentages as what they are."""
    texts = [v for v in pd.unique(bad.to_numpy(dtype=object)) if isinstance(v, str | bytes)]
    if texts:
        if all(str(v).strip() in ("0", "1") for v in texts):
            return f"convert the text to numbers first: pandas.to_numeric(data[{column!r}])."
        first = texts[0]
        second = repr(texts[1]) if len(texts) > 1 else "..."
        return (
            f"map each label to 1 (passed, yes) or 0 (not passed, no) first, e.g. "
            f"data[{column!r}].map({{{first!r}: 1, {second}: 0}}) if {first!r} means passed, "
            "checking that every label is mapped (an unmapped one becomes missing)."
        )
    numbers = pd.to_numeric(bad, errors="coerce").dropna()
    if numbers.size and ((numbers > 0) & (numbers < 1)).all():
        return (
            "values between 0 and 1 look like proportions (school figures): give the "
            "proportion with its denominator (pupils) and check them with require_proportions, "
            "or use the pupil-level 0/1 records."
        )
    if numbers.size and (numbers > 1).all() and (numbers <= 100).all():
        return (
            "values above 1 look like percentages or scores: for a pass/fail outcome code "
            "each pupil 1 if they reached the standard and 0 if not; for a percentage of "
            "pupils, divide by 100 and give the denominator."
        )
    return "code each pupil 1 if they reached the standard (passed) and 0 if not."


def require_binary(
    data: pd.DataFrame, column: str, *, role: str = "outcome", allow_missing: bool = False
) -> np.ndarray:
    """``data[column]`` as a float array of 0.0/1.0 if it is a pass/fail column.

    Accepts bool columns (nullable ``"boolean"`` too), numeric columns holding only 0 and 1
    (integers or floats, nullable ``"Int64"`` too) and object columns of Python bools/0/1.
    Refuses anything else with :class:`~cpdimpact.errors.NotBinaryError` naming the column,
    the values, the first offending rows and the fix: ``2``, ``0.5``, ``-1``, ``"Y"``/``"N"``
    and ``"0"``/``"1"`` strings (never parsed silently). Missing values are refused unless
    ``allow_missing`` (they are then left as NaN for the caller to count). Nothing is modified.
    """
    series = data[column]
    missing = series.isna().to_numpy()
    if missing.any() and not allow_missing:
        raise NotBinaryError(
            f"column {column!r}{_role(role)} must be 0/1 (or True/False) for every row but is "
            f"missing at {format_rows(series.index[missing])}; drop those rows before fitting "
            "(and count them in the cohort flow log) or record the result."
        )
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        strings = np.zeros(len(series), dtype=bool)  # no per-row look needed (millions of rows)
    else:
        strings = series.map(lambda v: isinstance(v, str | bytes)).to_numpy(dtype=bool)
    numeric = ~strings & ~missing
    values = np.full(len(series), np.nan)
    if numeric.any():
        values[numeric] = pd.to_numeric(series[numeric], errors="coerce").to_numpy(
            dtype=float, na_value=np.nan
        )
    bad = ~missing & (strings | ~np.isin(values, (0.0, 1.0)))
    if bad.any():
        offending = series[bad]
        raise NotBinaryError(
            f"column {column!r}{_role(role)} must be 0/1 (or True/False), a pass/fail result "
            f"for each pupil, but holds {_shown(offending)} at "
            f"{format_rows(series.index[bad])}; {_binary_fix(offending, column)}"
        )
    return values


def require_proportions(
    data: pd.DataFrame, proportion: str, denominator: str, *, role: str = "outcome"
) -> tuple[np.ndarray, np.ndarray]:
    """A proportion column and its denominator, checked: ``(proportion, denominator)`` as floats.

    For aggregate pass/fail data (the share of a school's pupils reaching the standard, and
    how many pupils it is a share of). The proportion must lie in [0, 1] (a column of
    percentages is named as such), the denominator must be positive, and proportion x
    denominator, the number of pupils who passed, must be a whole number (to rounding of the
    proportion to 1e-6; a proportion published rounded to whole percents does not pass this
    check: give the counts instead). Missing or non-numeric values are refused. Raises
    :class:`~cpdimpact.errors.NotBinaryError` naming the column, rows and fix.
    """
    p_series, n_series = data[proportion], data[denominator]
    for column, series, what in (
        (proportion, p_series, f"the proportion{', ' + role if role else ''}"),
        (denominator, n_series, f"the denominator of {proportion!r}"),
    ):
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        if not numeric:
            raise NotBinaryError(
                f"column {column!r} ({what}) must be numeric but has dtype {series.dtype}; "
                "convert it with pandas.to_numeric."
            )
        gone = series.isna().to_numpy()
        if gone.any():
            raise NotBinaryError(
                f"column {column!r} ({what}) is missing at {format_rows(series.index[gone])}; "
                "drop those rows first and count them in the cohort flow log."
            )
    p = p_series.to_numpy(dtype=float)
    n = n_series.to_numpy(dtype=float)
    outside = ~((p >= 0) & (p <= 1))
    if outside.any():
        looks_percent = bool((p[outside] > 1).all() and (p[outside] <= 100).all())
        fix = (
            "the values look like percentages: divide the column by 100."
            if looks_percent
            else "a proportion is a share of pupils, from 0 to 1."
        )
        raise NotBinaryError(
            f"column {proportion!r} (the proportion{', ' + role if role else ''}) must lie in "
            f"[0, 1] but holds {_shown(p_series[outside])} at "
            f"{format_rows(p_series.index[outside])}; {fix}"
        )
    empty = ~(n > 0) | ~np.isfinite(n)
    if empty.any():
        raise NotBinaryError(
            f"column {denominator!r} (the denominator of {proportion!r}) must be a positive "
            f"number of pupils but holds {_shown(n_series[empty])} at "
            f"{format_rows(n_series.index[empty])}; drop rows with no pupils (and count them "
            "in the cohort flow log)."
        )
    successes = p * n
    fractional = np.abs(successes - np.round(successes)) > 1e-6 * np.maximum(n, 1.0)
    if fractional.any():
        raise NotBinaryError(
            f"columns {proportion!r} x {denominator!r} must give a whole number of pupils who "
            f"passed, but give {_shown(pd.Series(successes[fractional]))} at "
            f"{format_rows(p_series.index[fractional])}; check that {denominator!r} is the "
            f"denominator of {proportion!r} (not, say, the size of the whole year group), or "
            "give the counts of pupils who passed and the proportion computed from them."
        )
    return p, n
