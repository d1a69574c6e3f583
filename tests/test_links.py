"""Schools that change URN: links tables, their resolution to one id, and attrition by arm.

Real rows: the Hampshire KS2 performance tables in ``tests/reference/dfe/`` (2017/18 and
2018/19, see its README) publish two academy conversions whose academies appear under their
new URN the next year (Rowner Junior 116167 -> 146244 and Bordon Junior 115864 -> 146002,
both opened 1 September 2018). Expected values are read from the files with the ``csv``
module in the tests, or counted by hand from the frames built here.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_quietly
from cpdimpact import Evaluation, PublishedRecords, Records, dfe
from cpdimpact.cohort import CohortSpec
from cpdimpact.datasets import city_partnership
from cpdimpact.did import DiD
from cpdimpact.errors import CpdImpactWarning, DesignError, SchoolLinkError, SchoolMeansError
from cpdimpact.records import links_from_performance_tables
from cpdimpact.report.publish import results_json_dict
from cpdimpact.spec_file import load_spec_text

DFE = Path(__file__).parent / "reference" / "dfe"
KS2 = [DFE / "2017-2018_850_ks2final.csv", DFE / "2018-2019_850_ks2final.csv"]


def _published_conversions(path: Path) -> set[tuple[int, int, str]]:
    """(URN, URN_AC, OPEN_AC) of the school rows that report a conversion, read with csv."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {
        (int(r["URN"]), int(r["URN_AC"]), r["OPEN_AC"].strip())
        for r in rows
        if r["RECTYPE"] in ("1", "2") and r.get("URN_AC", "").strip() not in ("", "0")
    }


@pytest.fixture(scope="module")
def ks2():
    return dfe.read_performance_tables(
        KS2, columns=["SCHNAME", "MAT_AVERAGE", "TELIG", "URN_AC", "OPEN_AC"]
    )


def _school_figures(table) -> pd.DataFrame:
    """The published table's maths averages as school figures, with their pupils."""
    data = table.data
    return pd.DataFrame(
        {
            "school": data["URN"].astype("int64"),
            "year": data["year"],
            "outcome": data["MAT_AVERAGE"],
            "pupils": data["TELIG"],
        }
    )


def _school_years(table) -> pd.DataFrame:
    """The published table as one 'pupil' record per school and year (school-level data)."""
    data = table.data
    return pd.DataFrame(
        {
            "pupil": data["URN"].astype(str) + "-" + data["year"].astype(str),
            "school": data["URN"].astype("int64"),
            "year": data["year"],
            "outcome": data["MAT_AVERAGE"],
        }
    )


# ------------------------------------------------------------------- real DfE rows
def test_links_from_performance_tables_are_the_published_conversions(ks2):
    expected = set().union(*(_published_conversions(p) for p in KS2))
    links = links_from_performance_tables(ks2)
    got = {
        (int(p), int(s), d.strftime("%Y%m%d"))
        for p, s, d in links[["predecessor", "successor", "date"]].itertuples(index=False)
    }
    assert got == expected
    assert (116167, 146244, "20180901") in got and (115864, 146002, "20180901") in got
    assert list(links.columns) == ["predecessor", "successor", "date", "link_type"]
    assert set(links["link_type"]) == {"academy conversion"}
    # the frame of the table's rows gives the same links
    same = links_from_performance_tables(ks2.data)
    pd.testing.assert_frame_equal(same, links)


