"""School-level workforce statistics as DfE publishes them, and turnover rates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from .. import dfe
from .._validate import check_choice
from ..errors import DuplicateRowsError, InvalidValueError, MissingColumnError, format_value
from ..records import _column_list, _read_text, user_rows
from ._records import YEAR_CONVENTION, TeacherRecords

__all__ = ["SchoolWorkforce", "school_workforce", "EES_COLUMNS", "WORKFORCE_COLUMNS", "RATES"]

#: The Explore Education Statistics column of each canonical column, per school-level file of
#: "School workforce in England": ``size`` ("Size of the school workforce - school level"),
#: ``turnover`` ("Teacher turnover - school level": where each school's teachers in one census
#: are a year later) and ``ratios`` ("Pupil to teacher ratios - school level"). Confirmed from
#: the data catalogue's previews of those files, except ``hc_all_teachers`` (read from the
#: same data set's parliamentary-constituency file, whose columns match). No school-level
#: file of entrants was found: ``entrants_fte`` and ``entrants_headcount`` are read only when
#: ``columns=`` names them.
EES_COLUMNS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "size": MappingProxyType(
            {
                "school": "school_urn",
                "year": "time_period",
                "teachers_fte": "fte_all_teachers",
                "teachers_headcount": "hc_all_teachers",
            }
        ),
        "turnover": MappingProxyType(
            {
                "school": "school_urn",
                "year": "time_period",
                "census_fte": "teacher_fte_in_census_year",
                "remained_fte": "remained_in_the_same_school",
                "left_teaching_fte": "left_the_state-funded_system",
                "moved_fte": "left_to_another_state-funded_school",
            }
        ),
        "ratios": MappingProxyType(
            {
                "school": "school_urn",
                "year": "time_period",
                "pupils_fte": "pupils_fte",
                "pupil_teacher_ratio": "pupil_to_qual_unqual_teacher_ratio",
            }
        ),
    }
)

#: Canonical value columns of the school workforce table.
WORKFORCE_COLUMNS = (
    "teachers_fte",
    "teachers_headcount",
    "census_fte",
    "remained_fte",
    "moved_fte",
    "left_teaching_fte",
    "entrants_fte",
    "entrants_headcount",
    "pupils_fte",
    "pupil_teacher_ratio",
)

#: The turnover rates of :meth:`SchoolWorkforce.turnover_rates`: numerator over denominator.
RATES: Mapping[str, tuple[tuple[str, ...], str]] = MappingProxyType(
    {
        "leaving_rate": (("left_teaching_fte",), "census_fte"),
        "moving_rate": (("moved_fte",), "census_fte"),
        "turnover_rate": (("left_teaching_fte", "moved_fte"), "census_fte"),
        "retention_rate": (("remained_fte",), "census_fte"),
        "entrant_rate": (("entrants_fte",), "teachers_fte"),
    }
)
_EXTRA = ("entrants_fte", "entrants_headcount")


@dataclass(frozen=True, eq=False)
class SchoolWorkforce:
    """School-by-year workforce statistics in the shape DfE publishes them.

    Read DfE's Explore Education Statistics school-level files with :meth:`from_csv` or
    :meth:`from_frames`, or compute the same table from teacher records with
    :func:`school_workforce`.

    Parameters
    ----------
    table
        One row per school and ``year`` (:data:`~cpdimpact.workforce.YEAR_CONVENTION`; EES
        ``time_period`` 201819 is 2019) with any of :data:`WORKFORCE_COLUMNS`:
        ``teachers_fte`` and ``teachers_headcount`` (teachers in post), ``census_fte`` (the
        FTE of the teachers in that census whose next year is known) and, of it,
        ``remained_fte`` (in the same school at the next census), ``moved_fte`` (in another
        state-funded school) and ``left_teaching_fte`` (left the state-funded system),
        ``entrants_fte`` / ``entrants_headcount`` (in post, not in the school at the last
        census), ``pupils_fte`` and ``pupil_teacher_ratio``; missing where a cell was
        suppressed.
    markers
        The cells read as missing because they held a marker (``c``, ``x``, ``z``, ``SUPP``,
        ...): ``file``, ``column``, ``marker``, ``reason`` and ``cells``.
    source
        Where the figures come from, in words.
    notes
        What was read how (rows of other geographic levels left out, academic years read).

    See Also
    --------
    cpdimpact.dfe.MARKERS : the markers read as missing, with their reasons.

    Examples
    --------
    >>> import pandas as pd
    >>> from cpdimpact.workforce import SchoolWorkforce
    >>> turnover = pd.DataFrame({
    ...     "time_period": [201819, 201819], "geographic_level": ["School", "School"],
    ...     "school_urn": [100000, 100005], "teacher_fte_in_census_year": ["14.2", "3"],
    ...     "remained_in_the_same_school": ["11.2", "c"],
    ...     "left_the_state-funded_system": ["1", "c"],
    ...     "left_to_another_state-funded_school": ["2", "c"]})
    >>> wf = SchoolWorkforce.from_frames(turnover=turnover)
    >>> wf.turnover_rates()["leaving_rate"].round(3).tolist()
    [0.07, nan]
    """

    table: pd.DataFrame
    markers: pd.DataFrame = field(default_factory=lambda: _markers([]))
    source: str = ""
    notes: tuple[str, ...] = ()

    @classmethod
    def from_frames(
        cls,
        *,
        size: pd.DataFrame | None = None,
        turnover: pd.DataFrame | None = None,
        ratios: pd.DataFrame | None = None,
        columns: Mapping[str, str] | None = None,
        na_values: Iterable[str] | Mapping[str, str] | None = None,
        source: str = "",
    ) -> SchoolWorkforce:
        """Read school-level workforce files given as DataFrames (never modified).

        Parameters
        ----------
        size, turnover, ratios
            The Explore Education Statistics school-level files (see :data:`EES_COLUMNS`);
            any of them. Rows of another ``geographic_level`` than ``"School"`` are left out
            and counted in :attr:`notes`.
        columns
            Canonical name -> your column, replacing :data:`EES_COLUMNS` for files laid out
            differently (every file), e.g. ``{"school": "URN", "entrants_fte": "entrants"}``.
        na_values
            Markers of your own, a list or ``{marker: reason}``, on top of
            :data:`cpdimpact.dfe.MARKERS`.
        source
            Where the figures come from, for reports.

        Returns
        -------
        SchoolWorkforce
            The files joined by school and year.

        Raises
        ------
        cpdimpact.errors.MissingColumnError
            A file without its school or year column; the message lists its columns.
        cpdimpact.errors.UnknownMarkerError
            A cell that is neither a number nor a known marker.
        cpdimpact.errors.DuplicateRowsError
            Two rows of one school and year in one file.
        """
        frames = {"size": size, "turnover": turnover, "ratios": ratios}
        return cls._read(frames, {}, {}, columns, na_values, source)

    @classmethod
    def from_csv(
        cls,
        *,
        size: str | Path | None = None,
        turnover: str | Path | None = None,
        ratios: str | Path | None = None,
        columns: Mapping[str, str] | None = None,
        na_values: Iterable[str] | Mapping[str, str] | None = None,
        encoding: str | None = None,
        source: str = "",
    ) -> SchoolWorkforce:
        """Read school-level workforce CSV files as downloaded; messages name their lines.

        Parameters
        ----------
        size, turnover, ratios
            Paths of the files (see :meth:`from_frames`).
        columns, na_values, source
            As :meth:`from_frames`.
        encoding
            The files' encoding; UTF-8 (with or without a byte-order mark), else cp1252.

        Returns
        -------
        SchoolWorkforce
            As :meth:`from_frames`.

        Raises
        ------
        cpdimpact.errors.DataError
            As :meth:`from_frames`; a file that cannot be decoded.
        """
        frames, raws, files = {}, {}, {}
        for name, path in (("size", size), ("turnover", turnover), ("ratios", ratios)):
            if path is None:
                continue
            files[name] = Path(path).name
            text, _ = dfe._decode(Path(path).read_bytes(), encoding, files[name])
            frames[name], raws[name], _ = _read_text(text, {})
        return cls._read(frames, raws, files, columns, na_values, source)

    @classmethod
    def _read(cls, frames, raws, files, columns, na_values, source) -> SchoolWorkforce:
        markers = dfe._marker_table(None, na_values)
        tables, found, notes = [], [], []
        for name, frame in frames.items():
            if frame is None:
                continue
            where = repr(files[name]) if name in files else f"the {name} file"
            wanted = {**EES_COLUMNS[name], **{k: v for k, v in (columns or {}).items()}}
            if name != "size":
                wanted = {
                    k: v for k, v in wanted.items() if k not in _EXTRA or k in (columns or {})
                }
            raw = raws.get(name, frame)
            table, marks, said = _read_file(frame, raw, wanted, where, markers)
            tables.append(table)
            found += [[files.get(name, name), *m] for m in marks]
            notes += said
        if not tables:
            raise MissingColumnError(
                "SchoolWorkforce needs at least one file: size=, turnover= or ratios=."
            )
        table = tables[0]
        for other in tables[1:]:
            table = table.merge(other, on=["school", "year"], how="outer", suffixes=("", "_2"))
            table = table.drop(columns=[c for c in table.columns if c.endswith("_2")])
        table = table.sort_values(["school", "year"], kind="stable").reset_index(drop=True)
        return cls(table=table, markers=_markers(found), source=source, notes=tuple(notes))

    def turnover_rates(self) -> pd.DataFrame:
        """Leaving, moving, turnover, retention and entrant rates by school and year.

        Returns
        -------
        pandas.DataFrame
            ``school``, ``year``, the denominators ``census_fte`` and ``teachers_fte``, and
            each rate of :data:`RATES` the table has the columns for: ``leaving_rate`` (left
            state-funded teaching by the next census, over the census FTE), ``moving_rate``
            (moved school), ``turnover_rate`` (either), ``retention_rate`` (stayed) and
            ``entrant_rate`` (entrants over teachers in post). Missing where a figure or its
            denominator is missing (suppressed) or the denominator is 0.

        Notes
        -----
        Rates are of FTE, as DfE's school-level turnover file counts teachers. A row of
        year t describes the teachers in the census of year t and where they are in the
        census of t + 1 (EES ``time_period`` 201819: the November 2018 census and November
        2019).
        """
        out = self.table[["school", "year"]].copy()
        for column in ("census_fte", "teachers_fte"):
            if column in self.table.columns:
                out[column] = self.table[column]
        for rate, (parts, denominator) in RATES.items():
            if denominator not in self.table.columns or not all(
                p in self.table.columns for p in parts
            ):
                continue
            below = self.table[denominator].where(self.table[denominator] > 0)
            out[rate] = sum(self.table[p] for p in parts) / below
        return out

    def panel(
        self,
        rate: str = "leaving_rate",
        participation: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """A rate as a school-by-year panel for the DiD estimators.

        Parameters
        ----------
        rate
            One of :data:`RATES`.
        participation
            ``school`` and ``start_year`` (canonical names, e.g.
            ``TeacherRecords.participation``); the earliest start of each school is its
            ``first_treated``.

        Returns
        -------
        pandas.DataFrame
            ``school``, ``unit`` (the same), ``year``, ``outcome`` (the rate), ``weight``
            (its denominator, for analytic weights), ``first_treated`` (0 when never),
            ``treated`` and ``exposed``. Rows whose rate is missing are left out and counted
            in ``DataFrame.attrs["missing"]``.
        """
        check_choice(rate, "rate", tuple(RATES))
        rates = self.turnover_rates()
        if rate not in rates.columns:
            raise MissingColumnError(
                f"the workforce table has no columns for {rate!r} (it needs "
                f"{', '.join(RATES[rate][0])} and {RATES[rate][1]}); it has "
                f"{_column_list(self.table.columns)}."
            )
        out = rates[["school", "year"]].assign(
            unit=rates["school"], outcome=rates[rate], weight=rates[RATES[rate][1]]
        )
        starts = (
            participation.groupby("school")["start_year"].min()
            if participation is not None
            else pd.Series(dtype="int64")
        )
        first = out["school"].map(starts).fillna(0).astype(np.int64)
        out = out.assign(
            first_treated=first,
            treated=(first > 0).astype(np.int64),
            exposed=((first > 0) & (out["year"] >= first)).astype(np.int64),
        )
        missing = out["outcome"].isna().to_numpy(dtype=bool)
        out = out[~missing].reset_index(drop=True)
        out.attrs["missing"] = int(missing.sum())
        return out


def _markers(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["file", "column", "marker", "reason", "cells"])
    return frame.astype({"cells": "int64"})


def _read_file(frame, raw, wanted, where, markers):
    """One EES file: School rows, canonical names, test years, numbers with markers kept."""
    notes = []
    level = next((c for c in frame.columns if str(c) == "geographic_level"), None)
    if level is not None:
        school_rows = (frame[level].astype("string").str.strip() == "School").fillna(False)
        school_rows = school_rows.to_numpy(dtype=bool)
        if not school_rows.all():
            notes.append(
                f"{where}: {int((~school_rows).sum())} rows of other geographic levels "
                "(national, regional, local authority) left out"
            )
        frame, raw = frame[school_rows], raw[school_rows]
    for canonical in ("school", "year"):
        if wanted[canonical] not in frame.columns:
            raise MissingColumnError(
                f"{where} has no column {wanted[canonical]!r} (the {canonical}); it has "
                f"{_column_list(frame.columns)}. Name yours with "
                f"columns={{{canonical!r}: 'your column'}}."
            )
    table = pd.DataFrame(index=frame.index)
    table["school"] = frame[wanted["school"]]
    years = dfe.test_years(frame[wanted["year"]].rename(wanted["year"]))
    if years.isna().any():
        bad = frame.index[years.isna().to_numpy(dtype=bool)]
        raise InvalidValueError(
            f"column {wanted['year']!r} of {where} is empty in {user_rows(frame, bad)}; every "
            f"row needs its year ({YEAR_CONVENTION})."
        )
    table["year"] = years.astype("int64")
    if (
        not pd.api.types.is_numeric_dtype(frame[wanted["year"]])
        or (frame[wanted["year"]] > 9999).any()
    ):
        notes.append(f"{where}: academic years ({wanted['year']!r}) read as their summer")
    marks = []
    for canonical, column in wanted.items():
        if canonical in ("school", "year") or column not in frame.columns:
            continue
        values, reasons = dfe.read_cells(
            raw[column].rename(column), column=column, na_values=markers, source=where
        )
        table[canonical] = values.to_numpy()
        for marker, cells in reasons.dropna().value_counts(sort=False).items():
            marks.append([column, marker, markers.get(marker, ""), int(cells)])
    twice = table.duplicated(["school", "year"], keep=False).to_numpy(dtype=bool)
    if twice.any():
        bad = table.index[twice]
        first = table[twice].iloc[0]
        raise DuplicateRowsError(
            f"{where} holds school {format_value(first['school'])} twice in "
            f"{int(first['year'])} ({user_rows(frame, bad)}); a school-level file has one row "
            "per school and year. Keep one file per release, or filter it to one school type."
        )
    return table.reset_index(drop=True), marks, notes


def school_workforce(records: TeacherRecords) -> SchoolWorkforce:
    """The school-level published shape computed from teacher records.

    Parameters
    ----------
    records
        The teacher records.

    Returns
    -------
    SchoolWorkforce
        One row per school and census year: ``teachers_fte`` and ``teachers_headcount`` in
        post; ``census_fte`` (the same FTE, in every year but the last) and, of it,
        ``remained_fte``, ``moved_fte`` and ``left_teaching_fte`` by the next census (missing
        in the last year); ``entrants_fte`` / ``entrants_headcount``: in post, but not in
        that school at the previous census (missing in the first year). Without an ``fte``
        column every teacher counts as 1 FTE; a teacher whose FTE is missing counts in the
        headcounts but not in the FTE sums.

    Notes
    -----
    These are DfE's school-level turnover definitions applied to the records, so a school's
    ``leaving_rate`` here and in the published file agree when both come from one census.
    A returner counts as leaving in the year they were absent and as an entrant when back.

    Examples
    --------
    >>> from cpdimpact.datasets import simulate_careers
    >>> from cpdimpact.workforce import school_workforce
    >>> wf = school_workforce(simulate_careers("city_partnership", seed=1, scale=0.25))
    >>> sorted(wf.turnover_rates().columns)[:3]
    ['census_fte', 'entrant_rate', 'leaving_rate']
    """
    census = records.census
    posts = census[census["in_post"].to_numpy(dtype=bool)]
    fte = (
        posts["fte"].astype(float) if "fte" in posts.columns else pd.Series(1.0, index=posts.index)
    )
    base = pd.DataFrame(
        {
            "teacher": posts["teacher"].to_numpy(),
            "school": posts["school"].to_numpy(),
            "year": posts["year"].to_numpy(),
            "fte": fte.to_numpy(),
        }
    )
    first, last = records.years
    nxt = base[["teacher", "school", "year"]].assign(year=base["year"] - 1)
    joined = base.merge(nxt, on=["teacher", "year"], how="left", suffixes=("", "_next"))
    known = joined["year"] < last
    remained = known & (joined["school_next"] == joined["school"])
    moved = known & joined["school_next"].notna() & (joined["school_next"] != joined["school"])
    left = known & joined["school_next"].isna()
    prev = base[["teacher", "school", "year"]].assign(year=base["year"] + 1, was=1)
    joined = joined.merge(prev, on=["teacher", "school", "year"], how="left")
    entrant = (joined["year"] > first) & joined["was"].isna()
    f = joined["fte"]
    parts = joined[["school", "year"]].assign(
        teachers_fte=f,
        teachers_headcount=1,
        census_fte=f.where(known, 0.0),
        remained_fte=f.where(remained, 0.0),
        moved_fte=f.where(moved, 0.0),
        left_teaching_fte=f.where(left, 0.0),
        entrants_fte=f.where(entrant, 0.0),
        entrants_headcount=entrant.astype(np.int64),
    )
    table = parts.groupby(["school", "year"], sort=True).sum(min_count=1).reset_index()
    last_year = (table["year"] == last).to_numpy()
    first_year = (table["year"] == first).to_numpy()
    for column in ("census_fte", "remained_fte", "moved_fte", "left_teaching_fte"):
        table.loc[last_year, column] = np.nan
    for column in ("entrants_fte", "entrants_headcount"):
        table[column] = table[column].astype(float)
        table.loc[first_year, column] = np.nan
    return SchoolWorkforce(
        table=table,
        source="computed from teacher records (DfE school-level turnover definitions)",
    )
