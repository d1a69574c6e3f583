"""cpdimpact.dfe on real DfE performance-table downloads (tests/reference/dfe/).

Every count is checked against an independent count made here with the csv module and plain
string comparison, never against the reader's own output.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cpdimpact import dfe
from cpdimpact.errors import (
    AcademicYearError,
    CpdImpactError,
    DuplicateRowsError,
    InvalidValueError,
    LateStartWarning,
    MissingColumnError,
    UnknownMarkerError,
)

REF = Path(__file__).parent / "reference" / "dfe"
KS2 = sorted(REF.glob("*_ks2final.csv"))
KS4 = sorted(REF.glob("*_ks4final.csv"))
FILES = KS2 + KS4
PERFORMANCE_MARKERS = ("SUPP", "NE", "NP", "LOWCOV", "NEW", "NA", " ", "")
# Columns the reader keeps as ids, dates, flags or text: everything else is numeric.
NOT_NUMERIC = {
    *("RECTYPE", "LEA", "ESTAB", "URN", "URN_AC", "OPEN_AC", "ICLOSE", "TAB15", "TAB1618"),
    *("ALPHAIND", "SCHNAME", "ADDRESS1", "ADDRESS2", "ADDRESS3", "TOWN", "PCODE", "TELNUM"),
    *("PCON_CODE", "PCON_NAME", "SCHNAME_AC", "NFTYPE", "RELDENOM", "AGERANGE", "CONFEXAM"),
    *("ADMPOL", "ADMPOL_2017", "ADMPOL_PT", "EGENDER"),
}


def raw_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows with the csv module; short rows padded with empty cells."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    return header, [row + [""] * (len(header) - len(row)) for row in rows[1:]]


def raw_schools(path: Path) -> tuple[list[str], list[list[str]]]:
    header, rows = raw_rows(path)
    return header, [row for row in rows if row[0].strip() in ("1", "2")]


@pytest.fixture(scope="module")
def tables() -> dict[str, dfe.PublishedTable]:
    return {path.name: dfe.read_performance_table(path) for path in FILES}


# ------------------------------------------------------------------------- test years
@pytest.mark.parametrize(
    "value",
    ["2018/19", "2018-19", "2018-2019", "2018/2019", " 2018/19 ", "2018 / 19", 201819, "201819"]
    + [2019, "2019", np.int64(2019), 2019.0, np.int64(201819)],
)
def test_test_year_reads_every_form(value):
    assert dfe.test_year(value) == 2019


@pytest.mark.parametrize(
    "value", ["2018/20", "18/19", "autumn", "2018/2020", 201820, "", 19, 2019.5, True, "2019-09"]
)
def test_test_year_refuses_bad_forms_naming_the_value(value):
    with pytest.raises(AcademicYearError) as caught:
        dfe.test_year(value)
    message = str(caught.value)
    assert repr(value) in message or str(value) in message
    assert "'2018/19'" in message and "201819" in message  # the accepted forms


def test_century_boundary():
    assert dfe.test_year("1999/00") == 2000
    assert dfe.test_year(199900) == 2000
    assert dfe.test_year("1999/2000") == 2000


@given(st.integers(min_value=1901, max_value=2199))
def test_test_year_round_trips_every_written_form(year):
    first = year - 1
    short = f"{year % 100:02d}"
    forms = [f"{first}/{short}", f"{first}-{short}", f"{first}/{year}", f"{first}-{year}"]
    forms += [f"{first}{short}", int(f"{first}{short}"), year, str(year)]
    assert {dfe.test_year(form) for form in forms} == {year}


@given(st.integers(min_value=1901, max_value=2199), st.integers(min_value=2, max_value=98))
def test_test_year_refuses_non_consecutive_years(year, gap):
    first = year - 1
    with pytest.raises(AcademicYearError, match="must follow"):
        dfe.test_year(f"{first}/{(first + gap) % 100:02d}")


def test_test_years_keeps_index_and_name_and_missing():
    years = pd.Series(["2018/19", 201718, None, "2020", ""], index=[10, 11, 12, 13, 14], name="yr")
    out = dfe.test_years(years)
    assert out.index.tolist() == [10, 11, 12, 13, 14] and out.name == "yr"
    assert str(out.dtype) == "Int64"
    assert out.tolist() == [2019, 2018, pd.NA, 2020, pd.NA]
    assert years.tolist() == ["2018/19", 201718, None, "2020", ""]  # input untouched


def test_test_years_error_names_column_values_and_rows():
    years = pd.Series(["2018/19", "autumn", "2018/20", "autumn"], index=["a", "b", "c", "d"])
    years.name = "academic_year"
    with pytest.raises(AcademicYearError) as caught:
        dfe.test_years(years)
    message = str(caught.value)
    assert "'academic_year'" in message
    assert "'autumn' (rows 'b', 'd')" in message and "'2018/20' (row 'c')" in message
    assert "'2018-19'" in message


# -------------------------------------------------------------------- programme starts
@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("01/09/2019", 2020),
        ("2019-09-01", 2020),
        (dt.date(2019, 9, 1), 2020),
        (dt.datetime(2019, 11, 5, 9, 30), 2020),
        (pd.Timestamp("2020-01-15"), 2020),
        ("31/03/2020", 2020),
        ("31.03.2020", 2020),
        ("2019/20", 2020),
        (201920, 2020),
        ("2019-20", 2020),
        (2020, 2020),
    ],
)
def test_first_affected_test_year(start, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dfe.first_affected_test_year(start) == expected


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("01/04/2020", 2021),
        ("2020-05-14", 2021),
        (dt.date(2020, 7, 20), 2021),
        ("31/08/2019", 2020),  # last day (summer holiday) of academic year 2018/19
    ],
)
def test_summer_term_start_warns_and_moves_to_next_year(start, expected):
    with pytest.warns(LateStartWarning) as caught:
        assert dfe.first_affected_test_year(start) == expected
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "summer term" in message and f"summer-{expected}" in message
    assert "give the test year explicitly" in message and f"start {expected - 1}" in message


def test_day_first_dates_are_read_day_first():
    # 02/03/2020 is 2 March (spring term), not 3 February; 01/05/2020 is 1 May (summer term)
    assert dfe.first_affected_test_year("02/03/2020") == 2020
    with pytest.warns(LateStartWarning):
        assert dfe.first_affected_test_year("01/05/2020") == 2021


@pytest.mark.parametrize("start", ["31/02/2020", "13/13/2019"])
def test_invalid_dates_are_refused(start):
    with pytest.raises(AcademicYearError, match="day first"):
        dfe.first_affected_test_year(start)


def test_describe_start():
    assert dfe.describe_start("01/09/2019") == (
        "programme started September 2019; first results it could affect: summer 2020 tests"
    )
    assert dfe.describe_start(201920) == (
        "programme started in academic year 2019/20; first results it could affect: "
        "summer 2020 tests"
    )
    assert dfe.describe_start(2020).endswith("first results it could affect: summer 2020 tests")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # describing does not warn a second time
        late = dfe.describe_start("2020-05-14")
    assert late.startswith("programme started May 2020; first results it could affect: summer 2021")
    assert "summer term" in late


# ------------------------------------------------------------------------------ cells
def test_markers_have_reasons():
    for marker in (*PERFORMANCE_MARKERS, "c", "x", "z", "u", "k", "low"):
        assert dfe.MARKERS[marker]
    assert "suppress" in dfe.MARKERS["SUPP"] and "confidential" in dfe.MARKERS["c"]
    with pytest.raises(TypeError):
        dfe.MARKERS["Q"] = "read-only"  # type: ignore[index]


def test_read_cells_numbers_percentages_thousands_and_markers():
    cells = pd.Series(["63%", "SUPP", " 1,204 ", "-0.5", "", " ", "c", "low", "12.25%", "NE"])
    before = cells.copy()
    values, reasons = dfe.read_cells(cells, column="PTRWM_EXP")
    np.testing.assert_array_equal(
        values.to_numpy(),
        [63.0, np.nan, 1204.0, -0.5, np.nan, np.nan, np.nan, np.nan, 12.25, np.nan],
    )
    assert reasons.tolist() == [None, "SUPP", None, None, "", " ", "c", "low", None, "NE"]
    assert values.dtype == "float64"
    pd.testing.assert_series_equal(cells, before)


def test_read_cells_on_a_numeric_series():
    values, reasons = dfe.read_cells(pd.Series([1.5, np.nan, 3.0], name="x"))
    assert values.tolist()[0] == 1.5 and reasons.tolist() == [None, "", None]


def test_read_cells_unknown_marker_names_column_value_rows_and_fix():
    cells = pd.Series(["12", "DNS", "4", "DNS", "?"], index=[5, 6, 7, 8, 9])
    with pytest.raises(UnknownMarkerError) as caught:
        dfe.read_cells(cells, column="READPROG", source="mine.csv")
    message = str(caught.value)
    assert "'READPROG'" in message and "'mine.csv'" in message
    assert "'DNS' (rows 6, 8)" in message and "'?' (row 9)" in message
    assert "extra_markers=" in message and "na_values=" in message
    values, reasons = dfe.read_cells(
        cells, extra_markers={"DNS": "did not sit"}, na_values=["?"], column="READPROG"
    )
    assert reasons.tolist() == [None, "DNS", None, "DNS", "?"]
    assert values.isna().tolist() == [False, True, False, True, True]


def test_markers_are_case_sensitive():
    with pytest.raises(UnknownMarkerError):
        dfe.read_cells(pd.Series(["supp"]))


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (["Y", "N", "y", " n "], [True, False, True, False]),
        (["Yes", "No", "YES", "no"], [True, False, True, False]),
        (["TRUE", "FALSE", "True", "False"], [True, False, True, False]),
        (["1", "0", 1, 0], [True, False, True, False]),
        ([1.0, 0.0, np.nan, None], [True, False, pd.NA, pd.NA]),
        ([True, False, True, False], [True, False, True, False]),
        (["", " ", "Y", "N"], [pd.NA, pd.NA, True, False]),
    ],
)
def test_read_flag(cells, expected):
    out = dfe.read_flag(pd.Series(cells, dtype=object))
    assert str(out.dtype) == "boolean"
    assert out.tolist() == expected


def test_read_flag_refuses_unknown_values():
    with pytest.raises(InvalidValueError) as caught:
        dfe.read_flag(pd.Series(["Y", "maybe", "2"], name="fsm"), source="pupils.csv")
    message = str(caught.value)
    assert "'fsm'" in message and "'maybe' (row 1)" in message and "'2' (row 2)" in message
    assert "Y/N" in message


# ------------------------------------------------------------------ performance tables
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_school_row_is_read_and_areas_kept_apart(path, tables):
    table = tables[path.name]
    header, rows = raw_rows(path)
    schools = [r for r in rows if r[0] in ("1", "2")]
    areas = [r for r in rows if r[0] not in ("1", "2")]
    assert len(table.data) == len(schools) and len(table.areas) == len(areas) == 3
    urn = header.index("URN")
    assert table.data["URN"].tolist() == [int(r[urn]) for r in schools]
    assert set(table.data["RECTYPE"]) <= {1, 2}
    assert set(table.areas["RECTYPE"]) & {1, 2} == set()
    assert table.areas["URN"].isna().all()  # LA and England rows carry no URN
    assert table.year == int(path.name[5:9]) and table.source == path.name
    assert table.encodings == ("utf-8-sig",)  # every real download here has a BOM
    assert str(table.data["URN"].dtype) == "Int64"
    assert list(table.data.columns) == ["year", *header]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_marker_counts_match_an_independent_count(path, tables):
    header, schools = raw_schools(path)
    expected = Counter()
    for row in schools:
        for name, cell in zip(header, row, strict=True):
            if name not in NOT_NUMERIC and cell in PERFORMANCE_MARKERS:
                expected[(name, cell)] += 1
    markers = tables[path.name].markers
    got = Counter(
        {(c, m): n for c, m, n in markers[["column", "marker", "cells"]].itertuples(False)}
    )
    assert got == expected
    assert (markers["reason"] == markers["marker"].map(dfe.MARKERS)).all()
    by_marker = Counter()
    for (_, marker), n in expected.items():
        by_marker[marker] += n
    lost = tables[path.name].lost_cells().groupby(level="marker").sum()
    assert lost.to_dict() == dict(by_marker)


def test_marker_counts_in_numbers(tables):
    """The measured counts, as the report quotes them (school rows, numeric columns)."""
    lost = {n: t.lost_cells().groupby(level="marker").sum().to_dict() for n, t in tables.items()}
    assert lost["2018-2019_850_ks2final.csv"] == {
        "SUPP": 16982, "": 4260, "NA": 2180, "NEW": 3, "LOWCOV": 3
    }  # fmt: skip
    assert lost["2018-2019_936_ks4final.csv"]["NP"] == 14573
    assert lost["2018-2019_936_ks4final.csv"]["NE"] == 3341


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_numeric_cells_equal_the_raw_text(path, tables):
    """Every cell of every numeric column: a marker, or the number written in the file."""
    header, schools = raw_schools(path)
    data = tables[path.name].data
    for j, name in enumerate(header):
        if name in NOT_NUMERIC:
            continue
        raw = [row[j] for row in schools]
        expected = [np.nan if c in PERFORMANCE_MARKERS else float(c.rstrip("%")) for c in raw]
        np.testing.assert_array_equal(data[name].to_numpy(), np.array(expected), err_msg=name)


def test_percentage_column_spot_checked_against_the_raw_text(tables):
    header, schools = raw_schools(REF / "2018-2019_850_ks2final.csv")
    urn, pct = header.index("URN"), header.index("PTRWM_EXP")
    raw = {int(r[urn]): r[pct] for r in schools}
    data = tables["2018-2019_850_ks2final.csv"].data.set_index("URN")
    assert any(v.endswith("%") for v in raw.values())
    checked = 0
    for school, text in list(raw.items())[:40]:
        if re.fullmatch(r"\d+%", text):
            assert data.loc[school, "PTRWM_EXP"] == float(text[:-1])  # percentage points
            checked += 1
        else:
            assert np.isnan(data.loc[school, "PTRWM_EXP"])
    assert checked >= 20
    assert data["PTRWM_EXP"].dropna().between(0, 100).all()


def test_columns_the_docs_name_are_read_as_numbers(tables):
    ks2 = tables["2018-2019_936_ks2final.csv"].data
    for name in (
        *("TELIG", "PTFSM6CLA1A", "PTRWM_EXP", "READ_AVERAGE", "MAT_AVERAGE", "GPS_AVERAGE"),
        *("READPROG", "WRITPROG", "MATPROG", "READPROG_LOWER", "MATPROG_UPPER"),
        *("PTRWM_EXP_FSM6CLA1A", "PTRWM_EXP_NotFSM6CLA1A", "MAT_AVERAGE_FSM6CLA1A"),
    ):
        assert ks2[name].dtype == "float64", name
        assert ks2[name].notna().sum() > 100, name
    ks4 = tables["2018-2019_936_ks4final.csv"].data
    for name in ("TPUP", "ATT8SCR", "P8MEA", "PTL2BASICS_94", "ATT8SCR_FSM6CLA1A"):
        assert ks4[name].dtype == "float64", name
        assert ks4[name].notna().sum() > 50, name
    assert ks2["SCHNAME"].dtype == "string" and ks2["ICLOSE"].dtype == "boolean"
    assert ks2["LEA"].eq(936).all()


def test_every_column_of_the_metadata_is_in_the_file(tables):
    with (REF / "ks2_meta_2018-2019.csv").open(encoding="utf-8-sig", newline="") as handle:
        documented = [row["Field Name"].strip() for row in csv.DictReader(handle)]
    data = tables["2018-2019_850_ks2final.csv"].data
    assert set(documented) <= set(data.columns)


def test_links_are_parsed_from_the_conversion_columns(tables):
    header, schools = raw_schools(REF / "2018-2019_936_ks2final.csv")
    urn, ac, opened = header.index("URN"), header.index("URN_AC"), header.index("OPEN_AC")
    expected = [
        (int(r[urn]), int(r[ac]), pd.Timestamp(r[opened]))
        for r in schools
        if r[ac].strip() not in ("", "0")
    ]
    links = tables["2018-2019_936_ks2final.csv"].links
    assert len(expected) == 13
    got = list(links[["predecessor_urn", "successor_urn", "link_date"]].itertuples(False, None))
    assert got == expected
    assert (links["year"] == 2019).all() and links["successor_name"].notna().all()
    assert tables["2018-2019_936_ks4final.csv"].links.empty  # KS4 files carry no URN_AC


def test_columns_selects_and_keeps_identity(tmp_path):
    table = dfe.read_performance_table(
        REF / "2017-2018_850_ks2final.csv", columns=["PTRWM_EXP", "SCHNAME"]
    )
    assert list(table.data.columns) == ["year", "RECTYPE", "LEA", "URN", "SCHNAME", "PTRWM_EXP"]
    assert set(table.markers["column"]) == {"PTRWM_EXP"}
    full = dfe.read_performance_table(REF / "2017-2018_850_ks2final.csv")
    pd.testing.assert_frame_equal(table.links, full.links)  # links whatever the selection
    assert len(full.links) == 2
    with pytest.raises(MissingColumnError, match="did you mean 'PTRWM_EXP'"):
        dfe.read_performance_table(REF / "2017-2018_850_ks2final.csv", columns=["PTRWM_EPX"])


def test_several_years_and_areas(tables):
    both = dfe.read_performance_tables(KS2)
    assert len(both.data) == sum(len(tables[p.name].data) for p in KS2)
    assert both.years == tuple(int(p.name[5:9]) for p in KS2) and len(both.areas) == 3 * len(KS2)
    assert both.years == (2017, 2017, 2018, 2018, 2019, 2019)
    with pytest.raises(InvalidValueError, match="several test years"):
        _ = both.year
    summed = Counter()
    for path in KS2:
        for c, m, n in tables[path.name].markers[["column", "marker", "cells"]].itertuples(False):
            summed[(c, m)] += n
    got = Counter(
        {(c, m): n for c, m, n in both.markers[["column", "marker", "cells"]].itertuples(False)}
    )
    assert got == summed
    by_year = Counter()
    for path in KS2:
        by_year[int(path.name[5:9])] += len(raw_schools(path)[1])
    assert both.data.groupby("year").size().to_dict() == dict(by_year)
    assert len(both.links) == sum(len(tables[p.name].links) for p in KS2)
    with pytest.raises(DuplicateRowsError, match="Give each file once"):
        dfe.read_performance_tables([KS2[1], KS2[1]])


def _write_small(path: Path, *, name: str, encoding: str, bom: bool, newline: str) -> None:
    text = newline.join(
        [
            "RECTYPE,LEA,URN,SCHNAME,PTRWM_EXP,TELIG",
            f"1,850,100001,{name},63%,30",
            "1,850,100002,Another School,SUPP,4",
            "3,850, ,Hampshire,65%,12000",
            "",
        ]
    )
    path.write_bytes(("\ufeff" if bom else "").encode(encoding) + text.encode(encoding))


@pytest.mark.parametrize(
    ("encoding", "bom", "newline", "used"),
    [
        ("utf-8", True, "\r\n", "utf-8-sig"),
        ("utf-8", False, "\n", "utf-8"),
        ("utf-8", False, "\r\n", "utf-8"),
        ("cp1252", False, "\r\n", "cp1252"),
    ],
)
def test_encodings_and_line_ends(tmp_path, encoding, bom, newline, used):
    path = tmp_path / "2018-2019_850_ks2final.csv"
    _write_small(path, name="École St Mary’s £", encoding=encoding, bom=bom, newline=newline)
    table = dfe.read_performance_table(path)
    assert table.encodings == (used,)
    assert table.data["SCHNAME"].tolist() == ["École St Mary’s £", "Another School"]
    assert table.data["PTRWM_EXP"].tolist()[0] == 63.0
    assert list(table.data.columns)[:3] == ["year", "RECTYPE", "LEA"]  # no BOM in a name
    assert len(table.areas) == 1


def test_real_file_without_its_bom_reads_the_same(tmp_path, tables):
    original = REF / "2018-2019_936_ks2final.csv"
    plain = tmp_path / original.name
    plain.write_bytes(original.read_bytes().removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\n"))
    table = dfe.read_performance_table(plain)
    assert table.encodings == ("utf-8",)
    pd.testing.assert_frame_equal(table.data, tables[original.name].data)
    pd.testing.assert_frame_equal(table.markers, tables[original.name].markers)


def test_unknown_marker_in_a_file_names_file_column_value_and_row(tmp_path):
    path = tmp_path / "2018-2019_850_ks2final.csv"
    path.write_text(
        "RECTYPE,LEA,URN,PTRWM_EXP\n1,850,100001,63%\n1,850,100002,DNS\n", encoding="utf-8"
    )
    with pytest.raises(UnknownMarkerError) as caught:
        dfe.read_performance_table(path)
    message = str(caught.value)
    assert "'2018-2019_850_ks2final.csv'" in message and "'PTRWM_EXP'" in message
    assert "'DNS' (row 3)" in message and "lines of" in message  # line 3 of the file
    assert "extra_markers=" in message
    table = dfe.read_performance_table(path, extra_markers={"DNS": "did not sit"})
    assert table.markers.to_dict("records") == [
        {"column": "PTRWM_EXP", "marker": "DNS", "reason": "did not sit", "cells": 1}
    ]


def test_year_from_argument_and_disagreement(tmp_path):
    path = tmp_path / "hampshire_ks2.csv"
    path.write_text("RECTYPE,LEA,URN,TELIG\n1,850,100001,30\n", encoding="utf-8")
    with pytest.raises(AcademicYearError, match="year="):
        dfe.read_performance_table(path)
    assert dfe.read_performance_table(path, year="2018/19").year == 2019
    named = tmp_path / "2018-2019_850_ks2final.csv"
    named.write_bytes(path.read_bytes())
    with pytest.raises(AcademicYearError, match="disagrees"):
        dfe.read_performance_table(named, year=2020)


def test_not_a_performance_table(tmp_path):
    path = tmp_path / "2018-2019_pupils.csv"
    path.write_text("pupil,school\n1,2\n", encoding="utf-8")
    with pytest.raises(MissingColumnError, match="'RECTYPE'"):
        dfe.read_performance_table(path)


def test_errors_are_cpdimpact_errors():
    for cls in (AcademicYearError, UnknownMarkerError):
        assert issubclass(cls, CpdImpactError) and issubclass(cls, InvalidValueError)


def test_bad_start_lists_dates_and_years():
    with pytest.raises(AcademicYearError) as caught:
        dfe.first_affected_test_year("next spring")
    assert "'next spring'" in str(caught.value) and "'01/09/2019'" in str(caught.value)


def test_trailing_comma_column_and_a_nameless_column_with_values(tmp_path):
    path = tmp_path / "2018-2019_850_ks2final.csv"
    path.write_text("RECTYPE,LEA,URN,TELIG,\n1,850,100001,30,\n", encoding="utf-8")
    table = dfe.read_performance_table(path)
    assert list(table.data.columns) == ["year", "RECTYPE", "LEA", "URN", "TELIG"]
    path.write_text("RECTYPE,LEA,URN,TELIG,\n1,850,100001,30,7\n", encoding="utf-8")
    with pytest.raises(CpdImpactError, match="no name"):
        dfe.read_performance_table(path)


def test_repr_summarises(tables):
    text = repr(tables["2018-2019_850_ks2final.csv"])
    assert text.startswith("PublishedTable(331 school rows, 3 area rows")
    assert "16982 'SUPP'" in text and "2018-2019_850_ks2final.csv" in text


def test_the_docs_example_numbers():
    """docs/dfe_data.md quotes this output."""
    table = dfe.read_performance_table(
        REF / "2018-2019_850_ks2final.csv", columns=["SCHNAME", "TELIG", "PTRWM_EXP", "READPROG"]
    )
    assert repr(table) == (
        "PublishedTable(331 school rows, 3 area rows, 8 columns, test years [2019], "
        "1 academy links; cells lost to markers: 15 '', 7 'SUPP', 1 'NA'; "
        "from 2018-2019_850_ks2final.csv)"
    )
    assert table.links[["predecessor_urn", "successor_urn"]].values.tolist() == [[116240, 147128]]


def test_a_school_listed_twice_in_one_file(tmp_path):
    path = tmp_path / "2018-2019_850_ks2final.csv"
    path.write_text(
        "RECTYPE,LEA,URN,TELIG\n1,850,100001,30\n1,850,100002,5\n1,850,100001,30\n",
        encoding="utf-8",
    )
    with pytest.raises(DuplicateRowsError, match=r"URN 100001 more than once \(lines 2, 4\)"):
        dfe.read_performance_table(path)


def test_a_bad_id_names_its_line(tmp_path):
    path = tmp_path / "2018-2019_850_ks2final.csv"
    path.write_text("RECTYPE,LEA,URN,TELIG\n1,850,100001,30\n1,850,10000X,5\n", encoding="utf-8")
    with pytest.raises(InvalidValueError, match=r"'URN'.*'10000X' \(row 3\).*lines of"):
        dfe.read_performance_table(path)


cell_strategy = st.one_of(
    st.sampled_from(sorted(dfe.MARKERS)),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda x: round(x, 3)),
)


@given(st.lists(cell_strategy, max_size=30), st.booleans())
def test_read_cells_recovers_numbers_and_markers(cells, as_percent):
    def write(cell):
        if isinstance(cell, str):
            return cell
        return f"{cell}%" if as_percent else repr(cell)

    text = pd.Series([write(c) for c in cells], dtype=object)
    values, reasons = dfe.read_cells(text)
    for cell, value, reason in zip(cells, values, reasons, strict=True):
        if isinstance(cell, str):
            assert np.isnan(value) and reason == cell
        else:
            assert value == cell and reason is None
    # row order never matters
    order = np.random.default_rng(len(cells)).permutation(len(cells))
    shuffled_values, shuffled_reasons = dfe.read_cells(text.iloc[order])
    pd.testing.assert_series_equal(shuffled_values, values.iloc[order])
    pd.testing.assert_series_equal(shuffled_reasons, reasons.iloc[order])


def test_real_file_in_cp1252_with_an_accented_name(tmp_path, tables):
    original = REF / "2018-2019_936_ks2final.csv"
    text = original.read_bytes().decode("utf-8-sig")
    header, schools = raw_schools(original)
    name = schools[0][header.index("SCHNAME")]
    assert text.count(name) == 1
    copy = tmp_path / original.name
    copy.write_bytes(text.replace(name, name + " (École £)").encode("cp1252"))
    table = dfe.read_performance_table(copy)
    assert table.encodings == ("cp1252",)
    assert table.data["SCHNAME"].iloc[0] == name + " (École £)"
    expected = tables[original.name].data.drop(columns="SCHNAME")
    pd.testing.assert_frame_equal(table.data.drop(columns="SCHNAME"), expected)


# ------------------------------------------- metadata, GIAS and area codes beside the tables
META = sorted(REF.glob("ks2_meta_*.csv"))
GIAS = REF / "2021-05-07_850_936_gias.csv"
AREA_CODES = REF / "la_and_region_codes_meta.csv"


@pytest.mark.parametrize("path", META, ids=lambda p: p.name)
def test_column_definitions_of_every_year_match_the_tables(path):
    """Each year's metadata defines exactly the columns of that year's tables (both local
    authorities), comparing names as DfE spells them in either file, ignoring case."""
    defined = dfe.read_column_definitions(path)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = [r for r in list(csv.reader(handle))[1:] if any(c.strip() for c in r)]
    assert len(defined) == len(rows)
    assert defined["position"].tolist() == [int(r[0]) for r in rows]
    assert defined["column"].tolist() == ["".join(r[1].split()) for r in rows]
    assert not defined["column"].str.contains(r"\s").any()
    year = path.name.removeprefix("ks2_meta_").removesuffix(".csv")
    tables = sorted(REF.glob(f"{year}_*_ks2final.csv"))
    assert len(tables) == 2
    for table in tables:
        header, _ = raw_rows(table)
        assert {c.upper() for c in defined["column"]} == {c.upper() for c in header}, table.name


def test_column_definitions_read_both_header_spellings_and_cells_over_two_lines():
    """2016/17 writes 'FieldName' and breaks some names over two lines; 2017/18 'Field Name'."""
    old = dfe.read_column_definitions(REF / "ks2_meta_2016-2017.csv")
    new = dfe.read_column_definitions(REF / "ks2_meta_2017-2018.csv")
    assert "PTREAD_HIGH" in set(old["column"]) and "PTREAD_HIGH" in set(new["column"])
    # the index is the line each definition starts on: after a two-line cell, lines skip one
    assert old.index.name == "csv_line" and old.index[0] == 2
    assert (np.diff(old.index) >= 1).all() and old.index[-1] > len(old) + 1
    label = old.set_index("column").loc["URN", "label"]
    assert label == "School unique reference number"


def test_column_definitions_refuse_a_file_that_is_not_one(tmp_path):
    path = tmp_path / "meta.csv"
    path.write_text("Column,Name\n1,URN\n", encoding="utf-8")
    with pytest.raises(MissingColumnError, match="'meta.csv' has no 'Field Name' column"):
        dfe.read_column_definitions(path)


def test_gias_extract_reads_as_a_schools_table():
    header, rows = raw_rows(GIAS)
    schools = dfe.read_gias(GIAS)
    assert len(schools) == len(rows) == 729
    col = {name: header.index(name) for name in header}
    assert schools["school"].tolist() == [int(r[col["URN"]]) for r in rows]
    assert schools["area"].tolist() == [int(r[col["LA (code)"]]) for r in rows]
    fsm = [r[col["PercentageFSM"]] for r in rows]
    expected = np.array([float(v) / 100 if v.strip() else np.nan for v in fsm])
    np.testing.assert_allclose(schools["fsm_share"].to_numpy(), expected)
    assert schools["fsm_share"].isna().sum() == sum(not v.strip() for v in fsm) == 15
    assert list(schools.columns[:4]) == ["school", "area", "phase", "fsm_share"]
    assert "size" not in schools  # this extract has no NumberOfPupils
    assert schools["EstablishmentName"].iloc[0] == rows[0][col["EstablishmentName"]]
    assert schools.index.name == "csv_line" and schools.index[0] == 2


def test_gias_schools_table_goes_into_records():
    """The GIAS extract serves as Records' schools table for pupils of those schools."""
    from cpdimpact.records import Records

    schools = dfe.read_gias(GIAS)
    urns = schools["school"].iloc[:4].tolist()
    pupils = pd.DataFrame(
        {"pupil": range(8), "school": urns * 2, "year": [2019] * 8, "outcome": range(100, 108)}
    )
    participation = pd.DataFrame({"school": urns[:2], "start_year": [2019, 2019]})
    records = Records.from_frames(pupils=pupils, participation=participation, schools=schools)
    assert records.schools["fsm_share"].dropna().between(0, 1).all()
    assert records.schools["school"].tolist() == schools["school"].tolist()
    assert set(records.schools["area"]) == {850, 936}


