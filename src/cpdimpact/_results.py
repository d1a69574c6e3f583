"""The result base: the uniform faces of every result object, derived once.

:class:`ResultFaces` is the base of every public result: ``summary()``, ``to_frame()``,
``to_dict()`` (JSON-safe), ``plot(*, ax=None)`` and ``_repr_html_`` (the HTML of
``summary()``). :class:`EstimateResult` is the base of every result that estimates something:
a subclass implements ONE method, ``_tidy(alpha)``, returning the tidy table (columns
:data:`TIDY_COLUMNS`, optionally ``df``), and ``to_frame(alpha=)``, ``conf_int(alpha=)`` (always a
DataFrame indexed by ``term`` with columns ``ci_lower, ci_upper``), ``summary()``, ``to_dict()``
and the headline accessors ``estimate`` and ``std_error`` follow from it. A result whose
intervals are not Wald intervals (bootstrap draws, test inversion, uniform bands) computes them
in its own ``_tidy``, at whatever ``alpha`` is asked. :class:`EventStudyEstimates` is the type of
every event-study-shaped result, and :func:`plot_event_study` draws any of them.
"""

from __future__ import annotations

import html
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from cpdimpact._validate import check_alpha

__all__ = [
    "TIDY_COLUMNS",
    "EstimateResult",
    "EventStudyEstimates",
    "HtmlFromSummary",
    "ResultFaces",
    "Summary",
    "json_safe",
    "plot_event_study",
    "critical_value",
    "interval",
    "p_value",
    "tidy_frame",
    "years_without_data",
]

#: Columns of every ``to_frame()`` table, in order.
TIDY_COLUMNS = ("term", "estimate", "std_error", "statistic", "p_value", "ci_lower", "ci_upper")


def critical_value(alpha: float, df=None):
    """Two-sided critical value: Student's t on ``df`` degrees of freedom (a number, or an
    array of them, one per term; ``inf`` gives the normal), normal when ``df`` is ``None``."""
    check_alpha(alpha)
    if df is None:
        return float(stats.norm.ppf(1 - alpha / 2))
    q = stats.t.ppf(1 - alpha / 2, np.asarray(df, dtype=float))
    return float(q) if np.ndim(q) == 0 else q


def p_value(statistic, df=None):
    """Two-sided p-value of a t statistic (z when ``df`` is ``None``; ``df`` may be per term)."""
    statistic = np.abs(np.asarray(statistic, dtype=float))
    if df is None:
        return 2 * stats.norm.sf(statistic)
    return 2 * stats.t.sf(statistic, np.asarray(df, dtype=float))


def interval(estimate, std_error, *, alpha: float = 0.05, df=None):
    """Wald interval ``estimate -/+ critical_value * std_error``; returns ``(lower, upper)``."""
    q = critical_value(alpha, df)
    estimate = np.asarray(estimate, dtype=float)
    std_error = np.asarray(std_error, dtype=float)
    return estimate - q * std_error, estimate + q * std_error


def tidy_frame(
    estimates: pd.Series, std_errors: pd.Series, *, df, alpha: float = 0.05
) -> pd.DataFrame:
    """The tidy table ``term, estimate, std_error, statistic, p_value, ci_lower, ci_upper``.

    ``df`` is one number for every term, a Series of per-term degrees of freedom, or ``None``.
    """
    std_errors = std_errors.reindex(estimates.index)
    if isinstance(df, pd.Series):
        df = df.reindex(estimates.index).to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = estimates / std_errors
    lower, upper = interval(estimates, std_errors, alpha=alpha, df=df)
    return pd.DataFrame(
        {
            "term": estimates.index.astype(str),
            "estimate": estimates.to_numpy(dtype=float),
            "std_error": std_errors.to_numpy(dtype=float),
            "statistic": statistic.to_numpy(dtype=float),
            "p_value": p_value(statistic.to_numpy(dtype=float), df),
            "ci_lower": lower,
            "ci_upper": upper,
        }
    )


