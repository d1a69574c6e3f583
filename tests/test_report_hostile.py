"""Hostile input: markup in user-supplied names and tiny subgroups never leak into a report."""

from __future__ import annotations

import json
import re
import warnings
from html.parser import HTMLParser

import matplotlib
import numpy as np
import pandas as pd

from conftest import ATTRIBUTE, HOSTILE, HOSTILE_COLUMN, SCRIPT
from cpdimpact.datasets import city_partnership
from cpdimpact.did import DiD
from cpdimpact.pipeline import Evaluation, ReportOptions
from cpdimpact.report import Document, Figure, Heading, Paragraph, Table, suppress_small_counts
from cpdimpact.report._figures import count_text, plot_flow_diagram, plot_forest, plot_text
from cpdimpact.report.evaluation import flow_figure_blocks, subgroup_figure_blocks

matplotlib.use("Agg")
import matplotlib.pyplot as plt


class _Tags(HTMLParser):
    """Every start tag and attribute name the browser would see."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.srcs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for name, value in attrs:
            self.attributes.add(name)
            if name == "src":
                self.srcs.append(value or "")


ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "main", "h1", "h2", "h3", "h4", "h5",
    "h6", "p", "em", "div", "table", "caption", "thead", "tbody", "tr", "th", "td", "figure",
    "img", "figcaption", "footer", "dl", "dt", "dd",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    *("lang", "charset", "name", "content", "scope", "class", "id", "src", "alt", "data-label")
}


def _assert_html_safe(html: str) -> None:
    """Only the renderer's own tags and attributes: no markup from the input got through."""
    parser = _Tags()
    parser.feed(html)
    parser.close()
    assert parser.tags <= ALLOWED_TAGS, parser.tags - ALLOWED_TAGS
    assert parser.attributes <= ALLOWED_ATTRIBUTES, parser.attributes - ALLOWED_ATTRIBUTES
    assert all(src.startswith("data:image/svg+xml;base64,") for src in parser.srcs)
    assert "<script" not in html.lower()


def _assert_markdown_safe(md: str) -> None:
    # Markdown passes raw HTML through: every "<" must be backslash-escaped.
    assert not re.search(r"(?<!\\)<", md)
    for line in md.splitlines():
        if line.startswith("|"):
            # Every pipe inside a cell is escaped: the row splits into exactly its columns.
            cells = re.split(r"(?<!\\)\|", line)[1:-1]
            assert len(cells) == len(re.split(r"(?<!\\)\|", md_first_table_row(md))[1:-1])
        assert not re.search(r"(?<!\\)`", line)  # no unescaped backtick opens a code span


def md_first_table_row(md: str) -> str:
    return next(line for line in md.splitlines() if line.startswith("|"))


# ------------------------------------------------------------------ the document layer
def test_document_escapes_hostile_names_in_every_block():
    frame = pd.DataFrame(
        {
            "school": HOSTILE,
            "area": list(reversed(HOSTILE)),
            "pupils": [3, 12, 0, 9, 250, 1, 10],
        }
    )
    frame = frame.rename(columns={"area": SCRIPT + " area | `x`"})
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_title(plot_text("Ysgol Bro Ŵyl école $x^2$ \\"))
    doc = Document(
        title=SCRIPT + " report",
        blocks=(
            Heading(ATTRIBUTE),
            Paragraph(HOSTILE[3]),
            Table(
                suppress_small_counts(frame, "pupils"),
                caption=HOSTILE[2],
                notes=(HOSTILE[6],),
            ),
            Figure(fig, name="hostile", caption=SCRIPT, alt=ATTRIBUTE),
        ),
        metadata={"programme": SCRIPT},
    )
    plt.close(fig)
    html, md = doc.to_html(), doc.to_markdown()
    _assert_html_safe(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Tom &amp; Jerry&#x27;s &lt;b&gt;Academy&lt;/b&gt;" in html
    assert "学校" in html and "Ŵyl" in html  # unicode passes through unharmed
    _assert_markdown_safe(md)
    table_rows = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table_rows) == 2 + len(frame)  # the newline in a cell did not break the table
    assert "\\`code\\`" in md and "pipe \\| cell" in md
    # Small counts are gone from every rendering of the table.
    rows = [r for r in table_rows[2:]]
    for row in rows:
        count = re.split(r"(?<!\\)\|", row)[-2].strip()
        assert count in {"<10", "\\<10", "0", "12", "250", "10"}
    json_table = doc.to_json_dict()["blocks"][2]
    published = [r[-1] for r in json_table["rows"]]
    assert published == ["<10", 12, 0, "<10", 250, "<10", 10]


