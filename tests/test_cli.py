"""The command line."""

from __future__ import annotations

import json
from pathlib import Path
from re import escape as re_escape

import pandas as pd
import pytest

from cpdimpact.cli import (
    EXIT_DATA,
    EXIT_ESTIMATION,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_SPEC,
    main,
)
from cpdimpact.cohort import CohortSpec
from cpdimpact.datasets import city_partnership
from cpdimpact.did import DiD, EventStudy, StaggeredDiD
from cpdimpact.errors import EstimationError
from cpdimpact.estimator import ClusterRobust
from cpdimpact.multilevel import MultilevelDiD
from cpdimpact.pipeline import Evaluation, ProgrammeCost, ReportOptions, SecurityOptions
from cpdimpact.records import Records
from cpdimpact.spec_file import EXAMPLE_SPEC, DataFileError, SpecError, load_spec, load_spec_text


def test_simulate_writes_tables_that_read_back(tmp_path, capsys):
    assert main(["simulate", "city_partnership", "--out", str(tmp_path), "--scale", "0.1"]) == 0
    records = Records.from_csv(
        pupils=tmp_path / "pupils.csv",
        participation=tmp_path / "participation.csv",
        schools=tmp_path / "schools.csv",
        teachers=tmp_path / "teachers.csv",
    )
    records.validate(teacher_level=True)
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["effect_size"] == pytest.approx(truth["att"] / truth["outcome_sd"])
    assert "pupils" in capsys.readouterr().out


def test_demo_writes_report(tmp_path):
    assert main(["demo", "--out", str(tmp_path), "--scale", "0.3", "--seed", "3"]) == 0
    assert (tmp_path / "report.html").exists()


def test_unknown_preset_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        main(["simulate", "london_challenge", "--out", str(tmp_path)])


# ---------------------------------------------------------------------- cpdimpact run / init
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "evaluation.toml"


def _small(text: str) -> str:
    """The example spec on a smaller simulated city (fast tests)."""
    assert "scale = 0.5\n" in text
    return text.replace("scale = 0.5\n", "scale = 0.2\n")


def test_help_documents_commands_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for text in ("run", "init", "demo", "exit codes", "2  usage or spec error", "3  data error"):
        assert text in out


def test_init_prints_the_bundled_example(capsys):
    assert main(["init"]) == 0
    assert capsys.readouterr().out == EXAMPLE_SPEC == EXAMPLE.read_text(encoding="utf-8")


