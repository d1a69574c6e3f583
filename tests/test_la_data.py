"""Published figures at local-authority level: the LA rows of DfE's performance tables
(``PublishedTable.area_panel``), pupils aggregated as DfE publishes them
(``datasets.published_from_pupils``) and the simulated LA-by-year statistics
(``datasets.la_statistics``).

The real files are checked against their raw text read here with the csv module; simulated
figures against a pandas groupby of the pupils they come from, never against the code's own
output.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cpdimpact import Records, datasets, dfe
from cpdimpact.errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    InvalidValueError,
    MissingColumnError,
)

REF = Path(__file__).parent / "reference" / "dfe"
KS2 = sorted(REF.glob("*_ks2final.csv"))
KS4 = sorted(REF.glob("*_ks4final.csv"))
PERFORMANCE_MARKERS = ("SUPP", "NE", "NP", "LOWCOV", "NEW", "NA", " ", "")
# DfE's record type of the local-authority row: 3 in KS2 files (ks2_meta_2018-2019.csv), 4 in KS4.
LA_RECTYPE = {"ks2": "3", "ks4": "4"}
NOT_NUMERIC = {
    *("RECTYPE", "LEA", "ESTAB", "URN", "URN_AC", "OPEN_AC", "ICLOSE", "TAB15", "TAB1618"),
    *("ALPHAIND", "SCHNAME", "ADDRESS1", "ADDRESS2", "ADDRESS3", "TOWN", "PCODE", "TELNUM"),
    *("PCON_CODE", "PCON_NAME", "SCHNAME_AC", "NFTYPE", "RELDENOM", "AGERANGE", "CONFEXAM"),
    *("ADMPOL", "ADMPOL_2017", "ADMPOL_PT", "EGENDER"),
}


def raw_la_row(path: Path) -> tuple[dict[str, int], list[str]]:
    """The header (name -> position) and the local-authority row, by the csv module."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    stage = path.name.split("_")[-1][:3]
    (row,) = [r for r in rows[1:] if r[0].strip() == LA_RECTYPE[stage]]
    return {name: i for i, name in enumerate(header)}, row + [""] * (len(header) - len(row))


def _raw_figure(cell: str) -> float:
    return np.nan if cell in PERFORMANCE_MARKERS else float(cell.rstrip("%"))


# ------------------------------------------------------------- area panels of real files
@pytest.fixture(scope="module")
def stacked() -> dict[str, dfe.PublishedTable]:
    """Every KS2 file, and every KS4 file, read once into one table each."""
    return {"ks2": dfe.read_performance_tables(KS2), "ks4": dfe.read_performance_tables(KS4)}


@pytest.mark.parametrize(
    ("stage", "outcome", "count", "other", "other_count"),
    [
        ("ks2", "PTRWM_EXP", "TELIG", "PTRWM_EXP_NotFSM6CLA1A", "TNotFSM6CLA1A"),
        ("ks2", "READ_AVERAGE", "TELIG", "READ_AVERAGE_NotFSM6CLA1A", "TNotFSM6CLA1A"),
        ("ks2", "MAT_AVERAGE", "TELIG", "MAT_AVERAGE_NotFSM6CLA1A", "TNotFSM6CLA1A"),
        ("ks4", "ATT8SCR", "TPUP", "ATT8SCR_NFSM6CLA1A", "TNOTFSM6CLA1A"),
        ("ks4", "P8MEA", "TPUP", "P8MEA_NFSM6CLA1A", "TNOTFSM6CLA1A"),
    ],
)
def test_area_panel_gives_each_local_authority_figure_of_every_file(
    stacked, stage, outcome, count, other, other_count
):
    """Every real KS2 and KS4 file: one LA row per file and group, figures, counts and
    markers as the raw text has them; the England rows are not among them."""
    paths = KS2 if stage == "ks2" else KS4
    panel = stacked[stage].area_panel(outcome, groups=True)
    expected = []
    for path in paths:
        col, row = raw_la_row(path)
        for group, value, n in [
            ("all", outcome, count),
            ("disadvantaged", f"{outcome}_FSM6CLA1A", "TFSM6CLA1A"),
            ("not disadvantaged", other, other_count),
        ]:
            cell = row[col[value]]
            marker = cell if cell in PERFORMANCE_MARKERS else None
            expected.append(
                (int(row[col["LEA"]]), int(path.name[5:9]), group, _raw_figure(cell),
                 _raw_figure(row[col[n]]), marker)
            )  # fmt: skip
    assert list(panel.columns) == ["area", "year", "group", "outcome", "pupils", "marker", "reason"]
    want = pd.DataFrame(expected, columns=panel.columns[:-1])
    assert len(panel) == len(want) == 3 * len(paths)
    assert panel["area"].tolist() == want["area"].tolist()
    assert panel["year"].tolist() == want["year"].tolist()
    assert panel["group"].tolist() == want["group"].tolist()
    np.testing.assert_array_equal(panel["outcome"].to_numpy(), want["outcome"].to_numpy())
    np.testing.assert_array_equal(panel["pupils"].to_numpy(), want["pupils"].to_numpy())
    assert panel["marker"].fillna("-").tolist() == want["marker"].fillna("-").tolist()
    assert panel.loc[panel["outcome"].notna(), "reason"].isna().all()


