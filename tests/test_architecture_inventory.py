"""docs/architecture.md is the checked inventory of the estimators and the option glossary.

The tests read the Markdown table and compare every row with the class it names (its module,
the result its ``fit`` is annotated to return, the inference registry, its class variables), and
fail when a public estimator has no row.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from pathlib import Path

import pytest

import cpdimpact
from cpdimpact.estimator import DATA_LEVELS, EFFECT_SCALES, INFERENCE, glossary_table

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
COLUMNS = ["estimator", "module", "result", "inference", "data level", "effect scale"]

#: Public classes with a ``fit`` that are not estimators: they fit comparison weights.
COMPARISON_DESIGNS = {
    "NearestMatching",
    "MahalanobisMatching",
    "CoarsenedExactMatching",
    "EntropyBalancing",
}


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _inventory() -> dict[str, dict[str, str]]:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if _cells(line) == COLUMNS)
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        row = dict(zip(COLUMNS, _cells(line), strict=True))
        rows[row["estimator"].strip("`")] = row
    return rows


def _public_estimators() -> dict[str, tuple[str, type]]:
    """Every public class with a ``fit`` in cpdimpact's modules, by name: (module, class)."""
    found: dict[str, tuple[str, type]] = {}
    for sub in cpdimpact._SUBMODULES:
        module = importlib.import_module(f"cpdimpact.{sub}")
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if (
                isinstance(obj, type)
                and dataclasses.is_dataclass(obj)
                and callable(getattr(obj, "fit", None))
                and name not in COMPARISON_DESIGNS
            ):
                found.setdefault(name, (module.__name__, obj))
    return found


def _result_names(cls: type) -> list[str]:
    returned = typing.get_type_hints(cls.fit)["return"]
    return [t.__name__ for t in typing.get_args(returned) or (returned,)]


def test_every_public_estimator_has_a_row_and_every_row_an_estimator():
    rows, code = _inventory(), _public_estimators()
    assert sorted(code) == sorted(rows), (
        f"missing from docs/architecture.md: {sorted(set(code) - set(rows))}; "
        f"rows for no public estimator: {sorted(set(rows) - set(code))}"
    )
    assert sorted(code) == sorted(INFERENCE), "cpdimpact.estimator.INFERENCE needs every one"


@pytest.mark.parametrize("name", sorted(INFERENCE))
def test_each_row_agrees_with_the_code(name):
    row = _inventory()[name]
    module, cls = _public_estimators()[name]
    assert row["module"] == f"`{module}`"
    assert row["result"] == ", ".join(f"`{n}`" for n in _result_names(cls))
    family = INFERENCE[name]
    options = ", ".join(f"`{o.__name__}`" for o in family.options)
    assert row["inference"] == "; ".join(x for x in (options, family.fixed) if x)
    assert row["data level"] == cls.data_level and cls.data_level in DATA_LEVELS
    assert row["effect scale"] == cls.effect_scale and cls.effect_scale in EFFECT_SCALES


def test_comparison_designs_are_not_estimators():
    from cpdimpact import comparison

    for name in COMPARISON_DESIGNS:
        design = getattr(comparison, name)
        assert not hasattr(design, "describe") and not hasattr(design, "data_level"), name


def test_the_glossary_in_the_docs_is_the_one_in_the_code():
    assert glossary_table() in DOC.read_text(encoding="utf-8")
