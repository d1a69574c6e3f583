"""Simulate the CSV inputs of the trial / multilevel-DiD logistic reference cases (fixed seeds).

    /work/main/.venv/bin/python tests/reference/glmer_trials/make_data.py

Writes data/*.csv next to this script (numpy + pandas only). make_reference.R fits them with
R's glm (the pupil-randomised trial), lme4::glmer and glmmTMB (the multilevel designs) and
computes the marginal percentage-point difference with its delta-method standard error by its
own code; the Python tests (tests/test_trials_binary.py) read the CSVs and reference.json and
never need R. Grouping ids are integers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parent / "data"


def write(df: pd.DataFrame, name: str) -> None:
    DATA.mkdir(exist_ok=True)
    path = DATA / name
    df.to_csv(path, index=False, float_format="%.6f")
    print(f"{name}: {len(df)} rows, {path.stat().st_size} bytes")


def expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def simple() -> pd.DataFrame:
    """800 pupils, half randomised to the programme; logit = -0.3 + 0.45 t + 0.7 prior."""
    rng = np.random.default_rng(20261207)
    n = 800
    t = rng.permutation(np.repeat([0, 1], n // 2))
    prior = rng.normal(0, 1, n)
    y = rng.binomial(1, expit(-0.3 + 0.45 * t + 0.7 * prior))
    return pd.DataFrame({"passed": y, "programme": t, "prior": prior})


def cluster() -> pd.DataFrame:
    """44 schools of 8 to 40 pupils, 22 randomised to the programme;
    logit = -0.2 + 0.5 t + 0.8 prior - 0.3 fsm + u_school, var(u) = 0.4."""
    rng = np.random.default_rng(20261208)
    n_schools = 44
    t = rng.permutation(np.repeat([0, 1], n_schools // 2))
    u = rng.normal(0, np.sqrt(0.4), n_schools)
    rows = []
    for s in range(n_schools):
        n = int(rng.integers(8, 41))
        prior = rng.normal(0, 1, n)
        fsm = rng.binomial(1, 0.3, n)
        p = expit(-0.2 + 0.5 * t[s] + 0.8 * prior - 0.3 * fsm + u[s])
        rows.append(
            pd.DataFrame(
                {
                    "school_id": 101 + s,
                    "passed": rng.binomial(1, p),
                    "programme": t[s],
                    "prior": prior,
                    "fsm": fsm,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def multisite() -> pd.DataFrame:
    """40 schools of 20 to 50 pupils, pupils randomised within school;
    logit = 0.1 + 0.4 t + 0.6 prior + u0 + u1 t, var(u0) = 0.5, var(u1) = 0.15, cov = 0.1."""
    rng = np.random.default_rng(20261209)
    n_schools = 40
    cov = np.array([[0.5, 0.1], [0.1, 0.15]])
    u = rng.multivariate_normal([0, 0], cov, n_schools)
    rows = []
    for s in range(n_schools):
        n = int(rng.integers(20, 51))
        t = rng.permutation(np.arange(n) % 2)
        prior = rng.normal(0, 1, n)
        p = expit(0.1 + 0.4 * t + 0.6 * prior + u[s, 0] + u[s, 1] * t)
        rows.append(
            pd.DataFrame(
                {"school": s + 1, "passed": rng.binomial(1, p), "programme": t, "prior": prior}
            )
        )
    return pd.concat(rows, ignore_index=True)


def all_pass_school() -> pd.DataFrame:
    """The cluster design (30 schools of 25) with school 7's every pupil passing;
    logit = 0.2 + 0.4 t + 0.7 prior + u_school, var(u) = 0.3."""
    rng = np.random.default_rng(20261210)
    n_schools, n = 30, 25
    t = rng.permutation(np.repeat([0, 1], n_schools // 2))
    u = rng.normal(0, np.sqrt(0.3), n_schools)
    rows = []
    for s in range(n_schools):
        prior = rng.normal(0, 1, n)
        y = rng.binomial(1, expit(0.2 + 0.4 * t[s] + 0.7 * prior + u[s]))
        if s + 1 == 7:
            y[:] = 1
        rows.append(pd.DataFrame({"school": s + 1, "passed": y, "programme": t[s], "prior": prior}))
    return pd.concat(rows, ignore_index=True)


def did() -> pd.DataFrame:
    """Multilevel DiD: 36 schools over 2016-2020 (no 2019 data, as a year without tests),
    half in the programme from 2018; 15 to 30 pupils per school-year.
    logit = -0.4 + 0.15 (year - 2016) + 0.3 treated + 0.5 exposed + 0.7 prior + u_school
    + v_school-year, var(u) = 0.4, var(v) = 0.05."""
    rng = np.random.default_rng(20261211)
    n_schools = 36
    treated = rng.permutation(np.repeat([0, 1], n_schools // 2))
    u = rng.normal(0, np.sqrt(0.4), n_schools)
    rows = []
    for s in range(n_schools):
        for year in (2016, 2017, 2018, 2020):
            n = int(rng.integers(15, 31))
            exposed = int(treated[s] == 1 and year >= 2018)
            prior = rng.normal(0, 1, n)
            eta = (
                -0.4
                + 0.15 * (year - 2016)
                + 0.3 * treated[s]
                + 0.5 * exposed
                + 0.7 * prior
                + u[s]
                + rng.normal(0, np.sqrt(0.05))
            )
            rows.append(
                pd.DataFrame(
                    {
                        "school": s + 1,
                        "year": year,
                        "treated": treated[s],
                        "exposed": exposed,
                        "prior": prior,
                        "passed": rng.binomial(1, expit(eta)),
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


if __name__ == "__main__":
    write(simple(), "simple.csv")
    write(cluster(), "cluster.csv")
    write(multisite(), "multisite.csv")
    write(all_pass_school(), "all_pass_school.csv")
    write(did(), "did.csv")
