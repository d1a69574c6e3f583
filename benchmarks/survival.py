"""Benchmark the survival estimators at national scale against R survival, lifelines, statsmodels.

One run simulates the teaching workforce of England over ten census years: 450,000 teachers in
post at each census in 20,000 schools, leavers replaced by entrants, so about 4.5 million
teacher-years in some 850,000 spells. It writes them to one CSV and fits, each in a fresh
process (peak memory is the case's own):

* Kaplan-Meier by arm with the infinitesimal jackknife by school: cpdimpact ``KaplanMeier``,
  R ``survfit(..., cluster = school)``, lifelines ``KaplanMeierFitter`` (no clustered variance);
* Cox with Efron ties, experience as covariate, robust by school: cpdimpact ``CoxModel``, R
  ``coxph(... + cluster(school))``, lifelines ``CoxPHFitter(cluster_col=, robust=True)``;
* the discrete-time hazard (person-period logit, one baseline per census year, experience,
  cluster-robust by school): cpdimpact ``DiscreteTimeHazard``, statsmodels ``GLM`` with
  ``cov_type="cluster"`` on the person-period table built with pandas.

::

    PYTHONPATH=src .venv/bin/python benchmarks/survival.py
    PYTHONPATH=src .venv/bin/python benchmarks/survival.py --lifelines-python /tmp/peer-surv/bin/python
    PYTHONPATH=src .venv/bin/python benchmarks/survival.py --teachers 45000   # a tenth
    PYTHONPATH=src .venv/bin/python benchmarks/survival.py --skip-peers

lifelines runs only when ``--lifelines-python`` names an interpreter that has it (a scratch
environment: it is not a dependency of cpdimpact). "Seconds (fit)" is the estimation alone, after
the CSV is read (R: timed with ``proc.time()``); "Seconds (total)" is the whole process. The
estimates of the peers are compared with cpdimpact's (largest relative difference of the
treatment's coefficient or retention difference and its standard error). Nothing about time is
asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _harness as harness
import numpy as np
from _harness import emit, machine_lines, peak_mb, run_rscript

SEED = 20261207
SCHOOLS = 20_000
YEARS = 10
LOAD_AT_START = "?"


# ---------------------------------------------------------------------- data
def simulate(teachers: int, seed: int = SEED):
    """Spells of a stationary workforce: ``teachers`` in post at each of ``YEARS`` censuses.

    The stock at the first census and each year's entrants (as many as left the year before)
    are followed to the last census; a teacher leaves in a year with probability
    ``expit(-2.2 + log(0.8) D - 0.03 (experience - 10))`` (about 10% a year), ``D`` the
    participation (more likely early in the career). Returns a DataFrame with ``school,
    treated, experience, years, left``.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    parts = []
    gone_at = np.zeros(YEARS + 1, dtype=np.int64)  # leavers missing at each census
    for start in range(YEARS):
        n = teachers if start == 0 else int(gone_at[start])  # replace last year's leavers
        experience = rng.integers(0, 30, n) if start == 0 else rng.integers(0, 3, n)
        treated = rng.random(n) < 1 / (1 + np.exp(0.5 + 0.08 * (experience - 10)))
        h = 1 / (1 + np.exp(2.2 - np.log(0.8) * treated + 0.03 * (experience - 10)))
        years = rng.geometric(h)
        follow = YEARS - start
        left = years <= follow
        gone_at += np.bincount(start + years[left], minlength=YEARS + 1)[: YEARS + 1]
        parts.append(
            pd.DataFrame(
                {
                    "school": rng.integers(1, SCHOOLS + 1, n),
                    "treated": treated.astype(np.int64),
                    "experience": experience,
                    "years": np.minimum(years, follow),
                    "left": left.astype(np.int64),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


# ---------------------------------------------------------------------- cpdimpact workers
def _read(path):
    import pandas as pd

    return pd.read_csv(path)


def _cpdimpact(args, model: str) -> None:
    from cpdimpact.survival import CoxModel, DiscreteTimeHazard, KaplanMeier

    t0 = time.perf_counter()
    data = _read(args.data)
    t1 = time.perf_counter()
    common = {"duration": "years", "event": "left", "treatment": "treated", "cluster": "school"}
    if model == "km":
        res = KaplanMeier(**common, horizons=(1, 2, 3)).fit(data)
        est, se = res.differences["estimate"].tolist(), res.differences["std_error"].tolist()
    elif model == "cox":
        res = CoxModel(**common, covariates=("experience",)).fit(data)
        est, se = res.params.tolist(), res.std_errors.tolist()
    else:
        res = DiscreteTimeHazard(**common, covariates=("experience",)).fit(data)
        est = [res.params["treated"], res.params["experience"]]
        se = [res.std_errors["treated"], res.std_errors["experience"]]
    t2 = time.perf_counter()
    emit(
        {
            "read_seconds": t1 - t0,
            "fit_seconds": t2 - t1,
            "peak_mb": peak_mb(),
            "n": len(data),
            "estimate": est,
            "std_error": se,
        }
    )


# ---------------------------------------------------------------------- R survival
R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressMessages(library(survival))
model <- args[2]
t0 <- proc.time()[["elapsed"]]
d <- read.csv(args[1])
t1 <- proc.time()[["elapsed"]]
if (model == "km") {
  fit <- survfit(Surv(years, left) ~ treated, data = d, cluster = school, influence = TRUE)
  t2 <- proc.time()[["elapsed"]]
  s <- summary(fit, times = c(1, 2, 3))
  est <- s$surv[s$strata == "treated=1"] - s$surv[s$strata == "treated=0"]
  infl <- fit$influence.surv; names(infl) <- names(fit$strata)
  ids <- union(rownames(infl[[1]]), rownames(infl[[2]]))
  se <- sapply(1:3, function(h) {
    at <- function(st) {
      v <- setNames(numeric(length(ids)), ids); m <- infl[[st]]
      v[rownames(m)] <- m[, max(which(fit[st]$time <= h))]; v
    }
    sqrt(sum((at("treated=1") - at("treated=0"))^2))
  })
} else {
  fit <- coxph(Surv(years, left) ~ treated + experience + cluster(school), data = d)
  t2 <- proc.time()[["elapsed"]]
  est <- unname(coef(fit)); se <- unname(sqrt(diag(fit$var)))
}
num <- function(x) paste(format(x, digits = 17), collapse = ",")
cat("read_seconds", t1 - t0, "\n")
cat("fit_seconds", t2 - t1, "\n")
cat("n", nrow(d), "\n")
cat("estimate", num(est), "\n")
cat("std_error", num(se), "\n")
cat("r_version", paste(R.version$major, R.version$minor, sep = "."), "\n")
cat("survival_version", as.character(packageVersion("survival")), "\n")
"""


def _r(args, model: str) -> None:
    ran = run_rscript(R_SCRIPT, [args.data, model])
    if ran is None:
        return
    fields, wall = ran
    emit(
        {
            "read_seconds": float(fields["read_seconds"]),
            "fit_seconds": float(fields["fit_seconds"]),
            "rscript_seconds": wall,
            "peak_mb": peak_mb(resource.RUSAGE_CHILDREN),
            "n": int(fields["n"]),
            "estimate": [float(v) for v in fields["estimate"].split(",")],
            "std_error": [float(v) for v in fields["std_error"].split(",")],
            "version": f"R {fields['r_version']}, survival {fields['survival_version']}",
        }
    )


# ---------------------------------------------------------------------- lifelines
def _lifelines(args, model: str) -> None:
    """Runs in the interpreter given by --lifelines-python (needs lifelines, pandas)."""
    import warnings

    import lifelines
    import pandas as pd

    t0 = time.perf_counter()
    d = pd.read_csv(args.data)
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if model == "km":
            est, se = [], []
            fits = {
                arm: lifelines.KaplanMeierFitter().fit(part["years"], part["left"])
                for arm, part in d.groupby("treated")
            }
            for h in (1, 2, 3):
                s = {arm: float(f.survival_function_at_times(h).iloc[0]) for arm, f in fits.items()}
                est.append(s[1] - s[0])
            se = [float("nan")] * 3  # lifelines has no clustered variance of a curve
        else:
            cph = lifelines.CoxPHFitter().fit(
                d[["years", "left", "treated", "experience", "school"]],
                "years",
                "left",
                cluster_col="school",
                robust=True,
            )
            est = cph.params_[["treated", "experience"]].tolist()
            se = cph.standard_errors_[["treated", "experience"]].tolist()
    t2 = time.perf_counter()
    emit(
        {
            "read_seconds": t1 - t0,
            "fit_seconds": t2 - t1,
            "peak_mb": peak_mb(),
            "n": len(d),
            "estimate": est,
            "std_error": se,
            "version": f"lifelines {lifelines.__version__}",
        }
    )


# ---------------------------------------------------------------------- statsmodels
def _statsmodels(args, model: str) -> None:
    import pandas as pd
    import statsmodels
    import statsmodels.api as sm

    t0 = time.perf_counter()
    d = pd.read_csv(args.data)
    t1 = time.perf_counter()
    rows = d.loc[d.index.repeat(d["years"])]
    period = rows.groupby(level=0).cumcount().to_numpy() + 1
    y = ((period == rows["years"].to_numpy()) & (rows["left"].to_numpy() == 1)).astype(float)
    x = pd.get_dummies(period, prefix="period").astype(float)
    x["treated"] = rows["treated"].to_numpy(dtype=float)
    x["experience"] = rows["experience"].to_numpy(dtype=float)
    fit = sm.GLM(y, x, family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": rows["school"].to_numpy()}, use_t=True
    )
    t2 = time.perf_counter()
    emit(
        {
            "read_seconds": t1 - t0,
            "fit_seconds": t2 - t1,
            "peak_mb": peak_mb(),
            "n": len(d),
            "person_periods": int(len(y)),
            "estimate": [float(fit.params["treated"]), float(fit.params["experience"])],
            "std_error": [float(fit.bse["treated"]), float(fit.bse["experience"])],
            "version": f"statsmodels {statsmodels.__version__}",
        }
    )


WORKERS = {
    "cpdimpact": _cpdimpact,
    "R survival": _r,
    "lifelines": _lifelines,
    "statsmodels": _statsmodels,
}
MODELS = {
    "km": "Kaplan-Meier, jackknife by school",
    "cox": "Cox (Efron), robust by school",
    "discrete": "discrete-time logit, CR1 by school",
}
PEERS = {
    "km": ("R survival", "lifelines"),
    "cox": ("R survival", "lifelines"),
    "discrete": ("statsmodels",),
}


# ---------------------------------------------------------------------- driver
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teachers", type=int, default=450_000, help="in post at each census")
    parser.add_argument("--skip-peers", action="store_true", help="cpdimpact only")
    parser.add_argument(
        "--lifelines-python", help="interpreter of a scratch environment that has lifelines"
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="per case, seconds")
    parser.add_argument("--case", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=sorted(MODELS), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        WORKERS[args.case](args, args.model)
        return

    global LOAD_AT_START
    LOAD_AT_START = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    have_r = shutil.which("Rscript") is not None
    rows = []
    with tempfile.TemporaryDirectory(prefix="cpdimpact-survival-") as tmp:
        csv = str(Path(tmp) / "spells.csv")
        spells = simulate(args.teachers)
        spells.to_csv(csv, index=False)
        facts = (len(spells), int(spells["years"].sum()), spells["school"].nunique())
        del spells
        for model in MODELS:
            cases = ["cpdimpact"]
            if not args.skip_peers:
                for peer in PEERS[model]:
                    if peer == "R survival" and not have_r:
                        continue
                    if peer == "lifelines" and not args.lifelines_python:
                        continue
                    cases.append(peer)
            for case in cases:
                python = args.lifelines_python if case == "lifelines" else sys.executable
                cmd = [python, __file__, "--case", case, "--model", model, "--data", csv]
                print(f"running {case}, {MODELS[model]} ...", file=sys.stderr, flush=True)
                rec = harness.run_case(cmd, timeout=args.timeout)
                rec.update(case=case, model=model, load_after=os.getloadavg()[0])
                rows.append(rec)
    report(rows, facts)


def report(rows, facts) -> None:
    spells, teacher_years, schools = facts
    print(f"\n{spells:,} spells, {teacher_years:,} teacher-years at risk, {schools:,} schools\n")
    print(
        "| model | tool | seconds (fit) | seconds (total) | peak memory (MB) | fit time / "
        "cpdimpact's | largest relative difference from cpdimpact (estimate, SE) |"
    )
    print("|---|---|---|---|---|---|---|")
    ours = {r["model"]: r for r in rows if r["case"] == "cpdimpact" and "error" not in r}
    versions = set()
    for r in rows:
        if "error" in r:
            print(f"| {MODELS[r['model']]} | {r['case']} | {r['error']} | | | | |")
            continue
        versions.add(r.get("version", ""))
        mine = ours.get(r["model"])
        ratio = diff = ""
        if mine and r["case"] != "cpdimpact":
            ratio = f"{r['fit_seconds'] / mine['fit_seconds']:.1f}"
            est = harness.max_rel(r["estimate"], mine["estimate"])
            se_pairs = [
                (a, b)
                for a, b in zip(r["std_error"], mine["std_error"], strict=True)
                if np.isfinite(a)
            ]
            se = harness.max_rel(*zip(*se_pairs, strict=True)) if se_pairs else float("nan")
            diff = f"{est:.1e}, " + ("no SE" if not se_pairs else f"{se:.1e}")
        print(
            f"| {MODELS[r['model']]} | {r['case']} | {r['fit_seconds']:.2f} | "
            f"{r['total_seconds']:.2f} | {r['peak_mb']:,.0f} | {ratio} | {diff} |"
        )
    import pandas as pd
    import scipy

    print()
    for line in [
        *machine_lines(),
        f"Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"scipy {scipy.__version__}",
        *sorted(v for v in versions if v),
        f"load average before the run (1, 5, 15 min): {LOAD_AT_START}",
        f"load average after the run (1, 5, 15 min): "
        f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}",
    ]:
        print(f"- {line}")


if __name__ == "__main__":
    main()
