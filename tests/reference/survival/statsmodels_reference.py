"""Reference values of statsmodels for the discrete-time hazard model (tests/test_survival_parity.py).

Run from this folder with cpdimpact's environment (statsmodels is a runtime dependency; this
script uses only statsmodels, numpy and pandas, not cpdimpact)::

    python statsmodels_reference.py

Reads spells.csv, expands it to person-periods by hand, fits ``GLM(Binomial)`` with
``var_weights`` and ``cov_type="cluster"`` (``use_t=True``), and writes statsmodels_glm.csv
(coefficients, standard errors, degrees of freedom) and statsmodels_leaving.csv (the implied
difference in the share leaving within 1, 2, 3 years over the participants, its delta-method
standard error from a central-difference gradient) and statsmodels_versions.txt.
"""

import numpy as np
import pandas as pd
import statsmodels
import statsmodels.api as sm
from scipy.special import expit

d = pd.read_csv("spells.csv")
rows = d.loc[d.index.repeat(d["years"])].copy()
rows["period"] = rows.groupby(level=0).cumcount() + 1
rows["y"] = ((rows["period"] == rows["years"]) & (rows["left"] == 1)).astype(int)

VARIANTS = {
    # name: (covariates, cluster column, weights column, pool_from)
    "cluster": (["experience", "senior"], "school", None, 6),
    "weights_cluster": (["experience", "senior"], "school", "weight", 6),
    "model": ([], None, None, None),
    "weights_spell": (["experience"], "teacher", "weight", 5),
}


def design(frame, covariates, pool_from):
    period = frame["period"] if pool_from is None else frame["period"].clip(upper=pool_from)
    x = pd.get_dummies(period, prefix="period").astype(float)
    if pool_from is not None:
        x = x.rename(columns={f"period_{pool_from}": f"period_{pool_from}+"})
    x.columns = [c.replace("_", " ") for c in x.columns]
    x["treated"] = frame["treated"].to_numpy(dtype=float)
    for c in covariates:
        x[c] = frame[c].to_numpy(dtype=float)
    return x


def leaving(theta, k, spells, sw, covariates, pool_from, columns):
    """Participants' weighted mean of F_k(1, x) - F_k(0, x), from the logit's coefficients."""
    total = 0.0
    for arm, sign in ((1.0, 1.0), (0.0, -1.0)):
        frame = spells.loc[spells.index.repeat(k)].copy()
        frame["period"] = np.tile(np.arange(1, k + 1), len(spells))
        frame["treated"] = arm
        xx = design(frame, covariates, pool_from).reindex(columns=columns, fill_value=0)
        h = expit(xx.to_numpy() @ theta).reshape(len(spells), k)
        total += sign * np.sum(sw * (1 - np.prod(1 - h, axis=1))) / sw.sum()
    return total


glm_rows, leaving_rows = [], []
for name, (covariates, cluster, weights, pool_from) in VARIANTS.items():
    x = design(rows, covariates, pool_from)
    w = None if weights is None else rows[weights].to_numpy()
    model = sm.GLM(rows["y"], x, family=sm.families.Binomial(), var_weights=w)
    if cluster is None:
        fit = model.fit(tol=1e-12)
        df = None
    else:
        groups = pd.factorize(rows[cluster])[0]
        fit = model.fit(tol=1e-12, cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
        df = int(fit.df_resid_inference)
    for term in x.columns:
        glm_rows.append(
            {
                "variant": name,
                "term": term,
                "estimate": fit.params[term],
                "std_error": fit.bse[term],
                "df": df,
            }
        )
    # implied difference in leaving within k years over the participants (weighted)
    spells = d[d["treated"] == 1]
    sw = np.ones(len(spells)) if weights is None else spells[weights].to_numpy()
    params, cov = fit.params.to_numpy(), fit.cov_params().to_numpy()
    for k in (1, 2, 3):
        args = (k, spells, sw, covariates, pool_from, x.columns)
        step = 1e-6
        grad = np.array(
            [
                (leaving(params + step * e, *args) - leaving(params - step * e, *args)) / (2 * step)
                for e in np.eye(params.size)
            ]
        )
        leaving_rows.append(
            {
                "variant": name,
                "horizon": k,
                "estimate": leaving(params, *args),
                "std_error": float(np.sqrt(grad @ cov @ grad)),
            }
        )

pd.DataFrame(glm_rows).to_csv("statsmodels_glm.csv", index=False)
pd.DataFrame(leaving_rows).to_csv("statsmodels_leaving.csv", index=False)
with open("statsmodels_versions.txt", "w") as f:
    f.write(f"statsmodels {statsmodels.__version__}\nnumpy {np.__version__}\n")
