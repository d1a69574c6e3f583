"""Evaluate a city-wide programme from published local-authority statistics (no pupil records).

A council runs a programme in every school of its city. Nobody outside holds pupil records, but
DfE publishes every local authority's results each year (the Local Authority Interactive Tool,
Explore Education Statistics): means and percentages with the pupils behind them, split into
disadvantaged and other pupils. This script evaluates the programme from those figures alone:

1. the figures become :class:`~cpdimpact.published.PublishedRecords` (area level);
2. the headline is synthetic difference-in-differences against the authority's statistical
   neighbours, through :class:`~cpdimpact.Evaluation`, which writes the report;
3. synthetic control (with prediction intervals), synthetic DiD and plain DiD are set side by
   side, with how well each predicts pre-programme years it was not fitted to (held-out
   pre-years), and added to the report.

With no arguments it runs on simulated statistics in the Local Authority Interactive Tool's
shape (:func:`cpdimpact.datasets.la_statistics`: 150 authorities, 2016-2024 with no KS2 tests
in 2020 and 2021, one authority's programme from September 2019) and prints the simulation's
truth. Point it at your own download:

    python examples/la_programme.py --figures la_ks2.csv --participation city.csv \\
        --neighbours statistical_neighbours.csv --measure mean \\
        --column area=la_code --column outcome=mat_average --column pupils=eligible \\
        --out my_report

``la_ks2.csv``: one row per authority, year and group (``area, year, group, outcome, pupils``;
``group`` is ``all``, ``disadvantaged`` or ``not disadvantaged``; suppressed cells may be written
``c`` or ``SUPP``). ``city.csv``: ``area, start_year`` (the first test year the programme could
affect: September 2019 -> 2020). ``statistical_neighbours.csv``: ``area, neighbour`` (DfE's
statistical neighbours of each authority). Give ``--pupil-sd`` and ``--pupil-sd-source`` (a
pupil-level SD from the national statistics) for effect sizes; without them the report gives
the effect in points or percentage points and says why.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd

from cpdimpact import CohortSpec, Evaluation, PublishedRecords
from cpdimpact.comparison import (
    PredictionIntervals,
    SyntheticDiD,
    compare_synthetic,
    cross_validate_synthetic,
)
from cpdimpact.datasets import la_statistics
from cpdimpact.errors import CpdImpactWarning
from cpdimpact.report import Heading, Paragraph, Table


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--figures", type=Path, help="CSV of area figures by year and group")
    parser.add_argument("--participation", type=Path, help="CSV of area, start_year")
    parser.add_argument("--neighbours", type=Path, help="CSV of area, neighbour (the donor pool)")
    parser.add_argument(
        "--measure",
        choices=("mean", "percentage"),
        default="mean",
        help="the figures are averages ('mean') or percentages of pupils",
    )
    parser.add_argument("--outcome-label", default="", help="the outcome in words, for the report")
    parser.add_argument("--pupil-sd", type=float, help="a pupil-level SD, for effect sizes")
    parser.add_argument("--pupil-sd-source", default="", help="where --pupil-sd comes from")
    parser.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="CANONICAL=YOURS",
        help="map a cpdimpact column name to the name in your files (repeatable)",
    )
    parser.add_argument(
        "--simulated-measure",
        default="MAT_AVERAGE",
        choices=("MAT_AVERAGE", "READ_AVERAGE", "PTRWM_EXP"),
        help="which simulated measure to evaluate (without --figures)",
    )
    parser.add_argument("--seed", type=int, default=2019, help="seed of the simulated data")
    parser.add_argument("--out", type=Path, default=Path("out_la"), help="output folder")
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
    """The published figures, the donor pool (or ``None``), the cohort spec and, for
    simulated data, the simulation (with its truth)."""
    if args.figures is None:
        stats = la_statistics(seed=args.seed)
        measure = args.simulated_measure
        truth = stats.truth
        records = PublishedRecords.from_frames(
            figures=stats.figures[measure],
            participation=stats.participation,
            measure="percentage" if measure.startswith("PT") else "mean",
            outcome_label={
                "MAT_AVERAGE": "the average scaled score in maths",
                "READ_AVERAGE": "the average scaled score in reading",
                "PTRWM_EXP": "the percentage reaching the expected standard in reading, "
                "writing and maths",
            }[measure],
            source="simulated local-authority statistics (cpdimpact.datasets.la_statistics)",
        )
        neighbours = stats.neighbours[["area", "neighbour"]]
        sd = truth.pupil_sd.get(measure)
        cohort = (
            CohortSpec(pupil_sd=sd, pupil_sd_source="the simulation's pupil-level SD")
            if sd is not None
            else CohortSpec()
        )
        return records, neighbours, cohort, (stats, measure)
    if args.participation is None:
        sys.exit("give --participation with --figures")
    columns = _columns(args.column)
    records = PublishedRecords.from_csv(
        figures=args.figures,
        participation=args.participation,
        columns=columns,
        measure=args.measure,
        outcome_label=args.outcome_label,
    )
    neighbours = None
    if args.neighbours is not None:
        neighbours = pd.read_csv(args.neighbours).rename(
            columns={yours: canonical for canonical, yours in columns.items()}
        )[["area", "neighbour"]]
    cohort = CohortSpec()
    if args.pupil_sd is not None:
        cohort = CohortSpec(pupil_sd=args.pupil_sd, pupil_sd_source=args.pupil_sd_source)
    return records, neighbours, cohort, None


def donor_pool(neighbours: pd.DataFrame | None, treated) -> tuple | None:
    """The treated authority's statistical neighbours as ``(treated, donor)`` pairs."""
    if neighbours is None:
        return None
    rows = neighbours[neighbours["area"].isin(treated)]
    return tuple(zip(rows["area"], rows["neighbour"], strict=True))


