"""Benchmark comparison-group construction: entropy balancing and propensity-score matching.

One run simulates 20,000 schools with 10 covariates (eight continuous, two binary; about a
quarter of schools treated through a logistic selection model), saves them once to a
temporary ``.npz`` read by every case, and times, in a fresh process per case:

* cpdimpact ``EntropyBalancing`` (means), ``NearestMatching`` 1:1 without replacement on the
  logit of the propensity score, the same with a 0.2 SD caliper, and 3:1 with replacement;
  every cpdimpact fit includes the balance table (before/after, with eCDF statistics);
* ebal (PyPI ``ebal``, Eddie Yang's port of Hainmueller's R package), ``ebal_bin(PCA=False)``;
* empirical-calibration (Google, ``ec.calibrate(objective=ENTROPY)``);
* psmpy ``PsmPy.logistic_ps(balance=False)`` + ``kdtree_matched(matcher="propensity_logit")``;
* pymatchit-causal and causalml (``causalml.match.NearestNeighborMatch``) when installed.

Each case reports the best of ``--repeat`` fits (seconds, excluding imports and reading the
data), the peak resident memory of its process (``ru_maxrss``: interpreter, libraries, data and
fit), and a check of its answer: for entropy balancing the largest gap between the weighted
comparison mean and the treated mean (in SDs of the covariate); for matching the number of
treated schools matched, the largest absolute standardised mean difference after matching
and the share of treated schools matched to the same comparison school as by cpdimpact.
Peer cases run under the peers' interpreter with their address space capped at
``--peer-mem-gb`` (``RLIMIT_AS``) and a ``--timeout``.

    .venv/bin/python benchmarks/comparison.py                     # everything
    .venv/bin/python benchmarks/comparison.py --skip-peers
    .venv/bin/python benchmarks/comparison.py --peers-venv /tmp/cmp-peers --schools 5000

The peers' venv: ``python -m venv /tmp/cmp-peers && /tmp/cmp-peers/bin/pip install psmpy ebal
empirical-calibration pymatchit-causal causalml``.

Other benchmark files can be run from here: add them to ``EXTERNAL`` (name, script, extra
arguments); each is run as ``python <script> <args>`` after the cases above and its output
is appended to the report.
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

SEED = 20261124
HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
N_COVARIATES = 10


# ---------------------------------------------------------------------- data
def simulate(n_schools: int, seed: int = SEED):
    """Covariates (eight standard normal, two binary) and a treatment drawn from a logistic
    model in six of them, ~25% treated, with real but incomplete overlap."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_schools, N_COVARIATES))
    X[:, 8] = rng.random(n_schools) < 0.3
    X[:, 9] = rng.random(n_schools) < 0.5
    beta = np.array([0.4, -0.3, 0.2, 0.1, 0.0, 0.0, 0.2, -0.1, 0.3, 0.0])
    treated = rng.random(n_schools) < 1 / (1 + np.exp(-(-1.3 + X @ beta)))
    return X, treated


def frame(X, treated):
    import pandas as pd

    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    df.insert(0, "school", np.arange(len(df)))
    df["treated"] = treated.astype(int)
    return df


# ---------------------------------------------------------------------- checks
def entropy_gap(X, treated, w_control) -> float:
    """Largest |weighted comparison mean - treated mean| in SDs of the covariate."""
    w = np.asarray(w_control, dtype=float)
    w = w / w.sum()
    sd = X.std(axis=0)
    return float(np.max(np.abs(w @ X[~treated] - X[treated].mean(axis=0)) / sd))


