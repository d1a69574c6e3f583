"""Did the city partnership raise the percentage of pupils reaching the expected standard?

KS2 results are judged as much by the share of pupils reaching the expected standard (a scaled
score of 100 or more) as by the mean score. This script evaluates a pass/fail outcome end to
end and writes the report:

1. the pupil records with a 0/1 outcome (reached the standard or not); the cohort holds it as
   0 or 100, so every effect is in percentage points;
2. the headline difference-in-differences (a linear probability model) for all pupils and for
   pupils eligible for free school meals (FSM), with the change in the FSM gap, each also as an
   odds ratio and as an effect size by Cox's method;
3. a logistic multilevel model (pupils in schools, as lme4's ``glmer``) of the programme years,
   giving the odds ratio adjusted for prior attainment and the marginal percentage-point
   difference, added to the report beside the headline.

With no arguments it runs on the simulated city partnership
(:func:`cpdimpact.datasets.city_partnership`, scores turned into pass/fail at 100 by
:meth:`~cpdimpact.datasets.SimulatedRecords.with_pass_mark`) and prints the simulation's truth
in percentage points. Point it at your own files, with the outcome a 0/1 column:

    python examples/expected_standard.py --pupils ks2.csv --participation enrolments.csv \\
        --column outcome=maths_expected --column school=URN --out my_report
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd

from cpdimpact import CohortSpec, Evaluation, Records, ReportOptions
from cpdimpact.datasets import city_partnership
from cpdimpact.effects import marginal_difference
from cpdimpact.errors import CpdImpactError, CpdImpactWarning
from cpdimpact.multilevel import MultilevelModel
from cpdimpact.report import Heading, Paragraph, Table


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pupils", type=Path, help="CSV of pupil records with a 0/1 outcome")
    parser.add_argument("--participation", type=Path, help="CSV of programme enrolments")
    parser.add_argument("--schools", type=Path, help="CSV of school characteristics (optional)")
    parser.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="NAME=YOURS",
        help="map a cpdimpact column name to yours (repeatable), e.g. outcome=maths_expected",
    )
    parser.add_argument("--format", choices=("plain", "dfe"), default="plain")
    parser.add_argument("--out", type=Path, default=Path("out_expected"), help="report folder")
    parser.add_argument("--seed", type=int, default=2024, help="seed for the simulated data")
    parser.add_argument("--scale", type=float, default=0.5, help="size of the simulated city")
    parser.add_argument("--pass-mark", type=float, default=100.0, help="simulated pass mark")
    return parser.parse_args(argv)


def load(args: argparse.Namespace) -> Records:
    if args.pupils is None and args.participation is None:
        return city_partnership(seed=args.seed, scale=args.scale).with_pass_mark(args.pass_mark)
    if args.pupils is None or args.participation is None:
        raise CpdImpactError("give both --pupils and --participation (or neither, to simulate)")
    columns = dict(item.split("=", 1) for item in args.column)
    return Records.from_csv(
        pupils=args.pupils,
        participation=args.participation,
        schools=args.schools,
        columns=columns,
        format=args.format,
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return evaluate(args)
    except CpdImpactError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def logistic_model(pupils: pd.DataFrame, alpha: float = 0.05):
    """The programme's odds ratio from a logistic multilevel model of the analysed pupils.

    A difference-in-differences on the log-odds scale: school random intercepts, a dummy per
    year, the participating schools' baseline difference (``treated``), prior attainment, and
    ``exposed`` (participating school, programme year), whose coefficient is the log odds ratio
    of passing in a programme year against the school's own trend.
    """
    years = sorted(pupils["year"].unique())[1:]
    frame = pupils.assign(
        passed=pupils["outcome"] / 100,  # the cohort holds pass/fail as 0/100
        treated=pupils["treated"].astype(float),
        exposed=pupils["exposed"].astype(float),
        **{f"y{year}": (pupils["year"] == year).astype(float) for year in years},
    )
    covariates = ("exposed", "treated", "prior", *(f"y{year}" for year in years))
    fit = MultilevelModel(
        outcome="passed", covariates=covariates, groups=("school",), family="binomial"
    ).fit(frame)
    design = frame[list(covariates)].assign(Intercept=1.0)[["Intercept", *covariates]]
    exposed = frame["exposed"] == 1
    marginal = marginal_difference(
        fit.params,
        fit.cov_params,
        design[exposed],  # the participating pupils in the programme years
        "exposed",
        variance=float(fit.variance_components["school"]),
        alpha=alpha,
    )
    return fit, marginal


def logistic_blocks(fit, marginal, alpha: float = 0.05) -> list:
    """The report section on the logistic model."""
    frame = fit.to_frame()
    row = frame.loc[frame["term"] == "exposed"].iloc[0] if "term" in frame else frame.loc["exposed"]
    level = f"{100 * (1 - alpha):g}%"
    table = pd.DataFrame(
        {
            "Measure": ["Odds ratio", "Percentage points (population-averaged)"],
            f"Estimate ({level} CI)": [
                f"{np.exp(row['estimate']):.2f} ({np.exp(row['ci_lower']):.2f} to "
                f"{np.exp(row['ci_upper']):.2f})",
                f"{100 * marginal.estimate:.2f} ({100 * marginal.ci_lower:.2f} to "
                f"{100 * marginal.ci_upper:.2f})",
            ],
        }
    )
    return [
        Heading("The same question on the log-odds scale", level=3),
        Paragraph(
            "A logistic multilevel model (pupils in schools, fitted by maximum likelihood with "
            "the Laplace approximation, as lme4's glmer) compares the participating schools' "
            "odds of a pupil passing in the programme years with their own earlier years and "
            "with the comparison schools, adjusted for prior attainment. It assumes parallel "
            "trends in the log-odds of passing rather than in the percentage passing. The "
            "percentage points average, over the participating pupils in the programme years, "
            "the predicted chance of passing with the programme minus without it, integrating "
            "over schools."
        ),
        Table(table, caption="Logistic multilevel model: the programme's effect"),
    ]


def evaluate(args: argparse.Namespace) -> int:
    records = load(args)
    evaluation = Evaluation(
        cohort=CohortSpec(outcome_kind="pass_fail", covariates=("prior",)),
        report=ReportOptions(title="City partnership: pupils reaching the expected standard"),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CpdImpactWarning)
        result = evaluation.run(records)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)

    print(result.headline[["group", "estimate", "estimate_lower", "estimate_upper"]])
    print(result.percentage_effect_sizes[["group", "odds_ratio", "effect_size"]])
    truth = getattr(records, "true_effect", None)
    if truth is not None:
        print("truth (percentage points):")
        print(truth(result.cohort.pupils)[["att", "att_fsm", "percent_passing"]])
    fit, marginal = logistic_model(result.cohort.pupils, result.evaluation.alpha)
    print(fit.summary())
    print(f"marginal effect: {100 * marginal.estimate:.2f} percentage points")
    document = result.report()
    # beside the headline: after its table and notes, before the next section
    blocks = list(document.blocks)
    table = next(i for i, b in enumerate(blocks) if isinstance(b, Table))
    at = next(
        (i for i, b in enumerate(blocks[table:], table) if isinstance(b, Heading)), len(blocks)
    )
    blocks[at:at] = logistic_blocks(fit, marginal, result.evaluation.alpha)
    document = dataclasses.replace(document, blocks=tuple(blocks))
    args.out.mkdir(parents=True, exist_ok=True)
    document.save(args.out)
    (args.out / "results.json").write_text(result.to_json(), encoding="utf-8")
    print(f"report: {args.out / 'report.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
