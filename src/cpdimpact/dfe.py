"""Reading the files the Department for Education publishes: years, cell markers, tables.

The time convention
-------------------
``year`` is the **summer in which pupils sat the tests**: academic year 2018/19 is test year
2019. DfE files write that year as ``2018-2019`` (performance-table file names), ``2018/19`` or,
in Explore Education Statistics (EES), ``time_period`` ``201819``; :func:`test_year` reads every
one of these forms and returns 2019. A programme's start is mapped to the first test year it
could affect by :func:`first_affected_test_year` (a September 2019 start -> the summer-2020
tests); :func:`describe_start` says so in words.

Cell markers
------------
Published tables replace a value they do not show by a marker, and each marker is a different
reason (suppressed to protect a small cohort, no entries, low coverage, ...). :data:`MARKERS`
maps every marker cpdimpact knows to its reason; :func:`read_cells` reads a column into numbers
and keeps the marker of each missing cell, so an evaluator can count which cells were lost for
which reason. Letter case matters (``SUPP``, not ``supp``; ``c``, not ``C``).

Performance tables
------------------
:func:`read_performance_table` reads one school performance-table download ("Find and compare
schools in England", e.g. ``2018-2019_850_ks2final.csv``) as it comes: UTF-8 with or without a
byte-order mark or cp1252, CRLF line ends, percentages written ``63%``, markers, local-authority
and England rows mixed in with the schools, academy conversions. :func:`read_performance_tables`
reads several years or local authorities into one table. The files published beside them
have readers too: :func:`read_column_definitions` (DfE's metadata, ``ks2_meta_<year>.csv``),
:func:`read_gias` (Get Information About Schools, as the schools table of
:class:`~cpdimpact.records.Records`) and :func:`read_area_codes` (local-authority codes).

This module parses; it does not merge converter academies with their predecessors or feed the
tables into :class:`~cpdimpact.records.Records` (the links are returned for that).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import numbers
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from .errors import (
    CSV_LINE,
    AcademicYearError,
    DataError,
    DuplicateRowsError,
    InvalidValueError,
    LateStartWarning,
    MissingColumnError,
    UnknownMarkerError,
    format_rows,
    format_value,
)

__all__ = [
    "MARKERS",
    "MEASURE_LABELS",
    "PUPIL_MARKERS",
    "SCHOOL_RECTYPES",
    "PublishedTable",
    "test_year",
    "test_years",
    "first_affected_test_year",
    "describe_start",
    "academic_year",
    "year_convention",
    "read_cells",
    "read_flag",
    "YES_WORDS",
    "NO_WORDS",
    "read_performance_table",
    "read_performance_tables",
    "read_column_definitions",
    "read_gias",
    "GIAS_COLUMNS",
    "read_area_codes",
]

#: Every marker cpdimpact reads as a missing value, with its reason.
#:
#: Performance tables (the DfE "Find and compare schools in England" downloads and their
#: metadata files ``ks2_meta_<year>.csv``): ``SUPP``, ``NE``, ``NP``, ``LOWCOV``, ``NEW``,
#: ``NA``, a blank cell and an empty cell. Explore Education Statistics symbols follow the
#: DfE Analysts' Guide, "Open data standards" (dfe-analytical-services.github.io/analysts-guide,
#: statistics-production/ud.html), which takes them from the Government Statistical Service
#: guidance on symbols in tables (``c``, ``x``, ``z``, ``u``, ``low``; ``k`` is the GSS symbol
#: for a figure that rounds to zero, written ``low`` in newer EES files).
MARKERS: Mapping[str, str] = MappingProxyType(
    {
        "SUPP": "suppressed: small cohort (disclosure control)",
        "NE": "no entries",
        "NP": "not published",
        "LOWCOV": "low coverage (too few pupils with prior attainment for a progress score)",
        "NEW": "new school (no eligible pupils)",
        "NA": "not applicable",
        " ": "not published that year (blank cell)",
        "": "not published that year (empty cell)",
        "c": "confidential: suppressed for disclosure (EES)",
        "x": "not available (EES)",
        "z": "not applicable (EES)",
        "u": "low reliability (EES)",
        "k": "below 0.5: rounds to zero but is not zero (EES)",
        "low": "rounds to zero but is not zero (EES)",
    }
)

#: Markers of pupil-level extracts (school MIS exports of test results), read as missing with
#: their reason by :meth:`Records.from_csv(..., format="dfe") <cpdimpact.records.Records.from_csv>`
#: on top of :data:`MARKERS`. Others can be declared with ``na_values=``.
PUPIL_MARKERS: Mapping[str, str] = MappingProxyType({"A": "absent (did not sit the test)"})

#: ``RECTYPE`` of the rows that are schools (1 mainstream, 2 special). The other record types
#: are local-authority and England averages (3, 4, 5 and, in KS4 files, 7).
SCHOOL_RECTYPES = (1, 2)

_ACCEPTED_YEARS = (
    "a test year (2019), an academic year ('2018/19', '2018-19', '2018/2019', '2018-2019') "
    "or an Explore Education Statistics time_period (201819); all of these mean the "
    "summer-2019 tests"
)
_ACADEMIC = re.compile(r"^(\d{4})\s*[/-]\s*(\d{2}|\d{4})$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")
_MONTHS = (
    "January February March April May June July August September October November December"
).split()


# --------------------------------------------------------------------------------- years
def _academic_to_test(first: int, second: str, value: object) -> int:
    expected = first + 1
    if int(second) != (expected % 100 if len(second) == 2 else expected):
        raise AcademicYearError(
            f"{format_value(value)} is not an academic year: the second year must follow the "
            f"first ({first}/{str(expected)[-len(second) :]}). Accepted: {_ACCEPTED_YEARS}."
        )
    return expected


def _test_year(value: object) -> int:
    if isinstance(value, bool | np.bool_):
        raise AcademicYearError(f"{value!r} is not a year. Accepted: {_ACCEPTED_YEARS}.")
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        if not float(value).is_integer():
            raise AcademicYearError(
                f"{format_value(value)} is not a year. Accepted: {_ACCEPTED_YEARS}."
            )
        value = int(value)
    text = str(value).strip()
    if isinstance(value, numbers.Integral) or text.isdigit():
        if len(text) == 4 and 1900 <= int(text) <= 2200:
            return int(text)
        if len(text) == 6:  # EES time_period: 201819
            return _academic_to_test(int(text[:4]), text[4:], value)
    elif match := _ACADEMIC.match(text):
        return _academic_to_test(int(match.group(1)), match.group(2), value)
    raise AcademicYearError(
        f"{format_value(value)} is not a year cpdimpact can read. Accepted: {_ACCEPTED_YEARS}."
    )


def test_year(value: object) -> int:
    """The test year (the summer the tests were sat) of a year written any way DfE writes it.

    Parameters
    ----------
    value
        ``'2018/19'``, ``'2018-19'``, ``'2018/2019'``, ``'2018-2019'``, an Explore Education
        Statistics ``time_period`` (``201819`` or ``'201819'``) or a plain test year (``2019``
        or ``'2019'``). Surrounding spaces are ignored.

    Returns
    -------
    int
        The test year: 2019 for every example above.

    Raises
    ------
    AcademicYearError
        The value is none of these forms (``'2018/20'``, ``'18/19'``, ``'autumn'``); the message
        names it and lists the accepted forms.

    Examples
    --------
    >>> test_year("2018/19"), test_year(201819), test_year("2018-2019"), test_year(2019)
    (2019, 2019, 2019, 2019)
    """
    return _test_year(value)


test_year.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite its name


def test_years(series: pd.Series) -> pd.Series:
    """:func:`test_year` on every value of a column; the index and name are kept.

    Each distinct value is parsed once, so a column of millions of rows costs no more than its
    distinct years. Missing values (``NaN``, ``None``, empty text) stay missing.

    Parameters
    ----------
    series
        Years in any form :func:`test_year` reads; forms may be mixed.

    Returns
    -------
    pandas.Series
        Test years as nullable integers (``Int64``), same index and name.

    Raises
    ------
    AcademicYearError
        A value cannot be read: the message names the column, each bad value and the first
        rows holding it (by index label), and the accepted forms.
    """
    present = series.notna() & (series.astype("string").str.strip() != "")
    years: dict[object, int] = {}
    bad: dict[object, str] = {}
    for value in pd.unique(series[present]):
        try:
            years[value] = _test_year(value)
        except AcademicYearError as err:
            bad[value] = str(err)
    if bad:
        column = f"column {series.name!r}" if series.name is not None else "the years given"
        parts = []
        for value in list(bad)[:5]:
            labels = series.index[present & (series == value)]
            parts.append(f"{format_value(value)} ({format_rows(labels, limit=3)})")
        more = f" and {len(bad) - 5} more values" if len(bad) > 5 else ""
        raise AcademicYearError(
            f"{column} holds years cpdimpact cannot read: {', '.join(parts)}{more}. "
            f"Accepted: {_ACCEPTED_YEARS}."
        )
    out = pd.Series(pd.NA, index=series.index, name=series.name, dtype="Int64")
    out[present] = series[present].map(years).astype("int64")
    return out


test_years.__test__ = False  # type: ignore[attr-defined]


def _as_date(start: object) -> _dt.date | None:
    """A date from a date-like value or day-first / ISO text; None when ``start`` is no date."""
    if isinstance(start, pd.Timestamp | np.datetime64):
        return pd.Timestamp(start).date()
    if isinstance(start, _dt.datetime):
        return start.date()
    if isinstance(start, _dt.date):
        return start
    if not isinstance(start, str):
        return None
    text = start.strip()
    formats = ("%Y-%m-%d",) if re.match(r"^\d{4}-\d{1,2}-\d{1,2}$", text) else ()
    if re.match(r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{4}$", text):
        sep = re.findall(r"[/.-]", text)[0]
        formats = (f"%d{sep}%m{sep}%Y",)  # day first, as English files write dates
    for fmt in formats:
        try:
            return _dt.datetime.strptime(text, fmt).date()
        except ValueError:
            raise AcademicYearError(
                f"start {start!r} looks like a date but is not a valid one (dates are read "
                "day first: '01/09/2019' is 1 September 2019, or ISO '2019-09-01')."
            ) from None
    return None


def first_affected_test_year(start: object) -> int:
    """The first test year whose results a programme starting at ``start`` could affect.

    Parameters
    ----------
    start
        A date (``datetime.date``, ``datetime``, ``pandas.Timestamp``, day-first text
        ``'01/09/2019'`` or ISO ``'2019-09-01'``), an academic year (``'2019/20'``, ``201920``)
        or a test year (``2020``).

    Returns
    -------
    int
        The test year (summer of the tests) of the first results the programme could change.

    Raises
    ------
    AcademicYearError
        ``start`` is neither a date nor a year (:func:`test_year`).

    Notes
    -----
    The rule:

    * an academic year ``Y/Y+1`` -> ``Y+1``: the programme is taken to run from September, so
      the tests of that summer are its first (``'2019/20'`` -> 2020);
    * a test year is taken as given (``2020`` -> 2020): give one to override the rule below;
    * a date in academic year ``Y/Y+1`` (1 September ``Y`` to 31 August ``Y+1``) -> ``Y+1`` if
      it is before 1 April ``Y+1`` (autumn and spring terms: before the May tests), else ``Y+2``
      with a :class:`~cpdimpact.errors.LateStartWarning`: a start in the summer term (or the
      summer holiday) has at most weeks before the tests, so its first affected results are
      taken as the next year's.

    Examples: 01/09/2019 -> 2020; 15/01/2020 -> 2020; 31/03/2020 -> 2020; 01/04/2020 -> 2021
    (with the warning); 2019-09-01 -> 2020.

    Examples
    --------
    >>> first_affected_test_year("01/09/2019"), first_affected_test_year("2019/20")
    (2020, 2020)
    """
    date = _as_date(start)
    if date is None:
        try:
            return _test_year(start)
        except AcademicYearError:
            raise AcademicYearError(
                f"programme start {format_value(start)} is neither a date nor a year. Give a "
                "date ('01/09/2019', day first, or '2019-09-01'), an academic year ('2019/20', "
                "201920) or the first test year it could affect (2020)."
            ) from None
    academic = date.year if date.month >= 9 else date.year - 1
    if date < _dt.date(academic + 1, 4, 1):
        return academic + 1
    warnings.warn(
        f"The programme start {_format_start(start, date)} fell in the summer term (on or "
        f"after 1 April {academic + 1}), weeks before that summer's tests, so its first "
        f"affected results are taken as the summer-{academic + 2} tests. If it could affect "
        f"the summer-{academic + 1} tests, give the test year explicitly "
        f"(start {academic + 1}).",
        LateStartWarning,
        stacklevel=2,
    )
    return academic + 2


def _format_start(start: object, date: _dt.date) -> str:
    return repr(start) if isinstance(start, str) else date.isoformat()


def describe_start(start: object) -> str:
    """The year mapping of a programme start, in words for a flow log or a report.

    Parameters
    ----------
    start
        Anything :func:`first_affected_test_year` accepts.

    Returns
    -------
    str
        For example ``"programme started September 2019; first results it could affect:
        summer 2020 tests"``.

    Examples
    --------
    >>> describe_start("01/09/2019")
    'programme started September 2019; first results it could affect: summer 2020 tests'
    >>> describe_start("2019/20")
    'programme started in academic year 2019/20; first results it could affect: summer 2020 tests'
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LateStartWarning)
        year = first_affected_test_year(start)
    date = _as_date(start)
    tail = f"first results it could affect: summer {year} tests"
    if date is not None:
        late = " (it started in the summer term)" if caught else ""
        return f"programme started {_MONTHS[date.month - 1]} {date.year}; {tail}{late}"
    text = str(start).strip()
    if text.isdigit() and len(text) == 4:
        return f"programme given by its first test year {year}; {tail}"
    return f"programme started in academic year {academic_year(year)}; {tail}"