def test_a_converters_series_continues_under_its_latest_urn(ks2):
    pupils = _school_years(ks2)
    before = pupils.copy()
    participation = pd.DataFrame({"school": [116167], "start_year": [2019]})
    links = links_from_performance_tables(ks2)
    records = Records.from_frames(pupils=pupils, participation=participation, links=links)
    pd.testing.assert_frame_equal(pupils, before)  # the input is not modified
    rowner = records.pupils[records.pupils["school"] == 146244]
    assert sorted(rowner["year"]) == [2018, 2019]
    assert sorted(rowner["pupil"]) == ["116167-2018", "146244-2019"]
    assert not records.pupils["school"].isin([116167, 115864]).any()
    # the enrolment under the old URN follows the school
    assert records.participation["school"].tolist() == [146244]
    merges = records.merges.set_index("predecessor")
    assert merges.loc[116167, "analysed_as"] == 146244
    assert merges.loc[116167, "pupils"] == 1  # its 2018 row

    # School-year figures are not pupils (CohortSpec refuses them as pupils): the same rows as
    # published figures, with the same links, form the cohort.
    figures = PublishedRecords.from_frames(
        figures=_school_figures(ks2), participation=participation, links=links
    )
    cohort = CohortSpec(comparison="never_treated").build(figures)
    assert (
        "URN 116167 -> 146244 (academy conversion, 2018-09-01): 1 school-year figure re-labelled"
        in (cohort.flow.merge_lines())
    )
    treated = cohort.pupils[cohort.pupils["treated"]]
    assert sorted(treated["year"]) == [2018, 2019]  # a pre-year and a post-year: usable
    # the performance tables' own links are the default of from_performance_tables
    published = PublishedRecords.from_performance_tables(
        ks2, outcome="MAT_AVERAGE", participation=participation, groups=False
    )
    pd.testing.assert_frame_equal(published.links, links)


def test_without_the_links_the_converter_drops_out(ks2):
    participation = pd.DataFrame({"school": [146244], "start_year": [2019]})
    records = PublishedRecords.from_frames(
        figures=_school_figures(ks2), participation=participation
    )
    # the academy, enrolled under its new URN, has no record before its start
    with pytest.raises(DesignError, match="treated unit with no record before its start"):
        CohortSpec(comparison="never_treated").build(records)


def test_school_year_rows_given_as_pupils_are_refused(ks2):
    participation = pd.DataFrame({"school": [146244], "start_year": [2019]})
    records = Records.from_frames(pupils=_school_years(ks2), participation=participation)
    with pytest.raises(SchoolMeansError, match="PublishedRecords"):
        CohortSpec(comparison="never_treated").build(records)


# ------------------------------------------------------------- the property on tidy frames
OLD = {100003: 900003, 100002: 900002}  # a comparison school and a 2021 starter


def _split(records: Records, *, before: int = 2019):
    """The same schools as if each in OLD had converted in September ``before - 1``: records
    before ``before`` under the old URN, plus the old URN's own school and teacher rows."""
    pupils = records.pupils.copy()
    old_years = pupils["school"].isin(list(OLD)) & (pupils["year"] < before)
    pupils.loc[old_years, "school"] = pupils.loc[old_years, "school"].map(OLD)
    participation = records.participation.copy()
    enrolled = participation["school"].isin(list(OLD))
    participation.loc[enrolled, "school"] = participation.loc[enrolled, "school"].map(OLD)
    old_schools = records.schools[records.schools["school"].isin(list(OLD))].assign(
        school=lambda f: f["school"].map(OLD), size=1
    )
    schools = pd.concat([records.schools, old_schools], ignore_index=True)
    old_teachers = records.teachers[records.teachers["school"].isin(list(OLD))].assign(
        school=lambda f: f["school"].map(OLD), years_service=0
    )
    teachers = pd.concat([records.teachers, old_teachers], ignore_index=True)
    links = pd.DataFrame(
        {
            "predecessor": list(OLD.values()),
            "successor": list(OLD),
            "date": f"01/09/{before - 1}",
            "link_type": "academy conversion",
        }
    )
    tables = dict(pupils=pupils, participation=participation, schools=schools, teachers=teachers)
    return tables, links


@pytest.fixture(scope="module")
def city():
    return city_partnership(seed=3, scale=0.2)