@pytest.mark.parametrize("stage", ["ks2", "ks4"])
def test_area_panel_keeps_the_marker_of_every_missing_la_figure(stacked, stage):
    """Numeric columns of every file: where the LA cell holds a marker (a blank, ``NA``)
    the panel gives that marker and its reason; where it holds a number, that number; where a
    year's file has no such column, the reason says so."""
    paths = KS2 if stage == "ks2" else KS4
    table = stacked[stage]
    raw = [raw_la_row(path) for path in paths]
    names = sorted({n for col, _ in raw for n in col} - NOT_NUMERIC)
    assert len(names) > 300
    # every column with a marker in some file, and every 10th other column (for speed)
    marked = [n for n in names if any(n in c and r[c[n]] in PERFORMANCE_MARKERS for c, r in raw)]
    names = sorted(set(marked) | set(names[::10]))
    counts = {"marker": 0, "number": 0, "absent": 0}
    for name in names:
        panel = table.area_panel(name, pupils="LEA")
        assert len(panel) == len(paths), name
        for (col, row), (_, got) in zip(raw, panel.iterrows(), strict=True):
            if name not in col:
                assert np.isnan(got["outcome"]) and pd.isna(got["marker"]), name
                assert got["reason"] == "no such column in that year's file", name
                counts["absent"] += 1
            elif row[col[name]] in PERFORMANCE_MARKERS:
                assert np.isnan(got["outcome"]), name
                assert got["marker"] == row[col[name]], name
                assert got["reason"] == dfe.MARKERS[row[col[name]]], name
                counts["marker"] += 1
            else:
                assert got["outcome"] == _raw_figure(row[col[name]]), name
                assert pd.isna(got["marker"]) and pd.isna(got["reason"]), name
                counts["number"] += 1
    assert min(counts.values()) > 0, counts


def test_area_panel_leaves_out_the_england_rows(stacked):
    """KS2 files hold England twice (RECTYPE 4 all schools, 5 state-funded), KS4 files as 5 and
    7: none of them is an area."""
    for stage, paths, count in (("ks2", KS2, "TELIG"), ("ks4", KS4, "TPUP")):
        table = stacked[stage]
        panel = table.area_panel(count)
        assert len(panel) == len(paths) and panel["area"].notna().all()
        assert set(panel["area"]) == {int(p.name[10:13]) for p in paths}
        england = table.areas[table.areas["LEA"].isna()]
        assert len(england) == 2 * len(paths)
        assert sorted(set(england["RECTYPE"])) == ([4, 5] if stage == "ks2" else [5, 7])
        assert not panel["pupils"].isin(england[count]).any()


def test_area_panel_refuses_a_measure_no_file_has(stacked):
    with pytest.raises(MissingColumnError, match="'PTRWM_EPX'"):
        stacked["ks2"].area_panel("PTRWM_EPX")


