"""Reference group-time effects for StaggeredDiD with covariates, unbalanced panels and
repeated cross-sections, from moderndid (a port of R did / DRDID) and csdid.

Run with the peers' scratch venv (never a project dependency):

    /tmp/did-peers/bin/python tests/reference/staggered/make_reference.py

It writes the simulated inputs (``panel.csv``, ``unbalanced.csv``, ``cross_sections.csv``) and
``reference.json``: for every case and peer, ATT(g,t) with analytic standard errors and the four
aggregates (estimate and analytic SE).
"""

from __future__ import annotations

import json
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
HERE = Path(__file__).parent
MPDTA = HERE.parent / "mpdta" / "mpdta.csv"


def simulate_panel(seed: int = 7, n_units: int = 600, periods=range(2015, 2021)) -> pd.DataFrame:
    """Staggered adoption with selection on a covariate and covariate-specific trends, so the
    unconditional comparison is biased and the conditional one is not."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n_units)
    z = rng.binomial(1, 0.4, n_units).astype(float)
    score = 0.8 * x - 0.3 * z + rng.logistic(scale=0.6, size=n_units)
    cohort = np.select(
        [score > 1.0, score > 0.3, score > -0.4], [2017, 2018, 2019], default=0
    ).astype(int)
    unit_effect = rng.normal(size=n_units) + 0.5 * x
    rows = []
    for t in periods:
        trend = 0.3 * (t - periods[0]) * (1 + 0.5 * x) + 0.2 * z * (t - periods[0])
        treated = (cohort > 0) & (t >= cohort)
        effect = np.where(treated, 0.5 + 0.2 * (t - cohort) + 0.3 * x, 0.0)
        y = unit_effect + trend + effect + rng.normal(scale=0.7, size=n_units)
        rows.append(
            pd.DataFrame(
                {"unit": np.arange(n_units), "year": t, "y": y, "x": x, "z": z, "cohort": cohort}
            )
        )
    return pd.concat(rows, ignore_index=True)


def moderndid_case(data, *, idname, xformla, method, control, panel=True, unbalanced=False):
    from moderndid import aggte, att_gt

    kwargs = dict(
        data=data,
        yname="y",
        tname="year",
        gname="cohort",
        xformla=xformla,
        est_method=method,
        control_group=control,
        boot=False,
        cband=False,
        panel=panel,
        allow_unbalanced_panel=unbalanced,
    )
    if idname is not None:
        kwargs["idname"] = idname
    fit = att_gt(**kwargs)
    cells = [
        {"group": int(g), "time": int(t), "estimate": float(a), "std_error": float(s)}
        for g, t, a, s in zip(fit.groups, fit.times, fit.att_gt, fit.se_gt, strict=True)
    ]
    aggregates = {}
    for kind in ("simple", "dynamic", "group", "calendar"):
        try:
            agg = aggte(fit, type=kind, boot=False, cband=False)
        except ValueError as exc:  # recorded, not hidden: the test skips what the peer lacks
            print(f"moderndid aggte({kind}) failed on {xformla} {method} {control}: {exc}")
            continue
        aggregates[kind] = {
            "estimate": float(agg.overall_att),
            "std_error": float(agg.overall_se),
        }
    return {"cells": cells, "aggregates": aggregates}


def csdid_case(data, *, idname, xformla, method, control, panel=True, unbalanced=False):
    from csdid.att_gt import ATTgt

    fit = ATTgt(
        yname="y",
        tname="year",
        idname=idname,
        gname="cohort",
        data=data.copy(),
        control_group=control,
        xformla=xformla,
        panel=panel,
        allow_unbalanced_panel=unbalanced,
    ).fit(est_method=method, bstrap=False)
    table = fit.summ_attgt(n=8).summary2
    cells = [
        {
            "group": int(row["Group"]),
            "time": int(row["Time"]),
            "estimate": float(row["ATT(g, t)"]),
            "std_error": float(row["Std. Error"]),
        }
        for _, row in table.iterrows()
    ]
    return {"cells": cells}


def main() -> None:
    panel = simulate_panel()
    panel.to_csv(HERE / "panel.csv", index=False, float_format="%.10g")
    rng = np.random.default_rng(11)
    unbalanced = panel[rng.random(len(panel)) > 0.15].reset_index(drop=True)
    unbalanced.to_csv(HERE / "unbalanced.csv", index=False, float_format="%.10g")
    # Repeated cross-sections: a fresh draw of units every year (pupils in a school).
    cross = pd.concat(
        [
            simulate_panel(seed=100 + k, n_units=300).query("year == @t")
            for k, t in enumerate(range(2015, 2021))
        ],
        ignore_index=True,
    )
    cross["row"] = np.arange(len(cross))
    cross.to_csv(HERE / "cross_sections.csv", index=False, float_format="%.10g")
    mpdta = pd.read_csv(MPDTA).rename(columns={"lemp": "y", "first_treat": "cohort"})

    panel = pd.read_csv(HERE / "panel.csv")  # exactly what the tests read
    unbalanced = pd.read_csv(HERE / "unbalanced.csv")
    cross = pd.read_csv(HERE / "cross_sections.csv")
    cases = {}
    for method in ("dr", "ipw", "reg"):
        for control in ("nevertreated", "notyettreated"):
            key = f"mpdta_lpop_{method}_{control}"
            cases[key] = {
                "moderndid": moderndid_case(
                    mpdta, idname="countyreal", xformla="~lpop", method=method, control=control
                ),
                "csdid": csdid_case(
                    mpdta, idname="countyreal", xformla="~lpop", method=method, control=control
                ),
            }
            key = f"panel_xz_{method}_{control}"
            cases[key] = {
                "moderndid": moderndid_case(
                    panel, idname="unit", xformla="~x+z", method=method, control=control
                ),
                "csdid": csdid_case(
                    panel, idname="unit", xformla="~x+z", method=method, control=control
                ),
            }
        for xformla, tag in ((None, "none"), ("~x+z", "xz")):
            cases[f"cross_sections_{tag}_{method}"] = {
                "moderndid": moderndid_case(
                    cross,
                    idname=None,
                    xformla=xformla,
                    method=method,
                    control="nevertreated",
                    panel=False,
                ),
                "csdid": csdid_case(
                    cross,
                    idname="row",
                    xformla=xformla,
                    method=method,
                    control="nevertreated",
                    panel=False,
                ),
            }
            # moderndid 0.2's unbalanced-panel path fails (no outcome tensor); csdid's works.
            cases[f"unbalanced_{tag}_{method}"] = {
                "csdid": csdid_case(
                    unbalanced,
                    idname="unit",
                    xformla=xformla,
                    method=method,
                    control="nevertreated",
                    panel=True,
                    unbalanced=True,
                ),
            }
    versions = {p: version(p) for p in ("moderndid", "csdid", "drdid", "numpy", "pandas")}
    (HERE / "reference.json").write_text(
        json.dumps({"versions": versions, "cases": cases}, indent=1, sort_keys=True)
    )
    (HERE / "versions.txt").write_text("".join(f"{k} {v}\n" for k, v in versions.items()))


if __name__ == "__main__":
    main()
