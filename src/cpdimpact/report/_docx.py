"""The Word rendering of a report document: real headings, tables and embedded figures.

The renderer reads the same blocks as the Markdown and HTML renderings and never recomputes a
number: table cells are :meth:`Table.cells`, so suppression markers such as ``"<10"`` appear
exactly as in ``report.md``. Built-in Word style names are used throughout (``Heading 1`` to
``Heading 6``, ``Caption``, ``Table Grid``) so that, pasted into a funder's template, the
report takes on the template's look.

A ``.docx`` file is a zip archive whose entries carry their write time, and whose core
properties carry creation and modification times; both are fixed here, so the same document
gives the same bytes on every run.
"""

from __future__ import annotations

import datetime as _dt
import io
import re
import zipfile
from collections.abc import Mapping

import docx
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.image.image import Image
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Emu, Mm, Pt

from ._blocks import Block, Figure, Heading, Paragraph, Table
from ._format import metadata_text, one_line

__all__ = ["FIXED_TIME", "render_docx"]

#: The creation, modification and last-printed time written into every ``.docx``: a fixed
#: value, so the file depends on the document alone (1980-01-01 is also the earliest time a
#: zip entry can carry).
FIXED_TIME = _dt.datetime(1980, 1, 1, tzinfo=_dt.UTC)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

# The HTML's print stylesheet: @page{size:A4;margin:16mm 15mm 18mm}, figures at most 100 mm
# tall, table text 8.5 pt, notes and captions smaller than body text.
_PAGE_WIDTH, _PAGE_HEIGHT = Mm(210), Mm(297)
_MARGIN_TOP, _MARGIN_SIDE, _MARGIN_BOTTOM = Mm(16), Mm(15), Mm(18)
_TEXT_WIDTH = _PAGE_WIDTH - 2 * _MARGIN_SIDE
_FIGURE_MAX_HEIGHT = Mm(100)
_TABLE_TEXT = Pt(8.5)
_NOTE_TEXT = Pt(9)
_HEADER_FILL = "F2F2F2"

# Characters XML 1.0 cannot hold (C0 controls other than tab/newline/return, lone surrogates,
# U+FFFE/U+FFFF); whitespace controls are already collapsed by one_line.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: object) -> str:
    """The one-line text the other renderings show, made storable in XML."""
    return _NOT_XML.sub("\ufffd", one_line(value))


def render_docx(
    title: str,
    blocks: tuple[Block, ...],
    metadata: Mapping[str, object],
    pngs: Mapping[str, bytes],
) -> bytes:
    """The report as the bytes of a Word (``.docx``) file.

    Parameters
    ----------
    title : str
        The report title, shown as the only ``Heading 1``.
    blocks : tuple of Heading, Paragraph, Table or Figure
        The content, in order.
    metadata : mapping
        Reproducibility facts, already sorted by key; shown as small paragraphs at the end.
    pngs : mapping of str to bytes
        Figure name -> PNG bytes, rendered once by the caller for every output.

    Returns
    -------
    bytes
        A ``.docx`` archive, byte-identical for the same arguments (given the same python-docx
        and zlib versions).
    """
    word = docx.Document()
    _page_setup(word)
    word.add_heading(_text(title), level=1)
    for block in blocks:
        if isinstance(block, Heading):
            word.add_heading(_text(block.text), level=block.level)
        elif isinstance(block, Paragraph):
            text = _text(block.text)
            if text:
                word.add_paragraph(text)
        elif isinstance(block, Table):
            _add_table(word, block)
        elif isinstance(block, Figure):
            _add_figure(word, block, pngs[block.name])
    if metadata:
        _add_metadata(word, metadata)
    _fix_core_properties(word, title)
    buffer = io.BytesIO()
    word.save(buffer)
    return _stable_zip(buffer.getvalue())


def _page_setup(word) -> None:
    for section in word.sections:
        section.page_width, section.page_height = _PAGE_WIDTH, _PAGE_HEIGHT
        section.top_margin, section.bottom_margin = _MARGIN_TOP, _MARGIN_BOTTOM
        section.left_margin = section.right_margin = _MARGIN_SIDE


def _small(paragraph, text: str, *, lead: str = "", italic_lead: bool = True) -> None:
    """A note-sized paragraph: an optional lead ("Note:") then the text."""
    if lead:
        run = paragraph.add_run(lead + " ")
        if italic_lead:
            run.italic = True
        else:
            run.bold = True
        run.font.size = _NOTE_TEXT
    paragraph.add_run(text).font.size = _NOTE_TEXT


def _keep_with_next(paragraphs) -> None:
    for paragraph in paragraphs:
        paragraph.paragraph_format.keep_with_next = True


