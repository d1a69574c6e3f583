"""Did the city partnership keep teachers and grow leaders, and at what cost per teacher kept?

The partnership's aims are to develop, support and retain the best teachers, and one strand
prepares top teachers for headship. This script evaluates both from teacher records in the
shape of the School Workforce Census, and teacher turnover from school-level workforce
statistics, and writes one report:

1. teacher records (one row per teacher per November census) with the programme's teacher and
   whole-school enrolments and strands;
2. retention: every teacher in post at the census of the programme's first year is followed
   until they leave state-funded teaching; Kaplan-Meier curves by arm give the difference in
   the share still teaching after one, two and three years, and a Cox model the hazard ratio
   of leaving, both with intervals clustered by school; the programme's cost gives the cost
   per additional teacher retained;
3. promotion: the leadership strand's participants against comparison teachers in the same
   roles, followed until a first promotion (to headship by default);
4. school turnover: each school's yearly leaving rate from school-level workforce statistics,
   compared by difference-in-differences on the school-by-year panel.

With no arguments it runs on the simulated city partnership
(:func:`cpdimpact.datasets.simulate_careers`), whose school-level statistics are computed from
the simulated records (:func:`cpdimpact.workforce.school_workforce`), and prints the
simulation's truth. Point it at your own files:

    python examples/teacher_retention.py --census swc.csv --participation enrolments.csv \\
        --column teacher=TRN --column school=URN --cost 480000 --out my_report

and add the published school-level files (Explore Education Statistics, "School workforce in
England") with ``--turnover`` (and ``--size``, ``--ratios``); without them the school-level
figures are computed from your census records.
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

from cpdimpact.comparison import EntropyBalancing
from cpdimpact.datasets import simulate_careers
from cpdimpact.did import DiD
from cpdimpact.errors import CpdImpactError, CpdImpactWarning
from cpdimpact.report import Document, Paragraph, school_turnover_section, teachers_section
from cpdimpact.survival import CoxModel, KaplanMeier
from cpdimpact.workforce import SchoolWorkforce, TeacherRecords, school_workforce, spells

#: The illustrative cost of the simulated programme, in pounds (£1,500 per teacher).
SIMULATED_COST = 600_000


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--census", type=Path, help="CSV of teacher records (teacher-by-year)")
    parser.add_argument("--participation", type=Path, help="CSV of programme enrolments")
    parser.add_argument("--schools", type=Path, help="CSV of school characteristics (optional)")
    parser.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="NAME=YOURS",
        help="map a cpdimpact column name to yours (repeatable), e.g. school=URN",
    )
    parser.add_argument("--format", choices=("dfe",), default=None)
    parser.add_argument("--turnover", type=Path, help="EES school-level teacher turnover CSV")
    parser.add_argument("--size", type=Path, help="EES school-level workforce size CSV")
    parser.add_argument("--ratios", type=Path, help="EES school-level pupil-teacher ratios CSV")
    parser.add_argument("--cost", type=float, default=None, help="programme cost in pounds")
    parser.add_argument("--strand", default="headship", help="the leadership strand's name")
    parser.add_argument(
        "--promotion-to",
        choices=("middle leader", "senior leader", "head"),
        default="head",
        help="the lowest role that counts as a promotion for the leadership strand",
    )
    parser.add_argument("--suppress-below", type=int, default=10, help="0: no suppression")
    parser.add_argument("--title", default="City partnership: teachers")
    parser.add_argument("--out", type=Path, default=Path("out_teachers"), help="report folder")
    parser.add_argument("--seed", type=int, default=2024, help="seed for the simulated data")
    parser.add_argument("--scale", type=float, default=1.0, help="size of the simulated city")
    return parser.parse_args(argv)


def load(args: argparse.Namespace):
    if args.census is None:
        if args.participation is not None:
            raise CpdImpactError("give --census with --participation (or neither, to simulate)")
        return simulate_careers("city_partnership", seed=args.seed, scale=args.scale)
    columns = dict(item.split("=", 1) for item in args.column)
    return TeacherRecords.from_csv(
        census=args.census,
        participation=args.participation,
        schools=args.schools,
        columns=columns,
        format=args.format,
    )


def workforce(args: argparse.Namespace, records) -> SchoolWorkforce:
    """The published school-level files when given, else the same figures from the records."""
    if args.turnover is None and args.size is None and args.ratios is None:
        return school_workforce(records)
    columns = dict(item.split("=", 1) for item in args.column)
    return SchoolWorkforce.from_csv(
        size=args.size,
        turnover=args.turnover,
        ratios=args.ratios,
        columns={k: v for k, v in columns.items() if k == "school"},
        source="School workforce in England, school level",
    )


def leadership_strand(promotion, strand: str):
    """The strand's participants and the comparison teachers in the roles they held at the
    start (a top teacher on a headship strand is compared with other senior leaders, not with
    newly qualified teachers)."""
    data = promotion.data
    chosen = (data["treated"] == 1) & (data["strand"] == strand)
    if not chosen.any():
        raise CpdImpactError(
            f"no participant of the strand {strand!r} is at risk of promotion; the strands are "
            f"{sorted(data['strand'].dropna().unique().tolist())}: give --strand"
        )
    roles = set(data.loc[chosen, "role"])
    like = (data["treated"] == 0) & data["role"].isin(roles)
    return dataclasses.replace(promotion, data=data[chosen | like].reset_index(drop=True))


def comparison_weights(data: pd.DataFrame) -> pd.DataFrame:
    """``data`` (one spell per teacher) with a ``weight`` column that makes the comparison
    teachers resemble the participants in what predicts leaving: experience in bands (new
    teachers and those near retirement leave most), role, and their school's FSM share
    (participating schools were chosen among the poorer ones). Entropy balancing
    (:class:`cpdimpact.comparison.EntropyBalancing`): participants keep weight 1."""
    bands = pd.cut(data["years_service"], [-1, 2, 5, 10, 20, 100], labels=False)
    table = pd.DataFrame({"teacher": data["teacher"], "treated": data["treated"]})
    for band in sorted(bands.dropna().unique())[1:]:
        table[f"service_band_{int(band)}"] = (bands == band).astype(float)
    for i, role in enumerate(sorted(data["role"].dropna().unique())[1:]):
        table[f"role_{i}"] = (data["role"] == role).astype(float)
    if "fsm_share" in data.columns and data["fsm_share"].notna().all():
        table["fsm_share"] = data["fsm_share"]
    covariates = tuple(c for c in table.columns[2:] if table[c].std() > 0)
    balance = EntropyBalancing(covariates=covariates, treatment="treated", unit="teacher")
    return balance.fit(table).attach(data, unit="teacher")


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return evaluate(args)
    except CpdImpactError as error:
        raise SystemExit(f"error: {error}") from None


def evaluate(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CpdImpactWarning)
        records = load(args)
        simulated = args.census is None
        cost = SIMULATED_COST if simulated and args.cost is None else args.cost

        # retention: leaving state-funded teaching, clustered by school (the spells' columns
        # are the estimators' defaults: duration, event, the arm treated). Teachers chose to
        # take part, in schools chosen among the poorer ones: comparison teachers are
        # weighted to resemble the participants (experience, role, school FSM)
        leaving = spells(records, outcome="teaching")
        leaving = dataclasses.replace(leaving, data=comparison_weights(leaving.data))
        km = KaplanMeier(cluster="school", weights="weight").fit(leaving.data)
        cox = CoxModel(cluster="school", weights="weight").fit(leaving.data)

        # promotion for the leadership strand
        promotion = leadership_strand(
            spells(records, outcome="promotion", promotion_to=args.promotion_to), args.strand
        )
        km_promotion = KaplanMeier(cluster="school").fit(promotion.data)

        # school turnover from school-level statistics
        panel = workforce(args, records).panel("leaving_rate", records.participation)
        did = DiD(weights="weight").fit(panel)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)

    print(km.summary())
    print(cox.summary())
    print(km_promotion.summary())
    print(did.summary())
    truth = getattr(records, "truth", None)
    if truth is not None:
        effects = truth.effects.loc["all"]
        print("Simulated truth: change in the share of participants who left teaching")
        print("(negative: fewer left; the report's retention difference is minus this)")
        print(pd.DataFrame({"left teaching": effects["left_teaching"]}))
        print("hazard ratios by strand:")
        print(truth.hazard_ratios)
        headship = truth.effects.loc[args.strand] if args.strand in truth.effects.index else None
        if headship is not None:
            print(f"{args.strand} strand, change in the share promoted to head:")
            print(headship["promoted_head"])

    blocks = [
        Paragraph(
            "The partnership set out to develop, support and keep the best teachers, and to "
            "prepare top teachers for headship. This report asks whether participating "
            "teachers stayed in teaching longer than comparison teachers, whether the "
            "headship strand's participants were promoted more often, what each additional "
            "teacher kept cost, and whether teacher turnover fell in participating schools. "
            "Teachers chose to take part, in schools chosen among the poorer ones, so the "
            "comparison teachers are weighted to resemble the participants in experience, "
            "role and their school's share of pupils eligible for free school meals "
            "(entropy balancing); differences the records do not show may remain."
        ),
        *teachers_section(
            leaving,
            km,
            cox,
            promotion=km_promotion,
            promotion_spells=promotion,
            cost=cost,
            suppress_below=args.suppress_below,
        ),
        *school_turnover_section(
            did,
            panel,
            source="computed from the teacher records"
            if args.turnover is None
            else "School workforce in England, school level",
            suppress_below=args.suppress_below,
        ),
    ]
    if simulated:
        blocks.append(
            Paragraph(
                "These are simulated records with a known programme effect, and the cost of "
                f"£{cost:,.0f} is illustrative."
            )
        )
    document = Document(title=args.title, blocks=tuple(blocks))
    args.out.mkdir(parents=True, exist_ok=True)
    document.save(args.out)
    print(f"report: {args.out / 'report.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
