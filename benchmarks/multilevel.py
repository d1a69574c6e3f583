"""Benchmark the multilevel engine against statsmodels MixedLM and lme4.

One run simulates pupils in teachers in schools, fits the REML model
``y ~ x1 + x2 + x3 + (1 | school/teacher)`` with cpdimpact, statsmodels and lme4 (through
Rscript) on the same CSV, times cpdimpact alone at national scale, checks that the estimates
agree and prints a Markdown table, the machine details and a phase profile of cpdimpact.

Every case runs in a fresh subprocess (this script re-invoked with ``--case``), so peak memory
(``ru_maxrss``) belongs to that case alone; lme4's is read with ``RUSAGE_CHILDREN`` in a Python
wrapper process around Rscript.

    .venv/bin/python benchmarks/multilevel.py                      # everything (several minutes)
    .venv/bin/python benchmarks/multilevel.py --skip-peers --sizes 500000
    .venv/bin/python benchmarks/multilevel.py --timeout 300         # per-case limit, seconds
    .venv/bin/python benchmarks/multilevel.py --shapes all --sizes 500000 --skip-statsmodels

``--shapes`` adds data sets simulated independently of the benchmark's own (``other_shape``):
``sorted`` (ragged classes, school ids like URNs, teacher ids unique across schools, rows sorted
by school), ``shuffled`` (the same rows shuffled), ``restart`` (teacher ids restarting within
each school) and ``slope`` (a random slope on x1 by school: ``(1 + x1 | school) +
(1 | school:teacher)``). Each runs cpdimpact and lme4 on the same CSV in the same run, at the
smallest size.

"Seconds (fit)" is the model fit alone (statsmodels: model construction and fit; lme4: the
``lmer()`` call timed inside R). "Seconds (total)" is the wall time of the whole process:
interpreter start-up, imports, reading the shared CSV (or, for the sizes above
``--csv-limit``, simulating the data in-process) and the fit.
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
from types import SimpleNamespace

import _harness as harness
import numpy as np
from _harness import emit, machine_lines, max_rel, peak_mb, r_record, row_note, run_rscript

SEED = 20261123
TEACHERS_PER_SCHOOL = 10
PUPILS_PER_TEACHER = 25  # on average: 250 pupils per school
FIXED = ("Intercept", "x1", "x2", "x3")
VARIANCES = ("school", "teacher", "Residual")
COVARIATES = ("x1", "x2", "x3")
TRUE_BETA = np.array([0.2, 0.5, -0.15, 0.1])
TRUE_VC = {"school": 0.15, "teacher": 0.05, "Residual": 0.8}
LOAD_AT_START = "?"  # other processes on the machine distort timings: reported with the table


# ---------------------------------------------------------------------- data
def simulate(n_pupils: int, seed: int = SEED):
    """Pupils in teachers in schools; teacher ids restart (0..9) within each school.

    x1 is a continuous prior-attainment score (correlated with the school effect), x2 a 0/1
    free-school-meals flag whose rate varies by school, x3 a school-level 0/1 treatment. Class
    sizes are ragged (pupils assigned to teachers at random). Rows are shuffled.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_schools = max(2, n_pupils // (TEACHERS_PER_SCHOOL * PUPILS_PER_TEACHER))
    n_teachers = n_schools * TEACHERS_PER_SCHOOL
    teacher_global = rng.integers(0, n_teachers, n_pupils)
    school = teacher_global // TEACHERS_PER_SCHOOL
    u_school = rng.normal(0.0, np.sqrt(TRUE_VC["school"]), n_schools)
    u_teacher = rng.normal(0.0, np.sqrt(TRUE_VC["teacher"]), n_teachers)
    fsm_rate = rng.uniform(0.05, 0.45, n_schools)
    treat = (rng.random(n_schools) < 0.5).astype(float)
    x1 = rng.normal(0.0, 1.0, n_pupils) + 0.3 * u_school[school]
    x2 = (rng.random(n_pupils) < fsm_rate[school]).astype(float)
    x3 = treat[school]
    y = (
        TRUE_BETA[0]
        + TRUE_BETA[1] * x1
        + TRUE_BETA[2] * x2
        + TRUE_BETA[3] * x3
        + u_school[school]
        + u_teacher[teacher_global]
        + rng.normal(0.0, np.sqrt(TRUE_VC["Residual"]), n_pupils)
    )
    order = rng.permutation(n_pupils)
    return pd.DataFrame(
        {
            "school": school[order],
            "teacher": (teacher_global % TEACHERS_PER_SCHOOL)[order],
            "x1": x1[order],
            "x2": x2[order],
            "x3": x3[order],
            "y": y[order],
        }
    )


OTHER_SHAPES = ("sorted", "shuffled", "restart", "slope")


def other_shape(shape: str, n_pupils: int, seed: int = 17):
    """A 3-level data set simulated independently of :func:`simulate`, in one of four shapes.

    3 to 18 classes per school (about 2,000 schools at 500k pupils), class sizes drawn
    unequally (multinomial on gamma propensities), school ids like URNs (six digits, not
    contiguous), teacher ids unique across schools (``restart``: 1, 2, ... within each
    school). True variances: school 0.2, class 0.0625, residual 0.81; x1 prior attainment
    (correlated with the school effect), x2 a 0/1 FSM flag, x3 a school-level treatment;
    ``slope`` adds a school random slope on x1 (SD 0.15). Rows are sorted by school, except
    ``shuffled``.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_schools = max(2, n_pupils // 280)
    per_school = rng.integers(3, 19, n_schools)
    n_classes = int(per_school.sum())
    class_school = np.repeat(np.arange(n_schools), per_school)
    propensity = rng.gamma(4.0, 1.0, n_classes)
    pupils = np.repeat(
        np.arange(n_classes), rng.multinomial(n_pupils, propensity / propensity.sum())
    )
    school = class_school[pupils]
    u_school = rng.normal(0, np.sqrt(0.2), n_schools)
    u_class = rng.normal(0, 0.25, n_classes)
    x1 = rng.normal(0, 1, n_pupils) + 0.4 * u_school[school]
    x2 = (rng.random(n_pupils) < rng.uniform(0.05, 0.5, n_schools)[school]).astype(float)
    x3 = (rng.random(n_schools) < 0.5).astype(float)[school]
    y = 1.0 + 0.6 * x1 - 0.2 * x2 + 0.08 * x3 + u_school[school] + u_class[pupils]
    y += rng.normal(0, 0.9, n_pupils)
    if shape == "slope":
        y += rng.normal(0, 0.15, n_schools)[school] * x1
    urn = 100_000 + rng.choice(900_000, n_schools, replace=False)
    teacher = 5_000_000 + rng.permutation(n_classes)[pupils]
    if shape == "restart":
        teacher = 1 + pupils - np.concatenate(([0], np.cumsum(per_school)[:-1]))[school]
    frame = pd.DataFrame(
        {"school": urn[school], "teacher": teacher, "x1": x1, "x2": x2, "x3": x3, "y": y}
    )
    if shape == "shuffled":
        return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return frame.sort_values("school", kind="stable").reset_index(drop=True)


def load(args):
    import pandas as pd

    if args.data:
        return pd.read_csv(args.data)
    if args.shape != "benchmark":
        return other_shape(args.shape, args.pupils)
    return simulate(args.pupils)


def _model(args):
    from cpdimpact.estimator import ModelBased
    from cpdimpact.multilevel import MultilevelModel

    return MultilevelModel(
        outcome="y",
        covariates=COVARIATES,
        groups=("school", "teacher"),
        slopes={"school": ("x1",)} if args.shape == "slope" else {},
        method="reml",
        inference=ModelBased(args.df_method),
    )


def _variances(args) -> tuple[str, ...]:
    if args.shape == "slope":
        return ("school", "school:x1", "school:Intercept:x1", "teacher", "Residual")
    return VARIANCES


# ---------------------------------------------------------------------- workers
def worker_cpdimpact(args) -> None:
    data = load(args)
    model = _model(args)
    t0 = time.perf_counter()
    fit = model.fit(data)
    elapsed = time.perf_counter() - t0
    vc = fit.variance_components
    emit(
        {
            "fit_seconds": elapsed,
            "peak_mb": peak_mb(),
            "n": int(fit.n_obs),
            "fixed": [float(fit.params[k]) for k in FIXED],
            "vc": [float(vc[k]) for k in _variances(args)],
            "loglik": float(fit.loglik),
            "converged": bool(fit.converged),
        }
    )


def worker_statsmodels(args) -> None:
    import warnings

    import statsmodels.formula.api as smf

    data = load(args)
    t0 = time.perf_counter()
    model = smf.mixedlm(
        "y ~ x1 + x2 + x3",
        data,
        groups="school",
        re_formula="1",
        vc_formula={"teacher": "0 + C(teacher)"},
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = model.fit(reml=True)
    elapsed = time.perf_counter() - t0
    fe = fit.fe_params
    emit(
        {
            "fit_seconds": elapsed,
            "peak_mb": peak_mb(),
            "n": int(fit.nobs),
            "fixed": [float(fe[k]) for k in FIXED],
            "vc": [float(fit.cov_re.iloc[0, 0]), float(fit.vcomp[0]), float(fit.scale)],
            "loglik": float(fit.llf),
            "converged": bool(fit.converged),
            "warnings": sorted({str(w.message)[:120] for w in caught}),
        }
    )


R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressMessages(library(lme4))
t0 <- proc.time()[["elapsed"]]
if (requireNamespace("data.table", quietly = TRUE)) {
  d <- as.data.frame(data.table::fread(args[1]))
  reader <- "data.table::fread"
} else {
  d <- read.csv(args[1])
  reader <- "read.csv"
}
d$school <- factor(d$school)
d$teacher <- factor(d$teacher)
t1 <- proc.time()[["elapsed"]]
warns <- character()
form <- if (length(args) > 1 && args[2] == "slope") {
  y ~ x1 + x2 + x3 + (1 + x1 | school) + (1 | school:teacher)
} else {
  y ~ x1 + x2 + x3 + (1 | school/teacher)
}
fit <- withCallingHandlers(
  lmer(form, data = d, REML = TRUE),
  warning = function(w) {
    warns <<- c(warns, conditionMessage(w))
    invokeRestart("muffleWarning")
  }
)
t2 <- proc.time()[["elapsed"]]
vc <- as.data.frame(VarCorr(fit))
num <- function(x) paste(format(x, digits = 17), collapse = ",")
cat("read_seconds", t1 - t0, "\n")
cat("fit_seconds", t2 - t1, "\n")
cat("n", nrow(d), "\n")
cat("fixed", num(unname(fixef(fit))), "\n")
# school: variances then the covariance (slope model); the class level is named either way
cat("vc", num(c(vc$vcov[vc$grp == "school"], vc$vcov[vc$grp %in% c("teacher:school",
                "school:teacher")], vc$vcov[vc$grp == "Residual"])), "\n")
cat("loglik", num(as.numeric(logLik(fit))), "\n")
cat("r_version", paste(R.version$major, R.version$minor, sep = "."), "\n")
cat("lme4_version", as.character(packageVersion("lme4")), "\n")
cat("reader", reader, "\n")
cat("warnings", gsub("[\r\n]+", " ", paste(warns, collapse = " | ")), "\n")
"""


def worker_lme4(args) -> None:
    """Wrapper process: runs Rscript, so RUSAGE_CHILDREN is R's peak memory alone."""
    ran = run_rscript(R_SCRIPT, [args.data, args.shape])
    if ran is None:
        return
    fields, wall = ran
    emit(
        r_record(fields, wall)
        | {"loglik": float(fields["loglik"]), "lme4_version": fields["lme4_version"]}
    )


class _PhaseTimer:
    """Wraps module functions to accumulate inclusive time and call counts per phase."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.evals: dict[str, int] = {}

    def wrap(self, module, attr: str, label: str) -> None:
        original = getattr(module, attr, None)
        if original is None:
            return

        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t0
                self.calls[label] = self.calls.get(label, 0) + 1

        setattr(module, attr, timed)


def _phase_targets(_model, _engine):
    return [
        (_model, "_prepare", "prepare (all)"),
        (_model, "_group_codes", "prepare: groupby codes + labels"),
        (_model, "_check_groups", "prepare: nesting checks"),
        (_model, "_check_rank", "prepare: rank check (on X'X)"),
        (_model, "_term_levels", "prepare: term levels (grouped sums)"),
        (_engine, "build_structure", "prepare: sufficient statistics"),
        (_model, "_optimise", "optimise (all)"),
        (_model, "_newton_polish", "optimise: Newton polish"),
        (_engine, "deviance", "deviance evaluations (anywhere)"),
        (_model, "satterthwaite_df", "Satterthwaite df"),
        (_model, "between_within_df", "between-within df"),
        (_engine, "modes", "BLUPs (modes)"),
        (_model, "_random_effects", "random-effects tables"),
    ]


PHASE_ORDER = [label for _, _, label in _phase_targets(None, None)] + [
    "evaluate() calls (anywhere)"
]


def worker_phases(args) -> None:
    """Time the phases of one cpdimpact fit (the library is wrapped at run time, not edited)."""
    from cpdimpact.multilevel import _engine, _inference
    from cpdimpact.multilevel import _model as _model_module

    timer = _PhaseTimer()
    for module, attr, label in _phase_targets(_model_module, _engine):
        timer.wrap(module, attr, label)
    # scipy's minimize, split by method (the module attribute is patched in this process only).
    minimize = _model_module.optimize.minimize

    def minimize_timed(fun, x0, *a, method=None, **k):
        label = f"optimise: scipy {method}"
        t0 = time.perf_counter()
        counted = {"n": 0}

        def counting(v):
            counted["n"] += 1
            return fun(v)

        try:
            return minimize(counting, x0, *a, method=method, **k)
        finally:
            timer.seconds[label] = timer.seconds.get(label, 0.0) + time.perf_counter() - t0
            timer.calls[label] = timer.calls.get(label, 0) + 1
            timer.evals[label] = timer.evals.get(label, 0) + counted["n"]

    _model_module.optimize = SimpleNamespace(minimize=minimize_timed)
    # evaluate() is called by name from _engine (deviance, full_deviance, modes) and _inference.
    evaluate = _engine.evaluate
    timer.wrap(_engine, "evaluate", "evaluate() calls (anywhere)")
    if getattr(_inference, "evaluate", None) is evaluate:
        _inference.evaluate = _engine.evaluate
    data = load(args)
    model = _model(args)
    t0 = time.perf_counter()
    model.fit(data)
    total = time.perf_counter() - t0
    emit(
        {"fit_seconds": total, "seconds": timer.seconds, "calls": timer.calls, "evals": timer.evals}
    )


WORKERS = {
    "cpdimpact": worker_cpdimpact,
    "statsmodels": worker_statsmodels,
    "lme4": worker_lme4,
    "phases": worker_phases,
}


# ---------------------------------------------------------------------- driver
def run_case(
    case: str,
    *,
    timeout: float,
    pupils: int,
    data: str | None,
    df_method="normal",
    shape="benchmark",
):
    """Run one case in a fresh process; returns its record plus wall time (or an error)."""
    cmd = [sys.executable, __file__, "--case", case, "--pupils", str(pupils)]
    cmd += ["--df-method", df_method, "--shape", shape]
    if data:
        cmd += ["--data", data]
    return harness.run_case(cmd, timeout=timeout)


def machine_details(lme4: dict | None) -> list[str]:
    import pandas as pd
    import scipy
    import statsmodels

    import cpdimpact

    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except Exception:  # informational only
        blas = "?"
    details = [
        *machine_lines(),
        f"Python {platform.python_version()}, cpdimpact {cpdimpact.__version__}, numpy "
        f"{np.__version__} ({blas}), pandas {pd.__version__}, scipy {scipy.__version__}, "
        f"statsmodels {statsmodels.__version__}",
    ]
    details.append(f"load average before the run (1, 5, 15 min): {LOAD_AT_START}")
    if lme4 and "r_version" in lme4:
        details.append(
            f"R {lme4['r_version']}, lme4 {lme4['lme4_version']} (data read with {lme4['reader']})"
        )
    return details


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[500_000, 10_000_000],
        help="pupil counts; peers and other shapes run only at the smallest",
    )
    parser.add_argument(
        "--shapes",
        nargs="+",
        default=[],
        choices=[*OTHER_SHAPES, "all"],
        help="other data sets (see other_shape), each with lme4 in the same run; 'all' for all",
    )
    parser.add_argument("--skip-peers", action="store_true", help="cpdimpact only")
    parser.add_argument("--skip-statsmodels", action="store_true")
    parser.add_argument("--no-phases", action="store_true", help="skip the phase profile")
    parser.add_argument("--timeout", type=float, default=900.0, help="per case, seconds")
    parser.add_argument(
        "--csv-limit",
        type=int,
        default=1_000_000,
        help="sizes up to this are written to a CSV shared by all tools",
    )
    parser.add_argument("--case", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--pupils", type=int, default=500_000, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--df-method", default="normal", help=argparse.SUPPRESS)
    parser.add_argument("--shape", default="benchmark", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        WORKERS[args.case](args)
        return

    global LOAD_AT_START
    LOAD_AT_START = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    sizes = sorted(args.sizes)
    small = sizes[0]
    shapes = list(OTHER_SHAPES) if "all" in args.shapes else list(dict.fromkeys(args.shapes))
    datasets = [("benchmark", size) for size in sizes] + [(shape, small) for shape in shapes]
    have_r = shutil.which("Rscript") is not None
    rows, phases, estimates = [], [], {}
    lme4_records = {}
    with tempfile.TemporaryDirectory(prefix="cpdimpact-ml-") as tmp:
        for shape, size in datasets:
            csv = None
            if size <= args.csv_limit:
                csv = str(Path(tmp) / f"pupils_{shape}_{size}.csv")
                frame = simulate(size) if shape == "benchmark" else other_shape(shape, size)
                frame.to_csv(csv, index=False, float_format="%.17g")
                del frame
            opts = {"timeout": args.timeout, "pupils": size, "data": csv, "shape": shape}
            cases = [("cpdimpact (df: normal)", "cpdimpact", "normal")]
            if size == small:
                cases.append(("cpdimpact (df: Satterthwaite)", "cpdimpact", "satterthwaite"))
                peers = not args.skip_peers
                if peers and not args.skip_statsmodels and shape == "benchmark":
                    cases.append(("statsmodels MixedLM", "statsmodels", "normal"))
                if peers and have_r:
                    cases.append(("lme4 lmer (Rscript)", "lme4", "normal"))
            for label, case, df_method in cases:
                print(f"running {label}, {shape}, {size:,} pupils ...", file=sys.stderr, flush=True)
                rec = run_case(case, df_method=df_method, **opts)
                rec.update(label=label, size=size, shape=shape)
                rows.append(rec)
                if "fixed" in rec:
                    estimates[(label, shape, size)] = rec
                if case == "lme4" and "error" not in rec:
                    lme4_records[(shape, size)] = rec
            if not args.no_phases:
                methods = ["normal", "satterthwaite"] if size == small else ["normal"]
                for df_method in methods:
                    rec = run_case("phases", df_method=df_method, **opts)
                    rec.update(size=size, df_method=df_method, shape=shape)
                    phases.append(rec)
            if csv:
                os.unlink(csv)

    report(rows, phases, estimates, lme4_records, small)


def report(rows, phases, estimates, lme4_records, small) -> None:
    print(
        "| data | tool | n pupils | seconds (fit) | seconds (total) | ratio to lme4 | peak MB "
        "| note |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        n = f"{r['size']:,}"
        total = f"{r['total_seconds']:.2f}"
        head = f"| {r['shape']} | {r['label']} | {n}"
        if "error" in r:
            print(f"{head} | — | {total} | — | — | {r['error']} |")
            continue
        reference = lme4_records.get((r["shape"], r["size"]))
        ratio = f"{r['fit_seconds'] / reference['fit_seconds']:.3f}" if reference else "—"
        note = row_note(r, warning_width=90)
        print(
            f"{head} | {r['fit_seconds']:.2f} | {total} | {ratio} | {r['peak_mb']:.0f} | {note} |"
        )

    print("\nAgreement (max relative difference vs the reference fit on the same data):")
    for (label, shape, size), rec in estimates.items():
        ref_label = (
            "lme4 lmer (Rscript)" if (shape, size) in lme4_records else "cpdimpact (df: normal)"
        )
        ref = estimates.get((ref_label, shape, size))
        if ref is None or label == ref_label:
            continue
        print(
            f"  {shape}: {label} vs {ref_label}, {size:,} pupils: fixed effects "
            f"{max_rel(rec['fixed'], ref['fixed']):.1e}, variance components "
            f"{max_rel(rec['vc'], ref['vc']):.1e}, log-likelihood "
            f"{rec['loglik'] - ref['loglik']:+.1e}"
        )
    for (label, shape, size), rec in estimates.items():
        print(
            f"  {shape}, {label}, {size:,}: beta = {np.round(rec['fixed'], 5).tolist()}, "
            f"variances = {np.round(rec['vc'], 5).tolist()}, loglik = {rec['loglik']:.3f}"
        )

    if phases:
        print("\nWhere cpdimpact's time goes (inclusive seconds per phase, one fit each):")
        for p in phases:
            head = f"  {p['shape']}, {p['size']:,} pupils, df_method={p['df_method']}"
            if "error" in p:
                print(f"{head}: {p['error']}")
                continue
            print(f"{head}: fit {p['fit_seconds']:.2f} s")
            top = ("prepare (all)", "optimise (all)", "Satterthwaite df", "between-within df")
            top += ("BLUPs (modes)", "random-effects tables")
            rest = p["fit_seconds"] - sum(p["seconds"].get(k, 0.0) for k in top)
            p["seconds"]["other (results, final evaluation)"] = rest
            p["calls"]["other (results, final evaluation)"] = 1
            scipy_phases = sorted(k for k in p["seconds"] if k.startswith("optimise: scipy"))
            order = PHASE_ORDER[:8] + scipy_phases + PHASE_ORDER[8:]
            for name in [*order, "other (results, final evaluation)"]:
                if name not in p["seconds"]:
                    continue
                sec, calls = p["seconds"][name], p["calls"][name]
                each = f", {1000 * sec / calls:.1f} ms each" if calls > 1 else ""
                if name in p.get("evals", {}):
                    each += f", {p['evals'][name]} deviance evaluations"
                print(f"    {name:<40} {sec:7.2f} s  ({calls} calls{each})")

    print("\nMachine:")
    for line in machine_details(next(iter(lme4_records.values()), None)):
        print(f"  {line}")
    targets = []
    cpd = {
        (r["shape"], r["size"]): r
        for r in rows
        if r["label"] == "cpdimpact (df: normal)" and "error" not in r
    }
    satt = {
        (r["shape"], r["size"]): r
        for r in rows
        if r["label"] == "cpdimpact (df: Satterthwaite)" and "error" not in r
    }
    for key, reference in lme4_records.items():
        if key in cpd:
            speed = reference["fit_seconds"] / cpd[key]["fit_seconds"]
            extra = ""
            if key in satt:
                extra = f" ({reference['fit_seconds'] / satt[key]['fit_seconds']:.1f}x with Satterthwaite df)"
            targets.append(f"{key[0]}: {speed:.1f}x faster than lme4 at {key[1]:,}{extra}")
    big = max((size for shape, size in cpd if shape == "benchmark"), default=None)
    if big and big != small:
        r = cpd[("benchmark", big)]
        targets.append(
            f"{big:,} pupils in {r['fit_seconds']:.1f} s and {r['peak_mb']:.0f} MB "
            f"(target < 10 s and < 4096 MB)"
        )
    if targets:
        print("\nTargets (50x lme4 on each data set): " + "; ".join(targets))


if __name__ == "__main__":
    main()
