r"""Staggered adoption: group-time average treatment effects (Callaway & Sant'Anna 2021).

With start periods that differ across units and effects that change with time since treatment
or differ between start cohorts, the two-way fixed-effects coefficient is a weighted average of
all 2x2 comparisons, including "forbidden" ones that use already-treated units as controls, with
weights that can be negative (Goodman-Bacon 2021; de Chaisemartin & D'Haultfoeuille 2020).
:class:`StaggeredDiD` avoids them: each group-time effect compares one start cohort *g* with
clean controls only.

.. math::
    ATT(g, t) = E[Y_t - Y_b \mid G = g] - E[Y_t - Y_b \mid C],

with base period :math:`b` the last observed period before :math:`g - \delta` for
:math:`t \ge g - \delta` (:math:`\delta` the anticipation; :math:`g - \delta - 1` when every
year is observed) and, for earlier periods, the observed period before :math:`t` ("varying") or
that same :math:`b` ("universal"); controls :math:`C` are never-treated units, or units not yet
treated by :math:`\max(t, b) + \delta`.

Years need not be consecutive: the periods are the years observed, and event time is measured in
years (:math:`e = t - g`). With no KS2 tests in 2020 and 2021, a cohort's changes are measured
from 2019, and a cohort starting in 2021 (a year with no data) has no :math:`e = 0` cell: its
first effect is at :math:`e = 1`, in 2022. R's ``did`` also takes as base the last period
observed before a group's start; its aggregations fail on such panels (did issues #16, #89 and
#185), these do not.

Aggregates weight cells by the cohort shares :math:`p_g`, and their influence functions include
the estimation of those weights, so analytic standard errors match R's ``did`` package.

Covariates enter through the doubly robust, inverse-probability or regression estimators of
each 2x2 comparison (Sant'Anna & Zhao 2020; :mod:`cpdimpact.did._drdid`), on balanced panels,
unbalanced panels or repeated cross-sections. Standard errors are analytic (influence function,
clustered if asked) or from the multiplier bootstrap with uniform bands; with few clusters,
:meth:`StaggeredResult.wild_bootstrap` tests an aggregate with the wild cluster bootstrap.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from scipy import stats

from cpdimpact._guards import (
    check_start_constant,
    reject_infinite,
    require_residual_variation,
    require_variation,
)
from cpdimpact._results import (
    EstimateResult,
    EventStudyEstimates,
    Summary,
    interval,
    p_value,
    plot_event_study,
    tidy_frame,
)
from cpdimpact._validate import check_alpha, check_bool, check_choice, check_int, check_seed
from cpdimpact._weights import constant, weight_values, zero_weight_note
from cpdimpact.did._checks import start_column
from cpdimpact.did._common import outcome_scale, outcome_scale_facts, pass_value, units_text
from cpdimpact.did._drdid import METHODS, panel_att, repeated_att
from cpdimpact.did._multiplier import _Bootstrap, _inference
from cpdimpact.errors import (
    DesignError,
    DuplicateRowsError,
    EmptyComparisonGroupError,
    EstimationError,
    InvalidValueError,
    MissingColumnError,
    SmallSampleWarning,
    format_rows,
)
from cpdimpact.estimator import MultiplierBootstrap

__all__ = ["StaggeredDiD", "StaggeredResult", "Aggregate", "DynamicAggregate", "PretrendWald"]

KINDS = ("simple", "dynamic", "group", "calendar")


@dataclass(frozen=True)
class _Prepared:
    """Validated rows, and the units of inference they belong to."""

    y: np.ndarray  # outcome per row
    period: np.ndarray  # period index per row (into ``periods``)
    owner: np.ndarray  # unit of inference per row: the unit (panel) or the row itself
    cohort: np.ndarray  # first treated period per unit of inference (0: never treated)
    x: np.ndarray | None  # intercept and covariates per row (None: no covariates)
    clusters: np.ndarray | None  # cluster code per unit of inference
    w: np.ndarray | None  # sampling weight per row, mean 1 over units (None: unweighted)
    unit_w: np.ndarray | None  # sampling weight per unit of inference (None: unweighted)
    periods: np.ndarray
    balanced: bool
    notes: tuple[str, ...]
    labels: pd.Index  # each row's position in the data

    @property
    def n(self) -> int:
        return len(self.cohort)


@dataclass(frozen=True, kw_only=True)
class StaggeredDiD:
    """Group-time average treatment effects for staggered adoption, and their aggregates.

    Parameters
    ----------
    outcome, unit, time, first_treated
        Columns. ``first_treated`` is the first treated period of the unit's cohort; 0 or
        missing for never-treated units.
    control_group
        ``"never_treated"`` or ``"not_yet_treated"``.
    method
        Estimator of each 2x2 comparison with covariates (Sant'Anna & Zhao 2020): ``"dr"``
        doubly robust (default), ``"ipw"`` inverse probability weighting, ``"reg"`` outcome
        regression. Without covariates all three are the difference of mean changes.
    covariates
        Numeric columns to condition parallel trends on (dummy-encode categories first). On a
        panel each comparison uses the values of its earlier period, as R ``did`` does; on
        repeated cross-sections each row's own.
    anticipation
        Periods before ``first_treated`` in which units may already react.
    base_period
        ``"varying"`` (pre-treatment cells compare consecutive observed periods) or
        ``"universal"`` (every cell compares with the last observed period before treatment).
    cluster
        Column naming groups of units (school for pupil rows, area, local authority) to cluster
        the standard errors by; ``None`` treats units (panel) or rows (repeated
        cross-sections) as independent. On a panel it must be constant within units.
    n_bootstrap
        Multiplier-bootstrap draws for standard errors and uniform (simultaneous) bands, as R
        ``did`` does; ``0`` gives analytic influence-function standard errors.
    seed
        Seed of the bootstrap draws: an int, a :class:`numpy.random.SeedSequence` (``n`` and
        ``SeedSequence(n)`` give the same draws) or a :class:`numpy.random.Generator` (drawn
        from). With ``None`` a seed is drawn and recorded in the result, so any run can be
        reproduced.
    panel
        ``True``: ``unit`` identifies the same unit over time; an unbalanced panel is used as it
        is (every observed row counts; see Notes). ``False``: repeated cross-sections, e.g.
        pupil rows, new pupils every year; ``unit`` is not used (cluster by school with
        ``cluster=``).
    weights
        Column of non-negative sampling weights (e.g. matching or inverse-probability weights
        from :mod:`cpdimpact.comparison`), as R ``did``'s ``weightsname`` and ``DRDID``'s
        ``i.weights``; on a panel they must be constant within each unit. Rows of weight zero
        are excluded and counted in the notes. See Notes.
    alpha
        1 minus the confidence level.

    Notes
    -----
    **Weights** are sampling (probability) weights, not precision weights: a unit of weight
    :math:`s_i` stands for :math:`s_i` units of the population whose ATT is wanted, which is
    what matching and re-weighting produce. Every mean of a cell becomes a weighted mean (the
    regressions and the propensity score become weighted fits), the cohort shares of the
    aggregates become weighted shares :math:`p_g = \\overline{s\\,1\\{G=g\\}}` (weights
    normalised to mean one), and the influence functions carry the weights, so the standard
    errors treat the weights as fixed features of the units, as R ``did`` does; they do not
    model the variance of estimated weights. Constant weights give the unweighted fit exactly.

    Callaway & Sant'Anna (2021), *J. Econometrics* 225(2), 200-230. Each cell compares cohort
    *g* with its controls between a base period *b* and period *t*; without covariates on a
    balanced panel its estimator is the difference of mean changes with influence function
    :math:`\\psi_i = \\frac{n}{n_g} D_{gi}(\\Delta Y_i - \\bar{\\Delta Y}_g)
    - \\frac{n}{n_C} C_i(\\Delta Y_i - \\bar{\\Delta Y}_C)` and
    :math:`SE = \\sqrt{\\sum_i \\psi_i^2}/n` (with ``cluster``, :math:`\\psi` summed within
    clusters first). With covariates, or on repeated cross-sections, the cell estimators are
    those of Sant'Anna & Zhao (2020), *J. Econometrics* 219(1), 101-122, with influence
    functions that include the estimation of the propensity score and outcome regressions
    (:mod:`cpdimpact.did._drdid`). An unbalanced panel is estimated as R ``did`` does with
    ``allow_unbalanced_panel=TRUE``: each cell uses the rows observed in its two periods with
    the repeated cross-section estimators, and the influence function is summed within unit.

    Examples
    --------
    >>> from cpdimpact.cohort import CohortSpec
    >>> from cpdimpact.datasets import city_partnership
    >>> from cpdimpact.did import StaggeredDiD
    >>> cohort = CohortSpec().build(city_partnership(seed=1, scale=0.25))
    >>> res = StaggeredDiD().fit(cohort.unit_years)  # school-year means
    >>> sorted(res.cohort_share), res.n_units
    ([2021], 40)
    >>> overall = res.aggregate("simple")

    Pupil rows are repeated cross-sections within schools; cluster by school:

    >>> pupils = StaggeredDiD(panel=False, cluster="unit", n_bootstrap=0).fit(cohort.pupils)
    """

    #: Rows it fits: one per unit and period (a panel). With ``panel=False`` the rows are
    #: repeated cross-sections and any rows do; :func:`cpdimpact.estimator.fitted_rows`
    #: applies that per-instance exception for an evaluation.
    data_level: ClassVar[str] = "unit_year"
    #: Its estimates are in the outcome's units (averaged over units, or pupils with weights).
    effect_scale: ClassVar[str] = "outcome"

    outcome: str = "outcome"
    unit: str = "unit"
    time: str = "year"
    first_treated: str = "first_treated"
    control_group: Literal["never_treated", "not_yet_treated"] = "never_treated"
    method: Literal["dr", "ipw", "reg"] = "dr"
    covariates: tuple[str, ...] = field(default=())
    anticipation: int = 0
    base_period: Literal["varying", "universal"] = "varying"
    cluster: str | None = None
    weights: str | None = None
    n_bootstrap: int = 999
    seed: int | np.random.SeedSequence | np.random.Generator | None = None
    panel: bool = True
    alpha: float = 0.05

    def __post_init__(self):
        check_choice(self.control_group, "control_group", ("never_treated", "not_yet_treated"))
        check_choice(self.method, "method", METHODS)
        check_choice(self.base_period, "base_period", ("varying", "universal"))
        check_int(self.anticipation, "anticipation", minimum=0)
        if isinstance(self.covariates, str):
            object.__setattr__(self, "covariates", (self.covariates,))
        object.__setattr__(self, "covariates", tuple(self.covariates))
        check_alpha(self.alpha)
        check_int(self.n_bootstrap, "n_bootstrap", minimum=0, hint=" Use 0 for analytic errors.")
        check_bool(self.panel, "panel")
        check_seed(self.seed)

    @property
    def inference(self) -> MultiplierBootstrap:
        """Its inference, set by ``n_bootstrap`` and ``seed`` (0 draws: analytic errors)."""
        return MultiplierBootstrap(n_bootstrap=self.n_bootstrap, seed=self.seed)

    def describe(self) -> str:
        """The estimator and its inference in plain words, for a report."""
        controls = self.control_group.replace("_", "-")
        adjusted = (
            f", adjusting for {', '.join(self.covariates)} ({_METHOD_NAMES[self.method]})"
            if self.covariates
            else ""
        )
        weighted = f", weighted by {self.weights} (sampling weights)" if self.weights else ""
        clustered = f", clustered by {self.cluster}" if self.cluster else ""
        return (
            "Staggered difference-in-differences (Callaway & Sant'Anna 2021): group-time "
            f"effects against {controls} units{adjusted}{weighted}, averaged with cohort-share "
            f"weights; {self.inference.describe()}{clustered}"
        )

    def fit(self, data: pd.DataFrame) -> StaggeredResult:
        """Estimate every ATT(g, t) (the data are not modified)."""
        prep = self._prepare(data)
        n, periods, cohort = prep.n, prep.periods, prep.cohort
        cohorts = np.array(sorted(set(cohort[cohort > 0])))
        if prep.balanced:
            wide = np.empty((n, len(periods)), order="F")  # contiguous periods
            wide[prep.owner, prep.period] = prep.y
            unit_w = prep.unit_w  # sampling weights of the units (None: unweighted)
            x_wide = None
            if self.covariates:
                x_wide = np.empty((n, len(periods), prep.x.shape[1]))
                x_wide[prep.owner, prep.period] = prep.x
        else:
            # Rows of each period, found once: a cell reads only its two periods.
            order = np.argsort(prep.period, kind="stable")
            bounds = np.searchsorted(prep.period[order], np.arange(len(periods) + 1))
            by_period = [order[bounds[k] : bounds[k + 1]] for k in range(len(periods))]
        rows, skipped, uncompared = [], [], []
        # Rows behind the estimate: each post cell's rows of its cohort and of its controls in
        # its two periods (a row can serve both arms, in different cells).
        behind = np.zeros((2, len(prep.y)), dtype=bool)
        # Influence functions column by column into one array (no copy at the end).
        psi_all = np.empty((n, len(cohorts) * len(periods)), order="F")
        for g in cohorts:
            treated = cohort == g
            # the last period observed before the cohort's (anticipated) start: g - 1 unless
            # that year has no data (2020 and 2021 had no KS2 tests)
            before = periods[periods < g - self.anticipation]
            anchor = int(before[-1]) if before.size else None
            for ti in range(len(periods)):
                t = periods[ti]
                if t >= g - self.anticipation or self.base_period == "universal":
                    base = anchor
                elif ti > 0:
                    base = periods[ti - 1]
                else:
                    continue  # a varying base needs a previous period
                if base is None or base == t:
                    continue
                bi = int(np.searchsorted(periods, base))
                if self.control_group == "never_treated":
                    control = cohort == 0
                else:
                    limit = max(t, base) + self.anticipation
                    control = (cohort == 0) | ((cohort > limit) & (cohort != g))
                label = f"ATT({int(g)},{int(t)})"
                if not control.any():
                    uncompared.append(label)  # e.g. every later cohort has started by t
                    continue
                if prep.balanced:
                    fitted = self._panel_cell(wide, x_wide, treated, control, ti, bi, label, unit_w)
                else:
                    fitted = self._rows_cell(prep, by_period, g, control, ti, bi, label)
                if fitted is None:
                    skipped.append(label)
                    continue
                estimate, psi, n_control = fitted
                if t >= g - self.anticipation:
                    in_cell = (prep.period == ti) | (prep.period == bi)
                    behind[0] |= in_cell & treated[prep.owner]
                    behind[1] |= in_cell & control[prep.owner]
                psi_all[:, len(rows)] = psi
                rows.append((int(g), int(t), int(base), estimate, n_control))
        if not rows:
            raise DesignError("no group-time effect could be estimated: no comparison units")
        notes = list(prep.notes)
        if uncompared:
            notes.append(_uncompared_note(uncompared, self.control_group))
            warnings.warn(notes[-1], SmallSampleWarning, stacklevel=2)
        if skipped:
            notes.append(
                f"{len(skipped)} group-time effects lack observations of the cohort or its "
                f"controls in one of their two periods and are not estimated: {skipped[:6]}"
            )
            warnings.warn(notes[-1], SmallSampleWarning, stacklevel=2)
        cells = pd.DataFrame(rows, columns=["group", "time", "base", "estimate", "n_control"])
        psi = psi_all[:, : len(rows)]
        bootstrap = _Bootstrap.create(self, prep.clusters, n) if self.n_bootstrap else None
        se, band = _standard_errors(psi, bootstrap, prep.clusters, self.alpha)
        cells["std_error"] = se
        exact = require_residual_variation(
            cells["estimate"],
            se,
            prep.y,
            self.outcome,
            explained_by="unit (or cohort) and period effects with one effect per group-time cell",
        )
        if exact:
            notes.append(exact)
        lower, upper = interval(cells["estimate"], cells["std_error"], alpha=self.alpha)
        cells["ci_lower"], cells["ci_upper"] = lower, upper
        cells["band_lower"] = cells["estimate"] - band * cells["std_error"]
        cells["band_upper"] = cells["estimate"] + band * cells["std_error"]
        if prep.unit_w is None:
            shares = {int(g): float((cohort == g).mean()) for g in cohorts}
        else:  # weighted cohort shares (weights of mean one over units), as R did's pg
            shares = {int(g): float((prep.unit_w * (cohort == g)).mean()) for g in cohorts}
        result = StaggeredResult(
            spec=self,
            bootstrap=bootstrap,
            group_time=cells,
            influence=psi,
            cohort_share=shares,
            cohort_of_unit=cohort,
            n_units=n,
            periods=tuple(int(p) for p in periods),
            clusters=prep.clusters,
            n_rows=len(prep.y),
            notes=tuple(notes),
            unit_weights=prep.unit_w,
            rows_behind=pd.DataFrame(
                {"treated": behind[0], "comparison": behind[1]}, index=prep.labels
            )[behind.any(axis=0)],
        )
        if pass_value(prep.y) is None:
            return result
        # A pass/fail outcome: say so, and check the overall ATT's counterfactual proportion.
        after = (cohort[prep.owner] > 0) & (
            periods[prep.period] >= cohort[prep.owner] - self.anticipation
        )
        scale = outcome_scale(
            prep.y,
            prep.w,
            [("the overall ATT (simple)", after, result.aggregate("simple").estimate)],
            notes,
        )
        return replace(result, notes=tuple(notes), **scale)

    # ------------------------------------------------------------------ cells
    def _panel_cell(self, wide, x_wide, treated, control, ti, bi, label, w=None):
        """One cell on a balanced panel: from each unit's change between the two periods
        (``w``: sampling weights of the units, or None)."""
        n = wide.shape[0]
        change = wide[:, ti] - wide[:, bi]
        if x_wide is None and w is not None:  # weighted difference of mean changes
            wg, wc = w * treated, w * control
            sum_g, sum_c = wg.sum(), wc.sum()
            mean_g, mean_c = (wg @ change) / sum_g, (wc @ change) / sum_c
            psi = (n / sum_g) * wg * (change - mean_g) - (n / sum_c) * wc * (change - mean_c)
            return float(mean_g - mean_c), psi, int(control.sum())
        if x_wide is None:  # difference of mean changes, in closed form
            mean_g, mean_c = change[treated].mean(), change[control].mean()
            psi = (n / treated.sum()) * treated * (change - mean_g) - (
                n / control.sum()
            ) * control * (change - mean_c)
            return mean_g - mean_c, psi, int(control.sum())
        keep = treated | control
        x = x_wide[keep, min(ti, bi)]
        estimate, inf = panel_att(
            change[keep], treated[keep], x, self.method, label, None if w is None else w[keep]
        )
        psi = np.zeros(n)
        psi[keep] = inf * (n / keep.sum())
        return estimate, psi, int(control.sum())

    def _rows_cell(self, prep, by_period, g, control, ti, bi, label):
        """One cell from rows (repeated cross-sections or an unbalanced panel)."""
        rows = np.concatenate([by_period[ti], by_period[bi]])
        owner = prep.owner[rows]
        d = prep.cohort[owner] == g
        keep = d | control[owner]
        rows, owner, d = rows[keep], owner[keep], d[keep]
        post = prep.period[rows] == ti
        if not all(m.any() for m in (d & post, d & ~post, ~d & post, ~d & ~post)):
            return None
        x = np.ones((len(rows), 1)) if prep.x is None else prep.x[rows]
        weights = None if prep.w is None else prep.w[rows]
        estimate, inf = repeated_att(prep.y[rows], post, d, x, self.method, label, weights)
        psi = np.bincount(owner, weights=inf * (prep.n / len(rows)), minlength=prep.n)
        controls = (
            np.count_nonzero(np.bincount(owner[~d], minlength=prep.n))
            if self.panel
            else (np.count_nonzero(~d))
        )
        return estimate, psi, int(controls)

    # ------------------------------------------------------------------ data
    def _prepare(self, data: pd.DataFrame) -> _Prepared:
        columns = [self.outcome, self.time, self.first_treated, *self.covariates]
        if self.panel:
            columns.insert(1, self.unit)
        if self.cluster is not None and self.cluster not in columns:
            columns.append(self.cluster)
        if self.weights is not None and self.weights not in columns:
            columns.append(self.weights)
        missing = [c for c in columns if c not in data.columns]
        if missing:
            raise MissingColumnError(
                f"columns {missing} are not in the data; it has {list(map(str, data.columns))}"
            )
        frame = data[columns]
        position = np.arange(len(frame))  # each kept row's position in the data
        for column in (self.outcome, self.time, *self.covariates):
            if (
                not pd.api.types.is_numeric_dtype(frame[column])
                or pd.api.types.is_bool_dtype(frame[column])
                and column == self.time
            ):
                raise InvalidValueError(
                    f"column {column!r} must be numeric"
                    + (
                        " (dummy-encode categories, e.g. pd.get_dummies)"
                        if column in self.covariates
                        else ""
                    )
                )
        for column in (self.outcome, *self.covariates):  # missing: dropped below; inf: never
            reject_infinite(
                frame[column].to_numpy(dtype=float, na_value=np.nan),
                frame.index,
                column,
                "outcome" if column == self.outcome else "covariate",
            )
        start_column(frame, self.first_treated)
        time = frame[self.time]
        if not pd.api.types.is_integer_dtype(time) and (
            time.isna().any() or (time != np.round(time)).any()
        ):
            bad = frame.index[time.isna() | (time != np.round(time))]
            raise InvalidValueError(
                f"column {self.time!r} must hold whole periods (e.g. years); {format_rows(bad)} "
                "do not"
            )
        notes: list[str] = []
        if self.weights is not None:
            weight = weight_values(frame, self.weights)
            if self.panel:  # sampling weights belong to units: constant within each
                codes = pd.factorize(frame[self.unit])[0]
                low = np.full(codes.max() + 1, np.inf)
                high = np.full(codes.max() + 1, -np.inf)
                np.minimum.at(low, codes, weight)
                np.maximum.at(high, codes, weight)
                varying = low[codes] != high[codes]
                if varying.any():
                    raise InvalidValueError(
                        f"column {self.weights!r} (the weights) must be constant within each "
                        f"unit on a panel; it changes at {format_rows(frame.index[varying])}; "
                        "give each unit one weight (e.g. its first year's), or set panel=False"
                    )
            zero = weight == 0
            if zero.any():
                notes.append(zero_weight_note(self.weights, zero, frame.index))
                frame, weight, position = frame[~zero], weight[~zero], position[~zero]
        # Rows without an outcome or a covariate cannot enter any comparison.
        incomplete = frame[self.outcome].isna().to_numpy(copy=True)
        for column in self.covariates:
            incomplete |= frame[column].isna().to_numpy()
        if incomplete.any():
            notes.append(
                f"{int(incomplete.sum())} rows with a missing outcome or covariate were dropped "
                f"({format_rows(frame.index[incomplete])})"
            )
            warnings.warn(notes[-1], SmallSampleWarning, stacklevel=3)
            frame, position = frame[~incomplete], position[~incomplete]
            if self.weights is not None:
                weight = weight[~incomplete]
        starts = frame[self.first_treated].fillna(0).to_numpy(dtype=float)
        period_code, period_labels = pd.factorize(frame[self.time], sort=True)
        periods = np.asarray(period_labels).astype(int)
        if self.panel:
            owner, units = pd.factorize(frame[self.unit], sort=True)
            n = len(units)
            cell = owner.astype(np.int64) * len(periods) + period_code
            per_cell = np.bincount(cell, minlength=n * len(periods))
            if per_cell.max() > 1:
                duplicated = per_cell[cell] > 1
                raise DuplicateRowsError(
                    f"one row per unit and period is needed, but ({self.unit}, {self.time}) "
                    f"repeats in {format_rows(frame.index[duplicated])}; aggregate pupils to "
                    "unit-period means first (cohort.unit_years), or set panel=False for "
                    "repeated cross-sections"
                )
            check_start_constant(
                starts, frame[self.unit], column=self.first_treated, estimator="StaggeredDiD"
            )
            cohort = np.empty(n)
            cohort[owner] = starts
            counts = np.bincount(owner, minlength=n)
            balanced = bool((counts == len(periods)).all())
            if not balanced:
                notes.append(
                    f"unbalanced panel: {int((counts < len(periods)).sum())} of {n} units are "
                    "not observed in every period; each comparison uses the rows observed in "
                    "its two periods (as R's did package does for an unbalanced panel)"
                )
        else:
            owner = np.arange(len(frame))
            cohort = starts
            balanced = False
        # Units (rows) treated from the first period have no pre-period.
        always = (cohort > 0) & (cohort - self.anticipation <= periods[0])
        if always.any():
            what = "units" if self.panel else "rows"
            notes.append(
                f"{int(always.sum())} {what} treated from the first period (no pre-period) "
                "were dropped"
            )
            warnings.warn(notes[-1], SmallSampleWarning, stacklevel=3)
        clusters = None
        if self.cluster is not None:
            cluster_code = pd.factorize(frame[self.cluster], sort=True)[0]
            if self.panel:
                clusters = np.empty(len(cohort), dtype=np.int64)
                clusters[owner] = cluster_code
                if (clusters[owner] != cluster_code).any():
                    raise InvalidValueError(
                        f"cluster column {self.cluster!r} must be constant within each unit "
                        "(clusters are groups of units, e.g. areas)"
                    )
            else:
                clusters = cluster_code
        y = frame[self.outcome].to_numpy(dtype=float)
        labels = pd.Index(position)
        w = None if self.weights is None or constant(weight) else weight
        period = period_code
        x = None  # intercept and covariates, only when there are covariates
        if self.covariates:
            x = np.ones((len(y), 1 + len(self.covariates)))
            x[:, 1:] = frame[list(self.covariates)].to_numpy(dtype=float)
        if always.any():  # drop those rows and renumber the units (copies only then)
            keep_rows = ~always[owner]
            new_owner = np.cumsum(~always) - 1
            owner = new_owner[owner[keep_rows]]
            cohort = cohort[~always]
            if clusters is not None:
                clusters = pd.factorize(clusters[~always], sort=True)[0]
            y, period, labels = y[keep_rows], period[keep_rows], labels[keep_rows]
            x = None if x is None else x[keep_rows]
            w = None if w is None else w[keep_rows]
        require_variation(
            y,
            self.outcome,
            where="in the rows used (after dropping rows with a zero weight or a missing value "
            "and units treated from the first period)",
        )
        if clusters is not None and int(clusters.max(initial=0)) < 1:
            raise EstimationError(
                f"cluster-robust inference needs at least 2 clusters of {self.cluster!r}; the "
                "rows used hold 1, so every standard error would be zero. Cluster at the level "
                "of assignment (e.g. school), or leave cluster=None."
            )
        unit_w = None
        if w is not None:  # one weight per unit of inference, normalised to mean one
            unit_w = np.empty(len(cohort))
            unit_w[owner] = w
            scale = unit_w.mean()
            unit_w = unit_w / scale
            w = w / scale
        # A cohort starting after the data ends is untreated in every observed period: it
        # serves as never treated (as R did does), not as a cohort without post-periods.
        late = cohort - self.anticipation > periods[-1]
        if late.any():
            notes.append(
                f"{int(late.sum())} {'units' if self.panel else 'rows'} first treated after the "
                "last period are treated as never treated"
            )
            cohort = np.where(late, 0, cohort)
        if self.control_group == "never_treated" and not (cohort == 0).any():
            raise EmptyComparisonGroupError(
                "control_group='never_treated' but no unit is never treated; use "
                "control_group='not_yet_treated'"
            )
        if self.panel:
            sizes = pd.Series(cohort[cohort > 0]).value_counts()
            if (sizes == 1).any():
                notes.append(
                    f"cohorts {sorted(int(g) for g in sizes.index[sizes == 1])} hold a single "
                    "unit: their effects rest on one unit"
                )
                warnings.warn(notes[-1], SmallSampleWarning, stacklevel=3)
        return _Prepared(
            y=y,
            period=period,
            owner=owner,
            cohort=cohort.astype(int),
            x=x,
            clusters=clusters,
            w=w,
            unit_w=unit_w,
            periods=periods,
            balanced=balanced,
            notes=tuple(notes),
            labels=labels,
        )


def _cells_text(labels: list[str], limit: int = 6) -> str:
    """``ATT(2021,2021), ATT(2021,2022)``, the first ``limit`` of them and how many more."""
    shown = ", ".join(labels[:limit])
    return shown + (f" and {len(labels) - limit} more" if len(labels) > limit else "")


def _uncompared_note(labels: list[str], control_group: str) -> str:
    """The note naming the group-time cells that had no comparison units at all."""
    controls = (
        "no unit is never treated"
        if control_group == "never_treated"
        else "no unit is never treated or still untreated by then: every later cohort has started"
    )
    return (
        f"{len(labels)} group-time effect{'s' if len(labels) > 1 else ''} "
        f"{'have' if len(labels) > 1 else 'has'} no comparison units ({controls}) and "
        f"{'are' if len(labels) > 1 else 'is'} not estimated: {_cells_text(labels)}; the "
        "aggregates average the other cells only"
    )


_METHOD_NAMES = {
    "dr": "doubly robust",
    "ipw": "inverse probability weighting",
    "reg": "outcome regression",
}


def _standard_errors(psi, bootstrap, clusters, alpha):
    """Standard errors and band critical value; analytic clustered ones sum psi by cluster."""
    if bootstrap is None and clusters is not None:
        psi = np.atleast_2d(psi.T).T
        sums = np.zeros((int(clusters.max()) + 1, psi.shape[1]))
        np.add.at(sums, clusters, psi)
        se = np.sqrt((sums**2).sum(axis=0)) / psi.shape[0]
        return se, float(stats.norm.ppf(1 - alpha / 2))
    return _inference(psi, bootstrap, alpha)


@dataclass(frozen=True)
class PretrendWald:
    """Wald test that every pre-treatment ATT(g, t) is zero (chi-square on q df)."""

    statistic: float
    df: int
    p_value: float


@dataclass(frozen=True, eq=False)
class Aggregate(EstimateResult):
    """An aggregated effect: overall estimate and, for dynamic/group/calendar, its pieces.

    ``conf_int()`` is a DataFrame (overall term first, then the pieces) like every result's:
    ``lower, upper = agg.conf_int().iloc[0]`` gives the overall interval.
    """

    kind: str
    estimate: float
    std_error: float
    alpha: float
    pieces: pd.DataFrame
    #: Influence function of the overall estimate, one value per unit (for further inference,
    #: e.g. a wild cluster bootstrap or a sensitivity analysis).
    influence: np.ndarray | None = field(default=None, repr=False)
    #: Influence functions of the pieces (units x pieces, in the order of ``pieces``): their
    #: covariance is ``piece_influence.T @ piece_influence / n**2``.
    piece_influence: np.ndarray | None = field(default=None, repr=False)
    #: Weight of each row of ``group_time`` in the overall estimate, cohort shares taken as
    #: fixed (``estimate == cell_weights @ group_time["estimate"]``).
    cell_weights: np.ndarray | None = field(default=None, repr=False)
    #: ``"pass_fail"`` when the outcome is pass/fail (0/1 or 0/100): the estimates are
    #: differences in proportions (x100 = percentage points); ``"score"`` otherwise.
    outcome_kind: str = "score"
    #: The value coding a pass (1.0 or 100.0); ``None`` for a continuous outcome.
    pass_value: float | None = None

    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        """Normal intervals of the overall effect and the pieces (at the fit's ``alpha`` when
        ``None``), indexed by term."""
        return super().conf_int(self._level(alpha))

    def _tidy(self, alpha: float) -> pd.DataFrame:
        """The overall effect, then the pieces (by event time, group or period); normal
        intervals."""
        overall = f"{self.kind}: overall"
        estimates, std_errors = (
            pd.Series({overall: self.estimate}),
            pd.Series({overall: self.std_error}),
        )
        if not self.pieces.empty:
            label = self.pieces.columns[0]
            terms = [f"{label}={v}" for v in self.pieces[label]]
            estimates = pd.concat(
                [estimates, pd.Series(self.pieces["estimate"].to_numpy(), index=terms)]
            )
            std_errors = pd.concat(
                [std_errors, pd.Series(self.pieces["std_error"].to_numpy(), index=terms)]
            )
        return tidy_frame(estimates, std_errors, df=None, alpha=alpha)

    def _title(self) -> str:
        return f"Staggered DiD aggregate ({self.kind})"

    def _facts(self) -> tuple[tuple[str, str], ...]:
        return (
            ("Aggregation", self.kind),
            *outcome_scale_facts(self),
            ("Estimate", f"{self.estimate:.4f} (SE {self.std_error:.4f})"),
            ("Confidence level", f"{1 - self.alpha:.0%}"),
        )


@dataclass(frozen=True, eq=False)
class DynamicAggregate(Aggregate, EventStudyEstimates):
    """The dynamic (event-time) aggregate of a staggered fit: an event study.

    ``pieces`` holds one row per event time. ``reference`` is the omitted event time of a fit
    with ``base_period="universal"`` (its row, if present, is the zero it is normalised to);
    ``None`` when the base period varies.
    """

    reference: int | None = None
    #: Whether ``band_lower``/``band_upper`` are uniform bands (multiplier bootstrap); without
    #: the bootstrap they repeat the pointwise intervals, which are not drawn as a band.
    uniform: bool = False

    @property
    def reference_event_time(self) -> int | None:
        """:attr:`reference`. An event time missing for want of comparisons (a gap in the
        years, or no unit left untreated) is not a reference and is never drawn as one."""
        return self.reference

    def event_time_frame(self, alpha: float | None = None) -> pd.DataFrame:
        """The pieces by event time: normal intervals at ``alpha``, and the uniform band (at
        the fit's ``alpha`` only; NaN at another level, and without the bootstrap)."""
        alpha = self._level(alpha)
        pieces = self.pieces.sort_values("event_time")
        frame = pd.DataFrame(
            {
                "estimate": pieces["estimate"].to_numpy(),
                "std_error": pieces["std_error"].to_numpy(),
            },
            index=pd.Index(pieces["event_time"].to_numpy(dtype=int), name="event_time"),
        )
        frame["ci_lower"], frame["ci_upper"] = interval(
            frame["estimate"], frame["std_error"], alpha=alpha
        )
        reference = self.reference_event_time
        if reference is not None and reference not in frame.index:  # the zero it is relative to
            frame.loc[reference] = (0.0, np.nan, 0.0, 0.0)
            frame = frame.sort_index()
        frame["reference"] = frame.index == reference
        frame["binned"] = False
        same = alpha == self.alpha and self.uniform
        for column in ("band_lower", "band_upper"):
            band = pieces.set_index("event_time")[column]
            frame[column] = band.reindex(frame.index).to_numpy() if same else np.nan
        return frame

    def event_time_cov(self) -> pd.DataFrame:
        """``psi' psi / n**2`` from the pieces' influence functions (units independent; pass
        the :class:`StaggeredResult` to :func:`~cpdimpact.did.honest.sensitivity` for a
        clustered covariance)."""
        times = self.pieces["event_time"].to_numpy(dtype=int)
        psi = np.asarray(self.piece_influence, dtype=float)
        keep = times != self.reference_event_time
        psi = psi[:, keep]
        cov = psi.T @ psi / psi.shape[0] ** 2
        index = pd.Index(times[keep], name="event_time")
        return pd.DataFrame(cov, index=index, columns=index).sort_index().sort_index(axis=1)

    def _event_study_title(self) -> str:
        return "Event study (staggered DiD, dynamic aggregate)"


@dataclass(frozen=True, eq=False)
class StaggeredResult(EstimateResult):
    """Group-time effects with their influence functions; aggregate with :meth:`aggregate`."""

    spec: StaggeredDiD
    bootstrap: _Bootstrap | None
    group_time: pd.DataFrame
    influence: np.ndarray
    cohort_share: dict[int, float]
    cohort_of_unit: np.ndarray
    n_units: int
    periods: tuple[int, ...]
    #: Cluster code of each unit of inference (``None``: units independent).
    clusters: np.ndarray | None = field(default=None, repr=False)
    #: Rows used (unit-periods on a panel, observations in repeated cross-sections).
    n_rows: int = 0
    notes: tuple[str, ...] = ()
    #: Sampling weight of each unit of inference, mean one (``None``: unweighted fit).
    unit_weights: np.ndarray | None = field(default=None, repr=False)
    #: The rows behind the overall estimate, by position in the data: ``treated`` marks
    #: the rows of a start cohort, ``comparison`` those of its controls, in the two periods
    #: (the year and the base year) of a post-treatment cell that was estimated. A row can
    #: serve both arms in different cells (a later starter is a control before it starts).
    rows_behind: pd.DataFrame | None = field(default=None, repr=False)
    #: ``"pass_fail"`` when the outcome is pass/fail (0/1 or 0/100): every ATT(g, t) and aggregate
    #: is a difference in proportions from a linear probability model (x100 = percentage
    #: points).
    outcome_kind: str = "score"
    #: For a pass/fail outcome, the proportion passing among the treated rows after their start
    #: (:math:`p_1`; weighted with the spec's weights), for
    #: :func:`cpdimpact.effects.difference_effect_size`; ``None`` otherwise.
    treated_proportion: float | None = None
    #: The value coding a pass (1.0 or 100.0); ``None`` for a continuous outcome.
    pass_value: float | None = None

    @property
    def estimate_units(self) -> str:
        """What the estimates measure: the outcome's units, or for a pass/fail outcome
        differences in proportions (x100 = percentage points)."""
        return units_text(self.outcome_kind, self.pass_value, self.spec.outcome)

    @property
    def weighting(self) -> str:
        """Whose average effect this is: every unit (or row) equally, or by the weights."""
        what = "unit" if self.spec.panel else "row"
        if self.spec.weights is not None:
            return (
                f"{what}s weighted by {self.spec.weights} (sampling weights, as R did), in each "
                "cell and in the cohort shares"
            )
        return (
            f"every {what} counts equally (on school-year means: every school, whatever its "
            f"size), in each cell and in the cohort shares"
        )

    def _se(self, psi: np.ndarray) -> float:
        se = _standard_errors(psi[:, None], self.bootstrap, self.clusters, self.spec.alpha)[0]
        return float(se[0])

    # The faces a pipeline stage reads: the headline is the simple aggregate.
    @cached_property
    def _simple(self) -> Aggregate:
        return self.aggregate("simple")

    def _headline(self) -> pd.Series:
        """The headline is the overall ATT, the ``"simple"`` aggregate."""
        return self._simple._headline()

    @property
    def df(self) -> float:
        """Normal reference distribution."""
        return float("inf")

    @property
    def n_clusters(self) -> int:
        return self.n_units if self.clusters is None else int(self.clusters.max()) + 1

    @property
    def cluster(self) -> str:
        return self.spec.cluster or self.spec.unit

    @property
    def cov_type(self) -> str:
        return self.inference

    @property
    def n_obs(self) -> int:
        return self.n_rows

    @property
    def inference(self) -> str:
        """How the standard errors were computed (method, draws, seed, clusters)."""
        what = "units" if self.spec.panel else "rows"
        where = (
            f"clustered by {self.spec.cluster} ({self.n_clusters} clusters)"
            if self.clusters is not None
            else f"{what} independent"
        )
        if self.bootstrap is None:
            return f"analytic influence-function standard errors, {where}"
        b = self.bootstrap
        seed = "given as a numpy Generator or SeedSequence" if b.seed is None else b.seed
        return f"multiplier bootstrap (Mammen weights), {b.n_bootstrap} draws, seed {seed}, {where}"

    def _share_weighted(
        self, groups: np.ndarray, estimates: np.ndarray, psi: np.ndarray
    ) -> tuple[float, np.ndarray]:
        r"""Cohort-share weighted average of ``estimates`` and its influence function.

        The influence function adds the estimation of the weights: for weights
        :math:`w_k = p_{g_k}/S`, the term :math:`\sum_k \theta_k\,\psi^w_k` with
        :math:`\psi^w_k = (1_{G=g_k} - p_{g_k})/S - p_{g_k}\sum_j(1_{G=g_j} - p_{g_j})/S^2`
        (as R ``did``'s ``wif``). Both sums run over cells but depend on a unit only through
        its cohort, so they are computed per cohort and looked up (O(n), not O(n x cells)).
        With sampling weights :math:`s_i` the indicators become :math:`s_i 1_{G=g_k}`.
        """
        p = np.array([self.cohort_share[int(g)] for g in groups])
        total = p.sum()
        w = p / total
        cohorts, cell_cohort = np.unique(groups, return_inverse=True)
        position = np.searchsorted(cohorts, self.cohort_of_unit)
        member = (position < len(cohorts)) & (
            cohorts[np.minimum(position, len(cohorts) - 1)] == self.cohort_of_unit
        )

        def centred(coefficients: np.ndarray) -> np.ndarray:
            """sum_k c_k (1{G = g_k} - p_{g_k}) for every unit."""
            per_cohort = np.bincount(cell_cohort, weights=coefficients, minlength=len(cohorts))
            lookup = np.where(member, per_cohort[np.minimum(position, len(cohorts) - 1)], 0.0)
            if self.unit_weights is not None:
                lookup = self.unit_weights * lookup
            return lookup - coefficients @ p

        wif = centred(estimates) / total - (estimates @ p) * centred(np.ones(len(p))) / total**2
        return float(w @ estimates), psi @ w + wif

    def _cell_shares(self, idx: np.ndarray) -> np.ndarray:
        r"""Cohort-share weights :math:`p_g / \sum p` of the cells ``idx``."""
        p = np.array([self.cohort_share[int(c)] for c in self.group_time["group"].to_numpy()[idx]])
        return p / p.sum()

    def _cells(self, idx: np.ndarray) -> tuple[float, np.ndarray]:
        gt = self.group_time
        return self._share_weighted(
            gt["group"].to_numpy()[idx], gt["estimate"].to_numpy()[idx], self.influence[:, idx]
        )

    def _pieces(self, label: str, keys: list, estimates: list, psis: list) -> pd.DataFrame:
        """Pieces of an aggregate with their SEs and uniform bands (one bootstrap pass)."""
        se, band = _standard_errors(
            np.column_stack(psis), self.bootstrap, self.clusters, self.spec.alpha
        )
        est = np.asarray(estimates)
        return pd.DataFrame(
            {
                label: keys,
                "estimate": est,
                "std_error": se,
                "band_lower": est - band * se,
                "band_upper": est + band * se,
            }
        )

    def aggregate(
        self,
        kind: str = "simple",
        *,
        min_e: float = -np.inf,
        max_e: float = np.inf,
        balance_e: int | None = None,
    ) -> Aggregate:
        """Aggregate ATT(g, t): ``"simple"``, ``"dynamic"`` (by event time), ``"group"`` or
        ``"calendar"``, as R's ``did::aggte``.

        ``min_e``/``max_e`` limit the event times of a dynamic aggregation; ``balance_e`` keeps
        only cohorts observed for at least that many periods after treatment. The pieces carry
        uniform bands (``band_lower``, ``band_upper``) when bootstrapped.
        """
        if kind not in KINDS:
            check_choice(kind, "kind", KINDS)
        gt = self.group_time
        g, t = gt["group"].to_numpy(), gt["time"].to_numpy()
        post = t >= g - self.spec.anticipation
        weights = np.zeros(len(gt))
        pieces, psis, extra = pd.DataFrame(), None, {}
        if kind == "simple":
            idx = np.flatnonzero(post)
            estimate, psi = self._cells(idx)
            weights[idx] = self._cell_shares(idx)
        elif kind == "group":
            keys = [c for c in sorted(set(g)) if ((g == c) & post).any()]
            idxs = [np.flatnonzero((g == c) & post) for c in keys]
            estimates = [float(gt["estimate"].to_numpy()[i].mean()) for i in idxs]
            psis = np.column_stack([self.influence[:, i].mean(axis=1) for i in idxs])
            pieces = self._pieces("group", [int(c) for c in keys], estimates, list(psis.T))
            estimate, psi = self._share_weighted(np.asarray(keys), np.asarray(estimates), psis)
            shares = np.array([self.cohort_share[int(c)] for c in keys])
            for share, idx in zip(shares / shares.sum(), idxs, strict=True):
                weights[idx] = share / idx.size
        elif kind == "dynamic":
            event = t - g
            keep = (event >= min_e) & (event <= max_e)
            if balance_e is not None:
                keep &= (max(self.periods) - g) >= balance_e
                keep &= event <= balance_e
            keys = sorted(set(event[keep]))
            idxs = [np.flatnonzero(keep & (event == e)) for e in keys]
            fits = [self._cells(idx) for idx in idxs]
            pieces = self._pieces(
                "event_time", [int(e) for e in keys], [f[0] for f in fits], [f[1] for f in fits]
            )
            post_e = np.asarray(keys) >= 0
            psis = np.column_stack([f[1] for f in fits])
            psi = psis[:, post_e].mean(axis=1)
            estimate = float(pieces["estimate"][post_e].mean())
            for idx, e in zip(idxs, keys, strict=True):
                if e >= 0:
                    weights[idx] = self._cell_shares(idx) / post_e.sum()
            universal = self.spec.base_period == "universal"
            extra = {
                "reference": -1 - int(self.spec.anticipation) if universal else None,
                "uniform": self.bootstrap is not None,
            }
        else:  # calendar
            keys = sorted(set(t[post]))
            idxs = [np.flatnonzero(post & (t == period)) for period in keys]
            fits = [self._cells(idx) for idx in idxs]
            pieces = self._pieces(
                "time", [int(k) for k in keys], [f[0] for f in fits], [f[1] for f in fits]
            )
            psis = np.column_stack([f[1] for f in fits])
            psi = psis.mean(axis=1)
            estimate = float(pieces["estimate"].mean())
            for idx in idxs:
                weights[idx] = self._cell_shares(idx) / len(keys)
        result = DynamicAggregate if kind == "dynamic" else Aggregate
        return result(
            kind,
            estimate,
            self._se(psi),
            self.spec.alpha,
            pieces,
            psi,
            psis,
            weights,
            outcome_kind=self.outcome_kind,
            pass_value=self.pass_value,
            **extra,
        )

    @property
    def pretrend(self) -> PretrendWald | None:
        """Wald test that all pre-treatment ATT(g, t) are zero, with the analytic covariance
        (clustered when the fit is)."""
        gt = self.group_time
        pre = np.flatnonzero(
            gt["time"].to_numpy() < gt["group"].to_numpy() - self.spec.anticipation
        )
        if pre.size == 0:
            return None
        psi = self.influence[:, pre]
        if self.clusters is not None:
            sums = np.zeros((self.n_clusters, pre.size))
            np.add.at(sums, self.clusters, psi)
            psi = sums
        cov = psi.T @ psi / self.n_units**2
        att = gt["estimate"].to_numpy()[pre]
        statistic = float(att @ np.linalg.pinv(cov) @ att)
        return PretrendWald(statistic, int(pre.size), float(stats.chi2.sf(statistic, pre.size)))

    def wild_bootstrap(self, kind: str = "simple", **kwargs):
        """Wild cluster bootstrap test of an aggregate, for few clusters (fits with
        ``cluster=``); see :func:`cpdimpact.did.wild_bootstrap_aggregate` for the options."""
        from cpdimpact.did.wild_aggregate import wild_bootstrap_aggregate

        return wild_bootstrap_aggregate(self, kind, **kwargs)

    def _tidy(self, alpha: float) -> pd.DataFrame:
        """Every ATT(g, t), terms named ``ATT(g,t)``; normal intervals."""
        gt = self.group_time
        terms = [f"ATT({g},{t})" for g, t in zip(gt["group"], gt["time"], strict=True)]
        return tidy_frame(
            pd.Series(gt["estimate"].to_numpy(), index=terms),
            pd.Series(gt["std_error"].to_numpy(), index=terms),
            df=None,
            alpha=alpha,
        )

    @property
    def alpha(self) -> float:
        """The fit's level (the spec's ``alpha``)."""
        return self.spec.alpha

    def summary(self) -> Summary:
        simple = self.aggregate("simple")
        pre = self.pretrend
        facts = (
            ("overall ATT (simple)", f"{simple.estimate:.4f} (SE {simple.std_error:.4f})"),
            ("control group", self.spec.control_group.replace("_", " ")),
            ("units, periods", f"{self.n_units}, {len(self.periods)}"),
            ("standard errors", self.inference),
        )
        facts += (("weighting", self.weighting), *outcome_scale_facts(self))
        if pre is not None:
            facts += (
                ("pre-trend Wald", f"chi2({pre.df}) = {pre.statistic:.2f}, p = {pre.p_value:.3f}"),
            )
        return Summary(
            title="Staggered DiD (Callaway & Sant'Anna)",
            facts=facts,
            table=self.to_frame(),
            notes=self.notes,
        )

    def plot(self, *, ax=None):
        """Event-study figure of the dynamic aggregation (:func:`plot_event_study`): pointwise
        intervals as error bars and, when bootstrapped, the uniform band shaded."""
        return plot_event_study(self.aggregate("dynamic"), ax=ax)

    def p_values(self) -> np.ndarray:
        return p_value(self.group_time["estimate"] / self.group_time["std_error"])
