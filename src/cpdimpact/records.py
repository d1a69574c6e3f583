"""The four input tables every evaluation starts from, and their validation.

An evaluation reads four tables, in the shape English school records usually take:

``schools``
    one row per school: ``school`` (id), ``area`` (local authority or hub area), ``phase``,
    ``size`` (pupils on roll), ``fsm_share``.
``teachers``
    one row per teacher: ``teacher``, ``school``, ``years_service``. Teacher ids need only be
    unique within a school: the pair (school, teacher) identifies a teacher.
``pupils``
    one row per pupil per tested year: ``pupil``, ``school``, ``teacher`` (class teacher),
    ``year``, ``prior`` (prior attainment), ``outcome``, ``fsm``, ``sen``, ``eal``, ``sex``.
    A new year group is tested each year, so pupils differ by year.
``participation``
    one row per school or teacher enrolment in the programme: ``school``, ``teacher`` (missing
    for a whole-school enrolment), ``strand``, ``start_year``, ``dose_hours``.

A charity's own files rarely use these names; ``columns`` maps the canonical names to theirs,
e.g. ``columns={"school": "URN", "outcome": "ks2_maths"}``.

``year`` is the summer in which pupils sat the tests (the 2018/19 academic year's results are
``year=2019``) and ``start_year`` the first test year a programme could affect (a September 2019
start -> 2020). Extracts that write academic years, dates, yes/no flags and cell markers
(``SUPP``, ``A``) are read with ``format="dfe"`` (:meth:`Records.from_csv`), which keeps each
marker's reason (:attr:`Records.markers`); see ``docs/records.md``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import numbers
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import InitVar, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from . import dfe
from .errors import (
    CSV_LINE,
    AcademicYearError,
    ColumnMappingError,
    DataError,
    DuplicateRowsError,
    IdsReconciledWarning,
    InvalidArgumentError,
    InvalidValueError,
    LateStartWarning,
    MissingColumnError,
    SchoolLinkError,
    UnknownMarkerError,
    UnknownReferenceError,
    format_rows,
    format_value,
)

__all__ = [
    "Records",
    "TABLES",
    "REQUIRED",
    "OPTIONAL",
    "FORMATS",
    "LINK_COLUMNS",
    "GIAS_LINK_COLUMNS",
    "as_records",
    "links_from_performance_tables",
]

TABLES = ("schools", "teachers", "pupils", "participation")

#: Columns an evaluation cannot do without, per table.
REQUIRED: Mapping[str, tuple[str, ...]] = {
    "schools": ("school",),
    "teachers": ("teacher", "school"),
    "pupils": ("pupil", "school", "year", "outcome"),
    "participation": ("school", "start_year"),
}

#: Columns used when present, per table.
OPTIONAL: Mapping[str, tuple[str, ...]] = {
    "schools": ("area", "phase", "size", "fsm_share"),
    "teachers": ("years_service",),
    "pupils": ("teacher", "prior", "fsm", "sen", "eal", "sex"),
    "participation": ("teacher", "strand", "dose_hours"),
}

_NUMERIC = {
    "pupils": ("year", "outcome", "prior"),
    "participation": ("start_year", "dose_hours"),
    "schools": ("size", "fsm_share"),
    "teachers": ("years_service",),
}
_BINARY = {"pupils": ("fsm", "sen", "eal")}
#: Id columns per table. A missing teacher id has a meaning in pupils (no class teacher
#: recorded) and participation (a whole-school enrolment); every other id must be present.
_IDS = {
    "schools": ("school",),
    "teachers": ("school", "teacher"),
    "pupils": ("pupil", "school", "teacher"),
    "participation": ("school", "teacher"),
    "figures": ("school", "area"),  # published figures (cpdimpact.published)
}
_ID_MAY_BE_MISSING = {
    ("pupils", "teacher"): "no class teacher recorded",
    ("participation", "teacher"): "a whole-school enrolment",
}
#: Columns that every row must fill (a missing value cannot be excluded and counted). A
#: missing dose_hours is checked by the cohort build, where min_dose says whether it matters.
_NEVER_MISSING = {
    "pupils": ("year",),
    "participation": ("start_year",),
    "figures": ("year",),
}
#: Columns that hold whole years.
_WHOLE = {"pupils": ("year",), "participation": ("start_year",)}
#: Counts, hours and shares: a negative value is a data error.
_NON_NEGATIVE = {
    "participation": ("dose_hours",),
    "schools": ("size", "fsm_share"),
    "teachers": ("years_service",),
}


@dataclass(frozen=True, eq=False)
class Records:
    """The four input tables of an evaluation, under canonical column names.

    Build one with :meth:`from_frames` or :meth:`from_csv` (which rename a user's columns) or
    take one from :mod:`cpdimpact.datasets`. The tables are never modified by cpdimpact.

    Parameters
    ----------
    pupils
        Pupil-by-year records with the outcome.
    participation
        Programme enrolments of schools or teachers.
    schools
        School characteristics. When omitted, a table of the school ids found in ``pupils``.
    teachers
        Teacher characteristics; needed only for teacher-level exposure.
    columns
        Mapping from a canonical name to the user's column name (see :meth:`from_frames`).
    links
        Schools that changed URN: ``predecessor`` -> ``successor`` on ``date``, or Get
        Information About Schools' links download (see :data:`LINK_COLUMNS`). Each chain of
        URNs is analysed under its latest URN in every table; see "Schools that change URN"
        in ``docs/records.md``. Held in the simple shape once read.
    area_links
        Area (local-authority) codes that changed, in the same shapes: applied to the
        schools table's ``area``.
    link_files
        The files ``links`` and ``area_links`` were read from (``{"links": "links.csv"}``),
        named in messages; set by :meth:`from_csv`.

    Attributes
    ----------
    id_notes
        How ids spelled differently across tables (``'0100001'``, ``' 100001'``, ``100001``)
        were matched when the records were built, one note per table and column; empty when
        the ids agree as written. Each match is also announced by an
        :class:`~cpdimpact.errors.IdsReconciledWarning`; see ``docs/records.md``.
    reading_notes
        With ``format="dfe"``: what was read how (an encoding guessed, academic years and
        start dates converted, flags and percentages read), one note each; empty otherwise.
    markers
        With ``format="dfe"``: the cells read as missing because they held a marker
        (``SUPP``, ``A``, ...), counted by table, column, marker and reason.
    merges
        The links applied, one row per predecessor: ``level`` (``"school"`` or ``"area"``),
        ``predecessor``, ``successor``, ``analysed_as`` (the latest id of its chain),
        ``date``, ``link_type``, ``pupils`` (pupil records re-labelled) and ``schools``
        (school rows re-labelled). Empty without links.

    Examples
    --------
    >>> import pandas as pd
    >>> from cpdimpact import Records
    >>> pupils = pd.DataFrame({"upn": [1, 2], "urn": [10, 10], "year": [2019, 2019],
    ...                        "score": [104.0, 99.0]})
    >>> part = pd.DataFrame({"urn": [10], "start_year": [2020]})
    >>> rec = Records.from_frames(pupils=pupils, participation=part,
    ...                           columns={"pupil": "upn", "school": "urn", "outcome": "score"})
    >>> list(rec.pupils.columns)
    ['pupil', 'school', 'year', 'outcome']
    """

    pupils: pd.DataFrame
    participation: pd.DataFrame
    schools: pd.DataFrame | None = None
    teachers: pd.DataFrame | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    links: pd.DataFrame | None = None
    area_links: pd.DataFrame | None = None
    link_files: InitVar[Mapping[str, str] | None] = None
    #: The links applied (see :func:`_apply_links`); empty without links.
    merges: pd.DataFrame = field(default=None, init=False, repr=False)  # type: ignore[assignment]
    #: Per table, which rows (by position) survive the links (a school row per school).
    _link_kept: Mapping[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)
    #: How ids spelled differently across tables were matched (see :func:`_reconcile_ids`).
    id_notes: tuple[str, ...] = field(default=(), init=False, repr=False)
    #: What format="dfe" read and how (encodings, academic years, start dates, flags).
    reading_notes: tuple[str, ...] = field(default=(), init=False, repr=False)
    #: The marker of each marked cell, per table: a frame aligned with the table, one
    #: categorical column per column that had a marker (missing where no marker).
    _cell_markers: Mapping[str, pd.DataFrame] = field(default_factory=dict, init=False, repr=False)
    _marker_reasons: Mapping[str, str] = field(default_factory=dict, init=False, repr=False)

    kind: ClassVar[str] = "records"

    def __post_init__(self, link_files: Mapping[str, str] | None = None) -> None:
        _check_column_map(self.columns or {})
        tables, notes = _reconcile_ids(
            {name: getattr(self, name) for name in TABLES}, self.columns or {}
        )
        tables, links, merges, kept = _apply_links(
            tables, self.links, self.area_links, dict(link_files or {}), self.columns or {}
        )
        object.__setattr__(self, "links", links["links"])
        object.__setattr__(self, "area_links", links["area_links"])
        object.__setattr__(self, "merges", merges)
        object.__setattr__(self, "_link_kept", kept)
        for name, frame in tables.items():
            if frame is not getattr(self, name):
                object.__setattr__(self, name, frame)
        object.__setattr__(self, "id_notes", tuple(notes))
        if notes:
            warnings.warn(
                IdsReconciledWarning(
                    "ids spelled differently across tables were matched (see docs/records.md): "
                    + "; ".join(notes)
                ),
                stacklevel=3,
            )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frames(
        cls,
        *,
        pupils: pd.DataFrame,
        participation: pd.DataFrame,
        schools: pd.DataFrame | None = None,
        teachers: pd.DataFrame | None = None,
        columns: Mapping[str, str] | None = None,
        format: str | None = None,
        na_values: Iterable[str] | Mapping[str, str] | None = None,
        links: pd.DataFrame | None = None,
        area_links: pd.DataFrame | None = None,
    ) -> Records:
        """Build records from a user's DataFrames, renaming their columns to canonical names.

        Parameters
        ----------
        pupils, participation, schools, teachers
            The user's tables. They are copied, never modified.
        columns
            Mapping from a canonical name (``"outcome"``, ``"school"``, ...) to the user's column
            name. It applies to every table holding that column.
        format
            ``None`` (default): the tables are taken as they are. ``"dfe"``: values written the
            way DfE and school MIS extracts write them are read (academic years, cell markers,
            percentages, yes/no flags, start dates); see "Reading DfE and MIS extracts" in
            ``docs/records.md`` and :meth:`from_csv`.
        na_values
            With ``format="dfe"``: markers of your own read as missing, a list (reason
            ``"declared missing (na_values)"``) or a mapping ``{marker: reason}``.
        links
            Schools that changed URN (an academy conversion gives a school a new URN):
            columns ``predecessor``, ``successor`` and ``date`` (optionally ``link_type``), or
            Get Information About Schools' links download (``URN``, ``LinkURN``, ``LinkType``,
            ``LinkEstablishedDate``, ``LinkName``), or :func:`links_from_performance_tables`.
            Every table is then re-labelled so that each school has one id, the latest URN of
            its chain; see "Schools that change URN" in ``docs/records.md``. Not modified.
        area_links
            Local-authority (area) codes that changed, in the same shapes; the schools
            table's ``area`` is re-labelled to the latest code.

        Returns
        -------
        Records
            The tables under canonical names, ids reconciled and links applied (listed in
            :attr:`merges`); with ``format="dfe"``, the
            markers of the cells read as missing in :attr:`markers` and what was read how in
            :attr:`reading_notes`.

        Raises
        ------
        ColumnMappingError
            ``columns`` has an unknown canonical name, is written the wrong way round, or
            gives one column two names.
        AcademicYearError
            ``format="dfe"``: a year or programme start that cannot be read.
        UnknownMarkerError
            ``format="dfe"``: an outcome or covariate cell that is neither a number nor a known
            marker.
        SchoolLinkError
            ``links`` or ``area_links`` has unknown columns, an unreadable date or id, a
            cycle, a school split into two successors, or joins two schools that both have
            pupil records in one year.
        """
        frames = {
            "pupils": pupils,
            "participation": participation,
            "schools": schools,
            "teachers": teachers,
        }
        sources = {name: _Source(name) for name in TABLES}
        link_tables = {"links": links, "area_links": area_links}
        return cls._build(frames, {}, sources, columns, format, na_values, links=link_tables)

    @classmethod
    def _build(
        cls, frames, raws, sources, columns, format, na_values, notes=(), links=None, files=None
    ) -> Records:
        """Rename, read (``format="dfe"``) and construct: the one path of both constructors."""
        if format not in FORMATS:
            raise InvalidArgumentError(
                f"format={format_value(format)} is not a format Records reads: give "
                "format='dfe' for files written the way DfE and school MIS write them (academic "
                "years, markers such as SUPP, Y/N flags, day-first dates), or leave it out."
            )
        if format is None and na_values is not None:
            raise InvalidArgumentError(
                "na_values= declares cell markers, which are read only with format='dfe'; "
                "give format='dfe', or mark the cells missing yourself."
            )
        columns = dict(columns or {})
        tables = renamed_tables(frames, columns)
        rename = {user: canonical for canonical, user in columns.items()}
        links = {**dict(links or {}), "link_files": files}
        if format is None:
            return cls(**tables, columns=columns, **links)
        raws = {n: r.rename(columns=rename) for n, r in raws.items() if r is not None}
        tables, marks, read = _read_dfe(tables, raws, sources, columns, na_values)
        records = cls(**tables, columns=columns, **links)
        # rows the links folded into another (a predecessor's school row) leave the markers too
        marks = {
            n: m[records._link_kept[n]] if n in records._link_kept else m for n, m in marks.items()
        }
        object.__setattr__(records, "reading_notes", (*notes, *read))
        object.__setattr__(records, "_cell_markers", marks)
        object.__setattr__(records, "_marker_reasons", _dfe_markers(na_values))
        return records

    @classmethod
    def from_csv(
        cls,
        *,
        pupils: str | Path,
        participation: str | Path,
        schools: str | Path | None = None,
        teachers: str | Path | None = None,
        columns: Mapping[str, str] | None = None,
        format: str | None = None,
        encoding: str | None = None,
        na_values: Iterable[str] | Mapping[str, str] | None = None,
        links: str | Path | None = None,
        area_links: str | Path | None = None,
        **read_csv_kwargs,
    ) -> Records:
        """Read the tables from CSV files.

        Each table's index holds the file's line numbers (the header is line 1, the first
        record line 2; named ``"csv_line"``), so error messages point at the lines to fix.
        When ``read_csv_kwargs`` change which lines become rows (``skiprows``, ``header``,
        ``comment``, ...) or the lines cannot be matched to rows one for one, the index is
        pandas' default (row 0 is the first record) and messages say "rows".

        Parameters
        ----------
        pupils, participation, schools, teachers
            Paths of the CSV files (``schools`` and ``teachers`` optional).
        columns
            As for :meth:`from_frames`.
        format
            ``None`` (default): each file is read by :func:`pandas.read_csv` and taken as it
            is. ``"dfe"``: read the way DfE and school MIS extracts are written (see Notes).
        encoding
            The files' encoding. With ``format=None``, passed to :func:`pandas.read_csv`
            (default UTF-8). With ``format="dfe"``, default ``None``: UTF-8 (with or without a
            byte-order mark), else cp1252 (Excel's CSV on English Windows), the fallback
            noted in :attr:`reading_notes`; or the encoding given.
        na_values
            With ``format="dfe"``: markers of your own, a list (generic reason) or a mapping
            ``{marker: reason}``, e.g. ``{"DNS": "did not sit"}``. With ``format=None``,
            passed to :func:`pandas.read_csv`.
        links, area_links
            Paths of links tables, as for :meth:`from_frames`, read with the same options
            (``encoding``; ``format="dfe"`` decodes as for the other files). Dates are read
            day first (``01/09/2017``), ISO (``2017-09-01``) or ``yyyymmdd``; messages name
            the file and its CSV lines. ``columns`` does not apply to them.
        **read_csv_kwargs
            Further options of :func:`pandas.read_csv` (``sep``, ``usecols``, ...). With
            ``format="dfe"``, options that decide how cells are typed (``dtype``,
            ``converters``, ``keep_default_na``, ``true_values``, ...) are refused: the
            reader sets them.

        Returns
        -------
        Records
            As :meth:`from_frames`; with ``format="dfe"``, :attr:`markers` counts the cells
            read as missing by marker and reason.

        Raises
        ------
        DataError
            ``format="dfe"``: a file that cannot be decoded (the message names the file, the
            line and the byte, and the fix).
        AcademicYearError
            ``format="dfe"``: a year or programme start that cannot be read, naming the file,
            the column, the value, its CSV lines and the accepted forms.
        UnknownMarkerError
            ``format="dfe"``: an outcome or covariate cell that is neither a number nor a known
            marker, naming the file, the column, the value, its CSV lines and how to declare
            it with ``na_values=``.
        InvalidValueError
            ``format="dfe"``: a yes/no flag that is neither yes nor no.
        SchoolLinkError
            A links file that cannot be read or applied (see :meth:`from_frames`); the
            message names the file, the column, the values and the CSV lines.

        See Also
        --------
        cpdimpact.dfe : the readers ``format="dfe"`` applies.

        Notes
        -----
        ``format="dfe"`` reads, column by column (canonical names, after ``columns``):

        * ``year`` (pupils): academic years (``'2018/19'``, ``'2018-19'``), Explore Education
          Statistics ``time_period`` (``201819``) or test years, as the test year, the summer
          in which pupils sat the tests (2018/19 -> 2019; :func:`cpdimpact.dfe.test_year`);
        * ``start_year`` (participation): a date (day first, ``01/09/2019``, or ISO), an
          academic year or a test year, as the first test year the programme could affect
          (:func:`cpdimpact.dfe.first_affected_test_year`: a September 2019 start -> 2020; a
          start on or after 1 April -> the next year's tests, with a
          :class:`~cpdimpact.errors.LateStartWarning`);
        * ``outcome``, ``prior``, ``dose_hours``, ``size``, ``fsm_share``, ``years_service``
          and any other column of numbers: DfE and Explore Education Statistics markers
          (:data:`cpdimpact.dfe.MARKERS`), ``A`` (absent, :data:`cpdimpact.dfe.PUPIL_MARKERS`)
          and ``na_values`` are read as missing with their reason kept in :attr:`markers`;
          ``63%`` is 63.0, except in ``fsm_share`` (a share: ``48%`` is 0.48); ``1,204`` is
          1204. An empty cell is missing with no marker, as in any table;
        * ``fsm``, ``sen``, ``eal``: ``Y``/``N``, ``Yes``/``No``, ``TRUE``/``FALSE``,
          ``1``/``0`` as 1/0 (:func:`cpdimpact.dfe.read_flag`).

        Ids and text columns are read as :func:`pandas.read_csv` reads them (ids are then
        reconciled across tables as always). A column that holds no marker, percentage or
        flag is exactly as ``format=None`` reads it, so a clean file gives the same records
        either way.

        Examples
        --------
        >>> records = Records.from_csv(  # doctest: +SKIP
        ...     pupils="ks2_extract.csv", participation="enrolments.csv", format="dfe",
        ...     columns={"pupil": "UPN", "school": "URN", "outcome": "KS2_MATSCORE",
        ...              "year": "ACADYR", "start_year": "START_DATE"},
        ... )
        >>> records.markers  # doctest: +SKIP
        """
        na_values = csv_reading_options(format, encoding, na_values, read_csv_kwargs)
        paths = {
            "pupils": pupils,
            "participation": participation,
            "schools": schools,
            "teachers": teachers,
            "links": links,
            "area_links": area_links,
        }
        frames, raws, sources, notes = {}, {}, {}, []
        for name, path in paths.items():
            sources[name] = _Source(name)
            if path is None:
                frames[name] = None
            elif format is None:
                frame = pd.read_csv(path, **read_csv_kwargs)
                lines = _csv_line_numbers(path, len(frame), read_csv_kwargs)
                if lines is not None:
                    frame.index = pd.Index(lines, name=CSV_LINE)
                frames[name] = frame
            else:
                file = Path(path).name
                text, used = dfe._decode(Path(path).read_bytes(), encoding, file)
                if used == "cp1252" and encoding is None:
                    notes.append(
                        f"{file!r} is not UTF-8: read as cp1252 (Excel's CSV on English "
                        "Windows); give encoding= if it was written in another encoding"
                    )
                frames[name], raws[name], lines = _read_text(text, read_csv_kwargs)
                sources[name] = _Source(name, file, lines)
        link_tables = {name: frames.pop(name) for name in ("links", "area_links")}
        files = {name: Path(paths[name]).name for name in link_tables if paths[name] is not None}
        for name in link_tables:
            raws.pop(name, None)
            sources.pop(name, None)
        return cls._build(
            frames, raws, sources, columns, format, na_values, notes, link_tables, files
        )

    # ------------------------------------------------------------------ access
    def table(self, name: str) -> pd.DataFrame | None:
        """Return the table called ``name`` (one of :data:`TABLES`)."""
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}; tables are {', '.join(TABLES)}")
        return getattr(self, name)

    @property
    def markers(self) -> pd.DataFrame:
        """Cells read as missing because they held a marker, counted by marker and reason.

        Returns
        -------
        pandas.DataFrame
            One row per table, column and marker: ``table, column, marker, reason, cells``
            (``column`` under its canonical name), e.g. ``pupils, outcome, SUPP, suppressed:
            small cohort (disclosure control), 312``. Empty unless the records were read with
            ``format="dfe"`` and some cell held a marker.

        See Also
        --------
        marked : the marker of each cell.
        """
        rows = []
        for name in TABLES:
            frame = self._cell_markers.get(name)
            for column in () if frame is None else frame.columns:
                counts = frame[column].value_counts(sort=False)
                for marker, cells in counts[counts > 0].items():
                    rows.append((name, column, marker, self._marker_reasons[marker], int(cells)))
        out = pd.DataFrame(rows, columns=["table", "column", "marker", "reason", "cells"])
        return out.astype({"cells": "int64"})

    def marked(self, table: str, column: str) -> pd.Series:
        """The marker each cell of a column was read from, aligned with the table.

        Parameters
        ----------
        table
            One of :data:`TABLES`.
        column
            A canonical column name of that table.

        Returns
        -------
        pandas.Series
            The marker (``'SUPP'``, ``'A'``, ...) of each cell read as missing because of it,
            missing elsewhere (numbers, empty cells); same index as the table. All missing
            unless the records were read with ``format="dfe"``.

        See Also
        --------
        markers : the counts, with each marker's reason.
        """
        frame = self.table(table)
        if frame is None or column not in frame.columns:
            raise KeyError(f"the {table} table has no column {column!r}")
        found = self._cell_markers.get(table)
        if found is None or column not in found.columns:
            return pd.Series(None, index=frame.index, name=column, dtype=object)
        return found[column].astype(object).where(found[column].notna(), None)

    def marker_reason(self, marker: str) -> str:
        """The reason a marker stands for (``'SUPP'`` -> ``'suppressed: small cohort ...'``).

        Parameters
        ----------
        marker
            A marker as written in the file.

        Returns
        -------
        str
            Its reason, as listed in :attr:`markers`.

        Raises
        ------
        KeyError
            ``marker`` is not one these records were read with.
        """
        return self._marker_reasons[marker]

    def subset(self, schools) -> Records:
        """The records of some schools only, with the markers of their cells kept.

        Parameters
        ----------
        schools
            School ids, as spelled in these records' ``school`` columns.

        Returns
        -------
        Records
            Every table cut to the rows of those schools (a plain :class:`Records`, under the
            same ``columns``); :attr:`markers`, :meth:`marked` and :attr:`reading_notes` carry
            over for the rows kept.
        """
        tables, marks = {}, {}
        for name in TABLES:
            frame = self.table(name)
            if frame is None:
                tables[name] = None
                continue
            keep = frame["school"].isin(schools).to_numpy()
            tables[name] = frame.loc[keep] if name == "pupils" else frame[keep]
            if name in self._cell_markers:
                marks[name] = self._cell_markers[name][keep]
        out = Records(**tables, columns=self.columns)
        # the tables are re-labelled already: carry the links and the merges of the schools kept
        object.__setattr__(out, "links", self.links)
        object.__setattr__(out, "area_links", self.area_links)
        object.__setattr__(
            out,
            "merges",
            self.merges[
                self.merges["analysed_as"].isin(schools) | (self.merges["level"] == "area")
            ],
        )
        object.__setattr__(out, "reading_notes", self.reading_notes)
        object.__setattr__(out, "_cell_markers", marks)
        object.__setattr__(out, "_marker_reasons", self._marker_reasons)
        return out

    def to_csv(self, folder: str | Path) -> dict[str, Path]:
        """Write the tables present as ``{name}.csv`` files in ``folder``; return their paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = {}
        for name in TABLES:
            frame = self.table(name)
            if frame is not None:
                path = folder / f"{name}.csv"
                frame.to_csv(path, index=False)
                written[name] = path
        return written

    def fingerprint(self) -> str:
        """SHA-256 fingerprint of the tables' contents, independent of row order.

        Each row is hashed (:func:`pandas.util.hash_pandas_object`), the row hashes are sorted,
        and the sorted hashes of every table, with its column names, feed one SHA-256 digest.
        Reordering rows leaves it unchanged; changing any value changes it.
        """
        return fingerprint_tables({name: self.table(name) for name in TABLES})

    # ------------------------------------------------------------------ validation
    def validate(self, *, teacher_level: bool = False) -> None:
        """Check the tables; raise a :class:`~cpdimpact.errors.DataError` subclass on a problem.

        Checks, in order, table by table: required columns; numeric and 0/1 columns; ids that
        are missing (empty, blank or NaN); infinite values in any numeric column; negative
        doses, sizes, shares and years of service; missing or fractional years. Then: an
        outcome that is not entirely missing; unique school ids, teacher (school, id) pairs and
        pupil-year rows; pupils and participation that refer to known schools and teachers;
        start years inside the years the pupil data cover, leaving at least one earlier year
        as a pre-period. Messages name your column (through ``columns``) and your rows (index
        labels; CSV line numbers for :meth:`from_csv`).

        Parameters
        ----------
        teacher_level
            Also require the teachers table and a ``teacher`` column in pupils and participation.
        """
        for name in TABLES:
            frame = self.table(name)
            if frame is None:
                if name in ("pupils", "participation") or (teacher_level and name == "teachers"):
                    raise MissingColumnError(
                        f"the {name} table is missing; pass {name}=... to Records.from_frames"
                    )
                continue
            required = REQUIRED[name]
            if teacher_level and name in ("pupils", "participation"):
                required = (*required, "teacher")
            _require_columns(frame, name, required, self.columns)
            for column in _NUMERIC.get(name, ()):
                if column in frame.columns:
                    _require_numeric(frame, name, column, self.columns)
            for column in _BINARY.get(name, ()):
                if column in frame.columns:
                    _require_binary(frame, name, column, self.columns)
            for column in _IDS[name]:
                if column in frame.columns:
                    _require_ids(frame, name, column, self.columns)
            _require_finite(frame, name, self.columns)
            for column in _NON_NEGATIVE.get(name, ()):
                if column in frame.columns:
                    _require_non_negative(frame, name, column, self.columns)
            for column in _NEVER_MISSING.get(name, ()):
                if column in frame.columns:
                    _require_present(frame, name, column, self.columns)
            for column in _WHOLE.get(name, ()):
                _require_whole(frame, name, column, self.columns)

        pupils, part = self.pupils, self.participation
        if pupils["outcome"].isna().all():
            raise InvalidValueError(
                f"column {self._user('outcome')!r} of the pupils table is entirely missing "
                f"({len(pupils)} rows); point `columns={{'outcome': ...}}` at the attainment score"
            )
        _require_unique(
            pupils, "pupils", ["pupil", "year"], self.columns, "one row per pupil per year"
        )
        if self.schools is not None:
            _require_unique(self.schools, "schools", ["school"], self.columns, "one row per school")
            _require_known(pupils, "pupils", self.schools, ["school"], self.columns)
            _require_known(part, "participation", self.schools, ["school"], self.columns)
        else:
            _require_known(part, "participation", pupils, ["school"], self.columns, "pupils")
        if self.teachers is not None:
            _require_unique(
                self.teachers,
                "teachers",
                ["school", "teacher"],
                self.columns,
                "one row per teacher",
            )
            for name, frame in (("pupils", pupils), ("participation", part)):
                if "teacher" in frame.columns:
                    _require_known(
                        frame.dropna(subset=["teacher"]),
                        name,
                        self.teachers,
                        ["school", "teacher"],
                        self.columns,
                    )
        first, last = int(pupils["year"].min()), int(pupils["year"].max())
        outside = part.index[(part["start_year"] <= first) | (part["start_year"] > last)]
        if len(outside):
            years = sorted(set(part.loc[outside, "start_year"].astype(int)))
            shown = ", ".join(format_value(y) for y in years)
            raise InvalidValueError(
                f"column {self._user('start_year')!r} of the participation table has start years "
                f"[{shown}] outside the pupil data ({first}-{last}) in {user_rows(part, outside)}; "
                f"a start year must leave at least one earlier year of pupil data "
                f"(a pre-period) and fall no later than {last}. Remove those enrolments or "
                f"supply pupil records for the missing years."
            )

    def _user(self, canonical: str) -> str:
        return self.columns.get(canonical, canonical)


def fingerprint_tables(tables: Mapping[str, pd.DataFrame | None], salt: str = "") -> str:
    """SHA-256 of named tables, independent of row order (:meth:`Records.fingerprint`):
    each row hashed, the hashes sorted, fed with the table's name and columns (``salt``
    first, e.g. what the tables are)."""
    digest = hashlib.sha256(salt.encode())
    for name, frame in tables.items():
        digest.update(name.encode())
        if frame is None:
            digest.update(b"<absent>")
            continue
        # Numbers held in an object column hash as the same numbers in a numeric column.
        frame = frame.reindex(columns=sorted(map(str, frame.columns))).infer_objects()
        digest.update("\x1f".join(frame.columns).encode())
        rows = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
        digest.update(np.sort(rows).tobytes())
    return digest.hexdigest()


def as_records(tables) -> Records:
    """Accept :class:`Records` (or :class:`~cpdimpact.published.PublishedRecords`) as they
    are, or a mapping of table name to DataFrame.

    A mapping may also hold ``"columns"``, ``"links"`` and ``"area_links"`` (see
    :meth:`Records.from_frames`).
    """
    if isinstance(tables, Records) or getattr(tables, "kind", None) == "published":
        return tables  # Records, or cpdimpact.published.PublishedRecords (which imports this)
    if isinstance(tables, Mapping):
        unknown = sorted(set(tables) - {*TABLES, "columns", "links", "area_links"})
        if unknown:
            raise KeyError(f"unknown tables {unknown}; tables are {', '.join(TABLES)}")
        return Records.from_frames(**tables)
    raise TypeError(
        f"expected cpdimpact.Records or a dict of DataFrames named {', '.join(TABLES)}, got "
        f"{type(tables).__name__}"
    )


# ---------------------------------------------------------------------- helpers
def _canonical_names() -> set[str]:
    return {c for name in TABLES for c in (*REQUIRED[name], *OPTIONAL[name])}


def _check_column_map(columns: Mapping[str, str], extra: Iterable[str] = ()) -> None:
    """A ``columns=`` mapping goes from cpdimpact's name to the user's: catch it written the
    wrong way round, unknown canonical names and two names for one column (``extra``: the
    canonical names of other tables, e.g. published figures')."""
    known = _canonical_names() | set(extra)
    unknown = [k for k in columns if k not in known]
    if not unknown:
        users = list(columns.values())
        twice = sorted({str(u) for u in users if users.count(u) > 1})
        if twice:
            names = {u: [k for k, v in columns.items() if v == u] for u in twice}
            shown = "; ".join(f"{u!r} from {sorted(names[u])}" for u in twice)
            raise ColumnMappingError(
                f"columns maps several canonical names to one column ({shown}); each column "
                f"can stand for one canonical name only"
            )
        return
    # Written the wrong way round: keys are the user's columns, values cpdimpact's names.
    reversed_keys = [k for k in unknown if columns[k] in known]
    if reversed_keys:
        swap = set(reversed_keys)
        fixed = dict((columns[k], k) if k in swap else (k, columns[k]) for k in columns)
        raise ColumnMappingError(
            f"columns looks written the wrong way round: it maps your column "
            f"{reversed_keys[0]!r} to cpdimpact's name {columns[reversed_keys[0]]!r}, but "
            f"columns goes from cpdimpact's name to yours. Write columns={fixed!r}"
        )
    raise ColumnMappingError(
        f"columns maps unknown canonical names {sorted(map(str, unknown))}; canonical names "
        f"are {sorted(known)} (columns goes from cpdimpact's name to yours, e.g. "
        f"columns={{'school': 'URN'}})"
    )


def renamed_tables(
    frames: Mapping[str, pd.DataFrame | None], columns: Mapping[str, str], extra: Iterable[str] = ()
) -> dict[str, pd.DataFrame | None]:
    """The user's tables under canonical names (copies; ``None`` stays ``None``), after
    checking the ``columns`` map (``extra``: canonical names of other tables, as
    :func:`_check_column_map`) and that no two columns end up with one name."""
    _check_column_map(columns, extra)
    rename = {user: canonical for canonical, user in columns.items()}
    tables = {}
    for name, frame in frames.items():
        tables[name] = None if frame is None else frame.rename(columns=rename)
        if frame is not None:
            _check_renamed(frame, tables[name], name, columns)
    return tables


def _check_renamed(original, renamed, table, columns) -> None:
    """Renaming must not give two columns one name (the table has 'outcome' and 'ks2', and
    columns maps 'outcome' to 'ks2')."""
    clash = renamed.columns[renamed.columns.duplicated()].unique()
    if len(clash):
        canonical = str(clash[0])
        raise ColumnMappingError(
            f"the {table} table has a column {canonical!r} and also your column "
            f"{columns.get(canonical, canonical)!r}, which columns maps to {canonical!r}: "
            f"two columns would share the name. Drop or rename one of them, or remove "
            f"{canonical!r} from columns. The table has {list(map(str, original.columns))}"
        )


#: read_csv options that leave one row per record line (others fall back to pandas' index).
_CSV_KWARGS_KEEPING_LINES = frozenset(
    "sep delimiter dtype na_values keep_default_na encoding low_memory quotechar decimal "
    "thousands true_values false_values usecols na_filter engine dtype_backend parse_dates "
    "converters".split()
)


def _csv_line_numbers(path, n_rows: int, kwargs: Mapping, text: str | None = None):
    """The line on which each record of a CSV file starts (header = line 1), or None when
    the kwargs or the file make the match of lines to rows uncertain. ``text``: the file's
    decoded text, read instead of ``path``."""
    if set(kwargs) - _CSV_KWARGS_KEEPING_LINES:
        return None
    delimiter = kwargs.get("sep", kwargs.get("delimiter", ","))
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        return None
    starts = []
    try:
        handle = (
            io.StringIO(text, newline="")
            if text is not None
            else open(path, newline="", encoding=kwargs.get("encoding") or "utf-8")
        )
        with handle:
            reader = csv.reader(handle, delimiter=delimiter, quotechar=kwargs.get("quotechar", '"'))
            line = 1
            for record in reader:
                if record:  # pandas skips blank lines
                    starts.append(line)
                line = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error, TypeError):
        return None
    if len(starts) != n_rows + 1:  # the header is the first record
        return None
    return starts[1:]


