"""Benchmark synthetic DiD and synthetic control with placebo standard errors against peers.

One run simulates an area-by-year panel (default 150 areas x 15 years, one treated area from
year 11, an interactive fixed-effects model: area levels, two trending factors with area
loadings, noise; true effect 2), saves it to a temporary CSV read by every case, and times:

* cpdimpact ``SyntheticDiD()`` (synthdid's defaults) with placebo standard errors: every donor
  once (149 placebo refits), the target being under 2 s;
* cpdimpact ``SyntheticDiD(method="sc")`` and ``SyntheticControl()`` (exact), each with their
  149 placebos, and ``SyntheticDiD(method="did")``;
* R synthdid 0.0.9 (``synthdid_estimate`` and ``vcov(method = "placebo")``, which draws
  ``--r-replications`` random placebos, default 20; the time per placebo is printed, and the
  time of 149 placebos extrapolated);
* pysyncon 1.7.0: the inner synthetic-control problem (SLSQP, ``Synth.w_optimize`` with V = I)
  for the treated area and each donor as placebo, the same work as ``SyntheticControl``;
* scpi-pkg (``scest`` with simplex weights, point estimate only), when installed.

Every case runs in its own subprocess (this script with ``--case``), whose peak memory is read
with ``RUSAGE_CHILDREN`` by a wrapper process (``--wrap``). "fit" is the estimation call alone;
"total" is the subprocess wall time (start-up, imports, reading the CSV). The "CPU" columns
give the CPU seconds (user + system) of the same spans: on the shared 2-core machine, where
other jobs often hold the cores, CPU seconds are the better guide to an idle machine's wall time.

    .venv/bin/python benchmarks/comparison_sdid.py
    .venv/bin/python benchmarks/comparison_sdid.py --skip-peers --areas 300
    .venv/bin/python benchmarks/comparison_sdid.py --peers-venv /tmp/sc-peers --r-lib /tmp/sc-r/lib

The peers' venv: ``python -m venv /tmp/sc-peers && /tmp/sc-peers/bin/pip install pysyncon
scpi-pkg``; R synthdid from its GitHub source with ``R CMD INSTALL -l /tmp/sc-r/lib synthdid``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEED = 20261123
EFFECT = 2.0
HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent


def simulate(n_areas: int, n_years: int, n_pre: int, seed: int = SEED):
    import pandas as pd

    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n_years, 2)).cumsum(axis=0)
    loadings = rng.normal(size=(n_areas, 2))
    y = 50 + 3 * rng.normal(size=(n_areas, 1)) + loadings @ factors.T
    y += rng.normal(size=y.shape)
    y[0, n_pre:] += EFFECT
    areas = [f"area{i:04d}" for i in range(n_areas)]
    years = np.arange(2000, 2000 + n_years)
    frame = pd.DataFrame(
        {"area": np.repeat(areas, n_years), "year": np.tile(years, n_areas), "outcome": y.ravel()}
    )
    frame["treated"] = ((frame["area"] == areas[0]) & (frame["year"] >= years[n_pre])).astype(int)
    return frame


# ---------------------------------------------------------------------------------- cases


def case_cpdimpact(kind: str, csv: str) -> dict:
    import warnings

    import pandas as pd

    from cpdimpact.comparison import SyntheticControl, SyntheticDiD

    data = pd.read_csv(csv)
    est = {
        "sdid": SyntheticDiD(),
        "sc_fw": SyntheticDiD(method="sc"),
        "did": SyntheticDiD(method="did"),
        "sc_exact": SyntheticControl(),
    }[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start, cpu = time.perf_counter(), time.process_time()
        fit = est.fit(data)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "fit": seconds,
        "fit_cpu": cpu,
        "estimate": fit.estimate,
        "std_error": fit.std_error,
        "placebos": len(fit.placebo_effects),
    }


def case_pysyncon(csv: str) -> dict:
    import pandas as pd
    from pysyncon import Synth

    data = pd.read_csv(csv)
    wide = data.pivot(index="year", columns="area", values="outcome")
    treated = data.loc[data["treated"] == 1, "area"].iloc[0]
    start_year = data.loc[data["treated"] == 1, "year"].min()
    pre, post = wide.loc[wide.index < start_year], wide.loc[wide.index >= start_year]
    donors = [a for a in wide.columns if a != treated]
    T0 = len(pre)
    V = np.eye(T0) / T0

    def effect(target, pool):
        w, _ = Synth.w_optimize(V_mat=V, X0=pre[pool].to_numpy(), X1=pre[target].to_numpy())
        return float((post[target] - post[pool].to_numpy() @ w).mean())

    start, cpu = time.perf_counter(), time.process_time()
    estimate = effect(treated, donors)
    placebos = [effect(d, [o for o in donors if o != d]) for d in donors]
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    p = np.asarray(placebos)
    return {
        "fit": seconds,
        "fit_cpu": cpu,
        "estimate": estimate,
        "std_error": float(np.sqrt(np.mean((p - p.mean()) ** 2))),
        "placebos": len(p),
    }


def case_scpi(csv: str) -> dict:
    import pandas as pd
    from scpi_pkg.scdata import scdata
    from scpi_pkg.scest import scest

    data = pd.read_csv(csv)
    treated = data.loc[data["treated"] == 1, "area"].iloc[0]
    start_year = int(data.loc[data["treated"] == 1, "year"].min())
    years = sorted(data["year"].unique())
    start, cpu = time.perf_counter(), time.process_time()
    prep = scdata(
        df=data,
        id_var="area",
        time_var="year",
        outcome_var="outcome",
        period_pre=np.array([y for y in years if y < start_year]),
        period_post=np.array([y for y in years if y >= start_year]),
        unit_tr=treated,
        unit_co=sorted(a for a in data["area"].unique() if a != treated),
        features=["outcome"],
        cov_adj=None,
        cointegrated_data=False,
        constant=False,
    )
    fit = scest(prep, w_constr={"name": "simplex"})
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    y_post = np.asarray(fit.Y_post_fit).ravel()
    actual = data[(data["area"] == treated) & (data["year"] >= start_year)].sort_values("year")
    estimate = float((actual["outcome"].to_numpy() - y_post).mean())
    return {
        "fit": seconds,
        "fit_cpu": cpu,
        "estimate": estimate,
        "std_error": float("nan"),
        "placebos": 0,
    }


R_SCRIPT = r"""
suppressMessages(library(synthdid))
args <- commandArgs(trailingOnly = TRUE)
panel <- read.csv(args[1])
reps <- as.integer(args[2])
setup <- panel.matrices(panel, unit = "area", time = "year", outcome = "outcome",
                        treatment = "treated")
