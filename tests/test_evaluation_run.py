"""What flows through ``Evaluation.run``: the seed, alpha, warnings, and the user's own names."""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import make_tables, run_quietly
from cpdimpact import CohortSpec, DiD, Evaluation, EventStudy, Records
from cpdimpact.datasets import PRESETS
from cpdimpact.did import StaggeredDiD
from cpdimpact.errors import CpdImpactError, CpdImpactWarning, DesignError, FewClustersWarning
from cpdimpact.estimator import ClusterRobust
from cpdimpact.pipeline import SEED_STAGES, stage_seed


def _hub_records():
    from cpdimpact.datasets import hub_rollout

    return hub_rollout(seed=2, scale=0.04)


# ---------------------------------------------------------------------- seed
def _seeded_staggered(**kwargs) -> Evaluation:
    return Evaluation(
        cohort=CohortSpec(comparison="staggered"),
        estimator=StaggeredDiD(n_bootstrap=49, control_group="not_yet_treated", **kwargs),
        subgroups=(),
        gaps=(),
        prior_bands=0,
        seed=1,
    )


def test_seeded_staggered_bootstrap_is_reproducible():
    records = _hub_records()
    first = run_quietly(_seeded_staggered(), records)
    second = run_quietly(_seeded_staggered(), records)
    assert first.to_json() == second.to_json()
    assert first.estimator.seed == 1  # the headline estimator receives the seed itself
    assert first.groups[0].did.std_error == second.groups[0].did.std_error
    # and it is the seed that fixes the draws: another seed gives other bootstrap errors
    other = run_quietly(dataclasses.replace(_seeded_staggered(), seed=2), records)
    assert other.groups[0].did.std_error != first.groups[0].did.std_error


def test_an_estimators_own_seed_takes_precedence():
    records = _hub_records()
    result = run_quietly(_seeded_staggered(seed=99), records)
    assert result.estimator.seed == 99
    direct = (
        run_quietly(dataclasses.replace(_seeded_staggered(seed=99), seed=5), records).groups[0].did
    )
    assert direct.std_error == result.groups[0].did.std_error


def test_stage_seeds_are_fixed_per_stage():
    assert stage_seed(7, "estimator") == 7
    derived = {stage: stage_seed(7, stage) for stage in SEED_STAGES}
    assert len(set(derived.values())) == len(SEED_STAGES)
    child = np.random.SeedSequence(7).spawn(3)[SEED_STAGES["comparison"]]
    assert derived["comparison"] == int(child.generate_state(1, np.uint32)[0])


def test_random_order_matching_receives_a_seed():
    from cpdimpact.comparison import NearestMatching

    tables = make_tables(n_schools=20, n_treated=8, pupils_per_class=3)
    spec = Evaluation(
        estimator=DiD(),
        event_study=None,
        subgroups=(),
        gaps=(),
        prior_bands=0,
        comparison=NearestMatching(covariates=("level", "trend"), order="random"),
        seed=3,
    )
    first = run_quietly(spec, Records(**tables))
    second = run_quietly(spec, Records(**tables))
    assert first.to_json() == second.to_json()
    assert first.comparison.spec.seed == stage_seed(3, "comparison")
    assert spec.comparison.seed is None  # the user's spec is not modified
    own = dataclasses.replace(spec, comparison=dataclasses.replace(spec.comparison, seed=11))
    assert run_quietly(own, Records(**tables)).comparison.spec.seed == 11