@pytest.mark.parametrize(
    ("cell", "message"),
    [("abc", "'PercentageFSM' .* 'abc' \\(CSV line 3\\)"), ("140", "'140' \\(CSV line 3\\)")],
)
def test_gias_bad_cells_name_column_value_and_line(tmp_path, cell, message):
    path = tmp_path / "gias.csv"
    path.write_text(f"URN,LA (code),PercentageFSM\n100001,850,24\n100002,850,{cell}\n")
    with pytest.raises(InvalidValueError, match=message):
        dfe.read_gias(path)


def test_gias_repeated_urn_and_missing_urn_column(tmp_path):
    path = tmp_path / "gias.csv"
    path.write_text("URN,LA (code)\n100001,850\n100001,850\n")
    with pytest.raises(DuplicateRowsError, match="URN 100001 more than once \\(CSV lines 2, 3\\)"):
        dfe.read_gias(path)
    path.write_text("Name,LA (code)\nA school,850\n")
    with pytest.raises(MissingColumnError, match="no 'URN' column"):
        dfe.read_gias(path)


def test_area_codes_cover_the_tables_local_authorities(tables):
    header, rows = raw_rows(AREA_CODES)
    codes = dfe.read_area_codes(AREA_CODES)
    assert len(codes) == len(rows) == 152
    named = codes.set_index("area")
    assert named.loc[850, "area_name"] == "Hampshire" and named.loc[936, "area_name"] == "Surrey"
    for table in tables.values():
        assert table.data["LEA"].isin(codes["area"]).all()
    assert codes["region"].notna().all() and str(codes["area"].dtype) == "Int64"