# ------------------------------------------------------------ pupils published as DfE does
def _groupby_truth(pupils: pd.DataFrame, unit: str) -> pd.DataFrame:
    """Means and counts per unit, year and group by a plain pandas groupby."""
    whole = pupils.groupby([unit, "year"])["outcome"].agg(["mean", "count"]).assign(group="all")
    split = pupils.groupby([unit, "year", "fsm"])["outcome"].agg(["mean", "count"]).reset_index()
    split["group"] = np.where(split["fsm"] == 1, "disadvantaged", "not disadvantaged")
    out = pd.concat([whole.reset_index(), split.drop(columns="fsm")], ignore_index=True)
    return out.set_index([unit, "year", "group"]).sort_index()


def _expected_suppression(truth: pd.DataFrame, unit: str, threshold: int) -> pd.Series:
    """DfE's rule written out independently: cohort 1..threshold-1, or own group
    1..threshold-1, or the other group 0..threshold-1."""
    counts = truth["count"].unstack("group").fillna(0)
    small = (counts >= 1) & (counts < threshold)
    empty = (counts == 0) & (threshold > 0)
    cohort = small["all"]
    flags = {
        "all": cohort,
        "disadvantaged": cohort
        | small["disadvantaged"]
        | small["not disadvantaged"]
        | empty["not disadvantaged"],
        "not disadvantaged": cohort
        | small["not disadvantaged"]
        | small["disadvantaged"]
        | empty["disadvantaged"],
    }
    out = pd.DataFrame(flags).stack()
    out.index.names = [unit, "year", "group"]
    return out.reindex(truth.index)


@pytest.fixture(scope="module")
def city():
    return datasets.city_partnership(seed=1)


@pytest.mark.parametrize("threshold", [6, 11, 0])
def test_published_from_pupils_is_a_groupby_with_dfe_suppression(city, threshold):
    table = datasets.published_from_pupils(city, suppress_below=threshold)
    assert list(table.columns) == [
        *("school", "area", "year", "group", "outcome", "pupils", "marker", "reason")
    ]
    truth = _groupby_truth(city.pupils, "school")
    got = table.set_index(["school", "year", "group"]).sort_index()
    assert got.index.equals(truth.index)  # one row per school, year and group with pupils
    published = got["marker"].isna()
    np.testing.assert_allclose(got.loc[published, "outcome"], truth.loc[published, "mean"])
    assert got.loc[~published, "outcome"].isna().all()
    # counts are published except the split of a suppressed whole cohort (none here)
    np.testing.assert_array_equal(got["pupils"], truth["count"].astype(float))
    suppressed = _expected_suppression(truth, "school", threshold)
    assert (~published).to_numpy().tolist() == suppressed.to_numpy().tolist()
    if threshold:
        assert 0 < (~published).sum() < len(got) / 2  # the rule bites, on the groups only
        assert (got.loc[~published, "marker"] == "SUPP").all()
        assert (got.loc[~published, "reason"] == dfe.MARKERS["SUPP"]).all()
    else:
        assert published.all()
    areas = city.schools.set_index("school")["area"]
    assert (got.reset_index()["area"] == got.reset_index()["school"].map(areas)).all()


def test_published_from_pupils_by_area_and_without_groups(city):
    table = datasets.published_from_pupils(city, level="area", groups=False)
    pupils = city.pupils.assign(
        area=city.pupils["school"].map(city.schools.set_index("school")["area"])
    )
    truth = pupils.groupby(["area", "year"])["outcome"].agg(["mean", "count"])
    assert list(table.columns) == ["area", "year", "group", "outcome", "pupils", "marker", "reason"]
    assert (table["group"] == "all").all() and table["marker"].isna().all()
    np.testing.assert_allclose(table["outcome"], truth["mean"])
    np.testing.assert_array_equal(table["pupils"], truth["count"])