def user_rows(frame: pd.DataFrame, labels) -> str:
    """The user's rows for a message: index labels, or "CSV lines" for :meth:`from_csv`."""
    return row_words(format_rows(labels), frame.index.name)


def row_words(text: str, index_name) -> str:
    """``text`` naming rows ("rows 3, 17"), as "CSV lines 3, 17" when the rows are of a table
    read by :meth:`Records.from_csv` (whose index, ``index_name``, is :data:`CSV_LINE`)."""
    if index_name == CSV_LINE and text.startswith("row"):
        return "CSV line" + text[len("row") :]
    return text


def _hint(canonical: str, columns: Mapping[str, str]) -> str:
    if canonical in columns:
        return f"(mapped from your column {columns[canonical]!r})"
    return f"(pass columns={{{canonical!r}: 'your column name'}} if it is called something else)"


def _require_columns(frame, table, required, columns) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        names = ", ".join(f"{c!r} {_hint(c, columns)}" for c in missing)
        raise MissingColumnError(
            f"the {table} table has no column {names}; it has {_column_list(frame.columns)}"
            + _performance_table_note(frame, table)
        )


def _performance_table_note(frame, table) -> str:
    """What to do when a pupils table is a DfE school performance table (one row per school,
    with DfE's ``RECTYPE`` record type and ``TELIG``/``TOTPUPS`` pupil counts): ``""`` if not."""
    names = set(map(str, frame.columns))
    if table != "pupils" or "RECTYPE" not in names or not names & {"TELIG", "TOTPUPS"}:
        return ""
    return (
        ". This looks like a DfE school performance table (one row per school, with RECTYPE "
        "and TELIG columns), not pupil records: read it with "
        "cpdimpact.dfe.read_performance_table(path), which keeps its published school "
        "results and counts its SUPP/NE/LOWCOV cells; the pupils table needs one row per "
        "pupil per tested year (pupil, school, year, outcome), e.g. from the National Pupil "
        "Database or your schools' MIS"
    )


