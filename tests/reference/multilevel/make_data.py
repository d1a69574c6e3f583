"""Simulate the CSV inputs of the multilevel reference cases (fixed seeds; run from any folder).

    .venv/bin/python tests/reference/multilevel/make_data.py

Writes two_level.csv, three_level.csv, four_level.csv, slope.csv and singular.csv next to this
script (numpy + pandas only). make_reference.R fits them with lme4 / lmerTest and writes
reference.json; the Python tests read the CSVs and reference.json and never need R.
Identifiers are integers; below the top level they restart at 1 within each parent, so only the
full path (e.g. school, teacher) identifies a unit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def write(df: pd.DataFrame, name: str) -> None:
    path = HERE / name
    df.to_csv(path, index=False, float_format="%.6f")
    size = path.stat().st_size
    assert size < 300_000, (name, size)
    print(f"{name}: {len(df)} rows, {size} bytes")


def two_level() -> pd.DataFrame:
    """40 schools of 3..80 pupils; school variance 0.2, residual 1."""
    rng = np.random.default_rng(20250101)
    n_schools = 40
    sizes = np.round(np.exp(rng.uniform(np.log(3), np.log(80), n_schools))).astype(int)
    sizes[0], sizes[1] = 3, 80  # make sure both extremes occur
    sizes = np.clip(sizes, 3, 80)
    treat = rng.permutation(np.repeat([0, 1], n_schools // 2))
    u = rng.normal(0, np.sqrt(0.2), n_schools)
    xbar = rng.normal(0, 0.5, n_schools)  # school-level part of x1 (between != within)
    rows = []
    for s in range(n_schools):
        n = sizes[s]
        x1 = xbar[s] + rng.normal(0, 1, n)
        x2 = rng.binomial(1, 0.4, n)
        y = 0.5 + 0.3 * x1 + 0.2 * x2 + 0.25 * treat[s] + u[s] + rng.normal(0, 1, n)
        rows.append(pd.DataFrame({"school": s + 1, "y": y, "x1": x1, "x2": x2, "treat": treat[s]}))
    return pd.concat(rows, ignore_index=True)


def three_level() -> pd.DataFrame:
    """30 schools, 2-5 teachers each, 1-30 pupils per teacher (some with exactly 1)."""
    rng = np.random.default_rng(20250202)
    n_schools = 30
    treat = rng.permutation(np.repeat([0, 1], n_schools // 2))
    rows = []
    for s in range(n_schools):
        u_s = rng.normal(0, np.sqrt(0.15))
        n_teachers = int(rng.integers(2, 6))
        for t in range(n_teachers):
            u_t = rng.normal(0, np.sqrt(0.05))
            n = int(rng.integers(1, 31))
            if (s, t) in {(0, 0), (4, 1), (11, 0), (19, 1), (27, 0)}:
                n = 1
            prior = rng.normal(0, 1, n)
            fsm = rng.binomial(1, 0.3, n)
            y = (
                0.1
                + 0.6 * prior
                - 0.2 * fsm
                + 0.15 * treat[s]
                + u_s
                + u_t
                + rng.normal(0, np.sqrt(0.8), n)
            )
            rows.append(
                pd.DataFrame(
                    {
                        "school": s + 1,
                        "teacher": t + 1,
                        "y": y,
                        "prior": prior,
                        "fsm": fsm,
                        "treat": treat[s],
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def four_level() -> pd.DataFrame:
    """8 areas, 2-4 schools each, 2-3 teachers each, 4-20 pupils each."""
    rng = np.random.default_rng(20250303)
    rows = []
    for a in range(8):
        u_a = rng.normal(0, np.sqrt(0.1))
        for s in range(int(rng.integers(2, 5))):
            u_s = rng.normal(0, np.sqrt(0.15))
            for t in range(int(rng.integers(2, 4))):
                u_t = rng.normal(0, np.sqrt(0.05))
                n = int(rng.integers(4, 21))
                x = rng.normal(0, 1, n)
                y = 0.3 + 0.5 * x + u_a + u_s + u_t + rng.normal(0, np.sqrt(0.8), n)
                rows.append(
                    pd.DataFrame({"area": a + 1, "school": s + 1, "teacher": t + 1, "y": y, "x": x})
                )
    return pd.concat(rows, ignore_index=True)


def slope() -> pd.DataFrame:
    """Multisite trial: 25 schools, pupils randomised within school; intercept SD 0.5,
    treatment-slope SD 0.3, correlation 0.4, residual SD 1."""
    rng = np.random.default_rng(20250411)  # seed chosen so the REML fit is not singular
    n_schools = 25
    sd = np.array([0.5, 0.3])
    corr = np.array([[1.0, 0.4], [0.4, 1.0]])
    u = rng.multivariate_normal([0, 0], corr * np.outer(sd, sd), n_schools)
    rows = []
    for s in range(n_schools):
        n = int(rng.integers(20, 61))
        treat = rng.permutation(np.arange(n) % 2)
        prior = rng.normal(0, 1, n)
        y = 0.2 + u[s, 0] + (0.25 + u[s, 1]) * treat + 0.5 * prior + rng.normal(0, 1, n)
        rows.append(pd.DataFrame({"school": s + 1, "y": y, "treat": treat, "prior": prior}))
    return pd.concat(rows, ignore_index=True)


def singular() -> pd.DataFrame:
    """20 schools with no school variance. The residuals are partly demeaned within school
    (school means shrunk by 60%), so the school means vary less than chance alone would make
    them and the (RE)ML school variance is exactly 0: a singular fit, for any seed."""
    rng = np.random.default_rng(20250505)
    rows = []
    for s in range(20):
        n = int(rng.integers(8, 31))
        x1 = rng.normal(0, 1, n)
        e = rng.normal(0, 1, n)
        e = e - 0.6 * e.mean()
        rows.append(pd.DataFrame({"school": s + 1, "y": 1.0 + 0.4 * x1 + e, "x1": x1}))
    return pd.concat(rows, ignore_index=True)


def main() -> None:
    write(two_level(), "two_level.csv")
    write(three_level(), "three_level.csv")
    write(four_level(), "four_level.csv")
    write(slope(), "slope.csv")
    write(singular(), "singular.csv")


if __name__ == "__main__":
    main()
