r"""Goodman-Bacon (2021) decomposition of the two-way fixed-effects DiD coefficient.

In a balanced panel with staggered, absorbing treatment, the TWFE coefficient
:math:`\hat\beta^{DD}` from :math:`y_{it} = \alpha_i + \lambda_t + \beta D_{it} + e_{it}` is
exactly a weighted average of every 2x2 difference-in-differences that compares one timing
group with another over a window where only one of them changes treatment status. The weights
are non-negative and sum to one; they grow with the size of the two groups and with the
variance of treatment inside the 2x2 subsample. Comparisons that use already-treated units as
controls ("forbidden" comparisons) subtract the change in those units' treatment effects, which
is what biases TWFE when effects grow over time.

:func:`bacon_decomposition` computes the 2x2 estimates and their weights from the closed-form
expressions of Goodman-Bacon (2021, Theorem 1, eqs. 10a-10c), and the TWFE coefficient directly
(within regression), so the identity :math:`\sum w\,\hat\beta^{2x2} = \hat\beta^{DD}` is a
check, not a construction. See ``docs/bacon.md``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from cpdimpact._guards import check_start_constant
from cpdimpact._results import ResultFaces, Summary
from cpdimpact._validate import check_choice
from cpdimpact.did._checks import key_column, numeric_column, require_columns
from cpdimpact.errors import (
    CpdImpactError,
    CpdImpactWarning,
    DesignError,
    DuplicateRowsError,
    EmptyComparisonGroupError,
    EstimationError,
    InvalidValueError,
    format_rows,
)

__all__ = ["BaconDecomposition", "bacon_decomposition", "COMPARISON_TYPES"]

TREATED_VS_NEVER = "treated vs never"
EARLIER_VS_LATER = "earlier vs later (later as control)"
LATER_VS_EARLIER = "later vs earlier (earlier as control: forbidden)"
TREATED_VS_ALWAYS = "treated vs always treated (always treated as control: forbidden)"

#: The comparison types, in the order tables list them.
COMPARISON_TYPES = (TREATED_VS_NEVER, EARLIER_VS_LATER, LATER_VS_EARLIER, TREATED_VS_ALWAYS)
FORBIDDEN_TYPES = (LATER_VS_EARLIER, TREATED_VS_ALWAYS)

_TABLE_COLUMNS = (
    "treated_group",
    "control_group",
    "type",
    "estimate",
    "weight",
    "n_treated",
    "n_control",
    "window_start",
    "window_end",
)


def bacon_decomposition(
    data: pd.DataFrame,
    *,
    outcome: str = "outcome",
    unit: str = "unit",
    time: str = "year",
    first_treated: str = "first_treated",
    always_treated: Literal["control", "drop"] = "control",
    covariates=None,
) -> BaconDecomposition:
    r"""Decompose the TWFE DiD coefficient into 2x2 comparisons (Goodman-Bacon 2021).

    Parameters
    ----------
    data : pandas.DataFrame
        A balanced panel: one row per unit and period (e.g. school-year means,
        ``cohort.unit_years``), every unit observed in every period. Not modified.
    outcome, unit, time : str
        Columns of the outcome, the unit whose effects are absorbed, and the period.
    first_treated : str
        First treated period of the unit (treatment is absorbing: treated from then on);
        0 or missing for never-treated units. Constant within each unit. Units whose
        ``first_treated`` lies after the last period are untreated in the panel and join the
        never-treated group.
    always_treated : {"control", "drop"}
        Units treated in every period (``first_treated`` at or before the first period).
        Their treatment does not vary, so the unit effects absorb it and in the TWFE regression
        they act as a comparison group, exactly as never-treated units do (Goodman-Bacon 2021;
        R and Stata ``bacondecomp``). ``"control"`` (default) keeps them, so the
        decomposition explains the TWFE estimate on the data as given, and lists their
        comparisons as ``"treated vs always treated ..."``, counted as forbidden (their outcome
        changes include changes in their own treatment effects). ``"drop"`` removes them
        first (as :class:`~cpdimpact.did.StaggeredDiD` does), counts them in a note, and
        decomposes the TWFE estimate of the remaining units. Either way a warning says how many
        there were.
    covariates
        Not supported: the decomposition with time-varying covariates (Goodman-Bacon 2021)
        adds a "within" term and is not implemented. Passing anything but ``None``
        raises :class:`~cpdimpact.errors.CpdImpactError`.

    Returns
    -------
    BaconDecomposition

    Raises
    ------
    cpdimpact.errors.MissingColumnError
        A named column is absent.
    cpdimpact.errors.InvalidValueError
        Non-numeric or missing outcome; ``first_treated`` varying within a unit
        (non-absorbing treatment) or negative; an unbalanced panel.
    cpdimpact.errors.DuplicateRowsError
        More than one row per unit and period (aggregate pupils to unit-period means first).
    cpdimpact.errors.DesignError
        No unit switches into treatment inside the panel, or no comparison group
        (:class:`~cpdimpact.errors.EmptyComparisonGroupError`: one timing group and neither
        never- nor always-treated units, so treatment is collinear with the period effects).

    Notes
    -----
    Let periods be :math:`t = 1, \dots, T`, timing group :math:`k` first treated in
    :math:`t_k` with sample share :math:`n_k` of the units, :math:`\bar D_k` the share of periods
    in which it is treated, and :math:`U` the untreated group (never treated in the panel).
    For :math:`k` earlier than :math:`\ell` (:math:`t_k < t_\ell`), the 2x2 estimates are
    differences of group means over windows

    .. math::

        \hat\beta^{2x2}_{kU} &= (\bar y_k^{POST(k)} - \bar y_k^{PRE(k)})
            - (\bar y_U^{POST(k)} - \bar y_U^{PRE(k)}), \\
        \hat\beta^{2x2,k}_{k\ell} &= (\bar y_k^{MID(k,\ell)} - \bar y_k^{PRE(k)})
            - (\bar y_\ell^{MID(k,\ell)} - \bar y_\ell^{PRE(k)}), \\
        \hat\beta^{2x2,\ell}_{k\ell} &= (\bar y_\ell^{POST(\ell)} - \bar y_\ell^{MID(k,\ell)})
            - (\bar y_k^{POST(\ell)} - \bar y_k^{MID(k,\ell)}),

    with PRE(k) the periods before :math:`t_k`, MID the periods :math:`t_k \le t < t_\ell` and
    POST(:math:`\ell`) the periods from :math:`t_\ell`. The second compares the earlier group
    with the later one before it starts (a clean control); the third compares the later group
    with the earlier one *after* it has started (a forbidden control). With
    :math:`n_{k\ell} = n_k/(n_k+n_\ell)` the weights are (Theorem 1)

    .. math::

        s_{kU} &= \frac{(n_k+n_U)^2\, n_{kU}(1-n_{kU})\, \bar D_k(1-\bar D_k)}{\hat V^D}, \\
        s^k_{k\ell} &= \frac{\big((n_k+n_\ell)(1-\bar D_\ell)\big)^2 n_{k\ell}(1-n_{k\ell})
            \frac{\bar D_k-\bar D_\ell}{1-\bar D_\ell}\frac{1-\bar D_k}{1-\bar D_\ell}}
            {\hat V^D}, \\
        s^\ell_{k\ell} &= \frac{\big((n_k+n_\ell)\bar D_k\big)^2 n_{k\ell}(1-n_{k\ell})
            \frac{\bar D_\ell}{\bar D_k}\frac{\bar D_k-\bar D_\ell}{\bar D_k}}{\hat V^D},

    where :math:`\hat V^D = \frac{1}{NT}\sum_{i,t}\tilde D_{it}^2` is the variance of the
    treatment dummy after removing unit and period means, computed here from the data (not as
    the sum of the numerators), so that the weights summing to one checks the formulas.
    The TWFE coefficient is computed directly as
    :math:`\hat\beta^{DD} = \sum \tilde D_{it} y_{it} / \sum \tilde D_{it}^2` (the within
    regression on a balanced panel); :math:`\sum s\,\hat\beta^{2x2} = \hat\beta^{DD}` holds to
    rounding error (Goodman-Bacon 2021, Theorem 1).

    Always-treated units (:math:`\bar D = 1`) enter exactly like :math:`U` (their demeaned
    treatment is identical); never- and always-treated units pool into :math:`U` and the pooled
    2x2 splits exactly into the two comparisons with weights proportional to their sizes.

    There are no standard errors: the 2x2 pieces and weights describe where the TWFE estimate
    comes from; for inference on the TWFE coefficient use :class:`~cpdimpact.did.DiD`, for
    effects robust to staggered timing :class:`~cpdimpact.did.StaggeredDiD`. Each unit-period
    row has equal weight (the unweighted TWFE on unit-period means).

    References
    ----------
    Goodman-Bacon, A. (2021). Difference-in-differences with variation in treatment timing.
    *Journal of Econometrics* 225(2), 254-277.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cpdimpact.did.bacon import bacon_decomposition
    >>> rng = np.random.default_rng(0)
    >>> first = np.repeat([2018, 2020, 0], [10, 10, 10])
    >>> panel = pd.DataFrame(
    ...     [(u, y, first[u]) for u in range(30) for y in range(2016, 2023)],
    ...     columns=["unit", "year", "first_treated"])
    >>> treated = (panel["first_treated"] > 0) & (panel["year"] >= panel["first_treated"])
    >>> since = np.where(treated, panel["year"] - panel["first_treated"] + 1, 0)
    >>> panel["outcome"] = rng.normal(0, 1, len(panel)) + 0.5 * since  # growing effects
    >>> dec = bacon_decomposition(panel)
    >>> len(dec.table), round(float(dec.table["weight"].sum()), 12)
    (4, 1.0)
    >>> bool(abs(dec.decomposed_estimate - dec.twfe_estimate) < 1e-10)
    True
    >>> list(dec.by_type.index)  # doctest: +NORMALIZE_WHITESPACE
    ['treated vs never', 'earlier vs later (later as control)',
     'later vs earlier (earlier as control: forbidden)']
    """
    if covariates is not None:
        raise CpdImpactError(
            "covariates are not supported by bacon_decomposition: the decomposition with "
            "time-varying covariates (Goodman-Bacon 2021) adds a 'within' term that is "
            "not implemented. Decompose the TWFE estimate without covariates, and use DiD for "
            "the covariate-adjusted TWFE estimate."
        )
    check_choice(always_treated, "always_treated", ("control", "drop"))
    panel = _Panel.build(data, outcome, unit, time, first_treated, always_treated)
    return _decompose(panel, outcome, unit, time, first_treated, always_treated)


@dataclass(frozen=True)
class _Panel:
    y: np.ndarray  # units x periods
    start: np.ndarray  # effective first treated period index per unit; T = untreated, 0 = always
    periods: np.ndarray
    n_dropped_always: int
    notes: tuple[str, ...]

    @classmethod
    def build(cls, data, outcome, unit, time, first_treated, always_treated) -> _Panel:
        require_columns(
            data,
            [
                (outcome, "outcome", "outcome"),
                (unit, "unit", "unit"),
                (time, "period", "time"),
                (first_treated, "first treated period", "first_treated"),
            ],
        )
        if len(data) == 0:
            raise InvalidValueError("the data have no rows")
        y = numeric_column(data, outcome, "outcome")
        units, unit_levels = key_column(data, unit, "unit")
        times, time_levels = key_column(data, time, "period")
        if not pd.api.types.is_numeric_dtype(time_levels):
            raise InvalidValueError(
                f"column {time!r} (the period) must be numeric (e.g. years) so that it can be "
                f"compared with {first_treated!r}; it has dtype {data[time].dtype}"
            )
        first = numeric_column(data, first_treated, "first treated period", allow_missing=True)
        first = np.where(np.isnan(first), 0.0, first)
        negative = first < 0
        if negative.any():
            raise InvalidValueError(
                f"column {first_treated!r} (the first treated period) must be 0 (never treated) "
                f"or a period, but is negative at {format_rows(data.index[negative])}"
            )
        key = units.astype(np.int64) * len(time_levels) + times
        duplicated = pd.Series(key).duplicated(keep=False).to_numpy()
        if duplicated.any():
            raise DuplicateRowsError(
                f"the decomposition needs one row per unit and period, but ({unit}, {time}) "
                f"repeats in {format_rows(data.index[duplicated])}; aggregate pupils to "
                "unit-period means first (cohort.unit_years)"
            )
        n_units, n_periods = len(unit_levels), len(time_levels)
        check_start_constant(
            first,
            data[unit],
            column=first_treated,
            estimator="The Goodman-Bacon (2021) decomposition (staggered treatment)",
        )
        counts = np.bincount(units, minlength=n_units)
        incomplete = np.flatnonzero(counts < n_periods)
        if incomplete.size:
            shown = ", ".join(repr(_plain(unit_levels[i])) for i in incomplete[:5])
            more = f" and {incomplete.size - 5} more" if incomplete.size > 5 else ""
            raise InvalidValueError(
                f"the Goodman-Bacon decomposition needs a balanced panel (every unit observed in "
                f"every period of {time!r}), but units {shown}{more} miss periods "
                f"({incomplete.size} of {n_units} units). Its identity holds only for balanced "
                "panels: drop those units (or those periods) before decomposing."
            )
        wide = np.empty((n_units, n_periods))
        wide[units, times] = y
        periods = time_levels.to_numpy(dtype=float)
        # effective start: index of the first period >= first_treated (n_periods = untreated)
        cohort = np.empty(n_units)
        cohort[units] = first  # one value per unit (checked above)
        start = np.where(cohort > 0, np.searchsorted(periods, cohort, side="left"), n_periods)
        notes: list[str] = []
        moved = (cohort > 0) & (start < n_periods) & (start > 0)
        moved &= periods[np.minimum(start, n_periods - 1)] != cohort
        if moved.any():
            notes.append(
                f"{int(moved.sum())} units start between observed periods; they are grouped by "
                "their first observed treated period"
            )
        late = (cohort > 0) & (start == n_periods)
        if late.any():
            notes.append(
                f"{int(late.sum())} units first treated after the last period are untreated in "
                "the panel and count as never treated"
            )
        always = (cohort > 0) & (start == 0)
        n_dropped = 0
        if always.any():
            if always_treated == "drop":
                n_dropped = int(always.sum())
                msg = (
                    f"{n_dropped} units treated in every period (always treated) were dropped "
                    "(always_treated='drop'); the TWFE estimate decomposed is that of the "
                    "remaining units"
                )
                wide, start = wide[~always], start[~always]
            else:
                msg = (
                    f"{int(always.sum())} units are treated in every period (always treated): "
                    "in the TWFE regression they act as a comparison group whose outcome "
                    "changes include changes in their own treatment effects; their comparisons "
                    "are listed as forbidden (pass always_treated='drop' to remove them)"
                )
            notes.append(msg)
            warnings.warn(msg, CpdImpactWarning, stacklevel=4)
        return cls(wide, start, periods, n_dropped, tuple(notes))


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _decompose(panel: _Panel, outcome, unit, time, first_treated, always_treated):
    y, start, periods = panel.y, panel.start, panel.periods
    n_units, n_periods = y.shape
    timing = np.unique(start[(start > 0) & (start < n_periods)])
    if timing.size == 0:
        raise DesignError(
            f"no unit switches into treatment inside the panel (column {first_treated!r}): "
            "every unit is untreated or treated throughout, so there is no DiD to decompose"
        )
    has_never = bool((start == n_periods).any())
    has_always = bool((start == 0).any())
    if timing.size == 1 and not (has_never or has_always):
        raise EmptyComparisonGroupError(
            "all treated units start in the same period and no unit is never treated: the "
            "treatment is collinear with the period effects, so there is no TWFE estimate "
            "to decompose"
        )

    # The TWFE coefficient, directly: the within regression on the balanced panel.
    d = (np.arange(n_periods)[None, :] >= start[:, None]).astype(float)
    d_tilde = d - d.mean(axis=1, keepdims=True) - d.mean(axis=0, keepdims=True) + d.mean()
    ss = float((d_tilde**2).sum())
    if ss <= 1e-12 * d.size:
        raise EstimationError("the treatment has no variation left after the fixed effects")
    twfe = float((d_tilde * y).sum() / ss)
    variance = ss / d.size  # V^D

    count, n_share, mean, labels = {}, {}, {}, {}
    for s in timing:
        members = start == s
        count[s] = int(members.sum())
        n_share[s] = count[s] / n_units
        mean[s] = y[members].mean(axis=0)
        labels[s] = labels_at(periods, s)
    dbar = {s: (n_periods - s) / n_periods for s in timing}

    def avg(series, lo, hi):  # mean over period indices lo..hi-1
        return series[lo:hi].mean()

    rows = []
    for group, code in (("never", n_periods), ("always", 0)):
        members = start == code
        if not members.any():
            continue
        n_u = members.sum() / n_units
        m_u = y[members].mean(axis=0)
        kind = TREATED_VS_NEVER if group == "never" else TREATED_VS_ALWAYS
        for k in timing:
            n_ku = n_share[k] / (n_share[k] + n_u)
            weight = (
                (n_share[k] + n_u) ** 2 * n_ku * (1 - n_ku) * dbar[k] * (1 - dbar[k])
            ) / variance
            estimate = (avg(mean[k], k, n_periods) - avg(mean[k], 0, k)) - (
                avg(m_u, k, n_periods) - avg(m_u, 0, k)
            )
            rows.append(
                (
                    labels[k],
                    group,
                    kind,
                    estimate,
                    weight,
                    count[k],
                    int(members.sum()),
                    labels_at(periods, 0),
                    labels_at(periods, n_periods - 1),
                )
            )
    for i, k in enumerate(timing):
        for ell in timing[i + 1 :]:
            nk, nl = n_share[k], n_share[ell]
            dk, dl = dbar[k], dbar[ell]
            n_kl = nk / (nk + nl)
            pair = n_kl * (1 - n_kl)
            w_early = (
                ((nk + nl) * (1 - dl)) ** 2 * pair * ((dk - dl) / (1 - dl)) * ((1 - dk) / (1 - dl))
            ) / variance
            w_late = (((nk + nl) * dk) ** 2 * pair * (dl / dk) * ((dk - dl) / dk)) / variance
            mk, ml = mean[k], mean[ell]
            early = (avg(mk, k, ell) - avg(mk, 0, k)) - (avg(ml, k, ell) - avg(ml, 0, k))
            late = (avg(ml, ell, n_periods) - avg(ml, k, ell)) - (
                avg(mk, ell, n_periods) - avg(mk, k, ell)
            )
            n_k, n_l = count[k], count[ell]
            rows.append(
                (
                    labels[k],
                    labels[ell],
                    EARLIER_VS_LATER,
                    early,
                    w_early,
                    n_k,
                    n_l,
                    labels_at(periods, 0),
                    labels_at(periods, ell - 1),
                )
            )
            rows.append(
                (
                    labels[ell],
                    labels[k],
                    LATER_VS_EARLIER,
                    late,
                    w_late,
                    n_l,
                    n_k,
                    labels_at(periods, k),
                    labels_at(periods, n_periods - 1),
                )
            )
    table = pd.DataFrame(rows, columns=list(_TABLE_COLUMNS))
    table["control_group"] = table["control_group"].astype(object)
    order = table["type"].map({t: i for i, t in enumerate(COMPARISON_TYPES)})
    table = (
        table.assign(_order=order)
        .sort_values(["_order", "treated_group"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )
    cohorts = {labels[s]: count[s] for s in timing}
    return BaconDecomposition(
        _table=table,
        twfe_estimate=twfe,
        treatment_variance=variance,
        outcome=outcome,
        unit=unit,
        time=time,
        first_treated=first_treated,
        always_treated=always_treated,
        n_units=n_units,
        periods=tuple(labels_at(periods, i) for i in range(n_periods)),
        cohort_sizes=cohorts,
        n_never_treated=int((start == n_periods).sum()),
        n_always_treated=int((start == 0).sum()),
        n_dropped_always_treated=panel.n_dropped_always,
        notes=panel.notes,
    )


def labels_at(periods: np.ndarray, index: int):
    """The period label at ``index`` as a plain Python number (ints stay ints)."""
    value = _plain(periods[index])
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True, eq=False)
class BaconDecomposition(ResultFaces):
    """The 2x2 comparisons behind a TWFE DiD coefficient and their weights.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per 2x2 comparison: ``treated_group`` (a cohort: its first treated period),
        ``control_group`` (``"never"``, ``"always"`` or a cohort), ``type`` (one of
        :data:`COMPARISON_TYPES`), ``estimate`` (the 2x2 DiD), ``weight``, ``n_treated``,
        ``n_control`` (units) and ``window_start``, ``window_end`` (the periods the 2x2 uses).
        A copy: changing it does not change the result.
    twfe_estimate : float
        The TWFE coefficient, computed directly by the within regression.
    treatment_variance : float
        :math:`\\hat V^D`, the variance of the treatment after removing unit and period means.
    n_units, periods, cohort_sizes, n_never_treated, n_always_treated
        The panel decomposed (after any dropped always-treated units).
    notes : tuple of str
        What was grouped, dropped or counted.

    Notes
    -----
    There are no standard errors or confidence intervals: the decomposition is an exact
    accounting identity for the point estimate. ``conf_int`` raises ``NotImplementedError``
    with that explanation, and ``to_frame()`` returns :attr:`table` rather than the tidy
    ``term, estimate, std_error, ...`` table of estimators.
    """

    _table: pd.DataFrame
    twfe_estimate: float
    treatment_variance: float
    outcome: str
    unit: str
    time: str
    first_treated: str
    always_treated: str
    n_units: int
    periods: tuple
    cohort_sizes: dict
    n_never_treated: int
    n_always_treated: int
    n_dropped_always_treated: int = 0
    notes: tuple[str, ...] = ()

    @property
    def table(self) -> pd.DataFrame:
        """Every 2x2 comparison with its estimate and weight (a copy)."""
        return self._table.copy()

    @property
    def decomposed_estimate(self) -> float:
        """:math:`\\sum_j w_j \\hat\\beta^{2x2}_j`, equal to :attr:`twfe_estimate`."""
        t = self._table
        return float((t["weight"] * t["estimate"]).sum())

    @property
    def identity_error(self) -> float:
        """``decomposed_estimate - twfe_estimate`` (rounding error only)."""
        return self.decomposed_estimate - self.twfe_estimate

    @property
    def by_type(self) -> pd.DataFrame:
        """Per comparison type: ``n_comparisons``, total ``weight``, the weight-averaged
        ``estimate`` and its ``contribution`` (weight x estimate; they add up to the TWFE
        estimate), indexed by ``type`` in the order of :data:`COMPARISON_TYPES`."""
        t = self._table
        rows = []
        for kind in COMPARISON_TYPES:
            part = t[t["type"] == kind]
            if part.empty:
                continue
            weight = float(part["weight"].sum())
            contribution = float((part["weight"] * part["estimate"]).sum())
            estimate = contribution / weight if weight > 0 else float("nan")
            rows.append((kind, len(part), weight, estimate, contribution))
        frame = pd.DataFrame(
            rows, columns=["type", "n_comparisons", "weight", "estimate", "contribution"]
        )
        return frame.set_index("type")

    @property
    def forbidden_weight_share(self) -> float:
        """Share of the weight on forbidden comparisons (already-treated units as controls).

        Goodman-Bacon weights are never negative; it is inside these comparisons that the
        already-treated group's effects enter with a minus sign, which is where the negative
        weights on treatment effects of de Chaisemartin & D'Haultfoeuille (2020) come from.
        """
        t = self._table
        return float(t.loc[t["type"].isin(FORBIDDEN_TYPES), "weight"].sum())

    def to_frame(self) -> pd.DataFrame:
        """The table of 2x2 comparisons (see :attr:`table`); there are no standard errors."""
        return self.table

    def conf_int(self, alpha: float = 0.05):
        """Not available: the decomposition is an identity for the point estimate."""
        raise NotImplementedError(
            "the Goodman-Bacon decomposition has no confidence intervals: it is an exact "
            "accounting of the TWFE point estimate. Use DiD(...).fit(data).conf_int() for the "
            "TWFE coefficient, or StaggeredDiD for effects robust to staggered timing."
        )

    def summary(self) -> Summary:
        cohorts = ", ".join(f"{g} ({n})" for g, n in self.cohort_sizes.items())
        facts = [
            ("TWFE estimate", f"{self.twfe_estimate:.4f}"),
            ("sum of weight x 2x2", f"{self.decomposed_estimate:.4f}"),
            ("forbidden weight share", f"{self.forbidden_weight_share:.4f}"),
            ("units, periods", f"{self.n_units}, {len(self.periods)}"),
            ("cohorts (units)", cohorts),
            ("never treated units", str(self.n_never_treated)),
        ]
        if self.n_always_treated or self.n_dropped_always_treated:
            facts.append(
                (
                    "always treated units",
                    f"{self.n_always_treated} kept, {self.n_dropped_always_treated} dropped",
                )
            )
        facts.append(("outcome", self.outcome))
        return Summary(
            title="Goodman-Bacon decomposition of the TWFE DiD",
            facts=tuple(facts),
            table=self.by_type.reset_index(),
            notes=self.notes
            + ("no standard errors: an exact decomposition of the TWFE point estimate",),
        )

    def __repr__(self) -> str:
        return (
            f"BaconDecomposition(twfe_estimate={self.twfe_estimate:.6g}, "
            f"comparisons={len(self._table)}, "
            f"forbidden_weight_share={self.forbidden_weight_share:.4g})"
        )

    def plot(self, *, ax=None):
        """The classic scatter: each 2x2 estimate against its weight, marked by type, with the
        TWFE estimate as a dashed line. Returns the matplotlib Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 4))
        markers = dict(zip(COMPARISON_TYPES, ("o", "^", "x", "s"), strict=True))
        t = self._table
        for kind in COMPARISON_TYPES:
            part = t[t["type"] == kind]
            if part.empty:
                continue
            ax.scatter(part["weight"], part["estimate"], marker=markers[kind], label=kind)
        ax.axhline(
            self.twfe_estimate,
            color="grey",
            linestyle="--",
            linewidth=0.9,
            label=f"TWFE = {self.twfe_estimate:.3g}",
        )
        ax.set_xlabel("weight")
        ax.set_ylabel("2x2 DiD estimate")
        ax.set_title("Goodman-Bacon decomposition")
        ax.set_xlim(left=0)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(0, -0.15), frameon=False)
        return ax
