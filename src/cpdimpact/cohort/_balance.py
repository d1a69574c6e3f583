"""Pre-period balance between the treated and comparison arms."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["standardised_difference", "balance_table"]


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


def balance_table(pupils: pd.DataFrame, schools: pd.DataFrame | None) -> pd.DataFrame:
    """Balance of the arms before any unit is exposed.

    Pupil-level rows use pupil records from years before the first treated unit starts
    (prior attainment, FSM, the outcome itself); school-level rows use one row per school
    (size from the schools table, when present). Columns: ``variable, level, treated_mean,
    comparison_mean, std_difference, variance_ratio, n_treated, n_comparison``.
    """
    starts = pupils.loc[pupils["treated"], "first_treated"]
    pre = pupils[pupils["year"] < starts.min()]
    arm = pre["treated"].to_numpy()
    rows = []
    for variable, binary in (("prior", False), ("fsm", True), ("outcome", False)):
        if variable in pre.columns and pre[variable].notna().any():
            values = pre[variable].astype(float)
            rows.append(_row(variable, "pupil", values[arm], values[~arm], binary))
    if schools is not None and "size" in schools.columns:
        school_arm = pupils.groupby("school", sort=True)["treated"].any()
        sizes = schools.set_index("school")["size"].reindex(school_arm.index).astype(float)
        rows.append(
            _row(
                "size", "school", sizes[school_arm.to_numpy()], sizes[~school_arm.to_numpy()], False
            )
        )
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
