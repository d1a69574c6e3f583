"""Command line: evaluate a programme from a spec file, or try the simulated data.

commands:
  cpdimpact run evaluation.toml   run the evaluation a TOML spec describes; write the report
  cpdimpact init [FILE]           write a starter spec (stdout without FILE) that runs as is
  cpdimpact demo --out out        evaluate the simulated city partnership
  cpdimpact simulate PRESET --out data
                                  write a simulated preset's tables as CSV (and truth.json)

exit codes:
  0  success
  1  unexpected internal error (please report it)
  2  usage or spec error: bad arguments, or a spec file that is unreadable, has an unknown key,
     a wrong type or an invalid value (the message names the file, line, table and key)
  3  data error: a CSV file cannot be read, or the records fail validation or cannot support
     the design (missing columns, invalid values, no comparison group, ...)
  4  estimation error: a model could not be fitted
  5  the report folder cannot be written

The same spec and data always give byte-identical results.json and report.md. See docs/cli.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from pathlib import Path

#: Exit codes (documented in ``cpdimpact --help`` and docs/cli.md).
EXIT_OK, EXIT_INTERNAL, EXIT_SPEC, EXIT_DATA, EXIT_ESTIMATION, EXIT_OUTPUT = range(6)


def _demo(args: argparse.Namespace) -> int:
    from .datasets import city_partnership
    from .did import DiD, EventStudy
    from .evaluation import Evaluation, ReportOptions

    records = city_partnership(seed=args.seed, scale=args.scale)
    evaluation = Evaluation(
        estimator=DiD(covariates=("prior",)),
        event_study=EventStudy(covariates=("prior",)),
        seed=args.seed,
        report=ReportOptions(title="City CPD partnership (simulated data)"),
    )
    with _plain_warnings():
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


def _error(message: str, code: int) -> int:
    print(f"cpdimpact: error: {message}", file=sys.stderr)
    return code


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"cpdimpact: warning ({category.__name__}): {message}", file=sys.stderr)


@contextlib.contextmanager
def _plain_warnings():
    """Print warnings as plain text, without a source line (an evaluation issues each distinct
    warning once)."""
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        yield


def _run(args: argparse.Namespace) -> int:
    from .errors import CpdImpactError, DataError, DesignError, EstimationError
    from .estimator import with_seed
    from .spec_file import DataFileError, SpecError, load_spec

    try:
        spec = load_spec(args.spec)
    except DataFileError as err:
        return _error(str(err), EXIT_DATA)
    except SpecError as err:
        return _error(str(err), EXIT_SPEC)
    if args.check:
        print(f"{args.spec}: spec is valid")
        return EXIT_OK
    evaluation = spec.evaluation
    draws = evaluation.estimator is not None and (
        getattr(evaluation.estimator, "n_bootstrap", 0)
        or with_seed(evaluation.estimator, 0) is not evaluation.estimator  # e.g. WildBootstrap
    )
    if evaluation.seed is None and draws:
        print(
            "cpdimpact: note: no seed given; bootstrap results will differ between runs "
            "(set [evaluation] seed)",
            file=sys.stderr,
        )
    with _plain_warnings():
        try:
            records = spec.load_records()
        except (OSError, ValueError) as err:  # pandas parser errors are ValueErrors
            return _error(f"{args.spec}: [data]: cannot read the records: {err}", EXIT_DATA)
        try:
            result = evaluation.run(records)
        except EstimationError as err:
            return _error(f"estimation failed: {err}", EXIT_ESTIMATION)
        except (DataError, DesignError, CpdImpactError) as err:
            return _error(f"the records do not support this evaluation: {err}", EXIT_DATA)
        out = args.out if args.out is not None else spec.output
        try:
            paths = result.save(out)
        except OSError as err:
            return _error(f"cannot write the report to {out}: {err}", EXIT_OUTPUT)
    if not args.quiet:
        print(result.summary())
        print()
    for name in ("report.html", "report.md", "report.docx", "results.json"):
        if name in paths:
            print(f"{name}: {paths[name]}")
    return EXIT_OK


def _init(args: argparse.Namespace) -> int:
    from .spec_file import EXAMPLE_SPEC

    if args.file is None:
        sys.stdout.write(EXAMPLE_SPEC)
        return EXIT_OK
    if args.file.exists() and not args.force:
        return _error(f"{args.file} exists; pass --force to overwrite it", EXIT_SPEC)
    try:
        args.file.write_text(EXAMPLE_SPEC, encoding="utf-8")
    except OSError as err:
        return _error(f"cannot write {args.file}: {err}", EXIT_OUTPUT)
    print(f"wrote {args.file}; run it with: cpdimpact run {args.file}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from .datasets import PRESETS

    description, epilog = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(
        prog="cpdimpact",
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="run the evaluation a TOML spec describes and write the report folder",
        description="Run the evaluation described by a TOML spec file (see docs/cli.md; "
        "`cpdimpact init` writes a starter) and write report.html, report.md, report.docx, "
        "results.json and the figures to its [output] dir. Exit codes: 0 success, 2 spec error, 3 data "
        "error, 4 estimation error, 5 output not writable.",
    )
    run.add_argument("spec", type=Path, help="the spec file, e.g. evaluation.toml")
    run.add_argument(
        "--out", type=Path, default=None, help="report folder (overrides [output] dir)"
    )
    run.add_argument("--check", action="store_true", help="validate the spec only; run nothing")
    run.add_argument("--quiet", action="store_true", help="print only the written paths")
    run.set_defaults(run=_run)

    init = commands.add_parser(
        "init", help="write a starter spec that runs on simulated data (stdout without FILE)"
    )
    init.add_argument("file", type=Path, nargs="?", default=None)
    init.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    init.set_defaults(run=_init)

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