def test_published_from_pupils_suppresses_a_small_school_and_its_split_counts():
    pupils = pd.DataFrame(
        {
            "pupil": range(1, 15),
            "school": [1] * 4 + [2] * 10,
            "year": 2019,
            "outcome": [100.0, 102, 104, 106] + [100.0 + i for i in range(10)],
            "fsm": [1, 0, 0, 0] + [1] * 3 + [0] * 7,
        }
    )
    rec = Records(pupils=pupils, participation=pd.DataFrame({"school": [1], "start_year": [2020]}))
    before = rec.pupils.copy(deep=True)
    table = datasets.published_from_pupils(rec)
    pd.testing.assert_frame_equal(rec.pupils, before)  # inputs never modified
    one = table[table["school"] == 1].set_index("group")
    assert one["marker"].eq("SUPP").all() and one["outcome"].isna().all()
    assert one.loc["all", "pupils"] == 4 and one[["pupils"]].iloc[1:].isna().all().all()
    two = table[table["school"] == 2].set_index("group")
    assert two.loc["all", "outcome"] == pytest.approx(104.5) and pd.isna(two.loc["all", "marker"])
    # 3 disadvantaged pupils: their figure, and the 7 others' (all minus them), both suppressed
    assert two.loc[["disadvantaged", "not disadvantaged"], "marker"].eq("SUPP").all()
    assert two.loc["disadvantaged", "pupils"] == 3 and two.loc["not disadvantaged", "pupils"] == 7
    assert "area" not in table.columns  # no schools table: no area to give


def test_published_from_pupils_suppresses_the_other_group_of_an_empty_one():
    pupils = pd.DataFrame(
        {"pupil": range(1, 9), "school": 1, "year": 2019, "outcome": np.arange(8.0), "fsm": 0}
    )
    rec = Records(pupils=pupils, participation=pd.DataFrame({"school": [1], "start_year": [2020]}))
    table = datasets.published_from_pupils(rec)
    assert table["group"].tolist() == ["all", "not disadvantaged"]  # no disadvantaged row
    assert table["outcome"].iloc[0] == 3.5 and pd.isna(table["outcome"].iloc[1])
    assert table["marker"].fillna("-").tolist() == ["-", "SUPP"]
    assert table["pupils"].tolist() == [8, 8]
    nothing = datasets.published_from_pupils(rec, suppress_below=0)
    assert nothing["outcome"].tolist() == [3.5, 3.5] and nothing["marker"].isna().all()


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"level": "trust"}, InvalidArgumentError, "level must be one of"),
        ({"suppress_below": -1}, InvalidArgumentError, "suppress_below"),
        ({"suppress_below": 5.5}, ArgumentTypeError, "suppress_below"),
        ({"groups": "yes"}, ArgumentTypeError, "groups"),
    ],
)
def test_published_from_pupils_refuses_bad_options(city, options, error, match):
    with pytest.raises(error, match=match):
        datasets.published_from_pupils(city, **options)


def test_published_from_pupils_names_what_is_missing():
    pupils = pd.DataFrame({"pupil": [1], "school": [1], "year": [2019], "outcome": [100.0]})
    rec = Records(pupils=pupils, participation=pd.DataFrame({"school": [1], "start_year": [2020]}))
    with pytest.raises(MissingColumnError, match="no 'fsm' column"):
        datasets.published_from_pupils(rec)
    with pytest.raises(MissingColumnError, match="no 'area' column"):
        datasets.published_from_pupils(rec, level="area", groups=False)
    with pytest.raises(ArgumentTypeError, match="must be cpdimpact Records"):
        datasets.published_from_pupils(pupils)
    two = pd.DataFrame({"pupil": [1, 2], "school": [1, 2], "year": 2019, "outcome": 1.0})
    rec = Records(
        pupils=two,
        participation=pd.DataFrame({"school": [1], "start_year": [2020]}),
        schools=pd.DataFrame({"school": [1, 2], "area": ["North", None]}),
    )
    with pytest.raises(
        InvalidValueError, match=r"1 pupil records are in schools with no area .*2\b"
    ):
        datasets.published_from_pupils(rec, level="area", groups=False)
    assert len(datasets.published_from_pupils(rec, groups=False)) == 2  # by school: fine


