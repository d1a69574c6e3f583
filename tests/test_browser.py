"""The report in a real browser: printed to PDF by headless Chromium, and on a 390 px phone.

Marked ``browser`` and left out of the default run (it needs Chromium and poppler's pdftotext,
from Debian: ``apt-get install chromium poppler-utils``); ``.ci/run`` installs them and runs
``make browser``. When they are missing the tests FAIL with the fix: a skipped browser check
must never let CI pass by accident.

How the page breaks are found: a copy of ``report.html`` carries a tiny white marker at the top
of every block of the report (heading, paragraph, table, figure) and at the bottom of every table
and figure, positioned absolutely so that they change no layout. Chromium prints the copy to an
A4 PDF; ``pdftotext -bbox-layout`` gives each marker's page and each word's position. A table or
figure is split when its two markers fall on different pages; a heading is last on its page when
the next block starts on a later one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

A4 = (595.28, 841.89)  # points
MARGIN_MM = (16, 15, 18, 15)  # top, right, bottom, left: the report's @page rule
MM = 72 / 25.4
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
BLOCK = re.compile(r'<(h[1-6]|p|figure|footer|div(?= class="table-wrap"))\b([^>]*)>')
MARK = '<span class="qq-mark" style="{where}:0">QQ{kind}{index}QQ</span>'
MARK_CSS = (
    "<style>main>*{position:relative}"
    ".qq-mark{position:absolute;left:0;font-size:3px;line-height:1;color:#fff}</style>"
)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} is not installed: the browser check needs Debian's chromium and "
            "poppler-utils (apt-get install -y chromium poppler-utils), which .ci/run installs."
        )
    return found


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    command = [_tool("chromium"), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


# ------------------------------------------------------------------------------ reports
@pytest.fixture(scope="module")
def reports(tmp_path_factory, hostile_run) -> dict[str, Path]:
    """The demo report (the flagship example, as ``make demo`` writes it), a staggered
    roll-out's report, and one with a tiny subgroup and hostile names."""
    from cpdimpact.datasets import hub_rollout
    from cpdimpact.evaluation import Evaluation

    root = tmp_path_factory.mktemp("reports")
    example = Path(__file__).parents[1] / "examples" / "city_partnership.py"
    demo = subprocess.run(
        [sys.executable, str(example), "--out", str(root / "demo")],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, MPLBACKEND="Agg"),
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        staggered = Evaluation(seed=3).run(hub_rollout(seed=2, scale=0.3))
    staggered.save(root / "staggered")
    _, hostile_paths = hostile_run
    return {
        "demo": root / "demo" / "report.html",
        "staggered": root / "staggered" / "report.html",
        "hostile": Path(hostile_paths["report.html"]),
    }


# ------------------------------------------------------------------------------ printing
def _marked_copy(html: str) -> tuple[str, list[str]]:
    """The report with a start marker in every block and an end marker in tables and figures;
    and the kind of each block, in order."""
    kinds: list[str] = []
    parts: list[str] = []
    last = 0
    for match in BLOCK.finditer(html):
        tag = match.group(1)
        index = len(kinds)
        kinds.append(tag)
        parts.append(html[last : match.end()])
        parts.append(MARK.format(where="top", kind="S", index=index))
        last = match.end()
    parts.append(html[last:])
    marked = "".join(parts)
    # end markers: before the closing tag of each table wrapper and figure, numbered in order
    ends = iter(i for i, kind in enumerate(kinds) if kind in ("div", "figure"))
    marked = re.sub(
        r"(</table>\n)(</div>)|(</figure>)",
        lambda m: (
            (m.group(1) or "")
            + MARK.format(where="bottom", kind="E", index=next(ends))
            + (m.group(2) or m.group(3))
        ),
        marked,
    )
    return marked.replace("</head>", MARK_CSS + "</head>", 1), kinds


