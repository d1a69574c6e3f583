"""Published figures: school or area means and percentages, with the pupils behind each.

Most evaluations of a council or charity programme start from figures DfE publishes for every
school and local authority every year (performance tables, Explore Education Statistics, the
Local Authority Interactive Tool), not from pupil records. :class:`PublishedRecords` holds them
in one shape, the *figures* table:

``school`` (URN) or ``area`` (local-authority code)
    The unit the figure describes: schools for school-level figures, areas for area-level
    ones (then the table has no ``school`` column). School rows may also carry ``area``.
``year``
    The test year (the summer of the tests: 2018/19 is ``2019``).
``outcome``
    The published mean (e.g. an average scaled score) or percentage (e.g. the percentage
    reaching the expected standard, ``0``-``100``); missing where the cell was suppressed.
``pupils``
    The number of pupils behind the figure (weights every estimate). A figure without it is
    excluded and counted.
``group`` (optional)
    ``"all"``, ``"disadvantaged"`` or ``"not disadvantaged"``, as DfE splits its figures
    (disadvantaged: eligible for free school meals in the last six years, or looked after).
    Without it every row is ``"all"``.
``marker``, ``reason`` (optional)
    The cell marker a missing figure was read from (``SUPP``, ``NE``, ``c``...) and what it
    means, as :meth:`cpdimpact.dfe.PublishedTable.panel` gives them; they name the reasons
    figures were lost in the cohort's flow log.

The participation table is the pupil path's (``school``, or ``area`` for area-level figures,
and ``start_year``). An evaluation on these figures is an evaluation of schools (or areas)
weighted by their pupils. The spread of school means is not the spread of pupils' scores, so an
effect size needs a pupil-level SD from elsewhere (``CohortSpec(pupil_sd=...)``); see
``docs/published_data.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar, Literal

import numpy as np
import pandas as pd

from .errors import InvalidArgumentError, InvalidValueError, MissingColumnError, format_value
from .records import (
    Records,
    _check_column_map,
    _dfe_starts,
    _is_numeric,
    _require_finite,
    _require_ids,
    _require_known,
    _require_non_negative,
    _require_numeric,
    _require_present,
    _require_unique,
    _require_whole,
    fingerprint_tables,
    links_from_performance_tables,
    renamed_tables,
    user_rows,
)
from .records import _Source as _TableSource

__all__ = [
    "PublishedRecords",
    "GROUPS",
    "MEASURES",
    "FIGURE_PUPILS",
    "FIGURE_COLUMNS",
    "DISADVANTAGED",
]

#: The pupil groups DfE splits its figures by, as the ``group`` column writes them.
GROUPS = ("all", "disadvantaged", "not disadvantaged")

#: What a published outcome is, and the units of a difference in it.
MEASURES: Mapping[str, str] = MappingProxyType(
    {"mean": "points", "percentage": "percentage points"}
)

#: The column of a figure's pupils in the rows the cohort builder sees (never a user's name).
FIGURE_PUPILS = "figure_pupils"

#: The 0/1 column marking the disadvantaged rows of the published group split.
DISADVANTAGED = "disadvantaged"

#: Canonical names of the figures table beyond the pupil records' (``columns=`` may map them).
FIGURE_COLUMNS = ("pupils", "group", "marker", "reason")


@dataclass(frozen=True, eq=False)
class PublishedRecords:
    """Published school or area figures and programme participation, under canonical names.

    Build one with :meth:`from_frames`, :meth:`from_csv` or :meth:`from_performance_tables`.
    The tables are never modified.

    Parameters
    ----------
    figures
        One row per unit, year and group (see the module docstring for the columns).
    participation
        Programme enrolments: ``school`` (or ``area`` for area-level figures) and
        ``start_year`` (the first test year the programme could affect), optionally
        ``strand`` and ``dose_hours``. A start written as an academic year (``'2019/20'``,
        ``201920``) or a date (``01/09/2019``) is read as the first test year it could affect
        (:func:`cpdimpact.dfe.first_affected_test_year`: 2020 for both), as ``Records`` reads
        it with ``format="dfe"``; the conversion is noted in :attr:`reading_notes`.
    schools
        Optional school characteristics (``school``, ``area``, ``size``, ``fsm_share``), as
        :func:`cpdimpact.dfe.read_gias` gives them.
    measure
        ``"mean"`` (an average score: differences in points) or ``"percentage"`` (a percentage
        of pupils, ``0``-``100``: differences in percentage points).
    outcome_label
        What the outcome is, in words, for the report ("KS2 maths average scaled score").
    source
        Where the figures come from, for the report ("DfE KS2 performance tables 2017-2019").
    columns
        Mapping from a canonical name to the user's column name.
    links
        Schools that changed URN (an academy conversion), as
        :class:`Records <cpdimpact.records.Records>` takes them (``predecessor``,
        ``successor``, ``date``; Get Information About Schools' links download; or
        :func:`~cpdimpact.records.links_from_performance_tables`): each chain of URNs is
        analysed under its latest URN, so a converter's figures form one series. School figures
        only.

    Attributes
    ----------
    reading_notes
        What was read how: start dates and academic years converted to test years, one note
        each; empty when the participation table gave test years.

    Examples
    --------
    >>> import pandas as pd
    >>> from cpdimpact import PublishedRecords
    >>> figures = pd.DataFrame({"URN": [1, 1, 2, 2], "year": [2018, 2019] * 2,
    ...                         "score": [103.0, 105.0, 104.0, 104.5], "n": [30, 28, 60, 61]})
    >>> part = pd.DataFrame({"URN": [1], "start_year": [2019]})
    >>> rec = PublishedRecords.from_frames(
    ...     figures=figures, participation=part,
    ...     columns={"school": "URN", "outcome": "score", "pupils": "n"})
    >>> rec.level, rec.groups
    ('school', ('all',))
    """

    figures: pd.DataFrame
    participation: pd.DataFrame
    schools: pd.DataFrame | None = None
    measure: Literal["mean", "percentage"] = "mean"
    outcome_label: str = ""
    source: str = ""
    columns: Mapping[str, str] = field(default_factory=dict)
    links: pd.DataFrame | None = None
    reading_notes: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    kind: ClassVar[str] = "published"

    def __post_init__(self) -> None:
        if self.measure not in MEASURES:
            raise InvalidArgumentError(
                f"measure={format_value(self.measure)}: give 'mean' for an average score or "
                "'percentage' for a percentage of pupils (0-100)."
            )
        for name in ("figures", "participation"):
            if not isinstance(getattr(self, name), pd.DataFrame):
                raise InvalidArgumentError(
                    f"{name} must be a pandas DataFrame, got {type(getattr(self, name)).__name__}"
                )
        _check_column_map(self.columns or {}, FIGURE_COLUMNS)
        participation, notes = _start_years_as_test_years(self.participation, self.columns)
        object.__setattr__(self, "participation", participation)
        object.__setattr__(self, "reading_notes", notes)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frames(
        cls,
        *,
        figures: pd.DataFrame,
        participation: pd.DataFrame,
        schools: pd.DataFrame | None = None,
        columns: Mapping[str, str] | None = None,
        measure: Literal["mean", "percentage"] = "mean",
        outcome_label: str = "",
        source: str = "",
        links: pd.DataFrame | None = None,
    ) -> PublishedRecords:
        """Published figures from a user's DataFrames, renaming their columns.

        Parameters
        ----------
        figures, participation, schools
            The user's tables (copied, never modified).
        columns
            Mapping from a canonical name (``"school"``, ``"outcome"``, ``"pupils"``...) to
            the user's column name; it applies to every table holding that column.
        measure, outcome_label, source, links
            As the class.

        Returns
        -------
        PublishedRecords
        """
        columns = dict(columns or {})
        frames = {"figures": figures, "participation": participation, "schools": schools}
        tables = renamed_tables(frames, columns, FIGURE_COLUMNS)
        return cls(
            **tables,
            measure=measure,
            outcome_label=outcome_label,
            source=source,
            columns=columns,
            links=links,
        )

    @classmethod
    def from_csv(
        cls,
        *,
        figures: str | Path,
        participation: str | Path,
        schools: str | Path | None = None,
        columns: Mapping[str, str] | None = None,
        measure: Literal["mean", "percentage"] = "mean",
        outcome_label: str = "",
        source: str = "",
    ) -> PublishedRecords:
        """Published figures from CSV files (see :meth:`from_frames`).

        The figures file is read as written; a figure column holding DfE markers (``SUPP``,
        ``NE``, ``c``) or percentages written ``48%`` is read with
        :func:`cpdimpact.dfe.read_cells`, which keeps each marker and its reason.
        """
        from . import dfe

        def read(path):
            return None if path is None else pd.read_csv(path, encoding="utf-8-sig")

        frames = {
            "figures": read(figures),
            "participation": read(participation),
            "schools": read(schools),
        }
        outcome = dict(columns or {}).get("outcome", "outcome")
        raw = frames["figures"]
        if outcome in raw.columns and not pd.api.types.is_numeric_dtype(raw[outcome]):
            values, markers = dfe.read_cells(
                raw[outcome], column=outcome, source=Path(figures).name
            )
            reasons = markers.map(dfe.MARKERS, na_action="ignore")
            keep = [c for c in raw.columns if c not in ("marker", "reason")]
            raw = raw[keep].assign(**{outcome: values, "marker": markers, "reason": reasons})
            frames["figures"] = raw
        return cls.from_frames(
            **frames,
            columns=columns,
            measure=measure,
            outcome_label=outcome_label,
            source=source or Path(figures).name,
        )

    @classmethod
    def from_performance_tables(
        cls,
        tables,
        *,
        outcome: str,
        participation: pd.DataFrame,
        pupils: str | None = None,
        groups: bool = True,
        schools: pd.DataFrame | None = None,
        columns: Mapping[str, str] | None = None,
        measure: Literal["mean", "percentage"] | None = None,
        outcome_label: str = "",
        links: pd.DataFrame | None | Literal["published"] = "published",
    ) -> PublishedRecords:
        """School figures from DfE performance tables, through
        :meth:`PublishedTable.panel <cpdimpact.dfe.PublishedTable.panel>`.

        Parameters
        ----------
        tables
            A :class:`~cpdimpact.dfe.PublishedTable` (:func:`cpdimpact.dfe.read_performance_tables`).
        outcome
            The measure as DfE names it (``PTRWM_EXP``, ``READ_AVERAGE``, ``ATT8SCR``).
        participation
            Enrolments by ``school`` (URN) and ``start_year`` (renamed through ``columns``).
        pupils
            The column counting the pupils behind each figure (default as ``panel``).
        groups
            Keep DfE's disadvantaged / not disadvantaged split.
        schools, columns
            As :meth:`from_frames`.
        outcome_label
            What the outcome is, in words; default the measure's words
            (:data:`cpdimpact.dfe.MEASURE_LABELS`), else its DfE name.
        measure
            ``None`` (default): ``"percentage"`` for DfE's percentage measures (names
            starting ``PT``), else ``"mean"``.
        links
            Schools that changed URN (as the class). Default ``"published"``: the academy
            conversions the tables themselves report
            (:func:`~cpdimpact.records.links_from_performance_tables`); ``None`` for none.

        Returns
        -------
        PublishedRecords
        """
        from .dfe import MEASURE_LABELS

        figures = tables.panel(outcome, pupils=pupils, groups=groups)
        if measure is None:
            measure = "percentage" if outcome.upper().startswith("PT") else "mean"
        columns = dict(columns or {})
        # the panel is in canonical names already; only the user's tables are renamed
        user = {"participation": participation, "schools": schools}
        return cls(
            figures=figures,
            **renamed_tables(user, columns, FIGURE_COLUMNS),
            measure=measure,
            links=links_from_performance_tables(tables)
            if isinstance(links, str) and links == "published"
            else links,
            outcome_label=outcome_label or MEASURE_LABELS.get(outcome.upper(), outcome),
            source=(
                f"DfE school performance tables, test years {min(tables.years)}-"
                f"{max(tables.years)} ({len(tables.sources)} files)"
            ),
            columns=columns,
        )

    # ------------------------------------------------------------------ views
    @property
    def level(self) -> Literal["school", "area"]:
        """``"school"`` for school figures, ``"area"`` for area figures (no ``school``
        column)."""
        return "school" if "school" in self.figures.columns else "area"

    @property
    def groups(self) -> tuple[str, ...]:
        """The pupil groups the figures hold, in :data:`GROUPS` order."""
        if "group" not in self.figures.columns:
            return ("all",)
        present = set(self.figures["group"].dropna())
        return tuple(g for g in GROUPS if g in present)

    @property
    def lost_figures(self) -> pd.DataFrame:
        """Figures without a value, by group and reason: ``group, marker, reason, figures``
        (``reason`` "missing" where no marker was recorded)."""
        figures = self.figures
        missing = figures["outcome"].isna()
        frame = pd.DataFrame(
            {
                "group": figures["group"] if "group" in figures else "all",
                "marker": figures["marker"] if "marker" in figures else pd.NA,
                "reason": figures["reason"] if "reason" in figures else pd.NA,
            },
            index=figures.index,
        )[missing.to_numpy()]
        frame = frame.fillna({"marker": "", "reason": "missing"})
        counts = frame.groupby(["group", "marker", "reason"], sort=False).size()
        return counts.rename("figures").reset_index()

    def _user(self, canonical: str) -> str:
        return self.columns.get(canonical, canonical)

    def fingerprint(self) -> str:
        """SHA-256 fingerprint of the tables' contents, independent of row order (as
        :meth:`Records.fingerprint <cpdimpact.records.Records.fingerprint>`), with the
        measure."""
        names = ("figures", "participation", "schools", "links")
        tables = {name: getattr(self, name) for name in names}
        return fingerprint_tables(tables, salt=f"published:{self.measure}")

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check the tables; raise a :class:`~cpdimpact.errors.DataError` subclass on a problem.

        The figures need their unit, ``year`` and ``outcome``; years whole and present; the
        outcome and ``pupils`` numeric, finite and not negative (a percentage no more than
        100); ``group`` one of :data:`GROUPS`; one row per unit, year and group. The
        participation table needs the unit and ``start_year``, units that have figures and
        start years leaving an earlier year of figures. Messages name your columns and rows.
        """
        figures, part, unit = self.figures, self.participation, self.level
        cols = self.columns
        for column in ("year", "outcome"):
            if column not in figures.columns:
                raise MissingColumnError(
                    f"the figures table has no {self._user(column)!r} column; it has "
                    f"{list(map(str, figures.columns))[:20]}. Name it with columns="
                    f"{{'{column}': ...}}."
                )
        if unit == "area" and "area" not in figures.columns:
            raise MissingColumnError(
                "the figures table has neither a 'school' nor an 'area' column: name the unit "
                "each figure describes, e.g. columns={'school': 'URN'} or {'area': 'LA_code'}."
            )
        for column in ("year", "outcome", "pupils"):
            if column in figures.columns:
                _require_numeric(figures, "figures", column, cols)
        _require_ids(figures, "figures", unit, cols)
        _require_present(figures, "figures", "year", cols)
        _require_whole(figures, "figures", "year", cols)
        _require_finite_figures(figures, cols)
        for column in ("outcome", "pupils"):
            if column in figures.columns:
                _require_non_negative(figures, "figures", column, cols)
        if self.measure == "percentage":
            _require_percentages(figures, cols)
        if "group" in figures.columns:
            unknown = ~figures["group"].isin(GROUPS)
            if unknown.any():
                bad = figures.index[unknown.to_numpy()]
                raise InvalidValueError(
                    f"column {self._user('group')!r} of the figures table holds "
                    f"{format_value(figures.loc[bad[0], 'group'])} in {user_rows(figures, bad)}; "
                    f"write each group as one of {list(GROUPS)}."
                )
        keys = [unit, "year"] + (["group"] if "group" in figures.columns else [])
        _require_unique(figures, "figures", keys, cols, f"one row per {unit}, year and group")
        if figures["outcome"].isna().all():
            raise InvalidValueError(
                f"column {self._user('outcome')!r} of the figures table is entirely missing "
                f"({len(figures)} rows); point columns={{'outcome': ...}} at the published figure"
            )
        if "all" not in self.groups:
            raise InvalidValueError(
                "the figures table has no 'all' rows (the whole cohort's figure); the headline "
                "is estimated on them. Add them, or mark the whole-cohort rows group='all'."
            )
        for column in (unit, "start_year"):
            if column not in part.columns:
                raise MissingColumnError(
                    f"the participation table has no {self._user(column)!r} column; it needs "
                    f"{self._user(unit)!r} and {self._user('start_year')!r}."
                )
        _require_numeric(part, "participation", "start_year", cols)
        _require_present(part, "participation", "start_year", cols)
        _require_whole(part, "participation", "start_year", cols)
        _require_known(part, "participation", figures, [unit], cols, "figures")
        first, last = int(figures["year"].min()), int(figures["year"].max())
        outside = part.index[(part["start_year"] <= first) | (part["start_year"] > last)]
        if len(outside):
            raise InvalidValueError(
                f"column {self._user('start_year')!r} of the participation table has start "
                f"years outside the figures ({first}-{last}) in {user_rows(part, outside)}; a "
                "start year must leave at least one earlier year of figures and fall no later "
                f"than {last}."
            )

    # ------------------------------------------------------------------ the cohort's rows
    def as_records(self, group: str | tuple[str, ...] = "all") -> Records:
        """The figures of ``group`` as the rows the cohort builder reads: one "record" per
        figure (``pupil`` is the figure's row), its pupils in :data:`FIGURE_PUPILS`, the
        disadvantaged split as a 0/1 ``disadvantaged`` column, and each lost figure's marker
        kept for the flow log. An area-level unit is carried in ``school`` (the builder's unit
        column) and ``area``."""
        groups = (group,) if isinstance(group, str) else group
        figures = self.figures
        rows = (
            figures[figures["group"].isin(groups).to_numpy()]
            if "group" in figures.columns
            else figures
        )
        unit = rows[self.level]
        data = {
            "pupil": np.arange(len(rows)),
            "school": unit.to_numpy(),
            "year": rows["year"].to_numpy(),
            "outcome": rows["outcome"].to_numpy(dtype=float),
            FIGURE_PUPILS: (
                rows["pupils"].to_numpy(dtype=float)
                if "pupils" in rows
                else np.full(len(rows), np.nan)
            ),
        }
        if "area" in rows.columns:
            data["area"] = rows["area"].to_numpy()
        if "group" in rows.columns and set(groups) - {"all"}:
            data[DISADVANTAGED] = (rows["group"] == "disadvantaged").astype(float).to_numpy()
        pupils = pd.DataFrame(data, index=rows.index)
        part = self.participation
        if self.level == "area":
            part = part.rename(columns={"school": "_school", "area": "school"})
        schools = self.schools if self.level == "school" else None
        columns = {k: v for k, v in self.columns.items() if k not in ("pupil", *FIGURE_COLUMNS)}
        if self.level == "area":  # the builder's unit column holds the area
            columns["school"] = columns.pop("area", "area")
        records = Records(
            pupils=pupils,
            participation=part,
            schools=schools,
            columns=columns,
            links=self.links if self.level == "school" else None,
        )
        if "marker" in rows.columns:
            marks = rows["marker"].where(rows["outcome"].isna())
            marks = marks.where(marks.notna() & (marks.astype("string") != ""))
            reasons = rows["reason"] if "reason" in rows.columns else marks
            known = {
                str(m): str(r)
                for m, r in zip(marks[marks.notna()], reasons[marks.notna()], strict=True)
            }
            frame = pd.DataFrame({"outcome": marks.astype(object)}, index=pupils.index)
            object.__setattr__(records, "_cell_markers", {"pupils": frame})
            object.__setattr__(records, "_marker_reasons", known)
        return records


