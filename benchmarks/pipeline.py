"""Benchmark the evaluation spine: cohort construction, DiD and the whole pipeline.

Each case runs in a fresh subprocess so peak memory (ru_maxrss) belongs to that case alone.
The peer for the DiD is statsmodels OLS with school and year dummies and cluster-robust
standard errors, fitted on the same pupil records (it must agree on the estimate).

    .venv/bin/python benchmarks/pipeline.py            # prints a Markdown table
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

CASES = {
    "simulate city_partnership (47k pupil records)": """
        from cpdimpact.datasets import city_partnership
        t0 = time.perf_counter(); r = city_partnership(seed=1); elapsed = time.perf_counter() - t0
        value = len(r.pupils)
    """,
    "cohort build, city_partnership": """
        from cpdimpact.datasets import city_partnership
        from cpdimpact.cohort import CohortSpec
        r = city_partnership(seed=1)
        t0 = time.perf_counter(); c = CohortSpec().build(r); elapsed = time.perf_counter() - t0
        value = len(c.pupils)
    """,
    "cpdimpact DiD, city_partnership pupil records": """
        from cpdimpact.datasets import city_partnership
        from cpdimpact.cohort import CohortSpec
        from cpdimpact.did import DiD
        c = CohortSpec().build(city_partnership(seed=1))
        t0 = time.perf_counter(); res = DiD(covariates=("prior",)).fit(c.pupils)
        elapsed = time.perf_counter() - t0
        value = res.estimate
    """,
    "statsmodels OLS + dummies, same data": """
        import statsmodels.formula.api as smf
        from cpdimpact.datasets import city_partnership
        from cpdimpact.cohort import CohortSpec
        c = CohortSpec().build(city_partnership(seed=1))
        d = c.pupils.assign(exposed=c.pupils["exposed"].astype(float))
        t0 = time.perf_counter()
        fit = smf.ols("outcome ~ exposed + prior + C(school) + C(year)", data=d).fit(
            cov_type="cluster", cov_kwds={"groups": d["school"]})
        elapsed = time.perf_counter() - t0
        value = float(fit.params["exposed"])
    """,
    "whole pipeline + report, city_partnership": """
        import tempfile
        from cpdimpact import DiD, Evaluation, EventStudy
        from cpdimpact.datasets import city_partnership
        r = city_partnership(seed=1)
        t0 = time.perf_counter()
        res = Evaluation(estimator=DiD(covariates=("prior",)),
                         event_study=EventStudy(covariates=("prior",))).run(r)
        res.save(tempfile.mkdtemp())
        elapsed = time.perf_counter() - t0
        value = res.effect_size.estimate
    """,
    "cohort + DiD, hub_rollout (1.8M pupil records, 9 pilot areas)": """
        import warnings
        from cpdimpact.datasets import hub_rollout
        from cpdimpact.cohort import CohortSpec
        from cpdimpact.did import DiD
        warnings.simplefilter("ignore")
        r = hub_rollout(seed=1)
        t0 = time.perf_counter()
        c = CohortSpec(comparison="not_yet_treated").build(r)
        res = DiD(cluster="area").fit(c.pupils)
        elapsed = time.perf_counter() - t0
        value = res.estimate
    """,
}

RUNNER = """
import json, resource, time
{body}
print(json.dumps({{"seconds": elapsed, "value": float(value),
                   "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def run(body: str) -> dict:
    code = RUNNER.format(body=textwrap.dedent(body))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    results = {name: run(body) for name, body in CASES.items()}
    peer = results["statsmodels OLS + dummies, same data"]["seconds"]
    print("| case | seconds | ratio to statsmodels DiD | peak MB | value |")
    print("|---|---:|---:|---:|---:|")
    for name, r in results.items():
        ratio = r["seconds"] / peer
        print(
            f"| {name} | {r['seconds']:.3f} | {ratio:.2f} | {r['peak_mb']:.0f} | {r['value']:.6g} |"
        )


if __name__ == "__main__":
    main()