def _column_list(columns, limit: int = 20) -> str:
    """A table's columns for a message: all of a small table's, the first ``limit`` of a wide
    one (a DfE download has over 300) with a count of the rest."""
    shown = [str(c) for c in columns[:limit]]
    more = len(columns) - limit
    return f"{shown}" + (f" and {more} more columns" if more > 0 else "")


def _hold(labels) -> str:
    return "holds" if len(labels) == 1 else "hold"


def _examples(series: pd.Series, labels) -> str:
    return ", ".join(format_value(v) for v in series.loc[labels[:3]])


def _require_numeric(frame, table, column, columns) -> None:
    series = frame[column]
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return
    user = columns.get(column, column)
    coerced = pd.to_numeric(series.astype(object), errors="coerce")
    bad = frame.index[coerced.isna() & series.notna()]
    if len(bad):
        raise InvalidValueError(
            f"column {user!r} of the {table} table must be numeric; "
            f"{user_rows(frame, bad)} {_hold(bad)} {_examples(series, bad)}. Clean those "
            f"values (or set them missing) before building the cohort."
        )
    if isinstance(series.dtype, pd.CategoricalDtype):
        raise InvalidValueError(
            f"column {user!r} of the {table} table is categorical ({series.dtype}), but "
            f"cpdimpact computes with it; convert it with .astype(float) before building "
            f"the cohort"
        )
    text = series.dropna().map(lambda v: isinstance(v, str)).any()
    held = "numbers stored as text" if text else "numbers in a column of Python objects"
    raise InvalidValueError(
        f"column {user!r} of the {table} table holds {held} ({series.dtype}); convert it "
        f"with pandas.to_numeric before building the cohort"
    )


