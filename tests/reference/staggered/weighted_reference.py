"""Reference group-time effects for StaggeredDiD with sampling weights (``weights=``), from
moderndid (a port of R did / DRDID, ``weightsname``) and csdid (``weights_name``).

Run with the peers' scratch venv (never a project dependency):

    /tmp/did-peers/bin/python tests/reference/staggered/weighted_reference.py

It reads ``panel.csv``, ``unbalanced.csv`` and ``cross_sections.csv`` (see
``make_reference.py``), adds a weight column (log-normal, constant within unit on the panels,
depending on ``x`` so that weighting moves the estimates) and writes ``weighted_panel.csv``,
``weighted_unbalanced.csv``, ``weighted_cross_sections.csv`` and ``weighted_reference.json``
(unbalanced cases from csdid only: moderndid 0.2's unbalanced-panel path fails): per case and peer, ATT(g,t) with analytic standard errors and the
four aggregates (estimate and analytic SE). moderndid 0.2's aggregates use unweighted cohort
shares (its ``aggte`` does not find the weights), unlike R ``did``'s ``aggte`` (``pg`` is the
weighted mean of the cohort indicators) and csdid: the tests compare aggregates with csdid.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
HERE = Path(__file__).parent


def weights_for(keys: np.ndarray, x: np.ndarray, seed: int) -> np.ndarray:
    """Log-normal weights, larger for high ``x``, rounded to 6 decimals (stored exactly)."""
    rng = np.random.default_rng(seed)
    draw = rng.lognormal(mean=0.0, sigma=0.5, size=len(keys))
    return np.round(draw * np.exp(0.4 * x), 6)


def moderndid_case(data, *, idname, xformla, method, control, panel=True):
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
        weightsname="w",
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
        aggregates[kind] = {"estimate": float(agg.overall_att), "std_error": float(agg.overall_se)}
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
        weights_name="w",
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
    aggregates = {}
    for kind in ("simple", "dynamic", "group", "calendar"):
        with contextlib.redirect_stdout(io.StringIO()):  # csdid prints its table
            fit.aggte(typec=kind, bstrap=False, cband=False)
        aggregates[kind] = {
            "estimate": float(fit.atte["overall_att"]),
            "std_error": float(fit.atte["overall_se"]),
        }
    return {"cells": cells, "aggregates": aggregates}


def main() -> None:
    panel = pd.read_csv(HERE / "panel.csv")
    units = panel.drop_duplicates("unit").sort_values("unit")
    draws = weights_for(units["unit"].to_numpy(), units["x"].to_numpy(), 3)
    w = dict(zip(units["unit"], draws, strict=True))
    panel["w"] = panel["unit"].map(w)
    panel.to_csv(HERE / "weighted_panel.csv", index=False, float_format="%.10g")
    cross = pd.read_csv(HERE / "cross_sections.csv")
    cross["w"] = weights_for(cross["row"].to_numpy(), cross["x"].to_numpy(), 4)
    cross.to_csv(HERE / "weighted_cross_sections.csv", index=False, float_format="%.10g")
    unbalanced = pd.read_csv(HERE / "unbalanced.csv")
    unbalanced["w"] = unbalanced["unit"].map(w)
    unbalanced.to_csv(HERE / "weighted_unbalanced.csv", index=False, float_format="%.10g")
    panel = pd.read_csv(HERE / "weighted_panel.csv")  # exactly what the tests read
    cross = pd.read_csv(HERE / "weighted_cross_sections.csv")
    unbalanced = pd.read_csv(HERE / "weighted_unbalanced.csv")

    cases = {}
    for method in ("dr", "ipw", "reg"):
        for xformla, tag in ((None, "none"), ("~x+z", "xz")):
            for control in ("nevertreated", "notyettreated"):
                cases[f"panel_{tag}_{method}_{control}"] = {
                    peer: case(
                        panel, idname="unit", xformla=xformla, method=method, control=control
                    )
                    for peer, case in (("moderndid", moderndid_case), ("csdid", csdid_case))
                }
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
            # moderndid 0.2's unbalanced-panel path fails (see make_reference.py); csdid's works.
            cases[f"unbalanced_{tag}_{method}"] = {
                "csdid": csdid_case(
                    unbalanced,
                    idname="unit",
                    xformla=xformla,
                    method=method,
                    control="nevertreated",
                    unbalanced=True,
                )
            }
    versions = {p: version(p) for p in ("moderndid", "csdid", "drdid", "numpy", "pandas")}
    (HERE / "weighted_reference.json").write_text(
        json.dumps({"versions": versions, "cases": cases}, indent=1, sort_keys=True)
    )


if __name__ == "__main__":
    main()
