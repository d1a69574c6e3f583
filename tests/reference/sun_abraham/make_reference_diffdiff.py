"""Reference values for cpdimpact.did.SunAbraham from diff-diff's ``SunAbraham``.

diff-diff is a reference only, never a cpdimpact dependency. Run it in the scratch venv that
holds it (after ``make_data.py``):

    /tmp/did-peers/bin/python tests/reference/sun_abraham/make_reference_diffdiff.py

diff-diff fits the saturated cohort x relative-period regression on within-transformed data,
clusters (CR1) and aggregates with the cohort shares held fixed (``w' V w``). It has no
last-treated comparison (its ``"not_yet_treated"`` is a different estimator), so the roll-out
case applies Sun & Abraham's recipe by hand: drop the periods from the last cohort's start
and recode that cohort as never treated.

Writes ``diffdiff.json`` and ``versions.txt`` (this run's versions plus R's, read from
``reference.json``, so run ``make_reference.R`` first) next to this script.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import platform
from pathlib import Path

import numpy as np
import pandas as pd
from diff_diff import SunAbraham

HERE = Path(__file__).resolve().parent
MPDTA = HERE.parent / "mpdta" / "mpdta.csv"

CASES = [
    # name, file, cpdimpact spec (what the tests pass to SunAbraham), diff-diff call
    {
        "name": "mpdta",
        "file": "../mpdta/mpdta.csv",
        "spec": {
            "outcome": "lemp",
            "unit": "countyreal",
            "time": "year",
            "first_treated": "first_treat",
            "cluster": "countyreal",
        },
        "covariates": [],
    },
    {
        "name": "staggered",
        "file": "staggered.csv",
        "spec": {"cluster": "unit"},
        "covariates": [],
    },
    {
        "name": "staggered_x_area",
        "file": "staggered.csv",
        "spec": {"cluster": "area", "covariates": ["x"]},
        "covariates": ["x"],
    },
    {
        "name": "rollout_last_treated",
        "file": "rollout.csv",
        "spec": {"unit": "school", "cluster": "school", "control": "last_treated"},
        "covariates": [],
        "last_treated": True,
    },
]


def run(case: dict) -> dict:
    data = pd.read_csv(HERE / case["file"])
    spec = case["spec"]
    outcome = spec.get("outcome", "outcome")
    unit = spec.get("unit", "unit")
    time = spec.get("time", "year")
    first = spec.get("first_treated", "first_treated")
    if case.get("last_treated"):
        last = data[first].max()
        data = data[data[time] < last].copy()
        data[first] = np.where(data[first] == last, 0, data[first])
    est = SunAbraham(cluster=spec["cluster"], df_convention="cluster")
    res = est.fit(
        data,
        outcome=outcome,
        unit=unit,
        time=time,
        first_treat=first,
        covariates=case["covariates"] or None,
    )
    cohort = res.to_dataframe("cohort")
    es = res.to_dataframe("event_study")
    return {
        "name": case["name"],
        "file": case["file"],
        "spec": spec,
        "n_obs": int(res.n_obs),
        "cohort_effects": {
            "cohort": cohort["cohort"].astype(int).tolist(),
            "event_time": cohort["relative_period"].astype(int).tolist(),
            "estimate": cohort["effect"].tolist(),
            "std_error": cohort["se"].tolist(),
            "share": cohort["weight"].tolist(),
        },
        "event_study": {
            "event_time": es["relative_period"].astype(int).tolist(),
            "estimate": es["effect"].tolist(),
            "std_error_fixed_shares": es["se"].tolist(),
        },
        "att": float(res.overall_att),
        "att_std_error_fixed_shares": float(res.overall_se),
    }


def main() -> None:
    out = {
        "generator": "tests/reference/sun_abraham/make_reference_diffdiff.py",
        "diff_diff": md.version("diff_diff"),
        "cases": [run(case) for case in CASES],
    }
    (HERE / "diffdiff.json").write_text(json.dumps(out, indent=1) + "\n")
    versions = [f"python {platform.python_version()} (diff-diff scratch venv)"] + [
        f"{p} {md.version(p)}" for p in ("diff_diff", "numpy", "pandas", "scipy")
    ]
    r_ref = json.loads((HERE / "reference.json").read_text())
    versions += [f"{r_ref['r_version']} (make_reference.R)", f"sandwich {r_ref['sandwich']}"]
    (HERE / "versions.txt").write_text("\n".join(versions) + "\n")


if __name__ == "__main__":
    main()
