"""Evaluating from published figures (school or area means with their pupils), issue 13.

The published path must give the pupil path's answer where the algebra says it must, never
call the spread of school means a pupil-level SD, refuse school figures fed in as pupils, and
run on the real DfE files through ``Evaluation`` and ``cpdimpact run``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cpdimpact import Evaluation, PublishedRecords, Records
from cpdimpact._breakdown import sd_components
from cpdimpact.cli import main
from cpdimpact.cohort import CohortSpec
from cpdimpact.datasets import city_partnership, maths_challenge, published_from_pupils
from cpdimpact.dfe import read_performance_tables
from cpdimpact.did import DiD
from cpdimpact.errors import (
    AcademicYearError,
    CpdImpactWarning,
    DesignError,
    DuplicateRowsError,
    InvalidValueError,
    MissingColumnError,
    SchoolMeansError,
)
from cpdimpact.multilevel import MultilevelDiD

DFE = Path(__file__).parent / "reference" / "dfe"
KS2 = sorted(DFE.glob("*_ks2final.csv"))


def school_figures(records, *, suppress_below: int = 0) -> pd.DataFrame:
    """School-year means and counts of the pupils' outcome, all pupils and split by FSM, as
    DfE publishes them (a figure of fewer than ``suppress_below`` pupils suppressed, its
    count kept). Written here with pandas, independently of the code under test."""
    pupils = records.pupils

    def figures(rows, group):
        cells = rows.groupby(["school", "year"])["outcome"]
        out = pd.DataFrame({"outcome": cells.mean(), "pupils": cells.size()}).reset_index()
        return out.assign(group=group)

    table = pd.concat(
        [
            figures(pupils, "all"),
            figures(pupils[pupils["fsm"] == 1], "disadvantaged"),
            figures(pupils[pupils["fsm"] == 0], "not disadvantaged"),
        ],
        ignore_index=True,
    )
    small = table["pupils"] < suppress_below
    return table.assign(
        outcome=table["outcome"].mask(small),
        marker=np.where(small, "SUPP", None),
        reason=np.where(small, "suppressed: small cohort (disclosure control)", None),
    )


def published(records, **options) -> PublishedRecords:
    return PublishedRecords.from_frames(
        figures=school_figures(records, **options),
        participation=records.participation[["school", "start_year"]],
        schools=records.schools,
    )


def run(evaluation, records):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        return evaluation.run(records)


@pytest.fixture(scope="module")
def city():
    return city_partnership(seed=4, scale=0.4)


# ---------------------------------------------------------------------- the same answer
def test_figures_weighted_by_pupils_give_the_pupil_fixed_effects_estimate(city):
    """A DiD with school and year effects on school-year means weighted by their pupils is
    the pupil-level DiD (the regressors are constant within a school-year), and its
    cluster-robust meat is the same: only the small-sample factor (N pupils or N figures)
    differs."""
    pupils = run(Evaluation(estimator=DiD(), event_study=None), city)
    figures = run(Evaluation(estimator=DiD(), event_study=None), published(city))
    a, b = pupils.groups[0].did, figures.groups[0].did
    assert b.estimate == pytest.approx(a.estimate, rel=1e-9, abs=1e-9)
    assert b.std_error == pytest.approx(a.std_error, rel=0.01)
    # without suppression the disadvantaged figures are the FSM pupils' means
    fsm = {g.label: g.did for g in pupils.groups}["FSM pupils"]
    disadvantaged = {g.label: g.did for g in figures.groups}["Disadvantaged pupils"]
    assert disadvantaged.estimate == pytest.approx(fsm.estimate, rel=1e-9, abs=1e-9)
    assert figures.headline["pupils_treated"].iloc[0] == pupils.headline["pupils_treated"].iloc[0]


def test_staggered_panel_on_figures_is_weighted_by_pupils(city):
    """On published figures a staggered panel weights schools by their pupils (the default
    there), as the pupil path does when asked."""
    records = city_partnership(seed=2, scale=0.3)
    from cpdimpact.did import StaggeredDiD

    spec = dict(estimator=StaggeredDiD(), event_study=None, subgroups=(), gaps=())
    pupils = run(Evaluation(**spec, weighting="pupils", prior_bands=0), records)
    figures = run(Evaluation(**spec), published(records))
    assert figures.evaluation.weighting == "pupils"
    assert figures.groups[0].did.estimate == pytest.approx(
        pupils.groups[0].did.estimate, rel=1e-9, abs=1e-9
    )


# ---------------------------------------------------------------------- the wrong-SD trap
def test_school_means_fed_in_as_pupils_are_refused(city):
    figures = school_figures(city)
    means = figures[figures["group"] == "all"].assign(pupil=lambda f: np.arange(len(f)))
    records = Records.from_frames(
        pupils=means[["pupil", "school", "year", "outcome"]],
        participation=city.participation,
        schools=city.schools,
    )
    with pytest.raises(SchoolMeansError, match="one record per 'school' and 'year'") as info:
        Evaluation().run(records)
    assert "PublishedRecords" in str(info.value)


def test_no_pupil_sd_means_no_effect_size_anywhere(city, tmp_path):
    result = run(Evaluation(), published(city))
    assert not result.has_effect_size
    assert result.effect_size is None and all(g.effect_size is None for g in result.groups)
    assert np.isnan(result.effect_size_sd) and np.isnan(result.cohort.outcome_sd)
    assert "not that of pupils" in result.effect_size_sd_source
    assert result.headline["effect_size"].isna().all()
    assert result.headline["months"].isna().all()
    # the interval in points is the fit's
    head = result.headline.iloc[0]
    did = result.groups[0].did
    lower, upper = did.conf_int(0.05).iloc[0] if hasattr(did, "conf_int") else (None, None)
    assert (head["estimate_lower"], head["estimate_upper"]) == pytest.approx((lower, upper))
    # the faces answer in outcome units
    frame = result.to_frame()
    assert list(frame["units"].unique()) == ["points"]
    assert "effect size" in str(result.summary()) and "not computed" in str(result.summary())
    # the guard in the effect-size code: a spread of means is never a pupil-level SD
    with pytest.raises(DesignError, match="not a pupil-level SD"):
        sd_components(result.cohort.pupils)
    assert list(result.effect_size_variants["variant"]) == ["Outcome points (not standardised)"]
    paths = result.save(tmp_path)
    text = paths["report.md"].read_text()
    assert "There is no effect size and no months of progress" in text
    assert "Effect size (" not in text and "Months of progress |" not in text
    assert "pupil-level SD" not in text
    # the flow log counts figures, and says so
    assert "| Stage | Group | Schools | School-year figures |" in text
    assert result.cohort.flow.record == "school-year figure"
    payload = json.loads(paths["results.json"].read_text())
    assert payload["published_figures"]["level"] == "school"
    assert payload["estimates"]["All pupils"]["effect_size"] is None


def test_a_pupil_sd_given_with_its_source_gives_effect_sizes(city, tmp_path):
    sd = city.truth.outcome_sd
    spec = CohortSpec(pupil_sd=sd, pupil_sd_source="the simulation's true pupil-level SD")
    result = run(Evaluation(cohort=spec), published(city))
    assert result.has_effect_size
    did, es = result.groups[0].did, result.effect_size
    assert es.estimate == pytest.approx(did.estimate / sd)  # no Hedges factor without n
    assert result.effect_size_sd_source.endswith("the simulation's true pupil-level SD")
    text = result.save(tmp_path)["report.md"].read_text()
    assert "the simulation's true pupil-level SD" in text
    # d_W and d_T need pupils' scores: not offered on figures
    assert not result.effect_size_variants["variant"].str.startswith("d_").any()


# ---------------------------------------------------------------------- known truth
def _truth_run(seed: int):
    records = city_partnership(seed=seed, scale=0.3)
    spec = CohortSpec(pupil_sd=records.truth.outcome_sd, pupil_sd_source="true")
    evaluation = Evaluation(cohort=spec, estimator=DiD(), event_study=None, gaps=())
    as_dfe = PublishedRecords.from_frames(  # as DfE publishes them: SUPP for 5 or fewer
        figures=published_from_pupils(records),
        participation=records.participation[["school", "start_year"]],
        schools=records.schools,
    )
    figures = run(evaluation, as_dfe)
    pupils = run(evaluation, records)
    return records.truth, figures, pupils


@pytest.mark.parametrize(
    "n_seeds", [pytest.param(24, id="ci"), pytest.param(200, marks=pytest.mark.slow, id="slow")]
)
def test_published_path_covers_the_truth(n_seeds):
    """Published school-year means (small cells suppressed) estimate the programme's effect
    in outcome points: about 95% of intervals cover the true effect, and the estimate and
    the effect size (with the true pupil SD) agree with the pupil path's within a standard
    error."""
    covered, close, close_es = 0, 0, 0
    for seed in range(n_seeds):
        truth, figures, pupils = _truth_run(seed)
        head = figures.headline.iloc[0]
        covered += head["estimate_lower"] <= truth.att <= head["estimate_upper"]
        se = figures.groups[0].did.std_error
        close += abs(head["estimate"] - pupils.headline["estimate"].iloc[0]) < se
        close_es += abs(head["effect_size"] - pupils.headline["effect_size"].iloc[0]) < se / (
            truth.outcome_sd
        )
    # Monte Carlo bounds for 95% coverage: 3 binomial SDs
    floor = 0.95 - 3 * np.sqrt(0.95 * 0.05 / n_seeds)
    assert covered / n_seeds >= floor
    assert close == n_seeds and close_es == n_seeds


# ---------------------------------------------------------------------- real DfE files
@pytest.fixture(scope="module")
def ks2():
    return read_performance_tables(KS2)


def _real_participation(ks2) -> pd.DataFrame:
    """Every third school of LA 850 in the 2019 file starts in 2019 (a made-up programme
    on real schools)."""
    rows = ks2.data[(ks2.data["LEA"] == 850) & (ks2.data["year"] == 2019)]
    return pd.DataFrame(
        {"school": sorted(rows["URN"].dropna().astype(int))[::3], "start_year": 2019}
    )


def test_real_performance_tables_run_to_a_report(ks2, tmp_path):
    records = PublishedRecords.from_performance_tables(
        ks2, outcome="PTRWM_EXP", participation=_real_participation(ks2)
    )
    assert records.measure == "percentage" and records.groups == GROUPS
    lost = records.lost_figures
    assert (lost["marker"] == "SUPP").any()
    panel = ks2.panel("PTRWM_EXP", groups=True)
    assert lost["figures"].sum() == panel["outcome"].isna().sum()
    result = run(Evaluation(), records)
    assert result.outcome_units == "percentage points"
    cox = result.percentage_effect_sizes
    assert list(cox["group"]) == ["All pupils", "Disadvantaged pupils"]
    lower, est, upper = cox.loc[0, ["ci_lower", "effect_size", "ci_upper"]]
    assert lower < est < upper
    assert "odds ratio" in dict(result.summary().facts)
    paths = result.save(tmp_path)
    text = paths["report.md"].read_text()
    assert "no spread of pupils' results to divide by" in text
    assert "There is no effect size and no months" not in text
    assert "This evaluation used published figures" in text
    assert "percentage points in the percentage of pupils reaching the expected standard" in text
    assert "Cox's method" in text
    # every lost figure's reason is in the report's table
    assert "suppressed: small cohort (disclosure control)" in text


@pytest.mark.parametrize("written", ["2018/19", 201819, "01/09/2018", "2018-10-01"])
def test_starts_written_as_academic_years_or_dates_are_read_as_test_years(ks2, written):
    """A council's participation table says when the programme started, not which tests it
    could first affect: each way of writing an autumn-2018 start reads as test year 2019 and
    gives the answer of the table that wrote 2019."""
    base = _real_participation(ks2)
    as_given = PublishedRecords.from_performance_tables(
        ks2, outcome="PTRWM_EXP", participation=base
    )
    written_so = base.assign(start_year=written)
    records = PublishedRecords.from_performance_tables(
        ks2, outcome="PTRWM_EXP", participation=written_so
    )
    assert written_so["start_year"].eq(written).all()  # the user's table is untouched
    assert records.participation["start_year"].eq(2019).all()
    assert len(records.reading_notes) == 1 and "2019" in records.reading_notes[0]
    assert as_given.reading_notes == ()
    one, other = run(Evaluation(), as_given), run(Evaluation(), records)
    pd.testing.assert_frame_equal(one.headline, other.headline)
    pd.testing.assert_frame_equal(one.subgroup_effects, other.subgroup_effects)


def test_a_start_that_is_not_a_year_or_date_is_refused_naming_the_column(ks2):
    part = _real_participation(ks2).rename(columns={"start_year": "Start"})
    part["Start"] = part["Start"].astype(object)
    part.loc[2, "Start"] = "autumn term"
    with pytest.raises(AcademicYearError, match=r"'Start'.*'autumn term'.*row 2"):
        PublishedRecords.from_performance_tables(
            ks2, outcome="PTRWM_EXP", participation=part, columns={"start_year": "Start"}
        )


GROUPS = ("all", "disadvantaged", "not disadvantaged")


def run_spec(folder: Path) -> int:
    """``cpdimpact run`` on ``folder/evaluation.toml``; its exit code."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        return main(["run", str(folder / "evaluation.toml")])


