"""A national roll-out: pilot hubs in 9 areas, everyone else two years later.

Every area joins in the end, so the comparison comes from areas that have not started yet, and
the programme is assigned by area: with 30 areas (9 of them pilots) inference must cluster at the
area level, where the sandwich estimator is unreliable. This example

1. estimates the group-time effects (Callaway & Sant'Anna) with not-yet-treated controls and a
   multiplier bootstrap clustered by area, and writes the report;
2. tests the overall effect with the wild cluster bootstrap (Webb weights), which holds its size
   with few area clusters where the sandwich does not;
3. compares two-way fixed effects, whose estimate mixes in forbidden comparisons (the
   Goodman-Bacon decomposition says how much), with cluster-robust and wild cluster bootstrap
   p-values.

    python examples/hub_rollout.py --out out/hub_rollout
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from pathlib import Path

from cpdimpact import CohortSpec, DiD, Evaluation
from cpdimpact.datasets import hub_rollout
from cpdimpact.did import (
    StaggeredDiD,
    bacon_decomposition,
    wild_bootstrap_aggregate,
    wild_cluster_bootstrap,
)
from cpdimpact.errors import CpdImpactWarning


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("out/hub_rollout"))
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--scale", type=float, default=0.2, help="size (1 = 7,500 schools)")
    parser.add_argument("--draws", type=int, default=999, help="bootstrap draws")
    args = parser.parse_args(argv)

    records = hub_rollout(seed=args.seed, scale=args.scale)
    cohort_spec = CohortSpec(comparison="staggered")
    staggered = StaggeredDiD(
        control_group="not_yet_treated", cluster="area", n_bootstrap=args.draws, seed=args.seed
    )
    evaluation = Evaluation(
        cohort=cohort_spec, estimator=staggered, event_study=None, seed=args.seed
    )
    with warnings.catch_warnings():
        # Each distinct warning is printed once below, in plain words; the report lists them
        # among its caveats and results.json under "warnings".
        warnings.simplefilter("ignore", CpdImpactWarning)
        result = evaluation.run(records)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    paths = result.save(args.out)
    print(result.summary())
    fit = result.groups[0].did
    print("\nEvent study (group-time effects by years since the start):")
    print(fit.aggregate("dynamic").pieces.round(3).to_string(index=False))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        wild_overall = wild_bootstrap_aggregate(fit, "simple", seed=args.seed)
    print(
        f"\nOverall effect {wild_overall.estimate:.3f} points: wild cluster bootstrap "
        f"({wild_overall.weights_type.capitalize()} weights, "
        f"{'restricted' if wild_overall.restricted else 'unrestricted'}, "
        f"{wild_overall.n_clusters} areas) p = {wild_overall.p_value:.3f}, 95% CI "
        f"{wild_overall.ci_lower:.3f} to {wild_overall.ci_upper:.3f} (cluster-robust t: p = "
        f"{wild_overall.cr_p_value:.3f})"
    )

    cohort = result.cohort
    means = cohort.unit_years
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        twfe = DiD(cluster="area", weights="n_pupils").fit(means)
        wild = wild_cluster_bootstrap(
            means, cluster="area", weights="n_pupils", weights_type="webb", seed=args.seed
        )
    print(
        f"\nTWFE for comparison: {twfe.estimate:.3f} points; cluster-robust p = "
        f"{twfe.p_value:.3f}, wild cluster bootstrap (Webb, restricted) p = "
        f"{wild.p_value:.3f} ({twfe.n_clusters} area clusters)"
    )
    # The decomposition needs a balanced panel: schools tested in every year.
    years = means["year"].nunique()
    balanced = means[means.groupby("unit")["year"].transform("size") == years]
    bacon = bacon_decomposition(balanced)
    print(
        f"Goodman-Bacon: {bacon.forbidden_weight_share:.0%} of the TWFE weight is on "
        "comparisons that use already-treated areas as controls."
    )
    # The truth of this estimand: exposed records in the group-time cells that had controls
    # (pupil-weighted, so close to but not exactly the cohort-share weighting of the estimate).
    post = fit.group_time[fit.group_time["time"] >= fit.group_time["group"]]
    cells = set(zip(post["group"], post["time"], strict=True))
    pupils = cohort.pupils
    in_cells = [
        (g, t) in cells for g, t in zip(pupils["first_treated"], pupils["year"], strict=True)
    ]
    truth = records.true_effect(pupils[in_cells])
    # The headline weights schools equally; the truth above weights pupil records. The
    # pupil-weighted estimand weights each school by its mean pupils per year, as
    # Evaluation(weighting="pupils") does.
    sizes = means.assign(size=means.groupby("unit")["n_pupils"].transform("mean"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CpdImpactWarning)
        by_pupils = dataclasses.replace(staggered, weights="size").fit(sizes)
    print(
        f"Simulated truth over the exposed records of the estimated cells: {truth['att']:.3f} "
        f"points (pupil-weighted); group-time estimate weighted by pupils {by_pupils.estimate:.3f} "
        f"(SE {by_pupils.std_error:.3f}); the headline, every school equally: "
        f"{fit.estimate:.3f} (SE {fit.std_error:.3f})."
    )
    print(f"\nReport written to {paths['report.html']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