def academic_year(year: int) -> str:
    """The academic year whose summer tests are ``year``: the inverse of :func:`test_year`.

    Parameters
    ----------
    year
        A test year (the summer the tests were sat).

    Returns
    -------
    str
        ``'2018/19'`` for 2019.

    Examples
    --------
    >>> academic_year(2019), academic_year(2000)
    ('2018/19', '1999/00')
    """
    year = int(year)
    return f"{year - 1}/{year % 100:02d}"


def year_convention(example: int = 2019) -> str:
    """The time convention in one sentence, for every report and flow log.

    Parameters
    ----------
    example
        The test year used as the example.

    Returns
    -------
    str
        The sentence.

    Examples
    --------
    >>> year_convention()
    'Years are the summers in which pupils sat the tests: 2019 is the 2018/19 school year.'
    """
    return (
        f"Years are the summers in which pupils sat the tests: {int(example)} is the "
        f"{academic_year(example)} school year."
    )


# ------------------------------------------------------------------------------ cells
def _marker_table(
    extra_markers: Mapping[str, str] | None,
    na_values: Iterable[str] | Mapping[str, str] | None,
    known: Mapping[str, str] = MARKERS,
):
    """``known`` plus the user's markers; ``na_values`` may be a list (generic reason) or,
    like ``extra_markers``, a mapping of marker to reason."""
    markers = dict(known)
    if isinstance(na_values, Mapping):
        extra_markers = {**na_values, **(extra_markers or {})}
        na_values = None
    for value in na_values or ():
        markers[str(value)] = "declared missing (na_values)"
    markers.update({str(k): str(v) for k, v in (extra_markers or {}).items()})
    return markers


