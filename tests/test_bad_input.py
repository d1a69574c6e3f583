"""The standing bad-input suite: realistic mistakes in a user's records, one column at a time.

Each case takes valid records from :mod:`cpdimpact.datasets` (a small ``city_partnership``),
gives their columns the names a charity's files use (``URN``, ``ks2_maths``, ...) and their rows
the labels the user's frames carry (not 0..n-1), corrupts one column, and asserts:

- the error class;
- that the message names the user's column (and, for a corruption of rows, the first corrupted
  row as the user labels it);
- that no input frame was modified.

Every case runs on frames stored with numpy dtypes, pandas' nullable dtypes and (when pyarrow
is installed) arrow-backed dtypes; hypothesis draws the corrupted rows. To add a case (e.g.
after a user reports a confusing message), append a :class:`Corruption` to
:data:`CORRUPTIONS`; a mistake that is not a corruption of rows (a wrong mapping, a spec file)
goes into :data:`MAPPINGS` or its own test.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpdimpact import Records
from cpdimpact.datasets import city_partnership
from cpdimpact.errors import (
    ColumnMappingError,
    CpdImpactError,
    DuplicateRowsError,
    IdsReconciledWarning,
    InvalidValueError,
    UnknownReferenceError,
)

#: The user's names for cpdimpact's columns (canonical -> user), as in ``columns=``.
USER_NAMES = {
    "school": "URN",
    "pupil": "UPN",
    "teacher": "staff_no",
    "year": "test_year",
    "outcome": "ks2_maths",
    "prior": "ks1_average",
    "fsm": "FSM_flag",
    "start_year": "cohort_year",
    "dose_hours": "hours_attended",
    "size": "NOR",
    "fsm_share": "pct_fsm",
    "years_service": "service_years",
}

#: Row labels of the user's frames start here (so a message that numbers rows 0..n-1 fails).
FIRST_LABEL = 1001


def _user_tables() -> dict[str, pd.DataFrame]:
    records = city_partnership(seed=0, scale=0.05)
    tables = {}
    for name in ("pupils", "participation", "schools", "teachers"):
        frame = getattr(records, name).rename(columns=USER_NAMES)
        frame.index = pd.RangeIndex(FIRST_LABEL, FIRST_LABEL + len(frame))
        tables[name] = frame
    return tables


TABLES = _user_tables()


# ---------------------------------------------------------------------- corruptions
def _set(value) -> Callable[[pd.Series, list[int]], pd.Series]:
    """Set the value at the given positions (the column becomes object when it must)."""

    def corrupt(series: pd.Series, positions: list[int]) -> pd.Series:
        if isinstance(value, str):
            out = series.astype(object)
        elif pd.api.types.is_integer_dtype(series):
            out = series.astype(float)  # as pandas reads a column of numbers with a gap
        else:
            out = series.copy()
        out.iloc[positions] = value
        return out

    return corrupt


def _negate(series: pd.Series, positions: list[int]) -> pd.Series:
    out = series.astype(float)
    out.iloc[positions] = -(out.iloc[positions].abs() + 1.0)
    return out


def _duplicate_first(series: pd.Series, positions: list[int]) -> pd.Series:
    """Give the corrupted rows the id of the first row (so row 0 is offending too)."""
    out = series.copy()
    out.iloc[positions] = series.iloc[0]
    return out


def _prefix(series: pd.Series, positions: list[int]) -> pd.Series:
    """An id no spelling rule can match ('S100001' for 100001)."""
    out = series.astype(object)
    out.iloc[positions] = ["S" + str(v) for v in series.iloc[positions]]
    return out


def _categorical(series: pd.Series, positions: list[int]) -> pd.Series:
    return series.astype("category")


def _halve(series: pd.Series, positions: list[int]) -> pd.Series:
    out = series.astype(float)
    out.iloc[positions] = out.iloc[positions] + 0.5
    return out


@dataclass(frozen=True)
class Corruption:
    """One mistake in one column of one table."""

    name: str
    table: str
    column: str  #: the canonical column corrupted (the test uses the user's name for it)
    corrupt: Callable[[pd.Series, list[int]], pd.Series]
    error: type[CpdImpactError]
    #: whether the message must name the first corrupted row (False for whole-column problems)
    names_rows: bool = True
    #: the first offending row is row 0 rather than the first corrupted one
    first_row_offends: bool = False
    #: more text the message must contain
    says: str = ""

    def __str__(self) -> str:
        return self.name


_NUMERIC = [
    ("pupils", "outcome"),
    ("pupils", "prior"),
    ("pupils", "year"),
    ("participation", "start_year"),
    ("participation", "dose_hours"),
    ("schools", "size"),
    ("schools", "fsm_share"),
    ("teachers", "years_service"),
]

CORRUPTIONS: list[Corruption] = [
    *(
        Corruption(f"{sign}inf in {t}.{c}", t, c, _set(value), InvalidValueError, says="infinite")
        for t, c in _NUMERIC
        for sign, value in (("+", np.inf), ("-", -np.inf))
    ),
    *(
        Corruption(f"text in {t}.{c}", t, c, _set("n/a?"), InvalidValueError, says="numeric")
        for t, c in _NUMERIC
    ),
    Corruption("NaN in pupils.year", "pupils", "year", _set(np.nan), InvalidValueError),
    Corruption(
        "NaN in participation.start_year",
        "participation",
        "start_year",
        _set(np.nan),
        InvalidValueError,
    ),
    *(
        Corruption(f"negative {t}.{c}", t, c, _negate, InvalidValueError, says="negative")
        for t, c in (
            ("participation", "dose_hours"),
            ("schools", "size"),
            ("schools", "fsm_share"),
            ("teachers", "years_service"),
        )
    ),
    Corruption("half year", "pupils", "year", _halve, InvalidValueError, says="whole years"),
    *(
        Corruption(f"{label} id in {t}.{c}", t, c, _set(value), InvalidValueError, says="missing")
        for t, c in (
            ("pupils", "school"),
            ("pupils", "pupil"),
            ("schools", "school"),
            ("teachers", "teacher"),
            ("participation", "school"),
        )
        for label, value in (("NaN", np.nan), ("empty", ""), ("blank", "   "))
    ),
    Corruption(
        "blank teacher in participation",
        "participation",
        "teacher",
        _set("  "),
        InvalidValueError,
        says="whole-school enrolment",
    ),
    Corruption(
        "duplicated school id",
        "schools",
        "school",
        _duplicate_first,
        DuplicateRowsError,
        first_row_offends=True,
    ),
    Corruption(
        "unmatchable school id", "pupils", "school", _prefix, UnknownReferenceError, says="S1000"
    ),
    Corruption(
        "unmatchable school id in participation",
        "participation",
        "school",
        _prefix,
        UnknownReferenceError,
    ),
    *(
        Corruption(
            f"categorical {t}.{c}",
            t,
            c,
            _categorical,
            InvalidValueError,
            names_rows=False,
            says="astype",
        )
        for t, c in (("pupils", "outcome"), ("pupils", "fsm"), ("schools", "size"))
    ),
]


def _rows_in(table: str) -> st.SearchStrategy[list[int]]:
    n = len(TABLES[table])
    return st.lists(st.integers(1, n - 1), min_size=1, max_size=3, unique=True)


def _storages() -> list[str]:
    """How the user's frames store their columns: every check must hold for each."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:  # arrow-backed dtypes need pyarrow; tests/test_records.py says so
        return ["numpy", "nullable"]
    return ["numpy", "nullable", "arrow"]


