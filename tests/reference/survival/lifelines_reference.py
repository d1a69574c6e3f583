"""Reference values of lifelines for tests/test_survival_parity.py.

Run from this folder in a scratch virtual environment with lifelines (never a runtime
dependency of cpdimpact)::

    python3.11 -m venv /tmp/peer-surv && /tmp/peer-surv/bin/pip install lifelines==0.30.3
    /tmp/peer-surv/bin/python lifelines_reference.py

Reads spells.csv; writes lifelines_km.csv and lifelines_cox.csv and lifelines_versions.txt.
"""

import warnings

import lifelines
import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter

d = pd.read_csv("spells.csv")

rows = []
for variant, weights in (("plain", None), ("counts", "count")):
    for arm, label in ((1, "treated"), (0, "comparison")):
        part = d[d["treated"] == arm]
        kmf = KaplanMeierFitter(alpha=0.05).fit(
            part["years"], part["left"], weights=None if weights is None else part[weights]
        )
        sf = kmf.survival_function_.iloc[1:, 0]  # row 0 is time 0
        ci = kmf.confidence_interval_.iloc[1:]
        rows.append(
            pd.DataFrame(
                {
                    "variant": variant,
                    "arm": label,
                    "time": sf.index.to_numpy(dtype=float),
                    "survival": sf.to_numpy(),
                    "ci_lower": ci.iloc[:, 0].to_numpy(),
                    "ci_upper": ci.iloc[:, 1].to_numpy(),
                }
            )
        )
pd.concat(rows).to_csv("lifelines_km.csv", index=False)

rows = []
specs = {
    "plain": dict(columns=["treated"], kw={}),
    "cluster": dict(
        columns=["treated", "experience", "senior", "school"],
        kw={"cluster_col": "school", "robust": True},
    ),
    "weights_cluster": dict(
        columns=["treated", "experience", "senior", "school", "weight"],
        kw={"cluster_col": "school", "robust": True, "weights_col": "weight"},
    ),
}
for variant, spec in specs.items():
    for duration in ("years", "years_exact"):
        frame = d[[duration, "left", *spec["columns"]]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cph = CoxPHFitter().fit(frame, duration, "left", **spec["kw"])
        s = cph.summary
        rows.append(
            pd.DataFrame(
                {
                    "variant": variant,
                    "duration": duration,
                    "term": s.index.to_numpy(),
                    "estimate": s["coef"].to_numpy(),
                    "std_error": s["se(coef)"].to_numpy(),
                }
            )
        )
pd.concat(rows).to_csv("lifelines_cox.csv", index=False)
with open("lifelines_versions.txt", "w") as f:
    f.write(f"lifelines {lifelines.__version__}\nnumpy {np.__version__}\npandas {pd.__version__}\n")
