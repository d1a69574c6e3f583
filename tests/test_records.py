"""Records: dtypes, ids spelled differently across tables, CSV line numbers."""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from cpdimpact import CohortSpec, DiD, Evaluation, Records
from cpdimpact.datasets import city_partnership
from cpdimpact.errors import (
    ColumnMappingError,
    CpdImpactWarning,
    DuplicateRowsError,
    IdsReconciledWarning,
    InvalidValueError,
    UnknownReferenceError,
)

NAMES = ("pupils", "participation", "schools", "teachers")
ID_COLUMNS = ("school", "pupil", "teacher")
TEXT_COLUMNS = ("sex", "strand", "area", "phase")


# ---------------------------------------------------------------------- dtypes
@pytest.fixture(scope="module")
def plain():
    records = city_partnership(seed=0, scale=0.1)
    return {name: getattr(records, name) for name in NAMES}


def _evaluate(tables, exposure):
    evaluation = Evaluation(
        cohort=CohortSpec(exposure=exposure, covariates=("prior", "fsm")),
        estimator=DiD(covariates=("prior",)),
        event_study=None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        result = evaluation.run(Records(**tables))
    return result.to_json_dict()


@pytest.fixture(scope="module")
def plain_results(plain):
    return {exposure: _evaluate(plain, exposure) for exposure in ("school", "teacher")}


def _nullable(frame):
    frame = frame.convert_dtypes()  # Int64, Float64, string
    binary = [c for c in ("fsm", "sen", "eal") if c in frame.columns]
    return frame.astype(dict.fromkeys(binary, "boolean"))


def _categorical_labels(frame):
    return frame.astype({c: "category" for c in frame.columns if c in ID_COLUMNS + TEXT_COLUMNS})


def _object_ids(frame):
    return frame.astype({c: object for c in frame.columns if c in ID_COLUMNS})


def _arrow(frame):
    pytest.importorskip(
        "pyarrow", reason="pyarrow is not installed: pandas' arrow-backed dtypes need it"
    )
    return frame.convert_dtypes(dtype_backend="pyarrow")


def _text_ids(frame):
    return frame.assign(
        **{c: frame[c].astype("string").astype(object) for c in frame.columns if c in ID_COLUMNS}
    )


CONVERSIONS = {
    "nullable": _nullable,
    "categorical labels and ids": _categorical_labels,
    "object ids": _object_ids,
    "arrow": _arrow,
}


@pytest.mark.parametrize("exposure", ["school", "teacher"])
@pytest.mark.parametrize("conversion", list(CONVERSIONS))
def test_other_dtypes_give_the_same_results(plain, plain_results, conversion, exposure):
    converted = {name: CONVERSIONS[conversion](frame) for name, frame in plain.items()}
    assert _evaluate(converted, exposure) == plain_results[exposure]


def test_ids_as_text_in_every_table_give_the_same_estimates(plain, plain_results):
    converted = {name: _text_ids(frame) for name, frame in plain.items()}
    results = _evaluate(converted, "teacher")
    # Text ids are other data than numbers, so only the fingerprint of the data differs.
    assert results.pop("data_fingerprint") != plain_results["teacher"]["data_fingerprint"]
    assert results == {k: v for k, v in plain_results["teacher"].items() if k != "data_fingerprint"}


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("pupils", "outcome"),
        ("pupils", "prior"),
        ("pupils", "year"),
        ("pupils", "fsm"),
        ("participation", "start_year"),
        ("participation", "dose_hours"),
        ("schools", "size"),
        ("teachers", "years_service"),
    ],
)
def test_a_categorical_number_column_is_a_typed_error(plain, table, column):
    tables = dict(plain)
    tables[table] = plain[table].astype({column: "category"})
    with pytest.raises(InvalidValueError, match=rf"'{column}' of the {table} table.*astype"):
        Records(**tables).validate()


def test_numbers_in_an_object_column_are_named_as_such(plain):
    tables = dict(plain)
    tables["pupils"] = plain["pupils"].astype({"outcome": object})
    with pytest.raises(InvalidValueError, match="'outcome'.*numbers in a column of Python objects"):
        Records(**tables).validate()


