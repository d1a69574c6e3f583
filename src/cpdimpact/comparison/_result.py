"""The result of matching or weighting schools: one weight per school, with its balance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cpdimpact._results import ResultFaces, Summary
from cpdimpact._validate import check_choice
from cpdimpact.errors import (
    ArgumentTypeError,
    InvalidValueError,
    format_rows,
)

from ._balance import plot_love, require_column

__all__ = ["ComparisonWeights"]

_UNMATCHED = ("drop", "keep")


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _first(ids, limit: int = 5) -> str:
    shown = ", ".join(repr(_plain(i)) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


@dataclass(frozen=True, eq=False)
class ComparisonWeights(ResultFaces):
    """Weights of treated and comparison schools from matching or entropy balancing.

    Weights target the average effect on the treated (ATT): every treated school that is kept
    has weight 1; comparison schools carry the weights of MatchIt's conventions (see
    ``docs/comparison_matching.md``), which sum to the number of comparison schools used.
    A school with weight 0 was not used (an unmatched comparison school, or a treated school
    with no match inside the caliper).

    Attributes
    ----------
    method
        ``"nearest"`` (propensity score), ``"mahalanobis"``, ``"cem"`` or ``"entropy"``.
    unit
        Name of the school id column the weights were fitted on (``weights.index`` holds its
        values); :meth:`attach` looks this column up by default.
    weights
        One weight per school (``pd.Series`` named ``"weight"`` indexed by school id).
    treated
        Treatment indicator per school (boolean ``pd.Series``, same index).
    balance
        Balance table before and after (see :func:`~cpdimpact.comparison.balance_table`).
    spec
        The specification that produced the result.
    distance
        Per-school distance used for matching (propensity score or its logit), if any.
    subclass
        Matched set (or coarsened stratum) per school, ``<NA>`` when unused; ``None`` when
        sets overlap (matching with replacement) or do not apply (entropy balancing).
    matches
        Pairs ``treated, control, rank, distance`` (``rank`` 1..k), for nearest-neighbour
        matching; ``None`` otherwise.
    counts
        Schools by group (rows ``treated``, ``control``): ``all``, ``used``, ``dropped``.
    notes
        Plain-language remarks (dropped schools, caliper width, solver convergence).
    diagnostics
        Method-specific numbers (caliper width, solver iterations, maximum moment error...).
    """

    method: str
    unit: str
    weights: pd.Series
    treated: pd.Series
    balance: pd.DataFrame
    spec: Any
    distance: pd.Series | None = None
    subclass: pd.Series | None = None
    matches: pd.DataFrame | None = None
    counts: pd.DataFrame = field(default=None)  # type: ignore[assignment]
    notes: tuple[str, ...] = ()
    diagnostics: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.counts is None:
            w, t = self.weights.to_numpy(), self.treated.to_numpy(dtype=bool)
            rows = {}
            for label, group in (("treated", t), ("control", ~t)):
                used = int((w[group] > 0).sum())
                rows[label] = {
                    "all": int(group.sum()),
                    "used": used,
                    "dropped": int(group.sum()) - used,
                }
            object.__setattr__(self, "counts", pd.DataFrame.from_dict(rows, orient="index"))

    # ------------------------------------------------------------------ counts
    @property
    def n_treated(self) -> int:
        """Treated schools used (weight > 0)."""
        return int(self.counts.loc["treated", "used"])

    @property
    def n_control(self) -> int:
        """Comparison schools used (weight > 0)."""
        return int(self.counts.loc["control", "used"])

    @property
    def n_treated_dropped(self) -> int:
        """Treated schools left without a match (weight 0): the estimand changes with them."""
        return int(self.counts.loc["treated", "dropped"])

    @property
    def n_control_dropped(self) -> int:
        """Comparison schools not used (weight 0)."""
        return int(self.counts.loc["control", "dropped"])

    @property
    def effective_n_control(self) -> float:
        r"""Kish's effective number of comparison schools, :math:`(\sum w)^2/\sum w^2`."""
        w = self.weights.to_numpy()[~self.treated.to_numpy(dtype=bool)]
        return float(w.sum() ** 2 / np.sum(w**2)) if np.any(w > 0) else 0.0

    # ------------------------------------------------------------------ weights into frames
    def attach(
        self,
        frame: pd.DataFrame,
        *,
        unit: str | None = None,
        name: str = "weight",
        unmatched: str = "drop",
    ) -> pd.DataFrame:
        """A copy of ``frame`` (pupil rows, school-year rows...) with each row's school weight.

        Parameters
        ----------
        frame
            Any table with a school id column. Not modified.
        unit
            Its school id column; defaults to the column the weights were fitted on
            (:attr:`unit`).
        name
            Name of the new weight column; must not exist in ``frame``.
        unmatched
            ``"drop"`` (default) leaves out the rows of schools with weight 0, so that the
            frame can go straight into an estimator that needs positive weights
            (``DiD(..., weights="weight")``); ``"keep"`` keeps them with weight 0.

        Returns
        -------
        pandas.DataFrame
            The copy. Nothing is dropped silently: ``result.attrs["cpdimpact_attach"]`` holds
            ``rows_in``, ``rows_out``, ``rows_dropped``, ``schools_dropped`` (the ids) and
            ``unmatched``, and :meth:`summary` states the schools concerned.

        Raises
        ------
        MissingColumnError
            When ``frame`` has no ``unit`` column.
        InvalidValueError
            When ``frame`` holds schools the weights know nothing about (they were not in the
            table matched on), or ``name`` already exists.
        """
        check_choice(unmatched, "unmatched", _UNMATCHED)
        unit = self.unit if unit is None else unit
        if not isinstance(frame, pd.DataFrame):
            raise ArgumentTypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
        require_column(frame, unit, "school id", "unit", table="the frame")
        if name in frame.columns:
            raise InvalidValueError(
                f"the frame already has a column {name!r}; pass name='<new name>' for the weights."
            )
        w = frame[unit].map(self.weights)
        unknown = w.isna().to_numpy()
        if unknown.any():
            ids = pd.unique(frame[unit][unknown])
            raise InvalidValueError(
                f"{int(unknown.sum())} rows of the frame belong to {len(ids)} schools that were "
                f"not in the table the weights were fitted on (ids {_first(ids)}), at "
                f"{format_rows(frame.index[unknown])}. Fit the weights on a schools table "
                "holding every school, or filter the frame first."
            )
        out = frame.copy()
        out[name] = w.to_numpy(dtype=float)
        zero = out[name].to_numpy() == 0
        dropped_ids = (
            [_plain(i) for i in pd.unique(frame[unit][zero])] if unmatched == "drop" else []
        )
        if unmatched == "drop" and zero.any():
            out = out.loc[~zero]
        out.attrs = dict(out.attrs)
        out.attrs["cpdimpact_attach"] = {
            "rows_in": len(frame),
            "rows_out": len(out),
            "rows_dropped": int(zero.sum()) if unmatched == "drop" else 0,
            "rows_zero_weight": int(zero.sum()),
            "schools_dropped": dropped_ids,
            "unmatched": unmatched,
        }
        return out

    # ------------------------------------------------------------------ faces
    def to_frame(self) -> pd.DataFrame:
        """One row per school: id, ``treated``, ``weight``, ``subclass``, ``distance``."""
        out = pd.DataFrame(
            {
                self.unit: self.weights.index,
                "treated": self.treated.to_numpy(dtype=bool),
                "weight": self.weights.to_numpy(dtype=float),
            }
        )
        if self.subclass is not None:
            out["subclass"] = self.subclass.to_numpy()
        if self.distance is not None:
            out["distance"] = self.distance.to_numpy(dtype=float)
        return out

    def tidy(self) -> pd.DataFrame:
        """The balance table (long: one row per covariate and sample)."""
        return self.balance.copy()

    def to_dict(self) -> dict:
        """JSON-ready: method, counts, balance rows, notes and diagnostics (no school ids)."""

        def clean(v):
            if isinstance(v, float | np.floating):
                return None if not np.isfinite(v) else float(v)
            if isinstance(v, np.integer | np.bool_):
                return v.item()
            return v

        return {
            "method": self.method,
            "counts": {
                group: {k: int(v) for k, v in row.items()}
                for group, row in self.counts.to_dict(orient="index").items()
            },
            "effective_n_control": self.effective_n_control,
            "balance": [
                {k: clean(v) for k, v in row.items()} for row in self.balance.to_dict("records")
            ],
            "notes": list(self.notes),
            "diagnostics": {k: clean(v) for k, v in self.diagnostics.items()},
        }

    def summary(self) -> Summary:
        """Counts, method and the balance table (before/after side by side)."""
        c = self.counts
        facts = [
            ("method", self.method),
            ("treated schools", f"{c.loc['treated', 'used']} used of {c.loc['treated', 'all']}"),
            ("comparison schools", f"{c.loc['control', 'used']} used of {c.loc['control', 'all']}"),
            ("effective comparison n", f"{self.effective_n_control:.1f}"),
        ]
        table = self.balance
        order = list(dict.fromkeys(table["variable"]))
        samples = [s for s in ("before", "after") if s in set(table["sample"])]
        parts = []
        for value, label in (("std_mean_diff", "smd"), ("variance_ratio", "var_ratio")):
            part = table.pivot(index="variable", columns="sample", values=value)
            part = part.reindex(index=order, columns=samples)
            part.columns = [f"{label}_{s}" for s in samples]
            parts.append(part)
        shown = pd.concat(parts, axis=1).reset_index()
        notes = list(self.notes)
        if self.n_treated_dropped:
            notes.append(
                f"{self.n_treated_dropped} treated schools have no match and weight 0: the "
                "effect is estimated for the matched treated schools only."
            )
        return Summary(
            title=f"Comparison weights ({self.method})",
            facts=tuple(facts),
            table=shown,
            notes=tuple(notes),
        )

    def plot(self, *, ax=None, statistic: str = "std_mean_diff", threshold: float | None = 0.1):
        """Love plot of the balance before and after; returns the Axes."""
        return plot_love(self.balance, ax=ax, statistic=statistic, threshold=threshold)