def test_plot_text_makes_user_labels_safe_for_matplotlib():
    assert plot_text("£5 $ and $x$") == r"£5 \$ and \$x\$"
    fig, ax = plt.subplots()
    ax.set_title(plot_text("unbalanced $ sign \\ backslash"))
    fig.canvas.draw()  # mathtext would raise on an unbalanced "$"
    plt.close(fig)
    assert count_text(3, 10) == "<10" and count_text(0, 10) == "0"
    assert count_text(3, 0) == "3" and count_text(12345, 10) == "12,345"


def test_flow_diagram_suppresses_counts_and_draws_hostile_reasons():
    stages = pd.DataFrame(
        {
            "stage": ["available", "eligible", "assigned", "analysed", "analysed", "analysed"],
            "arm": ["all", "all", "all", "all", "treated", "comparison"],
            "schools": [12, 11, 11, 11, 4, 7],
            "teachers": [40, 35, 35, 35, 13, 22],
            "pupils": [900, 897, 897, 897, 403, 494],
        }
    )
    exclusions = pd.DataFrame(
        {
            "stage": ["eligible"],
            "reason": [SCRIPT + " $unbalanced"],
            "schools": [1],
            "teachers": [5],
            "pupils": [3],
        }
    )
    ax = plot_flow_diagram(stages, exclusions, threshold=10)
    ax.figure.canvas.draw()
    texts = [t.get_text() for t in ax.texts]
    plt.close(ax.figure)
    joined = "\n".join(texts)
    assert "Excluded: " + SCRIPT in joined.replace("\n", " ")
    count_lines = [line for line in joined.splitlines() if line.startswith("schools ")]
    assert len(count_lines) == 7  # four stages, one exclusion, two arms
    for line in count_lines:
        for number in re.findall(r"(?<![<\d,])\d[\d,]*", line):
            assert int(number.replace(",", "")) >= 10 or number == "0", line
    assert "schools <10" in joined and "pupil records 897" in joined
    assert sum("Analysed: " in t for t in texts) == 2


def test_forest_plot_lists_every_group_and_marks_the_unestimated():
    groups = pd.DataFrame(
        {
            "group": ["All pupils", "FSM pupils", SCRIPT + " = 1"],
            "effect_size": [0.1, 0.2, np.nan],
            "ci_lower": [0.0, -0.1, np.nan],
            "ci_upper": [0.2, 0.5, np.nan],
        }
    )
    ax = plot_forest(groups)
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    plt.close(ax.figure)
    assert labels == ["All pupils", "FSM pupils", SCRIPT + " = 1 (not estimated)"]
    assert len(ax.lines) >= 2


# ------------------------------------------------------------------ the whole evaluation
def _small_counts(result) -> set[int]:
    head = result.headline
    columns = ["pupils_treated", "pupils_comparison", "schools_treated", "schools_comparison"]
    return {int(v) for v in head[columns].to_numpy().ravel() if 1 <= v < 10}


