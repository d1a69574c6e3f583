"""Peer estimates on panel.csv (years 2020 and 2021 absent), for tests/test_gaps_did.py.

Run in a scratch venv with the peers installed (never a cpdimpact dependency):
    python3.11 -m venv /tmp/peer-gaps
    /tmp/peer-gaps/bin/pip install pyfixest moderndid csdid
    /tmp/peer-gaps/bin/python tests/reference/gaps/make_data.py
    /tmp/peer-gaps/bin/python tests/reference/gaps/make_reference.py
Versions are written to versions.txt; what each peer does with the gap to README.md (by hand).

Outputs (CSV):
- moderndid_att_gt_{control}_{base}.csv: ATT(g,t) (outcome-regression, no covariates) and
  analytic standard errors; moderndid_aggte.csv: the simple, dynamic, group and calendar
  aggregates and the dynamic pieces by event time.
- csdid_att_gt.csv: csdid's ATT(g,t) (never treated, varying base; point estimates: its
  standard errors are bootstrapped), or csdid_error.txt if it refuses.
- pyfixest_event_study_gap_reference.csv: a TWFE event study fitted by pyfixest.feols on
  dummies built here with the rule under test (each cohort's reference is its year at event
  time -1, or its last observed year before that when that year has no data), CR1 by unit.
- pyfixest_event_study_iref.csv: pyfixest's own i(rel_year, ref=-1) on cohorts 0, 2019, 2020,
  2023 (none of whose year -1 is in the gap), never-treated coded to the reference.
- pyfixest_sunab_cells.csv: the Sun & Abraham saturated regression (cohort x event time,
  never-treated comparison) with the same per-cohort references, fitted by pyfixest.feols;
  pyfixest_sunab_iw.csv: interaction-weighted estimates by event time with cohort shares
  (treated rows) treated as fixed, and the treated-observation weighted post ATT.
- pyfixest_saturated_native.txt: what pyfixest's own estimator="saturated" does here.
- pyfixest_imputation.csv: the imputation estimates (Borusyak, Jaravel & Spiess 2024) by
  event time and overall, step 1 fitted by pyfixest.feols (fixef_tol=1e-14) on untreated rows.
- pyfixest_did2s.csv: Gardner's two-stage estimates (pyfixest.did2s) by post-treatment event
  time and overall; their point estimates equal the imputation estimator's (Borusyak,
  Jaravel & Spiess 2024), standard errors differ (not compared).
"""

from __future__ import annotations

import importlib.metadata as meta
import platform
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
data = pd.read_csv(HERE / "panel.csv")
years = np.sort(data["year"].unique())
treated = data["first_treated"] > 0
event = np.where(treated, data["year"] - data["first_treated"], np.nan)


def reference_year(g: int, r: int = -1) -> int:
    """The rule: year g + r, or the last observed year before it when it has no data."""
    year = g + r
    if year not in years and (years < year).any():
        year = years[years < year][-1]
    return int(year)


ref_event = np.where(
    treated, data["first_treated"].map(lambda g: reference_year(g) - g if g else 0), np.nan
)
at_ref = treated & (event == ref_event)
cell = treated & ~at_ref
values = sorted({int(v) for v in event[cell]})


def name(v: int) -> str:
    return f"e_m{-v}" if v < 0 else f"e_{v}"


# ------------------------------------------------------------------ moderndid (R did port)
import moderndid as md  # noqa: E402

agg_rows, piece_rows = [], []
for control in ("nevertreated", "notyettreated"):
    for base in ("varying", "universal"):
        fit = md.att_gt(
            data,
            yname="y",
            tname="year",
            idname="unit",
            gname="first_treated",
            control_group=control,
            base_period=base,
            boot=False,
            cband=False,
            est_method="reg",
        )
        pd.DataFrame(
            {
                "group": fit.groups.astype(int),
                "time": fit.times.astype(int),
                "estimate": fit.att_gt,
                "std_error": fit.se_gt,
            }
        ).to_csv(HERE / f"moderndid_att_gt_{control}_{base}.csv", index=False)
        if base != "varying":
            continue
        for kind in ("simple", "dynamic", "group", "calendar"):
            agg = md.aggte(fit, type=kind, boot=False, cband=False)
            agg_rows.append((control, kind, agg.overall_att, agg.overall_se))
            if kind == "dynamic":
                for e, est, se in zip(
                    agg.event_times, agg.att_by_event, agg.se_by_event, strict=True
                ):
                    piece_rows.append((control, int(e), est, se))
