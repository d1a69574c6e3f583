"""The package's architecture, checked on the source: no import cycles, no reaching into
another package's private modules or names.

Imports are read with :mod:`ast` from every module of ``src/cpdimpact``, including imports
inside functions (a cycle held open by a late import is still a cycle). Imports under
``if TYPE_CHECKING:`` are left out: they never run. ``from pkg import name`` is an edge to the
module ``pkg.name`` when that is a module, else to ``pkg``; importing ``pkg.mod`` is not also
counted as importing ``pkg`` (Python runs ``pkg/__init__.py`` first, but that is not a
dependency the importer chose).

The rules (``docs/architecture.md``):

* no cycle among the modules of ``src/cpdimpact``;
* a private module ``cpdimpact/PKG/_mod.py``, or a private name ``_x`` of any module of
  ``PKG``, is imported only from inside ``cpdimpact/PKG/``; the root modules
  ``cpdimpact/_*.py`` are shared infrastructure, importable anywhere.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "cpdimpact"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / ROOT).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes under ``if TYPE_CHECKING:`` (never run)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                for child in node.body:
                    skipped.update(id(n) for n in ast.walk(child))
    return skipped


def _imports(module: str) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import ``module`` runs."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    skipped = _type_checking_nodes(tree)
    package = module if _is_package(module) else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out.extend((alias.name, None, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:
                    out.append((sub, None, node.lineno))
                else:
                    out.append((target, alias.name, node.lineno))
    return [(t, n, line) for t, n, line in out if t == ROOT or t.startswith(ROOT + ".")]


IMPORTS = {module: _imports(module) for module in MODULES}


def _graph() -> dict[str, set[str]]:
    return {
        module: {target for target, _, _ in found if target in MODULES and target != module}
        for module, found in IMPORTS.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each given as
    one cycle through its modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_one_cycle(graph, set(c)) for c in components]


def _one_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the first module of ``component`` (breadth first)."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & component):
            if w == start:
                return [*paths[v], start]
            if w not in paths:
                paths[w] = [*paths[v], w]
                queue.append(w)
    return sorted(component)  # pragma: no cover (a component always holds a cycle)


def _owner(module: str) -> str:
    """The package a module belongs to (``cpdimpact.did._common`` -> ``cpdimpact.did``)."""
    return module if _is_package(module) else module.rpartition(".")[0]


def _inside(importer: str, package: str) -> bool:
    return importer == package or importer.startswith(package + ".")


def _private_imports() -> list[tuple[str, str, str, int]]:
    """(importer, imported module, what is private, line) for each import breaking the rule."""
    out = []
    for importer, found in IMPORTS.items():
        for target, name, line in found:
            if target not in MODULES:
                continue
            parts = target.split(".")
            private = [i for i, p in enumerate(parts) if p.startswith("_") and i > 1]
            if private:  # a private module below a package: owned by that package
                package = ".".join(parts[: private[0]])
                if not _inside(importer, package):
                    out.append((importer, target, "private module", line))
                    continue
            if name and name.startswith("_") and not name.startswith("__"):
                if not _inside(importer, _owner(target)):
                    out.append((importer, target, f"private name {name}", line))
    return out


def test_the_import_reader_sees_what_it_must():
    """The reader resolves relative imports, imports inside functions and ``from pkg import
    module`` forms; it skips TYPE_CHECKING imports (a check on this file's own rules)."""
    graph = _graph()
    # report/publish.py imports the result at module level: publishing depends on the result.
    assert "cpdimpact.evaluation.result" in graph["cpdimpact.report.publish"]
    # cli.py imports the evaluation inside a function.
    assert "cpdimpact.evaluation" in graph["cpdimpact.cli"]
    # evaluation/stages.py imports the spec only for type checking: no edge.
    assert "cpdimpact.evaluation.spec" not in graph["cpdimpact.evaluation.stages"]
    # `from . import publish` style: `from ..report import publish` is an edge to the module.
    assert "cpdimpact.report.publish" in graph["cpdimpact.evaluation"]


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_import_of_another_packages_private_module_or_name():
    bad = _private_imports()
    assert not bad, "imports of another package's private modules or names:\n" + "\n".join(
        f"{importer} line {line}: {what} {target}" for importer, target, what, line in bad
    )


@pytest.mark.parametrize(
    ("later", "earlier"),
    [
        ("cpdimpact.report.publish", "cpdimpact.evaluation.result"),
        ("cpdimpact.evaluation.stages", "cpdimpact.evaluation.result"),
        ("cpdimpact.evaluation.spec", "cpdimpact.evaluation.stages"),
    ],
)
def test_stages_depend_forward_only(later, earlier):
    """Publishing depends on the result, the stages on the result, the spec on the stages;
    never the reverse (directly or through other modules)."""
    graph = _graph()
    seen, todo = set(), [earlier]
    while todo:
        v = todo.pop()
        for w in graph[v]:
            if w not in seen:
                seen.add(w)
                todo.append(w)
    assert later not in seen, f"{earlier} reaches {later}"


_FIRST_IMPORT = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "cpdimpact" or m.startswith("cpdimpact.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc().strip().splitlines()[-1])
print("\\n".join(failed))
"""


def test_every_module_imports_first():
    """Each module imports as the first of the package a program (or the docs build) imports.
    A cycle through a package's ``__init__`` (which the graph above does not follow, as
    Python's import of ``pkg.mod`` runs ``pkg/__init__.py`` first) fails here: it once broke
    ``import cpdimpact.report.evaluation`` and, with it, the docs build in some orders."""
    import subprocess
    import sys

    names = sorted(MODULES)
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_IMPORT, *names],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "PYTHONPATH": str(SRC), "MPLBACKEND": "Agg"},
    )
    assert done.stdout.strip() == "", "modules that fail to import first:\n" + done.stdout
