"""Estimator-level guards (issue 15): bad input reaching an estimator directly is refused.

For every estimator where a class of bad input applies, the test asserts the error class, that
the message names the user's own column (and rows or units), and that the input frame was not
modified. The clean frames pass every estimator. The rules live in ``cpdimpact._guards``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpdimpact._guards import require_residual_variation, require_variation
from cpdimpact.comparison import (
    CoarsenedExactMatching,
    EntropyBalancing,
    MahalanobisMatching,
    NearestMatching,
    SyntheticControl,
    SyntheticDiD,
)
from cpdimpact.did import DiD, EventStudy, ImputationDiD, StaggeredDiD, SunAbraham
from cpdimpact.errors import (
    ConstantOutcomeError,
    EstimationError,
    ExactFitWarning,
    InconsistentTreatmentError,
    InvalidValueError,
    NonAbsorbingTreatmentError,
    StaggeredTimingWarning,
)
from cpdimpact.multilevel import (
    ClusterTrial,
    MultilevelDiD,
    MultilevelModel,
    MultisiteTrial,
    NestingError,
    SimpleTrial,
)

REF = Path(__file__).parent / "reference"

# User column names, deliberately not the library's defaults.
Y, UNIT, YEAR, START, D, ARM, X, W = "ks2_score", "urn", "yr", "start", "in_prog", "arm", "kp", "wt"


def _pupils(seed: int = 0, per_cell: int = 3) -> pd.DataFrame:
    """Pupil rows of 40 schools over 2015-2020: 10 start 2018, 10 start 2019, 20 never."""
    rng = np.random.default_rng(seed)
    units = np.arange(100, 140)
    years = np.arange(2015, 2021)
    start = np.where(units < 110, 2018, np.where(units < 120, 2019, 0))
    rows = pd.DataFrame(
        [
            (u, y, s)
            for u, s in zip(units, start, strict=True)
            for y in years
            for _ in range(per_cell)
        ],
        columns=[UNIT, YEAR, START],
    )
    rows["first_treated"] = rows[START]
    rows[ARM] = (rows[START] > 0).astype(int)
    rows[D] = ((rows[START] > 0) & (rows[YEAR] >= rows[START])).astype(int)
    rows[X] = rng.normal(size=len(rows))
    rows[W] = 1.0 + (rows[UNIT] % 3)
    school_fx = dict(zip(units, rng.normal(0, 1, units.size), strict=True))
    year_fx = dict(zip(years, rng.normal(0, 1, years.size), strict=True))
    rows[Y] = (
        100
        + rows[UNIT].map(school_fx)
        + rows[YEAR].map(year_fx)
        + 2.0 * rows[D]
        + 0.5 * rows[X]
        + rng.normal(0, 1, len(rows))
    )
    # Index labels the user would see (not 0..n-1), to check that messages use them.
    rows.index = pd.Index(np.arange(len(rows)) + 5000, name="row_id")
    return rows


def _areas(seed: int = 0) -> pd.DataFrame:
    """Area-by-year outcomes: 12 areas, 2010-2019, area a00 treated from 2017."""
    rng = np.random.default_rng(seed)
    areas = [f"a{i:02d}" for i in range(12)]
    years = np.arange(2010, 2020)
    y = (
        50
        + rng.normal(size=(12, 1)) * 3
        + rng.normal(size=(12, 2)) @ rng.normal(size=(10, 2)).cumsum(axis=0).T
    )
    frame = pd.DataFrame(
        {
            "la": np.repeat(areas, 10),
            YEAR: np.tile(years, 12),
            Y: y.ravel() + rng.normal(0, 0.5, 120),
        }
    )
    frame[D] = ((frame["la"] == "a00") & (frame[YEAR] >= 2017)).astype(int)
    frame.index = frame.index + 700
    return frame


def _schools(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 60
    frame = pd.DataFrame(
        {
            UNIT: np.arange(200, 200 + n),
            ARM: (np.arange(n) < 20).astype(int),
            "level": rng.normal(100, 5, n),
            "fsm_pct": rng.uniform(5, 40, n),
        }
    )
    frame.index = frame.index + 300
    return frame


# ------------------------------------------------------------------------- the estimators
# Each entry: name -> (factory of the fitted callable, frame maker, roles)
PANEL = {
    "DiD": lambda **kw: DiD(
        outcome=Y, unit=UNIT, time=YEAR, treatment=D, cluster=UNIT, covariates=(X,), **kw
    ),
    "EventStudy": lambda **kw: EventStudy(
        outcome=Y, unit=UNIT, time=YEAR, first_treated=START, cluster=UNIT, covariates=(X,), **kw
    ),
    "StaggeredDiD": lambda **kw: StaggeredDiD(
        outcome=Y,
        unit=UNIT,
        time=YEAR,
        first_treated=START,
        cluster=UNIT,
        panel=False,
        n_bootstrap=0,
        method="reg",
        covariates=(X,),
        **kw,
    ),
    "ImputationDiD": lambda **kw: ImputationDiD(
        outcome=Y, unit=UNIT, time=YEAR, first_treated=START, covariates=(X,), **kw
    ),
    "SunAbraham": lambda **kw: SunAbraham(
        outcome=Y, unit=UNIT, time=YEAR, first_treated=START, cluster=UNIT, covariates=(X,), **kw
    ),
    "MultilevelDiD": lambda **kw: MultilevelDiD(
        outcome=Y, treatment=D, arm=ARM, time=YEAR, groups=(UNIT,), covariates=(X,), **kw
    ),
}
TRIALS = {
    "SimpleTrial": lambda **kw: SimpleTrial(outcome=Y, treatment=ARM, covariates=(X,), **kw),
    "ClusterTrial": lambda **kw: ClusterTrial(
        outcome=Y, treatment=ARM, cluster=UNIT, covariates=(X,), **kw
    ),
    "MultisiteTrial": lambda **kw: MultisiteTrial(
        outcome=Y, treatment="pupil_arm", cluster=UNIT, covariates=(X,), **kw
    ),
    "MultilevelModel": lambda **kw: MultilevelModel(
        outcome=Y, covariates=(ARM, X), groups=(UNIT,), **kw
    ),
}
SYNTHETIC = {
    "SyntheticDiD": lambda: SyntheticDiD(unit="la", time=YEAR, outcome=Y, treatment=D),
    "SyntheticControl": lambda: SyntheticControl(unit="la", time=YEAR, outcome=Y, treatment=D),
}
MATCHING = {
    "NearestMatching": lambda: NearestMatching(
        covariates=("level", "fsm_pct"), treatment=ARM, unit=UNIT
    ),
    "MahalanobisMatching": lambda: MahalanobisMatching(
        covariates=("level", "fsm_pct"), treatment=ARM, unit=UNIT
    ),
    "CoarsenedExactMatching": lambda: CoarsenedExactMatching(
        covariates=("level", "fsm_pct"), treatment=ARM, unit=UNIT
    ),
    "EntropyBalancing": lambda: EntropyBalancing(
        covariates=("level", "fsm_pct"), treatment=ARM, unit=UNIT
    ),
}
WEIGHTED = ["DiD", "EventStudy", "StaggeredDiD", "ImputationDiD", "SunAbraham", "MultilevelDiD"]


def _trial_rows() -> pd.DataFrame:
    rows = _pupils(per_cell=4).query(f"{YEAR} == 2020").copy()
    rows["pupil_arm"] = np.tile([0, 1], len(rows) // 2)
    return rows


def _frame_for(name: str) -> pd.DataFrame:
    if name in SYNTHETIC:
        return _areas()
    if name in MATCHING:
        return _schools()
    if name in TRIALS:
        return _trial_rows()
    return _pupils()


def _spec(name: str, **kw):
    table = {**PANEL, **TRIALS, **SYNTHETIC, **MATCHING}
    return table[name](**kw)


def _fit_quiet(spec, frame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spec.fit(frame)


def _refused(spec, frame, error, *needles):
    """Fit, expect ``error`` naming every needle, and check that ``frame`` is unchanged."""
    before = frame.copy(deep=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error) as info:
            spec.fit(frame)
    message = str(info.value)
    for needle in needles:
        assert needle in message, (needle, message)
    pd.testing.assert_frame_equal(frame, before)
    return message


# ------------------------------------------------------------------------- clean data pass
@pytest.mark.parametrize("name", [*PANEL, *TRIALS, *SYNTHETIC, *MATCHING])
def test_clean_frames_pass_every_estimator(name):
    frame = _frame_for(name)
    before = frame.copy(deep=True)
    res = _fit_quiet(_spec(name), frame)
    assert res is not None
    pd.testing.assert_frame_equal(frame, before)


def test_reference_data_pass_the_guards():
    mpdta = pd.read_csv(REF / "mpdta" / "mpdta.csv")
    StaggeredDiD(
        outcome="lemp", unit="countyreal", time="year", first_treated="first_treat", n_bootstrap=0
    ).fit(mpdta)
    three = pd.read_csv(REF / "multilevel" / "three_level.csv")
    # Teacher ids restart within each school (1, 2, ...): nested by the pair, accepted.
    assert three.groupby("teacher")["school"].nunique().max() > 1
    MultilevelModel(outcome="y", covariates=("prior",), groups=("school", "teacher")).fit(three)
    four = pd.read_csv(REF / "multilevel" / "four_level.csv")
    MultilevelModel(outcome="y", covariates=("x",), groups=("area", "school", "teacher")).fit(four)


# ------------------------------------------------------------------- non-absorbing treatment
@pytest.mark.parametrize("name", ["DiD", "MultilevelDiD"])
def test_indicator_switching_off_is_refused(name):
    frame = _pupils()
    frame.loc[(frame[UNIT] == 104) & (frame[YEAR] == 2020), D] = 0
    message = _refused(_spec(name), frame, NonAbsorbingTreatmentError, f"'{D}'", "104", "absorbing")
    assert "treated from 2018, untreated in 2020" in message
    assert "row 50" in message or "rows 50" in message  # index labels, not positions


@pytest.mark.parametrize("name", list(SYNTHETIC))
def test_area_indicator_switching_off_is_refused(name):
    frame = _areas()
    frame.loc[(frame["la"] == "a00") & (frame[YEAR] == 2019), D] = 0
    _refused(_spec(name), frame, NonAbsorbingTreatmentError, f"'{D}'", "'a00'", "absorbing")


@pytest.mark.parametrize("name", ["EventStudy", "StaggeredDiD", "ImputationDiD", "SunAbraham"])
def test_start_changing_within_a_unit_is_refused(name):
    frame, spec = _pupils(), _spec(name)
    if name == "StaggeredDiD":  # on a panel of school-year means (repeated cross-sections
        # carry no unit: their unit column may be a row id within the year)
        frame = frame.groupby([UNIT, YEAR], as_index=False)[[START, Y, X]].mean()
        frame.index = frame.index + 9000
        spec = StaggeredDiD(
            outcome=Y, unit=UNIT, time=YEAR, first_treated=START, n_bootstrap=0, method="reg"
        )
    frame.loc[(frame[UNIT] == 112) & (frame[YEAR] >= 2020), START] = 0
    _refused(spec, frame, NonAbsorbingTreatmentError, f"'{START}'", "112", "absorbing")


@pytest.mark.parametrize("name", ["DiD", "MultilevelDiD"])
def test_indicator_disagreeing_with_first_treated_is_refused(name):
    frame = _pupils()
    # A never-treated school marked treated in its last year (it stays on: not a switch-off).
    frame.loc[(frame[UNIT] == 133) & (frame[YEAR] == 2020), D] = 1
    _refused(_spec(name), frame, InconsistentTreatmentError, f"'{D}'", "'first_treated'", "133")


def test_multilevel_did_accepts_exposure_finer_than_its_groups():
    # Exposure by teacher within schools: school 104's exposed teacher leaves after 2019; the
    # school still has (unexposed) pupils, so it did not switch off.
    frame = _pupils().drop(columns="first_treated")
    frame["teacher"] = frame[UNIT].astype(str) + "-" + (frame.index % 3).astype(str)
    mixed = (frame[UNIT] < 110) & (frame[YEAR] >= 2018) & frame["teacher"].str.endswith("-0")
    frame[D] = mixed.astype(int)
    frame.loc[(frame[UNIT] == 104) & (frame[YEAR] == 2020), D] = 0
    spec = MultilevelDiD(outcome=Y, treatment=D, arm=ARM, time=YEAR, groups=(UNIT,))
    assert np.isfinite(_fit_quiet(spec, frame).estimate)
    # With the teacher among the groups, the teacher is the unit and the switch-off is seen.
    spec = MultilevelDiD(outcome=Y, treatment=D, arm=ARM, time=YEAR, groups=(UNIT, "teacher"))
    _refused(spec, frame, NonAbsorbingTreatmentError, f"'{D}'", "'104-", "absorbing")


def test_exposure_outside_the_treated_arm_is_refused():
    frame = _pupils().drop(columns="first_treated")
    frame.loc[(frame[UNIT] == 133) & (frame[YEAR] == 2020), D] = 1
    _refused(_spec("MultilevelDiD"), frame, InconsistentTreatmentError, f"'{D}'", f"'{ARM}'")


# ------------------------------------------------------------------------ constant outcomes
@pytest.mark.parametrize("name", [*PANEL, *TRIALS, *SYNTHETIC])
@pytest.mark.parametrize("ulps", [0, 3])
def test_constant_outcome_is_refused(name, ulps):
    frame = _frame_for(name)
    # The same value, or the same value to a few units in the last place (a mean computed in
    # another order): both are constant; the decision does not hang on the last bit.
    value = np.full(len(frame), 61.3)
    for _ in range(ulps):
        value[::2] = np.nextafter(value[::2], np.inf)
    frame[Y] = value
    _refused(_spec(name), frame, ConstantOutcomeError, f"'{Y}'")


def test_outcome_constant_in_the_rows_used_is_refused():
    frame = _pupils()
    frame[Y] = 61.3
    # Only units treated from the first period (dropped by StaggeredDiD) vary.
    extra = _pupils().query(f"{UNIT} < 104").assign(**{UNIT: lambda d: d[UNIT] + 900})
    extra[START] = extra["first_treated"] = 2015
    extra[D] = 1
    extra.index = extra.index + 100_000
    frame = pd.concat([frame, extra])
    message = _refused(_spec("StaggeredDiD"), frame, ConstantOutcomeError, f"'{Y}'")
    assert "in the rows used" in message


@pytest.mark.parametrize("name", ["DiD", "EventStudy", "SunAbraham", "ImputationDiD"])
def test_outcome_explained_by_the_fixed_effects_is_refused(name):
    # Varies between schools and years but not within: estimate and SE would be noise.
    frame = _pupils()
    frame[Y] = 100 + 0.37 * (frame[UNIT] - 100) + 1.9 * (frame[YEAR] - 2015)
    _refused(_spec(name), frame, ConstantOutcomeError, f"'{Y}'")


def test_outcome_constant_within_schools_is_refused_by_the_multilevel_model():
    frame = _trial_rows()
    frame[Y] = 50 + (frame[UNIT] % 7) * 1.3  # school means copied to every pupil
    _refused(_spec("MultilevelModel"), frame, ConstantOutcomeError, f"'{Y}'", f"'{UNIT}'")


@pytest.mark.parametrize("name", ["SimpleTrial", "ClusterTrial", "MultilevelModel"])
def test_outcome_explained_exactly_by_the_covariates_is_refused(name):
    frame = _trial_rows()
    frame[Y] = 40 + 3 * frame[X]
    _refused(_spec(name), frame, ConstantOutcomeError, f"'{Y}'", "explained exactly")


def test_exact_fit_with_a_real_effect_warns_once():
    frame = _pupils()
    frame[Y] = 100 + 0.37 * (frame[UNIT] - 100) + 1.9 * (frame[YEAR] - 2015) + 2.0 * frame[D]
    with pytest.warns(ExactFitWarning, match=f"'{Y}'") as record:
        res = DiD(outcome=Y, unit=UNIT, time=YEAR, treatment=D, cluster=UNIT).fit(frame)
    assert sum(issubclass(r.category, ExactFitWarning) for r in record) == 1
    assert res.estimate == pytest.approx(2.0, abs=1e-9)
    assert any("rounding noise" in n for n in res.notes)


def test_variation_decision_is_scale_aware_and_stable():
    # Tiny but real variation on a tiny scale is variation; a few ulps on a large scale is not.
    require_variation(np.array([1e-12, 2e-12, 3e-12]), "y")
    with pytest.raises(ConstantOutcomeError):
        require_variation(np.array([1e6, np.nextafter(1e6, 2e6), 1e6]), "y")
    with pytest.raises(ConstantOutcomeError, match="'y'"):
        require_variation(np.array([0.0, 0.0]), "y")
    # A standard error of rounding noise with a real estimate warns; with a noise estimate it
    # is refused; a real standard error passes whatever the outcome's magnitude.
    y = 1e9 + np.arange(50.0)
    assert require_residual_variation([0.3], [0.01], y, "y", explained_by="x") is None
    with pytest.warns(ExactFitWarning):
        require_residual_variation([2.0], [1e-13], y, "y", explained_by="x")
    with pytest.raises(ConstantOutcomeError):
        require_residual_variation([1e-14], [1e-13], y, "y", explained_by="x")


# --------------------------------------------------------------- infinite and negative values
INFINITE_CASES = [(name, column) for name in [*PANEL, *TRIALS] for column in (Y, X)]


@pytest.mark.parametrize(("name", "column"), INFINITE_CASES)
@pytest.mark.parametrize("sign", [1, -1])
def test_infinite_outcome_or_covariate_is_refused(name, column, sign):
    frame = _frame_for(name)
    label = frame.index[7]
    frame.loc[label, column] = sign * np.inf
    _refused(_spec(name), frame, InvalidValueError, f"'{column}'", "infinite", str(label))


@pytest.mark.parametrize("name", list(SYNTHETIC))
def test_infinite_area_outcome_is_refused(name):
    frame = _areas()
    frame.loc[710, Y] = np.inf
    _refused(_spec(name), frame, InvalidValueError, f"'{Y}'", "infinite", "710")


@pytest.mark.parametrize("name", list(MATCHING))
def test_infinite_covariate_is_refused_by_matching(name):
    frame = _schools()
    frame.loc[305, "fsm_pct"] = np.inf
    _refused(_spec(name), frame, InvalidValueError, "'fsm_pct'", "infinite", "305")


@pytest.mark.parametrize(
    ("name", "error"),
    [("NearestMatching", EstimationError), ("EntropyBalancing", InvalidValueError)],
)
def test_constant_covariate_is_refused_by_matching(name, error):
    # (Mahalanobis matching leaves a constant covariate out and CEM gives it one stratum, as
    # MatchIt does: it cannot tell schools apart, so the matched sample is unchanged.)
    _refused(_spec(name), _schools().assign(fsm_pct=12.5), error, "fsm_pct", "constant")


@pytest.mark.parametrize("name", WEIGHTED)
@pytest.mark.parametrize("bad", [-1.0, np.inf, np.nan])
def test_bad_weights_are_refused(name, bad):
    frame = _pupils()
    frame.loc[frame[UNIT] == 121, W] = bad  # the whole unit: weights constant within units
    _refused(_spec(name, weights=W), frame, InvalidValueError, f"'{W}'")


@pytest.mark.parametrize("name", ["SimpleTrial", "ClusterTrial", "MultilevelModel"])
@pytest.mark.parametrize("bad", [-1.0, np.inf])
def test_bad_trial_weights_are_refused(name, bad):
    frame = _trial_rows()
    frame.loc[frame.index[3], W] = bad
    _refused(_spec(name, weights=W), frame, InvalidValueError, f"'{W}'", str(frame.index[3]))


# ---------------------------------------------------------------------- multilevel nesting
def _nested_pupils() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = []
    for trust in range(6):
        for s in range(5):
            school = 1000 + 10 * trust + s
            for t in range(3):
                teacher = f"T{school}-{t}"  # globally unique teacher ids
                for _ in range(6):
                    rows.append((f"TR{trust}", school, teacher, t + 1))
    frame = pd.DataFrame(rows, columns=["trust", "school", "teacher", "teacher_no"])
    frame[Y] = (
        rng.normal(size=len(frame))
        + frame["school"].map(dict(zip(frame["school"].unique(), rng.normal(size=30), strict=True)))
        + frame["teacher"].map(
            dict(zip(frame["teacher"].unique(), rng.normal(size=90), strict=True))
        )
        * 0.5
    )
    return frame


@pytest.mark.parametrize(
    ("groups", "order"),
    [
        (("teacher", "school"), ("school", "teacher")),
        (("school", "trust"), ("trust", "school")),
        (("trust", "teacher", "school"), ("trust", "school", "teacher")),
    ],
)
def test_groups_given_inner_first_are_refused(groups, order):
    frame = _nested_pupils()
    message = _refused(
        MultilevelModel(outcome=Y, groups=groups), frame, NestingError, "inner-first"
    )
    assert f"groups={order}" in message
    for column in groups:
        assert f"'{column}'" in message


def test_inner_first_with_a_few_moved_schools_is_refused():
    frame = _nested_pupils()
    moved = frame["school"] == 1002
    frame.loc[moved & (frame.index % 2 == 0), "trust"] = "TR5"  # one school in two trusts
    _refused(
        MultilevelModel(outcome=Y, groups=("school", "trust")),
        frame,
        NestingError,
        "groups=('trust', 'school')",
    )


def test_level_duplicating_its_parent_is_refused():
    frame = _nested_pupils().assign(school_name=lambda d: "S" + d["school"].astype(str))
    _refused(
        MultilevelModel(outcome=Y, groups=("school", "school_name")),
        frame,
        NestingError,
        "'school_name' names the same groups as 'school'",
    )


def test_properly_nested_groups_pass_with_unique_or_restarting_ids():
    frame = _nested_pupils()
    for groups in (("school", "teacher"), ("school", "teacher_no"), ("trust", "school", "teacher")):
        res = _fit_quiet(MultilevelModel(outcome=Y, groups=groups), frame)
        assert list(res.n_groups.index) == list(groups)


def test_multilevel_did_checks_the_order_of_its_groups():
    frame = _pupils()
    frame["teacher"] = frame[UNIT].astype(str) + "-" + (frame.index % 2).astype(str)
    spec = MultilevelDiD(outcome=Y, treatment=D, arm=ARM, time=YEAR, groups=("teacher", UNIT))
    _refused(spec, frame, NestingError, f"groups=('{UNIT}', 'teacher')")


# ------------------------------------------------------- other fits that "succeeded" silently
@pytest.mark.parametrize("name", ["EventStudy", "StaggeredDiD", "ImputationDiD", "SunAbraham"])
def test_negative_first_treated_period_is_refused(name):
    # A negative start used to be neither treated nor never treated: its rows fell silently.
    frame = _pupils()
    frame.loc[frame[UNIT] == 120, START] = -2019
    message = _refused(_spec(name), frame, InvalidValueError, f"'{START}'", "negative")
    assert "5360" in message  # the first row of school 120, as the user numbers it


def test_staggered_with_a_single_cluster_is_refused():
    frame = _pupils().assign(la="Leeds")
    spec = StaggeredDiD(
        outcome=Y, unit=UNIT, time=YEAR, first_treated=START, cluster="la", panel=False
    )
    _refused(spec, frame, EstimationError, "'la'", "at least 2 clusters")


def test_did_warns_about_treated_units_without_a_pre_period():
    frame = _pupils()
    frame = frame[~((frame[UNIT] < 103) & (frame[YEAR] < 2018))]
    spec = DiD(outcome=Y, unit=UNIT, time=YEAR, treatment=D, cluster=UNIT)
    with pytest.warns(
        StaggeredTimingWarning,
        match=f"3 treated units have no untreated period.*column '{UNIT}': 100, 101, 102",
    ):
        res = spec.fit(frame)
    assert any("no untreated period" in n for n in res.notes)


# ------------------------------------------------------------- property: corrupt any cell
_BASE = _pupils()


@settings(max_examples=30, deadline=None)
@given(
    position=st.integers(0, len(_BASE) - 1),
    column=st.sampled_from([Y, X, W]),
    value=st.sampled_from([np.inf, -np.inf, np.nan]),
    name=st.sampled_from(["DiD", "ImputationDiD"]),
)
def test_property_any_non_finite_cell_is_named(position, column, value, name):
    frame = _BASE.copy()
    label = frame.index[position]
    frame.loc[label, column] = value
    _refused(_spec(name, weights=W), frame, InvalidValueError, f"'{column}'", str(label))


@settings(max_examples=30, deadline=None)
@given(unit=st.integers(100, 119), data=st.data())
def test_property_any_switch_off_is_named(unit, data):
    frame = _BASE.copy()
    start = int(frame.loc[frame[UNIT] == unit, START].iloc[0])
    year = data.draw(st.integers(start + 1, 2020))
    frame.loc[(frame[UNIT] == unit) & (frame[YEAR] == year), D] = 0
    message = _refused(_spec("DiD"), frame, NonAbsorbingTreatmentError, f"'{D}'")
    assert f"{unit} (treated from {start}, untreated in {year})" in message
