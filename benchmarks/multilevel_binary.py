"""Benchmark the binomial multilevel model against lme4::glmer and glmmTMB.

One run simulates pass/fail outcomes of pupils in classes in schools, fits the Laplace model
``y ~ prior + treat + (1 | school/class)`` (logit link) with cpdimpact, ``lme4::glmer`` and
``glmmTMB`` (both through Rscript) on the same CSV at 100,000 pupils, then times cpdimpact alone
at 500,000 pupils and at 10 million, checks that the deviances (-2 log-likelihood) and
estimates agree and prints a Markdown table and the machine details.

Every case runs in a fresh subprocess (this script re-invoked with ``--case``), so peak memory
(``ru_maxrss``) belongs to that case alone; R's is read with ``RUSAGE_CHILDREN`` in a Python
wrapper process around Rscript, as in ``benchmarks/multilevel.py``.

    .venv/bin/python benchmarks/multilevel_binary.py                    # everything
    .venv/bin/python benchmarks/multilevel_binary.py --skip-national    # without 10 million
    .venv/bin/python benchmarks/multilevel_binary.py --skip-peers --sizes 500000
    .venv/bin/python benchmarks/multilevel_binary.py --peers-only       # glmer and glmmTMB alone
    .venv/bin/python benchmarks/multilevel_binary.py --timeout 900      # per case, seconds

"Seconds (fit)" is the model fit alone (glmer and glmmTMB: the ``glmer()`` / ``glmmTMB()`` call
timed inside R with ``proc.time()``, default settings as an analyst would run them).
"CPU seconds (fit)" is cpdimpact's processor time for the same call (``time.process_time``;
it runs on one thread): what the fit takes on a machine with a core to itself, whatever else
the machine is doing.
"Seconds (total)" is the wall time of the whole process: interpreter start-up, imports, reading
the shared CSV (or, above ``--csv-limit``, simulating the data in-process) and the fit. Nothing
about time is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _harness as harness
import numpy as np
from _harness import emit, machine_lines, max_rel, peak_mb, r_record, row_note, run_rscript

SEED = 20261207
CLASSES_PER_SCHOOL = 10
PUPILS_PER_CLASS = 25  # on average: 250 pupils per school
FIXED = ("Intercept", "prior", "treat")
VARIANCES = ("school", "class")
COVARIATES = ("prior", "treat")
TRUE_BETA = np.array([-0.3, 0.6, 0.25])
TRUE_VC = {"school": 0.3, "class": 0.1}
LOAD_AT_START = "?"  # other processes on the machine distort timings: reported with the table
PEER_LABELS = {"glmer": "lme4 glmer (Rscript)", "glmmTMB": "glmmTMB (Rscript)"}


# ---------------------------------------------------------------------- data
def simulate(n_pupils: int, seed: int = SEED):
    """Pass/fail outcomes of pupils in classes in schools (class ids unique across schools).

    ``prior`` is a continuous prior-attainment score (correlated with the school effect),
    ``treat`` a school-level 0/1 treatment; logit P(pass) = -0.3 + 0.6 prior + 0.25 treat +
    u_school + u_class with variances 0.3 and 0.1 (about 45% pass). Class sizes are ragged
    (pupils assigned to classes at random). Rows are shuffled.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_schools = max(2, n_pupils // (CLASSES_PER_SCHOOL * PUPILS_PER_CLASS))
    n_classes = n_schools * CLASSES_PER_SCHOOL
    klass = rng.integers(0, n_classes, n_pupils)
    school = klass // CLASSES_PER_SCHOOL
    u_school = rng.normal(0.0, np.sqrt(TRUE_VC["school"]), n_schools)
    u_class = rng.normal(0.0, np.sqrt(TRUE_VC["class"]), n_classes)
    treat = (rng.random(n_schools) < 0.5).astype(float)
    prior = rng.normal(0.0, 1.0, n_pupils) + 0.3 * u_school[school]
    eta = (
        TRUE_BETA[0]
        + TRUE_BETA[1] * prior
        + TRUE_BETA[2] * treat[school]
        + u_school[school]
        + u_class[klass]
    )
    y = (rng.random(n_pupils) < 1.0 / (1.0 + np.exp(-eta))).astype(np.int8)
    order = rng.permutation(n_pupils)
    return pd.DataFrame(
        {
            "school": school[order],
            "class": klass[order],
            "prior": prior[order],
            "treat": treat[school][order],
            "y": y[order],
        }
    )


def load(args):
    import pandas as pd

    if args.data:
        return pd.read_csv(args.data)
    return simulate(args.pupils)


# ---------------------------------------------------------------------- workers
def worker_cpdimpact(args) -> None:
    from cpdimpact.multilevel import MultilevelModel

    data = load(args)
    model = MultilevelModel(
        outcome="y", covariates=COVARIATES, groups=("school", "class"), family="binomial"
    )
    t0, c0 = time.perf_counter(), time.process_time()
    fit = model.fit(data)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    vc = fit.variance_components
    emit(
        {
            "fit_seconds": elapsed,
            "fit_cpu_seconds": cpu,
            "peak_mb": peak_mb(),
            "n": int(fit.n_obs),
            "fixed": [float(fit.params[k]) for k in FIXED],
            "vc": [float(vc[k]) for k in VARIANCES],
            "deviance": -2.0 * float(fit.loglik),
            "converged": bool(fit.converged),
        }
    )


R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
tool <- args[2]
suppressMessages(if (tool == "glmer") library(lme4) else library(glmmTMB))
t0 <- proc.time()[["elapsed"]]
if (requireNamespace("data.table", quietly = TRUE)) {
  d <- as.data.frame(data.table::fread(args[1]))
  reader <- "data.table::fread"
} else {
  d <- read.csv(args[1])
  reader <- "read.csv"
}
d$school <- factor(d$school)
d$class <- factor(d$class)
t1 <- proc.time()[["elapsed"]]
warns <- character()
f <- y ~ prior + treat + (1 | school/class)
fit <- withCallingHandlers(
  if (tool == "glmer") glmer(f, data = d, family = binomial) else
    glmmTMB(f, data = d, family = binomial),
  warning = function(w) {
    warns <<- c(warns, conditionMessage(w))
    invokeRestart("muffleWarning")
  }
)
t2 <- proc.time()[["elapsed"]]
num <- function(x) paste(format(x, digits = 17), collapse = ",")
if (tool == "glmer") {
  vc <- as.data.frame(VarCorr(fit))
  vcs <- c(vc$vcov[vc$grp == "school"], vc$vcov[vc$grp == "class:school"])
  beta <- fixef(fit)
} else {
  v <- VarCorr(fit)$cond
  vcs <- c(v[["school"]][1, 1], v[["class:school"]][1, 1])
  beta <- fixef(fit)$cond
}
cat("read_seconds", t1 - t0, "\n")
cat("fit_seconds", t2 - t1, "\n")
cat("n", nrow(d), "\n")
cat("fixed", num(unname(beta)), "\n")
cat("vc", num(vcs), "\n")
cat("deviance", num(-2 * as.numeric(logLik(fit))), "\n")
cat("r_version", paste(R.version$major, R.version$minor, sep = "."), "\n")
cat("tool_version", as.character(packageVersion(if (tool == "glmer") "lme4" else tool)), "\n")
cat("reader", reader, "\n")
cat("warnings", gsub("[\r\n]+", " ", paste(warns, collapse = " | ")), "\n")
"""


def _worker_r(args, tool: str) -> None:
    """Wrapper process: runs Rscript, so RUSAGE_CHILDREN is R's peak memory alone."""
    ran = run_rscript(R_SCRIPT, [args.data, tool])
    if ran is None:
        return
    fields, wall = ran
    emit(
        r_record(fields, wall)
        | {"deviance": float(fields["deviance"]), "tool_version": fields["tool_version"]}
    )


def worker_glmer(args) -> None:
    _worker_r(args, "glmer")


def worker_glmmtmb(args) -> None:
    _worker_r(args, "glmmTMB")


WORKERS = {"cpdimpact": worker_cpdimpact, "glmer": worker_glmer, "glmmTMB": worker_glmmtmb}


# ---------------------------------------------------------------------- driver
def run_case(case: str, *, timeout: float, pupils: int, data: str | None):
    """Run one case in a fresh process; returns its record plus wall time (or an error)."""
    cmd = [sys.executable, __file__, "--case", case, "--pupils", str(pupils)]
    if data:
        cmd += ["--data", data]
    return harness.run_case(cmd, timeout=timeout)


def machine_details(peers: dict) -> list[str]:
    import pandas as pd
    import scipy

    try:
        import cpdimpact

        version = cpdimpact.__version__
    except ImportError:  # --peers-only on a machine without the package
        version = "not importable"
    details = [
        *machine_lines(),
        f"Python {platform.python_version()}, cpdimpact {version}, numpy {np.__version__}, "
        f"pandas {pd.__version__}, scipy {scipy.__version__}",
        f"load average before the run (1, 5, 15 min): {LOAD_AT_START}",
        f"load average after the run (1, 5, 15 min): "
        f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}",
    ]
    for tool, rec in peers.items():
        package = "lme4" if tool == "glmer" else tool
        details.append(
            f"R {rec['r_version']}, {package} {rec['tool_version']} "
            f"(data read with {rec['reader']})"
        )
    return details


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[100_000, 500_000, 10_000_000],
        help="pupil counts; the peers run only at the smallest",
    )
    parser.add_argument("--skip-peers", action="store_true", help="cpdimpact only")
    parser.add_argument("--peers-only", action="store_true", help="glmer and glmmTMB only")
    parser.add_argument("--skip-glmmtmb", action="store_true")
    parser.add_argument(
        "--skip-national", action="store_true", help="leave out sizes above 1 million"
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="per case, seconds")
    parser.add_argument(
        "--csv-limit",
        type=int,
        default=1_000_000,
        help="sizes up to this are written to a CSV shared by all tools",
    )
    parser.add_argument("--case", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--pupils", type=int, default=100_000, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        WORKERS[args.case](args)
        return

    global LOAD_AT_START
    LOAD_AT_START = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    sizes = sorted(s for s in args.sizes if not (args.skip_national and s > 1_000_000))
    small = sizes[0]
    have_r = shutil.which("Rscript") is not None
    rows, estimates, peers = [], {}, {}
    with tempfile.TemporaryDirectory(prefix="cpdimpact-glmm-") as tmp:
        for size in sizes:
            if args.peers_only and size != small:
                continue
            csv = None
            if size <= args.csv_limit:
                csv = str(Path(tmp) / f"pupils_{size}.csv")
                simulate(size).to_csv(csv, index=False, float_format="%.17g")
            opts = {"timeout": args.timeout, "pupils": size, "data": csv}
            cases = [] if args.peers_only else [("cpdimpact", "cpdimpact")]
            if size == small and not args.skip_peers and have_r:
                cases.append((PEER_LABELS["glmer"], "glmer"))
                if not args.skip_glmmtmb:
                    cases.append((PEER_LABELS["glmmTMB"], "glmmTMB"))
            for label, case in cases:
                print(f"running {label}, {size:,} pupils ...", file=sys.stderr, flush=True)
                rec = run_case(case, **opts)
                rec.update(label=label, size=size, load_after=os.getloadavg()[0])
                rows.append(rec)
                if "fixed" in rec:
                    estimates[(label, size)] = rec
                if case != "cpdimpact" and "error" not in rec:
                    peers[case] = rec
            if csv:
                os.unlink(csv)
    report(rows, estimates, peers, small)


def report(rows, estimates, peers, small) -> None:
    glmer = peers.get("glmer")
    reference_fit = glmer["fit_seconds"] if glmer else None
    print(
        "| tool | n pupils | seconds (fit) | CPU seconds (fit) | seconds (total) | ratio to glmer "
        "| peak MB | 1-min load after | note |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        n = f"{r['size']:,}"
        total = f"{r['total_seconds']:.2f}"
        load = f"{r['load_after']:.2f}"
        if "error" in r:
            print(f"| {r['label']} | {n} | — | — | {total} | — | — | {load} | {r['error']} |")
            continue
        ratio = (
            f"{r['fit_seconds'] / reference_fit:.4f}"
            if reference_fit and r["size"] == glmer["size"]
            else "—"
        )
        note = row_note(r, warning_width=160)
        cpu = f"{r['fit_cpu_seconds']:.2f}" if "fit_cpu_seconds" in r else "—"
        print(
            f"| {r['label']} | {n} | {r['fit_seconds']:.2f} | {cpu} | {total} | {ratio} | "
            f"{r['peak_mb']:.0f} | {load} | {note} |"
        )

    print("\nAgreement (relative differences from glmer at the same size):")
    ref_label = PEER_LABELS["glmer"]
    for (label, size), rec in estimates.items():
        ref = estimates.get((ref_label, size))
        if ref is None or label == ref_label:
            continue
        dev = abs(rec["deviance"] - ref["deviance"]) / abs(ref["deviance"])
        print(
            f"  {label} vs glmer, {size:,} pupils: deviance {dev:.1e} "
            f"({rec['deviance'] - ref['deviance']:+.6f}), fixed effects "
            f"{max_rel(rec['fixed'], ref['fixed']):.1e}, variance components "
            f"{max_rel(rec['vc'], ref['vc']):.1e}"
        )
    for (label, size), rec in estimates.items():
        print(
            f"  {label}, {size:,}: beta = {np.round(rec['fixed'], 5).tolist()}, "
            f"variances (school, class) = {np.round(rec['vc'], 5).tolist()}, "
            f"deviance = {rec['deviance']:.6f}"
        )

    print("\nMachine:")
    for line in machine_details(peers):
        print(f"  {line}")
    cpd = {r["size"]: r for r in rows if r["label"] == "cpdimpact" and "error" not in r}
    targets = []
    if glmer and small in cpd:
        speedup = glmer["fit_seconds"] / cpd[small]["fit_seconds"]
        targets.append(f"{speedup:.1f}x faster than glmer at {small:,} (target 50x)")
    for size, r in sorted(cpd.items()):
        if size == 500_000:
            targets.append(f"500,000 pupils in {r['fit_seconds']:.2f} s (target < 5 s)")
        if size >= 10_000_000:
            targets.append(
                f"{size:,} pupils in {r['fit_seconds']:.1f} s ({r['fit_cpu_seconds']:.1f} s of "
                f"CPU) and {r['peak_mb']:.0f} MB (target < 60 s and < 4096 MB)"
            )
    if targets:
        print("\nTargets: " + "; ".join(targets))


if __name__ == "__main__":
    main()
