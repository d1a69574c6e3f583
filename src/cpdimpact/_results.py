"""Shared machinery for the uniform faces of every result object.

Every result offers ``summary()``, ``to_frame()``, ``plot(*, ax=None)``, ``_repr_html_`` and
``conf_int(alpha=0.05)``. The helpers here keep those faces identical across modules.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from cpdimpact._validate import check_alpha

__all__ = [
    "TIDY_COLUMNS",
    "HtmlFromSummary",
    "Summary",
    "critical_value",
    "interval",
    "p_value",
    "tidy_frame",
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


class HtmlFromSummary:
    """Mixin: a result's notebook view is the HTML of its ``summary()``."""

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


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
