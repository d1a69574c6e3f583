"""Reference values for cpdimpact.did.wild from the `wildboottest` Python package.

Run with a scratch environment that has wildboottest (never a cpdimpact dependency):

    python -m venv /tmp/wbt-venv && /tmp/wbt-venv/bin/pip install wildboottest pandas statsmodels
    /tmp/wbt-venv/bin/python tests/reference/wild/make_reference.py

It writes the simulated panels (``<case>.csv``) and ``reference.json`` next to this script.
wildboottest works on a statsmodels OLS, so the unit and year fixed effects enter as explicit
dummies; its CR1 factor counts every column (K includes the unit dummies), cpdimpact's does not
count unit effects nested in clusters, so the tests rescale t by sqrt(factor ratio) (the factor
cancels from p-values). For each case the script stores wildboottest's t and p-value for WCR
(Rademacher, fully enumerated since 2^G < B, and Webb with B = 9999 random draws) and WCU
(Webb), plus, for the enumerations, every bootstrap t.
"""

from __future__ import annotations

import json
import platform
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
from wildboottest.wildboottest import WildboottestCL, wildboottest

HERE = Path(__file__).parent
B = 9999
SEED = 20240611


def balanced12(rng: np.random.Generator) -> pd.DataFrame:
    """12 areas x 2 schools, one row per school-year 2014-2021; 5 areas start in 2018."""
    rows = [(a, 2 * a + s, y) for a in range(12) for s in range(2) for y in range(2014, 2022)]
    df = pd.DataFrame(rows, columns=["area", "unit", "year"])
    df["exposed"] = ((df["area"] < 5) & (df["year"] >= 2018)).astype(int)
    area_shock = rng.normal(0, 0.5, (12, 8))[df["area"], df["year"] - 2014]
    df["outcome"] = (
        0.3 * df["unit"]
        + 0.2 * (df["year"] - 2014)
        + 0.4 * df["exposed"]
        + area_shock
        + rng.normal(0, 1, len(df))
    )
    return df


def unbalanced9(rng: np.random.Generator) -> pd.DataFrame:
    """9 areas with 1-5 schools, 1-6 pupils per school-year 2015-2020, one covariate."""
    rows = []
    unit = 0
    for a in range(9):
        for _ in range(1 + a % 5):
            for y in range(2015, 2021):
                rows += [(a, unit, y)] * int(rng.integers(1, 7))
            unit += 1
    df = pd.DataFrame(rows, columns=["area", "unit", "year"])
    df["exposed"] = ((df["area"] % 2 == 0) & (df["year"] >= 2018)).astype(int)
    df["prior"] = rng.normal(0, 1, len(df)) + 0.1 * df["unit"]
    area_shock = rng.normal(0, 0.6, (9, 6))[df["area"], df["year"] - 2015]
    df["outcome"] = (
        0.2 * df["unit"]
        + 0.5 * df["prior"]
        - 0.1 * (df["year"] - 2015)
        + 0.5 * df["exposed"]
        + area_shock
        + rng.normal(0, 1, len(df))
    )
    return df


def strong9(rng: np.random.Generator) -> pd.DataFrame:
    """9 areas x 3 schools, school-years 2016-2021, 4 areas start in 2019 with a real effect."""
    rows = [(a, 3 * a + s, y) for a in range(9) for s in range(3) for y in range(2016, 2022)]
    df = pd.DataFrame(rows, columns=["area", "unit", "year"])
    df["exposed"] = ((df["area"] >= 5) & (df["year"] >= 2019)).astype(int)
    area_shock = rng.normal(0, 0.3, (9, 6))[df["area"], df["year"] - 2016]
    df["outcome"] = 0.1 * df["unit"] + 1.4 * df["exposed"] + area_shock + rng.normal(0, 1, len(df))
    return df


def design(df: pd.DataFrame, covariates: list[str]) -> sm.OLS:
    units = pd.get_dummies(df["unit"], prefix="u", drop_first=True, dtype=float)
    years = pd.get_dummies(df["year"], prefix="y", drop_first=True, dtype=float)
    X = pd.concat(
        [
            df[["exposed"]].astype(float),
            pd.Series(1.0, index=df.index, name="const"),
            units,
            years,
            df[covariates],
        ],
        axis=1,
    )
    return sm.OLS(df["outcome"].astype(float), X)


def run(model: sm.OLS, cluster: np.ndarray, weights_type: str, impose_null: bool, seed: int):
    out = wildboottest(
        model,
        B=B,
        cluster=cluster,
        param="exposed",
        weights_type=weights_type,
        impose_null=impose_null,
        bootstrap_type="11",
        seed=seed,
        show=False,
    )
    return float(np.asarray(out["statistic"].iloc[0]).ravel()[0]), float(out["p-value"].iloc[0])


def enumeration(model: sm.OLS, cluster: np.ndarray) -> np.ndarray:
    """Every bootstrap t of the enumerated Rademacher WCR (same steps as wildboottest())."""
    X, Y = model.exog, model.endog
    R = np.zeros(X.shape[1])
    R[model.data.xnames.index("exposed")] = 1
    boot = WildboottestCL(X=X, Y=Y, cluster=cluster, R=R, B=B, seed=1, parallel=False)
    boot.get_scores(bootstrap_type="11", impose_null=True)
    boot.get_weights(weights_type="rademacher")
    boot.get_numer()
    boot.get_denom()
    boot.get_tboot()
    return np.asarray(boot.t_boot, dtype=float)


def main() -> None:
    rng = np.random.default_rng(SEED)
    cases = {
        "balanced12": (balanced12(rng), []),
        "unbalanced9": (unbalanced9(rng), ["prior"]),
        "strong9": (strong9(rng), []),
    }
    out = {
        "generator": "tests/reference/wild/make_reference.py",
        "versions": {
            "python": platform.python_version(),
            "wildboottest": version("wildboottest"),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "statsmodels": version("statsmodels"),
        },
        "B": B,
        "cases": {},
    }
    for name, (df, covs) in cases.items():
        df.to_csv(HERE / f"{name}.csv", index=False)
        model = design(df, covs)
        cluster = df["area"].to_numpy()
        n, k = model.exog.shape
        g = int(np.unique(cluster).size)
        t, p_rad = run(model, cluster, "rademacher", True, seed=1)
        _, p_webb = run(model, cluster, "webb", True, seed=2)
        _, p_webb_wcu = run(model, cluster, "webb", False, seed=3)
        t_enum = enumeration(model, cluster)
        out["cases"][name] = {
            "csv": f"{name}.csv",
            "covariates": covs,
            "n_obs": n,
            "k_wildboottest": k,
            "n_clusters": g,
            "ssc_wildboottest": (n - 1) / (n - k) * g / (g - 1),
            "t_stat": t,
            "p_wcr_rademacher_enumerated": p_rad,
            "p_wcr_webb": p_webb,
            "p_wcu_webb": p_webb_wcu,
            "t_boot_wcr_rademacher_enumerated": t_enum.tolist(),
        }
        print(
            f"{name}: N={n} K={k} G={g} t={t:.6f} p_rad={p_rad:.6f} p_webb={p_webb:.4f} "
            f"p_wcu={p_webb_wcu:.4f} draws={t_enum.size}"
        )
    (HERE / "reference.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