def _where(column: str | None, source: str | None) -> str:
    where = f"column {column!r}" if column is not None else "the values given"
    return where + (f" of {source!r}" if source else "")


def read_cells(
    series: pd.Series,
    *,
    column: str | None = None,
    extra_markers: Mapping[str, str] | None = None,
    na_values: Iterable[str] | None = None,
    source: str | None = None,
) -> tuple[pd.Series, pd.Series]:
    """Read a published column: numbers, percentages and markers, keeping each marker.

    Parameters
    ----------
    series
        The column as read from the file (text, numbers or a mix). Not modified.
    column
        Its name for messages (default: ``series.name``).
    extra_markers
        Local markers, ``{marker: reason}``, read as missing with that reason.
    na_values
        Further markers with the generic reason ``"declared missing (na_values)"``, or a
        mapping ``{marker: reason}`` (as ``extra_markers``).
    source
        The file name, for messages.

    Returns
    -------
    values : pandas.Series
        ``float64``; missing where the cell held a marker.
    reasons : pandas.Series
        The marker of each missing cell as written (``'SUPP'``, ``''``; see :data:`MARKERS`
        for the reasons), ``None`` where a number was read. Same index as ``series``.

    Raises
    ------
    UnknownMarkerError
        A cell is neither a number nor a known marker; the message names the column, each
        value, its rows and the fix.

    Notes
    -----
    Percentages keep their scale: ``'63%'`` is read as ``63.0`` (percentage points), not 0.63,
    so a column mixing ``63%`` and ``63`` reads the same. Thousands separators (``'1,234'``) are
    removed. Markers are matched exactly; a marker with surrounding spaces (``'SUPP '``) counts
    as that marker, and a cell of spaces only as the blank marker ``' '``. Missing values
    already in the Series (``NaN``, ``None``) count as the empty marker ``''``.

    Examples
    --------
    >>> values, reasons = read_cells(pd.Series(["63%", "SUPP", "1,204", "LOWCOV"]))
    >>> values.tolist(), reasons.tolist()
    ([63.0, nan, 1204.0, nan], [None, 'SUPP', None, 'LOWCOV'])
    """
    column = series.name if column is None else column
    markers = _marker_table(extra_markers, na_values)

    def as_reasons(is_marker: np.ndarray, marker: object) -> pd.Series:
        # object dtype with None (not NaN) where a number was read
        cells = np.where(is_marker, marker, None).astype(object)
        return pd.Series(cells, index=series.index, dtype=object, name=series.name)

    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.astype("float64")
        return values.rename(series.name), as_reasons(values.isna().to_numpy(), "")
    # Each distinct cell is classified once: published columns repeat a few hundred values,
    # so this costs the distinct values, not the rows.
    codes, uniques = pd.factorize(series.astype(object), use_na_sentinel=True)
    numbers = np.full(len(uniques) + 1, np.nan)  # last slot: cells already missing (code -1)
    marks = np.empty(len(uniques) + 1, dtype=object)
    marks[-1] = ""
    bad = np.zeros(len(uniques) + 1, dtype=bool)
    for i, cell in enumerate(uniques):
        numbers[i], marks[i], bad[i] = _classify(str(cell), markers)
    if bad.any():
        _raise_unknown(series, bad[codes], column, source, markers)
    cell_marks = marks[codes]
    values = pd.Series(numbers[codes], index=series.index, name=series.name)
    return values, as_reasons(pd.notna(cell_marks), cell_marks)


def _classify(text: str, markers: Mapping[str, str]) -> tuple[float, str | None, bool]:
    """(number, marker, unreadable) for one distinct cell."""
    if text in markers:
        return np.nan, text, False
    stripped = text.strip()
    if stripped == "":
        return np.nan, " ", False  # spaces only: the blank marker
    if stripped in markers:
        return np.nan, stripped, False
    body = stripped.removesuffix("%")
    if _THOUSANDS.match(body):
        body = body.replace(",", "")
    if _NUMBER.match(body):
        return float(body), None, False
    return np.nan, None, True


def _raise_unknown(series, bad, column, source, markers) -> None:
    offending = series[bad]
    parts = []
    distinct = pd.unique(offending.astype(str))
    for value in distinct[:5]:
        labels = offending.index[offending.astype(str) == value]
        parts.append(f"{value!r} ({format_rows(labels, limit=3)})")
    more = f" and {len(distinct) - 5} more values" if len(distinct) > 5 else ""
    example = repr(str(distinct[0]))
    known = ", ".join(repr(m) for m in markers)
    raise UnknownMarkerError(
        f"{_where(column, source)} holds text that is neither a number nor a known marker: "
        f"{', '.join(parts)}{more}. If it marks a missing value, declare it with its reason, "
        f"e.g. na_values={{{example}: 'withheld by the school'}} (or extra_markers= with the "
        f"same mapping; na_values=[{example}] gives a generic reason); "
        f"if the column is text, not numbers, read it as text. Known markers: {known}."
    )


#: The words :func:`read_flag` reads as yes and as no (lower case, surrounding spaces ignored).
YES_WORDS = frozenset({"y", "yes", "true", "t", "1"})
NO_WORDS = frozenset({"n", "no", "false", "f", "0"})


def read_flag(series: pd.Series, *, column: str | None = None, source: str | None = None):
    """Read a yes/no column into nullable booleans.

    Parameters
    ----------
    series
        ``Y``/``N``, ``Yes``/``No``, ``TRUE``/``FALSE``, ``True``/``False``, ``T``/``F``,
        ``1``/``0`` (text or numbers) or booleans, in any letter case, with surrounding spaces
        ignored. Missing values and empty or blank cells stay missing. Not modified.
    column, source
        The column and file names, for messages.

    Returns
    -------
    pandas.Series
        ``boolean`` dtype, same index and name.

    Raises
    ------
    InvalidValueError
        A value is none of these; the message names the column, the values and their rows.

    Examples
    --------
    >>> read_flag(pd.Series(["Y", "n", "TRUE", "0", ""])).tolist()
    [True, False, True, False, <NA>]
    """
    column = series.name if column is None else column
    missing = series.isna().to_numpy().copy()
    text = series.astype(object).where(~missing, "").astype(str).str.strip().str.lower()
    text = text.str.replace(r"^([01])\.0+$", r"\1", regex=True)  # 1.0 from a float column
    missing = missing | (text == "").to_numpy()
    yes, no = text.isin(YES_WORDS).to_numpy(), text.isin(NO_WORDS).to_numpy()
    bad = ~(yes | no | missing)
    if bad.any():
        offending = series[bad]
        distinct = pd.unique(offending.astype(str))
        parts = [
            f"{v!r} ({format_rows(offending.index[offending.astype(str) == v], limit=3)})"
            for v in distinct[:5]
        ]
        raise InvalidValueError(
            f"{_where(column, source)} should be a yes/no flag but holds {', '.join(parts)}. "
            "Accepted: Y/N, Yes/No, TRUE/FALSE, T/F, 1/0 (any case); leave unknown cells empty."
        )
    out = pd.Series(pd.NA, index=series.index, name=series.name, dtype="boolean")
    out[yes] = True
    out[no] = False
    return out