# ------------------------------------------------------------------ published panels
def _raw_figure(cell: str) -> float:
    return np.nan if cell in PERFORMANCE_MARKERS else float(cell.rstrip("%"))


@pytest.mark.parametrize(
    ("pattern", "outcome", "count", "other", "other_count"),
    [
        ("*_ks2final.csv", "PTRWM_EXP", "TELIG", "PTRWM_EXP_NotFSM6CLA1A", "TNotFSM6CLA1A"),
        ("*_ks4final.csv", "ATT8SCR", "TPUP", "ATT8SCR_NFSM6CLA1A", "TNOTFSM6CLA1A"),
    ],
)
def test_panel_gives_each_figure_with_its_pupils_and_marker(
    pattern, outcome, count, other, other_count
):
    """Every school, year and group against the raw text of the files (KS2 and KS4, whose
    not-disadvantaged columns are spelled differently)."""
    paths = sorted(REF.glob(pattern))
    panel = dfe.read_performance_tables(paths).panel(outcome, groups=True)
    expected = []
    for path in paths:
        header, schools = raw_schools(path)
        col = {name: header.index(name) for name in header}
        for row in schools:
            for group, value, n in [
                ("all", outcome, count),
                ("disadvantaged", f"{outcome}_FSM6CLA1A", "TFSM6CLA1A"),
                ("not disadvantaged", other, other_count),
            ]:
                cell = row[col[value]]
                marker = cell if cell in PERFORMANCE_MARKERS else None
                expected.append(
                    (int(row[col["URN"]]), int(path.name[5:9]), group, _raw_figure(cell),
                     _raw_figure(row[col[n]]), marker)
                )  # fmt: skip
    got = panel[["school", "year", "group", "outcome", "pupils", "marker"]]
    assert len(got) == len(expected)
    want = pd.DataFrame(expected, columns=got.columns)
    assert got["school"].tolist() == want["school"].tolist()
    assert got["group"].tolist() == want["group"].tolist()
    assert got["year"].tolist() == want["year"].tolist()
    np.testing.assert_array_equal(got["outcome"].to_numpy(), want["outcome"].to_numpy())
    np.testing.assert_array_equal(got["pupils"].to_numpy(), want["pupils"].to_numpy())
    assert got["marker"].fillna("-").tolist() == want["marker"].fillna("-").tolist()
    assert (panel["reason"].dropna() != "").all()
    assert panel.loc[panel["marker"] == "SUPP", "reason"].str.startswith("suppressed").all()
    assert panel.loc[panel["outcome"].notna(), "reason"].isna().all()


def test_panel_names_a_measure_a_year_did_not_publish():
    """PTRWM_EXP_3YR (a three-year average) first appears in the 2017/18 files."""
    panel = dfe.read_performance_tables(sorted(REF.glob("*_ks2final.csv"))).panel("PTRWM_EXP_3YR")
    first = panel[panel["year"] == 2017]
    assert len(first) > 0 and first["outcome"].isna().all()
    assert (first["reason"] == "no such column in that year's file").all()
    assert first["marker"].isna().all()
    assert panel.loc[panel["year"] > 2017, "outcome"].notna().sum() > 500


def test_panel_refuses_a_measure_no_file_has():
    table = dfe.read_performance_table(REF / "2018-2019_850_ks2final.csv")
    with pytest.raises(MissingColumnError, match="'PTRWM_EPX'.*read_column_definitions"):
        table.panel("PTRWM_EPX")
    with pytest.raises(MissingColumnError, match="'READPROG_FSM6CLA1A_LOWER_FSM6CLA1A'"):
        table.panel("READPROG_FSM6CLA1A_LOWER", groups=True)
