"""Pre-period balance: treated against comparison arm, or earliest against later starters."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["standardised_difference", "balance_groups", "balance_table"]


def standardised_difference(
    treated_mean: float, comparison_mean: float, treated_var: float, comparison_var: float
) -> float:
    r"""Standardised mean difference with the average of the two arms' variances.

    .. math:: d = \frac{\bar x_T - \bar x_C}{\sqrt{(s_T^2 + s_C^2)/2}}

    For a 0/1 variable pass :math:`p(1-p)` as each variance (Austin 2009, *Stat. Med.* 28).
    Returns ``nan`` when both variances are zero.
    """
    pooled = np.sqrt((treated_var + comparison_var) / 2)
    if not pooled > 0:
        return float("nan")
    return float((treated_mean - comparison_mean) / pooled)


def _row(variable, level, treated: pd.Series, comparison: pd.Series, binary: bool) -> dict:
    treated, comparison = treated.dropna(), comparison.dropna()
    mt, mc = float(treated.mean()), float(comparison.mean())
    if binary:
        vt, vc = mt * (1 - mt), mc * (1 - mc)
    else:
        vt, vc = float(treated.var(ddof=1)), float(comparison.var(ddof=1))
    return {
        "variable": variable,
        "level": level,
        "treated_mean": mt,
        "comparison_mean": mc,
        "std_difference": standardised_difference(mt, mc, vt, vc),
        "variance_ratio": (vt / vc) if vc > 0 else float("nan"),
        "n_treated": len(treated),
        "n_comparison": len(comparison),
    }


def balance_groups(pupils: pd.DataFrame) -> tuple[str, str]:
    """Who :func:`balance_table` compares, as two labels (first group, second group).

    ``("intervention", "comparison")`` when the cohort has a comparison arm (units that never
    take part, or later starters in a not-yet-treated design); when every analysed unit takes
    part but starts differ (a staggered national roll-out), the earliest start cohort against
    the later ones, e.g. ``("earliest cohort (started 2019)", "later cohorts (started 2021)")``.
    """
    return _contrast(pupils)[2]


def _contrast(pupils: pd.DataFrame):
    """Masks of the two compared groups over ``pupils``, their labels and the first start.

    Returns ``(first, second, labels, before)``: the balance table compares the records of
    ``first`` and ``second`` in years before ``before`` (the earliest start), when no unit is
    exposed yet.
    """
    treated = pupils["treated"].to_numpy(dtype=bool)
    starts = pupils["first_treated"].to_numpy()
    earliest = int(starts[treated].min()) if treated.any() else 0
    # Distinct starts hashed, then sorted (not a Python set or a sort of every record: a
    # national cohort holds millions)
    later = [int(s) for s in np.sort(pd.unique(starts[treated])) if s != earliest]
    if treated.all() and later:
        first = starts == earliest
        labels = (
            f"earliest cohort (started {earliest})",
            f"later cohort{'s' if len(later) > 1 else ''} (started {', '.join(map(str, later))})",
        )
        return first, treated & ~first, labels, earliest
    return treated, ~treated, ("intervention", "comparison"), earliest


def balance_table(pupils: pd.DataFrame, schools: pd.DataFrame | None) -> pd.DataFrame:
    """Balance before any unit is exposed: the arms, or early against late starters.

    With a comparison arm (never-treated units, or later starters in a not-yet-treated
    design) the treated arm is compared with it. When every unit takes part and starts differ
    (a staggered roll-out with no never-treated unit), the earliest start cohort (the pilot) is
    compared with the later cohorts instead; :func:`balance_groups` names the two groups, and
    the ``treated_*`` columns then hold the earliest cohort and the ``comparison_*`` columns
    the later ones. Pupil-level rows use pupil records from years before the earliest start
    (prior attainment, FSM, the outcome itself); school-level rows use one row per school (size
    from the schools table, when present; a school belongs to the first group when any of its
    units does). Columns: ``variable, level, treated_mean, comparison_mean, std_difference,
    variance_ratio, n_treated, n_comparison``.
    """
    first, second, _, before = _contrast(pupils)
    pre = (pupils["year"] < before).to_numpy()
    rows = []
    for variable, binary in (("prior", False), ("fsm", True), ("outcome", False)):
        if variable in pupils.columns and pupils.loc[pre, variable].notna().any():
            values = pupils[variable].astype(float)
            rows.append(_row(variable, "pupil", values[pre & first], values[pre & second], binary))
    if schools is not None and "size" in schools.columns:
        groups = pd.DataFrame({"school": pupils["school"].to_numpy(), "a": first, "b": second})
        by_school = groups.groupby("school", sort=True)[["a", "b"]].any()
        in_first = by_school["a"].to_numpy()
        in_second = by_school["b"].to_numpy() & ~in_first
        sizes = schools.set_index("school")["size"].reindex(by_school.index).astype(float)
        rows.append(_row("size", "school", sizes[in_first], sizes[in_second], False))
    columns = [
        "variable",
        "level",
        "treated_mean",
        "comparison_mean",
        "std_difference",
        "variance_ratio",
        "n_treated",
        "n_comparison",
    ]
    return pd.DataFrame(rows, columns=columns)