def test_cli_runs_performance_tables_from_a_spec_file(ks2, tmp_path):
    _real_participation(ks2).to_csv(tmp_path / "participation.csv", index=False)
    tables = ", ".join(f'"{p.as_posix()}"' for p in KS2)
    (tmp_path / "evaluation.toml").write_text(
        f"""
[data]
performance_tables = [{tables}]
outcome = "READ_AVERAGE"
participation = "participation.csv"

[cohort]
pupil_sd = 6.5
pupil_sd_source = "an illustrative pupil-level SD"

[output]
dir = "report"
"""
    )
    assert run_spec(tmp_path) == 0
    payload = json.loads((tmp_path / "report" / "results.json").read_text())
    assert payload["published_figures"]["measure"] == "mean"
    assert payload["cohort"]["effect_size_sd_source"].endswith("an illustrative pupil-level SD")
    assert payload["estimates"]["All pupils"]["effect_size"] is not None


def test_spec_file_refuses_published_options_it_would_ignore(ks2, tmp_path):
    from cpdimpact.spec_file import SpecError, load_spec_text

    _real_participation(ks2).to_csv(tmp_path / "participation.csv", index=False)
    tables = ", ".join(f'"{p.as_posix()}"' for p in KS2)
    base = f'[data]\nperformance_tables = [{tables}]\noutcome = "PTRWM_EXP"\n'
    base += 'participation = "participation.csv"\n'
    with pytest.raises(SpecError, match="source: applies to figures only"):
        load_spec_text(base + 'source = "DfE"\n', base=tmp_path)
    with pytest.raises(SpecError, match="contradicts figures"):
        load_spec_text(base + 'figures = "participation.csv"\n', base=tmp_path)


