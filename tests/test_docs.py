"""The documentation site cannot silently rot: cheap checks that need no Sphinx build.

Every Markdown page in docs/ is reachable from a toctree, every public submodule has an API page,
every example in examples/ gets a generated gallery page that includes its code, and the
project cites only files inside the repository (published figures live in docs/sources.md).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

import cpdimpact

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"

TOCTREE = re.compile(r"^```\{toctree\}[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _load_docs_extension():
    path = DOCS / "_ext" / "cpdimpact_docs.py"
    spec = importlib.util.spec_from_file_location("cpdimpact_docs_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def toctree_entries(page: Path) -> set[Path]:
    """Pages named in the toctrees of one Markdown page, as paths relative to docs/."""
    entries = set()
    for body in TOCTREE.findall(page.read_text(encoding="utf-8")):
        for line in body.splitlines():
            line = line.strip()
            if not line or line.startswith(":"):
                continue
            target = re.sub(r"^.*<(.+)>$", r"\1", line)  # "Title <page>" form
            resolved = (page.parent / target).resolve().relative_to(DOCS.resolve())
            entries.add(resolved.with_suffix(".md"))
    return entries


def reachable_pages() -> set[Path]:
    """Every page reachable from docs/index.md through toctrees of hand-written pages."""
    seen = {Path("index.md")}
    todo = [Path("index.md")]
    while todo:
        page = DOCS / todo.pop()
        if not page.exists():  # generated at build time (the gallery): checked below
            continue
        for entry in toctree_entries(page):
            if entry not in seen:
                seen.add(entry)
                todo.append(entry)
    return seen


def test_toctree_parser_reads_entries(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# T\n\n```{toctree}\n:hidden:\n\nfirst\nSecond page <second>\n```\n")
    body = TOCTREE.findall(page.read_text())
    assert body == [":hidden:\n\nfirst\nSecond page <second>\n"]


def test_every_page_is_in_a_toctree():
    pages = {p.relative_to(DOCS) for p in DOCS.glob("*.md")}
    pages |= {p.relative_to(DOCS) for p in (DOCS / "api").glob("*.md")}
    orphans = sorted(str(p) for p in pages - reachable_pages())
    assert not orphans, f"add these pages to a toctree (docs/index.md): {orphans}"


def test_every_toctree_entry_exists():
    generated = {Path("gallery/index.md")}
    missing = sorted(
        str(p) for p in reachable_pages() if p not in generated and not (DOCS / p).exists()
    )
    assert not missing, f"toctree entries with no page: {missing}"


@pytest.mark.parametrize("name", cpdimpact._SUBMODULES)
def test_every_public_module_has_an_api_page(name):
    page = DOCS / "api" / f"{name}.md"
    assert page.exists(), f"docs/api/{name}.md is missing"
    assert f".. automodule:: cpdimpact.{name}\n" in page.read_text(encoding="utf-8")


def test_every_example_gets_a_gallery_page(tmp_path):
    ext = _load_docs_extension()
    written = ext.write_gallery(EXAMPLES, tmp_path)
    index = (tmp_path / "index.md").read_text(encoding="utf-8")
    listed = {e for body in TOCTREE.findall(index) for e in body.split() if not e.startswith(":")}
    scripts = sorted(EXAMPLES.glob("*.py")) + sorted(EXAMPLES.glob("*.toml"))
    assert scripts, "no examples found"
    for script in scripts:
        page = tmp_path / (script.name.replace(".", "_") + ".md")
        assert page in written, f"no gallery page for examples/{script.name}"
        assert page.stem in listed, f"gallery index does not list {page.name}"
        text = page.read_text(encoding="utf-8")
        assert f"```{{literalinclude}} ../../examples/{script.name}\n" in text
        title = text.splitlines()[0]
        assert title.startswith("# ") and len(title) > 2 + len(script.stem), (
            f"examples/{script.name} needs a module docstring (or leading comments): its first "
            "line is the gallery title"
        )


def test_gallery_runs_each_example_and_shows_its_figures(tmp_path):
    """At a docs build each example runs as its page says (with --out a build folder), and the
    page shows the figures it wrote; an example that fails fails the build."""
    ext = _load_docs_extension()
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "draws.py").write_text(
        '"""Draws one figure."""\n'
        "import sys\nfrom pathlib import Path\n"
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "out = Path(sys.argv[sys.argv.index('--out') + 1])\n"
        "(out / 'figures').mkdir(parents=True)\n"
        "plt.plot([1, 2]); plt.savefig(out / 'figures' / 'effect_by_year.png')\n"
    )
    out = tmp_path / "gallery"
    ext.write_gallery(examples, out, execute=True)
    page = (out / "draws_py.md").read_text(encoding="utf-8")
    assert "![effect by year](_figures/draws_py/effect_by_year.png)" in page
    assert (out / "_figures" / "draws_py" / "effect_by_year.png").read_bytes()[:4] == b"\x89PNG"
    (examples / "draws.py").write_text('"""Fails."""\nraise SystemExit("broken example")\n')
    with pytest.raises(RuntimeError, match="broken example"):
        ext.write_gallery(examples, out, execute=True)


def test_gallery_removes_pages_of_deleted_examples(tmp_path):
    ext = _load_docs_extension()
    examples = tmp_path / "examples"
    out = tmp_path / "gallery"
    examples.mkdir()
    (examples / "one.py").write_text('"""First example.\n\nProse.\n\n    python one.py\n"""\n')
    (examples / "two.py").write_text('"""Second example."""\n')
    ext.write_gallery(examples, out)
    assert {p.name for p in out.glob("*.md")} == {"index.md", "one_py.md", "two_py.md"}
    one = (out / "one_py.md").read_text()
    assert one.startswith("# First example\n")
    assert "```console\npython one.py\n```" in one
    (examples / "two.py").unlink()
    ext.write_gallery(examples, out)
    assert {p.name for p in out.glob("*.md")} == {"index.md", "one_py.md"}


def test_gallery_prose_titles_and_links(tmp_path):
    ext = _load_docs_extension()
    (tmp_path / "cli.md").write_text("# CLI\n")
    text = ext.docstring_to_markdown("See docs/cli.md, not docs/nope.md.", docs=tmp_path)
    assert text == "See [docs/cli.md](../cli.md), not docs/nope.md."
    spec = tmp_path / "spec.toml"
    spec.write_text("# A spec: run it with `x`. Paths are relative.\n\n[data]\nseed = 1\n")
    example = ext.read_example(spec)
    assert example.title == "A spec: run it with `x`"
    assert example.prose == "Paths are relative."


# --- the project is self-contained: citations point inside the repository ---------------------

# Files outside the repository that must not be cited (the steering notes live there). Written as
# regular expressions, so this file does not match itself.
OUTSIDE = re.compile(r"DESIGN\.md|(?<![\w-])reference/README\.md|\.\./shared")
# The READMEs of the in-repository reference folders may be cited (they must exist).
REFERENCE_README = re.compile(r"tests/reference/[\w-]+/README\.md")
CITED_TEXT = {".py", ".md", ".rst", ".txt", ".toml", ".cfg", ".R"}
# Backticked repository paths: ``docs/<page>.md`` and ``tests/reference/...``.
REPO_PATH = re.compile(r"`{1,2}(docs/[\w.-]+\.md|tests/reference/[\w./-]+)`{1,2}")
# {ref}`label` and {ref}`text <label>` in the Markdown pages, and (label)= targets.
REF_ROLE = re.compile(r"\{ref\}`(?:[^`<]*<)?([\w-]+)>?`")
LABEL = re.compile(r"^\(([\w-]+)\)=\s*$", re.MULTILINE)


def _cited_files() -> list[Path]:
    """Hand-written files whose text may cite other files (not the built or generated docs)."""
    files = [ROOT / "README.md", *sorted((ROOT / "tests").glob("*.py"))]
    for top in ("src", "docs", "examples", "benchmarks"):
        for path in sorted((ROOT / top).rglob("*")):
            parts = path.relative_to(ROOT).parts
            if parts[:2] in {("docs", "_build"), ("docs", "gallery")} or "__pycache__" in parts:
                continue
            if path.is_file() and path.suffix in CITED_TEXT:
                files.append(path)
    return files


def test_outside_pattern_matches_outside_files_only():
    readme = "README" + ".md"  # spelled in parts so that this file does not cite it
    for text in ("see DESIGN" + ".md §5", f"``reference/{readme}`` section 3", "../" + "shared/x"):
        assert OUTSIDE.search(text), text
    for text in ("tests/reference/trials/README.md", "benchmarks/README.md", "docs/sources.md"):
        assert not OUTSIDE.search(text), text


def test_no_citations_of_files_outside_the_repository():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _cited_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
        or any(not (ROOT / readme).exists() for readme in REFERENCE_README.findall(line))
    ]
    assert not offenders, (
        "cite docs/sources.md (published figures and sources) instead of files outside the "
        "repository:\n" + "\n".join(offenders)
    )


def test_cited_repository_paths_exist():
    files = [p for p in _cited_files() if p.suffix == ".py" and "src" in p.relative_to(ROOT).parts]
    files += sorted(DOCS.glob("*.md"))
    missing = sorted(
        f"{path.relative_to(ROOT)}: {cited}"
        for path in files
        for cited in REPO_PATH.findall(path.read_text(encoding="utf-8"))
        if not (ROOT / cited.rstrip("/")).exists()
    )
    assert files and not missing, f"cited files that do not exist: {missing}"


def test_every_ref_target_is_defined():
    pages = sorted(DOCS.glob("*.md"))
    labels = {label for page in pages for label in LABEL.findall(page.read_text(encoding="utf-8"))}
    assert {"sources-wwc", "sources-eef", "sources-effect-size-sd"} <= labels
    undefined = sorted(
        f"{page.name}: {label}"
        for page in pages
        for label in REF_ROLE.findall(page.read_text(encoding="utf-8"))
        if label not in labels
    )
    assert not undefined, f"{{ref}} targets with no (label)= in docs/: {undefined}"
