"""The bundled example scripts run as a charity would run them."""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from pathlib import Path

import pytest

from cpdimpact.errors import CpdImpactWarning

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_city_partnership_on_simulated_data(tmp_path, capsys):
    example = _load("city_partnership")
    assert example.main(["--out", str(tmp_path), "--scale", "0.3", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert "Simulated truth" in out
    for name in ("report.html", "report.md", "report.docx", "results.json"):
        assert (tmp_path / name).stat().st_size > 0
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["seed"] == 5


def test_city_partnership_on_a_charitys_own_files(tmp_path):
    from cpdimpact.datasets import city_partnership

    example = _load("city_partnership")
    records = city_partnership(seed=9, scale=0.25)
    data = tmp_path / "data"
    data.mkdir()
    # A charity's files: their own column names.
    records.pupils.rename(columns={"pupil": "UPN", "school": "URN", "outcome": "ks2"}).to_csv(
        data / "pupils.csv", index=False
    )
    records.participation.rename(columns={"school": "URN"}).to_csv(
        data / "participation.csv", index=False
    )
    records.schools.rename(columns={"school": "URN"}).to_csv(data / "schools.csv", index=False)
    out = tmp_path / "report"
    code = example.main(
        [
            "--pupils",
            str(data / "pupils.csv"),
            "--participation",
            str(data / "participation.csv"),
            "--schools",
            str(data / "schools.csv"),
            "--column",
            "pupil=UPN",
            "--column",
            "school=URN",
            "--column",
            "outcome=ks2",
            "--out",
            str(out),
            "--title",
            "Our programme",
        ]
    )
    assert code == 0
    md = (out / "report.md").read_text()
    assert md.startswith("# Our programme")
    assert "| FSM pupils |" in md


def test_city_partnership_rejects_half_a_dataset(tmp_path):
    example = _load("city_partnership")
    with pytest.raises(SystemExit, match="both --pupils and --participation"):
        example.main(["--pupils", str(tmp_path / "x.csv"), "--out", str(tmp_path)])


def test_la_programme_on_simulated_statistics(tmp_path, capsys):
    example = _load("la_programme")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        assert example.main(["--out", str(tmp_path), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "Simulated truth" in out
    text = (tmp_path / "report.md").read_text()
    for words in (
        "This evaluation used published figures",
        "Three comparisons side by side",
        "Held-out pre-programme years",
        "Synthetic control: the effect by year with prediction intervals",
        "the simulation's pupil-level SD",
    ):
        assert words in text
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["published_figures"]["level"] == "area"


def test_la_programme_on_a_councils_download(tmp_path):
    """The figures as a council holds them: its own column names, suppressed cells written
    'c' (Explore Education Statistics), a statistical-neighbours file; no pupil SD, so the
    report is in percentage points."""
    from cpdimpact.datasets import la_statistics

    stats = la_statistics(seed=4, scale=0.3)
    figures = stats.figures["PTRWM_EXP"]
    written = figures.assign(
        outcome=figures["outcome"].map("{:.0f}".format).where(figures["outcome"].notna(), "c")
    ).drop(columns=["marker", "reason"])
    written.rename(
        columns={"area": "la_code", "outcome": "pt_rwm_met", "pupils": "eligible"}
    ).to_csv(tmp_path / "la.csv", index=False)
    stats.participation.rename(columns={"area": "la_code"}).to_csv(
        tmp_path / "city.csv", index=False
    )
    stats.neighbours.rename(columns={"area": "la_code"}).to_csv(
        tmp_path / "neighbours.csv", index=False
    )
    example = _load("la_programme")
    out = tmp_path / "report"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        code = example.main(
            [
                "--figures", str(tmp_path / "la.csv"),
                "--participation", str(tmp_path / "city.csv"),
                "--neighbours", str(tmp_path / "neighbours.csv"),
                "--measure", "percentage",
                "--column", "area=la_code",
                "--column", "outcome=pt_rwm_met",
                "--column", "pupils=eligible",
                "--out", str(out),
            ]
        )  # fmt: skip
    assert code == 0
    text = (out / "report.md").read_text()
    assert "Effect in percentage points" in text
    assert "Cox's method" in text
    payload = json.loads((out / "results.json").read_text())
    lost = payload["published_figures"]["lost_figures"]
    assert sum(r["figures"] for r in lost) == int(figures["outcome"].isna().sum())


def test_multilevel_example(tmp_path, capsys):
    example = _load("multilevel_city")
    assert example.main(["--out", str(tmp_path), "--scale", "0.3", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "Multilevel model" in out and "teacher" in out
    assert (tmp_path / "school_effects.png").exists()
    assert "Multilevel difference-in-differences" in (tmp_path / "report.md").read_text()


def test_expected_standard_example(tmp_path, capsys):
    example = _load("expected_standard")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        assert example.main(["--out", str(tmp_path), "--scale", "0.2", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "family binomial" in out and "truth (percentage points)" in out
    report = (tmp_path / "report.md").read_text()
    assert "FSM pupils" in report and "percentage points" in report
    assert "Logistic multilevel model: the programme's effect" in report
    # the logistic section sits beside the headline, before the subgroups
    assert report.index("Impact on attainment") < report.index("Odds ratio")
    assert report.index("Odds ratio") < report.index("Effects by subgroup")
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["outcome_units"] == "percentage points"
    assert payload["cohort"]["outcome_kind"] == "pass_fail"


def test_hub_rollout_example(tmp_path, capsys):
    example = _load("hub_rollout")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        code = example.main(["--out", str(tmp_path), "--scale", "0.03", "--draws", "99"])
    assert code == 0
    out = capsys.readouterr().out
    assert "clustered by area (30 clusters)" in out
    assert "TWFE for comparison" in out and "wild cluster bootstrap" in out
    assert "Goodman-Bacon" in out
    assert "Callaway" in (tmp_path / "report.md").read_text()


def test_city_partnership_on_a_raw_dfe_download_prints_the_message_not_a_traceback(tmp_path):
    # A council analyst's first try: the school performance table as the pupils file. The
    # script stops with cpdimpact's message (naming the missing columns and the fix) and
    # lists a 300-column table's columns in short.
    example = _load("city_partnership")
    enrolments = tmp_path / "enrolments.csv"
    enrolments.write_text("URN,start_year\n115976,2019\n")
    raw = Path(__file__).resolve().parent / "reference" / "dfe" / "2018-2019_850_ks2final.csv"
    argv = ["--pupils", str(raw), "--participation", str(enrolments), "--column", "school=URN"]
    with pytest.raises(SystemExit) as info:
        example.main([*argv, "--out", str(tmp_path / "out")])
    message = str(info.value.code)
    assert message.startswith("error: the pupils table has no column 'pupil'")
    assert "pass columns={'year': 'your column name'}" in message
    assert "more columns" in message and "MAT_AVERAGE_NotFSM6CLA1A" not in message


def test_city_partnership_on_a_raw_mis_extract_with_format_dfe(tmp_path, monkeypatch):
    """A school MIS extract as it comes (academic years, Y/N, A and SUPP cells, day-first
    start dates, cp1252): the same estimates as its clean twin, the lost cells counted by
    marker, and no design claimed on the user's behalf."""
    mis = Path(__file__).resolve().parent / "reference" / "mis"
    monkeypatch.syspath_prepend(str(mis))
    from make_extract import COLUMNS

    example = _load("city_partnership")
    columns = [arg for k, v in COLUMNS.items() for arg in ("--column", f"{k}={v}")]

    def run(folder: str, *extra: str) -> dict:
        files = [
            arg
            for table in ("pupils", "participation", "schools", "teachers")
            for arg in (f"--{table}", str(mis / folder / f"{table}.csv"))
        ]
        out = tmp_path / folder
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CpdImpactWarning)
            assert example.main([*files, *columns, *extra, "--out", str(out)]) == 0
        return json.loads((out / "results.json").read_text())

    raw, clean = run("extract", "--format", "dfe"), run("clean")
    assert raw["headline"] == clean["headline"]
    assert raw["subgroups"] == clean["subgroups"]
    md = (tmp_path / "extract" / "report.md").read_text()
    assert "outcome missing: SUPP (suppressed" in md
    assert "Years are the summers in which pupils sat the tests" in md
    assert raw["security"] is None  # the evaluator states the design; the script never does


@pytest.mark.parametrize("reading", [[], ["--format", "dfe"]])
def test_city_partnership_names_a_performance_table_and_its_reader(tmp_path, reading):
    # The school performance table given as pupil records, read plainly or as DfE writes it:
    # the message says what the file is and which reader takes it, with no traceback.
    example = _load("city_partnership")
    enrolments = tmp_path / "enrolments.csv"
    enrolments.write_text("URN,start_year\n115976,2019\n")
    raw = Path(__file__).resolve().parent / "reference" / "dfe" / "2018-2019_850_ks2final.csv"
    argv = ["--pupils", str(raw), "--participation", str(enrolments), "--column", "school=URN"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        with pytest.raises(SystemExit) as info:
            example.main([*argv, *reading, "--out", str(tmp_path / "out")])
    message = str(info.value.code)
    assert message.startswith("error: the pupils table has no column 'pupil'")
    assert "looks like a DfE school performance table" in message
    assert "cpdimpact.dfe.read_performance_table(path)" in message
    assert "Traceback" not in message


def test_city_partnership_uses_the_estimator_the_design_calls_for(tmp_path, monkeypatch):
    """No estimator forced: one start year gives the design's DiD, staggered starts the
    group-time estimator; both adjust for prior attainment (the default covariate)."""
    from cpdimpact.datasets import hub_rollout

    example = _load("city_partnership")
    assert example.main(["--out", str(tmp_path / "city"), "--scale", "0.2", "--seed", "5"]) == 0
    city = json.loads((tmp_path / "city" / "results.json").read_text())
    assert city["estimator_used"]["kind"] == "DiD"
    assert city["estimator_used"]["covariates"] == ["prior"]
    assert city["estimator_used"]["inference"] == {"type": "ClusterRobust", "kind": "auto"}

    records = hub_rollout(seed=2, scale=0.03)
    data = tmp_path / "hub"
    records.to_csv(data)
    out = tmp_path / "hub_report"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        code = example.main(
            [
                *("--pupils", str(data / "pupils.csv")),
                *("--participation", str(data / "participation.csv")),
                *("--schools", str(data / "schools.csv")),
                *("--out", str(out)),
            ]
        )
    assert code == 0
    hub = json.loads((out / "results.json").read_text())
    assert hub["estimator_used"]["kind"] == "StaggeredDiD"
    assert hub["estimator_used"]["covariates"] == ["prior"]


def test_teacher_retention_example(tmp_path, capsys):
    example = _load("teacher_retention")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        assert example.main(["--out", str(tmp_path), "--scale", "0.5", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "Simulated truth" in out and "Kaplan-Meier" in out
    for name in ("report.html", "report.md", "report.docx", "figures/teachers_retention.png"):
        assert (tmp_path / name).stat().st_size > 0
    report = (tmp_path / "report.md").read_text()
    for heading in (
        "## Teachers",
        "### Retention",
        "### Cost per additional teacher retained",
        "### Promotion to leadership",
        "## School turnover",
    ):
        assert heading in report
    assert "comparison teachers are weighted to resemble the participants" in report
    from test_report_plain import _offences  # the report's no-code scan

    assert not _offences(report), "\n".join(_offences(report))


def test_teacher_retention_weights_comparison_teachers_like_participants():
    """Teachers chose to take part, in poorer schools: the example's weights make the
    comparison teachers' experience bands, roles and school FSM shares those of the
    participants (checked here with pandas)."""
    from cpdimpact.datasets import simulate_careers
    from cpdimpact.workforce import spells

    example = _load("teacher_retention")
    data = spells(simulate_careers("city_partnership", seed=2, scale=0.5)).data
    weighted = example.comparison_weights(data)
    arm = weighted["treated"] == 1
    w = weighted["weight"]
    assert (w[arm] == 1).all() and (w[~arm] > 0).all()

    def mean(values, rows):
        return float((values[rows] * w[rows]).sum() / w[rows].sum())

    checks = {"fsm_share": weighted["fsm_share"]}
    checks |= {f"role {r}": (weighted["role"] == r).astype(float) for r in set(data["role"])}
    early = (weighted["years_service"] <= 2).astype(float)
    checks["early career"] = early
    for name, values in checks.items():
        assert mean(values, arm) == pytest.approx(mean(values, ~arm), abs=1e-6), name


def test_teacher_retention_on_a_charitys_own_files(tmp_path):
    """Teacher records as a charity holds them (its own column names), written to CSV."""
    from cpdimpact.datasets import simulate_careers

    records = simulate_careers("city_partnership", seed=4, scale=0.5)
    data = tmp_path / "data"
    data.mkdir()
    records.census.rename(columns={"teacher": "TRN", "school": "URN"}).to_csv(
        data / "census.csv", index=False
    )
    records.participation.rename(columns={"teacher": "TRN", "school": "URN"}).to_csv(
        data / "enrolments.csv", index=False
    )
    example = _load("teacher_retention")
    out = tmp_path / "report"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        code = example.main(
            [
                *("--census", str(data / "census.csv")),
                *("--participation", str(data / "enrolments.csv")),
                *("--column", "teacher=TRN", "--column", "school=URN"),
                *("--cost", "300000", "--title", "Our teachers", "--out", str(out)),
            ]
        )
    assert code == 0
    report = (out / "report.md").read_text()
    assert report.startswith("# Our teachers")
    assert "The programme cost £300,000" in report
    assert "simulated" not in report


def test_teacher_retention_rejects_half_a_dataset(tmp_path):
    example = _load("teacher_retention")
    with pytest.raises(SystemExit, match="give --census with --participation"):
        example.main(["--participation", str(tmp_path / "x.csv"), "--out", str(tmp_path)])
