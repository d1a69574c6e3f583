"""Records.from_csv / from_frames with format="dfe": pupil-level extracts as DfE and MIS write them.

The extract and its clean twin are in tests/reference/mis (written by make_extract.py there from
simulated records). Counts are checked against counts made here with the csv module, not
against numbers produced by the reader.
"""

from __future__ import annotations

import csv
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_quietly
from cpdimpact import CohortSpec, Evaluation, Records
from cpdimpact.errors import (
    AcademicYearError,
    CpdImpactError,
    DataError,
    InvalidArgumentError,
    InvalidValueError,
    LateStartWarning,
    UnknownMarkerError,
)

MIS = Path(__file__).parent / "reference" / "mis"
sys.path.insert(0, str(MIS))
from make_extract import COLUMNS, WRITTEN  # noqa: E402

TABLES = ("pupils", "participation", "schools", "teachers")


def _read(folder: Path, **options) -> Records:
    return Records.from_csv(**{t: folder / f"{t}.csv" for t in TABLES}, columns=COLUMNS, **options)


@pytest.fixture(scope="module")
def clean() -> Records:
    return _read(MIS / "clean")


@pytest.fixture(scope="module")
def extract() -> Records:
    return _read(MIS / "extract", format="dfe")


def _cells(name: str, column: str, encoding: str = "cp1252") -> list[tuple[int, str]]:
    """(line, cell) of a column of an extract file, read with the csv module."""
    path = MIS / "extract" / f"{name}.csv"
    with open(path, newline="", encoding=encoding) as handle:
        reader = csv.reader(handle)
        header = next(reader)
        at = header.index(column)
        return [(reader.line_num, row[at]) for row in reader]


def _copy_extract(tmp_path: Path, pupils_text: str | None = None, encoding="utf-8") -> Path:
    """The extract in ``tmp_path``, its pupils file replaced by ``pupils_text``."""
    folder = tmp_path / "extract"
    folder.mkdir()
    for name in TABLES:
        (folder / f"{name}.csv").write_bytes((MIS / "extract" / f"{name}.csv").read_bytes())
    if pupils_text is not None:
        (folder / "pupils.csv").write_bytes(pupils_text.encode(encoding))
    return folder


def _pupils_text() -> str:
    return (MIS / "extract" / "pupils.csv").read_bytes().decode("cp1252")


def _replace_cell(text: str, line: int, column: str, value: str) -> str:
    lines = text.split("\r\n")
    header = lines[0].split(",")
    # no quoted commas in the extract: split is the csv reading
    cells = lines[line - 1].split(",")
    cells[header.index(column)] = value
    lines[line - 1] = ",".join(cells)
    return "\r\n".join(lines)


# ------------------------------------------------------------------ the extract as it comes
def test_the_extract_is_written_as_mis_and_excel_write_it():
    raw = {n: (MIS / "extract" / f"{n}.csv").read_bytes() for n in TABLES}
    assert raw["participation"].startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in raw["pupils"] and b"\r\n" in raw["participation"]
    with pytest.raises(UnicodeDecodeError):
        raw["pupils"].decode("utf-8")  # cp1252: the en dash and accents are single bytes
    years = {cell for _, cell in _cells("pupils", "ACADEMIC_YEAR")}
    assert years == {f"{y}/{str(y + 1)[2:]}" for y in range(2016, 2023)}
    assert {cell for _, cell in _cells("pupils", "FSM_ELIGIBLE")} == {"Y", "N"}
    scores = [cell for _, cell in _cells("pupils", "KS2_MATHS_SCORE")]
    assert scores.count("SUPP") > 10 and scores.count("A") > 10 and scores.count("") > 0


def test_the_extract_reads_as_the_clean_tables(clean, extract):
    for name in TABLES:
        pd.testing.assert_frame_equal(extract.table(name), clean.table(name), check_exact=True)
    assert extract.fingerprint() == clean.fingerprint()
    names = set(extract.schools["SCHOOL_NAME"])
    assert "St Mary's C of E (Aided) – Café" in names and "Æthelstan Infants' School" in names


def test_markers_are_counted_by_marker_and_reason(clean, extract):
    scores = [cell for _, cell in _cells("pupils", "KS2_MATHS_SCORE")]
    prior = [cell for _, cell in _cells("pupils", "KS1_PRIOR")]
    table = extract.markers.set_index(["table", "column", "marker"])
    assert table.loc[("pupils", "outcome", "SUPP"), "cells"] == scores.count("SUPP")
    assert table.loc[("pupils", "outcome", "A"), "cells"] == scores.count("A")
    assert table.loc[("pupils", "prior", "NA"), "cells"] == prior.count("NA")
    assert len(table) == 3  # empty cells are plain missing, with no marker
    assert table.loc[("pupils", "outcome", "A"), "reason"].startswith("absent")
    assert table.loc[("pupils", "outcome", "SUPP"), "reason"].startswith("suppressed")
    marked = extract.marked("pupils", "outcome")
    assert list(marked.index) == list(extract.pupils.index)
    assert (marked == "SUPP").sum() == scores.count("SUPP")
    assert extract.pupils["outcome"][marked.notna()].isna().all()
    # clean records carry no markers, and say nothing was read
    assert clean.markers.empty and list(clean.markers.columns) == list(extract.markers.columns)
    assert clean.marked("pupils", "outcome").isna().all() and clean.reading_notes == ()