# ----------------------------------------------------------------- performance tables
#: Identity columns read as whole numbers (``URN_AC`` 0 means "no conversion": read as missing).
_INT_COLUMNS = ("RECTYPE", "LEA", "ESTAB", "URN", "URN_AC")
#: yyyymmdd dates.
_DATE_COLUMNS = ("OPEN_AC",)
#: 1/0 flags (``ICLOSE`` may also say ``null``).
_FLAG_COLUMNS = ("ICLOSE", "TAB15", "TAB1618")
#: Names, addresses and codes: kept as text, spaces trimmed, blank read as missing.
_TEXT_COLUMNS = (
    "ALPHAIND",
    "SCHNAME",
    "ADDRESS1",
    "ADDRESS2",
    "ADDRESS3",
    "TOWN",
    "PCODE",
    "TELNUM",
    "PCON_CODE",
    "PCON_NAME",
    "SCHNAME_AC",
    "NFTYPE",
    "RELDENOM",
    "AGERANGE",
    "CONFEXAM",
    "ADMPOL",
    "ADMPOL_2017",
    "ADMPOL_PT",
    "EGENDER",
)
_ALWAYS = ("RECTYPE", "LEA", "URN")

#: Headline measures of the performance tables in words, as a report names them (after
#: the metadata files' descriptions, e.g. tests/reference/dfe/ks2_meta_2018-2019.csv).
MEASURE_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "PTRWM_EXP": "the percentage of pupils reaching the expected standard in reading, "
        "writing and maths",
        "PTRWM_HIGH": "the percentage of pupils reaching a high standard in reading, writing "
        "and maths",
        "PTREAD_EXP": "the percentage of pupils reaching the expected standard in reading",
        "PTMAT_EXP": "the percentage of pupils reaching the expected standard in maths",
        "READ_AVERAGE": "the average scaled score in reading",
        "MAT_AVERAGE": "the average scaled score in maths",
        "GPS_AVERAGE": "the average scaled score in grammar, punctuation and spelling",
        "READPROG": "the reading progress score",
        "WRITPROG": "the writing progress score",
        "MATPROG": "the maths progress score",
        "ATT8SCR": "the average Attainment 8 score",
        "P8MEA": "the average Progress 8 score",
        "PTL2BASICS_94": "the percentage of pupils with grade 4 or above in English and maths",
        "PTL2BASICS_95": "the percentage of pupils with grade 5 or above in English and maths",
    }
)
_FILE_YEAR = re.compile(r"(?<!\d)(\d{4})[-_](\d{4}|\d{2})(?!\d)")
_LINK_SOURCES = ("URN_AC", "SCHNAME_AC", "OPEN_AC")


