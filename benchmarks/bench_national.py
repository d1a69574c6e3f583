"""Benchmark a national evaluation: about 7 million pupil records, side by side with one
pyfixest regression and with pandas reading the same records.

On ``hub_rollout(seed=1, scale=4)`` (7.3 million pupil records; ``--scale 1`` gives 1.8
million) one run measures, each case in a fresh subprocess so that its peak memory
(``ru_maxrss`` of that process) belongs to it alone:

* ``Evaluation()`` with every default, ``run()`` and ``save()``; and the same with
  ``CohortSpec(comparison="staggered")``;
* ONE pyfixest regression ``outcome ~ exposed | school + year``, CRV1 by school, on the pupil
  rows of the staggered evaluation's cohort (pyfixest runs in a scratch environment given by
  ``--peer-python``, never a project dependency; the case is skipped with a message if that
  interpreter or its pyfixest is missing);
* reading the records from CSV (``Records.from_csv``, plain and ``format="dfe"``) and from
  Parquet (pandas' ``read_parquet`` and ``Records.from_frames``, when pyarrow is installed),
  each followed by validation and the staggered cohort build, beside pandas' own
  ``read_csv`` of the pupils file (the floor).

The machine is shared, so cases are paired: every round runs the evaluations and the
regression back to back, in alternating order, and the ratios are taken within a round.
``--profile`` adds one instrumented run of the staggered evaluation that prints where its
time goes (functions wrapped at run time).

    .venv/bin/python benchmarks/bench_national.py --peer-python /tmp/peer-scale/bin/python
    .venv/bin/python benchmarks/bench_national.py --scale 1 --rounds 1 --skip-io --profile
    .venv/bin/python benchmarks/bench_national.py --skip-io --compare-src /tmp/main/src

``--compare-src`` runs the staggered evaluation of another source tree in every round too
(``git archive main src | tar -x -C /tmp/main``), so before and after are measured side by
side.

Timings exclude starting Python, importing and simulating the records (the simulated records
are the user's data, so their memory is in every peak).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

STAGGERED = "Evaluation(CohortSpec(comparison='staggered')), run + save"

#: Prepares the shared inputs once: the records as CSV and Parquet, and the cohort's pupil
#: rows (outcome, exposed, school, year) as .npy files for the peer.
PREPARE = """
import warnings
import numpy as np
from cpdimpact.cohort import CohortSpec
from cpdimpact.datasets import hub_rollout
warnings.simplefilter("ignore")
r = hub_rollout(seed=1, scale={scale})
folder = Path({folder!r})
r.to_csv(folder / "csv")
parquet = False
try:
    import pyarrow  # noqa: F401
    (folder / "parquet").mkdir(exist_ok=True)
    for name in ("pupils", "participation", "schools"):
        r.table(name).to_parquet(folder / "parquet" / f"{{name}}.parquet", index=False)
    parquet = True
except ImportError:
    pass
c = CohortSpec(comparison="staggered").build(r)
p = c.pupils
np.save(folder / "outcome.npy", p["outcome"].to_numpy(dtype=float))
np.save(folder / "exposed.npy", p["exposed"].to_numpy(dtype=float))
np.save(folder / "school.npy", p["school"].to_numpy(dtype=np.int64))
np.save(folder / "year.npy", p["year"].to_numpy(dtype=np.int64))
elapsed = 0.0
value = len(r.pupils)
extra = {{"parquet": parquet, "cohort_rows": len(p)}}
"""

EVALUATION = """
import tempfile, warnings
from cpdimpact import Evaluation
from cpdimpact.cohort import CohortSpec
from cpdimpact.datasets import hub_rollout
r = hub_rollout(seed=1, scale={scale})
evaluation = {spec}
t0 = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    result = evaluation.run(r)
    t1 = time.perf_counter()
    result.save(tempfile.mkdtemp())
elapsed = time.perf_counter() - t0
value = result.headline["estimate"].iloc[0]
extra = {{"run_s": t1 - t0, "save_s": elapsed - (t1 - t0),
          "estimator": type(result.estimator).__name__}}
"""

PYFIXEST = """
import numpy as np, pandas as pd
import pyfixest as pf
folder = Path({folder!r})
data = pd.DataFrame({{name: np.load(folder / f"{{name}}.npy")
                     for name in ("outcome", "exposed", "school", "year")}})
