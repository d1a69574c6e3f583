"""Evaluate a city-wide maths challenge against other local authorities (one treated area).

Every secondary school in the city takes part, so no school in the city can serve as a
comparison: the comparison is a weighted mix of other local authorities. This script compares
the city's area-by-year mean outcome with synthetic control, synthetic difference-in-differences
and plain difference-in-differences, with placebo-in-space inference (each other authority in
turn treated as if it had run the programme), and writes figures and a short table to --out.

With no arguments it runs on bundled simulated data (the ``maths_challenge`` preset: the city of
Riverton against 8 other authorities, 2017-2024, the challenge from 2021) and prints the
simulation's true effect next to the estimates. Point it at your own files:

    python examples/maths_challenge.py --area-year la_outcomes.csv --out my_results

where la_outcomes.csv has one row per area and year (area, year, outcome, treated: 1 in the
treated area's programme years), or give pupil records (--pupils, --schools with each school's
area, --participation) to have them averaged by area and year.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd

from cpdimpact import Records
from cpdimpact.comparison import (
    NonUniqueWeightsWarning,
    area_year_outcomes,
    compare_synthetic,
)
from cpdimpact.datasets import maths_challenge


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--area-year", type=Path, help="CSV of area-by-year rows (area, year, outcome, treated)"
    )
    parser.add_argument("--pupils", type=Path, help="CSV of pupil records (one row per pupil-year)")
    parser.add_argument("--schools", type=Path, help="CSV of schools with their area")
    parser.add_argument("--participation", type=Path, help="CSV of programme enrolments")
    parser.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="CANONICAL=YOURS",
        help="map a cpdimpact column name to the name in your files (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=Path("out_maths"), help="output folder")
    parser.add_argument("--seed", type=int, default=2024, help="seed for the simulated data")
    parser.add_argument("--scale", type=float, default=1.0, help="size of the simulated areas")
    return parser.parse_args(argv)


def _columns(items) -> dict[str, str]:
    columns = {}
    for item in items:
        canonical, sep, yours = item.partition("=")
        if not sep:
            sys.exit(f"--column needs CANONICAL=YOURS, got {item!r}")
        columns[canonical.strip()] = yours.strip()
    return columns


def load(args: argparse.Namespace):
    """The area-by-year rows and, for simulated data, the records (with their truth)."""
    columns = _columns(args.column)
    if args.area_year is not None:
        panel = pd.read_csv(args.area_year).rename(columns={v: k for k, v in columns.items()})
        return panel, None
    if args.pupils is None and args.schools is None and args.participation is None:
        records = maths_challenge(seed=args.seed, scale=args.scale)
        return area_year_outcomes(records), records
    if args.pupils is None or args.schools is None or args.participation is None:
        sys.exit("give --pupils, --schools and --participation together (or --area-year)")
    records = Records.from_csv(
        pupils=args.pupils,
        schools=args.schools,
        participation=args.participation,
        columns=columns,
    )
    return area_year_outcomes(records), None


def _markdown(frame: pd.DataFrame) -> str:
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in frame.values]
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    panel, records = load(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NonUniqueWeightsWarning)
        comparison = compare_synthetic(panel)
    args.out.mkdir(parents=True, exist_ok=True)

    table = comparison.to_frame()
    table.to_csv(args.out / "estimates.csv", index=False)
    shown = table[["term", "estimate", "std_error", "ci_lower", "ci_upper"]].copy()
    shown["p (placebo rank)"] = table["p_value_permutation"]
    shown["pre-period RMSE"] = table["pre_rmspe"]
    (args.out / "estimates.md").write_text(_markdown(shown))
    (args.out / "results.json").write_text(json.dumps(comparison.to_dict(), indent=2))
    comparison.unit_weights().to_csv(args.out / "unit_weights.csv")

    ax = comparison.plot()
    ax.figure.savefig(args.out / "trajectories.png", dpi=120, bbox_inches="tight")
    plt.close(ax.figure)
    for method, result in comparison.results.items():
        for kind in ("gaps", "placebo"):
            ax = result.plot(kind)
            ax.figure.savefig(args.out / f"{kind}_{method}.png", dpi=120, bbox_inches="tight")
            plt.close(ax.figure)

    print(comparison.summary())
    for w in caught:
        print(f"\nNote: {w.message}")
    if records is not None:
        truth = records.truth
        per_year = truth.by_event_time.mean()
        print(
            f"\nSimulated truth: {truth.att:.3f} points over exposed pupil-years "
            f"({per_year:.3f} averaging the {len(truth.by_event_time)} programme years "
            "equally, as the area-level estimators do)."
        )
        for method, result in comparison.results.items():
            lo, hi = result.conf_int().iloc[0]
            covers = "covers" if lo <= per_year <= hi else "misses"
            print(
                f"  {method:>4}: {result.estimate:6.3f} (error {result.estimate - per_year:+.3f};"
                f" interval {covers} it)"
            )
    print(f"\nFigures and tables written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
