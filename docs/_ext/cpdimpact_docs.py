"""Local Sphinx extension for the cpdimpact docs: the examples gallery and the exports table.

The gallery has one page per file in ``examples/`` (``*.py`` and ``*.toml``): its module
docstring (or, for a TOML spec, its leading comment block) as prose, the figures it draws, then
the file itself via ``literalinclude``. The pages are written into ``docs/gallery/`` when the
builder starts, so a new example appears without anyone writing a page. Docstrings are read
with :func:`ast.get_docstring`; at a docs build each example is also run, as its page says to
run it (with ``--out`` a folder of the build), and the figures it writes are shown on its page
(:func:`run_examples`; ``CPDIMPACT_DOCS_RUN_EXAMPLES=0`` skips it for a quick local build). An
example that fails fails the build.

``write_gallery`` is importable without Sphinx so that ``tests/test_docs.py`` can check the
gallery without building the site.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
EXAMPLES = ROOT / "examples"
GALLERY = DOCS / "gallery"
GALLERY_SUFFIXES = {".py": "python", ".toml": "toml"}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`])")
RUN_COMMANDS = {".py": "python examples/{name}", ".toml": "cpdimpact run examples/{name}"}


@dataclass(frozen=True)
class Example:
    """One example file: its path, title and prose."""

    path: Path
    title: str
    prose: str

    @property
    def page(self) -> str:
        """Name of the generated page (without ``.md``)."""
        return self.path.name.replace(".", "_")


def gallery_sources(examples: Path = EXAMPLES) -> list[Path]:
    """Return the example files that get a gallery page, sorted by name."""
    return sorted(p for p in examples.iterdir() if p.is_file() and p.suffix in GALLERY_SUFFIXES)


def _leading_comments(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if line.startswith("#"):
            lines.append(line[1:].removeprefix(" "))
        elif not line.strip():
            lines.append("")
        else:
            break
    return "\n".join(lines).strip()


def read_example(path: Path) -> Example:
    """Read an example's title and prose without running it."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        doc = ast.get_docstring(ast.parse(text, filename=str(path))) or ""
    else:
        doc = _leading_comments(text)
    doc = doc.strip()
    if not doc:
        return Example(path, path.name, "")
    first, _, rest = doc.partition("\n\n")
    # The title is the first sentence; the rest of the first paragraph opens the prose.
    title, *more = _SENTENCE_END.split(" ".join(first.split()), maxsplit=1)
    prose = "\n\n".join(part for part in (*more, rest.strip()) if part)
    return Example(path, title.rstrip("."), prose)


_DOCS_PAGE = re.compile(r"(?<![\w/`\[])docs/(\w+)\.md\b")


def docstring_to_markdown(text: str, docs: Path = DOCS) -> str:
    """Turn docstring prose into MyST Markdown.

    Paragraphs indented by four spaces (commands in the docstrings) become fenced ``console``
    blocks, which also ends any list before them; reST double backquotes are already Markdown
    code spans. A mention of ``docs/<page>.md`` becomes a link when that page exists.
    """

    def link(match: re.Match) -> str:
        page = match.group(1)
        return f"[{match.group(0)}](../{page}.md)" if (docs / f"{page}.md").exists() else match[0]

    out = []
    for block in text.split("\n\n"):
        lines = block.splitlines()
        if lines and all(line.startswith("    ") or not line.strip() for line in lines):
            body = "\n".join(line[4:] for line in lines)
            out.append(f"```console\n{body}\n```")
        else:
            out.append(_DOCS_PAGE.sub(link, block))
    return "\n\n".join(out)


#: Where an example's figures are copied for its page, under the gallery folder.
FIGURES = "_figures"


def _command(path: Path, out: Path) -> list[str]:
    """How the page says to run an example, with its output sent to ``out``."""
    if path.suffix == ".py":
        return [sys.executable, str(path), "--out", str(out)]
    return [sys.executable, "-m", "cpdimpact.cli", "run", str(path), "--out", str(out)]


def run_examples(examples: list[Path], out: Path, *, workers: int = 2) -> dict[str, list[Path]]:
    """Run each example with its output in ``out/<page>`` and copy the figures it wrote to
    ``out/<page>/`` as the page shows them; returns page -> figures (PNG, sorted by name).

    Raises ``RuntimeError`` with the example's error output when one fails.
    """

    def run(path: Path) -> tuple[str, list[Path]]:
        page = path.name.replace(".", "_")
        target = out / page
        shutil.rmtree(target, ignore_errors=True)
        work = out / f"{page}.run"
        shutil.rmtree(work, ignore_errors=True)
        env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
        done = subprocess.run(
            _command(path, work), cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
        )
        if done.returncode != 0:
            raise RuntimeError(f"examples/{path.name} failed:\n{done.stderr[-3000:]}")
        target.mkdir(parents=True)
        figures = []
        for png in sorted(work.rglob("*.png"), key=lambda p: p.name):
            copy = target / png.name
            if not copy.exists():  # one figure per name
                shutil.copyfile(png, copy)
                figures.append(copy)
        shutil.rmtree(work, ignore_errors=True)
        return page, figures

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(run, examples))