t0 = time.perf_counter()
fit = pf.feols("outcome ~ exposed | school + year", data=data, vcov={{"CRV1": "school"}})
value = float(fit.coef()["exposed"])
se = float(fit.se()["exposed"])
elapsed = time.perf_counter() - t0
t1 = time.perf_counter()  # a second fit, compiled: the first includes numba's compilation
pf.feols("outcome ~ exposed | school + year", data=data, vcov={{"CRV1": "school"}}).coef()
extra = {{"se": se, "version": pf.__version__, "warm_s": time.perf_counter() - t1}}
"""

READ_CSV = """
import pandas as pd
t0 = time.perf_counter()
frame = pd.read_csv(Path({folder!r}) / "csv" / "pupils.csv")
elapsed = time.perf_counter() - t0
value = len(frame)
extra = {{}}
"""

RECORDS = """
import warnings
import pandas as pd
from cpdimpact import Records
from cpdimpact.cohort import CohortSpec
folder = Path({folder!r})
t0 = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    if {source!r} == "parquet":
        tables = {{name: pd.read_parquet(folder / "parquet" / f"{{name}}.parquet")
                  for name in ("pupils", "participation", "schools")}}
        r = Records.from_frames(**tables)
    else:
        r = Records.from_csv(**{{name: folder / "csv" / f"{{name}}.csv"
                                for name in ("pupils", "participation", "schools")}},
                             format={format!r})
    t1 = time.perf_counter()
    cohort = CohortSpec(comparison="staggered").build(r)  # validates the records first
elapsed = time.perf_counter() - t0
value = len(cohort.pupils)
extra = {{"read_s": t1 - t0, "validate_build_s": elapsed - (t1 - t0)}}
"""

#: Phase profile of one evaluation: functions wrapped at run time, time inside each (a phase
#: nested in another is subtracted from it, so the phases add up to the whole).
PROFILE = """
import functools, tempfile, warnings
from collections import defaultdict
import cpdimpact.cohort._build as build
import cpdimpact.cohort._flow as flow
import cpdimpact.evaluation.result as result_module
import cpdimpact.evaluation.spec as spec
import cpdimpact.evaluation.stages as stages
import cpdimpact.records as records
import cpdimpact.report.publish as publish
import cpdimpact.report._document as document
from cpdimpact import Evaluation
from cpdimpact.cohort import CohortSpec
from cpdimpact.datasets import hub_rollout

totals = defaultdict(float)
stack = []

def wrap(owner, name, label):
    original = getattr(owner, name)
    @functools.wraps(original)
    def timed(*args, **kwargs):
        key = label(args, kwargs) if callable(label) else label
        stack.append(0.0)
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent = time.perf_counter() - t0
            inner = stack.pop()
            totals[key] += spent - inner
            if stack:
                stack[-1] += spent
    setattr(owner, name, timed)

wrap(records.Records, "validate", "records validation")
wrap(records.Records, "fingerprint", "records fingerprint (results.json)")
wrap(build.CohortSpec, "build", "cohort build (without validation)")
wrap(build, "balance_table", "cohort: balance tables")
wrap(build, "unit_year_means", "unit-year means (cohort and each subgroup)")
wrap(stages, "unit_year_means", "unit-year means (cohort and each subgroup)")
wrap(build, "analysis_columns", "cohort: analysis columns and standardisation")
wrap(build.Cohort, "arms", "arm counts (each group)")
wrap(flow.FlowRecorder, "_counts", "cohort: flow log counts (schools, teachers)")
wrap(stages, "prior_band_masks", "prior-attainment bands (rank of prior)")
wrap(result_module, "effect_size_variants", "effect-size variants (SD components; for results.json and the report)")
wrap(stages, "fit_group", lambda a, k: f"fit: {{a[1]}}")
wrap(stages, "breakdown", "subgroup and band selection (breakdown)")
wrap(stages, "effect_size", "effect sizes")
wrap(stages, "fit_event_study", "event study (TWFE)")
wrap(stages, "staggered_detail", "staggered aggregates + TWFE comparison")
wrap(spec, "evaluate", "run: other")
wrap(publish, "evaluation_report", "save: report content (tables, figures drawn)")
wrap(document.Document, "save", "save: render figures, write HTML/Markdown")
wrap(publish, "results_json", "save: results.json")
wrap(publish, "save", "save: other")

