"""Command line: ``cpdimpact demo`` and ``cpdimpact simulate``.

``cpdimpact demo --out out`` evaluates the simulated city partnership and writes the report;
``cpdimpact simulate city_partnership --out data`` writes a preset's four tables as CSV files
(with ``truth.json``), ready to be read back with :meth:`cpdimpact.Records.from_csv`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    from .datasets import city_partnership
    from .did import DiD, EventStudy
    from .pipeline import Evaluation, ReportOptions

    records = city_partnership(seed=args.seed, scale=args.scale)
    evaluation = Evaluation(
        estimator=DiD(covariates=("prior",)),
        event_study=EventStudy(covariates=("prior",)),
        seed=args.seed,
        report=ReportOptions(title="City CPD partnership (simulated data)"),
    )
    result = evaluation.run(records)
    paths = result.save(args.out)
    print(result.summary())
    print(f"\nReport written to {paths['report.html']}")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from .datasets import PRESETS

    records = PRESETS[args.preset](seed=args.seed, scale=args.scale)
    paths = records.to_csv(args.out)
    truth = Path(args.out) / "truth.json"
    truth.write_text(json.dumps(records.truth.to_dict(), indent=2, sort_keys=True) + "\n")
    for name, path in {**paths, "truth": truth}.items():
        print(f"{name}: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .datasets import PRESETS

    parser = argparse.ArgumentParser(prog="cpdimpact", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="evaluate the simulated city partnership")
    demo.add_argument("--out", type=Path, default=Path("out"))
    demo.add_argument("--seed", type=int, default=2024)
    demo.add_argument("--scale", type=float, default=1.0)
    demo.set_defaults(run=_demo)

    simulate = commands.add_parser("simulate", help="write a simulated preset as CSV files")
    simulate.add_argument("preset", choices=sorted(PRESETS))
    simulate.add_argument("--out", type=Path, required=True)
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--scale", type=float, default=1.0)
    simulate.set_defaults(run=_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cpdimpact`` command."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
