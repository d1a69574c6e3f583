"""Reference for cpdimpact's exact synthetic control (SyntheticControl) on Prop 99.

pysyncon 1.7.0 (pip, scratch venv /tmp/sc-peers, never a runtime dependency) solves the inner
synthetic-control problem min_w (X1 - X0 w)' V (X1 - X0 w) over the simplex with SciPy's SLSQP.
With X = the 19 pre-period (1970-1988) outcomes and V = I / 19 this is exactly the problem
SyntheticControl solves by an active-set method. Run from this folder:

    /tmp/sc-peers/bin/python pysyncon_prop99.py

Writes pysyncon_sc_weights.csv (donor, weight) and pysyncon_sc.json (estimate, loss, versions).
"""

import json

import numpy as np
import pandas as pd
import pysyncon
import scipy
from pysyncon import Synth

data = pd.read_csv("california_prop99.csv", sep=";")
wide = data.pivot(index="Year", columns="State", values="PacksPerCapita")
pre = wide.loc[:1988]
donors = [s for s in wide.columns if s != "California"]
X0 = pre[donors].to_numpy()
X1 = pre["California"].to_numpy()
T0 = len(pre)
W, loss = Synth.w_optimize(
    V_mat=np.eye(T0) / T0, X0=X0, X1=X1, qp_options={"maxiter": 5000, "ftol": 1e-14}
)
post = wide.loc[1989:]
estimate = float((post["California"] - post[donors].to_numpy() @ W).mean())
pd.DataFrame({"area": donors, "weight": W}).to_csv("pysyncon_sc_weights.csv", index=False)
with open("pysyncon_sc.json", "w") as f:
    json.dump(
        {
            "estimate": estimate,
            "loss": float(loss),
            "pysyncon": pysyncon.__version__ if hasattr(pysyncon, "__version__") else "1.7.0",
            "scipy": scipy.__version__,
            "numpy": np.__version__,
        },
        f,
        indent=2,
    )
print(estimate, loss)
