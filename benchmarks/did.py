"""Benchmark staggered DiD (Callaway & Sant'Anna ATT(g,t)) against the Python peers.

One run simulates a balanced panel (default 200,000 units x 10 periods = 2 million rows, four
treatment cohorts plus never-treated units, no covariates), saves it once, and times the
estimation of every ATT(g,t) (never-treated controls, varying base period) by

* cpdimpact ``StaggeredDiD`` with analytic influence-function SEs (``n_bootstrap=0``) and with
  999 multiplier-bootstrap draws;
* the peers that install from PyPI into a scratch venv (never a project dependency):
  diff-diff, csdid, differences and moderndid, each in analytic and bootstrap mode, set as close
  to the same estimator as their options allow (doubly robust, which without covariates is the
  difference of mean changes; Mammen weights where selectable; uniform bands in bootstrap mode).

Every case runs in its own subprocess: a wrapper process (this script, ``--wrap``) starts the
case (this script again, ``--case``, under the project's or the peers' interpreter) and reads its
peak memory with ``RUSAGE_CHILDREN``. A case that fails or passes ``--timeout`` is recorded as
such. Each peer's ATT(g,t) are checked against cpdimpact's (max absolute difference), and a phase
profile of cpdimpact's fit is printed.

    .venv/bin/python benchmarks/did.py                     # everything (a few minutes)
    .venv/bin/python benchmarks/did.py --skip-peers --units 50000
    .venv/bin/python benchmarks/did.py --peers-venv /tmp/did-peers --timeout 600

The peers' venv is created with ``python3 -m venv`` and filled with ``pip install diff-diff csdid
differences moderndid`` when it does not exist yet.
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
COHORTS = (0, 4, 5, 6, 7)  # first treated period; 0 = never treated
COHORT_P = (0.4, 0.15, 0.15, 0.15, 0.15)
N_BOOT = 999
PEERS = ("diff-diff", "csdid", "differences", "moderndid")
PEER_PACKAGES = {
    "diff-diff": "diff_diff",
    "csdid": "csdid",
    "differences": "differences",
    "moderndid": "moderndid",
}
HERE = Path(__file__).resolve()


# ---------------------------------------------------------------------- data
def simulate(n_units: int, n_periods: int, seed: int = SEED) -> dict[str, np.ndarray]:
    """Balanced panel, one row per unit-period; effects grow with time since treatment and
    differ by cohort; unit fixed effects and a common trend."""
    rng = np.random.default_rng(seed)
    first = rng.choice(np.array(COHORTS), n_units, p=COHORT_P)
    unit = np.repeat(np.arange(n_units), n_periods)
    period = np.tile(np.arange(1, n_periods + 1), n_units)
    g = np.repeat(first, n_periods)
    alpha = np.repeat(rng.normal(0.0, 1.0, n_units), n_periods)
    treated = (g > 0) & (period >= g)
    effect = np.where(treated, 1.0 + 0.1 * g + 0.2 * (period - g), 0.0)
    y = alpha + 0.1 * period + effect + rng.normal(0.0, 1.0, n_units * n_periods)
    return {"unit": unit, "time": period, "first_treated": g, "y": y}


def load(path: str):
    import pandas as pd

    with np.load(path) as z:
        return pd.DataFrame({k: z[k] for k in ("unit", "time", "first_treated", "y")})


# ---------------------------------------------------------------------- cases
def _emit(record: dict) -> None:
    print("RESULT " + json.dumps(record), flush=True)


def _cells(pairs) -> dict[str, float]:
    return {f"{int(g)},{int(t)}": float(v) for (g, t), v in pairs}


def case_cpdimpact(df, mode: str, profile: bool) -> dict:
    import cpdimpact
    from cpdimpact.did import StaggeredDiD

    spec = StaggeredDiD(
        outcome="y",
        unit="unit",
        time="time",
        first_treated="first_treated",
        control_group="never_treated",
        base_period="varying",
        n_bootstrap=0 if mode == "analytic" else N_BOOT,
        seed=SEED,
    )
    phases = _instrument() if profile else None
    start = time.perf_counter()
    res = spec.fit(df)
    seconds = time.perf_counter() - start
    # diff-diff's fit also estimates (and bootstraps) the overall ATT: time ours too.
    simple = res.aggregate("simple")
    with_overall = time.perf_counter() - start
    gt = res.group_time
    keys = list(zip(gt["group"], gt["time"], strict=True))
    out = {
        "version": cpdimpact.__version__,
        "seconds": seconds,
        "seconds_overall": with_overall,
        "overall": [simple.estimate, simple.std_error],
        "att": _cells(zip(keys, gt["estimate"], strict=True)),
        "se": _cells(zip(keys, gt["std_error"], strict=True)),
    }
    if phases is not None:
        out["phases"] = phases
    return out


#: Stages of the fit (and of the simple aggregate after it) wrapped by the profile, if present:
#: (module, owner, attribute, label). Missing ones are skipped, so the profile survives
#: refactoring of the estimator.
_STAGES = (
    ("staggered", "StaggeredDiD", "_prepare", "checks and data preparation (_prepare)"),
    ("staggered", "StaggeredDiD", "_panel", "checks and wide panel (_panel)"),
    ("staggered", "StaggeredDiD", "_panel_cell", "cells: estimates and influence functions"),
    ("staggered", None, "_standard_errors", "standard errors and bands (_standard_errors)"),
    ("_multiplier", "_Bootstrap", "_first", "  bootstrap of the cells and block indicators"),
    ("_multiplier", "_Bootstrap", "_replicates", "    of which weights x influence (threads)"),
    ("_multiplier", "_Basis", "coefficients", "  aggregate: projection on the cells' basis"),
    ("staggered", "StaggeredResult", "aggregate", "simple aggregate after the fit"),
)


def _instrument() -> dict:
    """Wrap stages of ``StaggeredDiD.fit`` at run time (src/ is not touched) and record the
    seconds spent in each; the remainder of the fit is the per-cell loop and result frame."""
    import importlib

    phases: dict[str, float] = {}
    for module_name, owner_name, name, label in _STAGES:
        module = importlib.import_module(f"cpdimpact.did.{module_name}")
        owner = module if owner_name is None else getattr(module, owner_name, None)
        original = getattr(owner, name, None)
        if original is None:
            continue

        def wrapper(*args, _original=original, _label=label, **kwargs):
            begin = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                phases[_label] = phases.get(_label, 0.0) + time.perf_counter() - begin

        setattr(owner, name, wrapper)
    return phases


def case_diff_diff(df, mode: str) -> dict:
    import diff_diff

    est = diff_diff.CallawaySantAnna(
        control_group="never_treated",
        estimation_method="dr",
        base_period="varying",
        n_bootstrap=0 if mode == "analytic" else N_BOOT,
        bootstrap_weights=None if mode == "analytic" else "mammen",
        cband=mode != "analytic",
        seed=SEED,
    )
    start = time.perf_counter()
    res = est.fit(df, outcome="y", unit="unit", time="time", first_treat="first_treated")
    seconds = time.perf_counter() - start
    effects = res.group_time_effects
    return {
        "version": diff_diff.__version__,
        "seconds": seconds,
        "seconds_overall": seconds,  # its fit estimates and bootstraps the overall ATT too
        "overall": [float(res.overall_att), float(res.overall_se)],
        "att": _cells((k, v["effect"]) for k, v in effects.items()),
        "se": _cells((k, v["se"]) for k, v in effects.items()),
    }


def case_csdid(df, mode: str) -> dict:
    from importlib.metadata import version

    from csdid.att_gt import ATTgt

    boot = mode != "analytic"
    start = time.perf_counter()
    est = ATTgt(
        yname="y",
        tname="time",
        idname="unit",
        gname="first_treated",
        data=df,
        control_group=["nevertreated"],
        cband=boot,
        biters=N_BOOT,
    )
    est.fit(est_method="dr", base_period="varying", bstrap=boot)
    seconds = time.perf_counter() - start
    r = est.results
    keys = list(zip(r["group"], r["year"], strict=True))
    return {
        "version": version("csdid"),
        "seconds": seconds,
        "att": _cells(zip(keys, r["att"], strict=True)),
        "se": _cells(zip(keys, np.asarray(r["se"]).ravel(), strict=True)),
    }


def case_differences(df, mode: str) -> dict:
    from importlib.metadata import version

    import differences

    start = time.perf_counter()
    panel = df.assign(cohort=df["first_treated"].where(df["first_treated"] > 0)).set_index(
        ["unit", "time"]
    )
    est = differences.ATTgt(data=panel, cohort_column="cohort", base_period="varying")
    fitted = est.fit(
        formula="y",
        est_method="dr",
        control_group="never_treated",
        boot_iterations=0 if mode == "analytic" else N_BOOT,
        random_state=SEED,
        progress_bar=False,
    )
    seconds = time.perf_counter() - start
    res = fitted.to_pandas() if hasattr(fitted, "to_pandas") else est.results()
    att_col = next(c for c in res.columns if c[-1] == "ATT")
    se_col = next(c for c in res.columns if c[-1] == "std_error")
    g = res.index.get_level_values("cohort")
    t = res.index.get_level_values("time")
    keys = list(zip(g, t, strict=True))
    return {
        "version": version("differences"),
        "seconds": seconds,
        "att": _cells(zip(keys, res[att_col], strict=True)),
        "se": _cells(zip(keys, res[se_col], strict=True)),
    }


def case_moderndid(df, mode: str) -> dict:
    import moderndid

    boot = mode != "analytic"
    start = time.perf_counter()
    res = moderndid.att_gt(
        df,
        yname="y",
        tname="time",
        idname="unit",
        gname="first_treated",
        control_group="nevertreated",
        est_method="dr",
        base_period="varying",
        boot=boot,
        biters=N_BOOT,
        cband=boot,
        random_state=SEED,
    )
    seconds = time.perf_counter() - start
    keys = list(zip(np.asarray(res.groups), np.asarray(res.times), strict=True))
    return {
        "version": moderndid.__version__,
        "seconds": seconds,
        "att": _cells(zip(keys, np.asarray(res.att_gt), strict=True)),
        "se": _cells(zip(keys, np.asarray(res.se_gt), strict=True)),
    }


CASES = {
    "cpdimpact": None,
    "diff-diff": case_diff_diff,
    "csdid": case_csdid,
    "differences": case_differences,
    "moderndid": case_moderndid,
}


def run_case(args) -> None:
    """In the case's own process: load the panel, fit, report."""
    import warnings

    warnings.filterwarnings("ignore")
    df = load(args.data)
    tool, mode = args.case.split(":")
    if tool == "cpdimpact":
        out = case_cpdimpact(df, mode, args.profile)
    else:
        out = CASES[tool](df, mode)
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
    record["status"] = status
    record["wall"] = time.perf_counter() - start
    record["peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if status != "ok":
        tail = [line for line in stderr.strip().splitlines() if line.strip()][-3:]
        record["error"] = " | ".join(tail)[-400:]
    _emit(record)


def launch(args, tool: str, mode: str, python: str, data: str, profile: bool = False) -> dict:
    """Start the wrapper (its own session, so a hung case can be killed with its children)."""
    inner = [python, str(HERE), "--case", f"{tool}:{mode}", "--data", data]
    if profile:
        inner.append("--profile")
    command = [
        sys.executable,
        str(HERE),
        "--wrap",
        "--timeout",
        str(args.timeout),
        "--",
        *inner,
    ]
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
def ensure_peers(venv: Path) -> dict[str, str]:
    """Create the scratch venv if needed; return {peer: version or reason it is missing}."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(
            f"creating the peers' scratch venv at {venv} ...",
            file=sys.stderr,
            flush=True,
        )
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        for package in PEERS:
            done = subprocess.run(
                [str(python), "-m", "pip", "install", "-q", package],
                capture_output=True,
                text=True,
            )
            if done.returncode:
                print(f"pip install {package} failed", file=sys.stderr)
    found = {}
    for peer in PEERS:
        probe = subprocess.run(
            [
                str(python),
                "-c",
                f"from importlib.metadata import version; print(version({peer!r}))",
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
    import scipy

    try:
        load1 = f"{os.getloadavg()[0]:.2f}"
    except OSError:
        load1 = "?"
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.1f} GiB, {platform.system()} "
        f"{platform.release()}; load average {load1} before the run; Python "
        f"{platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"scipy {scipy.__version__}"
    )


def compare(ref: dict, other: dict) -> tuple[float, float, int]:
    """Max abs difference of ATT(g,t), max relative difference of SEs, cells matched."""
    keys = sorted(set(ref["att"]) & set(other.get("att", {})))
    if not keys:
        return float("nan"), float("nan"), 0
    att = max(abs(ref["att"][k] - other["att"][k]) for k in keys)
    se_keys = [k for k in keys if k in other.get("se", {}) and np.isfinite(other["se"][k])]
    se = max((abs(other["se"][k] / ref["se"][k] - 1) for k in se_keys), default=float("nan"))
    return att, se, len(keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=200_000)
    parser.add_argument("--periods", type=int, default=10)
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset")
    parser.add_argument("--peers-venv", default="/tmp/did-peers")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per case")
    parser.add_argument("--no-profile", dest="profile_cpdimpact", action="store_false")
    # internal
    parser.add_argument("--case")
    parser.add_argument("--data")
    parser.add_argument("--profile", action="store_true")
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
    print(f"simulating {args.units:,} units x {args.periods} periods ...", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="did-bench-") as tmp:
        data = str(Path(tmp) / "panel.npz")
        np.savez(data, **simulate(args.units, args.periods))
        cases = [("cpdimpact", m, sys.executable) for m in ("analytic", "bootstrap")]
        peer_versions: dict[str, str] = {}
        if not args.skip_peers:
            peer_versions = ensure_peers(Path(args.peers_venv))
            python = str(Path(args.peers_venv) / "bin" / "python")
            for peer in args.peers.split(","):
                for mode in ("analytic", "bootstrap"):
                    cases.append((peer, mode, python))
        results = []
        for tool, mode, python in cases:
            if tool != "cpdimpact" and not peer_versions.get(tool):
                rec = {"status": "not installed (pip install failed)"}
            else:
                print(f"  {tool} {mode} ...", file=sys.stderr, flush=True)
                rec = launch(args, tool, mode, python, data)
            rec.update(tool=tool, mode=mode)
            results.append(rec)
            print(
                f"    {rec['status']}  {rec.get('seconds', float('nan')):.2f} s  "
                f"{rec.get('peak_mb', float('nan')):.0f} MB  {rec.get('error', '')}",
                file=sys.stderr,
                flush=True,
            )
        profiles = {}
        if args.profile_cpdimpact:
            for mode in ("analytic", "bootstrap"):
                print(
                    f"  cpdimpact {mode}, phase profile ...",
                    file=sys.stderr,
                    flush=True,
                )
                rec = launch(args, "cpdimpact", mode, sys.executable, data, profile=True)
                if rec.get("status") == "ok":
                    profiles[mode] = rec

    ref = {
        m: r
        for r in results
        if r["tool"] == "cpdimpact" and r["status"] == "ok"
        for m in [r["mode"]]
    }
    print(
        f"\nATT(g,t) on {args.units:,} units x {args.periods} periods ({n_rows:,} rows), "
        f"cohorts {list(COHORTS[1:])} + never treated, never-treated controls, varying base "
        f"period, no covariates; bootstrap {N_BOOT} draws.\n"
    )
    print(
        "| tool | mode | seconds | ratio to fastest peer | seconds incl. overall ATT | peak MB | max abs diff ATT(g,t) vs cpdimpact | max rel diff SE |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    fastest = {}
    for mode in ("analytic", "bootstrap"):
        peers = [
            r["seconds"]
            for r in results
            if r["tool"] != "cpdimpact" and r["mode"] == mode and r["status"] == "ok"
        ]
        fastest[mode] = min(peers) if peers else float("nan")
    for mode in ("analytic", "bootstrap"):
        for r in results:
            if r["mode"] != mode:
                continue
            version = r.get("version") or peer_versions.get(r["tool"], "")
            name = f"{r['tool']} {version}".strip()
            if r["status"] != "ok":
                print(
                    f"| {name} | {mode} | {r['status']} | — | — | {r.get('peak_mb', float('nan')):.0f} | — | — |"
                )
                continue
            ratio = r["seconds"] / fastest[mode] if np.isfinite(fastest[mode]) else float("nan")
            if r["tool"] == "cpdimpact":
                diff, sed = "—", "—"
            elif mode in ref:
                a, s, k = compare(ref[mode], r)
                diff = f"{a:.1e} ({k} cells)"
                sed = f"{s:.1e}" if mode == "analytic" else f"{s:.2f}"
            else:
                diff = sed = "no reference"
            overall = f"{r['seconds_overall']:.2f}" if "seconds_overall" in r else "—"
            print(
                f"| {name} | {mode} | {r['seconds']:.2f} | {ratio:.2f} | {overall} | {r['peak_mb']:.0f} | {diff} | {sed} |"
            )
    print(f"\nMachine: {about}.")
    if peer_versions:
        print(
            "Peers (scratch venv "
            + args.peers_venv
            + "): "
            + ", ".join(f"{k} {v or 'missing'}" for k, v in peer_versions.items())
            + "."
        )
    for r in results:
        if r["status"] != "ok" and r.get("error"):
            print(f"- {r['tool']} {r['mode']}: {r['error']}")

    print("\nTargets (issue): at least 3x faster than the fastest peer in each mode, under 1.5 GB.")
    for mode in ("analytic", "bootstrap"):
        if mode in ref and np.isfinite(fastest[mode]):
            speedup = fastest[mode] / ref[mode]["seconds"]
            print(
                f"- {mode}: {speedup:.2f}x the fastest peer "
                f"({'met' if speedup >= 3 else 'MISSED'}); peak {ref[mode]['peak_mb']:.0f} MB "
                f"({'met' if ref[mode]['peak_mb'] < 1536 else 'MISSED'})"
            )
        dd = next((r for r in results if r["tool"] == "diff-diff" and r["mode"] == mode), {})
        if mode in ref and dd.get("status") == "ok":
            like = dd["seconds"] / ref[mode]["seconds_overall"]
            ours, theirs = ref[mode]["overall"], dd["overall"]
            print(
                f"  like for like with diff-diff (cells, bands and the overall ATT): "
                f"{like:.2f}x ({'met' if like >= 3 else 'MISSED'}); overall ATT "
                f"{ours[0]:.6f} vs {theirs[0]:.6f}, SE {ours[1]:.6f} vs {theirs[1]:.6f}"
            )

    for mode, rec in profiles.items():
        phases = rec["phases"]
        total = rec["seconds"]
        print(
            f"\ncpdimpact phase profile, {mode} ({total:.2f} s fit, "
            f"{rec['seconds_overall']:.2f} s with the simple aggregate, in a separate "
            f"instrumented run, peak {rec['peak_mb']:.0f} MB):"
        )
        for _, _, _, label in _STAGES:
            if label in phases:
                print(f"  {label:<52} {phases[label]:7.3f} s")


if __name__ == "__main__":
    main()
