"""Say exactly what was estimated (issue 15, item 6): the schools and years behind a staggered
estimate by arm, group-time cells without comparison units, the estimand's weighting, the
dip check under area shocks and the default inference with few treated clusters."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from cpdimpact import CohortSpec, Evaluation
from cpdimpact.did import DiD, StaggeredDiD
from cpdimpact.errors import CpdImpactWarning, DesignError, SmallSampleWarning
from cpdimpact.pipeline import arms_behind


def _rollout_panel(seed: int = 0) -> pd.DataFrame:
    """Schools 0-3 start in 3, schools 4-9 in 5, none never: periods 1-6, sizes that vary."""
    rng = np.random.default_rng(seed)
    rows = []
    for unit in range(10):
        first = 3 if unit < 4 else 5
        for t in range(1, 7):
            effect = 1.0 if t >= first else 0.0
            n = int(rng.integers(10, 60))
            y = 0.3 * unit + 0.2 * t + effect * (1 + unit / 10) + rng.normal(0, 0.1)
            rows.append((unit, 100 + unit, t, first, n, y))
    frame = pd.DataFrame(
        rows, columns=["unit", "school", "year", "first_treated", "n_pupils", "outcome"]
    )
    frame.index = frame.index + 1000  # labels that are not positions
    return frame


# ---------------------------------------------------------------------- (b) cells, no controls
def test_cells_without_comparison_units_are_counted_and_named():
    data = _rollout_panel()
    before = data.copy()
    with pytest.warns(SmallSampleWarning, match=r"have no comparison units") as caught:
        fit = StaggeredDiD(control_group="not_yet_treated", n_bootstrap=0).fit(data)
    pd.testing.assert_frame_equal(data, before)
    # Cohort 3 from period 5 on and cohort 5 from period 3 on have no unit left untreated.
    missing = ["ATT(3,5)", "ATT(3,6)", "ATT(5,3)", "ATT(5,4)", "ATT(5,5)", "ATT(5,6)"]
    note = next(n for n in fit.notes if "no comparison units" in n)
    assert note.startswith(f"{len(missing)} group-time effects have no comparison units")
    assert ", ".join(missing) in note
    assert str(caught[0].message) == note
    estimated = set(zip(fit.group_time["group"], fit.group_time["time"], strict=True))
    assert estimated == {(3, 2), (3, 3), (3, 4), (5, 2)}
    assert note in fit.summary().notes


def test_long_lists_of_cells_say_how_many_more():
    from cpdimpact.did.staggered import _uncompared_note

    labels = [f"ATT(5,{t})" for t in range(10)]
    note = _uncompared_note(labels, "not_yet_treated")
    assert note.startswith("10 group-time effects") and note.count("ATT(") == 6
    assert "and 4 more" in note


# ---------------------------------------------------------------------- (a) arms of the estimate
def test_rows_behind_the_estimate_by_arm():
    data = _rollout_panel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        fit = StaggeredDiD(control_group="not_yet_treated", n_bootstrap=0).fit(data)
    used = fit.rows_behind
    # Post cells (3,3) and (3,4) share the base period 2: cohort 3 against cohort 5 in 2-4.
    in_years = data["year"].isin([2, 3, 4]).to_numpy()
    expected_treated = in_years & (data["first_treated"] == 3).to_numpy()
    expected_comparison = in_years & (data["first_treated"] == 5).to_numpy()
    treated = np.zeros(len(data), dtype=bool)
    comparison = np.zeros(len(data), dtype=bool)
    treated[used.index[used["treated"]]] = True
    comparison[used.index[used["comparison"]]] = True
    np.testing.assert_array_equal(treated, expected_treated)
    np.testing.assert_array_equal(comparison, expected_comparison)

    arms = arms_behind(fit, data)
    assert arms.loc["treated", "schools"] == 4 and arms.loc["comparison", "schools"] == 6
    assert arms.loc["treated", "school_years"] == 12
    assert arms.loc["comparison", "school_years"] == 18
    assert arms.loc["treated", "pupils"] == data.loc[expected_treated, "n_pupils"].sum()
    assert arms.loc["comparison", "pupils"] == data.loc[expected_comparison, "n_pupils"].sum()
    assert (arms["first_year"] == 2).all() and (arms["last_year"] == 4).all()


def test_a_late_starter_serves_both_arms():
    data = _rollout_panel()
    data.loc[data["unit"] >= 7, "first_treated"] = 0  # three never-treated schools
    data.loc[data["unit"].isin([4, 5, 6]), "first_treated"] = 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        fit = StaggeredDiD(control_group="not_yet_treated", n_bootstrap=0).fit(data)
    arms = arms_behind(fit, data)
    # Cohort 4 is treated in its own cells and a control of cohort 3 in period 3.
    assert arms.loc["treated", "schools"] == 7
    assert arms.loc["comparison", "schools"] == 6


@pytest.fixture(scope="module")
def hub():
    from cpdimpact.datasets import hub_rollout

    records = hub_rollout(seed=2, scale=0.04)
    evaluation = Evaluation(
        cohort=CohortSpec(comparison="staggered"),
        estimator=StaggeredDiD(control_group="not_yet_treated", n_bootstrap=0, cluster="area"),
        seed=1,
        subgroups=(),
        gaps=(),
        prior_bands=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        return records, evaluation, evaluation.run(records)


def test_staggered_headline_names_the_schools_and_years_behind_the_estimate(hub, tmp_path):
    _, _, result = hub
    uy = result.cohort.unit_years
    pilots = uy[uy["first_treated"] == 2019]
    later = uy[uy["first_treated"] == 2021]
    head = result.headline.set_index("group").loc["All pupils"]
    # Only the pilot cohort has cells after its start (2019, 2020 against base 2018); every
    # later school is its comparison in 2018-2020 (before: "N treated, 0 comparison").
    assert head["schools_treated"] == pilots["school"].nunique()
    assert head["schools_comparison"] == later["school"].nunique() > 0
    years = [2018, 2019, 2020]
    assert head["pupils_treated"] == pilots.loc[pilots["year"].isin(years), "n_pupils"].sum()
    assert head["pupils_comparison"] == later.loc[later["year"].isin(years), "n_pupils"].sum()

    note = result.staggered.arms_note
    assert "schools starting in 2019" in note and "not-yet-treated" in note
    assert f"{pilots['school'].nunique()} schools in 2018-2020" in note
    assert "Start cohort 2021 has no estimated effect after the start" in note
    md = result.report().to_markdown()
    headline = md.split("## Design")[0]
    assert "| Pupils (treated; comparison) | Schools (treated; comparison) |" in headline
    assert note.replace("_", "\\_") in headline or note in headline
    payload = json.loads(result.to_json())
    assert payload["staggered"]["arms_behind"] == note
    assert payload["headline"][0]["schools_comparison"] == head["schools_comparison"]


def test_arms_note_suppresses_small_counts():
    from cpdimpact.pipeline import arms_behind_text

    data = _rollout_panel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        fit = StaggeredDiD(control_group="not_yet_treated", n_bootstrap=0).fit(data)
    text = arms_behind_text(fit, arms_behind(fit, data), threshold=10)
    assert "<10 schools in 2-4 (12 school-years" in text
    assert "4 schools" not in text and "6 schools" not in text


# ---------------------------------------------------------------------- (c) weighting
def test_weighting_is_stated_and_pupils_weighting_is_the_weighted_panel(hub):
    records, evaluation, schools = hub
    assert schools.estimand_weighting.startswith("schools: every school counts equally")
    assert "Whose average effect: schools" in schools.report().to_markdown()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        pupils = evaluation.__class__(**{**evaluation.__dict__, "weighting": "pupils"}).run(records)
    assert pupils.estimand_weighting.startswith("pupils: each school is weighted")
    assert json.loads(pupils.to_json())["estimand_weighting"] == pupils.estimand_weighting
    # By hand: each school's weight is its mean pupil records per year.
    uy = schools.cohort.unit_years
    by_hand = uy.assign(w=uy.groupby("unit")["n_pupils"].transform("mean"))
    spec = StaggeredDiD(control_group="not_yet_treated", n_bootstrap=0, cluster="area", weights="w")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        expected = spec.fit(by_hand)
    fit = pupils.groups[0].did
    assert fit.estimate == pytest.approx(expected.estimate, rel=1e-12)
    assert fit.std_error == pytest.approx(expected.std_error, rel=1e-12)
    assert fit.estimate != pytest.approx(schools.groups[0].did.estimate, rel=1e-6)
    # One cell by hand: pupil-weighted mean changes, base 2018, pilots against later starters.
    wide = by_hand.pivot(index="unit", columns="year", values="outcome")
    w = by_hand.groupby("unit")["w"].first()
    first = by_hand.groupby("unit")["first_treated"].first()
    change = wide[2019] - wide[2018]
    g, c = first == 2019, first == 2021
    cell = (w[g] @ change[g]) / w[g].sum() - (w[c] @ change[c]) / w[c].sum()
    got = fit.group_time.set_index(["group", "time"]).loc[(2019, 2019), "estimate"]
    assert not any("unbalanced" in n for n in fit.notes)  # cells are panel differences
    assert got == pytest.approx(cell, rel=1e-10)


def test_weighting_schools_needs_a_staggered_panel():
    from cpdimpact.datasets import city_partnership

    records = city_partnership(seed=1, scale=0.25)
    with pytest.raises(DesignError, match=r"weighting='schools'.*DiD"):
        Evaluation(weighting="schools", estimator=DiD()).run(records)
    with pytest.raises(DesignError, match=r"weighting must be"):
        Evaluation(weighting="pupil")