r = hub_rollout(seed=1, scale={scale})
t0 = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    result = Evaluation(cohort=CohortSpec(comparison="staggered")).run(r)
    result.save(tempfile.mkdtemp())
elapsed = time.perf_counter() - t0
value = result.headline["estimate"].iloc[0]
extra = {{"phases": dict(totals)}}
"""

RUNNER = """
import json, resource, time
from pathlib import Path
{body}
print(json.dumps({{"seconds": elapsed, "value": float(value), "extra": extra,
                   "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def run_case(python: str, body: str, *, timeout: float, src: str | None = None) -> dict:
    """Run one case in a fresh process (importing cpdimpact from ``src`` if given); its
    result, or ``{"error": ...}``."""
    code = RUNNER.format(body=textwrap.dedent(body))
    env = dict(os.environ, MPLBACKEND="Agg")
    if src:
        env["PYTHONPATH"] = src
    try:
        out = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timeout ({timeout:.0f} s)"}
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def peer_available(python: str | None) -> str:
    """``""`` if ``python`` can import pyfixest, else why not."""
    if not python:
        return "no --peer-python given"
    if not Path(python).exists():
        return f"{python} does not exist (create it: python3.11 -m venv /tmp/peer-scale; "
        "/tmp/peer-scale/bin/pip install pyfixest)"
    check = subprocess.run([python, "-c", "import pyfixest"], capture_output=True, text=True)
    if check.returncode != 0:
        return f"{python} cannot import pyfixest ({python} -m pip install pyfixest)"
    return ""


def versions(python: str) -> str:
    code = (
        "import sys, numpy, pandas; v = {'python': sys.version.split()[0], "
        "'numpy': numpy.__version__, 'pandas': pandas.__version__}\n"
        "for m in ('cpdimpact', 'pyfixest', 'pyarrow'):\n"
        "    try: v[m] = __import__(m).__version__\n"
        "    except ImportError: pass\n"
        "print(v)"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return out.stdout.strip() or out.stderr.strip()


def show(label: str, r: dict, floor: float | None = None) -> None:
    if "error" in r:
        print(f"| {label} | {r['error']} | | | |")
        return
    ratio = f"{r['seconds'] / floor:.2f}" if floor else "—"
    print(f"| {label} | {r['seconds']:.2f} | {ratio} | {r['peak_mb']:.0f} | {r['value']:.6g} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=4.0, help="hub_rollout scale (4: 7.3M)")
    parser.add_argument("--rounds", type=int, default=2, help="paired rounds (alternate order)")
    parser.add_argument("--peer-python", default="/tmp/peer-scale/bin/python")
    parser.add_argument("--skip-io", action="store_true", help="skip the CSV/Parquet cases")
    parser.add_argument("--skip-evaluation", action="store_true")
    parser.add_argument("--profile", action="store_true", help="also print the phase profile")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument(
        "--compare-src",
        default=None,
        help="another cpdimpact source folder (e.g. main's src, from git archive): its "
        "staggered evaluation joins every round, for before/after figures in one run",
    )
    args = parser.parse_args(argv)
    python = sys.executable
    missing = peer_available(args.peer_python)
    print(f"load average before: {os.getloadavg()}; {platform.platform()}; {os.cpu_count()} CPUs")
    print(f"cpdimpact side: {versions(python)}")
    if not missing:
        print(f"peer side: {versions(args.peer_python)}")
    else:
        print(f"pyfixest case skipped: {missing}")

    with tempfile.TemporaryDirectory(prefix="bench_national_") as folder:
        prep = run_case(python, PREPARE.format(scale=args.scale, folder=folder), timeout=3600)
        if "error" in prep:
            sys.exit(f"preparing the data failed: {prep['error']}")
        print(
            f"records: {prep['value']:.0f} pupil rows; staggered cohort: "
            f"{prep['extra']['cohort_rows']} rows"
        )
        specs = {
            "Evaluation() defaults, run + save": "Evaluation()",
            STAGGERED: "Evaluation(cohort=CohortSpec(comparison='staggered'))",
        }
        cases = (
            {}
            if args.skip_evaluation
            else {
                name: EVALUATION.format(scale=args.scale, spec=spec) for name, spec in specs.items()
            }
        )
        baseline = "the same, cpdimpact from --compare-src"
        if args.compare_src and not args.skip_evaluation:
            cases[baseline] = EVALUATION.format(scale=args.scale, spec=specs[STAGGERED])
        peer = "pyfixest feols outcome ~ exposed | school + year, CRV1 school"
        if not missing:
            cases[peer] = PYFIXEST.format(folder=folder)
        rounds: list[dict[str, dict]] = []
        for k in range(args.rounds):
            order = list(cases) if k % 2 == 0 else list(reversed(cases))
            results = {}
            for name in order:
                interpreter = args.peer_python if name == peer else python
                src = args.compare_src if name == baseline else None
                results[name] = run_case(interpreter, cases[name], timeout=args.timeout, src=src)
                print(f"  round {k + 1}: {name}: {results[name]}", flush=True)
            rounds.append(results)

        print(f"\n### Evaluation against one regression ({args.rounds} paired rounds)\n")
        print(
            "| case | seconds (median) | ratio to pyfixest (median of rounds) | peak MB (max) "
            "| estimate |"
        )
        print("|---|---:|---:|---:|---:|")
        for name in cases:
            done = [r[name] for r in rounds if "error" not in r[name]]
            if not done:
                print(f"| {name} | {rounds[0][name]['error']} | | | |")
                continue
            ratios = [
                r[name]["seconds"] / r[peer]["seconds"]
                for r in rounds
                if peer in r and "error" not in r[name] and "error" not in r[peer]
            ]
            ratio = f"{statistics.median(ratios):.2f}" if ratios else "—"
            seconds = statistics.median(d["seconds"] for d in done)
            split = ""
            if "warm_s" in done[0]["extra"]:
                split = f" (a second fit in the same process: {done[0]['extra']['warm_s']:.1f} s)"
            if "run_s" in done[0]["extra"]:
                split = (
                    f" (run {statistics.median(d['extra']['run_s'] for d in done):.1f}"
                    f" + save {statistics.median(d['extra']['save_s'] for d in done):.1f};"
                    f" {done[0]['extra']['estimator']})"
                )
            print(
                f"| {name}{split} | {seconds:.2f} | {ratio} | "
                f"{max(d['peak_mb'] for d in done):.0f} | {done[0]['value']:.6g} |"
            )

        if not args.skip_io:
            io = {"pandas read_csv of pupils.csv (the floor)": READ_CSV.format(folder=folder)}
            for source, fmt in (("csv", None), ("csv", "dfe"), ("parquet", None)):
                if source == "parquet" and not prep["extra"]["parquet"]:
                    print("Parquet cases skipped: pyarrow is not installed")
                    continue
                label = (
                    "Records.from_csv" + (f"(format={fmt!r})" if fmt else "")
                    if source == "csv"
                    else "read_parquet + Records.from_frames"
                )
                io[f"{label} + validate + staggered cohort"] = RECORDS.format(
                    folder=folder, source=source, format=fmt
                )
            io_results = {
                name: run_case(python, body, timeout=args.timeout) for name, body in io.items()
            }
            floor = io_results["pandas read_csv of pupils.csv (the floor)"].get("seconds")
            print("\n### Reading, validating and building the cohort\n")
            print("| case | seconds | ratio to pandas read_csv | peak MB | rows |")
            print("|---|---:|---:|---:|---:|")
            for name, r in io_results.items():
                if "extra" in r and "read_s" in r["extra"]:
                    name += (
                        f" (read {r['extra']['read_s']:.1f} s, validate + build "
                        f"{r['extra']['validate_build_s']:.1f} s)"
                    )
                show(name, r, floor)

    if args.profile:
        r = run_case(python, PROFILE.format(scale=args.scale), timeout=args.timeout)
        if "error" in r:
            print(f"\nprofile failed: {r['error']}")
        else:
            print(
                f"\n### Phase profile (staggered evaluation, {r['seconds']:.1f} s with the "
                f"wrappers; {r['peak_mb']:.0f} MB)\n"
            )
            print("| phase | seconds | share |")
            print("|---|---:|---:|")
            phases = sorted(r["extra"]["phases"].items(), key=lambda kv: -kv[1])
            for name, seconds in phases:
                print(f"| {name} | {seconds:.2f} | {seconds / r['seconds']:.0%} |")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