def _start_years_as_test_years(
    participation: pd.DataFrame, columns: Mapping[str, str]
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """``participation`` with start dates and academic years in ``start_year`` (``'2018/19'``,
    ``201819``, ``01/09/2018``) as the first test year they could affect, by the rule of
    :func:`cpdimpact.dfe.first_affected_test_year` that ``Records(format="dfe")`` applies, and
    a note on what was converted. Test years (whole numbers below 10,000) are taken as given,
    so a table of them is returned as it is."""
    if "start_year" not in participation.columns:
        return participation, ()
    starts = participation["start_year"]
    if _is_numeric(starts) and not (starts.abs() >= 10_000).any():
        return participation, ()
    label = columns.get("start_year", "start_year")
    years, notes = _dfe_starts(starts, label, _TableSource("participation"))
    return participation.assign(start_year=years), tuple(notes)


def _require_finite_figures(figures: pd.DataFrame, columns: Mapping[str, str]) -> None:
    """±inf is never a published figure (the pupil path's rule, on the figures table)."""
    numeric = figures[[c for c in ("year", "outcome", "pupils") if c in figures.columns]]
    _require_finite(numeric, "figures", columns)


def _require_percentages(figures: pd.DataFrame, columns: Mapping[str, str]) -> None:
    """A percentage is 0-100; all values within 0-1 are shares, written the other way."""
    values = figures["outcome"].to_numpy(dtype=float, na_value=np.nan)
    user = columns.get("outcome", "outcome")
    over = values > 100
    if over.any():
        bad = figures.index[over]
        raise InvalidValueError(
            f"column {user!r} of the figures table is a percentage (measure='percentage') but "
            f"holds values over 100 in {user_rows(figures, bad)}; is it an average score? Use "
            "measure='mean' for averages."
        )
    present = values[~np.isnan(values)]
    if len(present) and present.max() <= 1 and present.max() > 0:
        raise InvalidValueError(
            f"column {user!r} of the figures table is a percentage (measure='percentage') but "
            "every value is between 0 and 1: these look like shares. Multiply them by 100 "
            "(percentage points are the units of the effect)."
        )
