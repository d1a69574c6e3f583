"""Reference for MultilevelDiD on a pupil panel with years that have no data.

Simulates multilevel_gapped.csv (numpy only, fixed seed): 24 schools of 12 pupils a year over
the KS2 years 2017-2024 without 2020 and 2021 (no tests sat); schools s00-s11 are the treated
arm, starting in 2021 (inside the gap), so first exposed in 2022. School intercepts (SD 0.5),
school-year shocks (SD 0.15), year effects (SD 0.3), pupil noise (SD 1), effect 0.3.

Then fits statsmodels 0.15 MixedLM by REML (pip, scratch venv /tmp/peer-sc, never a runtime
dependency), the model MultilevelDiD fits, with year dummies for the observed years only:

- "school": outcome ~ treated + C(year) + exposed, random intercept for school
  (MultilevelDiD(period_effects=False));
- "school_year": the same plus a random intercept for each school-year nested in school
  (vc_formula "0 + C(year)"; MultilevelDiD(period_effects=True), the default).

Run from this folder:

    /tmp/peer-sc/bin/python statsmodels_multilevel_gapped.py

Writes multilevel_gapped.csv and multilevel_gapped.json.
"""

import json

import numpy as np
import pandas as pd
import statsmodels
import statsmodels.formula.api as smf

YEARS = [2017, 2018, 2019, 2022, 2023, 2024]
rng = np.random.default_rng(20201)
n_schools, pupils = 24, 12
school_effect = rng.normal(0, 0.5, n_schools)
treated = np.arange(n_schools) < n_schools // 2
rows = []
for t in YEARS:
    year_effect = rng.normal(0, 0.3)
    for s in range(n_schools):
        shock = rng.normal(0, 0.15)
        exposed = bool(treated[s] and t >= 2021)
        y = (
            school_effect[s]
            + year_effect
            + shock
            + 0.3 * exposed
            + 0.2 * treated[s]
            + rng.normal(0, 1, pupils)
        )
        for v in y:
            rows.append((f"s{s:02d}", t, round(float(v), 10), int(exposed), int(treated[s])))
data = pd.DataFrame(rows, columns=["school", "year", "outcome", "exposed", "treated"])
data.to_csv("multilevel_gapped.csv", index=False)
data = pd.read_csv("multilevel_gapped.csv")  # fit exactly what the test reads

formula = "outcome ~ treated + C(year) + exposed"
out = {"statsmodels": statsmodels.__version__, "years": YEARS}
fit = smf.mixedlm(formula, data, groups=data["school"]).fit(reml=True)
assert fit.converged
out["school"] = {
    "estimate": float(fit.fe_params["exposed"]),
    "std_error": float(fit.bse_fe["exposed"]),
    "var_school": float(fit.cov_re.iloc[0, 0]),
    "var_residual": float(fit.scale),
}
fit = smf.mixedlm(
    formula, data, groups=data["school"], re_formula="1", vc_formula={"school_year": "0 + C(year)"}
).fit(reml=True, method="lbfgs", gtol=1e-10)
assert fit.converged
out["school_year"] = {
    "estimate": float(fit.fe_params["exposed"]),
    "std_error": float(fit.bse_fe["exposed"]),
    "var_school": float(fit.cov_re.iloc[0, 0]),
    "var_school_year": float(fit.vcomp[0]),
    "var_residual": float(fit.scale),
}
with open("multilevel_gapped.json", "w") as f:
    json.dump(out, f, indent=2)
print(json.dumps(out, indent=2))