def _row_property(row, tag: str) -> None:
    element = OxmlElement(tag)
    element.set(qn("w:val"), "true")
    row._tr.get_or_add_trPr().append(element)


def _shade(cell, fill: str) -> None:
    shading = OxmlElement("w:shd")
    shading.set(qn("w:val"), "clear")
    shading.set(qn("w:color"), "auto")
    shading.set(qn("w:fill"), fill)
    cell._tc.get_or_add_tcPr().append(shading)


def _fill_row(row, texts, numeric, *, header: bool) -> None:
    _row_property(row, "w:cantSplit")  # as tr{break-inside:avoid} in print
    if header:
        _row_property(row, "w:tblHeader")  # repeated at the top of every page the table spans
    for j, (cell, text) in enumerate(zip(row.cells, texts, strict=True)):
        paragraph = cell.paragraphs[0]
        run = paragraph.add_run(_text(text))
        run.font.size = _TABLE_TEXT
        if header or j == 0:  # bold as the HTML's <th>: the header row and each row's name
            run.bold = True
        if numeric[j]:
            paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        if header:
            _shade(cell, _HEADER_FILL)


def _add_table(word, table: Table) -> None:
    headers, numeric, rows = table.headers(), table.numeric(), table.cells()
    caption = None
    if table.caption.strip():
        caption = word.add_paragraph(_text(table.caption), style="Caption")
    if not headers:  # a table without columns: nothing to draw, as in the other outputs
        for note in table.notes:
            _small(word.add_paragraph(), _text(note), lead="Note:")
        return
    grid = word.add_table(rows=1, cols=len(headers))
    grid.style = word.styles["Table Grid"]
    grid.alignment = WD_TABLE_ALIGNMENT.LEFT
    _fill_row(grid.rows[0], headers, numeric, header=True)
    for cells in rows:
        _fill_row(grid.add_row(), cells, numeric, header=False)
    notes = [word.add_paragraph() for _ in table.notes]
    for paragraph, note in zip(notes, table.notes, strict=True):
        _small(paragraph, _text(note), lead="Note:")
    # As the print stylesheet: the caption kept with the table, the table kept together and
    # with its notes.
    all_rows = list(grid.rows)
    for i, row in enumerate(all_rows):
        if i < len(all_rows) - 1 or notes:
            _keep_with_next(p for cell in row.cells for p in cell.paragraphs)
    if caption is not None:
        _keep_with_next([caption])
    _keep_with_next(notes[:-1])


def _figure_size(image) -> tuple[int, int]:
    """Width and height in EMU: the image's own size, shrunk to the text width and 100 mm."""
    width, height = int(image.width), int(image.height)
    scale = min(1.0, _TEXT_WIDTH / width, _FIGURE_MAX_HEIGHT / height)
    return int(width * scale), int(height * scale)


def _add_figure(word, figure: Figure, png: bytes) -> None:
    width, height = _figure_size(Image.from_blob(png))
    paragraph = word.add_paragraph()
    run = paragraph.add_run()
    run.add_picture(io.BytesIO(png), width=Emu(width), height=Emu(height))
    alt = _text(figure.alt_text)
    for properties in run._r.xpath(".//wp:docPr | .//pic:cNvPr"):
        properties.set("descr", alt)  # Word's alternative text
        properties.set("name", figure.name)
    if figure.caption.strip():
        _keep_with_next([paragraph])
        word.add_paragraph(_text(figure.caption), style="Caption")


def _add_metadata(word, metadata: Mapping[str, object]) -> None:
    for key, value in metadata.items():
        paragraph = word.add_paragraph()
        paragraph.paragraph_format.space_after = Pt(0)
        _small(paragraph, _text(metadata_text(value)), lead=_text(key) + ":", italic_lead=False)


def _fix_core_properties(word, title: str) -> None:
    properties = word.core_properties
    properties.title = _text(title)
    properties.author = properties.last_modified_by = "cpdimpact"
    properties.created = properties.modified = properties.last_printed = FIXED_TIME
    properties.revision = 1
    properties.comments = ""  # the template says "generated by python-docx"
    # python-docx's template carries a thumbnail of another (blank) page; file browsers would
    # show it as this report's preview.
    rels = word.part.package.rels
    for key in [k for k, rel in rels.items() if rel.reltype == RELATIONSHIP_TYPE.THUMBNAIL]:
        rels.pop(key)


def _stable_zip(data: bytes) -> bytes:
    """The archive rewritten with a fixed time and file attributes on every entry."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target,
    ):
        for entry in source.infolist():
            fixed = zipfile.ZipInfo(entry.filename, date_time=_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.create_system = 0  # not the platform's default, which differs by OS
            fixed.external_attr = 0
            target.writestr(fixed, source.read(entry.filename))
    return out.getvalue()