@dataclass(frozen=True)
class Summary:
    """A printable summary: a title, ``(label, value)`` facts and an optional table.

    ``print(result.summary())`` shows plain text; notebooks render ``_repr_html_``.
    """

    title: str
    facts: tuple[tuple[str, str], ...] = ()
    table: pd.DataFrame | None = None
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        lines = [self.title, "=" * len(self.title)]
        width = max((len(k) for k, _ in self.facts), default=0)
        lines += [f"{k.ljust(width)}  {v}" for k, v in self.facts]
        if self.table is not None:
            lines += ["", self.table.to_string(index=False, float_format=_fmt)]
        if self.notes:
            lines += [""] + [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        facts = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in self.facts
        )
        parts = [f"<h4>{html.escape(self.title)}</h4>", f"<table>{facts}</table>"]
        if self.table is not None:
            parts.append(self.table.to_html(index=False, float_format=_fmt, border=0))
        parts += [f"<p><em>Note:</em> {html.escape(n)}</p>" for n in self.notes]
        return "\n".join(parts)


def _fmt(x: float) -> str:
    return f"{x:.4f}"


def json_safe(value):
    """``value`` with numpy scalars, arrays, tuples, frames and non-finite floats made JSON-safe.

    NaN and infinite floats become ``None`` (JSON has no spelling for them); mapping keys become
    strings; a DataFrame becomes a list of row records and a Series a mapping.
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, pd.DataFrame):
        return json_safe(value.to_dict(orient="records"))
    if isinstance(value, pd.Series):
        return json_safe(value.to_dict())
    if isinstance(value, list | tuple | set | frozenset | np.ndarray):
        return [json_safe(v) for v in (sorted(value) if isinstance(value, set) else value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)  # dates, paths, enums: their printed form


def years_without_data(years) -> tuple[int, ...]:
    """Whole years between the first and the last of ``years`` that none of them is, in order.

    The years with no data at all in a series, e.g. ``(2020, 2021)`` for KS2 results spanning
    2017-2024 (no tests were sat in those summers). Empty when ``years`` are not whole numbers
    (labels, dates) or span more than a thousand years (then they are not calendar years).
    """
    values = pd.unique(pd.Series(list(years), dtype=object).dropna())
    try:
        numbers = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return ()
    if len(numbers) < 2 or not np.all(np.isfinite(numbers)) or np.any(numbers != np.round(numbers)):
        return ()
    seen = set(numbers.astype(np.int64).tolist())
    first, last = min(seen), max(seen)
    if last - first > 1000:
        return ()
    return tuple(y for y in range(first, last + 1) if y not in seen)


class ResultFaces(ABC):
    """Base of every public result: the faces an evaluator, a notebook and the report use.

    A subclass implements ``summary()`` and ``to_frame()``; ``to_dict()`` (the summary's facts
    and the table, JSON-safe) and ``_repr_html_`` (the HTML of ``summary()``) are derived from
    them. ``plot(*, ax=None)`` draws the result's figure where it has one.
    """

    @abstractmethod
    def summary(self) -> Summary:
        """A printable summary (``print(result.summary())``)."""

    @abstractmethod
    def to_frame(self) -> pd.DataFrame:
        """The result as one tidy table."""

    def to_dict(self) -> dict:
        """JSON-safe dictionary: the summary's title, facts and notes, and the table's rows."""
        summary = self.summary()
        return json_safe(
            {
                "result": type(self).__name__,
                "title": summary.title,
                "facts": dict(summary.facts),
                "table": self.to_frame(),
                "notes": list(summary.notes),
            }
        )

    def plot(self, *, ax=None):
        """The result's figure on ``ax`` (a new figure when ``None``); returns the Axes."""
        raise NotImplementedError(
            f"{type(self).__name__} has no figure: print(result.summary()) or use result.to_frame()"
        )

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


