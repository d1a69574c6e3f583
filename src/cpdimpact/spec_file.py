"""Evaluation specs in TOML files: what ``cpdimpact run evaluation.toml`` reads.

A spec file maps one-to-one onto the Python spec (:class:`~cpdimpact.evaluation.Evaluation`):

======================  ==============================================================
table                   what it holds
======================  ==============================================================
``[data]``              ``simulate`` (a preset of :mod:`cpdimpact.datasets`, with ``seed``
                        and ``scale``) **or** the CSV paths ``pupils``, ``participation``,
                        ``schools``, ``teachers``, ``links``, ``area_links`` (relative to
                        the spec file) with the reading options ``format = "dfe"``, ``encoding`` and
                        ``na_values`` (a list of markers, or a table marker = reason), as
                        :meth:`~cpdimpact.records.Records.from_csv` takes them
                        **or** published figures: ``figures`` (a CSV of school or area
                        figures, :meth:`PublishedRecords.from_csv
                        <cpdimpact.published.PublishedRecords.from_csv>`) or
                        ``performance_tables`` (a list of DfE performance-table files) with
                        ``outcome`` (the DfE measure, e.g. ``"PTRWM_EXP"``), and
                        ``participation``, optional ``schools``, ``measure``
                        (``"mean"``/``"percentage"``), ``outcome_label``, ``source``,
                        ``pupil_count`` (the DfE count column) and ``groups`` (true: keep
                        the disadvantaged split); see ``docs/published_data.md``
``[data.columns]``      canonical name = your column name (``Records.from_csv(columns=)``)
``[cohort]``            :class:`~cpdimpact.cohort.CohortSpec` fields
``[comparison]``        ``kind = "nearest" | "mahalanobis" | "cem" | "entropy"`` and that
                        :mod:`cpdimpact.comparison` spec's fields (``Evaluation.comparison``)
``[estimator]``         ``kind = "auto" | "did" | "staggered" | "multilevel_did" |
                        "synthetic_did" | "synthetic_control"`` and that spec's fields
``[event_study]``       :class:`~cpdimpact.did.EventStudy` fields (an explicit event study)
``[evaluation]``        the other :class:`~cpdimpact.evaluation.Evaluation` fields: ``level``,
                        ``subgroups``, ``gaps``, ``prior_bands``, ``alpha``, ``seed``,
                        ``weighting``, ``event_study = "auto" | "none"``
``[report]``            :class:`~cpdimpact.evaluation.ReportOptions` fields
``[report.cost]``       :class:`~cpdimpact.evaluation.ProgrammeCost` fields (the EEF cost rating)
``[report.security]``   :class:`~cpdimpact.evaluation.SecurityOptions` fields; ``threats`` is a
                        table of threat = "level [direction]"
``[output]``            ``dir``: the report folder (relative to the spec file)
======================  ==============================================================

Every table is optional except ``[data]``. A key that is unknown, of the wrong type or invalid
raises :class:`SpecError`, whose message names the file, the line, the table and the key, and
says how to fix it.

Examples
--------
>>> spec = load_spec_text('''
... [data]
... simulate = "city_partnership"
... scale = 0.2
... [estimator]
... kind = "did"
... covariates = ["prior"]
... ''')
>>> type(spec.evaluation.estimator).__name__, spec.evaluation.estimator.covariates
('DiD', ('prior',))
>>> try:
...     load_spec_text('[data]\\nsimulate = "city_partnership"\\n[cohort]\\nlagg = 1\\n')
... except SpecError as error:
...     print(str(error).split("?")[0])
evaluation.toml:4: [cohort] lagg: unknown key. Did you mean 'lag'
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CpdImpactError
from .estimator import INFERENCE_OPTIONS

__all__ = [
    "DataFileError",
    "EXAMPLE_SPEC",
    "ESTIMATOR_KINDS",
    "RunSpec",
    "SpecError",
    "load_spec",
    "load_spec_text",
]


class SpecError(CpdImpactError, ValueError):
    """A spec file that cannot be read: names the file, line, table and key, and the fix."""

    def __init__(self, message: str, *, path: str = "", line: int | None = None):
        super().__init__(message)
        self.path = path
        self.line = line


class DataFileError(SpecError):
    """A CSV file named in ``[data]`` does not exist (``cpdimpact run`` exits with 3)."""


def _estimator_kinds() -> dict[str, type | None]:
    from .comparison import SyntheticControl, SyntheticDiD
    from .did import DiD, StaggeredDiD
    from .multilevel import MultilevelDiD

    return {
        "auto": None,
        "did": DiD,
        "staggered": StaggeredDiD,
        "multilevel_did": MultilevelDiD,
        "synthetic_did": SyntheticDiD,
        "synthetic_control": SyntheticControl,
    }


#: ``[estimator] kind`` values and the spec classes they build (``"auto"``: chosen by design;
#: the synthetic comparisons for one treated area, on area figures).
ESTIMATOR_KINDS = (
    "auto",
    "did",
    "staggered",
    "multilevel_did",
    "synthetic_did",
    "synthetic_control",
)

_TABLES = (
    "data",
    "cohort",
    "comparison",
    "estimator",
    "event_study",
    "evaluation",
    "report",
    "output",
)

#: ``[comparison] kind`` -> the :mod:`cpdimpact.comparison` spec it builds.
COMPARISON_KINDS = ("nearest", "mahalanobis", "cem", "entropy")
#: ``links`` and ``area_links``: schools that changed URN and area codes that changed
#: (``Records.from_csv(links=, area_links=)``; see "Schools that change URN" in docs/records.md).
_DATA_FILES = ("pupils", "participation", "schools", "teachers", "links", "area_links")
#: [data] keys passed on to Records.from_csv as they are.
_READING = ("format", "encoding", "na_values")
#: [data] keys of published figures (cpdimpact.published.PublishedRecords), beside
#: participation and schools: the figures file or the DfE performance tables, and how to
#: read them.
_PUBLISHED = (
    "figures",
    "performance_tables",
    "outcome",
    "pupil_count",
    "groups",
    "measure",
    "outcome_label",
    "source",
)


def _reading_options(read: _Reader, data: Mapping[str, Any]) -> dict[str, Any]:
    """``format``, ``encoding`` and ``na_values`` of ``[data]``, type-checked; the values
    themselves are checked by :meth:`Records.from_csv`, whose errors name the option."""
    options: dict[str, Any] = {}
    if "format" in data:
        value = read.value(data["format"], str, ("data", "format"))
        if value != "dfe":
            raise read.error(
                ("data", "format"),
                f"unknown format {value!r}",
                'Write format = "dfe" for DfE and school MIS extracts, or remove the key',
            )
        options["format"] = value
    if "encoding" in data:
        options["encoding"] = read.value(data["encoding"], str, ("data", "encoding"))
    if "na_values" in data:
        raw = data["na_values"]
        where = ("data", "na_values")
        if isinstance(raw, Mapping):
            options["na_values"] = {
                str(k): read.value(v, str, (*where, str(k))) for k, v in raw.items()
            }
        else:
            options["na_values"] = list(read.value(raw, tuple[str, ...], where))
    return options


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """A spec file, read: where the records come from, the evaluation, and the report folder.

    Attributes
    ----------
    evaluation
        The :class:`~cpdimpact.evaluation.Evaluation`.
    simulate
        ``(preset, seed, scale)`` when the records are simulated, else ``None``.
    files
        Table name to CSV path (absolute, or relative to the working directory); ``links``
        and ``area_links`` are the links tables of :meth:`Records.from_csv
        <cpdimpact.records.Records.from_csv>`.
    columns
        Canonical column name to the user's column name.
    reading
        The reading options ``format``, ``encoding`` and ``na_values`` given in ``[data]``.
    output
        The report folder.
    published
        The ``[data]`` options of published figures (``figures`` or ``performance_tables``
        and how to read them); empty for pupil records.
    """

    evaluation: Any
    simulate: tuple[str, int, float] | None = None
    files: Mapping[str, Path] = field(default_factory=dict)
    columns: Mapping[str, str] = field(default_factory=dict)
    reading: Mapping[str, Any] = field(default_factory=dict)
    output: Path = Path("report")
    published: Mapping[str, Any] = field(default_factory=dict)

    def load_records(self):
        """Simulate or read the records (CSV errors propagate as ``OSError``/pandas errors)."""
        from .records import Records

        if self.simulate is not None:
            from .datasets import PRESETS

            preset, seed, scale = self.simulate
            return PRESETS[preset](seed=seed, scale=scale)
        if self.published:
            return self._load_published()
        return Records.from_csv(
            **self.files, columns=dict(self.columns) or None, **dict(self.reading)
        )

    def _load_published(self):
        """Published figures from a figures CSV or DfE performance tables."""
        import pandas as pd

        from .published import PublishedRecords

        options = dict(self.published)
        columns = dict(self.columns) or None
        about = {k: options[k] for k in ("measure", "outcome_label") if k in options}
        if "performance_tables" in options:
            from .dfe import read_performance_tables

            tables = read_performance_tables(options["performance_tables"])
            schools = self.files.get("schools")
            return PublishedRecords.from_performance_tables(
                tables,
                outcome=options["outcome"],
                participation=pd.read_csv(self.files["participation"], encoding="utf-8-sig"),
                pupils=options.get("pupil_count"),
                groups=options.get("groups", True),
                schools=None if schools is None else pd.read_csv(schools, encoding="utf-8-sig"),
                columns=columns,
                **about,
            )
        return PublishedRecords.from_csv(
            figures=options["figures"],
            participation=self.files["participation"],
            schools=self.files.get("schools"),
            columns=columns,
            source=options.get("source", ""),
            **about,
        )


# ---------------------------------------------------------------------- line numbers
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_\-]+(?:\s*\.\s*[A-Za-z0-9_\-]+)*)\s*=""")


