"""No code, option names or formulas in the main text of a report (issue 16): they belong in
the technical appendix. Scanned on the demo, a staggered national roll-out with the security
section, a matched comparison and a report with a tiny subgroup."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from cpdimpact import CohortSpec, Evaluation, Records, ReportOptions
from cpdimpact.comparison import NearestMatching
from cpdimpact.datasets import city_partnership, hub_rollout
from cpdimpact.did import DiD
from cpdimpact.errors import CpdImpactWarning
from cpdimpact.estimator import WildBootstrap
from cpdimpact.pipeline import SecurityOptions

#: What code and formulas look like in prose, each with a name for the failure message.
CODE = {
    "a call": re.compile(r"\b[A-Za-z_][A-Za-z0-9_.]*\((?!\d{4}\b)"),
    "an identifier with underscores": re.compile(r"\b[a-z][a-z0-9]*_[a-z0-9_]+\b"),
    "a keyword argument": re.compile(r"\b\w+=\S"),
    "a code span": re.compile(r"`"),
    "a spec-file section": re.compile(r"\\?\[[a-z]+(\.[a-z]+)?\\?\]"),
    "a formula": re.compile(r"\b[A-Z]\s*/\s*\(|\bsqrt\b|\(\w+\s*-\s*1\)"),
    "capitals for emphasis": re.compile(r"\bUNVERIFIED\b"),
    "a Python value": re.compile(r"\b(None|True|False|nan)\b"),
}


def _main_text(markdown: str) -> str:
    """The report before its technical appendix, without figure file names, its Markdown
    escapes undone (``first\\_treated`` is ``first_treated`` on the page)."""
    main = markdown.split("## Technical appendix")[0]
    main = re.sub(r"\]\(figures/[^)]*\)", "]", main)
    return re.sub(r"\\([\\`*_{}\[\]()#+\-.!<>|])", r"\1", main)


def _offences(markdown: str) -> list[str]:
    text = _main_text(markdown)
    found = []
    for what, pattern in CODE.items():
        for match in pattern.finditer(text):
            start = max(0, match.start() - 60)
            found.append(f"{what}: ...{text[start : match.end() + 40]!r}")
    return found


def _quiet(evaluation, records):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        return evaluation.run(records)


def _tiny_subgroup():
    records = city_partnership(seed=7, scale=0.3)
    pupils = records.pupils.copy()
    school = sorted(set(records.participation["school"]))[0]
    pupils["looked_after"] = 0
    few = pupils[pupils["school"] == school].groupby("year").head(1).index
    pupils.loc[few, "looked_after"] = 1
    return records.__class__(
        pupils=pupils,
        participation=records.participation,
        schools=records.schools,
        teachers=records.teachers,
    )


REPORTS = {
    "demo": lambda: _quiet(
        Evaluation(subgroups=("fsm",), seed=1, report=ReportOptions(security=SecurityOptions())),
        city_partnership(seed=7, scale=0.3),
    ),
    "staggered": lambda: _quiet(
        Evaluation(seed=3, subgroups=("fsm",), report=ReportOptions(security=SecurityOptions())),
        hub_rollout(seed=2, scale=0.2),
    ),
    "matched": lambda: _quiet(
        Evaluation(
            cohort=CohortSpec(covariates=("prior",)),
            comparison=NearestMatching(covariates=("fsm_share",)),
            seed=2,
        ),
        city_partnership(seed=4, scale=0.3),
    ),
    "tiny subgroup": lambda: _quiet(
        Evaluation(subgroups=("fsm", "looked_after"), gaps=("fsm",), seed=4), _tiny_subgroup()
    ),
}


def _few_schools():
    """The quick start's evaluation (docs/quickstart.md): 8 schools from raw MIS files, the
    wild cluster bootstrap, the few-clusters caveats."""
    folder = Path(__file__).resolve().parents[1] / "examples" / "data"
    columns = {
        "pupil": "UPN",
        "school": "URN",
        "year": "ACADEMIC_YEAR",
        "outcome": "KS2_MATHS_SCORE",
        "prior": "KS1_PRIOR",
        "fsm": "FSM_ELIGIBLE",
        "start_year": "START_DATE",
        "fsm_share": "FSM_PCT",
    }
    tables = {t: folder / f"{t}.csv" for t in ("pupils", "participation", "schools")}
    records = Records.from_csv(**tables, columns=columns, format="dfe")
    spec = DiD(covariates=("prior",), inference=WildBootstrap(n_bootstrap=499))
    return _quiet(
        Evaluation(cohort=CohortSpec(covariates=("prior",)), estimator=spec, seed=1), records
    )


REPORTS["few schools, raw files"] = _few_schools

#: Column names of the data, shown as the user wrote them (not code).
USER_COLUMNS = ("looked_after", "fsm_share")


@pytest.mark.parametrize("name", REPORTS)
def test_no_code_or_formula_in_the_main_text(name):
    result = REPORTS[name]()
    markdown = result.report().to_markdown()
    assert "## Technical appendix" in markdown
    offences = [o for o in _offences(markdown) if not any(c in o for c in USER_COLUMNS)]
    assert not offences, "\n".join(offences)


def test_the_scanner_finds_what_it_looks_for():
    # each pattern catches the thing it names, so a clean report is not a blind scanner
    samples = [
        "give ReportOptions(cost=ProgrammeCost(...)) or [report.cost]",
        "StaggeredDiD(...).fit(...).aggregate('dynamic')",
        "small-sample factor G/(G-1)*(N-1)/(N-K)",
        "seed None and thresholds UNVERIFIED",
        "the column first_treated and `code`",
        "the column first\\_treated, escaped as report.md writes it",
    ]
    for sample in samples:
        assert _offences(sample), sample
    assert not _offences("Test of pre-programme effects (Roth 2022): p = 0.738 (F on 3 and 9).")


def test_the_fingerprint_is_given_once_in_the_appendix():
    """The 64-character input fingerprint is for reproducing a run: once, in the technical
    appendix, not again in a footer."""
    result = REPORTS["demo"]()
    markdown = result.report().to_markdown()
    assert markdown.count(result.fingerprint) == 1
    assert markdown.index(result.fingerprint) > markdown.index("## Technical appendix")


def test_numbers_in_tables_are_written_for_readers():
    """Issue 16: 'a mean school size as 248.950, counts without thousands separators'. Means
    of 10 and more to one decimal, smaller ones (shares, standardised scores) to three; counts
    with separators; and such columns still right-aligned."""
    markdown = REPORTS["demo"]().report().to_markdown()
    size = re.search(r"^\| School size \| school \| ([^|]+) \| ([^|]+) \|", markdown, re.M)
    assert size and all(re.fullmatch(r"\d{2,3}\.\d", v.strip()) for v in size.groups())
    share = re.search(r"^\| FSM \(share\) \| pupil \| ([^|]+) \|", markdown, re.M)
    assert re.fullmatch(r"0\.\d{3}", share.group(1).strip())
    table = markdown[markdown.index("| Variable | Level | Intervention mean") :]
    header, align = table.splitlines()[:2]
    cells = [c.strip() for c in align.strip("|").split("|")]
    assert cells[2:] == ["---:"] * (len(cells) - 2)  # means, differences and counts
    counts = re.findall(r"^\| All pupils \| [^|]+ \| (\d[\d,]*); (\d[\d,]*) \|", markdown, re.M)
    assert counts and all("," in n for n in counts[0] if int(n.replace(",", "")) >= 1000)
