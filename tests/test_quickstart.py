"""docs/quickstart.md, followed verbatim (issue 16): its Python blocks run in order in one
namespace, its TOML block is saved under the name the page gives, its shell command is run,
all in a folder laid out as the repository's root (the page's paths are relative to it)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import shutil
import warnings
from pathlib import Path

import pytest

from cpdimpact.cli import main
from cpdimpact.errors import CpdImpactWarning

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "quickstart.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(PAGE.read_text(encoding="utf-8"))]


@pytest.fixture(scope="module")
def followed(tmp_path_factory):
    """Run the page; returns the folder and what the Python blocks printed."""
    folder = tmp_path_factory.mktemp("quickstart")
    shutil.copytree(ROOT / "examples" / "data", folder / "examples" / "data")
    page = PAGE.read_text(encoding="utf-8")
    toml_name = re.search(r"Save this as\s+`([^`]+\.toml)`", page).group(1)
    namespace: dict = {}
    printed = io.StringIO()
    with contextlib.chdir(folder), warnings.catch_warnings():
        # the page says the library warns about few schools; the test checks it does below
        warnings.simplefilter("always", CpdImpactWarning)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CpdImpactWarning)
            for kind, code in _blocks():
                if kind == "python":
                    with contextlib.redirect_stdout(printed):
                        exec(compile(code, str(PAGE), "exec"), namespace)
                elif kind == "toml":
                    Path(toml_name).write_text(code, encoding="utf-8")
                elif kind == "sh":
                    (command,) = [line for line in code.splitlines() if line.strip()]
                    argv = shlex.split(command)
                    assert argv[0] == "cpdimpact"
                    with contextlib.redirect_stdout(io.StringIO()):
                        assert main(argv[1:]) == 0
    return folder, printed.getvalue(), caught, namespace


def test_the_page_has_the_steps_it_describes():
    kinds = [kind for kind, _ in _blocks()]
    assert kinds == ["python", "python", "python", "toml", "sh"]


def test_reading_says_what_it_converted_and_counts_the_markers(followed):
    _, printed, _, _ = followed
    assert "('2016/17' -> 2017)" in printed
    assert "first results it could affect: summer 2021 tests" in printed
    assert "SUPP" in printed and "absent" in printed


def test_the_summary_and_the_report_files(followed):
    folder, printed, _, namespace = followed
    assert "Impact evaluation" in printed and "wild cluster bootstrap" in printed.lower()
    for name in ("report.html", "report.docx", "report.md", "results.json"):
        assert (folder / "my_report" / name).is_file()
    assert namespace["result"].evaluation.seed == 2024


def test_the_few_schools_warning_the_page_mentions_is_given(followed):
    """...and, the headline being bootstrapped, said to be about the event study's
    cluster-robust intervals (in the run's warnings and the report's caveats)."""
    folder, _, caught, _ = followed
    few = [str(w.message) for w in caught if "clusters of 'URN'" in str(w.message)]
    assert few and all(m.startswith("In the event study") for m in few)
    report = (folder / "my_report" / "report.md").read_text(encoding="utf-8")
    caveats = report.split("### Caveats")[1].split("###")[0]
    assert "clusters of 'URN'" in caveats
    assert all(
        line.startswith("In the event study")
        for line in caveats.strip().split("\n\n")
        if "clusters of 'URN'" in line
    )


def test_the_command_line_gives_the_numbers_of_step_3(followed):
    folder, *_ = followed
    python = json.loads((folder / "my_report" / "results.json").read_text())
    cli = json.loads((folder / "my_report_cli" / "results.json").read_text())
    assert cli["estimates"] == python["estimates"]
    assert cli["subgroups"] == python["subgroups"]
    assert cli["data_fingerprint"] == python["data_fingerprint"]


def test_the_shipped_files_are_the_reference_extract():
    """examples/data is a copy of tests/reference/mis/extract (examples/data/README.md)."""
    extract = ROOT / "tests" / "reference" / "mis" / "extract"
    names = sorted(p.name for p in extract.glob("*.csv"))
    assert names == sorted(p.name for p in (ROOT / "examples" / "data").glob("*.csv"))
    for name in names:
        assert (ROOT / "examples" / "data" / name).read_bytes() == (extract / name).read_bytes()