@pytest.mark.parametrize(
    ("measure", "paths"),
    [("MAT_AVERAGE", KS2), ("READ_AVERAGE", KS2), ("PTRWM_EXP", KS2[-2:])],
    ids=["maths", "reading", "rwm-2019"],
)
def test_the_suppression_rule_is_the_one_dfe_applied_in_its_ks2_files(measure, paths):
    """Pupils made to the counts of every real KS2 school (TELIG, TFSM6CLA1A, TNotFSM6CLA1A),
    published with the default rule: each figure is SUPP exactly where DfE's file has SUPP,
    for the average scaled scores of every year and the percentage reaching the expected
    standard in 2019 (the 2017 and 2018 files published a group's percentage beside an empty
    other group)."""
    assert all("2018-2019" in p.name for p in paths) or measure != "PTRWM_EXP"
    rows, pupils = [], []
    for path in paths:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            lines = list(csv.reader(handle))
        col = {name: i for i, name in enumerate(lines[0])}
        for line in lines[1:]:
            line = line + [""] * (len(col) - len(line))
            if line[0] not in ("1", "2") or not line[col["TELIG"]].strip().isdigit():
                continue
            n, n_dis = int(line[col["TELIG"]]), line[col["TFSM6CLA1A"]]
            key = (int(line[col["URN"]]), int(path.name[5:9]))
            # a small cohort's split counts are SUPP: its pupils' split is unknown, so only
            # its whole-cohort figure is compared
            n_known = int(n_dis) if n_dis.isdigit() else 0
            pupils += [(*key, float(i < n_known)) for i in range(n)]
            names = [("all", measure)]
            if n_dis.isdigit():
                names += [
                    ("disadvantaged", f"{measure}_FSM6CLA1A"),
                    ("not disadvantaged", f"{measure}_NotFSM6CLA1A"),
                ]
            rows += [(*key, group, line[col[name]]) for group, name in names]
    frame = pd.DataFrame(pupils, columns=["school", "year", "fsm"])
    frame["pupil"] = np.arange(1, len(frame) + 1)
    frame["outcome"] = 100.0
    rec = Records(pupils=frame, participation=pd.DataFrame({"school": [], "start_year": []}))
    table = datasets.published_from_pupils(rec).set_index(["school", "year", "group"])
    real = pd.DataFrame(rows, columns=["school", "year", "group", "cell"])
    real = real.set_index(["school", "year", "group"])["cell"]
    shown = real[real.isin(["SUPP"]) | real.str.rstrip("%").str.fullmatch(r"\d+")]
    assert len(shown) > 500 * len(paths) and (shown == "SUPP").sum() > 100 * len(paths)
    got = table["marker"].reindex(shown.index).fillna("-")
    want = shown.where(shown == "SUPP", "-")
    assert got.index.equals(want.index) and (got == want).all(), pd.DataFrame(
        {"got": got, "want": want}
    )[got != want]


# ------------------------------------------------------ simulated LA-by-year statistics
COLUMNS = ["area", "year", "group", "outcome", "pupils", "marker", "reason"]


@pytest.fixture(scope="module")
def las():
    return datasets.la_statistics(seed=3, scale=0.05)


def test_la_statistics_cover_every_authority_and_year_with_tests(las):
    areas = las.areas
    assert len(areas) == 150 and areas["area"].is_unique and areas["area_name"].is_unique
    assert areas["region"].nunique() == 9 and areas["region_name"].nunique() == 9
    real = dfe.read_area_codes(REF / "la_and_region_codes_meta.csv")
    # fictitious: no real authority's code or name
    assert not areas["area"].isin(real["area"].astype("int64")).any()
    assert not areas["area_name"].isin(real["area_name"]).any()
    assert las.years == (2016, 2017, 2018, 2019, 2022, 2023, 2024)
    assert set(las.figures) == set(datasets.LA_MEASURES) == {
        "READ_AVERAGE", "MAT_AVERAGE", "PTRWM_EXP"
    }  # fmt: skip
    for table in las.figures.values():
        assert list(table.columns) == COLUMNS
        assert set(table["year"]) == set(las.years)  # no 2020 or 2021
        assert not table.duplicated(["area", "year", "group"]).any()
        whole = table[table["group"] == "all"]
        assert len(whole) == 150 * len(las.years)
        # the split adds up to the whole cohort
        counts = table.pivot_table(index=["area", "year"], columns="group", values="pupils")
        split = counts[["disadvantaged", "not disadvantaged"]].fillna(0).sum(axis=1)
        np.testing.assert_array_equal(split, counts["all"])


