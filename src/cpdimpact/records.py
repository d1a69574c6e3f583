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
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from .errors import (
    DuplicateRowsError,
    InvalidValueError,
    MissingColumnError,
    UnknownReferenceError,
    format_rows,
    format_value,
)

__all__ = ["Records", "TABLES", "REQUIRED", "OPTIONAL", "as_records"]

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

    kind: ClassVar[str] = "records"

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
    ) -> Records:
        """Build records from a user's DataFrames, renaming their columns to canonical names.

        Parameters
        ----------
        pupils, participation, schools, teachers
            The user's tables. They are copied, never modified.
        columns
            Mapping from a canonical name (``"outcome"``, ``"school"``, ...) to the user's column
            name. It applies to every table holding that column.
        """
        columns = dict(columns or {})
        _check_column_map(columns)
        rename = {user: canonical for canonical, user in columns.items()}
        tables = {
            name: (None if frame is None else frame.rename(columns=rename))
            for name, frame in (
                ("pupils", pupils),
                ("participation", participation),
                ("schools", schools),
                ("teachers", teachers),
            )
        }
        return cls(**tables, columns=columns)

    @classmethod
    def from_csv(
        cls,
        *,
        pupils: str | Path,
        participation: str | Path,
        schools: str | Path | None = None,
        teachers: str | Path | None = None,
        columns: Mapping[str, str] | None = None,
        **read_csv_kwargs,
    ) -> Records:
        """Read the tables from CSV files (see :meth:`from_frames` for ``columns``)."""

        def read(path):
            return None if path is None else pd.read_csv(path, **read_csv_kwargs)

        return cls.from_frames(
            pupils=read(pupils),
            participation=read(participation),
            schools=read(schools),
            teachers=read(teachers),
            columns=columns,
        )

    # ------------------------------------------------------------------ access
    def table(self, name: str) -> pd.DataFrame | None:
        """Return the table called ``name`` (one of :data:`TABLES`)."""
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}; tables are {', '.join(TABLES)}")
        return getattr(self, name)

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
        digest = hashlib.sha256()
        for name in TABLES:
            frame = self.table(name)
            digest.update(name.encode())
            if frame is None:
                digest.update(b"<absent>")
                continue
            frame = frame.reindex(columns=sorted(map(str, frame.columns)))
            digest.update("\x1f".join(frame.columns).encode())
            rows = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
            digest.update(np.sort(rows).tobytes())
        return digest.hexdigest()

    # ------------------------------------------------------------------ validation
    def validate(self, *, teacher_level: bool = False) -> None:
        """Check the tables; raise a :class:`~cpdimpact.errors.DataError` subclass on a problem.

        Checks, in order: required columns; numeric and binary columns; an outcome that is not
        entirely missing; unique school ids, teacher (school, id) pairs and pupil-year rows;
        pupils and participation that refer to known schools and teachers; start years inside
        the years the pupil data cover, leaving at least one earlier year as a pre-period.

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

        pupils, part = self.pupils, self.participation
        if pupils["outcome"].isna().all():
            raise InvalidValueError(
                f"column {self._user('outcome')!r} of the pupils table is entirely missing "
                f"({len(pupils)} rows); point `columns={{'outcome': ...}}` at the attainment score"
            )
        if pupils["year"].isna().any():
            bad = pupils.index[pupils["year"].isna()]
            raise InvalidValueError(
                f"column {self._user('year')!r} of the pupils table is missing in "
                f"{format_rows(bad)}; every pupil record needs its test year"
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
        if part["start_year"].isna().any():
            bad = part.index[part["start_year"].isna()]
            raise InvalidValueError(
                f"column {self._user('start_year')!r} of the participation table is missing in "
                f"{format_rows(bad)}; give the year each enrolment started"
            )
        first, last = int(pupils["year"].min()), int(pupils["year"].max())
        outside = part.index[(part["start_year"] <= first) | (part["start_year"] > last)]
        if len(outside):
            years = sorted(set(part.loc[outside, "start_year"].astype(int)))
            raise InvalidValueError(
                f"column {self._user('start_year')!r} of the participation table has start years "
                f"{years} outside the pupil data ({first}-{last}) in {format_rows(outside)}; "
                f"a start year must leave at least one earlier year of pupil data "
                f"(a pre-period) and fall no later than {last}. Remove those enrolments or "
                f"supply pupil records for the missing years."
            )

    def _user(self, canonical: str) -> str:
        return self.columns.get(canonical, canonical)


def as_records(tables) -> Records:
    """Accept :class:`Records` as they are, or a mapping of table name to DataFrame.

    A mapping may also hold ``"columns"`` (see :meth:`Records.from_frames`).
    """
    if isinstance(tables, Records):
        return tables
    if isinstance(tables, Mapping):
        unknown = sorted(set(tables) - {*TABLES, "columns"})
        if unknown:
            raise KeyError(f"unknown tables {unknown}; tables are {', '.join(TABLES)}")
        return Records.from_frames(**tables)
    raise TypeError(
        f"expected cpdimpact.Records or a dict of DataFrames named {', '.join(TABLES)}, got "
        f"{type(tables).__name__}"
    )


# ---------------------------------------------------------------------- helpers
def _check_column_map(columns: Mapping[str, str]) -> None:
    known = {c for name in TABLES for c in (*REQUIRED[name], *OPTIONAL[name])}
    unknown = sorted(set(columns) - known)
    if unknown:
        raise KeyError(
            f"columns maps unknown canonical names {unknown}; canonical names are {sorted(known)}"
        )


def _hint(canonical: str, columns: Mapping[str, str]) -> str:
    if canonical in columns:
        return f"(mapped from your column {columns[canonical]!r})"
    return f"(pass columns={{{canonical!r}: 'your column name'}} if it is called something else)"


def _require_columns(frame, table, required, columns) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        names = ", ".join(f"{c!r} {_hint(c, columns)}" for c in missing)
        raise MissingColumnError(
            f"the {table} table has no column {names}; it has {list(map(str, frame.columns))}"
        )


def _require_numeric(frame, table, column, columns) -> None:
    series = frame[column]
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return
    coerced = pd.to_numeric(series, errors="coerce")
    bad = frame.index[coerced.isna() & series.notna()]
    if len(bad):
        examples = ", ".join(format_value(v) for v in series.loc[bad[:3]])
        raise InvalidValueError(
            f"column {columns.get(column, column)!r} of the {table} table must be numeric; "
            f"{format_rows(bad)} hold {examples}. Clean those values (or set them missing) "
            f"before building the cohort."
        )
    raise InvalidValueError(
        f"column {columns.get(column, column)!r} of the {table} table holds numbers stored as "
        f"text ({series.dtype}); convert it with pandas.to_numeric before building the cohort"
    )


def _require_binary(frame, table, column, columns) -> None:
    series = frame[column]
    values = series.dropna()
    ok = values.isin([0, 1, True, False]) if len(values) else values
    if len(values) and not bool(ok.all()):
        bad = values.index[~ok]
        examples = ", ".join(format_value(v) for v in values.loc[bad[:3]])
        raise InvalidValueError(
            f"column {columns.get(column, column)!r} of the {table} table must be 0/1 "
            f"(or True/False); {format_rows(bad)} hold {examples}. Recode it, e.g. "
            f"fsm = (column == 'Y').astype(int)."
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
            f"{format_rows(bad)}; remove or aggregate the duplicates"
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
        raise UnknownReferenceError(
            f"the {table} table refers to {keys[-1]}s missing from the {reference_name} table "
            f"({shown}) in {format_rows(bad)}; add them to the {reference_name} table or remove "
            f"those rows"
        )