def test_reading_notes_say_what_was_read_how(extract):
    notes = "\n".join(extract.reading_notes)
    assert "'pupils.csv' is not UTF-8: read as cp1252" in notes
    assert "'2016/17' -> 2017" in notes
    assert "programme started September 2020; first results it could affect: summer 2021" in notes
    assert "FSM_PCT" in notes and "yes/no flags read as 1/0" in notes


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
@pytest.mark.parametrize("end", ["\r\n", "\n"])
def test_every_encoding_and_line_end_reads_the_same(tmp_path, extract, encoding, end):
    text = _pupils_text().replace("\r\n", end)
    folder = _copy_extract(tmp_path, text, encoding)
    records = _read(folder, format="dfe")
    pd.testing.assert_frame_equal(records.pupils, extract.pupils, check_exact=True)
    fell_back = any("read as cp1252" in n for n in records.reading_notes)
    assert fell_back == (encoding == "cp1252")


def test_an_explicit_encoding_is_used(tmp_path, extract):
    folder = _copy_extract(tmp_path)
    records = _read(folder, format="dfe", encoding="cp1252")
    pd.testing.assert_frame_equal(records.pupils, extract.pupils, check_exact=True)
    assert not any("read as cp1252" in n for n in records.reading_notes)  # chosen, not guessed


def test_from_frames_reads_the_same_cells(extract):
    frames = {n: pd.read_csv(MIS / "extract" / f"{n}.csv", encoding=WRITTEN[n][0]) for n in TABLES}
    records = Records.from_frames(**frames, columns=COLUMNS, format="dfe")
    for name in TABLES:
        pd.testing.assert_frame_equal(
            records.table(name).reset_index(drop=True),
            extract.table(name).reset_index(drop=True),
            check_exact=True,
        )
    # pandas read 'NA' as missing before cpdimpact saw it: only the markers it kept count
    assert set(records.markers["marker"]) == {"SUPP", "A"}


def test_a_clean_file_reads_the_same_either_way(clean):
    records = _read(MIS / "clean", format="dfe")
    for name in TABLES:
        pd.testing.assert_frame_equal(records.table(name), clean.table(name), check_exact=True)
    assert records.markers.empty


# ------------------------------------------------------------------ through the evaluation
def _collapse_markers(exclusions: list[dict]) -> list[dict]:
    """Exclusion rows with the per-marker rows of a reason summed back into it."""
    out: dict[tuple, dict] = {}
    for row in exclusions:
        key = (row["stage"], row["reason"].split(": ", 1)[0])
        if key in out:
            for count in ("schools", "teachers", "pupils"):
                out[key][count] += row[count]
        else:
            out[key] = {**row, "reason": key[1]}
    return list(out.values())


def test_the_evaluation_gives_the_same_results_json_and_counts_markers(tmp_path, clean, extract):
    clean_files = run_quietly(Evaluation(), clean).save(tmp_path / "clean")
    dfe_files = run_quietly(Evaluation(), extract).save(tmp_path / "dfe")
    ours = json.loads(Path(dfe_files["results.json"]).read_text(encoding="utf-8"))
    theirs = json.loads(Path(clean_files["results.json"]).read_text(encoding="utf-8"))
    ours_exclusions = ours["cohort"].pop("exclusions")
    theirs_exclusions = theirs["cohort"].pop("exclusions")
    assert ours == theirs  # every estimate, count and the fingerprint
    # the one difference: missing outcomes are counted by marker
    assert _collapse_markers(ours_exclusions) == theirs_exclusions
    scores = [cell for _, cell in _cells("pupils", "KS2_MATHS_SCORE")]
    by_reason = {row["reason"]: row["pupils"] for row in ours_exclusions}
    assert by_reason["outcome missing: SUPP (suppressed: small cohort (disclosure control))"] == (
        scores.count("SUPP")
    )
    assert by_reason["outcome missing: A (absent (did not sit the test))"] == scores.count("A")
    assert by_reason["outcome missing"] == scores.count("")
    report = Path(dfe_files["report.md"]).read_text(encoding="utf-8")
    assert "outcome missing: SUPP (suppressed: small cohort (disclosure control))" in report
    clean_report = Path(clean_files["report.md"]).read_text(encoding="utf-8")
    assert "outcome missing: SUPP" not in clean_report