def test_init_writes_a_file_and_refuses_to_overwrite(tmp_path, capsys):
    target = tmp_path / "evaluation.toml"
    assert main(["init", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == EXAMPLE_SPEC
    assert main(["init", str(target)]) == EXIT_SPEC
    assert "--force" in capsys.readouterr().err
    assert main(["init", str(target), "--force"]) == 0


def test_example_spec_maps_one_to_one_onto_the_python_spec():
    spec = load_spec(EXAMPLE)
    expected = Evaluation(
        cohort=CohortSpec(
            exposure="school",
            comparison="never_treated",
            standardise="comparison",
            covariates=("prior",),
        ),
        estimator=DiD(covariates=("prior",), cluster="school", inference=ClusterRobust("CR1")),
        event_study=EventStudy(covariates=("prior",)),
        level="pupil",
        subgroups=("fsm",),
        alpha=0.05,
        seed=2024,
        report=ReportOptions(
            title="City CPD partnership (simulated data)",
            programme="Whole-school professional development, 2021-2023",
            suppress_below=10,
            cost=ProgrammeCost(pupils=12_000, one_off=450_000, per_year=60_000),
            security=SecurityOptions(
                design="well-matched comparison",
                threats={"contamination": "low", "concurrent interventions": "moderate"},
            ),
        ),
    )
    assert spec.evaluation == expected
    assert spec.simulate == ("city_partnership", 2024, 0.5)
    assert spec.output == EXAMPLE.parent / "out" / "report"


def test_run_twice_gives_byte_identical_results_and_markdown(tmp_path, capsys):
    spec = tmp_path / "evaluation.toml"
    spec.write_text(_small(EXAMPLE_SPEC), encoding="utf-8")
    assert main(["run", str(spec), "--quiet"]) == 0
    first = {
        name: (tmp_path / "out" / "report" / name).read_bytes()
        for name in ("results.json", "report.md")
    }
    assert main(["run", str(spec), "--out", str(tmp_path / "again"), "--quiet"]) == 0
    for name, content in first.items():
        assert (tmp_path / "again" / name).read_bytes() == content
    assert (tmp_path / "out" / "report" / "report.html").exists()
    results = json.loads(first["results.json"])
    assert results["spec"]["estimator"]["kind"] == "DiD"
    assert "results.json" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore::cpdimpact.errors.FewClustersWarning")
def test_run_on_csv_files_with_a_column_mapping(tmp_path):
    records = city_partnership(seed=4, scale=0.2)
    data = tmp_path / "data"
    records.to_csv(data)
    pupils = pd.read_csv(data / "pupils.csv").rename(columns={"outcome": "ks2_maths"})
    pupils.to_csv(data / "pupils.csv", index=False)
    spec = tmp_path / "evaluation.toml"
    spec.write_text(
        """
[data]
pupils = "data/pupils.csv"
participation = "data/participation.csv"
schools = "data/schools.csv"
teachers = "data/teachers.csv"

[data.columns]
outcome = "ks2_maths"

[estimator]
kind = "did"

[evaluation]
seed = 1
event_study = "none"

[output]
dir = "out/report"
""",
        encoding="utf-8",
    )
    loaded = load_spec(spec)
    assert loaded.columns == {"outcome": "ks2_maths"}
    assert loaded.evaluation.event_study is None
    assert main(["run", str(spec), "--quiet"]) == 0
    results = json.loads((tmp_path / "out" / "report" / "results.json").read_text())
    direct = Evaluation(estimator=DiD(), event_study=None, seed=1).run(
        Records.from_csv(
            **{
                name: data / f"{name}.csv"
                for name in ("pupils", "participation", "schools", "teachers")
            },
            columns={"outcome": "ks2_maths"},
        )
    )
    assert results == json.loads(direct.to_json())


def test_staggered_estimator_takes_the_evaluation_seed():
    spec = load_spec_text(
        '[data]\nsimulate = "hub_rollout"\n[cohort]\ncomparison = "staggered"\n'
        '[estimator]\nkind = "staggered"\nn_bootstrap = 99\n[evaluation]\nseed = 7\n'
    )
    assert spec.evaluation.estimator == StaggeredDiD(n_bootstrap=99, seed=7)
    own = load_spec_text(
        '[data]\nsimulate = "hub_rollout"\n[estimator]\nkind = "staggered"\nseed = 3\n'
    )
    assert own.evaluation.estimator.seed == 3
    auto = load_spec_text('[data]\nsimulate = "hub_rollout"\n[estimator]\nkind = "auto"\n')
    assert auto.evaluation.estimator is None


def test_multilevel_and_mappings_are_read():
    spec = load_spec_text(
        '[data]\nsimulate = "city_partnership"\n'
        '[cohort]\nstandardise = "national"\nnational_sd = 10\nyears = [2018, 2023]\n'
        "[cohort.national_mean]\n2018 = 100\n2019 = 101.5\n"
        '[estimator]\nkind = "multilevel_did"\ngroups = ["school"]\nmethod = "ml"\n'
    )
    assert spec.evaluation.cohort.national_mean == {2018: 100.0, 2019: 101.5}
    assert spec.evaluation.cohort.national_sd == 10.0
    assert spec.evaluation.cohort.years == (2018, 2023)
    assert spec.evaluation.estimator == MultilevelDiD(groups=("school",), method="ml")


BASE = '[data]\nsimulate = "city_partnership"\n'


@pytest.mark.parametrize(
    ("text", "line", "fragments"),
    [
        (BASE + "[cohort]\ncovariate = ['prior']\n", 4, ["[cohort] covariate", "'covariates'"]),
        (BASE + "[cohort]\nexposure = 'pupil'\n", 4, ["[cohort] exposure", "'teacher'"]),
        (BASE + "[cohort]\nlag = 1.5\n", 4, ["[cohort] lag", "a whole number", "lag = 1"]),
        (BASE + "[cohort]\nyears = [2021, 2019]\n", 4, ["[cohort] years", "first <= last"]),
        (BASE + "[cohort]\nyears = [2021]\n", 4, ["[cohort] years", "array of 2"]),
        (BASE + "\n\n[evaluation]\nalpha = 1.5\n", 6, ["[evaluation] alpha", "between 0 and 1"]),
        (BASE + "[evaluation]\nalpha = '0.05'\n", 4, ["[evaluation] alpha", "a number"]),
        (BASE + "[evaluation]\nsubgroups = 'fsm'\n", 4, ["[evaluation] subgroups", "array"]),
        (BASE + "[evaluation]\nevent_study = 'no'\n", 4, ["event_study", "'none'"]),
        (BASE + "[estimator]\nkind = 'twfe'\n", 4, ["[estimator] kind", "'staggered'"]),
        (
            BASE + "[estimator]\nkind = 'did'\n# a comment\nmethod = 'dr'\n",
            6,
            ["[estimator] method", "unknown key"],
        ),
        (BASE + "[estimator]\ncluster = 'area'\n", 4, ["[estimator] cluster", "unknown key"]),
        (
            BASE + "[estimator]\nkind = 'staggered'\ncontrol_group = 'all'\n",
            5,
            ["control_group", "'not_yet_treated'"],
        ),
        (
            BASE + "[event_study]\nwindow = [-3, 2]\nrefrence = -1\n",
            5,
            ["[event_study] refrence", "'reference'"],
        ),
        (
            BASE + "[evaluation]\nevent_study = 'none'\n[event_study]\nreference = -2\n",
            4,
            ["contradicts", "Remove one"],
        ),
        (BASE + "[report]\nsuppress_below = true\n", 4, ["[report] suppress_below"]),
        (BASE + "[reprot]\ntitle = 'x'\n", 3, ["[reprot]", "'report'"]),
        (BASE + "[output]\nfolder = 'x'\n", 4, ["[output] folder", "Known keys: dir"]),
        (BASE + "scale = -1\n", 3, ["[data] scale", "positive"]),
        (BASE + "pupils = 'p.csv'\n", 3, ["[data] pupils", "CSV files only"]),
        ('[data]\nsimulate = "london"\n', 2, ["[data] simulate", "'hub_rollout'"]),
        ("[data]\npupils = 'p.csv'\n", 1, ["[data]", "participation is missing"]),
        ("[cohort]\nlag = 1\n", None, ["[data]", "missing"]),
        (BASE + "[data.columns]\noutcom = 'y'\n", 3, ["[data] columns", "CSV files only"]),
        (BASE + "seed = 2024x\n", 3, ["not valid TOML"]),
        (
            BASE + "  [ estimator ]  # indented\n  kind = 'multilevel_did'\n  groups = 'school'\n",
            5,
            ["[estimator] groups", "array"],
        ),
    ],
)
def test_spec_errors_name_key_line_and_fix(text, line, fragments):
    with pytest.raises(SpecError) as error:
        load_spec_text(text)
    message = str(error.value)
    assert error.value.line == line, message
    if line is not None:
        assert message.startswith(f"evaluation.toml:{line}: "), message
    for fragment in fragments:
        assert fragment in message, message


def test_column_mapping_errors(tmp_path):
    for name in ("pupils", "participation"):
        (tmp_path / f"{name}.csv").write_text("a\n1\n")
    text = "[data]\npupils = 'pupils.csv'\nparticipation = 'participation.csv'\n"
    with pytest.raises(SpecError, match=r"evaluation.toml:5: \[data.columns\] outcom: .*'outcome'"):
        load_spec_text(text + "[data.columns]\noutcom = 'y'\n", base=tmp_path)
    with pytest.raises(SpecError, match=r":5: \[data.columns\] outcome: expected a string"):
        load_spec_text(text + "[data.columns]\noutcome = 3\n", base=tmp_path)
    with pytest.raises(DataFileError, match=r":3: \[data\] participation: file not found"):
        load_spec_text(text.replace("participation.csv", "missing.csv"), base=tmp_path)


def _write(tmp_path, text: str) -> Path:
    spec = tmp_path / "evaluation.toml"
    spec.write_text(text, encoding="utf-8")
    return spec


def test_exit_codes(tmp_path, capsys, monkeypatch):
    spec = _write(tmp_path, BASE + "scale = 0.2\n[cohort]\ncovariate = ['prior']\n")
    assert main(["run", str(spec)]) == EXIT_SPEC
    assert f"{spec}:5: [cohort] covariate" in capsys.readouterr().err

    spec = _write(tmp_path, "[data]\npupils = 'p.csv'\nparticipation = 'q.csv'\n")
    assert main(["run", str(spec)]) == EXIT_DATA
    assert "file not found" in capsys.readouterr().err

    (tmp_path / "p.csv").write_text("pupil,school\n1,2\n")
    (tmp_path / "q.csv").write_text("school,year\n2,2020\n")
    assert main(["run", str(spec)]) == EXIT_DATA  # records fail validation
    assert "cpdimpact: error:" in capsys.readouterr().err

    spec = _write(tmp_path, BASE + "scale = 0.2\n[cohort]\nyears = [2030, 2031]\n")
    assert main(["run", str(spec)]) == EXIT_DATA  # nothing left to analyse

    spec = _write(tmp_path, BASE + "scale = 0.2\n")
    assert main(["run", str(spec), "--check"]) == EXIT_OK
    assert not (tmp_path / "report").exists()

    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    assert main(["run", str(spec), "--out", str(blocker / "report")]) == EXIT_OUTPUT

    def fail(self, records):
        raise EstimationError("singular design")

    monkeypatch.setattr(Evaluation, "run", fail)
    assert main(["run", str(spec)]) == EXIT_ESTIMATION
    assert "singular design" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "absent.toml")]) == EXIT_SPEC


