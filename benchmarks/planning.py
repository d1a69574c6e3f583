"""Benchmark design diagnosis: 1,000 simulations of city_partnership with StaggeredDiD.

Target: under 60 s on a 2-core machine. Each case runs in a fresh subprocess so peak memory
(ru_maxrss of the process, and of its worker processes once they have exited) belongs to that
case alone. Cases: the cost of one simulation, stage by stage (simulate, cohort, fit, truth);
then the whole diagnosis serially, on a local ProcessPoolExecutor with 2 workers, and on a Dask
LocalCluster with 1 and 2 single-threaded worker processes. Every run must give the same
diagnosands (checked).

    .venv/bin/python benchmarks/planning.py                 # prints Markdown tables
    .venv/bin/python benchmarks/planning.py --n-sims 200    # a quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

PROFILE = """
    import warnings
    import numpy as np
    from cpdimpact.cohort import CohortSpec
    from cpdimpact.datasets import city_partnership
    from cpdimpact.did import StaggeredDiD
    from cpdimpact.planning._diagnose_cohort import lean_cohort
    from cpdimpact.planning._diagnose_sim import SimDesign, SimTask, run_chunk, sim_seeds
    warnings.simplefilter("ignore")
    stages = {k: [] for k in ("simulate", "full cohort build", "lean cohort", "StaggeredDiD fit",
                              "truth (cell-weighted)", "one whole simulation (lean path)")}
    spec = StaggeredDiD(n_bootstrap=0)
    from cpdimpact import Evaluation
    task = SimTask(SimDesign("preset", "city_partnership"),
                   (("staggered", Evaluation(estimator=spec, event_study=None, subgroups=())),),
                   entropy=1)
    run_chunk(task, (99,))  # warm up imports
    for i in range(N):
        rng, _ = sim_seeds(2, i)
        t0 = time.perf_counter(); rec = city_partnership(seed=rng); t1 = time.perf_counter()
        CohortSpec().build(rec); t2 = time.perf_counter()
        lean = lean_cohort(CohortSpec(), rec); t3 = time.perf_counter()
        fit = spec.fit(lean.unit_years); fit.estimate; t4 = time.perf_counter()
        from cpdimpact.planning._diagnose_sim import _truth
        effects = rec.truth.pupil_effects.to_numpy()
        _truth(fit, spec, lean.pupils, effects[lean.pupils["pupil"].to_numpy() - 1])
        t5 = time.perf_counter(); run_chunk(task, (i,)); t6 = time.perf_counter()
        for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
            stages[key].append(dt)
    value = {k: float(np.median(v)) for k, v in stages.items()}
    elapsed = sum(value.values())
"""

RUN = """
    import warnings
    from cpdimpact.did import StaggeredDiD
    from cpdimpact.planning import diagnose
    warnings.simplefilter("ignore")
    estimators = {"staggered": StaggeredDiD(n_bootstrap=0)}
    kind = KIND
    def go(executor):
        return diagnose("city_partnership", estimators, N, seed=2026, executor=executor,
                        progress=False)
    if kind == "serial":
        t0 = time.perf_counter(); res = go("serial"); elapsed = time.perf_counter() - t0
    elif kind.startswith("pool"):
        from concurrent.futures import ProcessPoolExecutor
        t0 = time.perf_counter()
        with ProcessPoolExecutor(max_workers=int(kind[4:])) as pool:
            res = go(pool)
        elapsed = time.perf_counter() - t0
    else:
        from distributed import Client, LocalCluster
        workers = int(kind[4:])
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.run(lambda: __import__("cpdimpact.planning._diagnose_sim"))  # warm workers
            t0 = time.perf_counter(); res = go(client.get_executor())
            elapsed = time.perf_counter() - t0
    value = res.tidy().set_index("diagnosand")["staggered"].round(12).to_dict()
    value["failed"] = res.failed("staggered")
"""

HARNESS = """
import json, resource, time
N = {n}
KIND = {kind!r}
{body}
print(json.dumps({{"seconds": elapsed, "value": value,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "children_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                  / 1024}}))
"""


def run_case(body: str, n: int, kind: str = "") -> dict:
    code = HARNESS.format(n=n, kind=kind, body=textwrap.dedent(body))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-sims", type=int, default=1000)
    parser.add_argument("--profile-sims", type=int, default=20)
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()}")

    prof = run_case(PROFILE, args.profile_sims)
    print(f"\nPer-simulation cost (median of {args.profile_sims}, city_partnership default size)\n")
    print("| stage | ms |")
    print("|---|---:|")
    for stage, seconds in prof["value"].items():
        print(f"| {stage} | {1000 * seconds:.1f} |")

    rows = []
    for kind, label in (
        ("serial", "serial"),
        ("pool2", "ProcessPoolExecutor, 2 workers"),
        ("dask1", "Dask LocalCluster, 1 worker"),
        ("dask2", "Dask LocalCluster, 2 workers"),
    ):
        try:
            rows.append((label, run_case(RUN, args.n_sims, kind)))
        except RuntimeError as err:
            print(f"{label}: failed: {err}")
    print(f"\n{args.n_sims} simulations, StaggeredDiD (analytic SEs), city_partnership\n")
    print("| executor | seconds | sims per second | peak MB (main) | peak MB (workers) |")
    print("|---|---:|---:|---:|---:|")
    for label, r in rows:
        print(
            f"| {label} | {r['seconds']:.1f} | {args.n_sims / r['seconds']:.1f} | "
            f"{r['peak_mb']:.0f} | {r['children_peak_mb']:.0f} |"
        )
    times = dict((label, r["seconds"]) for label, r in rows)
    one, two = times.get("Dask LocalCluster, 1 worker"), times.get("Dask LocalCluster, 2 workers")
    if one and two:
        print(f"\nDask speed-up 1 -> 2 workers: {one / two:.2f}x")
    values = [json.dumps(r["value"], sort_keys=True) for _, r in rows]
    print(f"identical diagnosands across executors: {len(set(values)) == 1}")
    if rows:
        print("diagnosands:", json.dumps(rows[0][1]["value"]))
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
