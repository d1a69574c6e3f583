"""Reference for SyntheticControl on Prop 99 with years that have no data.

Removes 1980, 1981 (a gap in the pre-period) and 1988, 1989 (a gap holding the last pre-year
and the start, 1989) from every state of ../synthetic/california_prop99.csv, as if no outcome
had been collected in those years. pysyncon 1.7.0 (pip, scratch venv /tmp/peer-sc, never a
runtime dependency) then solves min_w (X1 - X0 w)' V (X1 - X0 w) over the simplex with SciPy's
SLSQP, with X the observed pre-period outcomes (1970-1987 without 1980-81: 16 years) and
V = I / 16; the effect averages the observed post years (1990-2000). Run from this folder:

    /tmp/peer-sc/bin/python pysyncon_gapped.py

Writes pysyncon_gapped_weights.csv (area, weight) and pysyncon_gapped.json.
"""

import json

import numpy as np
import pandas as pd
import scipy
from pysyncon import Synth

REMOVED = [1980, 1981, 1988, 1989]
data = pd.read_csv("../synthetic/california_prop99.csv", sep=";")
data = data[~data["Year"].isin(REMOVED)]
wide = data.pivot(index="Year", columns="State", values="PacksPerCapita")
pre = wide.loc[wide.index < 1989]
post = wide.loc[wide.index >= 1989]
donors = [s for s in wide.columns if s != "California"]
T0 = len(pre)
W, loss = Synth.w_optimize(
    V_mat=np.eye(T0) / T0,
    X0=pre[donors].to_numpy(),
    X1=pre["California"].to_numpy(),
    qp_options={"maxiter": 5000, "ftol": 1e-14},
)
estimate = float((post["California"] - post[donors].to_numpy() @ W).mean())
pd.DataFrame({"area": donors, "weight": W}).to_csv("pysyncon_gapped_weights.csv", index=False)
with open("pysyncon_gapped.json", "w") as f:
    json.dump(
        {
            "removed_years": REMOVED,
            "n_pre": T0,
            "n_post": len(post),
            "estimate": estimate,
            "loss": float(loss),
            "pysyncon": "1.7.0",
            "scipy": scipy.__version__,
            "numpy": np.__version__,
        },
        f,
        indent=2,
    )
print(estimate, loss, T0, len(post))