def test_a_covariate_lost_to_a_marker_is_counted_by_it(clean, extract):
    prior = [cell for _, cell in _cells("pupils", "KS1_PRIOR")]
    scores = [cell for _, cell in _cells("pupils", "KS2_MATHS_SCORE")]
    # records whose outcome is there and whose prior is 'NA' are the ones the covariate drops
    expected = sum(
        p == "NA" and s not in ("SUPP", "A", "") for p, s in zip(prior, scores, strict=True)
    )
    spec = CohortSpec(covariates=("prior",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flow = spec.build(extract).flow.exclusions.set_index("reason")
        plain = spec.build(clean).flow.exclusions.set_index("reason")
    assert flow.loc["KS1_PRIOR missing: NA (not applicable)", "pupils"] == expected
    assert "KS1_PRIOR missing" not in flow.index  # every missing prior was marked
    assert plain.loc["KS1_PRIOR missing", "pupils"] == expected


# ------------------------------------------------------------------ start dates
def _with_start(tmp_path: Path, value: str, line: int = 3) -> Path:
    folder = _copy_extract(tmp_path)
    path = folder / "participation.csv"
    text = path.read_bytes().decode("utf-8-sig")
    lines = text.split("\r\n")
    cells = lines[line - 1].split(",")
    cells[4] = value
    lines[line - 1] = ",".join(cells)
    path.write_bytes("\r\n".join(lines).encode("utf-8-sig"))
    return folder


def test_a_summer_term_start_counts_from_the_next_tests(tmp_path):
    folder = _with_start(tmp_path, "14/05/2020")  # summer term 2019/20 -> 2021
    with pytest.warns(LateStartWarning) as caught:
        records = _read(folder, format="dfe")
    message = str(caught[0].message)
    assert (
        "'START_DATE'" in message and "'participation.csv'" in message and "CSV line 3" in message
    )
    assert records.participation.loc[3, "start_year"] == 2021


def test_a_start_before_april_counts_from_that_summer(tmp_path):
    folder = _with_start(tmp_path, "31/03/2021")
    with warnings.catch_warnings():
        warnings.simplefilter("error", LateStartWarning)
        records = _read(folder, format="dfe")
    assert records.participation.loc[3, "start_year"] == 2021


# ------------------------------------------------------------------ bad input
def _message(err: pytest.ExceptionInfo) -> str:
    assert isinstance(err.value, CpdImpactError)
    return str(err.value)


def test_an_unreadable_academic_year(tmp_path):
    folder = _copy_extract(tmp_path, _replace_cell(_pupils_text(), 7, "ACADEMIC_YEAR", "2018/20"))
    with pytest.raises(AcademicYearError) as err:
        _read(folder, format="dfe")
    message = _message(err)
    for part in ("'pupils.csv'", "'ACADEMIC_YEAR'", "'2018/20'", "(CSV line 7)", "'2018/19'"):
        assert part in message, part


def test_an_unknown_marker_and_its_fix(tmp_path):
    text = _replace_cell(_pupils_text(), 9, "KS2_MATHS_SCORE", "ABS")
    folder = _copy_extract(tmp_path, text, "cp1252")
    with pytest.raises(UnknownMarkerError) as err:
        _read(folder, format="dfe")
    message = _message(err)
    for part in ("'pupils.csv'", "'KS2_MATHS_SCORE'", "'ABS'", "(CSV line 9)", "na_values={'ABS'"):
        assert part in message, part
    # the fix works, and the new marker is counted with the reason given
    records = _read(folder, format="dfe", na_values={"ABS": "absent (school's own code)"})
    row = records.markers.set_index("marker").loc["ABS"]
    assert (row["column"], row["reason"], row["cells"]) == (
        "outcome",
        "absent (school's own code)",
        1,
    )
    listed = _read(folder, format="dfe", na_values=["ABS"])
    assert listed.markers.set_index("marker").loc["ABS", "reason"] == "declared missing (na_values)"


def test_an_undecodable_file(tmp_path):
    text = _pupils_text().encode("cp1252")
    at = text.index(b"\r\n", text.index(b"\r\n") + 2) + 2  # start of line 3
    broken = text[:at] + b"\x81" + text[at:]  # undefined in cp1252 and invalid in UTF-8
    folder = _copy_extract(tmp_path)
    (folder / "pupils.csv").write_bytes(broken)
    with pytest.raises(DataError) as err:
        _read(folder, format="dfe")
    message = _message(err)
    for part in ("'pupils.csv'", "b'\\x81'", "line 3", "encoding="):
        assert part in message, part
    # told it is UTF-8, the file fails at its first accent (line 2: the school name's en dash)
    with pytest.raises(DataError, match=r"cannot be read as 'utf-8': byte b'\\x96' on line 2"):
        _read(folder, format="dfe", encoding="utf-8")


def test_a_flag_that_is_neither_yes_nor_no(tmp_path):
    folder = _copy_extract(tmp_path, _replace_cell(_pupils_text(), 5, "FSM_ELIGIBLE", "maybe"))
    with pytest.raises(InvalidValueError) as err:
        _read(folder, format="dfe")
    for part in ("'pupils.csv'", "'FSM_ELIGIBLE'", "'maybe'", "(CSV line 5)", "Y/N"):
        assert part in _message(err), part


def test_a_start_date_that_is_not_a_date(tmp_path):
    folder = _with_start(tmp_path, "31/02/2021", line=4)
    with pytest.raises(AcademicYearError) as err:
        _read(folder, format="dfe")
    for part in ("'participation.csv'", "'START_DATE'", "'31/02/2021'", "CSV line 4", "day first"):
        assert part in _message(err), part


def test_options_that_do_not_fit_the_format(tmp_path):
    with pytest.raises(InvalidArgumentError, match="format='dfe'"):
        _read(MIS / "clean", format="excel")
    with pytest.raises(InvalidArgumentError, match="dtype="):
        _read(MIS / "clean", format="dfe", dtype=str)
    frames = {n: pd.read_csv(MIS / "clean" / f"{n}.csv") for n in TABLES}
    with pytest.raises(InvalidArgumentError, match="na_values"):
        Records.from_frames(**frames, columns=COLUMNS, na_values=["ABS"])


def test_inputs_are_not_modified():
    frames = {n: pd.read_csv(MIS / "extract" / f"{n}.csv", encoding=WRITTEN[n][0]) for n in TABLES}
    copies = {n: f.copy() for n, f in frames.items()}
    Records.from_frames(**frames, columns=COLUMNS, format="dfe")
    for name in TABLES:
        pd.testing.assert_frame_equal(frames[name], copies[name])


def test_the_default_format_passes_encoding_and_na_values_to_pandas(tmp_path):
    path = tmp_path / "pupils.csv"
    path.write_bytes("pupil,school,year,outcome,name\n1,1,2019,n/a,Café\n".encode("cp1252"))
    part = tmp_path / "part.csv"
    part.write_text("school,start_year\n1,2020\n")
    records = Records.from_csv(
        pupils=path, participation=part, encoding="cp1252", na_values=["n/a"]
    )
    assert records.pupils.loc[2, "name"] == "Café" and np.isnan(records.pupils.loc[2, "outcome"])
    assert records.markers.empty and records.reading_notes == ()


def test_a_subset_of_schools_keeps_the_markers_of_its_cells(extract):
    first_two = extract.schools["school"].iloc[:2].tolist()
    subset = extract.subset(first_two)
    assert set(subset.pupils["school"]) == set(first_two)
    pd.testing.assert_frame_equal(
        subset.pupils, extract.pupils[extract.pupils["school"].isin(first_two)]
    )
    kept = extract.marked("pupils", "outcome")[extract.pupils["school"].isin(first_two)]
    pd.testing.assert_series_equal(subset.marked("pupils", "outcome"), kept)
    counts = subset.markers.set_index(["column", "marker"])["cells"]
    assert counts[("outcome", "SUPP")] == (kept == "SUPP").sum() > 0  # school 2's 2019 results
    assert subset.reading_notes == extract.reading_notes


def test_explore_education_statistics_periods_and_academic_year_starts():
    pupils = pd.DataFrame(
        {
            "pupil": [1, 2, 3, 4],
            "school": [7, 7, 8, 8],
            "time_period": [201819, 201920, 201819, 201920],
            "outcome": ["101", "c", "99", "x"],
        }
    )
    part = pd.DataFrame({"school": [7], "start_year": ["2019/20"]})
    records = Records.from_frames(
        pupils=pupils, participation=part, columns={"year": "time_period"}, format="dfe"
    )
    assert records.pupils["year"].tolist() == [2019, 2020, 2019, 2020]
    assert records.pupils["year"].dtype == np.int64
    assert records.participation["start_year"].tolist() == [2020]
    assert records.marked("pupils", "outcome").tolist() == [None, "c", None, "x"]
    assert records.markers["reason"].tolist() == [
        "confidential: suppressed for disclosure (EES)",
        "not available (EES)",
    ]
    assert pupils["time_period"].tolist() == [201819, 201920, 201819, 201920]  # not modified


def test_a_clean_file_has_no_reading_notes():
    records = _read(MIS / "clean", format="dfe")
    assert records.reading_notes == ()
