r"""One row per school of pre-programme characteristics, the covariates matching needs.

Matching and weighting compare schools, not pupils: before a programme starts, schools that
take part and schools that could serve as comparisons are described by their attainment level
and trend, their share of pupils eligible for free school meals, their size and phase.
:func:`school_characteristics` computes these from pupil records, using only years before the
programme starts, so that nothing the programme might have changed enters the comparison.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from cpdimpact.errors import (
    DesignError,
    InvalidArgumentError,
    InvalidValueError,
    MissingColumnError,
)

__all__ = ["school_characteristics"]


def _tables(data):
    """(pupils, participation or None, schools or None, treated/first per school or None)."""
    if hasattr(data, "unit_years") and hasattr(data, "pupils") and hasattr(data, "spec"):
        pupils = data.pupils  # a Cohort: arms already assigned
        if "school" not in pupils.columns:
            raise MissingColumnError("the cohort's pupil records have no 'school' column")
        first = pupils.loc[pupils["treated"].astype(bool)].groupby("school")["first_treated"].min()
        return pupils, None, None, first
    if isinstance(data, Mapping):
        pupils, part, schools = data["pupils"], data.get("participation"), data.get("schools")
    else:
        pupils, part, schools = data.pupils, data.participation, data.schools
    first = None
    if part is not None and len(part):
        first = part.groupby("school")["start_year"].min()
    return pupils, part, schools, first


def school_characteristics(
    data,
    *,
    pre_years: int | Iterable[int] | None = None,
    outcome: str = "outcome",
) -> pd.DataFrame:
    r"""Pre-period characteristics of every school, for matching or weighting.

    Parameters
    ----------
    data
        :class:`~cpdimpact.records.Records` (or a mapping with ``pupils``, ``participation``
        and optionally ``schools`` tables under canonical column names) or a built
        :class:`~cpdimpact.cohort.Cohort`.
    pre_years
        Years describing the schools before the programme: an iterable of years, an integer
        ``k`` (the last ``k`` years before the earliest start) or ``None`` (every year before
        the earliest start). No year on or after the earliest start is allowed.
    outcome
        Pupil outcome column for the attainment level and trend.

    Returns
    -------
    pandas.DataFrame
        One row per school (sorted by id) with ``school``, ``treated`` (1 if the school takes
        part, 0 otherwise), ``first_treated`` (first start year, 0 if none), ``level`` (mean
        pupil outcome over the pre-period), ``trend`` (least-squares slope of the school's
        yearly mean outcome on year, per year; missing with fewer than two pre-period years),
        ``prior`` (mean prior attainment, when pupils have it), ``fsm_share`` (share of
        pre-period pupils eligible for FSM; the schools table's ``fsm_share`` when pupils
        lack ``fsm``), ``size`` (the schools table's ``size``, else mean pupils tested per
        pre-period year), ``phase`` and ``area`` (from the schools table, when present),
        ``n_pupils_pre`` and ``n_years_pre``. Schools with no pre-period pupil are kept with
        missing level and trend, so that matching on them fails loudly naming those schools.

    Notes
    -----
    The trend of school :math:`s` is
    :math:`\hat\beta_s = \sum_t (t-\bar t)(\bar y_{st}-\bar{\bar y}_s)/\sum_t (t-\bar t)^2`
    over its pre-period years :math:`t`, each year's mean weighted equally. Matching on the
    level and trend guards against comparing a school on the rise with one in decline, and
    a low last pre-period year (selection on a dip) shows up as a falling trend.

    Examples
    --------
    >>> from cpdimpact.datasets import city_partnership
    >>> from cpdimpact.comparison import school_characteristics
    >>> chars = school_characteristics(city_partnership(), pre_years=3)
    >>> list(chars.columns[:6])
    ['school', 'treated', 'first_treated', 'level', 'trend', 'prior']
    """
    pupils, _, schools, first = _tables(data)
    for column in ("school", "year", outcome):
        if column not in pupils.columns:
            raise MissingColumnError(
                f"column {column!r} is not in the pupil records; they have "
                f"{[str(c) for c in pupils.columns][:30]}"
            )
    years = pupils["year"]
    earliest = int(first.min()) if first is not None and len(first) else None
    if pre_years is None:
        if earliest is None:
            raise DesignError(
                "no school takes part in the programme, so the pre-period is undefined; pass "
                "pre_years=[...] explicitly."
            )
        chosen = sorted(int(y) for y in pd.unique(years) if y < earliest)
    elif isinstance(pre_years, int | np.integer) and not isinstance(pre_years, bool):
        if earliest is None:
            raise DesignError("pre_years=k needs a programme start; pass a list of years instead")
        before = sorted(int(y) for y in pd.unique(years) if y < earliest)
        if pre_years < 1:
            raise InvalidArgumentError(
                f"pre_years must be a positive number of years, got {pre_years}"
            )
        chosen = before[-int(pre_years) :]
    else:
        chosen = sorted(int(y) for y in pre_years)
    if not chosen:
        raise DesignError(
            f"no pupil records fall in the pre-period (years before {earliest}); the records "
            f"cover {sorted(int(y) for y in pd.unique(years))}."
        )
    if earliest is not None and max(chosen) >= earliest:
        raise InvalidValueError(
            f"pre_years {chosen} include {max(chosen)}, on or after the earliest programme "
            f"start ({earliest}); characteristics for matching must come from before any "
            "school is exposed."
        )
    pre = pupils.loc[years.isin(chosen)]
    by_school_year = pre.groupby(["school", "year"], sort=True)
    means = by_school_year[outcome].mean().rename("y").reset_index()
    means["t"] = means["year"].astype(float)
    centred_t = means["t"] - means.groupby("school")["t"].transform("mean")
    centred_y = means["y"] - means.groupby("school")["y"].transform("mean")
    sxy = (centred_t * centred_y).groupby(means["school"]).sum()
    sxx = (centred_t**2).groupby(means["school"]).sum()
    trend = (sxy / sxx.where(sxx > 0)).rename("trend")
    grouped = pre.groupby("school", sort=True)
    out = pd.DataFrame({"level": grouped[outcome].mean(), "trend": trend})
    if "prior" in pre.columns:
        out["prior"] = grouped["prior"].mean()
    if "fsm" in pre.columns:
        out["fsm_share"] = grouped["fsm"].mean()
    out["n_pupils_pre"] = grouped.size()
    out["n_years_pre"] = grouped["year"].nunique()
    all_ids = pd.Index(pd.unique(pupils["school"]))
    if schools is not None:
        all_ids = all_ids.union(pd.Index(schools["school"]))
    out = out.reindex(all_ids.sort_values())
    out.index.name = "school"
    if schools is not None:
        table = schools.set_index("school")
        if "fsm_share" not in out.columns and "fsm_share" in table.columns:
            out["fsm_share"] = table["fsm_share"].reindex(out.index)
        for column in ("size", "phase", "area"):
            if column in table.columns:
                out[column] = table[column].reindex(out.index)
    if "size" not in out.columns:
        out["size"] = out["n_pupils_pre"] / out["n_years_pre"]
    out["n_pupils_pre"] = out["n_pupils_pre"].fillna(0).astype(int)
    out["n_years_pre"] = out["n_years_pre"].fillna(0).astype(int)
    starts = first.reindex(out.index) if first is not None else pd.Series(np.nan, index=out.index)
    out.insert(0, "first_treated", starts.fillna(0).astype(int))
    out.insert(0, "treated", (out["first_treated"] > 0).astype(int))
    return out.reset_index()