def _split_key(text: str) -> tuple[str, ...]:
    parts = re.findall(r""""[^"]*"|'[^']*'|[^.\s]+""", text)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


class _Lines:
    """Line numbers of table headers and keys, found by scanning the text."""

    def __init__(self, text: str):
        self.lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header:
                table = _split_key(header.group(1))
                self.lines.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key:
                self.lines.setdefault((*table, *_split_key(key.group(1))), number)

    def __call__(self, *path: str) -> int | None:
        """The line of ``path``, or of its nearest enclosing table or key that was found."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


class _Reader:
    def __init__(self, text: str, name: str):
        self.name = name
        self.line = _Lines(text)

    def error(self, path: tuple[str, ...], problem: str, fix: str = "") -> SpecError:
        line = self.line(*path)
        where = f"{self.name}:{line}" if line else self.name
        table = f"[{'.'.join(path[:-1])}] " if len(path) > 1 else ""
        key = path[-1] if path else ""
        subject = f"{table}{key}".strip() if len(path) > 1 else f"[{key}]" if key else ""
        message = f"{where}: {subject}: {problem}" if subject else f"{where}: {problem}"
        if fix:
            message += f". {fix}"
        return SpecError(message, path=self.name, line=line)

    def unknown(self, path, known) -> SpecError:
        close = difflib.get_close_matches(path[-1], known, n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        return self.error(
            path, "unknown key", f"{hint}Known keys: {', '.join(known)} (or remove the line)"
        )

    def table(self, doc: Mapping, path: tuple[str, ...]) -> dict:
        value = doc
        for part in path:
            value = value.get(part, {}) if isinstance(value, Mapping) else value
        if not isinstance(value, Mapping):
            raise self.error(path, "must be a table", f"Write it as a [{'.'.join(path)}] section")
        return dict(value)

    def check_keys(self, table: Mapping, path: tuple[str, ...], known: Sequence[str]) -> None:
        for key in table:
            if key not in known:
                raise self.unknown((*path, key), list(known))

    # ------------------------------------------------------------------ values
    def value(self, value, tp, path: tuple[str, ...]):
        try:
            return _convert(value, tp)
        except _Mismatch as err:
            raise self.error(
                path,
                f"expected {_describe(tp)}, got {_toml_repr(value)}",
                err.fix or f"Write e.g. {path[-1]} = {_example(tp)}",
            ) from None

    def spec(self, cls, table: Mapping, path: tuple[str, ...], skip=(), extra=None):
        """Build the dataclass ``cls`` from ``table`` (keys checked, values typed)."""
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in skip]
        old = list(getattr(cls, "deprecated_options", {}))  # old spellings: the spec warns
        self.check_keys(table, path, [*names, *old, *(extra or ())])
        kwargs = {
            name: self.value(table[name], hints[name], (*path, name))
            for name in names
            if name in table and name != "inference"
        }
        if "inference" in table and "inference" in names:
            kwargs["inference"] = self.inference(table["inference"], (*path, "inference"))
        kwargs.update({name: table[name] for name in old if name in table})
        return self.construct(cls, kwargs, path)

    def inference(self, value, path: tuple[str, ...]):
        """An ``inference`` option from a table ``{ type = "ClusterRobust", kind = "CR2" }``."""
        options = {t.__name__: t for t in INFERENCE_OPTIONS}
        if not isinstance(value, dict) or value.get("type") not in options:
            raise self.error(
                path,
                f"expected a table naming the inference, got {_toml_repr(value)}",
                'Write for example inference = { type = "ClusterRobust", kind = "CR2" }; types: '
                + ", ".join(options),
            )
        fields = {k: v for k, v in value.items() if k != "type"}
        return self.spec(options[value["type"]], fields, path)

    def construct(self, cls, kwargs: dict, path: tuple[str, ...]):
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as err:
            message = str(err)
            named = [k for k in kwargs if re.search(rf"\b{re.escape(k)}\b", message)]
            where = (*path, named[0]) if named else path
            raise self.error(where, f"invalid value: {message}", "Change the value") from None


class _Mismatch(Exception):
    def __init__(self, fix: str = ""):
        self.fix = fix


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _convert(value, tp):
    """``value`` (as parsed from TOML) converted to the annotation ``tp``, or ``_Mismatch``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        for arm in args:
            if arm is type(None):
                continue
            try:
                return _convert(value, arm)
            except _Mismatch:
                pass
        raise _Mismatch()
    if origin is typing.Literal:
        if value in args and isinstance(value, str):
            return value
        raise _Mismatch("Use one of these values")
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch()
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch()
    if tp is int:
        if _is_int(value):
            return value
        raise _Mismatch()
    if tp is float:
        if _is_int(value) or isinstance(value, float):
            return float(value)
        raise _Mismatch()
    if origin in (tuple, Sequence) or tp in (tuple, Sequence):
        if not isinstance(value, list):
            raise _Mismatch()
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise _Mismatch()
            return tuple(_convert(v, a) for v, a in zip(value, args, strict=True))
        item = args[0] if args else str
        return tuple(_convert(v, item) for v in value)
    if origin is Mapping:
        if not isinstance(value, Mapping):
            raise _Mismatch()
        key_type, value_type = args
        out = {}
        for key, item in value.items():
            if key_type is int:
                try:
                    key = int(key)
                except ValueError:
                    raise _Mismatch("keys must be whole numbers (years)") from None
            out[key] = _convert(item, value_type)
        return out
    raise _Mismatch()  # e.g. numpy SeedSequence: not expressible in TOML