def _area_figures(seed: int = 3):
    """Area means of the maths challenge's pupils (nine areas, one taking part)."""
    records = maths_challenge(seed=seed, scale=0.3)
    pupils = records.pupils.merge(records.schools[["school", "area"]], on="school")
    cells = pupils.groupby(["area", "year"])["outcome"]
    figures = pd.DataFrame({"outcome": cells.mean(), "pupils": cells.size()}).reset_index()
    part = records.participation
    treated = records.schools.loc[records.schools["school"].isin(part["school"]), "area"]
    participation = pd.DataFrame(
        {"area": sorted(treated.unique()), "start_year": part["start_year"].min()}
    )
    return figures, participation


def test_cli_runs_a_figures_file_of_areas(tmp_path):
    """Area figures (no school column) through a spec file: a programme in one area of
    nine (the maths challenge's), area means of its pupils."""
    figures, participation = _area_figures()
    figures.rename(columns={"outcome": "score", "pupils": "n"}).to_csv(
        tmp_path / "areas.csv", index=False
    )
    participation.to_csv(tmp_path / "participation.csv", index=False)
    (tmp_path / "evaluation.toml").write_text(
        """
[data]
figures = "areas.csv"
participation = "participation.csv"
outcome_label = "the average maths score"

[data.columns]
outcome = "score"
pupils = "n"

[estimator]
kind = "did"
"""
    )
    assert run_spec(tmp_path) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert "Areas (intervention; comparison)" in text
    assert "one area's figure for one year (the average maths score)" in text


