"""Simulated inputs for the Sun & Abraham reference values (fixed seeds, numpy only).

    .venv/bin/python tests/reference/sun_abraham/make_data.py

Writes, next to this script:
  staggered.csv  unit-year panel: 150 units in 25 areas, 2012-2021, cohorts 2014 / 2016 / 2018
                 and never treated; effects that differ by cohort and grow with event time;
                 a time-varying covariate ``x``.
  pupils.csv     pupil rows in 60 schools (a repeated cross-section within schools), 2015-2021,
                 cohorts 2017 / 2019 and never treated, 2-9 pupils per school-year, about 8% of
                 school-years missing; covariate ``prior``.
  rollout.csv    school-year means for a roll-out that reaches every school (cohorts 2016 /
                 2018 / 2020, no never-treated school), 2013-2021, weights ``n_pupils``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent

#: tau(g, e) = level[g] + slope[g] * e for e >= 0: heterogeneous dynamic effects.
LEVEL = {2014: 0.5, 2016: 1.0, 2017: 0.3, 2018: 2.0, 2019: 0.8, 2020: 1.5}
SLOPE = {2014: 0.1, 2016: 0.3, 2017: 0.2, 2018: 0.5, 2019: -0.1, 2020: 0.4}


def effect(g: np.ndarray, year: np.ndarray) -> np.ndarray:
    e = year - g
    level = np.array([LEVEL.get(int(v), 0.0) for v in g])
    slope = np.array([SLOPE.get(int(v), 0.0) for v in g])
    return np.where((g > 0) & (e >= 0), level + slope * e, 0.0)


def staggered(rng: np.random.Generator) -> pd.DataFrame:
    n_units, years = 150, np.arange(2012, 2022)
    first = rng.choice([0, 2014, 2016, 2018], size=n_units, p=[0.3, 0.2, 0.25, 0.25])
    area = rng.integers(0, 25, n_units)
    unit = np.repeat(np.arange(n_units), years.size)
    year = np.tile(years, n_units)
    g = first[unit]
    x = rng.normal(0, 1, unit.size) + 0.05 * (year - 2012)
    y = (
        rng.normal(0, 1, n_units)[unit]
        + rng.normal(0, 0.3, 25)[area[unit]]
        + 0.2 * (year - 2012)
        + 0.4 * x
        + effect(g, year)
        + rng.normal(0, 1, unit.size)
    )
    return pd.DataFrame(
        {
            "unit": unit + 1,
            "area": area[unit] + 1,
            "year": year,
            "first_treated": g,
            "x": x,
            "outcome": y,
        }
    )


def pupils(rng: np.random.Generator) -> pd.DataFrame:
    n_schools, years = 60, np.arange(2015, 2022)
    first = rng.choice([0, 2017, 2019], size=n_schools, p=[0.4, 0.3, 0.3])
    school_effect = rng.normal(0, 1, n_schools)
    rows = []
    for s in range(n_schools):
        for t in years:
            if rng.random() < 0.08 and t not in (first[s] - 1, 2015):
                continue  # a missing school-year (never the reference year or the first)
            for _ in range(rng.integers(2, 10)):
                prior = rng.normal(0, 1)
                y = (
                    school_effect[s]
                    + 0.15 * (t - 2015)
                    + 0.6 * prior
                    + effect(np.array([first[s]]), np.array([t]))[0]
                    + rng.normal(0, 1)
                )
                rows.append((f"S{s:02d}", t, int(first[s]), prior, y))
    return pd.DataFrame(rows, columns=["school", "year", "first_treated", "prior", "outcome"])


def rollout(rng: np.random.Generator) -> pd.DataFrame:
    n_schools, years = 120, np.arange(2013, 2022)
    first = rng.choice([2016, 2018, 2020], size=n_schools, p=[0.3, 0.3, 0.4])
    school = np.repeat(np.arange(n_schools), years.size)
    year = np.tile(years, n_schools)
    g = first[school]
    n_pupils = rng.integers(5, 60, school.size)
    noise = rng.normal(0, 1, school.size) / np.sqrt(n_pupils)
    y = rng.normal(0, 1, n_schools)[school] + 0.1 * (year - 2013) + effect(g, year) + noise
    return pd.DataFrame(
        {
            "school": school + 1,
            "year": year,
            "first_treated": g,
            "n_pupils": n_pupils,
            "outcome": y,
        }
    )


def main() -> None:
    rng = np.random.default_rng(20210601)
    staggered(rng).to_csv(HERE / "staggered.csv", index=False, float_format="%.10g")
    pupils(rng).to_csv(HERE / "pupils.csv", index=False, float_format="%.10g")
    rollout(rng).to_csv(HERE / "rollout.csv", index=False, float_format="%.10g")


if __name__ == "__main__":
    main()
