"""Tests of the generic report document layer: rendering, determinism and privacy guards."""

from __future__ import annotations

import base64
import json

import matplotlib
import numpy as np
import pandas as pd
import pytest

from cpdimpact.errors import DataError, InvalidValueError, MissingColumnError
from cpdimpact.report import (
    MAX_TABLE_ROWS,
    Document,
    Figure,
    Heading,
    Paragraph,
    Table,
    suppress_small_counts,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_figure():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([2019, 2020, 2021, 2022], [0.0, 0.02, 0.11, 0.15], marker="o")
    ax.set_title("Event study")
    return fig


@pytest.fixture
def figure():
    fig = make_figure()
    yield fig
    plt.close(fig)


def tiny_document(fig=None) -> Document:
    frame = pd.DataFrame(
        {
            "group": ["All pupils", "FSM | disadvantaged"],
            "g": [0.1234, -0.00004],
            "n": [1200, 310],
            "months": pd.array([2, None], dtype="Int64"),
        }
    )
    blocks = [
        Heading("Headline results"),
        Paragraph("Pupils made *more*   progress\nthan expected."),
        Table(frame, caption="Effect sizes", notes=("FSM: free school meals.",)),
        Table(frame[["group", "g"]], formats={"g": "{:.2f}"}),
    ]
    if fig is not None:
        blocks.append(Figure(fig, name="event_study", caption="Effect by year"))
    return Document(
        title="City CPD evaluation",
        blocks=tuple(blocks),
        metadata={"seed": 7, "cpdimpact": "0.1.0", "sd": 6.5},
    )


# --- Markdown ------------------------------------------------------------------------------


def test_markdown_golden(figure):
    expected = (
        "# City CPD evaluation\n"
        "\n"
        "## Headline results\n"
        "\n"
        "Pupils made \\*more\\* progress than expected.\n"
        "\n"
        "**Effect sizes**\n"
        "\n"
        "| group | g | n | months |\n"
        "| --- | ---: | ---: | ---: |\n"
        "| All pupils | 0.123 | 1200 | 2 |\n"
        "| FSM \\| disadvantaged | 0.000 | 310 | \u2014 |\n"
        "\n"
        "*Note:* FSM: free school meals.\n"
        "\n"
        "| group | g |\n"
        "| --- | ---: |\n"
        "| All pupils | 0.12 |\n"
        "| FSM \\| disadvantaged | 0.00 |\n"
        "\n"
        "![Effect by year](figures/event_study.png)\n"
        "\n"
        "*Effect by year*\n"
        "\n"
        "---\n"
        "\n"
        "- cpdimpact: 0.1.0\n"
        "- sd: 6.5\n"
        "- seed: 7\n"
    )
    assert tiny_document(figure).to_markdown() == expected


def test_markdown_escapes_block_markers_and_inline_markup():
    doc = Document(
        title="T",
        blocks=(Paragraph("- not a list"), Paragraph("1. not a list"), Paragraph("a_b [c] <d>")),
    )
    text = doc.to_markdown()
    assert "\\- not a list" in text
    assert "1\\. not a list" in text
    assert "a\\_b \\[c\\] \\<d\\>" in text


# --- determinism ---------------------------------------------------------------------------


def test_rendering_is_deterministic(figure):
    first, second = tiny_document(figure), tiny_document(figure)
    assert first.to_markdown() == second.to_markdown()
    assert first.to_html() == second.to_html()
    assert json.dumps(first.to_json_dict()) == json.dumps(second.to_json_dict())


def test_png_bytes_identical_for_same_figure(figure):
    block = Figure(figure, name="a")
    once, twice = block.png(), block.png()
    assert once.startswith(PNG_SIGNATURE)
    assert once == twice
    assert b"matplotlib" not in once  # no Software text chunk
    other = make_figure()
    try:
        assert Figure(other, name="b").png() == once  # an identical figure built afresh
        assert Figure(other, name="b").svg() == block.svg()  # ids do not depend on the run
    finally:
        plt.close(other)


def test_metadata_order_does_not_matter():
    a = Document(title="T", metadata={"b": 1, "a": 2})
    b = Document(title="T", metadata={"a": 2, "b": 1})
    assert a.to_markdown() == b.to_markdown()
    assert a.to_html() == b.to_html()
    assert list(a.to_json_dict()["metadata"]) == ["a", "b"]


def test_default_number_formats():
    frame = pd.DataFrame(
        {
            "int": [1, 2],
            "float": [0.5, 1 / 3],
            "whole": [3.0, np.nan],
            "nullable": pd.array([4, None], dtype="Int64"),
            "flag": [True, False],
            "inf": [np.inf, 0.25],
        }
    )
    assert Table(frame).cells() == (
        ("1", "0.500", "3.000", "4", "yes", "inf"),
        ("2", "0.333", "\u2014", "\u2014", "no", "0.250"),
    )
    assert Table(frame, na_rep="").cells()[1][2] == ""
    assert Table(frame, formats={"float": ".1%"}).cells()[0][1] == "50.0%"


# --- HTML ----------------------------------------------------------------------------------


def test_html_is_self_contained(figure):
    page = tiny_document(figure).to_html()
    assert page.startswith("<!DOCTYPE html>")
    assert "<h1>City CPD evaluation</h1>" in page
    assert "http://" not in page and "https://" not in page
    assert 'src="figures' not in page
    assert "<script" not in page.lower()
    # figures as vector images (SVG), the same bytes on every call
    assert "data:image/svg+xml;base64," in page
    encoded = page.split("data:image/svg+xml;base64,", 1)[1].split('"', 1)[0]
    svg = base64.b64decode(encoded)
    assert svg == Figure(figure, name="x").svg() == Figure(figure, name="x").svg()
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg
    assert b"<text" not in svg and b"<dc:date>" not in svg  # text as paths, no date
    assert "<caption>Effect sizes</caption>" in page
    assert "<figcaption>Effect by year</figcaption>" in page
    assert "FSM | disadvantaged" in page


def test_html_escapes_text():
    doc = Document(
        title="<b>Title</b> & co",
        blocks=(Paragraph("<script>alert(1)</script>"), Heading("A < B", level=3)),
    )
    page = doc.to_html()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<h1>&lt;b&gt;Title&lt;/b&gt; &amp; co</h1>" in page
    assert "<h3>A &lt; B</h3>" in page


# --- JSON and files ------------------------------------------------------------------------


def test_json_dict_is_plain_data(figure):
    data = tiny_document(figure).to_json_dict()
    text = json.dumps(data, allow_nan=False)  # raises if NaN or inf slipped through
    assert json.loads(text) == data
    table = data["blocks"][2]
    assert table["type"] == "table"
    assert table["columns"] == ["group", "g", "n", "months"]
    assert table["rows"][1] == ["FSM | disadvantaged", -0.00004, 310, None]
    assert table["cells"][0] == ["All pupils", "0.123", "1200", "2"]
    assert data["blocks"][-1] == {
        "type": "figure",
        "name": "event_study",
        "caption": "Effect by year",
        "alt": "Effect by year",
        "path": "figures/event_study.png",
    }


def test_save_writes_files(tmp_path, figure):
    doc = tiny_document(figure)
    paths = doc.save(tmp_path / "out")
    assert sorted(paths) == [
        "figures/event_study.png",
        "report.docx",
        "report.html",
        "report.md",
    ]
    assert paths["report.md"].read_text(encoding="utf-8") == doc.to_markdown()
    assert paths["report.html"].read_text(encoding="utf-8") == doc.to_html()
    assert paths["figures/event_study.png"].read_bytes() == doc.figures[0].png()
    again = doc.save(tmp_path / "again", stem="summary")
    assert sorted(again) == [
        "figures/event_study.png",
        "summary.docx",
        "summary.html",
        "summary.md",
    ]
    assert again["summary.md"].read_bytes() == paths["report.md"].read_bytes()
    assert b"\r\n" not in again["summary.md"].read_bytes()


def test_figure_accepts_png_bytes_and_axes(figure):
    png = Figure(figure, name="f").png()
    assert Figure(png, name="g").png() == png
    assert Figure(figure.axes[0], name="h").png() == png
    with pytest.raises(InvalidValueError, match="not a PNG"):
        Figure(b"GIF89a", name="x")
    with pytest.raises(InvalidValueError, match="safe file name"):
        Figure(png, name="../escape")
    with pytest.raises(InvalidValueError, match="unique"):
        Document(title="T", blocks=(Figure(png, name="a"), Figure(png, name="a")))


def test_table_keeps_a_copy():
    frame = pd.DataFrame({"school": ["A"], "n": [12]})
    table = Table(frame)
    frame.loc[0, "n"] = 99
    assert table.cells() == (("A", "12"),)


# --- privacy -------------------------------------------------------------------------------


def test_suppression_replaces_small_counts_only():
    frame = pd.DataFrame({"school": ["A", "B", "C", "D", "E"], "n": [3, 10, 0, 9, 1]})
    before = frame.copy(deep=True)
    out = suppress_small_counts(frame, "n")
    pd.testing.assert_frame_equal(frame, before)
    assert out["n"].tolist() == ["<10", 10, 0, "<10", "<10"]
    assert out["school"].tolist() == before["school"].tolist()
    assert out is not frame


def test_suppression_options():
    frame = pd.DataFrame({"a": [0.0, 4.0, np.nan, 5.0], "b": [0, 2, 6, 5]})
    out = suppress_small_counts(frame, ["a", "b"], threshold=5, suppress_zero=True)
    assert out["a"].tolist()[:2] == ["<5", "<5"] and np.isnan(out["a"].iloc[2])
    assert out["a"].iloc[3] == 5 and isinstance(out["a"].iloc[3], int)
    assert out["b"].tolist() == ["<5", "<5", 6, 5]
    custom = suppress_small_counts(frame, "b", replacement="c")
    assert custom["b"].tolist() == [0, "c", "c", "c"]
    # Suppressed counts render through a Table with the marker intact.
    assert Table(out).cells()[0] == ("<5", "<5")


def test_suppression_rejects_non_counts():
    with pytest.raises(InvalidValueError, match="whole counts"):
        suppress_small_counts(pd.DataFrame({"n": [1.5, 2]}), "n")
    with pytest.raises(InvalidValueError, match="whole counts"):
        suppress_small_counts(pd.DataFrame({"n": [-1, 2]}), "n")
    with pytest.raises(MissingColumnError, match="nope"):
        suppress_small_counts(pd.DataFrame({"n": [1]}), "nope")


@pytest.mark.parametrize("column", ["pupil", "Pupil_ID", "UPN"])
def test_table_refuses_pupil_identifiers(column):
    with pytest.raises(DataError, match="pupil-level"):
        Table(pd.DataFrame({column: ["P1"], "outcome": [104.0]}))


def test_table_refuses_pupil_identifier_in_shown_index():
    frame = pd.DataFrame({"outcome": [104.0]}, index=pd.Index(["P1"], name="pupil"))
    Table(frame)  # index not shown
    with pytest.raises(DataError, match="pupil-level"):
        Table(frame, index=True)


def test_table_refuses_long_frames_unless_allowed():
    frame = pd.DataFrame({"school": range(MAX_TABLE_ROWS + 1), "n": 30})
    with pytest.raises(DataError, match="allow_large=True"):
        Table(frame)
    assert len(Table(frame, allow_large=True).cells()) == MAX_TABLE_ROWS + 1
    Table(frame.head(MAX_TABLE_ROWS))


def test_invalid_blocks():
    with pytest.raises(InvalidValueError, match="level"):
        Heading("x", level=1)
    with pytest.raises(InvalidValueError, match="formats"):
        Table(pd.DataFrame({"a": [1]}), formats={"b": "{:.2f}"})
    with pytest.raises(InvalidValueError, match="block 0"):
        Document(title="T", blocks=("text",))
    with pytest.raises(InvalidValueError, match="title"):
        Document(title=" ")