cpu <- function() { p <- proc.time(); p[["user.self"]] + p[["sys.self"]] }
t0 <- proc.time()[["elapsed"]]; c0 <- cpu()
est <- synthdid_estimate(setup$Y, setup$N0, setup$T0)
t1 <- proc.time()[["elapsed"]]; c1 <- cpu()
set.seed(1)
se <- sqrt(vcov(est, method = "placebo", replications = reps))
t2 <- proc.time()[["elapsed"]]; c2 <- cpu()
cat(sprintf(paste0('{"estimate": %.10f, "std_error": %.10f, "fit_point": %.4f, ',
                   '"fit_placebo": %.4f, "cpu_point": %.4f, "cpu_placebo": %.4f}\n'),
            c(est), se, t1 - t0, t2 - t1, c1 - c0, c2 - c1))
"""


def case_r(csv: str, reps: int, r_lib: str) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as f:
        f.write(R_SCRIPT)
    env = dict(os.environ, R_LIBS=r_lib)
    out = subprocess.run(
        ["Rscript", f.name, csv, str(reps)], capture_output=True, text=True, env=env, check=True
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    per = res["fit_placebo"] / reps
    return {
        "fit": res["fit_point"] + res["fit_placebo"],
        "fit_cpu": res["cpu_point"] + res["cpu_placebo"],
        "cpu_point": res["cpu_point"],
        "cpu_per_placebo": res["cpu_placebo"] / reps,
        "estimate": res["estimate"],
        "std_error": res["std_error"],
        "placebos": reps,
        "fit_point": res["fit_point"],
        "seconds_per_placebo": per,
    }


def run_case(args) -> dict:
    if args.case.startswith("cpdimpact_"):
        return case_cpdimpact(args.case.removeprefix("cpdimpact_"), args.csv)
    if args.case == "pysyncon":
        return case_pysyncon(args.csv)
    if args.case == "scpi":
        return case_scpi(args.csv)
    if args.case == "r_synthdid":
        return case_r(args.csv, args.r_replications, args.r_lib)
    raise SystemExit(f"unknown case {args.case}")


# ---------------------------------------------------------------------------------- driver


def wrap(cmd: list[str], timeout: float) -> dict:
    """Run one case in a child process; report its result, wall time and peak memory."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    total = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = usage.ru_maxrss / 1024
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res.update(total=total, total_cpu=usage.ru_utime + usage.ru_stime, peak_mb=peak)
    return res


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--areas", type=int, default=150)
    parser.add_argument("--years", type=int, default=15)
    parser.add_argument("--pre", type=int, default=10)
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--peers-venv", default="/tmp/sc-peers")
    parser.add_argument("--r-lib", default="/tmp/sc-r/lib")
    parser.add_argument("--r-replications", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--wrap", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.wrap:
        print(json.dumps(wrap(args.wrap, args.timeout)))
        return 0
    if args.case:
        print(json.dumps(run_case(args)))
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="sdid-bench-"))
    csv = tmp / "panel.csv"
    simulate(args.areas, args.years, args.pre).to_csv(csv, index=False)
    ours = [sys.executable, str(HERE), "--csv", str(csv)]
    peer_py = str(Path(args.peers_venv) / "bin" / "python")
    peer = [peer_py, str(HERE), "--csv", str(csv)]
    cases = [
        ("cpdimpact SyntheticDiD + placebo SE", ours + ["--case", "cpdimpact_sdid"]),
        ("cpdimpact SyntheticDiD(method='sc') + placebo SE", ours + ["--case", "cpdimpact_sc_fw"]),
        (
            "cpdimpact SyntheticControl (exact) + placebo SE",
            ours + ["--case", "cpdimpact_sc_exact"],
        ),
        ("cpdimpact SyntheticDiD(method='did') + placebo SE", ours + ["--case", "cpdimpact_did"]),
    ]
    if not args.skip_peers:
        if Path(peer_py).exists():
            cases.append(
                ("pysyncon w_optimize (SC, SLSQP) + placebos", peer + ["--case", "pysyncon"])
            )
            cases.append(("scpi-pkg scest (SC, simplex), point only", peer + ["--case", "scpi"]))
        r_args = ["--r-replications", str(args.r_replications), "--r-lib", args.r_lib]
        cases.append(
            (
                f"R synthdid + placebo SE ({args.r_replications} random placebos)",
                ours + ["--case", "r_synthdid"] + r_args,
            )
        )
    load = os.getloadavg()[0]
    print(
        f"{args.areas} areas x {args.years} years ({args.pre} pre), one treated area, effect "
        f"{EFFECT}; Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} cores, load average {load:.1f}"
    )
    print(
        "| case | fit s | fit CPU s | total s | total CPU s | peak MB | estimate | placebo SE | placebos |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    results = {}
    for name, cmd in cases:
        res = json.loads(
            subprocess.run(
                [sys.executable, str(HERE), "--timeout", str(args.timeout), "--wrap", *cmd],
                capture_output=True,
                text=True,
            ).stdout.strip()
            or '{"error": "no output"}'
        )
        results[name] = res
        if "error" in res:
            print(f"| {name} | — | — | — | — | — | {res['error']} | | |")
            continue
        print(
            f"| {name} | {res['fit']:.3f} | {res['fit_cpu']:.3f} | {res['total']:.2f} | "
            f"{res['total_cpu']:.2f} | {res['peak_mb']:.0f} | "
            f"{res['estimate']:.4f} | {res['std_error']:.4f} | {res['placebos']} |"
        )
    r = next((v for k, v in results.items() if k.startswith("R synthdid")), None)
    if r and "error" not in r:
        n = args.areas - 1
        print(
            f"\nR synthdid: point estimate {r['fit_point']:.2f} s ({r['cpu_point']:.2f} s CPU), "
            f"{r['seconds_per_placebo']:.2f} s ({r['cpu_per_placebo']:.2f} s CPU) per placebo: "
            f"{n} placebos would take about {r['fit_point'] + n * r['seconds_per_placebo']:.0f} s "
            f"({r['cpu_point'] + n * r['cpu_per_placebo']:.0f} s CPU)."
        )
    ours_sdid = results.get("cpdimpact SyntheticDiD + placebo SE", {})
    if r and "error" not in r and "error" not in ours_sdid:
        print(
            f"SDID estimate difference cpdimpact - R: {ours_sdid['estimate'] - r['estimate']:.2e}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
