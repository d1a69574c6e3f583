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

from cpdimpact import dfe
from cpdimpact.errors import MissingColumnError

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