def _figure_words(name: str) -> str:
    return name.removesuffix(".png").replace("_", " ")


def example_page(example: Example, figures: list[Path] | None = None) -> str:
    """The Markdown source of one gallery page (with ``figures``: the images it drew, as
    copied by :func:`run_examples`)."""
    name = example.path.name
    language = GALLERY_SUFFIXES[example.path.suffix]
    run = RUN_COMMANDS[example.path.suffix].format(name=name)
    parts = [
        f"# {example.title}",
        "",
        f"`examples/{name}` (run it from the repository root with `{run}`).",
        "",
    ]
    if example.prose:
        parts += [docstring_to_markdown(example.prose), ""]
    if figures:
        parts += ["## What it draws", "", "Run when these pages were built:", ""]
        for figure in figures:
            words = _figure_words(figure.name)
            parts += [f"![{words}]({FIGURES}/{example.page}/{figure.name})", "", f"*{words}*", ""]
    parts += [
        "## The code",
        "",
        f"```{{literalinclude}} ../../examples/{name}",
        f":language: {language}",
        ":linenos:",
        "```",
        "",
    ]
    return "\n".join(parts)


def gallery_index(examples: list[Example]) -> str:
    """The Markdown source of the gallery's index page."""
    parts = [
        "# Examples",
        "",
        "Scripts and spec files from the repository's `examples/` folder. Each runs on bundled",
        "simulated records with no arguments; the pages show what each does, the figures it",
        "drew when the documentation was built, and its code.",
        "",
        "| example | what it does |",
        "|---|---|",
    ]
    for ex in examples:
        parts.append(f"| [`{ex.path.name}`]({ex.page}.md) | {ex.title} |")
    parts += ["", "```{toctree}", ":hidden:", ""]
    parts += [ex.page for ex in examples]
    parts += ["```", ""]
    return "\n".join(parts)


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def write_gallery(
    examples: Path = EXAMPLES, out: Path = GALLERY, *, execute: bool = False
) -> list[Path]:
    """Write the gallery pages for ``examples`` into ``out``; return the pages written.

    With ``execute``, each example is run first and its figures are shown on its page
    (:func:`run_examples`). Pages for examples that no longer exist are removed. Files are
    rewritten only when their text changes, so an incremental build stays incremental.
    """
    out.mkdir(parents=True, exist_ok=True)
    sources = gallery_sources(examples)
    found = [read_example(p) for p in sources]
    drawn = run_examples(sources, out / FIGURES) if execute else {}
    pages = {out / "index.md": gallery_index(found)}
    pages.update({out / f"{ex.page}.md": example_page(ex, drawn.get(ex.page)) for ex in found})
    for stale in set(out.glob("*.md")) - set(pages):
        stale.unlink()
    for path, text in pages.items():
        _write_if_changed(path, text)
    return sorted(pages)


def exports_table() -> str:
    """reST table of the names exported by ``cpdimpact``, linked to where they are documented."""
    import cpdimpact

    rows = []
    for name in cpdimpact.__all__:
        if name.startswith("_"):
            continue
        if name in cpdimpact._SUBMODULES:
            continue
        module = f"cpdimpact.{cpdimpact._LAZY[name]}"
        obj = getattr(importlib.import_module(module), name)
        role = "class" if isinstance(obj, type) else "func"
        summary = (obj.__doc__ or "").strip().split("\n\n")[0]
        summary = " ".join(summary.split())
        rows.append((f":py:{role}:`~{module}.{name}`", f"``{module}``", summary))
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 20 20 60", ""]
    lines += ["   * - name", "     - module", "     - summary"]
    for cells in rows:
        lines.append(f"   * - {cells[0]}")
        lines += [f"     - {cell}" for cell in cells[1:]]
    return "\n".join(lines)


def setup(app):
    """Register the gallery generator and the ``cpdimpact-exports`` directive."""
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective

    class ExportsDirective(SphinxDirective):
        has_content = False

        def run(self):
            from docutils import nodes

            container = nodes.container()
            text = StringList(exports_table().splitlines(), source="cpdimpact-exports")
            self.state.nested_parse(text, self.content_offset, container)
            return container.children

    app.add_directive("cpdimpact-exports", ExportsDirective)
    execute = os.environ.get("CPDIMPACT_DOCS_RUN_EXAMPLES", "1") != "0"
    app.connect("builder-inited", lambda app: write_gallery(execute=execute))
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
