"""How many schools do we need? The worked example of docs/planning.md.

A city programme reaches 80 schools. Before choosing a design, the evaluator asks: what is the
smallest effect each design could detect, how many schools would a trial need to detect 0.2 SD,
and what could a 9-hub pilot detect? This script prints the answers and writes the MDES curve
(MDES against the number of schools) to ``--out``:

    python examples/planning.py --out planning_out
    python examples/planning.py --schools 120 --icc 0.2 --r2 0.4 --target 0.15

Every figure comes from closed-form formulas (PowerUp!; Schochet 2022 for DiD/CITS), so it runs
in a second or two.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cpdimpact.planning import mdes, plot_mdes_curve, schools_needed


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schools", type=int, default=80, help="schools in the programme")
    parser.add_argument("--pupils", type=float, default=60, help="pupils tested per school a year")
    parser.add_argument("--icc", type=float, default=0.15, help="share of variance between schools")
    parser.add_argument(
        "--r2", type=float, default=0.5, help="variance explained by prior attainment (R-squared)"
    )
    parser.add_argument(
        "--autocorrelation",
        type=float,
        default=0.7,
        help="year-to-year correlation of a school's results (DiD)",
    )
    parser.add_argument("--target", type=float, default=0.2, help="effect to detect (pupil SD)")
    parser.add_argument("--hubs", type=int, default=9, help="hubs in the pilot")
    parser.add_argument("--hub-schools", type=int, default=20, help="schools per hub evaluated")
    parser.add_argument("--out", type=Path, default=Path("out"), help="folder for the figure")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    city = dict(pupils=args.pupils, icc=args.icc, r2_pupil=args.r2, r2_school=args.r2)

    print("1. A trial: randomise the schools, half start now and half a year later")
    trial = mdes("cra2", schools=args.schools, **city)
    print(f"   {trial.plain_words()}")
    print(f"   MDES {trial.mdes:.3f}, interval [{trial.ci_lower:.3f}, {trial.ci_upper:.3f}]")

    print(f"\n2. Schools needed for an MDES of {args.target:g} SD")
    needed = schools_needed("cra2", mdes=args.target, **city)
    print(f"   {needed.required} schools (MDES then {needed.mdes:.3f})")
    small = schools_needed("cra2", mdes=args.target / 2, **city)
    print(f"   ({small.required} schools for half that effect, {args.target / 2:g} SD)")

    print("\n3. No trial: difference-in-differences against as many comparison schools")
    did = mdes(
        "did",
        schools_treated=args.schools,
        schools_comparison=args.schools,
        pupils=args.pupils,
        years_before=3,
        years_after=3,
        icc=args.icc,
        autocorrelation=args.autocorrelation,
        r2_pupil=args.r2,
    )
    print(f"   {did.plain_words()}")

    print(f"\n4. A pilot in {args.hubs} hubs against {args.hubs} comparison areas")
    hubs = mdes(
        "cra3",
        areas=2 * args.hubs,
        schools=args.hub_schools,
        icc_area=0.03,
        r2_area=args.r2,
        **city,
    )
    print(f"   MDES {hubs.mdes:.3f} with {hubs.df:g} degrees of freedom, even if randomised")

    ax = plot_mdes_curve("cra2", schools=args.schools, target=args.target, **city)
    path = args.out / "mdes_curve.png"
    ax.figure.savefig(path, dpi=120)
    print(f"\nMDES curve written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
