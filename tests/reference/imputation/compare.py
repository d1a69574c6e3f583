"""Print the largest differences between cpdimpact and the stored diff_diff references.

Run with the project environment (no peer needed):

    .venv/bin/python tests/reference/imputation/compare.py

Per case: overall and horizon estimates (absolute), SEs (relative; for the weighted case after
diff_diff's design-based transform, see README.md), Test 1 lead estimates (absolute), lead SEs
and F (relative). The tests assert the same comparisons at rtol 1e-8.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from cpdimpact.did.imputation import ImputationDiD

HERE = Path(__file__).parent


def main() -> None:
    reference = json.loads((HERE / "reference.json").read_text())
    print(
        f"{'case':22s} {'estimates':>10s} {'SEs':>10s} {'leads':>10s} {'lead SEs':>10s} {'F':>10s}"
    )
    for name, case in reference["cases"].items():
        path = HERE.parent / "mpdta" / "mpdta.csv" if case["data"] == "mpdta" else None
        data = pd.read_csv(path or HERE / f"{case['data']}.csv")
        o = case["options"]
        spec = ImputationDiD(
            outcome=o["outcome"],
            unit=o["unit"],
            time=o["time"],
            first_treated=o["first_treated"],
            covariates=o["covariates"],
            cluster=o["cluster"],
            anticipation=o["anticipation"],
            weights=o["weights"],
            pretrend_leads=case.get("pretrend", {}).get("leads", 0),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = spec.fit(data)
        peer = pd.DataFrame(case["event_study"]).set_index("event_time").dropna()
        ours = res.event_study.set_index("event_time").loc[peer.index]
        est = np.abs(
            np.r_[res.estimate - case["overall"]["estimate"], ours["estimate"] - peer["estimate"]]
        ).max()
        se = np.r_[res.std_error, ours["std_error"]]
        if o["weights"]:
            psi = res.influence.to_numpy()
            g = psi.shape[0]
            se = np.sqrt(g / (g - 1) * ((psi - psi.mean(axis=0)) ** 2).sum(axis=0))
        se_rel = np.abs(se / np.r_[case["overall"]["std_error"], peer["std_error"]] - 1).max()
        row = f"{name:22s} {est:10.1e} {se_rel:10.1e}"
        if "pretrend" in case:
            ref, pre = case["pretrend"], res.pretrend
            lead = np.abs(pre.leads["estimate"] - ref["estimate"]).max()
            lead_se = np.abs(pre.leads["std_error"] / ref["std_error"] - 1).max()
            f_rel = abs(pre.statistic / ref["statistic"] - 1)
            row += f" {lead:10.1e} {lead_se:10.1e} {f_rel:10.1e}"
        print(row)


if __name__ == "__main__":
    main()