def matching_check(X, treated, pairs) -> dict:
    """pairs: array (m, 2) of (treated row, control row), one row per match."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    t_rows = np.unique(pairs[:, 0])
    wc = np.bincount(pairs[:, 1], minlength=len(X)).astype(float)
    mt = X[t_rows].mean(axis=0)
    mc = (wc @ X) / wc.sum()
    sd = X[treated].std(axis=0, ddof=1)
    return {
        "matched_treated": int(len(t_rows)),
        "max_abs_smd_after": float(np.max(np.abs(mt - mc) / sd)),
    }


def _best(fn, repeat: int):
    best, out = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


# ---------------------------------------------------------------------- cases
def case_cpdimpact_entropy(X, treated, repeat):
    from cpdimpact.comparison import EntropyBalancing

    df = frame(X, treated)
    spec = EntropyBalancing(covariates=[f"x{j}" for j in range(X.shape[1])])
    seconds, res = _best(lambda: spec.fit(df), repeat)
    w = res.weights.to_numpy()[~treated]
    return seconds, {
        "max_gap_sd": entropy_gap(X, treated, w),
        "iterations": res.diagnostics["iterations"],
    }


def _cpdimpact_nearest(X, treated, repeat, **options):
    from cpdimpact.comparison import NearestMatching

    df = frame(X, treated)
    spec = NearestMatching(covariates=[f"x{j}" for j in range(X.shape[1])], **options)
    seconds, res = _best(lambda: spec.fit(df), repeat)
    m = res.matches
    pairs = np.column_stack([m["treated"].to_numpy(), m["control"].to_numpy()])
    return seconds, pairs


def case_cpdimpact_nearest(X, treated, repeat):
    return _cpdimpact_nearest(X, treated, repeat)


def case_cpdimpact_nearest_caliper(X, treated, repeat):
    return _cpdimpact_nearest(X, treated, repeat, caliper=0.2)


def case_cpdimpact_nearest_3to1_replace(X, treated, repeat):
    return _cpdimpact_nearest(X, treated, repeat, ratio=3, replace=True)


def case_ebal(X, treated, repeat):
    from ebal import ebal_bin

    y = np.zeros(len(X))

    def fit():
        eb = ebal_bin(PCA=False, constraint_tolerance=1e-10, print_level=-1, max_iterations=500)
        return eb.ebalance(treated.astype(int), X, y)

    seconds, out = _best(fit, repeat)
    return seconds, {
        "max_gap_sd": entropy_gap(X, treated, out["w"][~treated]),
        "converged": bool(out["converged"]),
    }


def case_empirical_calibration(X, treated, repeat):
    import empirical_calibration as ec

    def fit():
        return ec.calibrate(
            covariates=X[~treated],
            target_covariates=X[treated],
            objective=ec.Objective.ENTROPY,
            autoscale=True,
        )

    seconds, (w, ok) = _best(fit, repeat)
    return seconds, {"max_gap_sd": entropy_gap(X, treated, w), "converged": bool(ok)}


def case_psmpy(X, treated, repeat):
    from psmpy import PsmPy

    df = frame(X, treated)

    def fit():
        psm = PsmPy(df, treatment="treated", indx="school", exclude=[])
        psm.logistic_ps(balance=False)
        psm.kdtree_matched(matcher="propensity_logit", replacement=False, caliper=None)
        return psm.matched_ids

    seconds, ids = _best(fit, repeat)
    ids = ids.dropna()
    return seconds, np.column_stack([ids["school"].to_numpy(), ids["matched_ID"].to_numpy()])


def case_causalml(X, treated, repeat):
    from causalml.match import NearestNeighborMatch
    from sklearn.linear_model import LogisticRegression

    df = frame(X, treated)

    def fit():
        model = LogisticRegression(penalty=None, max_iter=1000).fit(X, treated)
        ps = model.predict_proba(X)[:, 1]
        data = df.assign(ps_logit=np.log(ps / (1 - ps)))
        nn = NearestNeighborMatch(replace=False, ratio=1, random_state=SEED, caliper=np.inf)
        return nn.match(data=data, treatment_col="treated", score_cols=["ps_logit"])

    seconds, matched = _best(fit, repeat)
    rows = matched["school"].to_numpy()
    t_rows = rows[treated[rows]]
    c_rows = rows[~treated[rows]]
    sd = X[treated].std(axis=0, ddof=1)
    smd = np.abs(X[t_rows].mean(axis=0) - X[c_rows].mean(axis=0)) / sd
    return seconds, {"matched_treated": int(len(t_rows)), "max_abs_smd_after": float(smd.max())}


def case_pymatchit(X, treated, repeat):
    from pymatchit import MatchIt

    df = frame(X, treated)
    formula = "treated ~ " + " + ".join(f"x{j}" for j in range(X.shape[1]))

    def fit():
        m = MatchIt(df, method="nearest", link="linear.logit")
        m.fit(formula)
        return m.matches(format="long")

    seconds, long = _best(fit, repeat)
    long = long.dropna()
    return seconds, np.column_stack(
        [
            long["treated_index"].to_numpy(dtype=np.int64),
            long["control_index"].to_numpy(dtype=np.int64),
        ]
    )


#: name -> (interpreter: "project" or "peers", function). The order is the report's order.
CASES = {
    "cpdimpact entropy balancing": ("project", case_cpdimpact_entropy),
    "cpdimpact nearest 1:1 (logit PS)": ("project", case_cpdimpact_nearest),
    "cpdimpact nearest 1:1, caliper 0.2 SD": ("project", case_cpdimpact_nearest_caliper),
    "cpdimpact nearest 3:1 with replacement": ("project", case_cpdimpact_nearest_3to1_replace),
    "ebal entropy balancing": ("peers", case_ebal),
    "empirical-calibration entropy": ("peers", case_empirical_calibration),
    "psmpy nearest 1:1 (logit PS)": ("peers", case_psmpy),
    "pymatchit-causal nearest 1:1 (logit PS)": ("peers", case_pymatchit),
    "causalml nearest 1:1 (logit PS)": ("peers", case_causalml),
}

#: Other benchmark files run after the cases: (name, script relative to the repository root,
#: extra arguments). For example the synthetic DiD benchmark, once it exists:
#: ("synthetic DiD", "benchmarks/synthetic.py", ["--quick"]).
EXTERNAL: list[tuple[str, str, list[str]]] = [
    # The third target: SDID with placebo SEs on 150 areas x 15 years.
    ("synthetic DiD", "benchmarks/comparison_sdid.py", []),
]


# ---------------------------------------------------------------------- plumbing
def run_case(args) -> None:
    """Child process: load the data, run one case, print one JSON line."""
    if args.mem_gb:
        cap = int(args.mem_gb * 1024**3)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    data = np.load(args.data)
    X, treated = data["X"], data["treated"].astype(bool)
    _, fn = CASES[args.case]
    record = {"case": args.case}
    try:
        seconds, out = fn(X, treated, args.repeat)
        record["seconds"] = seconds
        if isinstance(out, np.ndarray):
            np.save(args.pairs, out)
            record.update(matching_check(X, treated, out))
        else:
            record.update(out)
    except MemoryError:
        record["error"] = f"over {args.mem_gb:g} GB (RLIMIT_AS)"
    except Exception as exc:  # report, do not crash the run
        record["error"] = f"{type(exc).__name__}: {exc}"[:300]
    record["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(record))


def launch(args, name: str, python: str, data: str, pairs: str, mem_gb: float) -> dict:
    command = [
        python,
        str(HERE),
        "--case",
        name,
        "--data",
        data,
        "--pairs",
        pairs,
        "--repeat",
        str(args.repeat),
        "--mem-gb",
        str(mem_gb),
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=args.timeout, env=env
        )
    except subprocess.TimeoutExpired:
        return {"case": name, "error": f"over {args.timeout} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return {
            "case": name,
            "error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:300],
        }
    return json.loads(lines[-1])


def peer_versions(python: str) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json\n"
        "out = {}\n"
        "for p in ['ebal', 'empirical-calibration', 'psmpy', 'causalml', 'pymatchit-causal',"
        " 'scikit-learn', 'numpy']:\n"
        "    try: out[p] = m.version(p)\n"
        "    except Exception: pass\n"
        "print(json.dumps(out))"
    )
    try:
        return json.loads(
            subprocess.run([python, "-c", code], capture_output=True, text=True).stdout
        )
    except Exception:
        return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peers-venv", default="/tmp/cmp-peers")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--peer-mem-gb", type=float, default=8.0)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--pairs", help=argparse.SUPPRESS)
    parser.add_argument("--mem-gb", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        run_case(args)
        return

    X, treated = simulate(args.schools)
    peers_python = str(Path(args.peers_venv) / "bin" / "python")
    have_peers = Path(peers_python).exists() and not args.skip_peers
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()},"
        f" load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"data: {args.schools} schools, {N_COVARIATES} covariates, {int(treated.sum())} treated;"
        f" best of {args.repeat} fits per case"
    )
    if have_peers:
        print(f"peers ({args.peers_venv}): {peer_versions(peers_python)}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        data = str(Path(tmp) / "schools.npz")
        np.savez(data, X=X, treated=treated)
        pair_files = {}
        for name, (where, _) in CASES.items():
            if where == "peers" and not have_peers:
                continue
            python = sys.executable if where == "project" else peers_python
            pairs = str(Path(tmp) / f"pairs_{len(pair_files)}.npy")
            pair_files[name] = pairs
            mem = 0.0 if where == "project" else args.peer_mem_gb
            record = launch(args, name, python, data, pairs, mem)
            results.append(record)
            print(json.dumps(record), flush=True)
        reference = pair_files.get("cpdimpact nearest 1:1 (logit PS)")
        ours = (
            dict(map(tuple, np.load(reference))) if reference and Path(reference).exists() else {}
        )
        for record in results:
            path = pair_files.get(record["case"])
            one_to_one = "1:1" in record["case"] and "caliper" not in record["case"]
            if ours and one_to_one and path and Path(path).exists():
                theirs = np.load(path)
                same = sum(ours.get(int(t)) == int(c) for t, c in theirs)
                record["same_match_as_cpdimpact"] = round(float(same) / max(len(ours), 1), 4)
    base = {r["case"]: r.get("seconds") for r in results}
    print()
    print(f"{'case':42s} {'seconds':>9s} {'x cpdimpact':>12s} {'peak MB':>9s}  check")
    for r in results:
        kind = "entropy" if "entropy" in r["case"] else "nearest 1:1 (logit PS)"
        ref = base.get(
            "cpdimpact entropy balancing"
            if kind == "entropy"
            else "cpdimpact nearest 1:1 (logit PS)"
        )
        sec = r.get("seconds")
        ratio = f"{sec / ref:.1f}" if sec and ref else ""
        checks = {k: v for k, v in r.items() if k not in ("case", "seconds", "peak_mb")}
        print(
            f"{r['case']:42s} {sec if sec is None else round(sec, 3)!s:>9s} {ratio:>12s} "
            f"{r.get('peak_mb', float('nan')):9.0f}  {checks}"
        )
    for name, script, extra in EXTERNAL:
        extra = [*extra, *(["--skip-peers"] if args.skip_peers else [])]
        print(f"\n== {name}: {script} {' '.join(extra)}")
        subprocess.run([sys.executable, str(ROOT / script), *extra], check=False)


if __name__ == "__main__":
    main()
