"""Teacher records in the shape of the School Workforce Census, and their validation."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar

import numpy as np
import pandas as pd

from .. import dfe
from ..errors import (
    CSV_LINE,
    AcademicYearError,
    DuplicateRowsError,
    InvalidArgumentError,
    InvalidValueError,
    TeacherReturnWarning,
    UnknownReferenceError,
    format_rows,
    format_value,
)
from ..records import (
    _csv_line_numbers,
    _read_text,
    _refuse_values,
    _require_binary,
    _require_columns,
    _require_ids,
    _require_known,
    _require_non_negative,
    _require_numeric,
    _require_present,
    _require_unique,
    _require_whole,
    fingerprint_tables,
    renamed_tables,
    user_rows,
)

__all__ = [
    "TeacherRecords",
    "ROLES",
    "LEADERSHIP_ROLES",
    "ROLE_WORDS",
    "CENSUS_COLUMNS",
    "YEAR_CONVENTION",
]

#: The roles of the census table, from the lowest to the highest post.
ROLES = ("classroom teacher", "middle leader", "senior leader", "head")

#: The roles that count as the leadership group (School Workforce Census "leadership teachers":
#: heads, deputy and assistant heads).
LEADERSHIP_ROLES = ("senior leader", "head")

#: Words for the roles read as each role (case and surrounding spaces ignored): the four roles
#: and the School Workforce Census posts (``"Head teacher"``, ``"Deputy head"``, ``"Assistant
#: head"``). Other words are declared with ``roles=``.
ROLE_WORDS: Mapping[str, str] = MappingProxyType(
    {
        **{role: role for role in ROLES},
        "teacher": "classroom teacher",
        "head teacher": "head",
        "headteacher": "head",
        "executive head teacher": "head",
        "executive headteacher": "head",
        "deputy head": "senior leader",
        "deputy head teacher": "senior leader",
        "deputy headteacher": "senior leader",
        "assistant head": "senior leader",
        "assistant head teacher": "senior leader",
        "assistant headteacher": "senior leader",
    }
)

#: Canonical columns of the census table (the first four required).
CENSUS_COLUMNS = ("teacher", "school", "year", "role", "fte", "years_service", "in_post")

#: The year convention of teacher records, in one sentence (every docstring and message cites
#: this one).
YEAR_CONVENTION = (
    "year is the summer of the academic year: 2018/19 is 2019, so the November 2018 census is "
    "year 2019; start_year is the summer of the academic year in which the programme started "
    "(a September 2019 start is 2020), and the baseline census of a start is that year's "
    "(November 2019 for 2020)"
)

_REQUIRED = {
    "census": ("teacher", "school", "year", "role"),
    "participation": ("school", "start_year"),
    "schools": ("school",),
}
_OPTIONAL = {
    "census": ("fte", "years_service", "in_post"),
    "participation": ("teacher", "strand"),
    "schools": ("area", "phase", "size", "fsm_share"),
}
_TABLES = ("census", "participation", "schools")
_NAMES = tuple(sorted({c for t in _TABLES for c in (*_REQUIRED[t], *_OPTIONAL[t])}))
_DFE_OWN_KWARGS = frozenset(
    "dtype converters na_values keep_default_na na_filter true_values false_values "
    "parse_dates encoding".split()
)


@dataclass(frozen=True, eq=False)
class TeacherRecords:
    """Teacher-by-year records in the School Workforce Census shape, and programme enrolments.

    Build one with :meth:`from_frames` or :meth:`from_csv`, which rename a user's columns, or
    take one from :func:`cpdimpact.datasets.simulate_careers`. The records are validated when
    built; the user's tables are never modified.

    Parameters
    ----------
    census
        One row per teacher per census year: ``teacher`` (an id that follows the teacher
        across schools, as the census's teacher reference number does), ``school`` (URN),
        ``year`` (see :data:`YEAR_CONVENTION`), ``role`` (one of :data:`ROLES`, or words of
        :data:`ROLE_WORDS` or ``roles``), and optionally ``fte`` (full-time equivalent, above
        0 and at most 1), ``years_service`` and ``in_post`` (1 if in post at the census date,
        0 for a contract that ended during the year; all 1 when the column is absent).
    participation
        Programme enrolments: ``school``, ``start_year`` (see :data:`YEAR_CONVENTION`), and
        optionally ``teacher`` (missing for a whole-school enrolment: every teacher of the
        school takes part) and ``strand``. ``None``: no programme (outcomes need a baseline).
    schools
        Optional school characteristics: ``school`` and ``area``, ``phase``, ``size``,
        ``fsm_share``; carried into the outcome tables.
    columns
        Mapping from a canonical name to the user's column name (as for
        :class:`~cpdimpact.records.Records`).
    roles
        The user's words for roles, ``{"Lead practitioner": "middle leader"}``, on top of
        :data:`ROLE_WORDS`.

    Attributes
    ----------
    returners
        One row per return to teaching: ``teacher``, ``left_after`` (the last census year in
        post before the gap), ``returned`` (the census year of the return) and ``row`` (the
        user's row of the return); see :class:`~cpdimpact.errors.TeacherReturnWarning`.
    reading_notes
        With ``format="dfe"``: what was read how (academic years, start dates), one note each.
    markers
        With ``format="dfe"``: cells read as missing because they held a marker, counted by
        table, column, marker and reason.

    Raises
    ------
    cpdimpact.errors.DataError
        A subclass naming your column, the first offending rows and the fix: a missing
        column; a non-numeric year, FTE or service; a missing id, year or role (a promotion
        cannot be read without the role); an unknown role; an FTE outside (0, 1]; a teacher
        in two schools (or twice in one school) in one census; a census year missing between
        the first and the last; enrolments of unknown schools or teachers, of a teacher in
        another school than the census has them in at the start, or starting outside the
        census years.

    Warns
    -----
    cpdimpact.errors.TeacherReturnWarning
        Once, when teachers leave and reappear (returners), naming the first of them.

    See Also
    --------
    cpdimpact.workforce.spells : time to leaving or promotion, one row per teacher.
    cpdimpact.workforce.cohort_outcomes : school-by-year shares for the DiD family.

    Notes
    -----
    The time convention is :data:`YEAR_CONVENTION`. A teacher is *in post* in a census year
    when the census has a row for them with ``in_post`` 1; a teacher absent from a census has
    left state-funded teaching (or, when back in a later census, was away: a returner).

    Examples
    --------
    >>> import pandas as pd
    >>> from cpdimpact.workforce import TeacherRecords
    >>> census = pd.DataFrame({"tid": [1, 1, 2], "urn": [10, 10, 10],
    ...                        "year": [2019, 2020, 2019],
    ...                        "post": ["Classroom teacher", "Deputy head", "Head teacher"]})
    >>> rec = TeacherRecords.from_frames(census=census,
    ...                                  columns={"teacher": "tid", "school": "urn",
    ...                                           "role": "post"})
    >>> rec.census["role"].tolist()
    ['classroom teacher', 'senior leader', 'head']
    """

    census: pd.DataFrame
    participation: pd.DataFrame | None = None
    schools: pd.DataFrame | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    roles: Mapping[str, str] = field(default_factory=dict)
    returners: pd.DataFrame = field(default=None, init=False, repr=False)  # type: ignore[assignment]
    reading_notes: tuple[str, ...] = field(default=(), init=False, repr=False)
    markers: pd.DataFrame = field(default=None, init=False, repr=False)  # type: ignore[assignment]

    kind: ClassVar[str] = "teacher records"

    def __post_init__(self) -> None:
        census = _check_census(self.census, dict(self.columns or {}), dict(self.roles or {}))
        object.__setattr__(self, "census", census)
        if self.schools is not None:
            _check_schools(self.schools, self.columns)
        if self.participation is not None:
            part = _check_participation(self.participation, census, self.schools, self.columns)
            object.__setattr__(self, "participation", part)
        returners = _returners(census)
        object.__setattr__(self, "returners", returners)
        if self.markers is None:
            object.__setattr__(self, "markers", _no_markers())
        if len(returners):
            first = returners.iloc[0]
            warnings.warn(
                TeacherReturnWarning(
                    f"{returners['teacher'].nunique()} teachers leave state-funded teaching and "
                    f"come back (first: teacher {format_value(first['teacher'])}, in post in "
                    f"{int(first['left_after'])}, absent, back in {int(first['returned'])}, "
                    f"{row_label(census, [first['row']])} of the census). Retention outcomes "
                    "count the first absence as leaving; the returns are listed in "
                    ".returners. If a teacher id was re-used or mistyped, correct it."
                ),
                stacklevel=3,
            )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frames(
        cls,
        *,
        census: pd.DataFrame,
        participation: pd.DataFrame | None = None,
        schools: pd.DataFrame | None = None,
        columns: Mapping[str, str] | None = None,
        roles: Mapping[str, str] | None = None,
        format: str | None = None,
        na_values: Iterable[str] | Mapping[str, str] | None = None,
    ) -> TeacherRecords:
        """Build teacher records from a user's DataFrames, renaming their columns.

        Parameters
        ----------
        census, participation, schools
            The user's tables (see the class); copied, never modified.
        columns
            Mapping from a canonical name (``"teacher"``, ``"role"``, ``"year"``, ...) to the
            user's column name; it applies to every table holding that column.
        roles
            The user's words for roles, on top of :data:`ROLE_WORDS`.
        format
            ``None``: the tables are taken as they are. ``"dfe"``: years written as academic
            years (``'2018/19'``, ``201819``), start dates (``'01/09/2019'``), ``Y``/``N``
            flags and cell markers (``c``, ``x``, ``SUPP``) are read, as
            :meth:`Records.from_csv <cpdimpact.records.Records.from_csv>` reads them.
        na_values
            With ``format="dfe"``: markers of your own, a list or ``{marker: reason}``.

        Returns
        -------
        TeacherRecords
            Validated records under canonical names.

        Raises
        ------
        cpdimpact.errors.DataError
            As for the class; :class:`~cpdimpact.errors.ColumnMappingError` for a ``columns``
            map that is unknown or written the wrong way round.
        """
        frames = {"census": census, "participation": participation, "schools": schools}
        return cls._build(frames, {}, {}, columns, roles, format, na_values)

    @classmethod
    def from_csv(
        cls,
        *,
        census: str | Path,
        participation: str | Path | None = None,
        schools: str | Path | None = None,
        columns: Mapping[str, str] | None = None,
        roles: Mapping[str, str] | None = None,
        format: str | None = None,
        encoding: str | None = None,
        na_values: Iterable[str] | Mapping[str, str] | None = None,
        **read_csv_kwargs,
    ) -> TeacherRecords:
        """Read teacher records from CSV files; messages name the files' lines.

        Each table's index holds the file's line numbers (the header is line 1), as
        :meth:`Records.from_csv <cpdimpact.records.Records.from_csv>` does.

        Parameters
        ----------
        census, participation, schools
            Paths of the CSV files (``participation`` and ``schools`` optional).
        columns, roles, format, na_values
            As for :meth:`from_frames`.
        encoding
            The files' encoding; with ``format="dfe"`` UTF-8, else cp1252, when not given.
        **read_csv_kwargs
            Further options of :func:`pandas.read_csv` (``sep``, ...); with ``format="dfe"``,
            options that decide how cells are typed are refused.

        Returns
        -------
        TeacherRecords
            As :meth:`from_frames`.

        Raises
        ------
        cpdimpact.errors.DataError
            As :meth:`from_frames`, naming the CSV lines.
        """
        if format is None:
            for option, value in (("encoding", encoding), ("na_values", na_values)):
                if value is not None:
                    read_csv_kwargs[option] = value
            na_values = None
        else:
            refused = sorted(set(read_csv_kwargs) & _DFE_OWN_KWARGS)
            if refused:
                raise InvalidArgumentError(
                    f"format='dfe' sets how cells are read itself, so it does not take "
                    f"{', '.join(refused)}=. Leave them out, or read with format=None."
                )
        frames, raws, files = {}, {}, {}
        for name, path in (
            ("census", census),
            ("participation", participation),
            ("schools", schools),
        ):
            if path is None:
                frames[name] = None
                continue
            files[name] = Path(path).name
            if format is None:
                frame = pd.read_csv(path, **read_csv_kwargs)
                lines = _csv_line_numbers(path, len(frame), read_csv_kwargs)
                if lines is not None:
                    frame.index = pd.Index(lines, name=CSV_LINE)
                frames[name] = frame
            else:
                text, _ = dfe._decode(Path(path).read_bytes(), encoding, files[name])
                frames[name], raws[name], _ = _read_text(text, read_csv_kwargs)
        return cls._build(frames, raws, files, columns, roles, format, na_values)

    @classmethod
    def _build(cls, frames, raws, files, columns, roles, format, na_values) -> TeacherRecords:
        if format not in (None, "dfe"):
            raise InvalidArgumentError(
                f"format={format_value(format)} is not a format TeacherRecords reads: give "
                "format='dfe' for files written the way DfE writes them, or leave it out."
            )
        if format is None and na_values is not None:
            raise InvalidArgumentError(
                "na_values= declares cell markers, which are read only with format='dfe'; "
                "give format='dfe', or mark the cells missing yourself."
            )
        columns = dict(columns or {})
        tables = renamed_tables(frames, columns, extra=_NAMES)
        notes: list[str] = []
        marks = []
        if format == "dfe":
            rename = {user: canonical for canonical, user in columns.items()}
            for name, frame in tables.items():
                if frame is None:
                    continue
                raw = raws[name].rename(columns=rename) if name in raws else None
                where = repr(files[name]) if name in files else f"the {name} table"
                tables[name], found, said = _read_dfe(name, frame, raw, where, columns, na_values)
                notes += said
                marks += found
        records = cls(**tables, columns=columns, roles=dict(roles or {}))
        object.__setattr__(records, "reading_notes", tuple(notes))
        if marks:
            object.__setattr__(records, "markers", pd.DataFrame(marks, columns=_MARKER_COLUMNS))
        return records

    # ------------------------------------------------------------------ access
    @property
    def years(self) -> tuple[int, int]:
        """The first and the last census year."""
        years = self.census["year"]
        return int(years.min()), int(years.max())

    def fingerprint(self) -> str:
        """A SHA-256 digest of the tables (row order ignored), as
        :meth:`Records.fingerprint <cpdimpact.records.Records.fingerprint>`."""
        return fingerprint_tables(
            {"census": self.census, "participation": self.participation, "schools": self.schools},
            salt="teacher records",
        )

    def _user(self, canonical: str) -> str:
        return self.columns.get(canonical, canonical)

    def __repr__(self) -> str:
        first, last = self.years
        enrolled = 0 if self.participation is None else len(self.participation)
        return (
            f"{type(self).__name__}({self.census['teacher'].nunique()} teachers in "
            f"{self.census['school'].nunique()} schools, census years {first}-{last}, "
            f"{enrolled} enrolments)"
        )


# ---------------------------------------------------------------------- validation
_MARKER_COLUMNS = ["table", "column", "marker", "reason", "cells"]


def _no_markers() -> pd.DataFrame:
    return pd.DataFrame(columns=_MARKER_COLUMNS).astype({"cells": "int64"})


def row_label(frame: pd.DataFrame, labels) -> str:
    """The user's rows, as "rows 3, 17" or "CSV lines 3, 17"."""
    return user_rows(frame, pd.Index(list(labels), name=frame.index.name))


def _refuse_infinite(frame, table, columns) -> None:
    for column in frame.columns:
        _refuse_values(
            frame,
            table,
            column,
            columns,
            wrong=np.isinf,
            must="hold finite values",
            fix="Replace them with the real values.",
        )


def _check_census(frame, columns, roles) -> pd.DataFrame:
    table = "census"
    _require_columns(frame, table, _REQUIRED[table], columns)
    for column in ("year", "fte", "years_service"):
        if column in frame.columns:
            _require_numeric(frame, table, column, columns)
    for column in ("teacher", "school"):
        _require_ids(frame, table, column, columns)
    _refuse_infinite(frame, table, columns)
    missing_year = frame["year"].isna().to_numpy(dtype=bool)
    if missing_year.any():
        raise InvalidValueError(
            f"column {columns.get('year', 'year')!r} of the census table is missing in "
            f"{user_rows(frame, frame.index[missing_year])}; every row needs its census year "
            f"({YEAR_CONVENTION})."
        )
    _require_whole(frame, table, "year", columns)
    if "years_service" in frame.columns:
        _require_non_negative(frame, table, "years_service", columns)
    if "fte" in frame.columns:
        _refuse_values(
            frame,
            table,
            "fte",
            columns,
            wrong=lambda v: (v <= 0) | (v > 1),
            must="be above 0 and at most 1 (a full-time teacher is 1)",
            fix="Give each post's full-time equivalent (a teacher on 3 days of 5 is 0.6), or "
            "leave it missing.",
        )
    if "in_post" in frame.columns:
        _require_binary(frame, table, "in_post", columns)
        if frame["in_post"].isna().any():
            bad = frame.index[frame["in_post"].isna().to_numpy(dtype=bool)]
            raise InvalidValueError(
                f"column {columns.get('in_post', 'in_post')!r} of the census table is missing "
                f"in {user_rows(frame, bad)}; give 1 for a teacher in post at the census date "
                "and 0 for a contract that ended during the year."
            )
    role = _read_roles(frame, columns, roles)
    out = frame.assign(role=role)
    out = out.assign(
        year=out["year"].astype("int64"),
        in_post=(out["in_post"].astype(bool) if "in_post" in out.columns else True),
    )
    _require_unique(
        out, table, ["teacher", "school", "year"], columns, "one row per teacher, school and year"
    )
    _refuse_two_schools(out, columns)
    _refuse_gaps(out, columns)
    return out


def _read_roles(frame, columns, roles) -> pd.Series:
    user = columns.get("role", "role")
    values = frame["role"]
    blank = values.isna().to_numpy(dtype=bool) | (values.astype("string").str.strip() == "").fillna(
        True
    ).to_numpy(dtype=bool)
    if blank.any():
        bad = frame.index[blank]
        raise InvalidValueError(
            f"column {user!r} of the census table is missing in {user_rows(frame, bad)}: every "
            "census row needs the teacher's role, or a promotion (or its absence) cannot be "
            f"read. Fill in the post held ({', '.join(map(repr, ROLES))}), or remove the rows "
            "of staff who are not teachers."
        )
    words = {**ROLE_WORDS, **{str(k).strip().lower(): v for k, v in roles.items()}}
    unknown_targets = sorted({v for v in words.values() if v not in ROLES})
    if unknown_targets:
        raise InvalidArgumentError(
            f"roles= maps words to {unknown_targets}, which are not roles; map them to one of "
            f"{list(ROLES)}."
        )
    key = values.astype("string").str.strip().str.lower()
    read = key.map(words)
    unknown = read.isna().to_numpy(dtype=bool)
    if unknown.any():
        bad = frame.index[unknown]
        shown = ", ".join(format_value(v) for v in pd.unique(values[unknown])[:3])
        raise InvalidValueError(
            f"column {user!r} of the census table holds roles cpdimpact does not know "
            f"({shown}) in {user_rows(frame, bad)}; roles are {list(ROLES)} (or the census "
            f"posts {sorted(k for k in ROLE_WORDS if k not in ROLES)}). Declare your words "
            f"with roles={{{format_value(values[unknown].iloc[0])}: 'middle leader'}}."
        )
    return read.astype(object)


def _refuse_two_schools(census, columns) -> None:
    posts = census[census["in_post"].to_numpy(dtype=bool)]
    twice = posts.duplicated(["teacher", "year"], keep=False).to_numpy(dtype=bool)
    if not twice.any():
        return
    first = posts[twice].iloc[0]
    same = posts[
        (posts["teacher"] == first["teacher"]).to_numpy(dtype=bool)
        & (posts["year"] == first["year"]).to_numpy(dtype=bool)
    ]
    teacher, school = columns.get("teacher", "teacher"), columns.get("school", "school")
    raise DuplicateRowsError(
        f"teacher {format_value(first['teacher'])} (column {teacher!r}) is in post in "
        f"{len(same)} schools in the census of {int(first['year'])} "
        f"({', '.join(format_value(s) for s in same['school'])}, column {school!r}), in "
        f"{user_rows(census, same.index)}; {int(twice.sum())} rows of the census are such "
        "second posts. A teacher counts in one school per census: keep the row of the main "
        "post (the largest FTE), e.g. census.sort_values('fte').drop_duplicates(['teacher', "
        "'year'], keep='last'), or mark the other posts in_post=0."
    )


def _refuse_gaps(census, columns) -> None:
    years = np.unique(census["year"].to_numpy())
    missing = sorted(set(range(int(years[0]), int(years[-1]) + 1)) - set(years.tolist()))
    if missing:
        raise InvalidValueError(
            f"column {columns.get('year', 'year')!r} of the census table has no rows for "
            f"{', '.join(map(str, missing))}, between {int(years[0])} and {int(years[-1])}: "
            "every teacher would seem to leave and return. Add the missing census, or give "
            "only the years after the gap."
        )


def _check_schools(frame, columns) -> None:
    _require_columns(frame, "schools", _REQUIRED["schools"], columns)
    _require_ids(frame, "schools", "school", columns)
    for column in ("size", "fsm_share"):
        if column in frame.columns:
            _require_numeric(frame, "schools", column, columns)
            _require_non_negative(frame, "schools", column, columns)
    _require_unique(frame, "schools", ["school"], columns, "one row per school")


def _check_participation(frame, census, schools, columns) -> pd.DataFrame:
    table = "participation"
    _require_columns(frame, table, _REQUIRED[table], columns)
    _require_numeric(frame, table, "start_year", columns)
    _require_ids(frame, table, "school", columns)
    if "teacher" in frame.columns:
        _require_ids(frame, table, "teacher", columns)  # a missing teacher: the whole school
    _refuse_infinite(frame, table, columns)
    _require_present(frame, table, "start_year", columns)
    _require_whole(frame, table, "start_year", columns)
    out = frame.assign(start_year=frame["start_year"].astype("int64"))
    if "teacher" not in out.columns:
        out = out.assign(teacher=pd.Series(np.nan, index=out.index, dtype=object))
    reference = schools if schools is not None else census
    _require_known(
        out, table, reference, ["school"], columns, "schools" if schools is not None else "census"
    )
    named = out[out["teacher"].notna().to_numpy(dtype=bool)]
    _require_known(named, table, census, ["teacher"], columns, "census")
    _require_unique(named, table, ["teacher"], columns, "one enrolment per teacher")
    whole = out[out["teacher"].isna().to_numpy(dtype=bool)]
    _require_unique(whole, table, ["school"], columns, "one whole-school enrolment per school")
    first, last = int(census["year"].min()), int(census["year"].max())
    outside = ((out["start_year"] < first) | (out["start_year"] >= last)).to_numpy(dtype=bool)
    if outside.any():
        bad = out.index[outside]
        raise InvalidValueError(
            f"column {columns.get('start_year', 'start_year')!r} of the participation table "
            f"holds {', '.join(format_value(v) for v in out.loc[bad[:3], 'start_year'])} in "
            f"{user_rows(out, bad)}, outside the census years {first} to {last - 1}: an "
            "outcome needs the start's census (its baseline) and a later one "
            f"({YEAR_CONVENTION}). Check the start, or add the census years."
        )
    _refuse_other_school(named, census, columns)
    return out


def _refuse_other_school(named, census, columns) -> None:
    """An enrolled teacher in post at the start census must be in the school that enrolled them."""
    if named.empty:
        return
    posts = census[census["in_post"].to_numpy(dtype=bool)][["teacher", "year", "school"]]
    there = (
        named[["teacher", "start_year", "school"]]
        .reset_index(names="_row")
        .merge(
            posts.rename(columns={"year": "start_year", "school": "census_school"}),
            on=["teacher", "start_year"],
            how="inner",
        )
    )
    other = there[(there["school"] != there["census_school"]).to_numpy(dtype=bool)]
    if other.empty:
        return
    first = other.iloc[0]
    raise UnknownReferenceError(
        f"the participation table enrols teacher {format_value(first['teacher'])} in school "
        f"{format_value(first['school'])} (column {columns.get('school', 'school')!r}, "
        f"{row_label(named, other['_row'])}), but the census of {int(first['start_year'])} has "
        f"them in post in school {format_value(first['census_school'])}. Give the school the "
        "teacher was in at the start, or correct the teacher id."
    )


def _returners(census) -> pd.DataFrame:
    """Each return to teaching after an absence from one or more censuses."""
    posts = census[census["in_post"].to_numpy(dtype=bool)]
    ordered = posts.assign(_row=posts.index).sort_values(["teacher", "year"], kind="stable")
    gap = ordered["year"].diff().to_numpy() > 1
    same = (ordered["teacher"] == ordered["teacher"].shift()).to_numpy(dtype=bool)
    back = gap & same
    previous = ordered["year"].shift().to_numpy()
    out = pd.DataFrame(
        {
            "teacher": ordered["teacher"].to_numpy()[back],
            "left_after": previous[back].astype("int64"),
            "returned": ordered["year"].to_numpy()[back],
            "row": ordered["_row"].to_numpy()[back],
        }
    )
    return out.reset_index(drop=True)


# ---------------------------------------------------------------------- format="dfe"
def _read_dfe(name, frame, raw, where, columns, na_values):
    """Academic years, start dates, flags and markers, read as :class:`Records` reads them."""
    notes, found, new = [], [], {}
    markers = dfe._marker_table(None, na_values)
    for column in frame.columns:
        typed = frame[column]
        text = raw[column] if raw is not None and column in raw.columns else typed
        label = columns.get(column, column)
        try:
            if column == "year" and name == "census":
                years = dfe.test_years(typed.rename(label))
                new[column] = years.astype("float64")
                if not pd.api.types.is_numeric_dtype(typed):
                    notes.append(
                        f"column {label!r} of {where}: academic years read as their summer"
                    )
            elif column == "start_year" and name == "participation":
                new[column], said = _start_years(typed, label, where)
                notes += said
            elif column == "in_post" and not pd.api.types.is_numeric_dtype(typed):
                flags = dfe.read_flag(text.rename(label), column=label)
                new[column] = flags.astype("Float64").astype("float64")
                notes.append(f"column {label!r} of {where}: yes/no flags read as 1/0")
            elif column in ("fte", "years_service", "size", "fsm_share"):
                values, reasons = dfe.read_cells(
                    text.rename(label), column=label, na_values=markers
                )
                reasons = reasons.where(~reasons.isin(["", " "]), None)
                if column == "fsm_share":
                    percent = text.astype("string").str.strip().str.endswith("%").fillna(False)
                    values = values.where(~percent.to_numpy(dtype=bool), (values / 100).round(10))
                new[column] = values.rename(column)
                for marker, cells in reasons.dropna().value_counts(sort=False).items():
                    found.append([name, label, marker, markers.get(marker, ""), int(cells)])
        except (AcademicYearError, InvalidValueError) as err:
            raise type(err)(f"{err} (In {where}.)") from None
    return (frame.assign(**new) if new else frame), found, notes


def _start_years(typed, label, where):
    """Start dates and academic years as the summer of the academic year of the start."""
    out = pd.Series(np.nan, index=typed.index)
    notes = []
    for value in pd.unique(typed.dropna()):
        try:
            date = dfe._as_date(value)
            if date is not None:
                year = date.year + (1 if date.month >= 9 else 0)
                if len(notes) < 3:
                    notes.append(
                        f"column {label!r} of {where}: a start on {date:%d/%m/%Y} is in "
                        f"academic year {dfe.academic_year(year)}, start_year {year}"
                    )
            else:
                year = dfe.test_year(value)
        except AcademicYearError as err:
            rows = typed.index[(typed == value).to_numpy(dtype=bool)]
            raise AcademicYearError(
                f"column {label!r} of {where} holds {format_value(value)} in "
                f"{format_rows(rows, limit=3)}: {err}"
            ) from None
        out[(typed == value).to_numpy(dtype=bool)] = year
    return out, notes
