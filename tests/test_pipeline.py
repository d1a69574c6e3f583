"""The evaluation pipeline end to end: truth recovery, reproducibility, outputs and faces."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import make_tables, run_quietly
from cpdimpact import CohortSpec, DiD, Evaluation, EventStudy, Records, ReportOptions
from cpdimpact.datasets import city_partnership
from cpdimpact.errors import (
    CpdImpactError,
    CpdImpactWarning,
    FewClustersWarning,
    InvalidValueError,
    SmallSampleWarning,
)
from cpdimpact.estimator import ClusterRobust

COVARIATES = ("prior",)


def _evaluation(**kwargs) -> Evaluation:
    return Evaluation(
        estimator=DiD(covariates=COVARIATES),
        event_study=kwargs.pop("event_study", EventStudy(covariates=COVARIATES)),
        **kwargs,
    )


def _coverage_study(seeds, scale, exposure="school"):
    """Effect sizes and intervals of the pipeline against the simulated truth, per seed."""
    evaluation = _evaluation(event_study=None, cohort=CohortSpec(exposure=exposure), prior_bands=0)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        for seed in seeds:
            records = city_partnership(seed=seed, scale=scale, exposure=exposure)
            result = evaluation.run(records)
            truth = records.truth
            (gap,) = result.gaps
            estimates = [(g.label, g.effect_size) for g in (*result.groups, *result.breakdown)] + [
                (gap.label, gap)
            ]
            truths = (
                truth.effect_size,
                truth.effect_size_fsm,
                truth.effect_size_non_fsm,
                truth.effect_size_fsm - truth.effect_size_non_fsm,
            )
            for (label, es), value in zip(estimates, truths, strict=True):
                rows.append(
                    {
                        "seed": seed,
                        "group": label,
                        "z": (es.estimate - value) / es.std_error,
                        "covered": es.ci_lower <= value <= es.ci_upper,
                    }
                )
    return pd.DataFrame(rows)


def _check_calibration(study: pd.DataFrame) -> None:
    for group, rows in study.groupby("group"):
        n = len(rows)
        # With 95% intervals, P(at most 80% of n=20 cover) is about 1.6%: a real failure signal.
        min_covered = int(np.floor(0.8 * n))
        assert rows["covered"].sum() >= min_covered, (group, rows["covered"].mean())
        # Standardised errors average zero when the estimator is unbiased (3 Monte Carlo SEs).
        z = rows["z"]
        assert abs(z.mean()) < 3 * z.std(ddof=1) / np.sqrt(n), (group, z.mean())


def test_recovers_simulated_truth_over_seeds():
    study = _coverage_study(range(100, 120), scale=0.25)
    assert set(study["group"]) == {"All pupils", "FSM pupils", "Non-FSM pupils", "FSM gap"}
    _check_calibration(study)


def test_recovers_simulated_truth_with_teacher_level_exposure():
    # Only pupils taught by a participating teacher benefit; units are (school, teacher) pairs,
    # clustered by school.
    study = _coverage_study(range(200, 220), scale=0.4, exposure="teacher")
    _check_calibration(study)


@pytest.mark.slow
def test_recovers_simulated_truth_full_size():
    study = _coverage_study(range(1000, 1200), scale=1.0)
    _check_calibration(study)
    for _, rows in study.groupby("group"):
        # 200 replications: the binomial 99% band around 0.95 is about [0.91, 0.985].
        assert 0.91 <= rows["covered"].mean() <= 0.99


def test_demo_report_covers_truth():
    records = city_partnership(seed=2024)
    result = _evaluation(seed=2024).run(records)
    head = result.headline.set_index("group")
    truth = records.truth
    for group, value in (("All pupils", truth.effect_size), ("FSM pupils", truth.effect_size_fsm)):
        assert head.loc[group, "ci_lower"] <= value <= head.loc[group, "ci_upper"]
    assert head.loc["All pupils", "schools_treated"] == 80
    assert head.loc["All pupils", "schools_comparison"] == 80


@pytest.fixture(scope="module")
def small_result():
    records = city_partnership(seed=7, scale=0.3)
    return records, _evaluation(seed=7).run(records)


def test_save_writes_report_files(small_result, tmp_path):
    _, result = small_result
    paths = result.save(tmp_path)
    assert {"report.html", "report.md", "report.docx", "results.json"} <= set(paths)
    assert (tmp_path / "figures" / "event_study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "figures" / "trends.png").exists()
    md = (tmp_path / "report.md").read_text()
    assert md.index("Headline findings") < md.index("Event study") < md.index("Attainment trends")
    assert md.index("Attainment trends") < md.index("Balance") < md.index("Flow of schools")
    assert "| FSM pupils |" in md
    html = (tmp_path / "report.html").read_text()
    assert "data:image/svg+xml;base64," in html
    assert "http://" not in html and "https://" not in html
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["cpdimpact_version"] == result.version
    assert payload["seed"] == 7
    assert payload["data_fingerprint"] == small_result[0].fingerprint()
    assert payload["spec"]["kind"] == "Evaluation"
    assert payload["spec"]["estimator"]["kind"] == "DiD"
    assert [row["group"] for row in payload["headline"]] == ["All pupils", "FSM pupils"]


def test_outputs_are_byte_identical_for_the_same_input(tmp_path):
    records = city_partnership(seed=11, scale=0.25)
    # The same records with every table's rows shuffled: the same input, in another order.
    shuffled = Records(
        pupils=records.pupils.sample(frac=1, random_state=1),
        participation=records.participation.sample(frac=1, random_state=2),
        schools=records.schools.sample(frac=1, random_state=3),
        teachers=records.teachers.sample(frac=1, random_state=4),
    )
    evaluation = _evaluation(seed=11)
    first = evaluation.run(records).save(tmp_path / "a")
    second = evaluation.run(records).save(tmp_path / "b")
    third = evaluation.run(shuffled).save(tmp_path / "c")
    for name in ("results.json", "report.md"):
        assert first[name].read_bytes() == second[name].read_bytes()
        assert first[name].read_bytes() == third[name].read_bytes()


def test_pipeline_never_modifies_inputs():
    tables = make_tables(pupils_per_class=4)
    before = {name: frame.copy(deep=True) for name, frame in tables.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        _evaluation().run(Records(**tables))
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(frame, before[name])


def test_estimator_covariates_join_the_cohort_and_are_counted():
    tables = make_tables(n_schools=10, n_treated=5)
    tables["pupils"].loc[[0, 1, 2], "prior"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        result = _evaluation().run(Records(**tables))
    excl = result.cohort.flow.exclusions
    assert excl.loc[excl["reason"] == "prior missing", "pupils"].item() == 3
    assert result.groups[0].did.n_obs == len(tables["pupils"]) - 3


def test_unit_year_level_uses_weighted_means(small_result):
    records, pupil_level = small_result
    result = _evaluation(level="unit_year").run(records)
    did = result.groups[0].did
    assert did.n_obs == len(result.cohort.unit_years)
    assert did.weights == result.event_study.weights == "n_pupils"
    # Means and pupil records estimate the same effect; they differ only by weighting.
    assert abs(did.estimate - pupil_level.groups[0].did.estimate) < 3 * did.std_error


def test_unknown_subgroup_column(small_result):
    records, _ = small_result
    with pytest.raises(CpdImpactError, match="subgroup column 'pupil_premium'"):
        _evaluation(subgroups=("pupil_premium",)).run(records)


def test_faces(small_result):
    _, result = small_result
    frame = result.to_frame()
    # "estimate" means outcome units in every table of the result (issue 16): here the effect
    # size says what it is
    assert list(frame.columns) == [
        "term",
        "effect_size",
        "effect_size_se",
        "statistic",
        "p_value",
        "ci_lower",
        "ci_upper",
    ]
    assert list(frame["term"]) == ["All pupils", "FSM pupils"]
    text = str(result.summary())
    assert "effect size" in text and "pre-trend" in text
    np.testing.assert_allclose(frame["effect_size"], result.headline["effect_size"], rtol=1e-12)
    # a repr a notebook can show: a line, not the cohort's tables
    assert len(repr(result)) < 300 and repr(result).startswith("EvaluationResult(DiD, ")
    assert len(repr(result.cohort)) < 300 and "records=" in repr(result.cohort)
    assert "<table>" in result._repr_html_()
    wide, narrow = result.conf_int(0.01), result.conf_int(0.10)
    assert (wide["ci_lower"] < narrow["ci_lower"]).all()
    assert result.plot() is not None
    assert result.effect_size is result.groups[0].effect_size


def test_small_number_suppression_in_report(small_result, tmp_path):
    records, _ = small_result
    result = _evaluation(report=ReportOptions(suppress_below=1000)).run(records)
    md = result.report().to_markdown()
    headline = md.split("## Design")[0]
    assert "<1000" in headline


def test_spec_is_frozen_and_validated():
    evaluation = Evaluation()
    with pytest.raises(AttributeError):
        evaluation.level = "unit_year"  # type: ignore[misc]
    with pytest.raises(ValueError, match="level"):
        Evaluation(level="school")
    assert Evaluation(subgroups="fsm").subgroups == ("fsm",)
    spec = Evaluation(cohort=CohortSpec(lag=1)).to_dict()
    assert spec["cohort"]["kind"] == "CohortSpec"
    assert spec["cohort"]["lag"] == 1


def test_estimation_warnings_reach_the_report():
    tables = make_tables(n_schools=8, n_treated=4)
    with pytest.warns(CpdImpactWarning, match="clusters"):
        result = _evaluation().run(Records(**tables))
    md = result.report().to_markdown()
    caveats = md.split("### Caveats")[1].split("## ")[0]
    assert "8 clusters" in caveats or "only 8" in caveats


@settings(max_examples=15, deadline=None)
@given(
    a=st.floats(min_value=0.05, max_value=20),
    b=st.floats(min_value=-200, max_value=200),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_effect_sizes_invariant_to_linear_rescaling_of_the_outcome(a, b, seed):
    tables = make_tables(n_schools=10, n_treated=5, seed=seed, pupils_per_class=3)
    rescaled = dict(
        tables, pupils=tables["pupils"].assign(outcome=a * tables["pupils"]["outcome"] + b)
    )
    evaluation = _evaluation(event_study=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        original = evaluation.run(Records(**tables)).to_frame()
        transformed = evaluation.run(Records(**rescaled)).to_frame()
    columns = ["effect_size", "effect_size_se", "ci_lower", "ci_upper", "p_value"]
    pd.testing.assert_frame_equal(original[columns], transformed[columns], rtol=1e-7, atol=1e-10)


def test_a_subgroup_that_cannot_be_estimated_does_not_sink_the_headline():
    tables = make_tables(n_schools=10, n_treated=5)
    pupils = tables["pupils"]
    # SEN pupils of treated schools appear only once the programme runs: within that subgroup
    # the treatment is constant within every treated school, so it is not identified.
    treated_school = pupils["school"] <= 5
    tables["pupils"] = pupils.assign(
        sen=np.where(treated_school, (pupils["year"] >= 2020).astype(int), pupils["sen"])
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        with pytest.warns(SmallSampleWarning, match="SEN pupils: not estimated"):
            result = _evaluation(subgroups=("fsm", "sen")).run(Records(**tables))
    head = result.headline.set_index("group")
    assert np.isfinite(head.loc["All pupils", "effect_size"])
    assert np.isnan(head.loc["SEN pupils", "effect_size"])
    assert list(result.to_frame()["term"]) == ["All pupils", "FSM pupils"]
    md = result.report().to_markdown()
    assert "| SEN pupils | not estimated |" in md
    assert "SEN pupils: not estimated" in md.split("### Caveats")[1]


def test_subgroup_column_must_be_binary(small_result):
    records, _ = small_result
    pupils = records.pupils.assign(band=np.where(records.pupils["prior"] > 0, "high", "low"))
    relabelled = Records(
        pupils=pupils, participation=records.participation, schools=records.schools
    )
    with pytest.raises(InvalidValueError, match=r"subgroup column 'band' must be 0/1.*'high'"):
        _evaluation(subgroups=("band",)).run(relabelled)


# ---------------------------------------------------------------------- staggered roll-outs
def _hub_records():
    from cpdimpact.datasets import hub_rollout

    return hub_rollout(seed=2, scale=0.04)


def _staggered(**kwargs) -> Evaluation:
    return Evaluation(cohort=CohortSpec(comparison="staggered"), seed=1, **kwargs)


@pytest.fixture(scope="module")
def hub_result():
    records = _hub_records()
    return records, run_quietly(_staggered(), records)


def _section(md: str, heading: str) -> str:
    return md.split(heading, 1)[1].split("\n## ", 1)[0]


def test_staggered_headline_has_no_twfe_event_study_by_default(hub_result):
    _, result = hub_result
    assert type(result.estimator).__name__ == "StaggeredDiD"
    assert result.event_study is None
    fit = result.groups[0].did
    detail = result.staggered
    for kind in ("dynamic", "group", "calendar"):
        expected = fit.aggregate(kind)
        assert getattr(detail, kind).estimate == pytest.approx(expected.estimate)
        pd.testing.assert_frame_equal(getattr(detail, kind).pieces, expected.pieces)
    assert detail.pretrend.statistic == pytest.approx(fit.pretrend.statistic)
    assert detail.uniform_bands
    # Explicit None means the same for a staggered headline: the dynamic aggregate stays.
    none = run_quietly(_staggered(event_study=None), hub_result[0])
    assert none.event_study is None
    assert none.report().to_markdown() == result.report().to_markdown()


def test_staggered_pieces_carry_pointwise_intervals_and_uniform_bands(hub_result):
    _, result = hub_result
    detail = result.staggered
    pieces = detail.pieces("dynamic")
    assert list(pieces.columns) == [
        "event_time",
        "estimate",
        "std_error",
        "ci_lower",
        "ci_upper",
        "band_lower",
        "band_upper",
    ]
    z = 1.959963984540054
    np.testing.assert_allclose(pieces["ci_lower"], pieces["estimate"] - z * pieces["std_error"])
    np.testing.assert_allclose(pieces["ci_upper"], pieces["estimate"] + z * pieces["std_error"])
    # The uniform band covers all event times at once, so it is at least as wide.
    assert (pieces["band_lower"] <= pieces["ci_lower"] + 1e-12).all()
    assert (pieces["band_upper"] >= pieces["ci_upper"] - 1e-12).all()
    assert (
        pieces["band_upper"] - pieces["band_lower"] > pieces["ci_upper"] - pieces["ci_lower"]
    ).any()


def test_staggered_report_sections(hub_result):
    _, result = hub_result
    md = result.report().to_markdown()
    assert md.count("## Event study") == 1
    event = _section(md, "## Event study")
    assert "Callaway & Sant'Anna" in event
    assert "uniform band" in event
    assert "| Event time | Estimate | SE | CI lower | CI upper | Uniform band lower |" in event
    pre = result.staggered.pretrend
    assert (
        f"p = {pre.p_value:.3f} (Wald chi-squared statistic {pre.statistic:.2f} on {pre.df} "
        "degrees of freedom)"
    ) in event
    assert "### Effects by start cohort and by year" in event
    assert "| Start cohort | Estimate |" in event and "| Year | Estimate |" in event
    assert "All cohorts (weighted by cohort size)" in event
    # TWFE appears once, as a labelled comparison row, never as an event study.
    comparison = event.split("### Comparison with two-way fixed effects")[1]
    twfe = result.staggered.twfe
    label = (
        "Two-way fixed effects, for comparison: biased when effects differ between cohorts or "
        "grow with exposure"
    )
    assert f"| {label} | {twfe.estimate:.3f} | {twfe.std_error:.3f} |" in comparison
    headline = result.groups[0].did
    assert f"the headline | {headline.estimate:.3f} | {headline.std_error:.3f} |" in comparison
    assert "Event-study coefficients" not in md
    assert "relative to the start is the reference" not in md
    # The headline counts the arms of the estimate and names the schools and years behind it.
    assert "| Pupils (treated; comparison) |" in md
    assert "Every school took part, so none is never treated" in _section(md, "## Headline")
    assert "| 2019 | " in _section(md, "## Design") and "| 2021 | " in _section(md, "## Design")
    balance = _section(md, "## Balance before the programme")
    assert "earliest cohort (started 2019) against later cohort (started 2021)" in balance
    assert "| Earliest cohort mean | Later cohort mean |" in balance
    assert "—" not in balance.split("*Note:*")[0].split("| ---")[-1]  # every cell filled


def test_twfe_comparison_is_did_on_the_same_unit_year_means(hub_result):
    _, result = hub_result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        by_hand = DiD(cluster="unit").fit(result.cohort.unit_years)
    twfe = result.staggered.twfe
    assert twfe.estimate == pytest.approx(by_hand.estimate, rel=1e-12)
    assert twfe.std_error == pytest.approx(by_hand.std_error, rel=1e-12)
    assert twfe.n_units == result.groups[0].did.n_units
    assert twfe.weights is None


def test_staggered_results_json(hub_result, tmp_path):
    _, result = hub_result
    payload = json.loads(result.save(tmp_path)["results.json"].read_text())
    assert "event_study" not in payload  # no TWFE event study posing as the event study
    block = payload["staggered"]
    assert set(block) == {
        "dynamic",
        "group",
        "calendar",
        "pretrend",
        "uniform_bands",
        "comparison_twfe",
        "arms_behind",
    }
    fit = result.groups[0].did
    for kind, key in (("dynamic", "event_time"), ("group", "group"), ("calendar", "time")):
        expected = fit.aggregate(kind)
        assert block[kind]["estimate"] == pytest.approx(expected.estimate, rel=1e-7)
        assert [p[key] for p in block[kind]["pieces"]] == expected.pieces[key].tolist()
        np.testing.assert_allclose(
            [p["band_upper"] for p in block[kind]["pieces"]],
            expected.pieces["band_upper"],
            rtol=1e-7,
        )
    assert block["pretrend"]["df"] == fit.pretrend.df
    twfe = block["comparison_twfe"]
    assert twfe["label"].startswith("Two-way fixed effects, for comparison: biased")
    assert twfe["did"][0]["estimate"] == pytest.approx(result.staggered.twfe.estimate, rel=1e-7)
    assert twfe["n_clusters"] == result.staggered.twfe.n_clusters
    assert payload["spec"]["event_study"] == "auto"


def test_staggered_outputs_are_byte_identical_for_the_same_input(tmp_path):
    records = _hub_records()
    shuffled = Records(
        pupils=records.pupils.sample(frac=1, random_state=1),
        participation=records.participation.sample(frac=1, random_state=2),
        schools=records.schools.sample(frac=1, random_state=3),
        teachers=records.teachers.sample(frac=1, random_state=4),
    )
    evaluation = _staggered()
    first = run_quietly(evaluation, records).save(tmp_path / "a")
    second = run_quietly(evaluation, records).save(tmp_path / "b")
    third = run_quietly(evaluation, shuffled).save(tmp_path / "c")
    for name in ("results.json", "report.md"):
        assert first[name].read_bytes() == second[name].read_bytes()
        assert first[name].read_bytes() == third[name].read_bytes()


@pytest.fixture(scope="module")
def two_cohorts_and_never():
    """A staggered design with a never-treated arm: starts in 2020 and 2022."""
    return city_partnership(seed=1, scale=0.3, start_years={"City": (2020, 2022)})


def test_an_explicit_twfe_event_study_is_only_a_comparison(two_cohorts_and_never):
    records = two_cohorts_and_never
    default = run_quietly(_staggered(), records)
    result = run_quietly(_staggered(event_study=EventStudy()), records)
    assert result.event_study is not None and default.event_study is None
    md = result.report().to_markdown()
    event = _section(md, "## Event study")
    # Still the staggered event study, and one figure of it.
    assert "| Event time | Estimate | SE | CI lower | CI upper | Uniform band lower |" in event
    assert [f.name for f in result.report().figures if "event" in f.name] == ["event_study"]
    caption = (
        "**Two-way fixed effects, for comparison: biased when effects differ between cohorts "
        "or grow with exposure. Event study"
    )
    assert caption in event.split("### Comparison with two-way fixed effects")[1]
    assert "Event-study coefficients" not in md
    # Its staggered-timing warning is the label, not a caveat of the headline.
    assert any("staggered" in n.lower() for n in result.event_study.notes)
    assert _section(md, "## Design") == _section(default.report().to_markdown(), "## Design")
    payload = result.to_json_dict()
    assert "event_study" not in payload
    coefficients = payload["staggered"]["comparison_twfe"]["event_study"]["coefficients"]
    assert len(coefficients) == len(result.event_study.coefficients)


def test_a_twfe_event_study_that_cannot_be_fitted_does_not_sink_a_staggered_headline(
    hub_result,
):
    # Without never-treated units, TWFE cannot separate event time from calendar time.
    records, _ = hub_result
    result = run_quietly(_staggered(event_study=EventStudy()), records)
    assert result.event_study is None
    note = result.staggered.twfe_event_study_note
    assert note.startswith("The two-way fixed-effects event study could not be fitted")
    comparison = result.report().to_markdown().split("### Comparison with two-way fixed")[1]
    assert note.split(":")[0] in comparison
    assert result.to_json_dict()["staggered"]["comparison_twfe"]["event_study_note"] == note


def test_staggered_summary_and_plot(hub_result):
    _, result = hub_result
    text = str(result.summary())
    assert "Wald chi2(" in text
    assert "TWFE, for comparison only" in text
    ax = result.plot()
    pieces = result.staggered.pieces("dynamic")
    # One shaded uniform band per event time, behind the pointwise error bars.
    assert len(ax.patches) == len(pieces)
    heights = sorted(round(p.get_height(), 9) for p in ax.patches)
    assert heights == sorted(round(h, 9) for h in pieces["band_upper"] - pieces["band_lower"])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["95% uniform band (all event times at once)", "estimate, pointwise 95% CI"]


def test_staggered_without_bootstrap_shows_no_uniform_band(hub_result):
    from cpdimpact.did import StaggeredDiD

    records, _ = hub_result
    result = run_quietly(
        _staggered(estimator=StaggeredDiD(control_group="not_yet_treated", n_bootstrap=0)),
        records,
    )
    detail = result.staggered
    assert not detail.uniform_bands
    assert detail.pieces("dynamic")[["band_lower", "band_upper"]].isna().all().all()
    event = _section(result.report().to_markdown(), "## Event study")
    assert "| Event time | Estimate | SE | CI lower | CI upper |\n" in event
    assert "uniform" not in event
    assert len(result.plot().patches) == 0
    pieces = result.to_json_dict()["staggered"]["dynamic"]["pieces"]
    assert all(p["band_lower"] is None and p["band_upper"] is None for p in pieces)


def test_staggered_design_with_a_never_treated_arm(two_cohorts_and_never):
    result = run_quietly(_staggered(), two_cohorts_and_never)
    assert result.estimator.control_group == "never_treated"
    assert result.cohort.balance_groups == ("intervention", "comparison")
    md = result.report().to_markdown()
    assert "| never took part |" in _section(md, "## Design")
    assert "none is never treated" not in md
    assert "Intervention mean" in _section(md, "## Balance before the programme")
    assert sorted(result.staggered.pieces("group")["group"]) == [2020, 2022]


def test_auto_event_study_is_the_twfe_one_for_a_single_start(small_result):
    records, _ = small_result
    auto = Evaluation(seed=7).run(records)
    explicit = Evaluation(event_study=EventStudy(inference=ClusterRobust("auto")), seed=7).run(
        records
    )
    assert auto.staggered is None and auto.event_study is not None
    assert auto.report().to_markdown() == explicit.report().to_markdown()
    assert "event_study" in auto.to_json_dict()
    skipped = Evaluation(event_study=None, seed=7).run(records)
    assert skipped.event_study is None and "## Event study" not in skipped.report().to_markdown()


def test_event_study_option_is_validated():
    with pytest.raises(ValueError, match="event_study must be an EventStudy, 'auto' or None"):
        Evaluation(event_study="twfe")