#: The former name of :class:`ResultFaces` (kept for code that imported it).
HtmlFromSummary = ResultFaces


class _Headline:
    """A headline accessor derived from the tidy table (``estimate``, ``std_error``).

    A non-data descriptor: a result that stores the same name as a dataclass field (or defines
    a property) keeps its own value, so the derived accessor only fills in where none exists.
    """

    def __init__(self, column: str, doc: str):
        self.column = column
        self.__doc__ = doc

    def __get__(self, obj, owner=None):
        if obj is None:  # no class-level default, so dataclass fields of this name stay required
            raise AttributeError(self.column)
        return float(obj._headline()[self.column])


class EstimateResult(ResultFaces):
    """Base of every result that estimates something: one tidy table, every face derived.

    The headline accessors ``estimate``, ``std_error``, ``statistic``, ``p_value``,
    ``ci_lower`` and ``ci_upper`` read the headline row of the tidy table; a result that stores
    one of them as a field keeps its own value; a result with no single headline (an event
    study, a multilevel model's fixed effects) makes :meth:`_headline` raise AttributeError.

    A subclass implements :meth:`_tidy`; it may override :meth:`_headline_term` (default: the
    first row of the table is the headline), :meth:`_title` and :meth:`_facts` (what :meth:`summary` prints). The
    result's own level is its ``alpha`` attribute (0.05 when it has none).
    """

    estimate = _Headline("estimate", "The headline estimate (see :meth:`_headline`).")
    std_error = _Headline("std_error", "Standard error of the headline estimate.")
    statistic = _Headline("statistic", "Test statistic of the headline estimate.")
    p_value = _Headline("p_value", "Two-sided p-value of the headline estimate.")
    ci_lower = _Headline("ci_lower", "Lower limit of the headline's ``1 - alpha`` interval.")
    ci_upper = _Headline("ci_upper", "Upper limit of the headline's ``1 - alpha`` interval.")

    @abstractmethod
    def _tidy(self, alpha: float) -> pd.DataFrame:
        """The tidy table at level ``alpha``: columns :data:`TIDY_COLUMNS` (plus ``df``)."""

    def _level(self, alpha) -> float:
        """``alpha`` checked, or the result's own level when ``None``."""
        return check_alpha(getattr(self, "alpha", 0.05) if alpha is None else alpha)

    def _headline_term(self) -> str | None:
        """The term of the headline estimate; ``None``: the first row of the tidy table."""
        return None

    def _headline(self) -> pd.Series:
        """The headline row: ``estimate, std_error, statistic, p_value, ci_lower, ci_upper`` of
        the headline term in the tidy table at the result's level."""
        frame = self._tidy(self._level(None))
        term = self._headline_term()
        return frame.iloc[0] if term is None else frame.loc[frame["term"] == term].iloc[0]

    def _title(self) -> str:
        return type(self).__name__

    def _facts(self) -> tuple[tuple[str, str], ...]:
        return ()

    def to_frame(self, alpha: float | None = None) -> pd.DataFrame:
        """Tidy table ``term, estimate, std_error, statistic, p_value, ci_lower, ci_upper``.

        Intervals are at level ``alpha`` (the result's own ``alpha`` when ``None``).
        """
        return self._tidy(self._level(alpha)).reset_index(drop=True)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """``1 - alpha`` intervals of every term: columns ``ci_lower, ci_upper``, indexed by term.

        For one term, ``lower, upper = result.conf_int().iloc[0]``.
        """
        frame = self._tidy(check_alpha(alpha))
        out = frame.set_index(frame["term"].astype(str))[["ci_lower", "ci_upper"]]
        out.index.name = "term"
        return out

    def summary(self) -> Summary:
        """A printable summary: the result's facts and the tidy table."""
        return Summary(
            title=self._title(),
            facts=self._facts(),
            table=self.to_frame(),
            notes=tuple(getattr(self, "notes", ()) or ()),
        )

    def plot(self, *, ax=None):
        """Every term's estimate with its ``1 - alpha`` interval (a coefficient plot)."""
        import matplotlib.pyplot as plt  # lazy: importing cpdimpact stays cheap

        frame = self.to_frame()
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * max(len(frame), 2)))
        y = np.arange(len(frame))[::-1]
        est = frame["estimate"].to_numpy(dtype=float)
        ax.errorbar(
            est,
            y,
            xerr=[est - frame["ci_lower"].to_numpy(float), frame["ci_upper"].to_numpy(float) - est],
            fmt="o",
            color="C0",
            capsize=3,
        )
        ax.axvline(0, color="0.5", linewidth=0.8)
        ax.set_yticks(y, frame["term"].astype(str).tolist())
        ax.set_xlabel(f"Estimate ({1 - self._level(None):.0%} CI)")
        ax.set_title(self._title())
        return ax