@dataclass(frozen=True)
class PublishedTable:
    """School performance tables as read from DfE downloads.

    Attributes
    ----------
    data : pandas.DataFrame
        One row per school and year (``RECTYPE`` 1 and 2), with a ``year`` column (test year)
        and the file's columns: identity columns as integers (``URN``, ``LEA``, ``ESTAB``,
        ``URN_AC``), ``OPEN_AC`` as a date, ``ICLOSE``/``TAB15``/``TAB1618`` as booleans,
        names and codes as text, everything else as ``float64`` with markers read as missing.
    areas : pandas.DataFrame
        The local-authority and England rows (``RECTYPE`` 3, 4, 5, 7), typed the same way.
    markers : pandas.DataFrame
        ``column, marker, reason, cells``: how many cells of the schools' numeric columns
        carried each marker (summed over files).
    links : pandas.DataFrame
        Academy conversions as published: ``predecessor_urn`` (the school's URN),
        ``successor_urn`` (``URN_AC``), ``successor_name``, ``link_date`` (``OPEN_AC``) and the
        ``year`` of the file that reported it. Parsed only: nothing is merged.
    years, sources, encodings : tuple
        Per file read: its test year, its file name and the encoding it was read with
        (``'utf-8-sig'`` with a byte-order mark, ``'utf-8'``, ``'cp1252'``, or as given).
    cell_markers : pandas.DataFrame
        The marker of each missing cell of the schools' numeric columns, as written (``'SUPP'``,
        ``''``), rows and columns as in ``data``; missing where a number was read or where a
        year's file has no such column.
    area_cell_markers : pandas.DataFrame
        The same for the numeric columns of :attr:`areas` (read by :meth:`area_panel`).
    """

    data: pd.DataFrame
    areas: pd.DataFrame
    markers: pd.DataFrame
    links: pd.DataFrame
    years: tuple[int, ...]
    sources: tuple[str, ...]
    encodings: tuple[str, ...]
    cell_markers: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    area_cell_markers: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    def __repr__(self) -> str:
        lost = self.lost_cells()
        counts = ", ".join(f"{n} {m!r}" for (m, _), n in lost.items()) or "none"
        return (
            f"PublishedTable({len(self.data)} school rows, {len(self.areas)} area rows, "
            f"{self.data.shape[1]} columns, test years {sorted(set(self.years))}, "
            f"{len(self.links)} academy links; cells lost to markers: {counts}; "
            f"from {self.source})"
        )

    @property
    def year(self) -> int:
        """The test year, when every file read has the same one."""
        if len(set(self.years)) != 1:
            raise InvalidValueError(
                f"these tables cover several test years {sorted(set(self.years))}: "
                "use .years, or the 'year' column of .data."
            )
        return self.years[0]

    @property
    def source(self) -> str:
        """The file name (several joined by ', ')."""
        return ", ".join(self.sources)

    def lost_cells(self) -> pd.Series:
        """Cells lost to a marker, by marker and reason, over every numeric column."""
        if self.markers.empty:
            return pd.Series(dtype="int64", name="cells")
        return self.markers.groupby(["marker", "reason"], sort=False)["cells"].sum()

    def panel(self, outcome: str, *, pupils: str | None = None, groups: bool = False):
        """One published measure as a school-by-year panel: the shape aggregates come in.

        Parameters
        ----------
        outcome
            The measure, a column of :attr:`data` as DfE names it: a percentage such as
            ``PTRWM_EXP`` (reaching the expected standard in reading, writing and maths, in
            percentage points) or an average such as ``MAT_AVERAGE`` (scaled score) or
            ``ATT8SCR`` (Attainment 8).
        pupils
            The column counting the pupils behind each figure. Default: ``TELIG`` (KS2
            eligible pupils), else ``TPUP`` (KS4 pupils at the end of key stage 4).
        groups
            Also give the disadvantaged and not-disadvantaged figures DfE publishes beside the
            whole cohort's (columns ``<outcome>_FSM6CLA1A`` and ``<outcome>_NotFSM6CLA1A``,
            spelled ``_NFSM6CLA1A`` in KS4 files, with counts ``TFSM6CLA1A`` and
            ``TNotFSM6CLA1A``).

        Returns
        -------
        pandas.DataFrame
            ``school`` (URN), ``area`` (``LEA``), ``year``, ``group`` (``"all"``, and with
            ``groups`` ``"disadvantaged"`` and ``"not disadvantaged"``), ``outcome`` (the
            published figure, missing where the cell held a marker), ``pupils``, and the
            ``marker`` and ``reason`` of each missing figure (``"no such column in that
            year's file"`` where a year did not publish the measure). One row per school, year
            and group, in the order of :attr:`data`.

        Raises
        ------
        MissingColumnError
            No file read has the measure, its group columns or a count of pupils.

        Notes
        -----
        The figures are school means and percentages, not pupils: an evaluation on them is an
        evaluation of schools, weighted by ``pupils``, and the spread of these figures is the
        spread of school means, which is smaller than the spread of pupils' scores. Columns
        with a year suffix (``PTRWM_EXP_18`` in a 2019 file: last year's figure republished)
        are not used; each year comes from its own file.
        """
        pupils = pupils or next((c for c in ("TELIG", "TPUP") if c in self.data), None)
        names = [("all", outcome, pupils)]
        if groups:
            names.append(("disadvantaged", f"{outcome}_FSM6CLA1A", "TFSM6CLA1A"))
            other = [f"{outcome}_{s}FSM6CLA1A" for s in ("Not", "N", "NOT")]
            counts = ["TNotFSM6CLA1A", "TNOTFSM6CLA1A"]
            names.append(
                ("not disadvantaged", _first_of(self.data, other), _first_of(self.data, counts))
            )
        missing = [n for _, *cols in names for n in cols if n is None or n not in self.data]
        if missing or pupils is None:
            raise MissingColumnError(
                f"{self.source!r} has no column {missing[0] if missing else 'counting pupils'!r}"
                f" for the panel of {outcome!r}. Name the measure and its count as DfE's "
                "metadata file does (read_column_definitions), e.g. panel('PTRWM_EXP', "
                "pupils='TELIG')."
            )
        unpublished = "no such column in that year's file"
        pieces = []
        for group, value, count in names:
            marks = self.cell_markers.get(value, pd.Series(np.nan, index=self.data.index))
            absent = self.data[value].isna() & marks.isna()
            marker = marks.astype("string")
            reason = marker.map(_marker_table(None, None), na_action="ignore").astype("string")
            pieces.append(
                pd.DataFrame(
                    {
                        "school": self.data["URN"],
                        "area": self.data["LEA"],
                        "year": self.data["year"],
                        "group": group,
                        "outcome": self.data[value],
                        "pupils": self.data[count],
                        "marker": marker,
                        "reason": reason.mask(absent, unpublished),
                    }
                )
            )
        order = {g: i for i, (g, _, _) in enumerate(names)}
        out = pd.concat(pieces).rename_axis("row").reset_index()
        out = out.sort_values(
            ["row", "group"], key=lambda c: c.map(order) if c.name == "group" else c
        )
        return out.drop(columns="row").reset_index(drop=True)

    def area_panel(self, outcome: str, *, pupils: str | None = None, groups: bool = False):
        """One published measure as a local-authority-by-year panel, from the LA rows.

        Every performance-table download carries, below its schools, the local authority's
        own figures and England's; this gives the local authority's, in the shape of
        :meth:`panel`.

        Parameters
        ----------
        outcome, pupils, groups
            As for :meth:`panel`: a measure as DfE names it (``PTRWM_EXP``, ``MAT_AVERAGE``,
            ``ATT8SCR``), the column counting its pupils (default ``TELIG``, else ``TPUP``) and
            whether to add the disadvantaged and not-disadvantaged figures.

        Returns
        -------
        pandas.DataFrame
            ``area`` (the local-authority code, ``LEA``), ``year``, ``group``, ``outcome``,
            ``pupils``, ``marker`` and ``reason``, exactly as :meth:`panel` (without
            ``school``): one row per local authority, year and group, in the order the files
            were read.

        Raises
        ------
        MissingColumnError
            No file read has the measure, its group columns or a count of pupils.

        See Also
        --------
        panel : the same for the schools.

        Notes
        -----
        The local-authority rows are the rows that are not schools and carry a local-authority
        code (``LEA``): ``RECTYPE`` 3 in KS2 files and 4 in KS4 files (DfE's KS2 metadata,
        ``ks2_meta_2018-2019.csv``: 3 = local authority, 4 = national, all schools, 5 =
        national, state-funded schools only). The England rows (KS2 ``RECTYPE`` 4 and 5, KS4
        5 and 7) carry no code and are left out: they are national benchmarks, repeated
        identically in every local authority's file, not areas to compare (read them from
        :attr:`areas`). A local authority's figures cover its state-funded schools, so
        ``pupils`` is the local authority's whole cohort, not the sum of the schools read.
        """
        is_la = (
            self.areas["LEA"].notna() & ~self.areas["RECTYPE"].isin(SCHOOL_RECTYPES)
        ).to_numpy()
        rows = self.areas[is_la].reset_index(drop=True)
        marks = self.area_cell_markers
        marks = marks[is_la].reset_index(drop=True) if len(marks) == len(is_la) else marks
        # The LA rows read as a table of their own: panel gives them in the same shape.
        las = PublishedTable(
            data=rows,
            areas=rows.iloc[:0],
            markers=self.markers,
            links=self.links,
            years=self.years,
            sources=self.sources,
            encodings=self.encodings,
            cell_markers=marks,
        )
        return las.panel(outcome, pupils=pupils, groups=groups).drop(columns="school")


def _first_of(data: pd.DataFrame, names: Sequence[str]) -> str | None:
    """The first of ``names`` that is a column of ``data`` (DfE spells some two ways)."""
    return next((n for n in names if n in data.columns), None)


