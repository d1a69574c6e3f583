"""Shared fixtures: small hand-built records whose every value the tests can reason about."""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

from cpdimpact.datasets import Scenario, city_partnership
from cpdimpact.did import DiD
from cpdimpact.errors import CpdImpactWarning
from cpdimpact.evaluation import Evaluation, ReportOptions
from cpdimpact.records import Records

matplotlib.use("Agg")


#: A tiny design for machinery tests (diagnose, the result contract): 24 schools, 4 years.
TINY = Scenario(
    name="tiny",
    years=(2018, 2021),
    schools_per_area=12,
    classes_per_year=(1, 1),
    class_size=6,
    start_years={"City": 2020},
    participants_per_school=0,
    strands=(("cpd", 1.0, 10.0),),
)


def run_quietly(evaluation, records):
    """``evaluation.run(records)`` with cpdimpact's warnings silenced (tests that check the
    numbers, not the warnings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        return evaluation.run(records)


def make_tables(
    *,
    n_schools: int = 8,
    n_treated: int = 4,
    years: tuple[int, ...] = (2018, 2019, 2020, 2021),
    start: int = 2020,
    pupils_per_class: int = 6,
    effect: float = 2.0,
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """Four small tables: schools 1..n, the first ``n_treated`` join in ``start``.

    Each school has two teachers (ids 1 and 2, repeated across schools, so only the pair
    identifies a teacher), each teaching one class a year. Outcomes are 100 + school effect +
    year trend + noise, plus ``effect`` for pupils of treated schools from ``start`` on.
    """
    rng = np.random.default_rng(seed)
    schools = pd.DataFrame(
        {
            "school": np.arange(1, n_schools + 1),
            "area": ["North" if s % 2 else "South" for s in range(1, n_schools + 1)],
            "phase": "primary",
            "size": 200 + 10 * np.arange(n_schools),
            "fsm_share": np.linspace(0.1, 0.5, n_schools),
        }
    )
    teachers = pd.DataFrame(
        {
            "teacher": np.tile([1, 2], n_schools),
            "school": np.repeat(schools["school"], 2).to_numpy(),
            "years_service": np.arange(2 * n_schools) % 15,
        }
    )
    rows = []
    pupil = 0
    school_effect = rng.normal(0, 2, n_schools)
    for s in range(n_schools):
        for year in years:
            for teacher in (1, 2):
                for _ in range(pupils_per_class):
                    pupil += 1
                    fsm = int(rng.random() < 0.3)
                    treated_now = s < n_treated and year >= start
                    rows.append(
                        {
                            "pupil": pupil,
                            "school": s + 1,
                            "teacher": teacher,
                            "year": year,
                            "prior": rng.normal(),
                            "outcome": 100
                            + school_effect[s]
                            + 0.5 * (year - years[0])
                            - 2 * fsm
                            + effect * treated_now
                            + rng.normal(0, 5),
                            "fsm": fsm,
                            "sen": int(rng.random() < 0.15),
                            "eal": int(rng.random() < 0.2),
                            "sex": "F" if rng.random() < 0.5 else "M",
                        }
                    )
    pupils = pd.DataFrame(rows)
    participation = pd.DataFrame(
        {
            "school": np.repeat(np.arange(1, n_treated + 1), 2),
            "teacher": np.tile([1, 2], n_treated),
            "strand": "whole_school",
            "start_year": start,
            "dose_hours": 20.0,
        }
    )
    return {
        "schools": schools,
        "teachers": teachers,
        "pupils": pupils,
        "participation": participation,
    }


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    return make_tables()


@pytest.fixture
def records(tables) -> Records:
    return Records(**tables)


# ------------------------------------------- hostile names and tiny subgroups (reports)
SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"onmouseover=alert(1) x="'
HOSTILE = [
    SCRIPT,
    ATTRIBUTE,
    "<img src=x onerror=alert(1)>",
    "Tom & Jerry's <b>Academy</b>",
    "Ysgol Gymraeg Bro Ŵyl — école ñ 学校 $x^2$ \\",
    "pipe | cell `code` *bold* [link](http://evil.example)",
    "two\nlines\r\n# heading\n| --- |",
]
HOSTILE_COLUMN = SCRIPT + ' "onmouseover=x | `y` & é'


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """An evaluation whose subgroup has 3 pupils in the intervention arm, named with markup."""
    records = city_partnership(seed=7, scale=0.3)
    pupils = records.pupils.copy()
    treated_schools = set(records.participation["school"])
    treated = pupils.index[pupils["school"].isin(treated_schools)]
    comparison = pupils.index[~pupils["school"].isin(treated_schools)]
    pupils[HOSTILE_COLUMN] = 0
    school = pupils.loc[treated, "school"].min()
    few = pupils[pupils["school"] == school].groupby("year").head(1).index  # one pupil a year
    assert 1 <= len(few) < 10
    pupils.loc[few, HOSTILE_COLUMN] = 1
    pupils.loc[comparison[::4], HOSTILE_COLUMN] = 1
    hostile = Records(
        pupils=pupils,
        participation=records.participation,
        schools=records.schools,
        teachers=records.teachers,
    )
    evaluation = Evaluation(
        estimator=DiD(),
        event_study=None,
        subgroups=("fsm", HOSTILE_COLUMN),
        gaps=("fsm", HOSTILE_COLUMN),
        report=ReportOptions(title=SCRIPT + " & report", programme=HOSTILE[1] + HOSTILE[6]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = evaluation.run(hostile)
        folder = tmp_path_factory.mktemp("hostile")
        paths = result.save(folder)
    return result, paths
