"""The blocks a report document is made of: headings, paragraphs, tables and figures."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType

import pandas as pd

from ..errors import DataError, InvalidValueError
from ._format import NA_REP, FormatSpec, format_column, is_numeric_column, one_line

__all__ = [
    "MAX_TABLE_ROWS",
    "PUPIL_ID_COLUMNS",
    "Block",
    "Figure",
    "Heading",
    "Paragraph",
    "Table",
]

#: Tables longer than this are refused unless ``allow_large=True``: a guard against pasting
#: pupil records into a report.
MAX_TABLE_ROWS = 500

#: Column names (compared case-insensitively) that identify individual pupils; a table holding
#: one is refused. ``upn`` is England's Unique Pupil Number.
PUPIL_ID_COLUMNS = frozenset({"pupil", "pupil_id", "pupilid", "upn"})

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")


def _text(name: str, value: object, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidValueError(f"{name} must be a string, got {value!r}.")
    if not allow_empty and not value.strip():
        raise InvalidValueError(f"{name} must not be empty.")
    return value


def check_name(kind: str, name: object) -> str:
    """A file-safe stem: letters, digits, '_' and '-', starting with a letter or digit."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidValueError(
            f"{kind} {name!r} is not a safe file name: use 1-100 letters, digits, '_' or '-', "
            f"starting with a letter or digit (e.g. 'event_study')."
        )
    return name