def test_la_statistics_suppress_small_groups_as_published_from_pupils_does(las):
    table = las.figures["MAT_AVERAGE"]
    counts = table.pivot_table(index=["area", "year"], columns="group", values="pupils")
    counts = counts.fillna(0)
    small = (counts >= 1) & (counts < 6)
    empty = counts == 0
    flags = pd.DataFrame(
        {
            "all": small["all"],
            "disadvantaged": small["disadvantaged"]
            | small["not disadvantaged"]
            | empty["not disadvantaged"],
            "not disadvantaged": small["not disadvantaged"]
            | small["disadvantaged"]
            | empty["disadvantaged"],
        }
    ).stack()
    got = table.set_index(["area", "year", "group"])["marker"].fillna("") == "SUPP"
    assert got.sum() > 0  # the two very small authorities
    assert got.to_numpy().tolist() == flags.reindex(got.index).to_numpy().tolist()
    assert table.loc[table["marker"].notna(), "outcome"].isna().all()
    assert (table.loc[table["marker"].notna(), "reason"] == dfe.MARKERS["SUPP"]).all()


def test_la_statistics_are_deterministic_given_the_seed(las):
    again = datasets.la_statistics(seed=3, scale=0.05)
    other = datasets.la_statistics(seed=4, scale=0.05)
    for m, table in las.figures.items():
        pd.testing.assert_frame_equal(table, again.figures[m])
        assert not table["outcome"].equals(other.figures[m]["outcome"])
    pd.testing.assert_frame_equal(las.areas, again.areas)
    pd.testing.assert_frame_equal(las.neighbours, again.neighbours)
    assert las.truth.treated_area == again.truth.treated_area


def test_la_statistics_programme_timing_follows_the_dfe_convention(las):
    start = dfe.first_affected_test_year("01/09/2019")
    assert start == 2020
    assert las.participation.to_dict("list") == {
        "area": [las.truth.treated_area],
        "start_year": [start],
    }
    assert las.truth.start_year == start and las.truth.first_published_year == 2022
    assert set(las.truth.effects["year"]) == {2022, 2023, 2024}


@pytest.mark.parametrize(("effect", "extra"), [(2.0, 0.0), (1.5, 1.0)])
def test_la_statistics_truth_is_the_difference_the_programme_makes(effect, extra):
    """The same seed with and without the programme: figures differ only in the treated
    authority's published post years, by the truth (exactly the points added for the
    average scaled scores; the realised change for the % reaching the standard)."""
    without = datasets.la_statistics(seed=5, scale=0.05, effect=0.0)
    with_ = datasets.la_statistics(
        seed=5, scale=0.05, effect=effect, effect_disadvantaged_extra=extra
    )
    truth = with_.truth
    assert truth.treated_area == without.truth.treated_area
    treated = truth.treated_area
    for m in datasets.LA_MEASURES:
        a = without.figures[m].set_index(["area", "year", "group"])
        b = with_.figures[m].set_index(["area", "year", "group"])
        assert a.index.equals(b.index)
        pd.testing.assert_series_equal(a["pupils"], b["pupils"])
        diff = (b["outcome"] - a["outcome"]).dropna()
        moved = diff.index.get_level_values("area") == treated
        moved &= diff.index.get_level_values("year") >= 2022
        assert (diff[~moved] == 0).all()
        want = truth.effects[truth.effects["measure"] == m].set_index(["year", "group"])["effect"]
        got = diff[moved].droplevel("area")
        np.testing.assert_allclose(got.sort_index(), want.reindex(got.index).sort_index())
        if m != "PTRWM_EXP":
            per_group = got.groupby(level="group").mean()
            assert per_group["not disadvantaged"] == pytest.approx(effect)
            assert per_group["disadvantaged"] == pytest.approx(effect + extra)
            pupils = b.loc[(treated, slice(2022, None), slice(None)), "pupils"]
            share = (
                pupils.xs("disadvantaged", level="group").sum()
                / pupils.xs("all", level="group").sum()
            )
            assert truth.att[m] == pytest.approx(effect + extra * share)
            assert truth.effect_size[m] == pytest.approx(truth.att[m] / truth.pupil_sd[m])
        else:
            assert 0 < truth.att[m] < 100 and m not in truth.effect_size