def _stored(frame: pd.DataFrame, storage: str) -> pd.DataFrame:
    if storage == "nullable":
        return frame.convert_dtypes()
    if storage == "arrow":
        return frame.convert_dtypes(dtype_backend="pyarrow")
    return frame.copy(deep=True)


def _check(corruption: Corruption, positions: list[int], storage: str = "numpy") -> None:
    tables = {name: _stored(frame, storage) for name, frame in TABLES.items()}
    column = USER_NAMES.get(corruption.column, corruption.column)
    frame = tables[corruption.table]
    tables[corruption.table] = frame.assign(
        **{column: corruption.corrupt(frame[column], positions)}
    )
    before = copy.deepcopy(tables)
    with warnings.catch_warnings():
        # A corruption that turns an id column into text also makes the clean ids text: they
        # are matched to the schools table's numbers, which is tested in test_records.py.
        warnings.simplefilter("ignore", IdsReconciledWarning)
        with pytest.raises(CpdImpactError) as raised:
            Records.from_frames(**tables, columns=USER_NAMES).validate()
    err = raised.value
    assert isinstance(err, corruption.error), f"{corruption}: {type(err).__name__}: {err}"
    message = str(err)
    assert repr(column) in message or f"{column}=" in message, message
    if corruption.names_rows:
        first = FIRST_LABEL + (0 if corruption.first_row_offends else min(positions))
        assert f"row {first}" in message or f"rows {first}" in message, message
    assert corruption.says in message, message
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(frame, before[name], check_exact=True)


@pytest.mark.parametrize("storage", _storages())
@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=str)
@settings(max_examples=2, deadline=None)
@given(data=st.data())
def test_a_corrupted_column_is_named_with_its_rows(corruption, storage, data):
    positions = data.draw(_rows_in(corruption.table), label="rows")
    _check(corruption, sorted(positions), storage)


# ---------------------------------------------------------------------- column mappings
#: Mistakes in ``columns=``: (name, the mapping given, error, text the message must contain).
_WITHOUT_SCHOOL = {k: v for k, v in USER_NAMES.items() if k != "school"}
MAPPINGS = [
    (
        "one entry reversed",
        {**_WITHOUT_SCHOOL, "URN": "school"},
        ColumnMappingError,
        f"columns={ {**_WITHOUT_SCHOOL, 'school': 'URN'}!r}",
    ),
    (
        "every entry reversed",
        {user: canonical for canonical, user in USER_NAMES.items()},
        ColumnMappingError,
        f"columns={USER_NAMES!r}",
    ),
    ("unknown canonical name", {**USER_NAMES, "score": "ks2_maths"}, ColumnMappingError, "score"),
    (
        "two names for one column",
        {**USER_NAMES, "prior": "ks2_maths"},
        ColumnMappingError,
        "'ks2_maths'",
    ),
]


@pytest.mark.parametrize(
    ("name", "mapping", "error", "says"), MAPPINGS, ids=[m[0] for m in MAPPINGS]
)
def test_a_wrong_column_mapping_is_recognised(name, mapping, error, says):
    tables = {n: f.copy(deep=True) for n, f in TABLES.items()}
    before = copy.deepcopy(tables)
    with pytest.raises(error) as raised:
        Records.from_frames(**tables, columns=mapping)
    assert says in str(raised.value), str(raised.value)
    assert isinstance(raised.value, KeyError)  # as before issue 15: callers catching KeyError
    for n, frame in tables.items():
        pd.testing.assert_frame_equal(frame, before[n])


def test_a_mapping_onto_a_column_the_table_already_has_is_an_error():
    tables = {n: f.copy(deep=True) for n, f in TABLES.items()}
    tables["pupils"] = tables["pupils"].assign(outcome=0.0)
    with pytest.raises(ColumnMappingError, match="'outcome' and also your column 'ks2_maths'"):
        Records.from_frames(**tables, columns=USER_NAMES)