#: Columns of :meth:`EventStudyEstimates.event_time_frame`, always present.
EVENT_TIME_COLUMNS = ("estimate", "std_error", "ci_lower", "ci_upper", "reference", "binned")


class EventStudyEstimates(EstimateResult):
    """The type of every event-study-shaped result: effects by event time.

    What :func:`cpdimpact.did.honest.sensitivity` and :func:`plot_event_study` read:
    :meth:`event_time_frame` (event time -> estimate, standard error, interval, whether the row
    is the omitted reference or a binned end point, optionally a uniform band
    ``band_lower, band_upper`` and a ``separate_test`` flag for lead coefficients estimated in
    another regression), :meth:`event_time_cov` (the covariance of the estimated event-time
    coefficients) and :attr:`reference_event_time` (the omitted period, ``None`` when there is
    none).
    """

    @abstractmethod
    def event_time_frame(self, alpha: float | None = None) -> pd.DataFrame:
        """One row per event time (index ``event_time``, increasing): columns
        :data:`EVENT_TIME_COLUMNS`, intervals at ``alpha`` (the result's own when ``None``)."""

    @abstractmethod
    def event_time_cov(self) -> pd.DataFrame:
        """Covariance of the estimated event-time coefficients (no reference row), indexed by
        event time on both axes."""

    @property
    def reference_event_time(self) -> int | None:
        """The omitted event time (the result's ``reference``), or ``None`` when no period is
        omitted."""
        reference = getattr(self, "reference", None)
        return None if reference is None else int(reference)

    def _event_study_title(self) -> str:
        return "Event study"

    def plot(self, *, ax=None):
        """Event-study figure (:func:`plot_event_study`); returns the Axes."""
        return plot_event_study(self, ax=ax)


def _runs(times: np.ndarray) -> list[np.ndarray]:
    """Positions of ``times`` split where consecutive event times are not one period apart."""
    if times.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(times) != 1) + 1
    return np.split(np.arange(times.size), breaks)


