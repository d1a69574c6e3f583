"""The report's headline in plain words: what happened, how sure we are, and for FSM pupils.

A charity's reader should not need the table to know the answer. As in Education Endowment
Foundation evaluation reports, the words say what the interval allows us to conclude: an effect
is called positive or negative only when its whole interval lies on one side of zero; otherwise
the sentence starts by saying that we cannot rule out no effect. Months of progress are the EEF
Toolkit conversion already in the headline table (:func:`cpdimpact.effects.months_of_progress`).
"""

from __future__ import annotations

import pandas as pd

from .._breakdown import subgroup_label

__all__ = ["finding_sentence", "headline_paragraph"]

#: Who each headline row is about, and whom they are compared with, as the sentence names
#: them; keyed by the evaluation's group labels.
_WHO = {
    "All pupils": ("Pupils in participating schools", "pupils in the comparison schools"),
    subgroup_label("fsm"): (
        "Pupils eligible for free school meals (FSM) in participating schools",
        "FSM pupils in the comparison schools",
    ),
    # DfE's published split: eligible for FSM in the last six years, or looked after
    subgroup_label("disadvantaged"): (
        "Disadvantaged pupils in participating schools",
        "disadvantaged pupils in the comparison schools",
    ),
}


def _months(months: float) -> str:
    """``2`` -> "about 2 months'", ``1`` -> "about one month's" (magnitude only)."""
    n = abs(int(months))
    return "about one month's" if n == 1 else f"about {n} months'"


def _bound(value: float) -> str:
    """An interval bound to two decimals, or three when two would print a non-zero bound as
    0.00 (which would contradict "the interval lies above zero")."""
    text = f"{value:.2f}"
    return f"{value:.3f}" if text in ("0.00", "-0.00") and value != 0 else text


def finding_sentence(
    who: str, others: str, estimate, lower, upper, months, level: str, units: str | None = None
) -> str:
    """One finding in plain words, by where the interval lies relative to zero.

    Parameters
    ----------
    who : str
        The pupils the estimate is about, capitalised ("Pupils in participating schools").
    others : str
        Whom they are compared with ("pupils in the comparison schools").
    estimate, lower, upper : float
        The effect size and its interval; ``nan`` when the group was not estimated.
    months : float
        Months of progress for ``estimate`` (EEF conversion), ``nan`` if none.
    level : str
        The interval's level as printed ("95%").
    units : str, optional
        The estimate's units when it is not an effect size ("percentage points", for
        published figures without a pupil-level SD); months are then ``nan``.

    Returns
    -------
    str
        A positive finding when ``lower > 0``, a negative one when ``upper < 0``, and otherwise
        one that starts "We cannot rule out no effect".
    """
    if any(pd.isna(v) for v in (estimate, lower, upper)):
        return f"{who}: no effect could be estimated (the tables below say why)."
    low, high = _bound(lower), _bound(upper)
    size = f"effect size {estimate:.2f}" if units is None else f"{estimate:+.2f} {units}"
    numbers = f"{size}; {level} confidence interval {low} to {high}"
    has_months = not pd.isna(months)
    if lower > 0 or upper < 0:
        positive = lower > 0
        if units is not None:
            progress = (
                f"gained {abs(estimate):.2f} {units} {'more' if positive else 'less'} than {others}"
            )
            numbers = f"{level} confidence interval {low} to {high}"
        elif has_months and int(months) != 0:
            progress = (
                f"made {_months(months)} additional progress compared with {others}"
                if positive
                else f"made {_months(months)} less progress than {others}"
            )
        else:
            progress = (
                f"made {'slightly more' if positive else 'slightly less'} progress than "
                f"{others}, less than one month's worth"
            )
        side, sign = ("above", "positive") if positive else ("below", "negative")
        return (
            f"{who} {progress} ({numbers}). The interval lies {side} zero: the data point to "
            f"a {sign} effect."
        )
    about = ""
    if has_months:
        about = (
            " (no months' progress either way)"
            if int(months) == 0
            else f" ({_months(months)} {'additional' if months > 0 else 'less'} progress)"
        )
    shown = f"{estimate:.2f}" if units is None else f"{estimate:+.2f} {units}"
    return (
        f"We cannot rule out no effect for {who[0].lower()}{who[1:]}: the estimate is "
        f"{shown}{about}, but its {level} confidence interval, {low} to {high}, "
        "includes zero."
    )


def _outcome(result) -> str:
    """The outcome in words (:meth:`Cohort.outcome_words <cpdimpact.cohort.Cohort.outcome_words>`)."""
    return result.cohort.outcome_words()


def headline_paragraph(result) -> str:
    """The headline paragraph of an evaluation report: the finding for all pupils, then for
    FSM pupils when they are a subgroup, then what kind of comparison it is."""
    head = result.headline
    level = f"{100 * (1 - result.evaluation.alpha):g}%"
    sizes = result.has_effect_size
    columns = (
        ("effect_size", "ci_lower", "ci_upper")
        if sizes
        else ("estimate", "estimate_lower", "estimate_upper")
    )
    noun = "school" if result.cohort.published is None else result.cohort.published.level
    sentences = []
    for group in _WHO:
        rows = head.loc[head["group"] == group]
        if rows.empty:
            continue
        row = rows.iloc[0]
        who = tuple(w.replace("schools", f"{noun}s") for w in _WHO[group])
        sentences.append(
            finding_sentence(
                *who,
                *(row[c] for c in columns),
                row["months"],
                level,
                units=None if sizes else f"{result.outcome_units} in {_outcome(result)}",
            )
        )
    never = bool((result.cohort.pupils["first_treated"] == 0).any())
    compared = (
        f"{noun}s that did not take part"
        if never
        else f"{noun}s that had not yet started the programme"
    )
    sentences.append(
        f"The comparison is with {compared}, not chosen at random, so differences between the "
        f"{noun}s that the data cannot show may remain (see the caveats and the design below)."
    )
    return " ".join(sentences)