def test_la_statistics_pupil_sd_is_the_pupils_not_the_areas(las):
    """The stored pupil SD is near the DGP's 7 points; the SD of the areas' means is several
    times smaller, and is what a naive SD of the published figures would give."""
    for m in ("READ_AVERAGE", "MAT_AVERAGE"):
        assert 6.0 < las.truth.pupil_sd[m] < 8.0
        whole = las.figures[m][las.figures[m]["group"] == "all"]
        naive = whole.groupby("year")["outcome"].std().mean()
        assert las.truth.area_mean_sd[m] < las.truth.pupil_sd[m] / 2
        assert naive < las.truth.pupil_sd[m] / 2


def test_la_statistics_neighbours_are_the_ten_nearest(las):
    nb = las.neighbours
    assert list(nb.columns) == ["area", "rank", "neighbour", "distance"]
    assert len(nb) == 1500
    assert all(ranks == list(range(1, 11)) for ranks in nb.groupby("area")["rank"].apply(list))
    assert (nb["area"] != nb["neighbour"]).all()
    assert not nb.duplicated(["area", "neighbour"]).any()
    # recomputed here: standardised characteristics, Euclidean distance
    traits = las.areas[["disadvantaged_share", "prior_attainment", "urban"]].assign(
        cohort=np.log(las.areas["cohort"])
    )
    z = (traits - traits.mean()) / traits.std(ddof=0)
    d = np.sqrt(((z.to_numpy()[:, None] - z.to_numpy()[None]) ** 2).sum(axis=2))
    codes = las.areas["area"].to_numpy()
    for i in (0, 57, 149):
        order = [c for c in codes[np.argsort(d[i], kind="stable")] if c != codes[i]][:10]
        assert nb.loc[nb["area"] == codes[i], "neighbour"].tolist() == order
    assert nb.groupby("area")["distance"].apply(lambda s: s.is_monotonic_increasing).all()


def test_la_statistics_round_as_dfe_publishes_when_asked():
    table = datasets.la_statistics(seed=1, scale=0.02, decimals=0).figures["PTRWM_EXP"]
    shown = table["outcome"].dropna()
    assert (shown == shown.round(0)).all() and shown.between(0, 100).all()


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"treated": 201}, InvalidArgumentError, "treated must be one of"),
        ({"scale": 0}, InvalidArgumentError, "scale"),
        ({"suppress_below": -2}, InvalidArgumentError, "suppress_below"),
        ({"decimals": 0.5}, ArgumentTypeError, "decimals"),
        ({"effect": "1"}, ArgumentTypeError, "effect"),
    ],
)
def test_la_statistics_refuse_bad_options(options, error, match):
    with pytest.raises(error, match=match):
        datasets.la_statistics(**{"seed": 0, "scale": 0.02, **options})


@pytest.mark.slow
def test_la_statistics_a_did_of_the_published_means_recovers_the_effect():
    """Over 40 seeds, the treated authority's change (2022-24 against 2016-19) minus the
    others' pupil-weighted change is centred on the true effect: parallel trends hold."""
    errors = []
    for seed in range(40):
        stats = datasets.la_statistics(seed=seed, scale=0.1, effect=1.0)
        whole = stats.figures["MAT_AVERAGE"].query("group == 'all'")
        post = whole["year"] >= 2022
        treated = whole["area"] == stats.truth.treated_area

        def mean(rows):
            return np.average(rows["outcome"], weights=rows["pupils"])

        did = (mean(whole[treated & post]) - mean(whole[treated & ~post])) - (
            mean(whole[~treated & post]) - mean(whole[~treated & ~post])
        )
        errors.append(did - stats.truth.att["MAT_AVERAGE"])
    errors = np.asarray(errors)
    assert abs(errors.mean()) < 4 * errors.std(ddof=1) / np.sqrt(len(errors))
