"""What an estimate on a pass/fail (0/1) outcome measures, shared by every estimator.

A linear model (a DiD, a trial's regression, a multilevel DiD) fitted to a 0/1 outcome is a
linear probability model: its estimates are differences in proportions (x100 = percentage
points). :func:`pass_value` recognises such an outcome (0/1, or 0/100 as the cohort stage holds
one), :func:`units_text` says what the estimates are, :func:`outcome_scale` gives a result its
``outcome_kind``, ``pass_value`` and ``treated_proportion`` (checking that each implied
counterfactual proportion stays in 0-100%) and :func:`outcome_scale_facts` the summary lines.
One rule, one place: :mod:`cpdimpact.did` and :mod:`cpdimpact.multilevel` both read it here.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._guards import is_binary
from .errors import ProbabilityBoundsWarning

__all__ = [
    "BINARY_OUTCOME_TEXT",
    "PERCENT_OUTCOME_TEXT",
    "outcome_scale",
    "outcome_scale_facts",
    "pass_value",
    "units_text",
]

#: What an estimate on a 0/1 outcome is, in the words of a summary and a report.
BINARY_OUTCOME_TEXT = (
    "0/1 (pass/fail): the estimates are differences in proportions from a linear probability "
    "model (x100 = percentage points)"
)
#: The same for a pass/fail outcome held as 0/100 (as the cohort stage holds one).
PERCENT_OUTCOME_TEXT = (
    "0/100 (pass/fail held as percent): the estimates are differences in percentage points "
    "from a linear probability model"
)


def pass_value(y: np.ndarray) -> float | None:
    """The value coding a pass when ``y`` is a pass/fail outcome: 1.0 for 0/1 (booleans too),
    100.0 for 0/100 (a 0/1 outcome held in percent); ``None`` for any other outcome."""
    if is_binary(y):
        return 1.0
    values = np.asarray(y, dtype=float)
    present = values[~np.isnan(values)]
    if present.size and np.isin(present, (0.0, 100.0)).all() and (present == 100.0).any():
        return 100.0
    return None


def units_text(outcome_kind: str, value: float | None, outcome: str) -> str:
    """What a result's estimates measure, for its ``estimate_units``."""
    if outcome_kind != "pass_fail":
        return f"units of {outcome!r}"
    return PERCENT_OUTCOME_TEXT if value == 100.0 else BINARY_OUTCOME_TEXT


def outcome_scale(
    y: np.ndarray,
    weights: np.ndarray | None,
    checks: list[tuple[str, np.ndarray, float]],
    notes: list[str],
    *,
    after: np.ndarray | None = None,
    depth: int = 2,
) -> dict:
    """``outcome_kind``, ``pass_value`` and ``treated_proportion`` for a result; for a pass/fail
    outcome, a check that each linear-probability counterfactual stays a proportion.

    ``y`` is the outcome of the rows used, 0/1 or 0/100 (:func:`pass_value`); each check is
    ``(label, treated rows, estimate)``: the proportion observed in those rows (pupil-weighted
    with ``weights``) minus the estimate (both as fractions) is what they would have had without
    the programme, and must lie in [0, 1] for the estimate to convert to an odds ratio
    (:func:`cpdimpact.effects.difference_to_odds_ratio`). When it does not, one
    :class:`~cpdimpact.errors.ProbabilityBoundsWarning` names every check that fails (its text
    is kept in ``notes``). ``treated_proportion`` is the proportion (a fraction, whatever the
    coding) in the rows ``after`` flags (treated rows after the start), by default the first
    check's rows. Any other outcome gives ``outcome_kind="score"`` and no check.
    """
    value = pass_value(y)
    if value is None:
        return {"outcome_kind": "score", "treated_proportion": None, "pass_value": None}

    def proportion(rows: np.ndarray) -> float:
        w = None if weights is None else weights[rows]
        return float(np.average(y[rows], weights=w)) / value

    outside = []
    for label, rows, estimate in checks:
        if not rows.any() or not np.isfinite(estimate):
            continue
        p1 = proportion(rows)
        p0 = p1 - float(estimate) / value
        if not 0.0 <= p0 <= 1.0:
            outside.append(f"{label}: {100 * p1:.1f}% observed, {100 * p0:.1f}% implied")
    if outside:
        more = f"; and {len(outside) - 5} more" if len(outside) > 5 else ""
        shown = "; ".join(outside[:5]) + more
        message = (
            "the outcome is pass/fail, so the estimates are differences in proportions (a "
            "linear probability model), but the proportion the treated rows would have had "
            f"without the programme (observed minus the estimate) lies outside 0-100% ({shown}). "
            "The linear model extrapolates there: the percentage-point estimate cannot be "
            "converted to an odds ratio or an effect size. Check the estimate, or model the "
            "outcome with a logistic model (MultilevelModel(family='binomial'))."
        )
        warnings.warn(message, ProbabilityBoundsWarning, stacklevel=depth + 1)
        notes.append(message)
    if after is None and checks:
        after = checks[0][1]
    first = proportion(after) if after is not None and after.any() else None
    return {"outcome_kind": "pass_fail", "treated_proportion": first, "pass_value": value}


def outcome_scale_facts(result) -> list[tuple[str, str]]:
    """The summary line saying that a result's estimates are differences in proportions (none
    for a continuous outcome)."""
    if getattr(result, "outcome_kind", "score") != "pass_fail":
        return []
    text = units_text("pass_fail", getattr(result, "pass_value", 1.0), "")
    facts = [("Outcome scale", text)]
    p1 = getattr(result, "treated_proportion", None)
    if p1 is not None:
        facts.append(("Treated rows passing (after the start)", f"{100 * p1:.1f}%"))
    return facts