def test_the_fingerprint_does_not_depend_on_object_or_nullable_storage(plain):
    reference = Records(**plain).fingerprint()
    assert Records(**{n: _object_ids(f) for n, f in plain.items()}).fingerprint() == reference
    assert Records(**{n: f.convert_dtypes() for n, f in plain.items()}).fingerprint() == reference


# ---------------------------------------------------------------------- ids
def _reconciled(tables):
    with pytest.warns(IdsReconciledWarning) as caught:
        records = Records(**tables)
    return records, " ".join(str(w.message) for w in caught)


def test_ids_differing_in_type_zeros_and_spaces_are_matched(tables):
    clean = CohortSpec(exposure="teacher").build(Records(**tables))
    messy = dict(tables)
    # The schools table keeps numbers; the others spell the same schools as text.
    messy["pupils"] = tables["pupils"].assign(
        school=tables["pupils"]["school"].map("{:06d}".format)
    )
    messy["participation"] = tables["participation"].assign(
        school=tables["participation"]["school"].map(" {} ".format),
        teacher=tables["participation"]["teacher"].astype(str),
    )
    messy["teachers"] = tables["teachers"].assign(school=tables["teachers"]["school"].astype(str))
    before = copy.deepcopy(messy)
    records, message = _reconciled(messy)
    assert "'000001' as 1" in message and "pupils table" in message
    assert "' 1 ' as '1'" in message  # spaces trimmed first, then '1' matched to 1
    assert "teachers table" in message and "participation table" in message
    assert len(records.id_notes) == 5
    cohort = CohortSpec(exposure="teacher").build(records)
    pd.testing.assert_frame_equal(cohort.pupils, clean.pupils)
    assert records.fingerprint() == Records(**tables).fingerprint()
    for name, frame in messy.items():
        pd.testing.assert_frame_equal(frame, before[name])


def test_the_reference_tables_spelling_is_kept(tables):
    messy = dict(tables)
    messy["schools"] = tables["schools"].assign(
        school=tables["schools"]["school"].map("0{}".format)
    )
    records, message = _reconciled(messy)
    assert "1 as '01'" in message
    assert set(records.pupils["school"]) == set(messy["schools"]["school"])
    assert records.participation["school"].tolist()[:2] == ["01", "01"]


def test_consistent_ids_are_left_alone(tables):
    as_text = {
        name: frame.assign(school=frame["school"].map("{:06d}".format))
        for name, frame in tables.items()
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdsReconciledWarning)
        records = Records(**as_text)
    assert records.id_notes == ()
    assert records.pupils is as_text["pupils"]


def test_ambiguous_spellings_name_every_spelling(tables):
    messy = dict(tables)
    schools = tables["schools"].assign(school=tables["schools"]["school"].astype(str))
    messy["schools"] = pd.concat(
        [schools, schools.iloc[[0]].assign(school="01")], ignore_index=True
    )
    messy["pupils"] = tables["pupils"].assign(school=tables["pupils"]["school"].map("00{}".format))
    with pytest.raises(UnknownReferenceError, match=r"id '001' .*'1', '01'"):
        Records(**messy)


def test_ids_that_no_rule_matches_name_both_spellings(tables):
    messy = dict(tables)
    messy["participation"] = tables["participation"].assign(
        school=tables["participation"]["school"].map("S{}".format)
    )
    with pytest.raises(UnknownReferenceError, match=r"school='S1'.*spells school ids like 1, 2"):
        Records(**messy).validate()


def test_spaces_inside_one_table_reveal_duplicates(tables):
    pupils = tables["pupils"].assign(pupil=tables["pupils"]["pupil"].astype(str))
    pupils.loc[1, "pupil"] = f" {pupils.loc[0, 'pupil']} "
    messy = {**tables, "pupils": pupils}
    with pytest.warns(IdsReconciledWarning, match="surrounding spaces"):
        records = Records(**messy)
    with pytest.raises(DuplicateRowsError, match="rows 0, 1"):
        records.validate()


@pytest.mark.parametrize("blank", [np.nan, "", "  "])
def test_blank_ids_are_missing_not_duplicates(tables, blank):
    pupils = tables["pupils"].assign(pupil=tables["pupils"]["pupil"].astype(object))
    pupils.loc[[4, 5], "pupil"] = blank  # two blanks in one year would also "repeat"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IdsReconciledWarning)
        records = Records(**{**tables, "pupils": pupils})
    with pytest.raises(InvalidValueError, match=r"'pupil' of the pupils table has missing .*4, 5"):
        records.validate()