def test_relabelling_by_links_equals_relabelling_by_hand(city):
    assert city.participation["school"].isin([100002]).any()  # the starter takes part
    assert not city.participation["school"].isin([100003]).any()
    tables, links = _split(city)
    linked = Records.from_frames(**tables, links=links)
    assert linked.fingerprint() == city.fingerprint()  # every table as if never split
    spec = CohortSpec(covariates=("prior",))
    by_hand, by_links = spec.build(city), spec.build(linked)
    pd.testing.assert_frame_equal(by_links.pupils, by_hand.pupils)
    pd.testing.assert_frame_equal(by_links.flow.stages, by_hand.flow.stages)
    pd.testing.assert_frame_equal(by_links.flow.exclusions, by_hand.flow.exclusions)
    teacher = CohortSpec(exposure="teacher", covariates=("prior",))
    pd.testing.assert_frame_equal(teacher.build(linked).pupils, teacher.build(city).pupils)
    evaluation = Evaluation(
        cohort=spec, estimator=DiD(), subgroups=(), gaps=(), prior_bands=0, seed=1
    )
    pd.testing.assert_frame_equal(
        run_quietly(evaluation, linked).headline, run_quietly(evaluation, city).headline
    )
    # the flow log lists the merges with the records re-labelled, counted here by hand
    moved = tables["pupils"]["school"].isin(list(OLD.values()))
    lines = by_links.flow.merge_lines()
    for old, new in OLD.items():
        n = int((tables["pupils"]["school"] == new).sum())
        assert n == int((moved & (tables["pupils"]["school"] == new)).sum()) > 0
        assert f"URN {new} -> {old} (academy conversion, 2018-09-01): {n} pupil records " in (
            lines[list(OLD).index(old)] + " "
        )
    assert by_links.flow.school_changes().iloc[0].to_dict() == {
        "change": "changed URN: analysed under its latest URN",
        "arm": "",
        "schools": 2,
        "pupils": int(moved.sum()),
    }


def test_schools_opening_and_closing_count_as_attrition_by_arm(city):
    tables, _ = _split(city)
    pupils = tables["pupils"]
    cohort = CohortSpec().build(Records.from_frames(**tables))  # no links
    attrition = cohort.flow.attrition.set_index(["arm", "change"])["schools"]
    # by hand: 900002 is enrolled (treated) and stops in 2018; 100002 and 100003 (comparison)
    # start in 2019; 900003 (comparison) stops in 2018. Every other school has every year.
    first, last = int(pupils["year"].min()), int(pupils["year"].max())
    spans = pupils.groupby("school")["year"].agg(["min", "max"])
    assert set(spans.index[spans["min"] > first]) == {100003, 100002}
    assert set(spans.index[spans["max"] < last]) == {900003, 900002}
    assert attrition[("treated", f"closed before {last} (no successor linked)")] == 1
    assert attrition[("treated", f"opened after {first} (no predecessor linked)")] == 0
    assert attrition[("comparison", f"opened after {first} (no predecessor linked)")] == 2
    assert attrition[("comparison", f"closed before {last} (no successor linked)")] == 1
    closed = cohort.flow.attrition.set_index(["arm", "change"])["pupils"]
    analysed = cohort.pupils
    assert closed[("treated", f"closed before {last} (no successor linked)")] == int(
        (analysed["school"] == 900002).sum()
    )
    notes = cohort.flow.summary().notes
    assert f"attrition: 2 comparison schools opened after {first} (no predecessor linked) (" in (
        " ".join(notes)
    )
    # with the links nothing opens or closes
    tables, links = _split(city)
    linked = CohortSpec().build(Records.from_frames(**tables, links=links))
    assert linked.flow.attrition["schools"].sum() == 0