def _require_binary(frame, table, column, columns) -> None:
    series = frame[column]
    user = columns.get(column, column)
    if pd.api.types.is_bool_dtype(series):
        return
    values = series.dropna()
    numbers = _as_float(values)
    if numbers is not None:  # compared as floats: isin fails on arrow-backed integers
        ok = pd.Series(np.isin(numbers, [0.0, 1.0]), index=values.index)
    else:
        ok = values.isin([0, 1, True, False]) if len(values) else values
    if len(values) and not bool(ok.all()):
        bad = values.index[~ok]
        raise InvalidValueError(
            f"column {user!r} of the {table} table must be 0/1 "
            f"(or True/False); {user_rows(frame, bad)} {_hold(bad)} {_examples(values, bad)}. "
            f"Recode it, e.g. fsm = (column == 'Y').astype(int)."
        )
    if not (pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series)):
        raise InvalidValueError(
            f"column {user!r} of the {table} table holds 0/1 values in a {series.dtype} "
            f"column, but cpdimpact averages it; convert it with .astype(int) (or "
            f"pandas.to_numeric) before building the cohort"
        )


def _blank(series: pd.Series) -> np.ndarray:
    """Ids that are missing: NaN/None, or text that is empty or only spaces."""
    mask = series.isna().to_numpy(dtype=bool, copy=True)
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return mask
    codes, uniques = pd.factorize(series)
    if len(uniques):
        empty = np.array([isinstance(u, str) and not u.strip() for u in uniques], dtype=bool)
        mask |= (codes >= 0) & empty[np.maximum(codes, 0)]
    return mask


def _require_ids(frame, table, column, columns) -> None:
    user = columns.get(column, column)
    missing = _blank(frame[column])
    meaning = _ID_MAY_BE_MISSING.get((table, column))
    if meaning is not None:
        # A missing (NaN) id means something here; text that is blank is a mistake.
        text = missing & frame[column].notna().to_numpy(dtype=bool)
        if text.any():
            bad = frame.index[text]
            raise InvalidValueError(
                f"column {user!r} of the {table} table has blank {column} ids (empty text or "
                f"spaces) in {user_rows(frame, bad)}; leave the cell empty (missing) for "
                f"{meaning}, or give the {column}'s id"
            )
        return
    if missing.any():
        bad = frame.index[missing]
        raise InvalidValueError(
            f"column {user!r} of the {table} table has missing {column} ids (empty, blank or "
            f"NaN) in {user_rows(frame, bad)}; every row needs its {column} id: fill them in or "
            f"remove those rows"
        )


