"""Print the largest differences between cpdimpact's trial analyses and reference.json.

.venv/bin/python tests/reference/trials/compare.py
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from cpdimpact.multilevel import ClusterTrial, MultisiteTrial, SimpleTrial

HERE = Path(__file__).parent
DATA = HERE.parent / "multilevel"
CASES = json.loads((HERE / "reference.json").read_text())["cases"]
SPEC = {"outcome": "Posttest", "treatment": "Intervention", "covariates": ("Prettest",)}


def fit(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crt, mst = pd.read_csv(DATA / "crtData.csv"), pd.read_csv(DATA / "mstData.csv")
        return {
            "crt_cluster": lambda: ClusterTrial(**SPEC, cluster="School").fit(crt),
            "mst_multisite": lambda: MultisiteTrial(**SPEC, cluster="School").fit(mst),
            "mst_simple": lambda: SimpleTrial(**SPEC).fit(mst),
            "crt_simple": lambda: SimpleTrial(**SPEC).fit(crt),
        }[name]()


def main():
    for name, case in CASES.items():
        res = fit(name)
        rows = {}
        tr = case["treatment"]
        rows["coefficient"] = abs(res.estimate - tr["estimate"])
        rows["std_error"] = abs(res.std_error - tr["std_error"])
        coef = res.coefficient.set_index("method")
        for method, key in (("profile", "profile_ci"), ("satterthwaite", "satterthwaite_ci"),
                            ("t", "t_ci")):  # fmt: skip
            if key in tr:
                got = coef.loc[method, ["ci_lower", "ci_upper"]].to_numpy()
                rows[f"{method}_ci"] = np.abs(got - [tr[key]["lower"], tr[key]["upper"]]).max()
        if "satterthwaite_ci" in tr:
            rows["satterthwaite_df"] = abs(coef.loc["satterthwaite", "df"] - tr["df"])
        diffs = []
        for model in ("conditional", "unconditional"):
            for key, value in case["variances"][model].items():
                column = "total" if (res.design == "simple" and key == "within") else key
                if column in res.variances.columns:
                    diffs.append(abs(res.variances.loc[model, column] - value))
        rows["variances"] = max(diffs)
        diffs = []
        for ref in case["effect_sizes"]:
            es = res.effect_sizes
            row = es[
                (es["model"] == ref["model"])
                & (es["variance"] == ref["variance"])
                & (es["definition"] == "eefanalytics")
            ].iloc[0]
            diffs += [
                abs(row[c] - ref[c]) for c in ("estimate", "std_error", "ci_lower", "ci_upper")
            ]
        rows["effect_sizes"] = max(diffs)
        rows["headline"] = abs(res.effect_size - case["headline"]["estimate"])
        if "school_effects" in case:
            diffs = []
            for term, ref in case["school_effects"].items():
                got = res.school_effects[res.school_effects["term"] == term]
                diffs.append(np.abs(got["estimate"].to_numpy() - ref["estimate"]).max())
                diffs.append(np.abs(got["cond_sd"].to_numpy() - ref["cond_sd"]).max())
            rows["school_effects"] = max(diffs)
        print(f"{name:14s} " + "  ".join(f"{k} {v:.1e}" for k, v in rows.items()))


if __name__ == "__main__":
    main()