def test_the_report_shows_merges_and_attrition(city):
    tables, links = _split(city)
    evaluation = Evaluation(estimator=DiD(), subgroups=(), gaps=(), prior_bands=0, seed=1)
    result = run_quietly(evaluation, Records.from_frames(**tables, links=links))
    text = result.report().to_markdown()
    changes = results_json_dict(result)["cohort"]["school_changes"]
    assert changes[0]["change"] == "changed URN: analysed under its latest URN"
    assert changes[0]["schools"] == "<10"  # 2 schools: suppressed like every count
    assert "Schools that changed URN, opened or closed inside the analysed years" in text
    assert "changed URN: analysed under its latest URN" in text
    plain = run_quietly(evaluation, city).report().to_markdown()
    assert "Schools that changed URN" not in plain  # nothing to say: no table


# ------------------------------------------------------------------- shapes and files
def _tiny():
    """School 116000 became 140123 in September 2017 and took part from 2018; 200 and 300
    never took part. Two pupils per school and year, 2016-2019 (rows 0-7: 116000/140123)."""
    schools = [116000] * 4 + [140123] * 4 + [200] * 8 + [300] * 8
    years = [2016, 2016, 2017, 2017, 2018, 2018, 2019, 2019] * 3
    pupils = pd.DataFrame(
        {
            "pupil": range(24),
            "school": schools,
            "year": years,
            "outcome": [100.0 + (i % 5) for i in range(24)],
        }
    )
    participation = pd.DataFrame({"school": [116000], "start_year": [2018]})
    return pupils, participation


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.replace("\n", "\r\n").encode(encoding))
    return path


def test_gias_links_download_is_read_from_both_ends(tmp_path):
    pupils, participation = _tiny()
    pupils.to_csv(tmp_path / "pupils.csv", index=False)
    participation.to_csv(tmp_path / "participation.csv", index=False)
    links = _write(
        tmp_path / "links.csv",
        "URN,LinkURN,LinkName,LinkType,LinkEstablishedDate\n"
        "116000,140123,Sandford Academy,Successor,01-09-2017\n"
        "140123,116000,Sandford Primary,Predecessor,01-09-2017\n"
        "200,300,Sixth Form,Sixth Form Centre Link,01-09-2015\n",
        encoding="cp1252",
    )
    for fmt in (None, "dfe"):
        records = Records.from_csv(
            pupils=tmp_path / "pupils.csv",
            participation=tmp_path / "participation.csv",
            links=links,
            format=fmt,
        )
        assert records.pupils["school"].tolist() == [140123] * 8 + [200] * 8 + [300] * 8
        assert records.links[["predecessor", "successor"]].values.tolist() == [[116000, 140123]]
        assert records.links.index.tolist() == [2]  # CSV line of the first listing
        lines = CohortSpec().build(records).flow.merge_lines()
        assert lines == ["URN 116000 -> 140123 (new URN, 2017-09-01): 4 pupil records re-labelled"]


def test_link_ids_are_reconciled_like_table_ids():
    pupils, participation = _tiny()
    pupils = pupils.assign(school=pupils["school"].map(lambda s: f"{s:07d}"))
    participation = participation.assign(school=["0116000"])
    links = pd.DataFrame({"predecessor": [116000], "successor": ["140123 "], "date": [""]})
    records = Records.from_frames(pupils=pupils, participation=participation, links=links)
    assert records.pupils["school"].tolist()[:8] == ["0140123"] * 8
    assert records.participation["school"].tolist() == ["0140123"]
    assert pd.isna(records.links["date"].iloc[0])


def test_chains_map_to_the_latest_urn_and_school_rows_collapse():
    pupils, participation = _tiny()
    pupils.loc[[6, 7], "school"] = 150000  # a second conversion (a trust move) in 2019
    schools = pd.DataFrame(
        {"school": [116000, 140123, 150000, 200, 300], "size": [10, 20, 30, 40, 50]}
    )
    links = pd.DataFrame(
        {
            "predecessor": [140123, 116000],
            "successor": [150000, 140123],
            "date": ["2018-09-01", "2017-09-01"],
        }
    )
    records = Records.from_frames(
        pupils=pupils, participation=participation, schools=schools, links=links
    )
    assert records.pupils["school"].tolist()[:8] == [150000] * 8
    assert records.schools.to_dict("list") == {"school": [150000, 200, 300], "size": [30, 40, 50]}
    lines = CohortSpec().build(records).flow.merge_lines()
    assert "URN 116000 -> 140123 (link, 2017-09-01); analysed as 150000: 4 pupil records" in (
        " ".join(lines)
    )