def start_line(ax, x: float, label: str, *, linestyle: str, color: str) -> None:
    """A vertical line at ``x`` marking a programme's start, labelled at its top so that a
    reader (in print, in grey) knows what it is."""
    ax.axvline(x, color=color, linestyle=linestyle, linewidth=0.9)
    ax.annotate(
        label,
        xy=(x, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(3, -3),
        textcoords="offset points",
        ha="left",
        va="top",
        fontsize="small",
        color="0.35",
    )


def plot_event_study(result: EventStudyEstimates, *, ax=None):
    """Draw any event-study result: estimates and intervals by event time.

    Pointwise ``1 - alpha`` intervals are error bars, a uniform band (when the result has one)
    is shaded, the reference period is a hollow point at zero, and estimates are joined by a line
    only between consecutive event times (a gap in event time breaks it). Lead coefficients
    estimated in a separate regression (``separate_test``) are grey squares, not joined.

    Parameters
    ----------
    result : EventStudyEstimates
        A TWFE event study, a Sun & Abraham or imputation result, or a dynamic staggered
        aggregate.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when ``None``.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes drawn on.
    """
    import matplotlib.pyplot as plt  # lazy: importing cpdimpact stays cheap

    if not isinstance(result, EventStudyEstimates):
        from cpdimpact.errors import ArgumentTypeError

        raise ArgumentTypeError(
            f"plot_event_study needs an event-study result, got {type(result).__name__}: pass an "
            "EventStudyResult, SunAbrahamResult, ImputationResult or "
            "StaggeredResult.aggregate('dynamic')"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    alpha = result._level(None)
    frame = result.event_time_frame(alpha)
    separate = (
        frame["separate_test"].to_numpy(bool)
        if "separate_test" in frame
        else np.zeros(len(frame), bool)
    )
    main, leads = frame.loc[~separate], frame.loc[separate]
    reference = main["reference"].to_numpy(bool)
    est = main.loc[~reference]
    x = est.index.to_numpy(dtype=float)
    ax.axhline(0, color="0.5", linewidth=0.8)
    if {"band_lower", "band_upper"} <= set(main.columns) and est["band_lower"].notna().any():
        # one shaded box per event time: a band is a statement about the event times
        # estimated, not about the years between them
        lower, upper = est["band_lower"].to_numpy(float), est["band_upper"].to_numpy(float)
        ax.bar(
            x,
            upper - lower,
            bottom=lower,
            width=0.5,
            color="C0",
            alpha=0.2,
            linewidth=0,
            label=f"{1 - alpha:.0%} uniform band (all event times at once)",
        )
        ax.use_sticky_edges = False  # a margin below the lowest band, as for the error bars
    # the line joins estimates (and the reference's zero) only across consecutive event times
    line_x = main.index.to_numpy(dtype=float)
    line_y = np.where(reference, 0.0, main["estimate"].to_numpy(dtype=float))
    for run in _runs(line_x):
        if run.size > 1:
            ax.plot(line_x[run], line_y[run], color="C0", linewidth=0.8, alpha=0.6)
    ax.errorbar(
        x,
        est["estimate"],
        yerr=[est["estimate"] - est["ci_lower"], est["ci_upper"] - est["estimate"]],
        fmt="o",
        color="C0",
        capsize=3,
        label=f"estimate, pointwise {1 - alpha:.0%} CI",
    )
    if reference.any():
        ref = main.index[reference][0]
        ax.plot(
            [ref],
            [0.0],
            marker="o",
            markerfacecolor="white",
            color="C0",
            linestyle="none",
            label=f"reference (event time {ref})",
        )
    if not leads.empty:
        ax.errorbar(
            leads.index.to_numpy(dtype=float),
            leads["estimate"],
            yerr=[leads["estimate"] - leads["ci_lower"], leads["ci_upper"] - leads["estimate"]],
            fmt="s",
            color="grey",
            capsize=3,
            label="pre-trend lead (separate test)",
        )
    post = frame.index[frame.index >= 0]
    start = post.min() if len(post) else 0
    start_line(ax, start - 0.5, "start", linestyle="--", color="0.5")
    ticks = frame.index.to_numpy()
    if len(ticks):
        labels = [
            (f"\u2264{e}" if e == ticks.min() else f"\u2265{e}") if b else str(e)
            for e, b in zip(ticks, frame["binned"].to_numpy(bool), strict=True)
        ]
        ax.set_xticks(ticks, labels)
    ax.set_xlabel("event time (periods since first treated)")
    outcome = getattr(result, "outcome", None)
    ax.set_ylabel(f"Effect on {outcome}" if outcome else "Effect")
    title = result._event_study_title()
    pretrend = getattr(result, "pretrend", None)
    p = getattr(pretrend, "p_value", None)
    if p is not None and np.isfinite(p):
        title += f" (pre-trend test p = {p:.3f})"
    ax.set_title(title)
    ax.legend(frameon=False, fontsize="small")
    return ax