# ---------------------------------------------------------------------- CSV line numbers
def _write(tmp_path, tables):
    return Records(**tables).to_csv(tmp_path)


def test_csv_rows_are_numbered_by_their_line(tmp_path, tables):
    paths = _write(tmp_path, tables)
    lines = paths["pupils"].read_text().splitlines()
    fields = lines[6].split(",")  # line 7 of the file
    fields[5] = "inf"  # the outcome
    lines[6] = ",".join(fields)
    lines.insert(2, "")  # a blank line 3 moves every later record down by one
    paths["pupils"].write_text("\n".join(lines) + "\n")
    records = Records.from_csv(**paths, columns={"outcome": "outcome"})
    assert records.pupils.index[:3].tolist() == [2, 4, 5]
    with pytest.raises(InvalidValueError, match=r"'outcome' .*infinite values in CSV line 8 "):
        records.validate()


def test_csv_line_numbers_leave_the_results_unchanged(tmp_path, tables):
    records = Records.from_csv(**_write(tmp_path, tables))
    assert records.participation.index.tolist() == list(range(2, 2 + len(tables["participation"])))
    from_csv = CohortSpec().build(records)
    from_frames = CohortSpec().build(Records(**tables))
    pd.testing.assert_frame_equal(from_csv.pupils, from_frames.pupils)


def test_quoted_line_breaks_keep_the_line_numbers_right(tmp_path, tables):
    part = tables["participation"].astype({"strand": object})
    part.loc[0, "strand"] = "whole\nschool"
    paths = _write(tmp_path, {**tables, "participation": part})
    records = Records.from_csv(**paths)
    assert records.participation.index.tolist()[:3] == [2, 4, 5]


def test_csv_options_that_move_lines_keep_pandas_row_numbers(tmp_path, tables):
    paths = _write(tmp_path, tables)
    records = Records.from_csv(**paths, skiprows=[1])
    assert records.pupils.index[0] == 0
    assert records.pupils.index.name is None


def test_a_dict_of_tables_keeps_its_index_labels(tables):
    pupils = tables["pupils"].set_axis([f"p{i}" for i in range(len(tables["pupils"]))])
    pupils.loc["p7", "outcome"] = -np.inf
    with pytest.raises(InvalidValueError, match=r"row 'p7' \(-inf\)"):
        Records(**{**tables, "pupils": pupils}).validate()


def test_results_json_is_unchanged_by_reading_through_csv(tmp_path):
    records = city_partnership(seed=2, scale=0.1)
    records.to_csv(tmp_path)
    evaluation = Evaluation(estimator=DiD(), event_study=None, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        direct = evaluation.run(records).to_json_dict()
        via_csv = evaluation.run(
            Records.from_csv(**{name: tmp_path / f"{name}.csv" for name in NAMES})
        ).to_json_dict()
    for result in (direct, via_csv):
        result.pop("data_fingerprint")  # CSV stores strand and area as text, not categories
    assert json.dumps(direct, sort_keys=True) == json.dumps(via_csv, sort_keys=True)


def test_a_reversed_mapping_given_to_records_directly_is_recognised(tables):
    with pytest.raises(ColumnMappingError, match=r"Write columns=\{'school': 'URN'\}"):
        Records(**tables, columns={"URN": "school"})


def test_a_missing_dose_is_refused_only_when_min_dose_needs_it(tables):
    part = tables["participation"].set_axis(range(101, 101 + len(tables["participation"])))
    part.loc[103, "dose_hours"] = np.nan
    messy = {**tables, "participation": part}
    before = part.copy(deep=True)
    CohortSpec().build(Records(**messy))  # min_dose=0: the hours decide nothing
    records = Records.from_frames(**messy, columns={"dose_hours": "dose_hours"})
    with pytest.raises(InvalidValueError, match=r"min_dose=5 .*'dose_hours' .* row 103;"):
        CohortSpec(min_dose=5).build(records)
    pd.testing.assert_frame_equal(part, before)