#: Each scalar type of a spec field: how an error names it, and an example value in TOML.
_SCALARS = {
    str: ("a string", '"text"'),
    bool: ("true or false", "true"),
    int: ("a whole number", "1"),
    float: ("a number", "0.5"),
}


def _describe(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        arms = [_describe(a) for a in args if a is not type(None)]
        arms = [a for a in arms if a]
        return " or ".join(arms)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, args))
    if isinstance(tp, type) and tp in _SCALARS:
        return _SCALARS[tp][0]
    if origin in (tuple, Sequence):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"an array of {len(args)} {_describe(args[0]).removeprefix('a ')}s"
        return "an array of strings"
    if origin is Mapping:
        key, value = args
        if key is int:
            return f"a table from year to {_describe(value).removeprefix('a ')}"
        return f"a table of names to {_describe(value).removeprefix('a ')}s"
    return ""


def _example(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return _example(next(a for a in args if a is not type(None)))
    if origin is typing.Literal:
        return f'"{args[0]}"'
    if isinstance(tp, type) and tp in _SCALARS:
        return _SCALARS[tp][1]
    if origin in (tuple, Sequence):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return "[" + ", ".join(["2019"] * len(args)) + "]"
        return '["prior"]'
    if origin is Mapping:
        key, value = args
        name = '"2019"' if key is int else "contamination"
        return f"{{ {name} = {_example(value)} }}"
    return '"..."'


def _toml_repr(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_repr(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "a table"
    return str(value)


# ---------------------------------------------------------------------- reading
def load_spec(path: str | Path) -> RunSpec:
    """Read the spec file at ``path``; relative paths in it are relative to its folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SpecError(f"{path}: cannot read the spec file: {err.strerror or err}") from None
    return load_spec_text(text, name=str(path), base=path.parent)


def load_spec_text(text: str, *, name: str = "evaluation.toml", base: str | Path = ".") -> RunSpec:
    """Read a spec from TOML text; ``name`` labels error messages, ``base`` anchors paths."""
    from .did import EventStudy
    from .evaluation import Evaluation, ProgrammeCost, ReportOptions, SecurityOptions

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        match = re.search(r"line (\d+)", str(err))
        raise SpecError(
            f"{name}:{match.group(1) if match else '?'}: not valid TOML: {err}. Check the "
            "quotes, brackets and '=' on that line",
            path=name,
            line=int(match.group(1)) if match else None,
        ) from None
    read = _Reader(text, name)
    base = Path(base)
    for key in doc:
        if key not in _TABLES:
            raise read.unknown((key,), list(_TABLES))

    # [data]
    data = read.table(doc, ("data",))
    if not data:
        raise read.error(
            ("data",),
            "missing: the spec must say where the records come from",
            'Add [data] with simulate = "city_partnership", or pupils = "pupils.csv" and '
            'participation = "participation.csv"',
        )
    simulate, files, columns, reading, published = None, {}, {}, {}, {}
    if "simulate" in data:
        from .datasets import PRESETS

        for key in (*_DATA_FILES, *_READING, "columns"):
            if key in data:
                raise read.error(
                    ("data", key),
                    "applies to CSV files only, and [data] also says simulate",
                    "Remove simulate (and seed, scale) to read your CSV files, or remove this",
                )
        read.check_keys(data, ("data",), ["simulate", "seed", "scale"])
        preset = read.value(data["simulate"], str, ("data", "simulate"))
        if preset not in PRESETS:
            raise read.error(
                ("data", "simulate"),
                f"unknown preset {preset!r}",
                f"Choose one of {', '.join(map(repr, sorted(PRESETS)))}",
            )
        seed = read.value(data.get("seed", 0), int, ("data", "seed"))
        scale = read.value(data.get("scale", 1.0), float, ("data", "scale"))
        if not scale > 0:
            raise read.error(("data", "scale"), f"must be positive, got {scale}", "E.g. 0.5")
        simulate = (preset, seed, scale)
    elif "figures" in data or "performance_tables" in data:
        published = _published_options(read, data, base)
        for table in ("participation", "schools"):
            if table in data:
                files[table] = _data_file(read, data, table, base)
        if "participation" not in files:
            raise read.error(
                ("data",),
                "participation is missing",
                'Add participation = "participation.csv": the schools (or areas) that took '
                "part and their start_year",
            )
        columns = _column_map(read, doc)
    else:
        read.check_keys(data, ("data",), [*_DATA_FILES, *_READING, "columns", "simulate"])
        reading = _reading_options(read, data)
        for table in ("pupils", "participation"):
            if table not in data:
                raise read.error(
                    ("data",),
                    f"{table} is missing",
                    f'Add {table} = "{table}.csv" (a CSV path relative to the spec file), or '
                    'use simulate = "city_partnership" for simulated records',
                )
        for table in _DATA_FILES:
            if table in data:
                files[table] = _data_file(read, data, table, base)
        columns = _column_map(read, doc)

    # [cohort]
    from .cohort import CohortSpec

    cohort = read.spec(CohortSpec, read.table(doc, ("cohort",)), ("cohort",))

    # [evaluation]
    settings = read.table(doc, ("evaluation",))
    read.check_keys(
        settings,
        ("evaluation",),
        ["level", "subgroups", "gaps", "prior_bands", "alpha", "seed", "event_study", "weighting"],
    )
    hints = typing.get_type_hints(Evaluation, localns={"MultilevelDiD": object})
    kwargs: dict[str, Any] = {
        key: read.value(settings[key], hints[key], ("evaluation", key))
        for key in ("level", "subgroups", "gaps", "prior_bands", "alpha", "seed", "weighting")
        if key in settings
    }
    seed = kwargs.get("seed")

    # [estimator]
    kinds = _estimator_kinds()
    table = read.table(doc, ("estimator",))
    kind = read.value(table.pop("kind", "auto"), str, ("estimator", "kind"))
    if kind not in kinds:
        raise read.error(
            ("estimator", "kind"),
            f"unknown estimator {kind!r}",
            f"Choose one of {', '.join(map(repr, ESTIMATOR_KINDS))}",
        )
    if kind == "auto":
        read.check_keys(table, ("estimator",), ["kind"])
        kwargs["estimator"] = None
    else:
        cls = kinds[kind]
        skip = ("seed",) if kind == "staggered" else ()
        estimator_kwargs = {}
        if kind == "staggered":
            # Bootstrap seed: its own, else the evaluation's (so a rerun gives the same report).
            hints_est = typing.get_type_hints(cls)
            names = [f.name for f in dataclasses.fields(cls) if f.init]
            read.check_keys(table, ("estimator",), [*names, "kind"])
            estimator_kwargs = {
                name: read.value(table[name], hints_est[name], ("estimator", name))
                for name in names
                if name in table and name != "seed"
            }
            estimator_kwargs["seed"] = (
                read.value(table["seed"], int, ("estimator", "seed")) if "seed" in table else seed
            )
            kwargs["estimator"] = read.construct(cls, estimator_kwargs, ("estimator",))
        else:
            kwargs["estimator"] = read.spec(cls, table, ("estimator",), skip, extra=["kind"])

    # [event_study]
    choice = settings.get("event_study", "auto")
    if choice not in ("auto", "none"):
        raise read.error(
            ("evaluation", "event_study"),
            f"expected 'auto' or 'none', got {_toml_repr(choice)}",
            "For your own event study, write an [event_study] table with EventStudy fields",
        )
    event_table = read.table(doc, ("event_study",))
    if "event_study" in doc:
        if choice == "none":
            raise read.error(
                ("evaluation", "event_study"),
                '"none" contradicts the [event_study] table',
                "Remove one of them",
            )
        kwargs["event_study"] = read.spec(EventStudy, event_table, ("event_study",))
    else:
        kwargs["event_study"] = None if choice == "none" else "auto"

    # [comparison]
    if "comparison" in doc:
        from . import comparison as comparison_module

        classes = dict(
            zip(
                COMPARISON_KINDS,
                (
                    comparison_module.NearestMatching,
                    comparison_module.MahalanobisMatching,
                    comparison_module.CoarsenedExactMatching,
                    comparison_module.EntropyBalancing,
                ),
                strict=True,
            )
        )
        table = read.table(doc, ("comparison",))
        kind = read.value(table.pop("kind", ""), str, ("comparison", "kind"))
        if kind not in classes:
            raise read.error(
                ("comparison", "kind"),
                f"expected one of {', '.join(map(repr, COMPARISON_KINDS))}, got {kind!r}",
                'Write e.g. kind = "nearest" (propensity-score matching) or kind = "entropy"',
            )
        kwargs["comparison"] = read.spec(classes[kind], table, ("comparison",), extra=["kind"])

    # [report], with its sub-tables [report.cost] and [report.security]
    report_table = read.table(doc, ("report",))
    nested = {
        name: read.spec(cls, read.table(doc, ("report", name)), ("report", name))
        for name, cls in (("cost", ProgrammeCost), ("security", SecurityOptions))
        if name in report_table
    }
    report = read.spec(
        ReportOptions,
        {k: v for k, v in report_table.items() if k not in nested},
        ("report",),
        skip=("cost", "security"),
    )
    kwargs["report"] = dataclasses.replace(report, **nested)
    kwargs["cohort"] = cohort
    evaluation = read.construct(Evaluation, kwargs, ("evaluation",))

    # [output]
    output = read.table(doc, ("output",))
    read.check_keys(output, ("output",), ["dir"])
    folder = base / read.value(output.get("dir", "report"), str, ("output", "dir"))

    return RunSpec(
        evaluation=evaluation,
        simulate=simulate,
        files=files,
        columns=columns,
        reading=reading,
        output=folder,
        published=published,
    )


def _data_file(read: _Reader, data: Mapping[str, Any], key: str, base: Path) -> Path:
    """The ``[data]`` file ``key``, relative to the spec file; it must exist."""
    path = base / read.value(data[key], str, ("data", key))
    if not path.is_file():
        error = read.error(
            ("data", key),
            f"file not found: {path}",
            "Paths are relative to the spec file; check the name and folder",
        )
        raise DataFileError(str(error), path=error.path, line=error.line)
    return path


def _column_map(read: _Reader, doc: Mapping) -> dict[str, str]:
    """``[data.columns]``: canonical name -> the user's column, canonical names checked."""
    columns = {}
    raw = read.table(doc, ("data", "columns"))
    for canonical, column in raw.items():
        columns[canonical] = read.value(column, str, ("data", "columns", canonical))
    if columns:
        from .published import FIGURE_COLUMNS
        from .records import OPTIONAL, REQUIRED, TABLES

        known = sorted(
            {c for name in TABLES for c in (*REQUIRED[name], *OPTIONAL[name])} | set(FIGURE_COLUMNS)
        )
        for canonical, column in columns.items():
            if canonical not in known and column in known:
                # Written the wrong way round: your column = cpdimpact's name.
                raise read.error(
                    ("data", "columns", canonical),
                    f"written the wrong way round: [data.columns] goes from cpdimpact's "
                    f"name to your column, but this maps your column {canonical!r} to "
                    f"cpdimpact's name {column!r}",
                    f"Write {column} = {canonical!r}".replace("'", '"'),
                )
            if canonical not in known:
                raise read.unknown(("data", "columns", canonical), known)
    return columns


def _published_options(read: _Reader, data: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """The ``[data]`` options of published figures, type-checked, files found."""
    read.check_keys(data, ("data",), [*_PUBLISHED, "participation", "schools", "columns"])
    where = ("data",)
    if "figures" in data and "performance_tables" in data:
        raise read.error(
            (*where, "performance_tables"),
            "contradicts figures: give one source of published figures",
            "Keep figures (a CSV in cpdimpact's shape) or performance_tables (DfE files)",
        )
    options: dict[str, Any] = {}
    if "figures" in data:
        options["figures"] = _data_file(read, data, "figures", base)
        for key in ("outcome", "pupil_count", "groups"):
            if key in data:
                raise read.error(
                    (*where, key),
                    "applies to performance_tables only",
                    "Name the figures' columns in [data.columns] instead (outcome, pupils)",
                )
    else:
        names = read.value(
            data["performance_tables"], tuple[str, ...], (*where, "performance_tables")
        )
        paths = [base / name for name in names]
        for path in paths:
            if not path.is_file():
                error = read.error(
                    (*where, "performance_tables"),
                    f"file not found: {path}",
                    "Paths are relative to the spec file; check the name and folder",
                )
                raise DataFileError(str(error), path=error.path, line=error.line)
        options["performance_tables"] = paths
        if "source" in data:
            raise read.error(
                (*where, "source"),
                "applies to figures only: performance tables name their files and years",
                "Remove source",
            )
        if "outcome" not in data:
            raise read.error(
                where,
                "performance_tables need outcome",
                'Add outcome = "PTRWM_EXP" (the DfE measure; see the files\' metadata)',
            )
        options["outcome"] = read.value(data["outcome"], str, (*where, "outcome"))
        if "pupil_count" in data:
            options["pupil_count"] = read.value(data["pupil_count"], str, (*where, "pupil_count"))
        if "groups" in data:
            options["groups"] = read.value(data["groups"], bool, (*where, "groups"))
    for key in ("measure", "outcome_label", "source"):
        if key in data:
            options[key] = read.value(data[key], str, (*where, key))
    if options.get("measure", "mean") not in ("mean", "percentage"):
        raise read.error(
            (*where, "measure"),
            f"expected 'mean' or 'percentage', got {options['measure']!r}",
            'Write measure = "percentage" for a percentage of pupils, else "mean"',
        )
    return options


#: The starter spec printed by ``cpdimpact init`` (identical to ``examples/evaluation.toml``).
EXAMPLE_SPEC = """\
# cpdimpact evaluation spec: run it with `cpdimpact run evaluation.toml`.
# Every table maps onto the Python spec (cpdimpact.Evaluation); see docs/cli.md.
# Paths are relative to this file.

[data]
# Simulated records with known truth (cpdimpact.datasets). For your own records, replace
# these three lines with the CSV paths:
#   pupils = "pupils.csv"
#   participation = "participation.csv"
#   schools = "schools.csv"        # optional
#   teachers = "teachers.csv"      # optional
#   format = "dfe"                 # files as DfE and school MIS write them: academic
#                                  # years ('2018/19'), SUPP/NE/A cells, Y/N flags, dates
# and, if your column names differ, map canonical name = your column:
#   [data.columns]
#   outcome = "ks2_maths_score"
simulate = "city_partnership"
seed = 2024
scale = 0.5

[cohort]
# cpdimpact.cohort.CohortSpec
exposure = "school"
comparison = "never_treated"
standardise = "comparison"
covariates = ["prior"]
# outcome_kind = "auto"   # or "pass_fail": a 0/1 outcome (reached the expected standard),
#                         # reported in percentage points; "auto" finds it

[estimator]
# kind = "auto" | "did" | "staggered" | "multilevel_did" | "synthetic_did" |
#        "synthetic_control", then that spec's fields
kind = "did"
covariates = ["prior"]
cluster = "school"
inference = { type = "ClusterRobust", kind = "CR1" }

[event_study]
# cpdimpact.did.EventStudy (omit the table for the default; [evaluation] event_study = "none"
# to skip it)
covariates = ["prior"]

[evaluation]
level = "pupil"
subgroups = ["fsm"]
alpha = 0.05
seed = 2024

[report]
title = "City CPD partnership (simulated data)"
programme = "Whole-school professional development, 2021-2023"
suppress_below = 10

[report.cost]
# cpdimpact.evaluation.ProgrammeCost: what delivering the programme cost (EEF cost rating)
pupils = 12000        # pupils reached each year
one_off = 450000      # training and materials bought once, in pounds
per_year = 60000      # recurring costs each year, in pounds

[report.security]
# cpdimpact.evaluation.SecurityOptions: the padlock assistant proposes, the evaluator decides
# (final = 0-5 with reason = "..."). mdes defaults to the MDES implied by the analysis.
design = "well-matched comparison"

[report.security.threats]
# threat = "low" | "moderate" | "high", optionally followed by "inflates" or "deflates"
contamination = "low"
"concurrent interventions" = "moderate"

[output]
dir = "out/report"
"""
