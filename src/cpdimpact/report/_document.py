"""A report document and its renderings: Markdown, self-contained HTML, Word and JSON."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from ..errors import InvalidValueError
from ._blocks import BLOCK_TYPES, Block, Figure, Heading, Paragraph, Table, check_name
from ._format import json_value, md_escape, metadata_text, one_line

__all__ = ["Document"]

_CSS = """\
body{margin:0;background:#fff;color:#1b1b1b;line-height:1.5;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:52rem;margin:0 auto;padding:2rem 1.25rem 3rem}
p,li{overflow-wrap:break-word}
h1{font-size:1.9rem;line-height:1.25;margin:0 0 1.25rem}
h2{font-size:1.4rem;margin:2rem 0 .75rem}
h3,h4,h5,h6{margin:1.5rem 0 .5rem}
.table-wrap{overflow-x:auto;margin:1.25rem 0}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
caption{caption-side:top;text-align:left;font-weight:600;padding-bottom:.4rem}
th,td{border:1px solid #c4c4c4;padding:.3rem .65rem;vertical-align:top}
th{background:#f2f2f2;text-align:left}
.num{text-align:right}
p.note{font-size:.9rem;color:#444;margin:.3rem 0}
figure{margin:1.75rem 0}
figure img{max-width:100%;height:auto}
figcaption{font-size:.9rem;color:#444;margin-top:.4rem}
footer{margin-top:3rem;padding-top:1rem;border-top:1px solid #d6d6d6;font-size:.85rem;color:#555}
footer dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}
footer dt{font-weight:600}
footer dd{margin:0;overflow-wrap:anywhere}
tbody th{background:none;font-weight:600}
@media screen and (max-width:40rem){main{padding:1.25rem .75rem 2rem}h1{font-size:1.5rem}
.table-wrap table,.table-wrap tbody,.table-wrap tr,.table-wrap th,.table-wrap td{display:block}
.table-wrap thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
.table-wrap tr{border:1px solid #c4c4c4;margin:0 0 .6rem;padding:.3rem .5rem}
.table-wrap th,.table-wrap td{border:0;padding:.1rem 0;text-align:left}
.table-wrap td::before{content:attr(data-label) ": ";font-weight:600}
.table-wrap caption{display:block}}
@page{size:A4;margin:16mm 15mm 18mm}
@media print{
body{font-size:10pt;line-height:1.4}
main{max-width:none;padding:0}
h1,h2,h3,h4,h5,h6,caption{break-after:avoid}
h2{margin-top:1.25rem}
table,figure,.table-wrap,tr,p.note{break-inside:avoid}
p.note{break-before:avoid}
.table-wrap{overflow:visible;margin:.75rem 0}
table{width:100%}
th,td{overflow-wrap:break-word;hyphens:auto;padding:.15rem .35rem;font-size:8.5pt}
thead{display:table-header-group}
figure img{max-height:100mm;width:auto;max-width:100%}
footer{break-inside:avoid}
}
"""


def _esc(text: object) -> str:
    return html.escape(one_line(text), quote=True)


@dataclass(frozen=True)
class Document:
    """A publishable report: a title, a sequence of blocks and reproducibility metadata.

    Parameters
    ----------
    title : str
        The report title (the only level-1 heading).
    blocks : sequence of Heading, Paragraph, Table or Figure
        The content, in order.
    metadata : mapping, optional
        Facts that make the report reproducible (package version, data fingerprint, seed,
        specification). Keys are strings; values numbers, strings, booleans, None, or lists
        and mappings of them. Shown in a footer, sorted by key, and in :meth:`to_json_dict`.
        Never put timestamps or absolute paths here if identical output is wanted.

    Notes
    -----
    Every rendering is deterministic: the same blocks give byte-identical Markdown and
    HTML on every run and machine, and a byte-identical Word file on every run (its
    timestamps are fixed; see :meth:`to_docx`). Numbers are formatted by the rules of :class:`Table`;
    metadata is sorted by key; nothing depends on the clock, the locale or the file system.
    Matplotlib figures are rendered with fixed resolution and no PNG metadata, so the same
    figure gives the same bytes for the same matplotlib version and fonts.

    A report must never contain pupil-level rows: :class:`Table` refuses frames with pupil
    identifiers or more than :data:`~cpdimpact.report.MAX_TABLE_ROWS` rows, and counts should
    go through :func:`~cpdimpact.report.suppress_small_counts`.

    Examples
    --------
    >>> import pandas as pd
    >>> from cpdimpact.report import Document, Heading, Paragraph, Table
    >>> doc = Document(
    ...     title="Maths coaching: impact report",
    ...     blocks=(
    ...         Heading("Headline"),
    ...         Paragraph("Pupils in participating schools made 2 months' additional progress."),
    ...         Table(pd.DataFrame({"group": ["All"], "g": [0.12]}), caption="Effect size"),
    ...     ),
    ...     metadata={"cpdimpact": "0.1.0", "seed": 1},
    ... )
    >>> print(doc.to_markdown())
    # Maths coaching: impact report
    <BLANKLINE>
    ## Headline
    <BLANKLINE>
    Pupils in participating schools made 2 months' additional progress.
    <BLANKLINE>
    **Effect size**
    <BLANKLINE>
    | group | g |
    | --- | ---: |
    | All | 0.120 |
    <BLANKLINE>
    ---
    <BLANKLINE>
    - cpdimpact: 0.1.0
    - seed: 1
    <BLANKLINE>
    >>> "data:" in doc.to_html(), doc.to_html().startswith("<!DOCTYPE html>")
    (False, True)
    """

    title: str
    blocks: tuple[Block, ...] = ()
    metadata: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.title, str) or not self.title.strip():
            raise InvalidValueError("Document title must be a non-empty string.")
        blocks = (self.blocks,) if isinstance(self.blocks, BLOCK_TYPES) else tuple(self.blocks)
        for i, block in enumerate(blocks):
            if not isinstance(block, BLOCK_TYPES):
                raise InvalidValueError(
                    f"Document block {i} is a {type(block).__name__}; use Heading, Paragraph, "
                    f"Table or Figure."
                )
        names = [b.name for b in blocks if isinstance(b, Figure)]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise InvalidValueError(
                f"Figure names must be unique within a document (they become file names); "
                f"repeated: {repeated!r}."
            )
        if not isinstance(self.metadata, Mapping):
            raise InvalidValueError(f"metadata must be a mapping, got {self.metadata!r}.")
        bad_keys = [k for k in self.metadata if not isinstance(k, str)]
        if bad_keys:
            raise InvalidValueError(f"metadata keys must be strings, got {bad_keys!r}.")
        metadata = {k: json_value(self.metadata[k]) for k in sorted(self.metadata)}
        object.__setattr__(self, "blocks", blocks)
        object.__setattr__(self, "metadata", MappingProxyType(metadata))

    def extend(self, *blocks: Block) -> Document:
        """A new document with ``blocks`` appended."""
        return replace(self, blocks=self.blocks + blocks, metadata=dict(self.metadata))

    @property
    def figures(self) -> tuple[Figure, ...]:
        """The figure blocks, in order."""
        return tuple(b for b in self.blocks if isinstance(b, Figure))

    # -- Markdown ------------------------------------------------------------------------

    def to_markdown(self) -> str:
        """GitHub-flavoured Markdown, figures linked as ``figures/<name>.png``.

        Returns
        -------
        str
            Ends with a single newline. Byte-identical for the same blocks.
        """
        parts = [f"# {md_escape(self.title)}"]
        for block in self.blocks:
            parts.extend(_markdown_block(block))
        if self.metadata:
            parts.append("---")
            parts.append(
                "\n".join(
                    f"- {md_escape(k)}: {md_escape(metadata_text(v))}"
                    for k, v in self.metadata.items()
                )
            )
        return "\n\n".join(parts) + "\n"

    # -- HTML ----------------------------------------------------------------------------

    def to_html(self) -> str:
        """One self-contained HTML page: inline CSS, figures embedded as base64 SVG (vector,
        sharp in print; PNG for a figure given as PNG bytes).

        The page has no scripts and refers to no external file or address, so it can be
        e-mailed or opened inside a secure environment without network access.

        Returns
        -------
        str
        """
        return self._html(self._html_images())

    def _html_images(self) -> dict[str, tuple[str, bytes]]:
        """Each figure's image for the HTML page: ``(media type, bytes)``, SVG where the
        figure can be drawn as one."""
        images = {}
        for figure in self.figures:
            svg = figure.svg()
            images[figure.name] = ("image/svg+xml", svg) if svg else ("image/png", figure.png())
        return images

    def _html(self, images: Mapping[str, tuple[str, bytes]]) -> str:
        body = [f"<h1>{_esc(self.title)}</h1>"]
        for block in self.blocks:
            body.append(_html_block(block, images))
        if self.metadata:
            items = "\n".join(
                f"<dt>{_esc(k)}</dt><dd>{_esc(metadata_text(v))}</dd>"
                for k, v in self.metadata.items()
            )
            body.append(f"<footer>\n<dl>\n{items}\n</dl>\n</footer>")
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_esc(self.title)}</title>\n<style>\n{_CSS}</style>\n</head>\n"
            "<body>\n<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n"
        )

    # -- Word ----------------------------------------------------------------------------

    def to_docx(self) -> bytes:
        """The report as a Word document (``.docx``), to paste into a funder's template.

        The same blocks as the other renderings, with Word's built-in styles: the title as
        ``Heading 1`` and each heading as ``Heading <level>``; tables as Word tables (``Table
        Grid``) with the caption above (``Caption``), a header row repeated on every page,
        numeric columns right-aligned and the notes below in small text; figures embedded from
        the same PNG bytes with their alternative text and caption; the metadata last, in
        small text. A4 pages with the HTML's print margins (16 mm top, 15 mm sides, 18 mm
        bottom).

        Returns
        -------
        bytes
            The ``.docx`` file. Byte-identical for the same blocks on every run: its created,
            modified and last-printed times are fixed (1980-01-01), its author is
            ``cpdimpact`` and its revision 1, and the zip entries carry a fixed time.

        Notes
        -----
        Table cells are the text of :meth:`Table.cells`, exactly as in the Markdown and HTML,
        so suppressed counts stay suppressed; nothing is recomputed.
        """
        return self._docx({f.name: f.png() for f in self.figures})

    def _docx(self, pngs: Mapping[str, bytes]) -> bytes:
        # Imported when a Word file is wanted: python-docx and lxml take ~0.15 s to import, as
        # matplotlib is imported only when a figure is drawn.
        from ._docx import render_docx

        return render_docx(self.title, self.blocks, self.metadata, pngs)

    # -- JSON ----------------------------------------------------------------------------

    def to_json_dict(self) -> dict[str, object]:
        """The document as plain JSON-safe data.

        Returns
        -------
        dict
            ``{"title", "metadata", "blocks"}``; each block has a ``"type"`` (``heading``,
            ``paragraph``, ``table``, ``figure``). Tables carry ``columns``, ``cells`` (the
            formatted text) and ``rows`` (the values, JSON-safe: missing as ``None``,
            infinities as ``"inf"``); figures carry their relative ``path``, not the image.
        """
        return {
            "title": self.title,
            "metadata": dict(self.metadata),
            "blocks": [_json_block(b) for b in self.blocks],
        }

    # -- files ---------------------------------------------------------------------------

    def save(self, folder: str | Path, *, stem: str = "report") -> dict[str, Path]:
        """Write ``<stem>.html``, ``<stem>.md``, ``<stem>.docx`` and ``figures/<name>.png``.

        Parameters
        ----------
        folder : str or pathlib.Path
            Created if missing. Existing files of the same names are overwritten.
        stem : str, default "report"
            File stem of the HTML, Markdown and Word files.

        Returns
        -------
        dict of str to pathlib.Path
            Relative POSIX name (``"report.html"``, ``"report.md"``, ``"report.docx"``,
            ``"figures/<name>.png"``) to the path written.
        """
        check_name("stem", stem)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        pngs = {f.name: f.png() for f in self.figures}  # render once for every output
        written: dict[str, Path] = {}
        for relative, text in (
            (f"{stem}.html", self._html(self._html_images())),
            (f"{stem}.md", self.to_markdown()),
        ):
            path = folder / relative
            path.write_text(text, encoding="utf-8", newline="\n")
            written[relative] = path
        path = folder / f"{stem}.docx"
        path.write_bytes(self._docx(pngs))
        written[path.name] = path
        if pngs:
            (folder / "figures").mkdir(exist_ok=True)
        for figure in self.figures:
            path = folder / figure.path
            path.write_bytes(pngs[figure.name])
            written[figure.path] = path
        return written

    def _repr_html_(self) -> str:
        return self.to_html()


def _markdown_table(table: Table) -> str:
    def row(cells) -> str:
        return "| " + " | ".join(md_escape(c) for c in cells) + " |"

    align = ["---:" if numeric else "---" for numeric in table.numeric()]
    lines = [row(table.headers()), "| " + " | ".join(align) + " |"]
    lines += [row(cells) for cells in table.cells()]
    return "\n".join(lines)


def _markdown_block(block: Block) -> list[str]:
    if isinstance(block, Heading):
        return [f"{'#' * block.level} {md_escape(block.text)}"]
    if isinstance(block, Paragraph):
        text = md_escape(block.text, block_start=True)
        return [text] if text else []
    if isinstance(block, Table):
        parts = [f"**{md_escape(block.caption)}**"] if block.caption.strip() else []
        parts.append(_markdown_table(block))
        parts += [f"*Note:* {md_escape(note)}" for note in block.notes]
        return parts
    parts = [f"![{md_escape(block.alt_text)}]({block.path})"]
    if block.caption.strip():
        parts.append(f"*{md_escape(block.caption)}*")
    return parts


def _html_table(table: Table) -> str:
    numeric = table.numeric()

    def cls(j: int) -> str:
        return ' class="num"' if numeric[j] else ""

    headers = table.headers()
    head = "".join(f'<th scope="col"{cls(j)}>{_esc(h)}</th>' for j, h in enumerate(headers))

    def cell(j: int, text: str) -> str:
        # The first column names the row (a row header for screen readers); data-label lets a
        # narrow screen show each cell under its column's name instead of scrolling sideways.
        tag, scope = ("th", ' scope="row"') if j == 0 else ("td", "")
        return f'<{tag}{scope}{cls(j)} data-label="{_esc(headers[j])}">{_esc(text)}</{tag}>'

    rows = "\n".join(
        "<tr>" + "".join(cell(j, c) for j, c in enumerate(cells)) + "</tr>"
        for cells in table.cells()
    )
    caption = f"<caption>{_esc(table.caption)}</caption>\n" if table.caption.strip() else ""
    parts = [
        f'<div class="table-wrap">\n<table>\n{caption}<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{rows}\n</tbody>\n</table>\n</div>"
    ]
    parts += [f'<p class="note"><em>Note:</em> {_esc(note)}</p>' for note in table.notes]
    return "\n".join(parts)


def _html_block(block: Block, images: Mapping[str, tuple[str, bytes]]) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{_esc(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f"<p>{_esc(block.text)}</p>"
    if isinstance(block, Table):
        return _html_table(block)
    media, image = images[block.name]
    data = base64.b64encode(image).decode("ascii")
    caption = f"\n<figcaption>{_esc(block.caption)}</figcaption>" if block.caption.strip() else ""
    return (
        f'<figure id="figure-{block.name}">\n'
        f'<img src="data:{media};base64,{data}" alt="{_esc(block.alt_text)}">{caption}\n'
        f"</figure>"
    )


def _json_block(block: Block) -> dict[str, object]:
    if isinstance(block, Heading):
        return {"type": "heading", "text": block.text, "level": block.level}
    if isinstance(block, Paragraph):
        return {"type": "paragraph", "text": block.text}
    if isinstance(block, Table):
        return {
            "type": "table",
            "caption": block.caption,
            "notes": list(block.notes),
            "columns": list(block.headers()),
            "cells": [list(r) for r in block.cells()],
            "rows": [[json_value(v) for v in r] for r in block.frame.itertuples(index=False)],
        }
    return {
        "type": "figure",
        "name": block.name,
        "caption": block.caption,
        "alt": block.alt_text,
        "path": block.path,
    }
