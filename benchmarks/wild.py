"""Benchmark the wild cluster bootstrap of a TWFE DiD against the Python peers.

One run simulates a balanced unit-year panel (default 20,000 units x 10 years = 200,000 rows)
in 20 clusters (the level of assignment: half the clusters are treated from year 6, no
staggering, so the TWFE regression is a clean 2x2 design), saves it once to a temporary CSV
read by every case, and times the wild cluster bootstrap-t test of ``H0: beta = 0`` on the
coefficient of ``D_it`` in ``y_it = alpha_i + lambda_t + beta D_it + e_it`` with standard
errors clustered by cluster, 9,999 draws of Webb's six-point weights, null imposed (WCR), by

* cpdimpact ``cpdimpact.did.wild_cluster_bootstrap`` (p-value and the test-inverted interval);
* diff-diff ``TwoWayFixedEffects(inference="wild_bootstrap", bootstrap_weights="webb")``. Its
  static TWFE absorbs unit and *post* effects, not year effects, so the year dummies (minus
  the one collinear with post) are passed as covariates: the same model, the same residuals.
  Its fit also inverts the test for an interval;
* wildboottest (``wildboottest.wildboottest``) on a statsmodels OLS of the within-transformed
  data (outcome and ``D_it`` demeaned by unit and year, exact on a balanced panel). With the
  fixed effects as dummies the design would be 200,000 x 20,010 (32 GB), so the
  within-transformed regression is the feasible way to run it; the bootstrap p-value is the
  same (Frisch-Waugh-Lovell), only its small-sample factor (and so the t statistic) differs;
* pyfixest ``feols("y ~ d | unit + year").wildboottest(...)`` (optional), which builds the
  one-hot fixed-effect design before calling wildboottest.

Every case runs in its own subprocess: a wrapper process (this script, ``--wrap``) starts the
case (this script again, ``--case``, under the project's or the peers' interpreter) and reads its
peak memory with ``RUSAGE_CHILDREN``. Each peer's case caps its address space at ``--peer-mem-gb``
(default 8 GB, ``RLIMIT_AS``) so that a peer cannot push the shared machine into swap; a peer
that hits it is recorded as "over 8 GB". A case that fails or passes ``--timeout`` is recorded as
such. The estimate, t statistic and p-value of each peer are checked against cpdimpact's; the
p-values differ only by Monte Carlo error (different random draws), whose standard error is
printed.

    .venv/bin/python benchmarks/wild.py                    # everything (a few minutes)
    .venv/bin/python benchmarks/wild.py --skip-peers
    .venv/bin/python benchmarks/wild.py --peers-venv /tmp/did-peers --timeout 300

The peers' venv is the one of ``benchmarks/did.py``; wildboottest and pyfixest are added with
``/tmp/did-peers/bin/python -m pip install wildboottest pyfixest``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEED = 20261123
N_BOOT = 9999
N_CLUSTERS = 20
FIRST_TREATED = 6  # first treated year; years run 1..periods
EFFECT = 0.03
PEERS = ("diff-diff", "wildboottest", "pyfixest")
PEER_PACKAGES = {"diff-diff": "diff-diff", "wildboottest": "wildboottest", "pyfixest": "pyfixest"}
HERE = Path(__file__).resolve()


# ---------------------------------------------------------------------- data
def simulate(n_units: int, n_periods: int, seed: int = SEED):
    """Balanced unit-year panel in ``N_CLUSTERS`` clusters of unequal size; half the clusters
    are treated from year ``FIRST_TREATED``. Errors have unit, cluster-year and idiosyncratic
    parts, so clustering matters; the true effect is ``EFFECT``."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    sizes = rng.dirichlet(np.full(N_CLUSTERS, 4.0))
    cluster_of_unit = np.sort(rng.choice(N_CLUSTERS, n_units, p=sizes))
    treated_clusters = rng.permutation(N_CLUSTERS)[: N_CLUSTERS // 2]
    unit = np.repeat(np.arange(n_units), n_periods)
    year = np.tile(np.arange(1, n_periods + 1), n_units)
    cluster = np.repeat(cluster_of_unit, n_periods)
    treated = np.isin(cluster, treated_clusters).astype(np.int64)
    post = (year >= FIRST_TREATED).astype(np.int64)
    d = treated * post
    alpha = np.repeat(rng.normal(0.0, 1.0, n_units), n_periods)
    shock = rng.normal(0.0, 0.05, (N_CLUSTERS, n_periods))[cluster, year - 1]
    y = alpha + 0.1 * year + shock + EFFECT * d + rng.normal(0.0, 1.0, n_units * n_periods)
    return pd.DataFrame(
        {
            "unit": unit,
            "year": year,
            "cluster": cluster,
            "treated": treated,
            "post": post,
            "d": d,
            "y": y,
        }
    )


def load(path: str):
    import pandas as pd

    return pd.read_csv(path)


# ---------------------------------------------------------------------- cases
def _emit(record: dict) -> None:
    print("RESULT " + json.dumps(record), flush=True)


def case_cpdimpact(df) -> dict:
    import cpdimpact
    from cpdimpact.did import wild_cluster_bootstrap

    start = time.perf_counter()
    res = wild_cluster_bootstrap(
        df,
        outcome="y",
        unit="unit",
        time="year",
        treatment="d",
        cluster="cluster",
        n_bootstrap=N_BOOT,
        weights_type="webb",
        restricted=True,
        seed=SEED,
    )
    seconds = time.perf_counter() - start
    return {
        "version": cpdimpact.__version__,
        "seconds": seconds,
        "estimate": float(res.estimate),
        "std_error": float(res.std_error),
        "t": float(res.t_statistic),
        "p": float(res.p_value),
        "ci": [float(res.ci_lower), float(res.ci_upper)],
    }


def case_diff_diff(df) -> dict:
    import diff_diff

    # Full year effects: unit + post effects are absorbed by diff-diff, the remaining year
    # dummies (all but year 1 and the first post year, collinear with post) are covariates.
    years = sorted(df["year"].unique())
    dummies = [f"yr{t}" for t in years if t not in (years[0], FIRST_TREATED)]
    start = time.perf_counter()
    data = df.assign(**{f"yr{t}": (df["year"] == t).astype(float) for t in years})
    est = diff_diff.TwoWayFixedEffects(
        cluster="cluster",
        inference="wild_bootstrap",
        n_bootstrap=N_BOOT,
        bootstrap_weights="webb",
        seed=SEED,
    )
    res = est.fit(
        data, outcome="y", treatment="treated", post="post", unit="unit", covariates=dummies
    )
    seconds = time.perf_counter() - start
    return {
        "version": diff_diff.__version__,
        "seconds": seconds,
        "estimate": float(res.att),
        "std_error": float(res.se),
        "t": float(res.t_stat),
        "p": float(res.p_value),
        "ci": [float(v) for v in res.conf_int],
    }


def _within(df, column: str) -> np.ndarray:
    """Two-way demeaning, exact on a balanced panel."""
    x = df[column].to_numpy(dtype=float)
    by_unit = df.groupby("unit")[column].transform("mean").to_numpy()
    by_year = df.groupby("year")[column].transform("mean").to_numpy()
    return x - by_unit - by_year + x.mean()


def case_wildboottest(df) -> dict:
    from importlib.metadata import version

    import pandas as pd
    import statsmodels.api as sm
    from wildboottest.wildboottest import wildboottest

    start = time.perf_counter()
    y = _within(df, "y")
    x = pd.DataFrame({"d": _within(df, "d")})
    model = sm.OLS(y, x)
    out = wildboottest(
        model,
        B=N_BOOT,
        cluster=df["cluster"].to_numpy(),
        param="d",
        weights_type="webb",
        impose_null=True,
        seed=SEED,
        show=False,
    )
    seconds = time.perf_counter() - start
    estimate = float(x["d"] @ y / (x["d"] @ x["d"]))
    row = out.iloc[0]
    return {
        "version": version("wildboottest"),
        "seconds": seconds,
        "estimate": estimate,
        "t": float(row["statistic"]),
        "p": float(row["p-value"]),
    }


def case_pyfixest(df) -> dict:
    import pyfixest as pf

    start = time.perf_counter()
    fit = pf.feols("y ~ d | unit + year", data=df, vcov={"CRV1": "cluster"})
    out = fit.wildboottest(param="d", reps=N_BOOT, weights_type="webb", impose_null=True, seed=SEED)
    seconds = time.perf_counter() - start
    return {
        "version": pf.__version__,
        "seconds": seconds,
        "estimate": float(fit.coef()["d"]),
        "std_error": float(fit.se()["d"]),
        "t": float(out["t value"]),
        "p": float(out["Pr(>|t|)"]),
    }


CASES = {
    "cpdimpact": case_cpdimpact,
    "diff-diff": case_diff_diff,
    "wildboottest": case_wildboottest,
    "pyfixest": case_pyfixest,
}


def run_case(args) -> None:
    """In the case's own process: cap memory (peers), load the panel, fit, report."""
    import warnings

    warnings.filterwarnings("ignore")
    if args.mem_gb > 0:
        cap = int(args.mem_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    df = load(args.data)
    try:
        out = CASES[args.case](df)
    except MemoryError:
        print(f"MemoryError: over {args.mem_gb:g} GB (RLIMIT_AS)", file=sys.stderr)
        raise SystemExit(3) from None
    out["self_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _emit(out)


def run_wrapped(args, command: list[str]) -> None:
    """Wrapper process: run one case as a child, report its peak memory (RUSAGE_CHILDREN)."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=args.timeout)
        status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        status = f"timeout ({args.timeout:.0f} s)"
    record: dict = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            record = json.loads(line[7:])
    if status == "ok" and not record:
        status = "failed (no result)"
    if status != "ok" and (
        "MemoryError" in stderr or "Unable to allocate" in stderr or "bad_alloc" in stderr
    ):
        status = "over memory cap"
    record["status"] = status
    record["wall"] = time.perf_counter() - start
    record["peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if status != "ok":
        tail = [line for line in stderr.strip().splitlines() if line.strip()][-3:]
        record["error"] = " | ".join(tail)[-400:]
    _emit(record)


def launch(args, tool: str, python: str, data: str, mem_gb: float) -> dict:
    """Start the wrapper (its own session, so a hung case can be killed with its children)."""
    inner = [python, str(HERE), "--case", tool, "--data", data, "--mem-gb", str(mem_gb)]
    command = [sys.executable, str(HERE), "--wrap", "--timeout", str(args.timeout), "--", *inner]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=args.timeout + 60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"status": "failed (wrapper)", "error": stderr.strip()[-400:]}


# ---------------------------------------------------------------------- peers' venv
def peer_versions(venv: Path) -> dict[str, str]:
    """{peer: version, or "" when it is not installed in the scratch venv}."""
    python = venv / "bin" / "python"
    found = {}
    for peer in PEERS:
        if not python.exists():
            found[peer] = ""
            continue
        probe = subprocess.run(
            [
                str(python),
                "-c",
                f"from importlib.metadata import version; print(version({PEER_PACKAGES[peer]!r}))",
            ],
            capture_output=True,
            text=True,
        )
        found[peer] = probe.stdout.strip() if probe.returncode == 0 else ""
    return found


# ---------------------------------------------------------------------- report
def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import pandas as pd

    try:
        load = "/".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        load = "?"
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.1f} GiB, {platform.system()} "
        f"{platform.release()}; load average {load} (1/5/15 min) before the run; Python "
        f"{platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}"
    )


def _load_now() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=20_000)
    parser.add_argument("--periods", type=int, default=10)
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset")
    parser.add_argument("--peers-venv", default="/tmp/did-peers")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per case")
    parser.add_argument("--peer-mem-gb", type=float, default=8.0, help="RLIMIT_AS per peer")
    # internal
    parser.add_argument("--case")
    parser.add_argument("--data")
    parser.add_argument("--mem-gb", type=float, default=0.0)
    parser.add_argument("--wrap", action="store_true")
    args, rest = parser.parse_known_args()
    if args.wrap:
        run_wrapped(args, [a for a in rest if a != "--"])
        return
    if args.case:
        run_case(args)
        return

    about = machine()
    n_rows = args.units * args.periods
    print(f"simulating {args.units:,} units x {args.periods} years ...", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="wild-bench-") as tmp:
        data = str(Path(tmp) / "panel.csv")
        simulate(args.units, args.periods).to_csv(data, index=False)
        cases = [("cpdimpact", sys.executable, 0.0)]
        versions: dict[str, str] = {}
        if not args.skip_peers:
            versions = peer_versions(Path(args.peers_venv))
            python = str(Path(args.peers_venv) / "bin" / "python")
            cases += [(peer, python, args.peer_mem_gb) for peer in args.peers.split(",")]
        results = []
        for tool, python, mem_gb in cases:
            if tool != "cpdimpact" and not versions.get(tool):
                rec = {"status": "not installed in the peers' venv"}
            else:
                print(f"  {tool} (load {_load_now()}) ...", file=sys.stderr, flush=True)
                rec = launch(args, tool, python, data, mem_gb)
                if rec.get("status") == "over memory cap":
                    rec["status"] = f"over {mem_gb:g} GB"
            rec["tool"] = tool
            results.append(rec)
            print(
                f"    {rec['status']}  {rec.get('seconds', float('nan')):.2f} s  "
                f"{rec.get('peak_mb', float('nan')):.0f} MB  {rec.get('error', '')}",
                file=sys.stderr,
                flush=True,
            )
        load_after = _load_now()

    ref = next((r for r in results if r["tool"] == "cpdimpact" and r["status"] == "ok"), None)
    print(
        f"\nWild cluster bootstrap (WCR, Webb weights, {N_BOOT:,} draws) of the TWFE DiD "
        f"coefficient: {args.units:,} units x {args.periods} years ({n_rows:,} rows), "
        f"{N_CLUSTERS} clusters, half treated from year {FIRST_TREATED}, true effect {EFFECT}.\n"
    )
    print(
        "| tool | seconds | ratio to cpdimpact | peak MB | estimate | t | p-value | "
        "p - cpdimpact p (MC SE) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        version = r.get("version") or versions.get(r["tool"], "")
        name = f"{r['tool']} {version}".strip()
        peak = r.get("peak_mb", float("nan"))
        if r["status"] != "ok":
            print(f"| {name} | {r['status']} | — | {peak:.0f} | — | — | — | — |")
            continue
        ratio = r["seconds"] / ref["seconds"] if ref else float("nan")
        if r["tool"] == "cpdimpact" or ref is None:
            agree = "—"
        else:
            mc = np.sqrt(2 * ref["p"] * (1 - ref["p"]) / N_BOOT)
            agree = f"{r['p'] - ref['p']:+.4f} ({mc:.4f})"
        print(
            f"| {name} | {r['seconds']:.2f} | {ratio:.1f} | {peak:.0f} | "
            f"{r['estimate']:.6f} | {r['t']:.4f} | {r['p']:.4f} | {agree} |"
        )
    print(f"\nMachine: {about}; load average {load_after} after the run.")
    if versions:
        print(
            f"Peers (scratch venv {args.peers_venv}, each capped at {args.peer_mem_gb:g} GB "
            "address space): "
            + ", ".join(f"{k} {v or 'missing'}" for k, v in versions.items())
            + "."
        )
    if ref is not None:
        print(
            f"cpdimpact: estimate {ref['estimate']:.6f}, CR1 SE {ref['std_error']:.6f}, "
            f"t {ref['t']:.4f}, bootstrap p {ref['p']:.4f}, 95% interval "
            f"[{ref['ci'][0]:.5f}, {ref['ci'][1]:.5f}]."
        )
        for r in results:
            if r["tool"] == "cpdimpact" or r["status"] != "ok":
                continue
            line = f"- {r['tool']}: estimate diff {abs(r['estimate'] - ref['estimate']):.1e}"
            line += f", t ratio to cpdimpact {r['t'] / ref['t']:.6f}"
            if "ci" in r:
                line += f", 95% interval [{r['ci'][0]:.5f}, {r['ci'][1]:.5f}]"
            print(line)
    for r in results:
        if r["status"] != "ok" and r.get("error"):
            print(f"- {r['tool']}: {r['error']}")
    if ref is not None:
        print(
            f"\nTarget (issue): under 1 s and 1 GB. cpdimpact: {ref['seconds']:.2f} s "
            f"({'met' if ref['seconds'] < 1 else 'MISSED'}), {ref['peak_mb']:.0f} MB "
            f"({'met' if ref['peak_mb'] < 1024 else 'MISSED'})."
        )


if __name__ == "__main__":
    main()