def side_by_side(result, pool, seed: int) -> list:
    """Synthetic control, synthetic DiD and DiD on the same area figures and donors, and how
    well each predicts held-out pre-programme years, as report blocks."""
    panel = result.cohort.unit_years[["unit", "year", "outcome", "exposed"]].assign(
        exposed=lambda f: f["exposed"].astype(int)
    )
    options = dict(unit="unit", treatment="exposed", donor_pool=pool)
    comparison = compare_synthetic(panel, prediction=PredictionIntervals(seed=seed), **options)
    checks = cross_validate_synthetic(panel, holdout=1, **options)
    sc = comparison.results["sc"].prediction_intervals
    table = comparison.to_frame()[["term", "estimate", "std_error", "ci_lower", "ci_upper"]]
    names = {method: fit.label for method, fit in comparison.results.items()}
    level = f"{100 * (1 - result.evaluation.alpha):g}%"
    shown = pd.DataFrame(
        {
            "Method": [names.get(m, m) for m in table["term"]],
            f"Effect in {result.outcome_units} ({level} CI)": [
                f"{e:.2f} ({lo:.2f} to {hi:.2f})"
                for e, lo, hi in zip(
                    table["estimate"], table["ci_lower"], table["ci_upper"], strict=True
                )
            ],
        }
    )
    average = sc.loc["average"]
    shown["Prediction interval"] = [
        f"{average['lower']:.2f} to {average['upper']:.2f}" if m == "sc" else "—"
        for m in table["term"]
    ]
    by_year = pd.DataFrame(
        {
            "Year": [str(y).replace("average", "average of the years") for y in sc.index],
            "Effect": [f"{v:.2f}" for v in sc["effect"]],
            "Weights' uncertainty only": [
                f"{lo:.2f} to {hi:.2f}"
                for lo, hi in zip(sc["lower_in_sample"], sc["upper_in_sample"], strict=True)
            ],
            "Prediction interval": [
                f"{lo:.2f} to {hi:.2f}" for lo, hi in zip(sc["lower"], sc["upper"], strict=True)
            ],
        }
    )
    held_out = pd.DataFrame(
        {
            "Method": [names.get(m, m) for m in checks["method"]],
            "Held-out years": checks["holdout_years"],
            "Pretend effect": [f"{v:+.2f}" for v in checks["pseudo_effect"]],
            "Gap in held-out years (RMS)": [f"{v:.2f}" for v in checks["holdout_rmse"]],
            "Gap in fitted years (RMS)": [f"{v:.2f}" for v in checks["fit_rmse"]],
        }
    )
    return [
        Heading("Three comparisons side by side", level=2),
        Paragraph(
            "The same authority figures and the same comparison authorities, three ways: "
            "synthetic control (a weighted mix of authorities matching the city's results "
            "before the start), synthetic difference-in-differences (the headline) and plain "
            "difference-in-differences (every comparison authority equally). Intervals are "
            "placebo-based: each comparison authority in turn plays the city."
        ),
        Table(shown, caption="The effect by method"),
        Paragraph(
            "Prediction intervals for synthetic control (Cattaneo, Feng & Titiunik 2021, the "
            "method of scpi) allow for two sources of error: the comparison's weights are "
            "estimated from a few years (in-sample), and the city's results would have varied "
            "from year to year even without the programme (out-of-sample). Each covers the "
            "effect at least 90% of the time when the model holds; with an exact pre-period "
            "fit they show only the range of exact fits, not uncertainty."
        ),
        Table(by_year, caption="Synthetic control: the effect by year with prediction intervals"),
        Paragraph(
            "How each method predicts the last year before the programme when it is fitted "
            "without it: a pretend effect far from zero, or held-out gaps much larger than the "
            "fitted ones, mean the method would have misread a year without any programme."
        ),
        Table(held_out, caption="Held-out pre-programme years"),
    ]


def main(argv=None) -> int:
    args = parse_args(argv)
    records, neighbours, cohort, simulated = load(args)
    treated = tuple(records.participation["area"])
    pool = donor_pool(neighbours, treated)
    evaluation = Evaluation(
        cohort=cohort,
        estimator=SyntheticDiD(donor_pool=pool),
        event_study=None,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CpdImpactWarning)
        result = evaluation.run(records)
        extra = side_by_side(result, pool, args.seed)
    document = result.report()
    document = dataclasses.replace(document, blocks=(*document.blocks, *extra))
    args.out.mkdir(parents=True, exist_ok=True)
    document.save(args.out)
    (args.out / "results.json").write_text(result.to_json(), encoding="utf-8")

    print(result.summary())
    for w in dict.fromkeys(str(w.message) for w in caught):
        print(f"\nNote: {w}")
    if simulated is not None:
        stats, measure = simulated
        truth = stats.truth
        head = result.headline.iloc[0]
        covers = head["estimate_lower"] <= truth.att[measure] <= head["estimate_upper"]
        print(
            f"\nSimulated truth for {truth.treated_area}: {truth.att[measure]:.3f} "
            f"{result.outcome_units} (the estimate {head['estimate']:.3f}; its interval "
            f"{'covers' if covers else 'misses'} it)."
        )
    print(f"\nReport written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