# ---------------------------------------------------------------------- alpha
@pytest.mark.filterwarnings("ignore::cpdimpact.errors.FewClustersWarning")
def test_alpha_sets_every_interval_and_label(tmp_path):
    tables = make_tables(n_schools=12, n_treated=6)
    evaluation = Evaluation(alpha=0.10, prior_bands=2)
    result = run_quietly(evaluation, Records(**tables))
    pupils = result.cohort.pupils
    did = result.groups[0].did
    direct = DiD(alpha=0.10, inference=ClusterRobust("auto")).fit(pupils)
    assert (did.ci_lower, did.ci_upper) == pytest.approx((direct.ci_lower, direct.ci_upper))
    assert did.alpha == 0.10
    es = result.effect_size
    assert es.alpha == 0.10
    assert (es.ci_upper - es.ci_lower) == pytest.approx(
        (did.ci_upper - did.ci_lower) * es.estimate / did.estimate
    )
    coefs = result.event_study.coefficients
    direct_es = EventStudy(alpha=0.10, inference=ClusterRobust("auto")).fit(pupils).coefficients
    assert coefs["ci_lower"].to_numpy() == pytest.approx(direct_es["ci_lower"].to_numpy())
    assert all(g.alpha == 0.10 for g in result.gaps)
    assert all(g.effect_size.alpha == 0.10 for g in (*result.groups, *result.breakdown) if g.did)
    paths = result.save(tmp_path)
    summary = str(result.summary())
    md = paths["report.md"].read_text()
    assert "90% CI" in summary and "95%" not in summary
    assert "90%" in md and "95%" not in md
    assert "95%" not in paths["results.json"].read_text()


def test_alpha_reaches_the_staggered_aggregates():
    records = _hub_records()
    evaluation = Evaluation(
        cohort=CohortSpec(comparison="staggered"),
        estimator=StaggeredDiD(n_bootstrap=0, control_group="not_yet_treated"),
        alpha=0.10,
        subgroups=(),
        gaps=(),
        prior_bands=0,
    )
    result = run_quietly(evaluation, records)
    assert result.estimator.alpha == 0.10
    assert result.staggered.dynamic.alpha == 0.10
    md = result.report().to_markdown()
    assert "90%" in md and "95%" not in md
    # the staggered fit's own figure draws its pointwise intervals at the same level
    ax = result.groups[0].did.plot()
    segments = ax.containers[-1].lines[2][0].get_segments()
    pieces = result.staggered.pieces("dynamic")
    assert [s[0][1] for s in segments] == pytest.approx(pieces["ci_lower"].to_list())
    assert [s[1][1] for s in segments] == pytest.approx(pieces["ci_upper"].to_list())


def test_an_estimator_alpha_that_contradicts_the_evaluation_is_refused():
    tables = make_tables()
    with pytest.raises(DesignError, match=r"DiD\(alpha=0\.1\).*Evaluation\(alpha=0\.05\)"):
        Evaluation(estimator=DiD(alpha=0.10), alpha=0.05)
    with pytest.raises(DesignError, match=r"EventStudy\(alpha=0\.2\).*Evaluation\(alpha=0\.1\)"):
        Evaluation(event_study=EventStudy(alpha=0.2), alpha=0.1)
    # the same level given twice is no contradiction
    result = run_quietly(Evaluation(estimator=DiD(alpha=0.10), alpha=0.10), Records(**tables))
    assert result.groups[0].did.alpha == 0.10


# ---------------------------------------------------------------------- warnings
def _few_clusters() -> tuple[Evaluation, Records]:
    return Evaluation(prior_bands=3), Records(**make_tables(n_schools=8, n_treated=4))


def test_each_distinct_warning_is_issued_once_at_the_users_call():
    evaluation, records = _few_clusters()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluation.run(records)
    ours = [w for w in caught if issubclass(w.category, CpdImpactWarning)]
    counts = Counter((w.category, str(w.message)) for w in ours)
    assert counts[(FewClustersWarning, next(str(w.message) for w in ours))] == 1
    assert any(c is FewClustersWarning for c, _ in counts)
    assert max(counts.values()) == 1  # the stages raised it for every group; issued once
    assert {w.filename for w in ours} == {__file__}  # the line that called run
    assert [(w.category, w.message) for w in result.warnings] == list(counts)
    payload = json.loads(result.to_json())
    assert payload["warnings"] == [{"category": c.__name__, "message": m} for c, m in counts]


def test_recorded_warnings_do_not_depend_on_the_callers_filters():
    evaluation, records = _few_clusters()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", CpdImpactWarning)
        quiet = evaluation.run(records)
    assert not [w for w in caught if issubclass(w.category, CpdImpactWarning)]
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("default")
        first = evaluation.run(records)
        second = evaluation.run(records)  # the registry of the first run hides nothing
    assert quiet.warnings == first.warnings == second.warnings
    assert any(w.category is FewClustersWarning for w in quiet.warnings)
    assert quiet.to_json() == second.to_json()