def test_hostile_evaluation_renders_escaped(hostile_run):
    result, paths = hostile_run
    html = paths["report.html"].read_text(encoding="utf-8")
    md = paths["report.md"].read_text(encoding="utf-8")
    _assert_html_safe(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&quot;onmouseover=x" in html
    assert "\\<script\\>alert(1)\\</script\\>" in md
    assert not re.search(r"(?<!\\)<", md)
    for line in md.splitlines():
        assert not re.search(r"(?<!\\)`", line)
    assert "Headline findings" in md and "Flow of schools" in md  # the report still renders


def test_hostile_figures_render_with_suppressed_counts(hostile_run):
    result, _ = hostile_run
    forest = subgroup_figure_blocks(result)
    flow = flow_figure_blocks(result)
    assert [type(b).__name__ for b in forest] == ["Heading", "Figure", "Table", "Table"]
    assert [b.name for b in flow] == ["flow"]
    doc = Document(title="figures", blocks=(*forest, *flow))
    html = doc.to_html()
    _assert_html_safe(html)
    assert all(f.png().startswith(b"\x89PNG") for f in doc.figures)
    assert "counts from 1 to 9 are shown as <10" in flow[0].caption


def test_tiny_subgroup_counts_are_suppressed_everywhere(hostile_run):
    result, paths = hostile_run
    head = result.headline.set_index("group")
    label = f"{HOSTILE_COLUMN} = 1"
    n_small = int(head.loc[label, "pupils_treated"])
    assert 1 <= n_small < 10  # the raw result keeps the truth
    assert _small_counts(result)
    md = paths["report.md"].read_text(encoding="utf-8")
    html = paths["report.html"].read_text(encoding="utf-8")
    headline_md = md.split("## Design")[0]
    row = next(
        line for line in headline_md.splitlines() if line.startswith("|") and "onmouseover" in line
    )
    assert "\\<10; " in row and not re.search(rf"(?<![\d.]){n_small};", row)
    headline_html = html.split("<h2>Design</h2>")[0]
    assert "&lt;10; " in headline_html
    for cells in re.findall(r"<tr>(.*?)</tr>", headline_html):
        assert not re.search(r"<td[^>]*>[1-9]; ", cells)
        assert not re.search(r"; [1-9]</td>", cells)

    payload = json.loads(paths["results.json"].read_text(encoding="utf-8"))
    by_group = {row["group"]: row for row in payload["headline"]}
    assert by_group[label]["pupils_treated"] == "<10"
    for row in payload["headline"]:
        for key in ("pupils_treated", "pupils_comparison", "schools_treated", "schools_comparison"):
            value = row[key]
            assert value == "<10" or value == 0 or value >= 10
    for row in payload["subgroups"]["groups"]:
        for key in ("pupils_treated", "pupils_comparison", "schools_treated", "schools_comparison"):
            value = row[key]
            assert value == "<10" or value == 0 or value >= 10
    gap_labels = [g["label"] for g in payload["subgroups"]["gaps"]]
    assert gap_labels == ["FSM gap", f"{HOSTILE_COLUMN} gap"]
    group_md = md.split("**Effect by group**")[1].split("**Change in the attainment gap**")[0]
    row = next(line for line in group_md.splitlines() if "onmouseover" in line)
    assert "\\<10; " in row and not re.search(rf"(?<![\d.]){n_small};", row)
    for table in ("flow", "allocated", "exclusions", "balance", "balance_allocated"):
        for row in payload["cohort"][table]:
            for key, value in row.items():
                if key in {"schools", "teachers", "pupils", "n_treated", "n_comparison"}:
                    assert value == "<10" or value == 0 or value >= 10
    estimate = payload["estimates"][label]
    assert estimate is not None  # the tiny subgroup was estimated: its n_obs would disclose
    assert estimate["n_obs"] == "suppressed"  # n_obs minus the comparison arm gives the count
    assert isinstance(payload["estimates"]["All pupils"]["n_obs"], int)


def test_hostile_outputs_are_byte_identical(hostile_run, tmp_path):
    result, paths = hostile_run
    again = result.save(tmp_path)
    for name in ("results.json", "report.md"):
        assert again[name].read_bytes() == paths[name].read_bytes()


def test_suppression_threshold_follows_report_options(hostile_run, tmp_path):
    result, _ = hostile_run
    import dataclasses

    loose = dataclasses.replace(
        result, evaluation=dataclasses.replace(result.evaluation, report=ReportOptions())
    )
    strict = dataclasses.replace(
        result,
        evaluation=dataclasses.replace(
            result.evaluation, report=ReportOptions(suppress_below=5000)
        ),
    )
    off = dataclasses.replace(
        result,
        evaluation=dataclasses.replace(result.evaluation, report=ReportOptions(suppress_below=0)),
    )
    assert "<5000" in strict.report().to_markdown()
    # Attrition rates beside suppressed counts would give them back: not shown.
    hidden = dataclasses.replace(
        result,
        evaluation=dataclasses.replace(
            result.evaluation, report=ReportOptions(suppress_below=10**7)
        ),
    )
    attrition_md = hidden.report().to_markdown().split("### Attrition")[1].split("## Cost")[0]
    assert "suppressed" in attrition_md and "%" not in attrition_md
    assert hidden.to_json_dict()["cohort"]["attrition"]["pupils"]["overall"] == "suppressed"
    assert loose.to_json_dict()["cohort"]["attrition"]["pupils"]["overall"] == 0.0
    strict_json = strict.to_json_dict()
    assert all(row["pupils_comparison"] == "<5000" for row in strict_json["headline"][1:])
    assert loose.to_json_dict()["headline"][0]["pupils_treated"] >= 10
    label = f"{HOSTILE_COLUMN} = 1"
    off_head = {row["group"]: row for row in off.to_json_dict()["headline"]}
    assert 1 <= off_head[label]["pupils_treated"] < 10
    assert "Counts are not suppressed." in off.report().to_markdown()


def test_forest_plot_only_with_subgroups():
    records = city_partnership(seed=3, scale=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = Evaluation(
            estimator=DiD(), event_study=None, subgroups=(), gaps=(), prior_bands=0
        ).run(records)
    assert subgroup_figure_blocks(plain) == []
    assert [b.name for b in flow_figure_blocks(plain)] == ["flow"]
