"""Reference intervals for cpdimpact.did.honest from moderndid (a Python port of HonestDiD)
and diff-diff.

Run with the peers' venv (moderndid 0.2.0 with cvxpy, diff-diff 3.13), from this folder:

    /tmp/did-peers/bin/python make_reference.py

Inputs (all in this folder):
- ``bcdata_eventstudy.csv``: HonestDiD's ``BCdata_EventStudy`` (Benzarti & Carloni 2019 profits
  event study; reference 2008), exported from the package's ``data/BCdata_EventStudy.rda``.
- ``ehec_eventstudy.csv``: the HonestDiD README's Medicaid example (TWFE event study of ``dins``
  on the 2014 cohort vs never-expanding states, 2008-2015, clustered by state), estimated with
  cpdimpact's ``EventStudy`` by ``make_inputs.py`` from ``ehec.csv`` (moderndid's copy of the data).
- mpdta (moderndid's copy): moderndid's own ``att_gt(base_period="universal")`` and
  ``aggte(type="dynamic")``; its coefficients and covariance are written to
  ``mpdta_eventstudy.csv`` so the test can compare cpdimpact's StaggeredDiD to them.

Output: ``reference_<case>.json`` (``make_reference.py [bcdata] [ehec] [mpdta]``) with, per
case and target, the peers' interval end points, the grid
step each grid-inverted interval was read from, and the spread of the least-favourable hybrid's
end points over seeds (its critical value is simulated).
"""

from __future__ import annotations

import json
import platform
import sys
import time
import warnings
from importlib.metadata import version

import numpy as np
import pandas as pd

warnings.simplefilter("ignore")

from diff_diff.honest_did import _compute_optimal_flci, _solve_rm_bounds_union  # noqa: E402
from moderndid import aggte, att_gt, load_mpdta  # noqa: E402
from moderndid.didhonest import (  # noqa: E402
    compute_conditional_cs_rm,
    compute_conditional_cs_sd,
    compute_identified_set_rm,
    compute_identified_set_sd,
    construct_original_cs,
    create_sensitivity_results_sm,
)

GRID_POINTS = 1000  # HonestDiD's createSensitivityResults* default
SEEDS = (0, 1)
MBAR = [0.5, 1.0, 2.0]


def read_eventstudy(path):
    frame = pd.read_csv(path)
    beta = frame["betahat"].to_numpy()
    sigma = frame[[c for c in frame.columns if c.startswith("sigma_")]].to_numpy()
    return frame["event_time"].to_numpy(), beta, sigma


def mpdta_inputs():
    data = load_mpdta()
    gt = att_gt(
        data=data,
        yname="lemp",
        tname="year",
        idname="countyreal",
        gname="first.treat",
        base_period="universal",
        control_group="nevertreated",
        boot=False,
    )
    es = aggte(gt, type="dynamic")
    times = np.asarray(es.event_times)
    keep = times != -1  # the universal reference, normalised to zero
    psi = np.asarray(es.influence_func)[:, keep]
    n = psi.shape[0]
    beta, sigma = np.asarray(es.att_by_event)[keep], psi.T @ psi / n**2
    frame = pd.DataFrame(sigma, columns=[f"sigma_{i + 1}" for i in range(len(beta))])
    frame.insert(0, "betahat", beta)
    frame.insert(0, "event_time", times[keep])
    frame.to_csv("mpdta_eventstudy.csv", index=False, float_format="%.17g")
    return times[keep], beta, sigma


def rm_intervals(beta, sigma, T, P, lvec, hybrid):
    """Each Mbar: moderndid's grid (identified set +- 20 sd, as create_sensitivity_results_rm),
    end points for each seed (hybrid) or once (ARP, deterministic)."""
    sd = float(np.sqrt(lvec @ sigma[T:, T:] @ lvec))
    rows = []
    for mbar in MBAR:
        ids = compute_identified_set_rm(mbar, beta, lvec, T, P)
        lo, hi = ids.id_lb - 20 * sd, ids.id_ub + 20 * sd
        lbs, ubs = [], []
        for seed in SEEDS if hybrid == "LF" else (None,):
            res = compute_conditional_cs_rm(
                beta,
                sigma,
                T,
                P,
                l_vec=lvec,
                m_bar=mbar,
                alpha=0.05,
                hybrid_flag=hybrid,
                grid_points=GRID_POINTS,
                grid_lb=lo,
                grid_ub=hi,
                seed=seed,
            )
            accepted = np.asarray(res["grid"])[np.asarray(res["accept"]) > 0]
            lbs.append(float(accepted.min()))
            ubs.append(float(accepted.max()))
        rows.append(
            {
                "bound": mbar,
                "ci_lower": lbs[0],
                "ci_upper": ubs[0],
                "ci_lower_seeds": lbs,
                "ci_upper_seeds": ubs,
                "grid_step": (hi - lo) / (GRID_POINTS - 1),
                "id_lower": float(ids.id_lb),
                "id_upper": float(ids.id_ub),
            }
        )
    return rows