def _as_float(series: pd.Series) -> np.ndarray | None:
    """The values as floats (NaN for missing), or None for a column that is not numeric."""
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return None
    return series.to_numpy(dtype="float64", na_value=np.nan)


def _require_finite(frame, table, columns) -> None:
    """±inf is never a school record's value, in any numeric column (ids, covariates too)."""
    for column in frame.columns:
        values = _as_float(frame[column])
        if values is None:
            continue
        infinite = np.isinf(values)
        if infinite.any():
            bad = frame.index[infinite]
            user = columns.get(column, column)
            allowed = column not in _NEVER_MISSING.get(table, ()) and column not in _IDS[table]
            fix = "replace them with the real values" + (
                ", or leave them missing (NaN): missing values are excluded and counted"
                if allowed
                else ""
            )
            raise InvalidValueError(
                f"column {user!r} of the {table} table holds infinite values in "
                f"{user_rows(frame, bad)} ({_examples(frame[column], bad)}); {fix}"
            )


def _refuse_values(frame, table, column, columns, *, wrong, must: str, fix: str) -> None:
    """Refuse a numeric column's values for which ``wrong(values)`` is true.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table, with canonical column names.
    table : str
        The table's name, for the message.
    column : str
        The canonical name of the column to check; a non-numeric column is left alone.
    columns : Mapping[str, str]
        Canonical -> the user's column names, for the message.
    wrong : callable
        Float values (NaN for missing) -> boolean mask of the values refused.
    must : str
        What the column must do, e.g. ``"not be negative"``.
    fix : str
        The sentence telling the user how to correct the values.

    Raises
    ------
    cpdimpact.errors.InvalidValueError
        Naming the column, the table, the rows and up to three of the values refused.
    """
    values = _as_float(frame[column])
    if values is None:
        return
    refused = wrong(values)
    if refused.any():
        bad = frame.index[refused]
        raise InvalidValueError(
            f"column {columns.get(column, column)!r} of the {table} table must {must}; "
            f"{user_rows(frame, bad)} {_hold(bad)} {_examples(frame[column], bad)}. {fix}"
        )


def _require_non_negative(frame, table, column, columns) -> None:
    _refuse_values(
        frame,
        table,
        column,
        columns,
        wrong=lambda values: values < 0,
        must="not be negative",
        fix="Correct them (hours, sizes, shares and years of service are 0 or more)",
    )


_MISSING_FIX = {
    "year": "every row needs its test year",
    "start_year": "give the year each enrolment started",
}


def _require_present(frame, table, column, columns) -> None:
    missing = frame[column].isna().to_numpy(dtype=bool)
    if missing.any():
        bad = frame.index[missing]
        raise InvalidValueError(
            f"column {columns.get(column, column)!r} of the {table} table is missing in "
            f"{user_rows(frame, bad)}; {_MISSING_FIX[column]}"
        )


def _require_whole(frame, table, column, columns) -> None:
    _refuse_values(
        frame,
        table,
        column,
        columns,
        wrong=lambda values: ~np.isnan(values) & (values != np.round(values)),
        must="hold whole years",
        fix="Give the calendar year (e.g. 2019 for the 2018/19 academic year's tests)",
    )


def _require_unique(frame, table, keys, columns, meaning) -> None:
    duplicated = frame.duplicated(subset=keys, keep=False)
    if duplicated.any():
        bad = frame.index[duplicated]
        first = frame.loc[bad[0], keys]
        shown = ", ".join(f"{columns.get(k, k)}={format_value(first[k])}" for k in keys)
        raise DuplicateRowsError(
            f"the {table} table must hold {meaning}, but {int(duplicated.sum())} rows repeat "
            f"({', '.join(columns.get(k, k) for k in keys)}), first {shown} in "
            f"{user_rows(frame, bad)}; remove or aggregate the duplicates"
        )


def _require_known(frame, table, reference, keys, columns, reference_name=None) -> None:
    reference_name = reference_name or ("teachers" if "teacher" in keys else "schools")
    known = pd.MultiIndex.from_frame(reference[keys].drop_duplicates()) if len(keys) > 1 else None
    if known is None:
        mask = ~frame[keys[0]].isin(reference[keys[0]])
    else:
        mask = ~pd.MultiIndex.from_frame(frame[keys]).isin(known)
    if mask.any():
        bad = frame.index[mask]
        ids = frame.loc[bad, keys].drop_duplicates().head(5)
        shown = "; ".join(
            ", ".join(f"{columns.get(k, k)}={format_value(row[k])}" for k in keys)
            for _, row in ids.iterrows()
        )
        key = keys[-1]
        spelled = ", ".join(format_value(v) for v in reference[key].dropna().unique()[:3])
        raise UnknownReferenceError(
            f"the {table} table refers to {key}s missing from the {reference_name} table "
            f"({shown}) in {user_rows(frame, bad)}; the {reference_name} table spells "
            f"{columns.get(key, key)} ids like {spelled} (ids are matched ignoring surrounding "
            f"spaces, leading zeros and number-versus-text, so these differ in more than that). "
            f"Add them to the {reference_name} table or remove those rows"
        )


# ---------------------------------------------------------------------- id reconciliation
_NUMBER_TEXT = re.compile(r"([0-9]+)(?:\.0*)?")


def _id_key(value) -> str | None:
    """An id's canonical text: surrounding spaces trimmed; numbers, and text that is all
    digits, as the integer's digits (so '0100001', ' 100001' and 100001 share a key)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if np.isnan(number):
            return None
        return str(int(number)) if number.is_integer() else repr(number)
    text = str(value).strip()
    if not text:
        return None
    digits = _NUMBER_TEXT.fullmatch(text)
    return str(int(digits.group(1))) if digits else text


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _replace_values(series: pd.Series, mapping: Mapping) -> pd.Series:
    """``series`` with each value in ``mapping`` replaced (missing values kept)."""
    codes, uniques = pd.factorize(series)
    new = np.empty(len(uniques), dtype=object)
    new[:] = [mapping.get(u, u) for u in uniques]
    values = series.astype(object).to_numpy(copy=True)
    present = codes >= 0
    values[present] = new[codes[present]]
    return pd.Series(values, index=series.index, name=series.name).infer_objects()


def _example_changes(mapping: Mapping) -> str:
    items = list(mapping.items())
    shown = ", ".join(f"{format_value(a)} as {format_value(b)}" for a, b in items[:3])
    return shown + (f" and {len(items) - 3} more" if len(items) > 3 else "")


def _reconcile_ids(tables: dict, columns: Mapping[str, str]) -> tuple[dict, list[str]]:
    """Match ids that name the same school or teacher but are spelled differently.

    The one place where ids are reconciled (documented in ``docs/records.md``):

    1. surrounding spaces are trimmed from text ids in every id column;
    2. an id of a referring table (pupils, participation, teachers for schools; pupils and
       participation for teachers) that is not found as written in the reference table (the
       schools table, else pupils; the teachers table, else pupils) is compared by
       :func:`_id_key` (number versus text, leading zeros) and, when exactly one id of the
       reference table has that key, takes the reference table's spelling.

    Two reference ids with one key (``'01'`` and ``'1'``) are ambiguous: a referring id that
    needs the key raises :class:`~cpdimpact.errors.UnknownReferenceError` naming all three
    spellings. Ids found in neither way are left for :meth:`Records.validate` to report.
    Returns the tables (changed ones are new frames; the inputs are never modified) and one
    note per change.
    """
    notes: list[str] = []
    tables = dict(tables)
    frames = {n: f for n, f in tables.items() if isinstance(f, pd.DataFrame)}

    def user(column):
        return columns.get(column, column)

    for name, frame in frames.items():
        for column in _IDS[name]:
            if column not in frame.columns or _is_numeric(frame[column]):
                continue
            uniques = pd.unique(frame[column].dropna())
            trim = {
                u: u.strip() for u in uniques if isinstance(u, str) and u.strip() and u != u.strip()
            }
            if trim:
                frame = frame.assign(**{column: _replace_values(frame[column], trim)})
                notes.append(
                    f"{len(trim)} {user(column)} ids of the {name} table had surrounding spaces "
                    f"(trimmed: {_example_changes(trim)})"
                )
        frames[name] = frame

    for key in ("school", "teacher"):
        owner = "schools" if key == "school" else "teachers"
        reference = owner if key in frames.get(owner, pd.DataFrame()).columns else "pupils"
        if key not in frames.get(reference, pd.DataFrame()).columns:
            continue
        ref = frames[reference][key]
        referring = [
            n
            for n in ("pupils", "participation", "teachers")
            if n != reference and n in frames and key in frames[n].columns
        ]
        ref_values = list(pd.unique(ref.dropna()))
        exact = set(ref_values)
        by_key: dict[str, list] = {}
        for value in ref_values:
            canonical = _id_key(value)
            if canonical is not None and value not in by_key.setdefault(canonical, []):
                by_key[canonical].append(value)
        for name in referring:
            series = frames[name][key]
            if _is_numeric(series) and _is_numeric(ref):
                continue  # numbers compare as numbers (12 == 12.0)
            mapping = {}
            for value in pd.unique(series.dropna()):
                if value in exact:
                    continue
                canonical = _id_key(value)
                spellings = by_key.get(canonical, []) if canonical is not None else []
                if len(spellings) > 1:
                    rows = frames[name].index[(series == value).to_numpy(dtype=bool)]
                    raise UnknownReferenceError(
                        f"the {name} table's {user(key)} id {format_value(value)} (in "
                        f"{user_rows(frames[name], rows)}) could be any of the {reference} table's "
                        f"{', '.join(format_value(s) for s in spellings)}: ids that differ only "
                        f"by leading zeros, spaces or number-versus-text are matched only when "
                        f"one id fits. Make the {reference} table's ids distinct as numbers, "
                        f"or spell the id exactly as the {reference} table does"
                    )
                if spellings:
                    mapping[value] = spellings[0]
            if mapping:
                frames[name] = frames[name].assign(**{key: _replace_values(series, mapping)})
                notes.append(
                    f"{len(mapping)} {user(key)} ids of the {name} table matched to the "
                    f"{reference} table's spelling ({_example_changes(mapping)})"
                )
    tables.update(frames)
    return tables, notes


# ---------------------------------------------------------------------- format="dfe"
def _read_text(text: str, kwargs: Mapping) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """A decoded CSV file read twice: as :func:`pandas.read_csv` types it (ids, text and clean
    columns stay exactly as ``format=None`` reads them) and as the text of every cell (so that
    markers pandas would read as missing, such as ``NA``, keep their reason). Both are indexed
    by the file's line numbers when they can be matched; the flag says whether they were."""
    typed = pd.read_csv(io.StringIO(text), **kwargs)
    raw = pd.read_csv(
        io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False, **kwargs
    ).fillna("")  # cells missing at the end of a short row
    lines = _csv_line_numbers(None, len(typed), kwargs, text=text)
    if lines is not None:
        typed.index = raw.index = pd.Index(lines, name=CSV_LINE)
    return typed, raw, lines is not None