def test_cli_runs_local_authority_statistics_with_synthetic_did(tmp_path):
    """150 local authorities' published percentages (LAIT shape, 2020-21 missing, suppressed
    cells written 'c') through `cpdimpact run`: synthetic DiD against the treated authority's
    statistical neighbours; no pupil SD, so the report is in percentage points."""
    from cpdimpact.datasets import la_statistics

    stats = la_statistics(seed=5, scale=0.3)
    figures = stats.figures["PTRWM_EXP"]
    text = figures["outcome"].map("{:.1f}".format).where(figures["outcome"].notna(), "c")
    figures.assign(outcome=text).drop(columns=["marker", "reason"]).to_csv(
        tmp_path / "la.csv", index=False
    )
    stats.participation.to_csv(tmp_path / "participation.csv", index=False)
    treated = stats.truth.treated_area
    neighbours = stats.neighbours.loc[stats.neighbours["area"] == treated, "neighbour"]
    pool = ", ".join(str(n) for n in neighbours)  # the donors: its statistical neighbours
    (tmp_path / "evaluation.toml").write_text(
        f"""
[data]
figures = "la.csv"
participation = "participation.csv"
measure = "percentage"

[estimator]
kind = "synthetic_did"
donor_pool = [{pool}]
"""
    )
    assert run_spec(tmp_path) == 0
    payload = json.loads((tmp_path / "report" / "results.json").read_text())
    assert payload["published_figures"]["level"] == "area"
    lost = payload["published_figures"]["lost_figures"]
    assert sum(r["figures"] for r in lost) == int(figures["outcome"].isna().sum())
    assert payload["headline"][0]["schools_comparison"] == len(neighbours)
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Effect in percentage points" in report
    assert "areas were left out of the comparison by the donor pool" in report


