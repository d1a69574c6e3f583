"""Reference for SyntheticDiD(covariates=...): the coefficient of time-varying covariates from
a two-way fixed-effects regression on the untreated cells, by statsmodels' formula OLS.

Writes ``covariates_panel.csv`` (the simulated area-by-year panel: 20 donor areas and one
treated area, KS2-like years 2017-2019 and 2022-2024 with no data in 2020-21, programme from
2022, covariates ``fsm`` and ``eal`` varying by area and year) and
``covariates_statsmodels.json`` (the coefficients, and the adjusted outcome
``outcome - fsm * b_fsm - eal * b_eal`` of every row).

The regression is ``outcome ~ fsm + eal + C(area) + C(year)`` on every donor row and the
treated area's rows before 2022 (the untreated cells), as in Arkhangelsky et al. (2021,
section 8) and the "projected" covariates of Stata's sdid (Clarke et al. 2023).

Run from this directory (statsmodels 0.15.0, pandas, numpy):

    python covariates_statsmodels.py
"""

import json

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

rng = np.random.default_rng(20261207)
years = [2017, 2018, 2019, 2022, 2023, 2024]
areas = [f"LA{i:02d}" for i in range(20)] + ["City"]
level = rng.normal(100, 2, len(areas))
trend = rng.normal(0, 0.3, len(areas))
rows = []
for i, a in enumerate(areas):
    for t in years:
        fsm = 20 + 3 * rng.normal() + (0.8 * (t - 2017) if a == "City" else 0.1 * (t - 2017))
        eal = 10 + 2 * rng.normal() + 0.2 * i * (t - 2017) / 10
        treated = int(a == "City" and t >= 2022)
        y = (
            level[i]
            + 0.5 * (t - 2017)
            + trend[i] * (t - 2017) / 5
            - 0.4 * fsm
            + 0.15 * eal
            + 1.5 * treated
            + rng.normal(0, 0.4)
        )
        rows.append((a, t, y, treated, fsm, eal))
panel = pd.DataFrame(rows, columns=["area", "year", "outcome", "treated", "fsm", "eal"])
panel.to_csv("covariates_panel.csv", index=False, float_format="%.12g")

panel = pd.read_csv("covariates_panel.csv")  # fit on exactly the stored values
untreated = panel[~((panel["area"] == "City") & (panel["year"] >= 2022))]
fit = smf.ols("outcome ~ fsm + eal + C(area) + C(year)", data=untreated).fit()
beta = {"fsm": float(fit.params["fsm"]), "eal": float(fit.params["eal"])}
adjusted = panel["outcome"] - panel["fsm"] * beta["fsm"] - panel["eal"] * beta["eal"]
json.dump(
    {
        "beta": beta,
        "n_untreated_rows": len(untreated),
        "adjusted_outcome": [float(v) for v in adjusted],
        "statsmodels": __import__("statsmodels").__version__,
    },
    open("covariates_statsmodels.json", "w"),
    indent=1,
)
print(beta)