def _words(pdf: Path) -> tuple[list[tuple[float, float]], list[tuple[int, float, float, str]]]:
    """Page sizes, and every word as (page, xMin, xMax, text)."""
    bbox = subprocess.run(
        [_tool("pdftotext"), "-bbox-layout", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pages, words = [], []
    for number, page in enumerate(re.split(r"<page ", bbox)[1:]):
        size = re.match(r'width="([\d.]+)" height="([\d.]+)"', page)
        pages.append((float(size.group(1)), float(size.group(2))))
        for x0, x1, text in re.findall(
            r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>',
            page,
        ):
            words.append((number, float(x0), float(x1), text))
    return pages, words


@pytest.fixture(scope="module")
def printed(reports, tmp_path_factory) -> dict[str, dict]:
    out = {}
    profile = tmp_path_factory.mktemp("chromium-profile")
    for name, html_path in reports.items():
        marked, kinds = _marked_copy(html_path.read_text(encoding="utf-8"))
        copy = html_path.with_name("report-marked.html")
        copy.write_text(marked, encoding="utf-8")
        pdf = html_path.with_name("report.pdf")
        _chromium("--no-pdf-header-footer", f"--print-to-pdf={pdf}", copy.as_uri(), profile=profile)
        pages, words = _words(pdf)
        marks = {}
        for page, _, _, text in words:
            found = re.fullmatch(r"QQ([SE])(\d+)QQ", text)
            if found:
                marks[(found.group(1), int(found.group(2)))] = page
        out[name] = {"pages": pages, "words": words, "marks": marks, "kinds": kinds}
    return out


NAMES = ["demo", "staggered", "hostile"]


@pytest.mark.parametrize("name", NAMES)
def test_every_page_is_a4(printed, name):
    pages = printed[name]["pages"]
    assert pages, "no pages printed"
    for width, height in pages:
        assert width == pytest.approx(A4[0], abs=1) and height == pytest.approx(A4[1], abs=1)


@pytest.mark.parametrize("name", NAMES)
def test_every_marker_was_printed(printed, name):
    """Guards the method: a marker lost (clipped, not rendered) would hide a split."""
    kinds, marks = printed[name]["kinds"], printed[name]["marks"]
    assert {("S", i) for i in range(len(kinds))} <= set(marks)
    ends = {("E", i) for i, kind in enumerate(kinds) if kind in ("div", "figure")}
    assert ends and ends <= set(marks)


@pytest.mark.parametrize("name", NAMES)
def test_nothing_is_wider_than_the_page(printed, name):
    """No word runs into the right or left margin (a table too wide for A4 would)."""
    _, right, _, left = (m * MM for m in MARGIN_MM)
    wide = [
        (page + 1, text)
        for page, x0, x1, text in printed[name]["words"]
        if x1 > A4[0] - right + 1 or x0 < left - 1
    ]
    assert not wide, f"words outside the printable width: {wide[:10]}"


@pytest.mark.parametrize("name", NAMES)
def test_no_table_or_figure_is_split_across_pages(printed, name):
    kinds, marks = printed[name]["kinds"], printed[name]["marks"]
    split = [
        (kind, marks[("S", i)] + 1, marks[("E", i)] + 1)
        for i, kind in enumerate(kinds)
        if kind in ("div", "figure") and marks[("S", i)] != marks[("E", i)]
    ]
    assert not split, f"split across pages (kind, first page, last page): {split}"


@pytest.mark.parametrize("name", NAMES)
def test_no_heading_is_last_on_its_page(printed, name):
    kinds, marks = printed[name]["kinds"], printed[name]["marks"]
    orphans = [
        (i, marks[("S", i)] + 1)
        for i, kind in enumerate(kinds[:-1])
        if kind in ("h2", "h3", "h4") and marks[("S", i + 1)] != marks[("S", i)]
    ]
    assert not orphans, f"headings left at the foot of a page (block, page): {orphans}"


@pytest.mark.parametrize("name", ["demo", "staggered"])
def test_the_headline_is_on_page_one(printed, reports, name):
    html = reports[name].read_text(encoding="utf-8")
    kinds, marks = printed[name]["kinds"], printed[name]["marks"]
    heading = [m.start() for m in BLOCK.finditer(html)].index(html.index("<h2>Headline findings"))
    table = next(i for i in range(heading, len(kinds)) if kinds[i] == "div")
    assert marks[("S", heading)] == 0 and marks[("E", table)] == 0


# ------------------------------------------------------------------------------ a phone
# The report is laid out in a 390 px wide frame (headless Chromium keeps its window at least
# 500 px wide), and measures itself: any element whose right edge passes the frame's width.
PHONE_SCRIPT = """<script>
const width = document.documentElement.clientWidth;
const wide = [...document.querySelectorAll('body, body *')]
  .filter(e => e.getBoundingClientRect().right > width + 0.5)
  .map(e => e.tagName + ': ' + (e.textContent || '').trim().slice(0, 60));
// text that overflows its box (a long unbreakable word) moves no element's edge
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const range = document.createRange();
  range.selectNodeContents(node);
  if (range.getBoundingClientRect().right > width + 0.5) {
    wide.push('text: ' + node.textContent.trim().slice(0, 60));
  }
}
const out = parent.document.createElement('pre');
out.id = 'qq-result';
out.textContent = JSON.stringify({width: width, scroll: document.documentElement.scrollWidth,
                                  wide: wide.slice(0, 20)});
parent.document.body.appendChild(out);
</script>"""
PHONE_HOST = '<!DOCTYPE html><html><body><iframe src="{src}" width="390" height="844"></iframe>'


@pytest.mark.parametrize("name", NAMES)
def test_on_a_390px_phone_nothing_runs_off_the_screen(reports, name, tmp_path):
    html = reports[name].read_text(encoding="utf-8")
    copy = tmp_path / "report-phone.html"
    copy.write_text(html.replace("</body>", PHONE_SCRIPT + "</body>", 1), encoding="utf-8")
    host = tmp_path / "phone.html"
    host.write_text(PHONE_HOST.format(src=copy.name), encoding="utf-8")
    dom = _chromium(
        "--allow-file-access-from-files",
        "--virtual-time-budget=5000",
        "--dump-dom",
        host.as_uri(),
        profile=tmp_path / "profile",
    ).stdout
    found = re.search(r'<pre id="qq-result">(.*?)</pre>', dom, re.S)
    assert found, "the measuring script did not run"
    measured = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert measured["width"] == 390
    assert measured["scroll"] <= measured["width"], measured["wide"]
    assert not measured["wide"], measured["wide"]


# ------------------------------------------------------------------------ accessibility
def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_text_colours_meet_wcag_aa_contrast():
    """Every text colour of the stylesheet against white and the header grey: at least 4.5:1
    (WCAG 2.2, success criterion 1.4.3)."""
    from cpdimpact.report._document import _CSS

    def full(colour: str) -> str:
        return "#" + "".join(c * 2 for c in colour[1:]) if len(colour) == 4 else colour

    colours = {full(c) for c in re.findall(r"(?<![-\w])color:(#[0-9a-fA-F]{3,6})", _CSS)}
    backgrounds = {"#ffffff", "#f2f2f2"}
    assert colours and "#f2f2f2" in _CSS
    for text in colours - {"#ffffff"}:
        for background in backgrounds:
            light, dark = sorted((_luminance(text), _luminance(background)), reverse=True)
            assert (light + 0.05) / (dark + 0.05) >= 4.5, (text, background)


@pytest.mark.parametrize("name", NAMES)
def test_rows_have_headers_and_figures_alt_text(reports, name):
    html = reports[name].read_text(encoding="utf-8")
    bodies = re.findall(r"<tbody>(.*?)</tbody>", html, re.S)
    assert bodies
    for body in bodies:
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
            assert row.startswith('<th scope="row"'), row[:80]
    alts = re.findall(r'<img [^>]*alt="([^"]*)"', html)
    assert alts and all(len(a.strip()) > 20 for a in alts)
    # each states the figure's finding, in numbers, not only its title
    assert all(re.search(r"\d\.\d|\d,\d{3}", a) for a in alts), alts


def _pdf_words(pdf: Path) -> list[str]:
    text = subprocess.run(
        [_tool("pdftotext"), str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    return text.split()


def test_the_demo_pdf_in_the_docs_is_todays_report(reports, tmp_path):
    """docs/_static/demo/report.pdf (written by docs/make_demo_assets.py) is the demo report
    as printed today: its words are those of the report printed now (line breaks aside)."""
    committed = Path(__file__).parents[1] / "docs" / "_static" / "demo" / "report.pdf"
    assert committed.is_file(), "run docs/make_demo_assets.py"
    fresh = tmp_path / "demo.pdf"
    _chromium(
        "--no-pdf-header-footer",
        f"--print-to-pdf={fresh}",
        reports["demo"].as_uri(),
        profile=tmp_path / "profile",
    )
    assert _pdf_words(committed) == _pdf_words(fresh), (
        "the demo report changed: rerun .venv/bin/python docs/make_demo_assets.py and commit "
        "docs/_static/demo/"
    )