def test_area_codes_that_change_follow_the_same_rule():
    pupils, participation = _tiny()
    schools = pd.DataFrame({"school": [116000, 140123, 200, 300], "area": [837, 837, 836, 850]})
    # Bournemouth (837) and Poole (836) became Bournemouth, Christchurch and Poole (839)
    area_links = pd.DataFrame(
        {"predecessor": [837, 836], "successor": [839, 839], "date": ["01/04/2019"] * 2}
    )
    records = Records.from_frames(
        pupils=pupils, participation=participation, schools=schools, area_links=area_links
    )
    assert records.schools["area"].tolist() == [839, 839, 839, 850]
    assert "area 837 -> 839 (link, 2019-04-01): 2 schools (8 pupil records) re-labelled" in (
        CohortSpec().build(records).flow.merge_lines()
    )
    split = pd.DataFrame({"predecessor": [835, 835], "successor": [838, 839], "date": ""})
    with pytest.raises(SchoolLinkError, match="give each school its area"):
        Records.from_frames(
            pupils=pupils, participation=participation, schools=schools, area_links=split
        )


def test_spec_file_reads_links(tmp_path):
    pupils, participation = _tiny()
    pupils.to_csv(tmp_path / "pupils.csv", index=False)
    participation.to_csv(tmp_path / "participation.csv", index=False)
    _write(tmp_path / "links.csv", "predecessor,successor,date\n116000,140123,01/09/2017\n")
    spec = load_spec_text(
        '[data]\npupils = "pupils.csv"\nparticipation = "participation.csv"\n'
        'links = "links.csv"\nformat = "dfe"\n',
        base=tmp_path,
    )
    records = spec.load_records()
    assert records.participation["school"].tolist() == [140123]
    assert len(records.merges) == 1


def test_subset_keeps_the_merges_of_the_schools_kept():
    pupils, participation = _tiny()
    links = pd.DataFrame({"predecessor": [116000], "successor": [140123], "date": [""]})
    records = Records.from_frames(pupils=pupils, participation=participation, links=links)
    assert len(records.subset([140123]).merges) == 1
    assert len(records.subset([200]).merges) == 0


def test_markers_stay_aligned_when_school_rows_fold(tmp_path):
    pupils, participation = _tiny()
    pupils.to_csv(tmp_path / "pupils.csv", index=False)
    participation.to_csv(tmp_path / "participation.csv", index=False)
    _write(
        tmp_path / "schools.csv",
        "school,fsm_share\n116000,SUPP\n140123,20%\n200,SUPP\n300,10%\n",
    )
    _write(tmp_path / "links.csv", "predecessor,successor,date\n116000,140123,01/09/2017\n")
    records = Records.from_csv(
        pupils=tmp_path / "pupils.csv",
        participation=tmp_path / "participation.csv",
        schools=tmp_path / "schools.csv",
        links=tmp_path / "links.csv",
        format="dfe",
    )
    assert records.schools.index.tolist() == [3, 4, 5]  # CSV lines of the rows kept
    assert records.marked("schools", "fsm_share").tolist() == [None, "SUPP", None]
    assert records.markers["cells"].sum() == 1