#: Formats :meth:`Records.from_csv` and :meth:`Records.from_frames` read.
FORMATS = (None, "dfe")
#: Numeric columns read with :func:`cpdimpact.dfe.read_cells` (markers kept, percentages).
_MARKED = {
    "pupils": ("outcome", "prior"),
    "participation": ("dose_hours",),
    "schools": ("size", "fsm_share"),
    "teachers": ("years_service",),
}
#: Shares (0 to 1): a cell written as a percentage ('48%') is divided by 100.
_SHARES = {"schools": ("fsm_share",)}
#: read_csv options format="dfe" sets itself.
_DFE_OWN_KWARGS = frozenset(
    "dtype converters na_values keep_default_na na_filter true_values false_values "
    "parse_dates encoding".split()
)


def csv_reading_options(format, encoding, na_values, read_csv_kwargs: dict):
    """How a table's ``from_csv`` reads its files (shared by the pupil and teacher records):
    without a format, ``encoding`` and ``na_values`` go to :func:`pandas.read_csv` (added to
    ``read_csv_kwargs``) and ``None`` is returned; with ``format="dfe"``, which reads cells
    itself, ``na_values`` is returned for its marker table and read_csv options it sets itself
    are refused."""
    if format is None:
        for option, value in (("encoding", encoding), ("na_values", na_values)):
            if value is not None:
                read_csv_kwargs[option] = value
        return None
    refused = sorted(set(read_csv_kwargs) & _DFE_OWN_KWARGS)
    if refused:
        raise InvalidArgumentError(
            f"format='dfe' sets how cells are read itself, so it does not take "
            f"{', '.join(refused)}=. Leave them out (declare markers with na_values=, "
            f"the encoding with encoding=), or read with format=None."
        )
    return na_values


@dataclass(frozen=True)
class _Source:
    """Where a table came from, for messages: a file (rows numbered by its lines) or a frame."""

    table: str
    file: str | None = None
    lines: bool = False

    def words(self) -> str:
        return repr(self.file) if self.file else f"the {self.table} table"

    def note(self, message: str = "") -> str:
        """Where the rows of ``message`` are, unless it says so already."""
        if self.file and repr(self.file) in message:
            return ""
        if self.file and self.lines:
            return f" (In {self.file!r}, whose header is line 1.)"
        if self.file:
            return f" (In {self.file!r}; rows are numbered from 0, the first record.)"
        return f" (In the {self.table} table.)"


def _dfe_markers(na_values) -> dict[str, str]:
    """Every marker format="dfe" reads as missing, with its reason."""
    return dfe._marker_table(None, na_values, known={**dfe.MARKERS, **dfe.PUPIL_MARKERS})


def _read_dfe(tables, raws, sources, columns, na_values):
    """Apply the DfE readers to each table (see :meth:`Records.from_frames`).

    Returns the tables, the markers of their cells (table -> DataFrame of marker text, only
    columns with a marker) and the reading notes.
    """
    known = _dfe_markers(na_values)
    out, marks, notes = {}, {}, []
    for name, frame in tables.items():
        if frame is None:
            out[name] = None
            continue
        raw = raws.get(name)
        source = sources[name]
        try:
            frame, found, said = _read_dfe_table(name, frame, raw, source, columns, known)
        except (InvalidValueError, DataError) as err:
            raise type(err)(f"{err}{source.note(str(err))}") from None
        out[name], notes = frame, notes + said
        if found:
            marks[name] = pd.DataFrame(found, index=frame.index)
    return out, marks, notes


def _read_dfe_table(name, frame, raw, source, columns, known):
    user = {c: columns.get(c, c) for c in frame.columns}
    found: dict[str, pd.Series] = {}
    notes: list[str] = []
    new: dict[str, pd.Series] = {}
    ids = set(_IDS[name])
    for column in frame.columns:
        typed = frame[column]
        text = raw[column] if raw is not None else None
        label = user[column]
        if column in ids:
            continue
        if column in _WHOLE.get(name, ()):
            if column == "year":
                years, note = _dfe_years(typed, label, source)
            else:
                years, note = _dfe_starts(typed, label, source)
            new[column] = years
            notes += note
        elif column in _BINARY.get(name, ()):
            if _is_numeric(typed):
                continue
            cells = text if text is not None else typed
            flags = dfe.read_flag(cells.rename(label), column=label, source=source.file)
            new[column] = _as_plain(flags.rename(column))
            if not pd.api.types.is_bool_dtype(typed):
                notes.append(f"column {label!r} of {source.words()}: yes/no flags read as 1/0")
        else:
            canonical = column in _MARKED.get(name, ())
            if name == "pupils" and column == "outcome" and not _is_numeric(typed):
                # a pass/fail outcome written Y/N (reached the expected standard): 1/0, with
                # any DfE markers (A, absent) still read as missing with their reasons
                typed, text, flagged = _yes_no_as_digits(typed, text)
                if flagged:
                    notes.append(
                        f"column {label!r} of {source.words()}: yes/no read as 1/0 (a pass/fail "
                        "outcome)"
                    )
            values, reasons = _dfe_cells(typed, text, label, source, known, strict=canonical)
            if values is None:
                continue
            if column in _SHARES.get(name, ()):
                cells = (text if text is not None else typed).astype("string").str.strip()
                percent = cells.str.endswith("%").fillna(False).to_numpy(dtype=bool)
                if percent.any():
                    # rounded so that 36.7% is the double nearest 0.367, as if written so
                    values = values.where(~percent, (values / 100).round(10))
                    notes.append(
                        f"column {label!r} of {source.words()}: {int(percent.sum())} shares "
                        "written as percentages ('48%') read as proportions (0.48)"
                    )
            new[column] = values.rename(column)
            if reasons.notna().any():
                found[column] = reasons.astype("category")
    if new:
        frame = frame.assign(**new)
    return frame, found, notes


def _as_plain(values: pd.Series) -> pd.Series:
    """Nullable integers or booleans as numpy ``int64`` (none missing) or ``float64``."""
    if values.isna().any():
        return values.astype("Float64").astype("float64")
    return values.astype("int64")


def _dfe_years(typed, label, source):
    years = dfe.test_years(typed.rename(label)).rename(typed.name)
    as_given = pd.to_numeric(typed, errors="coerce").astype("Float64")
    changed = (typed.notna() & (years.astype("Float64") != as_given)).fillna(True)
    note = []
    if changed.any():
        first = typed[changed].iloc[0]
        note.append(
            f"column {label!r} of {source.words()}: academic years read as test years, the "
            f"summer of the tests ({format_value(first)} -> {years[changed].iloc[0]})"
        )
    return _as_plain(years), note


def _dfe_starts(typed, label, source):
    """Start dates and academic years -> the first test year they could affect."""
    present = typed.notna() & (typed.astype("string").str.strip() != "")
    mapped: dict[object, int] = {}
    late: dict[object, str] = {}
    for value in pd.unique(typed[present]):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", LateStartWarning)
            try:
                mapped[value] = dfe.first_affected_test_year(value)
            except AcademicYearError as err:
                rows = typed.index[present & (typed == value)]
                raise AcademicYearError(
                    f"column {label!r} of {source.words()} holds {format_value(value)} in "
                    f"{format_rows(rows, limit=3)}: {err}"
                ) from None
        if caught:
            late[value] = str(caught[0].message)
    for value, message in late.items():
        rows = typed.index[present & (typed == value)]
        warnings.warn(
            LateStartWarning(
                f"column {label!r} of {source.words()}, {format_rows(rows, limit=3)}: "
                f"{message}{source.note(source.words())}"
            ),
            stacklevel=5,
        )
    out = pd.Series(np.nan, index=typed.index, name=typed.name)
    out[present] = typed[present].map(mapped).astype("float64")
    # dates and academic years are said in words; test years were taken as given
    converted = [v for v, year in mapped.items() if not _is_year(v, year)]
    notes = [
        f"column {label!r} of {source.words()}: {dfe.describe_start(value)}"
        for value in converted[:3]
    ]
    if len(converted) > 3:
        notes.append(
            f"column {label!r} of {source.words()}: {len(converted) - 3} more starts mapped"
        )
    return _as_plain(out), notes


def _is_year(value, year: int) -> bool:
    """Whether ``value`` is ``year`` written as a number (not a date or academic year)."""
    try:
        return float(str(value).strip()) == year
    except ValueError:
        return False


def _yes_no_as_digits(typed: pd.Series, text: pd.Series | None):
    """``typed`` and ``text`` with yes/no words (``Y``/``N``, ``Yes``/``No``, ``TRUE``/``FALSE``,
    any case; :func:`cpdimpact.dfe.read_flag`'s words) written ``1``/``0``, and whether any
    was. Other cells (numbers, markers, blanks) are left for :func:`_dfe_cells` to read."""
    converted = []
    for cells in (typed, text):
        if cells is None:
            converted.append(None)
            continue
        words = cells.astype("string").str.strip().str.lower()
        yes = words.isin(dfe.YES_WORDS - {"1"}).fillna(False).to_numpy(dtype=bool)
        no = words.isin(dfe.NO_WORDS - {"0"}).fillna(False).to_numpy(dtype=bool)
        out = cells.astype(object).copy()
        out[yes], out[no] = "1", "0"
        converted.append((out, bool((yes | no).any())))
    typed, flagged = converted[0]
    text = None if converted[1] is None else converted[1][0]
    return typed, text, flagged