def _decode(raw: bytes, encoding: str | None, name: str) -> tuple[str, str]:
    """The text of a file and the encoding it was read with: ``encoding`` if given, else
    UTF-8 (with or without a byte-order mark), else cp1252 (Excel's "CSV" on English
    Windows)."""
    if encoding is not None:
        try:
            text = raw.decode(encoding)
        except LookupError:
            raise DataError(
                f"encoding={encoding!r} (for {name!r}) is not an encoding Python knows. Give "
                "'utf-8', 'utf-8-sig' or 'cp1252', or leave encoding=None to let cpdimpact try "
                "UTF-8 (with or without a byte-order mark) and then cp1252."
            ) from None
        except UnicodeDecodeError as err:
            raise _undecodable(raw, err, name, f"as {encoding!r}") from None
        return text.removeprefix("\ufeff"), encoding
    if raw.startswith(b"\xef\xbb\xbf"):
        try:
            return raw[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as err:
            err.start, err.end = err.start + 3, err.end + 3  # positions in the whole file
            raise _undecodable(
                raw, err, name, "as UTF-8 (it starts with a UTF-8 byte-order mark)"
            ) from None
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as err:
        raise _undecodable(raw, err, name, "as UTF-8 or as cp1252") from None


def _undecodable(raw: bytes, err: UnicodeDecodeError, name: str, tried: str) -> DataError:
    line = raw[: err.start].count(b"\n") + 1
    return DataError(
        f"{name!r} cannot be read {tried}: byte {raw[err.start : err.start + 1]!r} on line "
        f"{line} is not a character there. Save the file as UTF-8 (in Excel: 'CSV UTF-8'), or "
        "give the encoding it was written in, e.g. encoding='latin-1'."
    )


def _year_from_name(name: str) -> int | None:
    match = _FILE_YEAR.search(name)
    if match is None:
        return None
    try:
        return _academic_to_test(int(match.group(1)), match.group(2), match.group(0))
    except AcademicYearError:
        return None


def _int_column(raw: pd.Series, name: str, source: str) -> pd.Series:
    text = raw.str.strip()
    bad = ~(text.str.fullmatch(r"\d+") | (text == "") | text.isin(("null", "NA")))
    if bad.any():
        _raise_column(raw, bad, name, source, "whole numbers (an id or code)")
    out = pd.to_numeric(text.where(text.str.fullmatch(r"\d+"), None)).astype("Int64")
    if name == "URN_AC":
        out = out.mask(out == 0)
    return out


def _date_column(raw: pd.Series, name: str, source: str) -> pd.Series:
    text = raw.str.strip()
    blank = (text == "") | (text == "0")
    dates = pd.to_datetime(text.where(~blank, None), format="%Y%m%d", errors="coerce")
    bad = dates.isna() & ~blank
    if bad.any():
        _raise_column(raw, bad, name, source, "dates written yyyymmdd (20190901)")
    return dates


_PERFORMANCE_FIX = (
    "Check that the file is a DfE performance-table download; a column that holds text can be "
    "named in text_columns=."
)


def _raise_column(raw, bad, name, source, what, fix: str = _PERFORMANCE_FIX) -> None:
    offending = raw[bad]
    parts = [
        f"{v!r} ({format_rows(offending.index[offending == v], limit=3)})"
        for v in pd.unique(offending)[:5]
    ]
    raise InvalidValueError(
        f"column {name!r} of {source!r} should hold {what} but holds {', '.join(parts)}. {fix}"
    )


def read_performance_table(
    path: str | Path,
    *,
    columns: Sequence[str] | None = None,
    encoding: str | None = None,
    year: object = None,
    extra_markers: Mapping[str, str] | None = None,
    na_values: Iterable[str] | None = None,
    text_columns: Iterable[str] = (),
) -> PublishedTable:
    """Read one DfE school performance-table download as it comes.

    Parameters
    ----------
    path
        The CSV file, e.g. ``2018-2019_850_ks2final.csv`` (KS2, Hampshire, summer-2019 tests).
        Not modified.
    columns
        The columns to keep (default: all). ``RECTYPE``, ``LEA`` and ``URN`` are always kept.
    encoding
        Default: UTF-8 (with or without a byte-order mark), else cp1252; the encoding used is
        recorded in ``encodings``.
    year
        The test year, in any form :func:`test_year` reads. Default: from the file name
        (``2018-2019`` -> 2019); required when the name carries no year.
    extra_markers, na_values
        Markers of your own, as for :func:`read_cells`.
    text_columns
        Further columns to keep as text (names and codes the reader does not know).

    Returns
    -------
    PublishedTable
        Schools in ``data``, local-authority and England rows in ``areas``, marker counts in
        ``markers``, academy conversions in ``links``.

    Raises
    ------
    MissingColumnError
        The file has no ``RECTYPE`` or ``URN`` column, or ``columns`` names one it lacks.
    UnknownMarkerError
        A numeric column holds text that is not a known marker (the fix is in the message).
    AcademicYearError
        No year in the file name and none given, or ``year`` disagrees with the file name.

    Notes
    -----
    Rows that stop early (closed schools and schools with no results carry only their first
    columns) are read as if the missing cells were empty, and count under the empty marker
    ``''``. Percentages are in percentage points (``'63%'`` -> 63.0). Marker counts cover the
    numeric columns of the school rows only.

    Examples
    --------
    >>> table = read_performance_table("2018-2019_850_ks2final.csv")  # doctest: +SKIP
    >>> table.year, len(table.data), table.lost_cells().head()  # doctest: +SKIP
    """
    path = Path(path)
    name = path.name
    text, used = _decode(path.read_bytes(), encoding, name)
    try:
        raw = pd.read_csv(
            io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False, index_col=False
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"{name!r} is not a CSV file pandas can read: {err}") from None
    raw = raw.fillna("")  # cells missing at the end of a short row
    # label rows by their line in the file (header = line 1), so messages point into it
    raw.index = pd.RangeIndex(2, len(raw) + 2)
    # A trailing comma on every line makes an unnamed, empty column: drop it, but only if empty.
    unnamed = [c for c in raw.columns if str(c).startswith("Unnamed:")]
    if any((raw[c].str.strip() != "").any() for c in unnamed):
        raise DataError(
            f"{name!r} has values in a column with no name (position "
            f"{list(raw.columns).index(unnamed[0]) + 1}): give every column a header."
        )
    raw = raw.drop(columns=unnamed)
    for required in ("RECTYPE", "URN"):
        if required not in raw.columns:
            raise MissingColumnError(
                f"{name!r} has no {required!r} column, so it is not a DfE performance-table "
                f"download (its columns begin {list(raw.columns[:6])})."
            )
    keep = _select(raw.columns, columns, name)
    # the conversion columns are read even when not selected: the links come from every file
    raw = raw[[c for c in raw.columns if c in keep or c in _LINK_SOURCES]]
    file_year = _year_from_name(name)
    if year is not None:
        given = _test_year(year)
        if file_year is not None and file_year != given:
            raise AcademicYearError(
                f"year={format_value(year)} (test year {given}) disagrees with the file name "
                f"{name!r} (test year {file_year}). Rename the file or drop year=."
            )
        file_year = given
    if file_year is None:
        raise AcademicYearError(
            f"{name!r} has no academic year in its name (like '2018-2019'): give the test year, "
            "e.g. year='2018/19' for the summer-2019 tests."
        )
    text_set = set(_TEXT_COLUMNS) | set(text_columns)
    try:
        typed, reasons = _type_columns(raw, text_set, name, extra_markers, na_values)
        frame = pd.DataFrame(typed, index=raw.index)
        if frame["RECTYPE"].isna().any():
            _raise_column(raw["RECTYPE"], frame["RECTYPE"].isna(), "RECTYPE", name, "a record type")
    except InvalidValueError as err:
        note = f" (Rows are numbered as lines of {name!r}, the header being line 1.)"
        raise type(err)(f"{err}{note}") from None
    if "year" in frame.columns:
        raise DataError(f"{name!r} already has a 'year' column; rename it before reading.")
    frame.insert(0, "year", file_year)
    is_school = frame["RECTYPE"].isin(SCHOOL_RECTYPES).to_numpy()
    data = frame[is_school].reset_index(drop=True)
    links = _links(data)
    unselected = [c for c in _LINK_SOURCES if c in frame.columns and c not in keep]
    data = data.drop(columns=unselected)
    areas = frame[~is_school].drop(columns=unselected).reset_index(drop=True)
    dupes = data["URN"].duplicated(keep=False) & data["URN"].notna()
    if dupes.any():
        raise DuplicateRowsError(
            f"{name!r} lists URN {format_value(data.loc[dupes, 'URN'].iloc[0])} more than once "
            f"(lines {format_rows(raw.index[is_school][dupes.to_numpy()])[5:]}): a "
            "performance table has one row per school. Remove the repeated rows."
        )
    cell_markers = pd.DataFrame(
        {c: r for c, r in reasons.items() if c in data.columns}, index=raw.index
    )
    area_cell_markers = cell_markers[~is_school].reset_index(drop=True)
    cell_markers = cell_markers[is_school].reset_index(drop=True)
    return PublishedTable(
        data=data,
        areas=areas,
        markers=_count_markers(reasons, is_school, extra_markers, na_values),
        links=links,
        years=(file_year,),
        sources=(name,),
        encodings=(used,),
        cell_markers=cell_markers,
        area_cell_markers=area_cell_markers,
    )


def _type_columns(raw, text_set, name, extra_markers, na_values):
    """Each column read by its kind; the markers of the numeric ones."""
    typed: dict[str, pd.Series] = {}
    reasons: dict[str, pd.Series] = {}
    for col in raw.columns:
        cells = raw[col]
        if col in text_set:
            stripped = cells.str.strip()
            typed[col] = stripped.where(stripped != "", None).astype("string")
        elif col in _INT_COLUMNS:
            typed[col] = _int_column(cells, col, name)
        elif col in _DATE_COLUMNS:
            typed[col] = _date_column(cells, col, name)
        elif col in _FLAG_COLUMNS:
            typed[col] = read_flag(cells.replace("null", ""), column=col, source=name)
        else:
            typed[col], reasons[col] = read_cells(
                cells, column=col, extra_markers=extra_markers, na_values=na_values, source=name
            )
    return typed, reasons


def _select(available: pd.Index, columns: Sequence[str] | None, name: str) -> list[str]:
    if columns is None:
        return list(available)
    if isinstance(columns, str):
        columns = [columns]
    missing = [c for c in columns if c not in available]
    if missing:
        hints = []
        for c in missing:
            close = get_close_matches(c, [str(a) for a in available], n=1)
            hints.append(f"{c!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise MissingColumnError(
            f"{name!r} has no column {', '.join(hints)}. The file's columns are listed in DfE's "
            "metadata file for that year (e.g. ks2_meta_2018-2019.csv)."
        )
    wanted = set(columns) | set(_ALWAYS)
    return [c for c in available if c in wanted]


def _count_markers(reasons, is_school, extra_markers, na_values) -> pd.DataFrame:
    table = _marker_table(extra_markers, na_values)
    rows = []
    for col, marks in reasons.items():
        counts = marks[is_school].value_counts(sort=False)
        for marker, cells in counts.items():
            rows.append((col, marker, table[marker], int(cells)))
    out = pd.DataFrame(rows, columns=["column", "marker", "reason", "cells"])
    return out.astype({"cells": "int64"})


def _links(data: pd.DataFrame) -> pd.DataFrame:
    if "URN_AC" not in data.columns:
        return pd.DataFrame(
            {
                "predecessor_urn": pd.Series(dtype="Int64"),
                "successor_urn": pd.Series(dtype="Int64"),
                "successor_name": pd.Series(dtype="string"),
                "link_date": pd.Series(dtype="datetime64[ns]"),
                "year": pd.Series(dtype="int64"),
            }
        )
    rows = data[data["URN_AC"].notna()]
    empty_dates = pd.Series(pd.NaT, index=rows.index, dtype="datetime64[ns]")
    empty_names = pd.Series(pd.NA, index=rows.index, dtype="string")
    return pd.DataFrame(
        {
            "predecessor_urn": rows["URN"],
            "successor_urn": rows["URN_AC"],
            "successor_name": rows["SCHNAME_AC"] if "SCHNAME_AC" in rows else empty_names,
            "link_date": rows["OPEN_AC"] if "OPEN_AC" in rows else empty_dates,
            "year": rows["year"],
        }
    ).reset_index(drop=True)


def read_performance_tables(paths: Iterable[str | Path], **options) -> PublishedTable:
    """Read several performance-table downloads (years, local authorities) into one.

    Parameters
    ----------
    paths
        The files; each is read with :func:`read_performance_table`.
    **options
        Passed to every :func:`read_performance_table` call (``columns``, ``encoding``,
        ``extra_markers``, ``na_values``, ``text_columns``; not ``year``).

    Returns
    -------
    PublishedTable
        Rows stacked in the order given (columns a year lacks are missing there, with no
        marker), marker counts summed by column and marker, links stacked.

    Raises
    ------
    DuplicateRowsError
        A school appears twice in one test year (the same file given twice?).
    """
    if "year" in options:
        raise InvalidValueError(
            "read_performance_tables takes each file's year from its name; read a file whose "
            "name has no year with read_performance_table(path, year=...)."
        )
    tables = [read_performance_table(p, **options) for p in paths]
    if not tables:
        raise InvalidValueError("read_performance_tables needs at least one file.")
    data = pd.concat([t.data for t in tables], ignore_index=True)
    clash = data.duplicated(["year", "URN"], keep=False) & data["URN"].notna()
    if clash.any():
        first = data[clash].iloc[0]
        where = [
            t.sources[0]
            for t in tables
            if t.years[0] == first["year"] and (t.data["URN"] == first["URN"]).any()
        ]
        raise DuplicateRowsError(
            f"URN {format_value(first['URN'])} appears more than once for test year "
            f"{first['year']} (in {where}). Give each file once, and read each key stage's "
            "files separately (a school with primary and secondary pupils is in both)."
        )
    markers = pd.concat([t.markers for t in tables], ignore_index=True)
    markers = markers.groupby(["column", "marker", "reason"], as_index=False, sort=False)[
        "cells"
    ].sum()
    return PublishedTable(
        data=data,
        areas=pd.concat([t.areas for t in tables], ignore_index=True),
        markers=markers,
        links=pd.concat([t.links for t in tables], ignore_index=True),
        years=tuple(y for t in tables for y in t.years),
        sources=tuple(s for t in tables for s in t.sources),
        encodings=tuple(e for t in tables for e in t.encodings),
        cell_markers=pd.concat([t.cell_markers for t in tables], ignore_index=True),
        area_cell_markers=pd.concat([t.area_cell_markers for t in tables], ignore_index=True),
    )


# ------------------------------------------------------- the files published beside them
def _read_text_table(path: str | Path, encoding: str | None) -> tuple[pd.DataFrame, str]:
    """Every cell as text, rows labelled by the line of the file each starts on (header = 1).

    A quoted cell may run over several lines (DfE's metadata files have some), so lines are
    counted by the csv module rather than assumed one per row."""
    path = Path(path)
    text, _ = _decode(path.read_bytes(), encoding, path.name)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{path.name!r} is empty: it should start with a header line.") from None
    rows, lines = [], []
    start = reader.line_num + 1
    for row in reader:
        if any(cell.strip() for cell in row):
            rows.append(row + [""] * (len(header) - len(row)))
            lines.append(start)
        start = reader.line_num + 1
    header = [h.strip() for h in header]
    frame = pd.DataFrame(rows, columns=header, index=pd.Index(lines, name=CSV_LINE), dtype=str)
    return frame, path.name


_FIX = "Correct those cells in the file (it is read as published, not changed)."


def _find_columns(frame: pd.DataFrame, wanted: Mapping[str, str], name: str, what: str):
    """The file's spelling of each wanted column, matched ignoring case, spaces and
    punctuation (DfE writes 'Field Name' in one year and 'FieldName' in another)."""

    def squash(text: str) -> str:
        return re.sub(r"[^a-z0-9]", "", text.lower())

    found = {squash(c): c for c in frame.columns}
    missing = [label for label in wanted.values() if squash(label) not in found]
    if missing:
        raise MissingColumnError(
            f"{name!r} has no {missing[0]!r} column, so it is not {what} (its columns are "
            f"{list(frame.columns[:8])}). Check that the file is the one named."
        )
    return {key: found[squash(label)] for key, label in wanted.items()}


def _whole_numbers(frame: pd.DataFrame, column: str, name: str) -> pd.Series:
    text = frame[column].str.strip()
    bad = ~(text.str.fullmatch(r"\d+") | (text == ""))
    if bad.any():
        _raise_column(frame[column], bad, column, name, "whole numbers (an id or code)", _FIX)
    return pd.to_numeric(text.where(text != "", None)).astype("Int64")


def read_column_definitions(path: str | Path, *, encoding: str | None = None) -> pd.DataFrame:
    """Read a DfE metadata file: the definition of each column of a performance table.

    Parameters
    ----------
    path
        The metadata file published beside the tables, e.g. ``ks2_meta_2018-2019.csv``
        (columns ``Column``, ``Field Name`` (``FieldName`` in 2016/17), ``Label/Description``).
    encoding
        As for :func:`read_performance_table`.

    Returns
    -------
    pandas.DataFrame
        ``position`` (the column's place in the table, from 1), ``column`` (its name, with the
        stray spaces and line breaks some files carry removed) and ``label``; indexed by the
        line of the file each definition starts on (``csv_line``).

    Raises
    ------
    MissingColumnError
        The file lacks one of the three columns.
    InvalidValueError
        A position that is not a whole number, or a column defined twice.

    Notes
    -----
    Names are as DfE wrote them, which is not always as the table writes them (the 2016/17 and
    2017/18 KS2 metadata define ``AlphaIND``; the tables' header says ``ALPHAIND``): compare
    names ignoring case.
    """
    frame, name = _read_text_table(path, encoding)
    cols = _find_columns(
        frame,
        {"position": "Column", "column": "Field Name", "label": "Label/Description"},
        name,
        "a DfE column-definitions (metadata) file",
    )
    out = pd.DataFrame(
        {
            "position": _whole_numbers(frame, cols["position"], name),
            "column": frame[cols["column"]].str.replace(r"\s+", "", regex=True).astype("string"),
            "label": frame[cols["label"]].str.strip().astype("string"),
        }
    )
    twice = out["column"].str.upper().duplicated(keep=False)
    if twice.any():
        _raise_column(frame[cols["column"]], twice, cols["column"], name, "each name once", _FIX)
    return out


#: Columns of Get Information About Schools downloads read into the names
#: :class:`~cpdimpact.records.Records` uses for its schools table.
GIAS_COLUMNS: Mapping[str, str] = MappingProxyType(
    {
        "school": "URN",
        "area": "LA (code)",
        "phase": "PhaseOfEducation (name)",
        "size": "NumberOfPupils",
        "fsm_share": "PercentageFSM",
    }
)


def read_gias(path: str | Path, *, encoding: str | None = None) -> pd.DataFrame:
    """Read a Get Information About Schools (GIAS) download as a schools table.

    Parameters
    ----------
    path
        A GIAS establishment download or an extract of it: one row per school, with ``URN``
        and GIAS's column names (``LA (code)``, ``PhaseOfEducation (name)``,
        ``NumberOfPupils``, ``PercentageFSM``, ...). Not modified.
    encoding
        As for :func:`read_performance_table` (GIAS downloads are often cp1252).

    Returns
    -------
    pandas.DataFrame
        The schools table of :class:`~cpdimpact.records.Records`: ``school`` (the URN),
        ``area`` (the local-authority code), ``phase``, ``size`` and ``fsm_share`` (a share from
        0 to 1: GIAS writes the percentage, ``24`` for 24%), those the file has
        (:data:`GIAS_COLUMNS`), then every other column as text under its GIAS name. Indexed by
        the line of the file (``csv_line``). An empty cell is missing.

    Raises
    ------
    MissingColumnError
        No ``URN`` column.
    InvalidValueError
        A URN or code that is not a whole number, a number that is not one, a percentage
        outside 0-100.
    DuplicateRowsError
        A URN listed twice.

    Examples
    --------
    >>> schools = read_gias("2021-05-07_850_936_gias.csv")  # doctest: +SKIP
    >>> schools[["school", "area", "phase", "fsm_share"]].head(2)  # doctest: +SKIP
    """
    frame, name = _read_text_table(path, encoding)
    _find_columns(frame, {"school": "URN"}, name, "a Get Information About Schools download")
    out: dict[str, pd.Series] = {}
    for key, column in GIAS_COLUMNS.items():
        if column not in frame.columns:
            continue
        if key in ("school", "area"):
            out[key] = _whole_numbers(frame, column, name)
        elif key == "phase":
            out[key] = frame[column].str.strip().replace("", None).astype("string")
        else:
            text = frame[column].str.strip()
            value = pd.to_numeric(text.where(text != "", None), errors="coerce")
            bad = value.isna() & (text != "")
            if key == "fsm_share":
                bad |= ~value.between(0, 100) & value.notna()
            if bad.any():
                what = "a percentage from 0 to 100" if key == "fsm_share" else "a number"
                _raise_column(frame[column], bad, column, name, what, _FIX)
            out[key] = value / 100 if key == "fsm_share" else value
    schools = pd.DataFrame(out, index=frame.index)
    if schools["school"].isna().any():
        _raise_column(frame["URN"], schools["school"].isna(), "URN", name, "a URN", _FIX)
    twice = schools["school"].duplicated(keep=False)
    if twice.any():
        raise DuplicateRowsError(
            f"{name!r} lists URN {format_value(schools.loc[twice, 'school'].iloc[0])} more "
            f"than once ({format_rows(schools.index[twice])}): a GIAS download has one row per "
            "school. Remove the repeated rows."
        )
    rest = [c for c in frame.columns if c not in GIAS_COLUMNS.values()]
    return schools.join(frame[rest].apply(lambda c: c.str.strip()).astype("string"))


def read_area_codes(path: str | Path, *, encoding: str | None = None) -> pd.DataFrame:
    """Read DfE's local-authority and region codes (``la_and_region_codes_meta.csv``).

    Parameters
    ----------
    path
        The file published with the performance tables: ``LEA``, ``LA Name``, ``REGION``,
        ``REGION NAME``.
    encoding
        As for :func:`read_performance_table`.

    Returns
    -------
    pandas.DataFrame
        ``area`` (the code performance tables write in ``LEA`` and GIAS in ``LA (code)``),
        ``area_name``, ``region``, ``region_name``; indexed by line of the file.

    Raises
    ------
    MissingColumnError
        One of the four columns is missing.
    InvalidValueError
        A code that is not a whole number.
    DuplicateRowsError
        A local-authority code listed twice.
    """
    frame, name = _read_text_table(path, encoding)
    cols = _find_columns(
        frame,
        {"area": "LEA", "area_name": "LA Name", "region": "REGION", "region_name": "REGION NAME"},
        name,
        "DfE's local-authority and region codes",
    )
    out = pd.DataFrame(
        {
            key: _whole_numbers(frame, column, name)
            if key in ("area", "region")
            else frame[column].str.strip().astype("string")
            for key, column in cols.items()
        }
    )
    twice = out["area"].duplicated(keep=False)
    if twice.any():
        raise DuplicateRowsError(
            f"{name!r} lists local-authority code {format_value(out.loc[twice, 'area'].iloc[0])} "
            f"more than once ({format_rows(out.index[twice])}). Remove the repeated rows."
        )
    return out
