"""report.docx: read back with python-docx, it says what report.md says, suppression included.

The expected content is never computed by the Word renderer: it is parsed from ``report.md``
(a different renderer of the same blocks), so a cell, heading or note the Word file drops,
adds, reorders or recomputes fails here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import docx
import pandas as pd
import pytest
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Twips
from docx.table import Table as WordTable

from conftest import HOSTILE_COLUMN
from cpdimpact.evaluation import EvaluationResult
from cpdimpact.report import Document, Figure, Heading, Paragraph, Table
from cpdimpact.report.publish import evaluation_report, results_json

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """What ``make demo`` runs (examples/city_partnership.py), at a third of its size.

    The example builds and saves its result inside ``main``; the result is captured from
    ``EvaluationResult.save`` so the tests can render it again.
    """
    spec = importlib.util.spec_from_file_location(
        "city_partnership", EXAMPLES / "city_partnership.py"
    )
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    saved = []
    original = EvaluationResult.save

    def capture(self, folder):
        saved.append(self)
        return original(self, folder)

    out = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()):
        patch.setattr(EvaluationResult, "save", capture)
        with contextlib.redirect_stderr(io.StringIO()):
            assert example.main(["--out", str(out), "--scale", "0.3", "--seed", "5"]) == 0
    (result,) = saved
    paths = {name: out / name for name in ("report.md", "report.docx", "results.json")}
    return result, paths


@pytest.fixture(params=["demo", "hostile"])
def report(request):
    """(result, paths written by save) for the demo and for the hostile report."""
    return request.getfixturevalue(f"{request.param}_run")


# ---------------------------------------------------------------- report.md, parsed
def _unescape(text: str) -> str:
    """Markdown text without its backslash escapes (md_escape only ever adds them)."""
    return re.sub(r"\\(.)", r"\1", text)


def _md_row(line: str) -> list[str]:
    """The cells of a pipe-table row, splitting only on unescaped pipes."""
    assert line.startswith("| ") and line.endswith(" |"), line
    cells, current, chars = [], [], iter(line[2:-2])
    for char in chars:
        if char == "\\":
            current.append(next(chars))
        elif char == "|":
            cells.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    cells.append("".join(current).strip())
    return cells


_FIGURE_LINK = re.compile(r"^!\[((?:\\.|[^\\\]])*)\]\(figures/[A-Za-z0-9_-]+\.png\)$")


def _md_blocks(md: str) -> list[tuple]:
    """report.md as a sequence of (kind, content); every block is one blank-line chunk."""
    out: list[tuple] = []
    chunks = md.rstrip("\n").split("\n\n")
    for i, chunk in enumerate(chunks):
        if chunk == "---":  # the metadata list follows and ends the document
            (items,) = chunks[i + 1 :]
            out += [("meta", _unescape(line[2:])) for line in items.split("\n")]
            break
        heading = re.match(r"^(#{1,6}) (.*)$", chunk)
        if heading:
            out.append(("heading", len(heading.group(1)), _unescape(heading.group(2))))
        elif chunk.startswith("| "):
            lines = chunk.split("\n")
            align = [c.endswith(":") for c in _md_row(lines[1])]
            rows = [_md_row(line) for line in lines[:1] + lines[2:]]
            out.append(("table", rows, align))
        elif chunk.startswith("**") and chunk.endswith("**"):
            out.append(("caption", _unescape(chunk[2:-2])))
        elif chunk.startswith("*Note:* "):
            out.append(("note", _unescape(chunk[len("*Note:* ") :])))
        elif _FIGURE_LINK.match(chunk):
            out.append(("figure", _unescape(_FIGURE_LINK.match(chunk).group(1))))
        elif chunk.startswith("*") and chunk.endswith("*"):
            out.append(("figure caption", _unescape(chunk[1:-1])))
        else:
            out.append(("paragraph", _unescape(chunk)))
    return out


# ------------------------------------------------------------- report.docx, read back
def _docx_blocks(word) -> list[tuple]:
    """The Word body as the same (kind, content) sequence, from its paragraphs and tables."""
    out: list[tuple] = []
    items = list(word.iter_inner_content())
    for i, item in enumerate(items):
        if isinstance(item, WordTable):
            rows = [[cell.text for cell in row.cells] for row in item.rows]
            align = [p.alignment == WD_ALIGN_PARAGRAPH.RIGHT for p in _header_paragraphs(item)]
            out.append(("table", rows, align))
            continue
        style = item.style.name
        runs = item.runs
        if style.startswith("Heading "):
            out.append(("heading", int(style.split()[1]), item.text))
        elif style == "Caption":
            following = items[i + 1] if i + 1 < len(items) else None
            kind = "caption" if isinstance(following, WordTable) else "figure caption"
            out.append((kind, item.text))
        elif item._p.xpath(".//wp:docPr"):
            (properties,) = item._p.xpath(".//wp:docPr")
            out.append(("figure", properties.get("descr")))
        elif runs and runs[0].italic and runs[0].text == "Note: ":
            out.append(("note", item.text[len("Note: ") :]))
        elif runs and runs[0].bold:
            out.append(("meta", item.text))
        elif item.text:
            out.append(("paragraph", item.text))
    return out


def _header_paragraphs(table):
    return [cell.paragraphs[0] for cell in table.rows[0].cells]


def _read(path: Path):
    return docx.Document(str(path))


def _tables(blocks) -> list[list[list[str]]]:
    return [b[1] for b in blocks if b[0] == "table"]


# ------------------------------------------------------------------------------- tests
def test_docx_says_what_report_md_says(report):
    """Headings, paragraphs, captions, tables, notes and figures, in order (an evaluation
    report has no metadata footer: its appendix gives the version and fingerprint; the footer
    of a Document with metadata is checked below)."""
    _, paths = report
    md = _md_blocks(paths["report.md"].read_text(encoding="utf-8"))
    word = _docx_blocks(_read(paths["report.docx"]))
    assert [b[0] for b in word] == [b[0] for b in md]
    kinds = {kind for kind, *_ in md}
    everything = {"heading", "paragraph", "caption", "table", "note", "figure", "figure caption"}
    assert kinds == everything
    for ours, theirs in zip(word, md, strict=True):
        assert ours == theirs


def test_headings_in_the_same_order_as_report_md(report):
    _, paths = report
    md_blocks = _md_blocks(paths["report.md"].read_text(encoding="utf-8"))
    md = [(level, text) for kind, *rest in md_blocks if kind == "heading" for level, text in [rest]]
    word = _read(paths["report.docx"])
    headings = [
        (int(p.style.name.split()[1]), p.text)
        for p in word.paragraphs
        if p.style.name.startswith("Heading ")
    ]
    assert headings == md
    assert headings[0][0] == 1 and [h for h in headings if h[0] == 1] == headings[:1]
    assert any(text == "Headline findings" for _, text in headings)


def test_headline_table_cells_equal_report_md(report):
    result, paths = report
    md_text = paths["report.md"].read_text(encoding="utf-8")
    headline_md = md_text.split("## Headline findings", 1)[1]
    first_table = next(b for b in _md_blocks(headline_md.lstrip("\n")) if b[0] == "table")
    word = _read(paths["report.docx"])
    body = list(word.iter_inner_content())
    start = next(i for i, p in enumerate(body) if getattr(p, "text", None) == "Headline findings")
    table = next(t for t in body[start:] if isinstance(t, WordTable))
    cells = [[cell.text for cell in row.cells] for row in table.rows]
    assert cells == first_table[1]
    # The headline's rows are the result's groups, in the result's order.
    assert [row[0] for row in cells[1:]] == list(result.headline["group"])


def test_every_report_md_table_is_a_word_table(report):
    _, paths = report
    md_tables = _tables(_md_blocks(paths["report.md"].read_text(encoding="utf-8")))
    word = _read(paths["report.docx"])
    assert len(word.tables) == len(md_tables) >= 5
    for table, expected in zip(word.tables, md_tables, strict=True):
        assert [[c.text for c in row.cells] for row in table.rows] == expected
        header = table.rows[0]._tr
        assert header.trPr is not None and header.trPr.find(qn("w:tblHeader")) is not None
        assert all(row._tr.trPr.find(qn("w:tblHeader")) is None for row in table.rows[1:])


def test_numeric_columns_right_aligned_as_in_report_md(report):
    _, paths = report
    md_tables = [b for b in _md_blocks(paths["report.md"].read_text()) if b[0] == "table"]
    word = _read(paths["report.docx"])
    assert any(any(align) for _, _, align in md_tables)
    for table, (_, _, align) in zip(word.tables, md_tables, strict=True):
        for row in table.rows:
            right = [c.paragraphs[0].alignment == WD_ALIGN_PARAGRAPH.RIGHT for c in row.cells]
            assert right == align


def test_hostile_suppression_is_the_same_in_word(hostile_run):
    result, paths = hostile_run
    head = result.headline.set_index("group")
    label = f"{HOSTILE_COLUMN} = 1"
    n_small = int(head.loc[label, "pupils_treated"])
    assert 1 <= n_small < 10  # the raw result keeps the truth; no published file may
    word = _read(paths["report.docx"])
    rows = [[c.text for c in row.cells] for t in word.tables for row in t.rows]
    hostile_rows = [row for row in rows if row[0] == label]
    assert len(hostile_rows) >= 2  # the headline and the effect-by-group table
    for row in hostile_rows:
        assert row[2].startswith("<10; ")
        assert not any(re.search(rf"(?<![\d.]){n_small}(;|$)", cell) for cell in row[2:4])
    md_tables = _tables(_md_blocks(paths["report.md"].read_text(encoding="utf-8")))
    assert [row for t in md_tables for row in t if row[0] == label] == hostile_rows
    # Markup in the names is text, never markup: the title is the hostile string itself.
    assert word.paragraphs[0].text == result.evaluation.report.title


def test_figures_embedded_with_their_alt_text(report):
    result, paths = report
    document = result.report()
    assert len(document.figures) >= 3
    word = _read(paths["report.docx"])
    assert len(word.inline_shapes) == len(document.figures)
    descriptions = [p.get("descr") for p in word.element.body.xpath(".//wp:docPr")]
    assert descriptions == [" ".join(f.alt_text.split()) for f in document.figures]
    with zipfile.ZipFile(paths["report.docx"]) as archive:
        media = sorted(n for n in archive.namelist() if n.startswith("word/media/"))
        blobs = {archive.read(n) for n in media}
    folder = paths["report.md"].parent
    assert blobs == {(folder / f.path).read_bytes() for f in document.figures}


def test_page_is_a4_with_the_print_margins(report):
    _, paths = report
    (section,) = _read(paths["report.docx"]).sections
    # Word's A4 is 11906 x 16838 twips (1/1440 inch): 210 x 297 mm.
    assert (section.page_width, section.page_height) == (Twips(11906), Twips(16838))
    # The HTML's @page margin: 16mm 15mm 18mm (15 mm = 850 twips, 16 = 907, 18 = 1020).
    margins = (section.top_margin, section.right_margin, section.bottom_margin, section.left_margin)
    assert margins == (Twips(907), Twips(850), Twips(1020), Twips(850))


def test_docx_is_byte_identical_across_saves_and_clocks(report, tmp_path, monkeypatch):
    result, paths = report
    first = paths["report.docx"].read_bytes()
    # A year later by the clock: zip entries and document properties must not follow it.
    later = time.time() + 366 * 24 * 3600
    monkeypatch.setattr(time, "time", lambda: later)
    again = result.save(tmp_path)
    assert again["report.docx"].read_bytes() == first
    properties = _read(again["report.docx"]).core_properties
    assert properties.created == properties.modified == properties.last_printed
    assert properties.created.year == 1980
    assert (properties.author, properties.revision) == ("cpdimpact", 1)


def test_save_lists_report_docx_and_leaves_md_and_json_alone(report, tmp_path):
    """Writing the Word file changes neither report.md nor results.json."""
    result, paths = report
    assert {"report.docx", "report.html", "report.md", "results.json"} <= set(result.save(tmp_path))
    assert paths["report.md"].read_text(encoding="utf-8") == evaluation_report(result).to_markdown()
    assert paths["results.json"].read_text(encoding="utf-8") == results_json(result)
    for name in ("report.md", "results.json"):
        assert (tmp_path / name).read_bytes() == paths[name].read_bytes()


# ----------------------------------------------------------------- the document layer
def test_document_to_docx_escapes_nothing_and_keeps_every_block():
    frame = pd.DataFrame({"group": ["<b>All</b>", "FSM | x"], "n": [1200, "<10"]})
    png = _tiny_png()
    doc = Document(
        title="Title with <script> & \x01 control",
        blocks=(
            Heading("Level three", level=3),
            Paragraph("# not a heading\nsecond line"),
            Table(frame, caption="Counts", notes=("Counts below 10 are suppressed.",)),
            Figure(png, name="dot", caption="A dot", alt="One black dot"),
        ),
        metadata={"seed": 1, "cpdimpact": "0.1.0"},
    )
    data = doc.to_docx()
    assert data == doc.to_docx()
    word = docx.Document(io.BytesIO(data))
    assert _docx_blocks(word) == [
        ("heading", 1, "Title with <script> & \ufffd control"),
        ("heading", 3, "Level three"),
        ("paragraph", "# not a heading second line"),
        ("caption", "Counts"),
        ("table", [["group", "n"], ["<b>All</b>", "1200"], ["FSM | x", "<10"]], [False, True]),
        ("note", "Counts below 10 are suppressed."),
        ("figure", "One black dot"),
        ("figure caption", "A dot"),
        ("meta", "cpdimpact: 0.1.0"),
        ("meta", "seed: 1"),
    ]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert archive.read("word/media/image1.png") == png
        assert "docProps/thumbnail.jpeg" not in archive.namelist()


def _tiny_png() -> bytes:
    """A 2 x 2 grey PNG written by hand (no matplotlib needed)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x80\x80" * 2)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def test_importing_the_report_layer_does_not_load_python_docx():
    code = "import sys, cpdimpact.report; print('docx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
