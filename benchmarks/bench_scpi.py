"""Benchmark synthetic control with prediction intervals against scpi-pkg.

One treated area, 150 donor areas, 10 years (7 before the start, 3 after), an interactive
fixed-effects model (area levels, two trending factors with area loadings, noise; the treated
area's level and loadings beyond the donors', so its pre-period path is not fitted exactly and
the intervals have residuals to work with; true effect 2). The panel is saved to a temporary CSV
read by every case; each case runs in its own subprocess (this script with ``--case``), which
reports its fit time, CPU time and peak memory (``ru_maxrss``); both run on one core
(``OPENBLAS_NUM_THREADS=1``, scpi's ``cores=1``):

* cpdimpact ``SyntheticControl(placebo=False, prediction=PredictionIntervals())``: 200
  simulations (scpi's default), gaussian out-of-sample bounds;
* scpi-pkg ``scpi`` (simplex, ``sims=200``, ``e_method="gaussian"``, ``cores=1``), its point
  estimate included, from a scratch venv (``--peer-python``), when installed.

    .venv/bin/python benchmarks/bench_scpi.py
    .venv/bin/python benchmarks/bench_scpi.py --peer-python /tmp/peer-scpi/bin/python
    .venv/bin/python benchmarks/bench_scpi.py --sims 1000

The peer's venv: ``python3.11 -m venv /tmp/peer-scpi && /tmp/peer-scpi/bin/pip install
scpi-pkg "pandas<3"`` (scpi-pkg 4.0.0 fails on pandas 3).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEED = 20261207
EFFECT = 2.0
HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
TREATED = "A000"
#: Both cases on one core: scpi runs with cores=1, and multi-threaded BLAS on tiny matrix
#: products only spins when other jobs hold the shared machine's cores.
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def simulate(n_donors: int, n_years: int, n_pre: int, seed: int = SEED):
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = n_donors + 1
    factors = rng.normal(size=(n_years, 2)).cumsum(axis=0)
    loadings = rng.normal(size=(n, 2))
    level = 3 * rng.normal(size=n)
    loadings[0], level[0] = [2.5, 2.5], 8.0  # beyond the donors: no exact pre-period fit
    y = 50 + level[:, None] + loadings @ factors.T + rng.normal(size=(n, n_years))
    y[0, n_pre:] += EFFECT
    years = np.arange(2014, 2014 + n_years)
    frame = pd.DataFrame(
        {
            "area": np.repeat([f"A{i:03d}" for i in range(n)], n_years),
            "year": np.tile(years, n),
            "outcome": y.ravel(),
        }
    )
    frame["treated"] = ((frame["area"] == TREATED) & (frame["year"] >= years[n_pre])).astype(int)
    return frame


def case_cpdimpact(csv: str, sims: int) -> dict:
    import warnings

    import pandas as pd

    sys.path.insert(0, str(ROOT / "src"))
    from cpdimpact.comparison import PredictionIntervals, SyntheticControl

    data = pd.read_csv(csv)
    spec = SyntheticControl(
        placebo=False, prediction=PredictionIntervals(n_simulations=sims, seed=1)
    )
    cpu, start = time.process_time(), time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = spec.fit(data)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    pi = fit.prediction_intervals
    first = pi.iloc[0]
    return {
        "seconds": seconds,
        "cpu": cpu,
        "estimate": fit.estimate,
        "first_year": [float(first["lower"]), float(first["upper"])],
    }


def case_scpi(csv: str, sims: int, n_pre: int) -> dict:
    import warnings

    import pandas as pd
    from scpi_pkg.scdata import scdata
    from scpi_pkg.scpi import scpi

    warnings.filterwarnings("ignore")
    data = pd.read_csv(csv)
    years = np.sort(data["year"].unique())
    donors = sorted(a for a in data["area"].unique() if a != TREATED)
    cpu, start = time.process_time(), time.perf_counter()
    prep = scdata(
        df=data,
        id_var="area",
        time_var="year",
        outcome_var="outcome",
        period_pre=years[:n_pre],
        period_post=years[n_pre:],
        unit_tr=TREATED,
        unit_co=donors,
        constant=False,
        cointegrated_data=False,
    )
    np.random.seed(1)  # noqa: NPY002 - scpi draws from numpy's global stream
    out = scpi(
        prep,
        w_constr={"name": "simplex"},
        sims=sims,
        e_method="gaussian",
        cores=1,
        verbose=False,
    )
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    treated = prep.Y_post.to_numpy().ravel()
    ci = out.CI_all_gaussian
    return {
        "seconds": seconds,
        "cpu": cpu,
        "estimate": float(np.mean(treated - out.Y_post_fit.to_numpy().ravel())),
        "first_year": [
            float(treated[0] - ci["Upper"].iloc[0]),
            float(treated[0] - ci["Lower"].iloc[0]),
        ],
    }


def run_case(python: str, case: str, csv: str, sims: int, n_pre: int) -> dict:
    start = time.perf_counter()
    proc = subprocess.run(
        [python, str(HERE), "--case", case, "--csv", csv, "--sims", str(sims), "--pre", str(n_pre)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **ONE_THREAD},
    )
    total = time.perf_counter() - start
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["total"] = total
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=["cpdimpact", "scpi"])
    parser.add_argument("--csv")
    parser.add_argument("--donors", type=int, default=150)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--pre", type=int, default=7)
    parser.add_argument("--sims", type=int, default=200)
    parser.add_argument("--peer-python", default="/tmp/peer-scpi/bin/python")
    args = parser.parse_args()
    if args.case:
        if args.case == "cpdimpact":
            out = case_cpdimpact(args.csv, args.sims)
        else:
            out = case_scpi(args.csv, args.sims, args.pre)
        out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(out))
        return

    with tempfile.TemporaryDirectory() as tmp:
        csv = str(Path(tmp) / "panel.csv")
        simulate(args.donors, args.years, args.pre).to_csv(csv, index=False)
        rows = {"cpdimpact": run_case(sys.executable, "cpdimpact", csv, args.sims, args.pre)}
        if Path(args.peer_python).exists():
            rows["scpi-pkg"] = run_case(args.peer_python, "scpi", csv, args.sims, args.pre)
    print(
        f"one treated area, {args.donors} donors, {args.years} years ({args.pre} pre), "
        f"{args.sims} simulations, true effect {EFFECT}"
    )
    peer = rows.get("scpi-pkg", {}).get("seconds")
    print(
        "| case | seconds (fit) | CPU s | seconds (total) | ratio to scpi-pkg | peak MB | "
        "estimate | first-year interval |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, r in rows.items():
        if "error" in r:
            print(f"| {name} | failed: {r['error']} |")
            continue
        ratio = f"{r['seconds'] / peer:.3f}" if peer else "—"
        lo, hi = r["first_year"]
        print(
            f"| {name} | {r['seconds']:.2f} | {r['cpu']:.2f} | {r['total']:.2f} | {ratio} | "
            f"{r['peak_mb']:.0f} | {r['estimate']:.4f} | [{lo:.3f}, {hi:.3f}] |"
        )


if __name__ == "__main__":
    main()
