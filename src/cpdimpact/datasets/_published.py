"""Pupils turned into the figures DfE publishes: unit-by-year means and counts, split by
disadvantage, small cohorts suppressed."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .._disclosure import is_suppressed
from .._validate import check_bool, check_choice, check_int
from ..dfe import MARKERS
from ..errors import (
    ArgumentTypeError,
    InvalidValueError,
    MissingColumnError,
    format_rows,
    format_value,
)
from ..published import GROUPS
from ..records import Records

__all__ = ["DFE_SUPPRESS_BELOW", "GROUPS", "published_from_pupils"]

#: DfE publishes a school's (or group's) figures from 6 pupils: 5 or fewer are suppressed.
DFE_SUPPRESS_BELOW = 6
_SUPP = "SUPP"


def published_from_pupils(
    records: Records,
    *,
    level: str = "school",
    suppress_below: int = DFE_SUPPRESS_BELOW,
    groups: bool = True,
) -> pd.DataFrame:
    """Pupil records aggregated and suppressed as DfE publishes them: the published table.

    Parameters
    ----------
    records
        :class:`~cpdimpact.records.Records` (e.g. :func:`city_partnership`) with pupils'
        ``school``, ``year``, ``outcome`` and, for ``groups``, ``fsm`` (1 disadvantaged, 0
        not); ``area`` comes from the schools table. Not modified.
    level
        ``"school"``: one figure per school and year (performance tables); ``"area"``: one per
        area (local authority) and year, over every pupil of its schools.
    suppress_below
        Figures of a cohort or group of 1 to ``suppress_below - 1`` pupils are suppressed. The
        default, 6, is DfE's rule for KS2 performance tables (5 or fewer pupils: ``SUPP``);
        0 suppresses nothing.
    groups
        Also give the disadvantaged and not-disadvantaged figures (from the pupils' ``fsm``).

    Returns
    -------
    pandas.DataFrame
        The shape of :meth:`cpdimpact.dfe.PublishedTable.panel`: ``school`` (school level
        only), ``area`` (when the schools table has one), ``year``, ``group`` (``"all"``,
        ``"disadvantaged"``, ``"not disadvantaged"``), ``outcome`` (the mean of the pupils'
        outcomes; missing where suppressed), ``pupils`` (the pupils with an outcome behind the
        figure; missing where DfE suppresses the count too), ``marker`` (``"SUPP"`` where
        suppressed, else missing) and ``reason`` (``dfe.MARKERS["SUPP"]``). One row per unit,
        year and group, sorted by unit, year and group.

    Raises
    ------
    ArgumentTypeError
        ``records`` is not :class:`~cpdimpact.records.Records`, or an option has the wrong type.
    InvalidArgumentError
        ``level`` is not ``"school"`` or ``"area"``, or ``suppress_below`` is negative.
    MissingColumnError
        ``fsm`` is missing with ``groups=True``, or ``area`` with ``level="area"``.
    InvalidValueError
        ``level="area"`` and some pupils' schools have no area.

    Notes
    -----
    The rule is DfE's in its KS2 school performance tables, as applied in its published
    downloads for 2016/17 to 2018/19 (``tests/reference/dfe/``; ``tests/test_la_data.py``
    checks it cell by cell against the files): the figures of a school with 5 or fewer
    eligible pupils (``TELIG``) are ``SUPP``, and so are its group counts; the figures of a
    group of 1 to 5 pupils are ``SUPP``, and so are those of the other group, which with the
    whole cohort's figure would reveal them (complementary suppression). A group with no
    pupils has no row (DfE leaves the cell blank) and the other group's figure is ``SUPP``
    too, as DfE's files have it for average scaled scores in every year and for percentages
    in 2018/19 (the 2016/17 and 2017/18 files published the percentage). Schools explain the same threshold to parents (no
    figure is published for a cohort or group of fewer than 6 pupils: e.g. Flintham Primary
    School's pupil premium strategy 2022-23, www.flintham.notts.sch.uk/?p=992). Published figures are rounded (whole scaled-score
    points and percentages); these are not, so they equal the means of the pupils' outcomes.

    Pupils with a missing outcome count in no figure; pupils with a missing ``fsm`` count in
    ``"all"`` only.

    Examples
    --------
    >>> from cpdimpact.datasets import city_partnership, published_from_pupils
    >>> table = published_from_pupils(city_partnership(seed=1, scale=0.1))
    >>> list(table.columns)
    ['school', 'area', 'year', 'group', 'outcome', 'pupils', 'marker', 'reason']
    """
    if not isinstance(records, Records):
        raise ArgumentTypeError(
            f"records must be cpdimpact Records (e.g. datasets.city_partnership()), got "
            f"{type(records).__name__}."
        )
    check_choice(level, "level", ("school", "area"))
    threshold = check_int(suppress_below, "suppress_below", minimum=0)
    groups = check_bool(groups, "groups")
    pupils = records.pupils
    if groups and "fsm" not in pupils.columns:
        raise MissingColumnError(
            "the pupils table has no 'fsm' column, so there is no disadvantaged split: give "
            "the pupils' free-school-meals flag as 'fsm', or groups=False."
        )
    schools = records.schools
    area_of = None
    if schools is not None and "area" in schools.columns:
        area_of = schools.drop_duplicates("school").set_index("school")["area"]
    if level == "area" and area_of is None:
        raise MissingColumnError(
            "level='area' needs each school's area: the schools table has no 'area' column. "
            "Give the schools table with 'school' and 'area', or level='school'."
        )
    frame = pd.DataFrame(
        {
            "school": pupils["school"].to_numpy(),
            "year": pupils["year"].to_numpy(),
            "fsm": pupils["fsm"].to_numpy() if groups else np.nan,
            "outcome": pupils["outcome"].to_numpy(dtype=float),
        }
    )
    if area_of is not None:
        frame["area"] = frame["school"].map(area_of).to_numpy()
        lost = frame["area"].isna()
        if level == "area" and lost.any():  # a groupby would drop them without a word
            schools = pd.unique(frame.loc[lost, "school"])
            raise InvalidValueError(
                f"level='area': {int(lost.sum())} pupil records are in schools with no area in the "
                f"schools table ({format_rows([format_value(s) for s in schools])}). Give every school "
                "its 'area', or publish at level='school'."
            )
    unit = "school" if level == "school" else "area"
    out = publish(frame, unit, {"outcome": "outcome"}, threshold, groups=groups)["outcome"]
    if level == "school" and area_of is not None:
        out.insert(1, "area", out["school"].map(area_of).to_numpy())
    return out


def publish(
    frame: pd.DataFrame,
    unit: str,
    measures: Mapping[str, str],
    threshold: int,
    *,
    groups: bool,
) -> dict[str, pd.DataFrame]:
    """The published table of each measure: ``measures`` maps a name to a column of ``frame``
    (pupils: ``unit``, ``year``, ``fsm``, values); see :func:`published_from_pupils`."""
    keys = [unit, "year"]
    tables = {}
    for name, column in measures.items():
        scored = frame[frame[column].notna()]
        whole = scored.groupby(keys, sort=True)[column].agg(["mean", "count"])
        parts = {"all": whole}
        if groups:
            flag = scored["fsm"]
            for group, value in (("disadvantaged", 1), ("not disadvantaged", 0)):
                part = scored[flag == value].groupby(keys, sort=True)[column]
                parts[group] = part.agg(["mean", "count"]).reindex(whole.index, fill_value=0)
                parts[group]["mean"] = parts[group]["mean"].where(parts[group]["count"] > 0)
        tables[name] = _suppress(parts, keys, threshold)
    return tables


def _suppress(parts: dict[str, pd.DataFrame], keys: list[str], threshold: int) -> pd.DataFrame:
    """Long table of the figures with DfE's primary and complementary suppression."""

    def small(counts: pd.Series, *, none: bool = False) -> np.ndarray:
        return np.array(
            [is_suppressed(int(c), threshold, suppress_zero=none) for c in counts], dtype=bool
        )

    whole = parts["all"]
    cohort_small = small(whole["count"])
    pieces = []
    for group, table in parts.items():
        suppressed = cohort_small.copy()
        pupils = table["count"].astype(float)
        if group != "all":
            other = parts["disadvantaged" if group == "not disadvantaged" else "not disadvantaged"]
            # the other group small or empty: this figure would reveal it (or the cohort's)
            suppressed |= small(table["count"]) | small(other["count"], none=True)
            pupils = pupils.mask(cohort_small)  # DfE suppresses the split's counts too
        piece = pd.DataFrame(
            {
                **{k: table.index.get_level_values(k) for k in keys},
                "group": group,
                "outcome": table["mean"].mask(suppressed).to_numpy(),
                "pupils": pupils.to_numpy(),
                "marker": pd.array(np.where(suppressed, _SUPP, None), dtype="string"),
            }
        )
        pieces.append(piece[table["count"].to_numpy() > 0])
    out = pd.concat(pieces, ignore_index=True)
    out["reason"] = out["marker"].map({_SUPP: MARKERS[_SUPP]}, na_action="ignore")
    out["reason"] = out["reason"].astype("string")
    order = out["group"].map({g: i for i, g in enumerate(GROUPS)})
    out = out.assign(_order=order).sort_values([*keys, "_order"], kind="stable")
    return out.drop(columns="_order").reset_index(drop=True)