def _dfe_cells(typed, text, label, source, known, *, strict):
    """A numeric column read with its markers: ``(values, markers)``, or ``(None, None)`` when
    the column holds no marker, percentage or separator (it stays as read) or, unless
    ``strict``, is not a numeric column at all (text stays text)."""
    blank_text = None if text is None else text.str.strip() == ""
    if _is_numeric(typed):
        hidden = typed.isna() & ~blank_text if text is not None else None
        if hidden is None or not hidden.any():
            return None, None
    elif not strict and (typed.isna().all() or pd.api.types.is_bool_dtype(typed)):
        return None, None
    cells = text if text is not None else typed
    try:
        values, reasons = dfe.read_cells(
            cells.rename(label), column=label, extra_markers=known, source=source.file
        )
    except UnknownMarkerError:
        if strict:
            raise
        return None, None
    if not strict and values.isna().all():
        return None, None  # no number at all: a text column whose values look like markers
    # An empty or blank cell is plain missing, as in any table; only markers carry a reason.
    reasons = reasons.where(~reasons.isin(["", " "]), None)
    return values, reasons


# ------------------------------------------------------- school identity over time (links)
#: Columns of a links table in the simple shape: the ``predecessor`` id became the
#: ``successor`` id on ``date``; ``link_type`` (optional) says how, in words for the flow log
#: (``"academy conversion"``). Every table of links is held in this shape once read.
LINK_COLUMNS = ("predecessor", "successor", "date", "link_type")
#: Columns of Get Information About Schools' links download: each link is listed from both
#: ends (the school's ``URN``, the linked ``LinkURN``, and ``LinkType`` ``"Successor"`` or
#: ``"Predecessor"``, with suffixes such as ``" - amalgamated"``).
GIAS_LINK_COLUMNS = ("URN", "LinkURN", "LinkName", "LinkType", "LinkEstablishedDate")
#: GIAS link types that change a school's identity: the words the flow log uses for them
#: (read after "Predecessor"/"Successor" and an optional " - ").
_GIAS_KINDS = {
    "": "new URN",
    "amalgamated": "amalgamation",
    "merged": "merger",
    "split school": "split school",
}
_DATE_FORMS = "day first ('01/09/2017'), ISO ('2017-09-01') or yyyymmdd ('20170901')"
_DAY_FIRST = re.compile(r"^(\d{1,2})([/.-])(\d{1,2})\2(\d{4})$")
_ISO = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}(?:[ T]00:00(?::00)?)?$")


def links_from_performance_tables(tables) -> pd.DataFrame:
    """Academy conversions published in DfE performance tables, as a links table.

    The performance tables give a converting school's new URN (``URN_AC``) and the academy's
    opening date (``OPEN_AC``); the academy appears under the new URN in later years' files.

    Parameters
    ----------
    tables
        A :class:`~cpdimpact.dfe.PublishedTable` (from
        :func:`~cpdimpact.dfe.read_performance_tables`; its ``links``), or a frame with
        columns ``URN`` and ``URN_AC`` (``OPEN_AC`` optional), such as its ``data``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`LINK_COLUMNS`: ``predecessor`` (``URN``), ``successor``
        (``URN_AC``), ``date`` (``OPEN_AC``) and ``link_type`` ``"academy conversion"``; one
        row per conversion (a conversion reported in several years' files is listed once).
        Pass it as ``links=`` to :meth:`Records.from_frames`.

    Raises
    ------
    MissingColumnError
        A frame without ``URN`` and ``URN_AC``.

    Examples
    --------
    >>> from cpdimpact import dfe
    >>> tables = dfe.read_performance_tables(["2017-2018_850_ks2final.csv"])  # doctest: +SKIP
    >>> links_from_performance_tables(tables)  # doctest: +SKIP
    """
    if isinstance(tables, dfe.PublishedTable):
        raw = tables.links
        pred, succ, date = raw["predecessor_urn"], raw["successor_urn"], raw["link_date"]
    elif isinstance(tables, pd.DataFrame):
        missing = [c for c in ("URN", "URN_AC") if c not in tables.columns]
        if missing:
            raise MissingColumnError(
                f"links_from_performance_tables needs the columns 'URN' and 'URN_AC' of a DfE "
                f"performance table; this frame has no {', '.join(map(repr, missing))}. Read "
                "the files with cpdimpact.dfe.read_performance_tables and pass the result."
            )
        raw = tables[tables["URN_AC"].notna() & (tables["URN_AC"] != 0)]
        pred, succ = raw["URN"], raw["URN_AC"]
        date = raw["OPEN_AC"] if "OPEN_AC" in raw.columns else pd.Series(pd.NaT, raw.index)
    else:
        raise TypeError(
            "links_from_performance_tables takes a cpdimpact.dfe.PublishedTable or a "
            f"DataFrame, got {type(tables).__name__}"
        )
    out = pd.DataFrame(
        {
            "predecessor": pred.astype("int64").to_numpy(),
            "successor": succ.astype("int64").to_numpy(),
            "date": pd.to_datetime(date).to_numpy(),
            "link_type": "academy conversion",
        }
    )
    return out.drop_duplicates(["predecessor", "successor"]).reset_index(drop=True)


def _where_links(name: str, files: Mapping[str, str]) -> str:
    file = files.get(name)
    return repr(file) if file else f"the {name} table"


def _canonical_links(frame: pd.DataFrame, name: str, files: Mapping[str, str]):
    """A links table in the simple shape (:data:`LINK_COLUMNS`), row labels kept, and the
    user's names of its predecessor and successor columns (for messages)."""
    where = _where_links(name, files)
    if not isinstance(frame, pd.DataFrame):
        raise SchoolLinkError(
            f"{name}= must be a DataFrame (or, in Records.from_csv, the path of a CSV file), "
            f"got {type(frame).__name__}"
        )
    present = [str(c) for c in frame.columns]
    simple, gias = set(LINK_COLUMNS), set(GIAS_LINK_COLUMNS)
    if {"predecessor", "successor"} <= set(present):
        shape, known = "simple", simple
    elif {"URN", "LinkURN", "LinkType"} <= set(present):
        shape, known = "gias", gias
    else:
        shape, known = None, simple
    unknown = [c for c in present if c not in known]
    if shape is None or unknown:
        raise SchoolLinkError(
            f"{where} has the columns {present}"
            + (f", of which {unknown} are not link columns" if shape and unknown else "")
            + ": a links table has the columns 'predecessor', 'successor' and 'date' (and "
            "optionally 'link_type'), or those of Get Information About Schools' links "
            f"download ({', '.join(map(repr, GIAS_LINK_COLUMNS))}). Rename or remove the "
            "other columns."
        )
    if shape == "simple":
        pred_col, succ_col, date_col = "predecessor", "successor", "date"
        out = pd.DataFrame(
            {
                "predecessor": frame["predecessor"],
                "successor": frame["successor"],
                "date": frame["date"] if "date" in frame.columns else pd.NaT,
                "link_type": frame["link_type"] if "link_type" in frame.columns else "link",
            },
            index=frame.index,
        )
    else:
        pred_col, succ_col, date_col = "URN", "LinkURN", "LinkEstablishedDate"
        kind = frame["LinkType"].astype("string").str.strip()
        head = kind.str.extract(r"^(Predecessor|Successor)\s*(?:-\s*(.*))?$")
        detail = head[1].fillna("").str.lower().map(_GIAS_KINDS)
        identity = head[0].notna() & detail.notna()
        successor_side = (head[0] == "Successor").fillna(False).to_numpy(dtype=bool)
        urn, link = frame["URN"], frame["LinkURN"]
        out = pd.DataFrame(
            {
                "predecessor": urn.where(successor_side, link),
                "successor": link.where(successor_side, urn),
                "date": frame["LinkEstablishedDate"]
                if "LinkEstablishedDate" in frame.columns
                else pd.NaT,
                "link_type": detail,
            },
            index=frame.index,
        )
        # other link types (sixth-form centres, parent and child, ...) keep the school's URN
        out = out[identity.fillna(False).to_numpy(dtype=bool)]
    for canonical, user in (("predecessor", pred_col), ("successor", succ_col)):
        ids = out[canonical]
        blank = ids.isna().to_numpy() | (ids.astype("string").str.strip() == "").fillna(True)
        if blank.any():
            raise SchoolLinkError(
                f"column {user!r} of {where} is empty in {format_rows(out.index[blank], limit=3)}:"
                " every link needs both ids. Fill them in, or delete those rows."
            )
    out = out.assign(
        date=_link_dates(out["date"], date_col, where),
        link_type=out["link_type"].astype("string").fillna("link"),
    )
    return out, (pred_col, succ_col)


def _link_dates(values: pd.Series, column: str, where: str) -> pd.Series:
    """Dates as written in links tables (see :data:`_DATE_FORMS`); empty cells missing."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.astype("datetime64[ns]")
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    bad = []
    for value in pd.unique(values.dropna()):
        date = _link_date(value)
        if date is None:
            bad.append(value)
        elif date is not pd.NaT:
            out[(values == value).to_numpy(dtype=bool)] = date
    if bad:
        rows = values.index[values.isin(bad).to_numpy(dtype=bool)]
        raise SchoolLinkError(
            f"column {column!r} of {where} holds {', '.join(map(format_value, bad[:3]))} in "
            f"{format_rows(rows, limit=3)}, which cannot be read as a date. Write dates "
            f"{_DATE_FORMS}, or leave the cell empty when the date is not known."
        )
    return out


def _link_date(value):
    """One date: a Timestamp, ``pd.NaT`` for an empty cell, ``None`` when unreadable."""
    if isinstance(value, pd.Timestamp | np.datetime64):
        return pd.Timestamp(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return pd.NaT
    day_first = _DAY_FIRST.fullmatch(text)
    if day_first:
        fmt = f"%d{day_first.group(2)}%m{day_first.group(2)}%Y"
    elif _ISO.fullmatch(text):
        text, fmt = text[:10].rstrip(" T"), "%Y-%m-%d"
    elif re.fullmatch(r"\d{8}", text):
        fmt = "%Y%m%d"
    else:
        return None
    try:
        return pd.Timestamp(datetime.strptime(text, fmt))
    except ValueError:
        return None


def _spell_like(ids: pd.Series, reference: pd.Series | None) -> pd.Series:
    """Link ids spelled as the tables spell them (:func:`_id_key`: number versus text,
    leading zeros, spaces); ids the tables do not hold take the tables' type."""
    if reference is None:
        return ids
    by_key: dict[str, object] = {}
    for value in pd.unique(reference.dropna()):
        by_key.setdefault(_id_key(value), value)
    numeric = _is_numeric(reference)
    mapping = {}
    for value in pd.unique(ids.dropna()):
        key = _id_key(value)
        if key in by_key:
            mapping[value] = by_key[key]
        elif numeric and key is not None and key.isdigit():
            mapping[value] = int(key)
        elif not numeric:
            mapping[value] = str(value).strip()
    return _replace_values(ids, mapping)