def test_synthetic_did_on_area_figures_through_evaluation(tmp_path):
    """SDID on area figures through Evaluation equals SDID fitted on the area panel."""
    from cpdimpact.comparison import SyntheticDiD

    figures, participation = _area_figures()
    records = PublishedRecords.from_frames(figures=figures, participation=participation)
    result = run(Evaluation(estimator=SyntheticDiD(), event_study=None), records)
    start = participation["start_year"].iloc[0]
    panel = figures.assign(
        treated=(figures["area"].isin(participation["area"]) & (figures["year"] >= start)).astype(
            int
        )
    )
    direct = SyntheticDiD().fit(panel)
    assert result.groups[0].did.estimate == pytest.approx(direct.estimate, rel=1e-9)
    text = result.save(tmp_path)["report.md"].read_text()
    assert "pupils in participating areas" in text.lower()
    assert "weighted average of comparison areas whose weights the method chooses" in text


# ---------------------------------------------------------------------- bad input
def _frames(city):
    return school_figures(city), city.participation[["school", "start_year"]]


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        (lambda f: f.drop(columns="outcome"), MissingColumnError, "'outcome'"),
        (lambda f: f.drop(columns="school"), MissingColumnError, "neither a 'school'"),
        (
            lambda f: f.assign(group=f["group"].replace("all", "everyone")),
            InvalidValueError,
            "'everyone'",
        ),
        (
            lambda f: pd.concat([f, f.iloc[:1]]),
            DuplicateRowsError,
            "one row per school, year and group",
        ),
        (lambda f: f.assign(pupils=-f["pupils"]), InvalidValueError, "not be negative"),
        (lambda f: f[f["group"] != "all"], InvalidValueError, "no 'all' rows"),
    ],
)
def test_bad_figures_are_refused_naming_the_column(city, change, error, words):
    figures, participation = _frames(city)
    records = PublishedRecords.from_frames(figures=change(figures), participation=participation)
    with pytest.raises(error, match=words):
        records.validate()


def test_percentages_are_checked(city):
    figures, participation = _frames(city)
    over = PublishedRecords.from_frames(
        figures=figures, participation=participation, measure="percentage"
    )
    with pytest.raises(InvalidValueError, match="over 100.*measure='mean'"):
        over.validate()
    shares = figures.assign(outcome=figures["outcome"] / 200)
    records = PublishedRecords.from_frames(
        figures=shares, participation=participation, measure="percentage"
    )
    with pytest.raises(InvalidValueError, match="look like shares"):
        records.validate()


def test_the_users_column_names_are_in_messages(city):
    figures, participation = _frames(city)
    figures = figures.rename(columns={"outcome": "KS2_RWM", "school": "URN"})
    records = PublishedRecords.from_frames(
        figures=figures.assign(KS2_RWM=figures["KS2_RWM"].where(figures.index != 3, np.inf)),
        participation=participation.rename(columns={"school": "URN"}),
        columns={"outcome": "KS2_RWM", "school": "URN"},
    )
    with pytest.raises(InvalidValueError, match="'KS2_RWM'.*infinite.*row 3"):
        records.validate()


@pytest.mark.parametrize(
    ("evaluation", "words"),
    [
        (Evaluation(estimator=MultilevelDiD()), "fitted on pupil records"),
        (Evaluation(subgroups=("sen",)), "split only into disadvantaged"),
        (Evaluation(cohort=CohortSpec(covariates=("prior",))), "pupil columns"),
        (Evaluation(cohort=CohortSpec(exposure="teacher")), "exposure='teacher'"),
    ],
)
def test_what_figures_cannot_support_is_refused(city, evaluation, words):
    with pytest.raises(DesignError, match=words):
        run(evaluation, published(city))


def test_inputs_are_not_modified(city):
    figures, participation = _frames(city)
    before = (figures.copy(), participation.copy())
    records = PublishedRecords.from_frames(figures=figures, participation=participation)
    run(Evaluation(), records)
    pd.testing.assert_frame_equal(figures, before[0])
    pd.testing.assert_frame_equal(participation, before[1])


def test_lost_figures_are_counted_in_the_flow_log(city):
    records = published(city, suppress_below=25)
    cohort = CohortSpec().build(records)
    lost = records.lost_figures
    suppressed_all = int(lost.loc[lost["group"] == "all", "figures"].sum())
    reasons = cohort.flow.exclusions.set_index("reason")["pupils"]
    assert reasons["outcome missing: SUPP (suppressed: small cohort (disclosure control))"] == (
        suppressed_all
    )