pd.DataFrame(agg_rows, columns=["control", "kind", "estimate", "std_error"]).to_csv(
    HERE / "moderndid_aggte.csv", index=False
)
pd.DataFrame(piece_rows, columns=["control", "event_time", "estimate", "std_error"]).to_csv(
    HERE / "moderndid_dynamic.csv", index=False
)

# ------------------------------------------------------------------ csdid
try:
    from csdid.att_gt import ATTgt

    res = ATTgt(
        yname="y",
        gname="first_treated",
        idname="unit",
        tname="year",
        data=data,
        control_group="nevertreated",
    ).fit(est_method="reg")
    # ATT(g,t) only: csdid's standard errors come from its multiplier bootstrap (random)
    r = res.results
    pd.DataFrame(
        {
            "group": np.asarray(r["group"], int),
            "time": np.asarray(r["year"], int),
            "estimate": np.asarray(r["att"], float),
        }
    ).to_csv(HERE / "csdid_att_gt.csv", index=False)
except Exception:  # record a refusal as the peer's answer
    (HERE / "csdid_error.txt").write_text(traceback.format_exc())

# ------------------------------------------------------------------ pyfixest
import pyfixest as pf  # noqa: E402

es = data.copy()
for v in values:
    es[name(v)] = (cell & (event == v)).astype(float)
fit = pf.feols(
    f"y ~ {' + '.join(name(v) for v in values)} | unit + year", data=es, vcov={"CRV1": "unit"}
)
tidy = fit.tidy()
pd.DataFrame(
    {
        "event_time": values,
        "estimate": tidy.loc[[name(v) for v in values], "Estimate"].to_numpy(),
        "std_error": tidy.loc[[name(v) for v in values], "Std. Error"].to_numpy(),
    }
).to_csv(HERE / "pyfixest_event_study_gap_reference.csv", index=False)

keep = data["first_treated"].isin([0, 2019, 2020, 2023])
sub = data.loc[keep].assign(
    rel=np.where(
        data.loc[keep, "first_treated"] > 0,
        data.loc[keep, "year"] - data.loc[keep, "first_treated"],
        -1,
    )
)
fit = pf.feols("y ~ i(rel, ref=-1) | unit + year", data=sub, vcov={"CRV1": "unit"})
tidy = fit.tidy()
rel = [int(float(t.split("::")[1].rstrip("]"))) for t in tidy.index]
pd.DataFrame(
    {
        "event_time": rel,
        "estimate": tidy["Estimate"].to_numpy(),
        "std_error": tidy["Std. Error"].to_numpy(),
    }
).sort_values("event_time").to_csv(HERE / "pyfixest_event_study_iref.csv", index=False)

# Sun & Abraham: saturated cohort x event time, never-treated comparison.
sa = data.copy()
cells = sorted(
    {(int(g), int(e)) for g, e in zip(data["first_treated"][cell], event[cell], strict=True)}
)
cell_names = [f"c{g}_{name(e)}" for g, e in cells]
for (g, e), n in zip(cells, cell_names, strict=True):
    sa[n] = (cell & (data["first_treated"] == g) & (event == e)).astype(float)