def test_usage_errors_exit_with_2():
    with pytest.raises(SystemExit) as exit_:
        main(["run"])
    assert exit_.value.code == EXIT_SPEC


def test_docs_example_is_the_bundled_example():
    docs = (EXAMPLE.parent.parent / "docs" / "cli.md").read_text(encoding="utf-8")
    blocks = [b.split("```")[0] for b in docs.split("```toml\n")[1:]]
    example = next(b for b in blocks if b.startswith('[data]\nsimulate = "city_partnership"'))
    assert load_spec_text(example).evaluation == load_spec(EXAMPLE).evaluation


def test_staggered_bootstrap_rerun_is_byte_identical(tmp_path, capsys):
    spec = _write(
        tmp_path,
        '[data]\nsimulate = "hub_rollout"\nscale = 0.2\n[cohort]\ncomparison = "staggered"\n'
        '[estimator]\nkind = "staggered"\ncontrol_group = "not_yet_treated"\nn_bootstrap = 49\n'
        "[evaluation]\nseed = 5\n",
    )
    assert main(["run", str(spec), "--quiet", "--out", str(tmp_path / "a")]) == 0
    assert main(["run", str(spec), "--quiet", "--out", str(tmp_path / "b")]) == 0
    for name in ("results.json", "report.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results["estimator_used"]["seed"] == 5
    assert "no seed given" not in capsys.readouterr().err


def test_report_cost_and_security_tables():
    base = '[data]\nsimulate = "city_partnership"\n'
    spec = load_spec_text(
        base + "[report.cost]\npupils = 500\ntotal = 90000\n[report.security]\ndesign = 3\n"
        'final = 2\nreason = "volunteer schools"\n[report.security.threats]\n'
        'confounding = "high inflates"\n[evaluation]\ngaps = ["fsm", "sen"]\nprior_bands = 4\n'
    )
    report = spec.evaluation.report
    assert report.cost == ProgrammeCost(pupils=500, total=90_000)
    assert report.security == SecurityOptions(
        design=3, final=2, reason="volunteer schools", threats={"confounding": "high inflates"}
    )
    assert spec.evaluation.gaps == ("fsm", "sen") and spec.evaluation.prior_bands == 4
    with pytest.raises(SpecError, match=r"evaluation.toml:4: \[report.cost\] pupil: unknown key"):
        load_spec_text(base + "[report.cost]\npupil = 500\n")
    with pytest.raises(SpecError, match=r":5: \[report.security\] final: invalid value.*reason"):
        load_spec_text(base + '[report.security]\ndesign = "randomised"\nfinal = 4\n')
    with pytest.raises(SpecError, match=r"threats: expected a table of names to strings"):
        load_spec_text(base + '[report.security]\nthreats = "moderate"\n')
    with pytest.raises(SpecError, match=r"\[report\] cost: must be a table"):
        load_spec_text(base + "[report]\ncost = 500\n")


def test_a_column_mapping_written_the_wrong_way_round_suggests_the_reverse(tmp_path):
    for name in ("pupils", "participation"):
        (tmp_path / f"{name}.csv").write_text("a\n1\n")
    text = "[data]\npupils = 'pupils.csv'\nparticipation = 'participation.csv'\n"
    with pytest.raises(SpecError, match=r":5: \[data.columns\] URN: written the wrong way") as err:
        load_spec_text(text + "[data.columns]\nURN = 'school'\n", base=tmp_path)
    assert 'Write school = "URN"' in str(err.value)


MIS = Path(__file__).parent / "reference" / "mis"


def _mis_spec(tmp_path: Path, folder: str, reading: str) -> Path:
    from make_extract import COLUMNS  # tests/reference/mis, on sys.path via test_records_dfe

    tables = "\n".join(
        f'{t} = "{(MIS / folder / f"{t}.csv").as_posix()}"'
        for t in ("pupils", "participation", "schools", "teachers")
    )
    columns = "\n".join(f'{k} = "{v}"' for k, v in COLUMNS.items())
    spec = tmp_path / folder / "evaluation.toml"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(
        f"[data]\n{tables}\n{reading}\n[data.columns]\n{columns}\n\n"
        '[evaluation]\nseed = 1\n\n[output]\ndir = "out"\n',
        encoding="utf-8",
    )
    return spec


def test_run_reads_a_raw_mis_extract_with_format_dfe(tmp_path, monkeypatch):
    """The TOML [data] reading options reach Records.from_csv: the raw extract (academic years,
    Y/N, A and SUPP cells, day-first dates, cp1252) gives the clean twin's estimates, and the
    flow table counts the cells lost by marker."""
    monkeypatch.syspath_prepend(str(MIS))
    raw = _mis_spec(tmp_path, "extract", 'format = "dfe"\nna_values = { DNS = "did not sit" }\n')
    clean = _mis_spec(tmp_path, "clean", "")
    loaded = load_spec(raw)
    assert loaded.reading == {"format": "dfe", "na_values": {"DNS": "did not sit"}}
    assert main(["run", str(raw), "--quiet"]) == EXIT_OK
    assert main(["run", str(clean), "--quiet"]) == EXIT_OK
    got = json.loads((raw.parent / "out" / "results.json").read_text())
    want = json.loads((clean.parent / "out" / "results.json").read_text())
    got["cohort"].pop("exclusions"), want["cohort"].pop("exclusions")  # split by marker
    assert got == want
    report = (raw.parent / "out" / "report.md").read_text()
    assert "outcome missing: SUPP (suppressed" in report
    assert "outcome missing: A (absent" in report


@pytest.mark.parametrize(
    ("reading", "fragment"),
    [
        ('format = "csv"', "[data] format: unknown format 'csv'"),
        ("encoding = 1252", "[data] encoding: expected a string"),
        ("na_values = 3", "[data] na_values: expected"),
    ],
)
def test_reading_options_are_checked(tmp_path, reading, fragment):
    spec = _write(tmp_path, "[data]\npupils = 'p.csv'\nparticipation = 'q.csv'\n" + reading)
    (tmp_path / "p.csv").write_text("pupil,school\n1,2\n")
    (tmp_path / "q.csv").write_text("school,year\n2,2020\n")
    with pytest.raises(SpecError, match=re_escape(fragment)):
        load_spec(spec)


def test_reading_options_need_csv_files(tmp_path):
    with pytest.raises(SpecError, match="applies to CSV files only"):
        load_spec_text('[data]\nsimulate = "city_partnership"\nformat = "dfe"\n')