def sd_intervals(beta, sigma, T, P, lvec, mvec):
    md = create_sensitivity_results_sm(beta, sigma, T, P, method="FLCI", m_vec=mvec, l_vec=lvec)
    rows = []
    for (lb, ub), m in zip(md.select(["lb", "ub"]).iter_rows(), mvec, strict=True):
        dd_lb, dd_ub = _compute_optimal_flci(beta[:T], beta[T:], sigma, lvec, T, P, m, 0.05)
        ids = compute_identified_set_sd(m, beta, lvec, T, P)
        rows.append(
            {
                "bound": m,
                "ci_lower": float(lb),
                "ci_upper": float(ub),
                "diff_diff_ci_lower": float(dd_lb),
                "diff_diff_ci_upper": float(dd_ub),
                "id_lower": float(ids.id_lb),
                "id_upper": float(ids.id_ub),
            }
        )
    return rows


def sd_hybrid(beta, sigma, T, P, lvec, mvec):
    """Delta^SD with the C-LF hybrid (grid as HonestDiD: identified set at beta = 0 +- 20 sd)."""
    sd = float(np.sqrt(lvec @ sigma[T:, T:] @ lvec))
    rows = []
    for m in mvec:
        ids = compute_identified_set_sd(m, np.zeros_like(beta), lvec, T, P)
        lo, hi = ids.id_lb - 20 * sd, ids.id_ub + 20 * sd
        lbs, ubs = [], []
        for seed in SEEDS:
            res = compute_conditional_cs_sd(
                beta,
                sigma,
                T,
                P,
                l_vec=lvec,
                m_bar=m,
                alpha=0.05,
                hybrid_flag="LF",
                grid_points=GRID_POINTS,
                grid_lb=lo,
                grid_ub=hi,
                seed=seed,
            )
            accepted = np.asarray(res["grid"])[np.asarray(res["accept"]) > 0]
            lbs.append(float(accepted.min()))
            ubs.append(float(accepted.max()))
        rows.append(
            {
                "bound": m,
                "ci_lower": lbs[0],
                "ci_upper": ubs[0],
                "ci_lower_seeds": lbs,
                "ci_upper_seeds": ubs,
                "grid_step": (hi - lo) / (GRID_POINTS - 1),
            }
        )
    return rows


def case(name, times, beta, sigma, mvec, targets, sd_clf=False, rm_targets=("first_post",)):
    T = int((times < times[np.flatnonzero(np.diff(times) == 2)[0] + 1]).sum())
    P = beta.size - T
    out = {"event_times": times.tolist(), "n_pre": T, "n_post": P, "targets": {}}
    for target in targets:
        lvec = np.zeros(P)
        if target == "first_post":
            lvec[0] = 1.0
        else:
            lvec[:] = 1.0 / P
        started = time.time()
        original = construct_original_cs(beta, sigma, T, P, l_vec=lvec)
        entry = {
            "weights": lvec.tolist(),
            "conventional": [float(original.lb), float(original.ub)],
            "smoothness_flci": sd_intervals(beta, sigma, T, P, lvec, mvec),
            "diff_diff_rm_identified_set": [
                list(_solve_rm_bounds_union(beta[:T], beta[T:], lvec, T, mbar)) for mbar in MBAR
            ],
        }
        if target in rm_targets:  # moderndid's grid inversion is slow (~20 s a bound and seed)
            entry["relative_magnitude_clf"] = rm_intervals(beta, sigma, T, P, lvec, "LF")
        if target == "first_post":  # the ARP conditional test is deterministic: once suffices
            entry["relative_magnitude_conditional"] = rm_intervals(beta, sigma, T, P, lvec, "ARP")
        if sd_clf:
            entry["smoothness_clf"] = sd_hybrid(beta, sigma, T, P, lvec, mvec[:4])
        out["targets"][target] = entry
        print(f"{name} {target}: {time.time() - started:.0f} s", flush=True)
    return out


def main(names):
    """One JSON per case (``reference_<case>.json``); cases can run in parallel."""
    targets = ["first_post", "average_post"]
    for name in names:
        if name == "bcdata":
            times, beta, sigma = read_eventstudy("bcdata_eventstudy.csv")
            out = case(name, times, beta, sigma, [0.0, 0.01, 0.02, 0.05, 0.1], targets)
        elif name == "ehec":
            times, beta, sigma = read_eventstudy("ehec_eventstudy.csv")
            mvec = [0.0, 0.01, 0.02, 0.03, 0.04, 0.05]
            out = case(name, times, beta, sigma, mvec, targets, sd_clf=True, rm_targets=targets)
        else:
            times, beta, sigma = mpdta_inputs()
            out = case(name, times, beta, sigma, [0.0, 0.01, 0.02, 0.05], targets)
        out.update(grid_points=GRID_POINTS, seeds=list(SEEDS))
        with open(f"reference_{name}.json", "w") as f:
            json.dump(out, f, indent=1)
    with open("versions.txt", "w") as f:
        f.write(f"python {platform.python_version()}\n")
        for package in ("moderndid", "diff_diff", "cvxpy", "numpy", "scipy", "polars"):
            f.write(f"{package} {version(package)}\n")
        f.write("HonestDiD (R) 0.2.8: source of bcdata_eventstudy.csv and the README values\n")


if __name__ == "__main__":
    main(sys.argv[1:] or ["bcdata", "ehec", "mpdta"])