def test_error_filter_still_turns_warnings_into_errors():
    evaluation, records = _few_clusters()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CpdImpactWarning)
        with pytest.raises(FewClustersWarning, match="clusters"):
            evaluation.run(records)


def test_pytest_warns_sees_the_warning_once(recwarn):
    evaluation, records = _few_clusters()
    evaluation.run(records)
    few = [w for w in recwarn.list if w.category is FewClustersWarning]
    assert len(few) == len({str(w.message) for w in few}) >= 1


def test_cli_prints_each_warning_once_as_plain_text(tmp_path, capsys):
    from cpdimpact.cli import main

    tables = make_tables(n_schools=8, n_treated=4)
    for name, frame in tables.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    spec = tmp_path / "evaluation.toml"
    spec.write_text(
        "[data]\n"
        + "".join(f'{name} = "{name}.csv"\n' for name in tables)
        + '[output]\ndir = "out"\n',
        encoding="utf-8",
    )
    assert main(["run", str(spec), "--quiet"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("cpdimpact: warning")]
    assert any("FewClustersWarning" in line for line in lines)
    assert len(lines) == len(set(lines))
    assert ".py:" not in err  # no library source line


# ---------------------------------------------------------------------- across machines
def test_demo_outputs_are_byte_identical_with_1_and_2_blas_threads(tmp_path):
    """The demo's results.json and report.md do not depend on the BLAS thread count.

    Nothing in them is time- or machine-dependent: no timestamp or path, and the only version
    is cpdimpact's own (``cpdimpact_version``), by design.
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    import cpdimpact

    example = Path(__file__).resolve().parent.parent / "examples" / "city_partnership.py"
    src = str(Path(cpdimpact.__file__).resolve().parent.parent)
    outputs = {}
    for threads in ("1", "2"):
        out = tmp_path / f"threads{threads}"
        env = {
            **os.environ,
            "OPENBLAS_NUM_THREADS": threads,
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "MPLBACKEND": "Agg",
            "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
        }
        subprocess.run(
            [sys.executable, str(example), "--out", str(out)],
            env=env,
            check=True,
            capture_output=True,
            timeout=600,
        )
        outputs[threads] = {n: (out / n).read_bytes() for n in ("results.json", "report.md")}
    for name in ("results.json", "report.md"):
        assert outputs["1"][name] == outputs["2"][name], name
        text = outputs["1"][name].decode()
        assert str(tmp_path) not in text
        assert "numpy" not in text.lower() and "pandas" not in text.lower()


# ---------------------------------------------------------------------- the user's names
_MAPPING = {"prior": "ks1", "outcome": "ks2", "school": "urn"}


def _renamed_tables(**kwargs):
    """make_tables with the user's own column names and row labels starting at 1000."""
    tables = make_tables(**kwargs)
    rename = {canonical: user for canonical, user in _MAPPING.items()}
    out = {name: frame.rename(columns=rename) for name, frame in tables.items()}
    out["pupils"].index = out["pupils"].index + 1000
    return out


def test_estimator_errors_name_the_users_columns_and_rows():
    from cpdimpact.errors import InvalidValueError
    from cpdimpact.evaluation.stages import fit_stage as _fit

    records = Records.from_frames(**_renamed_tables(), columns=_MAPPING)
    cohort = CohortSpec(covariates=("prior",)).build(records)
    # Row 7 of the cohort is row 1007 of the user's table; the estimator sees 'prior'.
    pupils = cohort.pupils.copy()
    pupils.loc[7, "prior"] = np.inf
    with pytest.raises(InvalidValueError) as info:
        _fit(DiD(covariates=("prior",)), pupils, cohort)
    message = str(info.value)
    assert "column 'ks1' (the covariate)" in message
    assert "row 1007 of the pupils table" in message
    assert "'prior'" not in message and "row 7" not in message
    assert isinstance(info.value.__cause__, InvalidValueError)  # the estimator's own error
    # unit-year means are named by their unit and year
    means = cohort.unit_years.copy()
    means.loc[0, "outcome"] = np.inf
    with pytest.raises(InvalidValueError, match=r"'ks2' \(the outcome\).*urn 1 in 2018"):
        _fit(DiD(), means, cohort)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # pandas, on the infinite value
def test_a_run_on_renamed_columns_names_them(tmp_path):
    tables = _renamed_tables(n_schools=8, n_treated=4)
    tables["pupils"].loc[1005, "ks1"] = np.inf
    before = tables["pupils"].copy()
    records = Records.from_frames(**tables, columns=_MAPPING)
    with pytest.raises(CpdImpactError) as info:
        run_quietly(Evaluation(estimator=DiD(covariates=("prior",))), records)
    message = str(info.value)
    assert "'ks1'" in message and "1005" in message
    assert "'prior'" not in message
    pd.testing.assert_frame_equal(tables["pupils"], before)


def test_warnings_and_caveats_name_the_users_columns():
    records = Records.from_frames(**_renamed_tables(n_schools=8, n_treated=4), columns=_MAPPING)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = Evaluation().run(records)
    few = [str(w.message) for w in caught if w.category is FewClustersWarning]
    assert few and all("'urn'" in m and "'school'" not in m for m in few)
    md = result.report().to_markdown()
    caveats = md.split("### Caveats")[1].split("\n## ")[0]
    assert "'urn'" in caveats and "'school'" not in caveats


def test_derived_columns_are_explained():
    from cpdimpact._user_names import user_message

    records = Records.from_frames(**_renamed_tables(), columns=_MAPPING)
    cohort = CohortSpec().build(records)
    text = user_message("column 'exposed' (the treatment) must be 0/1", cohort)
    assert "'exposed' (the cohort's exposure flag" in text
    assert "clusters of 'unit' (the cohort's unit: the school ('urn'))" in user_message(
        "clusters of 'unit'", cohort
    )


def test_a_spec_file_with_two_levels_is_a_spec_error():
    from cpdimpact.spec_file import SpecError, load_spec_text

    text = '[data]\nsimulate = "city_partnership"\n[estimator]\nkind = "did"\nalpha = 0.1\n'
    with pytest.raises(SpecError, match=r"\[evaluation\] alpha"):
        load_spec_text(text)
    assert load_spec_text(text.replace("[estimator]", "[evaluation]\nalpha = 0.1\n[estimator]"))


def test_estimator_errors_name_csv_lines_for_records_read_from_csv(tmp_path):
    # the same wording as Records.validate: a table read by from_csv is numbered by its lines
    from cpdimpact.errors import InvalidValueError
    from cpdimpact.evaluation.stages import fit_stage as _fit

    paths = {}
    for name, frame in _renamed_tables().items():
        if frame is not None:
            paths[name] = tmp_path / f"{name}.csv"
            frame.to_csv(paths[name], index=False)
    records = Records.from_csv(**paths, columns=_MAPPING)
    cohort = CohortSpec(covariates=("prior",)).build(records)
    pupils = cohort.pupils.copy()
    pupils.loc[7, "prior"] = np.inf
    line = int(records.pupils.index[cohort.pupils.index.get_loc(7)])
    with pytest.raises(InvalidValueError, match=rf"CSV line {line} of the pupils table"):
        _fit(DiD(covariates=("prior",)), pupils, cohort)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_default_runs_on_every_bundled_preset(preset, tmp_path):
    """Evaluation() with every default: a national roll-out (hub_rollout, every school takes
    part) compares each start cohort with the schools not yet started, and says so."""
    records = PRESETS[preset](seed=1, scale=0.04)
    result = run_quietly(Evaluation(), records)
    assert np.isfinite(result.effect_size.estimate)
    report = Path(result.save(tmp_path)["report.md"]).read_text(encoding="utf-8")
    roll_out = records.pupils["school"].isin(records.participation["school"]).all()
    assert ("Every school took part" in report) == roll_out
    assert result.cohort.spec.comparison == ("staggered" if roll_out else "never_treated")