# ------------------------------------------------------------------------- bad input
def _from_csv(tmp_path, links_text, **kwargs):
    pupils, participation = _tiny()
    pupils.to_csv(tmp_path / "pupils.csv", index=False)
    participation.to_csv(tmp_path / "participation.csv", index=False)
    path = _write(tmp_path / "links.csv", links_text)
    before = path.read_bytes()
    try:
        return Records.from_csv(
            pupils=tmp_path / "pupils.csv",
            participation=tmp_path / "participation.csv",
            links=path,
            **kwargs,
        )
    finally:
        assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "predecessor,successor,date\n116000,140123,01/09/2017\n140123,116000,01/09/2018\n",
            [
                "'links.csv'",
                "cycle",
                "116000 -> 140123 -> 116000",
                "'predecessor'",
                "CSV lines 2, 3",
                "Delete the link that runs backwards",
            ],
        ),
        (
            "predecessor,successor,date\n116000,116000,01/09/2017\n",
            ["'links.csv'", "to itself", "CSV line 2", "cycle"],
        ),
        (
            "predecessor,successor,date\n116000,140123,01/09/2017\n116000,140999,01/09/2017\n",
            [
                "'links.csv'",
                "splits school 116000",
                "140123 and 140999",
                "CSV lines 2, 3",
                "Keep the row of the successor that continues it",
            ],
        ),
        (
            "predecessor,successor,date\n200,140123,01/09/2017\n",
            [
                "'links.csv'",
                "joins URNs",
                "200 and 140123",
                "both have pupil records in 2018",
                "'predecessor'",
                "CSV line 2",
                "Delete the link",
            ],
        ),
        (
            "old,new,date\n116000,140123,01/09/2017\n",
            [
                "'links.csv'",
                "['old', 'new', 'date']",
                "'predecessor', 'successor' and 'date'",
                "'LinkURN'",
            ],
        ),
        (
            "predecessor,successor,date,notes\n116000,140123,01/09/2017,x\n",
            ["['notes'] are not link columns", "Rename or remove"],
        ),
        (
            "predecessor,successor,date\n116000,140123,31/02/2017\n200,300,Sept 2017\n",
            [
                "column 'date' of 'links.csv'",
                "'31/02/2017', 'Sept 2017'",
                "CSV lines 2, 3",
                "day first",
            ],
        ),
        (
            "predecessor,successor,date\n116000,,01/09/2017\n",
            ["column 'successor' of 'links.csv' is empty in CSV line 2"],
        ),
    ],
    ids=["cycle", "self", "split", "overlap", "shape", "unknown", "date", "empty"],
)
@pytest.mark.parametrize("fmt", [None, "dfe"])
def test_bad_links_name_file_column_values_rows_and_fix(tmp_path, text, words, fmt):
    with pytest.raises(SchoolLinkError) as caught:
        _from_csv(tmp_path, text, format=fmt)
    message = str(caught.value)
    for word in words:
        assert word in message, (word, message)


def test_overlap_in_frames_names_the_table_and_rows():
    pupils, participation = _tiny()
    pupils = pupils.set_axis(pd.Index(range(10, 34)))
    links = pd.DataFrame({"predecessor": [200], "successor": [116000], "date": [""]})
    with pytest.raises(SchoolLinkError) as caught:
        Records.from_frames(pupils=pupils, participation=participation, links=links)
    message = str(caught.value)
    assert "the links table" in message and "2016" in message
    assert "URN 200 in rows 18, 19" in message and "URN 116000 in rows 10, 11" in message


def test_an_amalgamation_with_one_tested_predecessor_is_allowed():
    # an infant school (no KS2 results) and a junior school become one primary
    pupils, participation = _tiny()
    links = pd.DataFrame(
        {
            "predecessor": [116000, 555],
            "successor": [140123, 140123],
            "date": ["2017-09-01"] * 2,
            "link_type": ["amalgamation"] * 2,
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", CpdImpactWarning)
        records = Records.from_frames(pupils=pupils, participation=participation, links=links)
    assert records.merges["pupils"].tolist() == [4, 0]
    assert np.array_equal(records.pupils["school"].unique(), [140123, 200, 300])