def _chains(links: pd.DataFrame, name: str, where: str, cols: tuple[str, str], noun: str):
    """Each id's latest id and its distance from it, after refusing splits and cycles."""
    pred_col, succ_col = cols
    successors = links.groupby("predecessor", sort=False)["successor"].unique()
    split = successors[successors.map(len) > 1]
    if len(split):
        first, into = split.index[0], split.iloc[0]
        rows = links.index[(links["predecessor"] == first).to_numpy(dtype=bool)]
        raise SchoolLinkError(
            f"{where} splits {noun} {format_value(first)} (column {pred_col!r}) into "
            f"{' and '.join(map(format_value, into))} (column {succ_col!r}) in "
            f"{format_rows(rows, limit=3)}: one {noun} can have only one successor, or its "
            f"history would count twice. Keep the row of the successor that continues it "
            f"and delete the others (the other successors are then new {noun}s)"
            + (", or give each school its area in the schools table." if noun == "area" else ".")
        )
    after = dict(zip(successors.index, (s[0] for s in successors), strict=True))
    latest: dict[object, object] = {}
    distance: dict[object, int] = {}
    for start in after:
        path, node = [start], start
        while node in after and node not in latest:
            node = after[node]
            if node in path:
                loop = path[path.index(node) :]
                rows = links.index[links["predecessor"].isin(loop).to_numpy(dtype=bool)]
                raise SchoolLinkError(
                    f"{where} links {noun}s in a cycle, "
                    f"{' -> '.join(map(format_value, [*loop, node]))} (columns {pred_col!r} -> "
                    f"{succ_col!r}), in {format_rows(rows, limit=5)}: a {noun}'s successor "
                    "cannot come before it. Delete the link that runs backwards in time (check "
                    "the dates), or the row written the wrong way round."
                )
            path.append(node)
        end = latest.get(node, node)
        base = distance.get(node, 0)
        for steps, item in enumerate(reversed(path)):
            latest.setdefault(item, end)
            distance.setdefault(item, base + steps)
    return latest, distance


def _apply_links(tables, links, area_links, files, columns):
    """Re-label every table so that each chain of linked ids is one id, its latest.

    Returns the tables, the links held (``{"links": ..., "area_links": ...}`` in the simple
    shape), the merges (see :attr:`Records.merges`) and, per table that lost rows, which rows
    (by position) were kept.
    """
    merge_columns = ["level", "predecessor", "successor", "analysed_as", "date", "link_type"]
    empty = pd.DataFrame(columns=[*merge_columns, "pupils", "schools"]).astype(
        {"pupils": "int64", "schools": "int64"}
    )
    held = {"links": None, "area_links": None}
    if links is None and area_links is None:
        return tables, held, empty, {}
    tables = dict(tables)
    kept: dict[str, np.ndarray] = {}
    merges = [empty]
    school = columns.get("school", "school")
    pupils = tables.get("pupils")
    if links is not None:
        canonical, cols = _canonical_links(links, "links", files)
        where = _where_links("links", files)
        schools = tables.get("schools")
        reference = schools if isinstance(schools, pd.DataFrame) else pupils
        ref_ids = reference["school"] if "school" in getattr(reference, "columns", ()) else None
        canonical = canonical.assign(
            predecessor=_spell_like(canonical["predecessor"], ref_ids),
            successor=_spell_like(canonical["successor"], ref_ids),
        )
        same = (canonical["predecessor"] == canonical["successor"]).to_numpy(dtype=bool)
        if same.any():
            raise SchoolLinkError(
                f"{where} links URN {format_value(canonical['predecessor'][same].iloc[0])} to "
                f"itself (columns {cols[0]!r} and {cols[1]!r}) in "
                f"{format_rows(canonical.index[same], limit=3)}: a cycle. Delete those rows."
            )
        # a link listed from both ends (GIAS) or in several years' files counts once
        canonical = canonical.assign(
            date=canonical.groupby(["predecessor", "successor"], sort=False)["date"].transform(
                "first"
            )
        ).drop_duplicates(["predecessor", "successor"])
        latest, distance = _chains(canonical, "links", where, cols, "school")
        held["links"] = canonical
        original = pupils["school"] if "school" in getattr(pupils, "columns", ()) else None
        originals = {}
        for name, frame in tables.items():
            if not isinstance(frame, pd.DataFrame) or "school" not in frame.columns:
                continue
            originals[name] = frame["school"]
            tables[name] = frame.assign(school=_replace_values(frame["school"], latest))
        if original is not None and "year" in pupils.columns:
            _refuse_overlap(original, tables["pupils"], canonical, latest, where, cols, school)
        for name, keys in (("schools", ["school"]), ("teachers", ["school", "teacher"])):
            frame = tables.get(name)
            if not isinstance(frame, pd.DataFrame) or not set(keys) <= set(frame.columns):
                continue
            # one row per school (teacher): the row of the id nearest the end of the chain
            rank = originals[name].map(distance).fillna(0).to_numpy()
            order = np.argsort(rank, kind="stable")
            first = ~frame.iloc[order].duplicated(keys).to_numpy(dtype=bool)
            keep = np.zeros(len(frame), dtype=bool)
            keep[order[first]] = True
            if not keep.all():
                tables[name] = frame[keep]
                kept[name] = keep
        counts = (
            original.value_counts(sort=False) if original is not None else pd.Series(dtype="int64")
        )
        school_rows = schools["school"] if isinstance(schools, pd.DataFrame) else None
        merges.append(
            pd.DataFrame(
                {
                    "level": "school",
                    "predecessor": canonical["predecessor"].to_numpy(),
                    "successor": canonical["successor"].to_numpy(),
                    "analysed_as": canonical["predecessor"].map(latest).to_numpy(),
                    "date": canonical["date"].to_numpy(),
                    "link_type": canonical["link_type"].to_numpy(),
                    "pupils": canonical["predecessor"]
                    .map(counts)
                    .fillna(0)
                    .astype("int64")
                    .to_numpy(),
                    "schools": (
                        canonical["predecessor"].isin(school_rows).astype("int64").to_numpy()
                        if school_rows is not None
                        else np.zeros(len(canonical), dtype="int64")
                    ),
                }
            )
        )
    if area_links is not None:
        canonical, cols = _canonical_links(area_links, "area_links", files)
        where = _where_links("area_links", files)
        schools = tables.get("schools")
        if not isinstance(schools, pd.DataFrame) or "area" not in schools.columns:
            raise SchoolLinkError(
                f"{where} re-labels area codes, which are read from the schools table's "
                f"{columns.get('area', 'area')!r} column; give a schools table with that "
                "column, or leave area_links out."
            )
        canonical = canonical.assign(
            predecessor=_spell_like(canonical["predecessor"], schools["area"]),
            successor=_spell_like(canonical["successor"], schools["area"]),
        ).drop_duplicates(["predecessor", "successor"])
        latest, _ = _chains(canonical, "area_links", where, cols, "area")
        held["area_links"] = canonical
        counts = schools["area"].value_counts(sort=False)
        tables["schools"] = schools.assign(area=_replace_values(schools["area"], latest))
        per_area = (
            pupils["school"].map(schools.set_index("school")["area"]).value_counts(sort=False)
            if isinstance(pupils, pd.DataFrame)
            and "school" in pupils.columns
            and not schools["school"].duplicated().any()
            else pd.Series(dtype="int64")
        )
        merges.append(
            pd.DataFrame(
                {
                    "level": "area",
                    "predecessor": canonical["predecessor"].to_numpy(),
                    "successor": canonical["successor"].to_numpy(),
                    "analysed_as": canonical["predecessor"].map(latest).to_numpy(),
                    "date": canonical["date"].to_numpy(),
                    "link_type": canonical["link_type"].to_numpy(),
                    "pupils": canonical["predecessor"].map(per_area).fillna(0).to_numpy("int64"),
                    "schools": canonical["predecessor"].map(counts).fillna(0).to_numpy("int64"),
                }
            )
        )
    merged = (
        pd.concat([m for m in merges if len(m)], ignore_index=True) if len(merges) > 1 else empty
    )
    return tables, held, merged if len(merged) else empty, kept


def _refuse_overlap(original, pupils, links, latest, where, cols, school):
    """Two ids of one chain with pupil records in the same year were two schools open at once:
    joining them would merge two schools' results, so refuse."""
    linked = original.isin(list(latest)).to_numpy(dtype=bool) | pupils["school"].isin(
        set(latest.values())
    ).to_numpy(dtype=bool)
    if not linked.any():
        return
    seen = pd.DataFrame(
        {
            "analysed_as": pupils["school"].to_numpy()[linked],
            "urn": original.to_numpy()[linked],
            "year": pupils["year"].to_numpy()[linked],
        }
    ).drop_duplicates()
    clash = seen[seen.duplicated(["analysed_as", "year"], keep=False)]
    if clash.empty:
        return
    first = clash.iloc[0]
    group = clash[(clash["analysed_as"] == first["analysed_as"]) & (clash["year"] == first["year"])]
    urns = sorted(group["urn"], key=lambda u: (u == first["analysed_as"], str(u)))
    in_year = (pupils["year"] == first["year"]).to_numpy(dtype=bool)
    held = "; ".join(
        f"URN {format_value(u)} in "
        + row_words(
            format_rows(pupils.index[in_year & (original == u).to_numpy(dtype=bool)], limit=3),
            pupils.index.name,
        )
        for u in urns
    )
    chain = [u for u, end in latest.items() if end == first["analysed_as"]] + [first["analysed_as"]]
    rows = links.index[links["predecessor"].isin(chain).to_numpy(dtype=bool)]
    raise SchoolLinkError(
        f"{where} joins URNs {' and '.join(map(format_value, urns))} into one school (analysed "
        f"as {format_value(first['analysed_as'])}; columns {cols[0]!r} and {cols[1]!r}, "
        f"{format_rows(rows, limit=3)}), but both have pupil records in "
        f"{format_value(first['year'])} (column {school!r} of the pupils table: {held}). Two "
        "schools open in the same year are two schools, not one school under a new URN. Delete "
        "the link that joins them (an amalgamation or a split: analyse them as separate "
        "schools), or, if they are one school whose records were filed under both URNs, give "
        "those records one URN."
    )