@dataclass(frozen=True)
class Heading:
    """A section heading.

    Parameters
    ----------
    text : str
        The heading text (plain text; whitespace runs collapse to one space).
    level : int, default 2
        2 to 6; level 1 is reserved for the document title.
    """

    text: str
    level: int = 2

    def __post_init__(self) -> None:
        _text("Heading text", self.text, allow_empty=False)
        if isinstance(self.level, bool) or self.level not in range(2, 7):
            raise InvalidValueError(
                f"Heading level must be 2 to 6 (the title is level 1), got {self.level!r}."
            )


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of plain text.

    The text is not interpreted as Markdown or HTML: markup characters are escaped in both
    outputs, and runs of whitespace (including newlines) collapse to one space. Use one
    ``Paragraph`` per paragraph.
    """

    text: str

    def __post_init__(self) -> None:
        _text("Paragraph text", self.text)


@dataclass(frozen=True, eq=False)
class Table:
    """A table of aggregate results, with an optional caption and notes.

    Parameters
    ----------
    frame : pandas.DataFrame or pandas.Series
        The rows to show. A copy is kept, so later changes to the caller's frame do not
        change the document.
    caption : str, optional
        Shown above the table.
    notes : sequence of str, optional
        Shown below the table, one paragraph each ("Note: ...").
    formats : mapping, optional
        Column name -> format for that column's numbers: a format string such as
        ``"{:.2f}"`` or ``"{:,}"``, a bare spec such as ``".2f"``, or a callable returning
        the text. Strings in the column (e.g. a ``"<10"`` suppression marker) pass through.
    na_rep : str, default "\u2014"
        Text for missing values (an em dash).
    index : bool, default False
        Show the frame's index as leading column(s).
    allow_large : bool, default False
        Allow more than :data:`MAX_TABLE_ROWS` rows.

    Raises
    ------
    cpdimpact.errors.DataError
        If the frame has a pupil identifier column (:data:`PUPIL_ID_COLUMNS`) or more than
        :data:`MAX_TABLE_ROWS` rows without ``allow_large=True``.

    Notes
    -----
    A report must never contain pupil-level rows. The checks here are a guard, not a
    guarantee: aggregate to school, group or year level first, and pass counts through
    :func:`suppress_small_counts`.

    Cell text is deterministic and follows the type of each value, not its size: without a
    format, integers (numpy, Python or the nullable ``"Int64"`` dtype) print as integers and
    floats with three decimals (``"{:.3f}"``), so a float column never switches between
    ``"3"`` and ``"3.000"`` as the data change. Store counts with missing values as
    ``"Int64"``, not float. Infinite values print as ``inf``; booleans as ``yes``/``no``;
    dates in ISO form; missing values (NaN, None, pd.NA, NaT) as ``na_rep``; strings as they
    are. A number that rounds to zero never shows a minus sign (``-0.000`` becomes
    ``0.000``), with or without a format.

    Examples
    --------
    >>> import pandas as pd
    >>> from cpdimpact.report import Table
    >>> t = Table(pd.DataFrame({"group": ["All", "FSM"], "g": [0.123, 0.0456]}),
    ...           caption="Effect sizes", formats={"g": "{:.2f}"})
    >>> t.cells()
    (('All', '0.12'), ('FSM', '0.05'))
    """

    frame: pd.DataFrame
    _: KW_ONLY
    caption: str = ""
    notes: tuple[str, ...] = ()
    formats: Mapping[object, FormatSpec] = field(default_factory=dict)
    na_rep: str = NA_REP
    index: bool = False
    allow_large: bool = False

    def __post_init__(self) -> None:
        frame = self.frame
        if isinstance(frame, pd.Series):
            frame = frame.to_frame()
        if not isinstance(frame, pd.DataFrame):
            raise InvalidValueError(f"Table needs a pandas DataFrame, got {type(frame).__name__}.")
        if self.index:
            levels = frame.index.to_frame(index=False)
            levels.columns = ["" if n is None else n for n in frame.index.names]
            frame = pd.concat([levels, frame.reset_index(drop=True)], axis=1)
        if isinstance(frame.columns, pd.MultiIndex):
            frame = frame.copy()
            frame.columns = [" ".join(str(p) for p in c if str(p)) for c in frame.columns]
        identifying = [c for c in frame.columns if str(c).strip().lower() in PUPIL_ID_COLUMNS]
        if identifying:
            raise DataError(
                f"Table refuses pupil-level data: column {identifying[0]!r} identifies pupils. "
                f"Reports must show aggregates only: group by school, year or subgroup first "
                f"and drop pupil identifiers."
            )
        if len(frame) > MAX_TABLE_ROWS and not self.allow_large:
            raise DataError(
                f"Table has {len(frame)} rows, more than {MAX_TABLE_ROWS}: this looks like "
                f"record-level data. Aggregate it, or pass allow_large=True if these rows are "
                f"genuinely aggregates (e.g. one per school) and safe to publish."
            )
        _text("Table caption", self.caption)
        notes = (self.notes,) if isinstance(self.notes, str) else tuple(self.notes)
        for note in notes:
            _text("Table note", note)
        _text("na_rep", self.na_rep)
        labels = {str(c) for c in frame.columns} | set(frame.columns)
        unknown = [k for k in self.formats if k not in labels]
        if unknown:
            raise InvalidValueError(
                f"formats names columns the table does not have: {unknown!r}; its columns "
                f"are {[str(c) for c in frame.columns]!r}."
            )
        for key, spec in self.formats.items():
            if not (callable(spec) or isinstance(spec, str)):
                raise InvalidValueError(
                    f"format for column {key!r} must be a format string like '{{:.2f}}' or a "
                    f"callable, got {spec!r}."
                )
        object.__setattr__(self, "frame", frame.copy(deep=True))
        object.__setattr__(self, "notes", notes)
        object.__setattr__(self, "formats", MappingProxyType(dict(self.formats)))

    def _spec(self, column: object) -> FormatSpec | None:
        if column in self.formats:
            return self.formats[column]
        return self.formats.get(str(column))

    def headers(self) -> tuple[str, ...]:
        """Column headers as shown."""
        return tuple(one_line(c) for c in self.frame.columns)

    def numeric(self) -> tuple[bool, ...]:
        """Whether each column is right-aligned (holds at least one number)."""
        return tuple(
            is_numeric_column(self.frame.iloc[:, j].tolist()) for j in range(self.frame.shape[1])
        )

    def cells(self) -> tuple[tuple[str, ...], ...]:
        """The formatted cells, row by row, exactly as both outputs show them."""
        columns = [
            format_column(self.frame.iloc[:, j].tolist(), spec=self._spec(c), na_rep=self.na_rep)
            for j, c in enumerate(self.frame.columns)
        ]
        return tuple(zip(*columns, strict=True)) if columns else ()


@dataclass(frozen=True, eq=False)
class Figure:
    """A figure: a matplotlib Figure (or Axes) or ready-made PNG bytes.

    Parameters
    ----------
    figure : matplotlib.figure.Figure, matplotlib.axes.Axes or bytes
        A matplotlib figure is rendered to PNG when the document is rendered or saved, at
        ``dpi``, with PNG metadata stripped so the same figure always gives the same bytes.
        Bytes must be a PNG image.
    name : str
        File stem, unique within a document: the figure is saved as ``figures/<name>.png``.
    caption : str, optional
        Shown below the figure.
    alt : str, optional
        Alternative text for screen readers; defaults to the caption, else the name.
    dpi : int, default 150
        Resolution for rendering a matplotlib figure.
    """

    figure: object
    _: KW_ONLY
    name: str
    caption: str = ""
    alt: str = ""
    dpi: int = 150

    def __post_init__(self) -> None:
        check_name("Figure name", self.name)
        _text("Figure caption", self.caption)
        _text("Figure alt text", self.alt)
        figure = self.figure
        if isinstance(figure, bytearray | memoryview):
            figure = bytes(figure)
        if isinstance(figure, bytes):
            if not figure.startswith(_PNG_SIGNATURE):
                raise InvalidValueError(f"Figure {self.name!r}: the bytes are not a PNG image.")
        elif not hasattr(figure, "savefig"):
            parent = getattr(figure, "figure", None)  # an Axes, e.g. what result.plot() returns
            if not hasattr(parent, "savefig"):
                raise InvalidValueError(
                    f"Figure {self.name!r} needs a matplotlib Figure or Axes, or PNG bytes; "
                    f"got {type(figure).__name__}."
                )
            figure = parent
        if isinstance(self.dpi, bool) or not isinstance(self.dpi, int) or self.dpi <= 0:
            raise InvalidValueError(f"Figure dpi must be a positive integer, got {self.dpi!r}.")
        object.__setattr__(self, "figure", figure)

    @property
    def alt_text(self) -> str:
        """The alternative text used in both outputs."""
        return self.alt or self.caption or self.name

    @property
    def path(self) -> str:
        """Relative POSIX path of the saved image."""
        return f"figures/{self.name}.png"

    def png(self) -> bytes:
        """The image as PNG bytes; identical for the same figure on every call."""
        if isinstance(self.figure, bytes):
            return self.figure
        buffer = io.BytesIO()
        # "Software": None drops the only text chunk matplotlib writes (its version), so the
        # bytes depend on the pixels alone.
        self.figure.savefig(
            buffer, format="png", dpi=self.dpi, metadata={"Software": None}, facecolor="white"
        )
        return buffer.getvalue()

    def svg(self) -> bytes | None:
        """The image as SVG, a vector image that stays sharp when zoomed or printed (the HTML
        report embeds it); identical for the same figure on every call. ``None`` for a figure
        given as PNG bytes."""
        if isinstance(self.figure, bytes):
            return None
        import matplotlib

        buffer = io.BytesIO()
        # a fixed salt makes the element ids, and no date or creator the header, the same on
        # every run; text is drawn as paths, so the page needs no fonts (and holds no text
        # that could be markup)
        with matplotlib.rc_context({"svg.hashsalt": "cpdimpact", "svg.fonttype": "path"}):
            self.figure.savefig(
                buffer, format="svg", metadata={"Date": None, "Creator": None}, facecolor="white"
            )
        return buffer.getvalue()


Block = Heading | Paragraph | Table | Figure
BLOCK_TYPES: Sequence[type] = (Heading, Paragraph, Table, Figure)