fit = pf.feols(f"y ~ {' + '.join(cell_names)} | unit + year", data=sa, vcov={"CRV1": "unit"})
tidy = fit.tidy()
delta = tidy.loc[cell_names, "Estimate"].to_numpy()
vcov = (
    pd.DataFrame(fit._vcov, index=fit._coefnames, columns=fit._coefnames)
    .loc[cell_names, cell_names]
    .to_numpy()
)
counts = np.array([int(sa[n].sum()) for n in cell_names])
pd.DataFrame(
    {
        "cohort": [g for g, _ in cells],
        "event_time": [e for _, e in cells],
        "estimate": delta,
        "std_error": tidy.loc[cell_names, "Std. Error"].to_numpy(),
        "n_obs": counts,
    }
).to_csv(HERE / "pyfixest_sunab_cells.csv", index=False)
rows = []
cell_event = np.array([e for _, e in cells])
for e in sorted(set(cell_event.tolist())):
    w = np.where(cell_event == e, counts, 0) / counts[cell_event == e].sum()
    rows.append((str(e), float(w @ delta), float(np.sqrt(w @ vcov @ w))))
w = np.where(cell_event >= 0, counts, 0) / counts[cell_event >= 0].sum()
rows.append(("ATT", float(w @ delta), float(np.sqrt(w @ vcov @ w))))
pd.DataFrame(rows, columns=["event_time", "estimate", "std_error_fixed_shares"]).to_csv(
    HERE / "pyfixest_sunab_iw.csv", index=False
)

try:
    native = pf.event_study(
        data, yname="y", idname="unit", tname="year", gname="first_treated", estimator="saturated"
    )
    text = native.tidy().to_string() + "\n\naggregate():\n" + native.aggregate().to_string()
except Exception:
    text = traceback.format_exc()
(HERE / "pyfixest_saturated_native.txt").write_text(text + "\n")

# Gardner two-stage (= imputation point estimates).
g2 = data.assign(
    treat=(treated & (event >= 0)).astype(bool),
    rel_post=np.where(treated & (event >= 0), event, -1000).astype(int),
)
fit = pf.did2s(
    g2,
    yname="y",
    first_stage="~ 0 | unit + year",
    second_stage="~ i(rel_post, ref=-1000)",
    treatment="treat",
    cluster="unit",
)
tidy = fit.tidy()
rel = [int(float(t.split("::")[1].rstrip("]"))) for t in tidy.index]
out = pd.DataFrame({"event_time": [str(v) for v in rel], "estimate": tidy["Estimate"].to_numpy()})
fit = pf.did2s(
    g2,
    yname="y",
    first_stage="~ 0 | unit + year",
    second_stage="~ treat",
    treatment="treat",
    cluster="unit",
)
overall = pd.DataFrame({"event_time": ["ATT"], "estimate": [float(fit.coef().iloc[0])]})
pd.concat([out, overall]).to_csv(HERE / "pyfixest_did2s.csv", index=False)

# The imputation estimator itself with pyfixest's fixed-effects engine at a tight tolerance
# (did2s above recovers the effects to pyfixest's default tolerance, 1e-6, about 1e-5 relative
# here): step 1 fits
# unit and year effects on the untreated rows, step 2 averages y - fitted over treated rows.
untreated = data.loc[~(treated & (event >= 0))]
post = data.loc[treated & (event >= 0)].assign(event_time=event[treated & (event >= 0)])
fit = pf.feols("y ~ 1 | unit + year", data=untreated, fixef_tol=1e-14)
post = post.assign(effect=post["y"].to_numpy() - fit.predict(newdata=post, atol=1e-14, btol=1e-14))
by_event = post.groupby("event_time")["effect"].mean()
pd.concat(
    [
        pd.DataFrame(
            {"event_time": by_event.index.astype(int).astype(str), "estimate": by_event.to_numpy()}
        ),
        pd.DataFrame({"event_time": ["ATT"], "estimate": [post["effect"].mean()]}),
    ]
).to_csv(HERE / "pyfixest_imputation.csv", index=False)

with open(HERE / "versions.txt", "w") as fh:
    fh.write(f"python {platform.python_version()}\n")
    for pkg in ("moderndid", "csdid", "pyfixest", "numpy", "pandas"):
        fh.write(f"{pkg} {meta.version(pkg)}\n")
